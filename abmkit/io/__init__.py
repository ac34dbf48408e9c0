"""Reading input files (the bottom layer: imports nothing else from abmkit).

:mod:`abmkit.io.csv` reads raw export CSVs as strings (encoding and delimiter
detection, ragged rows kept aside with their row numbers); both the cleaner
(:mod:`abmkit.clean`) and the CRM adapters (:mod:`abmkit.adapters`) use it.
:class:`CleanError` is the error for a file that cannot be read at all (public name
:class:`abmkit.clean.CleanError`).

:mod:`abmkit.io.yaml` is the bounded YAML reader for every YAML file a user gives
(:func:`load_yaml`), :mod:`abmkit.io.paths` keeps the files a column map names inside the
data folder; both raise :class:`InputError` (a CleanError).
"""
from .csv import FIRST_DATA_ROW, RawFrame, detect_encoding, read_file, sniff_delimiter
from .errors import CleanError, InputError
from .yaml import load_yaml

__all__ = ["RawFrame", "read_file", "detect_encoding", "sniff_delimiter", "CleanError", "InputError",
           "load_yaml", "FIRST_DATA_ROW"]
