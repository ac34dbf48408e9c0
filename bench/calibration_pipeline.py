"""Calibration of the incremental pipeline (abmkit.incremental_value) against planted truth.

For each replicate a small sample is generated with its own seed; campaign influence is
estimated at qualified -> sales_ready, and the incremental pipeline with its 95% CI. The
planted truth is the generator's potential outcomes: the sum over exposed, at-risk
accounts with a complete outcome window of (y1 - y0) at that step, times the same value
per sales-ready account (so the check is on the estimated number of extra accounts and
its interval; the value's own sampling error only widens the interval).

Two scenarios:

* ``planted``: the sample as generated (Executive Gift Box Mailer x2.5 at that step);
* ``zero``: every planted effect removed (risk_ratio = time_factor = 1 for every
  campaign), where the truth is 0 and the interval must contain 0 about 95% of the time.

Usage::

    python bench/calibration_pipeline.py --replicates 100 --n-accounts 1500
    python bench/calibration_pipeline.py --replicates 5 --quick   # a smoke run

Prints coverage per scenario and writes bench/results/calibration_pipeline.csv.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from abmkit import prepare  # noqa: E402
from abmkit.incremental_value import PIPELINE_TRANSITION, incremental_value  # noqa: E402
from abmkit.sample import campaigns as sample_campaigns  # noqa: E402
import abmkit.sample as sample_module  # noqa: E402
from abmkit.sample import generate  # noqa: E402
from abmkit.uplift import campaign_influence  # noqa: E402


@contextlib.contextmanager
def zero_effects():
    """Generate samples in which no campaign has an effect (risk ratio and time factor 1)."""
    original = sample_campaigns.make_campaigns

    def flat(*args, **kwargs):
        cmp = original(*args, **kwargs)
        return cmp.assign(risk_ratio=1.0, time_factor=1.0,
                          is_zero_effect=pd.array([True] * len(cmp), dtype="boolean"))

    sample_campaigns.make_campaigns = flat
    try:
        yield
    finally:
        sample_campaigns.make_campaigns = original


@contextlib.contextmanager
def without_raw_export():
    """Skip rendering the raw CSV exports (half of generate()'s time; it runs after the
    dataset and the truth are drawn, so neither changes)."""
    original = sample_module.render_raw
    sample_module.render_raw = lambda dataset, rng: ({}, {}, {}, pd.DataFrame())
    try:
        yield
    finally:
        sample_module.render_raw = original


def planted_extra_accounts(truth: dict, transition=PIPELINE_TRANSITION) -> float:
    """Sum of y1 - y0 over exposed, at-risk accounts with complete follow-up at the step."""
    po = truth["potential_outcomes"]
    label = f"{transition[0]}->{transition[1]}"
    po = po[(po["transition"] == label) & po["at_risk"].astype(bool) & po["complete_followup"].astype(bool)
            & po["exposed"].astype(bool)]
    return float((po["y1"].astype(float) - po["y0"].astype(float)).sum())


def one(seed: int, n_accounts: int, zero: bool) -> dict:
    ctx = zero_effects() if zero else contextlib.nullcontext()
    with ctx, without_raw_export():
        s = generate(n_accounts=n_accounts, seed=seed)
    ds = prepare(s.dataset)
    label = f"{PIPELINE_TRANSITION[0]}->{PIPELINE_TRANSITION[1]}"
    infl = campaign_influence(ds, transitions=[label], by="campaign", cox=False, progress=False)
    iv = incremental_value(infl, ds)
    truth_extra = planted_extra_accounts(s.truth)
    truth_pipeline = truth_extra * iv.value_per_account
    return {"scenario": "zero" if zero else "planted", "seed": seed, "n_accounts": n_accounts,
            "truth_extra": truth_extra, "extra": iv.extra_accounts, "extra_low": iv.extra_low,
            "extra_high": iv.extra_high, "truth_pipeline": truth_pipeline, "pipeline": iv.pipeline,
            "pipeline_low": iv.pipeline_low, "pipeline_high": iv.pipeline_high,
            "covers_extra": iv.extra_low <= truth_extra <= iv.extra_high,
            "covers_pipeline": iv.pipeline_low <= truth_pipeline <= iv.pipeline_high,
            "zero_inside": iv.pipeline_low <= 0 <= iv.pipeline_high,
            "rows_counted": int(iv.table["counted"].sum()), "rows_rebuilt": int(iv.table["exposure_rebuilt"].sum()),
            "rows": len(iv.table)}


def main(argv=None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--replicates", type=int, default=100)
    ap.add_argument("--n-accounts", type=int, default=1500)
    ap.add_argument("--first-seed", type=int, default=1000)
    ap.add_argument("--scenarios", default="planted,zero")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "calibration_pipeline.csv"))
    ap.add_argument("--quick", action="store_true", help="smaller samples (n_accounts 600)")
    ap.add_argument("--summarise", nargs="*", help="only print the coverage of these result CSVs")
    args = ap.parse_args(argv)
    if args.summarise:
        res = pd.concat([pd.read_csv(f) for f in args.summarise], ignore_index=True)
        summarise(res)
        return res
    n = 600 if args.quick else args.n_accounts
    rows = []
    t0 = time.time()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    for scenario in args.scenarios.split(","):
        for i in range(args.replicates):
            rows.append(one(args.first_seed + i, n, scenario == "zero"))
            # written as it goes: a long run that is stopped keeps its replicates
            pd.DataFrame(rows).to_csv(args.out, index=False)
            if (i + 1) % 10 == 0:
                print(f"  {scenario}: {i + 1}/{args.replicates} ({time.time() - t0:.0f} s)", flush=True)
    res = pd.DataFrame(rows)
    summarise(res, time.time() - t0)
    return res


def summarise(res: pd.DataFrame, seconds: float = float("nan")) -> pd.DataFrame:
    """Coverage per scenario of a results table (this script's CSV, or several concatenated)."""
    summary = res.groupby("scenario").agg(
        replicates=("seed", "size"), mean_truth_extra=("truth_extra", "mean"), mean_extra=("extra", "mean"),
        bias_extra=("extra", "mean"), coverage_extra=("covers_extra", "mean"),
        coverage_pipeline=("covers_pipeline", "mean"), zero_inside=("zero_inside", "mean"),
        mean_truth_pipeline=("truth_pipeline", "mean"), mean_pipeline=("pipeline", "mean"),
        mean_ci_width=("pipeline_high", "mean"))
    summary["bias_extra"] = res.groupby("scenario").apply(
        lambda g: float((g["extra"] - g["truth_extra"]).mean()), include_groups=False)
    summary["mean_ci_width"] = res.groupby("scenario").apply(
        lambda g: float((g["pipeline_high"] - g["pipeline_low"]).mean()), include_groups=False)
    summary["sd_error_extra"] = res.groupby("scenario").apply(
        lambda g: float((g["extra"] - g["truth_extra"]).std()), include_groups=False)
    summary["mean_se_extra"] = res.groupby("scenario").apply(
        lambda g: float(((g["extra_high"] - g["extra_low"]) / 3.919928).mean()), include_groups=False)
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(summary.round(3).T.to_string())
    print(f"({seconds:.0f} s; rows per replicate: {res['rows'].mean():.1f}, counted "
          f"{res['rows_counted'].mean():.1f}, exposure rebuilt {res['rows_rebuilt'].mean():.1f})")
    return summary


if __name__ == "__main__":
    main()
