"""Seaborn figures drawn from result frames; they compute nothing.

One submodule per analysis; everything is re-exported here so notebooks call
``abmkit.plots.<name>``.
"""
from __future__ import annotations

import importlib

from .._extras import require

require("plots", "abmkit.plots")  # matplotlib + seaborn: pip install 'abmkit[plots]'

_SUBMODULES = ("cleaning", "mapping", "attribution", "progression", "kpis")
__all__: list[str] = []
for _name in _SUBMODULES:
    try:
        _mod = importlib.import_module(f".{_name}", __name__)
    except ModuleNotFoundError as exc:  # a submodule not written yet
        if exc.name != f"{__name__}.{_name}":
            raise
        continue
    for _attr in getattr(_mod, "__all__", []):
        globals()[_attr] = getattr(_mod, _attr)
        __all__.append(_attr)
