"""Firms: the training pipelines a collective acts against. Never changed by fairness concerns.

``make_firm(name)`` gives the documented defaults: ``logistic`` (the paper's firm, L2, C = 1.0, intercept not
penalised, threshold 0.5), ``ridge`` (squared loss on -1/+1 targets, alpha = 1/C), ``smoothed-hinge``,
``mlp`` (one hidden layer of 64 ReLU units) and ``gbdt`` (histogram gradient boosting). The protocols a firm
implements and the public registries are in :mod:`fairflip.firms.base`; a plugin adds a firm with
:func:`register_firm` and a loss with :func:`register_loss`.
"""

from __future__ import annotations

from functools import partial
from typing import Union

from .base import (DifferentiableFirm, Firm, FittedFirm, available_firms, is_differentiable, make_firm,
                   register_firm, require_differentiable)
from .linear import LinearFirm, LinearModel
from .losses import LOSSES, MarginLoss, available_losses, get_loss, register_loss
from .sklearn_firm import SklearnFirm, SklearnModel

BUILTIN_FIRMS = ("logistic", "ridge", "smoothed-hinge", "mlp", "gbdt")
FIRMS = BUILTIN_FIRMS  # kept for callers of the first API; the registry (available_firms()) is authoritative
AnyFirm = Union[LinearFirm, SklearnFirm]


def _linear(loss: str):
    def factory(*, C: float = 1.0, seed: int = 0, device: str | None = None) -> LinearFirm:
        return LinearFirm(loss, C=C, device=device)

    return factory


register_firm("logistic")(_linear("logistic"))
register_firm("ridge")(_linear("squared"))
register_firm("smoothed-hinge")(_linear("smoothed-hinge"))


@register_firm("mlp")
def _mlp(*, C: float = 1.0, seed: int = 0, device: str | None = None) -> SklearnFirm:
    from sklearn.neural_network import MLPClassifier

    # functools.partial rather than a lambda, so that the firm pickles (process pools, Ray, estimator checks)
    return SklearnFirm("mlp", partial(MLPClassifier, hidden_layer_sizes=(64,), max_iter=300, early_stopping=True,
                                      random_state=seed))


@register_firm("gbdt")
def _gbdt(*, C: float = 1.0, seed: int = 0, device: str | None = None) -> SklearnFirm:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return SklearnFirm("gbdt", partial(HistGradientBoostingClassifier, random_state=seed))


__all__ = ["AnyFirm", "BUILTIN_FIRMS", "DifferentiableFirm", "FIRMS", "Firm", "FittedFirm", "LOSSES", "LinearFirm",
           "LinearModel", "MarginLoss", "SklearnFirm", "SklearnModel", "available_firms", "available_losses",
           "get_loss", "is_differentiable", "make_firm", "register_firm", "register_loss", "require_differentiable"]
