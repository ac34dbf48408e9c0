"""Figures of a cleaning run: where every raw row went, why rows were rejected,
and touch volume per month by channel. They draw frames of
:mod:`abmkit.clean.quality` and compute nothing.

Example
-------
>>> from abmkit.clean import clean_exports, quality
>>> r = clean_exports("tests/data/messy/basic", "tests/data/messy/basic/column_map.yaml")  # doctest: +SKIP
>>> fig = rows_per_table_chart(quality.rows_per_table(r))                                  # doctest: +SKIP
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from ._text import legend_label, legend_safe, plain_text
from .style import PALETTE, colors, count_axis, finish, human_label

__all__ = ["rows_per_table_chart", "rejects_by_reason_chart", "touches_per_month_chart"]

_OUTCOME_COLORS = {"clean": PALETTE[2], "rejected": PALETTE[3], "merged": PALETTE[0]}


@plain_text
def rows_per_table_chart(rows: pd.DataFrame, *, figsize=(9, 3.5)) -> plt.Figure:
    """Horizontal stacked bars: per table, rows kept / rejected / merged (log scale
    would hide the few rejects, so shares are annotated instead)."""
    wide = rows.pivot_table(index="table", columns="outcome", values="rows", aggfunc="sum", sort=False).fillna(0)
    wide = wide.reindex(columns=[c for c in _OUTCOME_COLORS if c in wide.columns])
    fig, ax = plt.subplots(figsize=figsize)
    left = pd.Series(0.0, index=wide.index)
    total = wide.sum(axis=1).replace(0, 1)
    for outcome in wide.columns:
        ax.barh(wide.index, wide[outcome], left=left, color=_OUTCOME_COLORS[outcome], label=outcome)
        left += wide[outcome]
    for i, table in enumerate(wide.index):
        bad = wide.loc[table].drop("clean", errors="ignore").sum()
        ax.annotate(f"{int(total[table]):,} in · {bad / total[table]:.1%} not kept", (total[table], i),
                    xytext=(4, 0), textcoords="offset points", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("raw rows")
    ax.set_title("Where every raw row went")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_xlim(0, total.max() * 1.35)
    count_axis(ax, "x")
    ax.set_xlim(0, total.max() * 1.35)
    finish(ax, grid="x")
    fig.tight_layout()
    return fig


@plain_text
def rejects_by_reason_chart(by_reason: pd.DataFrame, *, figsize=(9, 3.5)) -> plt.Figure:
    """Bar chart of rejected rows by reason code, coloured by table."""
    fig, ax = plt.subplots(figsize=figsize)
    if by_reason.empty:
        ax.text(0.5, 0.5, "no rejected rows", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    n_tables = by_reason["table"].nunique()
    sns.barplot(data=legend_safe(by_reason, "table"), y="reason_code", x="rows", hue="table", ax=ax, dodge=True,
                palette=colors(min(n_tables, 8)) if n_tables <= 8 else None)
    top = by_reason.groupby("reason_code")["rows"].sum()
    ax.set_title(f"Most rejected rows: {human_label(top.idxmax())} ({top.max():,.0f} rows)" if len(top)
                 else "Rejected rows by reason")
    count_axis(ax, "x")
    finish(ax, grid="x")
    ax.set_ylabel("")
    fig.tight_layout()
    return fig


@plain_text
def touches_per_month_chart(monthly: pd.DataFrame, *, period=None, figsize=(11, 4)) -> plt.Figure:
    """Lines of touches per month by channel; the reporting period shaded."""
    fig, ax = plt.subplots(figsize=figsize)
    if monthly.empty:
        ax.text(0.5, 0.5, "no touches", ha="center", va="center", transform=ax.transAxes)
        return fig
    # at most 7 channels by volume in colour, the rest summed as "Other" (8 colours at most)
    vol = monthly.groupby("channel")["touches"].sum().sort_values(ascending=False)
    keep = list(vol.index[:7])
    m = monthly.assign(channel=monthly["channel"].where(monthly["channel"].isin(keep), "Other"))
    m = m.groupby(["month", "channel"], as_index=False, sort=False)["touches"].sum()
    m["channel"] = [legend_label(human_label(c)) for c in m["channel"]]
    order = [legend_label(human_label(c)) for c in keep] + (["Other"] if len(vol) > 7 else [])
    sns.lineplot(data=m, x="month", y="touches", hue="channel", hue_order=order, marker="o",
                 markersize=3, ax=ax, palette=colors(len(order)))
    count_axis(ax, "y")
    finish(ax)
    if period is not None:
        ax.axvspan(period.start.tz_localize(None), period.end.tz_localize(None), color="#cccccc", alpha=0.4,
                   label=legend_label(period.label))
    ax.set_title("Touches per month by channel")
    ax.legend(ncol=2, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    return fig
