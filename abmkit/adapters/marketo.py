"""Marketo preset: a lead export and a bulk activity extract → raw frames.

Files (in a folder or as tables of a database; names compared without case):

- ``Leads.csv`` (``leads*.csv``, ``Person*.csv``): a lead list export or the bulk lead
  extract (``id``, ``email``, ``firstName``, ``lastName``, ``title``, ``company``,
  ``sfdcAccountId``, ``leadStatus``, ``createdAt``; the UI's "Email Address", "Company
  Name", "SFDC Account ID" headers are matched too);
- ``Activities.csv`` (``activit*.csv``): the bulk activity extract (``marketoGUID``,
  ``leadId``, ``activityDate``, ``activityTypeId``, ``campaignId``, ``primaryAttributeValue``,
  ``attributes`` as JSON text); an ``activityTypeName`` column, when added, is used too;
- ``Programs.csv`` (optional): programs with their ``channel`` (Webinar, Email Send,
  Tradeshow, ...), mapped through ``marketo_program_channel.yaml``;
- Salesforce ``Account.csv`` / ``Opportunity.csv`` (optional, the synced CRM): accounts and
  opportunities, read by the Salesforce adapter; leads carry ``sfdcAccountId``.

Activity types go through ``marketo_activity_type.yaml`` (standard type ids: 1 Visit Webpage,
2 Fill Out Form, 3 Click Link, 10 Open Email, 11 Click Email, 104 Change Status in Progression
...; sends, deliveries, bounces and data changes are not touches). Web activities take their
channel from the UTM parameters in ``attributes`` ("Query Parameters"), else from the program.
A program status change (104) becomes the touch its new status names (Registered →
webinar_registered, Attended → webinar_attended, ...) through ``marketo_program_status.yaml``.
``activityDate`` carries its UTC offset; naive times are read in the map's ``timezone``.
See :mod:`abmkit.adapters.automation` and docs/bring_your_own_export.md.

Example
-------
>>> sorted(SPEC.files)
['activities', 'campaigns', 'people']
"""
from __future__ import annotations

from typing import Mapping

import pandas as pd

from . import warn_unknown
from .automation import AutomationSpec, _attribute, _field, _utm, read, with_crm
from .common import coalesce, describe_read
from ..clean.labels import attach

PRESET = "marketo"
SPEC = AutomationSpec(
    preset=PRESET, vendor="Marketo",
    files={"people": ("Leads.csv", "leads*.csv", "Person*.csv", "lead"),
           "activities": ("Activities.csv", "activit*.csv", "activity"),
           "campaigns": ("Programs.csv", "program*.csv", "program")},
    fields={
        "people": {"id": ("id", "Id", "Lead ID", "Marketo ID"), "email": ("email", "Email Address"),
                   "first_name": ("firstName", "First Name"), "last_name": ("lastName", "Last Name"),
                   "title": ("title", "Job Title"), "company": ("company", "Company Name"),
                   "crm_account_id": ("sfdcAccountId", "SFDC Account ID", "SFDC Account Id"),
                   "lead_status": ("leadStatus", "Lead Status"), "created_at": ("createdAt", "Created At")},
        "activities": {"id": ("marketoGUID", "id", "Activity ID"), "person_id": ("leadId", "Lead ID"),
                       "occurred_at": ("activityDate", "Activity Date"),
                       "type_id": ("activityTypeId", "Activity Type ID"),
                       "type_name": ("activityTypeName", "Activity Type"),
                       "campaign_id": ("programId", "Program ID", "campaignId", "Campaign ID"),
                       "attributes": ("attributes", "Attributes")},
        "campaigns": {"id": ("id", "Program ID"), "name": ("name", "Program Name"), "channel": ("channel", "Channel"),
                      "start": ("startDate", "createdAt", "Created At"), "end": ("endDate",),
                      "cost": ("cost", "Period Cost", "Cost")},
    },
    picklists={"activity_type": "marketo_activity_type.yaml", "program_channel": "marketo_program_channel.yaml",
               "program_status": "marketo_program_status.yaml"},
    optional=frozenset({"campaigns"}),
)
SOURCES = {
    ("contacts", "contact_id"): "Leads.id",
    ("contacts", "email"): "Leads.email",
    ("contacts", "crm_account_id"): "Leads.sfdcAccountId (18-char)",
    ("touchpoints", "occurred_at"): "Activities.activityDate",
    ("touchpoints", "touch_type"): "Activities.activityTypeId via marketo_activity_type.yaml (104: marketo_program_status.yaml)",
    ("touchpoints", "channel"): "activity type's channel, else UTM of attributes, else Programs.channel",
    ("touchpoints", "contact_id"): "Activities.leadId",
    ("campaigns", "channel"): "Programs.channel via marketo_program_channel.yaml",
}
OPTIONAL_OBJECTS = frozenset({"campaigns"})
OBJECT_NOTES = {"campaigns": "touches take their type's or UTM channel only",
                "people": "no contacts: touches cannot reach an account",
                "activities": "no touches: attribution, engagement and progression are n/a"}


def _activity_columns(ef, fields) -> dict:
    attributes = _field(ef, fields["attributes"])
    query = _attribute(attributes, "Query Parameters")
    return {
        "type_id": _field(ef, fields["type_id"]), "type_name": _field(ef, fields["type_name"]),
        "campaign_id": _field(ef, fields["campaign_id"]),
        "utm_medium": _utm(query, "utm_medium").where(lambda s: s.notna() & s.ne(""), None),
        "utm_source": _utm(query, "utm_source").where(lambda s: s.notna() & s.ne(""), None),
        "status": coalesce(_attribute(attributes, "New Status"), _attribute(attributes, "Program Status")),
    }


def _read(raw_dir, column_map: Mapping) -> dict:
    return with_crm(raw_dir, column_map, read(raw_dir, column_map, SPEC, activity_rules=_activity_columns))


def read_frames(raw_dir, column_map: Mapping) -> tuple[dict[str, list], pd.DataFrame]:
    """Raw frames of a Marketo export and the rows the adapter rejects (same contract as
    :func:`abmkit.adapters.salesforce.read_frames`)."""
    got = _read(raw_dir, column_map or {})
    warn_unknown(got["unknown"], PRESET)
    return got["frames"], attach(got["rejects"], got["unmapped"])


def describe(raw_dir, column_map: Mapping) -> pd.DataFrame:
    """Pre-flight report rows for ``validate``."""
    return describe_read(_read(raw_dir, column_map or {}), column_map or {}, SOURCES, OPTIONAL_OBJECTS, OBJECT_NOTES)
