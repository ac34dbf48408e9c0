"""Calibration of the incremental attribution model against planted truth.

For every replicate (a new sample seed; sizes alternate between the ``--sizes``)
the sample is generated, resolved with the true contact→account mapping, and
:func:`abmkit.attribution.incremental.incremental_attribution` is fitted with its
bootstrap. Each estimable channel's 95% interval of incremental first
opportunities is checked against the planted expected conversions lost
(``truth["channel_incrementality"]``), and its share interval against the planted
share. Prints the coverage per channel and overall, and the bias.

    nice .venv/bin/python bench/calibration_attribution.py --replicates 100 --n-boot 200

The recorded run (``bench/results/calibration_attribution.csv``, table in
docs/attribution.md; 751 s): ``--replicates 100 --n-boot 200 --sizes 600 1000 2000
--first-seed 9000``.

Results are written to ``bench/results/calibration_attribution.csv`` (one row per
replicate x channel). Parts run in parallel (``--first-seed``, ``--out``) are
summarised together with ``--table-only part1.csv part2.csv``.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd


def _generate(n_accounts: int, seed: int):
    """The sample without its raw-export rendering (a third of the generation time,
    and nothing here reads it; it runs after the truth is computed, so the dataset
    and the truth are the same as :func:`abmkit.sample.generate` gives)."""
    import abmkit.sample as S
    render = S.render_raw
    S.render_raw = lambda dataset, rng: ({}, {}, {}, pd.DataFrame())
    try:
        return S.generate(n_accounts=n_accounts, seed=seed)
    finally:
        S.render_raw = render


def one_replicate(seed: int, n_accounts: int, n_boot: int) -> pd.DataFrame:
    import abmkit
    from abmkit.attribution.incremental import incremental_attribution
    s = _generate(n_accounts, seed)
    ca = s.truth["contact_accounts"].rename(columns={"true_account_id": "account_id"})[["contact_id", "account_id"]]
    data = abmkit.prepare(s.dataset, mapping=ca)
    res = incremental_attribution(data, n_boot=n_boot, seed=seed)
    truth = s.truth["channel_incrementality"].set_index("channel")
    t_share = truth["expected_conversions_lost"].clip(lower=0)
    t_share = t_share / t_share.sum()
    ch = res.channels.set_index("channel")
    out = pd.DataFrame({
        "seed": seed, "n_accounts": n_accounts, "channel": truth.index,
        "true_lhr": truth["log_hazard_ratio"].to_numpy(),
        "true_lost": truth["expected_conversions_lost"].to_numpy(),
        "true_share": t_share.to_numpy(),
    })
    for col in ("estimable", "log_hazard_ratio", "lhr_low", "lhr_high", "incremental_conversions", "low", "high",
                "share", "share_low", "share_high"):
        out[col] = ch[col].reindex(truth.index).to_numpy() if col in ch else np.nan
    out["estimable"] = out["estimable"].eq(True)
    out["in_data"] = truth.index.isin(ch.index)   # False: the sample has no touch of the channel
    out["covered"] = (out["true_lost"] >= out["low"]) & (out["true_lost"] <= out["high"])
    out["share_covered"] = (out["true_share"] >= out["share_low"]) & (out["true_share"] <= out["share_high"])
    out["lhr_covered"] = (out["true_lhr"] >= out["lhr_low"]) & (out["true_lhr"] <= out["lhr_high"])
    return out


def main(argv=None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicates", type=int, default=100)
    ap.add_argument("--n-boot", type=int, default=200)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000])
    ap.add_argument("--first-seed", type=int, default=1000)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "calibration_attribution.csv"))
    ap.add_argument("--table-only", nargs="+", metavar="CSV",
                    help="print the table of earlier runs' CSVs (e.g. parts run in parallel) and stop")
    a = ap.parse_args(argv)
    t0 = time.time()
    if a.table_only:
        df = pd.concat([pd.read_csv(f) for f in a.table_only], ignore_index=True)
    else:
        rows = []
        for r in range(a.replicates):
            rows.append(one_replicate(a.first_seed + r, a.sizes[r % len(a.sizes)], a.n_boot))
            if (r + 1) % 5 == 0:
                print(f"{r + 1} replicates, {time.time() - t0:.0f} s", flush=True)
                pd.concat(rows, ignore_index=True).to_csv(a.out, index=False)
        df = pd.concat(rows, ignore_index=True)
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(a.out, index=False)
    df["estimable"] = df["estimable"].astype(bool)
    est = df[df["estimable"]]
    table = est.groupby("channel").agg(
        planted_lhr=("true_lhr", "first"), replicates=("seed", "size"), mean_true_lost=("true_lost", "mean"),
        mean_estimate=("incremental_conversions", "mean"), coverage_lost=("covered", "mean"),
        coverage_share=("share_covered", "mean"), coverage_lhr=("lhr_covered", "mean"))
    # channels never estimable (display, paid_social: in nearly every at-risk day) keep a row
    if "in_data" in df:
        df = df[df["in_data"].astype(bool) | df["estimable"]]
    planted = df.groupby("channel")["true_lhr"].first()
    table = table.reindex(planted.index)
    table["planted_lhr"] = planted
    table["replicates"] = table["replicates"].fillna(0).astype(int)
    table["not_estimable_in"] = df[~df["estimable"]].groupby("channel").size().reindex(table.index).fillna(0) \
        .astype(int)
    pd.set_option("display.width", 200)
    print(table.sort_values("planted_lhr", ascending=False).round(3).to_string())
    print(f"\noverall coverage of the planted conversions lost by the 95% intervals: {est['covered'].mean():.3f} "
          f"over {len(est)} channel estimates in {df['seed'].nunique()} replicates "
          f"(effective channels: {est.loc[est['true_lhr'] != 0, 'covered'].mean():.3f}; "
          f"zero-effect channels: {est.loc[est['true_lhr'] == 0, 'covered'].mean():.3f})")
    print(f"share coverage: {est['share_covered'].mean():.3f}; log hazard ratio coverage: "
          f"{est['lhr_covered'].mean():.3f}; {time.time() - t0:.0f} s")
    return df


if __name__ == "__main__":
    main()
