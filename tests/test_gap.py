"""The optimality-gap table and the ``fairflip gap`` command on a small slice of COMPAS."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fairflip._errors import FairflipError
from fairflip.cli import main
from fairflip.datasets import stratified_split
from fairflip.gap import GAP_COLUMNS, gap_summary, optimality_gap
from fairflip.metrics import fairness
from fairflip.problem import build_problem

ORACLE = {"components": ["relaxed", "heuristics"], "relaxed_params": {"steps": 10, "max_evaluations": 300},
          "max_evaluations": 300, "polish_top": 1}


@pytest.fixture(scope="module")
def small(compas):
    idx = np.random.default_rng(0).choice(len(compas), size=900, replace=False)
    return stratified_split(compas.subset(np.sort(idx)), test_size=0.3, seed=0)


def test_gap_table(small):
    train, test = small
    heuristics = ["random", "rb-prob"]
    table = optimality_gap(train, test, budgets=[3, 8], seeds=[0, 1], heuristics=heuristics, oracle_params=ORACLE)
    assert list(table.columns) == GAP_COLUMNS
    assert len(table) == 2 * 2 * (len(heuristics) + 1) * 2
    ins = table[table["split"] == "in-sample"]
    assert (ins["gap"] >= -1e-12).all()  # the oracle is never worse in-sample than a heuristic it ran
    assert (table.loc[table["method"] == "oracle", "gap"] == 0).all()
    assert ins["lower_bound"].isna().all()  # logistic firm: no certified bound
    assert table["n_flipped"].le(table["budget"]).all()
    # Independent check of one test value: retrain on the flips and score the test rows directly.
    problem, prep = build_problem(train, firm="logistic", collective_fraction=0.3, direction="auto", seed=1)
    from fairflip.methods import get_method
    flips = get_method("random", seed=1).select(problem, 8).flipped
    model = problem.firm.fit(problem.X, problem.flipped_labels(flips))
    expected = fairness("eqod", test.y, model.predict(prep.transform(test)), test.a)
    row = table[(table["seed"] == 1) & (table["budget"] == 8) & (table["method"] == "random") & (table["split"] == "test")]
    assert float(row["objective"].iloc[0]) == pytest.approx(expected, abs=1e-12)
    summary = gap_summary(table)
    assert set(summary["n_seeds"]) == {2}


def test_gap_bad_inputs(small):
    train, test = small
    with pytest.raises(FairflipError, match="unknown method"):
        optimality_gap(train, test, budgets=[2], heuristics=["telepathy"])
    with pytest.raises(FairflipError, match="at least one budget"):
        optimality_gap(train, test, budgets=[])


def test_gap_cli(small, tmp_path, capsys):
    train, test = small
    pd.concat([train.features, pd.DataFrame({"y": train.y, "g": train.a})], axis=1).to_csv(tmp_path / "tr.csv", index=False)
    pd.concat([test.features, pd.DataFrame({"y": test.y, "g": test.a})], axis=1).to_csv(tmp_path / "te.csv", index=False)
    out = tmp_path / "gap.csv"
    args = ["gap", "--train", str(tmp_path / "tr.csv"), "--test", str(tmp_path / "te.csv"), "--label", "y",
            "--group", "g", "--minority", "1", "--budgets", "2,5", "--methods", "random", "--direction", "auto",
            "--oracle-param", f"components={json.dumps(ORACLE['components'])}",
            "--oracle-param", f"relaxed_params={json.dumps(ORACLE['relaxed_params'])}",
            "--oracle-param", "max_evaluations=300", "--out", str(out), "--json"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_rows"] == 2 * 2 * 2
    assert len(pd.read_csv(out)) == 8
    assert main(["gap", "--train", str(tmp_path / "tr.csv"), "--label", "y", "--group", "g", "--minority", "1",
                 "--budgets", "2,x"]) == 2
    assert "fairflip: error: --budgets" in capsys.readouterr().err
