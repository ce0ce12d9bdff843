"""The oracle's speed machinery: objective cache and batched objectives, the outer-product Hessian, enumeration
when cheap, time limits, progress, first-order-ranked searches and the relaxed oracle's automatic settings.

Every check compares with an independent reference: the per-set metric of fairflip.metrics, the chunked Hessian
assembly, a brute force written here with one plain fit per flip set, or an exhaustive neighbourhood scan.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from _instances import tiny_problem
from fairflip.firms import LinearFirm
from fairflip.firms import linear as linear_module
from fairflip.methods import get_method
from fairflip.metrics import demographic_parity, eqod, eqod_worst, equal_opportunity, error_rate
from fairflip.solvers.exact import IMPROVE_TOL
from fairflip.solvers.relaxed import AUTO_LARGE, AUTO_SMALL, LARGE_ENTRIES, make_ranker, soft_flip_bilevel
from fairflip.solvers.search import ranked_greedy, ranked_local_search, threads_for
from fairflip.surrogates import FairnessSurrogate

METRICS = {"eqod": eqod, "eqod-worst": eqod_worst, "dp": demographic_parity, "eqopp": equal_opportunity}


def _all_sets(problem, budget):
    c = problem.candidates
    return [np.array(s, dtype=np.int64) for k in range(min(budget, len(c)) + 1) for s in itertools.combinations(c, k)]


def _plain_objective(problem, flipped):
    """One ordinary fit on the flipped labels, then the metric of fairflip.metrics (no batching, no cache)."""
    model = problem.firm.fit(problem.X, problem.flipped_labels(flipped))
    pred = model.predict(problem.X)
    value = METRICS[problem.objective](problem.y, pred, problem.a)
    return value + problem.error_weight * error_rate(problem.y, pred)


def test_batched_objective_and_cache_match_the_per_set_metric():
    rng = np.random.default_rng(0)
    for seed, objective, weight in [(0, "eqod", 0.0), (1, "eqod-worst", 0.0), (2, "dp", 0.3), (3, "eqopp", 0.1)]:
        problem = tiny_problem(seed)
        problem.objective, problem.error_weight = objective, weight
        c = problem.candidates
        sets = [np.sort(rng.choice(c, size=int(k), replace=False)) for k in rng.integers(0, len(c) + 1, 12)]
        expected = np.array([_plain_objective(problem, f) for f in sets])
        np.testing.assert_allclose(problem.objective_of(sets), expected, atol=1e-9)
        with problem.objective_cache() as cache:
            first = problem.objective_of(sets)
            with problem.objective_cache() as inner:  # nested: the same cache
                assert inner is cache
                again = problem.objective_of([s[::-1] for s in sets])  # order inside a set does not matter
            assert cache.retrained == len({s.tobytes() for s in sets}) and cache.hits >= len(sets)
        np.testing.assert_allclose(first, expected, atol=1e-9)
        np.testing.assert_array_equal(first, again)
        assert "_objective_cache" not in problem.__dict__


def test_outer_product_hessian_matches_the_chunked_assembly(monkeypatch):
    gen = torch.Generator().manual_seed(0)
    firm = LinearFirm("logistic", C=0.7, device="cpu")
    Xd = torch.cat([torch.randn(300, 6, generator=gen, dtype=torch.float64), torch.ones(300, 1, dtype=torch.float64)], 1)
    Y = torch.rand(5, 300, generator=gen, dtype=torch.float64)
    theta = 0.3 * torch.randn(5, 7, generator=gen, dtype=torch.float64)
    fast = firm.hessian(theta, Xd, Y)
    monkeypatch.setattr(linear_module, "OUTER_MAX_BYTES", 0)
    slow = firm.hessian(theta, Xd, Y)
    torch.testing.assert_close(fast, slow, rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(fast, fast.transpose(-1, -2), rtol=0, atol=0)


def test_oracle_enumerates_small_instances_and_returns_the_brute_force_optimum():
    for seed in range(3):
        problem = tiny_problem(seed, n_members=7)
        budgets = [1, 2, 3]
        results = get_method("oracle").select_many(problem, budgets)
        for M, r in zip(budgets, results):
            sets = _all_sets(problem, M)
            reference = min(_plain_objective(problem, f) for f in sets)
            assert r.status == "optimal" and r.bound_source == "enumeration", (seed, M, r.status)
            assert r.objective == pytest.approx(reference, abs=1e-9)
            assert r.lower_bound == pytest.approx(r.objective, abs=0)
            assert _plain_objective(problem, r.flipped) == pytest.approx(reference, abs=1e-9)
            assert r.info["winner"] == "enumeration" and len(r.flipped) <= M
        # every flip set within the largest budget retrained once for all budgets
        assert results[0].info["retrained"] == len(_all_sets(problem, 3))


def test_a_tiny_time_limit_returns_a_valid_incumbent():
    problem = tiny_problem(4, n_members=10)
    for name, params in [("oracle", {"enumerate_max_sets": 0, "enumerate_max_seconds": 0}), ("oracle-relaxed", {})]:
        results = get_method(name, **params).select_many(problem, [2, 4], time_limit=1e-6)
        for M, r in zip([2, 4], results):
            assert r.status == "time_limit" and r.time_limit_hit and r.time_limit == 1e-6, name
            assert len(r.flipped) <= M and set(r.flipped) <= set(problem.candidates)
            assert r.objective == pytest.approx(_plain_objective(problem, r.flipped), abs=1e-9)
    # enumeration cut short after its first batch (1,586 sets within budget 5, 512 per batch): no bound
    problem = tiny_problem(4, n=200, n_members=12)
    assert len(problem.candidates) == 12
    r = get_method("oracle").select(problem, 5, time_limit=1e-6)
    assert r.status == "time_limit" and r.lower_bound is None and r.bound_source is None
    assert r.objective == pytest.approx(_plain_objective(problem, r.flipped), abs=1e-9)


def test_oracle_reports_progress_and_true_objectives():
    problem = tiny_problem(5, n_members=10)
    seen = []
    results = get_method("oracle", enumerate_max_sets=0, enumerate_max_seconds=0,
                         relaxed_params={"steps": 20}).select_many(
        problem, [2, 3], progress=seen.append)
    stages = {e.get("stage") for e in seen}
    assert {"none", "oracle-relaxed"} <= stages
    assert all(e["best"] >= 0 for e in seen if e.get("best") is not None)
    prev = np.inf
    for r in results:
        assert r.status in ("feasible", "optimal") and not r.time_limit_hit
        assert r.objective == pytest.approx(_plain_objective(problem, r.flipped), abs=1e-9)
        assert r.solver_objective == r.objective
        assert r.objective <= prev + 1e-12  # a larger budget never does worse (its start includes the smaller)
        prev = r.objective
        heuristics = [v["objective"] for k, v in r.info["components"].items() if k in ("random", "rb-prob")]
        assert r.objective <= min(heuristics) + 1e-12


def test_ranked_local_search_stops_at_a_local_optimum_of_the_full_neighbourhood():
    for seed in range(3):
        problem = tiny_problem(seed, n_members=8)
        M = 3
        surrogate = FairnessSurrogate(problem.objective, "sigmoid", 0.05, solver="oracle-relaxed")
        ranker = make_ranker(problem, soft_flip_bilevel(problem, surrogate))
        start = problem.candidates[:1]
        found = ranked_local_search(problem, start, M, ranker=ranker, first_moves=3)
        assert found.converged
        assert found.objective <= problem.objective_of([start])[0] + 1e-12
        # neighbourhood shortlists cover every candidate here, so no add, drop or swap may improve
        cur, c = set(found.flipped.tolist()), problem.candidates.tolist()
        moves = [cur | {j} for j in c if j not in cur and len(cur) < M] + [cur - {i} for i in cur]
        moves += [(cur - {i}) | {j} for i in cur for j in c if j not in cur]
        values = problem.objective_of([np.array(sorted(m), dtype=np.int64) for m in moves])
        assert values.min() >= found.objective - IMPROVE_TOL


def test_ranked_greedy_without_ranker_is_plain_greedy():
    problem = tiny_problem(6, n_members=8)
    order, values = ranked_greedy(problem, 3)
    current, expected = [], [problem.objective_of([np.zeros(0, dtype=np.int64)])[0]]
    for _ in range(3):  # greedy written out: every remaining candidate, the best strict improvement
        rest = [j for j in problem.candidates if j not in current]
        vals = [_plain_objective(problem, np.array(current + [j])) for j in rest]
        if min(vals) >= expected[-1] - IMPROVE_TOL:
            break
        current.append(int(rest[int(np.argmin(vals))]))
        expected.append(min(vals))
    assert order.tolist() == current
    np.testing.assert_allclose(values, expected, atol=1e-9)


def test_relaxed_settings_scale_with_the_design_matrix_and_threads_are_restored():
    method = get_method("oracle-relaxed")
    small = tiny_problem(0)
    assert method.settings(small) == AUTO_SMALL
    big = tiny_problem(0)
    rows = LARGE_ENTRIES // big.X.shape[1] + 1
    big.X = np.zeros((rows, big.X.shape[1]))
    assert method.settings(big) == AUTO_LARGE
    assert get_method("oracle-relaxed", steps=7).settings(big)["steps"] == 7
    from threadpoolctl import threadpool_info

    def blas_threads():
        return [d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"]

    before, blas_before = torch.get_num_threads(), blas_threads()
    for _ in range(2):  # the second call reuses the cached controller of the BLAS libraries
        with threads_for(small) as used:
            assert used == 1
            assert all(t == 1 for t in blas_threads())
        assert torch.get_num_threads() == before
        assert blas_threads() == blas_before


def test_searches_return_their_incumbent_once_the_time_limit_has_passed():
    from fairflip.methods import SolveControl

    problem = tiny_problem(7, n_members=8)
    control = SolveControl(time_limit=1e-9)
    order, values = ranked_greedy(problem, 3, control=control)
    assert len(order) == 0 and len(values) == 1
    start = problem.candidates[:2]
    found = ranked_local_search(problem, start, 3, control=control)
    assert not found.converged and found.flipped.tolist() == sorted(start.tolist())


@pytest.mark.slow
def test_compas_oracle_objectives_are_not_worse_than_before(compas_split):
    # The portfolio before its speed work reached 0.2304, 0.2085, 0.1774 and 0.1068 (seed 0, 30% collective,
    # direction auto, in-sample EqOd); each budget is its own select, as a user's one-budget call.
    from fairflip.problem import build_problem

    train, _ = compas_split
    problem, _ = build_problem(train, firm="logistic", collective_fraction=0.3, direction="auto", seed=0)
    for M, before in [(10, 0.2304), (25, 0.2085), (50, 0.1774), (100, 0.1068)]:
        r = get_method("oracle").select(problem, M)
        assert r.objective <= before + 5e-5, (M, r.objective)
        assert r.objective == pytest.approx(problem.objective_of([r.flipped])[0], abs=1e-12)
