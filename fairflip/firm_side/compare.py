"""Run a firm-side fairness method on a train/test split and tabulate them against the plain firm."""

from __future__ import annotations

import inspect
import time
from typing import Any, Callable, Literal, Mapping, Sequence

import numpy as np
import pandas as pd

from .._errors import FairflipError
from ..datasets import Dataset
from ..features import FeaturePreparer
from ..firms import Firm, make_firm
from ..metrics import all_metrics
from .calibrated_eqodds import predict_calibrated_eqodds
from .fairlearn_methods import predict_exponentiated_gradient, predict_threshold_optimizer
from .reweighing import predict_reweighing

FirmSideMethod = Literal["plain", "threshold-optimizer", "exponentiated-gradient", "reweighing", "calibrated-eqodds"]
PLAIN = "plain"
FIRM_SIDE_METHODS = ("threshold-optimizer", "exponentiated-gradient", "reweighing", "calibrated-eqodds")


def predict_plain(
    firm: Firm, X: np.ndarray, y: np.ndarray, a: np.ndarray, X_test: np.ndarray, a_test: np.ndarray, *, seed: int = 0
) -> np.ndarray:
    """The unchanged firm trained on (X (n, d), y (n,)): predictions on X_test (m, d), shape (m,) int64.

    ``a``, ``a_test`` and ``seed`` are unused; they keep the signature of every firm-side method.
    """
    return np.asarray(firm.fit(X, y).predict(X_test), dtype=np.int64)


# Every predictor: (firm, X, y, a, X_test, a_test, *, seed) -> test predictions (m,).
_PREDICTORS: dict[str, Callable[..., np.ndarray]] = {
    PLAIN: predict_plain,
    "threshold-optimizer": predict_threshold_optimizer,
    "exponentiated-gradient": predict_exponentiated_gradient,
    "reweighing": predict_reweighing,
    "calibrated-eqodds": predict_calibrated_eqodds,
}


def _check_method(name: str) -> str:
    if name not in _PREDICTORS:
        raise FairflipError(f"unknown firm-side method '{name}'; choose one of {', '.join(_PREDICTORS)}")
    return name


def _check_options(name: str, options: Mapping[str, Any] | None) -> dict:
    options = dict(options or {})
    allowed = [p.name for p in inspect.signature(_PREDICTORS[name]).parameters.values()
               if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name != "seed"]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise FairflipError(f"method '{name}' has no option(s) {unknown}; its options are {allowed or 'none'}")
    return options


def _prepare(train: Dataset, test: Dataset, firm: Firm | str, seed: int):
    if not isinstance(train, Dataset) or not isinstance(test, Dataset):
        raise FairflipError("train and test must be Dataset objects")
    prep = FeaturePreparer().fit(train)
    firm_obj = make_firm(firm, seed=seed) if isinstance(firm, str) else firm
    return prep.transform(train), prep.transform(test), firm_obj


def _run(name: str, firm: Firm, X: np.ndarray, train: Dataset, X_test: np.ndarray, test: Dataset, seed: int,
         options: dict) -> dict:
    start = time.perf_counter()
    pred = _PREDICTORS[name](firm, X, train.y, train.a, X_test, test.a, seed=seed, **options)
    runtime = time.perf_counter() - start
    out = all_metrics(test.y, pred, test.a)
    out["runtime_s"] = runtime
    return out


def run_firm_side(
    name: FirmSideMethod,
    train: Dataset,
    test: Dataset,
    *,
    firm: Firm | str = "logistic",
    seed: int = 0,
    options: Mapping[str, Any] | None = None,
) -> dict:
    """Train the firm with firm-side method ``name`` on the original training labels and measure it on ``test``.

    Features are prepared by :class:`~fairflip.features.FeaturePreparer` fitted on ``train`` (group column last),
    the same matrix the collective acts on.

    Args:
        name: ``plain`` (the unchanged firm) or one of :data:`FIRM_SIDE_METHODS`.
        train: training rows (n).
        test: held-out rows (m), measured with their true labels.
        firm: a firm object or a name for :func:`fairflip.firms.make_firm`.
        seed: seed of the firm (mlp, gbdt), of held-out splits and of randomised predictions.
        options: the method's own keyword options, e.g. ``{"cost": "fnr", "decision": "threshold"}`` for
            ``calibrated-eqodds`` (see :func:`~fairflip.firm_side.calibrated_eqodds.predict_calibrated_eqodds`).

    Returns:
        the test metrics of :func:`fairflip.metrics.all_metrics` (``eqod, eqod_worst, dp, eqopp, tpr_gap,
        fpr_gap, error, error_minority, error_majority``) plus ``runtime_s`` (training and prediction, seconds).
    """
    _check_method(name)
    opts = _check_options(name, options)
    X, X_test, firm_obj = _prepare(train, test, firm, seed)
    return _run(name, firm_obj, X, train, X_test, test, seed, opts)


def firm_side_table(
    train: Dataset,
    test: Dataset,
    *,
    methods: Sequence[FirmSideMethod] = (PLAIN, *FIRM_SIDE_METHODS),
    firm: Firm | str = "logistic",
    seed: int = 0,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> pd.DataFrame:
    """Every firm-side method (and the plain firm) on one split, one row per method.

    Args:
        train, test: as in :func:`run_firm_side`.
        methods: method names, each at most once (default: plain first, then every firm-side method).
        firm: a firm object or a name for :func:`fairflip.firms.make_firm`.
        seed: as in :func:`run_firm_side`.
        options: method name -> that method's options (see :func:`run_firm_side`).

    Returns:
        DataFrame with columns ``method, firm, seed``, the test metrics and ``runtime_s``, rows in ``methods`` order.
    """
    methods = list(methods)
    if not methods:
        raise FairflipError("methods must name at least one firm-side method")
    if len(set(methods)) != len(methods):
        raise FairflipError(f"methods lists a method twice: {methods}")
    for name in methods:
        _check_method(name)
    options = dict(options or {})
    stray = sorted(set(options) - set(methods))
    if stray:
        raise FairflipError(f"options given for method(s) {stray} that are not in methods")
    opts = {name: _check_options(name, options.get(name)) for name in methods}
    X, X_test, firm_obj = _prepare(train, test, firm, seed)
    firm_name = firm if isinstance(firm, str) else getattr(firm_obj, "name", type(firm_obj).__name__)
    rows = [{"method": name, "firm": firm_name, "seed": seed,
             **_run(name, firm_obj, X, train, X_test, test, seed, opts[name])} for name in methods]
    return pd.DataFrame(rows)
