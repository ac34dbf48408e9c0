"""Entry points: :func:`clean_exports` (folder of raw CSVs -> CleanResult) and
:func:`validate_export` (the CLI's pre-flight check)."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Mapping

import pandas as pd

from .. import schema
from .colmap import load_column_map
from .core import CleanResult, clean_frames
from ..io.csv import RawFrame, read_file
from ..io.paths import confine
from ..sources import FolderSource, Source, is_url, open_source
from .errors import CleanError

#: what each canonical column enables downstream: shown by validate_export when it is missing
COLUMN_USES: dict[tuple[str, str], str] = {
    ("accounts", "domain"): "lead-to-account mapping by email domain (02)",
    ("accounts", "extra_domains"): "domain mapping of secondary domains (02)",
    ("accounts", "parent_account_id"): "roll-up to parent accounts (02)",
    ("accounts", "industry"): "segmenting by industry (03, 05)",
    ("accounts", "employee_count"): "size bands and size-adjusted uplift (04)",
    ("accounts", "tier"): "segmenting by ABM tier (03, 05)",
    ("accounts", "is_target"): "the target-account population (without it every account is a target) (05)",
    ("accounts", "icp_fit"): "the ICP condition of the `qualified` stage (without it every account counts as a fit) (04)",
    ("contacts", "email"): "lead-to-account mapping by email domain (02)",
    ("contacts", "company_name"): "fuzzy company-name mapping (02)",
    ("contacts", "persona"): "persona coverage and the decision-maker MQA rule (MQAs then use the score rule) (02, 05)",
    ("contacts", "crm_account_id"): "exact CRM mapping of contacts to accounts (02)",
    ("contacts", "lead_status"): "the contact funnel beside the account funnel (04)",
    ("contacts", "mql_at"): "the contact funnel (MQL dates) (04)",
    ("touchpoints", "contact_id"): "contact-level journeys, breadth and persona coverage (02-04)",
    ("touchpoints", "account_id"): "account-level touches such as ad impressions (03)",
    ("touchpoints", "campaign_id"): "campaign influence / uplift per campaign (04)",
    ("campaigns", "cost"): "cost per account and ROI (05)",
    ("opportunities", "amount"): "pipeline and revenue credit, deal size (03, 05)",
    ("opportunities", "closed_at"): "closed-won milestones, velocity, win rate (03, 05)",
    ("opportunities", "is_won"): "closed-won milestones, win rate (03, 05)",
    ("opportunities", "opportunity_type"): "upsell / cross-sell rates (05)",
    ("revenue", "recurring_revenue"): "retention and NRR (05)",
}


def _files_for(raw_dir: Path, name: str, patterns: list[str], origin: str = "column map") -> list[Path]:
    """The files of table ``name``: each name/glob of ``tables.<name>.file``, relative to
    ``raw_dir`` (a parquet file of the same stem stands in for a missing CSV). A file (or
    glob match) whose real path leaves ``raw_dir`` (a symbolic link to /etc/passwd, a linked
    folder) is refused before it is read (abmkit.io.paths)."""
    src = FolderSource(raw_dir)
    return [raw_dir / n for n in src.match(patterns, table=name, origin=origin)]


def canonical_column_map(source) -> dict:
    """The column map of a source whose tables carry the canonical names and columns (a
    database written by another tool in abmkit's data model, data frames named like the
    tables): each canonical table found (``accounts``, ``touchpoints``, ... compared
    case-insensitively) is read as it is; columns named like the canonical ones are taken
    as they are (docs/data_model.md).

    Example
    -------
    >>> import pandas as pd
    >>> canonical_column_map({"Accounts": pd.DataFrame({"account_id": ["A"]})})["tables"]
    {'accounts': {'file': ['Accounts']}}
    """
    src = open_source(source)
    tables = {}
    for name in schema.TABLES:
        ref = src.find([name])
        if ref is not None:
            tables[name] = {"file": [ref.name]}
    if not tables:
        raise CleanError(f"{src.label}: no column map given and no table carries a canonical name "
                         f"({', '.join(schema.TABLES)}); tables found: {sorted(src.names())[:40]}. Pass "
                         "--column-map <yaml> or --preset <name>.")
    return {"version": 1, "tables": tables, "_origin": f"canonical tables of {src.label}"}


def read_frames(raw_dir, column_map) -> tuple[dict[str, list[RawFrame]], pd.DataFrame | None, pd.DataFrame]:
    """Read every table the column map names: ``(frames, pre_rejects, files)``.

    ``raw_dir`` is where the data lives: a folder of CSV/parquet exports, a database URL
    (``duckdb:///file.duckdb``, ``postgresql://user@host/db?schema=crm``), ``db:<name>``,
    a mapping ``{table name: DataFrame}`` or a :class:`abmkit.sources.Source`
    (:func:`abmkit.sources.open_source`). A map's table block names its data by ``file:``
    (in a database or a frame set, a file name's stem matches a table), ``table:`` or
    ``query:`` (one SELECT; databases only).

    With ``adapter: <name>`` in the column map, ``abmkit.adapters.<name>.read_frames``
    does the reading instead (and may return rows it already rejected).
    """
    source = open_source(raw_dir)
    cm = load_column_map(column_map)
    adapter = cm.get("adapter")
    if adapter:
        try:
            mod = importlib.import_module(f"abmkit.adapters.{adapter}")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("abmkit.adapters"):
                raise CleanError(f"column map names adapter '{adapter}', but abmkit.adapters.{adapter} does not "
                                 "exist. Remove `adapter:` or install a version of abmkit that ships it.") from None
            raise
        if not hasattr(mod, "read_frames"):
            raise CleanError(f"abmkit.adapters.{adapter} has no read_frames(raw_dir, column_map).")
        frames, pre = mod.read_frames(source.path if source.kind == "folder" else source, cm)
        files = pd.DataFrame([{"table": t, "source_file": f.source_file, "rows": len(f.data),
                               "encoding": f.encoding, "delimiter": f.delimiter}
                              for t, fs in frames.items() for f in fs])
        return frames, pre, files
    frames: dict[str, list[RawFrame]] = {}
    rows = []
    origin = str(cm.get("_origin") or "column map")
    for name, block in cm["tables"].items():
        if block.get("query"):
            got = [source.read_query(block["query"], table=name, block={**block, "_origin": origin})]
        else:
            wanted = [block["table"]] if block.get("table") else block["file"]
            got = [source.read(n, table=name, block=block)
                   for n in source.match(wanted, table=name, origin=origin)]
        for f in got:
            if source.kind != "folder":  # a table, not a file: no encoding or delimiter to report
                f.encoding, f.delimiter = source.kind, ""
            frames.setdefault(name, []).append(f)
            rows.append({"table": name, "source_file": f.source_file, "rows": len(f.data) + len(f.malformed),
                         "encoding": f.encoding, "delimiter": f.delimiter})
    return frames, None, pd.DataFrame(rows, columns=["table", "source_file", "rows", "encoding", "delimiter"])


def check_files(raw_dir: str | Path, column_map) -> None:
    """Cheap pre-flight of every file a column map names: the whole-file checks of
    :func:`abmkit.io.csv.read_file` (``header_only=True``: a forced encoding that does not
    fit, the header, the size limits, a value over ``max_field_bytes``) without parsing
    a record. Raises :class:`CleanError` (exit code 2 from the CLI) naming file, line and
    fix; a run that calls it before starting (the report) stops before any notebook.
    Adapter exports (``adapter:``) are left to the adapter."""
    if is_url(raw_dir) or isinstance(raw_dir, (Mapping, Source)):
        return  # tables, not files: nothing to pre-read
    raw_dir = Path(raw_dir)
    cm = load_column_map(column_map)
    if cm.get("adapter") or not raw_dir.is_dir():
        return
    for name, block in cm["tables"].items():
        if block.get("table") or block.get("query"):
            continue
        for path in _files_for(raw_dir, name, block["file"], str(cm.get("_origin") or "column map")):
            if path.suffix.lower() in (".parquet", ".pq"):
                continue
            read_file(path, encoding=block["encoding"], delimiter=block["delimiter"],
                      source_file=str(path.relative_to(raw_dir)), limits=block, header_only=True)


def clean_exports(raw_dir, column_map: str | Path | Mapping | None = None) -> CleanResult:
    """Clean a folder of raw CRM / marketing-automation exports.

    Parameters
    ----------
    raw_dir
        Where the exports are: a folder of CSV/parquet files, a database URL
        (``duckdb:///file.duckdb``, ``postgresql://user@host/db?schema=crm``; abmkit[sql]),
        ``db:<name>`` (a private named connection), ``{table name: DataFrame}`` or a
        :class:`abmkit.sources.Source` (docs/bring_your_own_export.md).
    column_map
        Column-map YAML path, dict, or preset name (docs/column_map.md). Without one, a
        folder's own ``column_map.yaml`` is used; a database or frame set whose tables carry
        the canonical names and columns needs none (:func:`canonical_column_map`).

    Returns
    -------
    CleanResult
        ``.dataset`` (canonical), ``.rejects`` (ledger), ``.summary`` (per-table
        quality DataFrame; ``print_summary()`` as text), ``.unmapped``, ``.repairs``, ``.merged``.

    Example
    -------
    >>> r = clean_exports("data/sample/raw", "data/sample/raw/column_map.yaml")   # doctest: +SKIP
    >>> r.to_frame()                                                            # doctest: +SKIP
    """
    source = open_source(raw_dir)
    try:
        cm = load_column_map(_resolve_map(source, None, column_map))
        frames, pre, files = read_frames(source, cm)
    finally:
        if source is not raw_dir:
            source.close()
    return clean_frames(frames, cm, pre_rejects=pre, files=files)


def _resolve_map(raw_dir, preset, column_map):
    if column_map is not None:
        return column_map
    if preset is not None:
        return preset
    if not isinstance(raw_dir, (Path, str)) or is_url(raw_dir):  # a database or frames: canonical names
        src = raw_dir.path if isinstance(raw_dir, FolderSource) else None
        if src is None:
            return canonical_column_map(raw_dir)
        raw_dir = src
    raw_dir = Path(raw_dir)
    default = raw_dir / "column_map.yaml"
    if default.is_file():  # picked up from the export folder: it must not be a link leading out of it
        return confine(default, raw_dir, origin="the column map found in the data folder")
    raise CleanError(f"no column map: pass --column-map <yaml> or --preset <name>, or put column_map.yaml "
                     f"in {raw_dir}.")


def check_inputs(raw_dir: str | Path, column_map) -> list[Path]:
    """Safety pre-flight of an export folder and its column map, before anything runs.

    Reads the column map with the bounded YAML reader (size, aliases, plain values only)
    and checks that every file it names (``tables.<t>.file`` names and glob matches, an
    adapter's export files and picklist tables) is really inside ``raw_dir``: no absolute
    path, no ``..``, no symbolic link leading out. Raises :class:`InputError` (a
    CleanError; exit code 2) naming the map, the key and the value; nothing is read from
    a refused file. Returns the data files found (a pattern matching nothing is left to
    the cleaner's own message, as is any other problem of the map).

    The report calls it before starting a notebook, so a hostile export folder fails
    the run at once with exit code 2.
    """
    from ..adapters import find_file, get_adapter, load_picklist
    from ..io.paths import check_file_pattern
    from ..io.yaml import load_yaml
    from .colmap import presets_dir

    if is_url(raw_dir) or isinstance(raw_dir, (Mapping, Source)):
        # tables of a database or data frames: no file to confine; the map is still read safely
        if isinstance(column_map, (str, Path)) and Path(column_map).is_file():
            load_yaml(Path(column_map), what="column map", hint="see docs/column_map.md")
        return []
    raw_dir = Path(raw_dir)
    if isinstance(column_map, Mapping):
        data, origin, source_dir = dict(column_map), str(column_map.get("_origin") or "column map (dict)"), None
    else:
        path = Path(column_map)
        if not path.is_file() and (presets_dir() / f"{column_map}.yaml").is_file() and len(path.parts) == 1:
            path, origin = presets_dir() / f"{column_map}.yaml", f"preset {column_map}"
            source_dir = None
        else:
            origin, source_dir = f"column map {path}", str(path.parent.resolve())
            default = raw_dir / "column_map.yaml"
            if default.is_file() and path.resolve() == default.resolve():  # the map the export folder holds
                confine(default, raw_dir, origin="the column map found in the data folder")
        data = load_yaml(path, what="column map", hint="see docs/column_map.md")
    if not isinstance(data, Mapping):
        return []
    found: list[Path] = []
    tables = data.get("tables")
    for name, block in (tables.items() if isinstance(tables, Mapping) else ()):
        files = block.get("file") if isinstance(block, Mapping) else None
        for pat in (files if isinstance(files, (list, tuple)) else [files] if files else []):
            pat = check_file_pattern(str(pat), origin=origin, key=f"tables.{name}.file")
            if any(ch in pat for ch in "*?["):
                hits = sorted(p for p in raw_dir.glob(pat) if p.is_file())
            else:
                hits = [raw_dir / pat] if (raw_dir / pat).is_file() else []
            found += [confine(h, raw_dir, origin=origin, key=f"tables.{name}.file", value=pat) for h in hits]
    adapter = data.get("adapter")
    if adapter:
        try:
            mod = get_adapter(str(adapter))
        except ValueError:
            return found  # the cleaner says which adapters exist
        for names in getattr(mod, "OBJECTS", {}).values():
            hit = find_file(raw_dir, names)  # refuses a link leading out of the folder
            if hit is not None:
                found.append(hit)
        cm = {**data, "_origin": origin, **({"_source_dir": source_dir} if source_dir else {})}
        for key, default_file in getattr(mod, "PICKLIST_FILES", {}).items():
            load_picklist(cm, key, default_file)  # refuses a table outside the map's folder
    return list(dict.fromkeys(found))


def validate_export(raw_dir, preset: str | None = None, column_map=None, out_dir=None, period=None) -> int:
    """Pre-flight check of a raw export folder (``python -m abmkit validate``).

    Prints the files found, rows per table, which canonical columns are filled
    from which source field, which are missing and what that disables, and the
    quality summary, then the data sanity checks of the cleaned data
    (:mod:`abmkit.clean.sanity`; with ``period``, a Period or a quarter like "2026Q3",
    also the period against the data's date range). Writes the cleaned dataset when
    ``out_dir`` is given. Returns 0 when the export can be cleaned, 2 on a fatal problem (message, no
    traceback).
    """
    try:
        source = open_source(raw_dir)
        raw_dir = source.path if isinstance(source, FolderSource) else source
        cm_arg = _resolve_map(source, preset, column_map)
        cm = load_column_map(cm_arg)
        if not isinstance(source, FolderSource):  # a database / frames: what it holds, in its own names
            print(f"Source: {source.label} ({source.kind})")
            print(f"Tables: {', '.join(source.display_name(n) for n in source.names()) or '(none)'}")
        frames, pre, files = read_frames(source, cm)
        print(f"Column map: {cm.get('_origin')}")
        print("\nFiles read:")
        print(files.to_string(index=False) if len(files) else "  (none)")
        result = clean_frames(frames, cm, pre_rejects=pre, files=files)
    except (CleanError, FileNotFoundError, schema.SchemaError) as exc:
        print(f"abmkit validate: error: {exc}", file=sys.stderr)
        return 2
    adapter = cm.get("adapter")
    describe = getattr(importlib.import_module(f"abmkit.adapters.{adapter}"), "describe", None) if adapter else None
    if describe is not None:  # the adapter knows which CRM objects and fields feed each column
        desc = describe(raw_dir, cm)
        fmt = getattr(importlib.import_module("abmkit.adapters"), "format_description", None)
        if fmt is not None:
            print("\n" + fmt(desc))
        else:
            print("\nCanonical columns and their source fields:")
            with pd.option_context("display.max_rows", 500, "display.max_colwidth", 120, "display.width", 250):
                print(desc.to_string(index=False))
    print("\nCanonical columns:")
    src = result.sources
    lines = []
    for name, spec in schema.TABLES.items():
        if name not in frames:
            if name not in schema.OPTIONAL_TABLES:
                lines.append(f"  {name}: table not in the column map -> an empty table; analyses needing it "
                             "are n/a (docs/troubleshooting.md §8)")
            continue
        mapped = dict(src[src["table"] == name][["column", "source_header"]].values.tolist())
        for col in spec.names:
            label = f"{name}.{col}"
            if col in mapped:
                lines.append(f"  {label:<34} <- {mapped[col]}")
            elif name == "contacts" and col == "email_domain" and "email" in mapped:
                lines.append(f"  {label:<34} <- derived from {mapped['email']}")
            else:
                use = COLUMN_USES.get((name, col))
                lines.append(f"  {label:<34}    MISSING" + (f" -> affects {use}" if use else ""))
    print("\n".join(lines))
    print()
    result.print_summary()
    print()
    sanity = result.sanity_checks(period)
    sanity.print_summary()
    if out_dir is not None:
        path = result.save(out_dir)
        print(f"\nCleaned dataset written to {path}")
    # the export cleans (exit 0), but a critical check means the report built on it would
    # mislead (e.g. most rows rejected, dates all one load stamp): say so last, in one line
    critical = sanity.critical
    if len(critical):
        print(f"\n{len(critical)} critical data check(s): fix the export or the column map before "
              "trusting the report (docs/troubleshooting.md §7).")
    return 0
