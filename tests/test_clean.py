"""Tests of abmkit.clean: hand-written messy exports with exact expected outputs,
every bad input of issue 3, the conservation identity as a property, the small
generated sample against its planted junk, and notebook 01 under papermill."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import abmkit
from abmkit import schema
from abmkit.clean import CleanError, RawFrame, clean_exports, clean_frames, load_column_map, validate_export
from abmkit.clean.colmap import shipped_label_defaults
from abmkit.clean.core import REASON_CODES
from abmkit.clean.parse import (encode, normalise_ids, parse_bools, parse_numbers, parse_timestamps,
                                parse_timestamps_detail)

ROOT = Path(__file__).resolve().parents[1]
MESSY = Path(__file__).parent / "data" / "messy"
UTC = "UTC"


def ts(*values):
    return pd.Series(pd.to_datetime(list(values), utc=True), dtype="datetime64[ns, UTC]")


@pytest.fixture(scope="module")
def basic():
    return clean_exports(MESSY / "basic", MESSY / "basic" / "column_map.yaml")


# ------------------------------------------------------------------ parsers
def test_timestamps_mixed_formats_dst_and_offsets():
    values = np.array([
        "2026-03-29T01:30:00Z",          # UTC
        "2026-03-29T03:30:00+02:00",     # explicit offset
        "03/29/2026 3:30 AM",            # US 12-hour, local (Berlin, after the spring jump: UTC+2)
        "2026-03-29",                    # date only: local midnight (UTC+1 that night)
        "29.03.2026 03:30",              # dotted: day first
        "2026/03/29 03:30",
        "1774747800",                    # epoch seconds
        "1774747800000",                 # epoch milliseconds
        "Mar 29, 2026 3:30 AM",          # text month (fallback parser)
        "2026-10-25 02:30",              # ambiguous (clocks go back): first occurrence, UTC+2
        "2026-03-29 02:30",              # non-existent (clocks jump): shifted forward to 03:00 = 01:00Z
        "2026-03-29 03:30:00,25",        # ISO comma fraction
        "12/31/2026 12:00 AM",           # midnight in 12-hour notation
    ], dtype=object)
    got, bad = parse_timestamps(values, timezone="Europe/Berlin")
    assert not bad.any()
    expected = pd.to_datetime(format="ISO8601", arg=[
        "2026-03-29 01:30", "2026-03-29 01:30", "2026-03-29 01:30", "2026-03-28 23:00", "2026-03-29 01:30",
        "2026-03-29 01:30", "2026-03-29 01:30", "2026-03-29 01:30", "2026-03-29 01:30", "2026-10-25 00:30",
        "2026-03-29 01:00", "2026-03-29 01:30:00.25", "2026-12-30 23:00"]).asi8
    assert got.tolist() == expected.tolist()


def test_timestamps_rejects_garbage_and_impossible_dates():
    values = np.array(["yesterday", "13/29/2026", "2026-02-30", "2025-02-29", "5", "2026-13-45 25:61",
                       "31.02.2026", "12/31/2026 13:00 PM", "1899-12-31", "TBD", "99999"], dtype=object)
    _, bad = parse_timestamps(values)
    assert bad.all()
    ok, bad = parse_timestamps(np.array(["2024-02-29", "31/12/2026"], dtype=object), dayfirst=True)
    assert not bad.any() and pd.DatetimeIndex(ok).strftime("%Y-%m-%d").tolist() == ["2024-02-29", "2026-12-31"]


def test_numbers_decimal_comma_thousands_currency():
    raw = np.array(["1.234,50 €", "$1,234.50", "(12)", "1,234", "1.234", "12,5", "1 234,50", "USD 100",
                    "1,234,567", "abc", "1e3"], dtype=object)
    v, bad = parse_numbers(raw, ".")
    assert v[:9].tolist() == [1234.5, 1234.5, -12.0, 1234.0, 1.234, 12.5, 1234.5, 100.0, 1234567.0]
    assert bad.tolist() == [False] * 9 + [True, False]
    v, _ = parse_numbers(np.array(["1.234", "1,234", "1.234,5"], dtype=object), ",")
    assert v.tolist() == [1234.0, 1.234, 1234.5]


def test_ids_bools_and_encoding():
    assert normalise_ids(np.array(["007", "123.0", "12.5", "A-1"], dtype=object)).tolist() == ["007", "123", "12.5", "A-1"]
    v, bad = parse_bools(np.array(["Yes", "no", "TRUE", "0", "maybe"], dtype=object))
    assert v[:4].tolist() == [1.0, 0.0, 1.0, 0.0] and bad.tolist() == [False] * 4 + [True]
    codes, uniq = encode(pd.Series([" a", "a ", "", None, "b"]))
    assert codes.tolist() == [0, 0, -1, -1, 1] and uniq.tolist() == ["a", "b"]


# ------------------------------------------------------- hand-written export
def test_basic_summary_and_conservation(basic):
    s = basic.to_frame().set_index("table")
    assert s.loc[:, ["rows_in", "rows_clean", "rows_rejected", "rows_merged"]].to_dict("index") == {
        "accounts": {"rows_in": 6, "rows_clean": 4, "rows_rejected": 1, "rows_merged": 1},
        "contacts": {"rows_in": 5, "rows_clean": 3, "rows_rejected": 2, "rows_merged": 0},
        "campaigns": {"rows_in": 3, "rows_clean": 3, "rows_rejected": 0, "rows_merged": 0},
        "touchpoints": {"rows_in": 17, "rows_clean": 6, "rows_rejected": 10, "rows_merged": 1},
        "opportunities": {"rows_in": 7, "rows_clean": 3, "rows_rejected": 4, "rows_merged": 0},
    }
    assert s["conservation_ok"].all()
    assert "Data-quality summary" in str(basic) and "unmapped_channel" in str(basic)


def test_basic_files_encodings_and_delimiters(basic):
    f = basic.files.set_index("source_file")
    assert f.loc["crm_accounts.csv", ["encoding", "delimiter"]].tolist() == ["utf-8-sig", ";"]
    assert f.loc["crm_contacts.csv", ["encoding", "delimiter"]].tolist() == ["cp1252", ","]
    assert f.loc["opportunities.tsv", ["encoding", "delimiter"]].tolist() == ["utf-8", "\t"]


def test_basic_accounts_exact(basic):
    expected = schema.coerce_table(pd.DataFrame({
        "account_id": ["001", "002", "003", "004"],          # leading zeros kept
        "account_name": ["Acme GmbH", "NA", "Initech", "Umbrella"],   # "NA" is a name, not a null
        "domain": ["acme.de", "globex.co.uk", None, "umbrella.com"],
        "parent_account_id": [None, "001", None, None],      # 999 unknown -> blanked (repair)
        "employee_count": [1200.0, 50.0, np.nan, 10.0],      # decimal ",": 1.200 = 1200
        "annual_revenue": [1234567.5, 12000.0, np.nan, np.nan],   # -5 blanked (repair)
        "tier": [1, 2, 3, 1],
        "is_target": [True, False, None, True],
        "icp_fit": [0.8, 1.0, np.nan, 1.0],
        "created_at": ts("2025-03-14 23:00", "2025-03-31 22:00", None, "2025-04-30 22:00"),  # Berlin -> UTC
    }), "accounts")
    pd.testing.assert_frame_equal(basic.dataset.accounts, expected)


def test_basic_contacts_exact(basic):
    expected = schema.coerce_table(pd.DataFrame({
        "contact_id": ["00042", "c2", "c3"],
        "email": ["Zoë.Müller@mail.acme.de", None, "carol@gmail.com"],   # cp1252 decoded; domain lower-cased
        "email_domain": ["acme.de", None, "gmail.com"],
        "first_name": ["Zoë", "Bob", "Carol"], "last_name": ["Müller", "Smith", "Jones"],
        "company_name": ["Acme GmbH", "NA", "Globex"],
        "title": ["Head of\nMarketing", "CTO", "VP"],                     # quoted line break kept
        "persona": ["decision_maker", "influencer", None],
        "crm_account_id": ["001", None, "002"],                            # 555 unknown -> blanked
        "lead_status": ["mql", "sql", None],
        "mql_at": ts("2026-03-08 18:30", None, None),   # 14:30 New York on the DST start day = EDT
        "created_at": ts("2026-01-05 05:00", "2026-01-06 05:00", "2026-01-07 05:00"),
    }), "contacts")
    pd.testing.assert_frame_equal(basic.dataset.contacts, expected)


def test_basic_touchpoints_exact(basic):
    expected = schema.coerce_table(pd.DataFrame({
        "touchpoint_id": ["t1", "t2", "t3", "t4", "t9", "t10"],
        "occurred_at": ts("2026-03-08 06:30",   # 01:30 EST, before the jump
                          "2026-03-08 07:30",   # 03:30 EDT, after it
                          "2026-03-08 04:00",   # 03/07/2026 11:00 PM EST
                          "2026-03-08 10:00",   # explicit Z
                          "2026-11-01 05:30",   # ambiguous 01:30 -> first occurrence (EDT)
                          "2026-03-09 11:00"),  # epoch seconds
        "channel": ["paid_social", "paid_social", "webinar", "email", "review_site", "intent"],
        "touch_type": ["impression", "click", "webinar_attended", "email_open", "visit", "intent_signal"],
        "contact_id": [None, "00042", "00042", "c2", "c3", None],
        "account_id": ["001", None, "001", None, None, "002"],   # "002.0" -> "002"
        "campaign_id": ["cmp1", "cmp1", "cmp2", None, None, None],   # cmp9 unknown -> blanked
        "engagement_seconds": [np.nan, 12.0, 3600.0, np.nan, np.nan, np.nan],
    }), "touchpoints")
    pd.testing.assert_frame_equal(basic.dataset.touchpoints, expected)


def test_basic_campaigns_and_opportunities_exact(basic):
    campaigns = schema.coerce_table(pd.DataFrame({
        "campaign_id": ["cmp1", "cmp2", "cmp3"], "campaign_name": ["Q1 LinkedIn", "Spring Webinar", "Mystery"],
        "channel": ["paid_social", "webinar", None],
        "start_date": ts("2026-01-01", "2026-02-01", "2026-01-01"), "end_date": ts("2026-03-31", "2026-02-28", None),
        "cost": [1234.5, 500.0, np.nan]}), "campaigns")
    pd.testing.assert_frame_equal(basic.dataset.campaigns, campaigns)
    opps = schema.coerce_table(pd.DataFrame({
        "opportunity_id": ["o1", "o2", "o7"], "account_id": ["001", "002", "004"],
        "created_at": ts("2026-02-01", "2026-02-10", "2026-02-12"),     # day-first
        "closed_at": ts("2026-03-15", None, "2026-03-01"),
        "is_closed": [True, False, True], "is_won": [True, False, False],
        "amount": [1234.5, 1234.5, 10.0],                                 # "1.234,50 €" and "$1,234.50"
        "opportunity_type": ["new_business", "upsell", "renewal"]}), "opportunities")
    pd.testing.assert_frame_equal(basic.dataset.opportunities, opps)


def test_basic_ledger_reasons(basic):
    got = set(map(tuple, basic.rejects[["source_file", "source_row", "reason"]].values.tolist()))
    assert got == {
        ("crm_accounts.csv", 6, "missing_required: account_id"),
        ("crm_contacts.csv", 4, "missing_required: contact_id"),
        ("crm_contacts.csv", 5, "duplicate_key_conflict: contact_id='c2'"),
        ("touchpoints.csv", 5, "unmapped_channel: Carrier Pigeon"),
        ("touchpoints.csv", 6, "unparseable_timestamp: occurred_at='yesterday'"),
        ("touchpoints.csv", 7, "orphan_reference: contact_id='c999'"),
        ("touchpoints.csv", 8, "no_contact_or_account: contact_id/account_id"),
        ("touchpoints.csv", 11, "duplicate_key_conflict: touchpoint_id='t4'"),
        ("touchpoints.csv", 13, "missing_required: occurred_at"),
        ("touchpoints.csv", 14, "unmapped_touch_type: Teleport"),
        ("touchpoints.csv", 15, "orphan_reference: account_id='005'"),
        ("touchpoints.csv", 16, "negative_number: engagement_seconds='-3'"),
        ("touchpoints.csv", 17, "unparseable_number: engagement_seconds='abc'"),
        ("opportunities.tsv", 3, "orphan_reference: account_id='999'"),
        ("opportunities.tsv", 4, "unparseable_timestamp: created_at='31/02/2026'"),
        ("opportunities.tsv", 5, "negative_amount: amount='-100'"),
        ("opportunities.tsv", 6, "unparseable_boolean: is_closed='maybe'"),
    }
    assert set(basic.rejects["reason_code"]) <= set(REASON_CODES)
    # the raw row travels with its reason, as JSON of the original strings
    row = basic.rejects.set_index(["source_file", "source_row"]).loc[("touchpoints.csv", 6)]
    assert json.loads(row["raw_values"]) == {"Touch ID": "t6", "Timestamp": "yesterday", "Source": "Email",
                                             "Activity": "Email Opened", "Contact": "c2", "Account": "",
                                             "Campaign": "", "Seconds": ""}


def test_basic_repairs_merged_unmapped(basic):
    rep = set(map(tuple, basic.repairs[["source_file", "source_row", "column", "issue", "raw_value"]].values.tolist()))
    assert rep == {
        ("crm_accounts.csv", 3, "domain", "invalid_domain", "not a domain"),
        ("crm_accounts.csv", 3, "employee_count", "unparseable_number", "abc"),
        ("crm_accounts.csv", 4, "annual_revenue", "negative_amount", "-5"),
        ("crm_accounts.csv", 3, "parent_account_id", "unknown_parent_account", "999"),
        ("crm_contacts.csv", 2, "email", "invalid_email", "bad-email"),
        ("crm_contacts.csv", 3, "persona", "unmapped_persona", "Astronaut"),
        ("crm_contacts.csv", 3, "lead_status", "unmapped_lead_status", "weird"),
        ("crm_contacts.csv", 3, "mql_at", "unparseable_timestamp", "not a date"),
        ("crm_contacts.csv", 2, "crm_account_id", "unknown_account", "555"),
        ("campaigns.csv", 3, "channel", "unmapped_channel", "Carrier Pigeon"),
        ("campaigns.csv", 3, "cost", "unparseable_number", "abc"),
        ("touchpoints.csv", 9, "campaign_id", "unknown_campaign", "cmp9"),
        ("touchpoints.csv", 9, "occurred_at", "ambiguous_local_time", "2026-11-01 01:30"),
    }
    assert basic.merged[["source_file", "source_row", "kept_source_row"]].values.tolist() == [
        ["crm_accounts.csv", 5, 1], ["touchpoints.csv", 10, 2]]
    um = basic.unmapped.set_index(["table", "column", "label"])["rows"].to_dict()
    assert um == {("contacts", "persona", "Astronaut"): 1, ("contacts", "lead_status", "weird"): 1,
                  ("campaigns", "channel", "Carrier Pigeon"): 1, ("touchpoints", "channel", "Carrier Pigeon"): 1,
                  ("touchpoints", "touch_type", "Teleport"): 1}


def test_basic_output_is_canonical_and_saves(basic, tmp_path):
    for name, df in basic.dataset.tables().items():
        pd.testing.assert_frame_equal(schema.validate_table(df, name), df)
    out = basic.save(tmp_path / "clean")
    for f in ("accounts.parquet", "touchpoints.parquet", "rejects.parquet", "rejects.csv", "quality.csv",
              "repairs.csv", "unmapped.csv", "merged.csv"):
        assert (out / f).exists(), f
    back = abmkit.load(out)
    pd.testing.assert_frame_equal(back.touchpoints, basic.dataset.touchpoints)
    assert len(pd.read_parquet(out / "rejects.parquet")) == len(basic.rejects)


# ------------------------------------------------------------- bad inputs
def test_empty_file_error_names_file():
    with pytest.raises(CleanError, match=r"accounts\.csv: the file is empty"):
        clean_exports(MESSY / "empty_file", MESSY / "empty_file" / "column_map.yaml")


def test_missing_required_column_error_names_file_column_and_found():
    with pytest.raises(CleanError) as err:
        clean_exports(MESSY / "missing_column", MESSY / "missing_column" / "column_map.yaml")
    msg = str(err.value)
    assert "touchpoints.csv" in msg and "'Timestamp'" in msg and "touchpoints.occurred_at" in msg
    assert "['Touch ID', 'When', 'Source', 'Type', 'Contact']" in msg


def test_map_naming_missing_optional_column_is_an_error():
    cm = yaml.safe_load((MESSY / "missing_column" / "column_map.yaml").read_text())
    cm["tables"]["touchpoints"]["columns"]["occurred_at"] = "When"
    cm["tables"]["touchpoints"]["columns"]["engagement_seconds"] = "Seconds"
    with pytest.raises(CleanError, match=r"column 'Seconds' .*touchpoints\.engagement_seconds.*Columns found"):
        clean_exports(MESSY / "missing_column", cm)
    del cm["tables"]["touchpoints"]["columns"]["engagement_seconds"]
    r = clean_exports(MESSY / "missing_column", cm)   # fixed map: cleans
    assert r.dataset.touchpoints["occurred_at"].tolist() == ts("2026-01-01").tolist()


def test_required_column_not_mapped_error():
    cm = {"tables": {"touchpoints": {"file": "touchpoints.csv", "columns": {
        "touchpoint_id": "Touch ID", "channel": "Source", "touch_type": "Type", "contact_id": "Contact"}}}}
    with pytest.raises(CleanError, match=r"required column touchpoints\.occurred_at is not mapped"):
        clean_exports(MESSY / "missing_column", cm)


def test_ragged_rows_go_to_ledger():
    r = clean_exports(MESSY / "ragged", MESSY / "ragged" / "column_map.yaml")
    assert r.dataset.accounts["account_id"].tolist() == ["a1", "a3", "a5"]
    assert r.dataset.accounts["account_name"].tolist() == ["Acme", "Initech", "Hooli\nLabs"]
    assert r.rejects[["source_row", "reason_code"]].values.tolist() == [[2, "malformed_row"], [4, "malformed_row"]]
    assert json.loads(r.rejects["raw_values"].iloc[0]) == ["a2", "Globex, Inc", "globex.com", "extra", "fields"]
    s = r.to_frame().iloc[0]
    assert (s.rows_in, s.rows_clean, s.rows_rejected) == (5, 3, 2)


def test_latin1_fallback():
    r = clean_exports(MESSY / "latin1", MESSY / "latin1" / "column_map.yaml")
    assert r.files["encoding"].tolist() == ["latin-1"]
    assert r.dataset.accounts["account_name"].tolist() == ["Café Müller", "Odd\x81Byte"]


def test_column_map_errors(tmp_path):
    with pytest.raises(CleanError, match="unknown preset 'nosuchcrm'"):
        load_column_map("nosuchcrm")
    with pytest.raises(CleanError, match="unknown canonical column"):
        load_column_map({"tables": {"accounts": {"file": "a.csv", "columns": {"acct": "Id"}}}})
    with pytest.raises(CleanError, match="maps to unknown value"):
        load_column_map({"tables": {"accounts": {"file": "a.csv"}}, "channel_map": {"X": "telepathy"}})
    with pytest.raises(CleanError, match="no file matches 'nope.csv'"):
        clean_exports(MESSY / "latin1", {"tables": {"accounts": {"file": "nope.csv", "columns": {}}}})
    with pytest.raises(CleanError, match="adapter 'nosuchcrm'"):
        clean_exports(MESSY / "latin1", {"adapter": "nosuchcrm", "tables": {"accounts": {"file": "accounts.csv"}}})


def test_shipped_label_defaults_are_canonical():
    d = shipped_label_defaults()
    assert set(d["channel_map"].values()) <= set(schema.CHANNELS)
    assert set(d["touch_type_map"].values()) <= set(schema.TOUCH_TYPES)
    assert set(d["persona_map"].values()) <= set(schema.PERSONAS)
    for label in ("LinkedIn Ads", "Paid Social", "Google Ads", "cpc", "Organic Search", "Email", "Webinar",
                  "Trade Show", "Direct Mail", "G2", "Bombora"):
        assert label in d["channel_map"], label


def test_validate_export_ok_and_error(tmp_path, capsys):
    code = validate_export(MESSY / "basic", column_map=MESSY / "basic" / "column_map.yaml", out_dir=tmp_path / "o")
    out = capsys.readouterr().out
    assert code == 0
    assert "touchpoints.occurred_at" in out and "<- Timestamp" in out and "derived from Email" in out
    assert "accounts.industry" in out and "MISSING" in out and "segmenting by industry" in out
    assert "crm_contacts.csv" in out and (tmp_path / "o" / "touchpoints.parquet").exists()
    code = validate_export(MESSY / "missing_column")
    err = capsys.readouterr().err
    assert code == 2 and "Timestamp" in err and "Traceback" not in err


# ------------------------------------------------- conservation (property)
_TS = st.sampled_from(["2026-01-01T10:00:00Z", "01/02/2026 3:00 PM", "2026-01-03", "garbage", "", "31/31/2026",
                       "2026-01-04 10:00:00+02:00", "1767225600"])
_CH = st.sampled_from(["LinkedIn Ads", "email", "Carrier Pigeon", "", "G2", "PAID  social"])
_TT = st.sampled_from(["Ad Click", "Email Opened", "Teleport", "", "visit"])
_ID = st.sampled_from(["c1", "c2", "c404", "", "007", "NA"])
_SEC = st.sampled_from(["", "12", "-5", "abc", "1,5"])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["t1", "t2", "t3", "t4", "", "t5"]), _TS, _CH, _TT, _ID,
                          st.sampled_from(["a1", "", "a9"]), _SEC), min_size=0, max_size=40))
def test_conservation_property(rows):
    tp = pd.DataFrame(rows, columns=["id", "ts", "ch", "tt", "contact", "account", "sec"], dtype=object)
    contacts = pd.DataFrame({"id": ["c1", "c2", "007", "c1"], "email": ["a@b.com", "x", "", "a@b.com"]})
    accounts = pd.DataFrame({"id": ["a1", ""], "name": ["A", "B"]})
    cm = {"tables": {
        "touchpoints": {"file": "t", "timezone": "America/New_York", "columns": {
            "touchpoint_id": "id", "occurred_at": "ts", "channel": "ch", "touch_type": "tt",
            "contact_id": "contact", "account_id": "account", "engagement_seconds": "sec"}},
        "contacts": {"file": "c", "columns": {"contact_id": "id", "email": "email"}},
        "accounts": {"file": "a", "columns": {"account_id": "id", "account_name": "name"}}}}
    r = clean_frames({"touchpoints": [RawFrame("t.csv", tp)], "contacts": [RawFrame("c.csv", contacts)],
                      "accounts": [RawFrame("a.csv", accounts)]}, cm)
    s = r.to_frame().set_index("table")
    assert s["conservation_ok"].all()
    assert s.loc["touchpoints", "rows_in"] == len(tp)
    # every input row is in exactly one place: kept, ledger or merged
    t_rej = r.rejects[r.rejects.table == "touchpoints"]["source_row"]
    t_mer = r.merged[r.merged.table == "touchpoints"]["source_row"]
    assert not set(t_rej) & set(t_mer) and t_rej.is_unique and t_mer.is_unique
    assert len(r.dataset.touchpoints) == len(tp) - len(t_rej) - len(t_mer)
    assert set(r.rejects["reason_code"]) <= set(REASON_CODES)
    kept = r.dataset.touchpoints
    assert kept["touchpoint_id"].is_unique and kept["occurred_at"].notna().all()
    assert (kept["contact_id"].notna() | kept["account_id"].notna()).all()
    assert kept["contact_id"].dropna().isin(r.dataset.contacts["contact_id"]).all()
    assert (kept["engagement_seconds"].dropna() >= 0).all()


def test_multiple_files_one_table(tmp_path):
    (tmp_path / "tp_2025.csv").write_text("Id,When,Src,Type,Acct\nt1,2025-06-01,Email,Email Opened,a1\n")
    (tmp_path / "tp_2026.csv").write_text("Id,When,Src,Type,Acct\nt1,2025-06-01,Email,Email Opened,a1\n"
                                          "t2,2026-01-01,Email,Email Opened,a1\n")
    cm = {"tables": {"touchpoints": {"file": "tp_*.csv", "columns": {
        "touchpoint_id": "Id", "occurred_at": "When", "channel": "Src", "touch_type": "Type", "account_id": "Acct"}}}}
    r = clean_exports(tmp_path, cm)
    assert r.dataset.touchpoints["touchpoint_id"].tolist() == ["t1", "t2"]
    assert r.merged[["source_file", "source_row", "kept_source_file", "kept_source_row"]].values.tolist() == [
        ["tp_2026.csv", 1, "tp_2025.csv", 1]]


# ------------------------------------------------------- generated sample
def test_small_sample_planted_junk_is_accounted_for(small_sample_dir):
    raw = Path(small_sample_dir) / "raw"
    r = clean_exports(raw, raw / "column_map.yaml")
    assert r.to_frame()["conservation_ok"].all()
    junk = pd.read_parquet(Path(small_sample_dir) / "truth" / "raw_junk.parquet")
    key = lambda df, f="source_file": pd.MultiIndex.from_frame(df[[f, "source_row"]].set_axis(["f", "r"], axis=1))  # noqa: E731
    ledger = r.rejects.set_index(key(r.rejects))["reason_code"]
    merged = key(r.merged)
    repaired = r.repairs.set_index(key(r.repairs))["issue"]
    expected_reason = {"unknown_channel": "unmapped_channel", "unparseable_date": "unparseable_timestamp",
                       "orphan_reference": "orphan_reference", "negative_amount": "negative_amount"}
    for kind, rows in junk.groupby("kind"):
        idx = key(rows, "file")
        if kind == "duplicate":
            assert idx.isin(merged).all(), kind
        elif kind == "malformed_email":   # kept, email blanked, recorded as a repair (empty emails are just missing)
            raw_contacts = pd.read_csv(raw / "contacts.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
            has_text = (raw_contacts.iloc[rows["source_row"].to_numpy() - 1]["Email Address"] != "").to_numpy()
            assert (repaired.reindex(idx[has_text]) == "invalid_email").all()
        elif kind in expected_reason:
            assert (ledger.reindex(idx) == expected_reason[kind]).all(), kind
        else:  # a kind planted later: at least accounted for somewhere
            assert (idx.isin(ledger.index) | idx.isin(merged) | idx.isin(repaired.index)).all(), kind
    # nothing rejected that was not planted
    junk_idx = key(junk, "file")
    assert key(r.rejects).isin(junk_idx).all()
    # the kept rows equal the generator's canonical tables
    canon = abmkit.load(Path(small_sample_dir) / "canonical")
    for name, spec in schema.TABLES.items():
        got, want = getattr(r.dataset, name), getattr(canon, name)
        k = list(spec.key)
        got = got[got.set_index(k).index.isin(want.set_index(k).index)].sort_values(k, ignore_index=True)
        want = want.sort_values(k, ignore_index=True)
        assert len(got) == len(want), name
        pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-9, obj=name)


# ---------------------------------------------------------------- notebook
def test_notebook_01_runs_on_small_sample(small_sample_dir, tmp_path):
    papermill = pytest.importorskip("papermill")
    raw = Path(small_sample_dir) / "raw"
    out = tmp_path / "report"
    papermill.execute_notebook(
        str(ROOT / "notebooks" / "01_data_cleaning.ipynb"), str(tmp_path / "01_out.ipynb"),
        parameters={"raw_dir": str(raw), "column_map": str(raw / "column_map.yaml"),
                    "data_dir": str(tmp_path / "clean"), "quarter": "2025Q4", "output_dir": str(out)},
        kernel_name="python3", cwd=str(ROOT / "notebooks"), progress_bar=False)
    assert (tmp_path / "clean" / "touchpoints.parquet").exists()
    findings = json.loads((out / "findings" / "01_data_cleaning.json").read_text())
    assert findings["conservation_ok"] is True
    assert findings["rows_rejected"] == int(pd.read_parquet(tmp_path / "clean" / "rejects.parquet").shape[0])
    assert (out / "tables" / "data_quality.csv").exists() and (out / "tables" / "rejects_by_reason.csv").exists()


def test_timestamps_zone_names_compact_serials_and_dst_issues():
    values = np.array(["2026-03-01 10:00 UTC", "2026-03-01 10:00:00 GMT", "20260301", "45123.25", "12345",
                       "2025-11-02 01:30", "2025-03-09 02:30"], dtype=object)
    got, bad, issue = parse_timestamps_detail(values, timezone="America/New_York")
    assert bad.tolist() == [False, False, False, False, True, False, False]   # 12345 is 1933: not a serial date
    assert pd.DatetimeIndex(got[[0, 1, 2, 3, 5, 6]]).strftime("%Y-%m-%d %H:%M").tolist() == [
        "2026-03-01 10:00", "2026-03-01 10:00", "2026-03-01 05:00", "2023-07-16 10:00",   # 06:00 EDT
        "2025-11-02 05:30", "2025-03-09 07:00"]
    assert issue.tolist() == [None, None, None, "excel_serial_date", None, "ambiguous_local_time",
                              "nonexistent_local_time"]


@pytest.mark.slow
def test_default_sample_cleans_with_conservation(tmp_path):
    """The default-size sample (2,000 accounts, ~300k touches): every planted junk row accounted for."""
    from abmkit.sample import write_sample
    out = write_sample(tmp_path / "sample", seed=7, n_accounts=2000)
    r = clean_exports(out / "raw", out / "raw" / "column_map.yaml")
    assert r.to_frame()["conservation_ok"].all()
    junk = pd.read_parquet(out / "truth" / "raw_junk.parquet")
    placed = pd.concat([r.rejects[["source_file", "source_row"]], r.merged[["source_file", "source_row"]],
                        r.repairs[["source_file", "source_row"]]]).drop_duplicates()
    got = pd.MultiIndex.from_frame(placed)
    want = pd.MultiIndex.from_frame(junk[["file", "source_row"]])
    email_junk = (junk["kind"] == "malformed_email").to_numpy()
    assert want[~email_junk].isin(got).all()


def test_value_maps_with_yaml_boolean_keys():
    cm = yaml.safe_load("""
tables:
  accounts:
    file: a.csv
    columns: {account_id: Id, account_name: Name, is_target: Target, tier: Tier}
    values:
      is_target: {Yes: true, No: false, Maybe: null}   # YAML reads Yes/No as booleans
      tier: {Strategic: 1, Growth: 2}
""")
    raw = pd.DataFrame({"Id": ["a1", "a2", "a3", "a4"], "Name": ["A", "B", "C", "D"],
                        "Target": ["Yes", "no", "Maybe", "YES"], "Tier": ["Strategic", "growth", "Tier 3", "x"]})
    r = clean_frames({"accounts": [RawFrame("a.csv", raw)]}, cm)
    a = r.dataset.accounts
    assert a["is_target"].tolist() == [True, False, pd.NA, True]
    assert a["tier"].tolist() == [1, 2, 3, pd.NA]
    assert r.repairs[["source_row", "column", "issue"]].values.tolist() == [[4, "tier", "unparseable_number"]]
