"""Text from the data never reaches matplotlib's math-text parser (security finding 9).

Account, campaign, channel, model and segment names come from exported data: an
account called ``Ca$$h Corp`` in the top 15 used to stop the report with a
math-text error. Every public figure of :mod:`abmkit.plots` is drawn here from a
small frame whose names are hostile, saved to PNG in memory with the Agg backend
(outside any context the plot function set, as a notebook's inline backend draws
it later), and must (1) not raise, (2) show each name literally in some Text of
the figure, and (3) leave no Text of the figure parsed as math-text or TeX.
A name starting with ``_`` must show too: matplotlib leaves such labels out of a
legend unless guarded (``abmkit.plots._text.legend_label``).

A new public plot function must get a case in ``CASES`` below: the coverage test
compares ``CASES`` with ``abmkit.plots.__all__``.
"""
from __future__ import annotations

import io
from types import SimpleNamespace

import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
pytest.importorskip("seaborn")

import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.text as mtext  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from abmkit import plots  # noqa: E402
from abmkit.period import quarter_period  # noqa: E402
from abmkit.plots._text import LEGEND_GUARD  # noqa: E402

#: hostile names: math-text delimiters (an empty math run, a formula), TeX
#: specials (underscore, percent, backslash command)
NAMES = ["Ca$$h Corp", "$x^2$", "_under_", "50% off", "\\alpha"]
CASH, FORMULA, UNDER, PERCENT, ALPHA = NAMES

#: public names of abmkit.plots that are not figures
NOT_FIGURES = {"format_kpi", "KEY_MODELS", "trend_finding"}


# --------------------------------------------------------------------------- inputs
def _leaderboard():
    n = 15
    names = NAMES + [f"Account {i}" for i in range(n - len(NAMES))]
    return pd.DataFrame({"account_id": [f"A{i}" for i in range(n)], "account_name": names,
                         "score": np.linspace(100, 10, n), "decision_makers_engaged": [i % 4 for i in range(n)]})


def _trend():
    dates = pd.date_range("2026-07-01", periods=4, freq="W")
    return pd.DataFrame([{"as_of": d, "account_id": a, "score": float(i + j)}
                         for i, a in enumerate(NAMES) for j, d in enumerate(dates)])


def _mapping_report(with_accuracy=True):
    by_method = pd.DataFrame({"method": ["crm", "domain", "fuzzy_name", "unmatched"],
                              "contacts": [50, 30, 10, 10], "share": [0.5, 0.3, 0.1, 0.1]})
    confidence = pd.DataFrame({"band": NAMES, "contacts": [10, 20, 30, 25, 5]})
    reasons = pd.DataFrame({"method": ["unmatched"] * len(NAMES), "reason": NAMES, "contacts": [1, 2, 3, 2, 2]})
    accuracy = pd.DataFrame({"method": NAMES + ["unmatched"], "precision": [0.9, 0.8, 0.7, 0.6, 0.5, np.nan],
                             "recall": [0.5, 0.6, 0.7, 0.8, 0.9, np.nan]})
    return SimpleNamespace(by_method=by_method, confidence=confidence, reasons=reasons,
                           accuracy=accuracy if with_accuracy else None)


CHANNELS = [CASH, FORMULA, UNDER]
MODELS = [PERCENT, ALPHA, "last_touch"]
#: how the models show: a code name in words ("last_touch" → "Last touch"), data names as they are
SHOWN_MODELS = [PERCENT, ALPHA, "Last touch"]


def _intervals():
    rows = [{"channel": c, "model": m, "share": 1 / 3, "low": 0.2, "high": 0.45} for c in CHANNELS for m in MODELS]
    return pd.DataFrame(rows)


def _shares():
    return pd.DataFrame(np.full((len(CHANNELS), len(MODELS)), 1 / 3), index=CHANNELS, columns=MODELS)


def _rank_correlation():
    return pd.DataFrame(np.eye(len(NAMES)), index=NAMES, columns=NAMES)


def _disagreement():
    return pd.DataFrame({"channel": NAMES, "min_share": [0.1] * 5, "max_share": [0.3, 0.4, 0.5, 0.2, 0.35],
                         "mean_share": [0.2] * 5, "range": [0.2, 0.3, 0.4, 0.1, 0.25]})


def _journey():
    t = pd.date_range("2026-07-01", periods=len(NAMES), freq="D", tz="UTC")
    return pd.DataFrame({"conversion_id": [CASH] * len(NAMES), "account_id": "A1", "channel": NAMES,
                         "occurred_at": t, "position": range(len(NAMES)), "n_touches": len(NAMES),
                         "is_first": [True] + [False] * 4, "is_mqa": [False, False, True, False, False],
                         "is_opportunity_created": [False] * 4 + [True],
                         "converted_at": t[-1] + pd.Timedelta(days=1),
                         PERCENT: [0.2] * 5, ALPHA: [1.0, 0, 0, 0, 0]})


def _sweep():
    return pd.DataFrame([{"channel": c, "share": 0.1 * (i + 1) + 0.01 * v, "value": v, "param": FORMULA}
                         for i, c in enumerate(NAMES) for v in (1, 2, 3)])


def _influence_table():
    n = len(NAMES)
    return pd.DataFrame({"unit": NAMES, "transition": [f"aware→engaged {ALPHA}"] * n,
                         "diff": [0.05, -0.02, 0.10, 0.01, 0.20], "adj_diff": [0.02, 0.01, 0.03, -0.05, 0.04],
                         "adj_diff_low": [-0.01, -0.02, 0.0, -0.08, 0.01], "adj_diff_high": [0.05, 0.04, 0.06, -0.02, 0.07],
                         "significant": [True, False, True, False, True]})


def _truth():
    t = _influence_table()
    labels = (t["unit"] + "  " + t["transition"]).tolist()
    return pd.DataFrame({"label": labels, "att_diff": [0.01] * len(labels)})


def _overall():
    return pd.DataFrame({"kpi": [CASH, "win_rate", "roi"], "value": [0.4, 0.25, 1.5],
                         "unit": ["ratio", "ratio", "count"], "previous": [0.3, 0.2, np.nan],
                         "change": [0.1, 0.05, np.nan], "population": [f"{FORMULA} accounts", PERCENT, ""],
                         "population_size": [120, 80, np.nan]})


def _history():
    return pd.DataFrame([{"kpi": k, "period": p, "value": v, "unit": "ratio"}
                         for k in (CASH, "win_rate") for p, v in ((FORMULA, 0.2), (UNDER, 0.3), (PERCENT, 0.25))])


def _funnel():
    return pd.DataFrame({"step": ["population", "reached", CASH, "won"], "accounts": [100, 60, 30, 5],
                         "share_of_population": [1.0, 0.6, 0.3, 0.05],
                         "share_of_previous_step": [np.nan, 0.6, 0.5, 1 / 6],
                         "population": [FORMULA] * 4})


def _pipeline():
    return pd.DataFrame({"period": NAMES, "created_amount": [1e5, 2e5, 3e5, 4e5, 5e5],
                         "influenced_amount": [5e4] * 5, "won_amount": [1e4] * 5})


def _segments():
    return pd.DataFrame([{"kpi": "win_rate", "segment": seg, "segment_value": v, "unit": "ratio",
                          "value": 0.1 * (i + 1), "previous": 0.1}
                         for seg in ("size_band", CASH) for i, v in enumerate(NAMES)])


# --------------------------------------------------------------------------- cases
#: name -> (call building the figure, strings from the data that must show literally)
CASES = {
    # cleaning
    "rows_per_table_chart": (lambda: plots.rows_per_table_chart(pd.DataFrame(
        [{"table": t, "outcome": o, "rows": r} for t in NAMES for o, r in (("clean", 90), ("rejected", 7),
                                                                          ("merged", 3))])), NAMES),
    "rejects_by_reason_chart": (lambda: plots.rejects_by_reason_chart(pd.DataFrame(
        {"reason_code": NAMES, "rows": [5, 4, 3, 2, 1], "table": [CASH, FORMULA, CASH, UNDER, ALPHA]})), NAMES),
    "touches_per_month_chart": (lambda: plots.touches_per_month_chart(pd.DataFrame(
        [{"month": m, "touches": i + j, "channel": c} for i, c in enumerate(NAMES)
         for j, m in enumerate(pd.date_range("2026-05-01", periods=4, freq="MS"))]),
        period=quarter_period("2026Q3")), NAMES),
    # mapping and engagement
    "mapping_overview": (lambda: plots.mapping_overview(_mapping_report()), NAMES),
    "mapping_accuracy_chart": (lambda: plots.mapping_accuracy_chart(_mapping_report()), NAMES),
    "engagement_leaderboard_chart": (lambda: plots.engagement_leaderboard_chart(_leaderboard()), NAMES),
    "engagement_trend_chart": (lambda: plots.engagement_trend_chart(_trend()), NAMES),
    "mqa_timeline_chart": (lambda: plots.mqa_timeline_chart(pd.DataFrame(
        {"account_id": NAMES, "mqa_at": pd.date_range("2026-07-01", periods=5, freq="D")})), []),
    # attribution
    "attribution_share_bars": (lambda: plots.attribution_share_bars(_intervals()), CHANNELS + SHOWN_MODELS),
    "attribution_share_panels": (lambda: plots.attribution_share_panels(_intervals()), CHANNELS),
    "attribution_share_heatmap": (lambda: plots.attribution_share_heatmap(_shares()), CHANNELS + SHOWN_MODELS),
    "attribution_rank_correlation": (lambda: plots.attribution_rank_correlation(_rank_correlation()), NAMES),
    "attribution_disagreement_bars": (lambda: plots.attribution_disagreement_bars(_disagreement()), NAMES),
    "attribution_journey_timeline": (lambda: plots.attribution_journey_timeline(_journey()),
                                     NAMES + [f"One conversion's journey: 5 touches over 5 channels (conversion {CASH})"]),
    "attribution_sensitivity_lines": (lambda: plots.attribution_sensitivity_lines(_sweep()), NAMES),
    "attribution_trend_lines": (lambda: plots.attribution_trend_lines(pd.DataFrame(
        {"channel": NAMES, "Q2 2026": [0.3, 0.2, 0.2, 0.2, 0.1], "Q3 2026": [0.1, 0.2, 0.2, 0.2, 0.3]}), "linear"),
        NAMES),
    # progression and uplift
    "stage_funnel_chart": (lambda: plots.stage_funnel_chart(
        pd.DataFrame({"stage": NAMES, "count": [50, 40, 30, 20, 10]}),
        pd.DataFrame({"step": NAMES, "count": [500, 400, 300, 200, 100]})), NAMES),
    "stage_distribution_chart": (lambda: plots.stage_distribution_chart(pd.DataFrame(
        [{"as_of": d, "stage": s, "share": 0.5} for d in pd.date_range("2026-07-01", periods=3, freq="MS")
         for s in ("aware", "engaged")])), []),   # stage names are the fixed ladder, not data
    "progression_rate_chart": (lambda: plots.progression_rate_chart(pd.DataFrame(
        [{"transition": t, "rate": 0.3, "size_band": b} for t in (CASH, FORMULA) for b in (UNDER, PERCENT, ALPHA)]),
        by="size_band"), NAMES),
    "velocity_curve_chart": (lambda: plots.velocity_curve_chart(pd.DataFrame(
        [{"transition": t, "days": d, "still_in_stage": 1 - d / 40} for t in NAMES for d in (0, 10, 20, 30)])),
        NAMES),
    "uplift_forest_chart": (lambda: plots.uplift_forest_chart(_influence_table(), truth=_truth()),
                            [f"{n} · Aware → engaged {ALPHA}" for n in NAMES]),
    "naive_vs_adjusted_chart": (lambda: plots.naive_vs_adjusted_chart(
        _influence_table().assign(transition=[CASH, FORMULA, UNDER, PERCENT, ALPHA])), NAMES),
    # KPI report
    "kpi_tiles": (lambda: plots.kpi_tiles(_overall(), ncols=2, title=CASH),
                  [CASH, f"{FORMULA} accounts (120)", f"{PERCENT} (80)"]),
    "kpi_trends": (lambda: plots.kpi_trends(_history()), [CASH, FORMULA, UNDER, PERCENT]),
    "funnel_chart": (lambda: plots.funnel_chart(_funnel(), title=ALPHA), [FORMULA, CASH, ALPHA]),
    "pipeline_chart": (lambda: plots.pipeline_chart(_pipeline(), title=CASH), NAMES),
    "segment_chart": (lambda: plots.segment_chart(_segments(), "win_rate"), NAMES),
}

#: empty or degenerate inputs take other code paths (a "nothing to show" figure);
#: their titles and labels must be plain text too
EMPTY_CASES = {
    "rejects_by_reason_chart": lambda: plots.rejects_by_reason_chart(
        pd.DataFrame(columns=["reason_code", "rows", "table"])),
    "touches_per_month_chart": lambda: plots.touches_per_month_chart(
        pd.DataFrame(columns=["month", "touches", "channel"])),
    "attribution_share_bars": lambda: plots.attribution_share_bars(
        pd.DataFrame(columns=["channel", "model", "share", "low", "high"])),
    "stage_funnel_chart": lambda: plots.stage_funnel_chart(pd.DataFrame(columns=["stage", "count"])),
    "naive_vs_adjusted_chart": lambda: plots.naive_vs_adjusted_chart(
        pd.DataFrame(columns=["diff", "adj_diff", "transition", "unit"])),
    "uplift_forest_chart": lambda: plots.uplift_forest_chart(
        pd.DataFrame(columns=["unit", "transition", "adj_diff", "adj_diff_low", "adj_diff_high"])),
}


def _texts(fig) -> list[mtext.Text]:
    return [t for t in fig.findobj(mtext.Text) if t.get_text()]


def _draw(fig) -> None:
    """Save to PNG in memory the way a notebook shows it: later, under the caller's rcParams."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue()[:4] == b"\x89PNG"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_every_public_plot_function_is_covered():
    figures = set(plots.__all__) - NOT_FIGURES
    assert not (figures - set(CASES)), f"add a hostile-name case for {sorted(figures - set(CASES))}"
    assert not (set(CASES) - figures), f"stale cases: {sorted(set(CASES) - figures)}"
    assert NOT_FIGURES <= set(plots.__all__)


def test_every_public_plot_function_uses_the_plain_text_decorator():
    """One place turns math-text off (``abmkit.plots._text.plain_text``); each figure
    function, as exported and in its own module, goes through it."""
    import importlib
    for name in sorted(set(plots.__all__) - NOT_FIGURES):
        func = getattr(plots, name)
        module = importlib.import_module(func.__module__)
        assert getattr(func, "__plain_text__", False), f"{name} lacks @plain_text"
        assert getattr(module, name) is func


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_names_draw_as_plain_text(name):
    make, expected = CASES[name]
    fig = make()
    assert isinstance(fig, plt.Figure)
    _draw(fig)   # must not raise (math-text ParseException / ValueError)
    texts = _texts(fig)
    # a legend label starting with "_" carries an invisible guard (matplotlib would drop it)
    shown = {t.get_text().removeprefix(LEGEND_GUARD) for t in texts}
    # a name may also stand inside a title that states a finding ("Ca$$h Corp: 25% (+5 pts)"),
    # possibly wrapped over lines: literally, not escaped or mangled
    flat = [s.replace("\n", " ") for s in shown]
    missing = [s for s in expected if s not in shown and not any(s in f for f in flat)]
    assert not missing, f"{name}: not shown literally: {missing!r}; texts were {sorted(shown)!r}"
    parsed = [t.get_text() for t in texts if t.get_parse_math() or t.get_usetex()]
    assert not parsed, f"{name}: texts still parsed as math-text/TeX: {parsed!r}"


@pytest.mark.parametrize("name", sorted(EMPTY_CASES))
def test_empty_inputs_draw_as_plain_text(name):
    fig = EMPTY_CASES[name]()
    _draw(fig)
    parsed = [t.get_text() for t in _texts(fig) if t.get_parse_math() or t.get_usetex()]
    assert not parsed, f"{name}: texts still parsed as math-text/TeX: {parsed!r}"


def test_leaderboard_with_cash_corp_in_top_15_renders():
    """The reported case: one account name with ``$$`` in the top 15."""
    board = _leaderboard()
    fig = plots.engagement_leaderboard_chart(board)
    _draw(fig)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert CASH in labels and FORMULA in labels


def test_later_redraw_at_another_size_stays_plain():
    """A notebook may resize and redraw the figure after the plot function returned:
    tick labels created then (outside the plot function) carry no data text, and the
    data texts keep their plain setting."""
    fig = plots.engagement_leaderboard_chart(_leaderboard())
    _draw(fig)
    fig.set_size_inches(16, 12)
    _draw(fig)
    data = [t for t in _texts(fig) if t.get_text() in NAMES]
    assert data and not any(t.get_parse_math() for t in data)


def test_global_rcparams_untouched():
    """The plain-text setting is per figure: global rcParams (notebooks, other code) are not changed."""
    before = {k: matplotlib.rcParams[k] for k in ("text.parse_math", "text.usetex", "axes.formatter.use_mathtext")}
    plots.engagement_leaderboard_chart(_leaderboard())
    plots.kpi_tiles(_overall(), ncols=2, title=CASH)
    after = {k: matplotlib.rcParams[k] for k in before}
    assert after == before
    fig, ax = plt.subplots()
    assert ax.set_title("$x^2$").get_parse_math() is matplotlib.rcParams["text.parse_math"]


def test_other_rcparams_set_during_a_plot_call_are_kept():
    """In a fresh kernel the first plot call imports the inline backend, whose activation
    sets ``interactive`` and the inline figure settings: reverting those (as
    ``matplotlib.rc_context`` would) stops later figures from being shown in the
    report (notebook 05 showed 3 of its 9 figures). Only the plain-text keys are restored."""
    from abmkit.plots._text import plain_text

    @plain_text
    def activating_backend():
        assert matplotlib.rcParams["text.parse_math"] is False
        matplotlib.interactive(not was_interactive)
        matplotlib.rcParams["figure.facecolor"] = "#123456"
        return plt.figure()

    was_interactive, facecolor = matplotlib.is_interactive(), matplotlib.rcParams["figure.facecolor"]
    parse_math = matplotlib.rcParams["text.parse_math"]
    try:
        activating_backend()
        assert matplotlib.is_interactive() is (not was_interactive)
        assert matplotlib.rcParams["figure.facecolor"] == "#123456"
        assert matplotlib.rcParams["text.parse_math"] == parse_math
    finally:
        matplotlib.interactive(was_interactive)
        matplotlib.rcParams["figure.facecolor"] = facecolor


def test_plot_errors_still_propagate_and_restore_rcparams():
    before = matplotlib.rcParams["text.parse_math"]
    with pytest.raises(ValueError, match="ground truth"):
        plots.mapping_accuracy_chart(_mapping_report(with_accuracy=False))
    assert matplotlib.rcParams["text.parse_math"] == before
