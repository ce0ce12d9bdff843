"""Multi-group metrics against fairlearn and brute force; intersectional minorities through loaders and methods."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest
from fairlearn.metrics import (
    MetricFrame, count, demographic_parity_difference, equal_opportunity_difference, equalized_odds_difference,
    false_positive_rate, selection_rate, true_positive_rate,
)

from fairflip._errors import FairflipError
from fairflip.metrics import all_metrics, eqod
from fairflip.metrics_groups import (
    eligible_groups, group_table, intersectional_metrics, minority_indicator, pairwise_gaps, worst_pairwise_gap,
)


def _random_case(seed, n_groups, n=400):
    rng = np.random.default_rng(seed)
    group = rng.choice([f"g{i}" for i in range(n_groups)], size=n)
    y = rng.integers(0, 2, n)
    # group-dependent prediction rates so the gaps are not all near zero
    shift = {f"g{i}": 0.15 * i for i in range(n_groups)}
    p = rng.random(n) < np.clip(0.2 + 0.5 * y + np.vectorize(shift.get)(group) - 0.3, 0.02, 0.98)
    return y, p.astype(np.int64), group


CASES = [(seed, k) for seed in range(4) for k in (2, 3, 5, 8)]


@pytest.mark.parametrize("seed, k", CASES)
def test_worst_pairwise_gaps_match_fairlearn_ranges(seed, k):
    y, p, g = _random_case(seed, k)
    assert worst_pairwise_gap(y, p, g, metric="eqod-worst") == pytest.approx(
        equalized_odds_difference(y, p, sensitive_features=g), abs=1e-12)
    assert worst_pairwise_gap(y, p, g, metric="dp") == pytest.approx(
        demographic_parity_difference(y, p, sensitive_features=g), abs=1e-12)
    assert worst_pairwise_gap(y, p, g, metric="eqopp") == pytest.approx(
        equal_opportunity_difference(y, p, sensitive_features=g), abs=1e-12)
    mf = MetricFrame(metrics={"tpr": true_positive_rate, "fpr": false_positive_rate}, y_true=y, y_pred=p,
                     sensitive_features=g)
    assert worst_pairwise_gap(y, p, g, metric="tpr-gap") == pytest.approx(mf.difference()["tpr"], abs=1e-12)
    assert worst_pairwise_gap(y, p, g, metric="fpr-gap") == pytest.approx(mf.difference()["fpr"], abs=1e-12)


@pytest.mark.parametrize("seed, k", CASES)
def test_pairwise_eqod_is_brute_force_over_pairs_and_below_fairlearn_mean(seed, k):
    y, p, g = _random_case(seed, k)
    brute = 0.0
    for g1, g2 in combinations(np.unique(g), 2):
        rows = (g == g1) | (g == g2)
        brute = max(brute, eqod(y[rows], p[rows], (g[rows] == g1).astype(np.int64)))
    worst = worst_pairwise_gap(y, p, g, metric="eqod")
    assert worst == pytest.approx(brute, abs=1e-12)
    fl_mean = equalized_odds_difference(y, p, sensitive_features=g, agg="mean")
    assert worst <= fl_mean + 1e-12
    if k == 2:
        assert worst == pytest.approx(fl_mean, abs=1e-12)


def test_group_table_matches_metricframe():
    y, p, g = _random_case(7, 5)
    mf = MetricFrame(metrics={"tpr": true_positive_rate, "fpr": false_positive_rate, "sel": selection_rate,
                              "n": count}, y_true=y, y_pred=p, sensitive_features=g)
    table = group_table(y, p, g)
    for col in ("tpr", "fpr", "sel"):
        np.testing.assert_allclose(table[col].to_numpy(), mf.by_group[col].to_numpy(), atol=1e-12)
    np.testing.assert_array_equal(table["n"].to_numpy(), mf.by_group["n"].to_numpy())
    assert (table["n_pos"] + table["n_neg"] == table["n"]).all()


def test_groups_with_an_empty_label_cell_are_left_out_not_zeroed():
    y, p, g = _random_case(3, 4)
    g = g.copy()
    g[(g == "g3") & (y == 1)] = "g2"  # g3 now has no positive rows: its TPR is undefined
    table = group_table(y, p, g)
    assert np.isnan(table.at["g3", "tpr"])
    kept, left_out = eligible_groups(table)
    assert left_out == ["g3"] and kept == ["g0", "g1", "g2"]
    gaps = pairwise_gaps(y, p, g)
    assert len(gaps) == 3 and "g3" not in set(gaps["group_1"]) | set(gaps["group_2"])
    rows = g != "g3"
    assert worst_pairwise_gap(y, p, g, metric="eqod-worst") == pytest.approx(
        equalized_odds_difference(y[rows], p[rows], sensitive_features=g[rows]), abs=1e-12)


def test_min_cell_and_bad_input():
    y, p, g = _random_case(0, 3, n=60)
    table = group_table(y, p, g)
    kept, _ = eligible_groups(table, min_cell=int(table[["n_pos", "n_neg"]].min().min()) + 1)
    assert len(kept) < 3
    with pytest.raises(FairflipError, match="fewer than two groups"):
        pairwise_gaps(y, p, g, min_cell=1000)
    with pytest.raises(FairflipError, match="min_cell"):
        eligible_groups(table, min_cell=0)
    with pytest.raises(FairflipError, match="unknown metric"):
        worst_pairwise_gap(y, p, g, metric="accuracy")
    with pytest.raises(FairflipError, match="length mismatch"):
        group_table(y, p[:-1], g)
    with pytest.raises(FairflipError, match="not found among the groups"):
        minority_indicator(g, "g9")


def test_intersectional_metrics_minority_against_the_rest():
    y, p, g = _random_case(5, 4)
    out = intersectional_metrics(y, p, g, ["g1", "g3"])
    a = np.isin(g, ["g1", "g3"]).astype(np.int64)
    for key, value in all_metrics(y, p, a).items():
        assert out[key] == value
    assert out["worst_eqod"] == worst_pairwise_gap(y, p, g)
    assert out["worst_eqod_worst"] == pytest.approx(equalized_odds_difference(y, p, sensitive_features=g), abs=1e-12)
    assert out["n_groups"] == 4 and out["left_out"] == []
    g1, g2 = out["worst_pair"].split(" | ")
    rows = (g == g1) | (g == g2)
    assert eqod(y[rows], p[rows], (g[rows] == g1).astype(np.int64)) == pytest.approx(out["worst_eqod"], abs=1e-12)


# ----- intersectional minorities through the loaders, the problem and the methods -----
@pytest.fixture(scope="module")
def compas_race_sex():
    from fairflip.datasets import load, stratified_split

    data = load("compas", minority={"race": "African-American", "sex": "Female"})
    return stratified_split(data, test_size=0.3, seed=0)


def test_loader_gives_intersectional_groups(compas_race_sex):
    train, _ = compas_race_sex
    minority = "race=African-American&sex=Female"
    assert sorted(np.unique(train.group)) == [
        "race=African-American&sex=Female", "race=African-American&sex=Male",
        "race=Caucasian&sex=Female", "race=Caucasian&sex=Male"]
    np.testing.assert_array_equal(train.a, minority_indicator(train.group, minority))
    assert "sex" not in train.features.columns and "race" not in train.features.columns


@pytest.mark.parametrize("method", ["random", "rb-prob", "rb-label", "rb-dist", "greedy"])
def test_methods_accept_an_intersectional_minority_unchanged(compas_race_sex, method):
    from fairflip.methods import available_methods, get_method
    from fairflip.problem import build_problem

    if method not in available_methods():
        pytest.skip(f"method {method} is not registered in this build")
    train, test = compas_race_sex
    train = train.subset(np.arange(1200))
    problem, prep = build_problem(train, direction="auto", seed=0)
    assert (train.a[problem.candidates] == 1).all()
    chosen = get_method(method)
    flipped = chosen.select(problem, 10).flipped
    # heuristics spend the whole budget; greedy stops once no flip improves its objective
    assert (len(flipped) == 10 if not chosen.omniscient else 0 < len(flipped) <= 10)
    assert set(flipped.tolist()) <= set(problem.candidates.tolist())
    model = problem.firm.fit(problem.X, problem.flipped_labels(flipped))
    pred = model.predict(prep.transform(test))
    out = intersectional_metrics(test.y, pred, test.group, "race=African-American&sex=Female")
    assert out["n_groups"] == 4
    # the rest's rates are a mixture of the other groups' rates, so minority-vs-rest cannot exceed the worst pair
    assert out["eqod_worst"] <= out["worst_eqod_worst"] + 1e-12
    brute = max(eqod(test.y[rows], pred[rows], (test.group[rows] == g1).astype(np.int64))
                for g1, g2 in combinations(np.unique(test.group), 2)
                for rows in [(test.group == g1) | (test.group == g2)])
    assert out["worst_eqod"] == pytest.approx(brute, abs=1e-12)
