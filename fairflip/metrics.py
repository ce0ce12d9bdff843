"""Group-fairness and accuracy metrics of a firm's hard predictions, two groups (a = 1 minority, a = 0 majority).

All functions take plain arrays of shape (n,). ``eqod`` is the paper's headline (the *mean* of the absolute TPR
and FPR gaps, fairlearn's ``equalized_odds_difference(..., agg="mean")``); ``eqod_worst`` is their maximum
(fairlearn's default ``agg="worst_case"``). A rate over an empty (group, label) cell is undefined: it raises
:class:`FairflipError` rather than returning NaN. Smooth surrogates of these metrics live with the oracle's
objectives and carry their own names; nothing here is a surrogate.
"""

from __future__ import annotations

import numpy as np

from ._errors import FairflipError, check_binary


def _prepare(y_true, y_pred, a) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y_true = check_binary("y_true", y_true)
    y_pred = check_binary("y_pred", y_pred)
    a = check_binary("group indicator a", a)
    if not (len(y_true) == len(y_pred) == len(a)):
        raise FairflipError(f"length mismatch: y_true {len(y_true)}, y_pred {len(y_pred)}, a {len(a)}")
    return y_true, y_pred, a


def _rate(y_pred: np.ndarray, mask: np.ndarray, what: str) -> float:
    if not mask.any():
        raise FairflipError(f"empty cell: no rows with {what}; the rate is undefined")
    return float(y_pred[mask].mean())


def _group_rate(y_true: np.ndarray, y_pred: np.ndarray, a: np.ndarray, g: int, label: int | None) -> float:
    """Mean prediction of group ``g`` restricted to ``y_true == label`` (all its rows when ``label`` is None)."""
    name = "minority" if g == 1 else "majority"
    if label is None:
        return _rate(y_pred, a == g, name)
    return _rate(y_pred, (a == g) & (y_true == label), f"{name} and y = {label}")


def group_rates(y_true, y_pred, a) -> dict[str, float]:
    """Return TPR, FPR and selection rate of each group.

    Args:
        y_true, y_pred, a: shape (n,) arrays in {0, 1}; a = 1 marks the minority.

    Returns:
        dict with keys ``tpr_1, tpr_0, fpr_1, fpr_0, sel_1, sel_0`` (suffix = group).
    """
    y_true, y_pred, a = _prepare(y_true, y_pred, a)
    out = {}
    for g in (1, 0):
        out[f"tpr_{g}"] = _group_rate(y_true, y_pred, a, g, 1)
        out[f"fpr_{g}"] = _group_rate(y_true, y_pred, a, g, 0)
        out[f"sel_{g}"] = _group_rate(y_true, y_pred, a, g, None)
    return out


def _gap(y_true, y_pred, a, label: int | None) -> float:
    # Only the two cells this gap needs must be non-empty (DP needs no label cell at all).
    y_true, y_pred, a = _prepare(y_true, y_pred, a)
    return abs(_group_rate(y_true, y_pred, a, 1, label) - _group_rate(y_true, y_pred, a, 0, label))


def tpr_gap(y_true, y_pred, a) -> float:
    """|TPR(minority) - TPR(majority)|, a float in [0, 1]; inputs shape (n,)."""
    return _gap(y_true, y_pred, a, 1)


def fpr_gap(y_true, y_pred, a) -> float:
    """|FPR(minority) - FPR(majority)|, a float in [0, 1]; inputs shape (n,)."""
    return _gap(y_true, y_pred, a, 0)


def eqod(y_true, y_pred, a) -> float:
    """The paper's EqOd: mean of the absolute TPR and FPR gaps; inputs shape (n,)."""
    r = group_rates(y_true, y_pred, a)
    return 0.5 * (abs(r["tpr_1"] - r["tpr_0"]) + abs(r["fpr_1"] - r["fpr_0"]))


def eqod_worst(y_true, y_pred, a) -> float:
    """EqOd worst case: the larger of the absolute TPR and FPR gaps (fairlearn's default); inputs shape (n,)."""
    r = group_rates(y_true, y_pred, a)
    return max(abs(r["tpr_1"] - r["tpr_0"]), abs(r["fpr_1"] - r["fpr_0"]))


def demographic_parity(y_true, y_pred, a) -> float:
    """|P(h = 1 | minority) - P(h = 1 | majority)|; inputs shape (n,) (y_true is only validated)."""
    return _gap(y_true, y_pred, a, None)


def equal_opportunity(y_true, y_pred, a) -> float:
    """Equal opportunity difference: the absolute TPR gap; inputs shape (n,)."""
    return tpr_gap(y_true, y_pred, a)


def error_rate(y_true, y_pred) -> float:
    """Share of misclassified rows; inputs shape (n,)."""
    y_true = check_binary("y_true", y_true)
    y_pred = check_binary("y_pred", y_pred)
    if len(y_true) != len(y_pred) or len(y_true) == 0:
        raise FairflipError("y_true and y_pred must be non-empty and of equal length")
    return float((y_true != y_pred).mean())


def success(y_pred, y_pred_counterfactual, a) -> float:
    """The paper's success S: share of minority rows whose prediction is unchanged when their group is set to
    the majority, h(g(x)) = h(x).

    Args:
        y_pred: shape (n,) predictions on the rows as they are.
        y_pred_counterfactual: shape (n,) predictions on the same rows with the group set to the majority.
        a: shape (n,) minority indicator.
    """
    y_pred = check_binary("y_pred", y_pred)
    y_cf = check_binary("y_pred_counterfactual", y_pred_counterfactual)
    a = check_binary("group indicator a", a)
    if not (len(y_pred) == len(y_cf) == len(a)):
        raise FairflipError(f"length mismatch: y_pred {len(y_pred)}, y_pred_counterfactual {len(y_cf)}, a {len(a)}")
    if not a.any():
        raise FairflipError("empty cell: no minority rows; success is undefined")
    return float((y_pred[a == 1] == y_cf[a == 1]).mean())


def fairness(name, y_true, y_pred, a, sample_weight=None) -> float:
    """The registered fairness objective ``name`` (a name or an :class:`~fairflip.objectives.Objective`);
    inputs shape (n,). See :mod:`fairflip.objectives`."""
    from .objectives import get_objective

    return get_objective(name).value(y_true, y_pred, a, sample_weight=sample_weight)


def all_metrics(y_true, y_pred, a, *, y_pred_counterfactual=None) -> dict[str, float]:
    """Every metric at once.

    Args:
        y_true, y_pred, a: shape (n,) arrays in {0, 1}.
        y_pred_counterfactual: shape (n,) predictions with the group set to the majority, for ``success``.

    Returns:
        dict with ``eqod, eqod_worst, dp, eqopp, tpr_gap, fpr_gap, error, error_minority, error_majority``
        and ``success`` when counterfactual predictions are given.
    """
    y_true, y_pred, a = _prepare(y_true, y_pred, a)
    r = group_rates(y_true, y_pred, a)
    tg, fg = abs(r["tpr_1"] - r["tpr_0"]), abs(r["fpr_1"] - r["fpr_0"])
    out = {
        "eqod": 0.5 * (tg + fg),
        "eqod_worst": max(tg, fg),
        "dp": abs(r["sel_1"] - r["sel_0"]),
        "eqopp": tg,
        "tpr_gap": tg,
        "fpr_gap": fg,
        "error": error_rate(y_true, y_pred),
        "error_minority": error_rate(y_true[a == 1], y_pred[a == 1]),
        "error_majority": error_rate(y_true[a == 0], y_pred[a == 0]),
    }
    if y_pred_counterfactual is not None:
        out["success"] = success(y_pred, y_pred_counterfactual, a)
    return out
