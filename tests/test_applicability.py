"""Applicability (issue 18, Build 1 and 8): every analysis declares what it needs; when the
data lacks it the result is n/a with a one-line reason, never a 0, NaN or a crash;
findings are strict JSON; with accounts and opportunities alone the sales KPIs work and
equal a hand computation."""
from __future__ import annotations

import json
import math

import matplotlib
import numpy as np
import pandas as pd
import pytest

import abmkit
from abmkit import applicability, engagement, kpis, outputs, progression, uplift
from abmkit.applicability import KPI_NEEDS, check
from abmkit.period import resolve_period
from abmkit.schema import Dataset

matplotlib.use("Agg")
Q3 = resolve_period(quarter="2026Q3")


def _strict(text: str):
    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")
    return json.loads(text, parse_constant=refuse)


# --------------------------------------------------------------------------- fixtures
ACCOUNTS = pd.DataFrame({"account_id": ["a1", "a2", "a3", "a4"], "account_name": ["Acme", "Beta", "Gamma", "Delta"],
                         "domain": ["acme.com", "beta.com", "gamma.com", "delta.com"],
                         "industry": ["software", "software", "retail", "retail"],
                         "employee_count": [100, 2000, 40, 300], "tier": [1, 2, 3, 1]})
#: hand-made opportunities (2026Q3 = Jul 1 .. Oct 1):
#:   o1 a1 created May 1, won Jul 11 (71 days), 100      o2 a2 created Jul 5, won Aug 4 (30 days), 300
#:   o3 a3 created Jun 1, lost Aug 10 (70 days), 50      o4 a4 created Aug 1, open, 200
#:   o5 a1 created Mar 1, won Apr 1 (Q2), 80
OPPORTUNITIES = pd.DataFrame({
    "opportunity_id": ["o1", "o2", "o3", "o4", "o5"],
    "account_id": ["a1", "a2", "a3", "a4", "a1"],
    "created_at": ["2026-05-01", "2026-07-05", "2026-06-01", "2026-08-01", "2026-03-01"],
    "closed_at": ["2026-07-11", "2026-08-04", "2026-08-10", None, "2026-04-01"],
    "is_closed": [True, True, True, False, True],
    "is_won": [True, True, False, False, True],
    "amount": [100.0, 300.0, 50.0, 200.0, 80.0],
})


@pytest.fixture(scope="module")
def opps_only():
    """Accounts and opportunities only: no contacts, touches, campaigns, revenue, types."""
    return abmkit.prepare(Dataset.from_frames(accounts=ACCOUNTS, opportunities=OPPORTUNITIES), as_of=Q3.end)


@pytest.fixture(scope="module")
def sample(small_sample):
    return abmkit.prepare(small_sample.dataset, as_of=Q3.end)


@pytest.fixture(scope="module")
def touchless(small_sample):
    """The small sample without its touches (accounts, contacts, campaigns, opportunities, revenue)."""
    ds = small_sample.dataset
    return abmkit.prepare(Dataset(accounts=ds.accounts, contacts=ds.contacts, campaigns=ds.campaigns,
                                  opportunities=ds.opportunities, revenue=ds.revenue), as_of=Q3.end)


# --------------------------------------------------------------------------- declarations
def test_check_reasons_missing_table_empty_column_nothing_in_period():
    ds = Dataset.from_frames(
        accounts=ACCOUNTS, opportunities=OPPORTUNITIES,
        campaigns=pd.DataFrame({"campaign_id": ["c1"], "campaign_name": ["Webinar"]}))
    app = check(ds, "market_reach")
    assert not app and app.reason == "needs touchpoints: none supplied"
    assert app.note == "n/a — needs touchpoints: none supplied"
    assert app.missing == ("touchpoints",)
    assert list(app.summary.columns) == ["need", "met", "reason"]
    # a table with rows but a column nobody filled
    cost = check(ds, "cost_per_acquired_account")
    assert cost.reason == "needs campaigns.cost: no campaign has a cost"
    assert check(ds, "upsell_rate").reason == "needs opportunities.opportunity_type: no opportunity has a type"
    # data in the period: only checked with a period
    assert check(ds, "win_rate")
    assert check(ds, "win_rate", "2026Q3")
    empty = check(ds, "win_rate", "2024Q1")
    assert empty.reason == "needs opportunities closed in the period: none in 2024Q1"
    assert check(ds, "attribution", Q3).reason == "needs touchpoints: none supplied"
    # every declaration names known tables, columns and data needs
    from abmkit.schema import TABLES
    for name, needs in {**KPI_NEEDS, **applicability.ANALYSIS_NEEDS}.items():
        assert set(needs.tables) <= set(TABLES), name
        for c in needs.columns:
            t, col = c.split(".")
            assert col in TABLES[t].names, (name, c)
        assert set(needs.data) <= set(applicability.DATA_NEEDS), name
    assert set(KPI_NEEDS) == set(kpis.KPI_FUNCTIONS) and kpis.KPI_NEEDS is KPI_NEEDS
    with pytest.raises(ValueError, match="unknown analysis"):
        check(ds, "nope")


def test_notice_says_what_why_and_what_to_supply():
    ds = Dataset.from_frames(accounts=ACCOUNTS)
    n = check(ds, "engagement").notice()
    text = str(n)
    assert "Not shown: engagement scores and the leaderboard." in text
    assert "n/a — needs touchpoints: none supplied." in text
    assert "To show it: add a touch export" in text
    assert "<blockquote>" in n._repr_html_() and "needs touchpoints: none supplied" in n._repr_html_()
    assert n._repr_markdown_().startswith("> **Not shown")
    assert "To show it" not in str(check(ds, "engagement").notice(short=True))
    s = applicability.Sections(ds, Q3)
    assert not s.check("leaderboard", "engagement") and s.check("funnel")
    assert s.not_applicable == {"leaderboard": "needs touchpoints: none supplied"}


# --------------------------------------------------------------------------- KPIs
def test_opportunities_only_sales_kpis_equal_hand_computation(opps_only):
    k = {name: kpis.KPI_FUNCTIONS[name](opps_only, quarter="2026Q3")
         for name in ("opportunity_creation", "win_rate", "average_deal_size", "pipeline_velocity")}
    assert k["opportunity_creation"].value == 2                       # o2, o4 created in Q3
    assert k["win_rate"].value == pytest.approx(2 / 3)  # o1, o2 won of o1, o2, o3 closed
    assert (k["win_rate"].numerator, k["win_rate"].denominator) == (2, 3)
    assert k["average_deal_size"].value == pytest.approx(200.0)      # (100 + 300) / 2
    assert k["pipeline_velocity"].value == pytest.approx((71 + 30 + 70) / 3)
    assert all(r.note == "" for r in k.values())
    pl = kpis.pipeline_by_period(opps_only, quarter="2026Q3", n_periods=2).set_index("period")
    assert pl.loc["2026Q3", ["created", "created_amount", "won", "won_amount", "lost"]].tolist() == [2, 500, 2, 400, 1]
    assert pl.loc["2026Q2", ["created", "created_amount", "won", "won_amount", "lost"]].tolist() == [2, 150, 1, 80, 0]
    assert pl["influenced_amount"].isna().all()     # needs touches: n/a, not 0
    # the table: sales KPIs as computed, every other KPI n/a with its reason
    o = kpis.kpi_table(opps_only, quarter="2026Q3", segments=()).overall.set_index("kpi")
    assert o.loc["win_rate", "value"] == pytest.approx(2 / 3)
    assert o.loc["average_deal_size", "value"] == pytest.approx(200.0)
    assert o.loc["pipeline_velocity", "value"] == pytest.approx(57.0)
    assert o.loc["opportunity_creation", "value"] == 2
    na = o[o["value"].isna()]
    assert set(na.index) == set(kpis.KPI_FUNCTIONS) - {"opportunity_creation", "win_rate",
                                                        "average_deal_size", "pipeline_velocity"}
    assert na["note"].str.match(r"^n/a — needs \S").all(), na["note"]
    assert o.loc["market_reach", "note"] == "n/a — needs touchpoints: none supplied"
    assert o.loc["upsell_rate", "note"] == "n/a — needs opportunities.opportunity_type: no opportunity has a type"
    assert o.loc["retention_rate", "note"] == "n/a — needs revenue: none supplied"
    h = kpis.headline_findings(kpis.kpi_table(opps_only, quarter="2026Q3", segments=()))
    assert h["kpis"]["market_reach"] is None
    assert h["not_applicable"]["market_reach"] == "needs touchpoints: none supplied"
    assert "2 opportunities created" in h["headline"] and "win rate 67%" in h["headline"]


def test_kpi_values_never_zero_from_missing_data(touchless):
    t = kpis.kpi_table(touchless, quarter="2026Q3")
    o = t.overall.set_index("kpi")
    for name, needs in KPI_NEEDS.items():
        if "touchpoints" in needs.tables:
            assert math.isnan(o.loc[name, "value"]), name
            assert o.loc[name, "note"] == "n/a — needs touchpoints: none supplied", name
    # every NaN value (overall, segments, history) carries "n/a — <reason>"
    for frame in (t.overall, t.segments, kpis.kpi_history(touchless, quarter="2026Q3", n_periods=2)):
        na = frame[frame["value"].isna()]
        assert len(na) and na["note"].str.match(r"^n/a — \S").all(), na[["kpi", "note"]]
    # the sales KPIs still count
    assert o.loc["win_rate", "value"] > 0 and o.loc["average_deal_size", "value"] > 0


def test_undefined_ratio_says_which_data_of_the_period_is_missing(opps_only):
    r = kpis.win_rate(opps_only, quarter="2024Q1")
    assert math.isnan(r.value) and r.note == "n/a — needs opportunities closed in the period: none in 2024Q1"
    assert kpis.average_deal_size(opps_only, quarter="2024Q1").note.startswith("n/a — needs opportunities won")
    assert kpis.opportunity_creation(opps_only, quarter="2024Q1").value == 0   # a count with its table: a true 0


def test_upsell_without_opportunity_type_and_costs(sample, small_sample):
    ds = small_sample.dataset
    opps = ds.opportunities.assign(opportunity_type=None)
    camps = ds.campaigns.assign(cost=np.nan)
    data = abmkit.prepare(Dataset(**{**ds.tables(), "opportunities": opps, "campaigns": camps}), as_of=Q3.end)
    assert sample is not None and not math.isnan(kpis.upsell_rate(sample, quarter="2026Q3").value)
    for name in ("upsell_rate", "cross_sell_rate"):
        r = kpis.KPI_FUNCTIONS[name](data, quarter="2026Q3")
        assert math.isnan(r.value)
        assert r.note == "n/a — needs opportunities.opportunity_type: no opportunity has a type"
    for name in ("cost_per_acquired_account", "roi"):
        r = kpis.KPI_FUNCTIONS[name](data, quarter="2026Q3")
        assert math.isnan(r.value) and r.note == "n/a — needs campaigns.cost: no campaign has a cost"


def test_funnel_steps_without_touches_are_na_and_won_counts(opps_only, touchless):
    f = kpis.account_funnel(opps_only, quarter="2026Q3").set_index("step")
    assert list(f.columns) == ["accounts", "share_of_population", "share_of_previous_step", "population", "note"]
    for step in ("reached", "with_engagement", "mqa"):
        assert pd.isna(f.loc[step, "accounts"]) and f.loc[step, "note"] == "n/a — needs touchpoints: none supplied"
    # nesting skips the n/a steps: opportunity = population accounts with one created (a2, a4), won = of those
    # with one won in the period (a2)
    assert f.loc["population", "accounts"] == 4
    assert f.loc["opportunity", "accounts"] == 2 and f.loc["opportunity", "share_of_previous_step"] == 0.5
    assert f.loc["won", "accounts"] == 1 and f.loc["won", "note"] == ""
    # on the sample without touches, "won" is never 0 next to won deals
    f = kpis.account_funnel(touchless, quarter="2026Q3").set_index("step")
    won = kpis._won(kpis._data(touchless), Q3)
    created = touchless.opportunities[Q3.contains(touchless.opportunities["created_at"])]["account_id"]
    targets = touchless.target_account_ids()
    assert f.loc["won", "accounts"] == len(set(won["account_id"]) & set(created) & set(targets)) > 0
    fig = abmkit.plots.funnel_chart(kpis.account_funnel(opps_only, quarter="2026Q3"))
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts.count("n/a — needs touchpoints: none supplied") == 3


def test_tiles_show_the_reason_under_na():
    overall = pd.DataFrame({"kpi": ["market_reach", "win_rate"], "unit": ["ratio", "ratio"],
                            "value": [np.nan, 0.5], "previous": [np.nan, 0.4], "change": [np.nan, 0.1],
                            "population": ["target accounts", "all accounts"], "population_size": [3.0, 4.0],
                            "note": ["n/a — needs touchpoints: none supplied", ""]})
    fig = abmkit.plots.kpi_tiles(overall, ncols=2)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "n/a" in texts and "needs touchpoints: none supplied" in texts
    assert not any("prev n/a" in t for t in texts[:4])   # the n/a tile states no change


# --------------------------------------------------------------------------- strict JSON
def test_findings_are_strict_json(tmp_path):
    findings = {"match_rate": float("nan"), "roi": np.float64(np.inf), "n": np.int64(3), "ok": np.bool_(True),
                "nested": {"xs": [np.nan, 1.5, np.float32(2.0)], "when": pd.Timestamp("2026-07-01", tz="UTC"),
                           "never": pd.NaT, 4: "int key"}, "arr": np.array([1.0, np.nan])}
    path = outputs.save_findings(findings, tmp_path, "x")
    text = path.read_text("utf-8")
    back = _strict(text)
    assert back["match_rate"] is None and back["roi"] is None and back["n"] == 3 and back["ok"] is True
    assert back["nested"]["xs"] == [None, 1.5, 2.0] and back["nested"]["never"] is None
    assert back["nested"]["when"].startswith("2026-07-01") and back["nested"]["4"] == "int key"
    assert back["arr"] == [1.0, None]
    assert outputs.load_findings(tmp_path, "x") == back


# --------------------------------------------------------------------------- analyses without touches
def test_analyses_on_a_touchless_dataset_report_na(touchless):
    assert any(n.startswith("no touchpoints supplied") for n in touchless.notes)
    reason = "needs touchpoints: none supplied"
    m = engagement.mqa(touchless, as_of=Q3.end)
    assert m.not_applicable == reason and not m.accounts["is_mqa"].any()
    assert str(m).splitlines()[1] == f"n/a — {reason}" and reason in m._repr_html_()
    h = progression.stage_history(touchless, as_of=Q3.end)
    assert h.not_applicable == reason
    base = progression.transition_baseline(touchless, h)     # crashed: 'account_id' is both an index level ...
    assert base.not_applicable == reason
    infl = uplift.campaign_influence(touchless, history=h, min_group_size=5)
    assert infl.not_applicable == reason
    cmp = abmkit.attribution.compare_models(touchless, ["first_touch", "linear"], n_boot=0,
                                            start=Q3.start, end=Q3.end)
    assert cmp.not_applicable == reason
    assert check(touchless, "sales_kpis") and not check(touchless, "attribution", Q3)


def test_without_contacts_people_based_analyses_are_na(small_sample):
    """Touches of contacts cannot reach an account without the contacts export: the MQA
    rule and the engaged / qualified stages would read 0, so they are n/a."""
    ds = small_sample.dataset
    data = abmkit.prepare(Dataset(**{**ds.tables(), "contacts": abmkit.schema.empty_table("contacts")}), as_of=Q3.end)
    reason = "needs contacts: none supplied"
    assert progression.stage_history(data, as_of=Q3.end).not_applicable == reason
    assert engagement.mqa(data, as_of=Q3.end).not_applicable == reason
    for name in ("mqa_accounts", "new_mqas", "mqa_to_win_rate", "buying_group_coverage"):
        r = kpis.KPI_FUNCTIONS[name](data, quarter="2026Q3")
        assert math.isnan(r.value) and r.note == f"n/a — {reason}", name
    r = kpis.audience_exposure_time(data, quarter="2026Q3")   # timed touches all belong to contacts
    assert math.isnan(r.value) and r.note == "n/a — needs touches with engagement seconds placed on an account: none"
    assert kpis.market_reach(data, quarter="2026Q3").value > 0   # account-level touches still reach accounts
    f = kpis.account_funnel(data, quarter="2026Q3").set_index("step")
    assert f.loc["reached", "accounts"] > 0 and pd.isna(f.loc["mqa", "accounts"])
    assert f.loc["mqa", "note"] == f"n/a — {reason}"


def test_analyses_apply_on_the_full_sample(sample):
    assert engagement.mqa(sample, as_of=Q3.end).not_applicable == ""
    assert progression.stage_history(sample, as_of=Q3.end).not_applicable == ""
    assert check(sample, "attribution", Q3) and check(sample, "campaign_influence", Q3)
    o = kpis.kpi_table(sample, quarter="2026Q3", segments=()).overall
    assert not o["note"].str.startswith("n/a — needs touchpoints").any()


# --------------------------------------------------------------------------- cleaning and loading
def test_load_reads_a_missing_table_as_empty(tmp_path):
    abmkit.save(Dataset.from_frames(accounts=ACCOUNTS, opportunities=OPPORTUNITIES), tmp_path)
    for t in ("contacts", "touchpoints", "campaigns", "revenue"):
        (tmp_path / f"{t}.parquet").unlink()
    ds = abmkit.load(tmp_path)
    assert len(ds.accounts) == 4 and len(ds.opportunities) == 5 and len(ds.touchpoints) == 0
    assert list(ds.contacts.columns) == list(abmkit.schema.empty_table("contacts").columns)
    data = abmkit.prepare(ds)
    assert kpis.win_rate(data, quarter="2026Q3").value == pytest.approx(2 / 3)


def test_clean_notes_tables_not_in_the_export(tmp_path):
    from abmkit.clean import clean_exports

    ACCOUNTS[["account_id", "account_name"]].to_csv(tmp_path / "accounts.csv", index=False)
    OPPORTUNITIES.to_csv(tmp_path / "opportunities.csv", index=False)
    cm = {"tables": {"accounts": {"file": "accounts.csv", "columns": {"account_id": "account_id",
                                                                    "account_name": "account_name"}},
                     "opportunities": {"file": "opportunities.csv", "columns": {
                         c: c for c in OPPORTUNITIES.columns}}}}
    r = clean_exports(tmp_path, cm)
    assert r.tables_not_supplied == ["contacts", "touchpoints", "campaigns", "revenue"]
    assert "Note: touchpoints: not in the export — an empty table; analyses that need touchpoints are n/a" in str(r)
    assert len(r.dataset.opportunities) == 5
