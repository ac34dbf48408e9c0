"""Issue 17, finding 2: reads outside the data folder and YAML alias bombs.

Each test reproduces an attack through the CLI (``python -m abmkit validate`` / ``report``)
or the library, as cron would run it on a folder exported by another team:

- a ``column_map.yaml`` inside the export folder naming ``../../../../etc/pass*`` or
  ``/etc/passwd`` (read with ``delimiter: ":"``, /etc/passwd cleans into accounts);
- a symbolic link ``accounts.csv -> /etc/passwd`` (and ``Account.csv`` for the
  Salesforce preset; a linked folder matched by a glob; a picklist table outside);
- a ~1 KB "billion laughs" YAML as the column map and as ``--params``.

Expected: exit code 2, a message naming the map, the key and the value and saying how to
pass data from elsewhere, no line of /etc/passwd in any message or output file, and for
the bombs: under 5 s and 500 MB peak RSS (measured with ``os.wait4`` on the child, a
watchdog kills the process tree above 1.5 GB so a regression cannot take the machine).

The ``report`` cases exit 2 only once :func:`abmkit.report.run_report` runs the
pre-flight (:func:`abmkit.clean.check_inputs`) and :func:`abmkit.report.load_params_file`
reads with :func:`abmkit.io.yaml.load_yaml`.
(the "nothing from /etc/passwd is written" checks are not: they hold already).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from abmkit.clean import CleanError, InputError, check_inputs, clean_exports, load_column_map
from abmkit.io.yaml import load_yaml

REPO = Path(__file__).resolve().parent.parent
PASSWD = Path("/etc/passwd")
needs_passwd = pytest.mark.skipif(not (PASSWD.is_file() and os.access(PASSWD, os.R_OK)
                                       and "root:" in PASSWD.read_text(errors="replace")),
                                  reason="needs a readable /etc/passwd with a root: line")
#: what a line of /etc/passwd looks like in a message or an output file
PASSWD_MARKERS = ("root:", "nologin", "/bin/bash", "/bin/sh", "daemon")

BOMB_LEVELS = "abcdefghi"


def billion_laughs(final_key: str, indent: str = "") -> str:
    """~1 KB YAML: nine levels of nine aliases, 9**9 (387 million) strings when expanded."""
    lines = [f'{indent}a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, cur in zip(BOMB_LEVELS, BOMB_LEVELS[1:]):
        lines.append(f"{indent}{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    lines.append(f"{indent}{final_key}: *i")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ running the CLI, measured
@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    # bytes: the watchdog's peak of the process tree's RSS (not ru_maxrss: a child forked from
    # a big pytest worker reports the worker's pages it shared before exec)
    peak_rss: int
    killed: str | None = None
    cpu_seconds: float = 0.0  # user + system CPU of the child: the attack's cost, whatever the machine's load

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_cli(args: list[str], tmp_path: Path, timeout: float = 240, kill_above: int = 1_500_000_000) -> Run:
    """``python -m abmkit <args>`` in its own process group; CPU time from ``os.wait4``, peak
    RSS from a watchdog summing the process tree's RSS every 10 ms (it kills the group above
    ``kill_above`` bytes or after ``timeout`` s)."""
    import psutil

    out, err = tmp_path / f"stdout-{time.monotonic_ns()}", tmp_path / f"stderr-{time.monotonic_ns()}"
    with open(out, "wb") as fo, open(err, "wb") as fe:
        t0 = time.monotonic()
        p = subprocess.Popen([sys.executable, "-m", "abmkit", *args], stdout=fo, stderr=fe, cwd=REPO,
                             start_new_session=True)
        done, state = threading.Event(), {"peak": 0, "killed": None}

        def watch():
            try:
                proc = psutil.Process(p.pid)
            except psutil.Error:
                return
            while not done.wait(0.01):
                try:
                    rss = sum(c.memory_info().rss for c in [proc, *proc.children(recursive=True)])
                except psutil.Error:
                    continue
                state["peak"] = max(state["peak"], rss)
                over = rss > kill_above
                if over or time.monotonic() - t0 > timeout:
                    state["killed"] = f"rss {rss / 1e6:.0f} MB" if over else f"timeout {timeout}s"
                    try:
                        os.killpg(p.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    return

        w = threading.Thread(target=watch, daemon=True)
        w.start()
        _, status, usage = os.wait4(p.pid, 0)
        seconds = time.monotonic() - t0
        done.set()
        w.join()
        p.returncode = os.waitstatus_to_exitcode(status)
        try:  # kernels a killed run left behind
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return Run(p.returncode, out.read_text("utf-8", errors="replace"), err.read_text("utf-8", errors="replace"),
               seconds, state["peak"], state["killed"], usage.ru_utime + usage.ru_stime)


def leaked_files(root: Path) -> list[str]:
    """Files under ``root`` (hidden folders included) holding /etc/passwd data: parquet
    cells or text containing a passwd line."""
    hits = []
    for f in root.rglob("*") if root.exists() else []:
        if not f.is_file():
            continue
        if f.suffix == ".parquet":
            try:
                text = pd.read_parquet(f).astype(str).to_csv()
            except Exception:  # noqa: BLE001 - unreadable: look at the bytes
                text = f.read_bytes().decode("latin-1")
        else:
            text = f.read_bytes().decode("utf-8", errors="replace")
        if any(m in text for m in ("root:x:0", "nologin", "/bin/bash")):
            hits.append(str(f.relative_to(root)))
    return hits


def assert_no_passwd(text: str) -> None:
    for marker in PASSWD_MARKERS:
        assert marker not in text, f"a line of /etc/passwd reached the message ({marker!r}):\n{text}"


# ------------------------------------------------------------------ export folders
PASSWD_MAP = """tables:
  accounts:
    file: {file}
    delimiter: ":"
    columns:
      account_id: root
      account_name: /bin/bash
"""


def traversal_folder(tmp_path: Path, file_value: str) -> Path:
    """An export folder whose own column_map.yaml names ``file_value`` for accounts,
    read with ``delimiter: ":"`` so /etc/passwd would clean into accounts."""
    export = tmp_path / "export"
    export.mkdir()
    (export / "accounts.csv").write_text("Id,Name\na1,Acme\n", "utf-8")  # an honest file beside it
    (export / "column_map.yaml").write_text(PASSWD_MAP.format(file=f'"{file_value}"'), "utf-8")
    return export


def climbing_pattern(folder: Path) -> str:
    """``../`` enough times to reach / from ``folder`` (and two more), then etc/pass*."""
    return "../" * (len(folder.resolve().parts) + 1) + "etc/pass*"


def symlink_folder(tmp_path: Path) -> Path:
    export = tmp_path / "export"
    export.mkdir()
    (export / "accounts.csv").symlink_to(PASSWD)
    (export / "column_map.yaml").write_text(
        "tables:\n  accounts:\n    file: accounts.csv\n    columns:\n      account_id: Id\n"
        "      account_name: Name\n", "utf-8")
    return export


# ------------------------------------------------------------------ traversal: validate
@needs_passwd
@pytest.mark.parametrize("kind", ["dotdot_glob", "absolute"])
def test_validate_refuses_a_map_naming_files_outside_the_folder(tmp_path, kind):
    export = tmp_path / "export"
    value = climbing_pattern(export) if kind == "dotdot_glob" else "/etc/passwd"
    export = traversal_folder(tmp_path, value)
    out = tmp_path / "clean"
    r = run_cli(["validate", str(export), "--out", str(out)], tmp_path)
    assert r.returncode == 2, r.output
    err = r.stderr
    assert "column_map.yaml" in err and "tables.accounts.file" in err, err
    assert repr(value)[:60] in err or value[:40] in err, err
    assert "copy it" in err and "--data" in err, err   # how to give data from elsewhere
    assert_no_passwd(r.output)
    assert not out.exists() or not list(out.rglob("accounts.parquet"))
    assert leaked_files(out) == []


@needs_passwd
def test_validate_refuses_a_symlink_to_etc_passwd(tmp_path):
    export = symlink_folder(tmp_path)
    out = tmp_path / "clean"
    r = run_cli(["validate", str(export), "--out", str(out)], tmp_path)
    assert r.returncode == 2, r.output
    assert "accounts.csv" in r.stderr and "symbolic link" in r.stderr and "tables.accounts.file" in r.stderr
    assert "copy it" in r.stderr
    assert_no_passwd(r.output)
    assert leaked_files(out) == []


@needs_passwd
def test_validate_preset_refuses_a_symlinked_export_file(tmp_path):
    """The Salesforce adapter finds Account.csv by name: a link to /etc/passwd is refused."""
    export = tmp_path / "sf"
    export.mkdir()
    (export / "Account.csv").symlink_to(PASSWD)
    r = run_cli(["validate", str(export), "--preset", "salesforce"], tmp_path)
    assert r.returncode == 2, r.output
    assert "Account.csv" in r.stderr and "symbolic link" in r.stderr
    assert_no_passwd(r.output)


# ------------------------------------------------------------------ traversal: report
def _report(tmp_path: Path, export: Path, *extra: str) -> tuple[Run, Path]:
    out = tmp_path / "reports"
    return run_cli(["report", "--data", str(export), "--out", str(out), "--quarter", "2026Q3", *extra],
                   tmp_path), out


@pytest.fixture(scope="module")
def report_runs(tmp_path_factory):
    """One report run per attack, shared by the 'exit 2' and the 'nothing leaked' tests."""
    if not (PASSWD.is_file() and os.access(PASSWD, os.R_OK)):
        pytest.skip("needs /etc/passwd")
    runs = {}
    t = tmp_path_factory.mktemp("traversal")
    runs["traversal"] = _report(t, traversal_folder(t, climbing_pattern(t / "export")))
    t = tmp_path_factory.mktemp("absolute")
    runs["absolute"] = _report(t, traversal_folder(t, "/etc/passwd"))
    t = tmp_path_factory.mktemp("symlink")
    runs["symlink"] = _report(t, symlink_folder(t))
    return runs


@needs_passwd
@pytest.mark.parametrize("case", ["traversal", "absolute", "symlink"])
def test_report_writes_nothing_from_outside_the_folder(report_runs, case):
    run, out = report_runs[case]
    assert run.returncode != 0, run.output
    assert leaked_files(out) == [], run.output
    assert_no_passwd(run.output)


@needs_passwd
@pytest.mark.parametrize("case", ["traversal", "absolute", "symlink"])
def test_report_exits_2_before_any_notebook(report_runs, case):
    run, out = report_runs[case]
    assert run.returncode == 2, run.output
    assert "tables.accounts.file" in run.stderr and "copy it" in run.stderr, run.stderr
    assert not (out / "2026Q3").exists()


# ------------------------------------------------------------------ alias bombs
def test_alias_bomb_column_map_validate_fails_fast(tmp_path):
    export = tmp_path / "export"
    export.mkdir()
    (export / "accounts.csv").write_text("Id,Name\na1,Acme\n", "utf-8")
    text = "tables:\n  accounts:\n    columns: {account_id: Id, account_name: Name}\n" + "".join(
        "    " + line + "\n" for line in billion_laughs("file").splitlines())
    (export / "column_map.yaml").write_text(text, "utf-8")
    assert len(text) < 1200
    r = run_cli(["validate", str(export)], tmp_path)
    assert r.killed is None, f"killed: {r.killed}"
    assert r.returncode == 2, r.output
    assert "column_map.yaml" in r.stderr and "alias" in r.stderr, r.stderr
    # < 5 s of work (CPU: the wall clock also counts other tests sharing the 2 cores)
    assert r.cpu_seconds < 5 and r.seconds < 60, (r.cpu_seconds, r.seconds)
    assert r.peak_rss < 500e6, r.peak_rss


def _small_export(tmp_path: Path) -> Path:
    export = tmp_path / "export"
    export.mkdir()
    (export / "accounts.csv").write_text("Id,Name\na1,Acme\n", "utf-8")
    (export / "column_map.yaml").write_text(
        "tables:\n  accounts:\n    file: accounts.csv\n    columns: {account_id: Id, account_name: Name}\n", "utf-8")
    return export


def test_alias_bomb_column_map_report_fails_fast(tmp_path):
    export = _small_export(tmp_path)
    text = "tables:\n  accounts:\n    columns: {account_id: Id, account_name: Name}\n" + "".join(
        "    " + line + "\n" for line in billion_laughs("file").splitlines())
    (export / "column_map.yaml").write_text(text, "utf-8")
    r, out = _report(tmp_path, export)
    assert r.killed is None, f"killed: {r.killed}"
    assert r.returncode == 2 and "alias" in r.stderr, r.output
    assert r.cpu_seconds < 5 and r.seconds < 60 and r.peak_rss < 500e6, (r.cpu_seconds, r.seconds, r.peak_rss)


def test_alias_bomb_params_file_fails_fast(tmp_path):
    """``raw_dir: *i`` reaches notebook 01's parameters: papermill would write 387 million strings."""
    export = _small_export(tmp_path)
    params = tmp_path / "params.yaml"
    params.write_text(billion_laughs("raw_dir"), "utf-8")
    assert params.stat().st_size < 1100
    r, out = _report(tmp_path, export, "--params", str(params))
    assert r.killed is None, f"killed: {r.killed}"
    assert r.returncode == 2, r.output
    assert "params.yaml" in r.stderr and "alias" in r.stderr, r.stderr
    assert r.cpu_seconds < 5 and r.seconds < 60 and r.peak_rss < 500e6, (r.cpu_seconds, r.seconds, r.peak_rss)


# ------------------------------------------------------------------ the loader and the checks (library)
def test_load_yaml_bounds_and_plain_values(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_text(billion_laughs("top"), "utf-8")
    t0 = time.monotonic()
    with pytest.raises(InputError, match=r"x\.yaml: refused: the document expands to more than 100000 values"):
        load_yaml(p, what="column map")
    assert time.monotonic() - t0 < 1
    cases = {
        "raw_dir: !!binary aW1wb3J0IG9z\n": r"`raw_dir`: tag !!binary .*not allowed.*line 1",
        "x: !!set {a, b}\n": r"`x`: tag !!set",
        "x: !!python/object/apply:os.system [id]\n": r"`x`: tag !!python/object/apply:os.system",
        "tables:\n  accounts:\n    file: !foo bar\n": r"`tables.accounts.file`: tag !foo",
        "a: &a [1, *a]\n": r"recursive YAML alias",
        "a: &a 1\nb: [" + ", ".join(["*a"] * 150) + "]\n": r"more than 100 YAML aliases",
        "[" * 300 + "]" * 300: r"nested more than 100 levels",
        "a: [1, 2\nb: c\n": r"is not valid YAML: .*\(line 2, column 2\)\. Fix the YAML syntax",
    }
    for text, pattern in cases.items():
        p.write_text(text, "utf-8")
        with pytest.raises(InputError, match=pattern):
            load_yaml(p, what="parameter file")
    p.write_text("start: 2026-07-01\nn: 3\nmerge:\n  base: &b {x: 1}\n  c: {<<: *b, y: 2}\n", "utf-8")
    assert load_yaml(p) == {"start": "2026-07-01", "n": 3, "merge": {"base": {"x": 1}, "c": {"x": 1, "y": 2}}}
    p.write_text("a: " + "x" * 2_000, "utf-8")
    with pytest.raises(InputError, match=r"2,003 bytes, above the 1,000-byte limit"):
        load_yaml(p, what="parameter file", max_bytes=1_000)
    with pytest.raises(InputError, match="not a regular file"):
        load_yaml("/dev/zero", what="parameter file")
    assert issubclass(InputError, CleanError) and issubclass(InputError, ValueError)  # the CLI exits 2


def test_syntax_errors_do_not_quote_the_file(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text("tables:\n  accounts: [secret-line-content\n  other: x\n", "utf-8")
    with pytest.raises(InputError) as exc:
        load_column_map(p)
    assert "secret-line-content" not in str(exc.value) and "m.yaml is not valid YAML" in str(exc.value)


@pytest.mark.parametrize("value", ["../accounts.csv", "sub/../../x.csv", "/etc/passwd", "~/x.csv",
                                   "C:\\exports\\a.csv", "..\\..\\a.csv"])
def test_column_map_refuses_absolute_and_parent_paths(tmp_path, value):
    m = tmp_path / "column_map.yaml"
    m.write_text("tables:\n  accounts:\n    file: '" + value + "'\n    columns: {account_id: Id, account_name: Name}\n")
    with pytest.raises(InputError, match=r"column_map\.yaml: `tables\.accounts\.file` = .* copy it"):
        load_column_map(m)


def test_glob_through_a_linked_folder_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "accounts.csv").write_text("Id,Name\nsecret,Hidden Corp\n", "utf-8")
    export = tmp_path / "export"
    (export / "parts").mkdir(parents=True)
    (export / "parts" / "inside.csv").write_text("Id,Name\na1,Acme\n", "utf-8")
    (export / "linked").symlink_to(outside, target_is_directory=True)
    cm = {"tables": {"accounts": {"file": ["parts/*.csv", "linked/*.csv"],
                                  "columns": {"account_id": "Id", "account_name": "Name"}}}}
    with pytest.raises(InputError, match=r"`tables\.accounts\.file` = 'linked/\*\.csv'.*linked folder") as exc:
        clean_exports(export, cm)
    assert "secret" not in str(exc.value) and "Hidden" not in str(exc.value)
    with pytest.raises(InputError):
        check_inputs(export, cm)
    # a link that stays inside the folder is fine
    (export / "linked").unlink()
    (export / "alias.csv").symlink_to(export / "parts" / "inside.csv")
    cm["tables"]["accounts"]["file"] = ["alias.csv"]
    assert clean_exports(export, cm).dataset.accounts.account_id.tolist() == ["a1"]
    assert check_inputs(export, cm) == [export / "alias.csv"]


def test_picklist_table_outside_the_map_folder_is_refused(tmp_path):
    import yaml

    preset = load_yaml(REPO / "abmkit" / "presets" / "salesforce.yaml")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "types.yaml").write_text("Webinar: webinar\n", "utf-8")
    export = tmp_path / "export"
    export.mkdir()
    preset["picklists"]["campaign_type"] = str(outside / "types.yaml")
    (export / "column_map.yaml").write_text(yaml.safe_dump(preset), "utf-8")
    with pytest.raises(InputError, match=r"`picklists\.campaign_type` = .*outside the column map's folder"):
        check_inputs(export, export / "column_map.yaml")
    preset["picklists"]["campaign_type"] = "../elsewhere/types.yaml"
    (export / "column_map.yaml").write_text(yaml.safe_dump(preset), "utf-8")
    with pytest.raises(InputError, match="picklists.campaign_type"):
        check_inputs(export, export / "column_map.yaml")


def test_in_folder_messages_quote_at_most_80_characters(tmp_path):
    export = tmp_path / "export"
    export.mkdir()
    long_header = "H" * 5_000
    (export / "accounts.csv").write_text(f"{long_header},Name\na1,Acme\n", "utf-8")
    cm = {"tables": {"accounts": {"file": "accounts.csv", "columns": {"account_id": "Id", "account_name": "Name"}}}}
    with pytest.raises(CleanError, match="Columns found") as exc:
        clean_exports(export, cm)
    assert "H" * 81 not in str(exc.value) and len(str(exc.value)) < 1_000
