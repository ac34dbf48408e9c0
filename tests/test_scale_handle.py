"""The partitioned handle answers what notebooks 02-05 ask of the data without loading
the touch table (issue 22): every attribute, applicability check and drill-down table
equals the in-memory resolved dataset's, and none calls ``PartitionedDataset.in_memory()``
(the handle is opened with ``in_memory="error"``, so a fallback fails the test).

Pandas (``engine="pandas"``) against a 2-worker LocalCluster (threads) on the small
sample resolved for 2026Q3, as tests/test_scale.py does.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from abmkit import scale
from abmkit.period import resolve_period

PERIOD = resolve_period(quarter="2026Q3")


@pytest.fixture(scope="module")
def opened(small_sample_dir, tmp_path_factory, cluster):
    """notebook 02's resolved dataset of a copy of the sample (a 2-decision-maker MQA
    rule, so the handle must carry the saved rule), for both engines; the dask handle
    refuses to load the whole data."""
    import shutil

    import abmkit
    from abmkit.prepared import MappingSettings, MQARule
    folder = tmp_path_factory.mktemp("handle") / "canonical"
    shutil.copytree(small_sample_dir / "canonical", folder)
    mem = abmkit.open_dataset(folder, engine="pandas", as_of=PERIOD.end, mapping=MappingSettings(fuzzy_threshold=85),
                              mqa=MQARule(min_decision_makers=2))
    parts = abmkit.open_dataset(folder, engine="dask", npartitions=3, in_memory="error")
    return mem, parts


def test_strict_mode_refuses_the_whole_data_and_names_the_trigger(opened, monkeypatch):
    from abmkit.scale.partition import InMemoryError, InMemoryWarning
    mem, parts = opened
    with pytest.raises(InMemoryError, match=r"data\.touches loads the whole data.*docs/scale\.md"):
        parts.touches
    # an analysis of the kit that resolves the handle: named by its module and function
    scope = {"__name__": "abmkit.some_analysis"}
    exec("def scores(data):\n    from abmkit.prepared import resolve\n    return resolve(data)", scope)
    with pytest.raises(InMemoryError, match=r"^abmkit\.some_analysis\.scores loads the whole data"):
        scope["scores"](parts)
    # warn mode: loads, warns naming it, and gives the in-memory dataset
    parts.options["in_memory"] = "warn"
    try:
        with pytest.warns(InMemoryWarning, match=r"^data\.touches loads the whole data"):
            n = len(parts.touches)
    finally:
        parts.options["in_memory"] = "error"
    assert n == len(mem.touches)
    # the environment variable sets the mode of a handle opened without one
    monkeypatch.setenv("ABMKIT_IN_MEMORY", "error")
    bare = scale.PartitionedDataset.open(parts.root)
    with pytest.raises(InMemoryError):
        bare.tables
    monkeypatch.setenv("ABMKIT_IN_MEMORY", "sometimes")
    with pytest.raises(ValueError, match="ABMKIT_IN_MEMORY"):
        bare.tables


def test_handle_attributes_equal_in_memory(opened):
    """What notebooks 02-05 read off ``data``: the in-memory dataset's values."""
    mem, parts = opened
    got, ref = parts.summary, mem.summary
    assert got["item"].tolist() == ref["item"].tolist()
    assert [str(v) for v in got["value"]] == [str(v) for v in ref["value"]], pd.concat([got, ref], axis=1)
    by = ref.set_index("item")["value"]
    assert by["touches placed through their contact"] > 0 and by["touches with no account (unattributable)"] > 0
    # one count of touches by source on both engines (notebook 03 reads it), and it adds up
    counts = mem.touch_counts()
    assert parts.touch_counts() == counts
    assert counts["unattributable"] == by["touches with no account (unattributable)"]
    assert counts["touch"] + counts["contact"] + counts["unattributable"] == counts["in"] == len(mem.touchpoints)
    assert parts.settings == mem.settings and parts.settings["mapping"]["fuzzy_threshold"] == 85
    assert parts.mapping == mem.mapping and parts.mapping_fingerprint == mem.mapping_fingerprint
    assert parts.notes == mem.notes and parts.as_of == mem.as_of and parts.data_end == mem.data_end
    assert parts.mqa_rule == mem.mqa_rule and parts.mqa_rule.min_decision_makers == 2
    assert parts.target_population == mem.target_population
    assert list(parts.target_account_ids()) == list(mem.target_account_ids())
    pd.testing.assert_frame_equal(parts.accounts, mem.accounts, check_dtype=False)
    pd.testing.assert_frame_equal(parts.contact_accounts, mem.contact_accounts)
    pd.testing.assert_frame_equal(parts.campaigns, mem.campaigns)
    # the source's row order too (partitions hold them by account hash; unmapped contacts aside)
    for t in ("contacts", "opportunities", "revenue"):
        pd.testing.assert_frame_equal(getattr(parts, t), getattr(mem, t), check_dtype=False, obj=t)
    assert len(mem.revenue) and mem.contact_accounts["account_id"].isna().any()
    pd.testing.assert_frame_equal(parts.mqa_dates.sort_values("account_id", ignore_index=True),
                                  mem.mqa_dates.sort_values("account_id", ignore_index=True))


def _needs():
    from abmkit import applicability as ap
    return sorted(ap.KPI_NEEDS) + sorted(ap.ANALYSIS_NEEDS)


def _same_checks(mem, parts, periods):
    from abmkit import applicability as ap
    for period in periods:
        for name in _needs():
            a, b = ap.check(parts, name, period), ap.check(mem, name, period)
            assert (a.reason, a.missing, a.hint) == (b.reason, b.missing, b.hint), (name, period)
            pd.testing.assert_frame_equal(a.checks, b.checks, obj=f"{name} {period}")


def test_applicability_checks_equal_in_memory(opened):
    """Every declared analysis and KPI, without a period, in the notebooks' period and in
    one the data does not cover; every data need on its own (a period that is not whole
    days included)."""
    from abmkit import applicability as ap
    from abmkit.period import Period
    mem, parts = opened
    empty = resolve_period(quarter="2019Q1")
    _same_checks(mem, parts, [None, PERIOD, empty])
    odd = Period(pd.Timestamp("2026-08-01 12:00", tz="UTC"), pd.Timestamp("2026-08-02 06:00", tz="UTC"), "odd")
    seen = set()
    for p in (PERIOD, empty, odd):
        for name, need in ap.DATA_NEEDS.items():
            got, ref = need.test(parts, p), need.test(mem, p)
            assert bool(got) == bool(ref), (name, p.label)
            seen.add((name, bool(ref)))
    # both outcomes occur for the needs that read touches
    for name in ("touches_in_period", "mqa_at_end", "population"):
        assert (name, True) in seen and (name, False) in seen or name == "population", name
    assert ("timed_account_touches", True) in seen
    # Sections records the same reasons
    s_mem, s_parts = ap.Sections(mem, empty), ap.Sections(parts, empty)
    for name in ("engagement", "attribution", "campaign_influence", "market_reach", "win_rate"):
        s_mem.check(name), s_parts.check(name)
    assert s_parts.not_applicable == s_mem.not_applicable and s_mem.not_applicable


@pytest.fixture(scope="module")
def sparse(small_sample_dir, tmp_path_factory, cluster):
    """The sample without engagement seconds, campaign ids on touches, personas and
    campaign costs: the checks that say "no touch has ..." must say it on partitions."""
    import shutil

    import abmkit
    folder = tmp_path_factory.mktemp("sparse") / "canonical"
    shutil.copytree(small_sample_dir / "canonical", folder)
    tp = pd.read_parquet(folder / "touchpoints.parquet")
    tp = tp.assign(engagement_seconds=np.nan, campaign_id=None)
    tp.to_parquet(folder / "touchpoints.parquet", index=False)
    for table, col in (("contacts", "persona"), ("campaigns", "cost")):
        df = pd.read_parquet(folder / f"{table}.parquet")
        df[col] = None if df[col].dtype == object else np.nan
        df.to_parquet(folder / f"{table}.parquet", index=False)
    mem = abmkit.open_dataset(folder, engine="pandas", as_of=PERIOD.end)
    return mem, abmkit.open_dataset(folder, engine="dask", npartitions=3, in_memory="error")


def test_applicability_checks_equal_in_memory_on_sparse_data(sparse):
    from abmkit import applicability as ap
    mem, parts = sparse
    _same_checks(mem, parts, [None, PERIOD])
    reasons = {n: ap.check(parts, n, PERIOD).reason for n in ("campaign_influence", "audience_exposure_time", "roi")}
    assert reasons["campaign_influence"] == "needs touchpoints.campaign_id: no touch has a campaign", reasons
    assert reasons["audience_exposure_time"].startswith("needs touchpoints.engagement_seconds"), reasons


def _same_frame(got: pd.DataFrame, ref: pd.DataFrame, what: str):
    assert list(got.columns) == list(ref.columns), what
    assert len(got) == len(ref) and len(ref) > 0, what
    for c in ref.columns:
        a, b = got[c], ref[c]
        if b.dtype.kind == "f":
            np.testing.assert_allclose(a.to_numpy(float), b.to_numpy(float), rtol=1e-9, atol=1e-6,
                                       err_msg=f"{what}.{c}")
        else:
            assert [str(x) for x in a] == [str(x) for x in b], f"{what}.{c}"


def test_drilldown_tables_equal_in_memory(opened, monkeypatch):
    """opportunity × campaign (only the partitions holding the period's opportunities
    are read), campaign reach with stages, and campaign credit: the in-memory tables."""
    from abmkit import drilldown, progression
    from abmkit.scale import facts
    mem, parts = opened
    read = []
    real = facts.map_partitions
    monkeypatch.setattr(facts, "map_partitions", lambda p, fn, which, *a, **k: (read.append(list(which)),
                                                                                 real(p, fn, which, *a, **k))[1])
    # a period with opportunities in one partition only: the others are not read
    opp = mem.opportunities
    created = pd.to_datetime(opp["created_at"], utc=True)
    one = opp.loc[created.notna() & (created >= PERIOD.start) & (created < PERIOD.end)].iloc[0]
    start, end = one["created_at"], one["created_at"] + pd.Timedelta(seconds=1)
    assert len(opp[(created >= start) & (created < end)]["account_id"].unique()) == 1
    _same_frame(drilldown.opportunity_campaign_influence(parts, start=start, end=end),
                drilldown.opportunity_campaign_influence(mem, start=start, end=end), "one opportunity")
    assert read[-1] == [int(scale.partition_of([one["account_id"]], parts.npartitions)[0])]
    _same_frame(drilldown.opportunity_campaign_influence(parts, start=PERIOD.start, end=PERIOD.end),
                drilldown.opportunity_campaign_influence(mem, start=PERIOD.start, end=PERIOD.end), "opportunities")
    history = progression.stage_history(mem, as_of=PERIOD.end)
    ids = list(mem.campaigns["campaign_id"].head(4))
    for h in (history, None):
        _same_frame(drilldown.campaign_reach(parts, ids, end=PERIOD.end, history=h),
                    drilldown.campaign_reach(mem, ids, end=PERIOD.end, history=h), "reach")
    _same_frame(drilldown.campaign_credit(parts, start=PERIOD.start, end=PERIOD.end),
                drilldown.campaign_credit(mem, start=PERIOD.start, end=PERIOD.end), "credit")


def test_campaign_pages_equal_in_memory(opened, tmp_path):
    """Notebook 04's drill-down on the handle writes the same pages and tables."""
    from abmkit import drilldown, progression, uplift
    mem, parts = opened
    history = progression.stage_history(mem, as_of=PERIOD.end)
    result = uplift.campaign_influence(mem, history=history, alpha=0.5, cox=False)
    out = {}
    for name, data in (("mem", mem), ("parts", parts)):
        pages = drilldown.campaign_pages(data, result, PERIOD, tmp_path / name, history=history)
        out[name] = pages
    assert out["parts"].pages.equals(out["mem"].pages) and len(out["mem"].pages) > 1
    for rel in list(out["mem"].pages["path"]) + ["tables/opportunity_campaign_influence.csv",
                                                 "tables/campaign_reach.csv"]:
        assert (tmp_path / "parts" / rel).read_bytes() == (tmp_path / "mem" / rel).read_bytes(), rel


def test_incremental_value_equal_in_memory(opened):
    """Notebook 05's incremental pipeline: the exposure of the at-risk cohort is rebuilt
    in the partitions holding those accounts; every number equals the in-memory one."""
    from abmkit import uplift
    from abmkit.incremental_value import incremental_value
    mem, parts = opened
    kw = dict(transitions=["qualified->sales_ready"], by="campaign", cox=False, progress=False)
    res = {name: incremental_value(uplift.campaign_influence(d, **kw), d) for name, d in (("mem", mem),
                                                                                          ("parts", parts))}
    a, b = res["parts"], res["mem"]
    assert not b.not_applicable and b.table["exposure_rebuilt"].all() and b.table["counted"].sum() > 1
    _same_frame(a.table, b.table, "table")
    _same_frame(a.summary, b.summary, "summary")
    assert (a.cohort_start, a.cohort_end, a.notes) == (b.cohort_start, b.cohort_end, b.notes)


def test_dual_funnel_equal_in_memory(opened):
    """Notebook 04's contact and account funnels read contacts, opportunities and the
    stage history only."""
    from abmkit import progression
    mem, parts = opened
    history = progression.stage_history(mem, as_of=PERIOD.end)
    for h in (history, None):
        a, b = progression.dual_funnel(parts, h), progression.dual_funnel(mem, h)
        pd.testing.assert_frame_equal(a.contacts, b.contacts)
        pd.testing.assert_frame_equal(a.accounts, b.accounts)
        assert a.mql_account_engaged_share == b.mql_account_engaged_share and b.contacts["count"].iloc[1] > 0


def test_account_pages_equal_in_memory(opened, tmp_path):
    """Notebook 05's drill-down on the handle writes the same page and tables."""
    from abmkit import drilldown
    mem, parts = opened
    out = {name: drilldown.account_pages(d, PERIOD, tmp_path / name) for name, d in (("mem", mem), ("parts", parts))}
    assert out["parts"].pages.equals(out["mem"].pages) and len(out["mem"].tables) > 0
    written = [r for r in out["mem"].pages["path"] if (tmp_path / "mem" / r).exists()]  # campaigns.html: notebook 04's
    assert written == [drilldown.ACCOUNTS_PAGE]
    rel = drilldown.ACCOUNTS_PAGE
    assert (tmp_path / "parts" / rel).read_bytes() == (tmp_path / "mem" / rel).read_bytes(), rel
    for rel in ("tables/account_list.csv", "tables/account_contacts_to_call.csv"):   # scores: to 1e-9
        _same_frame(pd.read_csv(tmp_path / "parts" / rel), pd.read_csv(tmp_path / "mem" / rel), rel)


@pytest.mark.parametrize("exercise", ["03.top_channel_linear", "03.last_over_first", "04.aware_engaged_rate",
                                      "04.best_campaign", "04.most_confounded", "05.market_reach",
                                      "05.biggest_loss", "05.new_mqas_targets"])
def test_exercises_of_notebooks_03_to_05_equal_in_memory(opened, exercise):
    """A trainee's answer in notebooks 03-05 is checked on the handle without loading it."""
    from abmkit import training
    mem, parts = opened
    kw = dict(period=PERIOD, milestone="opportunity_created", lookback_days=365)
    got, ref = training.expected(exercise, data=parts, **kw), training.expected(exercise, data=mem, **kw)
    assert got == pytest.approx(ref, rel=1e-9) if isinstance(ref, float) else got == ref
