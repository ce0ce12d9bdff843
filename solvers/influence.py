"""A first-order ranker of flip toggles: how each toggle moves the firm, and the objective of the predictions that
move implies.

Toggling candidate k (flipping it, or un-flipping it) changes the gradient of the firm's training loss at the
current optimum theta by exactly g_k = s_k * (1 - 2 y_k) * x_k (the loss is affine in the labels; s_k is the
local model's label slope, see :class:`~fairflip.firms.linear.LocalModel`). To first order the optimum moves by
-H^{-1} g_k (the influence of the toggle), so every evaluation score moves by -x_i^T H^{-1} g_k. With the
Cholesky factor L of H, U = L^{-1} X_eval^T and V = L^{-1} G^T, that is -U_i . V_k. The ranker predicts each
toggle's predictions (the sign of every moved score), computes the objective of those predictions exactly from
the gap structure's cell weights, and returns the predicted decrease.

Only rows that some toggle can move across the threshold matter: |U_i . V_k| <= ||U_i|| ||V_k||, so rows with
|score_i - threshold| > ||U_i|| max_k ||V_k|| keep their prediction under every toggle and enter once, as a
constant. On COMPAS the predicted objectives of single toggles rank the exact ones almost perfectly (Spearman
0.997 to 1.000 at M = 10 and 50, the five best exact toggles all among the first 16) where the surrogate's
hypergradient reached 0.25 to 0.42.

The ranker only orders the moves a search retrains; every objective the search reports is still an exact one.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from fairflip.firms.design import scores
from fairflip.objectives import get_objective
from fairflip.problem import FlipProblem

from .exact import IMPROVE_TOL

CHUNK_ENTRIES = 8_000_000
"""Predicted scores are formed for at most this many (candidate, row) pairs at a time."""


class _Influence:
    """What the ranker and the screen share: the evaluation rows as torch tensors (design Xe (m, p), labels, gap
    weights (g, m)) and, per flip set, each toggle's first-order influence on every evaluation score."""

    def __init__(self, problem: FlipProblem) -> None:
        self.problem, self.firm = problem, problem.firm
        self.objective = get_objective(problem.objective)
        X_eval, y_eval, a_eval = problem.evaluation_set
        Xe = self.Xe = problem.design_of(X_eval)
        self.Xd = problem.training_state()["Xd"]
        self.weights = torch.as_tensor(self.objective.gap_weights(y_eval, a_eval), dtype=Xe.dtype, device=Xe.device)
        self.y_true = torch.as_tensor(np.asarray(y_eval), dtype=Xe.dtype, device=Xe.device)
        self.cands = torch.as_tensor(problem.candidates, dtype=torch.int64, device=self.Xd.device)
        self.m = Xe.shape[0]
        self.error_weight = float(problem.error_weight)

    @staticmethod
    def applies(problem: FlipProblem) -> bool:
        """A gap-structure objective and a firm with a local model."""
        return get_objective(problem.objective).has_gap_structure and hasattr(problem.firm, "local_model")

    def at(self, flipped: np.ndarray, rows: torch.Tensor | None = None):
        """At the flip set's optimum: (scores minus threshold (m,), U = L^{-1} Xe^T (p, m), V = L^{-1} G^T
        (p, r)) for the toggles of the candidate rows ``rows`` (default: every candidate), or None without a
        local model. A toggle moves evaluation score i by -U_i . V_k to first order."""
        model = self.problem.local_model(flipped)
        if model is None:
            return None
        rows = self.cands if rows is None else rows
        shifted = scores(model.theta[None], self.Xe)[0] - self.firm.score_threshold
        G = (model.label_slope[rows] * (1.0 - 2.0 * model.y[rows]))[:, None] * self.Xd[rows]  # (r, p)
        U = torch.linalg.solve_triangular(model.factor, self.Xe.T, upper=False)
        V = torch.linalg.solve_triangular(model.factor, G.T, upper=False)
        return shifted, U, V

    def fixed(self, current: torch.Tensor, far: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The gap sums (g,) and error count of the predictions ``current`` (m,) on the rows ``far`` (m,) bool."""
        return self.weights[:, far] @ current[far], (current[far] != self.y_true[far]).sum()


def influence_ranker(problem: FlipProblem) -> Callable[[np.ndarray], np.ndarray] | None:
    """The first-order prediction ranker of a problem, or None where it does not apply (an objective that is not
    a gap structure, or a firm without a local model).

    Args:
        problem: the flip problem (c candidates, m evaluation rows).

    Returns:
        ``rank(flipped (k,) rows) -> gains (c,)`` in ``problem.candidates`` order: the objective of the flip set's
        predictions minus the predicted objective after toggling each candidate (higher = more promising).
    """
    if not _Influence.applies(problem):
        return None
    inf = _Influence(problem)
    objective, weights, y_true, m, error_weight = inf.objective, inf.weights, inf.y_true, inf.m, inf.error_weight
    Xe = inf.Xe

    def value(P: torch.Tensor, const: torch.Tensor, errors: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Objective of predictions P (K, m_rows) on ``rows``, the other rows contributing ``const`` (g,) to the
        gaps and ``errors`` to the error count -> (K,)."""
        gaps = (P @ weights[:, rows].T + const).abs()
        out = gaps.mean(-1) if objective.aggregate == "mean" else gaps.amax(-1)
        if error_weight:
            out = out + error_weight * (errors + (P != y_true[rows]).sum(-1)) / m
        return out

    def rank(flipped: np.ndarray) -> np.ndarray:
        found = inf.at(flipped)
        if found is None:
            return np.zeros(len(inf.cands))
        shifted, U, V = found
        current = (shifted > 0).to(Xe.dtype)
        everything = torch.ones(m, dtype=torch.bool, device=Xe.device)
        base = value(current[None], torch.zeros(len(weights), dtype=Xe.dtype, device=Xe.device),
                     torch.zeros((), dtype=Xe.dtype, device=Xe.device), everything)[0]
        near = shifted.abs() <= U.norm(dim=0) * V.norm(dim=0).max()
        const, errors = inf.fixed(current, ~near)
        Un, fn = U[:, near], shifted[near]
        gains = torch.empty(len(inf.cands), dtype=Xe.dtype, device=Xe.device)
        step = max(1, CHUNK_ENTRIES // max(1, int(near.sum())))
        for s in range(0, len(inf.cands), step):
            moved = fn[None, :] - V[:, s:s + step].T @ Un  # (chunk, m_near) predicted scores - threshold
            gains[s:s + step] = base - value((moved > 0).to(Xe.dtype), const, errors, near)
        return gains.cpu().numpy()

    return rank


SCREEN_ALLOWANCE = 0.5
"""The screen's allowance for the error of the first-order score shifts, relative to the sum of the shifts'
magnitudes of a move's toggles (see :func:`influence_screen`)."""
SCREEN_FLOOR = 1e-6
"""The screen's absolute allowance on a row's predicted score, times 1 + ||x||_1 (the row's reach when the
parameters move by 1e-6 in max-norm: this covers the loose retraining of the current set, see
:data:`fairflip.firms.linear.NEAR_LOOSE_TOL`)."""

Screen = Callable[[np.ndarray, np.ndarray, float], np.ndarray]
"""(current flip set (k,) sorted rows, toggles (K, t) candidate positions, -1 padded, current objective) -> (K,) bool:
False where the move cannot improve on the objective (to first order, with an allowance)."""


def influence_screen(problem: FlipProblem, *, allowance: float = SCREEN_ALLOWANCE,
                     floor: float = SCREEN_FLOOR) -> Screen | None:
    """A first-order screen of local-search moves: which moves might improve the objective at all.

    A move toggles up to t candidates of the current set S. To first order every evaluation score moves by the sum
    of its toggles' influences (-U_i . V_k, see the module doc); the screen allows each predicted score an error
    of ``allowance`` times the sum of the toggles' |influence| on it plus ``floor`` (1 + ||x_i||_1). A row whose
    predicted score clears the threshold by more than that keeps a known prediction; the others may go either
    way. The least objective over those choices bounds the move's objective from below: each gap's signed sum
    then ranges over an interval (its least |value| is 0 when the interval holds 0), the aggregate of the per-gap
    least values and the errors of the known rows bound the rest. A move whose bound is not below the current
    objective is screened out.

    This is a first-order estimate with a safety allowance, not a proof: the search that uses it still scores
    every move it keeps by exact retraining, and ``benchmarks/bench_screen.py`` measures how often a screened move
    would have improved (zero misses on the datasets listed there).

    Args:
        problem: the flip problem (c candidates, m evaluation rows).
        allowance, floor: the error allowance (relative; absolute per unit of 1 + ||x_i||_1). The default
            allowance, 0.5, missed no improving move where 0.2 missed some (3 on the datasets of
            ``benchmarks/bench_screen.py``, 7 of 5,654 moves on the soundness suite's tiny instances), and 0.05
            missed 6 of 7,984 on other tiny instances.

    Returns:
        the :data:`Screen`, or None where it does not apply (an objective that is not a gap structure, or a
        firm without a local model).
    """
    if not _Influence.applies(problem):
        return None
    inf = _Influence(problem)
    objective, weights, y_true, m, error_weight = inf.objective, inf.weights, inf.y_true, inf.m, inf.error_weight
    Xe = inf.Xe
    w_pos, w_neg = weights.clamp(min=0.0), weights.clamp(max=0.0)
    row_floor = floor * (1.0 + Xe.abs().sum(-1))  # (m,)

    def screen(flipped: np.ndarray, toggles: np.ndarray, value: float) -> np.ndarray:
        toggles = np.asarray(toggles, dtype=np.int64).reshape(len(toggles), -1)
        K, t = toggles.shape
        if K == 0:
            return np.ones(K, dtype=bool)
        used, inverse = np.unique(toggles[toggles >= 0], return_inverse=True)
        index = np.full(toggles.shape, -1, dtype=np.int64)
        index[toggles >= 0] = inverse
        found = inf.at(flipped, inf.cands[torch.as_tensor(used, device=inf.cands.device)])
        if found is None:
            return np.ones(K, dtype=bool)
        shifted, U, V = found  # V: (p, u), the toggles used
        # Rows no move can reach keep their prediction: |U_i . V_k| <= ||U_i|| ||V_k|| for each of t toggles.
        reach = (1.0 + allowance) * t * U.norm(dim=0) * V.norm(dim=0).max() + row_floor
        near = shifted.abs() <= reach
        const, errors = inf.fixed((shifted > 0).to(Xe.dtype), ~near)
        D = -(V.T @ U[:, near])  # (u, m_near): each toggle's first-order shift of the near rows
        D = torch.cat([D, torch.zeros_like(D[:1])])  # row -1: no toggle
        f_near, y_near, floor_near = shifted[near], y_true[near], row_floor[near]
        w_near, lo_near, hi_near = weights[:, near].T, w_neg[:, near].T, w_pos[:, near].T
        idx = torch.as_tensor(index, device=D.device)
        bound = torch.empty(K, dtype=Xe.dtype, device=Xe.device)
        step = max(1, CHUNK_ENTRIES // max(1, t * int(near.sum())))
        for s in range(0, K, step):
            part = idx[s:s + step]
            shifts = D[part]  # (k, t, m_near)
            moved = f_near[None, :] + shifts.sum(1)  # predicted scores - threshold
            slack = allowance * shifts.abs().sum(1) + floor_near
            up = (moved > slack).to(Xe.dtype)  # predicted 1 for sure
            either = (moved.abs() <= slack).to(Xe.dtype)  # may go either way
            base = up @ w_near + const  # (k, g)
            low, high = base + either @ lo_near, base + either @ hi_near
            least = torch.maximum(torch.zeros_like(low), torch.maximum(low, -high))  # least |gap| per gap
            b = least.mean(-1) if objective.aggregate == "mean" else least.amax(-1)
            if error_weight:
                wrong = ((up != y_near[None, :]).to(Xe.dtype) * (1.0 - either)).sum(-1)
                b = b + error_weight * (errors + wrong) / m
            bound[s:s + step] = b
        return (bound < value - IMPROVE_TOL).cpu().numpy()

    return screen
