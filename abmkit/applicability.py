"""Applicability: what every analysis needs, declared in one place and checked before it runs.

Real exports are incomplete: opportunities without touches, contacts without personas,
campaigns without costs. An analysis run on data that cannot support it gives numbers
that look real and are not (a market reach of 0 when no touch was supplied, an upsell
rate of 0 when no opportunity has a type). So every analysis of the kit — each notebook
section, KPI and plot — declares what it needs (:class:`Needs`):

* **tables** that must hold at least one row (``touchpoints``);
* **columns** with at least one value (``contacts.persona``, ``campaigns.cost``,
  ``opportunities.opportunity_type``);
* **data** it needs in the period or the population (``closed_opportunities``: an
  opportunity closed in the period; :data:`DATA_NEEDS`).

:func:`check` tests them and returns an :class:`Applicability`: truthy when the analysis
applies; otherwise ``.reason`` says in one line why not (``needs touchpoints: none
supplied``, ``needs campaigns.cost: no campaign has a cost``, ``needs opportunities closed
in the period: none in 2026Q3``), ``.note`` is the same as ``"n/a — <reason>"`` (the note
of a KPI that is not applicable) and ``.notice()`` is the short box a notebook shows
instead of an empty table or chart: what cannot be shown, why, and what to supply.

The declarations: :data:`ANALYSIS_NEEDS` (notebook sections and views) and
:data:`KPI_NEEDS` (every KPI; :mod:`abmkit.kpis` uses them). docs/troubleshooting.md §8
lists them with every reason.

Example
-------
>>> import pandas as pd
>>> from abmkit.schema import Dataset
>>> ds = Dataset.from_frames(
...     accounts=pd.DataFrame({"account_id": ["a1"], "account_name": ["Acme"]}),
...     opportunities=pd.DataFrame({"opportunity_id": ["o1"], "account_id": ["a1"],
...                                 "created_at": ["2026-07-02"]}))
>>> check(ds, "market_reach").reason
'needs touchpoints: none supplied'
>>> bool(check(ds, "opportunity_creation"))
True
>>> check(ds, "upsell_rate").note
'n/a — needs opportunities.opportunity_type: no opportunity has a type'
>>> check(ds, "win_rate", "2026Q3").reason
'needs opportunities.closed_at: no opportunity has a close date'
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from .results import Result

__all__ = ["Needs", "Applicability", "Notice", "check", "needs_of", "ANALYSIS_NEEDS", "KPI_NEEDS",
           "DATA_NEEDS", "NA_PREFIX", "not_applicable_note", "is_not_applicable_note", "Sections",
           "table_supplied", "column_filled", "needs_table", "mark"]

#: how a value that is not applicable is noted: "n/a — <reason>"
NA_PREFIX = "n/a — "

#: one row of each table, for the reasons ("no contact has a persona")
_SINGULAR = {"accounts": "account", "contacts": "contact", "touchpoints": "touch", "campaigns": "campaign",
             "opportunities": "opportunity", "revenue": "revenue row"}
#: what a filled column gives a row, for the reasons; default: "a value in <column>"
_COLUMN_PHRASE = {
    ("contacts", "persona"): "a persona", ("contacts", "title"): "a title",
    ("contacts", "lead_status"): "a lead status", ("contacts", "mql_at"): "an MQL date",
    ("campaigns", "cost"): "a cost", ("opportunities", "opportunity_type"): "a type",
    ("opportunities", "amount"): "an amount", ("opportunities", "closed_at"): "a close date",
    ("opportunities", "is_won"): "a won flag", ("revenue", "active_users"): "active users",
    ("touchpoints", "engagement_seconds"): "engagement seconds", ("touchpoints", "campaign_id"): "a campaign",
    ("accounts", "is_target"): "a target flag", ("accounts", "industry"): "an industry",
}
#: what to supply, per missing table or column (the notice's last line)
_SUPPLY = {
    "accounts": "add the accounts export (account id and name) to the column map: every analysis counts accounts",
    "contacts": "add the contacts / leads export to the column map (`tables.contacts`)",
    "touchpoints": ("add a touch export (activities, campaign members, web and e-mail events) to the column map "
                    "(`tables.touchpoints`)"),
    "campaigns": "add the campaigns export to the column map (`tables.campaigns`)",
    "opportunities": "add the opportunities export to the column map (`tables.opportunities`)",
    "revenue": ("add a revenue export (account id, period start, recurring revenue) to the column map "
                "(`tables.revenue`)"),
    "contacts.persona": ("map a persona field (`tables.contacts.columns.persona`, labels in `persona_map`), "
                         "or derive personas from job titles before export"),
    "campaigns.cost": "map the campaign cost or budget field (`tables.campaigns.columns.cost`)",
    "opportunities.opportunity_type": ("map the opportunity type field (`tables.opportunities.columns."
                                       "opportunity_type`, labels in `opportunity_type_map`)"),
    "opportunities.amount": "map the opportunity amount field (`tables.opportunities.columns.amount`)",
    "opportunities.closed_at": "map the close date field (`tables.opportunities.columns.closed_at`)",
    "opportunities.is_won": "map the won flag (`tables.opportunities.columns.is_won`)",
    "revenue.active_users": "map an active-users field in the revenue export (`tables.revenue.columns.active_users`)",
    "touchpoints.engagement_seconds": ("map a duration field of the touches "
                                       "(`tables.touchpoints.columns.engagement_seconds`)"),
    "touchpoints.campaign_id": "map the campaign id of the touches (`tables.touchpoints.columns.campaign_id`)",
    "contacts.lead_status": "map the lead status field (`tables.contacts.columns.lead_status`)",
}
_PERIOD_HINT = "choose a period the data covers (`--quarter`, or `--start`/`--end`)"


# --------------------------------------------------------------------------- data needs
# A partitioned dataset (abmkit.scale) answers every check without loading its touches: the
# needs that read touches ask abmkit.scale.facts (one pass over the partitions: "exists"
# facts reduced with any), the others count on its account-sized tables.
def _partitioned(data) -> bool:
    from .engine import is_partitioned
    return is_partitioned(data)


def _kd(data):
    from .kpis import _data
    if _partitioned(data):
        from .scale import facts
        return _data(facts.account_view(data))
    return _data(data)


def _in(ts: pd.Series, p) -> pd.Series:
    return ((ts >= p.start) & (ts < p.end)).fillna(False).astype(bool)


def _touches_in_period(data, p) -> bool:
    if _partitioned(data):
        from .scale import facts
        return facts.touches_in_period(data, p)
    t = _kd(data).touches
    return bool(_in(t["occurred_at"], p).any())


def _created(data, p) -> bool:
    o = _kd(data).opportunities
    return bool(_in(o["created_at"], p).any())


def _closed(data, p) -> bool:
    from .kpis import _closed as closed
    return len(closed(_kd(data), p)) > 0


def _won(data, p) -> bool:
    from .kpis import _won as won
    return len(won(_kd(data), p)) > 0


def _population(data, p) -> bool:
    from .kpis import _addressable
    return len(_addressable(_kd(data))) > 0


def _mapped_contacts(data, p) -> bool:
    from .kpis import _addressable
    d = _kd(data)
    return bool(d.contacts["account_id"].isin(_addressable(d)["account_id"]).any())


def _mqa_at_end(data, p) -> bool:
    from .kpis import _addressable, _mqa_ids_at_end
    if _partitioned(data):
        from .scale import facts
        return facts.mqa_at_end(data, p)
    d = _kd(data)
    return bool(_mqa_ids_at_end(d, p).isin(_addressable(d)["account_id"]).any())


def _customers_start(data, p) -> bool:
    from .kpis import _customers_at
    return len(_customers_at(_kd(data), p.start)) > 0


def _customers_end(data, p) -> bool:
    from .kpis import _revenue_at
    r = _revenue_at(_kd(data), p.end)
    return bool((r["recurring_revenue"] > 0).any()) if len(r) else False


def _timed_account_touches(data, p) -> bool:
    if _partitioned(data):
        from .scale import facts
        return bool(facts.touch_facts(data).filled_on_account.get("engagement_seconds", False))
    t = _kd(data).touches
    return bool(t["engagement_seconds"].notna().any()) if "engagement_seconds" in t else False


def _customer_revenue(data, p) -> bool:
    r = _kd(data).revenue
    return bool((_in(r["period_start"], p) & (r["recurring_revenue"] > 0)).any())


def _acquired(data, p) -> bool:
    from .kpis import _acquired_accounts
    return len(_acquired_accounts(_kd(data), p)) > 0


def _cost_in_period(data, p) -> bool:
    from .kpis import _campaign_cost
    c = _campaign_cost(_kd(data), p)
    return bool(np.isfinite(c) and c > 0)


@dataclass(frozen=True)
class DataNeed:
    """Data an analysis needs in the period (``in_period``) or at all (then checked
    without a period too)."""
    description: str
    test: Callable
    in_period: bool = True


#: name -> what must exist in the period / population, and how to test it
DATA_NEEDS: dict[str, DataNeed] = {
    "touches_in_period": DataNeed("touches in the period", _touches_in_period),
    "opportunities_created": DataNeed("opportunities created in the period (conversions)", _created),
    "closed_opportunities": DataNeed("opportunities closed in the period", _closed),
    "won_opportunities": DataNeed("opportunities won in the period", _won),
    "population": DataNeed("accounts in the population", _population, in_period=False),
    "mapped_contacts": DataNeed("contacts mapped to the population's accounts", _mapped_contacts, in_period=False),
    "mqa_at_end": DataNeed("MQA accounts at the period end", _mqa_at_end),
    "timed_account_touches": DataNeed("touches with engagement seconds placed on an account",
                                      _timed_account_touches, in_period=False),
    "customers_at_start": DataNeed("customers at the period start", _customers_start),
    "customers_at_end": DataNeed("customers at the period end", _customers_end),
    "customer_revenue": DataNeed("recurring revenue in the period", _customer_revenue),
    "acquired_accounts": DataNeed("accounts acquired (first won deal) in the period", _acquired),
    "campaign_cost_in_period": DataNeed("campaign cost falling in the period", _cost_in_period),
}


# --------------------------------------------------------------------------- declarations
@dataclass(frozen=True)
class Needs:
    """What one analysis needs. ``tables``: non-empty tables; ``columns``:
    ``"table.column"`` with at least one value; ``data``: keys of :data:`DATA_NEEDS`
    (those ``in_period`` checked only when a period is given); ``what``: what the
    analysis shows."""
    what: str
    tables: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    data: tuple[str, ...] = ()


def _n(what, tables=(), columns=(), data=()) -> Needs:
    return Needs(what, tuple(tables), tuple(columns), tuple(data))


_ACC, _TP, _OPP = "accounts", "touchpoints", "opportunities"
#: every KPI: the tables, columns and data it needs (abmkit.kpis.KPI_NEEDS is this dict)
KPI_NEEDS: dict[str, Needs] = {
    "market_reach": _n("market reach", [_ACC, _TP], data=["population"]),
    "account_engagement": _n("account engagement", [_ACC, _TP]),
    "audience_exposure_time": _n("audience exposure time", [_ACC, _TP], ["touchpoints.engagement_seconds"],
                                 ["timed_account_touches"]),
    # the MQA rule counts engaged people (decision makers, or the score's breadth and personas)
    "mqa_accounts": _n("MQA accounts", [_ACC, _TP, "contacts"]),
    "new_mqas": _n("new MQAs", [_ACC, _TP, "contacts"]),
    "buying_group_coverage": _n("buying-group coverage", [_ACC, "contacts", _TP], data=["mapped_contacts"]),
    "opportunity_creation": _n("opportunities created", [_ACC, _OPP]),
    "influenced_pipeline": _n("influenced pipeline", [_ACC, _OPP, _TP], ["opportunities.amount"]),
    "pipeline_velocity": _n("pipeline velocity", [_ACC, _OPP], ["opportunities.closed_at"],
                            ["closed_opportunities"]),
    "deal_velocity": _n("deal velocity", [_ACC, _OPP, _TP], ["opportunities.closed_at", "opportunities.is_won"],
                        ["won_opportunities"]),
    "win_rate": _n("win rate (won / closed opportunities)", [_ACC, _OPP],
                   ["opportunities.closed_at", "opportunities.is_won"], ["closed_opportunities"]),
    "mqa_to_win_rate": _n("MQA-to-win rate", [_ACC, _TP, "contacts", _OPP],
                          ["opportunities.closed_at", "opportunities.is_won"]),
    "average_deal_size": _n("average deal size", [_ACC, _OPP],
                            ["opportunities.amount", "opportunities.closed_at", "opportunities.is_won"],
                            ["won_opportunities"]),
    "cost_per_acquired_account": _n("cost per acquired account", [_ACC, _OPP, "campaigns"],
                                    ["campaigns.cost", "opportunities.closed_at", "opportunities.is_won"],
                                    ["acquired_accounts"]),
    "roi": _n("ROI", [_ACC, _OPP, _TP, "campaigns"], ["campaigns.cost", "opportunities.amount"],
              ["campaign_cost_in_period"]),
    "retention_rate": _n("retention", [_ACC, "revenue"], data=["customers_at_start"]),
    "net_revenue_retention": _n("net revenue retention (trailing 12 months)", [_ACC, "revenue"]),
    "net_revenue_retention_qoq": _n("net revenue retention (quarter on quarter)", [_ACC, "revenue"],
                                    data=["customers_at_start"]),
    "product_adoption": _n("product adoption", [_ACC, "revenue"], ["revenue.active_users"], ["customers_at_end"]),
    "upsell_rate": _n("upsell rate", [_ACC, _OPP], ["opportunities.opportunity_type", "opportunities.is_won"],
                      ["customers_at_start"]),
    "cross_sell_rate": _n("cross-sell rate", [_ACC, _OPP], ["opportunities.opportunity_type", "opportunities.is_won"],
                          ["customers_at_start"]),
    "customer_lifetime_value": _n("customer lifetime value", [_ACC, "revenue"],
                                  data=["customers_at_start", "customer_revenue"]),
}

#: notebook sections and views (not KPIs): what each needs
ANALYSIS_NEEDS: dict[str, Needs] = {
    # notebook 01
    "touches_per_month": _n("touches per month by channel", [_TP]),
    # notebook 02
    "mapping": _n("the lead-to-account mapping", [_ACC, "contacts"]),
    "engagement": _n("engagement scores and the leaderboard", [_ACC, _TP]),
    "mqa": _n("marketing-qualified accounts (MQAs)", [_ACC, _TP, "contacts"]),
    "whom_to_call": _n("the contacts to call at new MQAs", [_ACC, "contacts", _TP]),
    # notebook 03
    "attribution": _n("attribution of the period's pipeline", [_ACC, _TP, _OPP], data=["opportunities_created"]),
    "attribution_closed_won": _n("attribution of the period's revenue", [_ACC, _TP, _OPP],
                                 ["opportunities.closed_at", "opportunities.is_won"], ["won_opportunities"]),
    "attribution_campaigns": _n("credit per campaign", [_ACC, _TP, _OPP, "campaigns"], ["touchpoints.campaign_id"],
                                ["opportunities_created"]),
    # notebook 04: the stages before sales_ready are entered through touches, engaged and
    # qualified through several engaged contacts (without contacts they would read 0)
    "progression": _n("account stages, progression rates and velocity", [_ACC, _TP, "contacts"]),
    "contact_funnel": _n("the contact (lead) funnel", ["contacts"], ["contacts.lead_status"]),
    "transition_baseline": _n("what it takes to move an account (transition baseline)", [_ACC, _TP, "contacts"]),
    "campaign_influence": _n("campaign influence on progression", [_ACC, _TP, "contacts", "campaigns"],
                             ["touchpoints.campaign_id"]),
    "channel_influence": _n("channel influence on progression", [_ACC, _TP, "contacts"]),
    # notebook 05 and abmkit.kpis views
    "funnel": _n("the account funnel", [_ACC]),
    "funnel_touch_steps": _n("the funnel steps reached and with an engagement touch", [_ACC, _TP]),
    "funnel_mqa_step": _n("the funnel step MQA", [_ACC, _TP, "contacts"]),
    "funnel_opportunity_steps": _n("the funnel steps opportunity and won", [_ACC, _OPP]),
    "pipeline_by_period": _n("pipeline by period", [_ACC, _OPP]),
    "influenced_pipeline_by_period": _n("influenced pipeline by period", [_ACC, _OPP, _TP]),
    "sales_kpis": _n("the sales KPIs", [_ACC, _OPP]),
}


def needs_of(analysis: str) -> Needs:
    """The declaration of ``analysis`` (a KPI or a key of :data:`ANALYSIS_NEEDS`)."""
    if analysis in KPI_NEEDS:
        return KPI_NEEDS[analysis]
    if analysis in ANALYSIS_NEEDS:
        return ANALYSIS_NEEDS[analysis]
    raise ValueError(f"unknown analysis {analysis!r}; declared: {sorted(KPI_NEEDS) + sorted(ANALYSIS_NEEDS)}")


# --------------------------------------------------------------------------- the check
def _tables_of(data):
    """The whole dataset behind ``data`` (a segment's KPI view checks the whole data's
    tables: a segment without touches has a true zero, the data without touches none)."""
    from .kpis import KPIData
    from .prepared import ResolvedDataset

    if isinstance(data, KPIData):
        data = data.resolved
    if isinstance(data, ResolvedDataset):
        return data.tables
    return data


def table_supplied(data, table: str) -> bool:
    """Whether ``table`` holds at least one row in ``data``."""
    if _partitioned(data):
        from .scale import facts
        return facts.table_rows(data, table) > 0
    df = getattr(_tables_of(data), table)
    return len(df) > 0


def column_filled(data, table: str, column: str) -> bool:
    """Whether ``table.column`` holds at least one value in ``data``."""
    if _partitioned(data):
        from .scale import facts
        return facts.column_filled(data, table, column)
    df = getattr(_tables_of(data), table)
    return column in df.columns and bool(df[column].notna().any())


def needs_table(table: str) -> str:
    """The reason of a missing table: ``needs <table>: none supplied``."""
    return f"needs {table}: none supplied"


def not_applicable_note(reason: str) -> str:
    """``"n/a — <reason>"``: the note of a value that is not applicable."""
    return reason if reason.startswith(NA_PREFIX) else NA_PREFIX + reason


def is_not_applicable_note(note) -> bool:
    return isinstance(note, str) and note.startswith("n/a")


def _period(period):
    if period is None:
        return None
    from .period import Period, resolve_period
    return period if isinstance(period, Period) else resolve_period(quarter=str(period))


def check(data, analysis: str, period=None) -> "Applicability":
    """Whether ``analysis`` applies to ``data`` (in ``period``, when given).

    Parameters
    ----------
    data : ResolvedDataset, Dataset, KPI view (``abmkit.kpis.KPIData``) or a partitioned dataset
        (``abmkit.scale``: its touch facts come from one pass over the partitions)
    analysis : a KPI name (:data:`KPI_NEEDS`) or a key of :data:`ANALYSIS_NEEDS`
    period : Period or quarter label, optional
        When given, the data needs of the period (:data:`DATA_NEEDS`) are checked in it
        too; the others are always checked.

    Returns
    -------
    Applicability
        Truthy when every need is met; else ``.reason`` names the first unmet need.
    """
    needs = needs_of(analysis)
    p = _period(period)
    rows = []
    for t in needs.tables:
        ok = table_supplied(data, t)
        rows.append((t, ok, "" if ok else needs_table(t)))
    for c in needs.columns:
        t, col = c.split(".", 1)
        if not table_supplied(data, t):
            if t not in needs.tables:
                rows.append((t, False, needs_table(t)))
            continue
        ok = column_filled(data, t, col)
        phrase = _COLUMN_PHRASE.get((t, col), f"a value in {col}")
        rows.append((c, ok, "" if ok else f"needs {c}: no {_SINGULAR[t]} has {phrase}"))
    structural_ok = all(ok for _, ok, _ in rows)
    if structural_ok:
        for name in needs.data:
            need = DATA_NEEDS[name]
            if p is None and need.in_period:
                continue
            ok = bool(need.test(data, p))
            where = f"none in {p.label}" if need.in_period else "none"
            rows.append((name, ok, "" if ok else f"needs {need.description}: {where}"))
    table = pd.DataFrame(rows, columns=["need", "met", "reason"])
    unmet = table[~table["met"]]
    reason = str(unmet["reason"].iloc[0]) if len(unmet) else ""
    missing = tuple(unmet["need"])
    hint = "; ".join(dict.fromkeys(_SUPPLY.get(m, _PERIOD_HINT if m in DATA_NEEDS else "") for m in missing))
    return Applicability(analysis=analysis, what=needs.what, reason=reason, missing=missing,
                         hint=hint.strip("; "), period=None if p is None else p.label, checks=table)


# --------------------------------------------------------------------------- the result
@dataclass(frozen=True)
class Notice:
    """The short box a notebook shows instead of an analysis that does not apply:
    what cannot be shown, why, and what to supply. Renders as Markdown and HTML."""
    what: str
    reason: str
    hint: str = ""
    short: bool = False

    def _lines(self) -> list[str]:
        lines = [f"Not shown: {self.what}.", f"n/a — {self.reason}."]
        if self.hint and not self.short:
            lines.append(f"To show it: {self.hint}.")
        return lines

    def __str__(self) -> str:
        return "\n".join(self._lines())

    def __repr__(self) -> str:
        return str(self)

    def _repr_markdown_(self) -> str:
        first, *rest = self._lines()
        return "\n".join([f"> **{first}**"] + [f"> {line}" for line in rest])

    def _repr_html_(self) -> str:
        def e(text: str) -> str:  # escaped, `code` spans as <code>
            return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))
        first, *rest = self._lines()
        return ("<blockquote><p><strong>" + e(first) + "</strong><br>"
                + "<br>".join(e(x) for x in rest) + "</p></blockquote>")


@dataclass(frozen=True)
class Applicability(Result):
    """Outcome of :func:`check`: truthy when the analysis applies.

    Attributes
    ----------
    analysis : the analysis checked
    what : what it shows ("market reach", "attribution of the period's pipeline")
    reason : "" when it applies, else one line: "needs touchpoints: none supplied"
    missing : the unmet needs (tables, ``table.column``, data-need names)
    hint : what to supply
    period : label of the period checked (None: no period)
    checks : one row per need: ``need, met, reason``
    """
    analysis: str
    what: str
    reason: str = ""
    missing: tuple = ()
    hint: str = ""
    period: str | None = None
    checks: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["need", "met", "reason"]),
                                 repr=False, compare=False)

    def __bool__(self) -> bool:
        return not self.reason

    @property
    def applicable(self) -> bool:
        return not self.reason

    @property
    def note(self) -> str:
        """"" when applicable, else ``"n/a — <reason>"``."""
        return "" if not self.reason else not_applicable_note(self.reason)

    def notice(self, short: bool = False) -> Notice:
        """The box to display instead of the analysis (``short``: without the hint)."""
        return Notice(self.what, self.reason or "applies", self.hint, short)

    _summary_title = "Applicability"

    def _summary_metadata(self) -> dict:
        return {"analysis": self.analysis, "applies": self.applicable,
                **({"reason": self.reason} if self.reason else {}),
                **({"period": self.period} if self.period else {})}

    @property
    def summary(self) -> pd.DataFrame:
        """One row per need: ``need, met, reason``."""
        return self.checks.copy()


def mark(result, app: "Applicability"):
    """Set ``result.not_applicable`` to ``app.reason`` ("" when it applies) and return
    ``result`` (also on frozen result dataclasses): the result convention's n/a marker
    (:mod:`abmkit.results`)."""
    object.__setattr__(result, "not_applicable", app.reason)
    return result


class Sections:
    """The applicability of a notebook's sections, recorded for its findings.

    >>> import pandas as pd
    >>> from abmkit.schema import Dataset
    >>> s = Sections(Dataset.from_frames(accounts=pd.DataFrame({"account_id": ["a1"], "account_name": ["A"]})))
    >>> bool(s.check("engagement")), s.not_applicable
    (False, {'engagement': 'needs touchpoints: none supplied'})
    """

    def __init__(self, data, period=None):
        self.data = data
        self.period = period
        self.not_applicable: dict[str, str] = {}

    def check(self, section: str, analysis: str | None = None, period="default") -> Applicability:
        """:func:`check` of ``analysis`` (default: ``section``), recording ``section``'s
        reason when it does not apply."""
        app = check(self.data, analysis or section, self.period if period == "default" else period)
        if not app:
            self.not_applicable.setdefault(section, app.reason)
        return app

    __call__ = check
