"""Model-agnostic evaluation: flips chosen against one firm, measured on other firms.

Every firm trains on the same prepared training matrix, once with the collective's flipped labels and once with
the original labels (its own no-flip baseline), and is measured on the test rows with their true labels.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Sequence

import numpy as np
import pandas as pd

from ._errors import FairflipError
from .datasets import Dataset
from .features import FeaturePreparer
from .firms import available_firms, make_firm
from .problem import FlipProblem, evaluate_flips


def retarget(problem: FlipProblem, firm) -> FlipProblem:
    """The same flip problem (rows, labels, collective, prepared features) trained by another ``firm``: what a
    transfer measures. The flips chosen for ``problem`` apply to it unchanged."""
    return dataclasses.replace(problem, firm=firm)


def evaluate_transfer(
    problem: FlipProblem,
    preparer: FeaturePreparer,
    flipped: np.ndarray,
    test: Dataset,
    *,
    firms: Sequence[str] = ("logistic", "mlp", "gbdt"),
    seed: int = 0,
) -> pd.DataFrame:
    """Train each firm on the flipped and on the original labels and measure both on ``test``.

    Args:
        problem: the flip problem the flips were chosen for (n training rows, prepared matrix ``problem.X``).
        preparer: the fitted :class:`~fairflip.features.FeaturePreparer` that built ``problem.X``.
        flipped: shape (k,) candidate rows of ``problem`` to flip.
        test: held-out rows (m), measured with their true labels.
        firms: firm names for :func:`fairflip.firms.make_firm`, each at most once. Linear firms use the
            regularisation C of ``problem.firm`` when it is linear.
        seed: random state of the mlp and gbdt firms (the same for the flipped and the baseline fit).

    Returns:
        DataFrame, one row per firm in ``firms`` order, with columns ``firm``, ``source_firm`` (the firm the
        flips were chosen against), ``n_flipped``, the test metrics of :func:`fairflip.metrics.all_metrics`
        (with ``success`` when the firm sees the group) for the firm trained on the flipped labels, the same
        metrics with suffix ``_base`` for the firm trained on the original labels, and ``runtime_s``.
    """
    firms = list(firms)
    if not firms:
        raise FairflipError("firms must name at least one firm")
    if len(set(firms)) != len(firms):
        raise FairflipError(f"firms lists a firm twice: {firms}")
    unknown = [f for f in firms if f not in available_firms()]
    if unknown:
        raise FairflipError(f"unknown firm(s) {unknown}; choose from {', '.join(available_firms())}")
    if not isinstance(test, Dataset):
        raise FairflipError("test must be a Dataset")
    X_test = preparer.transform(test)
    if X_test.shape[1] != problem.X.shape[1]:
        raise FairflipError(
            f"the preparer gives {X_test.shape[1]} columns but the problem's matrix has {problem.X.shape[1]}; "
            "pass the preparer that built the problem"
        )
    X_test_cf = preparer.transform(test, counterfactual_group=True) if preparer.include_group else None
    test_arrays = (X_test, test.y, test.a, X_test_cf)
    flipped = problem.check_flips(flipped)
    C = getattr(problem.firm, "C", 1.0)
    source = getattr(problem.firm, "name", type(problem.firm).__name__)

    rows = []
    for name in firms:
        target = retarget(problem, make_firm(name, C=C, seed=seed))
        start = time.perf_counter()
        flipped_metrics = evaluate_flips(target, flipped, test=test_arrays)["test"]
        base_metrics = evaluate_flips(target, np.zeros(0, dtype=np.int64), test=test_arrays)["test"]
        rows.append({
            "firm": name,
            "source_firm": source,
            "n_flipped": int(len(flipped)),
            **flipped_metrics,
            **{f"{k}_base": v for k, v in base_metrics.items()},
            "runtime_s": time.perf_counter() - start,
        })
    return pd.DataFrame(rows)
