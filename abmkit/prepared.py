"""The resolved dataset: one object every analysis takes.

Every analysis of the kit looks at *accounts*. Before any of them runs, three things
must be decided once and then shared, or the pages of one report disagree:

1. **which account each contact belongs to** (the lead-to-account mapping, with its
   fuzzy-name threshold and parent roll-up);
2. **what an MQA is** (the rule: engaged decision makers in a trailing window, or a
   score threshold);
3. **until when the data is observed** (``data_end``, the censoring date of every
   time-to-event number).

:func:`prepare` makes those decisions once and returns a :class:`ResolvedDataset`: the
cleaned tables, the mapping and the settings that produced it, every touch resolved
to its account (account ids dictionary-encoded as a pandas Categorical), the MQA rule
and ``data_end``. Analyses (``attribution``, ``engagement``, ``progression``,
``uplift``, ``kpis``) take it as their first argument and never map contacts again.
The report builds it once (notebook 02), saves it next to the cleaned data with
:meth:`ResolvedDataset.save`, and notebooks 03-05 open it with :func:`load_resolved`.

A plain :class:`~abmkit.schema.Dataset` passed to an analysis is prepared with the
default settings on the spot (convenient for small examples; in a report, prepare
once and pass the result). See docs/resolved_dataset.md.

Example
-------
>>> import pandas as pd
>>> from abmkit.schema import Dataset
>>> ds = Dataset.from_frames(
...     accounts=pd.DataFrame({"account_id": ["a1"], "account_name": ["Acme"], "domain": ["acme.com"]}),
...     contacts=pd.DataFrame({"contact_id": ["c1"], "email": ["ann@acme.com"]}),
...     touchpoints=pd.DataFrame({"touchpoint_id": ["t1", "t2"], "occurred_at": ["2026-01-01", "2026-01-02"],
...                               "channel": ["email", "display"], "touch_type": ["email_click", "impression"],
...                               "contact_id": ["c1", None], "account_id": [None, "a1"]}))
>>> data = prepare(ds, mapping=MappingSettings(fuzzy_threshold=85))
>>> data.touches[["touchpoint_id", "account_id", "account_source"]].values.tolist()
[['t1', 'a1', 'contact'], ['t2', 'a1', 'touch']]
>>> str(data.data_end)
'2026-01-02 00:00:00+00:00'
>>> data.mapping.fuzzy_threshold
85
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from .results import Result
from .schema import Dataset, load
from .timeutil import utc_timestamp

__all__ = ["MappingSettings", "MQARule", "ResolvedDataset", "prepare", "resolve", "load_resolved",
           "RESOLVED_FOLDER", "TARGET_POPULATION", "ALL_ACCOUNTS", "last_observed"]

#: sub-folder of a cleaned-data folder where :meth:`ResolvedDataset.save` writes
RESOLVED_FOLDER = "resolved"
#: the two account populations every number is stated on
TARGET_POPULATION = "target accounts"
ALL_ACCOUNTS = "all accounts"
_FORMAT_VERSION = 1
#: what a table missing from the export takes away (a note of the resolved dataset)
_EMPTY_TABLE_NOTES = {
    "contacts": "the lead-to-account mapping, buying-group coverage and the contact funnel",
    "touchpoints": "engagement, MQAs, attribution, progression, campaign influence and the reach KPIs",
    "campaigns": "campaign credit, campaign influence, cost per acquired account and ROI",
    "opportunities": "attribution, pipeline and the sales KPIs",
}


@dataclass(frozen=True)
class MappingSettings:
    """How contacts are mapped to accounts (see :func:`abmkit.mapping.map_contacts`).

    Attributes
    ----------
    fuzzy_threshold : float
        Minimum company-name similarity (0-100) for a fuzzy-name match.
    ambiguity_margin : float
        The best account must beat the runner-up by more than this many points.
    rollup_to_parent : bool
        Report each contact on its top-most parent account.
    """
    fuzzy_threshold: float = 90
    ambiguity_margin: float = 2.0
    rollup_to_parent: bool = False


@dataclass(frozen=True)
class MQARule:
    """The one definition of a marketing-qualified account (MQA).

    An account *is an MQA at instant t* when, over the trailing ``window_days`` up to
    t, at least ``min_decision_makers`` distinct contacts with persona
    ``decision_maker`` have engagement touches — or, when ``mqa_score`` is set, its
    engagement score reaches it. ``mqa_at`` is the first instant the rule held.

    Without persona data (no contact is a decision maker) the decision-maker rule can
    never hold: :func:`prepare` then uses the score rule with ``fallback_score`` (unless
    ``mqa_score`` is set) and says so in its ``notes`` and in :meth:`describe`. The
    default fallback, 30, is where the median decision-maker MQA of the bundled sample
    scores once personas are removed: a starting point to calibrate on your data.

    >>> MQARule().describe()
    '>= 3 engaged decision makers in the trailing 90 days'
    >>> MQARule(min_decision_makers=2, mqa_score=40).describe()
    '>= 2 engaged decision makers or engagement score >= 40 in the trailing 90 days'
    >>> MQARule().without_personas().describe()
    'engagement score >= 30 in the trailing 90 days (no persona data: the decision-maker rule cannot apply)'
    """
    min_decision_makers: int = 3
    mqa_score: float | None = None
    window_days: float = 90
    fallback_score: float = 30.0
    uses_personas: bool = True

    def without_personas(self) -> "MQARule":
        """The rule as it applies to data without decision makers: the score rule."""
        score = self.mqa_score if self.mqa_score is not None else self.fallback_score
        return replace(self, mqa_score=score, uses_personas=False)

    def describe(self) -> str:
        if not self.uses_personas:
            return (f"engagement score >= {self.mqa_score:g} in the trailing {self.window_days:g} days "
                    "(no persona data: the decision-maker rule cannot apply)")
        score = f" or engagement score >= {self.mqa_score:g}" if self.mqa_score is not None else ""
        return (f">= {self.min_decision_makers} engaged decision makers{score} "
                f"in the trailing {self.window_days:g} days")


def last_observed(ds: Dataset, as_of: pd.Timestamp | None) -> pd.Timestamp:
    """Last instant anything was observed (touches, opportunity creations, won
    closes), capped at ``as_of``: the censoring date of every time-to-event number."""
    cap = None if as_of is None else as_of.value
    ends = []
    for values in (ds.touchpoints["occurred_at"], ds.opportunities["created_at"],
                   ds.opportunities.loc[ds.opportunities["is_won"].fillna(False).astype(bool), "closed_at"]):
        v = pd.to_datetime(values, utc=True).dropna()
        if cap is not None:
            v = v[v.array.asi8 <= cap]
        if len(v):
            ends.append(v.max())
    last = max(ends) if ends else pd.NaT
    if as_of is None:
        return last
    # never censor after the last observation: a quarter still running must not count
    # unobserved days as "no progress"
    return as_of if pd.isna(last) else min(as_of, last)


def _resolve_touches(ds: Dataset, contact_accounts: pd.DataFrame) -> pd.DataFrame:
    """Touchpoints with ``account_id`` resolved (the touch's own, else its contact's
    mapped account) as a Categorical — categories: the accounts' ids in table order, then
    ids only touches carry, sorted — and ``account_source`` in {touch, contact,
    unattributable}. Vectorised on integer codes: the touch ids are hashed once (not at
    all when already categorical), contacts are looked up only for touches without
    their own account."""
    tp = ds.touchpoints
    col = tp["account_id"]
    if isinstance(col.dtype, pd.CategoricalDtype):
        own_codes = col.cat.codes.to_numpy().astype(np.int64)
        own_uniques = pd.Index(col.cat.categories, dtype=object)
    else:
        own_codes, own_uniques = pd.factorize(col.to_numpy(dtype=object))
        own_uniques = pd.Index(own_uniques, dtype=object)
    need = own_codes < 0
    lookup = (contact_accounts[["contact_id", "account_id"]].dropna(subset=["account_id"])
              .drop_duplicates("contact_id").set_index("contact_id")["account_id"])
    via_codes = np.full(int(need.sum()), -1, np.int64)
    via_uniques = pd.Index([], dtype=object)
    if need.any() and len(lookup):
        at = pd.Index(lookup.index, dtype=object).get_indexer(tp["contact_id"].to_numpy(dtype=object)[need])
        via_codes, via_uniques = pd.factorize(np.r_[lookup.to_numpy(dtype=object), None][at])
        via_uniques = pd.Index(via_uniques, dtype=object)
    known = pd.Index(pd.unique(ds.accounts["account_id"].dropna().astype(object)), dtype=object)
    extra = own_uniques.append(via_uniques).unique().difference(known).sort_values()
    categories = known.append(extra)
    codes = np.r_[categories.get_indexer(own_uniques), -1][own_codes]
    codes[need] = np.r_[categories.get_indexer(via_uniques), -1][via_codes]
    source = np.where(~need, 0, np.where(codes >= 0, 1, 2)).astype(np.int8)
    out = tp.copy(deep=False)
    out["account_id"] = pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(categories, ordered=False))
    out["account_source"] = pd.Categorical.from_codes(source, categories=["touch", "contact", "unattributable"])
    return out


@dataclass
class ResolvedDataset(Result):
    """Cleaned tables + the lead-to-account mapping and its settings + the MQA rule +
    account-resolved touches + ``data_end``. Build it with :func:`prepare`.

    Attributes
    ----------
    tables : Dataset
        The cleaned canonical tables as they were given (touches not resolved).
    contact_accounts : DataFrame
        One row per contact: ``contact_id, account_id, method, confidence, reason, ...``
        (:func:`abmkit.mapping.map_contacts` output, or the mapping that was supplied).
    mapping : MappingSettings or None
        The settings that produced ``contact_accounts`` (None when it was supplied).
    mqa_rule : MQARule
    as_of : Timestamp or None
        The instant the analysis looks from (a report: its period end).
    data_end : Timestamp
        Censoring date: the last observation, not after ``as_of``.
    touches : DataFrame
        The touchpoints with ``account_id`` resolved (Categorical; categories = the
        accounts' ids then ids only touches carry) and ``account_source``.
    notes : list of str
        What the resolution could not do (e.g. no persona data for the MQA rule).
    """
    tables: Dataset
    contact_accounts: pd.DataFrame
    mapping: MappingSettings | None
    mqa_rule: MQARule
    as_of: pd.Timestamp | None
    data_end: pd.Timestamp
    touches: pd.DataFrame
    notes: list = field(default_factory=list)
    _memo: dict = field(default_factory=dict, repr=False, compare=False)

    # tables, so a ResolvedDataset reads like a Dataset ------------------------------------
    @property
    def accounts(self) -> pd.DataFrame:
        return self.tables.accounts

    @property
    def contacts(self) -> pd.DataFrame:
        return self.tables.contacts

    @property
    def touchpoints(self) -> pd.DataFrame:
        """The resolved touches (same rows as the cleaned touchpoints table)."""
        return self.touches

    @property
    def campaigns(self) -> pd.DataFrame:
        return self.tables.campaigns

    @property
    def opportunities(self) -> pd.DataFrame:
        return self.tables.opportunities

    @property
    def revenue(self) -> pd.DataFrame:
        return self.tables.revenue

    # populations -----------------------------------------------------------------------
    @property
    def targets_flagged(self) -> bool:
        """Whether the accounts table flags any target account (``is_target``)."""
        return bool(self.accounts["is_target"].fillna(False).astype(bool).any())

    @property
    def target_population(self) -> str:
        """Name of the addressable population: target accounts when flagged, else all."""
        return TARGET_POPULATION if self.targets_flagged else ALL_ACCOUNTS

    def target_account_ids(self) -> pd.Index:
        """Ids of the addressable accounts: the target accounts when the data flags
        any, else every account."""
        acc = self.accounts
        if self.targets_flagged:
            acc = acc[acc["is_target"].fillna(False).astype(bool)]
        return pd.Index(acc["account_id"])

    # derived views computed once ----------------------------------------------------------
    def memo(self, key: tuple, build: Callable[[], Any]):
        """``build()`` once per ``key`` for this dataset (journeys, stage history, MQA
        dates...): several analyses on one resolved dataset share the work."""
        if key not in self._memo:
            self._memo[key] = build()
        return self._memo[key]

    @property
    def mqa_dates(self) -> pd.DataFrame:
        """``account_id, mqa_at``: the first instant each account met the MQA rule, up
        to ``data_end`` (accounts that never did are absent)."""
        def build():
            from .engagement import first_mqa_times
            return first_mqa_times(self)
        return self.memo(("mqa_dates",), build)

    @property
    def mapping_fingerprint(self) -> str:
        """A short hash of the contact → account pairs: two datasets share it exactly
        when they map every contact to the same account (reports record it on every
        page, so a reader can check all pages used one mapping)."""
        def build():
            ca = self.contact_accounts
            pairs = (ca["contact_id"].astype(str) + "\x1f" + ca["account_id"].astype(object).fillna("").astype(str))
            digest = hashlib.sha256("\x1e".join(sorted(pairs)).encode("utf-8")).hexdigest()
            return digest[:16]
        return self.memo(("mapping_fingerprint",), build)

    @property
    def settings(self) -> dict:
        """Everything that produced this dataset, JSON-friendly."""
        return {"mapping": asdict(self.mapping) if self.mapping is not None else "supplied",
                "mapping_fingerprint": self.mapping_fingerprint,
                "mqa_rule": asdict(self.mqa_rule), "mqa_rule_text": self.mqa_rule.describe(),
                "as_of": None if self.as_of is None else str(self.as_of),
                "data_end": None if pd.isna(self.data_end) else str(self.data_end)}

    _summary_title = "Resolved dataset"

    def _summary_metadata(self) -> dict:
        return {"data observed until": str(self.data_end), "MQA rule": self.mqa_rule.describe()}

    def touch_counts(self) -> dict:
        """Touches in (``"in"``), on their own account (``"touch"``), placed through their
        contact (``"contact"``) and without any account (``"unattributable"``); the same
        keys as :meth:`abmkit.scale.PartitionedDataset.touch_counts`."""
        src = self.touches["account_source"].value_counts()
        return {"in": int(len(self.touches)), "touch": int(src.get("touch", 0)),
                "contact": int(src.get("contact", 0)), "unattributable": int(src.get("unattributable", 0))}

    @property
    def summary(self) -> pd.DataFrame:
        """Rows per table, contacts mapped, touches resolved, and the settings."""
        return summary_table(self, {name: len(df) for name, df in self.tables.tables().items()})

    # persistence --------------------------------------------------------------------------
    def save(self, data_dir: str | Path) -> Path:
        """Write the mapping, the MQA dates and the settings under
        ``<data_dir>/resolved/`` (the tables themselves are the cleaned parquet files
        of ``data_dir``, written by :func:`abmkit.schema.save`); returns that folder.
        Personal data: files 0600, written atomically; ``resolved/`` (and any folder
        created for it) 0700 (:mod:`abmkit.private`)."""
        from .private import private_dir, write_private

        private_dir(data_dir)
        folder = private_dir(Path(data_dir) / RESOLVED_FOLDER, tighten=True)
        write_private(folder / "contact_accounts.parquet", lambda f: self.contact_accounts.to_parquet(f, index=False))
        write_private(folder / "mqa_dates.parquet", lambda f: self.mqa_dates.to_parquet(f, index=False))
        meta = {"format": _FORMAT_VERSION, **self.settings, "notes": list(self.notes),
                "rows": {k: len(v) for k, v in self.tables.tables().items()}}
        text = json.dumps(meta, indent=2, default=str)
        write_private(folder / "resolved.json", lambda f: f.write(text.encode("utf-8")))
        return folder


def prepare(dataset: Dataset, *, mapping: MappingSettings | pd.DataFrame | None = None,
            mqa: MQARule | None = None, as_of=None, data_end=None) -> ResolvedDataset:
    """Resolve a cleaned dataset once for every analysis.

    Parameters
    ----------
    dataset : Dataset
        Cleaned canonical tables (:func:`abmkit.load`, ``clean_exports(...).dataset``).
    mapping : MappingSettings or DataFrame, optional
        Settings for :func:`abmkit.mapping.map_contacts` (default
        ``MappingSettings()``), or a mapping already made (``contact_id, account_id``
        at least), used as given.
    mqa : MQARule, optional
        The MQA definition (default ``MQARule()``: 3 engaged decision makers in 90 days).
    as_of : timestamp-like, optional
        The instant the analyses look from (a report passes its period end): nothing
        after it counts as observed.
    data_end : timestamp-like, optional
        Force the censoring date (e.g. one partition of a bigger dataset uses the
        whole data's end); default: the last observation, not after ``as_of``.

    Returns
    -------
    ResolvedDataset
    """
    if isinstance(dataset, ResolvedDataset):
        raise TypeError("prepare() takes the cleaned tables (a Dataset), not a ResolvedDataset: "
                        "use data.tables to prepare them again with other settings")
    as_of_ts = None if as_of is None else utc_timestamp(as_of)
    notes: list[str] = []
    if isinstance(mapping, pd.DataFrame):
        missing = {"contact_id", "account_id"} - set(mapping.columns)
        if missing:
            raise ValueError(f"mapping table lacks column(s) {sorted(missing)}: pass the output of "
                             "abmkit.mapping.map_contacts or MappingSettings(...)")
        contact_accounts, settings = mapping, None
    else:
        settings = mapping if mapping is not None else MappingSettings()
        if not isinstance(settings, MappingSettings):
            raise TypeError(f"mapping must be MappingSettings or a DataFrame, not {type(settings).__name__}")
        from .mapping import map_contacts
        if len(dataset.accounts) and len(dataset.contacts):
            contact_accounts = map_contacts(dataset.contacts, dataset.accounts,
                                            fuzzy_threshold=settings.fuzzy_threshold,
                                            ambiguity_margin=settings.ambiguity_margin,
                                            rollup_to_parent=settings.rollup_to_parent)
        else:
            contact_accounts = pd.DataFrame({
                "contact_id": dataset.contacts["contact_id"].to_numpy(dtype=object),
                "account_id": pd.Series([None] * len(dataset.contacts), dtype=object),
                "method": "unmatched", "confidence": 0.0,
                "reason": "no accounts table" if not len(dataset.accounts) else "no_match"})
            if len(dataset.contacts):
                notes.append("no accounts: contacts could not be mapped")
    rule = mqa if mqa is not None else MQARule()
    if not isinstance(rule, MQARule):
        raise TypeError(f"mqa must be an MQARule, not {type(rule).__name__}")
    personas = dataset.contacts["persona"] if "persona" in dataset.contacts else pd.Series(dtype=object)
    if rule.uses_personas and not (personas == "decision_maker").any():
        rule = rule.without_personas()
        notes.append("no contact has persona decision_maker, so the decision-maker MQA rule cannot apply: "
                     f"MQAs use the engagement-score rule instead ({rule.describe()})")
    for table, what in _EMPTY_TABLE_NOTES.items():  # not an error: those analyses are n/a (abmkit.applicability)
        if not len(getattr(dataset, table)):
            notes.append(f"no {table} supplied: {what} are not applicable (n/a with the reason on each page)")
    end = utc_timestamp(data_end) if data_end is not None else last_observed(dataset, as_of_ts)
    touches = _resolve_touches(dataset, contact_accounts)
    return ResolvedDataset(tables=dataset, contact_accounts=contact_accounts, mapping=settings, mqa_rule=rule,
                           as_of=as_of_ts, data_end=end, touches=touches, notes=notes)


def resolve(data) -> ResolvedDataset:
    """``data`` itself when it is a :class:`ResolvedDataset`; a plain Dataset is
    prepared with the default settings (each call: prepare once and pass the result
    when several analyses run on the same data)."""
    if isinstance(data, ResolvedDataset):
        return data
    if getattr(type(data), "_abmkit_partitioned", False):  # analyses without a partitioned kernel
        return data.in_memory()
    if isinstance(data, Dataset):
        return prepare(data)
    raise TypeError(f"expected a ResolvedDataset (abmkit.prepare(dataset)) or a Dataset, not {type(data).__name__}")


def read_resolved_meta(data_dir: str | Path) -> tuple[Path, dict]:
    """The folder ``data_dir/resolved`` and its ``resolved.json`` (mapping settings, MQA
    rule, ``as_of``, ``data_end``, row counts), read by both engines.

    Raises FileNotFoundError, saying how to build it, when it is missing."""
    folder = Path(data_dir) / RESOLVED_FOLDER
    meta_path = folder / "resolved.json"
    if not meta_path.exists():
        raise FileNotFoundError(
            f"{meta_path} is missing: the resolved dataset is written by notebook 02 (or "
            f"`abmkit.prepare(abmkit.load({str(data_dir)!r})).save({str(data_dir)!r})`)")
    return folder, json.loads(meta_path.read_text("utf-8"))


def load_resolved(data_dir: str | Path, *, validate: bool = True) -> ResolvedDataset:
    """Open a dataset saved by :meth:`ResolvedDataset.save`: the cleaned tables of
    ``data_dir`` and the mapping, MQA rule, MQA dates and ``data_end`` of
    ``data_dir/resolved`` — nothing is mapped again.

    Raises FileNotFoundError when ``data_dir/resolved`` is missing (run notebook 02 or
    ``abmkit.prepare(abmkit.load(data_dir)).save(data_dir)`` first).
    """
    folder, meta = read_resolved_meta(data_dir)
    meta_path = folder / "resolved.json"
    if meta.get("format") != _FORMAT_VERSION:
        raise ValueError(f"{meta_path}: format {meta.get('format')!r} is not {_FORMAT_VERSION}; "
                         "run notebook 02 again to rebuild it")
    ds = load(data_dir, validate=validate)
    rows = {k: len(v) for k, v in ds.tables().items()}
    if rows != meta.get("rows"):
        raise ValueError(f"{folder} was built from other tables ({meta.get('rows')}) than {data_dir} holds "
                         f"now ({rows}): run notebook 02 again")
    contact_accounts = pd.read_parquet(folder / "contact_accounts.parquet")
    rule = MQARule(**meta["mqa_rule"])
    settings = MappingSettings(**meta["mapping"]) if isinstance(meta["mapping"], dict) else None
    as_of = None if meta["as_of"] is None else pd.Timestamp(meta["as_of"])
    end = pd.NaT if meta["data_end"] is None else pd.Timestamp(meta["data_end"])
    data = ResolvedDataset(tables=ds, contact_accounts=contact_accounts, mapping=settings, mqa_rule=rule,
                           as_of=as_of, data_end=end, touches=_resolve_touches(ds, contact_accounts),
                           notes=list(meta.get("notes", [])))
    mqa_dates = pd.read_parquet(folder / "mqa_dates.parquet")
    data.memo(("mqa_dates",), lambda: mqa_dates)
    return data


def summary_table(data, table_rows: dict) -> pd.DataFrame:
    """The ``item, value`` summary of a resolved dataset, in memory or partitioned (one
    layout for both engines): ``table_rows`` (table -> rows), contacts mapped, touches
    by how they found their account (``data.touch_counts()``), the MQA rule, the data
    end, the mapping settings and the notes."""
    counts = data.touch_counts()
    rows = [(f"{name} rows", n) for name, n in table_rows.items()]
    rows += [("contacts mapped to an account", int(data.contact_accounts["account_id"].notna().sum())),
             ("touches on their own account", counts["touch"]),
             ("touches placed through their contact", counts["contact"]),
             ("touches with no account (unattributable)", counts["unattributable"]),
             ("MQA rule", data.mqa_rule.describe()),
             ("data observed until", str(data.data_end))]
    if data.mapping is not None:
        rows += [("fuzzy-name threshold", data.mapping.fuzzy_threshold),
                 ("parent roll-up", data.mapping.rollup_to_parent)]
    rows += [("note", n) for n in data.notes]
    return pd.DataFrame(rows, columns=["item", "value"])
