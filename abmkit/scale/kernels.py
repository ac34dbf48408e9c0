"""Per-account map/reduce kernels of the kit's analyses on a partitioned dataset.

Not a public API: the analyses (``abmkit.attribution.compare_models``,
``abmkit.progression.stage_history``, ``abmkit.uplift.campaign_influence``,
``abmkit.kpis.kpi_table``, ...) call these when they receive a partitioned dataset
(:func:`abmkit.engine.is_partitioned`), with their own arguments. Each partition
runs the kit's pandas functions on its whole accounts; the reduce sums what adds up
(see docs/scale.md: Markov transition counts, Shapley channel-set counts, KPI
numerators and denominators, influence counts).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..results import Result
from ..schema import CHANNEL_DTYPE, ENGAGEMENT_TOUCH_TYPES, Dataset
from ..timeutil import NS_INF, to_ns_or_inf, utc_timestamp
from .partition import (_ACCOUNT_TABLES, PartitionedDataset, _DaskFramePartitions, _ext, _loaders,
                        _opportunity_span, partitions)
from .runtime import _map, _require_scale, _share

# --------------------------------------------------------------------------- global span
def _span(part, as_of_ns: int | None) -> dict:
    """Per partition: the extremes the kit's functions take from the whole data."""
    ds, _ = part
    tp = ds.touchpoints
    t = to_ns_or_inf(tp["occurred_at"]) if len(tp) else np.array([], np.int64)
    ok_t = t != NS_INF
    seen = ok_t if as_of_ns is None else ok_t & (t <= as_of_ns)
    known = tp["account_id"].isin(ds.accounts["account_id"]).to_numpy() & seen
    return {"t_min": _ext(t[known], np.min), "t_max": _ext(t[known], np.max), "t_all_max": _ext(t[ok_t], np.max),
            "t_any_max": _ext(t[seen], np.max), **_opportunity_span(ds.opportunities, ds.accounts, as_of_ns),
            "any_target": bool(ds.accounts["is_target"].fillna(False).astype(bool).any())}


def _unattributable_times(parts) -> np.ndarray:
    """Times (int64 ns) of the touches without any account, which no partition holds."""
    if isinstance(parts, _DaskFramePartitions):
        return parts.unattributable_times
    import pyarrow as pa
    import pyarrow.parquet as pq
    files = sorted((parts.root / "unattributable").glob("touches-*.parquet"))
    cols = [pq.read_table(f, columns=["occurred_at"])["occurred_at"] for f in files]
    cols = [c for c in cols if c.null_count < len(c)]  # a column of nulls only (Arrow type null)
    if not cols:
        return np.array([], np.int64)
    t = pa.chunked_array([c.cast(pa.timestamp("ns", tz="UTC")) for c in cols]).drop_null()
    return t.cast(pa.int64()).to_numpy()


def _global_span(parts, as_of=None) -> dict:
    if as_of is None:  # the resolved dataset's as_of (open_dataset): nothing after it is observed
        as_of = getattr(parts, "options", {}).get("as_of")
    as_of_ns = None if as_of is None else utc_timestamp(as_of).value
    rule = _rule_of(parts)
    if as_of is None and isinstance(parts, PartitionedDataset) and "span" in parts.manifest:
        return {**parts.manifest["span"], "as_of_ns": None, "mqa_rule": rule}  # recorded while partitioning
    spans = _map(parts, _span, as_of_ns)
    t = _unattributable_times(parts)
    if as_of_ns is not None:
        t = t[t <= as_of_ns]
    spans.append({"t_any_max": _ext(t, np.max)})  # the latest touch may be one without account

    def agg(key, f):
        vals = [s[key] for s in spans if s.get(key) is not None]
        return f(vals) if vals else None
    return {k: agg(k, f) for k, f in (("t_min", min), ("t_max", max), ("t_all_max", max), ("t_any_max", max),
                                      ("o_min", min), ("o_max", max), ("w_max", max), ("o_any_max", max))} | {
        "any_target": any(s.get("any_target", False) for s in spans), "as_of_ns": as_of_ns, "mqa_rule": rule}


def _rule_of(parts) -> dict | None:
    """The handle's MQA rule (``abmkit.open_dataset``: notebook 02's) as a plain dict
    that travels with the span to every partition, or None (the default rule)."""
    from dataclasses import asdict
    rule = getattr(parts, "options", {}).get("mqa_rule")
    return None if rule is None else asdict(rule)


def _data_start(span) -> pd.Timestamp | None:
    """Default ``data_start`` of :func:`abmkit.progression.stage_history`: the day of
    the first touch or opportunity (of known accounts, up to ``as_of``)."""
    starts = [x for x in (span["t_min"], span["o_min"]) if x is not None]
    return pd.Timestamp(min(starts), tz="UTC").floor("D") if starts else None


def _data_end(span) -> pd.Timestamp:
    """The whole data's censoring date, as :func:`abmkit.prepare` sets it
    (:attr:`~abmkit.prepared.ResolvedDataset.data_end`): the last observation (any
    touch, opportunity creation or won close), not after ``as_of``. Every partition's
    resolved dataset gets it (:func:`_resolved`)."""
    if "t_any_max" in span and "o_any_max" in span:
        ends = [x for x in (span["t_any_max"], span["o_any_max"]) if x is not None]
    else:  # a folder partitioned before these were recorded: the known accounts' ends
        ends = [x for x in (span["t_max"], span["o_max"], span["w_max"]) if x is not None]
    last = pd.Timestamp(max(ends), tz="UTC") if ends else pd.NaT
    if span["as_of_ns"] is None:
        return last
    as_of = pd.Timestamp(span["as_of_ns"], tz="UTC")
    return as_of if pd.isna(last) else min(as_of, last)


# --------------------------------------------------------------------------- Markov counts
def markov_counts(chain) -> pd.DataFrame:
    """Additive transition counts of a Markov chain
    (:func:`abmkit.attribution.markov.chain_counts`)."""
    from ..attribution.markov import chain_counts
    return chain_counts(chain)


def chain_from_counts(counts: pd.DataFrame, n_channels: int, order: int = 1):
    """The chain of summed counts (:func:`abmkit.attribution.markov.chain_from_counts`)."""
    from ..attribution.markov import chain_from_counts as _cfc
    return _cfc(counts, n_channels, order)


def _markov_from_counts(counts: pd.DataFrame, n_channels: int, order: int, totals: dict) -> dict:
    """Path-level Markov channel credits (the :func:`compare_models` convention:
    removal effects normalised once to the totals)."""
    from ..attribution.markov import removal_effects
    out = {}
    for col, kind, use_value in (("conversions", "pipeline", False), ("pipeline", "pipeline", True),
                                 ("revenue", "revenue", True)):
        sub = counts[counts["kind"] == kind]
        if sub.empty:
            out[col] = np.zeros(n_channels)
            continue
        re_c, re_v, _, _ = removal_effects(chain_from_counts(sub, n_channels, order))
        re = re_v if use_value else re_c
        out[col] = re / re.sum() * totals[col] if re.sum() > 0 else np.zeros(n_channels)
    return out


# --------------------------------------------------------------------------- attribution
def _models(model) -> list:
    from ..attribution import ALL_MODELS
    models = [model] if isinstance(model, str) else list(model)
    unknown = [m for m in models if m not in ALL_MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; models are {list(ALL_MODELS)}")
    return models


def _resolved(part, span, *, as_of=None, mqa_dates: pd.DataFrame | None = None):
    """A partition as the :class:`~abmkit.prepared.ResolvedDataset` the pandas
    analyses take: its tables, its own contact → account mapping (used as given:
    nothing is mapped again) and the *whole data's* ``data_end`` (:func:`_data_end`).
    A partition holds whole accounts, so every per-account result (stage entries, MQA
    dates, journeys) is then the one of the whole data.

    ``mqa_dates``: the whole data's ``account_id, mqa_at``, given to the partition
    (its accounts' rows) instead of evaluating its MQA rule. ``span`` None: the
    caller does not use ``data_end`` (e.g. a stage history is given)."""
    from ..prepared import prepare
    ds, ca = part
    end = pd.NaT if span is None else _data_end(span)
    if as_of is None and span is not None and span.get("as_of_ns") is not None:
        as_of = pd.Timestamp(span["as_of_ns"], tz="UTC")  # the whole data's as_of
    rule = None
    if span is not None and span.get("mqa_rule"):  # the resolved dataset's rule, not the default
        from ..prepared import MQARule
        rule = MQARule(**span["mqa_rule"])
    data = prepare(ds, mapping=ca, mqa=rule, data_end=None if pd.isna(end) else end, as_of=as_of)
    if rule is not None and data.mqa_rule != rule:  # no decision maker in this partition: still the whole data's rule
        data.mqa_rule = rule
    if mqa_dates is not None:
        mine = mqa_dates[mqa_dates["account_id"].isin(ds.accounts["account_id"]) |
                         mqa_dates["account_id"].isin(ds.touchpoints["account_id"])]
        data.memo(("mqa_dates",), lambda: mine)
    return data


def _mqa_dates(data) -> pd.DataFrame:
    """``data.mqa_dates`` (the partition's MQA rule up to the global ``data_end``),
    faster: the default rule counts decision makers with engagement touches, so
    only those touches can change it and the others are left out."""
    from ..engagement import first_mqa_times
    from ..prepared import prepare
    rule = data.mqa_rule
    if rule.mqa_score is not None:  # a score threshold: every touch counts
        return first_mqa_times(data)
    ds = data.tables
    tp = ds.touchpoints
    dm = ds.contacts.loc[ds.contacts["persona"] == "decision_maker", "contact_id"]
    eng = tp[tp["contact_id"].isin(dm).to_numpy() & tp["touch_type"].isin(ENGAGEMENT_TOUCH_TYPES).to_numpy()]
    few = Dataset(accounts=ds.accounts, contacts=ds.contacts, touchpoints=eng, campaigns=ds.campaigns,
                  opportunities=ds.opportunities, revenue=ds.revenue)
    return prepare(few, mapping=data.contact_accounts, mqa=rule, as_of=data.as_of,
                   data_end=None if pd.isna(data.data_end) else data.data_end).mqa_dates


def _journeys(part, models, span, journey_kw, params):
    """:func:`abmkit.attribution.journeys_for` on a partition (``(dataset,
    contact_accounts)``, or its :func:`_resolved` dataset when several calls share it)."""
    from ..attribution import MQA_MODELS, journeys_for
    data = part if not isinstance(part, tuple) else _resolved(part, span, mqa_dates=journey_kw.get("mqa_dates"))
    ms = params.get("milestone_weights") or {}
    if any(m in MQA_MODELS for m in models) or ("custom" in models and "mqa" in ms):
        # computed here unless given (or already computed): the fast way
        data.memo(("mqa_dates",), lambda: _mqa_dates(data))
    kw = {k: v for k, v in journey_kw.items() if k != "mqa_dates"}
    return journeys_for(data, models, **kw, **params)


def _part_channel_credits(part, models, span, journey_kw, params, boot=None):
    """One partition's channel credits per model, Markov chain counts, and with
    ``boot = (n_boot, seed)`` its share of every Poisson bootstrap replicate (credit
    sums per model; Markov: re-weighted transition counts keyed by state codes)."""
    return _credits_from_journeys(_journeys(part, models, span, journey_kw, params), models, params, boot)


def _credits_from_journeys(cj, models, params, boot=None) -> dict:
    """:func:`_part_channel_credits` on journeys already built."""
    from ..attribution.compare import poisson_weights, replicable
    from ..attribution.engine import channel_credits_from, touch_credits
    from ..attribution.markov import build_chain, transition_type_codes
    conv = cj.conversions
    with_touch = conv["n_touches"].to_numpy() > 0
    rule = [m for m in models if m != "markov"]
    boot_out = None
    if boot is not None:
        n_boot, seed = boot
        rep = replicable(cj, rule + (["markov"] if "markov" in models else []), n_boot, params,
                         markov_credits=False)
        credits = rep.credits[rep.credits["model"].isin(rule)] if rule else None
        sums = rep.replicates(n_boot, models, lambda first, b: poisson_weights(rep.group_accounts, seed, first, b))
        mk = None
        if "markov" in sums:  # transition counts keyed by state codes: they add up over partitions
            mk = [*transition_type_codes(rep.markov_chain, rep.incidence[0]), sums.pop("markov")]
        # re-estimated models (Shapley): statistics keyed by channel set, aligned on the driver
        keyed = {m: (rf.keys, sums.pop(m)) for m, rf in rep.refits.items() if m in sums}
        boot_out = {"sums": sums, "markov": mk, "keyed": keyed}
    else:
        credits = pd.concat([channel_credits_from(cj, touch_credits(cj, m, **params)).assign(model=m)
                             for m in rule], ignore_index=True) if rule else None
    counts = None
    if "markov" in models:
        order = params.get("order", 1)
        counts = pd.concat([markov_counts(build_chain(cj.paths(v), order)).assign(kind=k)
                            for k, v in (("pipeline", "pipeline_amount"), ("revenue", "revenue_amount"))],
                           ignore_index=True)
    s = cj.info
    return {"credits": credits, "markov": counts, "boot": boot_out,
            "seen": np.bincount(cj.channel, minlength=len(cj.channels)) > 0,
            "channels": list(cj.channels),
            "given": (float(with_touch.sum()), float(conv["pipeline_amount"].to_numpy()[with_touch].sum()),
                      float(conv["revenue_amount"].to_numpy()[with_touch].sum())),
            "summary": {k: v for k, v in s.items() if k not in ("milestone", "lookback_days")},
            "no_touch": cj.no_touch[["conversion_id", "account_id", "converted_at", "amount"]]}


def _boot_replicates(res: list, models, k: int, order: int, n_boot: int) -> dict:
    """Every model's replicate credit sums over all partitions (replicates x
    channels); Markov replicates solved once from the summed transition counts."""
    from ..attribution.compare import markov_replicates
    from ..attribution.markov import transition_type_codes
    reps = {m: np.sum([r["boot"]["sums"][m] for r in res], axis=0) if res else np.zeros((n_boot, k))
            for m in models if m not in ("markov", "shapley")}
    if "shapley" in models:  # set counts of every partition, aligned by channel set, summed, then refitted
        from ..attribution.shapley import credits_from_set_counts
        parts_k = [r["boot"]["keyed"]["shapley"] for r in res if "shapley" in r["boot"].get("keyed", {})]
        masks = np.unique(np.concatenate([kk[0] for kk, _ in parts_k])) if parts_k else np.zeros(0, np.int64)
        u = len(masks)
        conv, tot, converting = np.zeros((n_boot, u)), np.zeros((n_boot, u)), np.zeros(u, bool)
        for (mk_, cv), st in parts_k:
            pos = np.searchsorted(masks, mk_)
            conv[:, pos] += st[:, :len(mk_)]
            tot[:, pos] += st[:, len(mk_):]
            converting[pos] |= cv
        reps["shapley"] = credits_from_set_counts(masks, conv, tot, k, converting)
    if "markov" in models:
        counts = pd.concat([r["markov"] for r in res], ignore_index=True)
        sub = counts[counts["kind"] == "pipeline"]
        if not len(sub):
            reps["markov"] = np.zeros((n_boot, k))
            return reps
        chain = chain_from_counts(sub, k, order)
        n = chain.n_states + 1
        types = chain.src * (n + 2) + chain.dst
        src, dst = transition_type_codes(chain, types)
        where = pd.Series(np.arange(len(types)), index=pd.MultiIndex.from_arrays([src, dst]))
        tw = np.zeros((n_boot, len(types)))
        for r in res:
            mk = r["boot"]["markov"]
            if mk is not None and len(mk[0]):
                tw[:, where.loc[list(zip(mk[0], mk[1]))].to_numpy()] += mk[2]
        reps["markov"] = markov_replicates(chain, types, tw)
    return reps


@dataclass
class ChannelCredits(Result):
    """Output of :func:`channel_credits`.

    Attributes
    ----------
    credits : DataFrame
        long: channel, model, conversions, pipeline, revenue (every taxonomy channel;
        the same table as ``compare_models(...).credits``).
    conservation : DataFrame
        per model: given and credited conversions / pipeline / revenue, ``ok``.
    no_touch : DataFrame
        conversions without touches in their window (reported, not credited).
    info : dict
        journey counts (as ``ConversionJourneys.info``) and the partition count.
    removal_effects : ndarray or None
        global Markov removal effects (conversions), per taxonomy channel.
    channels_seen : list
        channels that occur in converting journeys (the rows of the share tables).
    low, high : DataFrame or None
        with ``n_boot``: percentile bounds of each model's channel shares (channel ×
        model) over Poisson bootstrap replicates of accounts.
    """
    credits: pd.DataFrame
    conservation: pd.DataFrame
    no_touch: pd.DataFrame
    info: dict
    removal_effects: np.ndarray | None = None
    channels_seen: list = field(default_factory=list)
    low: pd.DataFrame | None = None
    high: pd.DataFrame | None = None

    def to_frame(self) -> pd.DataFrame:
        return self.credits

    def shares(self) -> pd.DataFrame:
        """channel × model share of credited conversions (channels seen in journeys)."""
        wide = self.credits.pivot(index="channel", columns="model", values="conversions")
        wide = wide[wide.sum(axis=1) > 0].reindex(columns=list(dict.fromkeys(self.credits["model"])))
        return wide / wide.sum()

    _summary_title = "Channel credits"

    def _summary_metadata(self) -> dict:
        return {**{k: v for k, v in self.info.items() if not isinstance(v, (list, dict, tuple))},
                "all_credits_conserved": bool(self.conservation["ok"].all()) if len(self.conservation) else True}

    @property
    def summary(self) -> pd.DataFrame:
        """One row per model: conversions, pipeline and revenue credited and whether
        they equal what was given (``conserved``); the journey counts are in :attr:`info`."""
        c = self.conservation
        if not len(c):
            return pd.DataFrame(columns=["model", "conversions", "pipeline", "revenue", "conserved"])
        return pd.DataFrame({"model": c["model"], "conversions": c["conversions_credited"],
                             "pipeline": c["pipeline_credited"], "revenue": c["revenue_credited"],
                             "conserved": c["ok"]}).reset_index(drop=True)


def _journey_kw(milestone, lookback_days, mqa_dates, start, end):
    return {"milestone": milestone, "lookback_days": lookback_days, "mqa_dates": mqa_dates, "start": start,
            "end": end}


def channel_credits(source, model=("first_touch", "last_touch", "linear", "time_decay", "u_shaped", "w_shaped",
                                   "j_shaped", "inverse_j", "markov", "shapley"), *,
                    milestone: str = "opportunity_created", lookback_days: float = 365, mqa_dates=None,
                    start=None, end=None, dataset: Dataset | None = None, contact_accounts=None,
                    n_boot: int = 0, seed: int = 0, alpha: float = 0.05, progress: bool | None = None,
                    **params) -> ChannelCredits:
    """Channel credits of every model over all partitions.

    Each partition builds its journeys and runs the models with the kit's own
    functions (:func:`abmkit.attribution.journeys_for`,
    :func:`abmkit.attribution.engine.touch_credits`); position models and Shapley are
    summed; Markov transition counts are summed and the chain solved once.

    ``n_boot``: bootstrap intervals in the same pass. Accounts are resampled with
    Poisson(1) weights that depend only on (seed, replicate, account id)
    (:func:`abmkit.attribution.compare.poisson_weights`), so each partition adds its
    share of every replicate: credit sums per model, re-weighted transition counts
    for Markov (the replicate chains are solved once, on the driver).

    Returns
    -------
    ChannelCredits
        ``credits`` equals ``abmkit.attribution.compare_models(ds, models, n_boot=0).credits``;
        ``low``/``high`` equal ``compare_models(ds, models, n_boot, seed, bootstrap="poisson")``'s.
    """
    models = _models(model)
    if n_boot and "markov_per_conversion" in models:
        raise ValueError("compare_models on partitions: bootstrap intervals of 'markov_per_conversion' are "
                         "not computed over partitions; use 'markov' (channel level) or n_boot=0")
    parts = partitions(source, dataset=dataset, contact_accounts=contact_accounts)
    span = _global_span(parts)
    params = _with_removal_effects(parts, models, span, _journey_kw(milestone, lookback_days, mqa_dates, start, end),
                                   dict(params))
    res = _map(parts, _part_channel_credits, models, span,
               _journey_kw(milestone, lookback_days, mqa_dates, start, end), params,
               (n_boot, seed) if n_boot else None, _progress=("attribution", progress))
    cc = _reduce_credits(res, models, params, {"milestone": milestone, "lookback_days": lookback_days}, parts)
    if n_boot and cc.conservation["conversions_given"].sum() > 0:
        from ..attribution.compare import percentile_bounds
        channels = res[0]["channels"]
        reps = _boot_replicates(res, models, len(channels), params.get("order", 1), n_boot)
        cc.low, cc.high = percentile_bounds(reps, models, channels, cc.channels_seen, alpha)
        cc.info["bootstrap"] = "poisson"
    return cc


def _reduce_credits(res: list, models, params, info: dict, parts) -> ChannelCredits:
    """Sum the partitions' :func:`_part_channel_credits` results into ChannelCredits
    (Markov: summed transition counts, chain solved once)."""
    channels = res[0]["channels"] if res else list(CHANNEL_DTYPE.categories)
    k = len(channels)
    given = np.sum([r["given"] for r in res], axis=0) if res else np.zeros(3)
    frames = [r["credits"] for r in res if r["credits"] is not None]
    summed = (pd.concat(frames).groupby(["model", "channel"], sort=False)[["conversions", "pipeline", "revenue"]]
              .sum() if frames else None)
    rows, conservation, re_out = [], [], None
    for m in models:
        if m == "markov":
            counts = pd.concat([r["markov"] for r in res], ignore_index=True)
            mc = _markov_from_counts(counts, k, params.get("order", 1),
                                     {"conversions": given[0], "pipeline": given[1], "revenue": given[2]})
            from ..attribution.markov import removal_effects
            sub = counts[counts["kind"] == "pipeline"]
            re_out = removal_effects(chain_from_counts(sub, k, params.get("order", 1)))[0] if len(sub) \
                else np.zeros(k)
            c = pd.DataFrame({"channel": channels, "model": m, "conversions": mc["conversions"],
                              "pipeline": mc["pipeline"], "revenue": mc["revenue"]})
        else:
            c = summed.loc[m].reindex(channels, fill_value=0.0).reset_index()
            c.insert(1, "model", m)
        rows.append(c[["channel", "model", "conversions", "pipeline", "revenue"]])
        got = c[["conversions", "pipeline", "revenue"]].sum().to_numpy(float)
        conservation.append({"model": m, "conversions_given": given[0], "conversions_credited": got[0],
                             "pipeline_given": given[1], "pipeline_credited": got[1],
                             "revenue_given": given[2], "revenue_credited": got[2],
                             "ok": bool(np.allclose(given, got, rtol=1e-9, atol=1e-6))})
    info = dict(info)
    for key in (res[0]["summary"] if res else {}):
        info[key] = sum(r["summary"][key] for r in res)
    info["partitions"] = len(res)
    if isinstance(parts, PartitionedDataset):
        info["unattributable_touches"] = info.get("unattributable_touches", 0) + parts.manifest.get(
            "touchpoints_unattributable", 0)
    no_touch = pd.concat([r["no_touch"] for r in res], ignore_index=True) if res else pd.DataFrame()
    seen = np.logical_or.reduce([r["seen"] for r in res]) if res else np.zeros(k, bool)
    return ChannelCredits(pd.concat(rows, ignore_index=True), pd.DataFrame(conservation),
                          no_touch.sort_values("conversion_id", ignore_index=True) if len(no_touch) else no_touch,
                          info, re_out, [c for c, ok in zip(channels, seen) if ok])


def _part_markov_counts(part, span, journey_kw, params):
    from ..attribution.markov import build_chain
    cj = _journeys(part, ["markov"], span, journey_kw, params)
    return markov_counts(build_chain(cj.paths(), params.get("order", 1))), list(cj.channels)


def _part_attribute(part, models, span, journey_kw, params, categorical_model: bool = False):
    from ..attribution import attribute_journeys
    cj = _journeys(part, models, span, journey_kw, params)
    frames = [attribute_journeys(cj, m, **params) for m in models]
    out = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if categorical_model:
        out["model"] = out["model"].astype(pd.CategoricalDtype(models))
    return out


def _attribute(source, model, *, milestone: str = "opportunity_created", lookback_days: float = 365,
              mqa_dates=None, start=None, end=None, dataset: Dataset | None = None, contact_accounts=None,
              **params):
    """Touch-level credits of ``model`` (one or several) as a **lazy Dask DataFrame**
    with the columns of :func:`abmkit.attribution.attribute` (one partition per account
    partition). For Markov the removal effects are first estimated from the global
    transition counts, so every touch's credit equals the pandas path.

    Example
    -------
    >>> credits = abmkit.attribution.attribute(parts, ["linear", "markov_per_conversion"])  # doctest: +SKIP
    >>> credits.groupby("campaign_id")["pipeline_credit"].sum().compute()         # doctest: +SKIP
    """
    _require_scale()
    import dask
    import dask.dataframe as dd
    models = _models(model)
    parts = partitions(source, dataset=dataset, contact_accounts=contact_accounts)
    span = _global_span(parts)
    jkw = _journey_kw(milestone, lookback_days, mqa_dates, start, end)
    params = _with_removal_effects(parts, models, span, jkw, dict(params))
    tasks = [dask.delayed(_part_attribute, pure=True)(load, models, span, jkw, params, True)
             for load in _loaders(parts)]
    # model as a categorical in the order asked: reduces (campaign_table) keep that order
    meta = pd.DataFrame({"conversion_id": pd.Series([], dtype=object), "account_id": pd.Series([], dtype=object),
                         "touchpoint_id": pd.Series([], dtype=object),
                         "channel": pd.Series([], dtype=CHANNEL_DTYPE), "campaign_id": pd.Series([], dtype=object),
                         "model": pd.Series([], dtype=pd.CategoricalDtype(models)), "credit": pd.Series([], dtype=float),
                         "pipeline_credit": pd.Series([], dtype=float), "revenue_credit": pd.Series([], dtype=float)})
    return dd.from_delayed(tasks, meta=meta, verify_meta=False)


def _part_campaign_credits(part, models, span, journey_kw, params):
    from ..attribution import aggregate_credits
    return aggregate_credits(_part_attribute(part, models, span, journey_kw, params).assign(
        campaign_id=lambda d: d["campaign_id"].fillna("(no campaign)")), ["campaign_id", "model"])


def campaign_credits(source, model, *, milestone: str = "opportunity_created", lookback_days: float = 365,
                     mqa_dates=None, start=None, end=None, dataset: Dataset | None = None, contact_accounts=None,
                     **params) -> pd.DataFrame:
    """Credits per campaign × model (``campaign_id, model, credit, pipeline_credit,
    revenue_credit``; touches without a campaign as ``(no campaign)``), summed over
    partitions without gathering touch-level rows. Feed it to
    :func:`abmkit.attribution.campaign_table` like a touch-level credits frame."""
    models = _models(model)
    parts = partitions(source, dataset=dataset, contact_accounts=contact_accounts)
    span = _global_span(parts)
    jkw = _journey_kw(milestone, lookback_days, mqa_dates, start, end)
    params = _with_removal_effects(parts, models, span, jkw, dict(params))
    res = _map(parts, _part_campaign_credits, models, span, jkw, params)
    out = pd.concat(res, ignore_index=True).groupby(["campaign_id", "model"], sort=False)[
        ["credit", "pipeline_credit", "revenue_credit"]].sum().reset_index()
    order = {m: i for i, m in enumerate(models)}
    return out.sort_values(["model", "campaign_id"], key=lambda c: c.map(order) if c.name == "model" else c,
                           ignore_index=True)


_JOURNEY_PARAMS = ("lookback_days", "milestone")


def _part_sensitivity(part, model, param, values, span, journey_kw, params) -> list:
    """One partition's credits for every value of ``param``: journeys are built
    once (per value only when ``param`` changes the journeys)."""
    out, cj = [], None
    data = _resolved(part, span, mqa_dates=journey_kw.get("mqa_dates"))  # journeys memoised on it
    for v in values:
        jkw, mp = dict(journey_kw), dict(params)
        if param in _JOURNEY_PARAMS:
            jkw[param] = v
            cj_v = _journeys(data, [model], span, jkw, mp)
        else:
            mp[param] = v
            cj = cj if cj is not None else _journeys(data, [model], span, jkw, mp)
            cj_v = cj
        out.append(_credits_from_journeys(cj_v, [model], mp))
    return out


def _sensitivity(source, model: str, param: str, values, *, milestone: str = "opportunity_created",
                lookback_days: float = 365, mqa_dates=None, start=None, end=None, dataset: Dataset | None = None,
                contact_accounts=None, progress: bool | None = None, **params) -> pd.DataFrame:
    """:func:`abmkit.attribution.sensitivity` on partitions, in one pass over them:
    each partition computes the model for every value. Columns param, value,
    channel, share, conversions."""
    if model == "shapley" and param in _JOURNEY_PARAMS:
        raise ValueError("attribution.sensitivity on partitions: the data-driven Shapley game is estimated over all partitions once; "
                         f"sweeping {param!r} (which changes the journeys) is not supported at scale. Run "
                         "abmkit.attribution.sensitivity on a resolved dataset, or sweep a model parameter")
    parts = partitions(source, dataset=dataset, contact_accounts=contact_accounts)
    span = _global_span(parts)
    if model == "shapley":
        params = _with_shapley_rates(parts, [model], span, _journey_kw(milestone, lookback_days, mqa_dates, start,
                                                                       end), dict(params))
    base = {"milestone": milestone, "lookback_days": lookback_days}
    res = _map(parts, _part_sensitivity, model, param, list(values), span,
               _journey_kw(milestone, lookback_days, mqa_dates, start, end), params,
               _progress=(f"sensitivity {param}", progress))
    rows = []
    for i, v in enumerate(values):
        mp = {**params, **({} if param in _JOURNEY_PARAMS else {param: v})}
        c = _reduce_credits([r[i] for r in res], [model], mp, {**base, **({param: v} if param in base else {})},
                            parts).credits
        tot = c["conversions"].sum()
        rows.append(pd.DataFrame({"param": param, "value": v, "channel": c["channel"],
                                  "share": c["conversions"] / tot if tot > 0 else np.nan,
                                  "conversions": c["conversions"]}))
    out = pd.concat(rows, ignore_index=True)
    return out[out.groupby("channel")["conversions"].transform("sum") > 0].reset_index(drop=True)


def _part_example_candidates(part, models, span, journey_kw, params):
    cj = _journeys(part, models, span, journey_kw, params)
    conv = cj.conversions
    return conv[conv["n_touches"] > 0][["conversion_id", "n_touches", "pipeline_amount"]]


def _part_journey_credits(part, models, span, journey_kw, params, conversion_id, show):
    from ..attribution import journey_credits as _jc
    cj = _journeys(part, models, span, journey_kw, params)
    if conversion_id not in set(cj.conversions["conversion_id"]):
        return None
    return _jc(cj, conversion_id, models=show, **params)


def _journey_credits(source, conversion_id=None, models=("first_touch", "linear", "time_decay", "w_shaped",
                                                    "markov_per_conversion"),
                    *, milestone: str = "opportunity_created", lookback_days: float = 365, mqa_dates=None,
                    start=None, end=None, dataset: Dataset | None = None, contact_accounts=None,
                    **params) -> pd.DataFrame:
    """:func:`abmkit.attribution.journey_credits` for one conversion (default: the same
    pick as the pandas path, the largest pipeline among journeys of 5-30 touches),
    built in the partition that holds its account; Markov uses the global removal
    effects."""
    models = list(models)
    parts = partitions(source, dataset=dataset, contact_accounts=contact_accounts)
    span = _global_span(parts)
    jkw = _journey_kw(milestone, lookback_days, mqa_dates, start, end)
    params = _with_removal_effects(parts, models, span, jkw, dict(params))
    if conversion_id is None:
        cand = pd.concat(_map(parts, _part_example_candidates, models, span, jkw, params), ignore_index=True)
        if cand.empty:
            raise ValueError("no conversion has touches in its window: nothing to draw")
        readable = cand[cand["n_touches"].between(5, 30)]
        pool = readable if len(readable) else cand.nsmallest(1, "n_touches")
        conversion_id = pool.sort_values(["pipeline_amount", "conversion_id"], ascending=[False, True]
                                         ).iloc[0]["conversion_id"]
    res = [r for r in _map(parts, _part_journey_credits, models, span, jkw, params, conversion_id, models)
           if r is not None]
    if not res:
        raise ValueError(f"conversion {conversion_id!r} has no touches in its window (or does not exist)")
    return res[0]


def _part_shapley_counts(part, span, journey_kw, params):
    from ..attribution.shapley import set_counts
    return set_counts(_journeys(part, ["shapley"], span, journey_kw, params).paths())


def _with_shapley_rates(parts, models, span, jkw, params) -> dict:
    """Add the global conversion rate of every channel set to ``params`` when the
    data-driven Shapley model is asked for: each partition's touch credits then use the
    game estimated on all accounts, not on its own."""
    if "shapley" in models and params.get("shapley_rates") is None:
        res = _map(parts, _part_shapley_counts, span, jkw, params)
        sc = pd.concat(res, ignore_index=True).groupby("mask", sort=True)[["conversions", "journeys"]].sum()
        tot = sc["journeys"].to_numpy(float)
        params["shapley_rates"] = (sc.index.to_numpy(np.int64), np.divide(
            sc["conversions"].to_numpy(float), tot, out=np.zeros(len(sc)), where=tot > 0))
    return params


def _with_removal_effects(parts, models, span, jkw, params) -> dict:
    """Add the global Markov removal effects to ``params`` when the touch-level Markov
    split (``markov_per_conversion``) is asked for; also the global Shapley game."""
    params = _with_shapley_rates(parts, models, span, jkw, params)
    if "markov_per_conversion" in models and params.get("removal_effects") is None:
        from ..attribution.markov import removal_effects
        res = _map(parts, _part_markov_counts, span, jkw, params)
        k = len(res[0][1])
        counts = pd.concat([r[0] for r in res], ignore_index=True)
        params["removal_effects"] = removal_effects(chain_from_counts(counts, k, params.get("order", 1)))[0] \
            if len(counts) else np.zeros(k)
    return params


# --------------------------------------------------------------------------- progression / uplift
def _part_stage_history(part, span, rules, as_of, data_start):
    from ..progression import stage_history as _sh
    return _sh(_resolved(part, span, as_of=as_of), rules, as_of=as_of, data_start=data_start)


def _unattributable_count(parts) -> int:
    """Touches without any account, kept aside by :func:`partition_by_account`."""
    return parts.manifest.get("touchpoints_unattributable", 0) if isinstance(parts, PartitionedDataset) else 0


def _stage_history(source, rules=None, *, as_of=None, data_start=None, dataset: Dataset | None = None,
                  contact_accounts=None):
    """:func:`abmkit.progression.stage_history` over all partitions: the same
    :class:`~abmkit.progression.StageHistory` as
    ``stage_history(abmkit.prepare(ds, mapping=contact_accounts, as_of=as_of))``.

    Returns
    -------
    abmkit.progression.StageHistory
        ``.table`` (one row per account and stage entered), ``.data_end`` (the whole
        data's censoring date), ``.touches_without_account`` (with the touches
        partitioning kept aside), ``.rules``.
    """
    from ..progression import StageHistory, StageRules
    parts = partitions(source, dataset=dataset, contact_accounts=contact_accounts)
    span = _global_span(parts, as_of)
    if data_start is None:
        data_start = _data_start(span)
    res = _map(parts, _part_stage_history, span, rules, as_of, data_start)
    table = pd.concat([r.table for r in res], ignore_index=True) if res else \
        pd.DataFrame(columns=["account_id", "stage", "entered_at"])
    return StageHistory(table=table, data_end=_data_end(span), rules=rules or StageRules(),
                        touches_without_account=sum(r.touches_without_account for r in res)
                        + _unattributable_count(parts))


_COUNT_COLS = ["n_at_risk", "n_treated", "n_control", "events_treated", "events_control"]


def _part_influence(part, history_kw, influence_kw):
    """Per partition: the treated counts per unit × transition, and the at-risk cohort
    per transition counted apart (a partition may have at-risk accounts but no unit
    rows, e.g. accounts that entered their stages by opportunities alone)."""
    from ..progression import stage_history as _sh
    from ..uplift import at_risk_counts, campaign_influence
    ds, _ = part
    as_of = history_kw["as_of"]
    data = _resolved(part, history_kw["span"], as_of=as_of)
    hist = _sh(data, history_kw["rules"], as_of=as_of, data_start=history_kw["data_start"])
    cohort = at_risk_counts(hist, ds.accounts["account_id"], exposure_days=influence_kw["exposure_days"],
                            outcome_days=influence_kw["outcome_days"], transitions=influence_kw["transitions"],
                            as_of=as_of)
    # covariates/Cox off: only the counts are kept (they are additive over accounts)
    table = campaign_influence(data, history=hist, covariates=None, cox=False, min_group_size=0,
                               as_of=as_of, progress=False, **influence_kw).table
    cols = ["level", "unit", "campaign_id", "campaign_name", "channel", "transition", "from_stage", "to_stage",
            "n_treated", "events_treated"]
    if table.empty:
        return pd.DataFrame(columns=cols), cohort
    t = table[cols[:-1]].copy()
    t["events_treated"] = np.rint(table["rate_treated"].fillna(0) * table["n_treated"]).astype(np.int64)
    return t[cols], cohort


def campaign_influence_counts(source, *, exposure_days: float = 30, outcome_days: float = 90, transitions=None,
                              by=("campaign", "channel"), rules=None, as_of=None, alpha: float = 0.05,
                              with_tests: bool = True, dataset: Dataset | None = None,
                              contact_accounts=None) -> pd.DataFrame:
    """Campaign influence counts per level × unit × transition over all partitions
    (landmark design, :func:`abmkit.uplift.campaign_influence` on each
    partition): n_at_risk, n_treated, n_control, events_treated, events_control,
    rate_treated, rate_control. The counts are sums over accounts, so they equal the
    pandas path exactly.

    ``with_tests``: add the naive two-group statistics (diff, ratio with CIs,
    p-value, BH q-value) from the counts with :func:`abmkit.uplift.two_group` — these
    depend on the counts only. Covariate-adjusted effects, Cox hazard ratios and KM
    medians need per-account rows: run the pandas path on the at-risk cohort.
    """
    parts = partitions(source, dataset=dataset, contact_accounts=contact_accounts)
    span = _global_span(parts, as_of)
    hist_kw = {"rules": rules, "as_of": as_of, "data_start": _data_start(span), "span": span}
    infl_kw = {"exposure_days": exposure_days, "outcome_days": outcome_days, "transitions": transitions, "by": by}
    res = _map(parts, _part_influence, hist_kw, infl_kw)
    at_risk = pd.concat([r[1] for r in res], ignore_index=True).groupby("transition", sort=False)[
        ["n_at_risk", "events_at_risk"]].sum()
    units = [r[0] for r in res if len(r[0])]
    if not units:
        return pd.DataFrame(columns=["level", "unit", "transition", *_COUNT_COLS])
    allr = pd.concat(units, ignore_index=True)
    keys = ["level", "unit", "transition"]
    info = allr.drop_duplicates(keys)[keys + ["campaign_id", "campaign_name", "channel", "from_stage", "to_stage"]]
    # a partition without some unit (a channel it never saw) has every at-risk account
    # of the transition in that unit's control group: controls are at-risk minus treated
    out = info.merge(allr.groupby(keys, sort=False)[["n_treated", "events_treated"]].sum().reset_index(), on=keys)
    out["n_at_risk"] = out["transition"].map(at_risk["n_at_risk"]).astype(np.int64)
    out["n_control"] = out["n_at_risk"] - out["n_treated"]
    out["events_control"] = out["transition"].map(at_risk["events_at_risk"]).astype(np.int64) - out["events_treated"]
    with np.errstate(invalid="ignore", divide="ignore"):
        out["rate_treated"] = out["events_treated"] / out["n_treated"].where(out["n_treated"] > 0)
        out["rate_control"] = out["events_control"] / out["n_control"].where(out["n_control"] > 0)
    if with_tests and len(out):
        from statsmodels.stats.multitest import multipletests

        from ..uplift import two_group
        stats_rows = []
        for r in out.itertuples():
            t = np.r_[np.ones(r.n_treated, bool), np.zeros(r.n_control, bool)]
            y = np.r_[np.arange(r.n_treated) < r.events_treated, np.arange(r.n_control) < r.events_control]
            d = two_group(pd.DataFrame({"t": t, "y": y.astype(int)}), "t", "y", alpha=alpha).to_frame().iloc[0]
            stats_rows.append({c: d[c] for c in ("diff", "diff_low", "diff_high", "ratio", "ratio_low",
                                                  "ratio_high", "p_value", "ratio_p_value")})
        out = pd.concat([out, pd.DataFrame(stats_rows, index=out.index)], axis=1)
        p = out["p_value"].to_numpy(float)
        out["q_value"] = np.nan
        fin = np.isfinite(p)
        if fin.any():
            out.loc[fin, "q_value"] = multipletests(p[fin], alpha=alpha, method="fdr_bh")[1]
    first = ["level", "unit", "campaign_id", "campaign_name", "channel", "transition", "from_stage", "to_stage",
             "n_at_risk", "n_treated", "n_control", "events_treated", "events_control", "rate_treated",
             "rate_control"]
    return out[first + [c for c in out.columns if c not in first]].reset_index(drop=True)


def _part_influence_inputs(part, history_kw, from_stages, exp_ns):
    """Stage history of a partition and the only touches campaign influence can use:
    per (account, campaign) and (account, channel), the first touch of every
    exposure window [entry into s, entry + exposure_days); plus the first touch of
    each campaign and channel (their metadata). The exposure of a unit is the first
    such touch, so the reduced table gives exactly the same result.

    Returns (stage table, touches without account, reduced touches); the stage
    table is the given history's rows for this partition's accounts when given."""
    from ..journeys import account_touches
    from ..progression import account_codes, history_table, stage_wide
    from ..progression import stage_history as _sh
    ds, _ = part
    data = _resolved(part, history_kw["span"], as_of=history_kw["as_of"])
    tt = account_touches(data)
    if history_kw.get("history") is not None:  # given: its rows for this partition's accounts
        given = history_table(history_kw["history"])
        hist, unplaced = given[given["account_id"].isin(ds.accounts["account_id"])], 0
    else:
        h = _sh(data, history_kw["rules"], as_of=history_kw["as_of"], data_start=history_kw["data_start"])
        hist, unplaced = h.table, h.touches_without_account
    ids = ds.accounts["account_id"].to_numpy(dtype=object)
    code = account_codes(ids, tt["account_id"])
    t = to_ns_or_inf(tt["occurred_at"])
    ok = (code >= 0) & (t <= history_kw["data_end"].value) & (t != NS_INF)
    wide = stage_wide(hist).reindex(ids)
    keep = np.zeros(len(tt), bool)
    order = np.argsort(t, kind="stable")  # earliest first; ties keep the table order
    for a in from_stages:
        E = to_ns_or_inf(wide[a])[np.where(code >= 0, code, 0)]
        in_win = ok & (E != NS_INF) & (t >= E) & (t < E + exp_ns)
        for col in ("campaign_id", "channel"):
            v = tt[col].astype(object).to_numpy()
            rows = order[in_win[order] & pd.notna(v[order])]
            first = pd.DataFrame({"a": code[rows], "u": v[rows]}).duplicated(["a", "u"]).to_numpy()
            keep[rows[~first]] = True
    for col in ("campaign_id", "channel"):
        v = tt[col].astype(object).to_numpy()
        rows = np.flatnonzero(ok & pd.notna(v))
        keep[rows[~pd.Series(v[rows]).duplicated().to_numpy()]] = True
    return hist, unplaced, tt[keep]


def _campaign_influence(source, *, exposure_days: float = 30, outcome_days: float = 90, transitions=None,
                       rules=None, as_of=None, history=None, dataset: Dataset | None = None,
                       contact_accounts=None, **kwargs):
    """:func:`abmkit.uplift.campaign_influence` for data that does not fit one machine:
    the stage history and a reduced touch table (the first touch of each campaign and
    channel in every account's exposure windows: all the analysis can use) are
    computed on the partitions; the statistics (naive and adjusted effects, Cox, KM
    medians, BH q-values) then run once, with the kit's function, on these
    account-sized inputs. Same result as the pandas path.

    ``history``: a :class:`~abmkit.progression.StageHistory` (e.g. from
    :func:`stage_history`), censored at its ``data_end`` unless ``as_of`` is given; a
    bare stage table needs ``as_of`` (as on the pandas path).

    Returns
    -------
    abmkit.uplift.InfluenceResult
    """
    from ..prepared import prepare
    from ..progression import StageHistory, StageRules, data_end
    from ..uplift import campaign_influence as _ci
    from ..uplift import parse_transitions
    parts = partitions(source, dataset=dataset, contact_accounts=contact_accounts)
    if not isinstance(parts, PartitionedDataset):
        raise TypeError("campaign_influence needs a partitioned folder (scale.partition_by_account)")
    _require_scale()
    import dask
    trans = parse_transitions(transitions)
    exp_ns = int(round(exposure_days * 86_400 * 10**9))
    if history is None:
        span = _global_span(parts, as_of)
        end = _data_end(span)
        hist_kw = {"rules": rules, "as_of": as_of, "data_start": _data_start(span), "span": span, "data_end": end}
    else:
        # as uplift.campaign_influence: the history's own end unless as_of is given
        end = data_end(history, as_of)
        # scattered once to the workers: not a copy in the graph of every task (tens of MB at 10^8)
        hist_kw = {"history": _share(history), "data_end": end, "span": None, "as_of": as_of}
    res = _map(parts, _part_influence_inputs, hist_kw, sorted({a for a, _ in trans}), exp_ns)
    if history is None:
        history = StageHistory(table=pd.concat([r[0] for r in res], ignore_index=True), data_end=end,
                               touches_without_account=sum(r[1] for r in res) + _unattributable_count(parts),
                               rules=rules or StageRules())
    touches = pd.concat([r[2] for r in res], ignore_index=True)
    small = parts.account_tables()
    # the reduced touches are on their accounts already: no mapping needed
    no_mapping = pd.DataFrame({"contact_id": pd.Series([], dtype=object), "account_id": pd.Series([], dtype=object)})
    data = prepare(Dataset(touchpoints=touches, **{t: getattr(small, t) for t in _ACCOUNT_TABLES + ("campaigns",)}),
                   mapping=no_mapping, as_of=as_of, data_end=None if pd.isna(end) else end)
    return _ci(data, exposure_days=exposure_days, outcome_days=outcome_days, transitions=transitions,
               history=history, as_of=as_of, **kwargs)


def _part_touch_count(part) -> int:
    return len(part[0].touchpoints)


def _merge_partitions(loaded: list) -> tuple[Dataset, pd.DataFrame]:
    ds = Dataset(campaigns=loaded[0][0].campaigns,
                 **{t: pd.concat([d for d in (getattr(x[0], t) for x in loaded)], ignore_index=True)
                    for t in ("touchpoints",) + _ACCOUNT_TABLES})
    return ds, pd.concat([x[1] for x in loaded], ignore_index=True)


def _transition_baseline(source, history=None, *, max_touches: int = 5_000_000,
                        dataset: Dataset | None = None, contact_accounts=None, **kwargs):
    """:func:`abmkit.progression.transition_baseline` (medians of touches and contacts
    per transition, channel mix, common sequences: medians and top sequences are not
    sums, so they need the accounts together). Runs on as many whole partitions as fit
    in ``max_touches`` touches: exact when that is all of them, otherwise an estimate on
    a random sample of accounts (partitions are a hash of the account id), which
    ``.sample`` on the result describes. ``history``: a
    :class:`~abmkit.progression.StageHistory` (or its table); default
    :func:`stage_history`."""
    _require_scale()
    import dataclasses

    import dask

    from ..prepared import prepare
    from ..progression import StageHistory, history_table
    from ..progression import transition_baseline as _tb
    parts = partitions(source, dataset=dataset, contact_accounts=contact_accounts)
    loaders = _loaders(parts)
    sizes = dask.compute(*[dask.delayed(_part_touch_count)(x) for x in loaders])
    take, total = [], 0
    for i, n in enumerate(sizes):
        if take and total + n > max_touches:
            break
        take.append(i)
        total += n
    ds, ca = dask.compute(dask.delayed(_merge_partitions)(list(loaders[i] for i in take)))[0]
    hist = history if history is not None else _stage_history(parts)
    table = history_table(hist)
    table = table[table["account_id"].isin(ds.accounts["account_id"])]
    end = hist.data_end if isinstance(hist, StageHistory) else pd.NaT
    hist = dataclasses.replace(hist, table=table) if isinstance(hist, StageHistory) else table
    res = _tb(prepare(ds, mapping=ca, data_end=None if pd.isna(end) else end), hist, **kwargs)
    res.sample = {"partitions_used": len(take), "partitions": len(sizes), "touches_used": int(total),
                  "touches": int(sum(sizes)), "exact": len(take) == len(sizes)}
    return res


# --------------------------------------------------------------------------- KPIs
#: KPIs whose numerator and denominator are sums over accounts (exact when partitioned)
ADDITIVE_KPIS = ("market_reach", "account_engagement", "audience_exposure_time", "mqa_accounts", "new_mqas",
                 "influenced_pipeline", "pipeline_velocity", "win_rate", "mqa_to_win_rate", "average_deal_size",
                 "retention_rate", "product_adoption", "upsell_rate", "cross_sell_rate", "net_revenue_retention",
                 "net_revenue_retention_qoq", "buying_group_coverage", "opportunity_creation", "deal_velocity")


#: KPIs whose value is the numerator itself (the denominator is context, e.g. accounts considered)
_COUNT_KPIS = ("account_engagement", "mqa_accounts", "new_mqas", "influenced_pipeline", "opportunity_creation")


def _part_kpis(part, span, periods, names):
    """Per partition, period and KPI: numerator, denominator, unit and the size of the
    population counted on (:func:`abmkit.kpis.population_of`), with the kit's KPI
    functions on the partition's resolved dataset."""
    from .. import kpis
    from ..prepared import prepare
    data = _resolved(part, span)
    nobody = None
    if span["any_target"] and not data.targets_flagged:
        # the data flags target accounts but none is here: this partition's target
        # population is empty (not all its accounts), so its target-population KPIs
        # are those of no accounts
        nobody = prepare(Dataset(campaigns=data.campaigns), mapping=part[1].iloc[:0], mqa=data.mqa_rule,
                         data_end=None if pd.isna(data.data_end) else data.data_end)
    rows = []
    for label, p in periods:
        for n in names:
            on = nobody if nobody is not None and kpis.KPI_POPULATION[n] == "target" else data
            r = kpis.KPI_FUNCTIONS[n](on, period=p)
            population, size = kpis.population_of(n, on, p)
            rows.append({"period": label, "kpi": n, "numerator": r.numerator, "denominator": r.denominator,
                         "unit": r.unit, "population": population, "population_size": size})
    return pd.DataFrame(rows)


def kpi_aggregates(source, quarter=None, start=None, end=None, *, kpis=ADDITIVE_KPIS,
                   dataset: Dataset | None = None, contact_accounts=None) -> pd.DataFrame:
    """The additive ABM KPIs (docs/kpis.md) for the period and the previous one:
    numerators and denominators summed over partitions, values recomputed with the
    KPI's formula. Columns: group, kpi, unit, value, numerator, denominator,
    population, population_size, previous, change, change_pct (as
    ``abmkit.kpis.kpi_table(abmkit.prepare(ds), ...).overall`` for these KPIs)."""
    from .. import kpis as _k
    from ..period import resolve_period
    from ..prepared import ALL_ACCOUNTS, TARGET_POPULATION
    bad = [k for k in kpis if k not in ADDITIVE_KPIS]
    if bad:
        raise ValueError(f"{bad} are not additive over accounts (campaign costs, ratios of ratios); "
                         "compute them with abmkit.kpis on the pandas path")
    p = resolve_period(quarter=quarter, start=start, end=end)
    parts = partitions(source, dataset=dataset, contact_accounts=contact_accounts)
    span = _global_span(parts)
    res = pd.concat(_map(parts, _part_kpis, span, [("current", p), ("previous", p.previous)], list(kpis)),
                    ignore_index=True)
    g = res.groupby(["period", "kpi"], sort=False).agg(numerator=("numerator", lambda s: s.sum(min_count=1)),
                                                       denominator=("denominator", "first"), unit=("unit", "first"),
                                                       den_sum=("denominator", lambda s: s.sum(min_count=1)),
                                                       population=("population", "first"),
                                                       population_size=("population_size", "sum"))
    group_of = {k: grp for grp, names in _k.KPI_GROUPS.items() for k in names}
    rows = []
    for n in kpis:
        vals = {}
        for per in ("current", "previous"):
            r = g.loc[(per, n)]
            num = float(r["numerator"]) if pd.notna(r["numerator"]) else np.nan
            if n == "audience_exposure_time":  # constant denominator (seconds per hour)
                den = float(r["denominator"])
            else:
                den = float(r["den_sum"]) if pd.notna(r["den_sum"]) else np.nan
            if n in _COUNT_KPIS or np.isnan(den):
                value = num
            else:
                value = num / den if den else np.nan
            vals[per] = (value, num, den, r["unit"])
        cur, prev = vals["current"], vals["previous"]
        population = g.loc[("current", n), "population"]
        if _k.KPI_POPULATION[n] == "target":  # a partition without target accounts names "all accounts"
            population = TARGET_POPULATION if span["any_target"] else ALL_ACCOUNTS
        change = cur[0] - prev[0]
        rows.append({"group": group_of.get(n), "kpi": n, "unit": cur[3], "value": cur[0], "numerator": cur[1],
                     "denominator": cur[2], "population": population,
                     "population_size": float(g.loc[("current", n), "population_size"]), "previous": prev[0],
                     "change": change, "change_pct": change / abs(prev[0]) if prev[0] else np.nan})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- MQA dates
def mqa_dates(parts, progress=None) -> pd.DataFrame:
    """``account_id, mqa_at`` of the whole data under the handle's MQA rule (its
    ``options["mqa_rule"]``), each partition evaluating its own accounts up to the
    whole data's end (what :meth:`abmkit.prepared.ResolvedDataset.mqa_dates` gives in
    memory)."""
    # engagement_kernel: also the personas of contacts that live in another partition than their touches
    from .engagement_kernel import mqa_dates_with
    out = mqa_dates_with(parts, progress=progress)
    return out.sort_values("account_id", kind="stable", ignore_index=True)


# --------------------------------------------------------------------------- KPI table
# kpis.kpi_table / kpis.kpi_history on partitions. A KPI that reads no touches (opportunity,
# revenue and campaign KPIs: abmkit.applicability.KPI_NEEDS) runs once on the driver with the
# kit's own function on the account-sized tables (exact by construction, notes included). A
# KPI that counts touches runs its formula on every partition (whole accounts, the whole data's
# targets flag, MQA rule and dates) and the reduce adds numerators and denominators up; its
# applicability checks are "exists somewhere" conditions, so the whole data passes one iff a
# partition does.
def _touch_kpis(names) -> list:
    from ..applicability import KPI_NEEDS
    return [n for n in names if "touchpoints" in KPI_NEEDS[n].tables]


def _kpi_scopes(kd, segments):
    """``(segment, value, view)``: the whole view ("" "") and one per segment value
    (values as :func:`abmkit.kpis.kpi_table` names them)."""
    out = [("", "", kd)]
    for seg in segments:
        values = kd.accounts[seg].astype(object).where(kd.accounts[seg].notna(), "unknown").astype(str)
        for val, ids in kd.accounts["account_id"].groupby(values.values):
            out.append((seg, val, kd.subset(ids)))
    return out


def _kpi_view(part, span, mqa_dates):
    """A partition's KPI view (:class:`abmkit.kpis.KPIData`) with the whole data's
    targets flag: a partition without target accounts has an empty target population."""
    from dataclasses import replace

    from .. import kpis as K
    kd = K._data(_resolved(part, span, mqa_dates=mqa_dates))
    if span["any_target"] and not kd.targets_flagged:
        kd = replace(kd, targets_flagged=True)
    return kd


def _part_kpi_rows(part, span, periods, names, segments, mqa_dates):
    """Per scope, period and touch KPI of a partition: the formula's result (no
    applicability wrapper), the structural check, the period check when the value is
    undefined, and the population counted on."""
    import math

    from .. import kpis as K
    from ..applicability import check, is_not_applicable_note
    kd = _kpi_view(part, span, mqa_dates)
    rows = []
    for seg, val, d in _kpi_scopes(kd, [s for s in segments if s in kd.accounts.columns]):
        for label, p in periods:
            pops = {}
            for n in names:
                r = K.KPI_FUNCTIONS[n].__wrapped_kpi__(d, period=p)
                kind = K.KPI_POPULATION[n]
                if kind not in pops:
                    pops[kind] = K.population_of(n, d, p)
                app = K._structural(d, n)
                period_note = None
                if math.isnan(r.value) and not is_not_applicable_note(r.note):
                    pc = check(d, n, p)
                    period_note = "" if pc else pc.note
                rows.append({"segment": seg, "segment_value": val, "period": label, "kpi": n, "value": r.value,
                             "numerator": r.numerator, "denominator": r.denominator, "unit": r.unit,
                             "note": r.note, "structural_ok": bool(app), "structural_note": app.note,
                             "period_note": period_note, "population": pops[kind][0],
                             "population_size": float(pops[kind][1])})
    return pd.DataFrame(rows)


#: touch KPIs whose value is their numerator (a count or a sum)
_SUM_KPIS = ("account_engagement", "mqa_accounts", "new_mqas", "influenced_pipeline")


def _mode(notes) -> str:
    vals = [x for x in notes if x]
    return max(dict.fromkeys(vals), key=vals.count) if vals else ""


def _combine_kpi(n: str, g: pd.DataFrame, population: str):
    """One touch KPI of one scope and period from its partitions' rows, as
    :func:`abmkit.kpis` would give it on the whole data (its applicability wrapper too)."""
    import math
    import re
    from dataclasses import replace

    from .. import kpis as K
    from ..applicability import is_not_applicable_note, not_applicable_note
    size = float(g["population_size"].sum())
    if not g["structural_ok"].any():
        return K.KPIResult(n, float("nan"), unit=K.KPI_UNITS[n], note=g["structural_note"].iloc[0],
                           population=population, population_size=size)
    num = g["numerator"].astype(float).sum(min_count=1)
    den = g["denominator"].astype(float).sum(min_count=1)
    unit = g["unit"].iloc[0]
    if n == "audience_exposure_time":
        r = K.KPIResult(n, num / 3600.0, num, 3600.0, unit)
    elif n == "roi":  # (touched won revenue − cost) / cost: the revenue adds up, the cost is the whole data's
        has = g["denominator"].notna()
        cost = float(g.loc[has, "denominator"].iloc[0]) if has.any() else float("nan")
        rev = float((g.loc[has, "numerator"] + g.loc[has, "denominator"]).sum()) if has.any() else float("nan")
        r = K.roi_from_counts(rev, cost)
    elif n in _SUM_KPIS:
        r = K.KPIResult(n, num, num, den, unit)
    else:
        r = K._ratio(n, num, den, unit)
    # the formula's own note: "N ... left out" adds up; an n/a note when every partition has one
    notes = g["note"].fillna("").tolist()
    left = [re.match(r"^(\d+) (won )?opportunit", x) for x in notes]
    if any(left):
        kind = next(m.group(2) or "" for m in left if m)
        note = K._left_out_note(sum(int(m.group(1)) for m in left if m), kind)
    elif notes and all(is_not_applicable_note(x) for x in notes):
        note = _mode(notes)
    else:
        note = ""
    if not math.isnan(r.value) or is_not_applicable_note(note):
        return replace(r, note=note, population=population, population_size=size)
    periods = g["period_note"].tolist()
    if all(x for x in periods):  # the period check fails on every partition, so on the whole data
        note = _mode(periods)
    else:
        note = not_applicable_note(note or "undefined in this period")
    return replace(r, note=note, population=population, population_size=size)


def _account_only(parts, span):
    """The account-sized tables as an in-memory resolved dataset without touches (the
    driver's share: opportunity, revenue and campaign KPIs)."""
    from ..prepared import MQARule, prepare
    from ..schema import empty_table
    t = parts.account_tables()
    end = _data_end(span)
    as_of = None if span.get("as_of_ns") is None else pd.Timestamp(span["as_of_ns"], tz="UTC")
    ds = Dataset(accounts=t.accounts, contacts=t.contacts, opportunities=t.opportunities, revenue=t.revenue,
                 campaigns=t.campaigns, touchpoints=empty_table("touchpoints"))
    return prepare(ds, mapping=parts.contact_accounts, mqa=MQARule(**span["mqa_rule"]) if span.get("mqa_rule")
                   else None, data_end=None if pd.isna(end) else end, as_of=as_of)


def _kpi_results(data, periods, names, segments, revenue_rule, progress=None):
    """``{(segment, value, period label): [KPIResult in KPI_FUNCTIONS order]}`` of a
    partitioned dataset, and the driver's KPI view."""
    from dataclasses import replace

    from .. import kpis as K
    from ..prepared import ALL_ACCOUNTS, TARGET_POPULATION
    parts = partitions(data)
    if not hasattr(parts, "account_tables"):
        raise TypeError("KPIs on partitions need a partitioned folder (abmkit.open_dataset / "
                        "abmkit.scale.partition_by_account)")
    span = _global_span(parts)
    kd = K._with_rule(K._data(_account_only(parts, span)), revenue_rule)
    for seg in segments:
        if seg not in kd.accounts.columns:
            raise ValueError(f"segment {seg!r} is not an account column; available: {list(kd.accounts.columns)}")
    touch = _touch_kpis(names)
    res = _map(parts, _part_kpi_rows, span, periods, touch, list(segments), _mqa(data),
               _progress=("KPIs", _progress(data, progress)))
    rows = pd.concat(res, ignore_index=True) if res else pd.DataFrame()
    groups = {k: g for k, g in rows.groupby(["segment", "segment_value", "period", "kpi"], sort=False)} \
        if len(rows) else {}
    target_label = TARGET_POPULATION if span["any_target"] else ALL_ACCOUNTS
    out = {}
    for seg, val, view in _kpi_scopes(kd, segments):
        for label, p in periods:
            results, pops = [], {}
            for n in names:
                if n in touch:
                    g = groups.get((seg, val, label, n))
                    if g is None:  # no partition holds this scope (cannot happen: accounts are whole)
                        g = pd.DataFrame({"structural_ok": [False], "structural_note": ["n/a — no accounts"],
                                          "population_size": [0.0]})
                    population = target_label if K.KPI_POPULATION[n] == "target" else \
                        next((x for x in g.get("population", pd.Series(dtype=object)) if x), "")
                    results.append(_combine_kpi(n, g, population))
                else:
                    kind = K.KPI_POPULATION[n]
                    if kind not in pops:
                        pops[kind] = K.population_of(n, view, p)
                    lab, size = pops[kind]
                    results.append(replace(K.KPI_FUNCTIONS[n](view, period=p), population=lab,
                                           population_size=float(size)))
            out[(seg, val, label)] = results
    return out, kd, span


def _default_quarter(data, span, kd) -> str:
    """:func:`abmkit.kpis.kpi_table`'s default period: the last complete quarter of the
    touches (of known accounts), else of the opportunities."""
    from ..kpis import last_complete_quarter
    if span.get("t_max") is not None:
        return last_complete_quarter(pd.Series([pd.Timestamp(span["t_max"], tz="UTC")]))
    return last_complete_quarter(kd.opportunities["created_at"])


def kpi_table(data, quarter=None, start=None, end=None, segments=("industry", "size_band", "tier"), *,
              revenue_rule=None, progress=None):
    """:func:`abmkit.kpis.kpi_table` on partitions: the same ``KPITable``."""
    from .. import kpis as K
    from ..period import resolve_period
    segments = list(segments)
    if quarter is None and start is None and end is None:
        parts = partitions(data)
        span = _global_span(parts)
        quarter = _default_quarter(data, span, None if span.get("t_max") is not None
                                   else K._data(_account_only(parts, span)))
    p = resolve_period(quarter=quarter, start=start, end=end)
    res, kd, _ = _kpi_results(data, [("current", p), ("previous", p.previous)], list(K.KPI_FUNCTIONS), segments,
                              revenue_rule, progress)
    overall = K._rows(res[("", "", "current")], res[("", "", "previous")])
    frames = []
    for seg in segments:
        values = kd.accounts[seg].astype(object).where(kd.accounts[seg].notna(), "unknown").astype(str)
        for val in sorted(set(values), key=K._segment_order(seg)):
            f = K._rows(res[(seg, val, "current")], res[(seg, val, "previous")])
            f.insert(0, "segment_value", val)
            f.insert(0, "segment", seg)
            frames.append(f)
    return K.KPITable(period=p, overall=overall, segments=pd.concat(frames, ignore_index=True) if frames
                      else pd.DataFrame())


def kpi_history(data, quarter=None, start=None, end=None, *, n_periods: int = 4, kpis=None, revenue_rule=None,
                progress=None) -> pd.DataFrame:
    """:func:`abmkit.kpis.kpi_history` on partitions: one pass for every period."""
    from .. import kpis as K
    from ..period import resolve_period
    names = list(kpis) if kpis is not None else list(K.KPI_FUNCTIONS)
    unknown = [k for k in names if k not in K.KPI_FUNCTIONS]
    if unknown:
        raise ValueError(f"unknown KPI(s) {unknown}; available: {list(K.KPI_FUNCTIONS)}")
    pers = K._periods_back(resolve_period(quarter=quarter, start=start, end=end), n_periods)
    res, _, _ = _kpi_results(data, [(q.label, q) for q in pers], names, [], revenue_rule, progress)
    rows = []
    for q in pers:
        for r in res[("", "", q.label)]:
            rows.append({"period": q.label, "period_start": q.start, "kpi": r.name, "group": K._GROUP_OF[r.name],
                         "unit": r.unit, "value": r.value, "numerator": r.numerator, "denominator": r.denominator,
                         "population": r.population, "population_size": int(r.population_size), "note": r.note})
    return pd.DataFrame(rows)


def _part_pipeline(part, span, mqa_dates, kw):
    from .. import kpis as K
    return K.pipeline_by_period(_kpi_view(part, span, mqa_dates), **kw)


def pipeline_by_period(data, quarter=None, start=None, end=None, *, n_periods: int = 4, lookback_days=None,
                       progress=None) -> pd.DataFrame:
    """:func:`abmkit.kpis.pipeline_by_period` on partitions: every column is a sum over
    opportunities (of whole accounts), so the partitions' rows add up; the influenced
    amount stays NaN only when no partition has touches (none in the whole data)."""
    from .. import kpis as K
    kw = {"quarter": quarter, "start": start, "end": end, "n_periods": n_periods,
          "lookback_days": K.LOOKBACK_DAYS if lookback_days is None else lookback_days}
    parts = partitions(data)
    res = _map(parts, _part_pipeline, _global_span(parts), _mqa(data), kw,
               _progress=("pipeline", _progress(data, progress)))
    f = pd.concat(res, ignore_index=True)
    cols = ["created", "created_amount", "influenced_amount", "won", "won_amount", "lost"]
    out = f.groupby(["period", "period_start"], sort=False)[cols].sum(min_count=1).reset_index()
    for c in ("created", "won", "lost"):
        out[c] = out[c].astype(res[0][c].dtype)
    return out


def _part_funnel(part, span, mqa_dates, period):
    from .. import kpis as K
    return K.account_funnel(_kpi_view(part, span, mqa_dates), period=period)


def account_funnel(data, quarter=None, start=None, end=None, *, period=None, progress=None) -> pd.DataFrame:
    """:func:`abmkit.kpis.account_funnel` on partitions: each step counts accounts, so
    the partitions' counts add up (each partition nests its own accounts' steps) and
    the shares are recomputed. A step applicable in some partitions only (a partition
    without any touch) would nest differently there: the funnel then runs in memory."""
    from ..kpis import _period
    from ..prepared import ALL_ACCOUNTS, TARGET_POPULATION
    p = _period(quarter, start, end, period)
    parts = partitions(data)
    span = _global_span(parts)
    res = _map(parts, _part_funnel, span, _mqa(data), p, _progress=("funnel", _progress(data, progress)))
    if any(r["note"].tolist() != res[0]["note"].tolist() for r in res):
        from .. import kpis as K
        _fallback("kpis.account_funnel", "a step applies in some partitions only")
        return K.account_funnel(data.in_memory(), period=p)
    counts = np.sum([r["accounts"].astype("float").to_numpy() for r in res], axis=0)
    applicable = res[0]["note"].eq("").to_numpy()
    counts[~applicable] = np.nan
    prev, last = [1.0], counts[0]
    for c, ok in zip(counts[1:], applicable[1:]):
        if not ok:
            prev.append(np.nan)
            continue
        prev.append(c / last if last > 0 else np.nan)
        last = c
    with np.errstate(divide="ignore", invalid="ignore"):
        share = counts / counts[0] if counts[0] else np.full(len(counts), np.nan)
    out = res[0].copy()
    out["accounts"] = pd.array(np.where(np.isnan(counts), None, counts), dtype="Int64")
    out["share_of_population"] = share
    out["share_of_previous_step"] = np.array(prev, dtype=float)
    out["population"] = TARGET_POPULATION if span["any_target"] else ALL_ACCOUNTS
    return out


# --------------------------------------------------------------------------- comparison
def _compare_models(source, models=None, *, milestone: str = "opportunity_created", lookback_days: float = 365,
                   mqa_dates=None, start=None, end=None, dataset: Dataset | None = None, contact_accounts=None,
                   n_boot: int = 1000, seed: int = 0, alpha: float = 0.05, progress: bool | None = None,
                   **params):
    """:class:`abmkit.attribution.ComparisonResult` from the distributed channel
    credits: shares, rank correlation, disagreement, conservation, no_touch, equal to
    ``abmkit.attribution.compare_models(..., n_boot=0)``; bootstrap intervals from the
    same pass over the partitions, equal to ``compare_models(..., n_boot, seed,
    bootstrap="poisson")`` (accounts weighted by Poisson(1) counts that do not depend
    on the partitioning; see :func:`channel_credits`). ``n_boot=0``: no intervals."""
    from ..attribution import DEFAULT_COMPARE_MODELS
    models = list(DEFAULT_COMPARE_MODELS if models is None else ([models] if isinstance(models, str) else models))
    cc = channel_credits(source, models, milestone=milestone, lookback_days=lookback_days, mqa_dates=mqa_dates,
                         start=start, end=end, dataset=dataset, contact_accounts=contact_accounts, n_boot=n_boot,
                         seed=seed, alpha=alpha, progress=progress, **params)
    from ..attribution.compare import comparison_from_credits
    return comparison_from_credits(cc.credits, models, cc.conservation, cc.no_touch, cc.info, cc.channels_seen,
                                   low=cc.low, high=cc.high, n_boot=n_boot if cc.low is not None else 0, seed=seed)


# --------------------------------------------------------------------------- entry points
# One per analysis that has a partitioned kernel, with the analysis's own signature:
# abmkit.engine calls them when the analysis receives a partitioned dataset.
def _mqa(data):
    """The resolved dataset's MQA dates when the handle carries them (the same dates as
    the in-memory path), else None (each partition evaluates the MQA rule)."""
    return getattr(data, "mqa_dates", None) if isinstance(data, PartitionedDataset) else None


def _progress(data, progress):
    return progress if progress is not None else getattr(data, "options", {}).get("progress")


def _fallback(name: str, why: str):
    """Warn that ``name`` runs on the in-memory dataset (loaded whole, once)."""
    import warnings
    warnings.warn(f"{name} on a partitioned dataset: {why}; it runs on the whole data in memory",
                  RuntimeWarning, stacklevel=4)


def compare_models(data, models, n_boot, seed, *, milestone, lookback_days, start, end, alpha, progress,
                   bootstrap, **params):
    """:func:`abmkit.attribution.compare_models` on partitions. The bootstrap resamples
    accounts with Poisson(1) weights (the only resampling each partition can do alone;
    ``result.info["bootstrap"]`` says so), equal to ``bootstrap="poisson"`` in memory."""
    if bootstrap not in ("multinomial", "poisson"):
        raise ValueError(f"bootstrap must be 'multinomial' or 'poisson', not {bootstrap!r}")
    if models is not None and "incremental" in ([models] if isinstance(models, str) else models):
        from .incremental_kernel import compare_models as _with_incremental  # fitted on the driver
        return _with_incremental(data, models, n_boot, seed, milestone=milestone, lookback_days=lookback_days,
                                 start=start, end=end, alpha=alpha, progress=progress, **params)
    return _compare_models(data, models, milestone=milestone, lookback_days=lookback_days, mqa_dates=_mqa(data),
                           start=start, end=end, n_boot=n_boot, seed=seed, alpha=alpha,
                           progress=_progress(data, progress), **params)


def attribute(data, model, *, milestone, lookback_days, start, end, **params):
    """:func:`abmkit.attribution.attribute` on partitions: a lazy Dask DataFrame (one
    partition per account partition); ``abmkit.attribution.campaign_table`` reduces it
    on the partitions."""
    return _attribute(data, model, milestone=milestone, lookback_days=lookback_days, mqa_dates=_mqa(data),
                      start=start, end=end, **params)


@dataclass
class PartitionedJourneys:
    """:func:`abmkit.attribution.journeys_for` on a partitioned dataset: the journeys
    stay on the partitions (built where they are used); ``info`` sums their counts."""
    _abmkit_partitioned = True
    data: object
    models: list
    journey_kw: dict
    params: dict
    _info: dict | None = field(default=None, repr=False)

    @property
    def info(self) -> dict:
        if self._info is None:
            parts = partitions(self.data)
            span = _global_span(parts)
            params = _with_removal_effects(parts, self.models, span, self.journey_kw, dict(self.params))
            res = _map(parts, _part_journey_info, self.models, span, self.journey_kw, params,
                       _progress=("journeys", _progress(self.data, None)))
            info = dict(res[0]) if res else {}
            for k in info:
                if isinstance(info[k], (int, float, np.integer, np.floating)) and not isinstance(info[k], bool) \
                        and k not in ("lookback_days",):
                    info[k] = sum(r[k] for r in res)
            info["unattributable_touches"] = info.get("unattributable_touches", 0) + _unattributable_count(parts)
            self._info = info
        return self._info


def _part_journey_info(part, models, span, journey_kw, params) -> dict:
    return dict(_journeys(part, models, span, journey_kw, params).info)


def journeys_for(data, models, *, milestone, lookback_days, start, end, **params):
    return PartitionedJourneys(data, list(models), _journey_kw(milestone, lookback_days, _mqa(data), start, end),
                               dict(params))


def journey_credits(cj, conversion_id, models, **params):
    """:func:`abmkit.attribution.journey_credits` of :class:`PartitionedJourneys`: the
    conversion's journey is built in the partition that holds its account."""
    kw = {k: v for k, v in cj.journey_kw.items()}
    return _journey_credits(cj.data, conversion_id, models, **kw, **{**cj.params, **params})


def sensitivity(data, model, param, values, *, milestone, lookback_days, start, end, **params):
    if model == "shapley" and param in _JOURNEY_PARAMS:
        from ..attribution import sensitivity as _s
        _fallback("attribution.sensitivity", f"the Shapley game over journeys that {param!r} changes is not "
                  "summed over partitions")
        return _s(data.in_memory(), model, param, values, milestone=milestone, lookback_days=lookback_days,
                  start=start, end=end, **params)
    return _sensitivity(data, model, param, values, milestone=milestone, lookback_days=lookback_days,
                        mqa_dates=_mqa(data), start=start, end=end, **params)


def stage_history(data, rules=None, *, as_of=None, data_start=None):
    return _stage_history(data, rules, as_of=as_of, data_start=data_start)


def campaign_influence(data, *, design, **kwargs):
    """:func:`abmkit.uplift.campaign_influence` (landmark and sequential designs) on partitions:
    the exposures are found on the partitions, the statistics run once on the
    account-sized result (same table as in memory)."""
    if design == "sequential":  # same reduced touches (abmkit/scale/sequential_kernel.py)
        from .sequential_kernel import campaign_influence as _seq
        return _seq(data, **kwargs)
    if design != "landmark":
        raise ValueError(f"design must be 'landmark' or 'sequential', not {design!r}")
    kwargs["progress"] = _progress(data, kwargs.get("progress"))
    return _campaign_influence(data, **kwargs)


def transition_baseline(data, history=None, **kwargs):
    return _transition_baseline(data, history, **kwargs)


# engagement scores, the MQA page and MQA dates under another rule (notebook 02)
from .engagement_kernel import engagement_scores, mqa, mqa_dates_with  # noqa: E402,F401
# the incremental attribution model: per-account panel rows on the partitions, the fit on the driver
from .incremental_kernel import incremental_attribution  # noqa: E402,F401
