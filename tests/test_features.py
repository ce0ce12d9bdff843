"""FeaturePreparer: train statistics, one-hot encoding, the group column and its counterfactual."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fairflip._errors import FairflipError
from fairflip.datasets import Dataset
from fairflip.features import FeaturePreparer


def make_dataset(features: pd.DataFrame, a, numeric, categorical, y=None) -> Dataset:
    n = len(features)
    y = np.arange(n) % 2 if y is None else y
    return Dataset(name="toy", features=features, y=np.asarray(y), a=np.asarray(a), group=np.asarray(a).astype(str),
                   numeric=tuple(numeric), categorical=tuple(categorical))


@pytest.fixture
def toy():
    train = make_dataset(pd.DataFrame({"age": [20.0, 30.0, 40.0, 50.0, 60.0],
                                       "const": [7.0, 7.0, 7.0, 7.0, 7.0],
                                       "color": ["red", "blue", "red", "green", "blue"],
                                       "size": ["S", "L", "L", "S", "S"]}),
                         a=[1, 0, 1, 0, 0], numeric=["age", "const"], categorical=["color", "size"])
    test = make_dataset(pd.DataFrame({"age": [25.0, 80.0], "const": [7.0, 9.0],
                                      "color": ["blue", "purple"], "size": ["L", "S"]}),
                        a=[0, 1], numeric=["age", "const"], categorical=["color", "size"])
    return train, test


def test_hand_computed_design(toy):
    train, test = toy
    prep = FeaturePreparer().fit(train)
    assert prep.feature_names_ == ["age", "const", "color=blue", "color=green", "color=red", "size=L", "size=S",
                                   "minority"]
    assert prep.group_column_ == 7
    mu, sd = 40.0, np.sqrt(200.0)  # population std of 20..60 (ddof = 0), not pandas' ddof = 1
    assert prep.scale_["age"] == pytest.approx(sd) and prep.scale_["age"] != pytest.approx(train.features["age"].std())
    expected_train = np.array([
        [(20 - mu) / sd, 0, 0, 0, 1, 0, 1, 1],
        [(30 - mu) / sd, 0, 1, 0, 0, 1, 0, 0],
        [(40 - mu) / sd, 0, 0, 0, 1, 1, 0, 1],
        [(50 - mu) / sd, 0, 0, 1, 0, 0, 1, 0],
        [(60 - mu) / sd, 0, 1, 0, 0, 0, 1, 0],
    ])
    X = prep.transform(train)
    assert X.dtype == np.float64 and X.flags.c_contiguous
    np.testing.assert_allclose(X, expected_train, atol=1e-15)
    np.testing.assert_allclose(X[:, 0].mean(), 0, atol=1e-15)
    np.testing.assert_allclose(X[:, 0].std(ddof=0), 1, atol=1e-15)
    # the test rows use the training mean/std/categories: unseen 'purple' encodes as zeros, const 9 -> 9 - 7
    expected_test = np.array([
        [(25 - mu) / sd, 0, 1, 0, 0, 1, 0, 0],
        [(80 - mu) / sd, 2, 0, 0, 0, 0, 1, 1],
    ])
    np.testing.assert_allclose(prep.transform(test), expected_test, atol=1e-15)


def test_group_column_counterfactual_and_drop(toy):
    train, test = toy
    prep = FeaturePreparer().fit(train)
    for data in (train, test):
        X = prep.transform(data)
        np.testing.assert_array_equal(X[:, -1], data.a)
        cf = prep.transform(data, counterfactual_group=True)
        np.testing.assert_array_equal(cf[:, -1], 0.0)
        np.testing.assert_array_equal(cf[:, :-1], X[:, :-1])
        dropped = prep.transform(data, drop_group=True)
        np.testing.assert_array_equal(dropped, X[:, :-1])
    no_group = FeaturePreparer(include_group=False).fit(train)
    assert no_group.group_column_ is None and "minority" not in no_group.feature_names_
    Xn = no_group.transform(train)
    np.testing.assert_array_equal(Xn, prep.transform(train, drop_group=True))
    np.testing.assert_array_equal(no_group.transform(train, counterfactual_group=True), Xn)
    assert Xn.shape[1] == len(no_group.feature_names_)


def test_compas_train_statistics_applied_to_test(compas_split):
    train, test = compas_split
    prep = FeaturePreparer()
    X = prep.fit_transform(train)
    Xt = prep.transform(test)
    assert X.shape == (len(train), len(prep.feature_names_)) and Xt.shape[1] == X.shape[1]
    for j, c in enumerate(train.numeric):
        col = train.features[c].to_numpy(dtype=float)
        mean, std = col.mean(), col.std(ddof=0)
        np.testing.assert_allclose(X[:, j], (col - mean) / std, atol=1e-12)
        np.testing.assert_allclose(Xt[:, j], (test.features[c].to_numpy(dtype=float) - mean) / std, atol=1e-12)
    for c in train.categorical:
        cols = [i for i, n in enumerate(prep.feature_names_) if n.startswith(f"{c}=")]
        assert len(cols) == train.features[c].nunique()
        np.testing.assert_array_equal(X[:, cols].sum(1), 1.0)  # exactly one level per row
        assert set(np.unique(Xt[:, cols].sum(1))) <= {0.0, 1.0}
    np.testing.assert_array_equal(Xt[:, -1], test.a)


def test_nan_and_misuse_raise(toy):
    train, test = toy
    feats = train.features.copy()
    feats.loc[2, "age"] = np.nan
    nan_train = make_dataset(feats, a=train.a, numeric=["age", "const"], categorical=["color", "size"])
    with pytest.raises(FairflipError, match="'age'.*NaN"):
        FeaturePreparer().fit(nan_train)
    prep = FeaturePreparer().fit(train)
    with pytest.raises(FairflipError, match="age.*NaN"):
        prep.transform(nan_train)
    # a missing category is rejected too (pandas' string dtype keeps it missing), at fit and at transform
    cat = train.features.copy()
    cat.loc[1, "color"] = np.nan
    cat_nan = make_dataset(cat, a=train.a, numeric=["age", "const"], categorical=["color", "size"])
    with pytest.raises(FairflipError, match="'color'.*NaN"):
        FeaturePreparer().fit(cat_nan)
    with pytest.raises(FairflipError, match="color.*NaN"):
        prep.transform(cat_nan)
    with pytest.raises(FairflipError, match="fitted"):
        FeaturePreparer().transform(train)
    short = make_dataset(test.features.drop(columns=["size"]), a=test.a, numeric=["age", "const"],
                         categorical=["color"])
    with pytest.raises(FairflipError, match="size"):
        prep.transform(short)


def test_high_cardinality_refused_or_sparse_and_memory_checked(monkeypatch):
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    n, levels = 3000, 1500
    feats = pd.DataFrame({"x": rng.normal(size=n), "id": [f"u{i % levels}" for i in range(n)],
                          "c": rng.choice(["p", "q", "r"], n)})
    data = make_dataset(feats, a=(np.arange(n) % 4 == 0).astype(int), numeric=["x"], categorical=["id", "c"])
    with pytest.raises(FairflipError, match=r"categorical feature 'id' has 1,500 distinct values, more than "
                                            r"max_categories=1,000"):
        FeaturePreparer().fit(data)
    prep = FeaturePreparer(max_categories=2000).fit(data)
    sparse = prep.transform_sparse(data)
    assert sp.issparse(sparse) and sparse.shape == (n, 1 + levels + 3 + 1)
    assert sparse.nnz <= n * 4  # x, one id, one c, the group: never n x levels
    dense = prep.transform(data)
    np.testing.assert_array_equal(sparse.toarray(), dense)
    np.testing.assert_array_equal(prep.transform_sparse(data, counterfactual_group=True).toarray(),
                                  prep.transform(data, counterfactual_group=True))
    np.testing.assert_array_equal(prep.transform_sparse(data, drop_group=True).toarray(),
                                  prep.transform(data, drop_group=True))
    # the dense matrix is refused before allocation when it cannot fit
    monkeypatch.setenv("FAIRFLIP_MAX_MEMORY", "10M")
    with pytest.raises(FairflipError, match=r"the design matrix \(3,000 x 1,505 float64\) needs about"):
        prep.transform(data)
    assert prep.transform_sparse(data).shape == sparse.shape  # the sparse one still fits
    with pytest.raises(FairflipError, match="max_categories"):
        FeaturePreparer(max_categories=0).fit(data)


def test_extreme_and_non_numeric_values_without_numpy_warnings():
    import warnings

    big = np.array([1e308, -1e308, 0.0, 5e307, -2.5e307, 1.0])
    feats = pd.DataFrame({"big": big, "tiny": big * 1e-300, "c": list("abcabc")})
    data = make_dataset(feats, a=[0, 1, 0, 1, 0, 0], numeric=["big", "tiny"], categorical=["c"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any RuntimeWarning (overflow, invalid) fails the test
        prep = FeaturePreparer().fit(data)
        X = prep.transform(data)
    # standardising is scale invariant: the same as standardising big / 1e308 in ordinary float range
    ref = big / 1e308
    np.testing.assert_allclose(X[:, 0], (ref - ref.mean()) / ref.std(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(X[:, 1], (ref - ref.mean()) / ref.std(), rtol=1e-9, atol=1e-9)
    # a test row far outside the training scale: one clear error, no warning
    small = make_dataset(pd.DataFrame({"v": [0.0, 1e-3, 2e-3, 3e-3], "c": list("abab")}), a=[0, 1, 0, 1],
                         numeric=["v"], categorical=["c"])
    far = make_dataset(pd.DataFrame({"v": [1.7e308, 0.0], "c": list("ab")}), a=[0, 1], numeric=["v"],
                       categorical=["c"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fitted = FeaturePreparer().fit(small)
        with pytest.raises(FairflipError, match="feature 'v' holds values too large"):
            fitted.transform(far)
        # text, inf and NaN in a numeric column of a test table: errors naming the column
        for values, fragment in [([1.0, "abc"], r"missing or non-numeric value\(s\) such as \['abc'\]"),
                                 ([1.0, np.inf], "infinite"), ([np.nan, 1.0], "NaN")]:
            bad = make_dataset(pd.DataFrame({"v": values, "c": list("ab")}), a=[0, 1], numeric=["v"],
                               categorical=["c"])
            with pytest.raises(FairflipError, match=f"numeric feature 'v' has 1 {fragment}"):
                fitted.transform(bad)
