"""Every source column of a CRM export reaches the column map.

An adapter builds, per canonical table, frames of its own *derived* columns
(``OccurredAt``, ``Channel``, ``PersonId``, ... : the rules of the CRM's data model).
A copy of a preset may instead name any field of the export, custom fields included
(``occurred_at: Event_Date__c``). So every frame the adapter hands to the cleaner also
carries the source fields of the object its rows come from:

- **under the field's own header** (``Event_Date__c``, ``Lead Status``), exactly as in
  the file (matched ignoring case, as the cleaner matches headers);
- **as ``<Object>.<Field>``** (``CampaignMember.Event_Date__c``, ``Task.AccountId``,
  ``contacts.Lifecycle Stage``) when the column map asks for that form, and always for
  a field whose header is also the name of a derived column (the derived column keeps
  the bare name: ``Task.AccountId`` is the task's own field, ``AccountId`` the adapter's
  account rule).

A table fed by several objects (touchpoints from CampaignMember, Task and Event;
contacts from Contact and Lead) gets one more rule: when the column map names a field
that only some of the objects have, the rows of the other objects take the adapter's
own value for that canonical column (the column the shipped preset maps, e.g.
``OccurredAt``), or stay empty when the shipped preset maps none. So
``occurred_at: CampaignMember.Event_Date__c`` dates campaign members by the custom field
and tasks and events as before. A header that none of the table's files has is an
error that names the files and lists *their own* columns (not the adapter's), with the
closest matches.

Example
-------
>>> import pandas as pd
>>> derived = pd.DataFrame({"Id": ["m1"], "OccurredAt": ["2024-01-02"]})
>>> source = pd.DataFrame({"Id": ["m1"], "CreatedDate": ["2024-01-01"], "Event_Date__c": ["2024-01-02"]})
>>> list(pass_through(derived, source, "CampaignMember", wanted=["CampaignMember.CreatedDate"]).columns)
['Id', 'OccurredAt', 'CampaignMember.Id', 'CreatedDate', 'Event_Date__c', 'CampaignMember.CreatedDate']
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable, Mapping, Sequence

import pandas as pd

from ..io.errors import CleanError, shown, shown_list
from ..io.yaml import load_yaml

__all__ = ["find_header", "pass_through", "Part", "complete", "shipped_columns", "union_columns"]


def find_header(headers: Iterable, wanted: str | None) -> str | None:
    """The header ``wanted`` among ``headers``: exact, else the only one equal ignoring
    case and padding (the rule of :mod:`abmkit.clean.core`), else the only one equal also
    ignoring underscores (``event_date_c`` for ``Event_Date__c``)."""
    if not wanted:
        return None
    headers = [str(h) for h in headers]
    if wanted in headers:
        return wanted
    key = str(wanted).strip().casefold()
    hits = [h for h in headers if h.strip().casefold() == key]
    if not hits:  # a warehouse sync tool's snake case: Event_Date__c written as event_date_c
        key = key.replace("_", "")
        hits = [h for h in headers if h.strip().casefold().replace("_", "") == key]
    return hits[0] if len(hits) == 1 else None


def _split(header: str, objects: Iterable[str]) -> tuple[str, str] | None:
    """``("CampaignMember", "Event_Date__c")`` for ``CampaignMember.Event_Date__c`` when the
    prefix is one of ``objects`` (ignoring case), else None."""
    head, dot, rest = str(header).partition(".")
    if not dot or not rest:
        return None
    for obj in objects:
        if obj.casefold() == head.strip().casefold():
            return obj, rest
    return None


def pass_through(frame: pd.DataFrame, source: pd.DataFrame, obj: str, wanted: Iterable[str] = ()) -> pd.DataFrame:
    """``frame`` (the adapter's derived columns, row-aligned with ``source``) plus every
    column of ``source``: under its own header, or as ``<obj>.<header>`` when ``frame``
    already has a column of that name; plus the ``<obj>.<field>`` columns named in
    ``wanted`` (the headers the column map uses for this table)."""
    if len(frame) != len(source):  # pragma: no cover - an adapter bug
        raise AssertionError(f"pass_through({obj}): {len(frame)} rows vs {len(source)} source rows")
    taken = {str(c).strip().casefold() for c in frame.columns}
    add: dict[str, object] = {}
    for c in source.columns:
        name = str(c) if str(c).strip().casefold() not in taken else f"{obj}.{c}"
        if name.strip().casefold() in taken:
            continue
        taken.add(name.strip().casefold())
        add[name] = source[c].to_numpy(dtype=object)
    for h in wanted or ():
        split = _split(h, [obj]) if h else None
        if split is None or str(h).strip().casefold() in taken:
            continue
        hit = find_header(source.columns, split[1])
        if hit is not None:
            taken.add(str(h).strip().casefold())
            add[str(h)] = source[hit].to_numpy(dtype=object)
    if not add:
        return frame
    return pd.concat([frame, pd.DataFrame(add, index=frame.index)], axis=1)


def union_columns(frames: Sequence[pd.DataFrame]) -> list[pd.DataFrame]:
    """The frames with each other's columns added as empty strings (same column set)."""
    cols = list(dict.fromkeys(c for f in frames for c in f.columns))
    out = []
    for f in frames:
        missing = [c for c in cols if c not in f.columns]
        out.append(pd.concat([f, pd.DataFrame({c: "" for c in missing}, index=f.index)], axis=1)
                   if missing else f)
    return out


@lru_cache(maxsize=8)
def _shipped(preset: str) -> dict:
    from . import PRESETS_DIR
    path = PRESETS_DIR / f"{preset}.yaml"
    return (load_yaml(path, what="preset") or {}) if path.is_file() else {}


def shipped_columns(preset: str, table: str) -> dict:
    """``columns`` of ``table`` in the shipped preset (canonical column -> adapter column)."""
    tables = _shipped(preset).get("tables") or {}
    return dict(((tables.get(table) or {}).get("columns")) or {})


@dataclass
class Part:
    """One frame of a table and where its rows come from: the CRM object, the file read
    and that file's own headers (as exported)."""
    frame: pd.DataFrame
    obj: str
    file: str
    headers: list[str]
    derived: list[str] = field(default_factory=list)


def complete(table: str, parts: list[Part], column_map: Mapping, *, preset: str,
             objects: Sequence[str]) -> list[pd.DataFrame]:
    """The frames of ``table`` with every header the column map names for it present.

    A header some frames lack (a field of only some of the objects, or
    ``<Object>.<Field>`` of another object) is filled on those frames with the adapter's
    own column for that canonical column (the one the shipped preset maps), else empty.
    A header no frame has raises :class:`CleanError` naming the files and listing their
    own columns. ``objects`` are all the CRM objects that can feed ``table``: naming one
    whose file is not in the export is not an error (it has no rows)."""
    frames = [p.frame for p in parts]
    cols = (((column_map or {}).get("tables") or {}).get(table) or {}).get("columns") or {}
    if not parts or not cols:
        return frames
    defaults = shipped_columns(preset, table)
    present_objs = {p.obj for p in parts}
    for col, header in cols.items():
        if not header:
            continue
        have = [find_header(f.columns, header) is not None for f in frames]
        if all(have):
            continue
        split = _split(header, objects)
        if not any(have) and not (split is not None and split[0] not in present_objs):
            raise _missing(table, col, str(header), parts, column_map, preset)
        for i, f in enumerate(frames):
            if have[i]:
                continue
            hit = find_header(f.columns, defaults.get(col))
            values = f[hit].to_numpy(dtype=object) if hit is not None else ""
            frames[i] = f.assign(**{str(header): values})
    return frames


def _missing(table: str, col: str, header: str, parts: list[Part], column_map: Mapping, preset: str) -> CleanError:
    origin = str((column_map or {}).get("_origin") or "column map")
    files = ", ".join(p.file for p in parts)
    listing = "; ".join(f"{p.file}: {shown_list(p.headers, most=max(30, len(p.headers)))}" for p in parts)
    candidates = list(dict.fromkeys([h for p in parts for h in p.headers]
                                    + [f"{p.obj}.{h}" for p in parts for h in p.headers]))
    wanted_key = header.strip().casefold()
    close = difflib.get_close_matches(wanted_key, [c.casefold() for c in candidates], n=3, cutoff=0.75)
    by_key = {c.casefold(): c for c in candidates}
    suggestion = f" Did you mean {', '.join(shown(by_key[c]) for c in close)}?" if close else ""
    derived = list(dict.fromkeys(d for p in parts for d in p.derived))
    also = (f" Besides each file's own columns, the {preset} adapter provides {', '.join(derived)} (derived "
            f"columns) and `<Object>.<Field>` for any field of {', '.join(dict.fromkeys(p.obj for p in parts))}."
            if derived else "")
    where = "the file" if len(parts) == 1 else f"any of the files read for {table}"
    return CleanError(
        f"{files}: column {shown(header)} (mapped to {table}.{col} in the {origin}) is not in {where}. "
        f"Columns found (as exported): {listing}.{suggestion}{also} Fix `tables.{table}.columns.{col}` in the "
        "column map (a header exactly as in the file), or re-export with that field.")


def complete_frames(frames: Mapping, objs: Mapping, column_map: Mapping, *, preset: str,
                    object_table: Mapping, derived: Mapping) -> None:
    """Run :func:`complete` on every adapter frame, in place: every header the column map
    names must exist on the frame (else the error lists the export file's own columns).

    ``frames``: canonical table → list of frames (``.data``, ``.source_file``);
    ``objs``: CRM object → its export file (``.name``, ``.original``);
    ``object_table``: CRM object → canonical table; ``derived``: table → the adapter's
    own derived columns."""
    origin_of = {ef.name: (o, [str(h) for h in ef.original.columns]) for o, ef in objs.items()}
    for table, fs in frames.items():
        parts = [Part(f.data, origin_of[f.source_file][0], f.source_file, origin_of[f.source_file][1],
                      derived=derived.get(table, [])) for f in fs]
        done = complete(table, parts, column_map, preset=preset,
                        objects=[o for o, t in object_table.items() if t == table])
        for f, d in zip(fs, done):
            f.data = d
