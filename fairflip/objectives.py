"""Fairness objectives as first-class objects, and the public registry that names them.

An :class:`Objective` is the exact, hard-threshold measure that fairflip reports (what the oracle minimises after
exact retraining) written once as a *gap structure*: a list of cells, each given by the label its rows carry
(1: the true-positive-rate cell, 0: the false-positive-rate cell, None: every row, the selection rate), and an
aggregation (``mean`` or ``max``) of the absolute minority-minus-majority gaps of the prediction rate in those
cells. Every consumer reads the same object:

- the exact metric: :meth:`Objective.value` (hard predictions in {0, 1}, optional sample weights);
- the smooth surrogates of :mod:`fairflip.surrogates`: :meth:`Objective.soft_value` on soft predictions;
- the MILP and LP formulations of :mod:`fairflip.solvers.milp`: :meth:`Objective.gap_weights`.

The four built-ins are instances (``eqod``: mean of the TPR and FPR gaps, the paper's headline; ``eqod-worst``:
their maximum, fairlearn's default aggregation; ``dp``: the selection-rate gap; ``eqopp``: the TPR gap). A user
adds one with :func:`register_objective`; the CLI (``--objective``), sweeps, gap tables and study configs then
accept its name. An objective that is not a gap structure (any function of the predictions) can be registered
with ``metric=`` and ``smooth=`` callables instead; solvers that need the gap structure (the MILP) then refuse it
with a clear error.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np

from ._errors import FairflipError, check_binary, check_registry_name

Aggregate = Literal["mean", "max"]
MetricFn = Callable[..., float]
"""``metric(y_true, y_pred, a, sample_weight=None) -> float``; arrays of shape (n,)."""
SmoothFn = Callable[..., object]
"""``smooth(q, y, a, gap) -> tensor (...,)``: q (..., m) soft predictions, y and a (m,), ``gap`` the surrogate's
smoothing of |.| (a torch function)."""


@dataclass(frozen=True)
class Objective:
    """A fairness objective: aggregated absolute minority-minus-majority gaps of prediction rates over cells.

    Args:
        name: registry name (e.g. ``eqod``).
        cells: the label of each cell's rows: 1 (TPR cell), 0 (FPR cell) or None (all rows: selection rate).
            Empty when the objective is given by ``metric`` and ``smooth`` instead.
        aggregate: ``mean`` or ``max`` of the per-cell absolute gaps.
        description: one line saying what it measures.
        metric: optional exact metric replacing the gap structure (see :data:`MetricFn`).
        smooth: optional smooth stand-in used by the relaxed solvers (see :data:`SmoothFn`); required with
            ``metric``.
    """

    name: str
    cells: tuple[int | None, ...] = ()
    aggregate: Aggregate = "mean"
    description: str = ""
    metric: MetricFn | None = None
    smooth: SmoothFn | None = None

    def __post_init__(self) -> None:
        check_registry_name("objective", self.name)
        object.__setattr__(self, "cells", tuple(self.cells))
        if any(c not in (0, 1, None) for c in self.cells):
            raise FairflipError(f"objective '{self.name}': cells must be 0, 1 or None, got {self.cells}")
        if self.aggregate not in ("mean", "max"):
            raise FairflipError(f"objective '{self.name}': aggregate must be mean or max, got {self.aggregate!r}")
        if not self.cells and self.metric is None:
            raise FairflipError(f"objective '{self.name}' needs cells (a gap structure) or a metric function")
        if self.metric is not None and self.smooth is None:
            raise FairflipError(f"objective '{self.name}' has a metric but no smooth stand-in; the relaxed "
                                "solvers need one (smooth=...)")

    @property
    def has_gap_structure(self) -> bool:
        """True when the objective is the aggregated gap of cell rates (what the MILP formulation needs)."""
        return bool(self.cells) and self.metric is None

    def _masks(self, y: np.ndarray, a: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, str]]:
        out = []
        for label in self.cells:
            cell = np.ones(len(y), dtype=bool) if label is None else (y == label)
            where = "every row" if label is None else f"y = {label}"
            out.append((cell & (a == 1), cell & (a == 0), where))
        return out

    def value(self, y_true, y_pred, a, sample_weight=None) -> float:
        """The exact objective of hard predictions.

        Args:
            y_true: shape (n,) true labels in {0, 1}.
            y_pred: shape (n,) predictions in {0, 1}.
            a: shape (n,) minority indicator in {0, 1}.
            sample_weight: optional shape (n,) non-negative weights of the rates.

        Returns:
            the objective, a float in [0, 1] for the gap structures.
        """
        if self.metric is not None:
            return float(self.metric(y_true, y_pred, a, sample_weight=sample_weight))
        y_true = check_binary("y_true", y_true)
        y_pred = check_binary("y_pred", y_pred)
        a = check_binary("group indicator a", a)
        if not len(y_true) == len(y_pred) == len(a):
            raise FairflipError(f"length mismatch: y_true {len(y_true)}, y_pred {len(y_pred)}, a {len(a)}")
        w = np.ones(len(y_true)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        if w.shape != y_true.shape or not np.isfinite(w).all() or (w < 0).any():
            raise FairflipError("sample_weight must be finite, non-negative and of the labels' length")
        gaps = []
        for minority, majority, where in self._masks(y_true, a):
            rates = []
            for mask, group in ((minority, "minority"), (majority, "majority")):
                total = w[mask].sum()
                if total <= 0:
                    raise FairflipError(f"empty cell: no {group} rows with {where}; '{self.name}' is undefined")
                rates.append(float((w[mask] * y_pred[mask]).sum() / total))
            gaps.append(abs(rates[0] - rates[1]))
        return float(np.mean(gaps) if self.aggregate == "mean" else np.max(gaps))

    def __call__(self, y_true, y_pred, *, sensitive_features, sample_weight=None) -> float:
        """fairlearn's metric signature: ``objective(y_true, y_pred, sensitive_features=a)``; see :meth:`value`."""
        return self.value(y_true, y_pred, sensitive_features, sample_weight=sample_weight)

    def soft_value(self, q, y, a, gap=None):
        """The objective's structure evaluated on soft predictions (torch).

        Args:
            q: tensor (..., m) soft predictions in [0, 1] (or scores, for the mean-score surrogate).
            y: tensor (m,) true labels in {0, 1}.
            a: tensor (m,) minority indicator.
            gap: smoothing of the absolute value applied to each cell's rate gap (default ``torch.abs``).

        Returns:
            tensor (...,); equals :meth:`value` when q holds hard predictions and ``gap`` is abs.
        """
        import torch

        gap = torch.abs if gap is None else gap
        if self.smooth is not None:
            return self.smooth(q, y, a, gap)
        # Every cell's minority-minus-majority rate gap in one product with the gap weights (k, m).
        gaps = gap(q @ self._soft_weights(y, a, q.dtype).T)
        return gaps.mean(-1) if self.aggregate == "mean" else gaps.max(-1).values

    def _soft_weights(self, y, a, dtype):
        """:meth:`gap_weights` as a tensor on y's device, memoised for the same (live) y and a tensors, since a
        relaxed solve evaluates the surrogate on the same evaluation rows at every step."""
        import torch

        key = (id(self), id(y), id(a), dtype, str(y.device))
        hit = _SOFT_WEIGHTS.get(key)
        if hit is not None and hit[0]() is y and hit[1]() is a:
            return hit[2]
        weights = torch.as_tensor(self.gap_weights(y.detach().cpu().numpy(), a.detach().cpu().numpy()),
                                  dtype=dtype, device=y.device)
        if len(_SOFT_WEIGHTS) >= 32:
            _SOFT_WEIGHTS.clear()
        _SOFT_WEIGHTS[key] = (weakref.ref(y), weakref.ref(a), weights)
        return weights

    def gap_weights(self, y: np.ndarray, a: np.ndarray) -> np.ndarray:
        """Per-cell gap weights for linear formulations: gap_k = weights[k] @ v for a per-row quantity v.

        Args:
            y: shape (m,) labels in {0, 1}; a: shape (m,) minority indicator.

        Returns:
            shape (k, m): +1/|minority cell| on the cell's minority rows, -1/|majority cell| on its majority rows.
        """
        if not self.has_gap_structure:
            raise FairflipError(f"objective '{self.name}' is not a gap structure (it is given by a metric "
                                "function), so the MILP/LP formulations cannot encode it; use oracle-relaxed")
        y = np.asarray(y, dtype=np.int64)
        a = np.asarray(a, dtype=np.int64)
        rows = []
        for minority, majority, where in self._masks(y, a):
            w = np.zeros(len(y))
            for mask, sign, group in ((minority, 1.0, "minority"), (majority, -1.0, "majority")):
                if not mask.any():
                    raise FairflipError(f"empty cell: no {group} evaluation rows with {where} in '{self.name}'; "
                                        "the rate is undefined")
                w[mask] = sign / mask.sum()
            rows.append(w)
        return np.array(rows)


_OBJECTIVES: dict[str, Objective] = {}
_SOFT_WEIGHTS: dict = {}  # (objective, y, a, dtype, device) -> (weakref y, weakref a, weights (k, m))


def register_objective(objective: Objective) -> Objective:
    """Register ``objective`` under its name (replacing an earlier one of that name) and return it.

    After this, every entry point (``FlipProblem(objective=name)``, the CLI's ``--objective``, sweeps, gap tables,
    study configs) accepts the name.
    """
    if not isinstance(objective, Objective):
        raise FairflipError(f"register_objective takes an Objective, got {type(objective).__name__}")
    _OBJECTIVES[objective.name] = objective
    return objective


def get_objective(objective: str | Objective) -> Objective:
    """The registered objective called ``objective`` (an :class:`Objective` is returned as it is)."""
    if isinstance(objective, Objective):
        return objective
    _load_plugins()
    if not isinstance(objective, str) or objective not in _OBJECTIVES:
        raise FairflipError(f"unknown objective {objective!r}; choose one of {', '.join(available_objectives())}")
    return _OBJECTIVES[objective]


def available_objectives() -> list[str]:
    """Names of every registered objective, built-ins first."""
    _load_plugins()
    return list(_OBJECTIVES)


def _load_plugins() -> None:
    from .plugins import load_env_plugins

    load_env_plugins()


BUILTIN_OBJECTIVES: tuple[str, ...] = ("eqod", "eqod-worst", "dp", "eqopp")
for _obj in (
    Objective("eqod", (1, 0), "mean", "equalized odds: mean of the |TPR gap| and the |FPR gap| (the paper's EqOd)"),
    Objective("eqod-worst", (1, 0), "max", "equalized odds, worst case: max of the |TPR gap| and the |FPR gap| "
              "(fairlearn's default)"),
    Objective("dp", (None,), "mean", "demographic parity: |selection-rate gap|"),
    Objective("eqopp", (1,), "mean", "equal opportunity: |TPR gap|"),
):
    register_objective(_obj)
