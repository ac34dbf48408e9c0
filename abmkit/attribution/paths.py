"""Channel paths: the integer-coded form every data-driven model works on, and the
common aggregated path table (``path``, ``total_conversions``,
``total_conversion_value``, ``total_null``) used by other attribution tools and
web-analytics exports (see docs/attribution.md, "Path-format interop").

A :class:`PathSet` stores paths as one flat array of channel codes plus offsets
(CSR layout), so Markov and Shapley never touch Python strings per step.

Example
-------
>>> import pandas as pd
>>> table = pd.DataFrame({"path": ["email > webinar", "email"], "total_conversions": [2, 0],
...                       "total_null": [1, 3]})
>>> ps = read_paths(table)
>>> ps.channels, ps.n_paths, float(ps.conversions.sum())
(['email', 'webinar'], 2, 2.0)
>>> write_paths(ps)["path"].tolist()
['email', 'email > webinar']
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..results import Result

#: models that need only the channel sequence (usable on a path table)
PATH_MODELS = ("first_touch", "last_touch", "linear", "u_shaped", "j_shaped", "inverse_j", "shapley_split",
               "markov", "markov_per_conversion", "shapley")


@dataclass
class PathSet(Result):
    """Channel paths with their outcome counts.

    Attributes
    ----------
    channels : list of str
        channel name of each code.
    codes : ndarray of int
        flat channel codes of all paths, path after path.
    offsets : ndarray of int64
        path ``i`` is ``codes[offsets[i]:offsets[i + 1]]``.
    conversions, value, null : ndarray of float
        per path: conversions, conversion value, non-converting count.
    group : ndarray of int, optional
        per path: the resampling unit (account) it belongs to, for the bootstrap.
    problems : DataFrame
        rows of the source table that were not read (row, reason); empty when clean.
    """
    channels: list
    codes: np.ndarray
    offsets: np.ndarray
    conversions: np.ndarray
    value: np.ndarray
    null: np.ndarray
    group: np.ndarray | None = None
    problems: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["row", "reason"]))

    @property
    def n_paths(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def path_index(self) -> np.ndarray:
        """Path number of every entry of ``codes``."""
        return np.repeat(np.arange(self.n_paths), self.lengths)

    @property
    def position(self) -> np.ndarray:
        """Position (0-based) of every entry of ``codes`` inside its path."""
        return np.arange(len(self.codes)) - np.repeat(self.offsets[:-1], self.lengths)

    _summary_title = "Channel paths"

    @property
    def info(self) -> dict:
        """Counts as a plain dict: paths, channels, touches, conversions,
        conversion_value, null, problems."""
        return {"paths": self.n_paths, "channels": len(self.channels), "touches": int(len(self.codes)),
                "conversions": float(self.conversions.sum()), "conversion_value": float(self.value.sum()),
                "null": float(self.null.sum()), "problems": int(len(self.problems))}

    @property
    def summary(self) -> pd.DataFrame:
        """The :attr:`info` counts as a two-column table (metric, value)."""
        return pd.DataFrame({"metric": list(self.info), "value": pd.Series(list(self.info.values()), dtype=object)})


def _fail_or_keep(problems: list[tuple[int, str]], errors: str) -> None:
    if problems and errors == "raise":
        shown = "; ".join(f"row {r}: {why}" for r, why in problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise ValueError(f"path table: {len(problems)} malformed row(s): {shown}{more}. Fix or remove these "
                         "rows, or call read_paths(..., errors='report') to skip them and list them in "
                         "`.problems`.")


#: the columns of the common path table, as :func:`read_paths` names them
PATH_COLUMNS = ("path", "total_conversions", "total_conversion_value", "total_null")


def _path_table(source, columns, delimiter: str, root) -> pd.DataFrame:
    """A path table from a DataFrame or a CSV file (read with the kit's hardened reader:
    encoding and delimiter sniffed, size limits), columns renamed to the common names."""
    if not isinstance(source, pd.DataFrame):
        from pathlib import Path

        from ..io.csv import read_file
        from ..io.paths import check_file_pattern, confine
        path = Path(source)
        if root is not None:
            # a file named by data or parameters stays inside the data folder
            if not path.is_absolute():
                check_file_pattern(str(source), origin="read_paths", key="path")
                path = Path(root) / path
            confine(path, Path(root), origin="read_paths", key="path", value=str(source))
        raw = read_file(path, delimiter=delimiter)
        df = raw.data
        if raw.malformed:
            rows = ", ".join(str(m[0]) for m in raw.malformed[:10])
            raise ValueError(f"{path.name}: {len(raw.malformed)} malformed CSV record(s) (wrong number of fields "
                             f"or a stray quote) at source row(s) {rows}; fix the file and read it again")
    else:
        df = source
    if columns:
        unknown = [k for k in columns if k not in PATH_COLUMNS]
        if unknown:
            raise ValueError(f"columns: {unknown} are not path-table fields; map any of {list(PATH_COLUMNS)} "
                             "to your column names, e.g. columns={'path': 'channel_path', 'total_conversions': "
                             "'conversions'}")
        missing = [v for v in columns.values() if v not in df.columns]
        if missing:
            raise ValueError(f"columns: {missing} not in the table; found {list(df.columns)}")
        df = df.rename(columns={v: k for k, v in columns.items()})
    return df


def read_paths(df, sep: str = " > ", *, errors: str = "raise", columns: dict | None = None,
               delimiter: str = "auto", root=None) -> PathSet:
    """Read the common aggregated path table.

    Parameters
    ----------
    df : DataFrame, or path of a CSV file
        ``path`` (channels joined by ``sep``), ``total_conversions``, optional
        ``total_conversion_value`` (0 when absent) and optional ``total_null`` (0 when
        absent). A file is read with the kit's CSV reader (encoding and delimiter
        sniffed, size limits, malformed records refused with their row numbers).
    sep : str
        separator between channels; channel names are stripped of surrounding spaces,
        so ``">"`` also reads ``"a > b"``.
    errors : {"raise", "report"}
        malformed rows (empty path or empty channel, missing/negative/non-numeric
        counts) raise a ValueError naming their row numbers (0-based positions in
        ``df``) with ``"raise"``; with ``"report"`` they are skipped and listed in
        ``PathSet.problems`` (row, reason), so nothing is lost silently.
    columns : dict, optional
        your column names for the fields, e.g. ``{"path": "channel_path",
        "total_conversions": "conversions", "total_null": "non_conversions"}``.
    delimiter : str
        CSV delimiter of a file (``"auto"``: sniffed among , ; tab |).
    root : path, optional
        the data folder: a file name given by data or parameters must resolve inside it
        (no absolute path or ``..`` for relative names, no link leading out).

    Returns
    -------
    PathSet
        channels sorted by name; one path per input row that was read.

    Example
    -------
    >>> ps = read_paths(pd.DataFrame({"path": ["a > b", ""], "total_conversions": [1, 1]}), errors="report")
    >>> ps.n_paths, ps.problems.to_dict("records")
    (1, [{'row': 1, 'reason': 'empty path'}])
    >>> t = pd.DataFrame({"journey": ["a>b"], "conv": [2], "lost": [3]})
    >>> read_paths(t, columns={"path": "journey", "total_conversions": "conv", "total_null": "lost"}).info["null"]
    3.0
    """
    df = _path_table(df, columns, delimiter, root)
    if errors not in ("raise", "report"):
        raise ValueError("errors must be 'raise' or 'report'")
    missing = [c for c in ("path", "total_conversions") if c not in df.columns]
    if missing:
        raise ValueError(f"path table: column(s) {missing} missing; expected path, total_conversions "
                         f"[, total_conversion_value, total_null]; found {list(df.columns)}")
    n = len(df)
    problems: list[tuple[int, str]] = []
    counts = {}
    for col in ("total_conversions", "total_conversion_value", "total_null"):
        if col in df.columns:
            raw = df[col]
            num = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
            bad_num = np.isnan(num) | ~np.isfinite(num)
            for r in np.flatnonzero(bad_num):
                problems.append((int(r), f"{col} is missing or not a number ({raw.iloc[r]!r})"))
            for r in np.flatnonzero(~bad_num & (num < 0)):
                problems.append((int(r), f"negative {col} ({num[r]:g})"))
            counts[col] = np.where(bad_num, 0.0, num)
        else:
            counts[col] = np.zeros(n)
    raw = df["path"].to_numpy(dtype=object)
    strs = [x if isinstance(x, str) else ("" if pd.isna(x) else str(x)) for x in raw] \
        if not all(isinstance(x, str) for x in raw) else list(raw)
    # Arrow splits and dictionary-encodes every path in C++: no Python string per token
    # (str.split + factorize of millions of tokens was most of the time on big tables)
    import pyarrow as pa  # a pinned dependency; imported here to keep `import abmkit` light
    import pyarrow.compute as pc

    split_on = sep.strip() or sep
    pieces = pc.split_pattern(pa.array(strs, type=pa.large_string()), pattern=split_on)
    encoded = pc.dictionary_encode(pieces.flatten())
    tok_code = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    stripped = np.array([u.strip() for u in encoded.dictionary.to_pylist()], dtype=object)
    row_of = np.repeat(np.arange(n), np.diff(np.asarray(pieces.offsets)))
    empty_tok = (stripped == "")[tok_code]  # compare the few distinct tokens, then gather
    n_tok = np.bincount(row_of, minlength=n)
    whole_empty = (n_tok == 1) & (np.bincount(row_of, empty_tok, minlength=n) == 1)
    for r in np.flatnonzero(whole_empty):
        problems.append((int(r), "empty path"))
    for r in np.unique(row_of[empty_tok]):
        if not whole_empty[r]:
            problems.append((int(r), f"empty channel name in path {strs[r]!r}"))
    problems.sort()
    _fail_or_keep(problems, errors)
    bad_rows = np.zeros(n, bool)
    bad_rows[[r for r, _ in problems]] = True
    keep_tok = ~bad_rows[row_of]
    channels, uniq_to_channel = np.unique(stripped.astype(str), return_inverse=True) if len(stripped) \
        else (np.array([], str), np.array([], int))
    used = np.zeros(len(channels), bool)
    codes = uniq_to_channel[tok_code[keep_tok]]
    used[codes] = True
    remap = np.cumsum(used) - 1  # drop names seen only in rejected rows
    channels, codes = channels[used], remap[codes]
    good = np.flatnonzero(~bad_rows)
    lengths = np.bincount(row_of[keep_tok], minlength=n)[good]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    prob = pd.DataFrame(problems, columns=["row", "reason"])
    return PathSet(channels=[str(c) for c in channels], codes=codes.astype(np.int32), offsets=offsets,
                   conversions=counts["total_conversions"][good], value=counts["total_conversion_value"][good],
                   null=counts["total_null"][good], problems=prob)


def sessions_to_paths(sessions: pd.DataFrame, *, journey: str = "account_id", timestamp: str = "timestamp",
                      channel: str = "channel", converted: str = "converted", value: str | None = None,
                      sep: str = " > ", by_journey: bool = False) -> pd.DataFrame:
    """Turn session (or touch) rows into the path table, splitting at each conversion.

    Rows are ordered by ``journey`` id (a user or an account) and ``timestamp`` (ties
    keep the input order). A journey ends with each converting row (that row's channel
    is its last step); the rows after an id's last conversion form one non-converting
    journey. Vectorised: no loop over rows or ids.

    Parameters
    ----------
    sessions : DataFrame
        one row per session: the id, timestamp, channel and converted flag columns
        (named by the keyword arguments); rows with a missing id, timestamp or channel
        raise a ValueError naming how many.
    value : str, optional
        column with the conversion value of converting rows (summed per path).
    by_journey : bool
        False (default): the aggregated table ``path, total_conversions,
        total_conversion_value, total_null`` (one row per distinct path). True: one row
        per journey with its id, ``journey_number`` (0, 1, ... within the id), ``path``,
        ``converted`` and ``conversion_value``.

    Example
    -------
    >>> s = pd.DataFrame({"user": ["u1", "u1", "u1", "u2"], "ts": [1, 2, 3, 1],
    ...                   "channel": ["email", "search", "email", "search"], "conv": [0, 1, 0, 1]})
    >>> sessions_to_paths(s, journey="user", timestamp="ts", converted="conv").values.tolist()
    [['email', 0.0, 0.0, 1.0], ['email > search', 1.0, 0.0, 0.0], ['search', 1.0, 0.0, 0.0]]
    """
    need = [journey, timestamp, channel, converted] + ([value] if value else [])
    missing = [c for c in need if c not in sessions.columns]
    if missing:
        raise ValueError(f"sessions: column(s) {missing} missing; found {list(sessions.columns)} (name yours with "
                         "journey=, timestamp=, channel=, converted=)")
    bad = sessions[[journey, timestamp, channel]].isna().any(axis=1).to_numpy()
    if bad.any():
        raise ValueError(f"sessions: {int(bad.sum())} row(s) without an id, timestamp or channel; drop or fill them")
    conv_raw = sessions[converted]
    if conv_raw.dtype == object or str(conv_raw.dtype) in ("string", "str"):
        conv = conv_raw.astype(str).str.strip().str.lower().isin(["1", "true", "yes", "y", "t"]).to_numpy()
    else:
        conv = conv_raw.fillna(0).to_numpy().astype(bool)
    ids, id_code = np.unique(sessions[journey].astype(str).to_numpy(), return_inverse=True)
    ts = sessions[timestamp]
    ts_key = pd.to_datetime(ts, utc=True).astype("int64").to_numpy() if not pd.api.types.is_numeric_dtype(ts) \
        else ts.to_numpy(dtype=float)
    order = np.lexsort((np.arange(len(sessions)), ts_key, id_code))
    id_s, conv_s = id_code[order], conv[order]
    chan_names, chan_code = np.unique(sessions[channel].astype(str).str.strip().to_numpy(), return_inverse=True)
    code_s = chan_code[order]
    val_s = pd.to_numeric(sessions[value], errors="coerce").fillna(0).to_numpy(float)[order] if value \
        else np.zeros(len(order))
    # a new journey starts at a new id or right after a converting row
    start = np.ones(len(order), bool)
    start[1:] = (id_s[1:] != id_s[:-1]) | conv_s[:-1]
    jno = np.cumsum(start) - 1
    n_j = int(jno[-1] + 1) if len(jno) else 0
    offsets = np.concatenate([np.flatnonzero(start), [len(order)]]).astype(np.int64)
    last = offsets[1:] - 1
    j_conv = conv_s[last].astype(float)
    j_val = np.bincount(jno, val_s * conv_s, n_j)
    ps = PathSet(channels=[str(c) for c in chan_names], codes=code_s.astype(np.int32), offsets=offsets,
                 conversions=j_conv, value=j_val, null=1.0 - j_conv, group=id_s[offsets[:-1]].astype(np.int64))
    if not by_journey:
        return write_paths(ps, sep)
    first_of_id = np.ones(n_j, bool)
    first_of_id[1:] = ps.group[1:] != ps.group[:-1]
    number = np.arange(n_j) - np.maximum.accumulate(np.where(first_of_id, np.arange(n_j), 0))
    return pd.DataFrame({journey: ids[ps.group], "journey_number": number, "path": _path_strings(ps, sep),
                         "converted": j_conv.astype(bool), "conversion_value": j_val})


def aggregate_paths(paths: PathSet) -> PathSet:
    """Merge identical channel sequences, summing conversions, value and null."""
    strings = _path_strings(paths, "\x1f")
    key, inverse = np.unique(strings, return_inverse=True)
    first = np.zeros(len(key), np.int64)
    first[inverse[::-1]] = np.arange(paths.n_paths)[::-1]
    lengths = paths.lengths[first]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    take = np.repeat(paths.offsets[:-1][first], lengths) + (np.arange(offsets[-1]) - np.repeat(offsets[:-1], lengths))
    k = len(key)
    return PathSet(channels=list(paths.channels), codes=paths.codes[take], offsets=offsets,
                   conversions=np.bincount(inverse, paths.conversions, k),
                   value=np.bincount(inverse, paths.value, k), null=np.bincount(inverse, paths.null, k))


def _path_strings(paths: PathSet, sep: str) -> np.ndarray:
    """Each path as one string; one C-level join for all paths, then one split."""
    out = np.full(paths.n_paths, "", dtype=object)
    nonempty = np.flatnonzero(paths.lengths > 0)
    if not len(nonempty):
        return out
    tokens = np.asarray(paths.channels, dtype=object)[paths.codes]
    ends = paths.offsets[1:][nonempty][:-1] - 1  # last token of every non-empty path but the last
    boundary = "\x1e"
    tokens[ends] = tokens[ends] + boundary
    out[nonempty] = (sep.join(tokens.tolist())).split(boundary + sep)
    return out


def write_paths(journeys, sep: str = " > ") -> pd.DataFrame:
    """Write journeys as the common aggregated path table.

    Parameters
    ----------
    journeys : PathSet or ConversionJourneys
        e.g. ``abmkit.journeys.conversion_journeys(dataset)`` (converting journeys count
        one conversion with the opportunity amount as value; non-converting journeys
        count one null).

    Returns
    -------
    DataFrame
        ``path, total_conversions, total_conversion_value, total_null``; one row per
        distinct channel sequence, sorted by path. Reading it back with
        :func:`read_paths` gives the same attribution.
    """
    ps = journeys if isinstance(journeys, PathSet) else journeys.paths()
    agg = aggregate_paths(ps)
    return pd.DataFrame({"path": _path_strings(agg, sep), "total_conversions": agg.conversions,
                         "total_conversion_value": agg.value, "total_null": agg.null})
