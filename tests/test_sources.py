"""Sources under the cleaner (abmkit.sources): CSV and parquet folders, data frames,
DuckDB files and a real PostgreSQL server give the same cleaned data as the CSV export;
credentials never come from the command line; queries only read."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pandas as pd
import pytest

import abmkit
from abmkit.clean import CleanError, clean_exports
from abmkit.clean.api import canonical_column_map
from abmkit.io.csv import read_file
from abmkit.io.errors import InputError
from abmkit.sources import FolderSource, open_source

pytest.importorskip("duckdb")
pytest.importorskip("sqlalchemy")
from abmkit.sources.sql import SqlSource, check_query, write_tables  # noqa: E402

from pg_server import Server, Unavailable  # noqa: E402


def _raw_tables(raw_dir: Path) -> dict[str, pd.DataFrame]:
    """The raw export as read from CSV (strings), keyed by the file's stem."""
    return {p.stem: read_file(p).data.astype(object) for p in sorted(Path(raw_dir).glob("*.csv"))}


def _same_datasets(a, b):
    for name, df in a.dataset.tables().items():
        other = b.dataset.tables()[name]
        pd.testing.assert_frame_equal(df.reset_index(drop=True), other.reset_index(drop=True), check_like=False)


@pytest.fixture(scope="module")
def csv_result(small_sample_dir):
    raw = Path(small_sample_dir) / "raw"
    return clean_exports(raw, raw / "column_map.yaml")


@pytest.fixture(scope="module")
def duck_raw(small_sample_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("duck") / "raw.duckdb"
    write_tables(f"duckdb:///{path}", _raw_tables(Path(small_sample_dir) / "raw"))
    return path


# ------------------------------------------------------------------------------ folders
def test_parquet_folder_reads_like_the_csv_export(small_sample_dir, csv_result, tmp_path):
    raw = Path(small_sample_dir) / "raw"
    for name, df in _raw_tables(raw).items():   # the same tables saved as parquet, no CSV left
        df.to_parquet(tmp_path / f"{name}.parquet", index=False)
    res = clean_exports(tmp_path, raw / "column_map.yaml")   # the map still says accounts.csv
    _same_datasets(csv_result, res)
    assert set(res.files["source_file"]) == {f"{n}.parquet" for n in _raw_tables(raw)}


def test_parquet_folder_refuses_a_link_leading_out(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    pd.DataFrame({"x": ["secret"]}).to_parquet(outside / "accounts.parquet")
    data = tmp_path / "data"
    data.mkdir()
    os.symlink(outside / "accounts.parquet", data / "accounts.parquet")
    with pytest.raises(InputError, match="outside the data folder"):
        FolderSource(data).match(["accounts.csv"], table="accounts")


# ------------------------------------------------------------------------------ frames
def test_data_frames_with_canonical_names_need_no_map(small_sample):
    ds = small_sample.dataset
    frames = {name: df for name, df in ds.tables().items()}   # typed columns: timestamps, floats, bools
    res = clean_exports(frames)
    assert res.column_map_origin.startswith("canonical tables") if hasattr(res, "column_map_origin") else True
    for name, df in ds.tables().items():
        got = res.dataset.tables()[name]
        assert len(got) == len(df), name
        assert sorted(got.iloc[:, 0].astype(str)) == sorted(df.iloc[:, 0].astype(str)), name
    assert res.dataset.touchpoints["occurred_at"].equals(
        ds.touchpoints.set_index("touchpoint_id").loc[res.dataset.touchpoints["touchpoint_id"], "occurred_at"]
        .reset_index(drop=True))


def test_canonical_map_names_what_it_could_not_find():
    with pytest.raises(CleanError, match="no table carries a canonical name"):
        canonical_column_map({"Account": pd.DataFrame({"Id": ["1"]})})


# ------------------------------------------------------------------------------ DuckDB
def test_duckdb_raw_tables_clean_like_the_csv_export(duck_raw, small_sample_dir, csv_result):
    raw = Path(small_sample_dir) / "raw"
    res = clean_exports(f"duckdb:///{duck_raw}", raw / "column_map.yaml")
    _same_datasets(csv_result, res)
    assert res.summary["conservation_ok"].all()


def test_duckdb_canonical_tables_need_no_map(small_sample, tmp_path):
    path = tmp_path / "canonical.duckdb"
    write_tables(f"duckdb:///{path}", small_sample.dataset.tables())
    res = clean_exports(f"duckdb:///{path}")
    assert len(res.dataset.touchpoints) == len(small_sample.dataset.touchpoints)
    assert set(res.dataset.accounts["account_id"]) == set(small_sample.dataset.accounts["account_id"])


def test_map_may_name_a_table_or_a_query(duck_raw, small_sample_dir, csv_result):
    from abmkit.io.yaml import load_yaml
    raw = Path(small_sample_dir) / "raw"
    cm = load_yaml(raw / "column_map.yaml", what="column map")
    cm["tables"]["accounts"] = {**cm["tables"]["accounts"], "table": "accounts"}
    del cm["tables"]["accounts"]["file"]
    cm["tables"]["campaigns"] = {**cm["tables"]["campaigns"], "query": "SELECT * FROM campaigns -- all of them"}
    del cm["tables"]["campaigns"]["file"]
    res = clean_exports(f"duckdb:///{duck_raw}", cm)
    _same_datasets(csv_result, res)
    assert "query:campaigns" in set(res.files["source_file"])


@pytest.mark.parametrize("query, why", [
    ("DELETE FROM accounts", "must be one SELECT"),
    ("SELECT 1; DROP TABLE accounts", "more than one statement"),
    ("  -- comment\n INSERT INTO accounts VALUES (1)", "must be one SELECT"),
])
def test_queries_only_read(query, why):
    with pytest.raises(InputError, match=why):
        check_query(query, origin="column map x.yaml", table="accounts")
    assert check_query("SELECT ';' AS semicolon FROM t", origin="m", table="t")  # a ';' in a literal is fine


def test_duckdb_query_cannot_read_files_or_write(duck_raw, tmp_path):
    secret = tmp_path / "secret.csv"
    secret.write_text("a\nprivate\n")
    with SqlSource(f"duckdb:///{duck_raw}") as src:
        with pytest.raises(CleanError, match="query failed"):
            src.read_query(f"SELECT * FROM read_csv('{secret}')", table="accounts")
        with pytest.raises(CleanError, match="query failed"):  # WITH ... is a SELECT, but the file stays read-only
            src._arrow("CREATE TABLE x AS SELECT 1")
        before = src.fingerprint()
    with SqlSource(f"duckdb:///{duck_raw}") as src:
        assert src.fingerprint() == before


# ------------------------------------------------------------------------------ credentials
def test_password_in_the_url_is_refused(duck_raw):
    with pytest.raises(InputError, match="holds a password") as exc:
        SqlSource("postgresql://analyst:s3cret@db.example.com/crm")
    assert "s3cret" not in str(exc.value)


def test_named_connection_from_a_private_file(duck_raw, tmp_path, monkeypatch):
    conn = tmp_path / "connections.yaml"
    conn.write_text(f"crm:\n  url: duckdb:///{duck_raw}\n")
    monkeypatch.setenv("ABMKIT_CONNECTIONS_FILE", str(conn))
    os.chmod(conn, 0o644)
    with pytest.raises(InputError, match="chmod 600"):
        open_source("db:crm")
    os.chmod(conn, stat.S_IRUSR | stat.S_IWUSR)
    with open_source("db:crm") as src:
        assert "accounts" in src.names()
    with pytest.raises(InputError, match="no connection 'other'"):
        open_source("db:other")


def test_missing_duckdb_file_is_a_clear_error(tmp_path):
    with pytest.raises(CleanError, match="does not exist"):
        open_source(f"duckdb:///{tmp_path / 'nope.duckdb'}")


def test_missing_table_is_named_in_the_sources_terms(duck_raw, small_sample_dir):
    raw = Path(small_sample_dir) / "raw"
    from abmkit.io.yaml import load_yaml
    cm = load_yaml(raw / "column_map.yaml", what="column map")
    cm["tables"]["revenue"]["file"] = "revenue_2026.csv"
    with pytest.raises(CleanError, match="no table matches 'revenue_2026.csv' for table revenue") as exc:
        clean_exports(f"duckdb:///{duck_raw}", cm)
    assert "'accounts'" in str(exc.value)   # the tables the database does hold


# ------------------------------------------------------------------------------ PostgreSQL
@pytest.fixture(scope="module")
def pg():
    try:
        server = Server().start()
    except Unavailable as exc:
        pytest.skip(f"PostgreSQL tests skipped: {exc}")
    yield server
    server.stop()


def test_postgres_raw_tables_clean_like_the_csv_export(pg, small_sample_dir, csv_result):
    raw = Path(small_sample_dir) / "raw"
    write_tables(pg.url(schema="crm_export"), _raw_tables(raw))
    res = clean_exports(pg.url(schema="crm_export"), raw / "column_map.yaml")
    _same_datasets(csv_result, res)


def test_postgres_session_is_read_only(pg):
    write_tables(pg.url(), {"t": pd.DataFrame({"a": ["1"]})}, replace=True)
    with SqlSource(pg.url()) as src:
        ro = src._arrow("SELECT current_setting('default_transaction_read_only') AS ro")
        assert ro.column("ro").to_pylist() == ["on"]
        # a data-modifying WITH passes the SELECT/WITH check but cannot write
        with pytest.raises(CleanError, match="query failed"):
            src.read_query("WITH x AS (INSERT INTO t VALUES ('2') RETURNING a) SELECT * FROM x", table="accounts")
        assert src.read("t", table="accounts").data["a"].tolist() == ["1"]


def test_salesforce_preset_reads_a_sync_tools_schema(pg, tmp_path):
    """Object tables in snake case (a Fivetran-style `salesforce` schema): the preset finds
    `account` / `campaign_member`, matches `number_of_employees` to NumberOfEmployees, and
    ledgers records the tool marks deleted."""
    from abmkit.adapters.salesforce import OBJECTS
    src_dir = Path(__file__).parent / "data" / "salesforce_export"
    csv = clean_exports(src_dir, "salesforce")
    tables = {}
    for obj, names in OBJECTS.items():
        path = next((src_dir / n for n in names if (src_dir / n).is_file()), None)
        if path is None:
            continue
        df = read_file(path).data.astype(object)
        snake = {c: "".join("_" + ch.lower() if ch.isupper() and i else ch.lower() for i, ch in enumerate(c))
                 for c in df.columns}
        df = df.rename(columns=snake)
        df["_fivetran_deleted"] = "false"
        table = "".join("_" + ch.lower() if ch.isupper() and i else ch.lower() for i, ch in enumerate(obj))
        tables[table] = df
    extra = tables["account"].iloc[[0]].copy()
    extra["id"], extra["_fivetran_deleted"] = "001000000000999", "true"
    tables["account"] = pd.concat([tables["account"], extra], ignore_index=True)
    write_tables(pg.url(schema="salesforce"), tables, replace=True)
    res = clean_exports(pg.url(schema="salesforce"), "salesforce")
    for name, df in csv.dataset.tables().items():
        assert len(res.dataset.tables()[name]) == len(df), name
    assert sorted(res.dataset.accounts["account_id"]) == sorted(csv.dataset.accounts["account_id"])
    gone = res.rejects[res.rejects["reason"].str.startswith("deleted_record")]
    assert gone["reason"].tolist() == ["deleted_record: Account record deleted in Salesforce (the sync tool's deleted flag)"]
    assert gone["source_file"].tolist() == ["salesforce.account"]


def test_validate_on_a_database_names_tables_and_columns_as_the_database_does(duck_raw, small_sample_dir, tmp_path,
                                                                            capsys):
    from abmkit.cli import main
    from abmkit.io.yaml import load_yaml
    raw = Path(small_sample_dir) / "raw"
    url = f"duckdb:///{duck_raw}"
    assert main(["validate", url, "--column-map", str(raw / "column_map.yaml")]) == 0
    out = capsys.readouterr().out
    assert f"Source: {url}" in out and "Tables: " in out and "touchpoints" in out
    cm = load_yaml(raw / "column_map.yaml", what="column map")
    cm["tables"]["accounts"]["columns"]["domain"] = "Website URL"          # not a column of the table
    (tmp_path / "bad.yaml").write_text(__import__("yaml").safe_dump(cm))
    assert main(["validate", url, "--column-map", str(tmp_path / "bad.yaml")]) == 2
    err = capsys.readouterr().err
    assert "Website URL" in err and "accounts" in err and "'Website'" in err   # the table's own columns listed
