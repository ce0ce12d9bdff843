"""UCI Statlog German credit, shipped with fairflip."""

from __future__ import annotations

import json

import pandas as pd

from ._base import Dataset, Provenance, from_frame
from ._files import EMBEDDED_SHA256, embedded_path

PROVENANCE = Provenance(
    source="UCI Machine Learning Repository: Statlog (German Credit Data) (Hofmann, 1994)",
    url="https://archive.ics.uci.edu/dataset/144/statlog+german+credit+data",
    licence="CC BY 4.0",
    citation="Hofmann, H. (1994). Statlog (German Credit Data). UCI Machine Learning Repository. doi:10.24432/C5NC77",
    sha256=EMBEDDED_SHA256["german.data.gz"],
)

COLUMNS = [
    "status", "duration", "credit_history", "purpose", "credit_amount", "savings", "present_employment",
    "installment_rate", "status_sex", "other_debtors", "residence_since", "property", "age",
    "installment_plans", "housing", "number_credits", "job", "people_liable", "telephone", "foreign_worker",
    "credit",
]
# A91 male divorced/separated, A92 female div/sep/married, A93 male single, A94 male married/widowed, A95 female single.
_SEX = {"A91": "male", "A92": "female", "A93": "male", "A94": "male", "A95": "female"}


def load_german(*, minority: dict | None = None) -> Dataset:
    """Load German credit (1,000 rows).

    Preprocessing (deterministic): the A-codes are decoded with the publisher's value maps; ``sex`` is derived
    from ``status_sex`` (A92, A95 female), which then leaves the features since it encodes sex;
    ``age_group`` is "<25" or ">=25". Label y = 1 for good credit (code 1), 0 for bad (code 2).

    Args:
        minority: default ``{"sex": "female"}``; ``{"age_group": "<25"}`` is the other usual choice.

    Returns:
        Dataset of shape (1000, 19) features with the default minority.
    """
    raw = pd.read_csv(embedded_path("german.data.gz"), sep=" ", header=None, names=COLUMNS, dtype=str)
    maps = json.loads(embedded_path("german_values_maps.json").read_text())
    frame = raw.copy()
    frame["sex"] = raw["status_sex"].map(_SEX)
    for col, mapping in maps.items():
        if col in frame.columns and col not in ("credit", "status_sex"):
            frame[col] = raw[col].map({k: str(v).strip() for k, v in mapping.items()}).fillna(raw[col])
    numeric = ["duration", "credit_amount", "installment_rate", "residence_since", "age", "number_credits", "people_liable"]
    for col in numeric:
        frame[col] = pd.to_numeric(raw[col])
    frame["age_group"] = frame["age"].map(lambda v: "<25" if v < 25 else ">=25")
    frame["credit"] = (raw["credit"] == "1").astype(int)
    minority = minority or {"sex": "female"}
    feats = [c for c in COLUMNS if c not in ("credit", "status_sex") and c not in minority]
    feats += [c for c in ("sex",) if c not in minority]
    return from_frame(frame, name="german", label="credit", minority=minority, features=feats, provenance=PROVENANCE)
