"""Reading input files (the bottom layer: imports nothing else from abmkit).

:mod:`abmkit.io.csv` reads raw export CSVs as strings (encoding and delimiter
detection, ragged rows kept aside with their row numbers); both the cleaner
(:mod:`abmkit.clean`) and the CRM adapters (:mod:`abmkit.adapters`) use it.
:class:`CleanError` is the error for a file that cannot be read at all (public name
:class:`abmkit.clean.CleanError`).
"""
from .csv import FIRST_DATA_ROW, RawFrame, detect_encoding, read_file, sniff_delimiter
from .errors import CleanError

__all__ = ["RawFrame", "read_file", "detect_encoding", "sniff_delimiter", "CleanError", "FIRST_DATA_ROW"]
