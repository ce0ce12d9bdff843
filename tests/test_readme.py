"""The README's shell examples: every ``fairflip`` command in them parses, the cheap ones run, and the Quickstart's
test command is the one CI runs."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from fairflip.cli import SUBCOMMANDS, build_parser, main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def shell_commands(text: str) -> list[str]:
    """The commands of the ```bash blocks of ``text``: continuation lines joined, comments and blank lines dropped,
    ``a && b`` split into its parts."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        joined = re.sub(r"\s*\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split(" #")[0].strip()
            if line and not line.startswith("#"):
                out += [part.strip() for part in line.split("&&")]
    return out


def fairflip_commands() -> list[list[str]]:
    return [shlex.split(c)[1:] for c in shell_commands(README.read_text()) if c.startswith("fairflip ")]


def test_the_extractor_reads_blocks_continuations_and_chains():
    text = "x\n```bash\n# a comment\nfairflip a --b 1 \\\n    --c 2   # why\npip x && fairflip d\n```\n"
    assert shell_commands(text) == ["fairflip a --b 1 --c 2", "pip x", "fairflip d"]


def test_every_readme_fairflip_command_parses():
    commands = fairflip_commands()
    # the Quickstart, the command-line section and the Ray section all hold some
    assert len(commands) >= 8 and {c[0] for c in commands} >= {"flip", "evaluate", "datasets", "sweep", "gap",
                                                                 "reproduce"}
    parser = build_parser()
    for argv in commands:
        args = parser.parse_args(argv)
        assert callable(args.run), argv


def test_cheap_readme_commands_run(capsys):
    assert ["datasets"] in fairflip_commands()
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "compas" in out and "adult" in out


def test_every_subcommand_has_help(capsys):
    names = {"datasets_cmd": "datasets"}
    for module in SUBCOMMANDS:
        with pytest.raises(SystemExit) as exc:
            main([names.get(module, module), "--help"])
        assert exc.value.code == 0
        assert "usage: fairflip" in capsys.readouterr().out


def test_quickstart_is_the_ci_command_and_needs_no_gpu_step():
    text = README.read_text()
    quick = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    commands = shell_commands(quick)
    assert "pip install ." in commands and "fairflip reproduce --quick" in commands
    assert "python -m pytest -q" in commands
    # CI runs the README's test command verbatim
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^python -m pytest -q$", ci, flags=re.M)
    # installing a CPU-only torch from PyTorch's own index is optional, never a required step of the Quickstart
    assert not any("download.pytorch.org" in c for c in commands)


def _readme_command(name: str, contains: str) -> list[str]:
    found = [c for c in fairflip_commands() if c[0] == name and contains in " ".join(c)]
    assert found, f"the README has no '{name}' example with {contains!r}"
    return found[0]


def test_readme_flip_example_runs_verbatim(capsys, tmp_path, monkeypatch):
    import json

    monkeypatch.chdir(tmp_path)
    argv = _readme_command("flip", "--dataset compas")
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "rb-label" and len(out["flipped"]) == min(100, out["n_candidates"])
    assert 0 <= out["metrics"]["test"]["eqod"] <= 1


@pytest.mark.slow
def test_readme_sweep_and_gap_examples_run_verbatim(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sweep = _readme_command("sweep", "--dataset compas")
    assert main(sweep) == 0
    assert (tmp_path / sweep[sweep.index("--out") + 1]).is_file()
    assert main(_readme_command("gap", "--dataset compas")) == 0
