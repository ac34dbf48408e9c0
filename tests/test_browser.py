"""Open the report in headless Chromium: index.html and a notebook page load without
console errors (no script runs, no CSP violation), links are there, charts are
embedded images, and text from the data shows as text.

Needs a Chromium on PATH (``chromium``, ``chromium-browser`` or ``google-chrome``). A
test never installs anything: without one the tests are skipped with a message saying
how to install it (Debian/Ubuntu: ``sudo apt-get install chromium``).
"""
from __future__ import annotations

import re
import shutil
import subprocess
import warnings
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from abmkit import report
from abmkit.period import resolve_period

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]
XSS = "<script>alert(1)</script>"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
SKIP_MESSAGE = ("no Chromium on PATH (looked for " + ", ".join(BROWSERS) + "): the report HTML was NOT checked "
                "in a browser. Install it to run this check, e.g. `sudo apt-get install chromium` (Debian/Ubuntu)")


def find_chromium() -> str | None:
    """The first Chromium-family browser on PATH, or None (nothing is installed here)."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if not path:
        warnings.warn(SKIP_MESSAGE)  # in the warnings summary of a plain `make test`, not only with -rs
        pytest.skip(SKIP_MESSAGE)
    return path


def test_without_chromium_the_check_skips_and_says_how(monkeypatch):
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


def _open(chromium: str, page: Path, tmp_path: Path) -> tuple[str, list[str]]:
    r = subprocess.run([chromium, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                        page.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    console = [ln for ln in r.stderr.splitlines() if ":CONSOLE" in ln]
    return r.stdout, console


def test_index_page_loads(chromium, report_dir, tmp_path):
    dom, console = _open(chromium, report_dir / "index.html", tmp_path)
    assert console == []                                   # no script error, no CSP violation
    assert "<h1>ABM report 2026Q3</h1>" in dom
    assert 'href="01_check.html"' in dom and 'href="01_check.ipynb"' in dom
    assert "<script" not in dom.lower()
    assert "campaign &lt;script&gt;alert(1)&lt;/script&gt; cleaned" in dom   # data text shown as text


def test_notebook_page_loads_with_charts(chromium, report_dir, tmp_path):
    dom, console = _open(chromium, report_dir / "01_check.html", tmp_path)
    assert console == []
    assert len(re.findall(r'<img[^>]+src="data:image/png;base64,', dom)) >= 1
    assert "<script" not in dom.lower()                    # neither the template's nor the data's
    assert dom.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 2   # table cell and Markdown, as text
    assert "plt.subplots" not in dom                         # code-free
