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

from ..results import Result
from .paths import PathSet

_DENSE_LIMIT = 400  # states; below this dense LAPACK solves beat sparse factorisation
_DENSE_CELLS = 3e7  # order selection: (folds x contexts x outcomes) counted densely up to this size


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
    if order == "auto":
        raise ValueError("order='auto' is resolved by select_order() before the chain is built")
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


#: (groups x transition types) incidence held as a dense array up to this many cells
_DENSE_INCIDENCE = 5e7


def batch_incidence(chain: Chain, path_group: np.ndarray, n_groups: int):
    """(group x transition type) counts, built once for :func:`removal_effects_batch`:
    ``(types, matrix)``; the matrix is a dense array when it is small enough (one BLAS
    product per batch of bootstrap replicates, and built with one ``bincount``), else
    sparse (CSC)."""
    n = chain.n_states + 1
    pair = chain.src.astype(np.int64) * (n + 2) + chain.dst
    if (n + 1) * (n + 2) <= 5e7:  # few possible pairs: presence table, no sort
        seen = np.zeros((n + 1) * (n + 2), bool)
        seen[pair] = True
        types = np.flatnonzero(seen)
        tix = (np.cumsum(seen) - 1)[pair]
    else:
        types, tix = np.unique(pair, return_inverse=True)
    groups = path_group[chain.path]
    if n_groups * len(types) <= _DENSE_INCIDENCE:
        inc = np.bincount(groups.astype(np.int64) * len(types) + tix, chain.weight,
                          n_groups * len(types)).reshape(n_groups, len(types))
        return types, inc
    inc = sp.csr_matrix((chain.weight, (groups, tix)), shape=(n_groups, len(types)))
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


def markov_attribution(paths: PathSet, order=1, *, seed: int = 0) -> pd.DataFrame:
    """Channel credits of the order-``order`` Markov model (``order="auto"``: chosen by
    :func:`select_order` on held-out accounts, seeded; the chosen order is in the
    frame's ``attrs["order"]`` and the comparison in ``attrs["order_selection"]``).

    Returns
    -------
    DataFrame
        ``channel, removal_effect, removal_effect_value, conversions, conversion_value``,
        one row per channel of ``paths``; conversions sum to the total conversions and
        conversion_value to the total value.
    """
    selection = None
    if order == "auto":
        selection = select_order(paths, seed=seed)
        order = selection.order
    chain = build_chain(paths, int(order), keep_paths=False)
    re_c, re_v, _, _ = removal_effects(chain)
    total_c, total_v = float(paths.conversions.sum()), float(paths.value.sum())
    conv = re_c / re_c.sum() * total_c if re_c.sum() > 0 else np.zeros_like(re_c)
    val = re_v / re_v.sum() * total_v if re_v.sum() > 0 else np.zeros_like(re_v)
    out = pd.DataFrame({"channel": list(paths.channels), "removal_effect": re_c,
                        "removal_effect_value": re_v, "conversions": conv, "conversion_value": val})
    out.attrs["order"] = int(order)
    if selection is not None:
        out.attrs["order_selection"] = selection.table.to_dict("records")
    return out


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


# --------------------------------------------------------------------------- order selection


@dataclass
class OrderSelection(Result):
    """Output of :func:`select_order`: the comparison of Markov orders on held-out journeys.

    Attributes
    ----------
    order : int
        the selected order (highest held-out log-likelihood).
    table : DataFrame
        one row per order: ``order``, ``contexts`` (distinct histories seen),
        ``parameters`` (free transition probabilities), ``heldout_loglik`` (summed over
        the folds), ``heldout_loglik_per_journey``, ``heldout_se`` (standard error of
        the per-journey value over folds), ``bic`` (on all journeys, for reference) and
        ``selected``.
    folds : int
    unit : str
        what was held out: ``"account"`` (the paths' groups) or ``"journey"``.
    """
    order: int
    table: pd.DataFrame
    folds: int
    unit: str
    seed: int = 0

    _summary_title = "Markov order selection (held-out log-likelihood)"

    def _summary_metadata(self) -> dict:
        return {"selected_order": self.order, "folds": self.folds, "held_out": self.unit, "seed": self.seed,
                "criterion": "held-out log-likelihood of the channel sequence and its outcome"}

    @property
    def summary(self) -> pd.DataFrame:
        """The comparison table (one row per order)."""
        return self.table


def _collapsed_events(paths: PathSet):
    """Channel sequences with consecutive repeats collapsed (every order then scores
    the same events: a repeat is never a state change), each followed by an end slot.
    Returns (symbols + 1 with 0 at end slots, slot offsets per path)."""
    codes, pidx = paths.codes, paths.path_index
    keep = np.ones(len(codes), bool)
    keep[1:] = (codes[1:] != codes[:-1]) | (pidx[1:] != pidx[:-1])
    lens = np.bincount(pidx[keep], minlength=paths.n_paths) + 1  # + end slot
    offs = np.concatenate([[0], np.cumsum(lens)])
    sym = np.zeros(int(offs[-1]), np.int64)
    is_sym = np.ones(len(sym), bool)
    is_sym[offs[1:] - 1] = False
    sym[is_sym] = codes[keep].astype(np.int64) + 1
    return sym, offs


def _positions(offs: np.ndarray) -> np.ndarray:
    """Position of every slot in its path."""
    lens = np.diff(offs)
    return np.arange(int(offs[-1])) - np.repeat(offs[:-1], lens)


def _cell_counts(parts, n_ctx: int, n_out: int, folds: int) -> np.ndarray:
    """(folds x seen contexts x outcomes) sums of the weights ``w`` over the cells
    ``key = (context * n_out + outcome) * folds + fold``, for ``parts`` = [(key, w), ...];
    contexts in code order, only those with some weight."""
    if folds * n_ctx * n_out <= _DENSE_CELLS:  # small code space: dense bincounts, no sort
        size = n_ctx * n_out * folds
        flat = np.zeros(size)
        for key, w in parts:
            flat += np.bincount(key, w, size)
        cf = flat.reshape(n_ctx, n_out, folds).transpose(2, 0, 1)
    else:
        cells, cinv = np.unique(np.concatenate([kw[0] for kw in parts]), return_inverse=True)
        sums = np.bincount(cinv, np.concatenate([kw[1] for kw in parts]), len(cells))
        rest, fold = np.divmod(cells, folds)
        ctx, y = np.divmod(rest, n_out)
        ctx_codes, ctx_inv = np.unique(ctx, return_inverse=True)
        cf = np.zeros((folds, len(ctx_codes), n_out))
        np.add.at(cf, (fold, ctx_inv, y), sums)
    return cf[:, cf.sum(axis=(0, 2)) > 0]


def _slot_counts(sym, offs, fold_p, wt_p, wc_p, wn_p, k: int, folds: int, max_order: int):
    """Per order, the (folds x contexts x outcomes) counts when every path's weight sits
    in one fold (``fold_p``): one key per slot, updated in place from order to order
    (the context gains one older channel), so an order costs a few passes over the slots
    and one bincount — no per-event arrays."""
    base, n_out = k + 1, k + 2
    lens = np.diff(offs)
    starts, ends = offs[:-1], offs[1:] - 1
    slot_path = np.repeat(np.arange(len(lens)), lens)
    key = (sym - 1) * folds + fold_p[slot_path]         # outcome: next channel ...
    key[ends] = k * folds + fold_p                      # ... or the end (conversion; null = + folds)
    w = wt_p[slot_path]
    w[ends] = wc_p
    del slot_path
    inc = np.empty_like(sym)
    for m in range(1, max_order + 1):
        if base ** m >= 2 ** 62 // (n_out * folds):
            break
        inc[:m] = 0
        inc[m:] = sym[:-m]
        for j in range(m):                              # the first m slots of a path have no m-th channel back
            inc[starts[j < lens] + j] = 0
        np.multiply(inc, base ** (m - 1) * n_out * folds, out=inc)
        key += inc
        n_ctx = base ** m
        yield m, _cell_counts([(key, w), (key[ends] + folds, wn_p)], n_ctx, n_out, folds)


def _event_counts(sym, offs, wc, wn, k: int, folds: int, max_order: int):
    """:func:`_slot_counts` for paths whose weight is spread over several folds (an
    aggregated table's counts split at random): one event per (path, fold, slot)."""
    base, n_out = k + 1, k + 2
    pos = _positions(offs)
    # a row's symbol steps weigh conversions + nulls, its end weighs conversions (outcome
    # "conversion") and nulls (outcome "null")
    pp, ff = np.nonzero((wc + wn) > 0)
    n_sym = np.diff(offs)[pp] - 1
    starts = np.repeat(offs[:-1][pp] - np.concatenate([[0], np.cumsum(n_sym)[:-1]]), n_sym)
    sym_slot = starts + np.arange(int(n_sym.sum()))
    end_slot = offs[1:][pp] - 1
    ev_slot = np.concatenate([sym_slot, end_slot, end_slot])
    ev_y = np.concatenate([sym[sym_slot] - 1, np.full(len(pp), k), np.full(len(pp), k + 1)])
    ev_fold = np.concatenate([np.repeat(ff, n_sym), ff, ff])
    ev_w = np.concatenate([np.repeat((wc + wn)[pp, ff], n_sym), wc[pp, ff], wn[pp, ff]])
    keep = ev_w > 0
    ev_slot, ev_y, ev_fold, ev_w = ev_slot[keep], ev_y[keep], ev_fold[keep], ev_w[keep]
    del pp, ff, n_sym, starts, sym_slot, end_slot, keep
    ctx = np.zeros(len(sym), np.int64)
    for m in range(1, max_order + 1):
        if base ** m >= 2 ** 62 // (n_out * folds):
            break
        prev = np.zeros(len(sym), np.int64)
        prev[m:] = sym[:-m]
        ctx = ctx + np.where(pos >= m, prev, 0) * base ** (m - 1)   # history of the last m channels
        yield m, _cell_counts([((ctx[ev_slot] * n_out + ev_y) * folds + ev_fold, ev_w)], base ** m, n_out, folds)


#: count held-out cells slot by slot when every path sits in one fold (tests compare both ways)
_SLOT_COUNTS = True


def _fold_weights(paths: PathSet, folds: int, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """(conversions, nulls) of every path in every fold (paths x folds): by account when
    the paths have groups, else by splitting each row's counts at random (an
    aggregated path table holds many journeys per row)."""
    rng = np.random.default_rng(seed)
    if paths.group is not None:
        groups, ginv = np.unique(paths.group, return_inverse=True)
        fold_of = rng.permutation(len(groups)) % folds
        f = fold_of[ginv]
        wc = np.zeros((paths.n_paths, folds))
        wn = np.zeros((paths.n_paths, folds))
        wc[np.arange(paths.n_paths), f] = paths.conversions
        wn[np.arange(paths.n_paths), f] = paths.null
        return wc, wn, "account"
    out = []
    for col in (paths.conversions, paths.null):
        whole = np.all(col == np.round(col))
        if whole:
            out.append(rng.multinomial(col.astype(np.int64), np.full(folds, 1.0 / folds)).astype(float)
                       if len(col) else np.zeros((0, folds)))
        else:  # fractional counts: whole rows to folds
            w = np.zeros((len(col), folds))
            w[np.arange(len(col)), rng.integers(0, folds, len(col))] = col
            out.append(w)
    return out[0], out[1], "journey"


def resolve_order(paths: PathSet, order, seed: int = 0) -> int:
    """``order`` as an int (``"auto"``: :func:`select_order`'s choice)."""
    return select_order(paths, seed=seed).order if order == "auto" else int(order)


def select_order(paths: PathSet, max_order: int = 4, *, folds: int = 5, seed: int = 0,
                 alpha: float = 0.5) -> OrderSelection:
    """Choose the Markov order by held-out log-likelihood.

    Accounts (the paths' groups; journeys of an aggregated path table) are split into
    ``folds`` folds at random (seeded). For each order 1..``max_order`` the model is
    estimated on all folds but one and scored on the one left out: the log-probability
    of every held-out journey's channel sequence (consecutive repeats collapsed, so all
    orders score the same events) and its outcome (conversion or not), each next step
    predicted from the last ``order`` channels. Probabilities are smoothed by adding
    ``alpha`` to every count, so a history never seen in training predicts uniformly:
    that is what makes high orders pay for their many parameters. The order with the
    highest held-out log-likelihood is selected.

    Returns
    -------
    OrderSelection
        ``.order`` and ``.table`` (one row per order, see :class:`OrderSelection`).

    Example
    -------
    >>> from abmkit.attribution.paths import read_paths
    >>> t = pd.DataFrame({"path": ["a > b", "b > a", "a"], "total_conversions": [30, 0, 5],
    ...                   "total_null": [0, 30, 20]})
    >>> sel = select_order(read_paths(t), max_order=2, folds=3)
    >>> sel.order, sel.table["order"].tolist()
    (2, [1, 2])
    """
    if max_order < 1:
        raise ValueError("max_order must be >= 1")
    k = len(paths.channels)
    n_out = k + 2  # next channel, conversion, null
    sym, offs = _collapsed_events(paths)
    wc, wn, unit = _fold_weights(paths, folds, seed)
    wt = wc + wn
    fold_journeys = wt.sum(axis=0)
    n_journeys = float(paths.conversions.sum() + paths.null.sum())
    if _SLOT_COUNTS and ((wt > 0).sum(axis=1) <= 1).all():
        by_order = _slot_counts(sym, offs, np.argmax(wt > 0, axis=1), wt.sum(axis=1), wc.sum(axis=1),
                                wn.sum(axis=1), k, folds, max_order)
    else:
        by_order = _event_counts(sym, offs, wc, wn, k, folds, max_order)
    del wc, wn, wt
    rows = []
    for m, cf in by_order:
        total = cf.sum(axis=0)                                       # contexts x outcomes
        ctx_all = total.sum(axis=1)
        ll = np.zeros(folds)
        for f in range(folds):
            train = total - cf[f]
            p = (train + alpha) / (train.sum(axis=1, keepdims=True) + alpha * n_out)
            hit = cf[f] > 0
            ll[f] = float((cf[f][hit] * np.log(p[hit])).sum())
        with np.errstate(divide="ignore", invalid="ignore"):
            full_ll = float(np.where(total > 0, total * np.log(total / ctx_all[:, None]), 0.0).sum())
        seen_ctx = int((ctx_all > 0).sum())
        n_par = seen_ctx * (n_out - 1)
        per_fold = ll / np.maximum(fold_journeys, 1e-300)
        rows.append({"order": m, "contexts": seen_ctx, "parameters": n_par, "heldout_loglik": float(ll.sum()),
                     "heldout_loglik_per_journey": float(ll.sum() / max(n_journeys, 1e-300)),
                     "heldout_se": float(per_fold.std(ddof=1) / np.sqrt(folds)) if folds > 1 else np.nan,
                     "bic": -2 * full_ll + n_par * np.log(max(n_journeys, 1.0))})
    table = pd.DataFrame(rows)
    best = int(table.loc[table["heldout_loglik"].idxmax(), "order"])
    table["selected"] = table["order"] == best
    return OrderSelection(order=best, table=table, folds=folds, unit=unit, seed=seed)
