"""The quarterly report: run the notebooks with papermill, export code-free HTML, write
an index, and publish the result atomically (see docs/report_and_scheduling.md).

``python -m abmkit report --quarter 2026Q3 --data data/sample --out reports`` calls
:func:`run_report`. It

1. checks everything it can before anything runs (exit code 2): the raw export and its
   column map (``--preset``, ``<data>/raw/column_map.yaml`` or ``<data>/column_map.yaml``;
   files confined to the export folder), the parameters (every key declared by a notebook,
   :func:`check_parameters`; plain values only, rendered by papermill as the same values,
   :func:`check_parameter_value`) and the period;
2. takes the period's lock (:class:`abmkit.publish.PeriodLock`; exit code 75 when another
   run of the period holds it) and fingerprints the input files (size, mtime, sha256);
3. discovers ``notebooks/[0-9][0-9]_*.ipynb`` and runs them with papermill in a staging
   folder, passing each only the parameters its ``parameters`` cell declares (common:
   ``data_dir``, ``quarter``, ``start``, ``end``, ``output_dir``, ``raw_dir``,
   ``column_map``, ``engine``, ``scheduler``; plus a YAML parameter file and ``--param``
   values, global or per notebook). A notebook starts once the notebooks it needs have
   finished (:data:`NOTEBOOK_STEPS`: 01 → 02 → {03, 04, 05}), up to ``jobs`` at a time; the
   kernel of the next notebook is started (and its imports loaded) while the one before
   runs. After notebook 01 the period is checked on the cleaned data (the default period
   is the last complete quarter with data; a period without data stops the run, exit 2);
4. when every notebook succeeded and the inputs are unchanged, publishes the staging
   folder as a new version behind the atomic link ``<out>/<label>``
   (:func:`abmkit.publish.publish`): a failed, stopped or crashed run leaves the previous
   report whole, and says which notebook and cell failed;
5. the report holds each executed ``.ipynb``, a code-free HTML per notebook (outputs
   sanitised: text from the data is shown as text, never run as HTML/script; no external
   scripts; a Content-Security-Policy forbids scripts), ``tables/*.csv``,
   ``findings/*.json``, ``run.json`` (run id, parameters, input fingerprints, timings) and
   ``index.html``.

The cleaned canonical dataset written by notebook 01 holds personal data, so it is kept
*beside* the report, in ``<out>/.data/<label>/`` (the data of the published version), not
inside the folder shared with stakeholders; ``--only`` re-runs reuse it.

Exit codes: 0 published, 1 a notebook failed or an input changed, 2 bad input or usage,
75 the period's lock is held, 130 / 143 SIGINT / SIGTERM (:func:`run_report`).

Example
-------
>>> run_report(quarter="2026Q3", data="data/sample", out_dir="reports")   # doctest: +SKIP
0
"""
from __future__ import annotations

import ast
import asyncio
import contextlib
import datetime as _dt
import html
import json
import os
import queue
import re
import shutil
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path


from .period import Period, resolve_period
from .private import private_dir, purge_private_leftovers, secure_tree
from .report_assets import REPORT_CSS, hide_analyst_cells, print_pdf
from .publish import (LOCK_HELD_EXIT, LockHeld, PeriodLock, changed, current_version, data_of,
                      data_version_dir, fingerprint_files, new_run_id, prune, publish, reconcile, version_dir)

__all__ = [
    "run_report", "discover_notebooks", "resolve_input", "default_quarter", "load_params_file",
    "notebook_parameters", "export_html", "sanitize_notebook", "same_page_for_same_data", "write_index", "scan_privacy",
    "ReportError", "COMMON_PARAMETERS", "EMAIL_PATTERN", "findings_overview", "notebook_title",
    "NotebookStep", "NOTEBOOK_STEPS", "notebook_dependencies", "default_jobs", "check_parameters",
    "check_parameter_value", "split_parameters", "declared_parameters", "ReportInterrupted", "RUNNER_KEYS",
    "write_reports_index",
    "EXIT_OK", "EXIT_FAILED", "EXIT_INPUT", "EXIT_LOCKED", "EXIT_SIGINT", "EXIT_SIGTERM",
]

#: parameters the runner sets for every notebook that declares them
COMMON_PARAMETERS = ("data_dir", "quarter", "start", "end", "output_dir", "raw_dir", "column_map",
                     "engine", "scheduler", "reports_dir")
#: never taken from a notebook's section (the runner's values, the same for every notebook)
_RUNNER_ONLY = frozenset({"data_dir", "output_dir", "quarter", "start", "end", "raw_dir", "column_map", "reports_dir"})
#: global keys of a parameter file (or ``--param``) that the runner itself reads
RUNNER_KEYS = ("quarter", "start", "end", "preset", "column_map")
#: keys a parameter file or ``--param`` may not set at all, and why
_REFUSED_KEYS = {
    "data_dir": "the runner sets it (the run's own cleaned-data folder)",
    "output_dir": "the runner sets it (the run's own report folder)",
    "raw_dir": "the runner sets it from --data (the checked export folder)",
    "reports_dir": "the runner sets it (the reports folder --out, holding every period's report)",
}
#: the only types a parameter value may have (exactly these: no subclasses), nested in
#: lists and in dicts with string keys
PARAMETER_TYPES = (str, int, float, bool, type(None), list, dict)
#: at most this many values in one parameter (lists and dicts count their items)
MAX_PARAMETER_VALUES = 100_000
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
#: 01 → 02 → {03, 04} → 05. A notebook starts once every notebook it ``needs`` (among those
#: of the run) has finished; notebooks that do not depend on each other run in parallel,
#: up to ``jobs`` at a time. A notebook missing from this table runs after every notebook
#: before it (so a new notebook is safe until its dependencies are declared here), and
#: every notebook runs after the undeclared ones before it. Notebook 05 opens with the
#: executive summary built from the findings of 01-04 (abmkit.summary), so it waits for
#: 03 and 04; the runner shows the same summary at the top of ``index.html``.
NOTEBOOK_STEPS: dict[str, NotebookStep] = {
    "01": NotebookStep((), "the cleaned canonical tables in data_dir (and the data-quality findings)", 3.0),
    "02": NotebookStep(("01",), "the resolved dataset in data_dir/resolved/ (abmkit.prepare: mapping, "
                                "MQA rule, MQA dates; data.save(data_dir))", 5.0),
    "03": NotebookStep(("02",), "attribution tables and findings (opens data_dir/resolved/)", 4.0),
    "04": NotebookStep(("02",), "progression and uplift tables and findings (opens data_dir/resolved/)", 5.0),
    "05": NotebookStep(("02", "03", "04"), "the executive summary (from the findings of 01-04), KPI tables and "
                                           "findings (opens data_dir/resolved/)", 7.0),
}


def notebook_dependencies(notebooks: list[Path]) -> dict[str, tuple[str, ...]]:
    """``{stem: stems it waits for}`` for the notebooks of one run (name order), from
    :data:`NOTEBOOK_STEPS`. A dependency that is not part of the run (``--only``) is
    already satisfied: its outputs come from the last full run.

    >>> deps = notebook_dependencies([Path(f"{n}_x.ipynb") for n in ("01", "02", "03", "05", "07")])
    >>> deps["02_x"], deps["05_x"], deps["07_x"]
    (('01_x',), ('02_x', '03_x'), ('01_x', '02_x', '03_x', '05_x'))
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
    from .sources import is_url
    if is_url(data):  # a database: a preset or map names its tables, else they carry the canonical names
        if preset:
            return str(data), str(preset)
        if column_map:
            if not Path(column_map).exists():
                raise ReportError(f"column map {column_map} does not exist")
            return str(data), str(Path(column_map).resolve())
        from .clean.api import canonical_column_map
        from .sources import open_source
        with open_source(str(data)) as src:
            return str(data), canonical_column_map(src)
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
    first day of a quarter reports the quarter just ended).

    :func:`run_report` starts with it when no period is given and checks it on the
    cleaned data after notebook 01 (the last complete quarter holding touches, else
    opportunities); notebook 01 runs again when the data says another quarter."""
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

    Which keys are allowed is checked by :func:`check_parameters` (the runner does).
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
        raise ReportError(f"parameter file {path} must be a mapping of name: value (its top level is a "
                          f"{_kind(raw)}); see docs/report_and_scheduling.md")
    return split_parameters(raw, notebook_stems, f"parameter file {path}")


def _kind(value) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean",
            type(None): "null"}.get(type(value), type(value).__name__)


def split_parameters(raw: dict, notebook_stems, origin: str) -> tuple[dict, dict]:
    """``(global, sections)`` of a mapping of parameters (a parameter file's top level, or
    the ``--param`` values): keys naming a notebook (stem or two-digit number) whose value
    is a mapping are sections."""
    # YAML reads an unquoted 02 as the integer 2: give it back its two digits
    raw = {(f"{k:02d}" if type(k) is int and 0 <= k < 100 else str(k)): v for k, v in raw.items()}
    names = set(notebook_stems) | {s[:2] for s in notebook_stems}
    sections = {k: v for k, v in raw.items() if k in names and isinstance(v, dict)}
    global_ = {k: v for k, v in raw.items() if k not in sections}
    for k, v in list(global_.items()):
        if re.fullmatch(r"\d\d(_.*)?", k) and isinstance(v, dict):
            raise ReportError(f"{origin}: section {k!r} names no notebook; notebooks: {list(notebook_stems)}")
        if k in names:
            raise ReportError(f"{origin}: `{k}` names a notebook, so its value must be a mapping of that "
                              f"notebook's parameters (name: value), not a {_kind(v)}")
    return global_, sections


def notebook_parameters(nb_path: Path, common: dict, global_params: dict, sections: dict,
                        declared: set | None = None) -> dict:
    """Parameters for one notebook: common runner values, then the parameter file's
    global keys, then its section for this notebook, keeping only names the notebook's
    ``parameters`` cell declares (papermill.inspect_notebook, or ``declared``). Runner-only
    keys (data_dir, output_dir, quarter, start, end, raw_dir, column_map) keep the
    runner's values."""
    if declared is None:
        import papermill as pm

        declared = set(pm.inspect_notebook(str(nb_path)).keys())
    values = {k: v for k, v in common.items()}
    for src in (global_params, sections.get(nb_path.stem, {}), sections.get(nb_path.stem[:2], {})):
        for k, v in src.items():
            if k not in _RUNNER_ONLY:
                values[k] = v
    return {k: v for k, v in values.items() if k in declared}


def declared_parameters(notebooks: list[Path]) -> dict[str, list[str]]:
    """``{stem: [names its parameters cell declares]}`` (papermill.inspect_notebook)."""
    import papermill as pm

    out = {}
    for nb in notebooks:
        try:
            out[nb.stem] = list(pm.inspect_notebook(str(nb)).keys())
        except Exception as exc:  # noqa: BLE001 - not a notebook papermill can read
            raise ReportError(f"notebook {nb}: cannot read its parameters cell: {type(exc).__name__}: "
                              f"{_first_line(str(exc))}") from None
    return out


def _suggest(name: str, candidates) -> str:
    import difflib

    close = difflib.get_close_matches(name, sorted(set(candidates)), n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(f'`{c}`' for c in close)}?)" if close else ""


def check_parameters(global_params: dict, sections: dict, declared: dict[str, list[str]],
                     origin: str = "parameters") -> None:
    """Refuse (:class:`ReportError`, exit code 2) every key no notebook would use, and
    every value that is not a plain value (:func:`check_parameter_value`).

    A global key must be one the runner reads (:data:`RUNNER_KEYS`) or be declared by at
    least one notebook; a key of a notebook's section must be declared by that notebook.
    ``data_dir``, ``output_dir`` and ``raw_dir`` are the runner's. The message lists every
    unknown key at once, a close match for each (``n_bot`` -> ``n_boot``), and every
    notebook's declared parameters.

    >>> check_parameters({"n_bot": 3}, {}, {"03_x": ["data_dir", "n_boot"]})
    Traceback (most recent call last):
    ...
    abmkit.report.ReportError: parameters: unknown parameter `n_bot` (did you mean `n_boot`?)...
    """
    problems = []
    everything = {n for names in declared.values() for n in names}
    for k, v in global_params.items():
        if k in _REFUSED_KEYS:
            problems.append(f"`{k}` cannot be set: {_REFUSED_KEYS[k]}")
        elif k not in RUNNER_KEYS and k not in everything:
            problems.append(f"unknown parameter `{k}`{_suggest(k, everything | set(RUNNER_KEYS))}: no notebook "
                            "declares it")
    for sec, values in sections.items():
        stems = [s for s in declared if s == sec or s[:2] == sec]
        for k in values:
            if k in _REFUSED_KEYS:
                problems.append(f"`{sec}.{k}` cannot be set: {_REFUSED_KEYS[k]}")
            elif k in _RUNNER_ONLY or k in RUNNER_KEYS:
                problems.append(f"`{sec}.{k}` cannot be set for one notebook: it is the same for every notebook "
                                "(give it globally or on the command line)")
            elif not any(k in declared[s] for s in stems):
                names = {n for s in stems for n in declared[s]}
                problems.append(f"unknown parameter `{k}` in section `{sec}`{_suggest(k, names)}: "
                                f"{' / '.join(stems) or sec} does not declare it")
    if problems:
        listing = "\n".join(f"  {stem}: {', '.join(names) if names else '(no parameters cell)'}"
                            for stem, names in declared.items())
        raise ReportError(f"{origin}: " + "; ".join(problems) + ".\nParameters the notebooks declare:\n" + listing
                          + f"\nRead by the runner (global only): {', '.join(RUNNER_KEYS)}. "
                          "See docs/report_and_scheduling.md")
    for k, v in global_params.items():
        check_parameter_value(k, v, origin)
    for sec, values in sections.items():
        for k, v in values.items():
            check_parameter_value(f"{sec}.{k}", v, origin)
    for k in ("quarter", "start", "end", "preset", "column_map"):
        if k in global_params and global_params[k] is not None and type(global_params[k]) is not str:
            raise ReportError(f"{origin}: `{k}` must be a string, not a {_kind(global_params[k])}")


def check_parameter_value(name: str, value, origin: str = "parameters") -> None:
    """Refuse (:class:`ReportError`) a value that is not a plain value: only ``str``,
    ``int``, ``float``, ``bool``, ``None`` and lists / dicts (string keys) of those, of
    exactly these types (a subclass could render itself as code), at most
    :data:`MAX_PARAMETER_VALUES` values, no cycle; and one papermill would not render as
    the same value (:func:`_check_rendering`). This is what keeps a parameter from
    becoming code in the notebook's injected-parameters cell.

    >>> check_parameter_value("raw_dir", b"import os")
    Traceback (most recent call last):
    ...
    abmkit.report.ReportError: parameters: `raw_dir` is bytes; a parameter must be a string, number, boolean, null, or a list or mapping of those
    """
    plain = "a parameter must be a string, number, boolean, null, or a list or mapping of those"
    seen = 0
    stack = [(value, name, ())]
    while stack:
        v, where, path = stack.pop()
        seen += 1
        if seen > MAX_PARAMETER_VALUES:
            raise ReportError(f"{origin}: `{name}` holds more than {MAX_PARAMETER_VALUES:,} values")
        t = type(v)
        if t not in PARAMETER_TYPES:
            raise ReportError(f"{origin}: `{where}` is {t.__name__}; {plain}")
        if t is int and v.bit_length() > 4000:
            raise ReportError(f"{origin}: `{where}` is an integer of more than 1,000 digits")
        if t in (list, dict):
            if id(v) in path:
                raise ReportError(f"{origin}: `{where}` contains itself")
            inner = path + (id(v),)
            if t is dict:
                for k, item in v.items():
                    if type(k) is not str:
                        raise ReportError(f"{origin}: `{where}` has a key of type {type(k).__name__}; mapping "
                                          "keys must be strings")
                    stack.append((item, f"{where}.{k}", inner))
            else:
                stack.extend((item, f"{where}[{i}]", inner) for i, item in enumerate(v))
    _check_rendering(name, value, origin)


def _check_rendering(name: str, value, origin: str = "parameters") -> None:
    """Render ``name = value`` as papermill writes it into the notebook
    (``PythonTranslator``) and prove it is one assignment of a literal equal to ``value``
    (parsed with ``ast``, never run); refuse the value otherwise. papermill escapes a
    string with ``unicode_escape`` (every backslash doubled, newlines and control and
    non-ASCII characters as escapes) and then ``"`` as ``\\"``, which is safe; this check
    keeps it so if papermill changes."""
    from papermill.translators import PythonTranslator

    target = name.rsplit(".", 1)[-1] if "." in name else name
    target = target if target.isidentifier() else "x"
    src = PythonTranslator.assign(target, PythonTranslator.translate(value))
    try:
        tree = ast.parse(src)
        ok = (len(tree.body) == 1 and isinstance(tree.body[0], ast.Assign) and len(tree.body[0].targets) == 1
              and isinstance(tree.body[0].targets[0], ast.Name) and tree.body[0].targets[0].id == target
              and _same(_literal(tree.body[0].value), value))
    except (SyntaxError, ValueError, TypeError, RecursionError, MemoryError):
        ok = False
    if not ok:
        raise ReportError(f"{origin}: `{name}`: papermill would not write this value into the notebook as "
                          "the same plain value; refused")


def _literal(node):
    """``ast.literal_eval`` plus ``float('nan')`` / ``float('inf')`` / ``float('-inf')``, as
    papermill writes non-finite floats."""
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "float"
            and len(node.args) == 1 and not node.keywords and isinstance(node.args[0], ast.Constant)
            and node.args[0].value in ("nan", "inf", "-inf")):
        return float(node.args[0].value)
    if isinstance(node, ast.List):
        return [_literal(e) for e in node.elts]
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise ValueError("dict unpacking")
        return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values)}
    return ast.literal_eval(node)


def _same(a, b) -> bool:
    if type(a) is not type(b):
        return False
    if type(a) is float and a != a:
        return b != b
    if type(a) is list:
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if type(a) is dict:
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return a == b


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
{% block extra_css %}<meta http-equiv="Content-Security-Policy" content="__CSP__">
<style type="text/css">{% raw %}__CSS__{% endraw %}</style>{% endblock extra_css %}
""".replace("__CSP__", _CSP).replace("__CSS__", REPORT_CSS)  # page width, tables, print: report_assets/report.css


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


def same_page_for_same_data(nb):
    """Remove what differs between two runs on the same data, in place: papermill gives
    the cell it inserts a random id, and the kernel may deliver one ``print``'s text in
    two stream messages when the machine is busy (two ``<pre>`` blocks instead of one).
    Consecutive outputs of the same stream are joined; non-consecutive ones stay apart,
    so text keeps its place around tables and charts.

    >>> import nbformat
    >>> cell = nbformat.v4.new_code_cell(outputs=[nbformat.v4.new_output("stream", text="a"),
    ...     nbformat.v4.new_output("stream", text="b\\n"), nbformat.v4.new_output("stream", name="stderr", text="c"),
    ...     nbformat.v4.new_output("stream", text="d")])
    >>> [o["text"] for o in same_page_for_same_data(nbformat.v4.new_notebook(cells=[cell])).cells[0].outputs]
    ['ab\\n', 'c', 'd']
    """
    for cell in nb.cells:
        if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            cell["id"] = "injected-parameters"
        merged = []
        for out in cell.get("outputs", []):
            last = merged[-1] if merged else None
            if (out.get("output_type") == "stream" and last is not None and last.get("output_type") == "stream"
                    and last.get("name") == out.get("name")):
                last["text"] = "".join(last["text"]) + "".join(out["text"])
            else:
                merged.append(out)
        if "outputs" in cell:
            cell["outputs"] = merged
    return nb


def export_html(ipynb_path: str | Path, html_path: str | Path, title: str | None = None) -> Path:
    """Code-free, self-contained, script-free HTML of an executed notebook."""
    import nbformat

    nb = nbformat.read(str(ipynb_path), as_version=4)
    sanitize_notebook(nb)
    hide_analyst_cells(nb)  # cells tagged "analyst" stay in the .ipynb, not on the stakeholder page
    same_page_for_same_data(nb)
    nb.metadata["title"] = title or Path(ipynb_path).stem
    body, _ = _exporter().from_notebook_node(nb, resources={"metadata": {"name": nb.metadata["title"]}})
    return _write_text(Path(html_path), body)


#: the page printed to PDF next to its HTML (the summary a stakeholder reads first)
SUMMARY_PAGE = "05_quarterly_abm_report"


def _summary_pdf(report_dir: Path) -> str:
    """Print the summary page to ``<page>.pdf`` beside its HTML with headless Chromium;
    without a browser (or when it fails) say why and go on: the PDF is never a reason to fail."""
    html_page = next(iter(sorted(Path(report_dir).glob(f"{SUMMARY_PAGE}*.html"))), None)
    if html_page is None:
        return "not written: no summary page in this run"
    pdf, why = print_pdf(html_page, html_page.with_suffix(".pdf"))
    if pdf is None:
        _say(f"abmkit report: no PDF of the summary ({why})")
        return f"not written: {why}"
    return pdf.name


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
    """``(dotted key, value)`` of every scalar in a findings dict; a list of scalars is one
    value (joined with "; "), a list of dicts gives each item's keys (``effects[0].campaign``):
    no finding is left out because it is a list."""
    items = []
    for k, v in d.items():
        if isinstance(v, dict):
            items.extend(_scalar_items(v, f"{prefix}{k}."))
        elif isinstance(v, (str, int, float, bool)) or v is None:
            items.append((f"{prefix}{k}", v))
        elif isinstance(v, list) and all(isinstance(x, (str, int, float, bool)) for x in v):
            items.append((f"{prefix}{k}", "; ".join(_fmt(x) for x in v) if v else "(none)"))
        elif isinstance(v, list):
            for i, x in enumerate(v):
                if isinstance(x, dict):
                    items.extend(_scalar_items(x, f"{prefix}{k}[{i}]."))
    return items


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


_INDEX_CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:60rem;
color:#222;line-height:1.45;padding:0 1rem}h1{margin-bottom:.2rem}.meta{color:#555}table{border-collapse:collapse;
margin:.5rem 0 1.5rem;max-width:100%}td,th{border-bottom:1px solid #ddd;padding:.3rem .8rem;text-align:left;
vertical-align:top;overflow-wrap:break-word}th.num{text-align:right}td.num{text-align:right;white-space:nowrap}
.ok{color:#1a7f37}.missing{color:#9a6700}.headline{background:#f6f8fa;border-left:4px solid #0969da;padding:.6rem 1rem}
.nav{margin:.3rem 0 1rem}details{margin:1rem 0}summary{cursor:pointer;font-weight:600}
@media print{.nav,details,.appendix{display:none}}"""


def _summary_records(report_dir: Path, notebooks: list[dict]) -> tuple[list[dict], str | None]:
    """The executive summary saved by the KPI page (notebook 05's findings
    ``executive_summary``, :mod:`abmkit.summary`) and that page's stem."""
    from .outputs import load_findings

    for nb in reversed(notebooks):
        found = load_findings(report_dir, nb["stem"])
        records = found.get("executive_summary") if isinstance(found, dict) else None
        if isinstance(records, list) and records:
            return [r for r in records if isinstance(r, dict)], nb["stem"]
    return [], None


def write_index(report_dir: str | Path, *, period: Period, notebooks: list[dict], run_date: str,
                version: str, quality: dict | None = None, findings: tuple[str, ...] | None = None,
                published: set[str] | None = None) -> Path:
    """``index.html`` of one period: the executive summary first, then the pages, data
    quality, the files, and an appendix with the raw findings. All text is escaped.

    ``notebooks``: dicts with ``stem``, ``title``, ``seconds`` (files are looked up in
    ``report_dir``); ``quality``: notebook 01's findings (data-quality headline);
    ``findings``: notebooks (stems or numbers) whose saved headline findings
    (``report_dir/findings/*.json``, see :func:`findings_overview`) are listed in the
    appendix, read once every notebook has run. The summary is the one the KPI page
    saved (its findings' ``executive_summary``: the same sentences as on that page).
    ``published``: labels of the periods published beside this one (links to the
    previous period; None: no links but the one to the index of all periods).
    """
    from .period import format_period, report_title
    from .summary import SUMMARY_CSS, period_nav_html, render_html

    report_dir = Path(report_dir)
    e = lambda s: html.escape(str(s), quote=True)  # noqa: E731
    prev = period.previous
    title = report_title(period)
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title><style>{_INDEX_CSS}\n{SUMMARY_CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f'<p class="meta">Data period: <strong>{e(format_period(period))}</strong>, compared with '
        f"{e(format_period(prev))}<br>Run date: {e(run_date)} &middot; abmkit {e(version)}</p>",
        period_nav_html(period, set(published or ())),
    ]
    records, summary_stem = _summary_records(report_dir, notebooks)
    if records:
        parts.append(render_html(records))
        if (report_dir / f"{summary_stem}.html").exists():
            parts.append(f'<p class="meta">Every line comes from a page of this run; the KPI page has the detail and '
                         f'all the actions: <a href="{e(summary_stem)}.html">open the summary and KPIs</a>.</p>')
    else:
        parts.append('<h2>Executive summary</h2><p class="missing">n/a: the KPI page (notebook 05) saved no '
                     "summary in this run (it failed, was not run, or ran without the other pages).</p>")
    parts.append("<h2>Pages</h2><table><tr><th>Part</th><th>Page</th><th>Notebook</th><th>Run time</th></tr>")
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
    # the drill-down pages (abmkit.drilldown), when the run wrote them
    drill = [(rel, label) for rel, label in (("drilldown/campaigns.html", "campaigns with a significant effect"),
                                             ("drilldown/accounts.html", "MQA accounts and whom to call"))
             if (report_dir / rel).is_file()]
    if drill:
        parts.append('<p class="meta">Drill-down: ' + " &middot; ".join(
            f'<a href="{e(rel)}">{e(label)}</a>' for rel, label in drill) + "</p>")
    q = quality or {}
    parts.append("<h2>Data quality</h2>")
    raw_quality = []
    if q:
        headline = q.get("headline") or q.get("summary")
        if isinstance(headline, str):
            parts.append(f'<p class="headline">{e(headline)}</p>')
        raw_quality = [(k, v) for k, v in _scalar_items(q) if k not in ("headline", "summary")
                       and not k.startswith("not_applicable.")]
        # tables the export did not supply: empty, and the analyses needing them are n/a (abmkit.applicability)
        absent = [t for t in (q.get("tables_not_supplied") or []) if isinstance(t, str)]
        if absent:
            parts.append(f'<p class="missing">Not in the export: {e(", ".join(absent))}. They are empty tables: '
                         "every analysis that needs one is marked n/a with its reason on its page and below.</p>")
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
        elif not absent:
            parts.append('<p class="ok">No data sanity warning and every table was supplied.</p>')
    else:
        parts.append('<p class="missing">No data-quality findings were saved by the cleaning notebook.</p>')
    for folder, label in (("tables", "Key tables (CSV)"), ("findings", "Findings (JSON)")):
        files = sorted((report_dir / folder).glob("*.csv" if folder == "tables" else "*.json"))
        parts.append(f"<h2>{e(label)}</h2>")
        if files:  # folded: a long list of file names is for analysts
            parts.append(f"<details><summary>{len(files)} file{'s' if len(files) != 1 else ''}</summary><ul>"
                         + "".join(f'<li><a href="{e(folder)}/{e(f.name)}">{e(f.name)}</a></li>' for f in files)
                         + "</ul></details>")
        else:
            parts.append('<p class="missing">none</p>')
    # the raw key/value findings: for analysts tracing a sentence to its source, after everything else
    parts.append('<div class="appendix"><h2>Appendix: raw findings</h2>'
                 '<p class="meta">As saved by each notebook in this run (findings/*.json); nothing is '
                 "recomputed here. Open a notebook's page for the detail and the caveats; \"not "
                 "available\" means that notebook saved no findings.</p>"
                 "<details><summary>Show the raw findings</summary>")   # folded: for analysts only
    if raw_quality:
        parts.append("<h3>Data cleaning</h3><table>" + "".join(
            f"<tr><th>{e(k)}</th><td>{e(_fmt(v))}</td></tr>" for k, v in raw_quality) + "</table>")
    if findings:
        titles = {nb["stem"]: nb.get("title") or nb["stem"] for nb in notebooks}
        parts.append("<h3>Headline findings</h3>")
        parts.append("<table><tr><th>Notebook</th><th>Finding</th><th>Value</th></tr>")
        for row in _findings_rows(report_dir, tuple(findings), max_items=1000):
            nb = row["notebook"]
            title = titles.get(nb) or next((t for s, t in titles.items() if s.startswith(nb)), nb)
            parts.append(f"<tr><td>{e(title)}<br><small>{e(nb)}</small></td><td>{e(row['finding'])}</td>"
                         f"<td>{e(row['value'])}</td></tr>")
        parts.append("</table>")
    parts.append("</details></div>")
    if (report_dir / "run.json").exists():
        parts.append('<p class="meta">Run details (parameters, timings): <a href="run.json">run.json</a></p>')
    parts.append("<p class=\"meta\">Contacts appear only as masked ids; emails and names are never "
                 "written to this report. The executed notebooks (.ipynb) show the code behind every "
                 "number.</p></body></html>")
    return _write_text(report_dir / "index.html", "\n".join(parts))


#: headline KPIs shown per period in the index of all periods (the first ones page 05 saved)
MAX_INDEX_KPIS = 5


def write_reports_index(out_dir: str | Path) -> Path:
    """``<out>/index.html``: every published period, newest first, with its headline
    numbers (as the KPI page saved them: findings ``headline_numbers`` of notebook 05)
    and links to its index and summary page. Rewritten by each run after publication,
    holding ``<out>/.locks/_index.lock`` (runs of different periods may finish together);
    written atomically, so a reader sees the old or the new list."""
    import fcntl

    from .outputs import load_findings
    from .period import format_period, period_from_label, report_title
    from .publish import LOCKS, published_labels

    out = Path(out_dir)
    e = lambda s: html.escape(str(s), quote=True)  # noqa: E731
    (out / LOCKS).mkdir(parents=True, exist_ok=True)
    with open(out / LOCKS / "_index.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rows, kpi_order = [], []
        for label in published_labels(out):
            folder = out / label
            try:
                run = json.loads((folder / "run.json").read_text("utf-8"))
                period = period_from_label(label)
            except (OSError, ValueError, KeyError, TypeError):
                run, period = {}, None
            summary_stem, numbers = None, []
            for f in sorted((folder / "findings").glob("05*.json")):
                found = load_findings(folder, f.stem)
                if isinstance(found.get("headline_numbers"), list):
                    summary_stem = f.stem
                    numbers = [n for n in found["headline_numbers"] if isinstance(n, dict) and "kpi" in n]
                    break
            for n in numbers:
                if n["kpi"] not in [k for k, _ in kpi_order]:
                    kpi_order.append((n["kpi"], str(n.get("label") or n["kpi"])))
            rows.append({"label": label, "period": period, "run": run, "stem": summary_stem,
                         "numbers": {n["kpi"]: n for n in numbers}})
        rows.sort(key=lambda r: (r["period"].end.value if r["period"] is not None else 0, r["label"]), reverse=True)
        parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
                 f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
                 '<meta name="viewport" content="width=device-width, initial-scale=1">',
                 f"<title>ABM reports: all periods</title><style>{_INDEX_CSS}</style></head><body>",
                 "<h1>ABM reports: all periods</h1>",
                 '<p class="meta">Every period published in this folder, newest first. The numbers are those of '
                 "each period's KPI page (change against the period before it); open a period for its summary. "
                 "Quarters and custom ranges are listed together: compare numbers only between periods of the "
                 "same length.</p>"]
        if not rows:
            parts.append('<p class="missing">No report is published here yet.</p>')
        else:
            kpi_order = kpi_order[:MAX_INDEX_KPIS]   # the table fits a 1,280 px window
            head = "".join(f'<th class="num">{e(lab)}</th>' for _, lab in kpi_order)
            parts.append(f"<table><tr><th>Period</th>{head}<th>Pages</th></tr>")
            for r in rows:
                p = r["period"]
                run_date = f"<br><small>run {e(r['run'].get('run_date'))}</small>" if r["run"].get("run_date") else ""
                name = (f"<strong>{e(report_title(p))}</strong><br><small>{e(format_period(p))}</small>{run_date}"
                        if p is not None else f"<strong>{e(r['label'])}</strong>{run_date}")
                cells = []
                for k, _ in kpi_order:
                    n = r["numbers"].get(k)
                    if n is None:
                        cells.append('<td class="num missing">n/a</td>')
                    else:
                        change = f"<br><small>{e(n.get('change'))}</small>" if n.get("change") else ""
                        why = f' title="{e(n.get("note"))}"' if n.get("note") else ""
                        cells.append(f'<td class="num"{why}>{e(n.get("value", "n/a"))}{change}</td>')
                links = [f'<a href="{e(r["label"])}/index.html">index</a>']
                if r["stem"] and (out / r["label"] / f"{r['stem']}.html").exists():
                    links.append(f'<a href="{e(r["label"])}/{e(r["stem"])}.html">summary and KPIs</a>')
                parts.append(f"<tr><td>{name}</td>{''.join(cells)}<td>{'<br>'.join(links)}</td></tr>")
            parts.append("</table>")
        parts.append("</body></html>")
        from .outputs import atomic_write_text

        return atomic_write_text(out / "index.html", "\n".join(parts))


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
#: exit codes of :func:`run_report` and ``abmkit report`` (docs/report_and_scheduling.md)
EXIT_OK = 0        # the report is published
EXIT_FAILED = 1    # a notebook failed, or the input changed during the run: nothing published
EXIT_INPUT = 2     # bad input or usage: nothing ran, or the export cannot be cleaned / has no data in the period
EXIT_LOCKED = LOCK_HELD_EXIT   # 75: another run of the same period is in progress; nothing changed
EXIT_SIGINT, EXIT_SIGTERM = 130, 143
#: a notebook failing with one of these exceptions means the export cannot be used: exit 2
INPUT_ERRORS = frozenset({"CleanError", "InputError"})


class ReportInterrupted(BaseException):
    """SIGTERM or SIGINT arrived during a run (a BaseException, so that no ``except
    Exception`` swallows it): the run stops its kernels, removes its staging folder,
    releases the lock and :func:`run_report` returns 128 + the signal number."""

    def __init__(self, signum: int):
        self.signum = int(signum)
        self.name = signal.Signals(signum).name
        self.code = 128 + self.signum
        super().__init__(self.name)


class _Signals:
    """SIGTERM and SIGINT raise :class:`ReportInterrupted` in the main thread while a run is
    in progress (installed only in the main thread, and not over a signal set to be
    ignored). Inside :meth:`deferred` (taking the lock, publishing) a signal waits for the
    end of the block; a second signal during the clean-up is ignored."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.old: dict = {}
        self.depth = 0
        self.pending: int | None = None
        self.fired: int | None = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                try:
                    if signal.getsignal(s) is signal.SIG_IGN:
                        continue
                    self.old[s] = signal.signal(s, self._handler)
                except (ValueError, OSError):
                    pass
        return self

    def __exit__(self, *exc):
        for s, h in self.old.items():
            try:
                signal.signal(s, h)
            except (ValueError, OSError):
                pass
        self.old = {}

    def _handler(self, signum, frame):
        if self.fired is not None:
            return
        if self.depth:
            self.pending = self.pending or signum
            return
        self.fired = signum
        raise ReportInterrupted(signum)

    @contextlib.contextmanager
    def deferred(self):
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
        if not self.depth and self.pending is not None and self.fired is None:
            signum, self.pending = self.pending, None
            self.fired = signum
            raise ReportInterrupted(signum)


@dataclass
class _Run:
    label: str
    out_dir: Path
    staging: Path
    run_id: str = ""
    report: Path = field(init=False)
    data: Path = field(init=False)

    def __post_init__(self):
        self._paths()

    def _paths(self):
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

    @property
    def version_report(self) -> Path:
        return version_dir(self.out_dir, self.label, self.run_id)

    @property
    def version_data(self) -> Path:
        return data_version_dir(self.out_dir, self.label, self.run_id)

    def relabel(self, label: str) -> None:
        """The period changed (default period, see _gate): the staging folder follows."""
        new = self.out_dir / f".staging-{label}-{self.staging.name.rsplit('-', 1)[-1]}"
        os.replace(self.staging, new)
        self.staging, self.label = new, label
        self._paths()

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)

    def keep_failed(self) -> None:
        """Move the staging folder to ``.failed/<label>/`` (0700; the next success removes it)."""
        if not self.staging.exists():
            return
        self.failed_dir.parent.mkdir(parents=True, exist_ok=True)
        if self.failed_dir.exists():
            shutil.rmtree(self.failed_dir, ignore_errors=True)
        os.replace(self.staging, self.failed_dir)


@dataclass
class _Ctx:
    """Everything one run of :func:`run_report` knows (filled by ``_prepare``, then under the lock)."""
    signals: _Signals
    where: dict
    nb_dir: Path
    notebooks: list
    all_notebooks: list
    declared: dict
    global_params: dict
    sections: dict
    period: Period
    period_source: str          # "given", "default" (checked after notebook 01) or "published" (--only)
    data: object
    raw_dir: Path
    cmap: str
    params_file: Path | None
    out_dir: Path
    only: str | None
    engine: str
    scheduler: str | None
    progress: bool
    kernel_name: str
    jobs: int
    warm_kernels: bool
    run_id: str = ""
    run: _Run | None = None
    lock: PeriodLock | None = None
    common: dict = field(default_factory=dict)
    inputs: list | None = None
    base: tuple | None = None
    reruns: int = 0

    @property
    def partial(self) -> bool:
        return bool(self.only) and set(self.notebooks) != set(self.all_notebooks)

    @property
    def cleans(self) -> bool:
        return any(nb.stem.startswith("01") for nb in self.notebooks)

    @property
    def reads_raw(self) -> bool:
        """Does a notebook of this run read the raw export (declares raw_dir or column_map)?"""
        return any({"raw_dir", "column_map"} & set(self.declared.get(nb.stem, ())) for nb in self.notebooks)

    def input_files(self) -> dict[str, list[Path]]:
        """The files the run reads as input, by role, for the fingerprints (checked again at the end)."""
        from .clean import check_inputs
        from .clean.colmap import presets_dir

        files = {"data": list(check_inputs(self.raw_dir, self.cmap))}
        cm = Path(self.cmap) if isinstance(self.cmap, (str, Path)) else None
        if cm is None:  # a map built from a database's canonical table names: nothing to fingerprint
            pass
        elif cm.is_file():
            files["column_map"] = [cm]
        elif (presets_dir() / f"{self.cmap}.yaml").is_file():
            files["column_map"] = [presets_dir() / f"{self.cmap}.yaml"]
        files.setdefault("column_map", []).extend(_picklist_files(self.cmap))
        if self.params_file is not None:
            files["params"] = [Path(self.params_file)]
        return files


def _picklist_files(cmap) -> list[Path]:
    """The picklist tables an adapter's column map reads (``picklists:``, or the preset's
    shipped defaults): inputs of the run like the map itself, so an edit during the run is seen."""
    from .clean.colmap import load_column_map
    try:
        cm = load_column_map(cmap)
    except Exception:  # noqa: BLE001 - a broken map is reported by the cleaner, with its own message
        return []
    adapter = cm.get("adapter")
    if not adapter:
        return []
    from .adapters import get_adapter, load_picklist
    mod = get_adapter(str(adapter))
    # CRM adapters list their tables in PICKLIST_FILES, the marketing-automation ones in SPEC.picklists
    tables = {**getattr(mod, "PICKLIST_FILES", {}), **(getattr(getattr(mod, "SPEC", None), "picklists", None) or {})}
    out = []
    for name, default in tables.items():
        try:
            table = load_picklist(cm, name, default)
        except (OSError, ValueError):
            continue
        if getattr(table, "file", None):
            out.append(Path(table.file))
    return out


def _is_url(data) -> bool:
    from .sources import is_url
    return isinstance(data, str) and is_url(data)


def _input_fingerprints(ctx) -> list[dict]:
    """Fingerprints of the run's input files, plus the row count of every table of a
    database source (a table loaded during the run shows as changed)."""
    out = fingerprint_files(ctx.input_files())
    if _is_url(ctx.raw_dir):
        import hashlib

        from .sources import open_source
        with open_source(ctx.raw_dir) as src:
            for table, value in src.fingerprint().items():
                out.append({"role": "data", "path": f"{src.label} {table}", "size": None, "mtime_ns": None,
                            "sha256": hashlib.sha256(value.encode()).hexdigest()})
    return out


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
               kernel_name: str = KERNEL_NAME, jobs: int | None = None, warm_kernels: bool = True,
               params: dict | None = None) -> int:
    """Run the report notebooks and publish ``<out_dir>/<label>/``; returns a process exit code.

    Parameters
    ----------
    quarter, start, end : the period (``2026Q3``, or ISO dates with ``end`` exclusive);
        default: the last complete quarter that holds touches (else opportunities) of the
        cleaned data, found after notebook 01 (see docs/report_and_scheduling.md).
    data : raw export folder, or the sample folder (``raw/`` inside).
    preset, column_map : how to read the export (see :func:`resolve_input`).
    params_file : YAML with global keys and per-notebook sections (:func:`load_params_file`).
    params : more parameters, as a parameter file's top level (the CLI's ``--param``); they
        win over the file's. Every key must be declared (:func:`check_parameters`).
    out_dir : reports folder; the report goes to ``<out_dir>/<label>/`` (a link to the
        published version, :mod:`abmkit.publish`).
    only : run only the notebooks whose name contains this (comma-separated), on top of the
        published report of the period (its other pages and its cleaned data are copied).
    engine, scheduler : passed to notebooks declaring them (``"dask"`` and a
        dask.distributed address for big data).
    notebooks_dir : default ``./notebooks`` (else the repository's).
    progress : papermill progress bars (default: when stderr is a terminal).
    jobs : notebooks run at a time (default :func:`default_jobs`: one per core, 1 with
        dask); notebooks wait for those they need (:data:`NOTEBOOK_STEPS`). ``1`` runs
        them one after the other, in name order.
    warm_kernels : start the kernel of a notebook (and import the modules its code
        imports) while the notebooks it waits for still run, when a job slot is free.

    Returns 0 when the report is published; 1 when a notebook failed or an input file
    changed during the run (the message names the notebook and cell, or the file; the
    previous report is unchanged); 2 for bad input or usage (bad parameters, a refused
    input, an export that cannot be cleaned, a period without any data: nothing is
    published); 75 when another run of the same period holds its lock; 130 / 143 when
    stopped by SIGINT / SIGTERM (kernels stopped, staging removed, lock released).
    """
    signals = _Signals()
    where: dict = {}
    with signals:
        try:
            return _run_report(signals, where, quarter=quarter, start=start, end=end, data=data, preset=preset,
                               column_map=column_map, params_file=params_file, out_dir=out_dir, only=only,
                               engine=engine, scheduler=scheduler, notebooks_dir=notebooks_dir, progress=progress,
                               kernel_name=kernel_name, jobs=jobs, warm_kernels=warm_kernels, params=params)
        except ReportInterrupted as exc:
            report = where.get("report")
            state = (f"{report} unchanged" if report is not None and (report.exists() or report.is_symlink())
                     else "nothing was published")
            _say(f"abmkit report: stopped by {exc.name}: kernels stopped, staging folder removed, lock released; "
                 f"{state}")
            return exc.code


def _prepare(signals, where, *, quarter, start, end, data, preset, column_map, params_file, out_dir, only,
             engine, scheduler, notebooks_dir, progress, kernel_name, jobs, warm_kernels, params) -> _Ctx:
    """Everything that is checked before the lock: raises ReportError / ValueError (exit 2)."""
    nb_dir = Path(notebooks_dir) if notebooks_dir else _default_notebooks_dir()
    all_notebooks = discover_notebooks(nb_dir)
    stems = [p.stem for p in all_notebooks]
    file_global, file_sections = load_params_file(params_file, stems)
    cli_global, cli_sections = split_parameters(dict(params or {}), stems, "--param")
    declared = declared_parameters(all_notebooks)
    # every key the file and the command line give: declared by a notebook, plain values only
    check_parameters(file_global, file_sections, declared, f"parameter file {params_file}")
    check_parameters(cli_global, cli_sections, declared, "--param")
    global_params = {**file_global, **cli_global}
    sections: dict[str, dict] = {}
    for stem in stems:  # one section per notebook: file (stem, then number), then --param (stem, then number)
        merged = {}
        for src in (file_sections, cli_sections):
            merged.update(src.get(stem, {}))
            merged.update(src.get(stem[:2], {}))
        if merged:
            sections[stem] = merged
    quarter = quarter or global_params.get("quarter")
    start = start or global_params.get("start")
    end = end or global_params.get("end")
    for name, value in (("quarter", quarter), ("start", start), ("end", end), ("engine", engine),
                        ("scheduler", scheduler), ("only", only)):
        if value is not None:
            check_parameter_value(name, value, "command line")
    raw_dir, cmap = resolve_input(data, preset or global_params.get("preset"),
                                  column_map or global_params.get("column_map"))
    from .clean import check_inputs
    check_inputs(raw_dir, cmap)  # the map's files stay inside raw_dir (no .., no links out): exit 2 here
    notebooks = discover_notebooks(nb_dir, only) if only else all_notebooks
    jobs = default_jobs(engine) if jobs is None else int(jobs)
    if jobs < 1:
        raise ReportError(f"jobs must be 1 or more, not {jobs}")
    out = Path(out_dir)
    if quarter is None and start is None and end is None:
        source = "default"
        period = resolve_period(quarter=default_quarter(data))   # provisional: checked after notebook 01
    else:
        source = "given"
        period = resolve_period(quarter=quarter, start=start, end=end)
    ctx = _Ctx(signals=signals, where=where, nb_dir=nb_dir, notebooks=notebooks, all_notebooks=all_notebooks,
               declared=declared, global_params=global_params, sections=sections, period=period,
               period_source=source, data=data, raw_dir=raw_dir if _is_url(raw_dir) else Path(raw_dir), cmap=cmap,
               params_file=Path(params_file) if params_file else None, out_dir=out, only=only, engine=engine,
               scheduler=scheduler, progress=sys.stderr.isatty() if progress is None else bool(progress),
               kernel_name=kernel_name, jobs=jobs, warm_kernels=warm_kernels)
    if source == "default" and ctx.partial:
        try:
            ctx.period, ctx.period_source = _published_default_period(out, period), "published"
        except ReportError:
            if _outside_needs(ctx) or not ctx.cleans:
                raise
            # a run that needs nothing published (--only 01): its cleaned data decides (no second run)
    return ctx


def _run_report(signals, where, **kw) -> int:
    try:
        ctx = _prepare(signals, where, **kw)
    except (ReportError, ValueError) as exc:
        _say(f"abmkit report: error: {exc}")
        return EXIT_INPUT
    out = ctx.out_dir
    out.mkdir(parents=True, exist_ok=True)
    ctx.run_id = new_run_id()
    lock = PeriodLock(out, ctx.period.label, ctx.run_id)
    try:
        with signals.deferred():
            note = lock.acquire()
    except LockHeld as exc:
        _say(f"abmkit report: {exc}")
        return EXIT_LOCKED
    ctx.lock = lock
    where["report"] = out / ctx.period.label
    if note:
        _say(f"abmkit report: note: {note}")
    try:
        return _locked_run(ctx)
    finally:
        if ctx.lock is not None:
            ctx.lock.release()


def _locked_run(ctx: _Ctx) -> int:
    """The run, holding the period's lock: base version, fingerprints, staging, notebooks."""
    out, label = ctx.out_dir, ctx.period.label
    for n in reconcile(out, label):
        _say(f"abmkit report: note: {n}")
    if _source_note(ctx):
        _say(_source_note(ctx))
    if ctx.partial:
        ctx.base = current_version(out, label)
        problem = _base_problem(ctx)
        if problem:
            _say(f"abmkit report: error: {problem}")
            return EXIT_INPUT
        if not ctx.cleans and ctx.base is not None:  # notebook 01's period check, on the published data
            problem = _period_problem(data_of(out, label, ctx.base[1]), ctx.period)
            if problem:
                _say(f"abmkit report: error: {problem}")
                return EXIT_INPUT
    if ctx.reads_raw:  # size, mtime and sha256 of every input file, compared again before publication
        try:
            ctx.inputs = _input_fingerprints(ctx)
        except (ValueError, OSError) as exc:  # the export changed since it was checked a moment ago
            _say(f"abmkit report: error: {exc}")
            return EXIT_INPUT
    run = _Run(label, out, out / f".staging-{label}-{uuid.uuid4().hex[:8]}", ctx.run_id)
    ctx.run = run
    try:
        run.report.mkdir(parents=True)
        os.chmod(run.staging, 0o700)  # personal data and unredacted notebooks until published
        if ctx.partial and ctx.base is not None:
            base_report, base_id = ctx.base
            shutil.copytree(base_report, run.report, dirs_exist_ok=True)
            if not ctx.cleans:
                shutil.copytree(data_of(out, label, base_id), run.data)
        run.data.mkdir(exist_ok=True)
        secure_tree(run.data)  # 0700 / 0600, also the data copied from the published version
        ctx.common = _common(ctx)
        _say(f"abmkit report {ctx.period.label}: {len(ctx.notebooks)} notebook(s) from {ctx.nb_dir} -> "
             f"{run.final_report} ({ctx.jobs} at a time)")
        return _execute(ctx)
    except ReportInterrupted:
        ctx.run.discard()  # _execute stopped the kernels: no copy of the data stays behind
        raise
    except BaseException:  # a bug: never leave a half-written staging folder in the way
        if ctx.run.staging.exists():
            ctx.run.keep_failed()
            _say(f"abmkit report: interrupted; partial output in {ctx.run.failed_dir}, "
                 f"{ctx.run.final_report} unchanged")
        raise


def _common(ctx: _Ctx) -> dict:
    run, period = ctx.run, ctx.period
    return {
        "data_dir": str(run.data.resolve()), "output_dir": str(run.report.resolve()),
        "quarter": period.label if period.is_quarter else None,
        "start": None if period.is_quarter else str(period.start.date()),
        "end": None if period.is_quarter else str(period.end.date()),
        "raw_dir": ctx.raw_dir if _is_url(ctx.raw_dir) else str(Path(ctx.raw_dir).resolve()),
        "column_map": ctx.cmap, "engine": ctx.engine,
        "scheduler": ctx.scheduler,
        # the folder of every period's report: notebook 05 reads earlier periods' tables (trend, links)
        "reports_dir": str(Path(ctx.out_dir).resolve()),
    }


def _source_note(ctx: _Ctx) -> str | None:
    if ctx.period_source == "default" and ctx.cleans:
        return (f"abmkit report: no period given; starting with {ctx.period.label}, checked against the cleaned "
                "data once notebook 01 has run")
    if ctx.period_source == "published":
        return f"abmkit report: no period given; using {ctx.period.label}, the last complete quarter of the data"
    if ctx.period_source == "default":
        return f"abmkit report: no period given; using {ctx.period.label}, the last complete calendar quarter"
    return None


def _base_problem(ctx: _Ctx) -> str | None:
    """Why ``--only`` cannot run (None: it can). A notebook of the run that needs another
    notebook's outputs (:func:`notebook_dependencies`) not in the run needs them in the
    published report of the period (its page and its cleaned data), which the run copies;
    a run that needs nothing from outside (``--only 01``) may start without one."""
    label, only = ctx.period.label, ctx.only
    needed = _outside_needs(ctx)
    if not needed:
        if ctx.base is None:
            _say(f"abmkit report: note: no published report of {label} yet: this one holds only "
                 f"{[nb.name for nb in ctx.notebooks]}")
        return None
    if ctx.base is None:
        return (f"--only {only!r} needs the outputs of {needed}, and there is no published report of {label} in "
                f"{ctx.out_dir}; run the full report for {label} first")
    report_dir, run_id = ctx.base
    missing = [s for s in needed if not (report_dir / f"{s}.ipynb").is_file()]
    if missing:
        return (f"--only {only!r} needs the outputs of {missing}, which the published report of {label} does not "
                f"have; add them to --only, or run the full report for {label} first")
    if not data_of(ctx.out_dir, label, run_id).is_dir():
        return (f"--only {only!r} reuses the cleaned data of the published report, but "
                f"{data_of(ctx.out_dir, label, run_id)} does not exist; run the full report for {label} first")
    return None


def _outside_needs(ctx: _Ctx) -> list[str]:
    """Notebooks (stems) outside an ``--only`` run whose outputs a notebook of the run needs."""
    deps = notebook_dependencies(ctx.all_notebooks)
    run = {nb.stem for nb in ctx.notebooks}
    return sorted({d for s in run for d in deps.get(s, ()) if d not in run})


# --------------------------------------------------------------------------- period checks
#: the tables whose dates say whether a period has data: (table, column, singular, plural)
_PERIOD_TABLES = (("touchpoints", "occurred_at", "touch", "touches"),
                  ("opportunities", "created_at", "opportunity", "opportunities"))


def _column_stats(path: Path, column: str, period: Period | None = None) -> tuple[int, object, object, int]:
    """``(count, min, max, count in period)`` of a timestamp column of a parquet file,
    read in batches (a big table is never loaded whole)."""
    import pandas as pd

    def batches():
        try:
            import pyarrow.parquet as pq

            for b in pq.ParquetFile(path).iter_batches(columns=[column], batch_size=1 << 20):
                yield b.column(0).to_pandas()
        except (OSError, ValueError, TypeError):  # a partitioned folder and the like: read it whole
            yield pd.read_parquet(path, columns=[column])[column]

    n = inside = 0
    lo = hi = None
    for s in batches():
        s = pd.to_datetime(pd.Series(s), utc=True).dropna()
        if not len(s):
            continue
        n += len(s)
        mn, mx = s.min(), s.max()
        lo = mn if lo is None or mn < lo else lo
        hi = mx if hi is None or mx > hi else hi
        if period is not None:
            inside += int(period.contains(s).sum())
    return n, lo, hi, inside


def _data_summary(data_dir: Path, period: Period | None = None) -> dict | None:
    """``{table: (count, min, max, count in period)}`` of the cleaned data's dated tables;
    None when the folder holds none of them (a cleaning notebook that writes another format)."""
    out = {}
    for table, column, _, _ in _PERIOD_TABLES:
        p = Path(data_dir) / f"{table}.parquet"
        if p.exists():
            try:
                out[table] = _column_stats(p, column, period)
            except Exception:  # noqa: BLE001 - unreadable: the notebooks will say so
                continue
    return out or None


def _ranges_text(summary: dict) -> str:
    parts = []
    for table, column, _, plural in _PERIOD_TABLES:
        n, lo, hi, _ = summary.get(table, (0, None, None, 0))
        parts.append(f"{table}.{column} from {lo.date()} to {hi.date()} ({n:,} {plural})" if n
                     else f"no {plural}")
    return "; ".join(parts)


def _period_problem(data_dir: Path, period: Period) -> str | None:
    """The message when the period holds no touch and no opportunity (else None)."""
    summary = _data_summary(data_dir, period)
    if summary is None or sum(v[3] for v in summary.values()):
        return None
    end_incl = (period.end - _dt.timedelta(days=1)).date()
    return (f"no touch and no opportunity in {period.label} ({period.start.date()} to {end_incl}); the data: "
            f"{_ranges_text(summary)}. Choose a period inside the data's range (--quarter, or --start/--end); "
            "nothing was published")


def _default_period_from(data_dir: Path, today=None) -> tuple[Period, str] | None:
    """The default period of cleaned data: the last complete quarter that holds touches
    (opportunities when there are no touches), with the reason; None when the folder has
    no dated table; ReportError when no complete quarter holds any."""
    import pandas as pd

    from .kpis import last_complete_quarter

    summary = _data_summary(data_dir)
    if summary is None:
        return None
    chosen = next(((t, c, p) for t, c, _, p in _PERIOD_TABLES if summary.get(t, (0,))[0]), None)
    if chosen is None:
        raise ReportError("the cleaned data holds no touch and no opportunity: there is no period to report on")
    table, column, plural = chosen
    hi = summary[table][2]
    today_ts = pd.Timestamp(today, tz="UTC") if today is not None else None
    period = resolve_period(quarter=last_complete_quarter(pd.Series([hi]), today=today_ts))
    if not _column_stats(Path(data_dir) / f"{table}.parquet", column, period)[3]:
        raise ReportError(f"the data covers no complete quarter ({_ranges_text(summary)}); give the period "
                          "with --quarter, or --start/--end")
    return period, f"the last complete quarter with {plural} ({_ranges_text(summary)})"


def _published_default_period(out: Path, provisional: Period) -> Period:
    """``--only`` without a period: the default period of the published data (the report
    of the provisional period, else the latest published quarter)."""
    labels = [provisional.label] if current_version(out, provisional.label) else sorted(
        (p.name for p in _children(out) if re.fullmatch(r"\d{4}Q[1-4]", p.name) and current_version(out, p.name)),
        reverse=True)
    if not labels:
        raise ReportError(f"--only builds on a published report, and there is none in {out}; run the full "
                          "report first (or give --quarter)")
    cur = current_version(out, labels[0])
    found = _default_period_from(data_of(out, labels[0], cur[1]))
    period = found[0] if found else provisional
    if current_version(out, period.label) is None:
        raise ReportError(f"no period given and the data's last complete quarter is {period.label}, which has no "
                          f"published report in {out}; run the full report for it first (or give --quarter)")
    return period


def _children(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError:
        return []


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
    # the kernels' output is the report: no progress bars in it (the runner shows papermill's)
    env["ABMKIT_PROGRESS"] = "0"
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
    to ``events`` as ``(kind, job, error)``; the last one is ``("closed", job, None)``.
    The thread is a daemon, and the runner joins it before it returns (:meth:`join`), so
    no thread of the run outlives it (a thread alive at interpreter exit can abort it)."""

    def __init__(self, nb_path: Path, kernel_name: str, progress: bool, events: "queue.Queue", t0: float):
        self.nb_path = nb_path
        self.out_nb: Path | None = None
        self.html_path: Path | None = None
        self.stem = nb_path.stem
        self.kernel_name, self.progress, self.events, self.t0 = kernel_name, progress, events, t0
        self.params: dict | None = None
        self.km = None
        self.times: dict[str, list[float]] = {}  # step -> [start, end], seconds since the run started
        self.cpu: dict[str, float] = {}  # warm / run -> CPU seconds of the kernel process
        self.error_name: str | None = None  # the exception class of a failure (CleanError: bad input)
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

    def go(self, params: dict, out_nb: Path, html_path: Path) -> None:
        self.params, self.out_nb, self.html_path = params, out_nb, html_path
        self._go.set()
        self._start()

    def cancel(self) -> None:
        self._cancelled = True
        self._go.set()
        self._wake.set()

    def kill(self) -> None:
        """Stop the kernel now (interrupted run), with the processes it started (its
        process group): the thread then ends."""
        self.cancel()
        prov = getattr(self.km, "provisioner", None)
        proc = getattr(prov, "process", None)
        pgid = getattr(prov, "pgid", None)
        try:
            if pgid and hasattr(os, "killpg") and pgid != os.getpgid(0):
                os.killpg(pgid, signal.SIGKILL)
            elif proc is not None:
                proc.kill()
        except OSError:
            try:
                if proc is not None:
                    proc.kill()
            except OSError:
                pass

    def join(self, timeout: float) -> bool:
        if self.started:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def _start(self) -> None:
        self._wake.set()
        if not self.started:
            self._thread.start()

    # ---- the thread
    def _post(self, kind: str, error: str | None = None) -> None:
        self.events.put((kind, self, error))

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
            self.error_name = type(exc).__name__
            self._post("ran", f"{type(exc).__name__}: {exc}")
        finally:
            try:
                self._shutdown(loop)
                loop.close()
            finally:
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
        if self._cancelled:
            return
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
            self.error_name = getattr(exc, "ename", None) or type(exc).__name__
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


#: seconds the runner waits for its notebook threads to end once their kernels are told
#: to stop (killed on an interruption)
JOIN_TIMEOUT = 20.0


def _join(jobs, timeout: float = JOIN_TIMEOUT) -> list[str]:
    """Wait for the threads of ``jobs`` to end (kill the kernels of those still running
    after ``timeout``, then wait a little more); returns the stems still alive."""
    deadline = time.monotonic() + timeout
    for j in jobs:
        j.join(max(0.0, deadline - time.monotonic()))
    alive = [j for j in jobs if not j.join(0)]
    if alive:
        for j in alive:
            j.kill()
        deadline = time.monotonic() + 5.0
        for j in alive:
            j.join(max(0.0, deadline - time.monotonic()))
    return [j.stem for j in jobs if not j.join(0)]


def _gate(ctx: _Ctx, stem: str):
    """The check after the cleaning notebook (main thread, before any notebook that reads
    the cleaned data starts): ``None`` (go on), ``("rerun", period)`` (no period was given
    and the data's default period is another one: notebook 01 runs again for it) or
    ``("stop", code, message)`` (nothing is published)."""
    if ctx.period_source == "default":
        try:
            found = _default_period_from(ctx.run.data)
        except ReportError as exc:
            return ("stop", EXIT_INPUT, f"abmkit report: error: {exc}; nothing was published")
        if found is None:  # no canonical tables to read (another cleaning notebook): keep the period
            return None
        period, why = found
        if period.label == ctx.period.label:
            _say(f"abmkit report: no period given; using {period.label}, {why}")
            return None
        if ctx.partial:  # --only: the copied pages belong to the first period
            return ("stop", EXIT_INPUT, f"abmkit report: error: no period given, and the data's last complete "
                                        f"quarter is {period.label}, not {ctx.period.label}: give --quarter; "
                                        "nothing was published")
        if ctx.reruns:
            return ("stop", EXIT_FAILED, f"abmkit report: FAILED: the data's default period changed from "
                                         f"{ctx.period.label} to {period.label} while the report ran; nothing "
                                         "was published")
        _say(f"abmkit report: no period given; using {period.label}, {why}; notebook {stem} runs again for it")
        return ("rerun", period)
    problem = _period_problem(ctx.run.data, ctx.period)
    return ("stop", EXIT_INPUT, f"abmkit report: error: {problem}") if problem else None


def _relabel(ctx: _Ctx, period: Period) -> None:
    """Move a run to another period (the default period, found after notebook 01): take
    that period's lock (LockHeld if another run holds it), release the first one, rename
    the staging folder, point the parameters at the new paths."""
    new_lock = PeriodLock(ctx.out_dir, period.label, ctx.run_id)
    with ctx.signals.deferred():
        note = new_lock.acquire()
        old, ctx.lock = ctx.lock, new_lock
        old.release()
        ctx.run.relabel(period.label)
        ctx.where["report"] = ctx.out_dir / period.label
    if note:
        _say(f"abmkit report: note: {note}")
    ctx.period = period
    ctx.common = _common(ctx)
    for n in reconcile(ctx.out_dir, period.label):
        _say(f"abmkit report: note: {n}")


def _execute(ctx: _Ctx) -> int:
    """The notebook runs, checks, index and publication of :func:`run_report`.

    Each notebook starts when the notebooks it needs (:func:`notebook_dependencies`) have
    finished and fewer than ``jobs`` notebooks run (a kernel being warmed counts as one);
    among ready notebooks the longest (last run's seconds, else :data:`NOTEBOOK_STEPS`
    cost) starts first. A free slot with nothing ready starts (warms) the kernel of a
    notebook whose dependencies have started. After the cleaning notebook the period is
    checked (:func:`_gate`). After a failure no notebook starts; those running finish, then
    the run fails naming the first failed notebook. Every thread is joined before it returns."""
    from . import __version__
    # import the kernel machinery here, in the main thread, before any worker thread
    # starts: two threads importing jupyter_client at once can deadlock on its module lock
    import jupyter_client.manager  # noqa: F401
    import nbclient  # noqa: F401
    import nbconvert  # noqa: F401
    import papermill  # noqa: F401

    run, notebooks, all_notebooks, jobs = ctx.run, ctx.notebooks, ctx.all_notebooks, ctx.jobs
    manifest_path = run.report / "run.json"
    manifest = json.loads(manifest_path.read_text("utf-8")) if manifest_path.exists() else {}
    timings = dict(manifest.get("seconds", {}))
    used_params = dict(manifest.get("parameters", {}))
    html_timings = dict(manifest.get("html_seconds", {}))
    try:  # the last run of this period: its timings order the notebooks that are ready together
        last = json.loads((run.final_report / "run.json").read_text("utf-8")).get("seconds", {})
    except (OSError, ValueError, AttributeError):
        last = {}
    last = last if isinstance(last, dict) else {}
    t_total, t_origin = time.perf_counter(), time.time()
    deps = notebook_dependencies(notebooks)

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

    def new_job(s: str) -> _NotebookJob:
        return _NotebookJob(by_stem[s], ctx.kernel_name, ctx.progress, events, t_total)

    work = {s: new_job(s) for s in by_stem}
    retired: list[_NotebookJob] = []  # jobs replaced by a re-run
    state = dict.fromkeys(by_stem, "waiting")  # -> warming -> warm -> running -> (rerun ->) ran | failed
    failures: list[tuple[str, str, str | None]] = []
    stop: list[tuple[int, str]] = []
    params: dict[str, dict] = {}
    html_done: set[str] = set()
    gate_stem = next((s for s in by_stem if s.startswith("01")), None)

    def all_jobs() -> list[_NotebookJob]:
        return list(work.values()) + retired

    def busy() -> int:
        return sum(st in ("warming", "running", "rerun") for st in state.values())

    def compute_params() -> None:
        for nb in notebooks:
            try:
                params[nb.stem] = notebook_parameters(nb, ctx.common, ctx.global_params, ctx.sections,
                                                      declared=set(ctx.declared.get(nb.stem, ())))
            except Exception as exc:  # noqa: BLE001 - unreadable notebook
                failures.append((nb.stem, f"cannot read its parameters: {exc}", None))
                return

    def start(s: str) -> None:
        state[s] = "running"
        _say(f"[{number[s]}/{len(notebooks)}] {by_stem[s].name} ...")
        work[s].go(params[s], run.report / by_stem[s].name, run.report / f"{s}.html")

    def schedule(first: bool = False) -> None:
        if failures or stop:
            return
        if first:  # only the kernels of the first notebooks
            for s in order:
                if ctx.warm_kernels and busy() < jobs and not deps[s]:
                    state[s] = "warming"
                    work[s].warm()
            return
        for s in order:  # ready notebooks first
            if busy() >= jobs:
                return
            if state[s] in ("waiting", "warm") and all(state[d] == "ran" for d in deps[s]):
                start(s)
        warmed = ctx.warm_kernels  # then a free slot starts the kernel of a notebook whose dependencies started
        while warmed and busy() < jobs:  # again after a start: it may let a dependent warm up
            warmed = False
            for s in order:
                if busy() < jobs and state[s] == "waiting" and all(state[d] != "waiting" for d in deps[s]):
                    state[s] = "warming"
                    work[s].warm()
                    warmed = True
                    break

    rerun_period: Period | None = None
    try:
        schedule(first=True)  # the first kernels start while the parameters are computed
        compute_params()
        while True:
            schedule()
            stuck = [s for s, st in state.items() if st in ("waiting", "warm")]
            if stuck and not failures and not stop and busy() == 0:  # nothing runs and nothing is ready
                failures.append((stuck[0], f"it waits for {list(deps[stuck[0]])}, which cannot run first: "
                                           "check NOTEBOOK_STEPS for a cycle", None))
            if failures or stop or all(st in ("ran", "failed") for st in state.values()):
                for s, st in state.items():
                    if st in ("waiting", "warm"):
                        work[s].cancel()
            if failures or stop:  # every started notebook must end before its folder moves
                if not any(j.started and not j.closed for j in all_jobs()):
                    break
            elif html_done == set(state):  # the kernels may still be exiting: waited for below
                break
            try:
                kind, job, error = events.get(timeout=0.5)
            except queue.Empty:
                continue
            s = job.stem
            if kind == "closed":
                job.closed = True
                if state[s] == "rerun" and job is work[s] and not failures and not stop:
                    try:  # the first run of 01 is over: move to the period of the data and run it again
                        _relabel(ctx, rerun_period)
                    except LockHeld as exc:
                        stop.append((EXIT_LOCKED, f"abmkit report: {exc}"))
                        continue
                    ctx.reruns += 1
                    compute_params()
                    if failures:
                        continue
                    retired.append(job)
                    work[s] = new_job(s)
                    html_done.discard(s)
                    start(s)
                continue
            if job is not work[s] or state[s] == "rerun":  # the first run of a re-run notebook: ignored
                continue
            if kind == "warm" and state[s] == "warming":
                state[s] = "warm"
            elif kind == "ran":
                if error is None:
                    secs = job.times["run"][1] - job.times["run"][0]
                    timings[s] = round(secs, 2)
                    used_params[s] = params[s]
                    _say(f"[{number[s]}/{len(notebooks)}] {by_stem[s].name} done in {secs:.1f} s")
                    decision = _gate(ctx, s) if s == gate_stem else None
                    if decision is None:
                        state[s] = "ran"
                    elif decision[0] == "rerun":
                        state[s], rerun_period = "rerun", decision[1]
                    else:
                        state[s] = "ran"
                        stop.append((decision[1], decision[2]))
                else:
                    state[s] = "failed"
                    failures.append((s, error, job.error_name))
            elif kind == "html":
                if error is None:
                    html_timings[s] = round(job.times["html"][1] - job.times["html"][0], 2)
                    html_done.add(s)
                else:
                    failures.append((s, error, None))
    except BaseException:  # interrupted: stop the kernels; run_report removes the staging folder
        import logging

        before = logging.root.manager.disable
        logging.disable(logging.CRITICAL)  # nbclient's "Kernel died ..." about the kernels stopped here
        try:
            for j in all_jobs():
                j.kill()
            _join(all_jobs(), 5.0)
        finally:
            logging.disable(before)
        raise
    if stop and not failures:
        _join(all_jobs())
        run.discard()  # nothing to debug: the input was refused
        code, message = stop[0]
        _say(message)
        return code
    if failures:
        _join(all_jobs())
        first, what, ename = failures[0]
        others = [(by_stem[s].name, w) for s, w, _ in failures[1:]]
        code = EXIT_INPUT if ename in INPUT_ERRORS else EXIT_FAILED
        return _fail(run, by_stem[first], what, run.report / by_stem[first].name, others=others, code=code)

    t_finish = time.perf_counter()
    # the inputs must be the ones the run started with
    if ctx.inputs is not None:
        try:
            lines = changed(ctx.inputs, _input_fingerprints(ctx))
        except (ValueError, OSError) as exc:
            lines = [f"the export or its column map changed: {_first_line(str(exc), 300)}"]
        if lines:
            _join(all_jobs())
            return _fail_inputs(run, lines)
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
    # record the final locations (the version folders), not the staging folder the
    # notebooks ran in, nor the version an --only run copied its other pages and data from
    out_real = ctx.out_dir.resolve()
    new_report = version_dir(out_real, run.label, run.run_id)
    new_data = data_version_dir(out_real, run.label, run.run_id)
    final = {str(run.report.resolve()): str(new_report), str(run.data.resolve()): str(new_data)}
    if ctx.base is not None:
        final[str(ctx.base[0].resolve())] = str(new_report)
        final[str(data_of(ctx.out_dir, run.label, ctx.base[1]).resolve())] = str(new_data)
    used_params = {nb: {k: _rebase(v, final) if isinstance(v, str) else v for k, v in ps.items()}
                   for nb, ps in used_params.items()}
    inputs = ctx.inputs if ctx.inputs is not None else manifest.get("inputs")
    manifest = {
        "label": ctx.period.label, "start": str(ctx.period.start.date()), "end": str(ctx.period.end.date()),
        "period_source": ctx.period_source, "run_id": run.run_id,
        "run_date": run_date, "abmkit_version": __version__, "data": str(ctx.data), "raw_dir": ctx.common["raw_dir"],
        "column_map": ctx.cmap, "engine": ctx.engine, "notebooks": [p.name for p in all_notebooks],
        "notebooks_run": [p.name for p in notebooks],
        "seconds": timings, "html_seconds": html_timings,
        "total_seconds": round(time.perf_counter() - t_total, 2), "jobs": jobs,
        # this run's steps, [start, end] in seconds since timeline_origin (a Unix time), when
        # the runner started its notebooks (warm: kernel start and imports)
        "timeline": {s: j.times for s, j in work.items()}, "timeline_origin": round(t_origin, 3),
        "kernel_cpu_seconds": {s: j.cpu for s, j in work.items() if j.cpu},
        "parameters": used_params, "privacy_redactions": redacted,
        # size, mtime and sha256 of every input file at the start (checked
        # unchanged at the end); an --only run without notebook 01 keeps those of the data it reused
        "inputs": inputs,
    }
    if ctx.base is not None:
        manifest["based_on_run_id"] = ctx.base[1]
    t_index = time.perf_counter()
    # run.json first, so the index links it; then again with the index's own timing
    _write_text(run.report / "run.json", json.dumps(manifest, indent=2, default=str))
    from .publish import published_labels

    write_index(run.report, period=ctx.period, notebooks=listed, run_date=run_date, version=__version__,
                quality=quality, findings=tuple(p.stem for p in all_notebooks if p.stem != quality_nb),
                published=published_labels(ctx.out_dir))
    manifest["index_seconds"] = round(time.perf_counter() - t_index, 2)
    manifest["summary_pdf"] = _summary_pdf(run.report)
    _write_text(run.report / "run.json", json.dumps(manifest, indent=2, default=str))  # run.report: after a relabel too

    # the executed notebooks ran in the staging folder: point their parameters at the final one
    for nb_file in run.report.glob("*.ipynb"):
        text = nb_file.read_text("utf-8")
        new = text
        for old_path, new_path in final.items():
            new = new.replace(json.dumps(old_path)[1:-1], json.dumps(new_path)[1:-1])
        if new != text:
            _write_text(nb_file, new)
    secure_tree(run.data)  # files a notebook wrote with its own writers (0600)
    private_dir(run.final_data.parent, tighten=True)  # <out>/.data is 0700
    previous = current_version(ctx.out_dir, run.label)
    versions_before = _version_names(ctx.out_dir, run.label)
    try:
        with ctx.signals.deferred():  # a signal waits until the report is in place (or not)
            publish(ctx.out_dir, run.label, run.run_id, run.report, run.data)
    except OSError as exc:
        _join(all_jobs())
        now = current_version(ctx.out_dir, run.label)
        state_text = ("the new report is in place" if now is not None and now[1] == run.run_id else
                      f"the previous report {run.final_report} is unchanged" if now is not None else
                      "no report was written")
        _say(f"abmkit report: FAILED to publish: {type(exc).__name__}: {exc}; {state_text}; the next run of "
             f"{run.label} cleans up what is left")
        return EXIT_FAILED
    shutil.rmtree(run.staging, ignore_errors=True)
    try:  # the list of every period (<out>/index.html): a failure here leaves the published report whole
        write_reports_index(ctx.out_dir)
    except OSError as exc:
        _say(f"abmkit report: WARNING could not update {ctx.out_dir / 'index.html'} (the list of periods): {exc}")
    # leftovers: versions beyond the new and the previous one (and those of crashed runs),
    # temporary links; and personal data in .failed/ and crashed staging folders
    # (a report of the earlier layout, moved into .versions by this publication, is the previous one)
    legacy = {n for n in _version_names(ctx.out_dir, run.label) - versions_before if n.endswith("-legacy")}
    prune(ctx.out_dir, run.label, keep=(run.run_id, previous[1] if previous else None, *legacy))
    purge_private_leftovers(ctx.out_dir, run.label)
    deadline = time.monotonic() + KERNEL_START_TIMEOUT
    while any(j.started and not j.closed for j in all_jobs()) and time.monotonic() < deadline:
        try:  # the last kernels exit
            kind, job, _ = events.get(timeout=0.5)
        except queue.Empty:
            continue
        if kind == "closed":
            job.closed = True
    alive = _join(all_jobs(), 5.0)
    if alive:
        _say(f"abmkit report: WARNING the kernel of {alive} did not exit in time and was stopped")
    _say(f"abmkit report {run.label}: done in {time.perf_counter() - t_total:.1f} s "
         f"(notebooks and HTML {t_finish - t_total:.1f} s) -> {run.final_report / 'index.html'}")
    return EXIT_OK


def _version_names(out: Path, label: str) -> set[str]:
    from .publish import VERSIONS

    return {p.name for folder in (out / VERSIONS / label, out / ".data" / VERSIONS / label) for p in _children(folder)}


def _rebase(value: str, final: dict) -> str:
    for old, new in final.items():
        if value == old or value.startswith(old + os.sep):
            return new + value[len(old):]
    return value


def _fail(run: _Run, nb_path: Path, what: str, out_nb: Path, others: list[tuple[str, str]] = (),
          code: int = EXIT_FAILED) -> int:
    """Move the staging folder to ``<out>/.failed/<label>/`` and say what failed (``others``:
    ``(notebook, what)`` of further notebooks that failed in the same run)."""
    run.keep_failed()
    partial_nb = run.failed_dir / "report" / out_nb.name
    previous = (f"the previous report {run.final_report} is unchanged" if run.final_report.exists()
                else "no report was written")
    also = "".join(f"\n  also FAILED: notebook {name}: {w}" for name, w in others)
    kind = " (the export cannot be used: exit code 2)" if code == EXIT_INPUT else ""
    _say(f"abmkit report: FAILED in notebook {nb_path.name}{kind}: {what}\n"
         f"  partially executed notebook: {partial_nb if partial_nb.exists() else '(not written)'}\n"
         f"  {previous}{also}")
    return code


def _fail_inputs(run: _Run, lines: list[str]) -> int:
    """An input file changed during the run: nothing is published (exit 1)."""
    run.keep_failed()
    previous = (f"the previous report {run.final_report} is unchanged" if run.final_report.exists()
                else "no report was written")
    _say("abmkit report: FAILED: an input changed while the report ran, so its numbers could mix two versions "
         "of the export:\n" + "".join(f"  {line}\n" for line in lines)
         + f"  the report was not published; {previous}. Run it again once the export is complete.")
    return EXIT_FAILED


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


#: findings keys that record settings, not findings (left out of the index's rows)
_SETTINGS_KEYS = ("not_applicable.", "dataset.", "mapping_settings.")
#: findings keys that hold the executive summary itself (shown at the top, not again in the appendix)
_SHOWN_ABOVE = ("executive_summary", "headline_numbers", "actions", "period_title")


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
            found = load_findings(output_dir, stem)
            # what the notebook could not show, and why ({section or kpi: reason}, abmkit.applicability)
            na = found.get("not_applicable") if isinstance(found.get("not_applicable"), dict) else {}
            na = {str(k): str(r) for k, r in na.items()}
            # the settings that produced the page (mapping, MQA rule, fingerprint) are in its
            # findings file and run.json; the index lists what the page found
            items = [kv for kv in _scalar_items(found) if not kv[0].startswith(_SETTINGS_KEYS + _SHOWN_ABOVE)]
            items.sort(key=lambda kv: kv[0] not in ("headline", "summary"))
            if not items and not na:
                rows.append({"notebook": stem, "finding": "", "value": "not available"})
            shown = set()
            for k, v in items[:max_items]:
                reason = na.get(k.rsplit(".", 1)[-1]) if v is None else None
                if reason:
                    shown.add(k.rsplit(".", 1)[-1])
                value = _fmt(v) if v is not None else (f"n/a — {reason}" if reason else "n/a")
                rows.append({"notebook": stem, "finding": k, "value": value})
            by_reason: dict[str, list[str]] = {}
            for key, reason in na.items():
                if key not in shown:
                    by_reason.setdefault(reason, []).append(key)
            for reason, keys in by_reason.items():   # one row per reason: "n/a — needs touchpoints: none supplied"
                rows.append({"notebook": stem, "finding": ", ".join(keys), "value": f"n/a — {reason}"})
    return rows
