"""The interface every source implements, and the conversion of typed tables to strings.

A source knows the names of its tables (files, data frames, database tables), finds the
ones a column map or an adapter asks for, and reads one as a :class:`RawFrame` of strings:
the cleaner parses every value itself (dates, numbers, booleans), so a value read from a
database goes through exactly the checks a CSV cell does.

Example
-------
>>> name_key("Campaign_Member.csv"), name_key("campaignmember")
('campaignmember', 'campaignmember')
>>> import pyarrow as pa
>>> table_to_strings(pa.table({"n": [1.5, None], "ok": [True, False]})).to_dict("list")
{'n': ['1.5', None], 'ok': ['true', 'false']}
"""
from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Iterable, Mapping

import pandas as pd
import pyarrow as pa

from ..io.csv import RawFrame
from ..io.errors import CleanError

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")


def is_url(value) -> bool:
    """Is ``value`` a database URL (``scheme://...``) or a named connection (``db:<name>``)?"""
    text = str(value)
    return bool(_URL.match(text)) or text.startswith("db:")


def name_key(name: str) -> str:
    """Case-, underscore- and suffix-insensitive key of a table or file name: ``Account.csv``,
    ``account`` and ``ACCOUNT`` are one table; ``CampaignMember`` and ``campaign_member``
    (a sync tool's snake case) too."""
    text = PurePosixPath(str(name)).name
    for suffix in _SUFFIXES:
        if text.lower().endswith(suffix):
            text = text[: -len(suffix)]
            break
    return re.sub(r"[\s_\-]", "", text).casefold()


def table_to_strings(table: pa.Table) -> pd.DataFrame:
    """Every column of an Arrow table as strings (nulls stay null), in the form the CSV
    reader gives: timestamps as ISO text (``Z`` for time-zone-aware ones, so a column
    map's ``timezone:`` applies only to naive ones), booleans as ``true``/``false``,
    numbers as written by Arrow (``1.5``, ``250``), dates as ``YYYY-MM-DD``. Binary and
    nested values are refused: they are not export fields."""
    cols = {}
    for name, col in zip(table.column_names, table.columns):
        t = col.type
        if pa.types.is_string(t):
            out = col
        elif pa.types.is_large_string(t) or pa.types.is_dictionary(t):
            out = col.cast(pa.string())
        elif pa.types.is_null(t):
            out = pa.chunked_array([pa.nulls(len(col), pa.string())])
        elif (pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_nested(t)):
            raise CleanError(f"column {name!r} holds {t} values, which an export field never does; "
                             "select it as text (CAST(... AS VARCHAR)) or leave it out of the query.")
        else:
            out = col.cast(pa.string())
        cols[str(name)] = pd.Series(pd.arrays.ArrowExtensionArray(out.combine_chunks() if out.num_chunks != 1
                                                                  else out.chunk(0)))
    return pd.DataFrame(cols) if cols else pd.DataFrame()


@dataclass(frozen=True)
class TableRef:
    """A table found in a source (what :meth:`Source.find` returns to an adapter)."""
    source: "Source"
    name: str

    @property
    def display(self) -> str:
        return self.source.display_name(self.name)


class Source:
    """A place raw tables are read from. Subclasses set ``kind`` and ``label`` and
    implement :meth:`names` and :meth:`read`."""

    kind: str = "source"
    label: str = "source"

    # ------------------------------------------------------------------ to implement
    def names(self) -> list[str]:
        """The tables (file names, frame keys, database tables) this source holds."""
        raise NotImplementedError

    def read(self, name: str, *, table: str, block: Mapping | None = None) -> RawFrame:
        """Table ``name`` (one of :meth:`names`) as strings, for canonical table ``table``
        with the column-map block ``block`` (encoding, delimiter, limits)."""
        raise NotImplementedError

    def read_query(self, query: str, *, table: str, block: Mapping | None = None) -> RawFrame:
        raise CleanError(f"{self.label}: `query:` needs a database source (--data duckdb:///file.duckdb or a "
                         "database URL); here name the table with `file:` or `table:`.")

    # ------------------------------------------------------------------ shared
    def display_name(self, name: str) -> str:
        """How a table is named in the ledger and in messages."""
        return str(name)

    def find(self, patterns: Iterable[str]) -> TableRef | None:
        """First table matching one of ``patterns`` (names or globs, compared with
        :func:`name_key`, so ``Account.csv`` finds a database table ``account``)."""
        names = self.names()
        keys = [name_key(n) for n in names]
        for pattern in patterns:
            pkey = name_key(pattern)
            if any(ch in pattern for ch in "*?["):
                hits = [n for n, k in zip(names, keys) if fnmatch.fnmatchcase(k, pkey)]
            else:
                hits = [n for n, k in zip(names, keys) if k == pkey]
            if hits:
                return TableRef(self, hits[0])
        return None

    def match(self, patterns: Iterable[str], *, table: str, origin: str = "column map") -> list[str]:
        """The tables a column map's ``file:`` list names (each must match one)."""
        found: list[str] = []
        for pattern in patterns:
            ref = self.find([pattern])
            if ref is None:
                raise CleanError(f"{self.label}: no table matches '{pattern}' for table {table} ({origin}). Tables "
                                 f"in the source: {sorted(self.names())[:40]}. Fix `tables.{table}.file` (or "
                                 f"set `tables.{table}.table:`) in the column map.")
            if ref.name not in found:
                found.append(ref.name)
        return found

    def fingerprint(self) -> dict[str, str]:
        """Something per table that changes when its data changes (for the report's
        "input changed during the run" check)."""
        return {}

    def close(self) -> None:
        """Release connections (a no-op for files and frames)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
