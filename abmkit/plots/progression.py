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

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ._text import legend_label, legend_safe, plain_text

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
    sns.barplot(data=accounts, y="stage", x="count", ax=ax, color="#4C72B0", orient="h")
    ax.set(title="Accounts that entered each stage", xlabel="accounts", ylabel="")
    for p, v in zip(ax.patches, accounts["count"]):
        ax.annotate(f"{int(v):,}", (p.get_width(), p.get_y() + p.get_height() / 2), va="center",
                    xytext=(3, 0), textcoords="offset points", fontsize=8)
    if contacts is not None:
        ax = axes[0, 1]
        sns.barplot(data=contacts, y="step", x="count", ax=ax, color="#DD8452", orient="h")
        ax.set(title="Contact (lead) funnel", xlabel="contacts", ylabel="")
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
    fig, ax = plt.subplots(figsize=(8, 3.6))
    wide.plot(kind="bar", stacked=True, ax=ax, colormap="viridis", width=0.8)
    ax.set(title="Stage distribution over time", ylabel="share of accounts", xlabel="as of")
    ax.legend(bbox_to_anchor=(1.01, 1), loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


@plain_text
def progression_rate_chart(rates: pd.DataFrame, by: str | None = None):
    """Progression rate per transition (``transition, rate``), optionally one bar per segment."""
    if rates.empty or rates["rate"].isna().all():
        return _nothing_to_show("Share of accounts moving on to the next stage")
    fig, ax = plt.subplots(figsize=(8, 3.6))
    sns.barplot(data=legend_safe(rates, by), x="transition", y="rate", hue=by, ax=ax)
    ax.set(title="Share of accounts moving on to the next stage", ylabel="progression rate", xlabel="")
    ax.tick_params(axis="x", rotation=20)
    fig.tight_layout()
    return fig


@plain_text
def velocity_curve_chart(curves: pd.DataFrame, hue: str = "transition"):
    """Kaplan–Meier curves: share still in stage s vs days since entering it
    (``transition, days, still_in_stage``)."""
    if curves.empty:
        return _nothing_to_show("Velocity: accounts still in the stage (Kaplan–Meier)", (7, 4))
    fig, ax = plt.subplots(figsize=(7, 4))
    for key, g in curves.groupby(hue, sort=False):
        ax.step(g["days"], g["still_in_stage"], where="post", label=legend_label(key))
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax.set(title="Velocity: accounts still in the stage (Kaplan–Meier)", xlabel="days since entering the stage",
           ylabel="share not yet progressed", ylim=(0, 1.02))
    ax.legend(fontsize=8)
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
        return _nothing_to_show(f"Influence on progression: {estimate} with CI")
    labels = t[list(label_cols)].astype(str).agg("  ".join, axis=1).to_numpy()
    y = np.arange(len(t))
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(t) + 1.4))
    sig = t["significant"].fillna(False).to_numpy(dtype=bool) if "significant" in t else np.zeros(len(t), bool)
    lo, hi = t[f"{estimate}_low"].to_numpy(), t[f"{estimate}_high"].to_numpy()
    est = t[estimate].to_numpy()
    for mask, color, name in ((~sig, "#8c8c8c", "not significant"), (sig, "#C44E52", "q < alpha")):
        if mask.any():
            ax.errorbar(est[mask], y[mask], xerr=[est[mask] - lo[mask], hi[mask] - est[mask]], fmt="o",
                        color=color, ms=4, capsize=2, label=name)
    if truth is not None:
        tr = dict(zip(truth["label"], truth["att_diff"]))
        tv = np.array([tr.get(lab, np.nan) for lab in labels], dtype=float)
        ok = np.isfinite(tv)
        ax.scatter(tv[ok], y[ok], marker="x", color="black", zorder=5, label="true effect (ATT)")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, labels, fontsize=8)
    ax.set(xlabel="difference in progression rate, exposed − unexposed (0.10 = 10 points)",
           title=f"Influence on progression: {estimate} with CI")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


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
    sns.scatterplot(data=legend_safe(t, "transition"), x="diff", y="adj_diff", hue="transition", ax=ax, s=40)
    lim = [min(t["diff"].min(), t["adj_diff"].min(), 0) - 0.02, max(t["diff"].max(), t["adj_diff"].max(), 0) + 0.02]
    ax.plot(lim, lim, color="grey", lw=0.8, ls="--")
    far = (t["diff"] - t["adj_diff"]).abs().nlargest(5).index
    for i in far:
        ax.annotate(str(t.loc[i, label_col]), (t.loc[i, "diff"], t.loc[i, "adj_diff"]), fontsize=7,
                    xytext=(3, 3), textcoords="offset points")
    ax.set(xlim=lim, ylim=lim, xlabel="naive difference", ylabel="adjusted difference (ATT)",
           title="Naive vs adjusted")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
