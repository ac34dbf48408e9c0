"""Account-level attribution (see docs/attribution.md).

- :func:`attribute` — touch-level credits of one model (or several) straight from a
  :class:`~abmkit.schema.Dataset`.
- :func:`compare_models` — channel × model shares, bootstrap intervals, rank
  correlation, disagreement, conservation; :func:`sensitivity` sweeps.
- :func:`read_paths`, :func:`path_attribution`, :func:`write_paths` — the common
  aggregated path table (``path``, total_conversions, total_conversion_value,
  total_null) in and out.

Rule models: first_touch, last_touch, linear, time_decay (``half_life_days``), u_shaped,
w_shaped, full_path (closed_won only), j_shaped, inverse_j, custom
(``position_weights``, ``milestone_weights``, ``channel_weights``,
``touch_type_weights``), the vendor presets hubspot_u_shaped and marketo_u_shaped, and
shapley_split (each conversion split equally over its distinct channels).
Data-driven models (estimated from converting and non-converting journeys): markov
(channel level: removal effects normalised over all conversions; ``order`` 1, 2, ...
or ``"auto"``), markov_per_conversion (touch level: each conversion split by removal
effects) and shapley (conversion-rate game). See docs/attribution.md.

Example
-------
>>> import abmkit
>>> ds = abmkit.load("data/sample/canonical")                        # doctest: +SKIP
>>> credits = attribute(abmkit.prepare(ds), "linear")               # doctest: +SKIP
>>> credits.groupby("channel", observed=True)["credit"].sum()        # doctest: +SKIP
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..journeys import ConversionJourneys, conversion_journeys, conversions
from ..prepared import resolve
from .compare import ComparisonResult, compare_models, comparison_findings, comparison_from_credits, sensitivity
from .engine import (ALL_MODELS, CHANNEL_LEVEL_MODELS, DATA_DRIVEN_MODELS, DEFAULT_COMPARE_MODELS,
                     MARKOV_TOUCH_ERROR, MODEL_PARAMS, RULE_MODELS, TOUCH_MODELS, aggregate_credits,
                     check_model_params, model_kind,
                     attribute_journeys, campaign_table, channel_credits_from, credit_matrix, journey_credits,
                     touch_credits)
from .markov import OrderSelection, markov_attribution, select_order, transition_matrix
from .paths import PATH_MODELS, PathSet, aggregate_paths, read_paths, sessions_to_paths, write_paths
from .positions import POSITION_MODELS, SHAPES, bathtub, simple_position_credits
from .shapley import shapley_attribution, shapley_split_attribution
from .incremental import IncrementalResult, incremental_attribution
from .truth import TruthComparison, compare_to_truth, read_channel_truth

__all__ = ["attribute", "compare_models", "comparison_findings", "comparison_from_credits", "sensitivity", "ComparisonResult", "read_paths", "write_paths",
           "path_attribution", "PathSet", "aggregate_paths", "sessions_to_paths", "markov_attribution",
           "transition_matrix", "select_order", "OrderSelection", "shapley_attribution", "shapley_split_attribution",
           "conversion_journeys", "conversions", "ConversionJourneys", "model_kind", "RULE_MODELS", "TOUCH_MODELS",
           "CHANNEL_LEVEL_MODELS",
           "aggregate_credits", "campaign_table", "journey_credits", "channel_credits_from", "credit_matrix", "touch_credits", "attribute_journeys",
           "journeys_for", "ALL_MODELS", "POSITION_MODELS", "DATA_DRIVEN_MODELS", "DEFAULT_COMPARE_MODELS",
           "PATH_MODELS", "MQA_MODELS", "incremental_attribution", "IncrementalResult", "compare_to_truth",
           "read_channel_truth", "TruthComparison"]

#: models that use the MQA touch
MQA_MODELS = ("w_shaped", "full_path", "hubspot_u_shaped", "marketo_u_shaped")


def _needs_mqa(models, params) -> bool:
    ms = params.get("milestone_weights") or {}
    return any(m in MQA_MODELS for m in models) or ("custom" in models and "mqa" in ms)


def journeys_for(data, models=("linear",), *, milestone: str = "opportunity_created", lookback_days: float = 365,
                 start=None, end=None, **params) -> ConversionJourneys:
    """The journeys that ``models`` need, built once per resolved dataset and options
    (MQA touches and non-converting journeys only when some model uses them; a build
    that has them serves calls that do not need them too).

    Parameters
    ----------
    data : ResolvedDataset
        :func:`abmkit.prepare` output (a plain Dataset is prepared with defaults).
    models : str or sequence of str
    milestone, lookback_days, start, end : see :func:`attribute`.
    """
    from ..engine import is_partitioned, run
    if is_partitioned(data):  # a partitioned dataset: the same analysis on its partitions (docs/scale.md)
        return run("journeys_for", data, models, milestone=milestone, lookback_days=lookback_days, start=start,
                   end=end, **params)
    check_model_params(params)
    data = resolve(data)
    models = [models] if isinstance(models, str) else list(models)
    need_mqa = _needs_mqa(models, params)
    need_nc = any(m in DATA_DRIVEN_MODELS for m in models)
    key = ("journeys", milestone, float(lookback_days), None if start is None else str(start),
           None if end is None else str(end))
    for mqa in ((True,) if need_mqa else (False, True)):
        for nc in ((True,) if need_nc else (False, True)):
            if key + (mqa, nc) in data._memo:
                return data._memo[key + (mqa, nc)]
    return data.memo(key + (need_mqa, need_nc), lambda: conversion_journeys(
        data, milestone, lookback_days=lookback_days, start=start, end=end, non_converting=need_nc,
        with_mqa=need_mqa))


def attribute(data, model, *, milestone: str = "opportunity_created", lookback_days: float = 365,
              start=None, end=None, **params) -> pd.DataFrame:
    """Touch-level credits of ``model`` for every conversion.

    Parameters
    ----------
    data : ResolvedDataset
        :func:`abmkit.prepare` output: touches on their accounts, the MQA dates of its
        one MQA rule (a plain Dataset is prepared with the default settings).
    model : str or sequence of str
        one of :data:`TOUCH_MODELS` (several → rows of every model, journeys built once).
        ``"markov"`` is channel-level only and raises a ValueError naming
        ``"markov_per_conversion"`` (the touch-level split by removal effects).
    milestone : {"opportunity_created", "closed_won"}
    lookback_days : float
        journey window before the milestone (default 365).
    start, end : optional
        keep conversions whose milestone date is in ``[start, end)`` (report period).
        Journeys are built once per dataset and options and shared by every call.
    **params
        ``half_life_days`` (time_decay, default 7), ``order`` (markov, default 1),
        custom weights (``position_weights``, ``milestone_weights``, ``channel_weights``,
        ``touch_type_weights``).

    Returns
    -------
    DataFrame
        conversion_id, account_id, touchpoint_id, channel, campaign_id, model, credit,
        pipeline_credit, revenue_credit. Credits of a conversion sum to 1.
        Conversions without a touch in their window are reported, not dropped:
        ``journeys_for(data, model, ...).no_touch`` (the same journeys, shared), and
        ``.info`` gives the journey counts.

    Example
    -------
    >>> from abmkit.schema import Dataset
    >>> ds = Dataset.from_frames(
    ...     touchpoints=pd.DataFrame({"touchpoint_id": ["t1", "t2"], "account_id": ["a1", "a1"],
    ...         "occurred_at": ["2026-01-01", "2026-01-05"], "channel": ["email", "webinar"],
    ...         "touch_type": ["email_click", "webinar_attended"]}),
    ...     opportunities=pd.DataFrame({"opportunity_id": ["o1"], "account_id": ["a1"],
    ...         "created_at": ["2026-02-01"], "amount": [1000.0]}))
    >>> attribute(ds, "u_shaped")[["touchpoint_id", "credit", "pipeline_credit"]].values.tolist()
    [['t1', 0.5, 500.0], ['t2', 0.5, 500.0]]
    """
    from ..engine import is_partitioned, run
    if is_partitioned(data):  # a partitioned dataset: the same analysis on its partitions (docs/scale.md)
        return run("attribute", data, model, milestone=milestone, lookback_days=lookback_days, start=start,
                   end=end, **params)
    models = [model] if isinstance(model, str) else list(model)
    unknown = [m for m in models if m not in ALL_MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; models are {list(TOUCH_MODELS)}")
    if any(m in CHANNEL_LEVEL_MODELS for m in models):
        raise ValueError(MARKOV_TOUCH_ERROR)
    cj = journeys_for(data, models, milestone=milestone, lookback_days=lookback_days, start=start, end=end,
                      **params)
    frames = [attribute_journeys(cj, m, **params) for m in models]
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def _path_position_credits(ps: PathSet, model: str) -> np.ndarray:
    pos, n = ps.position, ps.lengths[ps.path_index]
    if model in SHAPES:
        return bathtub(pos, n, *SHAPES[model])
    return simple_position_credits(pos, n, model)


def path_attribution(paths, models=("first_touch", "last_touch", "linear", "markov", "shapley"), order=1,
                     *, sep: str = " > ", seed: int = 0) -> pd.DataFrame:
    """Attribute an aggregated path table (or :class:`PathSet`).

    Parameters
    ----------
    paths : DataFrame or PathSet
        DataFrame → :func:`read_paths` (malformed rows raise, naming the rows).
    models : sequence of str
        any of :data:`PATH_MODELS` (rule models that need timestamps or milestones
        cannot run on a path table).
    order : int or "auto"
        Markov order (``"auto"``: chosen by :func:`select_order` on held-out paths).

    Returns
    -------
    DataFrame
        exactly ``channel, model, conversions, conversion_value``; one row per channel ×
        model (channels sorted by name; conversion_value 0 without a value column).

    Example
    -------
    >>> t = pd.DataFrame({"path": ["a > b", "b"], "total_conversions": [1, 1], "total_null": [0, 2]})
    >>> path_attribution(t, ["first_touch", "linear"])[["channel", "model", "conversions"]].values.tolist()
    [['a', 'first_touch', 1.0], ['b', 'first_touch', 1.0], ['a', 'linear', 0.5], ['b', 'linear', 1.5]]
    """
    ps = read_paths(paths, sep) if isinstance(paths, pd.DataFrame) else paths
    models = [models] if isinstance(models, str) else list(models)
    bad = [m for m in models if m not in PATH_MODELS]
    if bad:
        raise ValueError(f"model(s) {bad} cannot run on a path table (no timestamps or milestones); "
                         f"path models are {list(PATH_MODELS)}")
    k = len(ps.channels)
    if order == "auto" and any(m in ("markov", "markov_per_conversion") for m in models):
        order = select_order(ps, seed=seed).order
    frames = []
    for m in models:
        if m == "markov":
            r = markov_attribution(ps, order)
            conv, val = r["conversions"].to_numpy(), r["conversion_value"].to_numpy()
        elif m in ("shapley", "shapley_split"):
            r = (shapley_attribution if m == "shapley" else shapley_split_attribution)(ps, seed=seed)
            conv, val = r["conversions"].to_numpy(), r["conversion_value"].to_numpy()
        elif m == "markov_per_conversion":
            re = markov_attribution(ps, order)["removal_effect"].to_numpy()
            pidx = ps.path_index
            # each path's conversions split over its channels by removal effect, equal over repeats
            n_same = np.bincount(pidx * k + ps.codes, minlength=ps.n_paths * k)[pidx * k + ps.codes]
            w = re[ps.codes] / n_same
            tot = np.bincount(pidx, w, ps.n_paths)
            eq = 1.0 / ps.lengths[pidx]
            w = np.where(tot[pidx] > 0, np.divide(w, tot[pidx], out=np.zeros_like(w), where=tot[pidx] > 0), eq)
            conv = np.bincount(ps.codes, w * ps.conversions[pidx], k)
            val = np.bincount(ps.codes, w * ps.value[pidx], k)
        else:
            w = _path_position_credits(ps, m)
            pidx = ps.path_index
            conv = np.bincount(ps.codes, w * ps.conversions[pidx], k)
            val = np.bincount(ps.codes, w * ps.value[pidx], k)
        frames.append(pd.DataFrame({"channel": list(ps.channels), "model": m, "conversions": conv,
                                    "conversion_value": val}))
    if not frames:
        return pd.DataFrame(columns=["channel", "model", "conversions", "conversion_value"])
    return pd.concat(frames, ignore_index=True)
