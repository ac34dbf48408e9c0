"""Per-account touches: every touchpoint resolved to the account it belongs to.

This is the shared floor of engagement, attribution and progression: a touch
belongs to its own ``account_id`` when it has one (account-level touches such as
ad impressions), otherwise to the account its contact maps to (see docs/mapping.md).
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
>>> from abmkit.prepared import prepare
>>> m = pd.DataFrame({"contact_id": ["c1"], "account_id": ["a1"]})
>>> account_touches(prepare(ds, mapping=m))[["touchpoint_id", "account_id", "account_source"]].values.tolist()
[['t1', 'a1', 'contact'], ['t2', 'a1', 'touch']]
"""
from __future__ import annotations

import pandas as pd

from .results import Result
from .prepared import resolve
from .schema import Dataset
from .timeutil import DAY_NS as _NS_PER_DAY
from .timeutil import to_ns as _ns
from .timeutil import utc_series as _utc


def account_touches(data) -> pd.DataFrame:
    """Touchpoints with ``account_id`` resolved (plain strings, None when no account)
    and ``account_source`` in {touch, contact, unattributable}.

    Parameters
    ----------
    data : ResolvedDataset
        :func:`abmkit.prepare` output (a plain Dataset is prepared with the default
        settings). The touches come from its one mapping: nothing is mapped here.
    """
    data = resolve(data)

    def build():
        tp = data.touches
        acc = tp["account_id"].astype(object)
        return tp.assign(account_id=acc.where(acc.notna(), None))
    return data.memo(("account_touches",), build)


# ---------------------------------------------------------------------------
# Conversion journeys (docs/attribution.md), added by the attribution engine.
# Everything below works on integer codes and index arrays: one sort of the
# touches inside the lookback windows, then run-length arithmetic; no loop over
# accounts, conversions or touches.
# ---------------------------------------------------------------------------
from dataclasses import dataclass  # noqa: E402
from functools import cached_property  # noqa: E402

import numpy as np  # noqa: E402

MILESTONES = ("opportunity_created", "closed_won")


def conversions(dataset: Dataset, milestone: str = "opportunity_created", *, mqa_dates: pd.DataFrame | None = None,
                start=None, end=None) -> pd.DataFrame:
    """One row per conversion: an opportunity milestone.

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
        out["mqa_at"] = _first_mqa(mqa_dates, out["account_id"])
    else:
        out["mqa_at"] = pd.Series(pd.NaT, index=out.index, dtype="datetime64[ns, UTC]")
    return out.reset_index(drop=True)


def _first_mqa(mqa_dates: pd.DataFrame, account_ids: pd.Series) -> pd.Series:
    """Earliest ``mqa_at`` of each of ``account_ids`` (NaT when none): integer codes and
    ``np.minimum.at`` rather than a groupby on string ids (several times faster)."""
    m = mqa_dates.dropna(subset=["mqa_at"])
    at = _utc(m["mqa_at"]).array
    unit = at.unit
    codes, ids = pd.factorize(m["account_id"].to_numpy(dtype=object))
    nat = np.iinfo(np.int64).min
    first = np.full(len(ids) + 1, np.iinfo(np.int64).max)
    ok = codes >= 0
    np.minimum.at(first, codes[ok], at.asi8[ok])
    first[-1] = nat  # accounts without an MQA index the extra slot
    where = pd.Index(ids).get_indexer(account_ids.to_numpy(dtype=object)) if len(ids) else \
        np.full(len(account_ids), -1)
    vals = first[where].view(f"M8[{unit}]")
    return pd.Series(pd.DatetimeIndex(vals).tz_localize("UTC"), index=account_ids.index)


def _touch_account_codes(data):
    """(codes, account ids of the codes) of the touches' accounts, straight from
    the resolved dataset's dictionary-encoded ``account_id``: code -1 = unattributable
    (contacts were resolved to accounts once, by :func:`abmkit.prepare`)."""
    col = resolve(data).touches["account_id"]
    codes = col.cat.codes.to_numpy().astype(np.int64)
    return codes, np.asarray(col.cat.categories, dtype=object)


@dataclass
class ConversionJourneys(Result):
    """Journeys of every conversion plus the non-converting account journeys.

    Journey rows are "journey touches": one per (conversion, touch) pair, grouped by
    conversion and ordered by time (ties by touchpoint_id).

    Attributes
    ----------
    conversions : DataFrame
        one row per conversion (see :func:`conversions`) plus ``n_touches``; rows with
        ``n_touches == 0`` are the ``no_touch`` conversions, reported, never dropped.
    source : DataFrame
        the resolved dataset's touches (``account_id`` already resolved to accounts).
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
    def conversion_channel_cells(self) -> np.ndarray:
        """Cell ``conv * n_channels + channel`` of every journey touch in the conversion ×
        channel matrix (computed once; every model's aggregation reuses it)."""
        return self.conv.astype(np.int64) * len(self.channels) + self.channel

    @cached_property
    def conversion_amounts(self) -> np.ndarray:
        """n_conversions × 3: 1, pipeline amount, revenue amount (weights that turn a
        conversion × channel credit matrix into conversions, pipeline and revenue)."""
        c = self.conversions
        return np.column_stack([np.ones(len(c)), c["pipeline_amount"].to_numpy(dtype=float),
                                c["revenue_amount"].to_numpy(dtype=float)])

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
        return self.source.assign(account_id=self.source["account_id"].astype(object).to_numpy())[
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

    _summary_title = "Conversion journeys"

    @property
    def info(self) -> dict:
        """Journey counts as a plain dict: milestone, lookback_days, conversions,
        with_touches, no_touch, journey_touches, non_converting_journeys,
        unattributable_touches, pipeline, revenue."""
        c = self.conversions
        return {"milestone": self.milestone, "lookback_days": self.lookback_days, "conversions": len(c),
                "with_touches": int((c["n_touches"] > 0).sum()), "no_touch": int((c["n_touches"] == 0).sum()),
                "journey_touches": int(len(self.conv)), "non_converting_journeys": int(len(self.nc_offsets) - 1),
                "unattributable_touches": int(self.n_unattributable),
                "pipeline": float(c["pipeline_amount"].sum()), "revenue": float(c["revenue_amount"].sum())}

    @property
    def summary(self) -> pd.DataFrame:
        """The journey counts of :attr:`info` (milestone and lookback aside: they are
        metadata) as a two-column table (metric, value)."""
        info = {k: v for k, v in self.info.items() if k not in ("milestone", "lookback_days")}
        return pd.DataFrame({"metric": list(info), "value": pd.Series(list(info.values()), dtype=object)})


def conversion_journeys(data, milestone: str = "opportunity_created", *, lookback_days: float = 365,
                        start=None, end=None, non_converting: bool = True, with_mqa: bool = True) -> ConversionJourneys:
    """Build every conversion's journey (and the non-converting journeys) at once.

    A conversion's journey = the account's touches with ``occurred_at`` in
    ``[milestone − lookback_days, milestone]``, by time then touchpoint_id. A
    non-converting journey = the touches of an account without any conversion (for
    this milestone, at any time: accounts converting outside ``[start, end)`` are in
    neither group) in the ``lookback_days`` up to its last touch.

    Parameters
    ----------
    data : ResolvedDataset
        :func:`abmkit.prepare` output (touches already on their accounts; a plain
        Dataset is prepared with the default settings).
    milestone, start, end : see :func:`conversions`
    lookback_days : float
    non_converting : bool
        build the non-converting journeys too (Markov/Shapley need them).
    with_mqa : bool
        mark each journey's MQA touch (last touch at or before the account's first
        ``mqa_at`` under the dataset's MQA rule; W-shaped and full-path use it).

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
    return milestone_journeys(data, (milestone,), lookback_days=lookback_days, start=start, end=end,
                              non_converting=non_converting, with_mqa=with_mqa)[milestone]


def milestone_journeys(data, milestones=MILESTONES, *, lookback_days: float = 365,
                       start=None, end=None, non_converting: bool = True, with_mqa: bool = True) -> dict:
    """Journeys of several milestones from one pass over the touches.

    Same journeys as one :func:`conversion_journeys` call per milestone, but the
    account ids are hashed and the touches inside any window are sorted once for all
    milestones (pipeline and revenue attribution of a report share that work).

    Parameters
    ----------
    data : ResolvedDataset
    milestones : str or sequence of {"opportunity_created", "closed_won"}
    lookback_days, start, end, non_converting, with_mqa :
        as in :func:`conversion_journeys`.

    Returns
    -------
    dict
        milestone → :class:`ConversionJourneys`.

    Example
    -------
    >>> ds = Dataset.from_frames(
    ...     touchpoints=pd.DataFrame({"touchpoint_id": ["t1", "t2"], "account_id": ["a1"] * 2,
    ...         "occurred_at": ["2026-01-01", "2026-02-15"], "channel": ["email", "event"],
    ...         "touch_type": ["email_click"] * 2}),
    ...     opportunities=pd.DataFrame({"opportunity_id": ["o1"], "account_id": ["a1"], "created_at": ["2026-02-01"],
    ...         "closed_at": ["2026-03-01"], "is_won": [True], "amount": [10.0]}))
    >>> {m: cj.info["journey_touches"] for m, cj in milestone_journeys(ds).items()}
    {'opportunity_created': 1, 'closed_won': 2}
    """
    milestones = [milestones] if isinstance(milestones, str) else list(dict.fromkeys(milestones))
    dataset = resolve(data)
    tp = dataset.touchpoints
    convs = _milestone_conversions(dataset, milestones, start, end, with_mqa)
    acc_code, acc_uniques = _touch_account_codes(dataset)
    n_acc = len(acc_uniques)
    # the categories Index of the resolved column: its hash table is built once and cached
    acc_index = tp["account_id"].cat.categories
    n_unattr = int(np.count_nonzero(acc_code < 0)) if acc_code.min(initial=0) < 0 else 0
    look_ns = min(int(round(lookback_days * _NS_PER_DAY)), 2**61)  # "forever" without int64 overflow
    t_all = _ns(tp["occurred_at"]) if len(tp) else np.array([], np.int64)

    windows = {m: _conversion_windows(dataset, m, convs[m], acc_index, n_acc, start, end) for m in milestones}
    idx = _touches_in_windows(acc_code, t_all, windows.values(), n_acc, look_ns, non_converting)
    st = _SortedTouches.build(acc_code[idx], t_all[idx], idx, tp["touchpoint_id"], n_acc)
    del idx
    channel_codes = tp["channel"].cat.codes.to_numpy()
    touch_type_codes = tp["touch_type"].cat.codes.to_numpy()
    groups = st.account_runs() if non_converting and len(st.key) else None
    out = {}
    for milestone in milestones:
        conv, (ca, ct, converting) = convs[milestone], windows[milestone]
        j = _expand_windows(st, conv, ca, ct, look_ns, milestone)
        if groups is not None:
            nc_account, nc_channel, nc_off = _non_converting_journeys(st, groups, converting, look_ns,
                                                                      channel_codes)
        else:
            nc_off, nc_channel, nc_account = np.zeros(1, np.int64), np.array([], np.int16), np.array([], np.int64)
        out[milestone] = ConversionJourneys(
            conversions=conv.assign(n_touches=j["n_conv"], account_index=ca), source=tp,
            conv=j["conv"], touch=j["touch"], pos=j["pos"], n=j["n"],
            channel=channel_codes[j["touch"]].astype(np.int16),
            touch_type=touch_type_codes[j["touch"]].astype(np.int16), age_days=j["age_days"],
            mqa_pos=j["mqa_pos"], oc_pos=j["oc_pos"], cw_pos=j["cw_pos"], nc_account=nc_account,
            nc_channel=np.asarray(nc_channel, np.int16), nc_offsets=nc_off,
            accounts=np.asarray(acc_uniques, dtype=object), channels=list(tp["channel"].cat.categories),
            milestone=milestone, lookback_days=lookback_days, n_unattributable=n_unattr)
    return out


# --------------------------------------------------------------------------- journey steps
_BIG, _SMALL = np.iinfo(np.int64).max, np.iinfo(np.int64).min


def _milestone_conversions(dataset, milestones, start, end, with_mqa: bool) -> dict:
    """Step 1: the conversions of each milestone in ``[start, end)``, with ``mqa_at``
    (one MQA look-up for every milestone)."""
    convs = {m: conversions(dataset, m, start=start, end=end) for m in milestones}
    mqa_dates = dataset.mqa_dates if with_mqa else None
    if mqa_dates is not None and len(mqa_dates):
        mqa_at = _first_mqa(mqa_dates, pd.concat([c["account_id"] for c in convs.values()], ignore_index=True))
        cut = np.cumsum([0] + [len(c) for c in convs.values()])
        for i, m in enumerate(milestones):
            convs[m]["mqa_at"] = mqa_at.array[cut[i]:cut[i + 1]]  # .array keeps the tz-aware dtype
    return convs


def _conversion_windows(dataset, milestone, conv, acc_index, n_acc, start, end) -> tuple:
    """Step 2: per conversion its account code and milestone time, and per account
    whether it converts for this milestone at any time (accounts converting outside
    ``[start, end)`` are never non-converting). Per-account arrays get one extra slot
    at the end: code -1 (unattributable) indexes it."""
    ca = acc_index.get_indexer(conv["account_id"]) if n_acc else np.full(len(conv), -1)
    ct = _ns(conv["converted_at"])
    every = conv["account_id"] if start is None and end is None else conversions(dataset, milestone)["account_id"]
    converting = np.zeros(n_acc + 1, bool)
    converting[-1] = True
    if n_acc:
        every_acc = acc_index.get_indexer(pd.unique(every.to_numpy(dtype=object)))
        converting[every_acc[every_acc >= 0]] = True
    return ca, ct, converting


def _touches_in_windows(acc_code, t_all, windows, n_acc, look_ns, non_converting) -> np.ndarray:
    """Step 3: rows of the touches that can be in some conversion window, or in the
    last lookback window of a non-converting account; only those are sorted."""
    win_lo = np.full(n_acc + 1, _BIG)
    win_hi = np.full(n_acc + 1, _SMALL)
    for ca, ct, _ in windows:
        has = ca >= 0
        np.minimum.at(win_lo, ca[has], ct[has] - look_ns)
        np.maximum.at(win_hi, ca[has], ct[has])
    nc_lo = None
    if non_converting and n_acc:
        # non-converting accounts: only their last lookback window is ever used
        last_t = np.full(n_acc + 1, _SMALL)
        np.maximum.at(last_t, acc_code, t_all)
        nc_lo = np.full(n_acc + 1, _BIG)
        for _, _, converting in windows:
            nc_lo = np.minimum(nc_lo, np.where(converting, _BIG, last_t - look_ns))
    # blocks of 64k touches with small reused buffers: the per-account bounds are gathered
    # and compared while in cache (no 10^7-row temporaries); mode="wrap" keeps index -1 →
    # the extra slot and, unlike "raise", does not buffer a copy of ``out``
    n = len(acc_code)
    keep = np.empty(n, bool)
    block = 1 << 16
    bound_buf, flag_buf = np.empty(min(block, n), np.int64), np.empty(min(block, n), bool)
    for a in range(0, n, block):
        e = min(a + block, n)
        codes, t, b, f, k = acc_code[a:e], t_all[a:e], bound_buf[:e - a], flag_buf[:e - a], keep[a:e]
        np.take(win_lo, codes, out=b, mode="wrap")  # index -1 → the extra slot
        np.greater_equal(t, b, out=k)
        np.take(win_hi, codes, out=b, mode="wrap")
        np.less_equal(t, b, out=f)
        k &= f
        if nc_lo is not None:
            np.take(nc_lo, codes, out=b, mode="wrap")
            np.greater_equal(t, b, out=f)
            k |= f
    return np.flatnonzero(keep)


@dataclass
class _SortedTouches:
    """The kept touches sorted by one integer key ``account * (span + 1) + time offset``
    (time in the coarsest exact unit, or dense time ranks when that would overflow),
    ties in time ordered by touchpoint_id; :meth:`bound` finds an (account, time) in it."""
    key: np.ndarray      # sorted keys
    rows: np.ndarray     # dataset row of each sorted touch
    t: np.ndarray        # its time (ns)
    t0: int
    unit: int
    span: int
    uniq_t: np.ndarray | None

    @classmethod
    def build(cls, a_k: np.ndarray, t_k: np.ndarray, idx: np.ndarray, touch_ids: pd.Series,
              n_acc: int) -> "_SortedTouches":
        t0 = int(t_k.min()) if len(t_k) else 0
        rel = np.subtract(t_k, t0)
        span_ns = int(rel.max()) + 1 if len(rel) else 1
        unit, time_key = (10**9 if len(rel) == 0 else 1), rel
        for u in (10**9, 10**6, 10**3):
            if len(rel) == 0 or np.any(rel[::997] % u):  # a strided sample rules most units out cheaply
                continue
            quotient, remainder = np.divmod(rel, u)  # one pass for the exactness check and the key
            if not remainder.any():
                unit, time_key = u, quotient
                break
        span = span_ns // unit + 1
        if (n_acc + 1) * (span + 1) < 2**62:
            uniq_t = None
            key = a_k  # in place: fresh 10^7-row temporaries cost page faults
            key *= span + 1
            key += time_key
        else:  # too wide for one int64: dense time ranks instead (exact, one more sort)
            uniq_t, time_key = np.unique(t_k, return_inverse=True)
            span = len(uniq_t)
            key = a_k * (span + 1) + time_key
        del rel, time_key
        order = np.argsort(key)
        key_s = key[order]
        del key
        tie = np.zeros(len(key_s), bool)
        if len(key_s) > 1:
            eq = key_s[1:] == key_s[:-1]
            tie[1:] |= eq
            tie[:-1] |= eq
        if tie.any():  # ties in time: order those by touchpoint_id (few rows)
            tpos = np.flatnonzero(tie)
            sub = pd.DataFrame({"k": key_s[tpos], "id": touch_ids.to_numpy()[idx[order[tpos]]],
                                "o": order[tpos]}).sort_values(["k", "id"], kind="stable")
            order[tpos] = sub["o"].to_numpy()
        return cls(key=key_s, rows=idx[order], t=t_k[order], t0=t0, unit=unit, span=span, uniq_t=uniq_t)

    def bound(self, acc: np.ndarray, ts: np.ndarray, side: str) -> np.ndarray:
        """searchsorted position of (acc, ts) in the sorted keys; ts inclusive."""
        if self.uniq_t is None:
            d = ts - self.t0
            off = -((-d) // self.unit) if side == "left" else d // self.unit  # ceil / floor, exact ints
            off = np.clip(off, -1, self.span)
        else:
            off = (np.searchsorted(self.uniq_t, ts, "left") if side == "left"
                   else np.searchsorted(self.uniq_t, ts, "right") - 1)
        needles = acc * (self.span + 1) + off
        if len(needles) > 1 and np.any(needles[1:] < needles[:-1]):
            # sorted needles walk the keys in order (cache-friendly binary searches)
            order = np.argsort(needles, kind="stable")
            out = np.empty(len(needles), np.intp)
            out[order] = np.searchsorted(self.key, needles[order], side)
            return out
        return np.searchsorted(self.key, needles, side)

    def account_runs(self) -> tuple:
        """(account, start, end) of each account's run of sorted touches."""
        acc_s = self.key // (self.span + 1)  # the key's high part is the account code
        grp_start = np.flatnonzero(np.r_[True, acc_s[1:] != acc_s[:-1]])
        grp_end = np.r_[grp_start[1:], len(acc_s)]
        return acc_s[grp_start], grp_start, grp_end


def _expand_windows(st: _SortedTouches, conv: pd.DataFrame, ca, ct, look_ns: int, milestone: str) -> dict:
    """Step 4: every conversion's window as a run of sorted touches, expanded into
    journey touches by run-length arithmetic, with the milestone positions (MQA touch,
    opportunity-creation touch, closed-won touch)."""
    has = ca >= 0
    lo = np.zeros(len(conv), np.int64)
    hi = np.zeros(len(conv), np.int64)
    if has.any():
        lo[has] = st.bound(ca[has], ct[has] - look_ns, "left")
        hi[has] = st.bound(ca[has], ct[has], "right")
    n_conv = hi - lo
    total = int(n_conv.sum())
    jconv = np.repeat(np.arange(len(conv)), n_conv)
    starts = np.cumsum(n_conv) - n_conv
    srow = np.repeat(lo - starts, n_conv) + np.arange(total)  # position in the sorted touches
    pos = srow - np.repeat(lo, n_conv)

    def last_at_or_before(ts):
        p = np.full(len(conv), -1, np.int64)
        ok = has & (n_conv > 0) & (ts != _SMALL) & (ts <= ct)  # min int64 = NaT
        if ok.any():
            m = st.bound(ca[ok], ts[ok], "right") - 1
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
    return {"n_conv": n_conv, "conv": jconv, "touch": st.rows[srow], "pos": pos, "n": np.repeat(n_conv, n_conv),
            "age_days": (np.repeat(ct, n_conv) - st.t[srow]) / _NS_PER_DAY,
            "mqa_pos": mqa_pos, "oc_pos": oc_pos, "cw_pos": cw_pos}


def _non_converting_journeys(st: _SortedTouches, groups: tuple, converting: np.ndarray, look_ns: int,
                             channel_codes: np.ndarray) -> tuple:
    """Step 5: the non-converting journeys: each non-converting account's touches in
    the lookback window up to its last touch (account, flat channel codes, offsets)."""
    grp_acc, _, grp_end = groups
    nc = ~converting[grp_acc]
    g_acc, g_end = grp_acc[nc], grp_end[nc]
    g_lo = st.bound(g_acc, st.t[g_end - 1] - look_ns, "left")
    nc_len = g_end - g_lo
    nc_off = np.concatenate([[0], np.cumsum(nc_len)]).astype(np.int64)
    nc_rows = np.repeat(g_lo - nc_off[:-1], nc_len) + np.arange(nc_off[-1])
    return g_acc, channel_codes[st.rows[nc_rows]], nc_off
