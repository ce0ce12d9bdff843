"""FlipProblem: the collective's view, flip checks, batched retraining and the objective."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from fairflip._errors import FairflipError
from fairflip.firms import LinearFirm, SklearnFirm
from fairflip.metrics import all_metrics, error_rate, fairness
from fairflip.problem import FlipProblem, build_problem, evaluate_flips


@pytest.fixture(scope="module")
def small(compas_split):
    train, test = compas_split
    rows = np.random.default_rng(0).choice(len(train), size=900, replace=False)
    return train.subset(np.sort(rows)), test


def some_flip_sets(problem, k=4, seed=0):
    rng = np.random.default_rng(seed)
    cands = problem.candidates
    sets = [np.zeros(0, dtype=np.int64), cands[:1]]
    sets += [rng.choice(cands, size=size, replace=False) for size in rng.integers(2, len(cands), size=k)]
    return sets


@pytest.mark.parametrize("known_majority", [None, 25])
def test_view_holds_exactly_members_and_known_majority(small, known_majority):
    train, _ = small
    problem, prep = build_problem(train, collective_fraction=0.3, known_majority=known_majority, seed=1)
    col = problem.collective
    view = problem.view()
    np.testing.assert_array_equal(view.member_rows, np.flatnonzero(col.members))
    np.testing.assert_array_equal(view.majority_rows, np.flatnonzero(col.known_majority))
    np.testing.assert_array_equal(view.candidate_rows, np.flatnonzero(col.members & (train.y == col.source_label)))
    np.testing.assert_array_equal(view.candidate_rows, problem.candidates)
    assert (train.a[view.member_rows] == 1).all() and (train.a[view.majority_rows] == 0).all()
    if known_majority is None:
        np.testing.assert_array_equal(view.majority_rows, np.flatnonzero(train.a == 0))
    else:
        assert len(view.majority_rows) == known_majority
    # matrices: the rows of the group-free design, nothing else
    X_ng = prep.transform(train, drop_group=True)
    assert view.X_members.shape[1] == problem.X.shape[1] - 1
    np.testing.assert_array_equal(view.X_members, X_ng[view.member_rows])
    np.testing.assert_array_equal(view.X_candidates, X_ng[view.candidate_rows])
    np.testing.assert_array_equal(view.X_majority, X_ng[view.majority_rows])
    np.testing.assert_array_equal(view.y_members, train.y[view.member_rows])
    np.testing.assert_array_equal(view.y_majority, train.y[view.majority_rows])
    assert (view.source_label, view.target_label) == (col.source_label, col.target_label)
    # a view is a copy: writing into it leaves the problem untouched
    view.X_members[:] = 99.0
    view.y_majority[:] = 1 - view.y_majority
    np.testing.assert_array_equal(problem.X_nogroup, X_ng)
    np.testing.assert_array_equal(problem.y, train.y)


def test_build_problem_matrices(small):
    train, _ = small
    problem, prep = build_problem(train, collective_fraction=0.3, direction="down", seed=2)
    X = prep.transform(train)
    np.testing.assert_array_equal(problem.X, X)
    np.testing.assert_array_equal(problem.X[:, -1], train.a)
    np.testing.assert_array_equal(problem.X_counterfactual[:, -1], 0.0)
    np.testing.assert_array_equal(problem.X_counterfactual[:, :-1], X[:, :-1])
    np.testing.assert_array_equal(problem.X_nogroup, X[:, :-1])
    assert problem.feature_names == prep.feature_names_ and problem.n == len(train)
    assert problem.collective.direction == "down" and problem.collective.size == round(0.3 * train.a.sum())
    blind, prep2 = build_problem(train, include_group=False, seed=2)
    np.testing.assert_array_equal(blind.X, X[:, :-1])
    with pytest.raises(FairflipError, match="unknown objective"):
        build_problem(train, objective="accuracy")
    with pytest.raises(FairflipError, match="error_weight"):
        build_problem(train, error_weight=-0.1)
    with pytest.raises(FairflipError, match="unknown firm"):
        build_problem(train, firm="forest")


def test_check_flips(small):
    train, _ = small
    problem, _ = build_problem(train, collective_fraction=0.3, seed=0)
    cands = problem.candidates
    np.testing.assert_array_equal(problem.check_flips(cands[[3, 0, 2]]), np.sort(cands[[3, 0, 2]]))
    assert problem.check_flips([]).shape == (0,)
    non_members = np.flatnonzero(~problem.collective.members)[:2]
    wrong_label = np.flatnonzero(problem.collective.members & (train.y != problem.collective.source_label))[:1]
    for bad, msg in ((non_members, "not candidates"), (wrong_label, "not candidates"), ([-1], "not candidates"),
                     ([len(train)], "not candidates"), (cands[[1, 1]], "twice")):
        with pytest.raises(FairflipError, match=msg):
            problem.check_flips(bad)
        with pytest.raises(FairflipError, match=msg):
            problem.flipped_labels(bad)
    assert len(problem.check_flips(cands[:5], budget=5)) == 5
    with pytest.raises(FairflipError, match="budget"):
        problem.check_flips(cands[:6], budget=5)


def test_flipped_labels_and_label_matrix(small):
    train, _ = small
    problem, _ = build_problem(train, collective_fraction=0.3, seed=0)
    sets = some_flip_sets(problem)
    Y = problem.label_matrix(sets)
    assert Y.shape == (len(sets), problem.n)
    for k, f in enumerate(sets):
        y_flip = problem.flipped_labels(f)
        np.testing.assert_array_equal(Y[k], y_flip)
        changed = np.flatnonzero(y_flip != train.y)
        np.testing.assert_array_equal(changed, np.sort(f))
        assert (y_flip[changed] == problem.collective.target_label).all()
    np.testing.assert_array_equal(problem.y, train.y)  # never modified in place


@pytest.mark.parametrize("objective,error_weight", [("eqod", 0.0), ("eqod-worst", 0.5), ("dp", 0.0), ("eqopp", 2.0)])
def test_objective_of_equals_evaluate_flips_and_sklearn(small, objective, error_weight):
    train, _ = small
    problem, _ = build_problem(train, collective_fraction=0.4, objective=objective, error_weight=error_weight,
                               seed=3)
    sets = some_flip_sets(problem, seed=1)
    values = problem.objective_of(sets)
    assert values.shape == (len(sets),)
    for k, f in enumerate(sets):
        assert values[k] == pytest.approx(evaluate_flips(problem, f)["objective"], abs=1e-12)
        # independent reference: sklearn's LogisticRegression on the flipped labels
        sk = LogisticRegression(C=1.0, tol=1e-12, max_iter=10_000, solver="newton-cholesky")
        pred = sk.fit(problem.X, problem.flipped_labels(f)).predict(problem.X)
        ref = fairness(objective, train.y, pred, train.a) + error_weight * error_rate(train.y, pred)
        assert values[k] == pytest.approx(ref, abs=1e-12)


def test_validation_objective(small):
    train, test = small
    problem, prep = build_problem(train, collective_fraction=0.4, seed=4)
    Xv = prep.transform(test)
    problem.validation = (Xv, test.y, test.a)
    sets = some_flip_sets(problem, k=2, seed=2)
    values = problem.objective_of(sets)
    for k, f in enumerate(sets):
        model = problem.firm.fit(problem.X, problem.flipped_labels(f))
        assert values[k] == pytest.approx(fairness("eqod", test.y, model.predict(Xv), test.a), abs=1e-12)
        assert evaluate_flips(problem, f)["objective"] == pytest.approx(values[k], abs=1e-12)


def test_predictions_linear_equal_generic_firm(small):
    train, test = small
    problem, prep = build_problem(train, collective_fraction=0.4, seed=5)
    sets = some_flip_sets(problem, k=3, seed=3)
    Xt = prep.transform(test)
    batched = problem.predictions(sets, Xt)
    assert batched.shape == (len(sets), len(test)) and batched.dtype == np.int64
    generic = FlipProblem(X=problem.X, y=problem.y, a=problem.a, collective=problem.collective,
                          firm=SklearnFirm("sk-logistic", lambda: LogisticRegression(
                              tol=1e-12, max_iter=10_000, solver="newton-cholesky")))
    np.testing.assert_array_equal(generic.predictions(sets, Xt), batched)
    np.testing.assert_array_equal(generic.objective_of(sets), problem.objective_of(sets))


def test_evaluate_flips_metrics(small):
    train, test = small
    problem, prep = build_problem(train, collective_fraction=0.4, direction="down", seed=6)
    f = problem.candidates[::3]
    test_arrays = (prep.transform(test), test.y, test.a, prep.transform(test, counterfactual_group=True))
    ev = evaluate_flips(problem, f, test=test_arrays)
    model = problem.firm.fit(problem.X, problem.flipped_labels(f))
    train_ref = all_metrics(train.y, model.predict(problem.X), train.a,
                            y_pred_counterfactual=model.predict(problem.X_counterfactual))
    test_ref = all_metrics(test.y, model.predict(test_arrays[0]), test.a,
                           y_pred_counterfactual=model.predict(test_arrays[3]))
    assert ev["train"] == pytest.approx(train_ref, abs=1e-12)
    assert ev["test"] == pytest.approx(test_ref, abs=1e-12)
    assert ev["objective"] == pytest.approx(train_ref["eqod"], abs=1e-12)
    assert 0.0 <= ev["test"]["success"] <= 1.0
    with pytest.raises(FairflipError):
        evaluate_flips(problem, np.flatnonzero(train.a == 0)[:1])


def test_flip_problem_shape_checks(small):
    train, _ = small
    problem, _ = build_problem(train, seed=0)
    with pytest.raises(FairflipError, match="rows"):
        FlipProblem(X=problem.X[:-1], y=problem.y, a=problem.a, collective=problem.collective, firm=problem.firm)
    with pytest.raises(FairflipError, match="unknown objective"):
        FlipProblem(X=problem.X, y=problem.y, a=problem.a, collective=problem.collective, firm=problem.firm,
                    objective="auc")


def test_assigning_another_firm_rebuilds_the_device_cache():
    from _instances import tiny_problem

    problem = tiny_problem(7, n=120, n_members=12)
    sets = [problem.candidates[:k] for k in (0, 2, 5)]
    problem.fit_flip_sets(sets)  # builds the cache for C = 1
    problem.firm = LinearFirm("logistic", C=0.05, device="cpu")
    fresh = tiny_problem(7, n=120, n_members=12)
    fresh.firm = LinearFirm("logistic", C=0.05, device="cpu")
    np.testing.assert_array_equal(problem.fit_flip_sets(sets), fresh.fit_flip_sets(sets))
    assert problem.training_state()["firm"] is problem.firm
    np.testing.assert_allclose(problem.fit_flip_sets(sets), problem.firm.fit_many(problem.X, problem.label_matrix(sets)),
                               atol=1e-9)


@pytest.mark.parametrize("d", [3, 40])
def test_retraining_around_a_nearby_set_gives_the_same_optimum(d):
    from fairflip.collective import make_collective

    rng = np.random.default_rng(11)
    n = 400
    a = (rng.random(n) < 0.4).astype(int)
    X = rng.normal(size=(n, d))
    y = ((X[:, 0] - 0.7 * a + rng.normal(size=n)) > 0).astype(int)
    members = (a == 1) & (y == 0)
    problem = FlipProblem(X=np.c_[X, a], y=y, a=a, collective=make_collective(y, a, members=members, direction="up"),
                          firm=LinearFirm("logistic", device="cpu"))
    cands = problem.candidates
    current = np.sort(cands[:6])
    moves = [np.sort(np.append(current[current != current[i]], cands[10 + i])) for i in range(6)] + [current[:-1]]
    plain = problem.fit_flip_sets(moves)
    near = problem.fit_flip_sets(moves, around=current)
    np.testing.assert_allclose(near, plain, atol=1e-9)
    key, model = problem.training_state()["anchor"]
    assert key == current.tobytes()
    np.testing.assert_allclose(model.theta.numpy(), problem.fit_flip_sets([current])[0], atol=1e-9)
    np.testing.assert_array_equal(problem.objective_of(moves, around=current), problem.objective_of(moves))


def test_label_changes_are_the_entries_where_labels_differ_from_the_anchor():
    from fairflip.problem import _label_changes

    rng = np.random.default_rng(5)
    n = 40
    y = rng.integers(0, 2, n)
    for anchor in (np.zeros(0, dtype=np.int64), np.sort(rng.choice(n, 6, replace=False))):
        sets = [rng.choice(n, k, replace=True) for k in (0, 1, 3, 6, 9)] + [anchor.copy(), anchor[:-1]]
        member, row = _label_changes(sets, anchor, n)
        Y = np.repeat(y[None], len(sets), 0)
        for k, f in enumerate(sets):
            Y[k, f] = 1 - Y[k, f]
        ya = y.copy()
        ya[anchor] = 1 - ya[anchor]
        expected = set(zip(*np.nonzero(Y != ya)))
        assert set(zip(member.tolist(), row.tolist())) == {(int(k), int(i)) for k, i in expected}
        assert len(member) == len(expected)  # no pair twice


def test_fit_near_from_an_anchor_equals_newton_for_every_loss():
    import torch

    from fairflip.firms import LinearFirm

    rng = np.random.default_rng(8)
    n, d = 300, 4
    X = rng.normal(size=(n, d))
    y = (X[:, 0] + rng.normal(size=n) > 0).astype(float)
    sw = torch.as_tensor(rng.uniform(0.5, 2.0, n))
    for loss in ("logistic", "squared", "smoothed-hinge"):
        firm = LinearFirm(loss, device="cpu")
        Xd = firm.design(X)
        anchor_rows = rng.choice(n, 5, replace=False)
        ya = torch.as_tensor(y.copy())
        ya[anchor_rows] = 1 - ya[anchor_rows]
        theta = firm.fit_params(Xd, ya, sample_weight=sw)
        Y = ya.expand(12, n).clone()
        for k in range(12):
            flip = rng.choice(n, 1 + 3 * k, replace=False)  # 1 to 34 flips away from the anchor
            Y[k, flip] = 1 - Y[k, flip]
        newton = firm.fit_params(Xd, Y, sample_weight=sw)
        # With the third-derivative tensor (logistic) and without it (Anderson-mixed chord steps).
        for third_order in (True, False):
            model = firm.local_model(theta, Xd, ya, sw, third_order=third_order)
            assert (model.tensor is not None) == (third_order and loss == "logistic")
            near = firm.fit_near(Xd, Y, model, sample_weight=sw)
            torch.testing.assert_close(near, newton, rtol=0, atol=1e-9)


def test_predictions_from_loose_retraining_equal_exact_ones_at_the_threshold():
    """Scores placed exactly at (and within 1e-9 of) the threshold: the loose retraining must hand such members
    to exact retraining, so predictions match those of fully converged parameters."""
    from fairflip.collective import make_collective
    from fairflip.firms import LinearFirm

    rng = np.random.default_rng(21)
    n = 200
    a = (rng.random(n) < 0.4).astype(int)
    X = rng.normal(size=(n, 3))
    y = ((X[:, 0] - 0.5 * a + rng.normal(size=n)) > 0).astype(int)
    firm = LinearFirm("logistic", device="cpu")
    members = (a == 1) & (y == 0)
    problem = FlipProblem(X=np.c_[X, a], y=y, a=a, collective=make_collective(y, a, members=members, direction="up"),
                          firm=firm)
    cands = problem.candidates
    sets = [np.sort(rng.choice(cands, k, replace=False)) for k in (1, 2, 3, 4)]
    thetas = problem.fit_flip_sets(sets)
    # Evaluation rows whose scores under each set's exact parameters sit on the threshold or a hair from it.
    rows = []
    for th in thetas:
        for offset in (0.0, 1e-9, -1e-9):
            x = rng.normal(size=4)
            x[-1] = (firm.score_threshold + offset - th[-1] - x[:-1] @ th[:-2]) / th[-2]
            rows.append(x)
    X_eval = np.array(rows)
    loose, last = problem._fit(sets, tol=1e-6)
    _, decided = firm.predict_decided(firm.design(X_eval), loose, last)
    assert not decided.any()  # every member has a row within reach of its last step: all go to exact retraining
    near = np.flatnonzero(np.arange(len(rows)) % 3 != 0)  # the rows 1e-9 away (exact ties are rounding's call)
    exact = firm.predict_many(X_eval, thetas)
    np.testing.assert_array_equal(problem.predictions(sets, X_eval)[:, near], exact[:, near])
    # Far from every threshold, the loose parameters' predictions are kept (and are the exact ones).
    far = rng.normal(size=(50, 4)) * 3
    P, decided = firm.predict_decided(firm.design(far), loose, last)
    np.testing.assert_array_equal(P[decided], firm.predict_many(far, thetas)[decided])
