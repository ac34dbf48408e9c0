"""Time the whole quarterly report on the default sample: notebooks 01 → 02 → {03, 04, 05}
with papermill, the HTML pages and the index, as ``python -m abmkit report`` runs it.
Target (issue): <= 25 s on 2 cores.

Usage: ``python bench/bench_report.py [--repeat 3] [--sequential 1] [--jobs N]``.

Runs the report ``--repeat`` times with the default parallel runner (``--jobs``: one
notebook per core unless given) and ``--sequential`` times with ``--jobs 1`` (one
notebook after the other, as before), each into a fresh output folder, each as its own
``python -m abmkit report`` process (interpreter start and imports included). Runs
alternate (parallel, sequential, parallel, ...) so a busy spell on the machine does not
land on one mode only. Prints

* one row per run: wall seconds, CPU seconds (the report process and its kernels: the
  figure that does not depend on other processes sharing the machine), the load average
  before the run, and the per-notebook split from the report's run.json (seconds each
  notebook executed; then the HTML export and index steps);
* min / median / max of wall and CPU per mode, and the sequential / parallel ratio of
  the medians;
* the per-notebook medians (kernel warm-up, execution, HTML export) per mode, and the
  timeline of the fastest parallel run (which notebooks overlapped).

Generates the default sample (seed 7, 2,000 accounts) when it is missing. Writes
``bench/results/bench_report.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 25.0
EXPECTED = ("01", "02", "03", "04", "05")


def _cpu_children() -> float:
    t = os.times()
    return t.children_user + t.children_system


def run_once(data: Path, quarter: str, jobs: int | None) -> dict:
    """One ``python -m abmkit report`` into a fresh folder: wall, CPU, run.json split."""
    with tempfile.TemporaryDirectory(prefix="bench_report_") as out:
        cmd = [sys.executable, "-m", "abmkit", "report", "--quarter", quarter, "--data", str(data), "--out", out]
        if jobs is not None:
            cmd += ["--jobs", str(jobs)]
        load = os.getloadavg()[0]
        c0, t0, started = _cpu_children(), time.perf_counter(), time.time()
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        wall, cpu = time.perf_counter() - t0, _cpu_children() - c0
        manifest_path = Path(out) / quarter / "run.json"
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
        n_html = len(list((Path(out) / quarter).glob("*.html")))
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-3000:])
    timeline = manifest.get("timeline", {})
    last_html = max((t["html"][1] for t in timeline.values() if "html" in t), default=None)
    origin = manifest.get("timeline_origin")
    startup = round(origin - started, 2) if origin else None
    return {
        "jobs": manifest.get("jobs", jobs), "exit_code": proc.returncode, "wall_seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2), "load_before": round(load, 2), "html_files": n_html,
        "seconds": manifest.get("seconds", {}), "html_seconds": manifest.get("html_seconds", {}),
        "warm_seconds": {s: round(t["warm"][1] - t["warm"][0], 2) for s, t in timeline.items() if "warm" in t},
        # CPU seconds of each notebook's kernel: warm-up (start, imports) and execution, and their sum
        "kernel_cpu_seconds": manifest.get("kernel_cpu_seconds", {}),
        "kernel_cpu_total": {s: round(sum(c.values()), 2) for s, c in manifest.get("kernel_cpu_seconds", {}).items()},
        "index_seconds": manifest.get("index_seconds"), "report_total_seconds": manifest.get("total_seconds"),
        # before the runner starts its notebooks: interpreter, imports, inputs, staging folder
        "startup_seconds": startup,
        # after the last HTML page: privacy scan, index, run.json, swap, last kernels, process exit
        "finish_seconds": round(wall - startup - last_html, 2) if last_html is not None and startup else None,
        "timeline": timeline,
    }


def _stats(values: list[float]) -> dict:
    return {"min": round(min(values), 2), "median": round(statistics.median(values), 2),
            "max": round(max(values), 2)} if values else {}


def _median(runs: list[dict], key: str, stem: str):
    vals = [r[key][stem] for r in runs if stem in r.get(key, {})]
    return round(statistics.median(vals), 2) if vals else None


def _f(v, width: int = 7) -> str:
    return f"{v:{width}.1f}" if isinstance(v, (int, float)) else f"{'-':>{width}}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO / "data" / "sample"))
    ap.add_argument("--quarter", default="2026Q3")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--accounts", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3, help="parallel runs (default 3)")
    ap.add_argument("--sequential", type=int, default=1, help="runs with --jobs 1 to compare with (default 1)")
    ap.add_argument("--jobs", type=int, default=None, help="jobs of the parallel runs (default: the runner's)")
    args = ap.parse_args(argv)

    from abmkit.report import default_jobs, discover_notebooks

    data = Path(args.data)
    gen_seconds = None
    if not (data / "raw" / "column_map.yaml").exists():
        from abmkit.sample import write_sample

        t0 = time.perf_counter()
        write_sample(data, seed=args.seed, n_accounts=args.accounts)
        gen_seconds = time.perf_counter() - t0
        print(f"generated sample in {data} ({gen_seconds:.1f} s)")

    stems = [p.stem for p in discover_notebooks(REPO / "notebooks")]
    missing = [n for n in EXPECTED if not any(s.startswith(n) for s in stems)]
    if missing:
        print(f"NOTE: notebooks {missing} are missing; timing only {stems}")
    jobs = args.jobs or default_jobs()
    plan = ["parallel"] * args.repeat
    for i in range(args.sequential):  # alternate: par, seq, par, seq, par, ...
        plan.insert(min(2 * i + 1, len(plan)), "sequential")
    runs = []
    for i, mode in enumerate(plan, 1):
        r = run_once(data, args.quarter, jobs if mode == "parallel" else 1)
        r.update(run=i, mode=mode)
        runs.append(r)
        print(f"run {i}/{len(plan)} ({mode}, jobs={r['jobs']}): {r['wall_seconds']:.1f} s wall, "
              f"{r['cpu_seconds']:.1f} s CPU, load before {r['load_before']:.1f}, exit code {r['exit_code']}",
              flush=True)

    short = [s[:2] for s in stems]
    print()
    head = (f"{'run':>3} {'mode':<10} {'jobs':>4} {'wall s':>7} {'CPU s':>7} {'load':>5} | "
            + " ".join(f"{n:>6}" for n in short) + f" | {'html':>6} {'index':>6} {'start':>6} {'finish':>6}")
    print("per run: notebooks = seconds each notebook executed (its kernel start and imports excluded "
          "when they were done ahead, see warm below); html = sum of the HTML exports (in parallel runs "
          "they overlap other notebooks); start = process start to the first kernel start; finish = "
          "after the last HTML page (index, run.json, publication, exit)")
    print(head)
    print("-" * len(head))
    for r in runs:
        nb = " ".join(_f(r["seconds"].get(s), 6) for s in stems)
        html_sum = sum(r["html_seconds"].values()) if r["html_seconds"] else None
        print(f"{r['run']:>3} {r['mode']:<10} {r['jobs']!s:>4} {r['wall_seconds']:7.1f} {r['cpu_seconds']:7.1f} "
              f"{r['load_before']:5.1f} | {nb} | {_f(html_sum, 6)} {_f(r['index_seconds'], 6)} "
              f"{_f(r['startup_seconds'], 6)} {_f(r['finish_seconds'], 6)}")

    summary = {}
    print()
    for mode in ("parallel", "sequential"):
        ok = [r for r in runs if r["mode"] == mode and r["exit_code"] == 0]
        if not ok:
            continue
        summary[mode] = {"runs": len(ok), "wall_seconds": _stats([r["wall_seconds"] for r in ok]),
                         "cpu_seconds": _stats([r["cpu_seconds"] for r in ok]),
                         "notebooks": {s: {"warm": _median(ok, "warm_seconds", s), "run": _median(ok, "seconds", s),
                                           "html": _median(ok, "html_seconds", s),
                                           "cpu": _median(ok, "kernel_cpu_total", s)} for s in stems}}
        w, c = summary[mode]["wall_seconds"], summary[mode]["cpu_seconds"]
        print(f"{mode:<10} wall min/median/max {w['min']:.1f} / {w['median']:.1f} / {w['max']:.1f} s; "
              f"CPU {c['min']:.1f} / {c['median']:.1f} / {c['max']:.1f} s ({len(ok)} run(s))")
    ratio = None
    if "parallel" in summary and "sequential" in summary:
        ratio = summary["sequential"]["wall_seconds"]["median"] / summary["parallel"]["wall_seconds"]["median"]
        print(f"sequential / parallel (median wall): {ratio:.2f}x")

    print()
    print("per notebook, medians (s): warm = kernel start and imports before the notebook may run (wall); "
          "run, html = wall; cpu = CPU seconds of its kernel (warm-up + run)")
    keys = ("warm", "run", "html", "cpu")
    print(f"{'notebook':<38} " + " ".join(f"{m[:3] + ' ' + k:>8}" for m in summary for k in keys))
    for s in stems:
        cells = " ".join(_f(summary[m]["notebooks"][s][k], 8) for m in summary for k in keys)
        print(f"{s:<38} {cells}")

    par = [r for r in runs if r["mode"] == "parallel" and r["exit_code"] == 0]
    if par:
        best = min(par, key=lambda r: r["wall_seconds"])
        print()
        print(f"timeline of the fastest parallel run (run {best['run']}, {best['wall_seconds']:.1f} s; "
              "seconds since the runner started its notebooks):")
        for s in stems:
            t = best["timeline"].get(s, {})
            print(f"  {s:<40} " + "  ".join(f"{k} {v[0]:5.1f}-{v[1]:5.1f}" for k, v in t.items()))

    failed = [r["run"] for r in runs if r["exit_code"] != 0]
    med = summary.get("parallel", {}).get("wall_seconds", {}).get("median")
    within = bool(med is not None and med <= TARGET_SECONDS and not failed)
    print()
    print(f"target <= {TARGET_SECONDS:.0f} s on 2 cores: "
          f"{'OK' if within else ('FAILED RUN(S) ' + str(failed) if failed else 'OVER TARGET')} "
          f"(median parallel {_f(med, 0).strip()} s; {os.cpu_count()} cores here; wall times depend on the "
          "load: see the load column and the CPU seconds)")

    result = {
        "name": "bench_report", "quarter": args.quarter, "data": str(data), "notebooks": stems,
        "missing_notebooks": missing, "parallel_jobs": jobs, "runs": runs, "summary": summary,
        "sequential_over_parallel": round(ratio, 2) if ratio else None, "target_seconds": TARGET_SECONDS,
        "within_target": within, "failed_runs": failed, "sample_generation_seconds": gen_seconds,
        "cpu_count": os.cpu_count(), "python": sys.version.split()[0], "platform": platform.platform(),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out_json = REPO / "bench" / "results" / "bench_report.json"
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(result, indent=2, default=str))
    print(f"written {out_json.relative_to(REPO)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
