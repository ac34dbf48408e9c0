"""Uplift statistics (DESIGN §5): two_group against statsmodels and hand
computations, bad inputs, the Cox fit against statsmodels PHReg, and campaign
influence against the generator's potential outcomes (default sample)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats import proportion as smp

from abmkit.prepared import prepare
from abmkit.uplift import campaign_influence, cox_breslow, logit_fit, two_group


def frame(n1, e1, n0, e0, **cols):
    t = np.r_[np.ones(n1), np.zeros(n0)]
    y = np.r_[np.ones(e1), np.zeros(n1 - e1), np.ones(e0), np.zeros(n0 - e0)]
    return pd.DataFrame({"t": t.astype(int), "y": y.astype(int), **cols})


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("n1,e1,n0,e0", [(40, 20, 60, 15), (523, 87, 1181, 133), (30, 0, 30, 4), (25, 25, 40, 31)])
def test_two_group_equals_statsmodels(n1, e1, n0, e0):
    r = two_group(frame(n1, e1, n0, e0), "t", "y", alpha=0.05).to_frame().iloc[0]
    lo, hi = smp.confint_proportions_2indep(e1, n1, e0, n0, compare="diff", alpha=0.05)
    rlo, rhi = smp.confint_proportions_2indep(e1, n1, e0, n0, compare="ratio", alpha=0.05)
    p = smp.test_proportions_2indep(e1, n1, e0, n0, compare="diff").pvalue
    assert (r.n_treated, r.n_control, r.events_treated, r.events_control) == (n1, n0, e1, e0)
    assert r.rate_treated == e1 / n1 and r.rate_control == e0 / n0
    assert r["diff"] == e1 / n1 - e0 / n0
    assert (r.diff_low, r.diff_high) == (lo, hi)
    assert (r.ratio_low, r.ratio_high) == (rlo, rhi)
    assert r.ratio == (e1 / n1) / (e0 / n0)
    assert r.p_value == p
    # 99% intervals follow alpha
    r99 = two_group(frame(n1, e1, n0, e0), "t", "y", alpha=0.01)
    assert (r99.diff_low, r99.diff_high) == smp.confint_proportions_2indep(e1, n1, e0, n0, compare="diff", alpha=0.01)


def test_logit_fit_matches_statsmodels():
    import statsmodels.api as sm
    rng = np.random.default_rng(3)
    n = 800
    D = np.column_stack([np.ones(n), rng.integers(0, 2, n), rng.normal(size=n), rng.integers(0, 2, n)])
    y = (rng.random(n) < 1 / (1 + np.exp(-(D @ [-0.5, 0.8, 0.4, -0.3])))).astype(float)
    b, cov = logit_fit(y, D)
    ref = sm.Logit(y, D).fit(disp=0)
    np.testing.assert_allclose(b, ref.params, rtol=1e-9)
    np.testing.assert_allclose(cov, ref.cov_params(), rtol=1e-7)


def test_adjusted_standardisation_att_by_hand():
    import statsmodels.api as sm
    rng = np.random.default_rng(11)
    n = 1500
    size = rng.normal(size=n)
    seg = rng.choice(["a", "b", "c"], n)
    t = (rng.random(n) < 1 / (1 + np.exp(-size))).astype(int)
    y = (rng.random(n) < 1 / (1 + np.exp(-(-1 + 0.7 * t + 0.9 * size + (seg == "b"))))).astype(int)
    df = pd.DataFrame({"t": t, "y": y, "size": size, "seg": seg})
    r = two_group(df, "t", "y", covariates=["size", "seg"])
    # peer: statsmodels GLM on the same design, predictions for the treated with t=1 and t=0
    X = np.column_stack([np.ones(n), t, size, seg == "b", seg == "c"]).astype(float)
    fit = sm.GLM(y, X, family=sm.families.Binomial()).fit()
    X1, X0 = X[t == 1].copy(), X[t == 1].copy()
    X1[:, 1], X0[:, 1] = 1, 0
    att = np.mean(fit.predict(X1) - fit.predict(X0))
    assert r.adj_diff == pytest.approx(att, rel=1e-8)
    # delta method by numerical gradient
    def f(b):
        return np.mean(1 / (1 + np.exp(-X1 @ b)) - 1 / (1 + np.exp(-X0 @ b)))
    eps = 1e-6
    g = np.array([(f(fit.params + eps * e) - f(fit.params - eps * e)) / (2 * eps) for e in np.eye(5)])
    se = np.sqrt(g @ fit.cov_params() @ g)
    z = stats.norm.isf(0.025)
    assert r.adj_diff_low == pytest.approx(att - z * se, rel=1e-5)
    assert r.adj_diff_high == pytest.approx(att + z * se, rel=1e-5)
    assert not r.flag and r.estimand == "ATT" and r.adj_method == "standardization"
    assert "adjusted (standardization, ATT)" in r.headline


def test_ipw_att_saturated_propensity_equals_stratified_by_hand():
    # with one binary covariate the propensity model is saturated, so the ATT
    # weighting equals reweighting control rates to the treated mix exactly
    df = pd.concat([
        frame(30, 12, 70, 14, g="small"),   # treated 12/30, control 14/70
        frame(60, 36, 40, 16, g="large"),   # treated 36/60, control 16/40
    ], ignore_index=True)
    r = two_group(df, "t", "y", covariates=["g"], method="ipw")
    expected = 48 / 90 - (30 / 90 * 14 / 70 + 60 / 90 * 16 / 40)
    assert r.adj_diff == pytest.approx(expected, abs=1e-9)
    assert r.adj_diff_low < expected < r.adj_diff_high


def test_levels_missing_values_and_errors():
    df = pd.DataFrame({"grp": ["ad"] * 20 + ["none"] * 20, "won": ["yes"] * 8 + ["no"] * 12 + ["yes"] * 4 + ["no"] * 16})
    r = two_group(df, "grp", "won", treated_level="ad", outcome_level="yes")
    assert (r.n_treated, r.events_treated, r.n_control, r.events_control) == (20, 8, 20, 4)
    with pytest.raises(ValueError, match="treated_level"):
        two_group(df, "grp", "won", outcome_level="yes")
    with pytest.raises(KeyError, match="nope"):
        two_group(df, "grp", "nope")
    df2 = frame(20, 5, 20, 5)
    df2.loc[0, "y"] = np.nan
    r = two_group(df2, "t", "y")
    assert r.n_treated == 19 and "1 row(s) with missing" in r.flag_reason


@pytest.mark.parametrize("df,covs,reason", [
    (frame(0, 0, 40, 5), None, "no treated units"),
    (frame(40, 5, 0, 0), None, "no control units"),
    (frame(40, 0, 40, 0, s=np.arange(80.0)), ["s"], "outcome all zero"),
    (frame(40, 10, 40, 5, k=["x"] * 80), ["k"], "covariate 'k' has one level"),
    (frame(40, 40, 40, 5, s=np.arange(80.0)), ["s"], "perfect separation"),
    (frame(5, 2, 40, 5), None, "small group"),
    (frame(40, 5, 40, 0), None, "no events among controls"),
])
def test_bad_input_gives_flagged_row(df, covs, reason):
    r = two_group(df, "t", "y", covariates=covs)
    row = r.to_frame().iloc[0]
    assert row.flag and reason in row.flag_reason
    # whatever is NaN is explained by the reason
    if np.isnan(row.adj_diff):
        assert row.flag_reason


def test_perfect_separation_by_covariate_in_ipw_is_flagged():
    df = frame(40, 10, 40, 10, s=np.r_[np.ones(40), np.zeros(40)])  # s predicts treatment perfectly
    r = two_group(df, "t", "y", covariates=["s"], method="ipw")
    assert r.flag and "adjusted model failed" in r.flag_reason and np.isnan(r.adj_diff)


def test_cox_breslow_matches_phreg_with_entry_times():
    from statsmodels.duration.hazard_regression import PHReg
    rng = np.random.default_rng(5)
    n = 600
    stop = rng.integers(1, 121, n)
    start = np.minimum(np.where(rng.random(n) < 0.3, rng.integers(0, 30, n), 0), stop - 1)
    Z = np.column_stack([rng.integers(0, 2, n), rng.normal(size=n)])
    ev = rng.random(n) < 0.3 + 0.2 * Z[:, 0]
    b, cov = cox_breslow(start, stop, ev, Z)
    # PHReg counts a row entering at t as at risk at t; on a day grid "(start, stop]"
    # means entering just after start, hence start + 0.5
    ref = PHReg(stop.astype(float), Z, status=ev.astype(int), entry=np.where(start > 0, start + 0.5, 0.0),
                ties="breslow").fit()
    np.testing.assert_allclose(b, ref.params, rtol=1e-6)
    np.testing.assert_allclose(np.sqrt(np.diag(cov)), ref.bse, rtol=1e-6)


# --------------------------------------------------------------------------- ground truth
@pytest.fixture(scope="module")
def default_sample():
    from abmkit.sample import generate
    return generate(n_accounts=2000, seed=7)


@pytest.fixture(scope="module")
def influence(default_sample):
    s = default_sample
    mapping = s.truth["contact_accounts"].rename(columns={"true_account_id": "account_id"})
    return campaign_influence(prepare(s.dataset, mapping=mapping), as_of=s.params["end"], progress=False,
                              alpha=0.05)


def _joined(default_sample, influence):
    eff = default_sample.truth["effects"]
    t = influence.table
    return eff.merge(t[t.level == "campaign"], on=["campaign_id", "transition"], suffixes=("_true", ""))


def test_planted_effects_recovered(default_sample, influence):
    m = _joined(default_sample, influence)
    assert len(m) == len(default_sample.truth["effects"])
    # at-risk and exposed sets are the generator's exactly
    assert (m["n_at_risk"] == m["n_at_risk_true"]).all()
    assert (m["n_treated"] == m["n_exposed_at_risk"]).all()
    z95, z99 = stats.norm.isf(0.025), stats.norm.isf(0.005)
    se = (m["adj_diff_high"] - m["adj_diff_low"]) / (2 * z95)
    effect = m[~m["is_zero_effect"].astype(bool)]
    assert len(effect) >= 3
    for r, s_ in zip(effect.itertuples(), se[effect.index]):
        assert r.adj_diff - z99 * s_ <= r.att_diff <= r.adj_diff + z99 * s_, r.campaign_id
        assert r.adj_diff_low > 0, r.campaign_id  # 95% CI excludes zero
    zero = m[m["is_zero_effect"].astype(bool)]
    assert len(zero) >= 4
    assert (zero["q_value"] >= 0.05).all(), zero[["campaign_id", "q_value"]]
    conf = m[m["is_confounded"].astype(bool)].iloc[0]
    assert abs(conf.adj_diff - conf.att_diff) < abs(conf["diff"] - conf.att_diff)
    # direct mail is the strongest at qualified->sales_ready among campaigns there
    qs = m[m.transition == "qualified->sales_ready"].sort_values("adj_diff", ascending=False)
    assert qs.iloc[0]["channel_true"] == "direct_mail"


def test_background_campaigns_match_their_zero_truth(default_sample, influence):
    """Background campaigns have no effect (generator truth ``background_effects``):
    exposure and at-risk sets equal the generator's exactly, and the adjusted 95% CI
    of nearly every testable one covers 0 (5% may miss by chance)."""
    bg = default_sample.truth["background_effects"]
    t = influence.table
    m = bg.merge(t[t.level == "campaign"], on=["campaign_id", "transition"], suffixes=("_true", ""))
    assert len(m) == len(bg) == 60 and (m["att_diff"].dropna() == 0).all()
    assert (m["n_at_risk"] == m["n_at_risk_true"]).all()
    assert (m["n_treated"] == m["n_exposed_at_risk"]).all()
    ok = m[m["adj_diff_low"].notna() & ~m["flag_reason"].str.contains("small group")]
    assert len(ok) >= 20
    assert ((ok["adj_diff_low"] <= 0) & (ok["adj_diff_high"] >= 0)).mean() >= 0.85


def test_influence_table_contract(influence):
    t = influence.table
    for col in ["n_treated", "n_control", "rate_treated", "rate_control", "diff", "diff_low", "diff_high",
                "ratio", "ratio_low", "ratio_high", "p_value", "q_value", "adj_diff", "adj_diff_low",
                "adj_diff_high", "hazard_ratio", "acceleration_days", "baseline_rate", "flag", "flag_reason"]:
        assert col in t.columns
    assert set(t.level) == {"campaign", "channel"}
    # every NaN in a headline statistic comes with a reason
    unexplained = t[t["diff"].isna() & (t["flag_reason"] == "")]
    assert unexplained.empty
    no_exposed = t[t.n_treated == 0]
    assert len(no_exposed) and no_exposed["flag_reason"].str.contains("no treated units").all()
    # webinar campaign is faster (negative acceleration) and its hazard ratio above 1
    web = t[(t.campaign_id == "CMP002") & (t.transition == "engaged->qualified")].iloc[0]
    assert web.acceleration_days < 0 and web.hazard_ratio > 1
    assert "significant at q" in influence.headline


def test_transition_nobody_reaches_is_flagged(default_sample):
    s = default_sample
    mapping = s.truth["contact_accounts"].rename(columns={"true_account_id": "account_id"})
    ds = s.dataset
    # drop every won opportunity: nobody becomes a customer
    from abmkit.schema import Dataset
    ds2 = Dataset(accounts=ds.accounts, contacts=ds.contacts, touchpoints=ds.touchpoints, campaigns=ds.campaigns,
                  opportunities=ds.opportunities.assign(is_won=False), revenue=ds.revenue)
    res = campaign_influence(prepare(ds2, mapping=mapping), transitions=["sales_ready->customer"],
                             by="channel", progress=False, cox=False)
    t = res.table
    assert len(t) and t["flag"].all()
    assert t["flag_reason"].str.contains("no events|no treated|no control").all()


def test_notebook_04_executes_on_small_sample(small_sample_dir, resolved_sample_dir, tmp_path):
    from pathlib import Path

    import papermill as pm

    from abmkit.outputs import load_findings

    nb = Path(__file__).resolve().parents[1] / "notebooks" / "04_campaign_influence_on_progression.ipynb"
    out_dir = tmp_path / "report"
    pm.execute_notebook(str(nb), str(tmp_path / "04.ipynb"), kernel_name="python3", cwd=str(nb.parent),
                        progress_bar=False,
                        parameters={"data_dir": str(resolved_sample_dir), "quarter": "2026Q3",
                                    "output_dir": str(out_dir), "truth_dir": str(Path(small_sample_dir) / "truth"),
                                    "min_group_size": 15})
    findings = load_findings(out_dir, "04_campaign_influence_on_progression")
    assert findings["accounts"] == 300 and findings["estimand"].startswith("ATT")
    assert findings["truth_adj_coverage"] >= 0.7
    for name in ("campaign_influence", "progression_velocity", "transition_baseline", "dual_funnel",
                 "stage_distribution"):
        assert (out_dir / "tables" / f"{name}.csv").exists(), name
    table = __import__("pandas").read_csv(out_dir / "tables" / "campaign_influence.csv")
    assert {"q_value", "adj_diff", "hazard_ratio"} <= set(table.columns)


def test_sorted_km_median_equals_km_median():
    """campaign_influence's per-test KM median (pre-sorted, no CI) is km_median's number and note."""
    from abmkit.progression import km_median
    from abmkit.uplift import _km_median_sorted
    rng = np.random.default_rng(8)
    for i in range(300):
        n = int(rng.integers(0, 40))
        days = np.round(rng.exponential(30, n)) * rng.choice([1.0, 0.5], n)
        if i % 5 == 0:
            days = np.minimum(days, 20)  # heavy ties
        event = rng.random(n) < rng.random()
        med, _, _, note = km_median(days, event)
        o = np.argsort(days, kind="stable")
        med2, note2 = _km_median_sorted(days[o], event[o])
        assert (med == med2 or (np.isnan(med) and np.isnan(med2))) and note == note2
