"""Account Engagement (Pardot) preset: prospects and visitor activities → raw frames.

Files (in a folder or as tables of a database; names compared without case):

- ``Prospects.csv`` (``prospect*.csv``): ``id``, ``email``, ``first_name``, ``last_name``,
  ``job_title``, ``company``, ``crm_account_fid`` (the synced Salesforce account),
  ``created_at`` (UI export headers such as "Prospect Id", "First Name" are matched too);
- ``VisitorActivities.csv`` (``visitor_activit*.csv``, ``activit*.csv``): ``id``,
  ``prospect_id``, ``type`` (number), ``type_name``, ``campaign_id``, ``email_id``,
  ``created_at``;
- ``Campaigns.csv`` (optional): ``id``, ``name``, ``cost`` and a ``channel`` column if you keep
  one (mapped through ``pardot_campaign_channel.yaml``);
- Salesforce ``Account.csv`` / ``Opportunity.csv`` (optional): accounts and opportunities.

Activity types go through ``pardot_activity_type.yaml`` (the documented type numbers:
1 Click, 2 View, 4 Success (form), 6 Sent, 11 Open, 20 Visit, 24 Attended Webinar, 25
Registered for Webinar, 26 Social Post Click, 27 Video View, 29 Event Checked In, ...). A
click with an ``email_id`` is an email click. Account Engagement reports times in the API
user's time zone without an offset: set ``timezone:`` in a copy of the preset.

Example
-------
>>> SPEC.fields["activities"]["type_id"][0]
'type'
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from . import warn_unknown
from .automation import AutomationSpec, _field, read, with_crm
from .common import describe_read
from ..clean.labels import attach

PRESET = "pardot"
SPEC = AutomationSpec(
    preset=PRESET, vendor="Account Engagement (Pardot)",
    files={"people": ("Prospects.csv", "prospect*.csv", "prospect"),
           "activities": ("VisitorActivities.csv", "visitor_activit*.csv", "activit*.csv", "visitor_activity"),
           # not campaign*.csv: a Salesforce Campaign.csv in the same folder is the CRM's object
           "campaigns": ("Campaigns.csv", "pardot_campaign*.csv")},
    fields={
        "people": {"id": ("id", "Prospect Id", "Prospect ID"), "email": ("email",),
                   "first_name": ("first_name",), "last_name": ("last_name",), "title": ("job_title", "title"),
                   "company": ("company",), "crm_account_id": ("crm_account_fid", "CRM Account FID", "Account Id"),
                   "lead_status": ("lead_status", "status"), "created_at": ("created_at", "Created Date")},
        "activities": {"id": ("id", "Visitor Activity Id"), "person_id": ("prospect_id", "Prospect Id"),
                       "occurred_at": ("created_at", "Created Date"), "type_id": ("type", "Type"),
                       "type_name": ("type_name", "Type Name"), "campaign_id": ("campaign_id", "Campaign Id"),
                       "email_id": ("email_id", "list_email_id", "Email Id")},
        "campaigns": {"id": ("id", "Campaign Id"), "name": ("name",), "channel": ("channel", "type", "Channel"),
                      "start": ("created_at",), "end": ("end_date",), "cost": ("cost",)},
    },
    picklists={"activity_type": "pardot_activity_type.yaml", "program_channel": "pardot_campaign_channel.yaml"},
    optional=frozenset({"campaigns"}),
)
SOURCES = {
    ("contacts", "contact_id"): "Prospects.id",
    ("contacts", "email"): "Prospects.email",
    ("contacts", "crm_account_id"): "Prospects.crm_account_fid (18-char)",
    ("touchpoints", "occurred_at"): "VisitorActivities.created_at (API user's time zone)",
    ("touchpoints", "touch_type"): "VisitorActivities.type via pardot_activity_type.yaml",
    ("touchpoints", "channel"): "activity type's channel, else Campaigns.channel",
    ("touchpoints", "contact_id"): "VisitorActivities.prospect_id",
    ("campaigns", "channel"): "Campaigns.channel via pardot_campaign_channel.yaml",
}
OPTIONAL_OBJECTS = frozenset({"campaigns"})
OBJECT_NOTES = {"campaigns": "touches take their type's channel only",
                "people": "no contacts: touches cannot reach an account",
                "activities": "no touches: attribution, engagement and progression are n/a"}


def _activity_columns(ef, fields) -> dict:
    type_id = _field(ef, fields["type_id"])
    email = _field(ef, fields["email_id"])
    # type 1 (Click) on an email is an email click: give it its own key in the table ("1 email")
    type_id = type_id.where(~(type_id.eq("1") & email.notna()), "1 email")
    none = pd.Series([None] * len(ef.data), index=ef.data.index, dtype=object)
    # type_name is the asset type (Email, Form, Visit), not the action: shown, never mapped
    name = _field(ef, fields["type_name"])
    label = type_id.fillna("(empty)").astype(str) + np.where(name.notna(), " (" + name.fillna("") + ")", "")
    return {"type_id": type_id, "type_name": none, "label": pd.Series(label, index=type_id.index, dtype=object),
            "campaign_id": _field(ef, fields["campaign_id"]), "utm_medium": none, "utm_source": none}


def _read(raw_dir, column_map: Mapping) -> dict:
    return with_crm(raw_dir, column_map, read(raw_dir, column_map, SPEC, activity_rules=_activity_columns))


def read_frames(raw_dir, column_map: Mapping) -> tuple[dict[str, list], pd.DataFrame]:
    """Raw frames of an Account Engagement export and the rows the adapter rejects."""
    got = _read(raw_dir, column_map or {})
    warn_unknown(got["unknown"], PRESET)
    return got["frames"], attach(got["rejects"], got["unmapped"])


def describe(raw_dir, column_map: Mapping) -> pd.DataFrame:
    """Pre-flight report rows for ``validate``."""
    return describe_read(_read(raw_dir, column_map or {}), column_map or {}, SOURCES, OPTIONAL_OBJECTS, OBJECT_NOTES)
