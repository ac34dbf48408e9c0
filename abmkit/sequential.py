"""Sequential-trial design of campaign influence: exposure-time-anchored comparisons
(see docs/progression_and_uplift.md, "Which design").

The landmark design compares accounts still in stage s at the landmark. When a
campaign also acts *before* the landmark (it makes exposed accounts move on early),
"still in s at the landmark" is itself an effect of exposure, and the exposed
accounts that remain are a selected group (the slow ones): the landmark difference
is biased, typically towards 0. This module anchors every comparison at the moment
of exposure instead.

Design, per transition s→s+1 and unit (campaign or channel):

* cohort: accounts that entered s with a complete window (entry + exposure_days +
  outcome_days inside the data), as the landmark design;
* one *trial* per day ``k`` of the exposure window. **Treated** in trial k: the
  account's first touch of the unit falls on day k after entry while it is still in
  s; its clock starts at that touch. **Controls** in trial k: accounts still in s
  and untouched by the unit at mid-day k; their clock starts then. An account
  is a control in every trial before its own exposure (clustered in the variance);
* outcome: entering s+1 within ``outcome_days`` of the clock start;
* controls are **censored** when they are later touched by the unit (the comparison
  is with never being touched in the window, not with "touched later"), and the
  censoring is undone by inverse-probability weights from a pooled logistic model of
  the daily hazard of first exposure (day-of-window bins + covariates);
* the same model gives the **ATT weights**: controls of trial k are weighted by the
  odds h/(1 − h) of being exposed that day given their covariates, so they stand
  for the treated of that trial;
* risks at ``outcome_days`` by Kaplan–Meier on a daily grid, per arm (the treated
  arm has no censoring: its risk is a plain share); CI by the influence function
  of the weighted KM, summed per account (robust to an account appearing in many
  trials), weights treated as known; Student t reference with the landmark design's
  degrees of freedom (:func:`abmkit.uplift.adjusted_df`: the smallest of treated and
  control accounts with and without the event).

Rows with fewer treated or control accounts than ``min_group_size`` are not estimated
(n/a, ``flag_reason`` "small group (...); not estimated"). The work per unit is accounts ×
window days² (the exposure model on counts per account and day bin; the weighted KM on
sums per account, whose control rows share its daily weights), never rows × days.

Estimand (``seq_att_diff`` in the sample's truth): among accounts touched by the
unit while still in s, the risk of reaching s+1 within outcome_days after the first
touch, minus that risk had they not been touched by the unit in the window.

Valid when exposure acts from the touch on (before the landmark too), and exposure
timing depends only on the covariates and the day (no unmeasured reason to be
touched that also drives progression). Under the landmark assumption (no effect
before the landmark) both designs are unbiased for their own estimands; they differ
because the landmark counts only progress after the landmark.

Example
-------
>>> import numpy as np
>>> day = 86_400_000_000_000
>>> E = np.zeros(6, np.int64); N = np.array([5, 40, 60, 200, 20, 100]) * day
>>> f = np.array([2, 10, 10, 3, 25, 10]) * day  # first touches; account 0 moved before its touch
>>> f[[3, 5]] = np.iinfo(np.int64).max         # accounts 3 and 5 never touched
>>> r = sequential_estimate(E, N, f, exp_ns=30 * day, out_ns=90 * day)
>>> r["n_treated"], r["rate_treated"]            # exposed in stage: accounts 1, 2, 4
(3, 1.0)
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from .uplift import adjusted_df

DAY_NS = 86_400_000_000_000
_INF = np.iinfo(np.int64).max
#: the exposure hazard varies by day of the window in bins of this many days
DAY_BIN = 5


def _binomial_logit(k, m, X, max_iter=40):
    """Logistic regression on grouped binomial counts by Newton-Raphson: ``k[i, j]``
    exposures out of ``m[i, j]`` eligible days of account i in day bin j, linear
    predictor ``b0 + b_bin[j] (j >= 1) + X[i] @ b_x``, with a tiny ridge so that a day
    bin without any exposure stays finite (its hazard goes to ~0, as it should). Stops
    when the expected counts no longer move (a separated bin never converges in beta).

    The design is never materialised (accounts x bins rows): gradient and Hessian are
    sums over the (account, bin) grid, whose cells without eligible days add 0."""
    n, nb = m.shape
    p_x = 0 if X is None else X.shape[1]
    P = nb + p_x
    b = np.zeros(P)
    ridge = 1e-4
    mu_old = np.zeros_like(m)
    for _ in range(max_iter):
        eta = b[0] + np.r_[0.0, b[1:nb]][None, :]
        if p_x:
            eta = eta + np.einsum("ij,j->i", X, b[nb:])[:, None]
        p = 1.0 / (1.0 + np.exp(-np.clip(np.broadcast_to(eta, m.shape), -30, 30)))
        mu = m * p
        if np.max(np.abs(mu - mu_old)) < 1e-7:
            break
        mu_old = mu
        r = k - mu
        w = mu * (1 - p)
        r_bin, w_bin = r.sum(axis=0), w.sum(axis=0)
        g = np.r_[r_bin.sum(), r_bin[1:]]
        H = np.zeros((P, P))
        H[0, 0] = w_bin.sum()
        H[0, 1:nb] = H[1:nb, 0] = w_bin[1:]
        H[np.arange(1, nb), np.arange(1, nb)] = w_bin[1:]
        if p_x:
            w_acc = w.sum(axis=1)
            # einsum, not BLAS: threaded gemm spins on a busy machine for these small matrices
            g = np.r_[g, np.einsum("ij,i->j", X, r.sum(axis=1))]
            H[0, nb:] = H[nb:, 0] = np.einsum("ij,i->j", X, w_acc)
            H[1:nb, nb:] = np.einsum("ib,ij->bj", w[:, 1:], X)
            H[nb:, 1:nb] = H[1:nb, nb:].T
            H[nb:, nb:] = np.einsum("ij,il->jl", X * w_acc[:, None], X)
        g = g - ridge * b
        H[np.arange(P), np.arange(P)] += ridge
        b = b + np.linalg.solve(H, g)
    return b


def _exposure_hazard(D, f, G, X):
    """Daily hazard of first exposure h[i, k] (accounts × window days) from a pooled
    logistic model of the person-days still in s and unexposed (day-of-window bins +
    covariates), fitted on counts per (account, bin); None (and a note) if no fit."""
    n = len(D)
    k = np.arange(G)
    elig = (D[:, None] > k[None, :]) & (f[:, None] >= k[None, :])
    hit = elig & (np.floor(f)[:, None] == k[None, :]) & (f < D)[:, None]
    if not hit.any():
        return None, "no exposure while in the stage: no exposure model"
    bins = np.minimum(k // DAY_BIN, (G - 1) // DAY_BIN)
    nb = int(bins.max()) + 1
    B = (bins[:, None] == np.arange(nb)[None, :]).astype(float)          # day -> bin one-hot
    m = elig.astype(float) @ B                                          # eligible days per (account, bin)
    e = hit.astype(float) @ B
    Xc = X if X is not None and X.shape[1] else None
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            beta = _binomial_logit(e, m, Xc)
        if not np.all(np.isfinite(beta)):
            raise FloatingPointError("not finite")
    except (np.linalg.LinAlgError, FloatingPointError) as exc:
        return None, f"exposure model failed ({type(exc).__name__}): unweighted comparison only"
    eta_day = np.r_[0.0, beta[1:nb]][bins] + beta[0]
    eta = eta_day[None, :] + (X @ beta[nb:])[:, None] if X is not None and X.shape[1] else \
        np.broadcast_to(eta_day, (n, G))
    h = 1.0 / (1.0 + np.exp(-np.clip(eta, -30, 30)))
    return np.clip(h, 1e-9, 1 - 1e-6), ""


def _weighted_km_risk(event_day, last_day, w_win, w_end, n_win, cluster, n_clusters, H):
    """Risk by day H of a weighted Kaplan–Meier on follow-up days 1..H, and its
    variance by the influence function summed per cluster (account).

    Row r's weight is ``w_win[r, d-1]`` on days ``d <= n_win[r]`` (the days its
    censoring weight still changes) and ``w_end[r]`` after, so the work is rows ×
    window days, not rows × H."""
    rows = np.arange(len(event_day))
    G = w_win.shape[1]
    d = np.arange(1, G + 1)
    # part A: days inside the row's changing-weight span; part B: constant weight after
    inA = (d[None, :] <= n_win[:, None]) & (d[None, :] <= last_day[:, None])
    MA = np.where(inA, w_win, 0.0)
    b_lo, b_hi = n_win + 1, last_day
    hasB = b_hi >= b_lo
    RA = np.zeros(max(G, H) + 2)
    RA[1:G + 1] = MA.sum(axis=0)
    RA = RA[:H + 2]  # a window longer than the follow-up: its days after H count nowhere
    RB = np.cumsum(np.bincount(b_lo[hasB], weights=w_end[hasB], minlength=H + 2)[:H + 2]
                   - np.bincount(b_hi[hasB] + 1, weights=w_end[hasB], minlength=H + 2)[:H + 2])
    ev = event_day >= 1
    w_ev = np.where(event_day <= n_win, w_win[rows, np.clip(event_day - 1, 0, G - 1)], w_end)
    Dn = np.bincount(event_day[ev], weights=w_ev[ev], minlength=H + 2)[:H + 2]
    S, g, he = _km_steps((RA + RB)[1:H + 1], Dn[1:H + 1])
    gc = np.r_[0.0, np.cumsum(g)]                                    # gc[j] = Σ_{d<=j} g_d
    part = MA[:, :H] @ g[:G] + np.where(hasB, w_end * (gc[np.minimum(b_hi, H)] - gc[np.minimum(n_win, H)]), 0.0)
    IF_S = S * (part - np.where(ev, w_ev * he[np.clip(event_day - 1, 0, H - 1)], 0.0))
    per = np.bincount(cluster, weights=-IF_S, minlength=n_clusters)
    return 1.0 - S, float(np.sum(per ** 2))


def _km_steps(Rt: np.ndarray, Dt: np.ndarray) -> tuple:
    """Weighted Kaplan–Meier from the daily risk sets ``Rt`` and events ``Dt`` (days
    1..H): the survival ``S`` at day H and the daily terms of its influence function
    (``g``: through the risk sets, ``he``: through the events). Shared by the row form
    and the per-account form of :func:`_weighted_km_risk`."""
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = np.where(Rt > 0, Dt / Rt, 0.0)
        S = float(np.prod(1 - lam))
        q = np.maximum(1 - lam, 1e-12)  # every account at risk moved that day: S = 0, keep the IF finite
        g = np.where(Rt > 0, lam / (q * Rt), 0.0)
        he = np.where(Rt > 0, 1.0 / (q * Rt), 0.0)
    return S, g, he


def _km_risk_by_account(event_day, last_day, a, C, ci, ck, n_win, n_acc, H):
    """:func:`_weighted_km_risk` when row r = (account ``ci``, trial ``ck``) weighs
    ``a[r] * C[ci, min(ck + d, G)]`` on follow-up day d (``C``: accounts × G+1), as
    the sequential design's weights do. Inside the window a row covers calendar days
    ``ck + 1 .. M`` of its account, where ``M = ck + min(n_win, last_day)`` is the same
    for every row of an account (its own exposure, move or window end), so the risk set
    and the influence function inside the window are sums of an accounts × window-days
    matrix product (G × G work per account, no rows × days arrays). None when that
    precondition fails (then the caller uses the row form)."""
    G = C.shape[1] - 1
    # a row capped at follow-up day H covers its window days up to H (applied below)
    M_row = ck + np.where(last_day >= H, n_win, np.minimum(n_win, last_day))
    M = np.full(n_acc, -1, np.int64)
    M[ci] = M_row
    if not np.array_equal(M[ci], M_row):
        return None
    A = np.zeros((n_acc, G))
    A[ci, ck] = a                                                   # row weights on the (account, trial) grid
    cal = np.arange(G)
    Cm = np.where(cal[None, :] <= M[:, None], C[:, :G], 0.0)       # day weights, 0 after the account's M
    # P[k, c] = Σ_i A[i, k] Cm[i, c]: the weight on calendar day c of the trial-k rows
    P = np.einsum("ik,ic->kc", A, Cm)
    off = cal[None, :] - cal[:, None]                                # follow-up day d = c - k
    day = (off > 0) & (off <= H)
    RA = np.zeros(H + 2)
    RA[1:H + 1] = np.bincount(off[day] - 1, weights=P[day], minlength=H)[:H]
    w_end = a * C[ci, G]
    b_lo, b_hi = n_win + 1, last_day
    hasB = b_hi >= b_lo
    RB = np.cumsum(np.bincount(b_lo[hasB], weights=w_end[hasB], minlength=H + 2)[:H + 2]
                   - np.bincount(b_hi[hasB] + 1, weights=w_end[hasB], minlength=H + 2)[:H + 2])
    ev = event_day >= 1
    w_ev = a * C[ci, np.minimum(ck + event_day, G)]
    Dn = np.bincount(event_day[ev], weights=w_ev[ev], minlength=H + 2)[:H + 2]
    S, g, he = _km_steps((RA + RB)[1:H + 1], Dn[1:H + 1])
    gc = np.r_[0.0, np.cumsum(g)]
    # inside the window, per account: Σ_k A[i, k] Σ_{c > k} Cm[i, c] g[c - k]
    T = np.where(day, g[np.clip(off - 1, 0, H - 1)], 0.0)
    part_a = np.einsum("ic,ic->i", np.einsum("ik,kc->ic", A, T), Cm)
    part_r = (np.where(hasB, w_end * (gc[np.minimum(b_hi, H)] - gc[np.minimum(n_win, H)]), 0.0)
              - np.where(ev, w_ev * he[np.clip(event_day - 1, 0, H - 1)], 0.0))
    per = -S * (part_a + np.bincount(ci, weights=part_r, minlength=n_acc))
    return 1.0 - S, float(np.sum(per ** 2))


def sequential_estimate(E, N, first_off, *, exp_ns, out_ns, X=None, end_ns=None, alpha=0.05,
                        min_group_size: int = 0) -> dict:
    """Sequential-trial comparison for one unit at one transition.

    Parameters
    ----------
    E, N : int64 arrays (ns), entry into s and s+1 of the cohort accounts (``N`` =
        ``_INF`` never); only accounts with a complete window should be passed (or
        give ``end_ns`` to drop the others).
    first_off : int64 array, first touch of the unit after entry, as an offset (ns)
        from E, ``_INF`` = none in the window.
    X : covariate matrix of the same accounts (None: no adjustment).
    min_group_size : fewer treated or control accounts than this (but some): the counts
        and the treated share only, no comparison (note ``small group ...; not estimated``).

    Returns
    -------
    dict with n_cohort, n_treated, n_control (accounts used as controls), events,
    rate_treated, rate_control (unweighted), diff with CI and p-value (unweighted
    KM), rate_control_adj, adj_diff with CI and p-value (ATT + censoring weights), adj_se,
    adj_df (degrees of freedom of the t reference of both CIs), notes.
    """
    E = np.asarray(E, np.int64)
    N = np.asarray(N, np.int64)
    fo = np.asarray(first_off, np.int64)
    if end_ns is not None:
        keep = E <= end_ns - exp_ns - out_ns
        E, N, fo = E[keep], N[keep], fo[keep]
        X = None if X is None else X[keep]
    G = int(np.ceil(exp_ns / DAY_NS))
    H = int(np.ceil(out_ns / DAY_NS))
    D = np.where(N == _INF, np.inf, (N - E) / DAY_NS)      # days from entry to s+1
    f = np.where(fo == _INF, np.inf, fo / DAY_NS)          # days from entry to the first touch
    f = np.where(f < exp_ns / DAY_NS, f, np.inf)
    out = {"n_cohort": int(len(E)), "notes": []}
    treated = np.isfinite(f) & (f < D)
    n1 = int(treated.sum())
    # treated arm: clock from the touch, no censoring (complete window)
    y1 = D[treated] <= f[treated] + H + 1e-12
    out.update(n_treated=n1, events_treated=int(y1.sum()))
    # control rows: (account, trial k) still in s and untouched at mid-day k
    k = np.arange(G)
    ok = (D[:, None] > k[None, :] + 0.5) & (f[:, None] >= k[None, :] + 0.5)
    ci, ck = np.nonzero(ok)
    out["n_control"] = n0 = int(len(np.unique(ci)))
    if n1 == 0 or len(ci) == 0:
        out["notes"].append("no treated accounts" if n1 == 0 else "no control accounts")
        return out
    # clock start mid-day: the treated of trial k start at their touch, on average mid-day
    # (starting controls a day-half later would shift their outcome window and bias the risk)
    start = ck + 0.5
    ev_t = D[ci] - start                                    # time to s+1 from the clock start
    cen_t = f[ci] - start                                   # time to the account's own exposure
    event = (ev_t <= H + 1e-12) & (ev_t < cen_t)
    event_day = np.ceil(np.clip(np.where(event, ev_t, 0.0), 1e-12, None)).astype(np.int64) * event
    cen_day = np.where(np.isfinite(cen_t) & (cen_t < ev_t), np.floor(cen_t), H).astype(np.int64)
    last_day = np.where(event, event_day, np.minimum(cen_day, H))
    if min(n1, n0) < min_group_size:
        # too few to compare: n/a and why, as the landmark design flags such rows (no fit spent on them)
        out.update(rate_treated=float(y1.mean()), events_control=int(event.sum()))
        out["notes"] += [f"small group (treated {n1}, control {n0}; minimum {min_group_size})", "not estimated"]
        return out
    p1 = float(y1.mean())
    # variance of the treated share at (events + 1) / (n + 2): never 0 for a small group
    # whose accounts all (or none) moved on
    pt = (y1.sum() + 1.0) / (n1 + 2.0)
    v1 = pt * (1 - pt) / n1
    # unweighted per-protocol comparison (censoring at exposure, no weights)
    n_win = np.maximum(G - ck - 1, 0)                       # follow-up days whose weight may change
    F0, v0 = _km_risk(event_day, last_day, np.ones(len(ci)), np.ones((len(E), G + 1)), ci, ck, n_win, len(E), H)
    out.update(rate_treated=p1, rate_control=F0, events_control=int(event.sum()))
    # Student t reference with the landmark design's degrees of freedom (the smallest cell of
    # treated / control accounts with and without an event; a control counted once however
    # many trials it joins): the normal reference rejected 6.1% of the zero-effect rows in
    # calibration, small event counts and estimated weights make the z interval too short
    ev_acc = np.bincount(ci, weights=event, minlength=len(E)) > 0
    ctl_acc = np.bincount(ci, minlength=len(E)) > 0
    df = adjusted_df(int(y1.sum()), n1, int((ev_acc & ctl_acc).sum()), int(ctl_acc.sum()))
    z = stats.t.isf(alpha / 2, df)
    out["adj_df"] = float(df)
    se = np.sqrt(v1 + v0)
    out.update(diff=p1 - F0, diff_se=se, diff_low=p1 - F0 - z * se, diff_high=p1 - F0 + z * se,
               p_value=float(2 * stats.t.sf(abs((p1 - F0) / se), df)) if se > 0 else np.nan)
    if F0 > 0 and p1 > 0:
        sl = np.sqrt(v1 / p1 ** 2 + v0 / F0 ** 2)
        out.update(ratio=p1 / F0, ratio_low=p1 / F0 * np.exp(-z * sl), ratio_high=p1 / F0 * np.exp(z * sl))
    # weighted: ATT odds of the trial day and censoring weights of later days
    h, note = _exposure_hazard(D, f, G, X)
    if note:
        out["notes"].append(note)
    if h is None:
        return out
    odds = h[ci, ck] / (1 - h[ci, ck])
    # exact balance on the trial day: controls of trial k weigh as much as its treated
    # (the model's day bins are coarse; the risk in the next outcome_days depends on the day)
    n1k = np.bincount(np.floor(f[treated]).astype(np.int64), minlength=G)[:G]
    ok_k = np.bincount(ck, weights=odds, minlength=G)[:G]
    odds = odds * np.where(ok_k > 0, n1k / np.where(ok_k > 0, ok_k, 1.0), 0.0)[ck]
    logc = np.c_[np.zeros(len(E)), np.cumsum(-np.log1p(-h), axis=1)]     # Σ_{j<m} -log(1-h_j)
    # weight on follow-up day d: untouched on window days ck+1 .. ck+d-1 (constant once past the
    # window): odds * C[ci, min(ck + d, G)] / C[ci, ck + 1] with C = exp(logc)
    base = logc[ci, np.minimum(ck + 1, G)]
    F0w, v0w = _km_risk(event_day, last_day, None, None, ci, ck, n_win, len(E), H, logc=logc, odds=odds, base=base)
    sew = np.sqrt(v1 + v0w)
    out.update(rate_control_adj=F0w, adj_diff=p1 - F0w, adj_se=sew, adj_diff_low=p1 - F0w - z * sew,
               adj_diff_high=p1 - F0w + z * sew,
               adj_p_value=float(2 * stats.t.sf(abs((p1 - F0w) / sew), df)) if sew > 0 else np.nan)
    return out


def _km_risk(event_day, last_day, a, C, ci, ck, n_win, n_acc, H, logc=None, odds=None, base=None):
    """Weighted KM risk and variance of the control rows: unit weights (``a``, ``C``
    ones) or, given ``logc``, the sequential weights ``odds * exp(logc[ci, min(ck + d, G)]
    - base)``. The per-account form (:func:`_km_risk_by_account`) when it applies and
    ``exp(logc)`` stays a normal float, the row form (:func:`_weighted_km_risk`, rows ×
    window days) otherwise."""
    G = (C if logc is None else logc).shape[1] - 1
    if logc is None or float(logc[:, -1].max(initial=0.0)) < 300:
        if logc is not None:
            a, C = odds * np.exp(-base), np.exp(logc)
        r = _km_risk_by_account(event_day, last_day, a, C, ci, ck, n_win, n_acc, H)
        if r is not None:
            return r
    if logc is None:  # unit weights
        return _weighted_km_risk(event_day, last_day, np.ones((len(ci), G)), np.ones(len(ci)), n_win, ci,
                                 n_acc, H)
    upto = np.minimum(ck[:, None] + np.arange(1, G + 1)[None, :], G)
    w_win = odds[:, None] * np.exp(logc[ci[:, None], upto] - base[:, None])
    w_end = odds * np.exp(logc[ci, G] - base)
    return _weighted_km_risk(event_day, last_day, w_win, w_end, n_win, ci, n_acc, H)


class SequentialCohort:
    """One transition's sequential-trial cohort inside :func:`abmkit.uplift.campaign_influence`
    (``design="sequential"``): the complete-window entrants with their entry and next-stage
    times and covariates; :meth:`row` gives one unit's table row with the columns of the
    landmark rows (Cox and KM medians are landmark-only: NaN with a note)."""

    def __init__(self, label, a, b, E, N, end_ns, exp_ns, out_ns, X):
        self.label, self.a, self.b = label, a, b
        entered = (E != _INF) & (E <= end_ns)
        self.idx = np.flatnonzero(entered & (E <= end_ns - exp_ns - out_ns))
        self.E, self.N = E[self.idx], N[self.idx]
        self.X = None if X is None else X[self.idx]
        self.exp_ns, self.out_ns = exp_ns, out_ns

    def row(self, mt, first_off, opts) -> dict:
        level, unit, cid, name, chan = mt
        alpha = opts["alpha"]
        r = sequential_estimate(self.E, self.N, first_off[self.idx], exp_ns=self.exp_ns, out_ns=self.out_ns,
                                X=self.X, alpha=alpha, min_group_size=opts["min_group_size"])
        notes = list(r["notes"])
        if len(self.idx) == 0:
            notes.append(f"no account in stage {self.a} with a complete {opts['exposure_days']:g}+"
                         f"{opts['outcome_days']:g}-day window")
        n1, n0 = r.get("n_treated", 0), r.get("n_control", 0)
        if self.X is None:
            notes.append("no covariates: adjusted difference without covariates (censoring weights by day only)")
        nan = np.nan
        row = {"level": level, "unit": unit, "campaign_id": cid, "campaign_name": name, "channel": chan,
               "transition": self.label, "from_stage": self.a, "to_stage": self.b, "n_at_risk": len(self.idx),
               "n_treated": n1, "n_control": n0, "events_treated": r.get("events_treated", 0),
               "events_control": r.get("events_control", 0), "rate_treated": r.get("rate_treated", nan),
               "rate_control": r.get("rate_control", nan)}
        for k in ("diff", "diff_low", "diff_high", "ratio", "ratio_low", "ratio_high", "p_value", "adj_diff",
                  "adj_diff_low", "adj_diff_high", "adj_p_value", "adj_se", "adj_df"):
            row[k] = r.get(k, nan)
        row.update(adj_method="sequential-ipw" if np.isfinite(row["adj_diff"]) else "none", estimand="ATT",
                   alpha=alpha, n_dropped=0, flag=bool(notes), flag_reason="; ".join(dict.fromkeys(notes)),
                   hazard_ratio=nan, hr_low=nan, hr_high=nan, hr_p_value=nan, median_days_exposed=nan,
                   median_days_unexposed=nan, acceleration_days=nan, baseline_rate=nan, baseline_median_days=nan,
                   lift_vs_baseline=nan, design="sequential", rate_control_adjusted=r.get("rate_control_adj", nan),
                   stat_notes="Cox hazard ratio and KM medians: landmark design only")
        return row
