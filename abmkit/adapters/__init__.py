"""CRM export adapters: turn a folder of vendor exports into the raw frames that
:func:`abmkit.clean.clean_frames` maps with a column map.

A column map with ``adapter: <name>`` (the shipped ``salesforce`` and ``hubspot``
presets) makes :func:`abmkit.clean.clean_exports` call
``abmkit.adapters.<name>.read_frames(raw_dir, column_map)`` instead of reading one
CSV per table. An adapter does the work that needs knowledge of the vendor's data
model and cannot be said in a column map: joining objects (a campaign member's
channel is its campaign's type), choosing between fields (first-responded date when
the member responded, else created date), merging people (a converted lead *is* its
contact), normalising ids (Salesforce 15- vs 18-character ids) and resolving
multi-field picklists through the editable default tables shipped beside the preset.

Every adapter module offers

- ``read_frames(raw_dir, column_map) -> (frames, pre_rejects)``: ``frames`` maps a
  canonical table name to a list of :class:`RawFrame` (raw strings; column names are
  then mapped by the preset's ``columns``), ``pre_rejects`` is a ledger-format
  DataFrame (``source_file, source_row, table, reason, raw_values``) of rows the
  adapter itself could not use (e.g. a campaign member whose person is unknown);
  its ``attrs["unmapped"]`` carries the picklist labels the adapter's tables did not
  know, with the file and key that fix each (:func:`abmkit.clean.labels.attach`), for
  ``CleanResult.unmapped``. Every frame also carries the source fields of the object its
  rows come from, so a copy of the preset can map custom fields
  (:mod:`abmkit.adapters.passthrough`);
- ``describe(raw_dir, column_map) -> DataFrame``: the pre-flight report of the
  ``validate`` command (files found, rows per object, which canonical column comes
  from which field, what is missing and which analyses that disables, picklist values
  not in the default tables). :func:`format_description` renders it as text.

Row numbers (``source_row``) follow :mod:`abmkit.io.csv`: data records count from
1 (row 1 is the first record below the header, spreadsheet row 2).

Example
-------
>>> from abmkit.adapters import get_adapter
>>> get_adapter("salesforce").__name__
'abmkit.adapters.salesforce'
"""
from __future__ import annotations

import importlib
import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Iterable, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..io.csv import FIRST_DATA_ROW, RawFrame, read_file  # FIRST_DATA_ROW: row number of the first record
from ..io.errors import InputError, shown
from ..io.paths import ELSEWHERE_HINT, confine, is_inside
from ..io.yaml import load_yaml


def raw_frame(source_file: str, data: pd.DataFrame, source_row, like: "ExportFile | None" = None) -> RawFrame:
    """A :class:`abmkit.io.csv.RawFrame` (``abmkit.clean.RawFrame``); ``like`` passes on
    the encoding and delimiter detected when the file was read."""
    data = data.reset_index(drop=True)
    rows = np.asarray(source_row, dtype="int64")
    if like is not None:
        return RawFrame(source_file, data, rows, encoding=like.encoding, delimiter=like.delimiter)
    return RawFrame(source_file, data, rows)


LEDGER_COLUMNS = ["source_file", "source_row", "table", "reason", "raw_values"]
PRESETS_DIR = Path(__file__).resolve().parent.parent / "presets"


class PicklistWarning(UserWarning):
    """Picklist values that are not in the preset's default tables (reported, never guessed)."""


def get_adapter(name: str) -> ModuleType:
    """The adapter module ``abmkit.adapters.<name>``; a clear error when unknown."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", str(name)):
        raise ValueError(f"adapter name {name!r} is not a module name (use e.g. 'salesforce').")
    try:
        return importlib.import_module(f"abmkit.adapters.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"abmkit.adapters.{name}":
            raise ValueError(f"unknown adapter {name!r}; available: salesforce, hubspot, marketo, pardot") from None
        raise


# ---------------------------------------------------------------------------- reading
@dataclass
class ExportFile:
    """One export file read as strings: its name, data, record numbers and the ledger
    rows of records that could not be parsed (ragged rows)."""
    name: str
    data: pd.DataFrame
    rows: np.ndarray
    malformed: pd.DataFrame
    encoding: str = "utf-8"
    delimiter: str = ","
    raw: pd.DataFrame | None = None  # the cells exactly as read (for the ledger's raw_values)

    @property
    def original(self) -> pd.DataFrame:
        return self.data if self.raw is None else self.raw


def read_export(path, table: str) -> ExportFile:
    """Read one export CSV with the cleaner's reader (BOM, encoding and delimiter
    detection, every value a string, ragged rows kept aside) and normalise the data
    to object columns of ``str`` with ``""`` for empty cells. ``path`` may also be a
    :class:`abmkit.sources.TableRef` (a table of a database or a data frame, found by
    :func:`find_file`): its values are read as strings the same way."""
    from ..sources import TableRef
    if isinstance(path, TableRef):
        rf = path.source.read(path.name, table=table)
        data = rf.data.astype(object).where(rf.data.notna(), "")
        data.columns = [str(c).strip() for c in data.columns]
        return ExportFile(rf.source_file, data.reset_index(drop=True), np.asarray(rf.source_row, dtype="int64"),
                          empty_ledger(), path.source.kind, "")
    path = Path(path)
    rf = read_file(path)
    data = rf.data.astype(object).where(rf.data.notna(), "")
    rows = np.asarray(rf.source_row, dtype="int64")
    bad = rf.malformed
    enc, delim = rf.encoding, rf.delimiter
    data.columns = [str(c).strip() for c in data.columns]
    malformed = pd.DataFrame({
        "source_file": path.name, "source_row": np.asarray([b[0] for b in bad], dtype="int64"),
        "table": table, "reason": [f"{b[3] if len(b) > 3 else 'malformed_row'}: {b[2]}" for b in bad],
        "raw_values": [b[1] for b in bad]}, columns=LEDGER_COLUMNS) if bad else empty_ledger()
    return ExportFile(path.name, data.reset_index(drop=True), rows, malformed, enc, delim)


def find_file(raw_dir, names: Iterable[str]):
    """First existing file in ``raw_dir`` among glob patterns ``names`` (case-insensitive).

    The file found must really be inside ``raw_dir``: a symbolic link leading out of it
    (``Account.csv -> /etc/passwd``) is refused with an :class:`InputError`, nothing read.

    ``raw_dir`` may also be a database or data-frame :class:`abmkit.sources.Source`: the
    table whose name matches (``Account.csv`` finds ``account``, ``CampaignMember.csv``
    finds a sync tool's ``campaign_member``) is returned as a ``TableRef``."""
    from ..sources import FolderSource, Source
    if isinstance(raw_dir, FolderSource):
        raw_dir = raw_dir.path
    if isinstance(raw_dir, Source):
        return raw_dir.find(names)
    files = sorted(p for p in Path(raw_dir).iterdir() if p.is_file())
    lower = {p.name.lower(): p for p in files}
    for pattern in names:
        if pattern.lower() in lower:
            return confine(lower[pattern.lower()], Path(raw_dir), origin="export file")
        hits = [p for p in files if Path(p.name.lower()).match(pattern.lower())]
        if hits:
            return confine(hits[0], Path(raw_dir), origin="export file")
    return None


def first_reason(index: pd.Index):
    """A reason column where the first failing check wins, and its ``fail(mask, text)``.

    ``text`` may be a function of the failing rows' mask, so messages are built only for
    them. Checks run in order; a later check only fills rows still without a reason.

    >>> reason, fail = first_reason(pd.RangeIndex(3))
    >>> fail(pd.Series([True, False, True]), "a"); fail(pd.Series([True, True, False]), "b")
    >>> reason.tolist()
    ['a', 'b', 'a']
    """
    reason = pd.Series([None] * len(index), index=index, dtype=object)

    def fail(mask, text) -> None:
        new = mask & reason.isna()
        if new.any():
            reason[new] = text(new) if callable(text) else text

    return reason, fail


def blank_to_none(s: pd.Series) -> pd.Series:
    """Strip whitespace; empty strings become None (exports write nulls as "").

    Runs in pyarrow's string kernels: a million ids cost milliseconds, not a Python
    call per cell."""
    s = pd.Series(s, copy=False)
    arr = pa.array(s.astype(object).where(s.notna(), None).to_numpy(dtype=object), type=pa.string(),
                   from_pandas=True)
    arr = pc.utf8_trim_whitespace(arr)
    arr = pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)
    return pd.Series(arr.to_numpy(zero_copy_only=False), index=s.index, dtype=object)


def ledger(source_file: str, rows: pd.DataFrame, row_numbers, table: str, reasons) -> pd.DataFrame:
    """Ledger-format rows (``source_file, source_row, table, reason, raw_values``).

    ``raw_values`` is the JSON of the row's non-empty raw cells, so a reject can be
    traced back and repaired in the CRM.
    """
    if len(rows) == 0:
        return empty_ledger()
    raw_values = [json.dumps({k: v for k, v in r.items() if v not in ("", None)}, ensure_ascii=False)
                  for r in rows.to_dict("records")]
    return pd.DataFrame({
        "source_file": source_file,
        "source_row": np.asarray(row_numbers, dtype="int64"),
        "table": table,
        "reason": np.broadcast_to(np.asarray(reasons, dtype=object), (len(rows),)),
        "raw_values": raw_values,
    })


def empty_ledger() -> pd.DataFrame:
    return pd.DataFrame({"source_file": pd.Series([], dtype=object), "source_row": pd.Series([], dtype="int64"),
                         "table": pd.Series([], dtype=object), "reason": pd.Series([], dtype=object),
                         "raw_values": pd.Series([], dtype=object)})


def concat_ledgers(parts: list[pd.DataFrame]) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else empty_ledger()


# ---------------------------------------------------------------------------- picklist tables
_KEY_JUNK = re.compile(r"[\s_\-./&]+")  # same rule as abmkit.clean.colmap.label_key


def label_key(values: pd.Series) -> pd.Series:
    """Match key of picklist labels: case-folded, runs of spaces and ``_ - . / &`` as one space.

    Computed once per distinct label (a million members carry a handful of statuses)."""
    values = pd.Series(values, copy=False)
    codes, uniq = pd.factorize(values.astype(object).where(values.notna(), None), use_na_sentinel=True)
    keys = np.array([_KEY_JUNK.sub(" ", u.casefold()).strip() if isinstance(u, str) else None for u in uniq]
                    + [None], dtype=object)
    return pd.Series(keys[codes], index=values.index, dtype=object)  # code -1 -> the trailing None


class Picklist(dict):
    """A picklist table (source label -> canonical value) that knows where it was read
    from: ``name`` (its key under ``picklists:``), ``file`` (the YAML read) and ``inline``
    (written inside the column map). The unmapped-labels advice names that file."""

    def __init__(self, data=(), *, name: str = "", file: str | None = None, inline: bool = False):
        super().__init__(data)
        self.name, self.file, self.inline = name, file, inline


def load_picklist(column_map: Mapping, name: str, default_file: str) -> dict:
    """Load the picklist table ``name`` (a :class:`Picklist`: a dict that knows its file).

    The column map may name its own copy under ``picklists: {name: path}`` (relative
    paths resolve against the column map's folder when known, then the shipped
    presets folder); otherwise the shipped ``default_file`` is used.

    A column map read from a file (it may sit in the export folder, written by whoever
    made the export) may only name tables inside its own folder or the shipped presets
    folder: anything else, symbolic links followed, is an :class:`InputError`. A column
    map given as a dict by Python code may also name absolute paths and paths relative
    to the working directory. Tables are read with :func:`abmkit.io.yaml.load_yaml`.
    """
    ref = (column_map.get("picklists") or {}).get(name, default_file)
    if isinstance(ref, Mapping):  # a table written inline in the column map
        return Picklist(ref, name=name, inline=True)
    path = Path(str(ref))
    origin = str(column_map.get("_origin") or "")
    map_dir = None
    if column_map.get("_source_dir"):  # folder of the column-map YAML (abmkit.clean.load_column_map)
        map_dir = Path(column_map["_source_dir"])
    elif origin.startswith("column map ") and not origin.endswith("(dict)"):
        map_dir = Path(origin[len("column map "):]).parent
    from_file = map_dir is not None or origin.startswith("preset ")
    candidates = [path] if path.is_absolute() else []
    if map_dir is not None:
        candidates.append(map_dir / path)
    if not from_file:
        candidates.append(Path.cwd() / path)
    candidates.append(PRESETS_DIR / path)
    roots = [r for r in (map_dir, PRESETS_DIR) if r is not None]
    for c in candidates:
        if c.is_file():
            if from_file and not any(is_inside(c, r) for r in roots):
                raise InputError(
                    f"{origin or 'column map'}: `picklists.{name}` = {str(ref)[:80]!r} names a file outside the "
                    f"column map's folder{f' ({map_dir})' if map_dir else ''} and the shipped presets folder "
                    "(or a symbolic link leading out of them); refused, nothing was read from it. Copy the "
                    "table next to the column map and name it relative to the map's folder. "
                    f"{ELSEWHERE_HINT}.")
            table = load_yaml(c, what=f"picklist table {name!r}",
                              hint="see docs/bring_your_own_export.md") or {}
            if not isinstance(table, Mapping):
                raise InputError(f"picklist table {name!r} {c} must be a YAML mapping of source label: value "
                                 "(see the shipped abmkit/presets/*.yaml tables).")
            return Picklist(table, name=name, file=str(c))
    raise FileNotFoundError(f"picklist table {name!r}: file {ref!r} not found (looked in "
                            f"{', '.join(str(c.parent) for c in candidates)}). Copy the shipped "
                            f"abmkit/presets/{default_file} and point `picklists: {{{name}: <path>}}` at it.")


def map_labels(values: pd.Series, table: Mapping | None) -> tuple[pd.Series, pd.Series]:
    """Map raw labels through ``table`` (matched with :func:`label_key`).

    Returns ``(mapped, unknown)``: mapped canonical values (None for empty or
    unknown labels) and a bool mask of non-empty labels the table does not know.
    A table value of ``null`` maps the label to None on purpose (known, no value).
    """
    table = table or {}
    keyed = dict(zip(label_key(pd.Series(list(table), dtype=object)), table.values()))
    keys = label_key(values)
    codes, uniq = pd.factorize(keys, use_na_sentinel=True)
    known_u = np.array([k in keyed for k in uniq] + [False], dtype=bool)
    mapped_u = np.array([keyed.get(k) for k in uniq] + [None], dtype=object)
    known = pd.Series(known_u[codes], index=keys.index)
    mapped = pd.Series(mapped_u[codes], index=keys.index, dtype=object)
    mapped = mapped.where(mapped.notna(), None)
    return mapped, keys.notna() & ~known


def unknown_counts(obj: str, field: str, values: pd.Series, unknown: pd.Series, action: str) -> pd.DataFrame:
    """One row per unknown picklist label: object, field, value, rows, action."""
    if not unknown.any():
        return pd.DataFrame(columns=["object", "field", "value", "rows", "action"])
    counts = values[unknown].value_counts()
    return pd.DataFrame({"object": obj, "field": field, "value": counts.index.astype(str),
                         "rows": counts.values.astype(int), "action": action})


def warn_unknown(unknown: pd.DataFrame, preset: str) -> None:
    """Report unknown picklist labels as a :class:`PicklistWarning` naming the table to edit."""
    if len(unknown) == 0:
        return
    lines = [f"  {r.object}.{r.field} = {shown(r.value)} ({r.rows} row(s)): {r.action}"
             for r in unknown.itertuples(index=False)]
    warnings.warn(f"{preset} export: picklist values not in the default tables:\n" + "\n".join(lines)
                  + f"\nAdd them to the picklist tables in use (the shipped abmkit/presets/{preset}_*.yaml, or "
                    "your copies under `picklists:`): `result.unmapped` names the exact file and key for each "
                    "(see docs/bring_your_own_export.md).", PicklistWarning, stacklevel=3)


# ---------------------------------------------------------------------------- pre-flight report
DESCRIBE_COLUMNS = ["section", "object", "file", "rows", "table", "column", "source", "filled", "note"]


def describe_frame(rows: list[dict]) -> pd.DataFrame:
    """Assemble describe() rows into a frame with :data:`DESCRIBE_COLUMNS`."""
    df = pd.DataFrame(rows, columns=DESCRIBE_COLUMNS)
    return df.astype({"rows": "Int64"}) if len(df) else df


def filled_share(values: pd.Series | None) -> float:
    """Share of non-empty values (0.0 for a missing field or an empty file)."""
    if values is None or len(values) == 0:
        return 0.0
    return float(blank_to_none(values).notna().mean())


#: what each canonical table/column feeds (for "missing → which analyses are off")
DISABLES: dict[str, str] = {
    "accounts": "lead-to-account mapping, every account-level analysis",
    "contacts": "lead-to-account mapping; campaign-member touches have no person and are rejected",
    "touchpoints": "engagement score/MQA, attribution, progression stages, campaign influence",
    "campaigns": "campaign names, cost per account and ROI",
    "opportunities": "conversions for attribution, pipeline/win-rate KPIs, the customer and sales_ready stages",
    "revenue": "retention, NRR, product adoption",
    "contacts.persona": "persona coverage and the decision-maker MQA rule (MQA falls back to the score threshold)",
    "contacts.lead_status": "the contact side of the dual funnel",
    "contacts.mql_at": "MQL timing in the dual funnel",
    "contacts.email": "domain matching (mapping rule 2) for people without an account id",
    "accounts.domain": "domain matching (mapping rule 2)",
    "accounts.industry": "segmentation by industry",
    "accounts.employee_count": "segmentation by company size",
    "accounts.tier": "segmentation by ABM tier",
    "accounts.is_target": "market reach uses all accounts as the addressable market",
    "accounts.icp_fit": "the ICP-fit condition of the qualified stage",
    "accounts.parent_account_id": "roll-up to parent accounts",
    "campaigns.cost": "cost per acquired account and ROI",
    "opportunities.amount": "pipeline/revenue credit, influenced pipeline, deal size",
    "opportunities.opportunity_type": "upsell / cross-sell rates",
}


def format_description(desc: pd.DataFrame) -> str:
    """Render :func:`describe` output as the readable pre-flight report of ``validate``."""
    out: list[str] = []
    files = desc[desc.section == "file"]
    out.append("Files found")
    for r in files.itertuples(index=False):
        status = f"{r.file}: {int(r.rows)} rows" if r.file else "not found"
        out.append(f"  {r.object:<16} {status:<40} -> {r.table}" + (f"  ({r.note})" if r.note else ""))
    cols = desc[desc.section == "column"]
    out.append("")
    out.append("Canonical columns and their source fields")
    for table, grp in cols.groupby("table", sort=False):
        out.append(f"  {table}")
        for r in grp.itertuples(index=False):
            filled = "" if pd.isna(r.filled) else f"{100 * r.filled:5.1f}% filled"
            out.append(f"    {r.column:<18} <- {r.source:<55} {filled}" + (f"  {r.note}" if r.note else ""))
    missing = desc[desc.section == "missing"]
    out.append("")
    if len(missing):
        out.append("Missing, and what that disables")
        for r in missing.itertuples(index=False):
            what = (f"{r.table}.{r.column}" if r.column else r.table) or (
                f"{r.object}.{r.source}" if isinstance(r.source, str) and r.source else f"{r.object} file")
            out.append(f"  {what:<28} {r.note}")
    else:
        out.append("Missing, and what that disables: nothing")
    rej = desc[desc.section == "rejected"]
    if len(rej):
        out.append("")
        out.append("Rows set aside by the adapter (in the rejects ledger with the full reason)")
        for r in rej.itertuples(index=False):
            out.append(f"  {r.file:<40} {r.note:<22} {int(r.rows)} row(s)")
    pick = desc[desc.section == "picklist"]
    out.append("")
    if len(pick):
        out.append("Picklist values not in the default tables (edit a copy of the table to map them)")
        for r in pick.itertuples(index=False):
            out.append(f"  {r.object}.{r.source} = {shown(r.column)}: {int(r.rows)} row(s), {r.note}")
    else:
        out.append("Picklist values not in the default tables: none")
    return "\n".join(out)
