"""ABM KPIs: one function per KPI, each a formula stated in its docstring (see docs/kpis.md).

Every KPI exists twice:

* a **pure formula on counts** (``*_from_counts``), the KPI arithmetic that the
  worked examples test (``market_reach_from_counts(600, 1000).value == 0.6``);
* a **dataset function** (``market_reach(dataset, quarter="2026Q3")``) that counts the
  numerator and denominator in a canonical :class:`~abmkit.schema.Dataset` for one period
  (:func:`abmkit.period.resolve_period`) and applies the same formula.

Both return a :class:`KPIResult` (``value``, ``numerator``, ``denominator``). Rates are
fractions (0.6 = 60%); money is in the data's currency; durations are days.

Every dataset KPI declares what it needs (:data:`KPI_NEEDS`, from
:mod:`abmkit.applicability`: tables, columns with a value, data in the period). When the
data cannot support it, its value is NaN and its ``note`` says why, starting with
``"n/a — "`` ("n/a — needs touchpoints: none supplied"): never a 0 from missing data.
:func:`kpi_table` puts every KPI of a period beside the previous period of the same
length, with a long breakdown by industry, size band and tier.

Touches belong to accounts through :func:`abmkit.journeys.account_touches` (the touch's own
account, else its contact's mapped account). The KPIs come in three groups: reach and
engagement; pipeline and conversion; retention and growth.

Definitions that must mean what their labels say (docs/kpis.md): customers follow one
revenue state rule (:class:`RevenueRule`: a customer with no revenue row for a period is
churned), so retention, NRR (trailing 12 months, and quarter on quarter as its own KPI) and
CLV never count silence as retention; ``win_rate`` is won / closed opportunities and
``mqa_to_win_rate`` follows an MQA cohort for a stated horizon; influenced pipeline and ROI
are "touched before", and what campaigns *caused* is
:func:`abmkit.incremental_value.incremental_value`.

Example
-------
>>> market_reach_from_counts(600, 1000).value
0.6
>>> net_revenue_retention_from_counts(500_000, 50_000, 20_000).value
1.06
"""
from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from .applicability import KPI_NEEDS, check as _check, is_not_applicable_note, not_applicable_note
from .engagement import mqa_accounts_at
from .period import Period, format_period, resolve_period
from .prepared import ALL_ACCOUNTS, TARGET_POPULATION, ResolvedDataset, resolve
from .results import Result
from .schema import ENGAGEMENT_TOUCH_TYPES, SIZE_BANDS, Dataset, size_band

__all__ = [
    "KPIResult", "KPIData", "KPI_GROUPS", "KPI_FUNCTIONS", "last_complete_quarter", "population_of",
    "market_reach", "account_engagement", "audience_exposure_time", "mqa_accounts", "new_mqas",
    "influenced_pipeline", "pipeline_velocity", "win_rate", "mqa_to_win_rate", "mqa_cohort",
    "MQA_WIN_HORIZON_DAYS", "average_deal_size", "retention_rate",
    "product_adoption", "upsell_rate", "cross_sell_rate", "net_revenue_retention", "net_revenue_retention_qoq",
    "RevenueRule", "revenue_period_months", "revenue_observed_note",
    "buying_group_coverage", "opportunity_creation", "deal_velocity",
    "customer_lifetime_value", "cost_per_acquired_account", "roi", "kpi_table", "KPITable",
    "kpi_history", "account_funnel", "pipeline_by_period", "FUNNEL_STEPS", "KPI_POPULATION", "velocity_change", "headline_findings",
    "KPI_NEEDS", "KPI_UNITS",
]

#: default look-back for "an attributed touch" (as for attribution journeys)
LOOKBACK_DAYS = 365


# --------------------------------------------------------------------------- result
@dataclass(frozen=True)
class KPIResult:
    """One KPI for one period: ``value`` = formula(``numerator``, ``denominator``).

    ``denominator`` is NaN for KPIs that are sums or counts; ``value`` is NaN when the
    data cannot support the KPI (for example no revenue table, no campaign costs), and
    then ``note`` starts with ``"n/a — "`` and gives the reason (:data:`KPI_NEEDS`).
    """
    name: str
    value: float
    numerator: float = float("nan")
    denominator: float = float("nan")
    unit: str = "ratio"
    note: str = ""
    #: the accounts the KPI is counted on ("target accounts" or "all accounts")
    population: str = ""
    #: how many accounts that population holds
    population_size: float = float("nan")

    def to_dict(self) -> dict:
        return asdict(self)


def _f(x) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def _ratio(name: str, num, den, unit: str = "ratio", note: str = "") -> KPIResult:
    num, den = _f(num), _f(den)
    value = num / den if den and not math.isnan(den) and not math.isnan(num) else float("nan")
    return KPIResult(name, value, num, den, unit, note)


def _total(name: str, total, unit: str, note: str = "") -> KPIResult:
    total = _f(total)
    return KPIResult(name, total, total, float("nan"), unit, note)


# --------------------------------------------------------------------------- pure formulas
def market_reach_from_counts(reached_accounts, addressable_accounts) -> KPIResult:
    """market reach = reached accounts / addressable accounts (600/1000 = 60%)."""
    return _ratio("market_reach", reached_accounts, addressable_accounts)


def account_engagement_from_counts(interactions: Iterable[float]) -> KPIResult:
    """account engagement = sum of interactions (300 + 150 + 50 = 500)."""
    return _total("account_engagement", float(np.sum(list(interactions))), "interactions")


def audience_exposure_time_from_counts(engagement_seconds: Iterable[float]) -> KPIResult:
    """audience exposure time = sum of engagement seconds / 3600 (hours)."""
    seconds = float(np.nansum(np.asarray(list(engagement_seconds), dtype=float)))
    return KPIResult("audience_exposure_time", seconds / 3600.0, seconds, 3600.0, "hours")


def mqa_accounts_from_counts(mqa_accounts, population_accounts) -> KPIResult:
    """MQA accounts = accounts meeting the MQA rule (count); numerator / denominator is
    their share of the population (50 of 1000 = 5%)."""
    n = _f(mqa_accounts)
    return KPIResult("mqa_accounts", n, n, _f(population_accounts), "accounts")


def influenced_pipeline_from_counts(influenced_amounts: Iterable[float]) -> KPIResult:
    """influenced pipeline = sum of amounts of opportunities with an attributed touch
    (50k + 75k + 100k = 225k): touched before, not caused by marketing (the caused part is
    :func:`abmkit.incremental_value.incremental_value`)."""
    return _total("influenced_pipeline", float(np.nansum(list(influenced_amounts))), "currency")


def pipeline_velocity_from_counts(days_to_close: Iterable[float]) -> KPIResult:
    """pipeline velocity = mean days from opportunity creation to close."""
    d = np.asarray(list(days_to_close), dtype=float)
    return _ratio("pipeline_velocity", np.nansum(d) if len(d) else np.nan, float(np.isfinite(d).sum()), "days")


def velocity_change(previous_days, current_days) -> float:
    """Change of a velocity between periods, in days (120 → 100 = −20 days: faster)."""
    return _f(current_days) - _f(previous_days)


def win_rate_from_counts(won_opportunities, closed_opportunities) -> KPIResult:
    """win rate (sales convention) = won opportunities / closed (won or lost)
    opportunities (10/50 = 20%)."""
    return _ratio("win_rate", won_opportunities, closed_opportunities)


def mqa_to_win_rate_from_counts(won_accounts, mqa_cohort_accounts) -> KPIResult:
    """MQA-to-win rate = accounts of an MQA cohort that won a deal within the horizon /
    accounts in the cohort (10/50 = 20%)."""
    return _ratio("mqa_to_win_rate", won_accounts, mqa_cohort_accounts)


def average_deal_size_from_counts(won_amount, won_deals) -> KPIResult:
    """average deal size = won amount / won deals (1,000,000/10 = 100,000)."""
    return _ratio("average_deal_size", won_amount, won_deals, "currency")


def retention_rate_from_counts(retained_customers, customers_at_start) -> KPIResult:
    """retention rate = customers at start still customers at end / customers at start
    (180/200 = 90%)."""
    return _ratio("retention_rate", retained_customers, customers_at_start)


def product_adoption_from_counts(adopting_customers, customers) -> KPIResult:
    """product adoption = customers with active users / customers (70/100 = 70%)."""
    return _ratio("product_adoption", adopting_customers, customers)


def upsell_rate_from_counts(upsold_customers, customers_at_start) -> KPIResult:
    """upsell rate = customers with a won upsell / customers at start (15/50 = 30%)."""
    return _ratio("upsell_rate", upsold_customers, customers_at_start)


def cross_sell_rate_from_counts(cross_sold_customers, customers_at_start) -> KPIResult:
    """cross-sell rate = customers with a won cross-sell / customers at start (10/40 = 25%)."""
    return _ratio("cross_sell_rate", cross_sold_customers, customers_at_start)


def net_revenue_retention_from_counts(start_revenue, expansion, churn) -> KPIResult:
    """NRR = (start + expansion − churn) / start, churn including contraction
    ((500k + 50k − 20k) / 500k = 106%)."""
    s, e, c = _f(start_revenue), _f(expansion), _f(churn)
    return _ratio("net_revenue_retention", s + e - c, s)


def buying_group_coverage_from_counts(engaged_contacts, buying_group_size) -> KPIResult:
    """buying-group coverage = engaged contacts / buying-group size."""
    return _ratio("buying_group_coverage", engaged_contacts, buying_group_size)


def opportunity_creation_from_counts(created_opportunities) -> KPIResult:
    """opportunity creation = number of opportunities created in the period."""
    return _total("opportunity_creation", created_opportunities, "opportunities")


def deal_velocity_from_counts(days_first_touch_to_won: Iterable[float]) -> KPIResult:
    """deal velocity = mean days from the account's first touch to closed-won."""
    d = np.asarray(list(days_first_touch_to_won), dtype=float)
    r = pipeline_velocity_from_counts(d)
    return replace(r, name="deal_velocity")


def customer_lifetime_value_from_counts(revenue_per_customer, churn_rate) -> KPIResult:
    """customer lifetime value = revenue per customer in the period / churn rate of the
    period (the expected number of periods a customer stays is 1 / churn rate)."""
    return _ratio("customer_lifetime_value", revenue_per_customer, churn_rate, "currency")


def cost_per_acquired_account_from_counts(campaign_cost, acquired_accounts) -> KPIResult:
    """cost per acquired account = campaign cost / newly acquired (first closed-won) accounts."""
    return _ratio("cost_per_acquired_account", campaign_cost, acquired_accounts, "currency")


def roi_from_counts(influenced_revenue, campaign_cost) -> KPIResult:
    """ROI = (influenced won revenue − campaign cost) / campaign cost."""
    r, c = _f(influenced_revenue), _f(campaign_cost)
    return _ratio("roi", r - c, c)


# --------------------------------------------------------------------------- prepared data
@dataclass
class KPIData:
    """The view of a resolved dataset that KPI functions count on: touches on their
    accounts (with the contact's persona and an engagement flag), accounts with their
    size band, and the other tables. :meth:`subset` restricts everything to some
    accounts (segment breakdowns). KPI functions accept a ResolvedDataset (or a plain
    Dataset, prepared with defaults) and build this view once per dataset.
    """
    accounts: pd.DataFrame
    contacts: pd.DataFrame
    touches: pd.DataFrame
    opportunities: pd.DataFrame
    campaigns: pd.DataFrame
    revenue: pd.DataFrame
    contact_accounts: pd.DataFrame
    #: the resolved dataset (its MQA rule and mapping), shared with subsets
    resolved: ResolvedDataset
    whole_market: bool = True
    #: whether the full dataset flags target accounts (kept by subsets so a segment
    #: without targets has none addressable, rather than all)
    targets_flagged: bool = False
    #: who is a customer in the revenue table (:class:`RevenueRule`)
    revenue_rule: "RevenueRule" = None

    def __post_init__(self):
        if self.revenue_rule is None:
            self.revenue_rule = RevenueRule()

    def subset(self, account_ids) -> "KPIData":
        ids = pd.Index(pd.unique(pd.Series(list(account_ids), dtype=object)))
        keep = lambda df: df[df["account_id"].isin(ids)]  # noqa: E731
        return KPIData(
            accounts=keep(self.accounts), contacts=keep(self.contacts), touches=keep(self.touches),
            opportunities=keep(self.opportunities), campaigns=self.campaigns,
            revenue=keep(self.revenue), contact_accounts=keep(self.contact_accounts), resolved=self.resolved,
            whole_market=False, targets_flagged=self.targets_flagged, revenue_rule=self.revenue_rule,
        )


def _build_kpi_data(data: ResolvedDataset) -> KPIData:
    from .journeys import account_touches

    ca = data.contact_accounts[["contact_id", "account_id"]].dropna(subset=["account_id"]).drop_duplicates(
        "contact_id")
    touches = account_touches(data)
    touches = touches[touches["account_id"].notna()]
    persona = data.contacts.set_index("contact_id")["persona"]
    persona = persona[~persona.index.duplicated()]
    touches = touches.assign(
        persona=touches["contact_id"].map(persona),
        is_engagement=touches["touch_type"].astype(object).isin(ENGAGEMENT_TOUCH_TYPES),
    )
    accounts = data.accounts.copy()
    accounts["size_band"] = size_band(accounts["employee_count"])
    contacts = data.contacts.merge(ca, on="contact_id", how="inner")
    return KPIData(accounts=accounts, contacts=contacts, touches=touches,
                   opportunities=data.opportunities, campaigns=data.campaigns,
                   revenue=data.revenue, contact_accounts=ca, resolved=data,
                   targets_flagged=data.targets_flagged)


def _data(dataset) -> KPIData:
    """The KPI view of ``dataset`` (built once per resolved dataset)."""
    if isinstance(dataset, KPIData):
        return dataset
    data = resolve(dataset)
    return data.memo(("kpi_data",), lambda: _build_kpi_data(data))


def _with_rule(data: KPIData, rule: "RevenueRule | None") -> KPIData:
    """``data`` counting customers by ``rule`` (itself when None)."""
    return data if rule is None else replace(data, revenue_rule=rule)


def _period(quarter=None, start=None, end=None, period: Period | None = None) -> Period:
    return period if period is not None else resolve_period(quarter=quarter, start=start, end=end)


def _addressable(data: KPIData) -> pd.DataFrame:
    """Target accounts when the data flags any, else every account."""
    if not data.targets_flagged:
        return data.accounts
    return data.accounts[data.accounts["is_target"].fillna(False).astype(bool)]


def _in(ts: pd.Series, p: Period) -> pd.Series:
    return ((ts >= p.start) & (ts < p.end)).fillna(False).astype(bool)


def _period_touches(data: KPIData, p: Period) -> pd.DataFrame:
    return data.touches[_in(data.touches["occurred_at"], p)]


# --------------------------------------------------------------------------- dataset KPIs
def market_reach(dataset, quarter=None, start=None, end=None, *, period: Period | None = None) -> KPIResult:
    """market reach = addressable accounts with any touch in the period (impressions
    count) / addressable accounts. Addressable = target accounts (``is_target``) when
    the data flags any, else all accounts."""
    data, p = _data(dataset), _period(quarter, start, end, period)
    addr = _addressable(data)["account_id"]
    reached = _period_touches(data, p)["account_id"]
    return market_reach_from_counts(addr.isin(reached).sum(), len(addr))


def account_engagement(dataset, quarter=None, start=None, end=None, *, period: Period | None = None) -> KPIResult:
    """account engagement = sum over addressable accounts of their interactions
    (engagement touches: every touch type except impression and email_open) in the
    period; the denominator is the number of addressable accounts (for a per-account mean)."""
    data, p = _data(dataset), _period(quarter, start, end, period)
    addr = _addressable(data)["account_id"]
    t = _period_touches(data, p)
    per_account = t[t["is_engagement"] & t["account_id"].isin(addr)].groupby("account_id").size()
    r = account_engagement_from_counts(per_account.values)
    return replace(r, denominator=float(len(addr)))


def audience_exposure_time(dataset, quarter=None, start=None, end=None, *, period: Period | None = None) -> KPIResult:
    """audience exposure time = sum of ``engagement_seconds`` of touches of addressable
    accounts in the period, in hours (seconds / 3600)."""
    data, p = _data(dataset), _period(quarter, start, end, period)
    addr = _addressable(data)["account_id"]
    t = _period_touches(data, p)
    return audience_exposure_time_from_counts(t.loc[t["account_id"].isin(addr), "engagement_seconds"].values)


def _mqa_ids_at_end(data: KPIData, p: Period) -> pd.Index:
    """Accounts of ``data`` meeting the resolved dataset's MQA rule at the period end
    (:func:`abmkit.engagement.mqa_accounts_at`: the one MQA definition)."""
    ids = mqa_accounts_at(data.resolved, p.end)
    return ids[ids.isin(data.accounts["account_id"])]


def mqa_accounts(dataset, quarter=None, start=None, end=None, *, period: Period | None = None) -> KPIResult:
    """MQA accounts = target accounts meeting the MQA rule at the period end (the
    resolved dataset's :class:`~abmkit.prepared.MQARule`, by default ≥ 3 engaged
    decision makers in the trailing 90 days); the denominator is the target
    population, so ``numerator/denominator`` is the MQA share."""
    data, p = _data(dataset), _period(quarter, start, end, period)
    addr = _addressable(data)["account_id"]
    n = int(_mqa_ids_at_end(data, p).isin(addr).sum())
    return mqa_accounts_from_counts(n, len(addr))


def new_mqas(dataset, quarter=None, start=None, end=None, *, period: Period | None = None) -> KPIResult:
    """New MQAs = target accounts that met the MQA rule for the first time during the
    period (first ``mqa_at`` in ``[start, end)``); denominator: the target population."""
    data, p = _data(dataset), _period(quarter, start, end, period)
    addr = _addressable(data)["account_id"]
    first = data.resolved.mqa_dates
    new = first.loc[_in(first["mqa_at"], p).to_numpy(), "account_id"]
    n = float(pd.Index(new).isin(addr).sum())
    return KPIResult("new_mqas", n, n, float(len(addr)), "accounts")


def _influenced_mask(data: KPIData, opps: pd.DataFrame, lookback_days: int = LOOKBACK_DAYS) -> pd.Series:
    """Opportunities with at least one touch of their account in
    [created_at − lookback, created_at]."""
    if opps.empty:
        return pd.Series(False, index=opps.index)
    t = data.touches[["account_id", "occurred_at"]]
    o = opps[["opportunity_id", "account_id", "created_at"]].merge(t, on="account_id", how="inner")
    lo = o["created_at"] - pd.Timedelta(days=lookback_days)
    hit = o[(o["occurred_at"] >= lo) & (o["occurred_at"] <= o["created_at"])]["opportunity_id"]
    return opps["opportunity_id"].isin(hit)


def influenced_pipeline(dataset, quarter=None, start=None, end=None, *, period: Period | None = None,
                        lookback_days: int = LOOKBACK_DAYS) -> KPIResult:
    """influenced pipeline (touched before) = sum of ``amount`` of opportunities created
    in the period that have at least one touch of their account in the ``lookback_days``
    before creation (an attributed touch). It says the account was touched before, not
    that marketing caused the pipeline: the caused part is the incremental pipeline
    (:func:`abmkit.incremental_value.incremental_value`)."""
    data, p = _data(dataset), _period(quarter, start, end, period)
    o = data.opportunities[_in(data.opportunities["created_at"], p)]
    m = _influenced_mask(data, o, lookback_days)
    return influenced_pipeline_from_counts(o.loc[m, "amount"].values)


def _closed(data: KPIData, p: Period) -> pd.DataFrame:
    o = data.opportunities
    closed = o["is_closed"].fillna(False).astype(bool) | o["closed_at"].notna()
    return o[closed & _in(o["closed_at"], p)]


def _won(data: KPIData, p: Period) -> pd.DataFrame:
    c = _closed(data, p)
    return c[c["is_won"].fillna(False).astype(bool)]


def _left_out_note(n_bad: int, kind: str) -> str:
    """The note of a velocity that left out opportunities closed before they were created."""
    one = n_bad == 1
    return (f"{n_bad} {kind}opportunit{'y' if one else 'ies'} closed before {'it was' if one else 'they were'} "
            f"created {'is' if one else 'are'} left out (data check closed_before_created)")


def pipeline_velocity(dataset, quarter=None, start=None, end=None, *, period: Period | None = None) -> KPIResult:
    """pipeline velocity = mean days from opportunity creation to close, over
    opportunities closed (won or lost) in the period. Its change between periods is
    :func:`velocity_change` (120 → 100 = −20 days). Opportunities closed more than a day
    before they were created are left out and counted in ``note``."""
    data, p = _data(dataset), _period(quarter, start, end, period)
    c = _closed(data, p)
    # closed more than a day before created (data check closed_before_created, abmkit.clean.sanity):
    # no duration to measure, so left out and counted in the note; a date-only close on the
    # creation day (midnight, before the creation time) counts as 0 days
    from .clean.sanity import closed_before_created
    bad = closed_before_created(c)
    days = ((c["closed_at"] - c["created_at"]) / pd.Timedelta(days=1))[~bad].clip(lower=0)
    res = pipeline_velocity_from_counts(days.values)
    n_bad = int(bad.sum())
    if n_bad:
        res = replace(res, note=_left_out_note(n_bad, ""))
    return res


def win_rate(dataset, quarter=None, start=None, end=None, *, period: Period | None = None) -> KPIResult:
    """win rate (sales convention) = opportunities won in the period / opportunities
    closed (won or lost) in the period, every opportunity type counted."""
    data, p = _data(dataset), _period(quarter, start, end, period)
    return win_rate_from_counts(len(_won(data, p)), len(_closed(data, p)))


#: default horizon of the MQA-to-win rate: an MQA cohort is followed for a year
MQA_WIN_HORIZON_DAYS = 365


def mqa_cohort(dataset, period: Period, horizon_days: float = MQA_WIN_HORIZON_DAYS) -> pd.DataFrame:
    """The MQA cohort whose horizon closes in ``period``: target accounts that first met
    the MQA rule in the window ``[period.start − horizon, period.end − horizon)`` (the
    period moved back by the horizon), each with ``mqa_at``, ``horizon_end`` = mqa_at +
    horizon and ``won``: a won deal (any type but renewal) closed in ``[mqa_at,
    horizon_end]``."""
    data = _data(dataset)
    h = pd.Timedelta(days=horizon_days)
    first = data.resolved.mqa_dates
    addr = _addressable(data)["account_id"]
    c = first[_in(first["mqa_at"], Period(period.start - h, period.end - h, "cohort")).to_numpy()
              & first["account_id"].isin(addr).to_numpy()][["account_id", "mqa_at"]].copy()
    c["horizon_end"] = c["mqa_at"] + h
    o = data.opportunities
    won = o["is_won"].fillna(False).astype(bool) & o["closed_at"].notna()
    if "opportunity_type" in o:  # a renewal is kept business, not a deal the MQA won
        won &= o["opportunity_type"].astype(object).fillna("").ne("renewal")
    w = c.merge(o.loc[won, ["account_id", "closed_at"]], on="account_id", how="inner")
    hit = w.loc[(w["closed_at"] >= w["mqa_at"]) & (w["closed_at"] <= w["horizon_end"]), "account_id"]
    c["won"] = c["account_id"].isin(hit)
    return c.reset_index(drop=True)


def mqa_to_win_rate(dataset, quarter=None, start=None, end=None, *, period: Period | None = None,
                    horizon_days: float = MQA_WIN_HORIZON_DAYS) -> KPIResult:
    """MQA-to-win rate = accounts of the MQA cohort that won a deal within
    ``horizon_days`` (default 365) of becoming MQA / accounts in the cohort. The cohort
    (:func:`mqa_cohort`): target accounts that first became MQA in the period moved back
    by the horizon, so every cohort member has been followed for the whole horizon by the
    period end. n/a when the horizon is not yet observed (the period ends after the data
    end) or no account became MQA in the cohort window."""
    data, p = _data(dataset), _period(quarter, start, end, period)
    h = pd.Timedelta(days=horizon_days)
    if p.end > data.resolved.data_end + pd.Timedelta(days=1):
        return KPIResult("mqa_to_win_rate", float("nan"), note=not_applicable_note(
            f"the {horizon_days:g}-day horizon of the MQA cohort is not yet observed (period ends "
            f"{p.end:%Y-%m-%d}, data end {data.resolved.data_end:%Y-%m-%d})"))
    c = mqa_cohort(data, p, horizon_days)
    if c.empty:
        return KPIResult("mqa_to_win_rate", float("nan"), note=not_applicable_note(
            f"no target account became MQA in the cohort window {p.start - h:%Y-%m-%d} to "
            f"{p.end - h - pd.Timedelta(days=1):%Y-%m-%d} ({horizon_days:g} days before the period)"))
    return mqa_to_win_rate_from_counts(int(c["won"].sum()), len(c))


def average_deal_size(dataset, quarter=None, start=None, end=None, *, period: Period | None = None) -> KPIResult:
    """average deal size = sum of ``amount`` of opportunities won in the period /
    number of opportunities won in the period."""
    data, p = _data(dataset), _period(quarter, start, end, period)
    w = _won(data, p)
    return average_deal_size_from_counts(w["amount"].sum(), len(w))


# ---- retention and growth (revenue table; customers also from closed-won history)
@dataclass(frozen=True)
class RevenueRule:
    """How the revenue table says who is a customer (the revenue state rule).

    A customer is an account whose latest revenue row has recurring revenue > 0 **and
    is recent**: a customer with no revenue row in ``churn_after_missing_periods``
    consecutive revenue periods is churned (default 1: one missing period = churned), so
    silence never counts as retention. ``period_months`` is the length of one revenue
    period (the cadence of the rows: 3 for quarterly rows); None infers it from the
    data (the most common gap between an account's consecutive rows, 3 when no account
    has two rows). The state at an instant ``t`` reads the rows whose period started in
    ``[t − churn_after_missing_periods × period_months, t)``.

    >>> RevenueRule().churn_after_missing_periods
    1
    """
    churn_after_missing_periods: int = 1
    period_months: int | None = None

    def __post_init__(self):
        if int(self.churn_after_missing_periods) < 1:
            raise ValueError("churn_after_missing_periods must be at least 1")
        if self.period_months is not None and int(self.period_months) < 1:
            raise ValueError("period_months must be at least 1 (or None to infer it)")


def revenue_period_months(revenue: pd.DataFrame, default: int = 3) -> int:
    """Months between an account's consecutive revenue rows, the most common gap (the
    revenue period: 3 for quarterly rows, 1 for monthly); ``default`` when no account has
    two rows.

    >>> r = pd.DataFrame({"account_id": ["a", "a", "b", "b"],
    ...                   "period_start": pd.to_datetime(["2026-01-01", "2026-04-01", "2026-04-01", "2026-07-01"])})
    >>> revenue_period_months(r)
    3
    """
    if revenue.empty:
        return default
    ps = pd.to_datetime(revenue["period_start"])
    month = (ps.dt.year * 12 + ps.dt.month).to_numpy()
    r = pd.DataFrame({"a": revenue["account_id"].to_numpy(), "m": month}).drop_duplicates().sort_values(["a", "m"])
    gap = r.groupby("a")["m"].diff()
    gap = gap[gap > 0]
    return int(gap.mode().min()) if len(gap) else default


def _rule(data: KPIData, rule: "RevenueRule | None" = None) -> tuple[int, int]:
    """(missing periods that churn, months per revenue period) of ``rule`` (default: the
    KPI view's rule), the period inferred once per dataset from the whole revenue table."""
    rule = rule or data.revenue_rule
    months = rule.period_months or data.resolved.memo(
        ("revenue_period_months",), lambda: revenue_period_months(data.resolved.revenue))
    return int(rule.churn_after_missing_periods), int(months)


def _window_start(when: pd.Timestamp, months: int) -> pd.Timestamp:
    return when - pd.DateOffset(months=months)


def _revenue_at(data: KPIData, before: pd.Timestamp, rule: "RevenueRule | None" = None) -> pd.DataFrame:
    """The revenue state at ``before``: per account, its latest revenue row whose period
    started in ``[before − k × period, before)`` (k = ``churn_after_missing_periods``).
    An account without such a row is not a customer at ``before`` (churned or never one)."""
    k, months = _rule(data, rule)
    ps = data.revenue["period_start"]
    r = data.revenue[(ps < before) & (ps >= _window_start(before, k * months))]
    if r.empty:
        return r
    return r.sort_values("period_start").drop_duplicates("account_id", keep="last")


def revenue_observed_note(dataset, when: pd.Timestamp, rule: "RevenueRule | None" = None) -> str:
    """"" when the revenue table has rows for the revenue period just before ``when``
    (so the revenue state there is known), else an "n/a — ..." note: without those rows
    every customer would look churned (an export that lags the period, or a date before
    the revenue history)."""
    data = _data(dataset)
    _, months = _rule(data, rule)
    ps = data.resolved.revenue["period_start"]  # the whole table: a segment may have no customer
    if bool(((ps < when) & (ps >= _window_start(when, months))).any()):
        return ""
    return not_applicable_note(f"no revenue rows for the {months}-month revenue period before "
                               f"{when:%Y-%m-%d} (revenue state unknown)")


def _customers_at(data: KPIData, when: pd.Timestamp, rule: "RevenueRule | None" = None) -> pd.Index:
    """Customers at ``when``: recurring revenue > 0 in their revenue state at ``when``
    (:class:`RevenueRule`) when the data has a revenue table, else a closed-won
    opportunity before it."""
    if not data.revenue.empty or not data.resolved.revenue.empty:
        r = _revenue_at(data, when, rule)
        return pd.Index(r.loc[r["recurring_revenue"] > 0, "account_id"].unique()) if len(r) else pd.Index([])
    o = data.opportunities
    won = o["is_won"].fillna(False).astype(bool) & (o["closed_at"] < when).fillna(False).astype(bool)
    return pd.Index(o.loc[won, "account_id"].unique())


_NO_REVENUE = "needs the optional revenue table"


def _revenue_na(name: str, data: KPIData, whens, rule, unit: str = "ratio") -> KPIResult | None:
    """n/a result of ``name`` when the revenue table is missing or its state at one of
    ``whens`` is unknown, else None."""
    if data.resolved.revenue.empty:
        return KPIResult(name, float("nan"), unit=unit, note=_NO_REVENUE)
    for w in whens:
        note = revenue_observed_note(data, w, rule)
        if note:
            return KPIResult(name, float("nan"), unit=unit, note=note)
    return None


def retention_rate(dataset, quarter=None, start=None, end=None, *, period: Period | None = None,
                   revenue_rule: RevenueRule | None = None) -> KPIResult:
    """retention rate = customers at the period start still customers at the period
    end / customers at the period start. A customer at an instant has recurring revenue
    > 0 in a revenue row of the revenue period just before it; no row = churned
    (:class:`RevenueRule`). Needs the revenue table."""
    data, p = _data(dataset), _period(quarter, start, end, period)
    na = _revenue_na("retention_rate", data, (p.start, p.end), revenue_rule)
    if na:
        return na
    start_c = _customers_at(data, p.start, revenue_rule)
    end_c = _customers_at(data, p.end, revenue_rule)
    return retention_rate_from_counts(start_c.isin(end_c).sum(), len(start_c))


def product_adoption(dataset, quarter=None, start=None, end=None, *, period: Period | None = None,
                     revenue_rule: RevenueRule | None = None) -> KPIResult:
    """product adoption = customers at the period end (:class:`RevenueRule`) whose
    revenue row has ``active_users`` > 0 / customers at the period end. Needs the revenue
    table."""
    data, p = _data(dataset), _period(quarter, start, end, period)
    if data.revenue.empty or data.revenue["active_users"].isna().all():
        return KPIResult("product_adoption", float("nan"), note=_NO_REVENUE + " with active_users")
    na = _revenue_na("product_adoption", data, (p.end,), revenue_rule)
    if na:
        return na
    r = _revenue_at(data, p.end, revenue_rule)
    cust = r[r["recurring_revenue"] > 0]
    return product_adoption_from_counts((cust["active_users"] > 0).sum(), len(cust))


def _sold_rate(data: KPIData, p: Period, kind: str):
    start_c = _customers_at(data, p.start)
    w = _won(data, p)
    sold = w.loc[w["opportunity_type"] == kind, "account_id"]
    return start_c.isin(sold).sum(), len(start_c)


def upsell_rate(dataset, quarter=None, start=None, end=None, *, period: Period | None = None) -> KPIResult:
    """upsell rate = customers at the period start with an ``upsell`` opportunity won in
    the period / customers at the period start."""
    data, p = _data(dataset), _period(quarter, start, end, period)
    return upsell_rate_from_counts(*_sold_rate(data, p, "upsell"))


def cross_sell_rate(dataset, quarter=None, start=None, end=None, *, period: Period | None = None) -> KPIResult:
    """cross-sell rate = customers at the period start with a ``cross_sell``
    opportunity won in the period / customers at the period start."""
    data, p = _data(dataset), _period(quarter, start, end, period)
    return cross_sell_rate_from_counts(*_sold_rate(data, p, "cross_sell"))


def _revenue_change(data: KPIData, t0: pd.Timestamp, t1: pd.Timestamp, rule=None) -> pd.DataFrame:
    """Customers at ``t0`` with their recurring revenue then and at ``t1`` (0 when
    churned by ``t1`` under the revenue state rule)."""
    s = _revenue_at(data, t0, rule)
    s = s.loc[s["recurring_revenue"] > 0, ["account_id", "recurring_revenue"]] if len(s) else \
        pd.DataFrame(columns=["account_id", "recurring_revenue"])
    e = _revenue_at(data, t1, rule)
    e = e[["account_id", "recurring_revenue"]] if len(e) else pd.DataFrame(columns=["account_id", "recurring_revenue"])
    m = s.merge(e, on="account_id", how="left", suffixes=("_start", "_end"))
    m["recurring_revenue_end"] = m["recurring_revenue_end"].astype(float).fillna(0.0)
    return m


def _nrr(name: str, data: KPIData, t0: pd.Timestamp, t1: pd.Timestamp, rule, what: str = "") -> KPIResult:
    na = _revenue_na(name, data, (t0, t1), rule)
    if na:
        return replace(na, note=not_applicable_note(what + na.note[len("n/a — "):])) if what and \
            na.note.startswith("n/a — ") else na
    m = _revenue_change(data, t0, t1, rule)
    if m.empty:
        return KPIResult(name, float("nan"), note=not_applicable_note(
            f"needs customers at {t0:%Y-%m-%d}: no account had recurring revenue in the revenue period before it"))
    delta = m["recurring_revenue_end"] - m["recurring_revenue_start"].astype(float)
    r = net_revenue_retention_from_counts(m["recurring_revenue_start"].astype(float).sum(),
                                          delta.clip(lower=0).sum(), (-delta).clip(lower=0).sum())
    return replace(r, name=name)


def net_revenue_retention(dataset, quarter=None, start=None, end=None, *, period: Period | None = None,
                          revenue_rule: RevenueRule | None = None, months: int = 12) -> KPIResult:
    """NRR (trailing 12 months) = (start + expansion − churn) / start over the customers
    of 12 months before the period end: start = their recurring revenue then; expansion
    = sum of increases, churn = sum of decreases (contraction, and the whole revenue of a
    customer churned by the period end under :class:`RevenueRule`) to their revenue in
    the period's last revenue period. New customers do not count. ``months`` changes the
    look-back. Needs the revenue table and revenue rows 12 months back."""
    data, p = _data(dataset), _period(quarter, start, end, period)
    return _nrr("net_revenue_retention", data, p.end - pd.DateOffset(months=months), p.end, revenue_rule,
                f"trailing NRR needs revenue {months} months back: ")


def net_revenue_retention_qoq(dataset, quarter=None, start=None, end=None, *, period: Period | None = None,
                              revenue_rule: RevenueRule | None = None) -> KPIResult:
    """NRR (quarter on quarter) = (start + expansion − churn) / start over the customers
    at the period start, from the revenue just before the period start to the revenue
    just before its end (for a quarter: this quarter's revenue against the previous
    quarter's; for another period, period on period). Same rule as
    :func:`net_revenue_retention` otherwise."""
    data, p = _data(dataset), _period(quarter, start, end, period)
    return _nrr("net_revenue_retention_qoq", data, p.start, p.end, revenue_rule)


def buying_group_coverage(dataset, quarter=None, start=None, end=None, *, period: Period | None = None) -> KPIResult:
    """buying-group coverage = contacts of addressable accounts with an engagement touch
    in the period / all known (mapped) contacts of addressable accounts (the buying group)."""
    data, p = _data(dataset), _period(quarter, start, end, period)
    addr = _addressable(data)["account_id"]
    group = data.contacts[data.contacts["account_id"].isin(addr)]["contact_id"]
    t = _period_touches(data, p)
    engaged = t.loc[t["is_engagement"], "contact_id"]
    return buying_group_coverage_from_counts(group.isin(engaged).sum(), len(group))


def opportunity_creation(dataset, quarter=None, start=None, end=None, *, period: Period | None = None) -> KPIResult:
    """opportunity creation = number of opportunities created in the period."""
    data, p = _data(dataset), _period(quarter, start, end, period)
    return opportunity_creation_from_counts(_in(data.opportunities["created_at"], p).sum())


def deal_velocity(dataset, quarter=None, start=None, end=None, *, period: Period | None = None,
                  lookback_days: int = LOOKBACK_DAYS) -> KPIResult:
    """deal velocity = mean days from the account's first touch (within
    ``lookback_days`` before the opportunity's creation) to close, over opportunities won
    in the period that have such a touch (the whole account journey, unlike
    :func:`pipeline_velocity` which starts at opportunity creation). Won opportunities
    closed more than a day before they were created are left out and counted in ``note``."""
    data, p = _data(dataset), _period(quarter, start, end, period)
    w = _won(data, p)[["opportunity_id", "account_id", "created_at", "closed_at"]]
    # won deals closed more than a day before they were created (data check closed_before_created,
    # abmkit.clean.sanity) have no journey to measure: left out and counted in the note
    from .clean.sanity import closed_before_created
    bad = closed_before_created(w)
    w = w[~bad]
    t = data.touches[["account_id", "occurred_at"]]
    j = w.merge(t, on="account_id", how="inner")
    j = j[(j["occurred_at"] >= j["created_at"] - pd.Timedelta(days=lookback_days)) & (j["occurred_at"] <= j["closed_at"])]
    first = j.groupby("opportunity_id").agg(first=("occurred_at", "min"), closed=("closed_at", "first"))
    res = deal_velocity_from_counts(((first["closed"] - first["first"]) / pd.Timedelta(days=1)).values)
    n_bad = int(bad.sum())
    if n_bad:
        res = replace(res, note=_left_out_note(n_bad, "won "))
    return res


def customer_lifetime_value(dataset, quarter=None, start=None, end=None, *, period: Period | None = None,
                            revenue_rule: RevenueRule | None = None) -> KPIResult:
    """customer lifetime value = recurring revenue per customer in the period (sum of
    the revenue rows with ``period_start`` in the period / customers with revenue > 0 in
    it) / churn rate of the period (1 − :func:`retention_rate`, churn by the revenue
    state rule :class:`RevenueRule`). n/a without churn (lifetime unbounded) or without
    the revenue table."""
    data, p = _data(dataset), _period(quarter, start, end, period)
    na = _revenue_na("customer_lifetime_value", data, (p.start, p.end), revenue_rule, "currency")
    if na:
        return na
    r = data.revenue[_in(data.revenue["period_start"], p)]
    per_customer = r.groupby("account_id")["recurring_revenue"].sum()
    per_customer = per_customer[per_customer > 0]
    arpa = per_customer.mean() if len(per_customer) else float("nan")
    churn = 1.0 - retention_rate(data, period=p, revenue_rule=revenue_rule).value
    res = customer_lifetime_value_from_counts(arpa, churn)
    return replace(res, note="" if churn else "n/a — no churn in the period: lifetime unbounded")


_WHOLE_MARKET = "n/a — whole market only: campaign costs are not split by account"


def _campaign_cost(data: KPIData, p: Period) -> float:
    """Campaign cost spread evenly over each campaign's days [start_date, end_date]
    (end inclusive; a missing end = a one-day campaign) and summed over the days inside
    the period. Campaigns without a start date cannot be placed in time and are left out."""
    return campaign_cost_in(data.campaigns, p)


def campaign_cost_in(campaigns: pd.DataFrame, p: Period) -> float:
    """Cost of ``campaigns`` falling in period ``p`` (each spread evenly over its days,
    end inclusive); NaN when no campaign has a cost."""
    c = campaigns
    if c.empty or c["cost"].isna().all():
        return float("nan")
    c = c[c["cost"].notna()]
    s = c["start_date"]
    e = c["end_date"].fillna(s) + pd.Timedelta(days=1)  # end_date inclusive
    length = (e - s) / pd.Timedelta(days=1)
    lo = s.where(s > p.start, p.start)
    hi = e.where(e < p.end, p.end)
    overlap = ((hi - lo) / pd.Timedelta(days=1)).clip(lower=0)
    share = (overlap / length).where(length > 0, 0.0).fillna(0.0)
    return float((c["cost"] * share).sum())


def _acquired_accounts(data: KPIData, p: Period) -> pd.Index:
    o = data.opportunities
    won = o[o["is_won"].fillna(False).astype(bool) & o["closed_at"].notna()]
    first = won.groupby("account_id")["closed_at"].min()
    return first.index[_in(first, p).values]


def cost_per_acquired_account(dataset, quarter=None, start=None, end=None, *, period: Period | None = None) -> KPIResult:
    """cost per acquired account = campaign cost falling in the period (each campaign's
    cost spread evenly over its dates) / accounts whose first closed-won opportunity
    closed in the period. NaN when no campaign has a cost. Not segmentable (campaign
    costs are not split by account)."""
    data, p = _data(dataset), _period(quarter, start, end, period)
    if not data.whole_market:
        return KPIResult("cost_per_acquired_account", float("nan"), unit="currency", note=_WHOLE_MARKET)
    return cost_per_acquired_account_from_counts(_campaign_cost(data, p), len(_acquired_accounts(data, p)))


def roi(dataset, quarter=None, start=None, end=None, *, period: Period | None = None,
        lookback_days: int = LOOKBACK_DAYS) -> KPIResult:
    """ROI (touched before) = (won amount of opportunities closed-won in the period with
    an attributed touch − campaign cost falling in the period) / that campaign cost: it
    credits marketing with every touched deal, caused or not (the caused version is the
    incremental ROI, :func:`abmkit.incremental_value.incremental_value`). NaN when no
    campaign has a cost. Not segmentable (campaign costs are not split by account)."""
    data, p = _data(dataset), _period(quarter, start, end, period)
    if not data.whole_market:
        return KPIResult("roi", float("nan"), note=_WHOLE_MARKET)
    w = _won(data, p)
    revenue = w.loc[_influenced_mask(data, w, lookback_days), "amount"].sum()
    return roi_from_counts(revenue, _campaign_cost(data, p))


# --------------------------------------------------------------------------- applicability
#: the unit of every KPI (also when it is not applicable)
KPI_UNITS: dict[str, str] = {
    "market_reach": "ratio", "account_engagement": "interactions", "audience_exposure_time": "hours",
    "mqa_accounts": "accounts", "new_mqas": "accounts", "buying_group_coverage": "ratio",
    "opportunity_creation": "opportunities", "influenced_pipeline": "currency", "pipeline_velocity": "days",
    "deal_velocity": "days", "win_rate": "ratio", "mqa_to_win_rate": "ratio",
    "average_deal_size": "currency", "cost_per_acquired_account": "currency", "roi": "ratio",
    "retention_rate": "ratio", "net_revenue_retention": "ratio", "net_revenue_retention_qoq": "ratio",
    "product_adoption": "ratio",
    "upsell_rate": "ratio", "cross_sell_rate": "ratio", "customer_lifetime_value": "currency",
}


def _structural(data: KPIData, name: str):
    """The KPI's table and column needs on the whole dataset (computed once per dataset)."""
    return data.resolved.memo(("kpi_applicability", name), lambda: _check(data.resolved, name))


def _declared(fn: Callable[..., KPIResult]) -> Callable[..., KPIResult]:
    """A dataset KPI that checks its needs (:data:`KPI_NEEDS`): n/a (value NaN, note
    "n/a — <reason>") when a table or column it needs is missing or empty, or when it
    comes out undefined (the reason: the data need it lacks in the period)."""
    name = fn.__name__

    @functools.wraps(fn)
    def kpi(dataset, quarter=None, start=None, end=None, *, period: Period | None = None, **kwargs) -> KPIResult:
        data, p = _data(dataset), _period(quarter, start, end, period)
        app = _structural(data, name)
        if not app:
            return KPIResult(name, float("nan"), unit=KPI_UNITS[name], note=app.note)
        r = fn(data, period=p, **kwargs)
        if not math.isnan(r.value) or is_not_applicable_note(r.note):
            return r
        app = _check(data, name, p)   # which data of the period is missing
        return replace(r, note=app.note if not app else not_applicable_note(r.note or "undefined in this period"))
    kpi.__wrapped_kpi__ = fn
    return kpi


#: what every KPI needs (tables, columns with a value, data in the period); the one
#: declaration is abmkit.applicability.KPI_NEEDS
KPI_NEEDS = KPI_NEEDS

# --------------------------------------------------------------------------- table
#: KPI groups, in display order
KPI_GROUPS: dict[str, tuple[str, ...]] = {
    "reach and engagement": ("market_reach", "account_engagement", "audience_exposure_time",
                             "mqa_accounts", "new_mqas", "buying_group_coverage"),
    "pipeline and conversion": ("opportunity_creation", "influenced_pipeline", "pipeline_velocity",
                                "deal_velocity", "win_rate", "mqa_to_win_rate", "average_deal_size",
                                "cost_per_acquired_account", "roi"),
    "retention and growth": ("retention_rate", "net_revenue_retention", "net_revenue_retention_qoq",
                             "product_adoption", "upsell_rate", "cross_sell_rate", "customer_lifetime_value"),
}
# every dataset KPI checks its needs first (the formulas above stay as written)
for _name in (n for names in KPI_GROUPS.values() for n in names):
    globals()[_name] = _declared(globals()[_name])
KPI_FUNCTIONS: dict[str, Callable[..., KPIResult]] = {
    name: globals()[name] for names in KPI_GROUPS.values() for name in names
}
_GROUP_OF = {n: g for g, names in KPI_GROUPS.items() for n in names}


@dataclass
class KPITable(Result):
    """:func:`kpi_table` result.

    ``overall``: one row per KPI (group, kpi, unit, value, numerator, denominator,
    previous, change, change_pct). ``segments``: long table (segment, segment_value,
    kpi, value, numerator, denominator, previous, change).
    """
    period: Period
    overall: pd.DataFrame
    segments: pd.DataFrame = field(default_factory=pd.DataFrame)

    def to_frame(self) -> pd.DataFrame:
        return self.overall

    _summary_title = "ABM KPIs"

    def _summary_metadata(self) -> dict:
        return {"period": self.period.label, "previous_period": self.period.previous.label}

    @property
    def summary(self) -> pd.DataFrame:
        """One row per KPI: group, kpi, unit, value, previous, change, change_pct."""
        cols = ["group", "kpi", "unit", "value", "previous", "change", "change_pct"]
        return self.overall[[c for c in cols if c in self.overall.columns]].copy()


#: the population each KPI is counted on: "target" (target accounts when the data
#: flags any, else all accounts), "all" (every account), "customers" (customers at
#: the period start, from the revenue table), "customers_end" (customers at the period end),
#: "customers_year_before" (customers 12 months before the period end: trailing NRR),
#: "mqa_cohort" (target accounts that became MQA one horizon before the period)
KPI_POPULATION: dict[str, str] = {
    **{k: "target" for k in ("market_reach", "account_engagement", "audience_exposure_time", "mqa_accounts",
                             "new_mqas", "buying_group_coverage")},
    "mqa_to_win_rate": "mqa_cohort",
    **{k: "all" for k in ("opportunity_creation", "influenced_pipeline", "pipeline_velocity", "deal_velocity",
                          "win_rate", "average_deal_size", "cost_per_acquired_account", "roi")},
    **{k: "customers" for k in ("retention_rate", "net_revenue_retention_qoq", "upsell_rate", "cross_sell_rate",
                                "customer_lifetime_value")},
    "net_revenue_retention": "customers_year_before",
    "product_adoption": "customers_end",
}


def population_of(kpi: str, dataset, period: Period) -> tuple[str, int]:
    """``(label, size)`` of the accounts ``kpi`` is counted on in ``period``, e.g.
    ``("target accounts", 831)``: every tile and table names it."""
    data = _data(dataset)
    kind = KPI_POPULATION[kpi]
    if kind == "target":
        label = TARGET_POPULATION if data.targets_flagged else ALL_ACCOUNTS
        return label, int(len(_addressable(data)))
    if kind == "customers":
        return "customers at period start", int(len(_customers_at(data, period.start)))
    if kind == "customers_end":
        return "customers at period end", int(len(_customers_at(data, period.end)))
    if kind == "mqa_cohort":
        h = pd.Timedelta(days=MQA_WIN_HORIZON_DAYS)
        lo, hi = period.start - h, period.end - h - pd.Timedelta(days=1)
        size = len(mqa_cohort(data, period)) if len(data.touches) else 0
        return f"MQAs of {lo:%d %b %Y}–{hi:%d %b %Y}, followed {MQA_WIN_HORIZON_DAYS} d", int(size)
    if kind == "customers_year_before":
        return "customers 12 months before period end", int(len(_customers_at(
            data, period.end - pd.DateOffset(months=12))))
    return ALL_ACCOUNTS, int(len(data.accounts))


def _evaluate(data: KPIData, p: Period) -> list[KPIResult]:
    out = []
    populations: dict[str, tuple[str, int]] = {}  # population_of depends only on the KPI's kind
    for name, fn in KPI_FUNCTIONS.items():
        kind = KPI_POPULATION[name]
        if kind not in populations:
            populations[kind] = population_of(name, data, p)
        label, size = populations[kind]
        out.append(replace(fn(data, period=p), population=label, population_size=float(size)))
    return out


def _rows(current: list[KPIResult], previous: list[KPIResult]) -> pd.DataFrame:
    rows = []
    for c, pr in zip(current, previous):
        change = c.value - pr.value
        rows.append({
            "group": _GROUP_OF[c.name], "kpi": c.name, "unit": c.unit, "value": c.value,
            "numerator": c.numerator, "denominator": c.denominator,
            "population": c.population, "population_size": c.population_size, "previous": pr.value,
            "change": change, "change_pct": change / abs(pr.value) if pr.value else float("nan"),
            # the current period's note; else what the previous period's says (so an n/a note
            # always belongs to this row's own value)
            "note": c.note or (f"previous period: {pr.note}" if pr.note else ""),
        })
    return pd.DataFrame(rows)


def _segment_order(segment: str):
    """Sort key of segment values: size bands small to large, numbers numerically,
    text alphabetically, "unknown" last."""
    bands = {lab: i for i, (_, lab) in enumerate(SIZE_BANDS)}

    def key(v: str):
        if v == "unknown":
            return (2, 0.0, v)
        if segment == "size_band" and v in bands:
            return (0, float(bands[v]), v)
        try:
            return (0, float(v), v)
        except ValueError:
            return (1, 0.0, v)
    return key


def kpi_table(dataset, quarter=None, start=None, end=None,
              segments: Iterable[str] = ("industry", "size_band", "tier"), *,
              revenue_rule: RevenueRule | None = None) -> KPITable:
    """Every KPI for the period and the previous period of the same length, with the
    change, plus a long breakdown by account segment.

    Parameters
    ----------
    dataset : Dataset or KPIData
    quarter, start, end : see :func:`abmkit.period.resolve_period`; when all are None,
        the last complete quarter of the data (:func:`last_complete_quarter`).
    segments : account columns to break down by (``size_band`` is derived from
        ``employee_count``); ``()`` for none.
    revenue_rule : who is a customer in the revenue table (:class:`RevenueRule`;
        default: one missing revenue period = churned).

    Example
    -------
    >>> t = kpi_table(ds, quarter="2026Q3")        # doctest: +SKIP
    >>> t.overall.set_index("kpi").loc["market_reach", ["value", "previous", "change"]]  # doctest: +SKIP
    """
    from .engine import is_partitioned, run
    if is_partitioned(dataset):  # a partitioned dataset: the same table from its partitions (docs/scale.md)
        return run("kpi_table", dataset, quarter, start, end, segments, revenue_rule=revenue_rule)
    data = _with_rule(_data(dataset), revenue_rule)
    if quarter is None and start is None and end is None:
        stamps = data.touches["occurred_at"] if len(data.touches) else data.opportunities["created_at"]
        quarter = last_complete_quarter(stamps)
    p = resolve_period(quarter=quarter, start=start, end=end)
    overall = _rows(_evaluate(data, p), _evaluate(data, p.previous))
    seg_frames = []
    for seg in segments:
        if seg not in data.accounts.columns:
            raise ValueError(f"segment {seg!r} is not an account column; available: {list(data.accounts.columns)}")
        values = data.accounts[seg].astype(object).where(data.accounts[seg].notna(), "unknown").astype(str)
        groups = dict(list(data.accounts["account_id"].groupby(values.values)))
        for val in sorted(groups, key=_segment_order(seg)):
            ids = groups[val]
            sub = data.subset(ids)
            f = _rows(_evaluate(sub, p), _evaluate(sub, p.previous))
            f.insert(0, "segment_value", val)
            f.insert(0, "segment", seg)
            seg_frames.append(f)
    seg_df = pd.concat(seg_frames, ignore_index=True) if seg_frames else pd.DataFrame()
    return KPITable(period=p, overall=overall, segments=seg_df)


def last_complete_quarter(timestamps: pd.Series, today: pd.Timestamp | None = None) -> str:
    """Label of the last calendar quarter that ends on or before both the data's last
    timestamp (+1 day) and ``today``.

    >>> last_complete_quarter(pd.Series(pd.to_datetime(["2026-09-30 10:00"], utc=True)))
    '2026Q3'
    """
    ts = pd.to_datetime(timestamps, utc=True).dropna()
    today = pd.Timestamp.now(tz="UTC") if today is None else pd.Timestamp(today)
    today = today.tz_localize("UTC") if today.tzinfo is None else today
    last = min(ts.max() + pd.Timedelta(days=1), today) if len(ts) else today
    q = pd.Period(last.tz_localize(None), freq="Q") - 1  # the quarter holding `last` is not complete
    return f"{q.year}Q{q.quarter}"


# --------------------------------------------------------------------------- trends, funnel, pipeline
def _periods_back(p: Period, n_periods: int) -> list[Period]:
    periods = [p]
    for _ in range(n_periods - 1):
        periods.append(periods[-1].previous)
    return periods[::-1]


def kpi_history(dataset, quarter=None, start=None, end=None, *, n_periods: int = 4,
                kpis: Iterable[str] | None = None, revenue_rule: RevenueRule | None = None) -> pd.DataFrame:
    """KPIs over the ``n_periods`` consecutive periods ending with the given one (oldest
    first): long table ``period, period_start, kpi, group, unit, value, numerator,
    denominator, population, population_size, note`` (``note`` "n/a — <reason>" where
    the value is not applicable).

    Example
    -------
    >>> kpi_history(ds, quarter="2026Q3", n_periods=4, kpis=["market_reach"])  # doctest: +SKIP
    """
    from .engine import is_partitioned, run
    if is_partitioned(dataset):  # a partitioned dataset: every period in one pass over its partitions
        return run("kpi_history", dataset, quarter, start, end, n_periods=n_periods, kpis=kpis,
                   revenue_rule=revenue_rule)
    data = _with_rule(_data(dataset), revenue_rule)
    names = list(kpis) if kpis is not None else list(KPI_FUNCTIONS)
    unknown = [k for k in names if k not in KPI_FUNCTIONS]
    if unknown:
        raise ValueError(f"unknown KPI(s) {unknown}; available: {list(KPI_FUNCTIONS)}")
    rows = []
    for per in _periods_back(resolve_period(quarter=quarter, start=start, end=end), n_periods):
        for k in names:
            r = KPI_FUNCTIONS[k](data, period=per)
            label, size = population_of(k, data, per)
            rows.append({"period": per.label, "period_start": per.start, "kpi": k, "group": _GROUP_OF[k],
                         "unit": r.unit, "value": r.value, "numerator": r.numerator, "denominator": r.denominator,
                         "population": label, "population_size": size, "note": r.note})
    return pd.DataFrame(rows)


#: account funnel steps, in order (each counts target accounts that also passed the
#: steps before): in the population; reached (any touch in the period); with an
#: engagement touch in the period; MQA at the period end; with an opportunity created
#: in the period; with an opportunity won in the period
FUNNEL_STEPS = ("population", "reached", "with_engagement", "mqa", "opportunity", "won")


def account_funnel(dataset, quarter=None, start=None, end=None, *, period: Period | None = None) -> pd.DataFrame:
    """Target accounts (all accounts when the data flags no target) and how many of
    them, in the period, were reached (any touch), had an engagement touch, were MQA
    at the period end (:func:`mqa_accounts`: the same rule and count as its tile when
    the period is at least the MQA window long), opened an opportunity, and won one:
    ``step, accounts, share_of_population, share_of_previous_step, population, note``.
    Each step counts accounts that also passed the steps before it, so the funnel never
    widens.

    A step the data cannot evaluate is **not applicable**: ``accounts`` is empty (NA),
    never 0, and ``note`` says why ("n/a — needs touchpoints: none supplied"). The steps
    reached and with_engagement need touches, mqa touches and contacts (the MQA rule
    counts engaged people); opportunity and won need opportunities
    (:data:`abmkit.applicability.ANALYSIS_NEEDS`). The nesting skips n/a steps: a step
    counts the accounts that passed the last *applicable* step before it (without touches,
    ``opportunity`` counts the population's accounts with an opportunity created in the
    period, and ``share_of_previous_step`` compares with the population)."""
    from .engine import is_partitioned, run
    if is_partitioned(dataset):  # a partitioned dataset: the partitions' counts (docs/scale.md)
        return run("account_funnel", dataset, quarter, start, end, period=period)
    data, p = _data(dataset), _period(quarter, start, end, period)
    addr = pd.Index(_addressable(data)["account_id"].unique())
    touch_app = data.resolved.memo(("kpi_applicability", "funnel_touch_steps"),
                                   lambda: _check(data.resolved, "funnel_touch_steps"))
    mqa_app = data.resolved.memo(("kpi_applicability", "funnel_mqa_step"),
                                 lambda: _check(data.resolved, "funnel_mqa_step"))
    opp_app = data.resolved.memo(("kpi_applicability", "funnel_opportunity_steps"),
                                 lambda: _check(data.resolved, "funnel_opportunity_steps"))
    t = _period_touches(data, p)
    o = data.opportunities
    steps = [
        (touch_app, lambda: pd.Index(t["account_id"].unique())),
        (touch_app, lambda: pd.Index(t.loc[t["is_engagement"], "account_id"].unique())),
        (mqa_app, lambda: _mqa_ids_at_end(data, p)),
        (opp_app, lambda: pd.Index(o.loc[_in(o["created_at"], p), "account_id"].unique())),
        (opp_app, lambda: pd.Index(_won(data, p)["account_id"].unique())),
    ]
    current = addr
    counts, notes, prev = [float(len(addr))], [""], [1.0]
    for app, ids in steps:
        if not app:
            counts.append(np.nan)
            notes.append(app.note)
            prev.append(np.nan)
            continue
        before = float(len(current))
        current = current.intersection(ids())
        counts.append(float(len(current)))
        notes.append("")
        prev.append(len(current) / before if before > 0 else np.nan)
    counts = np.array(counts, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = counts / counts[0] if counts[0] else np.full(len(counts), np.nan)
    return pd.DataFrame({"step": FUNNEL_STEPS, "accounts": pd.array(counts, dtype="Int64"),
                         "share_of_population": share, "share_of_previous_step": np.array(prev, dtype=float),
                         "population": data.resolved.target_population if data.whole_market else "segment",
                         "note": notes})


def pipeline_by_period(dataset, quarter=None, start=None, end=None, *, n_periods: int = 4,
                       lookback_days: int = LOOKBACK_DAYS) -> pd.DataFrame:
    """Pipeline per period (oldest first): ``period, created, created_amount,
    influenced_amount, won, won_amount, lost`` (opportunities created / closed in each
    period; influenced = with an account touch in the ``lookback_days`` before creation).
    ``influenced_amount`` is NaN (not applicable, never 0) when the data has no touches."""
    from .engine import is_partitioned, run
    if is_partitioned(dataset):  # a partitioned dataset: the partitions' sums (docs/scale.md)
        return run("pipeline_by_period", dataset, quarter, start, end, n_periods=n_periods,
                   lookback_days=lookback_days)
    data = _data(dataset)
    touches = data.resolved.memo(("kpi_applicability", "influenced_pipeline_by_period"),
                                 lambda: _check(data.resolved, "influenced_pipeline_by_period"))
    rows = []
    for per in _periods_back(resolve_period(quarter=quarter, start=start, end=end), n_periods):
        o = data.opportunities[_in(data.opportunities["created_at"], per)]
        infl = float(o.loc[_influenced_mask(data, o, lookback_days), "amount"].sum()) if touches else float("nan")
        c, w = _closed(data, per), _won(data, per)
        rows.append({"period": per.label, "period_start": per.start, "created": len(o),
                     "created_amount": float(o["amount"].sum()), "influenced_amount": infl,
                     "won": len(w), "won_amount": float(w["amount"].sum()), "lost": len(c) - len(w)})
    return pd.DataFrame(rows)


def headline_findings(table: KPITable) -> dict:
    """The KPI table's headline numbers as a JSON-ready dict (for
    :func:`abmkit.outputs.save_findings`): period labels, a one-line headline, and
    every KPI's value and change (None where undefined), and ``not_applicable``: the
    reason of every KPI that is n/a ({kpi: "needs touchpoints: none supplied"})."""
    o = table.overall.set_index("kpi")

    def clean(series):
        return {k: (None if pd.isna(v) else float(v)) for k, v in series.items()}

    value = lambda k: o.loc[k, "value"] if k in o.index else float("nan")  # noqa: E731
    reach, mqa, infl = (value(k) for k in ("market_reach", "mqa_accounts", "influenced_pipeline"))
    na = {k: n[len("n/a — "):] if n.startswith("n/a — ") else n
          for k, n in o["note"].items() if pd.isna(o.loc[k, "value"]) and is_not_applicable_note(n)}
    parts = [f"{format_period(table.period, dates=False)}:"]
    if pd.isna(reach) and pd.isna(mqa) and pd.isna(infl):
        # opportunities only (no touches): the sales KPIs are the headline, and it says why
        created, conv, size = (value(k) for k in ("opportunity_creation", "win_rate",
                                                  "average_deal_size"))
        if pd.notna(created):
            parts.append(f"{int(created):,} opportunities created,")
        parts.append(f"win rate {conv:.0%} of closed opportunities," if pd.notna(conv) else "win rate n/a,")
        parts.append(f"average deal size {size:,.0f};" if pd.notna(size) else "average deal size n/a;")
        why = na.get("market_reach") or na.get("mqa_accounts") or "not applicable"
        parts.append(f"reach, MQAs and influenced pipeline n/a ({why})")
    else:
        parts.append(f"reach {reach:.0%}," if pd.notna(reach) else "reach n/a,")
        parts.append(f"{int(mqa)} MQA accounts," if pd.notna(mqa) else "MQA n/a,")
        parts.append(f"influenced pipeline (touched before, not caused) {infl:,.0f}" if pd.notna(infl)
                     else "influenced pipeline n/a")
    return {"period": table.period.label, "previous_period": table.period.previous.label,
            "headline": " ".join(parts), "kpis": clean(o["value"]), "change": clean(o["change"]),
            "not_applicable": na}
