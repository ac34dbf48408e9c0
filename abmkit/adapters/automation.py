"""Shared engine of the marketing-automation presets (Marketo, Account Engagement / Pardot).

A marketing-automation platform (MAP) export is **people** (leads / prospects), their
**activities** (one row per email open, form fill, page visit, webinar attendance, ...)
and, optionally, the **programs / campaigns** the activities belong to. Accounts and
opportunities live in the CRM the MAP syncs with, so when the same folder (or database
schema) also holds Salesforce objects (``Account.csv``, ``Opportunity.csv``, ...) they are
read by the Salesforce adapter and joined by the CRM ids the MAP stores on each person.

The vendor modules (:mod:`abmkit.adapters.marketo`, :mod:`abmkit.adapters.pardot`) describe
their files and fields in an :class:`AutomationSpec`; this engine does the rest:

- **fields** are found by name without case, spaces and underscores (``First Name``,
  ``firstName`` and ``first_name`` are one field); each canonical field has a list of
  aliases (the API name, the UI export's header);
- **activity types** go through the editable activity-type table (``picklists:
  {activity_type: ...}``): ``type -> {touch_type, channel}``, matched by the type's id
  or name. ``touch_type: null`` marks a row that is not a buyer's touch (sends,
  deliveries, bounces, data changes); it goes to the ledger as ``not_a_touch``. A type
  the table does not list is reported (``validate``, ``result.unmapped``), never guessed;
- **channel** of a touch: the type's channel when it names one; ``campaign`` takes the
  program's / campaign's channel (through the program-channel table and the shipped
  channel map); ``utm`` takes ``utm_medium`` / ``utm_source`` of the activity (through
  the channel map) and falls back to the campaign's. A touch left without a channel goes
  to the ledger (``unmapped_channel``) with the type that lacked it;
- **people** become contacts whose ``crm_account_id`` is the CRM account id the MAP
  synced, so the lead-to-account mapping works as for a CRM export.

Example
-------
>>> key_of(pd.Series(["First Name", "firstName", "first_name"])).tolist()
['firstname', 'firstname', 'firstname']
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from . import (ExportFile, blank_to_none, concat_ledgers, empty_ledger, find_file, ledger, load_picklist,
               map_labels, raw_frame, read_export, unknown_counts)
from .common import _source_or_dir, coalesce
from ..clean.labels import picklist_rows

#: columns of the frames the presets map (see abmkit/presets/marketo.yaml, pardot.yaml)
CONTACT_COLUMNS = ["Id", "Email", "FirstName", "LastName", "Title", "Company", "CrmAccountId", "LeadStatus",
                   "CreatedAt"]
TOUCH_COLUMNS = ["Id", "OccurredAt", "Channel", "TouchType", "PersonId", "CampaignId", "ActivityType"]
CAMPAIGN_COLUMNS = ["Id", "Name", "Channel", "StartDate", "EndDate", "Cost"]


def key_of(values: pd.Series) -> pd.Series:
    """Field names compared without case, spaces, underscores and dashes."""
    return values.astype(str).str.replace(r"[\s_\-]", "", regex=True).str.casefold()


@dataclass
class AutomationSpec:
    """What a vendor module tells the engine.

    ``files`` object -> file names/globs tried; ``fields`` object -> canonical field ->
    aliases; ``picklists`` name -> default table file; ``preset`` the preset's name."""
    preset: str
    vendor: str
    files: dict
    fields: dict
    picklists: dict
    optional: frozenset = field(default_factory=frozenset)


def _field(ef: ExportFile, aliases) -> pd.Series:
    """The first alias present (compared with :func:`key_of`), as stripped strings or None."""
    keys = dict(zip(key_of(pd.Series(list(ef.data.columns), dtype=object)), ef.data.columns))
    for a in aliases:
        col = keys.get(key_of(pd.Series([a])).iloc[0])
        if col is not None:
            return blank_to_none(ef.data[col])
    return pd.Series([None] * len(ef.data), index=ef.data.index, dtype=object)


def _attribute(attributes: pd.Series, name: str) -> pd.Series:
    """One attribute of Marketo's ``attributes`` JSON text, vectorised (no JSON parse per row):
    ``{"Query Parameters":"utm_medium=cpc","New Status":"Attended"}`` -> its value or None."""
    pattern = r'"' + name.replace(" ", r"\s*") + r'"\s*:\s*"((?:[^"\\]|\\.)*)"'
    return attributes.fillna("").astype(str).str.extract(pattern, expand=False).where(lambda s: s.notna(), None)


def _utm(query: pd.Series, name: str) -> pd.Series:
    return query.fillna("").astype(str).str.extract(rf"(?:^|[?&]){name}=([^&#]*)", expand=False)


def read_objects(raw_dir, spec: AutomationSpec) -> dict[str, ExportFile]:
    """The vendor's export files found in ``raw_dir`` (a folder or any source)."""
    found = {}
    for obj, names in spec.files.items():
        hit = find_file(raw_dir, names)
        if hit is not None:
            found[obj] = read_export(hit, {"people": "contacts", "activities": "touchpoints",
                                           "campaigns": "campaigns"}.get(obj, obj))
    return found


def _type_rows(table: Mapping) -> tuple[dict, dict]:
    """The activity-type table as two dicts ``label -> touch_type`` and ``label -> channel``;
    a label is a type id or a type name."""
    touch, channel = {}, {}
    for label, value in (table or {}).items():
        if value is None:
            touch[str(label)], channel[str(label)] = None, None
        elif isinstance(value, Mapping):
            touch[str(label)], channel[str(label)] = value.get("touch_type"), value.get("channel")
        else:
            touch[str(label)], channel[str(label)] = str(value), None
    return touch, channel


def read(raw_dir, column_map: Mapping, spec: AutomationSpec, *, activity_rules) -> dict:
    """Frames, rejects and reports of a MAP export (the vendor's ``read_frames`` / ``describe``).

    ``activity_rules(ef, fields)`` returns the vendor-specific columns of the activities:
    ``type_id``, ``type_name``, ``campaign_id``, ``utm_medium``, ``utm_source``, ``status``."""
    raw_dir = _source_or_dir(raw_dir)
    if isinstance(raw_dir, Path) and not raw_dir.is_dir():
        raise FileNotFoundError(f"{spec.vendor} export folder {raw_dir} does not exist.")
    tables = {k: load_picklist(column_map, k, v) for k, v in spec.picklists.items()}
    from ..clean.colmap import shipped_label_defaults
    # UTM labels (cpc, linkedin / paid, newsletter, ...) through the shipped channel map and the map's own
    tables["channel_labels"] = {**shipped_label_defaults().get("channel_map", {}), **(column_map.get("channel_map") or {})}
    objs = read_objects(raw_dir, spec)
    if "people" not in objs and "activities" not in objs:
        looked = ", ".join(spec.files["people"][:1] + spec.files["activities"][:1])
        raise FileNotFoundError(f"{raw_dir}: no {spec.vendor} export found (looked for {looked}, ...). Export "
                                f"the people and their activities (docs/bring_your_own_export.md).")
    F = spec.fields
    frames, rejects, unknown, unmapped = {}, [ef.malformed for ef in objs.values()], [], []

    # campaigns / programs: their channel through the program-channel table, then the channel map
    camp_channel = pd.Series(dtype=object)
    if "campaigns" in objs:
        c = objs["campaigns"]
        cid = _field(c, F["campaigns"]["id"])
        label = _field(c, F["campaigns"]["channel"])
        ch, ch_unknown = map_labels(label, tables["program_channel"])
        unknown.append(unknown_counts(spec.files["campaigns"][0], "channel", label, ch_unknown,
                                      "campaign channel left empty (its touches use their type's channel)"))
        unmapped.append(picklist_rows("campaigns", "channel", label, ch_unknown, "blanked",
                                      source=f"{spec.vendor} campaign channel", picklist=tables["program_channel"],
                                      canonical="channel", column_map=column_map))
        camp_channel = pd.Series(ch.values, index=cid.values)
        camp_channel = camp_channel[~camp_channel.index.duplicated()]
        frames["campaigns"] = [raw_frame(c.name, pd.DataFrame({
            "Id": cid.values, "Name": _field(c, F["campaigns"]["name"]).values, "Channel": ch.values,
            "StartDate": _field(c, F["campaigns"]["start"]).values, "EndDate": _field(c, F["campaigns"]["end"]).values,
            "Cost": _field(c, F["campaigns"]["cost"]).values}, columns=CAMPAIGN_COLUMNS).fillna("").astype(object),
            c.rows, like=c)]

    if "people" in objs:
        from .salesforce import normalize_ids
        p = objs["people"]
        g = lambda k: _field(p, F["people"][k]).values  # noqa: E731
        # the synced Salesforce account id: 15 or 18 characters, one account (as the CRM objects are read)
        crm_account = normalize_ids(_field(p, F["people"]["crm_account_id"])).values
        frames["contacts"] = [raw_frame(p.name, pd.DataFrame({
            "Id": g("id"), "Email": g("email"), "FirstName": g("first_name"), "LastName": g("last_name"),
            "Title": g("title"), "Company": g("company"), "CrmAccountId": crm_account,
            "LeadStatus": g("lead_status"), "CreatedAt": g("created_at")}, columns=CONTACT_COLUMNS)
            .fillna("").astype(object), p.rows, like=p)]

    if "activities" in objs:
        a = objs["activities"]
        cols = activity_rules(a, F["activities"])
        touch_t, channel_t = _type_rows(tables["activity_type"])
        by_id = {k: v for k, v in touch_t.items()}
        # the type's id first, then its name (a table may list either)
        tt_id, unk_id = map_labels(cols["type_id"], by_id)
        tt_name, unk_name = map_labels(cols["type_name"], by_id)
        known_id = cols["type_id"].notna() & ~unk_id
        known_name = cols["type_name"].notna() & ~unk_name
        touch = tt_id.where(known_id, tt_name.where(known_name, None))
        ch_rule_id, _ = map_labels(cols["type_id"], channel_t)
        ch_rule_name, _ = map_labels(cols["type_name"], channel_t)
        rule = ch_rule_id.where(known_id, ch_rule_name.where(known_name, None))
        known = known_id | known_name
        type_label = cols.get("label")
        if type_label is None:
            type_label = cols["type_name"].where(cols["type_name"].notna(), cols["type_id"])
        unknown.append(unknown_counts(spec.files["activities"][0], "activity type", type_label, ~known,
                                      "rows rejected (not in the activity-type table)"))
        unmapped.append(picklist_rows("touchpoints", "touch_type", type_label, ~known & type_label.notna(),
                                      "rejected", source=f"{spec.vendor} activity type",
                                      picklist=tables["activity_type"], canonical="touch_type",
                                      column_map=column_map))
        # status-based types (Marketo's program status): the status decides the touch type
        if "status" in cols and "program_status" in tables:
            st, st_unknown = map_labels(cols["status"], tables["program_status"])
            by_status = touch.eq("from_status").fillna(False)
            touch = touch.where(~by_status, st)
            type_label = type_label.where(~by_status, type_label.astype(str) + " -> status " +
                                          cols["status"].fillna("(none)").astype(str))
            unmapped.append(picklist_rows("touchpoints", "touch_type", cols["status"], by_status & st_unknown,
                                          "rejected", source=f"{spec.vendor} program status",
                                          picklist=tables["program_status"], canonical="touch_type",
                                          column_map=column_map))
        campaign = cols["campaign_id"]
        from_campaign = pd.Series(camp_channel.reindex(campaign.fillna("").values).values, index=campaign.index)
        from_campaign = from_campaign.where(from_campaign.notna(), None)
        utm_label = coalesce(cols["utm_medium"].where(cols["utm_source"].isna(),
                                                      cols["utm_source"] + " / " + cols["utm_medium"].fillna("")),
                             cols["utm_medium"])
        utm_channel, _ = map_labels(utm_label, tables["channel_labels"])
        utm_channel = coalesce(utm_channel, map_labels(cols["utm_medium"], tables["channel_labels"])[0])
        rule = rule.fillna("")
        channel = pd.Series(np.where(rule.isin(["campaign", "utm", ""]), None, rule), index=rule.index, dtype=object)
        channel = channel.where(~rule.eq("campaign"), from_campaign)
        channel = channel.where(~rule.eq("utm"), coalesce(utm_channel, from_campaign))
        reason = pd.Series(None, index=touch.index, dtype=object)
        reason[~known] = "unknown_activity_type: " + type_label[~known].fillna("(empty)").astype(str) + \
            " is not in the activity-type table"
        nat = known & touch.isna()
        reason[nat & reason.isna()] = "not_a_touch: " + type_label[nat & reason.isna()].fillna("").astype(str) + \
            " is not a buyer's touch in the activity-type table"
        no_ch = reason.isna() & channel.isna()
        reason[no_ch] = "unmapped_channel: " + type_label[no_ch].fillna("").astype(str) + \
            " has no channel (no campaign channel, no known UTM medium/source)"
        person = _field(a, F["activities"]["person_id"])
        no_person = reason.isna() & person.isna()
        reason[no_person] = "no_person: the activity names no lead/prospect id"
        bad = reason.notna()
        frame = pd.DataFrame({
            "Id": _field(a, F["activities"]["id"]).values, "OccurredAt": _field(a, F["activities"]["occurred_at"]).values,
            "Channel": channel.values, "TouchType": touch.values, "PersonId": person.values,
            "CampaignId": campaign.values, "ActivityType": type_label.values}, columns=TOUCH_COLUMNS)
        frames["touchpoints"] = [raw_frame(a.name, frame[~bad.values].fillna("").astype(object), a.rows[~bad.values],
                                           like=a)]
        rejects.append(ledger(a.name, a.original[bad.values], a.rows[bad.values], "touchpoints",
                              reason[bad].values))

    parts = [u for u in unknown if len(u)]
    unknown_df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["object", "field", "value", "rows", "action"])
    files = pd.DataFrame([{"object": o, "file": objs[o].name if o in objs else None,
                           "rows": len(objs[o].data) + len(objs[o].malformed) if o in objs else 0,
                           "table": {"people": "contacts", "activities": "touchpoints", "campaigns": "campaigns"}[o]}
                          for o in spec.files])
    parts = [u for u in unmapped if len(u)]
    return {"frames": frames, "rejects": concat_ledgers(rejects) if rejects else empty_ledger(),
            "unknown": unknown_df, "files": files, "absent": [],
            "unmapped": pd.concat(parts, ignore_index=True) if parts else None}


def with_crm(raw_dir, column_map: Mapping, got: dict) -> dict:
    """Add the accounts and opportunities of Salesforce objects in the same source (the CRM
    the MAP syncs with), read by the Salesforce adapter; the MAP's own people and activities
    stay the contacts and touches (the CRM's campaign members would count touches twice)."""
    from . import salesforce
    raw_dir = _source_or_dir(raw_dir)
    crm = {o: n for o, n in salesforce.OBJECTS.items() if o in ("Account", "Opportunity")}
    if not any(find_file(raw_dir, names) is not None for names in crm.values()):
        return got
    sf_map = {**column_map, "picklists": column_map.get("crm_picklists") or {}}
    sf = salesforce._read_from(salesforce._read_objects(raw_dir, only=set(crm)), sf_map)
    for table in ("accounts", "opportunities"):
        if table in sf["frames"]:
            got["frames"][table] = sf["frames"][table]
    got["rejects"] = concat_ledgers([got["rejects"], sf["rejects"]])
    got["files"] = pd.concat([got["files"], sf["files"][sf["files"]["object"].isin(list(crm))]], ignore_index=True)
    if sf["unmapped"] is not None:
        got["unmapped"] = sf["unmapped"] if got["unmapped"] is None else pd.concat(
            [got["unmapped"], sf["unmapped"]], ignore_index=True)
    if len(sf["unknown"]):
        got["unknown"] = pd.concat([got["unknown"], sf["unknown"]], ignore_index=True)
    return got
