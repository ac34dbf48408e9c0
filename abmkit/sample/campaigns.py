"""Campaign catalogue of the sample and the planted effects (see docs/sample_data.md).

Studied campaigns are always on; each one is studied at exactly one transition
``s->s+1``: accounts entering ``s`` are exposed with probability
``sigmoid(exposure_logit + exposure_size_slope * size_z)`` within the exposure
window, and exposure multiplies the 90-day progression probability by
``risk_ratio`` and/or divides the time from the landmark to progression by
``1 / time_factor`` (``time_factor`` 0.6 = 40% faster). A campaign that *acts
before the landmark* (``acts_before_landmark``) multiplies the hazard of
progressing by ``1 / time_factor`` from its first touch on, also inside the
exposure window: it changes who is still in the stage at the landmark, the case
the landmark design cannot handle (docs/progression_and_uplift.md).

Example
-------
>>> [c["story"] for c in STUDIED][:3]
['doubles_aware_to_engaged', 'accelerates_engaged_to_qualified', 'strongest_qualified_to_sales_ready']
"""
from __future__ import annotations

import numpy as np
import pandas as pd

A_E, E_Q, Q_S = "aware->engaged", "engaged->qualified", "qualified->sales_ready"


def _studied(cid, name, channel, transition, story, rate=0.4, slope=0.0, risk_ratio=1.0, time_factor=1.0,
             confounded=False, before_landmark=False):
    logit = float(np.log(rate / (1 - rate))) if slope == 0 else rate
    return {"campaign_id": cid, "campaign_name": name, "channel": channel, "transition": transition,
            "story": story, "exposure_logit": logit, "exposure_size_slope": slope,
            "risk_ratio": risk_ratio, "time_factor": time_factor, "is_confounded": confounded,
            "is_zero_effect": risk_ratio == 1.0 and time_factor == 1.0, "acts_before_landmark": before_landmark}


STUDIED: tuple[dict, ...] = (
    _studied("CMP001", "LinkedIn ABM Always-On", "paid_social", A_E, "doubles_aware_to_engaged",
             rate=0.40, risk_ratio=2.0),
    _studied("CMP002", "Product Webinar Series", "webinar", E_Q, "accelerates_engaged_to_qualified",
             rate=0.45, time_factor=0.6),
    _studied("CMP003", "Executive Gift Box Mailer", "direct_mail", Q_S, "strongest_qualified_to_sales_ready",
             rate=0.40, risk_ratio=2.5),
    _studied("CMP004", "Google Ads - Brand Search", "paid_search", A_E, "zero_effect", rate=0.35),
    _studied("CMP005", "G2 Category Sponsorship", "review_site", A_E, "zero_effect", rate=0.30),
    _studied("CMP006", "Nurture Email Track", "email", E_Q, "zero_effect", rate=0.45),
    _studied("CMP007", "Analyst Report Syndication", "content_syndication", E_Q, "zero_effect", rate=0.35),
    _studied("CMP008", "Partner Co-Selling Program", "partner", Q_S, "zero_effect", rate=0.35),
    _studied("CMP009", "Enterprise ABM Display", "display", A_E, "confounded_by_size",
             rate=-0.9, slope=2.2, confounded=True),
    _studied("CMP010", "Regional Roadshow Series", "event", Q_S, "zero_effect", rate=0.30),
    # hazard x2.5 from the first impression on, before the landmark too (aware->engaged has
    # an unobserved frailty, so the accounts still aware at the landmark are selected)
    _studied("CMP031", "Account-Based Video Ads", "display", A_E, "acts_before_landmark",
             rate=0.40, time_factor=0.4, before_landmark=True),
)

# background campaigns: (id, name, channel, start offset days, duration days or None = to the end);
# {year} is the calendar year the campaign starts in
BACKGROUND: tuple[tuple, ...] = (
    ("CMP011", "Google Ads - Generic Search", "paid_search", 0, None),
    ("CMP012", "Display Retargeting", "display", 0, None),
    ("CMP013", "Monthly Newsletter {year}", "email", 0, 365),
    ("CMP014", "Monthly Newsletter {year}", "email", 365, None),
    ("CMP015", "SaaStr Annual {year}", "event", 250, 4),
    ("CMP016", "Dreamforce {year}", "event", 285, 4),
    ("CMP017", "Customer Summit {year}", "event", 480, 3),
    ("CMP018", "Webinar: {year} Benchmark Report", "webinar", 70, 30),
    ("CMP019", "Webinar: AI in Revenue Operations", "webinar", 420, 30),
    ("CMP020", "SDR Outbound Sequences", "sales_outreach", 0, None),
    ("CMP021", "Bombora Intent Feed", "intent", 0, None),
    ("CMP022", "Gartner Peer Insights Reviews", "review_site", 120, None),
    ("CMP023", "Partner Referral Program", "referral", 0, None),
    ("CMP024", "LinkedIn Thought Leadership", "paid_social", 180, 180),
    ("CMP025", "Facebook Retargeting", "paid_social", 365, 200),
    ("CMP026", "eBook: Buyer's Guide", "content_syndication", 60, 300),
    ("CMP027", "Holiday Direct Mail {year}", "direct_mail", 310, 50),
    ("CMP028", "Product Launch Email {year}", "email", 455, 60),
    ("CMP029", "Web Summit {year}", "event", 600, 4),
    ("CMP030", "Capterra Listing", "review_site", 30, None),
)
# cost per campaign-day by channel (USD), so cost scales with how long a campaign runs
DAILY_COST = {"paid_search": 900, "paid_social": 1100, "display": 800, "email": 60, "event": 25_000,
              "webinar": 400, "sales_outreach": 700, "intent": 250, "review_site": 150, "referral": 80,
              "content_syndication": 300, "direct_mail": 600, "partner": 200}


def make_campaigns(start: pd.Timestamp, horizon_days: float, rng: np.random.Generator) -> pd.DataFrame:
    """Campaign table (canonical columns) plus helper columns of the planted design
    (``transition``, ``story``, ``exposure_logit``, ``exposure_size_slope``,
    ``risk_ratio``, ``time_factor``, ``is_zero_effect``, ``is_confounded``,
    ``acts_before_landmark``, ``start_day``, ``end_day``)."""
    rows = [dict(c, start_day=-30.0, end_day=float(horizon_days)) for c in STUDIED]
    for cid, name, channel, off, dur in BACKGROUND:
        end = horizon_days if dur is None else min(off + dur, horizon_days)
        if off >= horizon_days:
            continue
        year = (start + pd.Timedelta(days=off)).year
        rows.append({"campaign_id": cid, "campaign_name": name.format(year=year), "channel": channel, "transition": None,
                     "story": None, "start_day": float(off), "end_day": float(end)})
    cmp = pd.DataFrame(rows)
    days = cmp["end_day"] - cmp["start_day"]
    cmp["cost"] = np.round(days * cmp["channel"].map(DAILY_COST).to_numpy()
                           * rng.uniform(0.7, 1.3, len(cmp)), 2)
    # a single event costs per event, not per day; an event series costs about a stop a month
    is_event = (cmp["channel"] == "event") & (days <= 30)
    cmp.loc[is_event, "cost"] = np.round(rng.uniform(40_000, 180_000, int(is_event.sum())), 2)
    series = (cmp["channel"] == "event") & (days > 30)
    cmp.loc[series, "cost"] = np.round(days[series] * 1_500 * rng.uniform(0.7, 1.3, int(series.sum())), 2)
    cmp["start_date"] = start + pd.to_timedelta(cmp["start_day"], unit="D")
    cmp["end_date"] = start + pd.to_timedelta(cmp["end_day"], unit="D")
    for col, default in (("risk_ratio", 1.0), ("time_factor", 1.0), ("exposure_logit", np.nan),
                         ("exposure_size_slope", 0.0)):
        cmp[col] = cmp[col].fillna(default)
    cmp["acts_before_landmark"] = cmp["acts_before_landmark"].eq(True)
    for col in ("is_zero_effect", "is_confounded"):
        cmp[col] = cmp[col].astype("boolean")
    return cmp
