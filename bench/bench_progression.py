"""Benchmark: stage history + campaign influence at scale.

Builds a synthetic canonical dataset (default 10,000,000 touchpoints over 200,000
accounts, 40 campaigns; vectorised numpy, seeded), then times
``abmkit.prepare`` (the contact→account map applied to every touch, once),
``abmkit.progression.stage_history`` and ``abmkit.uplift.campaign_influence``
on the resolved dataset, and records peak memory (RSS, sampled by a background thread). Targets: < 60 s
and < 8 GB for both steps together. Prints a table and writes
``bench/results/bench_progression.json``.

Wall-clock seconds depend on what else runs on the machine, so CPU seconds
(``time.process_time``, all threads) and the load average are recorded too.

Usage: ``python bench/bench_progression.py [--touches 10000000] [--accounts 200000]``
"""
from __future__ import annotations

import argparse
import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

from abmkit.schema import CHANNELS, TOUCH_TYPES, Dataset


def synthetic_dataset(n_accounts: int = 200_000, n_touches: int = 10_000_000, n_campaigns: int = 40,
                      contacts_per_account: int = 6, seed: int = 0) -> tuple[Dataset, pd.DataFrame]:
    """A random canonical dataset (no planted effects) and its contact→account map."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2025-01-01", tz="UTC").value
    span = int(730 * 86_400 * 1e9)
    acc_ids = np.char.add("A", np.arange(n_accounts).astype(str)).astype(object)
    accounts = pd.DataFrame({
        "account_id": acc_ids, "account_name": acc_ids,
        "industry": rng.choice(["software", "retail", "healthcare", "manufacturing"], n_accounts),
        "employee_count": np.round(np.exp(rng.normal(6, 1.5, n_accounts))) + 1,
        "tier": rng.choice([1, 2, 3], n_accounts, p=[0.1, 0.3, 0.6]),
        "icp_fit": rng.random(n_accounts),
        "created_at": pd.to_datetime(start + rng.integers(0, span // 4, n_accounts), utc=True),
    })
    n_contacts = n_accounts * contacts_per_account
    con_ids = np.char.add("C", np.arange(n_contacts).astype(str)).astype(object)
    con_acc = np.repeat(acc_ids, contacts_per_account)
    contacts = pd.DataFrame({"contact_id": con_ids, "crm_account_id": con_acc,
                             "persona": rng.choice(["decision_maker", "influencer", "user", "other"], n_contacts)})
    camp_ids = np.array([f"CMP{i:03d}" for i in range(n_campaigns)], dtype=object)
    camp_channel = rng.choice(list(CHANNELS), n_campaigns)
    campaigns = pd.DataFrame({"campaign_id": camp_ids, "campaign_name": camp_ids, "channel": camp_channel})
    # activity is skewed: a few accounts get most touches
    weight = rng.gamma(0.6, 1.0, n_accounts)
    acc_of_touch = rng.choice(n_accounts, n_touches, p=weight / weight.sum())
    contact_slot = rng.integers(0, contacts_per_account, n_touches)
    account_level = rng.random(n_touches) < 0.3
    tt_p = np.array([0.25, 0.1, 0.15, 0.12, 0.08, 0.05, 0.06, 0.03, 0.04, 0.02, 0.03, 0.03, 0.02, 0.02])
    ttype = rng.choice(len(TOUCH_TYPES), n_touches, p=tt_p / tt_p.sum())
    ttype = np.where(account_level, 0, ttype)  # account-level touches are impressions
    camp = rng.integers(-1, n_campaigns, n_touches)
    has_camp = camp >= 0
    chan = np.where(has_camp, pd.Index(list(CHANNELS)).get_indexer(camp_channel[np.maximum(camp, 0)]),
                    rng.integers(0, len(CHANNELS), n_touches))
    touchpoints = pd.DataFrame({
        "touchpoint_id": np.char.add("T", np.arange(n_touches).astype(str)).astype(object),
        "occurred_at": pd.to_datetime(start + rng.integers(0, span, n_touches), utc=True),
        "channel": pd.Categorical.from_codes(chan, categories=list(CHANNELS)),
        "touch_type": pd.Categorical.from_codes(ttype, categories=list(TOUCH_TYPES)),
        "contact_id": np.where(account_level, None, con_ids[acc_of_touch * contacts_per_account + contact_slot]),
        "account_id": np.where(account_level, acc_ids[acc_of_touch], None),
        "campaign_id": np.where(has_camp, camp_ids[np.maximum(camp, 0)], None),
    })
    n_opp = n_accounts // 10
    opp_acc = rng.choice(n_accounts, n_opp, replace=False)
    created = start + rng.integers(span // 4, span, n_opp)
    closed = created + rng.integers(10, 200, n_opp) * 86_400 * 10**9
    is_closed = closed < start + span
    opportunities = pd.DataFrame({
        "opportunity_id": np.char.add("O", np.arange(n_opp).astype(str)).astype(object),
        "account_id": acc_ids[opp_acc], "created_at": pd.to_datetime(created, utc=True),
        "closed_at": pd.to_datetime(np.where(is_closed, closed, np.iinfo(np.int64).min), utc=True),
        "is_closed": is_closed, "is_won": is_closed & (rng.random(n_opp) < 0.3),
        "amount": rng.gamma(2, 20_000, n_opp),
    })
    ds = Dataset.from_frames(validate=False, accounts=accounts, contacts=contacts, touchpoints=touchpoints,
                             campaigns=campaigns, opportunities=opportunities)
    mapping = pd.DataFrame({"contact_id": con_ids, "account_id": con_acc})
    return ds, mapping


class PeakRSS:
    """Peak resident memory of this process, sampled every 50 ms."""
    def __init__(self):
        self.proc, self.peak, self._stop = psutil.Process(), 0, threading.Event()

    def __enter__(self):
        self.peak = self.proc.memory_info().rss
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def main(argv=None):
    from abmkit.prepared import prepare
    from abmkit.progression import stage_history
    from abmkit.uplift import campaign_influence

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--touches", type=int, default=10_000_000)
    ap.add_argument("--accounts", type=int, default=200_000)
    ap.add_argument("--campaigns", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    ds, mapping = synthetic_dataset(args.accounts, args.touches, args.campaigns, seed=args.seed)
    t_gen = time.perf_counter() - t0
    gc_rss = psutil.Process().memory_info().rss
    results = {}
    with PeakRSS() as mem:
        t0, c0 = time.perf_counter(), time.process_time()
        data = prepare(ds, mapping=mapping)      # touches resolved to accounts once (the map given as is)
        t_touch, c_touch = time.perf_counter() - t0, time.process_time() - c0
        t0, c0 = time.perf_counter(), time.process_time()
        history = stage_history(data)
        t_hist, c_hist = time.perf_counter() - t0, time.process_time() - c0
        t0, c0 = time.perf_counter(), time.process_time()
        res = campaign_influence(data, history=history, progress=False)
        t_infl, c_infl = time.perf_counter() - t0, time.process_time() - c0
    total = t_touch + t_hist + t_infl
    results = {
        "touchpoints": args.touches, "accounts": args.accounts, "campaigns": args.campaigns,
        "generate_s": round(t_gen, 2), "prepare_s": round(t_touch, 2),
        "stage_history_s": round(t_hist, 2), "campaign_influence_s": round(t_infl, 2),
        "total_s": round(total, 2),
        "cpu_prepare_s": round(c_touch, 2), "cpu_stage_history_s": round(c_hist, 2),
        "cpu_campaign_influence_s": round(c_infl, 2), "cpu_total_s": round(c_touch + c_hist + c_infl, 2),
        "load_average_1min_at_end": round(os.getloadavg()[0], 2), "cores": os.cpu_count(),
        "rss_before_gb": round(gc_rss / 1e9, 2),
        "peak_rss_gb": round(mem.peak / 1e9, 2), "stage_rows": len(history.table), "influence_rows": len(res.table),
        "target_s": 60, "target_gb": 8, "meets_time": total < 60, "meets_memory": mem.peak / 1e9 < 8,
    }
    width = max(len(k) for k in results)
    print("bench_progression")
    for k, v in results.items():
        print(f"  {k:<{width}}  {v}")
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_progression.json").write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
