"""The data-driven Shapley model (conversion-rate game): brute force of its own
definition, dependence on non-conversions, conservation and non-negativity, the exact
path beyond 15 channels, touch level = channel level, bootstrap re-estimation, and
the public-library example (docs/attribution.md, "Shapley: compared with a library")."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from abmkit.attribution import path_attribution, read_paths, shapley_attribution, shapley_split_attribution


@pytest.fixture(scope="module")
def sample_resolved_small(small_sample):
    from abmkit.prepared import prepare
    return prepare(small_sample.dataset)


def brute_force(paths: list[list[str]], conv, null) -> dict:
    """The model's definition, written with loops and sets: rate of every exact channel
    set, v(A) = sum of the rates of seen sets inside A, each converting journey's
    conversions split by the Shapley values (all orderings) of v on its own channels."""
    sets = [frozenset(p) for p in paths]
    c_tot, n_tot = {}, {}
    for s, c, n in zip(sets, conv, null):
        c_tot[s] = c_tot.get(s, 0) + c
        n_tot[s] = n_tot.get(s, 0) + c + n
    rate = {s: c_tot[s] / n_tot[s] for s in c_tot if n_tot[s] > 0}

    def v(a):
        return sum(r for s, r in rate.items() if s <= a)
    credit = {}
    for s, c in zip(sets, conv):
        if c == 0:
            continue
        players = sorted(s)
        phi = dict.fromkeys(players, 0.0)
        for perm in itertools.permutations(players):
            have = frozenset()
            for p in perm:
                phi[p] += v(have | {p}) - v(have)
                have = have | {p}
        tot = sum(phi.values())
        for p in players:
            share = phi[p] / tot if tot > 0 else 1 / len(players)
            credit[p] = credit.get(p, 0.0) + c * share
    return credit


def random_case(rng, n_paths=14, channels="abcde"):
    paths = [list(rng.choice(list(channels), size=rng.integers(1, 5))) for _ in range(n_paths)]
    conv = rng.integers(0, 4, n_paths).astype(float)
    null = rng.integers(0, 6, n_paths).astype(float)
    return paths, conv, null


def table(paths, conv, null):
    return pd.DataFrame({"path": [" > ".join(p) for p in paths], "total_conversions": conv, "total_null": null})


@pytest.mark.parametrize("seed", range(8))
def test_shapley_equals_brute_force_of_its_definition(seed):
    rng = np.random.default_rng(seed)
    paths, conv, null = random_case(rng)
    want = brute_force(paths, conv, null)
    got = shapley_attribution(read_paths(table(paths, conv, null))).set_index("channel")["conversions"]
    for ch, c in got.items():
        assert c == pytest.approx(want.get(ch, 0.0), abs=1e-10), ch


@pytest.mark.parametrize("seed", range(3))
def test_shapley_exact_without_the_coalition_table_gives_the_same_numbers(seed):
    # beyond max_exact channels the sums run over the seen sets (pairwise subset tests)
    rng = np.random.default_rng(seed)
    paths, conv, null = random_case(rng, 30, "abcdefgh")
    ps = read_paths(table(paths, conv, null))
    a = shapley_attribution(ps)
    b = shapley_attribution(ps, max_exact=0)
    np.testing.assert_allclose(a["conversions"], b["conversions"], atol=1e-10)


def test_shapley_many_channels_conserved_non_negative_and_brute_force_on_a_few():
    rng = np.random.default_rng(4)
    chans = [f"c{i:02d}" for i in range(20)]
    paths = [list(rng.choice(chans, size=rng.integers(1, 4), replace=False)) for _ in range(300)]
    conv = rng.integers(0, 3, 300).astype(float)
    null = rng.integers(0, 5, 300).astype(float)
    got = shapley_attribution(read_paths(table(paths, conv, null))).set_index("channel")["conversions"]
    assert got.sum() == pytest.approx(conv.sum())
    assert (got >= 0).all()
    want = brute_force(paths, conv, null)  # journeys of <= 3 channels: brute force is cheap
    for ch, c in got.items():
        assert c == pytest.approx(want.get(ch, 0.0), abs=1e-9)


def test_shapley_moves_with_non_conversions_and_the_split_rule_does_not():
    # the same converting journeys; only the non-converting journeys of 'a' alone change
    base = pd.DataFrame({"path": ["a > b", "a", "b"], "total_conversions": [10, 5, 5], "total_null": [10, 5, 5]})
    more_null_a = base.assign(total_null=[10, 45, 5])
    s0 = shapley_attribution(read_paths(base)).set_index("channel")["conversions"]
    s1 = shapley_attribution(read_paths(more_null_a)).set_index("channel")["conversions"]
    assert s1["a"] < s0["a"] - 1  # 'a' alone converts less often: less credit on the shared journeys
    assert s0.sum() == pytest.approx(20) and s1.sum() == pytest.approx(20)
    r0 = shapley_split_attribution(read_paths(base)).set_index("channel")["conversions"]
    r1 = shapley_split_attribution(read_paths(more_null_a)).set_index("channel")["conversions"]
    pd.testing.assert_series_equal(r0, r1)  # the rule ignores non-conversions


def test_shapley_hand_computed_and_equal_split_without_evidence():
    # r(a) = 1, r(ab) = 0.5: a journey a > b is split phi_a = 1 + 0.25, phi_b = 0.25
    t = pd.DataFrame({"path": ["a > b", "a"], "total_conversions": [1, 1], "total_null": [1, 0]})
    got = shapley_attribution(read_paths(t)).set_index("channel")["conversions"]
    assert got["a"] == pytest.approx(1 + 1.25 / 1.5) and got["b"] == pytest.approx(0.25 / 1.5)
    # every journey has all channels: no evidence to tell them apart -> equal split
    same = pd.DataFrame({"path": ["a > b > c", "c > a > b"], "total_conversions": [3, 3], "total_null": [7, 1]})
    got = shapley_attribution(read_paths(same))["conversions"]
    np.testing.assert_allclose(got, [2, 2, 2])


def test_shapley_value_follows_the_same_split():
    t = pd.DataFrame({"path": ["a > b", "a", "b > c"], "total_conversions": [2, 1, 1],
                      "total_conversion_value": [100.0, 10.0, 50.0], "total_null": [2, 3, 9]})
    r = shapley_attribution(read_paths(t))
    assert r["conversion_value"].sum() == pytest.approx(160)
    assert (r["conversion_value"] >= 0).all()


def test_public_library_example_coalition_worths():
    """The coalition table of the DP6 Marketing-Attribution-Models README (Organic
    Search $7, Facebook $6, Direct $4, O+F $15, O+D $7, F+D $9, O+F+D $19), as the
    conversion rates (per 100 journeys) of journeys with exactly those channel sets.
    Their algorithm takes each exact set's rate as the worth of that coalition; ours
    takes it as that set's own dividend (v = sum over subsets). Shares of the O+F+D
    journeys, both hand-computed (docs/attribution.md explains the difference)."""
    sets = ["O", "F", "D", "O > F", "O > D", "F > D", "O > F > D"]
    worth = [7, 6, 4, 15, 7, 9, 19]
    t = pd.DataFrame({"path": sets, "total_conversions": worth, "total_null": [100 - w for w in worth]})
    ps = read_paths(t)
    from abmkit.attribution.shapley import rate_game, set_rates
    game, inv, present = rate_game(ps)
    shares = game.shares(set_rates(inv, len(game.masks), ps.conversions, ps.null))
    full = list(game.masks[game.conv_sets]).index(7)
    ours = dict(zip([ps.channels[i] for i in present], shares[full]))
    # ours: phi_D = .04 + .07/2 + .09/2 + .19/3; phi_F = .06 + .15/2 + .09/2 + .19/3; phi_O = .07 + .15/2 + .07/2 + .19/3
    phi = {"D": .04 + .07 / 2 + .09 / 2 + .19 / 3, "F": .06 + .15 / 2 + .09 / 2 + .19 / 3,
           "O": .07 + .15 / 2 + .07 / 2 + .19 / 3}
    for c in "DFO":
        assert ours[c] == pytest.approx(phi[c] / sum(phi.values()))
    # theirs (worth of a coalition = its own rate): Shapley O 7.667, F 8.167, D 3.167 of 19
    worth_of = {frozenset(s.split(" > ")): w for s, w in zip(sets, worth)}
    theirs = dict.fromkeys("OFD", 0.0)
    for perm in itertools.permutations("OFD"):
        have = frozenset()
        for p in perm:
            theirs[p] += worth_of.get(have | {p}, 0) - worth_of.get(have, 0)
            have = have | {p}
    theirs = {c: x / math.factorial(3) for c, x in theirs.items()}
    assert theirs == pytest.approx({"O": 23 / 3, "F": 49 / 6, "D": 19 / 6})


def test_touch_level_shapley_sums_to_channel_level(sample_resolved_small):
    from abmkit.attribution import attribute, compare_models, journeys_for
    data = sample_resolved_small
    credits = attribute(data, "shapley")
    by_conv = credits.groupby("conversion_id")["credit"].sum()
    np.testing.assert_allclose(by_conv, 1.0)
    assert (credits["credit"] >= 0).all()
    cj = journeys_for(data, ["shapley"])
    chan = shapley_attribution(cj.paths()).set_index("channel")["conversions"]
    touch = credits.groupby("channel", observed=True)["credit"].sum().reindex(chan.index, fill_value=0)
    np.testing.assert_allclose(touch, chan, atol=1e-8)
    res = compare_models(data, ["shapley", "shapley_split"], n_boot=0)
    np.testing.assert_allclose(res.credits.set_index(["model", "channel"]).loc["shapley", "conversions"]
                               .reindex(chan.index), chan, atol=1e-8)


def test_bootstrap_replicate_refits_shapley(sample_resolved_small):
    """A replicate with all weights 1 is the point estimate; a replicate doubling a set of
    accounts equals the model fitted on journeys where those accounts appear twice."""
    from abmkit.attribution import journeys_for
    from abmkit.attribution.compare import finish_replicates, replicable
    data = sample_resolved_small
    cj = journeys_for(data, ["shapley"])
    rep = replicable(cj, ["shapley"], 1, {})
    ones = np.ones((1, rep.n_groups))
    got = finish_replicates(rep, rep.replicates(1, ["shapley"], lambda first, b: ones))["shapley"][0]
    want = shapley_attribution(cj.paths())["conversions"].to_numpy()
    np.testing.assert_allclose(got, want, atol=1e-8)
    w = np.ones((1, rep.n_groups))
    w[0, ::3] = 2
    w[0, 1::7] = 0
    got = finish_replicates(rep, rep.replicates(1, ["shapley"], lambda first, b: w))["shapley"][0]
    ps = cj.paths()
    from abmkit.attribution.compare import _account_groups
    _, conv_group, nc_group, _, _ = _account_groups(cj)
    pw = w[0, np.concatenate([conv_group, nc_group])]
    ps.conversions, ps.null, ps.value = ps.conversions * pw, ps.null * pw, ps.value * pw
    want = shapley_attribution(ps)["conversions"].to_numpy()
    np.testing.assert_allclose(got, want, atol=1e-8)


def test_path_attribution_names_both_shapley_models():
    t = pd.DataFrame({"path": ["a > b", "a", "b"], "total_conversions": [2, 1, 1], "total_null": [0, 1, 3]})
    got = path_attribution(t, ["shapley", "shapley_split"]).set_index(["model", "channel"])["conversions"]
    assert got["shapley_split", "a"] == pytest.approx(2) and got["shapley", "a"] == pytest.approx(15 / 7)
