"""Figures for lead-to-account mapping quality and account engagement.

They draw the frames of :mod:`abmkit.mapping` (:class:`~abmkit.mapping.MappingReport`)
and :mod:`abmkit.engagement` and compute nothing. Contact ids never appear on them.

Example
-------
>>> from abmkit import mapping, plots
>>> rep = mapping.mapping_report(m, contacts, truth)   # doctest: +SKIP
>>> fig = plots.mapping_overview(rep)                  # doctest: +SKIP
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from ._text import legend_safe, plain_text
from .style import PALETTE, NEUTRAL, colors, count_axis, finish, human_label, percent_axis

__all__ = ["mapping_overview", "mapping_accuracy_chart", "engagement_leaderboard_chart",
           "engagement_trend_chart", "mqa_timeline_chart"]

_METHOD_COLORS = {"crm": PALETTE[0], "domain": PALETTE[1], "fuzzy_name": PALETTE[2], "unmatched": NEUTRAL}


@plain_text
def mapping_overview(report, *, figsize=(13, 4)) -> plt.Figure:
    """Three panels: contacts by method, confidence bands of matched contacts, and
    unmatched contacts by reason."""
    fig, axes = plt.subplots(1, 3, figsize=figsize)
    bm = report.by_method
    sns.barplot(data=bm, x="method", y="contacts", hue="method", palette=_METHOD_COLORS, legend=False, ax=axes[0])
    for patch, share in zip(axes[0].patches, bm["share"]):
        axes[0].annotate(f"{share:.1%}", (patch.get_x() + patch.get_width() / 2, patch.get_height()),
                         ha="center", va="bottom", fontsize=9)
    best = bm.loc[bm["contacts"].idxmax()] if len(bm) else None
    axes[0].set_title("Contacts by mapping method" if best is None else
                      f"{best['share']:.0%} of contacts mapped by {human_label(best['method'])}")
    axes[0].set_xticks(axes[0].get_xticks(), [human_label(t.get_text()) for t in axes[0].get_xticklabels()])
    axes[0].tick_params(axis="x", rotation=30)
    count_axis(axes[0], "y")
    sns.barplot(data=report.confidence, x="band", y="contacts", color=PALETTE[0], ax=axes[1])
    for patch, n in zip(axes[1].patches, report.confidence["contacts"]):
        axes[1].annotate(f"{int(n):,}", (patch.get_x() + patch.get_width() / 2, patch.get_height()),
                         ha="center", va="bottom", fontsize=9)
    axes[1].set_title("Confidence of matched contacts")
    axes[1].tick_params(axis="x", rotation=30)
    count_axis(axes[1], "y")
    un = report.reasons[report.reasons["method"] == "unmatched"]
    if len(un):
        sns.barplot(data=un, y="reason", x="contacts", color=NEUTRAL, ax=axes[2])
        count_axis(axes[2], "x")
    axes[2].set_title("Why contacts are unmatched")
    for ax in axes:
        finish(ax)
    fig.tight_layout()
    return fig


@plain_text
def mapping_accuracy_chart(report, *, figsize=(7, 3.5)) -> plt.Figure:
    """Precision and recall per method against ground truth (needs ``report.accuracy``)."""
    if report.accuracy is None:
        raise ValueError("this report has no ground truth: call mapping_report(..., truth=...) first")
    acc = report.accuracy[report.accuracy["method"] != "unmatched"]
    long = acc.melt(id_vars="method", value_vars=["precision", "recall"], var_name="measure", value_name="value")
    fig, ax = plt.subplots(figsize=figsize)
    long["method"] = [human_label(m) for m in long["method"]]
    sns.barplot(data=long, x="method", y="value", hue="measure", ax=ax, palette=colors(2))
    percent_axis(ax, "y", decimals=0)
    ax.set_ylim(0, 1.05)
    ax.set_title("Mapping precision and recall vs ground truth")
    fig.tight_layout()
    return fig


@plain_text
def engagement_leaderboard_chart(scores: pd.DataFrame, *, label: str = "account_name", top: int = 15,
                                 figsize=(8, 5)) -> plt.Figure:
    """Horizontal bars of the ``top`` rows of a leaderboard (already sorted by score),
    coloured by decision makers engaged."""
    data = scores.head(top)
    y = label if label in data else "account_id"
    fig, ax = plt.subplots(figsize=figsize)
    sns.barplot(data=data, y=y, x="score", hue="decision_makers_engaged", dodge=False, palette="Blues", ax=ax)
    ax.set_title(f"Top {len(data)} accounts by engagement score")
    ax.legend(title="decision makers\nengaged", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return fig


@plain_text
def engagement_trend_chart(scores: pd.DataFrame, *, label: str = "account_id", figsize=(9, 4)) -> plt.Figure:
    """Score over time, one line per account, from a multi-date :func:`engagement_scores` frame."""
    fig, ax = plt.subplots(figsize=figsize)
    keep = list(dict.fromkeys(scores[label]))[:8]  # one colour each
    sns.lineplot(data=legend_safe(scores[scores[label].isin(keep)], label), x="as_of", y="score", hue=label, ax=ax,
                 palette=colors(len(keep)))
    ax.set_title("Engagement score over time")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


@plain_text
def mqa_timeline_chart(dates: pd.DataFrame, *, figsize=(8, 3.5)) -> plt.Figure:
    """Cumulative count of accounts becoming MQA, from :func:`abmkit.engagement.mqa_dates`."""
    fig, ax = plt.subplots(figsize=figsize)
    if len(dates):
        sns.ecdfplot(data=dates, x="mqa_at", stat="count", ax=ax, color=PALETTE[0])
    ax.set_title(f"Accounts that became MQA: {len(dates):,} in all (cumulative count)")
    ax.set_ylabel("accounts")
    count_axis(ax, "y")
    fig.tight_layout()
    return fig
