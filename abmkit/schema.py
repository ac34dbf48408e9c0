"""Canonical tables of the kit, the :class:`Dataset` container, ``load``/``save``
and validation with errors that say which table, column and rows are wrong and
what to do about it.

The contract (docs/data_model.md): timestamps are timezone-aware UTC, ids are strings,
``channel`` and ``touch_type`` use the fixed taxonomies below (stored as
categoricals with these categories, in this order, so every module can use their
integer codes).

Example
-------
>>> import abmkit
>>> ds = abmkit.load("data/sample/canonical")          # doctest: +SKIP
>>> ds.touchpoints.channel.cat.categories[:3].tolist()  # doctest: +SKIP
['paid_search', 'paid_social', 'display']
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from .results import Result

CHANNELS: tuple[str, ...] = (
    "paid_search", "paid_social", "display", "organic_search", "direct", "referral",
    "email", "webinar", "event", "content_syndication", "direct_mail",
    "sales_outreach", "partner", "review_site", "intent",
    # appended (codes of the channels above stay as they were)
    "organic_social", "video", "chat",
)
TOUCH_TYPES: tuple[str, ...] = (
    "impression", "click", "visit", "email_open", "email_click", "form_fill",
    "content_download", "webinar_registered", "webinar_attended", "event_attended",
    "meeting", "call", "demo_request", "intent_signal",
)
#: every touch type except impression and email_open
ENGAGEMENT_TOUCH_TYPES: frozenset[str] = frozenset(TOUCH_TYPES) - {"impression", "email_open"}
HIGH_INTENT_TOUCH_TYPES: frozenset[str] = frozenset({
    "content_download", "webinar_attended", "event_attended", "demo_request",
    "meeting", "intent_signal", "form_fill",
})
PERSONAS: tuple[str, ...] = ("decision_maker", "influencer", "user", "other")
LEAD_STATUSES: tuple[str, ...] = ("inquiry", "mql", "sql", "disqualified")
OPPORTUNITY_TYPES: tuple[str, ...] = ("new_business", "upsell", "cross_sell", "renewal")
STAGES: tuple[str, ...] = ("unaware", "aware", "engaged", "qualified", "sales_ready", "customer")

CHANNEL_DTYPE = pd.CategoricalDtype(list(CHANNELS))
TOUCH_TYPE_DTYPE = pd.CategoricalDtype(list(TOUCH_TYPES))

# column kinds: id/str -> object of str; ts -> datetime64[ns, UTC]; float; int (Int64);
# bool (pandas "boolean"); channel/touch_type -> categorical with the fixed taxonomy
KIND_DTYPES = {
    "id": object, "str": object, "ts": "datetime64[ns, UTC]", "float": "float64",
    "int": "Int64", "bool": "boolean", "channel": CHANNEL_DTYPE, "touch_type": TOUCH_TYPE_DTYPE,
}


@dataclass(frozen=True)
class Column:
    name: str
    kind: str
    required: bool = False
    allowed: tuple[str, ...] | None = None


@dataclass(frozen=True)
class TableSpec:
    name: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


def _cols(*specs) -> tuple[Column, ...]:
    return tuple(Column(*s) if isinstance(s, tuple) else s for s in specs)


TABLES: dict[str, TableSpec] = {
    "accounts": TableSpec("accounts", ("account_id",), _cols(
        ("account_id", "id", True), ("account_name", "str", True), ("domain", "str"),
        ("extra_domains", "str"), ("parent_account_id", "id"), ("industry", "str"),
        ("employee_count", "float"), ("annual_revenue", "float"), ("region", "str"),
        ("tier", "int"), ("is_target", "bool"), ("icp_fit", "float"), ("created_at", "ts"),
    )),
    "contacts": TableSpec("contacts", ("contact_id",), _cols(
        ("contact_id", "id", True), ("email", "str"), ("email_domain", "str"),
        ("first_name", "str"), ("last_name", "str"), ("company_name", "str"), ("title", "str"),
        ("persona", "str", False, PERSONAS), ("crm_account_id", "id"),
        ("lead_status", "str", False, LEAD_STATUSES), ("mql_at", "ts"), ("created_at", "ts"),
    )),
    "touchpoints": TableSpec("touchpoints", ("touchpoint_id",), _cols(
        ("touchpoint_id", "id", True), ("occurred_at", "ts", True), ("channel", "channel", True),
        ("touch_type", "touch_type", True), ("contact_id", "id"), ("account_id", "id"),
        ("campaign_id", "id"), ("engagement_seconds", "float"),
    )),
    "campaigns": TableSpec("campaigns", ("campaign_id",), _cols(
        ("campaign_id", "id", True), ("campaign_name", "str"), ("channel", "channel"),
        ("start_date", "ts"), ("end_date", "ts"), ("cost", "float"),
    )),
    "opportunities": TableSpec("opportunities", ("opportunity_id",), _cols(
        ("opportunity_id", "id", True), ("account_id", "id", True), ("created_at", "ts", True),
        ("closed_at", "ts"), ("is_closed", "bool"), ("is_won", "bool"), ("amount", "float"),
        ("opportunity_type", "str", False, OPPORTUNITY_TYPES),
    )),
    "revenue": TableSpec("revenue", ("account_id", "period_start"), _cols(
        ("account_id", "id", True), ("period_start", "ts", True),
        ("recurring_revenue", "float", True), ("active_users", "float"),
    )),
}
OPTIONAL_TABLES = frozenset({"revenue"})


class SchemaError(ValueError):
    """A table does not fit the canonical model. The message names the table, the
    column, up to five offending rows and what to do."""


def _where(source: str | None, table: str) -> str:
    return f"{table} ({source})" if source else table


def empty_table(name: str) -> pd.DataFrame:
    """A zero-row canonical table with every column at its canonical dtype."""
    spec = TABLES[name]
    return pd.DataFrame({c.name: pd.Series([], dtype=KIND_DTYPES[c.kind]) for c in spec.columns})


def coerce_table(df: pd.DataFrame, name: str, *, source: str | None = None) -> pd.DataFrame:
    """Return ``df`` with every canonical column present (missing optional ones
    added empty) at its canonical dtype, extra columns kept after them.

    Raises :class:`SchemaError` when a required column is missing or a value
    cannot take the canonical type. Cleaning raw exports is :mod:`abmkit.clean`'s
    job; this is for tables that are already canonical (parquet, hand-made frames).
    """
    spec = TABLES[name]
    missing = [c for c in spec.required if c not in df.columns]
    if missing:
        raise SchemaError(
            f"{_where(source, name)}: required column(s) {missing} missing; columns found: "
            f"{list(df.columns)}. Add them, or map them with a column map (abmkit.clean)."
        )
    # a positional index: duplicate labels would misalign columns when reassembled
    df = df.reset_index(drop=True)
    out = {}
    n = len(df)
    for col in spec.columns:
        if col.name not in df.columns:
            # np.full, not [None] * n: a Python list of 10^6 Nones costs seconds to convert
            out[col.name] = pd.Series(np.full(n, None, dtype=object) if col.kind in ("id", "str") else np.nan,
                                      index=df.index, dtype=KIND_DTYPES[col.kind])
            continue
        out[col.name] = coerce_column(df[col.name], col, name, source)
    extra = [c for c in df.columns if c not in spec.names]
    result = pd.DataFrame(out, index=df.index)
    for c in extra:
        result[c] = df[c]
    return result.reset_index(drop=True)


def _bad_rows_message(table, source, col, mask, values, expected, fix):
    rows = np.flatnonzero(np.asarray(mask))
    from .io.errors import shown  # values quoted in messages are cut to 80 characters

    # (a conditional inside one f-string field would take the !r of its last branch for both)
    quoted = [shown(v) if isinstance(v, str) else repr(v) for v in values.iloc[rows[:5]]]
    sample = ", ".join(f"row {r}: {q}" for r, q in zip(rows[:5], quoted))
    return (f"{_where(source, table)}: column '{col}' has {len(rows)} value(s) that are not "
            f"{expected} ({sample}). {fix}")


def coerce_column(s: pd.Series, col: Column, table: str, source: str | None) -> pd.Series:
    """One column of ``table`` at its canonical dtype (:data:`KIND_DTYPES`), or a
    :class:`SchemaError` naming the column, the rows and ``source``."""
    kind = col.kind
    s = s.reset_index(drop=True)
    if kind in ("id", "str"):
        out = s.astype(object).where(s.notna(), None)
        if kind == "id":
            # ids are strings: 1.0 from a float column would become "1.0", so refuse floats
            if pd.api.types.is_float_dtype(s.dtype):
                as_int = s.dropna()
                if (as_int != np.floor(as_int)).any():
                    raise SchemaError(f"{_where(source, table)}: id column '{col.name}' holds "
                                      "fractional numbers; ids must be strings.")
                out = s.astype("Int64").astype(object).where(s.notna(), None)
            # the per-value conversion only when something is not a string already (1M ids: ~2 s)
            if pd.api.types.infer_dtype(out, skipna=True) not in ("string", "empty"):
                out = out.map(lambda v: v if v is None or isinstance(v, str) else str(v))
            out = out.where(out != "", None)
        if col.allowed is not None:
            bad = out.notna() & ~out.isin(col.allowed)
            if bad.any():
                raise SchemaError(_bad_rows_message(
                    table, source, col.name, bad, out, f"one of {list(col.allowed)}",
                    "Map them to an allowed value (or leave empty) before loading."))
        return out.astype(object)
    if kind == "ts":
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            return s.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
        if pd.api.types.is_datetime64_dtype(s.dtype):
            raise SchemaError(f"{_where(source, table)}: column '{col.name}' holds naive "
                              "timestamps; canonical timestamps are UTC-aware. Localise them "
                              "(Series.dt.tz_localize) or clean the export with abmkit.clean.")
        parsed = pd.to_datetime(s, utc=True, errors="coerce", format="ISO8601")
        bad = parsed.isna() & s.notna()
        if bad.any():
            raise SchemaError(_bad_rows_message(table, source, col.name, bad, s, "ISO-8601 timestamps",
                                                "Fix the values or clean the export with abmkit.clean."))
        return parsed.astype("datetime64[ns, UTC]")
    if kind in ("float", "int"):
        parsed = pd.to_numeric(s, errors="coerce")
        if s.dtype == bool:
            parsed = s.astype(float)
        bad = parsed.isna() & s.notna()
        if bad.any():
            raise SchemaError(_bad_rows_message(table, source, col.name, bad, s, "numbers",
                                                "Fix the values or clean the export with abmkit.clean."))
        if kind == "int":
            if (parsed.dropna() != np.floor(parsed.dropna())).any():
                raise SchemaError(f"{_where(source, table)}: column '{col.name}' must hold whole numbers.")
            return parsed.astype("Int64")
        return parsed.astype("float64")
    if kind == "bool":
        if pd.api.types.is_bool_dtype(s.dtype):
            return s.astype("boolean")
        lowered = s.astype(object).map(lambda v: str(v).strip().lower() if pd.notna(v) else None)
        truthy = {"true", "1", "yes", "y", "t", "1.0"}
        falsy = {"false", "0", "no", "n", "f", "0.0"}
        bad = lowered.notna() & ~lowered.isin(truthy | falsy)
        if bad.any():
            raise SchemaError(_bad_rows_message(table, source, col.name, bad, s, "booleans (true/false)",
                                                "Use true/false, 1/0 or yes/no."))
        return lowered.map(lambda v: None if v is None else v in truthy).astype("boolean")
    if kind in ("channel", "touch_type"):
        allowed = CHANNELS if kind == "channel" else TOUCH_TYPES
        values = s.astype(object)
        bad = values.notna() & ~values.isin(allowed)
        if bad.any():
            raise SchemaError(_bad_rows_message(
                table, source, col.name, bad, values, f"canonical {kind} values ({', '.join(allowed)})",
                f"Map source labels to the taxonomy (column map `{kind}_map`, see abmkit.clean)."))
        return values.astype(KIND_DTYPES[kind])
    raise AssertionError(kind)


def validate_table(df: pd.DataFrame, name: str, *, source: str | None = None) -> pd.DataFrame:
    """Coerce ``df`` (see :func:`coerce_table`) and check required values and
    key uniqueness. Returns the coerced table; raises :class:`SchemaError`."""
    spec = TABLES[name]
    out = coerce_table(df, name, source=source)
    for col in spec.required:
        null = out[col].isna()
        if null.any():
            raise SchemaError(_bad_rows_message(name, source, col, null, out[col], "set (required column)",
                                                "Fill the value or drop the row before loading."))
    dup = out.duplicated(list(spec.key), keep=False)
    if dup.any():
        raise SchemaError(_bad_rows_message(
            name, source, "+".join(spec.key), dup, out[list(spec.key)].astype(str).agg("|".join, axis=1),
            "unique keys", "Deduplicate (abmkit.clean merges duplicates and records them in the ledger)."))
    if name == "touchpoints":
        neither = out["contact_id"].isna() & out["account_id"].isna()
        if neither.any():
            raise SchemaError(_bad_rows_message(
                name, source, "contact_id/account_id", neither, out["touchpoint_id"],
                "tied to a contact or an account", "Set contact_id or account_id on each touch."))
    return out


@dataclass
class Dataset(Result):
    """The canonical tables of one analysis (see docs/data_model.md).

    Every attribute is a DataFrame at canonical dtypes; ``revenue`` may be empty.
    Build one with :func:`load`, :func:`Dataset.from_frames` or
    :func:`abmkit.clean.clean_exports`.

    Example
    -------
    >>> import pandas as pd
    >>> ds = Dataset.from_frames(accounts=pd.DataFrame({"account_id": ["a1"], "account_name": ["Acme"]}))
    >>> len(ds.accounts), len(ds.touchpoints)
    (1, 0)
    """
    accounts: pd.DataFrame = field(default_factory=lambda: empty_table("accounts"))
    contacts: pd.DataFrame = field(default_factory=lambda: empty_table("contacts"))
    touchpoints: pd.DataFrame = field(default_factory=lambda: empty_table("touchpoints"))
    campaigns: pd.DataFrame = field(default_factory=lambda: empty_table("campaigns"))
    opportunities: pd.DataFrame = field(default_factory=lambda: empty_table("opportunities"))
    revenue: pd.DataFrame = field(default_factory=lambda: empty_table("revenue"))

    @classmethod
    def from_frames(cls, *, validate: bool = True, **frames: pd.DataFrame) -> "Dataset":
        """Build a Dataset from any subset of tables (others empty), coercing each
        to canonical dtypes and (``validate=True``) checking keys and required values."""
        unknown = set(frames) - set(TABLES)
        if unknown:
            raise SchemaError(f"unknown table(s) {sorted(unknown)}; tables are {list(TABLES)}")
        fn = validate_table if validate else coerce_table
        return cls(**{k: fn(v, k) for k, v in frames.items()})

    def tables(self) -> dict[str, pd.DataFrame]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    _summary_title = "Dataset"

    @property
    def summary(self) -> pd.DataFrame:
        """Rows per table and the time span of each table's main timestamp."""
        ts_col = {"accounts": "created_at", "contacts": "created_at", "touchpoints": "occurred_at",
                  "campaigns": "start_date", "opportunities": "created_at", "revenue": "period_start"}
        rows = []
        for name, df in self.tables().items():
            ts = df[ts_col[name]] if ts_col[name] in df else pd.Series([], dtype="datetime64[ns, UTC]")
            rows.append({"table": name, "rows": len(df), "first": ts.min(), "last": ts.max()})
        return pd.DataFrame(rows)


def load(data_dir: str | Path, *, validate: bool = True) -> Dataset:
    """Read a canonical dataset: one ``<table>.parquet`` per table in ``data_dir``.

    ``accounts.parquet`` is required; a missing other table is read as an empty
    canonical table (an export without touches or contacts: the analyses that need
    them are not applicable, :mod:`abmkit.applicability`).

    Example
    -------
    >>> ds = load("data/sample/canonical")   # doctest: +SKIP
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"dataset folder {data_dir} does not exist. Build the sample with "
                                "`python -m abmkit sample --out data/sample` or clean your exports "
                                "with abmkit.clean.clean_exports.")
    frames = {}
    for name in TABLES:
        path = data_dir / f"{name}.parquet"
        if not path.exists():
            if name != "accounts":
                continue
            raise FileNotFoundError(f"{path} is missing: a canonical dataset needs at least accounts.parquet "
                                    f"(and any of {', '.join(t + '.parquet' for t in TABLES if t != 'accounts')}).")
        df = pd.read_parquet(path)
        frames[name] = (validate_table if validate else coerce_table)(df, name, source=str(path))
    return Dataset(**frames)


def save(dataset: Dataset, data_dir: str | Path) -> Path:
    """Write every table of ``dataset`` as ``<table>.parquet`` under ``data_dir``
    (created); returns the folder. The tables hold personal data: files are written
    0600, atomically, and missing folders created 0700 (:mod:`abmkit.private`)."""
    from .private import private_dir, write_private

    data_dir = private_dir(data_dir)
    for name, df in dataset.tables().items():
        write_private(data_dir / f"{name}.parquet", lambda f, df=df: df.to_parquet(f, index=False))
    return data_dir


def categories_codes(values: Iterable[str], dtype: pd.CategoricalDtype) -> np.ndarray:
    """Integer codes of ``values`` in a fixed categorical dtype (-1 for unknown)."""
    return pd.Categorical(list(values), dtype=dtype).codes


#: employee-count bands of the "size_band" segment, the one definition used by KPI
#: segments, progression breakdowns and uplift covariates (upper bounds exclusive)
SIZE_BANDS: tuple[tuple[float, str], ...] = (
    (50, "1-49"), (250, "50-249"), (1000, "250-999"), (5000, "1000-4999"), (float("inf"), "5000+"),
)


def size_band(employee_count: pd.Series) -> pd.Series:
    """Employee-count band label per account (:data:`SIZE_BANDS`; "unknown" when missing).

    >>> size_band(pd.Series([10, 300, None])).tolist()
    ['1-49', '250-999', 'unknown']
    """
    edges = [-float("inf")] + [b for b, _ in SIZE_BANDS]
    labels = [lab for _, lab in SIZE_BANDS]
    v = pd.to_numeric(pd.Series(employee_count), errors="coerce")
    out = pd.cut(v, edges, right=False, labels=labels)
    return out.astype(object).where(out.notna(), "unknown")
