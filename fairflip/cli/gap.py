"""``fairflip gap``: the heuristics' optimality gap to the oracle, in-sample and on the test split, over seeds."""

from __future__ import annotations

from . import _names
from ._args import add_problem_args, add_time_limit_arg


def add_parser(sub) -> None:
    """Attach the ``gap`` subcommand to the subparsers ``sub`` (static data only, no heavy import)."""
    p = sub.add_parser("gap",
                       help="each heuristic's objective versus the (omniscient) oracle's, over budgets and seeds")
    add_problem_args(p)
    g = p.add_argument_group("gap")
    g.add_argument("--budgets", default="10,25,50,100",
                   help="comma-separated flip budgets: counts (e.g. 10,25) or fractions of the candidates in (0, 1) "
                        "(e.g. 0.1,0.2), not mixed (10,25,50,100)")
    g.add_argument("--n-seeds", default="1", help="collective draws: seeds --seed .. --seed + n - 1 (1; at most 1000)")
    g.add_argument("--methods", default=",".join(_names.HEURISTICS),
                   help=f"heuristics compared with the oracle ({','.join(_names.HEURISTICS)}, or any registered "
                        "method)")
    g.add_argument("--oracle", default="oracle", help="reference method (oracle)")
    g.add_argument("--oracle-param", action="append", help="oracle parameter key=value (repeatable)")
    add_time_limit_arg(g, "each method call (all budgets of one seed)")
    g.add_argument("--out", help="write the tidy gap table to this CSV")
    g.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(run=run)


def run(args) -> int:
    """Run ``fairflip gap`` with the parsed ``args``; returns the exit status (bad input raises FairflipError)."""
    import time

    from .._errors import FairflipError
    from . import _args
    from .sweep import format_table, seed_range

    start = time.perf_counter()
    _args.check_problem_args(args)  # plain values first: a bad one fails before any heavy import
    budgets = _args.parse_budgets(args.budgets, "--budgets")
    n_seeds = _args.parse_int(args.n_seeds, "--n-seeds", low=1, high=_args.MAX_SEEDS)
    seeds = seed_range(args.seed, n_seeds)
    methods = _args.parse_names(args.methods, "--methods", allow_none=False)
    if not args.oracle.strip():
        raise FairflipError("--oracle is empty")
    if args.oracle in methods:
        raise FairflipError(f"--methods names the --oracle '{args.oracle}'; it is always compared")
    n_rows = (len(methods) + 1) * len(budgets) * n_seeds
    if n_rows > _args.MAX_ROWS:
        raise FairflipError(f"--methods x --budgets x --n-seeds makes {n_rows:,} answers; at most "
                            f"{_args.MAX_ROWS:,} are allowed")
    oracle_params = _args.parse_params(args.oracle_param, "--oracle-param")

    from ..gap import gap_summary, optimality_gap
    from ._inputs import check_out, load_inputs, make_method, prepare_problem_args, print_json, write_csv
    from ._output import Progress, flush_warnings

    prepare_problem_args(args)
    for name in methods:
        make_method(name, args.seed, {}, flag="--methods")
    make_method(args.oracle, args.seed, oracle_params, flag="--oracle")
    check_out(args)
    train, test, members = load_inputs(args)
    progress = Progress("gap")
    try:
        table = optimality_gap(
            train, test, budgets=budgets, seeds=seeds, firm=args.firm, C=args.C,
            collective_fraction=args.collective_fraction if args.collective_fraction is not None else 0.3,
            members=members, direction=args.direction, known_majority=args.known_majority, objective=args.objective,
            include_group=not args.no_group_feature, heuristics=methods, oracle=args.oracle,
            oracle_params=oracle_params, time_limit=args.time_limit, progress=progress,
        )
    finally:
        progress.close()
    flush_warnings()  # only now: a method may still refuse a problem, and then the error line is all that shows
    if args.out:
        write_csv(args.out, table)
    summary = gap_summary(table)
    runtime = time.perf_counter() - start
    if args.json:
        # Every row of the tidy table (per seed, budget, method and split: objective, the oracle's incumbent,
        # certified bound, its source, statuses, MIP gap, solver, time limit, data hash) next to the summary.
        print_json({"summary": summary.to_dict(orient="records"), "rows": table.to_dict(orient="records"),
                    "n_rows": len(table), "runtime_s": runtime})
        return 0
    wide = summary.pivot_table(index=["split", "budget"], columns="method", values="objective_mean").reset_index()
    print(f"{train.name}: {args.objective} of each method (mean over {n_seeds} seed(s)); the oracle is omniscient")
    print(format_table(wide))
    cols = ["budget", "lower_bound"] + (["bound_source"] if "bound_source" in table.columns else [])
    bounds = table.loc[(table["split"] == "in-sample") & (table["method"] == args.oracle), cols].dropna()
    if len(bounds):
        by = bounds.groupby("budget")
        sources = by["bound_source"].agg(lambda s: "/".join(sorted(set(s)))) if "bound_source" in cols else None
        print("certified lower bounds (in-sample, mean over seeds): "
              + ", ".join(f"M={b:g}: {v:.4f}" + (f" ({sources[b]})" if sources is not None else "")
                          for b, v in by["lower_bound"].mean().items()))
    if "bound_inconsistent" in table.columns and table["bound_inconsistent"].astype(bool).any():
        print("warning: a bound above an evaluated objective was withdrawn (bound_inconsistent); see --out")
    if "time_limit_hit" in table.columns and table["time_limit_hit"].astype(bool).any():
        hit = table[table["time_limit_hit"].astype(bool) & (table["split"] == "in-sample")]
        print(f"{len(hit)} (method, budget, seed) answer(s) stopped at the time limit: "
              + ", ".join(sorted(set(hit["method"]))))
    print(f"runtime {runtime:.1f}s" + (f"; table written to {args.out}" if args.out else ""))
    return 0
