"""``oracle-convex``: oracle flips from LP and MILP formulations over affine scores, solved with CVXPY.

The oracle is omniscient: it reads every training row and the firm's exact training procedure. It is a reference
that bounds what any collective could achieve, not a strategy a real collective could run.

Ridge firm (``LinearFirm(loss="squared")``): the firm's optimum is affine in the labels, so with flip indicators
z in {0, 1}^c (c candidates, sum z <= M)

    theta*(z) = theta0 + sum_j z_j Delta_j,    Delta_j = dtheta*/dy_j (1 - 2 y_j),

exactly (the ridge label Jacobian is constant), and every evaluation score is affine in z. Three formulations
(see :mod:`solvers.milp`):

- ``score-gap-lp``: the fairness gap of group *mean scores* relaxed to z in [0, 1]^c, then rounded (prefixes of the
  z ordering, each retrained exactly, the best kept);
- ``score-gap-milp``: the same surrogate over binary z;
- ``exact-milp``: the hard-threshold objective itself with big-M prediction indicators. The firm predicts 1 iff
  its score is > 0; the MILP allows both predictions inside a small band around the threshold (see
  :mod:`solvers.milp`), so it is a relaxation of the true problem: its optimum and every dual bound are at most
  the true optimum, whatever the flips put a score within rounding distance of the threshold.

Only ``exact-milp`` on the ridge firm fills ``lower_bound``: the solver's proven dual bound (at optimality, or the
best bound when the time limit stops it), with ``bound_source = "milp-dual"``, or ``"trivial"`` when that bound is
0 (early in branch and bound). Its flips are retrained exactly: ``objective`` is their true objective,
``solver_objective`` the MILP's value, and ``status`` is ``optimal`` only when the two sides meet (the true
objective within the solver's relative gap of the bound). A surrogate's value is never presented as a bound.

HiGHS runs single-threaded with the method's seed, so a run that ends within its time limit is reproducible;
``info["load_dependent"]`` says when a run stopped on the wall-clock limit (its answer can then depend on
machine load).

Logistic and smoothed-hinge firms: the affine model is a first-order (influence) linearisation
theta(z) ~ theta_k + J_k (z - z_k) around the current flips z_k. Each round solves the chosen formulation inside
the trust region ||z - z_k||_1 <= r, retrains the firm exactly on the answer and accepts it when the true objective
improves; otherwise r halves. The rounds stop when r reaches 0 (or after ``max_rounds``). These firms get no
lower bound: the linearisation bounds nothing.

Every answer is compared, after exact retraining, with flipping nothing, so the method never returns flips that
are worse in-sample than no flips. A budget of 0 (or no candidates) is answered by that one set: ``optimal`` with
``bound_source = "enumeration"``.

``FlipResult.info`` holds ``solver``, ``formulation``, ``status`` (CVXPY's: ``optimal``, ``user_limit`` on the
time limit, ...), ``objective`` (the solver's, surrogate or exact), ``bound`` (its best bound), ``mip_gap``
(relative, as the solver reports it), ``abs_gap``, ``n_binary``, ``solve_time``, ``wall_time``,
``true_objective`` (of the returned flips after exact retraining), ``objective_no_flips`` and, for non-ridge
firms, ``rounds`` (one such report per trust-region round; the top-level fields describe the last round and
``solve_time`` sums them).
"""

from __future__ import annotations

from typing import Any, Literal

import cvxpy as cp
import numpy as np
import torch
from cvxpy.reductions.solvers.defines import INSTALLED_MI_SOLVERS

from fairflip._errors import FairflipError
from fairflip.firms import LinearFirm, require_differentiable
from fairflip.methods import FlipMethod, FlipResult, register_method
from fairflip.problem import FlipProblem

from .certificate import meets
from .implicit import label_jacobian
from .milp import (AffineScores, FairnessGaps, LowRankModel, SolveReport, exact_threshold_problem,
                   factored_threshold_problem, fairness_gaps, score_gap_problem, solve)

Formulation = Literal["auto", "score-gap-lp", "score-gap-milp", "exact-milp"]
FORMULATIONS = ("auto", "score-gap-lp", "score-gap-milp", "exact-milp")

TRIVIAL_BOUND = 1e-12
"""A MILP dual bound at or below this is 0 up to rounding (e.g. 2.9e-16 on ridge COMPAS at M = 100) and is
reported as the trivial bound."""

AUTO_EXACT_ROWS = 300
"""``auto`` poses the exact MILP when the objective is measured on at most this many rows, else the score-gap
MILP. The exact MILP's difficulty grows with the rows whose sign M flips can change and, above all, with M: on
COMPAS subsamples (ridge firm, EqOd, HiGHS) it proved optimality within 60 s up to 2400 rows for M <= 5 but only
up to about 150 rows for M = 10. Past the time limit it still returns its incumbent and a valid bound."""


@register_method("oracle-convex")
class ConvexOracle(FlipMethod):
    """Oracle flips by LP / MILP over the firm's affine (ridge) or linearised (logistic) scores.

    Args:
        formulation: ``auto`` (exact-milp for the ridge firm when the objective rows number at most
            ``exact_rows``, else score-gap-milp; the same choice inside the trust region for other linear firms),
            ``score-gap-lp``, ``score-gap-milp`` or ``exact-milp``.
        solver: any installed CVXPY solver (HiGHS by default); MILP formulations need a mixed-integer solver.
        time_limit: seconds per solve (where the solver supports a limit); on the limit the incumbent and the best
            bound are used. With HiGHS it is also a hard wall-clock limit: a solve still running at
            :func:`solvers.milp.hard_deadline` (the limit plus max(2 s, 10 %)) is stopped, and the result keeps
            the last incumbent and the last dual bound HiGHS reported on the way (``info["hard_stopped"]``).
        tolerance: half-width of the band around the threshold inside which ``exact-milp`` allows both
            predictions (absolute, plus a relative rounding term; see :func:`solvers.milp.threshold_band`).
        exact_rows: the ``auto`` threshold on evaluation rows.
        radius: initial L1 trust-region radius for non-ridge firms (default: the budget).
        max_rounds: the most linearisation rounds for non-ridge firms.
        solver_options: extra keyword options passed to the solver.
        factored: for the ridge firm, pose ``exact-milp`` in factored form
            (:func:`solvers.milp.factored_threshold_problem`): the scores through g = J z (J the p x c label
            Jacobian, so a row's constraint pair has p + 1 non-zeros), one integer per class of identical
            candidates and one prediction per class of identical evaluation rows. The same relaxation, solved far
            faster (the largest COMPAS subsample proven optimal within 60 s at M = 10: 3,200 rows against 200);
            False poses the dense form of :func:`solvers.milp.exact_threshold_problem`.
        incumbent: known flip sets for the ridge exact MILP's cutoff: one array of candidate rows (used for every
            budget it fits) or a dict {budget: array}. The set is retrained; with v its true objective the MILP
            gets the constraint objective <= v (+ 1e-9), so the solver prunes everything that cannot beat it (on
            COMPAS at M = 25, 150 s, ``bench_certificate``: gap 0.0195 with it, 0.0224 without; the bounds were
            alike, 0.1914 and 0.1921, the gain came from a better set found). The reported
            bound is the least of v and the dual bound (every set's MILP value is at most its true one, so a set
            cut off is worse than v), v itself when the constrained MILP is infeasible; the answer is the better
            of the MILP's set and the incumbent. Only the factored ridge exact MILP uses it; its rows are checked
            (candidates, no repeats) for every formulation.
    """

    omniscient = True

    def __init__(
        self,
        *,
        formulation: Formulation = "auto",
        solver: str = "HIGHS",
        time_limit: float = 60.0,
        tolerance: float = 1e-7,
        exact_rows: int = AUTO_EXACT_ROWS,
        radius: int | None = None,
        max_rounds: int = 20,
        solver_options: dict[str, Any] | None = None,
        seed: int = 0,
        factored: bool = True,
        incumbent: np.ndarray | dict | None = None,
    ) -> None:
        super().__init__(seed=seed)
        if formulation not in FORMULATIONS:
            raise FairflipError(f"unknown formulation '{formulation}'; choose one of {', '.join(FORMULATIONS)}")
        solver_name = str(solver).upper()
        if solver_name not in cp.installed_solvers():
            raise FairflipError(f"unknown or uninstalled CVXPY solver '{solver}'; installed: "
                                f"{', '.join(cp.installed_solvers())}")
        if not (float(time_limit) > 0):
            raise FairflipError(f"time_limit must be positive seconds, got {time_limit!r}")
        if not (float(tolerance) > 0):
            raise FairflipError(f"tolerance must be a positive number, got {tolerance!r}")
        if radius is not None and (not isinstance(radius, (int, np.integer)) or radius < 1):
            raise FairflipError(f"radius must be a positive integer or None, got {radius!r}")
        if not isinstance(max_rounds, (int, np.integer)) or max_rounds < 1:
            raise FairflipError(f"max_rounds must be a positive integer, got {max_rounds!r}")
        if not isinstance(exact_rows, (int, np.integer)) or exact_rows < 0:
            raise FairflipError(f"exact_rows must be a non-negative integer, got {exact_rows!r}")
        if not isinstance(factored, (bool, np.bool_)):
            raise FairflipError(f"factored must be True or False, got {factored!r}")
        self.factored = bool(factored)
        if incumbent is not None and not isinstance(incumbent, dict):
            incumbent = np.asarray(incumbent)
            if incumbent.ndim != 1 or (incumbent.size and not np.issubdtype(incumbent.dtype, np.integer)):
                raise FairflipError("incumbent must be a 1-D array of candidate rows or a dict {budget: array}")
        self.incumbent = incumbent
        self.formulation = formulation
        self.solver = solver_name
        self.time_limit = float(time_limit)
        self.tolerance = float(tolerance)
        self.exact_rows = int(exact_rows)
        self.radius = None if radius is None else int(radius)
        self.max_rounds = int(max_rounds)
        self.solver_options = dict(solver_options or {})
        if formulation in ("score-gap-milp", "exact-milp"):
            self._check_mip_solver(formulation)

    def _check_mip_solver(self, formulation: str) -> None:
        if self.solver not in INSTALLED_MI_SOLVERS:
            raise FairflipError(f"formulation '{formulation}' needs a mixed-integer solver; '{self.solver}' is not "
                                f"one (installed: {', '.join(INSTALLED_MI_SOLVERS)})")

    def resolve_formulation(self, n_eval: int) -> str:
        """The formulation used for an objective measured on ``n_eval`` rows (``auto`` resolved)."""
        if self.formulation != "auto":
            return self.formulation
        chosen = "exact-milp" if n_eval <= self.exact_rows else "score-gap-milp"
        self._check_mip_solver(chosen)
        return chosen

    # ----- the method -----
    def _select(self, problem: FlipProblem, budget: int) -> FlipResult:
        firm = problem.firm
        require_differentiable(firm, "oracle-convex")
        # A bad incumbent is an error whichever formulation runs (only the ridge exact MILP uses it).
        for inc in (self.incumbent.values() if isinstance(self.incumbent, dict) else [self.incumbent]):
            if inc is not None:
                problem.check_flips(inc)
        X_eval, y_eval, a_eval = problem.evaluation_set
        gaps = fairness_gaps(problem.objective, y_eval, a_eval)
        formulation = self.resolve_formulation(len(y_eval))
        none = np.zeros(0, dtype=np.int64)
        no_flip_value = float(problem.objective_of([none])[0])
        info: dict[str, Any] = {"solver": self.solver, "formulation": formulation, "firm": firm.name,
                                "objective_no_flips": no_flip_value}
        cands = problem.candidates
        if budget == 0 or len(cands) == 0:
            # Flipping nothing is the only choice, so its value is the optimum (a valid bound for every firm).
            info.update(status="trivial", objective=None, bound=None, mip_gap=None, solve_time=0.0,
                        true_objective=no_flip_value)
            return FlipResult(flipped=none, objective=no_flip_value, status="optimal", lower_bound=no_flip_value,
                              bound_source="enumeration", info=info)
        linear = ScoreLinearisation(problem, firm, np.c_[np.asarray(X_eval, dtype=np.float64), np.ones(len(y_eval))])
        if firm.loss == "squared":
            return self._solve_ridge(problem, budget, linear, gaps, formulation, no_flip_value, info)
        return self._trust_region(problem, budget, linear, gaps, formulation, no_flip_value, info)

    def _solve_once(self, model: AffineScores, gaps: FairnessGaps, budget: int, problem: FlipProblem,
                    formulation: str, moves: int | None) -> SolveReport:
        if formulation == "exact-milp":
            prob, z, const = exact_threshold_problem(model, gaps, budget, error_weight=problem.error_weight,
                                                     tolerance=self.tolerance, moves=moves)
        else:
            prob, z, const = score_gap_problem(model, gaps, budget, integer=formulation == "score-gap-milp",
                                               error_weight=problem.error_weight, moves=moves)
        return solve(prob, z, const, solver=self.solver, time_limit=self.time_limit, options=self.solver_options,
                     seed=self.seed)

    @staticmethod
    def _flip_sets(report: SolveReport, cands: np.ndarray, budget: int, formulation: str) -> list[np.ndarray]:
        """Integral flip sets to retrain from a solver's answer: the binary solution, or LP roundings."""
        if report.z is None:
            return []
        if formulation != "score-gap-lp":
            return [cands[report.z > 0.5]]
        # Prefixes of the LP ordering: its (near-)integral part, its support and the full budget.
        order = np.argsort(-report.z, kind="stable")
        sizes = {int((report.z > 0.5).sum()), int((report.z > 1e-6).sum()), budget}
        return [np.sort(cands[order[:k]]) for k in sorted({min(s, budget, len(cands)) for s in sizes}) if k > 0]

    @staticmethod
    def _report_info(report: SolveReport) -> dict[str, Any]:
        return {"status": report.status, "objective": report.objective, "bound": report.bound,
                "mip_gap": report.mip_gap, "abs_gap": report.abs_gap, "n_binary": report.n_binary,
                "solve_time": report.solve_time, "wall_time": report.wall_time,
                "time_limit_hit": report.time_limit_hit, "solver_version": report.solver,
                "solver_options": report.options, "load_dependent": report.load_dependent,
                "hard_stopped": report.hard_stopped}

    def _solve_ridge(self, problem, budget, linear, gaps, formulation, no_flip_value, info) -> FlipResult:
        none = np.zeros(0, dtype=np.int64)
        cut_set, cut = None, None
        if formulation == "exact-milp" and self.factored:
            cut_set, cut = self._cutoff(problem, budget)
            milp = factored_threshold_problem(linear.factored(none), gaps, budget, error_weight=problem.error_weight,
                                              tolerance=self.tolerance)
            prob = milp.problem
            if cut is not None:
                # Only sets that can beat the incumbent: their MILP value is at most their true one.
                prob = cp.Problem(prob.objective, prob.constraints
                                  + [prob.objective.expr + milp.constant <= cut + 1e-9])
                info.update(cutoff=cut)
            report = solve(prob, milp.counts, milp.constant, solver=self.solver, time_limit=self.time_limit,
                           options=self.solver_options, seed=self.seed)
            if report.z is not None:
                report.z = milp.decode(report.z)
            info.update(factored=True, candidate_classes=len(milp.cgroups), row_classes=len(milp.rgroups))
        else:
            report = self._solve_once(linear.at(none), gaps, budget, problem, formulation, moves=None)
        info.update(self._report_info(report))
        info["solver_objective_kind"] = "exact-milp" if formulation == "exact-milp" else formulation
        flipped, value = _best_of(problem, self._flip_sets(report, problem.candidates, budget, formulation),
                                  none, no_flip_value)
        if cut_set is not None and cut < value:
            flipped, value = cut_set, cut
        info["true_objective"] = value
        result = FlipResult(flipped=flipped, objective=value, solver_objective=report.objective,
                            status="time_limit" if report.time_limit_hit else "feasible",
                            time_limit_hit=report.time_limit_hit, solver=report.solver, info=info)
        if formulation == "exact-milp":
            bound = report.bound if report.status in (cp.OPTIMAL, cp.USER_LIMIT) else None
            if cut is not None and report.status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
                bound = cut  # no set beats the incumbent
            elif cut is not None and bound is not None:
                bound = min(bound, cut)
            if bound is not None:
                certify(result, bound, report.mip_gap)
        return result

    def _cutoff(self, problem: FlipProblem, budget: int) -> tuple[np.ndarray | None, float | None]:
        """The incumbent set for ``budget`` (see ``incumbent``) and its true objective, or (None, None)."""
        inc = self.incumbent
        if isinstance(inc, dict):
            inc = inc.get(budget)
        if inc is None:
            return None, None
        if len(inc) > budget:
            return None, None
        inc = problem.check_flips(inc, budget)  # sorted, candidates only
        return inc, float(problem.objective_of([inc])[0])

    def _trust_region(self, problem, budget, linear, gaps, formulation, no_flip_value, info) -> FlipResult:
        flipped, value = np.zeros(0, dtype=np.int64), no_flip_value
        moves = self.radius if self.radius is not None else budget
        rounds: list[dict[str, Any]] = []
        total_time = 0.0
        for _ in range(self.max_rounds):
            model = linear.at(flipped)
            report = self._solve_once(model, gaps, budget, problem, formulation, moves=moves)
            total_time += report.solve_time
            sets = [s for s in self._flip_sets(report, problem.candidates, budget, formulation)
                    if not np.array_equal(s, flipped)]
            new_flips, new_value = _best_of(problem, sets, flipped, value)
            accepted = new_value < value
            rounds.append({"radius": moves, **self._report_info(report), "incumbent_objective": new_value,
                           "accepted": bool(accepted)})
            if accepted:
                flipped, value = new_flips, new_value
            else:
                moves //= 2
                if moves == 0:
                    break
        # The top-level solver fields describe the last round; ``rounds`` keeps every round's report.
        info.update({k: v for k, v in rounds[-1].items() if k not in ("radius", "incumbent_objective", "accepted")})
        info.update(solve_time=total_time, rounds=rounds, true_objective=value,
                    solver_objective_kind=f"{formulation} (linearised at the last centre)")
        hit = any(r["time_limit_hit"] for r in rounds)
        info["load_dependent"] = any(r["load_dependent"] for r in rounds)
        return FlipResult(flipped=flipped, objective=value, solver_objective=rounds[-1]["objective"],
                          status="time_limit" if hit else "feasible", time_limit_hit=hit,
                          solver=rounds[-1]["solver_version"], info=info)


def certify(result: FlipResult, bound: float, mip_gap: float | None = None) -> None:
    """Attach a MILP's dual ``bound`` to ``result`` (whose ``objective`` is a retrained flip set's true value).

    The true objective is >= 0, so a bound <= :data:`TRIVIAL_BOUND` (0 up to the solver's rounding) is reported as
    the trivial bound 0 (``bound_source="trivial"``);
    otherwise the source is ``milp-dual``. A bound above ``result.objective`` is withdrawn and flagged
    (:meth:`FlipResult.check_bound`). ``status`` becomes ``optimal`` when objective and bound meet (see
    :func:`solvers.certificate.meets`); ``mip_gap`` is the solver's own relative gap.
    """
    trivial = not (bound > TRIVIAL_BOUND)
    result.lower_bound = 0.0 if trivial else float(bound)
    result.bound_source = "trivial" if trivial else "milp-dual"
    result.mip_gap = None if mip_gap is None else float(mip_gap)
    result.check_bound()
    if result.lower_bound is not None and result.objective is not None and result.lower_bound > result.objective:
        result.lower_bound = float(result.objective)  # above by rounding only (check_bound's tolerance)
    if meets(result.objective, result.lower_bound):
        result.status = "optimal"


class ScoreLinearisation:
    """Builds the affine score model of a linear firm around given flips (exact for ridge, first order otherwise).

    Around flips z_k the firm is retrained exactly (theta_k) and the label Jacobian taken there, so the model's
    scores equal the firm's at z_k; for the ridge firm they equal the retrained firm's scores for every z.

    Args:
        problem: the flip problem (n training rows, c candidates).
        firm: its linear firm.
        eval_design: shape (m, p) evaluation rows with the intercept column.
    """

    def __init__(self, problem: FlipProblem, firm: LinearFirm, eval_design: np.ndarray) -> None:
        self.problem = problem
        self.firm = firm
        self.eval_design = eval_design
        self.Xd = firm.design(problem.X)
        self.sw = None if problem.sample_weight is None else torch.as_tensor(
            problem.sample_weight, dtype=firm.dtype, device=self.Xd.device)
        cands = problem.candidates
        self.rows = torch.as_tensor(cands, device=self.Xd.device)
        # A flip moves candidate j's label by (1 - 2 y_j); candidates all carry the source label.
        self.sign = 1.0 - 2.0 * problem.y[cands].astype(np.float64)

    def _factors(self, flipped: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(scores at ``flipped`` minus the threshold, shape (m,); J, shape (p, c), the parameters' change per
        candidate flip)."""
        problem, firm = self.problem, self.firm
        theta = problem.fit_flip_sets([flipped])[0]
        theta_t = torch.as_tensor(theta, dtype=firm.dtype, device=self.Xd.device)
        labels = torch.as_tensor(problem.flipped_labels(flipped), dtype=firm.dtype, device=self.Xd.device)
        jac = label_jacobian(firm, self.Xd, theta_t, self.rows, sample_weight=self.sw, y=labels).cpu().numpy()
        return self.eval_design @ theta - firm.score_threshold, jac * self.sign[None, :]

    def at(self, flipped: np.ndarray) -> AffineScores:
        """The affine model around the flip set ``flipped`` (shape (k,) candidate rows)."""
        base, J = self._factors(flipped)
        return AffineScores(base=base, slope=self.eval_design @ J,
                            center=np.isin(self.problem.candidates, flipped).astype(np.float64))

    def factored(self, flipped: np.ndarray) -> LowRankModel:
        """The same model at no further flips from ``flipped``, in factored form: scores base + E (J z) (E the
        evaluation design, shape (m, p); J shape (p, c)); its range [lo, hi] is a rounding margin of the
        factored products (a relative 1e-12 of their magnitude)."""
        base, J = self._factors(flipped)
        E = np.asarray(self.eval_design, dtype=np.float64)
        Q = np.ascontiguousarray(J.T)
        k = len(self.problem.candidates)
        gmax = np.abs(Q).sum(axis=0) if k else np.zeros(E.shape[1])
        slack = 1e-12 * (np.abs(E) @ gmax + np.abs(base)) + 1e-15
        return LowRankModel(Q=Q, EH=E, base=base, lo=-slack, hi=slack, E=E)


def _best_of(problem: FlipProblem, flip_sets: list[np.ndarray], incumbent: np.ndarray,
             incumbent_value: float) -> tuple[np.ndarray, float]:
    """The flip set with the lowest true objective after exact retraining; the incumbent unless one is lower."""
    if not flip_sets:
        return incumbent, incumbent_value
    values = problem.objective_of(flip_sets)
    k = int(np.argmin(values))
    if values[k] < incumbent_value:
        return flip_sets[k], float(values[k])
    return incumbent, incumbent_value
