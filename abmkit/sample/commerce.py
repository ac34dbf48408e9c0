"""Opportunities and recurring revenue from the same latent process: the first
new-business opportunity opens after the sales-ready entry (never before it, so it
cannot trigger sales-ready early), on the day drawn by the planted channel
incrementality (abmkit.sample.incrementality; some sales-ready accounts never open
one); the first won one makes the account a customer at its ``closed_at``; customers get renewals, upsells and cross-sells and a quarterly
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


#: log-sd of a new-business amount around the account's base amount
AMOUNT_SD_LOG = 0.35


def base_amount(acc: pd.DataFrame) -> np.ndarray:
    """Median new-business amount per account (grows with employee count)."""
    return 18_000 * (acc["employee_count"].to_numpy() / 200.0) ** 0.45


def make_opportunities(acc: pd.DataFrame, first_created: np.ndarray, horizon: float, rng: np.random.Generator):
    """Return (opportunities with helper columns ``acct`` and day columns, customer days).

    ``first_created``: day of each account's first opportunity (NaN: none), drawn by
    :func:`abmkit.sample.incrementality.first_opportunities` after the sales-ready entry."""
    n = len(acc)
    base_amount_ = base_amount(acc)
    icp = acc["icp_fit"].to_numpy()
    rows = []
    customer = np.full(n, np.nan)
    created = np.asarray(first_created, dtype=float)
    active = ~np.isnan(created) & (np.nan_to_num(created, nan=np.inf) < horizon)
    for attempt in range(2):  # a lost first deal may be followed by a second try
        idx = np.flatnonzero(active)
        c = created[idx]
        close = c + np.round(rng.uniform(30, 160, len(idx)))
        won = rng.random(len(idx)) < (WIN_P_NEW + 0.1 * icp[idx] - 0.1 * attempt)
        closed = close <= horizon
        amount = np.round(base_amount_[idx] * np.exp(rng.normal(0, AMOUNT_SD_LOG, len(idx))), 2)
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


#: share of new customers on a six-month first contract (the others sign for a year): their
#: renewal, and so their churn when it is lost, comes inside the sample's short history
SEMIANNUAL_SHARE = 0.5


def _expansion(customer: np.ndarray, arr: pd.Series, horizon: float, rng) -> pd.DataFrame:
    """Renewals at the end of the first contract (six months for ``SEMIANNUAL_SHARE`` of
    the customers, else a year), upsells and cross-sells of customers. A lost renewal
    churns the customer (:func:`make_revenue`), so no upsell or cross-sell opens after it."""
    cust = np.flatnonzero(~np.isnan(customer))
    T = customer[cust]
    base = arr.reindex(cust).to_numpy()
    # contract terms from a jumped copy of the stream: the draws below (and every later
    # step of the sample) stay the same as without terms
    term = np.where(np.random.Generator(rng.bit_generator.jumped()).random(len(cust)) < SEMIANNUAL_SHARE,
                    182.0, 365.0)
    parts = []
    spec = [  # type, probability, created offset range (days), close after (days), win p, amount share
        ("renewal", 1.0, (335, 335), (30, 30), 0.88, 1.0),
        ("upsell", 0.35, (60, 330), (20, 90), 0.6, 0.3),
        ("cross_sell", 0.2, (90, 360), (30, 120), 0.5, 0.25),
    ]
    churn_day = np.full(len(cust), np.inf)
    for kind, p, (lo, hi), (clo, chi), win_p, share in spec:
        has = rng.random(len(cust)) < p
        c = T + np.round(rng.uniform(lo, hi, len(cust)))
        if kind == "renewal":  # opened 30 days before the first contract ends
            c = T + term - 30
        close = c + np.round(rng.uniform(clo, chi, len(cust)))
        has &= c < horizon
        closed = close <= horizon
        won = rng.random(len(cust)) < win_p
        if kind == "renewal":
            churn_day = np.where(has & closed & ~won, close, np.inf)
        else:  # a churned customer opens no new deal after it left
            has &= c < churn_day
        amount = np.round(base * share * np.exp(rng.normal(0, 0.2, len(cust))), 2)
        parts.append(pd.DataFrame({"acct": cust, "created_day": c, "closed_day": np.where(closed, close, np.nan),
                                   "is_closed": closed, "is_won": closed & won, "amount": amount,
                                   "opportunity_type": kind})[has])
    return pd.concat(parts, ignore_index=True)


def _revenue_grid(opps: pd.DataFrame, customer: np.ndarray, q: np.ndarray):
    """The planted revenue state: every (customer, quarter start) pair from the first
    quarter after the account became a customer, its annual contract value (won new
    business, upsells and cross-sells from the quarter after they close) and whether it
    is still a customer (``live``: False from the first quarter starting on or after a
    lost renewal closes: churn)."""
    cust = np.flatnonzero(~np.isnan(customer))
    grid_a = np.repeat(cust, len(q))
    grid_q = np.tile(q, len(cust))
    won = opps[opps["is_won"]]
    arr = np.zeros(len(grid_a))
    for kind in ("new_business", "upsell", "cross_sell"):
        w = won[won["opportunity_type"] == kind].drop_duplicates("acct").set_index("acct")
        closed = w["closed_day"].reindex(grid_a).to_numpy()
        amt = w["amount"].reindex(grid_a).fillna(0).to_numpy()
        arr += np.where(grid_q >= closed, amt, 0.0)
    lost = opps[(opps["opportunity_type"] == "renewal") & opps["is_closed"] & ~opps["is_won"]]
    churn = lost.groupby("acct")["closed_day"].min().reindex(grid_a).to_numpy()
    became = grid_q >= customer[grid_a]
    live = became & ~(grid_q >= churn) & (arr > 0)
    return grid_a, grid_q, became, live, arr


def make_revenue(acc: pd.DataFrame, opps: pd.DataFrame, customer: np.ndarray, start: pd.Timestamp,
                 horizon: float, rng) -> pd.DataFrame:
    """Quarterly recurring revenue (annual contract value / 4) per customer for every
    quarter starting after it became a customer: won upsells/cross-sells add from the
    quarter after they close; a lost renewal churns the account, and churn is written
    the way the KPIs read it (abmkit.kpis.RevenueRule): the churned customer has no
    revenue row from the first quarter starting after the renewal was lost (never a row
    with zero revenue, never a gap followed by a return). The planted state is
    :func:`customer_periods`."""
    q = quarter_starts(start, horizon)
    cust = np.flatnonzero(~np.isnan(customer))
    if not len(cust) or not len(q):
        return pd.DataFrame(columns=["account_id", "period_start", "recurring_revenue", "active_users"])
    grid_a, grid_q, _, live, arr = _revenue_grid(opps, customer, q)
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


def customer_periods(acc: pd.DataFrame, opps: pd.DataFrame, customer: np.ndarray, start: pd.Timestamp,
                     horizon: float) -> pd.DataFrame:
    """Planted truth of the revenue state: one row per account that became a customer
    and quarter start from its first customer quarter on, with ``is_customer`` (False
    once a lost renewal churned it) and ``churned`` (True on the first quarter it is not a
    customer any more). Planted retention of a quarter = share of the accounts that are
    customers in the quarter before it and still are in it. Draws no random number.

    Example
    -------
    >>> opps = pd.DataFrame({"acct": [0, 0], "opportunity_type": ["new_business", "renewal"],
    ...                      "is_won": [True, False], "is_closed": [True, True],
    ...                      "closed_day": [10.0, 200.0], "amount": [4000.0, 4000.0]})
    >>> cp = customer_periods(pd.DataFrame({"account_id": ["A"]}), opps, np.array([10.0]),
    ...                       pd.Timestamp("2025-01-01", tz="UTC"), 400)
    >>> cp["is_customer"].tolist(), cp["churned"].tolist()
    ([True, True, False, False], [False, False, True, False])
    """
    q = quarter_starts(start, horizon)
    cols = ["account_id", "period_start", "is_customer", "churned"]
    if not np.isfinite(customer).any() or not len(q):
        return pd.DataFrame(columns=cols)
    grid_a, grid_q, became, live, _ = _revenue_grid(opps, customer, q)
    g = pd.DataFrame({"acct": grid_a, "day": grid_q, "is_customer": live})[became]
    was = g.groupby("acct")["is_customer"].shift(1, fill_value=False).astype(bool)
    g["churned"] = was & ~g["is_customer"]
    g.insert(0, "account_id", acc["account_id"].to_numpy()[g["acct"].to_numpy()])
    g["period_start"] = start + pd.to_timedelta(g["day"], unit="D")
    return g[cols].reset_index(drop=True)
