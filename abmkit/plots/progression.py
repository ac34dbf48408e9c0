"""Figures for account progression and campaign influence.

They draw the frames of :mod:`abmkit.progression` and :mod:`abmkit.uplift` and
compute nothing.

Example
-------
>>> from abmkit import plots, uplift
>>> res = uplift.campaign_influence(ds)          # doctest: +SKIP
>>> fig = plots.uplift_forest_chart(res.table)   # doctest: +SKIP
"""
from __future__ import annotations

import re

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ._text import legend_label, plain_text
from .style import (ACCENT, BAD, GOOD, NEUTRAL, colors, count_axis, finish, human_label,
                    percent_axis, tier_label, transition_label_list, wrap)

__all__ = ["stage_funnel_chart", "stage_distribution_chart", "velocity_curve_chart", "uplift_forest_chart",
           "naive_vs_adjusted_chart", "progression_rate_chart"]

_STAGES = ("unaware", "aware", "engaged", "qualified", "sales_ready", "customer")


def _nothing_to_show(title: str, figsize=(8, 3.6)):
    """An empty figure that says why (no account in any stage yet, no test row), so a
    report notebook never fails on a small or quiet period."""
    fig, ax = plt.subplots(figsize=figsize)
    ax.text(0.5, 0.5, "nothing to show for this period", ha="center", va="center", fontsize=10,
            transform=ax.transAxes)
    ax.set_axis_off()
    ax.set_title(title)
    return fig


@plain_text
def stage_funnel_chart(accounts: pd.DataFrame, contacts: pd.DataFrame | None = None):
    """Horizontal funnel of accounts that entered each stage (``stage, count``),
    beside the contact funnel (``step, count``) when given (DualFunnel frames)."""
    if accounts.empty and (contacts is None or contacts.empty):
        return _nothing_to_show("Accounts that entered each stage")
    n = 2 if contacts is not None else 1
    fig, axes = plt.subplots(1, n, figsize=(5.5 * n, 3.6), squeeze=False)
    ax = axes[0, 0]
    pos = np.arange(len(accounts))
    ax.barh(pos, accounts["count"].to_numpy(dtype=float), color=ACCENT, alpha=0.85)
    ax.set_yticks(pos, [human_label(v) for v in accounts["stage"]])
    ax.invert_yaxis()
    ax.set(title="Accounts that entered each stage", xlabel="accounts", ylabel="")
    for y, v in zip(pos, accounts["count"]):
        ax.annotate(f"{int(v):,}", (v, y), va="center", xytext=(3, 0), textcoords="offset points", fontsize=8)
    count_axis(ax, "x")
    finish(ax, grid="x")
    if contacts is not None:
        ax = axes[0, 1]
        pos = np.arange(len(contacts))
        ax.barh(pos, contacts["count"].to_numpy(dtype=float), color=colors(2)[1], alpha=0.85)
        ax.set_yticks(pos, [human_label(v) for v in contacts["step"]])
        ax.invert_yaxis()
        ax.set(title="Contact (lead) funnel", xlabel="contacts", ylabel="")
        count_axis(ax, "x")
        finish(ax, grid="x")
    fig.tight_layout()
    return fig


@plain_text
def stage_distribution_chart(distribution: pd.DataFrame):
    """Stacked shares of accounts per stage at each date (``as_of, stage, share``)."""
    if distribution.empty or distribution["share"].isna().all():
        return _nothing_to_show("Stage distribution over time")
    wide = distribution.pivot_table(index="as_of", columns="stage", values="share", aggfunc="sum")
    wide = wide.reindex(columns=[s for s in _STAGES if s in wide.columns])
    wide.index = [pd.Timestamp(i).strftime("%Y-%m-%d") for i in wide.index]
    wide.columns = [human_label(c) for c in wide.columns]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    wide.plot(kind="bar", stacked=True, ax=ax, color=colors(len(wide.columns)), width=0.8)
    last = wide.iloc[-1]
    title = (f"On {wide.index[-1]}, most accounts are {last.idxmax().lower()} ({last.max():.0%})"
             if last.notna().any() else "Stage distribution over time")
    ax.set(title=title, ylabel="share of accounts", xlabel="as of")
    percent_axis(ax, "y", decimals=0)
    ax.tick_params(axis="x", rotation=0)
    ax.legend(bbox_to_anchor=(1.01, 1), loc="upper left", fontsize=8, title="stage", frameon=False)
    finish(ax)
    fig.tight_layout()
    return fig


@plain_text
def progression_rate_chart(rates: pd.DataFrame, by: str | None = None):
    """Progression rate per transition (``transition, rate``), optionally one bar per segment."""
    if rates.empty or rates["rate"].isna().all():
        return _nothing_to_show("Share of accounts moving on to the next stage")
    fig, ax = plt.subplots(figsize=(8, 3.6))
    d = rates.assign(transition=transition_label_list(rates["transition"]))
    if by is not None:
        d[by] = [legend_label(tier_label(v) if by == "tier" else human_label(v)) for v in d[by]]
        groups = list(dict.fromkeys(d[by]))
        lead = [re.match(r"\d+", str(g)) for g in groups]
        if all(lead):  # size bands "1-49", "50-249", ...: smallest first, not in order of appearance
            groups = [g for _, g in sorted(zip((int(m.group()) for m in lead), groups))]
        sns.barplot(data=d, x="transition", y="rate", hue=by, ax=ax, palette=colors(len(groups)),
                    hue_order=groups)
        ax.legend(title=human_label(by), fontsize=8, frameon=False, bbox_to_anchor=(1.01, 1), loc="upper left")
    else:
        sns.barplot(data=d, x="transition", y="rate", ax=ax, color=ACCENT)
    worst = d.loc[pd.to_numeric(d["rate"], errors="coerce").idxmin()] if d["rate"].notna().any() else None
    title = ("Share of accounts moving on to the next stage" if worst is None else
             f"Fewest accounts move on at {worst['transition'].lower()} ({worst['rate']:.0%}"
             + (f", {worst[by]})" if by is not None else ")"))
    ax.set(title=wrap(title, 80), ylabel="share that moved on", xlabel="")
    ax.set_xticks(ax.get_xticks(), [wrap(t.get_text(), 14) for t in ax.get_xticklabels()])
    percent_axis(ax, "y", decimals=0)
    finish(ax)
    fig.tight_layout()
    return fig


@plain_text
def velocity_curve_chart(curves: pd.DataFrame, hue: str = "transition"):
    """Kaplan–Meier curves: share still in stage s vs days since entering it
    (``transition, days, still_in_stage``)."""
    if curves.empty:
        return _nothing_to_show("Velocity: accounts still in the stage (Kaplan–Meier)", (7, 4))
    fig, ax = plt.subplots(figsize=(7, 4))
    keys = list(dict.fromkeys(curves[hue]))[:8]  # one colour each
    for key, color in zip(keys, colors(len(keys))):
        g = curves[curves[hue] == key]
        name = transition_label_list([key])[0] if hue == "transition" else human_label(key)
        ax.step(g["days"], g["still_in_stage"], where="post", color=color, label=legend_label(name))
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax.set(title="How long accounts stay in a stage (Kaplan–Meier; dotted line: half have moved on)",
           xlabel="days since entering the stage", ylabel="share not yet moved on", ylim=(0, 1.02))
    ax.title.set_text(wrap(ax.get_title(), 60))
    percent_axis(ax, "y", decimals=0)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8, frameon=False)
    finish(ax)
    fig.tight_layout()
    return fig


@plain_text
def uplift_forest_chart(table: pd.DataFrame, estimate: str = "adj_diff", truth: pd.DataFrame | None = None,
                        label_cols=("unit", "transition"), max_rows: int = 40):
    """Forest plot: one line per row of the influence table with its CI
    (``<estimate>``, ``<estimate>_low``, ``<estimate>_high``); significant rows
    (``significant``) in colour; optional ``truth`` frame with ``label`` and
    ``att_diff`` drawn as crosses."""
    t = table.dropna(subset=[estimate]).head(max_rows).iloc[::-1]
    if t.empty:
        return _nothing_to_show("Campaign influence on progression: no testable campaign")
    # a campaign by its name, not its id (CMP003); a transition in words
    cols = [("campaign_name" if c == "unit" and "campaign_name" in t and t["campaign_name"].notna().any() else c)
            for c in label_cols]
    parts = []
    for c in cols:
        v = t[c] if c in t else pd.Series([""] * len(t), index=t.index)
        if c == "unit" and "unit" in t and "campaign_name" in t:
            v = t["campaign_name"].where(t["campaign_name"].notna(), t["unit"])
        v = transition_label_list(v) if c == "transition" else [human_label(x) for x in v]
        parts.append(pd.Series(list(v), index=t.index).astype(str))
    labels = pd.concat(parts, axis=1).agg(" · ".join, axis=1).to_numpy()
    keys = t[list(label_cols)].astype(str).agg("  ".join, axis=1).to_numpy()  # matches truth["label"]
    y = np.arange(len(t))
    fig, ax = plt.subplots(figsize=(10, 0.3 * len(t) + 1.8))
    sig = t["significant"].fillna(False).to_numpy(dtype=bool) if "significant" in t else np.zeros(len(t), bool)
    lo, hi = t[f"{estimate}_low"].to_numpy(), t[f"{estimate}_high"].to_numpy()
    est = t[estimate].to_numpy()
    pos, neg = sig & (est > 0), sig & (est < 0)
    for mask, color, name in ((~sig, NEUTRAL, "not significant"), (pos, GOOD, "significant: helps"),
                              (neg, BAD, "significant: hurts")):
        if mask.any():
            xerr = np.vstack([est[mask] - lo[mask], hi[mask] - est[mask]]).astype(float)
            ax.errorbar(est[mask].astype(float), y[mask], xerr=xerr, fmt="o", color=color, ms=4, capsize=2, label=name)
    if truth is not None:
        tr = dict(zip(truth["label"], truth["att_diff"]))
        tv = np.array([tr.get(lab, np.nan) for lab in keys], dtype=float)
        ok = np.isfinite(tv)
        ax.scatter(tv[ok], y[ok], marker="x", color="black", zorder=5, label="true effect (planted)")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, labels, fontsize=8)
    ax.xaxis.set_major_formatter(plt.matplotlib.ticker.FuncFormatter(lambda v, _: f"{v * 100:+.0f} pts" if v else "0"))
    ax.set_xlabel(wrap("change in the share of accounts that move on: exposed vs similar unexposed accounts "
                       "(lines: 95% confidence interval)", 70))
    # the title starts at the figure's left edge: long campaign names push the axes right
    fig.suptitle(wrap(_forest_finding(labels, est, sig), 100), x=0.01, ha="left", fontsize=11, weight="bold")
    ax.legend(fontsize=8, loc="lower right")
    finish(ax, grid="x")
    fig.tight_layout()
    return fig


def _forest_finding(labels, est, sig) -> str:
    """How many effects are significant, and the largest one in words."""
    n, k = len(est), int(sig.sum())
    if k == 0:
        return f"No campaign effect is clearly different from zero ({n} tested)"
    i = int(np.argmax(np.where(sig, np.abs(est), -np.inf)))
    word = "helps" if est[i] > 0 else "hurts"
    return f"{k} of {n} campaign effects are clear; largest: {labels[i]} {word} ({est[i] * 100:+.1f} pts)"


@plain_text
def naive_vs_adjusted_chart(table: pd.DataFrame, label_col: str = "unit"):
    """Naive difference vs covariate-adjusted difference per row; points far
    from the diagonal are where confounding moved the estimate."""
    t = table.dropna(subset=["diff", "adj_diff"])
    fig, ax = plt.subplots(figsize=(5.5, 5))
    if t.empty:  # small data: no row has both estimates (flagged in the table); say so, do not fail
        ax.text(0.5, 0.5, "no row has both a naive and an adjusted difference\n(see flag_reason in the table)",
                ha="center", va="center", fontsize=9, transform=ax.transAxes)
        ax.set(xlabel="naive difference", ylabel="adjusted difference (ATT)", title="Naive vs adjusted")
        fig.tight_layout()
        return fig
    t = t.assign(transition=[legend_label(x) for x in transition_label_list(t["transition"])])
    groups = list(dict.fromkeys(t["transition"]))[:8]
    t = t[t["transition"].isin(groups)]
    sns.scatterplot(data=t, x="diff", y="adj_diff", hue="transition", ax=ax, s=40, palette=colors(len(groups)),
                    hue_order=groups)
    lim = [min(t["diff"].min(), t["adj_diff"].min(), 0) - 0.02, max(t["diff"].max(), t["adj_diff"].max(), 0) + 0.02]
    ax.plot(lim, lim, color="grey", lw=0.8, ls="--")
    far = (t["diff"] - t["adj_diff"]).abs().nlargest(5).index
    for i in far:
        ax.annotate(wrap(human_label(t.loc[i, label_col]), 22), (t.loc[i, "diff"], t.loc[i, "adj_diff"]), fontsize=7,
                    xytext=(3, 3), textcoords="offset points")
    pts = plt.matplotlib.ticker.FuncFormatter(lambda v, _: f"{v * 100:+.0f} pts" if v else "0")
    ax.xaxis.set_major_formatter(pts)
    ax.yaxis.set_major_formatter(pts)
    shift = (t["diff"] - t["adj_diff"]).abs()
    ax.set(xlim=lim, ylim=lim, xlabel="naive difference (exposed − unexposed)",
           ylabel="adjusted difference (like-for-like accounts)",
           title=wrap(f"Adjusting for who was targeted moves estimates by up to {shift.max() * 100:.0f} pts "
                      "(far from the dashed line = targeting, not influence)", 48))
    ax.legend(fontsize=7, title="transition", frameon=False)
    finish(ax, grid=None)
    fig.tight_layout()
    return fig
