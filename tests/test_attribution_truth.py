"""Planted channel incrementality (abmkit.sample.incrementality) against a brute-force
counterfactual, its consistency with the generated data, and the model-vs-truth
comparison (abmkit.attribution.truth)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from abmkit.sample import incrementality as I


def _brute_force(acc, ready, tp, horizon, e, drop=None):
    """Per account, per day: the hazard from an explicit scan of the account's touches
    (a touch at s counts on day d when d - window <= s < d - lag), with the touches of
    channel ``drop`` deleted from the table. Returns P(convert by the end) and the day
    of the first opportunity with the same E (NaN: none)."""
    if isinstance(drop, str):
        tp = tp[tp["channel"] != drop]
    elif drop is not None:   # a boolean mask of the touches to delete
        tp = tp[~np.asarray(drop)]
    n_days = int(np.ceil(horizon))
    p_conv, day = {}, {}
    by_acct = {a: g for a, g in tp.groupby("acct")}
    for i in np.flatnonzero(~np.isnan(ready)):
        first = int(np.floor(ready[i])) + 1
        if first >= n_days:
            continue
        mine = by_acct.get(i, tp.iloc[:0])
        days = np.arange(first, n_days)
        eta = np.full(len(days), np.log(I.BASE_DAILY_HAZARD) + I.SIZE_LOG_HR * acc["size_z"].iloc[i]
                      + I.TARGET_LOG_HR * float(acc["is_target"].iloc[i]))
        for c, beta in I.CHANNEL_EFFECTS.items():
            s = mine.loc[mine["channel"] == c, "t"].to_numpy()
            # every (day, touch) pair checked explicitly
            hit = ((days[:, None] - I.WINDOW_DAYS <= s[None, :]) & (s[None, :] < days[:, None] - I.LAG_DAYS)).any(axis=1)
            eta = eta + beta * hit
        cum = np.cumsum(np.exp(eta))
        reached = np.flatnonzero(cum >= e[i])
        p_conv[i], day[i] = 1 - np.exp(-cum[-1]), float(days[reached[0]]) if len(reached) else np.nan
    return pd.Series(p_conv), pd.Series(day)


@pytest.fixture(scope="module")
def tiny_case():
    """The inputs of the truth computation taken from a small generated sample: its
    accounts, sales-ready entries and recorded touches (a few accounts, so the
    brute force stays fast)."""
    from abmkit.sample import generate
    s = generate(n_accounts=120, seed=4)
    acc = s.dataset.accounts.reset_index(drop=True)
    acc = acc.assign(size_z=(np.log(acc["employee_count"]) - np.log(300)) / 1.3)
    t0 = pd.Timestamp(s.params["start"], tz="UTC")
    horizon = float((pd.Timestamp(s.params["end"], tz="UTC") - t0).days)
    se = s.truth["stage_entries"]
    sr = se[se["stage"] == "sales_ready"].set_index("account_id")["entered_at"]
    ready = ((sr.reindex(acc["account_id"]) - t0) / pd.Timedelta(days=1)).to_numpy(dtype=float)
    ca = s.truth["contact_accounts"].set_index("contact_id")["true_account_id"]
    tpts = s.dataset.touchpoints
    acct_id = tpts["account_id"].where(tpts["account_id"].notna(), tpts["contact_id"].map(ca))
    tp = pd.DataFrame({"acct": pd.Index(acc["account_id"]).get_indexer(acct_id),
                       "t": ((tpts["occurred_at"] - t0) / pd.Timedelta(days=1)).to_numpy(),
                       "channel": tpts["channel"].astype(object).to_numpy(),
                       "campaign_id": tpts["campaign_id"].astype(object).to_numpy()})
    tp = tp[tp["acct"] >= 0].reset_index(drop=True)
    e = np.random.default_rng(0).exponential(1.0, len(acc))
    amount = np.full(len(acc), 1000.0)
    return acc, ready, tp, horizon, e, amount, s


def test_truth_equals_brute_force_counterfactual(tiny_case):
    acc, ready, tp, horizon, e, amount, _ = tiny_case
    truth = I.channel_truth(acc, ready, tp, horizon, e, amount).set_index("channel")
    p, day = _brute_force(acc, ready, tp, horizon, e)
    assert len(p) > 10 and truth["accounts_at_risk"].iloc[0] == len(p)
    assert truth["expected_conversions"].iloc[0] == pytest.approx(p.sum(), rel=1e-9)
    for c in list(I.CHANNEL_EFFECTS) + ["display", "sales_outreach"]:
        p_c, day_c = _brute_force(acc, ready, tp, horizon, e, drop=c)
        lost = float((p - p_c).sum())
        assert truth.loc[c, "expected_conversions_lost"] == pytest.approx(lost, rel=1e-9, abs=1e-12), c
        assert truth.loc[c, "expected_pipeline_lost"] == pytest.approx(1000.0 * lost, rel=1e-9, abs=1e-9), c
        realised = int((day.notna() & day_c.isna()).sum())
        assert truth.loc[c, "realised_conversions_lost"] == realised, c
    assert truth.loc[list(I.CHANNEL_EFFECTS), "expected_conversions_lost"].gt(0).all()
    # the first-opportunity days drawn by the generator's function agree with the brute force
    created, _ = I.first_opportunities(acc, ready, tp, horizon, np.random.default_rng(0))
    at = day.index.to_numpy()
    np.testing.assert_array_equal(created[at], day.to_numpy())


def test_campaign_truth_equals_brute_force_counterfactual(tiny_case):
    acc, ready, tp, horizon, e, amount, s = tiny_case
    cmp = s.dataset.campaigns
    truth = I.campaign_truth(acc, ready, tp, horizon, e, amount, cmp).set_index("campaign_id")
    assert list(truth.index) == list(cmp["campaign_id"])
    p, day = _brute_force(acc, ready, tp, horizon, e)
    eff = cmp[cmp["channel"].isin(list(I.CHANNEL_EFFECTS))]["campaign_id"]
    checked = 0
    for cid in list(eff) + list(cmp.loc[~cmp["channel"].isin(list(I.CHANNEL_EFFECTS)), "campaign_id"][:2]):
        p_k, day_k = _brute_force(acc, ready, tp, horizon, e, drop=(tp["campaign_id"] == cid).to_numpy())
        lost = float((p - p_k).sum())
        assert truth.loc[cid, "expected_conversions_lost"] == pytest.approx(lost, rel=1e-9, abs=1e-12), cid
        assert truth.loc[cid, "expected_pipeline_lost"] == pytest.approx(1000.0 * lost, rel=1e-9, abs=1e-9), cid
        assert truth.loc[cid, "realised_conversions_lost"] == int((day.notna() & day_k.isna()).sum()), cid
        checked += lost > 0
    assert checked >= 2   # some campaigns on effective channels matter in this sample
    # a campaign loses no more than its whole channel
    ch = I.channel_truth(acc, ready, tp, horizon, e, amount).set_index("channel")["expected_conversions_lost"]
    assert (truth["expected_conversions_lost"] <= ch.reindex(truth["channel"]).to_numpy() + 1e-12).all()


def test_generated_sample_carries_consistent_incrementality(small_sample):
    s = small_sample
    truth = s.truth["channel_incrementality"].set_index("channel")
    eff = truth["is_effective"]
    assert set(eff[eff].index) == set(I.CHANNEL_EFFECTS)
    assert (truth.loc[~eff, "expected_conversions_lost"] == 0).all()
    assert (truth.loc[eff, "expected_conversions_lost"] > 0).all()
    assert truth["share_of_lost"].sum() == pytest.approx(1.0)
    # first opportunities open after the sales-ready entry; some sales-ready accounts never convert
    opp = s.dataset.opportunities
    first = opp.groupby("account_id")["created_at"].min()
    se = s.truth["stage_entries"]
    sr = se[se["stage"] == "sales_ready"].set_index("account_id")["entered_at"]
    assert (first.index.isin(sr.index)).all()
    assert (first > sr.reindex(first.index)).all()
    n_ready = len(sr)
    assert 0 < len(first) < n_ready
    # realised losses are first opportunities that happened
    assert (truth["realised_conversions_lost"] <= len(first)).all()
    camp = s.truth["campaign_incrementality"]
    assert set(camp["campaign_id"]) == set(s.dataset.campaigns["campaign_id"])
    assert (camp.loc[camp["log_hazard_ratio"] == 0, "expected_conversions_lost"] == 0).all()
    assert camp["expected_conversions_lost"].gt(0).any()
    # the written params document the planted hazard
    assert s.params["incrementality"]["channel_log_hazard_ratio"] == I.CHANNEL_EFFECTS


def test_reverse_touches_sit_just_before_first_opportunities(small_sample):
    from abmkit.sample.touches import REVERSE_DAYS
    s = small_sample
    tp = s.dataset.touchpoints
    ca = s.truth["contact_accounts"].set_index("contact_id")["true_account_id"]
    acct = tp["account_id"].where(tp["account_id"].notna(), tp["contact_id"].map(ca))
    first = s.dataset.opportunities.groupby("account_id")["created_at"].min()
    demo = tp[(tp["touch_type"] == "demo_request")].assign(acct=acct)
    gap = (first.reindex(demo["acct"]).to_numpy() - demo["occurred_at"].to_numpy()) / pd.Timedelta(days=1)
    # demo requests cluster in the days before the first opportunity (reverse causation)
    near = (gap > 0) & (gap <= REVERSE_DAYS)
    assert near.sum() > 0.3 * len(first)


def test_compare_to_truth_distance_and_coverage_by_hand():
    from abmkit.attribution.truth import compare_to_truth, total_variation
    truth = pd.DataFrame({"channel": ["event", "webinar", "display"],
                          "expected_conversions_lost": [30.0, 10.0, 0.0]})

    class R:
        pass
    r = R()
    r.shares = pd.DataFrame({"last_touch": [0.1, 0.2, 0.7], "incremental": [0.7, 0.3, 0.0]},
                            index=pd.Index(["event", "webinar", "display"], name="channel"))
    r.intervals = pd.DataFrame({
        "channel": ["event", "webinar", "display"] * 2, "model": ["last_touch"] * 3 + ["incremental"] * 3,
        "low": [0.05, 0.1, 0.6, 0.6, 0.2, 0.0], "high": [0.15, 0.3, 0.8, 0.8, 0.35, 0.0]})
    c = compare_to_truth(r, truth)
    m = c.models.set_index("model")
    # truth shares 0.75 / 0.25 / 0: last touch moves 0.65 + 0.05 + 0.7 = 1.4 -> TV 0.7
    assert m.loc["last_touch", "tv_distance"] == pytest.approx(0.7)
    assert m.loc["incremental", "tv_distance"] == pytest.approx(0.05)
    assert m.loc["incremental", "channels_inside"] == 3 and m.loc["last_touch", "channels_inside"] == 1
    assert m.loc["incremental", "kind"] == "data-driven" and m.loc["last_touch", "kind"] == "rule"
    assert m.loc["last_touch", "true_top_channel"] == "event" and m.loc["last_touch", "top_channel"] == "display"
    assert c.models["model"].iloc[0] == "incremental"
    assert total_variation(pd.Series({"a": 1.0}), pd.Series({"b": 1.0})) == pytest.approx(1.0)


def test_read_channel_truth(small_sample_dir, tmp_path):
    from abmkit.attribution.truth import read_channel_truth
    t = read_channel_truth(small_sample_dir / "truth")
    assert t is not None and {"channel", "expected_conversions_lost", "share_of_lost"} <= set(t.columns)
    assert read_channel_truth(tmp_path) is None and read_channel_truth(None) is None
    (tmp_path / "channel_incrementality.csv").write_text("channel,x\na,1\n")
    with pytest.raises(ValueError, match="expected_conversions_lost"):
        read_channel_truth(tmp_path)


def test_notebook_03_shows_the_truth_table(resolved_sample_dir, small_sample_dir, tmp_path):
    import papermill as pm
    from pathlib import Path

    nb = Path(__file__).resolve().parents[1] / "notebooks" / "03_attribution_model_comparison.ipynb"
    out_dir = tmp_path / "report"
    pm.execute_notebook(str(nb), str(tmp_path / "03.ipynb"), kernel_name="python3", cwd=str(nb.parent),
                        progress_bar=False,
                        parameters={"data_dir": str(resolved_sample_dir), "quarter": "2026Q3",
                                    "output_dir": str(out_dir), "n_boot": 20,
                                    "truth_dir": str(Path(small_sample_dir) / "truth")})
    table = pd.read_csv(out_dir / "tables" / "attribution_truth.csv")
    assert {"model", "channel", "model_share", "true_share", "truth_inside"} <= set(table.columns)
    assert {"incremental", "last_touch", "markov"} <= set(table["model"])
    planted = pd.read_csv(Path(small_sample_dir) / "truth" / "channel_incrementality.csv").set_index("channel")
    got = table.drop_duplicates("channel").set_index("channel")["true_share"]
    np.testing.assert_allclose(got.reindex(planted.index).fillna(0), planted["share_of_lost"], atol=1e-9)
    assert np.allclose(table.groupby("model")["model_share"].sum(), 1.0)
    # the incremental model's own quantity next to the planted one
    inc = pd.read_csv(out_dir / "tables" / "attribution_incremental_truth.csv").set_index("channel")
    np.testing.assert_allclose(inc["planted_conversions_lost"], planted.loc[inc.index, "expected_conversions_lost"],
                               rtol=1e-9)
    est = inc[inc["truth_inside"].notna()]
    assert len(est) > 3 and set(I.CHANNEL_EFFECTS) <= set(est.index)
    assert (est["truth_inside"].astype(bool) == ((est["low"] <= est["planted_conversions_lost"])
                                                & (est["planted_conversions_lost"] <= est["high"]))).all()


def test_incremental_vs_truth_by_hand():
    from abmkit.attribution.truth import incremental_vs_truth

    class R:
        pass
    r = R()
    r.channels = pd.DataFrame({"channel": ["event", "webinar", "display", "direct"],
                               "estimable": [True, True, False, True],
                               "why_not": [None, None, "every at-risk day was exposed to it", None],
                               "log_hazard_ratio": [0.9, 0.2, np.nan, 0.1],
                               "incremental_conversions": [9.0, 2.0, np.nan, 1.5],
                               "low": [6.0, 0.5, np.nan, -1.0], "high": [12.0, 4.0, np.nan, 3.0]})
    truth = pd.DataFrame({"channel": ["event", "webinar", "display", "direct", "video"],
                          "log_hazard_ratio": [1.0, 0.6, 0.0, 0.0, 0.0],
                          "expected_conversions_lost": [10.0, 15.0, 0.0, 0.0, 0.0]})
    t = incremental_vs_truth(r, truth).set_index("channel")
    assert list(t.index) == ["webinar", "event", "display", "direct"]   # by planted loss; video not in the data
    assert t["truth_inside"].tolist()[:2] == [False, True]
    assert pd.isna(t.loc["display", "truth_inside"]) and bool(t.loc["direct", "truth_inside"])
    assert t.loc["webinar", "planted_log_hazard_ratio"] == 0.6 and t.loc["event", "planted_conversions_lost"] == 10.0
