"""LP and MILP formulations of the flip problem when the firm's scores are affine in the flips.

The oracle-convex method (see :mod:`solvers.convex`) reduces the firm to an :class:`AffineScores` model: the
scores of the m evaluation rows as an affine function of the binary flip indicators z in {0, 1}^c (exact for the
ridge firm, a first-order linearisation otherwise). This module states, on top of such a model, the two families
of optimisation problems in CVXPY and solves them:

- score-gap: the fairness gap measured on *group mean scores* instead of group rates. Each gap is affine in z, so
  its absolute value is an epigraph variable: an LP over z in [0, 1]^c (the relaxation) or a MILP over binary z.
  An error weight adds the mean hinge loss max(0, 1 - t_i f_i) (t_i = +-1), again LP-representable.
- exact: the hard-threshold objective itself. One binary p_i per evaluation row stands for the firm's
  prediction (1 iff its score f_i > 0); big-M constraints with bounds valid over every reachable z tie p to z, and
  TPR, FPR, selection rate and error are then affine in p.

The exact formulation is a *relaxation* of the hard threshold under floating-point tolerance. Each row i gets a
band [-delta_i, delta_i] around the threshold (delta_i = ``tolerance`` plus a relative term for the rounding of
its score): p_i = 1 only requires f_i >= -delta_i and p_i = 0 only requires f_i <= delta_i, so inside the band both
predictions are allowed, and a row's prediction is fixed in advance only when its whole score interval over the
reachable flip sets lies outside the band. Every flip set within the budget, with its true predictions, is thus a
feasible point whose MILP value is its true objective: the MILP optimum, and any dual bound the solver proves, is
at most the true optimum. Conversely the MILP's own solution may use the band to pick a prediction the firm does
not make, so its flips are always retrained and scored exactly; the solver's value is reported as the solver
objective, never as the true one.

A fairness objective is written as gaps G @ v (G of shape (k, m), v the per-row quantity: score or prediction),
aggregated by the mean (eqod: TPR and FPR gaps), the max (eqod-worst) or taken alone (dp, eqopp).
"""

from __future__ import annotations

import functools
import os
import sys
import time
import warnings
from dataclasses import dataclass
from fairflip.objectives import Objective, get_objective
from typing import Any

import cvxpy as cp
import numpy as np

from fairflip._errors import FairflipError


@dataclass(frozen=True)
class AffineScores:
    """Scores of the evaluation rows (minus the firm's threshold) as an affine function of the flips.

    f(z) = base + slope @ (z - center): the firm predicts 1 on row i iff f_i(z) > 0.

    Attributes:
        base: shape (m,) scores at the center, minus the score threshold.
        slope: shape (m, c) d f / d z (exact for the ridge firm, the linearisation's Jacobian otherwise).
        center: shape (c,) 0/1 flip indicators where the model was built.
    """

    base: np.ndarray
    slope: np.ndarray
    center: np.ndarray

    def at(self, z: np.ndarray) -> np.ndarray:
        """Model scores for flip indicators ``z`` (shape (c,)), shape (m,)."""
        return self.base + self.slope @ (np.asarray(z, dtype=np.float64) - self.center)

    def score_bounds(self, moves: int) -> tuple[np.ndarray, np.ndarray]:
        """Bounds on f(z) over every binary z that differs from the center in at most ``moves`` coordinates.

        Moving coordinate j changes f_i by s_j * slope_ij with s_j = 1 - 2 center_j, so f_i is at most base_i plus
        the ``moves`` largest positive changes of row i (and at least base_i minus the largest negative ones).

        Returns:
            (lower, upper), each shape (m,).
        """
        step = self.slope * (1.0 - 2.0 * self.center)[None, :]
        k = int(min(max(moves, 0), step.shape[1]))
        if k == 0:
            return self.base.copy(), self.base.copy()
        up = np.sort(np.maximum(step, 0.0), axis=1)[:, -k:].sum(axis=1)
        down = np.sort(np.maximum(-step, 0.0), axis=1)[:, -k:].sum(axis=1)
        return self.base - down, self.base + up


@dataclass(frozen=True)
class FairnessGaps:
    """A fairness objective as aggregated absolute gaps of per-row quantities.

    Attributes:
        weights: shape (k, m); gap_k = weights[k] @ v for a per-row quantity v (score or 0/1 prediction): the
            minority mean minus the majority mean over the rows of one cell pair.
        aggregate: ``mean`` or ``max`` of the k absolute gaps.
        y: shape (m,) original labels of the evaluation rows (for the error term).
    """

    weights: np.ndarray
    aggregate: str
    y: np.ndarray

    @property
    def rows(self) -> np.ndarray:
        """Evaluation rows that enter some gap, shape (r,) int64 sorted."""
        return np.flatnonzero(np.abs(self.weights).sum(axis=0) > 0)


def fairness_gaps(objective: str | Objective, y: np.ndarray, a: np.ndarray) -> FairnessGaps:
    """Gap weights of ``objective`` (a registered name or an Objective with a gap structure) on evaluation rows with labels y, groups a.

    Args:
        objective: the fairness objective's name.
        y: shape (m,) original labels in {0, 1}.
        a: shape (m,) minority indicator.

    Returns:
        the :class:`FairnessGaps` (eqod and eqod-worst: TPR then FPR gap; dp: selection gap; eqopp: TPR gap).
    """
    spec = get_objective(objective)
    return FairnessGaps(spec.gap_weights(y, a), spec.aggregate, np.asarray(y, dtype=np.int64))


@dataclass
class SolveReport:
    """What a solver returned, with the objective constant added back.

    Attributes:
        z: shape (c,) flip indicators (fractional for an LP), or None when the solver found no point.
        status: CVXPY status string (``optimal``, ``user_limit`` on a time limit, ``infeasible``, ...).
        objective: the solver's objective value, or None.
        bound: the best proven lower bound on the formulation's optimum (the LP optimum itself), or None.
        mip_gap: the solver's relative MIP gap, or None (relative to the objective, so it reads 1 when a proven
            optimum is ~0; ``abs_gap`` is the one to read then).
        abs_gap: objective - bound, or None.
        n_binary: number of binary variables (flips and prediction indicators).
        solve_time: seconds the solver reported (compile time excluded).
        wall_time: seconds including CVXPY's compilation.
        time_limit_hit: True when the solver stopped on its time limit (CVXPY status ``user_limit``).
        solver: the solver's name and version (see :func:`solver_version`).
        options: the options the solver ran with (time limit, tolerances, threads, seed).
        load_dependent: True when the answer may change with machine load: the run stopped on a wall-clock
            limit, or ran a solver with no fixed thread count and seed.
    """

    z: np.ndarray | None
    status: str
    objective: float | None
    bound: float | None
    mip_gap: float | None
    abs_gap: float | None
    n_binary: int
    solve_time: float
    wall_time: float
    time_limit_hit: bool = False
    solver: str = ""
    options: dict[str, Any] | None = None
    load_dependent: bool = False


def _budget_constraints(z: cp.Variable, center: np.ndarray, budget: int, moves: int | None) -> list:
    cons = [cp.sum(z) <= budget]
    if moves is not None:
        # ||z - center||_1 is linear over the box: z_j where the center is 0, 1 - z_j where it is 1.
        s = 1.0 - 2.0 * center
        cons.append(s @ z + center.sum() <= moves)
    return cons


def _aggregate(gaps: FairnessGaps, expr: cp.Expression) -> tuple[cp.Expression, list]:
    """Epigraph of agg_k |expr_k|: returns (objective term, constraints); expr has shape (k,)."""
    t = cp.Variable(gaps.weights.shape[0])
    cons = [t >= expr, t >= -expr]
    if gaps.aggregate == "max":
        s = cp.Variable()
        return s, cons + [s >= t]
    return cp.sum(t) / gaps.weights.shape[0], cons


def score_gap_problem(
    model: AffineScores,
    gaps: FairnessGaps,
    budget: int,
    *,
    integer: bool,
    error_weight: float = 0.0,
    moves: int | None = None,
) -> tuple[cp.Problem, cp.Variable, float]:
    """The score-gap surrogate: minimise agg |mean-score gaps| (+ error_weight * mean hinge) over the flips.

    Args:
        model: the affine scores (m rows, c candidates).
        gaps: the objective's gap weights over the m rows.
        budget: M, the most flips.
        integer: True for the MILP over binary z, False for the LP relaxation over [0, 1]^c.
        error_weight: weight of the mean hinge loss max(0, 1 - t_i f_i), t_i = 2 y_i - 1.
        moves: optional trust region ||z - center||_1 <= moves.

    Returns:
        (problem, z variable of shape (c,), constant to add to the solver's objective (0 here)).
    """
    c = model.slope.shape[1]
    z = cp.Variable(c, boolean=True) if integer else cp.Variable(c)
    cons = _budget_constraints(z, model.center, budget, moves)
    if not integer:
        cons += [z >= 0, z <= 1]
    # Gaps of group mean scores are affine in z: G f(z) = G base + (G slope) (z - center).
    g_slope = gaps.weights @ model.slope
    g_const = gaps.weights @ model.base - g_slope @ model.center
    term, agg_cons = _aggregate(gaps, g_const + g_slope @ z)
    cons += agg_cons
    objective = term
    if error_weight > 0:
        t = 2.0 * gaps.y - 1.0
        h = cp.Variable(len(t), nonneg=True)
        margin_const = t * (model.base - model.slope @ model.center)
        cons.append(h >= 1 - (margin_const + (t[:, None] * model.slope) @ z))
        objective = objective + error_weight * cp.sum(h) / len(t)
    return cp.Problem(cp.Minimize(objective), cons), z, 0.0


def threshold_band(model: AffineScores, lower: np.ndarray, upper: np.ndarray, tolerance: float) -> np.ndarray:
    """Half-width delta_i of the band around the threshold inside which both predictions are allowed, shape (m,).

    ``tolerance`` (absolute) plus 1e-9 times the row's score magnitude, which covers the rounding of the affine
    model and of the retrained firm's scores (both are sums of products of that size)."""
    scale = np.abs(model.base) + np.maximum(np.abs(lower), np.abs(upper))
    return float(tolerance) + 1e-9 * scale


def exact_threshold_problem(
    model: AffineScores,
    gaps: FairnessGaps,
    budget: int,
    *,
    error_weight: float = 0.0,
    tolerance: float = 1e-7,
    moves: int | None = None,
    radius: np.ndarray | None = None,
    radius_affine: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[cp.Problem, cp.Variable, float]:
    """The hard-threshold objective as a MILP with big-M prediction indicators; a relaxation of the true problem.

    Row i gets p_i in {0, 1} with f_i(z) >= -delta_i - B_i^- (1 - p_i) and f_i(z) <= delta_i + B_i^+ p_i, where
    [L_i, U_i] bound f_i over every reachable z (see :meth:`AffineScores.score_bounds`), B_i^- = max(-L_i, 0) +
    delta_i, B_i^+ = max(U_i, 0) + delta_i and delta_i is the band of :func:`threshold_band`. Rows with
    L_i > delta_i get the constant p_i = 1, rows with U_i < -delta_i the constant p_i = 0 (this keeps the MILP
    small for small budgets); every other row keeps both predictions open inside the band (see the module
    docstring for why this makes the optimum a valid lower bound).

    Args:
        model: the affine scores (m rows, c candidates).
        gaps: the objective's gap weights over the m rows.
        budget: M, the most flips.
        error_weight: weight of the error rate mean(p_i != y_i).
        tolerance: absolute half-width of the band around the threshold (> 0).
        moves: optional trust region ||z - center||_1 <= moves (also tightens the bounds).
        radius: optional shape (m,) non-negative half-widths r_i: the true score is only known to lie in
            [f_i(z) - r_i, f_i(z) + r_i] (a certified interval model, e.g. the logistic firm's). p_i = 1 then
            requires f_i(z) + r_i >= -delta_i and p_i = 0 requires f_i(z) - r_i <= delta_i, so the MILP stays a
            relaxation of every flip set whose scores lie in their intervals.
        radius_affine: optional second half-width that depends on the flips, (r0 (m,), R (m, c)), both
            non-negative: the true score also lies in [f_i(z) - r_i(z), f_i(z) + r_i(z)] with r(z) = r0 + R z
            (the model's center must be 0). Both intervals are imposed, so the tighter one decides.

    Returns:
        (problem, binary z variable of shape (c,), constant to add to the solver's objective).
    """
    if not (float(tolerance) > 0):
        raise FairflipError(f"tolerance must be a positive number, got {tolerance!r}")
    m, c = model.slope.shape
    reach = budget if moves is None else moves
    if moves is None and model.center.any():
        reach = int(model.center.sum()) + budget
    lower, upper = model.score_bounds(reach)
    delta = threshold_band(model, lower, upper, tolerance)
    r = np.zeros(m) if radius is None else np.asarray(radius, dtype=np.float64)
    if r.shape != (m,) or not np.all(r >= 0):
        raise FairflipError(f"radius must be a non-negative array of shape ({m},)")
    # The interval [f - r, f + r] over every reachable z lies in [lower - r, upper + r].
    lower, upper = lower - r, upper + r
    rows = np.arange(m) if error_weight > 0 else gaps.rows
    fixed_one = lower[rows] > delta[rows]
    fixed_zero = upper[rows] < -delta[rows]
    if radius_affine is not None:
        r0, R = (np.asarray(v, dtype=np.float64) for v in radius_affine)
        if r0.shape != (m,) or R.shape != (m, c) or not (np.all(r0 >= 0) and np.all(R >= 0)):
            raise FairflipError(f"radius_affine must be non-negative arrays of shapes ({m},) and ({m}, {c})")
        if model.center.any():
            raise FairflipError("radius_affine needs a model centred at no flips")
        # Reachable ranges of f - r(z) (lowest) and f + r(z) (highest).
        low_a = AffineScores(model.base - r0, model.slope - R, model.center).score_bounds(reach)
        up_a = AffineScores(model.base + r0, model.slope + R, model.center).score_bounds(reach)
        fixed_one |= low_a[0][rows] > delta[rows]
        fixed_zero |= up_a[1][rows] < -delta[rows]
    free = rows[~fixed_one & ~fixed_zero]

    z = cp.Variable(c, boolean=True)
    cons = _budget_constraints(z, model.center, budget, moves)
    p_const = np.zeros(m)
    p_const[rows[fixed_one]] = 1.0
    # Only rows whose prediction the bounds leave open need an indicator and its big-M pair.
    p = cp.Variable(len(free), boolean=True) if len(free) else None
    gap_expr = gaps.weights @ p_const
    if p is not None:
        gap_expr = gap_expr + gaps.weights[:, free] @ p
        f_free = model.base[free] - model.slope[free] @ model.center + model.slope[free] @ z
        d, rf = delta[free], r[free]
        # Over reachable z, f - r <= (upper + r) - 2r and f + r >= (lower - r) + 2r: the big-Ms cover both.
        big_up = np.maximum(upper[free] - 2 * rf, 0.0) + d
        big_down = np.maximum(-(lower[free] + 2 * rf), 0.0) + d
        cons += [f_free - rf <= d + cp.multiply(big_up, p), f_free + rf >= -d - cp.multiply(big_down, 1 - p)]
        if radius_affine is not None:
            # The same pair with r(z): f - r(z) <= d + B p and f + r(z) >= -d - B' (1 - p), B and B' covering the
            # reachable ranges of f - r(z) and f + r(z).
            lo_expr = (model.base[free] - r0[free]) + (model.slope[free] - R[free]) @ z
            hi_expr = (model.base[free] + r0[free]) + (model.slope[free] + R[free]) @ z
            big_up_a = np.maximum(low_a[1][free], 0.0) + d
            big_down_a = np.maximum(-up_a[0][free], 0.0) + d
            cons += [lo_expr <= d + cp.multiply(big_up_a, p), hi_expr >= -d - cp.multiply(big_down_a, 1 - p)]
    term, agg_cons = _aggregate(gaps, gap_expr)
    cons += agg_cons
    objective, constant = term, 0.0
    if error_weight > 0 and p is not None:
        # mean(p != y) = mean(y) + mean((1 - 2y) p): the constant part is added back after solving so the
        # solver's objective (and its dual bound) carries no offset.
        yf = gaps.y.astype(np.float64)
        constant = error_weight * (yf.sum() + ((1 - 2 * yf) * p_const).sum()) / m
        objective = objective + error_weight * ((1 - 2 * yf[free]) @ p) / m
    elif error_weight > 0:
        constant = error_weight * float(np.mean(p_const != gaps.y))
    return cp.Problem(cp.Minimize(objective), cons), z, constant


# Name of each solver's wall-clock limit option in CVXPY's pass-through keywords.
_TIME_LIMIT_OPTION = {
    "HIGHS": "time_limit",
    "CLARABEL": "time_limit",
    "OSQP": "time_limit",
    "SCS": "time_limit_secs",
    "GUROBI": "TimeLimit",
    "CBC": "maximumSeconds",
}


def solver_options(solver: str, time_limit: float, extra: dict[str, Any] | None, *,
                   seed: int = 0) -> dict[str, Any]:
    """Keyword options for ``cp.Problem.solve`` setting the time limit where the solver has one.

    For HiGHS the MIP tolerances are tightened (relative gap 1e-6, feasibility 1e-9) so that "optimal" means
    optimal for objectives whose distinct values differ by small rate differences, and the run is made
    reproducible: one thread and a fixed random seed (``seed``), so that two runs that finish within their time
    limit take the same path. A run stopped by its wall-clock limit can still depend on machine load (see
    :attr:`SolveReport.load_dependent`). ``extra`` overrides any of these.
    """
    opts: dict[str, Any] = {}
    if solver == "HIGHS":
        opts.update(mip_rel_gap=1e-6, mip_feasibility_tolerance=1e-9, threads=1, random_seed=int(seed))
    if solver == "SCIPY":
        opts["scipy_options"] = {"time_limit": float(time_limit)}
    elif solver in _TIME_LIMIT_OPTION:
        opts[_TIME_LIMIT_OPTION[solver]] = float(time_limit)
    opts.update(extra or {})
    return opts


@functools.cache
def solver_version(solver: str) -> str:
    """The solver's name and version as one string, e.g. ``"HIGHS 1.11.0 (highspy; CVXPY 1.6.0)"``."""
    import importlib.metadata as md

    package = {"HIGHS": "highspy", "SCIPY": "scipy", "CLARABEL": "clarabel", "OSQP": "osqp", "SCS": "scs",
               "GUROBI": "gurobipy", "CBC": "cylp", "GLPK_MI": "cvxopt", "GLPK": "cvxopt", "ECOS": "ecos",
               "ECOS_BB": "ecos", "SCIP": "PySCIPOpt", "CPLEX": "cplex", "MOSEK": "Mosek", "XPRESS": "xpress"}
    name = package.get(solver, solver.lower())
    try:
        version = md.version(name)
    except md.PackageNotFoundError:
        version = "unknown version"
    return f"{solver} {version} ({name}; CVXPY {cp.__version__})"


def _finite(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None


def _mip_stats(extra: Any) -> tuple[float | None, float | None]:
    """(dual bound, relative gap) from a solver's extra statistics (HiGHS info object or SciPy dict)."""
    if extra is None:
        return None, None
    if isinstance(extra, dict):
        return _finite(extra.get("mip_dual_bound")), _finite(extra.get("mip_gap"))
    return _finite(getattr(extra, "mip_dual_bound", None)), _finite(getattr(extra, "mip_gap", None))


@functools.cache
def _silence_highs_banner() -> None:
    """Create the process's first HiGHS instance with stdout pointed at the null device.

    HiGHS writes a banner to stdout when its first instance is created, before any option can turn output off;
    stdout must stay clean for the CLI's one JSON object. Later instances print nothing.
    """
    import highspy

    sys.stdout.flush()
    saved = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(null)


def solve(
    problem: cp.Problem,
    z: cp.Variable,
    constant: float,
    *,
    solver: str,
    time_limit: float,
    options: dict[str, Any] | None = None,
    seed: int = 0,
) -> SolveReport:
    """Solve a formulation and collect status, objective, best bound and MIP gap.

    Args:
        problem, z, constant: as returned by :func:`score_gap_problem` or :func:`exact_threshold_problem`.
        solver: an installed CVXPY solver name.
        time_limit: seconds (passed where the solver supports a limit).
        options: extra solver keywords.
        seed: the solver's random seed (HiGHS).

    Returns:
        the :class:`SolveReport`. For a MILP the bound is the solver's dual bound (when it reports one); for an
        LP solved to optimality it is the optimum.
    """
    if solver == "HIGHS":
        _silence_highs_banner()
    opts = solver_options(solver, time_limit, options, seed=seed)
    start = time.perf_counter()

    def run() -> None:
        with warnings.catch_warnings():
            # A time-limited MIP ends "inaccurate" by design; the status is reported, not hidden.
            warnings.filterwarnings("ignore", message="Solution may be inaccurate")
            problem.solve(solver=solver, **opts)

    try:
        try:
            run()
        except cp.error.SolverError:
            if solver != "HIGHS" or "threads" not in opts:
                raise
            # HiGHS refuses a thread count other than the one its process-wide scheduler started with (e.g. an
            # earlier solve with the default count): restart the scheduler and solve again.
            import highspy

            highspy.Highs.resetGlobalScheduler(True)
            run()
    except cp.error.SolverError as exc:
        raise FairflipError(f"solver {solver} failed: {exc}") from exc
    wall = time.perf_counter() - start
    stats = problem.solver_stats
    status = str(problem.status)
    solved = status in cp.settings.SOLUTION_PRESENT and z.value is not None
    objective = float(problem.value) + constant if solved else None
    if problem.is_mixed_integer():
        bound, gap = _mip_stats(stats.extra_stats if stats is not None else None)
        if bound is not None:
            bound += constant
    else:
        bound, gap = (objective, 0.0) if status == cp.OPTIMAL else (None, None)
    return SolveReport(
        z=np.asarray(z.value, dtype=np.float64) if solved else None,
        status=status,
        objective=objective,
        bound=bound,
        mip_gap=gap,
        abs_gap=None if objective is None or bound is None else objective - bound,
        n_binary=int(sum(v.size for v in problem.variables() if v.attributes["boolean"])),
        solve_time=float(stats.solve_time) if stats is not None and stats.solve_time is not None else wall,
        wall_time=wall,
        time_limit_hit=status == cp.USER_LIMIT,
        solver=solver_version(solver),
        options={k: v for k, v in opts.items() if isinstance(v, (int, float, str, bool))},
        load_dependent=status == cp.USER_LIMIT or (problem.is_mixed_integer()
                                                    and not (solver == "HIGHS" and opts.get("threads") == 1)),
    )
