"""A fairflip firm behind scikit-learn's estimator interface, so fairlearn can post-process or reduce it.

fairlearn's ThresholdOptimizer (``prefit=True``) reads the firm's scores through ``decision_function``, and
ExponentiatedGradient clones the estimator and refits it with ``sample_weight`` many times. Wrapping the firm
itself (not a look-alike sklearn model) keeps every firm-side method on exactly the firm's training pipeline.

:class:`FirmClassifier` is a binary scikit-learn classifier (it passes scikit-learn's estimator checks): any two
label values are mapped to the firm's 0/1 (``classes_[1]`` is the firm's label 1) and back; inputs are validated
with scikit-learn's ``validate_data`` (dense, finite, numeric); bad input raises one :class:`FairflipError` (a
``ValueError``) naming the argument.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit, log_expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from .._errors import FairflipError
from ..firms import Firm, LinearFirm, SklearnFirm, make_firm


def _resolve_firm(firm: Any) -> Any:
    """The firm object of the ``firm`` parameter: a registered name is built with :func:`make_firm`."""
    if isinstance(firm, str):
        return make_firm(firm)
    if firm is None or not callable(getattr(firm, "fit", None)):
        raise FairflipError(f"firm must be a registered firm name (e.g. 'logistic') or a firm object with "
                            f"fit(X, y, sample_weight), got {firm!r}")
    return firm


def _check_weights(sample_weight: Any, n: int) -> np.ndarray:
    """sample_weight as a fresh float64 array of shape (n,): finite, non-negative, not all zero."""
    try:
        sw = np.array(sample_weight, dtype=np.float64)  # a copy: the caller's weights are never written to
    except (TypeError, ValueError) as err:
        raise FairflipError(f"sample_weight must be numeric, shape (n,): {err}") from None
    if sw.ndim == 0:
        sw = np.full(n, float(sw))
    if sw.shape != (n,):
        raise FairflipError(f"sample_weight must have shape ({n},) (one weight per row of X), got {sw.shape}")
    if not np.isfinite(sw).all() or (sw < 0).any():
        raise FairflipError("sample_weight must be finite and non-negative")
    if not (sw > 0).any():
        raise FairflipError("sample_weight is zero for every row: there is nothing to train on")
    return sw


def _class_proba(model: Any, X: np.ndarray, *, log: bool) -> np.ndarray:
    """(Log) probabilities of labels 0 and 1 of a fitted firm with probabilities, shape (m, 2)."""
    if hasattr(model, "estimator"):  # a scikit-learn firm, trained on the 0/1 encoding
        est = model.estimator
        if not log:
            out = est.predict_proba(X)
        elif hasattr(est, "predict_log_proba"):
            out = est.predict_log_proba(X)
        else:  # e.g. HistGradientBoostingClassifier has predict_proba only
            with np.errstate(divide="ignore"):
                out = np.log(est.predict_proba(X))
        return out[:, [list(est.classes_).index(0), list(est.classes_).index(1)]]
    # The logistic firm: P(y = 1 | x) = expit(f), computed without overflow for large scores.
    f = np.asarray(model.decision_function(X), dtype=np.float64)
    both = np.column_stack([-f, f])
    return log_expit(both) if log else expit(both)


def _has_proba(self: "FirmClassifier") -> bool:
    """available_if check: the firm gives probabilities (the logistic firm and scikit-learn firms do)."""
    model = getattr(self, "model_", None)
    if model is not None:
        if hasattr(model, "estimator"):
            return hasattr(model.estimator, "predict_proba")
        return getattr(model, "loss", None) == "logistic"
    try:
        firm = _resolve_firm(self.firm)
    except FairflipError:
        return False
    if isinstance(firm, LinearFirm):
        return firm.loss == "logistic"
    return isinstance(firm, SklearnFirm)


class FirmClassifier(ClassifierMixin, BaseEstimator):
    """scikit-learn binary classifier whose ``fit`` is the firm's training pipeline.

    Args:
        firm: a registered firm name for :func:`fairflip.firms.make_firm` (default ``"logistic"``, the paper's
            firm) or a firm object, e.g. a :class:`~fairflip.firms.LinearFirm` or
            :class:`~fairflip.firms.SklearnFirm` (used unchanged; ``fit`` never modifies it).

    Attributes (after ``fit``):
        model_: the fitted firm (its ``decision_function`` and ``predict`` work on the 0/1 encoding).
        classes_: shape (2,) the sorted label values seen in ``fit``; ``classes_[1]`` is the firm's label 1.
        n_features_in_: number of features d seen in ``fit``.
        feature_names_in_: shape (d,) column names, when X was a DataFrame with string column names.

    Binary labels only (any two values, e.g. ``{-1, 1}`` or ``{"no", "yes"}``); dense, finite numeric X.
    """

    def __init__(self, firm: Firm | str = "logistic"):
        self.firm = firm

    def fit(self, X, y, sample_weight=None) -> "FirmClassifier":
        """Train the firm on X and binary labels y, optionally weighted.

        Args:
            X: shape (n, d) numeric features (array-like or DataFrame), finite, dense.
            y: shape (n,) labels with exactly two distinct values.
            sample_weight: shape (n,) non-negative weights (not all zero), a scalar, or None (all ones).

        Returns:
            self.
        """
        firm = _resolve_firm(self.firm)
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        y_type = type_of_target(y, input_name="y")
        if y_type != "binary":
            raise FairflipError(f"Only binary classification is supported: y must hold two classes, but the type "
                                f"of the target is {y_type} ({len(np.unique(y))} classes)")
        classes = np.unique(y)
        if len(classes) < 2:
            raise FairflipError(f"y has only one class ({classes[0]!r}): the firm needs two classes to train")
        y01 = (y == classes[1]).astype(np.int64)
        sw = None if sample_weight is None else _check_weights(sample_weight, len(y01))
        # X is a fresh float64 array from validate_data when the input was read-only or of another dtype;
        # fairlearn may hand over read-only arrays, which torch warns about.
        if not X.flags.writeable:
            X = X.copy()
        self.model_ = firm.fit(X, y01, sample_weight=sw)
        self.classes_ = classes
        return self

    def _validated(self, X) -> np.ndarray:
        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return X.copy() if not X.flags.writeable else X

    def decision_function(self, X) -> np.ndarray:
        """Scores of the rows of X (m, d), shape (m,): positive means ``classes_[1]``.

        The firm's score minus its ``score_threshold`` (0 for the default threshold), so the sign agrees with
        :meth:`predict`; larger means more likely ``classes_[1]``.
        """
        X = self._validated(X)
        scores = np.asarray(self.model_.decision_function(X), dtype=np.float64)
        return scores - float(getattr(self.model_, "score_threshold", 0.0))

    def predict(self, X) -> np.ndarray:
        """Labels of the rows of X (m, d), shape (m,), values from ``classes_`` (the firm's own prediction)."""
        X = self._validated(X)
        return self.classes_[np.asarray(self.model_.predict(X), dtype=np.int64)]

    @available_if(_has_proba)
    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities of the rows of X (m, d), shape (m, 2), columns in ``classes_`` order.

        Only for firms with probabilities (the logistic firm, scikit-learn firms). A firm with a decision
        threshold other than 0.5 predicts ``classes_[1]`` iff the second column exceeds that threshold.
        """
        X = self._validated(X)
        return _class_proba(self.model_, X, log=False)

    @available_if(_has_proba)
    def predict_log_proba(self, X) -> np.ndarray:
        """Logarithm of :meth:`predict_proba`, shape (m, 2)."""
        X = self._validated(X)
        return _class_proba(self.model_, X, log=True)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False  # fairflip's firms are binary classifiers
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = False
        return tags


__all__ = ["FirmClassifier"]
