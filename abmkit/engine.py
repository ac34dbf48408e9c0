"""One analysis, two engines: what an analysis receives decides where it runs.

Every public analysis takes the data as its first argument. An in-memory
:class:`~abmkit.prepared.ResolvedDataset` (or a plain Dataset) runs in pandas; a
partitioned dataset (:class:`abmkit.scale.PartitionedDataset`, whole accounts per
partition) runs partition by partition on the active Dask client, with the same
arguments and the same result (the idea of scikit-learn's joblib backends and of
xarray's ``apply_ufunc(dask=...)``). An analysis dispatches on its first line::

    if engine.is_partitioned(data):
        return engine.run("stage_history", data, rules=rules, as_of=as_of, data_start=data_start)

Analyses without a partitioned kernel take the partitioned handle too: they run on
its whole data in memory (:meth:`abmkit.scale.PartitionedDataset.in_memory`), with a
warning naming them; ``open_dataset(..., in_memory="error")`` (or the environment
variable ``ABMKIT_IN_MEMORY=error``) makes that an error instead.

Open a dataset for either engine with :func:`open_dataset`.

Example
-------
>>> is_partitioned(None)
False
"""
from __future__ import annotations

import weakref
from pathlib import Path

import pandas as pd

__all__ = ["ENGINES", "is_partitioned", "open_dataset", "run"]

#: the engines :func:`open_dataset` knows
ENGINES = ("pandas", "dask")
#: where open_dataset writes the partitioned copy of a canonical folder (reused while unchanged)
PARTITIONS_FOLDER = ".abmkit_by_account"


def is_partitioned(data) -> bool:
    """Whether ``data`` is a partitioned handle (its type says so; nothing of Dask is
    imported to check).

    >>> is_partitioned(pd.DataFrame())
    False
    """
    return bool(getattr(type(data), "_abmkit_partitioned", False))


def is_lazy_frame(obj) -> bool:
    """Whether ``obj`` is a Dask DataFrame (e.g. ``attribute`` on a partitioned dataset).

    >>> is_lazy_frame(pd.DataFrame())
    False
    """
    return type(obj).__module__.split(".")[0] in ("dask", "dask_expr") and hasattr(obj, "npartitions")


def run(name: str, data, /, *args, **kwargs):
    """The partitioned kernel ``name`` of :mod:`abmkit.scale.kernels` on ``data``, with
    the calling analysis's own arguments."""
    from .scale import kernels
    return getattr(kernels, name)(data, *args, **kwargs)


def campaign_sums(credits, value: str) -> pd.DataFrame:
    """A lazy touch-level credits frame summed per campaign and model on its
    partitions (``campaign_id`` null as ``(no campaign)``), gathered: ``campaign_id,
    model, <value>``, models in the order they were asked for."""
    def part(d):
        d = d.assign(campaign_id=d["campaign_id"].fillna("(no campaign)"))
        return d.groupby(["campaign_id", "model"], sort=False, observed=True)[[value]].sum().reset_index()
    meta = part(credits._meta)
    out = credits.map_partitions(part, meta=meta).compute()
    out = out.groupby(["campaign_id", "model"], sort=False, observed=True)[[value]].sum().reset_index()
    out = out.sort_values("model", kind="stable", ignore_index=True)  # categorical: the models' order
    return out.assign(model=out["model"].astype(object))


def _close(c) -> None:
    try:
        c.close()
    except Exception:  # noqa: BLE001 - interpreter shutdown: nothing left to release
        pass


def _count_touches(data_dir) -> int:
    """Rows of the canonical folder's touch table, from the parquet footers."""
    import pyarrow.dataset as pads
    tp = Path(data_dir) / "touchpoints.parquet"
    tp = tp if tp.exists() else Path(data_dir) / "touchpoints"
    return pads.dataset(tp, format="parquet").count_rows() if tp.exists() else 0


def _resolve_partitioned(data_dir, mapping, mqa, as_of, *, npartitions, work_dir, progress) -> None:
    """:func:`abmkit.prepare` + :meth:`~abmkit.prepared.ResolvedDataset.save` of a
    canonical folder without holding its touch table: contacts are mapped on the
    account tables (all the mapping reads), the touches partitioned with that mapping,
    the data end and MQA dates computed on the partitions, and ``data_dir/resolved/``
    written as in memory (:func:`abmkit.load_resolved` opens it)."""
    import json

    from .prepared import ResolvedDataset, prepare
    from .private import write_private
    from .scale import partitions
    from .scale.kernels import _data_end, _global_span, mqa_dates
    from .scale.partition import _read_small
    from .schema import Dataset, empty_table
    n_touches = _count_touches(data_dir)
    small = _read_small(Path(data_dir))
    head = prepare(Dataset(touchpoints=empty_table("touchpoints"), **small), mapping=mapping, mqa=mqa, as_of=as_of)
    notes = [n for n in head.notes if not (n_touches and n.startswith("no touchpoints"))]
    parts = partitions(str(data_dir), work_dir=work_dir or Path(data_dir) / PARTITIONS_FOLDER,
                       contact_accounts=head.contact_accounts, npartitions=npartitions)
    parts.options.update(mqa_rule=head.mqa_rule, as_of=head.as_of, progress=progress)
    end = _data_end(_global_span(parts))
    res = ResolvedDataset(tables=head.tables, contact_accounts=head.contact_accounts, mapping=head.mapping,
                          mqa_rule=head.mqa_rule, as_of=head.as_of, data_end=end, touches=head.touches, notes=notes)
    dates = mqa_dates(parts, progress)
    res.memo(("mqa_dates",), lambda: dates)
    folder = res.save(data_dir)
    meta = json.loads((folder / "resolved.json").read_text("utf-8"))
    meta["rows"]["touchpoints"] = int(n_touches)  # the table saved in data_dir, never loaded here
    text = json.dumps(meta, indent=2, default=str)
    write_private(folder / "resolved.json", lambda f: f.write(text.encode("utf-8")))


def open_dataset(data_dir, engine: str = "pandas", *, mapping=None, mqa=None, as_of=None,
                 scheduler: str | None = None, npartitions: int | None = None, work_dir=None,
                 progress: bool | None = None, in_memory: str | None = None):
    """The resolved dataset of ``data_dir`` for the chosen engine: the one notebook 02
    saved (:meth:`~abmkit.prepared.ResolvedDataset.save`), or, given ``mapping``,
    ``mqa`` or ``as_of``, resolved now with these settings and saved (what notebook 02
    does).

    Parameters
    ----------
    data_dir : a canonical folder (with its ``resolved/`` settings unless resolving now)
    engine : ``"pandas"`` (in memory: :func:`abmkit.load_resolved` /
        :func:`abmkit.prepare`) or ``"dask"`` (partitions of whole accounts, written once
        to ``data_dir/.abmkit_by_account`` with the resolved mapping and reused while
        the data and mapping are unchanged; resolving maps the contacts on the account
        tables and computes MQA dates on the partitions: the touch table is never
        loaded whole)
    mapping, mqa, as_of : as :func:`abmkit.prepare` (``MappingSettings``, ``MQARule``,
        the report's period end): resolve and save ``data_dir/resolved/`` first
    scheduler : dask.distributed address (``tcp://host:8786``); None: the active
        client, else a new local cluster (closed with the handle)
    progress : progress bars of the partitioned runs; None: on a terminal only
    in_memory : ``"warn"`` or ``"error"`` (dask engine): what happens when an analysis
        without a partitioned kernel needs the whole data in the driver
        (:meth:`abmkit.scale.PartitionedDataset.in_memory`): load it with a warning
        naming the analysis, or raise an error naming it (fail rather than load
        everything on big data). None: the environment variable
        ``ABMKIT_IN_MEMORY``, else ``"warn"``

    Returns
    -------
    ResolvedDataset or abmkit.scale.PartitionedDataset
        either goes to every analysis as it is.
    """
    from .prepared import load_resolved
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")
    resolve_now = mapping is not None or mqa is not None or as_of is not None
    if engine == "pandas":
        if resolve_now:
            from .prepared import prepare
            from .schema import load
            data = prepare(load(data_dir), mapping=mapping, mqa=mqa, as_of=as_of)
            data.save(data_dir)
            return data
        return load_resolved(data_dir)
    from .prepared import MQARule, read_resolved_meta
    from .scale import partitions
    from .scale.partition import in_memory_mode
    in_memory = in_memory_mode(in_memory)  # a bad value fails before any work
    from .scale.runtime import _active_client, client
    own = None
    if scheduler or _active_client() is None:
        own = client(scheduler)
    if resolve_now:
        _resolve_partitioned(data_dir, mapping, mqa, as_of, npartitions=npartitions, work_dir=work_dir,
                             progress=progress)
    folder, meta = read_resolved_meta(data_dir)
    contact_accounts = pd.read_parquet(folder / "contact_accounts.parquet")
    mqa_dates = pd.read_parquet(folder / "mqa_dates.parquet")
    parts = partitions(str(data_dir), work_dir=work_dir or Path(data_dir) / PARTITIONS_FOLDER,
                       contact_accounts=contact_accounts, npartitions=npartitions)
    parts.options.update(mqa_dates=mqa_dates, mqa_rule=MQARule(**meta["mqa_rule"]), data_dir=str(data_dir),
                         contact_accounts=contact_accounts, progress=progress, client=own, in_memory=in_memory,
                         as_of=None if meta.get("as_of") is None else pd.Timestamp(meta["as_of"]))
    if own is not None:  # the local cluster lives as long as the handle
        weakref.finalize(parts, _close, own)
    return parts
