"""Firms: the training pipelines a collective acts against. Never changed by fairness concerns.

``make_firm(name)`` gives the documented defaults: ``logistic`` (the paper's firm, L2, C = 1.0, intercept not
penalised, threshold 0.5), ``ridge`` (squared loss on -1/+1 targets, alpha = 1/C), ``smoothed-hinge``,
``mlp`` (one hidden layer of 64 ReLU units) and ``gbdt`` (histogram gradient boosting).
"""

from __future__ import annotations

from typing import Literal, Protocol, Union

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.neural_network import MLPClassifier

from .._errors import FairflipError
from .linear import LinearFirm, LinearModel
from .losses import LOSSES, MarginLoss, get_loss
from .sklearn_firm import SklearnFirm, SklearnModel

FirmName = Literal["logistic", "ridge", "smoothed-hinge", "mlp", "gbdt"]
FIRMS = ("logistic", "ridge", "smoothed-hinge", "mlp", "gbdt")


class FittedFirm(Protocol):
    """What every trained firm offers."""

    def decision_function(self, X: np.ndarray) -> np.ndarray: ...

    def predict(self, X: np.ndarray) -> np.ndarray: ...


Firm = Union[LinearFirm, SklearnFirm]


def make_firm(name: str, *, C: float = 1.0, seed: int = 0, device: str | None = None) -> Firm:
    """Return the firm called ``name`` with fairflip's documented defaults.

    Args:
        name: one of ``logistic``, ``ridge``, ``smoothed-hinge``, ``mlp``, ``gbdt``.
        C: inverse L2 strength of the linear firms (ridge uses alpha = 1 / C).
        seed: random state of the mlp and gbdt firms.
        device: torch device of the linear firms (None: CUDA when available).
    """
    if name == "logistic":
        return LinearFirm("logistic", C=C, device=device)
    if name == "ridge":
        return LinearFirm("squared", C=C, device=device)
    if name == "smoothed-hinge":
        return LinearFirm("smoothed-hinge", C=C, device=device)
    if name == "mlp":
        return SklearnFirm("mlp", lambda: MLPClassifier(hidden_layer_sizes=(64,), max_iter=300, early_stopping=True, random_state=seed))
    if name == "gbdt":
        return SklearnFirm("gbdt", lambda: HistGradientBoostingClassifier(random_state=seed))
    raise FairflipError(f"unknown firm '{name}'; choose one of {', '.join(FIRMS)}")


__all__ = ["FIRMS", "Firm", "FirmName", "FittedFirm", "LOSSES", "LinearFirm", "LinearModel", "MarginLoss",
           "SklearnFirm", "SklearnModel", "get_loss", "make_firm"]
