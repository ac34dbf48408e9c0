"""The executive summary (abmkit.summary): pure functions of the findings, checked on
hand-made findings whose every number is known, plus the period labels and the
attribution trend across periods."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from abmkit import summary as S
from abmkit.formatting import format_value
from abmkit.outputs import load_period_tables, load_report_findings, save_findings, save_table
from abmkit.period import format_period, report_title, resolve_period

Q3 = resolve_period(quarter="2026Q3")


def _kpis(**over) -> pd.DataFrame:
    rows = [
        # kpi, unit, value, previous
        ("market_reach", "ratio", 0.929, 0.929),
        ("mqa_accounts", "accounts", 222.0, 207.0),
        ("new_mqas", "accounts", 20.0, 33.0),
        ("influenced_pipeline", "currency", 5_852_327.39, 5_051_781.17),
        ("win_rate", "ratio", 0.099, 0.077),
        ("pipeline_velocity", "days", 83.2, 87.0),
    ]
    df = pd.DataFrame(rows, columns=["kpi", "unit", "value", "previous"])
    for k, v in over.items():
        df.loc[df.kpi == k, "value"] = v
    df["change"] = df["value"] - df["previous"]
    df["population"] = "target accounts"
    df["population_size"] = 831.0
    df["note"] = ""
    return df


EFFECTS = {
    "tests": 180, "alpha": 0.05, "exposure_days": 30, "outcome_days": 90,
    "significant_campaign_effects": [
        {"campaign": "Executive Gift Box Mailer", "transition": "qualified->sales_ready", "adj_diff": 0.5289,
         "q_value": 4.9e-59},
        {"campaign": "Product Webinar Series", "transition": "engaged->qualified", "adj_diff": 0.0909,
         "q_value": 0.004},
        {"campaign": "Cold Call Blitz", "transition": "aware->engaged", "adj_diff": -0.226, "q_value": 0.03},
    ],
    "stage_counts_end": {"qualified": 213, "aware": 351},
}
FUNNEL = pd.DataFrame({"step": ["population", "reached", "with_engagement", "mqa", "opportunity", "won"],
                       "accounts": [831, 772, 767, 222, 36, 8], "population": "target accounts"})


def test_positive_and_negative_campaign_effects_are_in_the_summary():
    s = S.executive_summary(_kpis(), period=Q3, funnel=FUNNEL, findings={"04": EFFECTS})
    text = " ".join(x.text for x in s.sentences)
    camp = next(x for x in s.sentences if x.kind == "campaigns").text
    for name in ("Executive Gift Box Mailer", "Product Webinar Series", "Cold Call Blitz"):
        assert name in camp, name
    # size in points and per 100 accounts, certainty in words, both signs
    assert "+52.9 pts" in camp and "about 53 more of every 100" in camp and "very strong evidence, q < 0.001" in camp
    assert "-22.6 pts" in camp and "about 23 fewer of every 100" in camp and "moderate evidence, q = 0.030" in camp
    assert "2 campaign effects helped accounts progress" in camp and "1 campaign effect held accounts back" in camp
    assert "3 of 180 campaign-by-step tests" in camp
    # the tests follow every stage entry with a full window, not the period's accounts: said so
    assert "followed 30 days for exposure and 90 for the outcome, not only this period's" in camp
    # the negative effect leads to a review, the largest positive to an extension (with its stage count)
    assert any(a.startswith("review Cold Call Blitz") for a in s.actions)
    assert any("extend Executive Gift Box Mailer" in a and "213 accounts" in a for a in s.actions)
    assert "Recommended: (1)" in text
    assert 4 <= len(s.sentences) <= 6


def test_every_significant_effect_reaches_the_summary_none_cut():
    many = [{"campaign": f"C{i}", "transition": "aware->engaged", "adj_diff": 0.01 * (i + 1), "q_value": 0.01}
            for i in range(5)] + [{"campaign": f"N{i}", "transition": "engaged->qualified", "adj_diff": -0.02 * (i + 1),
                                   "q_value": 0.02} for i in range(2)]
    camp = S.campaign_effects({"tests": 40, "significant_campaign_effects": many}).text
    assert "5 campaign effects helped" in camp and "and 2 more" in camp          # the 3 largest named
    assert all(f"C{i} " in camp for i in (4, 3, 2)) and "C0 " not in camp
    assert "N0 " in camp and "N1 " in camp                                          # negatives never dropped


def test_no_significant_effect_and_no_findings_say_so():
    none = S.campaign_effects({"tests": 12, "significant_campaign_effects": []}).text
    assert "none of 12 campaign-by-step tests is significant" in none
    na = S.campaign_effects({"not_applicable": {"campaign influence": "needs campaigns: none supplied"}}).text
    assert na == "Campaign effects on progression: n/a (needs campaigns: none supplied)."
    assert "n/a (the progression notebook saved no findings)" in S.campaign_effects(None).text


def test_key_numbers_equal_the_kpi_table_and_their_change():
    k = _kpis()
    s = S.key_numbers(k, Q3)
    for row in k.itertuples():
        if row.kpi in S.HEADLINE_KPIS:
            assert s.numbers[row.kpi] == format_value(row.value, row.unit)
            assert format_value(row.value, row.unit) in s.text
    assert s.text.startswith("Q3 2026 against Q2 2026: market reach 92.9% of the 831 target accounts (unchanged)")
    assert "MQA accounts at period end 222 (+15)" in s.text and "new MQAs 20 (-13)" in s.text
    assert "influenced pipeline 5.85M (+801k, +16%)" in s.text and "win rate 9.9% (+2.2 pts)" in s.text
    assert "pipeline_velocity" not in s.numbers                          # not a headline KPI


def test_missing_kpis_and_findings_never_crash_or_invent_zeros():
    k = _kpis(win_rate=float("nan"))
    k.loc[k.kpi == "win_rate", "note"] = "n/a — needs opportunities: none supplied"
    k = k[k.kpi != "mqa_accounts"]                                        # a KPI renamed away
    s = S.executive_summary(k, period=Q3, funnel=None, findings={})
    text = " ".join(x.text for x in s.sentences)
    assert "win rate n/a (needs opportunities: none supplied)" in text and "MQA accounts" not in text
    assert "Data quality: n/a" in text and "Campaign effects on progression: n/a" in text
    assert " 0 " not in text and "nan" not in text.lower().replace("n/a", "")
    empty = S.executive_summary(None, period=Q3)
    assert [x.kind for x in empty.sentences] == ["campaigns", "data_quality"]


def test_biggest_funnel_drop_is_the_lowest_step_conversion():
    sentence, drop = S.biggest_funnel_drop(FUNNEL)
    # step conversions: 772/831, 767/772, 222/767, 36/222 = 16.2% (lowest), 8/36
    assert drop["step"] == "opportunity" and drop["lost"] == 186 and math.isclose(drop["share"], 36 / 222)
    assert "of the 222 target accounts that were MQA at period end, only 36 (16.2%) opened an opportunity" in sentence.text
    none_won, _ = S.biggest_funnel_drop(FUNNEL.assign(accounts=[831, 772, 767, 222, 14, 0]))
    assert "of the 14 target accounts that opened an opportunity, none won an opportunity; 14 stopped" in none_won.text
    with_na = FUNNEL.assign(accounts=[831, 772, 767, None, 36, 8])    # the MQA step n/a: skipped, not a 0
    _, drop2 = S.biggest_funnel_drop(with_na)
    assert drop2["step"] == "opportunity" and drop2["entered"] == 767
    # the most accounts stop earlier (engaged -> MQA: 767 - 222 = 545 lost): named too, and acted on first
    assert drop["most_lost"]["step"] == "mqa" and drop["most_lost"]["lost"] == 545
    assert ("The most accounts stop at another step: of the 767 that engaged, 545 did not go on (only 222, 28.9%, "
            "were MQA at period end).") in sentence.text
    actions = S.recommended_actions(None, None, drop, [], {"stalled_accounts": 122})
    assert actions == ["widen the buying groups: 545 engaged accounts have too few engaged decision makers to be MQA",
                       "ask sales to follow up the 186 MQA accounts without an opportunity (122 stalled accounts: "
                       "tables/stalled_accounts.csv)"]
    # when the weakest step is also where the most accounts stop: one step, one action
    same, one = S.biggest_funnel_drop(FUNNEL.assign(accounts=[831, 772, 767, 700, 100, 90]))
    assert one["step"] == "opportunity" and one["most_lost"] is None and "another step" not in same.text


def test_data_quality_alerts_and_the_action_they_lead_to():
    clean = {"reject_rate": 0.12, "top_reject_reason": "unmapped_channel", "sanity_critical_count": 1,
             "sanity_warnings": ["warning: 71 contacts (1%) have a placeholder company name: test records"],
             "tables_not_supplied": ["revenue"]}
    sentence, alerts, warned = S.data_quality_alerts(clean, {"match_rate": 0.62}, {"all_credits_conserved": False})
    assert alerts == ["1 critical data check failed", "12.0% of rows rejected, most often unmapped channel",
                      "not in the export: revenue (analyses needing them are n/a)",
                      "62.0% of contacts mapped to an account",
                      "attribution credit does not add up to the conversions (page 03)"]
    assert warned == ["71 contacts (1%) have a placeholder company name"]
    assert sentence.text.startswith("Data quality: 5 alerts (1 critical data check failed;")
    acts = S.recommended_actions(None, None, None, alerts, None, warned)
    assert acts[0].startswith("fix the data first (1 critical data check failed)")
    assert acts[-1].startswith("check the 1 sanity warning")
    fine, a2, w2 = S.data_quality_alerts({"reject_rate": 0.006}, {"match_rate": 0.955})
    assert fine.text == ("Data quality: no alert; 0.6% of rows rejected; 95.5% of contacts mapped to an account.")
    assert a2 == [] and w2 == []


def test_a_kpi_that_fell_sharply_is_an_action():
    k = _kpis(market_reach=0.85)                                          # -7.9 pts: at least 5 pts
    acts = S.recommended_actions(k, None, None, [])
    assert acts == ["find out why market reach fell (-7.9 pts): the segment charts show where",
                    "find out why new MQAs fell (-13): the segment charts show where"]   # -39%
    slower = _kpis()
    assert not any("velocity" in a for a in S.recommended_actions(slower, None, None, []))  # faster is better
    five = _kpis()
    five.loc[five.kpi == "new_mqas", ["previous", "change"]] = [25.0, -5.0]    # -20% and 5 accounts: flagged
    five.loc[five.kpi == "market_reach", "change"] = 0.0
    assert S.recommended_actions(five, None, None, []) == [
        "find out why new MQAs fell (-5): the segment charts show where"]
    few = _kpis()
    few.loc[few.kpi == "new_mqas", ["previous", "change"]] = [20.0, -4.0]       # -20% but only 4 accounts
    assert not any("new MQAs" in a for a in S.recommended_actions(few, None, None, []))


def test_summary_html_escapes_campaign_names():
    bad = {"significant_campaign_effects": [{"campaign": "<script>alert(1)</script>", "transition": "a->b",
                                             "adj_diff": 0.2, "q_value": 0.001}]}
    page = S.executive_summary(_kpis(), period=Q3, findings={"04": bad}).to_html()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    actions = S.executive_summary(_kpis(), period=Q3, findings={"04": EFFECTS}).to_html()
    assert "<strong>Recommended.</strong> (1) review Cold Call Blitz" in actions   # one lead-in, not two


def test_period_labels_one_format_and_no_quarterly_title_for_28_days():
    four_weeks = resolve_period(start="2026-03-01", end="2026-03-29")
    assert report_title(four_weeks) == "ABM report: 1 Mar to 28 Mar 2026 (28 days)"
    assert "Quarterly" not in report_title(four_weeks)
    assert report_title(Q3) == "Quarterly ABM report: Q3 2026"
    assert format_period(Q3.previous, dates=False) == "Q2 2026"
    assert format_period(resolve_period(start="2026-12-20", end="2027-01-17")) == "20 Dec 2026 to 16 Jan 2027 (28 days)"
    assert report_title(resolve_period(start="2026-02-01", end="2026-03-01")) == "Monthly ABM report: February 2026"
    s = S.key_numbers(_kpis(), resolve_period(start="2026-03-08", end="2026-04-05"))
    assert s.text.startswith("8 Mar to 4 Apr 2026 against 8 Feb to 7 Mar 2026:")


def test_attribution_trend_over_four_periods(tmp_path):
    periods = [Q3, Q3.previous, Q3.previous.previous, Q3.previous.previous.previous]
    reports = tmp_path / "reports"
    current = tmp_path / "staging"

    def shares(email, model="linear"):
        return pd.DataFrame({"channel": ["email", "events"], "model": model, "share": [email, 1 - email]})

    save_table(pd.concat([shares(0.6), shares(0.9, "first_touch")]), current, "attribution_shares")
    save_table(shares(0.5), reports / "2026Q2", "attribution_shares")
    (reports / "2026Q1").mkdir(parents=True)                              # a report without the table
    frames, why = load_period_tables("attribution_shares", [p.label for p in periods], current_label="2026Q3",
                                     current_dir=current, reports_dir=reports)
    assert why == {"2026Q1": "its report has no attribution_shares table (the analysis was n/a or not run)",
                   "2025Q4": "no published report for this period"}
    table, model, notes = S.attribution_trend(frames, periods, reasons=why)
    assert model == "linear"
    assert list(table.columns) == ["channel", "Q2 2026", "Q3 2026"]       # oldest first
    assert table.set_index("channel").loc["email"].tolist() == [0.5, 0.6]
    assert notes == ["Q1 2026: n/a (its report has no attribution_shares table (the analysis was n/a or not run))",
                     "Q4 2025: n/a (no published report for this period)"]
    _, _, none = S.attribution_trend({}, periods)
    assert len(none) == 4


def test_load_report_findings_by_notebook_number(tmp_path):
    save_findings({"reject_rate": 0.01}, tmp_path, "01_data_cleaning")
    save_findings(EFFECTS, tmp_path, "04_campaign_influence_on_progression")
    got = load_report_findings(tmp_path)
    assert set(got) == {"01", "04"} and got["04"]["tests"] == 180


def test_headline_numbers_as_saved_for_the_period_index():
    k = _kpis(win_rate=float("nan"))
    k.loc[k.kpi == "win_rate", "note"] = "n/a — no closed opportunity"
    rows = {r["kpi"]: r for r in S.headline_numbers(k)}
    assert rows["influenced_pipeline"] == {"kpi": "influenced_pipeline", "label": "Influenced pipeline",
                                           "value": "5.85M", "change": "+801k, +16%", "note": ""}
    assert rows["win_rate"]["value"] == "n/a" and rows["win_rate"]["note"] == "no closed opportunity"


@pytest.mark.parametrize("published, expected", [({"2026Q2"}, 'href="../2026Q2/x.html"'),
                                                 (set(), "previous period (Q2 2026): no report published")])
def test_period_links(published, expected):
    assert expected in S.period_nav_html(Q3, published, page="x.html")


def test_without_touches_the_sales_kpis_lead():
    k = _kpis(market_reach=float("nan"), mqa_accounts=float("nan"), new_mqas=float("nan"),
              influenced_pipeline=float("nan"))
    for kpi in ("market_reach", "mqa_accounts", "new_mqas", "influenced_pipeline"):
        k.loc[k.kpi == kpi, "note"] = "n/a — needs touchpoints: none supplied"
    s = S.key_numbers(k, Q3)
    assert "win rate 9.9% (+2.2 pts)" in s.text and "pipeline velocity 83.2 days (-3.8 days)" in s.text
    assert "market reach n/a (needs touchpoints: none supplied)" in s.text
