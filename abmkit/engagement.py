"""Account engagement score and MQA (see docs/engagement_and_mqa.md).

The score answers the questions — have we reached the key personas, is there
bottom-of-funnel engagement, how many contacts are engaged, how recent and how
frequent are the touches — per account and date over a trailing window
``(as_of - window_days, as_of]`` (an ``as_of`` is an instant; a bare date means its
midnight UTC, so pass the *next* day, or a period's exclusive end, to include a
whole day). Every component is its own column:

========================  ===================================================
activity                  Σ touch-type weight × 2^(−age_days / 30) (weights below)
breadth                   distinct contacts with engagement touches
personas_reached          how many of decision_maker / influencer / user have an
                          engaged contact
persona_coverage          personas_reached / 3
decision_makers_engaged   distinct decision makers with engagement touches
high_intent / _count      any / number of high-intent touches
recency_days              days since the last engagement touch (any time before)
cadence_days              median days between consecutive days with engagement
                          touches inside the window (NaN with fewer than two)
touches                   touches of any type in the window
score                     Σ component weight × component (weights below)
========================  ===================================================

Default touch-type weights are :data:`DEFAULT_TOUCH_WEIGHTS` (the table is in
docs/engagement_and_mqa.md). Default component
weights make ``activity`` the backbone and reward breadth of the buying group:
``score = activity + 2·breadth + 10·persona_coverage + 3·decision_makers_engaged
+ 5·high_intent`` (recency and cadence are shown, not scored: activity already decays
with age). Both are plain dicts you can override.

Everything is computed with sorted arrays, cumulative sums and binary search (no
loop over accounts or dates): each touch opens a coverage interval ``[t, t+window)``
and distinct counts are running sums of interval starts and ends.

MQA (default rule): ≥ ``min_decision_makers`` distinct decision makers
with engagement touches in the window, or ``score ≥ mqa_score`` when given.
``mqa_at`` is the first instant the rule holds, evaluated exactly at touch times
(the only instants at which any component can rise).

Example
-------
>>> import pandas as pd
>>> from abmkit.schema import Dataset
>>> ds = Dataset.from_frames(
...     accounts=pd.DataFrame({"account_id": ["a1"], "account_name": ["Acme"]}),
...     contacts=pd.DataFrame({"contact_id": ["c1", "c2"], "persona": ["decision_maker", "user"],
...                            "crm_account_id": ["a1", "a1"]}),
...     touchpoints=pd.DataFrame({"touchpoint_id": ["t1", "t2"], "occurred_at": ["2026-01-01", "2026-01-31"],
...                               "channel": ["webinar", "email"], "touch_type": ["webinar_attended", "email_click"],
...                               "contact_id": ["c1", "c2"]}))
>>> s = engagement_scores(ds, as_of="2026-01-31")
>>> s[["activity", "breadth", "personas_reached", "decision_makers_engaged", "cadence_days"]].round(2).values.tolist()
[[3.5, 2.0, 2.0, 1.0, 30.0]]
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .journeys import account_touches
from .prepared import MQARule, resolve
from .results import Result
from .schema import ENGAGEMENT_TOUCH_TYPES, HIGH_INTENT_TOUCH_TYPES, TOUCH_TYPES
from .timeutil import DAY_NS as _DAY_NS
from .timeutil import utc_timestamp as _utc

#: activity weight per touch type (docs/engagement_and_mqa.md)
DEFAULT_TOUCH_WEIGHTS: dict[str, float] = {
    "impression": 0.1, "email_open": 0.5, "visit": 1.0, "click": 1.0, "email_click": 1.0,
    "content_download": 3.0, "form_fill": 3.0, "webinar_registered": 2.0, "webinar_attended": 5.0,
    "event_attended": 5.0, "demo_request": 8.0, "meeting": 8.0, "call": 5.0, "intent_signal": 2.0,
}
#: weights of the components in ``score`` (components not listed weigh 0)
DEFAULT_COMPONENT_WEIGHTS: dict[str, float] = {
    "activity": 1.0, "breadth": 2.0, "persona_coverage": 10.0, "decision_makers_engaged": 3.0,
    "high_intent": 5.0,
}
#: personas that make up a buying group's coverage
BUYING_GROUP_PERSONAS: tuple[str, ...] = ("decision_maker", "influencer", "user")
HALF_LIFE_DAYS = 30.0
COMPONENTS: tuple[str, ...] = (
    "activity", "breadth", "personas_reached", "persona_coverage", "decision_makers_engaged",
    "high_intent", "high_intent_count", "recency_days", "cadence_days", "touches", "score",
)


# --------------------------------------------------------------------------- preparation
@dataclass
class _Prepared:
    """Touches resolved to accounts, as integer arrays sorted by (account, time)."""
    account_ids: np.ndarray          # code -> account id
    acc: np.ndarray                  # account code per touch
    t: np.ndarray                    # int64 ns
    weight: np.ndarray
    is_eng: np.ndarray
    is_hi: np.ndarray
    contact: np.ndarray              # contact code, -1 for account-level touches
    contact_ids: np.ndarray
    persona: np.ndarray              # index in BUYING_GROUP_PERSONAS, -1 other/unknown
    touches: pd.DataFrame            # the resolved touches (same order)
    unattributable: int
    contact_accounts: pd.DataFrame


def _prepare(data, weights) -> _Prepared:
    """The engagement arrays of a resolved dataset, built once per touch weights."""
    data = resolve(data)
    w = dict(DEFAULT_TOUCH_WEIGHTS)
    if weights:
        unknown = set(weights) - set(TOUCH_TYPES)
        if unknown:
            raise ValueError(f"weights: unknown touch type(s) {sorted(unknown)}; touch types are {list(TOUCH_TYPES)}")
        w.update(weights)
    return data.memo(("engagement", tuple(sorted(w.items()))), lambda: _build(data, w))


def _build(data, w: dict) -> _Prepared:
    contact_accounts = data.contact_accounts
    dataset = data
    tp = account_touches(data)
    unattributable = int(tp["account_id"].isna().sum())
    tp = tp[tp["account_id"].notna() & tp["occurred_at"].notna()]
    persona_of = dataset.contacts.drop_duplicates("contact_id").set_index("contact_id")["persona"] \
        if "persona" in dataset.contacts else pd.Series(dtype=object)
    tp = tp.assign(persona=tp["contact_id"].map(persona_of))
    ids = pd.Index(pd.unique(pd.concat([dataset.accounts["account_id"], tp["account_id"]]).dropna()))
    acc = ids.get_indexer(tp["account_id"]).astype(np.int64)
    occurred = pd.to_datetime(tp["occurred_at"], utc=True).astype("datetime64[ns, UTC]")
    t = occurred.array.asi8.copy() if len(tp) else np.array([], np.int64)
    order = np.lexsort((tp["touchpoint_id"].astype(str).to_numpy(), t, acc)) if len(tp) else np.array([], np.int64)
    tp = tp.iloc[order].reset_index(drop=True)
    acc, t = acc[order], t[order]
    ttype = tp["touch_type"].astype(object)
    contact_codes, contact_ids = pd.factorize(tp["contact_id"])
    persona = pd.Index(BUYING_GROUP_PERSONAS).get_indexer(tp["persona"].astype(object))
    return _Prepared(
        account_ids=np.asarray(ids, dtype=object), acc=acc, t=t,
        weight=ttype.map(w).fillna(0.0).to_numpy(dtype=float),
        is_eng=ttype.isin(ENGAGEMENT_TOUCH_TYPES).to_numpy(), is_hi=ttype.isin(HIGH_INTENT_TOUCH_TYPES).to_numpy(),
        contact=contact_codes.astype(np.int64), contact_ids=np.asarray(contact_ids, dtype=object),
        persona=persona.astype(np.int64), touches=tp, unattributable=unattributable,
        contact_accounts=contact_accounts)


# --------------------------------------------------------------------------- array kernels
class _Keys:
    """(account, time) pairs as one sortable int64: account × (R+1) + rank of time
    among every instant involved (exact, no overflow, no float rounding)."""

    def __init__(self, *times: np.ndarray):
        u = np.sort(np.concatenate([np.asarray(x, np.int64) for x in times]))
        keep = np.ones(len(u), bool)
        keep[1:] = u[1:] != u[:-1]
        self.universe = u[keep]
        self.base = len(self.universe) + 1

    def __call__(self, acc: np.ndarray, t: np.ndarray) -> np.ndarray:
        return acc.astype(np.int64) * self.base + np.searchsorted(self.universe, t)


def _last_at_or_before(src_keys, src_acc, q_keys, q_acc) -> np.ndarray:
    """Index of the last source row (keys sorted) of the same account at or before
    each query key; -1 when none."""
    i = np.searchsorted(src_keys, q_keys, side="right") - 1
    ok = i >= 0
    ok[ok] = src_acc[i[ok]] == q_acc[ok]
    return np.where(ok, i, -1)


def _window_sum(src_keys, acc, values, q_acc, qk_hi, qk_lo) -> np.ndarray:
    """Σ values of the same account's rows with key in (qk_lo, qk_hi]."""
    if len(acc) == 0:
        return np.zeros(len(q_acc))
    cum = pd.Series(values).groupby(acc).cumsum().to_numpy(dtype=float)
    hi = _last_at_or_before(src_keys, acc, qk_hi, q_acc)
    lo = _last_at_or_before(src_keys, acc, qk_lo, q_acc)
    return np.where(hi >= 0, cum[hi], 0.0) - np.where(lo >= 0, cum[lo], 0.0)


def _distinct_steps(acc, who, t, window_ns):
    """Distinct ``who`` per account with a row in ``(x − window, x]``, as a step
    function (acc, time, count) sorted by (acc, time): each row covers
    ``[t, t + window)``; overlapping covers of one (acc, who) are merged so the
    running sum of starts (+1) and ends (−1) is the distinct count."""
    if len(acc) == 0:
        e = np.array([], np.int64)
        return e, e, e
    o = np.lexsort((t, who, acc))
    a, w, x = acc[o], who[o], t[o]
    new = np.ones(len(a), bool)
    new[1:] = (a[1:] != a[:-1]) | (w[1:] != w[:-1]) | (x[1:] - x[:-1] >= window_ns)
    last = np.ones(len(a), bool)
    last[:-1] = new[1:]
    ev_a = np.concatenate([a[new], a[last]])
    ev_t = np.concatenate([x[new], x[last] + window_ns])
    ev_d = np.concatenate([np.ones(new.sum(), np.int64), -np.ones(last.sum(), np.int64)])
    o = np.lexsort((ev_t, ev_a))
    ev_a, ev_t, ev_d = ev_a[o], ev_t[o], ev_d[o]
    brk = np.ones(len(ev_a), bool)
    brk[1:] = (ev_a[1:] != ev_a[:-1]) | (ev_t[1:] != ev_t[:-1])
    idx = np.flatnonzero(brk)
    # every account's events sum to zero, so one global cumulative sum is per account
    return ev_a[idx], ev_t[idx], np.cumsum(np.add.reduceat(ev_d, idx))


def _step_value(keys, steps, q_acc, qk) -> np.ndarray:
    s_acc, s_t, count = steps
    if len(s_acc) == 0:
        return np.zeros(len(q_acc))
    i = _last_at_or_before(keys(s_acc, s_t), s_acc, qk, q_acc)
    return np.where(i >= 0, count[i], 0).astype(float)


def _cadence(p: _Prepared, keys: _Keys, q_acc, qk, window_ns) -> np.ndarray:
    """Median days between consecutive engagement days of the account inside the window."""
    out = np.full(len(q_acc), np.nan)
    e = p.is_eng
    if e.sum() < 2 or len(q_acc) == 0:
        return out
    a, t = p.acc[e], p.t[e]
    day = t // _DAY_NS
    first = np.ones(len(a), bool)
    first[1:] = (a[1:] != a[:-1]) | (day[1:] != day[:-1])
    last = np.ones(len(a), bool)
    last[:-1] = first[1:]
    t_last = t[last]
    a, t, day = a[first], t[first], day[first]   # one row per (account, day): first and last touch
    same = a[1:] == a[:-1]
    g_acc, g_gap = a[1:][same], (day[1:] - day[:-1])[same].astype(float)
    # a day is in (q − window, q] when one of its touches is: the gap between days i−1 and i
    # counts for q ∈ [first touch of day i, last touch of day i−1 + window)
    g_from, g_to = t[1:][same], t_last[:-1][same] + window_ns
    order = np.argsort(qk, kind="stable")
    qk_sorted = qk[order]
    lo = np.searchsorted(qk_sorted, keys(g_acc, g_from), side="left")
    hi = np.searchsorted(qk_sorted, keys(g_acc, g_to), side="left")
    n = np.maximum(hi - lo, 0)
    if n.sum() == 0:
        return out
    rep = np.repeat(np.arange(len(n)), n)
    pos = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n) + lo[rep]
    med = pd.Series(g_gap[rep]).groupby(order[pos]).median()
    out[med.index.to_numpy()] = med.to_numpy()
    return out


def _evaluate(p: _Prepared, q_acc: np.ndarray, q_t: np.ndarray, window_days: float,
              component_weights: dict, *, cadence: bool = True) -> pd.DataFrame:
    """Every component at each (account code, instant) query."""
    W = int(round(window_days * _DAY_NS))
    q_acc = np.asarray(q_acc, np.int64)
    q_t = np.asarray(q_t, np.int64)
    e = p.is_eng
    with_contact = e & (p.contact >= 0)
    contact_steps = _distinct_steps(p.acc[with_contact], p.contact[with_contact], p.t[with_contact], W)
    dm = with_contact & (p.persona == 0)
    dm_steps = _distinct_steps(p.acc[dm], p.contact[dm], p.t[dm], W)
    bg = with_contact & (p.persona >= 0)
    persona_steps = _distinct_steps(p.acc[bg], p.persona[bg], p.t[bg], W)
    # steps start at touch times and end at touch times + W: both already in the universe
    keys = _Keys(p.t, p.t + W, q_t, q_t - W)
    tk = keys(p.acc, p.t)                 # touches are sorted by (account, time)
    qk, qk_lo = keys(q_acc, q_t), keys(q_acc, q_t - W)

    t0 = p.t.min() if len(p.t) else 0
    decay_in = p.weight * np.exp2((p.t - t0) / (HALF_LIFE_DAYS * _DAY_NS))
    activity = _window_sum(tk, p.acc, decay_in, q_acc, qk, qk_lo) * np.exp2(-(q_t - t0) / (HALF_LIFE_DAYS * _DAY_NS))
    out = pd.DataFrame({"activity": np.maximum(activity, 0.0)})
    out["breadth"] = _step_value(keys, contact_steps, q_acc, qk)
    out["personas_reached"] = _step_value(keys, persona_steps, q_acc, qk)
    out["persona_coverage"] = out["personas_reached"] / len(BUYING_GROUP_PERSONAS)
    out["decision_makers_engaged"] = _step_value(keys, dm_steps, q_acc, qk)
    out["high_intent_count"] = np.rint(_window_sum(tk, p.acc, p.is_hi.astype(float), q_acc, qk, qk_lo))
    out["high_intent"] = out["high_intent_count"] > 0
    last = _last_at_or_before(tk[e], p.acc[e], qk, q_acc)
    te = p.t[e]
    out["recency_days"] = np.where(last >= 0, (q_t - (te[last] if len(te) else 0)) / _DAY_NS, np.nan)
    out["cadence_days"] = _cadence(p, keys, q_acc, qk, W) if cadence else np.nan
    out["touches"] = np.rint(_window_sum(tk, p.acc, np.ones(len(p.t)), q_acc, qk, qk_lo))
    out["score"] = _score(out, component_weights)
    return out[list(COMPONENTS)]


def _score(components: pd.DataFrame, component_weights: dict | None) -> np.ndarray:
    cw = DEFAULT_COMPONENT_WEIGHTS if component_weights is None else component_weights
    unknown = set(cw) - (set(COMPONENTS) - {"score"})
    if unknown:
        raise ValueError(f"component_weights: unknown component(s) {sorted(unknown)}; "
                         f"components are {[c for c in COMPONENTS if c != 'score']}")
    total = np.zeros(len(components))
    for name, weight in cw.items():   # a handful of named components, not rows
        total += weight * components[name].astype(float).fillna(0.0).to_numpy()
    return total


# --------------------------------------------------------------------------- public: scores
def _dates(p: _Prepared, as_of, freq, start) -> pd.DatetimeIndex:
    last = pd.Timestamp(p.t.max(), tz="UTC") if len(p.t) else pd.Timestamp.now(tz="UTC").normalize()
    if freq is not None:
        end = _utc(as_of) if as_of is not None and np.ndim(as_of) == 0 else last
        first = _utc(start) if start is not None else (pd.Timestamp(p.t.min(), tz="UTC") if len(p.t) else end)
        dates = pd.date_range(first.normalize(), end, freq=freq)
        return dates if len(dates) else pd.DatetimeIndex([end])
    if as_of is None:
        return pd.DatetimeIndex([last])
    if np.ndim(as_of) == 0:
        return pd.DatetimeIndex([_utc(as_of)])
    return pd.DatetimeIndex([_utc(x) for x in as_of])


def engagement_scores(data, as_of=None, *, window_days: float = 90, weights: dict | None = None,
                      component_weights: dict | None = None,
                      freq: str | None = None, start=None, accounts: str = "all") -> pd.DataFrame:
    """Engagement components and score per account and date.

    Parameters
    ----------
    data : ResolvedDataset
        :func:`abmkit.prepare` output (a plain Dataset is prepared with defaults).
    as_of : timestamp, list of timestamps, or None
        Instant(s) the trailing window ends at (inclusive). None = the last touch.
        With ``freq``, a scalar ``as_of`` is the end of the date range.
    window_days : float
        Trailing window length.
    weights : dict, optional
        Touch-type activity weights overriding :data:`DEFAULT_TOUCH_WEIGHTS`.
    component_weights : dict, optional
        Replaces :data:`DEFAULT_COMPONENT_WEIGHTS` (component name → weight).
    freq : str, optional
        "D", "W", "MS"...: dates from ``start`` (default first touch) to ``as_of``
        (default last touch).
    accounts : {"all", "touched"}
        Every account of the dataset, or only accounts with at least one touch.

    Returns
    -------
    DataFrame
        ``account_id, as_of`` and the columns of :data:`COMPONENTS`, sorted by
        as_of then score (descending). Touches that could not be tied to an account
        are left out (the resolved dataset's summary counts them).
    """
    from .engine import is_partitioned, run
    if is_partitioned(data):  # per-account rows computed on the partitions (docs/scale.md)
        return run("engagement_scores", data, as_of, window_days=window_days, weights=weights,
                   component_weights=component_weights, freq=freq, start=start, accounts=accounts)
    if accounts not in ("all", "touched"):
        raise ValueError(f"accounts must be 'all' or 'touched', not {accounts!r}")
    p = _prepare(data, weights)
    dates = _dates(p, as_of, freq, start)
    codes = np.arange(len(p.account_ids)) if accounts == "all" else np.unique(p.acc)
    q_acc = np.tile(codes, len(dates))
    q_t = np.repeat(dates.asi8 if dates.tz is not None else dates.tz_localize("UTC").asi8, len(codes))
    comp = _evaluate(p, q_acc, q_t, window_days, component_weights)
    out = pd.DataFrame({"account_id": p.account_ids[q_acc] if len(q_acc) else np.array([], object),
                        "as_of": pd.to_datetime(q_t, utc=True)})
    out = pd.concat([out, comp], axis=1)
    out = out.sort_values(["as_of", "score", "account_id"], ascending=[True, False, True], kind="stable")
    return out.reset_index(drop=True)


def engagement_leaderboard(scores: pd.DataFrame, accounts: pd.DataFrame | None = None, *,
                           top: int | None = 20, columns=("account_name", "tier", "industry")) -> pd.DataFrame:
    """The accounts of a one-date :func:`engagement_scores` frame ranked by score, with
    descriptive account columns (those present) and a ``rank`` column; accounts with
    a zero score are left out.

    Example
    -------
    >>> engagement_leaderboard(engagement_scores(ds), ds.accounts, top=10)   # doctest: +SKIP
    """
    if scores["as_of"].nunique() > 1:
        raise ValueError("engagement_leaderboard needs scores at a single as_of date; filter the frame first")
    board = scores[scores["score"] > 0].sort_values(["score", "account_id"], ascending=[False, True])
    if top is not None:
        board = board.head(top)
    if accounts is not None:
        keep = [c for c in columns if c in accounts.columns]
        board = board.merge(accounts[["account_id", *keep]].drop_duplicates("account_id"), on="account_id", how="left")
        board = board[["account_id", *keep, *[c for c in board.columns if c not in ("account_id", *keep)]]]
    board.insert(0, "rank", range(1, len(board) + 1))
    return board.reset_index(drop=True)


# --------------------------------------------------------------------------- public: MQA
def _rule(comp: pd.DataFrame, min_decision_makers: int, mqa_score: float | None) -> np.ndarray:
    ok = comp["decision_makers_engaged"].to_numpy() >= min_decision_makers
    if mqa_score is not None:
        ok |= comp["score"].to_numpy() >= mqa_score
    return ok


def _mqa_times(p: _Prepared, end_ns: int, window_days, min_decision_makers, mqa_score, component_weights):
    """First instant (ns) per account code the MQA rule holds, at or before end; -1 none."""
    first = np.full(len(p.account_ids), -1, np.int64)
    if mqa_score is None:
        # the decision-maker count only rises at decision makers' engagement touches
        cand = p.is_eng & (p.persona == 0) & (p.contact >= 0)
    else:
        cand = np.ones(len(p.t), bool)
    cand &= p.t <= end_ns
    q = pd.DataFrame({"a": p.acc[cand], "t": p.t[cand]}).drop_duplicates()
    if q.empty:
        return first
    comp = _evaluate(p, q["a"].to_numpy(), q["t"].to_numpy(), window_days, component_weights, cadence=False)
    hit = q[_rule(comp, min_decision_makers, mqa_score)]
    t_first = hit.groupby("a")["t"].min()
    first[t_first.index.to_numpy()] = t_first.to_numpy()
    return first


@dataclass
class MQAResult(Result):
    """MQA flags and what sales needs next.

    Attributes
    ----------
    accounts : DataFrame
        One row per account: ``account_id, is_mqa`` (rule holds at ``as_of``),
        ``mqa_at`` (first instant the rule held, NaT if never), the components at
        ``as_of``.
    top_contacts : DataFrame
        Per account that reached MQA, its most engaged contacts in the window:
        ``account_id, rank, contact_id, persona, activity, touches, last_touch_at``.
    missing_personas : DataFrame
        ``account_id, personas_reached, missing_personas`` (";"-joined) for MQA accounts.
    stalled : DataFrame
        Accounts whose score at ``as_of`` is ≤ half their score ``window_days`` earlier:
        ``account_id, score_before, score_now, change, stage`` (stage from
        :func:`abmkit.progression.stage_as_of`, None when unavailable).
    buying_group_coverage : DataFrame
        ``account_id, engaged_contacts, buying_group_size, coverage``.
    """
    accounts: pd.DataFrame
    top_contacts: pd.DataFrame
    missing_personas: pd.DataFrame
    stalled: pd.DataFrame
    buying_group_coverage: pd.DataFrame
    as_of: pd.Timestamp
    params: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    def new_mqas(self, start=None, end=None) -> pd.DataFrame:
        """Accounts whose ``mqa_at`` falls in ``[start, end)`` (e.g. a quarter), earliest
        first, with their components at ``as_of``, coverage and missing personas.

        Example
        -------
        >>> p = abmkit.period.resolve_period(quarter="2026Q3")          # doctest: +SKIP
        >>> r.new_mqas(p.start, p.end)                                  # doctest: +SKIP
        """
        f = self.to_frame()
        ok = f["mqa_at"].notna()
        if start is not None:
            ok &= f["mqa_at"] >= _utc(start)
        if end is not None:
            ok &= f["mqa_at"] < _utc(end)
        return f[ok].sort_values(["mqa_at", "account_id"]).reset_index(drop=True)

    def to_frame(self) -> pd.DataFrame:
        """One row per account: flags, components, coverage, missing personas, stalled."""
        out = self.accounts.merge(self.buying_group_coverage, on="account_id", how="left")
        out = out.merge(self.missing_personas[["account_id", "missing_personas"]], on="account_id", how="left")
        out["stalled"] = out["account_id"].isin(self.stalled["account_id"])
        return out

    _summary_title = "Marketing-qualified accounts"

    @property
    def summary(self) -> pd.DataFrame:
        """Headline numbers as a two-column table (metric, value)."""
        a = self.accounts
        rows = [
            ("as_of", str(self.as_of)),
            ("accounts", len(a)),
            ("mqa_now", int(a["is_mqa"].sum())),
            ("ever_mqa", int(a["mqa_at"].notna().sum())),
            ("stalled", len(self.stalled)),
            ("median_buying_group_coverage_of_mqas", float(self.buying_group_coverage.loc[
                self.buying_group_coverage["account_id"].isin(a.loc[a["mqa_at"].notna(), "account_id"]),
                "coverage"].median()) if a["mqa_at"].notna().any() else float("nan")),
            ("rule", self.params.get("rule", "")),
        ]
        rows += [("note", n) for n in self.notes]
        return pd.DataFrame(rows, columns=["metric", "value"])


def _stage_at(data, as_of, notes) -> pd.DataFrame | None:
    from .progression import stage_as_of, stage_history
    try:
        return stage_as_of(stage_history(data), as_of)
    except Exception as exc:   # a stage is a nice-to-have here: say why it is missing
        notes.append(f"stage unavailable ({type(exc).__name__}: {exc}); stalled accounts carry no stage")
        return None


def mqa(data, *, as_of=None, n_top_contacts: int = 5, buying_group_size: float | None = None,
        stall_drop: float = 0.5, stall_min_score: float = 1.0, with_stage: bool = True) -> MQAResult:
    """Marketing-qualified accounts and the follow-up lists.

    The MQA rule is the resolved dataset's one rule (:class:`abmkit.prepared.MQARule`,
    set with ``abmkit.prepare(dataset, mqa=MQARule(...))``): every page of a report
    counts MQAs the same way.

    Parameters
    ----------
    data : ResolvedDataset
        :func:`abmkit.prepare` output (a plain Dataset is prepared with defaults).
    as_of : timestamp, optional
        End of the evaluation (default: the dataset's ``as_of``, else its last touch).
        ``mqa_at`` ≤ ``as_of``.
    n_top_contacts : int
        Contacts listed per MQA account.
    buying_group_size : float, optional
        Assumed buying-group size for every account; default = contacts mapped to
        the account.
    stall_drop, stall_min_score : float
        Stalled = score now ≤ (1 − stall_drop) × score ``window_days`` earlier, among
        accounts whose earlier score was at least ``stall_min_score`` (below that an
        account was never really engaged, e.g. a few impressions).
    with_stage : bool
        Look up the stalled accounts' stage in :mod:`abmkit.progression`.

    Example
    -------
    >>> r = mqa(abmkit.prepare(ds))                               # doctest: +SKIP
    >>> r.accounts.query("is_mqa")[["account_id", "mqa_at"]]   # doctest: +SKIP
    """
    from .engine import is_partitioned, run
    if is_partitioned(data):  # per-account rows computed on the partitions (docs/scale.md)
        return run("mqa", data, as_of=as_of, n_top_contacts=n_top_contacts, buying_group_size=buying_group_size,
                   stall_drop=stall_drop, stall_min_score=stall_min_score, with_stage=with_stage)
    data = resolve(data)
    rule: MQARule = data.mqa_rule
    min_decision_makers, mqa_score, window_days = rule.min_decision_makers, rule.mqa_score, rule.window_days
    component_weights = None
    contact_accounts = data.contact_accounts
    if as_of is None and data.as_of is not None:
        as_of = data.as_of
    p = _prepare(data, None)
    end = _dates(p, as_of, None, None)[0]
    end_ns = end.value
    notes: list[str] = list(data.notes)

    codes = np.arange(len(p.account_ids))
    now = _evaluate(p, codes, np.full(len(codes), end_ns), window_days, component_weights)
    before = _evaluate(p, codes, np.full(len(codes), end_ns - int(window_days * _DAY_NS)), window_days,
                       component_weights, cadence=False)
    first = _mqa_times(p, end_ns, window_days, min_decision_makers, mqa_score, component_weights)
    accounts = pd.DataFrame({"account_id": p.account_ids, "is_mqa": _rule(now, min_decision_makers, mqa_score),
                             "mqa_at": pd.to_datetime(np.where(first >= 0, first, np.iinfo(np.int64).min), utc=True)})
    accounts = pd.concat([accounts, now], axis=1)

    # most engaged contacts of MQA accounts, in the window ending at as_of
    W = int(window_days * _DAY_NS)
    tp = p.touches
    in_win = (p.t > end_ns - W) & (p.t <= end_ns) & (p.contact >= 0) & (first >= 0)[p.acc]
    decayed = p.weight * np.exp2(-(end_ns - p.t) / (HALF_LIFE_DAYS * _DAY_NS))
    per = pd.DataFrame({"account_id": p.account_ids[p.acc[in_win]], "contact_id": tp["contact_id"].to_numpy()[in_win],
                        "persona": tp["persona"].to_numpy()[in_win], "activity": decayed[in_win],
                        "occurred_at": pd.to_datetime(p.t[in_win], utc=True)})
    top = per.groupby(["account_id", "contact_id"], sort=False).agg(
        persona=("persona", "first"), activity=("activity", "sum"), touches=("activity", "size"),
        last_touch_at=("occurred_at", "max")).reset_index()
    top = top.sort_values(["account_id", "activity", "contact_id"], ascending=[True, False, True])
    top["rank"] = top.groupby("account_id").cumcount() + 1
    top = top[top["rank"] <= n_top_contacts][["account_id", "rank", "contact_id", "persona", "activity",
                                               "touches", "last_touch_at"]].reset_index(drop=True)

    # personas reached in the window (engagement touches), and the ones still missing
    eng = in_win & p.is_eng & (p.persona >= 0)
    hit = np.zeros((len(p.account_ids), len(BUYING_GROUP_PERSONAS)), bool)
    hit[p.acc[eng], p.persona[eng]] = True
    hit = hit[first >= 0]
    names = np.asarray(BUYING_GROUP_PERSONAS, object)
    # ";"-joined persona lists built column by column (three personas, not a row loop)
    reached_s = pd.Series([""] * len(hit), dtype=object)
    missing_s = pd.Series([""] * len(hit), dtype=object)
    for j, name in enumerate(names):
        for target, mask in ((reached_s, hit[:, j]), (missing_s, ~hit[:, j])):
            target[mask] = np.where(target[mask] == "", name, target[mask] + ";" + name)
    missing = pd.DataFrame({"account_id": p.account_ids[first >= 0], "personas_reached": reached_s.to_numpy(),
                            "missing_personas": missing_s.to_numpy()})

    # stalled: the score fell by at least stall_drop over the window
    stalled_mask = (before["score"].to_numpy() >= stall_min_score) & (
        now["score"].to_numpy() <= (1 - stall_drop) * before["score"].to_numpy())
    stalled = pd.DataFrame({"account_id": p.account_ids[stalled_mask], "score_before": before["score"][stalled_mask].to_numpy(),
                            "score_now": now["score"][stalled_mask].to_numpy()})
    stalled["change"] = stalled["score_now"] / stalled["score_before"] - 1
    stage = _stage_at(data, end, notes) if with_stage and len(stalled) else None
    if stage is not None:
        stalled = stalled.merge(stage, on="account_id", how="left")
        stalled["stage"] = stalled["stage"].astype(object).where(stalled["stage"].notna(), None)
    else:
        stalled["stage"] = None
    stalled = stalled.sort_values("change", kind="stable").reset_index(drop=True)

    # buying-group coverage: engaged contacts / buying-group size
    if buying_group_size is not None:
        size = pd.Series(float(buying_group_size), index=p.account_ids)
    else:
        mapped = contact_accounts.dropna(subset=["account_id"]).drop_duplicates("contact_id")
        size = mapped.groupby("account_id").size().reindex(p.account_ids, fill_value=0).astype(float)
    coverage = pd.DataFrame({"account_id": p.account_ids, "engaged_contacts": now["breadth"].to_numpy(),
                             "buying_group_size": size.to_numpy()})
    coverage["coverage"] = coverage["engaged_contacts"] / coverage["buying_group_size"].where(
        coverage["buying_group_size"] > 0)
    if p.unattributable:
        notes.append(f"{p.unattributable} touch(es) could not be tied to an account (unmatched contacts); "
                     "they are left out of every score")
    from .applicability import check, mark  # n/a without touches or contacts: no account can qualify
    return mark(MQAResult(accounts=accounts, top_contacts=top, missing_personas=missing, stalled=stalled,
                          buying_group_coverage=coverage, as_of=end, notes=notes,
                          params={"rule": rule.describe(), "min_decision_makers": min_decision_makers,
                                  "mqa_score": mqa_score, "window_days": window_days}),
                check(data, "mqa"))


def first_mqa_times(data) -> pd.DataFrame:
    """``account_id, mqa_at`` for every account that met the dataset's MQA rule by its
    ``data_end`` (first instant the rule held). Cached on the resolved dataset as
    :attr:`~abmkit.prepared.ResolvedDataset.mqa_dates`: use that."""
    data = resolve(data)
    rule = data.mqa_rule
    p = _prepare(data, None)
    end_ns = data.data_end.value if not pd.isna(data.data_end) else _dates(p, None, None, None)[0].value
    first = _mqa_times(p, end_ns, rule.window_days, rule.min_decision_makers, rule.mqa_score, None)
    ok = first >= 0
    return pd.DataFrame({"account_id": p.account_ids[ok], "mqa_at": pd.to_datetime(first[ok], utc=True)})


def mqa_accounts_at(data, when) -> pd.Index:
    """Ids of the accounts for which the dataset's MQA rule holds at instant ``when``
    (trailing window ending at ``when``, inclusive): the "MQA accounts at period end"
    of every KPI tile and table.

    Example
    -------
    >>> mqa_accounts_at(abmkit.prepare(ds), "2026-10-01")   # doctest: +SKIP
    """
    data = resolve(data)
    when = _utc(when)

    def build():
        rule = data.mqa_rule
        p = _prepare(data, None)
        codes = np.arange(len(p.account_ids))
        comp = _evaluate(p, codes, np.full(len(codes), when.value), rule.window_days, None, cadence=False)
        return pd.Index(p.account_ids[_rule(comp, rule.min_decision_makers, rule.mqa_score)])
    return data.memo(("mqa_accounts_at", when.value), build)


def mqa_dates(data) -> pd.DataFrame:
    """``account_id, mqa_at`` for every account that became an MQA under the
    dataset's rule, up to its ``data_end``. Used by W-shaped and full-path attribution.

    Example
    -------
    >>> mqa_dates(abmkit.prepare(ds)).head()   # doctest: +SKIP
    """
    from .engine import is_partitioned, run
    if is_partitioned(data):
        return run("mqa_dates_with", data)
    return resolve(data).mqa_dates
