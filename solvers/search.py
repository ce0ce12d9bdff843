"""Searches over flip sets that spend exact retrainings only where first-order estimates point.

Every flip set visited is scored by exact retraining (``FlipProblem.objective_of``), so a result's objective is
always a true objective. What a *ranker* adds is an order: a first-order (influence) estimate of the gain of
toggling each candidate, from the relaxed surrogate's hypergradient at the current flip set
(:func:`fairflip.solvers.relaxed.make_ranker`). The searches retrain the most promising moves first and the rest
only when those fail, and they honour a :class:`~fairflip.methods.SolveControl` (time limit and progress).

- :func:`ranked_local_search`: add, drop and swap moves; each round retrains the ``first_moves`` moves with the
  best estimates and takes the best improving one; only when none improves does it retrain the rest of the
  (shortlisted) neighbourhood. It stops where the whole neighbourhood has no improving move, as the complete
  search does, after far fewer retrainings on average. An optional *screen*
  (:func:`fairflip.solvers.influence.influence_screen`) leaves out the moves whose first-order predictions,
  with an error allowance, cannot improve the objective; the tiers are cut before screening, so a screen that
  misses no improving move leaves the search's path as it was.
- :func:`ranked_greedy`: greedy forward selection that retrains, at each step, only the ``shortlist`` candidates
  with the best estimated gain.

Both are omniscient references (they read the whole training set and retrain the firm), not strategies.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch

from fairflip._errors import FairflipError
from fairflip.methods import SolveControl
from fairflip.problem import FlipProblem

from .exact import IMPROVE_TOL, batched_objectives
from .influence import Screen

@dataclass
class SearchResult:
    """Outcome of a local search.

    Attributes:
        flipped: shape (k,) sorted candidate rows of the final flip set.
        objective: its true objective.
        evaluations: flip sets retrained during the search.
        rounds: moves made.
        converged: True when no move of the neighbourhood improved (False when the evaluation cap stopped it).
        screened: moves a screen left out without retraining (their first-order bound showed no improvement).
    """

    flipped: np.ndarray
    objective: float
    evaluations: int
    rounds: int
    converged: bool
    screened: int = 0


Ranker = Callable[[np.ndarray], np.ndarray]
"""Flip set (sorted rows) -> first-order gain of toggling each candidate, shape (c,) in ``problem.candidates``
order, higher = more promising."""


SINGLE_THREAD_MAX_ENTRIES = 1_000_000
"""Solvers run torch on one thread while the design matrix has at most this many entries (n * p). Their
operations are then small (a batch of 256 flip sets on COMPAS is 256 x 3,694 scores), and a second thread saves
little on a quiet machine but costs much on a busy one: on 2 shared cores a (4, 14) x (14, 3,694) product took
13 ms with 2 threads and 0.4 ms with one, and the relaxation of COMPAS 4.4 s instead of 12.3 s."""


_controller: list = [None, -1]  # threadpoolctl's controller, and len(sys.modules) when it was built


def _blas_controller():
    """threadpoolctl's controller of the loaded BLAS libraries, rebuilt only when modules were imported since:
    finding the libraries costs about 2.5 ms, which a per-call ``threadpool_limits`` paid on every solve."""
    import sys

    if _controller[0] is None or _controller[1] != len(sys.modules):
        from threadpoolctl import ThreadpoolController

        _controller[:] = [ThreadpoolController(), len(sys.modules)]
    return _controller[0]


@contextmanager
def threads_for(problem: FlipProblem) -> Iterator[int]:
    """Run the block with torch and NumPy's BLAS on one thread when ``problem``'s design matrix is small (see
    :data:`SINGLE_THREAD_MAX_ENTRIES`), restoring the previous counts afterwards; yields torch's count."""
    before = torch.get_num_threads()
    small = problem.X.shape[0] * (problem.X.shape[1] + 1) <= SINGLE_THREAD_MAX_ENTRIES
    if not small:
        yield before
        return
    if before > 1:
        torch.set_num_threads(1)
    try:
        with _blas_controller().limit(limits=1, user_api="blas"):  # NumPy's products (predictions) likewise
            yield torch.get_num_threads()
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def _top(positions: np.ndarray, gain: np.ndarray | None, size: int) -> np.ndarray:
    if gain is None or len(positions) <= size:
        return positions
    return positions[np.argsort(-gain[positions], kind="stable")[:size]]


def _first_best(values: np.ndarray) -> int:
    """Index of the first of the least values (K,), ties within IMPROVE_TOL included: the same predictions summed
    in another order tie, and the tie goes to the earlier (better ranked) move."""
    return int(np.flatnonzero(values <= values.min() + IMPROVE_TOL)[0])


def _moves(current: np.ndarray, cands: np.ndarray, pos_in: np.ndarray, pos_out: np.ndarray, gain: np.ndarray | None,
           budget: int, neighbourhood: int, swap_shortlist: int) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """The shortlisted neighbourhood of the sorted flip set ``current`` (k,): adds (when k < budget), drops and
    swaps, in that order, each move's rows (k + 1, k - 1 or k), its estimated gain (moves,) and the candidate
    positions it toggles (moves, 2), -1 padded; built as three arrays instead of one array per move.
    ``pos_in``/``pos_out``: positions in ``cands`` inside/outside the set."""
    k = len(current)
    blocks: list[np.ndarray] = []
    estimates: list[np.ndarray] = []
    toggled: list[np.ndarray] = []

    def single(positions: np.ndarray) -> np.ndarray:
        return np.column_stack([positions, np.full(len(positions), -1)]).astype(np.int64).reshape(-1, 2)

    def estimated(positions: np.ndarray) -> np.ndarray:
        return np.zeros(len(positions)) if gain is None else gain[positions]

    def without(positions: np.ndarray) -> np.ndarray:  # (len, k - 1): current less each candidate in turn
        keep = np.ones((len(positions), k), dtype=bool)
        keep[np.arange(len(positions)), np.searchsorted(current, cands[positions])] = False
        return np.broadcast_to(current, (len(positions), k))[keep].reshape(len(positions), max(k - 1, 0))

    if k < budget:
        adds = _top(pos_out, gain, neighbourhood)
        blocks.append(np.column_stack([np.broadcast_to(current, (len(adds), k)), cands[adds]]))
        estimates.append(estimated(adds))
        toggled.append(single(adds))
    drops = _top(pos_in, gain, neighbourhood)
    blocks.append(without(drops))
    estimates.append(estimated(drops))
    toggled.append(single(drops))
    if len(pos_in) and len(pos_out):
        outs, ins = _top(pos_out, gain, swap_shortlist), _top(pos_in, gain, swap_shortlist)
        kept = np.repeat(without(ins), len(outs), axis=0)
        blocks.append(np.column_stack([kept, np.tile(cands[outs], len(ins))]))
        estimates.append((estimated(ins)[:, None] + estimated(outs)[None, :]).ravel())
        toggled.append(np.column_stack([np.repeat(ins, len(outs)), np.tile(outs, len(ins))]).astype(np.int64))
    moves = [row for block in blocks for row in block]
    return moves, np.concatenate(estimates), np.concatenate(toggled)


def ranked_local_search(
    problem: FlipProblem,
    start: np.ndarray,
    budget: int,
    *,
    ranker: Ranker | None = None,
    value: float | None = None,
    neighbourhood: int = 64,
    swap_shortlist: int = 16,
    first_moves: int = 32,
    max_evaluations: int = 20_000,
    batch_size: int = 256,
    control: SolveControl | None = None,
    stage: str = "local search",
    screen: Screen | None = None,
) -> SearchResult:
    """Local search (add, drop, swap; every move retrained exactly), most promising moves first.

    Without a ranker every add, drop and swap is retrained each round (best improvement). With one, adds and
    drops are restricted to the ``neighbourhood`` best estimates and swaps to ``swap_shortlist`` on each side;
    the moves are sorted by estimated gain (an add or drop: its candidate's gain; a swap: the sum), the first
    ``first_moves`` are retrained and the best of them is taken when it improves; otherwise the remaining moves
    are retrained. The search stops when no move of the shortlisted neighbourhood improves (converged), when
    the next batch would exceed ``max_evaluations`` or when the time limit passes.

    Args:
        problem: the flip problem (c candidates).
        start: shape (k,) starting flip set, k <= budget.
        budget: M, the most flips.
        ranker: optional first-order ranking (see :data:`Ranker`).
        value: the start's true objective when already known (else it is retrained).
        neighbourhood, swap_shortlist: shortlist sizes (see above).
        first_moves: moves retrained before the rest of the neighbourhood.
        max_evaluations: cap on flip sets scored.
        batch_size: flip sets retrained at once.
        control: optional time limit and progress (``stage``, ``done`` = moves made, ``best``).
        stage: the progress stage name.
        screen: optional first-order screen (:func:`fairflip.solvers.influence.influence_screen`): each round,
            the moves it shows cannot improve are left out (never retrained); "converged" then means that no
            move the screen kept improves.

    Returns:
        a :class:`SearchResult`; its objective is never above the start's.
    """
    if min(neighbourhood, swap_shortlist, first_moves, max_evaluations, batch_size) < 1:
        raise FairflipError("neighbourhood, swap_shortlist, first_moves, max_evaluations and batch_size must be "
                            "positive integers")
    cands = problem.candidates
    current = problem.check_flips(start, budget)
    if value is None:
        value = float(problem.objective_of([current])[0])
    evaluations, rounds, screened = 1, 0, 0
    while True:
        if control is not None and control.expired():
            return SearchResult(current, value, evaluations, rounds, False, screened)
        inside = np.isin(cands, current)
        pos_in, pos_out = np.flatnonzero(inside), np.flatnonzero(~inside)
        if ranker is not None:
            # Stop before paying for the ranking when not even the first tier of moves fits the cap.
            k_in, k_out = len(pos_in), len(pos_out)
            n_moves = (min(neighbourhood, k_out) if len(current) < budget else 0) + min(neighbourhood, k_in)
            n_moves += min(swap_shortlist, k_in) * min(swap_shortlist, k_out)
            if n_moves and evaluations + min(first_moves, n_moves) > max_evaluations:
                return SearchResult(current, value, evaluations, rounds, False, screened)
        gain = None if ranker is None else np.asarray(ranker(current), dtype=np.float64)
        moves, estimate, toggles = _moves(current, cands, pos_in, pos_out, gain, budget, neighbourhood,
                                          swap_shortlist)
        if not moves:
            return SearchResult(current, value, evaluations, rounds, True, screened)
        order = np.argsort(-estimate, kind="stable")
        tiers = [order] if gain is None else [order[:first_moves], order[first_moves:]]
        if screen is not None:
            # The tiers are cut before screening, so a screen that misses no improving move leaves the search's
            # path as it was: each tier's best improving move is still in it.
            keep = np.asarray(screen(current, toggles, value), dtype=bool)
            screened += int((~keep).sum())
            tiers = [tier[keep[tier]] for tier in tiers]
        improved = False
        for tier in tiers:
            if not len(tier):
                continue
            if evaluations + len(tier) > max_evaluations:
                return SearchResult(current, value, evaluations, rounds, False, screened)
            # Every move is one or two flips away from the current set: retrain from its optimum.
            values = batched_objectives(problem, [moves[t] for t in tier], batch_size=batch_size, around=current,
                                        control=control)
            if values is None:
                return SearchResult(current, value, evaluations, rounds, False, screened)
            evaluations += len(tier)
            best = _first_best(values)
            if values[best] < value - IMPROVE_TOL:
                current, value, rounds = np.sort(moves[tier[best]]), float(values[best]), rounds + 1
                improved = True
                break
        if control is not None:
            control.report(stage=stage, done=rounds, best=value)
        if not improved:
            return SearchResult(current, value, evaluations, rounds, True, screened)


def ranked_greedy(
    problem: FlipProblem,
    budget: int,
    *,
    ranker: Ranker | None = None,
    shortlist: int = 32,
    batch_size: int = 256,
    control: SolveControl | None = None,
    screen: Screen | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy forward selection with exact retraining of the most promising additions.

    Each step retrains the flip set plus one candidate for the ``shortlist`` remaining candidates with the best
    first-order gain (every remaining candidate without a ranker), adds the one that lowers the true objective
    most, and stops when none lowers it, at ``budget`` flips or at the time limit.

    Args:
        problem: the flip problem (c candidates).
        budget: M, the most flips.
        ranker: optional first-order ranking (see :data:`Ranker`).
        shortlist: candidates retrained per step with a ranker.
        batch_size: flip sets retrained at once.
        control: optional time limit and progress (``stage="greedy"``, ``done``, ``total``, ``best``).
        screen: optional first-order screen (see :func:`ranked_local_search`): shortlisted additions it shows
            cannot improve are not retrained.

    Returns:
        (order (k,) rows in the order added, k <= M; values (k + 1,) the objective after 0..k flips). The
        answer for any budget m <= M is the first m rows (a prefix).
    """
    if shortlist < 1:
        raise FairflipError(f"shortlist must be a positive integer, got {shortlist}")
    cands = problem.candidates
    order: list[int] = []
    values = [float(problem.objective_of([np.zeros(0, dtype=np.int64)])[0])]
    taken = np.zeros(len(cands), dtype=bool)
    while len(order) < budget and not taken.all():
        if control is not None and control.expired():
            break
        current = np.sort(np.array(order, dtype=np.int64))
        gain = None if ranker is None else np.asarray(ranker(current), dtype=np.float64)
        positions = _top(np.flatnonzero(~taken), gain, shortlist)
        if screen is not None:
            positions = positions[np.asarray(screen(current, positions[:, None], values[-1]), dtype=bool)]
            if not len(positions):
                break
        trials = [np.append(current, cands[j]) for j in positions]
        vals = batched_objectives(problem, trials, batch_size=batch_size, around=current, control=control)
        if vals is None:
            break
        best = _first_best(vals)
        if vals[best] >= values[-1] - IMPROVE_TOL:
            break
        order.append(int(cands[positions[best]]))
        taken[positions[best]] = True
        values.append(float(vals[best]))
        if control is not None:
            control.report(stage="greedy", done=len(order), total=budget, best=values[-1])
    return np.array(order, dtype=np.int64), np.array(values)
