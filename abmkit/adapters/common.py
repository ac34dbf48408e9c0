"""Helpers shared by the CRM adapters (:mod:`abmkit.adapters.salesforce`,
:mod:`abmkit.adapters.hubspot`): checkbox values, first non-null of several fields and
the ``validate`` pre-flight report built from an adapter's read result.

Example
-------
>>> import pandas as pd
>>> from abmkit.adapters.common import coalesce, truthy
>>> truthy(pd.Series(["true", "0", "", "Yes"])).tolist()
[True, False, False, True]
>>> coalesce(pd.Series([None, "a"]), pd.Series(["b", "c"])).tolist()
['b', 'a']
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from ..schema import TABLES
from . import DISABLES, describe_frame, filled_share
from .passthrough import shipped_columns

__all__ = ["truthy", "coalesce", "describe_read"]


def truthy(s: pd.Series) -> pd.Series:
    """Checkbox values ("true"/"false", Data Loader "1"/"0", "yes"/"no") as bool; empty = False."""
    codes, uniq = pd.factorize(pd.Series(s, copy=False).astype(object), use_na_sentinel=True)
    hit = np.array([str(u).strip().lower() in ("true", "1", "yes", "y", "t") for u in uniq] + [False])
    return pd.Series(hit[codes], index=s.index)


def coalesce(*series: pd.Series) -> pd.Series:
    """Per row, the first non-null value of ``series`` (aligned on the index)."""
    out = series[0]
    for s in series[1:]:
        out = out.where(out.notna(), s)
    return out


def describe_read(got: dict, column_map: Mapping, sources: dict, optional_objects, object_notes) -> pd.DataFrame:
    """The ``validate`` pre-flight rows (:data:`abmkit.adapters.DESCRIBE_COLUMNS`) of an
    adapter's read result.

    ``got`` is what the adapter's reader returns: ``files`` (object, file, rows, table),
    ``frames`` (canonical table -> raw frames), ``unknown`` (picklist labels not in the
    tables), ``rejects`` (the adapter's own ledger) and optionally ``absent`` ((object,
    field, file) of expected fields a file lacks). ``sources`` maps (table, column) to
    the vendor field(s) shown as the source; ``optional_objects`` are reported as
    optional when absent; ``object_notes`` say what a missing object turns off.
    """
    rows = []
    for r in got["files"].itertuples(index=False):
        rows.append({"section": "file", "object": r.object, "file": r.file, "rows": r.rows, "table": r.table,
                     "note": "optional" if r.object in optional_objects and r.file is None else ""})
        if r.file is None:
            rows.append({"section": "missing", "object": r.object, "table": "", "column": "",
                         "note": f"file not found -> {object_notes.get(r.object, 'not used')}"})
    for obj, fld, fname in got.get("absent", []):
        rows.append({"section": "missing", "object": obj, "file": fname, "table": "", "column": "",
                     "source": fld, "note": f"{fname} has no column {fld}: read as empty"})
    frames = got["frames"]
    mapped_tables = (column_map.get("tables") or {})
    adapter = str(column_map.get("adapter") or "")
    for table, spec in TABLES.items():
        cols = ((mapped_tables.get(table) or {}).get("columns") or {})
        if table not in frames or not frames[table]:
            if table in mapped_tables or table != "revenue":
                rows.append({"section": "missing", "object": "", "table": table, "column": "",
                             "note": f"no rows -> off: {DISABLES[table]}"})
            elif table == "revenue":
                rows.append({"section": "missing", "object": "", "table": table, "column": "",
                             "note": f"not in this export -> off: {DISABLES[table]}"})
            continue
        for col in spec.names:
            header = cols.get(col)
            if header is None:
                if col in ("email_domain",):
                    continue
                key = f"{table}.{col}"
                if key in DISABLES:
                    rows.append({"section": "missing", "object": "", "table": table, "column": col,
                                 "note": f"no source field -> off: {DISABLES[key]}"})
                continue
            values = pd.concat([f.data[header] for f in frames[table] if header in f.data.columns],
                               ignore_index=True) if frames[table] else None
            share = filled_share(values)
            rows.append({"section": "column", "object": "", "table": table, "column": col,
                         # the adapter's rule when the map uses the preset's column, else the field named
                         "source": sources.get((table, col), header)
                         if not adapter or header == shipped_columns(adapter, table).get(col) else header,
                         "filled": share, "note": ""})
            key = f"{table}.{col}"
            if share == 0.0 and key in DISABLES:
                rows.append({"section": "missing", "object": "", "table": table, "column": col,
                             "note": f"source field empty -> off: {DISABLES[key]}"})
    for r in got["unknown"].itertuples(index=False):
        rows.append({"section": "picklist", "object": r.object, "source": r.field, "column": r.value,
                     "rows": r.rows, "note": r.action})
    rej = got["rejects"]
    if len(rej):
        counts = rej.assign(kind=rej["reason"].str.split(":").str[0]).groupby(["source_file", "kind"]).size()
        for (src, kind), k in counts.items():
            rows.append({"section": "rejected", "object": src, "file": src, "rows": int(k), "note": kind})
    return describe_frame(rows)


def _source_or_dir(raw_dir):
    """A folder as a Path (the adapters' file logic), any other source as it is: a
    database or data frames (:mod:`abmkit.sources`), whose tables are found by name."""
    from ..sources import FolderSource, Source, is_url, open_source
    if isinstance(raw_dir, FolderSource):
        return raw_dir.path
    if isinstance(raw_dir, Source):
        return raw_dir
    if isinstance(raw_dir, Mapping) or is_url(raw_dir):
        return open_source(raw_dir)
    return Path(raw_dir)
