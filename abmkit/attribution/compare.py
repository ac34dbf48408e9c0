"""Compare attribution models: shares, bootstrap intervals, rank correlation,
disagreement, conservation, sensitivity sweeps (see docs/attribution.md).

Speed comes from computing every model once: each rule model gives an account ×
channel credit matrix; a bootstrap replicate is a vector of multinomial account
counts (accounts resampled with replacement, seeded), so a replicate's channel
credits are one matrix product. Data-driven models are re-estimated in every
replicate (their estimates depend on the sample) from re-weighted sufficient
statistics, without rebuilding journeys: Markov from transition counts (one dense
product for all replicates of a batch, then small batched solves), Shapley from the
conversions and journeys of each channel set (:data:`REFITS` registers them).

Example
-------
>>> res = compare_models(ds, n_boot=200, seed=0)    # doctest: +SKIP
>>> res.shares.round(3)                             # doctest: +SKIP
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
from ..progress import progress_bar

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
    #: the Markov order comparison when ``order="auto"`` (:class:`~abmkit.attribution.markov.OrderSelection`)
    order_selection: object = None
    #: the fitted incremental model when ``"incremental"`` is among the models
    #: (:class:`~abmkit.attribution.incremental.IncrementalResult`: conversions lost per channel)
    incremental: object = None

    def to_frame(self) -> pd.DataFrame:
        """Long table: channel, model, share, low, high, conversions, pipeline, revenue."""
        return self.intervals.merge(self.credits, on=["channel", "model"], how="left")

    _summary_title = "Attribution model comparison"

    def _summary_metadata(self) -> dict:
        keys = ("milestone", "lookback_days", "conversions", "no_touch", "bootstrap", "markov_order")
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
    the whole-data replicate (what compare_models on a partitioned dataset relies on).

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


def _markov_credits(cj, order):
    from .markov import resolve_order
    order = resolve_order(cj.paths(), order)
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
class Refit:
    """How a data-driven model is re-estimated in every bootstrap replicate.

    ``stats(w)``: the linear statistics the model needs from a batch of replicate
    weights ``w`` (b x accounts) → (b x d) (e.g. re-weighted counts);
    ``finish(stats, ctx)``: the (n_boot x d) statistics of all replicates → (n_boot x
    channels) channel credits (any positive scale: intervals are on shares). ``ctx``
    holds what several models share (``ctx["markov_effects"]``: the Markov removal
    effects of every replicate, when a Markov model is asked for)."""
    stats: object
    finish: object
    #: what identifies each statistic across partitions (model-specific), or None
    keys: object = None
    #: the (accounts x d) matrix whose weighted sums ``stats`` computes, when it has one:
    #: lets big data draw the replicate sums from their bootstrap mean and covariance
    incidence: object = None
    #: makes drawn sums valid statistics (e.g. counts >= 0); default: clip at 0
    clip: object = None
    #: the statistics are correlated with Markov's transition counts (drawn jointly with
    #: them by ``replicate_sums="normal"``); else they are drawn exactly from classes of
    #: accounts with identical rows (:func:`_row_classes`) when there are few classes
    with_markov: bool = False


def _group_sparse(groups: np.ndarray, cols: np.ndarray, vals: np.ndarray, n_groups: int, n_cols: int):
    return sp.csr_matrix((vals, (groups, cols)), shape=(n_groups, n_cols)).tocsc()


def _shapley_refit(cj, path_group: np.ndarray, n_groups: int, params) -> Refit:
    """Per replicate: conversions and journeys of every channel set (account-weighted),
    hence the set conversion rates, hence the Shapley credits (all replicates at once,
    :func:`~abmkit.attribution.shapley.credits_from_set_counts`). ``keys``: the channel
    set (bit mask) of each statistic, so partitions' statistics can be aligned and added."""
    from .shapley import channel_masks, credits_from_set_counts
    paths = cj.paths()
    uniq, inv = np.unique(channel_masks(paths), return_inverse=True)
    u, k = len(uniq), len(cj.channels)
    converting = np.bincount(inv, (paths.conversions > 0) | (paths.value > 0), u) > 0
    cols = np.concatenate([inv, inv + u])
    vals = np.concatenate([paths.conversions, paths.conversions + paths.null])
    inc = _group_sparse(np.concatenate([path_group, path_group]), cols, vals, n_groups, 2 * u)

    def finish(stats, ctx):
        return credits_from_set_counts(uniq, stats[:, :u], stats[:, u:], k, converting)

    def clip(stats):
        # drawn sums: journeys >= 0 and 0 <= conversions <= journeys, so rates stay in [0, 1]
        journeys = np.maximum(stats[:, u:], 0.0)
        return np.hstack([np.clip(stats[:, :u], 0.0, journeys), journeys])
    return Refit(lambda w: np.asarray((inc.T @ w.T).T), finish, keys=(uniq, converting), incidence=inc, clip=clip)


def _markov_split_refit(cj, conv_group: np.ndarray, n_groups: int, params) -> Refit:
    """Per replicate: conversions of every converting channel set; the removal effects
    of that replicate (``ctx``) split each set's conversions over its channels."""
    from .engine import conversion_channel_sets
    masks = conversion_channel_sets(cj)[cj.conversions["n_touches"].to_numpy() > 0]
    uniq, inv = np.unique(masks, return_inverse=True)
    k = len(cj.channels)
    member = ((uniq[:, None] >> np.arange(k)) & 1).astype(float)
    inc = _group_sparse(conv_group, inv, np.ones(len(inv)), n_groups, len(uniq))

    def finish(stats, ctx):
        re = ctx["markov_effects"]                       # n_boot x k
        wgt = re[:, None, :] * member[None]              # n_boot x sets x k
        tot = wgt.sum(axis=2, keepdims=True)
        share = np.divide(wgt, tot, out=np.broadcast_to(member / member.sum(axis=1, keepdims=True),
                                                        wgt.shape).copy(), where=tot > 0)
        return np.einsum("bs,bsk->bk", stats, share)
    return Refit(lambda w: np.asarray((inc.T @ w.T).T), finish, incidence=inc, with_markov=True)


#: data-driven models other than ``markov`` that compare_models re-estimates in every
#: bootstrap replicate: name -> factory(cj, path_group, n_groups, params) -> Refit, where
#: path_group is the bootstrap unit (account) of every path of ``cj.paths()`` (converting
#: journeys first, then non-converting). Register a new data-driven model here.
REFITS = {"shapley": _shapley_refit}
#: Markov variants need the removal effects of every replicate (shared, solved once)
_MARKOV_MODELS = ("markov", "markov_per_conversion")


@dataclass
class _Replicable:
    """What a bootstrap replicate needs of one set of journeys: per rule model the
    group (account) x channel credit matrix, the Markov chain with its group incidence,
    and the :class:`Refit` of every other data-driven model."""
    credits: pd.DataFrame
    conservation: list
    acc_mats: dict
    markov_chain: object
    incidence: object
    n_groups: int
    group_accounts: np.ndarray
    channels: list
    seen: np.ndarray
    refits: dict = field(default_factory=dict)
    #: (mean, factor, rng, layout) when Markov's replicate transition counts — and, jointly
    #: with them, the refit models' statistics — are drawn from their bootstrap mean and
    #: covariance instead of re-weighting every account (big data); ``layout``: (name,
    #: first column, end column) of each model's block ("markov" or a refit model)
    markov_normal: object = None
    #: the same for the stacked credit sums of the rule models
    rule_normal: object = None
    #: per refit model (class rows, class sizes, rng): its replicate sums drawn exactly as
    #: multinomial counts of account classes (``replicate_sums="normal"``, few classes)
    refit_classes: dict = field(default_factory=dict)

    def replicates(self, n_boot: int, models, draw, on_batch=None) -> dict:
        """Every replicate's sums, in batches that keep the weight matrix under ~2e7
        entries: per rule model the (n_boot x channels) credit sums, for Markov the
        (n_boot x transition types) re-weighted transition counts, per refit model its
        (n_boot x d) statistics. ``draw(first, b)`` gives the (b x groups) weights of
        replicates ``first .. first + b - 1``; ``on_batch(b)`` is called after each
        batch (a progress bar)."""
        k = len(self.channels)
        rule = [m for m in models if m in self.acc_mats]
        out = {m: np.zeros((n_boot, k)) for m in rule}
        drawn_rule = [m for m in self.rule_normal[3] if m in rule] if self.rule_normal is not None else []
        rule = [] if self.rule_normal is not None else rule
        if self.markov_chain is not None:
            out["markov"] = np.zeros((n_boot, len(self.incidence[0])))
        if not self.n_groups:
            return out
        if rule:
            # accounts without a conversion add nothing to rule-model credits: multiply
            # only the rows that do (their weights are still drawn over every account)
            rows = np.flatnonzero(np.any([self.acc_mats[m].any(axis=1) for m in rule], axis=0))
            stacked = np.hstack([self.acc_mats[m][rows] for m in rule])
        drawn = {name for name, _, _ in self.markov_normal[3]} if self.markov_normal is not None else set()
        drawn |= set(self.refit_classes)
        refits = {m: rf for m, rf in self.refits.items() if m not in drawn}
        mk = None
        if self.markov_chain is not None and "markov" not in drawn:
            mk = self.incidence[1]
            if isinstance(mk, np.ndarray):
                # integer counts times integer weights: every partial sum is an integer, exact
                # in float32 while below 2^24 — half the memory traffic of float64, same sums
                wmax = 64.0  # multinomial / Poisson(1) counts never come near this
                if np.all(mk == np.round(mk)) and mk.sum(axis=0).max() * wmax < 2.0 ** 24:
                    mk = mk.astype(np.float32)
        step = max(1, min(n_boot, int(2e7 // self.n_groups)))
        # nothing re-weighted account by account: no weights to draw
        for first in (range(0, n_boot, step) if rule or mk is not None or refits else ()):
            b = min(step, n_boot - first)
            w = draw(first, b)
            if rule:
                prod = w[:, rows] @ stacked
                for j, m in enumerate(rule):
                    out[m][first:first + b] = prod[:, j * k:(j + 1) * k]
            if mk is not None:
                if isinstance(mk, np.ndarray):
                    wk = w.astype(mk.dtype) if mk.dtype == np.float32 and w.max(initial=0) <= 64 else w
                    out["markov"][first:first + b] = (wk @ mk) if wk.dtype == mk.dtype else w @ mk.astype(float)
                else:
                    out["markov"][first:first + b] = np.asarray((mk.T @ w.T).T)
            for m, rf in refits.items():
                s = rf.stats(w)
                if m not in out:
                    out[m] = np.zeros((n_boot, s.shape[1]))
                out[m][first:first + b] = s
            if on_batch is not None:
                on_batch(b)
        if self.markov_normal is not None:
            mean, factor, rng, layout = self.markov_normal
            sums = mean + rng.standard_normal((n_boot, factor.shape[1])) @ factor.T
            for name, a, b in layout:
                clip = self.refits[name].clip if name in self.refits else None
                out[name] = clip(sums[:, a:b]) if clip is not None else np.maximum(sums[:, a:b], 0.0)
        for name, (rows_c, sizes, rng) in self.refit_classes.items():
            if name in self.refits:
                g = int(sizes.sum())
                counts = rng.multinomial(g, sizes / g, size=n_boot).astype(float)
                out[name] = np.asarray((rows_c.T @ counts.T).T)
        if drawn_rule:
            mean, factor, rng, names = self.rule_normal
            sums = mean + rng.standard_normal((n_boot, factor.shape[1])) @ factor.T
            for m in drawn_rule:
                j = names.index(m)
                out[m] = np.maximum(sums[:, j * k:(j + 1) * k], 0.0)
        return out


#: accounts on which the covariance of the replicate sums is estimated (a seeded sample
#: when there are more; the mean is always exact)
NORMAL_COV_ACCOUNTS = 20_000


def _rows(block, idx=None) -> np.ndarray:
    """Rows ``idx`` (all when None) of a dense or sparse matrix, as a dense float array."""
    if isinstance(block, np.ndarray):
        return np.asarray(block if idx is None else block[idx], float)
    b = block.tocsr() if idx is not None else block
    return np.asarray((b if idx is None else b[idx]).todense(), float)


def _normal_counts(inc, seed: int, n_groups: int | None = None, stream: int = 0x6D61726B):
    """Mean and covariance factor of the multinomial-bootstrap sum of the accounts' rows
    X (accounts × statistics): mean = the column totals T, covariance = G Σ, Σ the
    covariance of the rows over the G accounts (accounts without a row count as zero
    rows when ``n_groups`` > rows) — the first two moments of Σ_g w_g X_g when w is a
    multinomial(G, 1/G) draw. Σ is computed on all rows up to
    :data:`NORMAL_COV_ACCOUNTS`, else on a seeded sample of that many accounts. ``inc``
    may be a list of matrices with the same rows (their columns side by side: one joint
    draw)."""
    blocks = list(inc) if isinstance(inc, (list, tuple)) else [inc]
    rows = blocks[0].shape[0]
    g = max(int(n_groups or rows), 1)
    rng = np.random.default_rng([int(seed), stream])
    total = np.concatenate([b.sum(axis=0) if isinstance(b, np.ndarray) else np.asarray(b.sum(axis=0)).ravel()
                            for b in blocks])
    if g > NORMAL_COV_ACCOUNTS:
        pick = rng.choice(g, NORMAL_COV_ACCOUNTS, replace=False)
        pick = np.sort(pick[pick < rows])  # sampled accounts beyond the stored rows are zero rows
        sub = np.hstack([_rows(b, pick) for b in blocks])
        n_s = NORMAL_COV_ACCOUNTS
    else:
        sub, n_s = np.hstack([_rows(b) for b in blocks]), g
    mean_s = sub.sum(axis=0) / n_s
    cov = g * (sub.T @ sub / n_s - np.outer(mean_s, mean_s))
    val, vec = np.linalg.eigh((cov + cov.T) / 2)
    factor = vec * np.sqrt(np.clip(val, 0, None))
    return total, factor, rng


def _row_classes(inc, max_classes: int):
    """Accounts whose rows of ``inc`` (accounts × statistics, whole counts) are identical,
    as classes: (class rows C × d, class sizes), or None (not whole counts, or more than
    ``max_classes`` classes). The multinomial bootstrap's weighted sum Σ_g w_g X_g equals
    Σ_c (Σ_{g in c} w_g) R_c, and the class totals Σ_{g in c} w_g of a multinomial(G, 1/G)
    draw are multinomial(G, |c|/G): drawing C class counts gives exactly the replicate
    sums of re-weighting all G accounts. Rows are grouped by a 64-bit hash of (column,
    count) pairs, then checked equal to their class row (a collision falls back: None)."""
    m = sp.csr_matrix(inc)
    if not np.all(m.data == np.round(m.data)) or (m.data < 0).any():
        return None
    h = np.random.default_rng(0x636C).integers(1, 2**63, size=m.shape[1], dtype=np.uint64)
    contrib = m.data.astype(np.uint64) * h[m.indices]          # wraps modulo 2^64: a hash
    nonempty = np.diff(m.indptr) > 0
    key = np.zeros(m.shape[0], np.uint64)
    if nonempty.any():
        key[nonempty] = np.add.reduceat(contrib, m.indptr[:-1][nonempty])
    uniq, cls, sizes = np.unique(key, return_inverse=True, return_counts=True)
    if len(uniq) > max_classes:
        return None
    first = np.zeros(len(uniq), np.int64)
    first[cls[::-1]] = np.arange(m.shape[0])[::-1]              # first account of each class
    rows_c = m[first]
    if (m - rows_c[cls]).count_nonzero():
        return None
    return rows_c.tocsc(), sizes.astype(float)


#: most account classes for which a refit's replicate sums are drawn class by class
NORMAL_MAX_CLASSES = 20_000
#: most statistics drawn jointly (Markov transition types + refit statistics): beyond,
#: the refit models are re-weighted account by account (the covariance grows as d^2)
NORMAL_MAX_STATS = 2_000


#: accounts × transition types above which compare_models draws Markov's replicate counts
#: from their bootstrap mean and covariance (``replicate_sums="auto"``)
NORMAL_MIN_ACCOUNTS = 100_000


def replicable(cj, models, n_boot: int, params, *, markov_credits: bool = True, replicate_sums="resample",
               seed: int = 0) -> _Replicable:
    """Per model the channel credits of ``cj`` and what a bootstrap replicate needs
    (:class:`_Replicable`); :func:`compare_models` and :mod:`abmkit.scale` share it.

    ``markov_credits=False``: leave Markov's credits out (a partition's chain alone
    does not give them; :mod:`abmkit.scale` solves the summed chain) but still build
    its chain and incidence for the bootstrap. ``replicate_sums`` ("resample", "normal"
    or "auto", see :func:`compare_models`): draw the rule models' replicate credit sums
    and Markov's replicate transition counts from their bootstrap mean and covariance
    (seeded by ``seed``) instead of re-weighting the accounts."""
    k = len(cj.channels)
    conv = cj.conversions
    conv_rows, conv_group, nc_group, n_groups, group_accounts = _account_groups(cj)
    pipe = conv["pipeline_amount"].to_numpy()
    rev = conv["revenue_amount"].to_numpy()
    credit_rows, acc_mats, markov_chain, incidence, refits = [], {}, None, None, {}
    conservation = []
    path_group = np.concatenate([conv_group, nc_group])
    if n_boot and any(m in _MARKOV_MODELS for m in models):
        markov_chain = build_chain(cj.paths(), params.get("order", 1))
        incidence = batch_incidence(markov_chain, path_group, n_groups)
    for m in models:
        if m == "markov":
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
            if n_boot and m in REFITS:
                refits[m] = REFITS[m](cj, path_group, n_groups, params)
            elif n_boot and m == "markov_per_conversion":
                refits[m] = _markov_split_refit(cj, conv_group, n_groups, params)
            elif n_boot:
                # account x channel credit sums (one bincount per channel, not np.add.at)
                acc_mats[m] = np.column_stack([np.bincount(conv_group, mat[:, j], n_groups) for j in range(k)]) \
                    if k else np.zeros((n_groups, 0))
        credit_rows.append(pd.DataFrame({"channel": cj.channels, "model": m, "conversions": c_conv,
                                         "pipeline": c_pipe, "revenue": c_rev}))
        given = (float(len(conv_rows)), float(pipe[conv_rows].sum()), float(rev[conv_rows].sum()))
        got = (float(c_conv.sum()), float(c_pipe.sum()), float(c_rev.sum()))
        conservation.append({"model": m, "conversions_given": given[0], "conversions_credited": got[0],
                             "pipeline_given": given[1], "pipeline_credited": got[1],
                             "revenue_given": given[2], "revenue_credited": got[2],
                             "ok": bool(np.allclose(given, got, rtol=1e-9, atol=1e-6))})
    seen = np.bincount(cj.channel, minlength=k) > 0
    normal = rule_normal = None
    classes = {}
    g_all = n_groups if len(conv_rows) else 0
    if n_boot and g_all and (replicate_sums == "normal" or (replicate_sums == "auto" and g_all >= NORMAL_MIN_ACCOUNTS)):
        # a refit whose accounts fall in few classes of identical rows (Shapley: accounts
        # with the same channel sets and counts) is drawn exactly, class by class; Markov's
        # transition counts and the other refits' statistics (correlated with Markov's) in
        # one joint normal draw; refits without an incidence matrix, or beyond
        # NORMAL_MAX_STATS statistics, stay re-weighted
        for m, rf in refits.items():
            if rf.incidence is not None and not rf.with_markov:
                got = _row_classes(rf.incidence, NORMAL_MAX_CLASSES)
                if got is not None:
                    classes[m] = (*got, np.random.default_rng([int(seed), 0x636C61, len(classes)]))
        blocks, layout, at = [], [], 0
        for name, mat in ([("markov", incidence[1])] if incidence is not None else []) + \
                [(m, rf.incidence) for m, rf in refits.items() if rf.incidence is not None and m not in classes]:
            if name != "markov" and at + mat.shape[1] > NORMAL_MAX_STATS:
                continue
            blocks.append(mat)
            layout.append((name, at, at + mat.shape[1]))
            at += mat.shape[1]
        if blocks:
            normal = (*_normal_counts(blocks, seed, n_groups), layout)
        rule = [m for m in models if m in acc_mats]
        if rule:
            # only accounts with a conversion have rule credits: the others are zero rows
            rows = np.flatnonzero(np.any([acc_mats[m].any(axis=1) for m in rule], axis=0))
            stacked = np.hstack([acc_mats[m][rows] for m in rule])
            rule_normal = (*_normal_counts(np.ascontiguousarray(stacked), seed, n_groups, stream=0x72756C65), rule)
    credits = pd.concat(credit_rows, ignore_index=True) if credit_rows else \
        pd.DataFrame(columns=["channel", "model", "conversions", "pipeline", "revenue"])  # e.g. incremental alone
    return _Replicable(credits, conservation, acc_mats, markov_chain, incidence,
                       n_groups if len(conv_rows) else 0, group_accounts, list(cj.channels), seen, refits, normal,
                       rule_normal, classes)



def finish_replicates(rep: _Replicable, reps: dict) -> dict:
    """Channel credits (n_boot x channels) of every model from :meth:`_Replicable.replicates`
    sums: Markov removal effects solved per replicate, refit models finished."""
    ctx = {}
    reps = dict(reps)
    if rep.markov_chain is not None and "markov" in reps:
        ctx["markov_effects"] = markov_replicates(rep.markov_chain, rep.incidence[0], reps["markov"])
        reps["markov"] = ctx["markov_effects"]
    for m, rf in rep.refits.items():
        if m in reps:
            reps[m] = rf.finish(reps[m], ctx)
    return reps


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
                   progress: bool | None = None, bootstrap: str = "multinomial", replicate_sums: str = "auto",
                   **params) -> ComparisonResult:
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
        which is what compare_models on a partitioned dataset computes partition by
        partition. Both estimate the same sampling distribution.
    alpha : float
        intervals are the (alpha/2, 1 − alpha/2) percentiles.
    replicate_sums : {"auto", "resample", "normal"}
        how replicates get the account sums that are linear in the bootstrap weights —
        the rule models' channel credits, Markov's transition counts, the data-driven
        Shapley's conversions and journeys per channel set, ``markov_per_conversion``'s
        conversions per channel set (multinomial bootstrap only). ``resample``:
        re-weight every account (exact, costs accounts × statistics per replicate).
        ``normal``: draw the replicate sums from a normal distribution with their
        bootstrap mean (exact) and covariance (from up to :data:`NORMAL_COV_ACCOUNTS`
        accounts), then compute each replicate's shares, Markov chain and Shapley game
        exactly: the sum over many accounts is close to normal. Shapley's statistics are
        drawn exactly instead, as multinomial counts of the classes of accounts with
        identical rows (up to :data:`NORMAL_MAX_CLASSES` classes); the per-conversion
        Markov statistics jointly with Markov's counts (up to :data:`NORMAL_MAX_STATS`
        statistics; beyond, re-weighted); the rule models' sums apart. ``auto``: ``normal`` from :data:`NORMAL_MIN_ACCOUNTS`
        (100,000) accounts, else ``resample``. ``info["replicate_sums"]`` says which
        was used.
    **params
        model parameters (half_life_days, order for markov — an int or ``"auto"``, chosen
        by held-out likelihood, the comparison in ``.order_selection`` —, custom weights).

    Returns
    -------
    ComparisonResult
    """
    from ..engine import is_partitioned, run
    if is_partitioned(data):  # a partitioned dataset: the same analysis on its partitions (docs/scale.md)
        return run("compare_models", data, models, n_boot, seed, milestone=milestone, lookback_days=lookback_days,
                   start=start, end=end, alpha=alpha, progress=progress, bootstrap=bootstrap, **params)
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
    selection = None
    if params.get("order") == "auto" and any(m in _MARKOV_MODELS for m in models):
        from .markov import select_order
        selection = select_order(cj.paths(), seed=seed)
        params = {**params, "order": selection.order}
    # incremental is fitted on the accounts' stage histories, not on journeys (.incremental)
    path_models = [m for m in models if m != "incremental"]
    if replicate_sums not in ("auto", "resample", "normal"):
        raise ValueError(f"replicate_sums must be 'auto', 'resample' or 'normal', not {replicate_sums!r}")
    # the Poisson bootstrap stays exact: abmkit.scale reproduces it partition by partition
    rep = replicable(cj, path_models, n_boot, params, seed=seed,
                     replicate_sums=replicate_sums if bootstrap == "multinomial" else "resample")
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
        bar = progress_bar(total=n_boot, desc="bootstrap", progress=progress)
        reps = rep.replicates(n_boot, path_models, draw, bar.update)
        bar.close()
        reps = finish_replicates(rep, reps)
        low, high = percentile_bounds(reps, path_models, list(cj.channels), keep_ch, alpha)
    conv = cj.conversions
    no_touch = conv[conv["n_touches"] == 0][["conversion_id", "account_id", "converted_at", "amount"]]
    info = {**cj.info, "bootstrap": bootstrap if n_boot else None}
    if n_boot:
        info["replicate_sums"] = "normal" if (rep.markov_normal is not None or rep.rule_normal is not None) \
            else "resample"
    if any(m in _MARKOV_MODELS for m in models):
        info["markov_order"] = params.get("order", 1)
    credits, conservation = rep.credits, pd.DataFrame(rep.conservation)
    if "incremental" in models:
        from .incremental import add_to_comparison
        credits, conservation, low, high, inc = add_to_comparison(
            data, cj, credits, conservation, low, high, keep_ch, n_boot=n_boot, seed=seed, alpha=alpha,
            bootstrap=bootstrap)
        info["incremental"] = inc.info
    res = comparison_from_credits(credits, models, conservation, no_touch, info, keep_ch,
                                  low=low, high=high, n_boot=n_boot, seed=seed)
    res.order_selection = selection
    res.incremental = inc if "incremental" in models else None
    return mark(res, app)


def comparison_from_credits(credits: pd.DataFrame, models, conservation: pd.DataFrame, no_touch: pd.DataFrame,
                            info: dict, channels, *, low: pd.DataFrame | None = None,
                            high: pd.DataFrame | None = None, n_boot: int = 0, seed: int = 0) -> ComparisonResult:
    """The comparison tables (shares, intervals, rank correlation, disagreement) from
    channel credits already summed (``credits``: channel, model, conversions, pipeline,
    revenue), e.g. over account partitions (compare_models on a partitioned dataset).

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
    from ..engine import is_partitioned, run
    if is_partitioned(data):  # a partitioned dataset: the same analysis on its partitions (docs/scale.md)
        return run("sensitivity", data, model, param, values, milestone=milestone, lookback_days=lookback_days,
                   start=start, end=end, **params)
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
