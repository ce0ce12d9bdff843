"""``fairflip evaluate``: metrics of a firm trained on a given flips file."""

from __future__ import annotations

from ..problem import build_problem, evaluate_flips
from ._common import add_collective_args, add_data_args, add_firm_args, load_inputs, print_json, read_flips


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="train the firm on labels flipped by a flips file and report metrics")
    add_data_args(p)
    add_collective_args(p)
    add_firm_args(p)
    p.add_argument("--flips", required=True, help="CSV with a 'row' column (as written by `fairflip flip --out`)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(run=run)


def run(args) -> int:
    flips = read_flips(args.flips)
    train, test, members = load_inputs(args)
    fraction = None if members is not None else (args.collective_fraction if args.collective_fraction is not None else 0.3)
    problem, prep = build_problem(
        train, firm=args.firm, C=args.C, collective_fraction=fraction, members=members,
        direction=args.direction, known_majority=args.known_majority, objective=args.objective,
        include_group=not args.no_group_feature, seed=args.seed,
    )
    if len(flips) and flips.max() >= problem.n:
        from .._errors import FairflipError
        raise FairflipError(f"flips file names row {int(flips.max())} but the train table has {problem.n} rows")
    # Evaluation does not require the flips to come from this collective: flip any listed rows.
    problem.collective = problem.collective.__class__(
        members=problem.collective.members.copy(), known_majority=problem.collective.known_majority,
        direction=problem.collective.direction)
    y_source = problem.y[flips] if len(flips) else None
    if y_source is not None and (y_source != problem.collective.source_label).any():
        from .._errors import FairflipError
        raise FairflipError(f"some flipped rows do not carry the source label {problem.collective.source_label} "
                            f"(direction {problem.collective.direction})")
    problem.collective.members[flips] = True
    test_arrays = None
    if test is not None:
        test_arrays = (prep.transform(test), test.y, test.a,
                       prep.transform(test, counterfactual_group=True) if prep.include_group else None)
    ev = evaluate_flips(problem, flips, test=test_arrays)
    report = {"n_flipped": int(len(flips)), "objective_name": args.objective, "objective": ev["objective"],
              "metrics": {k: ev[k] for k in ("train", "test") if k in ev}}
    if args.json:
        print_json(report)
    else:
        print(f"{len(flips)} flips; in-sample {args.objective} = {ev['objective']:.4f}")
        for split in ("train", "test"):
            if split in ev:
                print(f"{split:5s} " + "  ".join(f"{k}={v:.4f}" for k, v in ev[split].items()))
    return 0
