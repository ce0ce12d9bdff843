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


def test_gap_table_carries_certificates_and_run_metadata(small):
    from fairflip.gap import data_sha256

    train, test = small
    table = optimality_gap(train, test, budgets=[1, 2], seeds=[0], firm="ridge", heuristics=["random", "rb-prob"],
                           oracle="brute-force")
    ins = table[table["split"] == "in-sample"]
    assert (ins["bound_source"] == "enumeration").all() and (ins["oracle_status"] == "optimal").all()
    # Enumeration's bound is the optimum: every method's in-sample objective is at or above it.
    assert (ins["gap_to_bound"] >= -1e-12).all() and not ins["bound_inconsistent"].any()
    oracle_rows = ins[ins["method"] == "brute-force"]
    assert np.allclose(oracle_rows["lower_bound"], oracle_rows["objective"], atol=1e-12)
    assert table.loc[table["split"] == "test", "lower_bound"].isna().all()
    assert set(table["status"]) <= {"optimal", "ranked", "feasible"}
    assert table["data_sha256"].nunique() == 1 and len(table["data_sha256"].iloc[0]) == 64
    assert not table["time_limit_hit"].any() and not table["load_dependent"].any()
    assert data_sha256(np.arange(3)) != data_sha256(np.arange(3.0)) != data_sha256(np.arange(4.0))
    summary = gap_summary(table)
    ins_summary = summary[summary["split"] == "in-sample"]
    assert (ins_summary["n_bounded"] == 1).all() and not ins_summary["bound_inconsistent"].any()
    assert np.allclose(ins_summary["gap_to_bound_mean"], ins_summary["objective_mean"] - ins_summary["lower_bound_mean"])


def test_gap_flags_a_bound_above_an_evaluated_objective(small):
    from fairflip.methods import FlipMethod, FlipResult, register_method

    @register_method("test-overclaiming-oracle")
    class Overclaiming(FlipMethod):
        omniscient = True

        def _select(self, problem, budget):
            return FlipResult(flipped=np.zeros(0, dtype=np.int64), lower_bound=0.99, bound_source="milp-dual")

    train, test = small
    try:
        table = optimality_gap(train, test, budgets=[2], seeds=[0], heuristics=["random"],
                               oracle="test-overclaiming-oracle")
    finally:
        from fairflip.methods import _REGISTRY

        _REGISTRY.pop("test-overclaiming-oracle", None)  # other tests list every registered method
    ins = table[table["split"] == "in-sample"]
    assert ins["bound_inconsistent"].all() and ins["lower_bound"].isna().all()
    assert (ins["rejected_bound"] == 0.99).all() and ins["bound_source"].isna().all()


def test_gap_json_carries_every_row_with_its_certificate(tmp_path, capsys):
    """`fairflip gap --json` keeps the tidy rows (bound, its source, statuses, data hash), not only the summary;
    on a tiny ridge instance the oracle enumerates, so its bound is the proven optimum."""
    rng = np.random.default_rng(3)
    n = 40
    g = np.where(rng.random(n) < 0.4, "B", "A")
    x = rng.normal(size=n)
    y = ((x - 0.8 * (g == "B") + 0.5 * rng.normal(size=n)) > 0).astype(int)
    path = tmp_path / "tiny.csv"
    pd.DataFrame({"x": x, "x2": rng.normal(size=n), "g": g, "y": y}).to_csv(path, index=False)
    code = main(["gap", "--train", str(path), "--label", "y", "--group", "g", "--minority", "B", "--firm", "ridge",
                 "--budgets", "1,2", "--methods", "random", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["n_rows"] == len(out["rows"]) == 4
    oracle = [r for r in out["rows"] if r["method"] == "oracle"]
    for row in oracle:
        assert row["bound_source"] == "enumeration" and row["oracle_status"] == "optimal"
        assert row["lower_bound"] == pytest.approx(row["objective"], abs=1e-12)
        assert len(row["data_sha256"]) == 64
    for row in out["rows"]:  # every heuristic's gap to the bound is non-negative: the bound is a proof
        assert row["gap_to_bound"] >= -1e-12
