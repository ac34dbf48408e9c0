"""Position-based (rule) models: per journey touch weights (see docs/attribution.md).

Every function takes a :class:`abmkit.journeys.ConversionJourneys` and returns one
credit per journey touch; credits of one conversion sum to 1. All of them are
vector arithmetic on the journey arrays (position, length, milestone positions,
age), so one call covers every conversion at once.

Small-n rules (U, J, inverse-J): n = 1 → 100 %; n = 2 → 50/50.
Milestone models (W, full-path, vendor presets): coinciding milestones merge
their shares; a milestone that does not exist in a journey (no MQA date, no touch
before it) gives nothing and the remaining shares are renormalised; when there is
no "rest" touch the milestone shares are renormalised to 1.

Vendor presets, side by side (they disagree; at account level "lead creation" is
the MQA touch; with no MQA touch in the window the last touch stands in):

===================  =========  ==============  ==========================  ===========
preset               first      lead creation   touches in between          after lead
===================  =========  ==============  ==========================  ===========
hubspot_u_shaped     40 %       40 %            20 % split                  0
marketo_u_shaped     50 %       50 %            0                           0
u_shaped             40 %       40 % (last)     20 % split (middle)         —
===================  =========  ==============  ==========================  ===========

Example
-------
>>> import numpy as np
>>> bathtub(np.array([0, 1, 2]), np.array([3, 3, 3]), 0.4, 0.2, 0.4).tolist()
[0.4, 0.2, 0.4]
"""
from __future__ import annotations

import numpy as np

from ..schema import CHANNELS, TOUCH_TYPES

POSITION_MODELS = ("first_touch", "last_touch", "linear", "time_decay", "u_shaped", "w_shaped", "full_path",
                   "j_shaped", "inverse_j", "custom", "hubspot_u_shaped", "marketo_u_shaped")
#: first / middle / last shares of the bathtub-shaped models
SHAPES = {"u_shaped": (0.4, 0.2, 0.4), "j_shaped": (0.2, 0.2, 0.6), "inverse_j": (0.6, 0.2, 0.2)}
SIMPLE_MODELS = ("first_touch", "last_touch", "linear")
MILESTONE_ROLES = ("first", "mqa", "opportunity_created", "closed_won", "last")


def _per_conversion_sum(cj, w):
    return np.bincount(cj.conv, w, minlength=len(cj.conversions))


def normalise(cj, w: np.ndarray, *, fallback_equal: bool = True) -> np.ndarray:
    """Scale weights so each conversion's credits sum to 1 (equal split where all
    weights of a conversion are 0)."""
    tot_c = _per_conversion_sum(cj, w)
    if np.all(tot_c[_journey_bounds(cj)[2] > 0] > 0):  # the usual case: one division, no masks
        return w / tot_c[cj.conv]
    tot = tot_c[cj.conv]
    out = np.divide(w, tot, out=np.zeros_like(w, dtype=float), where=tot > 0)
    if fallback_equal:
        out = np.where(tot > 0, out, 1.0 / cj.n)
    return out


def bathtub(pos: np.ndarray, n: np.ndarray, first: float, middle: float, last: float,
            *, small_n: str = "fixed") -> np.ndarray:
    """First/middle/last weights; ``middle`` split over the n − 2 middle touches.

    ``small_n="fixed"``: n = 1 → 1, n = 2 → 50/50 (the rule of U/J/inverse-J).
    ``small_n="renormalise"``: n = 2 → first/(first+last), last/(first+last).
    """
    mid = np.divide(middle, n - 2, out=np.zeros(len(n)), where=n > 2)
    w = np.where(pos == 0, first, np.where(pos == n - 1, last, mid)).astype(float)
    if small_n == "fixed":
        w = np.where(n == 2, 0.5, w)
    else:
        fl = first + last
        w = np.where(n == 2, np.where(pos == 0, first, last) / fl if fl > 0 else 0.5, w)
    return np.where(n == 1, 1.0, w)


def _journey_bounds(cj):
    """Per conversion: row of its first journey touch, of its last, and its length
    (journey touches are grouped by conversion)."""
    n_c = cj.conversions["n_touches"].to_numpy()
    first = np.cumsum(n_c) - n_c
    return first, first + n_c - 1, n_c


def milestone_weights(cj, roles: dict, rest: float) -> np.ndarray:
    """Shares on milestone touches (merged when they coincide) and ``rest`` split over
    the other touches; renormalised per conversion."""
    pos_of = role_positions(cj)
    first, _, n_c = _journey_bounds(cj)
    # per conversion arithmetic, then scatter the few milestone touches: no per-touch masks
    role_rows = []
    for role in roles:
        ok = pos_of[role] >= 0
        role_rows.append(first[ok] + pos_of[role][ok])
    is_role = np.zeros(len(cj.conv), bool)
    for rows in role_rows:
        is_role[rows] = True
    n_rest = n_c - np.bincount(cj.conv[np.flatnonzero(is_role)], minlength=len(n_c))
    w = np.divide(rest, n_rest, out=np.zeros(len(n_c)), where=n_rest > 0)[cj.conv]
    w[is_role] = 0.0
    for rows, share in zip(role_rows, roles.values()):
        w[rows] += share  # at most one touch per conversion and role: no repeated index
    return normalise(cj, w)


def _bathtub_journeys(cj, first: float, middle: float, last: float) -> np.ndarray:
    """``bathtub(cj.pos, cj.n, first, middle, last)`` (small-n rule "fixed"), computed
    per conversion and scattered to the first and last touches."""
    start, end, n_c = _journey_bounds(cj)
    w = np.divide(middle, n_c - 2, out=np.zeros(len(n_c)), where=n_c > 2)[cj.conv]
    has = n_c > 0
    start, end, n_c = start[has], end[has], n_c[has]
    w[end] = last
    w[start] = first
    two = n_c == 2
    w[start[two]] = 0.5
    w[end[two]] = 0.5
    w[start[n_c == 1]] = 1.0
    return w


def role_positions(cj) -> dict:
    """Per conversion position of each milestone touch (-1 when none)."""
    n = cj.conversions["n_touches"].to_numpy()
    return {"first": np.where(n > 0, 0, -1), "mqa": cj.mqa_pos, "opportunity_created": cj.oc_pos,
            "closed_won": cj.cw_pos, "last": np.where(n > 0, n - 1, -1)}


def _distinct(*cols) -> np.ndarray:
    s = np.sort(np.column_stack(cols), axis=1)
    new = np.ones(s.shape, bool)
    new[:, 1:] = s[:, 1:] != s[:, :-1]
    return (new & (s >= 0)).sum(axis=1)


def time_decay(cj, half_life_days: float = 7.0) -> np.ndarray:
    """weight ∝ 2^(−age_days / half_life_days), age to the milestone."""
    if half_life_days <= 0:
        raise ValueError(f"half_life_days must be > 0, got {half_life_days}")
    # measure age from each journey's newest touch so no weight underflows to 0
    starts = np.cumsum(np.r_[0, cj.conversions["n_touches"].to_numpy()])[:-1]
    newest = cj.age_days[np.maximum(starts + cj.conversions["n_touches"].to_numpy() - 1, 0)] \
        if len(cj.age_days) else np.zeros(len(cj.conversions))
    return normalise(cj, np.exp2(-(cj.age_days - newest[cj.conv]) / half_life_days))


def _vendor_u(cj, first: float, lead: float, between: float) -> np.ndarray:
    lead_pos = np.where(cj.mqa_pos >= 0, cj.mqa_pos, cj.conversions["n_touches"].to_numpy() - 1)[cj.conv]
    n_between = lead_pos - 1
    w = np.where(cj.pos == 0, first, 0.0) + np.where(cj.pos == lead_pos, lead, 0.0)
    inside = (cj.pos > 0) & (cj.pos < lead_pos)
    w += np.where(inside, np.divide(between, n_between, out=np.zeros(len(w)), where=n_between > 0), 0.0)
    return normalise(cj, w)


def _multipliers(codes: np.ndarray, weights: dict | None, names, what: str) -> np.ndarray:
    if not weights:
        return np.ones(len(codes))
    unknown = set(weights) - set(names)
    if unknown:
        raise ValueError(f"custom {what} weights: unknown {what}(s) {sorted(unknown)}; use names from {list(names)}")
    bad = {k: v for k, v in weights.items() if not (v >= 0)}
    if bad:
        raise ValueError(f"custom {what} weights must be >= 0; got {bad}")
    table = np.array([float(weights.get(c, 1.0)) for c in names])
    return table[codes]


def custom(cj, *, position_weights=None, milestone_weights_=None, channel_weights=None,
           touch_type_weights=None) -> np.ndarray:
    """User weights: position (first, middle, last), milestone shares (roles first,
    mqa, opportunity_created, closed_won, last, and "rest" for the others), and
    per-channel / per-touch-type multipliers; renormalised per conversion.

    Without position or milestone weights the base is linear (1/n), so channel
    multipliers alone give each touch a share proportional to its channel's weight
    (worked example in docs/attribution.md: 25/20/30/25). With both, the two bases are averaged.
    A conversion whose every weight is 0 is split equally (credits must sum to 1).
    """
    base = np.zeros(len(cj.conv))
    if position_weights is not None:
        f, m, l_ = (float(x) for x in position_weights)
        if min(f, m, l_) < 0 or f + m + l_ <= 0:
            raise ValueError(f"position_weights (first, middle, last) must be >= 0 and not all 0: {position_weights}")
        base += normalise(cj, bathtub(cj.pos, cj.n, f, m, l_, small_n="renormalise"))
    if milestone_weights_:
        ms = dict(milestone_weights_)
        rest = float(ms.pop("rest", 0.0))
        unknown = set(ms) - set(MILESTONE_ROLES)
        if unknown:
            raise ValueError(f"milestone_weights: unknown role(s) {sorted(unknown)}; roles are "
                             f"{list(MILESTONE_ROLES)} and 'rest'")
        base += milestone_weights(cj, ms, rest)
    if position_weights is None and not milestone_weights_:
        base = 1.0 / cj.n
    w = base * _multipliers(cj.channel, channel_weights, CHANNELS, "channel") \
        * _multipliers(cj.touch_type, touch_type_weights, TOUCH_TYPES, "touch_type")
    return normalise(cj, w)


def simple_position_credits(pos: np.ndarray, n, model: str) -> np.ndarray:
    """first_touch / last_touch / linear credit of touches at position ``pos`` of journeys
    of length ``n`` (shared by touch journeys and aggregated path tables).

    >>> simple_position_credits(np.array([0, 1, 2]), np.array([3, 3, 3]), "last_touch").tolist()
    [0.0, 0.0, 1.0]
    """
    if model == "first_touch":
        return (pos == 0).astype(float)
    if model == "last_touch":
        return (pos == n - 1).astype(float)
    if model == "linear":
        return 1.0 / n
    raise ValueError(f"{model!r} is not one of {SIMPLE_MODELS}")


def position_credits(cj, model: str, **params) -> np.ndarray:
    """Credit of every journey touch under a rule model (see module docstring)."""
    pos, n = cj.pos, cj.n
    if model in SIMPLE_MODELS:
        return simple_position_credits(pos, n, model)
    if model == "time_decay":
        return time_decay(cj, params.get("half_life_days", 7.0))
    if model in SHAPES:
        return _bathtub_journeys(cj, *SHAPES[model])
    if model == "w_shaped":
        roles = role_positions(cj)
        w = milestone_weights(cj, {"first": 0.3, "mqa": 0.3, "opportunity_created": 0.3}, 0.1)
        three = _distinct(roles["first"], roles["mqa"], roles["opportunity_created"]) >= 3
        return np.where(three[cj.conv], w, _bathtub_journeys(cj, *SHAPES["u_shaped"]))
    if model == "full_path":
        if cj.milestone != "closed_won":
            raise ValueError("full_path credits the closed-won touch: use milestone='closed_won'")
        return milestone_weights(cj, {"first": 0.225, "mqa": 0.225, "opportunity_created": 0.225,
                                      "closed_won": 0.225}, 0.1)
    if model == "hubspot_u_shaped":
        return _vendor_u(cj, 0.4, 0.4, 0.2)
    if model == "marketo_u_shaped":
        return _vendor_u(cj, 0.5, 0.5, 0.0)
    if model == "custom":
        return custom(cj, position_weights=params.get("position_weights"),
                      milestone_weights_=params.get("milestone_weights"),
                      channel_weights=params.get("channel_weights"),
                      touch_type_weights=params.get("touch_type_weights"))
    raise ValueError(f"unknown position model {model!r}; models are {POSITION_MODELS}")
