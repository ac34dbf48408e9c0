"""Where the raw data comes from: a folder of CSV/parquet exports, data frames in memory,
or a database (any SQLAlchemy URL; DuckDB files with no server).

Every source hands the cleaner the same thing, a :class:`~abmkit.io.csv.RawFrame` of
strings per table, so the column maps, presets, rejects ledger and conservation checks
work the same whatever the data lives in (docs/bring_your_own_export.md).

- :func:`open_source` turns what the user gave (``--data``) into a :class:`Source`:
  a folder path, ``duckdb:///path.duckdb``, ``postgresql://user@host/db`` (any URL
  SQLAlchemy has a driver for), ``db:<name>`` (a connection named in the private
  connections file), a mapping of table name -> DataFrame, or a Source;
- a column map names a table by ``file:`` (a file name; in a database or a frame set the
  file's stem is matched to a table name), ``table:`` or ``query:`` (databases only).

Example
-------
>>> import pandas as pd
>>> src = open_source({"accounts": pd.DataFrame({"Account ID": ["A1"], "Employees": [250]})})
>>> src.kind, src.names()
('frames', ['accounts'])
>>> src.read("accounts", table="accounts").data.to_dict("list")
{'Account ID': ['A1'], 'Employees': ['250']}
"""
from __future__ import annotations

from .base import Source, TableRef, is_url, name_key, table_to_strings
from .frames import FrameSource
from .folder import FolderSource
from .open import open_source, source_label

__all__ = ["Source", "TableRef", "FolderSource", "FrameSource", "open_source", "source_label", "is_url", "name_key",
           "table_to_strings"]
