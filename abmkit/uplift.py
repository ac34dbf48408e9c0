"""Uplift statistics: a generic two-group comparison and campaign influence on
account progression (see docs/progression_and_uplift.md).

:func:`two_group` compares a binary outcome between a treated and a control
group of any table: rates, risk difference (Newcombe CI) and ratio (log-adjusted
CI) — statsmodels' default methods of ``confint_proportions_2indep`` — with the
p-value of the Newcombe CI itself (:func:`newcombe_p_value`, so the p-value and the
CI never disagree about significance), and a covariate-adjusted risk difference.
**Estimand of the adjusted difference: the average effect on the treated (ATT)**: a
logistic regression of the outcome on treatment and covariates predicts, for every
*treated* unit, its outcome with and without treatment; the mean of the difference is
the adjusted effect (marginal standardisation over the treated), with a delta-method CI. ``method="ipw"``
reweights the controls by the propensity odds e/(1−e) to resemble the treated
(same estimand). Bad input never crashes: the row is flagged with a reason.

:func:`campaign_influence` applies it to every campaign (and channel) ×
transition with the landmark design: accounts entering stage s; exposure = a
touch of the campaign within ``exposure_days`` after entry; landmark L = entry +
``exposure_days``; at risk = still in s at L; outcome = entering s+1 within
``(L, L + outcome_days]``. Plus Benjamini–Hochberg q-values over all tests, a
landmark Cox hazard ratio (accounts still in s at L, time from L in exact time,
exposure fixed at L, censored at the data end or L + ``outcome_days``; the same
estimates as statsmodels ``PHReg``) and "acceleration": the difference of
Kaplan–Meier median days from entering s to entering s+1, exposed − unexposed.

Example
-------
>>> import pandas as pd
>>> df = pd.DataFrame({"t": [1] * 40 + [0] * 60, "y": [1] * 20 + [0] * 20 + [1] * 15 + [0] * 45})
>>> r = two_group(df, "t", "y", min_group_size=10)
>>> r.n_treated, r.n_control, r.rate_treated, r.rate_control
(40, 60, 0.5, 0.25)
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from .journeys import account_touches
from .results import Result
from .prepared import resolve
from .progression import (TRANSITIONS, account_codes, data_end, stage_history, stage_wide, transition_label)
from .schema import size_band
from .timeutil import DAY_NS as _DAY_NS
from .timeutil import NS_INF as _INF
from .timeutil import to_ns_or_inf as _ns
from .schema import CHANNELS, Dataset

__all__ = ["two_group", "TwoGroupResult", "campaign_influence", "InfluenceResult", "covariate_frame",
           "compare_to_truth", "logit_fit", "cox_breslow", "DEFAULT_COVARIATES", "at_risk_counts",
           "newcombe_p_value", "log_adjusted_ratio_p_value", "adjusted_df"]

#: adjustment set of campaign_influence: size, ABM tier and industry (who gets
#: targeted), ICP fit (part of the qualified rule) and the target-account flag
DEFAULT_COVARIATES = ("log_employee_count", "tier", "industry", "icp_fit", "is_target")


TWO_GROUP_COLUMNS = [
    "n_treated", "n_control", "events_treated", "events_control", "rate_treated", "rate_control",
    "diff", "diff_low", "diff_high", "ratio", "ratio_low", "ratio_high", "p_value", "ratio_p_value",
    "adj_diff", "adj_diff_low", "adj_diff_high", "adj_p_value", "adj_method", "estimand",
    "flag", "flag_reason",
]


@dataclass
class TwoGroupResult(Result):
    """Outcome of :func:`two_group`. ``flag`` is True when any statistic could not
    be computed or should not be trusted; ``flag_reason`` says why."""
    n_treated: int = 0
    n_control: int = 0
    events_treated: int = 0
    events_control: int = 0
    rate_treated: float = np.nan
    rate_control: float = np.nan
    diff: float = np.nan
    diff_low: float = np.nan
    diff_high: float = np.nan
    ratio: float = np.nan
    ratio_low: float = np.nan
    ratio_high: float = np.nan
    p_value: float = np.nan
    #: the p-value of the ratio's own (log-adjusted) CI: "ratio CI excludes 1" exactly
    #: when ratio_p_value < alpha (``p_value`` belongs to the difference's CI)
    ratio_p_value: float = np.nan
    adj_diff: float = np.nan
    adj_diff_low: float = np.nan
    adj_diff_high: float = np.nan
    adj_p_value: float = np.nan
    adj_se: float = np.nan
    adj_df: float = np.nan
    adj_method: str = "none"
    estimand: str = "ATT"
    alpha: float = 0.05
    n_dropped: int = 0
    reasons: list = field(default_factory=list)
    #: what the adjustment left out without harm (a covariate with one level: nothing
    #: to adjust for); said in the headline, not a flag
    notes: list = field(default_factory=list)

    @property
    def flag(self) -> bool:
        return bool(self.reasons)

    @property
    def flag_reason(self) -> str:
        return "; ".join(dict.fromkeys(self.reasons))

    def to_frame(self) -> pd.DataFrame:
        d = asdict(self)
        d.pop("reasons")
        d.pop("notes")
        d["flag"], d["flag_reason"] = self.flag, self.flag_reason
        cols = TWO_GROUP_COLUMNS + [c for c in d if c not in TWO_GROUP_COLUMNS]
        return pd.DataFrame([d])[cols]

    _summary_title = "Two-group comparison"

    def _summary_metadata(self) -> dict:
        return {"n_treated": self.n_treated, "n_control": self.n_control, "alpha": self.alpha,
                "adj_method": self.adj_method, "estimand": self.estimand, "n_dropped": self.n_dropped}

    @property
    def summary(self) -> pd.DataFrame:
        """One row per statistic (rate_treated, rate_control, diff, ratio and, when
        computed, adj_diff): ``statistic, estimate, low, high, p_value``."""
        rows = [("rate_treated", self.rate_treated, np.nan, np.nan, np.nan),
                ("rate_control", self.rate_control, np.nan, np.nan, np.nan),
                ("diff", self.diff, self.diff_low, self.diff_high, self.p_value),
                ("ratio", self.ratio, self.ratio_low, self.ratio_high, self.ratio_p_value)]
        if self.adj_method != "none":
            rows.append(("adj_diff", self.adj_diff, self.adj_diff_low, self.adj_diff_high, self.adj_p_value))
        return pd.DataFrame(rows, columns=["statistic", "estimate", "low", "high", "p_value"]).astype(
            {c: float for c in ("estimate", "low", "high", "p_value")})

    @property
    def headline(self) -> str:
        """The comparison in words: rates, difference and ratio with CIs, the adjusted
        difference and the flag reason (one line each)."""
        ci = int(round(100 * (1 - self.alpha)))
        lines = [
            f"treated: {self.events_treated}/{self.n_treated} = {self.rate_treated:.1%}; "
            f"control: {self.events_control}/{self.n_control} = {self.rate_control:.1%}",
            f"difference {self.diff:+.1%} ({ci}% CI {self.diff_low:+.1%} to {self.diff_high:+.1%}), "
            f"p = {self.p_value:.3g}; ratio {self.ratio:.2f} ({self.ratio_low:.2f} to {self.ratio_high:.2f})",
        ]
        if self.adj_method != "none":
            lines.append(f"adjusted ({self.adj_method}, {self.estimand}) difference {self.adj_diff:+.1%} "
                         f"({ci}% CI {self.adj_diff_low:+.1%} to {self.adj_diff_high:+.1%})")
        if self.notes:
            lines.append("note: " + "; ".join(self.notes))
        if self.flag:
            lines.append(f"FLAG: {self.flag_reason}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- inputs
def _binary(s: pd.Series, level, name: str, role: str) -> pd.Series:
    """Float 1/0 (NaN missing) from bool, 0/1 or two-level values; ``level`` = the 1 level."""
    if level is not None:
        return (s == level).astype(float).where(s.notna())
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.astype(float)
    vals = pd.unique(s.dropna())
    if set(vals) <= {0, 1, True, False}:
        return pd.to_numeric(s.map(lambda v: v if pd.isna(v) else float(v)), errors="coerce").astype(float)
    kw = "treated_level" if role == "treatment" else "outcome_level"
    raise ValueError(f"column '{name}' ({role}) holds {list(vals)[:5]}: not bool or 0/1. Say which value "
                     f"is the {'treated group' if role == 'treatment' else 'positive outcome'} with {kw}=...")


def _design(cov: pd.DataFrame) -> tuple[np.ndarray, list[str], list[str]]:
    """Covariate matrix: numeric columns as given (missing -> mean + indicator),
    others one-hot (first level dropped; missing its own level). Constant
    covariates are dropped (nothing to adjust for) and named in the notes."""
    blocks, names, notes = [], [], []
    for c in cov.columns:
        s = cov[c]
        numeric = pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)
        if numeric:
            v = pd.to_numeric(s, errors="coerce").astype(float)
            miss = v.isna()
            if v.nunique(dropna=True) < 2:
                notes.append(f"covariate '{c}' has one level (dropped)")
                continue
            blocks.append(v.fillna(v.mean()).to_numpy()[:, None])
            names.append(c)
            if miss.any():
                blocks.append(miss.to_numpy(dtype=float)[:, None])
                names.append(f"{c}_missing")
        else:
            v = s.astype(object).where(s.notna(), "(missing)").astype(str)
            if v.nunique() < 2:
                notes.append(f"covariate '{c}' has one level (dropped)")
                continue
            d = pd.get_dummies(v, prefix=c, drop_first=True, dtype=float)
            blocks.append(d.to_numpy())
            names.extend(d.columns)
    X = np.hstack(blocks) if blocks else np.empty((len(cov), 0))
    return X, names, notes


def _expit(x):
    from scipy.special import expit
    return expit(x)


def _matvec(A: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``A @ x`` for a tall matrix without multi-threaded BLAS: OpenBLAS gemv
    threads spin and cost 3-5x the CPU of a plain loop on a busy machine."""
    return np.einsum("ij,j->i", A, x)


def _rmatvec(A: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``A.T @ x`` for a tall matrix (see :func:`_matvec`)."""
    return np.einsum("ij,i->j", A, x)


def _category_codes(values: pd.Series, levels) -> np.ndarray:
    """Position of each value in ``levels`` (-1: missing or not a level); a
    categorical is mapped through its categories, not row by row."""
    index = pd.Index(list(levels))
    if isinstance(values.dtype, pd.CategoricalDtype):
        return np.r_[index.get_indexer(values.cat.categories), -1][values.cat.codes.to_numpy()]
    v = values.astype(object).to_numpy()
    return index.get_indexer(np.where(pd.isna(v), "\0none", v))


class SeparationError(FloatingPointError):
    """Logistic or Cox fit diverges (perfect / quasi separation, singular information)."""


def logit_fit(y: np.ndarray, D: np.ndarray, start: np.ndarray | None = None, max_iter: int = 60,
              tol: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-likelihood logistic regression by Newton–Raphson: (coefficients,
    covariance = inverse observed information). Same estimates as statsmodels
    ``Logit``/``GLM(Binomial)`` (tests check it); written out so that the many
    fits of :func:`campaign_influence` can warm-start from the covariates-only fit.
    Raises :class:`SeparationError` when the fit diverges."""
    b = np.zeros(D.shape[1]) if start is None else np.asarray(start, float).copy()

    def loglik(beta):
        eta = _matvec(D, beta)
        return float(np.sum(y * eta - np.logaddexp(0.0, eta))), eta

    ll, eta = loglik(b)
    for it in range(max_iter):
        p = _expit(eta)  # eta of the current b, kept from the likelihood evaluation
        w = p * (1 - p)
        H = (D * w[:, None]).T @ D
        g = _rmatvec(D, y - p)
        try:
            step = np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(H, g, rcond=None)[0]
        for _half in range(30):  # step halving: the log-likelihood never decreases
            ll_new, eta = loglik(b + step)
            if np.isfinite(ll_new) and ll_new >= ll - 1e-12:
                break
            step = step / 2
        b = b + step
        converged = abs(ll_new - ll) < tol * (abs(ll) + 1) and np.max(np.abs(step)) < 1e-6 * (1 + np.max(np.abs(b)))
        # quasi-separation in a covariate (e.g. ICP-unfit accounts never qualify)
        # drives that coefficient to infinity while the fitted probabilities
        # converge: accept once the likelihood is flat
        flat = abs(ll_new - ll) < tol * (abs(ll) + 1) and it >= 8
        ll = ll_new
        if not np.all(np.isfinite(b)):
            raise SeparationError("logistic fit diverged (perfect or quasi separation)")
        if converged or flat:
            break
    else:
        raise SeparationError(f"logistic fit did not converge in {max_iter} iterations (separation?)")
    p = _expit(eta)
    H = (D * (p * (1 - p))[:, None]).T @ D
    cov = np.linalg.pinv(H)
    return b, cov


def _adjusted_standardisation(y, t, X, alpha, estimand, start=None):
    """Logistic regression + marginal standardisation; delta-method CI."""
    D = np.column_stack([np.ones(len(y)), t, X])
    beta, cov = logit_fit(y, D, start)
    if abs(beta[1]) > 15 or not np.all(np.isfinite(cov)):
        raise SeparationError("treatment coefficient diverged (perfect separation)")
    rows = t == 1 if estimand == "ATT" else np.ones(len(t), bool)
    D1, D0 = D[rows].copy(), D[rows].copy()
    D1[:, 1], D0[:, 1] = 1.0, 0.0
    p1, p0 = _expit(_matvec(D1, beta)), _expit(_matvec(D0, beta))
    est = float(np.mean(p1 - p0))
    grad = ((p1 * (1 - p1))[:, None] * D1 - (p0 * (1 - p0))[:, None] * D0).mean(axis=0)
    se = float(np.sqrt(grad @ cov @ grad))
    return est, se


def _adjusted_ipw(y, t, X, alpha, estimand, start=None):
    """ATT by propensity odds weighting of the controls (ATE: 1/e, 1/(1-e))."""
    D = np.column_stack([np.ones(len(y)), X])
    e = _expit(D @ logit_fit(t, D)[0])
    if np.mean((e < 1e-6) | (e > 1 - 1e-6)) > 0.05:
        raise SeparationError("propensity scores at 0 or 1: covariates separate treated from controls "
                              "(no overlap, positivity violated)")
    e = np.clip(e, 1e-6, 1 - 1e-6)
    tr, co = t == 1, t == 0
    if estimand == "ATT":
        w1, w0 = np.ones(tr.sum()), e[co] / (1 - e[co])
    else:
        w1, w0 = 1 / e[tr], 1 / (1 - e[co])
    m1 = np.sum(w1 * y[tr]) / w1.sum()
    m0 = np.sum(w0 * y[co]) / w0.sum()
    # weights treated as known (propensity estimation ignored): usually conservative
    v1 = np.sum(w1 ** 2 * (y[tr] - m1) ** 2) / w1.sum() ** 2
    v0 = np.sum(w0 ** 2 * (y[co] - m0) ** 2) / w0.sum() ** 2
    return float(m1 - m0), float(np.sqrt(v1 + v0))


def _two_group_arrays(t: np.ndarray, y: np.ndarray, X: np.ndarray | None, *, alpha: float,
                      method: str, estimand: str, min_group_size: int, notes=(), n_dropped: int = 0,
                      adjust: bool = True, start=None) -> TwoGroupResult:
    from statsmodels.stats.proportion import confint_proportions_2indep
    r = TwoGroupResult(alpha=alpha, estimand=estimand, n_dropped=n_dropped)
    r.reasons.extend(notes)
    if n_dropped:
        r.reasons.append(f"{n_dropped} row(s) with missing treatment or outcome left out")
    tr, co = t == 1, t == 0
    n1, n0 = int(tr.sum()), int(co.sum())
    e1, e0 = int(y[tr].sum()), int(y[co].sum())
    r.n_treated, r.n_control, r.events_treated, r.events_control = n1, n0, e1, e0
    if n1:
        r.rate_treated = e1 / n1
    if n0:
        r.rate_control = e0 / n0
    if n1 == 0 or n0 == 0:
        r.reasons.append("no treated units" if n1 == 0 else "no control units")
        r.reasons.append("comparison undefined")
        return r
    if n1 < min_group_size or n0 < min_group_size:
        r.reasons.append(f"small group (treated {n1}, control {n0}; minimum {min_group_size})")
    r.diff = r.rate_treated - r.rate_control
    lo, hi = confint_proportions_2indep(e1, n1, e0, n0, compare="diff", alpha=alpha)
    r.diff_low, r.diff_high = float(lo), float(hi)
    # the p-value of the CI itself (inverted Newcombe interval), so that "p < alpha"
    # and "the CI excludes 0" never disagree (the Agresti-Caffo test did, near alpha)
    r.p_value = newcombe_p_value(e1, n1, e0, n0)
    with np.errstate(divide="ignore", invalid="ignore"):
        lo, hi = confint_proportions_2indep(e1, n1, e0, n0, compare="ratio", alpha=alpha)
    r.ratio_low, r.ratio_high = float(lo), float(hi)
    r.ratio_p_value = log_adjusted_ratio_p_value(e1, n1, e0, n0)
    if e0 > 0:
        r.ratio = r.rate_treated / r.rate_control
    else:
        r.reasons.append("no events among controls: ratio undefined (CI uses statsmodels' +0.5 adjustment)")
    if e1 + e0 == 0:
        r.reasons.append("no events in either group (outcome all zero): adjusted difference undefined")
        return r
    if e1 + e0 == n1 + n0:
        r.reasons.append("outcome positive for every unit: adjusted difference undefined")
        return r
    if X is None or not adjust:
        if adjust and X is None:
            r.reasons.append("no covariates: adjusted difference not computed")
        return r
    if X.shape[1] == 0:
        r.reasons.append("no usable covariate: adjusted difference not computed")
        return r
    if method == "standardization" and (e1 in (0, n1) or e0 in (0, n0)):
        r.reasons.append("outcome constant within a group (perfect separation): adjusted difference undefined")
        return r
    try:
        fn = _adjusted_standardisation if method == "standardization" else _adjusted_ipw
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # checked for finiteness below
            est, se = fn(y, t, X, alpha, estimand, start)
        if not np.isfinite(se) or se <= 0:
            raise FloatingPointError("standard error not finite")
    except Exception as exc:  # separation, singular fits: flagged, not raised
        name = type(exc).__name__
        r.reasons.append(f"adjusted model failed ({name}: {exc}); perfect separation or too little data")
        return r
    # small-sample reference: Student t with as many degrees of freedom as the smallest
    # cell of the 2x2 table (events / non-events per group). A group with 2 events says
    # little about its rate and the delta-method Wald statistic is far from normal
    # there: with a normal reference, no-effect rows with a cell <= 2 had p < 0.05 in
    # 20% of calibration samples (issue 19); with >= 30 per cell this is the normal.
    df = adjusted_df(e1, n1, e0, n0)
    z = stats.t.isf(alpha / 2, df)
    r.adj_method = method
    r.adj_diff, r.adj_diff_low, r.adj_diff_high = est, est - z * se, est + z * se
    r.adj_p_value = float(2 * stats.t.sf(abs(est / se), df))
    r.adj_se, r.adj_df = se, float(df)
    return r


def adjusted_df(e1: int, n1: int, e0: int, n0: int) -> int:
    """Degrees of freedom of the Student-t reference of the adjusted difference: the
    smallest cell of the 2x2 table (events and non-events of the treated and of the
    controls), at least 1.

    Example
    -------
    >>> adjusted_df(12, 40, 30, 200), adjusted_df(2, 40, 30, 200)
    (12, 2)
    """
    return max(1, int(min(e1, n1 - e1, e0, n0 - e0)))


def _newcombe_bounds(z: float, e1: int, n1: int, e0: int, n0: int) -> tuple[float, float]:
    """Newcombe hybrid-score interval of p1 − p0 at critical value ``z``: statsmodels'
    ``confint_proportions_2indep(method="newcomb")`` (Wilson bounds of each rate)."""
    def wilson(e, n):
        q = e / n
        denom = 1 + z * z / n
        centre = (q + z * z / (2 * n)) / denom
        half = z * np.sqrt(q * (1 - q) / n + z * z / (4 * n * n)) / denom
        return centre - half, centre + half

    p1, p0 = e1 / n1, e0 / n0
    (l1, u1), (l0, u0) = wilson(e1, n1), wilson(e0, n0)
    d = p1 - p0
    return d - np.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2), d + np.sqrt((p0 - l0) ** 2 + (u1 - p1) ** 2)


def newcombe_p_value(e1: int, n1: int, e0: int, n0: int) -> float:
    """Two-sided p-value of "p1 = p0" by inverting the Newcombe interval: the alpha
    at which the (1 − alpha) interval has 0 on its edge. So ``p < alpha`` exactly
    when the Newcombe CI of :func:`two_group` excludes 0 (one decision, never two).
    The bound nearest 0 moves monotonically towards 0 as the level rises, so the
    edge is one root in the critical value.

    Example
    -------
    >>> from statsmodels.stats.proportion import confint_proportions_2indep
    >>> p = newcombe_p_value(8, 40, 2, 40)  # 95% CI 0.0008 to 0.302; Agresti-Caffo p = 0.056
    >>> round(p, 4), abs(float(confint_proportions_2indep(8, 40, 2, 40, alpha=p)[0])) < 1e-12
    (0.0489, True)
    """
    from scipy.optimize import brentq
    if min(n1, n0) <= 0:
        return np.nan
    d = e1 / n1 - e0 / n0
    if d == 0:
        return 1.0
    side = 0 if d > 0 else 1  # the bound between the estimate and 0

    def edge(z):
        b = _newcombe_bounds(z, e1, n1, e0, n0)[side]
        return b if d > 0 else -b

    z_max = 37.0  # 2 * sf(37) ~ 1e-299: smaller p-values are 0 in floating point
    if edge(z_max) > 0:
        return float(2 * stats.norm.sf(z_max))
    z = brentq(edge, 0.0, z_max, xtol=1e-13, rtol=4 * np.finfo(float).eps, maxiter=200)
    return float(2 * stats.norm.sf(z))


def log_adjusted_ratio_p_value(e1: int, n1: int, e0: int, n0: int) -> float:
    """Two-sided p-value of "p1 / p0 = 1" that matches the ratio's CI of
    :func:`two_group` (statsmodels' ``log-adjusted`` interval: 0.5 added to each
    count and each size, Wald on the log scale): ``p < alpha`` exactly when that
    (1 − alpha) CI excludes 1. The interval is ``log r' ± z·se'``, so its p-value is
    the Wald p-value of the same ``r'`` and ``se'``.

    Example
    -------
    >>> from statsmodels.stats.proportion import confint_proportions_2indep
    >>> p = log_adjusted_ratio_p_value(12, 40, 5, 40)
    >>> round(p, 4), round(float(confint_proportions_2indep(12, 40, 5, 40, compare="ratio", alpha=p)[0]), 12)
    (0.0749, 1.0)
    """
    if min(n1, n0) <= 0:
        return np.nan
    c1, m1, c0, m0 = e1 + 0.5, n1 + 0.5, e0 + 0.5, n0 + 0.5
    se = np.sqrt(1 / c1 - 1 / m1 + 1 / c0 - 1 / m0)
    return float(2 * stats.norm.sf(abs(np.log((c1 / m1) / (c0 / m0))) / se))


def two_group(df: pd.DataFrame, treatment: str, outcome: str, covariates=None, alpha: float = 0.05, *,
              treated_level=None, outcome_level=None, method: str = "standardization",
              estimand: str = "ATT", min_group_size: int = 10) -> TwoGroupResult:
    """Compare a binary outcome between treated and control units.

    Parameters
    ----------
    df : DataFrame, one row per unit.
    treatment, outcome : column names; bool, 0/1 or two-level values
        (then name the treated level / positive outcome level).
    covariates : list of column names, optional. Numeric columns enter the
        logistic model as given; strings/categories/bools are one-hot encoded.
    alpha : 1 − confidence level of every interval.
    method : "standardization" (logistic regression + marginal standardisation,
        delta-method CI) or "ipw" (inverse propensity weighting).
    estimand : "ATT" (default: average effect on the treated) or "ATE".
    min_group_size : groups smaller than this are flagged (still computed).

    Returns
    -------
    TwoGroupResult (``.to_frame()`` one row; ``.summary`` table; ``.headline`` text).

    Example
    -------
    >>> df = pd.DataFrame({"t": [True] * 30 + [False] * 30, "y": [1, 0, 0] * 20})
    >>> r = two_group(df, "t", "y")
    >>> r.diff, r.flag_reason
    (0.0, 'no covariates: adjusted difference not computed')
    """
    if method not in ("standardization", "ipw"):
        raise ValueError(f"method must be 'standardization' or 'ipw', not {method!r}")
    estimand = estimand.upper()
    if estimand not in ("ATT", "ATE"):
        raise ValueError(f"estimand must be 'ATT' or 'ATE', not {estimand!r}")
    covariates = [covariates] if isinstance(covariates, str) else (list(covariates) if covariates else None)
    missing = [c for c in [treatment, outcome, *(covariates or [])] if c not in df.columns]
    if missing:
        raise KeyError(f"two_group: column(s) {missing} not in the table; columns are {list(df.columns)}")
    t = _binary(df[treatment], treated_level, treatment, "treatment")
    y = _binary(df[outcome], outcome_level, outcome, "outcome")
    ok = (t.notna() & y.notna()).to_numpy()
    X, notes = None, []
    if covariates:
        X, _, notes = _design(df.loc[ok, covariates])
    r = _two_group_arrays(t.to_numpy()[ok], y.to_numpy()[ok], X, alpha=alpha, method=method,
                          estimand=estimand, min_group_size=min_group_size, n_dropped=int((~ok).sum()))
    r.notes.extend(notes)  # a constant covariate: dropped, noted, not a flag
    return r


# --------------------------------------------------------------------------- survival
def cox_breslow(start: np.ndarray, stop: np.ndarray, event: np.ndarray, Z: np.ndarray,
                max_iter: int = 50, tol: float = 1e-8, init: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Cox proportional hazards with entry times (counting-process rows
    ``(start, stop]``) and Breslow ties, for times on an integer grid (days, or the
    ranks of exact times: the partial likelihood only depends on their order).

    Risk-set sums per day come from difference arrays and one cumulative sum, so a
    fit costs a few passes over the rows however many rows there are; statsmodels
    ``PHReg(stop, Z, status=event, entry=start, ties="breslow")`` gives the same
    estimates (tests check it) but loops in Python over rows with entry times.
    Returns (coefficients, covariance)."""
    start = np.asarray(start, np.int64)
    stop = np.asarray(stop, np.int64)
    ev = np.asarray(event, bool)
    Z = np.asarray(Z, float)
    Z = Z - Z.mean(axis=0)  # centring changes nothing but the overflow risk
    n, p = Z.shape
    T = int(stop.max()) + 2
    d = np.bincount(stop[ev], minlength=T).astype(float)
    zsum = Z[ev].sum(axis=0)
    days = np.flatnonzero(d)
    # risk set at day k = rows with stop >= k minus rows with start >= k (not yet
    # entered); reverse cumulative sums keep late, small risk sets exact
    # rows entering at day 0 never leave a risk set of an event day (>= 1): only
    # late entries need the subtraction.
    from scipy import sparse
    late = np.flatnonzero(start > 0)
    # day-indicator matrix (+1 on a row's stop day, -1 on a late row's start day):
    # per-day sums of any row quantity are one sparse product
    per_day = sparse.csr_matrix((np.r_[np.ones(n), -np.ones(len(late))],
                                 (np.r_[stop, start[late]], np.r_[np.arange(n), late])), shape=(T + 1, n))
    start_late = np.where(start > 0, start, -1)  # row -1 of the cumulative weights below is 0

    def rev_cumsum(a):
        return np.cumsum(a[::-1], axis=0)[::-1]

    def parts(beta):
        r = np.exp(_matvec(Z, beta))
        s0 = rev_cumsum(per_day @ r)[days]
        s1 = rev_cumsum(per_day @ (Z * r[:, None]))[days]
        dd = d[days]
        ll = float(zsum @ beta - np.sum(dd * np.log(s0)))
        m = s1 / s0[:, None]
        g = zsum - (dd[:, None] * m).sum(axis=0)
        # sum_k d_k S2(k)/S0(k) = sum_i r_i z_i z_i' (C(stop_i) - C(start_i)) with
        # C(x) = sum_{k <= x} d_k/S0(k): one weighted cross product, no per-day S2
        c = np.zeros(T + 2)
        c[days] = dd / s0
        C = np.cumsum(c)
        C[-1] = 0.0
        v = r * (C[stop] - C[start_late])
        info = (Z * v[:, None]).T @ Z - np.einsum("k,kj,kl->jl", dd, m, m)
        return ll, g, info

    beta = np.zeros(p) if init is None else np.asarray(init, float).copy()
    ll, g, info = parts(beta)
    for _ in range(max_iter):
        try:
            step = np.linalg.solve(info, g)
        except np.linalg.LinAlgError as exc:
            raise SeparationError("Cox information matrix singular") from exc
        for _half in range(30):  # step halving keeps the partial likelihood increasing
            new = beta + step
            ll_new, g_new, info_new = parts(new)
            if np.isfinite(ll_new) and ll_new >= ll - 1e-12:
                break
            step = step / 2
        flat = abs(ll_new - ll) < tol * (abs(ll) + 1)
        beta, ll, g, info = new, ll_new, g_new, info_new
        if not np.all(np.isfinite(beta)):
            raise SeparationError("Cox fit diverged (monotone likelihood)")
        # a covariate with monotone likelihood (e.g. ICP-unfit accounts never
        # progress) runs off to infinity while the likelihood flattens: stop there
        if np.max(np.abs(step)) < tol * (1 + np.max(np.abs(beta))) or flat:
            break
    return beta, np.linalg.pinv(info)


def cox_time_varying(start: np.ndarray, stop: np.ndarray, event: np.ndarray, exposed: np.ndarray,
                     X: np.ndarray | None = None, alpha: float = 0.05,
                     init: np.ndarray | None = None) -> tuple[float, float, float, float, str]:
    """Hazard ratio of a 0/1 exposure (fixed, or time-varying through counting-process
    rows) on an integer time grid (:func:`cox_breslow`), adjusted for ``X``. CI and p-value
    use Student t with the fewer events of the two exposure groups as degrees of freedom.
    Returns (hr, low, high, p, note)."""
    if event.sum() == 0:
        return np.nan, np.nan, np.nan, np.nan, "Cox: no events"
    if exposed.min() == exposed.max():
        return np.nan, np.nan, np.nan, np.nan, "Cox: exposure constant"
    Z = exposed[:, None].astype(float) if X is None or X.shape[1] == 0 else np.column_stack([exposed, X])
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # checked for finiteness below
            beta, cov = cox_breslow(start, stop, event, Z, init=init if init is not None and len(init) == Z.shape[1]
                                    else None)
            # a non-positive variance (near-singular information) gives NaN here, flagged below
            b, se = float(beta[0]), float(np.sqrt(cov[0, 0]))
        if not (np.isfinite(b) and np.isfinite(se)) or abs(b) > 15 or se <= 0 or se > 10:
            return np.nan, np.nan, np.nan, np.nan, "Cox: fit diverged (monotone likelihood / too few events)"
    except (SeparationError, np.linalg.LinAlgError) as exc:
        return np.nan, np.nan, np.nan, np.nan, f"Cox: fit failed ({exc})"
    # small-sample reference as for the adjusted difference: Student t with as many
    # degrees of freedom as the fewer events of the two exposure groups (normal from ~30)
    ev = np.asarray(event, bool)
    df = max(1, int(min(np.sum(ev & (exposed == 1)), np.sum(ev & (exposed == 0)))))
    z = stats.t.isf(alpha / 2, df)
    return float(np.exp(b)), float(np.exp(b - z * se)), float(np.exp(b + z * se)), \
        float(2 * stats.t.sf(abs(b / se), df)), ""


# --------------------------------------------------------------------------- campaigns
def covariate_frame(accounts: pd.DataFrame, covariates=DEFAULT_COVARIATES, *, skip_missing: bool = False
                    ) -> tuple[pd.DataFrame, list[str]]:
    """Account covariates for adjustment, indexed like ``accounts``.

    Derived names: ``log_employee_count`` (natural log of employee_count, at least
    1), ``size_band``; ``tier`` is categorical; any other accounts column as is.
    With ``skip_missing`` covariates whose source column is absent or empty are
    left out and named in the returned notes (else KeyError).
    """
    out = pd.DataFrame(index=accounts.index)
    notes = []
    source = {"log_employee_count": "employee_count", "size_band": "employee_count"}
    for c in covariates:
        col = source.get(c, c)
        if skip_missing and (col not in accounts.columns or accounts[col].isna().all()):
            notes.append(f"covariate '{c}' not available (accounts.{col} absent or empty): not adjusted for")
            continue
        if c == "log_employee_count":
            v = pd.to_numeric(accounts.get("employee_count", pd.Series(np.nan, index=accounts.index)),
                              errors="coerce").astype(float)
            out[c] = np.log(v.clip(lower=1))
        elif c == "size_band":
            out[c] = size_band(accounts.get("employee_count", pd.Series(np.nan, index=accounts.index)))
        elif c == "tier":
            tier = accounts.get("tier", pd.Series(pd.NA, index=accounts.index, dtype="Int64"))
            out[c] = tier.astype("Int64").astype(str).where(tier.notna(), None)
        elif c in accounts.columns:
            out[c] = accounts[c]
        else:
            raise KeyError(f"covariate '{c}' is not an accounts column nor a derived one "
                           "(log_employee_count, size_band, tier)")
    return out, notes


@dataclass
class InfluenceResult(Result):
    """Output of :func:`campaign_influence`: ``table`` (one row per unit ×
    transition), the stage ``history`` used, and the run's parameters."""
    table: pd.DataFrame
    history: pd.DataFrame
    params: dict

    def to_frame(self) -> pd.DataFrame:
        return self.table

    def significant(self, q: float | None = None) -> pd.DataFrame:
        q = self.params["alpha"] if q is None else q
        return self.table[self.table["q_value"] < q]

    _summary_title = "Campaign influence on progression"

    @property
    def summary(self) -> pd.DataFrame:
        """The significant tests (q < alpha), lowest q first: level, unit, transition,
        adjusted and naive difference, q-value."""
        cols = ["level", "unit", "transition", "adj_diff", "adj_diff_low", "adj_diff_high", "diff", "q_value"]
        sig = self.significant().sort_values("q_value", kind="stable")
        return sig[[c for c in cols if c in sig.columns]].reset_index(drop=True)

    @property
    def headline(self) -> str:
        """Tests, flagged tests and significant ones, with the design's parameters (the
        significant tests themselves are :attr:`summary`)."""
        t = self.table
        return (f"{len(t)} tests ({int(t['flag'].sum())} flagged); {len(self.significant())} significant at "
                f"q < {self.params['alpha']} (estimand of adj_diff: {self.params['estimand']}, landmark "
                f"{self.params['exposure_days']} d, outcome window {self.params['outcome_days']} d)")


def parse_transitions(transitions):
    """``[(from_stage, to_stage), ...]`` of ``"from->to"`` labels or pairs (each must be
    a consecutive transition); None: every transition but unaware->aware."""
    if transitions is None:
        return list(TRANSITIONS[1:])  # unaware->aware is caused by any touch by definition
    out = []
    for tr in transitions:
        a, b = tr.split("->") if isinstance(tr, str) else tr
        if (a, b) not in TRANSITIONS:
            raise ValueError(f"transition {tr!r} is not s->s+1 of {[transition_label(*x) for x in TRANSITIONS]}")
        out.append((a, b))
    return out


def _landmark(E: np.ndarray, N: np.ndarray, end_ns: int, exp_ns: int, out_ns: int) -> tuple:
    """The landmark design of one transition s→s+1, per account (entry times into s
    and s+1 in ns, ``_INF`` = never): entered s, the landmark ``L``, at risk at ``L``
    (entered with a complete window and still in s), outcome (s+1 in ``(L, L + out]``)."""
    entered = (E != _INF) & (E <= end_ns)
    complete = entered & (E <= end_ns - exp_ns - out_ns)
    L = np.where(entered, E + exp_ns, _INF)
    at_risk = complete & (N > L)
    y_all = (N > L) & (N <= L + out_ns)
    return entered, L, at_risk, y_all


def at_risk_counts(history: pd.DataFrame, account_ids, *, exposure_days: float = 30, outcome_days: float = 90,
                   transitions=None, as_of=None) -> pd.DataFrame:
    """Per transition, the accounts at risk at the landmark and how many reach the next
    stage in the outcome window: the cohort of :func:`campaign_influence` before any
    campaign splits it (its ``n_at_risk``; exposed + unexposed events). Sums over
    disjoint sets of accounts, e.g. account partitions.

    Returns
    -------
    DataFrame
        transition, from_stage, to_stage, n_at_risk, events_at_risk.

    Example
    -------
    >>> at_risk_counts(stage_history(ds), ds.accounts["account_id"])   # doctest: +SKIP
    """
    end_ns = data_end(history, as_of).value
    wide = stage_wide(history).reindex(np.asarray(account_ids, dtype=object))
    exp_ns, out_ns = int(round(exposure_days * _DAY_NS)), int(round(outcome_days * _DAY_NS))
    rows = []
    for a, b in parse_transitions(transitions):
        _, _, at_risk, y_all = _landmark(_ns(wide[a]), _ns(wide[b]), end_ns, exp_ns, out_ns)
        rows.append({"transition": transition_label(a, b), "from_stage": a, "to_stage": b,
                     "n_at_risk": int(at_risk.sum()), "events_at_risk": int((at_risk & y_all).sum())})
    return pd.DataFrame(rows, columns=["transition", "from_stage", "to_stage", "n_at_risk", "events_at_risk"])


def campaign_influence(data, *, exposure_days: float = 30, outcome_days: float = 90,
                       transitions=None, by=("campaign", "channel"),
                       covariates=DEFAULT_COVARIATES, min_group_size: int = 20,
                       alpha: float = 0.05, method: str = "standardization", estimand: str = "ATT",
                       history=None, cox: bool = True, as_of=None,
                       progress: bool | None = None, design: str = "landmark") -> InfluenceResult:
    """Influence of each campaign (and channel) on each stage transition.

    Landmark design: for transition s→s+1, the cohort is every account
    that entered s with a fully observed window (entry + exposure_days +
    outcome_days ≤ data end). Exposed = touched by the campaign in
    ``[entry, entry + exposure_days)``. At risk = still in s at the landmark
    ``L = entry + exposure_days`` (exposure is fixed before outcomes are counted,
    so no immortal-time bias). Outcome = entering s+1 in ``(L, L + outcome_days]``.

    Parameters
    ----------
    data : ResolvedDataset
        :func:`abmkit.prepare` output (a plain Dataset is prepared with defaults); its
        ``data_end`` is the censoring date.
    history : StageHistory, optional
        :func:`abmkit.progression.stage_history` of ``data`` (default: built, and
        shared through the dataset, with the default rules).

    Returns
    -------
    InfluenceResult whose ``table`` has one row per level (campaign / channel) ×
    unit × transition: n, rates, naive difference and ratio with CIs, p-value,
    BH q-value over all rows, adjusted difference (estimand ``estimand``, default
    ATT), Cox hazard ratio (landmark cohort: accounts still in s at L, exposure fixed
    at L, adjusted for the covariates, exact times from L, censored at the data end or
    L + outcome_days),
    KM median days to s+1 for exposed / unexposed at-risk accounts and their
    difference (``acceleration_days``, negative = faster), the transition baseline
    rate and the lift against it, and ``flag``/``flag_reason``.

    Example
    -------
    >>> res = campaign_influence(abmkit.prepare(abmkit.load("data/sample/canonical")))   # doctest: +SKIP
    >>> res.table.sort_values("q_value").head()                          # doctest: +SKIP
    """
    from .engine import is_partitioned, run
    if is_partitioned(data):  # a partitioned dataset: the same analysis on its partitions (docs/scale.md)
        return run("campaign_influence", data, exposure_days=exposure_days, outcome_days=outcome_days,
                   transitions=transitions, by=by, covariates=covariates, min_group_size=min_group_size,
                   alpha=alpha, method=method, estimand=estimand, history=history, cox=cox, as_of=as_of,
                   progress=progress, design=design)
    from .progress import progress_bar

    by = [by] if isinstance(by, str) else list(by)
    bad = [b for b in by if b not in ("campaign", "channel")]
    if bad:
        raise ValueError(f"by must name 'campaign' and/or 'channel', not {bad}")
    dataset = resolve(data)
    tt = account_touches(dataset)
    if history is None:
        history = stage_history(dataset, as_of=as_of)
    end = data_end(history, as_of)
    end_ns = end.value
    accounts = dataset.accounts.reset_index(drop=True)
    ids = accounts["account_id"].to_numpy(dtype=object)
    wide = stage_wide(history).reindex(ids)
    cov, cov_missing = covariate_frame(accounts, covariates or (), skip_missing=True)
    covariates = list(cov.columns)

    # touches placed on known accounts, inside the data window
    code = account_codes(ids, tt["account_id"])
    t_ns = _ns(tt["occurred_at"])
    ok = (code >= 0) & (t_ns <= end_ns)
    code, t_ns = code[ok].astype(np.int64), t_ns[ok]
    units = _exposure_units(tt, ok, dataset.campaigns, by)

    exp_ns = int(round(exposure_days * _DAY_NS))
    out_ns = int(round(outcome_days * _DAY_NS))
    rows = []
    trans = parse_transitions(transitions)
    n_units = sum(sum(m is not None for m in meta) for meta, _ in units)
    bar = progress_bar(total=n_units * len(trans), desc="campaign influence", progress=progress)
    z = stats.norm.isf(alpha / 2)
    opts = dict(alpha=alpha, method=method, estimand=estimand, min_group_size=min_group_size, cox=cox,
                exposure_days=exposure_days, outcome_days=outcome_days)
    if design not in ("landmark", "sequential"):
        raise ValueError(f"design must be 'landmark' or 'sequential', not {design!r}")
    cohort_notes = []
    for a, b in trans:
        cohort = _Cohort.build(wide, a, b, end_ns, exp_ns, out_ns, cov, covariates, cox)
        cohort_notes.append((cohort.label, cohort.cov_notes))
        seq = _sequential_cohort(design, cohort, wide, b, end_ns, exp_ns, out_ns, cov, covariates)
        # exposure touches: within [entry, entry + exposure_days)
        e_t = cohort.E[code]
        in_win = (e_t != _INF) & (t_ns >= e_t) & (t_ns < e_t + exp_ns)
        for meta, ucode in units:
            for mt, first_off in _first_exposures(meta, ucode, in_win, t_ns, e_t, code, len(ids)):
                # the sequential design scores campaign rows; channel rows keep the landmark
                # (a channel's touches include the account's own stage-rule activity)
                rows.append(seq.row(mt, first_off, opts) if seq is not None and mt[0] == "campaign"
                            else _unit_row(mt, first_off, cohort, covariates, opts))
                bar.update(1)
    bar.close()
    table = _with_q_values(pd.DataFrame(rows), alpha, bool(covariates))
    dropped = {}  # covariate note -> transitions where it applies
    for label, notes in cohort_notes:
        for n in notes:
            dropped.setdefault(n, []).append(label)
    if design == "sequential" and len(table):
        table["design"] = table["design"].fillna("landmark") if "design" in table else "landmark"
    params = dict(exposure_days=exposure_days, outcome_days=outcome_days, alpha=alpha, method=method,
                  estimand=estimand, min_group_size=min_group_size, covariates=list(covariates or []),
                  covariate_notes=cov_missing, adjustment_note=_adjustment_note(cov_missing, dropped),
                  data_end=str(end), z=z, design=design)
    from .applicability import check, mark  # n/a without touches (or contacts: no stage to move through)
    return mark(InfluenceResult(table, history, params), check(dataset, "channel_influence"))


def _adjustment_note(missing: list, dropped: dict) -> str:
    """One sentence of the table's definition: the covariates not adjusted for and
    why (absent from the data; constant among a transition's at-risk accounts, so
    nothing to adjust for), "" when every covariate is used."""
    parts = list(missing)
    parts += [f"{n.replace(' (dropped)', '')} among the at-risk accounts of {', '.join(tr)}: not adjusted for "
              "there (nothing to adjust for; the rows are not affected)" for n, tr in dropped.items()]
    return "; ".join(parts)


# --------------------------------------------------------------------------- campaign influence steps
def _sequential_cohort(design, cohort, wide, b, end_ns, exp_ns, out_ns, cov, covariates):
    """``design="sequential"``: the transition's cohort of :mod:`abmkit.sequential`
    (exposure-time-anchored trials); None for the landmark design."""
    if design == "landmark":
        return None
    from .sequential import SequentialCohort
    X = _design(cov)[0] if covariates else None
    return SequentialCohort(cohort.label, cohort.a, b, cohort.E, _ns(wide[b]), end_ns, exp_ns, out_ns, X)


def _exposure_units(tt: pd.DataFrame, ok: np.ndarray, camp: pd.DataFrame, by) -> list:
    """Step 1: the units whose exposure is tested, per level: ``(meta, unit code per
    touch)`` with ``meta[i] = (level, unit, campaign_id, name, channel)`` (None: a
    channel absent from the data)."""
    units = []
    if "campaign" in by:
        cid = tt["campaign_id"].to_numpy(dtype=object)[ok]
        # one hash pass over the touches; the campaign ids are few
        cid_codes, cid_uniques = pd.factorize(cid, use_na_sentinel=True)
        cid_uniques = np.asarray(cid_uniques, dtype=object)
        known = list(camp["campaign_id"]) + sorted(set(cid_uniques) - set(camp["campaign_id"]))
        ucode = np.r_[pd.Index(known).get_indexer(cid_uniques), -1][cid_codes]  # code -1 (missing) -> -1
        info = camp.set_index("campaign_id")
        need = [k for k in known if not (k in info.index and pd.notna(info["channel"].get(k)))]
        touch_channel = pd.Series(dtype=object)
        if need:  # campaigns without a channel in the campaigns table: the first touch's channel
            ch_obj = tt["channel"].astype(object).to_numpy()[ok]
            touch_channel = (pd.DataFrame({"c": cid, "ch": ch_obj}).dropna().drop_duplicates("c")
                             .set_index("c")["ch"])
        meta = [("campaign", k, k,
                 info["campaign_name"].get(k) if k in info.index else None,
                 (info["channel"].get(k) if k in info.index and pd.notna(info["channel"].get(k))
                  else touch_channel.get(k))) for k in known]
        units.append((meta, ucode))
    if "channel" in by:
        ucode = _category_codes(tt["channel"], CHANNELS)[ok]
        present = set(np.unique(ucode[ucode >= 0]))
        meta = [("channel", c, None, None, c) if i in present else None for i, c in enumerate(CHANNELS)]
        units.append((meta, ucode))
    return units


@dataclass
class _Cohort:
    """Step 2: one transition's landmark cohort, fitted once for every unit: entry
    times, the at-risk accounts and their outcomes, covariate design, warm starts of the
    logistic and Cox fits, sorted days for the KM medians, and the Cox cohort."""
    label: str
    a: str
    b: str
    E: np.ndarray
    risk_idx: np.ndarray
    y: np.ndarray
    X: np.ndarray | None
    cov_notes: list
    base_rate: float
    warm: np.ndarray | None
    warm_p: np.ndarray | None
    km_order: np.ndarray
    km_days: np.ndarray
    km_event: np.ndarray
    base_med: float
    cox_idx: np.ndarray
    cox_stop: np.ndarray
    cox_event: np.ndarray
    X_cox: np.ndarray | None
    cox_init: np.ndarray | None

    @classmethod
    def build(cls, wide, a, b, end_ns, exp_ns, out_ns, cov, covariates, cox) -> "_Cohort":
        E = _ns(wide[a])
        N = _ns(wide[b])
        entered, L, at_risk, y_all = _landmark(E, N, end_ns, exp_ns, out_ns)
        # days from entry to s+1 (censored at the data end) for acceleration
        days_all = (np.minimum(N, end_ns) - np.minimum(E, end_ns)) / _DAY_NS
        ev_all = N <= end_ns
        risk_idx = np.flatnonzero(at_risk)
        y = y_all[risk_idx].astype(float)
        X, _, cov_notes = _design(cov.iloc[risk_idx]) if covariates else (None, [], [])
        base_rate = float(y.mean()) if len(y) else np.nan
        warm = warm_p = None
        if covariates and len(y) and 0 < y.sum() < len(y):
            try:  # covariates-only fit: every campaign's fit starts from it
                D0 = np.column_stack([np.ones(len(y)), X])
                b0 = logit_fit(y, D0)[0]
                warm = np.r_[b0[0], 0.0, b0[1:]]
                warm_p = _expit(_matvec(D0, b0))
            except (SeparationError, np.linalg.LinAlgError):
                warm = warm_p = None
        # at-risk days sorted once: every campaign's exposed / unexposed KM median
        # works on sorted subsets (no sort per test)
        km_order = np.argsort(days_all[risk_idx], kind="stable")
        km_days, km_event = days_all[risk_idx][km_order], ev_all[risk_idx][km_order]
        base_med = _km_median_sorted(km_days, km_event)[0] if len(y) else np.nan
        # Cox cohort: the landmark cohort of the difference, with censoring instead of a
        # complete window: accounts still in s at the landmark L (whose exposure window
        # lies inside the data), time from L, exposure fixed at L, follow-up to s+1, the
        # data end or L + outcome_days. Time from *entry* with a time-varying exposure
        # counted accounts that moved on before L, whose stage-rule touches (the
        # activity that makes them move) fall inside the exposure window: always-on
        # channels then "raised the hazard" without any effect (issue 19).
        cox_idx = np.flatnonzero(entered & (L <= end_ns) & (N > L))
        Lc = L[cox_idx]
        stop_ns = np.minimum.reduce([N[cox_idx], np.full(len(cox_idx), end_ns), Lc + out_ns]) - Lc
        cox_event = N[cox_idx] <= np.minimum(end_ns, Lc + out_ns)
        keep_cox = stop_ns > 0  # at the data end exactly: no follow-up
        cox_idx, stop_ns, cox_event = cox_idx[keep_cox], stop_ns[keep_cox], cox_event[keep_cox]
        cox_stop = _time_ranks(stop_ns)
        X_cox = _design(cov.iloc[cox_idx])[0] if covariates and cox else None
        cox_init = None
        if cox and X_cox is not None and X_cox.shape[1] and cox_event.any():
            try:  # covariates-only Cox fit: every campaign's fit starts from it
                with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                    b_cov = cox_breslow(np.zeros(len(cox_idx), np.int64), cox_stop, cox_event, X_cox)[0]
                cox_init = np.r_[0.0, b_cov] if np.all(np.isfinite(b_cov)) else None
            except (SeparationError, np.linalg.LinAlgError):
                cox_init = None
        return cls(label=transition_label(a, b), a=a, b=b, E=E, risk_idx=risk_idx, y=y, X=X, cov_notes=cov_notes,
                   base_rate=base_rate, warm=warm, warm_p=warm_p, km_order=km_order, km_days=km_days,
                   km_event=km_event, base_med=base_med, cox_idx=cox_idx, cox_stop=cox_stop, cox_event=cox_event,
                   X_cox=X_cox, cox_init=cox_init)


def _first_exposures(meta, ucode, in_win, t_ns, e_t, code, n_acc):
    """Step 3: for each unit, every account's first exposure inside its window, as an
    offset from its entry into the stage (``_INF`` = not exposed). Yields
    ``(meta row, offsets)`` per unit present in the data."""
    m = in_win & (ucode >= 0)
    # first exposure per (unit, account): sort by offset, keep the first row of each key
    off = t_ns[m] - e_t[m]
    o = np.argsort(off, kind="stable")
    pair_keys, first_row = np.unique((ucode[m] * n_acc + code[m])[o], return_index=True)
    pair_off = off[o][first_row]
    unit_bounds = np.searchsorted(pair_keys, np.arange(len(meta) + 1) * n_acc)
    for ui, mt in enumerate(meta):
        if mt is None:
            continue
        lo, hi = unit_bounds[ui], unit_bounds[ui + 1]
        first_off = np.full(n_acc, _INF, dtype=np.int64)
        first_off[pair_keys[lo:hi] - ui * n_acc] = pair_off[lo:hi]
        yield mt, first_off


def _unit_row(mt, first_off, c: _Cohort, covariates, opts) -> dict:
    """Step 4: the statistics of one unit at one transition: the two-group comparison
    of exposed and unexposed at-risk accounts (naive and adjusted), KM medians and the
    Cox hazard ratio."""
    level, unit, cid_, name, chan = mt
    t = (first_off != _INF)[c.risk_idx].astype(float)
    # a covariate constant in the cohort (e.g. ICP fit when the stage rule requires it)
    # is dropped from every row's adjustment alike: said once in the table's definition
    # (params["adjustment_note"]), not as a flag on each row
    notes = []
    if len(c.risk_idx) == 0:
        notes.append(f"no account in stage {c.a} with a complete {opts['exposure_days']:g}+"
                     f"{opts['outcome_days']:g}-day window")
    start = c.warm
    if c.warm is not None:
        # one Newton step in the exposure coefficient alone from the covariates-only
        # fit: the full fit then needs ~1/3 fewer iterations
        info_t = float(np.sum(t * c.warm_p * (1 - c.warm_p)))
        if info_t > 0:
            start = c.warm.copy()
            start[1] = np.clip(np.sum(t * (c.y - c.warm_p)) / info_t, -10, 10)
    min_group_size = opts["min_group_size"]
    r = _two_group_arrays(t, c.y, c.X if covariates else None, alpha=opts["alpha"], method=opts["method"],
                          estimand=opts["estimand"], min_group_size=min_group_size, notes=notes,
                          adjust=bool(covariates), start=start)
    row = {"level": level, "unit": unit, "campaign_id": cid_, "campaign_name": name, "channel": chan,
           "transition": c.label, "from_stage": c.a, "to_stage": c.b, "n_at_risk": len(c.risk_idx)}
    d = r.to_frame().iloc[0].to_dict()
    extra = []
    hr = (np.nan,) * 4
    med1 = med0 = np.nan
    if r.n_treated > 0 and r.n_control > 0:
        ex_r = t[c.km_order] == 1
        med1, n1note = _km_median_sorted(c.km_days[ex_r], c.km_event[ex_r])
        med0, n0note = _km_median_sorted(c.km_days[~ex_r], c.km_event[~ex_r])
        if n1note:
            extra.append(f"exposed median days: {n1note}")
        if n0note:
            extra.append(f"unexposed median days: {n0note}")
        small = r.n_treated < min_group_size or r.n_control < min_group_size
        if opts["cox"] and small:
            extra.append("Cox: not fitted (small group)")
        elif opts["cox"]:
            hr = _cox_rows(c.cox_idx, c.cox_stop, c.cox_event, first_off, c.X_cox, opts["alpha"], c.cox_init)
            if hr[4]:
                extra.append(hr[4])
            hr = hr[:4]
    row.update(d)
    row.update(hazard_ratio=hr[0], hr_low=hr[1], hr_high=hr[2], hr_p_value=hr[3],
               median_days_exposed=med1, median_days_unexposed=med0,
               acceleration_days=med1 - med0, baseline_rate=c.base_rate,
               baseline_median_days=c.base_med, lift_vs_baseline=r.rate_treated - c.base_rate)
    row["stat_notes"] = "; ".join(extra)
    return row


def _with_q_values(table: pd.DataFrame, alpha: float, adjusted: bool) -> pd.DataFrame:
    """Step 5: Benjamini-Hochberg q-values over every row (naive, and the headline one
    on the adjusted test where there is one), significance, column order."""
    from statsmodels.stats.multitest import multipletests

    if table.empty:  # no campaign / channel in the data: an empty table with the columns
        table = pd.DataFrame(columns=["level", "unit", "campaign_id", "campaign_name", "channel", "transition",
                                      "from_stage", "to_stage", "n_at_risk", *TWO_GROUP_COLUMNS, "significant"])
    table["q_value"] = np.nan
    table["naive_q_value"] = np.nan
    if len(table):
        p = table["p_value"].to_numpy(dtype=float)
        fin = np.isfinite(p)
        if fin.any():
            table.loc[fin, "naive_q_value"] = multipletests(p[fin], alpha=alpha, method="fdr_bh")[1]
        # the headline q-value tests the adjusted effect where there is one: a
        # confounded campaign must not look significant because of its naive p
        p_adj = table["adj_p_value"].to_numpy(dtype=float) if adjusted else p
        p_main = np.where(np.isfinite(p_adj), p_adj, p) if adjusted else p
        fin = np.isfinite(p_main)
        table["q_source"] = np.where(np.isfinite(p_adj), "adjusted", np.where(np.isfinite(p), "naive", "none"))
        if fin.any():
            table.loc[fin, "q_value"] = multipletests(p_main[fin], alpha=alpha, method="fdr_bh")[1]
        table["significant"] = table["q_value"] < alpha
        first_cols = ["level", "unit", "campaign_id", "campaign_name", "channel", "transition", "from_stage",
                      "to_stage", "n_at_risk", "n_treated", "n_control", "rate_treated", "rate_control", "diff",
                      "diff_low", "diff_high", "ratio", "ratio_low", "ratio_high", "p_value", "q_value",
                      "significant", "adj_diff", "adj_diff_low", "adj_diff_high", "adj_p_value"]
        table = table[first_cols + [c for c in table.columns if c not in first_cols]]
    return table


def _km_median_sorted(days: np.ndarray, event: np.ndarray) -> tuple[float, str]:
    """Kaplan–Meier median and note of :func:`abmkit.progression.km_median`
    (without its CI) for ``days`` sorted ascending: the same arithmetic as
    statsmodels ``SurvfuncRight`` (so the same number), minus its sort and
    standard errors, for the two medians of every campaign test."""
    if len(days) == 0:
        return np.nan, "no accounts"
    if not event.any():
        return np.nan, "no account progressed (median not reached)"
    is_new = np.ones(len(days), dtype=bool)
    is_new[1:] = days[1:] != days[:-1]
    rtime = np.cumsum(is_new) - 1
    utime = days[is_new]
    ml = len(utime)
    d = np.bincount(rtime, weights=event.astype(int), minlength=ml)
    n = np.bincount(rtime, minlength=ml)
    n = np.cumsum(n[::-1])[::-1]
    keep = np.flatnonzero(d > 0)
    d, n, utime = d[keep], n[keep], utime[keep]
    sp = 1 - d / n.astype(np.float64)
    zero = sp < 1e-16
    sp[zero] = 1e-16
    sp = np.exp(np.cumsum(np.log(sp)))
    sp[zero] = 0
    hit = np.flatnonzero(sp <= 0.5 + 1e-12)  # the first time S(t) <= 1/2, as km_median
    if not len(hit):
        return np.nan, "median not reached (fewer than half progressed before censoring)"
    return float(utime[hit[0]]), ""


def _time_ranks(t: np.ndarray) -> np.ndarray:
    """Dense ranks 1, 2, ... of exact (ns) follow-up times: the integer grid of
    :func:`cox_breslow` without rounding to days. The partial likelihood depends on
    the order of the times only, so ranks give the continuous-time fit (whole-day
    times tie accounts that moved on the same day and pulled hazard ratios to 1)."""
    u, inv = np.unique(np.asarray(t), return_inverse=True)
    return (inv.ravel() + 1).astype(np.int64)


def _cox_rows(idx, stop, event, first_off, X_cohort, alpha, init=None):
    """Landmark Cox fit of one unit: one row per account of the Cox cohort, exposure
    fixed at the landmark (a touch of the unit in the exposure window), follow-up
    ``(0, stop]`` on the rank grid of :func:`_time_ranks`."""
    ex = (first_off[idx] != _INF).astype(float)
    return cox_time_varying(np.zeros(len(idx), np.int64), stop, event, ex, X_cohort, alpha, init)


def compare_to_truth(table: pd.DataFrame, effects: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Estimates beside the true effects of a synthetic sample (``effects``:
    campaign_id, transition, att_diff, ...; the generator's truth table).

    One row per planted campaign × transition: true ATT, naive and adjusted
    estimates with CIs, whether the adjusted CI covers the truth, the errors of
    both estimates, and the q-value.

    With the truth of every pair (``truth["pair_effects"]``: columns level, unit,
    transition, ...) instead: one row per row of ``table`` (campaign and channel), its
    ``true_effect`` (``att_diff``; ``seq_att_diff`` for rows of the sequential design),
    and ``false_discovery`` = significant while the truth is 0 (:func:`_compare_pairs`).
    """
    if {"level", "unit"} <= set(effects.columns):
        return _compare_pairs(table, effects, alpha)
    t = table[table["level"] == "campaign"]
    keep = [c for c in ("campaign_id", "campaign_name", "transition", "story", "att_diff", "is_zero_effect",
                        "is_confounded", "true_median_days_exposed_with", "true_median_days_exposed_without")
            if c in effects.columns]
    m = effects[keep].merge(t[["campaign_id", "transition", "n_treated", "n_control", "diff", "diff_low",
                               "diff_high", "adj_diff", "adj_diff_low", "adj_diff_high", "q_value",
                               "acceleration_days", "hazard_ratio", "flag_reason"]],
                            on=["campaign_id", "transition"], how="left")
    m["adj_covers_truth"] = (m["adj_diff_low"] <= m["att_diff"]) & (m["att_diff"] <= m["adj_diff_high"])
    m["naive_covers_truth"] = (m["diff_low"] <= m["att_diff"]) & (m["att_diff"] <= m["diff_high"])
    m["naive_error"] = m["diff"] - m["att_diff"]
    m["adj_error"] = m["adj_diff"] - m["att_diff"]
    m["significant"] = m["q_value"] < alpha
    m["label"] = m["campaign_id"].astype(str) + "  " + m["transition"].astype(str)
    return m


def _compare_pairs(table: pd.DataFrame, pairs: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Every row of ``table`` beside its truth row of ``pairs`` (the generator's truth
    for every tested pair), scored against the truth of the row's design."""
    keys = ["level", "unit", "transition"]
    cols = [c for c in ("story", "effect_source", "att_diff", "seq_att_diff", "is_zero_effect",
                        "acts_before_landmark", "planted_at", "relation", "truth_note") if c in pairs.columns]
    m = table.merge(pairs[keys + cols], on=keys, how="left")
    seq = m["design"].eq("sequential").to_numpy() if "design" in m else np.zeros(len(m), bool)
    truth = m["att_diff"].to_numpy(dtype=float)
    if "seq_att_diff" in m:
        truth = np.where(seq, m["seq_att_diff"].to_numpy(dtype=float), truth)
    m["true_effect"] = truth
    known = m["true_effect"].notna()  # NaN truth (stated in truth_note): coverage unknown, not False
    m["adj_covers_truth"] = ((m["adj_diff_low"] <= m["true_effect"]) & (m["true_effect"] <= m["adj_diff_high"])
                             ).astype("boolean").where(known)
    m["naive_covers_truth"] = ((m["diff_low"] <= m["true_effect"]) & (m["true_effect"] <= m["diff_high"])
                               ).astype("boolean").where(known)
    m["naive_error"] = m["diff"] - m["true_effect"]
    m["adj_error"] = m["adj_diff"] - m["true_effect"]
    m["significant"] = m["q_value"] < alpha
    m["false_discovery"] = m["significant"] & m["is_zero_effect"].astype("boolean").fillna(False).astype(bool)
    m["label"] = m["unit"].astype(str) + "  " + m["transition"].astype(str)
    return m
