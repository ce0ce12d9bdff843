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
