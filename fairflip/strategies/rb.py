"""The paper's reference-based (RB) strategies: score each candidate by what the known majority rows suggest.

All three read only the collective's view (:class:`~fairflip.problem.CollectiveView`): its members' rows and the
majority rows it knows, as the firm's prepared features without the group column (numeric columns standardised
with the training mean and population standard deviation, categoricals one-hot). A score estimates how likely the
candidate's label would be the target label had it belonged to the majority; the top M flip (ties by row order).

- ``rb-prob``: a classifier fitted on the known majority rows only; score = its probability of the target label.
- ``rb-label``: share of target-label rows among the k nearest known majority rows.
- ``rb-dist``: minus the mean distance to the k nearest known majority rows that carry the target label.

Nearest neighbours come from :class:`sklearn.neighbors.NearestNeighbors` (a ball/kd tree, or brute force in
memory-bounded chunks for high-dimensional data), so no n x n distance matrix is ever formed.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from sklearn.base import ClassifierMixin, clone, is_classifier
from sklearn.neighbors import NearestNeighbors

from .._errors import FairflipError
from ..firms import LinearFirm
from ..methods import register_method
from ..problem import CollectiveView
from .base import ScoringStrategy

Scaling = Literal["as-is", "standard"]
SCALINGS = ("as-is", "standard")
Algorithm = Literal["auto", "ball_tree", "kd_tree", "brute"]
ALGORITHMS = ("auto", "ball_tree", "kd_tree", "brute")


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise FairflipError(f"k must be a positive integer, got {k!r}")
    return int(k)


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise FairflipError(f"{name} must be one of {', '.join(repr(c) for c in choices)}, got {value!r}")
    return value


def reference_features(view: CollectiveView, scaling: Scaling) -> tuple[np.ndarray, np.ndarray]:
    """The candidates' and the known majority rows' features in the space the RB strategies compare them in.

    Args:
        view: the collective's view (c candidates, k known majority rows, d' features).
        scaling: ``"as-is"`` keeps the view's features (the firm's prepared, standardised features);
            ``"standard"`` re-standardises every column with the mean and population standard deviation of the
            rows the collective sees (members and known majority rows; a constant column keeps scale 1), for
            features that were not standardised beforehand (e.g. raw arrays given to the relabeler).

    Returns:
        (X_candidates (c, d'), X_majority (k, d')), float64.
    """
    Xc = np.asarray(view.X_candidates, dtype=np.float64)
    Xm = np.asarray(view.X_majority, dtype=np.float64)
    if _check_choice("scaling", scaling, SCALINGS) == "as-is":
        return Xc, Xm
    seen = np.vstack([np.asarray(view.X_members, dtype=np.float64), Xm])
    mean, std = seen.mean(axis=0), seen.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return (Xc - mean) / std, (Xm - mean) / std


def check_classifier(model: ClassifierMixin | None) -> ClassifierMixin | None:
    """Return ``model`` after checking it is None or a scikit-learn classifier with ``predict_proba``."""
    if model is not None and not (hasattr(model, "fit") and hasattr(model, "predict_proba") and is_classifier(model)):
        raise FairflipError(f"model must be a scikit-learn classifier with predict_proba, got {model!r}")
    return model


def target_probability(model: ClassifierMixin | None, X_fit: np.ndarray, y_fit: np.ndarray, X_query: np.ndarray,
                       target_label: int, *, what: str) -> np.ndarray:
    """Fit a probabilistic classifier and return its probability of ``target_label`` on the query rows.

    Args:
        model: an unfitted scikit-learn classifier (cloned), or None for L2 logistic regression with C = 1
            (fairflip's :class:`~fairflip.firms.LinearFirm`, the same model as scikit-learn's
            ``LogisticRegression(C=1.0)`` solved exactly by Newton's method).
        X_fit: shape (r, d) training rows; y_fit: shape (r,) their labels, both labels present.
        X_query: shape (c, d) rows to score.
        target_label: 0 or 1.
        what: the caller's name, for the error message.

    Returns:
        shape (c,) probabilities in [0, 1].
    """
    if len(np.unique(y_fit)) < 2:
        raise FairflipError(f"{what} cannot fit its classifier: all {len(y_fit)} rows it may use carry one label")
    if model is None:
        p1 = LinearFirm("logistic", C=1.0).fit(X_fit, y_fit).predict_proba(X_query)
        return p1 if target_label == 1 else 1.0 - p1
    fitted = clone(model).fit(X_fit, y_fit)
    return fitted.predict_proba(X_query)[:, list(fitted.classes_).index(target_label)]


def _require_majority(view: CollectiveView, method: str) -> None:
    if len(view.majority_rows) == 0:
        raise FairflipError(f"{method} needs at least one known majority row; the collective knows none")


@register_method("rb-prob")
class RBProb(ScoringStrategy):
    """RB-prob: a probabilistic classifier trained on the known majority rows only scores each candidate.

    Args:
        model: an unfitted scikit-learn classifier with ``predict_proba`` (cloned before fitting); default None:
            L2 logistic regression with C = 1, the paper's logistic f (see :func:`target_probability`).
        scaling: ``"as-is"`` (default: the firm's prepared features) or ``"standard"``
            (see :func:`reference_features`).
        seed: unused by the default model (kept so that every strategy takes one).

    The score of a candidate is the model's probability of the target label, shape (c,).
    """

    def __init__(self, model: ClassifierMixin | None = None, *, scaling: Scaling = "as-is", seed: int = 0) -> None:
        super().__init__(seed=seed)
        self.model = check_classifier(model)
        self.scaling = _check_choice("scaling", scaling, SCALINGS)

    def score(self, view: CollectiveView) -> np.ndarray:
        _require_majority(view, "rb-prob")
        Xc, Xm = reference_features(view, self.scaling)
        return target_probability(self.model, Xm, view.y_majority, Xc, view.target_label, what="rb-prob")


class _NeighbourStrategy(ScoringStrategy):
    """Shared parameters of the kNN strategies (k, scaling, neighbour search)."""

    def __init__(self, k: int = 10, *, scaling: Scaling = "as-is", algorithm: Algorithm = "auto",
                 n_jobs: int | None = None, seed: int = 0) -> None:
        super().__init__(seed=seed)
        self.k = _check_k(k)
        self.scaling = _check_choice("scaling", scaling, SCALINGS)
        self.algorithm = _check_choice("algorithm", algorithm, ALGORITHMS)
        self.n_jobs = n_jobs

    def _neighbours(self, reference: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distances and positions of the min(k, len(reference)) nearest reference rows of each query row.

        Shapes: reference (r, d'), queries (c, d') -> (c, k'), (c, k'), nearest first.
        """
        k = min(self.k, len(reference))
        nn = NearestNeighbors(n_neighbors=k, algorithm=self.algorithm, n_jobs=self.n_jobs).fit(reference)
        return nn.kneighbors(queries)


@register_method("rb-label")
class RBLabel(_NeighbourStrategy):
    """RB-label: share of target-label rows among a candidate's k nearest known majority rows (Euclidean).

    Args:
        k: number of neighbours (10 by default), capped at the number of known majority rows.
        scaling: ``"as-is"`` (default) or ``"standard"`` (see :func:`reference_features`).
        algorithm: scikit-learn's neighbour search (``"auto"``: a tree in low dimension, chunked brute force in
            high dimension; never a full distance matrix).
        n_jobs: parallel jobs of the neighbour queries (None: one).
        seed: unused (kept so that every strategy takes one).

    The score of a candidate is in [0, 1], shape (c,).
    """

    def score(self, view: CollectiveView) -> np.ndarray:
        _require_majority(view, "rb-label")
        Xc, Xm = reference_features(view, self.scaling)
        _, idx = self._neighbours(Xm, Xc)
        return (np.asarray(view.y_majority)[idx] == view.target_label).mean(axis=1)


@register_method("rb-dist")
class RBDist(_NeighbourStrategy):
    """RB-dist: minus the mean Euclidean distance to a candidate's k nearest known majority rows with the target
    label.

    Args:
        k: number of neighbours (10 by default), capped at the number of known majority rows with the target label.
        scaling: ``"as-is"`` (default) or ``"standard"`` (see :func:`reference_features`).
        algorithm: scikit-learn's neighbour search (see :class:`RBLabel`).
        n_jobs: parallel jobs of the neighbour queries (None: one).
        seed: unused (kept so that every strategy takes one).

    The score of a candidate is <= 0 (closer to the target-label majority = higher), shape (c,).
    """

    def score(self, view: CollectiveView) -> np.ndarray:
        _require_majority(view, "rb-dist")
        Xc, Xm = reference_features(view, self.scaling)
        Xt = Xm[np.asarray(view.y_majority) == view.target_label]
        if len(Xt) == 0:
            raise FairflipError(f"rb-dist needs known majority rows with the target label {view.target_label}; "
                                "the collective knows none")
        dist, _ = self._neighbours(Xt, Xc)
        return -dist.mean(axis=1)
