"""The README's command-line examples stay valid: each parses and passes the argument checks, and the first one
(embedded data, no data home) runs verbatim."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from fairflip.cli import build_parser, main
from fairflip.cli import _args

README = Path(__file__).resolve().parents[1] / "README.md"


def cli_examples() -> list[list[str]]:
    """Every ``fairflip ...`` command of the README's "Command line" section, continuation lines joined and
    trailing comments removed."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Command line", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S):
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            line = line.strip()
            if line.startswith("fairflip "):
                commands.append(shlex.split(line, comments=True)[1:])
    return commands


def test_readme_examples_parse_and_pass_the_argument_checks():
    examples = cli_examples()
    assert len(examples) >= 8
    parser = build_parser()
    seen = set()
    for argv in examples:
        args = parser.parse_args(argv)
        seen.add(args.command)
        if args.command in ("flip", "evaluate", "sweep", "gap"):
            _args.check_problem_args(args)
        if args.command == "flip":
            _args.parse_budget(args.budget, "--budget")
        if args.command in ("sweep", "gap"):
            _args.parse_budgets(args.budgets, "--budgets")
        if args.command == "evaluate":
            flip = next(a for a in examples if a[0] == "flip" and "--out" in a)
            flip_args = parser.parse_args(flip)
            # the evaluate example reads the flips the flip example wrote, for the same minority
            assert args.flips == flip_args.out
            assert (args.group, args.minority) == (flip_args.group, flip_args.minority)
    assert {"flip", "evaluate", "datasets", "sweep", "gap", "reproduce"} <= seen


def test_first_readme_example_runs_verbatim(capsys):
    first = cli_examples()[0]
    assert first[:3] == ["flip", "--dataset", "compas"] and "--json" in first
    assert main(first) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["direction"] == "down"  # auto on COMPAS, as the README says
    assert report["n_flipped"] == report["budget"] == 100
    assert report["metrics"]["test"]["eqod"] < report["baseline"]["test"]["eqod"]
