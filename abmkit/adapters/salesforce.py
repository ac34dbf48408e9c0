"""Salesforce adapter: a folder of object CSVs (Data Export / Data Loader) → raw frames.

Reads ``Account.csv``, ``Contact.csv``, ``Lead.csv``, ``Campaign.csv``,
``CampaignMember.csv``, ``Opportunity.csv`` and, when present, ``Task.csv`` and
``Event.csv`` (API field names as headers, UTF-8 with BOM, empty strings for nulls).
The shipped preset ``abmkit/presets/salesforce.yaml`` maps the frames' columns to
the canonical tables; the work that needs Salesforce's data model happens here:

- **Ids.** Salesforce writes 15-character (case-sensitive) or 18-character
  (case-safe) ids for the same record, depending on the tool. Every id field is
  normalised to the **18-character** form (the 15 characters plus the 3-character
  checksum Salesforce computes from their upper-case positions), so ``0015g00000AbCdE``
  and ``0015g00000AbCdEAAV`` are one account. Values that are not 15/18
  alphanumerics (ids from another system) are kept as written.
- **People.** Contacts and leads are both ``contacts``. A converted lead
  (``IsConverted`` true, ``ConvertedContactId`` set) is the same person as its
  contact: its row carries the contact's id (and values), so the cleaner merges it
  into the contact as a duplicate (counted in ``rows_merged``), and campaign members
  and activities pointing at the lead are re-pointed to the contact. A lead that is
  not converted is its own person with ``crm_account_id`` empty (or
  ``ConvertedAccountId`` when only that is set); ``Company`` becomes its company
  name. The contact inherits the lead's ``Status`` (through the lead-status table)
  and the earlier of the two created dates.
- **Campaign members → touchpoints**, one per member: occurred at
  ``FirstRespondedDate`` when ``HasResponded``, else ``CreatedDate``; channel = the
  campaign's ``Type`` through ``salesforce_campaign_type.yaml``; touch type =
  ``Status`` (and ``HasResponded`` for statuses the table does not list) through
  ``salesforce_campaign_member_status.yaml``; person = ``ContactId`` else
  ``LeadId``. Members whose person or campaign is unknown, whose campaign type has no
  channel, or whose status is "not a touch" (e.g. Bounced) go to the rejects ledger
  with the reason.
- **Tasks / Events → touchpoints** (channel ``sales_outreach``): completed call tasks
  become ``call`` touches, events ``meeting`` touches (``salesforce_activity_type.yaml``);
  person = ``WhoId``, account = ``AccountId`` else an account ``WhatId``.
- **Opportunities.** ``CloseDate`` is the *expected* close date while an opportunity
  is open, so ``closed_at`` is set only when ``IsClosed`` is true.
- **Files.** Headers are matched to the API names case-insensitively (Data Loader writes
  ``ID``, ``ACCOUNTID``); records with ``IsDeleted`` true (Data Loader "Export All"
  includes the recycle bin) go to the ledger as ``deleted_record``; every field of
  every object (CampaignMember, Task and Event included) passes through under its API
  name, or as ``<Object>.<Field>`` (``CampaignMember.Event_Date__c``, ``Task.AccountId``),
  so custom fields can be mapped in a copy of the preset (``occurred_at: Event_Date__c``;
  rows of an object without the field keep the adapter's rule), see
  :mod:`abmkit.adapters.passthrough`.
- **Picklists** (``Lead.Status``, ``Campaign.Type``, ``Opportunity.Type``,
  ``CampaignMember.Status``) are mapped through the editable default tables; values
  the tables do not know are reported (a :class:`~abmkit.adapters.PicklistWarning`
  and the ``validate`` report), never guessed.

Example
-------
>>> from abmkit.adapters.salesforce import normalize_ids
>>> import pandas as pd
>>> normalize_ids(pd.Series(["001D000000IqhSL", "001D000000IqhSLIAZ", "", "ext-7"])).tolist()
['001D000000IqhSLIAZ', '001D000000IqhSLIAZ', None, 'ext-7']
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import (first_reason, ExportFile, blank_to_none, concat_ledgers, empty_ledger,
               find_file, ledger, load_picklist, map_labels, raw_frame, read_export, unknown_counts, warn_unknown)
from .common import _source_or_dir, coalesce, describe_read, truthy
from .passthrough import Part, complete, complete_frames, pass_through, union_columns
from ..clean.labels import attach, picklist_rows, table_file

PRESET = "salesforce"
OBJECTS: dict[str, tuple[str, ...]] = {  # object -> file names tried (Data Export, Data Loader, reports)
    "Account": ("Account.csv", "Accounts.csv", "extract_account*.csv"),
    "Contact": ("Contact.csv", "Contacts.csv", "extract_contact*.csv"),
    "Lead": ("Lead.csv", "Leads.csv", "extract_lead*.csv"),
    "Campaign": ("Campaign.csv", "Campaigns.csv", "extract_campaign.csv"),
    "CampaignMember": ("CampaignMember.csv", "CampaignMembers.csv", "extract_campaignmember*.csv"),
    "Opportunity": ("Opportunity.csv", "Opportunities.csv", "extract_opportunity*.csv"),
    "Task": ("Task.csv", "Tasks.csv", "extract_task*.csv"),
    "Event": ("Event.csv", "Events.csv", "extract_event*.csv"),
}
OBJECT_TABLE = {"Account": "accounts", "Contact": "contacts", "Lead": "contacts", "Campaign": "campaigns",
                "CampaignMember": "touchpoints", "Opportunity": "opportunities", "Task": "touchpoints",
                "Event": "touchpoints"}
OPTIONAL_OBJECTS = frozenset({"Task", "Event", "Lead"})
ID_FIELDS = ("Id", "AccountId", "ParentId", "ContactId", "LeadId", "CampaignId", "ConvertedAccountId",
             "ConvertedContactId", "ConvertedOpportunityId", "WhoId", "WhatId", "OwnerId", "MasterRecordId")
#: standard fields the adapter and the preset use; Data Loader writes headers in upper case
#: (ID, ACCOUNTID, ...), so headers are matched to these spellings case-insensitively
KNOWN_FIELDS = (
    "Id", "IsDeleted", "Name", "Website", "ParentId", "Industry", "NumberOfEmployees", "AnnualRevenue",
    "BillingCountry", "CreatedDate", "AccountId", "FirstName", "LastName", "Email", "Title", "Company", "Status",
    "IsConverted", "ConvertedAccountId", "ConvertedContactId", "ConvertedOpportunityId", "Type", "StartDate",
    "EndDate", "ActualCost", "BudgetedCost", "CampaignId", "LeadId", "ContactId", "HasResponded",
    "FirstRespondedDate", "WhoId", "WhatId", "ActivityDate", "ActivityDateTime", "StartDateTime",
    "CompletedDateTime", "IsClosed", "IsWon", "Amount", "CloseDate", "TaskSubtype", "EventSubtype", "OwnerId",
    "MasterRecordId", "StageName",
)
#: fields each object should have for the preset (absent ones are listed by validate)
EXPECTED_FIELDS = {
    "Account": ("Id", "Name", "Website", "ParentId", "Industry", "NumberOfEmployees", "AnnualRevenue",
                "BillingCountry", "CreatedDate"),
    "Contact": ("Id", "AccountId", "FirstName", "LastName", "Email", "Title", "CreatedDate"),
    "Lead": ("Id", "FirstName", "LastName", "Email", "Title", "Company", "Status", "IsConverted",
             "ConvertedAccountId", "ConvertedContactId", "CreatedDate"),
    "Campaign": ("Id", "Name", "Type", "StartDate", "EndDate", "ActualCost", "BudgetedCost"),
    "CampaignMember": ("Id", "CampaignId", "ContactId", "LeadId", "Status", "HasResponded", "CreatedDate",
                       "FirstRespondedDate"),
    "Opportunity": ("Id", "AccountId", "CreatedDate", "CloseDate", "IsClosed", "IsWon", "Amount", "Type"),
    "Task": ("Id", "WhoId", "WhatId", "AccountId", "Type", "TaskSubtype", "IsClosed", "ActivityDate"),
    "Event": ("Id", "WhoId", "WhatId", "AccountId", "Type", "StartDateTime", "ActivityDateTime", "ActivityDate"),
}
PICKLIST_FILES = {
    "campaign_member_status": "salesforce_campaign_member_status.yaml",
    "campaign_type": "salesforce_campaign_type.yaml",
    "lead_status": "salesforce_lead_status.yaml",
    "opportunity_type": "salesforce_opportunity_type.yaml",
    "activity_type": "salesforce_activity_type.yaml",
}
# column sets of the multi-source tables (every RawFrame of a table has the same headers)
PERSON_COLUMNS = ["Id", "FirstName", "LastName", "Email", "Title", "Company", "AccountId", "LeadStatus",
                  "CreatedDate", "SourceObject"]
TOUCH_COLUMNS = ["Id", "OccurredAt", "Channel", "TouchType", "PersonId", "AccountId", "CampaignId",
                 "SourceObject"]
#: columns the adapter derives per table (every other column of a frame is a field of the
#: object its rows come from, under its own header, see abmkit.adapters.passthrough)
DERIVED = {"accounts": [], "contacts": PERSON_COLUMNS, "campaigns": ["Channel", "Cost"],
           "touchpoints": TOUCH_COLUMNS, "opportunities": ["ClosedAt", "OpportunityType"]}
#: where each canonical column comes from (for the validate report)
SOURCES = {
    ("accounts", "account_id"): "Account.Id (18-char)",
    ("accounts", "account_name"): "Account.Name",
    ("accounts", "domain"): "Account.Website -> registrable domain",
    ("accounts", "parent_account_id"): "Account.ParentId (18-char)",
    ("accounts", "industry"): "Account.Industry",
    ("accounts", "employee_count"): "Account.NumberOfEmployees",
    ("accounts", "annual_revenue"): "Account.AnnualRevenue",
    ("accounts", "region"): "Account.BillingCountry",
    ("accounts", "created_at"): "Account.CreatedDate",
    ("contacts", "contact_id"): "Contact.Id / Lead.Id (converted lead -> ConvertedContactId)",
    ("contacts", "email"): "Contact.Email / Lead.Email",
    ("contacts", "first_name"): "FirstName",
    ("contacts", "last_name"): "LastName",
    ("contacts", "title"): "Title",
    ("contacts", "company_name"): "Lead.Company (contact: its converted lead's)",
    ("contacts", "crm_account_id"): "Contact.AccountId / Lead.ConvertedAccountId",
    ("contacts", "lead_status"): "Lead.Status via salesforce_lead_status.yaml",
    ("contacts", "created_at"): "CreatedDate (earliest of contact and its lead)",
    ("touchpoints", "touchpoint_id"): "CampaignMember.Id / Task.Id / Event.Id",
    ("touchpoints", "occurred_at"): "FirstRespondedDate if HasResponded else CreatedDate; activity dates",
    ("touchpoints", "channel"): "Campaign.Type via salesforce_campaign_type.yaml; activities: sales_outreach",
    ("touchpoints", "touch_type"): "CampaignMember.Status/HasResponded via salesforce_campaign_member_status.yaml",
    ("touchpoints", "contact_id"): "CampaignMember.ContactId else LeadId; activity WhoId",
    ("touchpoints", "account_id"): "Task/Event AccountId or account WhatId",
    ("touchpoints", "campaign_id"): "CampaignMember.CampaignId",
    ("campaigns", "campaign_id"): "Campaign.Id",
    ("campaigns", "campaign_name"): "Campaign.Name",
    ("campaigns", "channel"): "Campaign.Type via salesforce_campaign_type.yaml",
    ("campaigns", "start_date"): "Campaign.StartDate",
    ("campaigns", "end_date"): "Campaign.EndDate",
    ("campaigns", "cost"): "Campaign.ActualCost, else BudgetedCost",
    ("opportunities", "opportunity_id"): "Opportunity.Id",
    ("opportunities", "account_id"): "Opportunity.AccountId",
    ("opportunities", "created_at"): "Opportunity.CreatedDate",
    ("opportunities", "closed_at"): "Opportunity.CloseDate when IsClosed",
    ("opportunities", "is_closed"): "Opportunity.IsClosed",
    ("opportunities", "is_won"): "Opportunity.IsWon",
    ("opportunities", "amount"): "Opportunity.Amount",
    ("opportunities", "opportunity_type"): "Opportunity.Type via salesforce_opportunity_type.yaml",
}

#: what is lost when an object's file is absent (validate report)
OBJECT_NOTES = {
    "Account": "no accounts: every account-level analysis is off",
    "Contact": "only leads are people; contact campaign touches are rejected (unknown_person)",
    "Lead": "leads (people not yet tied to an account) and their campaign touches are missing",
    "Campaign": "no campaign channel or cost; every CampaignMember touch is rejected (unknown_campaign)",
    "CampaignMember": "no marketing touchpoints: attribution, engagement/MQA, progression and campaign "
                      "influence see only sales activities (or nothing)",
    "Opportunity": "no conversions: attribution, pipeline/win-rate KPIs, customer stage are off",
    "Task": "no call touches",
    "Event": "no meeting touches (sales_ready then relies on open opportunities)",
}
_ALPHABET = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"))
_ID_RE = r"[A-Za-z0-9]{15}(?:[A-Za-z0-5]{3})?"


# ---------------------------------------------------------------------------- ids
def normalize_ids(values: pd.Series) -> pd.Series:
    """Salesforce ids in their 18-character case-safe form.

    The suffix encodes, for each 5-character chunk of the 15-character id, which
    characters are upper-case (bit i set when character i is A-Z), as one letter of
    ``A..Z0..5``. An 18-character id is rebuilt from its first 15 characters, so both
    forms of one record compare equal. Empty values become None; values that are not
    15/18 alphanumerics are returned stripped but unchanged.
    """
    s = blank_to_none(pd.Series(values, copy=False))
    arr = pa.array(s.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
    is_sf = pd.Series(pc.fill_null(pc.match_substring_regex(arr, f"^(?:{_ID_RE})$"), False).to_numpy(
        zero_copy_only=False), index=s.index)
    if not is_sf.any():
        return s
    base = s[is_sf].astype(str).str[:15].to_numpy(dtype="U15")
    chars = base.view("U1").reshape(-1, 15)
    upper = ((chars >= "A") & (chars <= "Z")).reshape(-1, 3, 5)
    codes = (upper * (1 << np.arange(5))).sum(axis=2)
    suffix = _ALPHABET[codes]
    out = s.copy()
    # 3 suffix letters per id: join them with numpy string addition, no Python loop over rows
    suffix_str = np.char.add(np.char.add(suffix[:, 0], suffix[:, 1]), suffix[:, 2])
    out[is_sf] = np.char.add(base, suffix_str).astype(object)
    return out


def _normalize_id_fields(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    for col in ID_FIELDS:
        if col in df.columns:
            df[col] = normalize_ids(df[col])
    return df


def _col(df: pd.DataFrame, name: str) -> pd.Series:
    """A field as stripped strings-or-None (None everywhere when the field is absent)."""
    if name in df.columns:
        return blank_to_none(df[name])
    return pd.Series([None] * len(df), index=df.index, dtype=object)


# ---------------------------------------------------------------------------- reading
def _read_objects(raw_dir: Path, only=None) -> dict[str, ExportFile]:
    found = {}
    for obj, names in OBJECTS.items():
        if only is not None and obj not in only:
            continue
        path = find_file(raw_dir, names)
        if path is not None:
            ef = read_export(path, OBJECT_TABLE[obj])
            # Data Loader writes ID / ACCOUNTID; warehouse sync tools write account_id, number_of_employees,
            # abm_tier_c (for ABM_Tier__c): case and underscores do not tell fields apart
            known = {field_key(f): f for f in KNOWN_FIELDS}
            ef.raw = ef.data  # normalising below builds new frames: the raw cells stay for the ledger
            ef.data = _normalize_id_fields(ef.data.rename(columns=lambda c: known.get(field_key(c), c)))
            # records in the recycle bin (Data Loader "Export All" includes them) are not data; a sync
            # tool marks records deleted in Salesforce with its own flag (_fivetran_deleted, _sdc_deleted_at)
            in_bin = truthy(_col(ef.data, "IsDeleted").fillna(""))
            synced_out = truthy(_col(ef.data, "_fivetran_deleted").fillna("")) | _col(ef.data, "_sdc_deleted_at").notna()
            deleted = in_bin | synced_out
            if deleted.any():
                why = np.where(in_bin.values, f"deleted_record: {obj}.IsDeleted is true (in the recycle bin)",
                               f"deleted_record: {obj} record deleted in Salesforce (the sync tool's deleted flag)")
                ef.malformed = concat_ledgers([ef.malformed, ledger(
                    ef.name, ef.raw[deleted.values], ef.rows[deleted.values], OBJECT_TABLE[obj],
                    pd.Series(why[deleted.values]))])
                ef.data = ef.data[~deleted.values].reset_index(drop=True)
                ef.raw = ef.raw[~deleted.values].reset_index(drop=True)
                ef.rows = ef.rows[~deleted.values]
            found[obj] = ef
    return found


def field_key(name: str) -> str:
    """Salesforce field name compared without case and underscores: ``NumberOfEmployees``,
    ``NUMBEROFEMPLOYEES`` and ``number_of_employees`` are one field, and so are a custom
    ``ABM_Tier__c`` and a sync tool's ``abm_tier_c``.

    >>> field_key("ABM_Tier__c") == field_key("abm_tier_c"), field_key("AccountId") == field_key("account_id")
    (True, True)
    """
    return str(name).replace("_", "").casefold()


def _empty_object(obj: str) -> ExportFile:
    return ExportFile(f"{obj}.csv", pd.DataFrame({"Id": pd.Series([], dtype=object)}),
                      np.array([], dtype="int64"), empty_ledger())


def _read(raw_dir, column_map: Mapping) -> dict:
    """Everything read_frames and describe need: frames, rejects, unknown picklist values, files."""
    raw_dir = _source_or_dir(raw_dir)
    if isinstance(raw_dir, Path) and not raw_dir.is_dir():
        raise FileNotFoundError(f"Salesforce export folder {raw_dir} does not exist.")
    objs = _read_objects(raw_dir)
    if not objs:
        raise FileNotFoundError(
            f"{raw_dir}: no Salesforce object CSV found (looked for {', '.join(n[0] for n in OBJECTS.values())}). "
            "Export the objects with Data Export or Data Loader (API names as headers) into this folder.")
    return _read_from(objs, column_map)


def _read_from(objs: dict[str, ExportFile], column_map: Mapping) -> dict:
    """:func:`_read` on objects already read (the marketing-automation presets read the
    CRM's Account and Opportunity objects this way)."""
    tables = {k: load_picklist(column_map, k, v) for k, v in PICKLIST_FILES.items()}
    get = lambda o: objs.get(o) or _empty_object(o)  # noqa: E731
    unknown, frames, unmapped = [], {}, []
    rejects = [ef.malformed for ef in objs.values()]
    # headers the column map names per table: `<Object>.<Field>` ones are passed through on demand
    wanted = {t: [h for h in ((b or {}).get("columns") or {}).values() if h]
              for t, b in (column_map.get("tables") or {}).items()}

    # campaigns first: members need each campaign's channel
    camp = get("Campaign")
    camp_type = _col(camp.data, "Type")
    camp_channel, camp_unknown = map_labels(camp_type, tables["campaign_type"])
    unknown.append(unknown_counts("Campaign", "Type", camp_type, camp_unknown,
                                  "campaign channel left empty; its members' touches are rejected"))
    if "Campaign" in objs:
        unmapped.append(picklist_rows("campaigns", "channel", camp_type, camp_unknown, "blanked",
                                      source="Campaign.Type", picklist=tables["campaign_type"],
                                      canonical="channel", column_map=column_map))
        c = pass_through(pd.DataFrame({
            "Channel": camp_channel.values,
            "Cost": coalesce(_col(camp.data, "ActualCost"), _col(camp.data, "BudgetedCost")).values,
        }), camp.data, "Campaign", wanted.get("campaigns", ()))
        frames["campaigns"] = [raw_frame(camp.name, _ensure(c, ["Id", "Name", "StartDate", "EndDate"]), camp.rows,
                                         like=camp)]

    if "Account" in objs:
        acc = objs["Account"]
        a = pass_through(pd.DataFrame(index=acc.data.index), acc.data, "Account", wanted.get("accounts", ()))
        frames["accounts"] = [raw_frame(acc.name, _ensure(a, [
            "Id", "Name", "Website", "ParentId", "Industry", "NumberOfEmployees", "AnnualRevenue",
            "BillingCountry", "CreatedDate"]), acc.rows, like=acc)]

    people, lead_person, person_ids = _people(get("Contact"), get("Lead"), tables, unknown,
                                              has_contact="Contact" in objs, has_lead="Lead" in objs,
                                              column_map=column_map, unmapped=unmapped)
    if people:
        frames["contacts"] = people

    touches = []
    if "CampaignMember" in objs:
        f, r = _member_touches(objs["CampaignMember"], camp, camp_channel, lead_person, person_ids, tables,
                               unknown, has_campaigns="Campaign" in objs, wanted=wanted.get("touchpoints", ()),
                               column_map=column_map, unmapped=unmapped)
        touches.append(f)
        rejects.append(r)
    for obj in ("Task", "Event"):
        if obj in objs:
            f, r = _activity_touches(obj, objs[obj], lead_person, person_ids, tables, unknown,
                                     wanted=wanted.get("touchpoints", ()), column_map=column_map,
                                     unmapped=unmapped)
            touches.append(f)
            rejects.append(r)
    if touches:
        frames["touchpoints"] = touches

    if "Opportunity" in objs:
        opp = objs["Opportunity"]
        closed = truthy(_col(opp.data, "IsClosed").fillna(""))
        otype, o_unknown = map_labels(_col(opp.data, "Type"), tables["opportunity_type"])
        unknown.append(unknown_counts("Opportunity", "Type", _col(opp.data, "Type"), o_unknown,
                                      "opportunity_type left empty"))
        unmapped.append(picklist_rows("opportunities", "opportunity_type", _col(opp.data, "Type"), o_unknown,
                                      "blanked", source="Opportunity.Type", picklist=tables["opportunity_type"],
                                      column_map=column_map))
        o = pass_through(pd.DataFrame({
            # CloseDate of an open opportunity is a forecast, not a close
            "ClosedAt": _col(opp.data, "CloseDate").where(closed, None).values,
            "OpportunityType": otype.values,
        }), opp.data, "Opportunity", wanted.get("opportunities", ()))
        frames["opportunities"] = [raw_frame(opp.name, _ensure(o, ["Id", "AccountId", "CreatedDate", "IsClosed",
                                                                   "IsWon", "Amount"]), opp.rows, like=opp)]

    files = pd.DataFrame([{"object": o, "file": objs[o].name if o in objs else None,
                           "rows": len(objs[o].data) + len(objs[o].malformed) if o in objs else 0,
                           "table": OBJECT_TABLE[o]} for o in OBJECTS])
    parts = [u for u in unknown if len(u)]
    unknown_df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["object", "field", "value", "rows", "action"])
    absent = [(o, f, objs[o].name) for o in objs for f in EXPECTED_FIELDS.get(o, ()) if f not in objs[o].data.columns]
    # every header the column map names exists on every frame (or the error lists the files' own columns)
    complete_frames(frames, objs, column_map, preset=PRESET, object_table=OBJECT_TABLE, derived=DERIVED)
    parts = [u for u in unmapped if len(u)]
    return {"frames": frames, "rejects": concat_ledgers(rejects), "unknown": unknown_df, "files": files,
            "absent": absent, "unmapped": pd.concat(parts, ignore_index=True) if parts else None}


def _ensure(df: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    """Add absent fields as empty strings so the preset's headers always exist."""
    df = df.copy()
    for c in cols:
        if c not in df.columns:
            df[c] = ""
    return df.fillna("").astype(object)


def _people(contact, lead, tables, unknown, *, has_contact, has_lead, column_map=None, unmapped=None):
    """contacts frames, the lead → person id map, and the set of known person ids."""
    column_map = column_map or {}
    con, led = contact.data, lead.data
    status_lead, l_unknown = map_labels(_col(led, "Status"), tables["lead_status"])
    unknown.append(unknown_counts("Lead", "Status", _col(led, "Status"), l_unknown, "lead_status left empty"))
    if unmapped is not None and has_lead:
        unmapped.append(picklist_rows("contacts", "lead_status", _col(led, "Status"), l_unknown, "blanked",
                                      source="Lead.Status", picklist=tables["lead_status"], column_map=column_map))
    converted_to = _col(led, "ConvertedContactId").where(truthy(_col(led, "IsConverted").fillna("")) |
                                                         _col(led, "ConvertedContactId").notna(), None)
    lead_ids = _col(led, "Id")
    lead_person = pd.Series(coalesce(converted_to, lead_ids).values, index=lead_ids.values)
    lead_person = lead_person[lead_person.index.notna()]
    lead_person = lead_person[~lead_person.index.duplicated()]

    lead_frame = pd.DataFrame({
        "Id": lead_person.reindex(lead_ids.values).values,
        "FirstName": _col(led, "FirstName").values, "LastName": _col(led, "LastName").values,
        "Email": _col(led, "Email").values, "Title": _col(led, "Title").values,
        "Company": _col(led, "Company").values, "AccountId": _col(led, "ConvertedAccountId").values,
        "LeadStatus": status_lead.values, "CreatedDate": _col(led, "CreatedDate").values,
        "SourceObject": "Lead",
    }, columns=PERSON_COLUMNS)
    contact_frame = pd.DataFrame({
        "Id": _col(con, "Id").values, "FirstName": _col(con, "FirstName").values,
        "LastName": _col(con, "LastName").values, "Email": _col(con, "Email").values,
        "Title": _col(con, "Title").values, "Company": None, "AccountId": _col(con, "AccountId").values,
        "LeadStatus": None, "CreatedDate": _col(con, "CreatedDate").values, "SourceObject": "Contact",
    }, columns=PERSON_COLUMNS)

    # a converted lead is its contact: the contact inherits the lead's status, company and the
    # earlier created date; the lead row becomes an exact copy, merged by the cleaner as a duplicate
    is_merged = lead_frame["Id"].isin(contact_frame["Id"].dropna()) & converted_to.notna().values
    from_lead = lead_frame[is_merged].drop_duplicates("Id").set_index("Id")
    if len(from_lead):
        cid = contact_frame["Id"]
        for col in ("LeadStatus", "Company"):
            contact_frame[col] = contact_frame[col].where(contact_frame[col].notna(), cid.map(from_lead[col]))
        lead_created = pd.to_datetime(cid.map(from_lead["CreatedDate"]), utc=True, errors="coerce",
                                      format="ISO8601")
        own_created = pd.to_datetime(contact_frame["CreatedDate"], utc=True, errors="coerce", format="ISO8601")
        earlier = lead_created.notna() & (own_created.isna() | (lead_created < own_created))
        contact_frame.loc[earlier, "CreatedDate"] = cid[earlier].map(from_lead["CreatedDate"])

    # every other Contact / Lead field passes through (custom fields can be mapped in a copy of the
    # preset, abmkit.adapters.passthrough): a field the column map names that only one object has
    # takes the adapter's own column on the other's rows (empty when the preset maps none); any
    # other field of only one object is empty on the other's rows
    wanted = [h for h in (((column_map.get("tables") or {}).get("contacts") or {}).get("columns") or {}).values()
              if h]
    contact_frame = pass_through(contact_frame, con, "Contact", wanted)
    lead_frame = pass_through(lead_frame, led, "Lead", wanted)
    parts = [(i, Part(f, obj, ef.name, [str(h) for h in ef.original.columns], derived=PERSON_COLUMNS))
             for i, (f, obj, ef, here) in enumerate([(contact_frame, "Contact", contact, has_contact),
                                                     (lead_frame, "Lead", lead, has_lead)]) if here]
    pair = [contact_frame, lead_frame]
    for (i, _), done in zip(parts, complete("contacts", [p for _, p in parts], column_map, preset=PRESET,
                                            objects=("Contact", "Lead"))):
        pair[i] = done
    contact_frame, lead_frame = union_columns(pair)
    if is_merged.any():
        # the merged lead row is an exact copy of its contact row, in every column
        cols = [c for c in contact_frame.columns if c != "SourceObject"]
        merged_rows = contact_frame.drop_duplicates("Id").set_index("Id").reindex(lead_frame.loc[is_merged, "Id"])
        lead_frame.loc[is_merged, cols] = merged_rows.reset_index()[cols].to_numpy(dtype=object)

    frames = []
    if has_contact:
        frames.append(raw_frame(contact.name, contact_frame.fillna("").astype(object), contact.rows, like=contact))
    if has_lead:
        frames.append(raw_frame(lead.name, lead_frame.fillna("").astype(object), lead.rows, like=lead))
    person_ids = set(contact_frame["Id"].dropna()) | set(lead_frame["Id"].dropna())
    return frames, lead_person, person_ids


def _person_of(contact_id: pd.Series, lead_id: pd.Series, lead_person: pd.Series) -> pd.Series:
    """ContactId, else the LeadId re-pointed to its converted contact."""
    from_lead = lead_id.map(lead_person)
    from_lead = from_lead.where(from_lead.notna(), lead_id)
    return coalesce(contact_id, from_lead)


def _member_touches(member, camp, camp_channel, lead_person, person_ids, tables, unknown, *, has_campaigns,
                    wanted=(), column_map=None, unmapped=None):
    m_file, mem, rows = member.name, member.data, member.rows
    type_file = table_file(tables["campaign_type"], PICKLIST_FILES["campaign_type"])
    status_file = table_file(tables["campaign_member_status"], PICKLIST_FILES["campaign_member_status"])
    n = len(mem)
    contact_id, lead_id = _col(mem, "ContactId"), _col(mem, "LeadId")
    person = _person_of(contact_id, lead_id, lead_person)
    campaign_id = _col(mem, "CampaignId")
    camp_ids = _col(camp.data, "Id")
    type_by_campaign = pd.Series(_col(camp.data, "Type").values, index=camp_ids.values)
    channel_by_campaign = pd.Series(camp_channel.values, index=camp_ids.values)
    type_by_campaign = type_by_campaign[~type_by_campaign.index.duplicated()]
    channel_by_campaign = channel_by_campaign[~channel_by_campaign.index.duplicated()]
    channel = campaign_id.map(channel_by_campaign)
    camp_type = campaign_id.map(type_by_campaign)

    status = _col(mem, "Status")
    responded = truthy(_col(mem, "HasResponded").fillna(""))
    touch, status_known, not_a_touch = _member_touch_type(status, channel, responded,
                                                          tables["campaign_member_status"])
    fallback = tables["campaign_member_status"].get("unknown_status") or {}
    unknown.append(unknown_counts(
        "CampaignMember", "Status", status.fillna("(empty)"), ~status_known,
        f"HasResponded fallback: responded -> {fallback.get('responded')}, "
        f"not responded -> {fallback.get('not_responded')} (null = rejected)"))

    occurred = coalesce(_col(mem, "FirstRespondedDate").where(responded, None), _col(mem, "CreatedDate"))

    # first failing check names the reason (vectorised: later checks only fill still-empty reasons)
    reason, fail = first_reason(mem.index)

    fail(person.isna(), "no_person: CampaignMember has neither ContactId nor LeadId")
    fail(contact_id.notna() & ~contact_id.isin(person_ids),
         lambda m: "unknown_person: ContactId " + contact_id[m] + " is not in Contact.csv")
    fail(contact_id.isna() & lead_id.notna() & ~person.isin(person_ids),
         lambda m: "unknown_person: LeadId " + lead_id[m] + " is not in Lead.csv")
    fail(campaign_id.isna(), "unknown_campaign: CampaignMember has no CampaignId")
    fail(campaign_id.notna() & ~campaign_id.isin(camp_ids.dropna()),
         lambda m: "unknown_campaign: CampaignId " + campaign_id[m] +
         (" is not in Campaign.csv" if has_campaigns else " (no Campaign.csv in the export)"))
    fail(channel.isna(), lambda m: "unmapped_channel: Campaign.Type " + camp_type[m].fillna("(empty)").map(repr)
         + f" is not in {type_file}")
    fail(not_a_touch, lambda m: "not_a_touch: CampaignMember.Status " + status[m].fillna("").map(repr) +
         f" is mapped to null in {status_file}")
    fail(touch.isna(), lambda m: "unmapped_touch_type: CampaignMember.Status " +
         status[m].fillna("(empty)").map(repr) + f" is not in {status_file}")
    fail(occurred.isna(), "missing_timestamp: CampaignMember has no CreatedDate")

    bad = reason.notna()
    if unmapped is not None:  # the labels behind the rejections, counted exactly as rejected
        code = reason.fillna("").str.split(":").str[0]
        unmapped.append(picklist_rows(
            "touchpoints", "channel", camp_type, code == "unmapped_channel", "rejected: unmapped_channel",
            source="Campaign.Type", picklist=tables["campaign_type"], canonical="channel", column_map=column_map))
        unmapped.append(picklist_rows(
            "touchpoints", "touch_type", status, code == "unmapped_touch_type", "rejected: unmapped_touch_type",
            source="CampaignMember.Status", picklist=tables["campaign_member_status"], key="status",
            canonical="touch_type", column_map=column_map))
        for flag, which in ((True, "responded"), (False, "not_responded")):
            unmapped.append(picklist_rows(
                "touchpoints", "touch_type", status, ~status_known & ~bad & (responded == flag),
                f"kept: {fallback.get(which)} (unknown_status.{which} fallback)", source="CampaignMember.Status",
                picklist=tables["campaign_member_status"], key="status", canonical="touch_type",
                column_map=column_map))
    frame = pd.DataFrame({"Id": _col(mem, "Id").values, "OccurredAt": occurred.values, "Channel": channel.values,
                          "TouchType": touch.values, "PersonId": person.values, "AccountId": None,
                          "CampaignId": campaign_id.values, "SourceObject": "CampaignMember"},
                         columns=TOUCH_COLUMNS)
    frame = pass_through(frame, mem, "CampaignMember", wanted)[~bad.values]
    rej = ledger(m_file, member.original[bad.values], rows[bad.values], "touchpoints", reason[bad].values)
    return raw_frame(m_file, frame.fillna("").astype(object), rows[~bad.values], like=member), rej


def _member_touch_type(status, channel, responded, table):
    """touch_type of each member: the status within the campaign's channel
    (``by_channel``), else the status alone (``status``), else (status not listed, or
    empty) the ``unknown_status`` HasResponded fallback.

    Returns ``(touch, status_known, not_a_touch)``; a status listed with ``null`` is
    known and not a touch (e.g. Bounced)."""
    touch, unk = map_labels(status, table.get("status") or {})
    known = status.notna() & ~unk
    for ch, sub in (table.get("by_channel") or {}).items():
        mapped, sub_unk = map_labels(status, sub or {})
        hit = (channel == ch) & status.notna() & ~sub_unk
        touch = touch.where(~hit, mapped)
        known = known | hit
    not_a_touch = known & touch.isna()
    fallback = table.get("unknown_status") or {}
    fb = pd.Series(np.where(responded.to_numpy(), fallback.get("responded"), fallback.get("not_responded")),
                   index=status.index, dtype=object)
    touch = touch.where(known, fb)
    return touch.where(touch.notna(), None), known, not_a_touch


def _activity_touches(obj, activity, lead_person, person_ids, tables, unknown, *, wanted=(), column_map=None,
                      unmapped=None):
    a_file, act, rows = activity.name, activity.data, activity.rows
    n = len(act)
    table = tables["activity_type"].get(obj.lower()) or {}
    by_type, type_unknown = map_labels(_col(act, "Type"), table.get("type") or {})
    sub_field = "TaskSubtype" if obj == "Task" else "EventSubtype"
    by_sub, sub_unknown = map_labels(_col(act, sub_field), table.get("subtype") or {})
    touch = coalesce(by_type, by_sub)
    if table.get("default"):
        touch = touch.fillna(table["default"])
    unknown.append(unknown_counts(obj, "Type", _col(act, "Type"), type_unknown & touch.isna(),
                                  "not a touch unless its subtype maps"))
    if unmapped is not None:  # the first check below: every such row is rejected as not_a_touch
        unmapped.append(picklist_rows("touchpoints", "touch_type", _col(act, "Type"), type_unknown & touch.isna(),
                                      "rejected: not_a_touch", source=f"{obj}.Type",
                                      picklist=tables["activity_type"], key=f"{obj.lower()}.type",
                                      canonical="activity", column_map=column_map))

    who = _col(act, "WhoId")
    person = who.map(lead_person)
    person = person.where(person.notna(), who)
    person_known = person.isin(person_ids)
    what = _col(act, "WhatId")
    account = coalesce(_col(act, "AccountId"), what.where(what.fillna("").str.startswith("001"), None))
    if obj == "Task":
        occurred = coalesce(_col(act, "CompletedDateTime"), _col(act, "ActivityDate"), _col(act, "CreatedDate"))
        done = _col(act, "IsClosed")
        open_task = done.notna() & ~truthy(done.fillna(""))
    else:
        occurred = coalesce(_col(act, "StartDateTime"), _col(act, "ActivityDateTime"), _col(act, "ActivityDate"))
        open_task = pd.Series(False, index=act.index)

    reason, fail = first_reason(act.index)

    type_label = _col(act, "Type").fillna("") + "/" + _col(act, sub_field).fillna("")
    act_file = table_file(tables["activity_type"], PICKLIST_FILES["activity_type"])
    fail(touch.isna(), lambda m: f"not_a_touch: {obj} Type/{sub_field} " + type_label[m].map(repr) +
         f" is not a call or meeting in {act_file}")
    fail(open_task, "not_a_touch: Task is not completed (IsClosed false)")
    fail(~person_known & account.isna(),
         lambda m: f"unknown_person: {obj} WhoId " + who[m].fillna("(empty)") +
         " is not a known contact/lead and it has no account")
    fail(occurred.isna(), f"missing_timestamp: {obj} has no activity date")
    bad = reason.notna()
    frame = pd.DataFrame({"Id": _col(act, "Id").values, "OccurredAt": occurred.values, "Channel": "sales_outreach",
                          "TouchType": touch.values, "PersonId": person.where(person_known, None).values,
                          "AccountId": account.values, "CampaignId": None, "SourceObject": obj},
                         columns=TOUCH_COLUMNS)
    frame = pass_through(frame, act, obj, wanted)[~bad.values]
    rej = ledger(a_file, activity.original[bad.values], rows[bad.values], "touchpoints", reason[bad].values)
    return raw_frame(a_file, frame.fillna("").astype(object), rows[~bad.values], like=activity), rej


# ---------------------------------------------------------------------------- public
def read_frames(raw_dir, column_map: Mapping) -> tuple[dict[str, list], pd.DataFrame]:
    """Raw frames of a Salesforce export folder and the rows the adapter rejects.

    Parameters
    ----------
    raw_dir : folder with ``Account.csv``, ``Contact.csv``, ... (see module docstring).
    column_map : the loaded preset (dict); its optional ``picklists`` names copies of
        the default picklist tables.

    Returns
    -------
    frames : dict table -> list of RawFrame (raw strings; headers as in the preset's ``columns``)
    pre_rejects : ledger-format DataFrame (``source_file, source_row, table, reason, raw_values``);
        its ``attrs["unmapped"]`` holds the picklist labels the tables did not know, one record per
        (table, column, label, outcome) with the file and key that fix it
        (:mod:`abmkit.clean.labels`), for ``CleanResult.unmapped``

    Example
    -------
    >>> frames, rejects = read_frames("tests/data/salesforce_export", {})   # doctest: +SKIP
    >>> sorted(frames)                                                      # doctest: +SKIP
    ['accounts', 'campaigns', 'contacts', 'opportunities', 'touchpoints']
    """
    got = _read(raw_dir, column_map or {})
    warn_unknown(got["unknown"], PRESET)
    # the labels the picklist tables did not know travel with the ledger into CleanResult.unmapped
    return got["frames"], attach(got["rejects"], got["unmapped"])


def describe(raw_dir, column_map: Mapping) -> pd.DataFrame:
    """Pre-flight report rows for ``validate`` (render with :func:`abmkit.adapters.format_description`).

    Sections: ``file`` (object, file found, rows, canonical table), ``column`` (each
    canonical column, the Salesforce field(s) it comes from and the share filled),
    ``missing`` (absent objects / empty columns and the analyses they disable) and
    ``picklist`` (values not in the default tables, with what happens to them).
    """
    return describe_read(_read(raw_dir, column_map or {}), column_map or {}, SOURCES, OPTIONAL_OBJECTS, OBJECT_NOTES)
