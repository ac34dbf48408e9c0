"""The sequential influence design on a partitioned dataset (abmkit/scale/sequential_kernel.py)
gives the pandas table, without loading the whole data (issue 22).

The small sample (``small_sample`` fixture) partitioned in 3 and run on a 2-worker
LocalCluster (threads), against the kit's pandas path on the same resolved dataset, with
the fixtures of tests/test_scale.py.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_scale import data, ds, mapping, parts  # noqa: F401  (fixtures; the cluster is in conftest)

from abmkit import progression, uplift
from abmkit.prepared import prepare

KEY = ["level", "unit", "transition"]
# the small sample has 300 accounts: a low minimum so that the sequential statistics run
KW = dict(design="sequential", min_group_size=5, progress=False)


@pytest.fixture
def no_whole_data(monkeypatch):
    """A fallback to the in-memory dataset fails the test."""
    from abmkit.scale.partition import PartitionedDataset

    def refuse(self, *a, **k):
        raise AssertionError("the sequential design loaded the whole data")
    monkeypatch.setattr(PartitionedDataset, "in_memory", refuse)


def _same_table(got: pd.DataFrame, ref: pd.DataFrame):
    m = ref.merge(got, on=KEY, suffixes=("_pd", "_dask"), how="outer", indicator=True)
    assert (m["_merge"] == "both").all() and len(m) == len(ref) == len(got)
    seq = m["design_pd"] == "sequential"
    # some campaign rows are estimated by the sequential design, some are too small (n/a)
    assert (seq & m["adj_diff_pd"].notna()).sum() >= 3
    assert (seq & m["flag_reason_pd"].str.endswith("not estimated")).any()
    for col in ref.columns.difference(KEY):
        a, b = m[f"{col}_dask"], m[f"{col}_pd"]
        if pd.api.types.is_numeric_dtype(b) and not pd.api.types.is_bool_dtype(b):
            a, b = a.astype(float), b.astype(float)
            assert (a.isna() == b.isna()).all(), col
            np.testing.assert_allclose(a[a.notna()], b[b.notna()], rtol=1e-9, atol=1e-12, err_msg=col)
        else:
            assert (a.fillna("<NA>").astype(str) == b.fillna("<NA>").astype(str)).all(), col


def test_sequential_design_partitioned_equals_pandas(data, parts, no_whole_data):
    got = uplift.campaign_influence(parts, **KW)
    ref = uplift.campaign_influence(data, **KW)
    assert got.params["design"] == "sequential"
    assert set(got.table.loc[got.table.level == "campaign", "design"]) == {"sequential"}
    _same_table(got.table, ref.table)
    with pytest.raises(ValueError, match="design"):
        uplift.campaign_influence(parts, design="clone")


def test_sequential_design_with_given_history_as_notebook_04(ds, mapping, parts, no_whole_data):
    """A report's history (cut at the quarter's end), given to both paths, campaign rows."""
    hist = progression.stage_history(parts, as_of="2026-09-30")
    got = uplift.campaign_influence(parts, history=hist, by="campaign", cox=False, **KW).table
    report = prepare(ds, mapping=mapping, as_of="2026-09-30")
    ref = uplift.campaign_influence(report, history=progression.stage_history(report), by="campaign", cox=False,
                                    **KW).table
    _same_table(got, ref)
