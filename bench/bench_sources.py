"""Benchmark of abmkit.sources: reading the same touch rows from parquet and from DuckDB.

Writes ``--rows`` raw touchpoint rows (text columns, as an export carries them) once as a
parquet file and once as a DuckDB table, then times reading them through the sources
(:class:`abmkit.sources.FolderSource` on the parquet file, :class:`abmkit.sources.sql.SqlSource`
on the DuckDB file) into the string frames the cleaner reads: best of ``--repeat`` runs,
peak RSS of each read (in a fresh child process, so one read's memory does not hide
another's). Target (issue 23): DuckDB within 1.5x of parquet.

Usage: python bench/bench_sources.py [--rows 10000000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

TARGET = 1.5


def _table(rows: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    t0 = np.datetime64("2025-01-01T00:00:00", "s")
    when = (t0 + rng.integers(0, 600 * 86400, rows).astype("timedelta64[s]")).astype(str)
    channels = np.array(["LinkedIn Ads", "Google Ads", "Email", "Webinar", "Organic Search", "Direct"])
    types = np.array(["Ad Click", "Page View", "Email Opened", "Form Submission", "Webinar Attended"])
    return pa.table({
        "Touch ID": pa.array(np.char.add("T", np.arange(rows).astype(str))),
        "Contact ID": pa.array(np.char.add("C", rng.integers(0, rows // 15 + 1, rows).astype(str))),
        "Occurred At": pa.array(when),
        "Channel": pa.array(channels[rng.integers(0, len(channels), rows)]),
        "Touch Type": pa.array(types[rng.integers(0, len(types), rows)]),
        "Campaign ID": pa.array(np.char.add("CMP", rng.integers(0, 300, rows).astype(str))),
    })


def _read(kind: str, folder: str, queue) -> None:
    import threading

    import psutil

    from abmkit.sources import FolderSource
    from abmkit.sources.sql import SqlSource
    me, peak_rss, done = psutil.Process(), [0], threading.Event()

    def sample():  # ru_maxrss would include the pages a child inherits: sample this process's RSS
        while not done.is_set():
            peak_rss[0] = max(peak_rss[0], me.memory_info().rss)
            done.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t = time.perf_counter()
    if kind == "parquet":
        frame = FolderSource(folder).read("touchpoints.parquet", table="touchpoints")
    else:
        with SqlSource(f"duckdb:///{folder}/touchpoints.duckdb") as src:
            frame = src.read("touchpoints", table="touchpoints")
    wall = time.perf_counter() - t
    done.set()
    sampler.join()
    peak = peak_rss[0] / 2**20  # the reading process's peak RSS, MB
    queue.put((wall, peak, len(frame.data)))


def _measure(kind: str, folder: str) -> tuple[float, float, int]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_read, args=(kind, folder, q))
    p.start()
    out = q.get()
    p.join()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    import duckdb
    with tempfile.TemporaryDirectory(prefix="abmkit-bench-sources-") as folder:
        table = _table(args.rows)
        pq.write_table(table, f"{folder}/touchpoints.parquet")
        con = duckdb.connect(f"{folder}/touchpoints.duckdb")
        con.register("t", table)
        con.execute("CREATE TABLE touchpoints AS SELECT * FROM t")
        con.close()
        del table
        results = {}
        for kind in ("parquet", "duckdb"):
            runs = [_measure(kind, folder) for _ in range(args.repeat)]
            best = min(r[0] for r in runs)
            results[kind] = {"seconds": best, "peak_mb": max(r[1] for r in runs), "rows": runs[0][2],
                             "rows_per_s": runs[0][2] / best}
    ratio = results["duckdb"]["seconds"] / results["parquet"]["seconds"]
    print(f"{'source':<10}{'rows':>12}{'best s':>10}{'rows/s':>14}{'peak MB':>10}")
    for kind, r in results.items():
        print(f"{kind:<10}{r['rows']:>12,}{r['seconds']:>10.2f}{r['rows_per_s']:>14,.0f}{r['peak_mb']:>10.0f}")
    print(f"duckdb / parquet = {ratio:.2f}x (target <= {TARGET}x): {'OK' if ratio <= TARGET else 'MISSED'}")
    out = Path(__file__).parent / "results" / "bench_sources.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"rows": args.rows, "results": results, "ratio": ratio, "target": TARGET}, indent=1))


if __name__ == "__main__":
    main()
