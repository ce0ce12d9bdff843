"""Massaging (Kamiran and Calders 2012) restricted to what a minority collective may do.

Classic massaging ranks the whole training set with a classifier and relabels the deprived group's negatives
most likely to be positive (promotion) and the favoured group's positives least likely to be positive (demotion).
A minority collective can only relabel its own rows and only sees its own and the known majority rows, so here:
a ranker is trained on every row the collective sees (members and known majority rows) with the group indicator
as a feature, and the candidates the ranker finds most likely to carry the target label flip (promotion when
flipping 0 -> 1, demotion when flipping 1 -> 0). There is no demotion of majority rows.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin

from ..methods import register_method
from ..problem import CollectiveView
from .base import ScoringStrategy
from .rb import check_classifier, target_probability


@register_method("massaging")
class Massaging(ScoringStrategy):
    """The collective's version of massaging: rank candidates by a ranker trained on all rows it sees.

    Args:
        model: unfitted scikit-learn classifier with ``predict_proba`` (cloned); default None: L2 logistic
            regression with C = 1 (see :func:`fairflip.strategies.rb.target_probability`).
        seed: unused by the default model (kept so that every strategy takes one).

    The ranker's features are the view's features plus a last column holding the group indicator (1 for members,
    0 for majority rows); the score of a candidate is its probability of the target label, shape (c,).
    """

    def __init__(self, model: ClassifierMixin | None = None, *, seed: int = 0) -> None:
        super().__init__(seed=seed)
        self.model = check_classifier(model)

    def score(self, view: CollectiveView) -> np.ndarray:
        X = np.vstack([
            np.column_stack([view.X_members, np.ones(len(view.member_rows))]),
            np.column_stack([view.X_majority, np.zeros(len(view.majority_rows))]),
        ])
        y = np.concatenate([view.y_members, view.y_majority])
        Xc = np.column_stack([view.X_candidates, np.ones(len(view.candidate_rows))])
        return target_probability(self.model, X, y, Xc, view.target_label, what="massaging")
