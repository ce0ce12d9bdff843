"""Linear firms against scikit-learn, scipy and torch.autograd; sklearn firms; bad inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from threadpoolctl import threadpool_limits

from fairflip._errors import FairflipError
from fairflip.features import FeaturePreparer
from fairflip.firms import LinearFirm, LinearModel, get_loss, make_firm

LINEAR_LOSSES = ("logistic", "squared", "smoothed-hinge")


def make_data(seed: int, n: int = 240, d: int = 5, scale: float = 1.0):
    """Gaussian features (not standardised, shifted) and noisy linear labels."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 3.0, size=d) + rng.normal(size=d)
    y = ((X - X.mean(0)) @ rng.normal(size=d) * scale + rng.normal(size=n) > 0).astype(np.int64)
    return X, y


def np_objective(firm: LinearFirm, X, y, sw=None):
    """J(theta) and its gradient as numpy functions (for scipy), built on the firm's own torch objective."""
    Xd = firm.design(X)
    Y = torch.as_tensor(y, dtype=torch.float64)[None]
    swt = None if sw is None else torch.as_tensor(sw, dtype=torch.float64)

    def fun(theta):
        th = torch.as_tensor(theta, dtype=torch.float64)[None]
        return float(firm.objective(th, Xd, Y, swt)[0]), firm.gradient(th, Xd, Y, swt)[0].numpy()

    return fun


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("C", [0.05, 1.0, 20.0])
def test_logistic_equals_sklearn(seed, C):
    X, y = make_data(seed)
    m = LinearFirm("logistic", C=C).fit(X, y)
    for solver, tol in (("lbfgs", 1e-6), ("newton-cholesky", 1e-9)):
        sk = LogisticRegression(C=C, tol=1e-12, max_iter=100_000, solver=solver).fit(X, y)
        np.testing.assert_allclose(m.coef, sk.coef_.ravel(), atol=tol, rtol=0)
        assert m.intercept == pytest.approx(sk.intercept_[0], abs=tol)
        np.testing.assert_array_equal(m.predict(X), sk.predict(X))
    np.testing.assert_allclose(m.predict_proba(X), sk.predict_proba(X)[:, 1], atol=1e-9)


def test_logistic_equals_sklearn_on_compas(compas_split):
    train, test = compas_split
    prep = FeaturePreparer().fit(train)
    X, Xt = prep.transform(train), prep.transform(test)
    m = make_firm("logistic").fit(X, train.y)
    sk = LogisticRegression(C=1.0, tol=1e-12, max_iter=100_000).fit(X, train.y)
    np.testing.assert_allclose(m.coef, sk.coef_.ravel(), atol=1e-6, rtol=0)
    assert m.intercept == pytest.approx(sk.intercept_[0], abs=1e-6)
    np.testing.assert_array_equal(m.predict(Xt), sk.predict(Xt))


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("C", [0.01, 1.0, 50.0])
def test_ridge_equals_sklearn(seed, C):
    X, y = make_data(seed)
    sw = np.random.default_rng(seed).uniform(0.2, 2.0, size=len(y))
    firm = make_firm("ridge", C=C)
    for weights in (None, sw):
        m = firm.fit(X, y, sample_weight=weights)
        sk = RidgeClassifier(alpha=1.0 / C).fit(X, y, sample_weight=weights)
        np.testing.assert_allclose(m.coef, np.ravel(sk.coef_), atol=1e-9, rtol=0)
        assert m.intercept == pytest.approx(np.ravel(sk.intercept_)[0], abs=1e-9)
        np.testing.assert_array_equal(m.predict(X), sk.predict(X))


@pytest.mark.parametrize("seed,C,scale", [(0, 1.0, 1.0), (1, 0.1, 1.0), (2, 30.0, 1.0), (3, 10.0, 20.0),
                                          (4, 1e3, 1e3)])
def test_smoothed_hinge_optimum(seed, C, scale):
    X, y = make_data(seed, scale=scale)
    firm = LinearFirm("smoothed-hinge", C=C, device="cpu")
    Xd = firm.design(X)
    Y = torch.as_tensor(y, dtype=torch.float64)
    theta = firm.fit_params(Xd, Y)
    g = firm.gradient(theta[None], Xd, Y[None])[0]
    assert float(g.abs().max()) < 1e-8 * max(1.0, C)
    fun = np_objective(firm, X, y)
    ref = minimize(fun, np.zeros(X.shape[1] + 1), jac=True, method="L-BFGS-B",
                   options=dict(maxiter=20_000, ftol=1e-15, gtol=1e-11))
    ours = fun(theta.numpy())[0]
    assert ours <= ref.fun + 1e-10 * abs(ref.fun)
    assert ours == pytest.approx(ref.fun, rel=1e-8)
    np.testing.assert_allclose(theta.numpy(), ref.x, atol=1e-4)


@pytest.mark.parametrize("loss", LINEAR_LOSSES)
@pytest.mark.parametrize("C", [100.0, 1e4, 1e6])
def test_newton_converges_when_weakly_regularised(loss, C, compas_split):
    # separable data and COMPAS with a large C: the smoothed hinge used to stop far from its optimum here
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    train = compas_split[0]
    for X, y in ((X, (X[:, 0] > 0).astype(float)), (FeaturePreparer().fit_transform(train), train.y)):
        firm = LinearFirm(loss, C=C, device="cpu")
        Xd = firm.design(X)
        Y = torch.as_tensor(np.stack([y, rng.random(len(y))]))
        theta = firm.fit_params(Xd, Y)
        assert float(firm.gradient(theta, Xd, Y).abs().max()) < 1e-7 * C


@pytest.mark.parametrize("loss", LINEAR_LOSSES)
def test_fit_many_equals_separate_fits(loss):
    X, y = make_data(4, n=150)
    rng = np.random.default_rng(9)
    Y = np.stack([y, 1 - y, rng.random(len(y)), (rng.random(len(y)) < 0.3).astype(float), np.full(len(y), 0.5)])
    firm = LinearFirm(loss, C=2.0)
    thetas = firm.fit_many(X, Y)
    assert thetas.shape == (5, X.shape[1] + 1)
    for k in range(len(Y)):
        single = firm.fit_many(X, Y[k:k + 1])[0]
        np.testing.assert_allclose(thetas[k], single, atol=1e-9)
    hard = firm.fit(X, y)
    np.testing.assert_allclose(np.r_[hard.coef, hard.intercept], thetas[0], atol=1e-9)
    np.testing.assert_array_equal(firm.predict_many(X, thetas)[0], hard.predict(X))


@pytest.mark.parametrize("loss", LINEAR_LOSSES)
def test_gradient_and_hessian_match_autograd(loss):
    rng = np.random.default_rng(3)
    n, p, K = 40, 4, 3
    firm = LinearFirm(loss, C=0.7, device="cpu")
    Xd = firm.design(rng.normal(size=(n, p - 1)))
    Y = torch.as_tensor(rng.random((K, n)))
    sw = torch.as_tensor(rng.uniform(0.5, 2.0, n))
    theta = torch.as_tensor(rng.normal(size=(K, p)))
    for weights in (None, sw):
        th = theta.clone().requires_grad_(True)
        J = firm.objective(th, Xd, Y, weights)
        (g_auto,) = torch.autograd.grad(J.sum(), th)
        torch.testing.assert_close(firm.gradient(theta, Xd, Y, weights), g_auto, atol=1e-11, rtol=1e-11)
        H_auto = torch.stack([torch.autograd.functional.hessian(
            lambda t, k=k: firm.objective(t[None], Xd, Y[k:k + 1], weights)[0], theta[k]) for k in range(K)])
        torch.testing.assert_close(firm.hessian(theta, Xd, Y, weights), H_auto, atol=1e-10, rtol=1e-10)
    # chunked assembly of the batch gives the same Hessian
    tiny = LinearFirm(loss, C=0.7, memory_budget=1, device="cpu")
    torch.testing.assert_close(tiny.hessian(theta, Xd, Y), firm.hessian(theta, Xd, Y), atol=0, rtol=0)


@pytest.mark.parametrize("loss", LINEAR_LOSSES)
def test_loss_derivatives_match_autograd(loss):
    rng = np.random.default_rng(5)
    ml = get_loss(loss)
    # keep scores off the smoothed hinge's kinks at 0 and +-1
    f = torch.as_tensor(rng.uniform(-3, 3, 200))
    f = f[(f.abs() - 1).abs().gt(1e-3) & f.abs().gt(1e-3)].requires_grad_(True)
    y = torch.as_tensor(rng.random(len(f))).requires_grad_(True)
    (d1,) = torch.autograd.grad(ml.value(f, y).sum(), f, create_graph=True)
    torch.testing.assert_close(ml.d1(f, y), d1)
    (d2,) = torch.autograd.grad(d1.sum(), f, retain_graph=True)
    torch.testing.assert_close(ml.d2(f, y), d2)
    (dy,) = torch.autograd.grad(d1.sum(), y)
    torch.testing.assert_close(ml.dy_d1(f.detach()), dy)
    # interpolation between the two hard-label losses (the squared loss only up to a term free of f)
    with torch.no_grad():
        mix = y * ml.value(f, torch.ones_like(f)) + (1 - y) * ml.value(f, torch.zeros_like(f))
        offset = 0.5 - 0.5 * (2 * y - 1) ** 2 if loss == "squared" else torch.zeros_like(y)
        torch.testing.assert_close(ml.value(f, y), mix - offset)


@pytest.mark.parametrize("loss", LINEAR_LOSSES)
def test_sample_weight_equals_duplicated_rows(loss):
    X, y = make_data(6, n=120)
    counts = np.random.default_rng(2).integers(0, 4, size=len(y))
    firm = LinearFirm(loss, C=1.5)
    weighted = firm.fit(X, y, sample_weight=counts.astype(float))
    rows = np.repeat(np.arange(len(y)), counts)
    dup = firm.fit(X[rows], y[rows])
    np.testing.assert_allclose(weighted.coef, dup.coef, atol=1e-9)
    assert weighted.intercept == pytest.approx(dup.intercept, abs=1e-9)


def test_soft_labels_and_warm_start():
    X, y = make_data(8, n=100)
    firm = LinearFirm("logistic", device="cpu")
    Xd = firm.design(X)
    Y = torch.as_tensor(np.random.default_rng(1).random(len(y)))
    cold = firm.fit_params(Xd, Y)
    assert cold.shape == (X.shape[1] + 1,)
    warm = firm.fit_params(Xd, Y, init=cold + 0.3)
    torch.testing.assert_close(warm, cold, atol=1e-10, rtol=0)
    g = firm.gradient(cold[None], Xd, Y[None])
    assert float(g.abs().max()) < 1e-9


def test_predict_threshold():
    X, y = make_data(10)
    for thr in (0.5, 0.2, 0.8):
        firm = LinearFirm("logistic", threshold=thr)
        m = firm.fit(X, y)
        assert m.score_threshold == pytest.approx(math.log(thr / (1 - thr)))
        proba = m.predict_proba(X)
        np.testing.assert_array_equal(m.predict(X), (proba > thr).astype(int))
        thetas = np.r_[m.coef, m.intercept][None]
        np.testing.assert_array_equal(firm.predict_many(X, thetas)[0], m.predict(X))
    # a score exactly at the threshold predicts 0 (strict inequality), like sklearn's decision_function > 0
    model = LinearModel(coef=np.array([1.0, -1.0]), intercept=0.0, score_threshold=0.0, loss="squared")
    np.testing.assert_array_equal(model.predict(np.array([[1.0, 1.0], [1.0, 0.5], [0.5, 1.0]])), [0, 1, 0])
    assert model.predict(np.zeros((1, 2))).dtype == np.int64
    with pytest.raises(FairflipError, match="no probabilities"):
        model.predict_proba(np.zeros((1, 2)))
    for loss in ("squared", "smoothed-hinge"):
        assert LinearFirm(loss, threshold=0.9).score_threshold == 0.0


def test_bad_inputs_raise():
    X, y = make_data(0, n=30)
    firm = LinearFirm()
    Xn = X.copy()
    Xn[3, 1] = np.nan
    cases = [
        lambda: firm.fit(Xn, y),
        lambda: firm.fit(np.where(np.isnan(Xn), np.inf, Xn), y),
        lambda: firm.fit(X[:, 0], y),
        lambda: firm.fit(X[None], y),
        lambda: firm.fit(X, y[:-1]),
        lambda: firm.fit(X, y + 1),
        lambda: firm.fit(X, y, sample_weight=-np.ones(len(y))),
        lambda: firm.fit(X, y, sample_weight=np.ones(len(y) + 1)),
        lambda: firm.fit(X, y, sample_weight=np.full(len(y), np.nan)),
        lambda: firm.fit_many(X, y),
        lambda: firm.fit_many(X, np.where(np.arange(len(y)) == 2, np.nan, y)[None]),
        lambda: firm.fit_many(X, 2.0 * y[None]),
        lambda: LinearFirm(C=0.0),
        lambda: LinearFirm(C=-1.0),
        lambda: LinearFirm(C=float("nan")),
        lambda: LinearFirm(C=float("inf")),
        lambda: LinearFirm("hinge"),
        lambda: LinearFirm(threshold=1.0),
        lambda: make_firm("svm"),
    ]
    for case in cases:
        with pytest.raises(FairflipError):
            case()


def test_make_firm_defaults():
    assert make_firm("logistic").loss == "logistic" and make_firm("logistic").C == 1.0
    assert make_firm("ridge", C=3.0).C == 3.0 and make_firm("ridge").loss == "squared"
    assert make_firm("smoothed-hinge").name == "smoothed-hinge"
    assert make_firm("ridge").name == "ridge"


@pytest.mark.parametrize("name", ["mlp", "gbdt"])
def test_sklearn_firms_fit_predict(name):
    X, y = make_data(11, n=400, scale=3.0)
    firm = make_firm(name, seed=0)
    assert firm.name == name
    # OpenMP threads spinning on a busy machine make gradient boosting many times slower; one is plenty here
    with threadpool_limits(1):
        model = firm.fit(X, y)
        # each fit clones a fresh estimator with the same seed: a refit reproduces the model exactly
        again = firm.fit(X, y)
    assert again.estimator is not model.estimator
    pred = model.predict(X)
    assert pred.shape == (len(y),) and pred.dtype == np.int64 and set(np.unique(pred)) <= {0, 1}
    assert np.mean(pred == y) > 0.8
    np.testing.assert_array_equal(again.predict(X), pred)
    score = model.decision_function(X)
    assert score.shape == (len(y),)
    clear = np.abs(score) > 1e-9
    np.testing.assert_array_equal(pred[clear], (score > 0)[clear])
    with pytest.raises(FairflipError):
        firm.fit(X, y + 2)
