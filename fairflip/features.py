"""The firm's default feature preparation, identical for every firm and every method.

Numeric columns are standardised with the *training* table's mean and population standard deviation
(ddof = 0; a constant column is left centred with scale 1), categorical columns are one-hot encoded with the
training table's categories (an unseen test category encodes as all zeros), and the minority indicator ``a``
is appended as the last column unless ``include_group=False``. The group counterfactual g(x) of the paper
(x with its group set to the majority) is the same matrix with that last column set to 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ._errors import FairflipError
from .datasets import Dataset


@dataclass
class FeaturePreparer:
    """Turns a :class:`Dataset`'s features into the firm's float64 design matrix.

    Args:
        include_group: append the minority indicator as the last column (the paper's firm sees group membership).
    """

    include_group: bool = True
    mean_: dict = field(default_factory=dict, init=False)
    scale_: dict = field(default_factory=dict, init=False)
    categories_: dict = field(default_factory=dict, init=False)
    numeric_: tuple = field(default=(), init=False)
    categorical_: tuple = field(default=(), init=False)

    def fit(self, data: Dataset) -> "FeaturePreparer":
        """Learn means, scales and categories from the training rows of ``data``."""
        self.numeric_ = tuple(data.numeric)
        self.categorical_ = tuple(data.categorical)
        for c in self.numeric_:
            col = data.features[c].to_numpy(dtype=np.float64)
            if np.isnan(col).any():
                raise FairflipError(f"feature '{c}' contains NaN")
            std = col.std()
            self.mean_[c] = float(col.mean())
            self.scale_[c] = float(std) if std > 0 else 1.0
        for c in self.categorical_:
            # astype(str) keeps missing values missing (pandas string dtype), so they are rejected here
            if data.features[c].isna().any():
                raise FairflipError(f"feature '{c}' contains NaN")
            self.categories_[c] = sorted(data.features[c].astype(str).unique().tolist())
        return self

    @property
    def feature_names_(self) -> list[str]:
        """Names of the output columns, in order."""
        names = list(self.numeric_)
        for c in self.categorical_:
            names += [f"{c}={v}" for v in self.categories_[c]]
        if self.include_group:
            names.append("minority")
        return names

    @property
    def group_column_(self) -> int | None:
        """Index of the minority indicator column, or None when the group is not a feature."""
        return len(self.feature_names_) - 1 if self.include_group else None

    def transform(self, data: Dataset, *, counterfactual_group: bool = False, drop_group: bool = False) -> np.ndarray:
        """Return the design matrix of ``data``.

        Args:
            data: rows to transform (same columns as the fitted data).
            counterfactual_group: set every row's group to the majority (the paper's g(x)).
            drop_group: leave out the group column even when ``include_group`` (e.g. for kNN distances).

        Returns:
            shape (n, d) float64 array, d = len(feature_names_) (minus 1 with ``drop_group``).
        """
        if not self.mean_ and not self.categories_:
            raise FairflipError("FeaturePreparer must be fitted before transform")
        missing = [c for c in (*self.numeric_, *self.categorical_) if c not in data.features.columns]
        if missing:
            raise FairflipError(f"feature column(s) {missing} missing from the data")
        bad = [c for c in (*self.numeric_, *self.categorical_) if data.features[c].isna().any()]
        if bad:
            raise FairflipError(f"feature(s) {bad} contain NaN")
        n = len(data)
        n_num = len(self.numeric_)
        width = n_num + sum(len(self.categories_[c]) for c in self.categorical_)
        with_group = self.include_group and not drop_group
        # One allocation for the whole matrix: on census-size data, stacking blocks costs more than encoding them.
        out = np.zeros((n, width + int(with_group)))
        if n_num:
            num = data.features[list(self.numeric_)].to_numpy(dtype=np.float64)
            mean = np.array([self.mean_[c] for c in self.numeric_])
            scale = np.array([self.scale_[c] for c in self.numeric_])
            np.divide(num - mean, scale, out=out[:, :n_num])
        offset = n_num
        rows = np.arange(n)
        for c in self.categorical_:
            # Integer codes (-1 for a category unseen in training), then one scatter into the block.
            codes = pd.Index(self.categories_[c]).get_indexer(data.features[c].astype(str).to_numpy())
            seen = codes >= 0
            out[rows[seen], offset + codes[seen]] = 1.0
            offset += len(self.categories_[c])
        if with_group and not counterfactual_group:
            out[:, -1] = data.a
        return out

    def fit_transform(self, data: Dataset) -> np.ndarray:
        """Fit on ``data`` and return its design matrix, shape (n, d)."""
        return self.fit(data).transform(data)
