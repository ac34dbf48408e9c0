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

from ._text import legend_label, plain_text
from .style import (ACCENT, DIVERGING_CMAP, NEUTRAL, SEQUENTIAL_CMAP, colors, finish, human_label,
                    model_label, percent_axis, wrap)

__all__ = ["attribution_share_bars", "attribution_share_heatmap", "attribution_rank_correlation",
           "attribution_journey_timeline", "attribution_sensitivity_lines", "attribution_disagreement_bars",
           "attribution_share_panels", "attribution_trend_lines", "trend_finding", "KEY_MODELS"]

#: the models a one-chart comparison shows by default (≤ 8 colours): the classic rules,
#: one milestone model and the two data-driven ones; the notebook can pass any other set
KEY_MODELS = ("first_touch", "last_touch", "linear", "time_decay", "w_shaped", "markov", "shapley")


def _shown_models(intervals: pd.DataFrame, models) -> list[str]:
    """The models to draw: ``models`` when given, else :data:`KEY_MODELS` present in the
    data (else the first ones of the data), never more than 8 (one colour each)."""
    present = list(dict.fromkeys(intervals["model"]))
    if models is not None:
        chosen = [m for m in models if m in present]
    else:
        chosen = [m for m in KEY_MODELS if m in present]
        chosen += [m for m in present if m not in chosen][:max(0, 7 - len(chosen))]  # other models: up to 7
    colors(len(chosen))  # more than 8 models in one chart: refused (use attribution_share_panels)
    return chosen


def _nothing_to_show(title: str, figsize) -> plt.Figure:
    """An empty figure that says why (a period without credited conversions), so a
    report notebook never fails on a quiet period."""
    fig, ax = plt.subplots(figsize=figsize)
    ax.text(0.5, 0.5, "nothing to show: no credited conversion in this period", ha="center", va="center",
            fontsize=10, transform=ax.transAxes)
    ax.set_axis_off()
    ax.set_title(title)
    return fig


def _leaders(intervals: pd.DataFrame, models: list[str]) -> dict[str, str]:
    """Top channel of each model (by share)."""
    d = intervals[intervals["model"].isin(models)].dropna(subset=["share"])
    return {m: str(g.loc[g["share"].idxmax(), "channel"]) for m, g in d.groupby("model", sort=False)}


def share_finding(intervals: pd.DataFrame, models: list[str]) -> str:
    """The finding of a share comparison in words: the channel that leads under every
    model, or which channel leads under which models."""
    lead = _leaders(intervals, models)
    if not lead:
        return "No channel received credit"
    by_channel: dict[str, list[str]] = {}
    for m, c in lead.items():
        by_channel.setdefault(c, []).append(m)
    if len(by_channel) == 1:
        (c, ms), = by_channel.items()
        if len(ms) == 1:
            share = intervals[(intervals["model"] == ms[0]) & (intervals["channel"] == c)]["share"].iloc[0]
            return f"{human_label(c)} gets the most {model_label(ms[0], short=True).lower()} credit ({share:.0%})"
        return f"{human_label(c)} gets the most credit under all {len(ms)} models shown"
    ranked = sorted(by_channel.items(), key=lambda kv: -len(kv[1]))
    parts = [f"{human_label(c)} under {', '.join(model_label(m, short=True) for m in ms)}" for c, ms in ranked[:3]]
    return "Models disagree on the top channel: " + "; ".join(parts)


@plain_text
def attribution_share_bars(intervals: pd.DataFrame, *, models=None, figsize=(11, 6.5)) -> plt.Figure:
    """Dot plot: each channel's share of credited conversions under each model, with the
    95% bootstrap interval as a line; channels sorted by their mean share.

    ``intervals``: channel, model, share, low, high (``ComparisonResult.intervals``).
    ``models``: the models to show (at most 8, one colour each); default the key models
    present (:data:`KEY_MODELS`). For every model at once use :func:`attribution_share_panels`.
    The title states which channel leads under which models.
    """
    if intervals.empty or intervals["share"].isna().all():
        return _nothing_to_show("Channel share by attribution model", figsize)
    models = _shown_models(intervals, models)
    d = intervals[intervals["model"].isin(models)]
    order = d.groupby("channel", sort=False)["share"].mean().sort_values().index.tolist()
    fig, ax = plt.subplots(figsize=figsize)
    y = np.arange(len(order))
    step = 0.8 / max(len(models), 1)
    for i, (m, color) in enumerate(zip(models, colors(len(models)))):
        g = d[d["model"] == m].set_index("channel").reindex(order)
        yy = y + (i - (len(models) - 1) / 2) * step
        ax.hlines(yy, g["low"], g["high"], color=color, lw=1.2, alpha=0.7)
        ax.plot(g["share"], yy, "o", ms=4.5, color=color, label=legend_label(model_label(m)))
    ax.set_yticks(y, [human_label(c) for c in order])
    for edge in y[:-1] + 0.5:
        ax.axhline(edge, color="#eeeeee", lw=0.8, zorder=0)
    ax.set_ylim(-0.6, len(order) - 0.4)
    percent_axis(ax, "x", decimals=0)
    ax.set_xlabel("share of credited conversions (line: 95% bootstrap interval, accounts resampled)")
    ax.set_title(wrap(share_finding(intervals, models), 95))
    ax.legend(title="model", frameon=False, loc="lower right")
    finish(ax, grid="x")
    fig.tight_layout()
    return fig


@plain_text
def attribution_share_panels(intervals: pd.DataFrame, *, models=None, ncols: int = 4, top: int = 8) -> plt.Figure:
    """Small multiples: one panel per model, the ``top`` channels by that model's share
    as bars with the bootstrap interval (one colour; every model can be shown, unlike
    the one-chart comparison). Each panel's title names the model and its top channel."""
    if intervals.empty or intervals["share"].isna().all():
        return _nothing_to_show("Channel share, one panel per model", (10, 3))
    models = [m for m in (models or dict.fromkeys(intervals["model"])) if m in set(intervals["model"])]
    nrows = max(1, int(np.ceil(len(models) / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 0.26 * top * nrows + 1.0 * nrows), squeeze=False,
                             sharex=True)
    for ax in axes.ravel()[len(models):]:
        ax.set_axis_off()
    xmax = float(intervals["high"].max()) if intervals["high"].notna().any() else float(intervals["share"].max())
    for ax, m in zip(axes.ravel(), models):
        g = intervals[intervals["model"] == m].dropna(subset=["share"]).nlargest(top, "share").iloc[::-1]
        err = np.vstack([(g["share"] - g["low"]).clip(lower=0).fillna(0), (g["high"] - g["share"]).clip(lower=0).fillna(0)])
        ax.barh([human_label(c) for c in g["channel"]], g["share"], xerr=err, color=ACCENT, alpha=0.85,
                error_kw={"elinewidth": 0.8, "capsize": 1.5, "ecolor": "#333333"})
        lead = g.iloc[-1] if len(g) else None
        ax.set_title(wrap(f"{model_label(m, short=True)}: {human_label(lead['channel'])} {lead['share']:.0%}", 34)
                     if lead is not None else model_label(m, short=True), fontsize=9.5)
        ax.set_xlim(0, max(xmax, 1e-9) * 1.05)
        percent_axis(ax, "x", decimals=0)
        ax.tick_params(axis="y", labelsize=7.5)
        finish(ax, grid="x")
    lead = pd.Series(_leaders(intervals, models)).value_counts()
    finding = ("" if lead.empty else f"{human_label(lead.index[0])} leads under "
               + ("every model" if lead.iloc[0] == len(models) else f"{lead.iloc[0]} of {len(models)} models") + ": ")
    fig.suptitle(finding + "share of credited conversions by channel, one panel per model (bars: 95% bootstrap "
                 "interval)", fontsize=11, weight="bold", x=0.01, ha="left")
    fig.tight_layout()
    return fig


@plain_text
def attribution_share_heatmap(shares: pd.DataFrame, *, figsize=(11, 6)) -> plt.Figure:
    """Heatmap of the channel × model share table (``ComparisonResult.shares``)."""
    if shares.empty or shares.isna().all().all():
        return _nothing_to_show("Channel share by model", figsize)
    shares = shares.loc[shares.mean(axis=1).sort_values(ascending=False).index]  # biggest channels on top
    shown = shares.rename(index=human_label, columns=lambda m: model_label(m, short=True))
    fig, ax = plt.subplots(figsize=figsize)
    sns.heatmap(shown, annot=True, fmt=".0%", cmap=SEQUENTIAL_CMAP, vmin=0, ax=ax, annot_kws={"fontsize": 8},
                cbar_kws={"label": "share of credited conversions",
                          "format": plt.matplotlib.ticker.PercentFormatter(1.0, decimals=0)})
    top = shares.idxmax(axis=0).dropna()
    if len(top):
        counts = top.value_counts()
        lead = counts.index[0]
        title = (f"{human_label(lead)} has the largest share under {counts.iloc[0]} of {len(top)} models"
                 if counts.iloc[0] < len(top) else f"{human_label(lead)} has the largest share under every model")
    else:
        title = "Channel share by model"
    ax.set_title(title)
    ax.set_xlabel("")
    ax.set_ylabel("")
    plt.setp(ax.get_xticklabels(), rotation=35, ha="right", rotation_mode="anchor")
    fig.tight_layout()
    return fig


@plain_text
def attribution_rank_correlation(rank_correlation: pd.DataFrame, *, figsize=(8, 6.5)) -> plt.Figure:
    """Spearman rank correlation between models (``ComparisonResult.rank_correlation``)."""
    if rank_correlation.empty or rank_correlation.isna().all().all():
        return _nothing_to_show("Do the models rank channels alike? (Spearman)", figsize)
    rc = rank_correlation.apply(pd.to_numeric, errors="coerce")
    off = rc.where(~np.eye(len(rc), dtype=bool)) if rc.shape[0] == rc.shape[1] else rc
    mean = off.mean(axis=1).dropna()
    if len(mean) >= 2:
        odd = mean.idxmin()
        title = (f"{model_label(odd, short=True)} ranks channels least like the other models "
                 f"(mean correlation {mean[odd]:.2f})")
    else:
        title = "Do the models rank channels alike?"
    shown = rc.rename(index=lambda m: model_label(m, short=True), columns=lambda m: model_label(m, short=True))
    fig, ax = plt.subplots(figsize=figsize)
    low = float(np.nanmin(rc.to_numpy())) if np.isfinite(rc.to_numpy()).any() else -1.0
    # all positive (the usual case): a one-hue scale from the lowest value shows the differences;
    # with negative correlations a diverging scale centred on 0
    cmap, vmin = (SEQUENTIAL_CMAP, max(0.0, np.floor(low * 10) / 10)) if low >= 0 else (DIVERGING_CMAP, -1)
    sns.heatmap(shown, annot=True, fmt=".2f", cmap=cmap, vmin=vmin, vmax=1, ax=ax,
                annot_kws={"fontsize": 8}, cbar_kws={"label": "rank correlation (1 = same channel order)"})
    ax.set_title(wrap(title, 70))
    ax.set_xlabel("")
    ax.set_ylabel("")
    plt.setp(ax.get_xticklabels(), rotation=35, ha="right", rotation_mode="anchor")
    fig.tight_layout()
    return fig


@plain_text
def attribution_disagreement_bars(disagreement: pd.DataFrame, *, figsize=(9, 5)) -> plt.Figure:
    """Per channel, the range of its share across models (min to max, mean marked)."""
    if disagreement.empty:
        return _nothing_to_show("How much the models disagree, by channel", figsize)
    d = disagreement.sort_values("range")
    names = [human_label(c) for c in d["channel"]]
    fig, ax = plt.subplots(figsize=figsize)
    ax.hlines(names, d["min_share"], d["max_share"], color=ACCENT, lw=4, alpha=0.55, label="lowest to highest model")
    ax.plot(d["mean_share"], names, "o", color="#333333", label="mean over models")
    percent_axis(ax, "x", decimals=0)
    ax.set_xlabel("share of credited conversions")
    top = d.iloc[-1]
    lo_m, hi_m = (top.get("model_min"), top.get("model_max"))
    span = (f" ({top['min_share']:.0%} under {model_label(lo_m, short=True)} to {top['max_share']:.0%} under "
            f"{model_label(hi_m, short=True)})" if isinstance(lo_m, str) and isinstance(hi_m, str) else
            f" ({top['min_share']:.0%} to {top['max_share']:.0%})")
    ax.set_title(wrap(f"{human_label(top['channel'])}'s credit depends most on the model{span}", 75))
    ax.legend(frameon=False, loc="lower right")
    finish(ax, grid="x")
    fig.tight_layout()
    return fig


@plain_text
def attribution_journey_timeline(journey: pd.DataFrame, models=None, *, figsize=(13, 5)) -> plt.Figure:
    """One conversion's journey: touches over time by channel (top) and each model's
    credit per touch (bottom). ``journey`` from :func:`abmkit.attribution.journey_credits`."""
    if journey.empty:
        return _nothing_to_show("Journey of one conversion", figsize)
    models = list(models) if models is not None else [c for c in journey.columns if c not in _JOURNEY_COLS]
    models = models[:8]  # one colour each
    fig, (top, bottom) = plt.subplots(2, 1, figsize=figsize, sharex=False, height_ratios=[1.2, 1])
    chans = list(dict.fromkeys(journey.sort_values("position")["channel"].astype(str)))
    y = journey["channel"].astype(str).map({c: i for i, c in enumerate(chans)})
    top.scatter(journey["occurred_at"], y, s=40, c=NEUTRAL, zorder=3)
    for flag, label, color in (("is_first", "first touch", "#E69F00"), ("is_mqa", "MQA touch", "#0072B2"),
                               ("is_opportunity_created", "opportunity-creation touch", "#D55E00")):
        if flag in journey and journey[flag].any():
            sel = journey[journey[flag]]
            top.scatter(sel["occurred_at"], y[sel.index], s=160, facecolors="none", edgecolors=color, lw=2,
                        label=label, zorder=4)
    if "converted_at" in journey:
        top.axvline(journey["converted_at"].iloc[0], color="#333333", ls="--", label="milestone")
    top.set_yticks(range(len(chans)), [human_label(c) for c in chans])
    top.set_title(f"One conversion's journey: {len(journey)} touches over {len(chans)} channels "
                  f"(conversion {journey['conversion_id'].iloc[0]})")
    top.legend(fontsize=8, frameon=False, loc="upper left")
    finish(top, grid="x")
    for m, color in zip(models, colors(len(models))):
        bottom.plot(journey["position"], journey[m], marker="o", ms=4, lw=1, color=color,
                    label=legend_label(model_label(m, short=True)))
    bottom.set_xlabel("touch position in the journey (0 = first)")
    bottom.set_ylabel("share of the credit")
    percent_axis(bottom, "y", decimals=0)
    bottom.set_title("Credit each model gives every touch", fontsize=10)
    bottom.legend(fontsize=8, frameon=False, ncol=min(len(models), 5))
    finish(bottom)
    fig.tight_layout()
    return fig


_JOURNEY_COLS = {"conversion_id", "account_id", "touchpoint_id", "channel", "touch_type", "campaign_id",
                 "occurred_at", "position", "n_touches", "age_days", "is_first", "is_mqa",
                 "is_opportunity_created", "is_closed_won", "converted_at"}


_PARAM_LABELS = {"half_life_days": "time-decay half-life (days)", "lookback_days": "lookback window (days)"}


def sensitivity_finding(sweep: pd.DataFrame, model: str | None = None) -> str:
    """The finding of a sweep in words: which channel's share moves most between the
    smallest and the largest parameter value, and the parameter swept."""
    param = str(sweep["param"].iloc[0]) if "param" in sweep and len(sweep) else "parameter"
    what = _PARAM_LABELS.get(param, human_label(param))
    lo_v, hi_v = sweep["value"].min(), sweep["value"].max()
    ends = sweep[sweep["value"].isin([lo_v, hi_v])].pivot_table(index="channel", columns="value", values="share")
    ends = ends.dropna()
    if ends.shape[1] < 2 or ends.empty:
        return f"Channel shares as the {what} changes"
    move = (ends[hi_v] - ends[lo_v])
    c = move.abs().idxmax()
    prefix = f"{model_label(model, short=True)}: " if model else ""
    return (f"{prefix}{human_label(c)} moves most as the {what.split(' (')[0]} goes from {lo_v:g} to {hi_v:g} days "
            f"({ends.loc[c, lo_v]:.0%} → {ends.loc[c, hi_v]:.0%})")


@plain_text
def attribution_sensitivity_lines(sweep: pd.DataFrame, *, top: int = 6, model: str | None = None,
                                  title: str | None = None, figsize=(9, 4.5)) -> plt.Figure:
    """Channel share against the swept parameter (``abmkit.attribution.sensitivity``
    output), for the ``top`` channels by mean share (at most 8, one colour each).
    ``model``: the model that was swept (named in the title); the title states which
    channel moves most, so the half-life and the lookback sweeps read differently.
    ``title`` overrides it."""
    if sweep.empty or sweep["share"].isna().all():
        return _nothing_to_show(title or "How shares move with the parameter", figsize)
    keep = sweep.groupby("channel")["share"].mean().nlargest(min(top, 8)).index
    d = sweep[sweep["channel"].isin(keep)]
    fig, ax = plt.subplots(figsize=figsize)
    for c, color in zip(keep, colors(len(keep))):
        g = d[d["channel"] == c].sort_values("value")
        ax.plot(g["value"], g["share"], marker="o", ms=4, color=color, label=legend_label(human_label(c)))
    param = str(sweep["param"].iloc[0]) if len(sweep) else ""
    ax.set_xlabel(_PARAM_LABELS.get(param, human_label(param)))
    if sweep["value"].min() > 0 and sweep["value"].max() / sweep["value"].min() > 20:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(plt.matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xticks(sorted(sweep["value"].unique()))
    percent_axis(ax, "y", decimals=0)
    ax.set_ylabel("share of credited conversions")
    ax.set_title(wrap(title or sensitivity_finding(sweep, model), 80))
    ax.legend(title="channel", fontsize=8, frameon=False, bbox_to_anchor=(1.01, 1), loc="upper left")
    finish(ax)
    fig.tight_layout()
    return fig


def trend_finding(trend: pd.DataFrame) -> str:
    """The channel whose share moved most between the first and the last period of an
    attribution trend table (``abmkit.summary.attribution_trend``: channel, then one
    column per period, oldest first); "" when fewer than two periods have shares.

    >>> t = pd.DataFrame({"channel": ["email", "events"], "Q2 2026": [0.5, 0.5], "Q3 2026": [0.6, 0.4]})
    >>> trend_finding(t)
    'Email gained most: +10.0 pts from Q2 2026 to Q3 2026'
    """
    periods = [c for c in trend.columns if c != "channel" and trend[c].notna().any()]
    if len(periods) < 2:
        return ""
    change = (trend[periods[-1]] - trend[periods[0]]).fillna(0.0)
    i = int(change.abs().to_numpy().argmax())
    verb = "gained" if change.iloc[i] >= 0 else "lost"
    return (f"{human_label(trend['channel'].iloc[i])} {verb} most: {100 * change.iloc[i]:+.1f} pts "
            f"from {periods[0]} to {periods[-1]}")


@plain_text
def attribution_trend_lines(trend: pd.DataFrame, model: str = "", *, top: int = 7, figsize=(9, 4.2)):
    """Share of the credit per channel over the last periods (the table of
    ``abmkit.summary.attribution_trend``: channel, then one column per period, oldest
    first): one line per channel for the ``top`` channels of the newest period (at most 7,
    plus "Other" for the rest: ≤ 8 colours), on a zero-based percent axis, titled with the
    channel that moved most. None when fewer than two periods have shares: one point is
    not a trend (show the table instead)."""
    periods = [c for c in trend.columns if c != "channel" and trend[c].notna().any()]
    if len(periods) < 2:
        return None
    top = min(top, 7)
    d = trend.set_index("channel")[periods].fillna(0.0)
    keep = d[periods[-1]].sort_values(ascending=False).index[:top]
    rest = d.drop(index=keep)
    if len(rest):
        d = pd.concat([d.loc[keep], rest.sum().to_frame("other").T])
    fig, ax = plt.subplots(figsize=figsize)
    for (channel, row), color in zip(d.iterrows(), colors(len(d))):
        ax.plot(periods, row.to_numpy(dtype=float), marker="o", ms=4, color=color,
                label=legend_label(human_label(channel)))
    percent_axis(ax, "y", decimals=0)
    ax.set_ylabel("share of the credit")
    finding = trend_finding(trend)
    ax.set_title(wrap(finding + (f"; {model_label(model)} model" if model else ""), 80))
    ax.legend(title="channel", fontsize=8, frameon=False, bbox_to_anchor=(1.01, 1), loc="upper left")
    finish(ax)
    fig.tight_layout()
    return fig
