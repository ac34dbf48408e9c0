"""Numbers and names as a stakeholder reads them: one place for every label and unit.

Tables, charts and summaries show data values (``financial_services``, ``hubspot_u_shaped``,
``0.412``, ``5852327.39``) the way a person reads them ("Financial services", "U-shaped
(HubSpot: first / MQA)", "41.2%", "5.85M"). Missing values are never printed as ``NaN``:
they become "n/a", with the reason when one is known. The functions are pure and need
no plotting library; :mod:`abmkit.plots.style` uses the same ones for axes and legends.

Example
-------
>>> human_label("financial_services"), human_label("hubspot_u_shaped")
('Financial services', 'U-shaped (HubSpot: first / MQA)')
>>> format_value(5852327.39, "currency"), format_value(0.4123, "ratio"), format_value(float("nan"), "ratio")
('5.85M', '41.2%', 'n/a')
"""
from __future__ import annotations

import math
import re

import pandas as pd

__all__ = ["human_label", "model_label", "tier_label", "transition_label", "format_value", "format_count",
           "format_amount", "format_percent", "format_points", "format_days", "na", "display_table",
           "MODEL_LABELS", "UNIT_NAMES", "KPI_LABELS", "kpi_label", "kpi_display_table", "influence_display_table",
           "segment_display_table"]

#: attribution models as people call them (the rule, not the code name)
MODEL_LABELS = {
    "first_touch": "First touch", "last_touch": "Last touch", "linear": "Linear (equal split)",
    "time_decay": "Time decay", "u_shaped": "U-shaped (first / last)", "w_shaped": "W-shaped (first / MQA / opp.)",
    "full_path": "Full path (4 milestones)", "j_shaped": "J-shaped (last-heavy)",
    "inverse_j": "Inverse J (first-heavy)", "custom": "Custom weights",
    "hubspot_u_shaped": "U-shaped (HubSpot: first / MQA)", "marketo_u_shaped": "U-shaped (Marketo: first / MQA)",
    "markov": "Markov (removal-effect shares, channel level)",
    "markov_per_conversion": "Markov split per conversion (removal effects)",
    "shapley": "Shapley (conversion-rate game, data-driven)", "shapley_split": "Shapley split (equal per channel, rule)",
}
#: KPI names as tiles, tables and summaries show them
KPI_LABELS = {
    "market_reach": "Market reach", "account_engagement": "Account engagement",
    "audience_exposure_time": "Exposure time", "mqa_accounts": "MQA accounts (at period end)",
    "new_mqas": "New MQAs (in period)",
    "buying_group_coverage": "Buying-group coverage", "opportunity_creation": "Opportunities created",
    "influenced_pipeline": "Influenced pipeline (touched before)", "pipeline_velocity": "Pipeline velocity",
    "deal_velocity": "Deal velocity", "win_rate": "Win rate (won / closed opps)",
    "mqa_to_win_rate": "MQA-to-win rate (cohort)", "average_deal_size": "Average deal size",
    "cost_per_acquired_account": "Cost / acquired account", "roi": "ROI (touched before)",
    "incremental_pipeline": "Incremental pipeline (caused, est.)", "incremental_roi": "Incremental ROI (caused, est.)",
    # the same-accounts pair beside the incremental estimate: own labels, so no tile shares a name with
    # a KPI tile while counting other accounts (the cohort ROI is expected: pipeline × win rate)
    "cohort_influenced_pipeline": "Influenced pipeline, same accounts (touched before)",
    "cohort_roi": "Expected ROI, same accounts (touched before)",
    "retention_rate": "Retention", "net_revenue_retention": "NRR (trailing 12 months)",
    "net_revenue_retention_qoq": "NRR (quarter on quarter)",
    "product_adoption": "Product adoption", "upsell_rate": "Upsell rate", "cross_sell_rate": "Cross-sell rate",
    "customer_lifetime_value": "Customer lifetime value",
}
#: short forms for axes and legends where the full name does not fit
MODEL_SHORT = {
    "first_touch": "First touch", "last_touch": "Last touch", "linear": "Linear", "time_decay": "Time decay",
    "u_shaped": "U-shaped", "w_shaped": "W-shaped", "full_path": "Full path", "j_shaped": "J-shaped",
    "inverse_j": "Inverse J", "custom": "Custom", "hubspot_u_shaped": "HubSpot U", "marketo_u_shaped": "Marketo U",
    "markov": "Markov", "markov_per_conversion": "Markov per conv.", "shapley": "Shapley (rates)",
    "shapley_split": "Shapley split",
}
#: words written in capitals (acronyms) or a fixed spelling when a snake_case name is humanised
_WORDS = {"mqa": "MQA", "mql": "MQL", "sql": "SQL", "icp": "ICP", "crm": "CRM", "roi": "ROI", "seo": "SEO",
          "abm": "ABM", "b2b": "B2B", "id": "id", "km": "KM", "att": "ATT", "hubspot": "HubSpot",
          "marketo": "Marketo", "it": "IT", "hr": "HR", "emea": "EMEA", "apac": "APAC", "latam": "LATAM",
          "na": "NA", "us": "US", "uk": "UK", "eu": "EU", "saas": "SaaS", "q": "q"}
#: fixed labels for common data values and column names
_FIXED = {
    "opportunity_created": "Opportunity created", "closed_won": "Closed won", "sales_ready": "Sales ready",
    "adj_diff": "Adjusted effect", "diff": "Naive difference", "q_value": "q-value", "p_value": "p-value",
    "n_treated": "Exposed accounts", "n_control": "Unexposed accounts", "n_at_risk": "Accounts at risk",
    "rate_treated": "Rate, exposed", "rate_control": "Rate, unexposed", "campaign_name": "Campaign",
    "account_name": "Account", "flag_reason": "Note", "hazard_ratio": "Hazard ratio",
    "acceleration_days": "Days faster (−) / slower (+)", "size_band": "Company size", "tier": "Tier",
    "km_median_days": "Median days (Kaplan–Meier)", "content_syndication": "Content syndication",
    "direct_mail": "Direct mail", "sales_outreach": "Sales outreach", "review_site": "Review site",
    "fuzzy_name": "Fuzzy name match", "unmatched": "Unmatched",
}
#: a lower-case identifier (``financial_services``, ``email``): the only text turned into words
_SNAKE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
#: how a unit is named in a column header
UNIT_NAMES = {"ratio": "%", "currency": "amount", "days": "days", "hours": "hours", "accounts": "accounts",
              "opportunities": "opportunities", "points": "pts", "count": ""}


def _missing(value) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    try:
        return isinstance(value, float) and not math.isfinite(value) or bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def na(reason: str | None = None) -> str:
    """The text for a value the data cannot give: "n/a" or "n/a (reason)".

    >>> na(), na("no touches in the period")
    ('n/a', 'n/a (no touches in the period)')
    """
    return f"n/a ({reason})" if reason else "n/a"


def model_label(model: str, short: bool = False) -> str:
    """An attribution model's human name (``short``: the form for a legend or axis).

    >>> model_label("time_decay"), model_label("w_shaped", short=True)
    ('Time decay', 'W-shaped')
    """
    table = MODEL_SHORT if short else MODEL_LABELS
    return table.get(str(model), human_label(model))


def tier_label(tier) -> str:
    """ABM programme tier as words: 1 → "Tier 1"; missing → "No tier".

    >>> tier_label(1), tier_label("2"), tier_label(2.0), tier_label(None)
    ('Tier 1', 'Tier 2', 'Tier 2', 'No tier')
    """
    if _missing(tier):
        return "No tier"
    if isinstance(tier, float) and tier.is_integer():
        tier = int(tier)
    s = str(tier)
    return s if s.lower().startswith("tier") else f"Tier {s}"


def transition_label(transition: str) -> str:
    """A stage transition as words: ``engaged->qualified`` → "Engaged → qualified".

    >>> transition_label("qualified->sales_ready"), transition_label("aware→engaged")
    ('Qualified → sales ready', 'Aware → engaged')
    """
    parts = re.split(r"\s*(?:->|→)\s*", str(transition))
    if len(parts) != 2:
        return human_label(transition)
    a, b = (human_label(p) for p in parts)
    return f"{a} → {b[:1].lower() + b[1:] if b[:3] != b[:3].upper() else b}"


def human_label(name) -> str:
    """A data value or column name as words: snake_case → "Sentence case", known
    acronyms in capitals, attribution models by their human name. Text that is
    already written for people (spaces, capitals) is returned unchanged.

    >>> human_label("financial_services"), human_label("mqa_accounts"), human_label("Acme Corp")
    ('Financial services', 'MQA accounts', 'Acme Corp')
    >>> human_label("paid_search"), human_label("w_shaped"), human_label("_under_"), human_label("1-49")
    ('Paid search', 'W-shaped (first / MQA / opp.)', '_under_', '1-49')
    """
    if _missing(name):
        return "n/a"
    s = str(name)
    if s in _FIXED:
        return _FIXED[s]
    if s in MODEL_LABELS:
        return MODEL_LABELS[s]
    if "->" in s or "→" in s:
        return transition_label(s)
    if not _SNAKE.fullmatch(s):
        return s  # already a name ("Acme Corp"), or text that is not an identifier: shown as it is
    words = s.split("_")
    out = [_WORDS.get(w.lower(), w.lower()) for w in words]
    first = out[0]
    out[0] = first if first != first.lower() else first[:1].upper() + first[1:]
    return " ".join(out)


def format_count(value) -> str:
    """A whole count with thousands separators ("1,234"); missing → "n/a".

    >>> format_count(1234.0), format_count(float("nan"))
    ('1,234', 'n/a')
    """
    return "n/a" if _missing(value) else f"{float(value):,.0f}"


def format_amount(value, unit: str = "") -> str:
    """Money or another big quantity in thousands / millions / billions ("5.85M",
    "225k", "950"), with ``unit`` after it when given; missing → "n/a".

    >>> format_amount(5852327.39), format_amount(225_000), format_amount(-1_250), format_amount(12, "d")
    ('5.85M', '225k', '-1.25k', '12 d')
    """
    if _missing(value):
        return "n/a"
    v = float(value)
    a = abs(v)
    if a >= 1e9:
        s = f"{v / 1e9:.2f}B"
    elif a >= 1e6:
        s = f"{v / 1e6:.2f}M"
    elif a >= 1e3:
        s = f"{v / 1e3:.3g}k" if a < 1e5 else f"{v / 1e3:.0f}k"
    else:
        s = f"{v:,.0f}"
    return f"{s} {unit}" if unit else s


def format_percent(value, digits: int = 1) -> str:
    """A share (0.412) as a percentage ("41.2%"); missing → "n/a".

    >>> format_percent(0.4123), format_percent(0.5, 0)
    ('41.2%', '50%')
    """
    return "n/a" if _missing(value) else f"{float(value):.{digits}%}"


def format_points(value, digits: int = 1) -> str:
    """A difference of two shares in percentage points, signed ("+12.3 pts").

    >>> format_points(0.123), format_points(-0.226)
    ('+12.3 pts', '-22.6 pts')
    """
    return "n/a" if _missing(value) else f"{float(value) * 100:+.{digits}f} pts"


def format_days(value) -> str:
    """A duration in days ("12.5 days"); missing → "n/a".

    >>> format_days(12.46), format_days(1)
    ('12.5 days', '1.0 days')
    """
    return "n/a" if _missing(value) else f"{float(value):,.1f} days"


def format_value(value, unit: str = "count", reason: str | None = None) -> str:
    """One value by its unit: ``ratio`` → %, ``points`` → ±pts, ``currency`` → k/M,
    ``days``, ``hours``, ``pvalue`` (3 digits, "<0.001"), ``ratio_x`` (a ratio such as
    a hazard ratio, 2 decimals), ``number`` (one decimal when there is one: 44.5, 32),
    anything else a count. A missing value is "n/a", with
    ``reason`` when given.

    >>> format_value(0.0004, "pvalue"), format_value(1.234, "ratio_x"), format_value(None, "days", "no move yet")
    ('<0.001', '1.23', 'n/a (no move yet)')
    """
    if _missing(value):
        return na(reason)
    if unit == "ratio":
        return format_percent(value)
    if unit == "points":
        return format_points(value)
    if unit == "currency":
        return format_amount(value)
    if unit == "days":
        return format_days(value)
    if unit == "hours":
        return f"{float(value):,.0f} h"
    if unit == "pvalue":
        return "<0.001" if float(value) < 0.001 else f"{float(value):.3f}"
    if unit == "ratio_x":
        return f"{float(value):.2f}"
    if unit == "text":
        return str(value)
    if unit == "number":  # a median of counts may be a half: 44.5, 32
        return f"{float(value):,.1f}".removesuffix(".0")
    return format_count(value)


def display_table(df: pd.DataFrame, units: dict[str, str] | None = None, *, labels: dict[str, str] | None = None,
                  humanize_values: tuple[str, ...] = (), reasons: str | None = None,
                  max_rows: int | None = None) -> pd.DataFrame:
    """A copy of ``df`` for people: every column in ``units`` formatted by its unit
    (:func:`format_value`), the values of ``humanize_values`` columns turned into
    words (:func:`human_label`), and column headers in words (``labels`` first, then
    :func:`human_label`). A missing value reads "n/a", with the row's ``reasons``
    column as its reason when given (that column is then left out). Only the columns
    named in ``units``, ``humanize_values`` or ``labels`` are kept, in ``df``'s order,
    when any is named; otherwise all.

    >>> t = pd.DataFrame({"industry": ["financial_services"], "share": [0.25], "pipeline": [float("nan")],
    ...                   "why": ["no opportunity"]})
    >>> display_table(t, {"share": "ratio", "pipeline": "currency"}, humanize_values=("industry",),
    ...               reasons="why").to_dict("records")
    [{'Industry': 'Financial services', 'Share': '25.0%', 'Pipeline': 'n/a (no opportunity)'}]
    """
    units = dict(units or {})
    labels = dict(labels or {})
    named = [c for c in df.columns if c in units or c in humanize_values or c in labels]
    cols = [c for c in (named or list(df.columns)) if c != reasons]
    out = df.loc[:, cols].copy()
    if max_rows is not None:
        out = out.head(max_rows)
    why = df.loc[out.index, reasons] if reasons and reasons in df else None
    for c in cols:
        if c in units:
            r = why if why is not None else pd.Series([None] * len(out), index=out.index)
            out[c] = [format_value(v, units[c], rr if isinstance(rr, str) and rr else None)
                      for v, rr in zip(out[c].tolist(), r.tolist())]
        elif c in humanize_values:
            out[c] = [tier_label(v) if c == "tier" else model_label(v) if c == "model" else human_label(v)
                      for v in out[c].tolist()]
        else:
            out[c] = [("n/a" if _missing(v) else v) for v in out[c].tolist()]
    out.columns = [labels.get(c, human_label(c)) for c in cols]
    out = out.reset_index(drop=True)
    out.index = [""] * len(out)  # row numbers mean nothing to a reader (and take a column)
    return out


def kpi_label(kpi: str) -> str:
    """A KPI's name as people read it (``new_mqas`` → "New MQAs (in period)").

    >>> kpi_label("new_mqas"), kpi_label("some_new_kpi")
    ('New MQAs (in period)', 'Some new kpi')
    """
    return KPI_LABELS.get(str(kpi), human_label(kpi))


def _na_reason(note) -> str | None:
    if not isinstance(note, str) or not note.startswith("n/a"):
        return None
    return note.split("—", 1)[1].strip() if "—" in note else (note[3:].strip(" -:()") or None)


def _change(change, unit: str) -> str:
    if _missing(change):
        return "n/a"
    if unit == "ratio":
        return format_points(change)
    if unit == "currency":
        return ("+" if change > 0 else "") + format_amount(change)
    if unit in ("days", "hours"):
        return f"{float(change):+,.1f} {'days' if unit == 'days' else 'h'}"
    return f"{float(change):+,.0f}"


def kpi_display_table(overall: pd.DataFrame) -> pd.DataFrame:
    """The KPI table (``kpi_table(...).overall``) for people: one row per KPI with its
    group, name, value and previous value in their unit, the change (percentage
    points for shares), and what it is counted on ("772 of 831 target accounts"). A KPI
    the data cannot support reads "n/a (<reason>)", never NaN.

    >>> t = pd.DataFrame({"group": ["pipeline and conversion", "reach and engagement"],
    ...     "kpi": ["influenced_pipeline", "market_reach"], "unit": ["currency", "ratio"],
    ...     "value": [5852327.39, 0.929], "previous": [5051781.17, 0.929], "change": [800546.22, 0.0],
    ...     "numerator": [float("nan"), 772], "denominator": [float("nan"), 831],
    ...     "population": ["all accounts", "target accounts"], "population_size": [2000, 831], "note": ["", ""]})
    >>> kpi_display_table(t).iloc[0].tolist()[2:]
    ['5.85M', '5.05M', '+801k', 'all accounts (2,000)']
    >>> kpi_display_table(t).iloc[1].tolist()
    ['Reach and engagement', 'Market reach', '92.9%', '92.9%', '+0.0 pts', '772 of 831 target accounts']
    """
    rows = []
    for r in overall.to_dict("records"):
        unit = r.get("unit", "count")
        reason = _na_reason(r.get("note"))
        num, den = r.get("numerator"), r.get("denominator")
        pop, size = r.get("population") or "", r.get("population_size")
        if unit == "ratio" and not _missing(num) and not _missing(den):
            counted = f"{float(num):,.0f} of {float(den):,.0f} {pop}".strip()
        elif pop:
            counted = f"{pop} ({float(size):,.0f})" if not _missing(size) else str(pop)
        else:
            counted = ""
        rows.append({"Group": str(r.get("group", "")).capitalize(), "KPI": kpi_label(r.get("kpi")),
                     "This period": format_value(r.get("value"), unit, reason),
                     "Previous": format_value(r.get("previous"), unit),
                     "Change": _change(r.get("change"), unit), "Counted on": counted})
    out = pd.DataFrame(rows)
    out.index = [""] * len(out)
    return out


def influence_display_table(table: pd.DataFrame, max_rows: int | None = 20) -> pd.DataFrame:
    """Campaign influence rows (``campaign_influence(...).table``) for people, in seven
    columns that fit a page: campaign (by name), the move, exposed accounts, how often
    exposed and similar unexposed accounts moved on, the adjusted effect with its 95%
    interval in percentage points, and whether it is clear after the multiple-testing
    correction (q-value), with the reason when the row could not be assessed.

    >>> t = pd.DataFrame({"campaign_name": ["LinkedIn ABM"], "unit": ["CMP001"], "transition": ["aware->engaged"],
    ...     "n_treated": [587], "rate_treated": [0.431], "rate_control": [0.220], "adj_diff": [0.226],
    ...     "adj_diff_low": [0.181], "adj_diff_high": [0.271], "q_value": [3.9e-21], "flag_reason": [""]})
    >>> influence_display_table(t).iloc[0].tolist()
    ['LinkedIn ABM', 'Aware → engaged', '587', '43.1% vs 22.0%', '+22.6 pts (+18.1 to +27.1)', 'yes (q < 0.001)', '']
    """
    t = table if max_rows is None else table.head(max_rows)
    name = (t["campaign_name"].where(t["campaign_name"].notna(), t.get("unit")) if "campaign_name" in t
            else t.get("channel", t.get("unit")).map(human_label))
    rows = []
    for i, r in enumerate(t.to_dict("records")):
        reason = r.get("flag_reason") if isinstance(r.get("flag_reason"), str) and r.get("flag_reason") else None
        est = r.get("adj_diff")
        effect = (f"{format_points(est)} ({format_points(r.get('adj_diff_low'))[:-4]} to "
                  f"{format_points(r.get('adj_diff_high'))[:-4]})" if not _missing(est) else na(reason))
        q = r.get("q_value")
        clear = ("n/a" if _missing(q) else
                 f"{'yes' if q < r.get('alpha', 0.05) else 'no'} (q {format_value(q, 'pvalue').replace('<', '< ')})")
        rows.append({("Campaign" if "campaign_name" in t else "Channel"): str(name.iloc[i]),
                     "Move": transition_label(r.get("transition", "")),
                     "Exposed accounts": format_count(r.get("n_treated")),
                     "Moved on: exposed vs unexposed": (f"{format_percent(r.get('rate_treated'))} vs "
                                                        f"{format_percent(r.get('rate_control'))}"),
                     "Effect (95% interval)": effect, "Clear effect?": clear, "Note": plain_reason(reason)})
    out = pd.DataFrame(rows)
    out.index = [""] * len(out)  # row numbers mean nothing to a reader
    return out


def plain_reason(reason) -> str:
    """A row flag of the influence table in a few plain words, for a stakeholder table
    (technical notes such as a covariate dropped for lack of variation stay in the
    analyst table): "" when nothing is worth saying.

    >>> plain_reason("small group (treated 4, control 1563; minimum 20)")
    'too few exposed accounts (4) to judge'
    >>> plain_reason("covariate 'icp_fit' has one level (dropped); no treated units; comparison undefined")
    'no exposed account'
    >>> plain_reason("covariate 'icp_fit' has one level (dropped)")
    ''
    """
    if not isinstance(reason, str) or not reason:
        return ""
    notes = []
    for part in (p.strip() for p in re.split(r";(?![^()]*\))", reason)):  # not the ";" inside (...)
        m = re.match(r"small group \(treated (\d+), control (\d+)", part)
        if m:
            t_, c_ = int(m.group(1)), int(m.group(2))
            notes.append(f"too few exposed accounts ({t_}) to judge" if t_ <= c_ else
                         f"too few unexposed accounts ({c_}) to compare with")
        elif part.startswith("no treated"):
            notes.append("no exposed account")
        elif part.startswith("no control"):
            notes.append("no unexposed account to compare with")
        elif part.startswith("covariate") or part.startswith("comparison undefined") or not part:
            continue
        else:
            notes.append(part if len(part) <= 48 else part[:47] + "…")
    return "; ".join(dict.fromkeys(notes))


def segment_display_table(segments: pd.DataFrame, kpis) -> pd.DataFrame:
    """KPI values by segment (``kpi_table(...).segments``) for people: one row per
    segment value ("Industry: Financial services", "Tier: Tier 1"), one column per KPI in
    its unit; a value the data cannot give reads "n/a".

    >>> s = pd.DataFrame({"segment": ["tier", "tier"], "segment_value": [1, 2], "kpi": ["market_reach"] * 2,
    ...                   "unit": ["ratio"] * 2, "value": [0.95, float("nan")]})
    >>> segment_display_table(s, ["market_reach"]).to_dict("records")
    [{'Segment': 'Tier', 'Value': 'Tier 1', 'Market reach': '95.0%'}, {'Segment': 'Tier', 'Value': 'Tier 2', 'Market reach': 'n/a'}]
    """
    kpis = list(kpis)
    d = segments[segments["kpi"].isin(kpis)]
    units = d.groupby("kpi")["unit"].first().to_dict()
    keys = list(dict.fromkeys(zip(d["segment"], d["segment_value"])))
    vals = {(r["segment"], r["segment_value"], r["kpi"]): r["value"] for r in d.to_dict("records")}
    rows = []
    for seg, v in keys:
        row = {"Segment": human_label(seg), "Value": tier_label(v) if seg == "tier" else human_label(v)}
        for k in kpis:
            if k in units:
                row[kpi_label(k)] = format_value(vals.get((seg, v, k)), units[k])
        rows.append(row)
    out = pd.DataFrame(rows)
    out.index = [""] * len(out)   # a row number means nothing to the reader
    return out
