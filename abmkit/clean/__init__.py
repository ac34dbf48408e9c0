"""Raw CRM / marketing-automation exports -> the canonical dataset, with a rejects
ledger where every input row is accounted for.

``clean_exports(raw_dir, column_map)`` reads the files a column map names
(docs/column_map.md; encoding and delimiter detected, every value read as a
string) and cleans them; ``clean_frames(frames, column_map)`` is the same
cleaning for frames an adapter built itself. Per table,
``rows_in == rows_clean + rows_rejected + rows_merged`` always holds: a row is
kept (maybe with a recorded repair), rejected into the ledger with a reason, or
merged into an identical row. See docs/cleaning.md.

Example
-------
>>> import pandas as pd
>>> from abmkit.clean import RawFrame, clean_frames
>>> tp = pd.DataFrame({"Id": ["t1", "t2"], "When": ["2026-03-01 09:00", "soon"],
...                    "Source": ["LinkedIn Ads", "LinkedIn Ads"], "Type": ["Ad Click", "Ad Click"],
...                    "Account": ["a1", "a1"]})
>>> cm = {"tables": {"touchpoints": {"file": "tp.csv", "timezone": "Europe/Berlin", "columns": {
...     "touchpoint_id": "Id", "occurred_at": "When", "channel": "Source", "touch_type": "Type",
...     "account_id": "Account"}}}}
>>> r = clean_frames({"touchpoints": [RawFrame("tp.csv", tp)]}, cm)
>>> str(r.dataset.touchpoints.occurred_at[0]), r.dataset.touchpoints.channel[0]
('2026-03-01 08:00:00+00:00', 'paid_social')
>>> r.rejects.reason.tolist()
["unparseable_timestamp: occurred_at='soon'"]
"""
from . import quality, sanity
from .sanity import SanityReport, sanity_checks
from .api import check_inputs, clean_exports, read_frames, validate_export
from .colmap import LabelMap, load_column_map
from .core import CleanResult, clean_frames
from ..io.csv import RawFrame, read_file
from .errors import CleanError
from ..io.errors import InputError

__all__ = ["clean_exports", "clean_frames", "validate_export", "read_frames", "CleanResult",
           "RawFrame", "CleanError", "InputError", "check_inputs", "load_column_map", "LabelMap",
           "read_file", "quality", "sanity", "sanity_checks", "SanityReport"]
