"""Reporting periods: a quarter (``2026Q3``) or any ``start``/``end`` dates, and the
previous period of the same length (see docs/report_and_scheduling.md).

Example
-------
>>> p = resolve_period(quarter="2026Q3")
>>> p.label, str(p.start.date()), str(p.end.date()), p.previous.label
('2026Q3', '2026-07-01', '2026-10-01', '2026Q2')
>>> resolve_period(start="2026-03-01", end="2026-03-29").previous.label
'2026-02-01_2026-03-01'
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

_QUARTER = re.compile(r"^\s*(\d{4})\s*-?\s*Q([1-4])\s*$", re.I)


@dataclass(frozen=True)
class Period:
    """Half-open UTC interval ``[start, end)`` with a label for folders and titles."""
    start: pd.Timestamp
    end: pd.Timestamp
    label: str
    is_quarter: bool = False

    @property
    def days(self) -> int:
        return int((self.end - self.start) / pd.Timedelta(days=1))

    @property
    def previous(self) -> "Period":
        if self.is_quarter:
            q = pd.Period(self.start.tz_localize(None), freq="Q") - 1
            return quarter_period(f"{q.year}Q{q.quarter}")
        length = self.end - self.start
        return _dates_period(self.start - length, self.start)

    def contains(self, ts: pd.Series) -> pd.Series:
        """Boolean mask of timestamps inside ``[start, end)``."""
        return (ts >= self.start) & (ts < self.end)


def quarter_period(quarter: str) -> Period:
    m = _QUARTER.match(str(quarter))
    if not m:
        raise ValueError(f"quarter {quarter!r} is not like '2026Q3'")
    year, q = int(m.group(1)), int(m.group(2))
    start = pd.Timestamp(year=year, month=3 * (q - 1) + 1, day=1, tz="UTC")
    return Period(start, start + pd.DateOffset(months=3), f"{year}Q{q}", True)


def _dates_period(start, end) -> Period:
    s, e = pd.Timestamp(start), pd.Timestamp(end)
    s = s.tz_localize("UTC") if s.tzinfo is None else s.tz_convert("UTC")
    e = e.tz_localize("UTC") if e.tzinfo is None else e.tz_convert("UTC")
    if e <= s:
        raise ValueError(f"period end {e.date()} must be after start {s.date()}")
    return Period(s, e, f"{s.date()}_{e.date()}", False)


def format_period(period: Period, *, dates: bool = True) -> str:
    """The one human label of a period, used by every title and sentence of the report
    (the folder label ``2026Q3`` / ``2026-03-01_2026-03-29`` stays a file name).

    A quarter reads ``Q3 2026``, a calendar month ``March 2026``, any other range its
    first and last day (the end is exclusive, so the last day is the day before it);
    ``dates`` adds the days (and a custom range its length).

    >>> format_period(resolve_period(quarter="2026Q3"))
    'Q3 2026 (1 Jul to 30 Sep 2026)'
    >>> format_period(resolve_period(start="2026-03-01", end="2026-03-29"))
    '1 Mar to 28 Mar 2026 (28 days)'
    >>> format_period(resolve_period(start="2026-03-01", end="2026-04-01"), dates=False)
    'March 2026'
    """
    s, last = period.start, period.end - pd.Timedelta(days=1)

    def day(ts, year=True):
        return f"{ts.day} {ts.strftime('%b')}" + (f" {ts.year}" if year else "")

    span = f"{day(s, s.year != last.year)} to {day(last)}"
    if period.is_quarter:
        name = f"Q{(s.month - 1) // 3 + 1} {s.year}"
        return f"{name} ({span})" if dates else name
    if _is_month(period):
        name = s.strftime("%B %Y")
        return f"{name} ({span})" if dates else name
    return f"{span} ({period.days} days)" if dates else span


def period_from_label(label) -> Period:
    """The period a folder label names: ``2026Q3`` or ``<start>_<end>`` (end exclusive,
    as :attr:`Period.label` writes it). Raises ValueError for anything else.

    >>> period_from_label("2026-03-01_2026-03-29").days
    28
    """
    text = str(label)
    if _QUARTER.match(text):
        return quarter_period(text)
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2})_(\d{4}-\d{2}-\d{2})", text)
    if not m:
        raise ValueError(f"{text!r} is not a period label like '2026Q3' or '2026-03-01_2026-03-29'")
    return _dates_period(m.group(1), m.group(2))


def period_axis_label(label) -> str:
    """The short human label of a period folder label, for chart axes and table rows:
    ``2026Q3`` reads ``Q3 2026``, a calendar month its name, any other range its days.
    Anything else is returned as it is.

    >>> period_axis_label("2026Q3"), period_axis_label("2026-03-01_2026-04-01")
    ('Q3 2026', 'March 2026')
    >>> period_axis_label("2026-03-01_2026-03-29")
    '1 Mar to 28 Mar 2026'
    """
    try:
        return format_period(period_from_label(label), dates=False)
    except ValueError:
        return str(label)


def report_title(period: Period) -> str:
    """``Quarterly ABM report: Q3 2026``, ``Monthly ABM report: March 2026`` or, for any
    other range, ``ABM report: 1 Mar to 28 Mar 2026 (28 days)``: a 28-day run is never
    called quarterly.

    >>> report_title(resolve_period(start="2026-03-01", end="2026-03-29"))
    'ABM report: 1 Mar to 28 Mar 2026 (28 days)'
    """
    if period.is_quarter:
        return f"Quarterly ABM report: {format_period(period, dates=False)}"
    if _is_month(period):
        return f"Monthly ABM report: {format_period(period, dates=False)}"
    return f"ABM report: {format_period(period)}"


def _is_month(period: Period) -> bool:
    return period.start.day == 1 and period.end == period.start + pd.DateOffset(months=1)


def resolve_period(quarter: str | None = None, start=None, end=None) -> Period:
    """A :class:`Period` from a quarter label or from ``start``/``end`` (end exclusive)."""
    if start is not None or end is not None:
        if start is None or end is None:
            raise ValueError("give both start and end, or a quarter")
        return _dates_period(start, end)
    if quarter is None:
        raise ValueError("give a quarter like '2026Q3' or start and end dates")
    return quarter_period(quarter)
