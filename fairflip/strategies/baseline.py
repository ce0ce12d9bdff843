"""Baselines every strategy is compared against: no flips, and uniformly random flips."""

from __future__ import annotations

import numpy as np

from ..methods import FlipMethod, FlipResult, register_method
from ..problem import CollectiveView, FlipProblem
from .base import ScoringStrategy


@register_method("none")
class NoFlips(FlipMethod):
    """Flip nothing: the firm trained on the data as it is."""

    def _select(self, problem: FlipProblem, budget: int) -> FlipResult:
        return FlipResult(flipped=np.zeros(0, dtype=np.int64))


@register_method("random")
class RandomFlips(ScoringStrategy):
    """M candidates chosen uniformly at random (seeded): the baseline every strategy must beat.

    Args:
        seed: seed of the draw; the same seed, data and budget always give the same flips, and the flips for a
            smaller budget are a prefix of those for a larger one.
    """

    def score(self, view: CollectiveView) -> np.ndarray:
        return np.random.default_rng(self.seed).random(len(view.candidate_rows))
