"""The optional parts of abmkit and the modules each needs (the extras of
``pyproject.toml``): a missing one is an error that says what to install, never a
silent fallback.

``pip install abmkit`` brings the analysis library (cleaning, mapping, engagement,
attribution, progression, uplift, KPIs, the sample and the ``validate`` command);
``abmkit[plots]`` the charts, ``abmkit[report]`` the papermill report (with the
plots), ``abmkit[scale]`` the Dask engine.

Example
-------
>>> require("plots", "abmkit.plots")        # nothing happens when installed  # doctest: +SKIP
>>> missing("scale")                         # doctest: +SKIP
[]
"""
from __future__ import annotations

import importlib.util

#: extra -> top-level modules it must make importable (tests/test_packaging.py checks
#: that each is provided by that extra in pyproject.toml)
EXTRAS: dict[str, tuple[str, ...]] = {
    "plots": ("matplotlib", "seaborn"),
    "report": ("papermill", "nbformat", "nbconvert", "jinja2", "jupyter_client", "bleach", "ipykernel", "matplotlib",
               "seaborn"),
    "scale": ("dask", "distributed"),
    "sql": ("sqlalchemy", "duckdb"),
}


class MissingExtraError(ModuleNotFoundError):
    """An optional dependency of abmkit is not installed; the message names the
    ``pip install 'abmkit[<extra>]'`` that brings it."""


def missing(extra: str) -> list[str]:
    """The modules of ``extra`` that cannot be imported here (not imported by this check)."""
    return [name for name in EXTRAS[extra] if importlib.util.find_spec(name) is None]


def require(extra: str, feature: str) -> None:
    """Raise :class:`MissingExtraError` when a module of ``extra`` is missing; ``feature``
    names what needs it (e.g. ``"abmkit report"``)."""
    absent = missing(extra)
    if absent:
        raise MissingExtraError(
            f"{feature} needs {', '.join(absent)}, which {'is' if len(absent) == 1 else 'are'} not installed: "
            f"pip install 'abmkit[{extra}]' (in a checkout: pip install -e '.[{extra}]', or `make report`)",
            name=absent[0])
