"""Reproducibility: the same inputs and seed give byte-identical outputs.

- report level: ``abmkit.report.run_report`` run twice on the small sample into two
  report folders (notebook 01 in ``make test``; the whole report, notebooks 01-05, in
  the ``slow`` set: ``make test-slow``, a few minutes); every
  ``tables/*.csv`` and ``findings/*.json`` and the cleaned data written beside the
  report are compared byte for byte. The two runs execute concurrently (two
  processes) to keep the wall time down.
- library level: cleaning (summary, ledger), mapping, touch-level credits, the
  attribution comparison (seeded bootstrap) and stage history written with
  ``abmkit.outputs.save_table`` twice -> identical bytes; and a different seed does change the bootstrap
  intervals (so the comparison can fail).
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]


def _files(folder: Path, patterns=("tables/*.csv", "findings/*.json")) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for pat in patterns for p in sorted(folder.glob(pat))}


@pytest.mark.parametrize("only", [
    "01",
    # the whole report takes minutes even with the two runs in parallel: `make test-slow`
    pytest.param("01,02,03,04,05", marks=pytest.mark.slow),
])
def test_report_csv_outputs_are_byte_identical(small_sample_dir, tmp_path, only):
    code = textwrap.dedent("""
        import sys
        from abmkit.report import run_report
        sys.exit(run_report(quarter="2026Q3", data=sys.argv[1], out_dir=sys.argv[2], only=sys.argv[4],
                            notebooks_dir=sys.argv[3], progress=False))
    """)
    outs = [tmp_path / "run_a", tmp_path / "run_b"]
    procs = [subprocess.Popen([sys.executable, "-c", code, str(small_sample_dir), str(o), str(REPO / "notebooks"), only],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=str(tmp_path))
             for o in outs]
    logs = [p.communicate(timeout=600)[0] for p in procs]
    for p, log in zip(procs, logs):
        assert p.returncode == 0, log[-3000:]
    a, b = (_files(o / "2026Q3") for o in outs)
    assert any(k.startswith("tables/") for k in a), "the report wrote no tables"
    assert sorted(a) == sorted(b)
    different = [k for k in a if a[k] != b[k]]
    assert different == [], f"outputs differ between identical runs: {different}"
    # the cleaned dataset and its ledger written beside the report, too
    da, db = (_files(o / ".data" / "2026Q3", ("*.csv", "*.parquet")) for o in outs)
    assert da and sorted(da) == sorted(db)
    assert [k for k in da if da[k] != db[k]] == []


def _library_outputs(sample_dir: Path, out: Path, seed: int, *, only_compare: bool = False) -> dict[str, bytes]:
    from abmkit.attribution import attribute, compare_models
    from abmkit.clean import clean_exports
    from abmkit.mapping import map_contacts
    from abmkit.outputs import save_table
    from abmkit.prepared import prepare
    from abmkit.progression import stage_history

    raw = sample_dir / "raw"
    r = clean_exports(raw, raw / "column_map.yaml")
    ds = r.dataset
    mapping = map_contacts(ds.contacts, ds.accounts)
    data = prepare(ds, mapping=mapping)
    cmp = compare_models(data, models=("first_touch", "last_touch", "linear", "markov"), n_boot=100, seed=seed)
    save_table(cmp.shares.reset_index(), out, "shares")
    save_table(cmp.intervals.reset_index(), out, "intervals")
    if not only_compare:
        save_table(r.to_frame(), out, "quality")
        save_table(r.rejects.drop(columns=["raw_values"]), out, "rejects")
        save_table(mapping, out, "mapping")
        save_table(attribute(data, ["linear", "time_decay", "markov_per_conversion", "shapley"]), out, "credits")
        save_table(stage_history(data).table, out, "stages")
    return _files(out, ("tables/*.csv",))


def test_library_csv_outputs_are_byte_identical_and_seed_matters(small_sample_dir, tmp_path):
    a = _library_outputs(small_sample_dir, tmp_path / "a", seed=7)
    b = _library_outputs(small_sample_dir, tmp_path / "b", seed=7)
    assert len(a) == 7 and sorted(a) == sorted(b)
    assert [k for k in a if a[k] != b[k]] == []
    c = _library_outputs(small_sample_dir, tmp_path / "c", seed=8, only_compare=True)
    # point estimates do not depend on the seed; the bootstrap intervals do
    assert c["tables/shares.csv"] == a["tables/shares.csv"]
    assert c["tables/intervals.csv"] != a["tables/intervals.csv"]
    credits = pd.read_csv(tmp_path / "a" / "tables" / "credits.csv")
    assert len(credits) > 0 and set(credits["model"]) == {"linear", "time_decay", "markov_per_conversion", "shapley"}
