"""Account-level attribution (see docs/attribution.md).

- :func:`attribute` — touch-level credits of one model (or several) straight from a
  :class:`~abmkit.schema.Dataset`.
- :func:`compare_models` — channel × model shares, bootstrap intervals, rank
  correlation, disagreement, conservation; :func:`sensitivity` sweeps.
- :func:`read_paths`, :func:`path_attribution`, :func:`write_paths` — the common
  aggregated path table (``path``, total_conversions, total_conversion_value,
  total_null) in and out.

Models: first_touch, last_touch, linear, time_decay (``half_life_days``), u_shaped,
w_shaped, full_path (closed_won only), j_shaped, inverse_j, custom
(``position_weights``, ``milestone_weights``, ``channel_weights``,
``touch_type_weights``), the vendor presets hubspot_u_shaped and marketo_u_shaped,
markov (``order``) and shapley. See docs/attribution.md.

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
from .engine import (ALL_MODELS, DATA_DRIVEN_MODELS, DEFAULT_COMPARE_MODELS, MODEL_PARAMS, aggregate_credits,
                     check_model_params,
                     attribute_journeys, campaign_table, channel_credits_from, credit_matrix, journey_credits,
                     touch_credits)
from .markov import markov_attribution, transition_matrix
from .paths import PATH_MODELS, PathSet, aggregate_paths, read_paths, write_paths
from .positions import POSITION_MODELS, SHAPES, bathtub, simple_position_credits
from .shapley import shapley_attribution

__all__ = ["attribute", "compare_models", "comparison_findings", "comparison_from_credits", "sensitivity", "ComparisonResult", "read_paths", "write_paths",
           "path_attribution", "PathSet", "aggregate_paths", "markov_attribution", "transition_matrix",
           "shapley_attribution", "conversion_journeys", "conversions", "ConversionJourneys",
           "aggregate_credits", "campaign_table", "journey_credits", "channel_credits_from", "credit_matrix", "touch_credits", "attribute_journeys",
           "journeys_for", "ALL_MODELS", "POSITION_MODELS", "DATA_DRIVEN_MODELS", "DEFAULT_COMPARE_MODELS",
           "PATH_MODELS", "MQA_MODELS"]

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
        one of :data:`ALL_MODELS` (several → rows of every model, journeys built once).
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
    models = [model] if isinstance(model, str) else list(model)
    unknown = [m for m in models if m not in ALL_MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; models are {list(ALL_MODELS)}")
    cj = journeys_for(data, models, milestone=milestone, lookback_days=lookback_days, start=start, end=end,
                      **params)
    frames = [attribute_journeys(cj, m, **params) for m in models]
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def _path_position_credits(ps: PathSet, model: str) -> np.ndarray:
    pos, n = ps.position, ps.lengths[ps.path_index]
    if model in SHAPES:
        return bathtub(pos, n, *SHAPES[model])
    return simple_position_credits(pos, n, model)


def path_attribution(paths, models=("first_touch", "last_touch", "linear", "markov", "shapley"), order: int = 1,
                     *, sep: str = " > ", seed: int = 0) -> pd.DataFrame:
    """Attribute an aggregated path table (or :class:`PathSet`).

    Parameters
    ----------
    paths : DataFrame or PathSet
        DataFrame → :func:`read_paths` (malformed rows raise, naming the rows).
    models : sequence of str
        any of :data:`PATH_MODELS` (rule models that need timestamps or milestones
        cannot run on a path table).
    order : int
        Markov order.

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
    frames = []
    for m in models:
        if m == "markov":
            r = markov_attribution(ps, order)
            conv, val = r["conversions"].to_numpy(), r["conversion_value"].to_numpy()
        elif m == "shapley":
            r = shapley_attribution(ps, seed=seed)
            conv, val = r["conversions"].to_numpy(), r["conversion_value"].to_numpy()
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
