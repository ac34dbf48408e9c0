"""Incremental pipeline and incremental ROI: the pipeline the campaigns *caused*,
estimated from campaign influence (see docs/kpis.md, "Incremental pipeline").

Influenced pipeline (:func:`abmkit.kpis.influenced_pipeline`) counts every
opportunity whose account was **touched before** it opened; it says nothing about
cause. The incremental pipeline is the pipeline that would not exist without the
campaigns, from the effects that :func:`abmkit.uplift.campaign_influence` estimates
at the step where pipeline opens (``qualified -> sales_ready``: an account becomes
sales ready when it opens an opportunity or asks for a meeting):

* per campaign *c* tested at that step: extra sales-ready accounts = adjusted effect
  on the exposed (``adj_diff``, ATT) × exposed accounts at risk (``n_treated``);
* extra accounts = the sum over campaigns; incremental pipeline = extra accounts ×
  the pipeline value of one sales-ready account (the mean amount of a new-business
  opportunity);
* 95% CI by the delta method (a normal reference: the sum runs over many campaigns),
  from each effect's own standard error (``adj_se``). The campaign effects share their
  unexposed accounts, so they are correlated: the correlation of every pair is measured from the per-account
  influence functions of the unexposed-vs-exposed differences on the same landmark
  cohort (rebuilt here), and scaled by each row's own adjusted standard error; the
  value's own sampling error is added.

Incremental ROI = (incremental pipeline × amount win rate of new business − cost of
those campaigns over the cohort's dates) / that cost: the return the campaigns
*caused* at that step, where the ROI tile (touched before) credits every touched deal.

What it does not count: effects earlier in the funnel (an extra engaged account is
not yet pipeline, and may reach sales ready later anyway), and accounts whose outcome
window is not complete yet (the cohort of :func:`~abmkit.uplift.campaign_influence`).

Example
-------
>>> extra_accounts_ci([0.5, 0.0], [0.05, 0.05], [100, 100], np.eye(2))[:2]
(50.0, 7.0710678118654755)
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from .journeys import account_touches
from .prepared import resolve
from .progression import stage_wide
from .results import Result
from .timeutil import DAY_NS, NS_INF
from .timeutil import to_ns_or_inf as _ns

__all__ = ["incremental_value", "IncrementalValue", "extra_accounts_ci", "PIPELINE_TRANSITION"]

#: the transition where pipeline opens: a sales-ready account has an open opportunity
#: (or asked for a meeting)
PIPELINE_TRANSITION = ("qualified", "sales_ready")


def extra_accounts_ci(effects, ses, exposed, corr, alpha: float = 0.05) -> tuple[float, float, float, float]:
    """Extra accounts Σ effect_c × exposed_c with its delta-method SE and CI, the
    effects correlated by ``corr``: ``(estimate, se, low, high)``.

    >>> est, se, lo, hi = extra_accounts_ci([0.2], [0.1], [50], np.eye(1))
    >>> est, round(se, 6), round(float(lo), 2), round(float(hi), 2)
    (10.0, 5.0, 0.2, 19.8)
    """
    d, s, n = (np.asarray(v, dtype=float) for v in (effects, ses, exposed))
    w = n * s
    est = float(np.sum(n * d))
    se = float(np.sqrt(max(w @ np.asarray(corr, dtype=float) @ w, 0.0)))
    z = float(stats.norm.isf(alpha / 2))
    return est, se, est - z * se, est + z * se


@dataclass
class IncrementalValue(Result):
    """:func:`incremental_value` result.

    ``table``: one row per campaign tested at the pipeline step (campaign, exposed
    accounts, effect, its SE, extra accounts and their pipeline value, whether it is
    counted). Headline numbers: ``extra_accounts`` (with ``extra_low``/``extra_high``),
    ``pipeline`` (incremental pipeline, with ``pipeline_low``/``pipeline_high``),
    ``roi`` (incremental ROI, with ``roi_low``/``roi_high``), the ``value_per_account``,
    the ``amount_win_rate`` and the ``cost`` they use, the cohort's dates and ``notes``.
    """
    table: pd.DataFrame
    extra_accounts: float = np.nan
    extra_se: float = np.nan
    extra_low: float = np.nan
    extra_high: float = np.nan
    value_per_account: float = np.nan
    value_se: float = np.nan
    pipeline: float = np.nan
    pipeline_low: float = np.nan
    pipeline_high: float = np.nan
    amount_win_rate: float = np.nan
    cost: float = np.nan
    roi: float = np.nan
    roi_low: float = np.nan
    roi_high: float = np.nan
    #: the same accounts, counted as "touched before": sales-ready accounts of the cohort
    #: that a campaign touched in the exposure window, their pipeline and that ROI
    touched_accounts: float = np.nan
    touched_pipeline: float = np.nan
    touched_roi: float = np.nan
    cohort_start: pd.Timestamp | None = None
    cohort_end: pd.Timestamp | None = None
    transition: str = "qualified->sales_ready"
    alpha: float = 0.05
    notes: list = field(default_factory=list)
    not_applicable: str = ""

    _summary_title = "Incremental pipeline and ROI (caused by campaigns, estimated)"

    def _summary_metadata(self) -> dict:
        return {"transition": self.transition, "cohort": self.cohort_label,
                "value per sales-ready account": round(self.value_per_account, 2),
                "amount win rate": round(self.amount_win_rate, 4), "campaign cost": round(self.cost, 2)}

    @property
    def cohort_label(self) -> str:
        if self.cohort_start is None or self.cohort_end is None:
            return "no cohort"
        return f"accounts qualified {self.cohort_start:%Y-%m-%d} to {self.cohort_end:%Y-%m-%d}"

    @property
    def summary(self) -> pd.DataFrame:
        """The three estimates with their intervals."""
        level = f"{1 - self.alpha:.0%}"
        return pd.DataFrame([
            {"measure": "sales-ready accounts touched before (influenced)", "estimate": self.touched_accounts,
             "low": np.nan, "high": np.nan, "interval": "counted"},
            {"measure": "influenced pipeline (touched before)", "estimate": self.touched_pipeline, "low": np.nan,
             "high": np.nan, "interval": "counted"},
            {"measure": "expected ROI of the influenced pipeline (touched before)", "estimate": self.touched_roi, "low": np.nan, "high": np.nan,
             "interval": "counted"},
            {"measure": "extra sales-ready accounts", "estimate": self.extra_accounts, "low": self.extra_low,
             "high": self.extra_high, "interval": level},
            {"measure": "incremental pipeline", "estimate": self.pipeline, "low": self.pipeline_low,
             "high": self.pipeline_high, "interval": level},
            {"measure": "incremental ROI", "estimate": self.roi, "low": self.roi_low, "high": self.roi_high,
             "interval": level},
        ])

    @property
    def headline(self) -> str:
        if self.not_applicable:
            return f"n/a — {self.not_applicable}"
        return (f"Campaigns caused an estimated {self.extra_accounts:,.1f} extra sales-ready accounts "
                f"[{self.extra_low:,.1f}, {self.extra_high:,.1f}] = incremental pipeline {self.pipeline:,.0f} "
                f"[{self.pipeline_low:,.0f}, {self.pipeline_high:,.0f}] ({self.cohort_label})")

    def tiles(self) -> pd.DataFrame:
        """Rows for :func:`abmkit.plots.kpi_tiles` (``kpi, unit, value, low, high,
        note, population``): on the same accounts, the pipeline and ROI touched before
        (``cohort_influenced_pipeline``, ``cohort_roi``: counted) beside the pipeline and
        ROI caused (``incremental_pipeline``, ``incremental_roi``: estimated, with CI)."""
        note = f"n/a — {self.not_applicable}" if self.not_applicable else ""
        when = (f"{self.cohort_start:%b %Y}–{self.cohort_end:%b %Y}" if self.cohort_start is not None
                else "(no cohort)")
        pop = "caused, est.; qualified " + when
        counted = "all touched; qualified " + when
        return pd.DataFrame([
            {"kpi": "cohort_influenced_pipeline", "unit": "currency", "value": self.touched_pipeline, "low": np.nan,
             "high": np.nan, "previous": np.nan, "change": np.nan, "note": note, "population": counted},
            {"kpi": "cohort_roi", "unit": "ratio", "value": self.touched_roi, "low": np.nan,
             "high": np.nan, "previous": np.nan, "change": np.nan, "note": note, "population": counted},
            {"kpi": "incremental_pipeline", "unit": "currency", "value": self.pipeline, "low": self.pipeline_low,
             "high": self.pipeline_high, "previous": np.nan, "change": np.nan, "note": note, "population": pop},
            {"kpi": "incremental_roi", "unit": "ratio", "value": self.roi, "low": self.roi_low,
             "high": self.roi_high, "previous": np.nan, "change": np.nan, "note": note, "population": pop},
        ])


def _cohort(dataset, history, a: str, b: str, end_ns: int, exp_ns: int, out_ns: int, campaign_ids):
    """The landmark cohort of transition a→b, as campaign_influence builds it: at-risk
    accounts (entered a with a complete window, still in a at the landmark), their
    outcome (b within the outcome window after the landmark), entry times, and the
    exposure matrix (at-risk accounts × campaigns: a touch of the campaign within
    ``[entry, entry + exposure_days)``)."""
    ids = dataset.accounts["account_id"].to_numpy(dtype=object)
    wide = stage_wide(history).reindex(ids)
    E, N = _ns(wide[a]), _ns(wide[b])
    entered = (E != NS_INF) & (E <= end_ns)
    L = np.where(entered, E + exp_ns, NS_INF)
    at_risk = entered & (E <= end_ns - exp_ns - out_ns) & (N > L)
    y = ((N > L) & (N <= L + out_ns))[at_risk].astype(float)
    risk_ids = ids[at_risk]
    from .engine import is_partitioned
    if is_partitioned(dataset):  # the same matrix, built in the partitions holding the at-risk accounts
        from .scale.facts import exposure_matrix
        X = exposure_matrix(dataset, risk_ids, E[at_risk], list(campaign_ids), end_ns, exp_ns)
        return risk_ids, y, X, E[at_risk]
    X = _exposure(dataset, risk_ids, E[at_risk], campaign_ids, end_ns, exp_ns)
    return risk_ids, y, X, E[at_risk]


def _exposure(dataset, risk_ids, entry, campaign_ids, end_ns: int, exp_ns: int) -> np.ndarray:
    """At-risk accounts × campaigns: a touch of the campaign within ``[entry, entry +
    exposure)`` (touches up to ``end_ns``)."""
    tt = account_touches(dataset)
    pos = pd.Index(risk_ids).get_indexer(tt["account_id"].to_numpy(dtype=object))
    cpos = pd.Index(list(campaign_ids)).get_indexer(tt["campaign_id"].to_numpy(dtype=object))
    t = _ns(tt["occurred_at"])
    keep = (pos >= 0) & (cpos >= 0) & (t <= end_ns)
    e = entry[pos[keep]]
    inside = (t[keep] >= e) & (t[keep] < e + exp_ns)
    X = np.zeros((len(risk_ids), len(campaign_ids)), dtype=bool)
    X[pos[keep][inside], cpos[keep][inside]] = True
    return X


def _correlation(y: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Correlation of the exposed − unexposed differences of every pair of campaigns
    over the same accounts, from the per-account influence functions
    ``t (y − p1)/n1 − (1 − t)(y − p0)/n0``."""
    T = X.astype(float)
    n1 = T.sum(axis=0)
    n0 = len(y) - n1
    with np.errstate(divide="ignore", invalid="ignore"):
        p1 = (T * y[:, None]).sum(axis=0) / n1
        p0 = ((1 - T) * y[:, None]).sum(axis=0) / n0
        IF = T * (y[:, None] - p1) / n1 - (1 - T) * (y[:, None] - p0) / n0
    IF = np.nan_to_num(IF)
    cov = IF.T @ IF
    sd = np.sqrt(np.diag(cov))
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = cov / np.outer(sd, sd)
    corr = np.where(np.isfinite(corr), corr, 0.0)
    np.fill_diagonal(corr, 1.0)
    return corr


def _new_business(opps: pd.DataFrame) -> pd.DataFrame:
    if "opportunity_type" in opps and opps["opportunity_type"].notna().any():
        return opps[opps["opportunity_type"].astype(object) == "new_business"]
    return opps


def _campaign_cost(campaigns: pd.DataFrame, ids, start: pd.Timestamp, end: pd.Timestamp) -> float:
    """Cost of campaigns ``ids`` falling in ``[start, end)``, each spread evenly over its
    days (as :func:`abmkit.kpis.cost_per_acquired_account` does)."""
    from .kpis import campaign_cost_in
    from .period import Period
    return campaign_cost_in(campaigns[campaigns["campaign_id"].isin(list(ids))], Period(start, end, "cohort"))


def incremental_value(influence, data, *, transition: tuple[str, str] = PIPELINE_TRANSITION,
                      alpha: float | None = None) -> IncrementalValue:
    """Incremental pipeline and ROI caused by the campaigns at the pipeline step,
    estimated from a :func:`abmkit.uplift.campaign_influence` result (see the module
    docstring for the method).

    Parameters
    ----------
    influence : InfluenceResult
        campaign influence on ``data`` with campaign rows at ``transition``.
    data : ResolvedDataset
        the data the influence was estimated on (opportunities give the value of a
        sales-ready account and the win rate; campaigns the cost).
    transition : (from_stage, to_stage)
        the step that opens pipeline (default qualified → sales_ready).

    Returns
    -------
    IncrementalValue; ``not_applicable`` says why when there is no campaign row at the
    step, no cohort, or no opportunity amount.

    Example
    -------
    >>> res = incremental_value(campaign_influence(ds), ds)     # doctest: +SKIP
    >>> res.pipeline, res.pipeline_low, res.pipeline_high       # doctest: +SKIP
    """
    from .engine import is_partitioned
    dataset = data if is_partitioned(data) else resolve(data)  # partitions: abmkit.scale.facts.exposure_matrix
    a, b = transition
    label = f"{a}->{b}"
    params = influence.params
    alpha = params.get("alpha", 0.05) if alpha is None else alpha
    z_inf = params.get("z", stats.norm.isf(params.get("alpha", 0.05) / 2))
    t = influence.table
    rows = t[(t["level"] == "campaign") & (t["transition"] == label)] if len(t) else t
    out = IncrementalValue(table=pd.DataFrame(), transition=label, alpha=alpha)
    if rows.empty:
        out.not_applicable = f"no campaign was tested at {label} (campaign influence has no row there)"
        return out
    rows = rows.reset_index(drop=True)
    exp_ns = int(round(params["exposure_days"] * DAY_NS))
    out_ns = int(round(params["outcome_days"] * DAY_NS))
    end_ns = pd.Timestamp(params["data_end"]).value
    cids = rows["campaign_id"].to_numpy(dtype=object)
    risk_ids, y, X, entry = _cohort(dataset, influence.history, a, b, end_ns, exp_ns, out_ns, cids)
    # each effect's own standard error; from its CI only when the table has none (the CI
    # of a small group uses a Student-t quantile, so width / 2z would overstate the SE)
    se = ((rows["adj_diff_high"] - rows["adj_diff_low"]) / (2 * z_inf)).to_numpy(dtype=float)
    if "adj_se" in rows:
        own = pd.to_numeric(rows["adj_se"], errors="coerce").to_numpy(dtype=float)
        se = np.where(np.isfinite(own), own, se)
    effect = rows["adj_diff"].to_numpy(dtype=float)
    n_exp = rows["n_treated"].to_numpy(dtype=float)
    counted = np.isfinite(effect) & np.isfinite(se) & (n_exp > 0)
    # the rebuilt exposure must be campaign_influence's: else the correlation of that
    # row is unknown and it is taken as perfectly correlated with every other (wider CI)
    same = X.sum(axis=0) == n_exp
    corr = _correlation(y, X)
    unknown = ~same
    corr[unknown, :] = 1.0
    corr[:, unknown] = 1.0
    idx = np.flatnonzero(counted)
    est, ese, elo, ehi = extra_accounts_ci(effect[idx], se[idx], n_exp[idx], corr[np.ix_(idx, idx)], alpha)
    table = rows[["campaign_id", "campaign_name", "channel", "transition", "n_at_risk", "n_treated",
                  "adj_diff", "adj_diff_low", "adj_diff_high"]].copy()
    table["effect_se"] = se
    table["extra_accounts"] = np.where(counted, effect * n_exp, np.nan)
    table["counted"] = counted
    table["exposure_rebuilt"] = same
    notes = []
    left = rows.loc[~counted & (n_exp > 0)]
    if len(left):
        notes.append(f"{len(left)} campaign(s) with {int(left['n_treated'].sum())} exposed account(s) have no "
                     "adjusted effect (groups too small) and are left out")
    if unknown[counted].any():
        notes.append(f"{int(unknown[counted].sum())} campaign(s) taken as perfectly correlated (their exposure "
                     "could not be rebuilt): a wider interval")
    nb = _new_business(dataset.opportunities)
    amounts = pd.to_numeric(nb["amount"], errors="coerce").dropna() if "amount" in nb else pd.Series(dtype=float)
    out.table = table
    out.extra_accounts, out.extra_se, out.extra_low, out.extra_high = est, ese, elo, ehi
    out.notes = notes
    if len(entry):
        out.cohort_start = pd.Timestamp(int(entry.min()), tz="UTC").normalize()
        out.cohort_end = pd.Timestamp(int(entry.max()), tz="UTC").normalize()
    if len(risk_ids) == 0:
        out.not_applicable = f"no account at risk at {label} with a complete outcome window"
        return out
    if len(amounts) < 2:
        out.not_applicable = "needs opportunity amounts (the value of a sales-ready account)"
        return out
    v, v_se = float(amounts.mean()), float(amounts.std(ddof=1) / np.sqrt(len(amounts)))
    # "touched before" on the same accounts: every sales-ready entry of an account some
    # campaign touched in its exposure window counts, caused or not
    out.touched_accounts = float(y[X.any(axis=1)].sum())
    out.touched_pipeline = out.touched_accounts * v
    z = stats.norm.isf(alpha / 2)
    p_se = float(np.sqrt((v * ese) ** 2 + (est * v_se) ** 2))
    out.value_per_account, out.value_se = v, v_se
    out.pipeline = est * v
    out.pipeline_low, out.pipeline_high = out.pipeline - z * p_se, out.pipeline + z * p_se
    table["pipeline"] = table["extra_accounts"] * v
    # win rate by amount: the share of new-business pipeline closed that was won
    closed = nb[nb["closed_at"].notna()] if "closed_at" in nb else nb.iloc[0:0]
    c_amt = pd.to_numeric(closed["amount"], errors="coerce").fillna(0.0)
    won = closed["is_won"].fillna(False).astype(bool) if "is_won" in closed else pd.Series(False, closed.index)
    if c_amt.sum() > 0:
        w = float(c_amt[won].sum() / c_amt.sum())
        # delta method: the won share of n closed deals, as a proportion
        w_se = float(np.sqrt(w * (1 - w) / max(len(closed), 1)))
        out.amount_win_rate = w
        cost = _campaign_cost(dataset.campaigns, cids[counted], out.cohort_start,
                              out.cohort_end + pd.Timedelta(days=params["exposure_days"] + 1))
        out.cost = cost
        if np.isfinite(cost) and cost > 0:
            rev = out.pipeline * w
            rev_se = float(np.sqrt((w * p_se) ** 2 + (out.pipeline * w_se) ** 2))
            out.roi = (rev - cost) / cost
            out.touched_roi = (out.touched_pipeline * w - cost) / cost
            out.roi_low, out.roi_high = (rev - z * rev_se - cost) / cost, (rev + z * rev_se - cost) / cost
        else:
            notes.append("incremental ROI n/a: the campaigns have no cost in the cohort's dates")
    else:
        notes.append("incremental ROI n/a: no closed new-business amount (win rate unknown)")
    return out
