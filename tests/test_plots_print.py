"""Stakeholder pages in a browser and on paper: analyst-only cells left out of the HTML,
tables that fit a 1,280 px window, and the summary page printed on at most 4 A4 pages
next to its HTML (abmkit/report_assets: report.css, hide_analyst_cells, print_pdf).

The layout checks open the pages in headless Chromium and measure every element's
right edge (tests/browser_layout.py); without a Chromium on PATH they are skipped with
a message saying how to install it. The report test runs the real notebooks on the
small sample (marked ``notebook``).
"""
from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from abmkit import report, report_assets
from browser_layout import WIDE_ELEMENTS_JS, evaluate, find_chromium

REPO = Path(__file__).resolve().parents[1]
SKIP = ("no Chromium on PATH: the report's layout and print were NOT checked in a browser. Install one to run "
        "these checks, e.g. `sudo apt-get install chromium` (Debian/Ubuntu)")
MAX_SUMMARY_PAGES = 4


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if not path:
        warnings.warn(SKIP)
        pytest.skip(SKIP)
    return path


def _wide_influence_frame(n: int = 30) -> pd.DataFrame:
    """The shape of the old stakeholder influence table: 20 columns, long names (~2,550 px)."""
    cols = ["campaign_name", "channel", "transition", "n_at_risk", "n_treated", "rate_treated", "rate_control",
            "diff", "diff_low", "diff_high", "adj_diff", "adj_diff_low", "adj_diff_high", "ratio", "q_value",
            "hazard_ratio", "acceleration_days", "baseline_rate", "lift_vs_baseline", "flag_reason"]
    rows = []
    for i in range(n):
        row = {c: 0.123456789 * (i + 1) for c in cols}
        row.update(campaign_name=f"Enterprise ABM Display Retargeting Programme {i}", channel="content_syndication",
                   transition="qualified->sales_ready",
                   flag_reason="covariate 'icp_fit' has one level (dropped); small group (treated 4, control 1563)")
        rows.append(row)
    return pd.DataFrame(rows, columns=cols)


def _page(tmp_path: Path, cells) -> Path:
    """Export a notebook with ready-made outputs (nothing executed) as a report page."""
    nb = new_notebook(cells=cells)
    src = tmp_path / "page.ipynb"
    nbformat.write(nb, str(src))
    return report.export_html(src, tmp_path / "page.html", title="Layout check")


def _html_cell(html: str, tags=()):
    cell = new_code_cell("display(table)", metadata={"tags": list(tags)} if tags else {})
    cell.outputs = [new_output("display_data", data={"text/html": html, "text/plain": "table"})]
    return cell


# --------------------------------------------------------------------------- HTML export (no browser)
def test_analyst_cells_are_left_out_and_appendix_cells_marked_for_print(tmp_path):
    page = _page(tmp_path, [
        new_markdown_cell("# Summary"),
        _html_cell("<p>stakeholder table</p>"),
        _html_cell("<p>use engine='dask' for big data; {'dataset': 1}</p>", tags=["analyst"]),
        new_markdown_cell("**Big data.** Dask advice", metadata={"tags": ["analyst"]}),
        _html_cell("<p>raw appendix table</p>", tags=["appendix"]),
    ])
    html = page.read_text("utf-8")
    assert "stakeholder table" in html and "raw appendix table" in html
    assert "engine='dask'" not in html and "Dask advice" not in html
    assert "celltag_appendix" in html                        # the print CSS leaves these out
    assert report_assets.REPORT_CSS.strip()[:40] in html     # the report style is inline (CSP: no external file)
    assert ".celltag_appendix" in report_assets.REPORT_CSS and "@page" in report_assets.REPORT_CSS


def test_hide_analyst_cells_keeps_the_order_of_the_rest():
    nb = new_notebook(cells=[new_markdown_cell("a"), new_markdown_cell("b", metadata={"tags": ["analyst", "x"]}),
                             new_markdown_cell("c", metadata={"tags": ["appendix"]})])
    assert [c.source for c in report_assets.hide_analyst_cells(nb).cells] == ["a", "c"]


def test_without_chromium_no_pdf_and_a_reason_never_a_crash(tmp_path, monkeypatch):
    monkeypatch.setattr(report_assets, "find_chromium", lambda: None)
    page = tmp_path / f"{report.SUMMARY_PAGE}.html"
    page.write_text("<html><body>summary</body></html>", "utf-8")
    pdf, why = report_assets.print_pdf(page, tmp_path / "x.pdf", browser=None)
    assert pdf is None and "no Chromium on PATH" in why and "apt-get install chromium" in why
    assert report._summary_pdf(tmp_path).startswith("not written: no Chromium on PATH")
    assert not list(tmp_path.glob("*.pdf"))
    assert report._summary_pdf(tmp_path / "empty").startswith("not written: no summary page")


def test_a_failing_browser_gives_a_reason(tmp_path):
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\necho 'cannot open display' >&2\nexit 3\n")
    fake.chmod(0o755)
    page = tmp_path / "p.html"
    page.write_text("<p>x</p>")
    pdf, why = report_assets.print_pdf(page, tmp_path / "p.pdf", browser=str(fake))
    assert pdf is None and "exit 3" in why and "cannot open display" in why
    assert not (tmp_path / "p.pdf").exists()


# --------------------------------------------------------------------------- in Chromium
def test_a_20_column_table_fits_a_1280_px_window(chromium, tmp_path):
    """The influence table used to run to ~2,550 px: with the report CSS every cell
    wraps and nothing passes the right edge of a 1,280 px window."""
    page = _page(tmp_path, [new_markdown_cell("# Influence"), _html_cell(_wide_influence_frame().to_html())])
    m = evaluate(chromium, page.resolve().as_uri(), WIDE_ELEMENTS_JS, width=1280)
    assert m["viewport"] == 1280
    assert m["n"] == 0, m["wide"]


def test_print_css_drops_appendix_and_exercises(chromium, tmp_path):
    """A page with 40 appendix tables prints as long as the page without them."""
    body = [new_markdown_cell("# Summary\n\n" + "A paragraph of the summary. " * 40)]
    big = [_html_cell(_wide_influence_frame(40).to_html(), tags=["appendix"]) for _ in range(4)] + [
        new_markdown_cell("## Exercise\n\n" + "question " * 400, metadata={"tags": ["exercise"]})]
    short = _page(tmp_path, body)
    pdf_short, why = report_assets.print_pdf(short, tmp_path / "short.pdf", browser=chromium)
    assert pdf_short is not None, why
    (tmp_path / "long").mkdir()
    long_page = _page(tmp_path / "long", body + big)
    pdf_long, why = report_assets.print_pdf(long_page, tmp_path / "long.pdf", browser=chromium)
    assert pdf_long is not None, why
    assert report_assets.pdf_page_count(pdf_long) == report_assets.pdf_page_count(pdf_short) == 1


@pytest.fixture(scope="module")
def sample_report(small_sample_dir, tmp_path_factory, chromium) -> Path:
    """The report of the small sample (every notebook), with its summary PDF."""
    data = tmp_path_factory.mktemp("print_sample") / "sample"
    shutil.copytree(small_sample_dir, data)
    out = data.parent / "reports"
    assert report.run_report(quarter="2026Q3", data=str(data), out_dir=str(out),
                             notebooks_dir=REPO / "notebooks", progress=False) == 0
    return out / "2026Q3"


def test_summary_pdf_is_written_next_to_its_html_on_at_most_4_pages(sample_report):
    pdf = sample_report / f"{report.SUMMARY_PAGE}.pdf"
    assert pdf.is_file() and pdf.read_bytes()[:5] == b"%PDF-"
    assert json.loads((sample_report / "run.json").read_text())["summary_pdf"] == pdf.name
    pages = report_assets.pdf_page_count(pdf)
    assert 1 <= pages <= MAX_SUMMARY_PAGES, f"the summary prints on {pages} A4 pages"


@pytest.mark.parametrize("page", ["03_attribution_model_comparison", "04_campaign_influence_on_progression",
                                  "05_quarterly_abm_report"])
def test_report_pages_fit_1280_px_and_hide_analyst_material(chromium, sample_report, page):
    html = sample_report / f"{page}.html"
    m = evaluate(chromium, html.resolve().as_uri(), WIDE_ELEMENTS_JS, width=1280)
    assert m["n"] == 0, m["wide"]
    text = html.read_text("utf-8")
    for analyst_only in ("--engine dask", "no truth_dir", "conversions_given", "'mapping_fingerprint'"):
        assert analyst_only not in text, analyst_only
    assert ">NaN<" not in text
