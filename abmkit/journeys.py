"""Per-account touches: every touchpoint resolved to the account it belongs to.

This is the shared floor of engagement, attribution and progression: a touch
belongs to its own ``account_id`` when it has one (account-level touches such as
ad impressions), otherwise to the account its contact maps to (DESIGN §2).
Touches of unmatched contacts are kept with ``account_id`` None and
``account_source`` ``"unattributable"``: reported, never dropped.

Example
-------
>>> import pandas as pd
>>> from abmkit.schema import Dataset
>>> ds = Dataset.from_frames(
...     accounts=pd.DataFrame({"account_id": ["a1"], "account_name": ["Acme"]}),
...     touchpoints=pd.DataFrame({"touchpoint_id": ["t1", "t2"], "occurred_at": ["2026-01-01", "2026-01-02"],
...                               "channel": ["email", "display"], "touch_type": ["email_click", "impression"],
...                               "contact_id": ["c1", None], "account_id": [None, "a1"]}))
>>> m = pd.DataFrame({"contact_id": ["c1"], "account_id": ["a1"]})
>>> account_touches(ds, m)[["touchpoint_id", "account_id", "account_source"]].values.tolist()
[['t1', 'a1', 'contact'], ['t2', 'a1', 'touch']]
"""
from __future__ import annotations

import pandas as pd

from .schema import Dataset


def account_touches(dataset: Dataset, contact_accounts: pd.DataFrame | None = None) -> pd.DataFrame:
    """Touchpoints with ``account_id`` resolved and ``account_source`` in
    {touch, contact, unattributable}.

    Parameters
    ----------
    dataset : Dataset
    contact_accounts : DataFrame, optional
        ``contact_id, account_id`` (the output of :func:`abmkit.mapping.map_contacts`).
        When None, contacts are mapped with the default rules.
    """
    tp = dataset.touchpoints
    if contact_accounts is None:
        from .mapping import map_contacts  # mapping is heavier; only when needed
        contact_accounts = map_contacts(dataset.contacts, dataset.accounts)
    lookup = contact_accounts.dropna(subset=["account_id"]).drop_duplicates("contact_id")
    lookup = lookup.set_index("contact_id")["account_id"]
    own = tp["account_id"]
    via_contact = tp["contact_id"].map(lookup)
    out = tp.copy()
    out["account_id"] = own.where(own.notna(), via_contact).astype(object)
    out["account_id"] = out["account_id"].where(out["account_id"].notna(), None)
    source = pd.Series("unattributable", index=tp.index, dtype=object)
    source[via_contact.notna() & own.isna()] = "contact"
    source[own.notna()] = "touch"
    out["account_source"] = source
    return out


# ---------------------------------------------------------------------------
# Conversion journeys (DESIGN §3), added by the attribution engine.
# Everything below works on integer codes and index arrays: one sort of the
# touches inside the lookback windows, then run-length arithmetic; no loop over
# accounts, conversions or touches.
# ---------------------------------------------------------------------------
from dataclasses import dataclass  # noqa: E402
from functools import cached_property  # noqa: E402

import numpy as np  # noqa: E402

MILESTONES = ("opportunity_created", "closed_won")
_NS_PER_DAY = 86_400 * 10**9


def _utc(ts: pd.Series) -> pd.Series:
    """As UTC-aware datetimes; free when already so (pd.to_datetime would re-parse)."""
    if isinstance(ts.dtype, pd.DatetimeTZDtype):
        return ts.dt.tz_convert("UTC")
    return pd.to_datetime(ts, utc=True)


def _ns(ts: pd.Series) -> np.ndarray:
    """UTC nanoseconds since the epoch as int64 (NaT → min int64); a read-only view
    when the column already is tz-aware nanoseconds (no copy of big touch tables)."""
    if not isinstance(ts.dtype, pd.DatetimeTZDtype):
        ts = pd.to_datetime(ts, utc=True)
    arr = ts.array
    if arr.unit != "ns":
        arr = arr.as_unit("ns")
    return arr.asi8


def conversions(dataset: Dataset, milestone: str = "opportunity_created", *, mqa_dates: pd.DataFrame | None = None,
                start=None, end=None) -> pd.DataFrame:
    """One row per conversion: an opportunity milestone (DESIGN §3).

    Parameters
    ----------
    dataset : Dataset
    milestone : {"opportunity_created", "closed_won"}
        ``opportunity_created``: every opportunity at its ``created_at`` (pipeline);
        ``closed_won``: won opportunities at ``closed_at`` (revenue).
    mqa_dates : DataFrame, optional
        ``account_id, mqa_at`` (e.g. :func:`abmkit.engagement.mqa_dates`); adds ``mqa_at``.
    start, end : timestamp-like, optional
        keep conversions whose milestone date is in ``[start, end)``.

    Returns
    -------
    DataFrame
        ``conversion_id`` (= opportunity_id), account_id, opportunity_id, milestone,
        converted_at, opportunity_created_at, amount (missing → 0), pipeline_amount
        (= amount), revenue_amount (amount when won, else 0), mqa_at.

    Example
    -------
    >>> ds = Dataset.from_frames(opportunities=pd.DataFrame({"opportunity_id": ["o1", "o2"],
    ...     "account_id": ["a1", "a1"], "created_at": ["2026-01-01", "2026-02-01"],
    ...     "closed_at": ["2026-03-01", None], "is_won": [True, None], "amount": [100.0, 50.0]}))
    >>> conversions(ds, "closed_won")[["conversion_id", "revenue_amount"]].values.tolist()
    [['o1', 100.0]]
    """
    if milestone not in MILESTONES:
        raise ValueError(f"milestone must be one of {MILESTONES}, got {milestone!r}")
    opp = dataset.opportunities
    won = opp["is_won"].fillna(False).astype(bool).to_numpy()
    if milestone == "closed_won":
        keep = won & opp["closed_at"].notna().to_numpy()
        opp = opp[keep]
        won = won[keep]
        at = opp["closed_at"]
    else:
        at = opp["created_at"]
    amount = opp["amount"].fillna(0.0).to_numpy(dtype=float)
    out = pd.DataFrame({
        "conversion_id": opp["opportunity_id"].to_numpy(), "account_id": opp["account_id"].to_numpy(),
        "opportunity_id": opp["opportunity_id"].to_numpy(), "milestone": milestone,
        "converted_at": _utc(at).array,  # .array keeps the tz-aware dtype
        "opportunity_created_at": _utc(opp["created_at"]).array,
        "amount": amount, "pipeline_amount": amount, "revenue_amount": np.where(won, amount, 0.0),
    })
    if start is not None or end is not None:
        from .period import resolve_period
        p = resolve_period(start=start if start is not None else "1900-01-01",
                           end=end if end is not None else "2200-01-01")
        out = out[p.contains(out["converted_at"]).to_numpy()]
    if mqa_dates is not None and len(mqa_dates):
        first_mqa = (mqa_dates.dropna(subset=["mqa_at"]).assign(mqa_at=lambda d: _utc(d["mqa_at"]))
                     .groupby("account_id")["mqa_at"].min())
        out["mqa_at"] = out["account_id"].map(first_mqa)
    else:
        out["mqa_at"] = pd.Series(pd.NaT, index=out.index, dtype="datetime64[ns, UTC]")
    return out.reset_index(drop=True)


def resolve_touch_accounts(dataset: Dataset, contact_accounts: pd.DataFrame | None = None) -> np.ndarray:
    """Account of every touchpoint (object array, None when unattributable) with the
    rules of :func:`account_touches`, without copying the touch table. Contacts are
    mapped only when some touch lacks its own ``account_id``."""
    codes, uniques, ids = _touch_account_codes(dataset, contact_accounts)
    return ids if ids is not None else np.asarray(uniques, dtype=object)[codes]


def _touch_account_codes(dataset: Dataset, contact_accounts: pd.DataFrame | None = None):
    """(codes, uniques, account ids) of the touches' accounts; code -1 = unattributable."""
    tp = dataset.touchpoints
    col = tp["account_id"]
    if isinstance(col.dtype, pd.CategoricalDtype):
        # dictionary-encoded ids (e.g. kept as categorical from parquet): the codes are
        # already there, no hashing of millions of strings
        codes = col.cat.codes.to_numpy().astype(np.int64)
        uniques = np.asarray(col.cat.categories, dtype=object)
        if not (codes < 0).any():
            return codes, uniques, None
        col = col.astype(object)
    own = col.to_numpy(dtype=object)
    codes, uniques = pd.factorize(own)  # hashing is faster than pd.isna on object arrays
    missing = codes < 0
    if not missing.any():
        return codes.astype(np.int64), uniques, own
    if contact_accounts is None:
        from .mapping import map_contacts
        contact_accounts = map_contacts(dataset.contacts, dataset.accounts)
    lookup = contact_accounts.dropna(subset=["account_id"]).drop_duplicates("contact_id")
    lookup = lookup.set_index("contact_id")["account_id"]
    out = own.copy()
    out[missing] = tp["contact_id"][missing].map(lookup).to_numpy(dtype=object)
    out[pd.isna(out)] = None
    codes, uniques = pd.factorize(out)
    return codes.astype(np.int64), uniques, out


@dataclass
class ConversionJourneys:
    """Journeys of every conversion plus the non-converting account journeys.

    Journey rows are "journey touches": one per (conversion, touch) pair, grouped by
    conversion and ordered by time (ties by touchpoint_id).

    Attributes
    ----------
    conversions : DataFrame
        one row per conversion (see :func:`conversions`) plus ``n_touches``; rows with
        ``n_touches == 0`` are the ``no_touch`` conversions, reported, never dropped.
    source : DataFrame
        the dataset's touchpoints table (``touches`` adds the resolved account_id).
    source_accounts : ndarray or None
        resolved account id of every touchpoint row (None: the source's own account_id,
        when every touch carries one).
    conv, touch, pos, n : ndarray
        per journey touch: conversion row, touchpoint row (position in ``source``),
        position in journey, journey length.
    channel, touch_type : ndarray
        integer codes (schema taxonomies).
    age_days : ndarray
        days from the touch to the milestone.
    mqa_pos, oc_pos, cw_pos : ndarray
        per conversion: position of the MQA touch (last touch at or before mqa_at),
        of the opportunity-creation touch (last at or before the opportunity's
        created_at) and of the closed-won touch; -1 when there is none.
    nc_account, nc_channel, nc_offsets : ndarray
        non-converting journeys: account index, flat channel codes and offsets.
    accounts : ndarray
        account id of each account index (conversion rows have ``account_index``).
    n_unattributable : int
        touches with no account (left out of journeys, counted here).
    """
    conversions: pd.DataFrame
    source: pd.DataFrame
    source_accounts: np.ndarray
    conv: np.ndarray
    touch: np.ndarray
    pos: np.ndarray
    n: np.ndarray
    channel: np.ndarray
    touch_type: np.ndarray
    age_days: np.ndarray
    mqa_pos: np.ndarray
    oc_pos: np.ndarray
    cw_pos: np.ndarray
    nc_account: np.ndarray
    nc_channel: np.ndarray
    nc_offsets: np.ndarray
    accounts: np.ndarray
    channels: list
    milestone: str
    lookback_days: float
    n_unattributable: int

    @cached_property
    def pipeline_per_touch(self) -> np.ndarray:
        """Pipeline amount of each journey touch's conversion (computed once)."""
        return self.conversions["pipeline_amount"].to_numpy(dtype=float)[self.conv]

    @cached_property
    def revenue_per_touch(self) -> np.ndarray:
        """Revenue amount of each journey touch's conversion (computed once)."""
        return self.conversions["revenue_amount"].to_numpy(dtype=float)[self.conv]

    @property
    def touches(self) -> pd.DataFrame:
        """The touchpoints rows of the journeys, ``touch`` indexes them (built on demand:
        channel-level results never need the id columns)."""
        accounts = self.source_accounts if self.source_accounts is not None else \
            self.source["account_id"].astype(object).to_numpy()
        return self.source.assign(account_id=accounts)[
            ["touchpoint_id", "account_id", "occurred_at", "channel", "touch_type", "campaign_id"]]

    @property
    def no_touch(self) -> pd.DataFrame:
        """Conversions without any touch in their window."""
        return self.conversions[self.conversions["n_touches"] == 0]

    def to_frame(self) -> pd.DataFrame:
        """One row per journey touch: conversion_id, account_id, touchpoint_id, channel,
        touch_type, campaign_id, occurred_at, position, n_touches, age_days and the
        milestone flags is_first, is_mqa, is_opportunity_created, is_closed_won."""
        t = self.touches.iloc[self.touch].reset_index(drop=True)
        conv = self.conversions.iloc[self.conv].reset_index(drop=True)
        return pd.DataFrame({
            "conversion_id": conv["conversion_id"], "account_id": conv["account_id"],
            "touchpoint_id": t["touchpoint_id"], "channel": t["channel"], "touch_type": t["touch_type"],
            "campaign_id": t["campaign_id"], "occurred_at": t["occurred_at"], "position": self.pos,
            "n_touches": self.n, "age_days": self.age_days, "is_first": self.pos == 0,
            "is_mqa": self.pos == self.mqa_pos[self.conv],
            "is_opportunity_created": self.pos == self.oc_pos[self.conv],
            "is_closed_won": self.pos == self.cw_pos[self.conv],
        })

    def paths(self, value: str = "pipeline_amount"):
        """Channel paths (:class:`abmkit.attribution.paths.PathSet`): one per converting
        journey (1 conversion, value = the conversion's ``value`` column) and one per
        non-converting journey (1 null); ``group`` = account index for the bootstrap."""
        from .attribution.paths import PathSet
        conv_rows = np.flatnonzero(self.conversions["n_touches"].to_numpy() > 0)
        n_conv = self.conversions["n_touches"].to_numpy()[conv_rows]
        nc_len = np.diff(self.nc_offsets)
        lengths = np.concatenate([n_conv, nc_len])
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        n_c, n_nc = len(conv_rows), len(nc_len)
        vals = self.conversions[value].to_numpy(dtype=float)[conv_rows]
        return PathSet(channels=list(self.channels),
                       codes=np.concatenate([self.channel, self.nc_channel]).astype(np.int32), offsets=offsets,
                       conversions=np.concatenate([np.ones(n_c), np.zeros(n_nc)]),
                       value=np.concatenate([vals, np.zeros(n_nc)]),
                       null=np.concatenate([np.zeros(n_c), np.ones(n_nc)]),
                       group=np.concatenate([self.conversions["account_index"].to_numpy()[conv_rows],
                                             self.nc_account]).astype(np.int64))

    def summary(self) -> dict:
        c = self.conversions
        return {"milestone": self.milestone, "lookback_days": self.lookback_days, "conversions": len(c),
                "with_touches": int((c["n_touches"] > 0).sum()), "no_touch": int((c["n_touches"] == 0).sum()),
                "journey_touches": int(len(self.conv)), "non_converting_journeys": int(len(self.nc_offsets) - 1),
                "unattributable_touches": int(self.n_unattributable),
                "pipeline": float(c["pipeline_amount"].sum()), "revenue": float(c["revenue_amount"].sum())}


def touch_account_codes(dataset: Dataset, contact_accounts: pd.DataFrame | None = None):
    """Integer account code of every touch (-1 = unattributable), the account ids of the
    codes and the resolved ids; pass it as ``touch_accounts`` to several
    :func:`conversion_journeys` calls on the same dataset to hash the ids once."""
    return _touch_account_codes(dataset, contact_accounts)


def conversion_journeys(dataset: Dataset, milestone: str = "opportunity_created", *, lookback_days: float = 365,
                        contact_accounts: pd.DataFrame | None = None, mqa_dates: pd.DataFrame | None = None,
                        start=None, end=None, non_converting: bool = True, touch_accounts=None) -> ConversionJourneys:
    """Build every conversion's journey (and the non-converting journeys) at once.

    A conversion's journey = the account's touches with ``occurred_at`` in
    ``[milestone − lookback_days, milestone]``, by time then touchpoint_id. A
    non-converting journey = the touches of an account without any conversion (for
    this milestone, at any time: accounts converting outside ``[start, end)`` are in
    neither group) in the ``lookback_days`` up to its last touch.

    Parameters
    ----------
    dataset : Dataset
    milestone, mqa_dates, start, end : see :func:`conversions`
    lookback_days : float
    contact_accounts : DataFrame, optional
        contact_id → account_id (mapping output); only needed when touches lack account_id.
    non_converting : bool
        build the non-converting journeys too (Markov/Shapley need them).
    touch_accounts : tuple, optional
        :func:`touch_account_codes` output, to reuse across calls.

    Example
    -------
    >>> ds = Dataset.from_frames(
    ...     touchpoints=pd.DataFrame({"touchpoint_id": ["t1", "t2", "t3"], "account_id": ["a1"] * 3,
    ...         "occurred_at": ["2026-01-01", "2026-01-05", "2026-03-01"], "channel": ["email", "webinar", "event"],
    ...         "touch_type": ["email_click"] * 3}),
    ...     opportunities=pd.DataFrame({"opportunity_id": ["o1"], "account_id": ["a1"],
    ...         "created_at": ["2026-02-01"], "amount": [10.0]}))
    >>> cj = conversion_journeys(ds)
    >>> cj.to_frame()[["touchpoint_id", "position", "n_touches"]].values.tolist()
    [['t1', 0, 2], ['t2', 1, 2]]
    """
    tp = dataset.touchpoints
    conv = conversions(dataset, milestone, mqa_dates=mqa_dates, start=start, end=end)
    acc_code, acc_uniques, acc_obj = touch_accounts if touch_accounts is not None else \
        _touch_account_codes(dataset, contact_accounts)
    n_unattr = int((acc_code < 0).sum())
    n_acc = len(acc_uniques)
    conv_acc = pd.Index(acc_uniques).get_indexer(conv["account_id"]) if n_acc else np.full(len(conv), -1)
    look_ns = min(int(round(lookback_days * _NS_PER_DAY)), 2**61)  # "forever" without int64 overflow
    t_all = _ns(tp["occurred_at"]) if len(tp) else np.array([], np.int64)
    conv_t = _ns(conv["converted_at"])

    # 1. keep only touches that can be in some window (converting accounts) or that
    #    belong to non-converting accounts; sort just those
    # per-account arrays get one extra slot at the end: code -1 (unattributable) indexes
    # it, so every touch can be gathered without masking first
    big, small = np.iinfo(np.int64).max, np.iinfo(np.int64).min
    has = conv_acc >= 0
    win_lo = np.full(n_acc + 1, big)
    win_hi = np.full(n_acc + 1, small)
    np.minimum.at(win_lo, conv_acc[has], conv_t[has] - look_ns)
    np.maximum.at(win_hi, conv_acc[has], conv_t[has])
    converting_acc = np.zeros(n_acc + 1, bool)
    converting_acc[-1] = True
    all_conv_acc = pd.Index(acc_uniques).get_indexer(
        conversions(dataset, milestone)["account_id"]) if n_acc else np.array([], int)
    converting_acc[all_conv_acc[all_conv_acc >= 0]] = True
    keep = (t_all >= win_lo[acc_code]) & (t_all <= win_hi[acc_code])
    if non_converting and n_acc:
        # non-converting accounts: only their last lookback window is ever used
        last_t = np.full(n_acc + 1, small)
        np.maximum.at(last_t, acc_code, t_all)
        nc_lo = np.where(converting_acc, big, last_t - look_ns)
        keep |= t_all >= nc_lo[acc_code]
    idx = np.flatnonzero(keep)
    a_k, t_k = acc_code[idx], t_all[idx]

    # 2. one integer sort key: account * span + time offset in the coarsest exact unit
    t0 = int(t_k.min()) if len(t_k) else 0
    rel = t_k - t0
    span_ns = int(rel.max()) + 1 if len(rel) else 1
    unit = 1
    for u in (10**9, 10**6, 10**3):
        if len(rel) == 0 or not np.any(rel % u):
            unit = u
            break
    span = span_ns // unit + 1
    if (n_acc + 1) * (span + 1) < 2**62:
        time_key = rel // unit
        uniq_t = None
    else:  # too wide for one int64: dense time ranks instead (exact, one more sort)
        uniq_t, time_key = np.unique(t_k, return_inverse=True)
        span = len(uniq_t)
    key = a_k * (span + 1) + time_key
    order = np.argsort(key)
    key_s = key[order]
    tie = np.zeros(len(key_s), bool)
    if len(key_s) > 1:
        eq = key_s[1:] == key_s[:-1]
        tie[1:] |= eq
        tie[:-1] |= eq
    if tie.any():  # ties in time: order those by touchpoint_id (few rows)
        tpos = np.flatnonzero(tie)
        sub = pd.DataFrame({"k": key_s[tpos], "id": tp["touchpoint_id"].to_numpy()[idx[order[tpos]]],
                            "o": order[tpos]}).sort_values(["k", "id"], kind="stable")
        order[tpos] = sub["o"].to_numpy()
    rows = idx[order]  # dataset row of each sorted touch
    t_s = t_all[rows]

    def bound(acc, ts, side):
        # searchsorted position of (acc, ts) in the sorted keys; ts inclusive
        if uniq_t is None:
            d = ts - t0
            off = -((-d) // unit) if side == "left" else d // unit  # ceil / floor, exact ints
            off = np.clip(off, -1, span)
        else:
            off = (np.searchsorted(uniq_t, ts, "left") if side == "left"
                   else np.searchsorted(uniq_t, ts, "right") - 1)
        return np.searchsorted(key_s, acc * (span + 1) + off, side)

    lo = np.zeros(len(conv), np.int64)
    hi = np.zeros(len(conv), np.int64)
    if has.any():
        lo[has] = bound(conv_acc[has], conv_t[has] - look_ns, "left")
        hi[has] = bound(conv_acc[has], conv_t[has], "right")
    n_conv = hi - lo

    # 3. expand windows into journey touches (run-length arithmetic)
    total = int(n_conv.sum())
    jconv = np.repeat(np.arange(len(conv)), n_conv)
    starts = np.cumsum(n_conv) - n_conv
    pos = np.arange(total) - np.repeat(starts, n_conv)
    srow = np.repeat(lo, n_conv) + pos
    drow = rows[srow]
    n_rep = n_conv[jconv]

    def last_at_or_before(ts):
        p = np.full(len(conv), -1, np.int64)
        ok = has & (n_conv > 0) & (ts != np.iinfo(np.int64).min) & (ts <= conv_t)  # min int64 = NaT
        if ok.any():
            m = bound(conv_acc[ok], ts[ok], "right") - 1
            rel_p = m - lo[ok]
            p[ok] = np.where(rel_p >= 0, rel_p, -1)
        return p

    mqa_t = _ns(conv["mqa_at"])
    mqa_pos = last_at_or_before(mqa_t) if conv["mqa_at"].notna().any() else np.full(len(conv), -1, np.int64)
    if milestone == "opportunity_created":
        oc_pos = np.where(n_conv > 0, n_conv - 1, -1)
        cw_pos = np.full(len(conv), -1, np.int64)
    else:
        oc_pos = last_at_or_before(_ns(conv["opportunity_created_at"]))
        cw_pos = np.where(n_conv > 0, n_conv - 1, -1)
    age = (conv_t[jconv] - t_all[drow]) / _NS_PER_DAY

    # 4. non-converting journeys: the lookback window up to each account's last touch
    if non_converting and len(key_s):
        acc_s = a_k[order]
        grp_start = np.flatnonzero(np.r_[True, acc_s[1:] != acc_s[:-1]])
        grp_end = np.r_[grp_start[1:], len(acc_s)]
        g_acc = acc_s[grp_start]
        nc = ~converting_acc[g_acc]
        g_acc, g_end = g_acc[nc], grp_end[nc]
        last_t = t_s[g_end - 1]
        g_lo = bound(g_acc, last_t - look_ns, "left")
        nc_len = g_end - g_lo
        nc_off = np.concatenate([[0], np.cumsum(nc_len)]).astype(np.int64)
        nc_rows = np.repeat(g_lo, nc_len) + (np.arange(nc_off[-1]) - np.repeat(nc_off[:-1], nc_len))
        nc_channel = tp["channel"].cat.codes.to_numpy()[rows[nc_rows]]
        nc_account = g_acc
    else:
        nc_off, nc_channel, nc_account = np.zeros(1, np.int64), np.array([], np.int16), np.array([], np.int64)

    conv = conv.assign(n_touches=n_conv, account_index=conv_acc)
    return ConversionJourneys(
        conversions=conv, source=tp, source_accounts=acc_obj, conv=jconv, touch=drow, pos=pos, n=n_rep,
        channel=tp["channel"].cat.codes.to_numpy()[drow].astype(np.int16),
        touch_type=tp["touch_type"].cat.codes.to_numpy()[drow].astype(np.int16), age_days=age,
        mqa_pos=mqa_pos, oc_pos=oc_pos, cw_pos=cw_pos, nc_account=nc_account,
        nc_channel=np.asarray(nc_channel, np.int16), nc_offsets=nc_off, accounts=np.asarray(acc_uniques, dtype=object),
        channels=list(tp["channel"].cat.categories), milestone=milestone, lookback_days=lookback_days,
        n_unattributable=n_unattr)
