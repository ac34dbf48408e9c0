"""Raw CRM / marketing-automation export rendering of a canonical dataset, with
planted junk and the column map (docs/column_map.md) that reads it back.

What it looks like: vendor headers ("Account ID", "Email Address", "Activity
Date"), vendor channel and activity labels ("LinkedIn Ads", "Web Visit"),
accounts in cp1252, contacts in UTF-8 with BOM, touchpoint timestamps in mixed
formats and zones (ISO with ``Z`` / ``+01:00``, naive New York local time, US
``MM/DD/YYYY HH:MM``), opportunities semicolon-delimited with decimal commas
("1.234,50"). Junk rows are *added* to the files (the canonical tables never
contain them) and listed in the ``raw_junk`` ledger: ``file, source_row, kind``
with ``source_row`` the 1-based data-row number (header = row 0).

Example
-------
>>> _money_decimal_comma(np.array([1234.5, -12.0])).tolist()
['1.234,50', '-12,00']
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .names import make_ids

LOCAL_TZ = "America/New_York"
CHANNEL_LABELS = {
    "paid_search": ("Google CPC", "Bing Ads", "Paid Search"),
    "paid_social": ("LinkedIn Ads", "Facebook Ads", "Paid Social"),
    "display": ("Display", "Programmatic Display"), "organic_search": ("Organic Search", "SEO"),
    "direct": ("Direct", "Direct Traffic"), "referral": ("Referral",), "email": ("Email", "Marketing Email"),
    "webinar": ("Webinar", "ON24"), "event": ("Trade Show", "Field Event"),
    "content_syndication": ("Content Syndication",), "direct_mail": ("Direct Mail", "Sendoso"),
    "sales_outreach": ("Outbound", "SDR Outreach"), "partner": ("Partner",), "review_site": ("G2", "Review Site"),
    "intent": ("Bombora", "Intent Data"),
}
#: labels deliberately absent from the column map: cleaning must report them, not guess
UNKNOWN_CHANNEL_LABELS = ("Podcast Sponsorship", "Carrier Pigeon", "Misc Vendor 7")
TOUCH_TYPE_LABELS = {
    "impression": "Ad Impression", "click": "Ad Click", "visit": "Web Visit", "email_open": "Email Opened",
    "email_click": "Email Clicked", "form_fill": "Form Submitted", "content_download": "Content Download",
    "webinar_registered": "Webinar Registered", "webinar_attended": "Webinar Attended",
    "event_attended": "Event Attended", "meeting": "Meeting Held", "call": "Call Logged",
    "demo_request": "Demo Requested", "intent_signal": "Intent Surge",
}
PERSONA_LABELS = {"decision_maker": "Decision Maker", "influencer": "Influencer", "user": "End User", "other": "Other"}
LEAD_STATUS_LABELS = {"inquiry": "Inquiry", "mql": "MQL", "sql": "SQL", "disqualified": "Disqualified"}
OPPORTUNITY_TYPE_LABELS = {"new_business": "New Business", "upsell": "Upsell", "cross_sell": "Cross-Sell",
                           "renewal": "Renewal"}
MALFORMED_EMAILS = ("{first}.{last}(at){dom}", "{first}@@{dom}", "", "{first}.{last}@", "no email", "{first}@localhost")
FILES = {"accounts": "accounts.csv", "contacts": "contacts.csv", "touchpoints": "touchpoints.csv",
         "campaigns": "campaigns.csv", "opportunities": "opportunities.csv", "revenue": "revenue.csv"}
ENCODINGS = {"accounts.csv": "cp1252", "contacts.csv": "utf-8-sig", "touchpoints.csv": "utf-8",
             "campaigns.csv": "utf-8", "opportunities.csv": "utf-8", "revenue.csv": "utf-8"}
DELIMITERS = {"opportunities.csv": ";"}
HEADERS = {
    "accounts": {"account_id": "Account ID", "account_name": "Account Name", "domain": "Website",
                 "extra_domains": "Other Domains", "parent_account_id": "Parent Account ID", "industry": "Industry",
                 "employee_count": "Employees", "annual_revenue": "Annual Revenue", "region": "Billing Region",
                 "tier": "ABM Tier", "is_target": "Target Account", "icp_fit": "ICP Fit", "created_at": "Created Date"},
    "contacts": {"contact_id": "Contact ID", "email": "Email Address", "first_name": "First Name",
                 "last_name": "Last Name", "company_name": "Company", "title": "Job Title", "persona": "Persona",
                 "crm_account_id": "Account ID", "lead_status": "Lead Status", "mql_at": "MQL Date",
                 "created_at": "Created Date"},
    "touchpoints": {"touchpoint_id": "Activity ID", "occurred_at": "Activity Date", "channel": "Source Channel",
                    "touch_type": "Activity Type", "contact_id": "Contact ID", "account_id": "Account ID",
                    "campaign_id": "Campaign ID", "engagement_seconds": "Engagement Seconds"},
    "campaigns": {"campaign_id": "Campaign ID", "campaign_name": "Campaign Name", "channel": "Channel",
                  "start_date": "Start Date", "end_date": "End Date", "cost": "Budget (USD)"},
    "opportunities": {"opportunity_id": "Opportunity ID", "account_id": "Account ID", "created_at": "Created Date",
                      "closed_at": "Close Date", "is_closed": "Closed", "is_won": "Won", "amount": "Amount",
                      "opportunity_type": "Type"},
    "revenue": {"account_id": "Account ID", "period_start": "Quarter Start", "recurring_revenue": "Recurring Revenue",
                "active_users": "Active Users"},
}


def _s(values) -> pd.Series:
    """Strings with '' for missing values."""
    s = pd.Series(values, dtype=object)
    return s.where(s.notna(), "").astype(str).astype(object)


def _num(values, decimals: int | None = None) -> pd.Series:
    """Numbers as export text: whole numbers without decimals ("1200"), otherwise
    ``decimals`` places ("1234.50"); '' for missing."""
    v = np.asarray(pd.Series(values, dtype=float))
    missing = np.isnan(v)
    filled = np.where(missing, 0.0, v)
    if decimals is None and np.all(filled == np.round(filled)):
        txt = filled.astype(np.int64).astype(str).astype(object)
    else:
        txt = np.char.mod(f"%.{decimals if decimals is not None else 6}f", filled).astype(object)
    txt[missing] = ""
    return pd.Series(txt, dtype=object)


def _money_decimal_comma(values: np.ndarray) -> pd.Series:
    """1234.5 -> '1.234,50' (thousands dot, decimal comma)."""
    txt = pd.Series(values, dtype=float).map(lambda x: "" if np.isnan(x) else f"{x:,.2f}").astype(object)
    if not len(txt):
        return txt
    return txt.str.replace(",", "_").str.replace(".", ",").str.replace("_", ".").astype(object)


def _wall_clock(ts: pd.Series, tz: str = "UTC", unit: str = "s") -> np.ndarray:
    """ISO wall-clock strings ("2026-03-01T19:05:00") of ``ts`` in zone ``tz``, '' for NaT.
    (numpy's C formatter: pandas' strftime is ~50x slower on 300,000 rows.)"""
    naive = ts.dt.tz_convert(tz).dt.tz_localize(None).to_numpy().astype(f"datetime64[{unit}]")
    out = np.datetime_as_string(naive, unit=unit).astype(object)
    out[np.isnat(naive)] = ""
    return out


def _date(ts: pd.Series) -> pd.Series:
    return pd.Series(_wall_clock(ts, unit="D"), dtype=object)


def _iso_z(ts: pd.Series) -> pd.Series:
    txt = _wall_clock(ts)
    return pd.Series(np.where(txt == "", "", txt + "Z"), dtype=object)


def _mixed_timestamps(ts: pd.Series, rng) -> pd.Series:
    """Touch timestamps as a real export mixes them: 50% ISO UTC ``Z``, 15% ISO with
    ``+01:00``, 20% naive New York local, 15% US ``MM/DD/YYYY HH:MM`` New York local.
    Local renderings avoid 00:00-03:59 so no value falls in a DST gap or overlap."""
    u = rng.random(len(ts))
    out = _iso_z(ts).to_numpy()
    plus1 = _wall_clock(ts, "Etc/GMT-1") + "+01:00"   # POSIX sign: Etc/GMT-1 is UTC+01:00
    # character matrix of "YYYY-MM-DDTHH:MM:SS" (New York wall clock): re-arranged in C, not per row
    chars = np.asarray(_wall_clock(ts, LOCAL_TZ), dtype="<U19").view("<U1").reshape(-1, 19)
    safe = chars[:, 11:13].copy().view("<U2").ravel().astype(int) >= 4
    naive_chars = chars.copy()
    naive_chars[:, 10] = " "
    naive = naive_chars.view("<U19").ravel().astype(object)
    col = lambda text: np.full((len(chars), 1), text, dtype="<U1")
    us_chars = np.concatenate([chars[:, 5:7], col("/"), chars[:, 8:10], col("/"), chars[:, 0:4], col(" "),
                               chars[:, 11:16]], axis=1)
    us = np.ascontiguousarray(us_chars).view("<U16").ravel().astype(object)
    out = np.where((u >= 0.50) & (u < 0.65), plus1, out)
    out = np.where((u >= 0.65) & (u < 0.85) & safe, naive, out)
    out = np.where((u >= 0.85) & safe, us, out)
    return pd.Series(out, dtype=object)


def _label(values: pd.Series, labels: dict, rng, case_noise: float = 0.0) -> pd.Series:
    """Vendor label per row (one of the channel's labels at random; a few in other case)."""
    vals = values.astype(object).to_numpy()
    u = rng.random(len(vals))
    out = np.empty(len(vals), dtype=object)
    out[:] = ""
    for key, labs in labels.items():
        labs = (labs,) if isinstance(labs, str) else labs
        sel = vals == key
        out[sel] = np.asarray(labs, dtype=object)[np.floor(u[sel] * len(labs)).astype(int)]
    if case_noise:
        v = rng.random(len(vals))
        out = np.where(v < case_noise / 2, pd.Series(out).str.lower(), out)
        out = np.where((v >= case_noise / 2) & (v < case_noise), pd.Series(out).str.upper(), out)
    return pd.Series(out, dtype=object)


def _campaign_labels(campaigns: pd.DataFrame) -> pd.Series:
    """A campaign's channel label: the vendor label named in the campaign name
    ("Facebook Retargeting" -> "Facebook Ads"), else the channel's first label."""
    out = []
    for name, channel in zip(campaigns["campaign_name"], campaigns["channel"].astype(str)):  # ~30 rows
        labels = CHANNEL_LABELS[channel]
        out.append(next((lab for lab in labels if lab.split()[0].lower() in name.lower()), labels[0]))
    return pd.Series(out, dtype=object)


def _render_tables(ds, rng) -> dict[str, pd.DataFrame]:
    a = ds.accounts
    web_style = rng.integers(0, 4, len(a))
    dom = _s(a["domain"])
    website = np.select([web_style == 0, web_style == 1, web_style == 2],
                        ["https://www." + dom, "www." + dom, dom], "http://" + dom + "/")
    accounts = pd.DataFrame({
        "account_id": _s(a["account_id"]), "account_name": _s(a["account_name"]),
        "domain": np.where(dom == "", "", website), "extra_domains": _s(a["extra_domains"]),
        "parent_account_id": _s(a["parent_account_id"]), "industry": _s(a["industry"]),
        "employee_count": _num(a["employee_count"]), "annual_revenue": _num(a["annual_revenue"]),
        "region": _s(a["region"]), "tier": _s("Tier " + a["tier"].astype(str)),
        "is_target": _s(np.where(a["is_target"].to_numpy(dtype=bool), "Yes", "No")),
        "icp_fit": _num(a["icp_fit"]), "created_at": _date(a["created_at"]),
    })
    c = ds.contacts
    email = _s(c["email"])
    v = rng.random(len(c))
    parts = email.str.rsplit("@", n=1)
    upper_dom = (parts.str[0] + "@" + parts.str[1].str.upper()).fillna(email)
    email = pd.Series(np.where(v < 0.03, upper_dom, np.where(v > 0.98, " " + email + " ", email)), dtype=object)
    contacts = pd.DataFrame({
        "contact_id": _s(c["contact_id"]), "email": email, "first_name": _s(c["first_name"]),
        "last_name": _s(c["last_name"]), "company_name": _s(c["company_name"]), "title": _s(c["title"]),
        "persona": _s(c["persona"].map(PERSONA_LABELS)), "crm_account_id": _s(c["crm_account_id"]),
        "lead_status": _s(c["lead_status"].map(LEAD_STATUS_LABELS)), "mql_at": _iso_z(c["mql_at"]),
        "created_at": _iso_z(c["created_at"]),
    })
    t = ds.touchpoints
    touchpoints = pd.DataFrame({
        "touchpoint_id": _s(t["touchpoint_id"]), "occurred_at": _mixed_timestamps(t["occurred_at"], rng),
        "channel": _label(t["channel"], CHANNEL_LABELS, rng, case_noise=0.03),
        "touch_type": _label(t["touch_type"], TOUCH_TYPE_LABELS, rng),
        "contact_id": _s(t["contact_id"]), "account_id": _s(t["account_id"]), "campaign_id": _s(t["campaign_id"]),
        "engagement_seconds": _num(t["engagement_seconds"]),
    })
    m = ds.campaigns
    campaigns = pd.DataFrame({
        "campaign_id": _s(m["campaign_id"]), "campaign_name": _s(m["campaign_name"]),
        "channel": _campaign_labels(m), "start_date": _date(m["start_date"]),
        "end_date": _date(m["end_date"]), "cost": _num(m["cost"], 2),
    })
    o = ds.opportunities
    yes_no = {True: "Yes", False: "No"}
    opportunities = pd.DataFrame({
        "opportunity_id": _s(o["opportunity_id"]), "account_id": _s(o["account_id"]),
        "created_at": _date(o["created_at"]), "closed_at": _date(o["closed_at"]),
        "is_closed": _s(o["is_closed"].map(yes_no)), "is_won": _s(o["is_won"].map(yes_no)),
        "amount": _money_decimal_comma(o["amount"].to_numpy()),
        "opportunity_type": _s(o["opportunity_type"].map(OPPORTUNITY_TYPE_LABELS)),
    })
    r = ds.revenue
    revenue = pd.DataFrame({
        "account_id": _s(r["account_id"]), "period_start": _date(r["period_start"]),
        "recurring_revenue": _num(r["recurring_revenue"], 2), "active_users": _num(r["active_users"]),
    })
    return {"accounts": accounts, "contacts": contacts, "touchpoints": touchpoints, "campaigns": campaigns,
            "opportunities": opportunities, "revenue": revenue}


def _junk(tables: dict, rng) -> dict[str, list[tuple[pd.DataFrame, str]]]:
    """Extra rows per table: (rows, kind). Duplicates are exact copies of real rows."""
    junk: dict[str, list] = {name: [] for name in tables}

    def sample(name, frac, minimum=1, where=None):
        df = tables[name] if where is None else tables[name][where]
        k = min(max(int(round(frac * len(tables[name]))), minimum), len(df))
        return df.iloc[np.sort(rng.choice(len(df), size=k, replace=False))].copy() if k else df.iloc[:0].copy()

    for name, frac in (("accounts", 0.01), ("contacts", 0.005), ("touchpoints", 0.005), ("campaigns", 0.0),
                       ("opportunities", 0.01), ("revenue", 0.01)):
        junk[name].append((sample(name, frac), "duplicate"))

    bad = sample("contacts", 0.007)
    first = bad["first_name"].map(lambda s: s.lower()).to_numpy()
    last = bad["last_name"].map(lambda s: s.lower().replace(" ", "")).to_numpy()
    dom = bad["email"].str.rsplit("@", n=1).str[-1].str.strip().str.lower().to_numpy()
    pattern = rng.integers(0, len(MALFORMED_EMAILS), len(bad))
    bad["email"] = [MALFORMED_EMAILS[p].format(first=f, last=l, dom=d)
                    for p, f, l, d in zip(pattern, first, last, dom)]
    bad["contact_id"] = make_ids("C9", np.arange(len(bad)), 5)
    bad["crm_account_id"] = ""
    bad["lead_status"] = ""
    bad["mql_at"] = ""
    junk["contacts"].append((bad, "malformed_email"))

    t = tables["touchpoints"]
    unk = sample("touchpoints", 0.003)
    unk["channel"] = np.asarray(UNKNOWN_CHANNEL_LABELS, dtype=object)[rng.integers(0, 3, len(unk))]
    dates = sample("touchpoints", 0.002)
    dates["occurred_at"] = np.asarray(("not a date", "2026-13-45 25:61", "31/31/2026", "yesterday"),
                                      dtype=object)[rng.integers(0, 4, len(dates))]
    orphan = sample("touchpoints", 0.002, where=t["contact_id"] != "")
    orphan["contact_id"] = make_ids("C8", np.arange(len(orphan)), 5)
    orphan["account_id"] = ""
    first_id = 0
    for df, kind in ((unk, "unknown_channel"), (dates, "unparseable_date"), (orphan, "orphan_reference")):
        df["touchpoint_id"] = make_ids("T9", np.arange(first_id, first_id + len(df)), 6)
        first_id += len(df)
        junk["touchpoints"].append((df, kind))

    neg = sample("opportunities", 0.01)
    neg["amount"] = "-" + neg["amount"]
    orphan_o = sample("opportunities", 0.01)
    orphan_o["account_id"] = make_ids("A9", np.arange(len(orphan_o)), 4)
    bad_o = sample("opportunities", 0.005)
    bad_o["created_at"] = np.asarray(("2026-02-31", "TBD", "31.02.2026"), dtype=object)[rng.integers(0, 3, len(bad_o))]
    first_id = 0
    for df, kind in ((neg, "negative_amount"), (orphan_o, "orphan_reference"), (bad_o, "unparseable_date")):
        df["opportunity_id"] = make_ids("OPP9", np.arange(first_id, first_id + len(df)), 5)
        first_id += len(df)
        junk["opportunities"].append((df, kind))
    return junk


def _insert(table: pd.DataFrame, extras: list, rng) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Insert junk rows at random places; return the file table and its ledger.

    A duplicate's ledger row is the *later* of the two identical rows (the one a
    cleaner merges), whichever of them was inserted."""
    n = len(table)
    parts = [table.assign(_key=np.arange(n, dtype=float), _kind="", _orig=np.arange(n))]
    for df, kind in extras:
        if len(df):
            parts.append(df.assign(_key=rng.uniform(-0.5, n, len(df)), _kind=kind, _orig=df.index.to_numpy()))
    full = pd.concat(parts, ignore_index=True).sort_values("_key", kind="stable").reset_index(drop=True)
    full["source_row"] = np.arange(1, len(full) + 1)
    is_dup = full["_kind"] == "duplicate"
    ledger = full.loc[full["_kind"].isin(["", "duplicate"]) & ~is_dup, ["_orig", "source_row"]]
    first_pos = ledger.set_index("_orig")["source_row"]
    dup = full[is_dup]
    orig_pos = first_pos.reindex(dup["_orig"]).to_numpy()
    later = np.maximum(dup["source_row"].to_numpy(), orig_pos)
    rows = [pd.DataFrame({"source_row": later, "kind": "duplicate"})]
    other = full[~full["_kind"].isin(["", "duplicate"])]
    rows.append(pd.DataFrame({"source_row": other["source_row"].to_numpy(), "kind": other["_kind"].to_numpy()}))
    out = full.drop(columns=["_key", "_kind", "_orig", "source_row"])
    return out, pd.concat(rows, ignore_index=True)


def column_map() -> dict:
    """The column map (docs/column_map.md format) that reads the rendered export."""
    tables = {}
    for name, headers in HEADERS.items():
        file = FILES[name]
        block = {"file": file, "encoding": ENCODINGS[file], "delimiter": DELIMITERS.get(file, ","),
                 "columns": dict(headers)}
        if name == "touchpoints":
            block["timezone"] = LOCAL_TZ
        if name == "opportunities":
            block["decimal"] = ","
            block["values"] = {"is_closed": {"Yes": True, "No": False}, "is_won": {"Yes": True, "No": False}}
        if name == "accounts":
            block["values"] = {"tier": {"Tier 1": 1, "Tier 2": 2, "Tier 3": 3},
                               "is_target": {"Yes": True, "No": False}}
        tables[name] = block
    channel_map = {lab: ch for ch, labs in CHANNEL_LABELS.items() for lab in labs}
    return {
        "version": 1,
        "defaults": {"encoding": "auto", "delimiter": "auto", "timezone": "UTC", "dayfirst": False, "decimal": "."},
        "tables": tables,
        "channel_map": channel_map,
        "touch_type_map": {lab: tt for tt, lab in TOUCH_TYPE_LABELS.items()},
        "persona_map": {lab: p for p, lab in PERSONA_LABELS.items()},
        "lead_status_map": {lab: s for s, lab in LEAD_STATUS_LABELS.items()},
        "opportunity_type_map": {lab: t for t, lab in OPPORTUNITY_TYPE_LABELS.items()},
    }


def render_raw(ds, rng):
    """Render ``ds`` as raw export tables.

    Returns ``(raw, encodings, column_map, raw_junk)``: ``raw`` maps file name to a
    table of strings with the export's headers, ``raw_junk`` lists every planted junk
    row (``file, source_row, table, kind``)."""
    tables = _render_tables(ds, rng)
    junk = _junk(tables, rng)
    raw, ledgers = {}, []
    for name, table in tables.items():
        out, ledger = _insert(table, junk[name], rng)
        file = FILES[name]
        raw[file] = out.rename(columns=HEADERS[name])
        ledgers.append(ledger.assign(file=file, table=name))
    raw_junk = pd.concat(ledgers, ignore_index=True)[["file", "source_row", "table", "kind"]]
    raw_junk = raw_junk.sort_values(["file", "source_row"], ignore_index=True)
    encodings = {file: ENCODINGS[file] for file in raw}
    return raw, encodings, column_map(), raw_junk


def write_raw(raw: dict, encodings: dict, cmap: dict, raw_dir) -> Path:
    """Write the raw tables (their encodings and delimiters) and ``column_map.yaml``."""
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    for file, df in raw.items():
        df.to_csv(raw_dir / file, index=False, encoding=encodings[file], sep=DELIMITERS.get(file, ","),
                  lineterminator="\n")
    with open(raw_dir / "column_map.yaml", "w", encoding="utf-8") as fh:
        yaml.safe_dump(cmap, fh, sort_keys=False, allow_unicode=True)
    return raw_dir
