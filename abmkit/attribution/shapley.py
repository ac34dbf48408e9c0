"""Shapley-value attribution over channel sets (see docs/attribution.md, "Shapley").

Two models live here.

``shapley`` (data-driven): a game on conversion *rates*, so accounts that did not
convert count. For every channel set ``T`` seen in the data (the distinct channels of
a journey), ``r(T)`` is the conversion rate of the journeys whose channel set is
exactly ``T`` (conversions / (conversions + non-conversions)). The worth of a
coalition ``S`` is ``v(S) = sum of r(T) over the seen sets T ⊆ S`` (the "simplified
Shapley value" form of Zhao, Mahboobi & Bagheri 2018, on rates). A set never seen
contributes nothing (``r = 0``): there is no journey to estimate it from. The
conversions of the journeys with channel set ``S`` are split over the channels of
``S`` in proportion to their Shapley values in the game restricted to ``S``:
``phi_i(S) = sum over seen T ⊆ S with i in T of r(T) / |T|``.

- conserved: each conversion is split over its own channels, shares summing to 1;
- non-negative: every term ``r(T) / |T|`` is >= 0, so no clipping is ever needed;
- exact for any number of channels: up to ``max_exact`` (15) channels the whole
  ``2^k`` table of ``phi`` is built with subset-sum transforms; beyond, the same sums
  are taken over the seen sets only (pairwise subset tests), which gives the same
  numbers without enumerating coalitions.

When every converting journey's only seen subset is itself (typical of long account
journeys that carry nearly every channel), the split is equal over its channels: the
data hold no evidence to tell the channels apart, and the model says so by not
pretending otherwise. Evidence comes from journeys with fewer channels and from
their non-conversions.

``shapley_split`` (a rule, not data-driven): ``v(S)`` = conversions of the journeys
whose channel set is contained in ``S``. Its Shapley value is exactly "split each
conversion equally over the distinct channels of its journey" (a sum of unanimity
games), whatever the non-converting journeys are. It is kept under this name for
comparison; the enumeration :func:`shapley_exact` is its reference computation.

Example
-------
>>> import pandas as pd
>>> from abmkit.attribution.paths import read_paths
>>> ps = read_paths(pd.DataFrame({"path": ["a > b", "a", "b"], "total_conversions": [2, 1, 1],
...                               "total_null": [0, 1, 3]}))
>>> shapley_attribution(ps)[["channel", "conversions"]].round(3).values.tolist()
[['a', 2.143], ['b', 1.857]]
>>> shapley_split_attribution(ps)[["channel", "conversions"]].values.tolist()
[['a', 2.0], ['b', 2.0]]
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .paths import PathSet

#: channels up to which the 2^k coalition table is built (beyond: sums over seen sets)
MAX_EXACT = 15


def channel_masks(paths: PathSet) -> np.ndarray:
    """Bit mask of the distinct channels of each path (at most 62 channels)."""
    if len(paths.channels) > 62:
        raise ValueError("shapley supports at most 62 distinct channels")
    bits = np.left_shift(np.int64(1), paths.codes.astype(np.int64))
    out = np.zeros(paths.n_paths, np.int64)
    nonempty = paths.lengths > 0
    out[nonempty] = np.bitwise_or.reduceat(bits, paths.offsets[:-1][nonempty])
    return out


def _popcount(x: np.ndarray) -> np.ndarray:
    return np.bitwise_count(np.asarray(x).astype(np.uint64)).astype(np.int64)


def _members(masks: np.ndarray, k: int) -> np.ndarray:
    return ((np.asarray(masks)[:, None] >> np.arange(k)) & 1).astype(bool)


# --------------------------------------------------------------------------- data-driven game


class RateGame:
    """The conversion-rate game of a set of paths, reduced to its distinct channel sets.

    Attributes
    ----------
    masks : ndarray (U,)
        the distinct channel sets seen (bit masks), sorted.
    k : int
        number of channels (bits).
    conv_sets : ndarray
        indices into ``masks`` of the sets that have conversions (or value).
    subset : scipy.sparse.csr_matrix (len(conv_sets) x U)
        ``subset[s, t] = 1`` when set ``t`` ⊆ converting set ``s``.
    weight : ndarray (U x k)
        member indicator of each set divided by its size (``1/|T|`` on its channels).
    """

    def __init__(self, masks: np.ndarray, k: int, converting: np.ndarray, *, max_exact: int = MAX_EXACT):
        self.masks = np.asarray(masks, np.int64)
        self.k = int(k)
        self.conv_sets = np.flatnonzero(converting)
        member = _members(self.masks, self.k)
        size = member.sum(axis=1, keepdims=True)
        self.weight = np.divide(member, size, out=np.zeros(member.shape), where=size > 0)
        self.max_exact = max_exact
        self._subset = None

    @property
    def subset(self) -> sp.csr_matrix:
        """Sparse (converting sets x seen sets) incidence of ``T ⊆ S`` (built once,
        in row chunks so the dense test never holds more than ~2e7 booleans)."""
        if self._subset is None:
            cs = self.masks[self.conv_sets]
            notm = ~self.masks
            rows, cols = [], []
            step = max(1, int(2e7 // max(len(self.masks), 1)))
            for s0 in range(0, len(cs), step):
                hit = (notm[None, :] | cs[s0:s0 + step, None]) == -1  # T & ~S == 0  <=>  ~T | S == all ones
                r, c = np.nonzero(hit)
                rows.append(r + s0)
                cols.append(c)
            r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
            c = np.concatenate(cols) if cols else np.zeros(0, np.int64)
            self._subset = sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(len(cs), len(self.masks)))
        return self._subset

    def shares(self, rates: np.ndarray) -> np.ndarray:
        """Per converting set, the share of each channel (rows sum to 1): the Shapley
        values of the rate game restricted to the set, normalised. ``rates`` (U,)."""
        rates = np.asarray(rates, float)
        if self.k <= self.max_exact and len(self.conv_sets) * len(self.masks) > (1 << self.k) * self.k:
            phi = _phi_table(self.masks, rates, self.k)[self.masks[self.conv_sets]]
        else:
            phi = self.subset @ (rates[:, None] * self.weight)
        return _normalise_rows(phi, _members(self.masks[self.conv_sets], self.k))

    def credits_batch(self, rates: np.ndarray, conv_counts: np.ndarray) -> np.ndarray:
        """Channel credits of B replicates at once: ``rates`` (B x U) and the
        conversions of each converting set ``conv_counts`` (B x len(conv_sets)).
        Credit_i = sum_S C(S) phi_i(S) / v(S), computed as
        ``((C / v) @ subset * rates) @ weight`` (no per-set loop). Returns (B x k)."""
        a = self.subset
        v = np.asarray((a @ rates.T).T)                       # B x S: v(S) = sum_{T ⊆ S} r(T)
        q = np.divide(conv_counts, v, out=np.zeros_like(v), where=v > 0)
        out = (np.asarray((a.T @ q.T).T) * rates) @ self.weight
        # a converting set with v(S) = 0 (its journeys convert only through value) or a
        # replicate where it has no rate: equal split, as :func:`_normalise_rows` does
        zero = (v <= 0) & (conv_counts > 0)
        if zero.any():
            member = _members(self.masks[self.conv_sets], self.k)
            eq = member / member.sum(axis=1, keepdims=True)
            out += (conv_counts * zero) @ eq
        return out


def _normalise_rows(phi: np.ndarray, member: np.ndarray) -> np.ndarray:
    tot = phi.sum(axis=1, keepdims=True)
    eq = member / np.maximum(member.sum(axis=1, keepdims=True), 1)
    return np.where(tot > 0, np.divide(phi, tot, out=np.zeros_like(phi), where=tot > 0), eq)


def _phi_table(masks: np.ndarray, rates: np.ndarray, k: int) -> np.ndarray:
    """``phi[S, i] = sum over seen T ⊆ S with i in T of r(T) / |T|`` for all 2^k S:
    one subset-sum (zeta) transform of the k columns ``r(T)/|T| * [i in T]``."""
    g = np.zeros((1 << k, k))
    member = _members(masks, k)
    size = np.maximum(member.sum(axis=1, keepdims=True), 1)
    np.add.at(g, masks, member * (rates[:, None] / size))
    for i in range(k):
        g = g.reshape(-1, 2, 1 << i, k)
        g[:, 1] += g[:, 0]
    return g.reshape(1 << k, k)


def rate_game(paths: PathSet, *, max_exact: int = MAX_EXACT) -> tuple[RateGame, np.ndarray, np.ndarray]:
    """(game, set index of every path, channel codes present) for ``paths``; the
    game's channels are relabelled to the channels that occur (so 2^k stays small)."""
    masks = channel_masks(paths)
    present = np.flatnonzero(np.bitwise_or.reduce(masks) >> np.arange(len(paths.channels)) & 1) \
        if len(masks) else np.array([], int)
    compact = np.zeros(len(masks), np.int64)
    for new, old in enumerate(present):  # a handful of channels
        compact |= ((masks >> old) & 1) << new
    uniq, inv = np.unique(compact, return_inverse=True)
    converting = np.bincount(inv, (paths.conversions > 0) | (paths.value > 0), len(uniq)) > 0
    return RateGame(uniq, len(present), converting & (uniq != 0), max_exact=max_exact), inv, present


def set_rates(inv: np.ndarray, n_sets: int, conversions: np.ndarray, null: np.ndarray) -> np.ndarray:
    """Conversion rate of every channel set: conversions / (conversions + null); 0 for
    a set without journeys."""
    c = np.bincount(inv, conversions, n_sets)
    n = c + np.bincount(inv, null, n_sets)
    return np.divide(c, n, out=np.zeros(n_sets), where=n > 0)


def shapley_attribution(paths: PathSet, *, max_exact: int = MAX_EXACT, seed: int = 0) -> pd.DataFrame:
    """Channel credits of the data-driven Shapley model (conversion-rate game).

    Parameters
    ----------
    paths : PathSet
        converting and non-converting paths (``total_null`` is what makes it data-driven).
    max_exact : int
        channels up to which the 2^k table is used (beyond: exact sums over seen sets).
    seed : int
        unused (kept for a stable signature: the computation is exact, no sampling).

    Returns
    -------
    DataFrame
        ``channel, conversions, conversion_value``; conversions sum to the total
        conversions, value to the total value; every credit >= 0.

    Example
    -------
    >>> from abmkit.attribution.paths import read_paths
    >>> t = pd.DataFrame({"path": ["a > b", "a"], "total_conversions": [1, 1], "total_null": [1, 0]})
    >>> shapley_attribution(read_paths(t))["conversions"].round(4).tolist()   # r(a)=1, r(ab)=0.5
    [1.8333, 0.1667]
    """
    game, inv, present = rate_game(paths, max_exact=max_exact)
    out = np.zeros((len(paths.channels), 2))
    if len(game.conv_sets):
        shares = game.shares(set_rates(inv, len(game.masks), paths.conversions, paths.null))
        pos = np.full(len(game.masks), -1)
        pos[game.conv_sets] = np.arange(len(game.conv_sets))
        c = np.bincount(inv, paths.conversions, len(game.masks))[game.conv_sets]
        v = np.bincount(inv, paths.value, len(game.masks))[game.conv_sets]
        out[present] = np.column_stack([c @ shares, v @ shares])
    return pd.DataFrame({"channel": list(paths.channels), "conversions": out[:, 0],
                         "conversion_value": out[:, 1]})


def set_counts(paths: PathSet) -> pd.DataFrame:
    """Conversions and journeys (conversions + nulls) of every distinct channel set of
    ``paths`` (``mask``: bits = channel codes), and whether the set converts (has
    conversions or value). Counts of disjoint path sets (account partitions) add up.

    >>> from abmkit.attribution.paths import read_paths
    >>> set_counts(read_paths(pd.DataFrame({"path": ["a > b", "b > a"], "total_conversions": [1, 0],
    ...                                     "total_null": [1, 2]}))).values.tolist()
    [[3, 1.0, 4.0, True]]
    """
    masks = channel_masks(paths)
    uniq, inv = np.unique(masks, return_inverse=True)
    conv = np.bincount(inv, paths.conversions, len(uniq))
    return pd.DataFrame({"mask": uniq, "conversions": conv,
                         "journeys": conv + np.bincount(inv, paths.null, len(uniq)),
                         "converting": np.bincount(inv, (paths.conversions > 0) | (paths.value > 0), len(uniq)) > 0})


def _compact(masks: np.ndarray, present: np.ndarray) -> np.ndarray:
    out = np.zeros(len(masks), np.int64)
    for new, old in enumerate(present):  # a handful of channels
        out |= ((masks >> old) & 1) << new
    return out


def _present(masks: np.ndarray, k: int) -> np.ndarray:
    return np.flatnonzero(np.bitwise_or.reduce(masks) >> np.arange(k) & 1) if len(masks) else np.array([], int)


def credits_from_set_counts(masks: np.ndarray, conversions: np.ndarray, journeys: np.ndarray, k: int,
                            converting: np.ndarray | None = None, *, max_exact: int = MAX_EXACT) -> np.ndarray:
    """Channel credits (B x k) of the data-driven Shapley model from the conversions and
    journeys (B x U) of the channel sets ``masks`` (U, bits = channel codes) in each of
    B replicates (account-weighted counts): one bootstrap replicate per row."""
    masks = np.asarray(masks, np.int64)
    conversions, journeys = np.atleast_2d(conversions), np.atleast_2d(journeys)
    if converting is None:
        converting = conversions.sum(axis=0) > 0
    present = _present(masks, k)
    game = RateGame(_compact(masks, present), len(present), np.asarray(converting) & (masks != 0),
                    max_exact=max_exact)
    out = np.zeros((len(conversions), k))
    if len(game.conv_sets):
        rates = np.divide(conversions, journeys, out=np.zeros_like(conversions, dtype=float), where=journeys > 0)
        out[:, present] = game.credits_batch(rates, conversions[:, game.conv_sets])
    return out


def conversion_shares(set_masks: np.ndarray, k: int, paths: PathSet | None = None, *, rates=None,
                      max_exact: int = MAX_EXACT) -> np.ndarray:
    """Per-conversion channel shares of the data-driven Shapley model: for each row of
    ``set_masks`` (the channel set of a conversion's journey, bits = channel codes), the
    share of each of the ``k`` channels (rows sum to 1). The game is estimated from
    ``paths`` (converting and non-converting), or given as ``rates = (masks, rates)``
    (e.g. summed over account partitions, :func:`set_counts`)."""
    if rates is None:
        sc = set_counts(paths)
        masks_all = sc["mask"].to_numpy(np.int64)
        r_all = np.divide(sc["conversions"].to_numpy(float), sc["journeys"].to_numpy(float),
                          out=np.zeros(len(sc)), where=sc["journeys"].to_numpy() > 0)
    else:
        masks_all, r_all = np.asarray(rates[0], np.int64), np.asarray(rates[1], float)
    set_masks = np.asarray(set_masks, np.int64)
    present = _present(np.concatenate([masks_all, set_masks]), k)
    cm = _compact(masks_all, present)
    order = np.argsort(cm, kind="stable")
    cm, r_all = cm[order], r_all[order]
    rows_u, rows_inv = np.unique(_compact(set_masks, present), return_inverse=True)
    game = RateGame(cm, len(present), np.zeros(len(cm), bool), max_exact=max_exact)
    # the converting sets as rows of the game (sets never seen get rate 0 and still a row)
    game.masks = np.concatenate([cm, rows_u])
    game.weight = np.vstack([game.weight, np.zeros((len(rows_u), len(present)))])
    rates_ext = np.concatenate([r_all, np.zeros(len(rows_u))])
    game.conv_sets = np.arange(len(cm), len(cm) + len(rows_u))
    game._subset = None
    shares_c = game.shares(rates_ext) if len(rows_u) else np.zeros((0, len(present)))
    out = np.zeros((len(set_masks), k))
    if len(present):
        out[:, present] = shares_c[rows_inv]
    return out


# --------------------------------------------------------------------------- the old rule


def shapley_exact(masks: np.ndarray, payoff: np.ndarray, k: int) -> np.ndarray:
    """Exact Shapley values of ``v(S) = sum(payoff[m] for m ⊆ S)`` by enumerating
    the 2^k coalitions. ``payoff`` is (n_masks, n_outcomes); returns (k, n_outcomes)."""
    n_out = payoff.shape[1]
    v = np.zeros((1 << k, n_out))
    np.add.at(v, masks, payoff)
    # subset-sum (zeta) transform: v[S] = sum over masks m ⊆ S
    for i in range(k):
        v = v.reshape(-1, 2, 1 << i, n_out)
        v[:, 1] += v[:, 0]
    v = v.reshape(1 << k, n_out)
    all_s = np.arange(1 << k)
    size = _popcount(all_s)
    fact = np.array([math.factorial(s) for s in range(k + 1)], float)
    weight = fact[size] * fact[np.clip(k - size - 1, 0, None)] / fact[k]
    phi = np.zeros((k, n_out))
    for i in range(k):
        without = all_s[(all_s >> i) & 1 == 0]
        phi[i] = (weight[without, None] * (v[without | (1 << i)] - v[without])).sum(axis=0)
    return phi


def shapley_unanimity(masks: np.ndarray, payoff: np.ndarray, k: int) -> np.ndarray:
    """Closed form of the ``shapley_split`` game: each journey's payoff split equally
    over its channels."""
    member = _members(masks, k).astype(float)
    size = member.sum(axis=1, keepdims=True)
    share = np.divide(member, size, out=np.zeros_like(member), where=size > 0)
    return share.T @ payoff


def shapley_split_attribution(paths: PathSet, *, max_exact: int = MAX_EXACT, seed: int = 0) -> pd.DataFrame:
    """Channel credits of the ``shapley_split`` rule: the Shapley value of "conversions
    of the journeys whose channels ⊆ S", i.e. each conversion split equally over its
    distinct channels (non-converting journeys play no part). Enumerated exactly up to
    ``max_exact`` channels present in converting paths, closed form beyond.

    Example
    -------
    >>> from abmkit.attribution.paths import read_paths
    >>> ps = read_paths(pd.DataFrame({"path": ["a > b", "a"], "total_conversions": [2, 1]}))
    >>> shapley_split_attribution(ps)[["channel", "conversions"]].values.tolist()
    [['a', 2.0], ['b', 1.0]]
    """
    conv = (paths.conversions > 0) | (paths.value > 0)
    masks = channel_masks(paths)[conv]
    present = np.flatnonzero(np.bitwise_or.reduce(masks) >> np.arange(len(paths.channels)) & 1) \
        if len(masks) else np.array([], int)
    compact = np.zeros(len(masks), np.int64)
    for new, old in enumerate(present):
        compact |= ((masks >> old) & 1) << new
    payoff = np.column_stack([paths.conversions[conv], paths.value[conv]])
    k = len(present)
    if k == 0:
        phi = np.zeros((0, 2))
    elif k <= max_exact:
        phi = shapley_exact(compact, payoff, k)
    else:
        phi = shapley_unanimity(compact, payoff, k)
    out = np.zeros((len(paths.channels), 2))
    out[present] = phi
    return pd.DataFrame({"channel": list(paths.channels), "conversions": out[:, 0],
                         "conversion_value": out[:, 1]})
