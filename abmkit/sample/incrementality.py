"""Planted channel incrementality: how touches cause the first opportunity (see
docs/sample_data.md, "Planted channel incrementality").

The latent model. An account that enters ``sales_ready`` at ``R`` (float days) is
at risk of opening its first opportunity at every midnight ``d`` from
``floor(R) + 1`` to the last day of the data. Its hazard on day ``d`` is::

    λ(d) = exp(base + size_log_hr · size_z + target_log_hr · is_target
               + Σ_c β_c · x_c(d))
    x_c(d) = 1 if the account has a touch of channel c at a time s with
             d − window_days ≤ s < d − lag_days            (0 otherwise)

so a touch of channel ``c`` multiplies the hazard by ``exp(β_c)`` from
``lag_days`` to ``window_days`` after it (several touches do not add up). One
``E ~ Exp(1)`` is drawn per account, and the opportunity opens on the first day
whose cumulative hazard ``Λ(d) = Σ λ`` reaches ``E`` (never, when ``Λ`` stays below
it until the data end). Only ``CHANNEL_EFFECTS`` have ``β ≠ 0``.

The first opportunity is drawn from every touch the account has before it (stage
triggers and cadence, campaign exposures, background). Touches that are *caused by*
the conversion (sales calls, direct visits and demo requests in the days before it:
:func:`abmkit.sample.touches.reverse_touches`) are drawn after it, on channels
without an effect, so they never change the hazard.

Truth (:func:`channel_truth`, common random numbers): removing channel ``c``'s
touches sets ``x_c ≡ 0`` and leaves everything else (the stage history, the other
channels' touches, ``E``) as it was. ``Λ`` is summed from the at-risk start to the
data end over the touches the data holds (after a conversion too). Per channel: the
expected conversions lost, ``Σ_i exp(−Λ_i^{−c}) − exp(−Λ_i)`` over the accounts at
risk, the realised conversions lost with the same ``E`` (converted, but would not
have without ``c``) and the expected pipeline lost (expected conversions lost × the
account's expected first-opportunity amount).

Campaign truth (:func:`campaign_truth`): the same counterfactual with one campaign's
touches removed instead of a whole channel's. Campaigns carry no effect of their own:
a campaign matters through the effective channel its touches are on, and removing it
loses conversions only on the days no other touch of that channel covers.

Example
-------
>>> days_exposed(np.array([0]), np.array([10.5]), 1, 80, lag=7, window=60)[0, [17, 18, 70, 71]].tolist()
[False, True, True, False]
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..schema import CHANNELS

#: log hazard ratio of a channel while one of its touches is lag..window days old;
#: every other channel has none (display and e-mail are frequent and do nothing,
#: event is rare and strong; sales_outreach and direct only follow conversions)
CHANNEL_EFFECTS = {"event": 1.0, "webinar": 0.6, "paid_search": 0.4}
LAG_DAYS = 7.0
WINDOW_DAYS = 60.0
#: daily hazard without any effective touch for an average-size, non-target account
BASE_DAILY_HAZARD = 0.0035
SIZE_LOG_HR = 0.3
TARGET_LOG_HR = 0.3


def days_exposed(rows: np.ndarray, t: np.ndarray, n_rows: int, n_days: int, *, lag: float = LAG_DAYS,
                 window: float = WINDOW_DAYS) -> np.ndarray:
    """``(n_rows, n_days)`` bool: day ``d`` has a touch of the row at ``s`` with
    ``d − window ≤ s < d − lag`` (``rows``/``t``: row index and day of each touch)."""
    t = np.asarray(t, dtype=float)
    lo = np.floor(t + lag).astype(np.int64) + 1          # first d with s < d − lag
    hi = np.floor(t + window).astype(np.int64)           # last d with d − window ≤ s
    lo = np.clip(lo, 0, n_days)
    hi = np.clip(hi + 1, 0, n_days)                      # exclusive
    ok = hi > lo
    diff = np.zeros((n_rows, n_days + 1), dtype=np.int32)
    np.add.at(diff, (rows[ok], lo[ok]), 1)
    np.add.at(diff, (rows[ok], hi[ok]), -1)
    return np.cumsum(diff[:, :n_days], axis=1) > 0


def _log_hazards(acc: pd.DataFrame, idx: np.ndarray, tp: pd.DataFrame, n_days: int) -> tuple[np.ndarray, dict]:
    """Baseline log hazard per at-risk account and the exposure matrix of each
    effective channel."""
    base = (np.log(BASE_DAILY_HAZARD) + SIZE_LOG_HR * acc["size_z"].to_numpy()[idx]
            + TARGET_LOG_HR * acc["is_target"].to_numpy().astype(float)[idx])
    row_of = np.full(len(acc), -1)
    row_of[idx] = np.arange(len(idx))
    acct = tp["acct"].to_numpy()
    r = np.where(acct >= 0, row_of[np.maximum(acct, 0)], -1)
    keep = r >= 0
    ch = tp["channel"].to_numpy()
    terms = {}
    for c, beta in CHANNEL_EFFECTS.items():
        sel = keep & (ch == c)
        terms[c] = (beta, days_exposed(r[sel], tp["t"].to_numpy()[sel], len(idx), n_days))
    return base, terms


def _cum_hazard(base, terms, first, n_days, drop=None) -> np.ndarray:
    """Cumulative hazard ``Λ_i(d)`` (n_at_risk x n_days; 0 before the first at-risk day)."""
    eta = np.repeat(base[:, None], n_days, axis=1)
    for c, (beta, x) in terms.items():
        if c == drop:
            continue
        eta = eta + beta * x
    at_risk = np.arange(n_days)[None, :] >= first[:, None]
    return np.cumsum(np.where(at_risk, np.exp(eta), 0.0), axis=1)


def first_day(cum: np.ndarray, e: np.ndarray) -> np.ndarray:
    """First day whose cumulative hazard reaches ``e`` (NaN: never)."""
    hit = cum >= e[:, None]
    d = np.argmax(hit, axis=1).astype(float)
    return np.where(hit.any(axis=1), d, np.nan)


def first_opportunities(acc: pd.DataFrame, ready: np.ndarray, tp: pd.DataFrame, horizon: float,
                        rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Day of each account's first opportunity (NaN: none) and the ``E ~ Exp(1)`` drawn
    for every account (kept for the truth: common random numbers).

    Parameters
    ----------
    acc : DataFrame with ``size_z``, ``is_target``
    ready : float days of the sales-ready entry (NaN: never)
    tp : touches (``acct``, ``t``, ``channel``) the hazard is built from (every touch
        before the opportunity is among them)
    horizon : data length in days (opportunities open on days ``< horizon``)
    """
    e = rng.exponential(1.0, len(acc))
    idx, first, base, terms, n_days = _at_risk(acc, ready, tp, horizon)
    created = np.full(len(acc), np.nan)
    created[idx] = first_day(_cum_hazard(base, terms, first, n_days), e[idx])
    return created, e


def _at_risk(acc, ready, tp, horizon):
    n_days = int(np.ceil(horizon))
    idx = np.flatnonzero(~np.isnan(ready) & (np.floor(np.nan_to_num(ready, nan=np.inf)) + 1 < n_days))
    first = (np.floor(ready[idx]) + 1).astype(np.int64)
    base, terms = _log_hazards(acc, idx, tp, n_days)
    return idx, first, base, terms, n_days


def channel_truth(acc: pd.DataFrame, ready: np.ndarray, tp: pd.DataFrame, horizon: float, e: np.ndarray,
                  expected_amount: np.ndarray) -> pd.DataFrame:
    """The channel truth table (module docstring), with every account's hazard built
    from ``tp``: the touches the data holds (after a conversion too), so the truth is
    exactly the quantity a model of the data can target. The touches before each first
    opportunity are the ones that drew it, so the day it opens is unchanged."""
    idx, first, base, terms, n_days = _at_risk(acc, ready, tp, horizon)
    cum = _cum_hazard(base, terms, first, n_days)
    converted = ~np.isnan(first_day(cum, e[idx])) if len(idx) else np.zeros(0, dtype=bool)
    p_conv = 1.0 - np.exp(-cum[:, -1]) if len(idx) else np.zeros(0)
    amount = expected_amount[idx]
    rows = []
    for c in CHANNELS:
        if c in terms and len(idx):
            cum_c = _cum_hazard(base, terms, first, n_days, drop=c)
            lost = np.exp(-cum_c[:, -1]) - np.exp(-cum[:, -1])
            realised = converted & np.isnan(first_day(cum_c, e[idx]))
        else:
            lost = np.zeros(len(idx))
            realised = np.zeros(len(idx), dtype=bool)
        rows.append({"channel": c, "log_hazard_ratio": float(CHANNEL_EFFECTS.get(c, 0.0)),
                     "accounts_at_risk": len(idx), "expected_conversions": float(p_conv.sum()),
                     "expected_conversions_lost": float(lost.sum()),
                     "realised_conversions_lost": int(realised.sum()),
                     "expected_pipeline_lost": float((lost * amount).sum())})
    truth = pd.DataFrame(rows)
    tot = truth["expected_conversions_lost"].sum()
    truth["share_of_lost"] = truth["expected_conversions_lost"] / tot if tot > 0 else np.nan
    truth["is_effective"] = truth["log_hazard_ratio"] != 0
    return truth


def campaign_truth(acc: pd.DataFrame, ready: np.ndarray, tp: pd.DataFrame, horizon: float, e: np.ndarray,
                   expected_amount: np.ndarray, campaigns: pd.DataFrame) -> pd.DataFrame:
    """Per campaign (``campaign_id``, ``channel`` of ``campaigns``): the expected and
    realised first opportunities and the expected pipeline lost if the campaign's
    touches were removed (``tp`` with a ``campaign_id`` column; everything else as in
    :func:`channel_truth`, same ``E``). Campaigns on channels without an effect lose 0
    without any computation. ``touches_at_risk``: the campaign's touches of at-risk
    accounts."""
    idx, first, base, terms, n_days = _at_risk(acc, ready, tp, horizon)
    cum = _cum_hazard(base, terms, first, n_days)
    p_all = np.exp(-cum[:, -1]) if len(idx) else np.zeros(0)
    converted = ~np.isnan(first_day(cum, e[idx])) if len(idx) else np.zeros(0, dtype=bool)
    amount = expected_amount[idx]
    at_risk = np.zeros(len(acc), dtype=bool)
    at_risk[idx] = True
    acct = tp["acct"].to_numpy()
    mine_at_risk = (acct >= 0) & at_risk[np.maximum(acct, 0)]
    camp = tp["campaign_id"].to_numpy(dtype=object)
    rows = []
    for cid, ch in zip(campaigns["campaign_id"], campaigns["channel"]):
        mine = camp == cid
        lost = np.zeros(len(idx))
        realised = np.zeros(len(idx), dtype=bool)
        if ch in CHANNEL_EFFECTS and (mine & mine_at_risk).any():
            # only the campaign's channel changes: rebuild that channel's exposure without its touches
            _, terms_k = _log_hazards(acc, idx, tp[~mine & (tp["channel"].to_numpy() == ch)], n_days)
            cum_k = _cum_hazard(base, {**terms, ch: terms_k[ch]}, first, n_days)
            lost = np.exp(-cum_k[:, -1]) - p_all
            realised = converted & np.isnan(first_day(cum_k, e[idx]))
        rows.append({"campaign_id": cid, "channel": ch, "log_hazard_ratio": float(CHANNEL_EFFECTS.get(ch, 0.0)),
                     "touches_at_risk": int((mine & mine_at_risk).sum()),
                     "expected_conversions_lost": float(lost.sum()),
                     "realised_conversions_lost": int(realised.sum()),
                     "expected_pipeline_lost": float((lost * amount).sum())})
    return pd.DataFrame(rows, columns=["campaign_id", "channel", "log_hazard_ratio", "touches_at_risk",
                                       "expected_conversions_lost", "realised_conversions_lost",
                                       "expected_pipeline_lost"])
