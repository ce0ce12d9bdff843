"""Hypergradients of the relaxed flip problem against central finite differences, closed forms and each other."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fairflip._errors import FairflipError
from fairflip.firms import LinearFirm
from fairflip.solvers.hypergrad import (SoftFlipBilevel, conjugate_gradient, implicit_hypergradient,
                                        unrolled_hypergradient)
from fairflip.solvers.implicit import label_jacobian
from fairflip.surrogates import FairnessSurrogate


def _bilevel(loss, objective="eqod", kind="sigmoid", seed=0, n=80, d=4, C=1.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    a = (rng.random(n) < 0.4).astype(float)
    X[:, -1] = a
    y = ((X[:, 0] + 0.5 * a + rng.normal(size=n)) > 0).astype(float)
    firm = LinearFirm(loss, C=C, device="cpu")
    Xd = firm.design(X)
    rows = torch.arange(0, n, 4)
    surrogate = FairnessSurrogate(objective, kind, 0.5)
    problem = SoftFlipBilevel(firm, Xd, torch.as_tensor(y), rows, Xd, torch.as_tensor(y), torch.as_tensor(a), surrogate)
    z = torch.as_tensor(rng.uniform(0.2, 0.8, size=(2, len(rows))))
    return problem, z


def _central_differences(problem, z, theta, h=1e-5):
    fd = torch.zeros_like(z)
    for k in range(z.shape[1]):
        e = torch.zeros_like(z)
        e[:, k] = h
        up = problem.outer(problem.inner(z + e, theta))
        down = problem.outer(problem.inner(z - e, theta))
        fd[:, k] = (up - down) / (2 * h)
    return fd


@pytest.mark.parametrize("loss", ["logistic", "squared", "smoothed-hinge"])
@pytest.mark.parametrize("solver", ["cholesky", "cg"])
def test_implicit_hypergradient_matches_finite_differences(loss, solver):
    problem, z = _bilevel(loss)
    theta = problem.inner(z)
    value, grad = implicit_hypergradient(problem, z, theta, solver=solver)
    fd = _central_differences(problem, z, theta)
    assert torch.allclose(value, problem.outer(theta))
    assert float((grad - fd).norm() / fd.norm()) < 1e-6


@pytest.mark.parametrize("objective, kind", [("eqod-worst", "sigmoid"), ("dp", "hinge"), ("eqopp", "mean-score")])
def test_hypergradient_other_objectives_and_surrogates(objective, kind):
    problem, z = _bilevel("logistic", objective, kind, seed=3)
    theta = problem.inner(z)
    _, grad = implicit_hypergradient(problem, z, theta)
    assert float((grad - _central_differences(problem, z, theta)).norm() / grad.norm()) < 1e-6


def test_ridge_label_jacobian_closed_form():
    problem, z = _bilevel("squared", C=0.7)
    firm, Xd = problem.firm, problem.Xd
    Y = problem.labels(z[:1])[0]
    theta = firm.fit_params(Xd, Y)
    J = label_jacobian(firm, Xd, theta, torch.arange(Xd.shape[0]), y=Y)
    R = torch.eye(Xd.shape[1], dtype=Xd.dtype)
    R[-1, -1] = 0.0
    closed = 2 * firm.C * torch.linalg.solve(firm.C * Xd.T @ Xd + R, Xd.T)
    assert torch.allclose(J, closed, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("loss", ["logistic", "squared"])
def test_implicit_equals_label_jacobian_transpose(loss):
    problem, z = _bilevel(loss, seed=5)
    theta = problem.inner(z)
    _, grad = implicit_hypergradient(problem, z, theta)
    for b in range(z.shape[0]):
        th = theta[b].detach().requires_grad_(True)
        g = torch.autograd.grad(problem.outer(th[None]).sum(), th)[0]
        J = label_jacobian(problem.firm, problem.Xd, theta[b], problem.rows, y=problem.labels(z[b:b + 1])[0])
        assert torch.allclose(grad[b], (J.T @ g) * problem.sign, rtol=1e-9, atol=1e-13)


def test_unrolled_newton_converges_to_implicit():
    problem, z = _bilevel("logistic")
    theta = problem.inner(z)
    _, implicit = implicit_hypergradient(problem, z, theta)
    errors = []
    for K in (1, 2, 4, 8):
        _, grad, _ = unrolled_hypergradient(problem, z, torch.zeros_like(theta), steps=K)
        errors.append(float((grad - implicit).norm() / implicit.norm()))
    assert all(later < earlier for earlier, later in zip(errors, errors[1:3]))
    assert errors[-1] < 1e-8


def test_unrolled_gradient_descent_converges_to_implicit():
    problem, z = _bilevel("logistic")
    theta = problem.inner(z)
    _, implicit = implicit_hypergradient(problem, z, theta)
    errors = []
    for K in (10, 100, 1000):
        _, grad, _ = unrolled_hypergradient(problem, z, torch.zeros_like(theta), steps=K, kind="gradient")
        errors.append(float((grad - implicit).norm() / implicit.norm()))
    assert errors[0] > errors[1] > errors[2]
    assert errors[-1] < 1e-6


def test_unrolled_newton_is_exact_in_one_step_for_ridge():
    problem, z = _bilevel("squared")
    theta = problem.inner(z)
    _, implicit = implicit_hypergradient(problem, z, theta)
    _, grad, theta1 = unrolled_hypergradient(problem, z, torch.zeros_like(theta), steps=1)
    assert torch.allclose(theta1, theta, atol=1e-10)
    assert torch.allclose(grad, implicit, rtol=1e-9, atol=1e-14)


def test_conjugate_gradient_batch():
    rng = np.random.default_rng(0)
    A = torch.as_tensor(rng.normal(size=(3, 6, 6)))
    A = A @ A.transpose(1, 2) + 0.5 * torch.eye(6)
    b = torch.as_tensor(rng.normal(size=(3, 6)))
    x = conjugate_gradient(lambda v: (A @ v.unsqueeze(-1)).squeeze(-1), b)
    assert torch.allclose(x, torch.linalg.solve(A, b.unsqueeze(-1)).squeeze(-1), atol=1e-10)


def test_bad_hypergradient_options():
    problem, z = _bilevel("logistic")
    theta = problem.inner(z)
    with pytest.raises(FairflipError, match="linear solver"):
        implicit_hypergradient(problem, z, theta, solver="lu")
    with pytest.raises(FairflipError, match="at least one step"):
        unrolled_hypergradient(problem, z, theta, steps=0)
    with pytest.raises(FairflipError, match="unroll kind"):
        unrolled_hypergradient(problem, z, theta, kind="adam")
