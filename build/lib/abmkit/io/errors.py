"""The error raised when an input file or table cannot be used at all.

It lives at the bottom of the package (``abmkit.io`` imports nothing else from
abmkit) so that the CSV reader can raise it; the cleaning layer re-exports it as
:class:`abmkit.clean.CleanError`, its public name.
"""
from __future__ import annotations


class CleanError(ValueError):
    """A raw export cannot be cleaned at all (as opposed to single bad rows, which
    go to the rejects ledger).

    The message names the file, the column and the row when there is one, the
    columns that were found, and what to change (the export or the column map).
    """

