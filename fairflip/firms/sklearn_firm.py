"""Any scikit-learn classifier as a firm, for model-agnostic evaluation of flips (no gradients)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from sklearn.base import clone

from .._errors import check_binary


@dataclass(frozen=True)
class SklearnModel:
    """A fitted scikit-learn classifier behind the firm interface."""

    estimator: Any

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Score of each row of X (shape (n, d)): P(y=1|x) - 0.5, shape (n,)."""
        return self.estimator.predict_proba(X)[:, 1] - 0.5

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted labels, shape (n,) int64."""
        return np.asarray(self.estimator.predict(X)).astype(np.int64)


@dataclass(frozen=True)
class SklearnFirm:
    """A firm whose training pipeline is a scikit-learn estimator (cloned afresh for every fit).

    Args:
        name: the firm's name (``mlp``, ``gbdt`` or any label).
        make_estimator: zero-argument factory returning an unfitted classifier with fit/predict/predict_proba.
    """

    name: str
    make_estimator: Callable[[], Any]

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> SklearnModel:
        """Fit a fresh estimator on X (n, d) and y (n,) in {0, 1}; returns the fitted model."""
        y = check_binary("y", y)
        est = clone(self.make_estimator())
        if sample_weight is None:
            est.fit(X, y)
        else:
            est.fit(X, y, sample_weight=sample_weight)
        return SklearnModel(est)
