"""Notebook 03 runs end to end with papermill on the small sample and saves its outputs."""
from __future__ import annotations

from pathlib import Path

import pandas as pd


def test_notebook_03_runs_on_small_sample(resolved_sample_dir, tmp_path):
    import papermill as pm

    from abmkit.outputs import load_findings

    nb = Path(__file__).resolve().parents[1] / "notebooks" / "03_attribution_model_comparison.ipynb"
    out_dir = tmp_path / "report"
    pm.execute_notebook(str(nb), str(tmp_path / "03.ipynb"), kernel_name="python3", cwd=str(nb.parent),
                        progress_bar=False,
                        parameters={"data_dir": str(resolved_sample_dir), "quarter": "2026Q3",
                                    "output_dir": str(out_dir), "n_boot": 50})
    findings = load_findings(out_dir, "03_attribution_model_comparison")
    assert findings["all_credits_conserved"] is True
    assert findings["conversions"] == findings["conversions_with_touches"] + findings["no_touch_conversions"]
    assert "markov" in findings["models"] and "full_path" not in findings["models"]
    shares = pd.read_csv(out_dir / "tables" / "attribution_shares.csv")
    assert set(shares.columns) >= {"channel", "model", "share", "low", "high"}
    if findings["conversions_with_touches"]:
        sums = shares.groupby("model")["share"].sum()
        assert ((sums - 1).abs() < 1e-6).all()
    assert (out_dir / "tables" / "attribution_campaigns.csv").exists()
