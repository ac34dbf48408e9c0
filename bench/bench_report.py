"""Time the whole quarterly report (notebooks 01→05 with papermill, HTML, index) on the
default sample. Target: < 3 minutes on a 2-core machine.

Usage: ``python bench/bench_report.py [--data data/sample] [--quarter 2026Q3]``.
Generates the default sample (seed 7, 2,000 accounts) when it is missing, runs the
report into a temporary folder, prints per-notebook seconds and the total, and writes
``bench/results/bench_report.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 180.0
EXPECTED = ("01", "02", "03", "04", "05")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO / "data" / "sample"))
    ap.add_argument("--quarter", default="2026Q3")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--accounts", type=int, default=2000)
    args = ap.parse_args(argv)

    from abmkit.report import discover_notebooks, run_report

    data = Path(args.data)
    gen_seconds = None
    if not (data / "raw" / "column_map.yaml").exists():
        from abmkit.sample import write_sample

        t0 = time.perf_counter()
        write_sample(data, seed=args.seed, n_accounts=args.accounts)
        gen_seconds = time.perf_counter() - t0
        print(f"generated sample in {data} ({gen_seconds:.1f} s)")

    notebooks = discover_notebooks(REPO / "notebooks")
    present = [p.stem for p in notebooks]
    missing = [n for n in EXPECTED if not any(s.startswith(n) for s in present)]
    if missing:
        print(f"NOTE: notebooks {missing} are missing; timing only {present}")

    with tempfile.TemporaryDirectory(prefix="bench_report_") as out:
        t0 = time.perf_counter()
        rc = run_report(quarter=args.quarter, data=str(data), out_dir=out, notebooks_dir=REPO / "notebooks",
                        progress=False)
        total = time.perf_counter() - t0
        manifest_path = Path(out) / args.quarter / "run.json"
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
        n_html = len(list((Path(out) / args.quarter).glob("*.html"))) if rc == 0 else 0

    seconds = manifest.get("seconds", {})
    print()
    print(f"{'notebook':<36}{'seconds':>10}")
    print("-" * 46)
    for stem in present:
        s = seconds.get(stem)
        print(f"{stem:<36}{(f'{s:10.1f}' if s is not None else '    failed'):>10}")
    print("-" * 46)
    print(f"{'total (run_report, incl. HTML/index)':<36}{total:10.1f}")
    status = "OK" if rc == 0 and total < TARGET_SECONDS else ("FAILED RUN" if rc else "OVER TARGET")
    print(f"target < {TARGET_SECONDS:.0f} s on 2 cores: {status} (exit code {rc}, {os.cpu_count()} cores here)")

    result = {
        "name": "bench_report", "quarter": args.quarter, "data": str(data), "exit_code": rc,
        "notebooks": present, "missing_notebooks": list(missing), "seconds": seconds,
        "total_seconds": round(total, 2), "html_files": n_html, "target_seconds": TARGET_SECONDS,
        "within_target": bool(rc == 0 and total < TARGET_SECONDS), "sample_generation_seconds": gen_seconds,
        "cpu_count": os.cpu_count(), "python": sys.version.split()[0], "platform": platform.platform(),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out_json = REPO / "bench" / "results" / "bench_report.json"
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(result, indent=2))
    print(f"written {out_json.relative_to(REPO)}")
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
