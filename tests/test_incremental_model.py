"""The incremental attribution model (abmkit.attribution.incremental) recovers a
planted effect on a simulated case, ignores reverse-caused touches thanks to its lag,
refuses channels it cannot estimate, and plugs into compare_models."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

T0 = pd.Timestamp("2025-01-01", tz="UTC")
HORIZON = 500
BETA_EVENT = 0.8


def _simulate(n=1200, seed=11):
    """Accounts at risk from day R; a rare channel (event) with a real effect while a
    touch is 7-60 days old, a frequent one (display) with none, and sales calls without
    effect: some at random, more in the 5 days before each first opportunity (caused by it). Written independently of the
    kit: a day-by-day loop over all accounts at once."""
    rng = np.random.default_rng(seed)
    emp = np.round(np.exp(rng.normal(np.log(300), 1.0, n))).astype(int) + 1
    z = (np.log(emp) - np.log(emp).mean()) / np.log(emp).std()
    target = rng.random(n) < 0.3
    R = rng.uniform(60, 200, n)
    touches = []
    for ch, rate in (("event", 0.012), ("display", 0.4), ("webinar", 0.02), ("sales_outreach", 0.03)):
        k = rng.poisson(rate * (HORIZON - (R - 60)))
        acct = np.repeat(np.arange(n), k)
        t = (R - 60)[acct] + rng.random(len(acct)) * (HORIZON - (R - 60))[acct]
        touches.append(pd.DataFrame({"acct": acct, "t": t, "channel": ch}))
    tp = pd.concat(touches, ignore_index=True)
    ev = tp[tp["channel"] == "event"]
    # x[i, d] = an event touch at s with d - 60 <= s < d - 7
    x = np.zeros((n, HORIZON), dtype=bool)
    for i, s in zip(ev["acct"].to_numpy(), ev["t"].to_numpy()):
        days = np.arange(HORIZON)
        x[i] |= (days - 60 <= s) & (s < days - 7)
    base = np.log(0.004) + 0.3 * z + 0.3 * target
    first = np.floor(R).astype(int) + 1
    live = np.arange(HORIZON)[None, :] >= first[:, None]
    lam = np.where(live, np.exp(base[:, None] + BETA_EVENT * x), 0.0)
    lam0 = np.where(live, np.exp(base[:, None]), 0.0)
    cum = np.cumsum(lam, axis=1)
    e = rng.exponential(1.0, n)
    hit = cum >= e[:, None]
    created = np.where(hit.any(axis=1), np.argmax(hit, axis=1), -1)
    true_lost = float((np.exp(-lam0.sum(axis=1)) - np.exp(-cum[:, -1])).sum())
    conv = np.flatnonzero(created >= 0)
    nc = rng.integers(1, 4, len(conv))
    ca = np.repeat(conv, nc)
    calls = pd.DataFrame({"acct": ca, "t": created[ca] - rng.uniform(0.1, 5.0, len(ca)), "channel": "sales_outreach"})
    tp = pd.concat([tp, calls], ignore_index=True)
    ids = np.array([f"A{i:05d}" for i in range(n)], dtype=object)
    from abmkit.schema import Dataset
    ds = Dataset.from_frames(
        accounts=pd.DataFrame({"account_id": ids, "account_name": ids, "employee_count": emp, "is_target": target}),
        touchpoints=pd.DataFrame({
            "touchpoint_id": [f"T{i:07d}" for i in range(len(tp))], "account_id": ids[tp["acct"].to_numpy()],
            "occurred_at": T0 + pd.to_timedelta(np.round(tp["t"].to_numpy() * 1440), unit="min"),
            "channel": tp["channel"].to_numpy(), "touch_type": np.where(tp["channel"] == "sales_outreach", "call",
                                                                        "impression")}),
        opportunities=pd.DataFrame({"opportunity_id": [f"O{i:05d}" for i in conv], "account_id": ids[conv],
                                    "created_at": T0 + pd.to_timedelta(created[conv], unit="D"),
                                    "amount": 1000.0}))
    entries = pd.DataFrame({"account_id": ids, "entered_at": T0 + pd.to_timedelta(np.round(R * 1440), unit="min")})
    return ds, entries, true_lost


@pytest.fixture(scope="module")
def simulated():
    import abmkit
    ds, entries, true_lost = _simulate()
    return abmkit.prepare(ds), entries, true_lost


def test_recovers_planted_effect_and_ignores_reverse_caused_touches(simulated):
    from abmkit.attribution.incremental import incremental_attribution
    data, entries, true_lost = simulated
    res = incremental_attribution(data, stage_entries=entries, n_boot=100, seed=3)
    ch = res.channels.set_index("channel")
    ev = ch.loc["event"]
    assert ev["lhr_low"] <= BETA_EVENT <= ev["lhr_high"]
    assert abs(ev["log_hazard_ratio"] - BETA_EVENT) < 0.2
    assert ev["low"] <= true_lost <= ev["high"]
    assert abs(ev["incremental_conversions"] - true_lost) < 0.25 * true_lost
    # the calls come in the 5 days before the opportunity: outside the 7-day lag
    so = ch.loc["sales_outreach"]
    assert so["lhr_low"] <= 0 <= so["lhr_high"] and abs(so["log_hazard_ratio"]) < 0.25
    assert ch.loc["webinar", "lhr_low"] <= 0 <= ch.loc["webinar", "lhr_high"]
    # display is in every at-risk window: not estimable, said so, no share
    assert not ch.loc["display", "estimable"] and "exposed" in ch.loc["display", "why_not"]
    assert res.info["first_opportunities"] == len(data.opportunities)
    assert ev["share"] == pytest.approx(ch["share"].max())


def test_without_the_lag_the_reverse_caused_calls_look_causal(simulated):
    # the trap the lag avoids: counting touches up to the conversion credits the calls
    from abmkit.attribution.incremental import incremental_attribution
    data, entries, _ = simulated
    res = incremental_attribution(data, stage_entries=entries, lag_days=0, n_boot=0)
    so = res.channels.set_index("channel").loc["sales_outreach"]
    assert so["log_hazard_ratio"] > 1.0 and so["incremental_conversions"] > 50


def test_removal_effects_equal_a_direct_recomputation(simulated):
    # Σ_i exp(-Λ_i without c) - exp(-Λ_i), with Λ recomputed from the panel rows by hand
    from abmkit.attribution.incremental import exposure_panel, fit_hazard, removal_effects
    data, entries, _ = simulated
    p = exposure_panel(data, stage_entries=entries)
    beta = fit_hazard(p)
    lost, expected = removal_effects(p, beta)
    for j, col in enumerate(p.channel_cols):
        b = beta.copy()
        b[col] = 0.0
        lam = p.days * np.exp(p.X @ beta)
        lam0 = p.days * np.exp(p.X @ b)
        cum = pd.Series(lam).groupby(p.acct).sum()
        cum0 = pd.Series(lam0).groupby(p.acct).sum()
        assert lost[j] == pytest.approx(float((np.exp(-cum0) - np.exp(-cum)).sum()), rel=1e-9)
    assert expected == pytest.approx(float((1 - np.exp(-pd.Series(p.days * np.exp(p.X @ beta)).groupby(p.acct).sum()))
                                           .sum()), rel=1e-9)


def test_exposure_panel_counts_days_and_first_opportunities(simulated):
    from abmkit.attribution.incremental import exposure_panel
    data, entries, _ = simulated
    p = exposure_panel(data, stage_entries=entries)
    assert p.events.sum() == len(data.opportunities)
    start = np.floor((pd.to_datetime(entries["entered_at"]) - T0) / pd.Timedelta(days=1)).to_numpy() + 1
    # every account is followed from its first at-risk day to the last day of the data
    last = int(np.ceil((data.data_end - T0) / pd.Timedelta(days=1))) - 1
    assert p.days.sum() == pytest.approx(float((last - start + 1).sum()))


def test_compare_models_adds_incremental_with_conserved_credits(small_sample):
    import abmkit
    from abmkit.attribution import compare_models
    ca = small_sample.truth["contact_accounts"].rename(columns={"true_account_id": "account_id"})
    data = abmkit.prepare(small_sample.dataset, mapping=ca[["contact_id", "account_id"]])
    res = compare_models(data, ["linear", "incremental"], n_boot=20, seed=1)
    assert "incremental" in res.shares.columns
    assert res.shares["incremental"].sum() == pytest.approx(1.0)
    cons = res.conservation.set_index("model")
    assert bool(cons.loc["incremental", "ok"])
    iv = res.intervals[res.intervals["model"] == "incremental"]
    assert iv["low"].notna().any() and (iv["low"] <= iv["share"] + 1e-12).all()
    assert res.info["incremental"]["accounts_at_risk"] > 0
    # the fitted model rides along: its positive conversions lost, normalised, are the shares
    lost = res.incremental.channels.set_index("channel")["incremental_conversions"].reindex(res.shares.index)
    pos = lost.fillna(0).clip(lower=0)
    np.testing.assert_allclose(res.shares["incremental"], pos / pos.sum(), atol=1e-12)
    assert compare_models(data, ["linear"], n_boot=0).incremental is None
