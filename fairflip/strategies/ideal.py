"""The paper's ideal erasure strategy, y -> argmax_y' P0(y' | x_{A<-0}), and how well a heuristic matches it.

The ideal strategy is omniscient about the causal model: it reads the counterfactual label probabilities
P0(y = 1 | x_{A<-0}) that only synthetic data carry (``FlipProblem.y_counterfactual_prob``). It is a reference to
compare real strategies with, not something a collective can run.
"""

from __future__ import annotations

import numpy as np

from .._errors import FairflipError
from ..methods import FlipMethod, FlipResult, register_method
from ..problem import FlipProblem
from .base import top_m


def counterfactual_target_prob(problem: FlipProblem) -> np.ndarray:
    """P0(target label | x_{A<-0}) of every candidate, shape (c,), in ``problem.candidates`` order.

    Raises FairflipError when the problem carries no counterfactual probabilities (real data).
    """
    if problem.y_counterfactual_prob is None:
        raise FairflipError("the ideal strategy needs the counterfactual label probabilities P0(y=1 | x_{A<-0}), "
                            "known only for data from a causal model (e.g. the synthetic datasets)")
    p1 = np.asarray(problem.y_counterfactual_prob, dtype=np.float64)[problem.candidates]
    return p1 if problem.collective.target_label == 1 else 1.0 - p1


@register_method("ideal")
class IdealErasure(FlipMethod):
    """The ideal strategy: a candidate flips when the label it would most likely carry as a majority member is the
    target label, i.e. P0(target | x_{A<-0}) > 1/2.

    With a budget M smaller than the number of such candidates, the M with the highest probability flip (ties by
    row order). It may flip *fewer* than M rows: a candidate whose counterfactual label is its own label keeps it,
    whatever the budget. Omniscient (reads the causal model), so ``omniscient = True``.

    Args:
        seed: unused (kept so that every method takes one).
    """

    omniscient = True

    def _select(self, problem: FlipProblem, budget: int) -> FlipResult:
        scores = counterfactual_target_prob(problem)
        # Candidates whose counterfactual argmax is their current label sort to the end and are cut below.
        order = top_m(scores, budget)
        chosen = order[scores[order] > 0.5]
        eligible = int((scores > 0.5).sum())
        return FlipResult(flipped=np.sort(problem.candidates[chosen]), scores=scores,
                          info={"n_eligible": eligible})


def precision_at_m(problem: FlipProblem, flipped: np.ndarray) -> float:
    """Share of a heuristic's flips that the ideal strategy also makes at the same budget.

    Args:
        problem: a flip problem carrying ``y_counterfactual_prob``.
        flipped: shape (M,) the heuristic's flipped rows (candidates, M >= 1).

    Returns:
        |F ∩ I| / M with I the ideal strategy's flips at budget M, a float in [0, 1]. When fewer than M candidates
        deserve the target label, I is smaller than M and the precision cannot reach 1.
    """
    flipped = problem.check_flips(flipped)
    if len(flipped) == 0:
        raise FairflipError("precision at M needs at least one flip")
    ideal = IdealErasure().select(problem, len(flipped)).flipped
    return float(np.isin(flipped, ideal).mean())
