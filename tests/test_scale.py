"""abmkit.scale: the Dask path gives the pandas path's numbers (issue 8).

Every test compares against the kit's own pandas functions on the small sample
(``small_sample`` fixture) resolved once with the same mapping (``prepare(ds,
mapping=mapping)``), run on a 2-worker LocalCluster (threads, to stay quick).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from abmkit import attribution, kpis, progression, scale, uplift
from abmkit.scale import kernels
from abmkit.journeys import account_touches
from abmkit.mapping import map_contacts
from abmkit.prepared import prepare

MODELS = ["first_touch", "last_touch", "linear", "time_decay", "u_shaped", "w_shaped", "j_shaped", "inverse_j",
          "hubspot_u_shaped", "marketo_u_shaped", "markov", "shapley", "shapley_split", "markov_per_conversion"]
CUSTOM = {"channel_weights": {"email": 2.0, "webinar": 3.0}, "position_weights": (0.3, 0.4, 0.3)}
RTOL = 1e-9


@pytest.fixture(scope="module")
def ds(small_sample):
    return small_sample.dataset


@pytest.fixture(scope="module")
def mapping(ds):
    return map_contacts(ds.contacts, ds.accounts)


@pytest.fixture(scope="module")
def data(ds, mapping):
    """The pandas path's resolved dataset: the partitions' mapping, default settings."""
    return prepare(ds, mapping=mapping)


@pytest.fixture(scope="module")
def parts(ds, mapping, tmp_path_factory, cluster):
    return scale.partition_by_account(ds, 3, tmp_path_factory.mktemp("parts") / "p", contact_accounts=mapping)


def _close(a, b, what):
    a, b = np.asarray(a, float), np.asarray(b, float)
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=1e-9 * max(1.0, np.nanmax(np.abs(b)) if b.size else 1.0),
                               err_msg=what)


def test_partition_of_is_stable_and_in_range():
    ids = np.array([f"acc{i}" for i in range(1000)], dtype=object)
    p = scale.partition_of(ids, 7)
    assert p.min() >= 0 and p.max() <= 6
    assert (p == scale.partition_of(ids, 7)).all()
    assert len(np.unique(p)) == 7  # 1000 ids spread over every partition


def test_partition_keeps_every_row_and_whole_accounts(ds, parts):
    m = parts.manifest
    assert m["touchpoints_in"] == len(ds.touchpoints)
    assert m["touchpoints_in"] == m["touchpoints_partitioned"] + m["touchpoints_unattributable"]
    assert m["touchpoints_unattributable"] == len(parts.unattributable()) > 0  # unmapped contacts' touches
    seen = {}
    n_acc = n_opp = 0
    for i in range(parts.npartitions):
        d, _ = parts.load(i)
        for a in pd.unique(d.touchpoints["account_id"]):
            assert seen.setdefault(a, i) == i, f"account {a} split over partitions"
        assert (scale.partition_of(d.accounts["account_id"], parts.npartitions) == i).all()
        n_acc += len(d.accounts)
        n_opp += len(d.opportunities)
    assert n_acc == len(ds.accounts) and n_opp == len(ds.opportunities)


def test_channel_credits_equal_pandas_every_model(data, parts):
    got = kernels.channel_credits(parts, MODELS + ["custom"], **CUSTOM)
    ref = attribution.compare_models(data, MODELS + ["custom"], n_boot=0, **CUSTOM)
    m = ref.credits.merge(got.credits, on=["channel", "model"], suffixes=("_pd", "_dask"), how="outer")
    assert len(m) == len(ref.credits) == len(got.credits)
    for model, g in m.groupby("model"):
        for col in ("conversions", "pipeline", "revenue"):
            _close(g[f"{col}_dask"], g[f"{col}_pd"], f"{model} {col}")
    assert got.conservation["ok"].all()
    assert got.info["conversions"] == ref.info["conversions"]
    assert got.info["journey_touches"] == ref.info["journey_touches"]
    assert got.info["unattributable_touches"] == ref.info["unattributable_touches"]
    # the Markov credits are not trivially equal shares
    mk = got.credits[got.credits["model"] == "markov"]["conversions"]
    assert mk.max() > 2 * mk[mk > 0].min()


def test_closed_won_full_path_equal_pandas(data, parts):
    models = ["full_path", "w_shaped", "markov", "shapley"]
    got = kernels.channel_credits(parts, models, milestone="closed_won", lookback_days=180)
    ref = attribution.compare_models(data, models, n_boot=0, milestone="closed_won", lookback_days=180)
    m = ref.credits.merge(got.credits, on=["channel", "model"], suffixes=("_pd", "_dask"))
    for col in ("conversions", "pipeline", "revenue"):
        _close(m[f"{col}_dask"], m[f"{col}_pd"], col)


def test_touch_level_attribute_equal_pandas(data, parts):
    models = ["linear", "time_decay", "w_shaped", "markov_per_conversion", "shapley"]
    got = attribution.attribute(parts, models).compute()
    ref = attribution.attribute(data, models)
    key = ["model", "conversion_id", "touchpoint_id"]
    m = ref.merge(got, on=key, suffixes=("_pd", "_dask"), how="outer", indicator=True)
    assert (m["_merge"] == "both").all() and len(m) == len(ref)
    for col in ("credit", "pipeline_credit", "revenue_credit"):
        _close(m[f"{col}_dask"], m[f"{col}_pd"], col)


def test_stage_history_equal_pandas(ds, mapping, parts):
    key = ["account_id", "stage"]
    for as_of in (None, "2026-06-30"):
        got = progression.stage_history(parts, as_of=as_of)
        ref = progression.stage_history(prepare(ds, mapping=mapping, as_of=as_of))
        assert isinstance(got, progression.StageHistory)
        pd.testing.assert_frame_equal(got.table.sort_values(key, ignore_index=True),
                                      ref.table.sort_values(key, ignore_index=True))
        assert got.data_end == ref.data_end
        assert got.touches_without_account == ref.touches_without_account > 0
        assert got.rules == ref.rules


def test_campaign_influence_counts_equal_pandas(data, parts):
    trans = ["aware->engaged", "qualified->sales_ready"]
    got = kernels.campaign_influence_counts(parts, transitions=trans)
    ref = uplift.campaign_influence(data, covariates=None, cox=False, transitions=trans).table
    key = ["level", "unit", "transition"]
    m = ref.merge(got, on=key, suffixes=("_pd", "_dask"), how="outer", indicator=True)
    assert (m["_merge"] == "both").all() and len(m) == len(ref)
    for col in ("n_at_risk", "n_treated", "n_control"):
        assert (m[f"{col}_dask"] == m[f"{col}_pd"]).all(), col
    assert m["n_treated_pd"].sum() > 0
    for col in ("rate_treated", "rate_control", "diff", "diff_low", "diff_high", "ratio", "p_value", "q_value"):
        _close(m[f"{col}_dask"], m[f"{col}_pd"], col)


def test_influence_counts_keep_at_risk_accounts_of_partitions_without_units(ds, mapping, cluster):
    """Accounts that reach sales_ready by an open opportunity and never have a touch
    are at risk for sales_ready->customer, yet their partition (a Dask DataFrame
    source puts touchless accounts in a partition of their own) has no channel unit:
    they must still count, as controls of every channel."""
    import dask.dataframe as dd

    import abmkit
    n = 40
    ids = [f"quiet-{i}" for i in range(n)]
    start = ds.touchpoints["occurred_at"].min() + pd.Timedelta(days=30)
    quiet_acc = ds.accounts.iloc[:n].copy().assign(account_id=ids, account_name=[f"Quiet {i}" for i in range(n)],
                                                   parent_account_id=None)
    created = [start + pd.Timedelta(days=i) for i in range(n)]
    won = np.arange(n) % 2 == 0  # half win 60 days after the landmark window opens
    quiet_opp = ds.opportunities.iloc[:n].copy().assign(
        opportunity_id=[f"quiet-opp-{i}" for i in range(n)], account_id=ids, created_at=created,
        closed_at=[c + pd.Timedelta(days=60) if w else pd.NaT for c, w in zip(created, won)], is_won=won)
    big = abmkit.schema.Dataset(
        accounts=pd.concat([ds.accounts, quiet_acc], ignore_index=True), contacts=ds.contacts,
        touchpoints=ds.touchpoints, campaigns=ds.campaigns,
        opportunities=pd.concat([ds.opportunities, quiet_opp], ignore_index=True), revenue=ds.revenue)
    big_data = prepare(big, mapping=mapping)
    tt = account_touches(big_data)
    trans = ["sales_ready->customer"]
    ref = uplift.campaign_influence(big_data, covariates=None, cox=False, transitions=trans, by="channel").table
    per_account = tt.sort_values("account_id")
    ddf = dd.from_pandas(per_account, npartitions=1)
    got = kernels.campaign_influence_counts(ddf, transitions=trans, by=("channel",), dataset=big,
                                          contact_accounts=mapping)
    m = ref.merge(got, on=["level", "unit", "transition"], suffixes=("_pd", "_dask"))
    assert len(m) == len(ref) > 0
    hist = progression.stage_history(big_data)
    quiet_at_risk = uplift.at_risk_counts(hist, ids, transitions=trans)
    assert quiet_at_risk["n_at_risk"].iloc[0] == n  # the planted accounts are all in the cohort
    assert quiet_at_risk["events_at_risk"].iloc[0] == n // 2
    for col in ("n_at_risk", "n_treated", "n_control"):
        assert (m[f"{col}_dask"] == m[f"{col}_pd"]).all(), col
    _close(m["rate_control_dask"], m["rate_control_pd"], "rate_control")


def test_kpi_aggregates_equal_pandas(data, parts):
    got = kernels.kpi_aggregates(parts, quarter="2026Q2")
    ref = kpis.kpi_table(data, quarter="2026Q2", segments=()).overall
    m = ref.merge(got, on="kpi", suffixes=("_pd", "_dask"))
    assert len(m) == len(kernels.ADDITIVE_KPIS)
    for col in ("value", "numerator", "denominator", "population_size", "previous", "change", "change_pct"):
        _close(m[f"{col}_dask"], m[f"{col}_pd"], col)
    for col in ("group", "unit", "population"):
        assert m[f"{col}_dask"].tolist() == m[f"{col}_pd"].tolist(), col
    mqa = m.set_index("kpi")
    assert mqa.loc["mqa_accounts", "value_dask"] > 0 and mqa.loc["mqa_accounts", "population_dask"] == "target accounts"
    assert "engaged_accounts" not in kernels.ADDITIVE_KPIS and "new_mqas" in kernels.ADDITIVE_KPIS
    with pytest.raises(ValueError, match="not additive"):
        kernels.kpi_aggregates(parts, quarter="2026Q2", kpis=["roi"])


def test_dask_dataframe_source_equal_pandas(ds, mapping, data, cluster):
    import dask.dataframe as dd
    # a touch frame whose partitions hold whole accounts (accounts sorted, split at account bounds)
    tp = ds.touchpoints.assign(_acc=account_touches(data)["account_id"].fillna("~"))
    tp = tp.sort_values("_acc", kind="stable").drop(columns="_acc").reset_index(drop=True)
    ddf = dd.from_pandas(tp, npartitions=1)
    got = kernels.channel_credits(ddf, ["linear", "markov"], dataset=ds, contact_accounts=mapping)
    ref = attribution.compare_models(data, ["linear", "markov"], n_boot=0)
    m = ref.credits.merge(got.credits, on=["channel", "model"], suffixes=("_pd", "_dask"))
    _close(m["conversions_dask"], m["conversions_pd"], "conversions")
    # partitions that split an account are refused with a clear message
    bad = dd.from_pandas(ds.touchpoints.sample(frac=1.0, random_state=0), npartitions=3)
    with pytest.raises(ValueError, match="not partitioned by account"):
        kernels.channel_credits(bad, "linear", dataset=ds, contact_accounts=mapping)


def test_folder_source_is_partitioned_on_the_fly(small_sample_dir, cluster):
    import abmkit
    canonical = small_sample_dir / "canonical"
    ds = abmkit.load(canonical)
    got = kernels.channel_credits(str(canonical), ["first_touch", "shapley"])
    ref = attribution.compare_models(ds, ["first_touch", "shapley"], n_boot=0)
    m = ref.credits.merge(got.credits, on=["channel", "model"], suffixes=("_pd", "_dask"))
    _close(m["conversions_dask"], m["conversions_pd"], "conversions")


def test_markov_counts_roundtrip():
    from abmkit.attribution.markov import build_chain, removal_effects
    from abmkit.attribution.paths import read_paths
    t = pd.DataFrame({"path": ["a > b > c", "a > c", "b", "c > a", "b > c"], "total_conversions": [2, 1, 0, 1, 0],
                      "total_conversion_value": [20.0, 5.0, 0, 7.0, 0], "total_null": [1, 2, 3, 0, 2]})
    whole = read_paths(t)
    halves = [read_paths(t.iloc[:2]), read_paths(t.iloc[2:])]
    for order in (1, 2):
        ref = removal_effects(build_chain(whole, order))
        counts = pd.concat([kernels.markov_counts(build_chain(h, order)) for h in halves], ignore_index=True)
        # the halves name channels differently (a,b,c vs a,b,c: same here), so codes agree
        got = removal_effects(kernels.chain_from_counts(counts, len(whole.channels), order))
        for r, g in zip(ref, got):
            np.testing.assert_allclose(g, r, rtol=1e-12)


def test_bad_inputs(ds, tmp_path):
    with pytest.raises(ValueError, match="npartitions"):
        scale.partition_by_account(ds, 0, tmp_path / "x")
    (tmp_path / "y").mkdir()
    (tmp_path / "y" / "f").write_text("x")
    with pytest.raises(FileExistsError, match="not empty"):
        scale.partition_by_account(ds, 2, tmp_path / "y")
    with pytest.raises(FileNotFoundError, match="abmkit_partitions.json"):
        scale.PartitionedDataset.open(tmp_path)
    with pytest.raises(ValueError, match="unknown model"):
        kernels.channel_credits(ds, "nope")


def test_campaign_sensitivity_and_example_equal_pandas(ds, data, parts):
    models = ["linear", "markov_per_conversion"]
    got = attribution.campaign_table(attribution.attribute(parts, models), ds.campaigns)
    ref = attribution.campaign_table(attribution.attribute(data, models), ds.campaigns)
    m = ref.merge(got, on="campaign_id", suffixes=("_pd", "_dask"))
    assert len(m) == len(ref) == len(got)
    for model in models:
        _close(m[f"{model}_dask"], m[f"{model}_pd"], model)
    sweep = attribution.sensitivity(parts, "time_decay", "half_life_days", [3, 30])
    sref = attribution.sensitivity(data, "time_decay", "half_life_days", [3, 30])
    ms = sref.merge(sweep, on=["value", "channel"], suffixes=("_pd", "_dask"))
    assert len(ms) == len(sref) == len(sweep)
    _close(ms["share_dask"], ms["share_pd"], "share")
    ex = attribution.journey_credits(attribution.journeys_for(
        parts, ["first_touch", "linear", "time_decay", "w_shaped", "markov_per_conversion"]))
    cj = attribution.journeys_for(data, ["first_touch", "linear", "time_decay", "w_shaped", "markov_per_conversion"])
    exref = attribution.journey_credits(cj)
    assert list(ex["touchpoint_id"]) == list(exref["touchpoint_id"])
    for model in ("linear", "w_shaped", "markov_per_conversion"):
        _close(ex[model], exref[model], model)


def test_compare_models_equal_pandas_without_bootstrap(data, parts):
    models = ["first_touch", "linear", "w_shaped", "markov", "shapley"]
    got = attribution.compare_models(parts, models, n_boot=0)
    ref = attribution.compare_models(data, models, n_boot=0)
    pd.testing.assert_index_equal(got.shares.index, ref.shares.index)
    _close(got.shares.to_numpy(), ref.shares.to_numpy(), "shares")
    # Shapley gives exactly tied shares that differ in the last bits with summation
    # order: both paths rank them as ties (comparison_from_credits)
    _close(got.rank_correlation.to_numpy(), ref.rank_correlation.to_numpy(), "rank correlation")
    _close(got.disagreement["range"], ref.disagreement["range"], "disagreement range")
    for col in ("best_rank", "worst_rank"):
        assert got.disagreement[col].tolist() == ref.disagreement[col].tolist(), col
    _close(got.summary["top_share"], ref.summary["top_share"], "top share")
    assert got.summary.set_index("model").loc[["first_touch", "linear", "w_shaped", "markov"], "top_channel"].equals(
        ref.summary.set_index("model").loc[["first_touch", "linear", "w_shaped", "markov"], "top_channel"])
    assert got.conservation["ok"].all()


def test_compare_models_bootstrap_equals_pandas_poisson(ds, mapping, data, parts, tmp_path):
    """Intervals from one pass over the partitions equal the pandas path's Poisson
    bootstrap, whatever the number of partitions."""
    models = ["first_touch", "linear", "time_decay", "markov", "shapley"]
    ref = attribution.compare_models(data, models, n_boot=150, seed=5, bootstrap="poisson")
    got = attribution.compare_models(parts, models, n_boot=150, seed=5)
    assert got.n_boot == 150 and got.info["bootstrap"] == "poisson"
    m = ref.intervals.merge(got.intervals, on=["channel", "model"], suffixes=("_pd", "_dask"))
    assert len(m) == len(ref.intervals) and m["low_pd"].notna().all()
    for col in ("share", "low", "high"):
        _close(m[f"{col}_dask"], m[f"{col}_pd"], col)
    assert (m["high_pd"] - m["low_pd"] > 0).mean() > 0.5  # real intervals, not points
    other = scale.partition_by_account(ds, 2, tmp_path / "two", contact_accounts=mapping)
    again = attribution.compare_models(other, models, n_boot=150, seed=5)
    _close(again.intervals["low"], got.intervals["low"], "low, 2 partitions")
    assert not attribution.compare_models(parts, models, n_boot=150, seed=6).intervals["low"].equals(got.intervals["low"])


def test_campaign_influence_full_table_equal_pandas(data, parts):
    got = uplift.campaign_influence(parts).table
    ref = uplift.campaign_influence(data).table
    key = ["level", "unit", "transition"]
    m = ref.merge(got, on=key, suffixes=("_pd", "_dask"), how="outer", indicator=True)
    assert (m["_merge"] == "both").all() and len(m) == len(ref)
    for col in ("n_at_risk", "n_treated", "n_control"):
        assert (m[f"{col}_dask"] == m[f"{col}_pd"]).all(), col
    for col in ("diff", "p_value", "q_value", "adj_diff", "adj_diff_low", "hazard_ratio", "acceleration_days",
                "median_days_exposed"):
        a, b = m[f"{col}_dask"].astype(float), m[f"{col}_pd"].astype(float)
        assert (a.isna() == b.isna()).all(), col
        np.testing.assert_allclose(a[a.notna()], b[b.notna()], rtol=1e-9, err_msg=col)


def test_transition_baseline_exact_when_it_fits_and_sampled_otherwise(data, parts):
    ref = progression.transition_baseline(data, progression.stage_history(data))
    got = progression.transition_baseline(parts)
    assert got.sample["exact"]
    pd.testing.assert_frame_equal(got.summary_table, ref.summary_table)
    pd.testing.assert_frame_equal(got.channel_mix.sort_values(["transition", "channel"], ignore_index=True),
                                  ref.channel_mix.sort_values(["transition", "channel"], ignore_index=True))
    part = kernels._transition_baseline(parts, max_touches=1)
    assert part.sample["partitions_used"] == 1 and not part.sample["exact"]
    assert part.summary_table["accounts"].sum() < ref.summary_table["accounts"].sum()


def test_campaign_influence_with_given_history_as_notebook_04(ds, mapping, parts):
    hist = progression.stage_history(parts, as_of="2026-09-30")
    got = uplift.campaign_influence(parts, history=hist, transitions=["aware->engaged"]).table
    report = prepare(ds, mapping=mapping, as_of="2026-09-30")  # a report's resolved dataset
    ref = uplift.campaign_influence(report, transitions=["aware->engaged"],
                                    history=progression.stage_history(report)).table
    m = ref.merge(got, on=["level", "unit", "transition"], suffixes=("_pd", "_dask"))
    assert len(m) == len(ref) == len(got)
    assert (m["n_treated_dask"] == m["n_treated_pd"]).all()
    a, b = m["adj_diff_dask"].astype(float), m["adj_diff_pd"].astype(float)
    np.testing.assert_allclose(a[a.notna()], b[b.notna()], rtol=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("stem, tables", [
    ("02_lead_to_account_mapping", ["mapping_quality_summary", "mqas_of_period", "engagement_leaderboard"]),
    ("03_attribution_model_comparison", ["attribution_campaigns", "attribution_sensitivity_half_life",
                                         "attribution_conservation", "attribution_truth",
                                         "attribution_incremental_truth"]),
    ("04_campaign_influence_on_progression", ["campaign_influence", "transition_baseline", "dual_funnel",
                                              "stage_distribution"]),
    ("05_quarterly_abm_report", ["kpis", "kpi_segments", "account_funnel"]),
])
def test_notebook_engine_dask_saves_the_pandas_tables(stem, tables, small_sample_dir, tmp_path):
    import json
    import shutil
    from pathlib import Path

    import papermill as pm
    nb = Path(__file__).parent.parent / "notebooks" / f"{stem}.ipynb"
    if "engine" not in pm.inspect_notebook(str(nb)):
        pytest.skip(f"{nb.name} does not declare engine")
    # one line opens the data for either engine; no other cell names the engine
    code = "".join("".join(c["source"]) for c in json.loads(nb.read_text("utf-8"))["cells"])
    lines = [ln.strip() for ln in code.splitlines() if "engine" in ln and not ln.startswith("engine =")]
    assert len(lines) == 1 and lines[0].startswith("data = abmkit.open_dataset(data_dir, engine=engine, "
                                                   "scheduler=scheduler"), lines
    import abmkit
    from abmkit.period import resolve_period
    data = tmp_path / "canonical"
    shutil.copytree(Path(small_sample_dir) / "canonical", data)
    # the resolved dataset notebook 02 writes (notebooks 03-05 open it)
    abmkit.prepare(abmkit.load(data), as_of=resolve_period(quarter="2026Q3").end).save(data)
    out = {}
    for engine in ("pandas", "dask"):
        params = {"data_dir": str(data), "quarter": "2026Q3", "output_dir": str(tmp_path / engine), "engine": engine}
        if stem.startswith("03"):  # with the sample's planted truth: the incremental model runs too
            params.update(n_boot=0, truth_dir=str(Path(small_sample_dir) / "truth"))
        pm.execute_notebook(str(nb), str(tmp_path / f"{engine}.ipynb"), parameters=params, kernel_name="python3",
                            cwd=str(nb.parent), progress_bar=False)
        out[engine] = {t: pd.read_csv(tmp_path / engine / "tables" / f"{t}.csv") for t in tables}
    for t in tables:
        a, b = out["dask"][t], out["pandas"][t]
        assert a.shape == b.shape, t
        for c in a.columns:
            if a[c].dtype.kind == "f":
                np.testing.assert_allclose(a[c], b[c], rtol=1e-9, atol=1e-6, err_msg=f"{t}.{c}")
            else:
                assert a[c].equals(b[c]), f"{t}.{c}"


def _with_rows(ds, table: str, rows: pd.DataFrame):
    import abmkit
    return abmkit.schema.Dataset(**{**ds.tables(), table: pd.concat([getattr(ds, table), rows], ignore_index=True)})


def test_data_end_is_the_whole_data_last_observation(ds, mapping, tmp_path, cluster):
    """The partitions' censoring date is ``prepare(ds).data_end``: the last touch or
    opportunity of any kind, also a touch without account (kept aside by
    partitioning) or an opportunity of an account missing from the accounts table."""
    import dask.dataframe as dd
    last = ds.touchpoints["occurred_at"].max()
    lost = ds.touchpoints.iloc[:1].assign(touchpoint_id="lost-touch", account_id=None, contact_id="nobody",
                                          occurred_at=last + pd.Timedelta(days=2))
    big = _with_rows(ds, "touchpoints", lost)
    stray = ds.opportunities.iloc[:1].assign(opportunity_id="stray-opp", account_id="no-such-account",
                                             created_at=last + pd.Timedelta(days=5), closed_at=pd.NaT, is_won=False)
    for d, want in ((big, last + pd.Timedelta(days=2)), (_with_rows(big, "opportunities", stray),
                                                        last + pd.Timedelta(days=5))):
        parts = scale.partition_by_account(d, 3, tmp_path / f"p{len(d.opportunities)}", contact_accounts=mapping)
        ref = prepare(d, mapping=mapping)
        assert ref.data_end == want
        got = progression.stage_history(parts)
        assert got.data_end == ref.data_end
        assert got.touches_without_account == progression.stage_history(ref).touches_without_account
        as_of = last + pd.Timedelta(days=1)  # a report period that ends before those
        assert progression.stage_history(parts, as_of=as_of).data_end == prepare(d, mapping=mapping, as_of=as_of).data_end
    # a Dask DataFrame source: the touches without account are in no partition either
    tt = account_touches(prepare(big, mapping=mapping))
    ddf = dd.from_pandas(big.touchpoints.iloc[tt.assign(_a=tt["account_id"].fillna("~")).sort_values(
        "_a", kind="stable").index], npartitions=1)
    got = kernels._stage_history(ddf, dataset=big, contact_accounts=mapping)
    assert got.data_end == prepare(big, mapping=mapping).data_end == last + pd.Timedelta(days=2)


def test_kpis_of_a_partition_without_target_accounts(ds, mapping, tmp_path, cluster):
    """The data flags target accounts, one partition holds none: its target
    population is empty (not all its accounts), as on the pandas path."""
    from abmkit.schema import Dataset
    keep = ds.accounts["account_id"].iloc[:40]
    their = mapping.loc[mapping["account_id"].isin(keep), "contact_id"]
    tp = ds.touchpoints
    sub = Dataset(accounts=ds.accounts.iloc[:40], contacts=ds.contacts[ds.contacts["contact_id"].isin(their)],
                  touchpoints=tp[tp["account_id"].isin(keep) | tp["contact_id"].isin(their)], campaigns=ds.campaigns,
                  opportunities=ds.opportunities[ds.opportunities["account_id"].isin(keep)],
                  revenue=ds.revenue[ds.revenue["account_id"].isin(keep)])
    parts = scale.partition_by_account(sub, 16, tmp_path / "p", contact_accounts=mapping)
    flags = [(len(a), int(a["is_target"].fillna(False).astype(bool).sum()))
             for a in (parts.load(i)[0].accounts for i in range(16))]
    assert any(n > 0 and t == 0 for n, t in flags) and any(t > 0 for _, t in flags), flags
    got = kernels.kpi_aggregates(parts, quarter="2026Q2")
    ref = kpis.kpi_table(prepare(sub, mapping=mapping), quarter="2026Q2", segments=()).overall
    m = ref.merge(got, on="kpi", suffixes=("_pd", "_dask"))
    assert len(m) == len(kernels.ADDITIVE_KPIS)
    for col in ("value", "numerator", "denominator", "population_size", "previous"):
        _close(m[f"{col}_dask"], m[f"{col}_pd"], col)
    assert m["population_dask"].tolist() == m["population_pd"].tolist()


def test_work_dir_copy_is_reused_only_with_the_same_mapping(small_sample_dir, mapping, tmp_path, cluster):
    canonical = small_sample_dir / "canonical"
    work = tmp_path / "work"
    first = scale.partitions(str(canonical), work_dir=work, contact_accounts=mapping, npartitions=2)
    stamp = (work / scale.MANIFEST).stat().st_mtime_ns
    again = scale.partitions(str(canonical), work_dir=work, contact_accounts=mapping.copy(), npartitions=2)
    assert (work / scale.MANIFEST).stat().st_mtime_ns == stamp and again.manifest == first.manifest
    other = mapping.assign(account_id=mapping["account_id"].where(mapping.index % 5 != 0, None))
    scale.partitions(str(canonical), work_dir=work, contact_accounts=other, npartitions=2)
    assert (work / scale.MANIFEST).stat().st_mtime_ns != stamp  # another mapping: partitioned again


def test_folder_with_bad_values_raises_schema_error(small_sample, tmp_path):
    import abmkit
    from abmkit.schema import SchemaError
    ds = small_sample.dataset
    abmkit.schema.save(ds, tmp_path / "ok")
    tp = pd.read_parquet(tmp_path / "ok" / "touchpoints.parquet")
    tp["channel"] = tp["channel"].astype(object)
    tp.loc[5, "channel"] = "carrier_pigeon"
    tp.to_parquet(tmp_path / "ok" / "touchpoints.parquet", index=False)
    with pytest.raises(SchemaError, match="channel"):
        scale.partition_by_account(tmp_path / "ok", 2, tmp_path / "parts")
    assert not (tmp_path / "parts").exists()  # nothing half-written is left to trip a re-run


def test_bad_account_table_stops_partitioning_and_leaves_nothing(small_sample, tmp_path, cluster):
    """The account tables are read while the workers already split the touches: an
    error there still stops the run, with the file named, and removes the output."""
    import abmkit
    from abmkit.schema import SchemaError
    abmkit.schema.save(small_sample.dataset, tmp_path / "src")
    acc = pd.read_parquet(tmp_path / "src" / "accounts.parquet")
    acc["employee_count"] = acc["employee_count"].astype(str)
    acc.loc[3, "employee_count"] = "lots"
    acc.to_parquet(tmp_path / "src" / "accounts.parquet", index=False)
    with pytest.raises(SchemaError, match="accounts.parquet.*employee_count"):
        scale.partition_by_account(tmp_path / "src", 3, tmp_path / "parts", batch_rows=5000)
    assert not (tmp_path / "parts").exists()
    (tmp_path / "src" / "opportunities.parquet").unlink()
    with pytest.raises(FileNotFoundError, match="opportunities.parquet"):
        scale.partition_by_account(tmp_path / "src", 3, tmp_path / "parts")
    assert not (tmp_path / "parts").exists()


def test_arrow_partitioning_equals_pandas_partitioning(ds, mapping, tmp_path, cluster):
    """The folder path (Arrow, hashed ids, block shuffle) writes the same partitions,
    unattributable rows and data span as the Dataset path (pandas), including touches
    of accounts missing from the accounts table at both ends of the time range (the
    span must skip them: 300 earliest ones defeat the 256-row shortcut)."""
    import abmkit
    tp = ds.touchpoints
    first, last = tp["occurred_at"].min(), tp["occurred_at"].max()
    ghosts = tp.iloc[:301].copy()
    ghosts["touchpoint_id"] = [f"ghost-{i}" for i in range(301)]
    ghosts["account_id"] = [f"no-such-account-{i % 7}" for i in range(301)]
    ghosts["contact_id"] = None
    ghosts["occurred_at"] = [first - pd.Timedelta(days=1 + i) for i in range(300)] + [last + pd.Timedelta(days=3)]
    big = abmkit.schema.Dataset(**{**{t: getattr(ds, t) for t in ("accounts", "contacts", "campaigns",
                                                                  "opportunities", "revenue")},
                                   "touchpoints": pd.concat([tp, ghosts], ignore_index=True)})
    folder = tmp_path / "canonical"
    abmkit.schema.save(big, folder)
    whole = pd.read_parquet(folder / "touchpoints.parquet")
    (folder / "touchpoints.parquet").unlink()
    (folder / "touchpoints").mkdir()
    import pyarrow as pa
    import pyarrow.parquet as pq
    for i, rows in enumerate(np.array_split(np.arange(len(whole)), 3)):
        piece = pa.Table.from_pandas(whole.iloc[rows], preserve_index=False)
        if i == 2:  # a file whose engagement_seconds is all null (Arrow type null): its own schema
            piece = piece.set_column(piece.column_names.index("engagement_seconds"), "engagement_seconds",
                                     pa.nulls(len(piece)))
        pq.write_table(piece, folder / "touchpoints" / f"f{i}.parquet", row_group_size=4000)
    # several chunks per task: each partition gets one file per task, plus one for the odd schema
    arrow = scale.partition_by_account(folder, 4, tmp_path / "arrow", contact_accounts=mapping, batch_rows=9000)
    files = sorted(p.name for p in (tmp_path / "arrow" / "touchpoints" / "part-00000").glob("*.parquet"))
    chunks = scale.partition._row_group_chunks(folder, 9000)
    odd = sum(f.endswith("f2.parquet") for f, _, _ in chunks)
    assert len(chunks) > 3 and odd >= 1
    assert files[0] == "batch-00000-000.parquet" and len(files) == 1 + odd, files
    pandas_ = scale.partition_by_account(big, 4, tmp_path / "pandas", contact_accounts=mapping, batch_rows=9000)
    for key in ("touchpoints_in", "touchpoints_partitioned", "touchpoints_unattributable", "span"):
        assert arrow.manifest[key] == pandas_.manifest[key], key
    span = arrow.manifest["span"]
    known = tp["account_id"].isin(ds.accounts["account_id"]) | tp["contact_id"].map(
        mapping.set_index("contact_id")["account_id"]).isin(ds.accounts["account_id"])
    assert span["t_min"] == tp.loc[known, "occurred_at"].min().value
    assert span["t_all_max"] == (last + pd.Timedelta(days=3)).value > span["t_max"]
    cols = ["touchpoint_id", "account_id", "contact_id", "campaign_id", "channel", "touch_type", "occurred_at"]
    for i in range(4):
        a = arrow.load(i)[0].touchpoints.sort_values("touchpoint_id", ignore_index=True)[cols]
        b = pandas_.load(i)[0].touchpoints.sort_values("touchpoint_id", ignore_index=True)[cols]
        pd.testing.assert_frame_equal(a, b)
        assert (scale.partition_of(a["account_id"], 4) == i).all()
    ua = arrow.unattributable().sort_values("touchpoint_id", ignore_index=True)[cols]
    ub = pandas_.unattributable().sort_values("touchpoint_id", ignore_index=True)[cols]
    pd.testing.assert_frame_equal(ua, ub)
    _assert_same_account_tables(arrow, pandas_)


def _sorted(df: pd.DataFrame, key: list) -> pd.DataFrame:
    return df.sort_values(key, ignore_index=True)


def _assert_same_account_tables(a: scale.PartitionedDataset, b: scale.PartitionedDataset):
    """Same manifest (but the source), the same account-table rows in every partition,
    the same contact mapping, unmapped contacts and account order."""
    from abmkit.schema import TABLES
    assert {k: v for k, v in a.manifest.items() if k != "source"} == \
        {k: v for k, v in b.manifest.items() if k != "source"}
    for i in range(a.npartitions):
        for t in scale.partition._ACCOUNT_TABLES:
            key = list(TABLES[t].key)
            pd.testing.assert_frame_equal(_sorted(a._read(t, i), key), _sorted(b._read(t, i), key), obj=f"{t}[{i}]")
        pd.testing.assert_frame_equal(_sorted(a.load(i)[1], ["contact_id"]), _sorted(b.load(i)[1], ["contact_id"]))
    ta, tb = a.account_tables(), b.account_tables()
    pd.testing.assert_frame_equal(ta.accounts, tb.accounts)  # the source's account order
    pd.testing.assert_frame_equal(_sorted(ta.contacts, ["contact_id"]), _sorted(tb.contacts, ["contact_id"]))


def test_account_tables_read_in_arrow_equal_the_pandas_checks(ds, mapping, tmp_path):
    """Canonical account tables go straight through Arrow; a table that needs coercion
    (tier stored as text, "" ids) goes through the pandas checks; both give what the
    Dataset path writes. A contact mapped twice keeps its first mapped row, as
    ``dropna().drop_duplicates("contact_id")``."""
    import abmkit
    acc = ds.accounts.copy()
    acc.loc[acc.index[:3], "domain"] = ""  # a str column keeps "" (ids do not)
    folder = tmp_path / "canonical"
    abmkit.schema.save(abmkit.schema.Dataset(**{**ds.tables(), "accounts": acc}), folder)
    raw = pd.read_parquet(folder / "accounts.parquet")
    raw["tier"] = raw["tier"].astype("string").astype(object)  # text: the pandas path coerces it
    raw.to_parquet(folder / "accounts.parquet", index=False)
    con = pd.read_parquet(folder / "contacts.parquet")
    con.loc[con.index[:4], "crm_account_id"] = ""
    con.to_parquet(folder / "contacts.parquet", index=False)
    assert scale.partition._arrow_table(folder / "contacts.parquet", "contacts") is not None
    assert scale.partition._arrow_table(folder / "accounts.parquet", "accounts") is None
    twice = mapping.iloc[:5].assign(account_id=[None, "other-1", "other-2", "other-3", "other-4"])
    ca = pd.concat([twice.iloc[:1], mapping, twice.iloc[1:]], ignore_index=True)
    via_folder = scale.partition_by_account(folder, 3, tmp_path / "a", contact_accounts=ca)
    via_dataset = scale.partition_by_account(abmkit.load(folder), 3, tmp_path / "b", contact_accounts=ca)
    _assert_same_account_tables(via_folder, via_dataset)
    first = mapping.dropna(subset=["account_id"]).drop_duplicates("contact_id").set_index("contact_id")["account_id"]
    got = pd.concat([via_folder.load(i)[1] for i in range(3)]).set_index("contact_id")["account_id"]
    pd.testing.assert_series_equal(got.sort_index(), first.sort_index(), check_names=False)
    assert via_folder.manifest["contacts_unmapped"] == int(ds.contacts["contact_id"].map(first).isna().sum())
    assert via_folder.account_tables().accounts["domain"].iloc[:3].tolist() == ["", "", ""]


def test_resolver_finds_exact_ids_only(mapping):
    from abmkit.scale.partition import _IdTable, _Resolver
    lookup = mapping.dropna(subset=["account_id"]).drop_duplicates("contact_id")[["contact_id", "account_id"]]
    known = pd.Index(lookup["account_id"].unique())
    r = _Resolver.build(lookup, known.append(known[:3]), 5)  # accounts repeated: one entry each
    assert len(r.known.hashes) == len(known)
    probe = list(lookup["contact_id"].iloc[::7]) + ["nobody", None, ""]
    pos = r.contact_rows(np.array(probe, dtype=object))
    assert (pos[-3:] == -1).all()
    got = r.contact_account.take(pos[:-3]).to_pylist()
    assert got == list(lookup["account_id"].iloc[::7])
    assert r.contact_part.tolist() == scale.partition_of(r.contact_account.to_pylist(), 5).tolist()
    # a hash match is not enough: the strings are compared
    import pyarrow as pa
    from abmkit.hashing import string_hash
    fake = np.array([string_hash(["impostor"], 3)[0]], np.uint64)
    assert _IdTable(3, fake, pa.array(["someone else"])).find(["impostor"]).tolist() == [-1]
    assert _IdTable(3, fake, pa.array(["impostor"])).find(["impostor"]).tolist() == [0]
    assert r.is_known(np.array([known[0], "ghost"], dtype=object)).tolist() == [True, False]


def test_empty_ids_become_missing_in_sliced_string_chunks():
    """Parquet readers hand back string chunks that are slices of one buffer; pyarrow
    22's ``if_else`` with a null scalar corrupts those (apache/arrow#41479)."""
    import pyarrow as pa
    rng = np.random.default_rng(1)
    values = np.array(["FOO", "BAR", "HELLO", "", "WORLD"], dtype=object)[rng.integers(0, 5, 188_138)]
    data = pa.array(values, pa.string())
    chunked = pa.chunked_array([data[:131_072], data[131_072:]])
    out = scale.partition._null_empty(chunked)
    out.validate(full=True)
    assert out.to_pylist() == [None if v == "" else v for v in values]
    assert scale.partition._null_empty(pa.chunked_array([data[5:9]])).to_pylist() == [v or None for v in values[5:9]]


def test_write_by_partition_keeps_input_order_across_shuffle_blocks(tmp_path, monkeypatch):
    """Rows reach their partition's file complete and in input order when the shuffle
    spans many blocks (a block of 64 rows here), with empty partitions and dropped rows;
    appended through open writers, a second batch follows the first. Ids are written
    plain, the taxonomy columns as dictionaries."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    monkeypatch.setattr(scale.partition, "_SHUFFLE_BLOCK", 64)
    rng = np.random.default_rng(3)
    n, nparts = 1000, 7

    def batch(offset):
        part = rng.choice([0, 1, 2, 4, 6], n)  # partitions 3 and 5 get nothing
        keep = rng.random(n) < 0.9
        table = pa.table({"touchpoint_id": [f"t{offset + i}" for i in range(n)],
                          "account_id": [f"a{p}-{i % 13}" for i, p in enumerate(part)],
                          "channel": pa.array(rng.choice(["email", "webinar"], n)).dictionary_encode()})
        return table, part, keep

    (t1, p1, k1), (t2, p2, k2) = batch(0), batch(n)
    scale.partition._write_by_partition(t1, p1, k1, nparts, tmp_path / "one", "b.parquet")
    writers: dict = {}
    scale.partition._write_by_partition(t1, p1, k1, nparts, tmp_path / "two", "b.parquet", writers)
    scale.partition._write_by_partition(t2, p2, k2, nparts, tmp_path / "two", "c.parquet", writers)
    for w in writers.values():
        w.close()
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == [f"part-{p:05d}" for p in (0, 1, 2, 4, 6)]
    for p in (0, 1, 2, 4, 6):
        want1 = np.flatnonzero(k1 & (p1 == p))
        got1 = pq.read_table(tmp_path / "one" / f"part-{p:05d}" / "b.parquet")
        assert got1["touchpoint_id"].to_pylist() == [f"t{i}" for i in want1]
        assert got1["account_id"].to_pylist() == t1["account_id"].take(pa.array(want1)).to_pylist()
        assert got1["channel"].to_pylist() == t1["channel"].take(pa.array(want1)).to_pylist()
        want2 = np.concatenate([want1, n + np.flatnonzero(k2 & (p2 == p))])
        got2 = pq.ParquetFile(tmp_path / "two" / f"part-{p:05d}" / "b.parquet")
        assert got2.read()["touchpoint_id"].to_pylist() == [f"t{i}" for i in want2]
        meta = got2.metadata.row_group(0)
        enc = {meta.column(i).path_in_schema: meta.column(i).encodings for i in range(meta.num_columns)}
        assert not any("DICTIONARY" in e for e in enc["account_id"]), enc
        assert any("DICTIONARY" in e for e in enc["channel"]), enc


# --------------------------------------------------------------------------- one signature per analysis
@pytest.fixture(scope="module")
def opened(small_sample_dir, tmp_path_factory, cluster):
    """notebook 02's resolved dataset of a copy of the sample, opened for both engines
    (the dask handle runs on the module's 2-worker cluster)."""
    import shutil

    import abmkit
    from abmkit.period import resolve_period
    folder = tmp_path_factory.mktemp("opened") / "canonical"
    shutil.copytree(small_sample_dir / "canonical", folder)
    abmkit.prepare(abmkit.load(folder), as_of=resolve_period(quarter="2026Q3").end).save(folder)
    return abmkit.open_dataset(folder, engine="pandas"), abmkit.open_dataset(folder, engine="dask", npartitions=3)


def test_open_dataset_gives_a_handle_every_analysis_takes(opened):
    from abmkit.engine import is_partitioned
    from abmkit.prepared import ResolvedDataset
    mem, parts = opened
    assert isinstance(mem, ResolvedDataset) and not is_partitioned(mem)
    assert isinstance(parts, scale.PartitionedDataset) and is_partitioned(parts) and parts.npartitions == 3
    assert parts.data_end == mem.data_end and parts.mqa_rule == mem.mqa_rule
    with pytest.raises(ValueError, match="engine"):
        import abmkit
        abmkit.open_dataset(parts.options["data_dir"], engine="spark")


def test_public_analyses_equal_in_memory_and_partitioned(opened):
    """Same call, same numbers (1e-9): compare_models with bootstrap intervals (fixed
    seed), stage history, campaign influence with channel rows, KPIs, mapping."""
    from abmkit import mapping as mp
    mem, parts = opened
    models = ["first_touch", "linear", "w_shaped", "markov", "shapley"]
    ref = attribution.compare_models(mem, models, n_boot=40, seed=3, bootstrap="poisson")
    got = attribution.compare_models(parts, models, n_boot=40, seed=3, bootstrap="poisson")
    m = ref.intervals.merge(got.intervals, on=["channel", "model"], suffixes=("_pd", "_dask"))
    assert len(m) == len(ref.intervals) > 0 and m["low_pd"].notna().all()
    for col in ("share", "low", "high"):
        _close(m[f"{col}_dask"], m[f"{col}_pd"], col)
    assert (m["high_pd"] > m["low_pd"]).mean() > 0.5

    h_ref, h_got = progression.stage_history(mem), progression.stage_history(parts)
    key = ["account_id", "stage"]
    pd.testing.assert_frame_equal(h_got.table.sort_values(key, ignore_index=True),
                                  h_ref.table.sort_values(key, ignore_index=True))
    assert h_got.data_end == h_ref.data_end and h_got.touches_without_account == h_ref.touches_without_account

    i_ref = uplift.campaign_influence(mem, by=("channel",), history=h_ref, min_group_size=5).table
    i_got = uplift.campaign_influence(parts, by=("channel",), history=h_got, min_group_size=5).table
    assert (i_ref["level"] == "channel").all() and len(i_ref) > 0
    k = ["level", "unit", "transition"]
    mi = i_ref.merge(i_got, on=k, suffixes=("_pd", "_dask"), how="outer", indicator=True)
    assert (mi["_merge"] == "both").all()
    for col in ("n_at_risk", "n_treated", "n_control"):
        assert (mi[f"{col}_dask"] == mi[f"{col}_pd"]).all(), col
    for col in ("diff", "p_value", "q_value", "adj_diff", "hazard_ratio"):
        a, b = mi[f"{col}_dask"].astype(float), mi[f"{col}_pd"].astype(float)
        assert (a.isna() == b.isna()).all(), col
        _close(a[a.notna()], b[b.notna()], col)

    c_ref = attribution.campaign_table(attribution.attribute(mem, ["linear", "shapley"]), mem.campaigns)
    c_got = attribution.campaign_table(attribution.attribute(parts, ["linear", "shapley"]), parts.campaigns)
    assert list(c_got.columns) == list(c_ref.columns)
    mc = c_ref.merge(c_got, on="campaign_id", suffixes=("_pd", "_dask"))
    assert len(mc) == len(c_ref) == len(c_got)
    for model in ("linear", "shapley"):
        _close(mc[f"{model}_dask"], mc[f"{model}_pd"], model)

    t_ref, t_got = kpis.kpi_table(mem, quarter="2026Q3"), kpis.kpi_table(parts, quarter="2026Q3")
    for a, b in ((t_got.overall, t_ref.overall), (t_got.segments, t_ref.segments)):
        assert a.shape == b.shape and list(a["kpi"]) == list(b["kpi"])
        _close(a["value"], b["value"], "kpi value")
        assert a["note"].tolist() == b["note"].tolist()

    r_ref = mp.mapping_report(mem.contact_accounts, mem.contacts)
    r_got = mp.mapping_report(parts.contact_accounts, parts.contacts)
    pd.testing.assert_frame_equal(r_got.summary, r_ref.summary)


def test_progress_is_quiet_off_a_terminal(parts, capsys):
    """No progress bar in captured output (not a terminal); forced on, one bar per pass."""
    progression.stage_history(parts)
    assert "stage history" not in capsys.readouterr().err
    from abmkit.scale.kernels import _map, _part_touch_count
    _map(parts, _part_touch_count, _progress=("counting", True))
    assert "counting" in capsys.readouterr().err


def _same_kpi_frames(got: pd.DataFrame, ref: pd.DataFrame, what: str):
    assert list(got.columns) == list(ref.columns), what
    assert len(got) == len(ref) > 0, what
    for col in got.columns:
        a, b = got[col], ref[col]
        if col in ("value", "numerator", "denominator", "previous", "change", "change_pct", "population_size"):
            a, b = a.astype(float).to_numpy(), b.astype(float).to_numpy()
            assert (np.isnan(a) == np.isnan(b)).all(), (what, col, got.loc[np.isnan(a) != np.isnan(b), "kpi"].tolist())
            _close(a[~np.isnan(a)], b[~np.isnan(b)], f"{what} {col}")
        else:
            assert a.tolist() == b.tolist(), (what, col, [(x, y) for x, y in zip(a, b) if x != y][:3])


@pytest.mark.parametrize("quarter", ["2026Q3", "2026Q1"])
def test_kpi_table_and_history_partitioned_equal_in_memory(opened, quarter):
    """kpis.kpi_table and kpis.kpi_history on the partitioned handle: every KPI (the
    touch KPIs summed over partitions, the others on the account tables), value,
    numerator, denominator, population and n/a note, overall and per segment."""
    mem, parts = opened
    t_ref, t_got = kpis.kpi_table(mem, quarter=quarter), kpis.kpi_table(parts, quarter=quarter)
    _same_kpi_frames(t_got.overall, t_ref.overall, "overall")
    _same_kpi_frames(t_got.segments, t_ref.segments, "segments")
    assert t_ref.overall["value"].notna().sum() >= 10
    h_ref = kpis.kpi_history(mem, quarter=quarter, n_periods=3)
    h_got = kpis.kpi_history(parts, quarter=quarter, n_periods=3)
    _same_kpi_frames(h_got, h_ref, "history")


def test_open_dataset_resolves_without_the_touch_table_as_prepare_does(small_sample_dir, tmp_path, cluster,
                                                                      monkeypatch):
    """notebook 02's step on the dask engine: mapping on the account tables, MQA dates
    and data end on the partitions; ``resolved/`` equals the pandas path's (other MQA
    rule than the default, so the rule must reach every partition), the touch table is
    never read whole, and KPIs on the handle use that rule."""
    import json
    import shutil

    import abmkit
    from abmkit.prepared import MappingSettings, MQARule
    from abmkit.scale import partition as sp
    kw = dict(mapping=MappingSettings(fuzzy_threshold=85), mqa=MQARule(min_decision_makers=2, window_days=60),
              as_of="2026-10-01")
    folders = {}
    for engine in ("pandas", "dask"):
        folders[engine] = tmp_path / engine / "canonical"
        shutil.copytree(small_sample_dir / "canonical", folders[engine])
    mem = abmkit.open_dataset(folders["pandas"], engine="pandas", **kw)
    read_whole = []
    monkeypatch.setattr(sp.PartitionedDataset, "in_memory", lambda self: read_whole.append(1))
    parts = abmkit.open_dataset(folders["dask"], engine="dask", npartitions=3, **kw)
    a, b = (f / "resolved" for f in (folders["pandas"], folders["dask"]))
    ma, mb = (json.loads((x / "resolved.json").read_text()) for x in (a, b))
    assert ma == mb
    pd.testing.assert_frame_equal(pd.read_parquet(b / "contact_accounts.parquet"),
                                  pd.read_parquet(a / "contact_accounts.parquet"))
    da, db = (pd.read_parquet(x / "mqa_dates.parquet").sort_values("account_id", ignore_index=True) for x in (a, b))
    assert len(da) > 0
    pd.testing.assert_frame_equal(db, da)
    assert parts.mqa_rule == mem.mqa_rule == kw["mqa"] and parts.data_end == mem.data_end
    assert list(parts.target_account_ids()) == list(mem.target_account_ids())
    t_ref, t_got = kpis.kpi_table(mem, quarter="2026Q3"), kpis.kpi_table(parts, quarter="2026Q3")
    _same_kpi_frames(t_got.overall, t_ref.overall, "overall")
    assert not read_whole
    # the pandas path opens what the dask path saved
    assert abmkit.open_dataset(folders["dask"]).mqa_rule == kw["mqa"]


def test_funnel_and_pipeline_by_period_partitioned_equal_in_memory(opened):
    """kpis.account_funnel and kpis.pipeline_by_period on the partitioned handle: the
    partitions' counts and sums, shares recomputed."""
    from abmkit.period import resolve_period
    mem, parts = opened
    for q in ("2026Q3", "2026Q2"):
        p = resolve_period(quarter=q)
        f_ref, f_got = kpis.account_funnel(mem, period=p), kpis.account_funnel(parts, period=p)
        assert list(f_got.columns) == list(f_ref.columns)
        assert f_got["accounts"].tolist() == f_ref["accounts"].tolist() and f_ref["accounts"].iloc[-2] > 0
        for col in ("share_of_population", "share_of_previous_step"):
            _close(f_got[col], f_ref[col], col)
        assert f_got[["step", "population", "note"]].equals(f_ref[["step", "population", "note"]])
        pl_ref = kpis.pipeline_by_period(mem, quarter=q, n_periods=3)
        pl_got = kpis.pipeline_by_period(parts, quarter=q, n_periods=3)
        assert list(pl_got.columns) == list(pl_ref.columns) and len(pl_got) == len(pl_ref) == 3
        assert pl_ref["influenced_amount"].sum() > 0
        for col in pl_ref.columns:
            if pl_ref[col].dtype.kind in "fi":
                _close(pl_got[col], pl_ref[col], col)
                assert pl_got[col].dtype == pl_ref[col].dtype, col
            else:
                assert pl_got[col].tolist() == pl_ref[col].tolist(), col


def test_mapping_fingerprint_follows_the_first_mapped_row_of_each_contact():
    """The partitioned copy is reused only with the same contact -> account rows: the first
    row with an account of each contact counts; rows without an account and later rows of
    a contact do not."""
    from abmkit.scale.partition import _mapping_fingerprint
    base = pd.DataFrame({"contact_id": ["c1", "c2", "c3"], "account_id": ["a1", "a2", "a1"]})
    same = pd.concat([base, pd.DataFrame({"contact_id": ["c2", "c4"], "account_id": ["a9", None]})],
                     ignore_index=True)
    moved = base.assign(account_id=["a1", "a3", "a1"])
    unmapped_first = pd.concat([pd.DataFrame({"contact_id": ["c1"], "account_id": [None]}), base], ignore_index=True)
    fp = _mapping_fingerprint(base)
    assert _mapping_fingerprint(same) == fp
    assert _mapping_fingerprint(unmapped_first) == fp
    assert _mapping_fingerprint(moved) != fp
    assert _mapping_fingerprint(base.iloc[:2]) != fp
