"""Time helpers shared by every module: UTC timestamps and int64 nanoseconds.

The kit stores timestamps as timezone-aware UTC. The array kernels (journeys,
engagement, progression, uplift) work on int64 nanoseconds since the epoch; missing
times become a sentinel chosen by the caller's arithmetic: ``NS_NAT`` (the smallest
int64, pandas' own NaT value) where "before everything" is right, ``NS_INF`` (the
largest) where "never happened" must sort last.

Example
-------
>>> import pandas as pd
>>> utc_timestamp("2026-07-01")
Timestamp('2026-07-01 00:00:00+0000', tz='UTC')
>>> to_ns(pd.Series(pd.to_datetime(["1970-01-02", None], utc=True))).tolist() == [DAY_NS, NS_NAT]
True
>>> to_ns_or_inf(pd.Series(pd.to_datetime(["1970-01-02", None], utc=True))).tolist() == [DAY_NS, NS_INF]
True
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["DAY_NS", "NS_NAT", "NS_INF", "utc_timestamp", "utc_series", "to_ns", "to_ns_or_inf"]

#: nanoseconds per day
DAY_NS = 86_400 * 10**9
#: int64 value of NaT (smallest int64)
NS_NAT = int(np.iinfo(np.int64).min)
#: "never" (largest int64): sorts after every real instant
NS_INF = int(np.iinfo(np.int64).max)


def utc_timestamp(value) -> pd.Timestamp:
    """One instant as a UTC-aware Timestamp (a naive value is taken as UTC)."""
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def utc_series(ts: pd.Series) -> pd.Series:
    """A column as UTC-aware datetimes; free when it already is (pd.to_datetime would
    parse again)."""
    if isinstance(ts.dtype, pd.DatetimeTZDtype):
        return ts.dt.tz_convert("UTC")
    return pd.to_datetime(ts, utc=True)


def to_ns(ts: pd.Series) -> np.ndarray:
    """UTC nanoseconds since the epoch as int64, NaT as :data:`NS_NAT`; a read-only
    view when the column already is tz-aware nanoseconds (no copy of big tables)."""
    if not isinstance(ts.dtype, pd.DatetimeTZDtype):
        ts = pd.to_datetime(ts, utc=True)
    arr = ts.array
    if arr.unit != "ns":
        arr = arr.as_unit("ns")
    return arr.asi8


def to_ns_or_inf(ts: pd.Series) -> np.ndarray:
    """Like :func:`to_ns` but NaT as :data:`NS_INF` ("never"), in a fresh array."""
    out = np.array(to_ns(ts), dtype=np.int64, copy=True)
    out[out == NS_NAT] = NS_INF
    return out
