"""Compare attribution models: shares, bootstrap intervals, rank correlation,
disagreement, conservation, sensitivity sweeps (see docs/attribution.md).

Speed comes from computing every model once: each model gives an account ×
channel credit matrix; a bootstrap replicate is a vector of multinomial account
counts (accounts resampled with replacement, seeded), so a replicate's channel
credits are one matrix product. Markov is re-estimated in every replicate (its
removal effects depend on the sample) from re-weighted transition counts, again
without rebuilding journeys.

Example
-------
>>> res = compare_models(ds, n_boot=200, seed=0)    # doctest: +SKIP
>>> res.shares.round(3)                             # doctest: +SKIP
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..results import Result
from .engine import (DEFAULT_COMPARE_MODELS, credit_matrix, touch_credits)
from .markov import batch_incidence, build_chain, removal_effects, removal_effects_from_types


@dataclass
class ComparisonResult(Result):
    """Output of :func:`compare_models`.

    Attributes
    ----------
    shares : DataFrame
        channel × model share of credited conversions (columns sum to 1).
    intervals : DataFrame
        long: channel, model, share, low, high (bootstrap percentile interval).
    rank_correlation : DataFrame
        model × model Spearman correlation of the channel shares.
    disagreement : DataFrame
        per channel: mean, min, max, range and std of its share across models, the
        models giving the most and least, and its best and worst rank.
    credits : DataFrame
        long: channel, model, conversions, pipeline, revenue.
    conservation : DataFrame
        per model: conversions/pipeline/revenue given and credited, and ``ok``.
    no_touch : DataFrame
        conversions without touches (reported, not credited).
    """
    shares: pd.DataFrame
    intervals: pd.DataFrame
    rank_correlation: pd.DataFrame
    disagreement: pd.DataFrame
    credits: pd.DataFrame
    conservation: pd.DataFrame
    no_touch: pd.DataFrame
    n_boot: int
    seed: int
    info: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """Long table: channel, model, share, low, high, conversions, pipeline, revenue."""
        return self.intervals.merge(self.credits, on=["channel", "model"], how="left")

    _summary_title = "Attribution model comparison"

    def _summary_metadata(self) -> dict:
        keys = ("milestone", "lookback_days", "conversions", "no_touch", "bootstrap")
        return {**{k: self.info[k] for k in keys if k in self.info}, "n_boot": self.n_boot, "seed": self.seed}

    @property
    def summary(self) -> pd.DataFrame:
        """One row per model: top channel and its share, mean rank correlation with the
        other models, and whether credits were conserved."""
        rc = self.rank_correlation.copy()
        np.fill_diagonal(rc.values, np.nan)
        # per model (a handful of columns); a period without conversions has no channel rows
        top = {m: (col.idxmax() if len(col) else None) for m, col in
               ((m, self.shares[m].dropna()) for m in self.shares.columns)}
        return pd.DataFrame({
            "model": self.shares.columns,
            "top_channel": [top[m] for m in self.shares.columns],
            "top_share": [self.shares.loc[c, m] if c is not None else np.nan for m, c in top.items()],
            "mean_rank_correlation": rc.mean().reindex(self.shares.columns).values,
            "conserved": self.conservation.set_index("model")["ok"].reindex(self.shares.columns).values,
        })


def _account_groups(cj):
    """Resampling units: every account with a converting or non-converting journey.
    Returns converting rows, their group, the non-converting journeys' group, the
    number of groups and each group's account id."""
    conv_rows = np.flatnonzero(cj.conversions["n_touches"].to_numpy() > 0)
    conv_acc = cj.conversions["account_index"].to_numpy()[conv_rows]
    accs, inv = np.unique(np.concatenate([conv_acc, cj.nc_account]), return_inverse=True)
    return conv_rows, inv[:len(conv_rows)], inv[len(conv_rows):], len(accs), np.asarray(cj.accounts)[accs]


#: bootstrap schemes of :func:`compare_models`
BOOTSTRAPS = ("multinomial", "poisson")
#: P(Poisson(1) <= k), k = 0..19: the inverse CDF of the Poisson bootstrap weights
_POISSON1_CDF = np.cumsum(np.exp(-1.0) / np.cumprod(np.r_[1.0, np.arange(1, 20)]))


def poisson_weights(account_ids, seed: int, first: int, count: int) -> np.ndarray:
    """Poisson(1) bootstrap weights (``count`` x accounts) of replicates ``first ..
    first + count - 1``. Each weight is a function of (seed, replicate, account id)
    alone, so it is the same whatever the order of the accounts and however they are
    split over partitions: replicate sums computed per partition and added up equal
    the whole-data replicate (what :func:`abmkit.scale.compare_models` relies on).

    Example
    -------
    >>> w = poisson_weights(["a", "b", "c"], seed=0, first=0, count=4)
    >>> w.shape, bool((poisson_weights(["c", "a"], 0, 0, 4) == w[:, [2, 0]]).all())
    ((4, 3), True)
    """
    from ..hashing import mix, string_hash
    h = string_hash(np.asarray(account_ids, dtype=object))
    rep = np.arange(first, first + count, dtype=np.uint64)
    with np.errstate(over="ignore"):
        key = mix(rep * np.uint64(0xD1B54A32D192ED03) + np.uint64(seed % 2**64))
        x = mix(h[None, :] ^ key[:, None])
    u = (x >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return np.searchsorted(_POISSON1_CDF, u, side="right").astype(np.float64)


def _markov_credits(cj, order: int):
    k = len(cj.channels)
    conv = cj.conversions[cj.conversions["n_touches"] > 0]
    out = {}
    pipe_re_c, pipe_re_v, _, _ = removal_effects(build_chain(cj.paths("pipeline_amount"), order, keep_paths=False))
    rev_re_v = removal_effects(build_chain(cj.paths("revenue_amount"), order, keep_paths=False))[1]
    for col, total, re in (("conversions", float(len(conv)), pipe_re_c),
                           ("pipeline", float(conv["pipeline_amount"].sum()), pipe_re_v),
                           ("revenue", float(conv["revenue_amount"].sum()), rev_re_v)):
        out[col] = re / re.sum() * total if re.sum() > 0 else np.zeros(k)
    return out


@dataclass
class _Replicable:
    """What a bootstrap replicate needs of one set of journeys: per model the
    group (account) x channel credit matrix (rule models) or the chain with its
    group incidence (Markov)."""
    credits: pd.DataFrame
    conservation: list
    acc_mats: dict
    markov_chain: object
    incidence: object
    n_groups: int
    group_accounts: np.ndarray
    channels: list
    seen: np.ndarray

    def replicates(self, n_boot: int, models, draw, on_batch=None) -> dict:
        """Every replicate's sums, in batches that keep the weight matrix under ~2e7
        entries: per rule model the (n_boot x channels) credit sums, for Markov the
        (n_boot x transition types) re-weighted transition counts. ``draw(first, b)``
        gives the (b x groups) weights of replicates ``first .. first + b - 1``;
        ``on_batch(b)`` is called after each batch (a progress bar)."""
        k = len(self.channels)
        rule = [m for m in models if m in self.acc_mats]
        out = {m: np.zeros((n_boot, k)) for m in rule}
        if self.markov_chain is not None:
            out["markov"] = np.zeros((n_boot, len(self.incidence[0])))
        if not self.n_groups:
            return out
        if rule:
            # accounts without a conversion add nothing to rule-model credits: multiply
            # only the rows that do (their weights are still drawn over every account)
            rows = np.flatnonzero(np.any([self.acc_mats[m].any(axis=1) for m in rule], axis=0))
            stacked = np.hstack([self.acc_mats[m][rows] for m in rule])
        step = max(1, min(n_boot, int(2e7 // self.n_groups)))
        for first in range(0, n_boot, step):
            b = min(step, n_boot - first)
            w = draw(first, b)
            if rule:
                prod = w[:, rows] @ stacked
                for j, m in enumerate(rule):
                    out[m][first:first + b] = prod[:, j * k:(j + 1) * k]
            if self.markov_chain is not None:
                out["markov"][first:first + b] = np.asarray((self.incidence[1].T @ w.T).T)
            if on_batch is not None:
                on_batch(b)
        return out


def replicable(cj, models, n_boot: int, params, *, markov_credits: bool = True) -> _Replicable:
    """Per model the channel credits of ``cj`` and what a bootstrap replicate needs
    (:class:`_Replicable`); :func:`compare_models` and :mod:`abmkit.scale` share it.

    ``markov_credits=False``: leave Markov's credits out (a partition's chain alone
    does not give them; :mod:`abmkit.scale` solves the summed chain) but still build
    its chain and incidence for the bootstrap."""
    k = len(cj.channels)
    conv = cj.conversions
    conv_rows, conv_group, nc_group, n_groups, group_accounts = _account_groups(cj)
    pipe = conv["pipeline_amount"].to_numpy()
    rev = conv["revenue_amount"].to_numpy()
    credit_rows, acc_mats, markov_chain, incidence = [], {}, None, None
    conservation = []
    for m in models:
        if m == "markov":
            if n_boot:
                markov_chain = build_chain(cj.paths(), params.get("order", 1))
                incidence = batch_incidence(markov_chain, np.concatenate([conv_group, nc_group]), n_groups)
            if not markov_credits:
                continue
            mc = _markov_credits(cj, params.get("order", 1))
            c_conv, c_pipe, c_rev = mc["conversions"], mc["pipeline"], mc["revenue"]
        else:
            credit = touch_credits(cj, m, **params)
            mat = credit_matrix(cj, credit)[conv_rows]
            c_conv = mat.sum(axis=0)
            c_pipe = (mat * pipe[conv_rows, None]).sum(axis=0)
            c_rev = (mat * rev[conv_rows, None]).sum(axis=0)
            if n_boot:
                g = np.zeros((n_groups, k))
                np.add.at(g, conv_group, mat)
                acc_mats[m] = g
        credit_rows.append(pd.DataFrame({"channel": cj.channels, "model": m, "conversions": c_conv,
                                         "pipeline": c_pipe, "revenue": c_rev}))
        given = (float(len(conv_rows)), float(pipe[conv_rows].sum()), float(rev[conv_rows].sum()))
        got = (float(c_conv.sum()), float(c_pipe.sum()), float(c_rev.sum()))
        conservation.append({"model": m, "conversions_given": given[0], "conversions_credited": got[0],
                             "pipeline_given": given[1], "pipeline_credited": got[1],
                             "revenue_given": given[2], "revenue_credited": got[2],
                             "ok": bool(np.allclose(given, got, rtol=1e-9, atol=1e-6))})
    seen = np.bincount(cj.channel, minlength=k) > 0
    return _Replicable(pd.concat(credit_rows, ignore_index=True), conservation, acc_mats, markov_chain, incidence,
                       n_groups if len(conv_rows) else 0, group_accounts, list(cj.channels), seen)


_replicable = replicable  # the former private name (tests/test_attribution_properties.py)


def percentile_bounds(reps: dict, models, channels, keep_ch, alpha: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Percentile interval of each model's channel shares over bootstrap replicates
    (``reps[m]``: replicates x channels credit sums)."""
    low = pd.DataFrame(np.nan, index=pd.Index(keep_ch, name="channel"), columns=list(models))
    high = low.copy()
    idx = [channels.index(c) for c in keep_ch]
    for m in models:
        r = reps[m][:, idx]
        with np.errstate(invalid="ignore", divide="ignore"):
            s = r / r.sum(axis=1, keepdims=True)
        low[m] = np.nanpercentile(s, 100 * alpha / 2, axis=0)
        high[m] = np.nanpercentile(s, 100 * (1 - alpha / 2), axis=0)
    return low, high


def markov_replicates(chain, types: np.ndarray, tw: np.ndarray) -> np.ndarray:
    """Removal effects of every replicate from its transition counts, in sub-batches
    (dense batched solves hold b x states^2 floats: kept under ~200 MB)."""
    n_st = chain.n_states + 1
    sub = max(1, int(2.5e7 // (n_st * n_st)))
    return np.vstack([removal_effects_from_types(chain, types, tw[s0:s0 + sub]) for s0 in range(0, len(tw), sub)]) \
        if len(tw) else np.zeros((0, chain.n_channels))


def compare_models(data, models=DEFAULT_COMPARE_MODELS, n_boot: int = 1000, seed: int = 0, *,
                   milestone: str = "opportunity_created", lookback_days: float = 365,
                   start=None, end=None, alpha: float = 0.05,
                   progress: bool | None = None, bootstrap: str = "multinomial", **params) -> ComparisonResult:
    """Run several models on the same journeys and compare them.

    Parameters
    ----------
    data : ResolvedDataset
        :func:`abmkit.prepare` output (a plain Dataset is prepared with defaults); the
        journeys are built once per dataset and options and shared with
        :func:`abmkit.attribution.attribute` calls on it.
    models : sequence of str
        default :data:`DEFAULT_COMPARE_MODELS`.
    n_boot : int
        bootstrap replicates (accounts resampled with replacement); 0 = no intervals.
    seed : int
    bootstrap : {"multinomial", "poisson"}
        how a replicate resamples accounts. ``multinomial``: n accounts drawn with
        replacement (the classic bootstrap). ``poisson``: every account weighted by an
        independent Poisson(1) count that depends only on (seed, replicate, account
        id) (:func:`poisson_weights`): the same replicates however the data is split,
        which is what :func:`abmkit.scale.compare_models` computes partition by
        partition. Both estimate the same sampling distribution.
    alpha : float
        intervals are the (alpha/2, 1 − alpha/2) percentiles.
    **params
        model parameters (half_life_days, order for markov, custom weights).

    Returns
    -------
    ComparisonResult
    """
    from . import journeys_for
    from ..applicability import check, mark
    from ..period import resolve_period
    from ..prepared import resolve
    if bootstrap not in BOOTSTRAPS:
        raise ValueError(f"bootstrap must be one of {BOOTSTRAPS}, not {bootstrap!r}")
    models = [models] if isinstance(models, str) else list(models)
    data = resolve(data)
    cj = journeys_for(data, models, milestone=milestone, lookback_days=lookback_days, start=start, end=end,
                      **params)
    # n/a without touches or opportunities, or without a conversion in the period
    app = check(data, "attribution_closed_won" if milestone == "closed_won" else "attribution",
                resolve_period(start=start, end=end) if start is not None and end is not None else None)
    rep = replicable(cj, models, n_boot, params)
    keep_ch = [c for i, c in enumerate(cj.channels) if rep.seen[i]]
    low = high = None
    if n_boot and rep.n_groups:
        n_groups = rep.n_groups
        rng = np.random.default_rng(seed)

        def draw(first: int, b: int) -> np.ndarray:
            if bootstrap == "poisson":
                return poisson_weights(rep.group_accounts, seed, first, b)
            draws = rng.integers(0, n_groups, size=(b, n_groups))
            # one bincount per replicate: ~6x faster than a single bincount over offset
            # codes (which needs a b x n_groups temporary), same counts
            w = np.empty((b, n_groups))
            for r in range(b):
                w[r] = np.bincount(draws[r], minlength=n_groups)
            return w
        # disable=None: tqdm stays quiet when not on a terminal
        bar = tqdm(total=n_boot, desc="bootstrap", disable=(not progress) if progress is not None else None,
                   leave=False)
        reps = rep.replicates(n_boot, models, draw, bar.update)
        bar.close()
        if "markov" in reps:
            reps["markov"] = markov_replicates(rep.markov_chain, rep.incidence[0], reps["markov"])
        low, high = percentile_bounds(reps, models, list(cj.channels), keep_ch, alpha)
    conv = cj.conversions
    no_touch = conv[conv["n_touches"] == 0][["conversion_id", "account_id", "converted_at", "amount"]]
    info = {**cj.info, "bootstrap": bootstrap if n_boot else None}
    return mark(comparison_from_credits(rep.credits, models, pd.DataFrame(rep.conservation), no_touch, info, keep_ch,
                                        low=low, high=high, n_boot=n_boot, seed=seed), app)


def comparison_from_credits(credits: pd.DataFrame, models, conservation: pd.DataFrame, no_touch: pd.DataFrame,
                            info: dict, channels, *, low: pd.DataFrame | None = None,
                            high: pd.DataFrame | None = None, n_boot: int = 0, seed: int = 0) -> ComparisonResult:
    """The comparison tables (shares, intervals, rank correlation, disagreement) from
    channel credits already summed (``credits``: channel, model, conversions, pipeline,
    revenue), e.g. over account partitions by :func:`abmkit.scale.compare_models`.

    ``channels``: the rows of the share tables (channels seen in converting journeys);
    ``low``/``high``: bootstrap bounds (channel × model), NaN when not given.
    """
    models = list(models)
    shares = credits.pivot(index="channel", columns="model", values="conversions").reindex(index=list(channels),
                                                                                             columns=models)
    shares = shares / shares.sum()
    shares.columns.name = "model"
    low = pd.DataFrame(np.nan, index=shares.index, columns=models) if low is None else low.reindex(shares.index)
    high = pd.DataFrame(np.nan, index=shares.index, columns=models) if high is None else high.reindex(shares.index)
    long = lambda df, name: df.rename_axis(index="channel", columns="model").reset_index().melt(  # noqa: E731
        id_vars="channel", var_name="model", value_name=name)
    intervals = long(shares, "share").merge(long(low, "low"), on=["channel", "model"]).merge(
        long(high, "high"), on=["channel", "model"])
    # exact ties (Shapley shares of channels present in every journey) differ in the
    # last bits with summation order: rank on rounded shares so they stay ties
    tied = shares.round(12)
    rank_corr = tied.corr(method="spearman") if len(shares) > 1 else pd.DataFrame(np.nan, models, models)
    ranks = tied.rank(ascending=False, method="min")
    disagreement = pd.DataFrame({
        "channel": shares.index, "mean_share": shares.mean(axis=1).values, "min_share": shares.min(axis=1).values,
        "max_share": shares.max(axis=1).values, "range": (shares.max(axis=1) - shares.min(axis=1)).values,
        "std": shares.std(axis=1, ddof=0).values,
        "model_max": shares.idxmax(axis=1).values if len(models) else None,
        "model_min": shares.idxmin(axis=1).values if len(models) else None,
        "best_rank": ranks.min(axis=1).values, "worst_rank": ranks.max(axis=1).values,
    }).sort_values("range", ascending=False, ignore_index=True)
    return ComparisonResult(shares=shares, intervals=intervals, rank_correlation=rank_corr,
                            disagreement=disagreement, credits=credits, conservation=conservation,
                            no_touch=no_touch.reset_index(drop=True), n_boot=n_boot, seed=seed,
                            info=dict(info))


_JOURNEY_PARAMS = ("lookback_days", "milestone")


def sensitivity(data, model: str, param: str, values, *, milestone: str = "opportunity_created",
                lookback_days: float = 365, start=None, end=None, **params) -> pd.DataFrame:
    """How a model's channel shares move when one parameter moves.

    Parameters
    ----------
    data : ResolvedDataset
    model : str
    param : str
        ``half_life_days``, ``lookback_days`` or any model parameter.
    values : sequence

    Returns
    -------
    DataFrame
        param, value, channel, share, conversions (one row per value × channel).

    Example
    -------
    >>> sensitivity(ds, "time_decay", "half_life_days", [7, 30, 90])   # doctest: +SKIP
    """
    from . import journeys_for
    base = dict(milestone=milestone, lookback_days=lookback_days)
    cj = None
    rows = []
    for v in values:
        jp = dict(base)
        mp = dict(params)
        if param in _JOURNEY_PARAMS:
            jp[param] = v
        else:
            mp[param] = v
        if cj is None or param in _JOURNEY_PARAMS:
            cj = journeys_for(data, [model], start=start, end=end, **jp, **mp)
        if model == "markov":
            c = _markov_credits(cj, mp.get("order", 1))["conversions"]
        else:
            c = np.bincount(cj.channel, touch_credits(cj, model, **mp), len(cj.channels))
        tot = c.sum()
        rows.append(pd.DataFrame({"param": param, "value": v, "channel": cj.channels,
                                  "share": c / tot if tot > 0 else np.nan, "conversions": c}))
    out = pd.concat(rows, ignore_index=True)
    return out[out.groupby("channel")["conversions"].transform("sum") > 0].reset_index(drop=True)


def comparison_findings(result: ComparisonResult, **extra) -> dict:
    """Headline numbers of a comparison for the report findings (JSON-friendly).

    Example
    -------
    >>> comparison_findings(res, period="2026Q3")["most_disputed_channel"]   # doctest: +SKIP
    'webinar'
    """
    info = result.info
    rc = result.rank_correlation.to_numpy(dtype=float)
    off = rc[~np.eye(len(rc), dtype=bool)] if len(rc) > 1 else np.array([np.nan])
    top = result.disagreement.iloc[0] if len(result.disagreement) else None
    return {
        **extra,
        "milestone": info.get("milestone"), "lookback_days": info.get("lookback_days"),
        "conversions": info.get("conversions"), "conversions_with_touches": info.get("with_touches"),
        "no_touch_conversions": info.get("no_touch"), "unattributable_touches": info.get("unattributable_touches"),
        "pipeline": info.get("pipeline"),
        "revenue": info.get("revenue"), "models": list(result.shares.columns), "n_boot": result.n_boot,
        "top_channel_by_model": {m: str(c) for m, c in result.shares.idxmax().items()} if len(result.shares) else {},
        "most_disputed_channel": None if top is None else str(top["channel"]),
        "most_disputed_share_range": None if top is None else float(top["range"]),
        "min_rank_correlation": float(np.nanmin(off)) if np.isfinite(off).any() else None,
        "mean_rank_correlation": float(np.nanmean(off)) if np.isfinite(off).any() else None,
        "all_credits_conserved": bool(result.conservation["ok"].all()),
    }
