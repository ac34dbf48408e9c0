"""Raw frames -> canonical tables, the rejects ledger, repairs and the quality summary.

This is the engine behind :func:`abmkit.clean.clean_exports`; CRM adapters call
:func:`clean_frames` directly with frames they built themselves.

What happens to a row, in order (the first reason that applies wins):

1. ``malformed_row`` (wrong number of fields) / ``unbalanced_quote`` (the line of a
   stray quote still open after ``max_record_lines`` lines; found while reading),
2. ``missing_required: <column>``,
3. ``unparseable_timestamp|unparseable_number|unparseable_boolean: <column>='<value>'``,
4. ``negative_amount: <column>`` (money) / ``negative_number: <column>`` (counts, seconds),
5. ``unmapped_channel: <label>`` / ``unmapped_touch_type: <label>``,
6. ``no_contact_or_account`` (a touch tied to neither),
7. exact duplicates of a kept row (same canonical values in every mapped column)
   are *merged*, not rejected,
8. ``duplicate_key_conflict: <key>='<id>'`` (same id, different content: the first
   row in file order is kept),
9. ``orphan_reference: <column>='<id>'`` (touch -> unknown contact/account,
   opportunity or revenue -> unknown account; checked only against tables the
   column map provides).

Steps 3-4 reject rows of the fact tables (touchpoints, opportunities, revenue)
and of any table when the column is required. In the entity tables (accounts,
contacts, campaigns) a bad optional value is blanked and recorded in
``repairs`` instead, so that one bad date does not orphan a contact's touches.
Other repairs: malformed emails and domains blanked, unmapped picklist values
(persona, lead status, opportunity type, campaign channel) blanked,
``crm_account_id`` / ``parent_account_id`` / touch ``campaign_id`` pointing at an
unknown record blanked. Repairs keep the raw value, so nothing is lost.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from ..progress import progress_bar

from .. import schema
from ..domains import registrable_domain, split_email
from ..results import Result
from .colmap import DEFAULTS, LabelMap, label_key, label_maps, load_column_map
from ..io.csv import RawFrame
from ..io.errors import shown, shown_list
from .errors import CleanError
from .parse import (NS_NAT, to_arrow, encode, normalise_ids, null_token_mask, parse_bools,
                    parse_numbers, parse_timestamps, parse_timestamps_detail, trim_rows)

LEDGER_COLUMNS = ["source_file", "source_row", "table", "reason", "raw_values", "reason_code", "column"]
REPAIR_COLUMNS = ["source_file", "source_row", "table", "column", "issue", "raw_value", "action"]
MERGED_COLUMNS = ["source_file", "source_row", "table", "reason", "kept_source_file", "kept_source_row"]
SUMMARY_COLUMNS = ["table", "files", "rows_in", "rows_clean", "rows_rejected", "rows_merged",
                   "rows_repaired", "lines_in", "conservation_ok"]
#: tables whose rows are referenced by others: bad optional values are repaired, not rejected
ENTITY_TABLES = frozenset({"accounts", "contacts", "campaigns"})
#: processing order: referenced tables first
TABLE_ORDER = ("accounts", "contacts", "campaigns", "touchpoints", "opportunities", "revenue")
MONEY_COLUMNS = frozenset({"amount", "cost", "recurring_revenue", "annual_revenue"})
NON_NEGATIVE = frozenset({"amount", "cost", "recurring_revenue", "annual_revenue", "engagement_seconds",
                          "employee_count", "active_users"})
PICKLISTS = frozenset({"persona", "lead_status", "opportunity_type"})
REASON_CODES = ("malformed_row", "unbalanced_quote", "missing_required", "unparseable_timestamp", "unparseable_number",
                "unparseable_boolean", "negative_amount", "negative_number", "unmapped_channel",
                "unmapped_touch_type", "future_timestamp", "no_contact_or_account", "duplicate_key_conflict",
                "orphan_reference")
_ISSUE_ACTIONS = {"excel_serial_date": "read as a spreadsheet serial day (1900 date system)",
                  "ambiguous_local_time": "read as the first occurrence (before clocks go back)",
                  "nonexistent_local_time": "shifted forward past the skipped hour"}
#: timestamps that may not lie in the future (they would move the data's end / censoring date)
FUTURE_CHECKED = {"touchpoints": ("occurred_at",), "opportunities": ("created_at",)}
FUTURE_GRACE_DAYS = 365
_KIND_FAIL = {"ts": "unparseable_timestamp", "float": "unparseable_number", "int": "unparseable_number",
              "bool": "unparseable_boolean"}
_TIER = re.compile(r"(?i)^\s*(?:tier\s*)?(\d+)(?:\.0+)?\s*$")


@dataclass
class CleanResult(Result):
    """Outcome of cleaning one export.

    Attributes
    ----------
    dataset : canonical :class:`abmkit.schema.Dataset`
    rejects : the ledger, one row per rejected input row: ``source_file, source_row,
        table, reason, raw_values`` (JSON of the raw row) plus ``reason_code`` and
        ``column`` for grouping
    quality : per table ``rows_in, rows_clean, rows_rejected, rows_merged,
        rows_repaired, lines_in, conservation_ok`` (``lines_in``: physical lines below
        the headers of the files read, each in a record or blank; ``conservation_ok``
        checks rows and lines) (a plain DataFrame; also ``.summary`` and
        ``to_frame()``); ``print_summary()`` / ``str(result)`` give it as text with
        the rejected, repaired and unmapped counts
    unmapped : ``table, column, label, rows, outcome, source, file, key, advice``: source
        labels no map knows, the column map's label maps or an adapter's picklist tables
        (:mod:`abmkit.clean.labels`); ``advice`` names the file and key that fix each
    repairs : kept rows whose value was fixed or blanked: ``source_file, source_row,
        table, column, issue, raw_value, action``
    merged : exact duplicates merged into a kept row (``kept_source_file/row``)
    files : per file read: table, source_file, rows, encoding, delimiter
    sources : per table and canonical column, the source header it came from
    """
    dataset: schema.Dataset
    rejects: pd.DataFrame
    quality: pd.DataFrame
    unmapped: pd.DataFrame
    repairs: pd.DataFrame
    merged: pd.DataFrame
    files: pd.DataFrame = field(default_factory=pd.DataFrame)
    sources: pd.DataFrame = field(default_factory=pd.DataFrame)

    _summary_title = "Data-quality summary (rows_in = clean + rejected + merged per table)"

    @property
    def summary(self) -> pd.DataFrame:
        """The per-table quality frame (:attr:`quality`)."""
        return self.quality

    @property
    def headline(self) -> str:
        """Rows read, kept, rejected and merged over all tables, in one sentence."""
        q = self.quality
        n = {c: int(q[c].sum()) if len(q) else 0 for c in ("rows_in", "rows_clean", "rows_rejected", "rows_merged")}
        return (f"{n['rows_in']:,} rows read: {n['rows_clean']:,} clean, {n['rows_rejected']:,} rejected, "
                f"{n['rows_merged']:,} merged duplicates.")

    @property
    def tables_not_supplied(self) -> list[str]:
        """Canonical tables the export did not supply (not in the column map / the
        adapter's files): they are empty canonical tables, and the analyses that need
        them are not applicable (:mod:`abmkit.applicability`), not an error."""
        read = set(self.quality["table"]) if len(self.quality) else set()
        return [t for t in schema.TABLES if t not in read and not len(getattr(self.dataset, t))]

    @property
    def notes(self) -> list[str]:
        """One line per table not supplied: what it means for the analyses."""
        return [f"{t}: not in the export — an empty table; analyses that need {t} are n/a"
                for t in self.tables_not_supplied]

    def _summary_text(self, decimals: int = 3) -> str:
        # the quality table, then the rejected / repaired / unmapped counts (all integers)
        return "\n".join([self._title(), self.headline, *[f"Note: {n}" for n in self.notes],
                          _quality_text(self.quality, self.rejects, self.unmapped, self.repairs)])

    def to_frame(self) -> pd.DataFrame:
        """The per-table quality summary (same as ``summary``)."""
        return self.quality

    def rejects_by_reason(self) -> pd.DataFrame:
        """Rejected rows per table and reason code (for the bar chart)."""
        if self.rejects.empty:
            return pd.DataFrame({"table": [], "reason_code": [], "rows": []})
        return (self.rejects.groupby(["table", "reason_code"], sort=False).size().rename("rows")
                .reset_index().sort_values("rows", ascending=False, kind="stable").reset_index(drop=True))

    def sanity_checks(self, period=None):
        """Data sanity checks of the cleaned dataset (:func:`abmkit.clean.sanity.sanity_checks`:
        load stamps, closes before creates, touches after conversions, placeholders, the
        rejected share per table and, with ``period``, the period against the data's range).
        ``save`` writes them (without a period) as ``sanity_checks.csv``."""
        from .sanity import sanity_checks
        return sanity_checks(self.dataset, period=period, rejects_summary=self.quality, rejects=self.rejects)

    def save(self, out_dir: str | Path) -> Path:
        """Write the canonical parquet tables (``schema.save``) plus ``rejects.parquet``,
        ``rejects.csv``, ``repairs.csv``, ``merged.csv``, ``unmapped.csv`` and
        ``quality.csv`` into ``out_dir``, plus ``contact_id_lookup.csv`` (masked id -> CRM
        id, :func:`abmkit.masking.write_lookup`).

        They hold personal data: files are written 0600 and the folders created for them
        0700 (:mod:`abmkit.private`); CSV cells a spreadsheet would run as a formula are
        neutralised (``rejects.parquet`` keeps the raw values exactly)."""
        from ..masking import write_lookup
        from ..outputs import write_csv
        from ..private import write_private

        out = schema.save(self.dataset, out_dir)
        write_private(out / "rejects.parquet", lambda f: self.rejects.to_parquet(f, index=False))
        write_csv(self.rejects, out / "rejects.csv")
        write_csv(self.repairs, out / "repairs.csv")
        write_csv(self.merged, out / "merged.csv")
        write_csv(self.unmapped, out / "unmapped.csv")
        write_csv(self.to_frame(), out / "quality.csv")
        write_csv(self.sanity_checks().to_frame(), out / "sanity_checks.csv")   # abmkit.clean.sanity
        ids = {v for df in self.dataset.tables().values() if "contact_id" in df.columns
               for v in pd.unique(df["contact_id"].dropna())}
        write_lookup(ids, out)
        return out


# ------------------------------------------------------------------ helpers
def _find_header(headers: Sequence[str], wanted: str) -> str | None:
    if wanted in headers:
        return wanted
    key = wanted.strip().casefold()
    hits = [h for h in headers if h.strip().casefold() == key]
    return hits[0] if len(hits) == 1 else None


class _Table:
    """Working state of one table while it is cleaned (row-aligned numpy arrays)."""

    def __init__(self, name: str, cfg: Mapping, frames: list[RawFrame]):
        self.name, self.cfg, self.frames = name, cfg, frames
        self.spec = schema.TABLES[name]
        self.n = sum(len(f.data) for f in frames)
        self.frame_idx = np.concatenate([np.full(len(f.data), i, np.int32) for i, f in enumerate(frames)]
                                        ) if frames else np.zeros(0, np.int32)
        self.pos = np.concatenate([np.arange(len(f.data)) for f in frames]) if frames else np.zeros(0, np.int64)
        self.reason = np.full(self.n, None, dtype=object)   # reason code
        self.column = np.full(self.n, None, dtype=object)   # column the reason is about
        self.detail = np.full(self.n, None, dtype=object)   # value shown in the reason
        self.values: dict[str, np.ndarray] = {}             # canonical values per column
        self.dedup: list[str] = []                          # columns compared for exact duplicates
        self.rejected = np.zeros(self.n, dtype=bool)
        self.idcodes: dict[str, tuple] = {}                 # id column -> (row codes, distinct ids)
        self.merged_into = np.full(self.n, -1, dtype=np.int64)
        self.repairs: list[pd.DataFrame] = []
        self.unmapped: list[pd.DataFrame] = []
        self.sources: dict[str, str] = {}

    # rows still alive (neither rejected nor merged)
    @property
    def alive(self) -> np.ndarray:
        return ~self.rejected & (self.merged_into < 0)

    def reject(self, mask: np.ndarray, code: str, column: str | None = None, detail=None):
        m = np.asarray(mask, bool) & ~self.rejected & (self.merged_into < 0)
        if not m.any():
            return
        self.rejected |= m
        self.reason[m] = code
        self.column[m] = column
        if detail is not None:
            self.detail[m] = detail if isinstance(detail, str) else detail[m]

    def repair(self, mask: np.ndarray, column: str, issue: str, raw_value: np.ndarray, action: str):
        m = np.flatnonzero(np.asarray(mask, bool))
        if not len(m):
            return
        self.repairs.append(pd.DataFrame({
            "_row": m, "table": self.name, "column": column, "issue": issue,
            "raw_value": raw_value if isinstance(raw_value, str) else raw_value[m], "action": action}))

    def source_of(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        files = np.array([f.source_file for f in self.frames], dtype=object)
        fi = self.frame_idx[rows]
        src_rows = np.empty(len(rows), np.int64)
        for i, f in enumerate(self.frames):
            sel = fi == i
            src_rows[sel] = f.source_row[self.pos[rows[sel]]]
        return files[fi] if len(files) else np.array([], dtype=object), src_rows


class _RawValues:
    """Row-level raw values, materialised only for the rows asked for (the few
    rejected or repaired ones), not for a million kept rows."""

    def __init__(self, uniq: np.ndarray, codes: np.ndarray):
        self.uniq, self.codes = uniq, codes

    def __getitem__(self, rows) -> np.ndarray:
        c = self.codes[rows]
        out = np.full(len(c), None, dtype=object)
        if len(self.uniq) and (c >= 0).any():
            idx = c[c >= 0]
            out[c >= 0] = (np.asarray(self.uniq.take(pa.array(idx)).to_pylist(), dtype=object)
                           if isinstance(self.uniq, pa.Array) else self.uniq[idx])
        return out


def _raw_column(table: _Table, header_per_frame: list[str]):
    import pyarrow as pa
    arrays = [to_arrow(f.data[h]) for f, h in zip(table.frames, header_per_frame)]
    if not arrays:
        return pa.array([], type=pa.string())
    return arrays[0] if len(arrays) == 1 else pa.concat_arrays(arrays)


def _take(u: np.ndarray, codes: np.ndarray, fill):
    """Row values from per-distinct values; ``fill`` where codes == -1."""
    if len(u) == 0:
        return np.full(len(codes), fill, dtype=u.dtype if u.dtype != object else object)
    out = u[np.maximum(codes, 0)]   # fancy indexing returns a new array: safe to write into
    missing = codes < 0
    if missing.any():
        out[missing] = fill
    return out


def _resolve_headers(table: _Table, origin: str) -> dict[str, list[str]]:
    """canonical column -> source header per frame; CleanError when a mapped header is missing."""
    mapped = {c: h for c, h in table.cfg.get("columns", {}).items() if h}
    out: dict[str, list[str]] = {}
    for f in table.frames:
        headers = [str(h) for h in f.data.columns]
        for col, wanted in mapped.items():
            hit = _find_header(headers, wanted)
            if hit is None:
                hint = ""
                others = [d for d in (",", ";", "\t", "|") if len(headers) == 1 and d in headers[0]
                          and d != getattr(f, "delimiter", None)]
                if others:
                    hint = (f" The header reads as one column: the file looks delimited by {others[0]!r}, not "
                            f"{getattr(f, 'delimiter', ',')!r}; set `delimiter: auto` (or {others[0]!r}) for "
                            f"{table.name} in the column map.")
                raise CleanError(
                    f"{f.source_file}: column '{wanted}' (mapped to {table.name}.{col} in the {origin}) is not "
                    f"in the file. Columns found: {shown_list(headers)}. Fix the column map's `columns:` entry for "
                    f"{table.name}.{col}, or re-export with that column.{hint}")
            out.setdefault(col, []).append(hit)
    # canonical columns the map does not mention but every file carries under their own name
    for col in table.spec.names:
        if col in mapped or col in table.cfg.get("columns", {}):  # mapped to null = deliberately skipped
            continue
        hits = [_find_header([str(h) for h in f.data.columns], col) for f in table.frames]
        if hits and all(h is not None for h in hits):
            out[col] = hits
    for col in table.spec.required:
        if col not in out and table.frames:
            f = table.frames[0]
            raise CleanError(
                f"{f.source_file}: required column {table.name}.{col} is not mapped and no header is named "
                f"'{col}'. Columns found: {shown_list(str(h) for h in f.data.columns)}. Add `{col}: <source header>` under "
                f"tables.{table.name}.columns in the {origin}.")
    table.sources = {c: hs[0] for c, hs in out.items()}
    return out


_SCIENTIFIC = re.compile(r"^[+-]?\d(?:[.,]\d+)?[eE]\+?\d+$")


def _refuse_scientific_ids(t: _Table, col: str, u: np.ndarray, codes: np.ndarray) -> None:
    """Ids like 1.23457E+15 are a spreadsheet's rounding of long numbers: digits are
    lost and different ids collide, so nothing can be repaired. Stop with the fix."""
    if not len(u):
        return
    sci = pc.match_substring_regex(pa.array(u, type=pa.string()), _SCIENTIFIC.pattern).to_numpy(zero_copy_only=False)
    if not sci.any():
        return
    rows = np.flatnonzero((codes >= 0) & sci[np.maximum(codes, 0)])
    files, src = t.source_of(rows[:1])
    raise CleanError(
        f"{files[0]}: column '{t.sources.get(col, col)}' ({t.name}.{col}), row {src[0]}: id "
        f"{shown(u[codes[rows[0]]])} is in scientific notation ({len(rows)} row(s) like it) - Excel rounded long "
        "numeric ids, so digits are lost and ids may collide. Re-export from the source system without "
        "opening the file in Excel (or format the column as Text before saving).")


def _apply_value_map(uniq: np.ndarray, vmap: Mapping) -> np.ndarray:
    if not vmap or not len(uniq):
        return uniq
    table = {}
    for k, v in vmap.items():
        # YAML 1.1 reads unquoted Yes/No/On/Off keys as booleans: accept every spelling
        spellings = (("true", "yes", "y", "on") if k is True else ("false", "no", "n", "off") if k is False
                     else (k,))
        table.update({label_key(sp): v for sp in spellings})
    keys = [label_key(u) for u in uniq]
    out = uniq.copy()
    for i, k in enumerate(keys):
        if k in table:
            v = table[k]
            out[i] = None if v is None else ("true" if v is True else "false" if v is False else str(v))
    return out


def _strip_nul(t: _Table, col: str, arr: pa.Array) -> pa.Array:
    """NUL bytes (a corrupted transfer) are removed; the rows keep a repair record."""
    has = pc.fill_null(pc.match_substring(arr, "\x00"), False).to_numpy(zero_copy_only=False)
    if not has.any():
        return arr
    raw = np.asarray(arr.to_pylist(), dtype=object) if has.sum() > 1000 else None
    rows = np.flatnonzero(has)
    values = raw[rows] if raw is not None else np.asarray(arr.take(pa.array(rows)).to_pylist(), dtype=object)
    detail = np.full(t.n, None, dtype=object)
    detail[rows] = [v.replace("\x00", "\\0") for v in values]
    t.repair(has, col, "nul_bytes", detail, "removed")
    return pc.replace_substring(arr, "\x00", "")


def _clean_column(t: _Table, col: str, raw, maps: dict[str, LabelMap]):
    raw = _strip_nul(t, col, raw if isinstance(raw, pa.Array) else to_arrow(raw))
    spec_col = t.spec.column(col)
    kind, required = spec_col.kind, spec_col.required
    entity = t.name in ENTITY_TABLES and not required
    vmap = t.cfg.get("values", {}).get(col, {})
    if kind == "ts" and not vmap:
        _clean_timestamps(t, col, raw, required, entity)
        return
    codes, uniq = encode(raw)
    raw_uniq = uniq
    is_null = np.zeros(len(uniq), bool)
    if vmap:
        uniq = _apply_value_map(uniq, vmap)
        is_null = pd.isna(uniq)
        uniq = np.where(is_null, "", uniq).astype(object)
    # typed columns read null tokens (NA, null, -, ...) as missing; text keeps them
    if kind != "str" or col in PICKLISTS:
        is_null |= null_token_mask(uniq)
    if is_null.any():
        codes = np.where((codes >= 0) & is_null[np.maximum(codes, 0)], -1, codes)
    present = codes >= 0
    raw_rows = _RawValues(raw_uniq, codes)

    def fail(u_failed: np.ndarray, code: str):
        rows = present & _take(u_failed, codes, False).astype(bool)
        if not rows.any():
            return rows
        if entity:
            t.repair(rows, col, code, raw_rows, "blanked")
        else:
            t.reject(rows, code, col, raw_rows)
        return rows

    if required:
        t.reject(~present, "missing_required", col)

    if kind in ("id", "str") and col not in PICKLISTS:
        u = uniq
        if kind == "id":
            _refuse_scientific_ids(t, col, u, codes)
            u = normalise_ids(u)
        if col == "email":
            parts = split_email(pd.Series(u, dtype=object))
            valid = parts["email_valid"].to_numpy(bool)
            fail(~valid, "invalid_email")
            email = parts["email"].to_numpy(object)
            email[~valid] = None
            t.values["email"] = _take(email, codes, None)
            t.values["_email_domain"] = _take(parts["email_domain"].to_numpy(object), codes, None)
            u_canon = email
        elif col in ("domain", "email_domain"):
            dom = registrable_domain(pd.Series(u, dtype=object)).to_numpy(object)
            bad = np.array([d is None for d in dom], dtype=bool)
            fail(bad, "invalid_domain")
            t.values[col] = _take(dom, codes, None)
            u_canon = dom
        elif col == "extra_domains":
            joined = []
            for v in u:
                parts = [p for p in re.split(r"[;,|\s]+", v) if p]
                doms = registrable_domain(pd.Series(parts, dtype=object)).tolist() if parts else []
                doms = list(dict.fromkeys(d for d in doms if d))
                joined.append(";".join(doms) if doms else None)
            dom = np.array(joined, dtype=object)
            fail(np.array([d is None for d in dom], dtype=bool), "invalid_domain")
            t.values[col] = _take(dom, codes, None)
            u_canon = dom
        else:
            if kind == "id":
                if u is not uniq:  # normalisation may have made two raw ids equal ("12.0", "12")
                    ucode, u_ids = pd.factorize(u)
                    t.idcodes[col] = (np.where(codes >= 0, ucode[np.maximum(codes, 0)], -1), np.asarray(u_ids, object))
                else:
                    t.idcodes[col] = (codes, u)
            if kind == "str":  # line breaks inside quoted values: one convention
                u = pd.Series(u, dtype=object).str.replace("\r\n?", "\n", regex=True).to_numpy(dtype=object)
            t.values[col] = _take(u, codes, None)
            u_canon = u
    elif col in PICKLISTS or kind in ("channel", "touch_type"):
        lm = maps[col if col in PICKLISTS else kind]
        mapped = np.array([lm.lookup(v) for v in uniq], dtype=object) if len(uniq) else np.zeros(0, object)
        unknown = np.array([m is None for m in mapped], dtype=bool)
        rows_unknown = present & _take(unknown, codes, False).astype(bool)
        if rows_unknown.any():
            rejecting = kind in ("channel", "touch_type") and (t.name == "touchpoints" or required)
            # rows already rejected for an earlier reason are not counted: for `rejected` the counts are
            # exactly the ledger's unmapped_<kind> rows (abmkit.clean.labels adds the file, key and advice)
            counted = rows_unknown & ~t.rejected
            labels = raw_rows[counted]
            counts = pd.Series(labels, dtype=object).value_counts()
            t.unmapped.append(pd.DataFrame({"table": t.name, "column": col, "label": counts.index.astype(str),
                                            "rows": counts.to_numpy(),
                                            "outcome": f"rejected: unmapped_{kind}" if rejecting else "blanked",
                                            "source": t.sources.get(col, col)}))
            if rejecting:
                t.reject(rows_unknown, f"unmapped_{kind}", col, raw_rows)
            else:
                t.repair(rows_unknown, col, f"unmapped_{col}", raw_rows, "blanked")
        if kind in ("channel", "touch_type"):
            cats = list(schema.CHANNELS if kind == "channel" else schema.TOUCH_TYPES)
            u_idx = np.array([cats.index(m) if m is not None else -1 for m in mapped], dtype=np.int64)
            t.values[col] = _take(u_idx, codes, -1)
            u_canon = u_idx
        else:
            t.values[col] = _take(mapped, codes, None)
            u_canon = mapped
    elif kind == "ts":
        u = uniq
        ns, failed = parse_timestamps(u, timezone=t.cfg.get("timezone", "UTC"), dayfirst=t.cfg.get("dayfirst", False))
        bad_rows = fail(failed, _KIND_FAIL[kind])
        vals = _take(ns, codes, NS_NAT)
        vals[bad_rows] = NS_NAT
        t.values[col] = vals
        u_canon = ns
    elif kind in ("float", "int", "bool"):
        u = uniq
        if kind == "bool":
            num, failed = parse_bools(u)
        elif col == "icp_fit":
            b, bfail = parse_bools(u)
            pct = pd.Series(u, dtype=object).str.strip().str.endswith("%").to_numpy(dtype=bool)
            x, xfail = parse_numbers(pd.Series(u, dtype=object).str.rstrip("% ").to_numpy(dtype=object),
                                     t.cfg.get("decimal", "."))
            x = np.where(pct, x / 100.0, x)   # "85%" = 0.85
            num = np.where(~bfail, b, x)
            failed = bfail & (xfail | (x < 0) | (x > 1))
        elif col == "tier":
            ext = pd.Series(u, dtype=object).str.extract(_TIER)[0]
            num = pd.to_numeric(ext, errors="coerce").to_numpy(float)
            failed = np.isnan(num)
        else:
            num, failed = parse_numbers(u, t.cfg.get("decimal", "."))
            if kind == "int":
                failed = failed | (np.floor(num) != num)
        bad_rows = fail(failed, _KIND_FAIL[kind])
        vals = _take(np.where(failed, np.nan, num), codes, np.nan)
        vals[bad_rows] = np.nan
        if col in NON_NEGATIVE:
            neg = vals < 0
            if neg.any():
                code = "negative_amount" if col in MONEY_COLUMNS else "negative_number"
                if entity:
                    t.repair(neg, col, code, raw_rows, "blanked")
                else:
                    t.reject(neg, code, col, raw_rows)
                vals[neg] = np.nan
        t.values[col] = vals
        u_canon = np.where(failed, np.nan, num)
    else:  # pragma: no cover - every schema kind is handled above
        raise AssertionError(kind)
    t.dedup.append(col)


def _clean_timestamps(t: _Table, col: str, raw, required: bool, entity: bool):
    """Timestamps are mostly distinct: parse them row by row (vectorised by shape)
    instead of building a dictionary first."""
    codes, arr = trim_rows(raw)
    present = codes >= 0
    raw_rows = _RawValues(arr, codes)
    if required:
        t.reject(~present, "missing_required", col)
    ns, failed, issue = parse_timestamps_detail(arr, timezone=t.cfg.get("timezone", "UTC"),
                                                dayfirst=t.cfg.get("dayfirst", False))
    bad = present & failed
    if bad.any():
        if entity:
            t.repair(bad, col, _KIND_FAIL["ts"], raw_rows, "blanked")
        else:
            t.reject(bad, _KIND_FAIL["ts"], col, raw_rows)
    ns = ns.copy()
    ns[~present | failed] = NS_NAT
    noted = np.flatnonzero(present & ~failed & pd.notna(issue))
    for what in pd.unique(issue[noted]):
        rows = np.zeros(t.n, bool)
        rows[noted[issue[noted] == what]] = True
        t.repair(rows, col, what, raw_rows, _ISSUE_ACTIONS[what])
    if col in FUTURE_CHECKED.get(t.name, ()):
        limit = (pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=FUTURE_GRACE_DAYS)).value
        future = present & ~failed & (ns > limit)
        t.reject(future, "future_timestamp", col, raw_rows)
    t.values[col] = ns
    t.dedup.append(col)


def _combine_codes(cols: list[np.ndarray], n: int) -> np.ndarray:
    """One int64 group code per row from several code arrays (exact, no hashing)."""
    if len(cols) == 1:
        return cols[0]
    key = np.zeros(n, np.int64)
    for c in cols:
        width = int(c.max()) + 2 if len(c) else 1
        key = pd.factorize(key * width + (c + 1))[0].astype(np.int64)
    return key


def _row_codes(t: _Table, col: str, rows: np.ndarray) -> np.ndarray:
    """Canonical-value codes of ``rows`` in one column (-1 = missing)."""
    if col in t.idcodes:
        return t.idcodes[col][0][rows]
    v = t.values[col][rows]
    if col == "email":  # the same address in another case is the same contact
        v = pd.Series(v, dtype=object).str.lower().to_numpy(dtype=object)
    if v.dtype == np.int64 and col not in ("channel", "touch_type"):   # timestamps (NaT = missing)
        return np.where(v == NS_NAT, -1, pd.factorize(v)[0])
    return pd.factorize(pd.Series(v), use_na_sentinel=True)[0].astype(np.int64)


def _dedup(t: _Table):
    """Merge exact duplicates, then reject later rows whose key repeats with other content.

    Both need the key to repeat, so only rows with a repeated key are compared
    column by column, on their canonical values."""
    alive = np.flatnonzero(t.alive)
    if not len(alive):
        return
    key_cols = [c for c in t.spec.key if c in t.values]
    key = _combine_codes([_row_codes(t, c, alive) for c in key_cols], len(alive))
    cand = alive[pd.Series(key).duplicated(keep=False).to_numpy()]
    if not len(cand):
        return
    full = _combine_codes([_row_codes(t, c, cand) for c in sorted(t.dedup)], len(cand))
    first = pd.Series(np.arange(len(cand))).groupby(full, sort=False).transform("min").to_numpy()
    dup = first != np.arange(len(cand))
    t.merged_into[cand[dup]] = cand[first[dup]]
    rest = cand[~dup]
    key = _combine_codes([_row_codes(t, c, rest) for c in key_cols], len(rest))
    conflict = pd.Series(key).duplicated(keep="first").to_numpy()
    if conflict.any():
        rows = rest[conflict]
        label = np.array(["|".join(str(t.values[c][r]) for c in t.spec.key) for r in rows], dtype=object)
        mask = np.zeros(t.n, bool)
        mask[rows] = True
        detail = np.full(t.n, None, dtype=object)
        detail[rows] = label
        t.reject(mask, "duplicate_key_conflict", "+".join(t.spec.key), detail)


def _table_checks(t: _Table):
    if t.name == "campaigns" and "start_date" in t.values and "end_date" in t.values:
        s_, e_ = t.values["start_date"], t.values["end_date"]
        bad = (s_ != NS_NAT) & (e_ != NS_NAT) & (e_ < s_) & t.alive
        if bad.any():
            raw = np.array([str(pd.Timestamp(v, tz="UTC")) for v in e_[bad]], dtype=object)
            detail = np.full(t.n, None, dtype=object)
            detail[bad] = raw
            t.repair(bad, "end_date", "end_before_start", detail, "blanked")
            e_[bad] = NS_NAT
    if t.name == "touchpoints":
        none = np.full(t.n, -1, dtype=np.int64)
        c = t.idcodes.get("contact_id", (none,))[0]
        a = t.idcodes.get("account_id", (none,))[0]
        t.reject((c < 0) & (a < 0), "no_contact_or_account", "contact_id/account_id")


def _isnull(v: np.ndarray) -> np.ndarray:
    return pd.isna(v) if v.dtype == object else np.zeros(len(v), bool)


def _known_ids(t: _Table | None, col: str) -> set | None:
    if t is None or col not in t.values:
        return None
    return set(t.values[col][t.alive | (t.merged_into >= 0)].tolist()) - {None}


def _break_parent_cycles(t: _Table) -> None:
    """Parent links that form a cycle (a1 -> a2 -> a1, or an account its own parent)
    are blanked and recorded (``parent_cycle`` / ``self_parent``): roll-ups would
    never end. Chains leading into a cycle are kept.

    Vectorised on the functional graph "account -> parent": nodes not on a cycle are
    peeled off layer by layer (in-degree 0), what remains are the cycles."""
    if "parent_account_id" not in t.values or "account_id" not in t.values:
        return
    alive = np.flatnonzero(t.alive)
    ids = pd.Index(t.values["account_id"][alive])
    parent_ids = t.values["parent_account_id"][alive]
    parent = ids.get_indexer(pd.Series(parent_ids, dtype=object))   # -1: none or unknown
    n = len(alive)
    self_loop = parent == np.arange(n)
    on = np.ones(n, bool)
    while True:
        indeg = np.bincount(parent[on & (parent >= 0)], minlength=n)
        peel = on & (indeg == 0)
        if not peel.any():
            break
        on &= ~peel
        # a node whose parent is off the graph (none / unknown) can never be on a cycle
        no_parent = on & ((parent < 0) | ~on[np.maximum(parent, 0)])
        on &= ~no_parent
    cyc = on & ~self_loop
    for mask, what in ((self_loop, "self_parent"), (cyc, "parent_cycle")):
        if mask.any():
            rows = np.zeros(t.n, bool)
            rows[alive[mask]] = True
            t.repair(rows, "parent_account_id", what, t.values["parent_account_id"].copy(), "blanked")
            t.values["parent_account_id"][alive[mask]] = None


def _references(tables: dict[str, _Table]):
    accounts = _known_ids(tables.get("accounts"), "account_id")
    contacts = _known_ids(tables.get("contacts"), "contact_id")
    campaigns = _known_ids(tables.get("campaigns"), "campaign_id")

    def unknown(t: _Table, col: str, known: set | None):
        if known is None or col not in t.values:
            return np.zeros(t.n, bool)
        if col in t.idcodes:  # check each distinct id once
            codes, u = t.idcodes[col]
            u_known = pd.Series(u, dtype=object).isin(known).to_numpy()
            return (codes >= 0) & ~_take(u_known, codes, True)
        v = t.values[col]
        return ~_isnull(v) & ~pd.Series(v, dtype=object).isin(known).to_numpy()

    if "accounts" in tables:
        t = tables["accounts"]
        _break_parent_cycles(t)
        m = unknown(t, "parent_account_id", accounts) & t.alive
        t.repair(m, "parent_account_id", "unknown_parent_account", t.values.get("parent_account_id"), "blanked")
        if m.any():
            t.values["parent_account_id"][m] = None
    if "contacts" in tables:
        t = tables["contacts"]
        m = unknown(t, "crm_account_id", accounts) & t.alive
        t.repair(m, "crm_account_id", "unknown_account", t.values.get("crm_account_id"), "blanked")
        if m.any():
            t.values["crm_account_id"][m] = None
    if "touchpoints" in tables:
        t = tables["touchpoints"]
        for col, known in (("contact_id", contacts), ("account_id", accounts)):
            m = unknown(t, col, known)
            t.reject(m, "orphan_reference", col, t.values.get(col))
        m = unknown(t, "campaign_id", campaigns) & t.alive
        t.repair(m, "campaign_id", "unknown_campaign", t.values.get("campaign_id"), "blanked")
        if m.any():
            t.values["campaign_id"][m] = None
    for name in ("opportunities", "revenue"):
        if name in tables:
            t = tables[name]
            t.reject(unknown(t, "account_id", accounts), "orphan_reference", "account_id", t.values.get("account_id"))


def _canonical_frame(t: _Table) -> pd.DataFrame:
    """The kept rows as a canonical table: every column of the spec, in order, at
    its canonical dtype (built once: no re-consolidation of a million-row frame)."""
    rows = np.flatnonzero(t.alive)
    n = len(rows)
    empty = schema.empty_table(t.name)
    out = {}
    for c in t.spec.columns:
        if c.name == "email_domain" and "_email_domain" in t.values:
            v = t.values["_email_domain"][rows]
            if "email_domain" in t.values:  # fall back to a mapped domain column when the email has none
                other = t.values["email_domain"][rows]
                v = np.where(_isnull(v), other, v)
            out[c.name] = v.astype(object, copy=False)
            continue
        if c.name not in t.values:
            dtype = empty[c.name].dtype
            out[c.name] = (np.full(n, None, dtype=object) if dtype == object else
                           pd.array([None] * n, dtype=dtype) if str(dtype) in ("Int64", "boolean") else
                           pd.Categorical.from_codes(np.full(n, -1), dtype=dtype)
                           if isinstance(dtype, pd.CategoricalDtype) else
                           pd.DatetimeIndex(np.full(n, NS_NAT).view("datetime64[ns]")).tz_localize("UTC")
                           if isinstance(dtype, pd.DatetimeTZDtype) else np.full(n, np.nan))
            continue
        v = t.values[c.name][rows]
        if c.kind == "ts":
            out[c.name] = pd.DatetimeIndex(v.view("datetime64[ns]")).tz_localize("UTC")
        elif c.kind in ("channel", "touch_type"):
            dtype = schema.CHANNEL_DTYPE if c.kind == "channel" else schema.TOUCH_TYPE_DTYPE
            out[c.name] = pd.Categorical.from_codes(v.astype(np.int64), dtype=dtype)
        elif c.kind == "bool":
            out[c.name] = pd.arrays.BooleanArray(v == 1.0, np.isnan(v))
        elif c.kind == "int":
            out[c.name] = pd.array(v, dtype="Float64").astype("Int64")
        elif c.kind == "float":
            out[c.name] = v.astype(float, copy=False)
        else:
            out[c.name] = v.astype(object, copy=False)
    return pd.DataFrame(out, copy=False)


def _check_canonical(df: pd.DataFrame, name: str) -> pd.DataFrame:
    """Check a cleaned table against the canonical model. Small tables go through
    :func:`abmkit.schema.validate_table` itself; big ones get the same checks
    vectorised (the schema's coercion maps ids row by row, too slow for millions
    of touches): canonical columns and dtypes, required values set. Keys are
    unique by construction (:func:`_dedup` works on canonical codes)."""
    if len(df) <= 20_000:
        return schema.validate_table(df, name)
    spec = schema.TABLES[name]
    empty = schema.empty_table(name)
    if list(df.columns) != spec.names:  # pragma: no cover - a cleaning bug
        raise AssertionError(f"{name}: columns {list(df.columns)}, canonical {spec.names}")
    for c in spec.names:
        if df[c].dtype != empty[c].dtype:  # pragma: no cover
            raise AssertionError(f"{name}.{c}: dtype {df[c].dtype}, canonical {empty[c].dtype}")
    for c in spec.required:
        if df[c].isna().any():  # pragma: no cover
            raise AssertionError(f"{name}.{c}: required value missing after cleaning")
    return df


def _ledger(t: _Table) -> pd.DataFrame:
    rows = np.flatnonzero(t.rejected)
    if not len(rows):
        return pd.DataFrame(columns=LEDGER_COLUMNS)
    files, src = t.source_of(rows)
    raw_json = np.empty(len(rows), dtype=object)
    fi = t.frame_idx[rows]
    for i, f in enumerate(t.frames):
        sel = np.flatnonzero(fi == i)
        if len(sel):
            raw_json[sel] = _json_rows(f.data.iloc[t.pos[rows[sel]]])
    codes, cols, det = t.reason[rows], t.column[rows], t.detail[rows]
    reasons = [_reason_text(c, col, d) for c, col, d in zip(codes, cols, det)]
    return pd.DataFrame({"source_file": files, "source_row": src, "table": t.name, "reason": reasons,
                         "raw_values": raw_json, "reason_code": codes, "column": cols})


def _json_strings(uniq: np.ndarray) -> np.ndarray:
    """JSON string literals of str values: quoting only, json.dumps where escapes are needed."""
    if not len(uniq):
        return np.zeros(0, dtype=object)
    arr = pa.array([str(u) for u in uniq], type=pa.string())
    needs = pc.match_substring_regex(arr, r'["\\\x00-\x1f\x7f\x{2028}\x{2029}]').to_numpy(zero_copy_only=False)
    out = ('"' + pd.Series(arr.to_numpy(zero_copy_only=False), dtype=object) + '"').to_numpy(dtype=object)
    out[needs] = [json.dumps(str(u), ensure_ascii=False) for u in uniq[needs]]
    return out


def _json_rows(sub: pd.DataFrame) -> np.ndarray:
    """One JSON object string per row of raw strings (each distinct value encoded once)."""
    out = np.full(len(sub), "{", dtype=object)
    for j, col in enumerate(sub.columns):
        codes, uniq = pd.factorize(sub[col].astype(object), use_na_sentinel=True)
        enc = np.append(_json_strings(np.asarray(uniq, dtype=object)), "null")
        out = out + (("" if j == 0 else ", ") + json.dumps(str(col), ensure_ascii=False) + ": ") + enc[codes]
    return out + "}"


def _reason_text(code: str, col: str | None, detail) -> str:
    if code in ("unmapped_channel", "unmapped_touch_type"):
        return f"{code}: {detail}"
    if code in ("missing_required", "no_contact_or_account"):
        return f"{code}: {col}"
    if code == "malformed_row":
        return f"{code}: {detail}"
    if detail is None:
        return f"{code}: {col}" if col else code
    return f"{code}: {col}='{detail}'"


def _malformed_ledger(name: str, frames: list[RawFrame]) -> pd.DataFrame:
    """The records the reader set aside: ragged rows (``malformed_row``) and the lines of
    stray quotes (``unbalanced_quote``); ``abmkit.io.csv.Damaged`` tuples (or plain
    ``(row, raw, detail)`` triples from an adapter)."""
    rows = []
    for f in frames:
        for m in f.malformed:
            r, text, why = m[0], m[1], m[2]
            code = m[3] if len(m) > 3 and m[3] else "malformed_row"
            rows.append((f.source_file, r, name, f"{code}: {why}", text, code, None))
    return pd.DataFrame(rows, columns=LEDGER_COLUMNS)


def _lines_in(frames: Sequence[RawFrame]) -> tuple[int | None, bool]:
    """Physical lines below the headers of a table's files, and whether the reader
    accounted for every one (in a kept record, a set-aside one, or blank). ``(None, True)``
    when a frame was not read from a file (an adapter's)."""
    frames = list(frames)
    if not frames or any(getattr(f, "lines", None) is None for f in frames):
        return None, True
    return sum(int(f.lines) for f in frames), all(f.lines_accounted == f.lines for f in frames)


def _repairs_frame(t: _Table) -> pd.DataFrame:
    if not t.repairs:
        return pd.DataFrame(columns=REPAIR_COLUMNS)
    rep = pd.concat(t.repairs, ignore_index=True)
    rep = rep[t.alive[rep["_row"].to_numpy()]]  # rejected rows are in the ledger, merged ones follow their kept row
    files, src = t.source_of(rep["_row"].to_numpy())
    rep = rep.assign(source_file=files, source_row=src)
    rep["raw_value"] = rep["raw_value"].astype(object).where(rep["raw_value"].notna(), None)
    return rep[REPAIR_COLUMNS].reset_index(drop=True)


def _merged_frame(t: _Table) -> pd.DataFrame:
    rows = np.flatnonzero(t.merged_into >= 0)
    if not len(rows):
        return pd.DataFrame(columns=MERGED_COLUMNS)
    files, src = t.source_of(rows)
    kfiles, ksrc = t.source_of(t.merged_into[rows])
    return pd.DataFrame({"source_file": files, "source_row": src, "table": t.name, "reason": "exact_duplicate",
                         "kept_source_file": kfiles, "kept_source_row": ksrc})


def _quality_text(summary: pd.DataFrame, rejects: pd.DataFrame, unmapped: pd.DataFrame, repairs: pd.DataFrame) -> str:
    """The quality table and the rejected / repaired / unmapped counts as text."""
    lines = [summary.to_string(index=False)]
    if len(rejects):
        lines.append("\nRejected rows by reason:")
        lines.append(rejects.groupby(["table", "reason_code"]).size().rename("rows").reset_index().to_string(index=False))
    if len(repairs):
        lines.append("\nRepaired values (row kept):")
        lines.append(repairs.groupby(["table", "column", "issue"]).size().rename("rows").reset_index().to_string(index=False))
    if len(unmapped):
        lines.append("\nUnmapped labels (each row's `advice` names the file and key to add it to):")
        lines.append(unmapped.head(20)[[c for c in unmapped.columns if c not in ("file", "key")]]
                     .to_string(index=False))
    return "\n".join(lines)


def clean_frames(frames: Mapping[str, Sequence[RawFrame]], column_map, *, pre_rejects: pd.DataFrame | None = None,
                 files: pd.DataFrame | None = None, unmapped: Sequence[Mapping] | None = None) -> CleanResult:
    """Clean raw string frames into the canonical dataset.

    Parameters
    ----------
    frames
        table name -> list of :class:`RawFrame` (raw strings, with file name and
        row numbers for the ledger).
    column_map
        dict, YAML path or preset name (docs/column_map.md); only ``columns``,
        ``values``, ``timezone``, ``dayfirst``, ``decimal`` and the label maps are
        used here (``file``/``encoding``/``delimiter`` are for reading).
    pre_rejects
        ledger rows already rejected by the caller (an adapter): they count in
        ``rows_in`` and ``rows_rejected`` of their table.
    unmapped
        labels the caller's own maps did not know (an adapter's picklist tables), as
        rows of :data:`abmkit.clean.labels.UNMAPPED_COLUMNS`; by default the ones the
        adapter attached to ``pre_rejects`` (:func:`abmkit.clean.labels.attach`). They
        are listed in ``CleanResult.unmapped`` with the cleaner's own.

    Returns
    -------
    CleanResult

    Example
    -------
    >>> import pandas as pd
    >>> raw = pd.DataFrame({"Id": ["1", "1", "2"], "Name": ["Acme", "Acme", ""]})
    >>> cm = {"tables": {"accounts": {"file": "a.csv", "columns": {"account_id": "Id", "account_name": "Name"}}}}
    >>> r = clean_frames({"accounts": [RawFrame("a.csv", raw)]}, cm)
    >>> r.to_frame()[["rows_in", "rows_clean", "rows_rejected", "rows_merged"]].values.tolist()
    [[3, 1, 1, 1]]
    >>> r.rejects["reason"].tolist()
    ['missing_required: account_name']
    """
    cm = column_map if isinstance(column_map, Mapping) and "_origin" in column_map else load_column_map(column_map)
    origin = cm.get("_origin", "column map")
    maps = label_maps(cm)
    unknown = set(frames) - set(schema.TABLES)
    if unknown:
        raise CleanError(f"unknown table(s) {sorted(unknown)}; canonical tables are {list(schema.TABLES)}")
    tables: dict[str, _Table] = {}
    todo = [name for name in TABLE_ORDER if name in frames]
    # progress per table (abmkit.progress: on a terminal or in an interactive notebook)
    for name in progress_bar(iterable=todo, desc="cleaning", unit="table"):
        cfg = cm["tables"].get(name) or {**DEFAULTS, "columns": {}, "values": {}}
        t = _Table(name, cfg, list(frames[name]))
        headers = _resolve_headers(t, origin)
        for col in t.spec.names:
            if col in headers:
                _clean_column(t, col, _raw_column(t, headers[col]), maps)
        _table_checks(t)
        _dedup(t)
        tables[name] = t
    _references(tables)

    from .labels import attached, finish as finish_unmapped
    adapter_unmapped = attached(pre_rejects) if unmapped is None else list(unmapped)
    ledgers, repairs, merged, unmapped, summaries = [], [], [], [], []
    pre = pre_rejects if pre_rejects is not None else pd.DataFrame(columns=LEDGER_COLUMNS)
    if pre.attrs:  # the adapter's hand-over (read above) does not travel on into the ledger
        pre = pre.copy(deep=False)
        pre.attrs = {}
    for col in LEDGER_COLUMNS:
        if col not in pre.columns:
            pre = pre.assign(**{col: (pre["reason"].astype(str).str.split(":").str[0] if col == "reason_code"
                                      and "reason" in pre else None)})
    out_frames = {}
    for name in TABLE_ORDER:
        t = tables.get(name)
        pre_t = pre[pre["table"] == name]
        mal = _malformed_ledger(name, t.frames if t else list(frames.get(name, [])))
        led = _ledger(t) if t else pd.DataFrame(columns=LEDGER_COLUMNS)
        rep = _repairs_frame(t) if t else pd.DataFrame(columns=REPAIR_COLUMNS)
        mer = _merged_frame(t) if t else pd.DataFrame(columns=MERGED_COLUMNS)
        if t is not None:
            out_frames[name] = _canonical_frame(t)
            unmapped.extend(t.unmapped)
        n_in = (t.n if t else 0) + len(mal) + len(pre_t)
        n_clean = len(out_frames.get(name, ()))
        n_rej = len(led) + len(mal) + len(pre_t)
        n_mer = len(mer)
        if t is None and not len(pre_t) and not len(mal):
            continue
        # rows: every record is kept, rejected or merged; lines: every physical line of the files
        # is in a record (kept or set aside) or blank, so no record swallowed lines unnoticed
        lines_in, lines_ok = _lines_in(t.frames if t else frames.get(name, []))
        summaries.append({"table": name, "files": len(t.frames) if t else 0, "rows_in": n_in,
                          "rows_clean": n_clean, "rows_rejected": n_rej, "rows_merged": n_mer,
                          "rows_repaired": int(rep["source_row"].groupby(rep["source_file"]).nunique().sum())
                          if len(rep) else 0, "lines_in": lines_in,
                          "conservation_ok": n_in == n_clean + n_rej + n_mer and lines_ok})
        ledgers.extend([x for x in (pre_t[LEDGER_COLUMNS], mal, led) if len(x)])
        if len(rep):
            repairs.append(rep)
        if len(mer):
            merged.append(mer)
    summary = pd.DataFrame(summaries, columns=SUMMARY_COLUMNS)
    summary["lines_in"] = summary["lines_in"].astype("Int64")
    bad = summary[~summary["conservation_ok"].astype(bool)]
    if len(bad):  # a bug, not bad input: every row (and line) must be accounted for
        raise AssertionError(f"row conservation violated: {bad.to_dict('records')}")
    rejects = (pd.concat(ledgers, ignore_index=True) if ledgers else pd.DataFrame(columns=LEDGER_COLUMNS))
    rejects = rejects.astype({"source_row": "int64"}) if len(rejects) else rejects
    repairs_df = pd.concat(repairs, ignore_index=True) if repairs else pd.DataFrame(columns=REPAIR_COLUMNS)
    merged_df = pd.concat(merged, ignore_index=True) if merged else pd.DataFrame(columns=MERGED_COLUMNS)
    unmapped_df = finish_unmapped(unmapped, adapter_unmapped, cm)
    dataset = schema.Dataset(**{name: _check_canonical(df, name) for name, df in out_frames.items()})
    sources = pd.DataFrame([{"table": n, "column": c, "source_header": h}
                            for n, t in tables.items() for c, h in t.sources.items()],
                           columns=["table", "column", "source_header"])
    return CleanResult(dataset=dataset, rejects=rejects, quality=summary, unmapped=unmapped_df, repairs=repairs_df,
                       merged=merged_df, files=files if files is not None else pd.DataFrame(), sources=sources)
