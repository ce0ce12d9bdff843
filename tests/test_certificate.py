"""Bound bookkeeping: the largest certified bound is adopted, a bound above an evaluated objective is withdrawn
and flagged, and ``optimal`` is claimed only where objective and bound meet."""

from __future__ import annotations

import numpy as np
import pytest

from fairflip.methods import FlipResult
from fairflip.solvers.certificate import adopt_best_bound, meets


def _result(objective, bound=None, source=None):
    return FlipResult(flipped=np.zeros(0, dtype=np.int64), objective=objective, lower_bound=bound,
                      bound_source=source, solver="HIGHS x" if bound is not None else None)


def test_adopts_the_largest_bound_and_proves_optimality_when_it_meets():
    r = _result(0.2)
    adopt_best_bound(r, [("a", _result(0.3, 0.1, "milp-dual")), ("b", _result(0.2, 0.2, "enumeration")),
                         ("c", _result(0.5))])
    assert r.lower_bound == 0.2 and r.bound_source == "enumeration" and r.status == "optimal"
    assert r.info["lower_bound_source"] == "b" and set(r.info["bound_components"]) == {"a", "b"}
    assert not r.bound_inconsistent


def test_a_bound_above_an_evaluated_objective_is_withdrawn_and_flagged():
    r = _result(0.3)
    adopt_best_bound(r, [("a", _result(0.4, 0.25, "milp-dual"))], evaluated=0.2)
    assert r.lower_bound is None and r.bound_source is None and r.bound_inconsistent
    assert r.info["rejected_bound"] == 0.25 and r.status == "feasible"
    r = _result(0.1)
    adopt_best_bound(r, [("a", _result(0.4, 0.25, "milp-dual"))])
    assert r.bound_inconsistent and r.lower_bound is None


def test_trivial_and_missing_bounds():
    r = _result(0.3)
    adopt_best_bound(r, [("a", _result(0.3, 0.0, "trivial"))])
    assert r.lower_bound == 0.0 and r.bound_source == "trivial" and r.status == "feasible"
    r = _result(0.3)
    adopt_best_bound(r, [("a", _result(0.3))])
    assert r.lower_bound is None and r.info["lower_bound_source"] is None and not r.bound_inconsistent
    assert meets(0.0, 0.0) and meets(0.2, 0.2 - 1e-8) and not meets(0.2, 0.19) and not meets(None, 0.1)


# ----- the logistic firm's certified intervals and branch and bound, against an independent brute force -----
def test_logistic_intervals_contain_every_retrained_score():
    import itertools

    from test_soundness import fit_reference, random_instance

    from fairflip.solvers.logistic_cert import logistic_intervals

    checked = certified = affine = quadratic = 0
    for seed in range(1, 1000, 2):  # odd seeds: the logistic firm, every option combination
        if certified >= 40:
            break
        problem, budget, opts = random_instance(seed)
        cands = problem.candidates
        center = cands[:1] if seed % 3 == 0 else cands[:0]
        free = np.setdiff1d(cands, center)
        # boxed=3: a few rows enter the flip-dependent interval through their remainder range, the rest through
        # their secant slope times their shift.
        # The second-order interval's choices are made at a reference set: none (the worst case) or a random one.
        reference = None if seed % 3 != 1 else (np.random.default_rng(seed).random(len(free)) < 0.3).astype(float)
        iv = logistic_intervals(problem, center, free, budget, boxed=3 if seed % 4 == 1 else 0, reference=reference)
        if not iv.certified:
            continue
        certified += 1
        Xe = problem.evaluation_set[0]
        E = np.c_[Xe, np.ones(len(Xe))]
        for k in range(budget + 1):
            for A in itertools.combinations(free, k):
                y = problem.y.astype(float)
                rows = list(center) + list(A)
                y[rows] = 1 - y[rows]
                f = E @ fit_reference(problem.X, y, "logistic", opts["C"], problem.sample_weight)
                z = np.isin(free, A).astype(float)
                assert np.all(np.abs(f - iv.model.at(z)) <= iv.radius + 1e-9), (seed, A)
                if iv.radius_affine is not None:
                    r0, R = iv.radius_affine
                    assert np.all(np.abs(f - iv.model.at(z)) <= r0 + R @ z + 1e-9), (seed, A, "affine")
                    affine += 1
                if iv.quadratic is not None:
                    q_rows, lo0, LO, hi0, HI = iv.quadratic
                    assert np.all(f[q_rows] >= lo0 + LO @ z - 1e-9), (seed, A, "quadratic")
                    assert np.all(f[q_rows] <= hi0 + HI @ z + 1e-9), (seed, A, "quadratic")
                    quadratic += 1
                checked += 1
    assert certified >= 40 and checked >= 300 and affine >= 300 and quadratic >= 100, (certified, checked, affine,
                                                                                      quadratic)


def test_curvature_range_matches_a_dense_grid():
    from fairflip.solvers.logistic_cert import curvature_range

    rng = np.random.default_rng(0)
    a = rng.normal(0.0, 3.0, 400)
    b = a + rng.exponential(2.0, 400)
    a[:4], b[:4] = [-1.5, 1.0, -0.5, 1.3169578969248166], [1.5, 1.4, 0.5, 1.3169578969248166]  # peaks inside/at
    lo, hi = curvature_range(a, b)
    for i in range(len(a)):
        x = np.linspace(a[i], b[i], 20001)
        s = 1.0 / (1.0 + np.exp(-x))
        v = s * (1 - s) * (1 - 2 * s)
        assert lo[i] <= v.min() + 1e-12 and hi[i] >= v.max() - 1e-12
        assert v.min() - lo[i] <= 1e-7 and hi[i] - v.max() <= 1e-7  # exact up to the grid's spacing


def test_logistic_branch_and_bound_never_bounds_above_the_optimum():
    from test_soundness import Reference, random_instance

    from fairflip.solvers.logistic_cert import certify_logistic

    proven = 0
    for seed in range(3, 80, 4):
        problem, budget, opts = random_instance(seed)
        ref = Reference(problem, budget, "logistic", opts["C"])
        # Small nodes are enumerated by default (the whole root here): a proven optimum.
        e = certify_logistic(problem, budget, time_limit=20.0)
        assert e.status == "optimal"
        assert e.bound_source == "enumeration" or (e.objective == 0 and e.bound_source == "trivial")
        assert e.lower_bound == e.objective and abs(e.objective - ref.optimum) <= 1e-9 or ref.ambiguous[
            tuple(int(i) for i in e.flipped)]
        # Without enumeration: branch and bound over the certified intervals alone.
        r = certify_logistic(problem, budget, time_limit=20.0, enumerate_max=0)
        assert r.lower_bound is not None and r.lower_bound <= ref.optimum + 1e-9, (seed, r.lower_bound, ref.optimum)
        assert r.bound_source in ("relaxation", "branch-and-bound", "trivial")
        value, ambiguous = ref.value_of(r.flipped)
        assert ambiguous or r.objective == pytest.approx(value, abs=1e-12)
        if r.status == "optimal":
            proven += 1
            assert r.objective <= ref.optimum + 1e-9
    assert proven >= 5, proven


def test_a_node_over_enumerate_max_is_enumerated_when_the_probe_says_it_fits():
    from test_soundness import Reference, random_instance

    from fairflip.solvers.exact import count_flip_sets
    from fairflip.solvers.logistic_cert import certify_logistic

    checked = 0
    for seed in range(3, 40, 4):
        problem, budget, opts = random_instance(seed)
        count = count_flip_sets(len(problem.candidates), budget)
        if count < 4:
            continue
        ref = Reference(problem, budget, "logistic", opts["C"])
        r = certify_logistic(problem, budget, time_limit=60.0, enumerate_max=2)  # below the root's count
        if r.objective == 0:  # 0 reached (by no flips, or by a set the enumeration found): optimal either way
            assert r.bound_source in ("trivial", "enumeration") and r.status == "optimal"
            continue
        assert r.bound_source == "enumeration" and r.status == "optimal", (seed, r.bound_source)
        assert r.info["enumerated_sets"] == count - 1  # every non-empty set (the empty one is the start)
        assert abs(r.objective - ref.optimum) <= 1e-9 or ref.ambiguous[tuple(int(i) for i in r.flipped)]
        checked += 1
    assert checked >= 5, checked


def test_a_bound_above_the_objective_by_rounding_only_is_clamped_not_flagged():
    r = _result(0.25)
    adopt_best_bound(r, [("a", _result(0.25, 0.25 + 1e-14, "milp-dual"))])
    assert r.lower_bound == 0.25 and not r.bound_inconsistent and r.status == "optimal"


def test_certify_logistic_bad_inputs():
    from _instances import tiny_problem

    from fairflip._errors import FairflipError
    from fairflip.solvers.logistic_cert import certify_logistic

    with pytest.raises(FairflipError, match="time_limit must be a positive"):
        certify_logistic(tiny_problem(0), 2, time_limit=0)
    with pytest.raises(FairflipError, match="enumerate_max"):
        certify_logistic(tiny_problem(0), 2, enumerate_max=-1)
    with pytest.raises(FairflipError, match="needs the logistic firm"):
        certify_logistic(tiny_problem(0, loss="squared"), 2)
    with pytest.raises(FairflipError, match="budget"):
        certify_logistic(tiny_problem(0), -1)
    for bad in (-1, 2.5, True):
        with pytest.raises(FairflipError, match="pairwise_entries must be a non-negative integer"):
            certify_logistic(tiny_problem(0), 2, pairwise_entries=bad)
    from fairflip.methods import get_method

    with pytest.raises(FairflipError, match="pairwise_entries must be a non-negative integer"):
        get_method("oracle-certified", pairwise_entries=-5)


def test_oracle_certified_is_sound_against_the_independent_brute_force():
    """The registered method: portfolio incumbents with the logistic branch and bound, checked against the
    soundness suite's independent brute force (no bound above the optimum, every objective recomputed)."""
    from test_soundness import Reference, random_instance

    from fairflip.methods import get_method

    checked = 0
    for seed in range(5, 200, 7):
        problem, budget, opts = random_instance(seed)
        if getattr(problem.firm, "loss", None) != "logistic":
            continue
        checked += 1
        ref = Reference(problem, budget, "logistic", opts["C"])
        (r,) = get_method("oracle-certified", certify_time_limit=10.0).select_many(problem, [budget])
        value, ambiguous = ref.value_of(r.flipped)
        assert ambiguous or r.objective == pytest.approx(value, abs=1e-12)
        assert r.lower_bound is not None and r.bound_source is not None
        assert r.lower_bound <= ref.optimum + 1e-9, (seed, r.lower_bound, ref.optimum)
        assert not r.bound_inconsistent
    assert checked >= 4, checked


@pytest.mark.slow
@pytest.mark.parametrize("budget", [1, 5, 10, 25])
def test_compas_retrained_flip_sets_lie_in_the_logistic_intervals(budget):
    """Full COMPAS (collective 30 %, direction auto, seed 0): 300 retrained flip sets per budget (random, largest
    linearised shift, and greedy prefixes with their one-swap neighbours) inside both certified intervals, and
    their true points inside every constraint of the coupled remainder model."""
    from benchmarks.bench_certificate import check_intervals

    from fairflip.datasets import load, stratified_split
    from fairflip.problem import build_problem
    from fairflip.solvers.exact import greedy_path

    train, _ = stratified_split(load("compas"), test_size=0.3, seed=0)
    problem, _ = build_problem(train, firm="logistic", collective_fraction=0.3, direction="auto", seed=0)
    order, _ = greedy_path(problem, min(budget, 5))
    found = [np.sort(order[:j]) for j in range(1, len(order) + 1)]
    out = check_intervals(problem, budget, 300, found=found)
    assert out["certified"] and out["sets"] >= 300, out
    assert out["violations"] == 0, out
    assert out["coupled_violations"] == 0, out  # the coupled model and the factored interval (see bench_certificate)
    assert out["all"]["ratio_max"] <= 1.0, out


def test_root_diagnostics_on_a_compas_subsample():
    """bench_certificate's diagnostics: the root MILP with the uniform interval scaled to 1, 0.5 and 0 around its
    centre (solved to optimality here: the optimum can only rise as the interval narrows, and at scale 1, a
    certified relaxation, it is at most the brute-force optimum), and the second-order Taylor model closer to
    retraining than the first-order one."""
    from benchmarks.bench_certificate import model_orders, root_scaling
    from fairflip.methods import get_method
    from fairflip.datasets import load
    from fairflip.problem import build_problem
    from fairflip.solvers.exact import count_flip_sets

    data = load("compas")
    rng = np.random.default_rng(0)
    sub = data.subset(np.sort(rng.choice(len(data), size=600, replace=False)))
    problem, _ = build_problem(sub, firm="logistic", collective_fraction=0.3, direction="auto", seed=0)
    budget = 2
    assert count_flip_sets(len(problem.candidates), budget) <= 20_000
    optimum = float(get_method("brute-force").select(problem, budget).objective)
    rows = root_scaling(problem, budget, scales=(1.0, 0.5, 0.0), time_limit=60.0)
    assert [r["status"] for r in rows] == ["optimal"] * 3, rows
    assert rows[0]["bound"] <= optimum + 1e-9, (rows[0], optimum)
    assert rows[0]["primal"] <= rows[1]["primal"] + 1e-9 <= rows[2]["primal"] + 2e-9, rows
    assert all(r["retrained"] >= optimum - 1e-12 for r in rows), rows
    cands = problem.candidates
    sets = [np.sort(rng.choice(cands, size=budget, replace=False)) for _ in range(20)]
    orders = model_orders(problem, budget, sets)
    assert orders["sets"] == 20
    assert orders["second_order_max_median"] < orders["first_order_max_median"], orders


def test_bench_intervals_reports_the_root_intervals():
    """benchmarks/bench_intervals on shipped COMPAS at M = 2: the per-row bound over every row (n <= 6,000), a
    certificate, and its median half-width equal to logistic_intervals' own."""
    from benchmarks.bench_intervals import run
    from fairflip.datasets import load, stratified_split
    from fairflip.problem import build_problem
    from fairflip.solvers.logistic_cert import logistic_intervals

    out = run("compas", 2)
    assert out["certified"] and out["pairwise_rows"] == out["n"] and not out["reselected"]
    train, _ = stratified_split(load("compas"), test_size=0.3, seed=0)
    problem, _ = build_problem(train, firm="logistic", collective_fraction=0.3, direction="auto", seed=0)
    cands = problem.candidates
    iv = logistic_intervals(problem, cands[:0], cands, 2, tracked=100, quadratic=False)
    assert out["median_radius"] == float(np.median(iv.radius))
    assert 0 < out["open_rows"] < out["n"] and out["peak_rss_gib"] > 0
