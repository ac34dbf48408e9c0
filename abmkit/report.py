"""The quarterly report: run the notebooks with papermill, export code-free HTML, write
an index, and swap the result in atomically (see docs/report_and_scheduling.md).

``python -m abmkit report --quarter 2026Q3 --data data/sample --out reports`` calls
:func:`run_report`. It

1. finds the raw export and its column map (``--preset``, ``<data>/raw/column_map.yaml``
   or ``<data>/column_map.yaml``);
2. discovers ``notebooks/[0-9][0-9]_*.ipynb`` and runs them with papermill, passing each
   only the parameters its ``parameters`` cell declares (common: ``data_dir``,
   ``quarter``, ``start``, ``end``, ``output_dir``, ``raw_dir``, ``column_map``,
   ``engine``, ``scheduler``; plus a YAML parameter file with global keys and
   per-notebook sections). A notebook starts once the notebooks it needs have finished
   (:data:`NOTEBOOK_STEPS`: 01 → 02 → {03, 04, 05}), up to ``jobs`` at a time; the kernel
   of the next notebook is started (and its imports loaded) while the one before runs;
3. writes everything into a staging folder next to ``reports/<label>/``; only when every
   notebook succeeded is the staging folder renamed into place, so a failed run leaves the
   previous report intact and says which notebook and cell failed;
4. the report holds each executed ``.ipynb``, a code-free HTML per notebook (outputs
   sanitised: text from the data is shown as text, never run as HTML/script; no external
   scripts; a Content-Security-Policy forbids scripts), ``tables/*.csv``,
   ``findings/*.json``, ``run.json`` (parameters, timings) and ``index.html``.

The cleaned canonical dataset written by notebook 01 holds personal data, so it is kept
*beside* the report, in ``<out>/.data/<label>/``, not inside the folder shared with
stakeholders; ``--only`` re-runs reuse it.

Example
-------
>>> run_report(quarter="2026Q3", data="data/sample", out_dir="reports")   # doctest: +SKIP
0
"""
from __future__ import annotations

import ast
import asyncio
import datetime as _dt
import html
import json
import os
import queue
import re
import shutil
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path


from .period import Period, resolve_period
from .private import private_dir, purge_private_leftovers, secure_tree  # issue 17 (finding 8)

__all__ = [
    "run_report", "discover_notebooks", "resolve_input", "default_quarter", "load_params_file",
    "notebook_parameters", "export_html", "sanitize_notebook", "write_index", "scan_privacy",
    "ReportError", "COMMON_PARAMETERS", "EMAIL_PATTERN", "findings_overview", "notebook_title",
    "NotebookStep", "NOTEBOOK_STEPS", "notebook_dependencies", "default_jobs",
]

#: parameters the runner sets for every notebook that declares them
COMMON_PARAMETERS = ("data_dir", "quarter", "start", "end", "output_dir", "raw_dir", "column_map",
                     "engine", "scheduler")
#: set by the runner only (a parameter file cannot move the data or the report)
_RUNNER_ONLY = frozenset({"data_dir", "output_dir", "quarter", "start", "end"})
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
KERNEL_NAME = "python3"
EMAIL_PATTERN = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
#: default quarter of the bundled sample when its data cannot be read
SAMPLE_QUARTER = "2026Q3"
#: seconds a kernel may take to start and answer (papermill's ``start_timeout``)
KERNEL_START_TIMEOUT = 120


class ReportError(ValueError):
    """A report cannot start: missing input, bad parameter file, no notebooks."""


@dataclass(frozen=True)
class NotebookStep:
    """What one report notebook needs and what it writes (see :data:`NOTEBOOK_STEPS`)."""
    #: numbers (``"01"``) of the notebooks whose outputs it reads: it starts after they finished
    needs: tuple[str, ...]
    #: what it writes that others read (documentation)
    produces: str
    #: typical seconds on the sample: among notebooks ready at the same time the longest
    #: starts first (the timings of the last run of the same period, in its run.json, win)
    cost: float = 1.0


#: The report's dependency graph, by notebook number (the ``NN`` of ``NN_*.ipynb``):
#: 01 → 02 → {03, 04, 05}. A notebook starts once every notebook it ``needs`` (among those
#: of the run) has finished; notebooks that do not depend on each other run in parallel,
#: up to ``jobs`` at a time. A notebook missing from this table runs after every notebook
#: before it (so a new notebook is safe until its dependencies are declared here), and
#: every notebook runs after the undeclared ones before it. Notebook 05 does not read the
#: findings of 01-04: the runner puts them in ``index.html`` once every notebook is done.
NOTEBOOK_STEPS: dict[str, NotebookStep] = {
    "01": NotebookStep((), "the cleaned canonical tables in data_dir (and the data-quality findings)", 3.0),
    "02": NotebookStep(("01",), "the resolved dataset in data_dir/resolved/ (abmkit.prepare: mapping, "
                                "MQA rule, MQA dates; data.save(data_dir))", 5.0),
    "03": NotebookStep(("02",), "attribution tables and findings (opens data_dir/resolved/)", 4.0),
    "04": NotebookStep(("02",), "progression and uplift tables and findings (opens data_dir/resolved/)", 5.0),
    "05": NotebookStep(("02",), "KPI tables and findings (opens data_dir/resolved/)", 7.0),
}


def notebook_dependencies(notebooks: list[Path]) -> dict[str, tuple[str, ...]]:
    """``{stem: stems it waits for}`` for the notebooks of one run (name order), from
    :data:`NOTEBOOK_STEPS`. A dependency that is not part of the run (``--only``) is
    already satisfied: its outputs come from the last full run.

    >>> deps = notebook_dependencies([Path(f"{n}_x.ipynb") for n in ("01", "02", "03", "05", "07")])
    >>> deps["02_x"], deps["05_x"], deps["07_x"]
    (('01_x',), ('02_x',), ('01_x', '02_x', '03_x', '05_x'))
    """
    stems = [p.stem for p in notebooks]
    deps: dict[str, tuple[str, ...]] = {}
    for i, stem in enumerate(stems):
        earlier = stems[:i]
        step = NOTEBOOK_STEPS.get(stem[:2])
        if step is None:
            deps[stem] = tuple(earlier)
            continue
        undeclared = {s for s in earlier if s[:2] not in NOTEBOOK_STEPS}
        deps[stem] = tuple(s for s in stems if s != stem and (s[:2] in step.needs or s in undeclared))
    return deps


def default_jobs(engine: str = "pandas") -> int:
    """Notebooks run at a time by default: one per core (two on a 2-core machine); one with
    ``engine="dask"``, whose notebooks each start a cluster sized to the machine."""
    if engine == "dask":
        return 1
    return max(1, os.cpu_count() or 1)


# --------------------------------------------------------------------------- inputs
def discover_notebooks(notebooks_dir: str | Path, only: str | None = None) -> list[Path]:
    """Notebooks named ``NN_*.ipynb`` in ``notebooks_dir``, in name order; with ``only``,
    those whose name contains it (comma-separated alternatives: ``"02,03"``)."""
    notebooks_dir = Path(notebooks_dir)
    found = sorted(p for p in notebooks_dir.glob(NOTEBOOK_GLOB) if p.is_file())
    if not found:
        raise ReportError(f"no notebooks matching {NOTEBOOK_GLOB} in {notebooks_dir.resolve()}")
    if only:
        wanted = [w.strip() for w in str(only).split(",") if w.strip()]
        picked = [p for p in found if any(w in p.name for w in wanted)]
        if not picked:
            raise ReportError(f"--only {only!r} matches none of {[p.name for p in found]}")
        return picked
    return found


def _default_notebooks_dir() -> Path:
    here = Path.cwd() / "notebooks"
    if here.is_dir():
        return here
    return Path(__file__).resolve().parents[1] / "notebooks"


def resolve_input(data: str | Path, preset: str | None = None,
                  column_map: str | Path | None = None) -> tuple[Path, str]:
    """``(raw_dir, column_map)`` for notebook 01.

    With ``preset`` (a built-in column map name) the raw export is ``data`` itself; with
    an explicit ``column_map`` path likewise; else ``<data>/raw/column_map.yaml`` (the
    sample layout) or ``<data>/column_map.yaml``.
    """
    data = Path(data)
    if not data.is_dir():
        raise ReportError(f"data folder {data} does not exist (create the sample with "
                          "`python -m abmkit sample --out data/sample`, or pass --data <export folder>)")
    if preset:
        return data, str(preset)
    if column_map:
        cm = Path(column_map)
        if not cm.exists():
            raise ReportError(f"column map {cm} does not exist")
        return (data / "raw" if (data / "raw").is_dir() else data), str(cm.resolve())
    for raw in (data / "raw", data):
        cm = raw / "column_map.yaml"
        if cm.exists():
            return raw, str(cm.resolve())
    raise ReportError(f"no column map found: looked for {data / 'raw' / 'column_map.yaml'} and "
                      f"{data / 'column_map.yaml'}; pass --preset salesforce|hubspot or "
                      "--column-map <file> (format: docs/column_map.md)")


def default_quarter(data: str | Path, today: _dt.date | None = None) -> str:
    """The last complete quarter covered by the data: read from a canonical copy
    (``<data>/canonical/touchpoints.parquet``, the sample layout) when there is one,
    else the last complete calendar quarter before ``today`` (a run scheduled on the
    first day of a quarter reports the quarter just ended)."""
    import pandas as pd

    from .kpis import last_complete_quarter

    today_ts = pd.Timestamp(today or _dt.datetime.now(_dt.timezone.utc).date(), tz="UTC")
    tp = Path(data) / "canonical" / "touchpoints.parquet"
    if tp.exists():
        try:
            ts = pd.read_parquet(tp, columns=["occurred_at"])["occurred_at"]
            return last_complete_quarter(ts, today=today_ts)
        except Exception:  # unreadable copy: fall back to the calendar  # noqa: BLE001
            pass
    return last_complete_quarter(pd.Series([], dtype="datetime64[ns, UTC]"), today=today_ts)


def load_params_file(path: str | Path | None, notebook_stems: list[str] = ()) -> tuple[dict, dict]:
    """Read a YAML parameter file into ``(global, sections)``.

    Top-level keys are global parameters, except keys naming a notebook (its stem,
    ``02_account_mapping``, or its number, ``"02"``) whose value is a mapping: those are
    that notebook's own parameters and win over global ones. Example::

        quarter: 2026Q3
        lookback_days: 180
        03_attribution:
          n_boot: 200
    """
    if path is None:
        return {}, {}
    path = Path(path)
    if not path.exists():
        raise ReportError(f"parameter file {path} does not exist")
    from .io.yaml import InputError, load_yaml

    try:  # bounded: size, aliases (billion laughs), depth; plain values only (no !!binary, !!set)
        raw = load_yaml(path, what="parameter file", hint="see docs/report_and_scheduling.md") or {}
    except InputError as exc:
        raise ReportError(str(exc)) from None
    if not isinstance(raw, dict):
        raise ReportError(f"parameter file {path} must be a mapping of name: value")
    # YAML reads an unquoted 02 as the integer 2: give it back its two digits
    raw = {(f"{k:02d}" if isinstance(k, int) and not isinstance(k, bool) and 0 <= k < 100 else str(k)): v
           for k, v in raw.items()}
    names = set(notebook_stems) | {s[:2] for s in notebook_stems}
    sections = {k: v for k, v in raw.items() if k in names and isinstance(v, dict)}
    global_ = {k: v for k, v in raw.items() if k not in sections}
    for k, v in list(global_.items()):
        if re.fullmatch(r"\d\d(_.*)?", k) and isinstance(v, dict):
            raise ReportError(f"parameter file {path}: section {k!r} names no notebook; notebooks: "
                              f"{list(notebook_stems)}")
    return global_, sections


def notebook_parameters(nb_path: Path, common: dict, global_params: dict, sections: dict) -> dict:
    """Parameters for one notebook: common runner values, then the parameter file's
    global keys, then its section for this notebook, keeping only names the notebook's
    ``parameters`` cell declares (papermill.inspect_notebook). Runner-only keys
    (data_dir, output_dir, quarter, start, end) are not overridable per notebook."""
    import papermill as pm

    declared = set(pm.inspect_notebook(str(nb_path)).keys())
    values = {k: v for k, v in common.items()}
    for src in (global_params, sections.get(nb_path.stem, {}), sections.get(nb_path.stem[:2], {})):
        for k, v in src.items():
            if k not in _RUNNER_ONLY:
                values[k] = v
    return {k: v for k, v in values.items() if k in declared}


# --------------------------------------------------------------------------- HTML
_ALLOWED_TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd", "div", "dl", "dt",
    "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "li", "ol", "p", "pre", "small", "span",
    "strong", "style", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
})
_ALLOWED_ATTRS = {"*": ["class", "id", "title", "align", "colspan", "rowspan", "border", "valign"],
                  "a": ["href", "title"], "img": ["src", "alt", "width", "height"]}
_DROP_MIMES = ("application/javascript", "application/vnd.jupyter.widget-view+json",
               "application/vnd.jupyter.widget-state+json", "text/javascript")


def _clean_html(text: str) -> str:
    import bleach

    # strip=False: a disallowed tag (<script>) is escaped and shown as text, not removed
    return bleach.clean(text, tags=_ALLOWED_TAGS, attributes=_ALLOWED_ATTRS,
                        protocols=["http", "https", "data", "mailto"], strip=False, strip_comments=True)


def sanitize_notebook(nb):
    """Make a notebook's rich outputs safe to open in a browser, in place.

    HTML outputs keep tables and formatting but any other tag (``<script>``, event
    handlers, ``<iframe>``) is escaped to visible text; Markdown outputs are rendered to
    HTML and cleaned the same way; JavaScript and widget outputs are dropped.
    pandas' own DataFrame HTML escapes cell text, but a Styler or an ``HTML()``/``Markdown()``
    display built from data would not, so every output is cleaned.
    """
    from nbconvert.filters.markdown import markdown2html

    # Markdown *cells* are authored text (trusted, and escaping them would break quotes and
    # code spans); only outputs can carry text from the data.
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data")
            if not data:
                continue
            for mime in _DROP_MIMES:
                data.pop(mime, None)
            if "text/markdown" in data:
                md = data.pop("text/markdown")
                data.setdefault("text/html", markdown2html("".join(md) if isinstance(md, list) else md))
            if "text/html" in data:
                v = data["text/html"]
                data["text/html"] = _clean_html("".join(v) if isinstance(v, list) else v)
            if "image/svg+xml" in data and ("image/png" in data or "text/plain" in data):
                data.pop("image/svg+xml")  # SVG may carry script; a PNG or text twin is shown instead
    return nb


_CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; "
        "base-uri 'none'; form-action 'none'")
_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{% block extra_css %}<meta http-equiv="Content-Security-Policy" content="__CSP__">{% endblock extra_css %}
""".replace("__CSP__", _CSP)


def _exporter():
    import jinja2
    from nbconvert import HTMLExporter

    return HTMLExporter(
        template_name="lab", template_file="abmkit_report.html.j2",
        extra_loaders=[jinja2.DictLoader({"abmkit_report.html.j2": _TEMPLATE})],
        exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True,
        embed_images=True, anchor_link_text="",
        # validate the notebook once, after all preprocessors, not after each one (nbformat
        # compiles its JSON schema again for every validation: ~40% of an export)
        optimistic_validation=True,
    )


def export_html(ipynb_path: str | Path, html_path: str | Path, title: str | None = None) -> Path:
    """Code-free, self-contained, script-free HTML of an executed notebook."""
    import nbformat

    nb = nbformat.read(str(ipynb_path), as_version=4)
    sanitize_notebook(nb)
    nb.metadata["title"] = title or Path(ipynb_path).stem
    body, _ = _exporter().from_notebook_node(nb, resources={"metadata": {"name": nb.metadata["title"]}})
    return _write_text(Path(html_path), body)


def _write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{path.name}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def notebook_title(nb_path: Path) -> str:
    """The first Markdown heading of a notebook (else its file stem)."""
    try:
        nb = json.loads(Path(nb_path).read_text("utf-8"))
        for cell in nb.get("cells", []):
            if cell.get("cell_type") == "markdown":
                src = "".join(cell.get("source", []))
                m = re.search(r"^\s*#+\s*(.+)$", src, re.M)
                if m:
                    return m.group(1).strip()
    except (OSError, ValueError):
        pass
    return Path(nb_path).stem


def _scalar_items(d: dict, prefix: str = "") -> list[tuple[str, object]]:
    items = []
    for k, v in d.items():
        if isinstance(v, dict):
            items.extend(_scalar_items(v, f"{prefix}{k}."))
        elif isinstance(v, (str, int, float, bool)) or v is None:
            items.append((f"{prefix}{k}", v))
    return items


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


_INDEX_CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:60rem;
color:#222;line-height:1.45;padding:0 1rem}h1{margin-bottom:.2rem}.meta{color:#555}table{border-collapse:collapse;
margin:.5rem 0 1.5rem}td,th{border-bottom:1px solid #ddd;padding:.3rem .8rem;text-align:left;vertical-align:top}
.ok{color:#1a7f37}.missing{color:#9a6700}.headline{background:#f6f8fa;border-left:4px solid #0969da;padding:.6rem 1rem}"""


def write_index(report_dir: str | Path, *, period: Period, notebooks: list[dict], run_date: str,
                version: str, quality: dict | None = None, findings: tuple[str, ...] | None = None) -> Path:
    """``index.html`` linking every part of the report. All text is escaped.

    ``notebooks``: dicts with ``stem``, ``title``, ``seconds`` (files are looked up in
    ``report_dir``); ``quality``: notebook 01's findings (data-quality headline);
    ``findings``: notebooks (stems or numbers) whose saved headline findings
    (``report_dir/findings/*.json``, see :func:`findings_overview`) are listed, read once
    every notebook has run (no notebook has to wait for the others to read them).
    """
    report_dir = Path(report_dir)
    e = lambda s: html.escape(str(s), quote=True)  # noqa: E731
    end_incl = (period.end - _dt.timedelta(days=1)).date()
    prev = period.previous
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>ABM report {e(period.label)}</title><style>{_INDEX_CSS}</style></head><body>",
        f"<h1>ABM report {e(period.label)}</h1>",
        f'<p class="meta">Data period: <strong>{e(period.start.date())} to {e(end_incl)}</strong> '
        f"(compared with {e(prev.start.date())} to {e((prev.end - _dt.timedelta(days=1)).date())})<br>"
        f"Run date: {e(run_date)} &middot; abmkit {e(version)}</p>",
    ]
    q = quality or {}
    parts.append("<h2>Data quality</h2>")
    if q:
        headline = q.get("headline") or q.get("summary")
        if isinstance(headline, str):
            parts.append(f'<p class="headline">{e(headline)}</p>')
        rows = [(k, v) for k, v in _scalar_items(q) if k not in ("headline", "summary")][:12]
        if rows:
            parts.append("<table>" + "".join(f"<tr><th>{e(k)}</th><td>{e(_fmt(v))}</td></tr>" for k, v in rows)
                         + "</table>")
        # the data sanity checks that fired (notebook 01 findings "sanity_warnings", abmkit.clean.sanity)
        sanity = [m for m in (q.get("sanity_warnings") or []) if isinstance(m, str)]
        if sanity:
            page = next((nb["stem"] for nb in notebooks if nb["stem"].startswith("01")), None)
            where = (f'<a href="{e(page)}.html">the cleaning page</a>'
                     if page and (report_dir / f"{page}.html").exists() else "notebook 01")
            table = ('<a href="tables/data_sanity.csv">tables/data_sanity.csv</a>'
                     if (report_dir / "tables" / "data_sanity.csv").exists() else "tables/data_sanity.csv")
            parts.append(f"<h3>Data sanity warnings ({len(sanity)})</h3>"
                         '<p class="meta">Values that read fine but cannot be true; each names the numbers it '
                         f"affects. Examples and what to do: {where} and {table}.</p>")
            parts.append("<ul>" + "".join(f"<li>{e(m)}</li>" for m in sanity) + "</ul>")
    else:
        parts.append('<p class="missing">No data-quality findings were saved by the cleaning notebook.</p>')
    if notebooks and (report_dir / f"{notebooks[-1]['stem']}.html").exists():
        last = notebooks[-1]
        parts.append(f'<p class="headline">Start with the summary: <a href="{e(last["stem"])}.html">'
                     f"{e(last.get('title') or last['stem'])}</a></p>")
    if findings:
        titles = {nb["stem"]: nb.get("title") or nb["stem"] for nb in notebooks}
        parts.append("<h2>Headline findings</h2>")
        parts.append('<p class="meta">As saved by each notebook in this run (findings/*.json); nothing is '
                     "recomputed here. Open a notebook's page for the detail and the caveats; \"not "
                     "available\" means that notebook saved no findings.</p>")
        parts.append("<table><tr><th>Notebook</th><th>Finding</th><th>Value</th></tr>")
        for row in _findings_rows(report_dir, tuple(findings)):
            nb = row["notebook"]
            title = titles.get(nb) or next((t for s, t in titles.items() if s.startswith(nb)), nb)
            parts.append(f"<tr><td>{e(title)}<br><small>{e(nb)}</small></td><td>{e(row['finding'])}</td>"
                         f"<td>{e(row['value'])}</td></tr>")
        parts.append("</table>")
    parts.append("<h2>Notebooks</h2><table><tr><th>Part</th><th>Page</th><th>Notebook</th><th>Run time</th></tr>")
    for nb in notebooks:
        stem = nb["stem"]
        html_link = (f'<a href="{e(stem)}.html">open page</a>' if (report_dir / f"{stem}.html").exists()
                     else '<span class="missing">not available</span>')
        nb_link = (f'<a href="{e(stem)}.ipynb">.ipynb</a>' if (report_dir / f"{stem}.ipynb").exists()
                   else '<span class="missing">not available</span>')
        secs = nb.get("seconds")
        parts.append(f"<tr><td><strong>{e(nb.get('title') or stem)}</strong><br><small>{e(stem)}</small></td>"
                     f"<td>{html_link}</td><td>{nb_link}</td>"
                     f"<td>{e(f'{secs:.1f} s') if isinstance(secs, (int, float)) else ''}</td></tr>")
    parts.append("</table>")
    for folder, label in (("tables", "Key tables (CSV)"), ("findings", "Findings (JSON)")):
        files = sorted((report_dir / folder).glob("*.csv" if folder == "tables" else "*.json"))
        parts.append(f"<h2>{e(label)}</h2>")
        if files:
            parts.append("<ul>" + "".join(f'<li><a href="{e(folder)}/{e(f.name)}">{e(f.name)}</a></li>'
                                          for f in files) + "</ul>")
        else:
            parts.append('<p class="missing">none</p>')
    if (report_dir / "run.json").exists():
        parts.append('<p class="meta">Run details (parameters, timings): <a href="run.json">run.json</a></p>')
    parts.append("<p class=\"meta\">Contacts appear only as masked ids; emails and names are never "
                 "written to this report. The executed notebooks (.ipynb) show the code behind every "
                 "number.</p></body></html>")
    return _write_text(report_dir / "index.html", "\n".join(parts))


#: the base64 payload of an embedded image (``src="data:image/png;base64,...``). It holds no
#: "@" and is followed by no character an address can continue with, so no match of
#: EMAIL_PATTERN touches it: skipping it gives the same matches, ~30x faster (the pattern
#: retries every position of a long run of letters and digits).
_BASE64_PAYLOAD = re.compile(r"(?<=base64,)[A-Za-z0-9+/=\s]{256,}+(?![._%\-@])")


def _email_matches(text: str):
    """``EMAIL_PATTERN.finditer(text)``, skipping embedded base64 payloads."""
    pos = 0
    for skip in _BASE64_PAYLOAD.finditer(text):
        yield from EMAIL_PATTERN.finditer(text, pos, skip.start())
        pos = skip.end()
    yield from EMAIL_PATTERN.finditer(text, pos)


def scan_privacy(report_dir: str | Path, extra_terms: list[str] = ()) -> list[tuple[str, str]]:
    """``(file, match)`` for every email address (or ``extra_terms`` string) found in
    the report's HTML and CSV files."""
    hits = []
    for path in sorted(Path(report_dir).rglob("*")):
        if path.suffix.lower() not in (".html", ".csv") or not path.is_file():
            continue
        text = path.read_text("utf-8", errors="replace")
        for m in _email_matches(text):
            hits.append((str(path), m.group(0)))
        for term in extra_terms:
            if term and term in text:
                hits.append((str(path), term))
    return hits


def _redact_emails(report_dir: Path) -> list[str]:
    """Replace email addresses in HTML/CSV files (a last line of defence: notebooks
    must not print them; the run reports each file it had to fix)."""
    fixed = []
    for path, _ in scan_privacy(report_dir):
        p = Path(path)
        text = p.read_text("utf-8", errors="replace")
        pieces, last = [], 0
        for m in _email_matches(text):  # = EMAIL_PATTERN.sub("[email removed]", text), faster
            pieces += [text[last:m.start()], "[email removed]"]
            last = m.end()
        new = "".join(pieces) + text[last:]
        if new != text:
            _write_text(p, new)
            fixed.append(str(p.relative_to(report_dir)))
    return sorted(set(fixed))


# --------------------------------------------------------------------------- runner
@dataclass
class _Run:
    label: str
    out_dir: Path
    staging: Path
    report: Path = field(init=False)
    data: Path = field(init=False)

    def __post_init__(self):
        self.report = self.staging / "report"
        self.data = self.staging / "data"

    @property
    def final_report(self) -> Path:
        return self.out_dir / self.label

    @property
    def final_data(self) -> Path:
        return self.out_dir / ".data" / self.label

    @property
    def failed_dir(self) -> Path:
        return self.out_dir / ".failed" / self.label


def _swap(src: Path, dst: Path) -> None:
    """Put ``src`` at ``dst`` with renames only: the old ``dst`` is moved aside first and
    restored if the second rename fails, then deleted."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if dst.exists():
        old = dst.with_name(f".old-{dst.name}-{uuid.uuid4().hex[:8]}")
        os.replace(dst, old)
    try:
        os.replace(src, dst)
    except OSError:
        if old is not None:
            os.replace(old, dst)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


_SAY_LOCK = threading.Lock()


def _say(msg: str) -> None:
    with _SAY_LOCK:  # notebooks finish in worker threads: one whole line at a time
        sys.stderr.write(msg + "\n")
        sys.stderr.flush()


def _first_line(src: str, limit: int = 120) -> str:
    lines = [ln for ln in (src or "").splitlines() if ln.strip()]
    if not lines:
        return ""
    line = lines[0] if len(lines[0]) <= limit else lines[0][:limit] + "..."
    return line + (" ..." if len(lines) > 1 else "")


def run_report(quarter: str | None = None, start=None, end=None, data: str | Path = "data/sample",
               preset: str | None = None, column_map: str | Path | None = None,
               params_file: str | Path | None = None, out_dir: str | Path = "reports",
               only: str | None = None, engine: str = "pandas", scheduler: str | None = None, *,
               notebooks_dir: str | Path | None = None, progress: bool | None = None,
               kernel_name: str = KERNEL_NAME, jobs: int | None = None, warm_kernels: bool = True) -> int:
    """Run the report notebooks into ``<out_dir>/<label>/``; returns a process exit code.

    Parameters
    ----------
    quarter, start, end : the period (``2026Q3``, or ISO dates with ``end`` exclusive);
        default: the last complete quarter covered by the data (:func:`default_quarter`).
    data : raw export folder, or the sample folder (``raw/`` inside).
    preset, column_map : how to read the export (see :func:`resolve_input`).
    params_file : YAML with global keys and per-notebook sections (:func:`load_params_file`).
    out_dir : reports folder; the report goes to ``<out_dir>/<label>/``.
    only : run only the notebooks whose name contains this (comma-separated); the rest of
        an existing report for the same period is kept and the cleaned data of the last
        full run is reused.
    engine, scheduler : passed to notebooks declaring them (``"dask"`` and a
        dask.distributed address for big data).
    notebooks_dir : default ``./notebooks`` (else the repository's).
    progress : papermill progress bars (default: when stderr is a terminal).
    jobs : notebooks run at a time (default :func:`default_jobs`: one per core, 1 with
        dask); notebooks wait for those they need (:data:`NOTEBOOK_STEPS`). ``1`` runs
        them one after the other, in name order.
    warm_kernels : start the kernel of a notebook (and import the modules its code
        imports) while the notebooks it waits for still run, when a job slot is free.

    Returns 0 on success; 1 when a notebook failed (the message names the notebook, the
    cell and where the partially executed notebook is; the previous report is intact);
    2 when the run could not start (bad input or parameters).
    """
    try:
        nb_dir = Path(notebooks_dir) if notebooks_dir else _default_notebooks_dir()
        stems = [p.stem for p in sorted(nb_dir.glob(NOTEBOOK_GLOB))]
        global_params, sections = load_params_file(params_file, stems)
        quarter = quarter or global_params.get("quarter")
        start = start or global_params.get("start")
        end = end or global_params.get("end")
        raw_dir, cmap = resolve_input(data, preset or global_params.get("preset"),
                                      column_map or global_params.get("column_map"))
        from .clean import check_inputs
        check_inputs(raw_dir, cmap)  # the map's files stay inside raw_dir (no .., no links out): exit 2 here
        all_notebooks = discover_notebooks(nb_dir)
        notebooks = discover_notebooks(nb_dir, only) if only else all_notebooks
        if quarter is None and start is None and end is None:
            quarter = default_quarter(data)
            _say(f"abmkit report: no period given; using {quarter}, the last complete quarter of the data")
        period = resolve_period(quarter=quarter, start=start, end=end)
        jobs = default_jobs(engine) if jobs is None else int(jobs)
        if jobs < 1:
            raise ReportError(f"jobs must be 1 or more, not {jobs}")
    except (ReportError, ValueError) as exc:
        _say(f"abmkit report: error: {exc}")
        return 2

    out_dir = Path(out_dir)
    partial = bool(only) and set(notebooks) != set(all_notebooks)
    cleans = any(nb.stem.startswith("01") for nb in notebooks)
    if partial and not cleans and not (out_dir / ".data" / period.label).is_dir():
        _say(f"abmkit report: error: --only {only!r} reuses the cleaned data of a full run, but "
             f"{out_dir / '.data' / period.label} does not exist; run the full report for {period.label} first")
        return 2
    out_dir.mkdir(parents=True, exist_ok=True)
    run = _Run(period.label, out_dir, out_dir / f".staging-{period.label}-{uuid.uuid4().hex[:8]}")
    run.report.mkdir(parents=True)
    os.chmod(run.staging, 0o700)  # issue 17: personal data and unredacted notebooks until published
    if partial:
        if run.final_report.is_dir():
            shutil.copytree(run.final_report, run.report, dirs_exist_ok=True)
        if not cleans:
            shutil.copytree(run.final_data, run.data)
    run.data.mkdir(exist_ok=True)
    secure_tree(run.data)  # issue 17: 0700 / 0600, also the data copied from the last full run
    common = {
        "data_dir": str(run.data.resolve()), "output_dir": str(run.report.resolve()),
        "quarter": period.label if period.is_quarter else None,
        "start": None if period.is_quarter else str(period.start.date()),
        "end": None if period.is_quarter else str(period.end.date()),
        "raw_dir": str(Path(raw_dir).resolve()), "column_map": cmap, "engine": engine, "scheduler": scheduler,
    }
    if progress is None:
        progress = sys.stderr.isatty()
    manifest_path = run.report / "run.json"
    manifest = json.loads(manifest_path.read_text("utf-8")) if manifest_path.exists() else {}
    timings = dict(manifest.get("seconds", {}))
    used_params = dict(manifest.get("parameters", {}))
    try:  # the last run of this period: its timings order the notebooks that are ready together
        last_seconds = json.loads((run.final_report / "run.json").read_text("utf-8")).get("seconds", {})
    except (OSError, ValueError, AttributeError):
        last_seconds = {}
    _say(f"abmkit report {period.label}: {len(notebooks)} notebook(s) from {nb_dir} -> {run.final_report}"
         f" ({jobs} at a time)")
    try:
        return _execute(run, period, notebooks, all_notebooks, common, global_params, sections,
                        timings, used_params, manifest_path, progress, kernel_name, data, cmap, engine,
                        jobs=jobs, warm_kernels=warm_kernels, last_seconds=last_seconds, manifest=manifest)
    except BaseException:  # interrupted (Ctrl-C) or a bug: never leave a half-written staging folder
        if run.staging.exists():
            run.failed_dir.parent.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(run.failed_dir, ignore_errors=True)
            os.replace(run.staging, run.failed_dir)
            _say(f"abmkit report: interrupted; partial output in {run.failed_dir}, "
                 f"{run.final_report} unchanged")
        raise


# --------------------------------------------------------------------------- parallel runs
#: jupyter_client picks free ports for a kernel's channels: one kernel start at a time
_KERNEL_START_LOCK = threading.Lock()
#: one HTML export at a time (pure Python under the GIL: two at once would not be faster)
_HTML_LOCK = threading.Lock()


def _kernel_env() -> dict:
    """The kernels' environment: this process's, with matplotlib's inline backend (the one
    ipykernel picks when MPLBACKEND is unset): an inherited ``MPLBACKEND=Agg`` would leave
    every chart out of the report."""
    env = dict(os.environ)
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    return env


def _kernel_manager(kernel_name: str):
    """A jupyter_client AsyncKernelManager that remembers the clients made from it, so the
    one papermill makes can be closed with the kernel."""
    from jupyter_client.manager import AsyncKernelManager

    class _Manager(AsyncKernelManager):
        def client(self, **kwargs):
            kc = super().client(**kwargs)
            self.abmkit_clients.append(kc)
            return kc

    km = _Manager(kernel_name=kernel_name)
    km.abmkit_clients = []
    return km


def _warmup_code(nb_path: Path) -> str | None:
    """Code importing, silently and in a throw-away function, the modules named by the
    top-level import statements of the notebook's code cells (``import a.b``, ``from a
    import b``): run in a kernel started early, it moves the imports off the critical
    path; the notebook's own cells then find the modules loaded. None without imports."""
    try:
        nb = json.loads(Path(nb_path).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    modules: list[str] = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        src = "".join(cell.get("source", []))
        try:  # IPython magics and shell lines are not Python: keep the lines that are
            tree = ast.parse("\n".join(ln for ln in src.splitlines() if not ln.lstrip().startswith(("%", "!"))))
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.Import):
                modules += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules += [node.module] + [f"{node.module}.{a.name}" for a in node.names if a.name != "*"]
    modules = list(dict.fromkeys(modules))
    if not modules:
        return None
    return ("def _abmkit_warmup(names):\n"
            "    import importlib\n"
            "    for name in names:\n"
            "        try:\n"
            "            importlib.import_module(name)\n"
            "        except Exception:\n"
            "            pass\n"
            f"_abmkit_warmup({modules!r})\n"
            "del _abmkit_warmup\n")


def _process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a live process, from /proc (None elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def _describe_failure(exc: BaseException) -> str:
    """The failure line of a notebook: the cell and error for an error in a cell."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        return (f"cell [{exc.exec_count}] (cell {exc.cell_index + 1} of the executed notebook): {exc.ename}: "
                f"{_first_line(str(exc.evalue), 600)}\n  cell source: {_first_line(exc.source)}")
    return f"{type(exc).__name__}: {_first_line(str(exc))}"


class _NotebookJob:
    """One notebook of a run, in its own thread (the kernel's asyncio objects belong to the
    thread's event loop): start its kernel when told (:meth:`warm`: early, loading the
    notebook's imports), execute it with papermill once told (:meth:`go`: its
    dependencies are done), export its HTML, shut the kernel down. Every step is posted
    to ``events`` as ``(kind, stem, error)``; the last one is ``("closed", stem, None)``."""

    def __init__(self, nb_path: Path, out_nb: Path, html_path: Path, kernel_name: str, progress: bool,
                 events: "queue.Queue", t0: float):
        self.nb_path, self.out_nb, self.html_path = nb_path, out_nb, html_path
        self.stem = nb_path.stem
        self.kernel_name, self.progress, self.events, self.t0 = kernel_name, progress, events, t0
        self.params: dict | None = None
        self.km = None
        self.times: dict[str, list[float]] = {}  # step -> [start, end], seconds since the run started
        self.cpu: dict[str, float] = {}  # warm / run -> CPU seconds of the kernel process
        self._cancelled = False
        self.closed = False  # set by the main thread on the "closed" event
        self._wake, self._go = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._main, name=f"abmkit-report-{self.stem}", daemon=True)

    # ---- orders (main thread)
    @property
    def started(self) -> bool:
        return self._thread.ident is not None

    def warm(self) -> None:
        self._start()

    def go(self, params: dict) -> None:
        self.params = params
        self._go.set()
        self._start()

    def cancel(self) -> None:
        self._cancelled = True
        self._go.set()
        self._wake.set()

    def kill(self) -> None:
        """Stop the kernel process now (interrupted run): the thread then ends."""
        self.cancel()
        proc = getattr(getattr(self.km, "provisioner", None), "process", None)
        try:
            if proc is not None:
                proc.kill()
        except OSError:
            pass

    def _start(self) -> None:
        self._wake.set()
        if not self.started:
            self._thread.start()

    # ---- the thread
    def _post(self, kind: str, error: str | None = None) -> None:
        self.events.put((kind, self.stem, error))

    def _mark(self, step: str, start: float) -> float:
        end = time.perf_counter()
        self.times[step] = [round(start - self.t0, 2), round(end - self.t0, 2)]
        if step in ("warm", "run"):  # the kernel's CPU seconds so far (Linux; wall times vary with the load)
            proc = getattr(getattr(self.km, "provisioner", None), "process", None)
            total = _process_cpu_seconds(proc.pid) if proc is not None else None
            if total is not None:
                self.cpu[step] = round(total - sum(self.cpu.values()), 2)
        return end - start

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)  # papermill (nbclient) runs its coroutines on this thread's loop
        try:
            self._wake.wait()
            if self._cancelled:
                return
            start_error = None
            if not self._go.is_set():  # warm: start the kernel before the notebook may run
                t = time.perf_counter()
                try:
                    self._start_kernel(loop, warm_up=True)
                except Exception as exc:  # noqa: BLE001 - reported when the notebook runs
                    start_error = exc
                self._mark("warm", t)
                self._post("warm")
                self._go.wait()
                if self._cancelled:
                    return
            self._run(loop, start_error)
        except BaseException as exc:  # noqa: BLE001 - a bug here must not hang the run
            self._post("ran", f"{type(exc).__name__}: {exc}")
        finally:
            self._shutdown(loop)
            loop.close()
            self._post("closed")

    def _start_kernel(self, loop, warm_up: bool) -> None:
        km = _kernel_manager(self.kernel_name)
        self.km = km
        with _KERNEL_START_LOCK:
            # the IPython history of a kernel in memory (as nbclient does): kernels running
            # at the same time would lock one history file
            loop.run_until_complete(km.start_kernel(
                cwd=str(self.nb_path.parent.resolve()), env=_kernel_env(),
                extra_arguments=["--HistoryManager.hist_file=:memory:"]))
        code = _warmup_code(self.nb_path) if warm_up else None
        if code is None:
            return
        kc = km.client()
        try:
            kc.start_channels()
            loop.run_until_complete(kc.wait_for_ready(timeout=KERNEL_START_TIMEOUT))  # else: did not start
            # silent: no output, no execution count, no history. Errors (and a slow import)
            # are left to the notebook: its own import cell reports them, or waits its turn
            try:
                loop.run_until_complete(kc.execute_interactive(code, silent=True, store_history=False,
                                                               allow_stdin=False, output_hook=lambda msg: None,
                                                               timeout=KERNEL_START_TIMEOUT))
            except Exception:  # noqa: BLE001
                pass
        finally:
            kc.stop_channels()

    def _run(self, loop, start_error: Exception | None) -> None:
        import papermill as pm

        t = time.perf_counter()
        try:
            if start_error is not None:
                raise start_error
            if self.km is None:
                self._start_kernel(loop, warm_up=False)
            # cwd=None: the kernel already runs in the notebook's folder, and papermill's
            # chdir would move every thread of this process
            pm.execute_notebook(str(self.nb_path), str(self.out_nb), parameters=self.params,
                                kernel_name=self.kernel_name, progress_bar=self._progress_bar(),
                                cwd=None, log_output=False, start_timeout=KERNEL_START_TIMEOUT, km=self.km)
        except Exception as exc:  # noqa: BLE001 - an error in a cell, the kernel died, ...
            self._mark("run", t)
            self._post("ran", _describe_failure(exc))
            return
        self._mark("run", t)
        self._post("ran")
        t = time.perf_counter()
        self._request_shutdown(loop)  # the kernel exits while the HTML is written
        try:
            with _HTML_LOCK:
                export_html(self.out_nb, self.html_path, title=notebook_title(self.nb_path))
        except Exception as exc:  # noqa: BLE001
            self._mark("html", t)
            self._post("html", f"HTML export failed: {type(exc).__name__}: {exc}")
            return
        self._mark("html", t)
        self._post("html")

    def _progress_bar(self):
        return {"desc": self.stem, "leave": False} if self.progress else False

    def _request_shutdown(self, loop) -> None:
        """Ask the kernel to exit (its shutdown_request), without waiting for it."""
        try:
            for kc in self.km.abmkit_clients:  # papermill's client: its channels and heartbeat thread
                kc.stop_channels()
            self.km.shutting_down = True
            loop.run_until_complete(self.km.request_shutdown())
            self._shutdown_requested = True
        except Exception:  # noqa: BLE001 - _shutdown stops it then
            pass

    def _shutdown(self, loop) -> None:
        km = self.km
        if km is None:
            return
        try:
            for kc in km.abmkit_clients:
                kc.stop_channels()
            if getattr(self, "_shutdown_requested", False) and not self._cancelled:
                loop.run_until_complete(km.finish_shutdown())  # kills it if it does not exit in time
                loop.run_until_complete(km.cleanup_resources())
            else:
                loop.run_until_complete(km.shutdown_kernel(now=self._cancelled))
        except Exception:  # noqa: BLE001 - the kernel is gone either way
            proc = getattr(km.provisioner, "process", None) if km.provisioner else None
            if proc is not None and proc.poll() is None:
                proc.kill()


def _execute(run, period, notebooks, all_notebooks, common, global_params, sections, timings, used_params,
             manifest_path, progress, kernel_name, data, cmap, engine, *, jobs: int = 1,
             warm_kernels: bool = True, last_seconds: dict | None = None, manifest: dict | None = None) -> int:
    """The notebook runs, index and swap of :func:`run_report`.

    Each notebook starts when the notebooks it needs (:func:`notebook_dependencies`) have
    finished and fewer than ``jobs`` notebooks run (a kernel being warmed counts as one);
    among ready notebooks the longest (last run's seconds, else :data:`NOTEBOOK_STEPS`
    cost) starts first. A free slot with nothing ready starts (warms) the kernel of a
    notebook whose dependencies have started. After a failure no notebook starts; those
    running finish, then the run fails naming the first failed notebook."""
    from . import __version__
    # import the kernel machinery here, in the main thread, before any worker thread
    # starts: two threads importing jupyter_client at once can deadlock on its module lock
    import jupyter_client.manager  # noqa: F401
    import nbclient  # noqa: F401
    import nbconvert  # noqa: F401
    import papermill  # noqa: F401

    t_total, t_origin = time.perf_counter(), time.time()
    manifest = manifest or {}
    html_timings = dict(manifest.get("html_seconds", {}))
    deps = notebook_dependencies(notebooks)
    last = last_seconds if isinstance(last_seconds, dict) else {}

    def cost(stem: str) -> float:
        v = last.get(stem)
        if isinstance(v, (int, float)):
            return float(v)
        step = NOTEBOOK_STEPS.get(stem[:2])
        return step.cost if step else 0.0

    by_stem = {nb.stem: nb for nb in notebooks}
    number = {nb.stem: i for i, nb in enumerate(notebooks, 1)}
    # longest first; name order breaks ties (and orders everything with jobs=1)
    order = sorted(by_stem, key=lambda s: (-cost(s), s)) if jobs > 1 else list(by_stem)
    events: queue.Queue = queue.Queue()
    work = {s: _NotebookJob(nb, run.report / nb.name, run.report / f"{s}.html", kernel_name, progress, events,
                            t_total) for s, nb in by_stem.items()}
    state = dict.fromkeys(by_stem, "waiting")  # -> warming -> warm -> running -> ran | failed
    failures: list[tuple[str, str]] = []
    params: dict[str, dict] = {}
    html_done: set[str] = set()

    def busy() -> int:
        return sum(st in ("warming", "running") for st in state.values())

    def schedule(first: bool = False) -> None:
        if failures:
            return
        if first:  # before papermill is imported (it needs a core): only the kernels of the first notebooks
            for s in order:
                if warm_kernels and busy() < jobs and not deps[s]:
                    state[s] = "warming"
                    work[s].warm()
            return
        for s in order:  # ready notebooks first
            if busy() >= jobs:
                return
            if state[s] in ("waiting", "warm") and all(state[d] == "ran" for d in deps[s]):
                state[s] = "running"
                _say(f"[{number[s]}/{len(notebooks)}] {by_stem[s].name} ...")
                work[s].go(params[s])
        warmed = warm_kernels  # then a free slot starts the kernel of a notebook whose dependencies started
        while warmed and busy() < jobs:  # again after a start: it may let a dependent warm up
            warmed = False
            for s in order:
                if busy() < jobs and state[s] == "waiting" and all(state[d] != "waiting" for d in deps[s]):
                    state[s] = "warming"
                    work[s].warm()
                    warmed = True
                    break

    try:
        schedule(first=True)  # the first kernels start while papermill is imported
        for nb in notebooks:
            try:
                params[nb.stem] = notebook_parameters(nb, common, global_params, sections)
            except Exception as exc:  # noqa: BLE001 - unreadable notebook
                failures.append((nb.stem, f"cannot read its parameters: {exc}"))
                break
        while True:
            schedule()
            stuck = [s for s, st in state.items() if st in ("waiting", "warm")]
            if stuck and not failures and busy() == 0:  # nothing runs and nothing is ready
                failures.append((stuck[0], f"it waits for {list(deps[stuck[0]])}, which cannot run first: "
                                           "check NOTEBOOK_STEPS for a cycle"))
            if failures or all(st in ("ran", "failed") for st in state.values()):
                for s, st in state.items():
                    if st in ("waiting", "warm"):
                        work[s].cancel()
            if failures:  # every started notebook must end before its folder moves
                if not any(j.started and not j.closed for j in work.values()):
                    break
            elif html_done == set(state):  # the kernels may still be exiting: waited for below
                break
            try:
                kind, s, error = events.get(timeout=0.5)
            except queue.Empty:
                continue
            if kind == "warm" and state[s] == "warming":
                state[s] = "warm"
            elif kind == "ran":
                if error is None:
                    state[s] = "ran"
                    secs = work[s].times["run"][1] - work[s].times["run"][0]
                    timings[s] = round(secs, 2)
                    used_params[s] = params[s]
                    _say(f"[{number[s]}/{len(notebooks)}] {by_stem[s].name} done in {secs:.1f} s")
                else:
                    state[s] = "failed"
                    failures.append((s, error))
            elif kind == "html":
                if error is None:
                    html_timings[s] = round(work[s].times["html"][1] - work[s].times["html"][0], 2)
                    html_done.add(s)
                else:
                    failures.append((s, error))
            elif kind == "closed":
                work[s].closed = True
    except BaseException:  # interrupted: stop the kernels, then run_report moves the staging folder aside
        for j in work.values():
            j.kill()
        raise
    if failures:
        first, what = failures[0]
        others = [(by_stem[s].name, w) for s, w in failures[1:]]
        return _fail(run, by_stem[first], what, run.report / by_stem[first].name, others=others)

    t_finish = time.perf_counter()
    redacted = _redact_emails(run.report)
    if redacted:
        _say(f"abmkit report: WARNING email addresses were removed from {redacted}; "
             "a notebook printed personal data - fix it (mask ids with abmkit.outputs.mask_ids)")
    from .outputs import load_findings

    listed = [{"stem": p.stem, "title": notebook_title(p), "seconds": timings.get(p.stem)}
              for p in all_notebooks]
    quality_nb = next((p.stem for p in all_notebooks if p.stem.startswith("01")), None)
    quality = load_findings(run.report, quality_nb) if quality_nb else {}
    run_date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    # record the final locations, not the staging folder the notebooks ran in
    final = {str(run.report.resolve()): str(run.final_report.resolve()),
             str(run.data.resolve()): str(run.final_data.resolve())}
    used_params = {nb: {k: final.get(v, v) if isinstance(v, str) else v for k, v in ps.items()}
                   for nb, ps in used_params.items()}
    manifest = {
        "label": period.label, "start": str(period.start.date()), "end": str(period.end.date()),
        "run_date": run_date, "abmkit_version": __version__, "data": str(data), "raw_dir": common["raw_dir"],
        "column_map": cmap, "engine": engine, "notebooks": [p.name for p in all_notebooks],
        "seconds": timings, "html_seconds": html_timings,
        "total_seconds": round(time.perf_counter() - t_total, 2), "jobs": jobs,
        # this run's steps, [start, end] in seconds since timeline_origin (a Unix time), when
        # the runner started its notebooks (warm: kernel start and imports)
        "timeline": {s: work[s].times for s in by_stem}, "timeline_origin": round(t_origin, 3),
        "kernel_cpu_seconds": {s: work[s].cpu for s in by_stem if work[s].cpu},
        "parameters": used_params, "privacy_redactions": redacted,
    }
    t_index = time.perf_counter()
    write_index(run.report, period=period, notebooks=listed, run_date=run_date, version=__version__,
                quality=quality, findings=tuple(p.stem for p in all_notebooks if p.stem != quality_nb))
    manifest["index_seconds"] = round(time.perf_counter() - t_index, 2)
    _write_text(manifest_path, json.dumps(manifest, indent=2, default=str))

    # the executed notebooks ran in the staging folder: point their parameters at the final one
    for nb_file in run.report.glob("*.ipynb"):
        text = nb_file.read_text("utf-8")
        new = text
        for old_path, new_path in final.items():
            new = new.replace(json.dumps(old_path)[1:-1], json.dumps(new_path)[1:-1])
        if new != text:
            _write_text(nb_file, new)
    secure_tree(run.data)  # issue 17: files a notebook wrote with its own writers (0600)
    private_dir(run.final_data.parent, tighten=True)  # issue 17: <out>/.data is 0700
    _swap(run.report, run.final_report)
    _swap(run.data, run.final_data)
    shutil.rmtree(run.staging, ignore_errors=True)
    purge_private_leftovers(run.out_dir, period.label)  # issue 17: no personal data left in .failed/staging
    try:
        while any(j.started and not j.closed for j in work.values()):  # the last kernels exit
            kind, s, _ = events.get(timeout=KERNEL_START_TIMEOUT)
            if kind == "closed":
                work[s].closed = True
    except (BaseException, queue.Empty):  # interrupted (or a kernel that does not exit): stop them
        for j in work.values():
            j.kill()
        raise
    _say(f"abmkit report {period.label}: done in {time.perf_counter() - t_total:.1f} s "
         f"(notebooks and HTML {t_finish - t_total:.1f} s) -> {run.final_report / 'index.html'}")
    return 0


def _fail(run: _Run, nb_path: Path, what: str, out_nb: Path, others: list[tuple[str, str]] = ()) -> int:
    """Move the staging folder to ``<out>/.failed/<label>/`` and say what failed (``others``:
    ``(notebook, what)`` of further notebooks that failed in the same run)."""
    run.failed_dir.parent.mkdir(parents=True, exist_ok=True)
    if run.failed_dir.exists():
        shutil.rmtree(run.failed_dir, ignore_errors=True)
    os.replace(run.staging, run.failed_dir)
    partial_nb = run.failed_dir / "report" / out_nb.name
    previous = (f"the previous report {run.final_report} is unchanged" if run.final_report.exists()
                else "no report was written")
    also = "".join(f"\n  also FAILED: notebook {name}: {w}" for name, w in others)
    _say(f"abmkit report: FAILED in notebook {nb_path.name}: {what}\n"
         f"  partially executed notebook: {partial_nb if partial_nb.exists() else '(not written)'}\n"
         f"  {previous}{also}")
    return 1


def findings_overview(output_dir: str | Path | None, notebooks: tuple[str, ...] = ("02", "03", "04"),
                      max_items: int = 12) -> "pd.DataFrame":
    """Headline findings saved by other notebooks (``<output_dir>/findings/*.json``, via
    :func:`abmkit.outputs.save_findings`), not recomputed: one row per scalar finding
    ``notebook, finding, value`` (nested keys joined with dots, at most ``max_items`` per
    notebook; a ``headline`` key first). A notebook that saved nothing (or a run without a
    report folder) gets one row with value "not available".

    Example
    -------
    >>> findings_overview(None, ("02",)).value.tolist()
    ['not available']
    """
    import pandas as pd

    return pd.DataFrame(_findings_rows(output_dir, notebooks, max_items), columns=["notebook", "finding", "value"])


def _findings_rows(output_dir: str | Path | None, notebooks: tuple[str, ...], max_items: int = 12) -> list[dict]:
    """The rows of :func:`findings_overview` (without pandas: the runner's index uses them)."""
    from .outputs import load_findings

    folder = Path(output_dir) / "findings" if output_dir is not None else None
    saved = sorted(p.stem for p in folder.glob("*.json")) if folder is not None and folder.is_dir() else []
    rows = []
    for prefix in notebooks:
        stems = [s for s in saved if s.startswith(prefix)]
        if not stems:
            rows.append({"notebook": prefix, "finding": "", "value": "not available"})
            continue
        for stem in stems:
            items = _scalar_items(load_findings(output_dir, stem))
            items.sort(key=lambda kv: kv[0] not in ("headline", "summary"))
            if not items:
                rows.append({"notebook": stem, "finding": "", "value": "not available"})
            for k, v in items[:max_items]:
                rows.append({"notebook": stem, "finding": k, "value": _fmt(v) if v is not None else "n/a"})
    return rows
