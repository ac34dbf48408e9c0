"""The executive summary: the findings of a report run as 4-6 plain sentences.

A stakeholder reads the top of ``index.html`` and of the KPI page and stops there, so
the summary says, in order: the period's key numbers and their change against the
previous period; the campaigns whose effect on account progression is significant,
**positive and negative**, with their size in plain words and how certain it is; the
steps of the account funnel that lose the most accounts (in number and in share); the data-quality alerts; and
the actions that follow from these (not generic advice: each action names the campaign,
step or check it comes from).

Everything here is a pure function of what the notebooks already computed: the KPI
table (:func:`abmkit.kpis.kpi_table`, ``overall``), the account funnel
(:func:`abmkit.kpis.account_funnel`) and the findings dicts of notebooks 01-04
(:func:`abmkit.outputs.load_findings`). Nothing is recomputed, so every number in a
sentence is the number of its table. A missing input or key leaves its sentence out or
says "n/a" and why; it never invents a 0.

:func:`attribution_trend` puts the attribution shares of the last periods side by side
(from each period's ``tables/attribution_shares.csv``; :func:`abmkit.outputs.load_period_tables`).

Example
-------
>>> import pandas as pd
>>> from abmkit.period import resolve_period
>>> kpi = pd.DataFrame({"kpi": ["market_reach"], "unit": ["ratio"], "value": [0.62], "previous": [0.55],
...                     "change": [0.07], "population": ["target accounts"], "population_size": [800]})
>>> s = executive_summary(kpi, period=resolve_period(quarter="2026Q3"))
>>> s.sentences[0].text
'Q3 2026 against Q2 2026: market reach 62.0% of the 800 target accounts (+7.0 pts).'
"""
from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

import pandas as pd

from .formatting import format_points, format_value, human_label, transition_label
from .period import Period, format_period
from .results import Result

__all__ = ["Sentence", "ExecutiveSummary", "executive_summary", "key_numbers", "campaign_effects",
           "biggest_funnel_drop", "data_quality_alerts", "recommended_actions", "certainty",
           "attribution_trend", "headline_numbers", "period_nav_html", "render_html", "HEADLINE_KPIS",
           "LOWER_IS_BETTER"]

#: the KPIs of the first sentence, in order (those the table has and can compute; names
#: another version of the KPI table lacks are skipped)
HEADLINE_KPIS = ("market_reach", "mqa_accounts", "new_mqas", "influenced_pipeline", "incremental_pipeline",
                 "win_rate", "mqa_to_win_rate")
#: sales KPIs named when fewer than two headline KPIs can be computed (an export of accounts
#: and opportunities only)
FALLBACK_KPIS = ("opportunity_creation", "average_deal_size", "pipeline_velocity")
#: at most this many KPIs in the first sentence
MAX_KEY_NUMBERS = 5
#: KPIs where a smaller number is better (durations, costs)
LOWER_IS_BETTER = frozenset({"pipeline_velocity", "deal_velocity", "cost_per_acquired_account"})
#: a change at least this large is "worth a look": shares in points, other units relative
ALERT_POINTS, ALERT_RELATIVE = 0.05, 0.15
#: ... and, for counts of accounts or opportunities, at least this many (a fall of 3 in 20
#: is 15% but within the period-to-period noise of so small a count)
MIN_COUNT_CHANGE = 5
COUNT_UNITS = frozenset({"accounts", "opportunities", "count"})
#: below this share of contacts mapped to an account, account-level numbers undercount
MIN_MATCH_RATE = 0.8
#: above this share of rejected rows, the export needs fixing before the numbers are used
MAX_REJECT_RATE = 0.05
#: the funnel steps in words (kpis.account_funnel's step names): (accounts "that ...",
#: what the accounts of the next step did)
FUNNEL_WORDS = {"population": ("in the population", "were in the population"),
                "reached": ("we reached", "were reached (any touch)"),
                "with_engagement": ("that engaged", "engaged (an engagement touch)"),
                "mqa": ("that were MQA at period end", "were MQA at period end"),
                "opportunity": ("that opened an opportunity", "opened an opportunity"),
                "won": ("that won an opportunity", "won an opportunity")}
#: the headline KPIs in a sentence (the KPI tiles' labels, written mid-sentence)
KPI_WORDS = {"market_reach": "market reach", "mqa_accounts": "MQA accounts at period end",
             "new_mqas": "new MQAs", "influenced_pipeline": "influenced pipeline",
             "incremental_pipeline": "incremental pipeline", "win_rate": "win rate",
             "mqa_to_win_rate": "MQA-to-win rate"}
#: what to do when the funnel loses most accounts at a step (keyed by the step reached)
FUNNEL_ACTIONS = {
    "reached": "add the {lost} target accounts we never reached to the paid-media and outreach audiences",
    "with_engagement": "give the {lost} reached but silent accounts a reason to engage (events, content offers, "
                       "sales outreach)",
    "mqa": "widen the buying groups: {lost} engaged accounts have too few engaged decision makers to be MQA",
    "opportunity": "ask sales to follow up the {lost} MQA accounts without an opportunity (stalled accounts: "
                   "tables/stalled_accounts.csv)",
    "won": "review with sales the {lost} accounts whose opportunity has not been won (lost or still open)",
}


@dataclass(frozen=True)
class Sentence:
    """One sentence of the summary: ``kind`` (key_numbers, campaigns, funnel,
    data_quality, actions), its ``text``, and ``numbers``: the formatted values it
    quotes, by source (``{"market_reach": "62.0%"}``), so a test or a reader can check
    each against its table."""
    kind: str
    text: str
    numbers: dict = field(default_factory=dict)


_TITLES = {"key_numbers": "Key numbers", "campaigns": "Campaigns", "funnel": "Funnel",
           "data_quality": "Data quality", "actions": "Recommended"}


@dataclass
class ExecutiveSummary(Result):
    """:func:`executive_summary` result: ``sentences`` (in reading order) and the full
    list of ``actions`` (the last sentence names the first three)."""
    period: str
    previous_period: str
    sentences: list[Sentence]
    actions: list[str] = field(default_factory=list)

    _summary_title = "Executive summary"

    @property
    def summary(self) -> pd.DataFrame:
        """One row per sentence: kind, text."""
        return pd.DataFrame({"kind": [s.kind for s in self.sentences], "text": [s.text for s in self.sentences]})

    @property
    def headline(self) -> str:
        return self.sentences[0].text if self.sentences else "n/a"

    def to_records(self) -> list[dict]:
        """The sentences as JSON-ready dicts (saved in the findings; the index shows them)."""
        return [{"kind": s.kind, "title": _TITLES.get(s.kind, s.kind), "text": s.text, "numbers": dict(s.numbers)}
                for s in self.sentences]

    def to_html(self, heading: str | None = "Executive summary", style: bool = False) -> str:
        """The summary as a short HTML list (every text escaped: campaign names come from the data);
        ``style`` adds its CSS (:data:`SUMMARY_CSS`, for a page that lacks it: a notebook output)."""
        return (f"<style>{SUMMARY_CSS}</style>" if style else "") + render_html(self.to_records(), heading)


#: the summary's box (index.html carries the same rule in its own CSS)
SUMMARY_CSS = (".exec-summary{background:#f6f8fa;border-left:4px solid #0969da;padding:.6rem 1rem .6rem 2rem;"
               "margin:.5rem 0 1rem}.exec-summary li{margin:.35rem 0}")


def render_html(records: list[dict], heading: str | None = "Executive summary") -> str:
    """HTML of saved summary records (:meth:`ExecutiveSummary.to_records`); all text escaped.

    >>> render_html([{"kind": "funnel", "title": "Funnel", "text": "<b>x</b>"}], heading=None)
    '<ul class="exec-summary"><li><strong>Funnel.</strong> &lt;b&gt;x&lt;/b&gt;</li></ul>'
    """
    e = lambda s: html.escape(str(s), quote=True)  # noqa: E731
    items = []
    for r in records:
        if not isinstance(r, dict):
            continue
        title, text = str(r.get("title") or r.get("kind", "")), str(r.get("text", ""))
        if text.lower().startswith(title.lower() + ":"):   # "Data quality: ..." needs no second lead-in
            text = text[len(title) + 1:].strip()
        items.append(f"<li><strong>{e(title)}.</strong> {e(text)}</li>")
    items = "".join(items)
    head = f"<h2>{e(heading)}</h2>" if heading else ""
    return f'{head}<ul class="exec-summary">{items}</ul>'


# --------------------------------------------------------------------------- helpers
def _num(v) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f


def _ok(v) -> bool:
    return math.isfinite(_num(v))


def _change_text(row: dict) -> str:
    """``+2.2 pts``, ``+15``, ``+801k, +16%``, ``unchanged`` or ``no comparison: ...``."""
    unit, change, prev = row.get("unit", "count"), _num(row.get("change")), _num(row.get("previous"))
    if not math.isfinite(change):
        return "no comparison: previous period n/a"
    if change == 0:
        return "unchanged"
    if unit == "ratio":
        return format_points(change)
    sign = "+" if change > 0 else "-"
    text = sign + format_value(abs(change), unit)
    if unit == "currency" and math.isfinite(prev) and prev:
        text += f", {change / abs(prev):+.0%}"
    return text


def _population(row: dict) -> str:
    pop, size = row.get("population"), _num(row.get("population_size"))
    if not isinstance(pop, str) or not pop or not math.isfinite(size):
        return ""
    return f" of the {size:,.0f} {pop}"


def _kpi_words(kpi: str) -> str:
    if kpi in KPI_WORDS:
        return KPI_WORDS[kpi]
    label = human_label(kpi)
    return label if label[:3].isupper() else label[:1].lower() + label[1:]


def _rows(kpis: pd.DataFrame | None) -> dict[str, dict]:
    if kpis is None or len(kpis) == 0 or "kpi" not in kpis:
        return {}
    return {str(r["kpi"]): r for r in kpis.to_dict("records")}


def headline_numbers(kpis: pd.DataFrame | None, names: tuple[str, ...] = HEADLINE_KPIS) -> list[dict]:
    """The headline KPIs the table has, formatted for people: ``kpi``, ``label``,
    ``value`` (as the tiles show it), ``change`` (against the previous period) and
    ``note`` (the n/a reason). Saved in the KPI page's findings, so the index across
    periods shows the same text without recomputing anything.

    >>> k = pd.DataFrame({"kpi": ["mqa_accounts"], "unit": ["accounts"], "value": [222.0], "previous": [207.0],
    ...                   "change": [15.0]})
    >>> headline_numbers(k)
    [{'kpi': 'mqa_accounts', 'label': 'MQA accounts at period end', 'value': '222', 'change': '+15', 'note': ''}]
    """
    rows = _rows(kpis)
    out = []
    for k in names:
        r = rows.get(k)
        if r is None:
            continue
        ok = _ok(r.get("value"))
        note = "" if ok else str(r.get("note") or "").removeprefix("n/a — ").removeprefix("n/a").strip()
        words = _kpi_words(k)
        out.append({"kpi": k, "label": words[:1].upper() + words[1:],
                    "value": format_value(r["value"], r.get("unit", "count")) if ok else "n/a",
                    "change": _change_text(r) if ok else "", "note": note})
    return out


def period_nav_html(period: Period, published: set[str] | frozenset[str], page: str = "index.html") -> str:
    """Links from a period's page to the same page of the previous period (when its
    report is published beside this one: ``published`` holds the labels of the reports
    folder) and to the index of all periods. Relative links (``../2026Q2/index.html``):
    they hold as long as the periods sit side by side in one reports folder.

    >>> from abmkit.period import resolve_period
    >>> period_nav_html(resolve_period(quarter="2026Q3"), {"2026Q2"})
    '<p class="nav"><a href="../2026Q2/index.html">&larr; previous period: Q2 2026</a> &middot; <a href="../index.html">all periods</a></p>'
    """
    prev = period.previous
    e = lambda s: html.escape(str(s), quote=True)  # noqa: E731
    if prev.label in published:
        back = f'<a href="../{e(prev.label)}/{e(page)}">&larr; previous period: {e(format_period(prev, dates=False))}</a>'
    else:
        back = f"previous period ({e(format_period(prev, dates=False))}): no report published"
    return f'<p class="nav">{back} &middot; <a href="../index.html">all periods</a></p>'


# --------------------------------------------------------------------------- sentences
def key_numbers(kpis: pd.DataFrame | None, period: Period, names: tuple[str, ...] = HEADLINE_KPIS,
                max_numbers: int = MAX_KEY_NUMBERS) -> Sentence | None:
    """The period's headline KPIs and their change against the previous period, with
    the values formatted exactly as the KPI tiles and table show them
    (:func:`abmkit.formatting.format_value`). KPIs that are n/a are named with their reason
    at the end; None without a KPI table."""
    rows = _rows(kpis)
    if not rows:
        return None
    shown, na, numbers = [], [], {}
    computable = [k for k in names if k in rows and _ok(rows[k].get("value"))]
    if len(computable) < 2:
        names = tuple(names) + tuple(k for k in FALLBACK_KPIS if k not in names)
    for k in names:
        r = rows.get(k)
        if r is None:
            continue
        if not _ok(r.get("value")):
            note = str(r.get("note") or "").removeprefix("n/a — ").removeprefix("n/a")
            na.append(f"{_kpi_words(k)} n/a"
                      + (f" ({note.strip()})" if note.strip() else ""))
            continue
        if len(shown) >= max_numbers:
            continue
        value = format_value(r["value"], r.get("unit", "count"))
        numbers[k] = value
        label = _kpi_words(k)
        pop = _population(r) if r.get("unit") == "ratio" and k in ("market_reach",) else ""
        shown.append(f"{label} {value}{pop} ({_change_text(r)})")
    if not shown and not na:
        return None
    text = f"{format_period(period, dates=False)} against {format_period(period.previous, dates=False)}: "
    text += "; ".join(shown) if shown else "no headline KPI can be computed"
    if na:
        text += "; " + "; ".join(na)
    return Sentence("key_numbers", text + ".", numbers)


def certainty(q_value, alpha: float = 0.05) -> str:
    """How sure we are, in words, from a q-value (the p-value after the correction for
    testing many campaigns): below 0.001 "very strong evidence", below 0.01 "strong
    evidence", below ``alpha`` "moderate evidence", else "not significant".

    >>> certainty(1e-9), certainty(0.004), certainty(0.03), certainty(0.2)
    ('very strong evidence', 'strong evidence', 'moderate evidence', 'not significant')
    """
    q = _num(q_value)
    if not math.isfinite(q) or q >= alpha:
        return "not significant"
    return "very strong evidence" if q < 0.001 else "strong evidence" if q < 0.01 else "moderate evidence"


def _effect(e: dict) -> dict | None:
    """A significant effect of notebook 04's findings in one shape (tolerates the older
    and newer key names)."""
    size = _num(e.get("adj_diff", e.get("effect", e.get("diff"))))
    if not math.isfinite(size):
        return None
    name = e.get("campaign") or e.get("campaign_name") or e.get("campaign_id") or "a campaign"
    return {"campaign": str(name), "transition": str(e.get("transition") or ""), "size": size,
            "q": _num(e.get("q_value")), "treated": _num(e.get("rate_treated")),
            "control": _num(e.get("rate_control"))}


def _describe_effect(x: dict, alpha: float) -> str:
    step = transition_label(x["transition"]) if x["transition"] else "the next stage"
    per100 = abs(x["size"]) * 100
    more = "more" if x["size"] > 0 else "fewer"
    q = x["q"]
    qtext = ("q < 0.001" if math.isfinite(q) and q < 0.001 else f"q = {q:.3f}" if math.isfinite(q) else "q n/a")
    rates = (f"; {x['treated']:.0%} of exposed vs {x['control']:.0%} of unexposed"
             if _ok(x["treated"]) and _ok(x["control"]) else "")
    return (f"{x['campaign']} ({step}: {format_points(x['size'])}, about {per100:.0f} {more} of every 100 exposed "
            f"accounts made the step{rates}; {certainty(q, alpha)}, {qtext})")


def _cohort(f: dict) -> str:
    """Who the campaign tests followed: not the period's accounts but every stage entry
    with a full window before the data end (notebook 04's landmark design)."""
    exp, out = _num(f.get("exposure_days")), _num(f.get("outcome_days"))
    if not (_ok(exp) and _ok(out)):
        return ""
    return (f"; every account that entered a stage early enough to be followed {exp:.0f} days for exposure "
            f"and {out:.0f} for the outcome, not only this period's")


def campaign_effects(progression: dict | None, max_each: int = 3) -> Sentence:
    """The campaigns whose effect on a stage transition is significant (notebook 04's
    ``significant_campaign_effects``: effect adjusted for account differences, q-value
    after the correction for many tests), positive and negative: size in percentage
    points and "of every 100 exposed accounts", certainty in words (:func:`certainty`).
    The largest ``max_each`` of each sign are named, the rest counted. Says n/a (and
    why) when notebook 04 saved no campaign test."""
    f = progression or {}
    alpha = _num(f.get("alpha"))
    alpha = alpha if math.isfinite(alpha) else 0.05
    effects = f.get("significant_campaign_effects")
    if not isinstance(effects, list):
        na = f.get("not_applicable") if isinstance(f.get("not_applicable"), dict) else {}
        why = next((str(v) for k, v in na.items() if "influence" in str(k) or "campaign" in str(k)), None)
        why = why or ("the progression notebook saved no findings" if not f else "no campaign was tested")
        return Sentence("campaigns", f"Campaign effects on progression: n/a ({why}).", {})
    xs = [x for x in (_effect(e) for e in effects if isinstance(e, dict)) if x is not None]
    tests = f.get("tests")
    base = (f"of {int(tests)} campaign-by-step tests" if _ok(tests) else "of the campaign tests")
    if not xs:
        return Sentence("campaigns", f"No campaign changed how accounts progress: none {base} is significant "
                                     f"(false-discovery rate {alpha:.0%}).", {})
    pos = sorted((x for x in xs if x["size"] > 0), key=lambda x: -x["size"])
    neg = sorted((x for x in xs if x["size"] < 0), key=lambda x: x["size"])
    parts, numbers = [], {}
    for group, lead in ((pos, "helped accounts progress"), (neg, "held accounts back")):
        if not group:
            continue
        named = group[:max_each]
        more = (f" and {len(group) - len(named)} more (all on the campaign-influence page)"
                if len(group) > len(named) else "")
        n = len(group)
        parts.append(f"{n} campaign effect{'s' if n != 1 else ''} {lead}: "
                     + "; ".join(_describe_effect(x, alpha) for x in named) + more)
        for x in named:
            numbers[f"{x['campaign']}|{x['transition']}"] = format_points(x["size"])
    if not neg:
        parts.append("No campaign held accounts back")
    if not pos:
        parts.insert(0, "No campaign helped accounts progress")
    text = (f"Campaigns against similar unexposed accounts ({len(xs)} {base} significant at a "
            f"{alpha:.0%} false-discovery rate{_cohort(f)}): " + ". ".join(p[:1].upper() + p[1:] for p in parts) + ".")
    return Sentence("campaigns", text, numbers)


def biggest_funnel_drop(funnel: pd.DataFrame | None) -> tuple[Sentence | None, dict | None]:
    """Where the funnel loses accounts, two ways (they often differ): the *weakest step*,
    which keeps the smallest share of the accounts of the step before it
    (``share_of_previous_step``), and, when another step, the step where the *most
    accounts* stop (a step that keeps 25% of 750 accounts loses more than one that keeps
    16% of 32). Steps that are n/a are skipped. Returns the sentence and
    ``{step, previous, kept, entered, lost, share, most_lost}`` (``most_lost``: the same
    keys for the other step, or None) for :func:`recommended_actions`."""
    if funnel is None or len(funnel) == 0 or not {"step", "accounts"} <= set(funnel.columns):
        return None, None
    f = funnel.reset_index(drop=True)
    f = f[pd.to_numeric(f["accounts"], errors="coerce").notna()].reset_index(drop=True)
    steps = []   # at most six funnel steps: a plain loop
    for i in range(1, len(f)):
        entered, kept = float(f.loc[i - 1, "accounts"]), float(f.loc[i, "accounts"])
        if entered > 0:
            steps.append({"step": str(f.loc[i, "step"]), "previous": str(f.loc[i - 1, "step"]), "kept": kept,
                          "entered": entered, "lost": entered - kept, "share": kept / entered})
    if not steps:
        return None, None
    weakest = min(steps, key=lambda x: x["share"])
    most = max(steps, key=lambda x: x["lost"])
    weakest = {**weakest, "most_lost": most if most["step"] != weakest["step"] and most["lost"] > 0 else None}
    pop = f.loc[0, "population"] if "population" in f.columns else "accounts"

    def words(x):
        that = FUNNEL_WORDS.get(x["previous"], (f"at step {human_label(x['previous']).lower()}",))[0]
        did = FUNNEL_WORDS.get(x["step"], ("", f"reached step {human_label(x['step']).lower()}"))[1]
        return that, did

    that, did = words(weakest)
    kept = "none" if weakest["kept"] == 0 else f"only {weakest['kept']:,.0f} ({weakest['share']:.1%})"
    text = (f"The funnel's weakest step: of the {weakest['entered']:,.0f} {pop} {that}, {kept} {did}; "
            f"{weakest['lost']:,.0f} stopped there.")
    numbers = {"kept": f"{weakest['kept']:,.0f}", "entered": f"{weakest['entered']:,.0f}"}
    if weakest["most_lost"] is not None:
        m = weakest["most_lost"]
        that2, did2 = words(m)
        text += (f" The most accounts stop at another step: of the {m['entered']:,.0f} {that2}, {m['lost']:,.0f} "
                 f"did not go on (only {m['kept']:,.0f}, {m['share']:.1%}, {did2}).")
        numbers["most_lost"] = f"{m['lost']:,.0f}"
    return Sentence("funnel", text, numbers), weakest


def data_quality_alerts(cleaning: dict | None, mapping: dict | None = None,
                        attribution: dict | None = None) -> tuple[Sentence, list[str], list[str]]:
    """The data-quality alerts of the run: critical sanity checks, a high reject rate,
    tables the export did not supply, a low contact-to-account match rate, attribution
    credit not conserved (blocking: the numbers they touch are wrong or missing), and
    the sanity warnings (worth a look). Returns the sentence, the blocking alerts and
    the warnings (short texts, for :func:`recommended_actions`); "no alert" with the
    reassuring numbers otherwise."""
    c, m, a = cleaning or {}, mapping or {}, attribution or {}
    alerts, fine, warned = [], [], []
    crit = _num(c.get("sanity_critical_count"))
    if _ok(crit) and crit > 0:
        alerts.append(f"{crit:.0f} critical data check{'s' if crit != 1 else ''} failed")
    warnings = [w for w in (c.get("sanity_warnings") or []) if isinstance(w, str)]
    for w in warnings:
        text = w.split(": ", 1)[1] if w.lower().startswith(("warning: ", "critical: ")) else w
        warned.append(text.split(": ", 1)[0].rstrip(". "))
    rr = _num(c.get("reject_rate"))
    if _ok(rr):
        reason = c.get("top_reject_reason")
        why = f", most often {human_label(reason).lower()}" if isinstance(reason, str) and reason else ""
        (alerts if rr > MAX_REJECT_RATE else fine).append(f"{rr:.1%} of rows rejected{why}")
    absent = [t for t in (c.get("tables_not_supplied") or []) if isinstance(t, str)]
    if absent:
        alerts.append(f"not in the export: {', '.join(absent)} (analyses needing them are n/a)")
    match = _num(m.get("match_rate"))
    if _ok(match):
        (alerts if match < MIN_MATCH_RATE else fine).append(f"{match:.1%} of contacts mapped to an account")
    if a.get("all_credits_conserved") is False:
        alerts.append("attribution credit does not add up to the conversions (page 03)")
    if not c and not m:
        return Sentence("data_quality", "Data quality: n/a (the cleaning notebook saved no findings).", {}), [], []
    parts = []
    if alerts:
        parts.append(f"{len(alerts)} alert{'s' if len(alerts) != 1 else ''} ({'; '.join(alerts)})")
    if warned:
        shown = "; ".join(warned[:2]) + (f"; {len(warned) - 2} more" if len(warned) > 2 else "")
        parts.append(f"{len(warned)} sanity warning{'s' if len(warned) != 1 else ''} ({shown})")
    text = "Data quality: " + (", ".join(parts) if parts else "no alert")
    text += (f"; {'; '.join(fine)}" if fine else "") + "."
    return Sentence("data_quality", text, {}), alerts, warned


def recommended_actions(kpis: pd.DataFrame | None, progression: dict | None, drop: dict | None,
                        alerts: list[str], mapping: dict | None = None, warnings: list[str] = ()) -> list[str]:
    """Actions that follow from this run's findings, most urgent first: fix the data when
    an alert fired; review each campaign that held accounts back; extend the campaign
    with the largest positive effect; work on the funnel step where the most accounts
    stop, then on its weakest step (with their counts; stalled accounts from notebook 02); look into a headline KPI that worsened by
    :data:`ALERT_POINTS` points (shares) or :data:`ALERT_RELATIVE` (other units; counts
    also by at least :data:`MIN_COUNT_CHANGE`)."""
    out = []
    if alerts:
        out.append(f"fix the data first ({alerts[0]}): see the cleaning page before relying on the affected numbers")
    effects = [x for x in (_effect(e) for e in ((progression or {}).get("significant_campaign_effects") or [])
                           if isinstance(e, dict)) if x is not None]
    for x in sorted((x for x in effects if x["size"] < 0), key=lambda x: x["size"]):
        out.append(f"review {x['campaign']} with its owner: exposed accounts made the step "
                   f"{transition_label(x['transition'])} less often than similar unexposed ones")
    pos = sorted((x for x in effects if x["size"] > 0), key=lambda x: -x["size"])
    if pos:
        x = pos[0]
        stage = x["transition"].split("->")[0] if "->" in x["transition"] else ""
        at = ((progression or {}).get("stage_counts_end") or {}).get(stage)
        where = (f" ({_num(at):,.0f} accounts are at the {human_label(stage).lower()} stage now)"
                 if stage and _ok(at) else "")
        out.append(f"extend {x['campaign']} to more accounts at the start of "
                   f"{transition_label(x['transition']).lower()}{where}")
    # the step where the most accounts stop first (the larger volume), then the weakest step
    for x in ([drop.get("most_lost"), drop] if drop is not None else []):
        if x is None or x["step"] not in FUNNEL_ACTIONS:
            continue
        text = FUNNEL_ACTIONS[x["step"]].format(lost=f"{x['lost']:,.0f}")
        stalled = _num((mapping or {}).get("stalled_accounts"))
        if x["step"] == "opportunity" and _ok(stalled):
            text = text.replace("stalled accounts:", f"{stalled:,.0f} stalled accounts:")
        out.append(text)
    rows = _rows(kpis)
    for k in HEADLINE_KPIS:
        r = rows.get(k)
        if r is None or not _ok(r.get("change")):
            continue
        ch, prev = _num(r["change"]), _num(r.get("previous"))
        worse = ch > 0 if k in LOWER_IS_BETTER else ch < 0
        big = (abs(ch) >= ALERT_POINTS if r.get("unit") == "ratio"
               else math.isfinite(prev) and prev != 0 and abs(ch / prev) >= ALERT_RELATIVE
               and (r.get("unit") not in COUNT_UNITS or abs(ch) >= MIN_COUNT_CHANGE))
        if worse and big:
            out.append(f"find out why {_kpi_words(k)} fell ({_change_text(r)}): the segment charts show where")
    if warnings:
        out.append(f"check the {len(warnings)} sanity warning{'s' if len(warnings) != 1 else ''} on the cleaning "
                   f"page (first: {warnings[0]})")
    return out


def executive_summary(kpis: pd.DataFrame | None, *, period: Period, funnel: pd.DataFrame | None = None,
                      findings: dict | None = None, max_actions: int = 3) -> ExecutiveSummary:
    """The summary of a report run (see the module docstring).

    Parameters
    ----------
    kpis : the KPI table's ``overall`` frame (kpi, unit, value, previous, change,
        population, population_size, note); None when there is none.
    period : the report period (its previous period is the comparison).
    funnel : :func:`abmkit.kpis.account_funnel` of the period, or None.
    findings : ``{"01": {...}, "02": {...}, "03": {...}, "04": {...}}``, the saved
        findings of notebooks 01-04 (a missing notebook: leave it out).
    max_actions : actions named in the last sentence (all are in ``.actions``).
    """
    f = findings or {}
    sentences = []
    s = key_numbers(kpis, period)
    if s is not None:
        sentences.append(s)
    sentences.append(campaign_effects(f.get("04")))
    drop_sentence, drop = biggest_funnel_drop(funnel)
    if drop_sentence is not None:
        sentences.append(drop_sentence)
    dq, alerts, warned = data_quality_alerts(f.get("01"), f.get("02"), f.get("03"))
    sentences.append(dq)
    actions = recommended_actions(kpis, f.get("04"), drop, alerts, f.get("02"), warned)
    if actions:
        named = actions[:max_actions]
        text = "; ".join(f"({i}) {a}" for i, a in enumerate(named, 1))
        more = (f" ({len(actions) - len(named)} more in the actions section of the KPI page)"
                if len(actions) > len(named) else "")
        sentences.append(Sentence("actions", f"Recommended: {text}.{more}"))
    return ExecutiveSummary(period.label, period.previous.label, sentences, actions)


# --------------------------------------------------------------------------- across periods
def attribution_trend(shares: dict[str, pd.DataFrame | None], periods: list[Period], *,
                      model: str | None = None, reasons: dict[str, str] | None = None
                      ) -> tuple[pd.DataFrame, str, list[str]]:
    """Attribution shares of one model over several periods: one row per channel, one
    column per period (oldest first, :func:`abmkit.period.format_period` names), values
    the share of credit (0-1; NaN where that period has no share for the channel).

    ``shares``: ``{period label: that period's attribution_shares table}`` (channel,
    model, share), None for a period without one. ``model``: the model to show (default
    ``linear`` when every period has it, else the first model of the newest period).
    Returns ``(table, model, notes)``: a note per period that has no table ("n/a: ...",
    with ``reasons[label]`` when given).

    >>> from abmkit.period import resolve_period
    >>> ps = [resolve_period(quarter=q) for q in ("2026Q3", "2026Q2")]
    >>> t = pd.DataFrame({"channel": ["email", "events"], "model": "linear", "share": [0.6, 0.4]})
    >>> table, model, notes = attribution_trend({"2026Q3": t, "2026Q2": None}, ps)
    >>> table.to_dict("list"), notes
    ({'channel': ['email', 'events'], 'Q3 2026': [0.6, 0.4]}, ['Q2 2026: n/a (no attribution table)'])
    """
    reasons = reasons or {}
    ordered = sorted(periods, key=lambda p: p.start)
    have = {p.label: shares.get(p.label) for p in ordered}
    have = {k: v for k, v in have.items() if v is not None and len(v) and {"channel", "model", "share"} <= set(v)}
    notes = [f"{format_period(p, dates=False)}: n/a ({reasons.get(p.label, 'no attribution table')})"
             for p in sorted(periods, key=lambda p: p.start, reverse=True) if p.label not in have]
    if not have:
        return pd.DataFrame({"channel": []}), model or "", notes
    if model is None:
        models = [set(v["model"].astype(str)) for v in have.values()]
        common = set.intersection(*models)
        newest = have[next(p.label for p in reversed(ordered) if p.label in have)]
        model = "linear" if "linear" in common else str(newest["model"].iloc[0])
    cols = {}
    for p in ordered:
        if p.label in have:
            v = have[p.label]
            v = v[v["model"].astype(str) == model]
            cols[format_period(p, dates=False)] = v.groupby("channel")["share"].sum()
    table = pd.DataFrame(cols)
    table = table.sort_values(table.columns[-1], ascending=False, na_position="last")
    table.index.name = "channel"
    return table.reset_index(), model, notes
