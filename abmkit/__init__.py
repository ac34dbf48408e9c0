"""abmkit: account-based marketing attribution, progression and KPIs in notebooks.

Public API (documentation index: docs/README.md): :func:`load`, :func:`save`, :class:`Dataset`,
:class:`SchemaError`; the resolved dataset every analysis takes — :func:`prepare`,
:class:`ResolvedDataset`, :class:`MappingSettings`, :class:`MQARule`, :func:`load_resolved`
(docs/resolved_dataset.md), and :func:`open_dataset` (that dataset in memory or in partitions
of whole accounts for the dask engine, docs/scale.md); and the modules ``applicability`` (what each analysis needs,
docs/troubleshooting.md §8), ``clean``, ``mapping``, ``engagement``, ``journeys``, ``attribution``,
``progression``, ``uplift``, ``kpis``, ``incremental_value`` (pipeline caused by campaigns), ``drilldown``, ``training``, ``summary`` (the executive summary), ``report``, ``outputs``, ``period``, ``sample``,
``scale`` and ``plots`` (imported on first use, so ``import abmkit`` stays light).

Example
-------
>>> import abmkit
>>> abmkit.attribution.path_attribution     # doctest: +ELLIPSIS
<function path_attribution at ...>
"""
from __future__ import annotations

import importlib

from .prepared import MappingSettings, MQARule, ResolvedDataset, load_resolved, prepare
from .schema import Dataset, SchemaError, load, save

__version__ = "0.1.0"
_SUBMODULES = ("adapters", "applicability", "attribution", "clean", "domains", "drilldown", "engagement", "engine", "incremental_value", "journeys", "kpis", "mapping",
               "outputs", "period", "plots", "prepared", "progression", "report", "results", "sample", "scale",
               "schema", "summary", "timeutil", "training", "uplift")
__all__ = ["Dataset", "SchemaError", "load", "save", "prepare", "ResolvedDataset", "MappingSettings", "MQARule",
           "load_resolved", "open_dataset", "__version__", *_SUBMODULES]


def open_dataset(data_dir, engine: str = "pandas", **kwargs):
    """The resolved dataset of ``data_dir`` in memory (``engine="pandas"``) or in
    partitions of whole accounts (``"dask"``); every analysis takes either. With
    ``mapping=``, ``mqa=`` or ``as_of=`` it resolves the folder first and saves the
    result (notebook 02). Options: :func:`abmkit.engine.open_dataset`, docs/scale.md.

    Example
    -------
    >>> data = abmkit.open_dataset("data/sample/canonical", engine="dask")   # doctest: +SKIP
    >>> abmkit.kpis.kpi_table(data, quarter="2026Q3").summary                 # doctest: +SKIP
    """
    from .engine import open_dataset as _open
    return _open(data_dir, engine, **kwargs)


def __getattr__(name: str):
    # submodules on first access: plots/scale pull matplotlib/dask, which a CLI call may not need
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'abmkit' has no attribute {name!r}")
