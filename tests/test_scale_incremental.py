"""The incremental attribution model on partitions (issue 22): ``incremental_attribution``
and ``compare_models(..., [..., "incremental"])`` on a partitioned dataset equal the
in-memory results to 1e-9 (every column of the channel table, the bootstrap replicates,
``info``; compare_models against ``bootstrap="poisson"`` in memory), without ever loading
the whole data (the handle is opened with ``in_memory="error"``).

Pandas against a 2-worker LocalCluster (threads) on the small sample resolved for
2026Q3, as tests/test_scale_handle.py does; 3 partitions.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from abmkit import attribution
from abmkit.period import resolve_period

PERIOD = resolve_period(quarter="2026Q3")


@pytest.fixture(scope="module")
def opened(small_sample_dir, tmp_path_factory, cluster):
    """The sample's resolved dataset for both engines; the dask handle refuses to load
    the whole data, so an in-memory fallback fails the test."""
    import shutil

    import abmkit
    folder = tmp_path_factory.mktemp("incremental") / "canonical"
    shutil.copytree(small_sample_dir / "canonical", folder)
    mem = abmkit.open_dataset(folder, engine="pandas", as_of=PERIOD.end)
    parts = abmkit.open_dataset(folder, engine="dask", npartitions=3, in_memory="error")
    return mem, parts


def _same_result(got, ref):
    """Every column of the channel table (floats to 1e-9, the rest exactly), the
    replicates and ``info``."""
    a, b = got.channels, ref.channels
    assert a.columns.tolist() == b.columns.tolist() and len(a) == len(b)
    for c in a.columns:
        if a[c].dtype.kind == "f":
            np.testing.assert_allclose(a[c].to_numpy(float), b[c].to_numpy(float), rtol=1e-9, atol=1e-9,
                                       err_msg=c)
        else:
            assert a[c].tolist() == b[c].tolist(), (c, a[c].tolist(), b[c].tolist())
    assert got.replicates.shape == ref.replicates.shape
    np.testing.assert_allclose(got.replicates, ref.replicates, rtol=1e-9, atol=1e-9)
    assert got.info.keys() == ref.info.keys()
    for k, v in ref.info.items():
        if isinstance(v, float):
            assert got.info[k] == pytest.approx(v, rel=1e-9), k
        else:
            assert got.info[k] == v, k
    assert getattr(got, "not_applicable", None) == getattr(ref, "not_applicable", None)


@pytest.mark.parametrize("kw", [dict(bootstrap="poisson"),
                                # the gathered panel is the in-memory one, in its order: the account draws match too
                                dict(bootstrap="multinomial", lag_days=3.5, window_days=45)])
def test_incremental_attribution_equals_in_memory(opened, kw):
    mem, parts = opened
    ref = attribution.incremental_attribution(mem, n_boot=20, seed=3, **kw)
    got = attribution.incremental_attribution(parts, n_boot=20, seed=3, **kw)
    est = ref.channels[ref.channels["estimable"]]
    # a real check: several channels estimated, some not (with their reasons), intervals drawn
    assert len(est) >= 3 and (~ref.channels["estimable"]).sum() >= 1 and ref.replicates.shape == (20, len(est))
    assert ref.info["accounts_at_risk"] > 50 and ref.info["first_opportunities"] > 10
    _same_result(got, ref)


def test_compare_models_with_incremental_equals_poisson_bootstrap_in_memory(opened):
    mem, parts = opened
    ref = attribution.compare_models(mem, ["linear", "incremental"], n_boot=20, seed=3, bootstrap="poisson")
    got = attribution.compare_models(parts, ["linear", "incremental"], n_boot=20, seed=3)
    inc = ref.credits[ref.credits["model"] == "incremental"]
    assert inc["conversions"].sum() > 0 and ref.intervals.query("model == 'incremental'")["high"].notna().all()
    for name in ("credits", "conservation", "intervals", "shares"):
        pd.testing.assert_frame_equal(getattr(got, name), getattr(ref, name), check_exact=False, rtol=1e-9,
                                      atol=1e-9, obj=name)
    _same_result(got.incremental, ref.incremental)
    assert got.info["incremental"] == ref.incremental.info
    # the incremental model alone (no path model): its rows only
    ref = attribution.compare_models(mem, ["incremental"], n_boot=0, seed=3, bootstrap="poisson")
    got = attribution.compare_models(parts, ["incremental"], n_boot=0, seed=3)
    assert set(got.credits["model"]) == {"incremental"}
    for name in ("credits", "conservation", "shares"):
        pd.testing.assert_frame_equal(getattr(got, name), getattr(ref, name), check_exact=False, rtol=1e-9,
                                      atol=1e-9, check_dtype=False, obj=name)


def test_no_account_at_risk_is_the_same_na_on_both_engines(opened):
    """Customers entered their stage by opening an opportunity: nobody is at risk,
    and both engines say so with the same reason and the same count."""
    mem, parts = opened
    ref = attribution.incremental_attribution(mem, from_stage="customer", n_boot=5)
    got = attribution.incremental_attribution(parts, from_stage="customer", n_boot=5)
    assert ref.info["accounts_at_risk"] == 0 and ref.info["left_out_converted_at_entry"] > 0
    assert ref.not_applicable.startswith("no account at risk")
    _same_result(got, ref)


def test_given_stage_entries_equal_in_memory(opened):
    """Entries given by the caller, in their own order, one of an account that no
    partition holds (at risk all the same, without touches or covariates)."""
    mem, parts = opened
    ids = mem.accounts["account_id"].tolist()[::-1][:150] + ["no-such-account"]
    entries = pd.DataFrame({"account_id": ids, "entered_at": pd.Timestamp("2026-02-01", tz="UTC")
                            + pd.to_timedelta(np.arange(len(ids)) % 40, unit="D")})
    ref = attribution.incremental_attribution(mem, stage_entries=entries, n_boot=10, seed=1, min_expected_events=2)
    got = attribution.incremental_attribution(parts, stage_entries=entries, n_boot=10, seed=1,
                                              min_expected_events=2)
    assert ref.info["accounts_at_risk"] > 100 and ref.channels["estimable"].sum() >= 3
    _same_result(got, ref)


def test_partition_rows_combine_to_the_whole_panel(opened):
    """Without Dask: the per-account rows of two halves of the accounts, combined and
    finished, are the in-memory panel (same runs in the same order, same design)."""
    from abmkit.attribution.incremental import (combine_panel_rows, exposure_panel, finish_panel, panel_rows,
                                                stage_entries_of)
    from abmkit.progression import stage_history
    mem, _ = opened
    entries = stage_entries_of(stage_history(mem), "sales_ready")
    whole = exposure_panel(mem)
    # one part without the at-risk accounts touched by a channel early in the order, so its
    # exposure bits are coded on other positions than the whole panel's (re-coded when combined)
    tp = mem.touches[mem.touches["account_id"].isin(entries["account_id"])]
    rare = tp.groupby("channel", observed=True)["account_id"].nunique()
    rare = rare[[c for c in rare.index if c in whole.channels[:-1]]].idxmin()
    touched = tp.loc[tp["channel"] == rare, "account_id"]
    halves = [entries[~entries["account_id"].isin(touched)], entries[entries["account_id"].isin(touched)]]
    rows = [panel_rows(mem, stage_entries=h) for h in halves]
    assert rare not in rows[0].channels and rows[0].channels != rows[1].channels[:len(rows[0].channels)]
    got = finish_panel(combine_panel_rows(rows))
    assert got.terms == whole.terms and got.not_estimable == whole.not_estimable
    assert got.account_ids.tolist() == whole.account_ids.tolist()
    for f in ("X", "days", "events", "acct", "at_risk", "amount", "converted"):
        np.testing.assert_array_equal(getattr(got, f), getattr(whole, f), err_msg=f)


@pytest.mark.parametrize("engine", [0, 1])
def test_unknown_bootstrap_is_refused_on_both_engines(opened, engine):
    """One check before the engines part: the same error, nothing computed."""
    data = opened[engine]
    with pytest.raises(ValueError, match="bootstrap must be 'poisson' or 'multinomial', not 'jackknife'"):
        attribution.incremental_attribution(data, n_boot=5, bootstrap="jackknife")
