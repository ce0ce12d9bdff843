"""The ``fairflip`` command line. Each subcommand lives in its own module with ``add_parser`` and ``run``."""

from __future__ import annotations

import importlib
import sys

from .._errors import FairflipError
from ._common import ArgumentParser

# Subcommand modules, in the order `fairflip --help` lists them.
SUBCOMMANDS = ("flip", "evaluate", "datasets_cmd", "reproduce", "sweep", "gap")


def build_parser() -> ArgumentParser:
    """The top-level parser with every subcommand attached."""
    parser = ArgumentParser(prog="fairflip", description="Minority collective action for fairness.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    for name in SUBCOMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fairflip`` console script; returns the exit status (2 for bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except FairflipError as exc:
        sys.stderr.write(f"fairflip: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("fairflip: interrupted\n")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
