"""Bootstrap of the data-driven models: Markov's normal draw of the replicate transition
counts agrees with re-weighting every account; exact float32 products."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def data(small_sample):
    from abmkit.prepared import prepare
    return prepare(small_sample.dataset)


def test_markov_normal_counts_have_the_bootstrap_mean_and_covariance(data):
    from abmkit.attribution import journeys_for
    from abmkit.attribution.compare import _account_groups, _normal_counts, replicable
    cj = journeys_for(data, ["markov"])
    rep = replicable(cj, ["markov"], 10, {})
    x = np.asarray(rep.incidence[1], float)
    mean, factor, _ = _normal_counts(x, 0)
    np.testing.assert_allclose(mean, x.sum(axis=0))
    # covariance of sum_g w_g X_g under multinomial(G, 1/G) weights, by simulation
    rng = np.random.default_rng(3)
    g = x.shape[0]
    w = np.stack([np.bincount(rng.integers(0, g, g), minlength=g) for _ in range(4000)])
    sims = w @ x
    cov = factor @ factor.T
    big = np.diag(cov) > 50
    assert big.sum() > 10
    np.testing.assert_allclose(np.diag(np.cov(sims.T))[big], np.diag(cov)[big], rtol=0.1)


def test_markov_normal_and_resampled_intervals_agree(data):
    from abmkit.attribution import compare_models
    models = ["linear", "markov", "markov_per_conversion", "shapley"]
    a = compare_models(data, models, n_boot=400, seed=1, replicate_sums="resample")
    b = compare_models(data, models, n_boot=400, seed=1, replicate_sums="normal")
    assert a.info["replicate_sums"] == "resample" and b.info["replicate_sums"] == "normal"
    for m in models:
        ia = a.intervals[a.intervals["model"] == m].set_index("channel")
        ib = b.intervals[b.intervals["model"] == m].set_index("channel")
        wa, wb = ia["high"] - ia["low"], ib["high"] - ib["low"]
        # same point estimates; widths within 25 % (400 replicates each), centres close
        np.testing.assert_allclose(ia["share"], ib["share"])
        assert (wb / wa).between(0.75, 1.33).mean() >= 0.8, (wb / wa).round(2).to_dict()
        assert ((ia["low"] + ia["high"]) / 2 - (ib["low"] + ib["high"]) / 2).abs().max() < 0.5 * wa.max()
    with pytest.raises(ValueError, match="replicate_sums"):
        compare_models(data, ["markov"], n_boot=2, replicate_sums="fast")


def test_normal_sums_cover_the_sample_size_rule(data, monkeypatch):
    """auto: re-weighting below NORMAL_MIN_ACCOUNTS, normal draws from it; the covariance
    from a sample of accounts gives widths close to the covariance from all of them."""
    import abmkit.attribution.compare as cmp
    from abmkit.attribution import compare_models
    auto = compare_models(data, ["linear", "markov"], n_boot=50, seed=2)
    assert auto.info["replicate_sums"] == "resample"
    monkeypatch.setattr(cmp, "NORMAL_MIN_ACCOUNTS", 10)
    full = compare_models(data, ["linear", "markov"], n_boot=400, seed=2)
    assert full.info["replicate_sums"] == "normal"
    monkeypatch.setattr(cmp, "NORMAL_COV_ACCOUNTS", 600)
    sampled = compare_models(data, ["linear", "markov"], n_boot=400, seed=2)
    wf = (full.intervals["high"] - full.intervals["low"]).to_numpy()
    ws = (sampled.intervals["high"] - sampled.intervals["low"]).to_numpy()
    assert np.median(ws / wf) == pytest.approx(1, abs=0.2)


def test_float32_markov_product_is_exact(data):
    """Integer counts times integer weights: the float32 product equals float64."""
    from abmkit.attribution import journeys_for
    from abmkit.attribution.compare import replicable
    cj = journeys_for(data, ["markov"])
    rep = replicable(cj, ["markov"], 30, {})
    rng = np.random.default_rng(0)
    w = rng.poisson(1.0, (30, rep.n_groups)).astype(float)
    got = rep.replicates(30, ["markov"], lambda first, b: w[first:first + b])["markov"]
    np.testing.assert_array_equal(got, w @ np.asarray(rep.incidence[1], float))


def test_refit_statistics_drawn_without_account_weights(data, monkeypatch):
    """normal: Markov's transition counts and markov_per_conversion's set counts are one
    joint normal draw with the exact totals as mean; Shapley's set counts are drawn
    exactly from classes of accounts with identical rows; no account weight is drawn.
    Above NORMAL_MAX_STATS the per-conversion refit goes back to re-weighting; above
    NORMAL_MAX_CLASSES Shapley joins the joint draw."""
    import abmkit.attribution.compare as cmp
    from abmkit.attribution import journeys_for
    models = ["markov", "markov_per_conversion", "shapley"]
    cj = journeys_for(data, models)
    rep = cmp.replicable(cj, models, 10, {}, replicate_sums="normal", seed=3)
    mean, factor, _, layout = rep.markov_normal
    assert [name for name, _, _ in layout] == ["markov", "markov_per_conversion"]
    for name, a, b in layout:
        mat = rep.incidence[1] if name == "markov" else rep.refits[name].incidence
        np.testing.assert_allclose(mean[a:b], np.asarray(mat.sum(axis=0)).ravel())
    rows_c, sizes, _ = rep.refit_classes["shapley"]
    inc = rep.refits["shapley"].incidence
    assert sizes.sum() == rep.n_groups and len(sizes) < rep.n_groups  # some accounts share a row
    # classes reproduce every account's row: class sizes x class rows = the totals
    np.testing.assert_allclose(np.asarray(rows_c.T @ sizes).ravel(), np.asarray(inc.sum(axis=0)).ravel())
    out = rep.replicates(2000, models, lambda first, b: pytest.fail("account weights drawn"))
    sh = out["shapley"]
    u = sh.shape[1] // 2
    assert (sh >= 0).all() and (sh[:, :u] <= sh[:, u:]).all()
    # the class draw has the account bootstrap's mean and variance (multinomial weights)
    g = rep.n_groups
    x = inc.toarray()
    var = g * x.var(axis=0)
    big = var > 20
    np.testing.assert_allclose(sh.mean(axis=0), x.sum(axis=0), atol=4 * np.sqrt(var.max() / 2000))
    np.testing.assert_allclose(sh.var(axis=0)[big], var[big], rtol=0.2)
    monkeypatch.setattr(cmp, "NORMAL_MAX_STATS", 1)
    monkeypatch.setattr(cmp, "NORMAL_MAX_CLASSES", 1)
    rep = cmp.replicable(cj, models, 10, {}, replicate_sums="normal", seed=3)
    assert [name for name, _, _ in rep.markov_normal[3]] == ["markov"] and not rep.refit_classes
