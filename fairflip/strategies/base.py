"""Ranking strategies: score every candidate from the collective's view, flip the top M."""

from __future__ import annotations

from abc import abstractmethod

import numpy as np

from .._errors import FairflipError, check_budget
from ..methods import FlipMethod, FlipResult, SolveControl
from ..problem import CollectiveView, FlipProblem


def resolve_budget(budget: int | float, n_candidates: int) -> int:
    """A budget given as a count (int >= 0) or as a fraction of the candidates (float in [0, 1]) -> a count.

    A fraction rounds to the nearest count (half to even), so 0.5 of 5 candidates is 2.
    """
    if isinstance(budget, (float, np.floating)):
        if not 0.0 <= budget <= 1.0:
            raise FairflipError(f"a budget given as a fraction of the candidates must lie in [0, 1], got {budget}")
        return int(round(float(budget) * n_candidates))
    return check_budget(budget)


def top_m(scores: np.ndarray, budget: int) -> np.ndarray:
    """Positions of the ``budget`` highest scores, ties broken by position (stable), shape (min(M, c),)."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    return order[:budget]


class ScoringStrategy(FlipMethod):
    """A heuristic that scores candidates (higher = more likely to deserve the target label) from the view only.

    It flips exactly min(M, number of candidates) rows: the top of its ranking.
    """

    omniscient = False

    def _select_many(self, problem: FlipProblem, budgets: list[int], control: SolveControl) -> list[FlipResult]:
        # One ranking answers every budget: the flips for budget M are its top-M prefix.
        view = problem.view()
        scores = np.asarray(self.score(view), dtype=np.float64)
        if scores.shape != view.candidate_rows.shape:
            raise RuntimeError(f"{self.name} returned {scores.shape} scores for {view.candidate_rows.shape} candidates")
        order = top_m(scores, max(budgets))
        return [FlipResult(flipped=np.sort(view.candidate_rows[order[:M]]), scores=scores, status="ranked")
                for M in budgets]

    @abstractmethod
    def score(self, view: CollectiveView) -> np.ndarray:
        """Score of each candidate, shape (c,), in ``view.candidate_rows`` order."""
