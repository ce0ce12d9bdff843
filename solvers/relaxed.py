"""``oracle-relaxed``: soft flips z in [0, 1]^c optimised by projected hypergradient descent, then rounded.

The oracle is omniscient: it reads the whole training set and differentiates through the firm's exact training
procedure. It is a reference bounding what a collective could achieve, not a strategy a collective can run.

Steps, for several budgets M_1..M_B at once (one relaxed vector per budget, solved in one batch):

1. z_b starts uniform (M_b / c each). Each iteration retrains the firm on the soft labels y_i + z_i (1 - 2 y_i)
   (damped Newton warm-started from the previous iterate), takes the hypergradient of a smooth surrogate of the
   objective (implicit by default, unrolled as an ablation, see :mod:`fairflip.solvers.hypergrad`), and makes a
   projected step onto {0 <= z <= 1, sum z <= M_b} (exact Euclidean projection). The sigmoid temperature is
   annealed from ``temperature_start`` to ``temperature_end``.
2. Rounding: candidates are ordered by z (ties by the hypergradient); the prefixes of sizes 0..M_b (at most
   ``max_prefixes`` sizes evenly spread over 0..M_b for large budgets) are retrained exactly and the best *true*
   objective wins.
3. Local search (add, drop, swap, each with exact retraining) polishes it until no move improves.

Only the true objective after exact retraining is ever reported as the objective; the surrogate's value is
recorded in ``info`` under its own name. ``lower_bound`` is None: nothing here certifies a bound.
"""

from __future__ import annotations

import time
from typing import Literal

import numpy as np
import torch

from fairflip._errors import FairflipError, check_budget
from fairflip.firms import require_differentiable
from fairflip.methods import FlipMethod, FlipResult, SolveControl, register_method
from fairflip.problem import FlipProblem
from fairflip.surrogates import FairnessSurrogate, SurrogateKind, TemperatureSchedule

from .exact import batched_objectives, local_search
from .hypergrad import LinearSolver, SoftFlipBilevel, UnrollKind, implicit_hypergradient, unrolled_hypergradient


def project_capped_simplex(z: torch.Tensor, budgets: torch.Tensor, *, iterations: int = 200) -> torch.Tensor:
    """Exact Euclidean projection of each row of z onto {x : 0 <= x <= 1, sum x <= M}.

    The KKT conditions give x = clip(z - tau, 0, 1) with tau = 0 when that already sums to at most M, else the
    tau > 0 at which the sum equals M. tau is bracketed by bisection, then computed in closed form on the
    active set the bracket identifies (so the result is exact up to rounding, not up to the bisection width).

    Args:
        z: shape (B, c) points.
        budgets: shape (B,) capacities M >= 0.
        iterations: bisection steps before the closed-form finish.

    Returns:
        shape (B, c) projections.
    """
    budgets = budgets.to(z)
    if bool((budgets < 0).any()):
        raise FairflipError("projection budgets must be non-negative")
    clipped = z.clamp(0.0, 1.0)
    need = clipped.sum(-1) > budgets
    if not bool(need.any()):
        return clipped
    lo = torch.zeros_like(budgets)
    hi = z.max(-1).values.clamp_min(0.0)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        over = (z - mid[:, None]).clamp(0.0, 1.0).sum(-1) > budgets
        lo = torch.where(over, mid, lo)
        hi = torch.where(over, hi, mid)
    # On the bracket's side of the solution: rows at the cap (z - tau >= 1), rows strictly inside, rows at 0.
    tau = 0.5 * (lo + hi)
    upper = (z - tau[:, None]) >= 1.0
    free = ((z - tau[:, None]) > 0.0) & ~upper
    n_free = free.sum(-1)
    exact = ((z * free).sum(-1) + upper.sum(-1) - budgets) / n_free.clamp_min(1)
    tau = torch.where(n_free > 0, exact, tau)
    out = (z - tau[:, None]).clamp(0.0, 1.0)
    return torch.where(need[:, None], out, clipped)


def prefix_sizes(budget: int, n_candidates: int, limit: int) -> np.ndarray:
    """Prefix sizes the rounding retrains: 0..min(M, c), or ``limit`` sizes evenly spread over it, shape (<= limit,)."""
    top = min(budget, n_candidates)
    if top + 1 <= limit:
        return np.arange(top + 1)
    return np.unique(np.round(np.linspace(0, top, limit)).astype(np.int64))


def soft_flip_bilevel(problem: FlipProblem, surrogate: FairnessSurrogate) -> SoftFlipBilevel:
    """The relaxed bilevel problem of a flip problem with a linear firm (objective on the validation split when
    the problem has one, else on the training rows with their original labels)."""
    firm = problem.firm
    require_differentiable(firm, "the relaxed oracle")
    dev, dt = firm.torch_device, firm.dtype
    # The problem's device cache: the design matrix is transferred once, the unflipped optimum warm-starts every
    # inner solve and its Hessian (large p) preconditions them.
    cache = problem.linear_cache()
    X_eval, y_eval, a_eval = (problem.X, problem.y, problem.a) if problem.validation is None else problem.validation
    return SoftFlipBilevel(
        firm=firm,
        Xd=cache["Xd"],
        y=torch.as_tensor(problem.y, dtype=dt, device=dev),
        rows=torch.as_tensor(problem.candidates, dtype=torch.int64, device=dev),
        X_eval=cache["Xd"] if problem.validation is None else firm.design(X_eval),
        y_eval=torch.as_tensor(y_eval, device=dev),
        a_eval=torch.as_tensor(a_eval, device=dev),
        surrogate=surrogate,
        sample_weight=cache["sw"],
        hessian_factor=cache["factor"],
        theta_start=cache["theta0"],
    )


def toggle_gains(bilevel: SoftFlipBilevel, flipped_mask: np.ndarray, *, solver: LinearSolver = "auto") -> np.ndarray:
    """First-order gain of toggling each candidate from the integral point z = flipped_mask, shape (c,).

    Positive = the surrogate decreases when an unflipped candidate is added or a flipped one is dropped.
    """
    z = torch.as_tensor(flipped_mask, dtype=bilevel.Xd.dtype, device=bilevel.Xd.device)[None]
    theta = bilevel.inner(z)
    _, g = implicit_hypergradient(bilevel, z, theta, solver=solver)
    return (-g[0] * (1.0 - 2.0 * z[0])).cpu().numpy()


def make_ranker(problem: FlipProblem, bilevel: SoftFlipBilevel, *, solver: LinearSolver = "auto"):
    """A local-search ranker (flip set -> toggle gains (c,)) from the surrogate's hypergradient."""
    cands = problem.candidates

    def rank(flipped: np.ndarray) -> np.ndarray:
        return toggle_gains(bilevel, np.isin(cands, flipped), solver=solver)

    return rank


@register_method("oracle-relaxed")
class RelaxedOracle(FlipMethod):
    """Soft-label relaxation of the oracle with hypergradients, rounding and local search (linear firms).

    Omniscient: a reference bounding what a collective could do, not a strategy a real collective can run.

    Args:
        surrogate: smooth stand-in of the objective: ``sigmoid`` (default), ``hinge`` or ``mean-score``.
        temperature: a fixed temperature (sigmoid T or hinge width); None anneals from ``temperature_start``
            to ``temperature_end`` (geometric schedule).
        temperature_start, temperature_end: the annealing range (score units).
        steps: projected-gradient iterations.
        lr: the largest coordinate move of z per iteration at the start (decays linearly to a tenth).
        gradient: ``implicit`` (default) or ``unrolled`` hypergradients.
        unroll_steps, unroll_kind: K and ``newton``/``gradient`` for the unrolled variant.
        linear_solver: Hessian solve of the implicit gradient: ``auto``, ``cholesky`` or ``cg``.
        local_search: polish the rounded flips by add/drop/swap moves with exact retraining.
        neighbourhood, swap_shortlist, max_evaluations: local-search limits (see ``local_search``).
        batch_size: flip sets retrained at once.
        max_prefixes: the most prefix sizes the rounding retrains per budget (all of 0..M when M < max_prefixes,
            else that many evenly spread sizes including 0 and M; local search refines the size).
    """

    omniscient = True

    def __init__(
        self,
        *,
        surrogate: SurrogateKind = "sigmoid",
        temperature: float | None = None,
        temperature_start: float = 1.0,
        temperature_end: float = 0.05,
        steps: int = 100,
        lr: float = 0.25,
        gradient: Literal["implicit", "unrolled"] = "implicit",
        unroll_steps: int = 5,
        unroll_kind: UnrollKind = "newton",
        linear_solver: LinearSolver = "auto",
        local_search: bool = True,
        neighbourhood: int = 64,
        swap_shortlist: int = 16,
        max_evaluations: int = 20_000,
        batch_size: int = 256,
        max_prefixes: int = 64,
        seed: int = 0,
    ) -> None:
        super().__init__(seed=seed)
        if gradient not in ("implicit", "unrolled"):
            raise FairflipError(f"gradient must be implicit or unrolled, got {gradient!r}")
        if steps < 0 or not lr > 0:
            raise FairflipError(f"steps must be >= 0 and lr > 0, got steps={steps}, lr={lr}")
        self.schedule = (TemperatureSchedule(temperature, temperature, "constant") if temperature is not None
                         else TemperatureSchedule(temperature_start, temperature_end, "geometric"))
        self.surrogate = FairnessSurrogate(kind=surrogate, temperature=self.schedule.start, solver="oracle-relaxed")
        self.steps, self.lr = steps, lr
        self.gradient, self.unroll_steps, self.unroll_kind = gradient, unroll_steps, unroll_kind
        self.linear_solver = linear_solver
        self.local_search = local_search
        self.neighbourhood, self.swap_shortlist = neighbourhood, swap_shortlist
        self.max_evaluations, self.batch_size = max_evaluations, batch_size
        if max_prefixes < 2:
            raise FairflipError(f"max_prefixes must be at least 2 (sizes 0 and M), got {max_prefixes}")
        self.max_prefixes = max_prefixes

    def _select_many(self, problem: FlipProblem, budgets: list[int], control: SolveControl) -> list[FlipResult]:
        """Solve several budgets at once (one relaxed vector each, optimised in one batch).

        Args:
            problem: the flip problem (c candidates, linear firm).
            budgets: B budgets M_b >= 0.

        Returns:
            B :class:`FlipResult`, in the order of ``budgets``.
        """
        start = time.perf_counter()
        budgets = [check_budget(b) for b in budgets]
        surrogate = FairnessSurrogate(problem.objective, self.surrogate.kind, self.schedule.start,
                                      problem.error_weight)
        bilevel = soft_flip_bilevel(problem, surrogate)
        z, grad, value = self._optimise(bilevel, budgets)
        relax_time = time.perf_counter() - start
        cands = problem.candidates
        # Order by z, ties by the hypergradient (the more negative, the more promising).
        orders = [np.lexsort((grad[b], -z[b])) for b in range(len(budgets))]
        prefixes = [[np.sort(cands[orders[b][:k]]) for k in prefix_sizes(M, len(cands), self.max_prefixes)]
                    for b, M in enumerate(budgets)]
        flat = [s for sets in prefixes for s in sets]
        values = batched_objectives(problem, flat, batch_size=self.batch_size)
        ranker = make_ranker(problem, bilevel, solver=self.linear_solver) if self.local_search else None
        results, offset = [], 0
        for b, M in enumerate(budgets):
            vals = values[offset:offset + len(prefixes[b])]
            offset += len(prefixes[b])
            k = int(np.argmin(vals))
            info = {"surrogate": bilevel.surrogate.name, "surrogate_value": float(value[b]),
                    "temperature_schedule": [self.schedule.kind, self.schedule.start, self.schedule.end],
                    "gradient": self.gradient, "steps": self.steps, "relaxation_time_s": relax_time,
                    "rounded_size": len(prefixes[b][k]), "rounded_objective": float(vals[k]),
                    "relaxed_mass": float(z[b].sum())}
            flipped, objective = prefixes[b][k], float(vals[k])
            if self.local_search:
                found = local_search(problem, flipped, M, ranker=ranker, neighbourhood=self.neighbourhood,
                                     swap_shortlist=self.swap_shortlist, max_evaluations=self.max_evaluations,
                                     batch_size=self.batch_size)
                flipped, objective = found.flipped, found.objective
                info.update(local_search_moves=found.rounds, local_search_evaluations=found.evaluations,
                            local_search_converged=found.converged)
            info["objective"] = objective
            info["time_s"] = time.perf_counter() - start
            scores = np.asarray(z[b])
            results.append(FlipResult(flipped=flipped, scores=scores, info=info))
        return results

    def _optimise(self, bilevel: SoftFlipBilevel, budgets: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Projected hypergradient descent; returns z (B, c), the last hypergradient (B, c), surrogate (B,)."""
        dev, dt = bilevel.Xd.device, bilevel.Xd.dtype
        c = len(bilevel.rows)
        M = torch.tensor(budgets, dtype=dt, device=dev)
        z = (M[:, None] / max(c, 1)).clamp(max=1.0).expand(len(budgets), c).clone()
        base = bilevel.inner(torch.zeros_like(z[:1]))
        theta = base.expand(len(budgets), -1).clone()
        grad = torch.zeros_like(z)
        value = torch.full((len(budgets),), float("nan"), dtype=dt, device=dev)
        surrogate = bilevel.surrogate
        for t in range(self.steps):
            bilevel.surrogate = surrogate.with_temperature(self.schedule.at(t, self.steps))
            if self.gradient == "implicit":
                theta = bilevel.inner(z, init=theta)
                value, grad = implicit_hypergradient(bilevel, z, theta, solver=self.linear_solver)
            else:
                value, grad, theta = unrolled_hypergradient(bilevel, z, theta, steps=self.unroll_steps,
                                                            kind=self.unroll_kind)
            # Normalised step: the surrogate's gradient scale changes by orders of magnitude as T anneals.
            scale = grad.abs().amax(-1, keepdim=True).clamp_min(torch.finfo(dt).tiny)
            lr = self.lr * (1.0 - 0.9 * t / max(self.steps - 1, 1))
            z = project_capped_simplex(z - lr * grad / scale, M)
        return z.cpu().numpy(), grad.cpu().numpy(), value.cpu().numpy()
