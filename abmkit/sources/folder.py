"""A folder of export files: CSV (read by :func:`abmkit.io.csv.read_file`) and parquet.

A column map names files relative to the folder (names or globs). A name that matches
no file but whose stem matches a parquet file (``accounts.csv`` → ``accounts.parquet``)
reads the parquet file, so a map written for CSV exports also reads the same tables
saved as parquet. Nothing outside the folder is read: absolute paths and ``..`` are
refused by the column-map reader, and a symbolic link leading out is refused here
(:mod:`abmkit.io.paths`).

Example
-------
>>> import tempfile, pathlib, pandas as pd
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> pd.DataFrame({"Account ID": ["A1"]}).to_parquet(d / "accounts.parquet")
>>> src = FolderSource(d)
>>> src.match(["accounts.csv"], table="accounts")
['accounts.parquet']
>>> src.read("accounts.parquet", table="accounts").data.to_dict("list")
{'Account ID': ['A1']}
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable, Mapping

from ..io.csv import RawFrame, read_file
from ..io.errors import CleanError
from ..io.paths import confine
from .base import Source, name_key, table_to_strings

PARQUET = (".parquet", ".pq")


class FolderSource(Source):
    """Export files in one folder (``--data <folder>``)."""

    kind = "folder"

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.is_dir():
            raise CleanError(f"raw export folder {self.path} does not exist. Pass the folder holding the exports, "
                             "or a database URL (duckdb:///file.duckdb, postgresql://user@host/db).")
        self.label = str(self.path)

    def names(self) -> list[str]:
        return sorted(p.name for p in self.path.iterdir() if p.is_file())

    def match(self, patterns: Iterable[str], *, table: str, origin: str = "column map") -> list[str]:
        found: list[str] = []
        key = f"tables.{table}.file"
        for pat in patterns:
            if any(ch in pat for ch in "*?["):
                hits = sorted(p for p in self.path.glob(pat) if p.is_file())
            else:
                hits = [self.path / pat] if (self.path / pat).is_file() else []
            if not hits:  # the same table saved as parquet (accounts.csv -> accounts.parquet)
                stem = name_key(pat)
                parent = (self.path / pat).parent
                if parent.is_dir() and not any(ch in pat for ch in "*?["):
                    hits = sorted(p for p in parent.iterdir()
                                  if p.is_file() and p.suffix.lower() in PARQUET and name_key(p.name) == stem)[:1]
            hits = [confine(h, self.path, origin=origin, key=key, value=pat) for h in hits]
            if not hits:
                present = self.names()
                raise CleanError(f"{self.path}: no file matches '{pat}' for table {table}. Files in the folder: "
                                 f"{present}. Fix `tables.{table}.file` in the column map or add the export.")
            found.extend(str(h.relative_to(self.path)) for h in hits if str(h.relative_to(self.path)) not in found)
        return found

    def read(self, name: str, *, table: str, block: Mapping | None = None) -> RawFrame:
        path = confine(self.path / name, self.path, origin="export file")
        block = block or {}
        if path.suffix.lower() in PARQUET:
            import pyarrow.parquet as pq
            try:
                arrow = pq.read_table(path)
            except Exception as exc:  # a damaged or non-parquet file: say which and why
                raise CleanError(f"{path}: cannot be read as parquet ({type(exc).__name__}: {exc}). Re-export "
                                 "it, or save the table as CSV.") from None
            return RawFrame(name, table_to_strings(arrow))
        return read_file(path, encoding=block.get("encoding", "auto"), delimiter=block.get("delimiter", "auto"),
                         source_file=name, limits=block)

    def fingerprint(self) -> dict[str, str]:
        out = {}
        for p in sorted(self.path.iterdir()):
            if p.is_file() and not p.is_symlink():
                st = p.stat()
                out[p.name] = hashlib.sha256(f"{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:16]
        return out
