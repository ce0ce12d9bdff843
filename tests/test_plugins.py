"""A plugin written outside the package (tests/plugins/squared_hinge.py) through the public registries only: its
firm against SciPy, its hypergradient against central differences, and every entry point accepting its names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from fairflip._errors import FairflipError
from fairflip.firms import available_firms, available_losses, make_firm
from fairflip.methods import get_method
from fairflip.objectives import Objective, available_objectives, get_objective, register_objective
from fairflip.plugins import load_plugins
from fairflip.solvers.hypergrad import SoftFlipBilevel, implicit_hypergradient
from fairflip.surrogates import FairnessSurrogate, available_surrogates

PLUGIN = str(Path(__file__).parent / "plugins" / "squared_hinge.py")


@pytest.fixture(scope="module", autouse=True)
def plugin():
    load_plugins([PLUGIN])


def _data(seed=0, n=120, d=4):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    a = (rng.random(n) < 0.4).astype(float)
    X[:, -1] = a
    y = ((X[:, 0] + 0.7 * a + rng.normal(size=n)) > 0).astype(float)
    return X, y, a


def test_plugin_names_are_registered():
    assert "squared-hinge" in available_firms() and "squared-hinge" in available_losses()
    assert "softplus-gap" in available_surrogates("oracle-relaxed")
    assert "softplus-gap" not in available_surrogates("oracle-convex")


@pytest.mark.parametrize("C", [0.1, 1.0, 10.0])
def test_squared_hinge_fit_matches_scipy(C):
    X, y, _ = _data()
    model = make_firm("squared-hinge", C=C, device="cpu").fit(X, y)

    def J(theta):  # the same objective written independently in NumPy: C * sum l + 0.5 ||w||^2
        f = X @ theta[:-1] + theta[-1]
        up, down = np.maximum(0, 1 - f), np.maximum(0, 1 + f)
        value = C * np.sum(y * up**2 + (1 - y) * down**2) + 0.5 * theta[:-1] @ theta[:-1]
        df = C * (-2 * y * up + 2 * (1 - y) * down)
        grad = np.append(X.T @ df + theta[:-1], df.sum())
        return value, grad

    ref = minimize(J, np.zeros(X.shape[1] + 1), jac=True, method="L-BFGS-B",
                   options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 10_000}).x
    got = np.append(model.coef, model.intercept)
    assert np.max(np.abs(got - ref)) < 1e-6


def test_squared_hinge_hypergradient_matches_central_differences():
    X, y, a = _data(seed=3)
    firm = make_firm("squared-hinge", device="cpu")
    Xd = firm.design(X)
    rows = torch.arange(0, len(y), 3)
    surrogate = FairnessSurrogate("eqod", "softplus-gap", 0.5, solver="oracle-relaxed")
    bilevel = SoftFlipBilevel(firm, Xd, torch.as_tensor(y), rows, Xd, torch.as_tensor(y), torch.as_tensor(a),
                              surrogate)
    z = torch.as_tensor(np.random.default_rng(1).uniform(0.2, 0.8, size=(2, len(rows))))
    theta = bilevel.inner(z)
    _, grad = implicit_hypergradient(bilevel, z, theta)
    h, fd = 1e-5, torch.zeros_like(z)
    for k in range(z.shape[1]):
        e = torch.zeros_like(z)
        e[:, k] = h
        fd[:, k] = (bilevel.outer(bilevel.inner(z + e, theta)) - bilevel.outer(bilevel.inner(z - e, theta))) / (2 * h)
    assert float((grad - fd).norm() / fd.norm()) < 1e-6


def test_softplus_gap_tends_to_the_absolute_gap():
    X, y, a = _data()
    m = np.random.default_rng(2).normal(size=len(y))
    m[np.abs(m) < 0.05] = 0.1  # away from the threshold: the soft predictions are hard to 1e-20 at T = 1e-3
    margins = torch.as_tensor(m)
    hard = get_objective("eqod").soft_value((margins > 0).double(), torch.as_tensor(y), torch.as_tensor(a))
    values = [float(FairnessSurrogate("eqod", "softplus-gap", T)(margins, torch.as_tensor(y), torch.as_tensor(a)))
              for T in (0.5, 0.05, 1e-3)]
    # each gap's smoothing error is at most 2 T log 2 (at T = 1e-3: 1.4e-3)
    assert abs(values[-1] - float(hard)) <= 2e-3 * np.log(2) + 1e-12 and abs(values[0] - float(hard)) > abs(values[-1] - float(hard))


def test_relaxed_oracle_with_plugin_firm_and_surrogate(compas_split):
    from fairflip.problem import build_problem

    train, _ = compas_split
    problem, _ = build_problem(train.subsample(400, seed=0) if hasattr(train, "subsample") else train,
                               firm="squared-hinge", collective_fraction=0.3, direction="auto", seed=0)
    none = problem.objective_of([np.zeros(0, dtype=np.int64)])[0]
    result = get_method("oracle-relaxed", seed=0, surrogate="softplus-gap", steps=20).select(problem, 10)
    assert len(result.flipped) <= 10
    assert problem.objective_of([result.flipped])[0] <= none + 1e-12  # never worse than no flips in-sample


def test_surrogate_not_registered_with_the_solver_is_refused():
    with pytest.raises(FairflipError, match="not registered with the solver 'oracle-convex'"):
        FairnessSurrogate("eqod", "softplus-gap", 0.1, solver="oracle-convex")
    with pytest.raises(FairflipError, match="unknown surrogate"):
        get_method("oracle-relaxed", surrogate="no-such-surrogate")


def test_user_objective_reaches_the_metric_the_surrogate_and_the_milp():
    from fairflip.solvers.milp import fairness_gaps

    fpr = register_objective(Objective("fpr-gap", (0,), "mean", "false-positive-rate gap"))
    assert "fpr-gap" in available_objectives()
    X, y, a = _data()
    pred = (X[:, 0] > 0).astype(int)
    minority, majority = (a == 1) & (y == 0), (a == 0) & (y == 0)
    expected = abs(pred[minority].mean() - pred[majority].mean())
    assert fpr.value(y, pred, a) == pytest.approx(expected, abs=1e-15)
    assert float(fpr.soft_value(torch.as_tensor(pred, dtype=torch.float64), torch.as_tensor(y),
                                torch.as_tensor(a))) == pytest.approx(expected, abs=1e-15)
    gaps = fairness_gaps("fpr-gap", y.astype(int), a.astype(int))
    assert gaps.weights.shape == (1, len(y)) and gaps.aggregate == "mean"
    assert abs(float(gaps.weights[0] @ pred)) == pytest.approx(expected, abs=1e-12)


def test_bad_plugins_fail_clearly(tmp_path):
    with pytest.raises(FairflipError, match="not found"):
        load_plugins(["no_such_fairflip_plugin_module"])
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(FairflipError, match="failed while loading: RuntimeError: boom"):
        load_plugins([str(broken)])
    with pytest.raises(FairflipError, match="unknown firm"):
        make_firm("no-such-firm")
