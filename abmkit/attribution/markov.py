"""Order-k Markov attribution with exact removal effects (see docs/attribution.md).

The journeys form an absorbing chain: ``start`` → states → ``conversion`` or
``null``. A state is the last ``order`` channels (a path shorter than ``order`` is
one state made of all its channels, as ChannelAttribution does). Transition
probabilities are the observed transition counts, each path weighted by its
conversions + nulls. The probability of conversion from ``start`` is the
absorption probability, solved exactly from ``(I - Q) x = r``; removing a channel
sends every state that contains it to ``null``. Removal effect of channel c =
``1 - P(conv | c removed) / P(conv)``; credits are removal effects normalised to the
total conversions. Conversion value is credited the same way with the expected
value (each state's conversions weighted by their value) in place of the
probability. No simulation: the numbers are exact, so they equal the limit that
simulation-based tools approach.

Self-transitions (a state followed by itself, e.g. ``email > email`` at order 1)
are dropped: they never change absorption probabilities, only the displayed
transition matrix.

Example
-------
>>> import pandas as pd
>>> from abmkit.attribution.paths import read_paths
>>> ps = read_paths(pd.DataFrame({"path": ["a > b", "a"], "total_conversions": [1, 0], "total_null": [0, 1]}))
>>> markov_attribution(ps).round(3)[["channel", "removal_effect", "conversions"]].values.tolist()
[['a', 1.0, 0.5], ['b', 1.0, 0.5]]
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .paths import PathSet

_DENSE_LIMIT = 400  # states; below this dense LAPACK solves beat sparse factorisation


@dataclass
class Chain:
    """Transitions of an order-k chain, one row per observed transition.

    ``src``/``dst`` index states: 0 = start, 1..S = observed states, S+1 = conversion,
    S+2 = null. ``weight`` is the path weight carried by the transition; ``value``
    the conversion value carried (only on transitions to conversion); ``path`` the
    path each transition came from (so counts can be re-weighted by a bootstrap).
    """
    state_codes: np.ndarray
    members: np.ndarray          # S x K bool: state contains channel
    src: np.ndarray
    dst: np.ndarray
    weight: np.ndarray
    value: np.ndarray
    path: np.ndarray
    order: int
    n_channels: int

    @property
    def n_states(self) -> int:
        return len(self.state_codes)


def build_chain(paths: PathSet, order: int = 1, *, keep_paths: bool = True) -> Chain:
    """Encode every path as a sequence of order-``order`` states (vectorised).

    ``keep_paths=False`` sums identical transitions right away (one ``bincount``) and
    drops the per-path rows: enough for :func:`removal_effects` without weights, and much
    lighter on big path sets. The bootstrap needs ``keep_paths=True``."""
    if order < 1:
        raise ValueError(f"order must be >= 1, got {order}")
    k_ch = len(paths.channels)
    base = k_ch + 1
    if base ** order >= 2 ** 62:
        raise ValueError(f"order {order} with {k_ch} channels is too large to encode")
    weight_path = paths.conversions + paths.null
    lengths = paths.lengths
    codes = paths.codes
    pidx = np.repeat(np.arange(paths.n_paths, dtype=np.int32 if paths.n_paths < 2**31 else np.int64), lengths)
    sdt = np.int32 if base ** order < 2**31 else np.int64
    # few full passes over the (possibly tens of millions of) entries: memory traffic is the cost
    state = codes.astype(sdt) + 1
    keep = None
    if order > 1:
        pos = (np.arange(len(codes)) - np.repeat(paths.offsets[:-1], lengths)).astype(np.int32)
        for j in range(1, order):
            shifted = np.zeros_like(state)
            shifted[j:] = (codes[:-j].astype(sdt) + 1) * base ** j
            state += np.where(pos >= j, shifted, 0)
        plen = lengths[pidx]
        keep = (pos >= order - 1) | ((pos == plen - 1) & (plen < order))
    zero_w = weight_path <= 0
    if zero_w.any():
        kw = ~zero_w[pidx]
        keep = kw if keep is None else keep & kw
    st, sp_idx = (state[keep], pidx[keep]) if keep is not None else (state, pidx)
    # drop self-transitions: same path, same state as the previous kept entry
    same = np.zeros(len(st), bool)
    same[1:] = (st[1:] == st[:-1]) & (sp_idx[1:] == sp_idx[:-1])
    st, sp_idx = st[~same], sp_idx[~same]
    n_codes = base ** order
    if not keep_paths and (n_codes + 1) * (n_codes + 2) <= 20_000_000:
        return _summed_chain(st, sp_idx, paths, weight_path, order, k_ch)
    if base ** order <= 4_000_000:  # small code space: a lookup table beats sorting
        present = np.zeros(base ** order, bool)
        present[st] = True
        state_codes = np.flatnonzero(present)
        lookup = np.cumsum(present) - 1
        sidx = lookup[st] + 1
    else:
        state_codes, sidx = np.unique(st, return_inverse=True)
        sidx = sidx + 1
    n_s = len(state_codes)
    first = np.ones(len(st), bool)
    first[1:] = sp_idx[1:] != sp_idx[:-1]
    last = np.ones(len(st), bool)
    last[:-1] = sp_idx[1:] != sp_idx[:-1]
    # start -> first state; state -> next state; last state -> conversion / null
    inner = ~last
    src = np.concatenate([np.zeros(first.sum(), np.int64), sidx[inner], sidx[last], sidx[last]])
    dst = np.concatenate([sidx[first], sidx[np.flatnonzero(inner) + 1],
                          np.full(last.sum(), n_s + 1), np.full(last.sum(), n_s + 2)])
    pth = np.concatenate([sp_idx[first], sp_idx[inner], sp_idx[last], sp_idx[last]]) if keep_paths else None
    w = np.concatenate([weight_path[sp_idx[first]], weight_path[sp_idx[inner]],
                        paths.conversions[sp_idx[last]], paths.null[sp_idx[last]]])
    val = np.concatenate([np.zeros(first.sum() + inner.sum()), paths.value[sp_idx[last]],
                          np.zeros(last.sum())])
    members = np.zeros((n_s, k_ch), bool)
    rem = state_codes.astype(np.int64)
    for _ in range(order):
        digit = rem % base
        has = digit > 0
        members[np.flatnonzero(has), digit[has] - 1] = True
        rem //= base
    if not keep_paths:
        width = n_s + 3
        pair = src.astype(np.int64) * width + dst
        if (n_s + 1) * width <= 20_000_000:
            w_sum = np.bincount(pair, w, (n_s + 1) * width)
            v_sum = np.bincount(pair, val, (n_s + 1) * width)
            types = np.flatnonzero((w_sum > 0) | (v_sum > 0))
            w_sum, v_sum = w_sum[types], v_sum[types]
        else:
            types, inv = np.unique(pair, return_inverse=True)
            w_sum, v_sum = np.bincount(inv, w, len(types)), np.bincount(inv, val, len(types))
        return Chain(state_codes, members, types // width, types % width, w_sum, v_sum,
                     np.zeros(len(types), np.int64), order, k_ch)
    nz = (w > 0) | (val > 0)
    return Chain(state_codes, members, src[nz], dst[nz], w[nz], val[nz], pth[nz], order, k_ch)


def _summed_chain(st, sp_idx, paths: PathSet, weight_path, order: int, k_ch: int) -> Chain:
    """:func:`build_chain` with ``keep_paths=False`` when the state codes are few: every
    transition is summed straight into a (code × code) table with a few ``bincount``
    passes over the path entries, then relabelled to state indices. Same chain, same
    sums (each cell adds its entries in the same order), without materialising the
    per-transition arrays."""
    n_codes = (k_ch + 1) ** order
    width = n_codes + 2           # raw destinations: codes, then conversion, null
    start = n_codes * width       # raw row of the start state
    size = (n_codes + 1) * width
    n_e = len(st)
    first = np.ones(n_e, bool)
    first[1:] = sp_idx[1:] != sp_idx[:-1]
    fi = np.flatnonzero(first)
    li = np.r_[fi[1:] - 1, n_e - 1] if n_e else fi
    st64 = st.astype(np.int64)
    # state -> next state inside a path; pairs that cross a path boundary go to a spare bin
    inner = st64[:-1] * width + st64[1:]
    inner[li[:-1]] = size
    w_raw = np.bincount(inner, weight_path[sp_idx[:-1]], size + 1)[:size] if n_e > 1 else np.zeros(size)
    p_first, p_last = sp_idx[fi], sp_idx[li]
    w_raw += np.bincount(start + st64[fi], weight_path[p_first], size)
    w_raw += np.bincount(st64[li] * width + n_codes, paths.conversions[p_last], size)
    w_raw += np.bincount(st64[li] * width + n_codes + 1, paths.null[p_last], size)
    v_raw = np.bincount(st64[li] * width + n_codes, paths.value[p_last], size)
    present = np.zeros(n_codes, bool)
    present[st] = True
    state_codes = np.flatnonzero(present)
    n_s = len(state_codes)
    lookup = np.cumsum(present) - 1
    cells = np.flatnonzero((w_raw > 0) | (v_raw > 0))
    rs, rd = cells // width, cells % width
    src = np.where(rs == n_codes, 0, lookup[np.minimum(rs, n_codes - 1)] + 1)
    dst = np.where(rd < n_codes, lookup[np.minimum(rd, n_codes - 1)] + 1, rd - n_codes + n_s + 1)
    order_ = np.argsort(src * (n_s + 3) + dst, kind="stable")
    return Chain(state_codes, _members(state_codes, order, k_ch), src[order_], dst[order_],
                 w_raw[cells][order_], v_raw[cells][order_], np.zeros(len(cells), np.int64), order, k_ch)


def _members(state_codes: np.ndarray, order: int, k_ch: int) -> np.ndarray:
    """S x K: state contains channel."""
    base = k_ch + 1
    members = np.zeros((len(state_codes), k_ch), bool)
    rem = np.asarray(state_codes, np.int64).copy()
    for _ in range(order):
        digit = rem % base
        has = digit > 0
        members[np.flatnonzero(has), digit[has] - 1] = True
        rem //= base
    return members


def state_names(chain: Chain, channels) -> list[str]:
    base = chain.n_channels + 1
    out = []
    for code in chain.state_codes:
        parts, rem = [], int(code)
        for _ in range(chain.order):
            d = rem % base
            if d:
                parts.append(str(channels[d - 1]))
            rem //= base
        out.append(" > ".join(reversed(parts)))
    return out


def _system(chain: Chain, path_weights: np.ndarray | None = None):
    """Count matrix between transient states (start + S) and the conv/null/value rewards."""
    n = chain.n_states + 1
    w = chain.weight if path_weights is None else chain.weight * path_weights[chain.path]
    v = chain.value if path_weights is None else chain.value * path_weights[chain.path]
    trans = chain.dst <= chain.n_states
    counts = sp.csr_matrix((w[trans], (chain.src[trans], chain.dst[trans])), shape=(n, n))
    to_conv = chain.dst == chain.n_states + 1
    r_conv = np.bincount(chain.src[to_conv], w[to_conv], n)
    r_val = np.bincount(chain.src[to_conv], v[to_conv], n)
    out = np.asarray(counts.sum(axis=1)).ravel() + np.bincount(chain.src[~trans], w[~trans], n)
    return counts, r_conv, r_val, out


def _absorb(counts, out, rewards, keep) -> np.ndarray:
    """Expected reward from start with only ``keep`` states (start = index 0) transient."""
    idx = np.flatnonzero(keep & (out > 0))
    if len(idx) == 0 or idx[0] != 0:
        return np.zeros(rewards.shape[1])
    inv = np.zeros(len(out))
    inv[idx] = 1.0 / out[idx]
    q = sp.diags(inv[idx]) @ counts[idx][:, idx]
    rhs = rewards[idx] * inv[idx, None]
    m = sp.identity(len(idx), format="csc") - q.tocsc()
    if len(idx) <= _DENSE_LIMIT:
        x = np.linalg.solve(m.toarray(), rhs)
    else:
        x = spla.splu(m).solve(rhs)
    return x[0]


def removal_effects(chain: Chain, path_weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Removal effects of each channel for conversions and for value, with the base
    conversion probability and expected value from start."""
    counts, r_conv, r_val, out = _system(chain, path_weights)
    rewards = np.column_stack([r_conv, r_val])
    keep_all = np.ones(chain.n_states + 1, bool)
    base = _absorb(counts, out, rewards, keep_all)
    re = np.zeros((chain.n_channels, 2))
    for c in range(chain.n_channels):
        keep = keep_all.copy()
        keep[1:] = ~chain.members[:, c]
        if keep[1:].all():  # channel never seen: removing it changes nothing
            continue
        removed = _absorb(counts, out, rewards, keep)
        with np.errstate(invalid="ignore", divide="ignore"):
            re[c] = np.where(base > 0, 1.0 - removed / base, 0.0)
    return re[:, 0], re[:, 1], float(base[0]), float(base[1])


def batch_incidence(chain: Chain, path_group: np.ndarray, n_groups: int):
    """(group x transition type) counts, built once for :func:`removal_effects_batch`."""
    n = chain.n_states + 1
    pair = chain.src * (n + 2) + chain.dst
    types, tix = np.unique(pair, return_inverse=True)
    inc = sp.csr_matrix((chain.weight, (path_group[chain.path], tix)), shape=(n_groups, len(types)))
    return types, inc.tocsc()


def removal_effects_batch(chain: Chain, weights: np.ndarray, incidence=None) -> np.ndarray:
    """Removal effects (conversions) for many weight vectors at once.

    ``weights`` is (B, n_paths), or (B, n_groups) with ``incidence`` from
    :func:`batch_incidence` (bootstrap by account). Dense batched solves: meant for
    chains with few states (order 1, small order 2). Returns (B, K).
    """
    if incidence is None:
        incidence = batch_incidence(chain, np.arange(weights.shape[1]), weights.shape[1])
    types, inc = incidence
    return removal_effects_from_types(chain, types, np.asarray((inc.T @ weights.T).T))


def transition_type_codes(chain: Chain, types: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(src, dst) state codes of :func:`batch_incidence` transition types, in the
    path-independent coding of :func:`chain_counts` (start -1, conversion -2, null -3),
    so type weights of chains built on disjoint paths can be matched and added."""
    n = chain.n_states + 1
    codes = np.concatenate([[-1], np.asarray(chain.state_codes, np.int64), [-2, -3]])
    return codes[types // (n + 2)], codes[types % (n + 2)]


def removal_effects_from_types(chain: Chain, types: np.ndarray, tw: np.ndarray) -> np.ndarray:
    """:func:`removal_effects_batch` from the re-weighted transition counts themselves:
    ``tw`` is (B, len(types)), the weight of every transition type (``src * (S + 3) +
    dst`` in ``chain``'s state indices) in each of B replicates. Returns (B, K)."""
    n = chain.n_states + 1
    src, dst = types // (n + 2), types % (n + 2)
    trans = dst <= chain.n_states
    to_conv = dst == chain.n_states + 1
    b = tw.shape[0]
    counts = np.zeros((b, n, n))
    counts[:, src[trans], dst[trans]] = tw[:, trans]
    r = np.zeros((b, n))
    np.add.at(r, (slice(None), src[to_conv]), tw[:, to_conv])
    out = counts.sum(axis=2) + r
    nulls = ~trans & ~to_conv
    np.add.at(out, (slice(None), src[nulls]), tw[:, nulls])
    with np.errstate(invalid="ignore", divide="ignore"):
        inv = np.where(out > 0, 1.0 / out, 0.0)
    q = counts * inv[:, :, None]
    rhs = r * inv
    eye = np.eye(n)

    def solve(keep):
        kk = np.flatnonzero(keep)
        m = eye[np.ix_(kk, kk)] - q[:, kk][:, :, kk]
        # states never visited in a replicate have out == 0: make them absorbing (x = 0)
        return np.linalg.solve(m, rhs[:, kk][..., None])[:, 0, 0]

    base = solve(np.ones(n, bool))
    res = np.zeros((b, chain.n_channels))
    for c in range(chain.n_channels):
        keep = np.ones(n, bool)
        keep[1:] = ~chain.members[:, c]
        if keep.all():
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            res[:, c] = np.where(base > 0, 1.0 - solve(keep) / base, 0.0)
    return res


def markov_attribution(paths: PathSet, order: int = 1) -> pd.DataFrame:
    """Channel credits of the order-``order`` Markov model.

    Returns
    -------
    DataFrame
        ``channel, removal_effect, removal_effect_value, conversions, conversion_value``,
        one row per channel of ``paths``; conversions sum to the total conversions and
        conversion_value to the total value.
    """
    chain = build_chain(paths, order, keep_paths=False)
    re_c, re_v, _, _ = removal_effects(chain)
    total_c, total_v = float(paths.conversions.sum()), float(paths.value.sum())
    conv = re_c / re_c.sum() * total_c if re_c.sum() > 0 else np.zeros_like(re_c)
    val = re_v / re_v.sum() * total_v if re_v.sum() > 0 else np.zeros_like(re_v)
    return pd.DataFrame({"channel": list(paths.channels), "removal_effect": re_c,
                         "removal_effect_value": re_v, "conversions": conv, "conversion_value": val})


def transition_matrix(paths: PathSet, order: int = 1) -> pd.DataFrame:
    """Transition probabilities ``channel_from, channel_to, probability`` (states named
    by their channels joined with " > "; ``(start)``, ``(conversion)``, ``(null)``)."""
    chain = build_chain(paths, order)
    names = ["(start)"] + state_names(chain, paths.channels) + ["(conversion)", "(null)"]
    df = pd.DataFrame({"src": chain.src, "dst": chain.dst, "w": chain.weight})
    df = df.groupby(["src", "dst"], as_index=False)["w"].sum()
    df["probability"] = df["w"] / df.groupby("src")["w"].transform("sum")
    return pd.DataFrame({"channel_from": np.asarray(names, object)[df["src"]],
                         "channel_to": np.asarray(names, object)[df["dst"]],
                         "probability": df["probability"].to_numpy()})


def chain_counts(chain: Chain) -> pd.DataFrame:
    """Transition counts of ``chain`` keyed by state codes that do not depend on the
    paths it was built from (start -1, conversion -2, null -3, else the state code):
    ``src, dst, weight, value``. Counts of disjoint path sets (e.g. account partitions,
    see :mod:`abmkit.scale`) concatenate and add up; :func:`chain_from_counts` turns
    the sum back into a chain, so removal effects are solved once for all of them.

    Example
    -------
    >>> from abmkit.attribution.paths import read_paths
    >>> a = read_paths(pd.DataFrame({"path": ["x > y"], "total_conversions": [1]}))
    >>> b = read_paths(pd.DataFrame({"path": ["x", "y"], "total_conversions": [0, 1], "total_null": [1, 0]}))
    >>> both = pd.concat([chain_counts(build_chain(a)), chain_counts(build_chain(b))])
    >>> removal_effects(chain_from_counts(both, 2))[0].round(3).tolist()
    [0.5, 1.0]
    """
    codes = np.concatenate([[-1], np.asarray(chain.state_codes, np.int64), [-2, -3]])
    df = pd.DataFrame({"src": codes[chain.src], "dst": codes[chain.dst], "weight": chain.weight,
                       "value": chain.value})
    return df.groupby(["src", "dst"], as_index=False, sort=True)[["weight", "value"]].sum()


def chain_from_counts(counts: pd.DataFrame, n_channels: int, order: int = 1) -> Chain:
    """The :class:`Chain` of summed :func:`chain_counts` (``n_channels`` channels in
    the code order the counts were built with)."""
    counts = counts.groupby(["src", "dst"], as_index=False, sort=True)[["weight", "value"]].sum()
    src, dst = counts["src"].to_numpy(np.int64), counts["dst"].to_numpy(np.int64)
    states = np.unique(np.concatenate([src, dst]))
    states = states[states >= 0]
    n_s = len(states)

    def index(c):
        out = np.searchsorted(states, c) + 1
        out = np.where(c == -1, 0, out)
        out = np.where(c == -2, n_s + 1, out)
        return np.where(c == -3, n_s + 2, out)
    base = n_channels + 1
    members = np.zeros((n_s, n_channels), bool)
    rem = states.copy()
    for _ in range(order):
        digit = rem % base
        has = digit > 0
        members[np.flatnonzero(has), digit[has] - 1] = True
        rem //= base
    return Chain(states, members, index(src), index(dst), counts["weight"].to_numpy(float),
                 counts["value"].to_numpy(float), np.arange(len(counts)), order, n_channels)
