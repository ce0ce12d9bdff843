"""Synthetic data from a known structural causal model, with the exact group counterfactual of every row.

The model (all draws from one ``numpy.random.Generator`` seeded by ``seed``)::

    a ~ Bernoulli(minority_share)                       # 1 = minority
    u ~ N(0, I_d)                                        # exogenous noise
    x = u + a * shift                                    # the group shifts the features
    y ~ Bernoulli(sigmoid(w . x + b - a * label_bias))   # historical label bias against the minority

The group counterfactual sets a to 0 and keeps the noise: x_{A<-0} = u, and the label the row would most likely
have had as a majority member follows the majority's mechanism, P0(y = 1 | x_{A<-0}) = sigmoid(w . u + b).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._errors import FairflipError, check_fraction
from ._base import Dataset, Provenance

PROVENANCE = Provenance(
    source="fairflip synthetic structural causal model", url="", licence="generated data, no restrictions",
    citation="Ben-Dov, Samadi, Sanyal, Tifrea. Fairness for the People, by the People: Minority Collective "
             "Action. arXiv:2508.15374, 2025.",
)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _vector(name: str, value, d: int, default: float) -> np.ndarray:
    if value is None:
        return np.full(d, default, dtype=np.float64)
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(d, float(arr))
    if arr.shape != (d,):
        raise FairflipError(f"{name} must be a scalar or have length d={d}, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise FairflipError(f"{name} must be finite")
    return arr


def make_causal(
    n: int = 2000,
    d: int = 2,
    *,
    minority_share: float = 0.3,
    shift=None,
    label_bias: float = 1.0,
    weights=None,
    bias: float = 0.0,
    seed: int = 0,
    name: str = "synthetic",
) -> Dataset:
    """Sample n rows from the module's structural causal model.

    Args:
        n: number of rows (>= 4); a sample with no minority or no majority row raises FairflipError.
        d: number of features (>= 1), named ``x0`` .. ``x{d-1}``.
        minority_share: P(a = 1), in (0, 1).
        shift: the minority's feature shift, scalar or shape (d,); default -0.5 in every coordinate.
        label_bias: how much the minority's label log-odds are lowered (>= 0 is bias against the minority).
        weights: w, scalar or shape (d,); default 1 in every coordinate.
        bias: intercept b.
        seed: seed of the numpy Generator; the same arguments always give the same data.
        name: dataset name.

    Returns:
        Dataset with ``features`` of shape (n, d), float64; ``minority == {"group": "minority"}`` (the group is
        not a feature; ``group`` holds "group=minority" / "group=majority"); ``counterfactual`` of shape (n, d)
        holding u = x_{A<-0}; ``y_counterfactual_prob`` of shape (n,) holding sigmoid(w . u + b).
    """
    for arg, value, low in (("n", n, 4), ("d", d, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise FairflipError(f"{arg} must be an integer >= {low}, got {value!r}")
    share = check_fraction("minority_share", minority_share)
    if share >= 1:
        raise FairflipError("minority_share must be below 1")
    for arg, value in (("label_bias", label_bias), ("bias", bias)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not np.isfinite(value):
            raise FairflipError(f"{arg} must be a finite number, got {value!r}")
    shift_v = _vector("shift", shift, d, -0.5)
    w = _vector("weights", weights, d, 1.0)

    rng = np.random.default_rng(seed)
    a = (rng.random(n) < share).astype(np.int64)
    u = rng.standard_normal((n, d))
    x = u + a[:, None] * shift_v
    p = _sigmoid(x @ w + bias - a * float(label_bias))
    y = (rng.random(n) < p).astype(np.int64)

    cols = [f"x{j}" for j in range(d)]
    return Dataset(
        name=name,
        features=pd.DataFrame(x, columns=cols),
        y=y,
        a=a,
        group=np.where(a == 1, "group=minority", "group=majority"),
        numeric=tuple(cols),
        categorical=(),
        minority={"group": "minority"},
        label_name="y",
        provenance=PROVENANCE,
        counterfactual=pd.DataFrame(u, columns=cols),
        y_counterfactual_prob=_sigmoid(u @ w + bias),
    )


# Fixed parameters of the 2-D toy; a logistic-regression firm with the group as an extra feature, trained on
# n = 1000 rows, shows on large held-out samples (5 seeds) an equalized-odds gap of about 0.15 (mean of the TPR
# and FPR gaps; about 0.19 for their maximum) at an error rate of about 0.12.
TOY_2D = {"minority_share": 0.3, "shift": (-1.0, 0.0), "label_bias": 1.5, "weights": (3.0, 2.0), "bias": 0.0}


def make_toy_2d(n: int = 1000, *, seed: int = 0) -> Dataset:
    """A 2-D example like the paper's toy: :func:`make_causal` with the fixed parameters :data:`TOY_2D`.

    The minority (30%) is shifted by -1 along x0 and its labels carry a log-odds penalty of 1.5, with
    w = (3, 2), b = 0. A logistic-regression firm that sees the group indicator as a feature has an
    equalized-odds gap of about 0.15 and an error of about 0.12 on fresh samples.

    Args:
        n: number of rows.
        seed: seed of the numpy Generator.

    Returns:
        Dataset named "toy2d" with features of shape (n, 2) and exact counterfactuals (see :func:`make_causal`).
    """
    return make_causal(n, 2, seed=seed, name="toy2d", **TOY_2D)
