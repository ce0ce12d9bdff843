"""Reading and checking the input of the problem-building subcommands (imported only when a command runs).

Everything here runs before the computation starts: argument values and their combinations, the registries' names
(after plugins are loaded), the tables, the flips file and the output location. Each problem ends in one
:class:`~fairflip._errors.FairflipError` that names the argument at fault.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from .._errors import FairflipError, check_binary
from ..datasets import Dataset, Provenance, from_frame, load, stratified_split
from ..datasets.table import read_table
from . import _args
from ._output import warn

FEW_LEVELS = 10
"""An integer feature with at most this many distinct values (and more than two) triggers the categorical hint."""
SMALL_TEST_CELL = 5
"""A test split with fewer rows than this in a (group, label) cell triggers the small-test warning."""



# --------------------------------------------------------------------------------------------- registries

def _registry(kind: str) -> list[str]:
    """The names registered now (plugins included) for ``kind`` in methods, firms, objectives."""
    if kind == "method":
        from ..methods import available_methods
        return available_methods()
    if kind == "firm":
        from .. import firms
        if hasattr(firms, "available_firms"):
            return list(firms.available_firms())
        return list(firms.FIRMS)
    if kind == "objective":
        try:
            from ..objectives import available_objectives
        except ImportError:
            from ..metrics import OBJECTIVES
            return list(OBJECTIVES)
        return list(available_objectives())
    raise ValueError(kind)


def check_name(kind: str, name: str, flag: str) -> str:
    """``name`` after checking it is registered as a ``kind`` (method, firm or objective)."""
    names = _registry(kind)
    if name not in names:
        raise FairflipError(f"{flag}: unknown {kind} {name!r}; choose one of {', '.join(names)}")
    return name


# --------------------------------------------------------------------------------------------- arguments

def prepare_problem_args(args: argparse.Namespace) -> None:
    """:func:`fairflip.cli._args.check_problem_args`, then the firm and objective names against the registries."""
    _args.check_problem_args(args)
    check_name("firm", args.firm, "--firm")
    check_name("objective", args.objective, "--objective")


# --------------------------------------------------------------------------------------------- tables

def _header(path: Path) -> list[str] | None:
    """The header fields of a CSV file (plain or gzip), or None when it cannot be read as one."""
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return None
    try:
        opener = gzip.open if name.endswith(".gz") else open
        with opener(path, "rt", newline="", encoding="utf-8") as fh:
            return next(csv.reader(fh), None)
    except (OSError, UnicodeDecodeError, EOFError, csv.Error, gzip.BadGzipFile):
        return None


def read_input_table(path: str, flag: str, *, allow_empty: bool = False) -> pd.DataFrame:
    """Read the table ``path`` given as ``flag``: clear errors for a missing path, a folder, an unreadable or
    damaged file, an empty table and duplicated column names."""
    p = Path(path)
    if not str(path).strip():
        raise FairflipError(f"{flag} is empty")
    if not p.exists():
        raise FairflipError(f"{flag}: file not found: {p}")
    if not p.is_file():
        raise FairflipError(f"{flag}: {p} is not a regular file")
    header = _header(p)
    if header:
        counts = Counter(header)
        dup = sorted(c for c, k in counts.items() if k > 1)[:10]
        if dup:
            raise FairflipError(f"{flag}: {p} has duplicated column name(s) {dup}")
    try:
        frame = read_table(p)
    except FairflipError as exc:
        raise FairflipError(f"{flag}: {exc}") from None
    except Exception as exc:  # pyarrow, gzip, zlib and pandas raise many types for damaged files
        raise FairflipError(f"{flag}: cannot read {p}: {type(exc).__name__}: "
                            f"{' '.join(str(exc).split())[:200]}") from None
    if frame.columns.duplicated().any():
        dup = sorted(set(frame.columns[frame.columns.duplicated()]))
        raise FairflipError(f"{flag}: {p} has duplicated column names {dup}")
    if len(frame) == 0 and not allow_empty:
        raise FairflipError(f"{flag}: {p} has no data rows")
    return frame


def _check_numeric_features(data: Dataset, flag: str) -> None:
    """Numeric features must be finite (huge finite values are standardised without overflow by the feature
    preparation)."""
    for c in data.numeric:
        col = data.features[c].to_numpy(dtype=np.float64)
        if not np.isfinite(col).all():
            raise FairflipError(f"{flag}: numeric feature '{c}' holds inf or NaN")


def _hint_integer_categories(frame: pd.DataFrame, data: Dataset, named: list[str] | None) -> None:
    for c in data.numeric:
        if named and c in named:
            continue
        raw = frame[c]
        if raw.dtype.kind in "iu":
            levels = raw.nunique(dropna=True)
            if 2 < levels <= FEW_LEVELS:
                warn(f"feature '{c}' holds integers with only {levels} distinct values and is treated as numeric; "
                     f"if it codes categories, name it in --categorical")


def _table_dataset(frame: pd.DataFrame, path: str, args: argparse.Namespace, flag: str, *,
                   features: list[str] | None, categorical: list[str] | None) -> Dataset:
    minority = dict(zip(args.group_cols, args.minority_values))
    try:
        return from_frame(frame, name=Path(path).name.split(".")[0], label=args.label, minority=minority,
                          features=features, categorical=categorical, positive=args.positive,
                          provenance=Provenance(source=f"user table {Path(path).name}", url="", licence="user's"))
    except FairflipError as exc:
        raise FairflipError(f"{flag}: {exc}") from None


def _warn_small_test(test: Dataset, flag: str) -> None:
    cells = {(a, y): int(((test.a == a) & (test.y == y)).sum()) for a in (0, 1) for y in (0, 1)}
    small = {k: v for k, v in cells.items() if v < SMALL_TEST_CELL}
    if small:
        parts = ", ".join(f"{'minority' if a else 'majority'} label {y}: {v}" for (a, y), v in small.items())
        warn(f"the test split ({flag}) has few rows in some (group, label) cells ({parts}); its metrics are noisy "
             f"or undefined")


def load_inputs(args: argparse.Namespace) -> tuple[Dataset, Dataset | None, np.ndarray | None]:
    """Return (train, test or None, explicit collective mask or None) from checked arguments
    (see :func:`prepare_problem_args`)."""
    if args.dataset is not None:
        try:
            data = load(args.dataset)
        except FairflipError as exc:
            raise FairflipError(f"--dataset: {exc}") from None
        try:
            train, test = stratified_split(data, test_size=args.test_size, seed=args.split_seed)
        except FairflipError as exc:
            raise FairflipError(f"--test-size {args.test_size}: {exc}") from None
        _warn_small_test(test, "--test-size")
        return train, test, None
    frame = read_input_table(args.train, "--train")
    features = args.feature_cols
    if features is None and args.collective:
        features = [c for c in frame.columns if c not in (args.label, args.collective, *args.group_cols)]
    categorical = None
    if args.categorical_cols:
        pool = features if features is not None else [c for c in frame.columns
                                                       if c != args.label and c not in args.group_cols]
        absent = [c for c in args.categorical_cols if c not in pool]
        if absent:
            raise FairflipError(f"--categorical names {absent}, which are not feature columns of --train")
        # the named columns plus the non-numeric ones, which are categorical anyway
        categorical = [c for c in pool if c in args.categorical_cols or frame[c].dtype.kind not in "iufb"]
    train = _table_dataset(frame, args.train, args, "--train", features=features, categorical=categorical)
    _check_numeric_features(train, "--train")
    _hint_integer_categories(frame, train, args.categorical_cols)
    members = None
    if args.collective:
        if args.collective not in frame.columns:
            raise FairflipError(f"--collective: column '{args.collective}' not found in {args.train}")
        col = frame[args.collective]
        if col.isna().any():
            raise FairflipError(f"--collective: column '{args.collective}' has missing values")
        try:
            members = check_binary(f"--collective column '{args.collective}'", col.to_numpy())
        except FairflipError as exc:
            raise FairflipError(f"--collective: {exc}") from None
        if not (members.astype(bool) & train.a.astype(bool)).any():
            raise FairflipError(f"--collective: column '{args.collective}' marks no minority row; the collective is "
                                "empty")
    test = None
    if args.test:
        tframe = read_input_table(args.test, "--test")
        if args.test == args.train or os.path.realpath(args.test) == os.path.realpath(args.train):
            warn("--test is the --train table; test metrics are then in-sample")
        absent = [c for c in [*train.features.columns, args.label, *args.group_cols] if c not in tframe.columns]
        if absent:
            raise FairflipError(f"--test: column(s) {absent} of --train are missing")
        test = _table_dataset(tframe, args.test, args, "--test", features=list(train.features.columns),
                              categorical=list(train.categorical))
        _check_numeric_features(test, "--test")
        _warn_small_test(test, "--test")
    return train, test, members


def problem_from_args(args: argparse.Namespace, loaded=None):
    """Build the flip problem the checked arguments describe.

    Args:
        args: checked by :func:`prepare_problem_args`.
        loaded: the (train, test, members) of :func:`load_inputs` when already read.

    Returns:
        (problem, test_arrays or None) where test_arrays = (X_test, y_test, a_test, X_test_counterfactual).
    """
    from ..problem import build_problem

    train, test, members = loaded if loaded is not None else load_inputs(args)
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


# --------------------------------------------------------------------------------------------- methods

def make_method(name: str, seed: int, params: dict, flag: str = "--method"):
    """The registered method ``name`` built with ``seed`` and keyword ``params`` (each bad one named)."""
    from ..methods import get_method

    check_name("method", name, flag)
    try:
        return get_method(name, seed=seed, **params)
    except FairflipError as exc:
        raise FairflipError(f"{flag} {name}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise FairflipError(f"{flag} {name}: bad parameters: {exc}") from None


# --------------------------------------------------------------------------------------------- files

def input_paths(args: argparse.Namespace) -> list[str]:
    """The files the command reads, plugin files included (an output must not be one of them)."""
    paths = [getattr(args, "train", None), getattr(args, "test", None), getattr(args, "flips", None)]
    plugins = [*(getattr(args, "plugins", None) or []), *(getattr(args, "sub_plugins", None) or [])]
    return [p for p in paths if p] + [p for p in plugins if p and os.path.isfile(p)]


def check_out(args: argparse.Namespace, flag: str = "--out") -> None:
    """Check ``args.out`` (when given) before any work: a writable file that is none of the inputs."""
    if getattr(args, "out", None) is None:
        return
    from .._io import check_output_path

    check_output_path(args.out, inputs=input_paths(args), name=flag)


def write_csv(path: str, frame: pd.DataFrame) -> None:
    """Write ``frame`` as CSV to ``path`` in one step (no partial file is ever left)."""
    from .._io import atomic_write

    atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))


MAX_ROW = 2**62


def read_flips(path: str, flag: str = "--flips") -> np.ndarray:
    """Read a flips file written by ``fairflip flip --out`` (a ``row`` column of 0-based row indices).

    Returns:
        shape (k,) int64, the rows in file order.
    """
    p = Path(path)
    if p.is_file() and p.stat().st_size == 0:
        raise FairflipError(f"{flag}: {path} is empty (it needs a 'row' column)")
    frame = read_input_table(path, flag, allow_empty=True)
    if "row" not in frame.columns:
        raise FairflipError(f"{flag}: {path} has no 'row' column")
    col = frame["row"]
    if col.dtype == bool or col.dtype.kind not in "iuf" and col.astype(str).str.strip().str.lower().isin(
            ["true", "false"]).any():
        raise FairflipError(f"{flag}: 'row' holds True/False; it must hold integer row indices")
    rows = pd.to_numeric(col, errors="coerce")
    if rows.isna().any():
        raise FairflipError(f"{flag}: 'row' must hold integer row indices; found a missing or non-numeric value")
    values = rows.to_numpy(dtype=np.float64) if rows.dtype.kind == "f" else rows.to_numpy()
    if (values < 0).any():
        raise FairflipError(f"{flag}: 'row' must hold non-negative integers; found {values[values < 0][0]}")
    if rows.dtype.kind == "f" and (np.mod(values, 1) != 0).any():
        raise FairflipError(f"{flag}: 'row' must hold whole numbers; found {values[np.mod(values, 1) != 0][0]}")
    if (values >= MAX_ROW).any():
        raise FairflipError(f"{flag}: 'row' holds {values.max():.6g}, far beyond any table")
    return np.asarray(values, dtype=np.int64)


def print_json(obj: dict) -> None:
    """Print exactly one JSON object on stdout (NaN is not valid JSON, so it becomes null)."""
    def clean(o):
        if isinstance(o, float) and not np.isfinite(o):
            return None
        if isinstance(o, dict):
            return {str(k): clean(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [clean(v) for v in o]
        if isinstance(o, np.ndarray):  # methods may report arrays in their info
            return clean(o.tolist())
        if isinstance(o, np.generic):
            return clean(o.item())
        if isinstance(o, (str, int, float, bool)) or o is None:
            return o
        return str(o)
    sys.stdout.write(json.dumps(clean(obj)) + "\n")
