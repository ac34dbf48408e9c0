"""Data sanity checks (issue 18, build item 2): hand-made exports for each check (load
stamps, closes before creates, touches after conversions, placeholder domains / ids /
names, the period outside the data, the rejected share), the warning text, and the
analyses that say so where their numbers appear (velocity notes, the mapping report's
lists, ``validate`` on the command line, notebook 01's findings)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from abmkit import kpis
from abmkit.clean import clean_exports, quality
from abmkit.mapping import map_contacts, mapping_report
from abmkit.period import resolve_period
from abmkit.schema import Dataset

ROOT = Path(__file__).resolve().parents[1]


def write_export(folder: Path, tables: dict[str, pd.DataFrame]) -> Path:
    """One CSV per canonical table (headers = canonical names) and a column map naming
    every column as itself. Returns the column map's path."""
    folder.mkdir(parents=True, exist_ok=True)
    cm = {"version": 1, "defaults": {"timezone": "UTC"}, "tables": {}}
    for name, df in tables.items():
        df.to_csv(folder / f"{name}.csv", index=False)
        cm["tables"][name] = {"file": f"{name}.csv", "columns": {c: c for c in df.columns}}
    path = folder / "column_map.yaml"
    path.write_text(yaml.safe_dump(cm, sort_keys=False), encoding="utf-8")
    return path


def accounts(n: int) -> pd.DataFrame:
    return pd.DataFrame({"account_id": [f"a{i:02d}" for i in range(1, n + 1)],
                         "account_name": [f"Company {i}" for i in range(1, n + 1)],
                         "domain": [f"company{i}.com" for i in range(1, n + 1)]})


def check(report, check_id: str, table: str, column: str | None = None) -> pd.Series:
    c = report.checks
    sel = (c["check"] == check_id) & (c["table"] == table)
    if column is not None:
        sel &= c["column"] == column
    assert sel.sum() == 1, c[["check", "table", "column", "severity"]]
    return c[sel].iloc[0]


# ----------------------------------------------------------------- the real-org export
LOAD = "2024-05-02T14:03:11Z"          # every opportunity's CreatedDate: a data-load stamp
LOAD_TOUCH = "2024-05-03T00:03:11Z"    # every campaign member's, 10 hours later


@pytest.fixture(scope="module")
def stamped_export(tmp_path_factory) -> tuple[Path, Path]:
    """30 accounts with one contact each; 30 opportunities all created on one instant and
    40 touches all on another, 10 hours later (the load-stamped org of issue 18)."""
    folder = tmp_path_factory.mktemp("stamped")
    acc = accounts(30)
    contacts = pd.DataFrame({"contact_id": [f"c{i:02d}" for i in range(1, 31)],
                             "crm_account_id": acc["account_id"],
                             "created_at": pd.date_range("2023-01-01", periods=30, freq="7D").strftime("%Y-%m-%d")})
    touches = pd.DataFrame({"touchpoint_id": [f"t{i:02d}" for i in range(1, 41)],
                            "occurred_at": LOAD_TOUCH, "channel": ["Webinar"] * 25 + ["Trade Show"] * 15,
                            "touch_type": "Webinar Attended",
                            "contact_id": [f"c{(i % 30) + 1:02d}" for i in range(40)]})
    opps = pd.DataFrame({"opportunity_id": [f"o{i:02d}" for i in range(1, 31)], "account_id": acc["account_id"],
                         "created_at": LOAD, "amount": 1000})
    cm = write_export(folder, {"accounts": acc, "contacts": contacts, "touchpoints": touches,
                               "opportunities": opps})
    return folder, cm


@pytest.fixture(scope="module")
def stamped(stamped_export):
    folder, cm = stamped_export
    return clean_exports(folder, cm)


def test_load_stamps_are_critical_with_instant_and_uses(stamped):
    r = stamped.sanity_checks()
    opp = check(r, "load_stamp", "opportunities", "created_at")
    assert (opp["severity"], opp["count"], opp["share"]) == ("critical", 30, 1.0)
    assert opp["message"].startswith("opportunities.created_at: 30 of 30 values (100%) are the same instant, "
                                     "2024-05-02 14:03:11 UTC — a data-load or migration stamp")
    assert "Conversion journeys (03)" in opp["message"] and "pipeline and deal velocity (05)" in opp["message"]
    assert "real date" in opp["what_to_do"]
    tp = check(r, "load_stamp", "touchpoints", "occurred_at")
    assert (tp["severity"], tp["count"]) == ("critical", 40)
    assert "2024-05-03 00:03:11 UTC" in tp["message"]
    assert "channels on that instant: webinar 25, event 15" in tp["examples"]
    # contacts.created_at is spread over 30 weeks: checked and passed
    assert check(r, "load_stamp", "contacts", "created_at")["severity"] == "ok"


def test_touches_after_conversion_empties_journeys_and_says_so(stamped):
    r = stamped.sanity_checks()
    row = check(r, "touches_after_conversion", "touchpoints", "occurred_at")
    assert (row["severity"], row["count"], row["share"]) == ("critical", 30, 1.0)
    assert row["message"].startswith(
        "30 of 30 opportunities (100%) have touches at their account, but none dated at or before the "
        "opportunity was created (the account's first touch comes a median 10.0 hours later). Their "
        "journeys are empty")
    # the analyses the checks invalidate can ask which apply to them, and say so
    assert set(r.for_analysis("journeys")["check"]) == {"load_stamp", "touches_after_conversion"}
    assert "Their journeys are empty" in r.notice("attribution")
    assert r.for_analysis("mapping").empty and r.notice("mapping") == ""
    assert r.headline.startswith("3 of ") and "(3 critical)" in r.headline


def test_findings_and_saved_csv_carry_the_checks(stamped, tmp_path):
    f = quality.findings(stamped, resolve_period(quarter="2024Q2"))
    # + the data covering only part of 2024Q2 (touchpoints, opportunities): warnings
    assert f["sanity_critical_count"] == 3 and f["sanity_warning_count"] == 5
    assert any(m.startswith("critical: opportunities.created_at: 30 of 30 values") for m in f["sanity_warnings"])
    stamped.save(tmp_path / "clean")
    saved = pd.read_csv(tmp_path / "clean" / "sanity_checks.csv", keep_default_na=False)
    assert saved.columns.tolist() == ["check", "severity", "table", "column", "count", "share", "examples",
                                      "message", "what_to_do", "affects"]
    assert (saved["severity"] == "critical").sum() == 3


def test_validate_prints_the_checks(stamped_export):
    folder, cm = stamped_export
    proc = subprocess.run([sys.executable, "-m", "abmkit", "validate", str(folder), "--column-map", str(cm),
                           "--quarter", "2024Q3"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "3 critical data check(s): fix the export or the column map" in out
    assert "Data sanity checks (period 2024Q3)" in out
    assert "[critical] load_stamp · opportunities.created_at: 30 of 30 values (100%) are the same instant, " \
           "2024-05-02 14:03:11 UTC" in out
    assert "[critical] load_stamp · touchpoints.occurred_at: 40 of 40 values" in out
    assert "[critical] period_outside_data · touchpoints.occurred_at: No touch in 2024Q3 (2024-07-01 to " \
           "2024-09-30): touchpoints.occurred_at runs from 2024-05-03 to 2024-05-03." in out
    assert "what to do: Export and map the field that holds the real date" in out


# ----------------------------------------------------------------- closes before creates
@pytest.fixture(scope="module")
def closes(tmp_path_factory):
    """5 closed opportunities: three closed 243, 153 and 80 days before they were created,
    one after 100 days, one closed (date only) on the day it was created."""
    folder = tmp_path_factory.mktemp("closes")
    acc = accounts(5)
    opps = pd.DataFrame({
        "opportunity_id": ["o1", "o2", "o3", "o4", "o5"], "account_id": ["a01", "a02", "a03", "a04", "a05"],
        "created_at": ["2024-11-30", "2024-10-01", "2024-01-01", "2024-05-10T15:00:00Z", "2024-08-20"],
        "closed_at": ["2024-04-01", "2024-05-01", "2024-04-10", "2024-05-10", "2024-06-01"],
        "is_closed": True, "is_won": [True, False, True, True, False], "amount": 100})
    touches = pd.DataFrame({"touchpoint_id": ["t1", "t2", "t3"],
                            "occurred_at": ["2023-12-01", "2024-03-01", "2024-04-01"],
                            "channel": "Email", "touch_type": "Email Clicked", "account_id": ["a01", "a03", "a04"]})
    cm = write_export(folder, {"accounts": acc, "touchpoints": touches, "opportunities": opps})
    return clean_exports(folder, cm)


def test_closed_before_created_check(closes):
    row = check(closes.sanity_checks(), "closed_before_created", "opportunities", "closed_at")
    assert (row["severity"], row["count"], row["share"]) == ("critical", 3, 0.6)
    assert row["message"].startswith("3 of 5 opportunities with a close date (60%) closed before they were "
                                     "created (up to 243 days before). Pipeline and deal velocity leave them out")
    assert row["examples"] == "o1 (-243 days); o2 (-153 days); o5 (-80 days)"
    assert set(closes.sanity_checks().for_analysis("velocity")["check"]) == {"closed_before_created"}


def test_velocity_leaves_out_closes_before_creates_and_says_how_many(closes):
    ds = closes.dataset
    v = kpis.pipeline_velocity(ds, quarter="2024Q2")
    # o3: 100 days; o4 closed on its creation day (midnight before 15:00) counts 0 days; o1, o2, o5 left out
    assert (v.value, v.numerator, v.denominator) == (50.0, 100.0, 2.0)
    assert v.note == "3 opportunities closed before they were created are left out (data check closed_before_created)"
    d = kpis.deal_velocity(ds, quarter="2024Q2")
    # won in Q2: o1 (left out), o3 (first touch 2024-03-01 -> 2024-04-10: 40 days), o4 (2024-04-01 -> 05-10: 39)
    assert d.value == pytest.approx(39.5)
    assert d.note == "1 won opportunity closed before it was created is left out (data check closed_before_created)"
    ok = kpis.pipeline_velocity(ds, quarter="2024Q1")   # nothing closed in Q1: n/a, and no "left out" note
    assert "closed before" not in ok.note and ok.note.startswith("n/a")


# ----------------------------------------------------------------- placeholders
@pytest.fixture(scope="module")
def placeholders(tmp_path_factory):
    folder = tmp_path_factory.mktemp("placeholders")
    acc = pd.DataFrame({"account_id": ["a1", "a2", "a3"], "account_name": ["Acme", "Globex", "asdf"],
                        "domain": ["acme.com", "example.org", "initrode.com"]})
    contacts = pd.DataFrame({
        "contact_id": [f"c{i}" for i in range(1, 10)],
        "email": [f"lead{i}@example.com" for i in range(1, 7)] + ["x7@gmail.com", "ana@acme.com", "bo@initech.io"],
        "company_name": [None, None, "Test", "Test", "Unknown", "0015g00000AbCdEAAZ", "0015g00000AbCdEAAZ",
                         "Acme", "Initech"]})
    cm = write_export(folder, {"accounts": acc, "contacts": contacts})
    return clean_exports(folder, cm)


def test_placeholder_domains_ids_and_names(placeholders):
    r = placeholders.sanity_checks()
    dom = check(r, "placeholder_domain", "contacts", "email_domain")
    assert (dom["severity"], dom["count"]) == ("warning", 6)
    assert dom["examples"] == "example.com (6 contacts)"
    assert dom["message"].startswith("6 contacts (67% of those with an e-mail domain) are at reserved example "
                                     "domains (example.com/.net/.org, *.example, *.test, *.invalid, localhost; "
                                     "RFC 2606/6761)")
    assert "never suggests these domains as corporate domains to add" in dom["message"]
    acc = check(r, "placeholder_domain", "accounts", "domain")
    assert (acc["count"], acc["examples"]) == (1, "example.org (1 account)")
    ids = check(r, "id_in_name", "contacts", "company_name")
    assert (ids["count"], ids["examples"]) == (2, "0015g00000AbCdEAAZ (2 contacts)")
    assert ids["message"].startswith("2 contacts (29% of those with a company name) hold a CRM id in company_name")
    names = check(r, "placeholder_name", "contacts", "company_name")
    assert (names["count"], names["examples"]) == (3, "Test (2 contacts); Unknown (1 contact)")
    assert check(r, "placeholder_name", "accounts", "account_name")["count"] == 1
    # never an e-mail address in the examples
    assert not r.checks["examples"].str.contains("@").any()


def test_mapping_report_does_not_suggest_placeholders(placeholders):
    ds = placeholders.dataset
    m = map_contacts(ds.contacts, ds.accounts)
    rep = mapping_report(m, ds.contacts)
    domains = rep.top_unmatched_domains["email_domain"].tolist()
    assert "example.com" not in domains and "initech.io" in domains
    assert rep.top_unmatched_companies["company_name"].tolist() == ["Initech"]
    p = rep.placeholders.set_index(["column", "value"])
    assert p.loc[("email_domain", "example.com"), "contacts"] == 6
    assert p.loc[("email_domain", "example.com"), "reason"].startswith("reserved example domain")
    assert p.loc[("company_name", "0015g00000AbCdEAAZ"), "contacts"] == 2
    assert "crm_account_id" in p.loc[("company_name", "0015g00000AbCdEAAZ"), "reason"]
    assert p.loc[("company_name", "Test"), "contacts"] == 2


# ----------------------------------------------------------------- period outside the data
def _dated(touch_dates, opp_dates) -> Dataset:
    n, k = len(touch_dates), len(opp_dates)
    return Dataset.from_frames(
        accounts=pd.DataFrame({"account_id": ["a1"], "account_name": ["Acme"]}),
        touchpoints=pd.DataFrame({"touchpoint_id": [f"t{i}" for i in range(n)], "occurred_at": touch_dates,
                                  "channel": "email", "touch_type": "email_click", "account_id": "a1"}),
        opportunities=pd.DataFrame({"opportunity_id": [f"o{i}" for i in range(k)], "account_id": "a1",
                                    "created_at": opp_dates}))


def test_period_outside_and_partly_outside_the_data():
    from abmkit.clean.sanity import sanity_checks
    ds = _dated(["2024-01-05", "2024-02-01", "2024-03-01"], ["2024-02-10"])
    r = sanity_checks(ds, period=resolve_period(quarter="2026Q3"))
    tp = check(r, "period_outside_data", "touchpoints")
    assert (tp["severity"], tp["count"]) == ("critical", 0)
    assert tp["message"].startswith("No touch in 2026Q3 (2026-07-01 to 2026-09-30): touchpoints.occurred_at "
                                    "runs from 2024-01-05 to 2024-03-01. Every number of the period")
    opp = check(r, "period_outside_data", "opportunities")
    assert opp["severity"] == "warning" and opp["message"].startswith("No opportunity created in 2026Q3")
    assert set(r.for_analysis("kpis")["check"]) == {"period_outside_data"}
    part = sanity_checks(ds, period="2024Q1")
    row = check(part, "period_partly_outside_data", "touchpoints")
    assert row["message"] == ("touchpoints.occurred_at ends 31 days before the period ends (2024-03-01): counts "
                              "for 2024Q1 (2024-01-01 to 2024-03-31) cover only part of it and are not "
                              "comparable with a full period.")
    # the one opportunity (2024-02-10) covers a single day of the quarter
    assert check(part, "period_partly_outside_data", "opportunities")["message"].startswith(
        "opportunities.created_at starts 40 days into the period (2024-02-10) and ends 51 days before")
    assert "period_outside_data" not in set(sanity_checks(ds).checks["check"])   # no period: not checked


# ----------------------------------------------------------------- rejected share
def test_rejected_share_above_threshold(tmp_path):
    touches = pd.DataFrame({"touchpoint_id": [f"t{i}" for i in range(10)],
                            "occurred_at": ["2024-01-0%d" % (i + 1) for i in range(8)] + ["soon", "later"],
                            "channel": "Email", "touch_type": "Email Clicked", "account_id": "a01"})
    cm = write_export(tmp_path, {"accounts": accounts(1), "touchpoints": touches})
    r = clean_exports(tmp_path, cm).sanity_checks()
    row = check(r, "rejected_share", "touchpoints")
    assert (row["severity"], row["count"], row["share"]) == ("warning", 2, 0.2)
    assert row["message"].startswith("2 of 10 rows of touchpoints (20.0%) were rejected by cleaning (mostly "
                                     "unparseable_timestamp). Every number built on touchpoints undercounts")
    assert row["examples"] == "unparseable_timestamp (2 rows)"
    assert check(r, "rejected_share", "accounts")["severity"] == "ok"


def test_clean_sample_has_no_critical_check(small_sample_dir):
    raw = Path(small_sample_dir) / "raw"
    r = clean_exports(raw, raw / "column_map.yaml").sanity_checks("2025Q4")
    assert r.critical.empty, r.critical[["check", "table", "column", "message"]]
    assert not set(r.warnings["check"]) & {"load_stamp", "closed_before_created", "touches_after_conversion"}
