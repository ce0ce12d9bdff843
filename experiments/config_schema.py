"""The declared schema of a study config (``configs/<study>.toml``), and its validation.

A config has three tables and nothing else:

- ``[study]``: ``name`` (the study, equal to the file's stem), ``number``, ``title``, ``paper`` (all required);
- ``[grid]``: the keys of :data:`GRID_KEYS`, with the types and ranges listed there; every study needs
  ``datasets``, ``fractions``, ``budgets`` and ``seeds``, plus the keys of :data:`REQUIRED_BY_STUDY`;
- ``[quick]`` (optional): any ``[grid]`` keys, replacing the grid's values in a quick run.

:func:`validate_config` checks a parsed config against this schema and raises one :class:`FairflipError` that
names the file, the table and the key at fault (with a suggestion for a misspelt key). ``load_config`` calls it
before a study is planned, so a bad config stops a run before any cell runs and before any file is written.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any, Callable

from fairflip._errors import FairflipError

# Bounds on the size of a study, so that a typo cannot plan billions of cells.
MAX_SEEDS = 10_000
MAX_CELLS = 1_000_000


class _Bad(Exception):
    """A value that fails its field's check; the message says what was expected."""


# ---------------------------------------------------------------- the registries a config may name

def _datasets() -> list[str]:
    from fairflip.datasets import available  # importing fairflip.datasets registers the built-in datasets

    return available()


def _methods() -> list[str]:
    from fairflip.methods import available_methods

    return available_methods()


def _firms() -> list[str]:
    from fairflip.firms import available_firms

    return available_firms()


def _firm_side() -> list[str]:
    from fairflip.firm_side.compare import FIRM_SIDE_METHODS

    return list(FIRM_SIDE_METHODS)


def _cleaners() -> list[str]:
    from fairflip.cleaning import CLEANERS

    return list(CLEANERS)


# ---------------------------------------------------------------- value checks

def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def _name_in(choices: Callable[[], list[str]], what: str) -> Callable[[Any], None]:
    def check(v: Any) -> None:
        if not isinstance(v, str):
            raise _Bad(f"expected a {what} name (a string), got {v!r}")
        names = choices()
        if v not in names:
            close = difflib.get_close_matches(v, names, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise _Bad(f"unknown {what} '{v}'{hint}; known: {', '.join(names)}")
    return check


def _one_of(*allowed: str) -> Callable[[Any], None]:
    def check(v: Any) -> None:
        if v not in allowed:
            raise _Bad(f"expected one of {', '.join(repr(a) for a in allowed)}, got {v!r}")
    return check


def _int_in(lo: int, hi: int | None = None) -> Callable[[Any], None]:
    def check(v: Any) -> None:
        if not _is_int(v) or v < lo or (hi is not None and v > hi):
            rng = f"an integer >= {lo}" if hi is None else f"an integer in [{lo}, {hi}]"
            raise _Bad(f"expected {rng}, got {v!r}")
    return check


def _float_in(lo: float, hi: float, *, lo_open: bool, hi_open: bool) -> Callable[[Any], None]:
    text = f"{'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"

    def check(v: Any) -> None:
        ok = _is_number(v) and (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
        if not ok:
            raise _Bad(f"expected a number in {text}, got {v!r}")
    return check


def _budget(v: Any) -> None:
    if _is_int(v):
        if v < 0:
            raise _Bad(f"a budget count must be >= 0, got {v}")
        return
    if isinstance(v, float) and math.isfinite(v):
        if not 0.0 <= v <= 1.0:
            raise _Bad(f"a budget share (a float) must lie in [0, 1], got {v}; write an integer for a count")
        return
    raise _Bad(f"a budget is an integer count >= 0 or a float share in [0, 1], got {v!r}")


def _list_of(item: Callable[[Any], None], *, min_len: int = 1) -> Callable[[Any], None]:
    def check(v: Any) -> None:
        if not isinstance(v, list):
            raise _Bad(f"expected a list, got {type(v).__name__} {v!r}")
        if len(v) < min_len:
            raise _Bad("expected a non-empty list")
        for i, x in enumerate(v):
            try:
                item(x)
            except _Bad as exc:
                raise _Bad(f"entry {i + 1} ({x!r}): {exc}") from None
        if len({repr(x) for x in v}) != len(v):
            raise _Bad(f"the list repeats an entry: {v!r}")
    return check


def _table_of(key: Callable[[Any], None], value: Callable[[Any], None], *, min_len: int = 0) -> Callable[[Any], None]:
    def check(v: Any) -> None:
        if not isinstance(v, dict):
            raise _Bad(f"expected a table, got {type(v).__name__} {v!r}")
        if len(v) < min_len:
            raise _Bad("expected a non-empty table")
        for k, x in v.items():
            try:
                key(k)
                value(x)
            except _Bad as exc:
                raise _Bad(f"entry '{k}': {exc}") from None
    return check


def _any_key(k: Any) -> None:
    if not isinstance(k, str) or not k:
        raise _Bad(f"expected a non-empty name, got {k!r}")


def _scalar(v: Any) -> None:
    if not isinstance(v, (str, int, float, bool)):
        raise _Bad(f"expected a string, number or boolean, got {v!r}")


def _param_value(v: Any) -> None:
    if isinstance(v, dict):
        raise _Bad(f"expected a value, got a table {v!r}")


def _text(*, non_empty: bool) -> Callable[[Any], None]:
    def check(v: Any) -> None:
        if not isinstance(v, str) or (non_empty and not v.strip()):
            raise _Bad(f"expected a {'non-empty ' if non_empty else ''}string, got {v!r}")
    return check


# ---------------------------------------------------------------- the schema

@dataclass(frozen=True)
class Field:
    """One key of a config table: its check and what it means."""

    check: Callable[[Any], None]
    doc: str


GRID_KEYS: dict[str, Field] = {
    "datasets": Field(_list_of(_name_in(_datasets, "dataset")), "registered dataset names"),
    "methods": Field(_list_of(_name_in(_methods, "method")), "registered flip method names"),
    "method": Field(_name_in(_methods, "method"), "the one method of an ablation"),
    "firm_side_methods": Field(_list_of(_name_in(_firm_side, "firm-side method")), "firm-side baselines"),
    "firm": Field(_name_in(_firms, "firm"), "the firm trained and measured (default logistic)"),
    "firms": Field(_list_of(_name_in(_firms, "firm")), "firms compared (ablation, transfer)"),
    "source_firm": Field(_name_in(_firms, "firm"), "the firm the flips are chosen against (transfer)"),
    "fractions": Field(_list_of(_float_in(0.0, 1.0, lo_open=True, hi_open=False)),
                       "collective sizes, shares of the minority in (0, 1]"),
    "budgets": Field(_list_of(_budget), "flip budgets: integer counts >= 0 or float shares in [0, 1]"),
    "direction": Field(_one_of("up", "down", "auto"), "flip direction (default auto)"),
    "seeds": Field(_int_in(1, MAX_SEEDS), f"number of seeds, 1 to {MAX_SEEDS}"),
    "max_rows": Field(_table_of(_name_in(_datasets, "dataset"), _int_in(10)),
                      "dataset -> row cap (an integer >= 10)"),
    "known_majority": Field(_list_of(_int_in(0)), "restricted access: majority rows known (0: all)"),
    "device": Field(_one_of("cpu", "cuda"), "where the cells run (default cpu)"),
    "cleaners": Field(_list_of(_name_in(_cleaners, "cleaner")), "label cleaners of the firm"),
    "loss_fraction": Field(_float_in(0.0, 1.0, lo_open=True, hi_open=True),
                           "share of rows the loss filter drops, in (0, 1)"),
    "stealth_safety": Field(_float_in(0.0, 1.0, lo_open=False, hi_open=True), "oracle-stealth margin in [0, 1)"),
    "min_cell": Field(_int_in(1), "smallest group size in the pairwise gaps"),
    "minorities": Field(_table_of(_name_in(_datasets, "dataset"), _table_of(_any_key, _scalar, min_len=1),
                                  min_len=1), "dataset -> {column = value} of the intersectional minority"),
    "method_params": Field(_table_of(_name_in(_methods, "method"), _table_of(_any_key, _param_value)),
                           "method -> {parameter = value}"),
    "params": Field(_table_of(_any_key, _list_of(_param_value)), "parameter -> list of values (an ablation axis)"),
}
STUDY_KEYS: dict[str, Field] = {
    "name": Field(_text(non_empty=True), "the study's name (equal to the file's stem)"),
    "number": Field(_int_in(1, 99), "its number in the report"),
    "title": Field(_text(non_empty=True), "title in the report"),
    "paper": Field(_text(non_empty=False), "the paper's claim"),
}
REQUIRED_GRID = ("datasets", "fractions", "budgets", "seeds")
REQUIRED_BY_STUDY: dict[str, tuple[str, ...]] = {
    "toy": ("methods",),
    "collective_size": ("methods",),
    "flips": ("methods",),
    "restricted": ("methods", "known_majority"),
    "firm_side": ("methods", "firm_side_methods"),
    "transfer": ("methods", "source_firm", "firms"),
    "gap": ("methods",),
    "ablation": ("method", "firms", "params"),
    "cleaning": ("methods", "cleaners", "loss_fraction", "stealth_safety"),
    "intersectional": ("methods", "minorities"),
}
TABLES = ("study", "grid", "quick")


def _unknown(where: str, key: str, allowed) -> FairflipError:
    close = difflib.get_close_matches(key, list(allowed), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return FairflipError(f"{where}: unknown key '{key}'{hint}; allowed keys: {', '.join(allowed)}")


def _check_table(source: str, table: str, values: Any, fields: dict[str, Field]) -> None:
    where = f"{source}: [{table}]"
    if not isinstance(values, dict):
        raise FairflipError(f"{where} must be a table, got {type(values).__name__}")
    for key, value in values.items():
        if key not in fields:
            raise _unknown(where, key, fields)
        try:
            fields[key].check(value)
        except _Bad as exc:
            raise FairflipError(f"{where} key '{key}': {exc}") from None


def _check_method_params(source: str, table: str, method: str, params: dict) -> None:
    """Build the method with its configured parameters once, so a misspelt or out-of-range parameter stops the
    run here instead of failing every cell that uses it."""
    from fairflip.methods import get_method

    try:
        get_method(method, seed=0, **params)
    except (FairflipError, TypeError, ValueError) as exc:
        raise FairflipError(f"{source}: [{table}] key 'method_params': {method} {params}: {exc}") from None


def planned_size(grid: dict) -> int:
    """A rough upper bound on the number of cells a grid plans (product of its axes)."""
    size = 1
    for key in ("datasets", "methods", "fractions", "budgets", "known_majority", "firms", "cleaners"):
        if isinstance(grid.get(key), list):
            size *= max(1, len(grid[key]))
    for values in (grid.get("params") or {}).values():
        size *= max(1, len(values)) if isinstance(values, list) else 1
    return size * int(grid.get("seeds", 1))


def validate_config(raw: Any, *, study: str, source: str) -> None:
    """Check a parsed study config against the schema; raise one FairflipError naming ``source`` and the key.

    Args:
        raw: the parsed TOML document.
        study: the study the file is for (its ``[study] name`` must match).
        source: the file, as named in messages.
    """
    if not isinstance(raw, dict):
        raise FairflipError(f"{source}: a study config must be a TOML document of tables")
    for table in raw:
        if table not in TABLES:
            raise _unknown(f"{source}: top level", table, TABLES)
    for table in ("study", "grid"):
        if table not in raw:
            raise FairflipError(f"{source}: missing table [{table}]")
    _check_table(source, "study", raw["study"], STUDY_KEYS)
    for key in STUDY_KEYS:
        if key not in raw["study"]:
            raise FairflipError(f"{source}: [study] missing key '{key}'")
    if raw["study"]["name"] != study:
        raise FairflipError(f"{source}: [study] key 'name' is {raw['study']['name']!r}, but the file is the config "
                            f"of study '{study}'")
    _check_table(source, "grid", raw["grid"], GRID_KEYS)
    if "quick" in raw:
        _check_table(source, "quick", raw["quick"], GRID_KEYS)
    required = REQUIRED_GRID + REQUIRED_BY_STUDY.get(study, ())
    for key in required:
        if key not in raw["grid"]:
            raise FairflipError(f"{source}: [grid] missing key '{key}' ({GRID_KEYS[key].doc})")
    for table in ("grid", "quick"):
        for method, params in (raw.get(table, {}).get("method_params") or {}).items():
            _check_method_params(source, table, method, params)
    for variant in ([raw["grid"]], [raw["grid"], raw.get("quick", {})]):
        grid = {k: v for part in variant for k, v in part.items()}
        size = planned_size(grid)
        if size > MAX_CELLS:
            raise FairflipError(f"{source}: the grid plans about {size:,} cells, more than the limit of "
                                f"{MAX_CELLS:,}; shrink its lists or seeds")


def check_seeds(seeds: Any, *, name: str = "--seeds") -> int:
    """The seed count override, checked: an integer in [1, MAX_SEEDS]."""
    if not _is_int(seeds) or not 1 <= seeds <= MAX_SEEDS:
        raise FairflipError(f"{name} must be an integer in [1, {MAX_SEEDS}], got {seeds!r}")
    return int(seeds)
