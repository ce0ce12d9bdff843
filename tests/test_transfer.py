"""Model-agnostic evaluation of flips: every row recomputed independently from the firm and the flipped labels."""

from __future__ import annotations

import numpy as np
import pytest

from fairflip._errors import FairflipError
from fairflip.features import FeaturePreparer
from fairflip.firms import make_firm
from fairflip.metrics import all_metrics
from fairflip.problem import build_problem, evaluate_flips
from fairflip.transfer import evaluate_transfer

METRICS = ("eqod", "eqod_worst", "dp", "eqopp", "error", "error_minority", "error_majority", "success")


@pytest.fixture(scope="module")
def small(compas_split):
    """A 900-row COMPAS training sample, its flip problem (collective 0.3, direction down), 40 flips, the test split."""
    train, test = compas_split
    rows = np.sort(np.random.default_rng(11).choice(len(train), 900, replace=False))
    problem, prep = build_problem(train.subset(rows), collective_fraction=0.3, direction="down", seed=0)
    flipped = problem.candidates[:40]
    table = evaluate_transfer(problem, prep, flipped, test, seed=0)
    return problem, prep, flipped, test, table


def test_transfer_table_shape_and_columns(small):
    problem, _, flipped, _, table = small
    assert list(table["firm"]) == ["logistic", "mlp", "gbdt"]
    assert (table["source_firm"] == "logistic").all()
    assert (table["n_flipped"] == len(flipped)).all()
    for m in METRICS:
        assert table[m].between(0, 1).all() and table[f"{m}_base"].between(0, 1).all()
    assert (table["runtime_s"] >= 0).all()


def test_logistic_row_matches_evaluate_flips(small):
    problem, prep, flipped, test, table = small
    test_arrays = (prep.transform(test), test.y, test.a, prep.transform(test, counterfactual_group=True))
    row = table.set_index("firm").loc["logistic"]
    flipped_ref = evaluate_flips(problem, flipped, test=test_arrays)["test"]
    base_ref = evaluate_flips(problem, np.array([], dtype=np.int64), test=test_arrays)["test"]
    for m in METRICS:
        assert row[m] == pytest.approx(flipped_ref[m], abs=1e-12)
        assert row[f"{m}_base"] == pytest.approx(base_ref[m], abs=1e-12)
    # the flips were chosen to matter: the logistic firm changes
    assert any(row[m] != row[f"{m}_base"] for m in METRICS)


@pytest.mark.parametrize("name", ["mlp", "gbdt"])
def test_nonlinear_rows_match_a_direct_fit(small, name):
    problem, prep, flipped, test, table = small
    y_flip = problem.y.copy()
    y_flip[flipped] = 1 - y_flip[flipped]
    Xt, Xt_cf = prep.transform(test), prep.transform(test, counterfactual_group=True)
    row = table.set_index("firm").loc[name]
    for labels, suffix in ((y_flip, ""), (problem.y, "_base")):
        model = make_firm(name, seed=0).fit(problem.X, labels)
        ref = all_metrics(test.y, model.predict(Xt), test.a, y_pred_counterfactual=model.predict(Xt_cf))
        for m in METRICS:
            assert row[m + suffix] == pytest.approx(ref[m], abs=1e-12)


def test_no_flips_equals_baseline(small):
    problem, prep, _, test, _ = small
    table = evaluate_transfer(problem, prep, np.array([], dtype=np.int64), test, firms=("logistic", "gbdt"))
    for m in METRICS:
        np.testing.assert_array_equal(table[m], table[f"{m}_base"])


def test_preparer_without_group_has_no_success(compas_split):
    train, test = compas_split
    sub = train.subset(np.arange(0, len(train), 6))
    problem, prep = build_problem(sub, include_group=False, direction="down", seed=0)
    table = evaluate_transfer(problem, prep, problem.candidates[:5], test, firms=("logistic",))
    assert "success" not in table.columns and table.shape[0] == 1


def test_transfer_bad_input(small, compas_split):
    problem, prep, flipped, test, _ = small
    with pytest.raises(FairflipError, match="unknown firm"):
        evaluate_transfer(problem, prep, flipped, test, firms=("forest",))
    with pytest.raises(FairflipError, match="twice"):
        evaluate_transfer(problem, prep, flipped, test, firms=("mlp", "mlp"))
    with pytest.raises(FairflipError, match="at least one"):
        evaluate_transfer(problem, prep, flipped, test, firms=())
    with pytest.raises(FairflipError, match="not candidates"):
        evaluate_transfer(problem, prep, np.array([np.setdiff1d(np.arange(problem.n), problem.candidates)[0]]),
                          test, firms=("logistic",))
    other = FeaturePreparer(include_group=False).fit(compas_split[0])
    with pytest.raises(FairflipError, match="columns"):
        evaluate_transfer(problem, other, flipped, test, firms=("logistic",))
