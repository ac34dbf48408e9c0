"""Training track: exercises at the end of each notebook, and a checker that tells the
trainee whether an answer is right.

Each exercise has a question, a hint and a function that computes the right answer
*from the data the notebook ran on* (never a number written down in advance), so the
exercises work on the bundled sample, on another seed and on a team's own export. The
notebooks end with one cell per exercise::

    answer = None   # replace None with your answer
    training.check("02.new_mqas", answer, data=data, period=period)

An unanswered exercise (``answer = None``) only says "not answered yet" and computes
nothing, so the exercise cells cost nothing in a report run (they are tagged
``exercise`` and left out of the HTML pages). The course outline is docs/training.md.

Example
-------
>>> str(check("02.new_mqas", None))
'02.new_mqas: not answered yet — replace None with your answer and run the cell again.'
>>> exercises("05")["id"].tolist()
['05.market_reach', '05.biggest_loss', '05.new_mqas_targets']
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import pandas as pd

from .results import Result

__all__ = ["Exercise", "Check", "EXERCISES", "exercises", "check", "expected"]


@dataclass(frozen=True)
class Exercise:
    """One exercise: ``answer(**context)`` computes the right answer from the data.

    ``kind``: ``"share"`` (a fraction, or the same as a percent: whichever reading is closer),
    ``"count"`` (an exact whole number), ``"number"`` (within ``tolerance``) or
    ``"label"`` (text compared without case, spaces or punctuation; ``answer`` returns
    the accepted labels, e.g. a campaign's id and its name)."""
    id: str
    notebook: str
    question: str
    hint: str
    kind: str
    answer: Callable[..., Any]
    needs: tuple[str, ...] = ("data", "period")
    tolerance: float = 0.005
    explanation: str = ""


# --------------------------------------------------------------------------- answers
def _reject_rate_touchpoints(result, **_):
    q = result.to_frame().set_index("table")
    return float(q.loc["touchpoints", "rows_rejected"] / q.loc["touchpoints", "rows_in"])


def _top_reject_reason(result, **_):
    counts = result.rejects["reason_code"].value_counts()
    if not len(counts):
        return {"none"}
    return set(counts.index[counts == counts.max()])


def _merged_rows(result, **_):
    return int(result.to_frame()["rows_merged"].sum())


def _match_rate(data, **_):
    from .mapping import mapping_report
    return float(mapping_report(data.contact_accounts, data.contacts).headline()["match_rate"])


def _new_mqas_in(mqa_dates: pd.DataFrame, period) -> int:
    at = mqa_dates["mqa_at"]
    return int(((at >= period.start) & (at < period.end)).sum())


def _new_mqas(data, period, **_):
    from .engine import is_partitioned, run
    if is_partitioned(data):  # the handle's MQA dates (computed on the partitions when it has none)
        return _new_mqas_in(run("mqa_dates_with", data), period)
    return _new_mqas_in(data.mqa_dates, period)


def _new_mqas_two_decision_makers(data, period, **_):
    from .prepared import prepare
    if not data.mqa_rule.uses_personas:
        raise ValueError("this data has no decision makers (no persona data), so the decision-maker rule does not apply")
    from .engine import is_partitioned, run
    if is_partitioned(data):  # the same prepare() on the partitions: MQA dates under the other rule
        return _new_mqas_in(run("mqa_dates_with", data, rule=replace(data.mqa_rule, min_decision_makers=2),
                                fallback_as_of=period.end), period)
    again = prepare(data.tables, mapping=data.contact_accounts, mqa=replace(data.mqa_rule, min_decision_makers=2),
                    as_of=data.as_of if data.as_of is not None else period.end)
    return _new_mqas_in(again.mqa_dates, period)


def _channel_shares(data, period, model, milestone="opportunity_created", lookback_days=365, **_):
    from . import attribution
    cr = attribution.attribute(data, model, milestone=milestone, lookback_days=lookback_days,
                               start=period.start, end=period.end)
    # shares of the conversions' credit (each conversion counts 1), as ``compare_models(...).shares``
    s = cr.groupby(cr["channel"].astype(str))["credit"].sum()
    return s / s.sum()


def _top_channel_linear(data, period, **kw):
    s = _channel_shares(data, period, "linear", **kw)
    return set(s.index[s == s.max()])


def _last_over_first(data, period, **kw):
    d = (_channel_shares(data, period, "last_touch", **kw)
         .sub(_channel_shares(data, period, "first_touch", **kw), fill_value=0.0))
    return set(d.index[d == d.max()])


def _history(data, period, history=None, **_):
    if history is not None:
        return history
    from .progression import stage_history
    return stage_history(data, as_of=period.end)


def _aware_engaged_rate(data, period, history=None, **_):
    from .progression import progression_rates
    rates = progression_rates(_history(data, period, history)).set_index("transition")
    return float(rates.loc["aware->engaged", "rate"])


def _influence(data, period, influence=None, history=None, **_):
    if influence is not None:
        return influence
    from .uplift import campaign_influence
    return campaign_influence(data, history=_history(data, period, history))


def _campaign_labels(rows: pd.DataFrame) -> set:
    out = set()
    for col in ("campaign_id", "campaign_name"):
        if col in rows.columns:
            out |= {str(v) for v in rows[col].dropna()}
    return out or {"none"}


def _best_campaign(data, period, influence=None, history=None, **_):
    res = _influence(data, period, influence, history)
    t = res.table
    alpha = res.params.get("alpha", 0.05)
    sig = t[(t["level"] == "campaign") & (t["q_value"] < alpha) & (t["adj_diff"] > 0)] if len(t) else t
    if not len(sig):
        return {"none"}
    return _campaign_labels(sig[sig["adj_diff"] == sig["adj_diff"].max()])


def _most_confounded(data, period, influence=None, history=None, **_):
    res = _influence(data, period, influence, history)
    t = res.table
    m = res.params.get("min_group_size", 20)
    ok = t[(t["level"] == "campaign") & (t["n_treated"] >= m) & (t["n_control"] >= m)
           & t["adj_diff"].notna() & t["diff"].notna()] if len(t) else t
    if not len(ok):
        return {"none"}
    shrink = ok["diff"] - ok["adj_diff"]
    return _campaign_labels(ok[shrink == shrink.max()])


def _kpi_of(data, name: str, period):
    """KPI ``name`` of ``period``: on a partitioned dataset the KPI table's row (its
    partitioned kernel), else the KPI's own function."""
    from . import kpis
    from .engine import is_partitioned
    if is_partitioned(data):
        row = kpis.kpi_table(data, start=period.start, end=period.end, segments=()).overall.set_index("kpi").loc[name]
        note = row.get("note")
        return kpis.KPIResult(name, float(row["value"]), note=note if isinstance(note, str) else "")
    return getattr(kpis, name)(data, period=period)


def _market_reach(data, period, **_):
    r = _kpi_of(data, "market_reach", period)
    if r.value is None or (isinstance(r.value, float) and math.isnan(r.value)):
        raise ValueError(r.note or "market reach is n/a on this data")
    return float(r.value)


def _biggest_loss(data, period, **_):
    from .kpis import account_funnel
    f = account_funnel(data, period=period)
    lost = f["accounts"].shift(1) - f["accounts"]
    lost = lost.iloc[1:]
    steps = f["step"].iloc[1:]
    return set(steps[lost == lost.max()])


def _new_mqas_targets(data, period, **_):
    r = _kpi_of(data, "new_mqas", period)
    return int(r.value)


_MIN_DM_EXPLANATION = (
    "Why not simply more? A lower bar does two things. Accounts that never had three engaged decision makers can "
    "now qualify (more new MQAs), and accounts that reach three this period had two some months ago, so they now "
    "qualify in an earlier period and are no longer *new* (fewer new MQAs). On a programme where most accounts "
    "have been engaged for a while, the second effect wins and the count of new MQAs falls. The MQAs in total and "
    "at period end never fall when the bar is lowered.")

EXERCISES: dict[str, Exercise] = {e.id: e for e in [
    # 01 · cleaning ------------------------------------------------------------------------
    Exercise("01.reject_rate", "01",
             "What share of the raw touchpoint rows was rejected? (a fraction such as 0.012, or a percent such as 1.2)",
             "The quality table (`summary`) has `rows_in` and `rows_rejected` for every table.",
             "share", _reject_rate_touchpoints, needs=("result",), tolerance=0.0005),
    Exercise("01.top_reason", "01",
             "Which reason code rejected the most rows, over all tables?",
             "`by_reason` lists reason codes per table; add the rows of a code over the tables (or count "
             "`result.rejects['reason_code']`).",
             "label", _top_reject_reason, needs=("result",)),
    Exercise("01.merged", "01",
             "How many raw rows were merged into another row as exact duplicates, over all tables?",
             "Conservation: rows_in = rows_clean + rows_rejected + rows_merged. Sum one column of `summary`.",
             "count", _merged_rows, needs=("result",)),
    # 02 · mapping, engagement, MQAs ---------------------------------------------------------
    Exercise("02.match_rate", "02",
             "What share of the contacts is mapped to an account? (a fraction or a percent)",
             "`report.summary` has it; or count the contacts whose `account_id` is set in `data.contact_accounts`.",
             "share", _match_rate),
    Exercise("02.new_mqas", "02",
             "How many accounts (all accounts, not only targets) became MQAs for the first time in the period?",
             "`data.mqa_dates` holds each account's first MQA instant `mqa_at`; count those in "
             "[period.start, period.end).",
             "count", _new_mqas),
    Exercise("02.new_mqas_two_dm", "02",
             "Prepare the data again with `min_decision_makers = 2` (keep everything else). How many accounts "
             "become new MQAs in the period now? Is that more or fewer than with 3?",
             "`again = abmkit.prepare(data.tables, mapping=data.contact_accounts, "
             "mqa=dataclasses.replace(data.mqa_rule, min_decision_makers=2), as_of=period.end)`, then count "
             "`again.mqa_dates` in the period as in the previous exercise.",
             "count", _new_mqas_two_decision_makers, explanation=_MIN_DM_EXPLANATION),
    # 03 · attribution ------------------------------------------------------------------------
    Exercise("03.top_channel_linear", "03",
             "Under the linear model, which channel gets the largest share of the credit for the period's conversions?",
             "`result.shares` is channel × model (shares of the credit); look at the `linear` column.",
             "label", _top_channel_linear, needs=("data", "period")),
    Exercise("03.last_over_first", "03",
             "Which channel gains the most share when you switch from first-touch to last-touch credit?",
             "Subtract `result.shares['first_touch']` from `result.shares['last_touch']` and take the largest "
             "difference. Which kind of touch tends to come right before an opportunity?",
             "label", _last_over_first, needs=("data", "period")),
    # 04 · progression and influence -------------------------------------------------------------
    Exercise("04.aware_engaged_rate", "04",
             "What share of the accounts that became aware went on to engaged by the end of the data?",
             "`rates` (section 3) has one row per transition: `progressed / entered`.",
             "share", _aware_engaged_rate),
    Exercise("04.best_campaign", "04",
             "Which campaign has the largest significant positive adjusted effect on a transition? "
             "(its id or its name; \"none\" if no effect is significant)",
             "In `campaigns`, keep rows with `q_value < alpha` and `adj_diff > 0`, then the largest `adj_diff`.",
             "label", _best_campaign),
    Exercise("04.most_confounded", "04",
             "Among campaigns with enough exposed and unexposed accounts (`min_group_size` each), which one's "
             "naive effect shrinks the most once account size, tier, industry and fit are adjusted for?",
             "Section 6: the largest `diff - adj_diff`. Who was that campaign aimed at?",
             "label", _most_confounded),
    # 05 · KPIs ----------------------------------------------------------------------------------
    Exercise("05.market_reach", "05",
             "What is the market reach of the period (share of the target accounts touched at all)?",
             "The `market_reach` row of `table.overall` (value column).",
             "share", _market_reach),
    Exercise("05.biggest_loss", "05",
             "Which step of the account funnel loses the most accounts (the largest number dropped from the "
             "step before, not the largest share)? Give the step name as in the `step` column.",
             "`funnel` lists `accounts` per step: subtract each step from the one before.",
             "label", _biggest_loss),
    Exercise("05.new_mqas_targets", "05",
             "How many *target* accounts became new MQAs in the period (the 'new MQAs' tile)? Why is it smaller "
             "than notebook 02's count of new MQAs?",
             "The `new_mqas` row of `table.overall`. Notebook 02 counts all accounts; the tiles count the target "
             "accounts only.",
             "count", _new_mqas_targets),
]}


def exercises(notebook: str | None = None) -> pd.DataFrame:
    """The exercises (of one notebook, ``"01"``…``"05"``): id, notebook, question, hint."""
    rows = [(e.id, e.notebook, e.question, e.hint) for e in EXERCISES.values()
            if notebook is None or e.notebook == str(notebook)[:2]]
    return pd.DataFrame(rows, columns=["id", "notebook", "question", "hint"])


def _get(exercise_id: str) -> Exercise:
    try:
        return EXERCISES[exercise_id]
    except KeyError:
        raise KeyError(f"no exercise {exercise_id!r}; exercises: {', '.join(EXERCISES)}") from None


def expected(exercise_id: str, **context):
    """The right answer of an exercise, computed from ``context`` (for instructors and
    tests): a number, or the set of accepted labels."""
    ex = _get(exercise_id)
    missing = [n for n in ex.needs if context.get(n) is None]
    if missing:
        raise TypeError(f"{exercise_id} is checked against the notebook's data: pass {', '.join(f'{m}=...' for m in missing)}")
    return ex.answer(**context)


def _norm(v) -> str:
    return "".join(ch for ch in str(v).lower() if ch.isalnum())


def _as_number(v):
    if isinstance(v, bool) or not isinstance(v, (numbers.Number, str)):
        return None
    try:
        x = float(str(v).strip().rstrip("%")) if isinstance(v, str) else float(v)
    except ValueError:
        return None
    return x if math.isfinite(x) else None


@dataclass
class Check(Result):
    """The checker's verdict: ``correct`` is True, False, or None (not answered / cannot
    be checked on this data); ``message`` says it in words."""
    exercise: str
    correct: bool | None
    message: str
    explanation: str = ""
    notes: list = field(default_factory=list)

    _summary_title = "Exercise check"

    @property
    def summary(self) -> pd.DataFrame:
        status = {True: "right", False: "not yet right", None: "not checked"}[self.correct]
        return pd.DataFrame({"exercise": [self.exercise], "status": [status], "message": [self.message]})

    def __bool__(self) -> bool:
        return bool(self.correct)

    def _summary_text(self, decimals: int = 3) -> str:
        # the verdict in words is the whole text (print_summary, str and repr agree)
        return f"{self.exercise}: {self.message}" + (f"\n{self.explanation}" if self.explanation else "")

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        import html
        mark = {True: "✔", False: "✘", None: "…"}[self.correct]
        extra = f"<br>{html.escape(self.explanation)}" if self.explanation else ""
        return f"<p><strong>{mark} {html.escape(self.exercise)}</strong>: {html.escape(self.message)}{extra}</p>"


def check(exercise_id: str, answer, **context) -> Check:
    """Tell the trainee whether ``answer`` is right.

    ``answer = None`` means not answered yet: nothing is computed (exercise cells run
    harmlessly in report runs). Otherwise the right answer is computed from ``context``
    (the notebook's ``data``, ``period``… see :data:`EXERCISES`) and compared: shares
    within the exercise's tolerance (as a fraction, 0.25, or a percent, 25), counts
    exactly, labels without case, spaces or punctuation. A wrong answer gets the hint,
    never the answer.

    >>> check("01.merged", None).correct is None
    True
    """
    ex = _get(exercise_id)
    if answer is None or (isinstance(answer, str) and not answer.strip()):
        return Check(exercise_id, None, "not answered yet — replace None with your answer and run the cell again.")
    try:
        right = expected(exercise_id, **context)
    except TypeError:
        raise
    except Exception as exc:   # the data cannot support the exercise (n/a): say why, never crash the notebook
        return Check(exercise_id, None, f"cannot be checked on this data ({exc}).")
    if ex.kind == "label":
        ok = _norm(answer) in {_norm(r) for r in right}
        msg = "right!" if ok else f"not quite. Hint: {ex.hint}"
    else:
        x = _as_number(answer)
        if x is None:
            return Check(exercise_id, False, f"expected a number, got {answer!r}. Hint: {ex.hint}")
        if ex.kind == "share" and abs(x / 100 - float(right)) < abs(x - float(right)):
            x = x / 100   # read as a percent (0.69 for a share of 0.0069 is a percent too)
        if ex.kind == "count":
            ok = float(x) == float(right)
        else:
            ok = abs(x - float(right)) <= ex.tolerance
        msg = "right!" if ok else f"not quite: your answer is too {'high' if x > float(right) else 'low'}. Hint: {ex.hint}"
    return Check(exercise_id, ok, msg, explanation=ex.explanation if ok else "")
