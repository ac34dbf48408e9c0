"""The incremental attribution model on partitions (``attribution.incremental_attribution``
and the ``incremental`` model of ``attribution.compare_models`` on a partitioned dataset).

The model's panel splits in two (abmkit/attribution/incremental.py): rows that read one
account at a time (its at-risk start, first opportunity, raw covariates and exposure
runs: :func:`~abmkit.attribution.incremental.panel_rows`) and what needs every at-risk
account (the overall first-opportunity rate behind channel estimability, covariate
standardisation, the amount given to accounts without an opportunity, the design's
columns: :func:`~abmkit.attribution.incremental.finish_panel`). Each partition runs the
first on its whole accounts with the whole data's data end and data start; the driver
gathers the rows (a few runs per account, no touches), puts them in the in-memory
order and runs the second, then the same fit, removal effects and bootstrap once.
"""
from __future__ import annotations

import pandas as pd

from .kernels import _data_start, _global_span, _mqa, _progress, _resolved, channel_credits
from .partition import partitions
from .runtime import _map, _share


def _part_rows(part, span, data_start, kw: dict, entries):
    """One partition's :class:`~abmkit.attribution.incremental.PanelRows`, and the
    account ids of ``entries`` it holds (None when the stage history gives them)."""
    from ..attribution.incremental import panel_rows, stage_entries_of
    from ..progression import stage_history
    data = _resolved(part, span)
    held = None
    if entries is None:  # as the stage-history kernel: the whole data's start and end
        entries = stage_entries_of(stage_history(data, data_start=data_start), kw["from_stage"])
    else:  # given entries: those of the accounts this partition holds any row of
        ids = entries["account_id"].astype(object)
        here = (ids.isin(data.accounts["account_id"]) | ids.isin(data.touches["account_id"])
                | ids.isin(data.opportunities["account_id"])).to_numpy()
        entries = entries[here]
        held = entries["account_id"].to_numpy(object)
    return panel_rows(data, stage_entries=entries, **kw), held


def _empty_partition():
    """A partition without any row (given stage entries of accounts no partition holds)."""
    from ..schema import TABLES, Dataset, empty_table
    return (Dataset(**{t: empty_table(t) for t in TABLES}),
            pd.DataFrame({"contact_id": pd.Series([], dtype=object), "account_id": pd.Series([], dtype=object)}))


def _panel(data, *, from_stage, lag_days, window_days, min_expected_events, stage_entries, progress=None):
    """The model's :class:`~abmkit.attribution.incremental.Panel` of a partitioned
    dataset, equal to :func:`~abmkit.attribution.incremental.exposure_panel` in memory."""
    from ..attribution.incremental import combine_panel_rows, finish_panel, panel_rows
    parts = partitions(data)
    span = _global_span(parts)
    kw = {"from_stage": from_stage, "lag_days": lag_days, "window_days": window_days}
    given = None if stage_entries is None else stage_entries[["account_id", "entered_at"]].reset_index(drop=True)
    res = _map(parts, _part_rows, span, _data_start(span), kw, None if given is None else _share(given),
               _progress=("incremental model", _progress(data, progress)))
    rows = [r for r, _ in res]
    order = "account_id"  # the stage history's order (stage_wide: by account id)
    if given is not None:
        held = pd.Index(pd.concat([pd.Series(h, dtype=object) for _, h in res], ignore_index=True))
        rest = given[~given["account_id"].astype(object).isin(held).to_numpy()]
        if len(rest):  # accounts without any row anywhere: at risk all the same, as in memory
            rows.append(panel_rows(_resolved(_empty_partition(), span), stage_entries=rest, **kw))
        where = pd.Index(given["account_id"].astype(object))
        rows = [type(r)(r.accounts.assign(position=where.get_indexer(r.accounts["account_id"].astype(object))),
                        r.runs, r.channels, r.left_out) for r in rows]
        order = "position"  # the given entries' order
    return finish_panel(combine_panel_rows(rows, order), min_expected_events=min_expected_events)


def incremental_attribution(data, *, from_stage, lag_days, window_days, ridge, min_expected_events, n_boot, seed,
                            alpha, bootstrap, stage_entries):
    """:func:`abmkit.attribution.incremental_attribution` on partitions: the panel's
    per-account rows on the partitions, everything global and the fit on the driver
    (the same result as in memory, for either bootstrap: the gathered panel is the
    in-memory one, in the same order)."""
    from ..attribution.incremental import result_from_panel
    panel = _panel(data, from_stage=from_stage, lag_days=lag_days, window_days=window_days,
                   min_expected_events=min_expected_events, stage_entries=stage_entries)
    return result_from_panel(panel, from_stage=from_stage, lag_days=lag_days, window_days=window_days, ridge=ridge,
                             n_boot=n_boot, seed=seed, alpha=alpha, bootstrap=bootstrap)


def compare_models(data, models, n_boot, seed, *, milestone, lookback_days, start, end, alpha, progress,
                   **params):
    """:func:`abmkit.attribution.compare_models` on partitions with the ``incremental``
    model among ``models``: the path models as without it (channel credits summed over
    the partitions, Poisson bootstrap), the incremental model fitted as
    :func:`incremental_attribution` does (Poisson bootstrap, same seed), its shares
    splitting the converting journeys' totals as in memory
    (:func:`abmkit.attribution.incremental.add_result_to_comparison`)."""
    from ..attribution.compare import comparison_from_credits
    from ..attribution.incremental import add_result_to_comparison, incremental_attribution as _inc
    models = [models] if isinstance(models, str) else list(models)
    path = [m for m in models if m != "incremental"]
    # without a path model the journeys still give the totals the shares split: run the cheapest one, unshown
    cc = channel_credits(data, path or ["first_touch"], milestone=milestone, lookback_days=lookback_days,
                         mqa_dates=_mqa(data), start=start, end=end, n_boot=n_boot, seed=seed, alpha=alpha,
                         progress=_progress(data, progress), **params)
    credits, conservation, low, high = cc.credits, cc.conservation, cc.low, cc.high
    c0 = conservation.iloc[0]
    totals = (float(c0["conversions_given"]), float(c0["pipeline_given"]), float(c0["revenue_given"]))
    if not path:
        credits = credits.iloc[:0]
        conservation = conservation.iloc[:0]
        low, high = (None if b is None else b.drop(columns=["first_touch"]) for b in (low, high))
    inc = _inc(data, n_boot=n_boot, seed=seed, alpha=alpha, bootstrap="poisson")
    credits, conservation, low, high, _ = add_result_to_comparison(inc, totals, credits, conservation, low, high,
                                                                   cc.channels_seen, n_boot=n_boot, alpha=alpha)
    info = {**cc.info, "incremental": inc.info}
    res = comparison_from_credits(credits, models, conservation.reset_index(drop=True), cc.no_touch, info,
                                  cc.channels_seen, low=low, high=high, n_boot=n_boot if low is not None else 0,
                                  seed=seed)
    res.incremental = inc
    return res
