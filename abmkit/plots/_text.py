"""Plain text on every figure: data names are never parsed as math-text or TeX.

Account, campaign, channel, model and segment names come from exported data, and
matplotlib reads text with an even number of ``$`` as math-text: ``Ca$$h Corp``
stops the draw with a parse error, ``$x^2$`` is typeset as a formula. Every public
figure function of :mod:`abmkit.plots` is decorated with :func:`plain_text`:

* the function runs inside :func:`plain_text_rc`: ``text.parse_math``,
  ``text.usetex`` and ``axes.formatter.use_mathtext`` off. A ``Text`` stores
  ``parse_math`` / ``usetex`` when it is created (``Text._parse_math``, read from
  rcParams in ``Text.__init__``), and formatters store ``use_mathtext`` likewise,
  so what is created inside the context stays plain when the notebook's inline
  backend draws the figure later, outside it. On exit (also on error) exactly
  those three keys get their previous values back: notebooks and other code see
  no global change. (Not ``matplotlib.rc_context``: it reverts *every* rcParam,
  and in a fresh kernel the first ``plt.subplots`` imports the inline backend,
  whose activation sets ``interactive`` and the inline figure settings; reverting
  those stops later figures from being shown.)
* then every ``Text`` of the figure (titles, suptitle, axis labels, tick labels,
  legend entries and titles, annotations, heatmap cells, colorbar labels) gets
  ``set_parse_math(False)`` and ``set_usetex(False)``. Walking the figure with
  ``findobj`` also creates, inside the context, the tick objects the draw will
  use, including the categorical ticks seaborn derives from data values whose
  label strings are only filled in at draw time. (A tick created after the function
  returned, by a caller resetting ticks with ``tick_params(reset=True)``, follows
  the caller's rcParams again; the figures here never do that, and the ticks a
  later redraw at another size adds carry numbers only.)

Strings are not escaped (``$`` → ``\\$``): with math-text off an escape would show
its backslash. The one other way matplotlib reads meaning into a label is a leading
underscore: ``ax.legend()`` (and seaborn's hue legends, built the same way) leaves
out every artist whose label starts with ``_``, so a channel called ``_under_``
would silently vanish from the legend. :func:`legend_label` / :func:`legend_safe`
put an invisible ZERO WIDTH SPACE before such a label (it has a glyph in DejaVu
Sans, matplotlib's default font); the plot functions apply them where a data value
becomes a legend entry.
"""
from __future__ import annotations

import contextlib
import functools

import matplotlib as mpl
import matplotlib.text as mtext
import pandas as pd
from matplotlib.figure import Figure

from .style import STYLE_RC

__all__ = ["plain_text", "plain_text_rc", "make_text_plain", "legend_label", "legend_safe", "PLAIN_TEXT_RC",
           "LEGEND_GUARD"]

#: rcParams in force while a figure is built
PLAIN_TEXT_RC = {"text.parse_math": False, "text.usetex": False, "axes.formatter.use_mathtext": False}
#: put before a legend label starting with "_" (which matplotlib would leave out)
LEGEND_GUARD = "\u200b"


def legend_label(value) -> str:
    """``str(value)``, guarded so that a leading underscore does not hide it from a legend.

    >>> legend_label("_under_") == LEGEND_GUARD + "_under_", legend_label("Ca$$h Corp")
    (True, 'Ca$$h Corp')
    """
    s = str(value)
    return LEGEND_GUARD + s if s.startswith("_") else s


def legend_safe(data: pd.DataFrame, column: str | None) -> pd.DataFrame:
    """``data`` with the string values of ``column`` (a seaborn ``hue``) passed through
    :func:`legend_label`; a copy when anything changes, ``data`` itself otherwise.
    Non-string values (numbers, missing) are left as they are."""
    if column is None or column not in data:
        return data
    col = data[column]
    if not any(isinstance(v, str) and v.startswith("_") for v in col.unique()):
        return data
    return data.assign(**{column: col.map(lambda v: legend_label(v) if isinstance(v, str) else v)})


@contextlib.contextmanager
def plain_text_rc():
    """Set :data:`PLAIN_TEXT_RC` and the chart style (:data:`abmkit.plots.style.STYLE_RC`)
    for the ``with`` block, then restore those keys only (other rcParams changed inside
    the block, e.g. by a backend activating, stay)."""
    rc = {**STYLE_RC, **PLAIN_TEXT_RC}
    saved = {key: mpl.rcParams[key] for key in rc}
    mpl.rcParams.update(rc)
    try:
        yield
    finally:
        mpl.rcParams.update(saved)


def make_text_plain(fig: Figure) -> Figure:
    """Turn math-text and TeX off on every ``Text`` of ``fig`` (in place); return ``fig``."""
    for text in fig.findobj(mtext.Text):
        text.set_parse_math(False)
        text.set_usetex(False)
    return fig


def plain_text(func):
    """Decorator for a function returning a figure: build it with math-text off and
    leave every text of it plain (see the module docstring)."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with plain_text_rc():
            fig = func(*args, **kwargs)
            if isinstance(fig, Figure):
                make_text_plain(fig)
        return fig

    wrapper.__plain_text__ = True
    return wrapper
