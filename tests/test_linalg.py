"""Preconditioned CG and the preconditioned Newton path of batched retraining, against dense references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from fairflip.collective import make_collective
from fairflip.firms import LinearFirm
from fairflip.firms.linear import PCG_MIN_PARAMS
from fairflip.linalg import cholesky_preconditioner, conjugate_gradient
from fairflip.problem import FlipProblem
from fairflip.solvers.hypergrad import SoftFlipBilevel, implicit_hypergradient
from fairflip.surrogates import FairnessSurrogate


def _data(n, d, seed):
    rng = np.random.default_rng(seed)
    a = (rng.random(n) < 0.4).astype(np.int64)
    X = rng.normal(size=(n, d))
    X[:, -1] = a
    y = (X[:, 0] - 0.7 * a + rng.normal(size=n) > 0).astype(np.int64)
    return X, y, a


def test_preconditioned_cg_solves_spd_batch():
    g = torch.Generator().manual_seed(0)
    A = torch.randn(3, 12, 12, generator=g, dtype=torch.float64)
    A = A @ A.transpose(-1, -2) + 0.5 * torch.eye(12, dtype=torch.float64)
    b = torch.randn(3, 12, generator=g, dtype=torch.float64)
    exact = torch.linalg.solve(A, b.unsqueeze(-1)).squeeze(-1)
    # a preconditioner close to (not equal to) every system: the mean matrix
    factor = torch.linalg.cholesky(A.mean(0))
    x = conjugate_gradient(lambda v: (A @ v.unsqueeze(-1)).squeeze(-1), b,
                           precondition=cholesky_preconditioner(factor), tol=1e-12)
    assert torch.allclose(x, exact, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("loss", ["logistic", "squared", "smoothed-hinge"])
def test_preconditioned_newton_equals_dense_newton(loss):
    X, y, _ = _data(300, 25, seed=1)
    firm = LinearFirm(loss, C=0.5, device="cpu")
    Xd = firm.design(X)
    rng = np.random.default_rng(2)
    sw = torch.as_tensor(rng.uniform(0.5, 2.0, size=len(y)))
    Y = torch.as_tensor(np.repeat(y[None], 4, axis=0), dtype=torch.float64)
    Y[1, :20] = 1 - Y[1, :20]
    Y[2] = torch.as_tensor(rng.uniform(size=len(y)))  # soft labels far from the reference
    theta0 = firm.fit_params(Xd, torch.as_tensor(y, dtype=torch.float64), sample_weight=sw)
    H0 = firm.hessian(theta0[None], Xd, torch.as_tensor(y, dtype=torch.float64)[None], sw)[0]
    dense = firm.fit_params(Xd, Y, sample_weight=sw, init=theta0)
    pcg = firm.fit_params(Xd, Y, sample_weight=sw, init=theta0, preconditioner=torch.linalg.cholesky(H0))
    assert torch.allclose(pcg, dense, rtol=0, atol=1e-9)
    assert float(firm.gradient(pcg, Xd, Y, sw).abs().max()) < 1e-7


def test_hessian_product_matches_hessian():
    X, y, _ = _data(80, 6, seed=3)
    firm = LinearFirm("logistic", device="cpu")
    Xd = firm.design(X)
    theta = torch.randn(2, Xd.shape[1], dtype=torch.float64)
    Y = torch.as_tensor(np.stack([y, 1 - y]), dtype=torch.float64)
    V = torch.randn(2, Xd.shape[1], dtype=torch.float64)
    H = firm.hessian(theta, Xd, Y)
    Hv = firm.hessian_product(firm.curvature(theta, Xd, Y), Xd, V)
    assert torch.allclose(Hv, (H @ V.unsqueeze(-1)).squeeze(-1), rtol=1e-12, atol=1e-12)


def test_wide_problem_uses_the_factor_and_matches_sklearn():
    X, y, a = _data(600, PCG_MIN_PARAMS, seed=4)
    col = make_collective(y, a, fraction=0.5, direction="up", seed=0)
    problem = FlipProblem(X=X, y=y, a=a, collective=col, firm=LinearFirm("logistic", C=1.0, device="cpu"))
    assert problem.training_state()["factor"] is not None
    cands = problem.candidates
    sets = [cands[:5], cands[5:30]]
    thetas = problem.fit_flip_sets(sets)
    for flips, theta in zip(sets, thetas):
        ref = LogisticRegression(C=1.0, solver="newton-cholesky", tol=1e-12, max_iter=1000)
        ref.fit(X, problem.flipped_labels(flips))
        assert np.allclose(theta, np.r_[ref.coef_.ravel(), ref.intercept_], atol=1e-7)


def test_implicit_hypergradient_with_factor_equals_cholesky():
    X, y, a = _data(400, 30, seed=5)
    firm = LinearFirm("logistic", device="cpu")
    Xd = firm.design(X)
    yt, at = torch.as_tensor(y, dtype=torch.float64), torch.as_tensor(a, dtype=torch.float64)
    rows = torch.as_tensor(np.flatnonzero((a == 1) & (y == 0))[:40])
    theta0 = firm.fit_params(Xd, yt)
    factor = torch.linalg.cholesky(firm.hessian(theta0[None], Xd, yt[None])[0])
    surrogate = FairnessSurrogate("eqod", "sigmoid", 0.3)
    plain = SoftFlipBilevel(firm, Xd, yt, rows, Xd, yt, at, surrogate)
    fast = SoftFlipBilevel(firm, Xd, yt, rows, Xd, yt, at, surrogate, hessian_factor=factor, theta_start=theta0)
    z = torch.full((2, len(rows)), 0.3, dtype=torch.float64)
    z[1, ::2] = 0.9
    theta = fast.inner(z)
    assert torch.allclose(theta, plain.inner(z), atol=1e-9)
    g_fast = implicit_hypergradient(fast, z, theta)[1]
    g_plain = implicit_hypergradient(plain, z, theta, solver="cholesky")[1]
    assert float((g_fast - g_plain).norm() / g_plain.norm()) < 1e-8
