"""The logistic certificate's factored MILP: the remainder graph's lines, the coupled remainder model and the
class-aggregated MILP, each checked against the soundness suite's independent brute force (its own Newton fits).

- every line of :func:`graph_lines` lies below (above) the remainder phi on a dense grid of its range;
- at every retrained flip set of tiny instances, the true point (g = Q^T z, the true shifts, remainders and
  scores) satisfies every constraint of the coupled model and of the factored uniform interval;
- the factored MILP's bound (with candidate and row classes, with and without the coupled model) never lies above
  the brute-force optimum, also on instances full of identical candidates and identical evaluation rows whose
  groups and labels differ.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from test_soundness import Reference, fit_reference, random_instance

TOL = 1e-9


def _phi(f, d):
    """sigma(f + d) - sigma(f) - sigma'(f) d with the plain exponential form (independent of fairflip's)."""
    s = 1.0 / (1.0 + np.exp(-f))
    return 1.0 / (1.0 + np.exp(-(f + d))) - s - s * (1.0 - s) * d


def test_graph_lines_bound_the_remainder_on_their_range():
    from fairflip.solvers.logistic_cert import graph_lines

    rng = np.random.default_rng(0)
    K = 400
    f = np.r_[rng.normal(scale=3.0, size=K - 6), [0.0, 30.0, -30.0, 1e-9, 2.0, -2.0]]
    lo = -np.abs(rng.exponential(1.0, size=K))
    hi = np.abs(rng.exponential(1.0, size=K))
    lo[-6:] = [-1.0, -3.0, 0.0, -1e-7, 0.0, -0.5]
    hi[-6:] = [1.0, 0.0, 3.0, 1e-7, 0.0, 4.0]
    for slopes in (1, 3, 6, 12):
        b, low, high = graph_lines(f, lo, hi, slopes)
        assert b.shape == low.shape == high.shape == (K, slopes)
        t = np.linspace(0.0, 1.0, 2001)
        d = lo[:, None] + (hi - lo)[:, None] * t[None, :]  # (K, grid), ends included
        v = _phi(f[:, None], d)
        for j in range(slopes):
            line = b[:, j, None] * d
            assert np.all(low[:, j, None] + line <= v + 1e-16), slopes
            assert np.all(high[:, j, None] + line >= v - 1e-16), slopes
            # Tight: the least and largest of phi - b d over the grid meet the lines (up to the grid).
            assert np.all((v - line).min(axis=1) - low[:, j] <= 1e-5), slopes
            assert np.all(high[:, j] - (v - line).max(axis=1) <= 1e-5), slopes


def _true_point(problem, iv, center, A):
    """Everything the coupled and factored models describe, at the retrained flip set center + A."""
    X = np.c_[problem.X, np.ones(problem.n)]
    y = problem.y.astype(float)
    rows = list(center) + list(A)
    y[rows] = 1 - y[rows]
    C = float(problem.firm.C)
    theta_s = problem.fit_flip_sets([np.asarray(center, dtype=np.int64)])[0].astype(np.float64)
    theta_f = fit_reference(problem.X, y, "logistic", C, problem.sample_weight)
    Xe = problem.evaluation_set[0]
    E = np.c_[Xe, np.ones(len(Xe))]
    z = np.isin(iv.free, A).astype(float)
    return {"z": z, "g": iv.lowrank.Q.T @ z, "d": X @ (theta_f - theta_s), "f": X @ theta_s,
            "score": E @ theta_f - problem.firm.score_threshold}


@pytest.mark.parametrize("tracked", [3, 1000])
def test_coupled_model_and_factored_interval_hold_at_every_retrained_flip_set(tracked):
    from fairflip.solvers.logistic_cert import logistic_intervals

    checked = instances = 0
    for seed in range(1, 400, 2):  # odd seeds: the logistic firm, every option combination
        if instances >= 16:
            break
        problem, budget, _ = random_instance(seed)
        cands = problem.candidates
        for center in (cands[:0], cands[:1]):
            free = np.setdiff1d(cands, center)
            left = budget - len(center)
            if left <= 0:
                continue
            iv = logistic_intervals(problem, center, free, left, tracked=tracked, slopes=6)
            if not iv.certified:
                continue
            cm, lr = iv.coupling, iv.lowrank
            assert cm is not None and lr is not None
            instances += 1
            T = cm.rows
            for k in range(left + 1):
                for A in itertools.combinations(free, k):
                    t = _true_point(problem, iv, center, A)
                    dT = t["d"][T]
                    v = _phi(t["f"][T], dT)
                    w = cm.Xw.T @ v
                    gw = t["g"] - w
                    assert np.all(dT >= cm.lo - TOL) and np.all(dT <= cm.hi + TOL), (seed, A)
                    r = dT - cm.XH @ gw
                    assert np.all(r >= cm.d_lo - TOL) and np.all(r <= cm.d_hi + TOL), (seed, A)
                    assert np.all(cm.line_low + cm.slope * dT[:, None] <= v[:, None] + TOL), (seed, A)
                    assert np.all(cm.line_high + cm.slope * dT[:, None] >= v[:, None] - TOL), (seed, A)
                    s = t["score"] - cm.EH @ gw
                    assert np.all(s >= cm.score_lo - TOL) and np.all(s <= cm.score_hi + TOL), (seed, A)
                    assert np.all(t["score"] >= cm.true_lo - TOL) and np.all(t["score"] <= cm.true_hi + TOL)
                    u = t["score"] - lr.base - lr.EH @ t["g"]
                    assert np.all(u >= lr.lo - TOL) and np.all(u <= lr.hi + TOL), (seed, A, "factored")
                    checked += 1
    assert instances >= 16 and checked >= 150, (instances, checked)


def _duplicated(seed: int):
    """A logistic instance with identical candidates (same row, label and weight) and identical evaluation rows
    whose groups and labels differ: the MILP's classes are not trivial."""
    rng = np.random.default_rng(40_000 + seed)
    while True:
        k = int(rng.integers(0, 10**6))
        problem, budget, opts = random_instance(2 * k + 1)
        if len(problem.candidates) >= 4 and problem.validation is None:
            break
    c = problem.candidates
    problem.X[c[1]] = problem.X[c[0]]
    problem.X[c[3]] = problem.X[c[2]]
    if problem.sample_weight is not None:
        problem.sample_weight[c[1]] = problem.sample_weight[c[0]]
        problem.sample_weight[c[3]] = problem.sample_weight[c[2]]
    others = np.setdiff1d(np.arange(problem.n), c)
    for i in range(0, min(6, len(others) - 1), 2):  # copies of a row with its own group and label
        problem.X[others[i + 1]] = problem.X[others[i]]
    return problem, max(budget, 2), opts


def test_factored_milp_never_bounds_above_the_optimum():
    from fairflip.solvers.logistic_cert import certificate_milp, logistic_intervals
    from fairflip.solvers.milp import fairness_gaps, solve

    checked = grouped = 0
    for seed in range(12):
        problem, budget, opts = _duplicated(seed) if seed % 2 == 0 else random_instance(4 * seed + 1)
        if getattr(problem.firm, "loss", None) != "logistic":
            continue
        ref = Reference(problem, budget, "logistic", opts["C"])
        cands = problem.candidates
        iv = logistic_intervals(problem, cands[:0], cands, budget, tracked=8, slopes=4)
        if not iv.certified:
            continue
        gaps = fairness_gaps(problem.objective, problem.evaluation_set[1], problem.evaluation_set[2])
        # (coupled, shared, quadratic): each further model must keep the MILP a relaxation.
        for coupled, shared, quadratic in ((False, False, False), (True, False, False), (False, True, False),
                                           (False, False, True), (True, True, True)):
            prob, n, decode, const = certificate_milp(iv, gaps, error_weight=problem.error_weight,
                                                      coupled=coupled, shared=shared, quadratic=quadratic)
            if n.shape[0] < len(cands):
                grouped += 1
            report = solve(prob, n, const, solver="HIGHS", time_limit=10.0)
            assert report.bound is not None
            assert report.bound <= ref.optimum + TOL, (seed, coupled, shared, quadratic, report.bound, ref.optimum)
            z = decode(report.z)
            assert z.sum() <= budget and set(np.flatnonzero(z)) <= set(range(len(cands)))
            checked += 1
    assert checked >= 30 and grouped >= 10, (checked, grouped)


def test_certify_logistic_formulations_agree_on_soundness():
    from fairflip._errors import FairflipError
    from fairflip.solvers.logistic_cert import certify_logistic

    for seed in range(3):
        problem, budget, opts = _duplicated(seed)
        ref = Reference(problem, budget, "logistic", opts["C"])
        for formulation in ("factored", "dense"):
            r = certify_logistic(problem, budget, time_limit=10.0, enumerate_max=0, formulation=formulation)
            assert r.lower_bound is not None and r.lower_bound <= ref.optimum + TOL, (seed, formulation)
            value, ambiguous = ref.value_of(r.flipped)
            assert ambiguous or r.objective == pytest.approx(value, abs=1e-12)
    with pytest.raises(FairflipError, match="formulation"):
        certify_logistic(problem, budget, formulation="sparse")


def test_a_set_closed_by_retraining_counts_with_its_band_robust_value():
    """Mirrored data put two evaluation scores exactly at the threshold under no flips; fairflip's fit rounds them
    to one side, the exact value to the other. The branch and bound's leaves and incumbent enter its bound with
    either prediction allowed there, so the bound stays at or below the exact optimum."""
    from test_logistic_cert_adversarial import symmetric_instance

    from fairflip.solvers.logistic_cert import certify_logistic, robust_values
    from fairflip.solvers.milp import fairness_gaps

    problem, C = symmetric_instance(2)
    ref = Reference(problem, 2, "logistic", C)
    empty = np.zeros(0, dtype=np.int64)
    assert ref.ambiguous[()]
    gaps = fairness_gaps(problem.objective, problem.evaluation_set[1], problem.evaluation_set[2])
    values, ambiguous = robust_values(problem, gaps, [empty, problem.candidates[:1]], 1e-7)
    assert ambiguous[0] and values[0] <= ref.values[()] + TOL
    assert values[0] <= problem.objective_of([empty])[0]
    assert not ambiguous[1] and values[1] == pytest.approx(ref.values[tuple(problem.candidates[:1])], abs=1e-12)
    r = certify_logistic(problem, 2, time_limit=10.0, enumerate_max=0)
    assert r.lower_bound <= ref.optimum + TOL
