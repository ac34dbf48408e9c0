"""Path-format interop: read_paths, write_paths, path_attribution."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from attribution_helpers import make_dataset

from abmkit.attribution import path_attribution, read_paths, write_paths
from abmkit.journeys import conversion_journeys


def test_read_paths_reports_malformed_rows_with_numbers():
    bad = pd.DataFrame({"path": ["a > b", "", "a >  > b", "c", None, "d"],
                        "total_conversions": [1, 2, 1, -1, 1, "x"]})
    with pytest.raises(ValueError) as e:
        read_paths(bad)
    msg = str(e.value)
    for frag in ("row 1: empty path", "row 2: empty channel", "row 3: negative total_conversions",
                 "row 4: empty path", "row 5: total_conversions is missing or not a number"):
        assert frag in msg
    ps = read_paths(bad, errors="report")
    assert ps.n_paths == 1 and ps.channels == ["a", "b"]
    assert ps.problems["row"].tolist() == [1, 2, 3, 4, 5]


def test_read_paths_missing_column_and_bad_errors_arg():
    with pytest.raises(ValueError, match="total_conversions"):
        read_paths(pd.DataFrame({"path": ["a"]}))
    with pytest.raises(ValueError, match="errors"):
        read_paths(pd.DataFrame({"path": ["a"], "total_conversions": [1]}), errors="ignore")


def test_read_paths_separator_and_index():
    t = pd.DataFrame({"path": ["a>b", "b > a"], "total_conversions": [1, 1]}, index=[10, 20])
    ps = read_paths(t, sep=">")
    assert ps.codes.tolist() == [0, 1, 1, 0] and ps.offsets.tolist() == [0, 2, 4]
    assert ps.null.tolist() == [0, 0] and ps.value.tolist() == [0, 0]


def test_path_attribution_exact_columns_and_values():
    t = pd.DataFrame({"path": ["a > b > a", "b", "c > a"], "total_conversions": [2, 1, 0], "total_null": [0, 3, 1]})
    out = path_attribution(t)
    assert list(out.columns) == ["channel", "model", "conversions", "conversion_value"]
    assert len(out) == 3 * 5 and (out["conversion_value"] == 0).all()
    got = out.set_index(["model", "channel"])["conversions"]
    assert got["first_touch", "a"] == 2 and got["first_touch", "b"] == 1 and got["first_touch", "c"] == 0
    assert got["last_touch", "a"] == 2
    assert got["linear", "a"] == pytest.approx(4 / 3) and got["linear", "b"] == pytest.approx(5 / 3)
    assert got["shapley", "a"] == pytest.approx(1) and got["shapley", "b"] == pytest.approx(2)
    assert got["markov"].sum() == pytest.approx(3)
    with pytest.raises(ValueError, match="time_decay"):
        path_attribution(t, ["time_decay"])


def test_write_paths_from_journeys_round_trips():
    ds = make_dataset([("t1", "a1", 1, "email"), ("t2", "a1", 2, "webinar"), ("t3", "a2", 1, "email"),
                       ("t4", "a2", 2, "webinar"), ("t5", "a3", 3, "display"), ("t6", "a4", 1, "email")],
                      [("o1", "a1", 5, 100.0), ("o2", "a2", 5, 50.0), ("o3", "a4", 5, 10.0)])
    cj = conversion_journeys(ds)
    table = write_paths(cj)
    assert table.to_dict("list") == {"path": ["display", "email", "email > webinar"],
                                     "total_conversions": [0.0, 1.0, 2.0],
                                     "total_conversion_value": [0.0, 10.0, 150.0], "total_null": [1.0, 0.0, 0.0]}
    direct = path_attribution(cj.paths(), ["linear", "markov", "shapley"]).set_index(["model", "channel"])
    back = path_attribution(table, ["linear", "markov", "shapley"]).set_index(["model", "channel"])
    # the dataset path set keeps every taxonomy channel; the table only the ones seen
    joined = back.join(direct, rsuffix="_d")
    np.testing.assert_allclose(joined["conversions"], joined["conversions_d"], atol=1e-12)
    np.testing.assert_allclose(joined["conversion_value"], joined["conversion_value_d"], atol=1e-9)
