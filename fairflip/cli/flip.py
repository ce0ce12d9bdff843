"""``fairflip flip``: choose flips with a method, retrain the firm, report metrics."""

from __future__ import annotations

import time

import pandas as pd

from ..methods import available_methods
from .._errors import FairflipError
from ..problem import evaluate_flips
from ._common import add_problem_args, make_method, print_json, problem_from_args, write_atomic


def add_parser(sub) -> None:
    p = sub.add_parser("flip", help="choose flips with a method and evaluate the retrained firm")
    add_problem_args(p)
    p.add_argument("--method", required=True, help=f"flip method ({', '.join(available_methods())})")
    p.add_argument("--budget", type=int, required=True, help="the most flips allowed (M)")
    p.add_argument("--param", action="append", help="method parameter key=value (repeatable), e.g. k=10")
    p.add_argument("--out", help="write the flipped rows to this CSV (column 'row')")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(run=run)


def run(args) -> int:
    start = time.perf_counter()
    if args.budget < 0:
        raise FairflipError(f"--budget must be non-negative, got {args.budget}")
    method = make_method(args.method, args.seed, args.param)
    problem, test_arrays = problem_from_args(args)
    result = method.select(problem, args.budget)
    ev = evaluate_flips(problem, result.flipped, test=test_arrays)
    runtime = time.perf_counter() - start
    if args.out:
        write_atomic(args.out, pd.DataFrame({"row": result.flipped}))
    keys = ("eqod", "eqod_worst", "dp", "eqopp", "error", "error_minority", "error_majority", "success")
    metrics = {split: {k: ev[split][k] for k in keys if k in ev[split]} for split in ("train", "test") if split in ev}
    report = {
        "method": args.method,
        "budget": args.budget,
        "direction": problem.collective.direction,
        "collective_size": problem.collective.size,
        "n_candidates": int(len(problem.candidates)),
        "n_flipped": int(len(result.flipped)),
        "flipped": [int(i) for i in result.flipped],
        "objective_name": args.objective,
        "objective": ev["objective"],
        "lower_bound": result.lower_bound,
        "metrics": metrics,
        "info": result.info,
        "runtime_s": runtime,
    }
    if args.json:
        print_json(report)
    else:
        print(f"{args.method}: flipped {report['n_flipped']} of {report['n_candidates']} candidates "
              f"(budget {args.budget}, direction {report['direction']}, collective {report['collective_size']})")
        print(f"in-sample {args.objective} = {ev['objective']:.4f}"
              + (f", certified lower bound {result.lower_bound:.4f}" if result.lower_bound is not None else ""))
        for split, m in metrics.items():
            print(f"{split:5s} " + "  ".join(f"{k}={v:.4f}" for k, v in m.items()))
        print(f"runtime {runtime:.2f}s" + (f"; flips written to {args.out}" if args.out else ""))
    return 0
