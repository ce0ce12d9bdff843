"""UCI Adult (census income), shipped with fairflip."""

from __future__ import annotations

import pandas as pd

from ._base import Dataset, Provenance, from_frame
from ._files import EMBEDDED_SHA256, embedded_path

PROVENANCE = Provenance(
    source="UCI Machine Learning Repository: Adult (Becker and Kohavi, 1996)",
    url="https://archive.ics.uci.edu/dataset/2/adult",
    licence="CC BY 4.0",
    citation="Becker, B. and Kohavi, R. (1996). Adult. UCI Machine Learning Repository. doi:10.24432/C5XW20",
    sha256=EMBEDDED_SHA256["adult.data.gz"],
)

COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education_num", "marital_status", "occupation",
    "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week", "native_country", "income",
]
CATEGORICAL = ["workclass", "marital_status", "occupation", "relationship", "race", "sex", "native_country"]


def load_adult(*, minority: dict | None = None) -> Dataset:
    """Load Adult, train and test files concatenated (48,842 rows, train rows first).

    Preprocessing (deterministic): the test file's leading comment line is skipped and the trailing '.' of its
    labels removed; surrounding spaces are stripped; '?' (missing) is kept as its own category "?";
    ``fnlwgt`` (a sampling weight, not a personal attribute) and ``education`` (a duplicate of
    ``education_num``) are dropped. Label y = 1 for income >50K.

    Args:
        minority: conditions defining the minority, default ``{"sex": "Female"}``; e.g. ``{"race": "Black"}``
            or ``{"race": "Black", "sex": "Female"}``. The columns named here leave the features.

    Returns:
        Dataset of shape (48842, 11) features with the default minority.
    """
    parts = []
    for fname, skip in (("adult.data.gz", 0), ("adult.test.gz", 1)):
        part = pd.read_csv(embedded_path(fname), header=None, names=COLUMNS, skiprows=skip,
                           skipinitialspace=True, dtype={c: str for c in CATEGORICAL + ["income"]})
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True).dropna(subset=["income"])
    frame["income"] = frame["income"].str.strip().str.rstrip(".")
    minority = minority or {"sex": "Female"}
    feats = [c for c in COLUMNS if c not in ("fnlwgt", "education", "income") and c not in minority]
    return from_frame(
        frame,
        name="adult",
        label="income",
        minority=minority,
        features=feats,
        categorical=[c for c in CATEGORICAL if c in feats],
        positive=">50K",
        provenance=PROVENANCE,
    )
