"""Run fairflip's benchmarks, print one table per benchmark and save all results as JSON.

Usage (from the repository root):
    python -m benchmarks.run [--only NAME ...] [--quick] [--device cpu|cuda] [--set NAME.KEY=JSON ...]
                             [--out FILE]

Every benchmark measures the alternatives side by side in the same process and reports ratios; absolute
times depend on the machine and are only informative.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
from pathlib import Path

import torch

from ._harness import table

# Oracle settings for the large-n runs: fewer relaxation steps and a capped local search than the defaults
# (which are tuned for instances of a few thousand rows), smaller retraining batches to bound memory.
ORACLE_AT_SCALE = {"steps": 30, "max_evaluations": 300, "neighbourhood": 32, "swap_shortlist": 8, "batch_size": 64}

FULL_OUT = "benchmarks/results.json"
QUICK_OUT = "benchmarks/out/results_quick.json"

# name -> (module, full-size kwargs, quick kwargs); run in this order (the longest last)
BENCHMARKS = {
    "hypergrad": ("bench_hypergrad", {}, {"n": 300, "d": 5, "candidates": 30}),
    "retrain": ("bench_retrain", {}, {"n": 10_000, "d": 20, "K": 16}),
    "knn": ("bench_knn", {}, {"n": 5_000, "d": 5}),
    "milp": ("bench_milp", {}, {"sizes": (60, 120), "budget": 3, "time_limit": 10.0}),
    "design": ("bench_design", {}, {"n": 3_000, "batches": (1, 40), "moves": 8, "source": "synthetic"}),
    "cli": ("bench_cli", {}, {"repeats": 1}),
    "portfolio": ("bench_portfolio", {},
                  {"datasets": ("compas",), "budgets": (10,), "tiny_sizes": (40,), "tiny_budgets": (2,),
                   "tiny_seeds": 1, "relaxed_sizes": (2_000,), "relaxed_features": 5, "sweep_datasets": (),
                   "repeats": 1}),
    "oracle": ("bench_oracle", {"oracle_params": ORACLE_AT_SCALE},
               {"sizes": (1_000, 2_000), "source": "synthetic", "features": 20, "greedy_n": 600, "greedy_budget": 3,
                "oracle_params": {"steps": 10, "max_evaluations": 200}}),
}


def parse_overrides(items: list[str], parser: argparse.ArgumentParser) -> dict[str, dict]:
    """``["oracle.sizes=[5000]", ...]`` -> ``{"oracle": {"sizes": [5000]}}``; values are JSON."""
    out: dict[str, dict] = {}
    for item in items:
        target, sep, value = item.partition("=")
        name, dot, key = target.partition(".")
        if not sep or not dot or name not in BENCHMARKS:
            parser.error(f"--set expects NAME.KEY=JSON with NAME among {', '.join(BENCHMARKS)}, got {item!r}")
        try:
            out.setdefault(name, {})[key] = json.loads(value)
        except json.JSONDecodeError:
            parser.error(f"--set {item!r}: the value is not JSON")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), help="run only these benchmarks")
    p.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    p.add_argument("--device", default=None, help="torch device (default: cuda when available)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME.KEY=JSON",
                   help="override one keyword of one benchmark, e.g. oracle.sizes=[5000,20000] (recorded in the JSON)")
    p.add_argument("--out", default=None,
                   help=f"JSON file for the results (default: {FULL_OUT}; with --quick, {QUICK_OUT}, which is "
                        "git-ignored, so a smoke run never overwrites the tracked results)")
    args = p.parse_args(argv)
    if args.out is None:
        args.out = QUICK_OUT if args.quick else FULL_OUT
    overrides = parse_overrides(args.overrides, p)
    results = {"python": sys.version.split()[0], "torch": torch.__version__, "platform": platform.platform(),
               "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, "benchmarks": []}
    for name in args.only or BENCHMARKS:
        module, full, quick = BENCHMARKS[name]
        kwargs = dict(quick if args.quick else full)
        if args.device is not None:
            kwargs["device"] = args.device
        kwargs.update(overrides.get(name, {}))
        t0 = time.perf_counter()
        res = importlib.import_module(f"benchmarks.{module}").run(**kwargs)
        res["wall_s"] = time.perf_counter() - t0
        if overrides.get(name):
            res["overrides"] = overrides[name]
        results["benchmarks"].append(res)
        header = {k: v for k, v in res.items() if k not in ("rows", "versus_greedy", "benchmark")}
        print(f"\n== {name} == {header}")
        for key in ("rows", "versus_greedy", "summary", "sweep", "tiny", "relaxed"):
            if res.get(key):
                print(table(res[key], list(res[key][0].keys())))
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"\nresults saved to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
