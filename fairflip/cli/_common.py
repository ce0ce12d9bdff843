"""Compatibility module: the shared CLI helpers now live in :mod:`._args` (parser, argument checks, no heavy
import) and :mod:`._inputs` (tables, methods, output files)."""

from __future__ import annotations

from ._args import (  # noqa: F401
    ArgumentParser, add_collective_args, add_data_args, add_firm_args, add_problem_args, parse_budgets, parse_params,
)
from ._inputs import (  # noqa: F401
    load_inputs, make_method, prepare_problem_args, print_json, problem_from_args, read_flips, write_csv,
)
