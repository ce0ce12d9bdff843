"""Metrics against fairlearn (to 1e-12 on a grid of random cases) and against hand-computed small cases."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equal_opportunity_difference,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)

from fairflip._errors import FairflipError
from fairflip.metrics import (
    all_metrics,
    demographic_parity,
    eqod,
    eqod_worst,
    equal_opportunity,
    error_rate,
    fairness,
    fpr_gap,
    group_rates,
    success,
    tpr_gap,
)


def random_case(seed: int, n: int, minority_share: float):
    """Labels, predictions correlated with them, and a group indicator; every (group, label) cell non-empty."""
    rng = np.random.default_rng(seed)
    a = (rng.random(n) < minority_share).astype(np.int64)
    y = (rng.random(n) < 0.2 + 0.5 * a * rng.random()).astype(np.int64)
    a[:4], y[:4] = [0, 0, 1, 1], [0, 1, 0, 1]
    flip = rng.random(n) < rng.uniform(0.05, 0.5)
    y_pred = np.where(flip, 1 - y, y)
    return y, y_pred, a


GRID = list(itertools.product(range(4), (12, 150, 3000), (0.03, 0.3, 0.5, 0.9)))


@pytest.mark.parametrize("seed,n,share", GRID)
def test_metrics_equal_fairlearn(seed, n, share):
    y, p, a = random_case(seed, n, share)
    kw = dict(sensitive_features=a)
    assert eqod(y, p, a) == pytest.approx(equalized_odds_difference(y, p, agg="mean", **kw), abs=1e-12)
    assert eqod_worst(y, p, a) == pytest.approx(equalized_odds_difference(y, p, agg="worst_case", **kw), abs=1e-12)
    assert demographic_parity(y, p, a) == pytest.approx(demographic_parity_difference(y, p, **kw), abs=1e-12)
    assert equal_opportunity(y, p, a) == pytest.approx(equal_opportunity_difference(y, p, **kw), abs=1e-12)

    # Independent composition from per-group rates.
    frame = MetricFrame(metrics={"tpr": true_positive_rate, "fpr": false_positive_rate, "sel": selection_rate},
                        y_true=y, y_pred=p, sensitive_features=a).by_group
    tg = abs(frame.loc[1, "tpr"] - frame.loc[0, "tpr"])
    fg = abs(frame.loc[1, "fpr"] - frame.loc[0, "fpr"])
    assert tpr_gap(y, p, a) == pytest.approx(tg, abs=1e-12)
    assert fpr_gap(y, p, a) == pytest.approx(fg, abs=1e-12)
    m = all_metrics(y, p, a)
    assert m["eqod"] == pytest.approx(0.5 * (tg + fg), abs=1e-12)
    assert m["eqod_worst"] == pytest.approx(max(tg, fg), abs=1e-12)
    assert m["dp"] == pytest.approx(abs(frame.loc[1, "sel"] - frame.loc[0, "sel"]), abs=1e-12)
    assert m["eqopp"] == pytest.approx(tg, abs=1e-12)
    assert m["error"] == pytest.approx(np.mean(y != p), abs=1e-15)
    plain = {"eqod": eqod, "eqod-worst": eqod_worst, "dp": demographic_parity, "eqopp": equal_opportunity}
    for name, fn in plain.items():  # the registered objectives' gap structures equal the plain metrics
        assert fairness(name, y, p, a) == pytest.approx(fn(y, p, a), abs=1e-15)


def test_hand_computed_small_case():
    # minority rows 0-4: y = 1 1 0 0 0, pred = 1 0 1 0 0 -> TPR 1/2, FPR 1/3, sel 2/5, error 2/5
    # majority rows 5-9: y = 1 1 1 0 0, pred = 1 1 1 1 0 -> TPR 1,   FPR 1/2, sel 4/5, error 1/5
    y = np.array([1, 1, 0, 0, 0, 1, 1, 1, 0, 0])
    p = np.array([1, 0, 1, 0, 0, 1, 1, 1, 1, 0])
    a = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0])
    r = group_rates(y, p, a)
    assert (r["tpr_1"], r["tpr_0"], r["fpr_1"], r["fpr_0"]) == pytest.approx((0.5, 1.0, 1 / 3, 0.5))
    assert (r["sel_1"], r["sel_0"]) == pytest.approx((0.4, 0.8))
    m = all_metrics(y, p, a)
    assert m["tpr_gap"] == pytest.approx(0.5)
    assert m["fpr_gap"] == pytest.approx(1 / 6)
    assert m["eqod"] == pytest.approx(0.5 * (0.5 + 1 / 6))
    assert m["eqod_worst"] == pytest.approx(0.5)
    assert m["dp"] == pytest.approx(0.4)
    assert m["eqopp"] == pytest.approx(0.5)
    assert m["error"] == pytest.approx(0.3)
    assert m["error_minority"] == pytest.approx(0.4)
    assert m["error_majority"] == pytest.approx(0.2)
    assert "success" not in m


def test_success_hand_computed():
    p = np.array([1, 0, 1, 1, 0, 1])
    p_cf = np.array([1, 1, 1, 0, 1, 0])
    a = np.array([1, 1, 1, 1, 0, 0])
    # minority rows 0-3: unchanged at rows 0 and 2 -> 2/4; majority rows are ignored
    assert success(p, p_cf, a) == pytest.approx(0.5)
    assert success(p, p, a) == 1.0
    y = np.array([1, 0, 1, 0, 1, 0])
    assert all_metrics(y, p, a, y_pred_counterfactual=p_cf)["success"] == pytest.approx(0.5)


@pytest.mark.parametrize("cell", [(1, 1), (1, 0), (0, 1), (0, 0)])
@pytest.mark.parametrize("fn,labels", [(eqod, (0, 1)), (eqod_worst, (0, 1)), (all_metrics, (0, 1)),
                                       (group_rates, (0, 1)), (tpr_gap, (1,)), (equal_opportunity, (1,)),
                                       (fpr_gap, (0,))])
def test_empty_cell_raises_not_nan(fn, labels, cell):
    g, lab = cell
    y = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    a = np.array([0, 0, 1, 1, 0, 0, 1, 1])
    p = np.array([0, 1, 1, 1, 0, 0, 1, 0])
    keep = ~((a == g) & (y == lab))
    if lab not in labels:  # a cell the metric does not use: it stays a finite number
        assert np.isfinite(fn(y[keep], p[keep], a[keep]))
        return
    group = "minority" if g == 1 else "majority"
    with pytest.raises(FairflipError, match=f"empty cell.*{group} and y = {lab}"):
        fn(y[keep], p[keep], a[keep])


def test_dp_and_eqopp_need_only_their_own_cells():
    # No minority negatives: the FPR gap is undefined, but DP and the TPR gap are not.
    y = np.array([1, 1, 1, 0, 1, 0])
    p = np.array([1, 0, 1, 0, 0, 1])
    a = np.array([1, 1, 1, 0, 0, 0])
    assert demographic_parity(y, p, a) == pytest.approx(abs(2 / 3 - 1 / 3))
    assert equal_opportunity(y, p, a) == pytest.approx(abs(2 / 3 - 0.0))
    assert tpr_gap(y, p, a) == pytest.approx(2 / 3)
    with pytest.raises(FairflipError, match="empty cell"):
        fpr_gap(y, p, a)
    with pytest.raises(FairflipError, match="empty cell"):
        eqod(y, p, a)
    # A whole group missing leaves DP undefined as well.
    with pytest.raises(FairflipError, match="empty cell"):
        demographic_parity(y, p, np.zeros(6, dtype=np.int64))
    with pytest.raises(FairflipError, match="no minority rows"):
        success(p, p, np.zeros(6, dtype=np.int64))


@pytest.mark.parametrize("bad", [
    dict(y=[0, 1, 2, 0]), dict(p=[0, 1, np.nan, 0]), dict(a=[0, 1, 1]), dict(y=[[0, 1, 1, 0]]),
    dict(a=["x", "y", "x", "y"]),
])
def test_bad_inputs_raise(bad):
    args = {"y": [0, 1, 1, 0], "p": [0, 1, 0, 0], "a": [0, 0, 1, 1]}
    args.update(bad)
    with pytest.raises(FairflipError):
        all_metrics(args["y"], args["p"], args["a"])
    with pytest.raises(FairflipError):
        eqod(args["y"], args["p"], args["a"])


def test_error_rate_and_success_check_lengths():
    with pytest.raises(FairflipError):
        error_rate([0, 1], [0, 1, 1])
    with pytest.raises(FairflipError):
        error_rate([], [])
    with pytest.raises(FairflipError, match="length"):
        success([0, 1, 1], [0, 1], [1, 1, 1])
    with pytest.raises(FairflipError, match="unknown objective"):
        fairness("accuracy", [0, 1], [0, 1], [0, 1])


def test_bool_inputs_accepted():
    y, p, a = random_case(7, 60, 0.4)
    assert eqod(y.astype(bool), p.astype(bool), a.astype(bool)) == eqod(y, p, a)
    assert eqod(y.astype(float), p, a) == eqod(y, p, a)
