"""Opportunities and recurring revenue from the same latent process: a new-business
opportunity opens at or after the sales-ready entry (never before it, so it cannot
trigger sales-ready early); the first won one makes the account a customer at its
``closed_at``; customers get renewals, upsells and cross-sells and a quarterly
recurring-revenue series with expansion and churn.

Opportunity dates are whole days (midnight UTC), as CRM exports write them.

Example
-------
>>> quarter_starts(pd.Timestamp("2025-01-01", tz="UTC"), 200)[:2].tolist()
[0.0, 90.0]
"""
from __future__ import annotations

import numpy as np
import pandas as pd

WIN_P_NEW = 0.5
SECOND_ATTEMPT_P = 0.35


def quarter_starts(start: pd.Timestamp, horizon: float) -> np.ndarray:
    """Days (since ``start``) of the calendar quarter starts inside the horizon."""
    end = start + pd.Timedelta(days=horizon)
    q = pd.date_range(start.normalize(), end, freq="QS")
    return np.asarray((q - start).days, dtype=float)


def make_opportunities(acc: pd.DataFrame, times: dict, horizon: float, rng: np.random.Generator):
    """Return (opportunities with helper columns ``acct`` and day columns, customer days)."""
    n = len(acc)
    emp = acc["employee_count"].to_numpy()
    base_amount = 18_000 * (emp / 200.0) ** 0.45
    icp = acc["icp_fit"].to_numpy()
    rows = []
    customer = np.full(n, np.nan)
    ready = times["sales_ready"]
    created = np.ceil(ready + rng.uniform(0, 10, n))
    active = ~np.isnan(ready) & (created < horizon)
    for attempt in range(2):  # a lost first deal may be followed by a second try
        idx = np.flatnonzero(active)
        c = created[idx]
        close = c + np.round(rng.uniform(30, 160, len(idx)))
        won = rng.random(len(idx)) < (WIN_P_NEW + 0.1 * icp[idx] - 0.1 * attempt)
        closed = close <= horizon
        amount = np.round(base_amount[idx] * np.exp(rng.normal(0, 0.35, len(idx))), 2)
        rows.append(pd.DataFrame({"acct": idx, "created_day": c, "closed_day": np.where(closed, close, np.nan),
                                  "is_closed": closed, "is_won": closed & won, "amount": amount,
                                  "opportunity_type": "new_business"}))
        customer[idx[closed & won]] = close[closed & won]
        lost = closed & ~won
        retry = np.full(n, False)
        retry[idx[lost]] = rng.random(int(lost.sum())) < SECOND_ATTEMPT_P
        nxt = np.full(n, np.inf)
        nxt[idx[lost]] = close[lost] + np.round(rng.uniform(45, 180, int(lost.sum())))
        created = nxt
        active = retry & (created < horizon)
    opps = pd.concat(rows, ignore_index=True)
    won_new = opps[opps["is_won"]].drop_duplicates("acct").set_index("acct")["amount"]
    opps = pd.concat([opps, _expansion(customer, won_new, horizon, rng)], ignore_index=True)
    return opps, customer


def _expansion(customer: np.ndarray, arr: pd.Series, horizon: float, rng) -> pd.DataFrame:
    """Renewals at the anniversary, upsells and cross-sells of customers."""
    cust = np.flatnonzero(~np.isnan(customer))
    T = customer[cust]
    base = arr.reindex(cust).to_numpy()
    parts = []
    spec = [  # type, probability, created offset range (days), close after (days), win p, amount share
        ("renewal", 1.0, (335, 335), (30, 30), 0.88, 1.0),
        ("upsell", 0.35, (60, 330), (20, 90), 0.6, 0.3),
        ("cross_sell", 0.2, (90, 360), (30, 120), 0.5, 0.25),
    ]
    for kind, p, (lo, hi), (clo, chi), win_p, share in spec:
        has = rng.random(len(cust)) < p
        c = T + np.round(rng.uniform(lo, hi, len(cust)))
        close = c + np.round(rng.uniform(clo, chi, len(cust)))
        has &= c < horizon
        closed = close <= horizon
        won = rng.random(len(cust)) < win_p
        amount = np.round(base * share * np.exp(rng.normal(0, 0.2, len(cust))), 2)
        parts.append(pd.DataFrame({"acct": cust, "created_day": c, "closed_day": np.where(closed, close, np.nan),
                                   "is_closed": closed, "is_won": closed & won, "amount": amount,
                                   "opportunity_type": kind})[has])
    return pd.concat(parts, ignore_index=True)


def make_revenue(acc: pd.DataFrame, opps: pd.DataFrame, customer: np.ndarray, start: pd.Timestamp,
                 horizon: float, rng) -> pd.DataFrame:
    """Quarterly recurring revenue (annual contract value / 4) per customer for every
    quarter starting after it became a customer: won upsells/cross-sells add from the
    quarter after they close; a lost renewal churns the account."""
    q = quarter_starts(start, horizon)
    cust = np.flatnonzero(~np.isnan(customer))
    if not len(cust) or not len(q):
        return pd.DataFrame(columns=["account_id", "period_start", "recurring_revenue", "active_users"])
    grid_a = np.repeat(cust, len(q))
    grid_q = np.tile(q, len(cust))
    live = grid_q >= customer[grid_a]
    won = opps[opps["is_won"]]
    arr = np.zeros(len(grid_a))
    for kind in ("new_business", "upsell", "cross_sell"):
        w = won[won["opportunity_type"] == kind].drop_duplicates("acct").set_index("acct")
        closed = w["closed_day"].reindex(grid_a).to_numpy()
        amt = w["amount"].reindex(grid_a).fillna(0).to_numpy()
        arr += np.where(grid_q >= closed, amt, 0.0)
    lost = opps[(opps["opportunity_type"] == "renewal") & opps["is_closed"] & ~opps["is_won"]]
    churn = lost.drop_duplicates("acct").set_index("acct")["closed_day"].reindex(grid_a).to_numpy()
    live &= ~(grid_q >= churn)
    quarters_in = (grid_q - customer[grid_a]) / 91.0
    emp = acc["employee_count"].to_numpy()[grid_a]
    seats = np.clip(arr / 900.0, 5, emp)
    users = np.round(seats * np.clip(0.55 + 0.08 * quarters_in + rng.normal(0, 0.05, len(grid_a)), 0.2, 1.0))
    rr = np.round(arr / 4.0 * (1 + 0.01 * np.floor(quarters_in)), 2)
    rev = pd.DataFrame({"acct": grid_a, "period_day": grid_q, "recurring_revenue": rr, "active_users": users})[live]
    rev = rev[rev["recurring_revenue"] > 0]
    rev.insert(0, "account_id", acc["account_id"].to_numpy()[rev["acct"].to_numpy()])
    rev["period_start"] = start + pd.to_timedelta(rev["period_day"], unit="D")
    return rev[["account_id", "period_start", "recurring_revenue", "active_users"]].reset_index(drop=True)
