"""The one exception of the cleaning layer (defined in :mod:`abmkit.io.errors`, so that
the CSV reader below the cleaner raises the same class)."""
from __future__ import annotations

from ..io.errors import CleanError

__all__ = ["CleanError"]
