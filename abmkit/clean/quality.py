"""Tidy frames about a cleaning run, for notebook 01 and the report (the plots in
:mod:`abmkit.plots.cleaning` draw them and compute nothing).

Nothing here shows personal data: the ledger's raw values and the repaired
values (which can be e-mail addresses) are summarised as counts.

Example
-------
>>> from abmkit.clean import clean_exports
>>> r = clean_exports("tests/data/messy/basic", "tests/data/messy/basic/column_map.yaml")  # doctest: +SKIP
>>> rows_per_table(r).columns.tolist()                                                     # doctest: +SKIP
['table', 'outcome', 'rows']
"""
from __future__ import annotations

import pandas as pd

from ..period import Period
from .core import CleanResult

REASON_MEANINGS = {
    "malformed_row": "the record has more or fewer fields than the header (a broken export line)",
    "unbalanced_quote": "a line whose opening quote never closes (it would swallow the lines after it): set "
                        "aside, the next lines read normally",
    "missing_required": "a required value (id, timestamp, channel, ...) is empty",
    "unparseable_timestamp": "a date/time no known format reads (or an impossible date like 31 Feb)",
    "unparseable_number": "a number that cannot be read, even allowing currency symbols and separators",
    "unparseable_boolean": "a yes/no value that is not true/false, yes/no, 1/0",
    "negative_amount": "a negative money amount (amount, cost, revenue)",
    "negative_number": "a negative count or duration (seconds, employees, users)",
    "unmapped_channel": "a source channel label that neither the column map nor the shipped table knows",
    "unmapped_touch_type": "an activity label that neither the column map nor the shipped table knows",
    "future_timestamp": "a touch or opportunity dated more than a year after today (test record or typo)",
    "no_contact_or_account": "a touch tied to no contact and no account",
    "duplicate_key_conflict": "the id was already used by an earlier row with different content (first kept)",
    "orphan_reference": "the row points at a contact or account that is not in the export",
}


def rows_per_table(result: CleanResult) -> pd.DataFrame:
    """Long frame ``table, outcome (clean/rejected/merged), rows``."""
    s = result.to_frame()
    long = s.melt(id_vars="table", value_vars=["rows_clean", "rows_rejected", "rows_merged"],
                  var_name="outcome", value_name="rows")
    long["outcome"] = long["outcome"].str.replace("rows_", "", regex=False)
    return long.reset_index(drop=True)


def rejects_by_reason(result: CleanResult) -> pd.DataFrame:
    """``table, reason_code, rows, share_of_table, meaning`` sorted by rows."""
    r = result.rejects_by_reason()
    rows_in = result.to_frame().set_index("table")["rows_in"]
    r["share_of_table"] = r["rows"] / r["table"].map(rows_in).astype(float)
    r["meaning"] = r["reason_code"].map(REASON_MEANINGS)
    return r


def repairs_by_issue(result: CleanResult) -> pd.DataFrame:
    """Kept rows with a fixed or blanked value: ``table, column, issue, action, rows``."""
    rep = result.repairs
    if rep.empty:
        return pd.DataFrame(columns=["table", "column", "issue", "action", "rows"])
    return (rep.groupby(["table", "column", "issue", "action"]).size().rename("rows").reset_index()
            .sort_values("rows", ascending=False, kind="stable").reset_index(drop=True))


def touches_per_month(touchpoints: pd.DataFrame) -> pd.DataFrame:
    """``month`` (first day, UTC), ``channel``, ``touches``: zero-filled over the
    months and channels present."""
    if touchpoints.empty:
        return pd.DataFrame({"month": pd.Series([], dtype="datetime64[ns]"), "channel": [], "touches": []})
    month = touchpoints["occurred_at"].dt.tz_convert("UTC").dt.tz_localize(None).dt.to_period("M").dt.to_timestamp()
    counts = pd.crosstab(month, touchpoints["channel"].astype(str))
    full = pd.date_range(counts.index.min(), counts.index.max(), freq="MS")
    counts = counts.reindex(full, fill_value=0)
    counts.index.name, counts.columns.name = "month", "channel"
    return counts.stack().rename("touches").reset_index()


def findings(result: CleanResult, period: Period | None = None, sanity=None) -> dict:
    """Headline numbers of a cleaning run (JSON-safe), for the report, with the data
    sanity checks' counts and messages (``sanity_warnings``: one "severity: message" per
    check that fired; ``sanity``: a :class:`~abmkit.clean.sanity.SanityReport`, computed
    with ``period`` when not given)."""
    s = result.to_frame()
    out = {
        "rows_in": int(s["rows_in"].sum()), "rows_clean": int(s["rows_clean"].sum()),
        "rows_rejected": int(s["rows_rejected"].sum()), "rows_merged": int(s["rows_merged"].sum()),
        "rows_repaired": int(s["rows_repaired"].sum()), "conservation_ok": bool(s["conservation_ok"].all()),
        "unmapped_labels": int(len(result.unmapped)),
        "unmapped_rows": int(result.unmapped["rows"].sum()) if len(result.unmapped) else 0,
    }
    out["reject_rate"] = out["rows_rejected"] / out["rows_in"] if out["rows_in"] else 0.0
    by = result.rejects_by_reason()
    out["top_reject_reason"] = str(by.iloc[0]["reason_code"]) if len(by) else None
    for name, row in s.set_index("table").iterrows():
        out[f"{name}_rows_clean"] = int(row["rows_clean"])
    if period is not None:
        tp = result.dataset.touchpoints
        out["period"] = period.label
        if len(tp):  # no touch export: no count to state (a 0 would read as a quiet period)
            out["touches_in_period"] = int(period.contains(tp["occurred_at"]).sum())
            out["touches_in_previous_period"] = int(period.previous.contains(tp["occurred_at"]).sum())
    out.update((sanity if sanity is not None else result.sanity_checks(period)).findings())
    return out
