"""Open the report in headless Chromium: index.html and a notebook page load without
console errors (no script runs, no CSP violation), links are there, charts are
embedded images, and text from the data shows as text.

On the full sample report (slow: it generates the sample and runs every notebook for
2026Q2 then 2026Q3), at a 1,280 px wide window: index.html, the summary page (05), one
campaign page and the index of all periods have no element wider than the window and
log nothing to the console; the executive summary is there with the KPI table's numbers
and every significant campaign effect, positive and negative; page 05 prints on at most
4 A4 pages; the period links to the previous one. The browser is driven by the one
DevTools client of tests/browser_layout.py.

Needs a Chromium on PATH (``chromium``, ``chromium-browser`` or ``google-chrome``). A
test never installs anything: without one the tests are skipped with a message saying
how to install it (Debian/Ubuntu: ``sudo apt-get install chromium``).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import warnings
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from abmkit import report
from abmkit.period import resolve_period
from browser_layout import BROWSERS, Browser, find_chromium

XSS = "<script>alert(1)</script>"
SKIP_MESSAGE = ("no Chromium on PATH (looked for " + ", ".join(BROWSERS) + "): the report HTML was NOT checked "
                "in a browser. Install it to run this check, e.g. `sudo apt-get install chromium` (Debian/Ubuntu)")
#: the summary page (05) printed on A4 takes at most this many pages
MAX_SUMMARY_PAGES = 4


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if not path:
        warnings.warn(SKIP_MESSAGE)  # in the warnings summary of a plain `make test`, not only with -rs
        pytest.skip(SKIP_MESSAGE)
    return path


@pytest.fixture(scope="module")
def browser(chromium, tmp_path_factory):
    b = Browser(chromium, tmp_path_factory.mktemp("profile"))
    yield b
    b.close()


def test_without_chromium_the_check_skips_and_says_how(monkeypatch):
    monkeypatch.delenv("ABMKIT_CHROMIUM", raising=False)
    monkeypatch.setattr(shutil, "which", lambda name, *args, **kwargs: None)
    assert find_chromium() is None
    assert "apt-get install chromium" in SKIP_MESSAGE


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory) -> Path:
    """A small report: one executed notebook with a chart and a table holding script
    text, exported as code-free HTML, and its index."""
    import papermill as pm

    d = tmp_path_factory.mktemp("browser_report")
    nb = new_notebook(cells=[
        new_markdown_cell("# Browser check"),
        new_code_cell("%matplotlib inline\nimport matplotlib.pyplot as plt, pandas as pd\n"
                      "from IPython.display import Markdown, display\n"
                      f"df = pd.DataFrame({{'campaign': [{XSS!r}, 'Spring'], 'pipeline': [3.0, 1.0]}})\n"
                      "fig, ax = plt.subplots(); ax.bar(df.campaign, df.pipeline); plt.show()\n"
                      "display(Markdown('Best: **' + df.campaign[0] + '**'))\ndf.style"),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    src = d / "src.ipynb"
    nbformat.write(nb, str(src))
    pm.execute_notebook(str(src), str(d / "01_check.ipynb"), kernel_name="python3", progress_bar=False)
    src.unlink()
    report.export_html(d / "01_check.ipynb", d / "01_check.html", title="Browser check")
    report.write_index(d, period=resolve_period("2026Q3"), run_date="2026-10-01 06:00 UTC", version="test",
                       quality={"headline": f"campaign {XSS} cleaned"},
                       notebooks=[{"stem": "01_check", "title": "Browser check", "seconds": 1.0}])
    return d


def test_index_page_loads(browser, report_dir):
    tab = browser.open(report_dir / "index.html")
    dom = tab.dom()
    assert tab.console() == []                             # no script error, no CSP violation
    assert "<h1>Quarterly ABM report: Q3 2026</h1>" in dom
    assert 'href="01_check.html"' in dom and 'href="01_check.ipynb"' in dom
    assert "<script" not in dom.lower()
    assert "campaign &lt;script&gt;alert(1)&lt;/script&gt; cleaned" in dom   # data text shown as text


def test_notebook_page_loads_with_charts(browser, report_dir):
    tab = browser.open(report_dir / "01_check.html")
    dom = tab.dom()
    assert tab.console() == []
    assert len(re.findall(r'<img[^>]+src="data:image/png;base64,', dom)) >= 1
    assert "<script" not in dom.lower()                    # neither the template's nor the data's
    assert dom.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 2   # table cell and Markdown, as text
    assert "plt.subplots" not in dom                         # code-free


# --------------------------------------------------------------------------- the full sample report
def test_the_browser_check_sees_wide_elements_and_console_errors(browser, tmp_path):
    """The check can fail: a block wider than the window and a script the page's CSP
    blocks are both reported (the real pages must show neither)."""
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" '
                    "content=\"default-src 'none'; style-src 'unsafe-inline'\"></head><body><p>fits</p>"
                    '<div style="width:2000px">x</div><script>console.log(1)</script></body></html>')
    tab = browser.open(page)
    layout = tab.layout()
    assert layout["viewport"] <= 1280 and layout["scroll_width"] > 1280
    assert [w[:2] for w in layout["wide"]] == [["DIV.", 2000]]
    assert tab.console(), "a blocked inline script must show as a console error"


@pytest.fixture(scope="module")
def sample_report(tmp_path_factory) -> Path:
    """The report of the full bundled sample (generated afresh: 2,000 accounts), 2026Q3,
    published after the report of 2026Q2 in the same reports folder (so the period links,
    the index of all periods and the attribution trend have a previous period).

    ``ABMKIT_FULL_SAMPLE_REPORT`` may name the 2026Q3 folder of such a report built
    before (``abmkit sample`` then ``abmkit report`` for 2026Q2 and 2026Q3): the checks
    then run on it instead of running every notebook twice again."""
    given = os.environ.get("ABMKIT_FULL_SAMPLE_REPORT")
    if given:
        return Path(given)
    from abmkit.sample import write_sample

    d = tmp_path_factory.mktemp("full_sample")
    data = write_sample(d / "sample")
    out = d / "reports"
    for quarter in ("2026Q2", "2026Q3"):
        assert report.run_report(quarter=quarter, data=str(data), out_dir=str(out), progress=False,
                                 notebooks_dir=Path(__file__).resolve().parents[1] / "notebooks") == 0
    return out / "2026Q3"


def _campaign_page(folder: Path) -> Path | None:
    pages = sorted((folder / "drilldown").glob("campaign_*.html"))
    return pages[0] if pages else None


@pytest.mark.slow
@pytest.mark.notebook
@pytest.mark.parametrize("page", ["index.html", "05_quarterly_abm_report.html", "campaign", "../index.html"])
def test_full_sample_report_fits_1280px_without_console_errors(browser, sample_report, page):
    """index.html, the summary page, one campaign page, and the index of all periods."""
    path = _campaign_page(sample_report) if page == "campaign" else sample_report / page
    assert path is not None, "the full sample report has no campaign page (drilldown/campaign_*.html)"
    tab = browser.open(path)
    layout = tab.layout()
    assert layout["viewport"] == 1280
    assert layout["scroll_width"] <= layout["viewport"], layout   # no sideways scrolling
    assert layout["n"] == 0, layout["wide"][:10]                  # no element wider than the window
    assert tab.console() == []                                    # no script error, no CSP violation


@pytest.mark.slow
@pytest.mark.notebook
def test_full_sample_summary_page_prints_on_at_most_4_a4_pages(browser, sample_report):
    pages = browser.open(sample_report / f"{report.SUMMARY_PAGE}.html").pdf_pages()
    assert 1 <= pages <= MAX_SUMMARY_PAGES, f"page 05 prints on {pages} A4 pages"


@pytest.mark.slow
@pytest.mark.notebook
def test_full_sample_periods_link_and_are_indexed(browser, sample_report):
    """The period page links to the previous period, the index of all periods lists
    both with their headline numbers, and page 05 shows the attribution trend."""
    dom = browser.open(sample_report / "index.html").dom()
    assert 'href="../2026Q2/index.html"' in dom and 'href="../index.html"' in dom
    assert "Quarterly ABM report: Q3 2026" in dom
    all_periods = browser.open(sample_report.parent / "index.html").text()
    assert all_periods.index("Q3 2026") < all_periods.index("Q2 2026")
    kpis = {q: json.loads(next((sample_report.parent / q / "findings").glob("05*.json")).read_text())
            for q in ("2026Q3", "2026Q2")}
    rows = {"2026Q3": all_periods[:all_periods.index("Q2 2026")], "2026Q2": all_periods[all_periods.index("Q2 2026"):]}
    for q, f in kpis.items():                                     # each row shows that period's saved numbers
        assert len(f["headline_numbers"]) >= 3
        for n in f["headline_numbers"][:report.MAX_INDEX_KPIS]:
            assert n["value"] in rows[q] and n["change"] in rows[q], (q, n)
    page05 = browser.open(sample_report / f"{report.SUMMARY_PAGE}.html").text()
    assert "Q2 2026" in page05[page05.index("Attribution over the last four periods"):]


@pytest.mark.slow
@pytest.mark.notebook
@pytest.mark.parametrize("page", ["index.html", "05_quarterly_abm_report.html"])
def test_full_sample_report_summary_matches_the_kpi_table(browser, sample_report, page):
    import pandas as pd

    from abmkit.formatting import format_value

    text = browser.open(sample_report / page).text()
    assert "Executive summary" in text
    top = text[:text.index("Executive summary") + 6000]
    kpis = pd.read_csv(sample_report / "tables" / "kpis.csv").set_index("kpi")
    f05 = json.loads(next((sample_report / "findings").glob("05*.json")).read_text())
    quoted = next(r for r in f05["executive_summary"] if r["kind"] == "key_numbers")["numbers"]
    assert len(quoted) >= 3 and {"market_reach", "mqa_accounts"} <= set(quoted)
    for k, shown in quoted.items():                              # each quoted number is its table's
        assert shown == format_value(kpis.loc[k, "value"], kpis.loc[k, "unit"]), k
        assert f"{shown} (" in top or f"{shown} of the" in top, k
    f04 = next((sample_report / "findings").glob("04*.json"))
    effects = json.loads(f04.read_text()).get("significant_campaign_effects") or []
    for sign, words in ((1, "helped accounts progress"), (-1, "held accounts back")):
        group = sorted((e for e in effects if e["adj_diff"] * sign > 0), key=lambda e: -abs(e["adj_diff"]))
        if group:                                                # positive and negative: counted, largest named
            assert f"{len(group)} campaign effect{'s' if len(group) != 1 else ''} {words}" in top
        for e in group[:3]:
            name = e.get("campaign") or e.get("campaign_name") or e.get("campaign_id")
            assert f"{name} (" in top and f"{e['adj_diff'] * 100:+.1f} pts" in top, e
        if len(group) > 3:
            assert f"and {len(group) - 3} more" in top
    if not effects:
        assert "No campaign changed how accounts progress" in top or "n/a" in top
