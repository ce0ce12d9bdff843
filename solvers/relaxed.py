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
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from fairflip._errors import FairflipError, check_budget
from fairflip.firms import require_differentiable
from fairflip.methods import FlipMethod, FlipResult, SolveControl, register_method
from fairflip.problem import FlipProblem
from fairflip.surrogates import FairnessSurrogate, SurrogateKind, TemperatureSchedule

from .exact import batched_objectives
from .hypergrad import LinearSolver, SoftFlipBilevel, UnrollKind, implicit_hypergradient, unrolled_hypergradient
from .influence import influence_screen
from .search import ranked_local_search, threads_for


@dataclass
class Relaxation:
    """The relaxed solution of B budgets (see :meth:`RelaxedOracle.relax`).

    Attributes:
        bilevel: the relaxed bilevel problem (its surrogate at the final temperature).
        z: shape (B, c) relaxed flips; grad: shape (B, c) the last hypergradient; value: shape (B,) the
            surrogate's value at the last step (NaN when no step ran).
        steps_run: projected-gradient steps made; seconds: wall time.
    """

    bilevel: SoftFlipBilevel
    z: np.ndarray
    grad: np.ndarray
    value: np.ndarray
    steps_run: int
    seconds: float


TRACK_MAX_STEP = 0.02
"""The largest Newton step (max-norm, in parameter units) the relaxation takes as its inner solve without solving
to the firm's tolerance (see :meth:`RelaxedOracle._track`; it applies where the exact Hessians are formed, small
p: COMPAS and Law among the ablation's datasets, not German, Communities and Crime or Dutch). Over M = 10, 25, 50,
100 the steps were at most 0.012 on COMPAS and 0.006 on Law, and on COMPAS the one-step error was at most 0.76
times the step squared (7e-5)."""
LARGE_ENTRIES = 200_000
"""Design matrices with more entries (n * p) than this get the large-instance settings (see
:meth:`RelaxedOracle.settings`)."""
AUTO_SMALL = {"steps": 100, "neighbourhood": 64, "swap_shortlist": 16, "max_evaluations": 20_000,
              "batch_size": 256, "max_prefixes": 64}
AUTO_LARGE = {"steps": 5, "neighbourhood": 16, "swap_shortlist": 4, "max_evaluations": 50, "batch_size": 64,
              "max_prefixes": 16}


def project_capped_simplex(z: torch.Tensor, budgets: torch.Tensor) -> torch.Tensor:
    """Exact Euclidean projection of each row of z onto {x : 0 <= x <= 1, sum x <= M}.

    The KKT conditions give x = clip(z - tau, 0, 1) with tau = 0 when that already sums to at most M, else the
    tau > 0 at which the sum equals M. That sum s(tau) is continuous, non-increasing and linear between the
    breakpoints z_i and z_i - 1, so it is evaluated at every breakpoint at once (sorted z, prefix sums and
    binary searches: O(c log c) per row, no iteration) and tau is interpolated on the segment that brackets M:
    exact up to rounding.

    Args:
        z: shape (B, c) points.
        budgets: shape (B,) capacities M >= 0.

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
    c = z.shape[-1]
    ordered = torch.sort(z, dim=-1).values
    prefix = torch.cat([torch.zeros_like(ordered[:, :1]), ordered.cumsum(-1)], dim=-1)  # (B, c + 1)

    def total(t: torch.Tensor) -> torch.Tensor:
        """s(t) for taus t (B, m): rows at the cap (z >= t + 1) count 1, rows in (t, t + 1) count z - t."""
        top = torch.searchsorted(ordered, t + 1.0)             # first z >= t + 1
        low = torch.searchsorted(ordered, t, right=True)       # first z > t
        inside = (prefix.gather(-1, top) - prefix.gather(-1, low)) - (top - low).to(z) * t
        return (c - top).to(z) + inside

    taus = torch.sort(torch.cat([ordered, ordered - 1.0, torch.zeros_like(ordered[:, :1])], -1).clamp_min(0.0),
                      dim=-1).values                             # (B, 2c + 1), ascending, starts at 0
    sums = total(taus)                                           # non-increasing in tau
    # The last breakpoint whose sum is still >= M (tau = 0 qualifies for every row that needs projecting).
    k = ((sums >= budgets[:, None]).sum(-1) - 1).clamp(0, taus.shape[-1] - 2)[:, None]
    t0, t1 = taus.gather(-1, k), taus.gather(-1, k + 1)
    s0, s1 = sums.gather(-1, k), sums.gather(-1, k + 1)
    drop = s0 - s1
    fraction = torch.where(drop > 0, (s0 - budgets[:, None]) / torch.where(drop > 0, drop, 1.0), 0.0)
    tau = (t0 + fraction.clamp(0.0, 1.0) * (t1 - t0)).squeeze(-1)
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
    # The firm's training state on the problem's rows: the design matrix is transferred once, the unflipped
    # optimum warm-starts every inner solve and its Hessian (large p) preconditions them.
    cache = problem.training_state()
    X_eval, y_eval, a_eval = problem.evaluation_set
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


def toggle_gains(bilevel: SoftFlipBilevel, flipped_mask: np.ndarray, *, solver: LinearSolver = "auto",
                 model=None) -> np.ndarray:
    """First-order gain of toggling each candidate from the integral point z = flipped_mask, shape (c,).

    Positive = the surrogate decreases when an unflipped candidate is added or a flipped one is dropped.
    ``model``: the firm's local model at this flip set's optimum when already known (e.g.
    :meth:`FlipProblem.local_model`); its optimum and Hessian factor are then used instead of a solve.
    """
    z = torch.as_tensor(flipped_mask, dtype=bilevel.Xd.dtype, device=bilevel.Xd.device)[None]
    if model is None:
        _, g = implicit_hypergradient(bilevel, z, bilevel.inner(z), solver=solver)
    else:
        _, g = implicit_hypergradient(bilevel, z, model.theta[None], factor=model.factor[None])
    return (-g[0] * (1.0 - 2.0 * z[0])).cpu().numpy()


def make_ranker(problem: FlipProblem, bilevel: SoftFlipBilevel, *, solver: LinearSolver = "auto"):
    """A local-search ranker (flip set -> toggle gains (c,)) from the surrogate's hypergradient.

    The flip set's optimum and Hessian factor come from the problem's local model (shared with the search's
    retraining around the same set) when the solver is ``auto`` or ``cholesky``; for large p that factor is the
    unflipped Hessian's (see :meth:`FlipProblem.local_model`), so the gains are then approximate, which only
    changes the order in which moves are tried."""
    cands = problem.candidates

    def rank(flipped: np.ndarray) -> np.ndarray:
        model = problem.local_model(flipped) if solver in ("auto", "cholesky") else None
        return toggle_gains(bilevel, np.isin(cands, flipped), solver=solver, model=model)

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
        steps: projected-gradient iterations (None: automatic, see :meth:`settings`; likewise for
            ``neighbourhood``, ``swap_shortlist``, ``max_evaluations``, ``batch_size`` and ``max_prefixes``).
        lr: the largest coordinate move of z per iteration at the start (decays linearly to a tenth).
        gradient: ``implicit`` (default) or ``unrolled`` hypergradients.
        unroll_steps, unroll_kind: K and ``newton``/``gradient`` for the unrolled variant.
        linear_solver: Hessian solve of the implicit gradient: ``auto``, ``cholesky`` or ``cg``.
        local_search: polish the rounded flips by add/drop/swap moves with exact retraining.
        neighbourhood, swap_shortlist, first_moves, max_evaluations: local-search limits (see
            :func:`fairflip.solvers.search.ranked_local_search`).
        batch_size: flip sets retrained at once.
        max_prefixes: the most prefix sizes the rounding retrains per budget (all of 0..M when M < max_prefixes,
            else that many evenly spread sizes including 0 and M; local search refines the size).
        screen: leave out of the local search the moves a first-order screen shows cannot improve (see the
            ``oracle`` portfolio's option of that name and :func:`fairflip.solvers.influence.influence_screen`).
    """

    omniscient = True

    def __init__(
        self,
        *,
        surrogate: SurrogateKind = "sigmoid",
        temperature: float | None = None,
        temperature_start: float = 1.0,
        temperature_end: float = 0.05,
        steps: int | None = None,
        lr: float = 0.25,
        gradient: Literal["implicit", "unrolled"] = "implicit",
        unroll_steps: int = 5,
        unroll_kind: UnrollKind = "newton",
        linear_solver: LinearSolver = "auto",
        local_search: bool = True,
        neighbourhood: int | None = None,
        swap_shortlist: int | None = None,
        first_moves: int = 64,
        max_evaluations: int | None = None,
        batch_size: int | None = None,
        max_prefixes: int | None = None,
        screen: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__(seed=seed)
        if not isinstance(screen, (bool, np.bool_)):
            raise FairflipError(f"screen must be True or False, got {screen!r}")
        self.screen = bool(screen)
        if gradient not in ("implicit", "unrolled"):
            raise FairflipError(f"gradient must be implicit or unrolled, got {gradient!r}")
        if (steps is not None and steps < 0) or not lr > 0:
            raise FairflipError(f"steps must be >= 0 and lr > 0, got steps={steps}, lr={lr}")
        self.schedule = (TemperatureSchedule(temperature, temperature, "constant") if temperature is not None
                         else TemperatureSchedule(temperature_start, temperature_end, "geometric"))
        self.surrogate = FairnessSurrogate(kind=surrogate, temperature=self.schedule.start, solver="oracle-relaxed")
        self.steps, self.lr = steps, lr
        self.gradient, self.unroll_steps, self.unroll_kind = gradient, unroll_steps, unroll_kind
        self.linear_solver = linear_solver
        self.local_search = local_search
        self.neighbourhood, self.swap_shortlist, self.first_moves = neighbourhood, swap_shortlist, first_moves
        self.max_evaluations, self.batch_size = max_evaluations, batch_size
        if max_prefixes is not None and max_prefixes < 2:
            raise FairflipError(f"max_prefixes must be at least 2 (sizes 0 and M), got {max_prefixes}")
        for what, v in (("neighbourhood", neighbourhood), ("swap_shortlist", swap_shortlist),
                        ("first_moves", first_moves), ("max_evaluations", max_evaluations),
                        ("batch_size", batch_size)):
            if v is not None and (not isinstance(v, (int, np.integer)) or v < 1):
                raise FairflipError(f"{what} must be a positive integer or None (automatic), got {v!r}")
        self.max_prefixes = max_prefixes

    def settings(self, problem: FlipProblem) -> dict:
        """The effective ``steps``, ``neighbourhood``, ``swap_shortlist``, ``max_evaluations``, ``batch_size``
        and ``max_prefixes`` for ``problem``: each given value, else the automatic one for its size.

        One exact retraining reads the whole design matrix several times, so the search is sized by n * p
        (entries of the design matrix): up to :data:`LARGE_ENTRIES` the defaults for instances of a few
        thousand rows (100 steps, up to 20,000 local-search evaluations over 64 + 64 + 16 x 16 moves, batches of
        256, 64 prefixes); above it 5 steps, 50 evaluations over 16 + 16 + 4 x 4 moves (one round), batches of
        64 and 16 prefixes. Measured on make_causal(n, 20) with the budget at 1% of the candidates
        (benchmarks/bench_portfolio.py): at n = 20,000, 3, 5, 10, 20 and 30 steps round to the same objective
        (0.3578-0.3579), and the small-instance defaults cost 327 scikit-learn fits; at n = 100,000, 5 steps
        cost 16 fits for 0.3449 and 10 steps 36 fits for 0.3437.
        """
        large = problem.X.shape[0] * (problem.X.shape[1] + 1) > LARGE_ENTRIES
        auto = AUTO_LARGE if large else AUTO_SMALL
        given = {"steps": self.steps, "neighbourhood": self.neighbourhood, "swap_shortlist": self.swap_shortlist,
                 "max_evaluations": self.max_evaluations, "batch_size": self.batch_size,
                 "max_prefixes": self.max_prefixes}
        return {k: (auto[k] if v is None else v) for k, v in given.items()}

    def _select_many(self, problem: FlipProblem, budgets: list[int], control: SolveControl) -> list[FlipResult]:
        """Solve several budgets at once (one relaxed vector each, optimised in one batch).

        Args:
            problem: the flip problem (c candidates, linear firm).
            budgets: B budgets M_b >= 0.
            control: time limit and progress; past the limit the relaxation stops where it is and the best flip
                set retrained so far is returned with status ``time_limit``.

        Returns:
            B :class:`FlipResult`, in the order of ``budgets``: ``objective`` the true objective of ``flipped``,
            ``solver_objective`` the surrogate's value at the relaxed optimum (``info["solver_objective_kind"]``
            names the surrogate), ``scores`` the relaxed z.
        """
        start = time.perf_counter()
        budgets = [check_budget(b) for b in budgets]
        cfg = self.settings(problem)
        with threads_for(problem), problem.objective_cache():
            relaxed = self.relax(problem, budgets, control)
            rounded = self.round(problem, budgets, relaxed, control)
            ranker = (make_ranker(problem, relaxed.bilevel, solver=self.linear_solver)
                      if self.local_search else None)
            screen = influence_screen(problem) if self.local_search and self.screen else None
            results = []
            for b, M in enumerate(budgets):
                flipped, objective = rounded[b]
                info = {"surrogate": relaxed.bilevel.surrogate.name, "surrogate_value": float(relaxed.value[b]),
                        "temperature_schedule": [self.schedule.kind, self.schedule.start, self.schedule.end],
                        "gradient": self.gradient, "steps": cfg["steps"], "steps_run": relaxed.steps_run,
                        "relaxation_time_s": relaxed.seconds, "rounded_size": len(flipped),
                        "rounded_objective": objective, "relaxed_mass": float(relaxed.z[b].sum()),
                        "solver_objective_kind": relaxed.bilevel.surrogate.name}
                if self.local_search and not control.expired():
                    found = ranked_local_search(problem, flipped, M, ranker=ranker, value=objective,
                                                neighbourhood=cfg["neighbourhood"],
                                                swap_shortlist=cfg["swap_shortlist"], first_moves=self.first_moves,
                                                max_evaluations=cfg["max_evaluations"],
                                                batch_size=cfg["batch_size"], control=control, screen=screen)
                    flipped, objective = found.flipped, found.objective
                    info.update(local_search_moves=found.rounds, local_search_evaluations=found.evaluations,
                                local_search_converged=found.converged, local_search_screened=found.screened)
                info["objective"] = objective
                info["time_s"] = time.perf_counter() - start
                hit = control.expired()
                results.append(FlipResult(flipped=flipped, scores=np.asarray(relaxed.z[b]), objective=objective,
                                          solver_objective=float(relaxed.value[b]),
                                          status="time_limit" if hit else "feasible", time_limit_hit=hit,
                                          info=info))
        return results

    def relax(self, problem: FlipProblem, budgets: list[int], control: SolveControl | None = None) -> Relaxation:
        """Step 1 for B budgets at once: the relaxed z (projected hypergradient descent), see the module doc.

        Stops early (keeping the current z) when ``control``'s time limit passes; reports
        ``stage="relaxation"`` progress.
        """
        start = time.perf_counter()
        surrogate = FairnessSurrogate(problem.objective, self.surrogate.kind, self.schedule.start,
                                      problem.error_weight, solver="oracle-relaxed")
        bilevel = soft_flip_bilevel(problem, surrogate)
        z, grad, value, steps_run = self._optimise(bilevel, budgets, control, self.settings(problem)["steps"])
        return Relaxation(bilevel, z, grad, value, steps_run, time.perf_counter() - start)

    def round(self, problem: FlipProblem, budgets: list[int], relaxed: Relaxation,
              control: SolveControl | None = None) -> list[tuple[np.ndarray, float]]:
        """Step 2: per budget, the best (flip set, true objective) among the prefixes of the z ordering.

        Every budget's prefixes are retrained in one batched pass (sets shared between budgets once, through
        the problem's objective cache when it is open).
        """
        cands = problem.candidates
        # Order by z, ties by the hypergradient (the more negative, the more promising).
        orders = [np.lexsort((relaxed.grad[b], -relaxed.z[b])) for b in range(len(budgets))]
        cfg = self.settings(problem)
        prefixes = [[np.sort(cands[orders[b][:k]]) for k in prefix_sizes(M, len(cands), cfg["max_prefixes"])]
                    for b, M in enumerate(budgets)]
        flat = [s for sets in prefixes for s in sets]
        values = batched_objectives(problem, flat, batch_size=cfg["batch_size"])
        out, offset = [], 0
        for b in range(len(budgets)):
            vals = values[offset:offset + len(prefixes[b])]
            offset += len(prefixes[b])
            k = int(np.argmin(vals))
            out.append((prefixes[b][k], float(vals[k])))
        if control is not None:
            control.report(stage="rounding", done=len(flat), total=len(flat), best=float(values.min()))
        return out

    @staticmethod
    def _track(bilevel: SoftFlipBilevel, z: torch.Tensor, theta: torch.Tensor, model, exact: bool) -> torch.Tensor:
        """The inner optimum for the relaxed flips z (B, c), from the previous step's optima ``theta`` (B, p).

        With the exact Hessian factors there (``exact``) one Newton step tracks it: the labels moved by one
        projected step, so theta is within O(step^2) of the new optimum and the step leaves it within O(step^4)
        (TRACK_MAX_STEP bounds the step taken this way). The inexactness does not accumulate, as the next step's
        gradient is exact at wherever theta is. Otherwise, or for a larger step, the inner problem is solved to the
        firm's tolerance (``fit_near`` from the previous local model, else damped Newton).
        """
        if exact:
            tracked, size = bilevel.newton_step(z, theta, model.factor)
            if bool((size <= TRACK_MAX_STEP).all()):  # False for a non-finite step
                return tracked
        return bilevel.inner(z, init=theta, model=model)

    def _optimise(self, bilevel: SoftFlipBilevel, budgets: list[int], control: SolveControl | None = None,
                  steps: int = 100) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """Projected hypergradient descent; returns z (B, c), the last hypergradient (B, c), surrogate (B,) and
        the steps run (fewer than ``steps`` when the time limit stopped it)."""
        dev, dt = bilevel.Xd.device, bilevel.Xd.dtype
        c = len(bilevel.rows)
        M = torch.tensor(budgets, dtype=dt, device=dev)
        z = (M[:, None] / max(c, 1)).clamp(max=1.0).expand(len(budgets), c).clone()
        base = bilevel.inner(torch.zeros_like(z[:1]))
        theta = base.expand(len(budgets), -1).clone()
        grad = torch.zeros_like(z)
        value = torch.full((len(budgets),), float("nan"), dtype=dt, device=dev)
        surrogate = bilevel.surrogate
        steps_run = 0
        model, exact = None, False
        for t in range(steps):
            if control is not None and control.expired():
                break
            steps_run += 1
            bilevel.surrogate = surrogate.with_temperature(self.schedule.at(t, steps))
            if self.gradient == "implicit":
                # From the second step on, the inner solve starts from the previous step's optima and their
                # Hessians (the labels moved by one projected step), which the hypergradient then reuses.
                theta = self._track(bilevel, z, theta, model, exact)
                model = bilevel.local_model(z, theta) if self.linear_solver in ("auto", "cholesky") else None
                exact = model is not None and bilevel.hessian_factor is None  # its factors are the Hessians'
                value, grad = implicit_hypergradient(bilevel, z, theta, solver=self.linear_solver,
                                                     factor=model.factor if exact else None)
            else:
                value, grad, theta = unrolled_hypergradient(bilevel, z, theta, steps=self.unroll_steps,
                                                            kind=self.unroll_kind)
            # Normalised step: the surrogate's gradient scale changes by orders of magnitude as T anneals.
            scale = grad.abs().amax(-1, keepdim=True).clamp_min(torch.finfo(dt).tiny)
            lr = self.lr * (1.0 - 0.9 * t / max(steps - 1, 1))
            z = project_capped_simplex(z - lr * grad / scale, M)
            if control is not None and (t + 1) % 10 == 0:
                control.report(stage="relaxation", done=t + 1, total=steps)
        return z.cpu().numpy(), grad.cpu().numpy(), value.cpu().numpy(), steps_run
