"""``fairflip flip``: choose flips with a method, retrain the firm, report metrics next to the no-flip baseline."""

from __future__ import annotations

from ._args import add_problem_args, add_time_limit_arg, method_help

METRIC_KEYS = ("eqod", "eqod_worst", "dp", "eqopp", "error", "error_minority", "error_majority", "success")


def add_parser(sub) -> None:
    """Attach the ``flip`` subcommand to the subparsers ``sub`` (static data only, no heavy import)."""
    p = sub.add_parser("flip", help="choose flips with a method and evaluate the retrained firm")
    add_problem_args(p)
    g = p.add_argument_group("flip")
    g.add_argument("--method", required=True, help=method_help("flip method"))
    g.add_argument("--budget", required=True,
                   help="the most flips allowed: a count (e.g. 50) or a fraction of the candidates in (0, 1) "
                        "(e.g. 0.1)")
    g.add_argument("--param", action="append", help="method parameter key=value (repeatable), e.g. k=10")
    add_time_limit_arg(g, "the method")
    g.add_argument("--out", help="write the flipped rows to this CSV (column 'row')")
    g.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(run=run)


def run(args) -> int:
    """Run ``fairflip flip`` with the parsed ``args``; returns the exit status (bad input raises FairflipError)."""
    import time

    from . import _args

    start = time.perf_counter()
    _args.check_problem_args(args)  # plain values first: a bad one fails before any heavy import
    budget = _args.parse_budget(args.budget, "--budget")
    params = _args.parse_params(args.param)

    import numpy as np
    import pandas as pd

    from ..problem import evaluate_flips
    from ..strategies.base import resolve_budget
    from ._inputs import (check_out, load_inputs, make_method, prepare_problem_args, print_json,
                          problem_from_args, write_csv)
    from ._output import Progress, flush_warnings

    prepare_problem_args(args)
    method = make_method(args.method, args.seed, params)
    check_out(args)
    problem, test_arrays = problem_from_args(args, load_inputs(args))
    max_flips = resolve_budget(budget, len(problem.candidates))

    baseline = evaluate_flips(problem, np.zeros(0, dtype=np.int64), test=test_arrays)
    progress = Progress(args.method)
    try:
        result = method.select(problem, max_flips, time_limit=args.time_limit, progress=progress)
    finally:
        progress.close()
    ev = evaluate_flips(problem, result.flipped, test=test_arrays)
    flush_warnings()  # only now: a method may still refuse the problem, and then the error line is all that shows
    runtime = time.perf_counter() - start
    if args.out:
        write_csv(args.out, pd.DataFrame({"row": np.asarray(result.flipped, dtype=np.int64)}))

    def pick(report):
        return {split: {k: report[split][k] for k in METRIC_KEYS if k in report[split]}
                for split in ("train", "test") if split in report}

    metrics, base = pick(ev), pick(baseline)
    report = {
        "method": args.method,
        "budget": budget,
        "max_flips": max_flips,
        "direction": problem.collective.direction,
        "collective_size": problem.collective.size,
        "n_candidates": int(len(problem.candidates)),
        "n_flipped": int(len(result.flipped)),
        "flipped": [int(i) for i in result.flipped],
        "objective_name": args.objective,
        # the typed result (status, bound and its source, MIP gap, solver, time limit); the objective reported is
        # the one measured here after retraining, so heuristics (which measure none) have one too
        **{k: v for k, v in result.as_dict().items() if k not in ("flipped", "n_flipped", "runtime_s")},
        "objective": ev["objective"],
        "time_limit": args.time_limit,
        "baseline": {"objective": baseline["objective"], **base},
        "metrics": metrics,
        "info": result.info,
        "runtime_s": runtime,
    }
    if args.json:
        print_json(report)
        return 0
    shown = f"{budget} = {max_flips} flips" if isinstance(budget, float) else f"{budget}"
    print(f"{args.method}: flipped {report['n_flipped']} of {report['n_candidates']} candidates "
          f"(budget {shown}, direction {report['direction']}, collective {report['collective_size']}, "
          f"status {result.status})")
    print(f"in-sample {args.objective} = {ev['objective']:.4f} (no flips: {baseline['objective']:.4f})"
          + (f", certified lower bound {result.lower_bound:.4f}" if result.lower_bound is not None else ""))
    for split, m in metrics.items():
        print(f"{split:5s} " + "  ".join(f"{k}={v:.4f}" for k, v in m.items()))
        print(f"{'':5s} " + "  ".join(f"{k}={v:.4f}" for k, v in base[split].items()) + "  (no flips)")
    print(f"runtime {runtime:.2f}s" + (f"; flips written to {args.out}" if args.out else ""))
    return 0
