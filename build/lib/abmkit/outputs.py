"""Saving a notebook's key tables and findings for the report, safely.

Every table a report writes goes through :func:`save_table`: personal columns are
masked (hashed ids) or dropped, and text cells that a spreadsheet would run as a
formula are neutralised. Findings (small JSON dicts) let notebook 05 read the
headlines of notebooks 02-04 without recomputing them.

Example
-------
>>> import pandas as pd, tempfile
>>> d = tempfile.mkdtemp()
>>> p = save_table(pd.DataFrame({"contact_id": ["c1"], "email": ["a@b.com"], "note": ["=1+1"]}), d, "demo")
>>> open(p).read().splitlines()[1].split(",")[1:]
["'=1+1"]
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

#: columns never written to a report (personal data)
PERSONAL_COLUMNS = frozenset({"email", "first_name", "last_name", "full_name", "name", "phone", "title"})
#: id columns replaced by a stable hash in reports
MASKED_ID_COLUMNS = frozenset({"contact_id"})
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def mask_ids(values: pd.Series, prefix: str = "c_") -> pd.Series:
    """Stable, non-reversible short ids (sha256, 10 hex chars) for personal ids."""
    def h(v):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return None
        return prefix + hashlib.sha256(str(v).encode("utf-8")).hexdigest()[:10]
    uniq = pd.unique(values.dropna())
    table = {u: h(u) for u in uniq}
    return values.map(table)


def neutralise_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """Prefix text cells starting with = + - @ (tab, CR) with a quote, so a
    spreadsheet shows them as text (CSV/formula injection)."""
    out = df.copy()
    for col in out.columns:
        s = out[col]
        if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
            is_text = s.map(lambda v: isinstance(v, str))
            risky = is_text & s.astype(str).str.startswith(_FORMULA_START)
            if risky.any():
                out[col] = s.where(~risky, "'" + s.astype(str))
    return out


def privacy_safe(df: pd.DataFrame) -> pd.DataFrame:
    """Drop personal columns and mask personal ids (see module docstring)."""
    out = df.drop(columns=[c for c in df.columns if c in PERSONAL_COLUMNS])
    for c in out.columns:
        if c in MASKED_ID_COLUMNS:
            out[c] = mask_ids(out[c])
    return out


def atomic_write_text(path: Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    os.replace(tmp, path)
    return path


def save_table(df: pd.DataFrame, output_dir: str | Path | None, name: str, *, index: bool = False) -> Path | None:
    """Write ``df`` as ``<output_dir>/tables/<name>.csv`` (privacy-safe,
    formula-safe, atomic). Returns the path; does nothing when ``output_dir`` is None
    (a notebook run interactively without a report folder)."""
    if output_dir is None:
        return None
    frame = df.reset_index() if index else df
    frame = neutralise_formulas(privacy_safe(frame))
    return atomic_write_text(Path(output_dir) / "tables" / f"{name}.csv", frame.to_csv(index=False))


def save_findings(findings: dict, output_dir: str | Path | None, notebook: str) -> Path | None:
    """Write a notebook's headline findings as ``<output_dir>/findings/<notebook>.json``."""
    if output_dir is None:
        return None
    text = json.dumps(findings, indent=2, default=_json_default, sort_keys=True)
    return atomic_write_text(Path(output_dir) / "findings" / f"{notebook}.json", text)


def load_findings(output_dir: str | Path, notebook: str) -> dict:
    """Read what :func:`save_findings` wrote ({} when the notebook saved none)."""
    path = Path(output_dir) / "findings" / f"{notebook}.json"
    return json.loads(path.read_text("utf-8")) if path.exists() else {}


def _json_default(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return None if np.isnan(v) else float(v)
    if isinstance(v, (pd.Timestamp,)):
        return v.isoformat()
    if isinstance(v, (np.bool_,)):
        return bool(v)
    return str(v)
