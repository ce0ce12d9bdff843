"""The CUDA path against the CPU path: the same solves, gradients and sweeps on both devices, in float64.

Skipped where torch sees no CUDA device (every CPU-only machine, CI included); ``benchmarks/gpu_check.sh`` runs
this module on a GPU machine before its benchmarks. The CPU results are the references: each test computes the
same thing with ``device="cpu"`` and ``device="cuda"`` and compares.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from _instances import tiny_problem
from fairflip.firms import LinearFirm
from fairflip.firms.linear import PCG_MIN_PARAMS
from fairflip.solvers.hypergrad import SoftFlipBilevel, implicit_hypergradient
from fairflip.surrogates import FairnessSurrogate

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _logistic_data(n: int, d: int, K: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = (rng.random(n) < 1 / (1 + np.exp(-X @ rng.normal(size=d) / np.sqrt(d)))).astype(float)
    Y = np.repeat(y[None], K, axis=0)
    for k in range(1, K):
        rows = rng.choice(n, size=n // 50, replace=False)
        Y[k, rows] = 1 - Y[k, rows]
    return X, Y


def test_default_device_is_cuda_and_data_stays_there():
    firm = LinearFirm("logistic")
    assert firm.torch_device.type == "cuda"
    problem = tiny_problem(0)
    problem.firm = LinearFirm("logistic")
    cache = problem.training_state()
    assert cache["Xd"].device.type == "cuda" and cache["theta0"].device.type == "cuda"


@pytest.mark.parametrize("loss", ["logistic", "squared", "smoothed-hinge"])
def test_batched_fit_on_cuda_matches_cpu(loss):
    X, Y = _logistic_data(3_000, 12, K=8)
    cpu = LinearFirm(loss, device="cpu").fit_many(X, Y)
    gpu = LinearFirm(loss, device="cuda").fit_many(X, Y)
    assert np.abs(gpu - cpu).max() < 1e-9


def test_cuda_logistic_firm_matches_sklearn():
    X, Y = _logistic_data(2_000, 6, K=1, seed=1)
    theta = LinearFirm("logistic", device="cuda").fit_many(X, Y)[0]
    ref = LogisticRegression(C=1.0, solver="newton-cholesky", tol=1e-12, max_iter=1000).fit(X, Y[0])
    assert np.abs(theta[:-1] - ref.coef_[0]).max() < 1e-8 and abs(theta[-1] - ref.intercept_[0]) < 1e-8


def test_preconditioned_cg_newton_on_cuda_matches_cpu():
    """The large-p path (CG Newton steps preconditioned by the base Hessian's Cholesky factor)."""
    d = PCG_MIN_PARAMS + 4
    X, Y = _logistic_data(4_000, d, K=16, seed=2)
    out = {}
    for dev in ("cpu", "cuda"):
        firm = LinearFirm("logistic", device=dev)
        Xd, Yt = firm.design(X), torch.as_tensor(Y, device=firm.torch_device)
        base = firm.fit_params(Xd, Yt[0])
        factor = torch.linalg.cholesky(firm.hessian(base[None], Xd, Yt[:1])[0])
        out[dev] = firm.fit_params(Xd, Yt, init=base, preconditioner=factor).cpu().numpy()
    assert np.abs(out["cuda"] - out["cpu"]).max() < 1e-9


def test_flip_set_retraining_and_objectives_on_cuda_match_cpu():
    problem = tiny_problem(4, n=200, n_members=20)
    rng = np.random.default_rng(0)
    sets = [np.sort(rng.choice(problem.candidates, size=k, replace=False)) for k in (0, 1, 3, 5, 8)]
    cpu_thetas, cpu_obj = problem.fit_flip_sets(sets), problem.objective_of(sets)
    problem.firm = LinearFirm("logistic", device="cuda")
    assert np.abs(problem.fit_flip_sets(sets) - cpu_thetas).max() < 1e-9
    assert np.array_equal(problem.objective_of(sets), cpu_obj)


@pytest.mark.parametrize("solver", ["cholesky", "cg"])
def test_implicit_hypergradient_on_cuda_matches_cpu_and_finite_differences(solver):
    rng = np.random.default_rng(3)
    n = 120
    X = rng.normal(size=(n, 4))
    a = (rng.random(n) < 0.4).astype(float)
    X[:, -1] = a
    y = ((X[:, 0] + 0.5 * a + rng.normal(size=n)) > 0).astype(float)
    z0 = rng.uniform(0.2, 0.8, size=(2, n // 4))
    grads = {}
    for dev in ("cpu", "cuda"):
        firm = LinearFirm("logistic", device=dev)
        Xd = firm.design(X)
        t = lambda v: torch.as_tensor(v, device=firm.torch_device)  # noqa: E731
        problem = SoftFlipBilevel(firm, Xd, t(y), t(np.arange(0, n, 4)), Xd, t(y), t(a),
                                  FairnessSurrogate("eqod", "sigmoid", 0.5))
        z = t(z0)
        theta = problem.inner(z)
        _, grad = implicit_hypergradient(problem, z, theta, solver=solver)
        grads[dev] = grad.cpu()
        if dev == "cuda":  # central differences on the GPU, one coordinate at a time
            h, fd = 1e-5, torch.zeros_like(z)
            for k in range(z.shape[1]):
                e = torch.zeros_like(z)
                e[:, k] = h
                fd[:, k] = (problem.outer(problem.inner(z + e, theta)) - problem.outer(problem.inner(z - e, theta))) / (2 * h)
            assert float((grad - fd).norm() / fd.norm()) < 1e-6
    assert float((grads["cuda"] - grads["cpu"]).abs().max()) < 1e-10


def test_relaxed_oracle_sweep_on_cuda_matches_cpu():
    from fairflip.methods import get_method

    problem = tiny_problem(6, n=150, n_members=16)
    method = get_method("oracle-relaxed", steps=15)
    cpu = [r.info["objective"] for r in method.select_many(problem, [1, 3, 5])]
    problem.firm = LinearFirm("logistic", device="cuda")
    gpu = [r.info["objective"] for r in method.select_many(problem, [1, 3, 5])]
    assert np.allclose(gpu, cpu, atol=1e-9)


def test_sweep_on_cuda_matches_cpu(compas_split):
    from fairflip.sweep import sweep

    train, test = compas_split
    kwargs = dict(methods=["rb-prob", "rb-label"], budgets=[0, 0.2, 0.5], seeds=[0, 1], direction="auto")
    cpu = sweep(train, test, firm=LinearFirm("logistic", device="cpu"), **kwargs)
    gpu = sweep(train, test, firm=LinearFirm("logistic", device="cuda"), **kwargs)
    numeric = [c for c in cpu.columns if cpu[c].dtype.kind == "f" and not c.endswith("_s")]  # no timings
    assert len(cpu) == len(gpu) and numeric
    assert np.allclose(gpu[numeric].to_numpy(), cpu[numeric].to_numpy(), atol=1e-9, equal_nan=True)
