"""Databases and warehouses as a source: any SQLAlchemy URL, DuckDB files natively.

``--data duckdb:///path/file.duckdb`` reads an embedded DuckDB file (no server);
``--data postgresql://user@host:5432/db?schema=salesforce`` (or any URL SQLAlchemy has a
driver for: Snowflake, BigQuery, MySQL, ...) reads a server. ``?schema=`` picks the schema
the tables live in (a sync tool's ``salesforce`` schema, say); it is not passed to the driver.

Safety (the database, the column map and its queries may be written by someone else):

- **No credentials on the command line**: a URL with a password is refused (it would show
  in ``ps`` and shell history). The password comes from ``ABMKIT_DB_PASSWORD``, from the
  driver's own mechanism (``PGPASSWORD``, ``~/.pgpass``), or from a named connection in a
  private file (:mod:`abmkit.sources.open`, ``--data db:<name>``).
- **Read only**: DuckDB files are opened ``read_only`` with external access off (a query
  cannot read or write files, install extensions or attach other databases); PostgreSQL
  sessions are ``default_transaction_read_only``; every other database reads inside a
  transaction that is rolled back. Use a role that can read the sync schema and nothing else.
- **Queries from a column map** (``query:``) must be one ``SELECT`` (or ``WITH ... SELECT``)
  statement; table names are quoted by the dialect, never pasted into SQL text.

Example
-------
>>> check_query("SELECT Id, Name FROM account WHERE NOT is_deleted", origin="map", table="accounts")
'SELECT Id, Name FROM account WHERE NOT is_deleted'
>>> check_query("DELETE FROM account", origin="map", table="accounts")
Traceback (most recent call last):
...
abmkit.io.errors.InputError: map: `tables.accounts.query` must be one SELECT statement (or WITH ... SELECT); it starts with 'DELETE'. Queries only read.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Mapping

import pyarrow as pa

from ..io.csv import RawFrame
from ..io.errors import CleanError, InputError
from .base import Source, table_to_strings

#: environment variable holding the database password (never the command line)
PASSWORD_ENV = "ABMKIT_DB_PASSWORD"
#: rows fetched per round trip from a server
FETCH_ROWS = 200_000

_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)


def check_query(query: str, *, origin: str, table: str) -> str:
    """``query`` if it is one read-only statement (``SELECT``/``WITH``), else :class:`InputError`."""
    text = str(query)
    body = _COMMENT.sub(" ", text).strip().rstrip(";").strip()
    first = body.split(None, 1)[0].upper() if body else ""
    key = f"`tables.{table}.query`"
    if first not in ("SELECT", "WITH"):
        raise InputError(f"{origin}: {key} must be one SELECT statement (or WITH ... SELECT); it starts with "
                         f"{first[:20]!r}. Queries only read.")
    if ";" in _strip_literals(body):
        raise InputError(f"{origin}: {key} holds more than one statement (a ';' inside it); give one SELECT.")
    return text


def _strip_literals(sql: str) -> str:
    return re.sub(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"", "''", sql)


def split_url(url: str):
    """``(sqlalchemy URL without the abmkit-only query keys, schema or None)``."""
    from sqlalchemy.engine import make_url
    try:
        u = make_url(str(url))
    except Exception:
        raise InputError(f"--data {redact(url)!r} is not a database URL (e.g. duckdb:///path/file.duckdb, "
                         "postgresql://user@host:5432/db?schema=salesforce).") from None
    schema = u.query.get("schema")
    if isinstance(schema, tuple):
        schema = schema[0]
    return u.difference_update_query(["schema"]), schema


def redact(url) -> str:
    """The URL with any password replaced by ``***`` (for messages and run records)."""
    return re.sub(r"(//[^/:@]*:)[^@/]*@", r"\1***@", str(url))


class SqlSource(Source):
    """Tables of a database schema, read as strings.

    Parameters
    ----------
    url : str
        ``duckdb:///file.duckdb`` or an SQLAlchemy URL; ``?schema=`` selects the schema.
    password : str, optional
        only from a private connections file or the environment (never a command line).
    """

    kind = "sql"

    def __init__(self, url: str, *, password: str | None = None, allow_password_in_url: bool = False):
        u, self.schema = split_url(url)
        if u.password and not allow_password_in_url:
            raise InputError(f"--data {redact(url)}: the URL holds a password, which other users of the machine "
                             f"can read (process list, shell history). Leave it out and set {PASSWORD_ENV}, use "
                             "the driver's own file (~/.pgpass for PostgreSQL), or name the connection in the "
                             "private connections file and pass --data db:<name> (docs/bring_your_own_export.md).")
        if password is None and not u.password and os.environ.get(PASSWORD_ENV):
            password = os.environ[PASSWORD_ENV]
        if password is not None:
            u = u.set(password=password)
        self.url = u
        self.backend = u.get_backend_name()
        self.label = redact(u.render_as_string(hide_password=True))
        self._duck = None
        self._engine = None
        if self.backend == "duckdb":
            import duckdb
            path = u.database or ""
            if not path or path == ":memory:" or not Path(path).is_file():
                raise CleanError(f"{self.label}: DuckDB file {path!r} does not exist. Give the path to a "
                                 ".duckdb file: duckdb:///relative/path.duckdb or duckdb:////absolute/path.duckdb.")
            try:
                self._duck = duckdb.connect(path, read_only=True, config={"enable_external_access": False})
            except duckdb.Error as exc:
                raise CleanError(f"{self.label}: cannot open the DuckDB file ({exc}).") from None
        else:
            import sqlalchemy as sa
            connect_args = {}
            if self.backend == "postgresql":
                connect_args["options"] = "-c default_transaction_read_only=on"
            try:
                self._engine = sa.create_engine(u, connect_args=connect_args, pool_pre_ping=False)
            except Exception as exc:  # no driver installed, a malformed URL
                raise CleanError(f"{self.label}: cannot use this database ({type(exc).__name__}: {exc}). Install "
                                 "its SQLAlchemy driver (psycopg for PostgreSQL ships with abmkit[sql]).") from None

    # ----------------------------------------------------------------------- helpers
    def _quote(self, name: str) -> str:
        if self._duck is not None:
            q = lambda s: '"' + str(s).replace('"', '""') + '"'  # noqa: E731
        else:
            q = self._engine.dialect.identifier_preparer.quote
        return (q(self.schema) + "." if self.schema else "") + q(name)

    def _arrow(self, sql: str) -> pa.Table:
        if self._duck is not None:
            import duckdb
            try:
                return self._duck.execute(sql).fetch_arrow_table()
            except duckdb.Error as exc:
                raise CleanError(f"{self.label}: the query failed ({str(exc).splitlines()[0]}).") from None
        import pandas as pd
        import sqlalchemy as sa
        parts = []
        try:
            with self._engine.connect() as conn:
                result = conn.execution_options(stream_results=True).execute(sa.text(sql))
                cols = list(result.keys())
                for chunk in result.partitions(FETCH_ROWS):
                    parts.append(pd.DataFrame.from_records(chunk, columns=cols))
                if not parts:
                    parts.append(pd.DataFrame(columns=cols))
                conn.rollback()
        except sa.exc.SQLAlchemyError as exc:
            raise CleanError(f"{self.label}: the query failed ({str(exc).splitlines()[0]}).") from None
        tables = [pa.Table.from_pandas(p, preserve_index=False) for p in parts]
        return pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]

    # ----------------------------------------------------------------------- Source
    def names(self) -> list[str]:
        if self._duck is not None:
            rows = self._duck.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = ? ORDER BY table_name",
                [self.schema or "main"]).fetchall()
            return [r[0] for r in rows]
        import sqlalchemy as sa
        try:
            insp = sa.inspect(self._engine)
            return sorted(set(insp.get_table_names(schema=self.schema)) | set(insp.get_view_names(schema=self.schema)))
        except sa.exc.SQLAlchemyError as exc:
            raise CleanError(f"{self.label}: cannot list the tables ({str(exc).splitlines()[0]}). Check the host, "
                             f"the user, the password ({PASSWORD_ENV} or ~/.pgpass) and the schema.") from None

    def display_name(self, name: str) -> str:
        return f"{self.schema}.{name}" if self.schema else str(name)

    def read(self, name: str, *, table: str, block: Mapping | None = None) -> RawFrame:
        arrow = self._arrow(f"SELECT * FROM {self._quote(name)}")
        return RawFrame(self.display_name(name), table_to_strings(arrow))

    def read_query(self, query: str, *, table: str, block: Mapping | None = None) -> RawFrame:
        query = check_query(query, origin=str((block or {}).get("_origin") or "column map"), table=table)
        arrow = self._arrow(query.strip().rstrip(";"))
        return RawFrame(f"query:{table}", table_to_strings(arrow))

    def columns(self, name: str) -> list[str]:
        """Column names of a table (for validate's messages), without reading rows."""
        arrow = self._arrow(f"SELECT * FROM {self._quote(name)} LIMIT 0")
        return list(arrow.column_names)

    def fingerprint(self) -> dict[str, str]:
        out = {}
        for name in self.names():
            arrow = self._arrow(f"SELECT COUNT(*) AS n FROM {self._quote(name)}")
            out[self.display_name(name)] = f"rows={arrow.column(0)[0].as_py()}"
        return out

    def close(self) -> None:
        if self._duck is not None:
            self._duck.close()
            self._duck = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def write_tables(url: str, tables: Mapping, *, schema: str | None = None, replace: bool = False) -> None:
    """Write ``{name: DataFrame}`` as tables of a database (a DuckDB file is created when
    missing): a way to load exports into DuckDB, and what the tests use to build sources.
    Existing tables are kept unless ``replace``.

    Example
    -------
    >>> import tempfile, pathlib, pandas as pd
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "crm.duckdb"
    >>> write_tables(f"duckdb:///{path}", {"accounts": pd.DataFrame({"account_id": ["A1"]})})
    >>> with SqlSource(f"duckdb:///{path}") as src:
    ...     src.names()
    ['accounts']
    """
    u, url_schema = split_url(url)
    schema = schema or url_schema
    if u.get_backend_name() == "duckdb":
        import duckdb
        con = duckdb.connect(u.database)
        try:
            if schema:
                con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema.replace(chr(34), chr(34) * 2)}"')
            for name, df in tables.items():
                q = (f'"{schema}".' if schema else "") + '"' + str(name).replace('"', '""') + '"'
                con.register("_abmkit_frame", df)
                con.execute(f"CREATE {'OR REPLACE ' if replace else ''}TABLE {q} AS SELECT * FROM _abmkit_frame")
                con.unregister("_abmkit_frame")
        finally:
            con.close()
        return
    import sqlalchemy as sa
    engine = sa.create_engine(u)
    try:
        with engine.begin() as conn:
            if schema:
                conn.execute(sa.schema.CreateSchema(schema, if_not_exists=True))
            for name, df in tables.items():
                df.to_sql(str(name), conn, schema=schema, index=False, if_exists="replace" if replace else "fail",
                          chunksize=100_000, method=_copy_rows if u.get_backend_name() == "postgresql" else None)
    finally:
        engine.dispose()


def _copy_rows(table, conn, keys, data_iter) -> None:
    """pandas ``to_sql`` insert method for PostgreSQL: ``COPY ... FROM STDIN`` (psycopg 3),
    an order of magnitude faster than INSERT statements."""
    dbapi = conn.connection.driver_connection
    prep = conn.dialect.identifier_preparer
    target = (prep.quote(table.schema) + "." if table.schema else "") + prep.quote(table.name)
    cols = ", ".join(prep.quote(k) for k in keys)
    with dbapi.cursor() as cur, cur.copy(f"COPY {target} ({cols}) FROM STDIN") as copy:
        for row in data_iter:
            copy.write_row(row)
