"""Vectorised parsers for raw strings.

Every parser works on the *distinct* values of a column (see :func:`encode`):
a million touches carry far fewer distinct labels, numbers and ids than rows,
and distinct timestamps are parsed by explicit formats in bulk, never one row at
a time. Each parser returns the parsed values per distinct value plus a mask of
the ones that failed; the caller maps them back to rows through the codes.

Example
-------
>>> import pandas as pd
>>> codes, uniq = encode(pd.Series([" 007 ", "", "007", "12.0", None]))
>>> codes.tolist(), uniq.tolist()
([0, -1, 0, 1, -1], ['007', '12.0'])
>>> normalise_ids(uniq).tolist()
['007', '12']
>>> parse_numbers(pd.Series(["1.234,50 €", "$1,234.50", "(12)", "abc"]).to_numpy(object))[0].tolist()
[1234.5, 1234.5, -12.0, nan]
>>> ts, bad = parse_timestamps(pd.Series(["2026-03-29T01:30:00Z", "03/29/2026 3:30 AM",
...                                        "2026-03-29"]).to_numpy(object), timezone="Europe/Berlin")
>>> pd.DatetimeIndex(ts, tz="UTC").strftime("%Y-%m-%d %H:%M").tolist()
['2026-03-29 01:30', '2026-03-29 01:30', '2026-03-28 23:00']
"""
from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..timeutil import NS_NAT  # NaT as int64 (the one definition)

#: spellings of "no value" in typed columns (ids, numbers, dates, booleans); text
#: columns keep them ("NA" can be a company name)
NULL_TOKENS = frozenset({"na", "n/a", "#n/a", "null", "none", "nan", "nat", "-", "--", "—", "nil", "(blank)",
                         "(none)", "#null!", "undefined"})
TRUE_TOKENS = frozenset({"true", "t", "yes", "y", "1", "1.0", "checked", "x", "wahr", "ja", "oui", "si", "sí"})
FALSE_TOKENS = frozenset({"false", "f", "no", "n", "0", "0.0", "unchecked", "falsch", "nein", "non"})


def to_arrow(values) -> pa.Array:
    """Raw values as an Arrow string array. Non-string scalars (ints, floats, bools
    an adapter may hand over) become their ``str``; NaN / None / NaT become null."""
    if isinstance(values, pd.Series) and isinstance(values.dtype, (pd.ArrowDtype, pd.StringDtype)):
        arr = pa.array(values)
    else:
        obj = (values if isinstance(values, pd.Series) else pd.Series(values)).to_numpy(dtype=object)
        try:
            arr = pa.array(obj, type=pa.string(), from_pandas=True)
        except (pa.ArrowTypeError, pa.ArrowInvalid, TypeError):
            missing = pd.isna(obj)
            arr = pa.array([None if m else (v if isinstance(v, str) else str(v)) for v, m in zip(obj, missing)],
                           type=pa.string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.type != pa.string():
        arr = arr.cast(pa.string())
    return arr


def encode(values) -> tuple[np.ndarray, np.ndarray]:
    """Dictionary-encode raw strings: ``codes`` (int64, -1 = missing) and the
    distinct values (object array of str) after trimming whitespace. Empty
    strings and nulls are missing."""
    arr = values if isinstance(values, pa.Array) else to_arrow(values)
    # trim first (cheap in Arrow), so " a" and "a" share one code
    arr = pc.utf8_trim(arr, characters=" \t\r\n\v\f\ufeff\u00a0\u200b\u202f")
    enc = pc.dictionary_encode(arr)
    idx = enc.indices.to_numpy(zero_copy_only=False)
    if enc.indices.null_count:
        idx = np.where(pc.is_null(enc.indices).to_numpy(zero_copy_only=False), -1, idx)
    idx = idx.astype(np.int64, copy=False)
    uniq = enc.dictionary.to_numpy(zero_copy_only=False).astype(object, copy=False)
    empty = np.flatnonzero(uniq == "")
    if len(empty):
        e = int(empty[0])
        idx = np.where(idx == e, -1, np.where(idx > e, idx - 1, idx))
        uniq = np.delete(uniq, e)
    return idx, uniq


# the usual spellings (lower, UPPER, Title) so one hash look-up does, without lower-casing a million ids
_NULL_SET = pa.array(sorted({v for t in NULL_TOKENS for v in (t, t.upper(), t.title(), t.capitalize())}
                            | {"NaN", "NaT", "#N/A", "N/a", "n/A"}), type=pa.string())


def trim_rows(values) -> tuple[np.ndarray, pa.Array]:
    """Row-wise alternative to :func:`encode` for columns whose values are mostly
    distinct (timestamps): ``codes`` = row number (-1 = missing: empty or a null
    token) and the trimmed values as an Arrow array, without building a dictionary."""
    arr = values if isinstance(values, pa.Array) else to_arrow(values)
    arr = pc.utf8_trim(arr, characters=" \t\r\n\v\f\ufeff\u00a0\u200b\u202f")
    missing = pc.or_kleene(pc.is_null(arr), pc.equal(arr, ""))
    missing = pc.or_kleene(missing, pc.is_in(arr, value_set=_NULL_SET))
    missing = pc.fill_null(missing, True).to_numpy(zero_copy_only=False)
    codes = np.where(missing, -1, np.arange(len(arr), dtype=np.int64))
    return codes, arr


def null_token_mask(uniq: np.ndarray) -> np.ndarray:
    """True where a distinct value spells "no value" (NA, null, N/A, -, ...)."""
    if not len(uniq):
        return np.zeros(0, bool)
    arr = pa.array(uniq, type=pa.string())
    return pc.is_in(arr, value_set=_NULL_SET).to_numpy(zero_copy_only=False)


_INT_FLOAT = re.compile(r"^(\d+)\.0+$")


def normalise_ids(uniq: np.ndarray) -> np.ndarray:
    """Ids stay strings (leading zeros kept); ``123.0`` (a spreadsheet's float
    rendering of 123) becomes ``123``."""
    if not len(uniq):
        return uniq
    arr = pa.array(uniq, type=pa.string())
    fix = pc.match_substring_regex(arr, _INT_FLOAT.pattern).to_numpy(zero_copy_only=False)
    if not fix.any():
        return uniq
    out = uniq.copy()
    out[fix] = pd.Series(uniq[fix], dtype=object).str.replace(_INT_FLOAT, r"\1", regex=True).to_numpy(object)
    return out


# ---------------------------------------------------------------- numbers
_CURRENCY = re.compile(r"[$€£¥₹₩₽¢]|\b(?:USD|EUR|GBP|CHF|JPY|CAD|AUD|SEK|NOK|DKK|INR|Fr\.?)\b|[\s\u00a0\u202f'’]",
                       re.I)
_GROUP = {",": re.compile(r"^[+-]?\d{1,3}(,\d{3})+$"), ".": re.compile(r"^[+-]?\d{1,3}(\.\d{3})+$")}


def parse_numbers(uniq: np.ndarray, decimal: str = ".") -> tuple[np.ndarray, np.ndarray]:
    """Parse numbers written with currency symbols/codes, thousands separators,
    decimal commas, and accounting negatives ``(12)``.

    A value with both ``.`` and ``,`` uses the last one as decimal mark. With only
    one kind: the table's ``decimal`` mark when it occurs once, else a thousands
    separator when the digits group by three (``1,234``), else a decimal mark.
    Returns ``(values float64, failed bool)``.
    """
    s = pd.Series(uniq, dtype=object).astype(str)
    neg = s.str.match(r"^\(.*\)$")
    s = s.str.replace(r"^\((.*)\)$", r"\1", regex=True).str.replace(_CURRENCY, "", regex=True)
    n_dot, n_com = s.str.count(r"\."), s.str.count(",")
    last_dot, last_com = s.str.rfind("."), s.str.rfind(",")
    other = "," if decimal == "." else "."
    n_dec = n_dot if decimal == "." else n_com
    n_oth = n_com if decimal == "." else n_dot
    grouped_dec = s.str.match(_GROUP[decimal])
    grouped_oth = s.str.match(_GROUP[other])
    both = (n_dot > 0) & (n_com > 0)
    # decide, per value, which mark is decimal: "." / "," / none
    dec_mark = np.where(both, np.where(last_dot > last_com, ".", ","),
                        np.where(n_dec > 0,
                                 np.where((n_dec == 1) & ~(grouped_dec & False), decimal, "grp_dec"),
                                 np.where(n_oth > 0,
                                          np.where(grouped_oth | (n_oth > 1), "grp_oth", other), "")))
    out = s.copy()
    m = dec_mark == "."
    out[m] = s[m].str.replace(",", "", regex=False)
    m = dec_mark == ","
    out[m] = s[m].str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    m = dec_mark == "grp_dec"  # the decimal mark repeated: it must be grouping (1.234.567 with decimal ".")
    out[m] = s[m].where(s[m].str.match(_GROUP[decimal]), "x").str.replace(decimal, "", regex=False)
    m = dec_mark == "grp_oth"
    out[m] = s[m].where(s[m].str.match(_GROUP[other]), "x").str.replace(other, "", regex=False)
    ok_shape = out.str.match(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
    vals = pd.to_numeric(out.where(ok_shape, None), errors="coerce").to_numpy(dtype=float)
    vals = np.where(neg.to_numpy(), -vals, vals)
    failed = ~np.isfinite(vals)
    return np.where(failed, np.nan, vals), failed


def parse_bools(uniq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """true/false, yes/no, y/n, t/f, 1/0 (case-insensitive) -> (float 1/0/nan, failed)."""
    low = pd.Series(uniq, dtype=object).astype(str).str.casefold()
    t, f = low.isin(TRUE_TOKENS).to_numpy(), low.isin(FALSE_TOKENS).to_numpy()
    return np.where(t, 1.0, np.where(f, 0.0, np.nan)), ~(t | f)


# ------------------------------------------------------------- timestamps
_MONTH_WORD = re.compile(r"(?i)\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\b")
_MIN_YEAR, _MAX_YEAR = 1900, 2200


def _dateutil_parse(values: np.ndarray, dayfirst: bool) -> tuple[np.ndarray, np.ndarray]:
    """Last resort, one value at a time (only for the few values no bulk format
    fits, e.g. ``Mar 5, 2026 2:00 PM``). Needs a 4-digit year and a month word or
    three numbers, so that "5" is never read as a date."""
    from dateutil import parser as du

    ns = np.full(len(values), NS_NAT, dtype=np.int64)
    offset = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        if not re.search(r"\b\d{4}\b", v) or not (_MONTH_WORD.search(v) or len(re.findall(r"\d+", v)) >= 3):
            continue
        try:
            dt = du.parse(v, dayfirst=dayfirst)
        except (ValueError, OverflowError, TypeError):
            continue
        if dt.tzinfo is not None:
            off = dt.utcoffset()
            offset[i] = off.total_seconds() / 60 if off is not None else np.nan
            dt = dt.replace(tzinfo=None)
        try:
            ns[i] = pd.Timestamp(dt).value
        except (ValueError, OverflowError):
            continue
    return ns, offset


def localize(ns: np.ndarray, timezone: str) -> np.ndarray:
    """Naive wall-clock ns in ``timezone`` -> UTC ns. An ambiguous hour (clocks
    going back) is read as the first occurrence; a non-existent one (clocks going
    forward) is shifted forward to the first valid instant."""
    if timezone in ("UTC", "Etc/UTC", "GMT", "Z"):
        return ns
    idx = pd.DatetimeIndex(np.where(ns == NS_NAT, np.datetime64("NaT").astype("int64"), ns).view("datetime64[ns]"))
    loc = idx.tz_localize(timezone, ambiguous=np.ones(len(idx), dtype=bool), nonexistent="shift_forward")
    out = loc.tz_convert("UTC").asi8.copy()
    out[idx.isna()] = NS_NAT
    return out


_SHAPE_WIDTH = 32
_S_TIME = (r"(?:[ T,]+(?P<H>9{1,2}):(?P<M>99)(?::(?P<S>99)(?:[.,](?P<F>9{1,9}))?)?"
           r"\s*(?P<P>[AaPp]\.?[Mm]\.?)?\s?(?P<O>[Zz]|[+-]99(?::?99)?)?)?$")
#: formats recognised on the *shape* of a value (every digit replaced by 9): all
#: values of one shape have their fields at the same positions, so a field is
#: read for all of them at once with numpy arithmetic
_SHAPES = (
    ("iso", re.compile(r"^(?P<y>9999)-(?P<a>99)-(?P<b>99)(?:[T ](?P<H>99):(?P<M>99)(?::(?P<S>99)"
                       r"(?:[.,](?P<F>9{1,9}))?)?)?\s?(?P<O>[Zz]|[+-]99(?::?99)?)?$")),
    ("dmy", re.compile(r"^(?P<a>9{1,2})(?P<sep>[/.-])(?P<b>9{1,2})[/.-](?P<y>9999|99)" + _S_TIME)),
    ("ymd", re.compile(r"^(?P<y>9999)(?P<sep>[/.])(?P<a>9{1,2})[/.](?P<b>9{1,2})" + _S_TIME)),
    ("iso", re.compile(r"^(?P<y>9999)(?P<a>99)(?P<b>99)(?:T(?P<H>99)(?P<M>99)(?P<S>99)?)?(?P<O>[Zz])?$")),  # 20260301
    ("excel", re.compile(r"^(?P<E>9{5})(?:\.(?P<F>9{1,9}))?$")),   # spreadsheet serial day number
    ("epoch_s", re.compile(r"^(?P<E>9{9,10})(?:\.(?P<F>9{1,9}))?$")),
    ("epoch_ms", re.compile(r"^(?P<E>9{12,13})$")),
)


def _byte_matrix(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(n x 32) uint8 matrix of each string's bytes, space padded, and a mask of
    the rows that fit (ASCII, <= 32 bytes). Padding every string to 32 bytes in
    Arrow makes the data buffer itself the matrix."""
    n = len(arr)
    fits = pc.and_(pc.less_equal(pc.binary_length(arr), _SHAPE_WIDTH), pc.string_is_ascii(arr))
    fits = pc.fill_null(fits, False)
    padded = pc.utf8_rpad(pc.if_else(fits, arr, pa.scalar("", pa.string())), width=_SHAPE_WIDTH, padding=" ")
    if isinstance(padded, pa.ChunkedArray):
        padded = padded.combine_chunks()
    bufs = padded.buffers()
    off = np.frombuffer(bufs[1], dtype=np.int32)[padded.offset: padded.offset + n + 1]
    data = np.frombuffer(bufs[2], dtype=np.uint8)[off[0]: off[0] + n * _SHAPE_WIDTH]
    return data.reshape(n, _SHAPE_WIDTH), fits.to_numpy(zero_copy_only=False)


_DIGIT_TO_9 = np.arange(256, dtype=np.uint8)
_DIGIT_TO_9[48:58] = 57


def _digits(B: np.ndarray, start: int, end: int) -> np.ndarray:
    val = np.zeros(len(B), dtype=np.int64)
    for p in range(start, end):
        val = val * 10 + (B[:, p].astype(np.int64) - 48)
    return val


def _days_from_civil(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Days since 1970-01-01 and a validity mask (month 1-12, day within the month)."""
    ok = (m >= 1) & (m <= 12) & (d >= 1) & (y >= _MIN_YEAR) & (y <= _MAX_YEAR)
    ym = np.where(ok, (y - 1970) * 12 + (m - 1), 0)
    first = ym.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    nxt = (ym + 1).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    ok &= d <= (nxt - first)
    return first + d - 1, ok


def _parse_shape(kind: str, m: re.Match, shape: str, B: np.ndarray, dayfirst: bool):
    """Parse all values of one shape: (ns, offset minutes or nan, absolute?, ok)."""
    n = len(B)
    span = lambda g: m.span(g) if g in m.re.groupindex and m.group(g) is not None else None  # noqa: E731
    if kind == "excel":  # days since 1899-12-30 (Excel's 1900 date system), fraction = time of day
        e0, e1 = span("E")
        days = _digits(B, e0, e1)
        frac = np.zeros(n, np.int64)
        if span("F"):
            f0, f1 = span("F")
            frac = _digits(B, f0, f1) * 10 ** (9 - (f1 - f0))  # billionths of a day
        ok = (days >= 20_000) & (days <= 80_000)   # 1954-2119: anything else is not a date
        ns = (days - 25_569) * 86_400_000_000_000 + (frac * 86_400).astype(np.int64)
        return ns, np.full(n, np.nan), False, ok
    if kind in ("epoch_s", "epoch_ms"):
        e0, e1 = span("E")
        val = _digits(B, e0, e1)
        if kind == "epoch_ms":
            ns = val * 1_000_000
        else:
            ns = val * 1_000_000_000
            if span("F"):
                f0, f1 = span("F")
                ns = ns + _digits(B, f0, f1) * 10 ** (9 - (f1 - f0))
        return ns, np.full(n, np.nan), True, np.ones(n, bool)
    y = _digits(B, *span("y"))
    if span("y")[1] - span("y")[0] == 2:
        y = np.where(y < 70, 2000 + y, 1900 + y)
    a, b = _digits(B, *span("a")), _digits(B, *span("b"))
    if kind == "dmy" and (dayfirst or m.group("sep") == "."):  # dotted dates are day-first everywhere
        day, month = a, b
    else:
        month, day = a, b
    days, ok = _days_from_civil(y, month, day)
    hour = _digits(B, *span("H")) if span("H") else np.zeros(n, np.int64)
    minute = _digits(B, *span("M")) if span("M") else np.zeros(n, np.int64)
    sec = _digits(B, *span("S")) if span("S") else np.zeros(n, np.int64)
    frac = np.zeros(n, np.int64)
    if span("F"):
        f0, f1 = span("F")
        frac = _digits(B, f0, f1) * 10 ** (9 - (f1 - f0))
    if span("P"):
        pm = m.group("P")[0] in "Pp"
        ok &= (hour >= 1) & (hour <= 12)
        hour = np.where(hour == 12, 0, hour) + (12 if pm else 0)
    ok &= (hour <= 23) & (minute <= 59) & (sec <= 59)
    ns = days * 86_400_000_000_000 + hour * 3_600_000_000_000 + minute * 60_000_000_000 + sec * 1_000_000_000 + frac
    offset = np.full(n, np.nan)
    if span("O"):
        o0, o1 = span("O")
        text = shape[o0:o1]
        if text in ("Z", "z"):
            offset[:] = 0.0
        else:
            digit_pos = [o0 + i for i, ch in enumerate(text) if ch == "9"]
            hh = _digits(B, digit_pos[0], digit_pos[0] + 2) if len(digit_pos) >= 2 else 0
            mm = (B[:, digit_pos[2]].astype(np.int64) - 48) * 10 + (B[:, digit_pos[3]].astype(np.int64) - 48) \
                if len(digit_pos) >= 4 else 0
            offset = (-1 if text.lstrip()[0] == "-" else 1) * (hh * 60 + mm).astype(float)
    return ns, offset, False, ok


def _parse_fallback(values: np.ndarray, dayfirst: bool):
    """Values no bulk shape fits (text months, long or non-ASCII strings): pandas'
    mixed-format parser, value by value only when offsets are mixed. Needs a
    4-digit year and a month word or three numbers, so that "5" is never a date."""
    n = len(values)
    ns, offset, ok = np.full(n, NS_NAT, np.int64), np.full(n, np.nan), np.zeros(n, bool)
    s = pd.Series(values, dtype=object).fillna("")
    plausible = (s.str.contains(r"\b\d{4}\b", regex=True)
                 & (s.str.contains(_MONTH_WORD, regex=True) | (s.str.count(r"\d+") >= 3))).to_numpy()
    idx = np.flatnonzero(plausible)
    if not len(idx):
        return ns, offset, ok
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = pd.to_datetime(s.iloc[idx], format="mixed", dayfirst=dayfirst, errors="coerce")
        except (ValueError, TypeError, OverflowError):
            res = pd.Series([None] * len(idx), dtype=object)
    if isinstance(res.dtype, pd.DatetimeTZDtype):
        got = res.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[ns]").view("int64")
        ns[idx], offset[idx] = got, 0.0
    elif pd.api.types.is_datetime64_dtype(res.dtype):
        ns[idx] = res.to_numpy(dtype="datetime64[ns]").view("int64")
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # dateutil warns about zone names it does not know
            got, off = _dateutil_parse(values[idx], dayfirst)
        ns[idx], offset[idx] = got, off
    ok = ns != NS_NAT
    return ns, offset, ok


def parse_timestamps(uniq, *, timezone: str = "UTC", dayfirst: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Parse mixed timestamp formats to UTC: ``(utc_ns int64, failed bool)``; see
    :func:`parse_timestamps_detail` for the formats and the repairs it reports."""
    ns, failed, _ = parse_timestamps_detail(uniq, timezone=timezone, dayfirst=dayfirst)
    return ns, failed


def parse_timestamps_detail(uniq, *, timezone: str = "UTC", dayfirst: bool = False
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse mixed timestamp formats to UTC.

    Understood, in one column: ISO 8601 with offset or ``Z``; naive ISO date-times
    and dates (wall clock in ``timezone``); ``03/04/2026 [14:05[:09]] [PM]`` and
    ``03.04.26`` slash/dot/dash dates (month first unless ``dayfirst``; dotted
    dates are day-first; a value whose "month" is > 12 is rejected rather than
    silently swapped); ``2026/03/04``; Unix epoch seconds (9-10 digits) and
    milliseconds (12-13 digits, UTC); compact ``20260301[T101500]``; spreadsheet
    serial day numbers (``45292.5`` = 2024-01-01 12:00, 1900 date system, 5 digits);
    and text dates such as ``Mar 5, 2026 2:00 PM`` or ``2026-03-01 10:00 UTC``.

    Values are grouped by *shape* (digits replaced by 9): each shape is matched
    once, and its fields are read for all its values with numpy arithmetic.

    Returns ``(utc_ns int64, failed bool, issue object)`` per value; years outside
    1900-2200 count as failed; ``issue`` names a value that was read but deserves a
    repair record: ``excel_serial_date``, ``ambiguous_local_time`` (read as the first
    occurrence), ``nonexistent_local_time`` (shifted forward), else None.
    """
    n = len(uniq)
    ns = np.full(n, NS_NAT, dtype=np.int64)
    issue = np.full(n, None, dtype=object)
    if not n:
        return ns, np.zeros(0, bool), issue
    offset = np.full(n, np.nan)      # minutes east of UTC; nan = naive (wall clock in `timezone`)
    absolute = np.zeros(n, bool)     # epoch values: already UTC
    ok = np.zeros(n, bool)
    arr = uniq if isinstance(uniq, pa.Array) else pa.array(uniq, type=pa.string())
    uniq = np.asarray(uniq, dtype=object) if not isinstance(uniq, pa.Array) else None
    B, fits = _byte_matrix(arr)
    shape_bytes = _DIGIT_TO_9[B]
    words = shape_bytes.view(np.uint64)  # 4 words per row; their combination is the shape, exactly
    codes = np.zeros(n, np.int64)
    for w in range(words.shape[1]):
        wc = pd.factorize(words[:, w])[0].astype(np.int64)
        codes = pd.factorize(codes * (int(wc.max()) + 1) + wc)[0].astype(np.int64)
    codes = np.where(fits, codes, -1)
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    Bs = B[order]  # rows of one shape are now contiguous: slices are views, not copies
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(sorted_codes)) + 1, [n]])
    fallback = [np.flatnonzero(~fits)]
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        if hi <= lo or sorted_codes[lo] < 0:
            continue
        group = order[lo:hi]
        shape = shape_bytes[group[0]].tobytes().decode("ascii").rstrip()
        for kind, rx in _SHAPES:
            m = rx.match(shape)
            if m:
                got, off, absol, good = _parse_shape(kind, m, shape, Bs[lo:hi], dayfirst)
                ns[group], offset[group], absolute[group], ok[group] = got, off, absol, good
                if kind == "excel":
                    issue[group] = "excel_serial_date"
                break
        else:
            fallback.append(group)
    rest = np.concatenate(fallback)
    if len(rest):
        values = uniq[rest] if uniq is not None else np.asarray(arr.take(pa.array(rest)).to_pylist(), dtype=object)
        got, off, good = _parse_fallback(values, dayfirst)
        ns[rest], offset[rest], ok[rest] = got, off, good
    ns[~ok] = NS_NAT
    has_off = ok & ~np.isnan(offset)
    ns[has_off] -= (offset[has_off] * 60_000_000_000).astype(np.int64)
    local = ok & ~absolute & ~has_off
    if local.any():
        idx = np.flatnonzero(local)
        wall = ns[idx]
        ns[idx] = localize(wall, timezone)
        odd, labels = _dst_issues(wall, timezone)
        issue[idx[odd]] = labels
    years = ns // (86_400_000_000_000 * 365.2425) + 1970
    bad = ~ok | (years < _MIN_YEAR) | (years > _MAX_YEAR + 1)
    ns[bad] = NS_NAT
    issue[bad] = None
    return ns, bad, issue


def _dst_issues(wall: np.ndarray, timezone: str) -> tuple[np.ndarray, np.ndarray]:
    """Positions of wall-clock values in a DST switch and their issue:
    ``ambiguous_local_time`` (the hour happens twice) or ``nonexistent_local_time``
    (the hour is skipped)."""
    if timezone in ("UTC", "Etc/UTC", "GMT", "Z") or not len(wall):
        return np.zeros(0, np.int64), np.zeros(0, dtype=object)
    idx = pd.DatetimeIndex(wall.view("datetime64[ns]"))
    strict = idx.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
    odd = np.flatnonzero(strict.isna() & ~idx.isna())
    if not len(odd):
        return odd, np.zeros(0, dtype=object)
    skipped = idx[odd].tz_localize(timezone, ambiguous=np.ones(len(odd), bool), nonexistent="NaT").isna()
    return odd, np.where(skipped, "nonexistent_local_time", "ambiguous_local_time").astype(object)
