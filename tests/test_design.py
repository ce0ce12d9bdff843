"""CSR products with the design matrix against the dense ones, and the firm and oracle with and without the twin."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks.bench_design import one_hot_matrix
from fairflip.collective import make_collective
from fairflip.firms import LinearFirm
from fairflip.firms import design
from fairflip.firms.design import attach_sparse_twin, pullback, scores, sparse_twin
from fairflip.methods import get_method
from fairflip.problem import FlipProblem


@pytest.fixture
def small_twins(monkeypatch):
    """Let small matrices get a twin, so the CSR path runs on instances brute force and tests can afford."""
    monkeypatch.setattr(design, "SPARSE_MIN_ENTRIES", 0)


def test_twin_products_equal_dense_products():
    firm = LinearFirm("logistic", device="cpu")
    Xd = firm.design(one_hot_matrix(30_000, blocks=10))  # 30,000 x 103 at 13% density
    S = sparse_twin(Xd)
    assert S is not None and S.nnz == int((Xd != 0).sum())
    rng = np.random.default_rng(1)
    for K in (1, 3, design.SPARSE_CHUNK, 2 * design.SPARSE_CHUNK + 5):
        V = torch.as_tensor(rng.normal(size=(K, Xd.shape[1])))
        G = torch.as_tensor(rng.normal(size=(K, Xd.shape[0])))
        torch.testing.assert_close(scores(V, Xd), V @ Xd.T, rtol=1e-13, atol=1e-12)
        torch.testing.assert_close(pullback(G, Xd), G @ Xd, rtol=1e-13, atol=1e-10)
        assert scores(V[:, :5].T.contiguous().T, Xd[:, :5]).shape == (K, Xd.shape[0])  # no twin: dense
    threads = torch.get_num_threads()
    try:  # many threads: a large batch takes the dense (multithreaded) product, a small one the twin
        torch.set_num_threads(design.SPARSE_LARGE_BATCH_MAX_THREADS + 1)
        assert design._twin_for(G, Xd) is None and design._twin_for(G[:design.SPARSE_CHUNK], Xd) is S
    finally:
        torch.set_num_threads(threads)


def test_no_twin_for_dense_small_float32_or_gradient_inputs():
    rng = np.random.default_rng(2)
    assert not attach_sparse_twin(torch.as_tensor(rng.normal(size=(20_000, 60))))  # dense
    assert not attach_sparse_twin(torch.as_tensor(one_hot_matrix(100)))  # small
    assert not attach_sparse_twin(torch.as_tensor(one_hot_matrix(30_000), dtype=torch.float32))
    Xd = torch.as_tensor(one_hot_matrix(30_000, blocks=10))
    assert attach_sparse_twin(Xd) and sparse_twin(Xd.clone()) is None
    # a product that autograd must see takes the dense path, so gradients flow
    V = torch.ones(1, Xd.shape[1], dtype=torch.float64, requires_grad=True)
    scores(V, Xd).sum().backward()
    torch.testing.assert_close(V.grad[0], Xd.sum(0))


@pytest.mark.parametrize("loss", ["logistic", "squared", "smoothed-hinge"])
def test_newton_with_twin_equals_newton_without(loss, small_twins):
    rng = np.random.default_rng(3)
    X = one_hot_matrix(400, seed=3)
    firm = LinearFirm(loss, device="cpu")
    Xd = firm.design(X)
    plain = Xd.clone()  # same values, no twin
    assert sparse_twin(Xd) is not None and sparse_twin(plain) is None
    Y = torch.as_tensor((rng.random((4, len(X))) < 0.4).astype(float))
    base = firm.fit_params(plain, Y[0])
    factor = torch.linalg.cholesky(firm.hessian(base[None], plain, Y[:1])[0])
    for kwargs in ({}, {"init": base, "preconditioner": factor}):
        torch.testing.assert_close(firm.fit_params(Xd, Y, **kwargs), firm.fit_params(plain, Y, **kwargs),
                                   rtol=0, atol=1e-9)
    W = firm.curvature(base[None].expand(4, -1), Xd, Y)
    V = torch.as_tensor(rng.normal(size=(4, Xd.shape[1])))
    torch.testing.assert_close(firm.hessian_product(W, Xd, V), firm.hessian_product(W, plain, V), rtol=1e-12, atol=1e-12)


def test_relaxed_oracle_same_flips_with_and_without_twin(small_twins, monkeypatch):
    rng = np.random.default_rng(4)
    n = 300
    a = (rng.random(n) < 0.35).astype(int)
    X = one_hot_matrix(n, seed=4)
    y = ((X[:, 0] + X[:, 3] - 0.8 * a + rng.normal(scale=0.7, size=n)) > 0.3).astype(int)
    pool = np.flatnonzero((a == 1) & (y == 0))
    members = np.zeros(n, dtype=bool)
    members[pool[:25]] = True

    def solve():
        problem = FlipProblem(X=np.c_[X, a], y=y, a=a, collective=make_collective(y, a, members=members, direction="up"),
                              firm=LinearFirm("logistic", device="cpu"), X_nogroup=X)
        twin = sparse_twin(problem.training_state()["Xd"]) is not None
        return twin, [r.info["objective"] for r in get_method("oracle-relaxed", steps=15).select_many(problem, [2, 5])]

    twin, with_twin = solve()
    monkeypatch.setattr(design, "SPARSE_MIN_ENTRIES", 10**12)
    no_twin, without = solve()
    assert twin and not no_twin
    np.testing.assert_allclose(with_twin, without, atol=1e-12)


@pytest.mark.parametrize("loss", ["logistic", "squared", "smoothed-hinge"])
def test_unflipped_optimum_by_preconditioned_newton_cg_equals_dense_newton(loss, small_twins):
    rng = np.random.default_rng(5)
    n = 500
    a = (rng.random(n) < 0.4).astype(int)
    X = one_hot_matrix(n, seed=5)
    y = ((X[:, 0] + X[:, 4] - a + rng.normal(size=n)) > 0).astype(int)
    firm = LinearFirm(loss, device="cpu")
    problem = FlipProblem(X=np.c_[X, a], y=y, a=a, collective=make_collective(y, a, members=a == 1, direction="up"),
                          firm=firm, X_nogroup=X)
    cache = problem.training_state()
    assert sparse_twin(cache["Xd"]) is not None
    dense = firm.fit_params(cache["Xd"].clone(), torch.as_tensor(y, dtype=torch.float64))
    torch.testing.assert_close(cache["theta0"], dense, rtol=0, atol=1e-9)
