"""HubSpot adapter: the CSVs of HubSpot's "export all records" → raw frames.

Reads from one folder (file names as HubSpot writes them, e.g.
``hubspot-crm-exports-all-companies-2024-11-10.csv``; any name containing
"compan", "contact" or "deal" works):

- companies → ``accounts`` (``Record ID``, ``Company name``, ``Company Domain Name``
  (else ``Website URL``), ``Parent Company``, ``Industry``, ``Number of Employees``,
  ``Annual Revenue``, ``Country/Region``, ``Create Date``, and when the portal uses
  HubSpot's ABM properties ``Target Account`` and ``Ideal Customer Profile Tier``);
- contacts → ``contacts`` (``Record ID``, ``Email``, ``First Name``, ``Last Name``,
  ``Job Title``, ``Company Name``, ``Lifecycle Stage`` → lead_status through
  ``hubspot_lifecycle_stage.yaml``, ``Buying Role`` → persona through
  ``hubspot_buying_role.yaml``, ``Became a Marketing Qualified Lead Date`` → mql_at,
  ``Create Date``);
- deals → ``opportunities`` (``Record ID``, ``Deal Stage`` → is_closed / is_won
  through ``hubspot_deal_stage.yaml``, ``Amount``, ``Create Date``, ``Close Date``
  (only once the deal is closed: before that it is a forecast), ``Deal Type``);
- optional marketing-email events (file name containing "email") and page views
  (file name containing "page") → ``touchpoints``.

**Associations.** ``Associated Company IDs`` may hold several ids separated by
``;`` (a contact or deal associated with several companies). The account is the
*primary* company: the ``Associated Company IDs (Primary)`` column when the export
has it, else the **first** id of the list (HubSpot lists the primary first). The
other ids are not used for mapping.

**Timestamps.** HubSpot writes ``2024-01-23 14:05`` in the portal's time zone with
no offset: set ``defaults: timezone:`` of your copy of the preset to the portal's
zone (Settings → Account defaults) if it is not UTC.

Picklist labels that the tables do not know are reported (PicklistWarning and the
``validate`` report), never guessed.

Example
-------
>>> from abmkit.adapters.hubspot import primary_id
>>> import pandas as pd
>>> primary_id(pd.Series(["101;102", " 205 ", "", None])).tolist()
['101', '205', None, None]
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from . import (first_reason, ExportFile, blank_to_none, concat_ledgers, find_file, ledger,
               load_picklist, map_labels, raw_frame, read_export, unknown_counts, warn_unknown)
from .common import _source_or_dir, coalesce, describe_read, truthy
from .passthrough import complete_frames, pass_through
from ..clean.labels import attach, picklist_rows, table_file

PRESET = "hubspot"
OBJECTS: dict[str, tuple[str, ...]] = {
    "companies": ("companies.csv", "*all-companies*.csv", "*compan*.csv"),
    "contacts": ("contacts.csv", "*all-contacts*.csv", "*contact*.csv"),
    "deals": ("deals.csv", "*all-deals*.csv", "*deal*.csv"),
    "email_events": ("email_events.csv", "*email*event*.csv", "*marketing*email*.csv", "*email*.csv"),
    "page_views": ("page_views.csv", "*page*view*.csv", "*pageview*.csv"),
}
OBJECT_TABLE = {"companies": "accounts", "contacts": "contacts", "deals": "opportunities",
                "email_events": "touchpoints", "page_views": "touchpoints"}
OPTIONAL_OBJECTS = frozenset({"email_events", "page_views"})
#: display-name headers each export should have (absent ones are listed by validate)
EXPECTED_FIELDS = {
    "companies": ("Record ID", "Company name", "Company Domain Name", "Industry", "Number of Employees",
                  "Annual Revenue", "Create Date"),
    "contacts": ("Record ID", "Email", "First Name", "Last Name", "Job Title", "Lifecycle Stage",
                 "Associated Company IDs", "Create Date"),
    "deals": ("Record ID", "Deal Stage", "Amount", "Create Date", "Close Date", "Deal Type", "Associated Company IDs"),
}
PICKLIST_FILES = {
    "lifecycle_stage": "hubspot_lifecycle_stage.yaml",
    "deal_stage": "hubspot_deal_stage.yaml",
    "deal_type": "hubspot_deal_type.yaml",
    "buying_role": "hubspot_buying_role.yaml",
    "email_event_type": "hubspot_email_event_type.yaml",
}
# accepted spellings of fields whose label differs between export types / portal languages
ALIASES = {
    "id": ("Record ID", "Company ID", "Contact ID", "Deal ID", "hs_object_id"),
    "company_name": ("Company name", "Name"),
    "amount": ("Amount", "Amount in company currency"),
    "domain": ("Company Domain Name", "Website URL"),
    "parent": ("Parent Company ID", "Parent Company"),
    "company_ids": ("Associated Company IDs", "Associated Company ID", "Associated Company"),
    "primary_company": ("Associated Company IDs (Primary)", "Primary Associated Company ID",
                        "Primary Company ID"),
    "email": ("Email", "Email Address", "Recipient", "Recipient Email"),
    "contact_ref": ("Contact ID", "Record ID", "Contact Record ID"),
    "event_type": ("Event Type", "Event", "Type"),
    "event_time": ("Timestamp", "Event Timestamp", "Event Date", "Created", "Date", "Time"),
    "event_id": ("Event ID", "ID"),
    "email_campaign": ("Email Campaign ID", "Email ID", "Email Name", "Campaign"),
    "page_time": ("Timestamp", "Viewed At", "View Date", "Date", "Time"),
    "page_source": ("Source", "Traffic Source", "Original Source", "Channel"),
}
ACCOUNT_COLUMNS = ["Record ID", "Company name", "Domain", "Parent Company ID", "Industry", "Number of Employees",
                   "Annual Revenue", "Country/Region", "Create Date", "Target Account", "Ideal Customer Profile Tier"]
CONTACT_COLUMNS = ["Record ID", "Email", "First Name", "Last Name", "Job Title", "Company Name", "Company ID",
                   "Lead Status (canonical)", "Persona", "Became a Marketing Qualified Lead Date", "Create Date"]
DEAL_COLUMNS = ["Record ID", "Company ID", "Create Date", "Closed At", "Is Closed", "Is Won", "Amount",
                "Opportunity Type"]
TOUCH_COLUMNS = ["Id", "OccurredAt", "Channel", "TouchType", "PersonId", "CampaignId", "SourceObject"]
#: columns the adapter derives per table (every other column of a frame is a column of the
#: export file its rows come from, under its own header, see abmkit.adapters.passthrough)
DERIVED = {"accounts": ACCOUNT_COLUMNS, "contacts": CONTACT_COLUMNS, "opportunities": DEAL_COLUMNS,
           "touchpoints": TOUCH_COLUMNS}
SOURCES = {
    ("accounts", "account_id"): "companies: Record ID",
    ("accounts", "account_name"): "companies: Company name",
    ("accounts", "domain"): "companies: Company Domain Name, else Website URL -> registrable domain",
    ("accounts", "parent_account_id"): "companies: Parent Company (ID)",
    ("accounts", "industry"): "companies: Industry",
    ("accounts", "employee_count"): "companies: Number of Employees",
    ("accounts", "annual_revenue"): "companies: Annual Revenue",
    ("accounts", "region"): "companies: Country/Region",
    ("accounts", "created_at"): "companies: Create Date",
    ("accounts", "is_target"): "companies: Target Account",
    ("accounts", "tier"): "companies: Ideal Customer Profile Tier",
    ("contacts", "contact_id"): "contacts: Record ID",
    ("contacts", "email"): "contacts: Email",
    ("contacts", "first_name"): "contacts: First Name",
    ("contacts", "last_name"): "contacts: Last Name",
    ("contacts", "title"): "contacts: Job Title",
    ("contacts", "company_name"): "contacts: Company Name",
    ("contacts", "crm_account_id"): "contacts: Associated Company IDs (primary, else first)",
    ("contacts", "lead_status"): "contacts: Lifecycle Stage via hubspot_lifecycle_stage.yaml",
    ("contacts", "persona"): "contacts: Buying Role via hubspot_buying_role.yaml",
    ("contacts", "mql_at"): "contacts: Became a Marketing Qualified Lead Date",
    ("contacts", "created_at"): "contacts: Create Date",
    ("opportunities", "opportunity_id"): "deals: Record ID",
    ("opportunities", "account_id"): "deals: Associated Company IDs (primary, else first)",
    ("opportunities", "created_at"): "deals: Create Date",
    ("opportunities", "closed_at"): "deals: Close Date once the stage is closed",
    ("opportunities", "is_closed"): "deals: Deal Stage via hubspot_deal_stage.yaml",
    ("opportunities", "is_won"): "deals: Deal Stage via hubspot_deal_stage.yaml",
    ("opportunities", "amount"): "deals: Amount",
    ("opportunities", "opportunity_type"): "deals: Deal Type via hubspot_deal_type.yaml",
    ("touchpoints", "touchpoint_id"): "email events: Event ID (else file:row); page views: file:row",
    ("touchpoints", "occurred_at"): "email events / page views: Timestamp",
    ("touchpoints", "channel"): "email events: email; page views: Source through the channel map",
    ("touchpoints", "touch_type"): "email events: Event Type via hubspot_email_event_type.yaml; page views: visit",
    ("touchpoints", "contact_id"): "contact Record ID, else matched by email",
    ("touchpoints", "campaign_id"): "email events: Email Campaign ID / Email Name",
}
OBJECT_NOTES = {
    "companies": "no accounts: every account-level analysis is off",
    "contacts": "no people: mapping, persona coverage and every touch are off",
    "deals": "no conversions: attribution, pipeline/win-rate KPIs, customer stage are off",
    "email_events": "no email touches (export a marketing email's recipients/events to add them)",
    "page_views": "no web-visit touches",
}
_PERSONA_RANK = {"decision_maker": 0, "influencer": 1, "user": 2, "other": 3}


def _pick(df: pd.DataFrame, key: str) -> pd.Series:
    """Per row, the first non-empty value among the field's accepted spellings
    (e.g. Company Domain Name, else Website URL); None when none has a value."""
    headers = {str(c).casefold(): c for c in df.columns}  # header case differs between exports
    present = [blank_to_none(df[headers[name.casefold()]]) for name in ALIASES[key] if name.casefold() in headers]
    if not present:
        return pd.Series([None] * len(df), index=df.index, dtype=object)
    return coalesce(*present)


def _field(df: pd.DataFrame, name: str) -> pd.Series:
    """One field by its display name, matched case-insensitively (None everywhere when absent)."""
    if name in df.columns:
        return blank_to_none(df[name])
    headers = {str(c).casefold(): c for c in df.columns}
    if name.casefold() in headers:
        return blank_to_none(df[headers[name.casefold()]])
    return pd.Series([None] * len(df), index=df.index, dtype=object)


def _email_key(values: pd.Series) -> pd.Series:
    """Emails compared case-insensitively (HubSpot lower-cases them; other tools may not)."""
    return blank_to_none(values).str.lower()


def primary_id(values: pd.Series) -> pd.Series:
    """First id of a ``;``-separated association list (HubSpot lists the primary first)."""
    s = blank_to_none(pd.Series(values, copy=False))
    first = s.str.split(";").str[0].str.strip()
    return first.where(first.notna() & (first != ""), None).astype(object)


def _company_of(df: pd.DataFrame) -> pd.Series:
    return coalesce(primary_id(_pick(df, "primary_company")), primary_id(_pick(df, "company_ids")))


def _persona(roles: pd.Series, table: Mapping) -> tuple[pd.Series, pd.Series]:
    """Buying Role (multi-select, ``;``-separated) → the most senior persona listed.

    Returns (persona, unknown mask over the exploded labels aligned to ``roles``)."""
    parts = roles.str.split(";").explode()
    parts = blank_to_none(parts)
    mapped, unknown = map_labels(parts, table)
    rank = mapped.map(_PERSONA_RANK)
    best = rank.groupby(level=0).min().reindex(roles.index)
    inverse = {v: k for k, v in _PERSONA_RANK.items()}
    return best.map(inverse).astype(object).where(best.notna(), None), (parts, unknown)


def _read(raw_dir, column_map: Mapping) -> dict:
    raw_dir = _source_or_dir(raw_dir)
    if isinstance(raw_dir, Path) and not raw_dir.is_dir():
        raise FileNotFoundError(f"HubSpot export folder {raw_dir} does not exist.")
    tables = {k: load_picklist(column_map, k, v) for k, v in PICKLIST_FILES.items()}
    objs: dict[str, ExportFile] = {}
    taken: set[str] = set()
    for obj, names in OBJECTS.items():
        path = find_file(raw_dir, names)
        if path is not None and path.name not in taken:
            taken.add(path.name)
            objs[obj] = read_export(path, OBJECT_TABLE[obj])
    if not objs:
        raise FileNotFoundError(f"{raw_dir}: no HubSpot export found (looked for files whose name contains "
                                "'companies', 'contacts' or 'deals'). Export them with 'Export all records'.")
    unknown, frames, unmapped = [], {}, []
    rejects = [ef.malformed for ef in objs.values()]
    # headers the column map names per table: `<object>.<column>` ones are passed through on demand
    wanted = {t: [h for h in ((b or {}).get("columns") or {}).values() if h]
              for t, b in (column_map.get("tables") or {}).items()}

    if "companies" in objs:
        co = objs["companies"]
        d = co.data
        out = pd.DataFrame({
            "Record ID": _pick(d, "id").values, "Company name": _pick(d, "company_name").values,
            "Domain": _pick(d, "domain").values, "Parent Company ID": _pick(d, "parent").values,
            "Industry": _field(d, "Industry").values, "Number of Employees": _field(d, "Number of Employees").values,
            "Annual Revenue": _field(d, "Annual Revenue").values, "Country/Region": _field(d, "Country/Region").values,
            "Create Date": _field(d, "Create Date").values, "Target Account": _field(d, "Target Account").values,
            "Ideal Customer Profile Tier": _field(d, "Ideal Customer Profile Tier").values,
        }, columns=ACCOUNT_COLUMNS)
        out = pass_through(out, d, "companies", wanted.get("accounts", ()))
        frames["accounts"] = [raw_frame(co.name, out.fillna("").astype(object), co.rows, like=co)]

    contact_ids, email_to_contact = set(), pd.Series(dtype=object)
    if "contacts" in objs:
        ct = objs["contacts"]
        d = ct.data
        stage = _field(d, "Lifecycle Stage")
        status, st_unknown = map_labels(stage, tables["lifecycle_stage"])
        unknown.append(unknown_counts("contacts", "Lifecycle Stage", stage, st_unknown, "lead_status left empty"))
        persona, (parts, p_unknown) = _persona(_field(d, "Buying Role"), tables["buying_role"])
        unknown.append(unknown_counts("contacts", "Buying Role", parts, p_unknown, "label ignored for persona"))
        unmapped.append(picklist_rows("contacts", "lead_status", stage, st_unknown, "blanked",
                                      source="contacts.Lifecycle Stage", picklist=tables["lifecycle_stage"],
                                      column_map=column_map))
        unmapped.append(picklist_rows("contacts", "persona", parts, p_unknown, "ignored",
                                      source="contacts.Buying Role", picklist=tables["buying_role"],
                                      column_map=column_map))
        ids = _pick(d, "id")
        out = pd.DataFrame({
            "Record ID": ids.values, "Email": _field(d, "Email").values, "First Name": _field(d, "First Name").values,
            "Last Name": _field(d, "Last Name").values, "Job Title": _field(d, "Job Title").values,
            "Company Name": _field(d, "Company Name").values, "Company ID": _company_of(d).values,
            "Lead Status (canonical)": status.values, "Persona": persona.values,
            "Became a Marketing Qualified Lead Date": _field(d, "Became a Marketing Qualified Lead Date").values,
            "Create Date": _field(d, "Create Date").values,
        }, columns=CONTACT_COLUMNS)
        out = pass_through(out, d, "contacts", wanted.get("contacts", ()))
        frames["contacts"] = [raw_frame(ct.name, out.fillna("").astype(object), ct.rows, like=ct)]
        contact_ids = set(ids.dropna())
        emails = _email_key(_field(d, "Email"))
        email_to_contact = pd.Series(ids.values, index=emails.values)
        email_to_contact = email_to_contact[email_to_contact.index.notna() & ~email_to_contact.index.duplicated()]

    if "deals" in objs:
        dl = objs["deals"]
        d = dl.data
        stage = _field(d, "Deal Stage")
        outcome, s_unknown = map_labels(stage, tables["deal_stage"])
        unknown.append(unknown_counts("deals", "Deal Stage", stage, s_unknown,
                                      "is_closed/is_won from 'Is Deal Closed?'/'Is Closed Won' when exported, "
                                      "else empty"))
        is_closed = outcome.map({"open": "false", "won": "true", "lost": "true"})
        is_won = outcome.map({"open": "false", "won": "true", "lost": "false"})
        is_closed = coalesce(is_closed, _field(d, "Is Deal Closed?"))
        is_won = coalesce(is_won, _field(d, "Is Closed Won"))
        dtype_label = _field(d, "Deal Type")
        otype, t_unknown = map_labels(dtype_label, tables["deal_type"])
        unknown.append(unknown_counts("deals", "Deal Type", dtype_label, t_unknown, "opportunity_type left empty"))
        for blank, outcome in ((True, "blanked"), (False, "kept: from 'Is Deal Closed?' / 'Is Closed Won'")):
            unmapped.append(picklist_rows("opportunities", "is_closed", stage, s_unknown & (is_closed.isna() == blank),
                                          outcome, source="deals.Deal Stage", picklist=tables["deal_stage"],
                                          canonical="deal_outcome", column_map=column_map))
        unmapped.append(picklist_rows("opportunities", "opportunity_type", dtype_label, t_unknown, "blanked",
                                      source="deals.Deal Type", picklist=tables["deal_type"],
                                      column_map=column_map))
        closed = truthy(is_closed.fillna(""))
        out = pd.DataFrame({
            "Record ID": _pick(d, "id").values, "Company ID": _company_of(d).values,
            "Create Date": _field(d, "Create Date").values,
            # Close Date of an open deal is the expected close: a forecast, not a close
            "Closed At": _field(d, "Close Date").where(closed, None).values,
            "Is Closed": is_closed.values, "Is Won": is_won.values, "Amount": _pick(d, "amount").values,
            "Opportunity Type": otype.values,
        }, columns=DEAL_COLUMNS)
        out = pass_through(out, d, "deals", wanted.get("opportunities", ()))
        frames["opportunities"] = [raw_frame(dl.name, out.fillna("").astype(object), dl.rows, like=dl)]

    touches = []
    for obj in ("email_events", "page_views"):
        if obj not in objs:
            continue
        f, r = _touches(obj, objs[obj], contact_ids, email_to_contact, tables, unknown,
                        wanted=wanted.get("touchpoints", ()), column_map=column_map, unmapped=unmapped)
        touches.append(f)
        rejects.append(r)
    if touches:
        frames["touchpoints"] = touches

    files = pd.DataFrame([{"object": o, "file": objs[o].name if o in objs else None,
                           "rows": len(objs[o].data) + len(objs[o].malformed) if o in objs else 0,
                           "table": OBJECT_TABLE[o]} for o in OBJECTS])
    parts = [u for u in unknown if len(u)]
    unknown_df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["object", "field", "value", "rows", "action"])
    absent = [(o, f, objs[o].name) for o in objs for f in EXPECTED_FIELDS.get(o, ())
              if f.casefold() not in {str(c).casefold() for c in objs[o].data.columns}]
    # every header the column map names exists on every frame (or the error lists the files' own columns)
    complete_frames(frames, objs, column_map, preset=PRESET, object_table=OBJECT_TABLE, derived=DERIVED)
    parts = [u for u in unmapped if len(u)]
    return {"frames": frames, "rejects": concat_ledgers(rejects), "unknown": unknown_df, "files": files,
            "absent": absent, "unmapped": pd.concat(parts, ignore_index=True) if parts else None}


def _touches(obj, ef: ExportFile, contact_ids, email_to_contact, tables, unknown, *, wanted=(), column_map=None,
             unmapped=None):
    d, rows = ef.data, ef.rows
    n = len(d)
    ref = _pick(d, "contact_ref")
    by_email = _email_key(_pick(d, "email")).map(email_to_contact)
    person = coalesce(ref.where(ref.isin(contact_ids), None), by_email)
    if obj == "email_events":
        etype = _pick(d, "event_type")
        touch, unk = map_labels(etype, tables["email_event_type"])
        not_touch = etype.notna() & ~unk & touch.isna()
        unknown.append(unknown_counts("email_events", "Event Type", etype, unk, "row rejected (unmapped_touch_type)"))
        channel = pd.Series("email", index=d.index, dtype=object)
        occurred = _pick(d, "event_time")
        campaign = _pick(d, "email_campaign")
        event_id = _pick(d, "event_id")
    else:
        touch = pd.Series("visit", index=d.index, dtype=object)
        unk = pd.Series(False, index=d.index)
        not_touch = pd.Series(False, index=d.index)
        channel = _pick(d, "page_source")  # raw label: mapped by the column map's channel_map / shipped defaults
        occurred = _pick(d, "page_time")
        campaign = pd.Series([None] * n, index=d.index, dtype=object)
        event_id = pd.Series([None] * n, index=d.index, dtype=object)
    # exports of events carry no id of their own: file name + row number is stable for a file
    tid = coalesce(event_id, pd.Series(np.char.add(f"{ef.name}:", rows.astype(str)).astype(object), index=d.index))

    reason, fail = first_reason(d.index)

    who = coalesce(ref, _pick(d, "email")).fillna("(empty)")
    etype_raw = _pick(d, "event_type").fillna("")
    fail(person.isna(), lambda m: f"unknown_person: {obj} row names contact " + who[m] +
         " not found in the contacts export")
    event_file = table_file(tables["email_event_type"], PICKLIST_FILES["email_event_type"])
    fail(not_touch, lambda m: "not_a_touch: Event Type " + etype_raw[m].map(repr) +
         f" is mapped to null in {event_file}")
    fail(unk, lambda m: "unmapped_touch_type: Event Type " + etype_raw[m].map(repr) +
         f" is not in {event_file}")
    fail(channel.isna(), f"no_channel: {obj} row has no traffic source column/value (Source)")
    fail(occurred.isna(), f"missing_timestamp: {obj} row has no timestamp")
    bad = reason.notna()
    if unmapped is not None and obj == "email_events":  # counted exactly as rejected
        code = reason.fillna("").str.split(":").str[0]
        unmapped.append(picklist_rows("touchpoints", "touch_type", etype, code == "unmapped_touch_type",
                                      "rejected: unmapped_touch_type", source="email_events.Event Type",
                                      picklist=tables["email_event_type"], canonical="touch_type",
                                      column_map=column_map))
    frame = pd.DataFrame({"Id": tid.values, "OccurredAt": occurred.values, "Channel": channel.values,
                          "TouchType": touch.values, "PersonId": person.values, "CampaignId": campaign.values,
                          "SourceObject": obj}, columns=TOUCH_COLUMNS)
    frame = pass_through(frame, d, obj, wanted)[~bad.values]
    rej = ledger(ef.name, d[bad.values], rows[bad.values], "touchpoints", reason[bad].values)
    return raw_frame(ef.name, frame.fillna("").astype(object), rows[~bad.values], like=ef), rej


def read_frames(raw_dir, column_map: Mapping) -> tuple[dict[str, list], pd.DataFrame]:
    """Raw frames of a HubSpot export folder and the rows the adapter rejects.

    Same contract as :func:`abmkit.adapters.salesforce.read_frames`.

    Example
    -------
    >>> frames, rejects = read_frames("tests/data/hubspot_export", {})   # doctest: +SKIP
    >>> sorted(frames)                                                   # doctest: +SKIP
    ['accounts', 'contacts', 'opportunities', 'touchpoints']
    """
    got = _read(raw_dir, column_map or {})
    warn_unknown(got["unknown"], PRESET)
    # the labels the picklist tables did not know travel with the ledger into CleanResult.unmapped
    return got["frames"], attach(got["rejects"], got["unmapped"])


def describe(raw_dir, column_map: Mapping) -> pd.DataFrame:
    """Pre-flight report rows for ``validate`` (see :func:`abmkit.adapters.salesforce.describe`)."""
    return describe_read(_read(raw_dir, column_map or {}), column_map or {}, SOURCES, OPTIONAL_OBJECTS, OBJECT_NOTES)
