"""Figures for attribution model comparison. They draw the frames of
:mod:`abmkit.attribution` (``ComparisonResult`` parts, sensitivity sweeps, one
journey's credits) and compute nothing.

Example
-------
>>> from abmkit import attribution, plots
>>> res = attribution.compare_models(ds, n_boot=200)      # doctest: +SKIP
>>> fig = plots.attribution_share_bars(res.intervals)     # doctest: +SKIP
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ._text import legend_label, legend_safe, plain_text

__all__ = ["attribution_share_bars", "attribution_share_heatmap", "attribution_rank_correlation",
           "attribution_journey_timeline", "attribution_sensitivity_lines", "attribution_disagreement_bars"]


def _nothing_to_show(title: str, figsize) -> plt.Figure:
    """An empty figure that says why (a period without credited conversions), so a
    report notebook never fails on a quiet period."""
    fig, ax = plt.subplots(figsize=figsize)
    ax.text(0.5, 0.5, "nothing to show: no credited conversion in this period", ha="center", va="center",
            fontsize=10, transform=ax.transAxes)
    ax.set_axis_off()
    ax.set_title(title)
    return fig


@plain_text
def attribution_share_bars(intervals: pd.DataFrame, *, figsize=(13, 5)) -> plt.Figure:
    """Grouped bars: channel share by model, with the bootstrap interval as error bars.

    ``intervals``: channel, model, share, low, high (``ComparisonResult.intervals``).
    """
    if intervals.empty or intervals["share"].isna().all():
        return _nothing_to_show("Channel share by attribution model", figsize)
    channels = list(dict.fromkeys(intervals["channel"]))
    models = list(dict.fromkeys(intervals["model"]))
    fig, ax = plt.subplots(figsize=figsize)
    width = 0.8 / max(len(models), 1)
    x = np.arange(len(channels))
    colors = sns.color_palette("tab10" if len(models) <= 10 else "tab20", len(models))
    for i, m in enumerate(models):
        d = intervals[intervals["model"] == m].set_index("channel").reindex(channels)
        err = np.vstack([(d["share"] - d["low"]).clip(lower=0).fillna(0), (d["high"] - d["share"]).clip(lower=0).fillna(0)])
        ax.bar(x + (i - (len(models) - 1) / 2) * width, d["share"], width, yerr=err, label=legend_label(m),
               color=colors[i],
               error_kw={"elinewidth": 0.8, "capsize": 1.5, "ecolor": "#333333"})
    ax.set_xticks(x, channels, rotation=35, ha="right")
    ax.set_ylabel("share of credited conversions")
    ax.yaxis.set_major_formatter(plt.matplotlib.ticker.PercentFormatter(1.0))
    ax.set_title("Channel share by attribution model (bars: 95% bootstrap interval, accounts resampled)")
    ax.legend(ncol=min(len(models), 5), fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


@plain_text
def attribution_share_heatmap(shares: pd.DataFrame, *, figsize=(11, 6)) -> plt.Figure:
    """Heatmap of the channel × model share table (``ComparisonResult.shares``)."""
    if shares.empty or shares.isna().all().all():
        return _nothing_to_show("Channel share by model", figsize)
    fig, ax = plt.subplots(figsize=figsize)
    sns.heatmap(shares, annot=True, fmt=".0%", cmap="Blues", cbar_kws={"label": "share"}, ax=ax,
                annot_kws={"fontsize": 8})
    ax.set_title("Channel share by model")
    ax.set_xlabel("")
    ax.set_ylabel("")
    fig.tight_layout()
    return fig


@plain_text
def attribution_rank_correlation(rank_correlation: pd.DataFrame, *, figsize=(8, 6.5)) -> plt.Figure:
    """Spearman rank correlation between models (``ComparisonResult.rank_correlation``)."""
    if rank_correlation.empty or rank_correlation.isna().all().all():
        return _nothing_to_show("Do the models rank channels alike? (Spearman)", figsize)
    fig, ax = plt.subplots(figsize=figsize)
    sns.heatmap(rank_correlation, annot=True, fmt=".2f", cmap="RdBu_r", vmin=-1, vmax=1, ax=ax,
                annot_kws={"fontsize": 8})
    ax.set_title("Do the models rank channels alike? (Spearman)")
    ax.set_xlabel("")
    ax.set_ylabel("")
    fig.tight_layout()
    return fig


@plain_text
def attribution_disagreement_bars(disagreement: pd.DataFrame, *, figsize=(9, 5)) -> plt.Figure:
    """Per channel, the range of its share across models (min to max, mean marked)."""
    if disagreement.empty:
        return _nothing_to_show("How much the models disagree, by channel", figsize)
    d = disagreement.sort_values("range")
    fig, ax = plt.subplots(figsize=figsize)
    ax.hlines(d["channel"], d["min_share"], d["max_share"], color="#7570b3", lw=4, alpha=0.6)
    ax.plot(d["mean_share"], d["channel"], "o", color="#333333", label="mean over models")
    ax.xaxis.set_major_formatter(plt.matplotlib.ticker.PercentFormatter(1.0))
    ax.set_xlabel("share of credited conversions (lowest to highest model)")
    ax.set_title("How much the models disagree, by channel")
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


@plain_text
def attribution_journey_timeline(journey: pd.DataFrame, models=None, *, figsize=(13, 5)) -> plt.Figure:
    """One conversion's journey: touches over time by channel (top) and each model's
    credit per touch (bottom). ``journey`` from :func:`abmkit.attribution.journey_credits`."""
    if journey.empty:
        return _nothing_to_show("Journey of one conversion", figsize)
    models = list(models) if models is not None else [c for c in journey.columns if c not in _JOURNEY_COLS]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=figsize, sharex=False, height_ratios=[1.2, 1])
    chans = list(dict.fromkeys(journey.sort_values("position")["channel"].astype(str)))
    y = journey["channel"].astype(str).map({c: i for i, c in enumerate(chans)})
    top.scatter(journey["occurred_at"], y, s=40, c="#1b9e77", zorder=3)
    for flag, label, color in (("is_first", "first", "#d95f02"), ("is_mqa", "MQA touch", "#7570b3"),
                               ("is_opportunity_created", "opp-creation touch", "#e7298a")):
        if flag in journey and journey[flag].any():
            sel = journey[journey[flag]]
            top.scatter(sel["occurred_at"], y[sel.index], s=160, facecolors="none", edgecolors=color, lw=2,
                        label=label, zorder=4)
    if "converted_at" in journey:
        top.axvline(journey["converted_at"].iloc[0], color="#333333", ls="--", label="milestone")
    top.set_yticks(range(len(chans)), chans)
    top.set_title(f"Journey of conversion {journey['conversion_id'].iloc[0]} ({len(journey)} touches)")
    top.legend(fontsize=8, frameon=False, loc="upper left")
    for m in models:
        bottom.plot(journey["position"], journey[m], marker="o", ms=4, lw=1, label=legend_label(m))
    bottom.set_xlabel("touch position in the journey (0 = first)")
    bottom.set_ylabel("credit")
    bottom.legend(fontsize=8, frameon=False, ncol=len(models))
    fig.tight_layout()
    return fig


_JOURNEY_COLS = {"conversion_id", "account_id", "touchpoint_id", "channel", "touch_type", "campaign_id",
                 "occurred_at", "position", "n_touches", "age_days", "is_first", "is_mqa",
                 "is_opportunity_created", "is_closed_won", "converted_at"}


@plain_text
def attribution_sensitivity_lines(sweep: pd.DataFrame, *, top: int = 8, figsize=(9, 4.5)) -> plt.Figure:
    """Channel share against the swept parameter (``abmkit.attribution.sensitivity``
    output), for the ``top`` channels by mean share."""
    if sweep.empty or sweep["share"].isna().all():
        return _nothing_to_show("How shares move with the parameter", figsize)
    keep = sweep.groupby("channel")["share"].mean().nlargest(top).index
    d = sweep[sweep["channel"].isin(keep)]
    fig, ax = plt.subplots(figsize=figsize)
    sns.lineplot(data=legend_safe(d, "channel"), x="value", y="share", hue="channel", marker="o", ax=ax)
    ax.set_xlabel(str(sweep["param"].iloc[0]) if len(sweep) else "")
    ax.yaxis.set_major_formatter(plt.matplotlib.ticker.PercentFormatter(1.0))
    ax.set_title("How shares move with the parameter")
    ax.legend(fontsize=8, frameon=False, bbox_to_anchor=(1.01, 1), loc="upper left")
    fig.tight_layout()
    return fig
