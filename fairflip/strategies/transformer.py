"""A scikit-learn-style relabeler: run a collective strategy inside one's own pipeline.

scikit-learn pipelines only transform X, so the relabeler is used beside one::

    relabel = CollectiveRelabeler("rb-label", budget=0.2, collective=0.3, direction="up")
    y_new = relabel.fit_transform(X, y, a=a)        # the collective's relabelled training labels
    clf = LogisticRegression().fit(X, y_new)          # the firm, unchanged
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from sklearn.base import BaseEstimator

from .._errors import FairflipError, check_binary
from ..collective import make_collective
from ..firms import make_firm
from ..methods import get_method
from ..problem import FlipProblem
from .base import resolve_budget


class CollectiveRelabeler(BaseEstimator):
    """Relabel a collective's training labels with a (non-omniscient) fairflip strategy.

    Args:
        method: a registered strategy that reads only the collective's view: ``rb-label`` (default), ``rb-prob``,
            ``rb-dist``, ``random``, ``massaging`` or ``none``.
        budget: the most flips, as a count (int) or a fraction of the candidates (float in [0, 1]).
        collective: share of the minority that joins, drawn with ``seed``, when ``fit`` gets no ``members``.
        direction: ``up`` (0 -> 1, the paper's default), ``down`` (1 -> 0) or ``auto``.
        known_majority: None (the collective knows every majority row) or m (it knows m sampled rows).
        seed: seed of the member and majority draws and of ``random``.
        method_params: keyword parameters of the strategy, e.g. ``{"k": 5, "scaling": "standard"}``. The
            distances of the kNN strategies are computed on X as given: pass standardised features, or
            ``{"scaling": "standard"}``.

    Attributes (after ``fit``):
        collective_: the :class:`~fairflip.collective.Collective` that acted.
        candidates_: shape (c,) candidate rows; scores_: shape (c,) their scores (None for ``none``).
        flipped_: shape (k,) flipped rows, k <= budget; budget_: the budget as a count.
        n_features_in_: number of feature columns.
    """

    def __init__(self, method: str = "rb-label", *, budget: int | float = 0.1, collective: float = 0.3,
                 direction: Literal["up", "down", "auto"] = "up", known_majority: int | None = None, seed: int = 0,
                 method_params: dict[str, Any] | None = None) -> None:
        self.method = method
        self.budget = budget
        self.collective = collective
        self.direction = direction
        self.known_majority = known_majority
        self.seed = seed
        self.method_params = method_params

    def fit(self, X, y, *, a, members=None) -> "CollectiveRelabeler":
        """Choose the flips from the collective's view of the data.

        Args:
            X: shape (n, d) numeric features without the group column (array or DataFrame).
            y: shape (n,) labels in {0, 1}.
            a: shape (n,) minority indicator (1 = minority).
            members: optional shape (n,) 0/1 mask of the collective (default: a ``collective`` share of the
                minority drawn with ``seed``).

        Returns:
            self.
        """
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise FairflipError(f"X must have shape (n, d), got {X.shape}")
        y = check_binary("y", y)
        a = check_binary("group indicator a", a)
        if not (len(X) == len(y) == len(a)):
            raise FairflipError(f"X has {len(X)} rows, y {len(y)}, a {len(a)}")
        strategy = get_method(self.method, seed=self.seed, **(self.method_params or {}))
        if strategy.omniscient:
            raise FairflipError(f"method '{self.method}' is omniscient; a collective cannot run it on its own data")
        col = make_collective(y, a, fraction=None if members is not None else self.collective, members=members,
                              direction=self.direction, known_majority=self.known_majority, seed=self.seed)
        # The firm is never trained here: heuristics read only the view; the problem just assembles it.
        problem = FlipProblem(X=X, y=y, a=a, collective=col, firm=make_firm("logistic"))
        self.budget_ = resolve_budget(self.budget, len(problem.candidates))
        result = strategy.select(problem, self.budget_)
        self.collective_ = col
        self.candidates_ = problem.candidates
        self.scores_ = result.scores
        self.flipped_ = result.flipped
        self.n_features_in_ = X.shape[1]
        self._y_fit = y
        return self

    def transform(self, X, y) -> np.ndarray:
        """The relabelled labels of the rows given to ``fit``.

        Args:
            X: shape (n, d), the features given to ``fit`` (only its shape is checked).
            y: shape (n,), the labels given to ``fit``.

        Returns:
            shape (n,) int64: y with the rows ``flipped_`` flipped.
        """
        if not hasattr(self, "flipped_"):
            raise FairflipError("CollectiveRelabeler must be fitted before transform")
        X = np.asarray(X)
        y = check_binary("y", y)
        if X.shape != (len(self._y_fit), self.n_features_in_) or not np.array_equal(y, self._y_fit):
            raise FairflipError("transform relabels the rows given to fit; X and y differ from them")
        out = y.copy()
        out[self.flipped_] = 1 - out[self.flipped_]
        return out

    def fit_transform(self, X, y, *, a, members=None) -> np.ndarray:
        """``fit(X, y, a=a, members=members)`` then ``transform(X, y)``; shape (n,) int64."""
        return self.fit(X, y, a=a, members=members).transform(X, y)
