"""Run fairflip's benchmarks, print one table per benchmark and save all results as JSON.

Usage (from the repository root):
    python -m benchmarks.run [--only NAME ...] [--quick] [--device cpu|cuda] [--out benchmarks/results.json]

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

# name -> (module, full-size kwargs, quick kwargs)
BENCHMARKS = {
    "retrain": ("bench_retrain", {}, {"n": 10_000, "d": 20, "K": 16}),
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), help="run only these benchmarks")
    p.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    p.add_argument("--device", default=None, help="torch device (default: cuda when available)")
    p.add_argument("--out", default="benchmarks/results.json", help="JSON file for the results")
    args = p.parse_args(argv)
    results = {"python": sys.version.split()[0], "torch": torch.__version__, "platform": platform.platform(),
               "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, "benchmarks": []}
    for name in args.only or BENCHMARKS:
        module, full, quick = BENCHMARKS[name]
        kwargs = dict(quick if args.quick else full)
        if args.device is not None:
            kwargs["device"] = args.device
        t0 = time.perf_counter()
        res = importlib.import_module(f"benchmarks.{module}").run(**kwargs)
        res["wall_s"] = time.perf_counter() - t0
        results["benchmarks"].append(res)
        header = {k: v for k, v in res.items() if k not in ("rows", "benchmark")}
        print(f"\n== {name} == {header}")
        print(table(res["rows"], list(res["rows"][0].keys())))
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"\nresults saved to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
