"""The whole report on the small sample: one resolved dataset, one definition per concept.

One run of the real notebooks 01-05 (``abmkit.report.run_report``) with a parameter
file that moves the mapping's fuzzy-name threshold away from its default, and a
``sitecustomize`` that logs every call of ``abmkit.mapping.map_contacts`` in every
process (the runner and each notebook kernel). Then:

* the mapping is computed exactly once per report (notebook 02), and notebooks 03, 04
  and 05 used that very mapping (its fingerprint and settings are in their findings),
  which differs from the default-threshold mapping — so the parameter reached every page;
* the MQA count, the new-MQA count, the opportunity count and the population of the
  tiles equal the same quantities in notebook 02's findings, the funnel and the CSVs.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from abmkit import report

REPO = Path(__file__).resolve().parents[1]
THRESHOLD = 75  # not the default (90): the parameter must reach every page

pytestmark = pytest.mark.notebook

_SITECUSTOMIZE = textwrap.dedent('''
    import os
    log = os.environ.get("ABMKIT_TEST_MAP_LOG")
    if log:
        import abmkit.mapping as _m
        _real = _m.map_contacts

        def map_contacts(*args, **kwargs):
            with open(log, "a") as fh:
                fh.write(f"{os.getpid()}\\n")
            return _real(*args, **kwargs)

        _m.map_contacts = map_contacts
''')


@pytest.fixture(scope="module")
def run(small_sample_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("consistency")
    data = tmp / "sample"
    shutil.copytree(small_sample_dir, data)
    hook = tmp / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(_SITECUSTOMIZE)
    log = tmp / "map_contacts.log"
    params = tmp / "params.yaml"
    params.write_text(f"fuzzy_threshold: {THRESHOLD}\nn_boot: 20\n")
    out = tmp / "reports"
    old = {k: os.environ.get(k) for k in ("PYTHONPATH", "ABMKIT_TEST_MAP_LOG")}
    os.environ["PYTHONPATH"] = os.pathsep.join([str(hook), *filter(None, [old["PYTHONPATH"]])])
    os.environ["ABMKIT_TEST_MAP_LOG"] = str(log)
    import abmkit.mapping as mapping_module
    real = mapping_module.map_contacts

    def counted(*args, **kwargs):  # calls made in this process (the runner) count too
        with open(log, "a") as fh:
            fh.write(f"{os.getpid()}\n")
        return real(*args, **kwargs)

    mapping_module.map_contacts = counted
    try:
        rc = report.run_report(quarter="2026Q3", data=str(data), out_dir=str(out), params_file=str(params),
                               notebooks_dir=REPO / "notebooks", progress=False)
    finally:
        mapping_module.map_contacts = real
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert rc == 0
    q3 = out / "2026Q3"
    findings = {p.stem[:2]: json.loads(p.read_text()) for p in (q3 / "findings").glob("*.json")}
    tables = {p.stem: pd.read_csv(p) for p in (q3 / "tables").glob("*.csv")}
    return {"out": out, "q3": q3, "log": log, "findings": findings, "tables": tables,
            "data_dir": out / ".data" / "2026Q3"}


def test_mapping_computed_once_per_report(run):
    calls = run["log"].read_text().split() if run["log"].exists() else []
    assert len(calls) == 1, f"map_contacts ran {len(calls)} times in the report (expected once, in notebook 02)"


def test_threshold_reaches_every_page(run):
    import abmkit
    from abmkit.prepared import MappingSettings

    f = run["findings"]
    assert f["02"]["mapping_settings"]["fuzzy_threshold"] == THRESHOLD
    fingerprint = abmkit.load_resolved(run["data_dir"]).mapping_fingerprint
    for nb in ("03", "04", "05"):
        settings = f[nb]["dataset"]
        assert settings["mapping"]["fuzzy_threshold"] == THRESHOLD, nb
        assert settings["mapping_fingerprint"] == fingerprint, nb
    # ... and it is not the default mapping: the parameter changed what the pages used
    cleaned = abmkit.load(run["data_dir"])
    default = abmkit.prepare(cleaned)
    assert default.mapping_fingerprint != fingerprint
    moved = abmkit.prepare(cleaned, mapping=MappingSettings(fuzzy_threshold=THRESHOLD))
    assert moved.mapping_fingerprint == fingerprint
    # a number downstream of the mapping: touches placed on no account (attribution page)
    assert f["03"]["unattributable_touches"] == int((moved.touches["account_source"] == "unattributable").sum())


def test_tiles_equal_notebooks_and_csvs(run):
    f, t = run["findings"], run["tables"]
    kpis = t["kpis"].set_index("kpi")
    funnel = t["account_funnel"].set_index("step")
    # MQA accounts at period end: tile = notebook 02 = funnel step
    assert kpis.loc["mqa_accounts", "value"] == f["02"]["mqa_target_accounts_at_period_end"]
    assert kpis.loc["mqa_accounts", "value"] == funnel.loc["mqa", "accounts"]
    # new MQAs: tile = notebook 02 = its CSV (target accounts that became MQA in the period)
    mqas = t["mqas_of_period"]
    assert kpis.loc["new_mqas", "value"] == f["02"]["new_mqas_target_accounts"] == int(mqas["is_target"].sum())
    assert len(mqas) == f["02"]["new_mqas_all_accounts"]
    # population of the target-account tiles = notebook 02's = the funnel's first step
    target = kpis[kpis["population"] == "target accounts"]
    assert len(target) >= 5
    assert (target["population_size"] == f["02"]["target_accounts"]).all()
    assert funnel.loc["population", "accounts"] == f["02"]["target_accounts"]
    assert (funnel["population"] == "target accounts").all()
    # all-account tiles: every account of the stage history (notebook 04)
    everyone = kpis[kpis["population"] == "all accounts"]
    assert (everyone["population_size"] == f["04"]["accounts"]).all()
    # opportunities created in the period: tile = pipeline table
    pipe = t["pipeline_by_period"].set_index("period")
    assert kpis.loc["opportunity_creation", "value"] == pipe.loc["2026Q3", "created"]
    # the KPI findings repeat the tile values
    assert f["05"]["kpis"]["mqa_accounts"] == kpis.loc["mqa_accounts", "value"]
    # every tile names its population
    assert kpis["population"].notna().all() and (kpis["population"] != "").all()


def test_resolved_dataset_saved_beside_the_cleaned_data(run):
    resolved = run["data_dir"] / "resolved"
    assert (resolved / "resolved.json").exists() and (resolved / "contact_accounts.parquet").exists()
    meta = json.loads((resolved / "resolved.json").read_text())
    assert meta["mapping"]["fuzzy_threshold"] == THRESHOLD
    assert meta["mqa_rule"]["min_decision_makers"] == 3
    assert meta["as_of"].startswith("2026-10-01")
    # private data stays outside the published folder
    assert not list(run["q3"].rglob("contact_accounts.parquet"))
    assert sys.executable  # (the runner used this interpreter's kernel)
