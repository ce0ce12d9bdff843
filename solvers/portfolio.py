"""``oracle``: the portfolio of oracle solvers and heuristic starting points; the best in-sample flip set wins.

The oracle is omniscient: it reads every training row and retrains the firm exactly, which no real collective
can. It is a reference that bounds what a collective could do (the yardstick of the heuristics' optimality gap),
not a strategy a collective can run.

Components (each optional):

- ``relaxed``: ``oracle-relaxed`` (hypergradient relaxation, rounding, local search), all budgets in one batch;
- ``convex``: ``oracle-convex`` (CVXPY LP/MILP; exact MILP with a certified bound for the ridge firm), used when
  registered; if it raises, the portfolio records the error and goes on without it;
- ``greedy``: greedy forward selection with exact retraining, when c * M retrainings are affordable (one path
  serves every budget: greedy's answer for a smaller budget is a prefix of its answer for a larger one);
- ``heuristics``: the flip sets of the registered heuristics (random, rb-prob, rb-label, rb-dist, massaging).

Every component's flip set is scored by exact retraining; the ``polish_top`` best distinct ones are improved by
local search; the best true objective wins. As every heuristic's own flip set is among the candidates, the
oracle is never worse in-sample than any heuristic it ran. ``lower_bound`` is the largest certified bound a
component reported (e.g. the ridge firm's exact MILP bound), else None.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

from fairflip._errors import FairflipError, check_budget
from fairflip.firms import require_differentiable
from fairflip.methods import HEURISTICS, FlipMethod, FlipResult, SolveControl, available_methods, get_method, register_method
from fairflip.problem import FlipProblem
from fairflip.surrogates import FairnessSurrogate

from .exact import batched_objectives, greedy_path, local_search
from .relaxed import make_ranker, soft_flip_bilevel

COMPONENTS = ("relaxed", "convex", "greedy", "heuristics")


@register_method("oracle")
class PortfolioOracle(FlipMethod):
    """Best in-sample flip set over oracle solvers and heuristic starting points (linear firms).

    Omniscient: a reference bounding what a collective could do, not a strategy a real collective can run.

    Args:
        seed: seed passed to the heuristics that take one (random), so they match runs of those heuristics.
        components: which of ``relaxed``, ``convex``, ``greedy``, ``heuristics`` to run.
        heuristics: heuristic names used as starting points (those not registered are skipped).
        relaxed_params: keyword options of ``oracle-relaxed``.
        convex_params: keyword options of ``oracle-convex``.
        greedy_max_retrains: run greedy only when candidates * budget is at most this.
        convex_max_entries: run the convex component only when (evaluation rows) * (candidates), the size of its
            dense score-slope matrix, is at most this; above it the component is skipped (noted in ``info``), so
            memory stays linear in n on census-size data.
        polish_top: local search starts from this many best distinct starting sets (the relaxed answer is
            already polished).
        neighbourhood, swap_shortlist, max_evaluations: local-search limits (see ``local_search``).
        batch_size: flip sets retrained at once.
    """

    omniscient = True

    def __init__(
        self,
        *,
        seed: int = 0,
        components: Sequence[str] = COMPONENTS,
        heuristics: Sequence[str] = HEURISTICS,
        relaxed_params: dict[str, Any] | None = None,
        convex_params: dict[str, Any] | None = None,
        greedy_max_retrains: int = 20_000,
        convex_max_entries: int = 50_000_000,
        polish_top: int = 2,
        neighbourhood: int = 64,
        swap_shortlist: int = 16,
        max_evaluations: int = 20_000,
        batch_size: int = 256,
    ) -> None:
        unknown = sorted(set(components) - set(COMPONENTS))
        if unknown:
            raise FairflipError(f"unknown portfolio component(s) {unknown}; choose among {', '.join(COMPONENTS)}")
        if polish_top < 0:
            raise FairflipError(f"polish_top must be non-negative, got {polish_top}")
        super().__init__(seed=seed)
        self.components = tuple(components)
        self.heuristics = tuple(heuristics)
        self.relaxed_params = dict(relaxed_params or {})
        self.convex_params = dict(convex_params or {})
        self.greedy_max_retrains = greedy_max_retrains
        self.convex_max_entries = convex_max_entries
        self.polish_top = polish_top
        self.search = dict(neighbourhood=neighbourhood, swap_shortlist=swap_shortlist,
                           max_evaluations=max_evaluations, batch_size=batch_size)

    def _select_many(self, problem: FlipProblem, budgets: list[int], control: SolveControl) -> list[FlipResult]:
        """Run the portfolio for several budgets (the relaxed component solves them in one batch).

        Args:
            problem: the flip problem; its firm must be linear.
            budgets: B budgets M_b >= 0.

        Returns:
            B :class:`FlipResult` with ``info["winner"]`` (the component whose flips won) and
            ``info["components"]`` (each component's objective before and after local search, and its time).
        """
        budgets = [check_budget(b) for b in budgets]
        require_differentiable(problem.firm, "the oracle portfolio")
        starts: list[dict[str, tuple[np.ndarray, float | None, dict]]] = [{} for _ in budgets]
        bounds: list[list[float]] = [[] for _ in budgets]
        errors: dict[str, str] = {}
        if "relaxed" in self.components:
            t = time.perf_counter()
            relaxed = get_method("oracle-relaxed", seed=self.seed, **self.relaxed_params).select_many(problem, budgets)
            per = (time.perf_counter() - t) / max(len(budgets), 1)
            for b, r in enumerate(relaxed):
                starts[b]["oracle-relaxed"] = (r.flipped, per, {"polished": True})
        eval_rows = problem.n if problem.validation is None else len(problem.validation[1])
        convex_entries = eval_rows * len(problem.candidates)
        if "convex" in self.components and convex_entries > self.convex_max_entries:
            errors["oracle-convex"] = (f"skipped: its slope matrix would hold {convex_entries:,} entries "
                                       f"(convex_max_entries={self.convex_max_entries:,})")
        elif "convex" in self.components:
            for b, M in enumerate(budgets):
                t = time.perf_counter()
                try:
                    r = get_method("oracle-convex", **self.convex_params).select(problem, M)
                except Exception as exc:  # the portfolio must work without this component, whatever it raises
                    errors["oracle-convex"] = f"{type(exc).__name__}: {exc}"
                    break
                starts[b]["oracle-convex"] = (r.flipped, time.perf_counter() - t, {})
                if r.lower_bound is not None:
                    bounds[b].append(float(r.lower_bound))
        if "greedy" in self.components:
            self._greedy(problem, budgets, starts)
        if "heuristics" in self.components:
            registered = set(available_methods())
            for name in self.heuristics:
                if name not in registered:
                    continue
                for b, M in enumerate(budgets):
                    t = time.perf_counter()
                    try:
                        r = get_method(name, seed=self.seed).select(problem, M)
                    except FairflipError as exc:  # e.g. a heuristic that needs more majority rows than known
                        errors[name] = str(exc)
                        break
                    starts[b][name] = (r.flipped, time.perf_counter() - t, {})
        starts = [{**s, "none": (np.zeros(0, dtype=np.int64), 0.0, {})} for s in starts]
        ranker = self._ranker(problem)
        return [self._finish(problem, M, starts[b], bounds[b], errors, ranker) for b, M in enumerate(budgets)]

    def _greedy(self, problem: FlipProblem, budgets: list[int], starts: list[dict]) -> None:
        c = len(problem.candidates)
        affordable = [M for M in budgets if c * M <= self.greedy_max_retrains]
        if not affordable:
            return
        t = time.perf_counter()
        order, _ = greedy_path(problem, max(affordable), batch_size=self.search["batch_size"])
        elapsed = time.perf_counter() - t
        for b, M in enumerate(budgets):
            if M in affordable:
                starts[b]["greedy"] = (np.sort(order[:M]), elapsed, {})

    def _ranker(self, problem: FlipProblem):
        params = self.relaxed_params
        kind = params.get("surrogate", "sigmoid")
        temperature = params.get("temperature", params.get("temperature_end", 0.05))
        surrogate = FairnessSurrogate(problem.objective, kind, temperature, problem.error_weight)
        return make_ranker(problem, soft_flip_bilevel(problem, surrogate),
                           solver=params.get("linear_solver", "auto"))

    def _finish(self, problem: FlipProblem, budget: int, starts: dict, bounds: list[float], errors: dict,
                ranker) -> FlipResult:
        names = list(starts)
        sets = [problem.check_flips(starts[n][0], budget) for n in names]
        values = batched_objectives(problem, sets, batch_size=self.search["batch_size"])
        comps: dict[str, dict[str, Any]] = {
            n: {"objective": float(v), "n_flipped": int(len(s)), "time_s": starts[n][1]}
            for n, s, v in zip(names, sets, values)}
        # Polish the best few distinct starting sets that local search has not already polished.
        seen: set[tuple[int, ...]] = set()
        polished = 0
        for i in np.argsort(values, kind="stable"):
            key = tuple(sets[i].tolist())
            if polished >= self.polish_top:
                break
            if key in seen or starts[names[i]][2].get("polished"):
                continue
            seen.add(key)
            found = local_search(problem, sets[i], budget, ranker=ranker, **self.search)
            comps[names[i]].update(polished_objective=found.objective, local_search_evaluations=found.evaluations)
            sets[i], values[i] = found.flipped, found.objective
            names[i] = f"{names[i]} + local search"
            polished += 1
        best = int(np.argmin(values))  # ties go to the earlier component (relaxed, convex, greedy, heuristics, none)
        lower = max(bounds) if bounds else None
        info = {"winner": names[best], "objective": float(values[best]), "components": comps,
                "lower_bound_source": "oracle-convex" if bounds else None}
        if errors:
            info["errors"] = errors
        return FlipResult(flipped=sets[best], lower_bound=lower, info=info)
