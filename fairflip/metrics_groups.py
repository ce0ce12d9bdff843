"""Fairness metrics over several groups: intersectional minorities and many-valued sensitive attributes.

``Dataset.group`` holds each row's full group label (e.g. ``"race=African-American&sex=Female"``); the minority
``a = 1`` is one of those groups (a conjunction of attribute values) or several of them. Two views are reported:

- the minority against everyone else: the two-group metrics of :mod:`fairflip.metrics` with ``a`` the minority
  indicator (what the collective acts on);
- the worst pairwise gap over all groups: for every pair of groups the two-group gap between them, and the
  largest. For the TPR gap, FPR gap, demographic parity, equal opportunity and the worst-case EqOd this maximum
  equals the max-minus-min across groups that fairlearn reports for a many-valued sensitive feature
  (``equalized_odds_difference(..., agg="worst_case")``, ``demographic_parity_difference``, ...). The paper's
  EqOd (mean of the TPR and FPR gaps) is taken pair by pair, so it can be smaller than fairlearn's
  ``agg="mean"``, which averages the two ranges even when they come from different pairs.

Groups lacking rows of either label (fewer than ``min_cell``) have undefined TPR or FPR; they are left out of the
pairwise comparison and listed, never silently given a rate of 0.
"""

from __future__ import annotations

from itertools import combinations
from typing import Iterable, Literal

import numpy as np
import pandas as pd

from ._errors import FairflipError, check_binary
from .metrics import all_metrics
from .objectives import BUILTIN_OBJECTIVES

PairwiseMetric = Literal["eqod", "eqod-worst", "dp", "eqopp", "tpr-gap", "fpr-gap"]
PAIRWISE_METRICS = ("eqod", "eqod-worst", "dp", "eqopp", "tpr-gap", "fpr-gap")


def _prepare(y_true, y_pred, group) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y_true = check_binary("y_true", y_true)
    y_pred = check_binary("y_pred", y_pred)
    group = np.asarray(group)
    if group.ndim != 1:
        raise FairflipError(f"group must be one-dimensional, got shape {group.shape}")
    group = group.astype(str)
    if not (len(y_true) == len(y_pred) == len(group)):
        raise FairflipError(f"length mismatch: y_true {len(y_true)}, y_pred {len(y_pred)}, group {len(group)}")
    return y_true, y_pred, group


def group_table(y_true, y_pred, group) -> pd.DataFrame:
    """Per-group counts and rates.

    Args:
        y_true, y_pred: shape (n,) arrays in {0, 1}.
        group: shape (n,) group label of each row (any values; compared as strings).

    Returns:
        DataFrame indexed by group (sorted) with columns ``n, n_pos, n_neg`` and ``tpr, fpr, sel, error``;
        a rate over an empty cell is NaN.
    """
    y_true, y_pred, group = _prepare(y_true, y_pred, group)
    rows = {}
    for g in np.unique(group):
        m = group == g
        pos, neg = m & (y_true == 1), m & (y_true == 0)
        rows[g] = {
            "n": int(m.sum()),
            "n_pos": int(pos.sum()),
            "n_neg": int(neg.sum()),
            "tpr": float(y_pred[pos].mean()) if pos.any() else np.nan,
            "fpr": float(y_pred[neg].mean()) if neg.any() else np.nan,
            "sel": float(y_pred[m].mean()),
            "error": float((y_pred[m] != y_true[m]).mean()),
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "group"
    return table


def eligible_groups(table: pd.DataFrame, *, min_cell: int = 1) -> tuple[list[str], list[str]]:
    """Split the groups of a :func:`group_table` into (compared, left out) by the size of their label cells.

    Args:
        table: output of :func:`group_table`.
        min_cell: a group is compared only when it has at least this many rows of each label (>= 1).

    Returns:
        (groups compared, groups left out), both sorted lists of group labels.
    """
    if isinstance(min_cell, bool) or not isinstance(min_cell, (int, np.integer)) or min_cell < 1:
        raise FairflipError(f"min_cell must be a positive integer, got {min_cell!r}")
    ok = (table["n_pos"] >= min_cell) & (table["n_neg"] >= min_cell)
    return table.index[ok].tolist(), table.index[~ok].tolist()


def pairwise_gaps(y_true, y_pred, group, *, min_cell: int = 1) -> pd.DataFrame:
    """The two-group gaps between every pair of groups.

    Args:
        y_true, y_pred: shape (n,) arrays in {0, 1}.
        group: shape (n,) group label of each row.
        min_cell: groups with fewer rows of either label are left out (see :func:`eligible_groups`).

    Returns:
        DataFrame with one row per unordered pair (columns ``group_1 < group_2``) and the absolute gaps
        ``tpr_gap, fpr_gap, eqod`` (their mean), ``eqod_worst`` (their maximum), ``dp`` (selection rates) and
        ``eqopp`` (= tpr_gap). Raises FairflipError when fewer than two groups can be compared.
    """
    table = group_table(y_true, y_pred, group)
    kept, left_out = eligible_groups(table, min_cell=min_cell)
    if len(kept) < 2:
        raise FairflipError(f"fewer than two groups have at least {min_cell} row(s) of each label "
                            f"(left out: {left_out})")
    records = []
    for g1, g2 in combinations(kept, 2):
        tg = abs(table.at[g1, "tpr"] - table.at[g2, "tpr"])
        fg = abs(table.at[g1, "fpr"] - table.at[g2, "fpr"])
        records.append({
            "group_1": g1, "group_2": g2, "tpr_gap": tg, "fpr_gap": fg, "eqod": 0.5 * (tg + fg),
            "eqod_worst": max(tg, fg), "dp": abs(table.at[g1, "sel"] - table.at[g2, "sel"]), "eqopp": tg,
        })
    return pd.DataFrame.from_records(records)


def worst_pairwise_gap(y_true, y_pred, group, *, metric: PairwiseMetric = "eqod", min_cell: int = 1) -> float:
    """The largest two-group gap over all pairs of groups.

    Args:
        y_true, y_pred: shape (n,) arrays in {0, 1}.
        group: shape (n,) group label of each row.
        metric: ``eqod`` (paper's mean of TPR and FPR gaps, per pair), ``eqod-worst``, ``dp``, ``eqopp``,
            ``tpr-gap`` or ``fpr-gap``.
        min_cell: see :func:`eligible_groups`.

    Returns:
        the maximum over pairs, a float in [0, 1].
    """
    if metric not in PAIRWISE_METRICS:
        raise FairflipError(f"unknown metric '{metric}'; choose one of {', '.join(PAIRWISE_METRICS)}")
    gaps = pairwise_gaps(y_true, y_pred, group, min_cell=min_cell)
    return float(gaps[metric.replace("-", "_")].max())


def minority_indicator(group, minority: str | Iterable[str]) -> np.ndarray:
    """Shape (n,) int64: 1 for rows whose group is the minority (one label or a collection of labels).

    Args:
        group: shape (n,) group labels.
        minority: the minority's group label(s); each must occur in ``group``.
    """
    group = np.asarray(group).astype(str)
    labels = [minority] if isinstance(minority, str) else [str(m) for m in minority]
    if not labels:
        raise FairflipError("minority must name at least one group")
    absent = sorted(set(labels) - set(np.unique(group).tolist()))
    if absent:
        raise FairflipError(f"minority group(s) {absent} not found among the groups")
    return np.isin(group, labels).astype(np.int64)


def intersectional_metrics(y_true, y_pred, group, minority: str | Iterable[str], *, min_cell: int = 1) -> dict:
    """Minority-against-the-rest metrics and worst pairwise gaps over all groups, in one dict.

    Args:
        y_true, y_pred: shape (n,) arrays in {0, 1}.
        group: shape (n,) group label of each row.
        minority: the minority's group label(s) (e.g. ``"race=Black&sex=Female"``).
        min_cell: see :func:`eligible_groups`.

    Returns:
        dict with every key of :func:`fairflip.metrics.all_metrics` (minority vs the rest), ``worst_eqod``,
        ``worst_eqod_worst``, ``worst_dp``, ``worst_eqopp`` (worst pairwise gaps), ``worst_pair`` (the pair
        with the largest EqOd, as ``"g1 | g2"``), ``n_groups`` (groups compared) and ``left_out`` (list).
    """
    y_true, y_pred, group = _prepare(y_true, y_pred, group)
    out = all_metrics(y_true, y_pred, minority_indicator(group, minority))
    gaps = pairwise_gaps(y_true, y_pred, group, min_cell=min_cell)
    for name in BUILTIN_OBJECTIVES:
        col = name.replace("-", "_")
        out[f"worst_{col}"] = float(gaps[col].max())
    top = gaps.loc[gaps["eqod"].idxmax()]
    out["worst_pair"] = f"{top['group_1']} | {top['group_2']}"
    kept, left_out = eligible_groups(group_table(y_true, y_pred, group), min_cell=min_cell)
    out["n_groups"] = len(kept)
    out["left_out"] = left_out
    return out
