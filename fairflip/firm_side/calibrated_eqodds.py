"""Calibrated equalized odds post-processing (Pleiss, Raghavan, Wu, Kleinberg, Weinberger, NeurIPS 2017).

With calibrated probabilities p(x) in each group, equalized odds and calibration cannot both hold exactly; the
method equalises one *generalized* cost per group instead, keeping calibration:

- generalized FPR  c_fp = E[p | y = 0],  generalized FNR  c_fn = E[1 - p | y = 1],
- cost ``fpr`` = c_fp, ``fnr`` = c_fn, ``weighted`` = (1 - mu) c_fp + mu c_fn (mu the group's base rate; this is
  the expected error of predicting y = 1 with probability p).

The trivial classifier p = mu is calibrated and has the largest such cost. The group whose cost is lower gets
mixed with it: with probability alpha its probability is replaced by its base rate, alpha chosen so its expected
cost rises exactly to the other group's,

    alpha = (cost_other - cost_low) / (trivial_cost_low - cost_low),

and the other group is left alone.

Hard decisions: by default (``decision="sample"``) a row is predicted 1 with its mixed probability, so the
equalised generalized rates are exactly the expected FPR / FNR of the decision. ``decision="threshold"``
predicts 1 iff the mixed probability exceeds 0.5 instead (what AIF360 does); that breaks the link between
the equalised costs and the hard rates and can *increase* the equalized-odds gap (it does on COMPAS).

The firm's scores are first made calibrated within each group by Platt scaling, fitted, together with the
mixing rate, on a held-out part of the training rows the firm did not train on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from sklearn.model_selection import train_test_split

from .._errors import FairflipError, check_binary, check_fraction
from ..firms import Firm, LinearFirm, LinearModel

CostName = Literal["fpr", "fnr", "weighted"]
COSTS = ("fpr", "fnr", "weighted")
Decision = Literal["sample", "threshold"]
DECISIONS = ("sample", "threshold")


def _check_cost(cost: str) -> str:
    if cost not in COSTS:
        raise FairflipError(f"unknown cost '{cost}'; choose one of {', '.join(COSTS)}")
    return cost


def _check_probabilities(prob: np.ndarray, n: int | None = None) -> np.ndarray:
    prob = np.asarray(prob, dtype=np.float64)
    if prob.ndim != 1 or not np.all((prob >= 0) & (prob <= 1)):
        raise FairflipError("prob must be a one-dimensional array of probabilities in [0, 1]")
    if n is not None and len(prob) != n:
        raise FairflipError(f"prob has {len(prob)} entries but the other inputs have {n}")
    return prob


def generalized_cost(y: np.ndarray, prob: np.ndarray, *, cost: CostName = "weighted") -> float:
    """The generalized cost of probabilities ``prob`` on the rows of one group.

    Args:
        y: shape (n,) true labels in {0, 1}.
        prob: shape (n,) predicted P(y = 1) in [0, 1].
        cost: ``fpr`` (mean prob over y = 0), ``fnr`` (mean 1 - prob over y = 1) or ``weighted``
            (base-rate weighted sum of the two).

    Returns:
        the cost, a float in [0, 1].
    """
    _check_cost(cost)
    y = check_binary("y", y)
    prob = _check_probabilities(prob, len(y))
    if len(y) == 0:
        raise FairflipError("no rows: the generalized cost is undefined")
    for label in {"fpr": (0,), "fnr": (1,), "weighted": ()}[cost]:
        if not (y == label).any():
            raise FairflipError(f"empty cell: no rows with y = {label}; the generalized {cost} is undefined")
    if cost == "fpr":
        return float(prob[y == 0].mean())
    if cost == "fnr":
        return float((1 - prob[y == 1]).mean())
    # (1 - mu) E[p | y=0] + mu E[1 - p | y=1] is the row average of p on negatives and 1 - p on positives.
    return float(np.where(y == 1, 1 - prob, prob).mean())


@dataclass
class CalibratedEqualizedOdds:
    """Pleiss et al.'s post-processing of calibrated probabilities (two groups, a = 1 minority).

    Args:
        cost: the generalized cost to equalise: ``fpr``, ``fnr`` or ``weighted``.
        decision: ``sample`` (predict 1 with the mixed probability) or ``threshold`` (predict 1 iff the mixed
            probability exceeds ``threshold``).
        threshold: the cut-off of ``decision="threshold"``.

    Attributes (after :meth:`fit`, each shape (2,), indexed by the group a):
        base_rate_: P(y = 1) of each group.
        cost_: generalized cost of the given probabilities.
        trivial_cost_: generalized cost of the trivial classifier p = base rate.
        mix_rate_: probability of replacing a row's probability by its group's base rate (one entry is 0).
    """

    cost: CostName = "weighted"
    decision: Decision = "sample"
    threshold: float = 0.5
    base_rate_: np.ndarray = field(default=None, init=False, repr=False)
    cost_: np.ndarray = field(default=None, init=False, repr=False)
    trivial_cost_: np.ndarray = field(default=None, init=False, repr=False)
    mix_rate_: np.ndarray = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        _check_cost(self.cost)
        if self.decision not in DECISIONS:
            raise FairflipError(f"unknown decision '{self.decision}'; choose one of {', '.join(DECISIONS)}")
        if not (0 < self.threshold < 1):
            raise FairflipError(f"threshold must lie in (0, 1), got {self.threshold!r}")

    def fit(self, prob: np.ndarray, y: np.ndarray, a: np.ndarray) -> "CalibratedEqualizedOdds":
        """Estimate base rates, costs and the mixing rate from calibrated probabilities.

        Args:
            prob: shape (n,) calibrated P(y = 1) of held-out rows.
            y: shape (n,) their true labels.
            a: shape (n,) their minority indicator.
        """
        y = check_binary("y", y)
        a = check_binary("group indicator a", a)
        if len(a) != len(y):
            raise FairflipError(f"y has {len(y)} entries but a has {len(a)}")
        prob = _check_probabilities(prob, len(y))
        base, cost, trivial = np.zeros(2), np.zeros(2), np.zeros(2)
        for g in (0, 1):
            rows = a == g
            if not rows.any():
                raise FairflipError(f"no rows of group a = {g}; calibrated equalized odds needs both groups")
            base[g] = y[rows].mean()
            cost[g] = generalized_cost(y[rows], prob[rows], cost=self.cost)
            trivial[g] = generalized_cost(y[rows], np.full(rows.sum(), base[g]), cost=self.cost)
        low = int(np.argmin(cost))
        mix = np.zeros(2)
        room = trivial[low] - cost[low]
        # For calibrated probabilities the trivial classifier costs at least as much; if estimation noise says
        # otherwise, mixing could only widen the gap, so the group is left alone.
        if room > 0:
            mix[low] = min(1.0, (cost[1 - low] - cost[low]) / room)
        self.base_rate_, self.cost_, self.trivial_cost_, self.mix_rate_ = base, cost, trivial, mix
        return self

    def _check_fitted(self) -> None:
        if self.mix_rate_ is None:
            raise FairflipError("CalibratedEqualizedOdds must be fitted before predicting")

    def mixed_proba(self, prob: np.ndarray, a: np.ndarray, *, seed: int | np.random.Generator = 0) -> np.ndarray:
        """Randomised post-processed probabilities.

        Args:
            prob: shape (m,) calibrated probabilities.
            a: shape (m,) minority indicator.
            seed: seed (or generator) of the draws that decide which rows take their group's base rate.

        Returns:
            shape (m,) probabilities: each row's own, or with probability mix_rate_[a] its group's base rate.
        """
        self._check_fitted()
        a = check_binary("group indicator a", a)
        prob = _check_probabilities(prob, len(a))
        replace = np.random.default_rng(seed).random(len(prob)) < self.mix_rate_[a]
        return np.where(replace, self.base_rate_[a], prob)

    def predict(self, prob: np.ndarray, a: np.ndarray, *, seed: int = 0) -> np.ndarray:
        """Hard decisions on the mixed probabilities (inputs as :meth:`mixed_proba`), shape (m,) int64."""
        rng = np.random.default_rng(seed)
        mixed = self.mixed_proba(prob, a, seed=rng)
        if self.decision == "sample":
            return (rng.random(len(mixed)) < mixed).astype(np.int64)
        return (mixed > self.threshold).astype(np.int64)


@dataclass
class GroupPlattCalibrator:
    """Platt scaling per group: P(y = 1 | s, a = g) = sigmoid(slope_g * s + offset_g) for a firm's scores s.

    Args:
        C: inverse L2 strength on the slope (large: nearly unpenalised Platt scaling).

    Attributes:
        models_: the two fitted one-feature logistic models, indexed by the group a.
    """

    C: float = 1e4
    models_: tuple[LinearModel, LinearModel] | None = field(default=None, init=False, repr=False)

    def fit(self, scores: np.ndarray, y: np.ndarray, a: np.ndarray) -> "GroupPlattCalibrator":
        """Fit on held-out scores (n,), labels (n,) and groups (n,); each group needs both labels."""
        scores = np.asarray(scores, dtype=np.float64)
        y = check_binary("y", y)
        a = check_binary("group indicator a", a)
        if not (len(scores) == len(y) == len(a)) or scores.ndim != 1:
            raise FairflipError(f"scores, y and a must be (n,) of one length, got {scores.shape}, {len(y)}, {len(a)}")
        platt = LinearFirm("logistic", C=self.C, device="cpu")
        models = []
        for g in (0, 1):
            rows = a == g
            if len(np.unique(y[rows])) < 2:
                raise FairflipError(f"group a = {g} needs both labels in the calibration rows")
            models.append(platt.fit(scores[rows, None], y[rows]))
        self.models_ = tuple(models)
        return self

    def predict_proba(self, scores: np.ndarray, a: np.ndarray) -> np.ndarray:
        """Calibrated P(y = 1) of scores (m,) with groups a (m,), shape (m,)."""
        if self.models_ is None:
            raise FairflipError("GroupPlattCalibrator must be fitted before predict_proba")
        scores = np.asarray(scores, dtype=np.float64)
        a = check_binary("group indicator a", a)
        out = np.empty(len(scores))
        for g in (0, 1):
            rows = a == g
            out[rows] = self.models_[g].predict_proba(scores[rows, None])
        return out


def predict_calibrated_eqodds(
    firm: Firm,
    X: np.ndarray,
    y: np.ndarray,
    a: np.ndarray,
    X_test: np.ndarray,
    a_test: np.ndarray,
    *,
    seed: int = 0,
    holdout: float = 0.3,
    cost: CostName = "weighted",
    decision: Decision = "sample",
) -> np.ndarray:
    """Train the firm on part of (X (n, d), y (n,)), calibrate and fit the mixing rate on the rest, predict X_test.

    Args:
        firm: the firm (any firm with ``decision_function``; Platt scaling turns its scores into probabilities).
        X, y, a: training rows, shapes (n, d), (n,), (n,).
        X_test, a_test: rows to predict, shapes (m, d), (m,).
        seed: seed of the held-out split and of the randomised mixing.
        holdout: share of the training rows held out (stratified by group and label).
        cost: generalized cost to equalise, see :class:`CalibratedEqualizedOdds`.
        decision: ``sample`` or ``threshold``, see :class:`CalibratedEqualizedOdds`.

    Returns:
        shape (m,) int64 predictions.
    """
    post = CalibratedEqualizedOdds(cost=cost, decision=decision)  # validates both before any training
    check_fraction("holdout", holdout)
    if holdout >= 1:
        raise FairflipError("holdout must be below 1")
    y = check_binary("y", y)
    a = check_binary("group indicator a", a)
    fit_rows, held_rows = train_test_split(
        np.arange(len(y)), test_size=holdout, random_state=seed, stratify=2 * a + y
    )
    model = firm.fit(X[fit_rows], y[fit_rows])
    calibrator = GroupPlattCalibrator().fit(model.decision_function(X[held_rows]), y[held_rows], a[held_rows])
    post.fit(
        calibrator.predict_proba(model.decision_function(X[held_rows]), a[held_rows]), y[held_rows], a[held_rows]
    )
    return post.predict(calibrator.predict_proba(model.decision_function(X_test), a_test), a_test, seed=seed)
