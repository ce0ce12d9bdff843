"""Relabeling inside scikit-learn pipelines: CollectiveActionClassifier (meta-estimator) and CollectiveRelabeler
(imbalanced-learn style sampler), checked against references written here (kNN by hand, the inner estimator refit
by hand, fairlearn's metrics, folds refit by hand) and scikit-learn's estimator checks."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import sklearn
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import make_scorer
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from fairflip._errors import FairflipError
from fairflip.collective import make_collective
from fairflip.firms import make_firm
from fairflip.methods import get_method
from fairflip.metrics import all_metrics
from fairflip.pipeline import CollectiveActionClassifier
from fairflip.problem import FlipProblem, evaluate_flips
from fairflip.strategies import CollectiveRelabeler
from fairflip.strategies.transformer import NothingToFlipWarning

STEP = "collectiveactionclassifier"


def _data(n: int = 240, seed: int = 0):
    """Features shifted by the group, minority under-labeled (so 0 -> 1 flips help): X (n, 3), y (n,), a (n,)."""
    rng = np.random.default_rng(seed)
    a = (rng.random(n) < 0.35).astype(np.int64)
    X = rng.normal(size=(n, 3))
    X[:, 1] = 1.5 * a + 0.5 * X[:, 1]  # a proxy of the group that the firm can learn
    logit = 1.6 * X[:, 0] - 0.6 * X[:, 2] - 1.5 * a
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    return X, y, a


def _members(a: np.ndarray, fraction: float = 0.5, seed: int = 1) -> np.ndarray:
    """A collective chosen here (not by fairflip): a share of the minority rows."""
    rng = np.random.default_rng(seed)
    minority = np.flatnonzero(a == 1)
    mask = np.zeros(len(a), dtype=np.int64)
    mask[rng.choice(minority, size=int(fraction * len(minority)), replace=False)] = 1
    return mask


def _rb_label_by_hand(Xs, y, a, members, M, k=10):
    """RB-label for 0 -> 1 flips: share of label 1 among the k nearest majority rows, top M, ties by row order."""
    cands = np.flatnonzero((members == 1) & (y == 0))
    major = np.flatnonzero(a == 0)
    D = np.sqrt(((Xs[cands][:, None, :] - Xs[major][None, :, :]) ** 2).sum(-1))
    nearest = np.argsort(D, axis=1, kind="stable")[:, :k]
    share = y[major][nearest].mean(axis=1)
    return np.sort(cands[np.argsort(-share, kind="stable")[:M]])


def _flip(y, rows):
    out = y.copy()
    out[rows] = 1 - out[rows]
    return out


def upper_half(column):
    """Minority rule for the estimator checks (module level, so the estimator pickles): the upper half."""
    column = np.asarray(column, dtype=np.float64)
    return column > np.median(column)


def test_pipeline_with_scaler_relabels_like_the_paper_and_fits_the_inner_estimator_on_exactly_those_flips():
    X, y, a = _data()
    Xt, yt, at = _data(seed=7)
    members = _members(a)
    pipe = make_pipeline(StandardScaler(), CollectiveActionClassifier(LogisticRegression(), budget=0.25, seed=0))
    pipe.fit(X, y, **{f"{STEP}__sensitive_features": a, f"{STEP}__members": members})
    clf = pipe[-1]

    Xs = (X - X.mean(0)) / X.std(0)
    n_cand = int(((members == 1) & (y == 0)).sum())
    M = int(round(0.25 * n_cand))
    expected = _rb_label_by_hand(Xs, y, a, members, M)
    assert clf.collective_.direction == "up" and clf.budget_ == M and len(expected) == M > 0
    np.testing.assert_array_equal(clf.flipped_, expected)
    np.testing.assert_array_equal(clf.y_relabeled_, _flip(y, expected))

    hand = LogisticRegression().fit(Xs, _flip(y, expected))
    np.testing.assert_allclose(clf.estimator_.coef_, hand.coef_, rtol=1e-10, atol=1e-12)
    Xts = (Xt - X.mean(0)) / X.std(0)
    np.testing.assert_array_equal(pipe.predict(Xt), hand.predict(Xts))
    np.testing.assert_allclose(pipe.predict_proba(Xt), hand.predict_proba(Xts), rtol=1e-10)
    np.testing.assert_allclose(pipe.decision_function(Xt), hand.decision_function(Xts), rtol=1e-10)
    np.testing.assert_allclose(pipe.predict_log_proba(Xt), hand.predict_log_proba(Xts), rtol=1e-10)
    np.testing.assert_array_equal(pipe.classes_, [0, 1])
    assert pipe.score(Xt, yt) == pytest.approx((hand.predict(Xts) == yt).mean())

    # The same flips through fairflip's own interface (any registered method, seeded explicitly).
    col = make_collective(y, a, members=members, direction="auto", seed=0)
    problem = FlipProblem(X=Xs, y=y, a=a, collective=col, firm=make_firm("logistic"))
    np.testing.assert_array_equal(get_method("rb-label", seed=0).select(problem, M).flipped, clf.flipped_)
    for method in ("rb-prob", "rb-dist", "random", "massaging", "none"):
        got = clone(pipe).set_params(**{f"{STEP}__method": method, f"{STEP}__seed": 3}).fit(
            X, y, **{f"{STEP}__sensitive_features": a, f"{STEP}__members": members})[-1]
        np.testing.assert_array_equal(got.flipped_, get_method(method, seed=3).select(problem, M).flipped)
        np.testing.assert_array_equal(got.y_relabeled_, _flip(y, got.flipped_))


def test_fairlearn_metrics_of_its_predictions_equal_fairflips_metrics_for_the_same_flips():
    X, y, a = _data(300)
    Xt, yt, at = _data(400, seed=11)
    clf = CollectiveActionClassifier(LogisticRegression(tol=1e-12, max_iter=10_000), budget=0.4, collective=0.5,
                                     seed=4).fit(X, y, sensitive_features=a)
    assert len(clf.flipped_) > 0
    pred = clf.predict(Xt)
    ours = all_metrics(yt, pred, at)
    assert ours["eqod"] == pytest.approx(equalized_odds_difference(yt, pred, sensitive_features=at, agg="mean"),
                                         abs=1e-12)
    worst = equalized_odds_difference(yt, pred, sensitive_features=at)  # agg="worst_case", the default
    assert ours["eqod_worst"] == pytest.approx(worst, abs=1e-12)
    assert ours["dp"] == pytest.approx(demographic_parity_difference(yt, pred, sensitive_features=at), abs=1e-12)
    # fairflip's logistic firm retrained on the same flips predicts the same labels, so its test metrics agree.
    problem = FlipProblem(X=X, y=y, a=a, collective=clf.collective_, firm=make_firm("logistic", device="cpu"))
    report = evaluate_flips(problem, clf.flipped_, test=(Xt, yt, at, None))
    for key in ("eqod", "eqod_worst", "dp", "eqopp", "error"):
        assert report["test"][key] == pytest.approx(ours[key], abs=1e-12), key
    # The flips changed the firm: its predictions differ from the plain estimator's.
    plain = LogisticRegression(tol=1e-12, max_iter=10_000).fit(X, y).predict(Xt)
    assert (plain != pred).any()


def test_clone_params_and_pickle():
    X, y, a = _data()
    clf = CollectiveActionClassifier(LogisticRegression(C=0.5), method="rb-dist", budget=7, seed=2,
                                     method_params={"k": 3})
    params = clf.get_params(deep=True)
    assert params["estimator__C"] == 0.5 and params["budget"] == 7 and params["method_params"] == {"k": 3}
    twin = clone(clf)
    assert twin.get_params(deep=False).keys() == clf.get_params(deep=False).keys()
    assert twin.method_params == {"k": 3} and twin.method_params is not clf.method_params
    twin.set_params(estimator__C=2.0, budget=0.5)
    assert twin.estimator.C == 2.0 and clf.estimator.C == 0.5 and not hasattr(twin, "flipped_")
    fitted = clf.fit(X, y, sensitive_features=a)
    assert len(fitted.flipped_) == 7 and fitted.estimator_ is not fitted.estimator
    assert not hasattr(clone(fitted), "estimator_")
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.predict_proba(X), fitted.predict_proba(X))
    np.testing.assert_array_equal(again.flipped_, fitted.flipped_)
    # Refitting the clone with the same seed gives the same flips; the seed changes random flips.
    np.testing.assert_array_equal(clone(fitted).fit(X, y, sensitive_features=a).flipped_, fitted.flipped_)
    rnd = [CollectiveActionClassifier(method="random", budget=5, seed=s).fit(X, y, sensitive_features=a).flipped_
           for s in (0, 0, 1)]
    np.testing.assert_array_equal(rnd[0], rnd[1])
    assert not np.array_equal(rnd[0], rnd[2])


def _neg_mean_eqod(y_true, y_pred, *, sensitive_features):
    return -equalized_odds_difference(y_true, y_pred, sensitive_features=sensitive_features, agg="mean")


def test_grid_search_over_the_budget_with_routed_sensitive_features():
    X, y, a = _data(240, seed=3)
    budgets = [0, 4, 0.5]
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    with sklearn.config_context(enable_metadata_routing=True):
        clf = CollectiveActionClassifier(LogisticRegression(), collective=0.6, seed=1)
        pipe = make_pipeline(StandardScaler(), clf.set_fit_request(sensitive_features=True))
        scorer = make_scorer(_neg_mean_eqod).set_score_request(sensitive_features=True)
        search = GridSearchCV(pipe, {f"{STEP}__budget": budgets}, cv=cv, scoring=scorer)
        search.fit(X, y, sensitive_features=a)
        # Without the request the group is refused by the router, not silently dropped.
        with pytest.raises(sklearn.exceptions.UnsetMetadataPassedError):
            make_pipeline(StandardScaler(), CollectiveActionClassifier()).fit(X, y, sensitive_features=a)
    # Every fold's score, recomputed by hand: fit on the fold's rows with their group, score on the others.
    for j, budget in enumerate(budgets):
        for f, (tr, te) in enumerate(cv.split(X, y)):
            step = CollectiveActionClassifier(LogisticRegression(), budget=budget, collective=0.6, seed=1)
            hand = make_pipeline(StandardScaler(), step).fit(X[tr], y[tr], **{f"{STEP}__sensitive_features": a[tr]})
            expected = _neg_mean_eqod(y[te], hand.predict(X[te]), sensitive_features=a[te])
            assert search.cv_results_[f"split{f}_test_score"][j] == pytest.approx(expected, abs=1e-12)
            if budget == 0:
                assert len(hand[-1].flipped_) == 0
    best = search.best_params_[f"{STEP}__budget"]
    assert search.best_score_ == pytest.approx(max(search.cv_results_["mean_test_score"]))
    assert best == budgets[int(np.argmax(search.cv_results_["mean_test_score"]))]

    # Without metadata routing: the scikit-learn step-name convention, same folds, same accuracy scores.
    plain = GridSearchCV(make_pipeline(StandardScaler(), CollectiveActionClassifier(collective=0.6, seed=1)),
                         {f"{STEP}__budget": budgets}, cv=cv)
    plain.fit(X, y, **{f"{STEP}__sensitive_features": a})
    tr, te = next(cv.split(X, y))
    hand = make_pipeline(StandardScaler(), CollectiveActionClassifier(budget=4, collective=0.6, seed=1))
    hand.fit(X[tr], y[tr], **{f"{STEP}__sensitive_features": a[tr]})
    assert plain.cv_results_["split0_test_score"][1] == pytest.approx(hand.score(X[te], y[te]))


def test_inner_fit_params_are_routed_to_the_inner_estimator():
    X, y, a = _data()
    w = np.where(np.arange(len(y)) % 3 == 0, 5.0, 1.0)
    with sklearn.config_context(enable_metadata_routing=True):
        clf = CollectiveActionClassifier(LogisticRegression().set_fit_request(sample_weight=True), budget=6)
        clf.set_fit_request(sensitive_features=True).fit(X, y, sensitive_features=a, sample_weight=w)
    hand = LogisticRegression().fit(X, clf.y_relabeled_, sample_weight=w)
    np.testing.assert_allclose(clf.estimator_.coef_, hand.coef_, rtol=1e-10)
    plain = CollectiveActionClassifier(budget=6).fit(X, y, sensitive_features=a, sample_weight=w)
    np.testing.assert_allclose(plain.estimator_.coef_, hand.coef_, rtol=1e-10)
    # The collective's membership is metadata too.
    members = _members(a)
    with sklearn.config_context(enable_metadata_routing=True):
        step = CollectiveActionClassifier(budget=6).set_fit_request(sensitive_features=True, members=True)
        pipe = make_pipeline(StandardScaler(), step).fit(X, y, sensitive_features=a, members=members)
    assert set(pipe[-1].flipped_) <= set(np.flatnonzero(members == 1))
    np.testing.assert_array_equal(pipe[-1].collective_.members, members == 1)


def test_sensitive_feature_as_a_dataframe_column_with_string_labels():
    X, y, a = _data()
    df = pd.DataFrame(X, columns=["f0", "f1", "f2"])
    df.insert(1, "race", np.where(a == 1, "B", "W"))
    labels = np.where(y == 1, "yes", "no")
    by_column = CollectiveActionClassifier(sensitive_feature="race", minority="B", budget=5, seed=2).fit(df, labels)
    by_metadata = CollectiveActionClassifier(budget=5, seed=2).fit(df.drop(columns="race"), labels,
                                                                   sensitive_features=df["race"] == "B")
    np.testing.assert_array_equal(by_column.flipped_, by_metadata.flipped_)
    np.testing.assert_array_equal(by_column.classes_, ["no", "yes"])
    assert set(labels[by_column.flipped_]) == {"no"} and set(by_column.y_relabeled_[by_column.flipped_]) == {"yes"}
    np.testing.assert_array_equal(by_column.predict(df), by_metadata.predict(df.drop(columns="race")))
    assert list(by_column.feature_names_in_) == ["f0", "race", "f1", "f2"] and by_column.n_features_in_ == 4
    assert list(by_column.estimator_.feature_names_in_) == ["f0", "f1", "f2"]
    rarer = CollectiveActionClassifier(sensitive_feature="race", minority="rarer", budget=5, seed=2).fit(df, labels)
    np.testing.assert_array_equal(rarer.flipped_, by_column.flipped_)
    with pytest.raises(ValueError, match="missing:\n- race"):
        by_column.predict(df.drop(columns="race"))
    with pytest.raises(FairflipError, match="'gender' is not a column of X"):
        clone(by_column).set_params(sensitive_feature="gender").fit(df, labels)
    # Kept column (numeric): the inner estimator sees it, the strategy still reads X without it.
    Xa = np.column_stack([X, a])
    kept = CollectiveActionClassifier(sensitive_feature=3, drop_sensitive=False, budget=5, seed=2).fit(Xa, y)
    dropped = CollectiveActionClassifier(sensitive_feature=-1, budget=5, seed=2).fit(Xa, y)
    np.testing.assert_array_equal(kept.flipped_, dropped.flipped_)
    assert kept.estimator_.n_features_in_ == 4 and dropped.estimator_.n_features_in_ == 3
    hand = LogisticRegression().fit(Xa, kept.y_relabeled_)
    np.testing.assert_allclose(kept.decision_function(Xa), hand.decision_function(Xa), rtol=1e-10)


def test_an_oracle_runs_inside_the_meta_estimator_for_its_stand_in_firm():
    X, y, a = _data(60, seed=5)
    members = _members(a, 0.4, seed=2)
    clf = CollectiveActionClassifier(method="brute-force", budget=2, firm="logistic", objective="eqod", seed=0,
                                     time_limit=600)
    clf.fit(X, y, sensitive_features=a, members=members)
    col = make_collective(y, a, members=members, direction="auto")
    problem = FlipProblem(X=X, y=y, a=a, collective=col, firm=make_firm("logistic"), objective="eqod")
    result = get_method("brute-force", seed=0).select(problem, 2)
    np.testing.assert_array_equal(clf.flipped_, result.flipped)
    assert clf.flip_result_.status == "optimal" and clf.flip_result_.objective == pytest.approx(result.objective)
    assert clf.flip_result_.time_limit == 600
    # The stand-in firm is the same model as LogisticRegression(): the inner fit reaches the oracle's objective.
    pred = clf.predict(X)
    assert all_metrics(y, pred, a)["eqod"] == pytest.approx(result.objective, abs=1e-12)


def test_budgets_warnings_and_clear_errors():
    X, y, a = _data()
    n_cand = len(CollectiveActionClassifier(budget=0).fit(X, y, sensitive_features=a).candidates_)
    half = CollectiveActionClassifier(budget=0.5).fit(X, y, sensitive_features=a)
    assert len(half.flipped_) == half.budget_ == round(0.5 * n_cand)
    assert len(CollectiveActionClassifier(budget=10**6).fit(X, y, sensitive_features=a).flipped_) == n_cand
    zero = CollectiveActionClassifier(budget=0).fit(X, y, sensitive_features=a)
    np.testing.assert_allclose(zero.estimator_.coef_, LogisticRegression().fit(X, y).coef_, rtol=1e-12)
    # A collective whose members all carry the target label has nothing to flip: a warning, no flips.
    members = ((a == 1) & (y == 1)).astype(int)
    with pytest.warns(NothingToFlipWarning, match="candidate set is empty"):
        none = CollectiveActionClassifier(direction="up").fit(X, y, sensitive_features=a, members=members)
    assert len(none.flipped_) == 0 and none.collective_ is None

    clf = CollectiveActionClassifier()
    with pytest.raises(FairflipError, match="needs the group"):
        clf.fit(X, y)
    with pytest.raises(FairflipError, match="do not pass sensitive_features too"):
        CollectiveActionClassifier(sensitive_feature=0).fit(X, y, sensitive_features=a)
    with pytest.raises(FairflipError, match="no row of the sensitive feature is in the minority"):
        clf.fit(X, y, sensitive_features=a + 5)
    with pytest.raises(FairflipError, match="exactly two values"):
        CollectiveActionClassifier(minority="rarer").fit(X, y, sensitive_features=np.arange(len(y)) % 3)
    with pytest.raises(FairflipError, match="unknown method 'rb-lable'"):
        CollectiveActionClassifier(method="rb-lable").fit(X, y, sensitive_features=a)
    with pytest.raises(FairflipError, match="method_params must be a dict"):
        CollectiveActionClassifier(method_params=[("k", 3)]).fit(X, y, sensitive_features=a)
    with pytest.raises(FairflipError, match="minority's value"):
        clf.fit(X, y, sensitive_features=np.where(a == 1, "B", "W"))
    with pytest.raises(FairflipError, match="direction must be"):
        CollectiveActionClassifier(direction="sideways").fit(X, y, sensitive_features=a)
    with pytest.raises(FairflipError, match="fraction of the candidates"):
        CollectiveActionClassifier(budget=1.5).fit(X, y, sensitive_features=a)
    with pytest.raises(FairflipError, match="Only binary classification"):
        clf.fit(X, np.arange(len(y)) % 3, sensitive_features=a)
    with pytest.raises(FairflipError, match="sensitive_features 239"):
        clf.fit(X, y, sensitive_features=a[:-1])
    with pytest.raises(TypeError, match="sparse"):
        clf.fit(sp.csr_matrix(X), y, sensitive_features=a)
    with pytest.raises(NotFittedError):
        clf.predict(X)
    clf.fit(X, y, sensitive_features=a)
    with pytest.raises(ValueError, match="X has 2 features, but CollectiveActionClassifier is expecting 3"):
        clf.predict(X[:, :2])
    with pytest.raises(FairflipError, match="Reshape your data"):
        clf.predict(X[0])
    assert not hasattr(CollectiveActionClassifier(GaussianNB()), "decision_function")


def test_relabeler_is_an_imbalanced_learn_sampler():
    X, y, a = _data()
    Xs = StandardScaler().fit_transform(X)
    X_out, y_out = CollectiveRelabeler(budget=6, seed=1).fit_resample(Xs, y, sensitive_features=a)
    meta = CollectiveActionClassifier(budget=6, seed=1).fit(Xs, y, sensitive_features=a)
    assert X_out is Xs
    np.testing.assert_array_equal(y_out, meta.y_relabeled_)
    imblearn_pipeline = pytest.importorskip("imblearn.pipeline")  # optional: not a fairflip dependency
    with sklearn.config_context(enable_metadata_routing=True):
        rel = CollectiveRelabeler(budget=6, seed=1).set_fit_resample_request(sensitive_features=True)
        pipe = imblearn_pipeline.make_pipeline(StandardScaler(), rel, LogisticRegression())
        pipe.fit(X, y, sensitive_features=a)
    np.testing.assert_array_equal(pipe[1].flipped_, meta.flipped_)
    np.testing.assert_allclose(pipe[-1].coef_, meta.estimator_.coef_, rtol=1e-10)
    # Without routing, the group as a column of X (it stays in X for the later steps).
    Xa = np.column_stack([X, a])
    rel = CollectiveRelabeler(sensitive_feature=3, minority="rarer", budget=6, seed=1)
    pipe = imblearn_pipeline.make_pipeline(StandardScaler(), rel, LogisticRegression())
    pipe.fit(Xa, y)
    np.testing.assert_array_equal(pipe[1].flipped_, meta.flipped_)
    assert pipe[-1].n_features_in_ == 4


EXPECTED_RELABELER_FAILURES = {
    check: "binary labels only: the check fits this non-classifier on three or more classes"
    for check in ("check_fit_score_takes_y", "check_estimators_overwrite_params", "check_dont_overwrite_parameters",
                  "check_estimators_fit_returns_self", "check_readonly_memmap_input",
                  "check_n_features_in_after_fitting", "check_positive_only_tag_during_fit", "check_dtype_object",
                  "check_f_contiguous_array_estimator", "check_methods_sample_order_invariance",
                  "check_methods_subset_invariance", "check_dict_unchanged", "check_fit2d_predict1d")
}


def _expected_failures(estimator):
    return EXPECTED_RELABELER_FAILURES if isinstance(estimator, CollectiveRelabeler) else {}


@parametrize_with_checks([
    CollectiveActionClassifier(LogisticRegression(), sensitive_feature=0, minority=upper_half),
    CollectiveActionClassifier(GaussianNB(), sensitive_feature=0, minority=upper_half, drop_sensitive=False),
    CollectiveRelabeler(sensitive_feature=0, minority=upper_half),
], expected_failed_checks=_expected_failures)
def test_scikit_learn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NothingToFlipWarning)
        check(estimator)
