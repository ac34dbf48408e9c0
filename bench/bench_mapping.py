"""Benchmark: lead-to-account mapping of 1,000,000 contacts against 100,000 accounts.

Goal (issue 4): < 60 s and < 4 GB peak memory on a 2-core machine. Synthetic
names and domains are generated here (random syllable words, legal forms, country
TLDs); the contact mix resembles a CRM export: CRM links, corporate e-mails (some on
subdomains or extra domains), free-mail sign-ups with a typed company name (exact,
upper case, other legal form, a typo), unknown companies, and empty rows. Accounts
include shared domains and look-alike names, so the ambiguity paths run too.

Prints a table and writes ``bench/results/bench_mapping.json``.

    .venv/bin/python bench/bench_mapping.py [--contacts 1000000] [--accounts 100000]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

from abmkit.mapping import map_contacts, mapping_report

SYLLABLES = np.array([a + b for a in ("b", "c", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z",
                                      "br", "st", "tr", "gr", "pl")
                      for b in ("a", "e", "i", "o", "u", "ar", "en", "or", "is", "um")], dtype=object)
LEGAL = np.array(["Inc.", "LLC", "Corp.", "Ltd", "GmbH", "AG", "SA", "B.V.", "plc", "Pty Ltd", "S.r.l.", "Oy"],
                 dtype=object)
LEGAL_VARIANT = {"Inc.": "Incorporated", "LLC": "L.L.C.", "Corp.": "Corporation", "Ltd": "Limited",
                 "GmbH": "GMBH", "AG": "", "SA": "S.A.", "B.V.": "BV", "plc": "PLC", "Pty Ltd": "Pty. Ltd.",
                 "S.r.l.": "SRL", "Oy": ""}
TLDS = np.array(["com", "de", "co.uk", "fr", "nl", "com.au", "io", "se", "it", "fi"], dtype=object)
FREE = np.array(["gmail.com", "outlook.com", "yahoo.com", "hotmail.com", "gmx.de", "icloud.com"], dtype=object)
DESCRIPTORS = np.array(["Systems", "Labs", "Logistics", "Capital", "Health", "Energy", "Foods", "Media",
                        "Software", "Partners", "Group", "Robotics", "Analytics", "Materials"], dtype=object)


def words(rng, n, lo=2, hi=3):
    k = rng.integers(lo, hi + 1, n)
    parts = [SYLLABLES[rng.integers(0, len(SYLLABLES), n)] for _ in range(hi)]
    out = parts[0].copy()
    for j in range(1, hi):
        out = np.where(k > j, out + parts[j], out)
    return pd.Series(out, dtype=object).str.capitalize().to_numpy(dtype=object)


def make_accounts(n: int, rng) -> pd.DataFrame:
    first, second = words(rng, n), words(rng, n)
    desc = np.where(rng.random(n) < 0.5, " " + DESCRIPTORS[rng.integers(0, len(DESCRIPTORS), n)], "")
    core = pd.Series(first + " " + second + desc, dtype=object)
    dup = core.duplicated().to_numpy()
    core = core.where(~dup, core + " " + words(rng, n, 1, 1))   # keep names mostly unique
    legal = LEGAL[rng.integers(0, len(LEGAL), n)]
    label = (pd.Series(first + second, dtype=object).str.lower()
             + pd.Series(np.arange(n)).map(lambda i: "" if i % 7 else str(i))).to_numpy(dtype=object)
    domain = label + "." + TLDS[rng.integers(0, len(TLDS), n)]
    acc = pd.DataFrame({"account_id": [f"A{i:06d}" for i in range(n)], "account_name": core + " " + legal,
                        "domain": domain, "core": core, "legal": legal, "label": label})
    acc["extra_domains"] = np.where(rng.random(n) < 0.15, "get" + label + ".com", None)
    # 0.5% share another account's domain; 5% have a parent
    shared = rng.choice(n, n // 200, replace=False)
    acc.loc[shared, "domain"] = acc["domain"].to_numpy()[rng.choice(n, len(shared))]
    kids = rng.choice(n, n // 20, replace=False)
    acc["parent_account_id"] = None
    acc.loc[kids, "parent_account_id"] = acc["account_id"].to_numpy()[rng.choice(n, len(kids))]
    return acc


def typo(values: np.ndarray, rng) -> np.ndarray:
    s = pd.Series(values, dtype=object)
    n = s.str.len().to_numpy()
    pos = (1 + rng.random(len(s)) * np.maximum(n - 3, 1)).astype(int)
    # swap two neighbouring characters (vectorised by slicing at a per-row position)
    df = pd.DataFrame({"s": s, "p": pos})
    a = [x[:p] + x[p + 1] + x[p] + x[p + 2:] if len(x) > p + 1 else x for x, p in zip(df["s"], df["p"])]
    return np.asarray(a, dtype=object)


def make_contacts(acc: pd.DataFrame, n: int, rng) -> pd.DataFrame:
    n_acc = len(acc)
    acct = rng.integers(0, n_acc, n)
    kind = rng.choice(["crm", "domain", "sub", "extra", "free", "unknown", "empty"], n,
                      p=[0.40, 0.30, 0.05, 0.03, 0.14, 0.05, 0.03])
    has_extra = acc["extra_domains"].notna().to_numpy()[acct]
    kind = np.where((kind == "extra") & ~has_extra, "domain", kind)
    local = "user" + pd.Series(np.arange(n)).astype(str).to_numpy(dtype=object)
    domain = acc["domain"].to_numpy()[acct]
    host = np.select(
        [kind == "sub", kind == "extra", kind == "free", kind == "unknown"],
        ["mail." + domain, acc["extra_domains"].to_numpy()[acct], FREE[rng.integers(0, len(FREE), n)],
         words(rng, n, 2, 2) + ".com"], domain)
    email = np.where(kind == "empty", None, local + "@" + host)
    email = np.where((kind == "crm") & (rng.random(n) < 0.5), None, email)
    core = acc["core"].to_numpy()[acct]
    legal = acc["legal"].to_numpy()[acct]
    official = acc["account_name"].to_numpy()[acct]
    r = rng.random(n)
    variant = core + " " + pd.Series(legal).map(LEGAL_VARIANT).to_numpy(dtype=object)
    free_name = np.select([r < 0.35, r < 0.65, r < 0.8, r < 0.95], [official, variant,
                          pd.Series(official, dtype=object).str.upper().to_numpy(dtype=object), core], None)
    is_typo = (kind == "free") & (r >= 0.95)
    free_name = free_name.astype(object)
    free_name[is_typo] = typo(official[is_typo], rng)
    company = np.where(kind == "free", free_name,
                       np.where(kind == "unknown", words(rng, n, 2, 2) + " " + words(rng, n, 2, 2) + " Ltd",
                                np.where(rng.random(n) < 0.5, official, None)))
    company = np.where(kind == "empty", None, company)
    crm = np.where(kind == "crm", acc["account_id"].to_numpy()[acct], None)
    true = np.where(kind == "unknown", None, acc["account_id"].to_numpy()[acct])
    return pd.DataFrame({"contact_id": [f"C{i:07d}" for i in range(n)], "email": email, "company_name": company,
                         "crm_account_id": crm, "true_account_id": true, "kind": kind})


class PeakRSS:
    """Samples the process's resident memory every 20 ms in a thread."""

    def __init__(self):
        self.proc = psutil.Process(os.getpid())
        self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.02)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--contacts", type=int, default=1_000_000)
    ap.add_argument("--accounts", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "bench_mapping.json"))
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    t = time.perf_counter()
    acc = make_accounts(args.accounts, rng)
    con = make_contacts(acc, args.contacts, rng)
    gen_s = time.perf_counter() - t
    accounts_in = acc[["account_id", "account_name", "domain", "extra_domains", "parent_account_id"]]
    contacts_in = con[["contact_id", "email", "company_name", "crm_account_id"]]
    rss_before = psutil.Process(os.getpid()).memory_info().rss
    with PeakRSS() as mem:
        t = time.perf_counter()
        result = map_contacts(contacts_in, accounts_in)
        seconds = time.perf_counter() - t
    report = mapping_report(result, truth=con[["contact_id", "true_account_id"]])
    counts = result["method"].value_counts().to_dict()
    row = {
        "contacts": args.contacts, "accounts": args.accounts, "seconds": round(seconds, 2),
        "peak_rss_mb": round(mem.peak / 2**20, 1), "rss_before_mb": round(rss_before / 2**20, 1),
        **{f"n_{m}": int(counts.get(m, 0)) for m in ("crm", "domain", "fuzzy_name", "unmatched")},
        "precision": round(float(report.metric("precision")), 5), "recall": round(float(report.metric("recall")), 5),
        "generate_seconds": round(gen_s, 2), "cpu_count": os.cpu_count(),
        "load_avg_1min_after": round(os.getloadavg()[0], 2), "python": platform.python_version(),
        "pandas": pd.__version__, "target_seconds": 60, "target_peak_mb": 4096,
    }
    row["meets_target"] = bool(row["seconds"] < 60 and row["peak_rss_mb"] < 4096)
    table = pd.DataFrame([{k: row[k] for k in ("contacts", "accounts", "seconds", "peak_rss_mb", "n_crm", "n_domain",
                                                "n_fuzzy_name", "n_unmatched", "precision", "recall")}])
    print(table.to_string(index=False))
    print(f"target < 60 s and < 4096 MB peak RSS: {'met' if row['meets_target'] else 'NOT met'} "
          f"(RSS before mapping {row['rss_before_mb']} MB; data generation {row['generate_seconds']} s)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(row, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
