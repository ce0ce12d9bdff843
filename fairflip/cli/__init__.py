"""The ``fairflip`` command line. Each subcommand lives in its own module with ``add_parser`` and ``run``.

Building the parser imports nothing heavy (no torch, scikit-learn, pandas, SciPy or CVXPY): ``--help`` and a
mistyped argument answer at once. Each command imports what it needs inside its ``run``. Plugins named by
``--plugin`` are loaded before the command runs, so the names they register are accepted.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings

from .._errors import FairflipError
from ._args import ArgumentParser, add_plugin_arg
from ._output import discard_warnings, flush_warnings, start_capture

# Subcommand modules, in the order `fairflip --help` lists them.
SUBCOMMANDS = ("flip", "evaluate", "datasets_cmd", "reproduce", "sweep", "gap")

EPILOG = ("Budgets are a count of flips (e.g. 50) or a fraction of the candidates in (0, 1) (e.g. 0.1), the same "
          "in flip, sweep and gap. The flip direction defaults to auto everywhere. Bad input exits with status 2 "
          "after one 'fairflip: error:' line and writes nothing.")


def build_parser() -> ArgumentParser:
    """The top-level parser with every subcommand attached (built from static data only)."""
    parser = ArgumentParser(prog="fairflip", description="Minority collective action for fairness.", epilog=EPILOG)
    add_plugin_arg(parser, dest="plugins")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser, metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return parser


def _load_plugins(args) -> None:
    specs = [*(getattr(args, "plugins", None) or []), *(getattr(args, "sub_plugins", None) or [])]
    if not specs:
        return
    from ..plugins import load_plugins

    load_plugins(specs)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fairflip`` console script; returns the exit status.

    0 on success; 2 after one ``fairflip: error:`` line for bad input (argparse's own errors raise
    ``SystemExit(2)`` with the same line); 130 on Ctrl-C; 1 after one ``fairflip: internal error:`` line for an
    unexpected exception (set ``FAIRFLIP_DEBUG=1`` to see its traceback instead).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        start_capture(caught)
        try:
            _load_plugins(args)
            code = int(args.run(args) or 0)
        except FairflipError as exc:
            discard_warnings()
            sys.stderr.write(f"fairflip: error: {' '.join(str(exc).split())}\n")
            return 2
        except KeyboardInterrupt:
            discard_warnings()
            sys.stderr.write("fairflip: interrupted\n")
            return 130
        except Exception as exc:  # noqa: BLE001 - one line instead of a traceback, unless debugging
            if os.environ.get("FAIRFLIP_DEBUG"):
                raise
            discard_warnings()
            sys.stderr.write(f"fairflip: internal error: {type(exc).__name__}: {' '.join(str(exc).split())[:300]} "
                             "(set FAIRFLIP_DEBUG=1 for the traceback)\n")
            return 1
        flush_warnings()
        return code


if __name__ == "__main__":
    raise SystemExit(main())
