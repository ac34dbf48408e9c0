"""Peak memory of the CSV reader on oversized values (issue 17, finding 10).

For each size (default 100 and 500 MiB) and each shape of one huge value in a contacts
export, runs ``python -m abmkit validate`` in a fresh process and measures its peak RSS
above the imported baseline (VmHWM - VmRSS after the imports, from /proc): the value is
over the default ``max_field_bytes`` (16 MiB), so the run must stop with exit code 2, and
the target is a peak below 4x the file size.

Shapes: ``plain`` (unquoted, no delimiter: refused by the byte scan before any parsing),
``quoted`` (the same in quotes), ``commas`` (quoted, with a delimiter every 100 bytes:
the exact reader holds the line and at most 4x max_field_bytes of csv buffer), ``lines``
(quoted, a line break every 100 bytes: a long multi-line value, refused at the limit).

Writes bench/results/bench_csv_limits.json. Linux only (/proc).

Usage: python bench/bench_csv_limits.py [--sizes 100 500] [--shapes plain quoted commas lines]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = "Contact ID,Email,First Name,Last Name,Title,Account ID\n"
MEASURE = r"""
import sys
import abmkit.clean, abmkit.cli, pandas, pyarrow.csv
def status(key):
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) * 1024 for l in fh if l.startswith(key + ":"))
base = status("VmRSS")
rc = abmkit.cli.main(sys.argv[1:])
print(f"\nMEASURED {base} {status('VmHWM')}", file=sys.stderr)
sys.exit(rc)
"""


def write_file(path: Path, mib: int, shape: str) -> None:
    n = mib << 20
    unit = {"plain": "x" * 100, "quoted": "x" * 100, "commas": "x" * 99 + ",", "lines": "y" * 99 + "\n"}[shape]
    quote = "" if shape == "plain" else '"'
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(HEADER + "c1,ann@acme.com,Ann,Lee," + quote)
        block = unit * 10_000
        for _ in range(n // len(block)):
            fh.write(block)
        fh.write(quote + ",a1\nc2,bo@acme.com,Bo,Ng,CEO,a1\n")
    (path.parent / "column_map.yaml").write_text(
        "version: 1\ntables:\n  contacts:\n    file: contacts.csv\n    columns: {contact_id: Contact ID, "
        "title: Title}\n", "utf-8")


def run(folder: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", MEASURE, "validate", str(folder)], capture_output=True,
                         text=True, env=env, cwd=ROOT)
    seconds = time.perf_counter() - t0
    base, peak = map(int, [ln for ln in res.stderr.splitlines() if ln.startswith("MEASURED ")][-1].split()[1:])
    error = next((ln for ln in res.stderr.splitlines() if "error:" in ln), "")
    return {"exit_code": res.returncode, "extra_peak_mb": round((peak - base) / 2**20, 1),
            "seconds": round(seconds, 2), "error": error[:160]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 500], help="file sizes in MiB")
    ap.add_argument("--shapes", nargs="+", default=["plain", "quoted", "commas", "lines"])
    args = ap.parse_args()
    rows, ok = [], True
    for mib in args.sizes:
        for shape in args.shapes:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "contacts.csv"
                write_file(path, mib, shape)
                size = path.stat().st_size
                row = {"size_mib": mib, "shape": shape, **run(Path(tmp))}
            row["ratio_to_file"] = round(row["extra_peak_mb"] * 2**20 / size, 2)
            row["ok"] = row["exit_code"] == 2 and row["ratio_to_file"] < 4
            ok &= row["ok"]
            rows.append(row)
            print(f"{mib:>5} MiB {shape:<7} exit {row['exit_code']}  +{row['extra_peak_mb']:>7.1f} MB "
                  f"({row['ratio_to_file']:.2f}x the file)  {row['seconds']:>6.2f} s  {'ok' if row['ok'] else 'FAIL'}",
                  flush=True)
    out = ROOT / "bench" / "results" / "bench_csv_limits.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"target": "exit 2 and peak RSS < 4x the file", "python": platform.python_version(),
                               "machine": platform.machine(), "cpus": os.cpu_count(), "rows": rows},
                              indent=2) + "\n", "utf-8")
    print(f"written {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
