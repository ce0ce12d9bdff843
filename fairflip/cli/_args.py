"""The argument parser and the checks of every argument value, with no heavy import.

``fairflip --help`` and a mistyped argument must answer at once, so this module imports only argparse and the
standard library (plus :mod:`fairflip._errors`). Numbers are taken as strings by the parser and checked here, so
that every bad value ends in one :class:`~fairflip._errors.FairflipError` naming its argument.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Sequence

from .._errors import MAX_SEED, FairflipError
from . import _names

MAX_SEEDS = 1000
"""Upper bound of ``--n-seeds`` and ``reproduce --seeds``."""
MAX_LIST = 1000
"""Upper bound on the length of a comma-separated list (budgets, fractions, methods)."""
MAX_PROBLEMS = 10_000
"""Upper bound on the problems of one sweep (collective fractions x seeds)."""
MAX_ROWS = 1_000_000
"""Upper bound on the rows of one sweep or gap table (methods x budgets x problems)."""
MAX_BUDGET = 10**12
"""Upper bound on a flip budget given as a count (larger counts mean "all candidates" anyway)."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors (``fairflip: error: ...``), exit status 2 and no prefix abbreviations."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"fairflip: error: {' '.join(message.split())}\n")
        raise SystemExit(2)


# --------------------------------------------------------------------------------------------- value checks

def parse_int(value: str | int | None, flag: str, *, low: int | None = None, high: int | None = None) -> int | None:
    """``value`` (a string of digits, or an int) as an int in [low, high]; None stays None."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise FairflipError(f"{flag} must be an integer, got {value!r}")
    text = str(value).strip()
    if not text or not (text.isdigit() or (text[0] in "+-" and text[1:].isdigit())) or not text.isascii():
        raise FairflipError(f"{flag} must be an integer, got {value!r}")
    number = int(text)
    if low is not None and number < low:
        raise FairflipError(f"{flag} must be at least {low}" + ("" if high is None else f" (and at most {high})")
                            + f", got {number}")
    if high is not None and number > high:
        raise FairflipError(f"{flag} must be at most {high}, got {number}")
    return number


def parse_float(value: str | float | None, flag: str, *, low: float | None = None, high: float | None = None,
                low_open: bool = False, high_open: bool = False) -> float | None:
    """``value`` as a finite float within the given bounds (open or closed); None stays None."""
    if value is None:
        return None
    try:
        number = float(str(value).strip()) if not isinstance(value, bool) else math.nan
    except ValueError:
        raise FairflipError(f"{flag} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise FairflipError(f"{flag} must be a finite number, got {value!r}")
    below = low is not None and (number <= low if low_open else number < low)
    above = high is not None and (number >= high if high_open else number > high)
    if below or above:
        left = "-inf" if low is None else f"{low:g}"
        right = "inf" if high is None else f"{high:g}"
        opening = "(" if low_open or low is None else "["
        closing = ")" if high_open or high is None else "]"
        interval = f"{opening}{left}, {right}{closing}"
        raise FairflipError(f"{flag} must lie in {interval}, got {value!r}")
    return number


def parse_seed(value: str | int | None, flag: str = "--seed") -> int | None:
    """A seed: an integer in [0, 2**32 - 1]."""
    return parse_int(value, flag, low=0, high=MAX_SEED)


def parse_budget(value: str | int | float, flag: str) -> int | float:
    """One flip budget: a whole number is a count (``50``); a number with a decimal point or an exponent is a
    fraction of the candidates and must lie strictly between 0 and 1 (``0.1`` = 10 % of the candidates).

    Returns:
        an int (count) or a float in (0, 1) (fraction).
    """
    if isinstance(value, bool):
        raise FairflipError(f"{flag} must be a count (e.g. 50) or a fraction in (0, 1) (e.g. 0.1), got {value!r}")
    if isinstance(value, int):
        return parse_int(value, flag, low=0, high=MAX_BUDGET)
    text = str(value).strip()
    if text.isdigit() and text.isascii():
        return parse_int(text, flag, low=0, high=MAX_BUDGET)
    if text.startswith("-") and text[1:].replace(".", "", 1).isdigit():
        raise FairflipError(f"{flag} must be non-negative, got {value!r}")
    try:
        number = float(text)
    except ValueError:
        raise FairflipError(f"{flag} must be a count (e.g. 50) or a fraction in (0, 1) (e.g. 0.1), "
                            f"got {value!r}") from None
    if not (math.isfinite(number) and 0.0 < number < 1.0):
        raise FairflipError(f"{flag}: {value!r} is written as a fraction of the candidates, which must lie in "
                            "(0, 1); write a count as a whole number (e.g. 50)")
    return number


def split_list(value: str, flag: str, what: str, empty_hint: str = "") -> list[str]:
    """The stripped items of a comma-separated list, refusing an empty list, an empty item and more than
    :data:`MAX_LIST` items (each with one message naming ``flag``)."""
    items = [v.strip() for v in str(value).split(",")]
    if not any(items):
        raise FairflipError(f"{flag} is empty{empty_hint}")
    if not all(items):
        raise FairflipError(f"{flag} has an empty {what[:-1] if what.endswith('s') else what}: {value!r}")
    if len(items) > MAX_LIST:
        raise FairflipError(f"{flag} lists {len(items)} {what}; at most {MAX_LIST} are allowed")
    return items


def parse_budgets(value: str, flag: str = "--budgets") -> list[int | float]:
    """Comma-separated budgets (see :func:`parse_budget`): all counts or all fractions (0 goes with both),
    no repeats, at most :data:`MAX_LIST`."""
    items = split_list(value, flag, "budgets", "; give comma-separated budgets such as 10,25 or 0.1,0.2")
    out: list[int | float] = []
    for item in items:
        try:
            out.append(parse_budget(item, flag))
        except FairflipError as exc:
            if "must be a count" in str(exc):
                raise FairflipError(f"{flag} must be comma-separated numbers (counts such as 50 or fractions "
                                    f"in (0, 1) such as 0.1), got {item!r}") from None
            raise
    if any(isinstance(b, float) for b in out) and any(isinstance(b, int) and b != 0 for b in out):
        raise FairflipError(f"{flag} must be all counts (e.g. 0,50,100) or all fractions of the candidates "
                            f"(e.g. 0,0.1,0.5), got {value!r}")
    if len(set(out)) != len(out):
        raise FairflipError(f"{flag} repeats a budget: {value!r}")
    return out


def parse_fractions(value: str, flag: str) -> list[float]:
    """Comma-separated shares in (0, 1], no repeats, at most :data:`MAX_LIST`."""
    items = split_list(value, flag, "values")
    out = []
    for item in items:
        try:
            number = float(item)
        except ValueError:
            raise FairflipError(f"{flag} must be comma-separated numbers, got {item!r}") from None
        if not (math.isfinite(number) and 0.0 < number <= 1.0):
            raise FairflipError(f"{flag} values must lie in (0, 1], got {item!r}")
        out.append(number)
    if len(set(out)) != len(out):
        raise FairflipError(f"{flag} repeats a value: {value!r}")
    return out


def parse_names(value: str | None, flag: str, *, allow_none: bool = True) -> list[str] | None:
    """Comma-separated names: no empty item, no repeat, at most :data:`MAX_LIST`; None stays None."""
    if value is None:
        if allow_none:
            return None
        raise FairflipError(f"missing {flag}")
    items = split_list(value, flag, "names")
    seen = set()
    for item in items:
        if item in seen:
            raise FairflipError(f"{flag} names '{item}' twice")
        seen.add(item)
    return items


def parse_params(items: Sequence[str] | None, flag: str = "--param") -> dict:
    """``key=value`` strings -> {key: value}; values are read as JSON when they parse, else kept as strings.

    ``seed`` is refused (the seed is always ``--seed``), as are empty keys and repeated keys.
    """
    import json

    kwargs: dict = {}
    for item in items or []:
        key, sep, raw = str(item).partition("=")
        key = key.strip()
        if not sep or not key:
            raise FairflipError(f"{flag} must look like key=value, got {item!r}")
        if not key.isidentifier():
            raise FairflipError(f"{flag}: '{key}' is not a parameter name")
        if key == "seed":
            raise FairflipError(f"{flag} cannot set the seed ({item!r}); use --seed")
        if key in kwargs:
            raise FairflipError(f"{flag} sets '{key}' twice")
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = raw
        if isinstance(parsed, float) and not math.isfinite(parsed):
            raise FairflipError(f"{flag} {key}: the value must be finite, got {raw!r}")
        kwargs[key] = parsed
    return kwargs


# --------------------------------------------------------------------------------------------- problem arguments

_DATA_ONLY = ("train", "test", "label", "group", "minority", "features", "categorical", "positive", "collective")


def _given(args: argparse.Namespace, name: str) -> bool:
    return getattr(args, name, None) is not None


def check_problem_args(args: argparse.Namespace) -> None:
    """Check the data, collective and firm arguments and replace their strings by checked values, in place.

    Only what needs no table and no registry is checked here (so a bad value fails before any heavy import);
    :func:`fairflip.cli._inputs.prepare_problem_args` adds the firm and objective names.

    Sets ``args.seed`` (int), ``args.collective_fraction`` (float or None), ``args.known_majority`` (int or
    None), ``args.C`` (float), ``args.test_size`` (float), ``args.split_seed`` (int), ``args.group_cols``,
    ``args.minority_values``, ``args.feature_cols``, ``args.categorical_cols`` (lists or None) and
    ``args.time_limit`` (float or None, when the command has one). A second call does nothing.
    """
    if getattr(args, "_problem_args_checked", False):
        return
    if args.dataset is not None:
        clash = [f"--{n.replace('_', '-')}" for n in _DATA_ONLY if _given(args, n)]
        if clash:
            raise FairflipError(f"--dataset cannot be combined with {', '.join(clash)} (those describe a --train "
                                "table); give either --dataset or --train with its columns")
        if not args.dataset.strip():
            raise FairflipError("--dataset is empty")
    else:
        for flag in ("test_size", "split_seed"):
            if _given(args, flag):
                raise FairflipError(f"--{flag.replace('_', '-')} splits a --dataset; with --train give the held-out "
                                    "rows as --test")
        if not args.train:
            raise FairflipError("missing --train (or --dataset)")
        for name in ("label", "group", "minority"):
            if not _given(args, name):
                raise FairflipError(f"missing --{name}")
            if not str(getattr(args, name)).strip():
                raise FairflipError(f"--{name} is empty")
    if _given(args, "collective") and _given(args, "collective_fraction"):
        raise FairflipError("--collective (explicit members) and --collective-fraction (a drawn share) exclude each "
                            "other; give one")
    args.seed = parse_seed(args.seed, "--seed")
    args.collective_fraction = parse_float(args.collective_fraction, "--collective-fraction", low=0.0,
                                                 high=1.0, low_open=True)
    args.known_majority = parse_int(args.known_majority, "--known-majority", low=1)
    args.C = parse_float(args.C, "--C", low=0.0, low_open=True)
    args.test_size = parse_float(args.test_size if args.test_size is not None else 0.3, "--test-size",
                                       low=0.0, high=1.0, low_open=True, high_open=True)
    args.split_seed = parse_seed(args.split_seed if args.split_seed is not None else 0, "--split-seed")
    if hasattr(args, "time_limit"):
        args.time_limit = parse_float(args.time_limit, "--time-limit", low=0.0, low_open=True)
    args.group_cols = parse_names(args.group, "--group")
    args.minority_values = None
    if args.minority is not None:
        args.minority_values = [v.strip() for v in args.minority.split(",")]
        if not all(args.minority_values):
            raise FairflipError(f"--minority has an empty value: {args.minority!r}")
    if args.group_cols is not None and len(args.group_cols) != len(args.minority_values):
        raise FairflipError(f"--group names {len(args.group_cols)} column(s) but --minority gives "
                            f"{len(args.minority_values)} value(s)")
    args.feature_cols = parse_names(args.features, "--features")
    args.categorical_cols = parse_names(args.categorical, "--categorical")
    if args.positive is not None and not args.positive.strip():
        raise FairflipError("--positive is empty")
    if args.label is not None:
        if args.group_cols and args.label in args.group_cols:
            raise FairflipError(f"--label '{args.label}' is also a --group column")
        for flag, cols in (("--features", args.feature_cols), ("--categorical", args.categorical_cols)):
            if cols and args.label in cols:
                raise FairflipError(f"{flag} names the label column '{args.label}'; the label cannot be a feature")
    if args.collective is not None and args.label is not None and args.collective == args.label:
        raise FairflipError("--collective names the label column")
    args._problem_args_checked = True


# --------------------------------------------------------------------------------------------- argument groups

def _listing(names: Sequence[str]) -> str:
    return ", ".join(names)


def add_plugin_arg(p: argparse.ArgumentParser, dest: str = "plugins") -> None:
    """The repeatable ``--plugin MODULE`` (a module name or a path to a .py file)."""
    p.add_argument("--plugin", action="append", dest=dest, metavar="MODULE",
                   help="import this module (or .py file) first, so the firms, objectives, surrogates and methods "
                        "it registers can be named (repeatable)")


def add_data_args(p: argparse.ArgumentParser) -> None:
    """--train/--test/--label/--group/--minority/--features/--categorical/--positive, or --dataset."""
    g = p.add_argument_group("data")
    g.add_argument("--train", help="training table (CSV or Parquet); row i of the file is index i")
    g.add_argument("--test", help="held-out table with the same columns")
    g.add_argument("--label", help="binary label column")
    g.add_argument("--group", help="group column(s), comma separated for an intersectional minority")
    g.add_argument("--minority", help="minority value(s), one per --group column, comma separated")
    g.add_argument("--features", help="feature columns, comma separated (default: all others)")
    g.add_argument("--categorical", metavar="COLS",
                   help="feature columns to one-hot encode, comma separated (default: the non-numeric ones); name "
                        "integer-coded categories here")
    g.add_argument("--positive", metavar="VALUE",
                   help="the label value that means 1 when the label is not already 0/1 (e.g. yes)")
    g.add_argument("--dataset", help="a registered dataset instead of --train (see `fairflip datasets`)")
    g.add_argument("--test-size", metavar="SHARE", help="test share of the --dataset split, in (0, 1) (0.3)")
    g.add_argument("--split-seed", metavar="SEED", help="seed of the --dataset split (0)")


def add_collective_args(p: argparse.ArgumentParser) -> None:
    """--collective/--collective-fraction/--direction/--known-majority/--seed."""
    g = p.add_argument_group("collective")
    g.add_argument("--collective", metavar="COLUMN", help="0/1 column of the train table marking collective members")
    g.add_argument("--collective-fraction", metavar="SHARE",
                   help="share of the minority in the collective, in (0, 1], drawn with --seed (default 0.3)")
    g.add_argument("--direction", choices=_names.DIRECTIONS, default="auto",
                   help="auto (default): towards the majority's base rate; up: 0->1 (the paper's); down: 1->0")
    g.add_argument("--known-majority", metavar="M",
                   help="restricted access: number of majority rows the collective knows (default: all)")
    g.add_argument("--seed", default="0", help="seed of the collective draw and random methods, in [0, 2**32-1] (0)")


def add_firm_args(p: argparse.ArgumentParser) -> None:
    """--firm/--C/--objective/--no-group-feature."""
    g = p.add_argument_group("firm")
    g.add_argument("--firm", default="logistic",
                   help=f"the firm's training pipeline: {_listing(_names.FIRMS)}, or one a plugin registers "
                        "(logistic)")
    g.add_argument("--C", default="1.0", help="inverse L2 strength of linear firms, positive (1.0)")
    g.add_argument("--objective", default="eqod",
                   help=f"fairness objective reported in-sample and minimised by oracles: "
                        f"{_listing(_names.OBJECTIVES)}, or one a plugin registers (eqod)")
    g.add_argument("--no-group-feature", action="store_true", help="the firm does not see the group indicator")


def add_problem_args(p: argparse.ArgumentParser) -> None:
    """The data, collective and firm argument groups every problem-building subcommand takes, and --plugin."""
    add_data_args(p)
    add_collective_args(p)
    add_firm_args(p)
    add_plugin_arg(p, dest="sub_plugins")


def add_time_limit_arg(p: argparse.ArgumentParser, what: str) -> None:
    """``--time-limit SECONDS``."""
    p.add_argument("--time-limit", metavar="SECONDS",
                   help=f"seconds after which {what} returns its best answer so far (status time_limit)")


def method_help(prefix: str) -> str:
    """Help text naming the built-in methods after ``prefix``."""
    return f"{prefix} ({_listing(_names.METHODS)}, or one a plugin registers)"
