"""Seeded train/test splitting stratified by (group, label)."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split

from .._errors import FairflipError, check_fraction
from ._base import Dataset


def stratified_split(data: Dataset, *, test_size: float = 0.3, seed: int = 0) -> tuple[Dataset, Dataset]:
    """Split ``data`` into train and test, stratified by the (minority indicator, label) cell of each row.

    Args:
        data: the dataset, n rows.
        test_size: share of rows in the test split, in (0, 1).
        seed: seed of the shuffle; the same seed always gives the same split.

    Returns:
        (train, test) with about (1 - test_size) n and test_size n rows; each (a, y) cell keeps its share.
    """
    check_fraction("test_size", test_size)
    if test_size >= 1:
        raise FairflipError("test_size must be below 1")
    strata = data.a * 2 + data.y
    counts = np.bincount(strata, minlength=4)
    if (counts[counts > 0] < 2).any():
        raise FairflipError("a (group, label) cell has fewer than 2 rows; it cannot be split")
    idx_train, idx_test = train_test_split(
        np.arange(len(data)), test_size=test_size, random_state=seed, stratify=strata
    )
    return data.subset(np.sort(idx_train)), data.subset(np.sort(idx_test))
