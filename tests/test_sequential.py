"""The sequential-trial design (abmkit.sequential): recovers a planted effect that acts
before the landmark, where the landmark comparison is biased (issue 19 item 5)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from abmkit.sample import campaigns as C
from abmkit.sample import process
from abmkit.sequential import DAY_NS, _weighted_km_risk, sequential_estimate

INF = np.iinfo(np.int64).max


def _ns(days):
    out = np.full(len(days), INF, dtype=np.int64)
    ok = np.isfinite(days) & (days < 1e4)  # "never" (rate ~0) as never, not an overflow
    out[ok] = np.round(days[ok] * DAY_NS).astype(np.int64)
    return out


@pytest.fixture(scope="module")
def planted():
    """The generator's aware->engaged process (frailty, early movers, CMP031 acting
    from its first impression on) for 15,000 synthetic accounts, with the exact
    counterfactual durations without CMP031 (common random numbers)."""
    rng = np.random.default_rng(2024)
    n = 15_000
    acc = pd.DataFrame({"size_z": rng.normal(0, 1, n), "is_target": rng.random(n) < 0.3, "icp_fit": np.ones(n)})
    cmp = C.make_campaigns(pd.Timestamp("2025-01-01", tz="UTC"), 700, rng)
    specs = cmp.set_index("campaign_id").to_dict("index")
    d = process._draw("aware->engaged", "aware", "engaged", acc, cmp, specs, rng)
    st = process.ProcessState(specs=specs)
    st.draws["aware->engaged"] = d
    D1 = st.durations("aware->engaged")
    D0 = st.durations("aware->engaged", off=["CMP031"])
    f = np.where(d.assigned["CMP031"], d.first_offset["CMP031"], np.inf)
    X = np.c_[acc["size_z"], acc["is_target"].astype(float)]
    return D1, D0, f, X


def test_sequential_recovers_pre_landmark_effect_where_landmark_is_biased(planted):
    D1, D0, f, X = planted
    # truths (common random numbers)
    tr = np.isfinite(f) & (f < D1)
    seq_truth = float(np.mean((D1[tr] <= f[tr] + 90).astype(float) - (D0[tr] <= f[tr] + 90)))
    at_risk = D1 > 30
    exp_lm = np.isfinite(f) & at_risk
    y1 = (D1 > 30) & (D1 <= 120)
    y0 = (D0 > 30) & (D0 <= 120)
    lm_truth = float(np.mean(y1[exp_lm].astype(float) - y0[exp_lm]))
    # landmark comparison: exposed vs unexposed among accounts still aware at day 30
    lm_est = float(y1[exp_lm].mean() - y1[at_risk & ~np.isfinite(f)].mean())
    r = sequential_estimate(np.zeros(len(D1), np.int64), _ns(D1), _ns(f), exp_ns=30 * DAY_NS, out_ns=90 * DAY_NS,
                            X=X)
    assert r["n_treated"] == int(tr.sum())
    assert r["rate_treated"] == pytest.approx(float((D1[tr] <= f[tr] + 90).mean()), abs=1e-12)
    assert seq_truth == pytest.approx(0.20, abs=0.03)
    # the landmark difference is far below both truths (selection of the slow exposed accounts)
    assert lm_est < lm_truth - 0.02 and lm_est < 0.8 * seq_truth
    # the sequential estimate is within 2 standard errors and 6% of its truth
    assert abs(r["adj_diff"] - seq_truth) < 2 * r["adj_se"]
    assert abs(r["adj_diff"] - seq_truth) < 0.06 * seq_truth
    assert r["adj_diff_low"] < seq_truth < r["adj_diff_high"]


def test_sequential_zero_effect_is_zero(planted):
    """A campaign with no effect whose exposure timing is random: estimate ~ 0, CI covers 0."""
    D1, _, _, X = planted
    rng = np.random.default_rng(7)
    # exposure more likely for bigger accounts (confounding by a measured covariate)
    p = 1 / (1 + np.exp(-(-0.5 + 1.2 * X[:, 0])))
    f = np.where(rng.random(len(D1)) < p, rng.uniform(0, 30, len(D1)), np.inf)
    r = sequential_estimate(np.zeros(len(D1), np.int64), _ns(D1), _ns(f), exp_ns=30 * DAY_NS, out_ns=90 * DAY_NS,
                            X=X)
    assert r["adj_diff_low"] < 0 < r["adj_diff_high"]
    assert abs(r["adj_diff"]) < 0.02


def test_weighted_km_with_unit_weights_equals_statsmodels():
    from statsmodels.duration.survfunc import SurvfuncRight
    rng = np.random.default_rng(3)
    n, G, H = 400, 10, 30
    t = rng.integers(1, 45, n)
    c = rng.integers(0, 40, n)
    event = t <= np.minimum(c, H)
    event_day = np.where(event, t, 0)
    last_day = np.where(event, t, np.minimum(c, H))
    risk, var = _weighted_km_risk(event_day, last_day, np.ones((n, G)), np.ones(n), np.full(n, 3), np.arange(n),
                                  n, H)
    sf = SurvfuncRight(np.where(event, t, np.minimum(c, H)).astype(float), event.astype(int))
    S_H = sf.surv_prob[sf.surv_times <= H][-1]
    assert risk == pytest.approx(1 - S_H, abs=1e-12)
    # influence-function variance ≈ Greenwood (same first-order expansion)
    se_gw = sf.surv_prob_se[sf.surv_times <= H][-1]
    assert np.sqrt(var) == pytest.approx(se_gw, rel=0.05)


def test_campaign_influence_sequential_design(small_sample):
    from abmkit.prepared import prepare
    from abmkit.uplift import campaign_influence
    s = small_sample
    mapping = s.truth["contact_accounts"].rename(columns={"true_account_id": "account_id"})
    ds = prepare(s.dataset, mapping=mapping)
    kw = dict(as_of=s.params["end"], cox=False, progress=False, transitions=["aware->engaged"])
    seq = campaign_influence(ds, design="sequential", **kw)
    lm = campaign_influence(ds, **kw)
    t = seq.table.set_index(["level", "unit"])
    assert set(t.loc["campaign", "design"]) == {"sequential"} and set(t.loc["channel", "design"]) == {"landmark"}
    assert set(lm.table.columns) <= set(seq.table.columns)
    # channel rows are the landmark rows
    pd.testing.assert_series_equal(t.loc["channel", "adj_diff"], lm.table.set_index(["level", "unit"])
                                   .loc["channel", "adj_diff"], check_names=False)
    # the campaign row scores the exposed-in-stage accounts of the truth
    pe = s.truth["pair_effects"].set_index(["level", "unit", "transition"])
    truth = pe.loc[("campaign", "CMP031", "aware->engaged")]
    row = t.loc[("campaign", "CMP031")]
    assert row["n_treated"] == truth["n_exposed_in_stage"]
    assert row["rate_treated"] == pytest.approx(truth["seq_rate_with"], abs=1e-9)
    assert row["adj_diff_low"] < truth["seq_att_diff"] < row["adj_diff_high"]
    assert seq.params["design"] == "sequential"
    # campaign rows with too few exposed accounts are not estimated: n/a and why, never 0
    small = seq.table[(seq.table.design == "sequential") & seq.table.n_treated.between(1, 19)]
    assert len(small)
    for c in ("rate_control", "diff", "diff_low", "p_value", "adj_diff", "adj_diff_low", "adj_p_value", "q_value"):
        assert small[c].isna().all(), c
    assert small.flag.all()
    assert all(r.startswith(f"small group (treated {n}, control ") and r.endswith("; not estimated")
               for r, n in zip(small.flag_reason, small.n_treated))
    from abmkit.formatting import influence_display_table
    shown = influence_display_table(small, max_rows=None)
    assert shown["Effect (95% interval)"].str.startswith("n/a (small group").all()
    assert shown["Note"].str.startswith("too few exposed accounts").all()
    with pytest.raises(ValueError, match="design"):
        campaign_influence(ds, design="clone", **kw)


def test_sequential_ci_uses_the_landmark_degrees_of_freedom():
    """Both CIs use a Student t reference whose df is the smallest cell of treated and
    control *accounts* with and without the event (as the landmark design's adjusted
    difference), an account counted once however many daily trials it joins.
    By hand: 10 treated (touched on day 5; 4 move on day 20, 6 never), 3 never-touched
    accounts moving on day 10, 50 never moving; the treated are also controls in the
    trials of days 0-4 without an event there (their move comes after their own touch).
    Cells: 4, 6 (treated); 3, 60 (63 control accounts) -> df 3 (counting control rows of
    the daily trials instead, the 3 movers would be 30 events and df 4)."""
    from scipy import stats
    D = np.r_[np.full(4, 20.0), np.full(6, np.inf), np.full(3, 10.0), np.full(50, np.inf)]
    f = np.r_[np.full(10, 5.0), np.full(53, np.inf)]
    r = sequential_estimate(np.zeros(len(D), np.int64), _ns(D), _ns(f), exp_ns=30 * DAY_NS, out_ns=90 * DAY_NS)
    assert (r["n_treated"], r["events_treated"], r["n_control"]) == (10, 4, 63)
    assert r["adj_df"] == 3
    t3 = stats.t.isf(0.025, 3)
    assert r["adj_diff_high"] - r["adj_diff"] == pytest.approx(t3 * r["adj_se"], rel=1e-9)
    assert r["diff_high"] - r["diff"] == pytest.approx(t3 * r["diff_se"], rel=1e-9)
    assert r["adj_p_value"] == pytest.approx(2 * stats.t.sf(abs(r["adj_diff"] / r["adj_se"]), 3), rel=1e-9)


def test_small_group_is_not_estimated():
    """Fewer treated (or control) accounts than min_group_size: counts and the treated
    share, no comparison, and the reason (the hand example above: 10 treated)."""
    D = np.r_[np.full(4, 20.0), np.full(6, np.inf), np.full(3, 10.0), np.full(50, np.inf)]
    f = np.r_[np.full(10, 5.0), np.full(53, np.inf)]
    kw = dict(exp_ns=30 * DAY_NS, out_ns=90 * DAY_NS)
    r = sequential_estimate(np.zeros(len(D), np.int64), _ns(D), _ns(f), min_group_size=11, **kw)
    assert (r["n_treated"], r["n_control"], r["rate_treated"]) == (10, 63, 0.4)
    assert r["notes"] == ["small group (treated 10, control 63; minimum 11)", "not estimated"]
    assert not {"diff", "adj_diff", "rate_control", "p_value"} & set(r)
    full = sequential_estimate(np.zeros(len(D), np.int64), _ns(D), _ns(f), min_group_size=10, **kw)
    assert "adj_diff" in full and full["notes"] == []
    # the 3 movers are controls with the event in the trials of days 0-9: 30 control rows
    assert r["events_control"] == full["events_control"] == 30


@pytest.mark.parametrize("exp_days,out_days", [(30, 90), (12, 11)])
def test_per_account_km_equals_the_row_form(planted, monkeypatch, exp_days, out_days):
    """The weighted KM summed per account (G x G work per account) gives what the
    rows x window-days form gives, risk and variance, weighted and unweighted."""
    import abmkit.sequential as S
    D1, _, f, X = planted
    n = 4000
    args = (np.zeros(n, np.int64), _ns(D1[:n]), _ns(f[:n] * exp_days / 30))
    kw = dict(exp_ns=exp_days * DAY_NS, out_ns=out_days * DAY_NS, X=X[:n])
    fast = sequential_estimate(*args, **kw)
    monkeypatch.setattr(S, "_km_risk_by_account", lambda *a, **k: None)
    slow = sequential_estimate(*args, **kw)
    assert fast["n_control"] > 1000 and np.isfinite(slow["adj_diff"])
    for k in ("rate_control", "diff_se", "rate_control_adj", "adj_se", "adj_diff_low", "adj_p_value"):
        assert fast[k] == pytest.approx(slow[k], rel=1e-11, abs=1e-14), k


def test_exposure_model_equals_the_dense_design_fit():
    """The grid form of the pooled logistic fit equals the Newton fit on the explicit
    (account, bin)-row design matrix (the reference below)."""
    from abmkit.sequential import _binomial_logit
    rng = np.random.default_rng(5)
    n, nb = 300, 6
    X = np.c_[rng.normal(size=n), rng.random(n) < 0.4]
    m = rng.integers(0, 6, (n, nb)).astype(float)
    p = 1 / (1 + np.exp(-(-2.5 + 0.3 * np.arange(nb)[None, :] + 0.8 * X[:, :1])))
    k = rng.binomial(m.astype(int), p).astype(float)
    k[:, 2] = 0  # a bin without any exposure: finite through the ridge

    def dense(k, m, X):
        ii, bb = np.nonzero(m > 0)
        Dm = np.column_stack([np.ones(len(ii))] + [(bb == j).astype(float) for j in range(1, nb)] + [X[ii]])
        kk, mm = k[ii, bb], m[ii, bb]
        b, mu_old = np.zeros(Dm.shape[1]), np.zeros(len(ii))
        for _ in range(40):
            q = 1 / (1 + np.exp(-np.clip(Dm @ b, -30, 30)))
            mu = mm * q
            if np.max(np.abs(mu - mu_old)) < 1e-7:
                break
            mu_old = mu
            H = (Dm * (mu * (1 - q))[:, None]).T @ Dm + 1e-4 * np.eye(Dm.shape[1])
            b = b + np.linalg.solve(H, Dm.T @ (kk - mu) - 1e-4 * b)
        return b

    np.testing.assert_allclose(_binomial_logit(k, m, X), dense(k, m, X), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(_binomial_logit(k, m, None), dense(k, m, X[:, :0]), rtol=1e-9, atol=1e-9)
