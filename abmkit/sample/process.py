"""The latent stage process of every account and the exact potential outcomes of
the planted campaigns (see docs/sample_data.md).

Times are float days since the sample start, rounded to whole minutes (raw
exports carry minutes, so truth and data agree to the minute). ``NaN`` = the
stage is not entered before the end of the data.

Transition model for ``s -> s+1`` (aware→engaged, engaged→qualified,
qualified→sales_ready), for an account entering ``s`` at ``T_s``:

* with probability ``early_p`` it progresses before the landmark
  ``L = T_s + exposure_days`` (uniform 2-28 days): not at risk;
* otherwise one uniform ``U`` per (account, transition) is drawn and the time
  from the landmark to progression is exponential with rate
  ``λ = -ln(1 - p) / outcome_days / Π time_factor_c^e_c`` where
  ``p = min(p0(x) · Π risk_ratio_c^e_c, 0.95)``, realised as
  ``R = -ln(1 - U) / λ``. So ``P(R ≤ outcome_days) = p`` without time effects,
  and the potential outcomes of campaign ``c`` use the same ``U`` with ``e_c`` set
  to 1 and 0 (common random numbers: the effect is exact per account).

Example
-------
>>> baseline_probability("aware->engaged", np.array([0.0]), np.array([False]), np.array([1.0])).round(2)
array([0.22])
"""
from __future__ import annotations

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
#: logistic adjustment for log employee_count is correctly specified; icp_only → 0 off-ICP
BASELINES = {
    A_E: {"base": 0.22, "size_logit": 0.5, "target_logit": 0.0, "low": 0.03, "high": 0.6,
          "early_p": 0.12, "icp_only": False},
    E_Q: {"base": 0.36, "size_logit": 0.2, "target_logit": 0.15, "low": 0.05, "high": 0.6,
          "early_p": 0.12, "icp_only": True},
    Q_S: {"base": 0.30, "size_logit": 0.2, "target_logit": 0.1, "low": 0.05, "high": 0.38,
          "early_p": 0.12, "icp_only": False},
}
#: unaware→aware: exponential waiting time, median by target flag; a share never becomes aware
AWARE_MEDIAN_DAYS = {"target": 30.0, "other": 100.0}
NEVER_AWARE = 0.08
EARLY_DAYS = (2.0, 28.0)
MIN_RESIDUAL_DAYS = 0.25


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


def _days_to_next(Ts, U, p0, exposed: dict, specs: dict) -> np.ndarray:
    """Days from entering s to entering s+1 for accounts at risk at the landmark."""
    rr = np.ones_like(p0)
    tf = np.ones_like(p0)
    for cid, e in exposed.items():
        rr = rr * np.where(e, specs[cid]["risk_ratio"], 1.0)
        tf = tf * np.where(e, specs[cid]["time_factor"], 1.0)
    p = np.minimum(p0 * rr, MAX_PROBABILITY)
    with np.errstate(divide="ignore"):
        rate = -np.log1p(-p) / OUTCOME_DAYS / tf
        residual = np.where(rate > 0, -np.log1p(-U) / np.where(rate > 0, rate, 1.0), np.inf)
    residual = np.maximum(residual, MIN_RESIDUAL_DAYS)
    return minute(Ts + EXPOSURE_DAYS + residual) - Ts


def stage_process(acc: pd.DataFrame, cmp: pd.DataFrame, horizon: float, rng: np.random.Generator):
    """Latent stage entry days per account and the planted campaign exposures.

    Returns
    -------
    times : dict stage -> float array (days since start; NaN = not entered)
    exposures : DataFrame acct, campaign_id, win_start, win_end (exposure-window part
        the exposure touches go into; only exposed accounts)
    outcomes : DataFrame, potential outcomes per (account, studied campaign)
    latent : DataFrame acct, transition, entered_day, landmark_day, at_risk,
        complete_followup, y, t_days, p0: the actual outcome per (account that
        entered s, transition), for campaigns without an effect (background)
    """
    n = len(acc)
    z = acc["size_z"].to_numpy()
    target = acc["is_target"].to_numpy().astype(bool)
    icp = acc["icp_fit"].to_numpy()
    times = {"unaware": acc["T0"].to_numpy(dtype=float)}

    median = np.where(target, AWARE_MEDIAN_DAYS["target"], AWARE_MEDIAN_DAYS["other"])
    wait = 0.5 + rng.exponential(median / np.log(2))
    aware = minute(times["unaware"] + wait)
    never = rng.random(n) < NEVER_AWARE
    times["aware"] = np.where(never | (aware > horizon), np.nan, aware)

    specs = cmp.set_index("campaign_id").to_dict("index")
    exposures, outcomes, latent = [], [], []
    for transition, s, s1 in TRANSITIONS:
        Ts = times[s]
        in_s = ~np.isnan(Ts)
        Ts0 = np.where(in_s, Ts, 0.0)
        p0 = baseline_probability(transition, z, target, icp)
        studied = cmp.loc[cmp["transition"] == transition, "campaign_id"].tolist()
        exposed = {}
        for cid in studied:
            c = specs[cid]
            prob = 1.0 / (1.0 + np.exp(-(c["exposure_logit"] + c["exposure_size_slope"] * z)))
            exposed[cid] = in_s & (rng.random(n) < prob)
        early = in_s & (p0 > 0) & (rng.random(n) < BASELINES[transition]["early_p"])
        early_days = minute(rng.uniform(*EARLY_DAYS, n))
        U = rng.random(n)
        t_obs = np.where(early, early_days, _days_to_next(Ts0, U, p0, exposed, specs))
        nxt = Ts0 + t_obs
        times[s1] = np.where(in_s & (nxt <= horizon), nxt, np.nan)

        landmark = Ts0 + EXPOSURE_DAYS
        at_risk = in_s & ~early & (landmark <= horizon)
        # exposure touches fill the whole window [T_s, L) (cut at the data end) whatever
        # happens later: if an early progressor's touches were squeezed before its
        # progression, exposure timing would depend on the outcome (a time-varying Cox
        # model would see exposure "cause" early moves). Touches of studied campaigns
        # after the account moved on cannot trigger a later stage (touches.EXPOSURE_MIX).
        win_end = np.minimum(landmark, horizon)
        placeable = win_end - Ts0 >= 2.0 / 24
        limit = EXPOSURE_DAYS + OUTCOME_DAYS + 1e-9
        t_act = np.where(at_risk & np.isfinite(t_obs), t_obs, np.nan)
        rows = np.flatnonzero(in_s)
        latent.append(pd.DataFrame({
            "acct": rows, "transition": transition, "entered_day": Ts0[rows], "landmark_day": landmark[rows],
            "at_risk": at_risk[rows],
            "complete_followup": at_risk[rows] & (Ts0[rows] + EXPOSURE_DAYS + OUTCOME_DAYS <= horizon),
            "y": np.where(at_risk[rows], t_obs[rows] <= limit, np.nan), "t_days": t_act[rows], "p0": p0[rows]}))
        for cid in studied:
            e = exposed[cid] & placeable
            idx = np.flatnonzero(e)
            exposures.append(pd.DataFrame({"acct": idx, "campaign_id": cid, "transition": transition,
                                           "win_start": Ts0[idx], "win_end": win_end[idx]}))
            t1 = _days_to_next(Ts0, U, p0, {**exposed, cid: np.ones(n, bool)}, specs)
            t0 = _days_to_next(Ts0, U, p0, {**exposed, cid: np.zeros(n, bool)}, specs)
            ar = at_risk[rows]
            outcomes.append(pd.DataFrame({
                "acct": rows, "campaign_id": cid, "transition": transition,
                "entered_day": Ts0[rows], "landmark_day": landmark[rows],
                "at_risk": ar, "exposed": e[rows],
                "complete_followup": ar & (Ts0[rows] + EXPOSURE_DAYS + OUTCOME_DAYS <= horizon),
                "y0": np.where(ar, t0[rows] <= limit, np.nan), "y1": np.where(ar, t1[rows] <= limit, np.nan),
                # latent durations, also when they end after the data (KM medians estimate these)
                "t0_days": np.where(ar & np.isfinite(t0[rows]), t0[rows], np.nan),
                "t1_days": np.where(ar & np.isfinite(t1[rows]), t1[rows], np.nan),
                "p0": p0[rows],
            }))
    return (times, pd.concat(exposures, ignore_index=True), pd.concat(outcomes, ignore_index=True),
            pd.concat(latent, ignore_index=True))
