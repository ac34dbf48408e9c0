"""Touchpoints generated FROM the latent stage process, so that the default stage
rules of abmkit.progression (trailing 90-day window) give back exactly the latent entry times.

Four kinds of touches:

* **trigger** touches, at each stage entry, plus the *cadence* touches just before
  it that make the trailing-window rule hold (e.g. at the engaged entry the third
  core contact's engagement touch, the other two core contacts having engagement
  touches within the prior 80 days);
* **exposure** touches of the studied campaigns inside their exposure windows;
* **background** touches, Poisson over each stage interval, drawn from a per-stage
  mix that can never trigger the next stage early: while *aware* only core
  contacts 0-1 engage and only contact 0 makes high-intent touches; while
  *engaged* any corporate contact engages but high intent stays with contact 0;
  while *qualified* no demo_request / meeting; free-mail contacts only open e-mails
  until the account is sales-ready. Before the aware entry an account has no touch.
  The sales-ready stream runs to the data end (the first opportunity is drawn from
  it: abmkit.sample.incrementality) and is thinned after the customer entry;
* **reverse** touches: sales calls, direct visits and demo requests in the days
  before the first opportunity, caused by it (the account is already converting).

Example
-------
>>> STAGE_MIX["aware"][0]
('display', 'impression', 'acct', 30.0)
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..schema import CHANNELS, TOUCH_TYPES
from .process import EXPOSURE_DAYS, STAGES, minute

HOUR = 1.0 / 24
CH = {c: i for i, c in enumerate(CHANNELS)}
TT = {t: i for i, t in enumerate(TOUCH_TYPES)}

_IMPRESSIONS = [("display", "impression", "acct", 30.0), ("paid_social", "impression", "acct", 25.0),
                ("email", "email_open", "all", 14.0)]
_LIGHT_CORP = [("paid_search", "click", "corp", 3.0), ("organic_search", "visit", "corp", 6.0),
               ("direct", "visit", "corp", 3.0), ("email", "email_click", "corp", 3.0),
               ("referral", "visit", "corp", 1.0), ("review_site", "visit", "corp", 1.0),
               ("webinar", "webinar_registered", "corp", 1.0), ("paid_social", "click", "corp", 1.0),
               ("sales_outreach", "call", "corp", 1.0)]
_HIGH_CORP = [("content_syndication", "content_download", "corp", 2.0), ("organic_search", "form_fill", "corp", 1.0),
              ("webinar", "webinar_attended", "corp", 1.0), ("event", "event_attended", "corp", 0.6)]
#: per stage: (channel, touch_type, role, weight); roles: acct (account-level), all (any contact),
#: corp (corporate e-mail contact), k01 (core contact 0 or 1), k0 (core contact 0)
STAGE_MIX = {
    "aware": _IMPRESSIONS + [
        ("paid_search", "click", "k01", 3.0), ("organic_search", "visit", "k01", 4.0),
        ("direct", "visit", "k01", 2.0), ("email", "email_click", "k01", 2.0), ("paid_social", "click", "k01", 1.0),
        ("review_site", "visit", "k01", 1.0), ("webinar", "webinar_registered", "k01", 0.5),
        ("content_syndication", "content_download", "k0", 0.8), ("event", "event_attended", "k0", 0.3),
        ("organic_search", "form_fill", "k0", 0.4)],
    "engaged": _IMPRESSIONS + _LIGHT_CORP + [
        ("content_syndication", "content_download", "k0", 1.0), ("organic_search", "form_fill", "k0", 0.6),
        ("webinar", "webinar_attended", "k0", 0.6), ("event", "event_attended", "k0", 0.4)],
    "qualified": _IMPRESSIONS + _LIGHT_CORP + _HIGH_CORP + [("sales_outreach", "call", "corp", 2.0)],
    "sales_ready": _IMPRESSIONS + _LIGHT_CORP + _HIGH_CORP + [
        ("sales_outreach", "meeting", "corp", 3.0), ("direct", "demo_request", "corp", 1.0),
        ("sales_outreach", "call", "corp", 3.0), ("direct", "visit", "all", 2.0),
        ("intent", "intent_signal", "acct", 2.0)],
}
STAGE_MIX["customer"] = STAGE_MIX["sales_ready"]
#: background touches per account-day by stage (scaled by target flag and size)
STAGE_RATE = {"aware": 0.16, "engaged": 0.30, "qualified": 0.38, "sales_ready": 0.42, "customer": 0.22}
#: probability that a background touch of a channel is credited to one of its campaigns
CAMPAIGN_SHARE = {"paid_search": 0.9, "paid_social": 0.9, "display": 0.9, "email": 0.9, "webinar": 1.0,
                  "event": 1.0, "sales_outreach": 0.8, "intent": 1.0, "review_site": 0.7, "referral": 0.6,
                  "content_syndication": 0.9, "direct_mail": 1.0, "partner": 1.0}
#: exposure touches per studied campaign: (touch_type, role, fixed count, extra Poisson mean, probability)
EXPOSURE_MIX = {
    "CMP001": [("impression", "acct", 2, 3.0, 1.0), ("click", "k01", 1, 0.0, 0.3)],
    "CMP002": [("webinar_registered", "corp", 1, 0.0, 1.0), ("webinar_attended", "k0", 1, 0.0, 0.6)],
    "CMP003": [("impression", "k0", 1, 0.0, 1.0), ("visit", "k0", 1, 0.0, 0.4)],
    "CMP004": [("click", "k01", 1, 0.5, 1.0)],
    "CMP005": [("visit", "k01", 1, 0.0, 1.0)],
    "CMP006": [("email_open", "all", 1, 1.0, 1.0), ("email_click", "corp", 1, 0.0, 0.5)],
    "CMP007": [("content_download", "k0", 1, 0.0, 1.0)],
    "CMP008": [("visit", "corp", 1, 0.0, 1.0)],
    "CMP009": [("impression", "acct", 3, 4.0, 1.0)],
    "CMP010": [("event_attended", "corp", 1, 0.0, 1.0)],
}
# engagement seconds: (log-mean seconds, log-sd); types absent here carry no duration
SECONDS = {"click": (3.0, 0.6), "visit": (4.5, 0.8), "email_click": (3.0, 0.5), "form_fill": (5.0, 0.4),
           "content_download": (4.0, 0.5), "webinar_registered": (4.0, 0.3), "webinar_attended": (7.8, 0.3),
           "event_attended": (8.8, 0.4), "meeting": (7.8, 0.2), "call": (5.8, 0.7), "demo_request": (5.0, 0.4)}


class ContactIndex:
    """Per-account lookup of contact rows (contacts sorted by account, then ``k``)
    so roles can be drawn for many accounts at once."""

    def __init__(self, ct: pd.DataFrame, n_accounts: int):
        acct = ct["acct"].to_numpy()
        member = acct >= 0
        self.count = np.bincount(acct[member], minlength=n_accounts)
        rows = np.flatnonzero(member)
        self.start = rows[0] + np.concatenate([[0], np.cumsum(self.count)[:-1]])
        corp = np.flatnonzero(member & ~ct["is_free"].to_numpy())
        self.corp_rows = corp
        self.corp_count = np.bincount(acct[corp], minlength=n_accounts)
        self.corp_start = np.concatenate([[0], np.cumsum(self.corp_count)[:-1]])

    def pick(self, role: str, acct: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Contact row per account for ``role`` (-1 = account-level touch)."""
        u = rng.random(len(acct))
        if role == "acct":
            return np.full(len(acct), -1)
        if role == "k0":
            return self.start[acct]
        if role == "k1":
            return self.start[acct] + 1
        if role == "k2":
            return self.start[acct] + 2
        if role == "k01":
            return self.start[acct] + (u < 0.5)
        if role == "all":
            return self.start[acct] + np.floor(u * self.count[acct]).astype(int)
        if role == "corp":
            return self.corp_rows[self.corp_start[acct] + np.floor(u * self.corp_count[acct]).astype(int)]
        raise ValueError(role)


def _piece(acct, contact, t, channel, ttype, campaign=None, kind="background"):
    n = len(acct)
    return pd.DataFrame({
        "acct": np.asarray(acct), "contact": np.asarray(contact), "t": np.asarray(t, dtype=float),
        "channel": np.broadcast_to(channel, n) if np.ndim(channel) == 0 else channel,
        "touch_type": np.broadcast_to(ttype, n) if np.ndim(ttype) == 0 else ttype,
        "campaign_id": np.broadcast_to(np.asarray(campaign, dtype=object), n) if np.ndim(campaign) == 0 else campaign,
        "kind": kind})


def _between(lo, hi, rng):
    """Uniform times strictly inside (lo, hi), at least an hour from both ends."""
    return minute(lo + HOUR + rng.random(len(lo)) * (hi - lo - 2 * HOUR))


def trigger_touches(times: dict, ci: ContactIndex, rng) -> list[pd.DataFrame]:
    """Stage-entry touches and the cadence touches that make each window rule hold."""
    out = []
    light = np.array([("organic_search", "visit"), ("paid_search", "click"), ("direct", "visit"),
                      ("email", "email_click")], dtype=object)
    high = np.array([("content_syndication", "content_download"), ("organic_search", "form_fill"),
                     ("webinar", "webinar_attended")], dtype=object)

    def kinds(table, n):
        pick = table[rng.integers(0, len(table), n)]
        return pick[:, 0], pick[:, 1]

    a = np.flatnonzero(~np.isnan(times["aware"]))
    out.append(_piece(a, ci.pick("k0", a, rng), times["aware"][a], *kinds(light, len(a)), kind="trigger"))
    plan = [  # stage, previous stage, trigger (role, table), cadence [(role, table)]
        ("engaged", "aware", ("k2", light), [("k0", light), ("k1", light)]),
        ("qualified", "engaged", ("k1", high), [("k0", high), ("k2", light)]),
        ("sales_ready", "qualified", ("k0", None), [("k1", high), ("k2", light)]),
    ]
    for stage, prev, (role, table), cadence in plan:
        a = np.flatnonzero(~np.isnan(times[stage]))
        T, P = times[stage][a], times[prev][a]
        if table is None:  # sales-ready: a demo request or a meeting
            demo = rng.random(len(a)) < 0.5
            ch, tt = np.where(demo, "direct", "sales_outreach"), np.where(demo, "demo_request", "meeting")
        else:
            ch, tt = kinds(table, len(a))
        out.append(_piece(a, ci.pick(role, a, rng), T, ch, tt, kind="trigger"))
        # accounts that move on after the landmark get their cadence after it too:
        # cadence inside the exposure window [P, P + exposure_days) would make its
        # channels look like they drive progression (exposure decided by the outcome)
        lo = np.maximum(P, T - 80.0)
        lo = np.where(T > P + EXPOSURE_DAYS, np.maximum(lo, P + EXPOSURE_DAYS), lo)
        for crole, ctable in cadence:
            out.append(_piece(a, ci.pick(crole, a, rng), _between(lo, T, rng), *kinds(ctable, len(a)),
                              kind="cadence"))
    return out


def exposure_touches(exposures: pd.DataFrame, cmp: pd.DataFrame, ci: ContactIndex, rng) -> list[pd.DataFrame]:
    """Touches of the studied campaigns inside each exposed account's window."""
    channel = cmp.set_index("campaign_id")["channel"]
    out = []
    for cid, grp in exposures.groupby("campaign_id", sort=True):
        for ttype, role, fixed, extra, prob in EXPOSURE_MIX[cid]:
            n = np.where(rng.random(len(grp)) < prob, fixed + rng.poisson(extra, len(grp)), 0)
            rep = np.repeat(np.arange(len(grp)), n)
            acct = grp["acct"].to_numpy()[rep]
            t = _between(grp["win_start"].to_numpy()[rep], grp["win_end"].to_numpy()[rep], rng)
            out.append(_piece(acct, ci.pick(role, acct, rng), t, channel[cid], ttype, cid, kind="exposure"))
    return out


def background_touches(acc: pd.DataFrame, times: dict, horizon: float, ci: ContactIndex, rng,
                       rate_scale: float = 1.0) -> list[pd.DataFrame]:
    """Poisson background touches over each stage interval, from the stage's mix.

    The sales-ready stream runs to the data end (``times`` has no customer entry yet:
    the first opportunity is drawn from these touches, abmkit.sample.incrementality);
    :func:`customer_thinning` then turns its part after the customer entry into the
    customer stage's (same mix, lower rate)."""
    out = []
    z = acc["size_z"].to_numpy()
    boost = (1.0 + 0.5 * acc["is_target"].to_numpy().astype(float)) * np.exp(0.15 * np.clip(z, -2, 3))
    for i, stage in enumerate(STAGES[1:-1], start=1):
        start = times[stage]
        nxt = times[STAGES[i + 1]] if stage != "sales_ready" else np.full(len(acc), np.nan)
        stop = np.where(np.isnan(nxt), horizon, nxt)
        dur = np.where(np.isnan(start), 0.0, stop - np.nan_to_num(start))
        n = rng.poisson(STAGE_RATE[stage] * rate_scale * boost * dur)
        rep = np.repeat(np.arange(len(acc)), n)
        t = start[rep] + rng.random(len(rep)) * dur[rep]
        t = minute(_office_hours(t, start[rep], stop[rep], rng))
        mix = STAGE_MIX[stage]
        w = np.array([m[3] for m in mix])
        which = rng.choice(len(mix), size=len(rep), p=w / w.sum())
        contact = np.full(len(rep), -1)
        for j, (_, _, role, _) in enumerate(mix):
            sel = which == j
            contact[sel] = ci.pick(role, rep[sel], rng)
        ch = np.array([m[0] for m in mix], dtype=object)[which]
        tt = np.array([m[1] for m in mix], dtype=object)[which]
        out.append(_piece(rep, contact, t, ch, tt, None))
    return out


def customer_thinning(pieces: list[pd.DataFrame], customer: np.ndarray, rng) -> list[pd.DataFrame]:
    """Keep a background touch after the account's customer entry with probability
    ``STAGE_RATE["customer"] / STAGE_RATE["sales_ready"]`` (the sales-ready stream
    ran to the data end; customers are touched less, with the same mix)."""
    keep_p = STAGE_RATE["customer"] / STAGE_RATE["sales_ready"]
    out = []
    for p in pieces:
        acct = p["acct"].to_numpy()
        cust = customer[np.maximum(acct, 0)]
        after = (acct >= 0) & ~np.isnan(cust) & (p["t"].to_numpy() >= np.nan_to_num(cust, nan=np.inf))
        u = rng.random(len(p))
        out.append(p[~after | (u < keep_p)].reset_index(drop=True))
    return out


#: touches the conversion causes (the account is already converting): in the
#: REVERSE_DAYS before its first opportunity, 1 + Poisson(REVERSE_EXTRA) of these
REVERSE_MIX = (("sales_outreach", "call", 0.45), ("direct", "visit", 0.35), ("direct", "demo_request", 0.2))
REVERSE_DAYS = 6.0
REVERSE_EXTRA = 1.5


def reverse_touches(created: np.ndarray, ready: np.ndarray, ci: ContactIndex, rng) -> pd.DataFrame:
    """Sales calls, direct visits and demo requests by corporate contacts in the
    ``REVERSE_DAYS`` before each first opportunity (and after the sales-ready entry,
    so they cannot trigger it early): caused by the conversion, not causing it."""
    a = np.flatnonzero(~np.isnan(created))
    n = 1 + rng.poisson(REVERSE_EXTRA, len(a))
    rep = np.repeat(a, n)
    lo = np.maximum(created[rep] - REVERSE_DAYS, ready[rep] + HOUR)
    hi = created[rep]
    which = rng.choice(len(REVERSE_MIX), size=len(rep), p=[m[2] for m in REVERSE_MIX])
    t = _between(lo, hi, rng)
    ok = hi - lo >= 2 * HOUR
    contact = ci.pick("corp", rep, rng)
    ch = np.array([m[0] for m in REVERSE_MIX], dtype=object)[which]
    tt = np.array([m[1] for m in REVERSE_MIX], dtype=object)[which]
    return _piece(rep[ok], contact[ok], t[ok], ch[ok], tt[ok], None, kind="reverse")


def _office_hours(t, lo, hi, rng):
    """Move a touch to a working-hours time of its day (about 10:30 New York ± 3 h,
    in UTC) unless that leaves the interval (lo, hi) it must stay in."""
    hour = np.clip(rng.normal(15.5, 3.0, len(t)), 9.0, 23.9) / 24.0
    moved = np.floor(t) + hour
    return np.where((moved > lo + HOUR) & (moved < hi - HOUR), moved, t)


def no_account_touches(ct: pd.DataFrame, horizon: float, rng) -> pd.DataFrame:
    """A few touches of contacts that belong to no account (students, vendors)."""
    rows = np.flatnonzero(ct["acct"].to_numpy() < 0)
    n = rng.poisson(3.0, len(rows))
    rep = rows[np.repeat(np.arange(len(rows)), n)]
    mix = np.array([("email", "email_open"), ("organic_search", "visit"), ("content_syndication", "content_download"),
                    ("organic_search", "form_fill"), ("webinar", "webinar_registered")], dtype=object)
    pick = mix[rng.choice(len(mix), size=len(rep), p=[0.35, 0.3, 0.15, 0.1, 0.1])]
    return _piece(np.full(len(rep), -1), rep, minute(rng.uniform(1, horizon - 1, len(rep))),
                  pick[:, 0], pick[:, 1], None)


def assign_campaigns(tp: pd.DataFrame, cmp: pd.DataFrame, times: dict, rng) -> pd.Series:
    """Credit background touches to an active campaign of their channel, never to a
    studied campaign inside that account's exposure window (that would change who
    counts as exposed)."""
    camp = tp["campaign_id"].to_numpy(dtype=object).copy()
    free = pd.isna(camp) & tp["kind"].isin(["background", "reverse"]).to_numpy()
    ch = tp["channel"].to_numpy()
    t = tp["t"].to_numpy()
    acct = tp["acct"].to_numpy()
    u = rng.random(len(tp))
    v = rng.random(len(tp))
    stage_of = {tr: s for tr, s in (("aware->engaged", "aware"), ("engaged->qualified", "engaged"),
                                    ("qualified->sales_ready", "qualified"))}
    for channel, grp in cmp.groupby("channel", sort=True):
        sel = np.flatnonzero(free & (ch == channel) & (v < CAMPAIGN_SHARE.get(channel, 0.0)))
        if not len(sel):
            continue
        pick = grp.iloc[np.floor(u[sel] * len(grp)).astype(int)]
        ok = (t[sel] >= pick["start_day"].to_numpy()) & (t[sel] <= pick["end_day"].to_numpy())
        trans = pick["transition"].to_numpy()
        for tr, s in stage_of.items():
            hit = trans == tr
            if hit.any():
                Ts = times[s][np.maximum(acct[sel], 0)]
                inside = (acct[sel] >= 0) & (t[sel] >= Ts) & (t[sel] < Ts + EXPOSURE_DAYS)
                ok &= ~(hit & inside)
        camp[sel[ok]] = pick["campaign_id"].to_numpy()[ok]
    return pd.Series(camp, index=tp.index, dtype=object)


def engagement_seconds(touch_type: np.ndarray, rng) -> np.ndarray:
    out = np.full(len(touch_type), np.nan)
    noise = rng.standard_normal(len(touch_type))
    for tt, (mu, sd) in SECONDS.items():
        sel = touch_type == tt
        out[sel] = np.round(np.exp(mu + sd * noise[sel]))
    return out
