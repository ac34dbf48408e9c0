"""Notebook 02's engagement and MQA pages on partitions (issue 22): the same calls on
the in-memory resolved dataset and on the partitioned handle give the same frames
(1e-9), and the partitioned calls never load the whole data
(``PartitionedDataset.in_memory``). A 2-worker LocalCluster (threads, to stay quick)
on the small sample (``small_sample_dir`` / ``small_sample``).
"""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

import abmkit
from abmkit import engagement, scale, training
from abmkit.mapping import map_contacts
from abmkit.period import resolve_period
from abmkit.prepared import prepare
from abmkit.schema import Dataset

RTOL = 1e-9
PERIOD = resolve_period(quarter="2026Q3")
#: the MQA result's frames notebook 02 reads (and the ones its findings save)
FRAMES = ("accounts", "top_contacts", "missing_personas", "stalled", "buying_group_coverage", "summary")


@pytest.fixture(scope="module")
def opened(small_sample_dir, tmp_path_factory, cluster):
    """notebook 02's resolved dataset of a copy of the sample (as_of = 2026Q3's end),
    opened for both engines (the handle runs on the module's cluster)."""
    folder = tmp_path_factory.mktemp("opened_eng") / "canonical"
    shutil.copytree(small_sample_dir / "canonical", folder)
    abmkit.prepare(abmkit.load(folder), as_of=PERIOD.end).save(folder)
    return abmkit.open_dataset(folder, engine="pandas"), abmkit.open_dataset(folder, engine="dask", npartitions=3)


@pytest.fixture
def no_in_memory(monkeypatch):
    """Loading the whole data into the driver fails the test."""
    def refuse(self):
        raise AssertionError("PartitionedDataset.in_memory() was called")
    monkeypatch.setattr(scale.PartitionedDataset, "in_memory", refuse)


def _same(got: pd.DataFrame, ref: pd.DataFrame, what: str):
    """Same columns, dtypes, row order and values (floats to 1e-9)."""
    assert len(ref) > 0, f"{what}: nothing to compare"
    pd.testing.assert_frame_equal(got, ref, check_exact=False, rtol=RTOL, atol=1e-12, obj=what)


def _same_mqa(got, ref, start=PERIOD.start, end=PERIOD.end):
    for name in FRAMES:
        _same(getattr(got, name), getattr(ref, name), name)
    _same(got.new_mqas(start, end), ref.new_mqas(start, end), "new_mqas")
    _same(got.to_frame(), ref.to_frame(), "to_frame")
    assert got.as_of == ref.as_of and got.params == ref.params and got.notes == ref.notes
    assert got.not_applicable == ref.not_applicable


# --------------------------------------------------------------------------- notebook 02
@pytest.mark.parametrize("kw", [{"as_of": PERIOD.end},
                                {"as_of": PERIOD.end, "freq": "W", "start": PERIOD.start},
                                {},  # defaults: the whole data's last touch
                                {"freq": "MS", "accounts": "touched", "window_days": 30}],
                         ids=["as_of", "weekly", "defaults", "monthly-touched"])
def test_engagement_scores_equal_in_memory(opened, no_in_memory, kw):
    mem, parts = opened
    ref = engagement.engagement_scores(mem, **kw)
    got = engagement.engagement_scores(parts, **kw)
    _same(got, ref, f"scores {kw}")
    assert ref["score"].gt(0).sum() > 20 and ref["cadence_days"].notna().any()
    if kw.get("freq") == "W":
        assert ref["as_of"].nunique() == 13  # the Sundays of 2026Q3
    board_ref = engagement.engagement_leaderboard(ref[ref["as_of"] == ref["as_of"].max()], mem.accounts, top=20)
    board_got = engagement.engagement_leaderboard(got[got["as_of"] == got["as_of"].max()], parts.accounts, top=20)
    _same(board_got, board_ref, "leaderboard")


def test_mqa_result_equal_in_memory(opened, no_in_memory):
    """Every attribute of the MQA result notebook 02 reads, its summary and new MQAs
    of this and the previous period."""
    mem, parts = opened
    ref = engagement.mqa(mem, as_of=PERIOD.end)
    got = engagement.mqa(parts, as_of=PERIOD.end)
    _same_mqa(got, ref)
    _same_mqa(got, ref, PERIOD.previous.start, PERIOD.previous.end)
    assert ref.accounts["is_mqa"].any() and len(ref.stalled) > 5 and ref.stalled["stage"].notna().all()
    # what the notebook prints from the handle itself
    targets = parts.target_account_ids()
    assert targets.equals(mem.target_account_ids()) and parts.target_population == mem.target_population
    # the default as_of is the resolved dataset's; other knobs pass through
    kw = {"n_top_contacts": 2, "buying_group_size": 6, "stall_drop": 0.3, "with_stage": False}
    _same_mqa(engagement.mqa(parts, **kw), engagement.mqa(mem, **kw))


def test_training_checks_of_notebook_02_equal_in_memory(opened, no_in_memory):
    mem, parts = opened
    for ex in ("02.match_rate", "02.new_mqas", "02.new_mqas_two_dm"):
        want = training.expected(ex, data=mem, period=PERIOD)
        got = training.expected(ex, data=parts, period=PERIOD)
        assert got == want, ex
        assert training.check(ex, want, data=parts, period=PERIOD).correct is True
        if ex != "02.match_rate":
            assert training.check(ex, want + 1, data=parts, period=PERIOD).correct is False
    assert training.expected("02.new_mqas_two_dm", data=mem, period=PERIOD) != \
        training.expected("02.new_mqas", data=mem, period=PERIOD)  # the exercise's point: the rule matters
    _same(engagement.mqa_dates(parts), mem.mqa_dates, "mqa_dates")


# --------------------------------------------------------------------------- what is not per partition
def _awkward(ds: Dataset, mapping: pd.DataFrame, npartitions: int) -> Dataset:
    """The sample made hard for partitions: (1) no decision maker among the contacts of
    partition 0's accounts (that partition alone would switch to the score rule);
    (2) touches that carry their own account and a contact mapped to an account of
    another partition (the contact's persona lives elsewhere); (3) one account only
    touches name."""
    part = pd.Series(scale.partition_of(ds.accounts["account_id"], npartitions), index=ds.accounts["account_id"])
    acc_of = mapping.dropna(subset=["account_id"]).set_index("contact_id")["account_id"]
    contacts = ds.contacts.copy()
    in0 = contacts["contact_id"].map(acc_of).map(part).eq(0).to_numpy()
    contacts.loc[in0 & contacts["persona"].eq("decision_maker").to_numpy(), "persona"] = "influencer"
    tp = ds.touchpoints.copy()
    eng = tp["contact_id"].map(contacts.set_index("contact_id")["persona"]).eq("decision_maker") & \
        tp["touch_type"].isin(["webinar_attended", "meeting", "demo_request", "content_download"])
    rows = np.flatnonzero(eng.to_numpy())[:400]
    target = part[part == 1].index.to_numpy(dtype=object)
    contact_part = tp["contact_id"].iloc[rows].map(acc_of).map(part).to_numpy()
    # each picked touch goes to an account of partition 1 unless its contact lives there already
    keep = contact_part != 1
    rows = rows[keep]
    tp.loc[tp.index[rows], "account_id"] = target[np.arange(len(rows)) % min(len(target), 7)]
    stray = tp.iloc[rows[:3]].assign(touchpoint_id=["stray-1", "stray-2", "stray-3"], account_id="no-such-account")
    tp = pd.concat([tp, stray], ignore_index=True)
    return Dataset(**{**ds.tables(), "contacts": contacts, "touchpoints": tp})


def test_partitions_use_the_whole_data_rule_personas_and_order(small_sample, tmp_path, cluster, no_in_memory):
    """A bare partitioned folder (no resolved settings): the whole data's rule in a
    partition without decision makers, personas of contacts that live in another
    partition, an account without a row in the account table, default as_of."""
    ds0 = small_sample.dataset
    mapping = map_contacts(ds0.contacts, ds0.accounts)
    ds = _awkward(ds0, mapping, 4)
    parts = scale.partition_by_account(ds, 4, tmp_path / "p", contact_accounts=mapping)
    mem = prepare(ds, mapping=mapping)
    assert mem.mqa_rule.uses_personas
    ref = engagement.mqa(mem)
    got = engagement.mqa(parts)
    _same_mqa(got, ref, None, None)
    assert "no-such-account" in set(ref.accounts["account_id"])
    # the cross-partition contacts matter: without their personas partition 1 loses decision makers
    cross = ref.accounts.set_index("account_id")["decision_makers_engaged"]
    assert cross.loc[scale.partition_of(cross.index, 4) == 1].sum() > 0
    for kw in ({}, {"freq": "W", "start": "2026-05-01"}):
        _same(engagement.engagement_scores(parts, **kw), engagement.engagement_scores(mem, **kw), f"scores {kw}")
    # MQA dates under the data's rule and under another rule, as prepare() gives them
    _same(engagement.mqa_dates(parts), mem.mqa_dates, "mqa_dates")
    assert training.expected("02.new_mqas_two_dm", data=parts, period=PERIOD) == \
        training.expected("02.new_mqas_two_dm", data=mem, period=PERIOD)
    # every kernel's partition keeps the whole data's rule (kernels._resolved), and the MQA
    # dates notebook 02 saves on the dask engine (kernels.mqa_dates) see the contacts of
    # other partitions
    from dataclasses import asdict

    from abmkit.scale import kernels
    zero = parts.load(0)
    assert not zero[0].contacts["persona"].eq("decision_maker").any()
    span = {**kernels._global_span(parts), "mqa_rule": asdict(mem.mqa_rule)}
    assert kernels._resolved(zero, span).mqa_rule == mem.mqa_rule
    parts.options["mqa_rule"] = mem.mqa_rule  # what abmkit.open_dataset records
    _same(kernels.mqa_dates(parts), mem.mqa_dates.sort_values("account_id", ignore_index=True), "kernels.mqa_dates")
