"""Markov order selection (order="auto"): held-out log-likelihood checked against a
loop implementation, planted order recovered, wiring into markov_attribution,
path_attribution and compare_models."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from abmkit.attribution import PathSet, markov_attribution, path_attribution, read_paths, select_order


def simulate(order: int, n: int, seed: int, k: int = 4) -> PathSet:
    """Journeys whose next step depends on the last ``order`` channels (a fixed random
    table), ending in conversion or not depending on the last ``order`` channels too."""
    rng = np.random.default_rng(seed)
    table = {}

    def dist(ctx):
        if ctx not in table:
            p = rng.dirichlet(np.full(k + 2, 0.3))
            if ctx:  # never a repeat of the last channel (repeats are collapsed), ends >= 20 %
                p[ctx[-1]] = 0
            else:   # the first step is a channel
                p[k:] = 0
            p = p / p.sum()
            if ctx:
                p = 0.8 * p + 0.2 * np.r_[np.zeros(k), rng.dirichlet([1.0, 1.0])]
            table[ctx] = p
        return table[ctx]
    codes, offsets, conv, null, group = [], [0], [], [], []
    for j in range(n):
        hist, path = (), []
        while True:
            y = rng.choice(k + 2, p=dist(hist[-order:]))
            if y >= k:
                conv.append(1.0 if y == k else 0.0)
                null.append(0.0 if y == k else 1.0)
                break
            path.append(int(y))
            hist = hist + (int(y),)
        codes += path
        offsets.append(len(codes))
        group.append(j)
    return PathSet(channels=[f"c{i}" for i in range(k)], codes=np.array(codes, np.int32),
                   offsets=np.array(offsets, np.int64), conversions=np.array(conv), value=np.zeros(n),
                   null=np.array(null), group=np.array(group))


def loop_heldout(ps: PathSet, order: int, fold_of_group: dict, folds: int, alpha: float) -> float:
    """The held-out log-likelihood written with loops over journeys and steps."""
    k = len(ps.channels)
    events = []  # (fold, context, outcome, weight)
    for i in range(ps.n_paths):
        seq = list(ps.codes[ps.offsets[i]:ps.offsets[i + 1]])
        seq = [c for j, c in enumerate(seq) if j == 0 or c != seq[j - 1]]
        f = fold_of_group[ps.group[i]]
        w = ps.conversions[i] + ps.null[i]
        for j, c in enumerate(seq):
            events.append((f, tuple(seq[max(0, j - order):j]), c, w))
        ctx = tuple(seq[max(0, len(seq) - order):])
        events.append((f, ctx, k, ps.conversions[i]))
        events.append((f, ctx, k + 1, ps.null[i]))
    total = 0.0
    for f in range(folds):
        counts, ctx_tot = {}, {}
        for g, ctx, y, w in events:
            if g != f:
                counts[ctx, y] = counts.get((ctx, y), 0) + w
                ctx_tot[ctx] = ctx_tot.get(ctx, 0) + w
        for g, ctx, y, w in events:
            if g == f and w > 0:
                p = (counts.get((ctx, y), 0) + alpha) / (ctx_tot.get(ctx, 0) + alpha * (k + 2))
                total += w * math.log(p)
    return total


@pytest.mark.parametrize("slots", [True, False])
@pytest.mark.parametrize("order", [1, 2])
def test_heldout_loglik_equals_loop_implementation(order, slots, monkeypatch):
    import abmkit.attribution.markov as mk
    monkeypatch.setattr(mk, "_SLOT_COUNTS", slots)  # both counting ways against the loop
    ps = simulate(2, 120, seed=3)
    sel = select_order(ps, max_order=3, folds=4, seed=1)
    groups = np.unique(ps.group)
    fold_of = dict(zip(groups, np.random.default_rng(1).permutation(len(groups)) % 4))
    want = loop_heldout(ps, order, fold_of, 4, 0.5)
    got = sel.table.set_index("order").loc[order, "heldout_loglik"]
    assert got == pytest.approx(want, rel=1e-10)


@pytest.mark.parametrize("slots", [True, False])
def test_sorted_counting_path_gives_the_same_table(monkeypatch, slots):
    import abmkit.attribution.markov as mk
    monkeypatch.setattr(mk, "_SLOT_COUNTS", slots)
    ps = simulate(2, 300, seed=5)
    dense = select_order(ps, max_order=3).table
    monkeypatch.setattr(mk, "_DENSE_CELLS", 0)
    pd.testing.assert_frame_equal(select_order(ps, max_order=3).table, dense, check_exact=False, rtol=1e-12)


def test_slot_and_event_counting_agree(monkeypatch):
    """Paths in one fold each are counted slot by slot; paths whose counts are split over
    folds (aggregated tables) event by event. On one-fold paths both give the same table."""
    import abmkit.attribution.markov as mk
    ps = simulate(3, 500, seed=7)
    slot = select_order(ps, max_order=4, seed=2).table
    monkeypatch.setattr(mk, "_SLOT_COUNTS", False)
    event = select_order(ps, max_order=4, seed=2).table
    pd.testing.assert_frame_equal(slot, event, check_exact=False, rtol=1e-12)


@pytest.mark.parametrize("planted", [1, 2])
def test_planted_order_is_recovered(planted):
    ps = simulate(planted, 4000, seed=planted)
    sel = select_order(ps, max_order=3, seed=0)
    assert sel.order == planted
    t = sel.table
    assert list(t["order"]) == [1, 2, 3] and t["selected"].sum() == 1
    assert t.loc[t["selected"], "heldout_loglik"].iloc[0] == t["heldout_loglik"].max()
    assert sel.summary.equals(t) and sel.unit == "account"


def test_order_auto_wiring():
    ps = simulate(2, 3000, seed=2)
    out = markov_attribution(ps, "auto")
    assert out.attrs["order"] == 2 and len(out.attrs["order_selection"]) == 4
    pd.testing.assert_frame_equal(out.reset_index(drop=True), markov_attribution(ps, 2).reset_index(drop=True),
                                  check_like=True)
    # aggregated path table: journeys split over folds (no account ids)
    t = pd.DataFrame({"path": ["a > b", "b > a", "a"], "total_conversions": [30, 0, 5], "total_null": [0, 30, 20]})
    sel = select_order(read_paths(t), max_order=2, folds=3)
    assert sel.unit == "journey" and sel.order == 2  # b after a converts, a after b does not: order 2 matters
    got = path_attribution(t, ["markov"], order="auto")
    want = path_attribution(t, ["markov"], order=2)
    pd.testing.assert_frame_equal(got, want)


def test_compare_models_order_auto_reports_the_comparison(small_sample):
    from abmkit.attribution import compare_models
    from abmkit.prepared import prepare
    data = prepare(small_sample.dataset)
    res = compare_models(data, ["linear", "markov"], n_boot=0, order="auto")
    sel = res.order_selection
    assert sel is not None and res.info["markov_order"] == sel.order
    fixed = compare_models(data, ["markov"], n_boot=0, order=sel.order)
    np.testing.assert_allclose(res.shares["markov"], fixed.shares["markov"])
