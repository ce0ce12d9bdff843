"""A fairflip firm behind scikit-learn's estimator interface, so fairlearn can post-process or reduce it.

fairlearn's ThresholdOptimizer (``prefit=True``) reads the firm's scores through ``decision_function``, and
ExponentiatedGradient clones the estimator and refits it with ``sample_weight`` many times. Wrapping the firm
itself (not a look-alike sklearn model) keeps every firm-side method on exactly the firm's training pipeline.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from ..firms import Firm


class FirmClassifier(ClassifierMixin, BaseEstimator):
    """scikit-learn classifier whose ``fit`` is the firm's training pipeline.

    Args:
        firm: a :class:`~fairflip.firms.LinearFirm` or :class:`~fairflip.firms.SklearnFirm`.
    """

    def __init__(self, firm: Firm | None = None):
        self.firm = firm

    def fit(self, X, y, sample_weight=None) -> "FirmClassifier":
        """Train the firm on X (n, d) and labels y (n,) in {0, 1}, optionally weighted (n,)."""
        # A copy: fairlearn may hand over read-only arrays, which torch warns about.
        sw = None if sample_weight is None else np.array(sample_weight, dtype=np.float64)
        self.model_ = self.firm.fit(np.asarray(X, dtype=np.float64), np.asarray(y), sample_weight=sw)
        self.classes_ = np.array([0, 1])
        return self

    def decision_function(self, X) -> np.ndarray:
        """Scores of the rows of X (n, d), shape (n,); larger means more likely y = 1."""
        return self.model_.decision_function(np.asarray(X, dtype=np.float64))

    def predict(self, X) -> np.ndarray:
        """Hard labels of the rows of X (n, d), shape (n,) int64."""
        return self.model_.predict(np.asarray(X, dtype=np.float64))
