"""The whole report from a database equals the report from the CSV export of the same data
(issue: read from where the data lives). The raw export of the small sample is loaded as
text tables into DuckDB and into a throw-away PostgreSQL server; each report is compared
file by file with the CSV run's. The only differences allowed are the run's own record:
where the data came from (run.json, notebook 01's list of files read, the data-quality
table's ``lines_in``, which counts physical lines of files and is empty for a database
table), when the run happened and how long it took (index.html's run date and timings, the
executed .ipynb files' timing metadata and paths, the PDF's print date). Every other page,
table and finding must be byte-identical."""
from __future__ import annotations

import io
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from abmkit.io.csv import read_file

pytest.importorskip("duckdb")
from abmkit.sources.sql import write_tables  # noqa: E402

from pg_server import Server, Unavailable  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
#: files that record the run itself: its source (run.json; notebook 01 lists the files or tables
#: read), its paths and timings (the executed notebooks) and its print date (the PDF)
PROVENANCE = {"run.json", "01_data_cleaning.html", "tables/files_read.csv"}
RUN_RECORD_SUFFIXES = (".ipynb", ".pdf")


def _run(data: str, column_map: str, out: Path) -> subprocess.CompletedProcess:
    code = textwrap.dedent("""
        import sys
        from abmkit.report import run_report
        sys.exit(run_report(quarter="2026Q3", data=sys.argv[1], column_map=sys.argv[2], out_dir=sys.argv[3],
                            notebooks_dir=sys.argv[4], progress=False))
    """)
    return subprocess.run([sys.executable, "-c", code, data, column_map, str(out), str(REPO / "notebooks")],
                          capture_output=True, text=True, timeout=900, cwd=str(out.parent))


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}


@pytest.fixture(scope="module")
def csv_report(small_sample_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("csv_report") / "reports"
    raw = Path(small_sample_dir) / "raw"
    proc = _run(str(raw), str(raw / "column_map.yaml"), out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return _files(out / "2026Q3")


def _raw_tables(small_sample_dir) -> dict:
    return {p.stem: read_file(p).data.astype(object) for p in sorted((Path(small_sample_dir) / "raw").glob("*.csv"))}


def _normalised(name: str, content: bytes) -> bytes:
    """The file without its run stamp: index.html's run date and per-notebook timings;
    data_quality.csv without ``lines_in`` (asserted empty for a database source)."""
    if name == "index.html":
        text = content.decode()
        text = re.sub(r"Run date: [0-9-]+ [0-9:]+ UTC", "Run date: <when>", text)
        return re.sub(r"<td>[0-9.]+ s</td>", "<td><seconds></td>", text).encode()
    if name == "tables/data_quality.csv":
        import pandas as pd
        frame = pd.read_csv(io.BytesIO(content))
        return frame.drop(columns="lines_in").to_csv(index=False).encode()
    return content


def _compare(csv: dict, other: dict) -> None:
    assert sorted(csv) == sorted(other)
    compared = [k for k in csv if k not in PROVENANCE and Path(k).name not in PROVENANCE
                and not k.endswith(RUN_RECORD_SUFFIXES)]
    different = sorted(k for k in compared if _normalised(k, csv[k]) != _normalised(k, other[k]))
    assert different == [], f"the database report differs from the CSV report in {different}"
    assert any(k.endswith(".csv") and k.startswith("tables/") and k != "tables/data_quality.csv" for k in compared)
    assert {"index.html", "05_quarterly_abm_report.html"} <= set(compared)
    import pandas as pd
    lines = pd.read_csv(io.BytesIO(other["tables/data_quality.csv"]))["lines_in"]
    assert lines.isna().all(), "a database table has no physical lines: lines_in must be empty, not a count"
    assert any(k.startswith("tables/") for k in csv) and any(k.endswith(".html") for k in csv)


def test_report_from_duckdb_equals_the_csv_report(small_sample_dir, csv_report, tmp_path):
    db = tmp_path / "sample.duckdb"
    write_tables(f"duckdb:///{db}", _raw_tables(small_sample_dir))
    out = tmp_path / "reports"
    proc = _run(f"duckdb:///{db}", str(Path(small_sample_dir) / "raw" / "column_map.yaml"), out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _compare(csv_report, _files(out / "2026Q3"))


def test_report_from_postgres_equals_the_csv_report(small_sample_dir, csv_report, tmp_path):
    try:
        server = Server().start()
    except Unavailable as exc:
        pytest.skip(f"PostgreSQL report test skipped: {exc}")
    try:
        url = server.url(schema="crm")
        write_tables(url, _raw_tables(small_sample_dir))
        out = tmp_path / "reports"
        proc = _run(url, str(Path(small_sample_dir) / "raw" / "column_map.yaml"), out)
        assert proc.returncode == 0, proc.stderr[-3000:]
        _compare(csv_report, _files(out / "2026Q3"))
    finally:
        server.stop()
