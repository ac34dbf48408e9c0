"""From journeys to credits: one dispatcher for every model, and the aggregations
(touch level, channel, campaign, account, conversion × channel matrix).

Set and data-driven models at touch level:

- ``shapley`` (data-driven): each conversion's credit is split over the channels of
  its journey by the Shapley values of the conversion-rate game
  (:mod:`abmkit.attribution.shapley`), then equally over that channel's touches.
  Channel sums equal :func:`~abmkit.attribution.shapley.shapley_attribution`.
- ``shapley_split`` (a rule): each conversion split equally over its distinct
  channels (the Shapley value of the conversions-count game), then equally over
  that channel's touches.
- ``markov_per_conversion``: each conversion's credit is split over the channels of
  its journey in proportion to their Markov removal effects (equal over that
  channel's touches).
- ``markov`` is a channel-level model only: removal effects normalised once over all
  conversions (the ChannelAttribution convention;
  :func:`abmkit.attribution.markov.markov_attribution`), reported by
  :func:`compare_models` and :func:`path_attribution`. It has no touch-level split,
  so :func:`touch_credits` refuses it and names ``markov_per_conversion``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..schema import CHANNEL_DTYPE
from .markov import build_chain, removal_effects
from .positions import POSITION_MODELS, normalise, position_credits

#: models estimated from converting and non-converting journeys (re-estimated in every
#: bootstrap replicate by :func:`compare_models`)
DATA_DRIVEN_MODELS = ("markov", "markov_per_conversion", "shapley")
#: fixed rules on the set of channels of a journey (like the position models, no estimation)
SET_RULE_MODELS = ("shapley_split",)
#: rule-based models: position rules and set rules
RULE_MODELS = POSITION_MODELS + SET_RULE_MODELS
#: models with channel totals only (no per-conversion split, no touch-level credits)
CHANNEL_LEVEL_MODELS = ("markov",)
ALL_MODELS = RULE_MODELS + DATA_DRIVEN_MODELS
#: models with touch-level credits (:func:`abmkit.attribution.attribute`)
TOUCH_MODELS = tuple(m for m in ALL_MODELS if m not in CHANNEL_LEVEL_MODELS)
#: models compare_models runs by default (full_path needs closed_won; custom needs weights)
DEFAULT_COMPARE_MODELS = ("first_touch", "last_touch", "linear", "time_decay", "u_shaped", "w_shaped",
                          "j_shaped", "inverse_j", "markov", "shapley")
#: why ``markov`` has no touch-level credits, and what to use instead
MARKOV_TOUCH_ERROR = ("'markov' is the channel-level Markov model (removal effects normalised once over all "
                      "conversions): it has channel totals, not touch-level credits. Use compare_models(...) or "
                      "path_attribution(...) for it, or model 'markov_per_conversion' for touch-level credits "
                      "(each conversion split over its channels by their removal effects; its channel sums differ "
                      "from 'markov').")


def model_kind(model: str) -> str:
    """``"data-driven"`` or ``"rule"`` (what a table or chart should say about a model).

    >>> model_kind("shapley"), model_kind("shapley_split"), model_kind("u_shaped")
    ('data-driven', 'rule', 'rule')
    """
    # incremental (abmkit.attribution.incremental) is fitted on stage histories, not journeys
    return "data-driven" if model in DATA_DRIVEN_MODELS or model == "incremental" else "rule"


def _channel_counts(cj) -> np.ndarray:
    k = len(cj.channels)
    return np.bincount(cj.conversion_channel_cells, minlength=len(cj.conversions) * k).reshape(len(cj.conversions), k)


def conversion_channel_sets(cj) -> np.ndarray:
    """Bit mask of the distinct channels of every conversion's journey (rows of
    ``cj.conversions``; 0 without touches)."""
    counts = _channel_counts(cj)
    return ((counts > 0).astype(np.int64) << np.arange(counts.shape[1], dtype=np.int64)).sum(axis=1)


def markov_channel_effects(cj, order: int = 1) -> np.ndarray:
    """Removal effect of every channel (taxonomy order) from the journeys' paths
    (``order="auto"``: chosen by :func:`~abmkit.attribution.markov.select_order`)."""
    from .markov import resolve_order
    paths = cj.paths()
    chain = build_chain(paths, resolve_order(paths, order), keep_paths=False)
    return removal_effects(chain)[0]


#: keyword parameters the models understand (anything else is a mistake: refused)
MODEL_PARAMS = frozenset({"half_life_days", "order", "position_weights", "milestone_weights", "channel_weights",
                          "touch_type_weights", "removal_effects", "shapley_rates"})
#: keywords of the old API, with what replaces them
_MOVED = {"contact_accounts": "pass abmkit.prepare(dataset, mapping=...) instead: the mapping lives on the dataset",
          "mqa_dates": "the MQA dates come from the resolved dataset's MQA rule "
                       "(abmkit.prepare(dataset, mqa=MQARule(...)))",
          "journeys": "journeys are built once per resolved dataset and shared: pass the dataset",
          "touches": "touches come from the resolved dataset", "touch_accounts": "touches come from the resolved dataset"}


def check_model_params(params: dict) -> None:
    """Refuse keyword parameters no model understands, so a typo or an argument of
    the old API is an error rather than silently ignored.

    >>> check_model_params({"half_life_days": 14})
    >>> check_model_params({"half_life": 14})
    Traceback (most recent call last):
    ...
    TypeError: unknown attribution parameter(s) ['half_life']; known: channel_weights, half_life_days, milestone_weights, order, position_weights, removal_effects, shapley_rates, touch_type_weights
    """
    unknown = sorted(set(params) - MODEL_PARAMS)
    if not unknown:
        return
    moved = [f"{k}: {_MOVED[k]}" for k in unknown if k in _MOVED]
    raise TypeError(f"unknown attribution parameter(s) {unknown}; known: {', '.join(sorted(MODEL_PARAMS))}"
                    + (f" ({'; '.join(moved)})" if moved else ""))


def touch_credits(cj, model: str, **params) -> np.ndarray:
    """Credit of every journey touch of ``cj`` under ``model`` (sums to 1 per conversion)."""
    if model in POSITION_MODELS:
        return position_credits(cj, model, **params)
    if model in CHANNEL_LEVEL_MODELS:
        raise ValueError(MARKOV_TOUCH_ERROR)
    if model not in ALL_MODELS:
        raise ValueError(f"unknown model {model!r}; models are {ALL_MODELS}")
    counts = _channel_counts(cj)
    per_touch_count = counts[cj.conv, cj.channel]
    if model == "shapley_split":
        distinct = (counts > 0).sum(axis=1)
        return 1.0 / (distinct[cj.conv] * per_touch_count)
    if model == "shapley":
        from .shapley import conversion_shares
        rates = params.get("shapley_rates")
        shares = conversion_shares(conversion_channel_sets(cj), len(cj.channels), None if rates is not None
                                   else cj.paths(), rates=rates)
        return shares[cj.conv, cj.channel] / per_touch_count
    re = params.get("removal_effects")
    if re is None:
        re = markov_channel_effects(cj, params.get("order", 1))
    return normalise(cj, re[cj.channel] / per_touch_count)


def attribute_journeys(cj, model: str, **params) -> pd.DataFrame:
    """Touch-level credits frame for already-built journeys (see :func:`attribute`)."""
    credit = touch_credits(cj, model, **params)
    t = cj.source
    conv = cj.conversions
    out = pd.DataFrame({
        "conversion_id": conv["conversion_id"].to_numpy()[cj.conv],
        "account_id": conv["account_id"].to_numpy()[cj.conv],
        "touchpoint_id": t["touchpoint_id"].to_numpy()[cj.touch],
        "channel": pd.Categorical.from_codes(cj.channel, dtype=CHANNEL_DTYPE)
        if list(cj.channels) == list(CHANNEL_DTYPE.categories) else np.asarray(cj.channels)[cj.channel],
        "campaign_id": t["campaign_id"].to_numpy()[cj.touch],
        "model": model,
        "credit": credit,
        "pipeline_credit": credit * cj.pipeline_per_touch,
        "revenue_credit": credit * cj.revenue_per_touch,
    })
    return out


def channel_credits_from(cj, credit: np.ndarray) -> pd.DataFrame:
    """``channel, conversions, pipeline, revenue`` per channel (every taxonomy channel)."""
    # one pass over the journey touches into the conversion × channel matrix, then the
    # amounts are small matrix-vector products (not two more passes with weights)
    totals = cj.conversion_amounts.T @ credit_matrix(cj, credit)
    return pd.DataFrame({"channel": list(cj.channels), "conversions": totals[0], "pipeline": totals[1],
                         "revenue": totals[2]})


def credit_matrix(cj, credit: np.ndarray) -> np.ndarray:
    """Conversion × channel credit matrix (rows: ``cj.conversions`` rows)."""
    k = len(cj.channels)
    n = len(cj.conversions)
    return np.bincount(cj.conversion_channel_cells, credit, minlength=n * k).reshape(n, k)


def aggregate_credits(credits: pd.DataFrame, by: str | list = "channel", dataset=None) -> pd.DataFrame:
    """Sum ``credit, pipeline_credit, revenue_credit`` of a touch-level credits frame by
    channel, campaign_id, account_id, model, or an account attribute (``segment``
    columns such as industry or tier, looked up in ``dataset.accounts``).

    Example
    -------
    >>> df = pd.DataFrame({"channel": ["email", "email"], "model": ["linear"] * 2, "credit": [0.5, 0.5],
    ...                    "pipeline_credit": [5.0, 5.0], "revenue_credit": [0.0, 0.0]})
    >>> aggregate_credits(df, ["model", "channel"]).values.tolist()
    [['linear', 'email', 1.0, 10.0, 0.0]]
    """
    by = [by] if isinstance(by, str) else list(by)
    df = credits
    missing = [c for c in by if c not in df.columns]
    if missing:
        if dataset is None:
            raise ValueError(f"columns {missing} are not in the credits frame; pass dataset= to look up account "
                             "attributes such as industry or tier")
        acc = dataset.accounts.set_index("account_id")
        bad = [c for c in missing if c not in acc.columns]
        if bad:
            raise ValueError(f"{bad} are neither credit columns nor account columns")
        df = df.join(acc[missing], on="account_id")
    return (df.groupby(by, observed=True, dropna=False)[["credit", "pipeline_credit", "revenue_credit"]]
            .sum().reset_index())


def campaign_table(credits: pd.DataFrame, campaigns: pd.DataFrame | None = None,
                   value: str = "pipeline_credit") -> pd.DataFrame:
    """Campaign × model credit (``value`` column of a touch-level credits frame of
    several models), with campaign name and channel when ``campaigns`` is given; touches
    without a campaign are grouped as ``(no campaign)``. Sorted by the mean over models.

    Example
    -------
    >>> df = pd.DataFrame({"campaign_id": ["k1", None], "model": ["linear"] * 2, "credit": [0.5, 0.5],
    ...                    "pipeline_credit": [5.0, 5.0], "revenue_credit": [0.0, 0.0]})
    >>> campaign_table(df).to_dict("records")
    [{'campaign_id': '(no campaign)', 'linear': 5.0}, {'campaign_id': 'k1', 'linear': 5.0}]
    """
    from ..engine import campaign_sums, is_lazy_frame
    if is_lazy_frame(credits):  # attribute() of a partitioned dataset: summed on its partitions first
        credits = campaign_sums(credits, value)
    df = credits.assign(campaign_id=credits["campaign_id"].fillna("(no campaign)"))
    wide = df.pivot_table(index="campaign_id", columns="model", values=value, aggfunc="sum", fill_value=0.0,
                          observed=True)
    models = list(dict.fromkeys(credits["model"]))
    wide = wide.reindex(columns=models)
    wide = wide.loc[wide.mean(axis=1).sort_values(ascending=False, kind="stable").index]
    wide.columns.name = None
    out = wide.reset_index()
    if campaigns is not None and len(campaigns):
        info = campaigns[["campaign_id", "campaign_name", "channel"]].drop_duplicates("campaign_id")
        out = out.merge(info, on="campaign_id", how="left")
        out = out[["campaign_id", "campaign_name", "channel"] + models]
    return out


def journey_credits(cj, conversion_id=None, models=("first_touch", "linear", "time_decay", "w_shaped",
                                                "markov_per_conversion"),
                    **params) -> pd.DataFrame:
    """One conversion's journey with every model's credit per touch, for a timeline.

    ``conversion_id`` None picks the largest pipeline among journeys of 5-30 touches
    (readable on a timeline), else the shortest journey (no journey at all: an empty
    frame with the same columns). Columns: the journey columns of
    :meth:`ConversionJourneys.to_frame`, the conversion's converted_at, then one
    credit column per model.
    """
    from ..engine import is_partitioned, run
    if is_partitioned(cj):  # a partitioned dataset: the same analysis on its partitions (docs/scale.md)
        return run("journey_credits", cj, conversion_id, models, **params)
    check_model_params(params)
    conv = cj.conversions
    with_touch = conv[conv["n_touches"] > 0]
    if with_touch.empty and conversion_id is None:
        # a period without credited conversions (a quiet month): an empty journey, so a
        # report notebook shows "nothing to draw" instead of failing
        frame = cj.to_frame().iloc[:0].reset_index(drop=True)
        frame["converted_at"] = pd.Series([], dtype="datetime64[ns, UTC]")
        for m in models:
            frame[m] = pd.Series([], dtype=float)
        return frame
    if with_touch.empty:
        raise ValueError("no conversion has touches in its window: nothing to draw")
    if conversion_id is None:
        # a readable example: the biggest deal among journeys of 5-30 touches (else the shortest)
        readable = with_touch[with_touch["n_touches"].between(5, 30)]
        pool = readable if len(readable) else with_touch.nsmallest(1, "n_touches")
        conversion_id = pool.sort_values(["pipeline_amount", "conversion_id"], ascending=[False, True]
                                         ).iloc[0]["conversion_id"]
    rows = np.flatnonzero(conv["conversion_id"].to_numpy()[cj.conv] == conversion_id)
    if not len(rows):
        raise ValueError(f"conversion {conversion_id!r} has no touches in its window (or does not exist)")
    frame = cj.to_frame().iloc[rows].reset_index(drop=True)
    frame["converted_at"] = conv.set_index("conversion_id").loc[conversion_id, "converted_at"]
    for m in models:
        frame[m] = touch_credits(cj, m, **params)[rows]
    return frame
