"""The logistic certificate on instances built to break it: evaluation scores exactly at (or within rounding of)
the threshold under the optimal flip set, exact zeros at the centre by symmetry, and tied candidates.

Each instance is checked against the soundness suite's independent brute force (its own Newton fits): every
retrained score lies in both certified intervals (uniform and flip-dependent) of every flip set, and the branch
and bound over the intervals alone (no enumeration) never bounds above the optimum.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from fairflip.collective import Collective
from fairflip.firms import LinearFirm
from fairflip.problem import FlipProblem

from test_soundness import Reference, decisive_row, fit_reference, place_score, random_instance

TOL = 1e-9


def _logistic_base(seed: int) -> tuple[FlipProblem, float]:
    rng = np.random.default_rng(20_000 + seed)
    while True:
        k = int(rng.integers(0, 10**6))
        problem, _, opts = random_instance(2 * k + 1)
        if opts["loss"] == "logistic" and len(problem.candidates) >= 3:
            return problem, opts["C"]


def threshold_instances() -> list[tuple[str, FlipProblem, int, float]]:
    """Logistic instances where, under the brute-force optimal flip set F, the evaluation row whose prediction
    matters most scores exactly ``target`` (0, +-1e-12, a hair above): a validation row moved along the firm's
    weights, or a training row moved by bisection on a non-candidate row's feature (each step retrained)."""
    out = []
    targets = (0.0, 1e-12, -1e-12, 2e-7)
    for seed in range(8):
        problem, C = _logistic_base(seed)
        budget = 2
        ref = Reference(problem, budget, "logistic", C)
        best = min(ref.sets, key=lambda s: ref.values[s])
        target = targets[seed % len(targets)]
        p = problem
        row = decisive_row(p, ref.scores(best))
        label = place_score(p, ref, best, row, target, "logistic", C, seed)
        if label is not None:
            out.append((label, p, budget, C))
    return out


def symmetric_instance(seed: int) -> tuple[FlipProblem, float]:
    """Mirrored data (x, y) and (-x, 1 - y) plus two rows at x = 0 with labels 0 and 1: the unflipped firm's
    intercept is 0 by symmetry, so those two rows score exactly at the threshold at the centre."""
    rng = np.random.default_rng(30_000 + seed)
    m, d = 10, 2
    X0 = rng.normal(size=(m, d))
    y0 = (X0[:, 0] + rng.normal(scale=0.8, size=m) > 0).astype(np.int64)
    X = np.r_[X0, -X0, np.zeros((2, d))]
    y = np.r_[y0, 1 - y0, [0, 1]]
    a = np.r_[(rng.random(m) < 0.5).astype(np.int64), (rng.random(m) < 0.5).astype(np.int64), [1, 0]]
    for g in (0, 1):
        for v in (0, 1):
            if not ((y == v) & (a == g)).any():
                a[np.flatnonzero(y == v)[0]] = g
    pool = np.flatnonzero((a == 1) & (y == 0))
    if len(pool) < 3:
        a[np.flatnonzero(y == 0)[:3]] = 1
        pool = np.flatnonzero((a == 1) & (y == 0))
    members = np.zeros(len(y), dtype=bool)
    members[pool[:4]] = True
    C = 1.0
    problem = FlipProblem(X=X, y=y, a=a, collective=Collective(members, a == 0, "up"),
                          firm=LinearFirm("logistic", C=C, device="cpu"), objective="eqod")
    return problem, C


def tied_instance(seed: int) -> tuple[FlipProblem, float]:
    """Two candidates with identical rows (and labels), and a duplicated non-candidate row."""
    problem, C = _logistic_base(100 + seed)
    c = problem.candidates
    problem.X[c[1]] = problem.X[c[0]]
    others = np.setdiff1d(np.arange(problem.n), c)
    problem.X[others[1]] = problem.X[others[0]]
    problem.y[others[1]] = problem.y[others[0]]
    return problem, C


def all_instances() -> list[tuple[str, FlipProblem, int, float]]:
    """(name, problem, budget, C) for every adversarial instance."""
    out = threshold_instances()
    for s in range(3):
        problem, C = symmetric_instance(s)
        out.append((f"symmetric {s}", problem, 2, C))
    for s in range(3):
        problem, C = tied_instance(s)
        out.append((f"tied {s}", problem, 2, C))
    return out


def check_intervals_brute(name, problem, budget, C, ref) -> int:
    """Every retrained score inside the uniform, first-order and second-order intervals of every flip set, at the
    root (the second-order one also around a reference set) and around one flipped row."""
    from fairflip.solvers.logistic_cert import logistic_intervals

    cands = problem.candidates
    Xe = problem.X if problem.validation is None else problem.validation[0]
    E = np.c_[Xe, np.ones(len(Xe))]
    checked = 0
    for center, around in ((cands[:0], False), (cands[:1], False), (cands[:0], True)):
        free = np.setdiff1d(cands, center)
        left = budget - len(center)
        # The second-order interval without a reference, and around the first free candidates.
        reference = (np.arange(len(free)) < left).astype(float) if around else None
        iv = logistic_intervals(problem, center, free, left, reference=reference)
        if not iv.certified:
            continue
        for k in range(left + 1):
            for A in itertools.combinations(free, k):
                y = problem.y.astype(float)
                rows = list(center) + list(A)
                y[rows] = 1 - y[rows]
                f = E @ fit_reference(problem.X, y, "logistic", C, problem.sample_weight)
                z = np.isin(free, A).astype(float)
                err = np.abs(f - iv.model.at(z))
                assert np.all(err <= iv.radius + TOL), (name, center, A, "uniform")
                if iv.radius_affine is not None:
                    r0, R = iv.radius_affine
                    assert np.all(err <= r0 + R @ z + TOL), (name, center, A, "affine")
                if iv.quadratic is not None:
                    q_rows, lo0, LO, hi0, HI = iv.quadratic
                    assert np.all(f[q_rows] - problem.firm.score_threshold >= lo0 + LO @ z - TOL), (name, A, "2nd")
                    assert np.all(f[q_rows] - problem.firm.score_threshold <= hi0 + HI @ z + TOL), (name, A, "2nd")
                checked += 1
    return checked


@pytest.mark.parametrize("index", range(11))
def test_adversarial_logistic_certificate(index):
    from fairflip.solvers.logistic_cert import certify_logistic

    instances = _cached_instances()
    if index >= len(instances):
        pytest.skip("fewer adversarial instances were built")
    name, problem, budget, C = instances[index]
    ref = Reference(problem, budget, "logistic", C)
    assert check_intervals_brute(name, problem, budget, C, ref) > 0, name
    r = certify_logistic(problem, budget, time_limit=10.0, enumerate_max=0)
    assert r.lower_bound is not None and r.lower_bound <= ref.optimum + TOL, (name, r.lower_bound, ref.optimum)
    value, ambiguous = ref.value_of(r.flipped)
    assert ambiguous or r.objective == pytest.approx(value, abs=1e-12), (name, r.objective, value)


_CACHE: list = []


def _cached_instances():
    if not _CACHE:
        _CACHE.extend(all_instances())
    return _CACHE


@pytest.mark.parametrize("share", [0.0, 0.25])
def test_intervals_without_the_pairwise_matrix(monkeypatch, share):
    """Above MAX_PAIRWISE_ROWS training rows the fixed point uses the per-row bound on the heavy rows only (as many
    as MAX_PAIRWISE_ENTRIES allows: none, or a quarter of them) and the norm bound on the others (and the
    flip-dependent interval its row chunks): still every retrained score inside both intervals."""
    import fairflip.solvers.logistic_cert as lc

    monkeypatch.setattr(lc, "MAX_PAIRWISE_ROWS", 0)
    checked = 0
    for s in range(4):
        problem, C = _logistic_base(300 + s)
        entries = int(share * problem.n * (problem.n + len(problem.evaluation_set[1])))
        monkeypatch.setattr(lc, "MAX_PAIRWISE_ENTRIES", entries)  # what the brute-force check below builds
        iv = lc.logistic_intervals(problem, problem.candidates[:0], problem.candidates, 2, pairwise_entries=entries)
        assert iv.info["pairwise_rows"] == int(share * problem.n)
        # Ranges that cannot settle (a tiny max_shift): the heavy rows are chosen once more (when there are any to
        # choose), then no certificate (infinite radius), never a wrong one.
        stuck = lc.logistic_intervals(problem, problem.candidates[:0], problem.candidates, 2, max_shift=1e-9,
                                      pairwise_entries=entries)
        assert not stuck.certified and np.all(np.isinf(stuck.radius))
        assert stuck.info["reselected"] == bool(share)
        ref = Reference(problem, 2, "logistic", C)
        checked += check_intervals_brute(f"no pairwise {s}", problem, 2, C, ref)
    assert checked > 0
