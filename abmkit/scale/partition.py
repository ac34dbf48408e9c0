"""Partitioning by account and the Arrow/parquet I/O of partitioned folders.

A partitioned folder holds *whole accounts* per partition (all their touches,
contacts, opportunities, revenue); campaigns are small and shared. It is written
once by :func:`partition_by_account` (touches read in batches, never whole), then
opened as a :class:`PartitionedDataset`: the handle the kit's analyses receive to
run partition by partition (see :mod:`abmkit.engine`).
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..schema import TABLES, Dataset, coerce_table, empty_table
from ..timeutil import NS_INF, to_ns_or_inf
from .runtime import _gather, _require_scale, _share, _submit

MANIFEST = "abmkit_partitions.json"
#: what a partitioned handle does when an analysis without a partitioned kernel needs
#: the whole data in memory (:meth:`PartitionedDataset.in_memory`): "warn" loads it and
#: warns naming the analysis; "error" raises :class:`InMemoryError` instead
IN_MEMORY_MODES = ("warn", "error")
#: environment variable giving the mode when ``open_dataset(..., in_memory=None)``
#: (e.g. ``ABMKIT_IN_MEMORY=error abmkit report --engine dask``: fail rather than
#: load everything on big data)
IN_MEMORY_ENV = "ABMKIT_IN_MEMORY"
#: tables split by account; campaigns are small and go to every partition whole
_ACCOUNT_TABLES = ("accounts", "contacts", "opportunities", "revenue")
_FORMAT = 2
#: folder of one file per account table: each source row's partition (to restore the row order)
_ROW_ORDER = "row_order"


# --------------------------------------------------------------------------- partitioning
def partition_of(account_ids, npartitions: int) -> np.ndarray:
    """Partition number of every account id: a fixed-key hash of the id's UTF-8 bytes
    (:func:`abmkit.hashing.string_hash`, identical in every process and run, unlike
    Python's ``hash``) modulo ``npartitions``.

    Example
    -------
    >>> partition_of(["a1", "a2", "a1"], 4).tolist() == partition_of(["a1", "a2", "a1"], 4).tolist()
    True
    """
    ids = np.asarray(account_ids, dtype=object)
    if not len(ids):
        return np.array([], np.int64)
    return _hash_partitions(ids.astype(str).astype(object), npartitions)


def _hash_partitions(ids, npartitions: int) -> np.ndarray:
    """:func:`partition_of` of string ids already in Arrow or numpy form (no detour
    through Python strings for Arrow input)."""
    from ..hashing import string_hash
    return (string_hash(ids) % np.uint64(npartitions)).astype(np.int64)


class InMemoryWarning(UserWarning):
    """An analysis without a partitioned kernel loads the whole data into the driver
    (:meth:`PartitionedDataset.in_memory`); the message names it."""


class InMemoryError(RuntimeError):
    """Raised instead of :class:`InMemoryWarning` when the handle's ``in_memory`` mode
    is ``"error"`` (``open_dataset(..., in_memory="error")`` or ``ABMKIT_IN_MEMORY=error``)."""


def in_memory_mode(value=None) -> str:
    """The in-memory mode: ``value`` when given, else the environment variable
    ``ABMKIT_IN_MEMORY``, else ``"warn"``; checked against :data:`IN_MEMORY_MODES`.

    >>> in_memory_mode("error")
    'error'
    """
    import os
    mode = value if value is not None else (os.environ.get(IN_MEMORY_ENV) or "warn")
    mode = str(mode).strip().lower()
    if mode not in IN_MEMORY_MODES:
        src = "in_memory" if value is not None else IN_MEMORY_ENV
        raise ValueError(f"{src} must be one of {IN_MEMORY_MODES}, not {mode!r}")
    return mode


#: modules whose frames are plumbing, not the analysis that asked for the whole data
_PLUMBING = ("abmkit.prepared", "abmkit.scale.partition", "abmkit.scale.kernels", "abmkit.engine")


def _trigger(what: str | None) -> str:
    """Who asks for the whole data: ``what`` (e.g. ``data.summary``), the innermost
    function of the kit on the call stack that asked and the outermost one (the public
    analysis the notebook called), plumbing modules left out."""
    import sys
    kit = []   # the kit's functions on the stack, innermost first
    f = sys._getframe(2)
    while f is not None:
        mod = f.f_globals.get("__name__", "")
        if (mod == "abmkit" or mod.startswith("abmkit.")) and mod not in _PLUMBING:
            kit.append(f"{mod}.{f.f_code.co_qualname}")
        f = f.f_back
    where = "" if not kit else kit[0] if len(kit) == 1 else f"{kit[0]} (from {kit[-1]})"
    if what is None:
        return where or "an analysis without a partitioned kernel"
    return f"{what} in {where}" if where else what


@dataclass
class PartitionedDataset:
    """A dataset split into partitions of whole accounts (written by
    :func:`partition_by_account`: ``root/<table>/part-NNNNN``), and the handle the
    kit's analyses take instead of an in-memory
    :class:`~abmkit.prepared.ResolvedDataset`: ``compare_models(parts, ...)``,
    ``stage_history(parts)``, ``campaign_influence(parts, ...)``, ``kpi_table(parts,
    ...)`` then run partition by partition on the active Dask client
    (:mod:`abmkit.engine`). Open one with :func:`abmkit.open_dataset` (``engine="dask"``).

    Attributes
    ----------
    root : Path
    npartitions : int
    manifest : dict
        row counts in and out, unattributable touches, data span.
    options : dict
        what the resolved dataset fixed besides the mapping (which partitioning
        applied): ``mqa_dates``, ``mqa_rule``, ``data_dir`` (the canonical folder, for
        analyses without a partitioned kernel), ``progress``, ``in_memory`` ("warn"
        or "error": what :meth:`in_memory` does; default: ``ABMKIT_IN_MEMORY``, else
        "warn"); empty for a bare folder.
    """
    #: what :func:`abmkit.engine.is_partitioned` looks for (no import of this module needed)
    _abmkit_partitioned = True
    root: Path
    npartitions: int
    manifest: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict, repr=False, compare=False)
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def open(cls, root) -> "PartitionedDataset":
        root = Path(root)
        path = root / MANIFEST
        if not path.exists():
            raise FileNotFoundError(f"{root} is not a partitioned dataset ({MANIFEST} missing); write one with "
                                    "abmkit.scale.partition_by_account(source, npartitions, out_dir)")
        manifest = json.loads(path.read_text("utf-8"))
        return cls(root, int(manifest["npartitions"]), manifest)

    def __len__(self) -> int:
        return self.npartitions

    def __getstate__(self):
        # what tasks get (``dask.delayed(parts.load)``): the folder, not the driver's caches
        return {**self.__dict__, "options": {}, "_cache": {}}

    def _read(self, table: str, i: int) -> pd.DataFrame:
        folder = self.root / table / f"part-{i:05d}"
        files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
        if not files:
            return empty_table(table)
        import pyarrow as pa
        import pyarrow.parquet as pq
        # one Arrow table, one conversion: concatenating pandas frames costs a block copy
        df = pa.concat_tables([pq.read_table(f) for f in files], promote_options="default").to_pandas() \
            if len(files) > 1 else pd.read_parquet(files[0])
        return _canonical(df, table, trusted=True)

    def load(self, i: int) -> tuple[Dataset, pd.DataFrame]:
        """Partition ``i``: its Dataset (campaigns whole) and its contact → account mapping."""
        ds = Dataset(**{t: self._read(t, i) for t in ("touchpoints",) + _ACCOUNT_TABLES},
                     campaigns=_canonical(pd.read_parquet(self.root / "campaigns.parquet"), "campaigns",
                                          trusted=True))
        ca_path = self.root / "contact_accounts" / f"part-{i:05d}"
        if not ca_path.exists():  # folders written before format 2 kept one file per partition
            ca_path = ca_path.with_suffix(".parquet")
        ca = pd.read_parquet(ca_path) if ca_path.exists() else pd.DataFrame(columns=["contact_id", "account_id"])
        return ds, ca

    def unattributable(self) -> pd.DataFrame:
        """Touches without any account (kept aside, counted in the manifest)."""
        files = sorted((self.root / "unattributable").glob("touches-*.parquet"))
        if not files:
            return empty_table("touchpoints")
        import pyarrow as pa
        import pyarrow.parquet as pq
        # Arrow promotes a column that is all-null (type null) in one file to the others' type
        return pa.concat_tables([pq.read_table(f) for f in files], promote_options="default").to_pandas()

    def account_tables(self) -> Dataset:
        """Every table but the touchpoints, gathered in the source's row order (as
        :func:`abmkit.load` reads them): the account-sized part of the data, for the
        steps that need it whole."""
        tables = {t: pd.concat([self._read(t, i) for i in range(self.npartitions)], ignore_index=True)
                  for t in _ACCOUNT_TABLES}
        unmapped = self.unmapped_contacts()
        if len(unmapped):  # contacts of no account live aside; the contact funnel counts them too
            tables["contacts"] = pd.concat([tables["contacts"], _canonical(unmapped, "contacts", trusted=True)],
                                           ignore_index=True)
        for t, df in tables.items():  # back in the source's row order (rows of a partition keep it)
            f = self.root / _ROW_ORDER / f"{t}.parquet"
            key = pd.read_parquet(f)["part"].to_numpy() if f.exists() else None
            if key is not None and len(key) == len(df):
                tables[t] = df.iloc[np.argsort(np.argsort(key, kind="stable"))].reset_index(drop=True)
        order = self.root / "account_order.parquet"
        if not (self.root / _ROW_ORDER).exists() and order.exists() and len(tables["accounts"]):
            ids = pd.read_parquet(order)["account_id"]
            acc = tables["accounts"].set_index("account_id", drop=False)
            tables["accounts"] = acc.loc[ids[ids.isin(acc.index)]].reset_index(drop=True)
        return Dataset(campaigns=self.campaigns, **tables)

    @property
    def campaigns(self) -> pd.DataFrame:
        """The campaigns table (small; every partition shares it)."""
        return _canonical(pd.read_parquet(self.root / "campaigns.parquet"), "campaigns", trusted=True)

    # the account-sized tables, as a ResolvedDataset names them (read once, on the driver)
    def _tables(self) -> Dataset:
        if "tables" not in self._cache:
            self._cache["tables"] = self.account_tables()
        return self._cache["tables"]

    @property
    def accounts(self) -> pd.DataFrame:
        return self._tables().accounts

    @property
    def contacts(self) -> pd.DataFrame:
        return self._tables().contacts

    @property
    def opportunities(self) -> pd.DataFrame:
        return self._tables().opportunities

    @property
    def revenue(self) -> pd.DataFrame:
        return self._tables().revenue

    # the addressable population, from the account table alone (not the in-memory dataset)
    @property
    def targets_flagged(self) -> bool:
        from ..prepared import ResolvedDataset
        return ResolvedDataset.targets_flagged.fget(self)

    @property
    def target_population(self) -> str:
        from ..prepared import ResolvedDataset
        return ResolvedDataset.target_population.fget(self)

    def target_account_ids(self) -> pd.Index:
        from ..prepared import ResolvedDataset
        return ResolvedDataset.target_account_ids(self)

    @property
    def contact_accounts(self) -> pd.DataFrame:
        """The contact → account mapping the partitions were written with (mapped
        contacts; read from every partition)."""
        if self.options.get("contact_accounts") is not None:  # the resolved dataset's, every column
            return self.options["contact_accounts"]
        if "contact_accounts" not in self._cache:
            files = []
            for i in range(self.npartitions):
                p = self.root / "contact_accounts" / f"part-{i:05d}"
                p = p if p.exists() else p.with_suffix(".parquet")
                if p.exists():
                    files.append(pd.read_parquet(p))
            self._cache["contact_accounts"] = pd.concat(files, ignore_index=True) if files else \
                pd.DataFrame({"contact_id": pd.Series([], dtype=object), "account_id": pd.Series([], dtype=object)})
        return self._cache["contact_accounts"]

    @property
    def mqa_dates(self):
        """The resolved dataset's ``account_id, mqa_at`` when it was opened with one
        (:func:`abmkit.open_dataset`), else None (each partition evaluates the rule)."""
        return self.options.get("mqa_dates")

    @property
    def mqa_rule(self):
        from ..prepared import MQARule
        return self.options.get("mqa_rule") or MQARule()

    @property
    def data_end(self) -> pd.Timestamp:
        """The whole data's censoring date (as :func:`abmkit.prepare` sets it): the
        resolved dataset's (``resolved.json``) when opened with one, else computed from
        the partitions' span."""
        meta = self._resolved_meta()
        if meta is not None and "data_end" in meta:
            return pd.NaT if meta["data_end"] is None else pd.Timestamp(meta["data_end"])
        if "data_end" not in self._cache:
            from .kernels import _data_end, _global_span
            self._cache["data_end"] = _data_end(_global_span(self))
        return self._cache["data_end"]

    # what a ResolvedDataset says about itself, from the account-sized tables, the
    # manifest and resolved.json: never the touch table
    def _resolved_meta(self) -> dict | None:
        """``data_dir/resolved/resolved.json`` of the handle's folder
        (:func:`abmkit.open_dataset`), or None (a bare partitioned folder)."""
        if "resolved_meta" not in self._cache:
            meta, d = None, self.options.get("data_dir")
            if d is not None and (Path(d) / "resolved" / "resolved.json").exists():
                from ..prepared import read_resolved_meta
                meta = read_resolved_meta(d)[1]
            self._cache["resolved_meta"] = meta
        return self._cache["resolved_meta"]

    def memo(self, key: tuple, build):
        """``build()`` once per ``key`` for this handle (as
        :meth:`abmkit.prepared.ResolvedDataset.memo`)."""
        memo = self._cache.setdefault("memo", {})
        if key not in memo:
            memo[key] = build()
        return memo[key]

    @property
    def mapping(self):
        """The mapping settings that produced ``contact_accounts`` (None: supplied)."""
        from ..prepared import MappingSettings
        meta = self._resolved_meta()
        m = None if meta is None else meta.get("mapping")
        return MappingSettings(**m) if isinstance(m, dict) else None

    @property
    def as_of(self):
        """The instant the analyses look from (the resolved dataset's ``as_of``)."""
        return self.options.get("as_of")

    @property
    def notes(self) -> list:
        """What the resolution could not do (the resolved dataset's notes)."""
        meta = self._resolved_meta()
        return list(meta.get("notes", [])) if meta is not None else []

    @property
    def mapping_fingerprint(self) -> str:
        from ..prepared import ResolvedDataset
        return ResolvedDataset.mapping_fingerprint.fget(self)

    @property
    def settings(self) -> dict:
        """Everything that produced this dataset, JSON-friendly (as in memory)."""
        from ..prepared import ResolvedDataset
        return ResolvedDataset.settings.fget(self)

    def touch_counts(self) -> dict:
        """Touches in, on their own account, placed through their contact, without any
        account: recorded while partitioning (the manifest)."""
        m = self.manifest
        if "touchpoints_via_contact" not in m:
            raise ValueError(f"{self.root} was partitioned by an older abmkit (no touch counts by source): "
                             "partition it again (abmkit.open_dataset does so when it finds such a copy)")
        via = int(m["touchpoints_via_contact"])
        return {"in": int(m["touchpoints_in"]), "touch": int(m["touchpoints_partitioned"]) - via,
                "contact": via, "unattributable": int(m["touchpoints_unattributable"])}

    @property
    def summary(self) -> pd.DataFrame:
        """Rows per table, contacts mapped, touches resolved, and the settings: the
        in-memory :attr:`abmkit.prepared.ResolvedDataset.summary`, from the account
        tables and the touch counts recorded while partitioning."""
        from ..prepared import summary_table
        n_touches = self.touch_counts()["in"]
        return summary_table(self, {name: n_touches if name == "touchpoints" else len(df)
                                    for name, df in self._tables().tables().items()})

    def print_summary(self) -> None:
        """Print :attr:`summary` (as the kit's results do)."""
        print(self.summary.to_string(index=False))

    def in_memory(self, what: str | None = None):
        """The whole data as an in-memory :class:`~abmkit.prepared.ResolvedDataset`, for
        the analyses that have no partitioned kernel (see docs/scale.md): the resolved
        dataset of ``options["data_dir"]`` when known, else the partitions gathered
        (with their mapping). Loaded once and kept.

        Every call warns (:class:`InMemoryWarning`) naming ``what`` asked for it (default:
        the kit's function on the call stack); with the handle's ``in_memory`` mode
        ``"error"`` (``open_dataset(..., in_memory="error")``, ``ABMKIT_IN_MEMORY=error``)
        it raises :class:`InMemoryError` instead, before reading anything."""
        who = _trigger(what)
        mode = in_memory_mode(self.options.get("in_memory"))
        text = (f"{who} loads the whole data into memory (PartitionedDataset.in_memory(): "
                "no partitioned kernel for it")
        if mode == "error":
            raise InMemoryError(f"{text}); refused: in_memory='error' ({IN_MEMORY_ENV}=error). Run it with "
                                "engine='pandas', or leave the mode at 'warn' if the data fits in memory "
                                "(docs/scale.md, 'Analyses without a partitioned kernel')")
        import warnings
        warnings.warn(f"{text}; see docs/scale.md)", InMemoryWarning, stacklevel=2)
        if "resolved" not in self._cache:
            from ..prepared import load_resolved, prepare
            d = self.options.get("data_dir")
            if d is not None and (Path(d) / "resolved" / "resolved.json").exists():
                self._cache["resolved"] = load_resolved(d)
            else:
                loaded = [self.load(i) for i in range(self.npartitions)]
                ds = Dataset(campaigns=self.campaigns,
                             **{t: pd.concat([getattr(x[0], t) for x in loaded], ignore_index=True)
                                for t in ("touchpoints",) + _ACCOUNT_TABLES})
                small = self._tables()
                ds = Dataset(touchpoints=ds.touchpoints, campaigns=ds.campaigns,
                             **{t: getattr(small, t) for t in _ACCOUNT_TABLES})
                self._cache["resolved"] = prepare(ds, mapping=self.contact_accounts, mqa=self.options.get("mqa_rule"))
        return self._cache["resolved"]

    def __getattr__(self, name: str):
        # what a ResolvedDataset has and this handle does not (target_account_ids,
        # notes, memo, ...): the in-memory dataset's, for analyses without a kernel
        if name.startswith("_") or name in ("root", "npartitions", "manifest", "options"):
            raise AttributeError(name)
        from ..prepared import ResolvedDataset
        if not hasattr(ResolvedDataset, name) and name not in ResolvedDataset.__dataclass_fields__:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return getattr(self.in_memory(f"data.{name}"), name)

    @property
    def touchpoints(self) -> pd.DataFrame:
        """The whole touch table (:meth:`in_memory`): only for analyses without a
        partitioned kernel."""
        return self.in_memory("data.touchpoints").touchpoints

    @property
    def touches(self) -> pd.DataFrame:
        return self.in_memory("data.touches").touches

    @property
    def tables(self) -> Dataset:
        return self.in_memory("data.tables").tables

    def unmapped_contacts(self) -> pd.DataFrame:
        """Contacts that map to no account (their touches are unattributable)."""
        f = self.root / "unattributable" / "contacts.parquet"
        return pd.read_parquet(f) if f.exists() else empty_table("contacts")


def _canonical(df: pd.DataFrame, table: str, *, trusted: bool = False, source: str | None = None) -> pd.DataFrame:
    """:func:`abmkit.schema.coerce_table`, skipping columns already at their canonical
    dtype (string ids are not re-checked value by value: that Python-level pass is the
    slowest part of loading 10^8 touches). ``trusted``: files this module wrote."""
    from ..schema import KIND_DTYPES, coerce_column
    spec = TABLES[table]
    if any(c.name not in df.columns for c in spec.columns):
        return coerce_table(df, table, source=source)
    df = df.reset_index(drop=True)
    out = {}
    for col in spec.columns:
        s = df[col.name]
        want = KIND_DTYPES[col.kind]
        if col.kind in ("id", "str") and s.dtype == object and col.allowed is None and (
                trusted or pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty")):
            out[col.name] = s if trusted or col.kind == "str" else s.where(s != "", None)
        elif s.dtype == want and col.kind not in ("id", "str"):
            out[col.name] = s
        else:
            out[col.name] = coerce_column(s, col, table, source)
    result = pd.DataFrame(out)
    for c in df.columns:
        if c not in spec.names:
            result[c] = df[c]
    return result


def _read_table(path: Path, name: str) -> pd.DataFrame:
    f = path / f"{name}.parquet"
    if not f.exists():
        if name == "revenue":
            return empty_table(name)
        raise FileNotFoundError(f"{f} missing: a canonical dataset folder has one <table>.parquet per table")
    # columns already at their canonical dtype are kept as they are (10^6 contacts)
    return _canonical(pd.read_parquet(f), name, source=str(f))


def _read_small(root: Path) -> dict:
    """Every table but the touchpoints of a canonical folder."""
    return {t: _read_table(root, t) for t in _ACCOUNT_TABLES + ("campaigns",)}


def _account_ids(root: Path):
    """The canonical ids of ``root/accounts.parquet`` (repeats and nulls dropped later),
    reading that column alone: as Arrow strings when it holds strings, else coerced
    (the whole table, with its checks, is read by :func:`_write_tables`)."""
    import pyarrow.parquet as pq

    from ..schema import coerce_column
    f = root / "accounts.parquet"
    try:
        col = pq.read_table(f, columns=["account_id"])["account_id"]
        if _is_str_type(col.type):
            return _null_empty(col).combine_chunks()
        ids = col.to_pandas()
    except Exception:  # noqa: BLE001 - let the full read raise its own, precise error
        ids = _read_table(root, "accounts")["account_id"]
    return coerce_column(ids, TABLES["accounts"].column("account_id"), "accounts", str(f)).dropna().to_numpy()


def _touch_batches(source, batch_rows: int):
    """Touchpoints in batches (never the whole table in memory for a folder source)."""
    if isinstance(source, Dataset):
        tp = source.touchpoints
        for s in range(0, len(tp), batch_rows):
            yield tp.iloc[s:s + batch_rows]
        return
    if _is_dask(source):
        for part in source.to_delayed():
            yield coerce_table(part.compute(), "touchpoints")
        return
    import pyarrow.dataset as pads
    root = Path(source)
    tp = root / "touchpoints.parquet"
    if not tp.exists():
        tp = root / "touchpoints"
    if not tp.exists():
        raise FileNotFoundError(f"{root}: neither touchpoints.parquet nor a touchpoints/ folder of parquet files")
    for batch in pads.dataset(tp, format="parquet").to_batches(batch_size=batch_rows):
        if batch.num_rows:
            yield _canonical(batch.to_pandas(), "touchpoints", source=str(tp))


def _is_dask(obj) -> bool:
    return type(obj).__module__.split(".")[0] in ("dask", "dask_expr")


def _plain(df: pd.DataFrame) -> pd.DataFrame:
    """Non-canonical categoricals as strings: batch files must share one dictionary
    (the canonical taxonomies are the same in every file, so they stay categorical)."""
    from ..schema import KIND_DTYPES
    canonical = (KIND_DTYPES["channel"], KIND_DTYPES["touch_type"])
    cats = [c for c in df.columns if isinstance(df[c].dtype, pd.CategoricalDtype) and df[c].dtype not in canonical]
    return df.assign(**{c: df[c].astype(object) for c in cats}) if cats else df


def _account_tables(small, root: Path | None) -> dict:
    """The account tables as Arrow tables: read straight from ``root``'s files when
    they are canonical already (no Python objects for 10^7 contacts), else through
    the pandas checks (:func:`_read_table`: coerces, or raises a precise SchemaError)."""
    import pyarrow as pa
    tables = {}
    for t in _ACCOUNT_TABLES:
        table = None
        if small is None and (root / f"{t}.parquet").exists():
            table = _arrow_table(root / f"{t}.parquet", t)
        if table is None:
            df = small[t] if small is not None else _read_table(root, t)
            table = pa.Table.from_pandas(_plain(df), preserve_index=False)
        tables[t] = table
    return tables


def _write_tables(out: Path, small, source, resolver: "_Resolver", pending, batch_rows: int, progress) -> tuple:
    """Write the account tables here and the touches (``pending`` chunk tasks, or
    batches partitioned here). Returns the per-batch results of
    :func:`_partition_touches` and the manifest's account-table counts and span."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from ..progress import progress_bar
    npartitions = resolver.npartitions
    root = None if small is not None else Path(source)
    tables = _account_tables(small, root)
    counts = {}
    for t, table in tables.items():
        if t == "contacts":  # a contact lives with its mapped account; unmapped ones aside
            pos = resolver.contact_rows(table["contact_id"])
            keep = pos >= 0
            part = np.where(keep, resolver.contact_part[np.maximum(pos, 0)], -1)
            pq.write_table(table.filter(pa.array(~keep)), out / "unattributable" / "contacts.parquet")
        else:
            part = _hash_partitions(table["account_id"], npartitions)
            keep = np.ones(table.num_rows, bool)
        _write_by_partition(table, part, keep, npartitions, out / t, "all.parquet")
        counts[t] = int(keep.sum())
        # each source row's partition (npartitions: kept aside), so the gathered table can be
        # put back in the source's row order (account_tables)
        (out / _ROW_ORDER).mkdir(exist_ok=True)
        pq.write_table(pa.table({"part": pa.array(np.where(keep, part, npartitions).astype(np.int32))}),
                       out / _ROW_ORDER / f"{t}.parquet")
    _write_by_partition(pa.table({"contact_id": resolver.contacts.ids, "account_id": resolver.contact_account}),
                        resolver.contact_part, np.ones(len(resolver.contact_part), bool), npartitions,
                        out / "contact_accounts", "all.parquet")
    campaigns = small["campaigns"] if small is not None else _read_table(root, "campaigns")
    _plain(campaigns).to_parquet(out / "campaigns.parquet", index=False)
    # the source's account order, so account-level results can be put back in it
    accounts = tables["accounts"]
    pq.write_table(accounts.select(["account_id"]), out / "account_order.parquet")
    opportunities = _canonical(tables["opportunities"].to_pandas(), "opportunities", trusted=True)
    target = accounts["is_target"].cast(pa.bool_()) if "is_target" in accounts.column_names else pa.array([], pa.bool_())
    info = {"counts": counts, "contacts_unmapped": tables["contacts"].num_rows - counts["contacts"],
            "span": _opportunity_span(opportunities, pd.DataFrame({"account_id": accounts["account_id"].to_pandas()}),
                                      None),
            "any_target": bool(pc.any(pc.fill_null(target, False)).as_py() or False)}

    if pending is not None:
        done = _gather(pending, "partition touches", progress)
    else:
        bar = progress_bar(desc="partition touches", unit=" rows", progress=progress)
        done = []
        lookup, known = resolver.lookup_series(), resolver.known_index()
        for b, tp in enumerate(_touch_batches(source, batch_rows)):
            done.append(_partition_touches(tp, b, lookup, known, npartitions, out))
            bar.update(done[-1][0])
        bar.close()
    return done, info


def partition_by_account(source, npartitions: int, out_dir, *, dataset: Dataset | None = None,
                         contact_accounts: pd.DataFrame | None = None, batch_rows: int = 2_000_000,
                         overwrite: bool = False, progress: bool | None = None) -> PartitionedDataset:
    """Write a dataset split into ``npartitions`` partitions of whole accounts.

    Touches are resolved to their account first (the touch's own account_id, else
    its contact's mapped account: :func:`abmkit.journeys.account_touches` rules), then
    every table goes to ``partition_of(account_id)``. Touches read in batches of
    ``batch_rows``, so the touch table is never held in memory whole.

    Parameters
    ----------
    source : str, Path, Dataset or dask DataFrame
        a canonical folder (``touchpoints.parquet`` or a ``touchpoints/`` folder of
        parquet files, plus the other ``<table>.parquet``), a Dataset, or a Dask
        DataFrame of touchpoints (then pass the other tables as ``dataset``).
    npartitions : int
        aim for 0.2-2 million touches per partition (docs/scale.md).
    out_dir : folder to write (must be empty or absent unless ``overwrite``).
    contact_accounts : DataFrame, optional
        contact_id → account_id (``abmkit.mapping.map_contacts``); default rules when None.

    Returns
    -------
    PartitionedDataset
        nothing is lost: touches without any account go to ``unattributable/`` and
        ``manifest["touchpoints_in"] == touchpoints_partitioned + touchpoints_unattributable``.
        On any error the output folder is removed (nothing half-written is left).
    """
    if npartitions < 1:
        raise ValueError(f"npartitions must be >= 1, got {npartitions}")
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out} is not empty; pass overwrite=True or choose another folder")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        return _partition_into(out, source, npartitions, dataset, contact_accounts, batch_rows, progress)
    except BaseException:
        # no half-written folder left behind: a re-run would find it neither empty nor
        # a partitioned dataset
        shutil.rmtree(out, ignore_errors=True)
        raise


def _partition_into(out: Path, source, npartitions: int, dataset, contact_accounts, batch_rows: int,
                    progress) -> PartitionedDataset:
    """:func:`partition_by_account` once ``out`` exists and is empty."""
    if isinstance(source, Dataset):
        small = {t: getattr(source, t) for t in _ACCOUNT_TABLES + ("campaigns",)}
    elif _is_dask(source):
        if dataset is None:
            raise ValueError("a Dask DataFrame holds only touchpoints: pass the other tables as dataset=")
        small = {t: getattr(dataset, t) for t in _ACCOUNT_TABLES + ("campaigns",)}
    else:
        root = Path(source)
        if not root.is_dir():
            raise FileNotFoundError(f"{root} is not a folder")
        for t in _ACCOUNT_TABLES + ("campaigns",):  # fail before any task starts
            if t != "revenue" and not (root / f"{t}.parquet").exists():
                _read_table(root, t)
        small = None  # read below, while the workers already split the touches
    given = contact_accounts  # its fingerprint goes in the manifest (computed once the tasks run)
    if contact_accounts is None:
        from ..mapping import map_contacts
        small = small or _read_small(root)
        contact_accounts = map_contacts(small["contacts"], small["accounts"])

    (out / "unattributable").mkdir(exist_ok=True)
    known = small["accounts"]["account_id"].dropna() if small is not None else _account_ids(root)
    resolver = _Resolver.build(contact_accounts, known, npartitions)
    chunks = _row_group_chunks(source, batch_rows) if not isinstance(source, Dataset) and not _is_dask(source) \
        else None
    pending = None
    if chunks is not None:
        # folder source: every chunk of row groups is a task (parallel on the active
        # dask scheduler / cluster); the id tables are built once and shipped once.
        # Started now, so the workers split touches while this process writes the
        # account tables below.
        _require_scale()
        import dask
        shared = _share(resolver)
        pending = _submit([dask.delayed(_partition_chunks, pure=True)(task, b, shared, str(out))
                           for b, task in enumerate(_tasks_of(chunks, batch_rows, npartitions))])

    try:
        mapping = None if given is None else _mapping_fingerprint(given)
        done, info = _write_tables(out, small, source, resolver, pending, batch_rows, progress)
    except BaseException:
        # the caller removes the folder: running chunk tasks finish first (they write into it)
        if pending is not None and pending[0]:
            from distributed import wait
            wait(pending[1])
        raise
    n_in, n_part, n_unattr, touch_span = _sum_batches(done)
    n_via = touch_span.pop("via_contact")
    counts = info["counts"]
    manifest = {"format": _FORMAT, "npartitions": npartitions, "touchpoints_in": n_in,
                "touchpoints_partitioned": n_part, "touchpoints_unattributable": n_unattr,
                "touchpoints_via_contact": n_via,
                "contacts_unmapped": info["contacts_unmapped"], **{f"{t}": counts[t] for t in counts},
                "span": {**touch_span, **info["span"], "any_target": info["any_target"]},
                "source": _fingerprint(source), "mapping": mapping}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1), "utf-8")
    return PartitionedDataset(out, npartitions, manifest)


def _partition_touches(tp: pd.DataFrame, b: int, lookup: pd.Series, known: pd.Index, npartitions: int,
                       out) -> tuple:
    """Resolve a batch of touches to accounts and write one file per partition.
    Returns (rows in, rows partitioned, rows unattributable, time extremes)."""
    out = Path(out)
    own = _resolved_accounts(tp, lookup)
    ok = ~pd.isna(own)
    t = tp["occurred_at"].array.asi8
    t_seen = tp["occurred_at"].notna().to_numpy()
    t_ok = ok & t_seen
    t_known = t_ok & (known.get_indexer(np.where(ok, own, None)) >= 0) if len(known) else np.zeros(len(tp), bool)
    ext = {"t_any_max": int(t[t_seen].max()) if t_seen.any() else None,
           # placed through their contact (no account of their own): data.summary counts them
           "via_contact": int((ok & tp["account_id"].isna().to_numpy()).sum()),
           "t_all_max": int(t[t_ok].max()) if t_ok.any() else None,
           "t_min": int(t[t_known].min()) if t_known.any() else None,
           "t_max": int(t[t_known].max()) if t_known.any() else None}
    if (~ok).any():
        _plain(tp[~ok]).to_parquet(out / "unattributable" / f"touches-{_label(b)}.parquet", index=False)
    import pyarrow as pa
    part = np.full(len(tp), -1, np.int64)
    part[ok] = partition_of(own[ok], npartitions)
    table = pa.Table.from_pandas(_plain(tp.assign(account_id=np.where(ok, own, None))), preserve_index=False)
    _write_by_partition(table, part, ok, npartitions, out / "touchpoints", f"batch-{_label(b)}.parquet")
    return len(tp), int(ok.sum()), int((~ok).sum()), ext


@dataclass
class _IdTable:
    """Distinct string ids keyed by their 64-bit hashes (:func:`abmkit.hashing.string_hash`)
    and sorted: a look-up is a binary search of sorted hashes plus one exact string
    comparison, with no Python objects per probe and no hash table whose per-row cost
    grows with the number of ids. ``salt`` is re-drawn in the (~1e-7 at 10^6 ids)
    event that two ids share a hash."""
    salt: int
    hashes: np.ndarray
    ids: object        # pyarrow string array, in hash order

    @classmethod
    def build(cls, ids, *, first: bool = False) -> tuple["_IdTable", np.ndarray]:
        """The table of distinct ``ids`` and, for each table row, the input position it
        comes from. ``first``: a repeated id keeps its first occurrence (as
        ``drop_duplicates``); otherwise repeats are an error."""
        import pyarrow as pa
        import pyarrow.compute as pc

        from ..hashing import as_arrow_strings, string_hash
        ids = as_arrow_strings(ids)
        for salt in range(1, 64):
            h = string_hash(ids, salt)
            order = np.argsort(h, kind="stable")  # stable: the first occurrence leads its repeats
            h = h[order]
            same = np.flatnonzero(h[1:] == h[:-1])
            if len(same):
                equal = pc.equal(ids.take(pa.array(order[same])), ids.take(pa.array(order[same + 1])))
                if not pc.all(pc.fill_null(equal, False)).as_py():
                    continue  # two different ids share a hash: another salt
                if not first:
                    raise ValueError("the id table has repeated ids; deduplicate it first")
                keep = np.ones(len(h), bool)
                keep[same + 1] = False
                order, h = order[keep], h[keep]
            return cls(salt, h, ids.take(pa.array(order))), order
        raise ValueError("no salt separates the ids' hashes")  # ~never: 63 independent 64-bit hashes

    def find(self, query) -> np.ndarray:
        """Position of every query id in the table, -1 when absent."""
        import pyarrow as pa
        import pyarrow.compute as pc

        from ..hashing import as_arrow_strings, string_hash
        query = as_arrow_strings(query)
        out = np.full(len(query), -1, np.int64)
        if not len(query) or not len(self.hashes):
            return out
        qh = string_hash(query, self.salt)
        order = np.argsort(qh)  # sorted probes walk the table in order: cache-friendly
        pos = np.empty(len(qh), np.int64)
        pos[order] = np.searchsorted(self.hashes, qh[order])
        np.minimum(pos, len(self.hashes) - 1, out=pos)
        cand = np.flatnonzero(self.hashes[pos] == qh)
        if len(cand):
            same = pc.equal(self.ids.take(pa.array(pos[cand])), query.take(pa.array(cand)))
            ok = pc.fill_null(same, False).to_numpy(zero_copy_only=False)
            out[cand[ok]] = pos[cand[ok]]
        return out


@dataclass
class _Resolver:
    """The id tables every partitioning task needs (:class:`_IdTable`), built once on
    the driver and shipped once to every worker (:func:`_share`): the contacts mapped
    to an account (with that account's id and partition, in table order) and the ids
    of the accounts table (the data span counts their touches)."""
    npartitions: int
    contacts: _IdTable
    contact_account: object    # pyarrow string array
    contact_part: np.ndarray
    known: _IdTable

    @classmethod
    def build(cls, contact_accounts: pd.DataFrame, known, npartitions: int) -> "_Resolver":
        """From ``contact_accounts`` (contact_id, account_id; a contact's first row with
        an account counts, as ``dropna().drop_duplicates("contact_id")``) and the
        accounts table's ids ``known`` (any order, repeats allowed)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        from ..hashing import as_arrow_strings
        cid = as_arrow_strings(contact_accounts["contact_id"].to_numpy(dtype=object))
        aid = as_arrow_strings(contact_accounts["account_id"].to_numpy(dtype=object))
        mapped = pc.and_(cid.is_valid(), aid.is_valid())
        cid, aid = cid.filter(mapped), aid.filter(mapped)
        contacts, order = _IdTable.build(cid, first=True)
        accounts = aid.take(pa.array(order))
        return cls(npartitions, contacts, accounts, _hash_partitions(accounts, npartitions),
                   _IdTable.build(as_arrow_strings(known).drop_null(), first=True)[0])

    def contact_rows(self, ids) -> np.ndarray:
        """Row of every contact id in the contact table (-1: not mapped)."""
        return self.contacts.find(ids)

    def is_known(self, ids) -> np.ndarray:
        return self.known.find(ids) >= 0

    def lookup_series(self) -> pd.Series:
        """contact_id → account_id (the pandas path's form of the same table)."""
        return pd.Series(self.contact_account.to_numpy(zero_copy_only=False),
                         index=pd.Index(self.contacts.ids.to_numpy(zero_copy_only=False), name="contact_id"),
                         name="account_id")

    def known_index(self) -> pd.Index:
        return pd.Index(self.known.ids.to_numpy(zero_copy_only=False))


def _label(b) -> str:
    """File-name label of a batch: ``00003`` or, for chunk 1 of task 3, ``00003-001``."""
    return f"{b:05d}" if isinstance(b, (int, np.integer)) else "-".join(f"{x:05d}" if i == 0 else f"{x:03d}"
                                                                         for i, x in enumerate(b))


def _partition_chunks(chunks: list, b: int, resolver: _Resolver, out: str) -> tuple:
    """One task: partition the touches of several (file, row groups) chunks, one at a
    time (memory stays that of one chunk), into one file per partition kept open for
    the whole task. So a partition gets one file per task, not one per chunk: the
    per-file cost of writing and of reading it back does not multiply with the number
    of chunks. Returns the summed (rows in, partitioned, unattributable, time span)."""
    import pyarrow.parquet as pq
    writers: dict = {}
    done = []
    try:
        for k, (path, row_groups) in enumerate(chunks):
            table = pq.ParquetFile(path).read_row_groups(row_groups)
            res = _partition_arrow(table, (b, k), resolver, out, writers) if _arrow_ready(table) else None
            if res is None:
                # not canonical yet (or values outside the taxonomies): the pandas path
                # coerces, or raises abmkit.schema.SchemaError naming the column and rows
                tp = _canonical(table.to_pandas(), "touchpoints", source=path)
                res = _partition_touches(tp, (b, k), resolver.lookup_series(), resolver.known_index(),
                                         resolver.npartitions, out)
            done.append(res)
    finally:
        for w in writers.values():
            w.close()
    return _sum_batches(done)


def _sum_batches(done: list) -> tuple:
    """Add up (rows in, partitioned, unattributable, time extremes) of batches."""
    def ext(key, f):
        vals = [d[3][key] for d in done if d[3][key] is not None]
        return f(vals) if vals else None
    return (sum(d[0] for d in done), sum(d[1] for d in done), sum(d[2] for d in done),
            {"t_min": ext("t_min", min), "t_max": ext("t_max", max), "t_all_max": ext("t_all_max", max),
             "t_any_max": ext("t_any_max", max), "via_contact": sum(d[3].get("via_contact", 0) for d in done)})


def _is_str_type(t) -> bool:
    import pyarrow as pa
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t)


def _arrow_ready(table, name: str = "touchpoints") -> bool:
    """Whether an Arrow table of ``name`` already has canonical column types (strings,
    UTC-aware timestamps, numbers, booleans): then it is partitioned in Arrow, without
    Python objects. Touch tables need every column; other tables their required ones
    (the pandas path adds missing optional columns on reading)."""
    import pyarrow as pa
    for col in TABLES[name].columns:
        if col.name not in table.column_names:
            if name == "touchpoints" or col.required:
                return False
            continue
        t = table.schema.field(col.name).type
        if col.kind in ("id", "str"):
            ok = _is_str_type(t)
        elif col.kind == "ts":
            ok = (pa.types.is_timestamp(t) and t.tz is not None) or (pa.types.is_null(t) and not col.required)
        elif col.kind in ("channel", "touch_type"):
            ok = _is_str_type(t) or (pa.types.is_dictionary(t) and _is_str_type(t.value_type))
        elif col.kind == "float":
            ok = pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_null(t)
        elif col.kind == "int":
            ok = pa.types.is_integer(t) or pa.types.is_null(t)
        elif col.kind == "bool":
            ok = pa.types.is_boolean(t) or pa.types.is_null(t)
        else:
            ok = False
        if not ok:
            return False
    return True


def _null_empty(ids):
    """String ids with ``""`` as missing (the canonical form of an id)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    ids = ids.cast(pa.string())
    empty = pc.fill_null(pc.equal(ids, ""), False)
    if not pc.any(empty).as_py():
        return ids
    # an all-null array on the other side, not a null scalar: pyarrow's scalar fast path
    # corrupts sliced string chunks (apache/arrow#41479, fixed after pyarrow 22)
    ids = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
    return pc.if_else(empty.combine_chunks() if isinstance(empty, pa.ChunkedArray) else empty,
                      pa.nulls(len(ids), pa.string()), ids)


def _arrow_table(path: Path, name: str):
    """``path`` (one table of a canonical folder) as an Arrow table at canonical types
    (ids with "" missing, timestamps ns UTC), or None when it needs the pandas path:
    coercion, or the precise :class:`abmkit.schema.SchemaError` of a bad value."""
    import pyarrow.parquet as pq
    # the source's pandas metadata (index, row count) does not describe the rows kept
    table = pq.read_table(path).replace_schema_metadata(None)
    return _canonical_arrow_columns(table, name) if _arrow_ready(table, name) else None


def _canonical_arrow_columns(table, name: str):
    """An :func:`_arrow_ready` table of ``name`` with its id, string and timestamp
    columns in canonical form (ids with "" missing, strings as ``string``, timestamps
    ns UTC), combined into one chunk per column; None when a column with allowed
    values holds another (the pandas path raises the precise error)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    for col in TABLES[name].columns:
        if col.name not in table.column_names:
            continue
        c = table[col.name]
        if col.kind == "id":
            c = _null_empty(c)
        elif col.kind == "str":
            c = c.cast(pa.string())
        elif col.kind == "ts":
            c = c.cast(pa.timestamp("ns", tz="UTC"))
        if col.allowed is not None:
            valid = pc.drop_null(c)
            if len(valid) and not pc.all(pc.is_in(valid, value_set=pa.array(list(col.allowed)))).as_py():
                return None
        table = table.set_column(table.column_names.index(col.name), col.name, c)
    return table.combine_chunks()


def _known_extreme(t_ns: np.ndarray, rows: np.ndarray, accounts, resolver: _Resolver, largest: bool):
    """Earliest (or latest) time among ``rows`` whose account is in the accounts
    table. Checks the 256 extreme rows first: if one of them is known, the extreme
    known row is among them (every other row is further from the extreme), so the
    full look-up runs only when none is."""
    import pyarrow as pa
    if not len(rows):
        return None
    key = -t_ns[rows] if largest else t_ns[rows]
    k = min(256, len(rows))
    cand = rows[np.argpartition(key, k - 1)[:k]] if k < len(rows) else rows
    known = resolver.is_known(accounts.take(pa.array(cand)))
    if not known.any() and k < len(rows):
        cand = rows
        known = resolver.is_known(accounts.take(pa.array(cand)))
    if not known.any():
        return None
    vals = t_ns[cand[known]]
    return int(vals.max() if largest else vals.min())


#: parquet dictionary pages only for the columns with few distinct values (taxonomies,
#: campaigns). Account and contact ids are written plain: a partition's piece of a
#: chunk holds about npartitions-times fewer rows as the data grows, so its row groups
#: shrink while their distinct ids do not, and rebuilding the id dictionaries per row
#: group made partitioning cost more per touch at 10^8 than at 10^7 (+15%); plain ids
#: cost the same per touch at any size, read back as fast, for files 12-20% larger.
#: No column statistics are written: nothing reads these files with filters.
_DICT_COLUMNS = ["channel", "touch_type", "campaign_id"]
_WRITE_OPTIONS = {"use_dictionary": _DICT_COLUMNS, "write_statistics": False}


def _partition_arrow(table, b, resolver: _Resolver, out, writers: dict | None = None):
    """:func:`_partition_touches` on an Arrow table (same files, same counts), at a
    cost per row that does not depend on the number of accounts or contacts.
    ``writers``: open per-partition files of the task (see :func:`_write_by_partition`)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from ..schema import CHANNELS, TOUCH_TYPES
    out = Path(out)
    npartitions = resolver.npartitions
    for name, allowed in (("channel", CHANNELS), ("touch_type", TOUCH_TYPES)):
        col = table[name]
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
            table = table.set_column(table.column_names.index(name), name, col)
        vals = pc.unique(col).to_pylist()
        if any(v is not None and v not in allowed for v in vals):
            return None
        # the full taxonomy as dictionary, in order: pandas reads it back as the
        # canonical categorical, with nothing to coerce when the partition is loaded
        taxonomy = pa.array(list(allowed), pa.string())
        codes = pc.index_in(col.combine_chunks() if hasattr(col, "combine_chunks") else col, value_set=taxonomy)
        table = table.set_column(table.column_names.index(name), name,
                                 pa.DictionaryArray.from_arrays(codes.cast(pa.int8()), taxonomy))
    table = _canonical_arrow_columns(table, "touchpoints")
    n = table.num_rows
    own = table["account_id"].chunk(0) if table["account_id"].num_chunks else pa.array([], pa.string())
    contact = table["contact_id"].chunk(0) if table["contact_id"].num_chunks else pa.array([], pa.string())
    own_ok = own.is_valid().to_numpy(zero_copy_only=False)
    # the touch's own account decides its partition: hashed per row, no table involved
    part = np.where(own_ok, _hash_partitions(own, npartitions), -1)
    resolved = own
    need = np.flatnonzero(~own_ok & contact.is_valid().to_numpy(zero_copy_only=False))
    if len(need):  # contact-only touches: the contact's mapped account
        pos = resolver.contact_rows(contact.take(pa.array(need)))
        hit = pos >= 0
        if hit.any():
            part[need[hit]] = resolver.contact_part[pos[hit]]
            via_rows = np.zeros(n, bool)
            via_rows[need[hit]] = True
            # fill those rows in place: a gather of the found contacts' accounts only
            resolved = pc.replace_with_mask(own, pa.array(via_rows),
                                            resolver.contact_account.take(pa.array(pos[hit])))
    ok_np = part >= 0
    t = table["occurred_at"].chunk(0) if n else pa.array([], pa.timestamp("ns", tz="UTC"))
    t_valid = t.is_valid().to_numpy(zero_copy_only=False)
    t_ns = pc.fill_null(t.cast(pa.int64()), 0).to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(ok_np & t_valid)
    ext = {"t_any_max": int(t_ns[t_valid].max()) if t_valid.any() else None,
           "via_contact": int((ok_np & ~own_ok).sum()),
           "t_all_max": int(t_ns[rows].max()) if len(rows) else None,
           "t_min": _known_extreme(t_ns, rows, resolved, resolver, largest=False),
           "t_max": _known_extreme(t_ns, rows, resolved, resolver, largest=True)}
    kept = table.set_column(table.column_names.index("account_id"), "account_id", resolved)
    if not ok_np.all():
        pq.write_table(table.filter(pa.array(~ok_np)), out / "unattributable" / f"touches-{_label(b)}.parquet")
    _write_by_partition(kept, part, ok_np, npartitions, out / "touchpoints", f"batch-{_label(b)}.parquet",
                        writers)
    return n, int(ok_np.sum()), int((~ok_np).sum()), ext


#: rows per block of the partition shuffle: a block's rows stay in the CPU cache while
#: they are reordered, so the gather costs the same for 10 or 1,000 partitions
_SHUFFLE_BLOCK = 1 << 15


def _write_by_partition(table, part: np.ndarray, keep: np.ndarray, npartitions: int, folder: Path, name: str,
                        writers: dict | None = None):
    """Write the ``keep`` rows of ``table`` to ``folder/part-NNNNN/name``, one file per
    partition present, in input order. Two gathers put the rows in partition order:
    first by partition within blocks of :data:`_SHUFFLE_BLOCK` rows (each block read
    while it is in cache; a whole-table gather by partition would read every block once
    per partition), then the blocks' runs of one partition after another (sequential
    copies). Each file is then written from one contiguous slice.

    ``writers`` (partition → open ``ParquetWriter``): append to those files instead
    (opened here on first use, named by that call's ``name``; the caller closes them);
    a piece whose columns do not fit the open file's schema gets a file of its own
    (``name`` must differ between calls)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    rows = np.flatnonzero(keep)
    if not len(rows):
        return
    block = _SHUFFLE_BLOCK
    n_blocks = -(-len(rows) // block)
    blk = np.arange(len(rows)) // block
    key = blk * npartitions + part[rows]
    # (block, partition) order by two stable sorts of small integers (numpy sorts 16-bit
    # integers by radix): by partition, then by block
    small = np.int16 if max(npartitions, n_blocks) <= np.iinfo(np.int16).max else np.int64
    order = np.argsort(part[rows].astype(small), kind="stable")
    order = order[np.argsort(blk[order].astype(small), kind="stable")]
    shuffled = table.take(pa.array(rows[order]))
    counts = np.bincount(key, minlength=n_blocks * npartitions).reshape(n_blocks, npartitions)
    starts = (np.cumsum(counts.ravel()) - counts.ravel()).reshape(n_blocks, npartitions)
    # then (partition, block) order: a second gather that copies runs of consecutive
    # rows, so every partition is one contiguous slice (no per-(block, partition) pieces
    # to cut and concatenate: there are blocks x partitions of them)
    runs, run_starts = counts.T.ravel(), starts.T.ravel()
    run_first = np.cumsum(runs) - runs
    by_part = np.arange(len(rows)) + np.repeat(run_starts - run_first, runs)
    grouped = shuffled.take(pa.array(by_part))
    del shuffled  # a chunk's copy less at the peak of a task
    per_part = counts.sum(axis=0)
    first = np.cumsum(per_part) - per_part
    for p in np.flatnonzero(per_part):
        pieces = grouped.slice(first[p], per_part[p])
        (folder / f"part-{p:05d}").mkdir(parents=True, exist_ok=True)
        if writers is None:
            pq.write_table(pieces, folder / f"part-{p:05d}" / name, **_WRITE_OPTIONS)
            continue
        if p not in writers:
            writers[p] = pq.ParquetWriter(folder / f"part-{p:05d}" / name, pieces.schema, **_WRITE_OPTIONS)
        if pieces.schema.equals(writers[p].schema):
            writers[p].write_table(pieces)
        else:  # e.g. a column that is all-null (type null) in this chunk only: own file
            pq.write_table(pieces, folder / f"part-{p:05d}" / name, **_WRITE_OPTIONS)


#: rows a partitioning task aims to give each partition (the fixed cost of a file,
#: written once and read back once, is then small against its rows)
_ROWS_PER_PIECE = 100_000


def _tasks_of(chunks: list, batch_rows: int, npartitions: int) -> list:
    """Consecutive chunks (each ``(file, row groups, rows)``) grouped into tasks of
    about ``max(batch_rows, _ROWS_PER_PIECE * npartitions)`` rows."""
    target = max(batch_rows, _ROWS_PER_PIECE * npartitions)
    tasks, cur, rows = [], [], 0
    for f, rgs, n in chunks:
        cur.append((f, rgs))
        rows += n
        if rows >= target:
            tasks.append(cur)
            cur, rows = [], 0
    if cur:
        tasks.append(cur)
    return tasks


def _row_group_chunks(source, batch_rows: int) -> list:
    """(file, row groups, rows) chunks of about ``batch_rows`` rows over a folder's touchpoints."""
    import pyarrow.parquet as pq
    root = Path(source)
    tp = root / "touchpoints.parquet"
    files = [tp] if tp.exists() else sorted((root / "touchpoints").glob("**/*.parquet"))
    if not files:
        raise FileNotFoundError(f"{root}: neither touchpoints.parquet nor parquet files under touchpoints/")
    chunks = []
    for f in files:
        meta = pq.ParquetFile(f).metadata
        cur, rows = [], 0
        for g in range(meta.num_row_groups):
            cur.append(g)
            rows += meta.row_group(g).num_rows
            if rows >= batch_rows:
                chunks.append((str(f), cur, rows))
                cur, rows = [], 0
        if cur:
            chunks.append((str(f), cur, rows))
    return chunks


@dataclass
class _DaskFramePartitions:
    """A Dask DataFrame of touchpoints whose partitions hold whole accounts, plus the
    other tables (pandas) split to match."""
    _abmkit_partitioned = True
    ddf: object
    small: list          # per partition: dict of account tables + contact_accounts
    campaigns: pd.DataFrame
    npartitions: int
    manifest: dict
    #: distinct times (int64 ns) of the touches without any account (in no partition)
    unattributable_times: np.ndarray = field(default_factory=lambda: np.array([], np.int64))


def _resolved_accounts(tp: pd.DataFrame, lookup: pd.Series) -> np.ndarray:
    own = tp["account_id"].to_numpy(dtype=object)
    missing = pd.isna(own)
    if missing.any():
        own = own.copy()
        own[missing] = tp["contact_id"][missing].map(lookup).to_numpy(dtype=object)
    return own


def _frame_accounts(tp: pd.DataFrame, lookup: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """The accounts of a Dask partition's touches, and the distinct times of its
    touches without any account."""
    own = _resolved_accounts(tp, lookup)
    none = pd.isna(own)
    t = to_ns_or_inf(tp["occurred_at"][none]) if none.any() else np.array([], np.int64)
    return pd.Series(pd.unique(own[~none]), dtype=object), np.unique(t[t != NS_INF])


def _from_dask_frame(ddf, dataset: Dataset, contact_accounts=None) -> _DaskFramePartitions:
    _require_scale()
    import dask
    if dataset is None:
        raise ValueError("a Dask DataFrame holds only touchpoints: pass the other tables as dataset=")
    if contact_accounts is None:
        from ..mapping import map_contacts
        contact_accounts = map_contacts(dataset.contacts, dataset.accounts)
    lookup = contact_accounts.dropna(subset=["account_id"]).drop_duplicates("contact_id")
    lookup = lookup[["contact_id", "account_id"]].reset_index(drop=True)
    lookup_s = lookup.set_index("contact_id")["account_id"]
    parts = ddf.to_delayed()
    found = dask.compute(*[dask.delayed(_frame_accounts)(p, lookup_s) for p in parts])
    acc_sets = [f[0] for f in found]
    unattributable_times = np.unique(np.concatenate([f[1] for f in found])) if found else np.array([], np.int64)
    all_ids = pd.concat(acc_sets, ignore_index=True) if acc_sets else pd.Series([], dtype=object)
    owners = pd.DataFrame({"account_id": all_ids,
                           "part": np.repeat(np.arange(len(acc_sets)), [len(x) for x in acc_sets])})
    split = owners[owners.duplicated("account_id", keep=False)]
    if len(split):
        a, where = split["account_id"].iloc[0], split.loc[split["account_id"] == split["account_id"].iloc[0], "part"]
        raise ValueError(f"the Dask DataFrame is not partitioned by account: account {a!r} is in partitions "
                         f"{where.tolist()} ({split['account_id'].nunique()} accounts are split). Write it with "
                         "abmkit.scale.partition_by_account(ddf, n, out_dir, dataset=...) or shuffle it on the "
                         "resolved account_id first")
    owner = owners.set_index("account_id")["part"]
    n = len(parts)

    def part_of(ids):
        # accounts without touches go to one extra partition (no_touch conversions, unaware stages)
        return pd.Series(ids, dtype=object).map(owner).fillna(n).to_numpy(dtype=np.int64)

    small = [dict() for _ in range(n + 1)]
    for t in _ACCOUNT_TABLES:
        df = getattr(dataset, t)
        if t == "contacts":
            acc = df["contact_id"].map(lookup_s)
            df, key = df[acc.notna().to_numpy()], acc[acc.notna()].to_numpy(dtype=object)
        else:
            key = df["account_id"].to_numpy(dtype=object)
        p = part_of(key)
        for i in range(n + 1):
            small[i][t] = df[p == i]
    p = part_of(lookup["account_id"].to_numpy(dtype=object))
    for i in range(n + 1):
        small[i]["contact_accounts"] = lookup[p == i]
    return _DaskFramePartitions(ddf, small, dataset.campaigns, n + 1, {"npartitions": n + 1}, unattributable_times)


def _assemble(tp, small: dict, campaigns: pd.DataFrame, lookup=None) -> tuple[Dataset, pd.DataFrame]:
    tp = empty_table("touchpoints") if tp is None else coerce_table(tp, "touchpoints")
    if lookup is not None and len(tp):
        own = _resolved_accounts(tp, lookup)
        tp = tp[~pd.isna(own)].assign(account_id=own[~pd.isna(own)])
    ds = Dataset(touchpoints=tp, campaigns=campaigns, **{t: small[t] for t in _ACCOUNT_TABLES})
    return ds, small["contact_accounts"]


def partitions(source, *, dataset: Dataset | None = None, contact_accounts: pd.DataFrame | None = None,
               npartitions: int | None = None, work_dir=None):
    """Normalise any accepted source to something the scale functions iterate over.

    - :class:`PartitionedDataset` or a folder holding ``abmkit_partitions.json``: as is.
    - a canonical dataset folder or a Dataset: partitioned with
      :func:`partition_by_account` into ``work_dir`` (a temporary folder by default;
      ``npartitions`` default: one per ~500k touches, at least 2). A folder's copy in
      ``work_dir`` is reused while its files and the mapping (``contact_accounts``,
      e.g. ``load_resolved(folder).contact_accounts``) are those it was written from.
    - a Dask DataFrame of touchpoints: used partition by partition (each must hold
      whole accounts; checked), the other tables from ``dataset``.
    """
    if isinstance(source, (PartitionedDataset, _DaskFramePartitions)):
        return source
    if _is_dask(source):
        return _from_dask_frame(source, dataset, contact_accounts)
    if not isinstance(source, Dataset) and (Path(source) / MANIFEST).exists():
        return PartitionedDataset.open(source)
    if npartitions is None:
        if isinstance(source, Dataset):
            n_rows = len(source.touchpoints)
        else:
            import pyarrow.dataset as pads
            tp = Path(source) / "touchpoints.parquet"
            n_rows = pads.dataset(tp if tp.exists() else Path(source) / "touchpoints", format="parquet").count_rows()
        npartitions = max(2, math.ceil(n_rows / 500_000))
    if work_dir is None:
        work = Path(tempfile.mkdtemp(prefix="abmkit-parts-"))
    else:
        work = Path(work_dir)
        if (work / MANIFEST).exists():
            old = PartitionedDataset.open(work)
            if (not isinstance(source, Dataset) and old.manifest.get("source") == _fingerprint(source)
                    and "touchpoints_via_contact" in old.manifest  # older copies lack what data.summary reads
                    and old.manifest.get("mapping") == (None if contact_accounts is None
                                                        else _mapping_fingerprint(contact_accounts))):
                return old  # same source files and mapping as when it was written: reuse
        elif work.exists() and any(work.iterdir()):
            raise FileExistsError(f"{work} is neither empty nor a partitioned dataset; choose another work_dir")
    return partition_by_account(source, npartitions, work, dataset=dataset, contact_accounts=contact_accounts,
                                overwrite=True)


def _mapping_fingerprint(contact_accounts: pd.DataFrame) -> str:
    """Digest of the contact → account rows partitioning uses (a contact's first row
    with an account), to reuse a partitioned copy only with the same mapping."""
    import hashlib

    from ..hashing import string_hash
    # string_hash reads the Arrow buffers (no Python string per contact: 3 million contacts
    # at 10^8 touches), and the first row per contact is found on the 64-bit hashes
    m = contact_accounts[contact_accounts["account_id"].notna()]
    c, a = string_hash(m["contact_id"]), string_hash(m["account_id"])
    first = ~pd.Series(c).duplicated().to_numpy()
    return hashlib.sha256(c[first].tobytes() + a[first].tobytes()).hexdigest()


def _fingerprint(source) -> dict | None:
    """Size and modification time of a folder source's parquet files (to reuse a
    partitioned copy only while the source is unchanged)."""
    if isinstance(source, Dataset) or _is_dask(source):
        return None
    root = Path(source)
    files = sorted(root.glob("*.parquet")) + sorted((root / "touchpoints").glob("**/*.parquet"))
    return {str(f.relative_to(root)): [f.stat().st_size, f.stat().st_mtime_ns] for f in files}


def _loaders(parts) -> list:
    """One dask.delayed (Dataset, contact_accounts) per partition."""
    _require_scale()
    import dask
    if isinstance(parts, PartitionedDataset):
        return [dask.delayed(parts.load, pure=True)(i) for i in range(parts.npartitions)]
    lookups = None
    out = []
    delayed_parts = parts.ddf.to_delayed()
    for i in range(parts.npartitions):
        tp = delayed_parts[i] if i < len(delayed_parts) else None
        small = parts.small[i]
        if lookups is None:
            lookups = pd.concat([s["contact_accounts"] for s in parts.small]).set_index("contact_id")["account_id"]
        out.append(dask.delayed(_assemble, pure=True)(tp, small, parts.campaigns, lookups))
    return out


# --------------------------------------------------------------------------- data span
def _opportunity_span(opps: pd.DataFrame, accounts: pd.DataFrame, as_of_ns: int | None) -> dict:
    """Extremes of the opportunities: of known accounts (``o_min``, ``o_max``,
    ``w_max``) and the last creation or won close of any (``o_any_max``), up to ``as_of``."""
    o_known = opps["account_id"].isin(accounts["account_id"]).to_numpy()
    o_created = to_ns_or_inf(opps["created_at"]) if len(opps) else np.array([], np.int64)
    o_closed = to_ns_or_inf(opps["closed_at"]) if len(opps) else np.array([], np.int64)
    is_won = opps["is_won"].fillna(False).to_numpy(dtype=bool)
    seen_c, seen_w = o_created != NS_INF, is_won & (o_closed != NS_INF)
    if as_of_ns is not None:
        o_known &= o_created <= as_of_ns
        seen_c &= o_created <= as_of_ns
        seen_w &= o_closed <= as_of_ns
    won = o_known & is_won & (o_closed != NS_INF)
    if as_of_ns is not None:
        won &= o_closed <= as_of_ns
    return {"o_min": _ext(o_created[o_known], np.min), "o_max": _ext(o_created[o_known], np.max),
            "w_max": _ext(o_closed[won], np.max),
            "o_any_max": _ext(np.r_[o_created[seen_c], o_closed[seen_w]], np.max)}


def _ext(a, f):
    return int(f(a)) if len(a) else None
