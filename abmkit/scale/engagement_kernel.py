"""Engagement scores, the MQA page and MQA dates on a partitioned dataset.

Not a public API: :func:`abmkit.engagement.engagement_scores`,
:func:`abmkit.engagement.mqa` and the notebook 02 training checks call these when they
receive a partitioned dataset (:func:`abmkit.engine.is_partitioned`), with their own
arguments.

Every engagement component and every MQA quantity is a function of one account's
touches (the trailing-window sums, distinct counts, decay and the first instant the
MQA rule holds), so each partition (whole accounts) runs the kit's own pandas
functions on its accounts and the driver only puts the rows together. Nothing is
normalised across accounts: the score is a weighted sum of one account's components
(:data:`abmkit.engagement.DEFAULT_COMPONENT_WEIGHTS`). What is *not* per account is
fixed on the driver and handed to every partition, or done in the reduce:

- the evaluation dates (``as_of`` / ``freq`` / ``start`` defaults read the whole data's
  first and last touch), the resolved ``as_of`` and ``data_end``, the MQA rule as the
  whole data resolves it (a partition without decision makers would otherwise switch
  to the score rule) and the start of the stage history;
- the row order: the in-memory functions list accounts in the account table's order
  (then accounts only touches name), and sort ties (stalled accounts with the same
  change) keep that order: the reduce restores it from the whole account table;
- the notes (the resolved dataset's, touches without an account counted over the
  partitions and the folder of unattributable touches) and the applicability check
  (:func:`abmkit.applicability.check` on the handle);
- ``summary``, ``new_mqas`` and ``to_frame`` are computed by :class:`MQAResult` itself
  on the gathered frames.

A touch that carries its own account and a contact mapped elsewhere (or not at all)
sits in its account's partition while the contact row lives in another one: its
persona would be unknown there. Each partition reports such contacts; when there are
any, the driver looks them up in the whole contact table and runs those partitions
again with the missing rows (nothing extra in the usual case, where a touch carries
either an account or a contact).
"""
from __future__ import annotations

from dataclasses import asdict, replace
from types import SimpleNamespace

import numpy as np
import pandas as pd

from ..schema import Dataset
from ..timeutil import utc_timestamp
from .kernels import (_data_start, _global_span, _mqa_dates, _progress, _resolved,
                      _unattributable_count)
from .partition import _ACCOUNT_TABLES, PartitionedDataset, _loaders, partitions
from .runtime import _compute, _map


# --------------------------------------------------------------------------- the whole data
def _cache(parts) -> dict:
    """The handle's driver-side cache (not pickled to tasks), or a throw-away dict."""
    c = getattr(parts, "_cache", None)
    return c if isinstance(c, dict) else {}


def _tables(parts) -> Dataset:
    """Every table but the touchpoints (the driver's account-sized share)."""
    if isinstance(parts, PartitionedDataset):
        return Dataset(campaigns=parts.campaigns, **{t: getattr(parts, t) for t in _ACCOUNT_TABLES})
    return Dataset(campaigns=parts.campaigns,
                   **{t: pd.concat([s[t] for s in parts.small], ignore_index=True) for t in _ACCOUNT_TABLES})


def _n_touches(parts) -> int:
    m = parts.manifest
    if "touchpoints_in" in m:
        return int(m["touchpoints_in"])
    return int(m.get("touchpoints_partitioned", 0)) + int(m.get("touchpoints_unattributable", 0))


def _whole(parts) -> dict:
    """What the in-memory resolved dataset knows besides the touches, without them:
    its MQA rule (as :func:`abmkit.prepare` resolves it on the whole data), its notes,
    the account tables and the order of the accounts."""
    c = _cache(parts)
    if "engagement_whole" in c:
        return c["engagement_whole"]
    from ..prepared import MQARule, prepare, read_resolved_meta
    from ..schema import empty_table
    tables = _tables(parts)
    n_touches = _n_touches(parts)
    options = getattr(parts, "options", {})
    d = options.get("data_dir")
    meta = None
    if d is not None:
        try:
            meta = read_resolved_meta(d)[1]
        except FileNotFoundError:
            meta = None
    if meta is not None:  # abmkit.open_dataset: in memory this is load_resolved(data_dir)
        rule, notes = MQARule(**meta["mqa_rule"]), list(meta.get("notes", []))
    else:  # in memory: prepare(whole data, mapping=the partitions' mapping, mqa=the handle's rule)
        head = prepare(Dataset(touchpoints=empty_table("touchpoints"), **{t: getattr(tables, t) for t in
                                                                         (*_ACCOUNT_TABLES, "campaigns")}),
                       mapping=parts.contact_accounts if hasattr(parts, "contact_accounts") else None,
                       mqa=options.get("mqa_rule"))
        rule = head.mqa_rule
        notes = [n for n in head.notes if not (n_touches and n.startswith("no touchpoints"))]
    out = {"tables": tables, "rule": rule, "notes": notes, "n_touches": n_touches,
           "order": pd.Index(pd.unique(tables.accounts["account_id"].dropna().astype(object)))}
    c["engagement_whole"] = out
    return out


def _span(parts, whole: dict, as_of=None, rule=None) -> dict:
    """The whole data's span (``data_end``, ``as_of``) with the MQA rule every
    partition must use; cached per ``as_of`` on the handle."""
    key = ("engagement_span", None if as_of is None else utc_timestamp(as_of).value)
    c = _cache(parts)
    if key not in c:
        c[key] = _global_span(parts, as_of)
    return {**c[key], "mqa_rule": asdict(rule if rule is not None else whole["rule"])}


def _ordered(frame: pd.DataFrame, order: pd.Index) -> pd.DataFrame:
    """``frame``'s rows in the in-memory order of their accounts: the account table's
    order, then accounts only touches name (sorted: their order of first touch is
    not known across partitions).

    >>> _ordered(pd.DataFrame({"account_id": ["b", "zz", "a", "c"]}), pd.Index(["a", "b", "c"]))["account_id"].tolist()
    ['a', 'b', 'c', 'zz']
    """
    ids = frame["account_id"].to_numpy(dtype=object)
    pos = order.get_indexer(ids)
    other = pos < 0
    if other.any():
        extra = pd.Index(pd.unique(ids[other])).sort_values()
        pos = pos.copy()
        pos[other] = len(order) + extra.get_indexer(ids[other])
    return frame.iloc[np.argsort(pos, kind="stable")].reset_index(drop=True)


def _concat(frames: list) -> pd.DataFrame:
    """Partition frames put together (empty ones left out: they carry no dtypes)."""
    full = [f for f in frames if len(f)]
    if not full:
        return frames[0].iloc[:0].copy() if frames else pd.DataFrame()
    return pd.concat(full, ignore_index=True) if len(full) > 1 else full[0].reset_index(drop=True)


# --------------------------------------------------------------------------- one partition
def _part_data(part, span, extra):
    """A partition as a resolved dataset with the whole data's rule, or the contact ids
    its touches name but its contact table lacks (first run only: ``extra`` None)."""
    ds, ca = part
    tp = ds.touchpoints
    named = pd.Index(pd.unique(tp["contact_id"].dropna().astype(object)))
    missing = named[~named.isin(ds.contacts["contact_id"])]
    if len(missing) and extra is None:
        return None, missing.to_numpy(dtype=object)
    if extra is not None and len(extra):
        ds = replace(ds, contacts=pd.concat([ds.contacts, extra[ds.contacts.columns.intersection(extra.columns)]],
                                            ignore_index=True))
    # the span carries the whole data's rule: a partition without decision makers keeps it
    return _resolved((ds, ca), span), None


def _part_extent(part, span, extra, weights):
    """First and last touch (ns) of the partition's account touches (engagement's)."""
    from ..engagement import _prepare
    data, missing = _part_data(part, span, extra)
    if data is None:
        data, _ = _part_data(part, span, pd.DataFrame())  # times do not depend on personas
    t = _prepare(data, weights).t
    return {"t": np.array([t.min(), t.max()], np.int64) if len(t) else np.array([], np.int64)}


def _part_scores(part, span, extra, kw):
    from ..engagement import engagement_scores
    data, missing = _part_data(part, span, extra)
    if data is None:
        return {"missing": missing}
    return {"scores": engagement_scores(data, **kw)}


def _part_mqa(part, span, extra, kw, with_stage, data_start):
    from ..engagement import _prepare, mqa
    data, missing = _part_data(part, span, extra)
    if data is None:
        return {"missing": missing}
    r = mqa(data, **kw, with_stage=False)
    stalled, error = r.stalled, None
    if with_stage and len(stalled):  # what engagement._stage_at does, from the whole data's start
        from ..progression import stage_as_of, stage_history
        try:
            stage = stage_as_of(stage_history(data, data_start=data_start), r.as_of)
        except Exception as exc:  # noqa: BLE001 - the in-memory path turns it into a note too
            error = f"stage unavailable ({type(exc).__name__}: {exc}); stalled accounts carry no stage"
        else:
            stalled = stalled.drop(columns="stage").merge(stage, on="account_id", how="left")
            stalled["stage"] = stalled["stage"].astype(object).where(stalled["stage"].notna(), None)
    return {"accounts": r.accounts, "top_contacts": r.top_contacts, "missing_personas": r.missing_personas,
            "stalled": stalled, "buying_group_coverage": r.buying_group_coverage, "stage_error": error,
            "unattributable": _prepare(data, None).unattributable}


def _part_mqa_dates(part, span, extra):
    data, missing = _part_data(part, span, extra)
    if data is None:
        return {"missing": missing}
    return {"dates": _mqa_dates(data)}


# --------------------------------------------------------------------------- driver
def _run(parts, fn, span, *args, desc: str, progress=None) -> list:
    """``fn(part, span, extra, *args)`` on every partition; partitions that lack
    contact rows their touches name run again with those rows (from the whole contact
    table)."""
    res = _map(parts, fn, span, None, *args, _progress=(desc, progress))
    redo = {i: r["missing"] for i, r in enumerate(res) if "missing" in r}
    if redo:
        import dask
        contacts = _whole(parts)["tables"].contacts.drop_duplicates("contact_id")
        loads = _loaders(parts)
        idx = sorted(redo)
        tasks = [dask.delayed(fn, pure=True)(loads[i], span, contacts[contacts["contact_id"].isin(redo[i])],
                                             *args) for i in idx]
        for i, r in zip(idx, _compute(tasks, desc, progress)):
            res[i] = r
    return res


def _touch_extent(parts, span, weights, progress) -> np.ndarray:
    """The whole data's first and last account touch (what engagement's date defaults read)."""
    res = _map(parts, _part_extent, span, None, weights, _progress=("touch dates", progress))
    t = np.concatenate([r["t"] for r in res]) if res else np.array([], np.int64)
    return np.array([t.min(), t.max()], np.int64) if len(t) else t


def engagement_scores(data, as_of=None, *, window_days: float = 90, weights: dict | None = None,
                      component_weights: dict | None = None, freq: str | None = None, start=None,
                      accounts: str = "all", progress=None) -> pd.DataFrame:
    """:func:`abmkit.engagement.engagement_scores` on partitions: the same frame. The
    dates are fixed on the driver (defaults from the whole data's first and last
    touch: one extra pass only when ``as_of``, or ``start`` with ``freq``, is not
    given); each partition scores its accounts at those dates; rows sorted as in memory."""
    from ..engagement import _dates
    if accounts not in ("all", "touched"):
        raise ValueError(f"accounts must be 'all' or 'touched', not {accounts!r}")
    parts = partitions(data)
    progress = _progress(data, progress)
    whole = _whole(parts)
    span = _span(parts, whole)
    needs_extent = as_of is None or (freq is not None and (start is None or np.ndim(as_of) != 0))
    t = _touch_extent(parts, span, weights, progress) if needs_extent else np.array([], np.int64)
    dates = _dates(SimpleNamespace(t=t), as_of, freq, start)
    kw = {"as_of": dates, "window_days": window_days, "weights": weights, "component_weights": component_weights,
          "accounts": accounts}
    res = _run(parts, _part_scores, span, kw, desc="engagement scores", progress=progress)
    out = _concat([r["scores"] for r in res])
    out = out.sort_values(["as_of", "score", "account_id"], ascending=[True, False, True], kind="stable")
    return out.reset_index(drop=True)


def mqa(data, *, as_of=None, n_top_contacts: int = 5, buying_group_size: float | None = None,
        stall_drop: float = 0.5, stall_min_score: float = 1.0, with_stage: bool = True, progress=None):
    """:func:`abmkit.engagement.mqa` on partitions: the same :class:`MQAResult`
    (accounts, top contacts, missing personas, stalled accounts with their stage,
    buying-group coverage, notes, applicability; ``summary`` and ``new_mqas`` follow)."""
    from ..applicability import check, mark
    from ..engagement import MQAResult
    parts = partitions(data)
    progress = _progress(data, progress)
    whole = _whole(parts)
    span = _span(parts, whole)
    rule = whole["rule"]
    if as_of is None and span.get("as_of_ns") is not None:
        as_of = pd.Timestamp(span["as_of_ns"], tz="UTC")
    if as_of is None:  # in memory: the last account touch
        t = _touch_extent(parts, span, None, progress)
        as_of = pd.Timestamp(t[1], tz="UTC") if len(t) else pd.Timestamp.now(tz="UTC").normalize()
    end = utc_timestamp(as_of)
    kw = {"as_of": end, "n_top_contacts": n_top_contacts, "buying_group_size": buying_group_size,
          "stall_drop": stall_drop, "stall_min_score": stall_min_score}
    res = _run(parts, _part_mqa, span, kw, with_stage, _data_start(span) if with_stage else None,
               desc="MQA", progress=progress)
    order = whole["order"]

    def gather(name):
        return _concat([r[name] for r in res])
    accounts = _ordered(gather("accounts"), order)
    top = gather("top_contacts").sort_values(["account_id", "rank"], kind="stable").reset_index(drop=True)
    missing = _ordered(gather("missing_personas"), order)
    coverage = _ordered(gather("buying_group_coverage"), order)
    notes = list(whole["notes"])
    stalled = _ordered(gather("stalled"), order)
    errors = [r["stage_error"] for r in res if r["stage_error"]]
    if errors:
        notes.append(errors[0])
        stalled["stage"] = None
    stalled = stalled.sort_values("change", kind="stable").reset_index(drop=True)
    unattributable = sum(r["unattributable"] for r in res) + _unattributable_count(parts)
    if unattributable:
        notes.append(f"{unattributable} touch(es) could not be tied to an account (unmatched contacts); "
                     "they are left out of every score")
    return mark(MQAResult(accounts=accounts, top_contacts=top, missing_personas=missing, stalled=stalled,
                          buying_group_coverage=coverage, as_of=end, notes=notes,
                          params={"rule": rule.describe(), "min_decision_makers": rule.min_decision_makers,
                                  "mqa_score": rule.mqa_score, "window_days": rule.window_days}),
                check(data, "mqa"))  # the handle answers it without its touches (abmkit.scale.facts)


def mqa_dates_with(data, *, rule=None, as_of=None, fallback_as_of=None, progress=None) -> pd.DataFrame:
    """``account_id, mqa_at`` of the whole data as ``abmkit.prepare(data.tables,
    mapping=data.contact_accounts, mqa=rule, as_of=as_of).mqa_dates`` gives them in
    memory. ``rule`` None: the dataset's; ``as_of`` None: the dataset's, else
    ``fallback_as_of``. With neither changed, the handle's saved dates when it has
    them (:func:`abmkit.open_dataset`)."""
    parts = partitions(data)
    whole = _whole(parts)
    own_as_of = getattr(parts, "options", {}).get("as_of")
    if rule is None and as_of is None and getattr(parts, "mqa_dates", None) is not None:
        return parts.mqa_dates
    if as_of is None:
        as_of = own_as_of if own_as_of is not None else fallback_as_of
    if rule is not None:
        contacts = whole["tables"].contacts
        persona = contacts["persona"] if "persona" in contacts else pd.Series(dtype=object)
        if rule.uses_personas and not (persona == "decision_maker").any():
            rule = rule.without_personas()  # as prepare() resolves it on the whole data
    span = _span(parts, whole, as_of, rule)
    res = _run(parts, _part_mqa_dates, span, desc="MQA dates", progress=_progress(data, progress))
    out = _concat([r["dates"] for r in res]) if res else pd.DataFrame(columns=["account_id", "mqa_at"])
    if not len(out):
        out = pd.DataFrame({"account_id": pd.Series([], dtype=object),
                            "mqa_at": pd.Series([], dtype="datetime64[ns, UTC]")})
    return _ordered(out, whole["order"])


__all__ = ["engagement_scores", "mqa", "mqa_dates_with"]
