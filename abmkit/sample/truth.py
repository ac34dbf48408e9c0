"""True effect of every campaign and channel at every transition the kit tests
(see docs/sample_data.md, "Truth for every pair").

:func:`pair_effects` scores each unit (campaign or channel) × transition with
common random numbers: the history as generated against the history with the
unit's planted effects switched off — the same draws (:class:`~abmkit.sample.process.ProcessState`),
so the difference is exact per account. Two estimands, one per design of
:func:`abmkit.uplift.campaign_influence`:

* **landmark** (``att_diff``): accounts that entered ``s`` with a complete window
  (entry + exposure_days + outcome_days inside the data), still in ``s`` at the
  landmark ``L = entry + exposure_days`` and touched by the unit in
  ``[entry, L)``; outcome = reaching ``s+1`` in ``(L, L + outcome_days]``.
* **sequential** (``seq_att_diff``): the same cohort, accounts touched by the unit in
  ``[entry, L)`` *while still in s*; outcome = reaching ``s+1`` within
  ``outcome_days`` after that first touch.

Counterfactual histories are measured on the time since the account entered ``s``
(its exposure offsets kept), so a planted effect on an earlier transition (which
moves *when* the account enters ``s``) reaches a later transition only if it changes
the time spent in ``s``. In this generator each stage's duration depends on that
stage's own draws and exposures only, so such knock-on effects are exactly 0 — the
rows say so instead of leaving the pair unscored.

sales_ready -> customer goes through the opportunity process
(:mod:`abmkit.sample.incrementality`): units of a channel with a planted
opportunity effect get ``NaN`` with a note there (their truth is
``truth["channel_incrementality"]``); every other unit has none (0).

:func:`verdict` reads an estimate against its truth in words (notebook 04, section 8).

Example
-------
>>> from abmkit.sample import generate
>>> pe = generate(n_accounts=80, seed=2).truth["pair_effects"]
>>> sorted(pe["level"].unique()), pe["transition"].nunique()
(['campaign', 'channel'], 4)
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..schema import CHANNELS
from . import incrementality, process

#: the transitions campaign_influence tests by default (unaware->aware is not tested)
PAIR_TRANSITIONS = tuple((t, s, s1) for t, s, s1 in process.TRANSITIONS) + (
    ("sales_ready->customer", "sales_ready", "customer"),)
_ORDER = {t: i for i, (t, _, _) in enumerate(PAIR_TRANSITIONS)}
_MIN = 1440.0
_INF = np.iinfo(np.int64).max


def _relation(transition: str, planted_at: list, undefined: bool) -> str:
    """Where the row sits relative to the unit's planted effects: at their transition,
    after it (a knock-on pair: what issue 19 asked the truth to settle), before it, or
    none; the opportunity-process rows without a number say so."""
    if undefined:
        return "opportunity process (see truth_note)"
    if transition in planted_at:
        return "planted here"
    if any(_ORDER[t] < _ORDER[transition] for t in planted_at):
        return "after a planted effect"
    return "before a planted effect" if planted_at else "no planted effect"


def _first_offsets(codes: np.ndarray, acct: np.ndarray, offset: np.ndarray, n_units: int, n: int) -> np.ndarray:
    """(n_units, n) first in-window offset (minutes) per unit and account (``_INF`` = none)."""
    first = np.full((n_units, n), _INF, dtype=np.int64)
    ok = codes >= 0
    np.minimum.at(first, (codes[ok], acct[ok]), offset[ok])
    return first


def pair_effects(state: process.ProcessState, times: dict, tp: pd.DataFrame, cmp: pd.DataFrame,
                 horizon: float) -> pd.DataFrame:
    """One truth row per (level, unit, transition): campaign × transition for every
    campaign of ``cmp`` and channel × transition for every canonical channel, over the
    four transitions campaign_influence tests.

    Columns: level, unit, campaign_id, campaign_name, channel, transition, story,
    effect_source (the planted campaigns whose effects are switched off; "" = none),
    n_cohort, n_at_risk, n_exposed_at_risk, rate_exposed_with, rate_exposed_without,
    att_diff (landmark ATT), n_exposed_in_stage, seq_rate_with, seq_rate_without,
    seq_att_diff (sequential ATT), is_zero_effect, acts_before_landmark, planted_at (the
    transitions where the unit's planted effects act, ";"-joined), relation ("planted here",
    "after a planted effect" = a knock-on pair, "before a planted effect", "no planted
    effect", or "opportunity process (see truth_note)"), truth_note.
    Rates and differences are NaN where no account is exposed.
    """
    n = len(times["aware"])
    win = int(round(process.EXPOSURE_DAYS * _MIN))
    out_days = process.OUTCOME_DAYS
    acct = tp["acct"].to_numpy()
    on_acc = acct >= 0
    acct = acct[on_acc].astype(np.int64)
    minute = np.round(tp["t"].to_numpy()[on_acc] * _MIN).astype(np.int64)
    camp_ids = cmp["campaign_id"].to_numpy(dtype=object)
    camp_code = pd.Index(camp_ids).get_indexer(tp["campaign_id"].to_numpy(dtype=object)[on_acc])
    chan_code = pd.Index(list(CHANNELS)).get_indexer(tp["channel"].to_numpy(dtype=object)[on_acc])
    spec = cmp.set_index("campaign_id")
    studied = spec[spec["transition"].notna()]
    # the planted effects a unit carries: a campaign its own, a channel those of its campaigns
    units = [("campaign", cid, cid, spec.at[cid, "campaign_name"], spec.at[cid, "channel"],
              [cid] if cid in studied.index else []) for cid in camp_ids]
    units += [("channel", ch, None, None, ch, list(studied.index[studied["channel"] == ch])) for ch in CHANNELS]
    rows = []
    for transition, s, s1 in PAIR_TRANSITIONS:
        Ts = times[s]
        entered = ~np.isnan(Ts)
        if transition in state.draws:
            D = state.durations(transition)
        else:  # sales_ready -> customer: the realised history (opportunity process)
            D = np.where(np.isnan(times[s1]), np.inf, times[s1] - np.nan_to_num(Ts))
        cohort = entered & (np.nan_to_num(Ts, nan=np.inf) + process.EXPOSURE_DAYS + out_days <= horizon)
        at_risk = cohort & (D > process.EXPOSURE_DAYS)
        limit = process.EXPOSURE_DAYS + out_days + 1e-9
        y = at_risk & (D <= limit)
        # exposure: touches in [entry, entry + exposure_days), on whole minutes as the data carry them
        off = minute - np.round(np.nan_to_num(Ts, nan=-1e9)[acct] * _MIN).astype(np.int64)
        inside = entered[acct] & (off >= 0) & (off < win)
        firsts = {"campaign": _first_offsets(np.where(inside, camp_code, -1), acct, off, len(camp_ids), n),
                  "channel": _first_offsets(np.where(inside, chan_code, -1), acct, off, len(CHANNELS), n)}
        cache = {}
        for level, unit, cid, name, channel, effect in units:
            first = firsts[level][(pd.Index(camp_ids) if level == "campaign" else pd.Index(list(CHANNELS)))
                                  .get_loc(unit)]
            exposed = first != _INF
            f_days = np.where(exposed, first / _MIN, np.inf)
            note = ""
            key = tuple(sorted(effect))
            if transition not in state.draws:
                opp_effect = channel in incrementality.CHANNEL_EFFECTS
                D_cf = np.full(n, np.nan) if opp_effect else D
                if opp_effect:
                    note = ("opportunity process: channel with a planted effect on the first opportunity; "
                            "see truth/channel_incrementality")
            else:
                if key not in cache:
                    cache[key] = state.durations(transition, off=key) if key else D
                D_cf = cache[key]
            ex_lm = at_risk & exposed
            y_cf = (D_cf > process.EXPOSURE_DAYS) & (D_cf <= limit)
            # sequential: first touch while still in s; outcome within outcome_days after it
            ex_seq = cohort & exposed & (f_days < D)
            y_seq = D <= f_days + out_days + 1e-9
            y_seq_cf = (D_cf > f_days) & (D_cf <= f_days + out_days + 1e-9)
            undefined = bool(note)

            def mean(v, m):
                return float(v[m].mean()) if m.any() and not undefined else np.nan

            r1, r0 = mean(y.astype(float), ex_lm), mean(y_cf.astype(float), ex_lm)
            s1_, s0_ = mean(y_seq.astype(float), ex_seq), mean(y_seq_cf.astype(float), ex_seq)
            planted = [c for c in effect if not bool(spec.at[c, "is_zero_effect"])
                       and spec.at[c, "transition"] == transition]
            story = (spec.at[cid, "story"] if cid in studied.index else "background") if level == "campaign" else ""
            planted_at = sorted({spec.at[c, "transition"] for c in effect if not bool(spec.at[c, "is_zero_effect"])},
                                key=_ORDER.get)
            rows.append({
                "level": level, "unit": unit, "campaign_id": cid, "campaign_name": name, "channel": channel,
                "transition": transition, "story": story, "effect_source": ";".join(effect),
                "n_cohort": int(cohort.sum()), "n_at_risk": int(at_risk.sum()), "n_exposed_at_risk": int(ex_lm.sum()),
                "rate_exposed_with": r1, "rate_exposed_without": r0, "att_diff": r1 - r0,
                "n_exposed_in_stage": int(ex_seq.sum()), "seq_rate_with": s1_, "seq_rate_without": s0_,
                "seq_att_diff": s1_ - s0_,
                "is_zero_effect": not planted and not undefined,
                "acts_before_landmark": any(bool(spec.at[c, "acts_before_landmark"]) for c in planted),
                "planted_at": ";".join(planted_at), "relation": _relation(transition, planted_at, undefined),
                "truth_note": note,
            })
    return pd.DataFrame(rows)


#: the words of :func:`verdict`, in the order they are checked
VERDICTS = ("no true number (see truth_note)", "not estimated", "false discovery", "wrong sign", "found",
            "missed (not significant)", "correctly not significant")


def verdict(check: pd.DataFrame) -> pd.Series:
    """One word per row of :func:`abmkit.uplift.compare_to_truth` (pair truth): is the
    row's significance call right? ``significant`` is q < alpha.

    * "false discovery": significant, true effect exactly 0;
    * "wrong sign": significant, the estimate's sign opposite to a non-zero truth;
    * "found" / "missed (not significant)": a non-zero truth, significant or not;
    * "correctly not significant": truth 0, not significant;
    * "not estimated": no q-value (no adjusted or naive test, e.g. nobody exposed);
    * "no true number (see truth_note)": the generator gives no number for the pair.

    >>> c = pd.DataFrame({"true_effect": [0.0, 0.2, 0.2, 0.0, float("nan"), 0.1],
    ...                   "adj_diff": [0.1, 0.15, 0.01, -0.01, 0.3, -0.2],
    ...                   "q_value": [0.01, 0.001, 0.6, 0.7, 0.01, 0.02]})
    >>> verdict(c.assign(significant=c["q_value"] < 0.05)).tolist()  # doctest: +NORMALIZE_WHITESPACE
    ['false discovery', 'found', 'missed (not significant)', 'correctly not significant',
     'no true number (see truth_note)', 'wrong sign']
    """
    t = check["true_effect"].to_numpy(dtype=float)
    est = check["adj_diff"].fillna(check["diff"]) if "diff" in check else check["adj_diff"]
    est = est.to_numpy(dtype=float)
    sig = check["significant"].fillna(False).to_numpy(dtype=bool)
    untested = check["q_value"].isna().to_numpy()
    out = np.select([np.isnan(t), untested, sig & (t == 0), sig & (np.sign(est) != np.sign(t)), sig, t != 0],
                    list(VERDICTS[:-1]), VERDICTS[-1])
    return pd.Series(out, index=check.index, name="verdict")
