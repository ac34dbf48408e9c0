"""The resolved dataset (abmkit/prepared.py): one mapping, one MQA rule and one
``data_end`` shared by every analysis; save / load round trip; analyses never map
contacts again."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from abmkit.prepared import (MappingSettings, MQARule, ResolvedDataset, load_resolved, prepare,
                             resolve)
from abmkit.schema import Dataset, load, save


def ts(s):
    return pd.Timestamp(s, tz="UTC")


def tiny(persona=("decision_maker", "user"), opps=True) -> Dataset:
    """Two accounts; c1 (gmail, company "Northwind Trader") only matches a1 by a fuzzy
    name (score 96.97 against "Northwind Traders"); c2 matches a2 by email domain."""
    accounts = pd.DataFrame({"account_id": ["a1", "a2"], "account_name": ["Northwind Traders", "Globex Corp"],
                             "domain": ["northwind.com", "globex.com"]})
    contacts = pd.DataFrame({"contact_id": ["c1", "c2"], "email": ["x@gmail.com", "y@globex.com"],
                             "company_name": ["Northwind Trader", None], "persona": list(persona)})
    touches = pd.DataFrame({
        "touchpoint_id": ["t1", "t2", "t3", "t4"],
        "occurred_at": ["2026-01-01", "2026-01-20", "2026-03-01", "2026-01-10"],
        "channel": ["webinar", "email", "display", "email"],
        "touch_type": ["webinar_attended", "email_click", "impression", "email_click"],
        "contact_id": ["c1", "c1", None, "c2"], "account_id": [None, None, "a2", None]})
    frames = dict(accounts=accounts, contacts=contacts, touchpoints=touches)
    if opps:
        # o1 created 01-05, won 03-15 (a won close is an observation); o2 lost on 04-01 (is not)
        frames["opportunities"] = pd.DataFrame({
            "opportunity_id": ["o1", "o2"], "account_id": ["a2", "a2"],
            "created_at": ["2026-01-05", "2026-02-10"], "closed_at": ["2026-03-15", "2026-04-01"],
            "is_closed": [True, True], "is_won": [True, False], "amount": [10.0, 20.0]})
    return Dataset.from_frames(**frames)


# --------------------------------------------------------------------------- mapping
def test_mapping_settings_decide_the_touches_accounts_and_hence_the_scores():
    from abmkit.engagement import engagement_scores

    ds = tiny()
    loose = prepare(ds, mapping=MappingSettings(fuzzy_threshold=90))
    strict = prepare(ds, mapping=MappingSettings(fuzzy_threshold=97))
    assert loose.mapping.fuzzy_threshold == 90 and strict.mapping.fuzzy_threshold == 97
    ca = {d: x.contact_accounts.set_index("contact_id")["account_id"] for d, x in (("loose", loose),
                                                                                  ("strict", strict))}
    assert ca["loose"]["c1"] == "a1" and pd.isna(ca["strict"]["c1"])      # 96.97: between 90 and 97
    assert ca["loose"]["c2"] == ca["strict"]["c2"] == "a2"                  # email domain either way
    t_loose = loose.touches.set_index("touchpoint_id")
    t_strict = strict.touches.set_index("touchpoint_id")
    assert t_loose.loc[["t1", "t2"], "account_id"].tolist() == ["a1", "a1"]
    assert t_loose.loc[["t1", "t2"], "account_source"].tolist() == ["contact", "contact"]
    assert t_strict.loc[["t1", "t2"], "account_id"].isna().all()
    assert t_strict.loc[["t1", "t2"], "account_source"].tolist() == ["unattributable"] * 2
    # t3 (own account) and t4 (domain) resolve the same under both settings
    assert t_loose.loc[["t3", "t4"], "account_id"].tolist() == t_strict.loc[["t3", "t4"], "account_id"].tolist()
    # the analyses use the dataset's mapping: c1's webinar and click count for a1 only when mapped
    s_loose = engagement_scores(loose, as_of="2026-02-01").set_index("account_id")
    s_strict = engagement_scores(strict, as_of="2026-02-01").set_index("account_id")
    assert s_loose.loc["a1", "touches"] == 2 and s_loose.loc["a1", "score"] > 0
    assert s_strict.loc["a1", "touches"] == 0 and s_strict.loc["a1", "score"] == 0
    assert s_loose.loc["a2", "score"] == pytest.approx(s_strict.loc["a2", "score"])


def test_prepare_with_a_mapping_table_uses_it_as_given(monkeypatch):
    import abmkit.mapping

    def boom(*a, **k):
        raise AssertionError("map_contacts called although a mapping table was given")
    monkeypatch.setattr(abmkit.mapping, "map_contacts", boom)
    ds = tiny()
    table = pd.DataFrame({"contact_id": ["c1", "c2"], "account_id": ["a2", None]})
    data = prepare(ds, mapping=table)
    assert data.mapping is None and data.settings["mapping"] == "supplied"
    pd.testing.assert_frame_equal(data.contact_accounts, table)
    t = data.touches.set_index("touchpoint_id")
    assert t["account_id"].astype(object).where(t["account_id"].notna(), None).to_dict() == {
        "t1": "a2", "t2": "a2", "t3": "a2", "t4": None}
    assert t["account_source"].to_dict() == {"t1": "contact", "t2": "contact", "t3": "touch",
                                             "t4": "unattributable"}
    assert isinstance(data.touches["account_id"].dtype, pd.CategoricalDtype)
    with pytest.raises(ValueError, match="account_id"):
        prepare(ds, mapping=table.drop(columns="account_id"))
    with pytest.raises(TypeError, match="MappingSettings"):
        prepare(ds, mapping={"fuzzy_threshold": 80})
    with pytest.raises(TypeError, match="MQARule"):
        prepare(ds, mapping=table, mqa=3)
    with pytest.raises(TypeError, match="data.tables"):
        prepare(data)
    assert resolve(data) is data
    with pytest.raises(TypeError, match="ResolvedDataset"):
        resolve(ds.touchpoints)


# --------------------------------------------------------------------------- data_end
def test_data_end_is_the_last_observation_capped_at_as_of():
    ds = tiny()
    crm = pd.DataFrame({"contact_id": ["c1", "c2"], "account_id": ["a1", "a2"]})
    # observations: touches 01-01, 01-10, 01-20, 03-01; o1 created 01-05 and won 03-15;
    # o2 created 02-10 (its lost close on 04-01 is not an observation)
    assert prepare(ds, mapping=crm).data_end == ts("2026-03-15")
    d = prepare(ds, mapping=crm, as_of="2026-02-01")
    assert d.as_of == ts("2026-02-01") and d.data_end == ts("2026-01-20")       # last observation <= as_of
    assert prepare(ds, mapping=crm, as_of="2026-02-10").data_end == ts("2026-02-10")  # o2's creation
    # an as_of after the data does not count unobserved days
    assert prepare(ds, mapping=crm, as_of="2027-01-01").data_end == ts("2026-03-15")
    # nothing observed by as_of: the censoring date is as_of itself
    assert prepare(ds, mapping=crm, as_of="2025-06-01").data_end == ts("2025-06-01")
    # forced (e.g. a partition of bigger data uses the global end)
    assert prepare(ds, mapping=crm, data_end="2026-12-31").data_end == ts("2026-12-31")
    # the stage history is censored at the dataset's data_end
    from abmkit.progression import stage_history
    assert stage_history(d).data_end == ts("2026-01-20")
    assert stage_history(prepare(ds, mapping=crm)).data_end == ts("2026-03-15")


# --------------------------------------------------------------------------- notes
def test_without_decision_makers_the_score_rule_is_used_and_said():
    from abmkit.engagement import engagement_scores, mqa, mqa_accounts_at

    crm = pd.DataFrame({"contact_id": ["c1", "c2"], "account_id": ["a1", "a2"]})
    data = prepare(tiny(persona=("user", "influencer")), mapping=crm)
    assert data.mqa_rule == MQARule().without_personas()
    assert data.mqa_rule.mqa_score == 30 and not data.mqa_rule.uses_personas
    notes = [n for n in data.notes if "decision_maker" in n]
    assert len(notes) == 1 and "engagement-score rule" in notes[0] and data.mqa_rule.describe() in notes[0]
    summ = data.summary
    assert notes[0] in summ.loc[summ["item"] == "note", "value"].tolist()
    assert notes[0] in mqa(data, with_stage=False).notes                # the MQA page says so too
    assert "no persona data" in mqa(data, with_stage=False).params["rule"]
    # the fallback fires: an account is MQA exactly when its score reaches the threshold
    low = prepare(tiny(persona=("user", "influencer")), mapping=crm, mqa=MQARule(fallback_score=1e-9))
    when = pd.Timestamp("2026-03-01", tz="UTC")
    scores = engagement_scores(low, as_of=when)
    assert set(mqa_accounts_at(low, when)) == set(scores.loc[scores["score"] >= 1e-9, "account_id"])
    assert len(low.mqa_dates) >= 1
    # an explicit score threshold is kept; a decision maker keeps the decision-maker rule
    assert prepare(tiny(persona=("user", "influencer")), mapping=crm,
                   mqa=MQARule(mqa_score=10)).mqa_rule.mqa_score == 10
    assert prepare(tiny(), mapping=crm).mqa_rule == MQARule()
    assert not any("decision_maker" in n for n in prepare(tiny(), mapping=crm).notes)


# --------------------------------------------------------------------------- persistence
@pytest.fixture()
def sample_copy(small_sample_dir, tmp_path) -> Path:
    """A writable copy of the small sample's canonical tables."""
    dst = tmp_path / "canonical"
    shutil.copytree(Path(small_sample_dir) / "canonical", dst)
    return dst


def test_save_and_load_resolved_round_trip(sample_copy, monkeypatch):
    data = prepare(load(sample_copy), mapping=MappingSettings(fuzzy_threshold=85),
                   mqa=MQARule(min_decision_makers=2, window_days=60), as_of="2026-09-30")
    folder = data.save(sample_copy)
    assert folder == sample_copy / "resolved"
    assert {p.name for p in folder.iterdir()} >= {"contact_accounts.parquet", "mqa_dates.parquet", "resolved.json"}
    assert len(data.mqa_dates) > 0
    import abmkit.engagement
    import abmkit.mapping

    def boom(*a, **k):
        raise AssertionError("recomputed on load")
    monkeypatch.setattr(abmkit.mapping, "map_contacts", boom)          # nothing is mapped again
    monkeypatch.setattr(abmkit.engagement, "first_mqa_times", boom)    # the MQA dates are read, not rebuilt
    back = load_resolved(sample_copy)
    assert isinstance(back, ResolvedDataset)
    assert back.mapping == data.mapping == MappingSettings(fuzzy_threshold=85)
    assert back.mqa_rule == data.mqa_rule == MQARule(min_decision_makers=2, window_days=60)
    assert back.as_of == data.as_of and back.data_end == data.data_end
    assert back.notes == data.notes
    pd.testing.assert_frame_equal(back.mqa_dates.reset_index(drop=True), data.mqa_dates.reset_index(drop=True))
    pd.testing.assert_frame_equal(back.contact_accounts[["contact_id", "account_id", "method"]],
                                  data.contact_accounts[["contact_id", "account_id", "method"]])
    pd.testing.assert_frame_equal(back.touches, data.touches)
    assert back.settings == data.settings


def test_load_resolved_errors(sample_copy, tmp_path):
    with pytest.raises(FileNotFoundError, match="resolved.json"):
        load_resolved(sample_copy)                                         # never saved
    ds = load(sample_copy)
    prepare(ds).save(sample_copy)
    assert len(load_resolved(sample_copy).touches) == len(ds.touchpoints)
    # the tables changed since: one touch fewer
    save(Dataset(**{**ds.tables(), "touchpoints": ds.touchpoints.iloc[1:]}), sample_copy)
    with pytest.raises(ValueError, match="built from other tables"):
        load_resolved(sample_copy)
    # a resolved folder of another format version
    meta_path = sample_copy / "resolved" / "resolved.json"
    meta = json.loads(meta_path.read_text("utf-8"))
    meta_path.write_text(json.dumps({**meta, "format": 999}), "utf-8")
    with pytest.raises(ValueError, match="format"):
        load_resolved(sample_copy)


# --------------------------------------------------------------------------- one mapping
def test_no_analysis_maps_contacts_again(small_sample, monkeypatch):
    """Given a ResolvedDataset, no analysis calls abmkit.mapping.map_contacts (nor
    prepares the tables again): they all use the dataset's one mapping."""
    import abmkit.mapping
    import abmkit.prepared
    from abmkit import kpis
    from abmkit.attribution import attribute, compare_models
    from abmkit.engagement import mqa
    from abmkit.progression import stage_history
    from abmkit.uplift import campaign_influence

    data = prepare(small_sample.dataset)
    calls = []

    def boom(*a, **k):
        calls.append(a)
        raise AssertionError("an analysis mapped the contacts again")
    monkeypatch.setattr(abmkit.mapping, "map_contacts", boom)
    monkeypatch.setattr(abmkit.prepared, "prepare", boom)
    credits = attribute(data, ["linear", "w_shaped"])
    assert len(credits)
    res = compare_models(data, ["first_touch", "linear", "markov"], n_boot=10, seed=0, progress=False)
    assert res.conservation["ok"].all()
    m = mqa(data)
    assert m.accounts["is_mqa"].any()
    h = stage_history(data)
    assert len(h.table)
    infl = campaign_influence(data, history=h, progress=False, cox=False)
    assert len(infl.table)
    t = kpis.kpi_table(data, segments=("tier",))
    assert len(t.overall)
    assert calls == []
