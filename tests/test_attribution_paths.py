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
    # r({a,b}) = 1, r({b}) = 1/4: a > b > a splits phi_a = 1/2, phi_b = 1/4 + 1/2 -> 0.4 : 0.6 of 2
    assert got["shapley", "a"] == pytest.approx(0.8) and got["shapley", "b"] == pytest.approx(2.2)
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


def test_read_paths_from_a_file_sniffs_the_delimiter_and_names_columns(tmp_path):
    from abmkit.attribution import read_paths
    f = tmp_path / "paths.csv"
    f.write_text("channel_path;conv;lost;revenue\nemail > webinar;2;1;300\nemail;0;4;0\n", encoding="utf-8")
    ps = read_paths(f, columns={"path": "channel_path", "total_conversions": "conv", "total_null": "lost",
                                "total_conversion_value": "revenue"})
    assert ps.channels == ["email", "webinar"] and ps.conversions.tolist() == [2, 0]
    assert ps.null.tolist() == [1, 4] and ps.value.tolist() == [300, 0]
    same = read_paths(pd.DataFrame({"channel_path": ["email > webinar", "email"], "conv": [2, 0], "lost": [1, 4]}),
                      columns={"path": "channel_path", "total_conversions": "conv", "total_null": "lost"})
    assert same.codes.tolist() == ps.codes.tolist()
    with pytest.raises(ValueError, match="not path-table fields"):
        read_paths(f, columns={"journey": "channel_path"})
    with pytest.raises(ValueError, match="missing"):
        read_paths(f)  # its own column names without a mapping: the error lists what was found


def test_read_paths_file_stays_inside_the_data_folder(tmp_path):
    from abmkit.attribution import read_paths
    from abmkit.io.errors import InputError
    inside = tmp_path / "data"
    inside.mkdir()
    (inside / "p.csv").write_text("path,total_conversions\na > b,1\n")
    outside = tmp_path / "secret.csv"
    outside.write_text("path,total_conversions\nx,1\n")
    assert read_paths("p.csv", root=inside).n_paths == 1
    with pytest.raises(InputError):
        read_paths("../secret.csv", root=inside)
    (inside / "link.csv").symlink_to(outside)
    with pytest.raises(InputError):
        read_paths("link.csv", root=inside)
    with pytest.raises(InputError):
        read_paths(outside, root=inside)


def _loop_sessions(df):
    """sessions_to_paths written with loops (the definition)."""
    out = {}
    for uid, g in df.sort_values(["user", "ts"], kind="stable").groupby("user", sort=True):
        cur, val = [], 0.0
        for _, r in g.iterrows():
            cur.append(r["ch"])
            if r["conv"]:
                key = " > ".join(cur)
                c = out.setdefault(key, [0.0, 0.0, 0.0])
                c[0] += 1
                c[1] += r["v"]
                cur = []
        if cur:
            out.setdefault(" > ".join(cur), [0.0, 0.0, 0.0])[2] += 1
    return {k: tuple(v) for k, v in out.items()}


@pytest.mark.parametrize("seed", range(3))
def test_sessions_to_paths_equals_a_loop(seed):
    from abmkit.attribution import sessions_to_paths
    rng = np.random.default_rng(seed)
    n = 300
    df = pd.DataFrame({"user": rng.choice([f"u{i}" for i in range(25)], n),
                       "ts": rng.permutation(n).astype(float),
                       "ch": rng.choice(["email", "search", "social", "direct"], n),
                       "conv": rng.random(n) < 0.15, "v": rng.integers(1, 9, n).astype(float)})
    got = sessions_to_paths(df.sample(frac=1, random_state=seed), journey="user", timestamp="ts", channel="ch",
                            converted="conv", value="v")
    assert {r.path: (r.total_conversions, r.total_conversion_value, r.total_null)
            for r in got.itertuples()} == _loop_sessions(df)
    per = sessions_to_paths(df, journey="user", timestamp="ts", channel="ch", converted="conv", by_journey=True)
    assert per["converted"].sum() == df["conv"].sum()
    assert (per.groupby("user")["journey_number"].apply(lambda s: list(s) == list(range(len(s))))).all()


def test_sessions_to_paths_timestamps_flags_and_errors():
    from abmkit.attribution import sessions_to_paths
    s = pd.DataFrame({"account_id": ["a", "a", "a"], "timestamp": ["2026-01-03", "2026-01-01", "2026-01-02"],
                      "channel": ["webinar", "email", "email"], "converted": ["yes", "no", "false"]})
    got = sessions_to_paths(s)
    assert got.to_dict("list") == {"path": ["email > email > webinar"], "total_conversions": [1.0],
                                   "total_conversion_value": [0.0], "total_null": [0.0]}
    with pytest.raises(ValueError, match="missing"):
        sessions_to_paths(s, timestamp="when")
    with pytest.raises(ValueError, match="without an id"):
        sessions_to_paths(s.assign(channel=[None, "a", "b"]))
