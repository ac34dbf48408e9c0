"""Calibration of the campaign-influence statistics on replicated synthetic samples.

For ``--reps`` seeds (default 200) a small sample is generated with
:func:`abmkit.sample.generate` (planted effects, exact potential outcomes), and
:func:`abmkit.uplift.campaign_influence` is run once per sample (campaign and
channel rows, with the Cox hazard ratio) with the true contact→account map, so
only the statistics are tested, not the mapping. Each *section* scores one family
of rows against the sample's truth:

* ``campaign``: for every planted campaign × transition the adjusted 95% CI is
  compared with the true ATT (``att_diff``); for the planted zero-effect campaigns
  the share with an adjusted p-value below alpha is the false-positive rate (FPR).
* ``channel``: channel × transition rows whose channel carries no campaign with a
  planted effect at that transition (the generator's ``pair_effects`` truth when it
  writes it): the share with p < alpha, per test (naive, adjusted, Cox hazard
  ratio), is the FPR of that test.
* ``all_pairs``: every campaign and channel row scored against ``pair_effects``:
  false discoveries (q < alpha on a zero-effect pair) and their rate among the
  significant rows, averaged over samples.
* ``ci_p``: every row and test (naive difference, adjusted difference, Cox hazard
  ratio): the rows where "the CI excludes no effect" and "p < alpha" disagree
  (target 0: one decision per test, never two).

Targets: campaign coverage of the 95% CIs 93–97% and FPR ≤ 6%; channel FPR ≤ 6%;
no CI/p disagreement.
Prints one table per section and a headline table at the end, and writes
``bench/results/calibration.json``.

Adding a section: write ``rows(ctx, alpha) -> DataFrame`` (one row per scored
estimate, from the :class:`Replicate` context) and ``summarise(rows, alpha) ->
dict`` (with a ``"headline"`` list of ``(measure, value, target, met)``), and
register them in :data:`SECTIONS`.

Usage: ``python bench/calibration.py [--reps 200] [--accounts 500] [--workers 2]
[--sections campaign,channel]``
"""
from __future__ import annotations

import argparse
import json
import time
import warnings
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

TRANSITIONS = ["aware->engaged", "engaged->qualified", "qualified->sales_ready"]


@dataclass
class Replicate:
    """What every section of one replicate sees: the seed, the generated sample, the
    resolved dataset (true contact map) and the campaign-influence result (campaign
    and channel rows, Cox included)."""
    seed: int
    sample: object
    dataset: object
    influence: object


def make_replicate(seed: int, n_accounts: int, alpha: float) -> Replicate:
    from abmkit.prepared import prepare
    from abmkit.sample import generate
    from abmkit.uplift import campaign_influence
    s = generate(n_accounts=n_accounts, seed=seed)
    mapping = s.truth["contact_accounts"].rename(columns={"true_account_id": "account_id"})
    ds = prepare(s.dataset, mapping=mapping)
    res = campaign_influence(ds, as_of=s.params["end"], by=("campaign", "channel"), cox=True, progress=False,
                             alpha=alpha, transitions=TRANSITIONS)
    return Replicate(seed=seed, sample=s, dataset=ds, influence=res)


# --------------------------------------------------------------------------- campaign rows
def campaign_rows(ctx: Replicate, alpha: float) -> pd.DataFrame:
    from abmkit.uplift import compare_to_truth
    table = ctx.influence.table
    effects = ctx.sample.truth["effects"]
    if "acts_before_landmark" in effects:  # biased here by design: scored by the landmark_bias section
        effects = effects[~effects["acts_before_landmark"].astype(bool)]
    check = compare_to_truth(table, effects, alpha=alpha)
    t = table[table["level"] == "campaign"].set_index(["campaign_id", "transition"])
    return check.join(t[["adj_p_value", "p_value", "hr_p_value", "flag"]], on=["campaign_id", "transition"])


def campaign_summary(rows: pd.DataFrame, alpha: float) -> dict:
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
    out = {
        "estimates": int(len(rows)), "estimates_undefined": int((~defined).sum()),
        "coverage_adj_95_all": float(rows.loc[defined, "adj_covers_truth"].mean()),
        "coverage_adj_95_unconfounded": float(rows.loc[defined & ~conf, "adj_covers_truth"].mean()),
        "coverage_naive_95_unconfounded": float(rows.loc[defined & ~conf, "naive_covers_truth"].mean()),
        "false_positive_rate_zero_effect": float((z["adj_p_value"] < alpha).mean()),
        "false_positive_rate_zero_effect_incl_confounded": float((zc["adj_p_value"] < alpha).mean()),
        "false_positive_rate_zero_effect_hr": float((z["hr_p_value"].dropna() < alpha).mean()),
        "false_positive_rate_confounded_naive": float((rows.loc[conf, "p_value"] < alpha).mean()),
        "false_positive_rate_confounded_adjusted": float((rows.loc[conf & defined, "adj_p_value"] < alpha).mean()),
        "q_value_false_discoveries_zero_effect": float((zc["q_value"] < alpha).mean()),
        "power_planted_effects": float((eff["adj_p_value"] < alpha).mean()),
        "per_campaign": per.to_dict("records"),
    }
    out["headline"] = [
        ("campaign rows: coverage of the adjusted 95% CI", out["coverage_adj_95_all"], "0.93-0.97",
         0.93 <= out["coverage_adj_95_all"] <= 0.97),
        ("campaign rows: FPR, zero-effect campaigns (adjusted p)", out["false_positive_rate_zero_effect"], "<= 0.06",
         out["false_positive_rate_zero_effect"] <= 0.06),
        ("campaign rows: FPR, zero-effect campaigns (Cox HR p)", out["false_positive_rate_zero_effect_hr"], "",
         None),
    ]
    return out


# --------------------------------------------------------------------------- channel rows
def channel_truth(sample) -> pd.DataFrame:
    """channel, transition, is_zero_effect for every channel × transition the kit tests.

    The generator's truth for every pair when it writes it (``truth["pair_effects"]``,
    rows with ``level == "channel"``); otherwise derived from the planted campaigns: a
    channel has no effect at a transition unless a campaign of that channel has a
    non-zero planted effect there (background campaigns have none)."""
    from abmkit.schema import CHANNELS
    truth = sample.truth
    pe = truth.get("pair_effects")
    if pe is not None and (pe["level"] == "channel").any():
        t = pe[pe["level"] == "channel"].rename(columns={"unit": "_unit"})
        return (t.assign(channel=t["_unit"])[["channel", "transition", "is_zero_effect", "att_diff"]]
                .assign(truth_source="pair_effects"))
    eff = pd.concat([truth["effects"], truth.get("background_effects", pd.DataFrame())], ignore_index=True)
    planted = eff.loc[~eff["is_zero_effect"].astype(bool), ["channel", "transition"]].drop_duplicates()
    grid = pd.MultiIndex.from_product([list(CHANNELS), TRANSITIONS], names=["channel", "transition"]).to_frame(
        index=False)
    hit = grid.merge(planted.assign(_p=True), on=["channel", "transition"], how="left")["_p"].fillna(False)
    return grid.assign(is_zero_effect=~hit.to_numpy(dtype=bool), att_diff=np.nan,
                       truth_source="derived from planted campaigns")


def channel_rows(ctx: Replicate, alpha: float) -> pd.DataFrame:
    t = ctx.influence.table
    ch = t[t["level"] == "channel"]
    cols = ["unit", "transition", "n_treated", "n_control", "diff", "p_value", "adj_diff", "adj_p_value",
            "hazard_ratio", "hr_p_value", "q_value", "flag_reason"]
    out = ch[cols].rename(columns={"unit": "channel"}).merge(channel_truth(ctx.sample), on=["channel", "transition"],
                                                             how="left")
    return out.assign(seed=ctx.seed)


def channel_summary(rows: pd.DataFrame, alpha: float) -> dict:
    zero = rows[rows["is_zero_effect"].fillna(True).astype(bool)]
    eff = rows[~rows["is_zero_effect"].fillna(True).astype(bool)]

    def fpr(col, frame=zero):
        p = frame[col].dropna()
        return float((p < alpha).mean()) if len(p) else float("nan"), int(len(p))

    out = {"rows": int(len(rows)), "zero_effect_rows": int(len(zero)),
           "truth_source": str(rows["truth_source"].dropna().iloc[0]) if rows["truth_source"].notna().any() else ""}
    for name, col in (("naive", "p_value"), ("adjusted", "adj_p_value"), ("hr", "hr_p_value"), ("q", "q_value")):
        out[f"false_positive_rate_{name}"], out[f"tested_{name}"] = fpr(col)
        out[f"power_{name}"] = fpr(col, eff)[0]
    per = zero.groupby(["channel", "transition"]).agg(
        n=("p_value", "size"),
        naive=("p_value", lambda p: float((p.dropna() < alpha).mean()) if p.notna().any() else np.nan),
        adjusted=("adj_p_value", lambda p: float((p.dropna() < alpha).mean()) if p.notna().any() else np.nan),
        hr=("hr_p_value", lambda p: float((p.dropna() < alpha).mean()) if p.notna().any() else np.nan),
        gmean_hr=("hazard_ratio", lambda h: float(np.exp(np.log(h.dropna()).mean())) if h.notna().any() else np.nan),
    ).reset_index()
    out["per_channel_zero_effect"] = per.to_dict("records")
    out["headline"] = [
        ("channel rows: FPR, no-effect channels (adjusted p)", out["false_positive_rate_adjusted"], "<= 0.06",
         out["false_positive_rate_adjusted"] <= 0.06),
        ("channel rows: FPR, no-effect channels (Cox HR p)", out["false_positive_rate_hr"], "<= 0.06",
         out["false_positive_rate_hr"] <= 0.06),
        ("channel rows: FPR, no-effect channels (naive p)", out["false_positive_rate_naive"], "", None),
    ]
    return out


# --------------------------------------------------------------------------- all pairs
def all_pair_rows(ctx: Replicate, alpha: float) -> pd.DataFrame:
    """Every campaign and channel row beside its truth (``truth["pair_effects"]``: the
    generator's common-random-numbers ATT of every unit × transition); empty when the
    generator does not write it."""
    pe = ctx.sample.truth.get("pair_effects")
    if pe is None:
        return pd.DataFrame()
    t = ctx.influence.table
    cols = ["level", "unit", "transition", "n_treated", "adj_diff", "adj_diff_low", "adj_diff_high", "adj_p_value",
            "hr_p_value", "q_value"]
    m = t[cols].merge(pe[["level", "unit", "transition", "att_diff", "is_zero_effect"]],
                      on=["level", "unit", "transition"], how="left")
    return m.assign(seed=ctx.seed)


def all_pair_summary(rows: pd.DataFrame, alpha: float) -> dict:
    if rows.empty:
        return {"note": "the generator writes no pair_effects: not scored", "headline": []}
    scored = rows[rows["is_zero_effect"].notna()]
    zero = scored[scored["is_zero_effect"].astype(bool)]
    sig = scored["q_value"] < alpha
    false_sig = sig & scored["is_zero_effect"].astype(bool)
    per_rep = pd.DataFrame({"seed": scored["seed"], "sig": sig, "false": false_sig}).groupby("seed").sum()
    fdp = (per_rep["false"] / per_rep["sig"].clip(lower=1))
    eff = scored[~scored["is_zero_effect"].astype(bool) & scored["att_diff"].notna() & scored["adj_diff_low"].notna()]
    out = {
        "rows": int(len(rows)), "rows_scored": int(len(scored)), "zero_effect_rows": int(len(zero)),
        "zero_effect_adj_p_below_alpha": float((zero["adj_p_value"].dropna() < alpha).mean()),
        "zero_effect_hr_p_below_alpha": float((zero["hr_p_value"].dropna() < alpha).mean()),
        "zero_effect_q_below_alpha": float((zero["q_value"].dropna() < alpha).mean()),
        "significant_rows": int(sig.sum()), "false_discoveries": int(false_sig.sum()),
        "false_discovery_rate": float(fdp.mean()),
        "effect_rows": int(len(eff)),
        "effect_rows_adj_coverage": float(((eff["adj_diff_low"] <= eff["att_diff"])
                                           & (eff["att_diff"] <= eff["adj_diff_high"])).mean()) if len(eff) else np.nan,
    }
    out["headline"] = [
        ("all pairs: false discovery rate (q < alpha, mean over samples)", out["false_discovery_rate"], "<= alpha",
         out["false_discovery_rate"] <= alpha),
        ("all pairs: zero-effect rows with adjusted p < alpha", out["zero_effect_adj_p_below_alpha"], "", None),
    ]
    return out


# --------------------------------------------------------------------------- CI / p coherence
#: test -> (estimate's CI low, CI high, p-value, the value "no effect" takes)
COHERENCE_TESTS = {
    "naive difference (Newcombe CI, its p)": ("diff_low", "diff_high", "p_value", 0.0),
    "naive ratio (log-adjusted CI, its p)": ("ratio_low", "ratio_high", "ratio_p_value", 1.0),
    "adjusted difference (t reference)": ("adj_diff_low", "adj_diff_high", "adj_p_value", 0.0),
    "Cox hazard ratio (t reference)": ("hr_low", "hr_high", "hr_p_value", 1.0),
}


def ci_p_rows(ctx: Replicate, alpha: float) -> pd.DataFrame:
    """Per row (campaign and channel) and test: does the (1 - alpha) CI exclude the
    no-effect value, and is p < alpha? Both defined only."""
    t = ctx.influence.table
    out = []
    for name, (lo, hi, p, null) in COHERENCE_TESTS.items():
        if not {lo, hi, p} <= set(t.columns):
            continue
        d = t[["level", "unit", "transition", lo, hi, p]].dropna()
        out.append(pd.DataFrame({"level": d["level"].to_numpy(), "test": name,
                                 "ci_excludes_null": ((d[lo] > null) | (d[hi] < null)).to_numpy(),
                                 "p_below_alpha": (d[p] < alpha).to_numpy()}))
    return pd.concat(out, ignore_index=True).assign(seed=ctx.seed)


def ci_p_summary(rows: pd.DataFrame, alpha: float) -> dict:
    rows = rows.assign(disagree=rows["ci_excludes_null"] != rows["p_below_alpha"])
    per = rows.groupby(["test", "level"], sort=False).agg(
        rows=("disagree", "size"), significant_by_ci=("ci_excludes_null", "sum"),
        significant_by_p=("p_below_alpha", "sum"), disagreements=("disagree", "sum")).reset_index()
    out = {"rows": int(len(rows)), "disagreements": int(rows["disagree"].sum()), "per_test": per.to_dict("records")}
    out["headline"] = [("CI/p: rows where 'CI excludes no effect' != 'p < alpha' (all tests, all rows)",
                        out["disagreements"], "0", out["disagreements"] == 0)]
    return out


#: name -> (rows(ctx, alpha), summarise(rows, alpha)); sections run in this order
SECTIONS = {
    "campaign": (campaign_rows, campaign_summary),
    "channel": (channel_rows, channel_summary),
    "all_pairs": (all_pair_rows, all_pair_summary),
    "ci_p": (ci_p_rows, ci_p_summary),
}


def _register_landmark_section() -> None:
    """Issue 19 item 5 (bench/calibration_landmark.py): the pre-landmark case's bias
    under the landmark and the sequential-trial designs."""
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import calibration_landmark as cl
    SECTIONS["landmark_bias"] = (cl.landmark_bias_rows, cl.landmark_bias_summary)


_register_landmark_section()


def one_replicate(args) -> dict:
    seed, n_accounts, alpha, sections = args
    warnings.simplefilter("ignore")
    t0 = time.process_time()
    ctx = make_replicate(seed, n_accounts, alpha)
    out = {name: SECTIONS[name][0](ctx, alpha).assign(seed=seed) for name in sections}
    out["_cpu"] = time.process_time() - t0
    return out


def _print_table(name: str, out: dict) -> None:
    print(f"\n[{name}]")
    for k, v in out.items():
        if k == "headline" or isinstance(v, list):
            continue
        print(f"  {k:<52} {v:.4f}" if isinstance(v, float) else f"  {k:<52} {v}")
    for k, v in out.items():
        if isinstance(v, list) and k != "headline" and v:
            print(pd.DataFrame(v).to_string(index=False, float_format=lambda x: f"{x:.3f}"))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--accounts", type=int, default=500)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--first-seed", type=int, default=1000)
    ap.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated sections to run")
    ap.add_argument("--out", default=None, help="results file (default bench/results/calibration.json)")
    args = ap.parse_args(argv)
    sections = [s for s in args.sections.split(",") if s]
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        ap.error(f"unknown section(s) {unknown}; known: {list(SECTIONS)}")
    t0 = time.perf_counter()
    jobs = [(args.first_seed + i, args.accounts, args.alpha, sections) for i in range(args.reps)]
    with Pool(args.workers) as pool:
        parts = list(tqdm(pool.imap_unordered(one_replicate, jobs), total=len(jobs), desc="replicates"))
    out = {"replicates": len(parts), "accounts_per_sample": args.accounts, "alpha": args.alpha,
           "first_seed": args.first_seed, "seconds": round(time.perf_counter() - t0, 1),
           "cpu_seconds_per_replicate": round(float(np.mean([p["_cpu"] for p in parts])), 2),
           "targets": {"coverage": [0.93, 0.97], "false_positive_rate_max": 0.06}}
    for name in sections:
        rows = pd.concat([p[name] for p in parts], ignore_index=True)
        out[name] = SECTIONS[name][1](rows, args.alpha)
    print(f"calibration: {out['replicates']} samples x {args.accounts} accounts, alpha {args.alpha}, "
          f"{out['seconds']} s wall, {out['cpu_seconds_per_replicate']} CPU s per replicate")
    for name in sections:
        _print_table(name, out[name])
    head = pd.DataFrame([h for name in sections for h in out[name].get("headline", [])],
                        columns=["measure", "value", "target", "met"])
    print("\nheadline")
    print(head.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    res = Path(args.out) if args.out else Path(__file__).resolve().parent / "results" / "calibration.json"
    res.parent.mkdir(parents=True, exist_ok=True)
    res.write_text(json.dumps(out, indent=2, default=lambda v: v.item() if hasattr(v, "item") else str(v)))
    return out


if __name__ == "__main__":
    main()
