"""Markov removal effects against a brute-force computation; Shapley axioms."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from abmkit.attribution import markov_attribution, read_paths, shapley_split_attribution
from abmkit.attribution.markov import build_chain, removal_effects, removal_effects_batch
from abmkit.attribution.shapley import shapley_exact, shapley_unanimity

TABLE = pd.DataFrame({"path": ["a > b > a", "b > c", "a", "c > c > b", "b > a > c > a", "c"],
                      "total_conversions": [3, 1, 0, 2, 1, 0], "total_conversion_value": [30., 5, 0, 40, 7, 0],
                      "total_null": [1, 2, 5, 1, 0, 4]})


def brute_force_removal(table: pd.DataFrame, order: int, value: bool = False) -> dict:
    """Independent reference: plain-Python chain, absorption by iterating the state
    distribution for many steps (no linear solve)."""
    counts: dict = {}
    reward: dict = {}
    for path, conv, val, null in table[["path", "total_conversions", "total_conversion_value", "total_null"]].values:
        chans = [c.strip() for c in path.split(">")]
        if len(chans) < order:
            states = [tuple(chans)]
        else:
            states = [tuple(chans[i - order + 1:i + 1]) for i in range(order - 1, len(chans))]
        seq = ["START"] + states
        for s, t in zip(seq[:-1], seq[1:]):
            if s != t:
                counts.setdefault(s, {}).setdefault(t, 0.0)
                counts[s][t] += conv + null
        last = seq[-1]
        counts.setdefault(last, {}).setdefault("CONV", 0.0)
        counts[last]["CONV"] += conv
        counts[last].setdefault("NULL", 0.0)
        counts[last]["NULL"] += null
        reward.setdefault(last, 0.0)
        reward[last] += val

    def prob(removed=None):
        dist = {"START": 1.0}
        got = 0.0
        for _ in range(3000):
            new: dict = {}
            for s, p in dist.items():
                tot = sum(counts[s].values())
                for t, c in counts[s].items():
                    q = p * c / tot
                    if t == "CONV":
                        got += q * (reward[s] / counts[s]["CONV"] if value else 1.0) if c else 0.0
                    elif t == "NULL" or (removed and removed in t):
                        continue
                    else:
                        new[t] = new.get(t, 0.0) + q
            dist = new
        return got

    base = prob()
    chans = sorted({c.strip() for p in table["path"] for c in p.split(">")})
    return {c: 1 - prob(c) / base for c in chans}


@pytest.mark.parametrize("order", [1, 2, 3])
def test_markov_exact_equals_brute_force(order):
    ours = markov_attribution(read_paths(TABLE), order).set_index("channel")
    ref = brute_force_removal(TABLE, order)
    for c, re in ref.items():
        assert ours.loc[c, "removal_effect"] == pytest.approx(re, abs=1e-9)
    ref_v = brute_force_removal(TABLE, order, value=True)
    for c, re in ref_v.items():
        assert ours.loc[c, "removal_effect_value"] == pytest.approx(re, abs=1e-9)
    assert ours["conversions"].sum() == pytest.approx(TABLE["total_conversions"].sum())
    assert ours["conversion_value"].sum() == pytest.approx(TABLE["total_conversion_value"].sum())


def test_markov_hand_computed_small_chain():
    # email>email>webinar conv, email conv, webinar>email null: P = 2/3, RE email 3/4, RE webinar 2/3
    t = pd.DataFrame({"path": ["email > email > webinar", "email", "webinar > email"],
                      "total_conversions": [1, 1, 0], "total_null": [0, 0, 1]})
    r = markov_attribution(read_paths(t)).set_index("channel")
    assert r.loc["email", "removal_effect"] == pytest.approx(3 / 4)
    assert r.loc["webinar", "removal_effect"] == pytest.approx(2 / 3)
    assert r.loc["email", "conversions"] == pytest.approx(2 * (3 / 4) / (3 / 4 + 2 / 3))


def test_markov_simulation_agrees():
    """A long seeded random walk on the same chain lands within simulation noise."""
    ps = read_paths(TABLE)
    chain = build_chain(ps, 1)
    n = chain.n_states
    trans = np.zeros((n + 1, n + 3))
    np.add.at(trans, (chain.src, chain.dst), chain.weight)
    p = trans / trans.sum(axis=1, keepdims=True)
    rng = np.random.default_rng(3)
    walks = 100_000
    state = np.zeros(walks, int)
    alive = np.ones(walks, bool)
    conv = np.zeros(walks, bool)
    cum = p.cumsum(axis=1)
    while alive.any():
        u = rng.random(alive.sum())
        nxt = (u[:, None] > cum[state[alive]]).sum(axis=1)
        idx = np.flatnonzero(alive)
        conv[idx[nxt == n + 1]] = True
        alive[idx[nxt >= n + 1]] = False
        state[idx[nxt <= n]] = nxt[nxt <= n]
    _, _, base, _ = removal_effects(chain)
    assert conv.mean() == pytest.approx(base, abs=0.01)


def test_markov_batch_equals_single_solves():
    ps = read_paths(TABLE)
    chain = build_chain(ps, 1)
    rng = np.random.default_rng(0)
    w = rng.integers(0, 4, size=(5, ps.n_paths)).astype(float)
    w[:, 0] = 1  # keep some conversions in every replicate
    batch = removal_effects_batch(chain, w)
    for i in range(5):
        single = removal_effects(chain, w[i])[0]
        np.testing.assert_allclose(batch[i], single, atol=1e-10)


def test_markov_no_conversions_gives_zero_credit():
    t = pd.DataFrame({"path": ["a > b", "b"], "total_conversions": [0, 0], "total_null": [3, 1]})
    r = markov_attribution(read_paths(t))
    assert r["conversions"].tolist() == [0.0, 0.0]


def v_game(masks, payoff, s):
    return sum(p for m, p in zip(masks, payoff) if m & ~s == 0)


def test_shapley_split_exact_equals_definition_over_all_permutations():
    rng = np.random.default_rng(1)
    k = 4
    masks = rng.integers(1, 1 << k, size=12)
    payoff = rng.integers(0, 5, size=12).astype(float)
    phi = np.zeros(k)
    perms = list(itertools.permutations(range(k)))
    for perm in perms:
        s = 0
        for i in perm:
            phi[i] += v_game(masks, payoff, s | (1 << i)) - v_game(masks, payoff, s)
            s |= 1 << i
    phi /= math.factorial(k)
    exact = shapley_exact(masks, payoff[:, None], k)[:, 0]
    np.testing.assert_allclose(exact, phi, atol=1e-12)
    np.testing.assert_allclose(shapley_unanimity(masks, payoff[:, None], k)[:, 0], phi, atol=1e-12)


def test_shapley_split_axioms_efficiency_symmetry_null_player():
    t = pd.DataFrame({"path": ["a > b", "b > a > c", "a > b > a", "d", "d > a", "e > b"],
                      "total_conversions": [3, 2, 1, 0, 0, 4], "total_conversion_value": [3., 20, 1, 0, 0, 8],
                      "total_null": [1, 1, 1, 9, 2, 0]})
    r = shapley_split_attribution(read_paths(t)).set_index("channel")
    assert r["conversions"].sum() == pytest.approx(10)  # efficiency
    assert r["conversion_value"].sum() == pytest.approx(32)
    assert r.loc["d", "conversions"] == 0  # null player: d only in non-converting journeys
    # a and b appear together in every converting journey except e > b: hand values
    assert r.loc["a", "conversions"] == pytest.approx(3 / 2 + 2 / 3 + 1 / 2)
    assert r.loc["c", "conversions"] == pytest.approx(2 / 3)
    assert r.loc["e", "conversions"] == pytest.approx(2)
    sym = pd.DataFrame({"path": ["x > y", "y > x", "z"], "total_conversions": [2, 2, 1]})
    s = shapley_split_attribution(read_paths(sym)).set_index("channel")
    assert s.loc["x", "conversions"] == pytest.approx(s.loc["y", "conversions"])  # symmetry


def test_shapley_split_beyond_fifteen_channels_is_the_closed_form():
    rng = np.random.default_rng(2)
    chans = [f"c{i:02d}" for i in range(18)]
    paths = [" > ".join(rng.choice(chans, size=rng.integers(1, 4), replace=False)) for _ in range(200)]
    t = pd.DataFrame({"path": paths, "total_conversions": rng.integers(0, 3, 200)})
    ps = read_paths(t)
    a = shapley_split_attribution(ps)
    from abmkit.attribution.shapley import channel_masks
    exact = shapley_unanimity(channel_masks(ps), ps.conversions[:, None], len(ps.channels))[:, 0]
    assert a["conversions"].sum() == pytest.approx(ps.conversions.sum())
    np.testing.assert_allclose(a["conversions"], exact, atol=1e-9)
