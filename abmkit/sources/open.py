"""Turning what the user gave (``--data``, a notebook argument) into a :class:`Source`.

- a folder path → :class:`~abmkit.sources.folder.FolderSource` (CSV and parquet files);
- ``duckdb:///file.duckdb``, ``postgresql://user@host/db?schema=s``, any SQLAlchemy URL →
  :class:`~abmkit.sources.sql.SqlSource` (needs ``abmkit[sql]``);
- ``db:<name>`` → the connection ``<name>`` of the private connections file
  (``$ABMKIT_CONNECTIONS_FILE``, default ``~/.config/abmkit/connections.yaml``), which may
  hold the password because only its owner can read it::

      warehouse:
        url: postgresql://analyst:secret@db.internal:5432/crm
        schema: salesforce

- a mapping ``{table name: DataFrame}`` → :class:`~abmkit.sources.frames.FrameSource`;
- a Source → itself.

Example
-------
>>> source_label("postgresql://me:pw@host/db")
'postgresql://me:***@host/db'
>>> open_source("data/does-not-exist")
Traceback (most recent call last):
...
abmkit.io.errors.CleanError: raw export folder data/does-not-exist does not exist. Pass the folder holding the exports, or a database URL (duckdb:///file.duckdb, postgresql://user@host/db).
"""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Mapping

from ..io.errors import InputError
from .base import Source, is_url
from .folder import FolderSource
from .frames import FrameSource

CONNECTIONS_ENV = "ABMKIT_CONNECTIONS_FILE"


def connections_file() -> Path:
    """The private file of named database connections."""
    env = os.environ.get(CONNECTIONS_ENV)
    return Path(env).expanduser() if env else Path("~/.config/abmkit/connections.yaml").expanduser()


def source_label(spec) -> str:
    """How a data argument is shown in messages and run records (passwords hidden)."""
    if isinstance(spec, Source):
        return spec.label
    if isinstance(spec, Mapping):
        return "data frames"
    from .sql import redact
    return redact(spec)


def _named_connection(name: str) -> tuple[str, str | None, str | None]:
    from ..io.yaml import load_yaml
    path = connections_file()
    if not path.is_file():
        raise InputError(f"--data db:{name}: no connections file {path} (set {CONNECTIONS_ENV} or create it; "
                         "format in docs/bring_your_own_export.md).")
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InputError(f"{path}: other users can read this file, which holds database passwords; "
                         f"run `chmod 600 {path}` and try again.")
    data = load_yaml(path, what="connections file", hint="docs/bring_your_own_export.md")
    entry = data.get(name) if isinstance(data, Mapping) else None
    if entry is None:
        known = sorted(data) if isinstance(data, Mapping) else []
        raise InputError(f"--data db:{name}: no connection {name!r} in {path} (it names {known}).")
    if isinstance(entry, str):
        return entry, None, None
    if not isinstance(entry, Mapping) or not isinstance(entry.get("url"), str):
        raise InputError(f"{path}: connection {name!r} needs `url:` (and optionally `schema:`, `password:`).")
    url = entry["url"]
    if entry.get("schema"):
        url += ("&" if "?" in url else "?") + f"schema={entry['schema']}"
    pw = entry.get("password")
    return url, (str(pw) if pw is not None else None), name


def open_source(spec) -> Source:
    """A :class:`Source` for a folder, a database URL, ``db:<name>``, data frames or a Source."""
    if isinstance(spec, Source):
        return spec
    if isinstance(spec, Mapping):
        return FrameSource(spec)
    if is_url(spec):
        from .._extras import require
        require("sql", "reading from a database")
        from .sql import SqlSource
        text = str(spec)
        if text.startswith("db:"):
            url, password, _ = _named_connection(text[3:])
            return SqlSource(url, password=password, allow_password_in_url=True)
        return SqlSource(text)
    return FolderSource(Path(spec))
