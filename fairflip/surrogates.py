"""Smooth surrogates of the fairness objectives, as torch functions of the firm's scores, labels and groups.

The true objectives in :mod:`fairflip.metrics` count hard predictions 1[f > t]; they are piecewise constant in
the firm's parameters, so a gradient-based oracle optimises a smooth stand-in and then *always* scores its flips
with the true objective after exact retraining. A surrogate therefore carries its own name (e.g.
``sigmoid(T=0.1) surrogate of eqod``) and is never reported as the metric.

A surrogate replaces each hard prediction by a soft one q(margin), margin = score - threshold:

- ``sigmoid``: q = sigmoid(margin / T); tends to the hard prediction as the temperature T -> 0 (see
  :class:`TemperatureSchedule` for annealing T during optimisation).
- ``hinge``: q = max(0, 1 + margin / T), the convex hinge upper bound of 1[margin > 0] with width T.
- ``mean-score``: q = margin itself; the group rates become mean scores, so for a ridge firm (scores affine in
  the labels) every gap is affine in the flips.

The rates (TPR, FPR, selection rate per group) are the soft predictions' means over the (group, label) cells,
and the objectives combine them exactly as the true metrics do (eqod: mean of |TPR gap| and |FPR gap|,
eqod-worst: their maximum, dp: |selection-rate gap|, eqopp: |TPR gap|). The absolute value and the maximum are
kept as they are (differentiable almost everywhere), so a surrogate evaluated on hard predictions q in {0, 1}
equals the true metric.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Literal

import torch

from ._errors import FairflipError
from .metrics import OBJECTIVES

SurrogateKind = Literal["sigmoid", "hinge", "mean-score"]
SURROGATE_KINDS = ("sigmoid", "hinge", "mean-score")


# ----- soft predictions: margins (..., m) -> (..., m) -----
def sigmoid_predictions(margins: torch.Tensor, temperature: float) -> torch.Tensor:
    """sigmoid(margin / T), shape of ``margins``; T > 0 in score units."""
    return torch.sigmoid(margins / temperature)


def hinge_predictions(margins: torch.Tensor, width: float) -> torch.Tensor:
    """max(0, 1 + margin / width), the hinge upper bound of 1[margin > 0], shape of ``margins``."""
    return torch.relu(1.0 + margins / width)


def mean_score_predictions(margins: torch.Tensor) -> torch.Tensor:
    """The margins themselves (rates become mean scores), shape of ``margins``."""
    return margins


# ----- soft rates and gaps: soft predictions q (..., m), labels y (m,), groups a (m,) -----
def _cell_means(q: torch.Tensor, mask: torch.Tensor, what: str) -> torch.Tensor:
    count = mask.sum()
    if int(count) == 0:
        raise FairflipError(f"empty cell: no rows with {what}; the surrogate rate is undefined")
    return (q * mask.to(q.dtype)).sum(-1) / count


def soft_rates(q: torch.Tensor, y: torch.Tensor, a: torch.Tensor) -> dict[str, torch.Tensor]:
    """Soft TPR, FPR and selection rate of each group.

    Args:
        q: shape (..., m) soft predictions.
        y: shape (m,) true labels in {0, 1}.
        a: shape (m,) minority indicator.

    Returns:
        dict ``tpr_1, tpr_0, fpr_1, fpr_0, sel_1, sel_0``, each of shape (...,) (suffix = group).
    """
    y = y.to(torch.bool)
    a = a.to(torch.bool)
    out = {}
    for g, name, in_group in ((1, "minority", a), (0, "majority", ~a)):
        out[f"tpr_{g}"] = _cell_means(q, in_group & y, f"{name} and y = 1")
        out[f"fpr_{g}"] = _cell_means(q, in_group & ~y, f"{name} and y = 0")
        out[f"sel_{g}"] = _cell_means(q, in_group, name)
    return out


def smooth_eqod(q: torch.Tensor, y: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Mean of the absolute soft TPR and FPR gaps; q (..., m), y and a (m,) -> (...,)."""
    r = soft_rates(q, y, a)
    return 0.5 * ((r["tpr_1"] - r["tpr_0"]).abs() + (r["fpr_1"] - r["fpr_0"]).abs())


def smooth_eqod_worst(q: torch.Tensor, y: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Larger of the absolute soft TPR and FPR gaps; q (..., m), y and a (m,) -> (...,)."""
    r = soft_rates(q, y, a)
    return torch.maximum((r["tpr_1"] - r["tpr_0"]).abs(), (r["fpr_1"] - r["fpr_0"]).abs())


def smooth_dp(q: torch.Tensor, y: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Absolute soft selection-rate gap; q (..., m), y and a (m,) -> (...,)."""
    r = soft_rates(q, y, a)
    return (r["sel_1"] - r["sel_0"]).abs()


def smooth_eqopp(q: torch.Tensor, y: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Absolute soft TPR gap; q (..., m), y and a (m,) -> (...,)."""
    r = soft_rates(q, y, a)
    return (r["tpr_1"] - r["tpr_0"]).abs()


def smooth_error(q: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Soft error rate mean(y (1 - q) + (1 - y) q); q (..., m), y (m,) -> (...,)."""
    y = y.to(q.dtype)
    return (y * (1 - q) + (1 - y) * q).mean(-1)


SMOOTH_GAPS: dict[str, Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "eqod": smooth_eqod,
    "eqod-worst": smooth_eqod_worst,
    "dp": smooth_dp,
    "eqopp": smooth_eqopp,
}
assert set(SMOOTH_GAPS) == set(OBJECTIVES), "every true objective needs its smooth counterpart"


@dataclass(frozen=True)
class TemperatureSchedule:
    """Temperature of the sigmoid surrogate over an optimisation run, from ``start`` down to ``end``.

    Args:
        start: temperature at the first step (score units, > 0).
        end: temperature at the last step (> 0, <= start).
        kind: ``geometric`` (the default: equal ratios per step), ``linear`` or ``constant`` (always ``start``).
    """

    start: float = 1.0
    end: float = 0.05
    kind: Literal["geometric", "linear", "constant"] = "geometric"

    def __post_init__(self) -> None:
        if not (self.start > 0 and self.end > 0) or self.end > self.start:
            raise FairflipError(f"temperatures must satisfy 0 < end <= start, got start={self.start}, end={self.end}")
        if self.kind not in ("geometric", "linear", "constant"):
            raise FairflipError(f"schedule kind must be geometric, linear or constant, got {self.kind!r}")

    def at(self, step: int, total: int) -> float:
        """Temperature at ``step`` (0-based) of ``total`` steps."""
        if self.kind == "constant" or total <= 1:
            return self.start
        frac = min(max(step / (total - 1), 0.0), 1.0)
        if self.kind == "linear":
            return self.start + frac * (self.end - self.start)
        return math.exp(math.log(self.start) + frac * (math.log(self.end) - math.log(self.start)))


@dataclass(frozen=True)
class FairnessSurrogate:
    """A named smooth stand-in for one fairness objective (plus an optional weighted soft error).

    Args:
        objective: the true objective it stands for: eqod, eqod-worst, dp or eqopp.
        kind: sigmoid, hinge or mean-score (see the module docstring).
        temperature: T of the sigmoid or width of the hinge (score units, > 0); unused by mean-score.
        error_weight: weight of the soft error added (the problem's ``error_weight``).
    """

    objective: str = "eqod"
    kind: SurrogateKind = "sigmoid"
    temperature: float = 0.1
    error_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.objective not in SMOOTH_GAPS:
            raise FairflipError(f"unknown objective '{self.objective}'; choose one of {', '.join(SMOOTH_GAPS)}")
        if self.kind not in SURROGATE_KINDS:
            raise FairflipError(f"unknown surrogate '{self.kind}'; choose one of {', '.join(SURROGATE_KINDS)}")
        if not (self.temperature > 0) or math.isinf(self.temperature):
            raise FairflipError(f"surrogate temperature must be positive and finite, got {self.temperature!r}")
        if self.error_weight < 0:
            raise FairflipError(f"error_weight must be non-negative, got {self.error_weight}")

    @property
    def name(self) -> str:
        """What it is, e.g. ``sigmoid(T=0.1) surrogate of eqod`` — never the bare metric name."""
        shape = {"sigmoid": f"sigmoid(T={self.temperature:g})", "hinge": f"hinge(width={self.temperature:g})",
                 "mean-score": "mean-score"}[self.kind]
        extra = f" + {self.error_weight:g} soft error" if self.error_weight else ""
        return f"{shape} surrogate of {self.objective}{extra}"

    def with_temperature(self, temperature: float) -> "FairnessSurrogate":
        """The same surrogate at another temperature (for annealing)."""
        return replace(self, temperature=float(temperature))

    def soft_predictions(self, margins: torch.Tensor) -> torch.Tensor:
        """Soft predictions of margins = score - threshold, shape (..., m) -> (..., m)."""
        if self.kind == "sigmoid":
            return sigmoid_predictions(margins, self.temperature)
        if self.kind == "hinge":
            return hinge_predictions(margins, self.temperature)
        return mean_score_predictions(margins)

    def __call__(self, margins: torch.Tensor, y: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Surrogate value of each row of margins.

        Args:
            margins: shape (..., m) scores minus the firm's score threshold.
            y: shape (m,) true labels in {0, 1} (the original labels, never the flipped ones).
            a: shape (m,) minority indicator.

        Returns:
            shape (...,) surrogate values.
        """
        q = self.soft_predictions(margins)
        value = SMOOTH_GAPS[self.objective](q, y, a)
        if self.error_weight:
            value = value + self.error_weight * smooth_error(q, y)
        return value
