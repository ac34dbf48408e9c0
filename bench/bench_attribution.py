"""Attribution benchmark: abmkit vs ChannelAttribution, side by side in one run.

Data (generated here, seeded): N touchpoints, ~50 per account, ~35 % of accounts
with an opportunity, 12 channels, two years of history. For each size:

- abmkit position models (first, last, linear, time-decay, U, W, J, inverse-J on
  opportunity_created journeys, full-path on closed_won journeys): journeys built
  straight from the touchpoint and opportunity tables, conversion / pipeline /
  revenue credit per channel;
- abmkit Markov order 1, 2, 3 on the path table (parsing included) and Markov /
  Shapley straight from the touch tables;
- abmkit compare_models with 1000 bootstrap replicates vs one run (n_boot=0);
- ChannelAttribution (GPL-3, bench-time peer only; requirements-peer.txt):
  heuristic_models and markov_model order 1, 2, 3 on the path table built once.

Every row: tool, size, seconds (wall, and CPU seconds of this process, steadier on a
shared machine), peak MB (RSS growth above the level before the step,
sampled every 5 ms), ratio to its ChannelAttribution counterpart. Prints a table and
writes bench/results/bench_attribution.json.

Usage: python bench/bench_attribution.py [--sizes 100000 1000000 10000000] [--skip-peer]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import resource
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

from abmkit.attribution import (compare_models, markov_attribution, read_paths, shapley_attribution, write_paths)
from abmkit.attribution.engine import channel_credits_from, touch_credits
from abmkit.journeys import conversion_journeys, milestone_journeys
from abmkit.schema import CHANNEL_DTYPE, TOUCH_TYPE_DTYPE, Dataset, empty_table

RESULTS = Path(__file__).resolve().parent / "results"
POSITION = ("first_touch", "last_touch", "linear", "time_decay", "u_shaped", "w_shaped", "j_shaped", "inverse_j")


class Peak:
    """Peak RSS growth (MB) while the block runs."""

    def __enter__(self):
        self.proc = psutil.Process()
        self.base = self.proc.memory_info().rss
        self.peak = self.base
        self.maxrss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        self.stop = False
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        self.t0 = time.perf_counter()
        self.cpu0 = time.process_time()
        return self

    def _watch(self):
        while not self.stop:
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.005)

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
        self.cpu_seconds = time.process_time() - self.cpu0  # steadier than wall time on a shared machine
        self.stop = True
        self.thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)
        # code holding the GIL (C extensions) starves the sampler; a new lifetime peak still shows
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        if maxrss > self.maxrss0:
            self.peak = max(self.peak, maxrss)
        self.mb = (self.peak - self.base) / 2**20
        return False


def generate(n_touch: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    n_acc = max(n_touch // 50, 10)
    acc_ids = np.array([f"A{i:07d}" for i in range(n_acc)], dtype=object)
    t0 = pd.Timestamp("2025-01-01", tz="UTC").value
    span = 730 * 86_400 * 10**9
    acc = rng.integers(0, n_acc, n_touch)
    when = t0 + (rng.random(n_touch) * span).astype(np.int64) // 10**9 * 10**9
    p = rng.dirichlet(np.ones(12) * 2)
    channel = rng.choice(12, n_touch, p=p).astype(np.int8)
    ttype = rng.integers(0, len(TOUCH_TYPE_DTYPE.categories), n_touch).astype(np.int8)
    camp_pool = np.array([f"K{i:03d}" for i in range(200)], dtype=object)
    tp = pd.DataFrame({
        "touchpoint_id": np.char.add("T", np.arange(n_touch).astype("U10")).astype(object),
        "occurred_at": pd.to_datetime(when, utc=True),
        "channel": pd.Categorical.from_codes(channel, dtype=CHANNEL_DTYPE),
        "touch_type": pd.Categorical.from_codes(ttype, dtype=TOUCH_TYPE_DTYPE),
        "contact_id": np.full(n_touch, None, dtype=object),
        "account_id": acc_ids[acc],
        "campaign_id": camp_pool[rng.integers(0, 200, n_touch)],
        "engagement_seconds": np.full(n_touch, np.nan),
    })
    n_opp = int(0.35 * n_acc)
    opp_acc = rng.choice(n_acc, n_opp, replace=False)
    created = t0 + span // 3 + (rng.random(n_opp) * (span * 2 // 3)).astype(np.int64)
    closed = created + rng.integers(20, 200, n_opp) * 86_400 * 10**9
    won = rng.random(n_opp) < 0.3
    opp = pd.DataFrame({
        "opportunity_id": np.char.add("O", np.arange(n_opp).astype("U10")).astype(object),
        "account_id": acc_ids[opp_acc], "created_at": pd.to_datetime(created, utc=True),
        "closed_at": pd.to_datetime(closed, utc=True), "is_closed": pd.array(np.ones(n_opp, bool), "boolean"),
        "is_won": pd.array(won, "boolean"), "amount": rng.lognormal(10, 1, n_opp).round(2),
        "opportunity_type": "new_business"})
    mqa_acc = rng.choice(n_acc, n_acc // 2, replace=False)
    mqa = pd.DataFrame({"account_id": acc_ids[mqa_acc],
                        "mqa_at": pd.to_datetime(t0 + (rng.random(len(mqa_acc)) * span).astype(np.int64), utc=True)})
    accounts = pd.DataFrame({"account_id": acc_ids, "account_name": acc_ids})
    ds = Dataset(accounts=accounts, contacts=empty_table("contacts"), touchpoints=tp, campaigns=empty_table("campaigns"),
                 opportunities=opp, revenue=empty_table("revenue"))
    return ds, mqa


def position_run(ds, mqa):
    # both milestones' journeys from one pass (ids hashed once, touches sorted once)
    js = milestone_journeys(ds, ("opportunity_created", "closed_won"), mqa_dates=mqa, non_converting=False)
    cj, cw = js["opportunity_created"], js["closed_won"]
    out = [channel_credits_from(cj, touch_credits(cj, m)).assign(model=m) for m in POSITION]
    out.append(channel_credits_from(cw, touch_credits(cw, "full_path")).assign(model="full_path"))
    return pd.concat(out)


def quiet(f, *a, **k):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return f(*a, **k)


def run_size(n: int, peer, rows: list, notes: dict):
    ds, mqa = generate(n)
    size = len(ds.touchpoints)

    def rec(tool, step, m, ratio_to=None, **extra):
        rows.append({"tool": tool, "step": step, "size": size, "seconds": round(m.seconds, 3),
                     "cpu_seconds": round(m.cpu_seconds, 3),
                     "peak_mb": round(m.mb, 1), "ratio_to": ratio_to, **extra})
        print(f"  {tool:<18} {step:<40} {size:>10,} {m.seconds:9.2f}s {m.cpu_seconds:8.2f}s cpu {m.mb:9.0f} MB",
              flush=True)

    with Peak() as m:
        position_run(ds, mqa)
    rec("abmkit", "position models (9) from touch tables", m, "ca heuristic_models")
    # same run with account_id dictionary-encoded (categorical), as parquet stores repeated ids:
    # journeys then skip hashing millions of id strings
    tp_cat = ds.touchpoints.assign(account_id=pd.Categorical(ds.touchpoints["account_id"]))
    ds_cat = Dataset(accounts=ds.accounts, contacts=ds.contacts, touchpoints=tp_cat, campaigns=ds.campaigns,
                     opportunities=ds.opportunities, revenue=ds.revenue)
    with Peak() as m:
        position_run(ds_cat, mqa)
    rec("abmkit", "position models (9), account_id categorical", m, "ca heuristic_models")
    del ds_cat, tp_cat
    with Peak() as m:
        cj = conversion_journeys(ds, mqa_dates=mqa)
        paths = cj.paths()
        markov_attribution(paths, 1)
    rec("abmkit", "markov o1 from touch tables", m, "ca markov o1")
    with Peak() as m:
        shapley_attribution(cj.paths())
    rec("abmkit", "shapley (exact, journeys built)", m)
    with Peak() as m:
        table = write_paths(cj, sep=">")
    rec("abmkit", "write_paths (path table build)", m)
    notes[size] = {"path_rows": len(table), "conversions": float(table.total_conversions.sum()),
                   "nulls": float(table.total_null.sum()), "journey_touches": int(len(cj.conv))}
    ours_re = {}
    for order in (1, 2, 3):
        with Peak() as m:
            ps = read_paths(table, sep=">")
            r = markov_attribution(ps, order)
        ours_re[order] = r.set_index("channel")["removal_effect"]
        rec("abmkit", f"markov o{order} on path table", m, f"ca markov o{order}")
    with Peak() as m:
        compare_models(ds, n_boot=0, mqa_dates=mqa, journeys=cj, progress=False)
    rec("abmkit", "compare_models n_boot=0 (10 models)", m)
    one = m.seconds
    with Peak() as m:
        compare_models(ds, n_boot=1000, mqa_dates=mqa, journeys=cj, progress=False)
    rec("abmkit", "compare_models n_boot=1000", m, "abmkit compare n_boot=0", ratio=round(m.seconds / one, 2))
    del cj, paths
    if peer is None:
        return
    with Peak() as m:
        quiet(peer.heuristic_models, table, "path", "total_conversions", var_value="total_conversion_value",
              sep=">", flg_pro=False)
    rec("ChannelAttribution", "heuristic_models", m)
    for order in (1, 2, 3):
        with Peak() as m:
            res = quiet(peer.markov_model, table, "path", "total_conversions", var_value="total_conversion_value",
                        var_null="total_null", order=order, out_more=True, sep=">", verbose=False, flg_pro=False)
        ca_re = res["removal_effects"].set_index("channel_name")["removal_effects_conversion"]
        diff = float((ours_re[order].reindex(ca_re.index) - ca_re).abs().max())
        rec("ChannelAttribution", f"markov o{order}", m, max_abs_removal_effect_diff=round(diff, 4))
    # ChannelAttribution's default max_step (longest observed path) truncates simulated walks;
    # untruncated, its simulation should approach our exact values
    with Peak() as m:
        res = quiet(peer.markov_model, table, "path", "total_conversions", var_value="total_conversion_value",
                    var_null="total_null", order=1, out_more=True, sep=">", verbose=False, flg_pro=False,
                    max_step=100_000)
    ca_re = res["removal_effects"].set_index("channel_name")["removal_effects_conversion"]
    diff = float((ours_re[1].reindex(ca_re.index) - ca_re).abs().max())
    rec("ChannelAttribution", "markov o1 max_step=1e5 (accuracy)", m, max_abs_removal_effect_diff=round(diff, 4))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[10**5, 10**6, 10**7])
    ap.add_argument("--skip-peer", action="store_true")
    args = ap.parse_args()
    peer = None
    if not args.skip_peer:
        try:
            peer = quiet(__import__, "ChannelAttribution")
        except ImportError:
            print("ChannelAttribution not installed (pip install -r requirements-peer.txt): peer columns skipped")
    rows, notes = [], {}
    load = {}
    for n in args.sizes:
        print(f"== {n:,} touchpoints (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus)", flush=True)
        before = os.getloadavg()[0]
        run_size(n, peer, rows, notes)
        load[n] = {"load_avg_1min_before": round(before, 2), "load_avg_1min_after": round(os.getloadavg()[0], 2)}
    df = pd.DataFrame(rows)
    # ratios to the side-by-side counterpart at the same size
    names = {"heuristic_models": "ca heuristic_models", "markov o1": "ca markov o1", "markov o2": "ca markov o2",
             "markov o3": "ca markov o3"}
    ca = {(r["size"], names.get(r["step"])): (r["seconds"], r["cpu_seconds"])
          for r in rows if r["tool"] == "ChannelAttribution"}
    ratio, ratio_cpu = [], []
    for r in rows:
        if r.get("ratio") is not None and not pd.isna(r.get("ratio")):
            ratio.append(r["ratio"])
            ratio_cpu.append(None)
        elif r["ratio_to"] and (r["size"], r["ratio_to"]) in ca:
            wall, cpu = ca[(r["size"], r["ratio_to"])]
            ratio.append(round(r["seconds"] / wall, 3))
            ratio_cpu.append(round(r["cpu_seconds"] / cpu, 3) if cpu > 0 else None)
        else:
            ratio.append(None)
            ratio_cpu.append(None)
    df["ratio"] = ratio
    df["ratio_cpu"] = ratio_cpu
    cols = ["tool", "step", "size", "seconds", "cpu_seconds", "peak_mb", "ratio", "ratio_cpu", "ratio_to",
            "max_abs_removal_effect_diff"]
    df = df.reindex(columns=cols)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(df.to_string(index=False))
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {"machine": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "note": "ratio = abmkit seconds / ChannelAttribution seconds for the named counterpart "
                    "(ratio_cpu: the same with CPU seconds) "
                    "(compare_models: n_boot=1000 / n_boot=0); peak_mb = RSS growth during the step",
            "data": notes, "load": load,
            "contention": "the machine is shared (other jobs run in parallel); both tools run in the same "
                          "process one after the other, so ratios are side by side but not contention-free"}
    (RESULTS / "bench_attribution.json").write_text(json.dumps({"meta": meta, "rows": df.to_dict("records")},
                                                               indent=2, default=str))


if __name__ == "__main__":
    main()
