"""A user plugin written against fairflip's public API only: a squared-hinge firm loss (and the firm that trains
with it) and a softplus-smoothed TPR/FPR-gap surrogate. Load it with ``fairflip --plugin <this file> ...``."""

import torch
import torch.nn.functional as F

from fairflip.firms import LinearFirm, MarginLoss, register_firm, register_loss
from fairflip.surrogates import SigmoidSurrogate, register_surrogate


def _up(f):  # max(0, 1 - f): the loss of label 1 is its square
    return torch.clamp(1 - f, min=0)


def _down(f):  # max(0, 1 + f): the loss of label 0 is its square
    return torch.clamp(1 + f, min=0)


@register_loss("squared-hinge")
def squared_hinge() -> MarginLoss:
    return MarginLoss(
        name="squared-hinge",
        value=lambda f, y: y * _up(f) ** 2 + (1 - y) * _down(f) ** 2,
        d1=lambda f, y: -2 * y * _up(f) + 2 * (1 - y) * _down(f),
        d2=lambda f, y: 2 * y * (f < 1).to(f.dtype) + 2 * (1 - y) * (f > -1).to(f.dtype),
        dy_d1=lambda f: -2 * _up(f) - 2 * _down(f),
    )


@register_firm("squared-hinge")
def squared_hinge_firm(*, C=1.0, seed=0, device=None):
    return LinearFirm("squared-hinge", C=C, device=device)


@register_surrogate("softplus-gap")
class SoftplusGap(SigmoidSurrogate):
    """Sigmoid soft predictions, and |gap| smoothed by T * log(2 cosh(gap / T)) (softplus on both sides)."""

    def gap(self, diff, temperature):
        t = temperature
        return t * (F.softplus(diff / t) + F.softplus(-diff / t)) - 2 * t * torch.log(torch.tensor(2.0))

    def describe(self, temperature):
        return f"softplus-gap(T={temperature:g})"
