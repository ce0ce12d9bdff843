"""The ``fairflip`` command line, in-process through ``main(argv)`` and once as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from fairflip.cli import main
from fairflip.cli._inputs import print_json
from fairflip.collective import make_collective
from fairflip.datasets import load_table
from fairflip.features import FeaturePreparer
from fairflip.metrics import all_metrics

MINORITY = "African-American"
METRIC_KEYS = {"eqod", "eqod_worst", "dp", "eqopp", "error"}


@pytest.fixture(scope="module")
def tables(compas, tmp_path_factory):
    """Small train/test CSVs cut from the shipped COMPAS, with the race restored as a column."""
    frame = compas.to_frame()
    frame["race"] = frame.pop("group").str.removeprefix("race=")
    frame = frame.drop(columns=["minority"])
    rng = np.random.default_rng(0)
    rows = rng.permutation(len(frame))
    folder = tmp_path_factory.mktemp("cli")
    train, test = frame.iloc[rows[:700]].reset_index(drop=True), frame.iloc[rows[700:1000]].reset_index(drop=True)
    train.to_csv(folder / "train.csv", index=False)
    test.to_csv(folder / "test.csv", index=False)
    return folder, train, test


def run(argv, capsys):
    """Run the CLI in-process: (exit status, stdout, stderr); argparse errors exit through SystemExit."""
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def data_args(folder, *, test=True):
    args = ["--train", folder / "train.csv", "--label", "label", "--group", "race", "--minority", MINORITY]
    return args + (["--test", folder / "test.csv"] if test else [])


def flip_json(argv, capsys):
    rc, out, err = run(["flip", *argv, "--json"], capsys)
    assert rc == 0, err
    lines = out.splitlines()
    assert len(lines) == 1  # exactly one JSON object on stdout
    return json.loads(lines[0])


def refit_metrics(folder, flipped):
    """Independent reference: sklearn's logistic regression on the flipped labels of the prepared tables."""
    tr = load_table(folder / "train.csv", label="label", minority={"race": MINORITY})
    te = load_table(folder / "test.csv", label="label", minority={"race": MINORITY})
    prep = FeaturePreparer().fit(tr)
    y = tr.y.copy()
    y[flipped] = 1 - y[flipped]
    sk = LogisticRegression(C=1.0, tol=1e-12, max_iter=10_000, solver="newton-cholesky").fit(prep.transform(tr), y)
    return {name: all_metrics(d.y, sk.predict(prep.transform(d)), d.a) for name, d in (("train", tr), ("test", te))}


def test_flip_json_report_and_evaluate_roundtrip(tables, capsys):
    folder, train, test = tables
    out_csv = folder / "flips.csv"
    budget = 40
    rep = flip_json(["--method", "random", "--budget", budget, "--direction", "up", "--seed", 3,
                     *data_args(folder), "--out", out_csv], capsys)
    for key in ("method", "budget", "n_candidates", "flipped", "objective", "lower_bound", "metrics", "runtime_s"):
        assert key in rep
    assert rep["method"] == "random" and rep["budget"] == budget and rep["lower_bound"] is None
    assert rep["runtime_s"] > 0
    for split in ("train", "test"):
        assert METRIC_KEYS <= set(rep["metrics"][split])
    flipped = np.array(rep["flipped"])
    assert len(flipped) == min(budget, rep["n_candidates"]) == budget
    assert len(np.unique(flipped)) == len(flipped)
    # candidates of the CSV we wrote: minority rows that carry label 0 (direction up)
    assert (train.loc[flipped, "race"] == MINORITY).all() and (train.loc[flipped, "label"] == 0).all()
    # the same seeded collective drawn from the CSV's own columns has exactly these candidates
    col = make_collective(train["label"].to_numpy(), (train["race"] == MINORITY).to_numpy(), fraction=0.3,
                          direction="up", seed=3)
    cands = col.candidates(train["label"].to_numpy())
    assert rep["n_candidates"] == len(cands) and np.isin(flipped, cands).all()
    assert pd.read_csv(out_csv)["row"].tolist() == rep["flipped"]
    # metrics are those of the firm retrained on exactly these flips
    ref = refit_metrics(folder, flipped)
    for split in ("train", "test"):
        for key in METRIC_KEYS:
            assert rep["metrics"][split][key] == pytest.approx(ref[split][key], abs=1e-12)
    assert rep["objective"] == pytest.approx(ref["train"]["eqod"], abs=1e-12)
    # `evaluate` on the written flips reproduces them
    rc, out, err = run(["evaluate", "--flips", out_csv, "--direction", "up", "--seed", 3, *data_args(folder),
                        "--json"], capsys)
    assert rc == 0, err
    ev = json.loads(out)
    assert ev["n_flipped"] == budget
    for split in ("train", "test"):
        for key in METRIC_KEYS:
            assert ev["metrics"][split][key] == pytest.approx(rep["metrics"][split][key], abs=1e-12)
    # the same seed gives the same flips
    again = flip_json(["--method", "random", "--budget", budget, "--direction", "up", "--seed", 3,
                       *data_args(folder, test=False)], capsys)
    assert again["flipped"] == rep["flipped"] and "test" not in again["metrics"]


def test_none_and_random_budgets(tables, capsys):
    folder, train, test = tables
    none = flip_json(["--method", "none", "--budget", 50, *data_args(folder)], capsys)
    assert none["flipped"] == [] and none["n_flipped"] == 0
    ref = refit_metrics(folder, np.zeros(0, dtype=int))
    assert none["metrics"]["test"]["eqod"] == pytest.approx(ref["test"]["eqod"], abs=1e-12)
    for budget in (0, 7, 10_000):
        rep = flip_json(["--method", "random", "--budget", budget, "--direction", "down", *data_args(folder)], capsys)
        assert rep["n_flipped"] == len(rep["flipped"]) == min(budget, rep["n_candidates"])
        assert (train.loc[rep["flipped"], "label"] == 1).all()


def test_explicit_collective_column(tables, capsys):
    folder, train, _ = tables
    frame = train.copy()
    minority_rows = np.flatnonzero(frame["race"] == MINORITY)
    members = minority_rows[::4]
    frame["member"] = 0
    frame.loc[members, "member"] = 1
    frame.to_csv(folder / "train_col.csv", index=False)
    args = ["--train", folder / "train_col.csv", "--label", "label", "--group", "race", "--minority", MINORITY,
            "--test", folder / "test.csv", "--collective", "member", "--direction", "up"]
    rep = flip_json(["--method", "random", "--budget", 10_000, *args], capsys)
    assert rep["collective_size"] == len(members)
    expected = members[frame.loc[members, "label"].to_numpy() == 0]
    assert rep["flipped"] == expected.tolist() and rep["n_candidates"] == len(expected)


def test_intersectional_minority(tables, capsys):
    folder, train, _ = tables
    rep = flip_json(["--method", "random", "--budget", 5, "--train", folder / "train.csv", "--label", "label",
                     "--group", "race,sex", "--minority", f"{MINORITY},Female", "--test", folder / "test.csv",
                     "--direction", "up", "--collective-fraction", 0.5], capsys)
    inter = (train["race"] == MINORITY) & (train["sex"] == "Female")
    assert rep["collective_size"] == round(0.5 * inter.sum())
    assert rep["n_flipped"] == 5
    assert inter[rep["flipped"]].all() and (train.loc[rep["flipped"], "label"] == 0).all()


def bad_tables(folder, train):
    """CSV files that are each wrong in one way."""
    nonbinary = train.copy()
    nonbinary.loc[:2, "label"] = 2
    nonbinary.to_csv(folder / "nonbinary.csv", index=False)
    nan = train.copy()
    nan.loc[5, "age"] = np.nan
    nan.to_csv(folder / "nan.csv", index=False)
    nan_cat = train.copy()
    nan_cat.loc[7, "sex"] = np.nan
    nan_cat.to_csv(folder / "nan_cat.csv", index=False)
    empty = train.assign(member=0)
    empty.to_csv(folder / "empty_col.csv", index=False)
    ones = train.assign(member=((train["race"] == MINORITY) & (train["label"] == 1)).astype(int))
    ones.to_csv(folder / "ones_col.csv", index=False)


BAD = {
    "missing file": (["--train", "{f}/nope.csv"], "file not found"),
    "missing column": (["--label", "no_such_label"], "no_such_label"),
    "non-binary label": (["--train", "{f}/nonbinary.csv"], "not binary"),
    "minority absent": (["--minority", "Martian"], "Martian"),
    "empty collective": (["--train", "{f}/empty_col.csv", "--collective", "member"], "collective is empty"),
    "empty candidates": (["--train", "{f}/ones_col.csv", "--collective", "member", "--direction", "up"],
                         "candidate set is empty"),
    "negative budget": (["--budget", "-3"], "budget"),
    "NaN feature": (["--train", "{f}/nan.csv"], "NaN"),
    "NaN categorical feature": (["--train", "{f}/nan_cat.csv"], "'sex' contains NaN"),
    "unknown method": (["--method", "magic"], "unknown method 'magic'"),
    "unknown firm": (["--firm", "forest"], "forest"),
    "missing collective column": (["--collective", "no_such_member"], "no_such_member"),
    "group/minority count": (["--group", "race,sex"], "--minority"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_exits_2_with_one_line(tables, capsys, case):
    folder, train, _ = tables
    bad_tables(folder, train)
    override, needle = BAD[case]
    base = {"--train": str(folder / "train.csv"), "--label": "label", "--group": "race", "--minority": MINORITY,
            "--method": "random", "--budget": "10"}
    extra = []
    override = [o.format(f=folder) for o in override]
    for flag, value in zip(override[::2], override[1::2]):
        if flag in base:
            base[flag] = value
        else:
            extra += [flag, value]
    out_csv = folder / f"out_{case.replace(' ', '_').replace('/', '_')}.csv"
    argv = ["flip", *[x for kv in base.items() for x in kv], *extra, "--json", "--out", out_csv]
    rc, out, err = run(argv, capsys)
    assert rc == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("fairflip: error: ") and "Traceback" not in err
    assert needle in lines[0]
    assert not out_csv.exists()


def test_evaluate_bad_flips(tables, capsys):
    folder, train, _ = tables
    pd.DataFrame({"row": [len(train) + 5]}).to_csv(folder / "far.csv", index=False)
    pd.DataFrame({"idx": [1]}).to_csv(folder / "norow.csv", index=False)
    for flips, needle in (("far.csv", "rows"), ("norow.csv", "'row'"), ("missing.csv", "file not found")):
        rc, out, err = run(["evaluate", "--flips", folder / flips, *data_args(folder)], capsys)
        assert rc == 2 and out == "" and len(err.splitlines()) == 1 and needle in err


def test_datasets_lists_embedded(capsys):
    rc, out, err = run(["datasets"], capsys)
    assert rc == 0, err
    lines = [line for line in out.splitlines() if line.strip()]
    rows = {line.split()[0]: line for line in lines[1:]}
    for name, n in (("compas", 5278), ("adult", 48842), ("german", 1000)):
        assert rows[name].split()[1] == f"{n:,}"
    # aligned: the right edge of the rows column and the start of the source column are the same on every line
    header = lines[0]
    edge = header.index("rows") + len("rows")
    source = header.index("source")
    for line in lines:
        assert line[edge - 1] != " " and line[edge:edge + 2] == "  ", line
        assert line[source - 2:source] == "  " and line[source] != " ", line
    rc, out, _ = run(["datasets", "--json"], capsys)
    listed = {d["name"]: d for d in json.loads(out)["datasets"]}
    assert listed["compas"]["rows"] == 5278 and listed["german"]["rows"] == 1000 and listed["adult"]["rows"] == 48842


def test_subprocess_flip(tables):
    folder, train, _ = tables
    argv = [sys.executable, "-m", "fairflip", "flip", "--method", "random", "--budget", "12", "--seed", "1",
            *map(str, data_args(folder)), "--json"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1
    rep = json.loads(lines[0])
    assert rep["n_flipped"] == 12 and (train.loc[rep["flipped"], "race"] == MINORITY).all()


def test_print_json_cleans_numpy_and_nan(capsys):
    print_json({"a": np.float64(0.25), "b": float("nan"), "c": np.arange(3), "d": [np.int64(2), (np.inf, 1)],
                "e": {"f": np.array([[0.5, np.nan]])}, "g": None})
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert json.loads(out) == {"a": 0.25, "b": None, "c": [0, 1, 2], "d": [2, [None, 1]], "e": {"f": [[0.5, None]]},
                               "g": None}
