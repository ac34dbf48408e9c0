"""The report on incomplete exports (issue 18): starting from the sample export, remove one
table or field at a time (touchpoints, contacts, campaigns, revenue, persona/title fields,
campaign costs), and keep only accounts + opportunities, then run the full report. Each
run must exit 0, render every page without a traceback, write strict JSON findings, and
never present a 0 or NaN for a KPI whose needs are missing: it is n/a with a reason.

One module, so ``pytest -n 2 --dist loadfile`` runs the matrix on one worker (each run
starts two notebook kernels itself). Marked ``notebook`` (tests/conftest.py: it calls
run_report). About 25 s per variant on the sample.
"""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from abmkit.applicability import KPI_NEEDS

REPO = Path(__file__).resolve().parents[1]
QUARTER = "2026Q3"
PAGES = ("01_data_cleaning", "02_lead_to_account_mapping", "03_attribution_model_comparison",
         "04_campaign_influence_on_progression", "05_quarterly_abm_report")

#: variant -> (tables removed from the raw export, "table.column" fields unmapped)
VARIANTS = {
    "no_touchpoints": (("touchpoints",), ()),
    "no_contacts": (("contacts",), ()),
    "no_campaigns": (("campaigns",), ()),
    "no_revenue": (("revenue",), ()),
    "no_persona_title": ((), ("contacts.persona", "contacts.title")),
    "no_costs": ((), ("campaigns.cost",)),
    "opportunities_only": (("touchpoints", "contacts", "campaigns", "revenue"), ()),
}
#: the sales KPIs that must work with accounts and opportunities alone (Build 8)
SALES_KPIS = ("opportunity_creation", "win_rate", "average_deal_size", "pipeline_velocity")


def make_variant(sample_dir: Path, dest: Path, tables=(), fields=()) -> Path:
    """A copy of the sample's raw export without ``tables`` (files deleted, column map
    entries removed) and with ``fields`` unmapped; returns the copy's folder."""
    raw = dest / "raw"
    shutil.copytree(Path(sample_dir) / "raw", raw)
    cm_path = raw / "column_map.yaml"
    cm = yaml.safe_load(cm_path.read_text("utf-8"))
    for t in tables:
        (raw / cm["tables"][t]["file"]).unlink()
        del cm["tables"][t]
    for f in fields:
        t, col = f.split(".")
        del cm["tables"][t]["columns"][col]
    cm_path.write_text(yaml.safe_dump(cm, sort_keys=False), "utf-8")
    return dest


def _strict_json(text: str):
    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant} in findings")
    return json.loads(text, parse_constant=refuse)


def _missing_needs(kpi: str, tables, fields) -> bool:
    needs = KPI_NEEDS[kpi]
    return bool(set(needs.tables) & set(tables)) or bool(set(needs.columns) & set(fields)) or any(
        c.split(".")[0] in tables for c in needs.columns)


def _assert_na_notes(frame: pd.DataFrame, value: str, what: str) -> None:
    na = frame[frame[value].isna()]
    notes = na["note"].astype(object).fillna("").astype(str)   # an all-empty column reads as float
    bad = na[~notes.str.match(r"^n/a — \S")]
    assert bad.empty, f"{what}: NaN without an 'n/a — <reason>' note:\n{bad}"


@pytest.fixture(scope="module", params=list(VARIANTS))
def variant_run(request, small_sample_dir, tmp_path_factory):
    from abmkit.report import run_report

    name = request.param
    tables, fields = VARIANTS[name]
    base = tmp_path_factory.mktemp(f"matrix-{name}")
    data = make_variant(Path(small_sample_dir), base / "export", tables, fields)
    out = base / "reports"
    rc = run_report(quarter=QUARTER, data=data, out_dir=out, notebooks_dir=REPO / "notebooks", progress=False)
    return {"name": name, "rc": rc, "report": out / QUARTER, "tables": tables, "fields": fields}


def test_report_completes_and_says_what_does_not_apply(variant_run):
    r = variant_run
    assert r["rc"] == 0, f"{r['name']}: report exit code {r['rc']}"
    report = r["report"]
    # every page renders, none with a traceback
    for page in (*PAGES, "index"):
        html = report / f"{page}.html"
        assert html.exists(), f"{r['name']}: {html.name} missing"
        text = html.read_text("utf-8")
        assert "Traceback" not in text, f"{r['name']}: traceback in {html.name}"
    # every findings file is strict JSON, and every n/a it records carries a reason
    findings = {}
    for page in PAGES:
        path = report / "findings" / f"{page}.json"
        assert path.exists(), f"{r['name']}: {path.name} missing"
        findings[page] = _strict_json(path.read_text("utf-8"))
        for section, reason in findings[page].get("not_applicable", {}).items():
            assert isinstance(reason, str) and len(reason) > 12, (page, section, reason)
    # KPIs: no value for a KPI whose needs are missing (NaN with "n/a — <reason>"), never 0
    kpis = pd.read_csv(report / "tables" / "kpis.csv", keep_default_na=True).set_index("kpi")
    f05 = findings["05_quarterly_abm_report"]
    for kpi in KPI_NEEDS:
        if _missing_needs(kpi, r["tables"], r["fields"]):
            assert math.isnan(kpis.loc[kpi, "value"]), f"{r['name']}: {kpi} = {kpis.loc[kpi, 'value']}"
            assert str(kpis.loc[kpi, "note"]).startswith("n/a — needs "), (r["name"], kpi, kpis.loc[kpi, "note"])
            assert f05["kpis"][kpi] is None and f05["not_applicable"][kpi], (r["name"], kpi)
    _assert_na_notes(kpis.reset_index(), "value", f"{r['name']} kpis.csv")
    for table in ("kpi_history", "kpi_segments", "account_funnel"):
        frame = pd.read_csv(report / "tables" / f"{table}.csv")
        _assert_na_notes(frame, "accounts" if table == "account_funnel" else "value", f"{r['name']} {table}.csv")
    # a missing table is n/a on the pages that need it, with the reason
    if "touchpoints" in r["tables"]:
        for page in ("02_lead_to_account_mapping", "03_attribution_model_comparison",
                     "04_campaign_influence_on_progression"):
            assert "needs touchpoints: none supplied" in findings[page]["not_applicable"].values(), page
        page = (report / "05_quarterly_abm_report.html").read_text("utf-8")
        assert "n/a — needs touchpoints: none supplied" in page
        funnel = pd.read_csv(report / "tables" / "account_funnel.csv").set_index("step")
        assert funnel.loc[["reached", "with_engagement", "mqa"], "accounts"].isna().all()
        assert funnel.loc["won", "accounts"] > 0     # won deals of the population still count
    if "contacts" in r["tables"]:
        assert findings["02_lead_to_account_mapping"]["not_applicable"]["mapping"] == "needs contacts: none supplied"
        assert "match_rate" not in findings["02_lead_to_account_mapping"]
    # the sales KPIs work with accounts and opportunities alone (Build 8)
    for kpi in SALES_KPIS:
        assert not math.isnan(kpis.loc[kpi, "value"]) and kpis.loc[kpi, "value"] > 0, (r["name"], kpi)
    pipeline = pd.read_csv(report / "tables" / "pipeline_by_period.csv")
    assert pipeline["created"].sum() > 0 and pipeline["won_amount"].sum() > 0
    if "touchpoints" in r["tables"]:
        assert pipeline["influenced_amount"].isna().all()   # n/a, not 0
