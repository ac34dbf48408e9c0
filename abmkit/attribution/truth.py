"""Attribution models against planted truth (synthetic sample only; see
docs/attribution.md, "Checking models against the truth").

The sample generator plants how much each channel *causes* first opportunities
(``truth/channel_incrementality``: expected conversions lost if the channel's
touches were removed, abmkit.sample.incrementality). :func:`compare_to_truth` puts
every model's channel shares next to the planted incremental shares: the total
variation distance between the two share vectors (half the sum of absolute
differences: 0 = same split, 1 = no overlap) and, per channel, whether the planted
share lies inside the model's bootstrap interval.

Example
-------
>>> truth = pd.DataFrame({"channel": ["a", "b"], "expected_conversions_lost": [3.0, 1.0]})
>>> shares = pd.DataFrame({"m": [0.5, 0.5]}, index=pd.Index(["a", "b"], name="channel"))
>>> float(total_variation(shares["m"], true_shares(truth)))
0.25
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..results import Result
from .engine import model_kind

__all__ = ["TruthComparison", "compare_to_truth", "incremental_vs_truth", "read_channel_truth", "true_shares",
           "total_variation"]

#: the truth table a written sample carries (abmkit.sample.write_sample)
TRUTH_FILE = "channel_incrementality.csv"


def read_channel_truth(truth_dir) -> pd.DataFrame | None:
    """The planted channel incrementality of a written sample (``truth_dir`` =
    the sample's ``truth/`` folder), or None when the folder does not carry it
    (real data, or a sample written before it existed)."""
    if truth_dir is None:
        return None
    path = Path(truth_dir) / TRUTH_FILE
    if not path.is_file():
        return None
    t = pd.read_csv(path)
    need = {"channel", "expected_conversions_lost"}
    if not need <= set(t.columns):
        raise ValueError(f"{path}: needs columns {sorted(need)}, has {sorted(t.columns)}")
    return t


def true_shares(truth: pd.DataFrame, value: str = "expected_conversions_lost") -> pd.Series:
    """Planted incremental share of each channel (its conversions lost / the sum)."""
    v = truth.set_index("channel")[value].astype(float).clip(lower=0)
    return v / v.sum() if v.sum() > 0 else v * np.nan


def total_variation(a: pd.Series, b: pd.Series) -> float:
    """Half the sum of absolute differences of two share vectors (missing channels = 0)."""
    idx = a.index.union(b.index)
    return float(0.5 * (a.reindex(idx).fillna(0) - b.reindex(idx).fillna(0)).abs().sum())


@dataclass
class TruthComparison(Result):
    """Output of :func:`compare_to_truth`.

    Attributes
    ----------
    table : DataFrame
        model, channel, model_share, low, high, true_share, difference,
        truth_inside (None without an interval).
    models : DataFrame
        per model: kind, tv_distance, channels_inside, channels_with_interval,
        top_channel, true_top_channel.
    """
    table: pd.DataFrame
    models: pd.DataFrame

    _summary_title = "Attribution models against the planted incremental shares"

    @property
    def summary(self) -> pd.DataFrame:
        """One row per model, closest to the truth first."""
        return self.models


def compare_to_truth(result, truth: pd.DataFrame, value: str = "expected_conversions_lost") -> TruthComparison:
    """Each model's channel shares of a :class:`~abmkit.attribution.ComparisonResult`
    next to the planted incremental shares.

    Parameters
    ----------
    result : ComparisonResult
        ``shares`` (channel × model) and ``intervals`` (long: channel, model, low, high).
    truth : DataFrame
        ``channel`` and ``value`` (default: expected conversions lost without the
        channel's touches), e.g. :func:`read_channel_truth`.

    Returns
    -------
    TruthComparison

    Example
    -------
    >>> truth = pd.DataFrame({"channel": ["a", "b"], "expected_conversions_lost": [3.0, 1.0]})
    >>> class R: pass
    >>> r = R(); r.shares = pd.DataFrame({"m": [0.75, 0.25]}, index=pd.Index(["a", "b"], name="channel"))
    >>> r.intervals = pd.DataFrame({"channel": ["a", "b"], "model": "m", "low": [0.7, 0.3], "high": [0.8, 0.4]})
    >>> c = compare_to_truth(r, truth)
    >>> c.models[["model", "tv_distance", "channels_inside"]].values.tolist()
    [['m', 0.0, 1]]
    """
    ts = true_shares(truth, value)
    shares = result.shares
    iv = result.intervals.set_index(["channel", "model"])[["low", "high"]]
    channels = list(shares.index) + [c for c in ts.index if c not in shares.index]
    rows, per_model = [], []
    for m in shares.columns:
        s = shares[m].reindex(channels).fillna(0.0)
        t = ts.reindex(channels).fillna(0.0)
        lo = iv["low"].reindex(pd.MultiIndex.from_product([channels, [m]])).to_numpy(dtype=float)
        hi = iv["high"].reindex(pd.MultiIndex.from_product([channels, [m]])).to_numpy(dtype=float)
        has = np.isfinite(lo) & np.isfinite(hi)
        # a tiny tolerance: a share of exactly 0 against an interval [0, 0] counts as inside
        inside = np.where(has, (t.to_numpy() >= lo - 1e-12) & (t.to_numpy() <= hi + 1e-12), False)
        rows.append(pd.DataFrame({"model": m, "channel": channels, "model_share": s.to_numpy(), "low": lo,
                                  "high": hi, "true_share": t.to_numpy(), "difference": (s - t).to_numpy(),
                                  "truth_inside": pd.array(np.where(has, inside, pd.NA), dtype="boolean")}))
        per_model.append({"model": m, "kind": model_kind(m), "tv_distance": total_variation(s, t),
                          "channels_inside": int(inside[has].sum()), "channels_with_interval": int(has.sum()),
                          "top_channel": s.idxmax() if s.sum() > 0 else None,
                          "true_top_channel": t.idxmax() if t.sum() > 0 else None})
    models = pd.DataFrame(per_model).sort_values("tv_distance", ignore_index=True)
    return TruthComparison(table=pd.concat(rows, ignore_index=True), models=models)


def incremental_vs_truth(incremental, truth: pd.DataFrame) -> pd.DataFrame:
    """The incremental model's conversions lost per channel next to the planted ones:
    the quantity the model estimates and the calibration checks (its shares divide by
    a sum that the zero-effect channels' noise inflates, so compare these first).

    Parameters
    ----------
    incremental : IncrementalResult
        ``channels`` with estimable, why_not, log_hazard_ratio, incremental_conversions, low, high
        (e.g. ``compare_models(...).incremental``).
    truth : DataFrame
        the planted channel incrementality (:func:`read_channel_truth`).

    Returns
    -------
    DataFrame
        per channel present in the data: planted_log_hazard_ratio, log_hazard_ratio,
        planted_conversions_lost, incremental_conversions, low, high, truth_inside (None
        when the channel is not estimable or has no interval), why_not.

    Example
    -------
    >>> class R: pass
    >>> r = R(); r.channels = pd.DataFrame({"channel": ["event", "display"], "estimable": [True, False],
    ...     "why_not": [None, "every at-risk day was exposed to it"], "log_hazard_ratio": [0.9, np.nan],
    ...     "incremental_conversions": [9.0, np.nan], "low": [6.0, np.nan], "high": [12.0, np.nan]})
    >>> truth = pd.DataFrame({"channel": ["event", "display", "video"], "log_hazard_ratio": [1.0, 0.0, 0.0],
    ...                       "expected_conversions_lost": [10.0, 0.0, 0.0]})
    >>> incremental_vs_truth(r, truth)["truth_inside"].tolist()
    [True, <NA>]
    """
    ch = incremental.channels.set_index("channel")
    t = truth.set_index("channel")
    idx = list(ch.index)
    lo = ch["low"].astype(float)
    hi = ch["high"].astype(float)
    planted = t["expected_conversions_lost"].astype(float).reindex(idx)
    has = ch["estimable"].eq(True) & lo.notna() & hi.notna() & planted.notna()
    inside = (planted >= lo - 1e-12) & (planted <= hi + 1e-12)
    out = pd.DataFrame({
        "channel": idx,
        "planted_log_hazard_ratio": (t["log_hazard_ratio"].astype(float).reindex(idx).to_numpy()
                                     if "log_hazard_ratio" in t else np.nan),
        "log_hazard_ratio": ch["log_hazard_ratio"].astype(float).to_numpy(),
        "planted_conversions_lost": planted.to_numpy(),
        "incremental_conversions": ch["incremental_conversions"].astype(float).to_numpy(),
        "low": lo.to_numpy(), "high": hi.to_numpy(),
        "truth_inside": pd.array(np.where(has, inside, pd.NA), dtype="boolean"),
        "why_not": ch["why_not"].to_numpy(),
    })
    return out.sort_values("planted_conversions_lost", ascending=False, ignore_index=True)
