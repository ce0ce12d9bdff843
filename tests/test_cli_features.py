"""The command line's additions: no heavy import for --help, static names, plugins, time limit and progress,
categorical and non-0/1 labels, budgets as fractions everywhere, the no-flip baseline, one default direction."""

from __future__ import annotations

import inspect
import io
import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from fairflip.cli import main
from fairflip.cli import _names
from fairflip.cli._output import Progress

HEAVY = ("torch", "sklearn", "pandas", "scipy", "cvxpy")


def run(argv, capsys):
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def _frame(n: int, seed: int) -> pd.DataFrame:
    """A small table whose integer-coded column ``occ`` has a non-monotone effect on the label."""
    rng = np.random.default_rng(seed)
    race = np.where(rng.random(n) < 0.35, "B", "A")
    occ = rng.integers(0, 6, n)
    age = rng.normal(0, 1, n)
    effect = np.array([1.5, -1.0, 1.0, -1.5, 0.5, -0.5])[occ]
    logit = 0.8 * age + effect - 0.7 * (race == "B")
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"age": age.round(3), "occ": occ, "race": race, "y": y})


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    d = tmp_path_factory.mktemp("clif")
    train, test = _frame(160, 0), _frame(120, 1)
    train.to_csv(d / "train.csv", index=False)
    test.to_csv(d / "test.csv", index=False)
    for name, frame in (("train", train), ("test", test)):
        frame.assign(occ="o" + frame["occ"].astype(str)).to_csv(d / f"{name}_str.csv", index=False)
        frame.assign(y=np.where(frame["y"] == 1, "yes", "no")).to_csv(d / f"{name}_yesno.csv", index=False)
    return d


def data(d, suffix=""):
    return ["--train", d / f"train{suffix}.csv", "--test", d / f"test{suffix}.csv", "--label", "y", "--group",
            "race", "--minority", "B"]


def flip_json(argv, capsys):
    rc, out, err = run(["flip", *argv, "--json"], capsys)
    assert rc == 0, err
    assert len(out.splitlines()) == 1
    return json.loads(out), err


# ------------------------------------------------------------------------------------------ instant CLI

def test_help_and_bad_arguments_load_no_heavy_module():
    """In a fresh interpreter, --help of every command and argument errors leave torch, scikit-learn, pandas,
    SciPy and CVXPY unloaded."""
    script = textwrap.dedent(f"""
        import json, sys, contextlib, io
        from fairflip.cli import main
        cases = [["--help"], ["flip", "--help"], ["evaluate", "--help"], ["sweep", "--help"], ["gap", "--help"],
                 ["datasets", "--help"], ["reproduce", "--help"], ["flip", "--budget"], ["nosuch"],
                 ["flip", "--method", "random", "--budget", "5", "--seed", "-1", "--train", "t.csv"],
                 ["sweep", "--budgets", "0,1.5", "--dataset", "compas"], ["gap", "--methods", ",", "--dataset", "x"],
                 ["flip", "--method", "random", "--budget", "2.0", "--dataset", "compas"],
                 ["reproduce", "--seeds", "0"]]
        report = []
        for argv in cases:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
                try:
                    code = main(argv)
                except SystemExit as exc:
                    code = exc.code
            heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)
            report.append([argv, code, heavy, err.getvalue()])
        print(json.dumps(report))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for argv, code, heavy, err in json.loads(proc.stdout):
        assert heavy == [], (argv, heavy)
        if "--help" in argv:
            assert code == 0, argv
        else:
            assert code == 2 and err.count("\n") == 1 and err.startswith("fairflip: error: "), (argv, err)


def test_static_names_equal_the_registries_builtins():
    """The names --help lists (static data) are exactly the registries' built-ins (plugins' names excluded)."""
    import fairflip.firms as firms
    from fairflip.experiments.studies import STUDY_ORDER
    from fairflip.methods import HEURISTICS, available_methods, method_class
    from fairflip.objectives import BUILTIN_OBJECTIVES, available_objectives

    builtin_methods = {m for m in available_methods() if method_class(m).__module__.startswith("fairflip.")}
    assert set(_names.METHODS) == builtin_methods
    assert len(_names.METHODS) == len(set(_names.METHODS))
    assert tuple(_names.HEURISTICS) == tuple(HEURISTICS)
    assert set(_names.SWEEP_METHODS) <= set(_names.HEURISTICS)
    assert tuple(_names.OBJECTIVES) == tuple(BUILTIN_OBJECTIVES)
    assert set(_names.OBJECTIVES) <= set(available_objectives())
    assert tuple(_names.FIRMS) == tuple(firms.BUILTIN_FIRMS)
    if hasattr(firms, "available_firms"):
        assert set(_names.FIRMS) <= set(firms.available_firms())
    assert tuple(_names.STUDIES) == tuple(STUDY_ORDER)
    from fairflip.cli._args import MAX_SEED
    from fairflip.methods import MAX_SEED as METHODS_MAX_SEED

    assert MAX_SEED == METHODS_MAX_SEED == 2**32 - 1


# ------------------------------------------------------------------------------------------ plugins

PLUGIN = '''
import numpy as np
from fairflip.methods import FlipMethod, FlipResult, register_method

SEEN = {}

@register_method("first-candidates")
class FirstCandidates(FlipMethod):
    """Flips the first M candidates in row order; records the time limit and reports progress."""

    def _select_many(self, problem, budgets, control):
        SEEN["time_limit"] = control.time_limit
        out = []
        for i, M in enumerate(budgets):
            control.report(stage="first", done=i + 1, total=len(budgets), best=0.5, bound=0.25)
            out.append(FlipResult(flipped=np.sort(problem.candidates[:M]), status="feasible"))
        return out
'''


def test_plugin_method_from_a_file(tables, tmp_path, capsys, monkeypatch):
    # loading a plugin records it in FAIRFLIP_PLUGINS for worker processes; keep that out of later tests
    monkeypatch.delenv("FAIRFLIP_PLUGINS", raising=False)
    plugin = tmp_path / "firstplug.py"
    plugin.write_text(PLUGIN)
    rc, out, err = run(["flip", *data(tables), "--method", "first-candidates", "--budget", 4], capsys)
    if rc == 2:  # not loaded yet in this process: the name is refused, naming the argument
        assert err.startswith("fairflip: error: --method: unknown method 'first-candidates'")
    base, _ = flip_json([*data(tables), "--method", "none", "--budget", 0, "--direction", "up"], capsys)
    for argv in (["--plugin", plugin, "flip"], ["flip", "--plugin", plugin]):
        rc, out, err = run([*argv, *data(tables), "--method", "first-candidates", "--budget", 4, "--direction", "up",
                            "--time-limit", 7.5, "--json"], capsys)
        assert rc == 0, err
        rep = json.loads(out)
        train = pd.read_csv(tables / "train.csv")
        cands = np.array(rep["flipped"])
        assert len(cands) == 4 and (train.loc[cands, "race"] == "B").all() and (train.loc[cands, "y"] == 0).all()
        assert rep["time_limit"] == 7.5 and rep["status"] == "feasible" and rep["time_limit_hit"] is False
        assert rep["baseline"]["test"] == base["metrics"]["test"]
    mod = [m for n, m in sys.modules.items() if n.startswith("fairflip_plugin_firstplug")][0]
    assert mod.SEEN["time_limit"] == 7.5
    # a sweep and a gap accept the plugin's name too
    rc, out, err = run(["sweep", "--plugin", plugin, *data(tables), "--methods", "random,first-candidates",
                        "--budgets", "0,3", "--n-seeds", 1, "--json"], capsys)
    assert rc == 0, err
    rc, out, err = run(["gap", "--plugin", plugin, *data(tables), "--methods", "first-candidates", "--oracle",
                        "rb-label", "--budgets", "3", "--json"], capsys)
    assert rc == 0, err


def test_progress_line_only_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty, pipe = Tty(), io.StringIO()
    for stream in (tty, pipe):
        p = Progress("oracle", stream=stream, interval=0.0)
        p({"stage": "local search", "done": 3, "total": 10, "best": 0.123456, "bound": 0.05})
        p({"done": 5})
        p.close()
    assert pipe.getvalue() == ""
    text = tty.getvalue()
    assert "oracle" in text and "5/10" in text and "best 0.1235" in text and "bound 0.0500" in text
    assert "local search" in text and "\n" not in text and text.endswith("\r")
    p = Progress("oracle", stream=Tty(), interval=0.0)
    p({"stage": "relaxation", "done": 9, "total": 10, "best": 0.5})
    p({"stage": "polish", "best": 0.25})
    assert "9/10" not in p.line() and "polish" in p.line() and "best 0.2500" in p.line()
    p({"best": None})
    assert "best" not in p.line()


def test_time_limit_reaches_the_oracle(tables, capsys):
    rep, _ = flip_json([*data(tables), "--method", "oracle", "--budget", 3, "--time-limit", 0.001], capsys)
    assert rep["time_limit"] == 0.001
    assert rep["status"] in ("time_limit", "optimal", "feasible") and rep["n_flipped"] <= 3
    if rep["time_limit_hit"]:
        assert rep["status"] == "time_limit"


# ------------------------------------------------------------------------------------------ real tables

def test_categorical_columns_and_the_integer_warning(tables, capsys):
    plain, err_plain = flip_json([*data(tables), "--method", "random", "--budget", 5, "--seed", 2], capsys)
    assert "fairflip: warning: feature 'occ' holds integers" in err_plain and "--categorical" in err_plain
    named, err_named = flip_json([*data(tables), "--method", "random", "--budget", 5, "--seed", 2,
                                  "--categorical", "occ"], capsys)
    assert "warning" not in err_named
    # reference: the same column spelled as text is one-hot encoded without being named
    text, _ = flip_json([*data(tables, "_str"), "--method", "random", "--budget", 5, "--seed", 2], capsys)
    assert named["flipped"] == text["flipped"] == plain["flipped"]
    for split in ("train", "test"):
        for key, value in text["metrics"][split].items():
            assert named["metrics"][split][key] == pytest.approx(value, abs=1e-12)
    assert named["baseline"]["test"]["error"] != pytest.approx(plain["baseline"]["test"]["error"], abs=1e-9)
    rc, out, err = run(["flip", *data(tables), "--method", "random", "--budget", 5, "--categorical", "nosuch"],
                       capsys)
    assert rc == 2 and out == "" and err.startswith("fairflip: error: --categorical")


def test_positive_label_value(tables, capsys):
    ref, _ = flip_json([*data(tables), "--method", "rb-label", "--budget", 6], capsys)
    got, _ = flip_json([*data(tables, "_yesno"), "--method", "rb-label", "--budget", 6, "--positive", "yes"], capsys)
    assert got["flipped"] == ref["flipped"] and got["metrics"] == ref["metrics"] and got["baseline"] == ref["baseline"]
    flipped_no, _ = flip_json([*data(tables, "_yesno"), "--method", "none", "--budget", 0, "--positive", "no"],
                              capsys)
    # naming the other value as positive swaps the labels: error rates are unchanged, parity gaps are too
    assert flipped_no["baseline"]["test"]["error"] == pytest.approx(ref["baseline"]["test"]["error"], abs=1e-12)
    rc, out, err = run(["flip", *data(tables, "_yesno"), "--method", "random", "--budget", 2], capsys)
    assert rc == 2 and "--train" in err and "'y'" in err and out == ""


def test_budgets_as_fractions_in_flip_sweep_and_gap(tables, tmp_path, capsys):
    rep, _ = flip_json([*data(tables), "--method", "random", "--budget", 0.25, "--seed", 1], capsys)
    n_cand = rep["n_candidates"]
    expected = int(round(0.25 * n_cand))
    assert rep["budget"] == 0.25 and rep["max_flips"] == expected == rep["n_flipped"]
    out = tmp_path / "sweep.csv"
    rc, _, err = run(["sweep", *data(tables), "--methods", "random", "--budgets", "0,0.25", "--n-seeds", 1,
                      "--seed", 1, "--out", out], capsys)
    assert rc == 0, err
    table = pd.read_csv(out)
    assert table.loc[table.budget == 0.25, "max_flips"].tolist() == [expected]
    out = tmp_path / "gap.csv"
    rc, _, err = run(["gap", *data(tables), "--methods", "random", "--oracle", "rb-label", "--budgets", "0.25",
                      "--seed", 1, "--out", out], capsys)
    assert rc == 0, err
    table = pd.read_csv(out)
    assert set(table.budget) == {0.25} and set(table.n_flipped) == {expected}
    for cmd, flag in (("flip", "--budget"), ("sweep", "--budgets"), ("gap", "--budgets")):
        for bad in ("1.5", "2.0", "-3", "1e400", "0.0"):
            extra = ["--method", "random"] if cmd == "flip" else []
            rc, out, err = run([cmd, *data(tables), *extra, flag, bad], capsys)
            assert rc == 2 and out == "" and err.startswith(f"fairflip: error: {flag}") and err.count("\n") == 1, \
                (cmd, bad, err)


def test_baseline_in_text_and_json(tables, capsys):
    none, _ = flip_json([*data(tables), "--method", "none", "--budget", 0], capsys)
    rep, _ = flip_json([*data(tables), "--method", "rb-prob", "--budget", 8], capsys)
    assert rep["baseline"]["train"] == none["metrics"]["train"]
    assert rep["baseline"]["test"] == none["metrics"]["test"]
    assert rep["baseline"]["objective"] == none["objective"]
    # evaluate reports the same baseline next to the flips it is given
    pd.DataFrame({"row": rep["flipped"]}).to_csv(tables / "rbprob_flips.csv", index=False)
    rc, out, err = run(["evaluate", *data(tables), "--flips", tables / "rbprob_flips.csv", "--json"], capsys)
    assert rc == 0, err
    ev = json.loads(out)
    assert ev["baseline"]["objective"] == pytest.approx(none["objective"], abs=1e-12)
    for split in ("train", "test"):
        for key, value in rep["metrics"][split].items():
            assert ev["metrics"][split][key] == pytest.approx(value, abs=1e-12)
            assert ev["baseline"][split][key] == pytest.approx(none["metrics"][split][key], abs=1e-12)
    rc, out, err = run(["flip", *data(tables), "--method", "rb-prob", "--budget", 8], capsys)
    assert rc == 0
    assert f"(no flips: {none['objective']:.4f})" in out
    assert f"eqod={none['metrics']['test']['eqod']:.4f}" in out.split("(no flips)")[-2].splitlines()[-1]


def test_one_default_direction(tables, capsys):
    from fairflip.gap import optimality_gap
    from fairflip.problem import build_problem
    from fairflip.sweep import sweep
    from fairflip.datasets import load_table

    for fn in (sweep, optimality_gap):
        assert inspect.signature(fn).parameters["direction"].default == "auto"
    default, _ = flip_json([*data(tables), "--method", "random", "--budget", 3], capsys)
    auto, _ = flip_json([*data(tables), "--method", "random", "--budget", 3, "--direction", "auto"], capsys)
    assert default["direction"] == auto["direction"] and default["flipped"] == auto["flipped"]
    train = load_table(tables / "train.csv", label="y", minority={"race": "B"})
    problem, _ = build_problem(train, direction="auto", collective_fraction=0.3, seed=0)
    assert default["direction"] == problem.collective.direction
    for cmd in ("flip", "sweep", "gap", "evaluate"):
        rc, out, _ = run([cmd, "--help"], capsys)
        assert "auto (default)" in " ".join(out.split())


def test_small_test_split_warns(capsys):
    rc, out, err = run(["flip", "--dataset", "german", "--test-size", "0.02", "--method", "random", "--budget", 3],
                       capsys)
    assert rc == 0, err
    assert "fairflip: warning: the test split (--test-size) has few rows" in err


def test_sweep_prints_counts_as_integers(tables, capsys):
    rc, out, err = run(["sweep", *data(tables), "--methods", "random,rb-dist", "--budgets", "0,4,9", "--n-seeds", 2],
                       capsys)
    assert rc == 0, err
    lines = out.splitlines()
    head = lines[1].split()
    col_max, col_n = head.index("max_flips"), head.index("n_flipped")
    body = [line.split() for line in lines[2:8]]
    assert {row[col_max] for row in body} == {"0", "4", "9"}
    assert all("." not in row[col_n] for row in body)


def test_huge_and_infinite_feature_values(tables, tmp_path, capsys):
    """1e308 in a feature is handled (no NumPy warning line); inf is one error line naming the argument."""
    frame = pd.read_csv(tables / "train.csv")
    for name, value in (("huge", 1e308), ("inf", np.inf)):
        bad = frame.copy()
        bad.loc[3, "age"] = value
        bad.to_csv(tmp_path / f"{name}.csv", index=False)
    rc, out, err = run(["flip", "--train", tmp_path / "huge.csv", "--label", "y", "--group", "race", "--minority", "B",
                        "--method", "rb-prob", "--budget", 3, "--categorical", "occ", "--json"], capsys)
    assert rc == 0, err
    assert "Warning" not in err and len(json.loads(out)["flipped"]) == 3
    rc, out, err = run(["flip", "--train", tmp_path / "inf.csv", "--label", "y", "--group", "race", "--minority", "B",
                        "--method", "rb-prob", "--budget", 3], capsys)
    assert rc == 2 and out == "" and err.count("\n") == 1 and err.startswith("fairflip: error: --train")


def test_gap_reports_its_calls_and_passes_the_time_limit(tables):
    from fairflip.datasets import load_table
    from fairflip.gap import optimality_gap

    train = load_table(tables / "train.csv", label="y", minority={"race": "B"}, categorical=["occ"])
    test = load_table(tables / "test.csv", label="y", minority={"race": "B"}, categorical=["occ"])
    reports = []
    table = optimality_gap(train, test, budgets=[0.2, 3], seeds=range(2), heuristics=["random", "rb-dist"],
                           oracle="rb-label", time_limit=30.0, progress=reports.append)
    calls = [r for r in reports if "total" in r]
    assert [r["done"] for r in calls] == list(range(6)) and {r["total"] for r in calls} == {6}
    assert calls[-1]["stage"] == "rb-label (seed 1)"
    assert set(table["budget"]) == {0.2, 3}


def test_reproduce_damaged_store_and_recover(tmp_path, capsys):
    """A damaged store is one error naming --recover, before any work; _check_store with recover moves it aside."""
    from fairflip.cli._output import discard_warnings
    from fairflip.cli.reproduce import _check_store

    out = tmp_path / "results"
    out.mkdir()
    (out / "results.sqlite").write_bytes(bytes(range(256)) * 4)
    rc, stdout, err = run(["reproduce", "--studies", "toy", "--quick", "--out", out], capsys)
    assert rc == 2 and stdout == "" and err.count("\n") == 1 and "--recover" in err
    assert sorted(p.name for p in out.iterdir()) == ["results.sqlite"]
    _check_store(str(out), recover=True)
    discard_warnings()
    names = sorted(p.name for p in out.iterdir())
    assert "results.sqlite" in names and any(n.startswith("results.sqlite.damaged-") for n in names)
    _check_store(str(out), recover=False)  # the fresh store is sound
