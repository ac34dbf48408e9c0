"""Shapley-value attribution over channel sets (see docs/attribution.md).

The game: ``v(S)`` = conversions (or value) of the journeys whose set of channels is
contained in ``S``. Shapley values are computed exactly by enumerating coalitions
up to ``max_exact`` channels (default 15, 2^15 coalitions, via a subset-sum
transform), and by seeded permutation sampling beyond.

Why the game is cheap: ``v`` is a sum of unanimity games, one per journey, so the
exact value also equals "each conversion split equally over the distinct channels
of its journey" (:func:`shapley_unanimity`). The enumeration is kept as the
reference computation the issue asks for; the identity is what lets
``attribute(..., "shapley")`` give per-touch credits that add up to exactly these
channel values, and what the tests cross-check.

Example
-------
>>> import pandas as pd
>>> from abmkit.attribution.paths import read_paths
>>> ps = read_paths(pd.DataFrame({"path": ["a > b", "a"], "total_conversions": [2, 1]}))
>>> shapley_attribution(ps)[["channel", "conversions"]].values.tolist()
[['a', 2.0], ['b', 1.0]]
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .paths import PathSet


def channel_masks(paths: PathSet) -> np.ndarray:
    """Bit mask of the distinct channels of each path (object ints beyond 63 channels
    are not supported)."""
    if len(paths.channels) > 62:
        raise ValueError("shapley supports at most 62 distinct channels")
    bits = np.left_shift(np.int64(1), paths.codes.astype(np.int64))
    out = np.zeros(paths.n_paths, np.int64)
    nonempty = paths.lengths > 0
    out[nonempty] = np.bitwise_or.reduceat(bits, paths.offsets[:-1][nonempty])
    return out


def _popcount(x: np.ndarray) -> np.ndarray:
    return np.bitwise_count(x.astype(np.uint64)).astype(np.int64)


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


def shapley_permutations(masks: np.ndarray, payoff: np.ndarray, k: int, *, n_permutations: int = 2000,
                         seed: int = 0, batch: int = 64) -> np.ndarray:
    """Shapley values by averaging marginal contributions over seeded random orders.

    For this game the marginal contribution of channel i in an order is the payoff
    of every journey whose *last* channel (in that order) is i, so each order costs
    one arg-max per distinct channel set.
    """
    rng = np.random.default_rng(seed)
    uniq, inv = np.unique(masks, return_inverse=True)
    pay = np.zeros((len(uniq), payoff.shape[1]))
    np.add.at(pay, inv, payoff)
    member = ((uniq[:, None] >> np.arange(k)) & 1).astype(bool)  # U x k
    phi = np.zeros((k, payoff.shape[1]))
    done = 0
    while done < n_permutations:
        b = min(batch, n_permutations - done)
        rank = np.argsort(rng.random((b, k)), axis=1).argsort(axis=1)  # position of each channel
        score = np.where(member[None], rank[:, None, :], -1)  # b x U x k
        last = score.argmax(axis=2)  # b x U
        for j in range(payoff.shape[1]):
            phi[:, j] += np.bincount(last.ravel(), np.tile(pay[:, j], b), k)
        done += b
    return phi / n_permutations


def shapley_unanimity(masks: np.ndarray, payoff: np.ndarray, k: int) -> np.ndarray:
    """Closed form for this game: each journey's payoff split equally over its channels."""
    member = ((masks[:, None] >> np.arange(k)) & 1).astype(float)
    size = member.sum(axis=1, keepdims=True)
    share = np.divide(member, size, out=np.zeros_like(member), where=size > 0)
    return share.T @ payoff


def shapley_attribution(paths: PathSet, *, max_exact: int = 15, n_permutations: int = 2000,
                        seed: int = 0) -> pd.DataFrame:
    """Channel credits ``channel, conversions, conversion_value`` (Shapley values of
    the conversions game and of the value game). Exact up to ``max_exact`` channels
    present in converting paths; seeded permutation sampling beyond."""
    conv = (paths.conversions > 0) | (paths.value > 0)
    masks = channel_masks(paths)[conv]
    present = np.flatnonzero(np.bitwise_or.reduce(masks) >> np.arange(len(paths.channels)) & 1) \
        if len(masks) else np.array([], int)
    # relabel to the channels that occur, so 2^k stays small
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
        phi = shapley_permutations(compact, payoff, k, n_permutations=n_permutations, seed=seed)
    out = np.zeros((len(paths.channels), 2))
    out[present] = phi
    return pd.DataFrame({"channel": list(paths.channels), "conversions": out[:, 0],
                         "conversion_value": out[:, 1]})
