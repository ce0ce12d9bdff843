"""Searches that score every flip set they visit by exact retraining: brute force (enumeration) and greedy.

Local search, and greedy with first-order shortlists, are in :mod:`fairflip.solvers.search`.

They only retrain the firm (``FlipProblem.objective_of``), so they work with any firm, linear or not. Linear
firms retrain a whole batch of flip sets at once (batched Newton), which is what makes them affordable here.
These are omniscient references: they read the whole training set and the firm, which no real collective can.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from fairflip._errors import FairflipError
from fairflip.methods import FlipMethod, FlipResult, SolveControl, register_method
from fairflip.problem import FlipProblem

# A strict improvement must beat the current value by more than this (objectives are ratios of counts, so
# genuine improvements are far larger; this only absorbs floating-point noise).
IMPROVE_TOL = 1e-12


def batched_objectives(problem: FlipProblem, flip_sets: list[np.ndarray], *, batch_size: int = 256,
                       around: np.ndarray | None = None, control: SolveControl | None = None) -> np.ndarray | None:
    """True objective of each flip set after exact retraining, in batches, shape (K,).

    ``around``: an optional flip set near all of them (see :meth:`FlipProblem.fit_flip_sets`). ``control``: an
    optional time limit, checked before each batch; None is returned when it passes before the last batch."""
    if batch_size < 1:
        raise FairflipError(f"batch_size must be a positive integer, got {batch_size}")
    out = []
    for s in range(0, len(flip_sets), batch_size):
        if control is not None and control.expired():
            return None
        out.append(problem.objective_of(flip_sets[s:s + batch_size], around=around))
    return np.concatenate(out) if out else np.zeros(0)


def greedy_path(problem: FlipProblem, budget: int, *, batch_size: int = 256,
                control: SolveControl | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Greedy forward selection with exact retraining at every step.

    Each step retrains the firm once per remaining candidate and adds the flip that most lowers the true
    objective; it stops early when no flip lowers it.

    Args:
        problem: the flip problem.
        budget: M, the most flips.
        batch_size: flip sets retrained at once.
        control: optional time limit and progress; past the limit the path ends where it is.

    Returns:
        (order (k,) the rows in the order added, k <= M; values (k + 1,) the objective after 0..k flips).
    """
    cands = problem.candidates
    order: list[int] = []
    values = [float(batched_objectives(problem, [np.zeros(0, dtype=np.int64)])[0])]
    remaining = list(cands)
    while len(order) < budget and remaining:
        if control is not None:
            if control.expired():
                break
            control.report(stage="greedy", done=len(order), total=budget, best=values[-1])
        trials = [np.array(order + [j], dtype=np.int64) for j in remaining]
        vals = batched_objectives(problem, trials, batch_size=batch_size, around=np.array(order, dtype=np.int64))
        best = int(np.argmin(vals))
        if vals[best] >= values[-1] - IMPROVE_TOL:
            break
        order.append(int(remaining.pop(best)))
        values.append(float(vals[best]))
    return np.array(order, dtype=np.int64), np.array(values)


@register_method("greedy")
class GreedyOracle(FlipMethod):
    """Greedy flips with exact retraining: an omniscient reference, not a strategy a collective can run.

    Cost: up to M * c retrainings (c candidates). Works with any firm. Its result has ``objective`` (the true
    objective of the flips) and ``status = "feasible"``; greedy proves nothing, so it reports no bound.

    Args:
        batch_size: flip sets retrained at once.
    """

    omniscient = True

    def __init__(self, batch_size: int = 256, *, seed: int = 0) -> None:
        super().__init__(seed=seed)
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise FairflipError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size = int(batch_size)

    def _select_many(self, problem: FlipProblem, budgets: list[int], control: SolveControl) -> list[FlipResult]:
        # Greedy adds one flip at a time, so the answer for budget M is the first M steps of one path.
        order, values = greedy_path(problem, max(budgets), batch_size=self.batch_size, control=control)
        hit = control.expired()
        out = []
        for M in budgets:
            k = min(M, len(order))
            cut = hit and k < min(M, len(problem.candidates))  # the clock, not the path, ended it
            out.append(FlipResult(flipped=np.sort(order[:k]), objective=float(values[k]),
                                  status="time_limit" if cut else "feasible", time_limit_hit=bool(cut),
                                  info={"objective_path": values[:k + 1].tolist(),
                                        "stopped_early": k < min(M, len(problem.candidates))}))
        return out


def count_flip_sets(n_candidates: int, budget: int) -> int:
    """Number of flip sets of size at most ``budget`` among ``n_candidates`` (the empty set included)."""
    return sum(math.comb(n_candidates, k) for k in range(min(budget, n_candidates) + 1))


def _flip_sets_by_size(cands: np.ndarray, budget: int) -> Iterator[np.ndarray]:
    """Every flip set of size 0..budget among ``cands`` (sorted rows), by size, then lexicographically."""
    for k in range(min(budget, len(cands)) + 1):
        for s in itertools.combinations(cands, k):
            yield np.array(s, dtype=np.int64)


@dataclass
class Enumeration:
    """The proven optimum of one budget found by :func:`enumerate_optimum`.

    Attributes:
        flipped: shape (k,) sorted rows of the best flip set (ties: smallest, then lexicographically first).
        objective: its true objective, the minimum over every flip set of size <= budget when ``complete``.
        n_sets: flip sets of size <= budget that were retrained.
        complete: True when every flip set within the budget was retrained (the optimum is then proven).
    """

    flipped: np.ndarray
    objective: float
    n_sets: int
    complete: bool


def enumerate_optimum(problem: FlipProblem, budgets: Sequence[int], *, batch_size: int = 512,
                      control: SolveControl | None = None) -> list[Enumeration]:
    """Retrain every flip set within the largest budget in batched passes; the exact optimum of each budget.

    Works with every firm (linear firms retrain ``batch_size`` sets per batched Newton solve; other firms one by
    one). The sets are visited by size, so when the time limit of ``control`` stops the pass, budgets whose sets
    were all retrained are still complete.

    Args:
        problem: the flip problem (c candidates).
        budgets: B budgets M_b >= 0.
        batch_size: flip sets retrained per batch.
        control: optional time limit and progress (``stage="enumeration"``, ``done``, ``total``, ``best``).

    Returns:
        B :class:`Enumeration`, in ``budgets`` order.
    """
    if batch_size < 1:
        raise FairflipError(f"batch_size must be a positive integer, got {batch_size}")
    cands = problem.candidates
    top = min(max(budgets, default=0), len(cands))
    total = count_flip_sets(len(cands), top)
    # best[k]: (value, set) of the best set of size exactly k; done[k]: sets of size k retrained.
    best: list[tuple[float, np.ndarray] | None] = [None] * (top + 1)
    done = [0] * (top + 1)
    sets = _flip_sets_by_size(cands, top)
    seen = 0
    while True:
        batch = list(itertools.islice(sets, batch_size))
        if not batch:
            break
        values = problem.objective_of(batch)
        for f, v in zip(batch, values):
            k = len(f)
            done[k] += 1
            if best[k] is None or v < best[k][0]:
                best[k] = (float(v), f)
        seen += len(batch)
        if control is not None:
            control.report(stage="enumeration", done=seen, total=total,
                           best=min(b[0] for b in best if b is not None))
            if control.expired() and seen < total:
                break
    out = []
    for M in budgets:
        top_m = min(M, len(cands))
        sizes = [k for k in range(top_m + 1) if best[k] is not None]
        k = min(sizes, key=lambda j: (best[j][0], j))  # ties: the smallest set
        complete = all(done[j] == math.comb(len(cands), j) for j in range(top_m + 1))
        out.append(Enumeration(best[k][1], best[k][0], sum(done[:top_m + 1]), complete))
    return out


def enumeration_cost(problem: FlipProblem, budget: int, *, probe: int = 32, max_sets: int = 10_000_000,
                     batch_size: int = 512) -> dict:
    """Estimated wall time of :func:`enumerate_optimum` for ``budget``: number of sets times a measured per-set cost.

    The portfolio (or any caller) compares ``seconds`` with its time budget to decide whether to enumerate and
    return the proven optimum (``bound_source = "enumeration"``). The per-set cost is measured by retraining
    ``probe`` random flip sets of the budget's size in one batch (the largest sets cost the most Newton steps).

    Args:
        problem: the flip problem (c candidates).
        budget: M.
        probe: flip sets retrained for the measurement (more = steadier, costs more).
        max_sets: above this many sets nothing is measured and ``seconds`` is ``inf``.
        batch_size: the batch size the enumeration would use (the probe uses min(probe, batch_size)).

    Returns:
        dict with ``n_sets`` (int), ``seconds_per_set`` (float, NaN when not measured) and ``seconds``
        (float, ``inf`` above ``max_sets``).
    """
    if probe < 1:
        raise FairflipError(f"probe must be a positive integer, got {probe}")
    cands = problem.candidates
    n_sets = count_flip_sets(len(cands), budget)
    if n_sets > max_sets:
        return {"n_sets": n_sets, "seconds_per_set": math.nan, "seconds": math.inf}
    k = min(budget, len(cands))
    rng = np.random.default_rng(0)
    sample = [np.sort(rng.choice(cands, size=k, replace=False)) for _ in range(min(probe, batch_size, n_sets))]
    start = time.perf_counter()
    problem.objective_of(sample)
    per = (time.perf_counter() - start) / len(sample)
    return {"n_sets": n_sets, "seconds_per_set": per, "seconds": per * n_sets}


@register_method("brute-force")
class BruteForceOracle(FlipMethod):
    """Every flip set of size at most M, each scored by exact retraining: the exact optimum on small instances.

    An omniscient reference, not a strategy. All budgets of one call share one batched enumeration (see
    :func:`enumerate_optimum`). Its optimum is a certified lower bound: ``lower_bound = objective``,
    ``bound_source = "enumeration"``, ``status = "optimal"``. When the time limit stops the enumeration before a
    budget's sets are all retrained, that budget gets its incumbent with ``status = "time_limit"`` and no bound.
    Ties go to the smallest set, then the first in lexicographic row order.

    Args:
        max_sets: refuse (FairflipError) when more flip sets than this would have to be retrained.
        batch_size: flip sets retrained at once.
    """

    omniscient = True

    def __init__(self, max_sets: int = 100_000, batch_size: int = 512, *, seed: int = 0) -> None:
        super().__init__(seed=seed)
        if not isinstance(max_sets, (int, np.integer)) or max_sets < 1:
            raise FairflipError(f"max_sets must be a positive integer, got {max_sets}")
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise FairflipError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.max_sets = int(max_sets)
        self.batch_size = int(batch_size)

    def _select_many(self, problem: FlipProblem, budgets: list[int], control: SolveControl) -> list[FlipResult]:
        cands = problem.candidates
        count = count_flip_sets(len(cands), max(budgets))
        if count > self.max_sets:
            raise FairflipError(
                f"brute force would retrain the firm {count} times ({len(cands)} candidates, budget "
                f"{max(budgets)}), more than max_sets={self.max_sets}; use a smaller budget or instance, or raise "
                "max_sets")
        found = enumerate_optimum(problem, budgets, batch_size=self.batch_size, control=control)
        out = []
        for e in found:
            result = FlipResult(flipped=e.flipped, objective=e.objective,
                                status="optimal" if e.complete else "time_limit", time_limit_hit=not e.complete,
                                info={"n_sets": e.n_sets, "objective": e.objective, "complete": e.complete})
            if e.complete:
                result.lower_bound, result.bound_source = e.objective, "enumeration"
            out.append(result)
        return out
