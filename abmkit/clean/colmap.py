"""Column maps (docs/column_map.md): loading, checking, and the label tables.

A column map arrives as a path to a YAML file, a dict, or a preset name
(``abmkit/presets/<name>.yaml``). :func:`load_column_map` returns a checked,
normalised dict; :class:`LabelMap` looks source labels up case-, space- and
punctuation-insensitively, first in the user's map and then in the shipped
defaults (``abmkit/presets/channel_map.yaml``).

Example
-------
>>> cm = load_column_map({"tables": {"accounts": {"file": "a.csv",
...                        "columns": {"account_id": "Id", "account_name": "Name"}}}})
>>> cm["tables"]["accounts"]["timezone"]
'UTC'
>>> LabelMap({"LinkedIn Ads": "paid_social"}, {}, allowed=("paid_social",)).lookup("linkedin  ADS")
'paid_social'
"""
from __future__ import annotations

import copy
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from ..io.csv import LIMITS, check_limits
from ..io.paths import check_file_pattern
from ..io.yaml import load_yaml
from ..schema import CHANNELS, LEAD_STATUSES, OPPORTUNITY_TYPES, PERSONAS, TABLES, TOUCH_TYPES
from ..io.errors import InputError
from .errors import CleanError

DEFAULTS: dict[str, Any] = {
    "encoding": "auto", "delimiter": "auto", "timezone": "UTC", "dayfirst": False, "decimal": ".",
    **LIMITS,  # the reader's size limits (abmkit.io.csv.LIMITS: max_field_bytes, max_record_lines, ...)
}
ENCODINGS = ("auto", "utf-8", "utf-8-sig", "latin-1", "cp1252", "utf-16")
#: label maps of the column map: (key, canonical column it applies to, allowed values)
LABEL_MAPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "channel_map": ("channel", CHANNELS),
    "touch_type_map": ("touch_type", TOUCH_TYPES),
    "persona_map": ("persona", PERSONAS),
    "lead_status_map": ("lead_status", LEAD_STATUSES),
    "opportunity_type_map": ("opportunity_type", OPPORTUNITY_TYPES),
}

_KEY_JUNK = re.compile(r"[\s_\-./&]+")


def label_key(label: str) -> str:
    """Normalised lookup key of a source label: case-folded, runs of spaces and
    ``_ - . / &`` collapsed to one space ("Paid_Social" == "paid social")."""
    return _KEY_JUNK.sub(" ", str(label).casefold()).strip()


class LabelMap:
    """Source label -> canonical value, user map first, then shipped defaults.

    Canonical values themselves always map to themselves. Unknown labels give
    None: they are reported, never guessed.
    """

    def __init__(self, user: Mapping | None, defaults: Mapping | None, allowed: tuple[str, ...]):
        self.allowed = tuple(allowed)
        table = {label_key(a): a for a in allowed}
        for source in (defaults or {}), (user or {}):  # user entries override defaults
            for k, v in source.items():
                table[label_key(k)] = None if v is None else str(v)
        self._table = table

    def lookup(self, label: str) -> str | None:
        return self._table.get(label_key(label))


def presets_dir() -> Path:
    return Path(str(resources.files("abmkit.presets")))


def available_presets() -> list[str]:
    """Names of the shipped column maps (YAML files in abmkit/presets with a ``tables:`` key)."""
    names = []
    for p in sorted(presets_dir().glob("*.yaml")):
        try:
            if "tables" in (load_yaml(p, what="preset") or {}):
                names.append(p.stem)
        except (InputError, AttributeError, TypeError):
            continue
    return names


@lru_cache(maxsize=1)
def shipped_label_defaults() -> dict[str, dict]:
    """The shipped default label tables (channel_map, touch_type_map, persona_map,
    lead_status_map, opportunity_type_map) from ``abmkit/presets/channel_map.yaml``."""
    data = load_yaml(presets_dir() / "channel_map.yaml", what="shipped label tables") or {}
    return {k: dict(data.get(k) or {}) for k in LABEL_MAPS}


def _read_yaml(path: Path) -> dict:
    # bounded, plain values only (abmkit.io.yaml): InputError naming the file and the key
    data = load_yaml(path, what="column map", hint="see docs/column_map.md")
    if not isinstance(data, dict):
        raise CleanError(f"column map {path} must be a YAML mapping with a `tables:` key "
                         "(see docs/column_map.md).")
    return data


def load_column_map(column_map: str | Path | Mapping) -> dict:
    """Read and check a column map; returns a new dict.

    Parameters
    ----------
    column_map
        Path to a YAML file, a dict of the same structure, or a preset name
        (``salesforce`` resolves to ``abmkit/presets/salesforce.yaml``).

    Every table block gets the ``defaults`` filled in (encoding, delimiter,
    timezone, dayfirst, decimal), ``columns`` and ``values`` as dicts, and
    ``file`` as a list of names/globs. Raises :class:`CleanError` with the fix
    when the map is malformed.
    """
    if isinstance(column_map, Mapping):
        # a map loaded before (clean_exports hands it on to read_frames) keeps where it came from
        data = copy.deepcopy(dict(column_map))
        origin = str(data.get("_origin") or "column map (dict)")
    else:
        path = Path(column_map)
        if path.is_file():
            data, origin = _read_yaml(path), f"column map {path}"
            # relative paths inside the map (e.g. `picklists:`) resolve against its own folder
            data["_source_dir"] = str(path.parent.resolve())
        elif path.suffix in (".yaml", ".yml") or len(path.parts) > 1:
            raise CleanError(f"column map {path} does not exist. Give the path to a column-map YAML "
                             f"or a preset name ({', '.join(available_presets()) or 'none shipped'}).")
        else:
            preset = presets_dir() / f"{column_map}.yaml"
            if not preset.is_file() or str(column_map) not in available_presets():
                raise CleanError(f"unknown preset '{column_map}'. Shipped presets: "
                                 f"{', '.join(available_presets()) or 'none'}; or pass a column-map YAML path.")
            data, origin = _read_yaml(preset), f"preset {column_map} ({preset})"
    tables = data.get("tables")
    if not isinstance(tables, Mapping) or not tables:
        raise CleanError(f"{origin}: needs a `tables:` mapping with at least one of "
                         f"{', '.join(TABLES)} (see docs/column_map.md).")
    unknown = [t for t in tables if t not in TABLES]
    if unknown:
        raise CleanError(f"{origin}: unknown table(s) {unknown}; canonical tables are {list(TABLES)}.")
    defaults = {**DEFAULTS, **(data.get("defaults") or {})}
    out_tables = {}
    for name, block in tables.items():
        if not isinstance(block, Mapping):
            raise CleanError(f"{origin}: table '{name}' must be a mapping with `file:` and `columns:`.")
        block = {**defaults, **dict(block)}
        files = block.get("file")
        for key in ("table", "query"):  # a database table / one SELECT (abmkit.sources)
            if block.get(key) is not None and (not isinstance(block[key], str) or not block[key].strip()):
                raise CleanError(f"{origin}: `tables.{name}.{key}` must be a non-empty text.")
        if not files and not block.get("table") and not block.get("query"):
            raise CleanError(f"{origin}: table '{name}' has no `file:` (the export file name or glob; in a "
                             "database `table:` or `query:`).")
        # names/globs relative to the data folder: no absolute path, no `..` (abmkit.io.paths)
        block["file"] = [check_file_pattern(str(f), origin=origin, key=f"tables.{name}.file")
                         for f in (files if isinstance(files, (list, tuple)) else [files] if files else [])]
        cols = dict(block.get("columns") or {})
        spec = TABLES[name]
        bad = [c for c in cols if c not in spec.names]
        if bad:
            raise CleanError(f"{origin}: table '{name}' maps unknown canonical column(s) {bad}; "
                             f"canonical columns of {name} are {spec.names}.")
        block["columns"] = {c: (None if v is None else str(v)) for c, v in cols.items()}
        block["values"] = {c: dict(v or {}) for c, v in (block.get("values") or {}).items()}
        if str(block["encoding"]).lower() not in ENCODINGS:
            raise CleanError(f"{origin}: table '{name}' encoding '{block['encoding']}' not supported; "
                             f"use one of {ENCODINGS}.")
        if str(block["decimal"]) not in (".", ","):
            raise CleanError(f"{origin}: table '{name}' decimal must be '.' or ','.")
        block.update(check_limits(block, f"{origin}: table '{name}'"))  # sizes like "64 MiB" -> bytes
        try:
            import zoneinfo
            zoneinfo.ZoneInfo(str(block["timezone"]))
        except Exception:
            raise CleanError(f"{origin}: table '{name}' timezone '{block['timezone']}' is not an IANA "
                             "zone name (e.g. UTC, Europe/Berlin, America/New_York).") from None
        block["dayfirst"] = bool(block["dayfirst"])
        out_tables[name] = block
    for key, (_, allowed) in LABEL_MAPS.items():
        m = data.get(key) or {}
        if not isinstance(m, Mapping):
            raise CleanError(f"{origin}: `{key}` must be a mapping source label -> canonical value.")
        wrong = {k: v for k, v in m.items() if v is not None and str(v) not in allowed}
        if wrong:
            raise CleanError(f"{origin}: `{key}` maps to unknown value(s) {wrong}; allowed: {list(allowed)}.")
        data[key] = {str(k): v for k, v in m.items()}
    data["tables"] = out_tables
    data["_origin"] = origin
    return data


def label_maps(column_map: Mapping) -> dict[str, LabelMap]:
    """canonical column name -> :class:`LabelMap` for the taxonomy columns."""
    shipped = shipped_label_defaults()
    return {col: LabelMap(column_map.get(key), shipped.get(key), allowed)
            for key, (col, allowed) in LABEL_MAPS.items()}
