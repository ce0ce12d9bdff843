"""``fairflip evaluate``: metrics of a firm trained on a given flips file."""

from __future__ import annotations

from ._args import add_problem_args


def add_parser(sub) -> None:
    """Attach the ``evaluate`` subcommand to the subparsers ``sub`` (static data only, no heavy import)."""
    p = sub.add_parser("evaluate", help="train the firm on labels flipped by a flips file and report metrics")
    add_problem_args(p)
    p.add_argument("--flips", required=True, help="CSV with a 'row' column (as written by `fairflip flip --out`)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(run=run)


def run(args) -> int:
    """Run ``fairflip evaluate`` with the parsed ``args``; returns the exit status (bad input raises FairflipError)."""
    from ._args import check_problem_args

    check_problem_args(args)  # plain values first: a bad one fails before any heavy import

    import numpy as np

    from .._errors import FairflipError
    from ..problem import evaluate_labels
    from ._inputs import load_inputs, prepare_problem_args, print_json, problem_from_args, read_flips
    from ._output import flush_warnings

    prepare_problem_args(args)
    flips = read_flips(args.flips)
    problem, test_arrays = problem_from_args(args, load_inputs(args))
    if len(flips) and flips.max() >= problem.n:
        raise FairflipError(f"--flips names row {int(flips.max())} but the train table has {problem.n} rows")
    if len(np.unique(flips)) != len(flips):
        raise FairflipError("--flips lists a row twice")
    # A flips file may come from anywhere (another tool, another collective): flip exactly the rows it lists.
    y_train = problem.y.copy()
    y_train[flips] = 1 - y_train[flips]
    ev = evaluate_labels(problem, y_train, test=test_arrays)
    base = evaluate_labels(problem, problem.y.copy(), test=test_arrays)
    flush_warnings()
    splits = [k for k in ("train", "test") if k in ev]
    report = {"n_flipped": int(len(flips)), "objective_name": args.objective, "objective": ev["objective"],
              "metrics": {k: ev[k] for k in splits},
              "baseline": {"objective": base["objective"], **{k: base[k] for k in splits}}}
    if args.json:
        print_json(report)
    else:
        print(f"{len(flips)} flips; in-sample {args.objective} = {ev['objective']:.4f} "
              f"(no flips: {base['objective']:.4f})")
        for split in splits:
            print(f"{split:5s} " + "  ".join(f"{k}={v:.4f}" for k, v in ev[split].items()))
            print(f"{'':5s} " + "  ".join(f"{k}={v:.4f}" for k, v in base[split].items()) + "  (no flips)")
    return 0
