"""Collective action inside a scikit-learn pipeline: a meta-estimator that relabels, then fits the firm's model.

:class:`CollectiveActionClassifier` wraps the firm's (unchanged) estimator. ``fit(X, y, *, sensitive_features)``
lets a minority collective relabel some of its own rows with a fairflip method and fits a clone of the estimator
on the relabeled labels; prediction delegates to that clone. It is a scikit-learn classifier, so it composes with
``Pipeline``, ``clone``, ``GridSearchCV`` and fairlearn's metrics::

    import sklearn
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from fairflip.pipeline import CollectiveActionClassifier

    sklearn.set_config(enable_metadata_routing=True)
    clf = CollectiveActionClassifier(LogisticRegression(), method="rb-label", budget=0.2, seed=0)
    pipe = make_pipeline(StandardScaler(), clf.set_fit_request(sensitive_features=True))
    search = GridSearchCV(pipe, {"collectiveactionclassifier__budget": [0, 10, 20]})
    search.fit(X, y, sensitive_features=a)        # a: 1 marks the minority

Without metadata routing, pass the group to the step by name (``pipe.fit(X, y,
collectiveactionclassifier__sensitive_features=a)``), or let the estimator read it from a column of X
(``sensitive_feature="race", minority="African-American"``; the column is dropped before the inner estimator
unless ``drop_sensitive=False``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.utils.metadata_routing import MetadataRouter, MethodMapping, _routing_enabled, process_routing
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data

from ._errors import FairflipError
from .firms import Firm
from .strategies.transformer import MinorityRule, RelabelParams, as_table, split_sensitive


def _inner_has(attr: str):
    """available_if check: the fitted inner estimator (or, before fit, the unfitted one) has ``attr``."""

    def check(self) -> bool:
        inner = getattr(self, "estimator_", None)
        if inner is None:
            inner = self._inner_estimator()
        getattr(inner, attr)
        return True

    return check


class CollectiveActionClassifier(RelabelParams, MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """The firm's classifier trained after a minority collective relabeled some of its own training labels.

    Args:
        estimator: the firm's classifier, used unchanged (cloned at each fit); default
            ``LogisticRegression()``.
        method: any registered fairflip method name (:func:`fairflip.methods.available_methods`), built as
            ``get_method(method, seed=seed, **method_params)``. Heuristics (``rb-label``, the default,
            ``rb-prob``, ``rb-dist``, ``random``, ``massaging``, ``none``) read only the collective's view;
            omniscient methods (the oracles) optimise ``objective`` for the fairflip firm ``firm``, which
            stands in for ``estimator`` (they agree only when it is the same model, e.g. ``"logistic"`` and
            ``LogisticRegression()`` with the same C).
        budget: the most flips, a count (int) or a fraction of the candidates (float in [0, 1]).
        collective: share of the minority that joins, drawn with ``seed``, unless ``members`` go to ``fit``.
        direction: ``up`` (``classes_[0] -> classes_[1]``), ``down`` or ``auto`` (default: moves the minority's
            rate of ``classes_[1]`` towards the majority's).
        known_majority: None (the collective knows every majority row) or m (m sampled majority rows).
        sensitive_feature: None (the group comes to ``fit`` as ``sensitive_features``) or the column of X (a
            DataFrame's label, or a position) that holds it.
        minority: which value of the sensitive feature is the minority: a value (1 by default), ``"rarer"``
            or a callable mapping the column, shape (n,), to a bool mask.
        drop_sensitive: with ``sensitive_feature``, whether the inner estimator gets X without that column
            (default True; the strategies never read it).
        firm: fairflip firm (name or object) that omniscient methods optimise for; ignored by heuristics.
        objective: fairness objective of omniscient methods (``eqod``, ``eqod-worst``, ``dp``, ``eqopp``).
        seed: seed of the collective's draws and of the method.
        method_params: keyword parameters of the method, e.g. ``{"k": 5}``.
        time_limit: seconds after which an oracle returns its incumbent (None: no limit).

    Attributes (after ``fit``):
        estimator_: the fitted clone of ``estimator``.
        classes_: shape (2,) label values; ``classes_[1]`` is fairflip's label 1.
        flipped_: shape (k,) sorted rows of the training X whose label was flipped, k <= ``budget_``.
        y_relabeled_: shape (n,) the labels ``estimator_`` was fitted on.
        collective_, candidates_ (shape (c,)), scores_ (shape (c,) or None), budget_, flip_result_ (the
        method's :class:`~fairflip.methods.FlipResult`), n_features_in_, feature_names_in_ (string columns).
    """

    def __init__(self, estimator: Any = None, *, method: str = "rb-label", budget: int | float = 0.1,
                 collective: float = 0.3, direction: str = "auto", known_majority: int | None = None,
                 sensitive_feature: str | int | None = None, minority: MinorityRule = 1,
                 drop_sensitive: bool = True, firm: str | Firm = "logistic", objective: str = "eqod",
                 seed: int = 0, method_params: dict[str, Any] | None = None,
                 time_limit: float | None = None) -> None:
        self.estimator = estimator
        self.method = method
        self.budget = budget
        self.collective = collective
        self.direction = direction
        self.known_majority = known_majority
        self.sensitive_feature = sensitive_feature
        self.minority = minority
        self.drop_sensitive = drop_sensitive
        self.firm = firm
        self.objective = objective
        self.seed = seed
        self.method_params = method_params
        self.time_limit = time_limit

    def _inner_estimator(self) -> Any:
        return LogisticRegression() if self.estimator is None else self.estimator

    def _drops_sensitive(self) -> bool:
        return self.sensitive_feature is not None and bool(self.drop_sensitive)

    def fit(self, X, y, *, sensitive_features=None, members=None, **fit_params) -> "CollectiveActionClassifier":
        """Relabel the collective's rows, then fit a clone of ``estimator`` on the relabeled labels.

        Args:
            X: shape (n, d) features (array or DataFrame); numeric, except a sensitive column named by
                ``sensitive_feature``.
            y: shape (n,) binary labels (any two values).
            sensitive_features: shape (n,) the group of each row, read with ``minority``; required unless
                ``sensitive_feature`` names a column of X. Routed by metadata routing once requested with
                ``set_fit_request(sensitive_features=True)``.
            members: optional shape (n,) 0/1 mask of the collective (default: a ``collective`` share of the
                minority drawn with ``seed``).
            **fit_params: passed to the inner estimator's ``fit`` (with metadata routing on: only what it
                requested, e.g. ``sample_weight``).

        Returns:
            self.
        """
        X = as_table(X)
        if _routing_enabled():
            inner_params = process_routing(self, "fit", **fit_params).estimator.fit
        else:
            inner_params = fit_params
        validate_data(self, X, reset=True, skip_check_array=True)
        rel = self._relabel(X, y, sensitive_features, members)
        X_inner = rel.X_rest if self._drops_sensitive() else X
        self.estimator_ = clone(self._inner_estimator()).fit(X_inner, rel.y, **inner_params)
        self._store(rel, X)
        self.classes_ = getattr(self.estimator_, "classes_", rel.classes)
        self.y_relabeled_ = rel.y
        return self

    def _inner_X(self, X: Any) -> Any:
        check_is_fitted(self, "estimator_")
        X = as_table(X)
        validate_data(self, X, reset=False, skip_check_array=True)  # number and names of the columns
        if not self._drops_sensitive():
            return X
        group, rest = split_sensitive(X, self.sensitive_feature)
        if group.dtype.kind in "fc" and not np.isfinite(group).all():
            raise FairflipError("the sensitive feature of X contains NaN or infinity")
        return rest

    def predict(self, X) -> np.ndarray:
        """Labels predicted by the fitted inner estimator; X shape (m, d) as in ``fit`` -> shape (m,)."""
        X_inner = self._inner_X(X)
        return self.estimator_.predict(X_inner)

    @available_if(_inner_has("predict_proba"))
    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities of the inner estimator, shape (m, 2), columns in ``classes_`` order."""
        X_inner = self._inner_X(X)
        return self.estimator_.predict_proba(X_inner)

    @available_if(_inner_has("predict_log_proba"))
    def predict_log_proba(self, X) -> np.ndarray:
        """Log class probabilities of the inner estimator, shape (m, 2)."""
        X_inner = self._inner_X(X)
        return self.estimator_.predict_log_proba(X_inner)

    @available_if(_inner_has("decision_function"))
    def decision_function(self, X) -> np.ndarray:
        """Decision values of the inner estimator, shape (m,) (positive favours ``classes_[1]``)."""
        X_inner = self._inner_X(X)
        return self.estimator_.decision_function(X_inner)

    def get_metadata_routing(self) -> MetadataRouter:
        """Metadata routing: this estimator consumes ``sensitive_features`` and ``members`` in ``fit`` (once
        requested) and routes what the inner estimator requests for its ``fit``."""
        return (MetadataRouter(owner=self).add_self_request(self)
                .add(estimator=self._inner_estimator(),
                     method_mapping=MethodMapping().add(caller="fit", callee="fit")))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False  # fairflip relabels binary labels
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = False
        return tags


__all__ = ["CollectiveActionClassifier"]
