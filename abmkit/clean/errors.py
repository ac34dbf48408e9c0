"""The one exception of the cleaning layer."""
from __future__ import annotations


class CleanError(ValueError):
    """A raw export cannot be cleaned at all (as opposed to single bad rows, which
    go to the rejects ledger).

    The message names the file, the column and the row when there is one, the
    columns that were found, and what to change (the export or the column map).
    """
