"""The one chart style (abmkit.plots.style) and the number/label formatting
(abmkit.formatting): what a stakeholder sees on a chart or in a table.

Every check draws a real figure or table from frames shaped like the analyses'
output (15 channels, 12 models, amounts in millions, shares near 90%) and asserts
what a reader would see: at most 8 colours, axes from zero, no "1e6", words instead
of snake_case, names instead of ids, and titles that state the finding computed from
the data (planted here, so each test knows the answer).
"""
from __future__ import annotations

import re

import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
pytest.importorskip("seaborn")

import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.text as mtext  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.collections import LineCollection, PathCollection  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.markers import MarkerStyle  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from abmkit import formatting, plots  # noqa: E402
from abmkit.plots import style  # noqa: E402

CHANNELS = ["paid_search", "paid_social", "display", "organic_search", "direct", "referral", "email", "webinar",
            "event", "content_syndication", "direct_mail", "sales_outreach", "partner", "review_site", "intent"]
MODELS = ["first_touch", "last_touch", "linear", "time_decay", "u_shaped", "w_shaped", "j_shaped", "inverse_j",
          "hubspot_u_shaped", "marketo_u_shaped", "markov", "shapley"]
SNAKE = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b")
#: not data colours: text, axes, grids, error bars, "Other", backgrounds
NEUTRALS = {"#000000", "#333333", "#ffffff", "#8c8c8c", "#eeeeee", "#cccccc", "#f6f8fa", "#d0d7de", "#808080",
            "#b0b0b0", "#666666", "#57606a"}


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _intervals(leader="email", leader_models=MODELS):
    """15 channels x 12 models; ``leader`` has the largest share under ``leader_models``,
    display under the others."""
    rows = []
    for m in MODELS:
        base = {c: 0.02 + 0.001 * i for i, c in enumerate(CHANNELS)}
        base[leader if m in leader_models else "display"] = 0.4
        total = sum(base.values())
        for c in CHANNELS:
            s = base[c] / total
            rows.append({"channel": c, "model": m, "share": s, "low": s * 0.8, "high": s * 1.2})
    return pd.DataFrame(rows)


def _title(ax) -> str:
    """The axes' title, wherever it is placed (the style puts titles on the left), on one line."""
    return (ax.get_title("left") or ax.get_title()).replace("\n", " ")


def _texts(fig) -> list[str]:
    return [t.get_text() for t in fig.findobj(mtext.Text) if t.get_text()]


def _data_colors(fig) -> set[str]:
    """Distinct colours of the data artists (bars, lines, markers), neutrals aside."""
    found = set()
    for ax in fig.axes:
        for a in ax.get_children():
            cols = []
            if isinstance(a, Line2D) and a.get_visible() and len(a.get_xdata()):
                drawn_line = a.get_linestyle() not in ("None", "none", "", " ")
                has_marker = a.get_marker() not in ("None", "none", "", " ", None)
                filled = has_marker and MarkerStyle(a.get_marker()).is_filled()   # "|" caps have no face
                cols = ([a.get_color()] if drawn_line else []) + ([a.get_markeredgecolor()] if has_marker else []) \
                    + ([a.get_markerfacecolor()] if filled else [])
            elif isinstance(a, Rectangle) and a is not ax.patch and a.get_width() and a.get_height():
                cols = [a.get_facecolor()]
            elif isinstance(a, (PathCollection, LineCollection)):
                cols = list(a.get_facecolor()) + list(a.get_edgecolor())
            for c in cols:
                try:
                    h = to_hex(c, keep_alpha=False).lower()
                except (ValueError, TypeError):
                    continue
                if h not in NEUTRALS:
                    found.add(h)
    return found


# --------------------------------------------------------------------------- palette
def test_palette_is_okabe_ito_and_refuses_a_ninth_colour():
    assert style.colors(8) == ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#000000",
                               "#F0E442"]
    assert len(set(style.colors(8))) == 8
    with pytest.raises(ValueError, match="at most 8"):
        style.colors(9)
    assert style.color_map(["a", "Other"]) == {"a": "#0072B2", "Other": style.NEUTRAL}


@pytest.mark.parametrize("make", [
    pytest.param(lambda: plots.attribution_share_bars(_intervals()), id="share_bars_12_models"),
    pytest.param(lambda: plots.attribution_share_panels(_intervals()), id="share_panels"),
    pytest.param(lambda: plots.attribution_sensitivity_lines(pd.DataFrame(
        [{"param": "half_life_days", "value": v, "channel": c, "share": 1 / 15 + 0.001 * i * v}
         for v in (1, 7, 30) for i, c in enumerate(CHANNELS)]), model="time_decay"), id="sensitivity_15_channels"),
    pytest.param(lambda: plots.touches_per_month_chart(pd.DataFrame(
        [{"month": m, "channel": c, "touches": 100 + 10 * i}
         for m in pd.date_range("2026-01-01", periods=6, freq="MS") for i, c in enumerate(CHANNELS)])),
        id="touches_per_month_15_channels"),
    pytest.param(lambda: plots.velocity_curve_chart(pd.DataFrame(
        [{"transition": f"s{i}->s{i + 1}", "days": d, "still_in_stage": 1 - d / 100}
         for i in range(11) for d in (0, 30, 60)])), id="velocity_11_transitions"),
])
def test_no_chart_uses_more_than_eight_colours(make):
    """The 180-bar chart had 12 paired pastel colours: now a chart never shows more than 8."""
    fig = make()
    fig.canvas.draw()
    colours = _data_colors(fig)
    assert 1 <= len(colours) <= 8, sorted(colours)
    assert colours <= {c.lower() for c in style.PALETTE}, sorted(colours - {c.lower() for c in style.PALETTE})


def test_share_bars_show_at_most_the_key_models_and_any_chosen_set():
    fig = plots.attribution_share_bars(_intervals())
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == [formatting.model_label(m) for m in plots.KEY_MODELS]
    fig = plots.attribution_share_bars(_intervals(), models=["markov", "first_touch"])
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == [formatting.model_label("markov"),
                                                                            "First touch"]
    with pytest.raises(ValueError, match="at most 8"):
        plots.attribution_share_bars(_intervals(), models=MODELS)


# --------------------------------------------------------------------------- axes
def _history(values, unit):
    return pd.DataFrame({"kpi": "market_reach", "period": ["2025Q4", "2026Q1", "2026Q2", "2026Q3"],
                         "value": values, "unit": unit})


@pytest.mark.parametrize("values, unit", [([0.905, 0.92, 0.93, 0.929], "ratio"), ([184, 210, 205, 222], "accounts"),
                                          ([4.4e6, 5.3e6, 5.05e6, 5.85e6], "currency")])
def test_trend_axes_start_at_zero(values, unit):
    """Reach 90.5-93% used to fill the whole axis: a share, a count or an amount starts at 0."""
    fig = plots.kpi_trends(_history(values, unit))
    fig.canvas.draw()
    assert fig.axes[0].get_ylim()[0] == 0


def test_amount_axes_read_in_millions_without_offset():
    pipe = pd.DataFrame({"period": ["2026Q1", "2026Q2", "2026Q3"], "created_amount": [5.3e6, 5.05e6, 5.85e6],
                         "influenced_amount": [5.3e6, 5.05e6, 5.85e6], "won_amount": [3.2e6, 2.9e6, 3.6e6]})
    fig = plots.pipeline_chart(pipe)
    fig.canvas.draw()
    ax = fig.axes[0]
    ticks = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert ax.get_ylim()[0] == 0
    assert ax.yaxis.get_offset_text().get_text() == ""          # no "1e6" above the axis
    assert any(t.endswith("M") for t in ticks) and not any("e" in t for t in ticks), ticks
    # the finding: created pipeline of the last period and its change on the one before (+16%)
    assert "5.85M pipeline created in Q3 2026, up 16% on Q2 2026" in _title(ax)


@pytest.mark.parametrize("value, text", [(0, "0"), (250_000, "250k"), (1_500_000, "1.5M"), (6_000_000, "6M"),
                                         (2_000_000_000, "2B")])
def test_axis_amounts(value, text):
    assert style.axis_amount(value) == text


# --------------------------------------------------------------------------- labels
def test_segment_chart_shows_words_and_tiers_not_codes():
    seg = pd.DataFrame([{"kpi": "market_reach", "segment": s, "segment_value": v, "unit": "ratio", "value": x,
                         "previous": x}
                        for s, v, x in (("industry", "financial_services", 0.95), ("industry", "retail", 0.85),
                                        ("tier", 1, 0.97), ("tier", 3, 0.88))])
    fig = plots.segment_chart(seg, "market_reach")
    texts = _texts(fig)
    assert "Financial services" in texts and "Tier 1" in texts and "Tier 3" in texts
    assert "financial_services" not in texts and "1" not in [t.get_text() for t in fig.axes[1].get_xticklabels()]
    assert any("highest in Financial services (95.0%), lowest in Retail (85.0%)" in t.replace("\n", " ")
               for t in texts)


@pytest.mark.parametrize("make", [
    pytest.param(lambda: plots.attribution_share_heatmap(_intervals().pivot_table(index="channel", columns="model",
                                                                                 values="share")), id="heatmap"),
    pytest.param(lambda: plots.attribution_share_bars(_intervals()), id="share_bars"),
    pytest.param(lambda: plots.attribution_rank_correlation(pd.DataFrame(
        np.full((12, 12), 0.9) + np.eye(12) * 0.1, index=MODELS, columns=MODELS)), id="rank_correlation"),
    pytest.param(lambda: plots.attribution_share_panels(_intervals()), id="panels"),
])
def test_no_snake_case_on_attribution_charts(make):
    texts = _texts(make())
    snake = [t for t in texts if SNAKE.search(t)]
    assert not snake, snake
    assert any("HubSpot" in t for t in texts) or any("Email" in t for t in texts)


def test_forest_plot_names_campaigns_and_colours_direction():
    t = pd.DataFrame({"unit": ["CMP003", "CMP007", "CMP009"], "campaign_name": ["Executive Gift Box", "Spring Webinar",
                                                                               "Enterprise Display"],
                      "transition": ["qualified->sales_ready", "engaged->qualified", "aware->engaged"],
                      "adj_diff": [0.30, 0.01, -0.226], "adj_diff_low": [0.2, -0.05, -0.3],
                      "adj_diff_high": [0.4, 0.07, -0.15], "significant": [True, False, True]})
    fig = plots.uplift_forest_chart(t)
    labels = [x.get_text() for x in fig.axes[0].get_yticklabels()]
    assert "Executive Gift Box · Qualified → sales ready" in labels
    assert not any("CMP" in x for x in labels)
    assert "2 of 3 campaign effects are clear; largest: Executive Gift Box · Qualified → sales ready helps" \
        in fig._suptitle.get_text().replace("\n", " ")
    legend = [x.get_text() for x in fig.axes[0].get_legend().get_texts()]
    assert legend == ["not significant", "significant: helps", "significant: hurts"]


# --------------------------------------------------------------------------- titles state the finding
def test_share_title_names_the_leader_computed_from_the_data():
    fig = plots.attribution_share_bars(_intervals(leader="email"))
    assert _title(fig.axes[0]) == "Email gets the most credit under all 7 models shown"
    fig = plots.attribution_share_bars(_intervals(leader="webinar"), models=["first_touch"])
    assert _title(fig.axes[0]).startswith("Webinar gets the most first touch credit (")
    fig = plots.attribution_share_bars(_intervals(leader="email", leader_models=["first_touch", "last_touch"]),
                                       models=["first_touch", "last_touch", "markov"])
    assert _title(fig.axes[0]) == (
        "Models disagree on the top channel: Email under First touch, Last touch; Display under Markov")


def test_panels_title_counts_the_models_a_channel_leads():
    fig = plots.attribution_share_panels(_intervals(leader="email", leader_models=MODELS[:9]))
    assert fig._suptitle.get_text().startswith("Email leads under 9 of 12 models: ")
    fig = plots.attribution_share_panels(_intervals(leader="webinar"))
    assert fig._suptitle.get_text().startswith("Webinar leads under every model: ")


def test_the_two_sensitivity_charts_have_distinct_titles_stating_what_moves():
    half = pd.DataFrame([{"param": "half_life_days", "value": v, "channel": c, "share": s}
                         for v, shares in ((1, {"email": 0.5, "display": 0.5}), (365, {"email": 0.2, "display": 0.6}))
                         for c, s in shares.items()])
    look = pd.DataFrame([{"param": "lookback_days", "value": v, "channel": c, "share": s}
                         for v, shares in ((30, {"email": 0.6, "webinar": 0.4}), (730, {"email": 0.55, "webinar": 0.45}))
                         for c, s in shares.items()])
    t1 = _title(plots.attribution_sensitivity_lines(half, model="time_decay").axes[0])
    t2 = _title(plots.attribution_sensitivity_lines(look, model="linear").axes[0])
    assert t1 != t2
    assert t1.startswith("Time decay: ") and "from 1 to 365 days (50% → 20%)" in t1
    assert t2.startswith("Linear: ") and "lookback window goes from 30 to 730 days" in t2


def test_funnel_title_names_the_biggest_drop():
    f = pd.DataFrame({"step": ["population", "reached", "with_engagement", "mqa", "opportunity", "won"],
                      "accounts": [831, 772, 767, 222, 36, 8],
                      "share_of_population": [1, 0.93, 0.92, 0.27, 0.04, 0.01],
                      "share_of_previous_step": [1, 0.93, 0.99, 0.29, 0.16, 0.22], "population": "target accounts"})
    title = _title(plots.funnel_chart(f, title="Funnel").axes[0])
    assert title.startswith("Biggest drop: MQA at period end → opportunity created (84% of accounts")


# --------------------------------------------------------------------------- formatting
@pytest.mark.parametrize("value, unit, text", [
    (5852327.39, "currency", "5.85M"), (29444.18, "currency", "29.4k"), (0.4123, "ratio", "41.2%"),
    (-0.226, "points", "-22.6 pts"), (83.237, "days", "83.2 days"), (0.0004, "pvalue", "<0.001"),
    (float("nan"), "ratio", "n/a"), (None, "currency", "n/a"), (1234.0, "count", "1,234"),
])
def test_format_value(value, unit, text):
    assert formatting.format_value(value, unit) == text


@pytest.mark.parametrize("name, label", [
    ("financial_services", "Financial services"), ("hubspot_u_shaped", "U-shaped (HubSpot: first / MQA)"),
    ("mqa_accounts", "MQA accounts"), ("aware->engaged", "Aware → engaged"), ("Acme Corp", "Acme Corp"),
    ("_under_", "_under_"), ("Ca$$h Corp", "Ca$$h Corp"),
])
def test_human_label(name, label):
    assert formatting.human_label(name) == label


def test_display_table_never_shows_nan_and_gives_the_reason():
    t = pd.DataFrame({"kpi": ["customer_lifetime_value", "market_reach"], "unit": ["currency", "ratio"],
                      "value": [np.nan, 0.929], "previous": [np.nan, 0.929], "change": [np.nan, 0.0],
                      "numerator": [np.nan, 772.0], "denominator": [np.nan, 831.0],
                      "population": ["customers", "target accounts"], "population_size": [145, 831],
                      "group": ["retention and growth", "reach and engagement"],
                      "note": ["n/a — no churn in the period: lifetime unbounded", ""]})
    shown = formatting.kpi_display_table(t)
    html = shown.to_html()
    assert "NaN" not in html and "nan" not in html
    assert shown.iloc[0]["This period"] == "n/a (no churn in the period: lifetime unbounded)"
    assert shown.iloc[1].tolist()[2:] == ["92.9%", "92.9%", "+0.0 pts", "772 of 831 target accounts"]


def test_influence_display_table_is_narrow_and_plain():
    """The 20-column influence table (~2,550 px) becomes 7 plain columns."""
    t = pd.DataFrame({"campaign_name": ["LinkedIn ABM", "Gift Box"], "unit": ["CMP001", "CMP002"],
                      "transition": ["aware->engaged", "qualified->sales_ready"], "n_treated": [587, 4],
                      "rate_treated": [0.431, 0.5], "rate_control": [0.22, 0.3], "adj_diff": [0.226, np.nan],
                      "adj_diff_low": [0.181, np.nan], "adj_diff_high": [0.271, np.nan], "q_value": [3.9e-21, np.nan],
                      "flag_reason": ["covariate 'icp_fit' has one level (dropped)",
                                      "small group (treated 4, control 1563; minimum 20)"]})
    shown = formatting.influence_display_table(t)
    assert list(shown.columns) == ["Campaign", "Move", "Exposed accounts", "Moved on: exposed vs unexposed",
                                   "Effect (95% interval)", "Clear effect?", "Note"]
    assert shown.iloc[0].tolist() == ["LinkedIn ABM", "Aware → engaged", "587", "43.1% vs 22.0%",
                                      "+22.6 pts (+18.1 to +27.1)", "yes (q < 0.001)", ""]
    assert shown.iloc[1]["Effect (95% interval)"].startswith("n/a (small group")
    assert shown.iloc[1]["Note"] == "too few exposed accounts (4) to judge"
    assert "CMP001" not in shown.to_html()


def test_attribution_trend_is_a_line_per_channel_with_at_most_eight_colours():
    """Page 05's attribution trend: the 7 biggest channels of the newest period and
    "Other" for the rest, zero-based shares, titled with the channel that moved most
    (hand-computed: direct goes 5% -> 20%, +15 pts); one period is not a trend."""
    shares = np.full((len(CHANNELS), 3), 1.0 / len(CHANNELS))
    shares[CHANNELS.index("direct")] = [0.05, 0.10, 0.20]
    shares[CHANNELS.index("email")] = [0.20, 0.12, 0.05]
    trend = pd.DataFrame({"channel": CHANNELS, "Q1 2026": shares[:, 0], "Q2 2026": shares[:, 1],
                          "Q3 2026": shares[:, 2]})
    fig = plots.attribution_trend_lines(trend, "linear")
    ax = fig.axes[0]
    lines = [ln for ln in ax.get_lines() if ln.get_label() and not ln.get_label().startswith("_")]
    assert len(lines) == 8 and len({to_hex(ln.get_color()) for ln in lines}) == 8
    labels = [ln.get_label() for ln in lines]
    assert labels[0] == "Direct" and labels[-1] == "Other"
    other = lines[-1].get_ydata()
    assert np.allclose(other, trend.set_index("channel").drop(index=[c for c in trend["channel"]
                       if style.human_label(c) in labels[:-1]]).sum().to_numpy())
    assert ax.get_ylim()[0] == 0
    assert _title(ax).startswith("Direct gained most: +15.0 pts from Q1 2026 to Q3 2026")
    assert plots.attribution_trend_lines(trend[["channel", "Q3 2026"]]) is None
