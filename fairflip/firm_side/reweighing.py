"""Reweighing (Kamiran and Calders 2012): weight each (group, label) cell so group and label look independent.

Row i in cell (a, y) gets w(a, y) = P(a) P(y) / P(a, y), with empirical probabilities of the training rows.
Under these weights the joint distribution of (a, y) is the product of its (unchanged) marginals, and the weights
average to 1, so the firm's regularisation strength relative to its loss is unchanged.
"""

from __future__ import annotations

import numpy as np

from .._errors import FairflipError, check_binary
from ..firms import Firm


def reweighing_weights(y: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Kamiran-Calders weights of the training rows.

    Args:
        y: shape (n,) labels in {0, 1}.
        a: shape (n,) minority indicator in {0, 1}.

    Returns:
        shape (n,) float64 weights P(a_i) P(y_i) / P(a_i, y_i); their mean is 1.
    """
    y = check_binary("y", y)
    a = check_binary("group indicator a", a)
    if len(y) != len(a) or len(y) == 0:
        raise FairflipError(f"y and a must be non-empty and of equal length, got {len(y)} and {len(a)}")
    n = len(y)
    p_a = np.bincount(a, minlength=2) / n
    p_y = np.bincount(y, minlength=2) / n
    p_ay = np.bincount(2 * a + y, minlength=4).reshape(2, 2) / n
    # Every row's own cell is non-empty, so the division below never meets a zero.
    return p_a[a] * p_y[y] / p_ay[a, y]


def predict_reweighing(
    firm: Firm, X: np.ndarray, y: np.ndarray, a: np.ndarray, X_test: np.ndarray, a_test: np.ndarray, *, seed: int = 0
) -> np.ndarray:
    """Train ``firm`` on (X (n, d), y (n,)) with reweighing weights and predict X_test (m, d) -> (m,) int64.

    ``a_test`` and ``seed`` are unused (the firm needs neither); they keep the signature of every firm-side method.
    """
    model = firm.fit(X, y, sample_weight=reweighing_weights(y, a))
    return np.asarray(model.predict(X_test), dtype=np.int64)
