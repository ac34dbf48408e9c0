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
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from .errors import CleanError

DELIMITERS = (",", ";", "\t", "|")
FIRST_DATA_ROW = 1


@dataclass
class RawFrame:
    """One raw export file (or any raw table) as strings.

    Attributes
    ----------
    source_file : name shown in the ledger (file name relative to the raw folder)
    data : DataFrame of raw strings (object or string dtype); "" or null = missing
    source_row : row number of each record in the source (default 1..n)
    """
    source_file: str
    data: pd.DataFrame
    source_row: np.ndarray | None = None
    encoding: str = "utf-8"
    delimiter: str = ","
    malformed: list = field(default_factory=list)  # (source_row, raw text, detail) of ragged rows

    def __post_init__(self):
        if self.source_row is None:
            self.source_row = np.arange(FIRST_DATA_ROW, FIRST_DATA_ROW + len(self.data), dtype=np.int64)
        self.source_row = np.asarray(self.source_row, dtype=np.int64)
        if len(self.source_row) != len(self.data):
            raise ValueError(f"RawFrame {self.source_file}: {len(self.data)} rows but "
                             f"{len(self.source_row)} source_row numbers")


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
    try:
        raw.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        raw.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


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


def _header_line(text: str) -> str:
    """The first record's text (a header may contain quoted line breaks)."""
    quoted, i, n = False, 0, len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            quoted = not quoted
        elif ch in "\r\n" and not quoted:  # a lone CR ends a line too (as for both parsers)
            return text[:i]
        i += 1
        if i > 1_000_000:
            break
    return text[:i]


def sniff_delimiter(header: str, delimiter: str = "auto") -> str:
    """The candidate (``, ; tab |``) occurring most often outside quotes in the header."""
    if delimiter and delimiter != "auto":
        return "\t" if delimiter in ("\\t", "tab") else delimiter
    counts, quoted = dict.fromkeys(DELIMITERS, 0), False
    for ch in header:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
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
              source_file: str | None = None) -> RawFrame:
    """Read one CSV export as strings.

    Raises :class:`CleanError` for an empty file or one without a header. Ragged
    records (wrong number of fields) are returned in ``RawFrame.malformed``.
    """
    path = Path(path)
    name = source_file or path.name
    raw = path.read_bytes()
    if len(raw) < 65536 and not raw.strip().strip(codecs.BOM_UTF8) or not raw[:65536].strip(b" \t\r\n\xef\xbb\xbf") \
            and not raw.strip().strip(codecs.BOM_UTF8):
        raise CleanError(f"{path}: the file is empty (no header, no rows). Re-export it, or remove it "
                         "from the column map's `file:` list.")
    enc = detect_encoding(raw, encoding)
    if not enc.startswith("utf-16"):
        _check_text(path, raw)
    # the bytes pyarrow reads (UTF-8) and the text the header / slow path read
    try:
        if enc == "utf-8":
            data, text = raw, None   # validated by detect_encoding; decoded only if needed
        elif enc in ("cp1252", "latin-1") and (encoding or "auto").lower() == "auto" and _has_utf8_sequences(raw):
            text, enc = _decode_mixed(raw), "utf-8+cp1252"
            data = text.encode("utf-8")
        else:
            text = raw.decode(enc)
            data = text.encode("utf-8")
    except (UnicodeDecodeError, LookupError) as exc:
        raise CleanError(f"{path}: cannot decode as {enc} ({exc}). Set `encoding:` for this table in "
                         "the column map (utf-8, cp1252, latin-1, utf-16) or use `auto`.") from None
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    head = data[:1_000_000]
    if b"\r" in head and b"\n" not in head:  # classic Mac line endings
        data, text = data.replace(b"\r", b"\n"), None
    header_text = _header_line(data[:2_000_000].decode("utf-8", errors="ignore"))
    delim = sniff_delimiter(header_text, delimiter)
    try:
        with _big_fields():
            header = next(csv.reader([header_text.rstrip("\r")], delimiter=delim), [])
    except csv.Error as exc:
        raise CleanError(f"{path}: the header line cannot be read as CSV ({exc}). Check its quoting, "
                         "or re-export the file.") from None
    if not any(h.strip(_HEADER_JUNK) for h in header):
        raise CleanError(f"{path}: the first line holds no column names. The file needs a header row.")
    names = _dedupe(header)
    # without any quote character there can be no quoted line break: parse in parallel blocks
    frame = _read_arrow(data, names, delim, newlines_in_values=b'"' in data)
    if frame is None:
        return _read_python(data.decode("utf-8", errors="replace"), names, delim, name, enc)
    return RawFrame(name, frame, encoding=enc, delimiter=delim)


def _records(reader, source: str):
    """csv.reader's records; a csv.Error (which the reader cannot resume after) becomes
    a CleanError naming the file and line."""
    while True:
        try:
            rec = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise CleanError(f"{source}: line {reader.line_num} cannot be read as CSV ({exc}). Check the "
                             "quoting around that line, or re-export the file.") from None
        yield rec


def _read_arrow(data: bytes, names: list[str], delim: str, newlines_in_values: bool = True) -> pd.DataFrame | None:
    bad = []

    def handler(row):
        bad.append(row)
        return "skip"

    try:
        table = pacsv.read_csv(
            pa.BufferReader(data),
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter=delim, newlines_in_values=newlines_in_values,
                                             invalid_row_handler=handler),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names}, null_values=[],
                strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
    except pa.ArrowInvalid:
        return None
    if bad:
        return None
    return pd.DataFrame({n: pd.Series(pd.arrays.ArrowExtensionArray(table.column(i)))
                         for i, n in enumerate(names)}) if table.num_rows or names else pd.DataFrame()


@contextmanager
def _big_fields():
    """Let Python's csv module read fields of any size (its default limit is 128 KB;
    pyarrow, the fast path, has none), restoring the caller's limit afterwards."""
    old = csv.field_size_limit()
    csv.field_size_limit(2 ** 31 - 1)
    try:
        yield
    finally:
        csv.field_size_limit(old)


def _read_python(text: str, names: list[str], delim: str, source: str, enc: str) -> RawFrame:
    """Slow exact path: csv.reader, ragged records kept aside with their row number."""
    with _big_fields():
        return _read_python_records(text, names, delim, source, enc)


def _read_python_records(text: str, names: list[str], delim: str, source: str, enc: str) -> RawFrame:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim)
    try:
        next(reader, None)
    except csv.Error as exc:  # pragma: no cover - the header was read already
        raise CleanError(f"{source}: the header cannot be read as CSV ({exc}). Re-export the file.") from None
    width = len(names)
    rows, numbers, malformed = [], [], []
    i = FIRST_DATA_ROW - 1
    for rec in _records(reader, source):
        if not rec:  # a blank line is not a record (the fast reader skips them too)
            continue
        i += 1
        if len(rec) != width:
            if len(rec) > width and not any(v.strip() for v in rec[width:]):
                rec = rec[:width]  # trailing empty fields (an extra delimiter): harmless
            elif len(rec) < width and all(names[j].startswith("Unnamed: ") for j in range(len(rec), width)):
                rec = rec + [""] * (width - len(rec))  # only trailing unnamed columns missing
            else:
                malformed.append((i, json.dumps(rec, ensure_ascii=False),
                                  f"{len(rec)} fields, header has {width}"))
                continue
        rows.append(rec)
        numbers.append(i)
    data = pd.DataFrame(rows, columns=names, dtype=object) if rows else pd.DataFrame(
        {n: pd.Series([], dtype=object) for n in names})
    return RawFrame(source, data, np.asarray(numbers, dtype=np.int64), encoding=enc, delimiter=delim,
                    malformed=malformed)
