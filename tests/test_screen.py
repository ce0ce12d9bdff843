"""The local search's first-order screen (fairflip.solvers.influence.influence_screen), checked against exact
retraining: it must never leave out a move that improves, and a search that uses it must follow the unscreened
search's path while retraining fewer moves."""

from __future__ import annotations

import numpy as np
import pytest

from fairflip._errors import FairflipError
from fairflip.datasets import make_causal, stratified_split
from fairflip.firms import make_firm
from fairflip.methods import get_method
from fairflip.problem import build_problem
from fairflip.solvers.exact import IMPROVE_TOL
from fairflip.solvers.influence import influence_screen
from fairflip.solvers.search import _moves, ranked_local_search
from test_soundness import random_instance


def _neighbourhood(problem, current, budget):
    cands = problem.candidates
    inside = np.isin(cands, current)
    return _moves(current, cands, np.flatnonzero(inside), np.flatnonzero(~inside), None, budget, 64, 16)


def test_screen_keeps_every_improving_move_on_varied_tiny_instances():
    """Ridge and logistic, the four objectives, with and without the group feature, sample weights and a
    validation split (the soundness suite's instances): every add, drop and swap from random sets is retrained
    exactly, and no move the screen leaves out improves on the current objective."""
    moves_seen = screened = 0
    for seed in range(96):
        problem, budget, _ = random_instance(seed)
        screen = influence_screen(problem)
        assert screen is not None
        rng = np.random.default_rng(seed)
        cands = problem.candidates
        for _ in range(2):
            k = int(rng.integers(0, min(budget, len(cands)) + 1))
            current = np.sort(rng.choice(cands, size=k, replace=False))
            value = float(problem.objective_of([current])[0])
            moves, _, toggles = _neighbourhood(problem, current, budget + 1)
            keep = screen(current, toggles, value)
            assert keep.shape == (len(moves),) and keep.dtype == bool
            exact = problem.objective_of(moves)
            missed = ~keep & (exact < value - IMPROVE_TOL)
            assert not missed.any(), (seed, current, np.flatnonzero(missed))
            moves_seen += len(moves)
            screened += int((~keep).sum())
    # The screen must do something: it left out a fair share of the moves.
    assert screened > 0.2 * moves_seen


def _medium_problem(seed: int = 0):
    data = make_causal(900, d=3, seed=seed)
    train, _ = stratified_split(data, test_size=0.3, seed=seed)
    problem, _ = build_problem(train, firm="logistic", collective_fraction=0.3, direction="auto", seed=seed)
    return problem


def test_screened_search_follows_the_unscreened_path_with_fewer_retrainings():
    problem = _medium_problem()
    rng = np.random.default_rng(1)
    total_plain = total_screened = 0
    for budget in (3, 8):
        start = np.sort(rng.choice(problem.candidates, size=budget, replace=False))
        plain = ranked_local_search(problem, start, budget)
        screened = ranked_local_search(problem, start, budget, screen=influence_screen(problem))
        np.testing.assert_array_equal(plain.flipped, screened.flipped)
        assert screened.objective == pytest.approx(plain.objective, abs=1e-12)
        assert plain.converged and screened.converged and plain.screened == 0
        assert screened.evaluations + screened.screened >= plain.evaluations  # every move either scored or screened
        total_plain += plain.evaluations
        total_screened += screened.evaluations
    assert total_screened < total_plain


def test_portfolio_screen_option_and_plugged_screen():
    problem = _medium_problem(2)
    kwargs = dict(enumerate_max_sets=0, enumerate_max_seconds=0)
    plain = get_method("oracle", screen=False, **kwargs).select(problem, 6)
    screened = get_method("oracle", **kwargs).select(problem, 6)
    assert screened.objective == pytest.approx(plain.objective, abs=1e-12)
    counts = [c.get("local_search_screened") for c in screened.info["components"].values()]
    assert any(c for c in counts if c is not None)
    # A plugged screen: a factory problem -> screen; this one keeps every move, so nothing is screened.
    built = []

    def keep_all(p):
        built.append(p)
        return lambda current, toggles, value: np.ones(len(toggles), dtype=bool)

    plugged = get_method("oracle", screen=keep_all, **kwargs).select(problem, 6)
    assert built == [problem]
    assert plugged.objective == pytest.approx(plain.objective, abs=1e-12)
    assert all(not c.get("local_search_screened") for c in plugged.info["components"].values())
    with pytest.raises(FairflipError, match="screen must be"):
        get_method("oracle", screen="yes")


def test_screen_does_not_apply_without_a_local_model():
    problem = _medium_problem()
    problem.firm = make_firm("gbdt")  # no local model: no screen, and the portfolio's search retrains every move
    assert influence_screen(problem) is None


def test_screen_benchmark_audit_on_a_compas_subsample():
    """benchmarks/bench_screen.py on a small COMPAS subsample: its audit retrains every screened move."""
    from benchmarks.bench_screen import run

    (record,) = run(["compas"], [0], budgets=(3, 8), max_rows=700)
    assert record["screened"] > 0 and record["misses"] == 0
    assert record["same"]
    assert record["search_retrained_screened"] < record["search_retrained_plain"]
