"""Tests of the dataset layer: shipped loaders, data-home loaders, ACS, user tables, splits, synthetic SCMs."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import sys
import urllib.request
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from fairflip._errors import FairflipError
from fairflip.datasets import (
    _files, acs, available, homed, load, load_acs_income, load_adult, load_bank, load_celeba, load_compas,
    load_crime, load_dutch, load_german, load_kdd, load_law, load_table, make_causal, make_toy_2d,
    stratified_split,
)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _check_dataset(d, rows):
    assert len(d) == rows and len(d.y) == rows and len(d.a) == rows
    assert set(np.unique(d.y)) <= {0, 1} and set(np.unique(d.a)) == {0, 1}
    num = d.features[list(d.numeric)]
    assert all(num[c].dtype == np.float64 for c in num)
    assert not num.isna().any().any()
    for col in d.minority:
        assert col not in d.features.columns


# ---------------------------------------------------------------------------------------------- shipped loaders
@pytest.fixture(scope="module")
def compas():
    return load_compas()


def test_compas_shape_and_labels(compas):
    _check_dataset(compas, 5278)
    assert compas.minority == {"race": "African-American"}
    assert compas.label_name == "two_year_recid"
    assert compas.provenance.sha256


def test_adult_shape():
    d = load_adult()
    _check_dataset(d, 48842)
    assert d.minority == {"sex": "Female"}
    assert 0.2 < d.y.mean() < 0.3


def test_german_shape():
    d = load_german()
    _check_dataset(d, 1000)
    assert d.y.mean() == pytest.approx(0.7)


def test_intersectional_minority_on_shipped(compas):
    d = load_compas(minority={"race": "African-American", "sex": "Female"})
    assert 0 < d.a.sum() < compas.a.sum()
    assert "sex" not in d.features.columns


def test_embedded_sha256_rejects_corrupted_copy(tmp_path, monkeypatch):
    real = _files.embedded_path("german.data.gz")
    (tmp_path / "data").mkdir()
    bad = tmp_path / "data" / "german.data.gz"
    shutil.copy(real, bad)
    with open(bad, "r+b") as fh:
        fh.seek(100)
        fh.write(b"\x00\x01\x02")
    monkeypatch.setattr(_files, "resources", SimpleNamespace(files=lambda package: tmp_path))
    with pytest.raises(FairflipError, match="corrupt"):
        load_german()
    bad.unlink()
    with pytest.raises(FairflipError, match="missing"):
        load_german()


# ---------------------------------------------------------------------------------------------- splits
def test_stratified_split_deterministic_and_stratified(compas):
    tr1, te1 = stratified_split(compas, test_size=0.3, seed=7)
    tr2, te2 = stratified_split(compas, test_size=0.3, seed=7)
    pd.testing.assert_frame_equal(te1.features, te2.features)
    np.testing.assert_array_equal(te1.y, te2.y)
    assert len(tr1) + len(te1) == len(compas)
    _, te3 = stratified_split(compas, test_size=0.3, seed=8)
    assert not te3.features.equals(te1.features)
    for a in (0, 1):
        for y in (0, 1):
            total = np.sum((compas.a == a) & (compas.y == y))
            in_test = np.sum((te1.a == a) & (te1.y == y))
            assert abs(in_test - 0.3 * total) <= 1.0


def test_stratified_split_bad_inputs(compas):
    with pytest.raises(FairflipError, match="test_size"):
        stratified_split(compas, test_size=1.5)
    with pytest.raises(FairflipError, match="test_size"):
        stratified_split(compas, test_size=0.0)


# ---------------------------------------------------------------------------------------------- user tables
def _user_frame():
    rng = np.random.default_rng(0)
    n = 60
    return pd.DataFrame({
        "score": rng.normal(size=n),
        "count": rng.integers(0, 5, size=n),
        "race": np.tile(["Black", "White", "Asian"], n // 3),
        "sex": np.repeat(["Female", "Male"], n // 2),
        "hired": rng.integers(0, 2, size=n),
        "outcome": np.tile(["yes", "no"], n // 2),
    })


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_load_table_csv_and_parquet(tmp_path, suffix):
    frame = _user_frame()
    path = tmp_path / f"users{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path, index=False)
    d = load_table(path, label="hired", minority={"race": "Black", "sex": "Female"})
    expected = ((frame.race == "Black") & (frame.sex == "Female")).to_numpy()
    np.testing.assert_array_equal(d.a, expected.astype(int))
    np.testing.assert_array_equal(d.y, frame.hired.to_numpy())
    assert d.name == "users" and set(d.features.columns) == {"score", "count", "outcome"}
    assert d.group[0] == "race=Black&sex=Female"
    d2 = load_table(path, label="outcome", positive="yes", minority={"sex": "Female"})
    np.testing.assert_array_equal(d2.y, (frame.outcome == "yes").astype(int).to_numpy())


def test_load_table_bad_inputs(tmp_path):
    path = tmp_path / "users.csv"
    _user_frame().to_csv(path, index=False)
    with pytest.raises(FairflipError, match="label column 'income' not found"):
        load_table(path, label="income", minority={"sex": "Female"})
    with pytest.raises(FairflipError, match="group column 'gender' not found"):
        load_table(path, label="hired", minority={"gender": "Female"})
    with pytest.raises(FairflipError, match="not binary"):
        load_table(path, label="count", minority={"sex": "Female"})
    with pytest.raises(FairflipError, match="minority value 'Other' not found in column 'sex'"):
        load_table(path, label="hired", minority={"sex": "Other"})
    with pytest.raises(FairflipError, match="file not found"):
        load_table(tmp_path / "absent.csv", label="hired", minority={"sex": "Female"})


# ---------------------------------------------------------------------------------------------- data-home loaders
def _write_gz(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", newline="") as fh:
        fh.write(text)


def _bank_frame(n=40):
    rng = np.random.default_rng(1)
    return pd.DataFrame({
        "age": np.arange(n) % 40 + 18, "job": rng.choice(["admin.", "technician"], n),
        "marital": rng.choice(["married", "single"], n), "education": rng.choice(["primary", "tertiary"], n),
        "default": "no", "balance": rng.integers(-100, 3000, n), "housing": rng.choice(["yes", "no"], n),
        "loan": "no", "contact": "unknown", "day": rng.integers(1, 28, n), "month": "may",
        "duration": rng.integers(10, 900, n), "campaign": 1, "pdays": -1, "previous": 0, "poutcome": "unknown",
        "y": np.tile(["no", "yes"], n // 2),
    })


def _dutch_frame(n=40):
    rng = np.random.default_rng(2)
    return pd.DataFrame({
        "sex": np.tile(["male", "female"], n // 2), "age": rng.integers(4, 16, n),
        "household_position": rng.choice([1110, 1121, 1131], n), "household_size": rng.choice([111, 112], n),
        "prev_residence_place": rng.choice([1, 2], n), "citizenship": 1, "country_birth": rng.choice([1, 2], n),
        "edu_level": rng.integers(0, 6, n), "economic_status": 111, "cur_eco_activity": rng.choice([111, 135], n),
        "marital_status": rng.choice([1, 2], n), "occupation": np.repeat([0, 1], n // 2),
    })


def _law_frame(n=40):
    rng = np.random.default_rng(3)
    return pd.DataFrame({
        "decile1b": rng.integers(1, 11, n).astype(float), "decile3": rng.integers(1, 11, n).astype(float),
        "lsat": rng.integers(20, 48, n).astype(float), "ugpa": rng.uniform(2, 4, n).round(1),
        "zfygpa": rng.normal(size=n).round(2), "zgpa": rng.normal(size=n).round(2), "fulltime": 1.0,
        "fam_inc": rng.integers(1, 6, n).astype(float), "male": np.tile([0.0, 1.0], n // 2),
        "tier": rng.integers(1, 7, n).astype(float), "race": np.tile(["White", "White", "Non-White", "White"], n // 4),
        "pass_bar": np.repeat([1.0, 0.0], n // 2),
    })


def _crime_frame(n=40):
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"state": rng.integers(1, 50, n), "communityname": [f"Town{i}city" for i in range(n)],
                          "fold": np.arange(n) % 10 + 1, "population": rng.uniform(0, 1, n).round(2),
                          "racepctblack": np.tile([0.01, 0.05, 0.06, 0.4], n // 4),
                          "racePctWhite": rng.uniform(0, 1, n).round(2),
                          "OtherPerCap": np.where(np.arange(n) == 3, "?", "0.3"),
                          "ViolentCrimesPerPop": np.tile([0.1, 0.7, 0.69, 0.9, 0.2], n // 5)})
    frame["Black"] = (frame.racepctblack >= 0.06).astype(int)
    frame["class"] = (frame.ViolentCrimesPerPop >= 0.7).astype(int)
    return frame


def _celeba_frame(n=40):
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"filename": [f"{i:06d}.jpg" for i in range(1, n + 1)]})
    for col in ("Attractive", "Male", "Smiling", "Young"):
        frame[col] = rng.choice([-1, 1], n)
    frame.loc[:1, "Male"] = [1, -1]
    frame.loc[:1, "Attractive"] = [1, -1]
    return frame


def _kdd_text(n, start=0):
    rng = np.random.default_rng(6 + start)
    lines = []
    for i in range(n):
        row = ["0"] * 42
        row[0] = str(20 + (i % 50))
        for j in range(42):
            if homed.KDD_COLUMNS[j] not in homed.KDD_NUMERIC and j != 0:
                row[j] = rng.choice(["Not in universe", "?", "Some value"])
        row[12] = ["Female", "Male"][i % 2]
        row[10] = ["White", "Black"][(i // 2) % 2]
        row[24] = f"{rng.uniform(100, 3000):.2f}"
        row[41] = ["- 50000.", "50000+."][(i // 3) % 2]
        lines.append(", ".join(row))
    return "\n".join(lines) + "\n"


def _populate_home(home: Path) -> None:
    _write_gz(home / "bank-full.csv.gz", _bank_frame().to_csv(index=False))
    _write_gz(home / "dutch.csv.gz", _dutch_frame().to_csv(index=False))
    _write_gz(home / "law_school_clean.csv.gz", _law_frame().to_csv(index=False))
    _write_gz(home / "communities_crime.csv.gz", _crime_frame().to_csv(index=False))
    _write_gz(home / "celeba.csv.gz", _celeba_frame().to_csv(index=False))
    _write_gz(home / "kdd_census_income_train.csv.gz", _kdd_text(30))
    _write_gz(home / "kdd_census_income_test.csv.gz", _kdd_text(12, start=1))


@pytest.fixture()
def home(tmp_path):
    root = tmp_path / "home"
    _populate_home(root)
    return root


def test_bank_loader(home):
    d = load_bank(home=home, verify=False)
    _check_dataset(d, 40)
    raw = _bank_frame()
    np.testing.assert_array_equal(d.a, (raw.age < 25).astype(int))
    np.testing.assert_array_equal(d.y, (raw.y == "yes").astype(int))
    assert "age" in d.features.columns and "age_group" not in d.features.columns
    assert d.features.shape[1] == 16
    d2 = load_bank(home=home, verify=False, minority={"marital": "single", "age_group": "<25"})
    assert "marital" not in d2.features.columns and d2.a.sum() <= d.a.sum()


def test_dutch_loader(home):
    d = load_dutch(home=home, verify=False)
    _check_dataset(d, 40)
    raw = _dutch_frame()
    np.testing.assert_array_equal(d.a, (raw.sex == "female").astype(int))
    np.testing.assert_array_equal(d.y, raw.occupation)
    assert set(d.numeric) == {"age", "edu_level"} and "marital_status" in d.categorical


def test_law_loader(home):
    d = load_law(home=home, verify=False)
    _check_dataset(d, 40)
    raw = _law_frame()
    np.testing.assert_array_equal(d.a, (raw.race != "White").astype(int))
    np.testing.assert_array_equal(d.y, raw.pass_bar.astype(int))
    assert "race" not in d.features.columns
    d2 = load_law(home=home, verify=False, minority={"male": 0})
    np.testing.assert_array_equal(d2.a, (raw.male == 0).astype(int))
    assert "race" in d2.categorical


def test_crime_loader(home):
    d = load_crime(home=home, verify=False)
    _check_dataset(d, 40)
    raw = _crime_frame()
    np.testing.assert_array_equal(d.a, raw.Black)
    np.testing.assert_array_equal(d.y, raw["class"])
    assert set(d.features.columns) == {"population", "racePctWhite"}  # ids, '?' column, racepctblack dropped
    d2 = load_crime(home=home, verify=False, group_threshold=0.3, label_threshold=0.8)
    np.testing.assert_array_equal(d2.a, (raw.racepctblack >= 0.3).astype(int))
    np.testing.assert_array_equal(d2.y, (raw.ViolentCrimesPerPop >= 0.8).astype(int))
    with pytest.raises(FairflipError, match="label_threshold"):
        load_crime(home=home, verify=False, label_threshold=2.0)


def test_celeba_loader(home):
    d = load_celeba(home=home, verify=False)
    _check_dataset(d, 40)
    raw = _celeba_frame()
    np.testing.assert_array_equal(d.a, (raw.Male == 1).astype(int))
    np.testing.assert_array_equal(d.y, (raw.Attractive == 1).astype(int))
    assert set(d.features.columns) == {"Smiling", "Young"}
    assert set(np.unique(d.features.to_numpy())) <= {0.0, 1.0}
    d2 = load_celeba(home=home, verify=False, label="Smiling", minority={"Male": 0})
    np.testing.assert_array_equal(d2.y, (raw.Smiling == 1).astype(int))
    with pytest.raises(FairflipError, match="Bald"):
        load_celeba(home=home, verify=False, label="Bald")
    with pytest.raises(FairflipError, match="cannot also define the minority"):
        load_celeba(home=home, verify=False, label="Male", minority={"Male": 1})


def test_kdd_loader(home):
    d = load_kdd(home=home, verify=False)
    _check_dataset(d, 42)
    assert d.features.shape[1] == 39 and "instance_weight" not in d.features.columns
    assert d.a.sum() == 21 and d.y.sum() == 21
    assert set(d.numeric) == set(homed.KDD_NUMERIC) - {"instance_weight"}
    assert not any(v.startswith(" ") for v in d.features["class_of_worker"])
    d2 = load_kdd(home=home, verify=False, minority={"race": "Black", "sex": "Female"})
    assert 0 < d2.a.sum() < d.a.sum()


@pytest.mark.parametrize("loader", [load_bank, load_dutch, load_law, load_crime, load_celeba, load_kdd])
def test_data_home_verify_rejects_other_copy(home, loader):
    with pytest.raises(FairflipError, match="verify=False"):
        loader(home=home)


def test_data_home_content_digest_accepts_recompressed_copy(home, monkeypatch):
    content = gzip.decompress((home / "law_school_clean.csv.gz").read_bytes())
    spec = replace(homed.FILES["law"], content_sha256=hashlib.sha256(content).hexdigest())
    monkeypatch.setitem(homed.FILES, "law", spec)
    assert len(load_law(home=home)) == 40
    spec = replace(spec, sha256=_files.sha256_of(home / "law_school_clean.csv.gz"), content_sha256="0" * 64)
    monkeypatch.setitem(homed.FILES, "law", spec)
    assert len(load_law(home=home)) == 40


@pytest.mark.parametrize("loader", [load_bank, load_dutch, load_law, load_crime, load_celeba, load_kdd])
def test_data_home_missing_file(tmp_path, loader):
    with pytest.raises(FairflipError, match="FAIRFLIP_DATA"):
        loader(home=tmp_path / "empty", download=False)


def test_data_home_from_environment(home, monkeypatch):
    monkeypatch.setenv("FAIRFLIP_DATA", str(home))
    assert len(load_dutch(verify=False)) == 40
    assert len(load("dutch", verify=False)) == 40


def test_celeba_missing_explains_where_to_get_it(tmp_path):
    with pytest.raises(FairflipError, match="list_attr_celeba"):
        load_celeba(home=tmp_path, download=True)


class _FakeResponse(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def test_survey_download_is_gzipped_and_verified(tmp_path, monkeypatch):
    text = _law_frame().to_csv(index=False).encode()
    seen = []

    def fake_urlopen(url, timeout=None):
        seen.append(url)
        return _FakeResponse(text)

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    spec = replace(homed.FILES["law"], content_sha256=hashlib.sha256(text).hexdigest())
    monkeypatch.setitem(homed.FILES, "law", spec)
    d = load_law(home=tmp_path)
    assert len(d) == 40 and seen == [spec.url]
    assert spec.url.startswith("https://raw.githubusercontent.com/tailequy/fairness_dataset/")
    assert gzip.decompress((tmp_path / "law_school_clean.csv.gz").read_bytes()) == text


def test_download_failure_is_reported(tmp_path, monkeypatch):
    def failing(url, timeout=None):
        raise OSError("network unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", failing)
    with pytest.raises(FairflipError, match="could not download"):
        load_dutch(home=tmp_path)
    with pytest.raises(FairflipError, match="could not download"):
        load_kdd(home=tmp_path)
    assert not list(tmp_path.iterdir())


def test_bad_file_contents(tmp_path):
    _write_gz(tmp_path / "dutch.csv.gz", "a,b\n1,2\n")
    with pytest.raises(FairflipError, match="lacks the column"):
        load_dutch(home=tmp_path, verify=False)
    frame = _celeba_frame()
    frame.loc[0, "Young"] = 0
    _write_gz(tmp_path / "celeba.csv.gz", frame.to_csv(index=False))
    with pytest.raises(FairflipError, match="-1/1"):
        load_celeba(home=tmp_path, verify=False)


# ---------------------------------------------------------------------------------------------- ACS-Income
def _pums_frame(n=200):
    rng = np.random.default_rng(8)
    return pd.DataFrame({
        "RT": "P", "SERIALNO": [f"2018GQ{i:07d}" for i in range(n)], "ST": 6,
        "AGEP": rng.integers(10, 80, n), "COW": np.where(rng.random(n) < 0.1, np.nan, rng.integers(1, 9, n)),
        "SCHL": rng.integers(1, 25, n), "MAR": rng.integers(1, 6, n),
        "OCCP": rng.choice([10, 2310, 4020, 9130], n).astype(float), "POBP": rng.choice([6, 36, 210], n),
        "RELP": rng.integers(0, 18, n), "WKHP": np.where(rng.random(n) < 0.2, np.nan, rng.integers(1, 60, n)),
        "SEX": rng.integers(1, 3, n), "RAC1P": rng.choice([1, 1, 2, 6, 8], n),
        "PINCP": rng.choice([-500, 50, 30000, 50000, 50001, 120000], n).astype(float),
        "PWGTP": rng.choice([0, 5, 40], n),
    })


def _acs_expected(raw):
    keep = (raw.AGEP > 16) & (raw.PINCP > 100) & (raw.WKHP > 0) & (raw.PWGTP >= 1)
    return raw.loc[keep].reset_index(drop=True)


def test_acs_from_csv(tmp_path):
    raw = _pums_frame()
    path = tmp_path / "psam_p06.csv"
    raw.to_csv(path, index=False)
    d = load_acs_income(csv=path)
    kept = _acs_expected(raw)
    _check_dataset(d, len(kept))
    np.testing.assert_array_equal(d.y, (kept.PINCP > 50000).astype(int))
    np.testing.assert_array_equal(d.a, (kept.RAC1P != 1).astype(int))
    assert "RAC1P" not in d.features.columns and "SEX" in d.categorical
    assert set(d.numeric) == {"AGEP", "SCHL", "WKHP"}
    assert (d.features["COW"] == "0").any()  # missing codes become 0, as folktables' ACSIncome outputs
    d2 = load_acs_income(csv=[path, path], minority={"SEX": 2})
    assert len(d2) == 2 * len(kept)
    np.testing.assert_array_equal(d2.a[: len(kept)], (kept.SEX == 2).astype(int))
    assert "RAC1P" in d2.categorical


def test_acs_frame_matches_folktables_when_installed():
    folktables = pytest.importorskip("folktables")
    raw = _pums_frame(500)
    feats, label, _ = folktables.ACSIncome.df_to_pandas(raw)
    mine = acs.acs_income_frame(raw)
    np.testing.assert_array_equal(mine[folktables.ACSIncome.features].to_numpy(), feats.to_numpy())
    np.testing.assert_array_equal(mine["income_gt_50k"].to_numpy(), label.to_numpy().ravel().astype(int))


def test_acs_from_cached_data_home_without_folktables(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "folktables", None)
    raw = _pums_frame()
    cache = tmp_path / "2018" / "1-Year"
    cache.mkdir(parents=True)
    raw.to_csv(cache / "psam_p06.csv", index=False)
    raw.iloc[:50].to_csv(cache / "psam_p48.csv", index=False)
    d = load_acs_income(states=("CA", "TX"), year=2018, home=tmp_path)
    assert len(d) == len(_acs_expected(raw)) + len(_acs_expected(raw.iloc[:50]))
    with pytest.raises(FairflipError, match="folktables"):
        load_acs_income(states=("NY",), home=tmp_path)


def test_acs_bad_inputs(tmp_path):
    raw = _pums_frame().drop(columns=["PWGTP"])
    path = tmp_path / "p.csv"
    raw.to_csv(path, index=False)
    with pytest.raises(FairflipError, match="PWGTP"):
        load_acs_income(csv=path)
    with pytest.raises(FairflipError, match="not found"):
        load_acs_income(csv=tmp_path / "absent.csv")
    with pytest.raises(FairflipError, match="state"):
        load_acs_income(states=("XX",), home=tmp_path)
    with pytest.raises(FairflipError, match="year"):
        load_acs_income(year=2010, home=tmp_path)
    assert acs.acs_income_frame(_pums_frame()).shape[1] == 12


# ---------------------------------------------------------------------------------------------- synthetic
def test_make_causal_counterfactual_is_exact():
    shift = np.array([-1.0, 0.5, 2.0])
    w = np.array([1.0, -2.0, 0.5])
    d = make_causal(500, 3, minority_share=0.4, shift=shift, label_bias=1.2, weights=w, bias=0.3, seed=3)
    x = d.features.to_numpy()
    cf = d.counterfactual.to_numpy()
    assert x.dtype == np.float64 and list(d.features.columns) == ["x0", "x1", "x2"]
    np.testing.assert_array_equal(cf[d.a == 0], x[d.a == 0])
    np.testing.assert_allclose(cf[d.a == 1], x[d.a == 1] - shift, rtol=0, atol=1e-12)
    np.testing.assert_allclose(d.y_counterfactual_prob, _sigmoid(cf @ w + 0.3), rtol=1e-12)
    assert d.minority == {"group": "minority"} and "group" not in d.features.columns
    assert set(d.group) == {"group=minority", "group=majority"}
    assert 0.3 < d.a.mean() < 0.5
    sub = d.subset(np.arange(10))
    np.testing.assert_array_equal(sub.counterfactual.to_numpy(), cf[:10])


def test_make_causal_label_bias_lowers_minority_rate():
    d = make_causal(20000, 2, minority_share=0.5, shift=0.0, label_bias=2.0, seed=0)
    assert d.y[d.a == 1].mean() < d.y[d.a == 0].mean() - 0.2
    # majority labels follow exactly the counterfactual mechanism: same mean up to sampling noise
    assert abs(d.y[d.a == 0].mean() - d.y_counterfactual_prob[d.a == 0].mean()) < 0.02


def test_synthetic_deterministic_by_seed():
    d1, d2, d3 = make_causal(300, seed=5), make_causal(300, seed=5), make_causal(300, seed=6)
    pd.testing.assert_frame_equal(d1.features, d2.features)
    np.testing.assert_array_equal(d1.y, d2.y)
    np.testing.assert_array_equal(d1.a, d2.a)
    assert not d1.features.equals(d3.features)
    t1, t2 = make_toy_2d(seed=1), make_toy_2d(seed=1)
    pd.testing.assert_frame_equal(t1.counterfactual, t2.counterfactual)


def test_toy_2d_unfair_firm():
    from sklearn.linear_model import LogisticRegression

    train, test = make_toy_2d(1000, seed=0), make_toy_2d(20000, seed=123)
    assert train.features.shape == (1000, 2) and train.name == "toy2d"
    model = LogisticRegression().fit(np.c_[train.features.to_numpy(), train.a], train.y)
    h = model.predict(np.c_[test.features.to_numpy(), test.a])
    gaps = [abs(h[(test.a == 1) & (test.y == k)].mean() - h[(test.a == 0) & (test.y == k)].mean()) for k in (0, 1)]
    assert 0.05 < np.mean(gaps) < 0.3
    assert 0.05 < np.mean(h != test.y) < 0.25


def test_synthetic_bad_inputs():
    with pytest.raises(FairflipError, match="shift"):
        make_causal(100, 2, shift=[1.0, 2.0, 3.0])
    with pytest.raises(FairflipError, match="minority_share"):
        make_causal(100, minority_share=0.0)
    with pytest.raises(FairflipError, match="minority_share"):
        make_causal(100, minority_share=1.0)
    with pytest.raises(FairflipError, match="n must be"):
        make_causal(2)
    with pytest.raises(FairflipError, match="label_bias"):
        make_causal(100, label_bias=float("nan"))


def test_registry_names():
    names = set(available())
    assert {"bank", "dutch", "law", "crime", "celeba", "kdd", "acs-income", "synthetic", "toy2d"} <= names
    assert {"synthetic", "toy2d", "compas"} <= set(available(embedded_only=True))
    assert "kdd" not in available(embedded_only=True)
    assert len(load("synthetic", n=50, seed=1)) == 50


# ---------------------------------------------------------------------------------------------- real files
REAL_ROWS = {"bank": 40004, "dutch": 60420, "law": 20798, "crime": 1994, "celeba": 202599, "kdd": 299285}


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("FAIRFLIP_DATA"), reason="FAIRFLIP_DATA not set")
@pytest.mark.parametrize("name", sorted(REAL_ROWS))
def test_real_data_home_files(name):
    spec_keys = ["kdd_train", "kdd_test"] if name == "kdd" else [name]
    root = Path(os.environ["FAIRFLIP_DATA"])
    if not all((root / homed.FILES[k].filename).exists() for k in spec_keys):
        pytest.skip(f"{name} file not in FAIRFLIP_DATA")
    d = load(name, download=False)
    _check_dataset(d, REAL_ROWS[name])


# ---------------------------------------------------------------------------------------------- hostile input
def _parquet_bytes(frame):
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


def test_every_unreadable_table_is_one_error_naming_the_file(tmp_path):
    import time
    import warnings

    from fairflip.datasets.table import MAX_COLUMNS, read_table

    good = pd.DataFrame({"x": np.arange(50.0), "g": ["a", "b"] * 25, "y": [0, 1] * 25})
    pq_bytes = _parquet_bytes(good)
    csv_text = good.to_csv(index=False)
    gz = gzip.compress(csv_text.encode() * 20)
    rng = np.random.default_rng(0)
    cases = {
        "trunc.parquet": (pq_bytes[: len(pq_bytes) // 2], ""),
        "noise.parquet": (rng.bytes(4096), "not a Parquet file"),
        "csv.parquet": (csv_text.encode(), "not a Parquet file"),
        "magic-only.parquet": (b"PAR1" + rng.bytes(100) + b"PAR1", ""),
        "trunc.csv.gz": (gz[: len(gz) // 2], ""),
        "noise.csv.gz": (rng.bytes(2048), ""),
        "noise.csv": (rng.bytes(4096), ""),
        "empty.csv": (b"", "empty"),
        "dup-label.csv": (b"x,y,g,y\n1,0,a,0\n2,1,b,1\n", "duplicated column name(s): 'y' in columns 2, 4"),
        "dup-three.csv.gz": (gzip.compress(b"a,b,a,a\n1,2,3,4\n"), "'a' in columns 1, 3, 4"),
        "wide.csv": (",".join(f"c{i}" for i in range(2_000_000)).encode() + b"\n" + b"1," * 1_999_999 + b"1\n",
                     f"more than the {MAX_COLUMNS:,}"),
    }
    messages = []
    for name, (content, fragment) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(FairflipError) as info:
                read_table(path)
        assert time.perf_counter() - t0 < 10, name
        assert str(path) in str(info.value) and fragment in str(info.value), (name, str(info.value))
        messages.append(str(info.value))
    # a Parquet file with two columns of one name (pandas cannot even build it without renaming)
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table([pa.array([1, 2]), pa.array([0, 1])], names=["y", "y"]), tmp_path / "dup.parquet")
    with pytest.raises(FairflipError, match="duplicated column name"):
        read_table(tmp_path / "dup.parquet")
    (tmp_path / "folder.csv").mkdir()
    for bad, fragment in [(tmp_path / "folder.csv", "not a regular file"), (tmp_path / "nope.csv", "not found")]:
        with pytest.raises(FairflipError, match=fragment):
            read_table(bad)
    # and the good table reads in both formats, an unnamed index column included
    (tmp_path / "ok.parquet").write_bytes(pq_bytes)
    good.to_csv(tmp_path / "ok.csv")  # index written with an empty header name
    pd.testing.assert_frame_equal(read_table(tmp_path / "ok.parquet"), good)
    assert list(read_table(tmp_path / "ok.csv").columns) == ["Unnamed: 0", "x", "g", "y"]


def test_table_memory_is_estimated_before_reading(tmp_path, monkeypatch):
    from fairflip.datasets.table import read_table

    path = tmp_path / "big.csv"
    pd.DataFrame({"x": np.arange(20000.0), "y": 1}).to_csv(path, index=False)
    monkeypatch.setenv("FAIRFLIP_MAX_MEMORY", "100K")
    with pytest.raises(FairflipError, match="needs about .* only 100.0 KB is available"):
        read_table(path)
    monkeypatch.setenv("FAIRFLIP_MAX_MEMORY", "lots")
    with pytest.raises(FairflipError, match="FAIRFLIP_MAX_MEMORY"):
        read_table(path)
    monkeypatch.delenv("FAIRFLIP_MAX_MEMORY")
    assert len(read_table(path)) == 20000


def test_group_values_labels_and_stray_strings(tmp_path):
    import warnings

    from fairflip.datasets._base import DataWarning

    n = 60
    frame = pd.DataFrame({"x": np.linspace(-1, 1, n), "code": np.arange(n) * 7, "g": ["A", "B", "B"] * (n // 3),
                          "y": [0, 1] * (n // 2)})
    frame.to_csv(tmp_path / "ok.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = load_table(tmp_path / "ok.csv", label="y", minority={"g": "A"})
    assert d.numeric == ("x", "code") and d.a.sum() == n // 3
    # missing group values: an error by default, majority (with a warning) when asked
    holes = frame.astype({"g": object})
    holes.loc[[4, 9], "g"] = None
    holes.loc[12, "g"] = "  "
    holes.to_csv(tmp_path / "holes.csv", index=False)
    with pytest.raises(FairflipError, match=r"group column 'g' has 3 missing value\(s\) \(rows 4, 9, 12\)") as info:
        load_table(tmp_path / "holes.csv", label="y", minority={"g": "A"})
    assert str(tmp_path / "holes.csv") in str(info.value)
    with pytest.warns(DataWarning, match="counted as majority"):
        d = load_table(tmp_path / "holes.csv", label="y", minority={"g": "A"}, missing_group="majority")
    assert d.a[[4, 9, 12]].tolist() == [0, 0, 0] and d.a.sum() == n // 3 - 2  # rows 9 and 12 held A
    # one stray string in a numeric column: a warning naming it (it becomes categorical)
    stray = frame.astype({"code": object})
    stray.loc[17, "code"] = "n/a?"
    stray.to_csv(tmp_path / "stray.csv", index=False)
    with pytest.warns(DataWarning, match=r"feature 'code' holds numbers except for 1 entry such as \['n/a\?'\] "
                                         r"\(first in row 17\)"):
        d = load_table(tmp_path / "stray.csv", label="y", minority={"g": "A"})
    assert "code" in d.categorical
    # a real categorical column (few numbers among words) does not warn
    words = frame.assign(code=["red", "green", "blue", "7"] * (n // 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from fairflip.datasets import from_frame

        from_frame(words, name="w", label="y", minority={"g": "A"})
    # infinite values in a numeric feature
    for bad in (np.inf, -np.inf):
        inf = frame.copy()
        inf.loc[3, "x"] = bad
        with pytest.raises(FairflipError, match="numeric feature 'x' has 1 infinite"):
            from_frame(inf, name="inf", label="y", minority={"g": "A"})
    # features naming a column twice
    with pytest.raises(FairflipError, match="more than once"):
        from_frame(frame, name="t", label="y", minority={"g": "A"}, features=["x", "x"])


# ---------------------------------------------------------------------------------------------- downloads
class _Served(io.BytesIO):
    def __init__(self, data, length=None):
        super().__init__(data)
        self.headers = {} if length is None else {"Content-Length": str(length)}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def test_downloads_are_verified_before_they_land(tmp_path, monkeypatch):
    payload = b"a,b\n1,2\n" * 1000
    digest = hashlib.sha256(payload).hexdigest()
    served = {"length": None}
    monkeypatch.setattr(urllib.request, "urlopen",
                        lambda url, timeout=None: _Served(payload, served["length"]))
    url = "https://example.org/data.csv"
    target = tmp_path / "home" / "data.csv"
    cases = [
        (dict(sha256=None), "no sha256 given"),
        (dict(sha256="0" * 64), "has sha256"),
        (dict(sha256="xyz"), "64 hexadecimal"),
        (dict(sha256=digest, max_bytes=len(payload) - 1), "exceeded the limit"),
        (dict(sha256=digest, check=lambda tmp: (_ for _ in ()).throw(FairflipError("content check failed"))),
         "content check failed"),
    ]
    for kwargs, fragment in cases:
        with pytest.raises(FairflipError, match=fragment):
            _files.download(url, target, **kwargs)
        assert not target.exists() and not [p for p in target.parent.iterdir()] if target.parent.exists() else True
    served["length"] = 10 ** 12
    with pytest.raises(FairflipError, match="announces"):
        _files.download(url, target, sha256=digest)
    served["length"] = None
    with pytest.raises(FairflipError, match="https://"):
        _files.download("ftp://example.org/x", target, sha256=digest)
    assert _files.download(url, target, sha256=digest.upper()).read_bytes() == payload
    assert _files.download(url, tmp_path / "u.csv", allow_unverified=True).read_bytes() == payload
    gz = _files.download(url, tmp_path / "c.csv.gz", sha256=digest, compress=True)
    assert gzip.decompress(gz.read_bytes()) == payload
    # find_or_download: the digest is required for a download and checked on a file found
    with pytest.raises(FairflipError, match="no sha256 given"):
        _files.find_or_download("other.csv", home=tmp_path / "home", url=url)
    assert _files.find_or_download("other.csv", home=tmp_path / "home", url=url, sha256=digest).exists()
    (tmp_path / "home" / "other.csv").write_bytes(b"changed")
    with pytest.raises(FairflipError, match="expected"):
        _files.find_or_download("other.csv", home=tmp_path / "home", url=url, sha256=digest)
    with pytest.raises(FairflipError, match="plain file name"):
        _files.find_or_download("../escape.csv", home=tmp_path / "home", url=url, sha256=digest)


def test_data_home_that_is_a_file(tmp_path, monkeypatch):
    afile = tmp_path / "data"
    afile.write_text("not a folder")
    with pytest.raises(FairflipError, match="is a file, not a folder"):
        load_dutch(home=afile, download=False)
    monkeypatch.setenv("FAIRFLIP_DATA", str(afile))
    with pytest.raises(FairflipError, match="FAIRFLIP_DATA .* is a file"):
        load_dutch(download=False)
    monkeypatch.setenv("FAIRFLIP_DATA", str(afile / "sub"))
    with pytest.raises(FairflipError, match="lies under the file"):
        load_dutch(download=False)


def test_acs_pums_files_are_verified_and_recorded(tmp_path, monkeypatch):
    raw = _pums_frame()
    written = []

    class FakeSource:
        def __init__(self, survey_year, horizon, survey, root_dir):
            self.root = Path(root_dir) / survey_year / horizon

        def get_data(self, states, download):
            self.root.mkdir(parents=True, exist_ok=True)
            path = self.root / "psam_p06.csv"
            raw.to_csv(path, index=False)
            written.append(path)
            return raw

    monkeypatch.setitem(sys.modules, "folktables", SimpleNamespace(ACSDataSource=FakeSource))
    home = tmp_path / "home"
    final = home / "2018" / "1-Year" / "psam_p06.csv"
    # a pinned digest that the download does not match: nothing reaches the data home
    monkeypatch.setitem(acs.PUMS_SHA256, "2018/1-Year/psam_p06.csv", "0" * 64)
    with pytest.raises(FairflipError, match="pinned"):
        load_acs_income(states=("CA",), year=2018, home=home)
    assert not final.exists() and written and not written[0].exists()
    assert [p.name for p in home.iterdir()] == []  # the staging folder is gone
    monkeypatch.delitem(acs.PUMS_SHA256, "2018/1-Year/psam_p06.csv")
    d = load_acs_income(states=("CA",), year=2018, home=home)
    assert len(d) == len(_acs_expected(raw)) and final.exists()
    ledger = (final.parent / acs.LEDGER).read_text().split()
    assert ledger == [_files.sha256_of(final), "psam_p06.csv"]
    # later damage is caught against the ledger
    final.write_text(final.read_text().replace("2018GQ0000001", "2018GQ0000009"))
    with pytest.raises(FairflipError, match="recorded in"):
        load_acs_income(states=("CA",), year=2018, home=home)
