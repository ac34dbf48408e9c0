"""Saving a notebook's key tables and findings for the report, safely.

Every table a report writes goes through :func:`save_table`: personal columns are
masked (keyed hashes of the ids, see :mod:`abmkit.masking`) or dropped, and text cells
that a spreadsheet would run as a formula are neutralised. Findings (small JSON dicts)
let notebook 05 read the headlines of notebooks 02-04 without recomputing them. Report
files are written readable by others (0644 under the usual umask): they hold no personal
data. Any CSV the kit writes goes through :func:`neutralise_formulas`.

Example
-------
>>> import pandas as pd, tempfile
>>> d = tempfile.mkdtemp()
>>> p = save_table(pd.DataFrame({"contact_id": ["c1"], "email": ["a@b.com"], "note": ["=1+1"]}), d, "demo")
>>> open(p).read().splitlines()[1].split(",")[1:]
["'=1+1"]
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from . import masking
from .private import public_file_mode, write_private

#: columns never written to a report (personal data)
PERSONAL_COLUMNS = frozenset({"email", "first_name", "last_name", "full_name", "name", "phone", "title"})
#: id columns replaced by a stable hash in reports
MASKED_ID_COLUMNS = frozenset({"contact_id"})
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def mask_ids(values: pd.Series, prefix: str = "c_", key: bytes | None = None) -> pd.Series:
    """Stable masked ids for personal ids: ``prefix`` + 16 hex characters of
    HMAC-SHA256(key, id) (:func:`abmkit.masking.mask_values`). ``key`` defaults to the
    installation's secret (:func:`abmkit.masking.load_key`, created on first use), so the
    same id masks the same way in every run and kernel; without the key a mask cannot be
    recomputed from candidate ids. Missing values stay missing."""
    key = masking.load_key() if key is None else key
    uniq = pd.unique(values.dropna())
    masked = masking.mask_values(uniq, key, prefix)
    if len(set(masked)) != len(set(map(str, uniq))):  # 64 bits: never expected (see masking.MASK_HEX)
        raise RuntimeError("two different ids got the same masked id; report this (abmkit.masking.MASK_HEX)")
    return values.map(dict(zip(uniq, masked)))


def neutralise_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """Prefix text cells starting with = + - @ (tab, CR) with a quote, so a
    spreadsheet shows them as text (CSV/formula injection). Categorical text columns and
    column names are neutralised too."""
    out = df.copy()
    for i in range(out.shape[1]):  # by position: column names may repeat
        s = out.iloc[:, i]
        if isinstance(s.dtype, pd.CategoricalDtype):
            cats = pd.Series(s.cat.categories)
            if not (cats.map(lambda v: isinstance(v, str)) & cats.astype(str).str.startswith(_FORMULA_START)).any():
                continue
            s = s.astype(object)
        if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
            is_text = s.map(lambda v: isinstance(v, str))
            risky = is_text & s.astype(str).str.startswith(_FORMULA_START)
            if risky.any():
                out.isetitem(i, s.astype(object).where(~risky, "'" + s.astype(str)))
    names = [f"'{c}" if isinstance(c, str) and c.startswith(_FORMULA_START) else c for c in out.columns]
    if names != list(out.columns):
        out.columns = names
    return out


def write_csv(df: pd.DataFrame, path: str | Path, *, private: bool = True, index: bool = False) -> Path:
    """Write ``df`` as CSV, formula-neutralised and atomically: mode 0600 (``private``,
    the default: data files next to the cleaned data) or readable by others (report
    files). Every CSV the kit writes goes through here or :func:`save_table`."""
    text = neutralise_formulas(df.reset_index() if index else df).to_csv(index=False)
    if private:
        return write_private(path, lambda f: f.write(text.encode("utf-8")))
    return atomic_write_text(Path(path), text)


def privacy_safe(df: pd.DataFrame) -> pd.DataFrame:
    """Drop personal columns and mask personal ids (see module docstring)."""
    out = df.drop(columns=[c for c in df.columns if c in PERSONAL_COLUMNS])
    for c in out.columns:
        if c in MASKED_ID_COLUMNS:
            out[c] = mask_ids(out[c])
    return out


def atomic_write_text(path: Path, text: str) -> Path:
    """Write a *report* file atomically, readable by others like any new file under the
    umask (0644 with the usual 022; mkstemp alone would leave it 0600, unreadable by the
    web server the report is published with). Personal data: :func:`abmkit.private.write_private`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.chmod(tmp, public_file_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
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
    """Write a notebook's headline findings as ``<output_dir>/findings/<notebook>.json``.

    The file is strict JSON (RFC 8259, readable by any parser): NaN, Infinity, NaT and
    pandas' NA become ``null``, numpy scalars and arrays plain numbers and lists, at
    any depth (:func:`json_safe`)."""
    if output_dir is None:
        return None
    text = json.dumps(json_safe(findings), indent=2, sort_keys=True, allow_nan=False)
    return atomic_write_text(Path(output_dir) / "findings" / f"{notebook}.json", text)


def json_safe(value):
    """``value`` as plain JSON data: dicts (keys as text), lists, str, int, float, bool
    and None; NaN / ±Infinity / NaT / NA -> None, numpy scalars and arrays -> Python
    numbers and lists, timestamps -> ISO text, anything else -> ``str``.

    >>> json_safe({"match_rate": float("nan"), "n": np.int64(3), "xs": (np.float32(0.5), np.inf)})
    {'match_rate': None, 'n': 3, 'xs': [0.5, None]}
    """
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return [json_safe(v) for v in value.tolist()]
    if isinstance(value, pd.Series):
        return json_safe(value.to_dict())
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, (pd.Timestamp, pd.Timedelta)):
        return None if pd.isna(value) else str(value.isoformat())
    return str(value)


def load_findings(output_dir: str | Path, notebook: str) -> dict:
    """Read what :func:`save_findings` wrote ({} when the notebook saved none)."""
    path = Path(output_dir) / "findings" / f"{notebook}.json"
    return json.loads(path.read_text("utf-8")) if path.exists() else {}


def load_report_findings(output_dir: str | Path | None, numbers: tuple[str, ...] = ("01", "02", "03", "04")) -> dict:
    """``{"01": findings, ...}``: what notebooks 01-04 saved in this report folder
    (the first findings file whose name starts with each number; a notebook that saved
    none is left out). Empty without a report folder (a notebook run interactively).

    >>> load_report_findings(None)
    {}
    """
    if output_dir is None:
        return {}
    folder = Path(output_dir) / "findings"
    saved = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
    out = {}
    for n in numbers:
        stem = next((s for s in saved if s.startswith(n)), None)
        if stem is not None:
            found = load_findings(output_dir, stem)
            if isinstance(found, dict):
                out[n] = found
    return out


def load_period_tables(name: str, labels: list[str], *, current_label: str, current_dir: str | Path | None,
                       reports_dir: str | Path | None) -> tuple[dict, dict]:
    """One report table (``tables/<name>.csv``) of several periods: this run's from
    ``current_dir`` (the report folder being written), the others from the published
    reports ``<reports_dir>/<label>/``. Returns ``({label: DataFrame or None}, {label:
    why it is None})``; a period without a published report, or whose report has no such
    table, is None with its reason (never an empty table).

    >>> load_period_tables("x", ["2026Q2"], current_label="2026Q3", current_dir=None, reports_dir=None)
    ({'2026Q2': None}, {'2026Q2': 'no reports folder (the notebook was run on its own)'})
    """
    frames, reasons = {}, {}
    for label in labels:
        folder = current_dir if label == current_label else (
            Path(reports_dir) / label if reports_dir is not None else None)
        if folder is None:
            frames[label], reasons[label] = None, "no reports folder (the notebook was run on its own)"
            continue
        folder = Path(folder)
        path = folder / "tables" / f"{name}.csv"
        if not folder.is_dir():
            frames[label], reasons[label] = None, "no published report for this period"
        elif not path.is_file() or path.stat().st_size == 0:
            frames[label], reasons[label] = None, f"its report has no {name} table (the analysis was n/a or not run)"
        else:
            try:
                frames[label] = pd.read_csv(path)
            except (ValueError, OSError) as exc:
                frames[label], reasons[label] = None, f"its {name} table cannot be read ({type(exc).__name__})"
    return frames, reasons
