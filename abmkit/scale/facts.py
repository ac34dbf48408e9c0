"""What notebooks ask of a partitioned dataset besides the analyses: facts about its
touches (are there any, which columns hold a value, is there a touch in a period), the
account-sized view the applicability checks count on, and the partitions holding
given accounts. Never the touch table in the driver.

The touch facts come from one pass over the partitions' files (Arrow only: null counts
and the distinct days with a touch), reduced with ``any`` / set union; they equal what
:mod:`abmkit.applicability` finds on the in-memory dataset, because an "exists"
condition holds for the whole data exactly when it holds in some partition (or among
the touches without any account, read aside).

Example
-------
>>> TouchFacts(rows=0, filled={}, filled_on_account={}, days=np.array([], np.int64)).any_touch_between(
...     pd.Timestamp("2026-07-01", tz="UTC"), pd.Timestamp("2026-10-01", tz="UTC"))
False
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .partition import PartitionedDataset, partition_of
from .runtime import _compute, _map, _require_scale

_DAY_NS = 86_400 * 10**9


@dataclass
class TouchFacts:
    """Facts about every touch of a partitioned dataset.

    Attributes
    ----------
    rows : int
        touches in (placed on an account or not).
    filled : dict
        column -> whether any touch has a value in it (the whole touch table, as
        :func:`abmkit.applicability.column_filled`).
    filled_on_account : dict
        the same among the touches placed on an account (the KPI view's touches).
    days : ndarray
        the distinct UTC days (int64 days since 1970-01-01) with a touch placed on an
        account.
    """
    rows: int
    filled: dict
    filled_on_account: dict
    days: np.ndarray
    _periods: dict = field(default_factory=dict, repr=False)

    def any_touch_between(self, start: pd.Timestamp, end: pd.Timestamp) -> bool | None:
        """Whether a touch placed on an account falls in ``[start, end)``; None when the
        bounds are not whole UTC days (then the days cannot answer exactly)."""
        s, e = pd.Timestamp(start).value, pd.Timestamp(end).value
        if s % _DAY_NS or e % _DAY_NS:
            return None
        d = self.days
        lo, hi = np.searchsorted(d, s // _DAY_NS), np.searchsorted(d, e // _DAY_NS)
        return bool(hi > lo)


def _arrow_touch_facts(root: str, i: int) -> dict:
    """One partition's touch files, read as Arrow: rows, columns holding a value, days."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from pathlib import Path
    folder = Path(root) / "touchpoints" / f"part-{i:05d}"
    rows, filled, days = 0, {}, []
    for f in sorted(folder.glob("*.parquet")) if folder.is_dir() else []:
        t = pq.read_table(f)
        rows += t.num_rows
        for name in t.column_names:
            filled[name] = filled.get(name, False) or t[name].null_count < t.num_rows
        if "occurred_at" in t.column_names and t.num_rows:
            ts = t["occurred_at"]
            if not pa.types.is_timestamp(ts.type):
                continue
            ns = pc.drop_null(ts.cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64())).to_numpy()
            days.append(np.unique(np.floor_divide(ns, _DAY_NS)))
    return {"rows": rows, "filled": filled,
            "days": np.unique(np.concatenate(days)) if days else np.array([], np.int64)}


def _loaded_touch_facts(part) -> dict:
    """:func:`_arrow_touch_facts` of a loaded partition (a Dask DataFrame source)."""
    tp = part[0].touchpoints
    t = pd.to_datetime(tp["occurred_at"], utc=True).dropna()
    return {"rows": len(tp), "filled": {c: bool(tp[c].notna().any()) for c in tp.columns},
            "days": np.unique(np.floor_divide(t.array.asi8, _DAY_NS))}


def _unattributable_filled(parts) -> dict:
    """Columns with a value among the touches without any account (kept aside)."""
    import pyarrow.parquet as pq
    out: dict = {}
    root = getattr(parts, "root", None)
    for f in sorted((root / "unattributable").glob("touches-*.parquet")) if root is not None else []:
        t = pq.read_table(f)
        for name in t.column_names:
            out[name] = out.get(name, False) or t[name].null_count < t.num_rows
    return out


def touch_facts(parts, progress=None) -> TouchFacts:
    """:class:`TouchFacts` of a partitioned dataset: one pass over its partitions
    (kept on the handle)."""
    cache = getattr(parts, "_cache", None)
    if cache is not None and "touch_facts" in cache:
        return cache["touch_facts"]
    _require_scale()
    if progress is None:
        progress = getattr(parts, "options", {}).get("progress")
    if isinstance(parts, PartitionedDataset):
        import dask
        res = _compute([dask.delayed(_arrow_touch_facts, pure=True)(str(parts.root), i)
                        for i in range(parts.npartitions)], "touch facts", progress)
    else:
        res = _map(parts, _loaded_touch_facts, _progress=("touch facts", progress))
    on_account: dict = {}
    for r in res:
        for c, v in r["filled"].items():
            on_account[c] = on_account.get(c, False) or v
    aside = _unattributable_filled(parts)
    filled = {c: on_account.get(c, False) or aside.get(c, False) for c in set(on_account) | set(aside)}
    unattributable = int(parts.manifest.get("touchpoints_unattributable", 0))
    days = np.unique(np.concatenate([r["days"] for r in res])) if res else np.array([], np.int64)
    facts = TouchFacts(rows=sum(r["rows"] for r in res) + unattributable, filled=filled,
                       filled_on_account=on_account, days=days.astype(np.int64))
    if cache is not None:
        cache["touch_facts"] = facts
    return facts


def _part_touch_in(part, start, end) -> bool:
    t = pd.to_datetime(part[0].touchpoints["occurred_at"], utc=True)
    return bool(((t >= start) & (t < end)).fillna(False).any())


def touches_in_period(parts, p) -> bool:
    """Whether a touch placed on an account falls in period ``p`` (the KPI view's
    touches, as :data:`abmkit.applicability.DATA_NEEDS` ``touches_in_period``): from the
    days with a touch when the period is whole days, else one pass for that period."""
    facts = touch_facts(parts)
    found = facts.any_touch_between(p.start, p.end)
    if found is None:
        key = (p.start, p.end)
        if key not in facts._periods:
            facts._periods[key] = any(_map(parts, _part_touch_in, p.start, p.end, _progress=("touches in period",
                                                                                              None)))
        found = facts._periods[key]
    return found


def table_rows(parts, table: str) -> int:
    """Rows of ``table`` in the whole data (touches: the manifest's count in)."""
    if table == "touchpoints":
        return int(parts.manifest["touchpoints_in"]) if "touchpoints_in" in parts.manifest else touch_facts(parts).rows
    if table == "campaigns":
        return len(parts.campaigns)
    return len(getattr(parts._tables(), table))


def column_filled(parts, table: str, column: str) -> bool:
    """Whether ``table.column`` holds a value anywhere in the whole data."""
    if table == "touchpoints":
        return bool(touch_facts(parts).filled.get(column, False))
    df = parts.campaigns if table == "campaigns" else getattr(parts._tables(), table)
    return column in df.columns and bool(df[column].notna().any())


def account_view(parts):
    """The account-sized part of the data as an in-memory resolved dataset without
    touches (its mapping, MQA rule, MQA dates, ``as_of`` and ``data_end`` are the whole
    data's), for the checks and views that read no touch: opportunities, revenue,
    campaigns, populations, mapped contacts."""
    def build():
        from ..prepared import prepare
        from ..schema import Dataset, empty_table
        t = parts._tables()
        ds = Dataset(accounts=t.accounts, contacts=t.contacts, opportunities=t.opportunities, revenue=t.revenue,
                     campaigns=t.campaigns, touchpoints=empty_table("touchpoints"))
        end = parts.data_end
        view = prepare(ds, mapping=parts.contact_accounts, mqa=parts.options.get("mqa_rule"),
                       data_end=None if pd.isna(end) else end, as_of=parts.as_of)
        dates = parts.mqa_dates
        if dates is None:
            from .kernels import mqa_dates as _dates
            dates = _dates(parts)
        view.memo(("mqa_dates",), lambda: dates)
        return view
    return parts.memo(("account_view",), build)


def _part_mqa_at_end(part, span, mqa_dates, p) -> bool:
    from ..applicability import _mqa_at_end
    from .kernels import _kpi_view
    return _mqa_at_end(_kpi_view(part, span, mqa_dates), p)


def mqa_at_end(parts, p) -> bool:
    """Whether an addressable account meets the MQA rule at the period end (the rule
    reads the trailing window's touches: evaluated on every partition)."""
    from .kernels import _global_span, _mqa
    span = _global_span(parts)
    return any(_map(parts, _part_mqa_at_end, span, _mqa(parts), p, _progress=("MQA at period end", None)))


# --------------------------------------------------------------------------- accounts → partitions
def partitions_of_accounts(parts, account_ids) -> list[int]:
    """The partitions holding ``account_ids`` (a hash of the id: nothing is read)."""
    ids = pd.unique(pd.Series(list(account_ids), dtype=object).dropna())
    if not len(ids):
        return []
    return sorted(set(partition_of(ids, parts.npartitions).tolist()))


def map_partitions(parts, fn, which, *args, desc: str = "partitions", per_task: list | None = None,
                   **kwargs) -> list:
    """``fn((dataset, contact_accounts), *args, **kwargs)`` on the partitions ``which``
    only (loaded on the workers), results gathered in that order. ``per_task``: one
    more first argument per partition of ``which`` (e.g. its own accounts' rows)."""
    _require_scale()
    import dask

    from .partition import _loaders
    loaders = _loaders(parts)
    which = list(which)
    extra = [()] * len(which) if per_task is None else [(x,) for x in per_task]
    tasks = [dask.delayed(fn, pure=True)(loaders[i], *e, *args, **kwargs) for i, e in zip(which, extra)]
    return _compute(tasks, desc, getattr(parts, "options", {}).get("progress"))


# --------------------------------------------------------------------------- incremental value
def _part_exposure(part, accounts, campaign_ids, end_ns: int, exp_ns: int) -> np.ndarray:
    """The exposure rows of this partition's at-risk ``accounts`` (ids, entry times)."""
    from ..incremental_value import _exposure
    from .kernels import _resolved
    ids, entry = accounts
    return _exposure(_resolved(part, None), ids, entry, campaign_ids, end_ns, exp_ns)


def exposure_matrix(parts, risk_ids, entry, campaign_ids, end_ns: int, exp_ns: int) -> np.ndarray:
    """:func:`abmkit.incremental_value`'s exposure matrix (at-risk accounts ×
    campaigns: touched within the exposure window after entering the stage), each
    partition holding at-risk accounts filling its accounts' rows."""
    risk_ids = np.asarray(risk_ids, dtype=object)
    entry = np.asarray(entry)
    X = np.zeros((len(risk_ids), len(campaign_ids)), dtype=bool)
    if not len(risk_ids) or not len(campaign_ids):
        return X
    where = partition_of(risk_ids, parts.npartitions)
    which = sorted(set(where.tolist()))
    rows = [np.flatnonzero(where == i) for i in which]
    res = map_partitions(parts, _part_exposure, which, list(campaign_ids), end_ns, exp_ns, desc="exposure",
                         per_task=[(risk_ids[r], entry[r]) for r in rows])
    for r, x in zip(rows, res):
        X[r] = x
    return X
