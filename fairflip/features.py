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


MAX_CATEGORIES = 1000
"""Default cap on the levels of one categorical column: a wider one-hot block is refused at ``fit``."""
_PRESCALE_ABOVE = 1e100
"""Numeric columns whose largest magnitude exceeds this are divided by it before their statistics are taken, so
squares and differences cannot overflow (the standardised result is the same)."""


def _numeric_block(data: Dataset, columns: tuple) -> np.ndarray:
    """Shape (n, len(columns)) float64 of the numeric columns; clear errors for text, NaN and infinities."""
    out = np.empty((len(data), len(columns)))
    for j, c in enumerate(columns):
        raw = data.features[c]
        col = pd.to_numeric(raw, errors="coerce") if raw.dtype.kind not in "iufb" else raw
        values = np.asarray(col, dtype=np.float64)
        if np.isnan(values).any():
            bad = np.flatnonzero(np.isnan(values))
            examples = sorted({str(v) for v in raw.iloc[bad[:20]].tolist()})[:3]
            text = "NaN" if raw.dtype.kind in "iufb" else f"missing or non-numeric value(s) such as {examples}"
            raise FairflipError(f"numeric feature '{c}' has {len(bad)} {text} (first in row {int(bad[0])})")
        if not np.isfinite(values).all():
            bad = np.flatnonzero(~np.isfinite(values))
            raise FairflipError(f"numeric feature '{c}' has {len(bad)} infinite value(s) (first in row {int(bad[0])})")
        out[:, j] = values
    return out


@dataclass
class FeaturePreparer:
    """Turns a :class:`Dataset`'s features into the firm's float64 design matrix.

    Args:
        include_group: append the minority indicator as the last column (the paper's firm sees group membership).
        max_categories: most levels a categorical column may have; a column with more is refused at ``fit``
            (its dense one-hot block would be n x levels). Raise it, or use :meth:`transform_sparse`, knowingly.

    Bounded memory: :meth:`transform` estimates the matrix's size before allocating it and raises a clear
    :class:`FairflipError` when it cannot fit (see :func:`fairflip._io.check_memory`).
    """

    include_group: bool = True
    max_categories: int = MAX_CATEGORIES
    mean_: dict = field(default_factory=dict, init=False)
    scale_: dict = field(default_factory=dict, init=False)
    prescale_: dict = field(default_factory=dict, init=False)
    categories_: dict = field(default_factory=dict, init=False)
    numeric_: tuple = field(default=(), init=False)
    categorical_: tuple = field(default=(), init=False)

    def fit(self, data: Dataset) -> "FeaturePreparer":
        """Learn means, scales and categories from the training rows of ``data``.

        Raises:
            FairflipError: naming the column: a numeric column with NaN, text or infinite values; a categorical
                column with missing values or more than ``max_categories`` levels.
        """
        if isinstance(self.max_categories, bool) or not isinstance(self.max_categories, int) \
                or self.max_categories < 1:
            raise FairflipError(f"max_categories must be a positive integer, got {self.max_categories!r}")
        self.numeric_ = tuple(data.numeric)
        self.categorical_ = tuple(data.categorical)
        for c in self.categorical_:
            # astype(str) keeps missing values missing (pandas string dtype), so they are rejected here
            if data.features[c].isna().any():
                raise FairflipError(f"feature '{c}' contains NaN")
            levels = data.features[c].astype(str).unique()
            if len(levels) > self.max_categories:
                raise FairflipError(
                    f"categorical feature '{c}' has {len(levels):,} distinct values, more than max_categories="
                    f"{self.max_categories:,}: its one-hot block would be {len(data):,} x {len(levels):,}. Drop the "
                    "column, merge its rare values, or treat it as numeric if it is a number")
            self.categories_[c] = sorted(levels.tolist())
        num = _numeric_block(data, self.numeric_)
        for j, c in enumerate(self.numeric_):
            col = num[:, j]
            big = float(np.abs(col).max()) if len(col) else 0.0
            pre = big if big > _PRESCALE_ABOVE else 1.0
            scaled = col / pre if pre != 1.0 else col
            std = scaled.std()
            self.prescale_[c] = pre
            self.mean_[c] = float(scaled.mean())
            self.scale_[c] = float(std) if std > 0 else 1.0
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

    def _check_ready(self, data: Dataset) -> None:
        if not self.mean_ and not self.categories_:
            raise FairflipError("FeaturePreparer must be fitted before transform")
        missing = [c for c in (*self.numeric_, *self.categorical_) if c not in data.features.columns]
        if missing:
            raise FairflipError(f"feature column(s) {missing} missing from the data")
        bad = [c for c in self.categorical_ if data.features[c].isna().any()]
        if bad:
            raise FairflipError(f"feature(s) {bad} contain NaN")

    def _standardised(self, data: Dataset) -> np.ndarray:
        """Shape (n, n_numeric): the numeric block standardised with the training statistics."""
        num = _numeric_block(data, self.numeric_)
        if not self.numeric_:
            return num
        pre = np.array([self.prescale_.get(c, 1.0) for c in self.numeric_])
        mean = np.array([self.mean_[c] for c in self.numeric_])
        scale = np.array([self.scale_[c] for c in self.numeric_])
        with np.errstate(over="ignore", invalid="ignore"):
            if (pre != 1.0).any():
                num = num / pre
            out = (num - mean) / scale
        if not np.isfinite(out).all():
            j = int(np.flatnonzero(~np.isfinite(out).all(axis=0))[0])
            raise FairflipError(f"numeric feature '{self.numeric_[j]}' holds values too large to standardise with "
                                "the training rows' scale")
        return out

    def transform(self, data: Dataset, *, counterfactual_group: bool = False, drop_group: bool = False) -> np.ndarray:
        """Return the design matrix of ``data``.

        Args:
            data: rows to transform (same columns as the fitted data).
            counterfactual_group: set every row's group to the majority (the paper's g(x)).
            drop_group: leave out the group column even when ``include_group`` (e.g. for kNN distances).

        Returns:
            shape (n, d) float64 array, d = len(feature_names_) (minus 1 with ``drop_group``).

        Raises:
            FairflipError: a column is missing, holds NaN, text in a numeric column or values too large to
                standardise, or the matrix cannot fit in the memory available.
        """
        from ._io import check_memory

        self._check_ready(data)
        n = len(data)
        n_num = len(self.numeric_)
        width = n_num + sum(len(self.categories_[c]) for c in self.categorical_)
        with_group = self.include_group and not drop_group
        check_memory(8.0 * n * (width + int(with_group) + n_num),
                     f"the design matrix ({n:,} x {width + int(with_group):,} float64)")
        # One allocation for the whole matrix: on census-size data, stacking blocks costs more than encoding them.
        out = np.zeros((n, width + int(with_group)))
        if n_num:
            out[:, :n_num] = self._standardised(data)
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

    def transform_sparse(self, data: Dataset, *, counterfactual_group: bool = False,
                         drop_group: bool = False):
        """The design matrix of :meth:`transform` as a SciPy CSR matrix, built without a dense intermediate.

        Memory grows with n x (numeric columns + categorical columns + 1), not with the number of categories,
        so a high-cardinality column stays affordable here.

        Returns:
            shape (n, d) ``scipy.sparse.csr_matrix`` of float64, equal to ``transform(data, ...)``.
        """
        import scipy.sparse as sp

        self._check_ready(data)
        n = len(data)
        n_num = len(self.numeric_)
        width = n_num + sum(len(self.categories_[c]) for c in self.categorical_)
        with_group = self.include_group and not drop_group
        blocks = []
        if n_num:
            blocks.append(sp.csr_matrix(self._standardised(data)))
        for c in self.categorical_:
            codes = pd.Index(self.categories_[c]).get_indexer(data.features[c].astype(str).to_numpy())
            seen = np.flatnonzero(codes >= 0)
            blocks.append(sp.csr_matrix((np.ones(len(seen)), (seen, codes[seen])),
                                        shape=(n, len(self.categories_[c]))))
        if with_group:
            group = np.zeros(n) if counterfactual_group else np.asarray(data.a, dtype=np.float64)
            blocks.append(sp.csr_matrix(group.reshape(-1, 1)))
        if not blocks:
            return sp.csr_matrix((n, 0))
        out = sp.hstack(blocks, format="csr")
        out.eliminate_zeros()
        assert out.shape == (n, width + int(with_group))
        return out

    def fit_transform(self, data: Dataset) -> np.ndarray:
        """Fit on ``data`` and return its design matrix, shape (n, d)."""
        return self.fit(data).transform(data)
