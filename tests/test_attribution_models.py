"""Hand-computed expectations for every position model (DESIGN §3) on journeys of
length 1, 2, 3 and 7, ties, coinciding milestones, windows and the seed example."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from attribution_helpers import credits_by_touch, make_dataset, with_mqa_dates

from abmkit.attribution import attribute, journeys_for
from abmkit.prepared import prepare

CH = ["email", "paid_social", "webinar", "sales_outreach", "display", "event", "paid_search"]


def journey(n, *, amount=1000.0, opp_day=100, spacing=7, won=None):
    touches = [(f"t{i}", "a1", opp_day - spacing * (n - i), CH[i % len(CH)]) for i in range(n)]
    opp = ("o1", "a1", opp_day, amount, None if won is None else opp_day + 30, won)
    return make_dataset(touches, [opp])


EXPECTED = {
    1: {"first_touch": [1], "last_touch": [1], "linear": [1], "u_shaped": [1], "j_shaped": [1], "inverse_j": [1],
        "time_decay": [1], "w_shaped": [1]},
    2: {"first_touch": [1, 0], "last_touch": [0, 1], "linear": [.5, .5], "u_shaped": [.5, .5],
        "j_shaped": [.5, .5], "inverse_j": [.5, .5], "time_decay": [1 / 3, 2 / 3], "w_shaped": [.5, .5]},
    3: {"first_touch": [1, 0, 0], "last_touch": [0, 0, 1], "linear": [1 / 3] * 3, "u_shaped": [.4, .2, .4],
        "j_shaped": [.2, .2, .6], "inverse_j": [.6, .2, .2], "time_decay": [1 / 7, 2 / 7, 4 / 7],
        "w_shaped": [.4, .2, .4]},
    7: {"first_touch": [1] + [0] * 6, "last_touch": [0] * 6 + [1], "linear": [1 / 7] * 7,
        "u_shaped": [.4] + [.04] * 5 + [.4], "j_shaped": [.2] + [.04] * 5 + [.6],
        "inverse_j": [.6] + [.04] * 5 + [.2],
        "time_decay": list(np.exp2(np.arange(7)) / (2 ** 7 - 1)), "w_shaped": [.4] + [.04] * 5 + [.4]},
}


@pytest.mark.parametrize("n", [1, 2, 3, 7])
@pytest.mark.parametrize("model", ["first_touch", "last_touch", "linear", "u_shaped", "j_shaped", "inverse_j",
                                   "time_decay", "w_shaped"])
def test_position_models_hand_computed(n, model):
    ds = journey(n)  # touches 7 days apart, last one 7 days before the milestone; no MQA → W falls back to U
    out = attribute(with_mqa_dates(ds, pd.DataFrame(columns=["account_id", "mqa_at"])), model, half_life_days=7)
    got = out.sort_values("touchpoint_id")["credit"].to_numpy()
    np.testing.assert_allclose(got, EXPECTED[n][model], rtol=0, atol=1e-12)
    np.testing.assert_allclose(out["pipeline_credit"].sum(), 1000.0)
    assert (out["model"] == model).all()
    assert list(out.columns) == ["conversion_id", "account_id", "touchpoint_id", "channel", "campaign_id", "model",
                                 "credit", "pipeline_credit", "revenue_credit"]


def test_window_excludes_after_milestone_and_outside_lookback_boundaries_included():
    ds = make_dataset([("early", "a1", -400, "email"), ("edge", "a1", -265, "display"),
                       ("mid", "a1", 50, "webinar"), ("at", "a1", 100, "event"), ("after", "a1", 100.5, "email")],
                      [("o1", "a1", 100, 10.0)])
    out = attribute(ds, "linear", lookback_days=365)
    # edge is exactly 365 days before the milestone: included; "at" is at the milestone: included
    assert credits_by_touch(out) == {"edge": pytest.approx(1 / 3), "mid": pytest.approx(1 / 3),
                                     "at": pytest.approx(1 / 3)}
    out = attribute(ds, "first_touch", lookback_days=60)
    assert credits_by_touch(out) == {"mid": 1.0, "at": 0.0}


def test_ties_in_time_ordered_by_touchpoint_id_whatever_the_row_order():
    touches = [("t9", "a1", 10, "email"), ("t1", "a1", 10, "webinar"), ("t5", "a1", 20, "event"),
               ("t3", "a1", 20, "display")]
    for rows in (touches, touches[::-1]):
        out = attribute(make_dataset(rows, [("o1", "a1", 30, 1.0)]), "u_shaped")
        # order: t1, t9 (tie at day 10), t3, t5 (tie at day 20)
        assert credits_by_touch(out) == {"t1": 0.4, "t9": 0.1, "t3": 0.1, "t5": 0.4}


def test_two_conversions_of_one_account_each_get_their_own_window():
    ds = make_dataset([("t1", "a1", 0, "email"), ("t2", "a1", 10, "webinar"), ("t3", "a1", 50, "event")],
                      [("o1", "a1", 20, 100.0), ("o2", "a1", 60, 300.0)])
    out = attribute(ds, "last_touch")
    got = {(r.conversion_id, r.touchpoint_id): r.credit for r in out.itertuples()}
    assert got == {("o1", "t1"): 0.0, ("o1", "t2"): 1.0, ("o2", "t1"): 0.0, ("o2", "t2"): 0.0, ("o2", "t3"): 1.0}
    assert out.groupby("conversion_id")["pipeline_credit"].sum().to_dict() == {"o1": 100.0, "o2": 300.0}


def mqa(day_):
    from attribution_helpers import day
    return pd.DataFrame({"account_id": ["a1"], "mqa_at": [day(day_)]})


def five_touch(opp_day=45, closed_day=None, won=None):
    touches = [(f"t{i}", "a1", 10 * i, CH[i]) for i in range(5)]  # days 0,10,20,30,40
    return make_dataset(touches, [("o1", "a1", opp_day, 100.0, closed_day, won)])


def test_w_shaped_with_three_distinct_milestones():
    out = attribute(with_mqa_dates(five_touch(), mqa(25)), "w_shaped")  # MQA touch = t2 (day 20)
    assert credits_by_touch(out) == pytest.approx({"t0": .3, "t1": .05, "t2": .3, "t3": .05, "t4": .3})


def test_w_shaped_coinciding_milestones_fall_back_to_u_shaped():
    out = attribute(with_mqa_dates(five_touch(), mqa(5)), "w_shaped")  # MQA touch = first touch
    assert credits_by_touch(out) == pytest.approx({"t0": .4, "t1": .2 / 3, "t2": .2 / 3, "t3": .2 / 3, "t4": .4})
    out = attribute(with_mqa_dates(five_touch(), mqa(-50)), "w_shaped")  # MQA before the journey: no MQA touch
    assert credits_by_touch(out)["t0"] == pytest.approx(.4)


def test_w_shaped_and_full_path_on_closed_won():
    ds = five_touch(opp_day=25, closed_day=45, won=True)  # opp created after t2, closed after t4
    data = with_mqa_dates(ds, mqa(15))
    out = attribute(data, "w_shaped", milestone="closed_won")  # MQA touch t1
    assert credits_by_touch(out) == pytest.approx({"t0": .3, "t1": .3, "t2": .3, "t3": .05, "t4": .05})
    out = attribute(data, "full_path", milestone="closed_won")
    assert credits_by_touch(out) == pytest.approx({"t0": .225, "t1": .225, "t2": .225, "t3": .1, "t4": .225})
    assert out["revenue_credit"].sum() == pytest.approx(100.0)
    # MQA touch = opportunity-creation touch: shares merge (45%), rest 10% over t1, t3
    out = attribute(with_mqa_dates(ds, mqa(22)), "full_path", milestone="closed_won")
    assert credits_by_touch(out) == pytest.approx({"t0": .225, "t1": .05, "t2": .45, "t3": .05, "t4": .225})


def test_full_path_single_touch_and_wrong_milestone():
    ds = make_dataset([("t0", "a1", 0, "email")], [("o1", "a1", 5, 10.0, 9, True)])
    data = with_mqa_dates(ds, mqa(1))
    out = attribute(data, "full_path", milestone="closed_won")
    assert credits_by_touch(out) == {"t0": 1.0}
    with pytest.raises(ValueError, match="closed_won"):
        attribute(data, "full_path")


def test_vendor_presets_hubspot_and_marketo():
    data = with_mqa_dates(five_touch(), mqa(35))
    out = attribute(data, "hubspot_u_shaped")  # lead creation = t3
    assert credits_by_touch(out) == pytest.approx({"t0": .4, "t1": .1, "t2": .1, "t3": .4, "t4": 0.0})
    out = attribute(data, "marketo_u_shaped")
    assert credits_by_touch(out) == pytest.approx({"t0": .5, "t1": 0, "t2": 0, "t3": .5, "t4": 0})
    # no MQA: the last touch stands in for lead creation (= DESIGN U-shaped)
    none = pd.DataFrame(columns=["account_id", "mqa_at"])
    out = attribute(with_mqa_dates(five_touch(), none), "hubspot_u_shaped")
    assert credits_by_touch(out) == pytest.approx({"t0": .4, "t1": .2 / 3, "t2": .2 / 3, "t3": .2 / 3, "t4": .4})


def test_custom_seed_worked_example_channel_weights():
    ds = make_dataset([("t1", "a1", 1, "email"), ("t2", "a1", 2, "paid_social"), ("t3", "a1", 3, "webinar"),
                       ("t4", "a1", 4, "sales_outreach")], [("o1", "a1", 5, 200.0)])
    weights = {"email": 25, "paid_social": 20, "webinar": 30, "sales_outreach": 25}
    out = attribute(ds, "custom", channel_weights=weights)
    assert credits_by_touch(out) == {"t1": 0.25, "t2": 0.2, "t3": 0.3, "t4": 0.25}
    assert out["pipeline_credit"].tolist() == pytest.approx([50.0, 40.0, 60.0, 50.0])


def test_custom_position_milestone_and_touch_type_weights():
    ds = make_dataset([("t1", "a1", 1, "email", "email_open"), ("t2", "a1", 2, "email", "click"),
                       ("t3", "a1", 3, "event", "meeting")], [("o1", "a1", 5, 1.0)])
    out = attribute(ds, "custom", position_weights=(0.5, 0.0, 0.5))
    assert credits_by_touch(out) == {"t1": 0.5, "t2": 0.0, "t3": 0.5}
    out = attribute(ds, "custom", position_weights=(0.5, 0.0, 0.5), touch_type_weights={"meeting": 3})
    assert credits_by_touch(out) == {"t1": 0.25, "t2": 0.0, "t3": 0.75}
    out = attribute(ds, "custom", milestone_weights={"first": 0.6, "rest": 0.4})
    assert credits_by_touch(out) == pytest.approx({"t1": 0.6, "t2": 0.2, "t3": 0.2})
    with pytest.raises(ValueError, match="unknown channel"):
        attribute(ds, "custom", channel_weights={"carrier_pigeon": 2})
    with pytest.raises(ValueError, match="unknown role"):
        attribute(ds, "custom", milestone_weights={"demo": 1})


def test_revenue_credit_only_for_won_and_no_touch_reported():
    ds = make_dataset([("t1", "a1", 1, "email"), ("t2", "a2", 1, "email")],
                      [("o1", "a1", 5, 100.0, 20, True), ("o2", "a2", 5, 50.0, 20, False),
                       ("o3", "a3", 5, 70.0)])
    data = prepare(ds)
    out = attribute(data, "linear")
    assert out.set_index("conversion_id")["revenue_credit"].to_dict() == {"o1": 100.0, "o2": 0.0}
    cj = journeys_for(data, "linear")                       # the journeys attribute() used
    nt = cj.no_touch
    assert nt["conversion_id"].tolist() == ["o3"] and nt["amount"].tolist() == [70.0]
    assert cj.info["no_touch"] == 1
    won = attribute(ds, "linear", milestone="closed_won")
    assert won["conversion_id"].tolist() == ["o1"] and won["revenue_credit"].sum() == 100.0


def test_contact_touches_resolved_and_unattributable_counted():
    contacts = pd.DataFrame({"contact_id": ["c1", "c2"], "email": ["x@acme.com", "y@nowhere.org"]})
    ds = make_dataset([("t1", None, 1, "email", "click", "c1"), ("t2", "a1", 2, "display", "impression"),
                       ("t3", None, 3, "webinar", "click", "c2")], [("o1", "a1", 5, 1.0)], contacts=contacts)
    mapping = pd.DataFrame({"contact_id": ["c1", "c2"], "account_id": ["a1", None]})
    data = prepare(ds, mapping=mapping)
    out = attribute(data, "linear")
    assert credits_by_touch(out) == {"t1": 0.5, "t2": 0.5}
    assert journeys_for(data, "linear").info["unattributable_touches"] == 1


def test_report_period_restricts_conversions():
    ds = make_dataset([("t1", "a1", 1, "email"), ("t2", "a1", 200, "webinar")],
                      [("o1", "a1", 5, 1.0), ("o2", "a1", 210, 1.0)])
    out = attribute(ds, "linear", start="2026-07-01", end="2026-10-01")
    assert set(out["conversion_id"]) == {"o2"}


def test_shapley_and_markov_touch_level():
    ds = make_dataset([("t1", "a1", 1, "email"), ("t2", "a1", 2, "email"), ("t3", "a1", 3, "webinar"),
                       ("t4", "a2", 1, "email"), ("t5", "a3", 1, "webinar"), ("t6", "a3", 2, "email")],
                      [("o1", "a1", 5, 1.0), ("o2", "a2", 5, 1.0)])
    out = attribute(ds, "shapley_split")
    assert credits_by_touch(out) == {"t1": 0.25, "t2": 0.25, "t3": 0.5, "t4": 1.0}
    # data-driven Shapley: rates r({email}) = 1, r({email, webinar}) = 1/2 (a1 converts, a3 does not):
    # o1's split phi_email = 1 + 1/4, phi_webinar = 1/4 -> 5/6 : 1/6, email's half per touch
    out = attribute(ds, "shapley")
    assert credits_by_touch(out) == pytest.approx({"t1": 5 / 12, "t2": 5 / 12, "t3": 1 / 6, "t4": 1.0})
    with pytest.raises(ValueError, match="markov_per_conversion"):
        attribute(ds, "markov")  # channel-level only: the error names the touch-level model
    out = attribute(ds, "markov_per_conversion")
    # paths: email>email>webinar conv, email conv, webinar>email null. By hand: P(conv) = 2/3,
    # without email 1/6 (RE 3/4), without webinar 2/9 (RE 2/3); o1 splits 3/4 : 2/3, email's half per touch
    assert credits_by_touch(out) == pytest.approx({"t1": 9 / 34, "t2": 9 / 34, "t3": 8 / 17, "t4": 1.0})


def test_unknown_model_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown model"):
        attribute(journey(2), "v_shaped")


def test_categorical_account_ids_give_the_same_credits():
    from abmkit.schema import Dataset
    ds = make_dataset([("t1", "a1", 1, "email"), ("t2", "a2", 2, "webinar"), ("t3", "a1", 3, "event"),
                       ("t4", "a2", 4, "display")], [("o1", "a1", 5, 10.0), ("o2", "a2", 5, 20.0)])
    tp = ds.touchpoints.assign(account_id=ds.touchpoints["account_id"].astype("category"))
    cat = Dataset(accounts=ds.accounts, contacts=ds.contacts, touchpoints=tp, campaigns=ds.campaigns,
                  opportunities=ds.opportunities, revenue=ds.revenue)
    for model in ("linear", "u_shaped", "markov_per_conversion", "shapley"):
        a = attribute(ds, model)
        b = attribute(cat, model)
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))


@pytest.mark.parametrize("kwargs", [{"mqa_dates": None}, {"contact_accounts": None}, {"journeys": None},
                                    {"half_life": 14}])
def test_unknown_or_removed_keywords_are_refused(kwargs):
    """An argument of the old API (or a typo) must be an error, not silently ignored:
    W-shaped with ignored MQA dates would quietly return U-shaped credits."""
    from abmkit.attribution import compare_models, sensitivity

    ds = five_touch()
    for call in (lambda: attribute(ds, "w_shaped", **kwargs),
                 lambda: compare_models(ds, ["linear"], n_boot=0, **kwargs),
                 lambda: sensitivity(ds, "linear", "lookback_days", [30], **kwargs)):
        with pytest.raises(TypeError, match="unknown attribution parameter"):
            call()
