"""KPI figures for the quarterly report: tiles, trends, funnel, pipeline, segments.

They draw the frames of :mod:`abmkit.kpis` and compute nothing.

Example
-------
>>> from abmkit import kpis, plots
>>> t = kpis.kpi_table(ds, quarter="2026Q3")        # doctest: +SKIP
>>> fig = plots.kpi_tiles(t.overall)                 # doctest: +SKIP
"""
from __future__ import annotations

import math
import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ._text import plain_text

__all__ = ["kpi_tiles", "kpi_trends", "funnel_chart", "pipeline_chart", "segment_chart", "format_kpi"]

_LABELS = {
    "market_reach": "Market reach", "account_engagement": "Account engagement",
    "audience_exposure_time": "Exposure time", "mqa_accounts": "MQA accounts (at period end)",
    "new_mqas": "New MQAs (in period)",
    "buying_group_coverage": "Buying-group coverage", "opportunity_creation": "Opportunities created",
    "influenced_pipeline": "Influenced pipeline", "pipeline_velocity": "Pipeline velocity",
    "deal_velocity": "Deal velocity", "opportunity_conversion": "Opportunity conversion",
    "win_rate": "MQA win rate", "average_deal_size": "Average deal size",
    "cost_per_acquired_account": "Cost / acquired account", "roi": "ROI",
    "retention_rate": "Retention", "net_revenue_retention": "Net revenue retention",
    "product_adoption": "Product adoption", "upsell_rate": "Upsell rate", "cross_sell_rate": "Cross-sell rate",
    "customer_lifetime_value": "Customer lifetime value",
}
_FUNNEL_LABELS = {"reached": "reached (any touch)", "with_engagement": "with an engagement touch",
                  "mqa": "MQA at period end", "opportunity": "opportunity created", "won": "opportunity won"}
#: KPIs that are a share of their population (shown as "n of d"); other ratios (ROI, NRR)
#: show only whose accounts they count
_SHARES = frozenset({"market_reach", "buying_group_coverage", "win_rate", "opportunity_conversion",
                     "retention_rate", "product_adoption", "upsell_rate", "cross_sell_rate"})
#: KPIs where a smaller number is better (durations, costs)
_LOWER_IS_BETTER = frozenset({"pipeline_velocity", "deal_velocity", "cost_per_acquired_account"})


def format_kpi(value: float, unit: str) -> str:
    """Human format of a KPI value by unit (ratio → %, currency → k/M, days, hours).

    >>> format_kpi(0.6, "ratio"), format_kpi(225_000, "currency"), format_kpi(-20, "days")
    ('60.0%', '225.0k', '-20.0 d')
    """
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if unit == "ratio":
        return f"{value:.1%}"
    if unit == "days":
        return f"{value:,.1f} d"
    if unit == "hours":
        return f"{value:,.0f} h"
    if unit == "currency":
        a = abs(value)
        return f"{value / 1e6:,.2f}M" if a >= 1e6 else f"{value / 1e3:,.1f}k" if a >= 1e3 else f"{value:,.0f}"
    return f"{value:,.0f}"


def _label(kpi: str) -> str:
    return _LABELS.get(kpi, kpi.replace("_", " "))


def _na_reason(note) -> str:
    """The reason of an "n/a — <reason>" note ("" for any other note)."""
    if not isinstance(note, str) or not note.startswith("n/a"):
        return ""
    return note.split("—", 1)[1].strip() if "—" in note else note[3:].strip(" -:")


def _wrapped(text: str, width: int, max_lines: int = 3) -> str:
    lines = textwrap.wrap(text, width) or [""]
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: max(0, width - 1)].rstrip() + "…"
    return "\n".join(lines)


def _num(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


@plain_text
def kpi_tiles(overall: pd.DataFrame, kpis: list[str] | None = None, ncols: int = 5, title: str | None = None):
    """A grid of tiles: KPI name, value, and change against the previous period
    (green when better, red when worse). ``overall`` = ``kpi_table(...).overall``.
    A KPI that is not applicable shows "n/a" with its reason under it (its ``note``,
    "n/a — needs touchpoints: none supplied"), small and wrapped."""
    df = overall if kpis is None else overall.set_index("kpi").loc[list(kpis)].reset_index()
    n = len(df)
    nrows = max(1, math.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.0 * ncols, 1.9 * nrows), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, row in zip(axes.ravel(), df.itertuples()):
        ax.add_patch(plt.Rectangle((0.02, 0.04), 0.96, 0.92, transform=ax.transAxes, fc="#f6f8fa", ec="#d0d7de"))
        ax.text(0.5, 0.84, _label(row.kpi), ha="center", va="center", fontsize=9.5, color="#333", transform=ax.transAxes)
        ax.text(0.5, 0.57, format_kpi(row.value, row.unit), ha="center", va="center", fontsize=17,
                weight="bold", color="#111", transform=ax.transAxes)
        reason = _na_reason(getattr(row, "note", "")) if not np.isfinite(_num(row.value)) else ""
        if reason:  # not applicable: why, instead of a population and a change that mean nothing
            ax.text(0.5, 0.24, _wrapped(reason, 38), ha="center", va="center", fontsize=7, color="#57606a",
                    linespacing=1.15, transform=ax.transAxes)
            continue
        population = getattr(row, "population", "")
        if population:  # every number names the accounts it is counted on
            size = getattr(row, "population_size", float("nan"))
            num, den = getattr(row, "numerator", float("nan")), getattr(row, "denominator", float("nan"))
            # a rate shows its own count (22 of 222), then whose accounts; a count shows the population
            if row.kpi in _SHARES and np.isfinite(num) and np.isfinite(den):
                text = f"{num:,.0f} of {den:,.0f} · {population}"
            elif row.unit in ("accounts", "opportunities") and np.isfinite(size):
                text = f"of {size:,.0f} {population}"
            else:
                text = f"{population} ({size:,.0f})" if np.isfinite(size) else str(population)
            ax.text(0.5, 0.36, text, ha="center", va="center", fontsize=7.5, color="#57606a",
                    transform=ax.transAxes)
        change = row.change
        if change is None or not np.isfinite(change):
            note, color = f"prev {format_kpi(row.previous, row.unit)}", "#666"
        else:
            better = (change < 0) if row.kpi in _LOWER_IS_BETTER else (change > 0)
            color = "#666" if change == 0 else ("#1a7f37" if better else "#cf222e")
            arrow = "▲" if change > 0 else ("▼" if change < 0 else "■")
            delta = (f"{change * 100:+.1f} pts" if row.unit == "ratio" else
                     format_kpi(change, row.unit) if row.unit in ("days", "hours", "currency") else f"{change:+,.0f}")
            note = f"{arrow} {delta} vs prev"
        ax.text(0.5, 0.16, note, ha="center", va="center", fontsize=9, color=color, transform=ax.transAxes)
    if title:
        fig.suptitle(title, fontsize=12, weight="bold")
    fig.tight_layout()
    return fig


@plain_text
def kpi_trends(history: pd.DataFrame, kpis: list[str] | None = None, ncols: int = 3):
    """Small multiples: each KPI over the periods of ``kpi_history(...)``."""
    h = history if kpis is None else history[history["kpi"].isin(kpis)]
    names = list(dict.fromkeys(h["kpi"]))
    nrows = max(1, math.ceil(len(names) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 2.6 * nrows), squeeze=False)
    for ax in axes.ravel()[len(names):]:
        ax.set_axis_off()
    for ax, k in zip(axes.ravel(), names):
        d = h[h["kpi"] == k]
        unit = d["unit"].iloc[0]
        if d["value"].isna().all():  # not applicable in every period: say why, draw no empty axes
            notes = d["note"] if "note" in d else pd.Series([], dtype=object)
            reason = next((r for r in map(_na_reason, notes) if r), "no value in these periods")
            ax.set_axis_off()
            ax.set_title(_label(k), fontsize=10)
            ax.text(0.5, 0.5, "n/a — " + _wrapped(reason, 44), ha="center", va="center", fontsize=8.5,
                    color="#57606a", transform=ax.transAxes)
            continue
        y = d["value"] * (100 if unit == "ratio" else 1)
        sns.lineplot(x=d["period"].to_numpy(), y=y.to_numpy(), marker="o", ax=ax, color="#0969da")
        ax.set_title(_label(k), fontsize=10)
        ax.set_xlabel("")
        ax.set_ylabel({"ratio": "%", "days": "days", "hours": "hours"}.get(unit, ""))
        ax.tick_params(axis="x", labelsize=8, rotation=20)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


@plain_text
def funnel_chart(funnel: pd.DataFrame, title: str = "Account funnel"):
    """Horizontal funnel of ``account_funnel(...)``: accounts per step with the share of
    the population and the step conversion. A step that is not applicable (no count,
    ``note`` "n/a — <reason>") gets no bar, and "n/a — <reason>" in its place."""
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(funnel) + 1))
    population = str(funnel["population"].iloc[0]) if "population" in funnel and len(funnel) else "accounts"
    steps = funnel["step"].map(_FUNNEL_LABELS).fillna(funnel["step"]).to_numpy()
    steps = np.where(funnel["step"].to_numpy() == "population", population, steps)
    counts = pd.to_numeric(funnel["accounts"], errors="coerce").astype(float).to_numpy()
    sns.barplot(x=np.nan_to_num(counts), y=steps, ax=ax, color="#54aeff", orient="h")
    top = max(float(np.nanmax(counts)) if np.isfinite(counts).any() else 0.0, 1.0)
    notes = funnel["note"].tolist() if "note" in funnel else [""] * len(funnel)
    for i, (row, n, note) in enumerate(zip(funnel.itertuples(), counts, notes)):
        if not np.isfinite(n):
            ax.text(top * 0.01, i, "n/a — " + (_na_reason(note) or "not applicable"), va="center", fontsize=8.5,
                    color="#57606a")
            continue
        share = "" if not np.isfinite(row.share_of_population) else f"  {row.share_of_population:.0%} of {population}"
        step = ("" if i == 0 or not np.isfinite(row.share_of_previous_step)
                else f", {row.share_of_previous_step:.0%} of previous")
        ax.text(n + top * 0.01, i, f"{int(n):,}{share}{step}", va="center", fontsize=9)
    ax.set_xlim(0, top * 1.7)
    ax.set_xlabel("accounts")
    ax.set_ylabel("")
    ax.set_title(title)
    sns.despine(ax=ax)
    fig.tight_layout()
    return fig


@plain_text
def pipeline_chart(pipeline: pd.DataFrame, title: str = "Pipeline by period"):
    """Bars of created, influenced and won amounts per period of ``pipeline_by_period(...)``.
    A measure that is not applicable (all NaN: influenced without touches) is left out
    and named under the chart."""
    measures = {"created_amount": "created", "influenced_amount": "influenced", "won_amount": "won"}
    missing = [m for m in measures if pipeline[m].isna().all()]
    long = pipeline.melt(id_vars=["period"], value_vars=[m for m in measures if m not in missing],
                         var_name="measure", value_name="amount")
    long["measure"] = long["measure"].map(measures)
    fig, ax = plt.subplots(figsize=(8, 3.6))
    palette = {"created": "#54aeff", "influenced": "#8250df", "won": "#1a7f37"}
    sns.barplot(data=long, x="period", y="amount", hue="measure", ax=ax,
                palette={k: v for k, v in palette.items() if k in set(long["measure"])})
    if missing:
        ax.text(0.0, -0.2, "; ".join(f"{measures[m]}: n/a" for m in missing) + " (no touches in the data)",
                transform=ax.transAxes, fontsize=8, color="#57606a")
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: format_kpi(v, "currency")))
    ax.set_xlabel("")
    ax.set_ylabel("amount")
    ax.set_title(title)
    ax.legend(title="", frameon=False)
    sns.despine(ax=ax)
    fig.tight_layout()
    return fig


@plain_text
def segment_chart(segments: pd.DataFrame, kpi: str):
    """One KPI by segment value, one panel per segment (``kpi_table(...).segments``),
    with the previous period as a grey marker."""
    d = segments[segments["kpi"] == kpi]
    if len(d) and d["value"].isna().all():  # not applicable: one panel saying why
        fig, ax = plt.subplots(figsize=(6, 1.6))
        ax.set_axis_off()
        reason = next((r for r in map(_na_reason, d["note"] if "note" in d else []) if r), "no value in any segment")
        ax.text(0.5, 0.5, f"{_label(kpi)} by segment: n/a — " + _wrapped(reason, 60), ha="center", va="center",
                fontsize=9, color="#57606a", transform=ax.transAxes)
        return fig
    segs = list(dict.fromkeys(d["segment"]))
    fig, axes = plt.subplots(1, max(1, len(segs)), figsize=(4.2 * max(1, len(segs)), 3.6), squeeze=False)
    for ax, seg in zip(axes.ravel(), segs):
        s = d[d["segment"] == seg]
        unit = s["unit"].iloc[0]
        scale = 100 if unit == "ratio" else 1
        x = s["segment_value"].astype(str).to_numpy()
        sns.barplot(x=x, y=(s["value"] * scale).to_numpy(), ax=ax, color="#54aeff")
        ax.scatter(x, (s["previous"] * scale).to_numpy(), color="#6e7781", zorder=3, s=18)
        ax.set_title(f"{_label(kpi)} by {seg.replace('_', ' ')}\n(bars: this period, dots: previous)", fontsize=9.5)
        ax.set_ylabel("%" if unit == "ratio" else "")
        ax.tick_params(axis="x", labelsize=8)
        plt.setp(ax.get_xticklabels(), rotation=40, ha="right", rotation_mode="anchor")
        sns.despine(ax=ax)
    fig.tight_layout()
    return fig
