"""Drill-down tables and pages (abmkit.drilldown): opportunity × campaign influence against a
brute-force scan, campaign pages for significant effects (positive and negative), and account
lists that carry names, stage, MQA date and masked contacts resolvable through the private lookup."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import abmkit
from abmkit import drilldown, engagement, masking, progression, uplift
from abmkit.period import resolve_period
from abmkit.schema import Dataset

PERIOD = resolve_period(quarter="2026Q3")


@pytest.fixture(scope="module")
def data(resolved_sample_dir):
    return abmkit.load_resolved(resolved_sample_dir)


@pytest.fixture(scope="module")
def history(data):
    return progression.stage_history(data, as_of=PERIOD.end)


@pytest.fixture(scope="module")
def influence(data, history):
    return uplift.campaign_influence(data, history=history)


@pytest.fixture(scope="module")
def mqa_result(data):
    return engagement.mqa(data, as_of=PERIOD.end)


# --------------------------------------------------------------------------- opportunity × campaign
def test_opportunity_campaign_influence_equals_a_brute_force_scan(data):
    got = drilldown.opportunity_campaign_influence(data, start=PERIOD.start, end=PERIOD.end)
    opp = data.opportunities
    created = pd.to_datetime(opp["created_at"], utc=True)
    in_period = opp[(created >= PERIOD.start) & (created < PERIOD.end)]
    assert len(in_period) > 5
    # every opportunity of the period is there, none from outside it
    assert set(got["opportunity_id"]) == set(in_period["opportunity_id"])
    tp = data.touches
    acc = tp["account_id"].astype(object)
    at = pd.to_datetime(tp["occurred_at"], utc=True)
    expected = {}
    for o in in_period.itertuples():    # brute force, one opportunity at a time
        c = pd.Timestamp(o.created_at)
        hit = tp[(acc == o.account_id).to_numpy() & (at <= c).to_numpy()
                 & (at >= c - pd.Timedelta(days=365)).to_numpy() & tp["campaign_id"].notna().to_numpy()]
        for cid, n in hit["campaign_id"].value_counts().items():
            expected[(o.opportunity_id, cid)] = n
        if not len(hit):
            expected[(o.opportunity_id, None)] = 0
    rows = {(r.opportunity_id, r.campaign_id if isinstance(r.campaign_id, str) else None): r.touches
            for r in got.itertuples()}
    assert rows == expected
    # names come from the accounts and campaigns tables
    names = data.accounts.set_index("account_id")["account_name"]
    assert (got["account_name"] == got["account_id"].map(names)).all()
    camp = data.campaigns.set_index("campaign_id")["campaign_name"]
    touched = got[got["touches"] > 0]
    assert (touched["campaign_name"] == touched["campaign_id"].map(camp)).all()


def test_lookback_window_is_inclusive_and_bounded():
    ds = Dataset.from_frames(
        accounts=pd.DataFrame({"account_id": ["a1", "a2"], "account_name": ["Acme", "Beta"]}),
        touchpoints=pd.DataFrame({
            "touchpoint_id": ["t1", "t2", "t3", "t4"],
            "occurred_at": ["2025-01-31", "2025-02-01", "2026-02-01", "2026-02-02"],
            "channel": ["email"] * 4, "touch_type": ["email_click"] * 4,
            "account_id": ["a1"] * 4, "campaign_id": ["k0", "k1", "k1", "k2"]}),
        campaigns=pd.DataFrame({"campaign_id": ["k0", "k1", "k2"], "campaign_name": ["Old", "Mail", "Late"]}),
        opportunities=pd.DataFrame({"opportunity_id": ["o1", "o2"], "account_id": ["a1", "a2"],
                                    "created_at": ["2026-02-01", "2026-02-15"], "amount": [10.0, 20.0]}))
    t = drilldown.opportunity_campaign_influence(abmkit.prepare(ds), lookback_days=365)
    # 2025-02-01 and the touch at the creation instant count; a day earlier or any later do not
    assert t[t.opportunity_id == "o1"][["campaign_id", "touches"]].values.tolist() == [["k1", 2]]
    # an opportunity no campaign touched keeps its row
    o2 = t[t.opportunity_id == "o2"]
    assert len(o2) == 1 and o2["touches"].iloc[0] == 0 and pd.isna(o2["campaign_id"].iloc[0])
    assert o2["account_name"].iloc[0] == "Beta"


# --------------------------------------------------------------------------- campaign pages
def test_campaign_reach_lists_every_account_the_campaign_touched(data, history):
    cid = data.campaigns["campaign_id"].iloc[0]
    reach = drilldown.campaign_reach(data, [cid], end=PERIOD.end, history=history)
    tp = data.touches
    at = pd.to_datetime(tp["occurred_at"], utc=True)
    mine = tp[(tp["campaign_id"] == cid).to_numpy() & (at < PERIOD.end).to_numpy() & tp["account_id"].notna().to_numpy()]
    counts = mine["account_id"].astype(object).value_counts()
    assert dict(zip(reach["account_id"], reach["touches"])) == counts.to_dict()
    assert reach["account_name"].notna().all()
    stage = progression.stage_as_of(history, PERIOD.end).set_index("account_id")["stage"].astype(object)
    assert (reach["stage"] == reach["account_id"].map(stage)).all()


def test_campaign_pages_for_significant_positive_and_negative_effects(data, history, influence, tmp_path):
    table = influence.table.copy()
    sig = drilldown.significant_campaigns(influence)
    assert len(sig) >= 1 and (sig["q_value"] < influence.params["alpha"]).all()
    # plant a significant negative effect on another campaign row (the pages must show both signs)
    others = table[(table["level"] == "campaign") & (table["n_treated"] > 0) & ~table["campaign_id"].isin(sig["campaign_id"])]
    i = others.index[0]
    table.loc[i, ["adj_diff", "adj_diff_low", "adj_diff_high", "q_value"]] = [-0.2, -0.3, -0.1, 0.001]
    fake = SimpleNamespace(table=table, params=influence.params)
    pages = drilldown.campaign_pages(data, fake, PERIOD, tmp_path, history=history)
    neg_id = table.loc[i, "campaign_id"]
    ids = list(dict.fromkeys(drilldown.significant_campaigns(fake)["campaign_id"]))
    assert neg_id in ids and len(ids) == sig["campaign_id"].nunique() + 1
    assert set(pages.pages["path"]) == {drilldown.CAMPAIGNS_PAGE} | {f"drilldown/{drilldown.campaign_page_name(c)}" for c in ids}
    names = data.campaigns.set_index("campaign_id")["campaign_name"]
    listing = (tmp_path / drilldown.CAMPAIGNS_PAGE).read_text("utf-8")
    assert "-20.0 pts" in listing and "1 negative" in listing
    for cid in ids:
        page = (tmp_path / "drilldown" / drilldown.campaign_page_name(cid)).read_text("utf-8")
        assert names[cid] in page and drilldown.campaign_page_name(cid) in listing
        row = table[(table["campaign_id"] == cid) & (table["level"] == "campaign")].sort_values("q_value").iloc[0]
        assert f"Of the {int(row['n_treated']):,} accounts it reached" in page
        assert "<script" not in page.lower()
    neg = (tmp_path / "drilldown" / drilldown.campaign_page_name(neg_id)).read_text("utf-8")
    assert "20.0 percentage points fewer" in neg
    # the CSV tables behind them
    assert (tmp_path / "tables" / "opportunity_campaign_influence.csv").exists()
    reach = pd.read_csv(tmp_path / "tables" / "campaign_reach.csv")
    assert set(reach["campaign_id"]) == set(ids)


def test_campaign_page_names_are_safe_file_names():
    for cid in ("../../etc/passwd", "a/b", "x y", "CMP 1", "<b>"):
        name = drilldown.campaign_page_name(cid)
        assert "/" not in name and ".." not in name and name.endswith(".html")
    assert drilldown.campaign_page_name("a/b") != drilldown.campaign_page_name("a_b")


def test_no_campaigns_is_not_applicable(tmp_path):
    ds = Dataset.from_frames(accounts=pd.DataFrame({"account_id": ["a1"], "account_name": ["Acme"]}))
    pages = drilldown.campaign_pages(abmkit.prepare(ds), SimpleNamespace(table=pd.DataFrame(), params={}), PERIOD, tmp_path)
    assert pages.not_applicable.startswith("needs") and not list(tmp_path.rglob("*.html"))
    acc = drilldown.account_pages(abmkit.prepare(ds), PERIOD, tmp_path)
    assert acc.not_applicable.startswith("needs") and not list(tmp_path.rglob("*.html"))


# --------------------------------------------------------------------------- account lists
def test_account_list_carries_names_stage_mqa_date_and_contacts(data, history, mqa_result, tmp_path):
    lst = drilldown.account_list(data, PERIOD, mqa_result=mqa_result, history=history)
    names = data.accounts.set_index("account_id")["account_name"]
    assert len(lst) > 0
    assert lst["account_name"].notna().all() and (lst["account_name"] == lst["account_id"].map(names)).all()
    # the populations: new MQAs of the period (the resolved dataset's MQA dates) and MQAs at period end
    dates = data.mqa_dates
    new_ids = set(dates.loc[(dates["mqa_at"] >= PERIOD.start) & (dates["mqa_at"] < PERIOD.end), "account_id"])
    at_end = set(engagement.mqa_accounts_at(data, PERIOD.end))
    assert set(lst.loc[lst["became_mqa_in_period"], "account_id"]) == new_ids
    assert set(lst.loc[lst["mqa_at_period_end"], "account_id"]) == at_end
    assert set(lst["account_id"]) == new_ids | at_end
    mqa_at = dates.set_index("account_id")["mqa_at"]
    assert (lst["mqa_at"] == lst["account_id"].map(mqa_at)).all()
    stage = progression.stage_as_of(history, PERIOD.end).set_index("account_id")["stage"].astype(object)
    assert (lst["stage"] == lst["account_id"].map(stage)).all()
    lost = lst["became_mqa_in_period"] & ~lst["mqa_at_period_end"]
    assert (lst.loc[lost, "status"] == "new MQA in the period, no longer MQA at period end").all()
    # contacts to call: masked, and the private lookup resolves them to the most engaged contacts
    top = mqa_result.top_contacts
    assert (lst["contacts_to_call"] != "").any()
    masking.write_lookup(data.contacts["contact_id"], tmp_path)
    for r in lst[lst["contacts_to_call"] != ""].head(10).itertuples():
        masked = r.contacts_to_call.split(";")
        assert all(m.startswith("c_") and len(m) == 2 + masking.MASK_HEX for m in masked)
        ids = masking.resolve_ids(masked, tmp_path)["contact_id"].tolist()
        want = top[top["account_id"] == r.account_id].sort_values("rank")["contact_id"].head(3).tolist()
        assert ids == want


def test_account_page_has_names_and_no_personal_data(data, history, mqa_result, tmp_path):
    pages = drilldown.account_pages(data, PERIOD, tmp_path, mqa_result=mqa_result, history=history)
    assert list(pages.pages["path"]) == [drilldown.ACCOUNTS_PAGE, drilldown.CAMPAIGNS_PAGE]
    text = (tmp_path / drilldown.ACCOUNTS_PAGE).read_text("utf-8")
    lst = pd.read_csv(tmp_path / "tables" / "account_list.csv")
    import html
    for name in lst["account_name"].head(20):
        assert html.escape(name) in text
    contacts = data.contacts
    raw_ids = set(contacts["contact_id"]) & set(mqa_result.top_contacts["contact_id"])
    emails = contacts["email"].dropna()
    full = (contacts["first_name"].fillna("") + " " + contacts["last_name"].fillna("")).str.strip()
    for f in (tmp_path / drilldown.ACCOUNTS_PAGE, tmp_path / "tables" / "account_list.csv",
              tmp_path / "tables" / "account_contacts_to_call.csv"):
        body = f.read_text("utf-8")
        assert not any(e in body for e in emails.head(2000))
        assert not any(n in body for n in full[full.str.len() > 6].head(2000))
        assert not any(f",{i}," in body or f"{i};" in body or f">{i}<" in body for i in raw_ids)
    calls = pd.read_csv(tmp_path / "tables" / "account_contacts_to_call.csv")
    assert calls["contact_id"].str.startswith("c_").all() and calls["account_name"].notna().all()


def test_account_page_escapes_names():
    ds = Dataset.from_frames(
        accounts=pd.DataFrame({"account_id": ["a1"], "account_name": ['<script>alert(1)</script> & "Co"']}),
        contacts=pd.DataFrame({"contact_id": ["c1", "c2", "c3"], "persona": ["decision_maker"] * 3,
                               "crm_account_id": ["a1"] * 3}),
        touchpoints=pd.DataFrame({"touchpoint_id": ["t1", "t2", "t3"],
                                  "occurred_at": ["2026-07-02", "2026-07-03", "2026-07-04"],
                                  "channel": ["email"] * 3, "touch_type": ["email_click"] * 3,
                                  "contact_id": ["c1", "c2", "c3"]}))
    import tempfile
    from pathlib import Path
    out = Path(tempfile.mkdtemp())
    data = abmkit.prepare(ds, as_of=PERIOD.end)
    pages = drilldown.account_pages(data, PERIOD, out)
    assert pages.tables["account_name"].tolist() == ['<script>alert(1)</script> & "Co"']
    assert pages.tables["became_mqa_in_period"].tolist() == [True]
    text = (out / drilldown.ACCOUNTS_PAGE).read_text("utf-8")
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;Co&quot;" in text
    assert "http" not in text.replace("http-equiv", "")     # nothing fetched from the network
    assert list(pages.pages["path"]) == [drilldown.ACCOUNTS_PAGE] and "campaigns.html" not in text   # no campaigns


def test_mqa_status_words():
    got = drilldown.mqa_status(pd.Series([True, True, False, False]), pd.Series([True, False, True, False]))
    assert got.tolist() == ["new MQA in the period, still MQA at period end",
                            "new MQA in the period, no longer MQA at period end",
                            "MQA at period end, qualified before the period",
                            "qualified before the period, not MQA at period end"]
    assert drilldown.mqa_status(True, pd.Series([], dtype=bool)).tolist() == []
    assert np.array_equal(drilldown.mqa_status(True, pd.Series([False], index=[7])).index, [7])
