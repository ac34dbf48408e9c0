"""The latent stage process of every account and the exact potential outcomes of
the planted campaigns (see docs/sample_data.md).

Times are float days since the sample start, rounded to whole minutes (raw
exports carry minutes, so truth and data agree to the minute). ``NaN`` = the
stage is not entered before the end of the data.

Transition model for ``s -> s+1`` (aware→engaged, engaged→qualified,
qualified→sales_ready), for an account entering ``s`` at ``T_s``, with an
unobserved frailty ``W`` (gamma, mean 1, variance ``frailty_var``; ``W = 1``
where the variance is 0) and uniforms ``V``, ``U`` drawn per (account, transition):

* **before the landmark** ``L = T_s + exposure_days`` it may progress early:
  hazard ``W · λ_early`` on days 2-28 after entry, ``λ_early`` set so that
  ``P(early) = early_p`` at ``W = 1``; a campaign that *acts before the
  landmark* multiplies this hazard by ``1 / time_factor`` from its first touch
  (offset ``x`` days after entry) on. The early time solves
  ``Λ(t) = -ln(1 - V)``; early progressors are not at risk at ``L``;
* **after the landmark** the time to progression is exponential, realised as
  ``R = -ln(1 - U) / rate`` with ``rate = r(p) · W / Π time_factor_c^e_c`` and
  ``p = min(p0(x) · Π risk_ratio_c^e_c, 0.95)``; ``r(p)`` is chosen so that the
  90-day probability *averaged over W* is ``p`` (``r = -ln(1 - p) / 90`` at ``W = 1``).

Potential outcomes use the same ``V``, ``U``, ``W`` and exposure offsets with the
campaign's exposure switched on and off (common random numbers: the effect is
exact per account). :class:`ProcessState` keeps every draw, so any set of planted
effects can be switched off afterwards (:meth:`ProcessState.durations`): that is
how the generator scores every campaign and channel (``abmkit.sample.truth``).

Example
-------
>>> baseline_probability("aware->engaged", np.array([0.0]), np.array([False]), np.array([1.0])).round(2)
array([0.22])
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .campaigns import A_E, E_Q, Q_S

EXPOSURE_DAYS = 30.0
OUTCOME_DAYS = 90.0
WINDOW_DAYS = 90.0
MAX_PROBABILITY = 0.95
STAGES = ("unaware", "aware", "engaged", "qualified", "sales_ready", "customer")
TRANSITIONS = ((A_E, "aware", "engaged"), (E_Q, "engaged", "qualified"), (Q_S, "qualified", "sales_ready"))
#: p0(x) = clip(sigmoid(logit(base) + size_logit·size_z + target_logit·is_target), low, high), so a
#: logistic adjustment for log employee_count is correctly specified; icp_only → 0 off-ICP.
#: frailty_var: variance of the unobserved gamma frailty W (0 = none). aware->engaged carries
#: it (with more early movers) so that a campaign acting before the landmark biases the
#: landmark comparison (survivors to the landmark are selected on W)
BASELINES = {
    A_E: {"base": 0.22, "size_logit": 0.5, "target_logit": 0.0, "low": 0.03, "high": 0.6,
          "early_p": 0.20, "icp_only": False, "frailty_var": 1.0},
    E_Q: {"base": 0.36, "size_logit": 0.2, "target_logit": 0.15, "low": 0.05, "high": 0.6,
          "early_p": 0.12, "icp_only": True, "frailty_var": 0.0},
    Q_S: {"base": 0.30, "size_logit": 0.2, "target_logit": 0.1, "low": 0.05, "high": 0.38,
          "early_p": 0.12, "icp_only": False, "frailty_var": 0.0},
}
#: unaware→aware: exponential waiting time, median by target flag; a share never becomes aware
AWARE_MEDIAN_DAYS = {"target": 30.0, "other": 100.0}
NEVER_AWARE = 0.08
EARLY_DAYS = (2.0, 28.0)
MIN_RESIDUAL_DAYS = 0.25
#: first touch of a campaign acting before the landmark: uniform offset (days after entry)
FIRST_EXPOSURE_DAYS = (1.0, 25.0)
#: extra touches of such a campaign after its first one (Poisson mean), inside the window
PRE_LANDMARK_EXTRA_TOUCHES = 2.0


def minute(days: np.ndarray) -> np.ndarray:
    """Round float days to whole minutes."""
    return np.round(np.asarray(days, dtype=float) * 1440.0) / 1440.0


def baseline_probability(transition: str, size_z: np.ndarray, is_target: np.ndarray,
                         icp_fit: np.ndarray) -> np.ndarray:
    """90-day progression probability after the landmark without any studied campaign."""
    b = BASELINES[transition]
    logit = np.log(b["base"] / (1 - b["base"])) + b["size_logit"] * size_z + b["target_logit"] * is_target
    p = np.clip(1.0 / (1.0 + np.exp(-logit)), b["low"], b["high"])
    if b["icp_only"]:
        p = np.where(icp_fit >= 0.5, p, 0.0)
    return p


def _rate(p: np.ndarray, theta: float) -> np.ndarray:
    """Hazard per day at W = 1 whose 90-day probability, averaged over a gamma frailty
    of variance ``theta``, is ``p``: ``1 - (1 + θ·r·90)^(-1/θ) = p``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if theta <= 0:
            return -np.log1p(-p) / OUTCOME_DAYS
        return ((1.0 - p) ** (-theta) - 1.0) / (theta * OUTCOME_DAYS)


@dataclass
class TransitionDraws:
    """Every random number of one transition, drawn for all accounts (also those that
    never enter ``s`` in the observed history, so counterfactual histories reuse them)."""
    transition: str
    s: str
    s1: str
    p0: np.ndarray
    assigned: dict          # studied campaign -> bool: assigned to exposure on entering s
    first_offset: dict      # campaign acting before the landmark -> first-touch offset (days)
    V: np.ndarray
    U: np.ndarray
    W: np.ndarray


@dataclass
class ProcessState:
    """The draws and campaign specs of :func:`stage_process`; recomputes durations with
    any planted effects switched off (common random numbers)."""
    specs: dict
    draws: dict = field(default_factory=dict)      # transition label -> TransitionDraws
    entered: dict = field(default_factory=dict)    # transition label -> observed entry day (NaN = not entered)
    touches: pd.DataFrame | None = None            # touches of campaigns acting before the landmark

    def studied(self, transition: str) -> list:
        return list(self.draws[transition].assigned)

    def durations(self, transition: str, off=(), force: dict | None = None) -> np.ndarray:
        """Days from entering ``s`` to entering ``s+1`` per account (minute-rounded,
        ``inf`` = never), with the effects of the campaigns in ``off`` switched off and
        the exposure of the campaigns in ``force`` (cid -> bool) set as given; every
        other exposure as assigned. Accounts that never entered ``s`` get a value too."""
        d = self.draws[transition]
        exposed = {c: np.asarray(e, bool) for c, e in d.assigned.items()}
        for c, v in (force or {}).items():
            exposed[c] = np.broadcast_to(np.asarray(v, bool), d.p0.shape)
        for c in off:
            if c in exposed:
                exposed[c] = np.zeros(d.p0.shape, bool)
        return _durations(d, exposed, self.specs, BASELINES[transition])


def _durations(d: TransitionDraws, exposed: dict, specs: dict, base: dict) -> np.ndarray:
    n = len(d.p0)
    rr = np.ones(n)
    tf = np.ones(n)
    for cid, e in exposed.items():
        rr = rr * np.where(e, specs[cid]["risk_ratio"], 1.0)
        tf = tf * np.where(e, specs[cid]["time_factor"], 1.0)
    # before the landmark: piecewise-constant hazard W·λ on [lo, hi), multiplied by
    # 1/time_factor from the first touch of each campaign acting before the landmark
    lo, hi = EARLY_DAYS
    lam = -np.log1p(-base["early_p"]) / (hi - lo) * d.W * (d.p0 > 0)
    pre = [c for c in d.first_offset if c in exposed]
    cuts = np.full((n, len(pre)), hi)
    mult = np.ones((n, len(pre)))
    for j, c in enumerate(pre):
        cuts[:, j] = np.where(exposed[c], np.clip(d.first_offset[c], lo, hi), hi)
        mult[:, j] = np.where(exposed[c], 1.0 / specs[c]["time_factor"], 1.0)
    order = np.argsort(cuts, axis=1, kind="stable")
    cuts = np.take_along_axis(cuts, order, axis=1)
    level = lam[:, None] * np.cumprod(np.c_[np.ones(n), np.take_along_axis(mult, order, axis=1)], axis=1)
    edges = np.c_[np.full(n, lo), cuts, np.full(n, hi)]
    seg_h = level * np.diff(edges, axis=1)                     # hazard mass of each segment
    cum = np.c_[np.zeros(n), np.cumsum(seg_h, axis=1)]
    tau = -np.log1p(-d.V)
    k = np.minimum((cum[:, 1:] < tau[:, None]).sum(axis=1), seg_h.shape[1] - 1)  # segment where tau falls
    rows = np.arange(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_early = edges[rows, k] + (tau - cum[rows, k]) / level[rows, k]
    early = (cum[:, -1] >= tau) & (lam > 0)
    # after the landmark
    p = np.minimum(d.p0 * rr, MAX_PROBABILITY)
    rate = _rate(p, base["frailty_var"]) * d.W / tf
    with np.errstate(divide="ignore", invalid="ignore"):
        residual = np.where(rate > 0, -np.log1p(-d.U) / np.where(rate > 0, rate, 1.0), np.inf)
    residual = np.maximum(residual, MIN_RESIDUAL_DAYS)
    return minute(np.where(early, t_early, EXPOSURE_DAYS + residual))


def _draw(transition, s, s1, acc, cmp, specs, rng) -> TransitionDraws:
    n = len(acc)
    z = acc["size_z"].to_numpy()
    p0 = baseline_probability(transition, z, acc["is_target"].to_numpy().astype(bool), acc["icp_fit"].to_numpy())
    assigned, first = {}, {}
    for cid in cmp.loc[cmp["transition"] == transition, "campaign_id"]:
        c = specs[cid]
        prob = 1.0 / (1.0 + np.exp(-(c["exposure_logit"] + c["exposure_size_slope"] * z)))
        assigned[cid] = rng.random(n) < prob
        if c.get("acts_before_landmark"):
            first[cid] = minute(rng.uniform(*FIRST_EXPOSURE_DAYS, n))
    theta = BASELINES[transition]["frailty_var"]
    W = rng.gamma(1.0 / theta, theta, n) if theta > 0 else np.ones(n)
    return TransitionDraws(transition, s, s1, p0, assigned, first, rng.random(n), rng.random(n), W)


def stage_process(acc: pd.DataFrame, cmp: pd.DataFrame, horizon: float, rng: np.random.Generator):
    """Latent stage entry days per account and the planted campaign exposures.

    Returns
    -------
    times : dict stage -> float array (days since start; NaN = not entered)
    exposures : DataFrame acct, campaign_id, win_start, win_end (exposure-window part
        the exposure touches go into; only exposed accounts; campaigns acting before
        the landmark are not here: their touches are ``state.touches``)
    outcomes : DataFrame, potential outcomes per (account, studied campaign)
    latent : DataFrame acct, transition, entered_day, landmark_day, at_risk,
        complete_followup, y, t_days, p0: the actual outcome per (account that
        entered s, transition), for campaigns without an effect (background)
    state : ProcessState, the draws (for counterfactual histories) and the touches of
        the campaigns acting before the landmark
    """
    n = len(acc)
    target = acc["is_target"].to_numpy().astype(bool)
    times = {"unaware": acc["T0"].to_numpy(dtype=float)}

    median = np.where(target, AWARE_MEDIAN_DAYS["target"], AWARE_MEDIAN_DAYS["other"])
    wait = 0.5 + rng.exponential(median / np.log(2))
    aware = minute(times["unaware"] + wait)
    never = rng.random(n) < NEVER_AWARE
    times["aware"] = np.where(never | (aware > horizon), np.nan, aware)

    specs = cmp.set_index("campaign_id").to_dict("index")
    state = ProcessState(specs=specs)
    exposures, outcomes, latent, pre_touches = [], [], [], []
    limit = EXPOSURE_DAYS + OUTCOME_DAYS + 1e-9
    for transition, s, s1 in TRANSITIONS:
        Ts = times[s]
        in_s = ~np.isnan(Ts)
        Ts0 = np.where(in_s, Ts, 0.0)
        d = _draw(transition, s, s1, acc, cmp, specs, rng)
        state.draws[transition] = d
        state.entered[transition] = Ts.copy()
        D = state.durations(transition)
        nxt = Ts0 + D
        times[s1] = np.where(in_s & (nxt <= horizon), nxt, np.nan)

        landmark = Ts0 + EXPOSURE_DAYS
        at_risk = in_s & (D > EXPOSURE_DAYS) & (landmark <= horizon)
        # exposure touches fill the whole window [T_s, L) (cut at the data end) whatever
        # happens later: if an early progressor's touches were squeezed before its
        # progression, exposure timing would depend on the outcome (a time-varying Cox
        # model would see exposure "cause" early moves). Touches of studied campaigns
        # after the account moved on cannot trigger a later stage (touches.EXPOSURE_MIX).
        win_end = np.minimum(landmark, horizon)
        placeable = win_end - Ts0 >= 2.0 / 24
        t_act = np.where(at_risk & np.isfinite(D), D, np.nan)
        rows = np.flatnonzero(in_s)
        complete = at_risk[rows] & (Ts0[rows] + EXPOSURE_DAYS + OUTCOME_DAYS <= horizon)
        latent.append(pd.DataFrame({
            "acct": rows, "transition": transition, "entered_day": Ts0[rows], "landmark_day": landmark[rows],
            "at_risk": at_risk[rows], "complete_followup": complete,
            "y": np.where(at_risk[rows], D[rows] <= limit, np.nan), "t_days": t_act[rows], "p0": d.p0[rows]}))
        for cid, assigned in d.assigned.items():
            if cid in d.first_offset:  # first touch at the offset the effect starts from
                first_t = Ts0 + d.first_offset[cid]
                e = in_s & assigned & (first_t < win_end)
                pre_touches.append(_pre_landmark_touches(np.flatnonzero(e), first_t, win_end, cid, specs, rng))
            else:
                e = in_s & assigned & placeable
                idx = np.flatnonzero(e)
                exposures.append(pd.DataFrame({"acct": idx, "campaign_id": cid, "transition": transition,
                                               "win_start": Ts0[idx], "win_end": win_end[idx]}))
            t1 = state.durations(transition, force={cid: True})
            t0 = state.durations(transition, force={cid: False})
            ar = at_risk[rows]
            outcomes.append(pd.DataFrame({
                "acct": rows, "campaign_id": cid, "transition": transition,
                "entered_day": Ts0[rows], "landmark_day": landmark[rows],
                "at_risk": ar, "exposed": e[rows], "complete_followup": complete,
                # an account forced into exposure may move before the landmark: then it
                # does not reach s+1 inside (L, L + outcome_days]
                "y0": np.where(ar, (t0[rows] > EXPOSURE_DAYS) & (t0[rows] <= limit), np.nan),
                "y1": np.where(ar, (t1[rows] > EXPOSURE_DAYS) & (t1[rows] <= limit), np.nan),
                # latent durations, also when they end after the data (KM medians estimate these)
                "t0_days": np.where(ar & np.isfinite(t0[rows]), t0[rows], np.nan),
                "t1_days": np.where(ar & np.isfinite(t1[rows]), t1[rows], np.nan),
                "p0": d.p0[rows],
            }))
    cols = ["acct", "contact", "t", "channel", "touch_type", "campaign_id", "kind"]
    state.touches = pd.concat(pre_touches, ignore_index=True) if pre_touches else pd.DataFrame(columns=cols)
    exposures = (pd.concat(exposures, ignore_index=True) if exposures else
                 pd.DataFrame(columns=["acct", "campaign_id", "transition", "win_start", "win_end"]))
    return times, exposures, pd.concat(outcomes, ignore_index=True), pd.concat(latent, ignore_index=True), state


def _pre_landmark_touches(idx, first_t, win_end, cid, specs, rng) -> pd.DataFrame:
    """Account-level impressions of a campaign acting before the landmark: the first
    one at the offset its effect starts from, a few more later in the window (kept even
    when the account moves on first: exposure timing never depends on the outcome).
    Impressions carry no contact, so they can never trigger a stage."""
    t0 = first_t[idx]
    extra = rng.poisson(PRE_LANDMARK_EXTRA_TOUCHES, len(idx))
    room = win_end[idx] - t0 > 2.0 / 24
    extra = np.where(room, extra, 0)
    rep = np.repeat(np.arange(len(idx)), extra)
    lo, hi = t0[rep] + 1.0 / 24, win_end[idx][rep] - 1.0 / 24
    t_extra = minute(lo + rng.random(len(rep)) * (hi - lo))
    acct = np.r_[idx, idx[rep]]
    return pd.DataFrame({"acct": acct, "contact": -1, "t": np.r_[t0, t_extra], "channel": specs[cid]["channel"],
                         "touch_type": "impression", "campaign_id": cid, "kind": "exposure"})
