"""The typed container every loader returns."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .._errors import FairflipError, check_binary


class DataWarning(UserWarning):
    """A table was read, but something in it is probably not what its author meant (the message says what)."""


MISSING_GROUP = ("error", "majority")


@dataclass(frozen=True)
class Provenance:
    """Where a dataset comes from and under which terms it may be used."""

    source: str
    url: str
    licence: str
    citation: str = ""
    sha256: str = ""


@dataclass(frozen=True)
class Dataset:
    """A binary-label fairness dataset with one minority group.

    Attributes:
        name: short identifier (``"compas"``, ``"adult"``, ...).
        features: shape (n, p) DataFrame of the firm's input columns; the sensitive columns are *not* in it,
            the group enters the firm only through ``a`` (see :class:`fairflip.features.FeaturePreparer`).
        y: shape (n,), int64 in {0, 1}; 1 is the favourable / positive label of the source.
        a: shape (n,), int64 in {0, 1}; 1 marks the minority, 0 the majority.
        group: shape (n,), str; the full group of each row (e.g. ``"race=Black&sex=Female"``), used for
            multi-group metrics; rows outside the minority/majority pair may carry any other value.
        numeric: names of the numeric columns of ``features``.
        categorical: names of the categorical columns of ``features``.
        minority: column -> value conditions whose conjunction defines the minority.
        label_name: the source column of ``y``.
        provenance: origin and licence.
        counterfactual: for synthetic data only, the exact group counterfactual x_{A<-0} of every row
            (shape (n, p) DataFrame, same columns as ``features``), else None.
        y_counterfactual_prob: for synthetic data only, P0(y = 1 | x_{A<-0}) of every row, shape (n,), else None.
    """

    name: str
    features: pd.DataFrame
    y: np.ndarray
    a: np.ndarray
    group: np.ndarray
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    minority: dict = field(default_factory=dict)
    label_name: str = "y"
    provenance: Provenance = field(default_factory=lambda: Provenance("", "", ""))
    counterfactual: pd.DataFrame | None = None
    y_counterfactual_prob: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.features)
        object.__setattr__(self, "y", check_binary(f"label '{self.label_name}'", self.y))
        object.__setattr__(self, "a", check_binary("minority indicator", self.a))
        object.__setattr__(self, "group", np.asarray(self.group).astype(str))
        for arr_name in ("y", "a", "group"):
            if len(getattr(self, arr_name)) != n:
                raise FairflipError(f"{arr_name} has {len(getattr(self, arr_name))} rows, features have {n}")
        unknown = set(self.numeric) | set(self.categorical)
        unknown -= set(self.features.columns)
        if unknown:
            raise FairflipError(f"feature type lists name columns not in features: {sorted(unknown)}")
        missing = set(self.features.columns) - set(self.numeric) - set(self.categorical)
        if missing:
            raise FairflipError(f"columns {sorted(missing)} are neither numeric nor categorical")
        if self.counterfactual is not None and self.counterfactual.shape != self.features.shape:
            raise FairflipError("counterfactual must have the same shape as features")
        if self.a.sum() == 0:
            raise FairflipError(f"dataset '{self.name}' has no minority rows ({self.minority})")
        if self.a.sum() == n:
            raise FairflipError(f"dataset '{self.name}' has no majority rows")

    def __len__(self) -> int:
        return len(self.features)

    def subset(self, rows: np.ndarray) -> "Dataset":
        """Return the rows ``rows`` (integer indices or boolean mask of shape (n,)) as a new Dataset."""
        idx = np.arange(len(self))[np.asarray(rows)]
        cf = None if self.counterfactual is None else self.counterfactual.iloc[idx].reset_index(drop=True)
        ycf = None if self.y_counterfactual_prob is None else self.y_counterfactual_prob[idx]
        return Dataset(
            name=self.name,
            features=self.features.iloc[idx].reset_index(drop=True),
            y=self.y[idx],
            a=self.a[idx],
            group=self.group[idx],
            numeric=self.numeric,
            categorical=self.categorical,
            minority=dict(self.minority),
            label_name=self.label_name,
            provenance=self.provenance,
            counterfactual=cf,
            y_counterfactual_prob=ycf,
        )

    def to_frame(self) -> pd.DataFrame:
        """Return one DataFrame with the features plus ``label``, ``minority`` and ``group`` columns."""
        out = self.features.copy()
        out["label"] = self.y
        out["minority"] = self.a
        out["group"] = self.group
        return out

    def summary(self) -> dict:
        """Return sizes and base rates: rows, features, minority share, P(y=1) per group."""
        return {
            "name": self.name,
            "rows": len(self),
            "features": self.features.shape[1],
            "minority": self.minority,
            "minority_share": float(self.a.mean()),
            "base_rate_minority": float(self.y[self.a == 1].mean()),
            "base_rate_majority": float(self.y[self.a == 0].mean()),
            "source": self.provenance.source,
            "licence": self.provenance.licence,
        }


def group_labels(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Return the joint group of each row as ``"col=value&col=value"`` strings, shape (n,)."""
    parts = [frame[c].astype(str).radd(f"{c}=") for c in columns]
    out = parts[0]
    for p in parts[1:]:
        out = out + "&" + p
    return out.to_numpy(dtype=str)


def _missing(col: pd.Series) -> np.ndarray:
    """Shape (n,) bool: missing values of a column (NaN or None, or a blank string)."""
    miss = col.isna().to_numpy()
    if col.dtype.kind not in "iufb":
        blank = col.map(lambda v: isinstance(v, str) and not v.strip()).to_numpy(dtype=bool)
        miss = miss | blank
    return miss


def minority_mask(frame: pd.DataFrame, minority: dict, *, missing_group: str = "error") -> np.ndarray:
    """Return shape (n,) int64: 1 where every ``column == value`` condition of ``minority`` holds.

    Values are compared as strings after stripping, so ``1``, ``"1"`` and ``" 1"`` all match a column holding 1.

    Args:
        frame: shape (n, q) table.
        minority: column -> value conditions.
        missing_group: a row whose group column is missing (NaN or blank): ``"error"`` raises (default),
            ``"majority"`` counts it as majority with a :class:`DataWarning`.
    """
    if not minority:
        raise FairflipError("minority must name at least one column=value condition")
    if missing_group not in MISSING_GROUP:
        raise FairflipError(f"missing_group must be one of {', '.join(MISSING_GROUP)}, got {missing_group!r}")
    mask = np.ones(len(frame), dtype=bool)
    for col, value in minority.items():
        if col not in frame.columns:
            raise FairflipError(f"group column '{col}' not found; columns are {list(frame.columns)[:20]}")
        if isinstance(frame[col], pd.DataFrame):
            raise FairflipError(f"group column '{col}' appears more than once in the table")
        miss = _missing(frame[col])
        if miss.any():
            rows = np.flatnonzero(miss)
            where = ", ".join(map(str, rows[:5])) + (", ..." if len(rows) > 5 else "")
            text = f"group column '{col}' has {len(rows)} missing value(s) (rows {where})"
            if missing_group == "error":
                raise FairflipError(f"{text}; fill or drop those rows")
            warnings.warn(f"{text}; they are counted as majority", DataWarning, stacklevel=2)
        col_str = frame[col].astype(str).str.strip()
        val = str(value).strip()
        hits = col_str == val
        if not hits.any() and frame[col].dtype.kind in "iuf":
            try:
                hits = frame[col] == float(val)
            except ValueError:
                pass
        if not np.any(hits):
            seen = sorted(col_str.unique().tolist())[:10]
            raise FairflipError(f"minority value {value!r} not found in column '{col}' (values: {seen})")
        mask &= np.asarray(hits, dtype=bool) & ~miss
    return mask.astype(np.int64)


def _stray_strings(col: pd.Series) -> tuple[int, list[str], int] | None:
    """For a text column that is numbers but for a few entries: (number of stray entries, a few of them, row of
    the first); None when the column is not of that kind."""
    values = col.dropna()
    if len(values) < 10:
        return None
    text = values.astype(str).str.strip()
    as_num = pd.to_numeric(text, errors="coerce")
    bad = as_num.isna() & text.ne("")
    n_bad = int(bad.sum())
    if n_bad == 0 or n_bad > max(3, 0.01 * len(values)) or as_num.nunique() <= 10:
        return None
    first = int(np.flatnonzero(bad.to_numpy())[0])
    return n_bad, sorted(text[bad].unique().tolist())[:3], int(values.index[first]) if len(values.index) else first


def from_frame(
    frame: pd.DataFrame,
    *,
    name: str,
    label: str,
    minority: dict,
    features: list[str] | None = None,
    categorical: list[str] | None = None,
    positive: object = None,
    provenance: Provenance | None = None,
    missing_group: str = "error",
) -> Dataset:
    """Build a :class:`Dataset` from one table.

    Args:
        frame: shape (n, q) raw table holding the label, the group columns and the features.
        name: dataset name.
        label: the label column; it must hold exactly two values (0/1, or any two values with ``positive``).
        minority: column -> value conditions whose conjunction is the minority (intersectional when several).
            Rows outside it form the majority. Only these columns are removed from the features.
        features: feature columns (default: every column except the label and the minority columns).
        categorical: columns to one-hot encode (default: the non-numeric ones among ``features``).
        positive: the label value that maps to y = 1 (needed when the label is not already 0/1).
        provenance: origin and licence.
        missing_group: a missing value in a group column: ``"error"`` (default) or ``"majority"`` (counted as
            majority, with a :class:`DataWarning`).

    Raises:
        FairflipError: naming the column: duplicated column names, a missing or non-binary label, missing group
            values (by default), NaN or infinite values in a numeric feature.

    Warns:
        DataWarning: a text column holds numbers except for a few stray entries (it is then one-hot encoded as
            a categorical, probably not what was meant).

    Returns:
        the Dataset, rows in the order of ``frame``.
    """
    if frame.columns.duplicated().any():
        dups = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        raise FairflipError(f"duplicated column name(s) {dups}; every column needs its own name")
    if label not in frame.columns:
        raise FairflipError(f"label column '{label}' not found; columns are {list(frame.columns)[:20]}")
    group_cols = list(minority)
    a = minority_mask(frame, minority, missing_group=missing_group)
    raw_y = frame[label]
    if raw_y.isna().any():
        raise FairflipError(f"label column '{label}' has {int(raw_y.isna().sum())} missing value(s)")
    if positive is not None:
        if not (raw_y.astype(str).str.strip() == str(positive).strip()).any():
            raise FairflipError(f"positive label {positive!r} not found in column '{label}'")
        y = (raw_y.astype(str).str.strip() == str(positive).strip()).to_numpy(dtype=np.int64)
    else:
        values = pd.unique(raw_y)
        if len(values) > 2:
            raise FairflipError(f"label column '{label}' is not binary: {len(values)} distinct values "
                                f"{values[:5].tolist()}")
        y = check_binary(f"label '{label}'", raw_y.to_numpy())
    if features is None:
        features = [c for c in frame.columns if c != label and c not in group_cols]
    else:
        absent = [c for c in features if c not in frame.columns]
        if absent:
            raise FairflipError(f"feature column(s) {absent} not found")
        leaked = [c for c in features if c == label]
        if leaked:
            raise FairflipError(f"the label column '{label}' cannot also be a feature")
    if not features:
        raise FairflipError("no feature columns left after removing the label and group columns")
    feats = frame[list(features)].reset_index(drop=True)
    if len(set(features)) != len(features):
        repeated = sorted({c for c in features if features.count(c) > 1})
        raise FairflipError(f"features name a column more than once: {repeated}")
    if categorical is None:
        categorical = [c for c in feats.columns if feats[c].dtype.kind not in "iufb"]
        for c in categorical:
            stray = _stray_strings(feats[c])
            if stray is not None:
                n_bad, examples, row = stray
                warnings.warn(f"feature '{c}' holds numbers except for {n_bad} entr{'y' if n_bad == 1 else 'ies'} "
                              f"such as {examples} (first in row {row}); it is treated as a categorical with "
                              f"{feats[c].nunique()} levels. Fix those entries, or name the column as categorical "
                              "to keep it so", DataWarning, stacklevel=2)
    numeric = [c for c in feats.columns if c not in categorical]
    for c in numeric:
        col = pd.to_numeric(feats[c], errors="coerce")
        if col.isna().any():
            raise FairflipError(f"numeric feature '{c}' has {int(col.isna().sum())} NaN or non-numeric value(s)")
        col = col.astype(np.float64)
        if not np.isfinite(col.to_numpy()).all():
            raise FairflipError(f"numeric feature '{c}' has {int((~np.isfinite(col.to_numpy())).sum())} infinite "
                                "value(s)")
        feats[c] = col
    for c in categorical:
        feats[c] = feats[c].astype(str).str.strip()
    return Dataset(
        name=name,
        features=feats,
        y=y,
        a=a,
        group=group_labels(frame.reset_index(drop=True), group_cols),
        numeric=tuple(numeric),
        categorical=tuple(categorical),
        minority=dict(minority),
        label_name=label,
        provenance=provenance or Provenance(source="user table", url="", licence="user's"),
    )
