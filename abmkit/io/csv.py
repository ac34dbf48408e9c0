"""Reading raw export files: encoding and delimiter detection, every value a string.

Used by the cleaner (:mod:`abmkit.clean`) and the CRM adapters (:mod:`abmkit.adapters`);
like all of :mod:`abmkit.io` it imports neither.

Files are read with pyarrow's multi-threaded CSV reader (quoted newlines
allowed); a file with ragged rows is re-read with Python's ``csv`` module so
that every record keeps its exact row number and the ragged ones can go to the
rejects ledger (reason ``malformed_row``) instead of being lost.

Row numbers (``source_row``) count data records from 1: row 1 is the first
record below the header, i.e. spreadsheet row 2. A record with a quoted line
break is one row; blank lines are not rows.

Physical lines are accounted for as well as records: every line below the header
is in a kept record, in a ledgered one or blank (``RawFrame.lines``,
``record_lines``, ``blank_lines``). A record may span at most ``max_record_lines``
physical lines through quoted line breaks: a quote still open after that (a stray
opening quote, which would swallow the rest of the file) sets its first line aside
(reason ``unbalanced_quote``) and reading resumes on the next line. The size limits
(:data:`LIMITS`: a value, the header, the number of columns) stop the file with a
:class:`CleanError` naming file, line, limit and how to raise it; a column map sets
them per table (docs/column_map.md). A forced ``encoding:`` that does not fit the
bytes is an error naming the line and the encoding that fits, never U+FFFD.

Example
-------
>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "a.csv"
>>> _ = p.write_bytes("id;name\\n007;Zoë\\n".encode("cp1252"))
>>> frame = read_file(p)
>>> frame.data.to_dict("list"), frame.encoding, frame.delimiter
({'id': ['007'], 'name': ['Zoë']}, 'cp1252', ';')
"""
from __future__ import annotations

import codecs
import csv
import io
import json
import re
import sys
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .errors import CleanError

DELIMITERS = (",", ";", "\t", "|")
FIRST_DATA_ROW = 1

MiB = 1 << 20
#: The reader's limits (the one place their defaults live; docs/column_map.md, docs/cleaning.md).
#: A column map overrides them per table or under ``defaults:`` (sizes as bytes or "64 MiB").
LIMITS: dict[str, int] = {
    # one value (a cell) as written in the file: a bigger one stops the file with a CleanError
    # (a 10 MB HTML e-mail body still fits); a quoted value that grows past it over several
    # lines is taken for a stray quote instead (see max_record_lines)
    "max_field_bytes": 16 * MiB,
    # physical lines one record may span through quoted line breaks (addresses, notes): a
    # quote still open after that is a stray quote: its line goes to the ledger as
    # `unbalanced_quote` and reading resumes on the next line
    "max_record_lines": 50,
    # columns of the header
    "max_columns": 10_000,
    # the header line
    "max_header_bytes": 1 * MiB,
}
_SIZE_LIMITS = ("max_field_bytes", "max_header_bytes")
_SIZE = re.compile(r"(?i)^\s*(\d+(?:\.\d+)?)\s*(b|bytes?|k|kb|kib|m|mb|mib|g|gb|gib)?\s*$")
_UNITS = {"": 1, "b": 1, "byte": 1, "bytes": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
          "m": MiB, "mb": MiB, "mib": MiB, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30}


def format_size(n: int) -> str:
    """``16 MiB``, ``512 KiB``, ``1,000 bytes``: a limit as a column map would write it."""
    for unit, size in (("GiB", 1 << 30), ("MiB", MiB), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n:,} bytes"


def check_limits(values: Mapping | None, origin: str = "read_file") -> dict[str, int]:
    """:data:`LIMITS` with the ones given in ``values`` (other keys are ignored), checked:
    positive whole numbers; sizes may carry a unit (``64 MiB``, ``512KB``; KB/MB = KiB/MiB).
    Raises :class:`CleanError` naming ``origin`` and the key."""
    out = dict(LIMITS)
    for key in LIMITS:
        v = (values or {}).get(key)
        if v is None:
            continue
        n = None
        if isinstance(v, bool):
            n = None
        elif isinstance(v, int):
            n = v
        elif isinstance(v, float) and v.is_integer():
            n = int(v)
        elif isinstance(v, str) and key in _SIZE_LIMITS and (m := _SIZE.match(v)):
            n = int(float(m.group(1)) * _UNITS[(m.group(2) or "").lower()])
        elif isinstance(v, str) and v.strip().replace("_", "").replace(",", "").isdigit():
            n = int(v.strip().replace("_", "").replace(",", ""))
        if n is None or n < 1:
            example = "64 MiB" if key in _SIZE_LIMITS else str(LIMITS[key] * 2)
            raise CleanError(f"{origin}: `{key}` = {str(v)[:40]!r} is not a positive "
                             f"{'size' if key in _SIZE_LIMITS else 'whole number'} (e.g. `{key}: {example}`; "
                             f"default {format_size(LIMITS[key]) if key in _SIZE_LIMITS else LIMITS[key]}).")
        out[key] = n
    return out


@dataclass
class RawFrame:
    """One raw export file (or any raw table) as strings.

    Attributes
    ----------
    source_file : name shown in the ledger (file name relative to the raw folder)
    data : DataFrame of raw strings (object or string dtype); "" or null = missing
    source_row : row number of each record in the source (default 1..n)
    malformed : records set aside while reading, as :class:`Damaged` tuples
        ``(source_row, raw, detail, code, line, lines)`` (ragged rows: ``malformed_row``;
        the line of a stray quote: ``unbalanced_quote``)
    lines, record_lines, blank_lines : physical lines below the header in the file, the
        lines spanned by the records in ``data``, and the blank ones; ``lines ==
        record_lines + sum(m.lines for m in malformed) + blank_lines`` (checked by the
        cleaner). ``lines`` is None for frames not read from a file.
    """
    source_file: str
    data: pd.DataFrame
    source_row: np.ndarray | None = None
    encoding: str = "utf-8"
    delimiter: str = ","
    malformed: list = field(default_factory=list)  # Damaged records (ragged rows, stray-quote lines)
    lines: int | None = None
    record_lines: int | None = None
    blank_lines: int = 0

    def __post_init__(self):
        if self.source_row is None:
            self.source_row = np.arange(FIRST_DATA_ROW, FIRST_DATA_ROW + len(self.data), dtype=np.int64)
        self.source_row = np.asarray(self.source_row, dtype=np.int64)
        if len(self.source_row) != len(self.data):
            raise ValueError(f"RawFrame {self.source_file}: {len(self.data)} rows but "
                             f"{len(self.source_row)} source_row numbers")

    @property
    def lines_accounted(self) -> int | None:
        """Physical lines the reader accounted for (records kept, records set aside, blank
        lines); equal to ``lines`` when no line was lost. None when not read from a file."""
        if self.lines is None or self.record_lines is None:
            return None
        return self.record_lines + sum(int(getattr(m, "lines", 1)) for m in self.malformed) + self.blank_lines


class Damaged(NamedTuple):
    """A record set aside while reading (goes to the rejects ledger): its row number, its raw
    text as JSON (the fields of a ragged record; the line itself for a stray quote), the
    detail of the reason, the reason code, the file line it starts on and the physical
    lines it spans. A tuple: ``m[0]``, ``m[1]``, ``m[2]`` are row, raw and detail."""
    source_row: int
    raw: str
    detail: str
    code: str = "malformed_row"
    line: int | None = None
    lines: int = 1


def detect_encoding(raw: bytes, encoding: str = "auto") -> str:
    """``auto``: UTF-8 BOM -> utf-8-sig, UTF-16 BOM -> utf-16, valid UTF-8 -> utf-8,
    else cp1252 (latin-1 when the bytes are not valid cp1252)."""
    encoding = (encoding or "auto").lower()
    if encoding != "auto":
        return encoding
    if raw.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    head = raw[:4096]
    if len(head) >= 4 and head.count(0) >= len(head) // 3:  # every other byte NUL: UTF-16 without BOM
        if head[1::2].count(0) > len(head[1::2]) * 0.6:
            return "utf-16-le"
        if head[0::2].count(0) > len(head[0::2]) * 0.6:
            return "utf-16-be"
    if _first_bad(raw, "utf-8") is None:
        return "utf-8"
    if _first_bad(raw, "cp1252") is None:
        return "cp1252"
    return "latin-1"


_CHUNK = 16 * MiB


def _pieces(raw: bytes, enc: str):
    """``(offset, piece)`` of ``raw`` in pieces of about 16 MiB cut between characters (never
    inside a UTF-8 sequence), as memoryviews: decoding them one by one holds one piece's
    text at a time instead of the whole file's (single-byte encodings and UTF-8 only)."""
    view, n, i = memoryview(raw), len(raw), 0
    utf8 = enc.replace("_", "-").startswith(("utf-8", "utf8"))
    while i < n:
        cut = min(i + _CHUNK, n)
        if utf8:
            while cut < n and cut > i and (raw[cut] & 0xC0) == 0x80:  # a continuation byte: back up
                cut -= 1
        yield i, view[i:cut]
        i = cut


def _first_bad(raw: bytes, enc: str) -> tuple[int, bytes] | None:
    """Offset and bytes of the first sequence ``raw`` cannot be decoded from as ``enc``
    (None: it decodes), reading piece by piece."""
    for off, piece in _pieces(raw, enc):
        try:
            str(piece, enc)
        except UnicodeDecodeError as exc:
            return off + exc.start, bytes(piece[exc.start:exc.end])
    return None


def _line_at(data: bytes, offset: int) -> int:
    """File line number (1 = the first line) of byte ``offset``; CR, LF and CRLF end a line."""
    return data.count(b"\n", 0, offset) + data.count(b"\r", 0, offset) - data.count(b"\r\n", 0, offset) + 1


def _count_lines(data: bytes) -> int:
    """Physical lines of ``data`` (CR, LF and CRLF end a line; a last line without an end counts)."""
    a = np.frombuffer(data, np.uint8)  # no copy; counted a piece at a time (bytes.count is slower)
    has_cr = b"\r" in data
    breaks = 0
    for i in range(0, len(a), _CHUNK):
        piece = a[i:i + _CHUNK]
        breaks += int(np.count_nonzero(piece == 10))
        if has_cr:
            cr = piece == 13
            after = a[i + 1:i + 1 + _CHUNK]
            breaks += int(np.count_nonzero(cr)) - int(np.count_nonzero(cr[:len(after)] & (after == 10)))
    return breaks + (1 if data and data[-1:] not in (b"\n", b"\r") else 0)


def _transcode(path: Path, raw: bytes, enc: str, forced: bool) -> bytes:
    """``raw`` decoded as ``enc`` (strictly: no replacement characters) and encoded as UTF-8,
    piece by piece for UTF-8 and single-byte encodings (UTF-8 itself is only validated, not
    copied); a :class:`CleanError` naming the line and the encoding that fits when a byte
    does not decode."""
    name = codecs.lookup(enc).name
    if name in ("utf-8", "utf-8-sig"):
        bad = _first_bad(raw, "utf-8")
        if bad is None:
            return raw
        _refuse_encoding(path, raw, enc, bad, forced)
    if not name.startswith(("cp", "iso8859", "latin", "mac", "windows")):  # multi-byte (utf-16): at once
        try:
            return raw.decode(enc).encode("utf-8")
        except UnicodeDecodeError as exc:
            _refuse_encoding(path, raw, enc, (exc.start, raw[exc.start:exc.end]), forced)
    out = bytearray()
    for off, piece in _pieces(raw, enc):
        try:
            out += str(piece, enc).encode("utf-8")
        except UnicodeDecodeError as exc:
            _refuse_encoding(path, raw, enc, (off + exc.start, bytes(piece[exc.start:exc.end])), forced)
    return bytes(out)


def _fitting_encoding(raw: bytes) -> str:
    """The encoding ``auto`` would read ``raw`` with (``auto`` itself for glued UTF-8 + cp1252)."""
    enc = detect_encoding(raw, "auto")
    if enc in ("cp1252", "latin-1") and _has_utf8_sequences(raw):
        return "auto"
    return enc


def _refuse_encoding(path: Path, raw: bytes, enc: str, bad: tuple[int, bytes], forced: bool):
    off, seq = bad
    line = _line_at(raw, off) if not enc.startswith("utf-16") else None
    where = f"line {line}" if line is not None else f"byte offset {off:,}"
    fit = _fitting_encoding(raw)
    if forced:
        advice = (f"The column map forces `encoding: {enc}` for this file, and decoding it as {enc} would put "
                  f"replacement characters (U+FFFD) in place of its text. "
                  + (f"The file fits {fit}: set `encoding: {fit}` for this table in the column map (or "
                     "`encoding: auto`)." if fit not in (enc, "auto") else
                     "It mixes encodings (UTF-8 and cp1252 lines): set `encoding: auto` for this table in the "
                     "column map." if fit == "auto" else
                     "Set `encoding: auto` for this table in the column map, or re-export the file."))
    else:
        advice = ("Set `encoding:` for this table in the column map (utf-8, cp1252, latin-1, utf-16) or use "
                  "`auto`" + (f"; the bytes fit {fit}." if fit not in (enc, "auto") else "."))
    raise CleanError(f"{path}: cannot decode as {enc}: {where} holds byte(s) {seq.hex(' ')} that are not valid "
                     f"{enc}. {advice}")


_BINARY_SIGNATURES = {b"PK\x03\x04": "an Excel workbook (.xlsx) or another zip archive",
                      b"\xd0\xcf\x11\xe0": "an old Excel workbook (.xls)",
                      b"\x89PNG": "a PNG image", b"%PDF": "a PDF document", b"\x1f\x8b": "a gzip archive"}


def _check_text(path: Path, raw: bytes) -> None:
    """Stop early, with the fix, when a '.csv' is not text at all."""
    for sig, what in _BINARY_SIGNATURES.items():
        if raw.startswith(sig):
            excel = "Excel" in what
            raise CleanError(f"{path}: this is {what}, not a CSV text file (binary content). "
                             + ("Open it in Excel and use File > Save As > CSV UTF-8, then export again."
                                if excel else "Export the table as CSV."))
    head = raw[:8192]
    control = sum(head.count(bytes([b])) for b in range(32) if b not in (9, 10, 13))
    if head and control > len(head) * 0.1:
        raise CleanError(f"{path}: binary content ({control} control bytes in the first {len(head)}), not a CSV "
                         "text file. Export the table as CSV.")


_UTF8_MULTIBYTE = __import__("re").compile(rb"[\xc2-\xf4][\x80-\xbf]+")


def _has_utf8_sequences(raw: bytes) -> bool:
    """Does a non-UTF-8 file also contain valid UTF-8 multi-byte sequences (Ã©-style
    pairs)? Then it is two encodings glued together."""
    return bool(_UTF8_MULTIBYTE.search(raw))


def _decode_mixed(raw: bytes) -> str:
    """Line by line, UTF-8 where a line is valid UTF-8 and cp1252 otherwise: two
    exports glued together keep both spellings of 'Zoë'."""
    out = []
    for line in raw.splitlines(keepends=True):
        try:
            out.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            try:
                out.append(line.decode("cp1252"))
            except UnicodeDecodeError:
                out.append(line.decode("latin-1"))
    return "".join(out)


#: the first record: unquoted text and "quoted" runs (which may hold line breaks) up to a line break
_FIRST_RECORD = re.compile(r'[^"\r\n]*+(?:"[^"]*+"[^"\r\n]*+)*+')


def _header_line(text: str) -> tuple[str, bool]:
    """The first record's text (a header may contain quoted line breaks; a lone CR ends a
    line too, as for both parsers) and whether its end was found in ``text`` (False: no
    line break, or a quote still open, before the end of ``text``)."""
    end = _FIRST_RECORD.match(text).end()
    if end < len(text) and text[end] in "\r\n":
        return text[:end], True
    return text, False


def _outside_quotes(text: str, ch: str) -> int:
    """How often ``ch`` occurs outside double-quoted runs of ``text``."""
    return sum(part.count(ch) for part in text.split('"')[::2])


def sniff_delimiter(header: str, delimiter: str = "auto") -> str:
    """The candidate (``, ; tab |``) occurring most often outside quotes in the header."""
    if delimiter and delimiter != "auto":
        return "\t" if delimiter in ("\\t", "tab") else delimiter
    counts = {d: _outside_quotes(header, d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: (counts[d], -DELIMITERS.index(d)))
    return best if counts[best] else ","


_HEADER_JUNK = " \t\r\n\ufeff\u200b\u200c\u200d\u2060\u00a0"


def _dedupe(names: list[str]) -> list[str]:
    """Header names stripped of spaces, BOMs and zero-width characters (glued
    files), duplicates numbered like pandas (``Name.1``)."""
    seen: dict[str, int] = {}
    out = []
    for i, n in enumerate(names):
        n = n.strip(_HEADER_JUNK).replace("\ufeff", "").replace("\u200b", "")
        if not n:  # an empty header cell (stray delimiter): named like pandas does
            n = f"Unnamed: {i}"
        if n in seen:
            seen[n] += 1
            out.append(f"{n}.{seen[n]}")
        else:
            seen[n] = 0
            out.append(n)
    return out


def read_file(path: str | Path, *, encoding: str = "auto", delimiter: str = "auto",
              source_file: str | None = None, limits: Mapping | None = None,
              header_only: bool = False) -> RawFrame:
    """Read one CSV export as strings.

    Raises :class:`CleanError` for an empty file or one without a header, for a forced
    ``encoding`` the bytes do not fit (naming the line and the encoding that fits), and
    when a limit of ``limits`` (defaults :data:`LIMITS`) is passed: a value over
    ``max_field_bytes``, a header over ``max_header_bytes`` or ``max_columns``. Ragged
    records (wrong number of fields) and the lines of stray quotes (a record still open
    after ``max_record_lines`` lines) are returned in ``RawFrame.malformed``.

    ``header_only=True`` is the cheap pre-flight: every whole-file check above (encoding,
    header, limits, a value over ``max_field_bytes`` without delimiters) but no record is
    parsed; the frame has the columns and no rows.
    """
    lim = check_limits(limits)
    path = Path(path)
    name = source_file or path.name
    raw = path.read_bytes()
    if len(raw) < 65536 and not raw.strip().strip(codecs.BOM_UTF8) or not raw[:65536].strip(b" \t\r\n\xef\xbb\xbf") \
            and not raw.strip().strip(codecs.BOM_UTF8):
        raise CleanError(f"{path}: the file is empty (no header, no rows). Re-export it, or remove it "
                         "from the column map's `file:` list.")
    forced = (encoding or "auto").lower() != "auto"
    enc = detect_encoding(raw, encoding)
    if not enc.startswith("utf-16"):
        _check_text(path, raw)
    # the bytes pyarrow and the exact reader read: UTF-8 (a UTF-8 file itself, not a copy)
    try:
        if enc == "utf-8" and not forced:
            data = raw  # validated by detect_encoding
        elif enc in ("cp1252", "latin-1") and not forced and _has_utf8_sequences(raw):
            data, enc = _decode_mixed(raw).encode("utf-8"), "utf-8+cp1252"
        else:
            data = _transcode(path, raw, enc, forced)
    except LookupError as exc:
        raise CleanError(f"{path}: cannot decode as {enc} ({exc}). Set `encoding:` for this table in "
                         "the column map (utf-8, cp1252, latin-1, utf-16) or use `auto`.") from None
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    head = data[:1_000_000]
    if b"\r" in head and b"\n" not in head:  # classic Mac line endings
        data = data.replace(b"\r", b"\n")
    header_text, header_lines, delim = _read_header(path, data, delimiter, lim)
    try:
        with _field_limit(lim["max_header_bytes"]):
            header = next(csv.reader([header_text.rstrip("\r")], delimiter=delim), [])
    except csv.Error as exc:
        raise CleanError(f"{path}: the header line cannot be read as CSV ({exc}). Check its quoting, "
                         "or re-export the file.") from None
    if not any(h.strip(_HEADER_JUNK) for h in header):
        raise CleanError(f"{path}: the first line holds no column names. The file needs a header row.")
    if len(header) > lim["max_columns"]:
        raise _too_many_columns(path, len(header), lim, exact=True)
    names = _dedupe(header)
    _refuse_huge_value(path, data, delim, lim)
    if header_only:
        return RawFrame(name, pd.DataFrame({n: pd.Series([], dtype=object) for n in names}), encoding=enc,
                        delimiter=delim)
    lines = _count_lines(data) - header_lines
    # without any quote character there can be no quoted line break: parse in parallel blocks
    # blocks no bigger than max_field_bytes: a record over the limit stops pyarrow at once
    table = _read_arrow(data, names, delim, newlines_in_values=b'"' in data,
                        block_size=min(16 * MiB, max(MiB, lim["max_field_bytes"])))
    checked = _check_arrow(table, data, lines, lim, delim, names) if table is not None else None
    if checked is None:  # ragged rows, a stray quote, a value over a limit: the exact reader decides
        if table is not None:  # give pyarrow's copy back before the exact reader runs
            table = None
            pa.default_memory_pool().release_unused()
        return _read_python(path, data, names, delim, name, enc, lim, header_lines, lines)
    record_lines, blank = checked
    frame = pd.DataFrame({n: pd.Series(pd.arrays.ArrowExtensionArray(table.column(i)))
                          for i, n in enumerate(names)}) if table.num_rows or names else pd.DataFrame()
    return RawFrame(name, frame, encoding=enc, delimiter=delim, lines=lines, record_lines=record_lines,
                    blank_lines=blank)


def _read_header(path: Path, data: bytes, delimiter: str, lim: dict) -> tuple[str, int, str]:
    """The header's text, the physical lines it spans and the delimiter; a CleanError
    when it does not end within ``max_header_bytes`` (or has more than ``max_columns``)."""
    limit = lim["max_header_bytes"]
    text, complete = _header_line(data[:limit + 1].decode("utf-8", errors="ignore"))
    delim = sniff_delimiter(text, delimiter)
    if not complete and len(data) > limit:
        columns = _outside_quotes(text, delim) + 1
        if columns > lim["max_columns"]:
            raise _too_many_columns(path, columns, lim, exact=False)
        if _FIRST_RECORD.match(text).end() < len(text):  # stopped at a quote that never closes
            raise CleanError(f"{path}: the header line cannot be read as CSV: a quote in it is still open after "
                             f"max_header_bytes ({format_size(limit)}). Check its quoting, or re-export the file.")
        raise CleanError(
            f"{path}: line 1 (the header) is longer than max_header_bytes = {format_size(limit)} (at least "
            f"{columns:,} columns with delimiter {delim!r}). If the header really is that long, raise "
            f"`max_header_bytes:` for this table in the column map (e.g. `max_header_bytes: "
            f"{format_size(limit * 4)}`; docs/column_map.md); otherwise the file is not a CSV export with a "
            "header row.")
    lines = 1 + text.count("\n") + text.count("\r") - text.count("\r\n")
    return text, lines, delim


def _too_many_columns(path: Path, columns: int, lim: dict, exact: bool) -> CleanError:
    limit = lim["max_columns"]
    return CleanError(
        f"{path}: line 1 (the header) has {'' if exact else 'at least '}{columns:,} columns, more than "
        f"max_columns = {limit:,}. If the export really is that wide, raise `max_columns:` for this table in "
        f"the column map (e.g. `max_columns: {max(limit * 2, columns + 1)}`; docs/column_map.md); otherwise "
        "check the delimiter (`delimiter:`) or re-export the file.")


def _refuse_huge_value(path: Path, data: bytes, delim: str, lim: dict) -> None:
    """Stop, before any parsing, when a run of more than ``max_field_bytes`` bytes holds no
    delimiter and no line break: it lies inside one value, which is over the limit.

    Cheap and bounded: one ``find`` per half-limit window of the file (C speed, no copy);
    only a window without a separator is measured. Values over the limit that contain
    delimiters or line breaks are caught by the readers themselves."""
    limit = lim["max_field_bytes"]
    n = len(data)
    if n <= limit:
        return
    half = max(limit // 2, 1)
    seps = (b"\n", b"\r", delim.encode("utf-8"))
    k = 0
    while k < n:
        end = min(k + half, n)
        if any(data.find(s, k, end) >= 0 for s in seps):
            k = end
            continue
        start = max(data.rfind(s, 0, k) for s in seps) + 1
        stop = min((i for i in (data.find(s, end) for s in seps) if i >= 0), default=n)
        if stop - start > limit:
            raise CleanError(
                f"{path}: line {_line_at(data, start)} holds a value of {stop - start:,} bytes, more than "
                f"max_field_bytes = {format_size(limit)}. A value that large is not a CRM field: check that the "
                f"file is a CSV export and its delimiter ({delim!r}). If the value is genuine, raise "
                f"`max_field_bytes:` for this table in the column map (e.g. `max_field_bytes: "
                f"{format_size(_round_up(stop - start))}`; docs/column_map.md).")
        k = max(stop, end)


def _round_up(n: int) -> int:
    """A MiB multiple above ``n`` (for the advice in messages)."""
    return (n // MiB + 1) * MiB


_EMPTY_LINE = re.compile(rb"(?:\r\n|\r|\n)(?=\r\n|\r|\n)")


def _long_values_ok(table: pa.Table, per_record, max_lines: int, delim: str, names: list[str]) -> bool:
    """Are the records of pyarrow's table spanning more than ``max_lines`` lines all long
    multi-line values (notes), none a stray quote that swallowed records? (At most 100 of
    them are looked at; more go to the exact reader.)"""
    long_rows = np.flatnonzero(np.asarray(per_record.to_numpy(zero_copy_only=False)) + 1 > max_lines)
    if len(long_rows) > 100:
        return False
    for r in long_rows:
        values = [table.column(j)[int(r)].as_py() or "" for j in range(table.num_columns)]
        value = max(values, key=lambda v: v.count("\n") + v.count("\r"))
        swallowed = value.replace("\r\n", "\n").replace("\r", "\n").split("\n")[1:max_lines]
        if _looks_like_records([ln + "\n" for ln in swallowed], delim, names):
            return False
    return True


def _check_arrow(table: pa.Table, data: bytes, lines: int, lim: dict, delim: str,
                 names: list[str]) -> tuple[int, int] | None:
    """``(record_lines, blank_lines)`` of pyarrow's records, or None when the exact reader
    must decide: a value over ``max_field_bytes``, a record spanning more than
    ``max_record_lines`` physical lines whose lines read as records (a stray quote that
    swallowed the lines after it), or line counts that do not add up (every line is a
    record's, or blank)."""
    n = table.num_rows
    extra = 0
    if n:
        for col in table.columns:
            longest = pc.max(pc.binary_length(col)).as_py()
            if longest is not None and longest > lim["max_field_bytes"]:
                return None
        if lines != n:  # line breaks inside values, or blank lines
            per_record = None
            for col in table.columns:
                brk = pc.subtract(pc.add(pc.count_substring(col, "\n"), pc.count_substring(col, "\r")),
                                  pc.count_substring(col, "\r\n"))
                per_record = brk if per_record is None else pc.add(per_record, brk)
            if per_record is not None:
                if pc.max(per_record).as_py() + 1 > lim["max_record_lines"] and not _long_values_ok(
                        table, per_record, lim["max_record_lines"], delim, names):
                    return None
                extra = int(pc.sum(per_record).as_py())
    blank = lines - n - extra
    if blank < 0 or (blank > 0 and blank > len(_EMPTY_LINE.findall(data))):
        return None
    return n + extra, blank


def _read_arrow(data: bytes, names: list[str], delim: str, newlines_in_values: bool = True,
                block_size: int = 16 * MiB) -> pa.Table | None:
    """pyarrow's table of strings, or None when it cannot read every record (ragged rows,
    a record over its 16 MiB block, ...)."""
    bad = []

    def handler(row):
        bad.append(row)
        return "skip"

    # pyarrow's worker threads hold the bytes and the row handler (Python objects) while they
    # read, and may let go of them only after read_csv has returned (raised, or even
    # succeeded). Were the interpreter to exit before (a CleanError stopping the run right
    # after), a worker taking the GIL to release them aborts the process ("terminate called
    # without an active exception", exit code 134) or hangs it (apache/arrow#43892): wait
    # until both are back to the references held before the read (milliseconds; at most 5 s).
    held = (sys.getrefcount(data), sys.getrefcount(handler))
    source = pa.BufferReader(data)
    parse = pacsv.ParseOptions(delimiter=delim, newlines_in_values=newlines_in_values,
                               invalid_row_handler=handler)
    try:
        table = pacsv.read_csv(
            source,
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=block_size),
            parse_options=parse,
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names}, null_values=[],
                strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
    except pa.ArrowInvalid:
        table = None
    del source, parse
    deadline = time.monotonic() + 5
    while ((sys.getrefcount(data) > held[0] or sys.getrefcount(handler) > held[1])
           and time.monotonic() < deadline):
        time.sleep(0.002)
    if table is None:
        return None
    if bad:
        return None
    return table


@contextmanager
def _field_limit(limit: int):
    """Let Python's csv module read fields up to ``limit`` characters (its default is
    128 KB), restoring the caller's limit afterwards."""
    old = csv.field_size_limit()
    csv.field_size_limit(max(int(limit), 1))
    try:
        yield
    finally:
        csv.field_size_limit(old)


class _StillOpen(Exception):
    """Raised by the line feed of the exact reader: the record asks for one line more than
    ``max_record_lines`` and the lines it swallowed read as records (a stray quote)."""


def _fits(rec: list[str], names: list[str]) -> bool:
    """Does a record have the header's width (up to the harmless differences the exact
    reader accepts: trailing empty fields, missing trailing unnamed columns)?"""
    width = len(names)
    return (len(rec) == width or len(rec) > width and not any(v.strip() for v in rec[width:])
            or len(rec) < width and all(names[j].startswith("Unnamed: ") for j in range(len(rec), width)))


def _looks_like_records(lines: list[str], delim: str, names: list[str]) -> bool:
    """Do most of the lines a still-open quote swallowed read, each on its own, as records
    of the header's width? Then the quote is a stray one (an export line with an unmatched
    quote); otherwise the lines are the text of a long multi-line value (notes)."""
    full = [ln for ln in lines if ln.strip()]
    ok = 0
    for ln in full:
        try:
            rec = next(csv.reader([ln.rstrip("\r\n")], delimiter=delim), [])
        except csv.Error:
            continue
        ok += _fits(rec, names)
    return bool(full) and ok * 2 > len(full)


_LINE_END = re.compile(rb"\r\n?|\n")
_LINE_TEXT = re.compile(r"[^\r\n]*+(?:\r\n|\r|\n)?")
_BLOCK = 1 * MiB


def _physical_lines(data: bytes, pos: int = 0):
    """The physical lines of ``data`` from byte ``pos`` (CR, LF or CRLF ends one, kept, as
    both readers split them), decoded about 1 MiB at a time: never the file as one text. A
    long line is decoded on its own (no copy beyond that line's text)."""
    n, view = len(data), memoryview(data)
    while pos < n:
        end = data.find(b"\n", min(pos + _BLOCK, n) - 1)
        end = n if end < 0 else end + 1
        text = str(view[pos:end], "utf-8")
        if end - pos <= 4 * _BLOCK:
            yield from io.StringIO(text, newline="")  # split in C (its buffer: 4 bytes a character)
        elif "\r" not in text and text.find("\n") in (-1, len(text) - 1):
            yield text                                 # one long line: as it is
        else:
            yield from (m.group() for m in _LINE_TEXT.finditer(text) if m.end() > m.start())
        pos = end


def _read_python(path: Path, data: bytes, names: list[str], delim: str, source: str, enc: str, lim: dict,
                 header_lines: int, lines: int) -> RawFrame:
    """Slow exact path: csv.reader over the physical lines, ragged records and stray-quote
    lines kept aside with their row and line numbers."""
    with _field_limit(lim["max_field_bytes"]):
        return _read_python_records(path, data, names, delim, source, enc, lim, header_lines, lines)


def _read_python_records(path: Path, data: bytes, names: list[str], delim: str, source: str, enc: str,
                         lim: dict, header_lines: int, lines: int) -> RawFrame:
    max_lines, max_bytes = lim["max_record_lines"], lim["max_field_bytes"]
    pos = 0
    for _ in range(header_lines):
        m = _LINE_END.search(data, pos)
        pos = len(data) if m is None else m.end()
    physical = _physical_lines(data, pos)
    pending: deque[str] = deque()  # lines to read again after a stray quote was set aside
    taken: list[str] = []          # the physical lines of the record being read
    long_value = [False]           # the record was judged a long multi-line value: read on

    def feed():
        while True:
            if len(taken) >= max_lines and not long_value[0]:
                if _looks_like_records(taken[1:], delim, names):
                    raise _StillOpen
                long_value[0] = True  # notes over many lines: bounded by max_field_bytes instead
            line = pending.popleft() if pending else next(physical, "")
            if not line:
                return
            taken.append(line)
            yield line

    width = len(names)
    rows, numbers, malformed = [], [], []
    i = FIRST_DATA_ROW - 1
    line_no = header_lines              # file lines consumed so far
    record_lines = blank = 0
    reader = csv.reader(feed(), delimiter=delim)
    while True:
        taken.clear()
        long_value[0] = False
        try:
            rec = next(reader)
        except StopIteration:
            break
        except (_StillOpen, csv.Error) as exc:
            too_big = isinstance(exc, csv.Error) and "field larger than field limit" in str(exc)
            if isinstance(exc, csv.Error) and not too_big:
                raise CleanError(f"{path}: line {line_no + len(taken)} cannot be read as CSV ({exc}). Check the "
                                 "quoting around that line, or re-export the file.") from None
            if too_big and (len(taken) <= 1 or long_value[0]
                            or not _looks_like_records(taken[1:], delim, names)):
                span = f" (a quoted value over {len(taken)} lines so far)" if len(taken) > 1 else ""
                raise CleanError(
                    f"{path}: line {line_no + 1} holds a value of more than max_field_bytes = "
                    f"{format_size(max_bytes)}{span}. A value that large is not a CRM field: check the file's "
                    f"quoting and delimiter ({delim!r}). If the value is genuine, raise `max_field_bytes:` for "
                    "this table in the column map (docs/column_map.md).") from None
            # a quote opened in the record's first line is still open after max_record_lines lines (or
            # after max_field_bytes over several lines): a stray quote. Set that line aside, read on from
            # the next one.
            i += 1
            line_no += 1
            first = taken[0]
            why = (f"still open after {len(taken)} lines" if not too_big else
                   f"still open after {format_size(max_bytes)} over {len(taken)} lines")
            malformed.append(Damaged(
                i, json.dumps(first.rstrip("\r\n"), ensure_ascii=False),
                f"line {line_no}: a quote opened on this line is {why} (max_record_lines = {max_lines}); "
                f"the line is set aside and reading resumed at line {line_no + 1}",
                "unbalanced_quote", line_no, 1))
            pending.extendleft(reversed(taken[1:]))
            reader = csv.reader(feed(), delimiter=delim)
            continue
        start, n_lines = line_no + 1, len(taken)
        line_no += n_lines
        if not rec:  # a blank line is not a record (the fast reader skips them too)
            blank += n_lines
            continue
        i += 1
        if len(rec) != width:
            if len(rec) > width and not any(v.strip() for v in rec[width:]):
                rec = rec[:width]  # trailing empty fields (an extra delimiter): harmless
            elif len(rec) < width and all(names[j].startswith("Unnamed: ") for j in range(len(rec), width)):
                rec = rec + [""] * (width - len(rec))  # only trailing unnamed columns missing
            else:
                malformed.append(Damaged(i, json.dumps(rec, ensure_ascii=False),
                                         f"{len(rec)} fields, header has {width}", "malformed_row",
                                         start, n_lines))
                continue
        rows.append(rec)
        numbers.append(i)
        record_lines += n_lines
    data = pd.DataFrame(rows, columns=names, dtype=object) if rows else pd.DataFrame(
        {n: pd.Series([], dtype=object) for n in names})
    return RawFrame(source, data, np.asarray(numbers, dtype=np.int64), encoding=enc, delimiter=delim,
                    malformed=malformed, lines=lines, record_lines=record_lines, blank_lines=blank)
