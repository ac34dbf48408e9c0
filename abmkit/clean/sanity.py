"""Data sanity checks on a cleaned dataset: data that parses but cannot be true.

Cleaning (:mod:`abmkit.clean.core`) rejects values that cannot be read. The checks here
look at the cleaned canonical :class:`~abmkit.schema.Dataset` for values that read fine
but make analyses wrong, and say which numbers they affect and what to do:

* ``load_stamp``: one identical instant holds >= 50 % of >= 20 values of a date column
  (critical for ``touchpoints.occurred_at`` and ``opportunities.created_at``), or >= 10 %
  of >= 1,000 values;
* ``closed_before_created``: an opportunity's ``closed_at`` more than a day before its
  ``created_at`` (critical when >= 50 % of those with a close date);
* ``touches_after_conversion``: >= 50 % of >= 10 opportunities whose account has touches
  have none dated at or before the opportunity's creation (critical at 90 %);
* ``period_outside_data``: no touch (critical) / no opportunity (warning) in the period;
  ``period_partly_outside_data``: the data starts or ends > 7 days inside the period;
* ``placeholder_domain``: reserved example domains (example.com/.net/.org, ``*.example``,
  ``*.test``, ``*.invalid``, ``*.localhost``; RFC 2606 / 6761);
* ``id_in_name``: a company or account name that is a CRM id (15/18 letters and digits
  with >= 2 digits, >= 6 digits only, or an account id of the export);
* ``placeholder_name``: a company or account name from ``presets/placeholder_names.txt``
  ("test", "unknown", "n/a", "asdf", ...);
* ``rejected_share``: >= 5 % of a table's rows rejected by cleaning (critical at 25 %).

The thresholds are the module constants below (docs/troubleshooting.md §7).

Every check is pure and vectorised pandas. Examples are ids, domains, instants and
counts: never an e-mail address or a personal name.

Example
-------
>>> import pandas as pd
>>> from abmkit.schema import Dataset
>>> ds = Dataset.from_frames(
...     accounts=pd.DataFrame({"account_id": ["a1"], "account_name": ["Acme"]}),
...     opportunities=pd.DataFrame({"opportunity_id": ["o1", "o2"], "account_id": ["a1", "a1"],
...                                 "created_at": ["2026-03-01", "2026-03-01"],
...                                 "closed_at": ["2026-01-01", "2026-04-01"]}))
>>> r = sanity_checks(ds)
>>> r.warnings[["check", "count"]].values.tolist()
[['closed_before_created', 1]]
>>> r.for_analysis("velocity")["check"].tolist()
['closed_before_created']
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd

from .. import schema
from ..period import format_period
from ..results import Result

__all__ = ["sanity_checks", "SanityReport", "SANITY_COLUMNS", "ANALYSES", "closed_before_created",
           "reserved_domain_mask", "id_like_mask", "placeholder_name_mask", "placeholder_names"]

# ----------------------------------------------------------------------------- thresholds
#: a date column is load-stamped when one instant holds this share of its values ...
LOAD_STAMP_SHARE = 0.5
#: ... and the column has at least this many values
LOAD_STAMP_MIN_ROWS = 20
#: a partial load stamp (one object of several bulk-loaded): this share of at least ...
LOAD_STAMP_PARTIAL_SHARE = 0.10
#: ... this many values on one instant
LOAD_STAMP_PARTIAL_MIN_ROWS = 1000
#: date columns checked for load stamps. Campaign start/end dates and revenue period
#: starts are schedules and snapshot dates: many rows share one by design.
LOAD_STAMP_COLUMNS: tuple[tuple[str, str], ...] = (
    ("touchpoints", "occurred_at"), ("opportunities", "created_at"), ("opportunities", "closed_at"),
    ("accounts", "created_at"), ("contacts", "created_at"), ("contacts", "mql_at"),
)
#: a load stamp on these columns empties journeys: critical
LOAD_STAMP_CRITICAL = frozenset({("touchpoints", "occurred_at"), ("opportunities", "created_at")})
#: a close date may precede the creation instant by up to this much (a date-only close
#: date is midnight of the day the opportunity was created, in the export's time zone)
CLOSE_TOLERANCE = pd.Timedelta(days=1)
#: closed-before-created is critical from this share of the opportunities with a close date
CLOSED_BEFORE_CREATED_CRITICAL_SHARE = 0.5
#: touches-after-conversion: at least this many opportunities with touches at their account ...
TOUCHES_AFTER_MIN_OPPORTUNITIES = 10
#: ... of which this share (warning) / this share (critical) have no touch up to their creation
TOUCHES_AFTER_WARNING_SHARE = 0.5
TOUCHES_AFTER_CRITICAL_SHARE = 0.9
#: without a period, opportunities created more than this long before the first touch of the
#: data are left out (the touch export simply starts later; that is not a data error)
TOUCH_DATA_SLACK = pd.Timedelta(days=30)
#: the data may start / end this many days inside the period before it counts as partial
PERIOD_EDGE_DAYS = 7
#: share of a table's rows rejected by cleaning: warning / critical
REJECTED_SHARE_WARNING = 0.05
REJECTED_SHARE_CRITICAL = 0.25
#: examples listed per check
N_EXAMPLES = 5

SANITY_COLUMNS = ["check", "severity", "table", "column", "count", "share", "examples", "message",
                  "what_to_do", "affects"]
SEVERITIES = ("critical", "warning", "ok")

#: analyses a check can invalidate (:meth:`SanityReport.for_analysis`), with the words used in messages
ANALYSES: dict[str, str] = {
    "journeys": "conversion journeys (03)",
    "attribution": "attribution credit (03, 05)",
    "velocity": "pipeline and deal velocity (05)",
    "pipeline": "pipeline and influenced pipeline (05)",
    "win_rate": "win rate and MQA-to-win rate (05)",
    "mapping": "lead-to-account mapping (02)",
    "engagement": "engagement scores and MQAs (02)",
    "progression": "stage progression and its velocity (04)",
    "uplift": "campaign uplift (04)",
    "funnel": "the account and contact funnels (04, 05)",
    "kpis": "the KPI tiles (05)",
}
#: what reads each checked date column
COLUMN_AFFECTS: dict[tuple[str, str], tuple[str, ...]] = {
    ("touchpoints", "occurred_at"): ("journeys", "attribution", "engagement", "progression", "uplift",
                                     "pipeline", "velocity", "funnel", "kpis"),
    ("opportunities", "created_at"): ("journeys", "attribution", "velocity", "pipeline", "progression",
                                      "funnel", "kpis"),
    ("opportunities", "closed_at"): ("velocity", "win_rate", "journeys", "attribution", "progression", "kpis"),
    ("accounts", "created_at"): ("progression",),
    ("contacts", "created_at"): (),
    ("contacts", "mql_at"): ("funnel",),
}
#: what is built on each table (rejected rows undercount these)
TABLE_AFFECTS: dict[str, tuple[str, ...]] = {
    "touchpoints": COLUMN_AFFECTS[("touchpoints", "occurred_at")],
    "opportunities": ("journeys", "attribution", "velocity", "pipeline", "win_rate", "progression", "funnel",
                      "kpis"),
    "accounts": ("mapping", "journeys", "attribution", "engagement", "progression", "kpis"),
    "contacts": ("mapping", "engagement", "funnel", "kpis"),
    "campaigns": ("uplift", "kpis"),
    "revenue": ("kpis",),
}

_RESERVED_DOMAIN = re.compile(
    r"^(?:(?:[^.]+\.)*example\.(?:com|net|org)"          # RFC 2606 second-level names
    r"|(?:[^.]+\.)*(?:example|test|invalid|localhost)"   # RFC 2606 / 6761 top-level names
    r")\.?$", re.I)
_SF_ID = re.compile(r"^[0-9A-Za-z]{15}(?:[0-9A-Za-z]{3})?$")
_DIGITS_ONLY = re.compile(r"^\d{6,}$")


# ----------------------------------------------------------------------------- value tests
@lru_cache(maxsize=1)
def placeholder_names() -> frozenset[str]:
    """The shipped placeholder company / account names (``presets/placeholder_names.txt``), lower case."""
    text = resources.files("abmkit.presets").joinpath("placeholder_names.txt").read_text("utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines()
                     if line.strip() and not line.startswith("# ") and line.strip() != "#")


def _text(values) -> pd.Series:
    s = pd.Series(values, copy=False).astype(object)
    return s.where(s.map(lambda v: isinstance(v, str)), None)


def reserved_domain_mask(values) -> pd.Series:
    """True where a domain is reserved for examples and tests (RFC 2606 / 6761):
    ``example.com``/``.net``/``.org`` and their subdomains, ``*.example``, ``*.test``,
    ``*.invalid``, ``*.localhost`` and ``localhost``.

    >>> reserved_domain_mask(pd.Series(["example.com", "mail.example.org", "acme.test", "acme.com", None])).tolist()
    [True, True, True, False, False]
    """
    s = _text(values)
    return s.str.strip().str.match(_RESERVED_DOMAIN, na=False).astype(bool)


def id_like_mask(values, ids=None) -> pd.Series:
    """True where a name field holds an id: a CRM record id (15 or 18 letters and digits
    with at least two digits, as Salesforce ids), a number of six digits or more (HubSpot
    ids), or one of ``ids`` (e.g. the account ids of the export).

    >>> id_like_mask(pd.Series(["0015g00000AbCdEAAZ", "Acme GmbH", "12345678", "3M", "a7"]), ids=["a7"]).tolist()
    [True, False, True, False, True]
    """
    s = _text(values).str.strip()
    sf = s.str.match(_SF_ID, na=False).astype(bool) & (s.str.count(r"\d").astype(float).fillna(0) >= 2)
    out = sf | s.str.match(_DIGITS_ONLY, na=False).astype(bool)
    if ids is not None:
        known = pd.Series(ids, dtype=object).dropna().astype(str)
        out |= s.isin(set(known)).astype(bool)
    return out.astype(bool)


def placeholder_name_mask(values) -> pd.Series:
    """True where a company or account name is a placeholder ("test", "Unknown", "n/a", ...;
    the shipped list :func:`placeholder_names`, ignoring case and spaces).

    >>> placeholder_name_mask(pd.Series(["Test", " unknown ", "N/A", "Acme", None])).tolist()
    [True, True, True, False, False]
    """
    s = _text(values).str.strip().str.lower().str.replace(r"\s+", " ", regex=True)
    return s.isin(placeholder_names()).astype(bool)


def closed_before_created(opportunities: pd.DataFrame) -> pd.Series:
    """True where an opportunity's ``closed_at`` is more than :data:`CLOSE_TOLERANCE`
    (one day) before its ``created_at`` (the same rule for this check and for the
    velocity KPIs, which leave these opportunities out)."""
    o = opportunities
    if "closed_at" not in o or "created_at" not in o:
        return pd.Series(False, index=o.index)
    return ((o["closed_at"] < o["created_at"] - CLOSE_TOLERANCE)).fillna(False).astype(bool)


# ----------------------------------------------------------------------------- helpers
def _row(check, severity, table, column, count=0, share=np.nan, examples="", message="", what_to_do="",
         affects=()) -> dict:
    return {"check": check, "severity": severity, "table": table, "column": column, "count": int(count),
            "share": float(share), "examples": examples, "message": message, "what_to_do": what_to_do,
            "affects": ", ".join(affects)}


def _instant(ts) -> str:
    ts = pd.Timestamp(ts)
    return f"{ts:%Y-%m-%d %H:%M:%S} UTC"


def _day(ts) -> str:
    return str(pd.Timestamp(ts).date())


def _uses(affects) -> str:
    return "; ".join(ANALYSES[a] for a in affects)


def _counted(values: pd.Series, unit: str) -> str:
    """``example.com (144 contacts); test.example (3 contacts)`` for the commonest values."""
    vc = values.value_counts().head(N_EXAMPLES)
    return "; ".join(f"{v} ({n:,} {unit[:-1] if n == 1 and unit.endswith('s') else unit})" for v, n in vc.items())


# ----------------------------------------------------------------------------- checks
def _load_stamps(ds: schema.Dataset) -> list[dict]:
    rows = []
    for table, column in LOAD_STAMP_COLUMNS:
        df = getattr(ds, table)
        if column not in df or not len(df):
            continue
        s = df[column]
        if (table, column) == ("opportunities", "closed_at") and "is_closed" in df:
            # an open opportunity's close date is a forecast; only real closes are checked
            s = s[df["is_closed"].fillna(True).astype(bool)]
        s = s.dropna()
        n = len(s)
        if not n:
            continue
        vc = s.value_counts()
        top, count = vc.index[0], int(vc.iloc[0])
        share = count / n
        affects = COLUMN_AFFECTS[(table, column)]
        full = n >= LOAD_STAMP_MIN_ROWS and share >= LOAD_STAMP_SHARE
        partial = n >= LOAD_STAMP_PARTIAL_MIN_ROWS and share >= LOAD_STAMP_PARTIAL_SHARE
        if not (full or partial):
            rows.append(_row("load_stamp", "ok", table, column, count, share, "",
                             f"{table}.{column}: at most {count:,} of {n:,} values on one instant", "", affects))
            continue
        severity = "critical" if full and (table, column) in LOAD_STAMP_CRITICAL else "warning"
        examples = [f"{_instant(t)} ({c:,} rows)" for t, c in vc.head(3).items() if c > 1]
        if table == "touchpoints" and "channel" in df:
            on_top = df.loc[df[column] == top, "channel"].astype(object).fillna("(none)")
            examples.append("channels on that instant: " + ", ".join(
                f"{ch} {c:,}" for ch, c in on_top.value_counts().head(N_EXAMPLES).items()))
        uses = (f"{_uses(affects)} read this column, so their dates (and what falls in a period) are wrong."
                if affects else "No analysis reads this column, but other dates of the same export may "
                "be load stamps too.")
        uses = uses[0].upper() + uses[1:]
        message = (f"{table}.{column}: {count:,} of {n:,} values ({share:.0%}) are the same instant, "
                   f"{_instant(top)} — a data-load or migration stamp, not when the records happened. {uses}")
        if (table, column) in LOAD_STAMP_CRITICAL:
            message += (" Journeys need touches dated before the opportunity they explain; with stamped "
                        "dates they come out empty and attribution credits nothing.")
        what = ("Export and map the field that holds the real date (for example an 'original created date' "
                "custom field, or the response / activity date instead of the record's CreatedDate), or "
                "leave the bulk-loaded records out. Check the other date columns of the same export.")
        rows.append(_row("load_stamp", severity, table, column, count, share, "; ".join(examples), message,
                         what, affects))
    return rows


def _closed_before_created(ds: schema.Dataset) -> list[dict]:
    o = ds.opportunities
    if not len(o) or "closed_at" not in o:
        return []
    has_close = o["closed_at"].notna() & o["created_at"].notna()
    n = int(has_close.sum())
    affects = ("velocity", "win_rate", "journeys", "attribution", "progression", "kpis")
    if not n:
        return []
    bad = closed_before_created(o)
    count = int(bad.sum())
    share = count / n
    if not count:
        return [_row("closed_before_created", "ok", "opportunities", "closed_at", 0, 0.0, "",
                     f"every one of {n:,} closes is on or after its creation", "", affects)]
    days = ((o["closed_at"] - o["created_at"]) / pd.Timedelta(days=1))[bad]
    worst = days.sort_values(kind="stable").head(N_EXAMPLES)
    examples = "; ".join(f"{o.at[i, 'opportunity_id']} ({d:,.0f} days)" for i, d in worst.items())
    severity = "critical" if share >= CLOSED_BEFORE_CREATED_CRITICAL_SHARE else "warning"
    message = (f"{count:,} of {n:,} opportunities with a close date ({share:.0%}) closed before they were "
               f"created (up to {abs(days.min()):,.0f} days before). Pipeline and deal velocity leave them "
               "out and say how many; win rates, closed-won dates in journeys and the customer stage in "
               "progression still use these close dates as given.")
    what = ("Check both dates in the CRM. A CreatedDate that is a migration or load stamp (see load_stamp) "
            "is the usual cause: map the real creation date if the export has one; otherwise fix the close "
            "dates at source.")
    return [_row("closed_before_created", severity, "opportunities", "closed_at", count, share, examples,
                 message, what, affects)]


def _touch_accounts(ds: schema.Dataset) -> pd.DataFrame:
    """Touches with the account they belong to before mapping: the touch's own account,
    else its contact's CRM account (notebook 02 maps more contacts by domain and name)."""
    tp = ds.touchpoints
    acc = tp["account_id"].astype(object)
    if "crm_account_id" in ds.contacts and len(ds.contacts):
        by_contact = ds.contacts.drop_duplicates("contact_id").set_index("contact_id")["crm_account_id"]
        acc = acc.where(acc.notna(), tp["contact_id"].map(by_contact))
    return pd.DataFrame({"account_id": acc, "occurred_at": tp["occurred_at"]}).dropna()


def _touches_after_conversion(ds: schema.Dataset, period) -> list[dict]:
    o, tp = ds.opportunities, ds.touchpoints
    affects = ("journeys", "attribution", "pipeline", "velocity", "kpis")
    if not len(o) or not len(tp):
        return []
    t = _touch_accounts(ds)
    if not len(t):
        return []
    first = t.groupby("account_id", sort=False)["occurred_at"].min()
    o = o[o["created_at"].notna()]
    if period is not None:
        o = o[period.contains(o["created_at"])]
        scope = f" created in {format_period(period, dates=False)}"
    else:
        o = o[o["created_at"] >= t["occurred_at"].min() - TOUCH_DATA_SLACK]
        scope = ""
    ft = o["account_id"].map(first)
    eligible = ft.notna()
    n = int(eligible.sum())
    if not n:
        return []
    bad = eligible & (ft > o["created_at"])
    count = int(bad.sum())
    share = count / n
    if n < TOUCHES_AFTER_MIN_OPPORTUNITIES or share < TOUCHES_AFTER_WARNING_SHARE:
        return [_row("touches_after_conversion", "ok", "touchpoints", "occurred_at", count, share, "",
                     f"{count:,} of {n:,} opportunities{scope} with touches have none before their creation",
                     "", affects)]
    severity = "critical" if share >= TOUCHES_AFTER_CRITICAL_SHARE else "warning"
    gap = ((ft - o["created_at"])[bad] / pd.Timedelta(days=1)).median()
    gap_text = f"{gap:,.1f} days" if gap >= 1 else f"{gap * 24:,.1f} hours"
    examples = "; ".join(o.loc[bad, "opportunity_id"].astype(str).head(N_EXAMPLES))
    message = (f"{count:,} of {n:,} opportunities{scope} ({share:.0%}) have touches at their account, but none "
               f"dated at or before the opportunity was created (the account's first touch comes a median "
               f"{gap_text} later). Their journeys are empty: attribution credits nothing for them, and "
               "influenced pipeline and deal velocity miss them.")
    what = ("Touch dates after the conversions usually mean load stamps (see load_stamp) or a touch date taken "
            "from the record's creation instead of the activity: map the response or activity date. If the "
            "touch export simply starts after these opportunities, report on a period the touch data covers.")
    return [_row("touches_after_conversion", severity, "touchpoints", "occurred_at", count, share, examples,
                 message, what, affects)]


def _period_range(ds: schema.Dataset, period) -> list[dict]:
    rows = []
    end_incl = period.end - pd.Timedelta(days=1)
    when = f"{period.label} ({_day(period.start)} to {_day(end_incl)})"
    edge = pd.Timedelta(days=PERIOD_EDGE_DAYS)
    specs = (("touchpoints", "occurred_at", "touch", "touches", "critical",
              COLUMN_AFFECTS[("touchpoints", "occurred_at")]),
             ("opportunities", "created_at", "opportunity created", "opportunities", "warning",
              ("journeys", "attribution", "pipeline", "funnel", "kpis")))
    for table, column, what, plural, severity, affects in specs:
        s = getattr(ds, table)[column].dropna()
        if not len(s):
            continue
        lo, hi = s.min(), s.max()
        inside = int(period.contains(s).sum())
        data_range = f"{_day(lo)} to {_day(hi)}"
        if not inside:
            rows.append(_row(
                "period_outside_data", severity, table, column, 0, 0.0, f"{table}: {data_range}",
                f"No {what} in {when}: {table}.{column} runs from {data_range}. Every number of the period "
                f"that depends on {plural} would be zero or empty — that says nothing about the period, only "
                "that the data does not cover it.",
                "Choose a period inside the data's range (--quarter, or --start/--end), or export the "
                "missing months.", affects))
            continue
        gaps = []
        if lo > period.start + edge:
            gaps.append(f"starts {(lo - period.start).days} days into the period ({_day(lo)})")
        if hi < period.end - edge:
            gaps.append(f"ends {(period.end - hi).days} days before the period ends ({_day(hi)})")
        if gaps:
            rows.append(_row(
                "period_partly_outside_data", "warning", table, column, inside, inside / len(s),
                f"{table}: {data_range}",
                f"{table}.{column} {' and '.join(gaps)}: counts for {when} cover only part of it and are "
                "not comparable with a full period.",
                "Choose a period the data covers completely, or export the missing days.", affects))
        else:
            rows.append(_row("period_outside_data", "ok", table, column, inside, inside / len(s),
                             f"{table}: {data_range}", f"{inside:,} {plural} in {period.label}", "", affects))
    return rows


def _placeholders(ds: schema.Dataset) -> list[dict]:
    rows = []
    reserved = ("reserved example domains (example.com/.net/.org, *.example, *.test, *.invalid, localhost; "
                "RFC 2606/6761)")
    c, a = ds.contacts, ds.accounts
    if len(c) and "email_domain" in c and c["email_domain"].notna().any():
        dom = c["email_domain"]
        bad = reserved_domain_mask(dom)
        n = int(dom.notna().sum())
        count = int(bad.sum())
        if count:
            rows.append(_row(
                "placeholder_domain", "warning", "contacts", "email_domain", count, count / n,
                _counted(dom[bad].str.lower(), "contacts"),
                f"{count:,} contacts ({count / n:.0%} of those with an e-mail domain) are at {reserved}: test or "
                "placeholder records. They cannot be mapped to an account by domain; the mapping report counts "
                "them apart and never suggests these domains as corporate domains to add.",
                "Leave test records out of the export (filter them in the CRM report) or delete them at source.",
                ("mapping", "engagement", "kpis")))
        else:
            rows.append(_row("placeholder_domain", "ok", "contacts", "email_domain", 0, 0.0, "",
                             "no contact at a reserved example domain", "", ("mapping",)))
    if len(a) and ("domain" in a or "extra_domains" in a):
        doms = a["domain"] if "domain" in a else pd.Series(None, index=a.index, dtype=object)
        bad = reserved_domain_mask(doms)
        if "extra_domains" in a and a["extra_domains"].notna().any():
            extra = _text(a["extra_domains"]).str.split(r"[;,\s]+").explode()
            extra = extra[extra.notna() & (extra != "")]
            bad_extra = reserved_domain_mask(extra)
            bad |= bad_extra.groupby(level=0).any().reindex(a.index, fill_value=False)
            shown = pd.concat([doms[reserved_domain_mask(doms)], extra[bad_extra]])
        else:
            shown = doms[bad]
        count = int(bad.sum())
        n = len(a)
        if count:
            rows.append(_row(
                "placeholder_domain", "warning", "accounts", "domain", count, count / n,
                _counted(shown.str.lower(), "accounts"),
                f"{count:,} accounts have a website at {reserved}. Domain mapping would send every contact "
                "with such an address to these accounts.",
                "Give these accounts their real website domain in the CRM, or remove test accounts.", ("mapping",)))
        else:
            rows.append(_row("placeholder_domain", "ok", "accounts", "domain", 0, 0.0, "",
                             "no account at a reserved example domain", "", ("mapping",)))
    account_ids = a["account_id"] if len(a) else None
    for table, column, unit in (("contacts", "company_name", "contacts"), ("accounts", "account_name", "accounts")):
        df = getattr(ds, table)
        if not len(df) or column not in df or not df[column].notna().any():
            continue
        values = df[column]
        n = int(values.notna().sum())
        ids = id_like_mask(values, account_ids)
        count = int(ids.sum())
        if count:
            if table == "contacts":
                message = (f"{count:,} contacts ({count / n:.0%} of those with a company name) hold a CRM id "
                           "in company_name (for example a lead's Company field holding an account id). Name "
                           "matching cannot use them; the mapping report counts them apart instead of listing "
                           "them as unmatched company names.")
                what = ("If the id is the account's, map that column to crm_account_id so these contacts map "
                        "exactly; otherwise fix the field at source.")
            else:
                message = (f"{count:,} accounts ({count / n:.0%}) are named by an id instead of a name: name "
                           "matching of contacts cannot find them, and tables show the id.")
                what = "Map the account's name field to account_name, or fix the names at source."
            rows.append(_row("id_in_name", "warning", table, column, count, count / n,
                             _counted(values[ids], unit), message, what, ("mapping",)))
        else:
            rows.append(_row("id_in_name", "ok", table, column, 0, 0.0, "", f"no id in {column}", "", ("mapping",)))
        ph = placeholder_name_mask(values) & ~ids
        count = int(ph.sum())
        if count:
            rows.append(_row(
                "placeholder_name", "warning", table, column, count, count / n,
                _counted(values[ph].str.strip(), unit),
                f"{count:,} {unit} ({count / n:.0%}) have a placeholder {column.replace('_', ' ')} (\"test\", "
                "\"unknown\", \"n/a\", ...): test records or a field nobody filled. "
                + ("They cannot be mapped by name; the mapping report counts them apart."
                   if table == "contacts" else "Contacts cannot be matched to them by name."),
                "Remove test records from the export; fill the real names at source "
                "(the list of placeholders is abmkit/presets/placeholder_names.txt).",
                ("mapping",) if table == "contacts" else ("mapping", "kpis")))
        else:
            rows.append(_row("placeholder_name", "ok", table, column, 0, 0.0, "",
                             f"no placeholder in {column}", "", ("mapping",)))
    return rows


def _rejected_share(rejects_summary: pd.DataFrame, rejects: pd.DataFrame | None) -> list[dict]:
    rows = []
    need = {"table", "rows_in", "rows_rejected"}
    if rejects_summary is None or not need <= set(rejects_summary.columns):
        return rows
    for _, r in rejects_summary.iterrows():
        table, n_in, n_rej = str(r["table"]), int(r["rows_in"]), int(r["rows_rejected"])
        if not n_in:
            continue
        share = n_rej / n_in
        affects = TABLE_AFFECTS.get(table, ("kpis",))
        if share < REJECTED_SHARE_WARNING:
            rows.append(_row("rejected_share", "ok", table, "", n_rej, share, "",
                             f"{n_rej:,} of {n_in:,} rows rejected ({share:.1%})", "", affects))
            continue
        reasons = ""
        if rejects is not None and len(rejects) and "reason_code" in rejects:
            rc = rejects.loc[rejects["table"] == table, "reason_code"].astype(str)
            reasons = _counted(rc, "rows")
        severity = "critical" if share >= REJECTED_SHARE_CRITICAL else "warning"
        mostly = f" (mostly {reasons.split(' (')[0]})" if reasons else ""
        rows.append(_row(
            "rejected_share", severity, table, "", n_rej, share, reasons,
            f"{n_rej:,} of {n_in:,} rows of {table} ({share:.1%}) were rejected by cleaning{mostly}. Every "
            f"number built on {table} undercounts by that much: {_uses(affects)}.",
            "Open rejects.csv: each reason has its own fix (docs/cleaning.md). Fix the export or the column map "
            "and clean again before reading the analyses.", affects))
    return rows


# ----------------------------------------------------------------------------- result
@dataclass
class SanityReport(Result):
    """The data sanity checks of one dataset (:func:`sanity_checks`).

    Attributes
    ----------
    checks : DataFrame
        One row per check and table/column: ``check, severity`` (critical / warning / ok),
        ``table, column, count`` (rows affected), ``share``, ``examples`` (ids, domains,
        instants, counts; never e-mails or names), ``message`` (what it does to which
        numbers), ``what_to_do`` and ``affects`` (comma-joined :data:`ANALYSES` keys).
    period : label of the period checked against (None: no period checks)
    """
    checks: pd.DataFrame
    period: str | None = None

    _summary_title = "Data sanity checks"

    @property
    def summary(self) -> pd.DataFrame:
        """Every check, critical first, then warnings, then the ones that passed."""
        return self.checks.copy()

    def to_frame(self) -> pd.DataFrame:
        """Same as :attr:`summary` (for ``sanity_checks.csv``)."""
        return self.checks.copy()

    @property
    def warnings(self) -> pd.DataFrame:
        """The checks that fired (critical and warning), critical first."""
        return self.checks[self.checks["severity"] != "ok"].reset_index(drop=True)

    @property
    def critical(self) -> pd.DataFrame:
        """The critical checks only."""
        return self.checks[self.checks["severity"] == "critical"].reset_index(drop=True)

    def for_analysis(self, name: str) -> pd.DataFrame:
        """The checks that fired and affect analysis ``name`` (a key of :data:`ANALYSES`:
        velocity, journeys, attribution, pipeline, win_rate, mapping, engagement,
        progression, uplift, funnel, kpis)."""
        if name not in ANALYSES:
            raise ValueError(f"unknown analysis {name!r}; choose from {sorted(ANALYSES)}")
        w = self.warnings
        hit = w["affects"].str.split(", ").map(lambda xs: name in xs)
        return w[hit.astype(bool)].reset_index(drop=True)

    def notice(self, name: str) -> str:
        """One paragraph for the page that shows analysis ``name``: the messages of the
        checks that affect it ("" when none)."""
        w = self.for_analysis(name)
        return " ".join(f"Data check ({r.check}): {r.message}" for r in w.itertuples())

    @property
    def headline(self) -> str:
        n, w, c = len(self.checks), len(self.warnings), len(self.critical)
        if not n:
            return "No data sanity check applies: the tables they read are empty."
        if not w:
            return f"All {n} data sanity checks passed."
        names = ", ".join(dict.fromkeys(self.warnings["check"]))
        return f"{w} of {n} data sanity checks need attention ({c} critical): {names}."

    def findings(self) -> dict:
        """Counts and messages for notebook 01's findings (JSON-safe)."""
        w = self.warnings
        return {"sanity_checks": int(len(self.checks)), "sanity_warning_count": int(len(w)),
                "sanity_critical_count": int(len(self.critical)),
                "sanity_warnings": [f"{r.severity}: {r.message}" for r in w.itertuples()]}

    def _summary_text(self, decimals: int = 3) -> str:
        lines = [self._title() + (f" (period {self.period})" if self.period else ""), self.headline]
        for r in self.warnings.itertuples():
            where = f"{r.table}.{r.column}" if r.column else r.table
            msg = r.message[len(where) + 2:] if r.message.startswith(where + ": ") else r.message
            lines.append(f"  [{r.severity}] {r.check} · {where}: {msg}")
            if r.examples:
                lines.append(f"      examples: {r.examples}")
            lines.append(f"      what to do: {r.what_to_do}")
        ok = self.checks[self.checks["severity"] == "ok"]
        if len(ok):
            lines.append("  passed: " + ", ".join(
                f"{r.check} ({r.table}{'.' + r.column if r.column else ''})" for r in ok.itertuples()))
        return "\n".join(lines)


def sanity_checks(dataset: schema.Dataset, period=None, rejects_summary: pd.DataFrame | None = None, *,
                  rejects: pd.DataFrame | None = None) -> SanityReport:
    """Run every data sanity check on a cleaned canonical dataset.

    Parameters
    ----------
    dataset : Dataset
        Canonical tables (:func:`abmkit.clean.clean_exports` ``.dataset`` or :func:`abmkit.load`).
    period : Period or str, optional
        The report period (a :class:`~abmkit.period.Period` or a quarter like ``"2026Q3"``):
        adds the period-range checks and restricts the touches-after-conversion check to
        opportunities created in it.
    rejects_summary : DataFrame, optional
        The cleaning summary (``CleanResult.quality``: ``table, rows_in, rows_rejected``):
        adds the rejected-share check.
    rejects : DataFrame, optional
        The rejects ledger (``CleanResult.rejects``): its reason codes become the examples
        of the rejected-share check.

    Returns
    -------
    SanityReport
    """
    if isinstance(period, str):
        from ..period import resolve_period
        period = resolve_period(quarter=period)
    rows = []
    rows += _load_stamps(dataset)
    rows += _closed_before_created(dataset)
    rows += _touches_after_conversion(dataset, period)
    if period is not None:
        rows += _period_range(dataset, period)
    rows += _placeholders(dataset)
    rows += _rejected_share(rejects_summary, rejects)
    checks = pd.DataFrame(rows, columns=SANITY_COLUMNS)
    checks["count"] = checks["count"].astype("int64")
    checks["share"] = checks["share"].astype("float64")
    order = checks["severity"].map({s: i for i, s in enumerate(SEVERITIES)})
    checks = checks.iloc[np.argsort(order.to_numpy(), kind="stable")].reset_index(drop=True)
    return SanityReport(checks=checks, period=period.label if period is not None else None)
