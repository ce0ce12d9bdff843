"""fairlearn's two equalized-odds methods applied to a fairflip firm: ThresholdOptimizer and ExponentiatedGradient.

Both are randomised classifiers; their predictions are drawn with ``random_state=seed`` so a run is reproducible.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import numpy as np
from fairlearn.postprocessing import ThresholdOptimizer
from fairlearn.reductions import EqualizedOdds, ExponentiatedGradient

from ..firms import Firm
from ._estimator import FirmClassifier


@contextmanager
def _quiet_fairlearn_internals():
    # fairlearn's reductions grow and retype pandas Series in ways recent pandas deprecates; the warnings are
    # about fairlearn's own code, repeat on every iteration and tell our users nothing they can act on.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Setting a value on a Series via .at")
        warnings.filterwarnings("ignore", message="Setting an item of incompatible dtype")
        yield


def predict_threshold_optimizer(
    firm: Firm, X: np.ndarray, y: np.ndarray, a: np.ndarray, X_test: np.ndarray, a_test: np.ndarray, *, seed: int = 0
) -> np.ndarray:
    """Post-process the firm (trained on X (n, d), y (n,)) with group-specific randomised thresholds.

    The thresholds equalise TPR and FPR across groups on the training rows (fairlearn's
    ``ThresholdOptimizer(constraints="equalized_odds")`` over the prefit firm's decision scores).

    Returns:
        shape (m,) int64 predictions on X_test (m, d) with groups a_test (m,).
    """
    fitted = FirmClassifier(firm).fit(X, y)
    post = ThresholdOptimizer(
        estimator=fitted, constraints="equalized_odds", prefit=True, predict_method="decision_function"
    )
    post.fit(X, y, sensitive_features=a)
    return np.asarray(post.predict(X_test, sensitive_features=a_test, random_state=seed), dtype=np.int64)


def predict_exponentiated_gradient(
    firm: Firm, X: np.ndarray, y: np.ndarray, a: np.ndarray, X_test: np.ndarray, a_test: np.ndarray, *, seed: int = 0
) -> np.ndarray:
    """Reduce equalized-odds-constrained training to a sequence of reweighted fits of the firm.

    fairlearn's ``ExponentiatedGradient(firm, EqualizedOdds())`` with its defaults (eps = 0.01, 50 iterations);
    the result is a randomised mixture of firms, queried with ``random_state=seed``. ``a_test`` is unused: the
    mixture predicts from the features alone (which include the group column when the firm sees it).

    Returns:
        shape (m,) int64 predictions on X_test (m, d).
    """
    reduction = ExponentiatedGradient(FirmClassifier(firm), EqualizedOdds())
    with _quiet_fairlearn_internals():
        reduction.fit(X, y, sensitive_features=a)
    return np.asarray(reduction.predict(X_test, random_state=seed), dtype=np.int64)
