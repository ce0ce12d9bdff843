"""The plugin of tests/plugins/ through every entry point of the command line: flip, sweep, gap and a reproduce
study config; the registries are restored afterwards so that other tests see only the built-ins."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fairflip.cli import main

PLUGINS = Path(__file__).parent / "plugins"
PLUGIN = str(PLUGINS / "squared_hinge.py")


@pytest.fixture(scope="module", autouse=True)
def restore_registries():
    """Snapshot the registries (private state, read by the test harness only) and restore them afterwards."""
    from fairflip import methods, objectives, plugins, surrogates
    from fairflip.firms import base, losses

    saved = [(d, dict(d)) for d in (methods._REGISTRY, objectives._OBJECTIVES, surrogates._SURROGATES,
                                      base._FIRMS, losses.LOSSES, plugins._loaded)]
    env = os.environ.get(plugins.ENV_VAR)
    yield
    for d, copy in saved:
        d.clear()
        d.update(copy)
    if env is None:
        os.environ.pop(plugins.ENV_VAR, None)
    else:
        os.environ[plugins.ENV_VAR] = env


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    rng = np.random.default_rng(7)
    folder = tmp_path_factory.mktemp("plugin_cli")
    for name, n in (("train", 90), ("test", 60)):
        g = np.where(rng.random(n) < 0.4, "B", "A")
        x1, x2 = rng.normal(size=n), rng.normal(size=n)
        y = ((x1 - 0.8 * (g == "B") + 0.5 * rng.normal(size=n)) > 0).astype(int)
        pd.DataFrame({"x1": x1, "x2": x2, "g": g, "y": y}).to_csv(folder / f"{name}.csv", index=False)
    return ["--train", str(folder / "train.csv"), "--test", str(folder / "test.csv"), "--label", "y", "--group", "g",
            "--minority", "B", "--direction", "up"]


def _run(capsys, argv):
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def test_flip_with_plugin_firm_and_surrogate(capsys, table):
    out = _run(capsys, ["--plugin", PLUGIN, "flip", *table, "--firm", "squared-hinge", "--method", "oracle-relaxed",
                        "--param", "surrogate=softplus-gap", "--param", "steps=10", "--budget", "3", "--json"])
    result = json.loads(out)
    assert result["n_flipped"] <= 3 and "softplus-gap" in result["info"]["surrogate"]
    assert result["objective"] <= result["baseline"]["objective"] + 1e-12  # local search never makes it worse


def test_sweep_and_gap_with_plugin_firm(capsys, table, tmp_path):
    out = tmp_path / "sweep.csv"
    _run(capsys, ["--plugin", PLUGIN, "sweep", *table, "--firm", "squared-hinge", "--methods", "random,rb-prob",
                  "--budgets", "2,4", "--out", str(out)])
    sweep = pd.read_csv(out)
    assert set(sweep.method) >= {"random", "rb-prob"} and len(sweep) >= 4
    gap = json.loads(_run(capsys, ["--plugin", PLUGIN, "gap", *table, "--firm", "squared-hinge", "--methods",
                                   "random", "--budgets", "2", "--oracle", "oracle-relaxed", "--oracle-param",
                                   "surrogate=softplus-gap", "--oracle-param", "steps=10", "--json"]))
    assert gap  # one JSON object with the gap table


def test_unknown_plugin_name_is_one_clean_error(capsys, table):
    code = main(["flip", *table, "--firm", "squared-hinge-not-loaded-xyz", "--method", "random", "--budget", "2"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("fairflip: error:") == 1 and "firm" in err


def test_reproduce_study_config_with_plugin(capsys, tmp_path):
    _run(capsys, ["--plugin", PLUGIN, "reproduce", "--configs", str(PLUGINS), "--studies", "ablation", "--quick",
                  "--out", str(tmp_path / "out"), "--workers", "1", "--no-progress"])
    results = pd.read_csv(tmp_path / "out" / "results.csv")
    runs = results[results.method == "oracle-relaxed"]
    assert set(runs.firm) == {"squared-hinge"}
    assert runs.params.str.contains("softplus-gap").any()
