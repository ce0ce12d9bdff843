"""``oracle``: the portfolio of oracle solvers and heuristic starting points; the best in-sample flip set wins.

The oracle is omniscient: it reads every training row and retrains the firm exactly, which no real collective
can. It is a reference that bounds what a collective could do (the yardstick of the heuristics' optimality gap),
not a strategy a collective can run.

One call answers every budget, in this order (each stage optional, each flip set retrained at most once per call
through the problem's objective cache):

1. ``enumerate``: when the flip sets within the largest budget number at most ``enumerate_max_sets``, or their
   retraining is estimated (from a measured probe batch) to take at most ``enumerate_max_seconds``, they are all
   retrained in batched passes and each budget gets its proven optimum (status ``optimal``,
   ``bound_source = "enumeration"``); nothing else runs.
2. ``heuristics``: the flip sets of the registered heuristics (random, rb-prob, rb-label, rb-dist, massaging),
   scored in one batched pass; together with flipping nothing they are the first incumbents.
3. ``relaxed``: ``oracle-relaxed``'s relaxation and rounding for all budgets in one batch (its own local search
   is left to stage 6).
4. ``convex``: ``oracle-convex`` (CVXPY LP/MILP), by default only for the ridge firm, where it is exact and
   certifies a bound. On the logistic firm its trust-region linearisation gave the worst start of all on COMPAS
   at M = 10, 25, 50 and 100 (no flips at 10 and 25) for 2 to 15 s per budget, so it runs there only when
   ``convex_firms=None``.
5. ``greedy``: greedy forward selection retraining the ``greedy_shortlist`` most promising additions per step
   (first-order estimates); one path serves every budget, as greedy's answer for a smaller budget is a prefix.
   It stops after a few flips on COMPAS but gave the second-best start on Adult at M = 10.
6. polish: local search (most promising moves first, see :mod:`fairflip.solvers.search`) from the
   ``polish_top`` best distinct starting sets of each budget, budgets in increasing order, the previous budget's
   answer being a starting set of the next (so the objective never rises with the budget). Greedy and local
   search skip the moves a first-order screen shows cannot improve (``screen``).

Stages stop early when they cannot improve the incumbent (an objective of 0 is optimal: every built-in
objective is non-negative) and when the time limit passes; the incumbent is then returned with status
``time_limit``. As every heuristic's own flip set is among the candidates, the oracle is never worse in-sample
than any heuristic it ran. ``lower_bound`` is the largest certified bound a component reported (enumeration, or
the ridge firm's exact MILP bound), else None.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Sequence

import numpy as np

from fairflip._errors import FairflipError, check_budget
from fairflip.firms import require_differentiable
from fairflip.objectives import get_objective
from fairflip.methods import HEURISTICS, FlipMethod, FlipResult, SolveControl, available_methods, get_method, register_method
from fairflip.problem import FlipProblem, flip_set_key
from fairflip.surrogates import FairnessSurrogate

from .certificate import adopt_best_bound
from .exact import IMPROVE_TOL, count_flip_sets, enumerate_optimum, enumeration_cost
from .influence import influence_ranker, influence_screen
from .relaxed import make_ranker, soft_flip_bilevel
from .search import ranked_greedy, ranked_local_search, threads_for

COMPONENTS = ("enumerate", "heuristics", "relaxed", "convex", "greedy")
RANKERS = ("auto", "hybrid", "influence", "surrogate")
DEFAULT_COMPONENTS = ("enumerate", "heuristics", "relaxed", "convex", "greedy")
RANKERS = ("auto", "hybrid", "influence", "surrogate")
PORTFOLIO_MIN_STEPS = 10
"""The relaxation steps the portfolio runs at least (oracle-relaxed alone takes 5 on large instances): the
relaxation is a small share of the portfolio's time there (Adult, benchmarks/bench_portfolio.py, run 1)."""
PORTFOLIO_MAX_STEPS = 70
"""The relaxation steps the portfolio runs at most (oracle-relaxed alone takes 100 on small instances). Measured
with the portfolio over M = 10, 25, 50, 100 on German, Communities and Crime, COMPAS, Law and Dutch (8,000-row
subsamples), two seeds (40 cells): 70 steps against 100 gave 5 better and 3 worse final objectives (the sum of
the 40 objectives 0.018 lower), 50 steps 4 better and 3 worse (0.012 higher, seed 0); the local search absorbs
the difference, and the relaxation was a third of the portfolio's time on COMPAS."""
ENUMERATE_MAX_SETS = 20_000
"""Default ``enumerate_max_sets``: at most this many flip sets are enumerated without measuring their cost. A
batched pass retrains a flip set for about 1/250 of a full fit on COMPAS (benchmarks/bench_portfolio.py), so
20,000 sets cost about as much as the search stages do there; on small instances enumeration is both cheaper and
exact."""
ENUMERATE_MAX_SECONDS = 5.0
"""Default ``enumerate_max_seconds``: above ``enumerate_max_sets`` (and up to ``ENUMERATE_PROBE_MAX_SETS``),
the portfolio retrains a probe batch of flip sets of the largest budget's size (:func:`enumeration_cost`) and
enumerates when the estimated time is at most this (and within the time limit). 5 s is about what the search
stages cost per budget on 5,000-row tables on two CPU cores (Law 1.3 to 1.7 s, Dutch 2.7 to 3.5 s per budget),
so the proven optimum is bought for about the price of a search."""
ENUMERATE_PROBE_MAX_SETS = 2_000_000
"""Above this many flip sets the cost is not even measured (enumeration would not fit any sensible time)."""


@register_method("oracle")
class PortfolioOracle(FlipMethod):
    """Best in-sample flip set over oracle solvers and heuristic starting points (differentiable firms).

    Omniscient: a reference bounding what a collective could do, not a strategy a real collective can run.

    Args:
        seed: seed passed to the heuristics that take one (random), so they match runs of those heuristics.
        components: which of ``enumerate``, ``heuristics``, ``relaxed``, ``convex``, ``greedy`` may run.
        heuristics: heuristic names used as starting points (those not registered are skipped).
        relaxed_params: keyword options of ``oracle-relaxed`` (its local-search options are ignored: the
            portfolio polishes every start itself). Without ``steps``, oracle-relaxed's own step count is
            clamped to [PORTFOLIO_MIN_STEPS, PORTFOLIO_MAX_STEPS] = [10, 70].
        convex_params: keyword options of ``oracle-convex``.
        convex_firms: loss names of the firms the convex component runs on (``("squared",)``: the ridge firm,
            where it is exact and bounds the optimum); ``None`` runs it on every firm.
        enumerate_max_sets: enumerate (proven optimum) when the flip sets within the largest budget number at
            most this many.
        enumerate_max_seconds: above ``enumerate_max_sets``, enumerate when the measured per-set cost times the
            number of sets is at most this many seconds (0: never measure).
        greedy_shortlist: additions retrained per greedy step (the best first-order estimates).
        greedy_max_retrains: run greedy only while ``greedy_shortlist`` times the largest budget is at most this.
        convex_max_entries: run the convex component only when (evaluation rows) * (candidates), the size of its
            dense score-slope matrix, is at most this; above it the component is skipped (noted in ``info``), so
            memory stays linear in n on census-size data.
        polish_top: local search starts from this many best distinct starting sets per budget.
        ranker: the order in which local search and greedy retrain their moves: ``influence`` (the objective of
            each toggle's first-order predictions, :mod:`fairflip.solvers.influence`), ``surrogate`` (the
            relaxed surrogate's hypergradient), ``hybrid`` (influence, ties broken by the surrogate) or
            ``auto`` (surrogate). The influence ranker predicts single toggles' exact objectives almost
            perfectly, yet over German, Communities and Crime, COMPAS, Law and Dutch, two seeds and M = 10, 25,
            50, 100, the surrogate's order led the search to better sets more often (Dutch worse at every
            budget with influence or hybrid; the others mixed), so it stays the default.
        neighbourhood, swap_shortlist, first_moves, max_evaluations: local-search limits (see
            :func:`fairflip.solvers.search.ranked_local_search`).
        batch_size: flip sets retrained at once.
        screen: ``True``: leave out, in each local-search round, the moves that a first-order screen with an
            error allowance shows cannot improve (:func:`fairflip.solvers.influence.influence_screen`;
            gap-structure objectives and firms with a local model, else ignored); ``False``: retrain every
            shortlisted move; or a callable ``screen(problem) -> Screen | None`` building another screen (see
            :data:`fairflip.solvers.influence.Screen`). Over German, Communities and Crime, COMPAS,
            Law and Dutch, two seeds and M = 10, 25, 50, 100 it left out 40,569 moves of local search and greedy,
            none of which would have improved (each retrained), and the 40 final objectives were those of the
            unscreened search, from 16,634 local-search retrainings instead of 38,492
            (``benchmarks/bench_screen.py``).
    """

    omniscient = True

    def __init__(
        self,
        *,
        seed: int = 0,
        components: Sequence[str] = DEFAULT_COMPONENTS,
        heuristics: Sequence[str] = HEURISTICS,
        relaxed_params: dict[str, Any] | None = None,
        convex_params: dict[str, Any] | None = None,
        convex_firms: Sequence[str] | None = ("squared",),
        enumerate_max_sets: int = ENUMERATE_MAX_SETS,
        enumerate_max_seconds: float = ENUMERATE_MAX_SECONDS,
        greedy_shortlist: int = 32,
        greedy_max_retrains: int = 20_000,
        convex_max_entries: int = 50_000_000,
        polish_top: int = 2,
        ranker: str = "auto",
        neighbourhood: int = 64,
        swap_shortlist: int = 16,
        first_moves: int = 64,
        max_evaluations: int = 20_000,
        batch_size: int = 256,
        screen: bool | Callable[[FlipProblem], Any] = True,
    ) -> None:
        unknown = sorted(set(components) - set(COMPONENTS))
        if unknown:
            raise FairflipError(f"unknown portfolio component(s) {unknown}; choose among {', '.join(COMPONENTS)}")
        for what, v in (("polish_top", polish_top), ("enumerate_max_sets", enumerate_max_sets),
                        ("greedy_max_retrains", greedy_max_retrains)):
            if not isinstance(v, (int, np.integer)) or v < 0:
                raise FairflipError(f"{what} must be a non-negative integer, got {v!r}")
        for what, v in (("greedy_shortlist", greedy_shortlist), ("neighbourhood", neighbourhood),
                        ("swap_shortlist", swap_shortlist), ("first_moves", first_moves),
                        ("max_evaluations", max_evaluations), ("batch_size", batch_size)):
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise FairflipError(f"{what} must be a positive integer, got {v!r}")
        if not isinstance(enumerate_max_seconds, (int, float, np.integer, np.floating)) or not (
                0 <= enumerate_max_seconds < math.inf):
            raise FairflipError(f"enumerate_max_seconds must be a finite non-negative number, got "
                                f"{enumerate_max_seconds!r}")
        if not (isinstance(screen, (bool, np.bool_)) or callable(screen)):
            raise FairflipError(f"screen must be True, False or a callable problem -> screen, got {screen!r}")
        if ranker not in RANKERS:
            raise FairflipError(f"unknown ranker {ranker!r}; choose among {', '.join(RANKERS)}")
        super().__init__(seed=seed)
        self.ranker = ranker
        self.screen = screen if callable(screen) else bool(screen)
        self.components = tuple(components)
        self.enumerate_max_seconds = float(enumerate_max_seconds)
        self.heuristics = tuple(heuristics)
        self.relaxed_params = dict(relaxed_params or {})
        self.convex_params = dict(convex_params or {})
        self.convex_firms = None if convex_firms is None else tuple(convex_firms)
        self.enumerate_max_sets = int(enumerate_max_sets)
        self.greedy_shortlist = int(greedy_shortlist)
        self.greedy_max_retrains = int(greedy_max_retrains)
        self.convex_max_entries = convex_max_entries
        self.polish_top = int(polish_top)
        self.batch_size = int(batch_size)
        self.search = dict(neighbourhood=neighbourhood, swap_shortlist=swap_shortlist, first_moves=first_moves,
                           max_evaluations=max_evaluations, batch_size=batch_size)

    def _select_many(self, problem: FlipProblem, budgets: list[int], control: SolveControl) -> list[FlipResult]:
        """Run the portfolio for several budgets, sharing every retrained flip set between stages and budgets.

        Args:
            problem: the flip problem; its firm must be differentiable (linear).
            budgets: B budgets M_b >= 0.
            control: time limit and progress (``stage`` = the running stage, ``best`` = the best objective so
                far over the budgets, ``bound`` = the best certified bound when there is one).

        Returns:
            B :class:`FlipResult` with ``objective`` (true, in-sample), ``solver_objective`` (the same: the
            portfolio's own value is the true objective), ``info["winner"]`` (the component whose flips won),
            ``info["components"]`` (each component's objective before and after local search, and its time),
            ``info["retrained"]`` and ``info["cache_hits"]`` (flip sets retrained and answered from the cache).
        """
        budgets = [check_budget(b) for b in budgets]
        require_differentiable(problem.firm, "the oracle portfolio")
        with threads_for(problem), problem.objective_cache() as cache:
            run = _Run(self, problem, budgets, control)
            if "enumerate" in self.components and run.enumerate():
                return run.results(cache)
            run.start()
            for stage in ("heuristics", "relaxed", "convex", "greedy"):
                if stage in self.components and run.open():
                    getattr(run, stage)()
            run.polish()
            return run.results(cache)

    def _finish(self, problem: FlipProblem, budget: int, starts: dict, errors: dict) -> FlipResult:
        """One budget's result from its scored starting sets (``starts``: name -> record with ``flipped``,
        ``objective``, ``time_s`` and, once polished, ``polished_objective``); bounds are added by the caller."""
        comps = {n: {k: v for k, v in rec.items() if k not in ("flipped", "final")} for n, rec in starts.items()}
        names = list(starts)
        finals = [starts[n].get("final", (starts[n]["flipped"], starts[n]["objective"])) for n in names]
        best = min(range(len(names)), key=lambda i: finals[i][1])  # ties: the earlier component
        flipped, value = finals[best]
        winner = names[best] + (" + local search" if "polished_objective" in starts[names[best]] else "")
        info = {"winner": winner, "objective": float(value), "components": comps}
        if errors:
            info["errors"] = dict(errors)
        return FlipResult(flipped=flipped, objective=float(value), solver_objective=float(value), info=info)


HYBRID_TIE_SCALE = 1e-9
"""The surrogate's gains (scaled to at most 1 in absolute value) enter the hybrid ranking with this weight: far
below any change of a rate-based objective, so they only order moves whose predicted objectives tie."""


def _tie_broken(primary, secondary):
    """A ranker ordering by ``primary``'s gains, ties (e.g. the many toggles predicted to change no prediction)
    broken by ``secondary``'s: gains (c,) = primary + HYBRID_TIE_SCALE * secondary / max |secondary|."""

    def rank(flipped: np.ndarray) -> np.ndarray:
        first = np.asarray(primary(flipped), dtype=np.float64)
        second = np.asarray(secondary(flipped), dtype=np.float64)
        scale = np.abs(second).max(initial=0.0)
        return first if scale == 0 or not np.isfinite(scale) else first + HYBRID_TIE_SCALE * second / scale

    return rank


class _Run:
    """State of one portfolio call: per budget, the scored starting sets by component."""

    def __init__(self, oracle: PortfolioOracle, problem: FlipProblem, budgets: list[int],
                 control: SolveControl) -> None:
        self.oracle, self.problem, self.budgets, self.control = oracle, problem, budgets, control
        self.starts: list[dict[str, dict[str, Any]]] = [{} for _ in budgets]
        self.bounds: list[list[float]] = [[] for _ in budgets]
        self.bounded: list[list[tuple[str, FlipResult]]] = [[] for _ in budgets]  # components with a bound
        # Gap-structure objectives (and their error term) are non-negative, so 0 is a trivial bound.
        self.floor = 0.0 if get_objective(problem.objective).has_gap_structure else -math.inf
        self.errors: dict[str, str] = {}
        self.enumerated: list | None = None
        self.enumeration_estimate: dict | None = None  # the measured cost, when it was measured
        self._ranker = None
        self._screen = None

    def start(self) -> None:
        """Flipping nothing: the first incumbent of every budget (one retraining)."""
        self._add("none", [np.zeros(0, dtype=np.int64)] * len(self.budgets), 0.0)

    # ----- bookkeeping -----
    def _add(self, name: str, sets: list[np.ndarray], seconds: float, **extra: Any) -> None:
        """Score one component's flip set per budget (one batched pass, cached) and record them."""
        sets = [self.problem.check_flips(f, M) for f, M in zip(sets, self.budgets)]
        values = self.problem.objective_of(sets)
        for b, (f, v) in enumerate(zip(sets, values)):
            self.starts[b][name] = {"flipped": f, "objective": float(v), "n_flipped": int(len(f)),
                                    "time_s": seconds / max(len(self.budgets), 1), **extra}
        self.control.report(stage=name, best=self.best_overall(), bound=self.bound_overall())

    def best(self, b: int) -> tuple[np.ndarray, float]:
        recs = [r.get("final", (r["flipped"], r["objective"])) for r in self.starts[b].values()]
        return min(recs, key=lambda fv: fv[1])

    def best_overall(self) -> float:
        return min(self.best(b)[1] for b in range(len(self.budgets)))

    def bound_overall(self) -> float | None:
        known = [max(bs) for bs in self.bounds if bs]
        return min(known) if known and len(known) == len(self.budgets) else None

    def open(self) -> bool:
        """Whether a further stage may still help: time left and some budget not yet proven optimal (an
        objective of 0 cannot be improved; nor can one that meets a certified bound)."""
        if self.control.expired():
            return False
        for b in range(len(self.budgets)):
            value = self.best(b)[1]
            bound = max(self.bounds[b] + [self.floor])
            if value > bound + IMPROVE_TOL:
                return True
        return False

    def screen(self):
        """The local search's first-order screen (built once), or None (switched off, or not applicable)."""
        if self._screen is None:
            choice = self.oracle.screen
            build = choice if callable(choice) else (influence_screen if choice else None)
            self._screen = (build(self.problem) if build is not None else None) or False
        return self._screen or None

    def ranker(self):
        """The first-order ranker, built once, memoised by flip set: the influence ranker's predicted objective
        decreases (:mod:`fairflip.solvers.influence`), or the surrogate hypergradient's toggle gains."""
        if self._ranker is None:
            params = self.oracle.relaxed_params
            choice = self.oracle.ranker
            influence = influence_ranker(self.problem) if choice in ("hybrid", "influence") else None
            if influence is None and choice in ("hybrid", "influence"):
                raise FairflipError(f"the {choice} ranker needs a gap-structure objective and a firm with a local "
                                    "model; use ranker='surrogate'")
            surrogate_rank = None
            if choice != "influence":
                kind = params.get("surrogate", "sigmoid")
                temperature = params.get("temperature") or params.get("temperature_end", 0.05)
                surrogate = FairnessSurrogate(self.problem.objective, kind, temperature, self.problem.error_weight,
                                              solver="oracle-relaxed")
                surrogate_rank = make_ranker(self.problem, soft_flip_bilevel(self.problem, surrogate),
                                             solver=params.get("linear_solver", "auto"))
            if influence is None:
                rank = surrogate_rank
            elif surrogate_rank is None:
                rank = influence
            else:
                rank = _tie_broken(influence, surrogate_rank)
            memo: dict[bytes, np.ndarray] = {}

            def ranked(flipped: np.ndarray) -> np.ndarray:
                key = flip_set_key(flipped)
                if key not in memo:
                    memo[key] = rank(flipped)
                return memo[key]

            self._ranker = ranked
        return self._ranker

    # ----- stages -----
    def enumerate(self) -> bool:
        """Stage 1: enumerate when cheap; True when every budget got its proven optimum (or time ran out)."""
        cands = self.problem.candidates
        top = max(self.budgets, default=0)
        n_sets = count_flip_sets(len(cands), top)
        if n_sets > self.oracle.enumerate_max_sets:
            limit = self.oracle.enumerate_max_seconds
            if self.control.time_limit is not None:
                limit = min(limit, self.control.remaining())
            if limit <= 0 or n_sets > ENUMERATE_PROBE_MAX_SETS:
                return False
            cost = enumeration_cost(self.problem, top, max_sets=ENUMERATE_PROBE_MAX_SETS)
            self.enumeration_estimate = {"n_sets": n_sets, "estimated_s": cost["seconds"], "limit_s": limit}
            if not cost["seconds"] <= limit:
                return False
        t = time.perf_counter()
        # Every set is new to the cache, so the pass runs without it (its keys would cost more than they save).
        cache = self.problem.__dict__.pop("_objective_cache", None)
        try:
            found = enumerate_optimum(self.problem, self.budgets, batch_size=max(self.oracle.batch_size, 512),
                                      control=self.control)
        finally:
            if cache is not None:
                self.problem.__dict__["_objective_cache"] = cache
                cache.retrained += max(e.n_sets for e in found) if found else 0
        seconds = time.perf_counter() - t
        for b, e in enumerate(found):
            self.starts[b]["enumeration"] = {"flipped": e.flipped, "objective": float(e.objective),
                                             "n_flipped": int(len(e.flipped)), "time_s": seconds / len(found),
                                             "n_sets": e.n_sets, "complete": e.complete}
        self.enumerated = found
        return True

    def heuristics(self) -> None:
        """Stage 2: every registered heuristic's flip sets for every budget, scored in one batched pass."""
        registered = set(available_methods())
        for name in self.oracle.heuristics:
            if name not in registered or self.control.expired():
                continue
            t = time.perf_counter()
            try:
                found = get_method(name, seed=self.oracle.seed).select_many(self.problem, self.budgets)
            except FairflipError as exc:  # e.g. a heuristic that needs more majority rows than known
                self.errors[name] = str(exc)
                continue
            self._add(name, [r.flipped for r in found], time.perf_counter() - t)

    def relaxed(self) -> None:
        """Stage 3: the relaxation and rounding of ``oracle-relaxed`` for all budgets in one batch."""
        params = {k: v for k, v in self.oracle.relaxed_params.items()}
        params["local_search"] = False
        method = get_method("oracle-relaxed", seed=self.oracle.seed, **params)
        steps = method.settings(self.problem)["steps"]
        if "steps" not in params and not PORTFOLIO_MIN_STEPS <= steps <= PORTFOLIO_MAX_STEPS:
            params["steps"] = min(max(steps, PORTFOLIO_MIN_STEPS), PORTFOLIO_MAX_STEPS)
            method = get_method("oracle-relaxed", seed=self.oracle.seed, **params)
        t = time.perf_counter()
        relaxation = method.relax(self.problem, self.budgets, self.control)
        rounded = method.round(self.problem, self.budgets, relaxation, self.control)
        self._add("oracle-relaxed", [f for f, _ in rounded], time.perf_counter() - t,
                  surrogate_value=None, steps_run=relaxation.steps_run)
        for b in range(len(self.budgets)):
            self.starts[b]["oracle-relaxed"]["surrogate_value"] = float(relaxation.value[b])

    def convex(self) -> None:
        """Stage 4: ``oracle-convex`` per budget (on the firms in ``convex_firms``), bounds recorded."""
        problem, oracle = self.problem, self.oracle
        loss = getattr(problem.firm, "loss", None)
        if oracle.convex_firms is not None and loss not in oracle.convex_firms:
            return
        eval_rows = problem.n if problem.validation is None else len(problem.validation[1])
        entries = eval_rows * len(problem.candidates)
        if entries > oracle.convex_max_entries:
            self.errors["oracle-convex"] = (f"skipped: its slope matrix would hold {entries:,} entries "
                                            f"(convex_max_entries={oracle.convex_max_entries:,})")
            return
        params = dict(oracle.convex_params)
        sets, seconds = [], 0.0
        for b, M in enumerate(self.budgets):
            if self.control.expired():
                return
            if self.control.time_limit is not None:
                params["time_limit"] = max(1e-3, min(float(params.get("time_limit", 60.0)), self.control.remaining()))
            t = time.perf_counter()
            if loss == "squared" and "incumbent" not in oracle.convex_params:
                params["incumbent"] = {M: self.best(b)[0]}  # the exact MILP's cutoff: the best set so far
            try:
                r = get_method("oracle-convex", **params).select(problem, M)
            except Exception as exc:  # the portfolio must work without this component, whatever it raises
                self.errors["oracle-convex"] = f"{type(exc).__name__}: {exc}"
                return
            seconds += time.perf_counter() - t
            sets.append(r.flipped)
            if r.lower_bound is not None:
                self.bounds[b].append(float(r.lower_bound))
                self.bounded[b].append(("oracle-convex", r))
        self._add("oracle-convex", sets, seconds)

    def greedy(self) -> None:
        """Stage 5: first-order-shortlisted greedy, one path for every budget."""
        oracle = self.oracle
        top = max(self.budgets)
        if top == 0 or oracle.greedy_shortlist * top > oracle.greedy_max_retrains:
            return
        t = time.perf_counter()
        order, _ = ranked_greedy(self.problem, top, ranker=self.ranker(), shortlist=oracle.greedy_shortlist,
                                 batch_size=oracle.batch_size, control=self.control, screen=self.screen())
        self._add("greedy", [order[:M] for M in self.budgets], time.perf_counter() - t)

    def polish(self) -> None:
        """Stage 6: local search from the best distinct starts, budgets in increasing order, each budget's answer
        a start of the next."""
        previous: tuple[int, np.ndarray, float] | None = None
        for b in sorted(range(len(self.budgets)), key=lambda i: self.budgets[i]):
            starts, M = self.starts[b], self.budgets[b]
            if previous is not None and previous[0] <= M and "previous budget" not in starts:
                starts["previous budget"] = {"flipped": previous[1], "objective": previous[2],
                                             "n_flipped": int(len(previous[1])), "time_s": 0.0}
            seen: set[bytes] = set()
            polished = 0
            for name in sorted(starts, key=lambda n: starts[n]["objective"]):
                rec = starts[name]
                key = rec["flipped"].tobytes()
                if polished >= self.oracle.polish_top or not self.open():
                    break
                if key in seen:
                    continue
                seen.add(key)
                t = time.perf_counter()
                found = ranked_local_search(self.problem, rec["flipped"], M, ranker=self.ranker(),
                                            value=rec["objective"], control=self.control,
                                            stage=f"local search (budget {M})", screen=self.screen(),
                                            **self.oracle.search)
                rec.update(polished_objective=found.objective, local_search_evaluations=found.evaluations,
                           local_search_screened=found.screened, local_search_s=time.perf_counter() - t)
                rec["final"] = (found.flipped, found.objective)
                polished += 1
                self.control.report(stage="local search", best=self.best_overall(), bound=self.bound_overall())
            flipped, value = self.best(b)
            previous = (M, flipped, value)

    def results(self, cache) -> list[FlipResult]:
        out = []
        hit = self.control.expired()
        for b, M in enumerate(self.budgets):
            result = self.oracle._finish(self.problem, M, self.starts[b], self.errors)
            # The best certified bound of the components, checked against the answer's true objective (a bound
            # above it is withdrawn and flagged bound_inconsistent); its source, MIP gap and solver come along.
            adopt_best_bound(result, self.bounded[b])
            e = None if self.enumerated is None else self.enumerated[b]
            if e is not None and e.complete:
                result.status, result.lower_bound, result.bound_source = "optimal", float(e.objective), "enumeration"
                result.info["lower_bound_source"] = "enumeration"
            elif e is not None or hit:
                result.status, result.time_limit_hit = "time_limit", True
            elif result.objective is not None and result.objective <= self.floor + IMPROVE_TOL:
                # A gap-structure objective is non-negative: 0 is optimal.
                result.status, result.lower_bound, result.bound_source = "optimal", 0.0, "trivial"
            elif result.lower_bound is not None and result.objective <= result.lower_bound + IMPROVE_TOL:
                result.status = "optimal"
            result.info.update(retrained=cache.retrained, cache_hits=cache.hits,
                               n_candidates=int(len(self.problem.candidates)))
            if self.enumeration_estimate is not None:
                result.info["enumeration_estimate"] = dict(self.enumeration_estimate)
            out.append(result)
        return out
