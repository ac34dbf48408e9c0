"""Calibration of the campaign-influence statistics on replicated synthetic samples.

For ``--reps`` seeds (default 200) a small sample is generated with
:func:`abmkit.sample.generate` (planted effects, exact potential outcomes), and
:func:`abmkit.uplift.campaign_influence` is run with the true contact→account
map (so only the statistics are tested, not the mapping). For every planted
campaign × transition the adjusted 95% CI is compared with the sample's true ATT
(``att_diff``); for the planted zero-effect campaigns the share with an adjusted
p-value below alpha is the false-positive rate.

Targets: coverage of the 95% CIs 93–97%; false-positive rate ≤ 6%.
Prints a table and writes ``bench/results/calibration.json``.

Usage: ``python bench/calibration.py [--reps 200] [--accounts 500] [--workers 2]``
"""
from __future__ import annotations

import argparse
import json
import time
import warnings
from multiprocessing import Pool
from pathlib import Path

import pandas as pd
from tqdm import tqdm

TRANSITIONS = ["aware->engaged", "engaged->qualified", "qualified->sales_ready"]


def one_replicate(args) -> pd.DataFrame:
    seed, n_accounts, alpha = args
    from abmkit.prepared import prepare
    from abmkit.sample import generate
    from abmkit.uplift import campaign_influence, compare_to_truth
    warnings.simplefilter("ignore")
    s = generate(n_accounts=n_accounts, seed=seed)
    mapping = s.truth["contact_accounts"].rename(columns={"true_account_id": "account_id"})
    res = campaign_influence(prepare(s.dataset, mapping=mapping), as_of=s.params["end"], by="campaign",
                             cox=False, progress=False, alpha=alpha, transitions=TRANSITIONS)
    check = compare_to_truth(res.table, s.truth["effects"], alpha=alpha)
    t = res.table.set_index(["campaign_id", "transition"])
    check = check.join(t[["adj_p_value", "p_value", "flag"]], on=["campaign_id", "transition"])
    check["seed"] = seed
    return check


def summarise(rows: pd.DataFrame, alpha: float) -> dict:
    zero = rows["is_zero_effect"].astype(bool)
    conf = rows["is_confounded"].astype(bool)
    defined = rows["adj_diff_low"].notna()
    z = rows[zero & ~conf & rows["adj_p_value"].notna()]
    zc = rows[zero & rows["adj_p_value"].notna()]
    eff = rows[~zero & defined]
    per = rows[defined].groupby(["campaign_id", "story"]).agg(
        n=("adj_covers_truth", "size"), adj_coverage=("adj_covers_truth", "mean"),
        naive_coverage=("naive_covers_truth", "mean"), mean_true_att=("att_diff", "mean"),
        mean_adj=("adj_diff", "mean"), mean_naive=("diff", "mean"),
        rejected=("adj_p_value", lambda p: float((p < alpha).mean()))).reset_index()
    return {
        "replicates": int(rows["seed"].nunique()),
        "estimates": int(len(rows)), "estimates_undefined": int((~defined).sum()),
        "coverage_adj_95_all": float(rows.loc[defined, "adj_covers_truth"].mean()),
        "coverage_adj_95_unconfounded": float(rows.loc[defined & ~conf, "adj_covers_truth"].mean()),
        "coverage_naive_95_unconfounded": float(rows.loc[defined & ~conf, "naive_covers_truth"].mean()),
        "false_positive_rate_zero_effect": float((z["adj_p_value"] < alpha).mean()),
        "false_positive_rate_zero_effect_incl_confounded": float((zc["adj_p_value"] < alpha).mean()),
        "false_positive_rate_confounded_naive": float((rows.loc[conf, "p_value"] < alpha).mean()),
        "false_positive_rate_confounded_adjusted": float((rows.loc[conf & defined, "adj_p_value"] < alpha).mean()),
        "q_value_false_discoveries_zero_effect": float((zc["q_value"] < alpha).mean()),
        "power_planted_effects": float((eff["adj_p_value"] < alpha).mean()),
        "per_campaign": per.to_dict("records"),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--accounts", type=int, default=500)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--first-seed", type=int, default=1000)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    jobs = [(args.first_seed + i, args.accounts, args.alpha) for i in range(args.reps)]
    with Pool(args.workers) as pool:
        parts = list(tqdm(pool.imap_unordered(one_replicate, jobs), total=len(jobs), desc="replicates"))
    rows = pd.concat(parts, ignore_index=True)
    out = summarise(rows, args.alpha)
    out.update(accounts_per_sample=args.accounts, alpha=args.alpha, seconds=round(time.perf_counter() - t0, 1),
               first_seed=args.first_seed, targets={"coverage": [0.93, 0.97], "false_positive_rate_max": 0.06})
    print(f"calibration: {out['replicates']} samples x {args.accounts} accounts, alpha {args.alpha}, "
          f"{out['seconds']} s")
    for k in ("estimates", "estimates_undefined", "coverage_adj_95_all", "coverage_adj_95_unconfounded",
              "coverage_naive_95_unconfounded", "false_positive_rate_zero_effect",
              "false_positive_rate_zero_effect_incl_confounded", "false_positive_rate_confounded_naive",
              "false_positive_rate_confounded_adjusted", "q_value_false_discoveries_zero_effect",
              "power_planted_effects"):
        v = out[k]
        print(f"  {k:<48} {v:.4f}" if isinstance(v, float) else f"  {k:<48} {v}")
    per = pd.DataFrame(out["per_campaign"])
    print(per.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    res = Path(__file__).resolve().parent / "results"
    res.mkdir(parents=True, exist_ok=True)
    (res / "calibration.json").write_text(json.dumps(out, indent=2, default=float))
    return out


if __name__ == "__main__":
    main()
