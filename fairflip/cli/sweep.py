"""``fairflip sweep``: run methods over budgets, collective sizes and seeds; print the summary, write the table."""

from __future__ import annotations

import time

from .._errors import FairflipError
from ..methods import available_methods
from ..sweep import average_seeds, best_eqod_per_size, pareto_front, sweep
from ._common import add_problem_args, load_inputs, make_method, parse_numbers, parse_params, print_json, write_atomic


def add_parser(sub) -> None:
    p = sub.add_parser("sweep", help="run methods over budgets, collective sizes and seeds; summarise the results")
    add_problem_args(p)
    g = p.add_argument_group("sweep")
    g.add_argument("--methods", default="random,rb-prob,rb-label,rb-dist",
                   help=f"comma-separated methods ({', '.join(available_methods())}); default the paper's four")
    g.add_argument("--budgets", default="0,0.1,0.2,0.3,0.5",
                   help="comma-separated budgets: all counts (e.g. 0,50,100) or all fractions of the candidates "
                        "(e.g. 0,0.1,0.5; a number with a '.' is a fraction) (default 0,0.1,0.2,0.3,0.5)")
    g.add_argument("--fractions", help="comma-separated collective fractions (default: --collective-fraction, 0.3)")
    g.add_argument("--n-seeds", type=int, default=5, help="number of seeds, --seed, --seed + 1, ... (5)")
    g.add_argument("--param", action="append", help="method parameter method:key=value (repeatable), e.g. "
                                                    "rb-label:k=5")
    g.add_argument("--max-error-increase", type=float, default=None,
                   help="best EqOd per size only among budgets whose error is at most the unchanged firm's plus "
                        "this (e.g. 0.02); needs budget 0")
    g.add_argument("--out", help="write the full table (one row per configuration and seed) to this CSV")
    g.add_argument("--json", action="store_true",
                   help="print one JSON object with the seed-averaged table, Pareto fronts and best EqOd per size")
    p.set_defaults(run=run)


def _method_params(methods: list[str], items: list[str] | None, seed: int) -> dict[str, dict]:
    """``method:key=value`` items -> {method: {key: value}}, checked by instantiating each method once."""
    grouped: dict[str, list[str]] = {}
    for item in items or []:
        name, sep, rest = item.partition(":")
        if not sep or name not in methods:
            raise FairflipError(f"--param must look like method:key=value with a method of --methods, got {item!r}")
        grouped.setdefault(name, []).append(rest)
    for name in methods:
        make_method(name, seed, grouped.get(name))
    return {name: parse_params(rest) for name, rest in grouped.items()}


def run(args) -> int:
    start = time.perf_counter()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not methods:
        raise FairflipError("--methods is empty")
    if args.n_seeds < 1:
        raise FairflipError(f"--n-seeds must be at least 1, got {args.n_seeds}")
    budgets = parse_numbers(args.budgets, "budgets")
    if args.fractions is not None:
        fractions = parse_numbers(args.fractions, "fractions")
    else:
        fractions = [args.collective_fraction if args.collective_fraction is not None else 0.3]
    params = _method_params(methods, args.param, args.seed)
    train, test, members = load_inputs(args)
    if test is None:
        raise FairflipError("a sweep measures the firm on held-out rows: give --test (or --dataset)")
    table = sweep(
        train, test, methods=methods, budgets=budgets, collective_fractions=fractions,
        seeds=range(args.seed, args.seed + args.n_seeds), known_majority=args.known_majority, members=members,
        direction=args.direction, firm=args.firm, C=args.C, objective=args.objective,
        include_group=not args.no_group_feature, method_params=params,
    )
    if args.out:
        write_atomic(args.out, table)
    avg = average_seeds(table)
    front = pareto_front(table)
    best = best_eqod_per_size(table, max_error_increase=args.max_error_increase)
    runtime = time.perf_counter() - start
    if args.json:
        print_json({"average": avg.to_dict(orient="records"), "pareto": front.to_dict(orient="records"),
                    "best": best.to_dict(orient="records"), "n_rows": len(table), "runtime_s": runtime})
        return 0
    cols = ["method", "collective_fraction", "access", "budget", "n_flipped", "eqod", "eqod_std", "error", "dp",
            "success", "objective"]
    print(f"{train.name}: {len(table)} runs ({len(methods)} methods x {len(budgets)} budgets x "
          f"{len(table['collective_fraction'].unique())} collective sizes x {args.n_seeds} seeds), "
          f"test metrics averaged over seeds")
    print(avg[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print("\nbest EqOd per collective size" + ("" if args.max_error_increase is None else
                                                f" (error at most base + {args.max_error_increase})") + ":")
    print(best.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"\nruntime {runtime:.1f}s" + (f"; table written to {args.out}" if args.out else ""))
    return 0
