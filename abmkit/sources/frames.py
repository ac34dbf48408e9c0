"""Data frames in memory as a source (a notebook that already holds the exports).

Example
-------
>>> import pandas as pd
>>> src = FrameSource({"touchpoints": pd.DataFrame({"when": pd.to_datetime(["2026-01-02"], utc=True)})})
>>> src.read("touchpoints", table="touchpoints").data["when"].tolist()
['2026-01-02 00:00:00.000000000Z']
"""
from __future__ import annotations

from typing import Mapping

import pandas as pd
import pyarrow as pa

from ..io.csv import RawFrame
from ..io.errors import CleanError
from .base import Source, table_to_strings


class FrameSource(Source):
    """Tables given as pandas DataFrames, keyed by name (``{"accounts": df, ...}``).
    Values of any dtype are turned into strings and cleaned like a CSV's."""

    kind = "frames"

    def __init__(self, frames: Mapping[str, pd.DataFrame], label: str = "data frames"):
        bad = [k for k, v in frames.items() if not isinstance(v, pd.DataFrame)]
        if bad:
            raise CleanError(f"{label}: {bad} are not pandas DataFrames; pass {{table name: DataFrame}}.")
        self.frames = {str(k): v for k, v in frames.items()}
        self.label = label

    def names(self) -> list[str]:
        return list(self.frames)

    def read(self, name: str, *, table: str, block: Mapping | None = None) -> RawFrame:
        df = self.frames[name]
        dup = df.columns[df.columns.duplicated()].tolist()
        if dup:
            raise CleanError(f"{self.label}: frame {name!r} has duplicated column names {dup}; rename them.")
        arrow = pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False)
        return RawFrame(name, table_to_strings(arrow))
