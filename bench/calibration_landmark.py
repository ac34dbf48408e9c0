"""Calibration section for issue 19 item 5: the landmark bias of a campaign that
acts before the landmark, and the sequential-trial design that removes it.

Registered in ``bench/calibration.py`` (``SECTIONS``), so it runs on the same
replicates as the other sections (false discoveries over every pair are its
``all_pairs`` section, scored against the same ``truth["pair_effects"]``):

* ``landmark_bias``: the sample plants CMP031 (Account-Based Video Ads,
  aware->engaged): hazard x2.5 from its first impression on, before the landmark
  too, with an unobserved frailty at that transition. Per replicate the landmark
  row (``campaign_influence(design="landmark")``) and the sequential-trial row
  (``design="sequential"``, :mod:`abmkit.sequential`) are scored against the
  generator's common-random-numbers truth of each estimand (``pair_effects``:
  ``att_diff`` for the landmark, ``seq_att_diff`` for the sequential design). The
  table reports the mean bias of each estimate against each truth and the coverage
  of its 95% CI; goal: |bias| <= 5% of the effect with the sequential design.
  CMP001 (acting after the landmark only) is scored the same way as a control case,
  and the zero-effect campaigns at aware->engaged give each design's false-positive rate.

Run alone: ``python bench/calibration_landmark.py --reps 200`` (this section and
``all_pairs`` on the same replicates; results in ``bench/results/calibration_landmark.json``,
the bias table also printed as Markdown), or
``python bench/calibration.py --sections landmark_bias --reps 200``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

PLANTED = ("CMP031", "aware->engaged")
CONTROL = ("CMP001", "aware->engaged")
PRE_TRANSITION = "aware->engaged"


def _pairs(ctx) -> pd.DataFrame:
    return ctx.sample.truth["pair_effects"]


def landmark_bias_rows(ctx, alpha: float) -> pd.DataFrame:
    """Campaign rows at aware->engaged under both designs, with both truths."""
    from abmkit.uplift import campaign_influence
    seq = campaign_influence(ctx.dataset, as_of=ctx.sample.params["end"], by="campaign", cox=False,
                             progress=False, alpha=alpha, transitions=[PRE_TRANSITION], design="sequential").table
    lm = ctx.influence.table
    lm = lm[(lm["level"] == "campaign") & (lm["transition"] == PRE_TRANSITION)]
    pe = _pairs(ctx)
    pe = pe[(pe["level"] == "campaign") & (pe["transition"] == PRE_TRANSITION)]
    keep = ["campaign_id", "transition", "n_treated", "n_control", "adj_diff", "adj_diff_low", "adj_diff_high",
            "adj_p_value"]
    out = []
    for design, t in (("landmark", lm), ("sequential", seq)):
        m = t[keep].merge(pe[["campaign_id", "transition", "story", "att_diff", "seq_att_diff", "is_zero_effect"]],
                          on=["campaign_id", "transition"])
        out.append(m.assign(design=design))
    return pd.concat(out, ignore_index=True)


def _bias(rows: pd.DataFrame, cid: str, alpha: float) -> list[dict]:
    res = []
    for design in ("landmark", "sequential"):
        r = rows[(rows["campaign_id"] == cid) & (rows["design"] == design) & rows["adj_diff"].notna()]
        if r.empty:
            continue
        own = "att_diff" if design == "landmark" else "seq_att_diff"
        for truth in ("att_diff", "seq_att_diff"):
            err = r["adj_diff"] - r[truth]
            mean_truth = float(r[truth].mean())
            res.append({
                "campaign": cid, "design": design, "truth": "landmark ATT" if truth == "att_diff" else "sequential ATT",
                "own_estimand": truth == own, "n": int(len(r)), "mean_truth": mean_truth,
                "mean_estimate": float(r["adj_diff"].mean()), "bias": float(err.mean()),
                "bias_mc_se": float(err.std(ddof=1) / np.sqrt(len(r))) if len(r) > 1 else np.nan,
                "relative_bias": float(err.mean() / mean_truth) if mean_truth else np.nan,
                "coverage_95": float(((r["adj_diff_low"] <= r[truth]) & (r[truth] <= r["adj_diff_high"])).mean()),
            })
    return res


def landmark_bias_summary(rows: pd.DataFrame, alpha: float) -> dict:
    table = pd.DataFrame(_bias(rows, PLANTED[0], alpha) + _bias(rows, CONTROL[0], alpha))
    # zero-effect rows big enough not to be flagged (min_group_size 20 on both sides)
    zero = rows[rows["is_zero_effect"].astype(bool) & rows["adj_p_value"].notna()
                & (rows["n_treated"] >= 20) & (rows["n_control"] >= 20)]
    fpr = zero.groupby("design")["adj_p_value"].apply(lambda p: float((p < alpha).mean())).to_dict()
    out = {"bias_table": table.to_dict("records"), "zero_effect_fpr_aware_engaged": fpr,
           "replicates": int(rows["seed"].nunique()) if "seed" in rows else None}

    def pick(design, truth):
        r = table[(table["campaign"] == PLANTED[0]) & (table["design"] == design) & (table["truth"] == truth)]
        return float(r["relative_bias"].iloc[0]) if len(r) else np.nan

    seq_rel = pick("sequential", "sequential ATT")
    out["headline"] = [
        ("pre-landmark case: landmark relative bias vs its own truth", pick("landmark", "landmark ATT"), "", None),
        ("pre-landmark case: landmark relative bias vs sequential truth", pick("landmark", "sequential ATT"), "",
         None),
        ("pre-landmark case: sequential relative bias", seq_rel, "|.| <= 0.05",
         bool(abs(seq_rel) <= 0.05) if np.isfinite(seq_rel) else None),
        ("zero-effect campaigns at aware->engaged: FPR, sequential (adjusted p)", fpr.get("sequential", np.nan),
         "<= 0.06", bool(fpr.get("sequential", 1) <= 0.06)),
    ]
    return out


def markdown_table(summary: dict) -> str:
    """The bias table as Markdown (docs/progression_and_uplift.md, "Which design")."""
    t = pd.DataFrame(summary["bias_table"])
    lines = ["| campaign | design | scored against | mean truth | mean estimate | bias (MC s.e.) | relative bias "
             "| 95% CI coverage |", "|---|---|---|---|---|---|---|---|"]
    for r in t.itertuples():
        lines.append(f"| {r.campaign} | {r.design} | {r.truth}{' (own)' if r.own_estimand else ''} | "
                     f"{r.mean_truth:+.3f} | {r.mean_estimate:+.3f} | {r.bias:+.4f} ({r.bias_mc_se:.4f}) | "
                     f"{r.relative_bias:+.1%} | {r.coverage_95:.1%} |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    import argparse
    import sys
    from pathlib import Path
    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here))
    import calibration
    ap = argparse.ArgumentParser(description="landmark bias of the pre-landmark case, before and after the "
                                             "sequential design")
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--accounts", type=int, default=500)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default=str(here / "results" / "calibration_landmark.json"))
    args = ap.parse_args(argv)
    out = calibration.main(["--reps", str(args.reps), "--accounts", str(args.accounts), "--workers",
                            str(args.workers), "--sections", "landmark_bias,all_pairs", "--out", args.out])
    print("\n" + markdown_table(out["landmark_bias"]))
    return out


if __name__ == "__main__":
    main()
