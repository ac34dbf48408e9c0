"""Scale out: the kit's per-account analyses on Dask (see docs/scale.md).

Every heavy step of the kit is a map over accounts followed by a reduce, so it
partitions by account: each partition holds *whole accounts* (all their touches,
contacts, opportunities), runs the **same pandas functions** of the kit (journeys,
attribution models, stage history, campaign influence, KPIs) and returns a small
result; the results are then summed. What is not a plain sum is additive too:

- Markov: the transition *counts* of the absorbing chain (``src → dst`` weights and
  values) add up over partitions; the chain is solved once from the global counts,
  and touch-level Markov credits use those global removal effects.
- Shapley: each conversion's split over the distinct channels of its journey is
  local (a unanimity game), so channel sums add up to the exact Shapley values.
- Each partition runs them on its own resolved dataset (:func:`abmkit.prepare` with
  the partition's contact → account mapping, never mapped again); stage history and
  MQA dates need two global numbers (the data start and end, the latter the
  ``data_end`` of ``prepare`` on the whole data): they come from the partitioning
  manifest or a first pass, then every partition gets them explicitly.

What runs where:

- :func:`channel_credits`, :func:`compare_models`, :func:`attribute` (lazy touch-level
  frame), :func:`campaign_credits`, :func:`sensitivity`, :func:`journey_credits`:
  attribution on the partitions.
- :func:`stage_history`, :func:`campaign_influence` (full result: the partitions
  reduce the touches to the first exposure of each unit and account, the statistics
  run once on that), :func:`campaign_influence_counts` (the additive counts alone),
  :func:`transition_baseline` (exact when it fits, else on a sample of partitions).
- :func:`kpi_aggregates`: the KPIs whose numerator and denominator are sums.

Typical use::

    from abmkit import scale
    parts = scale.partition_by_account("data/big/canonical", 64, "data/big/by_account")
    with scale.client() as c:                      # LocalCluster; or scale.client("tcp://host:8786")
        credits = scale.channel_credits(parts, ["linear", "w_shaped", "markov"])
        history = scale.stage_history(parts)

Sources accepted by every function: a :class:`PartitionedDataset` (or the folder
written by :func:`partition_by_account`), a canonical dataset folder or
:class:`~abmkit.schema.Dataset` (partitioned on the fly into a temporary folder),
or a Dask DataFrame of touchpoints whose partitions hold whole accounts, with the
other tables given as ``dataset=`` (see :func:`partitions`).

See docs/scale.md for when to switch, pointing at a cluster, and memory sizing.

Example
-------
>>> import abmkit.scale as scale                                             # doctest: +SKIP
>>> parts = scale.partition_by_account(ds, 8, "/tmp/parts")                  # doctest: +SKIP
>>> scale.channel_credits(parts, "linear").credits.head()                    # doctest: +SKIP
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

from ._extras import require
from .results import Result
from .schema import CHANNEL_DTYPE, ENGAGEMENT_TOUCH_TYPES, TABLES, Dataset, coerce_table, empty_table
from .timeutil import NS_INF, to_ns_or_inf, utc_timestamp

MANIFEST = "abmkit_partitions.json"
#: tables split by account; campaigns are small and go to every partition whole
_ACCOUNT_TABLES = ("accounts", "contacts", "opportunities", "revenue")
_FORMAT = 2


def _require_scale() -> None:
    """dask and distributed (the ``scale`` extra) or an error naming the pip command:
    this module imports them only where they run, so the notebooks can import it
    without them and stay on the pandas path."""
    require("scale", "abmkit.scale (the dask engine)")


__all__ = ["partition_of", "partition_by_account", "PartitionedDataset", "partitions", "client",
           "attribute", "channel_credits", "ChannelCredits", "markov_counts", "chain_from_counts",
           "stage_history", "campaign_influence_counts", "kpi_aggregates", "compare_models", "campaign_credits",
           "sensitivity", "journey_credits", "ADDITIVE_KPIS", "campaign_influence",
           "transition_baseline"]


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
    from .hashing import string_hash
    return (string_hash(ids) % np.uint64(npartitions)).astype(np.int64)


@dataclass
class PartitionedDataset:
    """A dataset written by :func:`partition_by_account`: ``root/<table>/part-NNNNN``.

    Attributes
    ----------
    root : Path
    npartitions : int
    manifest : dict
        row counts in and out, unattributable touches, data span.
    """
    root: Path
    npartitions: int
    manifest: dict = field(default_factory=dict)

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
        """Every table but the touchpoints, gathered (accounts in the source's order):
        the account-sized part of the data, for the steps that need it whole."""
        tables = {t: pd.concat([self._read(t, i) for i in range(self.npartitions)], ignore_index=True)
                  for t in _ACCOUNT_TABLES}
        unmapped = self.unmapped_contacts()
        if len(unmapped):  # contacts of no account live aside; the contact funnel counts them too
            tables["contacts"] = pd.concat([tables["contacts"], _canonical(unmapped, "contacts", trusted=True)],
                                           ignore_index=True)
        order = self.root / "account_order.parquet"
        if order.exists() and len(tables["accounts"]):
            ids = pd.read_parquet(order)["account_id"]
            acc = tables["accounts"].set_index("account_id", drop=False)
            tables["accounts"] = acc.loc[ids[ids.isin(acc.index)]].reset_index(drop=True)
        return Dataset(campaigns=self.campaigns(), **tables)

    def campaigns(self) -> pd.DataFrame:
        """The campaigns table (small; every partition shares it)."""
        return _canonical(pd.read_parquet(self.root / "campaigns.parquet"), "campaigns", trusted=True)

    def unmapped_contacts(self) -> pd.DataFrame:
        """Contacts that map to no account (their touches are unattributable)."""
        f = self.root / "unattributable" / "contacts.parquet"
        return pd.read_parquet(f) if f.exists() else empty_table("contacts")


def _canonical(df: pd.DataFrame, table: str, *, trusted: bool = False, source: str | None = None) -> pd.DataFrame:
    """:func:`abmkit.schema.coerce_table`, skipping columns already at their canonical
    dtype (string ids are not re-checked value by value: that Python-level pass is the
    slowest part of loading 10^8 touches). ``trusted``: files this module wrote."""
    from .schema import KIND_DTYPES, coerce_column
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

    from .schema import coerce_column
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
    from .schema import KIND_DTYPES
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
    from tqdm import tqdm
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
        bar = tqdm(desc="partition touches", unit=" rows", disable=None if progress is None else not progress,
                   leave=False)
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
    mapping = None if contact_accounts is None else _mapping_fingerprint(contact_accounts)
    if contact_accounts is None:
        from .mapping import map_contacts
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
        done, info = _write_tables(out, small, source, resolver, pending, batch_rows, progress)
    except BaseException:
        # the caller removes the folder: running chunk tasks finish first (they write into it)
        if pending is not None and pending[0]:
            from distributed import wait
            wait(pending[1])
        raise
    n_in, n_part, n_unattr, touch_span = _sum_batches(done)
    counts = info["counts"]
    manifest = {"format": _FORMAT, "npartitions": npartitions, "touchpoints_in": n_in,
                "touchpoints_partitioned": n_part, "touchpoints_unattributable": n_unattr,
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

        from .hashing import as_arrow_strings, string_hash
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

        from .hashing import as_arrow_strings, string_hash
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

        from .hashing import as_arrow_strings
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


def _active_client():
    """The active ``dask.distributed`` client, or None when there is none (the tasks
    then run on dask's local scheduler). dask and distributed are the ``scale`` extra:
    without them this is an error that says what to install."""
    _require_scale()
    from distributed import get_client
    try:
        return get_client()
    except ValueError:  # distributed's "No global client found": a normal local run
        return None


def _share(obj):
    """``obj`` for tasks: scattered once to every worker of the active distributed
    client (not embedded in the task graph), else a delayed constant."""
    import dask
    c = _active_client()
    if c is not None:
        return c.scatter(obj, broadcast=True, hash=False)
    return dask.delayed(obj, pure=True, traverse=False)


def _submit(tasks: list) -> tuple:
    """Start ``tasks`` on the active distributed client (futures: this process goes
    on meanwhile) or, without one, keep them for :func:`_gather` to run."""
    c = _active_client()
    if c is not None:
        return True, c.compute(tasks)
    return False, tasks


def _gather(pending: tuple, desc: str, progress: bool | None = None) -> list:
    """Results of :func:`_submit`, in task order, with a progress bar (tqdm: quiet
    when not on a terminal unless ``progress=True``)."""
    _require_scale()
    import dask
    from tqdm import tqdm
    started, items = pending
    bar = tqdm(total=len(items), desc=desc, unit=" task", disable=None if progress is None else not progress,
               leave=False)
    try:
        if started:
            from distributed import as_completed
            for _ in as_completed(items):
                bar.update(1)
            return [f.result() for f in items]
        from dask.callbacks import Callback
        top = {t.key for t in items}

        class _Tick(Callback):  # local schedulers: count the tasks asked for as they finish
            def _posttask(self, key, result, dsk, state, worker_id):
                if key in top:
                    bar.update(1)
        with _Tick():
            return list(dask.compute(*items))
    finally:
        bar.close()


def _compute(tasks: list, desc: str, progress: bool | None = None) -> list:
    """``dask.compute(*tasks)`` with a progress bar; results in task order."""
    return _gather(_submit(tasks), desc, progress)


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
             "t_any_max": ext("t_any_max", max)})


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

    from .schema import CHANNELS, TOUCH_TYPES
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
        from .mapping import map_contacts
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
    m = contact_accounts[["contact_id", "account_id"]].dropna(subset=["account_id"]).drop_duplicates("contact_id")
    h = pd.util.hash_pandas_object(m.astype(object), index=False).to_numpy()
    return hashlib.sha256(h.tobytes()).hexdigest()


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


def _map(parts, fn, *args, _progress: tuple = (None, None), **kwargs) -> list:
    """Run ``fn((dataset, contact_accounts), *args, **kwargs)`` on every partition;
    results gathered (they are small: counts, sums, per-account rows), with a
    progress bar named ``_progress[0]`` (on a terminal, or forced by ``_progress[1]``)."""
    _require_scale()
    import dask
    tasks = [dask.delayed(fn, pure=True)(load, *args, **kwargs) for load in _loaders(parts)]
    desc, progress = _progress
    return _compute(tasks, desc or getattr(fn, "__name__", "partitions").strip("_").replace("_", " "), progress)


def client(scheduler: str | None = None, *, n_workers: int = 2, threads_per_worker: int = 1,
           memory_limit: str = "auto", processes: bool = True, **cluster_kwargs):
    """A ``dask.distributed`` Client: connected to ``scheduler`` (e.g.
    ``"tcp://10.0.0.5:8786"``) when given, else on a new LocalCluster. Use it as a
    context manager; every :mod:`abmkit.scale` call then runs on it.

    Example
    -------
    >>> with client() as c:                     # doctest: +SKIP
    ...     scale.stage_history(parts)
    """
    _require_scale()
    from distributed import Client, LocalCluster
    if scheduler:
        return Client(scheduler)
    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker, processes=processes,
                           memory_limit=memory_limit, dashboard_address=":0", **cluster_kwargs)
    return _OwningClient(Client(cluster), cluster)


class _OwningClient:
    """A Client that also closes the LocalCluster it started."""

    def __init__(self, c, cluster):
        self._client, self._cluster = c, cluster

    def __getattr__(self, name):
        return getattr(self._client, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._client.close()
        self._cluster.close()

    def __repr__(self):
        return f"abmkit.scale.client({self._client!r})"


# --------------------------------------------------------------------------- global span
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


def _span(part, as_of_ns: int | None) -> dict:
    """Per partition: the extremes the kit's functions take from the whole data."""
    ds, _ = part
    tp = ds.touchpoints
    t = to_ns_or_inf(tp["occurred_at"]) if len(tp) else np.array([], np.int64)
    ok_t = t != NS_INF
    seen = ok_t if as_of_ns is None else ok_t & (t <= as_of_ns)
    known = tp["account_id"].isin(ds.accounts["account_id"]).to_numpy() & seen
    return {"t_min": _ext(t[known], np.min), "t_max": _ext(t[known], np.max), "t_all_max": _ext(t[ok_t], np.max),
            "t_any_max": _ext(t[seen], np.max), **_opportunity_span(ds.opportunities, ds.accounts, as_of_ns),
            "any_target": bool(ds.accounts["is_target"].fillna(False).astype(bool).any())}


def _unattributable_times(parts) -> np.ndarray:
    """Times (int64 ns) of the touches without any account, which no partition holds."""
    if isinstance(parts, _DaskFramePartitions):
        return parts.unattributable_times
    import pyarrow as pa
    import pyarrow.parquet as pq
    files = sorted((parts.root / "unattributable").glob("touches-*.parquet"))
    cols = [pq.read_table(f, columns=["occurred_at"])["occurred_at"] for f in files]
    cols = [c for c in cols if c.null_count < len(c)]  # a column of nulls only (Arrow type null)
    if not cols:
        return np.array([], np.int64)
    t = pa.chunked_array([c.cast(pa.timestamp("ns", tz="UTC")) for c in cols]).drop_null()
    return t.cast(pa.int64()).to_numpy()


def _global_span(parts, as_of=None) -> dict:
    as_of_ns = None if as_of is None else utc_timestamp(as_of).value
    if as_of is None and isinstance(parts, PartitionedDataset) and "span" in parts.manifest:
        return {**parts.manifest["span"], "as_of_ns": None}  # recorded while partitioning
    spans = _map(parts, _span, as_of_ns)
    t = _unattributable_times(parts)
    if as_of_ns is not None:
        t = t[t <= as_of_ns]
    spans.append({"t_any_max": _ext(t, np.max)})  # the latest touch may be one without account

    def agg(key, f):
        vals = [s[key] for s in spans if s.get(key) is not None]
        return f(vals) if vals else None
    return {k: agg(k, f) for k, f in (("t_min", min), ("t_max", max), ("t_all_max", max), ("t_any_max", max),
                                      ("o_min", min), ("o_max", max), ("w_max", max), ("o_any_max", max))} | {
        "any_target": any(s.get("any_target", False) for s in spans), "as_of_ns": as_of_ns}


def _data_start(span) -> pd.Timestamp | None:
    """Default ``data_start`` of :func:`abmkit.progression.stage_history`: the day of
    the first touch or opportunity (of known accounts, up to ``as_of``)."""
    starts = [x for x in (span["t_min"], span["o_min"]) if x is not None]
    return pd.Timestamp(min(starts), tz="UTC").floor("D") if starts else None


def _data_end(span) -> pd.Timestamp:
    """The whole data's censoring date, as :func:`abmkit.prepare` sets it
    (:attr:`~abmkit.prepared.ResolvedDataset.data_end`): the last observation (any
    touch, opportunity creation or won close), not after ``as_of``. Every partition's
    resolved dataset gets it (:func:`_resolved`)."""
    if "t_any_max" in span and "o_any_max" in span:
        ends = [x for x in (span["t_any_max"], span["o_any_max"]) if x is not None]
    else:  # a folder partitioned before these were recorded: the known accounts' ends
        ends = [x for x in (span["t_max"], span["o_max"], span["w_max"]) if x is not None]
    last = pd.Timestamp(max(ends), tz="UTC") if ends else pd.NaT
    if span["as_of_ns"] is None:
        return last
    as_of = pd.Timestamp(span["as_of_ns"], tz="UTC")
    return as_of if pd.isna(last) else min(as_of, last)


# --------------------------------------------------------------------------- Markov counts
def markov_counts(chain) -> pd.DataFrame:
    """Additive transition counts of a Markov chain
    (:func:`abmkit.attribution.markov.chain_counts`)."""
    from .attribution.markov import chain_counts
    return chain_counts(chain)


def chain_from_counts(counts: pd.DataFrame, n_channels: int, order: int = 1):
    """The chain of summed counts (:func:`abmkit.attribution.markov.chain_from_counts`)."""
    from .attribution.markov import chain_from_counts as _cfc
    return _cfc(counts, n_channels, order)


def _markov_from_counts(counts: pd.DataFrame, n_channels: int, order: int, totals: dict) -> dict:
    """Path-level Markov channel credits (the :func:`compare_models` convention:
    removal effects normalised once to the totals)."""
    from .attribution.markov import removal_effects
    out = {}
    for col, kind, use_value in (("conversions", "pipeline", False), ("pipeline", "pipeline", True),
                                 ("revenue", "revenue", True)):
        sub = counts[counts["kind"] == kind]
        if sub.empty:
            out[col] = np.zeros(n_channels)
            continue
        re_c, re_v, _, _ = removal_effects(chain_from_counts(sub, n_channels, order))
        re = re_v if use_value else re_c
        out[col] = re / re.sum() * totals[col] if re.sum() > 0 else np.zeros(n_channels)
    return out


# --------------------------------------------------------------------------- attribution
def _models(model) -> list:
    from .attribution import ALL_MODELS
    models = [model] if isinstance(model, str) else list(model)
    unknown = [m for m in models if m not in ALL_MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; models are {list(ALL_MODELS)}")
    return models


def _resolved(part, span, *, as_of=None, mqa_dates: pd.DataFrame | None = None):
    """A partition as the :class:`~abmkit.prepared.ResolvedDataset` the pandas
    analyses take: its tables, its own contact → account mapping (used as given:
    nothing is mapped again) and the *whole data's* ``data_end`` (:func:`_data_end`).
    A partition holds whole accounts, so every per-account result (stage entries, MQA
    dates, journeys) is then the one of the whole data.

    ``mqa_dates``: the whole data's ``account_id, mqa_at``, given to the partition
    (its accounts' rows) instead of evaluating its MQA rule. ``span`` None: the
    caller does not use ``data_end`` (e.g. a stage history is given)."""
    from .prepared import prepare
    ds, ca = part
    end = pd.NaT if span is None else _data_end(span)
    data = prepare(ds, mapping=ca, data_end=None if pd.isna(end) else end, as_of=as_of)
    if mqa_dates is not None:
        mine = mqa_dates[mqa_dates["account_id"].isin(ds.accounts["account_id"]) |
                         mqa_dates["account_id"].isin(ds.touchpoints["account_id"])]
        data.memo(("mqa_dates",), lambda: mine)
    return data


def _mqa_dates(data) -> pd.DataFrame:
    """``data.mqa_dates`` (the partition's MQA rule up to the global ``data_end``),
    faster: the default rule counts decision makers with engagement touches, so
    only those touches can change it and the others are left out."""
    from .engagement import first_mqa_times
    from .prepared import prepare
    rule = data.mqa_rule
    if rule.mqa_score is not None:  # a score threshold: every touch counts
        return first_mqa_times(data)
    ds = data.tables
    tp = ds.touchpoints
    dm = ds.contacts.loc[ds.contacts["persona"] == "decision_maker", "contact_id"]
    eng = tp[tp["contact_id"].isin(dm).to_numpy() & tp["touch_type"].isin(ENGAGEMENT_TOUCH_TYPES).to_numpy()]
    few = Dataset(accounts=ds.accounts, contacts=ds.contacts, touchpoints=eng, campaigns=ds.campaigns,
                  opportunities=ds.opportunities, revenue=ds.revenue)
    return prepare(few, mapping=data.contact_accounts, mqa=rule, as_of=data.as_of,
                   data_end=None if pd.isna(data.data_end) else data.data_end).mqa_dates


def _journeys(part, models, span, journey_kw, params):
    """:func:`abmkit.attribution.journeys_for` on a partition (``(dataset,
    contact_accounts)``, or its :func:`_resolved` dataset when several calls share it)."""
    from .attribution import MQA_MODELS, journeys_for
    data = part if not isinstance(part, tuple) else _resolved(part, span, mqa_dates=journey_kw.get("mqa_dates"))
    ms = params.get("milestone_weights") or {}
    if any(m in MQA_MODELS for m in models) or ("custom" in models and "mqa" in ms):
        # computed here unless given (or already computed): the fast way
        data.memo(("mqa_dates",), lambda: _mqa_dates(data))
    kw = {k: v for k, v in journey_kw.items() if k != "mqa_dates"}
    return journeys_for(data, models, **kw, **params)


def _part_channel_credits(part, models, span, journey_kw, params, boot=None):
    """One partition's channel credits per model, Markov chain counts, and with
    ``boot = (n_boot, seed)`` its share of every Poisson bootstrap replicate (credit
    sums per model; Markov: re-weighted transition counts keyed by state codes)."""
    return _credits_from_journeys(_journeys(part, models, span, journey_kw, params), models, params, boot)


def _credits_from_journeys(cj, models, params, boot=None) -> dict:
    """:func:`_part_channel_credits` on journeys already built."""
    from .attribution.compare import poisson_weights, replicable
    from .attribution.engine import channel_credits_from, touch_credits
    from .attribution.markov import build_chain, transition_type_codes
    conv = cj.conversions
    with_touch = conv["n_touches"].to_numpy() > 0
    rule = [m for m in models if m != "markov"]
    boot_out = None
    if boot is not None:
        n_boot, seed = boot
        rep = replicable(cj, rule + (["markov"] if "markov" in models else []), n_boot, params,
                         markov_credits=False)
        credits = rep.credits[rep.credits["model"].isin(rule)] if rule else None
        sums = rep.replicates(n_boot, models, lambda first, b: poisson_weights(rep.group_accounts, seed, first, b))
        mk = None
        if "markov" in sums:  # transition counts keyed by state codes: they add up over partitions
            mk = [*transition_type_codes(rep.markov_chain, rep.incidence[0]), sums.pop("markov")]
        boot_out = {"sums": sums, "markov": mk}
    else:
        credits = pd.concat([channel_credits_from(cj, touch_credits(cj, m, **params)).assign(model=m)
                             for m in rule], ignore_index=True) if rule else None
    counts = None
    if "markov" in models:
        order = params.get("order", 1)
        counts = pd.concat([markov_counts(build_chain(cj.paths(v), order)).assign(kind=k)
                            for k, v in (("pipeline", "pipeline_amount"), ("revenue", "revenue_amount"))],
                           ignore_index=True)
    s = cj.info
    return {"credits": credits, "markov": counts, "boot": boot_out,
            "seen": np.bincount(cj.channel, minlength=len(cj.channels)) > 0,
            "channels": list(cj.channels),
            "given": (float(with_touch.sum()), float(conv["pipeline_amount"].to_numpy()[with_touch].sum()),
                      float(conv["revenue_amount"].to_numpy()[with_touch].sum())),
            "summary": {k: v for k, v in s.items() if k not in ("milestone", "lookback_days")},
            "no_touch": cj.no_touch[["conversion_id", "account_id", "converted_at", "amount"]]}


def _boot_replicates(res: list, models, k: int, order: int, n_boot: int) -> dict:
    """Every model's replicate credit sums over all partitions (replicates x
    channels); Markov replicates solved once from the summed transition counts."""
    from .attribution.compare import markov_replicates
    from .attribution.markov import transition_type_codes
    reps = {m: np.sum([r["boot"]["sums"][m] for r in res], axis=0) if res else np.zeros((n_boot, k))
            for m in models if m != "markov"}
    if "markov" in models:
        counts = pd.concat([r["markov"] for r in res], ignore_index=True)
        sub = counts[counts["kind"] == "pipeline"]
        if not len(sub):
            reps["markov"] = np.zeros((n_boot, k))
            return reps
        chain = chain_from_counts(sub, k, order)
        n = chain.n_states + 1
        types = chain.src * (n + 2) + chain.dst
        src, dst = transition_type_codes(chain, types)
        where = pd.Series(np.arange(len(types)), index=pd.MultiIndex.from_arrays([src, dst]))
        tw = np.zeros((n_boot, len(types)))
        for r in res:
            mk = r["boot"]["markov"]
            if mk is not None and len(mk[0]):
                tw[:, where.loc[list(zip(mk[0], mk[1]))].to_numpy()] += mk[2]
        reps["markov"] = markov_replicates(chain, types, tw)
    return reps


@dataclass
class ChannelCredits(Result):
    """Output of :func:`channel_credits`.

    Attributes
    ----------
    credits : DataFrame
        long: channel, model, conversions, pipeline, revenue (every taxonomy channel;
        the same table as ``compare_models(...).credits``).
    conservation : DataFrame
        per model: given and credited conversions / pipeline / revenue, ``ok``.
    no_touch : DataFrame
        conversions without touches in their window (reported, not credited).
    info : dict
        journey counts (as ``ConversionJourneys.info``) and the partition count.
    removal_effects : ndarray or None
        global Markov removal effects (conversions), per taxonomy channel.
    channels_seen : list
        channels that occur in converting journeys (the rows of the share tables).
    low, high : DataFrame or None
        with ``n_boot``: percentile bounds of each model's channel shares (channel ×
        model) over Poisson bootstrap replicates of accounts.
    """
    credits: pd.DataFrame
    conservation: pd.DataFrame
    no_touch: pd.DataFrame
    info: dict
    removal_effects: np.ndarray | None = None
    channels_seen: list = field(default_factory=list)
    low: pd.DataFrame | None = None
    high: pd.DataFrame | None = None

    def to_frame(self) -> pd.DataFrame:
        return self.credits

    def shares(self) -> pd.DataFrame:
        """channel × model share of credited conversions (channels seen in journeys)."""
        wide = self.credits.pivot(index="channel", columns="model", values="conversions")
        wide = wide[wide.sum(axis=1) > 0].reindex(columns=list(dict.fromkeys(self.credits["model"])))
        return wide / wide.sum()

    _summary_title = "Channel credits"

    def _summary_metadata(self) -> dict:
        return {**{k: v for k, v in self.info.items() if not isinstance(v, (list, dict, tuple))},
                "all_credits_conserved": bool(self.conservation["ok"].all()) if len(self.conservation) else True}

    @property
    def summary(self) -> pd.DataFrame:
        """One row per model: conversions, pipeline and revenue credited and whether
        they equal what was given (``conserved``); the journey counts are in :attr:`info`."""
        c = self.conservation
        if not len(c):
            return pd.DataFrame(columns=["model", "conversions", "pipeline", "revenue", "conserved"])
        return pd.DataFrame({"model": c["model"], "conversions": c["conversions_credited"],
                             "pipeline": c["pipeline_credited"], "revenue": c["revenue_credited"],
                             "conserved": c["ok"]}).reset_index(drop=True)


def _journey_kw(milestone, lookback_days, mqa_dates, start, end):
    return {"milestone": milestone, "lookback_days": lookback_days, "mqa_dates": mqa_dates, "start": start,
            "end": end}


def channel_credits(source, model=("first_touch", "last_touch", "linear", "time_decay", "u_shaped", "w_shaped",
                                   "j_shaped", "inverse_j", "markov", "shapley"), *,
                    milestone: str = "opportunity_created", lookback_days: float = 365, mqa_dates=None,
                    start=None, end=None, dataset: Dataset | None = None, contact_accounts=None,
                    n_boot: int = 0, seed: int = 0, alpha: float = 0.05, progress: bool | None = None,
                    **params) -> ChannelCredits:
    """Channel credits of every model over all partitions.

    Each partition builds its journeys and runs the models with the kit's own
    functions (:func:`abmkit.attribution.journeys_for`,
    :func:`abmkit.attribution.engine.touch_credits`); position models and Shapley are
    summed; Markov transition counts are summed and the chain solved once.

    ``n_boot``: bootstrap intervals in the same pass. Accounts are resampled with
    Poisson(1) weights that depend only on (seed, replicate, account id)
    (:func:`abmkit.attribution.compare.poisson_weights`), so each partition adds its
    share of every replicate: credit sums per model, re-weighted transition counts
    for Markov (the replicate chains are solved once, on the driver).

    Returns
    -------
    ChannelCredits
        ``credits`` equals ``abmkit.attribution.compare_models(ds, models, n_boot=0).credits``;
        ``low``/``high`` equal ``compare_models(ds, models, n_boot, seed, bootstrap="poisson")``'s.
    """
    models = _models(model)
    parts = partitions(source, dataset=dataset, contact_accounts=contact_accounts)
    span = _global_span(parts)
    res = _map(parts, _part_channel_credits, models, span,
               _journey_kw(milestone, lookback_days, mqa_dates, start, end), params,
               (n_boot, seed) if n_boot else None, _progress=("attribution", progress))
    cc = _reduce_credits(res, models, params, {"milestone": milestone, "lookback_days": lookback_days}, parts)
    if n_boot and cc.conservation["conversions_given"].sum() > 0:
        from .attribution.compare import percentile_bounds
        channels = res[0]["channels"]
        reps = _boot_replicates(res, models, len(channels), params.get("order", 1), n_boot)
        cc.low, cc.high = percentile_bounds(reps, models, channels, cc.channels_seen, alpha)
        cc.info["bootstrap"] = "poisson"
    return cc


def _reduce_credits(res: list, models, params, info: dict, parts) -> ChannelCredits:
    """Sum the partitions' :func:`_part_channel_credits` results into ChannelCredits
    (Markov: summed transition counts, chain solved once)."""
    channels = res[0]["channels"] if res else list(CHANNEL_DTYPE.categories)
    k = len(channels)
    given = np.sum([r["given"] for r in res], axis=0) if res else np.zeros(3)
    frames = [r["credits"] for r in res if r["credits"] is not None]
    summed = (pd.concat(frames).groupby(["model", "channel"], sort=False)[["conversions", "pipeline", "revenue"]]
              .sum() if frames else None)
    rows, conservation, re_out = [], [], None
    for m in models:
        if m == "markov":
            counts = pd.concat([r["markov"] for r in res], ignore_index=True)
            mc = _markov_from_counts(counts, k, params.get("order", 1),
                                     {"conversions": given[0], "pipeline": given[1], "revenue": given[2]})
            from .attribution.markov import removal_effects
            sub = counts[counts["kind"] == "pipeline"]
            re_out = removal_effects(chain_from_counts(sub, k, params.get("order", 1)))[0] if len(sub) \
                else np.zeros(k)
            c = pd.DataFrame({"channel": channels, "model": m, "conversions": mc["conversions"],
                              "pipeline": mc["pipeline"], "revenue": mc["revenue"]})
        else:
            c = summed.loc[m].reindex(channels, fill_value=0.0).reset_index()
            c.insert(1, "model", m)
        rows.append(c[["channel", "model", "conversions", "pipeline", "revenue"]])
        got = c[["conversions", "pipeline", "revenue"]].sum().to_numpy(float)
        conservation.append({"model": m, "conversions_given": given[0], "conversions_credited": got[0],
                             "pipeline_given": given[1], "pipeline_credited": got[1],
                             "revenue_given": given[2], "revenue_credited": got[2],
                             "ok": bool(np.allclose(given, got, rtol=1e-9, atol=1e-6))})
    info = dict(info)
    for key in (res[0]["summary"] if res else {}):
        info[key] = sum(r["summary"][key] for r in res)
    info["partitions"] = len(res)
    if isinstance(parts, PartitionedDataset):
        info["unattributable_touches"] = info.get("unattributable_touches", 0) + parts.manifest.get(
            "touchpoints_unattributable", 0)
    no_touch = pd.concat([r["no_touch"] for r in res], ignore_index=True) if res else pd.DataFrame()
    seen = np.logical_or.reduce([r["seen"] for r in res]) if res else np.zeros(k, bool)
    return ChannelCredits(pd.concat(rows, ignore_index=True), pd.DataFrame(conservation),
                          no_touch.sort_values("conversion_id", ignore_index=True) if len(no_touch) else no_touch,
                          info, re_out, [c for c, ok in zip(channels, seen) if ok])


def _part_markov_counts(part, span, journey_kw, params):
    from .attribution.markov import build_chain
    cj = _journeys(part, ["markov"], span, journey_kw, params)
    return markov_counts(build_chain(cj.paths(), params.get("order", 1))), list(cj.channels)


def _part_attribute(part, models, span, journey_kw, params):
    from .attribution import attribute_journeys
    cj = _journeys(part, models, span, journey_kw, params)
    frames = [attribute_journeys(cj, m, **params) for m in models]
    out = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return out


def attribute(source, model, *, milestone: str = "opportunity_created", lookback_days: float = 365,
              mqa_dates=None, start=None, end=None, dataset: Dataset | None = None, contact_accounts=None,
              **params):
    """Touch-level credits of ``model`` (one or several) as a **lazy Dask DataFrame**
    with the columns of :func:`abmkit.attribution.attribute` (one partition per account
    partition). For Markov the removal effects are first estimated from the global
    transition counts, so every touch's credit equals the pandas path.

    Example
    -------
    >>> credits = scale.attribute(parts, ["linear", "markov"])                     # doctest: +SKIP
    >>> credits.groupby("campaign_id")["pipeline_credit"].sum().compute()         # doctest: +SKIP
    """
    _require_scale()
    import dask
    import dask.dataframe as dd
    models = _models(model)
    parts = partitions(source, dataset=dataset, contact_accounts=contact_accounts)
    span = _global_span(parts)
    jkw = _journey_kw(milestone, lookback_days, mqa_dates, start, end)
    params = _with_removal_effects(parts, models, span, jkw, dict(params))
    tasks = [dask.delayed(_part_attribute, pure=True)(load, models, span, jkw, params) for load in _loaders(parts)]
    meta = pd.DataFrame({"conversion_id": pd.Series([], dtype=object), "account_id": pd.Series([], dtype=object),
                         "touchpoint_id": pd.Series([], dtype=object),
                         "channel": pd.Series([], dtype=CHANNEL_DTYPE), "campaign_id": pd.Series([], dtype=object),
                         "model": pd.Series([], dtype=object), "credit": pd.Series([], dtype=float),
                         "pipeline_credit": pd.Series([], dtype=float), "revenue_credit": pd.Series([], dtype=float)})
    return dd.from_delayed(tasks, meta=meta, verify_meta=False)


def _part_campaign_credits(part, models, span, journey_kw, params):
    from .attribution import aggregate_credits
    return aggregate_credits(_part_attribute(part, models, span, journey_kw, params).assign(
        campaign_id=lambda d: d["campaign_id"].fillna("(no campaign)")), ["campaign_id", "model"])


def campaign_credits(source, model, *, milestone: str = "opportunity_created", lookback_days: float = 365,
                     mqa_dates=None, start=None, end=None, dataset: Dataset | None = None, contact_accounts=None,
                     **params) -> pd.DataFrame:
    """Credits per campaign × model (``campaign_id, model, credit, pipeline_credit,
    revenue_credit``; touches without a campaign as ``(no campaign)``), summed over
    partitions without gathering touch-level rows. Feed it to
    :func:`abmkit.attribution.campaign_table` like a touch-level credits frame."""
    models = _models(model)
    parts = partitions(source, dataset=dataset, contact_accounts=contact_accounts)
    span = _global_span(parts)
    jkw = _journey_kw(milestone, lookback_days, mqa_dates, start, end)
    params = _with_removal_effects(parts, models, span, jkw, dict(params))
    res = _map(parts, _part_campaign_credits, models, span, jkw, params)
    out = pd.concat(res, ignore_index=True).groupby(["campaign_id", "model"], sort=False)[
        ["credit", "pipeline_credit", "revenue_credit"]].sum().reset_index()
    order = {m: i for i, m in enumerate(models)}
    return out.sort_values(["model", "campaign_id"], key=lambda c: c.map(order) if c.name == "model" else c,
                           ignore_index=True)


_JOURNEY_PARAMS = ("lookback_days", "milestone")


def _part_sensitivity(part, model, param, values, span, journey_kw, params) -> list:
    """One partition's credits for every value of ``param``: journeys are built
    once (per value only when ``param`` changes the journeys)."""
    out, cj = [], None
    data = _resolved(part, span, mqa_dates=journey_kw.get("mqa_dates"))  # journeys memoised on it
    for v in values:
        jkw, mp = dict(journey_kw), dict(params)
        if param in _JOURNEY_PARAMS:
            jkw[param] = v
            cj_v = _journeys(data, [model], span, jkw, mp)
        else:
            mp[param] = v
            cj = cj if cj is not None else _journeys(data, [model], span, jkw, mp)
            cj_v = cj
        out.append(_credits_from_journeys(cj_v, [model], mp))
    return out


def sensitivity(source, model: str, param: str, values, *, milestone: str = "opportunity_created",
                lookback_days: float = 365, mqa_dates=None, start=None, end=None, dataset: Dataset | None = None,
                contact_accounts=None, progress: bool | None = None, **params) -> pd.DataFrame:
    """:func:`abmkit.attribution.sensitivity` on partitions, in one pass over them:
    each partition computes the model for every value. Columns param, value,
    channel, share, conversions."""
    parts = partitions(source, dataset=dataset, contact_accounts=contact_accounts)
    span = _global_span(parts)
    base = {"milestone": milestone, "lookback_days": lookback_days}
    res = _map(parts, _part_sensitivity, model, param, list(values), span,
               _journey_kw(milestone, lookback_days, mqa_dates, start, end), params,
               _progress=(f"sensitivity {param}", progress))
    rows = []
    for i, v in enumerate(values):
        mp = {**params, **({} if param in _JOURNEY_PARAMS else {param: v})}
        c = _reduce_credits([r[i] for r in res], [model], mp, {**base, **({param: v} if param in base else {})},
                            parts).credits
        tot = c["conversions"].sum()
        rows.append(pd.DataFrame({"param": param, "value": v, "channel": c["channel"],
                                  "share": c["conversions"] / tot if tot > 0 else np.nan,
                                  "conversions": c["conversions"]}))
    out = pd.concat(rows, ignore_index=True)
    return out[out.groupby("channel")["conversions"].transform("sum") > 0].reset_index(drop=True)


def _part_example_candidates(part, models, span, journey_kw, params):
    cj = _journeys(part, models, span, journey_kw, params)
    conv = cj.conversions
    return conv[conv["n_touches"] > 0][["conversion_id", "n_touches", "pipeline_amount"]]


def _part_journey_credits(part, models, span, journey_kw, params, conversion_id, show):
    from .attribution import journey_credits as _jc
    cj = _journeys(part, models, span, journey_kw, params)
    if conversion_id not in set(cj.conversions["conversion_id"]):
        return None
    return _jc(cj, conversion_id, models=show, **params)


def journey_credits(source, conversion_id=None, models=("first_touch", "linear", "time_decay", "w_shaped", "markov"),
                    *, milestone: str = "opportunity_created", lookback_days: float = 365, mqa_dates=None,
                    start=None, end=None, dataset: Dataset | None = None, contact_accounts=None,
                    **params) -> pd.DataFrame:
    """:func:`abmkit.attribution.journey_credits` for one conversion (default: the same
    pick as the pandas path, the largest pipeline among journeys of 5-30 touches),
    built in the partition that holds its account; Markov uses the global removal
    effects."""
    models = list(models)
    parts = partitions(source, dataset=dataset, contact_accounts=contact_accounts)
    span = _global_span(parts)
    jkw = _journey_kw(milestone, lookback_days, mqa_dates, start, end)
    params = _with_removal_effects(parts, models, span, jkw, dict(params))
    if conversion_id is None:
        cand = pd.concat(_map(parts, _part_example_candidates, models, span, jkw, params), ignore_index=True)
        if cand.empty:
            raise ValueError("no conversion has touches in its window: nothing to draw")
        readable = cand[cand["n_touches"].between(5, 30)]
        pool = readable if len(readable) else cand.nsmallest(1, "n_touches")
        conversion_id = pool.sort_values(["pipeline_amount", "conversion_id"], ascending=[False, True]
                                         ).iloc[0]["conversion_id"]
    res = [r for r in _map(parts, _part_journey_credits, models, span, jkw, params, conversion_id, models)
           if r is not None]
    if not res:
        raise ValueError(f"conversion {conversion_id!r} has no touches in its window (or does not exist)")
    return res[0]


def _with_removal_effects(parts, models, span, jkw, params) -> dict:
    """Add the global Markov removal effects to ``params`` when Markov is asked for."""
    if "markov" in models and params.get("removal_effects") is None:
        from .attribution.markov import removal_effects
        res = _map(parts, _part_markov_counts, span, jkw, params)
        k = len(res[0][1])
        counts = pd.concat([r[0] for r in res], ignore_index=True)
        params["removal_effects"] = removal_effects(chain_from_counts(counts, k, params.get("order", 1)))[0] \
            if len(counts) else np.zeros(k)
    return params


# --------------------------------------------------------------------------- progression / uplift
def _part_stage_history(part, span, rules, as_of, data_start):
    from .progression import stage_history as _sh
    return _sh(_resolved(part, span, as_of=as_of), rules, as_of=as_of, data_start=data_start)


def _unattributable_count(parts) -> int:
    """Touches without any account, kept aside by :func:`partition_by_account`."""
    return parts.manifest.get("touchpoints_unattributable", 0) if isinstance(parts, PartitionedDataset) else 0


def stage_history(source, rules=None, *, as_of=None, data_start=None, dataset: Dataset | None = None,
                  contact_accounts=None):
    """:func:`abmkit.progression.stage_history` over all partitions: the same
    :class:`~abmkit.progression.StageHistory` as
    ``stage_history(abmkit.prepare(ds, mapping=contact_accounts, as_of=as_of))``.

    Returns
    -------
    abmkit.progression.StageHistory
        ``.table`` (one row per account and stage entered), ``.data_end`` (the whole
        data's censoring date), ``.touches_without_account`` (with the touches
        partitioning kept aside), ``.rules``.
    """
    from .progression import StageHistory, StageRules
    parts = partitions(source, dataset=dataset, contact_accounts=contact_accounts)
    span = _global_span(parts, as_of)
    if data_start is None:
        data_start = _data_start(span)
    res = _map(parts, _part_stage_history, span, rules, as_of, data_start)
    table = pd.concat([r.table for r in res], ignore_index=True) if res else \
        pd.DataFrame(columns=["account_id", "stage", "entered_at"])
    return StageHistory(table=table, data_end=_data_end(span), rules=rules or StageRules(),
                        touches_without_account=sum(r.touches_without_account for r in res)
                        + _unattributable_count(parts))


_COUNT_COLS = ["n_at_risk", "n_treated", "n_control", "events_treated", "events_control"]


def _part_influence(part, history_kw, influence_kw):
    """Per partition: the treated counts per unit × transition, and the at-risk cohort
    per transition counted apart (a partition may have at-risk accounts but no unit
    rows, e.g. accounts that entered their stages by opportunities alone)."""
    from .progression import stage_history as _sh
    from .uplift import at_risk_counts, campaign_influence
    ds, _ = part
    as_of = history_kw["as_of"]
    data = _resolved(part, history_kw["span"], as_of=as_of)
    hist = _sh(data, history_kw["rules"], as_of=as_of, data_start=history_kw["data_start"])
    cohort = at_risk_counts(hist, ds.accounts["account_id"], exposure_days=influence_kw["exposure_days"],
                            outcome_days=influence_kw["outcome_days"], transitions=influence_kw["transitions"],
                            as_of=as_of)
    # covariates/Cox off: only the counts are kept (they are additive over accounts)
    table = campaign_influence(data, history=hist, covariates=None, cox=False, min_group_size=0,
                               as_of=as_of, progress=False, **influence_kw).table
    cols = ["level", "unit", "campaign_id", "campaign_name", "channel", "transition", "from_stage", "to_stage",
            "n_treated", "events_treated"]
    if table.empty:
        return pd.DataFrame(columns=cols), cohort
    t = table[cols[:-1]].copy()
    t["events_treated"] = np.rint(table["rate_treated"].fillna(0) * table["n_treated"]).astype(np.int64)
    return t[cols], cohort


def campaign_influence_counts(source, *, exposure_days: float = 30, outcome_days: float = 90, transitions=None,
                              by=("campaign", "channel"), rules=None, as_of=None, alpha: float = 0.05,
                              with_tests: bool = True, dataset: Dataset | None = None,
                              contact_accounts=None) -> pd.DataFrame:
    """Campaign influence counts per level × unit × transition over all partitions
    (landmark design, :func:`abmkit.uplift.campaign_influence` on each
    partition): n_at_risk, n_treated, n_control, events_treated, events_control,
    rate_treated, rate_control. The counts are sums over accounts, so they equal the
    pandas path exactly.

    ``with_tests``: add the naive two-group statistics (diff, ratio with CIs,
    p-value, BH q-value) from the counts with :func:`abmkit.uplift.two_group` — these
    depend on the counts only. Covariate-adjusted effects, Cox hazard ratios and KM
    medians need per-account rows: run the pandas path on the at-risk cohort.
    """
    parts = partitions(source, dataset=dataset, contact_accounts=contact_accounts)
    span = _global_span(parts, as_of)
    hist_kw = {"rules": rules, "as_of": as_of, "data_start": _data_start(span), "span": span}
    infl_kw = {"exposure_days": exposure_days, "outcome_days": outcome_days, "transitions": transitions, "by": by}
    res = _map(parts, _part_influence, hist_kw, infl_kw)
    at_risk = pd.concat([r[1] for r in res], ignore_index=True).groupby("transition", sort=False)[
        ["n_at_risk", "events_at_risk"]].sum()
    units = [r[0] for r in res if len(r[0])]
    if not units:
        return pd.DataFrame(columns=["level", "unit", "transition", *_COUNT_COLS])
    allr = pd.concat(units, ignore_index=True)
    keys = ["level", "unit", "transition"]
    info = allr.drop_duplicates(keys)[keys + ["campaign_id", "campaign_name", "channel", "from_stage", "to_stage"]]
    # a partition without some unit (a channel it never saw) has every at-risk account
    # of the transition in that unit's control group: controls are at-risk minus treated
    out = info.merge(allr.groupby(keys, sort=False)[["n_treated", "events_treated"]].sum().reset_index(), on=keys)
    out["n_at_risk"] = out["transition"].map(at_risk["n_at_risk"]).astype(np.int64)
    out["n_control"] = out["n_at_risk"] - out["n_treated"]
    out["events_control"] = out["transition"].map(at_risk["events_at_risk"]).astype(np.int64) - out["events_treated"]
    with np.errstate(invalid="ignore", divide="ignore"):
        out["rate_treated"] = out["events_treated"] / out["n_treated"].where(out["n_treated"] > 0)
        out["rate_control"] = out["events_control"] / out["n_control"].where(out["n_control"] > 0)
    if with_tests and len(out):
        from statsmodels.stats.multitest import multipletests

        from .uplift import two_group
        stats_rows = []
        for r in out.itertuples():
            t = np.r_[np.ones(r.n_treated, bool), np.zeros(r.n_control, bool)]
            y = np.r_[np.arange(r.n_treated) < r.events_treated, np.arange(r.n_control) < r.events_control]
            d = two_group(pd.DataFrame({"t": t, "y": y.astype(int)}), "t", "y", alpha=alpha).to_frame().iloc[0]
            stats_rows.append({c: d[c] for c in ("diff", "diff_low", "diff_high", "ratio", "ratio_low",
                                                  "ratio_high", "p_value")})
        out = pd.concat([out, pd.DataFrame(stats_rows, index=out.index)], axis=1)
        p = out["p_value"].to_numpy(float)
        out["q_value"] = np.nan
        fin = np.isfinite(p)
        if fin.any():
            out.loc[fin, "q_value"] = multipletests(p[fin], alpha=alpha, method="fdr_bh")[1]
    first = ["level", "unit", "campaign_id", "campaign_name", "channel", "transition", "from_stage", "to_stage",
             "n_at_risk", "n_treated", "n_control", "events_treated", "events_control", "rate_treated",
             "rate_control"]
    return out[first + [c for c in out.columns if c not in first]].reset_index(drop=True)


def _part_influence_inputs(part, history_kw, from_stages, exp_ns):
    """Stage history of a partition and the only touches campaign influence can use:
    per (account, campaign) and (account, channel), the first touch of every
    exposure window [entry into s, entry + exposure_days); plus the first touch of
    each campaign and channel (their metadata). The exposure of a unit is the first
    such touch, so the reduced table gives exactly the same result.

    Returns (stage table, touches without account, reduced touches); the stage
    table is the given history's rows for this partition's accounts when given."""
    from .journeys import account_touches
    from .progression import account_codes, history_table, stage_wide
    from .progression import stage_history as _sh
    ds, _ = part
    data = _resolved(part, history_kw["span"], as_of=history_kw["as_of"])
    tt = account_touches(data)
    if history_kw.get("history") is not None:  # given: its rows for this partition's accounts
        given = history_table(history_kw["history"])
        hist, unplaced = given[given["account_id"].isin(ds.accounts["account_id"])], 0
    else:
        h = _sh(data, history_kw["rules"], as_of=history_kw["as_of"], data_start=history_kw["data_start"])
        hist, unplaced = h.table, h.touches_without_account
    ids = ds.accounts["account_id"].to_numpy(dtype=object)
    code = account_codes(ids, tt["account_id"])
    t = to_ns_or_inf(tt["occurred_at"])
    ok = (code >= 0) & (t <= history_kw["data_end"].value) & (t != NS_INF)
    wide = stage_wide(hist).reindex(ids)
    keep = np.zeros(len(tt), bool)
    order = np.argsort(t, kind="stable")  # earliest first; ties keep the table order
    for a in from_stages:
        E = to_ns_or_inf(wide[a])[np.where(code >= 0, code, 0)]
        in_win = ok & (E != NS_INF) & (t >= E) & (t < E + exp_ns)
        for col in ("campaign_id", "channel"):
            v = tt[col].astype(object).to_numpy()
            rows = order[in_win[order] & pd.notna(v[order])]
            first = pd.DataFrame({"a": code[rows], "u": v[rows]}).duplicated(["a", "u"]).to_numpy()
            keep[rows[~first]] = True
    for col in ("campaign_id", "channel"):
        v = tt[col].astype(object).to_numpy()
        rows = np.flatnonzero(ok & pd.notna(v))
        keep[rows[~pd.Series(v[rows]).duplicated().to_numpy()]] = True
    return hist, unplaced, tt[keep]


def campaign_influence(source, *, exposure_days: float = 30, outcome_days: float = 90, transitions=None,
                       rules=None, as_of=None, history=None, dataset: Dataset | None = None,
                       contact_accounts=None, **kwargs):
    """:func:`abmkit.uplift.campaign_influence` for data that does not fit one machine:
    the stage history and a reduced touch table (the first touch of each campaign and
    channel in every account's exposure windows: all the analysis can use) are
    computed on the partitions; the statistics (naive and adjusted effects, Cox, KM
    medians, BH q-values) then run once, with the kit's function, on these
    account-sized inputs. Same result as the pandas path.

    ``history``: a :class:`~abmkit.progression.StageHistory` (e.g. from
    :func:`stage_history`), censored at its ``data_end`` unless ``as_of`` is given; a
    bare stage table needs ``as_of`` (as on the pandas path).

    Returns
    -------
    abmkit.uplift.InfluenceResult
    """
    from .prepared import prepare
    from .progression import StageHistory, StageRules, data_end
    from .uplift import campaign_influence as _ci
    from .uplift import parse_transitions
    parts = partitions(source, dataset=dataset, contact_accounts=contact_accounts)
    if not isinstance(parts, PartitionedDataset):
        raise TypeError("campaign_influence needs a partitioned folder (scale.partition_by_account)")
    _require_scale()
    import dask
    trans = parse_transitions(transitions)
    exp_ns = int(round(exposure_days * 86_400 * 10**9))
    if history is None:
        span = _global_span(parts, as_of)
        end = _data_end(span)
        hist_kw = {"rules": rules, "as_of": as_of, "data_start": _data_start(span), "span": span, "data_end": end}
    else:
        # as uplift.campaign_influence: the history's own end unless as_of is given
        end = data_end(history, as_of)
        hist_kw = {"history": dask.delayed(history, traverse=False), "data_end": end, "span": None, "as_of": as_of}
    res = _map(parts, _part_influence_inputs, hist_kw, sorted({a for a, _ in trans}), exp_ns)
    if history is None:
        history = StageHistory(table=pd.concat([r[0] for r in res], ignore_index=True), data_end=end,
                               touches_without_account=sum(r[1] for r in res) + _unattributable_count(parts),
                               rules=rules or StageRules())
    touches = pd.concat([r[2] for r in res], ignore_index=True)
    small = parts.account_tables()
    # the reduced touches are on their accounts already: no mapping needed
    no_mapping = pd.DataFrame({"contact_id": pd.Series([], dtype=object), "account_id": pd.Series([], dtype=object)})
    data = prepare(Dataset(touchpoints=touches, **{t: getattr(small, t) for t in _ACCOUNT_TABLES + ("campaigns",)}),
                   mapping=no_mapping, as_of=as_of, data_end=None if pd.isna(end) else end)
    return _ci(data, exposure_days=exposure_days, outcome_days=outcome_days, transitions=transitions,
               history=history, as_of=as_of, **kwargs)


def _part_touch_count(part) -> int:
    return len(part[0].touchpoints)


def _merge_partitions(loaded: list) -> tuple[Dataset, pd.DataFrame]:
    ds = Dataset(campaigns=loaded[0][0].campaigns,
                 **{t: pd.concat([d for d in (getattr(x[0], t) for x in loaded)], ignore_index=True)
                    for t in ("touchpoints",) + _ACCOUNT_TABLES})
    return ds, pd.concat([x[1] for x in loaded], ignore_index=True)


def transition_baseline(source, history=None, *, max_touches: int = 5_000_000,
                        dataset: Dataset | None = None, contact_accounts=None, **kwargs):
    """:func:`abmkit.progression.transition_baseline` (medians of touches and contacts
    per transition, channel mix, common sequences: medians and top sequences are not
    sums, so they need the accounts together). Runs on as many whole partitions as fit
    in ``max_touches`` touches: exact when that is all of them, otherwise an estimate on
    a random sample of accounts (partitions are a hash of the account id), which
    ``.sample`` on the result describes. ``history``: a
    :class:`~abmkit.progression.StageHistory` (or its table); default
    :func:`stage_history`."""
    _require_scale()
    import dataclasses

    import dask

    from .prepared import prepare
    from .progression import StageHistory, history_table
    from .progression import transition_baseline as _tb
    parts = partitions(source, dataset=dataset, contact_accounts=contact_accounts)
    loaders = _loaders(parts)
    sizes = dask.compute(*[dask.delayed(_part_touch_count)(x) for x in loaders])
    take, total = [], 0
    for i, n in enumerate(sizes):
        if take and total + n > max_touches:
            break
        take.append(i)
        total += n
    ds, ca = dask.compute(dask.delayed(_merge_partitions)(list(loaders[i] for i in take)))[0]
    hist = history if history is not None else stage_history(parts)
    table = history_table(hist)
    table = table[table["account_id"].isin(ds.accounts["account_id"])]
    end = hist.data_end if isinstance(hist, StageHistory) else pd.NaT
    hist = dataclasses.replace(hist, table=table) if isinstance(hist, StageHistory) else table
    res = _tb(prepare(ds, mapping=ca, data_end=None if pd.isna(end) else end), hist, **kwargs)
    res.sample = {"partitions_used": len(take), "partitions": len(sizes), "touches_used": int(total),
                  "touches": int(sum(sizes)), "exact": len(take) == len(sizes)}
    return res


# --------------------------------------------------------------------------- KPIs
#: KPIs whose numerator and denominator are sums over accounts (exact when partitioned)
ADDITIVE_KPIS = ("market_reach", "account_engagement", "audience_exposure_time", "mqa_accounts", "new_mqas",
                 "influenced_pipeline", "pipeline_velocity", "win_rate", "average_deal_size", "retention_rate",
                 "product_adoption", "upsell_rate", "cross_sell_rate", "net_revenue_retention",
                 "buying_group_coverage", "opportunity_creation", "opportunity_conversion", "deal_velocity")


#: KPIs whose value is the numerator itself (the denominator is context, e.g. accounts considered)
_COUNT_KPIS = ("account_engagement", "mqa_accounts", "new_mqas", "influenced_pipeline", "opportunity_creation")


def _part_kpis(part, span, periods, names):
    """Per partition, period and KPI: numerator, denominator, unit and the size of the
    population counted on (:func:`abmkit.kpis.population_of`), with the kit's KPI
    functions on the partition's resolved dataset."""
    from . import kpis
    from .prepared import prepare
    data = _resolved(part, span)
    nobody = None
    if span["any_target"] and not data.targets_flagged:
        # the data flags target accounts but none is here: this partition's target
        # population is empty (not all its accounts), so its target-population KPIs
        # are those of no accounts
        nobody = prepare(Dataset(campaigns=data.campaigns), mapping=part[1].iloc[:0], mqa=data.mqa_rule,
                         data_end=None if pd.isna(data.data_end) else data.data_end)
    rows = []
    for label, p in periods:
        for n in names:
            on = nobody if nobody is not None and kpis.KPI_POPULATION[n] == "target" else data
            r = kpis.KPI_FUNCTIONS[n](on, period=p)
            population, size = kpis.population_of(n, on, p)
            rows.append({"period": label, "kpi": n, "numerator": r.numerator, "denominator": r.denominator,
                         "unit": r.unit, "population": population, "population_size": size})
    return pd.DataFrame(rows)


def kpi_aggregates(source, quarter=None, start=None, end=None, *, kpis=ADDITIVE_KPIS,
                   dataset: Dataset | None = None, contact_accounts=None) -> pd.DataFrame:
    """The additive ABM KPIs (docs/kpis.md) for the period and the previous one:
    numerators and denominators summed over partitions, values recomputed with the
    KPI's formula. Columns: group, kpi, unit, value, numerator, denominator,
    population, population_size, previous, change, change_pct (as
    ``abmkit.kpis.kpi_table(abmkit.prepare(ds), ...).overall`` for these KPIs)."""
    from . import kpis as _k
    from .period import resolve_period
    from .prepared import ALL_ACCOUNTS, TARGET_POPULATION
    bad = [k for k in kpis if k not in ADDITIVE_KPIS]
    if bad:
        raise ValueError(f"{bad} are not additive over accounts (campaign costs, ratios of ratios); "
                         "compute them with abmkit.kpis on the pandas path")
    p = resolve_period(quarter=quarter, start=start, end=end)
    parts = partitions(source, dataset=dataset, contact_accounts=contact_accounts)
    span = _global_span(parts)
    res = pd.concat(_map(parts, _part_kpis, span, [("current", p), ("previous", p.previous)], list(kpis)),
                    ignore_index=True)
    g = res.groupby(["period", "kpi"], sort=False).agg(numerator=("numerator", lambda s: s.sum(min_count=1)),
                                                       denominator=("denominator", "first"), unit=("unit", "first"),
                                                       den_sum=("denominator", lambda s: s.sum(min_count=1)),
                                                       population=("population", "first"),
                                                       population_size=("population_size", "sum"))
    group_of = {k: grp for grp, names in _k.KPI_GROUPS.items() for k in names}
    rows = []
    for n in kpis:
        vals = {}
        for per in ("current", "previous"):
            r = g.loc[(per, n)]
            num = float(r["numerator"]) if pd.notna(r["numerator"]) else np.nan
            if n == "audience_exposure_time":  # constant denominator (seconds per hour)
                den = float(r["denominator"])
            else:
                den = float(r["den_sum"]) if pd.notna(r["den_sum"]) else np.nan
            if n in _COUNT_KPIS or np.isnan(den):
                value = num
            else:
                value = num / den if den else np.nan
            vals[per] = (value, num, den, r["unit"])
        cur, prev = vals["current"], vals["previous"]
        population = g.loc[("current", n), "population"]
        if _k.KPI_POPULATION[n] == "target":  # a partition without target accounts names "all accounts"
            population = TARGET_POPULATION if span["any_target"] else ALL_ACCOUNTS
        change = cur[0] - prev[0]
        rows.append({"group": group_of.get(n), "kpi": n, "unit": cur[3], "value": cur[0], "numerator": cur[1],
                     "denominator": cur[2], "population": population,
                     "population_size": float(g.loc[("current", n), "population_size"]), "previous": prev[0],
                     "change": change, "change_pct": change / abs(prev[0]) if prev[0] else np.nan})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- comparison
def compare_models(source, models=None, *, milestone: str = "opportunity_created", lookback_days: float = 365,
                   mqa_dates=None, start=None, end=None, dataset: Dataset | None = None, contact_accounts=None,
                   n_boot: int = 1000, seed: int = 0, alpha: float = 0.05, progress: bool | None = None,
                   **params):
    """:class:`abmkit.attribution.ComparisonResult` from the distributed channel
    credits: shares, rank correlation, disagreement, conservation, no_touch, equal to
    ``abmkit.attribution.compare_models(..., n_boot=0)``; bootstrap intervals from the
    same pass over the partitions, equal to ``compare_models(..., n_boot, seed,
    bootstrap="poisson")`` (accounts weighted by Poisson(1) counts that do not depend
    on the partitioning; see :func:`channel_credits`). ``n_boot=0``: no intervals."""
    from .attribution import DEFAULT_COMPARE_MODELS
    models = list(DEFAULT_COMPARE_MODELS if models is None else ([models] if isinstance(models, str) else models))
    cc = channel_credits(source, models, milestone=milestone, lookback_days=lookback_days, mqa_dates=mqa_dates,
                         start=start, end=end, dataset=dataset, contact_accounts=contact_accounts, n_boot=n_boot,
                         seed=seed, alpha=alpha, progress=progress, **params)
    from .attribution.compare import comparison_from_credits
    return comparison_from_credits(cc.credits, models, cc.conservation, cc.no_touch, cc.info, cc.channels_seen,
                                   low=cc.low, high=cc.high, n_boot=n_boot if cc.low is not None else 0, seed=seed)
