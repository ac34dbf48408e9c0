"""Tiny hand-made datasets for the attribution tests."""
from __future__ import annotations

import pandas as pd

from abmkit.prepared import prepare
from abmkit.schema import Dataset

BASE = pd.Timestamp("2026-01-01", tz="UTC")


def day(d: float) -> pd.Timestamp:
    return BASE + pd.Timedelta(days=d)


def make_dataset(touches, opps, *, contacts=None) -> Dataset:
    """touches: (touchpoint_id, account_id, day, channel[, touch_type[, contact_id[, campaign_id]]]);
    opps: (opportunity_id, account_id, created_day, amount[, closed_day, is_won])."""
    rows = []
    for t in touches:
        t = list(t) + [None] * (7 - len(t))
        rows.append({"touchpoint_id": t[0], "account_id": t[1], "occurred_at": day(t[2]), "channel": t[3],
                     "touch_type": t[4] or "click", "contact_id": t[5], "campaign_id": t[6]})
    orows = []
    for o in opps:
        o = list(o) + [None] * (6 - len(o))
        orows.append({"opportunity_id": o[0], "account_id": o[1], "created_at": day(o[2]), "amount": o[3],
                      "closed_at": day(o[4]) if o[4] is not None else None,
                      "is_closed": o[4] is not None, "is_won": o[5]})
    frames = {"touchpoints": pd.DataFrame(rows), "opportunities": pd.DataFrame(orows)}
    accs = sorted({r["account_id"] for r in rows if r["account_id"]} | {r["account_id"] for r in orows})
    frames["accounts"] = pd.DataFrame({"account_id": accs, "account_name": accs})
    if contacts is not None:
        frames["contacts"] = contacts
    return Dataset.from_frames(**frames)


def with_mqa_dates(ds: Dataset, mqa_dates: pd.DataFrame | None = None, **prepare_kw):
    """``ds`` resolved (:func:`abmkit.prepared.prepare`) with hand-made MQA dates
    (``account_id, mqa_at``) seeded as the dataset's MQA dates, so the MQA-based models
    use them instead of the dataset's MQA rule."""
    data = prepare(ds, **prepare_kw)
    if mqa_dates is not None:
        data.memo(("mqa_dates",), lambda: mqa_dates)
    return data


def credits_by_touch(df) -> dict:
    return dict(zip(df["touchpoint_id"], df["credit"].round(12)))
