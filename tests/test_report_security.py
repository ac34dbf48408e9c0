"""Issue 17 (findings 1, 4, 7, 11) and issue 18 (items 3 and 7): the report runner.

- parameters: only plain values reach a notebook, and a string cannot break out of the
  injected-parameters cell (papermill escapes it safely: proven below, and checked by the
  runner for every value); unknown keys are refused with the declared parameters listed;
- publication: a lock per period; versioned folders behind an atomic link, so a crash at
  any step leaves the complete previous or the complete new report; --only builds on the
  published version; leftovers of crashed runs are removed by the next success;
- inputs: fingerprinted at the start, checked before publication;
- exit codes: 0 / 1 / 2 / 75 / 130 / 143, one-line messages, no abort;
- the default period comes from the cleaned data; a period without data is refused.

Stand-in notebooks (as in test_report.py) keep the runs short: each writes its findings
with a ``tag`` parameter, so a page of one run cannot pass for a page of another.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from abmkit import publish, report

REPO = Path(__file__).resolve().parents[1]
LABEL = "2026Q3"
STEMS = ("01_clean", "02_resolve", "03_attr", "04_progress", "05_kpis")
ATTACK = 'x"""; import os; os.system("touch PWNED") #'
NASTY = [
    ATTACK, "a\nimport os", "a\\", "\\", '\\"', "\\\n", "'''", '"""', "'; import os #", "\r\n\x00\x1b\x7f",
    "\u2028\u2029\x85\x0c\x0b", "\ud800", "\U0001f600 ünïcödé", "{x}", "%s", "\\N{BULLET}", "\\x41", "\\u0041",
    '" + __import__("os").system("touch PWNED") + "', "\"\"\"\nimport os\nos.system('touch PWNED')\n\"\"\"",
]


# ------------------------------------------------------------------ stand-in notebooks and export
def _nb(path: Path, title: str, params: str, code: str) -> Path:
    p = new_code_cell(params)
    p.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[new_markdown_cell(f"# {title}"), p, new_code_cell(code)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


_COMMON_CODE = """
import json, os, pathlib, time
if pid_file:
    with open(pid_file, 'a') as fh:
        fh.write(f"{os.getpid()}\\n")
time.sleep(sleep)
out = pathlib.Path(output_dir)
(out / 'findings').mkdir(parents=True, exist_ok=True)
(out / 'findings' / '__STEM__.json').write_text(json.dumps(
    {'headline': '__STEM__ ' + str(tag), 'tag': tag, 'quarter': quarter, 'start': start}))
print('tag=' + repr(tag))
"""


@pytest.fixture(scope="module")
def notebooks(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("standins")
    base = "data_dir = None\noutput_dir = None\nquarter = None\nstart = None\nend = None\ntag = 'default'\n" \
           "sleep = 0\npid_file = None\n"
    _nb(d / "01_clean.ipynb", "Cleaning", "raw_dir = None\ncolumn_map = None\nclean_error = False\n" + base,
        "import pandas as pd, pathlib\n"
        "raw = pd.read_csv(pathlib.Path(raw_dir) / 'touches.csv')\n"
        "if clean_error:\n"
        "    from abmkit.clean import CleanError\n"
        "    raise CleanError('touches.csv: no usable row (test)')\n"
        "d = pathlib.Path(data_dir)\n"
        "d.mkdir(parents=True, exist_ok=True)\n"
        "ts = pd.to_datetime(raw['occurred_at'], utc=True, format='ISO8601')\n"
        "pd.DataFrame({'occurred_at': ts}).to_parquet(d / 'touchpoints.parquet')\n"
        "pd.DataFrame({'created_at': ts[:0]}).to_parquet(d / 'opportunities.parquet')\n"
        "(d / 'tag.txt').write_text(str(tag))\n" + _COMMON_CODE.replace("__STEM__", "01_clean"))
    _nb(d / "02_resolve.ipynb", "Resolve", base + "truncate = None\n",
        "if truncate:\n    open(truncate, 'w').close()\n" + _COMMON_CODE.replace("__STEM__", "02_resolve"))
    _nb(d / "03_attr.ipynb", "Attribution", base + "n_boot = 200\n", _COMMON_CODE.replace("__STEM__", "03_attr"))
    for stem in ("04_progress", "05_kpis"):
        _nb(d / f"{stem}.ipynb", stem, base, _COMMON_CODE.replace("__STEM__", stem))
    return d


def _export(folder: Path, dates=("2026-07-03", "2026-08-14", "2026-09-29 12:00")) -> Path:
    raw = folder / "raw"
    raw.mkdir(parents=True)
    (raw / "column_map.yaml").write_text("tables:\n  touchpoints:\n    file: touches.csv\n")
    pd.DataFrame({"occurred_at": list(dates), "n": range(len(dates))}).to_csv(raw / "touches.csv", index=False)
    return folder


def _run(notebooks, data, out, **kw):
    kw.setdefault("quarter", LABEL)
    kw.setdefault("jobs", 2)
    return report.run_report(data=str(data), out_dir=str(out), notebooks_dir=notebooks, progress=False, **kw)


def _cli(notebooks, data, out, *args, env=None, **popen):
    """``python -m abmkit report`` with the stand-in notebooks (``--notebooks`` is not a CLI
    option: a tiny wrapper passes notebooks_dir)."""
    code = ("import sys\nfrom abmkit import cli, report\n"
            "_real = report.run_report\n"
            f"report.run_report = lambda **kw: _real(notebooks_dir={str(notebooks)!r}, progress=False, **kw)\n"
            "sys.exit(cli.main(sys.argv[1:]))\n")
    argv = [sys.executable, "-c", code, "report", "--data", str(data), "--out", str(out), *args]
    return argv, {**os.environ, **(env or {})}


def _tags(page_dir: Path) -> set:
    """The tags of every notebook's findings in a report folder (one run: one tag)."""
    return {json.loads((page_dir / "findings" / f"{s}.json").read_text())["tag"] for s in STEMS}


def _assert_complete(out: Path, label: str = LABEL) -> str:
    """``<out>/<label>/`` is one whole report: index and the 5 pages, all of one run, paired
    with its own private data; returns its tag."""
    q = out / label
    assert (q / "index.html").is_file(), sorted(p.name for p in out.iterdir())
    for s in STEMS:
        assert (q / f"{s}.html").is_file() and (q / f"{s}.ipynb").is_file(), s
    tags = _tags(q)
    assert len(tags) == 1, tags
    cur = publish.current_version(out, label)
    assert (publish.data_of(out, label, cur[1]) / "tag.txt").read_text() == next(iter(tags))
    return next(iter(tags))


@pytest.fixture(scope="module")
def published(notebooks, tmp_path_factory) -> tuple[Path, Path]:
    """A published report (tag "A") of the stand-ins: ``(data, out)``; copy it before changing it."""
    tmp = tmp_path_factory.mktemp("published")
    data, out = _export(tmp / "data"), tmp / "reports"
    assert _run(notebooks, data, out, params={"tag": "A"}) == 0
    return data, out


def _copy(published, tmp_path: Path) -> tuple[Path, Path]:
    import shutil

    data, out = tmp_path / "data", tmp_path / "reports"
    shutil.copytree(published[0], data)
    shutil.copytree(published[1], out, symlinks=True)
    return data, out


# ------------------------------------------------------------------ finding 1: parameters are values, never code
@pytest.mark.parametrize("value", NASTY)
def test_papermill_renders_any_string_as_the_same_string(value, tmp_path):
    """papermill's PythonTranslator escapes with unicode_escape (every backslash doubled,
    control and non-ASCII characters escaped) and then ``"`` -> ``\\"``: the cell it writes
    assigns exactly the string, whatever it holds. Run here, in a fresh namespace."""
    from papermill.translators import PythonTranslator

    cell = PythonTranslator.codify({"tag": value, "nested": {"k": [value, {"v": value}]}})
    scope: dict = {}
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(cell, "<parameters>", "exec"), scope)  # noqa: S102 - the point of the test
    finally:
        os.chdir(cwd)
    assert scope["tag"] == value and scope["nested"] == {"k": [value, {"v": value}]}
    assert not (tmp_path / "PWNED").exists()
    report.check_parameter_value("tag", value)   # the runner's own rendering check agrees


def test_papermill_escaping_holds_for_random_strings():
    from papermill.translators import PythonTranslator

    rng = random.Random(17)
    alphabet = ['"', "'", "\\", "\n", "\r", "#", ";", "\x00", "\u2028", "{", "}", "N", "x", "u", "a", " ", "é",
                "\U0001f600", "\t"]
    for _ in range(3000):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        scope: dict = {}
        exec(PythonTranslator.codify({"v": value}), scope)  # noqa: S102
        assert scope["v"] == value, repr(value)


class _Sneaky(str):
    def encode(self, *a, **k):  # a subclass could render itself as anything
        return b'"; import os #'


@pytest.mark.parametrize("value, where", [
    (b"import os", "`tag` is bytes"), ({"a", "b"}, "`tag` is set"), (("a",), "`tag` is tuple"),
    (_Sneaky("x"), "`tag` is _Sneaky"), ({"k": [1, b"x"]}, "`tag.k[1]` is bytes"),
    ({1: "a"}, "key of type int"), (10 ** 1300, "more than 1,000 digits"), (Path("/x"), "PosixPath"),
])
def test_non_plain_values_are_refused_naming_the_key(value, where):
    with pytest.raises(report.ReportError) as err:
        report.check_parameter_value("tag", value)
    assert where in str(err.value) and "tag" in str(err.value)


def test_cycles_and_alias_bombs_in_values_are_refused_fast():
    loop: list = []
    loop.append(loop)
    with pytest.raises(report.ReportError, match="contains itself"):
        report.check_parameter_value("tag", loop)
    bomb: list = ["lol"] * 9
    for _ in range(8):
        bomb = [bomb] * 9   # 9**9 values through shared references
    t0 = time.monotonic()
    with pytest.raises(report.ReportError, match="more than 100,000 values"):
        report.check_parameter_value("tag", bomb)
    assert time.monotonic() - t0 < 5


@pytest.mark.notebook
def test_code_in_parameters_never_runs(notebooks, tmp_path, capsys):
    """Strings reach the notebook as the same strings (exit 0, nothing executed); bytes
    and sets, from the library or from the YAML file, are refused with exit 2."""
    data, out = _export(tmp_path / "data"), tmp_path / "reports"
    pf = tmp_path / "params.yaml"
    pf.write_text('tag: "a\\nimport os\\nos.system(\\"touch PWNED\\")"\n')
    assert _run(notebooks, data, out, params_file=str(pf), params={"02": {"tag": ATTACK}}) == 0
    f1 = json.loads((out / LABEL / "findings" / "01_clean.json").read_text())
    f2 = json.loads((out / LABEL / "findings" / "02_resolve.json").read_text())
    assert f1["tag"] == 'a\nimport os\nos.system("touch PWNED")' and f2["tag"] == ATTACK
    for where in (notebooks, tmp_path, Path.cwd()):
        assert not (where / "PWNED").exists(), where
    before = (out / LABEL / "run.json").read_bytes()
    for value in (b"import os; os.system('touch PWNED')", {"x", "y"}):
        capsys.readouterr()
        assert _run(notebooks, data, out, params={"tag": value}) == 2
        err = capsys.readouterr().err
        assert "`tag` is " in err and err.count("\n") == 1, err
    for text in ("tag: !!binary aW1wb3J0IG9z\n", "tag: !!set {a: null}\n", "'03': {tag: !!python/object:os.system x}\n"):
        pf.write_text(text)
        capsys.readouterr()
        assert _run(notebooks, data, out, params_file=str(pf)) == 2
        assert "not allowed" in capsys.readouterr().err
    assert (out / LABEL / "run.json").read_bytes() == before    # nothing published by the refused runs
    for where in (notebooks, tmp_path, Path.cwd()):
        assert not (where / "PWNED").exists(), where


# ------------------------------------------------------------------ issue 18 item 7: unknown parameters
def test_unknown_parameters_are_refused_with_a_suggestion(notebooks, tmp_path, capsys):
    data, out = _export(tmp_path / "data"), tmp_path / "reports"
    pf = tmp_path / "params.yaml"
    cases = {
        "n_bot: 300\n": ["unknown parameter `n_bot` (did you mean `n_boot`?)"],
        "'03': {n_bot: 3}\n": ["unknown parameter `n_bot` in section `03` (did you mean `n_boot`?)"],
        "'02': {n_boot: 3}\n": ["unknown parameter `n_boot` in section `02`"],     # declared by 03 only
        "raw_dir: /etc\n": ["`raw_dir` cannot be set"],
        "'03': {quarter: 2026Q1}\n": ["`03.quarter` cannot be set for one notebook"],
        "tagg: 1\nsleeep: 2\n": ["`tagg` (did you mean `tag`?)", "`sleeep` (did you mean `sleep`?)"],
        "'03': [1, 2]\n": ["`03` names a notebook, so its value must be a mapping"],
    }
    for text, expected in cases.items():
        pf.write_text(text)
        capsys.readouterr()
        assert _run(notebooks, data, out, params_file=str(pf)) == 2, text
        err = capsys.readouterr().err
        for e in expected:
            assert e in err, (text, err)
        if not any("names a notebook" in e for e in expected):
            assert "03_attr: data_dir, output_dir, quarter, start, end, tag, sleep, pid_file, n_boot" in err, err
    capsys.readouterr()
    assert _run(notebooks, data, out, params={"03": {"n_bot": 1}}) == 2
    assert "--param: unknown parameter `n_bot` in section `03`" in capsys.readouterr().err
    assert not (out / LABEL).exists()


def test_cli_refuses_unknown_param_and_a_list_of_params_in_one_line(notebooks, tmp_path):
    data, out = _export(tmp_path / "data"), tmp_path / "reports"
    argv, env = _cli(notebooks, data, out, "--quarter", LABEL, "-p", "n_bot=300")
    r = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert r.returncode == 2 and "unknown parameter `n_bot` (did you mean `n_boot`?)" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    for text in ("- n_boot: 3\n- tag: x\n", "quarter: [2026Q3]\n"):
        pf = tmp_path / "p.yaml"
        pf.write_text(text)
        argv, env = _cli(notebooks, data, out, "--params", str(pf))
        r = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
        assert r.returncode == 2, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr
        assert "p.yaml" in r.stderr


# ------------------------------------------------------------------ finding 4: publication and the lock (no kernel)
def _fake_report(folder: Path, tag: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "findings").mkdir()
    for s in STEMS:
        (folder / f"{s}.html").write_text(tag)
        (folder / f"{s}.ipynb").write_text(tag)
        (folder / "findings" / f"{s}.json").write_text(json.dumps({"tag": tag}))
    (folder / "index.html").write_text(tag)
    return folder


def _fake_staging(out: Path, tag: str) -> tuple[Path, Path]:
    staging = out / f".staging-{LABEL}-{os.urandom(4).hex()}"
    rep = _fake_report(staging / "report", tag)
    (staging / "data").mkdir()
    (staging / "data" / "tag.txt").write_text(tag)
    return rep, staging / "data"


class _Crash(Exception):
    pass


def _publish_crashing(out: Path, tag: str, monkeypatch, *, step=None, nth_replace=None) -> bool:
    """Publish a report tagged ``tag``, crashing before ``step`` or at the ``nth_replace``-th
    os.replace / symlink; True when it completed."""
    rep, dat = _fake_staging(out, tag)
    calls = {"n": 0}
    real_replace, real_symlink = os.replace, os.symlink

    def counted(real):
        def f(*a, **k):
            calls["n"] += 1
            if nth_replace is not None and calls["n"] == nth_replace:
                raise _Crash(f"crash at call {calls['n']}")
            return real(*a, **k)
        return f

    with monkeypatch.context() as m:
        if step is not None:
            m.setattr(publish, "_before_step", lambda name: (_ for _ in ()).throw(_Crash(name)) if name == step else None)
        m.setattr(publish.os, "replace", counted(real_replace))
        m.setattr(publish.os, "symlink", counted(real_symlink))
        try:
            publish.publish(out, LABEL, publish.new_run_id(), rep, dat)
        except _Crash:
            return False
    return True


@pytest.mark.parametrize("legacy", [False, True], ids=["versions", "from-the-old-layout"])
def test_a_crash_at_any_step_of_publication_leaves_a_whole_report(tmp_path, monkeypatch, legacy):
    crashes = [dict(step=s) for s in publish.PUBLISH_STEPS] + [dict(nth_replace=n) for n in range(1, 9)]
    for i, crash in enumerate(crashes):
        out = tmp_path / f"case{i}"
        out.mkdir()
        if legacy:   # the layout before versions: real folders, renamed aside by the old runner
            _fake_report(out / LABEL, "old")
            (out / ".data" / LABEL).mkdir(parents=True)
            (out / ".data" / LABEL / "tag.txt").write_text("old")
        else:
            assert _publish_crashing(out, "old", monkeypatch)
        done = _publish_crashing(out, "new", monkeypatch, **crash)
        notes = publish.reconcile(out, LABEL)   # what the next run does first, under the lock
        tag = _assert_complete_fake(out)
        assert tag in ("old", "new"), crash
        if done:
            assert tag == "new"
        # the next successful publication cleans up: the new and the previous version only
        prev = publish.current_version(out, LABEL)
        assert _publish_crashing(out, "next", monkeypatch)
        assert _assert_complete_fake(out) == "next"
        publish.prune(out, LABEL, keep=(publish.current_version(out, LABEL)[1], prev[1]))
        versions = sorted(p.name for p in (out / publish.VERSIONS / LABEL).iterdir())
        assert len(versions) <= 2 and publish.current_version(out, LABEL)[1] in versions, (crash, versions, notes)
        assert not [p for p in out.iterdir() if p.name.startswith(".tmp-")]


def _assert_complete_fake(out: Path) -> str:
    q = out / LABEL
    assert (q / "index.html").is_file()
    tags = {(q / f"{s}.html").read_text() for s in STEMS} | {(q / "index.html").read_text()} | _tags(q)
    assert len(tags) == 1, tags
    cur = publish.current_version(out, LABEL)
    assert (publish.data_of(out, LABEL, cur[1]) / "tag.txt").read_text() == next(iter(tags))
    if cur[1] is not None:   # reconcile has put the data pointer right
        assert (out / ".data" / LABEL / "tag.txt").read_text() == next(iter(tags))
    return next(iter(tags))


def test_lock_is_exclusive_and_a_dead_holder_is_taken_over(tmp_path):
    lock = publish.PeriodLock(tmp_path, LABEL, "r1")
    assert lock.acquire() is None
    info = json.loads(lock.path.read_text())
    assert info["pid"] == os.getpid() and info["host"] == socket.gethostname() and info["label"] == LABEL
    with pytest.raises(publish.LockHeld, match=rf"another report run of {LABEL} is in progress \(pid {os.getpid()}"):
        publish.PeriodLock(tmp_path, LABEL).acquire()
    lock.release()
    assert not lock.path.exists()
    # a lock file left by a killed run: its pid is dead, no flock is held
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock.path.parent.mkdir(exist_ok=True)
    lock.path.write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "started": "then",
                                     "label": LABEL}))
    again = publish.PeriodLock(tmp_path, LABEL)
    note = again.acquire()
    assert note and f"left by pid {dead.pid}" in note and "no longer running" in note
    again.release()
    # another host's lock cannot be checked: respected, with what to do
    lock.path.write_text(json.dumps({"pid": 1, "host": "elsewhere.example", "started": "now", "label": LABEL}))
    with pytest.raises(publish.LockHeld, match="another machine: if no run is active there, delete"):
        publish.PeriodLock(tmp_path, LABEL).acquire()


@pytest.mark.notebook
def test_a_held_lock_refuses_the_run_and_changes_nothing(published, notebooks, tmp_path, capsys):
    data, out = _copy(published, tmp_path)
    before = {p.relative_to(out / LABEL): p.read_bytes() for p in (out / LABEL).rglob("*") if p.is_file()}
    lock = publish.PeriodLock(out, LABEL, "other")
    lock.acquire()
    try:
        for kw in ({}, {"only": "05"}):
            capsys.readouterr()
            assert _run(notebooks, data, out, params={"tag": "X"}, **kw) == publish.LOCK_HELD_EXIT
            err = capsys.readouterr().err
            assert f"another report run of {LABEL} is in progress (pid {os.getpid()}" in err, err
            assert "Nothing was changed" in err and err.count("\n") == 1, err
    finally:
        lock.release()
    assert {p.relative_to(out / LABEL): p.read_bytes() for p in (out / LABEL).rglob("*") if p.is_file()} == before
    assert not list(out.glob(".staging-*"))


# ------------------------------------------------------------------ finding 4 and 11 with real kernels
_CRASHER = textwrap.dedent("""
    import os, sys
    from abmkit import publish, report
    step = sys.argv[1]
    publish._before_step = lambda name: os._exit(9) if name == step else None
    sys.exit(report.run_report(quarter="2026Q3", data=sys.argv[2], out_dir=sys.argv[3], notebooks_dir=sys.argv[4],
                               progress=False, jobs=2, params={"tag": sys.argv[5]}))
""")


@pytest.mark.notebook
def test_killed_during_publication_then_the_next_run_recovers(published, notebooks, tmp_path, capsys):
    """os._exit in the middle of publication (before the commit, then after it): the period
    shows a whole report, the lock file stays with a dead pid; the next run takes the
    lock over, publishes, and removes the crashed runs' leftovers."""
    data, out = _copy(published, tmp_path)
    for step, expected in (("point_report", "A"), ("cleanup", "B")):
        r = subprocess.run([sys.executable, "-c", _CRASHER, step, str(data), str(out), str(notebooks), "B"],
                           capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert r.returncode == 9, r.stderr[-2000:]
        assert _assert_complete(out) == expected, step
        assert (out / publish.LOCKS / f"{LABEL}.lock").exists()    # left behind by the killed run
    capsys.readouterr()
    assert _run(notebooks, data, out, params={"tag": "C"}) == 0
    err = capsys.readouterr().err
    assert "took over the lock" in err and "no longer running" in err, err
    assert _assert_complete(out) == "C"
    assert len(list((out / publish.VERSIONS / LABEL).iterdir())) == 2       # the new one and the one before
    assert len(list((out / ".data" / publish.VERSIONS / LABEL).iterdir())) == 2
    assert not list(out.glob(".staging-*")) and not (out / publish.LOCKS / f"{LABEL}.lock").exists()
    # --only builds on the published version: the other pages are that version's
    assert _run(notebooks, data, out, only="05", params={"tag": "D"}) == 0
    q = out / LABEL
    assert json.loads((q / "findings" / "05_kpis.json").read_text())["tag"] == "D"
    assert {json.loads((q / "findings" / f"{s}.json").read_text())["tag"] for s in STEMS[:4]} == {"C"}
    assert (publish.data_of(out, LABEL, publish.current_version(out, LABEL)[1]) / "tag.txt").read_text() == "C"
    manifest = json.loads((q / "run.json").read_text())
    assert manifest["notebooks_run"] == ["05_kpis.ipynb"] and manifest["inputs"]   # the data's fingerprints kept


@pytest.mark.notebook
def test_only_without_a_complete_published_report_is_refused(notebooks, tmp_path, capsys):
    """Was: after a crash between the two renames, ``--only 05`` published a report with
    01-04 "not available", exit 0."""
    data, out = _export(tmp_path / "data"), tmp_path / "reports"
    (out / ".data" / LABEL).mkdir(parents=True)        # data of a full run, but no report
    assert _run(notebooks, data, out, only="05") == 2
    assert "run the full report for 2026Q3 first" in capsys.readouterr().err
    _fake_report(out / LABEL, "old")
    (out / LABEL / "02_resolve.ipynb").unlink()      # 05 needs 02's outputs
    assert _run(notebooks, data, out, only="05") == 2
    assert "needs the outputs of ['02_resolve'], which the published report of 2026Q3 does not have" in \
        capsys.readouterr().err
    assert not list(out.glob(".staging-*")) and (out / LABEL / "index.html").read_text() == "old"


def _wait_for(path: Path, text: str, proc, timeout: float = 120) -> str:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        got = path.read_text() if path.exists() else ""
        if text in got:
            return got
        assert proc.poll() is None, got[-3000:]
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not seen in {timeout} s: {path.read_text()[-3000:]}")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.notebook
def test_second_run_is_refused_while_the_first_runs_and_sigterm_stops_it_cleanly(published, notebooks, tmp_path,
                                                                                capsys):
    data, out = _copy(published, tmp_path)
    before = {p.relative_to(out / LABEL): p.read_bytes() for p in (out / LABEL).rglob("*") if p.is_file()}
    pids, log = tmp_path / "kernel-pids", tmp_path / "stderr.log"
    argv, env = _cli(notebooks, data, out, "--quarter", LABEL, "--jobs", "2", "-p", "tag=B",
                     "-p", "02.sleep=120", "-p", f"pid_file={pids}")
    with open(log, "w") as fh:
        proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    try:
        _wait_for(log, "[2/5] 02_resolve.ipynb ...", proc)
        _wait_for(pids, "\n", proc)
        # a second run of the same period, full or --only: refused at once, nothing changed
        for kw in ({}, {"only": "05"}):
            capsys.readouterr()
            assert _run(notebooks, data, out, params={"tag": "X"}, **kw) == 75
            err = capsys.readouterr().err
            assert f"another report run of {LABEL} is in progress (pid {proc.pid}" in err, err
            assert err.count("\n") == 1
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert rc == 143, text[-3000:]
    assert elapsed < 15, elapsed
    last = text.strip().splitlines()[-1]
    assert last.startswith("abmkit report: stopped by SIGTERM: kernels stopped, staging folder removed, lock "
                           "released;") and "unchanged" in last, text[-2000:]
    assert "Traceback" not in text and "Fatal Python error" not in text
    assert not (out / publish.LOCKS / f"{LABEL}.lock").exists()
    assert not list(out.glob(".staging-*"))
    kernels = [int(x) for x in pids.read_text().split()]
    time.sleep(1.0)
    assert not [p for p in kernels if _alive(p)], kernels
    assert {p.relative_to(out / LABEL): p.read_bytes() for p in (out / LABEL).rglob("*") if p.is_file()} == before
    assert _assert_complete(out) == "A"


@pytest.mark.notebook
def test_clean_error_in_notebook_01_exits_2_never_aborts(notebooks, tmp_path):
    data, out = _export(tmp_path / "data"), tmp_path / "reports"
    argv, env = _cli(notebooks, data, out, "--quarter", LABEL, "-p", "01.clean_error=true")
    r = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert r.returncode == 2, (r.returncode, r.stderr[-3000:])
    assert "FAILED in notebook 01_clean.ipynb (the export cannot be used: exit code 2)" in r.stderr
    assert "CleanError: touches.csv: no usable row (test)" in r.stderr
    assert "Fatal Python error" not in r.stderr and "Traceback" not in r.stderr
    assert not (out / LABEL).exists()


# ------------------------------------------------------------------ finding 7: the export changes during the run
@pytest.mark.notebook
def test_export_truncated_during_the_run_fails_and_keeps_the_report(published, notebooks, tmp_path, capsys):
    data, out = _copy(published, tmp_path)
    before = {p.relative_to(out / LABEL): p.read_bytes() for p in (out / LABEL).rglob("*") if p.is_file()}
    manifest = json.loads((out / LABEL / "run.json").read_text())
    touches = (data / "raw" / "touches.csv").resolve()
    recorded = {Path(f["path"]).name: f for f in manifest["inputs"]}   # (of the fixture's export: a copy)
    assert set(recorded) == {"touches.csv", "column_map.yaml"}
    assert recorded["touches.csv"]["role"] == "data" and recorded["column_map.yaml"]["role"] == "column_map"
    assert recorded["touches.csv"]["size"] == touches.stat().st_size and recorded["touches.csv"]["mtime_ns"]
    assert recorded["touches.csv"]["sha256"] == hashlib.sha256(touches.read_bytes()).hexdigest()
    capsys.readouterr()
    assert _run(notebooks, data, out, params={"tag": "B", "02": {"truncate": str(touches)}}) == 1
    err = capsys.readouterr().err
    assert "an input changed while the report ran" in err and f"{touches}: changed during the run" in err, err
    assert "the previous report" in err and "unchanged" in err
    assert touches.stat().st_size == 0
    assert {p.relative_to(out / LABEL): p.read_bytes() for p in (out / LABEL).rglob("*") if p.is_file()} == before
    assert _assert_complete(out) == "A"


# ------------------------------------------------------------------ issue 18 item 3: the period
@pytest.mark.notebook
def test_default_period_is_the_last_complete_quarter_of_the_data(notebooks, tmp_path, capsys):
    """Was: "using 2026Q3, the last complete quarter of the data" for data ending in 2024."""
    data = _export(tmp_path / "data", dates=("2024-01-05", "2024-05-17", "2024-08-30", "2024-11-10"))
    out = tmp_path / "reports"
    assert _run(notebooks, data, out, quarter=None, params={"tag": "T"}) == 0
    err = capsys.readouterr().err
    assert "using 2024Q3, the last complete quarter with touches (touchpoints.occurred_at from 2024-01-05 to " \
           "2024-11-10" in err, err
    assert _assert_complete(out, "2024Q3") == "T"
    assert {json.loads((out / "2024Q3" / "findings" / f"{s}.json").read_text())["quarter"] for s in STEMS} \
        == {"2024Q3"}   # notebook 01 too: it ran again for the right period
    manifest = json.loads((out / "2024Q3" / "run.json").read_text())
    assert manifest["period_source"] == "default" and manifest["label"] == "2024Q3"
    assert not (out / LABEL).exists() and not list(out.glob(".staging-*")) \
        and [p.name for p in (out / ".locks").iterdir()] == ["_index.lock"]  # period locks released; the index's stays


@pytest.mark.notebook
def test_a_period_without_any_data_is_refused(notebooks, tmp_path, capsys):
    data = _export(tmp_path / "data", dates=("2024-01-05", "2024-11-10"))
    out = tmp_path / "reports"
    assert _run(notebooks, data, out, quarter="2026Q1") == 2
    err = capsys.readouterr().err
    assert "no touch and no opportunity in 2026Q1 (2026-01-01 to 2026-03-31)" in err, err
    assert "touchpoints.occurred_at from 2024-01-05 to 2024-11-10 (2 touches); no opportunities" in err
    assert "nothing was published" in err
    assert not (out / "2026Q1").exists() and not list(out.glob(".staging-*")) and not (out / ".failed").exists()


def test_default_period_needs_a_complete_quarter(tmp_path):
    pd.DataFrame({"occurred_at": pd.to_datetime(["2024-10-05", "2024-11-10"], utc=True)}).to_parquet(
        tmp_path / "touchpoints.parquet")
    with pytest.raises(report.ReportError, match="covers no complete quarter"):
        report._default_period_from(tmp_path)
    pd.DataFrame({"created_at": pd.to_datetime(["2025-02-05", "2025-05-10", "2025-08-10"], utc=True)}).to_parquet(
        tmp_path / "opportunities.parquet")
    pd.DataFrame({"occurred_at": pd.to_datetime([], utc=True)}).to_parquet(tmp_path / "touchpoints.parquet")
    period, why = report._default_period_from(tmp_path)   # no touches: opportunities decide
    assert period.label == "2025Q2" and "with opportunities" in why
