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



class InputError(CleanError):
    """A user-supplied input file is refused before it is used: a YAML file that is too
    big, nested too deeply, expands through aliases (a "billion laughs" document) or
    carries a tag other than plain values (:func:`abmkit.io.yaml.load_yaml`), or a data
    file a column map names outside the data folder (:mod:`abmkit.io.paths`).

    A :class:`CleanError` (hence a ``ValueError``): every handler of bad input catches it
    and the CLI exits 2. The message names the file, the key or value, and what to do; it
    never quotes the content of a file outside the data folder.
    """


#: longest piece of file content (a cell, a header) an error message quotes
QUOTE_LIMIT = 80


def shown(value, limit: int = QUOTE_LIMIT) -> str:
    """``repr`` of a value from a file, cut to ``limit`` characters (``...`` marks the cut):
    error messages quote the offending cell or header, never pages of data."""
    text = repr(str(value)) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def shown_list(values, limit: int = QUOTE_LIMIT, most: int = 30) -> str:
    """A list of headers/values for a message: each :func:`shown`, at most ``most`` of them."""
    values = list(values)
    parts = [shown(v, limit) for v in values[:most]]
    if len(values) > most:
        parts.append(f"... {len(values) - most} more")
    return "[" + ", ".join(parts) + "]"
