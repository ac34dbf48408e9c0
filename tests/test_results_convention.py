"""Every result object follows one convention (:mod:`abmkit.results`):

``.summary`` is a property giving a plain DataFrame (never a dict, a str, a callable
or a DataFrame subclass); ``print_summary()``, ``str()`` and ``_repr_html_()`` give
text. Each result class is built here from a tiny hand-made input (most directly
from their constructors, so this test does not depend on analysis signatures), and
a discovery test makes sure a new ``Result`` subclass gets a builder here.
"""
from __future__ import annotations

import importlib
import inspect

import numpy as np
import pandas as pd
import pytest

from abmkit.results import Result
from abmkit.schema import Dataset

#: modules holding result classes (imported for the discovery test)
RESULT_MODULES = ("abmkit.schema", "abmkit.prepared", "abmkit.engagement", "abmkit.journeys", "abmkit.kpis",
                  "abmkit.mapping", "abmkit.progression", "abmkit.uplift", "abmkit.attribution.compare",
                  "abmkit.attribution.paths", "abmkit.scale", "abmkit.sample", "abmkit.clean.core",
                  "abmkit.clean.sanity", "abmkit.applicability", "abmkit.incremental_value", "abmkit.drilldown",
                  "abmkit.training")


def tiny_dataset() -> Dataset:
    """Two accounts, three contacts, five touches, two opportunities (one won)."""
    return Dataset.from_frames(
        accounts=pd.DataFrame({"account_id": ["a1", "a2"], "account_name": ["Acme", "Globex"],
                               "domain": ["acme.com", "globex.com"], "created_at": ["2026-01-01"] * 2}),
        contacts=pd.DataFrame({"contact_id": ["c1", "c2", "c3"], "email": ["ann@acme.com", "bo@acme.com",
                                                                          "cy@globex.com"],
                               "crm_account_id": ["a1", "a1", "a2"]}),
        touchpoints=pd.DataFrame({
            "touchpoint_id": ["t1", "t2", "t3", "t4", "t5"], "contact_id": ["c1", "c2", "c1", "c3", None],
            "account_id": ["a1", "a1", "a1", "a2", "a2"],
            "occurred_at": ["2026-01-05", "2026-01-20", "2026-02-10", "2026-02-01", "2026-03-01"],
            "channel": ["email", "webinar", "event", "email", "display"],
            "touch_type": ["email_click", "webinar_attended", "event_attended", "email_click", "impression"]}),
        opportunities=pd.DataFrame({"opportunity_id": ["o1", "o2"], "account_id": ["a1", "a2"],
                                    "created_at": ["2026-02-15", "2026-03-05"],
                                    "closed_at": ["2026-03-20", None], "is_won": [True, False],
                                    "amount": [100.0, 50.0]}))


UTC = pd.Timestamp("2026-03-31", tz="UTC")


# --------------------------------------------------------------------------- builders
def build_dataset():
    return tiny_dataset()


def build_resolved_dataset():
    from abmkit.prepared import prepare
    return prepare(tiny_dataset())


def build_sample_data():
    from abmkit.sample import SampleData
    return SampleData(dataset=tiny_dataset(), params={"seed": 0, "n_accounts": 2})


def build_stage_history():
    from abmkit.progression import StageHistory
    table = pd.DataFrame({"account_id": ["a1", "a1", "a2"], "stage": ["unaware", "aware", "unaware"],
                          "entered_at": pd.to_datetime(["2026-01-01", "2026-01-20", "2026-01-01"], utc=True)})
    return StageHistory(table=table, data_end=UTC, touches_without_account=0)


def build_conversion_journeys():
    from abmkit.journeys import conversion_journeys
    return conversion_journeys(tiny_dataset())


def build_path_set():
    from abmkit.attribution.paths import read_paths
    return read_paths(pd.DataFrame({"path": ["email > webinar", "email"], "total_conversions": [2, 0],
                                    "total_null": [1, 3]}))


def build_comparison_result():
    from abmkit.attribution.compare import comparison_from_credits
    credits = pd.DataFrame({"channel": ["email", "webinar"] * 2, "model": ["linear"] * 2 + ["first_touch"] * 2,
                            "conversions": [1.5, 0.5, 2.0, 0.0], "pipeline": [150.0, 50.0, 200.0, 0.0],
                            "revenue": [0.0] * 4})
    conservation = pd.DataFrame({"model": ["linear", "first_touch"], "ok": [True, True]})
    no_touch = pd.DataFrame(columns=["conversion_id", "account_id", "converted_at", "amount"])
    return comparison_from_credits(credits, ["linear", "first_touch"], conservation, no_touch,
                                   {"milestone": "opportunity_created", "conversions": 2}, ["email", "webinar"])


def build_channel_credits():
    from abmkit.scale import ChannelCredits
    credits = pd.DataFrame({"channel": ["email", "webinar"], "model": ["linear"] * 2, "conversions": [1.5, 0.5],
                            "pipeline": [150.0, 50.0], "revenue": [0.0, 0.0]})
    conservation = pd.DataFrame({"model": ["linear"], "conversions_given": [2.0], "conversions_credited": [2.0],
                                 "pipeline_given": [200.0], "pipeline_credited": [200.0], "revenue_given": [0.0],
                                 "revenue_credited": [0.0], "ok": [True]})
    return ChannelCredits(credits=credits, conservation=conservation, no_touch=pd.DataFrame(),
                          info={"milestone": "opportunity_created", "conversions": 2, "partitions": 1})


def build_mqa_result():
    from abmkit.engagement import MQAResult
    accounts = pd.DataFrame({"account_id": ["a1", "a2"], "is_mqa": [True, False],
                             "mqa_at": pd.to_datetime(["2026-02-10", None], utc=True), "score": [3.0, 1.0]})
    coverage = pd.DataFrame({"account_id": ["a1", "a2"], "engaged_contacts": [2, 1], "buying_group_size": [5, 5],
                             "coverage": [0.4, 0.2]})
    return MQAResult(accounts=accounts, top_contacts=pd.DataFrame(columns=["account_id", "rank", "contact_id"]),
                     missing_personas=pd.DataFrame(columns=["account_id", "personas_reached", "missing_personas"]),
                     stalled=pd.DataFrame(columns=["account_id", "score_before", "score_now", "change", "stage"]),
                     buying_group_coverage=coverage, as_of=UTC, params={"rule": "3 decision makers"},
                     notes=["no persona data"])


def build_kpi_table():
    from abmkit.kpis import KPITable
    from abmkit.period import resolve_period
    overall = pd.DataFrame({"group": ["reach and engagement"], "kpi": ["market_reach"], "unit": ["share"],
                            "value": [0.5], "numerator": [1.0], "denominator": [2.0], "previous": [0.25],
                            "change": [0.25], "change_pct": [1.0], "note": [""]})
    return KPITable(period=resolve_period(quarter="2026Q1"), overall=overall)


def build_mapping_report():
    from abmkit.mapping import mapping_report
    m = pd.DataFrame({"contact_id": ["c1", "c2"], "account_id": ["a1", None], "method": ["crm", "unmatched"],
                      "confidence": [1.0, 0.0], "reason": ["crm_account_id", "no_match"]})
    return mapping_report(m, truth=pd.DataFrame({"contact_id": ["c1", "c2"], "true_account_id": ["a1", "a2"]}))


def build_transition_baseline():
    from abmkit.progression import TransitionBaseline
    table = pd.DataFrame({"transition": ["aware->engaged"], "accounts": [3], "median_touches": [3.0],
                          "median_contacts": [2.0], "median_days": [21.0], "top_channel": ["email"]})
    return TransitionBaseline(table, pd.DataFrame(columns=["transition", "channel", "touches", "share"]),
                              pd.DataFrame(columns=["transition", "sequence", "accounts", "share"]))


def build_dual_funnel():
    from abmkit.progression import DualFunnel
    contacts = pd.DataFrame({"step": ["inquiry", "mql"], "count": [10, 4], "share_of_first": [1.0, 0.4]})
    accounts = pd.DataFrame({"stage": ["aware", "engaged"], "count": [5, 2], "share_of_first": [1.0, 0.4]})
    return DualFunnel(contacts=contacts, accounts=accounts, mql_account_engaged_share=0.75, n_mql=4)


def build_two_group_result():
    from abmkit.uplift import two_group
    df = pd.DataFrame({"t": [1] * 40 + [0] * 60, "y": [1] * 20 + [0] * 20 + [1] * 15 + [0] * 45})
    return two_group(df, "t", "y", min_group_size=10)


def build_influence_result():
    from abmkit.uplift import InfluenceResult
    table = pd.DataFrame({"level": ["campaign", "channel"], "unit": ["CMP001", "email"],
                          "transition": ["engaged->qualified"] * 2, "diff": [0.2, 0.01],
                          "adj_diff": [0.15, 0.0], "adj_diff_low": [0.05, -0.1], "adj_diff_high": [0.25, 0.1],
                          "q_value": [0.01, 0.9], "flag": [False, True]})
    params = {"alpha": 0.05, "estimand": "ATT", "exposure_days": 30, "outcome_days": 90}
    return InfluenceResult(table=table, history=pd.DataFrame(), params=params)


def build_clean_result():
    from abmkit.clean import RawFrame, clean_frames
    raw = pd.DataFrame({"Id": ["1", "1", "2"], "Name": ["Acme", "Acme", ""]})
    cm = {"tables": {"accounts": {"file": "a.csv", "columns": {"account_id": "Id", "account_name": "Name"}}}}
    return clean_frames({"accounts": [RawFrame("a.csv", raw)]}, cm)


def build_sanity_report():
    from abmkit.clean.sanity import sanity_checks
    return sanity_checks(tiny_dataset(), period="2026Q1")


def build_applicability():
    from abmkit.applicability import check
    return check(tiny_dataset(), "cost_per_acquired_account", "2026Q1")   # no campaigns: n/a


def build_incremental_value():
    from abmkit.incremental_value import IncrementalValue
    table = pd.DataFrame({"campaign_id": ["CMP003"], "n_treated": [100], "adj_diff": [0.3], "counted": [True]})
    return IncrementalValue(table=table, extra_accounts=30.0, extra_low=10.0, extra_high=50.0,
                            value_per_account=20_000.0, pipeline=600_000.0, pipeline_low=200_000.0,
                            pipeline_high=1_000_000.0, cohort_start=pd.Timestamp("2025-01-01", tz="UTC"),
                            cohort_end=pd.Timestamp("2026-06-30", tz="UTC"))



def build_incremental_result():
    from abmkit.attribution.incremental import IncrementalResult
    channels = pd.DataFrame({"channel": ["event", "display"], "estimable": [True, False],
                             "why_not": [None, "every at-risk day was exposed to it"],
                             "incremental_conversions": [12.0, np.nan], "low": [8.0, np.nan], "high": [16.0, np.nan]})
    return IncrementalResult(channels=channels, replicates=np.zeros((0, 1)), n_boot=0, seed=0,
                             info={"from_stage": "sales_ready", "accounts_at_risk": 10})


def build_truth_comparison():
    from abmkit.attribution.truth import compare_to_truth

    class _Comparison:
        shares = pd.DataFrame({"linear": [0.6, 0.4]}, index=pd.Index(["event", "display"], name="channel"))
        intervals = pd.DataFrame({"channel": ["event", "display"], "model": "linear", "low": [0.5, 0.3],
                                  "high": [0.7, 0.5]})
    return compare_to_truth(_Comparison(), pd.DataFrame({"channel": ["event", "display"],
                                                         "expected_conversions_lost": [5.0, 0.0]}))


def build_pages():
    from abmkit.drilldown import Pages
    return Pages(pages=pd.DataFrame({"title": ["MQA accounts and whom to call"], "path": ["drilldown/accounts.html"]}),
                 tables=pd.DataFrame(), headline_text="2 accounts became MQA in 2026Q3")


def build_check():
    from abmkit.training import check
    return check("02.new_mqas", None)


def build_executive_summary():
    from abmkit.period import resolve_period
    from abmkit.summary import executive_summary
    kpi = pd.DataFrame({"kpi": ["market_reach"], "unit": ["ratio"], "value": [0.62], "previous": [0.55],
                        "change": [0.07], "population": ["target accounts"], "population_size": [800]})
    return executive_summary(kpi, period=resolve_period(quarter="2026Q3"))


def build_order_selection():
    from abmkit.attribution import read_paths, select_order
    t = pd.DataFrame({"path": ["a > b", "b > a", "a"], "total_conversions": [30, 0, 5], "total_null": [0, 30, 20]})
    return select_order(read_paths(t), max_order=2, folds=3)


BUILDERS = {
    "Pages": build_pages,
    "Check": build_check,
    "Dataset": build_dataset,
    "ResolvedDataset": build_resolved_dataset,
    "SampleData": build_sample_data,
    "StageHistory": build_stage_history,
    "ConversionJourneys": build_conversion_journeys,
    "PathSet": build_path_set,
    "ComparisonResult": build_comparison_result,
    "ChannelCredits": build_channel_credits,
    "MQAResult": build_mqa_result,
    "KPITable": build_kpi_table,
    "MappingReport": build_mapping_report,
    "TransitionBaseline": build_transition_baseline,
    "DualFunnel": build_dual_funnel,
    "TwoGroupResult": build_two_group_result,
    "InfluenceResult": build_influence_result,
    "CleanResult": build_clean_result,
    "SanityReport": build_sanity_report,
    "Applicability": build_applicability,
    "IncrementalValue": build_incremental_value,
    "IncrementalResult": build_incremental_result,
    "TruthComparison": build_truth_comparison,
    "ExecutiveSummary": build_executive_summary,
    "OrderSelection": build_order_selection,
}


def _result_subclasses() -> set[str]:
    for name in RESULT_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:   # an optional module (extras) that is not installed
            continue
    seen, todo = set(), [Result]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub.__module__.startswith("abmkit.") and sub.__name__ not in seen:
                seen.add(sub.__name__)
                todo.append(sub)
    return seen


# --------------------------------------------------------------------------- tests
def test_every_result_class_has_a_builder_here():
    missing = _result_subclasses() - set(BUILDERS)
    assert not missing, f"result classes without a builder in {__file__}: {sorted(missing)}"


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_result_follows_the_convention(name, capsys):
    obj = BUILDERS[name]()
    assert type(obj).__name__ == name and isinstance(obj, Result)
    assert isinstance(inspect.getattr_static(type(obj), "summary"), property), "summary must be a property"
    summary = obj.summary
    assert type(summary) is pd.DataFrame, f"{name}.summary is {type(summary)!r}, not a plain DataFrame"
    assert len(summary.columns) > 0

    text = str(obj)
    assert isinstance(text, str) and text.strip()
    page = obj._repr_html_()
    assert isinstance(page, str) and page.strip() and "<" in page

    obj.print_summary()
    printed = capsys.readouterr().out
    assert printed.strip() and printed.rstrip("\n") == text.rstrip("\n")
    obj.print_summary(decimals=1)
    assert capsys.readouterr().out.strip()


@pytest.mark.parametrize("name", ["DualFunnel", "TwoGroupResult", "InfluenceResult", "TransitionBaseline",
                                  "CleanResult", "SanityReport"])
def test_headline_sentence_is_kept_and_printed(name):
    obj = BUILDERS[name]()
    assert isinstance(obj.headline, str) and obj.headline
    assert obj.headline.splitlines()[0] in str(obj)


def test_dict_views_stay_available():
    cj = build_conversion_journeys()
    assert isinstance(cj.info, dict) and cj.info["conversions"] == 2
    assert cj.summary.set_index("metric").loc["conversions", "value"] == 2
    ps = build_path_set()
    assert ps.info["paths"] == 2 and ps.summary.set_index("metric").loc["paths", "value"] == 2


def test_clean_result_summary_is_the_quality_frame():
    r = build_clean_result()
    assert type(r.to_frame()) is pd.DataFrame and r.to_frame() is r.summary
    assert r.summary[["rows_in", "rows_clean", "rows_rejected", "rows_merged"]].values.tolist() == [[3, 1, 1, 1]]
    assert "Data-quality summary" in str(r) and "missing_required" in str(r)


def test_html_is_escaped():
    from abmkit.results import Result as R

    class Tagged(R):
        _summary_title = "<b>title</b>"

        @property
        def summary(self):
            return pd.DataFrame({"metric": ["<script>"], "value": [np.float64(1.0)]})

    page = Tagged()._repr_html_()
    assert "<script>" not in page and "&lt;script&gt;" in page and "&lt;b&gt;title" in page
