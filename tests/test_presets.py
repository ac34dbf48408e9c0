"""Salesforce and HubSpot presets: hand-made export folders (tests/data/*_export,
written from the public field references: API names / display-name headers, UTF-8
BOM, CRLF, 15- and 18-character ids, ``2024-01-23T02:46:47.000+0000`` timestamps,
empty strings for nulls, unused columns) load with zero configuration.

Every expected value below was worked out by hand from the CSV files.
"""
from __future__ import annotations

import csv
import io
import shutil
import warnings
from pathlib import Path

import pandas as pd
import pytest
import yaml

from abmkit.adapters import PicklistWarning, format_description, get_adapter
from abmkit.adapters import hubspot as hs
from abmkit.adapters import salesforce as sf
from abmkit.clean import clean_exports, load_column_map

DATA = Path(__file__).parent / "data"
SF_DIR = DATA / "salesforce_export"
HS_DIR = DATA / "hubspot_export"

# 18-character forms of the fixture ids (suffix worked out by hand: one letter per
# 5-char chunk, bit i set when character i is upper-case, letters A..Z0..5)
A1, A2, A3, A4 = "0015g00000Acme1AAB", "0015g00000Glbx2AAB", "0015g00000Init3AAB", "0015g00000Umbr4AAB"
C1, C2, C3, C4, C9 = ("0035g00000Cnt0%dAAB" % i for i in (1, 2, 3, 4, 9))
L1, L3, L4 = "00Q5g00000Led01EAB", "00Q5g00000Led03EAB", "00Q5g00000Led04EAB"
K1, K2, K3, K4 = ("7015g00000Cmp0%dAAB" % i for i in (1, 2, 3, 4))
M = lambda n: "00v5g00000Mem%02dAAB" % n  # noqa: E731


def ts(s):
    return pd.Timestamp(s, tz="UTC")


def records(df: pd.DataFrame, cols: list[str]) -> list[tuple]:
    """Rows as tuples of plain values (None for every kind of missing), sorted."""
    out = df[cols].astype(object).where(df[cols].notna(), None)
    return sorted((tuple(r) for r in out.itertuples(index=False)), key=lambda r: tuple(str(v) for v in r))


@pytest.fixture(scope="module")
def sf_result():
    with pytest.warns(PicklistWarning) as rec:
        result = clean_exports(SF_DIR, "salesforce")
    result.warning_text = "\n".join(str(w.message) for w in rec if issubclass(w.category, PicklistWarning))
    return result


@pytest.fixture(scope="module")
def hs_result():
    with pytest.warns(PicklistWarning) as rec:
        result = clean_exports(HS_DIR, "hubspot")
    result.warning_text = "\n".join(str(w.message) for w in rec if issubclass(w.category, PicklistWarning))
    return result


def _file_records(path: Path) -> int:
    text = path.read_bytes().decode("utf-8-sig")
    return sum(1 for _ in csv.reader(io.StringIO(text, newline=""))) - 1


# ------------------------------------------------------------------ ids
def test_salesforce_id_checksum_matches_the_documented_example():
    # Salesforce's own documentation example: 001D000000IqhSL <-> 001D000000IqhSLIAZ
    got = sf.normalize_ids(pd.Series(["001D000000IqhSL", "001D000000IqhSLIAZ", "  001D000000IqhSL ",
                                      "001d000000iqhsl", "", None, "ext-42"]))
    assert got.tolist() == ["001D000000IqhSLIAZ", "001D000000IqhSLIAZ", "001D000000IqhSLIAZ",
                            "001d000000iqhslAAA", None, None, "ext-42"]


def test_15_and_18_char_ids_refer_to_the_same_records(sf_result):
    ds = sf_result.dataset
    # Contact.csv writes Bob's id in 18 chars and his AccountId in 15; Account.csv writes Globex in 18
    bob = ds.contacts.set_index("contact_id").loc[C2]
    assert bob.crm_account_id == A2
    # CampaignMember 2 names Bob with the 15-char id and the webinar campaign with the 18-char id
    m2 = ds.touchpoints.set_index("touchpoint_id").loc[M(2)]
    assert (m2.contact_id, m2.campaign_id) == (C2, K1)
    # Globex's ParentId is the 15-char id of Initech (written in 15 chars in Account.csv too)
    assert ds.accounts.set_index("account_id").loc[A2, "parent_account_id"] == A3
    # nothing was blanked as an unknown reference
    assert sf_result.repairs.empty


# ------------------------------------------------------------------ Salesforce exact rows
def test_salesforce_accounts_exact(sf_result):
    got = records(sf_result.dataset.accounts, ["account_id", "account_name", "domain", "parent_account_id",
                                                "industry", "employee_count", "annual_revenue", "region",
                                                "created_at"])
    assert got == records(pd.DataFrame([
        (A1, "Acme, Inc.", "acme.com", None, "Technology", 1200.0, 5e7, "United States", ts("2023-03-01 10:00:00")),
        (A2, "Globex GmbH", "globex.de", A3, "Manufacturing", 300.0, None, "Germany", ts("2023-05-12 08:30:00")),
        (A3, "Initech Holdings plc", "initech.co.uk", None, "Finance", 5000.0, 1.2e9, "United Kingdom",
         ts("2022-11-30 23:59:59")),
        (A4, "Umbrella", None, None, None, None, None, None, ts("2024-01-23 02:46:47")),
    ], columns=["a", "b", "c", "d", "e", "f", "g", "h", "i"]), list("abcdefghi"))


def test_salesforce_contacts_exact_and_leads_are_people(sf_result):
    got = records(sf_result.dataset.contacts, ["contact_id", "email", "first_name", "last_name", "company_name",
                                                "title", "crm_account_id", "lead_status", "created_at"])
    assert got == records(pd.DataFrame([
        (C1, "ada@acme.com", "Ada", "Lovelace", None, "CTO", A1, None, ts("2024-02-01 09:00")),
        (C2, "bob@globex.de", "Bob", "Builder", None, "VP Operations", A2, None, ts("2024-03-05 12:15")),
        # converted from lead Led02: the lead's company, status and earlier created date
        (C3, "cara.diaz@acme.com", "Cara", "Díaz", "Acme Corporation", "Analyst", A1, "sql", ts("2024-04-01 08:00")),
        (C4, "dan@gmail.com", "Dan", "Eve", None, None, None, None, ts("2024-07-01 00:00")),
        (L1, "eva.fox@initech.co.uk", "Eva", "Fox", "Initech", "Head of IT", None, "inquiry", ts("2024-05-05 10:00")),
        (L3, "gus@hooli.com", "Gus", "Hill", "Hooli", None, None, "inquiry", ts("2024-08-08 08:08:08")),
        # "Qualified by Robot" is not in the lead-status table: reported, left empty
        (L4, "hana@umbrella.com", "Hana", "Ito", "Umbrella", None, None, None, ts("2024-09-09 09:09:09")),
        # converted lead whose contact is not in the export: the person under the contact id
        (C9, "ivan@umbrella.com", "Ivan", "Jones", "Umbrella Corp", None, A4, "sql", ts("2024-09-20 10:00")),
    ], columns=list("abcdefghi")), list("abcdefghi"))


def test_salesforce_touchpoints_exact(sf_result):
    got = records(sf_result.dataset.touchpoints, ["touchpoint_id", "occurred_at", "channel", "touch_type",
                                                   "contact_id", "account_id", "campaign_id"])
    T1, T3, E1, E2 = "00T5g00000Tsk01EAB", "00T5g00000Tsk03EAB", "00U5g00000Evt01EAB", "00U5g00000Evt02EAB"
    assert got == records(pd.DataFrame([
        # responded: FirstRespondedDate; status within the campaign's channel
        (M(1), ts("2024-02-15"), "webinar", "webinar_attended", C1, None, K1),
        (M(2), ts("2024-01-25"), "webinar", "webinar_registered", C2, None, K1),
        # not responded: CreatedDate; "Sent" = exposure
        (M(3), ts("2024-03-01 07:00:00"), "email", "impression", L1, None, K2),
        # LeadId of a converted lead -> its contact
        (M(4), ts("2024-03-02"), "email", "email_click", C3, None, K2),
        (M(5), ts("2024-06-02"), "event", "event_attended", C3, None, K3),
        # unknown status "Forwarded to a friend", HasResponded true -> documented fallback form_fill
        (M(9), ts("2024-03-05"), "email", "form_fill", C4, None, K2),
        (M(12), ts("2024-09-25 13:14:15"), "email", "email_open", C9, None, K2),
        (T1, ts("2024-02-20 15:30"), "sales_outreach", "call", C1, A1, None),
        (T3, ts("2024-04-15"), "sales_outreach", "call", C3, None, None),
        (E1, ts("2024-03-10 14:00"), "sales_outreach", "meeting", C2, A2, None),
        # WhoId unknown but the account (WhatId, 15 chars) is known: an account-level meeting
        (E2, ts("2024-05-01 09:00"), "sales_outreach", "meeting", None, A3, None),
    ], columns=list("abcdefg")), list("abcdefg"))


def test_salesforce_campaigns_and_opportunities_exact(sf_result):
    ds = sf_result.dataset
    assert records(ds.campaigns, ["campaign_id", "campaign_name", "channel", "start_date", "end_date", "cost"]) == \
        records(pd.DataFrame([
            (K1, "Q1 Webinar: ABM 101", "webinar", ts("2024-02-01"), ts("2024-02-28"), 4200.0),  # ActualCost
            (K2, "Spring Newsletter", "email", ts("2024-03-01"), None, 1000.0),  # no ActualCost: BudgetedCost
            (K3, "Trade Show Berlin", "event", ts("2024-06-01"), ts("2024-06-03"), 25000.5),
            (K4, "Misc", None, None, None, None),  # Type "Other" has no default channel
        ], columns=list("abcdef")), list("abcdef"))
    O1, O2, O3 = "0065g00000Opp01AAB", "0065g00000Opp02AAB", "0065g00000Opp03AAB"
    assert records(ds.opportunities, ["opportunity_id", "account_id", "created_at", "closed_at", "is_closed",
                                      "is_won", "amount", "opportunity_type"]) == records(pd.DataFrame([
        (O1, A2, ts("2024-04-01 12:00"), ts("2024-11-10"), True, True, 120000.0, "new_business"),
        # open: CloseDate is a forecast, so no closed_at
        (O2, A1, ts("2024-10-15 09:30"), None, False, False, 45000.5, "upsell"),
        (O3, A3, ts("2024-06-01"), ts("2024-09-30"), True, False, None, None),
    ], columns=list("abcdefgh")), list("abcdefgh"))


def test_salesforce_rejects_carry_reasons(sf_result):
    rej = sf_result.rejects
    got = sorted(zip(rej.source_file, rej.source_row.astype(int), rej.reason))
    assert got == sorted([
        ("CampaignMember.csv", 6, "unknown_person: ContactId 0035g00000Cnt99AAB is not in Contact.csv"),
        ("CampaignMember.csv", 7, "no_person: CampaignMember has neither ContactId nor LeadId"),
        ("CampaignMember.csv", 8, "unmapped_channel: Campaign.Type 'Other' is not in salesforce_campaign_type.yaml"),
        ("CampaignMember.csv", 10, "not_a_touch: CampaignMember.Status 'Bounced' is mapped to null in "
                                   "salesforce_campaign_member_status.yaml"),
        ("CampaignMember.csv", 11, "unknown_campaign: CampaignId 7015g00000Cmp77AAB is not in Campaign.csv"),
        ("Task.csv", 2, "not_a_touch: Task Type/TaskSubtype 'Email/Email' is not a call or meeting in "
                        "salesforce_activity_type.yaml"),
        ("Task.csv", 4, "not_a_touch: Task is not completed (IsClosed false)"),
        ("Event.csv", 3, "unknown_person: Event WhoId (empty) is not a known contact/lead and it has no account"),
        ("Opportunity.csv", 4, "missing_required: account_id"),
    ])
    # raw values are kept so the row can be found and fixed in Salesforce
    row6 = rej[(rej.source_file == "CampaignMember.csv") & (rej.source_row == 6)].raw_values.iloc[0]
    # raw_values holds the cells as exported (the 15-char ids), not the normalised ones
    assert '"Id": "00v5g00000Mem06"' in row6 and '"ContactId": "0035g00000Cnt99"' in row6
    assert '"Status": "Responded"' in row6


def test_salesforce_conservation_per_table_and_per_object(sf_result):
    s = sf_result.to_frame().set_index("table")
    assert s["conservation_ok"].all()
    assert s.loc[["accounts", "contacts", "campaigns", "touchpoints", "opportunities"],
                 ["rows_in", "rows_clean", "rows_rejected", "rows_merged"]].values.tolist() == [
        [4, 4, 0, 0], [9, 8, 0, 1], [4, 4, 0, 0], [19, 11, 8, 0], [4, 3, 1, 0]]
    # per object: records in the file == kept + rejected + merged from that file
    ds = sf_result.dataset
    kept = {
        "Account.csv": len(ds.accounts), "Campaign.csv": len(ds.campaigns), "Opportunity.csv": len(ds.opportunities),
        "Contact.csv": int(ds.contacts.contact_id.isin([C1, C2, C3, C4]).sum()),
        "Lead.csv": int(ds.contacts.contact_id.str.startswith("00Q").sum()) + int((ds.contacts.contact_id == C9).sum()),
        "CampaignMember.csv": int(ds.touchpoints.touchpoint_id.str.startswith("00v").sum()),
        "Task.csv": int(ds.touchpoints.touchpoint_id.str.startswith("00T").sum()),
        "Event.csv": int(ds.touchpoints.touchpoint_id.str.startswith("00U").sum()),
    }
    rejected = sf_result.rejects.source_file.value_counts()
    merged = sf_result.merged.source_file.value_counts()
    for name, k in kept.items():
        assert _file_records(SF_DIR / name) == k + rejected.get(name, 0) + merged.get(name, 0), name
    assert kept == {"Account.csv": 4, "Campaign.csv": 4, "Opportunity.csv": 3, "Contact.csv": 4, "Lead.csv": 4,
                    "CampaignMember.csv": 7, "Task.csv": 2, "Event.csv": 2}


def test_converted_lead_is_one_person_not_two(sf_result):
    ds = sf_result.dataset
    assert (ds.contacts.email == "cara.diaz@acme.com").sum() == 1
    assert not ds.contacts.contact_id.isin(["00Q5g00000Led02EAB"]).any()
    m = sf_result.merged
    assert m[["source_file", "source_row", "kept_source_file", "kept_source_row"]].values.tolist() == [
        ["Lead.csv", 2, "Contact.csv", 3]]
    # the lead's campaign membership and call are the contact's touches
    tp = ds.touchpoints.set_index("touchpoint_id")
    assert tp.loc[M(4), "contact_id"] == C3 and tp.loc["00T5g00000Tsk03EAB", "contact_id"] == C3
    assert (ds.touchpoints.contact_id == C3).sum() == 3


def test_bom_crlf_and_timestamp_quirks(sf_result):
    raw = (SF_DIR / "Account.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf\"Id\"")  # the fixture really has a BOM before a quoted header
    assert b"\r\n" in (SF_DIR / "CampaignMember.csv").read_bytes()
    ds = sf_result.dataset
    umbrella = ds.accounts.set_index("account_id").loc[A4, "created_at"]
    assert umbrella == ts("2024-01-23 02:46:47")  # 2024-01-23T02:46:47.000+0000
    assert str(ds.accounts.created_at.dtype) == "datetime64[ns, UTC]"
    # a quoted multi-line BillingStreet does not split the Acme record
    assert len(ds.accounts) == 4


def test_picklist_values_not_in_the_tables_are_reported(sf_result):
    text = sf_result.warning_text
    for needle in ("Campaign.Type = 'Other'", "Lead.Status = 'Qualified by Robot'",
                   "CampaignMember.Status = 'Forwarded to a friend'", "Opportunity.Type = 'Strategic Partnership'"):
        assert needle in text


def test_user_copy_of_a_picklist_table_is_used(tmp_path):
    cm = yaml.safe_load((Path(sf.__file__).parent.parent / "presets" / "salesforce.yaml").read_text("utf-8"))
    table = yaml.safe_load((Path(sf.__file__).parent.parent / "presets" / "salesforce_campaign_type.yaml")
                           .read_text("utf-8"))
    table["Other"] = "direct_mail"
    (tmp_path / "my_types.yaml").write_text(yaml.safe_dump(table), "utf-8")
    # absolute path: a relative one resolves against the YAML's folder once load_column_map
    # records it (`_source_dir`), else against the working directory and the presets folder
    cm["picklists"]["campaign_type"] = str(tmp_path / "my_types.yaml")
    cm_path = tmp_path / "my_salesforce.yaml"
    cm_path.write_text(yaml.safe_dump(cm), "utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PicklistWarning)
        r = clean_exports(SF_DIR, cm_path)
    tp = r.dataset.touchpoints.set_index("touchpoint_id")
    assert tp.loc[M(8), ["channel", "touch_type", "contact_id"]].tolist() == ["direct_mail", "impression", C1]
    assert r.dataset.campaigns.set_index("campaign_id").loc[K4, "channel"] == "direct_mail"


def _write_with_bom(df: pd.DataFrame, path: Path):
    path.write_bytes(b"\xef\xbb\xbf" + df.to_csv(index=False).encode("utf-8"))


def test_custom_contact_field_mapped_in_a_copy_of_the_preset(tmp_path):
    for f in SF_DIR.iterdir():
        shutil.copy(f, tmp_path / f.name)
    read = lambda name: pd.read_csv(tmp_path / name, dtype=str, keep_default_na=False, encoding="utf-8-sig")  # noqa
    con, led = read("Contact.csv"), read("Lead.csv")
    con["Buying_Role__c"] = ["Decision Maker", "", "Champion", ""]
    led["Buying_Role__c"] = ["", "End User", "", "", ""]  # Cara's lead says otherwise: the contact wins
    _write_with_bom(con, tmp_path / "Contact.csv")
    _write_with_bom(led, tmp_path / "Lead.csv")
    cm = load_column_map("salesforce")
    cm["tables"]["contacts"]["columns"]["persona"] = "Buying_Role__c"
    cm["persona_map"] = {"Decision Maker": "decision_maker", "Champion": "influencer", "End User": "user"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PicklistWarning)
        r = clean_exports(tmp_path, cm)
    persona = r.dataset.contacts.set_index("contact_id").persona
    assert persona[C1] == "decision_maker" and persona[C3] == "influencer" and persona[C2] is None
    assert r.merged.source_file.tolist() == ["Lead.csv"]
    assert not r.rejects.reason_code.eq("duplicate_key_conflict").any()


def test_data_loader_upper_case_headers_and_deleted_records(tmp_path):
    # Data Loader writes upper-case API names, "...Z" timestamps, and "Export All" includes the recycle bin
    read = lambda name: pd.read_csv(SF_DIR / name, dtype=str, keep_default_na=False, encoding="utf-8-sig")  # noqa
    acc = read("Account.csv")
    acc.loc[len(acc)] = {**{c: "" for c in acc.columns}, "Id": "0015g00000Dead9", "Name": "Gone Ltd",
                         "IsDeleted": "true", "CreatedDate": "2024-01-01T00:00:00.000Z"}
    acc.loc[0, "CreatedDate"] = "2023-03-01T10:00:00.000Z"
    con = read("Contact.csv")
    acc.columns = [c.upper() for c in acc.columns]
    con.columns = [c.upper() for c in con.columns]
    acc.to_csv(tmp_path / "Account.csv", index=False)
    con.to_csv(tmp_path / "Contact.csv", index=False)
    r = clean_exports(tmp_path, "salesforce")
    assert sorted(r.dataset.accounts.account_id) == [A1, A2, A3, A4]
    assert r.dataset.accounts.set_index("account_id").loc[A1, "created_at"] == ts("2023-03-01 10:00")
    assert r.rejects[["source_file", "source_row"]].values.tolist() == [["Account.csv", 5]]
    assert r.rejects.reason.iloc[0] == "deleted_record: Account.IsDeleted is true (in the recycle bin)"
    assert r.dataset.contacts.set_index("contact_id").loc[C2, "crm_account_id"] == A2
    s = r.to_frame().set_index("table")
    assert s.loc["accounts", ["rows_in", "rows_clean", "rows_rejected"]].tolist() == [5, 4, 1]


def test_malformed_rows_and_missing_optional_objects(tmp_path):
    for name in ("Account.csv", "Contact.csv", "Campaign.csv", "CampaignMember.csv", "Opportunity.csv"):
        shutil.copy(SF_DIR / name, tmp_path / name)
    with open(tmp_path / "Contact.csv", "ab") as fh:
        fh.write(b'"0035g00000Cnt77","false","only three fields"\n')
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PicklistWarning)
        r = clean_exports(tmp_path, "salesforce")
    s = r.to_frame().set_index("table")
    assert s["conservation_ok"].all()
    bad = r.rejects[r.rejects.source_file == "Contact.csv"]
    assert bad.source_row.tolist() == [5] and bad.reason.iloc[0].startswith("malformed_row")
    # without Lead.csv, members naming leads are unknown people (reason), not silently dropped
    lead_members = r.rejects[r.rejects.reason.str.startswith("unknown_person: LeadId")]
    assert sorted(lead_members.source_row.tolist()) == [3, 4, 12]
    # Mem05 names the contact too: kept
    assert M(5) in set(r.dataset.touchpoints.touchpoint_id)


# ------------------------------------------------------------------ validate / describe
def test_describe_lists_sources_missing_objects_and_disabled_analyses(tmp_path):
    for name in ("Contact.csv", "Opportunity.csv"):
        shutil.copy(SF_DIR / name, tmp_path / name)
    acc = pd.read_csv(SF_DIR / "Account.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    acc.drop(columns=["Industry"]).to_csv(tmp_path / "Account.csv", index=False)
    cm = load_column_map("salesforce")
    desc = sf.describe(tmp_path, cm)
    files = desc[desc.section == "file"].set_index("object")
    assert files.loc["Account", "rows"] == 4 and files.loc["Account", "file"] == "Account.csv"
    assert pd.isna(files.loc["CampaignMember", "file"])
    missing = desc[desc.section == "missing"]
    touch = missing[missing.table == "touchpoints"].note.iloc[0]
    assert "attribution" in touch and "engagement" in touch
    assert missing[missing.table == "campaigns"].note.iloc[0].startswith("no rows")
    persona = missing[(missing.table == "contacts") & (missing.column == "persona")].note.iloc[0]
    assert "persona coverage" in persona
    cols = desc[desc.section == "column"].set_index(["table", "column"])
    assert cols.loc[("accounts", "domain"), "source"] == "Account.Website -> registrable domain"
    assert cols.loc[("accounts", "domain"), "filled"] == 0.75
    absent = missing[missing.source == "Industry"]
    assert absent[["object", "note"]].values.tolist() == [["Account", "Account.csv has no column Industry: read as empty"]]
    assert "industry" in missing[(missing.table == "accounts") & (missing.column == "industry")].note.iloc[0]
    text = format_description(desc)
    assert "CampaignMember" in text and "not found" in text and "persona coverage" in text
    assert "Account.Industry" in text


def test_validate_cli_on_the_salesforce_folder(capsys):
    from abmkit.cli import main
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PicklistWarning)
        rc = main(["validate", "--preset", "salesforce", str(SF_DIR)])
    out = capsys.readouterr().out
    assert rc == 0
    assert "touchpoints" in out and "conservation" in out.lower()


@pytest.mark.filterwarnings("ignore::abmkit.adapters.PicklistWarning")
def test_validate_cli_prints_the_preset_report(capsys):
    from abmkit.cli import main
    rc = main(["validate", "--preset", "salesforce", str(SF_DIR)])
    out = capsys.readouterr().out
    assert rc == 0
    assert "Canonical columns and their source fields" in out
    assert "Account.Website -> registrable domain" in out
    assert "CampaignMember.Status = 'Forwarded to a friend'" in out


def test_get_adapter_errors_clearly():
    assert get_adapter("hubspot") is hs
    with pytest.raises(ValueError, match="unknown adapter"):
        get_adapter("dynamics")


# ------------------------------------------------------------------ HubSpot
def test_hubspot_primary_company_rule():
    got = hs.primary_id(pd.Series(["9002;9001", " 9003 ", "", None, ";9004"]))
    assert got.tolist() == ["9002", "9003", None, None, None]


def test_hubspot_exact_rows(hs_result):
    ds = hs_result.dataset
    assert records(ds.accounts, ["account_id", "account_name", "domain", "parent_account_id", "industry",
                                 "employee_count", "annual_revenue", "tier", "is_target", "created_at"]) == \
        records(pd.DataFrame([
            ("9001", "Acme, Inc.", "acme.com", None, "Computer Software", 1200.0, 5e7, 1, True, ts("2023-03-01 10:00")),
            # no Company Domain Name: Website URL
            ("9002", "Globex GmbH", "globex.de", "9003", "Mechanical or Industrial Engineering", 300.0, None, 2, False,
             ts("2023-05-12 08:30")),
            ("9003", "Initech Holdings", "initech.co.uk", None, "Financial Services", 5000.0, 1.2e9, None, None,
             ts("2022-11-30 23:59")),
        ], columns=list("abcdefghij")), list("abcdefghij"))
    assert records(ds.contacts, ["contact_id", "email", "first_name", "last_name", "company_name", "title",
                                 "persona", "crm_account_id", "lead_status", "mql_at", "created_at"]) == \
        records(pd.DataFrame([
            # Buying Role "Champion;Decision Maker": the most senior persona
            ("501", "ada@acme.com", "Ada", "Lovelace", "Acme", "CTO", "decision_maker", "9001", "mql",
             ts("2024-02-10 09:30"), ts("2024-01-05 08:00")),
            # Associated Company IDs "9002;9001": the first
            ("502", "bob@globex.de", "Bob", "Builder", "Globex", "VP Operations", "user", "9002", "sql", None,
             ts("2024-03-05 12:15")),
            ("503", "cara.diaz@initech.co.uk", "Cara", "Díaz", "Initech", None, None, None, "inquiry", None,
             ts("2024-04-01 08:00")),
            ("504", "dan@gmail.com", "Dan", "Eve", None, None, None, None, None, None, ts("2024-07-01 00:00")),
        ], columns=list("abcdefghijk")), list("abcdefghijk"))
    assert records(ds.opportunities, ["opportunity_id", "account_id", "created_at", "closed_at", "is_closed",
                                      "is_won", "amount", "opportunity_type"]) == records(pd.DataFrame([
        # the (Primary) column wins over the first listed id
        ("7001", "9001", ts("2024-04-01 12:00"), ts("2024-11-10"), True, True, 120000.0, "new_business"),
        ("7002", "9002", ts("2024-10-15 09:30"), None, False, False, 45000.5, None),
        ("7003", "9003", ts("2024-06-01"), ts("2024-09-30"), True, False, None, None),
    ], columns=list("abcdefgh")), list("abcdefgh"))
    assert records(ds.touchpoints, ["touchpoint_id", "occurred_at", "channel", "touch_type", "contact_id",
                                    "campaign_id"]) == records(pd.DataFrame([
        ("ev-1", ts("2024-03-01 10:00"), "email", "email_open", "501", "3301"),
        ("ev-2", ts("2024-03-01 10:05"), "email", "email_click", "501", "3301"),  # email matched case-insensitively
        ("ev-5", ts("2024-03-01 09:01"), "email", "impression", "503", "3301"),
        ("page_views.csv:1", ts("2024-03-02 11:00"), "organic_search", "visit", "501", None),
        ("page_views.csv:2", ts("2024-03-03 11:00"), "paid_social", "visit", "502", None),
    ], columns=list("abcdef")), list("abcdef"))


def test_hubspot_rejects_and_conservation(hs_result):
    rej = hs_result.rejects
    got = sorted(zip(rej.source_file, rej.source_row.astype(int), rej.reason.str.split(":").str[0]))
    assert got == sorted([
        ("marketing_email_events.csv", 3, "not_a_touch"), ("marketing_email_events.csv", 4, "unknown_person"),
        ("marketing_email_events.csv", 6, "unmapped_touch_type"), ("page_views.csv", 3, "unknown_person"),
        ("page_views.csv", 4, "missing_timestamp"), ("page_views.csv", 5, "unmapped_channel"),
        ("hubspot-crm-exports-all-deals-2024-11-10.csv", 4, "missing_required"),
    ])
    s = hs_result.to_frame().set_index("table")
    assert s["conservation_ok"].all()
    assert s.loc[["accounts", "contacts", "touchpoints", "opportunities"],
                 ["rows_in", "rows_clean", "rows_rejected", "rows_merged"]].values.tolist() == [
        [3, 3, 0, 0], [4, 4, 0, 0], [11, 5, 6, 0], [4, 3, 1, 0]]
    for f in HS_DIR.iterdir():
        kept = {"companies": 3, "contacts": 4, "deals": 3, "marketing_email_events": 3, "page_views": 2}
        k = next(v for key, v in kept.items() if key in f.name)
        assert _file_records(f) == k + int((rej.source_file == f.name).sum()), f.name
    text = hs_result.warning_text
    for needle in ("Lifecycle Stage = 'Custom Stage X'", "Buying Role = 'Gatekeeper'", "Deal Stage = 'Custom Stage'",
                   "Event Type = 'WEIRD'"):
        assert needle in text


def test_hubspot_describe_without_events():
    desc = hs.describe(HS_DIR, load_column_map("hubspot"))
    files = desc[desc.section == "file"].set_index("object")
    assert files.loc["page_views", "rows"] == 5 and files.loc["deals", "rows"] == 4
    cols = desc[desc.section == "column"].set_index(["table", "column"])
    assert cols.loc[("contacts", "persona"), "filled"] == 0.5
    missing = desc[desc.section == "missing"]
    assert "campaigns" in set(missing.table)  # HubSpot exports have no campaign object here


# ------------------------------------------------------------------ round trip through a Salesforce-format export
_SF_TYPE = {"webinar": "Webinar", "event": "Conference", "email": "Email", "paid_search": "Paid Search",
            "paid_social": "Paid Social", "display": "Banner Ads", "content_syndication": "Content Syndication",
            "direct_mail": "Direct Mail", "sales_outreach": "Telemarketing", "partner": "Partners",
            "referral": "Referral Program", "review_site": "Review Site", "intent": "Intent",
            "organic_search": "SEO", "direct": "Website"}
_SF_STATUS = {"inquiry": "Open - Not Contacted", "mql": "MQL", "sql": "SQL", "disqualified": "Closed - Not Converted"}
_SF_OPP_TYPE = {"new_business": "New Customer", "upsell": "Existing Customer - Upgrade", "renewal": "Renewal",
                "cross_sell": "Cross-sell"}


def write_salesforce_export(ds, out: Path) -> Path:
    """Write a canonical dataset as Salesforce Data Export CSVs (BOM, quoted, API names,
    ``...000+0000`` timestamps): contacts with an account id as Contact.csv, the others
    as Lead.csv, and one CampaignMember per (campaign, contact) at its first touch.
    Handy for trying ``make report DATA=<out> PRESET=salesforce`` on the synthetic sample."""
    out.mkdir(parents=True, exist_ok=True)
    when = lambda s: s.dt.strftime("%Y-%m-%dT%H:%M:%S.000+0000").fillna("")  # noqa: E731
    day = lambda s: s.dt.strftime("%Y-%m-%d").fillna("")  # noqa: E731
    txt = lambda s: s.astype(object).where(s.notna(), "")  # noqa: E731

    def num(s):
        return s.map(lambda v: "" if pd.isna(v) else (str(int(v)) if float(v).is_integer() else repr(float(v))))

    def save(name, df):
        (out / name).write_bytes(b"\xef\xbb\xbf" + df.to_csv(index=False, quoting=csv.QUOTE_ALL).encode("utf-8"))

    a = ds.accounts
    save("Account.csv", pd.DataFrame({
        "Id": a.account_id, "IsDeleted": "false", "Name": a.account_name,
        "Website": a.domain.map(lambda d: f"https://www.{d}/" if isinstance(d, str) else ""),
        "ParentId": txt(a.parent_account_id), "Industry": txt(a.industry), "NumberOfEmployees": num(a.employee_count),
        "AnnualRevenue": num(a.annual_revenue), "BillingCountry": txt(a.region), "CreatedDate": when(a.created_at)}))
    c = ds.contacts
    has_acc = c.crm_account_id.notna()
    people = {"Id": c.contact_id, "IsDeleted": "false", "FirstName": txt(c.first_name), "LastName": txt(c.last_name),
              "Email": txt(c.email), "Title": txt(c.title), "CreatedDate": when(c.created_at)}
    save("Contact.csv", pd.DataFrame({**people, "AccountId": c.crm_account_id})[has_acc])
    save("Lead.csv", pd.DataFrame({**people, "Company": txt(c.company_name), "Status": c.lead_status.map(_SF_STATUS)
                                   .fillna(""), "IsConverted": "false"})[~has_acc])
    k = ds.campaigns
    save("Campaign.csv", pd.DataFrame({
        "Id": k.campaign_id, "IsDeleted": "false", "Name": txt(k.campaign_name),
        "Type": k.channel.astype(object).map(_SF_TYPE).fillna(""), "StartDate": day(k.start_date),
        "EndDate": day(k.end_date), "ActualCost": num(k.cost)}))
    t = ds.touchpoints
    t = t[t.campaign_id.notna() & t.contact_id.notna()].sort_values(["occurred_at", "touchpoint_id"])
    first = t.drop_duplicates(["campaign_id", "contact_id"])
    lead_ids = set(c.contact_id[~has_acc])
    save("CampaignMember.csv", pd.DataFrame({
        "Id": "CM" + first.touchpoint_id, "IsDeleted": "false", "CampaignId": first.campaign_id,
        "ContactId": first.contact_id.where(~first.contact_id.isin(lead_ids), ""),
        "LeadId": first.contact_id.where(first.contact_id.isin(lead_ids), ""), "Status": "Sent",
        "HasResponded": "false", "CreatedDate": when(first.occurred_at), "FirstRespondedDate": ""}))
    o = ds.opportunities
    save("Opportunity.csv", pd.DataFrame({
        "Id": o.opportunity_id, "IsDeleted": "false", "AccountId": o.account_id, "CreatedDate": when(o.created_at),
        "CloseDate": day(o.closed_at.where(o.closed_at.notna(), o.created_at + pd.Timedelta(days=90))),
        "IsClosed": o.is_closed.map({True: "true", False: "false"}).fillna("false"),
        "IsWon": o.is_won.map({True: "true", False: "false"}).fillna("false"), "Amount": num(o.amount),
        "Type": o.opportunity_type.map(_SF_OPP_TYPE).fillna("")}))
    return out


def test_round_trip_of_the_synthetic_sample_through_a_salesforce_export(small_sample, tmp_path):
    ds = small_sample.dataset
    r = clean_exports(write_salesforce_export(ds, tmp_path / "sf"), "salesforce")
    got = r.dataset
    assert r.to_frame()["conservation_ok"].all() and r.rejects.empty

    acc_cols = ["account_id", "account_name", "domain", "parent_account_id", "industry", "employee_count",
                "annual_revenue", "region", "created_at"]
    assert records(got.accounts, acc_cols) == records(ds.accounts, acc_cols)

    exp = ds.contacts.copy()
    has_acc = exp.crm_account_id.notna()
    exp.loc[has_acc, ["company_name", "lead_status"]] = None  # a Contact has neither field in Salesforce
    con_cols = ["contact_id", "email", "first_name", "last_name", "company_name", "title", "crm_account_id",
                "lead_status", "created_at"]
    assert records(got.contacts, con_cols) == records(exp, con_cols)

    camp_cols = ["campaign_id", "campaign_name", "channel", "start_date", "end_date", "cost"]
    assert records(got.campaigns, camp_cols) == records(ds.campaigns, camp_cols)

    opp = ds.opportunities.copy()
    opp["closed_at"] = opp.closed_at.where(opp.is_closed.fillna(False).astype(bool)).dt.normalize()
    opp_cols = ["opportunity_id", "account_id", "created_at", "closed_at", "is_closed", "is_won", "amount",
                "opportunity_type"]
    assert records(got.opportunities, opp_cols) == records(opp, opp_cols)

    t = ds.touchpoints
    t = t[t.campaign_id.notna() & t.contact_id.notna()]
    first = t.groupby(["campaign_id", "contact_id"], as_index=False).occurred_at.min()
    first["channel"] = first.campaign_id.map(ds.campaigns.set_index("campaign_id").channel.astype(object))
    tp = got.touchpoints.assign(channel=got.touchpoints.channel.astype(object))
    assert records(tp, ["campaign_id", "contact_id", "occurred_at", "channel"]) == \
        records(first, ["campaign_id", "contact_id", "occurred_at", "channel"])
    assert set(tp.touch_type.astype(str)) == {"impression"}
    # the sample exercises both people paths and many members (the comparisons above are not vacuous)
    assert has_acc.sum() > 50 and (~has_acc).sum() > 50 and len(first) > 200


_HS_STAGE = {"inquiry": "Lead", "mql": "Marketing Qualified Lead", "sql": "Sales Qualified Lead",
             "disqualified": "Other"}
_HS_ROLE = {"decision_maker": "Decision Maker", "influencer": "Influencer", "user": "End User", "other": "Other"}
_HS_DEAL_TYPE = {"new_business": "New Business", "upsell": "Upsell", "renewal": "Renewal", "cross_sell": "Cross-sell"}
_HS_SOURCE = {"organic_search": "Organic Search", "direct": "Direct Traffic", "referral": "Referrals"}


def write_hubspot_export(ds, out: Path) -> Path:
    """Write a canonical dataset as HubSpot "export all records" CSVs (display-name headers,
    ``2024-01-23 14:05`` times, ``;``-joined association ids) plus email events (email
    touches of people with a unique email) and page views (visits from sources HubSpot names)."""
    out.mkdir(parents=True, exist_ok=True)
    when = lambda s: s.dt.strftime("%Y-%m-%d %H:%M").fillna("")  # noqa: E731
    txt = lambda s: s.astype(object).where(s.notna(), "")  # noqa: E731

    def num(s):
        return s.map(lambda v: "" if pd.isna(v) else (str(int(v)) if float(v).is_integer() else repr(float(v))))

    a = ds.accounts
    pd.DataFrame({
        "Record ID": a.account_id, "Company name": a.account_name, "Company Domain Name": txt(a.domain),
        "Parent Company": txt(a.parent_account_id), "Industry": txt(a.industry),
        "Number of Employees": num(a.employee_count), "Annual Revenue": num(a.annual_revenue),
        "Country/Region": txt(a.region), "Create Date": when(a.created_at),
        "Target Account": a.is_target.map({True: "true", False: "false"}).fillna(""),
        "Ideal Customer Profile Tier": a.tier.map(lambda t: "" if pd.isna(t) else f"Tier {int(t)}"),
    }).to_csv(out / "hubspot-crm-exports-all-companies-2026-11-25.csv", index=False)
    c = ds.contacts
    pd.DataFrame({
        "Record ID": c.contact_id, "First Name": txt(c.first_name), "Last Name": txt(c.last_name),
        "Email": txt(c.email), "Job Title": txt(c.title), "Company Name": txt(c.company_name),
        "Lifecycle Stage": c.lead_status.map(_HS_STAGE).fillna(""), "Buying Role": c.persona.map(_HS_ROLE).fillna(""),
        "Became a Marketing Qualified Lead Date": when(c.mql_at), "Create Date": when(c.created_at),
        "Associated Company IDs": txt(c.crm_account_id),
    }).to_csv(out / "hubspot-crm-exports-all-contacts-2026-11-25.csv", index=False)
    o = ds.opportunities
    stage = pd.Series("Contract Sent", index=o.index).where(~o.is_closed.fillna(False).astype(bool),
                                                             o.is_won.map({True: "Closed Won", False: "Closed Lost"}))
    pd.DataFrame({
        "Record ID": o.opportunity_id, "Deal Stage": stage, "Amount": num(o.amount), "Create Date": when(o.created_at),
        "Close Date": when(o.closed_at.where(o.closed_at.notna(), o.created_at + pd.Timedelta(days=90))),
        "Deal Type": o.opportunity_type.map(_HS_DEAL_TYPE).fillna(""), "Associated Company IDs": o.account_id,
    }).to_csv(out / "hubspot-crm-exports-all-deals-2026-11-25.csv", index=False)
    t = ds.touchpoints
    unique_email = c.email.notna() & ~c.email.duplicated(keep=False)
    email_of = c[unique_email].set_index("contact_id").email
    e = t[(t.channel == "email") & t.contact_id.isin(email_of.index)]
    pd.DataFrame({"Event ID": e.touchpoint_id, "Recipient": e.contact_id.map(email_of),
                  "Event Type": e.touch_type.astype(object).map({"email_open": "OPEN", "email_click": "CLICK"}),
                  "Timestamp": when(e.occurred_at), "Email Campaign ID": txt(e.campaign_id)}
                 ).to_csv(out / "marketing_email_events.csv", index=False)
    v = t[(t.touch_type == "visit") & t.channel.isin(list(_HS_SOURCE)) & t.contact_id.notna()]
    pd.DataFrame({"Contact ID": v.contact_id, "Timestamp": when(v.occurred_at),
                  "Source": v.channel.astype(object).map(_HS_SOURCE)}).to_csv(out / "page_views.csv", index=False)
    return out


def test_round_trip_of_the_synthetic_sample_through_a_hubspot_export(small_sample, tmp_path):
    ds = small_sample.dataset
    out = write_hubspot_export(ds, tmp_path / "hs")
    r = clean_exports(out, "hubspot")
    got = r.dataset
    assert r.to_frame()["conservation_ok"].all() and r.rejects.empty

    acc_cols = ["account_id", "account_name", "domain", "parent_account_id", "industry", "employee_count",
                "annual_revenue", "region", "tier", "is_target", "created_at"]
    assert records(got.accounts, acc_cols) == records(ds.accounts, acc_cols)

    exp = ds.contacts.copy()
    exp.loc[exp.lead_status == "disqualified", "lead_status"] = None  # HubSpot has no such lifecycle stage
    con_cols = ["contact_id", "email", "first_name", "last_name", "company_name", "title", "persona",
                "crm_account_id", "lead_status", "mql_at", "created_at"]
    assert records(got.contacts, con_cols) == records(exp, con_cols)

    opp = ds.opportunities.copy()
    opp["closed_at"] = opp.closed_at.where(opp.is_closed.fillna(False).astype(bool))
    opp_cols = ["opportunity_id", "account_id", "created_at", "closed_at", "is_closed", "is_won", "amount",
                "opportunity_type"]
    assert records(got.opportunities, opp_cols) == records(opp, opp_cols)

    t = ds.touchpoints
    emails = got.touchpoints[got.touchpoints.channel == "email"]
    src = t.set_index("touchpoint_id").loc[emails.touchpoint_id].reset_index()
    tp_cols = ["touchpoint_id", "occurred_at", "touch_type", "contact_id", "campaign_id"]
    assert records(emails.assign(touch_type=emails.touch_type.astype(str)), tp_cols) == \
        records(src.assign(touch_type=src.touch_type.astype(str)), tp_cols)
    visits = got.touchpoints[got.touchpoints.touch_type == "visit"]
    exp_v = t[(t.touch_type == "visit") & t.channel.isin(list(_HS_SOURCE)) & t.contact_id.notna()]
    assert records(visits.assign(channel=visits.channel.astype(str)), ["contact_id", "occurred_at", "channel"]) == \
        records(exp_v.assign(channel=exp_v.channel.astype(str)), ["contact_id", "occurred_at", "channel"])
    assert len(emails) > 1000 and len(visits) > 1000 and got.contacts.persona.notna().sum() > 100


# ------------------------------------------------------------------ every source column reaches the column map
def _sf_copy(tmp_path: Path) -> Path:
    out = tmp_path / "export"
    out.mkdir()
    for f in SF_DIR.iterdir():
        shutil.copy(f, out / f.name)
    return out


def _read_sf(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(folder / name, dtype=str, keep_default_na=False, encoding="utf-8-sig")


def _preset_copy(tmp_path: Path, edit) -> Path:
    """A copy of the shipped Salesforce preset (as a user makes it), edited by ``edit(dict)``."""
    cm = yaml.safe_load((Path(sf.__file__).parent.parent / "presets" / "salesforce.yaml").read_text("utf-8"))
    edit(cm)
    path = tmp_path / "my_salesforce.yaml"
    path.write_text(yaml.safe_dump(cm, sort_keys=False), "utf-8")
    return path


# the touch date of a campaign member lives in a custom field (CreatedDate is a data-load stamp)
_EVENT_DATES = ["2024-02-14", "2024-01-24", "2024-02-28", "2024-03-04", "2024-06-01", "", "", "2024-03-06",
                "2024-03-07", "", "", "2024-09-24"]


@pytest.mark.parametrize("header", ["Event_Date__c", "CampaignMember.Event_Date__c", "event_date__C"])
def test_campaign_member_date_from_a_custom_field(tmp_path, header):
    folder = _sf_copy(tmp_path)
    mem = _read_sf(folder, "CampaignMember.csv")
    mem["CreatedDate"] = "2024-12-01T03:00:00.000+0000"  # the load stamp
    mem["FirstRespondedDate"] = ""
    mem["Event_Date__c"] = _EVENT_DATES
    _write_with_bom(mem, folder / "CampaignMember.csv")
    cm = _preset_copy(tmp_path, lambda c: c["tables"]["touchpoints"]["columns"].update(occurred_at=header))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PicklistWarning)
        r = clean_exports(folder, cm)
    tp = r.dataset.touchpoints.set_index("touchpoint_id").occurred_at
    # members: the custom field; tasks and events (no such field): the adapter's own activity dates
    assert {k: tp[M(k)] for k in (1, 2, 3, 4, 5, 9, 12)} == {
        1: ts("2024-02-14"), 2: ts("2024-01-24"), 3: ts("2024-02-28"), 4: ts("2024-03-04"), 5: ts("2024-06-01"),
        9: ts("2024-03-07"), 12: ts("2024-09-24")}
    assert tp["00T5g00000Tsk01EAB"] == ts("2024-02-20 15:30") and tp["00U5g00000Evt01EAB"] == ts("2024-03-10 14:00")
    # the same rows as with the shipped preset are kept or rejected (the custom field changes only the date)
    assert r.to_frame().set_index("table").loc["touchpoints", ["rows_in", "rows_clean", "rows_rejected"]].tolist() \
        == [19, 11, 8]


def test_custom_field_of_an_object_without_its_file_is_not_an_error(tmp_path):
    folder = _sf_copy(tmp_path)
    (folder / "Task.csv").unlink()
    cm = _preset_copy(tmp_path, lambda c: c["tables"]["touchpoints"]["columns"].update(
        touchpoint_id="Task.Id"))  # Task rows by their own field; no Task.csv: every object falls back
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PicklistWarning)
        r = clean_exports(folder, cm)
    assert M(1) in set(r.dataset.touchpoints.touchpoint_id)


def test_a_mapped_column_missing_from_the_export_lists_the_files_own_columns(tmp_path):
    from abmkit.clean import CleanError
    folder = _sf_copy(tmp_path)
    mem = _read_sf(folder, "CampaignMember.csv")
    mem["Event_Date__c"] = _EVENT_DATES
    _write_with_bom(mem, folder / "CampaignMember.csv")
    cm = _preset_copy(tmp_path, lambda c: c["tables"]["touchpoints"]["columns"].update(occurred_at="Event_Date"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PicklistWarning)
        with pytest.raises(CleanError) as err:
            clean_exports(folder, cm)
    msg = str(err.value)
    assert msg.startswith("CampaignMember.csv, Task.csv, Event.csv: column 'Event_Date' (mapped to "
                          "touchpoints.occurred_at in the column map ")
    # the headers of the CSVs as exported, not the adapter's internal columns
    assert "CampaignMember.csv: ['Id', 'IsDeleted', 'CampaignId', 'LeadId', 'ContactId', 'Status'" in msg
    assert "'LeadOrContactOwnerId', 'Event_Date__c']" in msg
    assert "Task.csv: ['Id', 'WhoId', 'WhatId'" in msg
    assert "Did you mean 'Event_Date__c'" in msg
    listed = msg.split("Columns found (as exported): ")[1].split(". Did you mean")[0]
    assert "OccurredAt" not in listed and "PersonId" not in listed
    # validate: exit 2 with the same message, no traceback
    from abmkit.clean import validate_export
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PicklistWarning)
        assert validate_export(folder, column_map=cm) == 2


def test_colliding_field_is_reachable_as_object_dot_field(tmp_path):
    # Task.AccountId is the task's own field; the bare AccountId is the adapter's rule (else an account WhatId)
    cm = _preset_copy(tmp_path, lambda c: c["tables"]["touchpoints"]["columns"].update(account_id="Task.AccountId"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PicklistWarning)
        r = clean_exports(SF_DIR, cm)
    acc = r.dataset.touchpoints.set_index("touchpoint_id").account_id
    assert acc["00T5g00000Tsk01EAB"] == A1
    # events have no Task.AccountId: their rows keep the adapter's AccountId (E2's account WhatId)
    assert acc["00U5g00000Evt02EAB"] == A3 and acc["00U5g00000Evt01EAB"] == A2


def test_lead_field_by_object_name_and_converted_leads_still_merge(tmp_path):
    cm = _preset_copy(tmp_path, lambda c: (c["tables"]["contacts"]["columns"].update(lead_status="Lead.Status"),
                                           c.update(lead_status_map={"Open - Not Contacted": "mql"})))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PicklistWarning)
        r = clean_exports(SF_DIR, cm)
    status = r.dataset.contacts.set_index("contact_id").lead_status
    assert status[L1] == "mql"  # the raw Lead.Status through the column map's lead_status_map
    assert status[C3] == "sql"  # a contact: the adapter's LeadStatus (from its converted lead)
    assert r.merged.source_file.tolist() == ["Lead.csv"]
    assert not r.rejects.reason_code.eq("duplicate_key_conflict").any()


def test_hubspot_custom_property_mapped_in_a_copy_of_the_preset(tmp_path):
    folder = tmp_path / "hs"
    shutil.copytree(HS_DIR, folder)
    path = next(folder.glob("*contacts*.csv"))
    con = pd.read_csv(path, dtype=str, keep_default_na=False)
    con["Job Function"] = ["Engineering", "Operations", "", "Sales"]
    con.to_csv(path, index=False)
    cm = load_column_map("hubspot")
    cm["tables"]["contacts"]["columns"]["title"] = "Job Function"
    cm["tables"]["contacts"]["columns"]["company_name"] = "contacts.Company Name"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PicklistWarning)
        r = clean_exports(folder, cm)
    c = r.dataset.contacts.set_index("contact_id")
    assert c.title.to_dict() == {"501": "Engineering", "502": "Operations", "503": None, "504": "Sales"}
    assert c.company_name["501"] == "Acme"


# ------------------------------------------------------------------ unmapped labels: one story
def _rejected_by_label(r, code: str) -> dict:
    """{label: rows} of the unmapped table's rows rejected with ``code``."""
    u = r.unmapped[r.unmapped.outcome == f"rejected: {code}"]
    return dict(zip(u.label, u.rows))


@pytest.mark.parametrize("which", ["salesforce", "hubspot"])
def test_unmapped_counts_add_up_to_the_rejects(which, sf_result, hs_result):
    r = sf_result if which == "salesforce" else hs_result
    for code in ("unmapped_channel", "unmapped_touch_type"):
        assert sum(_rejected_by_label(r, code).values()) == int((r.rejects.reason_code == code).sum()), code
    assert list(r.unmapped.columns) == ["table", "column", "label", "rows", "outcome", "source", "file", "key",
                                        "advice"]
    assert r.unmapped.advice.notna().all() and r.unmapped.file.notna().all()


def test_unknown_campaign_type_is_listed_with_the_picklist_file_to_edit(tmp_path):
    folder = _sf_copy(tmp_path)
    camp = _read_sf(folder, "Campaign.csv")
    camp.loc[camp.Name == "Spring Newsletter", "Type"] = "Podcast Sponsorship"
    _write_with_bom(camp, folder / "Campaign.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PicklistWarning)
        r = clean_exports(folder, "salesforce")
    rejected = r.rejects[r.rejects.reason_code == "unmapped_channel"]
    # Mem03, 04, 09, 10 and 12 are members of the newsletter; Mem08 of the "Other" campaign
    assert sorted(rejected.source_row) == [3, 4, 8, 9, 10, 12]
    assert _rejected_by_label(r, "unmapped_channel") == {"Podcast Sponsorship": 5, "Other": 1}
    u = r.unmapped.set_index(["table", "column", "label"])
    row = u.loc[("touchpoints", "channel", "Podcast Sponsorship")]
    assert row.source == "Campaign.Type" and row.key == "(top level)"
    assert row.file == "abmkit/presets/salesforce_campaign_type.yaml"
    assert row.advice.startswith("add `Podcast Sponsorship: <channel>` at the top level of "
                                 "abmkit/presets/salesforce_campaign_type.yaml")
    assert "channel_map" not in row.advice  # channel_map does nothing for the preset's campaign types
    assert u.loc[("campaigns", "channel", "Podcast Sponsorship"), ["rows", "outcome"]].tolist() == [1, "blanked"]
    # the advice works: the label added where it says, the rows come back
    table = yaml.safe_load((Path(sf.__file__).parent.parent / "presets" / "salesforce_campaign_type.yaml")
                           .read_text("utf-8"))
    (tmp_path / "my_types.yaml").write_text(yaml.safe_dump({**table, "Podcast Sponsorship": "paid_social"}), "utf-8")
    cm = _preset_copy(tmp_path, lambda c: c["picklists"].update(campaign_type="my_types.yaml"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PicklistWarning)
        fixed = clean_exports(folder, cm)
    assert sorted(fixed.rejects[fixed.rejects.reason_code == "unmapped_channel"].source_row) == [8]
    # with the user's copy in use, the advice and the reason name the copy, not the shipped table
    other = fixed.unmapped.set_index(["table", "label"]).loc[("touchpoints", "Other")]
    assert other.file == str(tmp_path / "my_types.yaml")
    assert other.advice == f"add `Other: <channel>` at the top level of {tmp_path / 'my_types.yaml'}"
    assert fixed.rejects[fixed.rejects.reason_code == "unmapped_channel"].reason.iloc[0] == \
        "unmapped_channel: Campaign.Type 'Other' is not in my_types.yaml"


def test_unmapped_advice_for_an_inline_picklist_table(tmp_path):
    cm = _preset_copy(tmp_path, lambda c: c["picklists"].update(
        campaign_member_status={"status": {"Sent": "impression"}, "unknown_status": {"responded": None,
                                                                                       "not_responded": None}}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PicklistWarning)
        r = clean_exports(SF_DIR, cm)
    u = r.unmapped[r.unmapped.outcome == "rejected: unmapped_touch_type"].set_index("label")
    assert u.loc["Attended", "key"] == "picklists.campaign_member_status.status"
    assert u.loc["Attended", "advice"] == (f"add `Attended: <touch_type>` under "
                                           f"`picklists.campaign_member_status.status` in {cm}")
    assert u.rows.sum() == int((r.rejects.reason_code == "unmapped_touch_type").sum()) > 0
