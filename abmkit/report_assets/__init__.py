"""What the report pages look like outside the notebook: CSS, analyst-only cells, PDF.

* :data:`REPORT_CSS` — the style of every exported page (``report.css`` beside this
  file): a readable column that fits a 1,280 px window (tables wrap their cells, images
  scale), and print rules for A4 (cells tagged ``appendix`` are left out of print).
* :func:`hide_analyst_cells` — cells tagged ``analyst`` (diagnostics, dict dumps,
  conservation checks, engine advice) stay in the executed ``.ipynb`` for analysts and
  are removed from the stakeholder HTML; so are the training exercises (tag ``exercise``).
* :func:`find_chromium` / :func:`print_pdf` — a PDF of a page, printed by a headless
  Chromium when one is installed. Without one, :func:`print_pdf` returns why, and the
  report goes on without the PDF (it never fails for it, and never downloads a browser).

Example
-------
>>> import nbformat
>>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("kept"),
...                                      nbformat.v4.new_code_cell("x", metadata={"tags": ["analyst"]})])
>>> [c.source for c in hide_analyst_cells(nb).cells]
['kept']
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

__all__ = ["REPORT_CSS", "ANALYST_TAG", "EXERCISE_TAG", "APPENDIX_TAG", "hide_analyst_cells", "find_chromium", "print_pdf",
           "pdf_page_count", "BROWSERS", "PDF_TIMEOUT"]

#: cells with this tag are analyst material: in the .ipynb, not in the HTML
ANALYST_TAG = "analyst"
#: cells with this tag are training exercises (abmkit.training): in the .ipynb, not in the HTML
EXERCISE_TAG = "exercise"
#: cells with this tag are shown on screen and left out of print (raw tables)
APPENDIX_TAG = "appendix"
#: Chromium-family browsers looked for on PATH, in this order
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: seconds one PDF may take before the print is abandoned
PDF_TIMEOUT = 120
REPORT_CSS = resources.files(__name__).joinpath("report.css").read_text(encoding="utf-8")


def hide_analyst_cells(nb, tag: str | tuple = (ANALYST_TAG, EXERCISE_TAG)):
    """Remove the cells tagged ``tag`` (one tag or several; default: analyst material and
    the training exercises) from a notebook node (in place); return it."""
    tags = {tag} if isinstance(tag, str) else set(tag)
    nb.cells = [c for c in nb.cells if not tags & set(c.get("metadata", {}).get("tags") or [])]
    return nb


def find_chromium() -> str | None:
    """The first Chromium-family browser on PATH (``ABMKIT_CHROMIUM`` first, when set), or None."""
    env = os.environ.get("ABMKIT_CHROMIUM")
    if env:
        return shutil.which(env) or (env if Path(env).is_file() and os.access(env, os.X_OK) else None)
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def print_pdf(html_path: str | Path, pdf_path: str | Path, *, browser: str | None = None,
              timeout: float = PDF_TIMEOUT) -> tuple[Path | None, str]:
    """Print a local HTML page to PDF with headless Chromium (A4, the page's print CSS,
    no header or footer, no network). Returns ``(pdf_path, "")`` when written, else
    ``(None, reason)``: no browser, the browser failed or timed out. Never raises for a
    missing or failing browser."""
    html_path, pdf_path = Path(html_path).resolve(), Path(pdf_path)
    browser = browser or find_chromium()
    if not browser:
        return None, ("no Chromium on PATH (looked for " + ", ".join(BROWSERS) + "); install one "
                      "(Debian/Ubuntu: apt-get install chromium) to get the PDF")
    tmp_pdf = pdf_path.with_name(f".tmp-{os.getpid()}-{pdf_path.name}")
    with tempfile.TemporaryDirectory(prefix="abmkit-chromium-") as profile:
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
               "--disable-quic", f"--user-data-dir={profile}", "--no-pdf-header-footer",
               f"--print-to-pdf={tmp_pdf}", html_path.as_uri()]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            tmp_pdf.unlink(missing_ok=True)
            return None, f"Chromium did not finish the PDF within {timeout:.0f} s"
        except OSError as exc:
            return None, f"Chromium could not start: {exc}"
    if r.returncode != 0 or not tmp_pdf.exists() or tmp_pdf.stat().st_size == 0:
        tmp_pdf.unlink(missing_ok=True)
        last = (r.stderr or "").strip().splitlines()[-1:] or [""]
        return None, f"Chromium failed (exit {r.returncode}): {last[0][:200]}"
    os.replace(tmp_pdf, pdf_path)
    return pdf_path, ""


def pdf_page_count(pdf_path: str | Path) -> int:
    """Number of pages of a PDF written by Chromium (counts its page objects).

    >>> pdf_page_count.__name__
    'pdf_page_count'
    """
    import re

    data = Path(pdf_path).read_bytes()
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", data))
