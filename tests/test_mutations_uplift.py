"""Landmark design of campaign influence (DESIGN §5) on a hand-made stage history:
an account that enters s+1 exactly at the landmark ``L = entry + exposure_days`` is
no longer in s at L, so it is NOT at risk (``N > L``, not ``N >= L``), and it is not
an outcome either (outcome = s+1 in ``(L, L + outcome_days]``).

Written to kill the mutation ``N > L`` -> ``N >= L`` in ``abmkit.uplift._landmark``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from abmkit.uplift import _landmark, at_risk_counts

DAY = pd.Timedelta(days=1)
ENTRY = pd.Timestamp("2026-01-01", tz="UTC")
AS_OF = pd.Timestamp("2026-06-30", tz="UTC")
EXPOSURE, OUTCOME = 10, 20
L = ENTRY + EXPOSURE * DAY            # 2026-01-11: the landmark of every account below but x7

# account -> (entered "aware", entered "engaged" or None)
ACCOUNTS = {
    "x1": (ENTRY, L),                          # engaged exactly at the landmark: not at risk, no event
    "x2": (ENTRY, ENTRY + 4 * DAY),            # engaged before the landmark: not at risk
    "x3": (ENTRY, L + 9 * DAY),                # at risk, event inside (L, L + 20]
    "x4": (ENTRY, None),                       # at risk, never engaged
    "x5": (ENTRY, L + OUTCOME * DAY),          # at risk, event exactly at the window end (closed)
    "x6": (ENTRY, L + 35 * DAY),               # at risk, event after the window: no event
    "x7": (AS_OF - 5 * DAY, None),             # entered too late for a complete window: not in the cohort
}


def _history() -> pd.DataFrame:
    rows = []
    for acc, (aware, engaged) in ACCOUNTS.items():
        rows.append((acc, "unaware", ENTRY - 30 * DAY))
        rows.append((acc, "aware", aware))
        if engaged is not None:
            rows.append((acc, "engaged", engaged))
    return pd.DataFrame(rows, columns=["account_id", "stage", "entered_at"])


def test_account_entering_next_stage_exactly_at_the_landmark_is_not_at_risk():
    out = at_risk_counts(_history(), list(ACCOUNTS), exposure_days=EXPOSURE, outcome_days=OUTCOME,
                         transitions=["aware->engaged"], as_of=AS_OF)
    assert out.to_dict("records") == [{"transition": "aware->engaged", "from_stage": "aware",
                                       "to_stage": "engaged", "n_at_risk": 4, "events_at_risk": 2}]
    # x1 alone (engaged exactly at L): nobody at risk
    only_x1 = at_risk_counts(_history(), ["x1"], exposure_days=EXPOSURE, outcome_days=OUTCOME,
                             transitions=["aware->engaged"], as_of=AS_OF)
    assert (int(only_x1["n_at_risk"].iloc[0]), int(only_x1["events_at_risk"].iloc[0])) == (0, 0)
    # one nanosecond later, x1 is still in "aware" at L: at risk, and an event
    h = _history()
    h.loc[(h["account_id"] == "x1") & (h["stage"] == "engaged"), "entered_at"] = L + pd.Timedelta(1, "ns")
    later = at_risk_counts(h, ["x1"], exposure_days=EXPOSURE, outcome_days=OUTCOME,
                           transitions=["aware->engaged"], as_of=AS_OF)
    assert (int(later["n_at_risk"].iloc[0]), int(later["events_at_risk"].iloc[0])) == (1, 1)


def test_landmark_arrays_by_hand():
    ns = lambda t: np.int64(pd.Timestamp(t).value)  # noqa: E731
    inf = np.iinfo(np.int64).max
    day_ns = 86_400 * 10**9
    E = np.array([ns(a) for a, _ in ACCOUNTS.values()], dtype=np.int64)
    N = np.array([ns(b) if b is not None else inf for _, b in ACCOUNTS.values()], dtype=np.int64)
    entered, Ls, at_risk, y_all = _landmark(E, N, ns(AS_OF), EXPOSURE * day_ns, OUTCOME * day_ns)
    #                               x1     x2     x3    x4     x5    x6     x7
    assert entered.tolist() == [True, True, True, True, True, True, True]
    assert at_risk.tolist() == [False, False, True, True, True, True, False]
    assert y_all.tolist() == [False, False, True, False, True, False, False]
    assert Ls[0] == ns(L) == N[0]
