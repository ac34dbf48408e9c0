"""Unmapped labels: one table for every source label that no map translated.

A label reaches the canonical taxonomy (channel, touch type, persona, lead status,
opportunity type) through one of two kinds of map:

- the **column map's label maps** (``channel_map``, ``touch_type_map``, ``persona_map``,
  ``lead_status_map``, ``opportunity_type_map``), then the shipped defaults
  (``abmkit/presets/channel_map.yaml``): used by :mod:`abmkit.clean.core` for every
  column the column map maps to a raw header;
- a **preset's picklist tables** (``salesforce_campaign_type.yaml``,
  ``hubspot_lifecycle_stage.yaml``, ...): used by the CRM adapters
  (:mod:`abmkit.adapters`) before the column map is applied. For those columns the
  column map's label maps change nothing (the adapter hands over canonical values).

:attr:`abmkit.clean.CleanResult.unmapped` lists the labels of both kinds, one row per
(table, column, label, outcome), with :data:`UNMAPPED_COLUMNS`:

``table, column``
    the canonical column the label was meant for;
``label, rows``
    the source label and the rows it affected. For ``outcome == "rejected"`` the rows
    are exactly the ledger rows rejected because of this label (``unmapped_channel``,
    ``unmapped_touch_type``; a row already rejected for an earlier reason is not counted
    again), so the counts add up to the rejects-by-reason table;
``outcome``
    ``rejected`` (the row is in the rejects ledger), ``blanked`` (the row is kept with
    the value empty), ``ignored`` (one label of a multi-valued field was skipped) or
    ``kept: <rule>`` (a documented fallback gave the value);
``source``
    where the label came from (``Campaign.Type``, or the header the column map names);
``file, key``
    the exact file to edit and the key in it (``(top level)`` for a flat table);
``advice``
    the fix as one sentence: "add `<label>: <canonical>` under `<key>` in `<file>`".

Example
-------
>>> advice("Podcast", "channel", "my_map.yaml", "channel_map")
'add `Podcast: <channel>` under `channel_map` in my_map.yaml'
>>> advice("Other", "channel", "abmkit/presets/salesforce_campaign_type.yaml", "")
'add `Other: <channel>` at the top level of abmkit/presets/salesforce_campaign_type.yaml'
>>> yaml_key("Closed: Won"), yaml_key("Yes"), yaml_key("Trade Show")
('"Closed: Won"', '"Yes"', 'Trade Show')
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from ..schema import CHANNELS, LEAD_STATUSES, OPPORTUNITY_TYPES, PERSONAS, TOUCH_TYPES
from .colmap import LABEL_MAPS

UNMAPPED_COLUMNS = ["table", "column", "label", "rows", "outcome", "source", "file", "key", "advice"]
#: label-map key of the column map for each canonical column (channel -> channel_map, ...)
KEY_OF_COLUMN = {col: key for key, (col, _) in LABEL_MAPS.items()}
#: allowed values per kind of canonical value (short ones are spelled out in the advice)
VOCABULARY: dict[str, tuple[str, ...]] = {
    "channel": CHANNELS, "touch_type": TOUCH_TYPES, "persona": PERSONAS, "lead_status": LEAD_STATUSES,
    "opportunity_type": OPPORTUNITY_TYPES, "deal_outcome": ("open", "won", "lost"),
    "activity": ("call", "meeting"),
}
_PRESETS_DIR = Path(__file__).resolve().parent.parent / "presets"
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _\-./()+]*")
_YAML_SPECIAL = {"yes", "no", "y", "n", "on", "off", "true", "false", "null", "~"}


def yaml_key(label: str) -> str:
    """``label`` as a YAML mapping key: as written when plain, else double-quoted
    (colons, quotes, leading/trailing spaces, words YAML reads as booleans or null)."""
    text = str(label)
    if _PLAIN.fullmatch(text) and text == text.strip() and text.lower() not in _YAML_SPECIAL:
        return text
    return json.dumps(text, ensure_ascii=False)


def placeholder(canonical: str) -> str:
    """``<channel>`` for a long vocabulary, ``<inquiry|mql|sql|disqualified>`` for a short one."""
    values = VOCABULARY.get(canonical, ())
    return f"<{'|'.join(values)}>" if 0 < len(values) <= 4 else f"<{canonical}>"


def shown_file(path) -> str:
    """A file for a message: shipped files as ``abmkit/presets/<name>``, others as given."""
    if path is None:
        return "the column map"
    p = Path(str(path))
    try:
        if p.is_absolute() and p.resolve().parent == _PRESETS_DIR:
            return f"abmkit/presets/{p.name}"
    except OSError:  # pragma: no cover - an unreadable path is shown as given
        pass
    return str(path)


def is_shipped(path) -> bool:
    return path is not None and shown_file(path).startswith("abmkit/presets/")


def column_map_file(column_map: Mapping | None) -> str | None:
    """The file of a loaded column map (from its ``_origin``), None for a dict."""
    origin = str((column_map or {}).get("_origin") or "")
    if origin.startswith("column map ") and not origin.endswith("(dict)"):
        return origin[len("column map "):]
    m = re.match(r"preset (\S+) \((.*)\)$", origin)
    if m:
        return m.group(2)
    return None


def table_file(table, default: str) -> str:
    """How a reject reason names a picklist table: the file name of the table read (the
    shipped one or the user's copy), or the column map's key for an inline table."""
    if getattr(table, "inline", False):
        return f"the column map's picklists.{table.name}"
    file = getattr(table, "file", None)
    return Path(file).name if file else default


def advice(label: str, canonical: str, file: str, key: str, *, mapped_to_null: bool = False,
           field: str | None = None) -> str:
    """The fix for one unmapped label, as one sentence.

    ``key`` is the key of the table inside ``file`` (``""`` for a flat table such as
    ``salesforce_campaign_type.yaml``). ``mapped_to_null``: the label is listed with
    ``null`` (known, no value) but the row needs a value. ``field``: when the label is
    empty, the source field to fill in the CRM."""
    if label in ("", "(empty)") and field:
        return f"fill {field} in the CRM: an empty value cannot be mapped"
    where = f"under `{key}` in {file}" if key else f"at the top level of {file}"
    if mapped_to_null:
        return f"`{yaml_key(label)}` is mapped to null {where}: map it to {placeholder(canonical)} instead"
    return f"add `{yaml_key(label)}: {placeholder(canonical)}` {where}"


def _copy_hint(what: str) -> str:
    return (f" (or in a copy of it: `picklists: {{{what}: <copy>}}` in your copy of the preset)" if what else
            " (in your copy of the preset, passed with --column-map)")


def picklist_rows(table: str, column: str, labels: pd.Series, mask, outcome: str, *, source: str,
                  picklist: Mapping, key: str = "", canonical: str | None = None,
                  column_map: Mapping | None = None) -> pd.DataFrame:
    """Unmapped-label rows (:data:`UNMAPPED_COLUMNS`) for labels an adapter's picklist
    table did not translate: one row per distinct label among ``labels[mask]`` (empty
    labels as ``(empty)``), with its count.

    ``picklist`` is the table as :func:`abmkit.adapters.load_picklist` returned it (it
    knows its ``file``, its ``name`` and whether it was written inline in the column
    map); ``key`` is the key inside it (``status`` of the campaign-member table,
    ``task.type`` of the activity table, ``""`` for a flat table)."""
    mask = np.asarray(pd.Series(mask, copy=False).fillna(False), dtype=bool)  # positional (labels may repeat an index)
    if not mask.any():
        return pd.DataFrame(columns=UNMAPPED_COLUMNS)
    picked = pd.Series(labels, copy=False)[mask]
    values = picked.astype(object).where(picked.notna(), "(empty)").astype(str)
    counts = values.value_counts(sort=True)
    canonical = canonical or column
    name = getattr(picklist, "name", "") or ""
    sub = picklist  # the sub-table the labels were looked up in (for labels listed as null)
    for part in [p for p in key.split(".") if p]:
        sub = sub.get(part) if isinstance(sub, Mapping) else None
    nulls = _null_keys(sub if isinstance(sub, Mapping) else {})
    if getattr(picklist, "inline", False):  # written inside the column map: `picklists: {name: {...}}`
        file = shown_file(column_map_file(column_map))
        key = ".".join(k for k in ("picklists", name, key) if k)
        hint = ""
    else:
        file = shown_file(getattr(picklist, "file", None) or f"abmkit/presets/{name}")
        hint = _copy_hint(name) if is_shipped(getattr(picklist, "file", None)) else ""
    rows = []
    for label, n in counts.items():
        text = advice(label, canonical, file, key, mapped_to_null=_norm(label) in nulls, field=source)
        if label != "(empty)":
            text += hint
        rows.append({"table": table, "column": column, "label": label, "rows": int(n), "outcome": outcome,
                     "source": source, "file": file, "key": key or "(top level)", "advice": text})
    return pd.DataFrame(rows, columns=UNMAPPED_COLUMNS)


def _norm(label) -> str:
    return re.sub(r"[\s_\-./&]+", " ", str(label).casefold()).strip()


def _null_keys(table: Mapping) -> set[str]:
    return {_norm(k) for k, v in table.items() if v is None and not isinstance(v, Mapping)}


def finish(core_rows: Iterable[pd.DataFrame], adapter_rows, column_map: Mapping | None) -> pd.DataFrame:
    """The :attr:`CleanResult.unmapped` table: the cleaner's own rows (labels the column
    map's label maps do not know) with their file, key and advice added, plus the rows an
    adapter reported (its picklist tables), sorted by rows (most first)."""
    parts = []
    core = [p for p in core_rows if len(p)]
    if core:
        df = pd.concat(core, ignore_index=True)
        if "outcome" not in df:
            df["outcome"] = None
        if "source" not in df:
            df["source"] = None
        file_path = column_map_file(column_map)
        file = shown_file(file_path)
        hint = _copy_hint("") if is_shipped(file_path) else ""
        user_maps = {k: {_norm(lbl) for lbl, v in ((column_map or {}).get(k) or {}).items() if v is None}
                     for k in LABEL_MAPS}
        keys = df["column"].map(KEY_OF_COLUMN).fillna("channel_map")
        df["file"] = file
        df["key"] = keys
        df["advice"] = [advice(lbl, col if col in VOCABULARY else "channel", file, k,
                               mapped_to_null=_norm(lbl) in user_maps.get(k, set())) + hint
                        for lbl, col, k in zip(df["label"], df["column"], keys)]
        parts.append(df[UNMAPPED_COLUMNS])
    if adapter_rows is not None:
        extra = pd.DataFrame(list(adapter_rows) if not isinstance(adapter_rows, pd.DataFrame) else adapter_rows)
        if len(extra):
            for c in UNMAPPED_COLUMNS:
                if c not in extra:
                    extra[c] = None
            parts.append(extra[UNMAPPED_COLUMNS])
    if not parts:
        return pd.DataFrame(columns=UNMAPPED_COLUMNS)
    out = pd.concat(parts, ignore_index=True)
    out["rows"] = out["rows"].astype("int64")
    return out.sort_values("rows", ascending=False, kind="stable").reset_index(drop=True)


#: key of ``pre_rejects.attrs`` under which an adapter hands its unmapped-label rows to the cleaner
ATTRS_KEY = "unmapped"


def attach(pre_rejects: pd.DataFrame, rows: pd.DataFrame | None) -> pd.DataFrame:
    """Hand an adapter's unmapped-label rows to :func:`abmkit.clean.clean_frames` with its
    ledger: stored as plain records in ``pre_rejects.attrs["unmapped"]`` (plain values, so
    pandas can compare and copy them)."""
    records = [] if rows is None or not len(rows) else [
        {k: (None if pd.isna(v) else (int(v) if k == "rows" else str(v))) for k, v in r.items()}
        for r in rows[UNMAPPED_COLUMNS].to_dict("records")]
    pre_rejects.attrs[ATTRS_KEY] = records
    return pre_rejects


def attached(pre_rejects: pd.DataFrame | None) -> list[dict]:
    """The unmapped-label rows an adapter attached to its ledger (see :func:`attach`)."""
    if pre_rejects is None:
        return []
    return list(pre_rejects.attrs.get(ATTRS_KEY) or [])
