"""Arguments and input handling shared by the ``fairflip`` subcommands."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from .._errors import FairflipError
from .._io import atomic_write
from ..datasets import Dataset, load, load_table, read_table, stratified_split
from ..firms import FIRMS
from ..objectives import BUILTIN_OBJECTIVES as OBJECTIVES
from ..methods import get_method


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors (``fairflip: error: ...``) and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"fairflip: error: {message}\n")
        raise SystemExit(2)


def add_data_args(p: argparse.ArgumentParser) -> None:
    """--train/--test/--label/--group/--minority/--features, or --dataset with a seeded split."""
    g = p.add_argument_group("data")
    g.add_argument("--train", help="training table (CSV or Parquet); row i of the file is index i")
    g.add_argument("--test", help="held-out table with the same columns")
    g.add_argument("--label", help="binary label column")
    g.add_argument("--group", help="group column(s), comma separated for an intersectional minority")
    g.add_argument("--minority", help="minority value(s), one per --group column, comma separated")
    g.add_argument("--features", help="feature columns, comma separated (default: all others)")
    g.add_argument("--dataset", help="a registered dataset instead of --train (see `fairflip datasets`)")
    g.add_argument("--test-size", type=float, default=0.3, help="test share when --dataset is used (0.3)")
    g.add_argument("--split-seed", type=int, default=0, help="seed of the --dataset split (0)")


def add_collective_args(p: argparse.ArgumentParser) -> None:
    """--collective/--collective-fraction/--direction/--known-majority/--seed."""
    g = p.add_argument_group("collective")
    g.add_argument("--collective", help="0/1 column of the train table marking collective members")
    g.add_argument("--collective-fraction", type=float, default=None,
                   help="share of the minority in the collective, drawn with --seed (default 0.3)")
    g.add_argument("--direction", choices=["up", "down", "auto"], default="up",
                   help="up: 0->1 (the paper's default); down: 1->0; auto: towards the majority's base rate")
    g.add_argument("--known-majority", type=int, default=None,
                   help="restricted access: number of majority rows the collective knows (default: all)")
    g.add_argument("--seed", type=int, default=0, help="seed of the collective draw and random methods (0)")


def add_firm_args(p: argparse.ArgumentParser) -> None:
    """--firm/--C/--objective/--no-group-feature."""
    g = p.add_argument_group("firm")
    g.add_argument("--firm", choices=FIRMS, default="logistic", help="the firm's training pipeline (logistic)")
    g.add_argument("--C", type=float, default=1.0, help="inverse L2 strength of linear firms (1.0)")
    g.add_argument("--objective", choices=list(OBJECTIVES), default="eqod",
                   help="fairness objective reported in-sample and minimised by oracles (eqod)")
    g.add_argument("--no-group-feature", action="store_true", help="the firm does not see the group indicator")


def parse_numbers(value: str, what: str) -> list[int | float]:
    """Comma-separated numbers: items with a '.' or an exponent are floats (fractions), the others ints."""
    out: list[int | float] = []
    for item in (v.strip() for v in value.split(",")):
        if not item:
            continue
        try:
            out.append(float(item) if any(ch in item for ch in ".eE") else int(item))
        except ValueError:
            raise FairflipError(f"--{what} must be comma-separated numbers, got {item!r}") from None
    if not out:
        raise FairflipError(f"--{what} is empty")
    return out


def add_problem_args(p: argparse.ArgumentParser) -> None:
    """The data, collective and firm argument groups every problem-building subcommand takes."""
    add_data_args(p)
    add_collective_args(p)
    add_firm_args(p)


def _split_list(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


def load_inputs(args: argparse.Namespace) -> tuple[Dataset, Dataset | None, np.ndarray | None]:
    """Return (train, test or None, explicit collective mask or None) from the parsed arguments."""
    if args.dataset:
        if args.train:
            raise FairflipError("give either --dataset or --train, not both")
        data = load(args.dataset)
        train, test = stratified_split(data, test_size=args.test_size, seed=args.split_seed)
        if getattr(args, "collective", None):
            raise FairflipError("--collective needs a --train table holding that column")
        return train, test, None
    if not args.train:
        raise FairflipError("missing --train (or --dataset)")
    for name in ("label", "group", "minority"):
        if not getattr(args, name):
            raise FairflipError(f"missing --{name}")
    groups, values = _split_list(args.group), _split_list(args.minority)
    if len(groups) != len(values):
        raise FairflipError(f"--group names {len(groups)} column(s) but --minority gives {len(values)} value(s)")
    minority = dict(zip(groups, values))
    features = _split_list(args.features)
    collective_col = getattr(args, "collective", None)
    if features is None and collective_col:
        frame = read_table(args.train)
        features = [c for c in frame.columns if c not in (args.label, collective_col, *groups)]
    kw = dict(label=args.label, minority=minority, features=features)
    train = load_table(args.train, **kw)
    members = None
    if collective_col:
        frame = read_table(args.train)
        if collective_col not in frame.columns:
            raise FairflipError(f"collective column '{collective_col}' not found in {args.train}")
        members = frame[collective_col].to_numpy()
    test = None
    if args.test:
        test = load_table(args.test, **kw)
        if list(test.features.columns) != list(train.features.columns):
            raise FairflipError("the --test table's feature columns differ from the --train table's")
    return train, test, members


def problem_from_args(args: argparse.Namespace):
    """Load the inputs and build the flip problem the flip/evaluate arguments describe.

    Returns:
        (problem, test_arrays or None) where test_arrays = (X_test, y_test, a_test, X_test_counterfactual).
    """
    from ..problem import build_problem

    train, test, members = load_inputs(args)
    fraction = None if members is not None else (
        args.collective_fraction if args.collective_fraction is not None else 0.3)
    problem, prep = build_problem(
        train, firm=args.firm, C=args.C, collective_fraction=fraction, members=members,
        direction=args.direction, known_majority=args.known_majority, objective=args.objective,
        include_group=not args.no_group_feature, seed=args.seed,
    )
    test_arrays = None
    if test is not None:
        test_arrays = (prep.transform(test), test.y, test.a,
                       prep.transform(test, counterfactual_group=True) if prep.include_group else None)
    return problem, test_arrays


def parse_params(params: list[str] | None) -> dict:
    """``key=value`` strings -> {key: value}; values are read as JSON when they parse, else kept as strings."""
    kwargs: dict = {}
    for item in params or []:
        if "=" not in item:
            raise FairflipError(f"--param must look like key=value, got {item!r}")
        k, v = item.split("=", 1)
        try:
            kwargs[k] = json.loads(v)
        except json.JSONDecodeError:
            kwargs[k] = v
    return kwargs


def make_method(name: str, seed: int, params: list[str] | None):
    """Instantiate a registered method, passing ``seed`` when it takes one and ``key=value`` params."""
    return get_method(name, seed=seed, **parse_params(params))


def write_atomic(path: str | os.PathLike, frame: pd.DataFrame) -> None:
    """Write ``frame`` as CSV to ``path`` through a temporary file, so no partial file is ever left."""
    target = Path(path)
    if not target.parent.exists():
        raise FairflipError(f"output folder does not exist: {target.parent}")
    atomic_write(target, lambda tmp: frame.to_csv(tmp, index=False))


def read_flips(path: str | os.PathLike) -> np.ndarray:
    """Read a flips file written by ``fairflip flip --out`` (a ``row`` column), shape (k,) int64."""
    frame = read_table(path)
    if "row" not in frame.columns:
        raise FairflipError(f"flips file {path} has no 'row' column")
    rows = pd.to_numeric(frame["row"], errors="coerce")
    if rows.isna().any() or (rows < 0).any() or (rows % 1 != 0).any():
        raise FairflipError(f"flips file {path}: 'row' must hold non-negative integers")
    return rows.to_numpy(dtype=np.int64)


def print_json(obj: dict) -> None:
    """Print exactly one JSON object on stdout (NaN is not valid JSON, so it becomes null)."""
    def clean(o):
        if isinstance(o, float) and not np.isfinite(o):
            return None
        if isinstance(o, dict):
            return {k: clean(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [clean(v) for v in o]
        if isinstance(o, np.ndarray):  # methods may report arrays in their info
            return clean(o.tolist())
        if isinstance(o, np.generic):
            return clean(o.item())
        return o
    sys.stdout.write(json.dumps(clean(obj)) + "\n")
