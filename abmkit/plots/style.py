"""The one chart style of abmkit: colours, axes, labels and titles.

Every figure of :mod:`abmkit.plots` uses these, so the report reads the same on every page:

* **Colours**: the Okabe–Ito palette (distinguishable with the common forms of colour
  blindness), at most :data:`MAX_COLORS` = 8 per chart. A chart with more categories
  shows the top ones and groups the rest (:func:`top_categories`), or becomes small
  multiples; :func:`colors` refuses a ninth colour rather than repeating one.
  Good / bad use bluish green and vermillion, always with a second cue (arrow, label).
* **Axes**: shares and counts start at zero (:func:`zero_based`); big numbers read
  "1.5M" / "250k" with their unit and never with a "1e6" offset (:func:`amount_axis`,
  :func:`count_axis`, :func:`percent_axis`).
* **Labels**: data values as words (``financial_services`` → "Financial services",
  ``hubspot_u_shaped`` → "U-shaped (HubSpot: first / MQA)", tier 1 → "Tier 1"), from
  :mod:`abmkit.formatting`.
* **Titles state the finding** computed from the data ("Email gets the most first-touch
  credit (34%)"), with what was measured in the axis label or subtitle
  (:func:`leader_title`, :func:`finding_title`).

:data:`STYLE_RC` is set while a figure is built (by :func:`abmkit.plots._text.plain_text`,
which restores the previous values afterwards).

Example
-------
>>> colors(3)
['#0072B2', '#E69F00', '#009E73']
>>> leader_title(pd.Series({"email": 0.34, "webinar": 0.2}), "gets the most first-touch credit")
'Email gets the most first-touch credit (34%)'
"""
from __future__ import annotations

import textwrap

import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
from matplotlib import cycler  # matplotlib re-exports it: no extra dependency

from ..formatting import (format_amount, format_count, format_value, human_label, model_label, tier_label,
                          transition_label)

__all__ = ["PALETTE", "MAX_COLORS", "GOOD", "BAD", "NEUTRAL", "ACCENT", "SEQUENTIAL_CMAP", "DIVERGING_CMAP",
           "STYLE_RC", "colors", "color_map", "top_categories", "zero_based", "percent_axis", "amount_axis",
           "count_axis", "axis_amount", "finish", "leader_title", "finding_title", "wrap", "human_label", "model_label",
           "tier_label", "label_values", "transition_label_list", "format_value", "format_amount"]

#: Okabe–Ito: blue, orange, bluish green, vermillion, sky blue, reddish purple, black, yellow
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#000000", "#F0E442")
MAX_COLORS = len(PALETTE)
GOOD, BAD, NEUTRAL, ACCENT = "#009E73", "#D55E00", "#8C8C8C", "#0072B2"
#: one-hue sequential map (shares) and a colour-blind-safe diverging map (correlations)
SEQUENTIAL_CMAP, DIVERGING_CMAP = "Blues", "PuOr_r"
STYLE_RC = {
    "axes.prop_cycle": cycler(color=list(PALETTE)),
    "axes.spines.top": False, "axes.spines.right": False,
    "axes.titlesize": 11, "axes.titleweight": "bold",
    "axes.labelsize": 9.5, "xtick.labelsize": 8.5, "ytick.labelsize": 8.5, "legend.fontsize": 8.5,
    "axes.formatter.useoffset": False, "axes.formatter.limits": (-9, 12),
    "figure.dpi": 100, "savefig.dpi": 100,
}


def colors(n: int) -> list[str]:
    """The first ``n`` colours of :data:`PALETTE`; more than 8 is refused (a chart with
    more categories needs grouping or small multiples, not repeated colours).

    >>> len(colors(8))
    8
    >>> colors(9)
    Traceback (most recent call last):
    ...
    ValueError: 9 colours asked for, at most 8 per chart: group the rest as 'Other' or use small multiples
    """
    if n > MAX_COLORS:
        raise ValueError(f"{n} colours asked for, at most {MAX_COLORS} per chart: group the rest as 'Other' "
                         "or use small multiples")
    return list(PALETTE[:max(n, 0)])


def color_map(names) -> dict:
    """A colour per distinct name, in order of first appearance ("Other" in grey).

    >>> color_map(["email", "webinar", "Other"])
    {'email': '#0072B2', 'webinar': '#E69F00', 'Other': '#8C8C8C'}
    """
    names = list(dict.fromkeys(names))
    real = [n for n in names if n != "Other"]
    out = dict(zip(real, colors(len(real))))
    if "Other" in names:
        out["Other"] = NEUTRAL
    return out


def top_categories(values: pd.Series, n: int = MAX_COLORS - 1, other: str = "Other") -> pd.Series:
    """``values`` (a category per row) with every category outside the ``n`` most
    frequent (or, for a numeric ``weights`` use, pass the ranking yourself) renamed
    ``other``: at most ``n + 1`` colours.

    >>> top_categories(pd.Series(list("aaabbc")), n=2).tolist()
    ['a', 'a', 'a', 'b', 'b', 'Other']
    """
    keep = values.value_counts().index[:n]
    return values.where(values.isin(keep), other)


def zero_based(ax, axis: str = "y") -> None:
    """Start the ``axis`` at zero (shares and counts: a bar or a line that starts
    higher exaggerates change). Left alone when the data go below zero."""
    lo, hi = ax.get_ylim() if axis == "y" else ax.get_xlim()
    if lo >= 0 or (lo < 0 and _data_min(ax, axis) >= 0):
        hi = max(hi, 1e-12)
        (ax.set_ylim if axis == "y" else ax.set_xlim)(0, hi)


def _data_min(ax, axis: str) -> float:
    """Smallest data value drawn on ``ax`` along ``axis`` (lines, bars, points)."""
    vals = []
    for line in ax.get_lines():
        d = np.asarray(line.get_ydata() if axis == "y" else line.get_xdata(), dtype=float)
        vals.extend(d[np.isfinite(d)].tolist())
    for p in ax.patches:
        try:
            vals.append(p.get_y() if axis == "y" else p.get_x())
        except AttributeError:
            continue
    return min(vals) if vals else 0.0


def percent_axis(ax, axis: str = "y", *, zero: bool = True, decimals: int | None = None) -> None:
    """Tick labels as percentages of 1.0 ("40%"), axis from zero unless ``zero=False``."""
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(mticker.PercentFormatter(1.0, decimals=decimals))
    if zero:
        zero_based(ax, axis)


def amount_axis(ax, axis: str = "y", unit: str = "", *, zero: bool = True) -> None:
    """Tick labels as "250k" / "1.5M" (with ``unit`` after them), never a "1e6" offset."""
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(mticker.FuncFormatter(lambda v, _: axis_amount(v, unit)))
    if zero:
        zero_based(ax, axis)


def axis_amount(value: float, unit: str = "") -> str:
    """A tick label for an amount: "0", "250k", "1.5M", "6M" (no trailing zeros).

    >>> [axis_amount(v) for v in (0, 250_000, 1_500_000, 6_000_000, 1_750_000, 800)]
    ['0', '250k', '1.5M', '6M', '1.75M', '800']
    """
    if not value:
        return "0"
    a = abs(value)
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            s = f"{value / div:.2f}".rstrip("0").rstrip(".") + suffix
            break
    else:
        s = f"{value:,.0f}"
    return f"{s} {unit}" if unit else s


def count_axis(ax, axis: str = "y", *, zero: bool = True) -> None:
    """Whole-number tick labels with thousands separators, from zero."""
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_locator(mticker.MaxNLocator(integer=True))
    target.set_major_formatter(mticker.FuncFormatter(lambda v, _: format_count(v)))
    if zero:
        zero_based(ax, axis)


def finish(ax, *, grid: str | None = "y") -> None:
    """Common finish: light grid along ``grid`` behind the data, no top/right spines."""
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if grid:
        ax.grid(axis=grid, alpha=0.3, lw=0.6)
        ax.set_axisbelow(True)


def wrap(text: str, width: int = 28) -> str:
    """Wrap a long tick or legend label over lines of ``width`` characters.

    >>> wrap("Enterprise display retargeting Q3", 16)
    'Enterprise\\ndisplay\\nretargeting Q3'
    """
    return "\n".join(textwrap.wrap(str(text), width)) or str(text)


def label_values(values, kind: str = "auto") -> list[str]:
    """Human labels for a sequence of data values: ``kind`` "model", "tier" or "auto"
    (:func:`abmkit.formatting.human_label`).

    >>> label_values(["w_shaped", "markov"], "model"), label_values([1, 3], "tier")
    (['W-shaped (first / MQA / opp.)', 'Markov (removal-effect shares, channel level)'], ['Tier 1', 'Tier 3'])
    """
    f = {"model": model_label, "tier": tier_label}.get(kind, human_label)
    return [f(v) for v in values]


def transition_label_list(values) -> list[str]:
    """Stage transitions in words (``aware->engaged`` → "Aware → engaged"), for ticks.

    >>> transition_label_list(["aware->engaged"])
    ['Aware → engaged']
    """
    return [transition_label(v) for v in values]


def leader_title(values: pd.Series, verb_phrase: str, unit: str = "ratio", *, label=human_label) -> str:
    """A title that states which item leads: "<largest item> <verb_phrase> (<its value>)".
    ``values``: a number per item (index = item). Ties name both; all missing → a
    neutral title.

    >>> leader_title(pd.Series({"paid_search": 120_000.0, "email": 80_000.0}), "brings the most pipeline", "currency")
    'Paid search brings the most pipeline (120k)'
    >>> leader_title(pd.Series({"a": 0.5, "b": 0.5}), "leads")
    'A and B lead (50%)'
    """
    v = pd.to_numeric(values, errors="coerce").dropna()
    if v.empty:
        return "No item stands out: no value to compare"
    top = v.max()
    leaders = [label(i) for i in v.index[np.isclose(v.to_numpy(), top)]]
    shown = format_value(top, unit)
    if unit == "ratio":  # "34%" reads better than "34.0%" in a title
        shown = f"{top:.0%}" if abs(top * 100 - round(top * 100)) < 0.05 else shown
    if len(leaders) == 1:
        return f"{leaders[0]} {verb_phrase} ({shown})"
    words = verb_phrase.split(" ", 1)
    verb = words[0][:-1] if words[0].endswith("s") and not words[0].endswith("ss") else words[0]
    verb = {"get": "get", "bring": "bring", "lead": "lead", "ha": "have"}.get(verb, verb)
    rest = f" {words[1]}" if len(words) > 1 else ""
    names = ", ".join(leaders[:-1]) + f" and {leaders[-1]}"
    return f"{names} {verb}{rest} ({shown})"


def finding_title(finding: str, measured: str | None = None) -> str:
    """A two-line title: the finding in words, then what was measured (smaller text is
    up to the caller; here a second line).

    >>> finding_title("Email leads", "share of credited conversions, 2026Q3")
    'Email leads\\nshare of credited conversions, 2026Q3'
    """
    return finding if not measured else f"{finding}\n{measured}"
