"""Issue 17, findings 5, 6 and 10: the CSV reader under stray quotes, forced encodings and
oversized input.

- A stray opening quote costs its own line, not the rest of the file: the line goes to the
  ledger as ``unbalanced_quote`` and reading resumes on the next physical line; physical
  lines are conserved as well as records (``lines_in`` in the quality summary).
- Legitimate multi-line quoted values (addresses, long notes) are still one record.
- A forced ``encoding:`` that does not fit the bytes is an error (exit code 2) naming the
  file, the line and the encoding that fits, never U+FFFD in the data.
- Size limits (``max_field_bytes``, ``max_columns``, ``max_header_bytes``; configurable per
  table in the column map) stop the file with a clear error and bounded memory.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from abmkit.clean import CleanError, clean_exports
from abmkit.io.csv import LIMITS, check_limits, read_file

ROOT = Path(__file__).resolve().parents[1]
TOUCH_HEADER = "Touch ID,Timestamp,Channel,Type,Contact ID,Account ID,Campaign ID,Seconds"
TOUCH_COLUMNS = {"touchpoint_id": "Touch ID", "occurred_at": "Timestamp", "channel": "Channel",
                 "touch_type": "Type", "contact_id": "Contact ID", "account_id": "Account ID",
                 "campaign_id": "Campaign ID", "engagement_seconds": "Seconds"}
CONTACT_HEADER = "Contact ID,Email,First Name,Last Name,Title,Account ID"
CONTACT_COLUMNS = {"contact_id": "Contact ID", "email": "Email", "first_name": "First Name",
                   "last_name": "Last Name", "title": "Title", "crm_account_id": "Account ID"}


def _map(folder: Path, table: str, file: str, columns: dict, **options) -> Path:
    cm = {"version": 1, "tables": {table: {"file": file, "columns": columns, **options}}}
    path = folder / "column_map.yaml"
    path.write_text(yaml.safe_dump(cm, sort_keys=False), "utf-8")
    return path


def _touch_rows(n: int = 5000) -> list[str]:
    return [f"t{i:05d},2026-03-01 15:00,LinkedIn Ads,Ad Click,c{i % 97},a{i % 13},,30" for i in range(1, n + 1)]


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "abmkit", *args], capture_output=True, text=True, env=env,
                          cwd=cwd or ROOT, timeout=600)


# ------------------------------------------------------------------ finding 5: a stray quote
@pytest.mark.parametrize("where", ["channel", "last_field"])
def test_stray_opening_quote_costs_one_line_not_the_table(tmp_path, where):
    """5,000 touches, an unmatched opening quote in record 50 (in a middle field: ragged for
    pyarrow; in the last field: a well-formed record swallowing the rest of the file, which
    pyarrow would accept). Was: 4,950 records became one malformed_row, 50 rows in."""
    rows = _touch_rows()
    rows[49] = rows[49].replace("LinkedIn Ads", '"LinkedIn Ads') if where == "channel" else rows[49][:-2] + '"30'
    (tmp_path / "touchpoints.csv").write_text(TOUCH_HEADER + "\n" + "\n".join(rows) + "\n", "utf-8")
    r = clean_exports(tmp_path, _map(tmp_path, "touchpoints", "touchpoints.csv", TOUCH_COLUMNS))
    s = r.to_frame().set_index("table").loc["touchpoints"]
    assert s["rows_clean"] >= 4949
    assert s["rows_clean"] == 4999 and s["rows_in"] == 5000 and s["rows_rejected"] == 1
    # conservation on records and on physical lines
    assert s["rows_in"] == s["rows_clean"] + s["rows_rejected"] + s["rows_merged"]
    assert s["lines_in"] == 5000 and bool(s["conservation_ok"])
    led = r.rejects
    assert led[["source_row", "reason_code"]].values.tolist() == [[50, "unbalanced_quote"]]
    reason = led["reason"].iloc[0]
    assert reason.startswith("unbalanced_quote: line 51:") and "resumed at line 52" in reason
    assert "t00050" in led["raw_values"].iloc[0] and "t00051" not in led["raw_values"].iloc[0]
    assert r.dataset.touchpoints["touchpoint_id"].iloc[49] == "t00051"


def test_stray_quote_closed_by_a_later_quote_loses_at_most_the_lines_between(tmp_path):
    """The stray quote pairs with the next quote 10 lines further (a quoted value there):
    those lines are one ragged record, in the ledger with every line; the rest is read."""
    rows = _touch_rows()
    rows[49] = rows[49].replace("LinkedIn Ads", '"LinkedIn Ads')
    rows[59] = rows[59].replace("Ad Click", '"Ad, Click"')
    (tmp_path / "touchpoints.csv").write_text(TOUCH_HEADER + "\n" + "\n".join(rows) + "\n", "utf-8")
    r = clean_exports(tmp_path, _map(tmp_path, "touchpoints", "touchpoints.csv", TOUCH_COLUMNS))
    s = r.to_frame().set_index("table").loc["touchpoints"]
    assert s["rows_clean"] >= 4949 and s["lines_in"] == 5000 and bool(s["conservation_ok"])
    assert "t00060" in r.rejects["raw_values"].iloc[0]


def test_stray_quote_in_the_exact_reader_and_its_line_numbers(tmp_path):
    """A ragged row elsewhere sends the file to the exact reader: same outcome, and every
    set-aside record names its physical lines."""
    rows = _touch_rows(300)
    rows[9] = rows[9].replace("Ad Click", 'Ad Click,extra')           # ragged: record 10, line 11
    rows[99] = rows[99].replace("LinkedIn Ads", '"LinkedIn Ads')      # stray: record 100, line 101
    text = TOUCH_HEADER + "\r\n" + "\r\n".join(rows[:200]) + "\r\n\r\n" + "\r\n".join(rows[200:]) + "\r\n"
    (tmp_path / "touchpoints.csv").write_text(text, "utf-8", newline="")
    f = read_file(tmp_path / "touchpoints.csv")
    assert [(m.source_row, m.code, m.line, m.lines) for m in f.malformed] == [
        (10, "malformed_row", 11, 1), (100, "unbalanced_quote", 101, 1)]
    assert len(f.data) == 298 and f.blank_lines == 1 and f.lines == 301 == f.lines_accounted


# ------------------------------------------------------------------ legitimate multi-line values
@pytest.mark.parametrize("exact_reader", [False, True])
def test_multiline_quoted_values_stay_one_record(tmp_path, exact_reader):
    """An address over 3 lines and a 60-line note (more than max_record_lines, but its lines
    are text, not records) are one record each, with either reader; lines are conserved."""
    note = "\n".join(f"note line {k}: called back, no answer" for k in range(60))
    rows = ['c1,ann@acme.com,Ann,Lee,"Acme Ltd\n1 Main Street\nSpringfield",a1',
            f'c2,bo@acme.com,Bo,Ng,"{note}",a1',
            'c3,cy@acme.com,Cy,Ho,"VP, ""Sales""",a1']
    if exact_reader:
        rows.append("c4,dee@acme.com,Dee")  # a ragged row: the exact (csv module) reader runs
    (tmp_path / "contacts.csv").write_text(CONTACT_HEADER + "\n" + "\n".join(rows) + "\n", "utf-8")
    r = clean_exports(tmp_path, _map(tmp_path, "contacts", "contacts.csv", CONTACT_COLUMNS))
    s = r.to_frame().set_index("table").loc["contacts"]
    titles = r.dataset.contacts.set_index("contact_id")["title"]
    assert titles["c1"] == "Acme Ltd\n1 Main Street\nSpringfield"
    assert titles["c2"].count("\n") == 59 and titles["c2"].startswith("note line 0")
    assert titles["c3"] == 'VP, "Sales"'
    assert s["rows_clean"] == 3 and s["rows_rejected"] == int(exact_reader)
    assert s["lines_in"] == 3 + 60 + 1 + int(exact_reader) and bool(s["conservation_ok"])
    assert "unbalanced_quote" not in set(r.rejects["reason_code"])


def test_record_line_limit_is_configurable(tmp_path):
    """`max_record_lines: 3` in the column map: a quote still open after 3 lines whose lines
    read as records is a stray one, found after 3 lines instead of 50."""
    rows = _touch_rows(10)
    rows[2] = rows[2].replace("LinkedIn Ads", '"LinkedIn Ads')
    (tmp_path / "touchpoints.csv").write_text(TOUCH_HEADER + "\n" + "\n".join(rows) + "\n", "utf-8")
    r = clean_exports(tmp_path, _map(tmp_path, "touchpoints", "touchpoints.csv", TOUCH_COLUMNS,
                                     max_record_lines=3))
    assert r.rejects[["source_row", "reason_code"]].values.tolist() == [[3, "unbalanced_quote"]]
    assert r.to_frame()["rows_clean"].tolist() == [9]


# ------------------------------------------------------------------ finding 6: forced encoding
def _cp1252_accounts(folder: Path, **options) -> Path:
    rows = [CSV_ACCOUNTS_HEADER] + [f"a{i},Société Générale {i},sg{i}.fr" if i % 3 == 0 else
                                    f"a{i},Acme {i},acme{i}.com" for i in range(1, 40)]
    (folder / "accounts.csv").write_bytes(("\n".join(rows) + "\n").encode("cp1252"))
    return _map(folder, "accounts", "accounts.csv", {"account_id": "Account ID", "account_name": "Account Name",
                                                     "domain": "Website"}, **options)


CSV_ACCOUNTS_HEADER = "Account ID,Account Name,Website"


def test_forced_utf8_on_a_cp1252_file_exits_2_naming_line_and_encoding(tmp_path):
    """Was: 13 names with U+FFFD, exit 0."""
    _cp1252_accounts(tmp_path, encoding="utf-8")
    res = _cli("validate", str(tmp_path))
    assert res.returncode == 2, res.stderr
    err = res.stderr
    assert err.startswith("abmkit validate: error: ") and "Traceback" not in err
    assert "accounts.csv" in err and "line 4" in err and "utf-8" in err
    assert "`encoding: cp1252`" in err and "U+FFFD" in err
    with pytest.raises(CleanError, match="line 4"):
        clean_exports(tmp_path, tmp_path / "column_map.yaml")
    from abmkit.clean.api import check_files  # the cheap pre-flight finds it too
    with pytest.raises(CleanError, match="cp1252"):
        check_files(tmp_path, tmp_path / "column_map.yaml")


def test_without_a_forced_encoding_the_cp1252_file_reads_correctly(tmp_path):
    """The sniffing path is unchanged, and the pre-flight accepts the file."""
    from abmkit.clean.api import check_files
    cmap = _cp1252_accounts(tmp_path)
    check_files(tmp_path, cmap)
    r = clean_exports(tmp_path, cmap)
    names = r.dataset.accounts["account_name"].tolist()
    assert "Société Générale 3" in names and not any("\ufffd" in n for n in names)
    assert r.files["encoding"].tolist() == ["cp1252"]
    cmap = _cp1252_accounts(tmp_path, encoding="cp1252")  # forcing the right one is fine
    assert clean_exports(tmp_path, cmap).dataset.accounts["account_name"].tolist() == names


def test_forced_cp1252_on_bytes_cp1252_leaves_undefined_suggests_latin1(tmp_path):
    (tmp_path / "accounts.csv").write_bytes(b"Account ID,Account Name\na1,Caf\xe9\na2,Odd\x81Byte\n")
    cmap = _map(tmp_path, "accounts", "accounts.csv", {"account_id": "Account ID", "account_name": "Account Name"},
                encoding="cp1252")
    with pytest.raises(CleanError) as info:
        clean_exports(tmp_path, cmap)
    msg = str(info.value)
    assert "accounts.csv" in msg and "line 3" in msg and "`encoding: latin-1`" in msg


@pytest.mark.notebook
def test_report_exits_2_on_a_forced_encoding_that_does_not_fit(tmp_path):
    """The report stops in notebook 01 with the CleanError, which it maps to exit code 2."""
    cmap = _cp1252_accounts(tmp_path, encoding="utf-8")
    res = _cli("report", "--data", str(tmp_path), "--column-map", str(cmap), "--quarter", "2026Q1",
               "--out", str(tmp_path / "reports"))
    assert res.returncode == 2, res.stderr
    assert "accounts.csv" in res.stderr and "cp1252" in res.stderr


# ------------------------------------------------------------------ finding 10: size limits
# peak RSS from VmHWM (this process image's high-water mark; ru_maxrss would include the
# forking test process's RSS, which Linux carries across exec)
_MEASURE = r"""
import sys
import abmkit.clean, abmkit.cli, pandas, pyarrow.csv  # the baseline: everything imported
def status(key):
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) * 1024 for l in fh if l.startswith(key + ":"))
base = status("VmRSS")
rc = abmkit.cli.main(sys.argv[1:])
print(f"\nMEASURED {base} {status('VmHWM')}", file=sys.stderr)
sys.exit(rc)
"""


def _measured_cli(*args: str) -> tuple[int, str, int]:
    """``(exit code, stderr, extra peak RSS in bytes over the imported baseline)``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-c", _MEASURE, *args], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=600)
    line = [ln for ln in res.stderr.splitlines() if ln.startswith("MEASURED ")][-1]
    base, peak = map(int, line.split()[1:])
    return res.returncode, res.stderr, peak - base


def _big_value_file(folder: Path, mib: int, kind: str) -> Path:
    n = mib << 20
    if kind == "plain":
        value = "x" * n
    elif kind == "quoted_lines":
        value = '"' + ("y" * 99 + "\n") * (n // 100) + '"'
    else:
        raise ValueError(kind)
    path = folder / "contacts.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(CONTACT_HEADER + "\n")
        fh.write(f"c1,ann@acme.com,Ann,Lee,{value},a1\n")
        fh.write("c2,bo@acme.com,Bo,Ng,CEO,a1\n")
    return path


needs_proc = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak RSS read from /proc")


@needs_proc
def test_value_over_max_field_bytes_stops_with_bounded_memory(tmp_path):
    """A 20 MiB value (default limit 16 MiB): exit 2 naming file, line, limit and the key to
    raise; the value is refused before it is parsed (was: read whole, ~12x the file in RSS)."""
    path = _big_value_file(tmp_path, 20, "plain")
    _map(tmp_path, "contacts", "contacts.csv", CONTACT_COLUMNS)
    rc, err, extra = _measured_cli("validate", str(tmp_path))
    assert rc == 2, err
    assert "contacts.csv" in err and "line 2" in err and "max_field_bytes = 16 MiB" in err
    assert "`max_field_bytes:`" in err and "column map" in err
    size = path.stat().st_size
    assert extra < 4 * size, f"peak RSS grew by {extra / size:.1f}x the file"


@needs_proc
def test_multiline_value_over_a_configured_limit_stops_with_bounded_memory(tmp_path):
    """A 20 MiB quoted value with a line break every 100 bytes (not records: no stray quote),
    `max_field_bytes: 2 MiB` in the column map: exit 2, memory bounded by the limit."""
    path = _big_value_file(tmp_path, 20, "quoted_lines")
    _map(tmp_path, "contacts", "contacts.csv", CONTACT_COLUMNS, max_field_bytes="2 MiB")
    rc, err, extra = _measured_cli("validate", str(tmp_path))
    assert rc == 2, err
    assert "contacts.csv" in err and "line 2" in err and "max_field_bytes = 2 MiB" in err
    assert extra < 4 * path.stat().st_size, f"peak RSS grew by {extra / path.stat().st_size:.1f}x the file"


def test_raising_max_field_bytes_reads_the_value(tmp_path):
    path = _big_value_file(tmp_path, 1, "plain")
    with pytest.raises(CleanError, match="max_field_bytes = 512 KiB"):
        read_file(path, limits={"max_field_bytes": "512 KiB"})
    f = read_file(path, limits={"max_field_bytes": "2 MiB"})
    assert f.data["Title"].str.len().tolist() == [1 << 20, 3]


def test_a_million_columns_exit_2_instead_of_a_silently_cut_header(tmp_path):
    """Was: the header cut at 1,000,000 characters and every row rejected, exit 0."""
    header = ",".join(f"c{i}" for i in range(1_000_000))
    row = ",".join("v" for _ in range(1_000_000))
    (tmp_path / "contacts.csv").write_text(header + "\n" + row + "\n", "utf-8")
    _map(tmp_path, "contacts", "contacts.csv", {"contact_id": "c0"})
    res = _cli("validate", str(tmp_path))
    assert res.returncode == 2, res.stderr[-2000:]
    err = res.stderr
    assert "contacts.csv" in err and "line 1" in err and "max_columns = 10,000" in err
    assert "`max_columns:`" in err and len(err) < 2000


def test_too_many_columns_and_raising_the_limit(tmp_path):
    header = ",".join(["Contact ID"] + [f"x{i}" for i in range(12_000)])
    (tmp_path / "contacts.csv").write_text(header + "\nc1" + "," * 12_000 + "\n", "utf-8")
    cmap = _map(tmp_path, "contacts", "contacts.csv", {"contact_id": "Contact ID"})
    with pytest.raises(CleanError, match=r"has 12,001 columns, more than max_columns = 10,000"):
        clean_exports(tmp_path, cmap)
    cmap = _map(tmp_path, "contacts", "contacts.csv", {"contact_id": "Contact ID"}, max_columns=20_000)
    assert clean_exports(tmp_path, cmap).dataset.contacts["contact_id"].tolist() == ["c1"]


def test_header_over_max_header_bytes(tmp_path):
    header = "Contact ID,Email," + "N" * (2 << 20)
    (tmp_path / "contacts.csv").write_text(header + "\nc1,a@b.com,x\n", "utf-8")
    cmap = _map(tmp_path, "contacts", "contacts.csv", {"contact_id": "Contact ID"})
    res = _cli("validate", str(tmp_path))
    assert res.returncode == 2
    assert "contacts.csv" in res.stderr and "line 1 (the header) is longer than max_header_bytes = 1 MiB" \
        in res.stderr and "`max_header_bytes:`" in res.stderr
    cmap = _map(tmp_path, "contacts", "contacts.csv", {"contact_id": "Contact ID"}, max_header_bytes="4 MiB")
    assert len(clean_exports(tmp_path, cmap).dataset.contacts) == 1


def test_limits_have_one_set_of_defaults_and_are_checked(tmp_path):
    assert LIMITS == {"max_field_bytes": 16 << 20, "max_record_lines": 50, "max_columns": 10_000,
                      "max_header_bytes": 1 << 20}
    from abmkit.clean.colmap import DEFAULTS
    assert {k: DEFAULTS[k] for k in LIMITS} == LIMITS
    assert check_limits({"max_field_bytes": "64 MiB", "max_columns": "20_000"})["max_field_bytes"] == 64 << 20
    assert check_limits({"max_header_bytes": "512KB", "max_record_lines": 7}) == {
        **LIMITS, "max_header_bytes": 512 << 10, "max_record_lines": 7}
    (tmp_path / "contacts.csv").write_text(CONTACT_HEADER + "\nc1,a@b.com,A,B,C,a1\n", "utf-8")
    for bad in ("lots", -1, 0, True):
        cmap = _map(tmp_path, "contacts", "contacts.csv", CONTACT_COLUMNS, max_record_lines=bad)
        with pytest.raises(CleanError, match="max_record_lines"):
            clean_exports(tmp_path, cmap)


def test_quality_summary_counts_lines(tmp_path):
    """`lines_in` beside `rows_in`: physical lines below the header, each in a record or blank."""
    rows = _touch_rows(5)
    (tmp_path / "touchpoints.csv").write_text(TOUCH_HEADER + "\n" + "\n".join(rows) + "\n\n", "utf-8")
    r = clean_exports(tmp_path, _map(tmp_path, "touchpoints", "touchpoints.csv", TOUCH_COLUMNS))
    q = r.to_frame()
    assert q[["rows_in", "lines_in"]].values.tolist() == [[5, 6]]
    assert isinstance(q, pd.DataFrame) and q["conservation_ok"].all()
