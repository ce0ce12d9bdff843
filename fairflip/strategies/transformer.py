"""Relabeling in the scikit-learn idiom: the core shared by the relabeler (a sampler) and the meta-estimator.

:class:`CollectiveRelabeler` follows imbalanced-learn's sampler convention: ``fit_resample(X, y, *,
sensitive_features)`` returns X unchanged and the collective's relabeled y, so it can sit in an
``imblearn.pipeline.Pipeline`` (which applies samplers during ``fit`` only) before the firm's estimator::

    from imblearn.pipeline import make_pipeline
    pipe = make_pipeline(CollectiveRelabeler("rb-label", budget=0.2), LogisticRegression())
    pipe.fit(X, y, collectiverelabeler__sensitive_features=a)

Used on its own, ``fit_resample`` gives the relabeled labels to train any model with. A scikit-learn ``Pipeline``
cannot change y between steps; there use :class:`fairflip.pipeline.CollectiveActionClassifier`, which relabels
and then fits its inner estimator. Both read the group from ``sensitive_features`` (metadata, routable) or from
a column of X (``sensitive_feature``), and both run any method registered with :func:`fairflip.methods.get_method`,
seeded explicitly.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.utils._metadata_requests import RequestMethod
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import column_or_1d

from .._errors import FairflipError
from ..collective import make_collective
from ..firms import Firm, make_firm
from ..methods import FlipResult, get_method
from ..problem import FlipProblem
from .base import resolve_budget

MinorityRule = Any
"""How the minority is read from the sensitive feature: a value (rows equal to it; 1 by default), ``"rarer"``
(the less frequent of exactly two values) or a callable mapping the column, shape (n,), to a bool mask (n,)."""


@dataclass
class Relabeling:
    """The outcome of one relabeling of n training rows.

    Attributes:
        y: shape (n,) the labels after the flips, in the caller's label values (``classes``).
        classes: shape (2,) the sorted label values; ``classes[1]`` plays fairflip's label 1.
        a: shape (n,) int64 minority indicator (1 = minority).
        X_rest: the features without the sensitive column (X itself when the group came as metadata), in the
            caller's container type (DataFrame or array), shape (n, d').
        flipped: shape (k,) sorted int64 rows whose label was flipped, k <= budget.
        budget: the budget as a count of candidates.
        problem: the :class:`~fairflip.problem.FlipProblem` the method solved (y encoded 0/1); None when the
            collective had no candidate (then nothing flips).
        result: the method's :class:`~fairflip.methods.FlipResult` (None without candidates).
    """

    y: np.ndarray
    classes: np.ndarray
    a: np.ndarray
    X_rest: Any
    flipped: np.ndarray
    budget: int
    problem: FlipProblem | None
    result: FlipResult | None


def _is_frame(X: Any) -> bool:
    return hasattr(X, "columns") and hasattr(X, "iloc")


def as_table(X: Any) -> Any:
    """X as a DataFrame (kept as is) or a NumPy array of shape (n, d); sparse matrices are refused."""
    if sp.issparse(X):
        raise TypeError("fairflip's relabeling reads dense features: sparse X is not supported "
                        "(convert it with X.toarray())")
    arr = X if _is_frame(X) else np.asarray(X)
    if arr.ndim != 2:
        raise FairflipError(f"X must be 2-D of shape (n, d), got shape {arr.shape}. Reshape your data "
                            "(X.reshape(-1, 1) for one feature)")
    return arr


def split_sensitive(X: Any, column: str | int) -> tuple[np.ndarray, Any]:
    """Take the sensitive column out of X.

    Args:
        X: shape (n, d) DataFrame (``column`` a column label, or an int position when no label matches) or
            array (``column`` an int position).
        column: which column holds the sensitive feature.

    Returns:
        (values shape (n,), X without that column shape (n, d - 1), same container type as X).
    """
    n_cols = int(X.shape[1])
    if _is_frame(X):
        if column in list(X.columns):
            return np.asarray(X[column]), X.drop(columns=[column])
        if isinstance(column, (int, np.integer)) and not isinstance(column, bool) and 0 <= column < n_cols:
            return np.asarray(X.iloc[:, int(column)]), X.drop(columns=[X.columns[int(column)]])
        raise FairflipError(f"sensitive_feature {column!r} is not a column of X (columns: "
                            f"{', '.join(map(str, list(X.columns)[:10]))}{', ...' if n_cols > 10 else ''})")
    if isinstance(column, bool) or not isinstance(column, (int, np.integer)):
        raise FairflipError(f"sensitive_feature must be a column position (int) when X is an array, got {column!r}")
    if not -n_cols <= column < n_cols:
        raise FairflipError(f"sensitive_feature {column} is out of range for X with {n_cols} feature(s)")
    col = int(column) % n_cols
    arr = np.asarray(X)
    return arr[:, col], np.delete(arr, col, axis=1)


def minority_mask(values: Any, minority: MinorityRule = 1) -> np.ndarray:
    """The minority indicator of a sensitive feature.

    Args:
        values: shape (n,) the sensitive feature (any dtype; a one-column DataFrame is accepted).
        minority: a value (rows equal to it are the minority; 1 by default, fairflip's convention), ``"rarer"``
            (the less frequent of exactly two distinct values) or a callable mapping the column (n,) to a bool
            mask (n,).

    Returns:
        shape (n,) int64, 1 for minority rows; both groups must be present.
    """
    vals = np.asarray(values)
    if vals.ndim == 2 and vals.shape[1] == 1:
        vals = vals[:, 0]
    if vals.ndim != 1:
        raise FairflipError(f"sensitive_features must be one column of shape (n,), got shape {vals.shape}; "
                            "fairflip's collective is one minority group (combine attributes into one column)")
    if vals.dtype.kind == "f" and not np.isfinite(vals).all():
        raise FairflipError("sensitive_features contains NaN or infinity")
    if callable(minority):
        mask = np.asarray(minority(vals))
        if mask.shape != vals.shape or mask.dtype != bool:
            raise FairflipError(f"the minority callable must return a bool mask of shape {vals.shape}, got "
                                f"dtype {mask.dtype} and shape {mask.shape}")
    elif isinstance(minority, str) and minority == "rarer":
        uniq, counts = np.unique(vals, return_counts=True)
        if len(uniq) != 2:
            raise FairflipError(f"minority='rarer' needs a sensitive feature with exactly two values, found "
                                f"{len(uniq)}")
        if counts[0] == counts[1]:
            raise FairflipError("minority='rarer': both groups have the same size; name the minority value")
        mask = vals == uniq[int(np.argmin(counts))]
    else:
        mask = vals == minority
        if not isinstance(mask, np.ndarray) or mask.shape != vals.shape:
            raise FairflipError(f"minority {minority!r} cannot be compared with the sensitive feature")
    if not mask.any():
        raise FairflipError(f"no row of the sensitive feature is in the minority ({minority!r}); set minority= "
                            f"to the minority's value (values seen: {np.unique(vals)[:5].tolist()})")
    if mask.all():
        raise FairflipError(f"every row of the sensitive feature is in the minority ({minority!r}); "
                            "the majority is needed too")
    return mask.astype(np.int64)


def numeric_features(X: Any, what: str = "X") -> np.ndarray:
    """X as a finite float64 array of shape (n, d) (what the strategies and fairflip's firms read)."""
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise FairflipError(f"{what} must hold numeric features only (encode categories in an earlier step): "
                            f"{exc}") from exc
    if arr.ndim != 2:
        raise FairflipError(f"{what} must have shape (n, d), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise FairflipError(f"{what} contains NaN or infinity")
    return arr


def encode_binary_labels(y: Any) -> tuple[np.ndarray, np.ndarray]:
    """Binary labels of any two values -> (classes shape (2,) sorted, y shape (n,) int64 in {0, 1}).

    ``classes[1]`` is fairflip's label 1 (the target of an ``up`` flip), as scikit-learn's ``pos_label``.
    """
    if y is None:
        raise FairflipError("relabeling requires y to be passed, but the target y is None")
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = column_or_1d(y, warn=True)  # scikit-learn's DataConversionWarning for a column vector
    if y.ndim != 1:
        raise FairflipError(f"y must have shape (n,), got {y.shape}")
    check_classification_targets(y)
    classes = np.unique(y)
    if len(classes) < 2:
        raise FairflipError("y holds one class only; fairflip relabels binary labels (two classes)")
    if type_of_target(y) != "binary":
        raise FairflipError(f"Only binary classification is supported (fairflip relabels binary labels); y has "
                            f"{len(classes)} classes")
    return classes, (y == classes[1]).astype(np.int64)


class NothingToFlipWarning(UserWarning):
    """The collective drawn had no candidate (no member carries the source label), so no label was flipped."""


# The messages of make_collective for a collective with nothing to flip.
_NOTHING_TO_FLIP = ("the collective is empty", "the candidate set is empty")


class RelabelParams:
    """The parameters and the relabeling shared by :class:`CollectiveRelabeler` and
    :class:`fairflip.pipeline.CollectiveActionClassifier` (attributes set by their ``__init__``)."""

    method: str
    budget: int | float
    collective: float
    direction: str
    known_majority: int | None
    sensitive_feature: str | int | None
    minority: MinorityRule
    firm: str | Firm
    objective: str
    seed: int
    method_params: dict[str, Any] | None
    time_limit: float | None

    def _relabel(self, X: Any, y: Any, sensitive_features: Any = None, members: Any = None) -> Relabeling:
        X = as_table(X)
        n = int(X.shape[0])
        if X.shape[1] == 0:
            raise FairflipError(f"0 feature(s) (shape={X.shape}) while a minimum of 1 is required.")
        classes, y01 = encode_binary_labels(y)
        if len(y01) != n:
            raise FairflipError(f"X has {n} rows, y {len(y01)}")
        owner = type(self).__name__
        if self.sensitive_feature is not None:
            if sensitive_features is not None:
                raise FairflipError(f"{owner} reads the group from column {self.sensitive_feature!r} of X "
                                    "(sensitive_feature); do not pass sensitive_features too")
            if int(X.shape[1]) < 2:
                raise FairflipError(f"X has {X.shape[1]} feature(s): the sensitive feature needs at least one "
                                    "other feature beside it")
            group, X_rest = split_sensitive(X, self.sensitive_feature)
        elif sensitive_features is None:
            raise FairflipError(f"{owner} needs the group: pass sensitive_features=... to fit (in a pipeline, "
                                "route it with set_fit_request(sensitive_features=True)) or set "
                                "sensitive_feature=<a column of X>")
        else:
            group, X_rest = sensitive_features, X
        a = minority_mask(group, self.minority)
        if len(a) != n:
            raise FairflipError(f"X has {n} rows, sensitive_features {len(a)}")
        if self.method_params is not None and not isinstance(self.method_params, dict):
            raise FairflipError(f"method_params must be a dict of the method's keyword parameters or None, got "
                                f"{self.method_params!r}")
        strategy = get_method(self.method, seed=self.seed, **(self.method_params or {}))
        X_strat = numeric_features(X_rest, "X (without the sensitive feature)")
        try:
            col = make_collective(y01, a, fraction=None if members is not None else self.collective,
                                  members=None if members is None else np.asarray(members),
                                  direction=self.direction, known_majority=self.known_majority, seed=self.seed)
        except FairflipError as exc:
            if not str(exc).startswith(_NOTHING_TO_FLIP):
                raise
            # A collective without candidates (e.g. a small minority in one CV fold) relabels nothing.
            warnings.warn(f"{owner}: {exc}; no label is flipped", NothingToFlipWarning, stacklevel=3)
            return Relabeling(y=classes[y01], classes=classes, a=a, X_rest=X_rest,
                              flipped=np.zeros(0, dtype=np.int64), budget=0, problem=None, result=None)
        # Only omniscient methods (the oracles) train the firm, on the features the downstream estimator sees;
        # heuristics read only the collective's view (X without the group).
        X_firm = X_strat
        if strategy.omniscient and self.sensitive_feature is not None and not self._drops_sensitive():
            X_firm = numeric_features(X, "X")
        firm = make_firm(self.firm) if isinstance(self.firm, str) else self.firm
        problem = FlipProblem(X=X_firm, y=y01, a=a, collective=col, firm=firm, objective=self.objective,
                              X_nogroup=X_strat)
        budget = resolve_budget(self.budget, len(problem.candidates))
        result = strategy.select(problem, budget, time_limit=self.time_limit)
        flipped = result.flipped
        y_out = classes[y01]
        y_out[flipped] = classes[1 - y01[flipped]]
        return Relabeling(y=y_out, classes=classes, a=a, X_rest=X_rest, flipped=flipped, budget=budget,
                          problem=problem, result=result)

    def _drops_sensitive(self) -> bool:
        """Whether the downstream estimator sees X without the sensitive column."""
        return False

    def _store(self, rel: Relabeling, X: Any) -> None:
        """Set the fitted attributes common to both estimators."""
        solved = rel.problem is not None
        self.collective_ = rel.problem.collective if solved else None
        self.candidates_ = rel.problem.candidates if solved else np.zeros(0, dtype=np.int64)
        self.scores_ = rel.result.scores if solved else None
        self.flipped_ = rel.flipped
        self.budget_ = rel.budget
        self.flip_result_ = rel.result if solved else None
        self.n_features_in_ = int(X.shape[1])
        if _is_frame(X) and all(isinstance(c, str) for c in X.columns):
            self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_


class CollectiveRelabeler(RelabelParams, BaseEstimator):
    """Relabel a collective's training labels with a fairflip method (an imbalanced-learn style sampler).

    Args:
        method: any registered method name (:func:`fairflip.methods.available_methods`): the heuristics read only
            the collective's view; omniscient ones (the oracles) also train ``firm`` on all rows.
        budget: the most flips, as a count (int) or a fraction of the candidates (float in [0, 1]).
        collective: share of the minority that joins, drawn with ``seed``, when no ``members`` are given.
        direction: ``up`` (``classes[0] -> classes[1]``, the paper's setting), ``down`` or ``auto`` (default:
            moves the minority's rate of ``classes[1]`` towards the majority's).
        known_majority: None (the collective knows every majority row) or m (it knows m sampled rows).
        sensitive_feature: None (the group comes as ``sensitive_features``) or the column of X (label of a
            DataFrame, or position) holding it; the column stays in X.
        minority: which value of the sensitive feature is the minority: a value (1 by default), ``"rarer"`` or
            a callable (see :func:`minority_mask`).
        firm: fairflip firm (name or object) that omniscient methods optimise for; ignored by heuristics.
        objective: fairness objective of omniscient methods (``eqod``, ``eqod-worst``, ``dp``, ``eqopp``).
        seed: seed of the member and majority draws and of the method (passed as ``get_method(..., seed=seed)``).
        method_params: keyword parameters of the method, e.g. ``{"k": 5, "scaling": "standard"}``. kNN
            distances are computed on X as given: standardise first, or pass ``{"scaling": "standard"}``.
        time_limit: seconds after which an oracle returns its incumbent (None: no limit).

    Attributes (after ``fit``):
        collective_: the :class:`~fairflip.collective.Collective` that acted.
        candidates_: shape (c,) candidate rows; scores_: shape (c,) their scores (None when the method has none).
        flipped_: shape (k,) flipped rows, k <= budget; budget_: the budget as a count.
        flip_result_: the method's :class:`~fairflip.methods.FlipResult`.
        classes_: shape (2,) label values; n_features_in_: number of columns of X.
    """

    # A sampler is called through fit_resample: request the group there with
    # set_fit_resample_request(sensitive_features=True) (scikit-learn generates setters only for its own methods).
    # imbalanced-learn's Pipeline also routes to fit, which it never calls on a sampler: not requested there.
    set_fit_resample_request = RequestMethod("fit_resample", ["members", "sensitive_features"])
    __metadata_request__fit = {"members": False, "sensitive_features": False}

    def __init__(self, method: str = "rb-label", *, budget: int | float = 0.1, collective: float = 0.3,
                 direction: str = "auto", known_majority: int | None = None,
                 sensitive_feature: str | int | None = None, minority: MinorityRule = 1,
                 firm: str | Firm = "logistic", objective: str = "eqod", seed: int = 0,
                 method_params: dict[str, Any] | None = None, time_limit: float | None = None) -> None:
        self.method = method
        self.budget = budget
        self.collective = collective
        self.direction = direction
        self.known_majority = known_majority
        self.sensitive_feature = sensitive_feature
        self.minority = minority
        self.firm = firm
        self.objective = objective
        self.seed = seed
        self.method_params = method_params
        self.time_limit = time_limit

    def fit(self, X, y, *, sensitive_features=None, members=None) -> "CollectiveRelabeler":
        """Choose the flips.

        Args:
            X: shape (n, d) numeric features (array or DataFrame); with ``sensitive_feature`` set, one column is
                the group (it may be non-numeric) and the others are what the strategy reads.
            y: shape (n,) binary labels (any two values).
            sensitive_features: shape (n,) group of each row, read with ``minority`` (unless
                ``sensitive_feature`` names a column of X).
            members: optional shape (n,) 0/1 mask of the collective (default: a ``collective`` share of the
                minority drawn with ``seed``).

        Returns:
            self.
        """
        self._fit(X, y, sensitive_features, members)
        return self

    def _fit(self, X, y, sensitive_features, members) -> Relabeling:
        rel = self._relabel(X, y, sensitive_features, members)
        self._store(rel, X)
        self.classes_ = rel.classes
        return rel

    def fit_resample(self, X, y, *, sensitive_features=None, members=None):
        """Choose the flips and return ``(X, y_relabeled)``: X unchanged (the same object), y with ``flipped_``
        flipped, shape (n,) with y's label values. Arguments as in :meth:`fit`."""
        return X, self._fit(X, y, sensitive_features, members).y

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags


__all__ = ["CollectiveRelabeler", "NothingToFlipWarning", "Relabeling", "as_table", "encode_binary_labels",
           "minority_mask", "numeric_features", "split_sensitive"]
