"""``fairflip gap``: the heuristics' optimality gap to the oracle, in-sample and on the test split, over seeds."""

from __future__ import annotations

import time

from .._errors import FairflipError
from ..gap import DEFAULT_HEURISTICS, gap_summary, optimality_gap
from ._common import add_problem_args, load_inputs, parse_numbers, parse_params, print_json, write_atomic


def add_parser(sub) -> None:
    p = sub.add_parser("gap", help="each heuristic's objective versus the (omniscient) oracle's, over budgets and seeds")
    add_problem_args(p)
    g = p.add_argument_group("gap")
    g.add_argument("--budgets", default="10,25,50,100", help="comma-separated flip budgets (10,25,50,100)")
    g.add_argument("--n-seeds", type=int, default=1, help="collective draws: seeds --seed .. --seed + n - 1 (1)")
    g.add_argument("--methods", default=",".join(DEFAULT_HEURISTICS),
                   help="heuristics compared with the oracle (the registered ones of the default list)")
    g.add_argument("--oracle", default="oracle", help="reference method (oracle)")
    g.add_argument("--oracle-param", action="append", help="oracle parameter key=value (repeatable)")
    g.add_argument("--out", help="write the tidy gap table to this CSV")
    g.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(run=run)


def run(args) -> int:
    start = time.perf_counter()
    budgets = parse_numbers(args.budgets, "budgets")
    if any(not isinstance(b, int) or b < 0 for b in budgets):
        raise FairflipError(f"--budgets must be non-negative integers, got {args.budgets!r}")
    if args.n_seeds < 1:
        raise FairflipError(f"--n-seeds must be at least 1, got {args.n_seeds}")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    train, test, members = load_inputs(args)
    table = optimality_gap(
        train, test, budgets=budgets, seeds=range(args.seed, args.seed + args.n_seeds), firm=args.firm, C=args.C,
        collective_fraction=args.collective_fraction if args.collective_fraction is not None else 0.3,
        members=members, direction=args.direction, known_majority=args.known_majority, objective=args.objective,
        include_group=not args.no_group_feature, heuristics=methods, oracle=args.oracle,
        oracle_params=parse_params(args.oracle_param),
    )
    if args.out:
        write_atomic(args.out, table)
    summary = gap_summary(table)
    runtime = time.perf_counter() - start
    if args.json:
        print_json({"summary": summary.to_dict(orient="records"), "n_rows": len(table), "runtime_s": runtime})
        return 0
    wide = summary.pivot_table(index=["split", "budget"], columns="method", values="objective_mean")
    print(f"{train.name}: {args.objective} of each method (mean over {args.n_seeds} seed(s)); the oracle is omniscient")
    print(wide.to_string(float_format=lambda v: f"{v:.4f}"))
    bounds = table.loc[table["split"] == "in-sample", ["budget", "lower_bound"]].dropna()
    if len(bounds):
        print("certified lower bounds (in-sample): "
              + ", ".join(f"M={int(b)}: {v:.4f}" for b, v in bounds.groupby("budget")["lower_bound"].mean().items()))
    print(f"runtime {runtime:.1f}s" + (f"; table written to {args.out}" if args.out else ""))
    return 0
