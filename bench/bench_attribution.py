"""Attribution benchmark: abmkit vs polars and ChannelAttribution, side by side in one run.

Data (generated here, seeded): N touchpoints, ~50 per account, ~35 % of accounts
with an opportunity, 12 channels, two years of history. The touches' ``account_id`` is
a pandas Categorical, as in the resolved dataset (:func:`abmkit.prepare`, done once
per size and not timed: the hashing of the ids happens there). For each size:

- abmkit, 5 position models (first, last, linear, U-shaped, time-decay on
  opportunity_created journeys, lookback 365 days): journeys built straight from the
  resolved touch and opportunity tables, conversion / pipeline / revenue per channel;
- polars (bench-time peer only; requirements-bench.txt), the same 5 models on the same
  in-memory tables with LazyFrames (join on account, window filter, per-conversion
  windows ordered by time then touchpoint_id, group by channel), in its in-memory and
  streaming engines, POLARS_MAX_THREADS=2 (set here unless already set). The tables are
  converted to polars once per size (timed on its own row, like ``prepare``). Its
  channel credits are checked against abmkit's (1e-6 relative) at every size;
- abmkit, all position models (the 5 + W, J, inverse-J on opportunity_created and
  full-path on closed_won, MQA dates given);
- abmkit Markov order 1 from the touch tables, order 1, 2, 3 on the path table (parsing
  included), Shapley (data-driven, journeys built), write_paths;
- Markov order selection: abmkit ``markov_attribution(read_paths(table), order="auto")``
  (5-fold held-out likelihood over orders 1..4, then the chosen model) vs
  ChannelAttribution's ``auto_markov_model`` with the same ``max_order`` (4), round-robin
  on the same path table; target at 10^7: abmkit <= 0.1x its time, < 2 GB peak;
- compare_models (default models: 8 position models, Markov and the data-driven
  Shapley, both re-estimated in every replicate) with 1000 bootstrap replicates vs one
  run (n_boot=0); target at 10^7: ratio <= 10;
- ChannelAttribution (GPL-3, bench-time peer only; requirements-peer.txt):
  heuristic_models and markov_model order 1, 2, 3 on the path table built once;
- stability: the abmkit position runs again in 3 fresh subprocesses (new data, new
  allocator state), best of the repeats in each.

Every step runs ``--repeats`` times (default 3): wall seconds min / median / max, CPU
seconds of this process (all threads) median, peak MB (RSS growth above the level
before the step, sampled every 5 ms; max over the repeats). A step and its peer
counterparts run round-robin (abmkit, polars, ChannelAttribution, abmkit, ...), so on a
shared machine they see the same load. Then a table of ratios with their targets (median
wall seconds, and the same with CPU seconds). Writes bench/results/bench_attribution.json.

Usage: python bench/bench_attribution.py [--sizes 100000 1000000 10000000] [--repeats 3]
       [--skip-peer] [--skip-polars] [--processes 3] [--only all|datadriven]
(``--only datadriven``: just the order-selection and bootstrap-ratio rows.)
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("POLARS_MAX_THREADS", "2")  # before polars is imported anywhere

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import psutil  # noqa: E402

from abmkit.attribution import (compare_models, journeys_for, markov_attribution, read_paths,  # noqa: E402
                                shapley_attribution, write_paths)
from abmkit.attribution.engine import DEFAULT_COMPARE_MODELS, channel_credits_from, touch_credits  # noqa: E402
from abmkit.journeys import conversion_journeys, milestone_journeys  # noqa: E402
from abmkit.prepared import prepare  # noqa: E402
from abmkit.schema import CHANNEL_DTYPE, TOUCH_TYPE_DTYPE, Dataset, empty_table  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
POSITION = ("first_touch", "last_touch", "linear", "time_decay", "u_shaped", "w_shaped", "j_shaped", "inverse_j")
#: the position models polars computes too
FIVE = ("first_touch", "last_touch", "linear", "u_shaped", "time_decay")
LOOKBACK_DAYS = 365
HALF_LIFE_DAYS = 7.0
CHECK_RTOL = 1e-6
STEP_FIVE = "position models (5) from touch tables"
STEP_ALL = "position models (9) from touch tables"
STEP_AUTO = "markov order='auto' on path table (select + fit)"
STEP_CA_AUTO = "auto_markov_model"
STEP_BOOT0 = "compare_models n_boot=0 (10 models)"
STEP_BOOT = "compare_models n_boot=1000"
#: the orders both tools compare in the order-selection row
AUTO_MAX_ORDER = 4


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
    """(Dataset, MQA dates) with the touches' ``account_id`` categorical (codes of the
    accounts table's ids, as the resolved dataset encodes them)."""
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
        "account_id": pd.Categorical.from_codes(acc.astype(np.int32), categories=pd.Index(acc_ids)),
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


def resolved(ds, mqa):
    """The resolved dataset of the generated tables (no contacts to map), with the
    generated MQA dates as its MQA dates (memoised before any timing)."""
    no_mapping = pd.DataFrame({"contact_id": pd.Series([], dtype=object), "account_id": pd.Series([], dtype=object)})
    data = prepare(ds, mapping=no_mapping)
    data.memo(("mqa_dates",), lambda: mqa)
    if len(data.mqa_dates) != len(mqa):
        print("  note: the generated MQA dates were not taken; the MQA rule's dates are used", flush=True)
    assert isinstance(data.touches["account_id"].dtype, pd.CategoricalDtype)
    return data


def position_five(data):
    """abmkit: the 5 models polars computes too (opportunity_created, no MQA needed)."""
    cj = milestone_journeys(data, ("opportunity_created",), lookback_days=LOOKBACK_DAYS, non_converting=False,
                            with_mqa=False)["opportunity_created"]
    return {m: channel_credits_from(cj, touch_credits(cj, m, half_life_days=HALF_LIFE_DAYS)) for m in FIVE}


def position_run(data):
    """abmkit: every position model; both milestones' journeys from one pass."""
    js = milestone_journeys(data, ("opportunity_created", "closed_won"), lookback_days=LOOKBACK_DAYS,
                            non_converting=False, with_mqa=True)
    cj, cw = js["opportunity_created"], js["closed_won"]
    out = [channel_credits_from(cj, touch_credits(cj, m)).assign(model=m) for m in POSITION]
    out.append(channel_credits_from(cw, touch_credits(cw, "full_path")).assign(model="full_path"))
    return pd.concat(out)


# --- polars peer -----------------------------------------------------------------------
def polars_tables(data):
    """The resolved touches and the opportunities as polars DataFrames (Arrow copies of
    the same in-memory tables; account_id stays dictionary-encoded)."""
    import polars as pl
    touches = pl.from_pandas(data.touches[["touchpoint_id", "account_id", "occurred_at", "channel"]])
    opps = pl.from_pandas(data.opportunities[["opportunity_id", "account_id", "created_at", "is_won", "amount"]])
    return touches, opps


def polars_position_query(touches, opps, lookback_days: float = LOOKBACK_DAYS, half_life_days: float = HALF_LIFE_DAYS):
    """LazyFrame: channel × (conversions, pipeline, revenue) credit of the 5 models, with
    abmkit's rules: journey = the account's touches in [created_at − lookback,
    created_at] (both inclusive), ordered by time then touchpoint_id; U-shaped 40/40/20
    (n = 1 → 100 %, n = 2 → 50/50); time-decay 2^(−age/half-life), age to the milestone,
    normalised per conversion."""
    import polars as pl
    amount = pl.col("amount").fill_null(0.0)
    conv = opps.lazy().with_row_index("conv").select(
        "conv", pl.col("account_id").cast(touches.schema["account_id"]), "created_at",
        amount.alias("pipeline"), pl.when(pl.col("is_won").fill_null(False)).then(amount).otherwise(0.0).alias("revenue"))
    at, t = pl.col("created_at"), pl.col("occurred_at")
    look = pl.duration(nanoseconds=int(round(lookback_days * 86_400 * 10**9)), time_unit="ns")
    j = (conv.join(touches.lazy().select("account_id", "occurred_at", "touchpoint_id", "channel"), on="account_id")
         .filter(t.is_between(at - look, at, closed="both")))
    age = (at - t).dt.total_nanoseconds() / (86_400 * 10**9)
    j = j.with_columns(n=pl.len().over("conv"),
                       pos=pl.int_range(pl.len()).over("conv", order_by=["occurred_at", "touchpoint_id"]),
                       w=pl.lit(2.0).pow(-(age - age.min().over("conv")) / half_life_days))
    n, pos = pl.col("n"), pl.col("pos")
    first, last = pos == 0, pos == n - 1
    j = j.with_columns(
        first_touch=first.cast(pl.Float64), last_touch=last.cast(pl.Float64), linear=1.0 / n,
        u_shaped=pl.when(n == 1).then(1.0).when(n == 2).then(0.5).when(first | last).then(0.4)
        .otherwise(0.2 / (n - 2)),
        time_decay=pl.col("w") / pl.col("w").sum().over("conv"))
    aggs = [(pl.col(m) if v == "conversions" else pl.col(m) * pl.col(v)).sum().alias(f"{m}|{v}")
            for m in FIVE for v in ("conversions", "pipeline", "revenue")]
    return j.group_by("channel").agg(aggs)


def polars_run(tables, engine: str):
    return polars_position_query(*tables).collect(engine=engine)


def check_polars(ours: dict, theirs) -> float:
    """Largest relative difference between abmkit's and polars' channel credits
    (5 models × conversions / pipeline / revenue × every channel)."""
    import polars as pl
    p = theirs.with_columns(pl.col("channel").cast(pl.String)).to_pandas().set_index("channel")
    worst = 0.0
    for m in FIVE:
        a = ours[m].set_index("channel")
        for v in ("conversions", "pipeline", "revenue"):
            x = a[v].to_numpy(dtype=float)
            y = p[f"{m}|{v}"].reindex(a.index).fillna(0.0).to_numpy(dtype=float)
            if set(p.index) - set(a.index):
                return float("inf")
            scale = np.maximum(np.abs(x), np.abs(y))
            rel = np.divide(np.abs(x - y), scale, out=np.zeros_like(x), where=scale > 0)
            worst = max(worst, float(rel.max()) if len(rel) else 0.0)
    return worst


# --- timing -------------------------------------------------------------------------------
def quiet(f, *a, **k):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return f(*a, **k)


def repeat(f, repeats: int):
    """(last result, [Peak per run]); the previous result is dropped before each run."""
    out, runs = interleaved({"f": f}, repeats)
    return out["f"], runs["f"]


def interleaved(steps: dict, repeats: int):
    """Run ``steps`` (name → function) round-robin ``repeats`` times, so that a tool and its
    peer see the same load on a shared machine: ({name: last result}, {name: [Peak]})."""
    out, runs = dict.fromkeys(steps), {k: [] for k in steps}
    for _ in range(repeats):
        for k, f in steps.items():
            out[k] = None
            gc.collect()
            with Peak() as m:
                out[k] = f()
            runs[k].append(m)
    return out, runs


def stats(values):
    v = np.sort(np.asarray(values, dtype=float))
    return float(v[0]), float(np.median(v)), float(v[-1])


def child(n: int, repeats: int):
    """One fresh process: generate, prepare, time the abmkit position runs; one JSON line."""
    ds, mqa = generate(n)
    data = resolved(ds, mqa)
    del ds
    out = {}
    for step, f in ((STEP_FIVE, position_five), (STEP_ALL, position_run)):
        _, runs = repeat(lambda f=f: f(data), repeats)
        out[step] = {"seconds": [m.seconds for m in runs], "cpu_seconds": [m.cpu_seconds for m in runs]}
    print("CHILD " + json.dumps(out), flush=True)


def run_size(n: int, peer, use_polars: bool, repeats: int, processes: int, rows: list, notes: dict, checks: dict,
             only: str = "all"):
    ds, mqa = generate(n)
    size = len(ds.touchpoints)

    def rec(tool, step, runs, ratio_to=None, **extra):
        lo, med, hi = stats([m.seconds for m in runs])
        cpu = stats([m.cpu_seconds for m in runs])[1]
        mb = max(m.mb for m in runs)
        rows.append({"tool": tool, "step": step, "size": size, "runs": len(runs), "min_s": round(lo, 3),
                     "median_s": round(med, 3), "max_s": round(hi, 3), "cpu_median_s": round(cpu, 3),
                     "peak_mb": round(mb, 1), "ratio_to": ratio_to, **extra})
        print(f"  {tool:<18} {step:<46} {size:>10,} {lo:7.3f} {med:7.3f} {hi:7.3f} s  cpu {cpu:7.3f} s "
              f"{mb:7.0f} MB", flush=True)

    print(f"  {'tool':<18} {'step':<46} {'size':>10} {'min':>7} {'median':>7} {'max':>7}", flush=True)
    with Peak() as m:
        data = resolved(ds, mqa)
    rec("abmkit", "prepare (resolve touches, once; not in rows below)", [m])
    del ds
    # the path table the peer reads (timed below, on its own row)
    table = write_paths(conversion_journeys(data, lookback_days=LOOKBACK_DAYS), sep=">")
    if only == "datadriven":
        data_driven_rows(data, table, peer, repeats, rec, notes, size)
        return

    # position models: abmkit, polars and ChannelAttribution's heuristics run round-robin
    steps = {"five": lambda: position_five(data), "all": lambda: position_run(data)}
    tables = None
    if use_polars:
        import polars as pl
        with Peak() as m:
            tables = polars_tables(data)
        rec("polars", "from_pandas (tables to polars, once)", [m], threads=pl.thread_pool_size())
        for engine in ("in-memory", "streaming"):
            steps[engine] = lambda engine=engine: polars_run(tables, engine)
    if peer is not None:
        steps["ca"] = lambda: quiet(peer.heuristic_models, table, "path", "total_conversions",
                                    var_value="total_conversion_value", sep=">", flg_pro=False)
    res, runs = interleaved(steps, repeats)
    rec("abmkit", STEP_FIVE, runs["five"], "polars 5 models")
    rec("abmkit", STEP_ALL, runs["all"], "ca heuristic_models")
    for engine in ("in-memory", "streaming"):
        if engine in steps:
            rec("polars", f"5 position models, lazy {engine} engine", runs[engine], threads=pl.thread_pool_size())
            diff = check_polars(res["five"], res[engine])
            checks.setdefault(size, {})[engine] = diff
            print(f"  check: polars ({engine}) channel credits == abmkit's, 5 models x conversions/pipeline/"
                  f"revenue x channels at {size:,}: max relative difference {diff:.2e} "
                  f"({'OK' if diff <= CHECK_RTOL else 'FAILED'}, tolerance {CHECK_RTOL:g})", flush=True)
    if "ca" in steps:
        rec("ChannelAttribution", "heuristic_models", runs["ca"])
    del res, tables

    cj = None

    def markov_from_touches():
        nonlocal cj
        cj = conversion_journeys(data, lookback_days=LOOKBACK_DAYS)
        return markov_attribution(cj.paths(), 1)

    def ca_markov(order, **kw):
        return lambda: quiet(peer.markov_model, table, "path", "total_conversions",
                             var_value="total_conversion_value", var_null="total_null", order=order,
                             out_more=True, sep=">", verbose=False, flg_pro=False, **kw)

    steps = {"ours": markov_from_touches}
    if peer is not None:
        steps["ca"] = ca_markov(1)
    res, runs = interleaved(steps, repeats)
    rec("abmkit", "markov o1 from touch tables", runs["ours"], "ca markov o1")
    ca_runs = {1: (res.get("ca"), runs.get("ca"))}
    _, runs = repeat(lambda: shapley_attribution(cj.paths()), repeats)
    rec("abmkit", "shapley (data-driven, exact, journeys built)", runs)
    table_again, runs = repeat(lambda: write_paths(cj, sep=">"), repeats)
    rec("abmkit", "write_paths (path table build)", runs)
    assert table_again.equals(table)
    notes[size] = {"path_rows": len(table), "conversions": float(table.total_conversions.sum()),
                   "nulls": float(table.total_null.sum()), "journey_touches": int(len(cj.conv))}
    del cj, table_again
    ours_re = {}
    for order in (1, 2, 3):
        steps = {"ours": lambda order=order: markov_attribution(read_paths(table, sep=">"), order)}
        if peer is not None and order > 1:
            steps["ca"] = ca_markov(order)
        res, runs = interleaved(steps, repeats)
        ours_re[order] = res["ours"].set_index("channel")["removal_effect"]
        rec("abmkit", f"markov o{order} on path table", runs["ours"], f"ca markov o{order}")
        if order > 1:
            ca_runs[order] = (res.get("ca"), runs.get("ca"))
    data_driven_rows(data, table, peer, repeats, rec, notes, size)
    del data
    if peer is not None:
        for order in (1, 2, 3):
            res, runs = ca_runs[order]
            ca_re = res["removal_effects"].set_index("channel_name")["removal_effects_conversion"]
            diff = float((ours_re[order].reindex(ca_re.index) - ca_re).abs().max())
            rec("ChannelAttribution", f"markov o{order}", runs, max_abs_removal_effect_diff=round(diff, 4))
        # ChannelAttribution's default max_step (longest observed path) truncates simulated walks;
        # untruncated, its simulation should approach our exact values (one run: accuracy only)
        res, runs = repeat(ca_markov(1, max_step=100_000), 1)
        ca_re = res["removal_effects"].set_index("channel_name")["removal_effects_conversion"]
        diff = float((ours_re[1].reindex(ca_re.index) - ca_re).abs().max())
        rec("ChannelAttribution", "markov o1 max_step=1e5 (accuracy)", runs, max_abs_removal_effect_diff=round(diff, 4))
    del table
    gc.collect()

    # the same abmkit position timing in fresh processes (allocator state, page cache...)
    if processes:
        per = {STEP_FIVE: [], STEP_ALL: []}
        for i in range(processes):
            proc = subprocess.run([sys.executable, __file__, "--child", str(n), "--repeats", str(repeats)],
                                  capture_output=True, text=True, env=os.environ.copy())
            line = [x for x in proc.stdout.splitlines() if x.startswith("CHILD ")]
            if proc.returncode or not line:
                raise RuntimeError(f"child process failed:\n{proc.stdout}\n{proc.stderr}")
            res = json.loads(line[-1][len("CHILD "):])
            for step in per:
                per[step].append(res[step])
        for step, procs in per.items():
            best = [min(p["seconds"]) for p in procs]
            best_cpu = [min(p["cpu_seconds"]) for p in procs]
            lo, med, hi = stats(best)
            rows.append({"tool": "abmkit", "step": f"{step}, {processes} processes", "size": size,
                         "runs": f"{processes}x{repeats}", "min_s": round(lo, 3), "median_s": round(med, 3),
                         "max_s": round(hi, 3), "cpu_median_s": round(stats(best_cpu)[1], 3),
                         "peak_mb": None, "ratio_to": None, "per_process_best_s": [round(b, 3) for b in best],
                         "per_process_s": [[round(s, 3) for s in p["seconds"]] for p in procs],
                         "per_process_best_cpu_s": [round(b, 3) for b in best_cpu],
                         "stability": round(hi / lo, 3), "stability_cpu": round(max(best_cpu) / min(best_cpu), 3)})
            print(f"  {'abmkit':<18} {step + ', best of each process':<46} {size:>10,} {lo:7.3f} {med:7.3f} {hi:7.3f} s"
                  f"  per process {[round(b, 3) for b in best]}  max/min {hi / lo:.2f} (cpu {max(best_cpu) / min(best_cpu):.2f})",
                  flush=True)


def data_driven_rows(data, table, peer, repeats: int, rec, notes: dict, size: int):
    """The order-selection row (abmkit order='auto' vs ChannelAttribution auto_markov_model,
    round-robin on the same path table) and the bootstrap rows (compare_models n_boot=1000
    vs n_boot=0)."""
    steps = {"ours": lambda: markov_attribution(read_paths(table, sep=">"), "auto")}
    if peer is not None:
        steps["ca"] = lambda: quiet(peer.auto_markov_model, table, "path", "total_conversions", "total_null",
                                    var_value="total_conversion_value", max_order=AUTO_MAX_ORDER, sep=">",
                                    verbose=False, flg_pro=False)
    res, runs = interleaved(steps, repeats)
    chosen = res["ours"].attrs.get("order")
    rec("abmkit", STEP_AUTO, runs["ours"], "ca auto_markov_model", selected_order=chosen)
    notes.setdefault(size, {})["order_selection"] = res["ours"].attrs.get("order_selection")
    if "ca" in runs:
        rec("ChannelAttribution", STEP_CA_AUTO, runs["ca"], max_order=AUTO_MAX_ORDER)
    del res
    # compare_models takes the journeys the resolved dataset memoises: build them untimed,
    # as the old bench passed journeys=
    journeys_for(data, DEFAULT_COMPARE_MODELS, lookback_days=LOOKBACK_DAYS)
    _, runs = repeat(lambda: compare_models(data, n_boot=0, lookback_days=LOOKBACK_DAYS, progress=False), repeats)
    rec("abmkit", STEP_BOOT0, runs)
    one = stats([m.seconds for m in runs])[1]
    _, runs = repeat(lambda: compare_models(data, n_boot=1000, lookback_days=LOOKBACK_DAYS, progress=False), repeats)
    rec("abmkit", STEP_BOOT, runs, "abmkit compare n_boot=0",
        ratio=round(stats([m.seconds for m in runs])[1] / one, 2))


def ratio_rows(df: pd.DataFrame, sizes) -> pd.DataFrame:
    """abmkit / peer ratios with their targets (median seconds; CPU seconds alongside)."""
    def get(tool, step, size, col="median_s"):
        r = df[(df["tool"] == tool) & (df["step"] == step) & (df["size"] == size)]
        return None if r.empty else r.iloc[0][col]

    out = []

    def add(what, size, ours, theirs, target, ours_cpu=None, theirs_cpu=None, note="", peak_mb=None,
            peak_target_mb=None):
        if ours is None or theirs is None or not theirs:
            return
        ratio = ours / theirs
        ok = None if target is None else ratio <= target
        if ok is not None and peak_target_mb is not None and peak_mb is not None:
            ok = ok and peak_mb < peak_target_mb
        out.append({"ratio": what, "size": size, "value": round(ratio, 3),
                    "cpu_value": round(ours_cpu / theirs_cpu, 3) if ours_cpu and theirs_cpu else None,
                    "target": "" if target is None else f"<= {target}" + (
                        f", peak < {peak_target_mb} MB" if peak_target_mb else ""),
                    "met": "" if ok is None else ("yes" if ok else "NO"),
                    "note": note + (f"peak {peak_mb:.0f} MB" if peak_mb is not None else "")})

    for n in sizes:
        size = int(n)
        big = size >= 10**7
        add("abmkit markov order='auto' / ChannelAttribution auto_markov_model", size,
            get("abmkit", STEP_AUTO, size), get("ChannelAttribution", STEP_CA_AUTO, size), 0.1 if big else None,
            get("abmkit", STEP_AUTO, size, "cpu_median_s"), get("ChannelAttribution", STEP_CA_AUTO, size, "cpu_median_s"),
            note=f"max_order {AUTO_MAX_ORDER} both; target at 10^7; ", peak_mb=get("abmkit", STEP_AUTO, size, "peak_mb"),
            peak_target_mb=2048 if big else None)
        add("abmkit compare_models n_boot=1000 / n_boot=0", size, get("abmkit", STEP_BOOT, size),
            get("abmkit", STEP_BOOT0, size), 10 if big else None, get("abmkit", STEP_BOOT, size, "cpu_median_s"),
            get("abmkit", STEP_BOOT0, size, "cpu_median_s"), note="target at 10^7; ",
            peak_mb=get("abmkit", STEP_BOOT, size, "peak_mb"))
        polars_steps = [s for s in ("5 position models, lazy in-memory engine", "5 position models, lazy streaming engine")
                        if get("polars", s, size) is not None]
        if polars_steps:
            best = min(polars_steps, key=lambda s: get("polars", s, size))
            add("abmkit 5 position models / polars (faster engine)", size, get("abmkit", STEP_FIVE, size),
                get("polars", best, size), 1.0, get("abmkit", STEP_FIVE, size, "cpu_median_s"),
                get("polars", best, size, "cpu_median_s"), note=best.split(", ")[1])
        add("abmkit position (9) / ChannelAttribution heuristic_models", size, get("abmkit", STEP_ALL, size),
            get("ChannelAttribution", "heuristic_models", size), 0.5 if size >= 10**7 else None,
            get("abmkit", STEP_ALL, size, "cpu_median_s"),
            get("ChannelAttribution", "heuristic_models", size, "cpu_median_s"),
            note="target at 10^7")
        for step in (STEP_FIVE, STEP_ALL):
            r = df[df["step"].str.startswith(step + ", ") & df["step"].str.endswith(" processes")
                   & (df["size"] == size)]
            for _, row in r.iterrows():
                out.append({"ratio": f"stability max/min across processes, {step}", "size": size,
                            "value": row["stability"], "cpu_value": row["stability_cpu"], "target": "<= 1.3",
                            "met": "yes" if row["stability"] <= 1.3 else "NO",
                            "note": f"best of {row['runs'].split('x')[1]} in each of {row['runs'].split('x')[0]}"})
        add("abmkit markov o1 from touch tables / ChannelAttribution markov o1", size,
            get("abmkit", "markov o1 from touch tables", size), get("ChannelAttribution", "markov o1", size), None,
            get("abmkit", "markov o1 from touch tables", size, "cpu_median_s"),
            get("ChannelAttribution", "markov o1", size, "cpu_median_s"))
        for order in (1, 2, 3):
            add(f"abmkit markov o{order} on path table / ChannelAttribution markov o{order}", size,
                get("abmkit", f"markov o{order} on path table", size),
                get("ChannelAttribution", f"markov o{order}", size), None,
                get("abmkit", f"markov o{order} on path table", size, "cpu_median_s"),
                get("ChannelAttribution", f"markov o{order}", size, "cpu_median_s"))
    return pd.DataFrame(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[10**5, 10**6, 10**7])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--processes", type=int, default=3, help="fresh processes for the stability rows (0: none)")
    ap.add_argument("--skip-peer", action="store_true")
    ap.add_argument("--skip-polars", action="store_true")
    ap.add_argument("--only", choices=("all", "datadriven"), default="all",
                    help="datadriven: only the order-selection and bootstrap-ratio rows")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.repeats)
        return
    peer = None
    if not args.skip_peer:
        try:
            peer = quiet(__import__, "ChannelAttribution")
        except ImportError:
            print("ChannelAttribution not installed (pip install -r requirements-peer.txt): peer rows skipped")
    use_polars = False
    if not args.skip_polars:
        try:
            import polars as pl
            use_polars = True
            print(f"polars {pl.__version__}, {pl.thread_pool_size()} threads "
                  f"(POLARS_MAX_THREADS={os.environ.get('POLARS_MAX_THREADS')})")
        except ImportError:
            print("polars not installed (pip install -r requirements-bench.txt): polars rows skipped")
    rows, notes, checks, load = [], {}, {}, {}
    for n in args.sizes:
        print(f"== {n:,} touchpoints (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus)", flush=True)
        before = os.getloadavg()[0]
        run_size(n, peer, use_polars and args.only == "all", args.repeats, args.processes, rows, notes, checks,
                 args.only)
        load[n] = {"load_avg_1min_before": round(before, 2), "load_avg_1min_after": round(os.getloadavg()[0], 2)}
    df = pd.DataFrame(rows)
    cols = ["tool", "step", "size", "runs", "min_s", "median_s", "max_s", "cpu_median_s", "peak_mb", "ratio",
            "max_abs_removal_effect_diff", "selected_order"]
    table = df.reindex(columns=cols)
    ratios = ratio_rows(df, args.sizes)
    with pd.option_context("display.width", 250, "display.max_columns", 20, "display.max_colwidth", 70):
        print("\nseconds: min / median / max over the runs (wall); cpu_median_s: CPU seconds of the process, "
              "all threads")
        print(table.to_string(index=False))
        print("\nratios (median wall seconds; cpu_value: the same with CPU seconds)")
        print(ratios.to_string(index=False))
    if checks:
        print("\npolars vs abmkit channel credits (max relative difference, tolerance "
              f"{CHECK_RTOL:g}): " + "; ".join(f"{s:,}: " + ", ".join(f"{e} {d:.1e}" for e, d in c.items())
                                               for s, c in checks.items()))
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {"machine": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "polars_max_threads": os.environ.get("POLARS_MAX_THREADS"), "repeats": args.repeats,
            "note": "min/median/max wall seconds over the repeats; ratio (compare_models) = n_boot=1000 / n_boot=0; "
                    "peak_mb = RSS growth during the step (max over repeats)",
            "data": notes, "load": load, "polars_check_max_rel_diff": {str(k): v for k, v in checks.items()},
            "contention": "the machine is shared (other jobs run in parallel); the tools run in the same "
                          "process one after the other, so ratios are side by side but not contention-free"}
    out_name = "bench_attribution.json" if args.only == "all" else f"bench_attribution_{args.only}.json"
    (RESULTS / out_name).write_text(json.dumps(
        {"meta": meta, "rows": df.to_dict("records"), "ratios": ratios.to_dict("records")}, indent=2, default=str))
    smallest = min(checks) if checks else None
    if smallest is not None and max(checks[smallest].values()) > CHECK_RTOL:
        raise SystemExit(f"polars and abmkit channel credits differ at {smallest:,} touchpoints")


if __name__ == "__main__":
    main()
