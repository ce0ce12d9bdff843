"""Any user table (CSV or Parquet) as a :class:`Dataset`."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from .._errors import FairflipError
from ._base import Dataset, Provenance, from_frame


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV (optionally gzip-compressed) or Parquet file into a DataFrame, rows in file order."""
    p = Path(path)
    if not p.exists():
        raise FairflipError(f"file not found: {p}")
    suffixes = "".join(p.suffixes).lower()
    try:
        if suffixes.endswith((".parquet", ".pq")):
            return pd.read_parquet(p)
        return pd.read_csv(p)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise FairflipError(f"cannot read table {p}: {exc}") from exc


def load_table(
    path: str | os.PathLike,
    *,
    label: str,
    minority: dict,
    features: list[str] | None = None,
    categorical: list[str] | None = None,
    positive: object = None,
    name: str | None = None,
) -> Dataset:
    """Load a user table as a Dataset.

    Args:
        path: CSV or Parquet file, one row per user.
        label: binary label column.
        minority: column -> value conditions defining the minority; several columns give an intersectional
            minority (e.g. ``{"race": "Black", "sex": "Female"}``).
        features: feature columns (default: all but the label and the minority columns).
        categorical: columns to one-hot encode (default: the non-numeric ones).
        positive: label value mapped to 1 when the label is not 0/1.
        name: dataset name (default: the file's stem).

    Returns:
        Dataset whose row i is data row i of the file.
    """
    frame = read_table(path)
    prov = Provenance(source=f"user table {Path(path).name}", url="", licence="user's")
    return from_frame(
        frame, name=name or Path(path).name.split(".")[0], label=label, minority=minority,
        features=features, categorical=categorical, positive=positive, provenance=prov,
    )
