"""KPIs: the worked examples of DESIGN §6 reproduced exactly, and every dataset KPI
checked against counts done by hand on a tiny dataset."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from abmkit import kpis
from abmkit.prepared import MQARule, prepare
from abmkit.schema import Dataset, size_band


# ----------------------------------------------------------------- DESIGN §6 worked examples
def test_market_reach_example():
    r = kpis.market_reach_from_counts(600, 1000)
    assert r.value == 0.6 and (r.numerator, r.denominator) == (600, 1000)


def test_account_engagement_example():
    assert kpis.account_engagement_from_counts([300, 150, 50]).value == 500


def test_influenced_pipeline_example():
    assert kpis.influenced_pipeline_from_counts([50_000, 75_000, 100_000]).value == 225_000


def test_pipeline_velocity_example():
    prev = kpis.pipeline_velocity_from_counts([120, 120]).value
    cur = kpis.pipeline_velocity_from_counts([100, 90, 110]).value
    assert (prev, cur) == (120, 100)
    assert kpis.velocity_change(prev, cur) == -20


def test_win_rate_example():
    assert kpis.win_rate_from_counts(10, 50).value == 0.2


def test_average_deal_size_example():
    assert kpis.average_deal_size_from_counts(1_000_000, 10).value == 100_000


def test_retention_example():
    assert kpis.retention_rate_from_counts(180, 200).value == 0.9


def test_product_adoption_example():
    assert kpis.product_adoption_from_counts(70, 100).value == 0.7


def test_upsell_example():
    assert kpis.upsell_rate_from_counts(15, 50).value == 0.3


def test_cross_sell_example():
    assert kpis.cross_sell_rate_from_counts(10, 40).value == 0.25


def test_nrr_example():
    r = kpis.net_revenue_retention_from_counts(500_000, 50_000, 20_000)
    assert r.value == pytest.approx(1.06, abs=0) or r.value == 530_000 / 500_000
    assert round(r.value * 100) == 106 and r.numerator == 530_000 and r.denominator == 500_000


def test_mqa_accounts_counts_rule():
    # the KPI is the count of MQA accounts; numerator / denominator is their share of the population
    r = kpis.mqa_accounts_from_counts(50, 1000)
    assert (r.value, r.numerator, r.denominator) == (50, 50, 1000)
    assert r.numerator / r.denominator == 0.05 and r.unit == "accounts"


def test_other_formulas():
    assert kpis.buying_group_coverage_from_counts(3, 12).value == 0.25
    assert kpis.customer_lifetime_value_from_counts(1_000, 0.25).value == 4_000
    assert kpis.cost_per_acquired_account_from_counts(90_000, 3).value == 30_000
    assert kpis.roi_from_counts(300_000, 100_000).value == 2.0
    assert math.isnan(kpis.win_rate_from_counts(0, 0).value)  # nothing closed: undefined, not 0
    assert kpis.mqa_to_win_rate_from_counts(10, 50).value == 0.2
    assert math.isnan(kpis.mqa_to_win_rate_from_counts(0, 0).value)  # empty cohort: undefined, not 0


def test_every_kpi_has_formula_docstring():
    for name, fn in kpis.KPI_FUNCTIONS.items():
        assert fn.__doc__ and "=" in fn.__doc__, name
    assert len(kpis.KPI_FUNCTIONS) == 22  # 20 + new_mqas + NRR quarter on quarter (win_rate is won / closed opps; mqa_to_win_rate the cohort rate)
    assert "engaged_accounts" not in kpis.KPI_FUNCTIONS and {"mqa_accounts", "new_mqas"} <= set(kpis.KPI_FUNCTIONS)
    assert set(kpis.KPI_POPULATION) == set(kpis.KPI_FUNCTIONS)


# ----------------------------------------------------------------- tiny dataset, hand counts
def _ts(s):
    return pd.Timestamp(s, tz="UTC")


@pytest.fixture(scope="module")
def tiny() -> Dataset:
    accounts = pd.DataFrame({
        "account_id": ["a1", "a2", "a3", "a4"],
        "account_name": ["Acme", "<script>alert(1)</script>", "Cyan", "Dune"],
        "industry": ["software", "software", "retail", None],
        "employee_count": [10, 300, 6000, None],
        "tier": [1, 2, 1, 3],
        "is_target": [True, True, True, False],
    })
    contacts = pd.DataFrame({
        "contact_id": [f"c{i}" for i in range(1, 8)],
        "persona": ["decision_maker"] * 3 + ["influencer", "decision_maker", "decision_maker", "user"],
        "crm_account_id": ["a1", "a1", "a1", "a1", "a2", "a2", "a3"],
    })
    T = []

    def t(i, when, ch, tt, c=None, a=None, sec=None):
        T.append({"touchpoint_id": f"t{i:02d}", "occurred_at": when, "channel": ch, "touch_type": tt,
                  "contact_id": c, "account_id": a, "engagement_seconds": sec})

    # Q3 2026: a1 gets 3 decision makers engaged (MQA), a2 two decision makers (not MQA)
    t(1, "2026-07-02", "email", "email_click", c="c1", sec=60)
    t(2, "2026-07-05", "webinar", "webinar_attended", c="c2", sec=1800)
    t(3, "2026-08-01", "event", "event_attended", c="c3", sec=1740)
    t(4, "2026-08-02", "email", "email_open", c="c4")             # not engagement
    t(5, "2026-08-03", "paid_search", "click", c="c5", sec=0)
    t(6, "2026-08-04", "paid_search", "click", c="c6")
    t(7, "2026-08-05", "display", "impression", a="a3")           # reach only
    t(8, "2026-09-30", "display", "impression", a="a4")           # a4 not a target
    # Q2 2026
    t(9, "2026-04-10", "email", "email_click", c="c1", sec=600)
    t(10, "2026-05-10", "display", "impression", a="a2")
    touchpoints = pd.DataFrame(T)
    opportunities = pd.DataFrame({
        "opportunity_id": ["o1", "o2", "o3", "o4", "o5"],
        "account_id": ["a1", "a2", "a3", "a1", "a2"],
        "created_at": ["2026-07-10", "2026-08-20", "2026-07-15", "2026-01-10", "2026-03-01"],
        "closed_at": ["2026-09-10", None, "2026-09-14", "2026-05-10", "2026-08-30"],
        "is_closed": [True, False, True, True, True],
        "is_won": [True, False, False, True, True],
        "amount": [50_000, 75_000, 100_000, 20_000, 30_000],
        "opportunity_type": ["upsell", "new_business", "new_business", "new_business", "cross_sell"],
    })
    campaigns = pd.DataFrame({
        "campaign_id": ["k1", "k2"], "campaign_name": ["Q3 push", "Always on"], "channel": ["email", "display"],
        "start_date": ["2026-07-01", "2026-06-01"], "end_date": ["2026-09-30", "2026-07-30"],
        "cost": [9_200.0, 6_000.0],
    })
    # monthly recurring revenue: a1 customer since May (expands), a2 customer since March (churns in Sep)
    revenue = pd.DataFrame({
        "account_id": ["a1", "a1", "a1", "a2", "a2", "a2"],
        "period_start": ["2026-06-01", "2026-07-01", "2026-09-01", "2026-06-01", "2026-08-01", "2026-09-01"],
        "recurring_revenue": [1_000.0, 1_000.0, 1_500.0, 500.0, 400.0, 0.0],
        "active_users": [5, 6, 7, 0, 0, 0],
    })
    return Dataset.from_frames(accounts=accounts, contacts=contacts, touchpoints=touchpoints,
                               opportunities=opportunities, campaigns=campaigns, revenue=revenue)


@pytest.fixture(scope="module")
def mapping(tiny):
    c = tiny.contacts
    return pd.DataFrame({"contact_id": c.contact_id, "account_id": c.crm_account_id})


@pytest.fixture(scope="module")
def data(tiny, mapping):
    """tiny resolved once: its CRM mapping as given, the default MQA rule."""
    return prepare(tiny, mapping=mapping)


@pytest.fixture(scope="module")
def wide(tiny, mapping):
    """tiny with a 92-day MQA window: at the Q3 end (2026-10-01) it reaches back to
    (2026-07-01, 2026-10-01], so c1's 2026-07-02 click still counts."""
    return prepare(tiny, mapping=mapping, mqa=MQARule(window_days=92))


def _k(name, data, q="2026Q3"):
    return kpis.KPI_FUNCTIONS[name](data, quarter=q)


def test_reach_and_engagement_by_hand(data):
    r = _k("market_reach", data)
    assert (r.numerator, r.denominator) == (3, 3)           # a1, a2, a3 targets all touched; a4 not a target
    assert _k("market_reach", data, "2026Q2").value == pytest.approx(2 / 3)
    e = _k("account_engagement", data)
    assert e.value == 5                                      # t1,t2,t3,t5,t6 (not the open, not impressions)
    x = _k("audience_exposure_time", data)
    assert x.numerator == 3600 and x.value == 1.0
    b = _k("buying_group_coverage", data)
    assert (b.numerator, b.denominator) == (5, 7)            # c4 only opened, c7 never touched


def test_mqa_accounts_new_mqas_and_win_rate_by_hand(data, wide):
    # Decision makers' engagement touches: a1 c1 (2026-04-10, 2026-07-02), c2 (07-05), c3 (08-01);
    # a2 c5 (08-03), c6 (08-04) -- only two decision makers, never an MQA. Targets: a1, a2, a3 (3).
    # Default rule, >= 3 decision makers in the trailing 90 days, at the Q3 end 2026-10-01: the window
    # is (2026-07-03, 2026-10-01], c1's 07-02 click has left it -> a1 has 2, a2 has 2: no MQA at the end.
    m = _k("mqa_accounts", data)
    assert (m.value, m.numerator, m.denominator) == (0, 0, 3)
    # a1 first met the rule on 2026-08-01 (window (05-03, 08-01] holds c1 07-02, c2 07-05, c3 08-01):
    # a new MQA of Q3 although no longer an MQA at the quarter end
    assert data.mqa_dates.values.tolist() == [["a1", _ts("2026-08-01")]]
    n = _k("new_mqas", data)
    assert (n.value, n.numerator, n.denominator) == (1, 1, 3)
    assert _k("new_mqas", data, "2026Q2").value == 0
    # MQA-to-win rate with the default one-year horizon: the Q3 2026 cohort became MQA in Q3 2025 -- none
    wr = _k("mqa_to_win_rate", data)
    assert math.isnan(wr.value) and wr.note.startswith("n/a — no target account became MQA in the cohort window")
    # a 45-day horizon: the cohort became MQA in [2026-05-17, 2026-08-17): a1 (08-01), who won o1 on
    # 09-10, within 45 days (by 09-15) -> 1 of 1; a 30-day horizon ([06-01, 08-31)): a1 has not won by 08-31
    wr = kpis.mqa_to_win_rate(data, quarter="2026Q3", horizon_days=45)
    assert (wr.numerator, wr.denominator, wr.value) == (1, 1, 1.0)
    wr = kpis.mqa_to_win_rate(data, quarter="2026Q3", horizon_days=30)
    assert (wr.numerator, wr.denominator, wr.value) == (0, 1, 0.0)
    # a period ending after the data: the horizon is not observed yet -> n/a, never 0
    wr = kpis.mqa_to_win_rate(data, quarter="2026Q4", horizon_days=45)
    assert math.isnan(wr.value) and "not yet observed" in wr.note
    # 92-day window (2026-07-01, 2026-10-01]: c1's 07-02 click counts, a1 has 3 decision makers -> 1 of 3
    m = _k("mqa_accounts", wide)
    assert (m.value, m.denominator) == (1, 3)
    assert _k("new_mqas", wide).value == 1                   # a1 again first at 2026-08-01
    # Q2 end (2026-07-01), window (04-02, 07-01]: only c1's 04-10 click -> no MQA
    assert _k("mqa_accounts", wide, "2026Q2").value == 0


def test_pipeline_by_hand(data):
    ip = _k("influenced_pipeline", data)
    assert ip.value == 125_000                               # o1 (a1 touched before), o2 (a2); o3: a3 touched after
    pv = _k("pipeline_velocity", data)              # closed in Q3: o1 62 d, o3 61 d, o5 182 d
    assert pv.value == pytest.approx((62 + 61 + 182) / 3)
    assert _k("opportunity_creation", data).value == 3
    wr = _k("win_rate", data)                                # won / closed in Q3: o1, o5 won; o3 lost
    assert (wr.numerator, wr.denominator) == (2, 3)
    # MQA-to-win rate (cohort): test_mqa_accounts_new_mqas_and_win_rate_by_hand
    ads = _k("average_deal_size", data)
    assert ads.value == 40_000                               # (50k + 30k) / 2
    dv = _k("deal_velocity", data)
    # o1: first a1 touch within 365 d of creation = 2026-04-10 -> closed 2026-09-10 = 153 d;
    # o5: a2 touches 2026-05-10 (before close) -> 2026-08-30 = 112 d
    assert dv.value == pytest.approx((153 + 112) / 2)


def test_cost_and_roi_by_hand(data):
    # k1 fully in Q3 (9,200); k2 2026-06-01..07-30 = 60 days, 30 of them in Q3 -> 3,000
    cpa = _k("cost_per_acquired_account", data)
    cpa = _k("cost_per_acquired_account", data)
    assert cpa.numerator == pytest.approx(12_200)
    assert cpa.denominator == 1 and cpa.value == pytest.approx(12_200)  # a2's first win (o5); a1 won in Q2
    roi = _k("roi", data)
    # won in Q3: o1 50k (a1 touched before creation) and o5 30k (no a2 touch before 2026-03-01)
    assert roi.value == pytest.approx((50_000 - 12_200) / 12_200)


def test_retention_and_growth_by_hand(data):
    ret = _k("retention_rate", data)
    assert (ret.numerator, ret.denominator) == (1, 2)         # a2 at 0 by September
    nrr = _k("net_revenue_retention_qoq", data)
    # start 1000 + 500 = 1500; a1 +500 expansion; a2 -500 churn -> 1500 / 1500
    assert (nrr.numerator, nrr.denominator, nrr.value) == (1500, 1500, 1.0)
    # trailing 12 months: no revenue row a year before the period end -> n/a, never 100%
    ttm = _k("net_revenue_retention", data)
    assert math.isnan(ttm.value) and ttm.note.startswith("n/a — trailing NRR needs revenue 12 months back")
    ad = _k("product_adoption", data)
    assert (ad.numerator, ad.denominator) == (1, 1)
    up = _k("upsell_rate", data)
    assert (up.numerator, up.denominator) == (1, 2)
    cs = _k("cross_sell_rate", data)
    assert (cs.numerator, cs.denominator) == (1, 2)
    clv = _k("customer_lifetime_value", data)
    # Q3 revenue rows: a1 1000+1500 = 2500, a2 400 -> mean 1450; churn 0.5
    assert clv.value == pytest.approx(1450 / 0.5)


def test_no_revenue_table_gives_nan_with_note(tiny, mapping):
    ds = Dataset(**{**tiny.tables(), "revenue": Dataset().revenue})
    ds = prepare(ds, mapping=mapping)
    r = kpis.retention_rate(ds, quarter="2026Q3")
    assert math.isnan(r.value) and "revenue" in r.note
    # customers then come from closed-won history: a1 (o4, May) and a2 (none before Q3) -> 1
    assert kpis.upsell_rate(ds, quarter="2026Q3").denominator == 1


def test_kpi_table_overall_and_segments(data):
    t = kpis.kpi_table(data, quarter="2026Q3")
    o = t.overall.set_index("kpi")
    assert list(o.index) == list(kpis.KPI_FUNCTIONS)
    assert o.loc["market_reach", "value"] == 1.0
    assert o.loc["market_reach", "previous"] == pytest.approx(2 / 3)
    assert o.loc["market_reach", "change"] == pytest.approx(1 / 3)
    assert o.loc["pipeline_velocity", "previous"] == 120      # Q2: o4 2026-01-10 -> 2026-05-10
    assert set(t.segments["segment"]) == {"industry", "size_band", "tier"}
    s = t.segments.set_index(["segment", "segment_value", "kpi"])
    assert s.loc[("industry", "software", "account_engagement"), "value"] == 5
    assert s.loc[("industry", "retail", "market_reach"), "value"] == 1.0
    assert s.loc[("size_band", "5000+", "opportunity_creation"), "value"] == 1
    assert s.loc[("industry", "unknown", "market_reach"), "denominator"] == 0   # a4 not a target
    assert math.isnan(s.loc[("tier", "1", "roi"), "value"])                     # costs not segmentable
    bands = t.segments.loc[t.segments.segment == "size_band", "segment_value"].unique().tolist()
    assert bands == ["1-49", "250-999", "5000+", "unknown"]                       # small to large
    assert "market_reach" in t.summary["kpi"].tolist()
    assert kpis.kpi_table(data, segments=()).period.label == "2026Q3"  # default


def test_kpi_table_custom_dates_and_bad_segment(data):
    t = kpis.kpi_table(data, start="2026-08-01", end="2026-08-29", segments=())
    assert t.period.previous.label == "2026-07-04_2026-08-01"
    assert t.overall.set_index("kpi").loc["account_engagement", "value"] == 3   # t3, t5, t6
    with pytest.raises(ValueError, match="segment 'region_x'"):
        kpis.kpi_table(data, quarter="2026Q3", segments=("region_x",))


def test_default_quarter_is_last_complete():
    ts = pd.Series(pd.to_datetime(["2026-01-05 00:00", "2026-09-30 23:00"], utc=True))
    assert kpis.last_complete_quarter(ts) == "2026Q3"
    ts = pd.Series(pd.to_datetime(["2026-11-02"], utc=True))
    assert kpis.last_complete_quarter(ts) == "2026Q3"
    assert kpis.last_complete_quarter(ts, today=pd.Timestamp("2026-08-01", tz="UTC")) == "2026Q2"


def test_size_band():
    # one definition, in abmkit.schema (5 bands)
    assert size_band(pd.Series([1, 49, 50, 999, 1000, 5000, None])).tolist() == [
        "1-49", "1-49", "50-249", "250-999", "1000-4999", "5000+", "unknown"]


def test_kpi_table_on_sample(small_sample):
    """On the generated sample every KPI is finite where its inputs exist and rates lie in [0, 1]."""
    ds = small_sample.dataset
    q = kpis.last_complete_quarter(ds.touchpoints["occurred_at"])
    t = kpis.kpi_table(ds, quarter=q, segments=("tier",))
    o = t.overall.set_index("kpi")
    for k in ("market_reach", "buying_group_coverage", "win_rate"):
        assert 0 <= o.loc[k, "value"] <= 1, k
    assert o.loc["account_engagement", "value"] > 0
    # segment numerators add up to the overall numerator for additive KPIs
    seg = t.segments[t.segments.kpi == "account_engagement"]
    assert seg["numerator"].sum() == o.loc["account_engagement", "numerator"]


def test_mqa_matches_engagement_module(small_sample):
    """The mqa_accounts KPI is the number of target accounts flagged is_mqa by
    abmkit.engagement.mqa evaluated at the period end (the dataset's one rule), and the
    funnel's "mqa" step is the same number."""
    from abmkit.engagement import mqa

    data = prepare(small_sample.dataset)
    targets = data.target_account_ids()
    assert data.targets_flagged
    for q in ("2026Q2", "2026Q3"):
        p = kpis.resolve_period(q)
        k = kpis.mqa_accounts(data, quarter=q)
        res = mqa(data, as_of=p.end, with_stage=False)
        flagged = res.accounts.loc[res.accounts["is_mqa"].astype(bool), "account_id"]
        theirs = int(flagged.isin(targets).sum())
        assert k.value == theirs and theirs > 0, q
        assert k.denominator == len(targets)
        f = kpis.account_funnel(data, quarter=q).set_index("step")["accounts"]
        assert f["mqa"] == k.value, q


def test_kpi_table_states_the_population_of_every_kpi(data):
    o = kpis.kpi_table(data, quarter="2026Q3", segments=()).overall.set_index("kpi")
    assert {"population", "population_size"} <= set(o.columns)
    assert list(o.index) == list(kpis.KPI_FUNCTIONS)
    assert (o["population"] != "").all() and o["population_size"].notna().all()
    label = {"target": "target accounts", "all": "all accounts", "customers": "customers at period start",
             "customers_end": "customers at period end",
             "customers_year_before": "customers 12 months before period end",
             "mqa_cohort": "MQAs of 01 Jul 2025–30 Sep 2025, followed 365 d"}
    assert o["population"].to_dict() == {k: label[v] for k, v in kpis.KPI_POPULATION.items()}
    # targets a1-a3; all accounts a1-a4; customers on 2026-07-01: a1 (1000) and a2 (500, June row)
    # customers on 2026-10-01 (product adoption): a1 (1500 in Sep); a2's Sep row is 0
    size = {"target": 3, "all": 4, "customers": 2, "customers_end": 1, "customers_year_before": 0,
            "mqa_cohort": 0}
    assert o["population_size"].to_dict() == {k: size[v] for k, v in kpis.KPI_POPULATION.items()}
    h = kpis.kpi_history(data, quarter="2026Q3", n_periods=2, kpis=["mqa_accounts", "roi"])
    assert h[["population", "population_size"]].values.tolist() == [
        ["target accounts", 3], ["all accounts", 4], ["target accounts", 3], ["all accounts", 4]]


def test_funnel_mqa_step_is_the_mqa_tile(data, wide):
    for d in (data, wide):
        for q in ("2026Q2", "2026Q3"):
            f = kpis.account_funnel(d, quarter=q).set_index("step")["accounts"]
            assert f["mqa"] == _k("mqa_accounts", d, q).value, q


def test_funnel_and_pipeline_by_hand(data, wide):
    f = kpis.account_funnel(wide, quarter="2026Q3")
    assert list(f.columns) == ["step", "accounts", "share_of_population", "share_of_previous_step", "population",
                               "note"]
    assert (f["note"] == "").all()   # every step applies (n/a steps: tests/test_applicability.py)
    assert f["population"].eq("target accounts").all()
    f = f.set_index("step")
    # targets a1-a3 all reached; with an engagement touch a1, a2 (a3 only impressions); MQA at the Q3 end
    # with the 92-day window: a1 (see test_mqa_accounts_new_mqas_and_win_rate_by_hand); a1 opened o1; a1 won o1
    assert f["accounts"].to_dict() == {"population": 3, "reached": 3, "with_engagement": 2, "mqa": 1,
                                       "opportunity": 1, "won": 1}
    assert f["share_of_population"].tolist() == pytest.approx([1, 1, 2 / 3, 1 / 3, 1 / 3, 1 / 3])
    assert f["share_of_previous_step"].tolist() == pytest.approx([1, 1, 2 / 3, 1 / 2, 1, 1])
    # default 90-day window: nobody is an MQA at the Q3 end, and the funnel never widens after that
    f = kpis.account_funnel(data, quarter="2026Q3").set_index("step")["accounts"]
    assert f.to_dict() == {"population": 3, "reached": 3, "with_engagement": 2, "mqa": 0, "opportunity": 0, "won": 0}
    pl = kpis.pipeline_by_period(data, quarter="2026Q3", n_periods=2).set_index("period")
    assert pl.loc["2026Q3", ["created", "created_amount", "influenced_amount", "won", "won_amount", "lost"]].tolist() == [
        3, 225_000, 125_000, 2, 80_000, 1]
    assert pl.loc["2026Q2", ["created", "won", "won_amount"]].tolist() == [0, 1, 20_000]
    h = kpis.kpi_history(data, quarter="2026Q3", n_periods=3, kpis=["market_reach"])
    assert h["period"].tolist() == ["2026Q1", "2026Q2", "2026Q3"]
    assert h["value"].tolist()[1:] == pytest.approx([2 / 3, 1.0])


def test_kpi_tiles_show_change_direction():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from abmkit import plots
    from abmkit.plots.style import GOOD

    overall = pd.DataFrame({
        "kpi": ["pipeline_velocity", "market_reach", "roi"], "unit": ["days", "ratio", "ratio"],
        "value": [100.0, 0.6, float("nan")], "previous": [120.0, 0.5, float("nan")],
        "change": [-20.0, 0.1, float("nan")]})
    fig = plots.kpi_tiles(overall, ncols=3)
    texts = {t.get_text(): t.get_color() for ax in fig.axes for t in ax.texts}
    assert texts["100.0 d"] == "#111" and texts["▼ -20.0 d vs prev"] == GOOD   # faster is better
    assert texts["60.0%"] and texts["▲ +10.0 pts vs prev"] == GOOD
    assert "n/a" in texts and "prev n/a" in texts
    plt.close(fig)
    # an estimate shows its interval instead of a change; the tile names what it is
    est = pd.DataFrame({"kpi": ["incremental_pipeline", "cohort_influenced_pipeline"], "unit": ["currency"] * 2,
                        "value": [400_000.0, 2_000_000.0], "low": [100_000.0, float("nan")],
                        "high": [700_000.0, float("nan")], "previous": [float("nan")] * 2,
                        "change": [float("nan")] * 2})
    fig = plots.kpi_tiles(est, ncols=2)
    texts = [t.get_text().replace("\n", " ") for ax in fig.axes for t in ax.texts]   # long names wrap
    assert "95% CI 100.0k to 700.0k" in texts and "counted (no interval)" in texts
    assert "Incremental pipeline (caused, est.)" in texts and "Influenced pipeline, same accounts (touched before)" in texts
    plt.close(fig)
    assert plots.format_kpi(225_000, "currency") == "225.0k" and plots.format_kpi(1_060_000, "currency") == "1.06M"
