"""Brute force, greedy and local search: every value by exact retraining, checked by independent enumeration."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from _instances import tiny_problem
from fairflip._errors import FairflipError
from fairflip.firms import SklearnFirm
from fairflip.methods import get_method
from fairflip.problem import evaluate_flips
from fairflip.solvers.exact import count_flip_sets, greedy_path
from fairflip.solvers.search import ranked_local_search as local_search


def test_count_flip_sets():
    assert count_flip_sets(10, 3) == 1 + 10 + 45 + 120
    assert count_flip_sets(4, 9) == 16
    assert count_flip_sets(7, 0) == 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_brute_force_is_the_minimum_over_an_independent_enumeration(seed):
    problem = tiny_problem(seed, n_members=7)
    M = 2
    result = get_method("brute-force").select(problem, M)
    cands = problem.candidates
    # Independent path: one exact retraining per set through evaluate_flips (the firm's numpy fit).
    values = [evaluate_flips(problem, np.array(s, dtype=np.int64))["objective"]
              for k in range(M + 1) for s in itertools.combinations(cands, k)]
    assert result.lower_bound == pytest.approx(min(values), abs=1e-12)
    assert evaluate_flips(problem, result.flipped)["objective"] == pytest.approx(min(values), abs=1e-12)
    assert result.info["n_sets"] == len(values)


def test_brute_force_refuses_large_counts():
    problem = tiny_problem(0)
    with pytest.raises(FairflipError, match="max_sets=50"):
        get_method("brute-force", max_sets=50).select(problem, 3)
    with pytest.raises(FairflipError, match="max_sets"):
        get_method("brute-force", max_sets=0)


def test_greedy_path_steps_are_best_single_additions():
    problem = tiny_problem(4)
    order, values = greedy_path(problem, 3)
    assert np.all(np.diff(values) < 0)  # every accepted step strictly improves
    chosen: list[int] = []
    for step, row in enumerate(order):
        trials = {j: problem.objective_of([np.array(chosen + [j])])[0] for j in problem.candidates if j not in chosen}
        best = min(trials.values())
        assert trials[row] == pytest.approx(best, abs=1e-12)
        assert values[step + 1] == pytest.approx(best, abs=1e-12)
        chosen.append(int(row))
    if len(order) < 3:  # stopped early: no remaining flip improves
        rest = [problem.objective_of([np.array(chosen + [j])])[0] for j in problem.candidates if j not in chosen]
        assert min(rest) >= values[-1] - 1e-12


def test_greedy_method_and_non_linear_firm():
    problem = tiny_problem(6, n_members=6)
    problem.firm = SklearnFirm("sk-logistic", lambda: LogisticRegression(C=0.5))
    result = get_method("greedy").select(problem, 2)
    assert len(result.flipped) <= 2
    values = result.info["objective_path"]
    assert evaluate_flips(problem, result.flipped)["objective"] == pytest.approx(values[-1], abs=1e-12)
    brute = get_method("brute-force").select(problem, 2)
    assert brute.lower_bound <= values[-1] + 1e-12


@pytest.mark.parametrize("seed", [0, 3])
def test_local_search_ends_at_a_local_optimum(seed):
    problem = tiny_problem(seed)
    cands = problem.candidates
    M = 3
    start = np.random.default_rng(seed).choice(cands, size=M, replace=False)
    found = local_search(problem, start, M)
    assert found.converged
    assert found.objective <= problem.objective_of([start])[0] + 1e-12
    assert found.objective == pytest.approx(problem.objective_of([found.flipped])[0], abs=1e-12)
    S = list(found.flipped)
    outside = [j for j in cands if j not in S]
    neighbours = [np.array(S[:i] + S[i + 1:]) for i in range(len(S))]
    neighbours += [np.array(S + [j]) for j in outside] if len(S) < M else []
    neighbours += [np.array(S[:i] + S[i + 1:] + [j]) for i in range(len(S)) for j in outside]
    assert problem.objective_of(neighbours).min() >= found.objective - 1e-12


def test_local_search_respects_the_evaluation_cap():
    problem = tiny_problem(1)
    found = local_search(problem, problem.candidates[:2], 3, max_evaluations=5)
    assert not found.converged and found.evaluations <= 5
    with pytest.raises(FairflipError, match="positive"):
        local_search(problem, problem.candidates[:2], 3, neighbourhood=0)
    assert math.isfinite(found.objective)


def test_enumeration_shares_one_pass_and_reports_proven_optima():
    from fairflip.methods import SolveControl
    from fairflip.solvers.exact import enumerate_optimum, enumeration_cost

    problem = tiny_problem(2, n_members=6)
    cands = problem.candidates
    found = enumerate_optimum(problem, [0, 1, 3], batch_size=5)
    for e, M in zip(found, [0, 1, 3]):
        sets = [np.array(s, dtype=np.int64) for k in range(M + 1) for s in itertools.combinations(cands, k)]
        values = [evaluate_flips(problem, s)["objective"] for s in sets]
        assert e.complete and e.n_sets == len(sets)
        assert e.objective == pytest.approx(min(values), abs=1e-12)
        assert evaluate_flips(problem, e.flipped)["objective"] == pytest.approx(min(values), abs=1e-12)
    results = get_method("brute-force").select_many(problem, [1, 3])
    for r, e in zip(results, found[1:]):
        assert r.status == "optimal" and r.bound_source == "enumeration" and r.lower_bound == r.objective
        assert r.objective == pytest.approx(e.objective, abs=1e-12)
    # A time limit that has already passed stops after the first batch: no budget beyond it is proven.
    control = SolveControl(time_limit=1e-9)
    stopped = enumerate_optimum(problem, [3], batch_size=4, control=control)[0]
    assert not stopped.complete and stopped.n_sets == 4
    cost = enumeration_cost(problem, 3, probe=4)
    assert cost["n_sets"] == count_flip_sets(len(cands), 3)
    assert cost["seconds_per_set"] > 0 and cost["seconds"] == pytest.approx(cost["n_sets"] * cost["seconds_per_set"])
    assert enumeration_cost(problem, 3, max_sets=10)["seconds"] == math.inf


def test_greedy_answers_every_budget_from_one_path_and_honours_the_time_limit():
    problem = tiny_problem(4, n=70, n_members=12)
    greedy = get_method("greedy")
    together = greedy.select_many(problem, [1, 3, 5])
    for M, r in zip([1, 3, 5], together):  # the same flips as one budget at a time
        alone = greedy.select(problem, M)
        np.testing.assert_array_equal(r.flipped, alone.flipped)
        assert r.objective == pytest.approx(problem.objective_of([r.flipped])[0], abs=1e-12)
        assert r.status == "feasible" and not r.time_limit_hit
    (late,) = greedy.select_many(problem, [5], time_limit=1e-9)
    assert late.status == "time_limit" and late.time_limit_hit and len(late.flipped) == 0
    assert late.objective == pytest.approx(problem.objective_of([late.flipped])[0], abs=1e-12)
