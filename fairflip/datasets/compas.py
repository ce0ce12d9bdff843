"""COMPAS two-year recidivism (ProPublica), shipped with fairflip."""

from __future__ import annotations

import pandas as pd

from ._base import Dataset, Provenance, from_frame
from ._files import EMBEDDED_SHA256, embedded_path

PROVENANCE = Provenance(
    source="ProPublica compas-analysis (compas-scores-two-years.csv)",
    url="https://raw.githubusercontent.com/propublica/compas-analysis/master/compas-scores-two-years.csv",
    licence="no licence file; widely redistributed for research",
    citation="Angwin, Larson, Mattu, Kirchner. Machine Bias. ProPublica, 2016.",
    sha256=EMBEDDED_SHA256["compas-scores-two-years.csv.gz"],
)

FEATURES = ["sex", "age", "age_cat", "c_charge_degree", "priors_count", "juv_fel_count", "juv_misd_count", "juv_other_count"]


def load_compas(*, minority: dict | None = None) -> Dataset:
    """Load COMPAS with ProPublica's standard filter.

    Preprocessing (deterministic): keep rows with -30 <= days_b_screening_arrest <= 30, is_recid != -1,
    c_charge_degree != 'O' and score_text != 'N/A' (6,172 rows), then race in {African-American, Caucasian}
    (5,278 rows). Label y = two_year_recid (1 = reoffended within two years; note this is the *unfavourable*
    outcome). Features: sex, age, age_cat, c_charge_degree, priors_count and the three juvenile counts; the
    COMPAS score itself is not a feature.

    Args:
        minority: conditions defining the minority, default ``{"race": "African-American"}`` (the group the
            ProPublica analysis found disadvantaged). ``{"race": "African-American", "sex": "Female"}`` gives
            an intersectional minority; the columns named here leave the features.

    Returns:
        Dataset of shape (5278, 8) features.
    """
    raw = pd.read_csv(embedded_path("compas-scores-two-years.csv.gz"))
    keep = (
        raw["days_b_screening_arrest"].between(-30, 30)
        & (raw["is_recid"] != -1)
        & (raw["c_charge_degree"] != "O")
        & (raw["score_text"] != "N/A")
        & raw["score_text"].notna()
        & raw["race"].isin(["African-American", "Caucasian"])
    )
    frame = raw.loc[keep, FEATURES + ["race", "two_year_recid"]].reset_index(drop=True)
    minority = minority or {"race": "African-American"}
    feats = [c for c in FEATURES if c not in minority]
    return from_frame(
        frame,
        name="compas",
        label="two_year_recid",
        minority=minority,
        features=feats,
        categorical=[c for c in ("sex", "age_cat", "c_charge_degree") if c in feats],
        provenance=PROVENANCE,
    )
