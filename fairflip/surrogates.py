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
from typing import ClassVar, Literal

import torch

from ._errors import FairflipError, check_registry_name
from .objectives import Objective, get_objective

SurrogateKind = str
"""The name of a registered surrogate: built-ins ``sigmoid``, ``hinge``, ``mean-score``."""
BUILTIN_SURROGATES = ("sigmoid", "hinge", "mean-score")


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


def smooth_error(q: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Soft error rate mean(y (1 - q) + (1 - y) q); q (..., m), y (m,) -> (...,)."""
    y = y.to(q.dtype)
    return (y * (1 - q) + (1 - y) * q).mean(-1)


class Surrogate:
    """A smooth stand-in for the hard prediction 1[margin > 0] (and, optionally, for the absolute gap).

    Subclass it and register the subclass with :func:`register_surrogate` to add a surrogate: override
    :meth:`soft_predictions` and, to smooth the absolute value of each rate gap too, :meth:`gap`. Instances are
    stateless; the temperature is an argument, so a :class:`TemperatureSchedule` can anneal it.

    Class attributes:
        name: registry name (set by :func:`register_surrogate`).
        solvers: the solvers it is registered with (``oracle-relaxed`` needs a differentiable surrogate,
            ``oracle-convex`` an affine one); a solver given a surrogate not registered with it refuses it.
    """

    name: ClassVar[str] = ""
    solvers: ClassVar[tuple[str, ...]] = ("oracle-relaxed",)

    def soft_predictions(self, margins: torch.Tensor, temperature: float) -> torch.Tensor:
        """Soft predictions of margins = score - threshold, shape (..., m) -> (..., m)."""
        raise NotImplementedError

    def gap(self, diff: torch.Tensor, temperature: float) -> torch.Tensor:
        """Smoothing of |diff| applied to each minority-minus-majority rate gap (default: |diff| itself)."""
        return diff.abs()

    def describe(self, temperature: float) -> str:
        """Short name with its parameter, e.g. ``sigmoid(T=0.1)``."""
        return f"{self.name}(T={temperature:g})"


_SURROGATES: dict[str, type[Surrogate]] = {}


def register_surrogate(name: str, *, solvers: tuple[str, ...] = ("oracle-relaxed",)):
    """Class decorator registering a :class:`Surrogate` subclass under ``name`` for the given solvers.

    Example::

        @register_surrogate("softplus-gap")
        class SoftplusGap(SigmoidSurrogate):
            def gap(self, diff, temperature):
                return temperature * (F.softplus(diff / temperature) + F.softplus(-diff / temperature))
    """
    check_registry_name("surrogate", name)

    def deco(cls: type) -> type:
        if not (isinstance(cls, type) and issubclass(cls, Surrogate)):
            raise FairflipError(f"register_surrogate('{name}') decorates Surrogate subclasses, got {cls!r}")
        cls.name = name
        cls.solvers = tuple(solvers)
        _SURROGATES[name] = cls
        return cls

    return deco


def get_surrogate(name: str, *, solver: str | None = None) -> Surrogate:
    """An instance of the surrogate registered as ``name``; with ``solver``, check it is registered for it."""
    from .plugins import load_env_plugins

    load_env_plugins()
    if name not in _SURROGATES:
        raise FairflipError(f"unknown surrogate {name!r}; choose one of {', '.join(_SURROGATES)}")
    cls = _SURROGATES[name]
    if solver is not None and solver not in cls.solvers:
        raise FairflipError(f"surrogate '{name}' is not registered with the solver '{solver}' (registered with: "
                            f"{', '.join(cls.solvers) or 'none'}); choose one of "
                            f"{', '.join(n for n, c in _SURROGATES.items() if solver in c.solvers)}")
    return cls()


def available_surrogates(solver: str | None = None) -> list[str]:
    """Names of the registered surrogates (those registered with ``solver`` when given)."""
    from .plugins import load_env_plugins

    load_env_plugins()
    return [n for n, c in _SURROGATES.items() if solver is None or solver in c.solvers]


@register_surrogate("sigmoid")
class SigmoidSurrogate(Surrogate):
    """q = sigmoid(margin / T): tends to the hard prediction as T -> 0."""

    def soft_predictions(self, margins, temperature):
        return sigmoid_predictions(margins, temperature)


@register_surrogate("hinge")
class HingeSurrogate(Surrogate):
    """q = max(0, 1 + margin / T): the convex hinge upper bound of 1[margin > 0] with width T."""

    def soft_predictions(self, margins, temperature):
        return hinge_predictions(margins, temperature)

    def describe(self, temperature):
        return f"hinge(width={temperature:g})"


@register_surrogate("mean-score", solvers=("oracle-relaxed", "oracle-convex"))
class MeanScoreSurrogate(Surrogate):
    """q = margin: rates become mean scores, affine in the flips for a ridge firm."""

    def soft_predictions(self, margins, temperature):
        return mean_score_predictions(margins)

    def describe(self, temperature):
        return "mean-score"


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
        objective: the objective it stands for: a registered name (eqod, eqod-worst, dp, eqopp, or a plugin's)
            or an :class:`~fairflip.objectives.Objective`.
        kind: a registered surrogate name (sigmoid, hinge, mean-score, or a plugin's).
        temperature: T of the sigmoid or width of the hinge (score units, > 0); unused by mean-score.
        error_weight: weight of the soft error added (the problem's ``error_weight``).
        solver: when given, the surrogate must be registered with this solver.
    """

    objective: str | Objective = "eqod"
    kind: SurrogateKind = "sigmoid"
    temperature: float = 0.1
    error_weight: float = 0.0
    solver: str | None = None

    def __post_init__(self) -> None:
        get_objective(self.objective)
        get_surrogate(self.kind, solver=self.solver)
        if not (self.temperature > 0) or math.isinf(self.temperature):
            raise FairflipError(f"surrogate temperature must be positive and finite, got {self.temperature!r}")
        if not self.error_weight >= 0:
            raise FairflipError(f"error_weight must be non-negative, got {self.error_weight}")

    @property
    def spec(self) -> Surrogate:
        """The registered :class:`Surrogate` instance."""
        return get_surrogate(self.kind)

    @property
    def name(self) -> str:
        """What it is, e.g. ``sigmoid(T=0.1) surrogate of eqod`` — never the bare metric name."""
        extra = f" + {self.error_weight:g} soft error" if self.error_weight else ""
        return f"{self.spec.describe(self.temperature)} surrogate of {get_objective(self.objective).name}{extra}"

    def with_temperature(self, temperature: float) -> "FairnessSurrogate":
        """The same surrogate at another temperature (for annealing)."""
        return replace(self, temperature=float(temperature))

    def soft_predictions(self, margins: torch.Tensor) -> torch.Tensor:
        """Soft predictions of margins = score - threshold, shape (..., m) -> (..., m)."""
        return self.spec.soft_predictions(margins, self.temperature)

    def __call__(self, margins: torch.Tensor, y: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Surrogate value of each row of margins.

        Args:
            margins: shape (..., m) scores minus the firm's score threshold.
            y: shape (m,) true labels in {0, 1} (the original labels, never the flipped ones).
            a: shape (m,) minority indicator.

        Returns:
            shape (...,) surrogate values.
        """
        spec = self.spec
        q = spec.soft_predictions(margins, self.temperature)
        value = get_objective(self.objective).soft_value(q, y, a, gap=lambda d: spec.gap(d, self.temperature))
        if self.error_weight:
            value = value + self.error_weight * smooth_error(q, y)
        return value
