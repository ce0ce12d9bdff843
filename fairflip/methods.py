"""One interface for every way of choosing flips: the paper's heuristics, baselines and the oracles.

A method answers one question: given a :class:`~fairflip.problem.FlipProblem` and a budget M, which candidates
flip? Heuristics (``omniscient = False``) only read ``problem.view()``; oracles read the whole problem.
Methods register themselves by name with :func:`register_method`; the CLI, sweeps and benchmarks look them up
with :func:`get_method`, so all treat every method alike.
"""

from __future__ import annotations

import importlib
import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import numpy as np

from ._errors import FairflipError, check_budget
from .problem import FlipProblem


@dataclass
class FlipResult:
    """The answer of a method.

    Attributes:
        flipped: shape (k,) sorted int64 training-row indices to flip, k <= budget.
        scores: shape (c,) score of each candidate (in ``problem.candidates`` order) when the method ranks them,
            else None.
        lower_bound: a certified lower bound on the true objective over all flip sets within the budget, or
            None when the method has none (never a surrogate's value).
        info: method-specific diagnostics (solver status, MIP gap, iterations, surrogate values, ...).
    """

    flipped: np.ndarray
    scores: np.ndarray | None = None
    lower_bound: float | None = None
    info: dict[str, Any] = field(default_factory=dict)


class FlipMethod(ABC):
    """Base class: subclasses set ``name`` and implement :meth:`_select`."""

    name: ClassVar[str] = ""
    omniscient: ClassVar[bool] = False
    """True for oracles, which read the whole training set and the firm; False for real strategies."""

    def select(self, problem: FlipProblem, budget: int) -> FlipResult:
        """Choose at most ``budget`` candidates to flip.

        Args:
            problem: the flip problem (n training rows, c candidates).
            budget: M >= 0, the most flips allowed.

        Returns:
            a :class:`FlipResult` whose ``flipped`` are candidates, unique, at most M of them.
        """
        budget = check_budget(budget)
        result = self._select(problem, budget)
        result.flipped = problem.check_flips(result.flipped, budget)
        return result

    @abstractmethod
    def _select(self, problem: FlipProblem, budget: int) -> FlipResult: ...


_REGISTRY: dict[str, Callable[..., FlipMethod]] = {}
# Modules whose import registers the built-in methods (kept lazy so that importing fairflip stays light).
_BUILTIN_MODULES = ("fairflip.strategies", "fairflip.solvers")


def register_method(name: str) -> Callable[[type], type]:
    """Class decorator registering a :class:`FlipMethod` subclass under ``name`` (also set as its ``name``)."""

    def deco(cls: type) -> type:
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def _load_builtins() -> None:
    for mod in _BUILTIN_MODULES:
        importlib.import_module(mod)


def available_methods() -> list[str]:
    """Names of all registered methods, sorted."""
    _load_builtins()
    return sorted(_REGISTRY)


def get_method(name: str, **params: Any) -> FlipMethod:
    """Instantiate the method ``name`` with keyword parameters (e.g. ``k=10`` for rb-label)."""
    _load_builtins()
    if name not in _REGISTRY:
        raise FairflipError(f"unknown method '{name}'; choose one of {', '.join(sorted(_REGISTRY))}")
    try:
        return _REGISTRY[name](**params)
    except TypeError as exc:
        raise FairflipError(f"bad parameters for method '{name}': {exc}") from exc


def get_seeded_method(name: str, seed: int, **params: Any) -> FlipMethod:
    """:func:`get_method` with ``seed=seed`` added when the method's constructor takes a seed (and none is given)."""
    _load_builtins()
    cls = _REGISTRY.get(name)
    if cls is not None and "seed" in inspect.signature(cls.__init__).parameters:
        params.setdefault("seed", seed)
    return get_method(name, **params)
