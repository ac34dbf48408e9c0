"""abmkit: account-based marketing attribution, progression and KPIs in notebooks.

Public API (DESIGN §8): :func:`load`, :class:`Dataset` and the modules
``clean``, ``mapping``, ``engagement``, ``attribution``, ``progression``,
``uplift``, ``kpis``, ``report``, ``plots``.
"""
from .schema import Dataset, SchemaError, load, save

__version__ = "0.1.0"
__all__ = ["Dataset", "SchemaError", "load", "save", "__version__"]
