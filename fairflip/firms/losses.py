"""Per-example losses of linear firms, as functions of the score f and a (possibly soft) label y in [0, 1].

Every loss is written as an interpolation l(f, y) = y * l1(f) + (1 - y) * l0(f) between the losses of the two
hard labels, so a soft label (the relaxed oracle's y_i + z_i (1 - 2 y_i)) has the natural meaning and the
mixed derivative d/dy dl/df does not depend on y. For the logistic loss this interpolation is exactly the
cross-entropy with a soft target; for the squared loss it differs from 0.5 (f - (2y - 1))^2 only by a term that
does not depend on f, so both have the same minimiser.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import torch
import torch.nn.functional as F

LossName = Literal["logistic", "squared", "smoothed-hinge"]


@dataclass(frozen=True)
class MarginLoss:
    """A twice-differentiable per-example loss with its first two score derivatives in closed form.

    All callables take tensors f and y of the same (broadcastable) shape and return that shape.
    """

    name: str
    value: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    d1: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    d2: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    dy_d1: Callable[[torch.Tensor], torch.Tensor]
    """d/dy of dl/df, shape of f (independent of y)."""
    d3: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    """Optional third score derivative (0 where d2 is piecewise constant). Only speeds up retraining near a known
    optimum (:meth:`~fairflip.firms.LinearFirm.fit_near`); a loss without it is retrained just as exactly."""


def _logistic() -> MarginLoss:
    return MarginLoss(
        name="logistic",
        value=lambda f, y: F.softplus(f) - y * f,
        d1=lambda f, y: torch.sigmoid(f) - y,
        d2=lambda f, y: torch.sigmoid(f) * torch.sigmoid(-f),
        dy_d1=lambda f: -torch.ones_like(f),
        d3=lambda f, y: torch.sigmoid(f) * torch.sigmoid(-f) * torch.tanh(-0.5 * f),
    )


def _squared() -> MarginLoss:
    # 0.5 (f - t)^2 with t = 2y - 1 in {-1, +1}: sklearn's RidgeClassifier target coding.
    return MarginLoss(
        name="squared",
        value=lambda f, y: 0.5 * (f - (2 * y - 1)) ** 2,
        d1=lambda f, y: f - (2 * y - 1),
        d2=lambda f, y: torch.ones_like(f),
        dy_d1=lambda f: -2 * torch.ones_like(f),
        d3=lambda f, y: torch.zeros_like(f),
    )


def _hinge_parts(m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Quadratically smoothed hinge h(m) on the margin m and its first two derivatives."""
    # h'' jumps from 0 to 1 at m = 0; taking the right-hand value there keeps the Hessian non-singular at the
    # all-zero start of Newton (every margin is 0), where the left-hand value left the intercept without curvature
    # and Newton ended far from the optimum on separable or weakly regularised data.
    mid = (m >= 0) & (m < 1)
    h = torch.where(m >= 1, torch.zeros_like(m), torch.where(m <= 0, 0.5 - m, 0.5 * (1 - m) ** 2))
    h1 = torch.where(m >= 1, torch.zeros_like(m), torch.where(m <= 0, -torch.ones_like(m), m - 1))
    h2 = mid.to(m.dtype)
    return h, h1, h2


def _smoothed_hinge() -> MarginLoss:
    def value(f, y):
        return y * _hinge_parts(f)[0] + (1 - y) * _hinge_parts(-f)[0]

    def d1(f, y):
        return y * _hinge_parts(f)[1] - (1 - y) * _hinge_parts(-f)[1]

    def d2(f, y):
        return y * _hinge_parts(f)[2] + (1 - y) * _hinge_parts(-f)[2]

    def dy_d1(f):
        return _hinge_parts(f)[1] + _hinge_parts(-f)[1]

    return MarginLoss("smoothed-hinge", value, d1, d2, dy_d1, d3=lambda f, y: torch.zeros_like(f))


LOSSES: dict[str, Callable[[], MarginLoss]] = {
    "logistic": _logistic,
    "squared": _squared,
    "smoothed-hinge": _smoothed_hinge,
}
"""The loss registry (name -> zero-argument factory); add to it with :func:`register_loss`."""

_BUILT: dict[Callable[[], MarginLoss], MarginLoss] = {}


def register_loss(name: str) -> Callable[[Callable[[], MarginLoss]], Callable[[], MarginLoss]]:
    """Decorator registering a zero-argument :class:`MarginLoss` factory under ``name``.

    The loss must be written as l(f, y) = y * l1(f) + (1 - y) * l0(f) (so a soft label has a meaning and
    ``dy_d1`` does not depend on y) and be twice differentiable with ``d2 >= 0`` (a convex inner problem).
    ``LinearFirm(name)`` then trains with it, and every oracle differentiates through it.
    """
    from .._errors import FairflipError, check_registry_name

    check_registry_name("loss", name)

    def deco(factory: Callable[[], MarginLoss]) -> Callable[[], MarginLoss]:
        loss = factory()
        if not isinstance(loss, MarginLoss):
            raise FairflipError(f"the factory of loss '{name}' must return a MarginLoss, got {type(loss).__name__}")
        LOSSES[name] = factory
        return factory

    return deco


def available_losses() -> list[str]:
    """Names of every registered loss."""
    from ..plugins import load_env_plugins

    load_env_plugins()
    return list(LOSSES)


def get_loss(name: str) -> MarginLoss:
    """Return the registered loss called ``name`` (built-ins ``logistic``, ``squared``, ``smoothed-hinge``)."""
    from .._errors import FairflipError
    from ..plugins import load_env_plugins

    load_env_plugins()
    if name not in LOSSES:
        raise FairflipError(f"unknown firm loss '{name}'; choose one of {sorted(LOSSES)}")
    factory = LOSSES[name]
    loss = _BUILT.get(factory)
    if loss is None:  # a MarginLoss is immutable: one instance per registered factory serves every caller
        loss = _BUILT[factory] = factory()
    return loss
