"""U / J / inverse-J shaped credits on an aggregated path table, by hand.

Path-table models use ``abmkit.attribution.positions.bathtub``: first and last
touches get their shares, and the middle share is split over the n - 2 middle
touches. Written to kill the mutation that divides the middle share by n - 1.

Table:
  "a > b > c > d"      1 conversion, value 100
  "b > a > c > a > d"  2 conversions, value 30 (total), 4 nulls

u_shaped (0.4, 0.2, 0.4):
  path 1: a .4, b .2/2 = .1, c .1, d .4
  path 2 (per conversion): b .4, a 2 * .2/3, c .2/3, d .4
  conversions: a = .4 + 2 * (.4/3) = 2/3,  b = .1 + 2 * .4 = .9,
               c = .1 + 2 * (.2/3) = 7/30, d = .4 + 2 * .4 = 1.2        (sum 3)
  value: a = 40 + 30 * .4/3 = 44, b = 10 + 12 = 22, c = 10 + 2 = 12, d = 40 + 12 = 52   (sum 130)
j_shaped (0.2, 0.2, 0.6):
  conversions: a = .2 + 2 * (.4/3) = 7/15, b = .1 + 2 * .2 = .5, c = 7/30, d = .6 + 2 * .6 = 1.8
  value: a = 20 + 4 = 24, b = 10 + 6 = 16, c = 10 + 2 = 12, d = 60 + 18 = 78
inverse_j (0.6, 0.2, 0.2):
  conversions: a = .6 + 2 * (.4/3) = 13/15, b = .1 + 2 * .6 = 1.3, c = 7/30, d = .2 + 2 * .2 = .6
  value: a = 60 + 4 = 64, b = 10 + 18 = 28, c = 12, d = 20 + 6 = 26
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from abmkit.attribution import path_attribution
from abmkit.attribution.positions import bathtub

TABLE = pd.DataFrame({"path": ["a > b > c > d", "b > a > c > a > d"], "total_conversions": [1, 2],
                      "total_conversion_value": [100.0, 30.0], "total_null": [0, 4]})

EXPECTED = {   # model -> channel -> (conversions, conversion_value)
    "u_shaped": {"a": (2 / 3, 44.0), "b": (0.9, 22.0), "c": (7 / 30, 12.0), "d": (1.2, 52.0)},
    "j_shaped": {"a": (7 / 15, 24.0), "b": (0.5, 16.0), "c": (7 / 30, 12.0), "d": (1.8, 78.0)},
    "inverse_j": {"a": (13 / 15, 64.0), "b": (1.3, 28.0), "c": (7 / 30, 12.0), "d": (0.6, 26.0)},
}


@pytest.mark.parametrize("model", list(EXPECTED))
def test_bathtub_models_on_a_path_table_by_hand(model):
    out = path_attribution(TABLE, [model])
    assert out["channel"].tolist() == ["a", "b", "c", "d"] and set(out["model"]) == {model}
    got = {r.channel: (r.conversions, r.conversion_value) for r in out.itertuples()}
    for ch, (conv, val) in EXPECTED[model].items():
        assert got[ch][0] == pytest.approx(conv, abs=1e-12), (model, ch)
        assert got[ch][1] == pytest.approx(val, abs=1e-9), (model, ch)
    # conservation: the three conversions and their value are handed out in full
    assert out["conversions"].sum() == pytest.approx(3.0) and out["conversion_value"].sum() == pytest.approx(130.0)


def test_bathtub_middle_share_is_split_over_n_minus_2_touches():
    pos = np.array([0, 1, 2, 3, 0, 1, 2, 3, 4])
    n = np.array([4] * 4 + [5] * 5)
    assert bathtub(pos, n, 0.4, 0.2, 0.4) == pytest.approx([.4, .1, .1, .4, .4, .2 / 3, .2 / 3, .2 / 3, .4])
    assert bathtub(pos, n, 0.2, 0.2, 0.6) == pytest.approx([.2, .1, .1, .6, .2, .2 / 3, .2 / 3, .2 / 3, .6])
    # small n: 1 -> 100 %, 2 -> 50/50, 3 -> the whole middle share on the one middle touch
    assert bathtub(np.array([0, 0, 1, 0, 1, 2]), np.array([1, 2, 2, 3, 3, 3]), 0.2, 0.2, 0.6) == \
        pytest.approx([1.0, .5, .5, .2, .2, .6])
