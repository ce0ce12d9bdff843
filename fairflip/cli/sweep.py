"""``fairflip sweep``: run methods over budgets, collective sizes and seeds; print the summary, write the table."""

from __future__ import annotations

from . import _names
from ._args import add_problem_args, add_time_limit_arg, method_help


def add_parser(sub) -> None:
    """Attach the ``sweep`` subcommand to the subparsers ``sub`` (static data only, no heavy import)."""
    p = sub.add_parser("sweep", help="run methods over budgets, collective sizes and seeds; summarise the results")
    add_problem_args(p)
    g = p.add_argument_group("sweep")
    g.add_argument("--methods", default=",".join(_names.SWEEP_METHODS),
                   help=method_help("comma-separated methods") + "; default the paper's four")
    g.add_argument("--budgets", default="0,0.1,0.2,0.3,0.5",
                   help="comma-separated budgets: counts (e.g. 0,50,100) or fractions of the candidates in (0, 1) "
                        "(e.g. 0,0.1,0.5), not mixed; 0 is the unchanged firm (default 0,0.1,0.2,0.3,0.5)")
    g.add_argument("--fractions", help="comma-separated collective fractions in (0, 1] (default: "
                                       "--collective-fraction, 0.3)")
    g.add_argument("--n-seeds", default="5", help="number of seeds, --seed, --seed + 1, ... (5; at most 1000)")
    g.add_argument("--param", action="append", help="method parameter method:key=value (repeatable), e.g. "
                                                    "rb-label:k=5")
    g.add_argument("--max-error-increase", metavar="E",
                   help="best EqOd per size only among budgets whose error is at most the unchanged firm's plus "
                        "E >= 0 (e.g. 0.02); needs budget 0")
    add_time_limit_arg(g, "each method call (one problem, all budgets)")
    g.add_argument("--out", help="write the full table (one row per configuration and seed) to this CSV")
    g.add_argument("--json", action="store_true",
                   help="print one JSON object with the seed-averaged table, Pareto fronts and best EqOd per size")
    p.set_defaults(run=run)


def _method_params(methods: list[str], items: list[str] | None, seed: int) -> dict[str, dict]:
    """``method:key=value`` items -> {method: {key: value}}, checked by instantiating each method once."""
    from .._errors import FairflipError
    from . import _args
    from ._inputs import make_method

    grouped: dict[str, list[str]] = {}
    for item in items or []:
        name, sep, rest = item.partition(":")
        if not sep or name not in methods:
            raise FairflipError(f"--param must look like method:key=value with a method of --methods, got {item!r}")
        grouped.setdefault(name, []).append(rest)
    params = {name: _args.parse_params(rest) for name, rest in grouped.items()}
    for name in methods:
        make_method(name, seed, params.get(name, {}), flag="--methods")
    return params


def seed_range(seed: int, n_seeds: int):
    """Seeds ``seed .. seed + n_seeds - 1``, checked to stay in [0, 2**32 - 1]."""
    from .._errors import FairflipError
    from ._args import MAX_SEED

    if seed + n_seeds - 1 > MAX_SEED:
        raise FairflipError(f"--seed {seed} with --n-seeds {n_seeds} runs past the largest seed {MAX_SEED}")
    return range(seed, seed + n_seeds)


def format_table(frame, int_columns=()) -> str:
    """A table as text: counts as integers, budgets as given, other numbers with 4 decimals."""
    shown = frame.copy()
    for c in shown.columns:
        col = shown[c]
        if c in int_columns:
            shown[c] = [("" if v != v else f"{v:.1f}" if abs(v - round(v)) > 1e-9 else f"{int(round(v))}")
                        for v in col]
        elif c == "budget" and col.dtype.kind in "iuf":  # counts as integers, fractions as written
            shown[c] = [f"{v:g}" for v in col]
    return shown.to_string(index=False, float_format=lambda v: f"{v:.4f}")


def run(args) -> int:
    """Run ``fairflip sweep`` with the parsed ``args``; returns the exit status (bad input raises FairflipError)."""
    import time

    from .._errors import FairflipError
    from . import _args

    start = time.perf_counter()
    _args.check_problem_args(args)  # plain values first: a bad one fails before any heavy import
    methods = _args.parse_names(args.methods, "--methods", allow_none=False)
    n_seeds = _args.parse_int(args.n_seeds, "--n-seeds", low=1, high=_args.MAX_SEEDS)
    seeds = seed_range(args.seed, n_seeds)
    budgets = _args.parse_budgets(args.budgets, "--budgets")
    if args.fractions is not None:
        if args.collective is not None:
            raise FairflipError("--fractions draws collectives, --collective gives one; give one of them")
        if args.collective_fraction is not None:
            raise FairflipError("--fractions and --collective-fraction both set the collective size; give one")
        fractions = _args.parse_fractions(args.fractions, "--fractions")
    else:
        fractions = [args.collective_fraction if args.collective_fraction is not None else 0.3]
    if len(fractions) * n_seeds > _args.MAX_PROBLEMS:
        raise FairflipError(f"--fractions x --n-seeds makes {len(fractions) * n_seeds} problems; at most "
                            f"{_args.MAX_PROBLEMS} are allowed")
    n_rows = len(methods) * len(budgets) * len(fractions) * n_seeds
    if n_rows > _args.MAX_ROWS:
        raise FairflipError(f"--methods x --budgets x --fractions x --n-seeds makes {n_rows:,} runs; at most "
                            f"{_args.MAX_ROWS:,} are allowed")
    max_increase = _args.parse_float(args.max_error_increase, "--max-error-increase", low=0.0)
    if max_increase is not None and 0 not in budgets:
        raise FairflipError("--max-error-increase needs budget 0 (the unchanged firm) in --budgets")

    from ..sweep import average_seeds, best_eqod_per_size, pareto_front, sweep
    from ._inputs import check_out, load_inputs, prepare_problem_args, print_json, write_csv
    from ._output import Progress, flush_warnings

    prepare_problem_args(args)
    params = _method_params(methods, args.param, args.seed)
    check_out(args)
    train, test, members = load_inputs(args)
    if test is None:
        raise FairflipError("a sweep measures the firm on held-out rows: give --test (or --dataset)")
    progress = Progress("sweep")
    try:
        table = sweep(
            train, test, methods=methods, budgets=budgets, collective_fractions=fractions, seeds=seeds,
            known_majority=args.known_majority, members=members, direction=args.direction, firm=args.firm, C=args.C,
            objective=args.objective, include_group=not args.no_group_feature, method_params=params,
            time_limit=args.time_limit, progress=progress,
        )
    finally:
        progress.close()
    flush_warnings()  # only now: a method may still refuse a problem, and then the error line is all that shows
    if args.out:
        write_csv(args.out, table)
    avg = average_seeds(table)
    front = pareto_front(table)
    best = best_eqod_per_size(table, max_error_increase=max_increase)
    runtime = time.perf_counter() - start
    if args.json:
        print_json({"average": avg.to_dict(orient="records"), "pareto": front.to_dict(orient="records"),
                    "best": best.to_dict(orient="records"), "n_rows": len(table), "runtime_s": runtime})
        return 0
    cols = ["method", "collective_fraction", "access", "budget", "max_flips", "n_flipped", "eqod", "eqod_std",
            "error", "dp", "success", "objective"]
    print(f"{train.name}: {len(table)} runs ({len(methods)} methods x {len(budgets)} budgets x "
          f"{len(table['collective_fraction'].unique())} collective sizes x {n_seeds} seeds), "
          f"test metrics averaged over seeds")
    print(format_table(avg[cols], int_columns=("max_flips", "n_flipped")))
    print("\nbest EqOd per collective size" + ("" if max_increase is None else
                                                f" (error at most base + {max_increase:g})") + ":")
    print(format_table(best, int_columns=("n_flipped",)))
    if (table["status"] == "time_limit").any():
        print(f"\n{int((table['status'] == 'time_limit').sum())} run(s) stopped at the time limit")
    print(f"\nruntime {runtime:.1f}s" + (f"; table written to {args.out}" if args.out else ""))
    return 0
