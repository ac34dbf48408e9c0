"""KPI definitions that must mean what their labels say (issue 19): the revenue state
rule (no revenue row = churned), the two win rates, and the incremental pipeline
(caused) beside the influenced pipeline (touched before)."""
from __future__ import annotations

import contextlib
import math

import numpy as np
import pandas as pd
import pytest

from abmkit import kpis, prepare
from abmkit.incremental_value import extra_accounts_ci, incremental_value, _correlation
from abmkit.schema import Dataset


# ----------------------------------------------------------------- revenue state: toy cases
def _revenue_ds(rows) -> Dataset:
    rev = pd.DataFrame(rows, columns=["account_id", "period_start", "recurring_revenue", "active_users"])
    ids = sorted(rev["account_id"].unique())
    return Dataset.from_frames(accounts=pd.DataFrame({"account_id": ids, "account_name": ids}), revenue=rev)


@pytest.fixture(scope="module")
def churn_toy() -> Dataset:
    """100 customers with a Q2 2026 row, 90 of them with a Q3 row (10 churned by absence)."""
    ids = [f"a{i:03d}" for i in range(100)]
    return _revenue_ds([(a, "2026-04-01", 1000.0, 5) for a in ids] + [(a, "2026-07-01", 1000.0, 5) for a in ids[:90]])


def test_churn_by_absence_toy_case(churn_toy):
    ret = kpis.retention_rate(churn_toy, quarter="2026Q3")
    assert (ret.numerator, ret.denominator, ret.value) == (90, 100, 0.9)
    nrr = kpis.net_revenue_retention_qoq(churn_toy, quarter="2026Q3")
    assert (nrr.numerator, nrr.denominator, nrr.value) == (90_000, 100_000, 0.9)
    clv = kpis.customer_lifetime_value(churn_toy, quarter="2026Q3")
    # Q3 revenue per customer 1000 / churn 0.1 = 10,000: finite
    assert clv.value == pytest.approx(10_000) and clv.note == ""
    # trailing 12 months: the history is two quarters long -> n/a with the reason, never 100%
    ttm = kpis.net_revenue_retention(churn_toy, quarter="2026Q3")
    assert math.isnan(ttm.value) and "12 months back" in ttm.note


def test_trailing_twelve_month_nrr():
    """100 customers for four quarters (2025Q3-2026Q2), 90 still in 2026Q3 of whom 10 grew
    by half: trailing NRR = (100k - 10k + 5k) / 100k; quarter on quarter the same here."""
    ids = [f"a{i:03d}" for i in range(100)]
    quarters = ["2025-07-01", "2025-10-01", "2026-01-01", "2026-04-01"]
    rows = [(a, q, 1000.0, 5) for a in ids for q in quarters]
    rows += [(a, "2026-07-01", 1500.0 if i < 10 else 1000.0, 5) for i, a in enumerate(ids[:90])]
    ds = _revenue_ds(rows)
    ttm = kpis.net_revenue_retention(ds, quarter="2026Q3")
    assert (ttm.numerator, ttm.denominator) == (95_000, 100_000) and ttm.value == pytest.approx(0.95)
    assert kpis.net_revenue_retention_qoq(ds, quarter="2026Q3").value == pytest.approx(0.95)
    assert kpis.retention_rate(ds, quarter="2026Q3").value == pytest.approx(0.90)
    # the tables label which NRR is which, and name the trailing one's population
    o = kpis.kpi_table(ds, quarter="2026Q3", segments=()).overall.set_index("kpi")
    assert o.loc["net_revenue_retention", "population"] == "customers 12 months before period end"
    assert o.loc["net_revenue_retention_qoq", "population"] == "customers at period start"


def test_churn_after_missing_periods_is_configurable(churn_toy):
    two = kpis.RevenueRule(churn_after_missing_periods=2)
    # tolerating one missing quarter, the ten customers without a Q3 row are still customers
    assert kpis.retention_rate(churn_toy, quarter="2026Q3", revenue_rule=two).value == 1.0
    t = kpis.kpi_table(churn_toy, quarter="2026Q3", segments=(), revenue_rule=two).overall.set_index("kpi")
    assert t.loc["retention_rate", "value"] == 1.0
    assert kpis.kpi_table(churn_toy, quarter="2026Q3", segments=()).overall.set_index("kpi").loc[
        "retention_rate", "value"] == 0.9
    with pytest.raises(ValueError):
        kpis.RevenueRule(churn_after_missing_periods=0)


def test_revenue_period_is_inferred_and_a_lagging_export_is_na(churn_toy):
    monthly = _revenue_ds([("a", "2026-07-01", 10.0, 1), ("a", "2026-08-01", 10.0, 1), ("a", "2026-09-01", 10.0, 1),
                           ("b", "2026-07-01", 10.0, 1), ("b", "2026-08-01", 10.0, 1)])
    assert kpis.revenue_period_months(monthly.revenue) == 1
    # monthly rows: b has no September row -> churned at the end of Q3 (a one-month gap)
    r = kpis.retention_rate(monthly, start="2026-08-01", end="2026-10-01")
    assert (r.numerator, r.denominator) == (1, 2)
    # Q4 2026 has no revenue row at all: the state is unknown, not "everyone churned"
    r = kpis.retention_rate(churn_toy, quarter="2026Q4")
    assert math.isnan(r.value) and r.note.startswith("n/a — no revenue rows for the 3-month revenue period")


# ----------------------------------------------------------------- the sample: planted churn
@contextlib.contextmanager
def _no_raw_export():
    """generate() without rendering the raw CSV exports (not used here; drawn after the
    dataset and the truth, so neither changes): half of its time."""
    import abmkit.sample as sample
    original = sample.render_raw
    sample.render_raw = lambda dataset, rng: ({}, {}, {}, pd.DataFrame())
    try:
        yield
    finally:
        sample.render_raw = original


@pytest.fixture(scope="module")
def churn_sample():
    from abmkit.sample import generate
    with _no_raw_export():
        return generate(n_accounts=900, seed=4)


def test_sample_revenue_has_no_gaps_and_agrees_with_planted_state(churn_sample):
    cp = churn_sample.truth["customer_periods"]
    rev = churn_sample.dataset.revenue
    have = set(zip(rev["account_id"], rev["period_start"]))
    planted = set(zip(cp.loc[cp["is_customer"], "account_id"], cp.loc[cp["is_customer"], "period_start"]))
    assert have == planted   # a row exactly when the generator says the account is a customer
    # churn is final: no customer comes back after a churned quarter
    back = cp.groupby("account_id")["is_customer"].apply(lambda s: bool((s.astype(int).diff() > 0).any()))
    assert not back.any()


def test_sample_retention_tile_equals_planted_churn(churn_sample):
    cp = churn_sample.truth["customer_periods"]
    state = (cp.assign(v=cp["is_customer"].astype(float))
             .pivot(index="account_id", columns="period_start", values="v").fillna(0.0).astype(bool))
    ds = prepare(churn_sample.dataset)
    starts = sorted(state.columns)
    checked = with_churn = 0
    for prev, cur in zip(starts[:-1], starts[1:]):
        q = pd.Period(cur.tz_localize(None), freq="Q")
        before = state[prev].astype(bool)
        planted_num, planted_den = int((before & state[cur].astype(bool)).sum()), int(before.sum())
        if planted_den == 0:
            continue
        r = kpis.retention_rate(ds, quarter=f"{q.year}Q{q.quarter}")
        assert (r.numerator, r.denominator) == (planted_num, planted_den), q
        checked += 1
        with_churn += planted_num < planted_den
    assert checked >= 3 and with_churn >= 1   # the sample plants churn the tile must show


# ----------------------------------------------------------------- win rates by hand on the sample
def test_win_rate_tiles_equal_hand_computation(churn_sample):
    ds = prepare(churn_sample.dataset)
    o = churn_sample.dataset.opportunities
    for q in ("2026Q2", "2026Q3"):
        p = pd.Period(q, freq="Q")
        lo, hi = pd.Timestamp(p.start_time, tz="UTC"), pd.Timestamp(p.end_time.normalize() + pd.Timedelta(days=1),
                                                                      tz="UTC")
        closed = o[(o["closed_at"] >= lo) & (o["closed_at"] < hi)]
        won = int(closed["is_won"].astype(bool).sum())
        t = kpis.win_rate(ds, quarter=q)
        assert (t.numerator, t.denominator) == (won, len(closed)) and t.value == pytest.approx(won / len(closed))
        # MQA-to-win: target accounts first MQA in [lo - 365 d, hi - 365 d), won a non-renewal deal within 365 d
        h = pd.Timedelta(days=365)
        first = ds.mqa_dates
        targets = set(churn_sample.dataset.accounts.loc[churn_sample.dataset.accounts["is_target"], "account_id"])
        cohort = first[(first["mqa_at"] >= lo - h) & (first["mqa_at"] < hi - h) & first["account_id"].isin(targets)]
        w = o[o["is_won"].astype(bool) & (o["opportunity_type"] != "renewal")].merge(cohort, on="account_id")
        hit = w[(w["closed_at"] >= w["mqa_at"]) & (w["closed_at"] <= w["mqa_at"] + h)]["account_id"].nunique()
        m = kpis.mqa_to_win_rate(ds, quarter=q)
        assert len(cohort) > 0
        assert (m.numerator, m.denominator) == (hit, len(cohort)), q
    # the previous definition (same-quarter MQAs) is gone: one name per concept
    assert "opportunity_conversion" not in kpis.KPI_FUNCTIONS


# ----------------------------------------------------------------- incremental pipeline
def test_extra_accounts_ci_by_hand():
    # two campaigns, 100 exposed each, effects 0.3 and 0.1, SE 0.05 each, correlation 0.5:
    # estimate 40; var = 5^2 + 5^2 + 2 * 0.5 * 5 * 5 = 75
    est, se, lo, hi = extra_accounts_ci([0.3, 0.1], [0.05, 0.05], [100, 100], [[1, 0.5], [0.5, 1]])
    assert est == pytest.approx(40) and se == pytest.approx(math.sqrt(75))
    assert (lo, hi) == pytest.approx((40 - 1.959964 * se, 40 + 1.959964 * se), rel=1e-6)


def test_correlation_of_identical_and_complementary_exposures():
    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.3).astype(float)
    t = rng.random(400) < 0.4
    corr = _correlation(y, np.column_stack([t, t, ~t]))
    assert corr[0, 1] == pytest.approx(1.0)        # the same exposure: the same estimate
    assert corr[0, 2] == pytest.approx(-1.0)       # swapped groups: the estimate with its sign flipped


@contextlib.contextmanager
def _zero_effects():
    from abmkit.sample import campaigns as C
    original = C.make_campaigns
    C.make_campaigns = lambda *a, **k: original(*a, **k).assign(risk_ratio=1.0, time_factor=1.0)
    try:
        yield
    finally:
        C.make_campaigns = original


def _planted_extra(truth) -> float:
    po = truth["potential_outcomes"]
    po = po[(po["transition"] == "qualified->sales_ready") & po["at_risk"].astype(bool)
            & po["complete_followup"].astype(bool) & po["exposed"].astype(bool)]
    return float((po["y1"].astype(float) - po["y0"].astype(float)).sum())


def _incremental(sample, with_influence: bool = False):
    from abmkit.uplift import campaign_influence
    ds = prepare(sample.dataset)
    infl = campaign_influence(ds, transitions=["qualified->sales_ready"], by="campaign", cox=False, progress=False)
    iv = incremental_value(infl, ds)
    return (iv, infl) if with_influence else iv


def test_incremental_pipeline_is_zero_within_its_ci_without_planted_effects():
    from abmkit.sample import generate
    with _zero_effects(), _no_raw_export():
        s = generate(n_accounts=700, seed=21)
    assert _planted_extra(s.truth) == 0
    iv, infl = _incremental(s, with_influence=True)
    assert iv.pipeline_low <= 0 <= iv.pipeline_high
    # each campaign's own standard error (not its Student-t CI width / 2z), and the estimate by hand
    rows = infl.table.merge(iv.table[["campaign_id", "effect_se", "counted"]], on="campaign_id")
    assert np.allclose(rows["effect_se"], rows["adj_se"], equal_nan=True)
    c = rows[rows["counted"]]
    assert iv.extra_accounts == pytest.approx(float((c["adj_diff"] * c["n_treated"]).sum()))
    assert iv.extra_low <= 0 <= iv.extra_high
    assert iv.value_per_account > 0 and iv.pipeline == pytest.approx(iv.extra_accounts * iv.value_per_account)
    # the rebuilt cohort is campaign_influence's: every exposed count matches
    assert iv.table["exposure_rebuilt"].all()


def test_incremental_pipeline_covers_the_planted_effect(churn_sample):
    truth = _planted_extra(churn_sample.truth)
    iv = _incremental(churn_sample)
    assert truth > 0                                      # the mailer plants extra sales-ready accounts
    assert iv.extra_low <= truth <= iv.extra_high
    assert iv.extra_low > 0                               # and it is detected
    tiles = iv.tiles().set_index("kpi")
    assert tiles.loc["incremental_pipeline", "value"] == pytest.approx(iv.pipeline)
    assert "caused" in tiles.loc["incremental_pipeline", "population"]
    assert np.isfinite(iv.roi) and iv.roi_low <= iv.roi <= iv.roi_high


# ----------------------------------------------------------------- the words: one sentence each
def test_docs_and_notebook_05_state_each_definition():
    import json
    from pathlib import Path

    from abmkit.formatting import KPI_LABELS

    root = Path(__file__).resolve().parents[1]
    docs = (root / "docs" / "kpis.md").read_text(encoding="utf-8")
    # every KPI of the table has its own section in docs/kpis.md that opens with one plain sentence
    sections = {line[4:].split(" (")[0]: i for i, line in enumerate(docs.split("\n")) if line.startswith("### ")}
    for kpi in list(kpis.KPI_FUNCTIONS) + ["Incremental pipeline and incremental ROI"]:
        heading = next((h for h in sections if h == kpi or h.startswith(kpi + " and ") or h.endswith(" and " + kpi)),
                       None)
        assert heading is not None, kpi
        body = docs.split(f"### {heading}", 1)[1].split("\n###", 1)[0]
        assert "**In one sentence:**" in body, kpi
    nb = json.loads((root / "notebooks" / "05_quarterly_abm_report.ipynb").read_text(encoding="utf-8"))
    text = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    for kpi in kpis.KPI_FUNCTIONS:
        assert f"**{KPI_LABELS[kpi]}**" in text, kpi          # every tile's own label, defined in words
    # the glossary entry of every KPI opens with its meaning in plain words, then the rule
    glossary = (root / "docs" / "glossary.md").read_text(encoding="utf-8")
    for term in ("influenced pipeline (touched before)", "ROI (touched before)", "incremental pipeline (caused, estimated)",
                 "win rate (won / closed opps)", "MQA-to-win rate (cohort)", "retention", "NRR (trailing 12 months)",
                 "NRR (quarter on quarter)", "customer lifetime value", "revenue state rule"):
        assert f"| **{term}** | *" in glossary and glossary.count(f"| **{term}** |") == 1, term
    assert "**Incremental pipeline**" in text and "touched before" in text and "caused" in text
    # the labels say which is which
    assert "touched before" in KPI_LABELS["influenced_pipeline"] and "caused" in KPI_LABELS["incremental_pipeline"]
    assert "12 months" in KPI_LABELS["net_revenue_retention"] and "quarter" in KPI_LABELS["net_revenue_retention_qoq"]


def test_incremental_pipeline_is_na_with_its_reason_without_campaign_rows(churn_toy):
    from abmkit.uplift import InfluenceResult
    infl = InfluenceResult(table=pd.DataFrame(columns=["level", "transition"]), history=pd.DataFrame(),
                           params={"alpha": 0.05, "exposure_days": 30, "outcome_days": 90, "data_end": "2026-10-01"})
    iv = incremental_value(infl, churn_toy)
    assert iv.not_applicable.startswith("no campaign was tested at qualified->sales_ready")
    tiles = iv.tiles().set_index("kpi")
    assert math.isnan(tiles.loc["incremental_pipeline", "value"])                 # n/a, never 0
    assert tiles.loc["incremental_pipeline", "note"].startswith("n/a — no campaign was tested")
    assert iv.headline.startswith("n/a — ")
