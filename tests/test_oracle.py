"""The oracle portfolio: brute-force optimum on tiny instances, never worse than any heuristic, bounds honest."""

from __future__ import annotations

import pytest
from sklearn.linear_model import LogisticRegression

from _instances import tiny_problem
from fairflip._errors import FairflipError
from fairflip.firms import SklearnFirm
from fairflip.gap import DEFAULT_HEURISTICS
from fairflip.methods import available_methods, get_method, get_method
from fairflip.problem import build_problem
from fairflip.solvers.portfolio import PortfolioOracle

FAST = dict(relaxed_params={"steps": 30}, convex_params={"time_limit": 5.0, "max_rounds": 3})
NO_ENUMERATION = dict(enumerate_max_sets=0, enumerate_max_seconds=0)
SEARCH = dict(FAST, **NO_ENUMERATION, convex_firms=None)  # the search stages, on every firm, no enumeration


def _heuristic_values(problem, budget):
    names = [h for h in DEFAULT_HEURISTICS if h in available_methods()]
    sets = [get_method(h, seed=0).select(problem, budget).flipped for h in names]
    return dict(zip(names, problem.objective_of(sets)))


def test_oracle_reaches_brute_force_on_tiny_instances():
    hits, n = 0, 32
    for seed in range(n):
        problem = tiny_problem(seed)
        M = 1 + seed % 3
        brute = get_method("brute-force").select(problem, M)
        enumerated = get_method("oracle", **FAST).select(problem, M)  # few flip sets: the oracle enumerates
        assert enumerated.status == "optimal" and enumerated.bound_source == "enumeration"
        assert enumerated.objective == pytest.approx(brute.lower_bound, abs=1e-12)
        oracle = get_method("oracle", **SEARCH).select(problem, M)  # the search stages alone
        value = problem.objective_of([oracle.flipped])[0]
        assert value >= brute.lower_bound - 1e-12  # brute force is exact by construction
        assert value <= min(_heuristic_values(problem, M).values()) + 1e-12
        assert value == pytest.approx(oracle.info["objective"], abs=1e-12)
        assert oracle.objective == pytest.approx(value, abs=1e-12)
        hits += value <= brute.lower_bound + 1e-12
    assert hits >= 0.9 * n


def test_ridge_oracle_bound_is_valid():
    for seed in range(4):
        problem = tiny_problem(seed, loss="squared")
        brute = get_method("brute-force").select(problem, 2)
        oracle = get_method("oracle", **dict(SEARCH, convex_firms=("squared",))).select(problem, 2)
        if oracle.lower_bound is not None:
            assert oracle.info["lower_bound_source"] == "oracle-convex"
            assert oracle.lower_bound <= brute.lower_bound + 1e-6
        assert problem.objective_of([oracle.flipped])[0] >= brute.lower_bound - 1e-12


def test_oracle_never_worse_than_heuristics_on_compas(compas_split):
    train, _ = compas_split
    problem, _ = build_problem(train, firm="logistic", collective_fraction=0.3, direction="auto", seed=0)
    budgets = [10, 25, 50, 100]
    oracle = get_method("oracle", components=("relaxed", "convex", "heuristics"), polish_top=1,
                        max_evaluations=400, relaxed_params={"steps": 15, "max_evaluations": 400},
                        convex_params={"time_limit": 5.0, "max_rounds": 2})
    results = oracle.select_many(problem, budgets)
    for M, r in zip(budgets, results):
        value = problem.objective_of([r.flipped])[0]
        heur = _heuristic_values(problem, M)
        assert len(r.flipped) <= M
        assert value <= min(heur.values()) + 1e-12, (M, value, heur)
        for name, v in heur.items():
            assert r.info["components"][name]["objective"] == pytest.approx(v, abs=1e-12)
        assert r.lower_bound is None  # the logistic firm has no certified bound


def test_oracle_works_without_the_convex_component():
    problem = tiny_problem(1)
    r = get_method("oracle", relaxed_params={"steps": 10}, convex_params={"solver": "NOT-A-SOLVER"},
                   **NO_ENUMERATION, convex_firms=None).select(problem, 2)
    assert "oracle-convex" in r.info["errors"]
    assert "oracle-convex" not in r.info["components"]
    assert r.info["objective"] == pytest.approx(problem.objective_of([r.flipped])[0], abs=1e-12)


def test_oracle_enumerates_above_its_set_count_when_the_measured_cost_is_small():
    problem = tiny_problem(4)
    M = 2
    brute = get_method("brute-force").select(problem, M)
    measured = get_method("oracle", **FAST, enumerate_max_sets=1, enumerate_max_seconds=60).select(problem, M)
    assert measured.status == "optimal" and measured.bound_source == "enumeration"
    assert measured.objective == pytest.approx(brute.objective, abs=1e-12)
    estimate = measured.info["enumeration_estimate"]
    assert estimate["n_sets"] == brute.info["n_sets"] and 0 < estimate["estimated_s"] <= 60
    # An estimate above the limit (or a limit of 0) leaves enumeration to the count rule: the search runs.
    searched = get_method("oracle", **FAST, enumerate_max_sets=1, enumerate_max_seconds=1e-12).select(problem, M)
    assert searched.bound_source != "enumeration" and searched.info["enumeration_estimate"]["estimated_s"] > 1e-12
    off = get_method("oracle", **FAST, enumerate_max_sets=1, enumerate_max_seconds=0).select(problem, M)
    assert "enumeration_estimate" not in off.info and off.bound_source != "enumeration"
    with pytest.raises(FairflipError, match="enumerate_max_seconds"):
        get_method("oracle", enumerate_max_seconds=-1.0)


@pytest.mark.parametrize("ranker", ["auto", "hybrid", "influence", "surrogate"])
def test_every_ranker_gives_true_objectives_never_worse_than_the_heuristics(ranker):
    problem = tiny_problem(6, n_members=14)
    r = get_method("oracle", **SEARCH, ranker=ranker).select(problem, 3)
    assert r.objective == pytest.approx(problem.objective_of([r.flipped])[0], abs=1e-12)
    assert r.objective <= min(_heuristic_values(problem, 3).values()) + 1e-12


def test_unknown_ranker_is_refused():
    with pytest.raises(FairflipError, match="unknown ranker"):
        get_method("oracle", ranker="psychic")


def test_oracle_skips_the_convex_component_above_its_size_limit():
    problem = tiny_problem(3)
    limit = problem.n * len(problem.candidates) - 1
    r = get_method("oracle", relaxed_params={"steps": 10}, convex_max_entries=limit, **NO_ENUMERATION,
                   convex_firms=None).select(problem, 2)
    assert r.info["errors"]["oracle-convex"].startswith("skipped")
    assert "oracle-convex" not in r.info["components"]
    full = get_method("oracle", relaxed_params={"steps": 10}, convex_max_entries=limit + 1, **NO_ENUMERATION,
                      convex_firms=None).select(problem, 2)
    assert "oracle-convex" in full.info["components"]


def test_oracle_records_components_and_needs_a_linear_firm():
    problem = tiny_problem(2)
    r = get_method("oracle", **SEARCH).select(problem, 2)
    assert {"oracle-relaxed", "none"} <= set(r.info["components"])
    assert r.info["winner"].split(" + ")[0] in r.info["components"]
    assert "omniscient" in PortfolioOracle.__doc__.lower() and PortfolioOracle.omniscient
    problem.firm = SklearnFirm("sk-logistic", lambda: LogisticRegression())
    with pytest.raises(FairflipError, match="gradients"):
        get_method("oracle").select(problem, 2)
    with pytest.raises(FairflipError, match="component"):
        get_method("oracle", components=("magic",))
