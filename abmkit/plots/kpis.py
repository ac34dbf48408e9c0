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

from ..formatting import KPI_LABELS
from ..period import period_axis_label
from ._text import plain_text
from .style import (ACCENT, BAD, GOOD, amount_axis, colors, count_axis, finish, human_label,
                    percent_axis, tier_label, wrap, zero_based)

__all__ = ["kpi_tiles", "kpi_trends", "funnel_chart", "pipeline_chart", "segment_chart", "format_kpi"]

_LABELS = KPI_LABELS  # one list of KPI names (abmkit.formatting)
_FUNNEL_LABELS = {"reached": "reached (any touch)", "with_engagement": "with an engagement touch",
                  "mqa": "MQA at period end", "opportunity": "opportunity created", "won": "opportunity won"}
#: KPIs that are a share of their population (shown as "n of d"); other ratios (ROI, NRR)
#: show only whose accounts they count
_SHARES = frozenset({"market_reach", "buying_group_coverage", "win_rate", "mqa_to_win_rate",
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
        name = _label(row.kpi)
        if len(name) > 36:  # a long name wraps on two lines inside the tile, never cut off
            name = _wrapped(name, 32, 2)
        ax.text(0.5, 0.84, name, ha="center", va="center", fontsize=9.5 if len(name) <= 30 else 8.3, color="#333",
                linespacing=1.1, transform=ax.transAxes)
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
            long = len(text) > 44  # a long population wraps inside the tile instead of running over its edge
            ax.text(0.5, 0.36, _wrapped(text, 44, 2) if long else text, ha="center", va="center",
                    fontsize=6.8 if long else 7.5, color="#57606a", linespacing=1.1, transform=ax.transAxes)
        change = row.change
        low, high = _num(getattr(row, "low", np.nan)), _num(getattr(row, "high", np.nan))
        if np.isfinite(low) and np.isfinite(high):  # an estimate (incremental pipeline): its interval
            note, color = f"95% CI {format_kpi(low, row.unit)} to {format_kpi(high, row.unit)}", "#666"
        elif hasattr(row, "low") and not np.isfinite(_num(row.previous)):  # a count beside an estimate
            note, color = "counted (no interval)", "#666"
        elif change is None or not np.isfinite(change):
            note, color = f"prev {format_kpi(row.previous, row.unit)}", "#666"
        else:
            better = (change < 0) if row.kpi in _LOWER_IS_BETTER else (change > 0)
            color = "#666" if change == 0 else (GOOD if better else BAD)  # plus the arrow: not colour alone
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
        ax.plot([period_axis_label(x) for x in d["period"]], d["value"].to_numpy(dtype=float), marker="o", color=ACCENT)
        ax.set_title(wrap(_trend_title(k, d["value"].to_numpy(dtype=float), unit, len(d)), 40), fontsize=9.5)
        ax.set_xlabel("")
        if unit == "ratio":
            percent_axis(ax, "y", decimals=0)
            ax.set_ylim(0, max(1.0, float(np.nanmax(d["value"])) * 1.05))
        elif unit == "currency":
            amount_axis(ax, "y")
        elif unit in ("days", "hours"):
            zero_based(ax, "y")
        else:
            count_axis(ax, "y")
        ax.set_ylabel({"ratio": "share", "days": "days", "hours": "hours", "currency": "amount"}.get(unit, unit))
        ax.tick_params(axis="x", labelsize=8)
        finish(ax)
    fig.tight_layout()
    return fig


def _trend_title(kpi: str, values: np.ndarray, unit: str, n: int) -> str:
    """"Market reach 92.9%, +2.4 pts over 4 periods": the last value and the change
    from the first period shown (its direction in words for counts and amounts)."""
    ok = values[np.isfinite(values)]
    if len(ok) == 0:
        return _label(kpi)
    last = format_kpi(ok[-1], unit)
    if len(ok) < 2:
        return f"{_label(kpi)}: {last}"
    ch = ok[-1] - ok[0]
    if unit == "ratio":
        delta = f"{ch * 100:+.1f} pts"
    elif ok[0] != 0:
        delta = f"{ch / abs(ok[0]):+.0%}"
    else:
        delta = f"{ch:+,.0f}"
    return f"{_label(kpi)}: {last} ({delta} over {n} periods)"


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
    ax.barh(np.arange(len(steps)), np.nan_to_num(counts), color=ACCENT, alpha=0.85)
    ax.set_yticks(np.arange(len(steps)), [s[:1].upper() + s[1:] for s in map(str, steps)])
    ax.invert_yaxis()
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
    count_axis(ax, "x")
    ax.set_xlim(0, top * 1.7)
    ax.set_xlabel("accounts")
    ax.set_ylabel("")
    finding = _funnel_finding(funnel, steps)
    ax.set_title(f"{wrap(finding, 60)}\n{title}" if finding else title)
    finish(ax, grid="x")
    fig.tight_layout()
    return fig


def _funnel_finding(funnel: pd.DataFrame, steps) -> str:
    """The step that loses the largest share of the accounts of the step before."""
    if "share_of_previous_step" not in funnel or len(funnel) < 2:
        return ""
    kept = pd.to_numeric(funnel["share_of_previous_step"], errors="coerce").to_numpy(dtype=float)[1:]
    if not np.isfinite(kept).any():
        return ""
    i = int(np.nanargmin(kept)) + 1
    return f"Biggest drop: {steps[i - 1]} → {steps[i]} ({1 - kept[i - 1]:.0%} of accounts do not move on)"


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
    long["period"] = [period_axis_label(x) for x in long["period"]]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    palette = dict(zip(("created", "influenced", "won"), colors(3)))
    sns.barplot(data=long, x="period", y="amount", hue="measure", ax=ax,
                palette={k: v for k, v in palette.items() if k in set(long["measure"])})
    if missing:
        ax.text(0.0, -0.2, "; ".join(f"{measures[m]}: n/a" for m in missing) + " (no touches in the data)",
                transform=ax.transAxes, fontsize=8, color="#57606a")
    amount_axis(ax, "y")
    ax.set_xlabel("")
    ax.set_ylabel("amount (data currency)")
    finding = _pipeline_finding(pipeline)
    ax.set_title(f"{finding}\n{title}" if finding else title)
    ax.legend(title="", frameon=False)
    finish(ax)
    fig.tight_layout()
    return fig


def _pipeline_finding(pipeline: pd.DataFrame) -> str:
    """Created pipeline of the last period and its change on the period before."""
    amounts = pd.to_numeric(pipeline.get("created_amount"), errors="coerce").to_numpy(dtype=float)
    if len(amounts) < 1 or not np.isfinite(amounts[-1]):
        return ""
    last = f"{format_kpi(amounts[-1], 'currency')} pipeline created in {period_axis_label(pipeline['period'].iloc[-1])}"
    if len(amounts) < 2 or not np.isfinite(amounts[-2]) or amounts[-2] == 0:
        return last
    ch = amounts[-1] / amounts[-2] - 1
    return f"{last}, {'up' if ch >= 0 else 'down'} {abs(ch):.0%} on {period_axis_label(pipeline['period'].iloc[-2])}"


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
    fig, axes = plt.subplots(1, max(1, len(segs)), figsize=(4.2 * max(1, len(segs)), 3.9), squeeze=False)
    for ax, seg in zip(axes.ravel(), segs):
        s = d[d["segment"] == seg]
        unit = s["unit"].iloc[0]
        x = [tier_label(v) if seg == "tier" else human_label(v) for v in s["segment_value"]]
        pos = np.arange(len(x))
        ax.bar(pos, s["value"].to_numpy(dtype=float), color=ACCENT, alpha=0.85)
        ax.scatter(pos, s["previous"].to_numpy(dtype=float), color="#333333", zorder=3, s=18)
        ax.set_xticks(pos, x)
        ax.set_title(wrap(_segment_title(kpi, seg, s, x, unit), 46), fontsize=9.5)
        if unit == "ratio":
            percent_axis(ax, "y", decimals=0)
        elif unit == "currency":
            amount_axis(ax, "y")
        else:
            count_axis(ax, "y")
        ax.set_ylabel({"ratio": "share", "currency": "amount"}.get(unit, str(unit)))
        ax.tick_params(axis="x", labelsize=8)
        plt.setp(ax.get_xticklabels(), rotation=40, ha="right", rotation_mode="anchor")
        finish(ax)
    fig.text(0.01, 0.01, "bars: this period · dots: the previous period", fontsize=8, color="#57606a")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def _segment_title(kpi: str, seg: str, s: pd.DataFrame, names: list[str], unit: str) -> str:
    """"Market reach by tier: highest in Tier 1 (95.0%), lowest in Tier 3 (88.0%)"."""
    v = s["value"].to_numpy(dtype=float)
    head = f"{_label(kpi)} by {human_label(seg).lower()}"
    if np.isfinite(v).sum() < 2:
        return head
    hi, lo = int(np.nanargmax(v)), int(np.nanargmin(v))
    return f"{head}: highest in {names[hi]} ({format_kpi(v[hi], unit)}), lowest in {names[lo]} ({format_kpi(v[lo], unit)})"
