"""oracle-relaxed: the exact capped-simplex projection (against a CVXPY QP) and the method's contract."""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from _instances import tiny_problem
from fairflip._errors import FairflipError
from fairflip.firms import SklearnFirm
from fairflip.methods import get_method
from fairflip.solvers.relaxed import project_capped_simplex


def _qp_projection(v: np.ndarray, M: float) -> np.ndarray:
    x = cp.Variable(len(v))
    cp.Problem(cp.Minimize(cp.sum_squares(x - v)), [x >= 0, x <= 1, cp.sum(x) <= M]).solve(
        solver=cp.CLARABEL, tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
    return x.value


def test_projection_matches_cvxpy_qp():
    rng = np.random.default_rng(0)
    Z = rng.normal(0.4, 0.8, size=(8, 15))
    budgets = np.array([0.0, 1.0, 2.5, 3.0, 5.0, 7.0, 15.0, 40.0])
    P = project_capped_simplex(torch.as_tensor(Z), torch.as_tensor(budgets)).numpy()
    for b in range(len(Z)):
        ref = _qp_projection(Z[b], budgets[b])
        assert np.abs(P[b] - ref).max() < 1e-7
        assert P[b].min() >= 0 and P[b].max() <= 1 and P[b].sum() <= budgets[b] + 1e-12


@pytest.mark.parametrize("case", ["ties", "half-integers", "equal-row", "zero-budget", "all-at-cap"])
def test_projection_matches_cvxpy_qp_on_breakpoint_cases(case):
    """Rows built so that tau falls on a breakpoint (z_i or z_i - 1), flat stretches of the sum, equal entries."""
    rng = np.random.default_rng(2)
    Z = {"ties": np.repeat(rng.normal(0.5, 0.7, size=(4, 5)), 3, axis=1),
         "half-integers": rng.integers(-2, 5, size=(4, 12)) * 0.5,
         "equal-row": np.full((4, 9), 0.8),
         "zero-budget": rng.normal(0.5, 1.0, size=(4, 10)),
         "all-at-cap": rng.uniform(1.5, 3.0, size=(4, 10))}[case]
    budgets = {"zero-budget": np.zeros(4)}.get(case, np.array([0.5, 1.0, 2.0, 3.5]))
    P = project_capped_simplex(torch.as_tensor(Z), torch.as_tensor(budgets)).numpy()
    for b in range(len(Z)):
        # The interior-point QP is accurate to ~1e-6 on these degenerate rows; the rational reference is exact.
        assert np.abs(P[b] - _qp_projection(Z[b], budgets[b])).max() < 1e-6
        assert np.abs(P[b] - _rational_projection(Z[b], budgets[b])).max() < 1e-12
        assert P[b].min() >= 0 and P[b].max() <= 1 and P[b].sum() <= budgets[b] + 1e-12


def _rational_projection(v: np.ndarray, M: float) -> np.ndarray:
    """clip(v - tau, 0, 1) with tau found in exact rational arithmetic: the sum is checked at every breakpoint
    and tau solved on the linear piece where it crosses M."""
    from fractions import Fraction

    z = [Fraction(float(x)) for x in v]
    m = Fraction(float(M))

    def total(t):
        return sum(min(max(x - t, Fraction(0)), Fraction(1)) for x in z)

    if total(Fraction(0)) <= m:
        tau = Fraction(0)
    else:
        points = sorted({Fraction(0)} | {p for x in z for p in (x, x - 1) if p > 0})
        lo = max(p for p in points if total(p) >= m)
        above = [p for p in points if p > lo]
        s_lo, s_hi = total(lo), (total(min(above)) if above else total(lo))
        tau = lo if s_lo == s_hi else lo + (s_lo - m) * (min(above) - lo) / (s_lo - s_hi)
    return np.array([float(min(max(x - tau, Fraction(0)), Fraction(1))) for x in z])


def test_projection_is_idempotent_and_exact_on_the_budget():
    rng = np.random.default_rng(1)
    Z = torch.as_tensor(rng.uniform(-1, 2, size=(5, 30)))
    M = torch.tensor([1.0, 4.0, 6.0, 10.0, 12.0])
    P = project_capped_simplex(Z, M)
    assert torch.allclose(project_capped_simplex(P, M), P, atol=1e-14)
    assert torch.allclose(P.sum(-1), torch.minimum(M, Z.clamp(0, 1).sum(-1)), atol=1e-12)
    with pytest.raises(FairflipError, match="non-negative"):
        project_capped_simplex(Z, -M)


def test_relaxed_oracle_contract_several_budgets():
    problem = tiny_problem(2, n=80, n_members=14)
    method = get_method("oracle-relaxed", steps=25)
    budgets = [1, 3, 5]
    results = method.select_many(problem, budgets)
    none = problem.objective_of([np.zeros(0, dtype=np.int64)])[0]
    for M, r in zip(budgets, results):
        assert len(r.flipped) <= M and np.isin(r.flipped, problem.candidates).all()
        assert r.lower_bound is None
        assert r.info["objective"] == pytest.approx(problem.objective_of([r.flipped])[0], abs=1e-12)
        assert r.info["objective"] <= r.info["rounded_objective"] + 1e-12 <= none + 2e-12
        assert "surrogate of eqod" in r.info["surrogate"]
        assert r.scores.shape == problem.candidates.shape and r.scores.sum() <= M + 1e-9
    single = method.select(problem, 3)
    assert single.info["objective"] == pytest.approx(results[1].info["objective"], abs=1e-12)


@pytest.mark.parametrize("params", [{"gradient": "unrolled", "unroll_steps": 2}, {"surrogate": "hinge"},
                                    {"surrogate": "mean-score", "local_search": False}])
def test_relaxed_variants_run(params):
    problem = tiny_problem(3)
    r = get_method("oracle-relaxed", steps=10, **params).select(problem, 2)
    assert r.info["objective"] == pytest.approx(problem.objective_of([r.flipped])[0], abs=1e-12)


def test_relaxed_oracle_needs_a_linear_firm():
    problem = tiny_problem(0)
    problem.firm = SklearnFirm("sk-logistic", lambda: LogisticRegression())
    with pytest.raises(FairflipError, match="gradients"):
        get_method("oracle-relaxed", steps=2).select(problem, 2)
    with pytest.raises(FairflipError, match="gradient"):
        get_method("oracle-relaxed", gradient="finite")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_relaxed_oracle_on_cuda_matches_cpu():
    from fairflip.firms import LinearFirm

    problem = tiny_problem(5)
    cpu = get_method("oracle-relaxed", steps=15).select(problem, 2)
    problem.firm = LinearFirm("logistic", device="cuda")
    gpu = get_method("oracle-relaxed", steps=15).select(problem, 2)
    assert gpu.info["objective"] == pytest.approx(cpu.info["objective"], abs=1e-9)


def test_newton_tracking_follows_the_exactly_solved_relaxation(monkeypatch):
    """One Newton step per relaxation step (from the previous step's exact Hessian factors) against solving each
    inner problem to the firm's tolerance: the same relaxed z to 1e-4 and surrogate values to 1e-6."""
    import fairflip.solvers.relaxed as relaxed
    from fairflip.datasets import make_causal, stratified_split
    from fairflip.problem import build_problem
    from fairflip.solvers.hypergrad import SoftFlipBilevel

    calls = []
    step = SoftFlipBilevel.newton_step

    def counted(self, *args):
        calls.append(1)
        return step(self, *args)

    monkeypatch.setattr(SoftFlipBilevel, "newton_step", counted)
    cap = relaxed.TRACK_MAX_STEP
    for seed in range(2):
        data = make_causal(900, d=3, seed=seed)
        train, _ = stratified_split(data, test_size=0.3, seed=seed)
        problem, _ = build_problem(train, firm="logistic", collective_fraction=0.3, direction="auto", seed=seed)
        method = get_method("oracle-relaxed", steps=40, local_search=False)
        calls.clear()
        tracked = method.relax(problem, [3, 8])
        assert len(calls) >= 39  # every step after the first tracked
        monkeypatch.setattr(relaxed, "TRACK_MAX_STEP", -1.0)  # no step is small enough: solve each one
        solved = method.relax(problem, [3, 8])
        monkeypatch.setattr(relaxed, "TRACK_MAX_STEP", cap)
        np.testing.assert_allclose(tracked.z, solved.z, rtol=0, atol=1e-4)
        np.testing.assert_allclose(tracked.value, solved.value, rtol=0, atol=1e-6)
