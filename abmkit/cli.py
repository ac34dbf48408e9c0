"""Command line: ``python -m abmkit sample | validate | report`` (thin: every
command calls one library function).

Only the standard library is imported here: each command imports what it needs
when it runs, so ``abmkit --help`` works on a bare ``pip install abmkit`` and
``abmkit report`` without the ``report`` extra says what to install."""
from __future__ import annotations

import argparse
import sys

from ._extras import MissingExtraError, require


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="abmkit", description="Account-based marketing analysis kit")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("sample", help="generate the synthetic sample (raw export, canonical data, ground truth)")
    s.add_argument("--out", default="data/sample", help="output folder (default data/sample)")
    s.add_argument("--seed", type=int, default=7)
    s.add_argument("--accounts", type=int, default=2000)

    v = sub.add_parser("validate", help="pre-flight check of a raw export (folder or database)")
    v.add_argument("raw_dir", metavar="source",
                   help="export folder (CSV/parquet) or database URL: duckdb:///file.duckdb, "
                        "postgresql://user@host/db?schema=crm (password from ABMKIT_DB_PASSWORD or ~/.pgpass, "
                        "never in the URL), db:<name> (private connections file)")
    v.add_argument("--preset", default=None, help="built-in column map: salesforce | hubspot | marketo | pardot")
    v.add_argument("--column-map", default=None, help="path to a column-map YAML")
    v.add_argument("--out", default=None, help="write the cleaned canonical dataset here")
    v.add_argument("--quarter", default=None, help="also check this report period against the data's range")
    v.add_argument("--start", default=None, help="period start date (with --end, instead of --quarter)")
    v.add_argument("--end", default=None, help="period end date, exclusive")

    r = sub.add_parser("report", help="run the quarterly report notebooks with papermill")
    r.add_argument("--quarter", default=None, help="e.g. 2026Q3 (default: the last complete quarter of the data)")
    r.add_argument("--start", default=None, help="period start date (with --end, instead of --quarter)")
    r.add_argument("--end", default=None, help="period end date, exclusive")
    r.add_argument("--data", default="data/sample",
                   help="raw export folder (or the sample folder), or a database URL (duckdb:///file.duckdb, "
                        "postgresql://user@host/db?schema=crm; no password in the URL) or db:<name>")
    r.add_argument("--preset", default=None, help="built-in column map: salesforce | hubspot | marketo | pardot")
    r.add_argument("--column-map", default=None, help="path to a column-map YAML")
    r.add_argument("--params", default=None, help="YAML file of notebook parameters")
    r.add_argument("--out", default="reports", help="reports folder (default reports/)")
    r.add_argument("--only", default=None, help="run only notebooks whose name contains this")
    r.add_argument("--engine", default="pandas", choices=["pandas", "dask"])
    r.add_argument("--scheduler", default=None, help="dask.distributed scheduler address")
    r.add_argument("--jobs", type=int, default=None,
                   help="notebooks run at a time, after the notebooks they need (default: one per core; "
                        "1 with --engine dask; 1 runs them one after the other)")
    r.add_argument("-p", "--param", action="append", default=[], metavar="[NN.]NAME=VALUE",
                   help="a notebook parameter (repeatable; wins over --params): NAME=VALUE for every notebook "
                        "declaring NAME, NN.NAME=VALUE for notebook NN only. VALUE is read as a number, "
                        "true/false or none when it looks like one, else as text")
    r.epilog = ("exit codes: 0 published; 1 a notebook failed or an input changed during the run; 2 bad input "
                "or usage; 75 another run of the period holds its lock; 130/143 stopped by SIGINT/SIGTERM")
    return p


def _param_value(text: str):
    """A --param value: int, float, bool or None when it reads as one (as papermill's -p), else text."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null", "~"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _parse_params(items: list[str]) -> dict:
    """``--param`` values as a parameter file's top level: ``{name: v, "03": {name: v}}``."""
    out: dict = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        section, dot, key = name.partition(".")
        if not sep or not name or (dot and not (section and key)):
            raise ValueError(f"--param {item!r}: expected NAME=VALUE or NN.NAME=VALUE (NN: a notebook number)")
        if dot:
            out.setdefault(section, {})
            if not isinstance(out[section], dict):
                raise ValueError(f"--param {item!r}: {section!r} is also given as a parameter")
            out[section][key] = _param_value(value)
        else:
            out[name] = _param_value(value)
    return out


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "sample":
            from .sample import write_sample
            path = write_sample(args.out, seed=args.seed, n_accounts=args.accounts)
            print(f"sample written to {path}")
            return 0
        if args.command == "validate":
            from .clean import validate_export
            period = None
            if args.quarter or args.start or args.end:
                from .period import resolve_period
                period = resolve_period(quarter=args.quarter, start=args.start, end=args.end)
            return validate_export(args.raw_dir, preset=args.preset, column_map=args.column_map, out_dir=args.out,
                                   period=period)
        if args.command == "report":
            require("report", "the report")
            if args.engine == "dask":
                require("scale", "--engine dask")
            from .report import run_report
            params = _parse_params(args.param)
            code = run_report(quarter=args.quarter, start=args.start, end=args.end, data=args.data,
                              preset=args.preset, column_map=args.column_map, params_file=args.params,
                              out_dir=args.out, only=args.only, engine=args.engine,
                              scheduler=args.scheduler, jobs=args.jobs, params=params)
            _exit_if_threads_remain(code)
            return code
    except KeyboardInterrupt:
        print(f"abmkit {args.command}: interrupted", file=sys.stderr)
        return 130
    except MissingExtraError as exc:  # an optional part is not installed: say what to install
        print(f"abmkit {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError, OSError) as exc:  # user errors: a message, not a traceback
        print(f"abmkit {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 1


def _exit_if_threads_remain(code: int) -> None:
    """The report joins its threads before it returns; should one still be alive (a kernel
    client that does not stop), end the process now with ``code`` instead of letting the
    interpreter finalize under a running thread, which can abort it (exit code 134)."""
    import os
    import threading

    if any(t.is_alive() and t is not threading.main_thread() for t in threading.enumerate()):
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)
