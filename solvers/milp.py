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

import atexit
import functools
import json
import os
import queue
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from types import SimpleNamespace
from fairflip.objectives import Objective, get_objective
from typing import Any

import cvxpy as cp
import numpy as np

from fairflip._errors import FairflipError


def topk_sums(M: np.ndarray, k: int, chunk_entries: int = 20_000_000, *,
              negative: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the sum of the ``k`` largest positive entries and of the ``k`` largest negative parts.

    Args:
        M: shape (r, c).
        k: how many entries per row (clipped to [0, c]).
        chunk_entries: rows are taken in blocks of about this many entries, so no full-size copy of M is made.
        negative: False skips the negative side (``down`` is then zeros), e.g. for M >= 0.

    Returns:
        (up, down), each shape (r,), non-negative: max over |S| <= k of sum_{j in S} M_ij is up_i, and the least
        such sum is -down_i.
    """
    r, c = M.shape
    k = int(min(max(k, 0), c))
    up, down = np.zeros(r), np.zeros(r)
    if k == 0 or r == 0:
        return up, down
    step = max(1, chunk_entries // max(1, c))
    for s0 in range(0, r, step):
        block = M[s0:s0 + step]
        up[s0:s0 + step] = np.partition(np.maximum(block, 0.0), -k, axis=1)[:, -k:].sum(axis=1)
        if negative:
            down[s0:s0 + step] = np.partition(np.maximum(-block, 0.0), -k, axis=1)[:, -k:].sum(axis=1)
    return up, down


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
        sign = 1.0 - 2.0 * np.asarray(self.center, dtype=np.float64)
        k = int(min(max(moves, 0), self.slope.shape[1]))
        if k == 0:
            return self.base.copy(), self.base.copy()
        step = self.slope if np.all(sign == 1.0) else self.slope * sign[None, :]
        up, down = topk_sums(step, k)
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
        hard_stopped: True when the solver ran past its hard deadline (see :func:`hard_deadline`) and its process
            was stopped: ``status`` is then ``user_limit``, ``time_limit_hit`` True, ``bound`` None, and ``z`` /
            ``objective`` the last improving solution the solver had reported (None if it had found none).
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
    hard_stopped: bool = False


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


def prediction_objective(gaps: FairnessGaps, gap_expr: cp.Expression, error_weight: float, p, p_const: np.ndarray,
                         cost: np.ndarray | None) -> tuple[cp.Expression, float, list]:
    """The exact-threshold objective agg |gaps| + error_weight * error rate over prediction variables.

    Args:
        gaps: the objective's gap structure on the m evaluation rows.
        gap_expr: shape (k,) the gap sums (an expression of the prediction variables).
        error_weight: the error term's weight.
        p: the binary prediction variables, or None when every prediction is fixed.
        p_const: shape (m,) the fixed predictions (0 where a row's prediction is a variable).
        cost: per prediction variable, its coefficient in the count of wrong predictions, (1 - 2 y) summed over the
            rows it stands for (ignored without ``p``).

    Returns:
        (objective expression, constant to add back after solving, constraints). mean(p != y) = mean(y) +
        mean((1 - 2y) p): the constant part is added back after solving so the solver's objective (and its dual
        bound) carries no offset.
    """
    term, cons = _aggregate(gaps, gap_expr)
    objective, constant, m = term, 0.0, len(gaps.y)
    if error_weight > 0 and p is not None:
        yf = gaps.y.astype(np.float64)
        constant = error_weight * (yf.sum() + ((1 - 2 * yf) * p_const).sum()) / m
        objective = objective + error_weight * (cost @ p) / m
    elif error_weight > 0:
        constant = error_weight * float(np.mean(p_const != gaps.y))
    return objective, constant, cons


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


def threshold_band(model: "AffineScores | LowRankModel", lower: np.ndarray, upper: np.ndarray,
                   tolerance: float) -> np.ndarray:
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
    objective, constant, agg_cons = prediction_objective(gaps, gap_expr, error_weight, p, p_const,
                                                         1.0 - 2.0 * gaps.y[free].astype(np.float64))
    cons += agg_cons
    return cp.Problem(cp.Minimize(objective), cons), z, constant


@dataclass
class LowRankModel:
    """Scores of rank p in the flips: every allowed flip set's score j (minus the threshold) lies in
    base_j + EH_j g + [lo_j, hi_j], g = Q^T z (shape (p,)).

    The ridge firm's scores are exactly of this form (EH the evaluation design, Q the label Jacobian's columns
    times the flip signs, lo = hi = 0 up to rounding); the logistic certificate's first-order model is too, with
    [lo, hi] its certified nonlinear range.

    Attributes:
        Q: shape (c, p) one row per candidate (its tilt).
        EH: shape (m, p) one row per evaluation row.
        base: shape (m,) scores at no flips.
        lo, hi: shape (m,) the range of the rest (with a rounding margin for the factored products).
        E: shape (m, p) the evaluation rows' features with the intercept (rows equal here and in ``EH`` score
            alike under every model, so they share a prediction), or None (``EH`` is used).
        dirs, dir_lo, dir_hi: shapes (D, p), (D,), (D,), or None: a shared parameter shift delta with
            dir_lo <= dirs delta <= dir_hi such that score_j - base_j - EH_j g - E_j delta lies in
            [-slack_j, slack_j] (the logistic certificate's nonlinear part, see :mod:`solvers.logistic_cert`).
        slack: shape (m,) rounding margin of that form, or None.
    """

    Q: np.ndarray
    EH: np.ndarray
    base: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    E: np.ndarray | None = None
    dirs: np.ndarray | None = None
    dir_lo: np.ndarray | None = None
    dir_hi: np.ndarray | None = None
    slack: np.ndarray | None = None

    def reach(self, budget: int, chunk_entries: int = 20_000_000) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper), shape (m,) each: the least and largest base_j + EH_j Q^T z over binary z with at most
        ``budget`` ones (the budget's most negative and most positive entries of each row of EH Q^T), computed in
        row chunks so that the (m, c) product is never held whole."""
        m, c = len(self.base), self.Q.shape[0]
        k = int(min(max(budget, 0), c))
        lower, upper = self.base.copy(), self.base.copy()
        if k == 0:
            return lower, upper
        step = max(1, chunk_entries // max(1, c))
        for s0 in range(0, m, step):
            up, down = topk_sums(self.EH[s0:s0 + step] @ self.Q.T, k, chunk_entries)
            upper[s0:s0 + step] += up
            lower[s0:s0 + step] -= down
        return lower, upper


def row_classes(keys: np.ndarray) -> list[np.ndarray]:
    """Indices of the rows of ``keys`` (shape (r, q)) grouped by bitwise equality, in order of first occurrence."""
    if len(keys) == 0:
        return []
    keys = np.ascontiguousarray(keys)
    view = keys.view(np.dtype((np.void, keys.dtype.itemsize * keys.shape[1]))).ravel()
    _, first, inverse = np.unique(view, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    return [np.flatnonzero(inverse == g) for g in order]


@dataclass
class FactoredMILP:
    """The factored exact-threshold MILP (:func:`factored_threshold_problem`) and what its callers need.

    Attributes:
        problem: the CVXPY problem.
        counts: the integer variable, shape (G,): flips per candidate class.
        constant: to add to the solver's objective.
        cgroups: the G candidate classes (index arrays into the c candidates).
        rgroups: the row classes with an open prediction (index arrays into the m rows).
        p: the open predictions' binary variable (one per row class), or None.
        g: the variable Q^T z, shape (p,), or None.
        band: shape (len(rgroups),) the band of each row class (its loosest member's).
    """

    problem: cp.Problem
    counts: cp.Variable
    constant: float
    cgroups: list
    rgroups: list
    p: Any = None
    g: Any = None
    band: np.ndarray | None = None

    def decode(self, counts: np.ndarray) -> np.ndarray:
        """The candidate indicator z (shape (c,), 0/1; the first members of each class) of class counts."""
        out = np.zeros(sum(len(gr) for gr in self.cgroups))
        for gr, v in zip(self.cgroups, np.asarray(counts, dtype=np.float64)):
            out[gr[:int(round(v))]] = 1.0
        return out


def factored_threshold_problem(model: LowRankModel, gaps: FairnessGaps, budget: int, *, error_weight: float = 0.0,
                               tolerance: float = 1e-7, classes: bool = True, shared: bool = False,
                               intervals=(), extra=None) -> FactoredMILP:
    """The exact-threshold MILP of :func:`exact_threshold_problem` with the scores in factored form.

    The same relaxation (one binary prediction per evaluation row left open, a band delta_j around the threshold
    inside which both predictions are allowed, big-M pairs valid over every allowed z), with changes that make the
    solver's search far cheaper when the slope EH Q^T has low rank p:

    - the flips enter through g = Q^T z (p continuous variables): a row's pair has p + 1 non-zeros instead of c + 1;
    - ``classes``: candidates with bitwise identical rows of Q are interchangeable, so one integer n_G in [0, |G|]
      counts the flips of class G; open rows with bitwise identical rows of EH and E score alike under every
      model, so they share one prediction whose gap weight is the sum of theirs, with the loosest of their ranges
      and bands. This removes symmetric copies the solver otherwise branches over;
    - ``shared`` (needs ``model.dirs``): the rest of every score is E_j delta for one shared delta in the polytope
      dir_lo <= dirs delta <= dir_hi, instead of each row's own [lo_j, hi_j];
    - ``intervals``: further certified intervals whose ends are affine in z, each (rows (r,), lower0 (r,), LOWER
      (r, c), upper0 (r,), UPPER (r, c)): the score of row rows[i] lies in [lower0_i + LOWER_i z, upper0_i +
      UPPER_i z]. They fix the rows they place outside the band, and on every open row class whose members all
      have one they add a pair (the loosest member's ends; per candidate class the least coefficient of the lower
      end and the largest of the upper end; big-Ms over each end's reach).

    Every constraint holds at each flip set's true point (its class counts, g = Q^T z and true predictions), so the
    optimum and any dual bound are at most the true optimum.

    Args:
        model: the :class:`LowRankModel` (m rows, c candidates).
        gaps: the objective's :class:`FairnessGaps` over the m rows.
        budget: the most flips.
        error_weight: weight of the error rate mean(p_j != y_j).
        tolerance: the band's absolute half-width (> 0).
        classes, shared, intervals: as above.
        extra: optional callable ``extra(milp) -> list`` of further CVXPY constraints, called with the
            :class:`FactoredMILP` before the problem is built (``problem`` None then); they must hold at every
            flip set's true point.

    Returns:
        the :class:`FactoredMILP`.
    """
    if not (float(tolerance) > 0):
        raise FairflipError(f"tolerance must be a positive number, got {tolerance!r}")
    if shared and model.dirs is None:
        raise FairflipError("shared needs a model with a shared shift polytope (dirs)")
    k = int(min(max(budget, 0), model.Q.shape[0]))
    m = len(model.base)
    lin_lo, lin_hi = model.reach(k)
    lower, upper = lin_lo + model.lo, lin_hi + model.hi  # every allowed score lies in [lower, upper]
    delta = threshold_band(model, lin_lo, lin_hi, tolerance) + 1e-9 * (np.abs(model.lo) + np.abs(model.hi))
    fixed_one, fixed_zero = lower > delta, upper < -delta
    reaches = []  # per further interval: the reach of its lower end and of its upper end
    for rows_i, lo0, LO, hi0, HI in intervals:
        low_r = AffineScores(lo0, LO, np.zeros(LO.shape[1])).score_bounds(k)
        up_r = AffineScores(hi0, HI, np.zeros(HI.shape[1])).score_bounds(k)
        fixed_one[rows_i] |= low_r[0] > delta[rows_i]
        fixed_zero[rows_i] |= up_r[1] < -delta[rows_i]
        reaches.append((low_r, up_r))
    rows = np.arange(m) if error_weight > 0 else gaps.rows
    one, zero = fixed_one[rows], fixed_zero[rows]
    free = rows[~one & ~zero]
    cgroups = row_classes(model.Q) if classes else [np.array([i]) for i in range(model.Q.shape[0])]
    size = np.array([len(gr) for gr in cgroups], dtype=np.float64)
    rep = np.array([gr[0] for gr in cgroups], dtype=np.int64)
    if classes and len(free):
        keys = model.EH[free] if model.E is None else np.c_[model.EH[free], model.E[free]]
        rgroups = [free[gr] for gr in row_classes(keys)]
    else:
        rgroups = [np.array([j]) for j in free]
    n = cp.Variable(len(cgroups), integer=True)
    cons = [n >= 0, n <= size, cp.sum(n) <= k]
    p_const = np.zeros(m)
    p_const[rows[one]] = 1.0
    p = cp.Variable(len(rgroups), boolean=True) if len(rgroups) else None
    out = FactoredMILP(problem=None, counts=n, constant=0.0, cgroups=cgroups, rgroups=rgroups, p=p)
    gap_expr = gaps.weights @ p_const
    if p is not None:
        first = np.array([gr[0] for gr in rgroups], dtype=np.int64)
        W = np.stack([gaps.weights[:, gr].sum(axis=1) for gr in rgroups], axis=1)  # (k gaps, groups)
        gap_expr = gap_expr + W @ p

        def low(v):  # the least member value per row class, shape (groups,)
            return np.array([v[gr].min() for gr in rgroups])

        def high(v):
            return np.array([v[gr].max() for gr in rgroups])

        g = cp.Variable(model.Q.shape[1])
        cons.append(g == model.Q[rep].T @ n)
        d = high(delta)
        out.g, out.band = g, d
        EHg = model.EH[first] @ g
        if shared:
            # The rest is E_j delta for one delta in the polytope; each row's own range is one of its faces
            # (dirs holds every distinct row), so the per-row pair below would be implied.
            shift = cp.Variable(model.Q.shape[1])
            slack = np.zeros(m) if model.slack is None else model.slack
            E = model.EH if model.E is None else model.E
            Ed = E[first] @ shift
            # Big-Ms over the reach of each side: E_j delta spans the row's whole range [lo, hi] on both.
            big_up_s = np.maximum(high(lin_hi + model.hi), 0.0) + d
            big_down_s = np.maximum(-low(lin_lo + model.lo), 0.0) + d
            cons += [model.dirs @ shift >= model.dir_lo, model.dirs @ shift <= model.dir_hi,
                     EHg + Ed + low(model.base - slack) <= d + cp.multiply(big_up_s, p),
                     EHg + Ed + high(model.base + slack) >= -d - cp.multiply(big_down_s, 1 - p)]
        else:
            big_up = np.maximum(high(lin_hi + model.lo), 0.0) + d
            big_down = np.maximum(-low(lin_lo + model.hi), 0.0) + d
            cons += [EHg + low(model.base + model.lo) <= d + cp.multiply(big_up, p),
                     EHg + high(model.base + model.hi) >= -d - cp.multiply(big_down, 1 - p)]
        where = np.full(m, -1, dtype=np.int64)
        for (rows_i, lo0, LO, hi0, HI), (low_r, up_r) in zip(intervals, reaches):
            where[:] = -1
            where[rows_i] = np.arange(len(rows_i))
            sub = np.array([i for i, gr in enumerate(rgroups) if np.all(where[gr] >= 0)], dtype=np.int64)
            if not len(sub):
                continue
            mem = [where[rgroups[i]] for i in sub]
            lo_c = np.stack([LO[ix].min(axis=0) for ix in mem])
            hi_c = np.stack([HI[ix].max(axis=0) for ix in mem])
            lo_c = np.stack([lo_c[:, gr].min(axis=1) for gr in cgroups], axis=1)
            hi_c = np.stack([hi_c[:, gr].max(axis=1) for gr in cgroups], axis=1)
            lo_0 = np.array([lo0[ix].min() for ix in mem])
            hi_0 = np.array([hi0[ix].max() for ix in mem])
            bu = np.maximum(np.array([low_r[1][ix].max() for ix in mem]), 0.0) + d[sub]
            bd = np.maximum(-np.array([up_r[0][ix].min() for ix in mem]), 0.0) + d[sub]
            cons += [lo_0 + lo_c @ n <= d[sub] + cp.multiply(bu, p[sub]),
                     hi_0 + hi_c @ n >= -d[sub] - cp.multiply(bd, 1 - p[sub])]
        if extra is not None:
            cons += list(extra(out))
    yf = gaps.y.astype(np.float64)
    objective, constant, agg_cons = prediction_objective(gaps, gap_expr, error_weight, p, p_const,
                                                         np.array([(1 - 2 * yf[gr]).sum() for gr in rgroups]))
    cons += agg_cons
    out.problem, out.constant = cp.Problem(cp.Minimize(objective), cons), constant
    return out


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
    :attr:`SolveReport.load_dependent`). HiGHS's restarts (a new presolve after root fixings) are off: on the
    ridge firm's exact MILP for full COMPAS with a 30 s limit they kept M = 25 and M = 50 in presolve until the
    hard deadline, with no bound; without them the bounds were 0.1635 (M = 25) and 0.0616 (M = 50), 0.2181 at
    M = 10 instead of 0.2151, and M = 2 and 5 were proven optimal in the same time. ``extra`` overrides any of
    these.
    """
    opts: dict[str, Any] = {}
    if solver == "HIGHS":
        opts.update(mip_rel_gap=1e-6, mip_feasibility_tolerance=1e-9, threads=1, random_seed=int(seed),
                    mip_allow_restart=False)
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


# ----- the hard deadline: HiGHS in a worker process -----

HARD_LIMIT_GRACE_S = 2.0
"""Least grace, in seconds, between the time limit and the hard deadline (see :func:`hard_deadline`)."""
HARD_LIMIT_GRACE_FRACTION = 0.1
"""Grace as a fraction of the time limit, when that is more than :data:`HARD_LIMIT_GRACE_S`."""

# Keywords of ``cp.Problem.solve`` itself (not HiGHS options): with any of them the in-process path is used.
_CVXPY_SOLVE_KEYWORDS = frozenset({"verbose", "warm_start", "gp", "qcp", "requires_grad", "enforce_dpp",
                                   "ignore_dpp", "canon_backend", "bibtex", "solver_verbose", "nlp",
                                   "write_model_file"})

# The worker's runner, "module:function" (see :mod:`fairflip._highs_worker`); tests point it at a stand-in.
_WORKER_RUNNER = "fairflip._highs_worker:run_highs"
# Idle workers kept for reuse; more concurrent solves start more workers, and those beyond this are closed.
_MAX_IDLE_WORKERS = 2


def hard_deadline(time_limit: float) -> float:
    """Seconds after the start of :func:`solve` at which an isolated solve is stopped: ``time_limit`` plus
    max(:data:`HARD_LIMIT_GRACE_S`, :data:`HARD_LIMIT_GRACE_FRACTION` * ``time_limit``).

    The grace lets the solver stop on its own soft limit (and report its dual bound) whenever it checks its clock;
    the deadline only catches the steps where it does not (HiGHS's presolve and root LP)."""
    t = float(time_limit)
    return t + max(HARD_LIMIT_GRACE_S, HARD_LIMIT_GRACE_FRACTION * t)


class _HighsWorker:
    """One worker process (see :mod:`fairflip._highs_worker`) and a thread that queues its messages."""

    def __init__(self) -> None:
        from fairflip._highs_worker import BOOTSTRAP

        self.proc = subprocess.Popen([sys.executable, "-c", BOOTSTRAP, json.dumps([str(p) for p in sys.path])],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.messages: queue.SimpleQueue = queue.SimpleQueue()
        self.reader = threading.Thread(target=self._read, name="fairflip-highs-reader", daemon=True)
        self.reader.start()

    def _read(self) -> None:
        from fairflip._highs_worker import read_message

        try:
            while True:
                self.messages.put(read_message(self.proc.stdout))
        except Exception:  # noqa: BLE001  (EOF, a closed pipe or a cut message: the worker is gone)
            self.messages.put(None)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, message: Any) -> None:
        from fairflip._highs_worker import write_message

        write_message(self.proc.stdin, message)

    def stop(self) -> None:
        """Kill the process (it may be in the middle of a solve) and reap it."""
        try:
            self.proc.kill()
        except OSError:
            pass
        self._reap()

    def close(self) -> None:
        """Let an idle worker exit by closing its input; kill it if it does not."""
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=2.0)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
        self._reap()

    def _reap(self) -> None:
        try:
            self.proc.wait(timeout=10.0)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self.reader.join(timeout=1.0)


_idle_workers: list[_HighsWorker] = []
_workers_lock = threading.Lock()


def _take_worker() -> _HighsWorker:
    with _workers_lock:
        while _idle_workers:
            worker = _idle_workers.pop()
            if worker.alive():
                return worker
            worker.stop()
    return _HighsWorker()


def _return_worker(worker: _HighsWorker) -> None:
    with _workers_lock:
        if worker.alive() and len(_idle_workers) < _MAX_IDLE_WORKERS:
            _idle_workers.append(worker)
            return
    worker.close()


@atexit.register
def _close_workers() -> None:
    with _workers_lock:
        workers = list(_idle_workers)
        _idle_workers.clear()
    for worker in workers:
        worker.close()


def _forget_workers() -> None:
    # A forked child shares its parent's pipes to the workers: it must not use (or close) them.
    global _workers_lock
    _idle_workers.clear()
    _workers_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_workers)


def run_isolated(request: dict[str, Any], deadline: float, runner: str | None = None, *,
                 worker: _HighsWorker | None = None
                 ) -> tuple[dict[str, Any] | None, dict[str, Any] | None, float | None]:
    """Run ``runner(request, emit)`` in a worker process and wait for it until ``deadline``.

    Args:
        request: the runner's input (for :func:`fairflip._highs_worker.run_highs`: the HiGHS model and options).
        deadline: a :func:`time.perf_counter` time; at that time a solve still running is stopped by killing its
            process (the next call starts a fresh one).
        runner: ``"module:function"`` importable in the worker (default: HiGHS).
        worker: a worker taken with :func:`_take_worker` (it is returned or stopped here); default: take one.

    Returns:
        (result, incumbent, bound): the runner's result, or None when the deadline stopped it; the last
        ``"incumbent"`` payload it emitted (``{"objective": float, "x": array (n,)}``), or None; and the last
        ``"bound"`` it emitted (the solver's MIP dual bound then), or None.

    Raises:
        FairflipError: the runner raised (its message is passed on) or the worker process died.
    """
    runner = runner or _WORKER_RUNNER
    worker = worker or _take_worker()
    finished = False
    incumbent = bound = None
    try:
        try:
            worker.send((runner, request))
        except OSError:  # an idle worker that died since (e.g. killed from outside): one fresh try
            worker.stop()
            worker = _HighsWorker()
            try:
                worker.send((runner, request))
            except OSError as exc:
                code = worker.proc.wait(timeout=10.0)
                raise FairflipError(f"the HiGHS worker process could not be started (exit code {code}): "
                                    f"{exc}") from exc
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                return None, incumbent, bound
            try:
                message = worker.messages.get(timeout=left)
            except queue.Empty:
                return None, incumbent, bound
            if message is None:
                code = worker.proc.wait(timeout=10.0)
                raise FairflipError(f"the HiGHS worker process exited unexpectedly (exit code {code})")
            kind, payload = message
            if kind == "incumbent":
                incumbent = payload
            elif kind == "bound":
                bound = float(payload)
            elif kind == "done":
                finished = True
                return payload, incumbent, bound
            elif kind == "error":
                finished = True
                raise FairflipError(f"the HiGHS worker failed: {payload}")
    finally:
        # A worker stopped mid-solve (deadline, Ctrl-C, an error here) is killed; a finished one is reused.
        if finished:
            _return_worker(worker)
        else:
            worker.stop()


def _highs_request(data: dict[str, Any], opts: dict[str, Any]) -> dict[str, Any]:
    """The HiGHS model of CVXPY's problem data, built as CVXPY's HiGHS interface builds it (checked on 1.9).

    Rows: the equality rows (lower = upper = b) then the inequality rows (A x <= b); columns: bounds from the
    data, boolean columns clipped to [0, 1], boolean and integer columns integral."""
    import cvxpy.settings as s
    from cvxpy.reductions.solvers.conic_solvers.conic_solver import dims_to_solver_dict

    dims = dims_to_solver_dict(data[s.DIMS])
    A = data[s.A].tocsc()
    c, b = np.asarray(data[s.C]), np.asarray(data[s.B])
    leq_start = dims[s.EQ_DIM]
    leq_end = leq_start + dims[s.LEQ_DIM]
    row_lower = np.concatenate([b[:leq_start], -np.inf * np.ones(b[leq_start:leq_end].shape)])
    n = A.shape[1]
    lb, ub = data.get(s.LOWER_BOUNDS), data.get(s.UPPER_BOUNDS)
    col_lower = np.full(n, -np.inf, dtype=c.dtype) if lb is None else np.array(lb, dtype=c.dtype)
    col_upper = np.full(n, np.inf, dtype=c.dtype) if ub is None else np.array(ub, dtype=c.dtype)
    boolean = np.asarray(data.get(s.BOOL_IDX) or [], dtype=np.int64)
    integer = np.asarray(data.get(s.INT_IDX) or [], dtype=np.int64)
    if len(boolean):
        col_lower[boolean] = np.maximum(col_lower[boolean], 0)
        col_upper[boolean] = np.minimum(col_upper[boolean], 1)
    options = dict(opts)
    options.update(options.pop("highs_options", None) or {})
    return {"col_cost": c, "col_lower": col_lower, "col_upper": col_upper, "row_lower": row_lower, "row_upper": b,
            "a_start": A.indptr, "a_index": A.indices, "a_value": A.data,
            "integer": np.union1d(boolean, integer), "options": options}


def _unpack_worker_result(problem: cp.Problem, chain: Any, inverse_data: Any, result: dict[str, Any]) -> None:
    """Hand a worker's result to CVXPY as its HiGHS interface would (status map, primal and dual values)."""
    info = dict.fromkeys(("simplex_iteration_count", "ipm_iteration_count", "crossover_iteration_count",
                          "pdlp_iteration_count", "qp_iteration_count"), 0)
    info.update({k: v for k, v in result["info"].items() if v is not None or k not in info})
    results = {"solution": SimpleNamespace(col_value=result["col_value"], row_dual=result["row_dual"]),
               "info": SimpleNamespace(**info), "model_status": result["model_status"],
               "run_time": result["run_time"]}
    if "dual_ray" in result:
        results["dual_ray"] = (None, None, result["dual_ray"])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Solution may be inaccurate")
        problem.unpack_results(results, chain, inverse_data)


def _isolate_by_default(solver: str, opts: dict[str, Any]) -> bool:
    """Whether :func:`solve` runs this solve in a worker process when ``isolate`` is None.

    Every HiGHS solve, LP or MILP, of any size: the hang that motivated the worker happened in presolve, which
    LPs run too, on a model that is small by its dimensions (843 rows, 784 columns) but dense (306,237
    non-zeros), so no size threshold would reliably separate safe models from the rest, and a threshold would
    make ``time_limit`` mean different things on different instances. The cost is small (measured on a busy
    2-core machine, a tiny exact MILP with 62 binaries): a warm worker adds about 3 ms per solve (median 35.9 ms
    against 33.2 ms in process, over 100 solves; pickling the model and the pipe), and the first solve of a
    Python process about 0.3 s (median 0.33 s against 0.05 s: starting Python with numpy and highspy, partly
    overlapped with CVXPY's compilation); later solves reuse the worker. The answers are the same: the worker
    builds the model as CVXPY's HiGHS interface does, with the same options, and the deterministic
    single-threaded HiGHS then returns bit-identical solutions and bounds.

    Other solvers, and calls passing CVXPY's own solve keywords (``verbose``, ...), keep the in-process path,
    where the time limit is the solver's own, soft one."""
    return solver == "HIGHS" and bool(sys.executable) and not (_CVXPY_SOLVE_KEYWORDS & set(opts))


def solve(
    problem: cp.Problem,
    z: cp.Variable,
    constant: float,
    *,
    solver: str,
    time_limit: float,
    options: dict[str, Any] | None = None,
    seed: int = 0,
    isolate: bool | None = None,
) -> SolveReport:
    """Solve a formulation and collect status, objective, best bound and MIP gap.

    HiGHS solves run in a worker process (see :func:`_isolate_by_default`) with a hard wall-clock deadline of
    :func:`hard_deadline` (``time_limit``) seconds from this call's start: HiGHS gets ``time_limit`` as its own
    (soft) limit, and if it is still running at the deadline its process is killed. The report then says so
    (``hard_stopped``, ``time_limit_hit``, status ``user_limit``, no MIP gap), and carries the last improving
    solution and the last MIP dual bound HiGHS had reported on the way, if any (HiGHS's dual bound only rises, and
    holds whenever it is read; on Adult's logistic certificate at M = 2 HiGHS had its root bound early, then spent
    most of its time in one root step without checking its clock).

    Args:
        problem, z, constant: as returned by :func:`score_gap_problem` or :func:`exact_threshold_problem`; ``z``
            has shape (c,).
        solver: an installed CVXPY solver name.
        time_limit: seconds (> 0), passed where the solver supports a limit; a hard limit for isolated solves.
        options: extra solver keywords.
        seed: the solver's random seed (HiGHS).
        isolate: run the solve in a worker process with the hard deadline (HiGHS only); None chooses by
            :func:`_isolate_by_default`, False keeps CVXPY's in-process solve (soft limit only).

    Returns:
        the :class:`SolveReport`. For a MILP the bound is the solver's dual bound (when it reports one); for an
        LP solved to optimality it is the optimum.
    """
    if isinstance(time_limit, bool) or not (isinstance(time_limit, (int, float, np.integer, np.floating))
                                            and float(time_limit) > 0 and np.isfinite(float(time_limit))):
        raise FairflipError(f"time_limit must be a positive finite number of seconds, got {time_limit!r}")
    opts = solver_options(solver, time_limit, options, seed=seed)
    chosen = isolate is None
    if isolate is None:
        isolate = _isolate_by_default(solver, opts)
    elif isolate and solver != "HIGHS":
        raise FairflipError(f"isolate=True needs the HIGHS solver (a worker process runs HiGHS), got {solver!r}")
    elif isolate and _CVXPY_SOLVE_KEYWORDS & set(opts):
        raise FairflipError("isolate=True cannot pass CVXPY's own solve keywords "
                            f"({', '.join(sorted(_CVXPY_SOLVE_KEYWORDS & set(opts)))})")
    start = time.perf_counter()
    stopped, incumbent, worker, last_bound = False, None, None, None
    if isolate:
        # A new worker process starts while CVXPY compiles (its start-up then costs little extra wall time).
        try:
            worker = _take_worker()
        except OSError as exc:
            if not chosen:
                raise FairflipError(f"the HiGHS worker process could not be started: {exc}") from exc
            warnings.warn(f"fairflip could not start a HiGHS worker process ({exc}); solving in this process, "
                          "where HiGHS's time limit is not a hard one", RuntimeWarning, stacklevel=2)
            isolate = False
    if isolate:
        try:
            data, chain, inverse_data = problem.get_problem_data(solver, solver_opts=dict(opts))
            request = _highs_request(data, opts)
        except BaseException:
            _return_worker(worker)
            raise
        try:
            result, incumbent, last_bound = run_isolated(request, start + hard_deadline(time_limit),
                                                         worker=worker)
        except FairflipError as exc:
            raise FairflipError(f"solver {solver} failed: {exc}") from exc
        if result is None:
            stopped = True
            if incumbent is not None:
                result = {"model_status": "kTimeLimit", "run_time": time.perf_counter() - start,
                          "col_value": incumbent["x"], "row_dual": np.zeros(0),
                          "info": {"objective_function_value": incumbent["objective"], "mip_dual_bound": None,
                                   "mip_gap": None}}
        if result is not None:
            try:
                _unpack_worker_result(problem, chain, inverse_data, result)
            except cp.error.SolverError as exc:
                raise FairflipError(f"solver {solver} failed: {exc}") from exc
    if not isolate:
        _solve_in_process(problem, solver, opts)
    wall = time.perf_counter() - start
    answered = not stopped or incumbent is not None  # the problem holds this solve's answer
    stats = problem.solver_stats if answered else None
    status = cp.USER_LIMIT if stopped else str(problem.status)
    solved = answered and status in cp.settings.SOLUTION_PRESENT and z.value is not None
    objective = float(problem.value) + constant if solved else None
    if stopped:
        # The deadline stopped it: the last dual bound the solver reported on the way is still a valid bound.
        bound = None if last_bound is None or not problem.is_mixed_integer() else last_bound + constant
        gap = None
    elif problem.is_mixed_integer():
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
        solve_time=float(stats.solve_time) if not stopped and stats is not None and stats.solve_time is not None
        else wall,
        wall_time=wall,
        time_limit_hit=status == cp.USER_LIMIT,
        solver=solver_version(solver),
        options={k: v for k, v in opts.items() if isinstance(v, (int, float, str, bool))},
        load_dependent=status == cp.USER_LIMIT or (problem.is_mixed_integer()
                                                    and not (solver == "HIGHS" and opts.get("threads") == 1)),
        hard_stopped=stopped,
    )


def _solve_in_process(problem: cp.Problem, solver: str, opts: dict[str, Any]) -> None:
    """CVXPY's own ``problem.solve`` (the solver's soft time limit only)."""
    if solver == "HIGHS":
        _silence_highs_banner()

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
