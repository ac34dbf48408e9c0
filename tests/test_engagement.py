"""Account engagement score and MQA (DESIGN §2b): hand-computed components, a
brute-force reference on random data, exact MQA dates, the follow-up lists, and
the sample generator's data."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from abmkit.engagement import (
    COMPONENTS, DEFAULT_COMPONENT_WEIGHTS, DEFAULT_TOUCH_WEIGHTS, engagement_scores, mqa, mqa_dates,
)
from abmkit.prepared import MQARule, prepare
from abmkit.schema import ENGAGEMENT_TOUCH_TYPES, HIGH_INTENT_TOUCH_TYPES, TOUCH_TYPES, Dataset

T0 = pd.Timestamp("2026-01-01", tz="UTC")


def ts(days: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(days=days)


def dataset(touches, contacts=None, accounts=("a1", "a2")):
    """touches: (day, touch_type, contact_id or None, account_id or None)."""
    if contacts is None:
        contacts = {"d1": ("a1", "decision_maker"), "d2": ("a1", "decision_maker"), "d3": ("a1", "decision_maker"),
                    "i1": ("a1", "influencer"), "u1": ("a1", "user"), "o1": ("a1", "other"),
                    "x1": ("a2", "decision_maker"), "nomap": (None, "user")}
    con = pd.DataFrame({"contact_id": list(contacts), "crm_account_id": [v[0] for v in contacts.values()],
                        "persona": [v[1] for v in contacts.values()]})
    tp = pd.DataFrame({
        "touchpoint_id": [f"t{i:03d}" for i in range(len(touches))],
        "occurred_at": [ts(d) for d, *_ in touches],
        "channel": "email", "touch_type": [t for _, t, *_ in touches],
        "contact_id": [c for _, _, c, _ in touches], "account_id": [a for *_, a in touches],
    })
    acc = pd.DataFrame({"account_id": list(accounts), "account_name": [f"Name {a}" for a in accounts]})
    return Dataset.from_frames(accounts=acc, contacts=con, touchpoints=tp)


def crm_map(ds):
    return ds.contacts[["contact_id", "crm_account_id"]].rename(columns={"crm_account_id": "account_id"})


def prep(ds, **rule):
    """The dataset resolved with its CRM mapping (as given) and an MQA rule."""
    return prepare(ds, mapping=crm_map(ds), mqa=MQARule(**rule))


# --------------------------------------------------------------------------- components by hand
def test_components_by_hand():
    ds = dataset([
        (0, "demo_request", "d1", None),       # 60 days before as_of: weight 8 × 2^-2 = 2
        (30, "email_open", "d2", None),        # not an engagement touch; 0.5 × 2^-1 = 0.25
        (45, "impression", None, "a1"),        # account-level: activity 0.1 × 2^-0.5, no breadth
        (60, "visit", "i1", None),             # 1 × 1
        (60.5, "content_download", "i1", None),
        (-40, "meeting", "u1", None),          # 100 days before as_of: outside the window
        (10, "visit", "nomap", None),          # unmapped contact: unattributable
    ])
    data = prep(ds)
    s = engagement_scores(data, as_of=ts(60)).set_index("account_id")
    a1 = s.loc["a1"]
    assert a1["activity"] == pytest.approx(8 * 0.25 + 0.5 * 0.5 + 0.1 * 2 ** -0.5 + 1.0)
    assert a1["breadth"] == 2            # d1 and i1 (d2 only opened an email)
    assert a1["personas_reached"] == 2 and a1["persona_coverage"] == pytest.approx(2 / 3)
    assert a1["decision_makers_engaged"] == 1
    assert a1["high_intent_count"] == 1 and bool(a1["high_intent"])   # the 60.5 download is in the future
    assert a1["recency_days"] == 0.0
    assert a1["cadence_days"] == 60.0    # engagement days 0 and 60
    assert a1["touches"] == 4
    expected = (a1["activity"] + 2 * 2 + 10 * (2 / 3) + 3 * 1 + 5 * 1)
    assert a1["score"] == pytest.approx(expected)
    a2 = s.loc["a2"]
    assert a2[["activity", "breadth", "touches", "high_intent_count"]].tolist() == [0, 0, 0, 0]
    assert np.isnan(a2["recency_days"]) and np.isnan(a2["cadence_days"])
    assert (data.touches["account_source"] == "unattributable").sum() == 1   # counted on the resolved dataset
    assert list(s.columns) == ["as_of", *COMPONENTS]


def test_window_is_half_open_on_the_left():
    ds = dataset([(0, "visit", "d1", None), (90, "visit", "d2", None)])
    s = engagement_scores(prep(ds), as_of=ts(90)).set_index("account_id")
    # the day-0 touch is exactly window_days old: out; the day-90 touch is at as_of: in
    assert s.loc["a1", "breadth"] == 1 and s.loc["a1", "touches"] == 1
    assert s.loc["a1", "recency_days"] == 0
    s = engagement_scores(prep(ds), as_of=ts(89.999)).set_index("account_id")
    assert s.loc["a1", "breadth"] == 1 and s.loc["a1", "recency_days"] == pytest.approx(89.999)


def test_weights_are_configurable():
    ds = dataset([(0, "visit", "d1", None), (0, "meeting", "d2", None)])
    s = engagement_scores(prep(ds), as_of=ts(0), weights={"visit": 4},
                          component_weights={"activity": 2.0, "breadth": 1.0})
    a1 = s.set_index("account_id").loc["a1"]
    assert a1["activity"] == pytest.approx(4 + 8)
    assert a1["score"] == pytest.approx(2 * 12 + 2)
    with pytest.raises(ValueError, match="unknown touch type"):
        engagement_scores(prep(ds), weights={"tweet": 1})
    with pytest.raises(ValueError, match="unknown component"):
        engagement_scores(prep(ds), component_weights={"vibes": 1})


def test_design_default_weights():
    assert {k: DEFAULT_TOUCH_WEIGHTS[k] for k in (
        "impression", "email_open", "visit", "click", "email_click", "content_download", "form_fill",
        "webinar_attended", "event_attended", "demo_request", "meeting", "intent_signal")} == {
        "impression": 0.1, "email_open": 0.5, "visit": 1, "click": 1, "email_click": 1, "content_download": 3,
        "form_fill": 3, "webinar_attended": 5, "event_attended": 5, "demo_request": 8, "meeting": 8,
        "intent_signal": 2}
    assert set(DEFAULT_TOUCH_WEIGHTS) == set(TOUCH_TYPES)
    assert set(DEFAULT_COMPONENT_WEIGHTS) < set(COMPONENTS)


def test_dates_list_and_frequency():
    ds = dataset([(0, "visit", "d1", None), (20, "visit", "d2", None)])
    s = engagement_scores(prep(ds), as_of=[ts(10), ts(20)])
    got = s[s.account_id == "a1"].set_index("as_of")["breadth"].to_dict()
    assert got == {ts(10): 1, ts(20): 2}
    w = engagement_scores(prep(ds), freq="W")
    dates = sorted(w["as_of"].unique())
    assert all(pd.Timestamp(d).dayofweek == 6 for d in dates)     # weekly = Sundays
    assert len(w) == 2 * len(dates)
    assert pd.Timestamp(dates[-1]) <= ts(20)


# --------------------------------------------------------------------------- brute force reference
def random_dataset(seed, n_acc=5, n_con=25, n_t=300):
    rng = np.random.default_rng(seed)
    accounts = [f"a{i}" for i in range(n_acc)]
    personas = rng.choice(["decision_maker", "influencer", "user", "other", None], n_con)
    contacts = {f"c{i}": (rng.choice(accounts), personas[i]) for i in range(n_con)}
    cid = rng.choice(list(contacts) + [None] * 4, n_t)
    touches = [(float(d), t, c, None if c is not None else rng.choice(accounts))
               for d, t, c in zip(rng.uniform(0, 300, n_t), rng.choice(TOUCH_TYPES, n_t), cid)]
    return dataset(touches, contacts, accounts)


def brute_force(ds, as_of, window=90):
    ca = crm_map(ds).set_index("contact_id")["account_id"]
    tp = ds.touchpoints.copy()
    tp["acc"] = tp["account_id"].where(tp["account_id"].notna(), tp["contact_id"].map(ca))
    tp["persona"] = tp["contact_id"].map(ds.contacts.set_index("contact_id")["persona"])
    tp["type"] = tp["touch_type"].astype(object)
    rows = {}
    for a in ds.accounts["account_id"]:   # a deliberately naive reference
        x = tp[tp["acc"] == a]
        win = x[(x["occurred_at"] > as_of - pd.Timedelta(days=window)) & (x["occurred_at"] <= as_of)]
        age = (as_of - win["occurred_at"]).dt.total_seconds() / 86400
        eng = win[win["type"].isin(ENGAGEMENT_TOUCH_TYPES)]
        engc = eng[eng["contact_id"].notna()]
        past = x[x["type"].isin(ENGAGEMENT_TOUCH_TYPES) & (x["occurred_at"] <= as_of)]
        days = sorted({d.date() for d in eng["occurred_at"]})
        gaps = [(b - a_).days for a_, b in zip(days, days[1:])]
        rows[a] = {
            "activity": float((win["type"].map(DEFAULT_TOUCH_WEIGHTS) * 2 ** (-age / 30)).sum()),
            "breadth": engc["contact_id"].nunique(),
            "personas_reached": engc.loc[engc["persona"].isin(["decision_maker", "influencer", "user"]), "persona"].nunique(),
            "decision_makers_engaged": engc.loc[engc["persona"] == "decision_maker", "contact_id"].nunique(),
            "high_intent_count": int(win["type"].isin(HIGH_INTENT_TOUCH_TYPES).sum()),
            "recency_days": (as_of - past["occurred_at"].max()).total_seconds() / 86400 if len(past) else np.nan,
            "cadence_days": float(np.median(gaps)) if gaps else np.nan,
            "touches": len(win),
        }
    return pd.DataFrame(rows).T


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_components_match_brute_force(seed):
    ds = random_dataset(seed)
    dates = [ts(75.3), ts(150), ts(299.9), ds.touchpoints["occurred_at"].iloc[7]]
    got = engagement_scores(prep(ds), as_of=dates)
    for d in dates:
        exp = brute_force(ds, d)
        g = got[got["as_of"] == d].set_index("account_id").loc[exp.index]
        for col in exp.columns:
            np.testing.assert_allclose(g[col].astype(float), exp[col].astype(float), rtol=1e-9, atol=1e-9,
                                       err_msg=f"{col} at {d}")


def brute_force_mqa(ds, k, window=90):
    ca = crm_map(ds).set_index("contact_id")["account_id"]
    tp = ds.touchpoints.copy()
    tp["acc"] = tp["contact_id"].map(ca)
    tp["persona"] = tp["contact_id"].map(ds.contacts.set_index("contact_id")["persona"])
    dm = tp[(tp["persona"] == "decision_maker") & tp["touch_type"].astype(object).isin(ENGAGEMENT_TOUCH_TYPES)]
    out = {}
    for a in ds.accounts["account_id"]:
        x = dm[dm["acc"] == a]
        for t in sorted(tp.loc[tp["acc"] == a, "occurred_at"]):
            w = x[(x["occurred_at"] > t - pd.Timedelta(days=window)) & (x["occurred_at"] <= t)]
            if w["contact_id"].nunique() >= k:
                out[a] = t
                break
    return out


@pytest.mark.parametrize("seed", [0, 3])
def test_mqa_dates_match_brute_force(seed):
    ds = random_dataset(seed, n_con=30, n_t=400)
    got = mqa_dates(prep(ds, min_decision_makers=2))
    exp = brute_force_mqa(ds, 2)
    assert len(exp) >= 1
    assert got.set_index("account_id")["mqa_at"].to_dict() == exp


# --------------------------------------------------------------------------- MQA by hand
def mqa_story():
    return dataset([
        (0, "visit", "d1", None),
        (50, "webinar_attended", "d2", None),
        (95, "demo_request", "d3", None),   # d1 fell out of the window at day 90: only 2 DMs now
        (100, "email_click", "d1", None),   # d1 back: 3 DMs → MQA at day 100
        (100, "visit", "i1", None),
        (101, "meeting", "x1", None),
        (120, "email_open", "u1", None),    # an email open does not reach a persona
    ])


def test_mqa_at_is_exact_not_weekly():
    ds = mqa_story()
    got = mqa_dates(prep(ds))
    assert got.values.tolist() == [["a1", ts(100)]]
    r = mqa(prep(ds), as_of=ts(130))
    a = r.accounts.set_index("account_id")
    assert a.loc["a1", "mqa_at"] == ts(100) and bool(a.loc["a1", "is_mqa"])
    assert pd.isna(a.loc["a2", "mqa_at"]) and not a.loc["a2", "is_mqa"]
    # before day 100 nobody is an MQA
    early = mqa(prep(ds), as_of=ts(99.5))
    assert early.accounts["mqa_at"].isna().all()
    # fewer decision makers needed: d1 and d2 at day 50
    assert mqa_dates(prep(ds, min_decision_makers=2)).values.tolist() == [["a1", ts(50)]]


def test_mqa_by_score_fires_at_a_touch_time():
    ds = mqa_story()
    # x1's meeting at day 101: activity 8 + breadth 2 + coverage 10/3 + DMs 3 + high intent 5 = 21.33
    r = mqa(prep(ds, min_decision_makers=99, mqa_score=21), as_of=ts(101))
    a = r.accounts.set_index("account_id")
    assert a.loc["a2", "mqa_at"] == ts(101)
    assert a.loc["a2", "score"] == pytest.approx(8 + 2 + 10 / 3 + 3 + 5)


def test_mqa_follow_up_lists():
    ds = mqa_story()
    r = mqa(prep(ds), as_of=ts(130), n_top_contacts=2)
    top = r.top_contacts
    assert top["account_id"].unique().tolist() == ["a1"]
    # activity at day 130: d3 demo 8×2^(-35/30) = 3.56, d2 webinar 5×2^(-80/30) = 0.79, d1 and i1 0.5
    assert top["contact_id"].tolist() == ["d3", "d2"]
    assert top["rank"].tolist() == [1, 2]
    assert top["activity"].iloc[0] == pytest.approx(8 * 2 ** (-35 / 30))
    miss = r.missing_personas.set_index("account_id")
    assert miss.loc["a1", "missing_personas"] == "user"
    assert miss.loc["a1", "personas_reached"] == "decision_maker;influencer"
    cov = r.buying_group_coverage.set_index("account_id")
    # engaged in the window (40, 130]: d1, d2, d3, i1
    assert cov.loc["a1", "engaged_contacts"] == 4
    assert cov.loc["a1", "buying_group_size"] == 6        # contacts mapped to a1
    assert cov.loc["a1", "coverage"] == pytest.approx(4 / 6)
    r2 = mqa(prep(ds), as_of=ts(130), buying_group_size=10)
    assert r2.buying_group_coverage.set_index("account_id").loc["a1", "coverage"] == pytest.approx(0.4)
    frame = r.to_frame()
    assert {"is_mqa", "mqa_at", "coverage", "missing_personas", "stalled", "score"} <= set(frame.columns)
    summ = r.summary.set_index("metric")["value"]
    assert summ["ever_mqa"] == 1 and summ["accounts"] == 2


def test_stalled_accounts_with_stage():
    ds = dataset([(0, "demo_request", "d1", None), (1, "meeting", "d2", None), (2, "webinar_attended", "i1", None),
                  (100, "email_open", "u1", None), (10, "visit", "x1", None), (95, "visit", "x1", None)])
    r = mqa(prep(ds), as_of=ts(92))
    st = r.stalled.set_index("account_id")
    # a1 had a high score at day 2 and nothing in (2, 92]: its score fell to 0
    assert "a1" in st.index and st.loc["a1", "score_now"] == 0 and st.loc["a1", "change"] == -1.0
    assert "a2" not in st.index         # a2's one visit at day 10 stays in the window
    assert "stage" in st.columns
    try:
        import abmkit.progression  # noqa: F401
    except ImportError:
        assert st.loc["a1", "stage"] is None
    else:
        assert st.loc["a1", "stage"] in ("aware", "engaged", "qualified", "sales_ready", "unaware", None)


def test_empty_touches_give_zero_scores():
    ds = dataset([])
    s = engagement_scores(prep(ds), as_of=ts(0))
    assert s["score"].eq(0).all() and len(s) == 2
    assert len(mqa_dates(prep(ds))) == 0
    r = mqa(prep(ds), as_of=ts(0))
    assert not r.accounts["is_mqa"].any() and r.top_contacts.empty and r.stalled.empty


# --------------------------------------------------------------------------- sample
def test_engagement_on_small_sample(small_sample):
    data = prepare(small_sample.dataset)        # default mapping settings (map_contacts' defaults)
    weekly = engagement_scores(data, freq="W", accounts="touched")
    assert weekly["score"].ge(0).all() and weekly["breadth"].le(weekly["touches"]).all()
    dates = mqa_dates(data)
    r = mqa(data)
    assert set(dates["account_id"]) == set(r.accounts.loc[r.accounts["mqa_at"].notna(), "account_id"])
    assert len(dates) > 0
    # the rule holds at mqa_at and not a moment before
    at = engagement_scores(data, as_of=list(dates["mqa_at"].head(5)))
    at = at.merge(dates.head(5), left_on=["account_id", "as_of"], right_on=["account_id", "mqa_at"])
    assert (at["decision_makers_engaged"] >= 3).all() and len(at) == min(5, len(dates))


def test_plots_draw_result_frames():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from abmkit import plots
    from abmkit.engagement import engagement_leaderboard

    ds = mqa_story()
    weekly = engagement_scores(prep(ds), freq="W")
    fig = plots.engagement_trend_chart(weekly)
    assert len(fig.axes[0].lines) >= 2
    board = engagement_leaderboard(engagement_scores(prep(ds), as_of=ts(101)), ds.accounts)
    assert board["rank"].tolist() == [1, 2] and board["account_name"].tolist() == ["Name a1", "Name a2"]
    fig2 = plots.engagement_leaderboard_chart(board)
    assert len(fig2.axes[0].patches) >= 2
    fig3 = plots.mqa_timeline_chart(mqa_dates(prep(ds)))
    assert fig3.axes[0].get_title().startswith("Accounts that became MQA")
    with pytest.raises(ValueError, match="single as_of"):
        engagement_leaderboard(weekly)
    plt.close("all")
