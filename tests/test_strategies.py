"""Tests of the collective's strategies (rb-prob, rb-label, rb-dist, massaging), the ideal strategy and the
scikit-learn-style relabeler, against brute-force references."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB

from fairflip._errors import FairflipError
from fairflip.datasets import make_causal, make_toy_2d
from fairflip.methods import available_methods, get_method
from fairflip.problem import build_problem
from fairflip.strategies import (CollectiveRelabeler, IdealErasure, RBDist, RBLabel, RBProb, counterfactual_target_prob,
                                 precision_at_m, reference_features)
from fairflip.strategies.base import resolve_budget

VIEW_METHODS = ("random", "rb-prob", "rb-label", "rb-dist", "massaging")


@pytest.fixture(scope="module")
def toy():
    return build_problem(make_toy_2d(400, seed=3), collective_fraction=0.5, seed=1)[0]


@pytest.fixture(scope="module")
def causal():
    return build_problem(make_causal(600, 4, seed=5), collective_fraction=0.4, seed=2)[0]


def _pairwise(A, B):
    """Brute-force Euclidean distances, shape (len(A), len(B))."""
    return np.sqrt(((A[:, None, :] - B[None, :, :]) ** 2).sum(-1))


def test_registry_lists_every_strategy():
    assert set(VIEW_METHODS) | {"none", "ideal"} <= set(available_methods())
    assert get_method("ideal").omniscient
    assert not any(get_method(m).omniscient for m in VIEW_METHODS)


@pytest.mark.parametrize("k", [1, 3, 10])
def test_rb_label_matches_brute_force(causal, k):
    view = causal.view()
    D = _pairwise(view.X_candidates, view.X_majority)
    nearest = np.argsort(D, axis=1, kind="stable")[:, :k]
    expected = (view.y_majority[nearest] == view.target_label).mean(axis=1)
    np.testing.assert_allclose(RBLabel(k).score(view), expected, atol=0)


@pytest.mark.parametrize("k", [1, 4, 10])
def test_rb_dist_matches_brute_force(causal, k):
    view = causal.view()
    target = view.X_majority[view.y_majority == view.target_label]
    D = np.sort(_pairwise(view.X_candidates, target), axis=1)[:, :k]
    np.testing.assert_allclose(RBDist(k).score(view), -D.mean(axis=1), rtol=1e-12, atol=1e-12)


def test_rb_dist_direction_down_uses_label_zero(causal):
    prob = replace(causal, collective=replace(causal.collective, direction="down"))
    view = prob.view()
    assert view.target_label == 0
    zero = view.X_majority[view.y_majority == 0]
    D = np.sort(_pairwise(view.X_candidates, zero), axis=1)[:, :10]
    np.testing.assert_allclose(RBDist().score(view), -D.mean(axis=1), rtol=1e-12)


def test_rb_prob_default_is_l2_logistic_on_majority_rows(causal):
    view = causal.view()
    ref = LogisticRegression(C=1.0, tol=1e-12, max_iter=10_000).fit(view.X_majority, view.y_majority)
    np.testing.assert_allclose(RBProb().score(view), ref.predict_proba(view.X_candidates)[:, 1], atol=1e-6)


def test_rb_prob_accepts_any_classifier_and_target_zero(causal):
    view = replace(causal.view(), source_label=1, target_label=0)
    ref = GaussianNB().fit(view.X_majority, view.y_majority)
    np.testing.assert_allclose(RBProb(GaussianNB()).score(view), ref.predict_proba(view.X_candidates)[:, 0])


def test_massaging_ranker_sees_members_and_majority_with_group(causal):
    view = causal.view()
    X = np.vstack([np.column_stack([view.X_members, np.ones(len(view.X_members))]),
                   np.column_stack([view.X_majority, np.zeros(len(view.X_majority))])])
    y = np.concatenate([view.y_members, view.y_majority])
    ref = LogisticRegression(C=1.0, tol=1e-12, max_iter=10_000).fit(X, y)
    Xc = np.column_stack([view.X_candidates, np.ones(len(view.X_candidates))])
    np.testing.assert_allclose(get_method("massaging").score(view), ref.predict_proba(Xc)[:, 1], atol=1e-6)


def test_standard_scaling_uses_rows_the_collective_sees(causal):
    view = causal.view()
    scaled = replace(view, X_members=3 * view.X_members + 7, X_majority=3 * view.X_majority + 7,
                     X_candidates=3 * view.X_candidates + 7)
    # Standardising with the seen rows' statistics undoes any affine rescaling of the columns.
    for cls in (RBLabel, RBDist):
        np.testing.assert_allclose(cls(scaling="standard").score(scaled), cls(scaling="standard").score(view),
                                   rtol=1e-9, atol=1e-12)
    seen = np.vstack([view.X_members, view.X_majority])
    Xc, Xm = reference_features(view, "standard")
    np.testing.assert_allclose(Xm, (view.X_majority - seen.mean(0)) / seen.std(0))
    np.testing.assert_allclose(Xc, (view.X_candidates - seen.mean(0)) / seen.std(0))


def test_top_m_flips_and_ties_by_row_order(toy):
    # With m = 4 known rows and k = 10, every candidate sees all 4 (k is capped): one score for all, so the
    # ranking falls back to row order and the first M candidates flip.
    prob = build_problem(make_toy_2d(400, seed=3), collective_fraction=0.5, known_majority=4, seed=1)[0]
    res = get_method("rb-label").select(prob, 7)
    assert len(np.unique(res.scores)) == 1
    np.testing.assert_array_equal(res.flipped, prob.candidates[:7])
    res = get_method("rb-label", k=3).select(toy, 25)
    order = np.lexsort((np.arange(len(res.scores)), -res.scores))
    np.testing.assert_array_equal(res.flipped, np.sort(toy.candidates[order[:25]]))
    assert len(get_method("rb-prob").select(toy, 10**6).flipped) == len(toy.candidates)


@pytest.mark.parametrize("known", [None, 10])
def test_strategies_read_only_the_collective_view(compas_split, known):
    train, _ = compas_split
    prob = build_problem(train, collective_fraction=0.3, direction="auto", known_majority=known, seed=4)[0]
    col = prob.collective
    hidden = ~(col.members | col.known_majority)
    rng = np.random.default_rng(0)

    def corrupt(M):
        M = M.copy()
        M[hidden] = rng.normal(size=(int(hidden.sum()), M.shape[1])) * 5
        return M

    y = prob.y.copy()
    y[hidden] = 1 - y[hidden]
    a = prob.a.copy()
    a[hidden] = 1 - a[hidden]
    bad = replace(prob, X=corrupt(prob.X), X_nogroup=corrupt(prob.X_nogroup),
                  X_counterfactual=corrupt(prob.X_counterfactual), y=y, a=a)
    for name in VIEW_METHODS:
        res = get_method(name, seed=3).select(prob, 120)
        res_bad = get_method(name, seed=3).select(bad, 120)
        np.testing.assert_array_equal(res.flipped, res_bad.flipped, err_msg=name)
        np.testing.assert_array_equal(res.scores, res_bad.scores, err_msg=name)
    # Positive control: corrupting a row the collective does see changes the scores (so the check can fail).
    seen = np.flatnonzero(col.known_majority)
    y2 = prob.y.copy()
    y2[seen] = 1 - y2[seen]
    for name in ("rb-prob", "rb-label", "rb-dist", "massaging"):
        assert not np.array_equal(get_method(name).score(replace(prob, y=y2).view()),
                                  get_method(name).score(prob.view())), name


def test_restricted_access_uses_only_m_rows(compas_split):
    train, _ = compas_split
    prob = build_problem(train, collective_fraction=0.3, direction="auto", known_majority=10, seed=0)[0]
    view = prob.view()
    assert len(view.majority_rows) == 10 and set(np.unique(view.y_majority)) == {0, 1}
    for name in ("rb-prob", "rb-label", "rb-dist", "massaging"):
        res = get_method(name).select(prob, 50)
        assert len(res.flipped) == 50 and np.isfinite(res.scores).all()


def test_ideal_flips_counterfactual_argmax_ranked_by_probability(causal):
    p = counterfactual_target_prob(causal)
    np.testing.assert_allclose(p, causal.y_counterfactual_prob[causal.candidates])
    eligible = causal.candidates[p > 0.5]
    res = IdealErasure().select(causal, 10**6)
    np.testing.assert_array_equal(res.flipped, eligible)
    assert res.info["n_eligible"] == len(eligible) < len(causal.candidates)
    M = len(eligible) // 3
    top = causal.candidates[np.argsort(-p, kind="stable")[:M]]
    np.testing.assert_array_equal(IdealErasure().select(causal, M).flipped, np.sort(top))
    down = replace(causal, collective=replace(causal.collective, direction="down"))
    np.testing.assert_allclose(counterfactual_target_prob(down), 1 - causal.y_counterfactual_prob[down.candidates])


def test_ideal_needs_the_causal_model(compas_split):
    prob = build_problem(compas_split[0], seed=0)[0]
    assert prob.y_counterfactual_prob is None
    with pytest.raises(FairflipError, match="counterfactual label probabilities"):
        IdealErasure().select(prob, 5)


def test_precision_at_m(causal):
    ideal = IdealErasure().select(causal, 40).flipped
    assert precision_at_m(causal, ideal) == 1.0
    others = np.setdiff1d(causal.candidates, ideal)[:10]
    mixed = np.concatenate([ideal[:30], others])
    assert precision_at_m(causal, mixed) == pytest.approx(0.75)
    rnd = get_method("random", seed=0).select(causal, 20).flipped
    best = get_method("rb-prob").select(causal, 20).flipped
    # In this linear causal model the majority's P(y | x) ranks like P0(y | x_{A<-0}) (the group only shifts x),
    # so rb-prob nearly reproduces the ideal flips (up to estimation error) while random does not.
    assert precision_at_m(causal, best) >= 0.8
    assert precision_at_m(causal, rnd) <= 0.5
    with pytest.raises(FairflipError, match="at least one flip"):
        precision_at_m(causal, [])


def test_relabeler_matches_the_strategy_and_is_an_sklearn_estimator(causal):
    X, y, a = causal.X_nogroup, causal.y, causal.a
    members = causal.collective.members
    rel = CollectiveRelabeler("rb-label", budget=0.25, direction="up", method_params={"k": 5})
    X_out, y_new = rel.fit_resample(X, y, sensitive_features=a, members=members)
    assert X_out is X
    M = resolve_budget(0.25, len(causal.candidates))
    expected = get_method("rb-label", k=5).select(causal, M).flipped
    np.testing.assert_array_equal(rel.flipped_, expected)
    np.testing.assert_array_equal(np.flatnonzero(y_new != y), expected)
    assert rel.budget_ == M and rel.n_features_in_ == X.shape[1]
    params = rel.get_params()
    assert params["method"] == "rb-label" and params["budget"] == 0.25 and params["method_params"] == {"k": 5}
    twin = clone(rel).set_params(method="rb-dist", budget=12)
    assert twin.get_params()["method"] == "rb-dist" and not hasattr(twin, "flipped_")
    assert len(twin.fit(X, y, sensitive_features=a, members=members).flipped_) == 12


def test_relabeler_draws_its_collective_and_checks_inputs(causal):
    X, y, a = causal.X_nogroup, causal.y, causal.a
    rel = CollectiveRelabeler("random", budget=5, collective=0.5, seed=1, known_majority=10).fit(
        X, y, sensitive_features=a)
    assert rel.collective_.size == round(0.5 * a.sum()) and rel.collective_.known_majority.sum() == 10
    assert len(rel.flipped_) == 5 and not (rel.collective_.members & (a == 0)).any()
    with pytest.raises(FairflipError, match="counterfactual label probabilities"):
        CollectiveRelabeler("ideal", budget=5).fit(X, y, sensitive_features=a)
    with pytest.raises(FairflipError, match="needs the group"):
        CollectiveRelabeler(budget=3).fit(X, y)
    with pytest.raises(FairflipError, match="fraction of the candidates"):
        CollectiveRelabeler(budget=1.5).fit(X, y, sensitive_features=a)
    with pytest.raises(FairflipError, match="X has"):
        CollectiveRelabeler(budget=3).fit(X[:-1], y, sensitive_features=a)


def test_bad_parameters_raise_clear_errors(causal):
    with pytest.raises(FairflipError, match="k must be a positive integer"):
        get_method("rb-label", k=0)
    with pytest.raises(FairflipError, match="scikit-learn classifier"):
        RBProb(model="logistic")
    with pytest.raises(FairflipError, match="scaling must be one of"):
        RBLabel(scaling="minmax")
    with pytest.raises(FairflipError, match="scaling must be one of"):
        reference_features(causal.view(), "minmax")
    with pytest.raises(FairflipError, match="algorithm must be one of"):
        RBDist(algorithm="annoy")
    with pytest.raises(FairflipError, match="bad parameters for method 'rb-dist'"):
        get_method("rb-dist", neighbours=3)
    view = causal.view()
    only_source = replace(view, X_majority=view.X_majority[view.y_majority == 0],
                          y_majority=view.y_majority[view.y_majority == 0])
    with pytest.raises(FairflipError, match="target label 1"):
        RBDist().score(only_source)
    with pytest.raises(FairflipError, match="carry one label"):
        RBProb().score(only_source)
    with pytest.raises(FairflipError, match="budget must be"):
        resolve_budget(-1, 10)
