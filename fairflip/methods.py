"""One interface for every way of choosing flips: the paper's heuristics, baselines and the oracles.

A method answers one question: given a :class:`~fairflip.problem.FlipProblem` and one or more budgets, which
candidates flip? Heuristics (``omniscient = False``) only read ``problem.view()``; oracles read the whole problem.

The contract, the same for every method:

- ``get_method(name, seed=..., **params)`` builds it; every method takes ``seed`` (keyword) and stores it as
  ``self.seed``, so the seed is always passed explicitly and never guessed from a constructor's signature.
- ``method.select_many(problem, budgets, time_limit=..., progress=...)`` answers several budgets in one call and
  returns one typed :class:`FlipResult` per budget; ``select(problem, budget)`` is the one-budget shorthand.
  Heuristics answer by prefixes of one ranking, oracles share their search across budgets.
- Subclasses implement :meth:`FlipMethod._select_many` (or only :meth:`FlipMethod._select`, which the default
  ``_select_many`` calls per budget).

Methods register themselves by name with :func:`register_method`; the CLI, sweeps, gap tables, studies and
benchmarks look them up with :func:`get_method`. A user module registers its own the same way (see
:mod:`fairflip.plugins`).
"""

from __future__ import annotations

import importlib
import math
import time
from abc import ABC
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Literal, Sequence

import numpy as np

from ._errors import MAX_SEED, FairflipError, check_budget, check_registry_name, check_seed  # noqa: F401
# (MAX_SEED and check_seed are re-exported: seeds are part of the method interface)
from .problem import FlipProblem

Status = Literal["optimal", "feasible", "time_limit", "ranked", "error"]
"""How a result was reached: ``optimal`` (proven optimum, e.g. enumeration or a MILP closed to its gap),
``feasible`` (a flip set, no optimality proof), ``time_limit`` (stopped by the time limit; the incumbent),
``ranked`` (the top of a heuristic ranking), ``error`` (a solver failed; the no-flip set is returned)."""

BoundSource = Literal["enumeration", "milp-dual", "relaxation", "branch-and-bound", "trivial"]
"""Where a certified lower bound comes from: every flip set enumerated, a MILP solver's dual bound, an LP or
interval relaxation, branch and bound over flip sets with exact retraining at the leaves, or a trivial bound
(0, or a value every flip set reaches by construction)."""

PAPER_HEURISTICS: tuple[str, ...] = ("rb-prob", "rb-label", "rb-dist")
"""The paper's three ranking heuristics."""
HEURISTICS: tuple[str, ...] = ("random", *PAPER_HEURISTICS, "massaging")
"""Every strategy a real collective can run that fairflip ships: the paper's three, its random baseline and
massaging. The one list that gap tables, the oracle portfolio and studies use."""
ORACLES: tuple[str, ...] = ("oracle", "oracle-relaxed", "oracle-convex", "greedy", "brute-force")
"""The omniscient references fairflip ships."""

STATUSES: tuple[str, ...] = ("optimal", "feasible", "time_limit", "ranked", "error")
BOUND_SOURCES: tuple[str, ...] = ("enumeration", "milp-dual", "relaxation", "branch-and-bound", "trivial")
BOUND_TOLERANCE = 1e-9
"""A certified bound may exceed an evaluated objective by at most this much (floating-point rounding)."""


@dataclass
class FlipResult:
    """The answer of a method for one budget.

    Attributes:
        flipped: shape (k,) sorted int64 training-row indices to flip, k <= budget.
        scores: shape (c,) score of each candidate (in ``problem.candidates`` order) when the method ranks them,
            else None.
        objective: the *true* objective of ``flipped`` (hard-threshold metric after exact retraining, on the
            problem's evaluation rows) when the method measured it, else None. Never a surrogate's value.
        solver_objective: the solver's own value for its answer (a surrogate, a linearisation, a MILP's
            objective), named by ``info["solver_objective_kind"]`` when known; None when there is none.
        status: one of :data:`STATUSES`.
        lower_bound: a certified lower bound on the true objective over all flip sets within the budget, or
            None when the method has none (never a surrogate's value).
        bound_source: one of :data:`BOUND_SOURCES` when ``lower_bound`` is set, else None.
        bound_inconsistent: True when the reported bound was found above an evaluated flip set's true objective
            (so it is not a proof); ``lower_bound`` is then None and the offending value is in
            ``info["rejected_bound"]``.
        mip_gap: the solver's relative MIP gap when a MILP produced the bound, else None.
        time_limit: the time limit (seconds) the method ran under, or None.
        time_limit_hit: True when the method stopped because of the time limit.
        solver: the solver and its version (e.g. ``"HIGHS 1.11.0"``) when one was used, else None.
        runtime_s: wall time of the call that produced this result, shared evenly across the budgets of one
            :meth:`FlipMethod.select_many` call.
        info: method-specific diagnostics (iterations, components, surrogate values, ...).
    """

    flipped: np.ndarray
    scores: np.ndarray | None = None
    objective: float | None = None
    solver_objective: float | None = None
    status: str = "feasible"
    lower_bound: float | None = None
    bound_source: str | None = None
    bound_inconsistent: bool = False
    mip_gap: float | None = None
    time_limit: float | None = None
    time_limit_hit: bool = False
    solver: str | None = None
    runtime_s: float | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise FairflipError(f"FlipResult status must be one of {', '.join(STATUSES)}, got {self.status!r}")
        if self.bound_source is not None and self.bound_source not in BOUND_SOURCES:
            raise FairflipError(f"FlipResult bound_source must be one of {', '.join(BOUND_SOURCES)}, "
                                f"got {self.bound_source!r}")

    def check_bound(self, evaluated: float | None = None) -> None:
        """Withdraw ``lower_bound`` if it lies above a true objective already evaluated (``objective`` or
        ``evaluated``): such a bound is no proof. Sets ``bound_inconsistent`` and keeps the value in
        ``info["rejected_bound"]``."""
        if self.lower_bound is None:
            return
        known = [v for v in (self.objective, evaluated) if v is not None and math.isfinite(v)]
        if known and self.lower_bound > min(known) + BOUND_TOLERANCE:
            self.info["rejected_bound"] = float(self.lower_bound)
            self.info["rejected_bound_source"] = self.bound_source
            self.lower_bound = None
            self.bound_source = None
            self.bound_inconsistent = True

    def as_dict(self) -> dict[str, Any]:
        """The typed fields as plain JSON-ready values (``flipped`` as a list; ``scores`` and ``info`` left out)."""
        return {"flipped": [int(i) for i in self.flipped], "n_flipped": int(len(self.flipped)),
                "objective": self.objective, "solver_objective": self.solver_objective, "status": self.status,
                "lower_bound": self.lower_bound, "bound_source": self.bound_source,
                "bound_inconsistent": self.bound_inconsistent, "mip_gap": self.mip_gap,
                "time_limit": self.time_limit, "time_limit_hit": self.time_limit_hit, "solver": self.solver,
                "runtime_s": self.runtime_s}


ProgressFn = Callable[[dict[str, Any]], None]
"""Progress callback: receives a dict with any of ``stage`` (str), ``done``/``total`` (numbers),
``best`` (the incumbent's true objective) and ``bound`` (the best certified bound)."""


@dataclass
class SolveControl:
    """Time limit and progress reporting for one :meth:`FlipMethod.select_many` call.

    Attributes:
        time_limit: seconds after ``start`` when the method must return its incumbent, or None for no limit.
        progress: callback (see :data:`ProgressFn`) or None.
        start: ``time.perf_counter()`` when the call began.
    """

    time_limit: float | None = None
    progress: ProgressFn | None = None
    start: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        if self.time_limit is not None:
            t = float(self.time_limit)
            if not math.isfinite(t) or t <= 0:
                raise FairflipError(f"time_limit must be a positive number of seconds, got {self.time_limit!r}")
            self.time_limit = t

    def elapsed(self) -> float:
        """Seconds since the call began."""
        return time.perf_counter() - self.start

    def remaining(self) -> float:
        """Seconds left before the time limit (``inf`` without one; never negative)."""
        if self.time_limit is None:
            return math.inf
        return max(0.0, self.time_limit - self.elapsed())

    def expired(self) -> bool:
        """True once the time limit has passed."""
        return self.time_limit is not None and self.elapsed() >= self.time_limit

    def report(self, **fields: Any) -> None:
        """Send ``fields`` to the progress callback, if any (e.g. ``stage="local search", best=0.12``)."""
        if self.progress is not None:
            self.progress(fields)


class FlipMethod(ABC):
    """Base class of every method: subclasses set ``name`` (by :func:`register_method`) and implement
    :meth:`_select_many` or :meth:`_select`.

    Args:
        seed: the method's random seed (every method takes one, whether or not it draws random numbers).
    """

    name: ClassVar[str] = ""
    omniscient: ClassVar[bool] = False
    """True for oracles, which read the whole training set and the firm; False for real strategies."""

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = check_seed(seed)

    def select(self, problem: FlipProblem, budget: int, *, time_limit: float | None = None,
               progress: ProgressFn | None = None) -> FlipResult:
        """Choose at most ``budget`` candidates to flip (shorthand for one budget of :meth:`select_many`)."""
        return self.select_many(problem, [budget], time_limit=time_limit, progress=progress)[0]

    def select_many(self, problem: FlipProblem, budgets: Sequence[int], *, time_limit: float | None = None,
                    progress: ProgressFn | None = None) -> list[FlipResult]:
        """Choose flips for several budgets in one call.

        Args:
            problem: the flip problem (n training rows, c candidates).
            budgets: B budgets M_b >= 0 (counts).
            time_limit: seconds after which an oracle returns its incumbent with status ``time_limit``.
            progress: optional callback receiving progress dicts (see :data:`ProgressFn`).

        Returns:
            B :class:`FlipResult`, in ``budgets`` order, each with ``flipped`` candidates, unique, at most M_b.
        """
        budgets = [check_budget(b) for b in budgets]
        control = SolveControl(time_limit=time_limit, progress=progress)
        results = self._select_many(problem, budgets, control) if budgets else []
        if len(results) != len(budgets):
            raise RuntimeError(f"method '{self.name}' answered {len(results)} budgets of {len(budgets)}")
        share = control.elapsed() / max(len(budgets), 1)
        for result, M in zip(results, budgets):
            result.flipped = problem.check_flips(result.flipped, M)
            result.time_limit = control.time_limit
            if result.runtime_s is None:
                result.runtime_s = share
            result.check_bound()
        return results

    def _select_many(self, problem: FlipProblem, budgets: list[int], control: SolveControl) -> list[FlipResult]:
        """Default: one :meth:`_select` per budget, stopping early (status ``time_limit``, no flips) once the
        time limit has passed."""
        out = []
        for M in budgets:
            if control.expired():
                out.append(FlipResult(flipped=np.zeros(0, dtype=np.int64), status="time_limit",
                                      time_limit_hit=True))
                continue
            out.append(self._select(problem, M))
        return out

    def _select(self, problem: FlipProblem, budget: int) -> FlipResult:
        raise NotImplementedError(f"method '{self.name}' implements neither _select nor _select_many")


_REGISTRY: dict[str, Callable[..., FlipMethod]] = {}
# Modules whose import registers the built-in methods (kept lazy so that importing fairflip stays light).
_BUILTIN_MODULES = ("fairflip.strategies", "fairflip.solvers")


def register_method(name: str) -> Callable[[type], type]:
    """Class decorator registering a :class:`FlipMethod` subclass under ``name`` (also set as its ``name``).

    The class must accept ``seed`` as a keyword argument. Registering a name twice replaces the earlier class
    (so a plugin can override a built-in on purpose).
    """
    check_registry_name("method", name)

    def deco(cls: type) -> type:
        if not (isinstance(cls, type) and issubclass(cls, FlipMethod)):
            raise FairflipError(f"register_method('{name}') decorates FlipMethod subclasses, got {cls!r}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def _load_builtins() -> None:
    for mod in _BUILTIN_MODULES:
        importlib.import_module(mod)
    from .plugins import load_env_plugins

    load_env_plugins()


def available_methods() -> list[str]:
    """Names of all registered methods, sorted."""
    _load_builtins()
    return sorted(_REGISTRY)


def method_class(name: str) -> type:
    """The class registered under ``name`` (clear error naming the choices when unknown)."""
    _load_builtins()
    if name not in _REGISTRY:
        raise FairflipError(f"unknown method '{name}'; choose one of {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def get_method(name: str, *, seed: int = 0, **params: Any) -> FlipMethod:
    """Instantiate the method ``name`` with its seed and keyword parameters (e.g. ``k=10`` for rb-label)."""
    cls = method_class(name)
    try:
        return cls(seed=seed, **params)
    except TypeError as exc:
        raise FairflipError(f"bad parameters for method '{name}': {exc}") from exc

