"""abmkit: account-based marketing attribution, progression and KPIs in notebooks.

Public API (documentation index: docs/README.md): :func:`load`, :func:`save`, :class:`Dataset`,
:class:`SchemaError`; the resolved dataset every analysis takes — :func:`prepare`,
:class:`ResolvedDataset`, :class:`MappingSettings`, :class:`MQARule`, :func:`load_resolved`
(docs/resolved_dataset.md); and the modules ``applicability`` (what each analysis needs,
docs/troubleshooting.md §8), ``clean``, ``mapping``, ``engagement``, ``journeys``, ``attribution``,
``progression``, ``uplift``, ``kpis``, ``report``, ``outputs``, ``period``, ``sample``,
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
_SUBMODULES = ("adapters", "applicability", "attribution", "clean", "domains", "engagement", "journeys", "kpis", "mapping",
               "outputs", "period", "plots", "prepared", "progression", "report", "results", "sample", "scale",
               "schema", "timeutil", "uplift")
__all__ = ["Dataset", "SchemaError", "load", "save", "prepare", "ResolvedDataset", "MappingSettings", "MQARule",
           "load_resolved", "__version__", *_SUBMODULES]


def __getattr__(name: str):
    # submodules on first access: plots/scale pull matplotlib/dask, which a CLI call may not need
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'abmkit' has no attribute {name!r}")
