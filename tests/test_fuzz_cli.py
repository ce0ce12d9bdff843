"""Hostile input to every subcommand: each case must end with the CLI's bad-input contract.

The contract, checked for every case: exit status 2, exactly one line on stderr and it starts with
``fairflip: error:``, nothing on stdout, and no file created, changed or removed in the working folder (the inputs
included). All cases run in this one process through ``fairflip.cli.main(argv)`` on tables of a few dozen rows.

Run as a script (``python tests/test_fuzz_cli.py``) to print the table of outcomes instead of asserting, with a
per-case time limit. Measured with these 486 cases (20 s per case) on the command line as it was before the
argument checks were added, and after:

| outcome | before | after |
|---|---|---|
| exit 2 with one clean line, no file touched | 367 (45 of them only because a new flag was unknown) | 486 |
| accepted (exit 0) | 42 | 0 |
| traceback | 40 | 0 |
| an input or output file created or changed | 13 | 0 |
| over the time limit | 13 | 0 |
| exit 2 with extra warning lines or a malformed line | 11 | 0 |
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import signal
import sys
import time
import traceback
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

MINORITY = "B"


# ----------------------------------------------------------------------------------------------- input files

def _frame(n: int, seed: int) -> pd.DataFrame:
    """A tiny table: two numeric features, one categorical, the group column ``race`` and the label ``y``."""
    rng = np.random.default_rng(seed)
    race = np.where(np.arange(n) % 3 == 0, "B", "A")
    age = np.round(rng.normal(35, 8, n), 1)
    priors = rng.integers(0, 6, n)
    sex = np.where(rng.random(n) < 0.5, "F", "M")
    y = (rng.random(n) < 0.45).astype(int)
    # every (group, label) cell holds at least 3 rows
    y[:6] = [0, 0, 0, 1, 1, 1]
    race[:6] = ["B", "B", "B", "B", "B", "B"]
    y[6:12] = [0, 0, 0, 1, 1, 1]
    race[6:12] = ["A"] * 6
    return pd.DataFrame({"age": age, "priors": priors, "sex": sex, "race": race, "y": y})


def make_files(folder: Path) -> None:
    """Write the valid inputs and every hostile file the cases name."""
    train, test = _frame(48, 0), _frame(30, 1)
    train.to_csv(folder / "train.csv", index=False)
    test.to_csv(folder / "test.csv", index=False)
    pd.DataFrame({"row": [1, 2]}).to_csv(folder / "flips.csv", index=False)
    (folder / "adir").mkdir()
    (folder / "empty.csv").write_text("")
    (folder / "header_only.csv").write_text("age,priors,sex,race,y\n")
    (folder / "garbage.csv").write_bytes(bytes(range(256)) * 8)
    (folder / "garbage.parquet").write_bytes(b"PAR1" + bytes(range(200, 256)) * 3)
    train.to_csv(folder / "csv_named.parquet", index=False)
    raw = gzip.compress(train.to_csv(index=False).encode())
    (folder / "truncated.csv.gz").write_bytes(raw[: len(raw) // 2])
    (folder / "one_column.csv").write_text("y\n" + "\n".join(str(v) for v in train["y"]) + "\n")
    train[["age", "priors", "sex", "race", "y", "y"]].to_csv(folder / "dup_label.csv", index=False)
    train[["age", "age", "priors", "sex", "race", "y"]].to_csv(folder / "dup_feature.csv", index=False)
    train[["age", "priors", "sex", "race", "race", "y"]].to_csv(folder / "dup_group.csv", index=False)
    three = train.copy()
    three.loc[0, "y"] = 2
    three.to_csv(folder / "three_labels.csv", index=False)
    nan_label = train.astype({"y": float})
    nan_label.loc[1, "y"] = np.nan
    nan_label.to_csv(folder / "nan_label.csv", index=False)
    for name, value in (("inf", np.inf), ("neginf", -np.inf)):
        bad = train.copy()
        bad.loc[3, "age"] = value
        bad.to_csv(folder / f"{name}_feature.csv", index=False)
    (folder / "wide.csv").write_text(",".join(f"c{i}" for i in range(100_001)) + ",race,y\n"
                                     + ",".join("1" for _ in range(100_001)) + ",B,1\n")
    missing_group = train.copy()
    missing_group.loc[4, "race"] = np.nan
    missing_group.to_csv(folder / "missing_group.csv", index=False)
    text_test = test.astype({"age": object})
    text_test.loc[2, "age"] = "unknown"
    text_test.to_csv(folder / "text_numeric_test.csv", index=False)
    test.drop(columns=["priors"]).to_csv(folder / "missing_col_test.csv", index=False)
    bad_label_test = test.copy()
    bad_label_test.loc[0, "y"] = 7
    bad_label_test.to_csv(folder / "bad_label_test.csv", index=False)
    no_b = train.assign(race="A")
    no_b.loc[0, "race"] = "C"
    no_b.to_csv(folder / "no_minority.csv", index=False)
    member = train.assign(member=(train["race"] == MINORITY).astype(int))
    member.to_csv(folder / "member.csv", index=False)
    member.assign(member=0).to_csv(folder / "member_empty.csv", index=False)
    member.assign(member=2).to_csv(folder / "member_bad.csv", index=False)
    flips = {
        "bool": "row\nTrue\nFalse\n", "huge": "row\n1e30\n", "negative": "row\n-1\n", "fraction": "row\n2.5\n",
        "nan": "row\nnan\n3\n", "text": "row\nabc\n", "beyond": "row\n1000\n", "dup": "row\n3\n3\n",
        "nocol": "idx\n3\n", "empty": "", "int64max": "row\n9223372036854775807\n",
        "two_to_64": "row\n18446744073709551616\n",
    }
    for name, text in flips.items():
        (folder / f"flips_{name}.csv").write_text(text)
    (folder / "flips_garbage.csv").write_bytes(bytes(range(256)))
    (folder / "broken_plugin.py").write_text("def oops(:\n")
    (folder / "raising_plugin.py").write_text("raise RuntimeError('plugin failed at import')\n")
    (folder / "quiet_plugin.py").write_text("QUIET = True\n")
    (folder / "notes.txt").write_text("not a folder\n")
    os.symlink(folder / "train.csv", folder / "link_to_train.csv")
    for name, content in (("store_garbage", bytes(range(256)) * 16),
                          ("store_truncated", b"SQLite format 3\x00" + bytes(100))):
        (folder / name).mkdir()
        (folder / name / "results.sqlite").write_bytes(content)
    foreign = folder / "store_foreign"
    foreign.mkdir()
    import sqlite3
    with sqlite3.connect(foreign / "results.sqlite") as con:
        con.execute("create table accounts (id integer primary key, owner text)")
    con.close()
    cfg = folder / "cfg_syntax"
    cfg.mkdir()
    (cfg / "toy.toml").write_text("[grid\nbudgets = [6]\n")
    cfg = folder / "cfg_nogrid"
    cfg.mkdir()
    (cfg / "toy.toml").write_text('name = "toy"\n')


# ----------------------------------------------------------------------------------------------- the cases

DATA = ["--train", "{d}/train.csv", "--test", "{d}/test.csv", "--label", "y", "--group", "race",
        "--minority", MINORITY]
BASE = {
    "flip": ["flip", *DATA, "--method", "random", "--budget", "3"],
    "evaluate": ["evaluate", *DATA, "--flips", "{d}/flips.csv"],
    "sweep": ["sweep", *DATA, "--methods", "random", "--budgets", "0,2", "--n-seeds", "1"],
    "gap": ["gap", *DATA, "--methods", "random", "--budgets", "2", "--oracle", "greedy"],
}
DATASET_BASE = ["--dataset", "german"]  # replaces the DATA block


@dataclass
class Case:
    """One hostile command line: ``argv`` with ``{d}`` standing for the working folder."""

    cid: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)


def with_opts(argv: list[str], *pairs: str, drop: tuple[str, ...] = ()) -> list[str]:
    """``argv`` with each ``--flag value`` of ``pairs`` replacing the flag's value (or appended), and the flags
    in ``drop`` removed with their values. A flag given with the value None (the string "<none>") is appended
    bare."""
    out = list(argv)
    for flag in drop:
        i = out.index(flag)
        del out[i:i + 2]
    it = iter(pairs)
    for flag in it:
        value = next(it)
        if value == "<bare>":
            out.append(flag)
        elif flag in out and flag not in ("--param", "--plugin", "--oracle-param"):
            out[out.index(flag) + 1] = value
        else:
            out += [flag, value]
    return out


def on_dataset(argv: list[str]) -> list[str]:
    """``argv`` with the user tables replaced by the embedded German credit data."""
    out = list(argv)
    i = out.index("--train")
    del out[i:i + len(DATA)]
    out[i:i] = DATASET_BASE
    return out


# argument -> values that must be refused wherever the argument exists
COMMON_BAD = {
    "--seed": ["-1", "4294967296", "18446744073709551616", "abc", "1.5", "nan", ""],
    "--collective-fraction": ["0", "-0.1", "1.5", "nan", "inf", "abc"],
    "--known-majority": ["-1", "0", "1.5", "abc", "nan"],
    "--C": ["0", "-1", "nan", "inf", "abc", "1e400"],
    "--direction": ["sideways", "", "UP"],
    "--firm": ["forest", ""],
    "--objective": ["fairness", ""],
    "--label": ["", "nosuch", "age", "race"],
    "--group": ["", "nosuch", ","],
    "--minority": ["", "Martian"],
    "--features": ["nosuch", "y", ",", "age,age"],
    "--time-limit": ["0", "-1", "nan", "abc", "inf"],
}
FILE_BAD_TRAIN = ["nope.csv", "adir", "empty.csv", "header_only.csv", "garbage.csv", "garbage.parquet",
                  "csv_named.parquet", "truncated.csv.gz", "one_column.csv", "dup_label.csv", "dup_feature.csv",
                  "dup_group.csv", "three_labels.csv", "nan_label.csv", "inf_feature.csv", "neginf_feature.csv",
                  "no_minority.csv", "notes.txt/x.csv", "wide.csv", "missing_group.csv"]
FILE_BAD_TEST = ["nope.csv", "adir", "empty.csv", "garbage.csv", "text_numeric_test.csv", "missing_col_test.csv",
                 "bad_label_test.csv", "truncated.csv.gz"]
OUT_BAD = ["adir", "nofolder/out.csv", "notes.txt/out.csv", "train.csv", "link_to_train.csv", "test.csv",
           "/proc/fairflip_out.csv", ""]
STRUCTURE = [
    ("dataset+label", ["<dataset>", "--label", "y"]),
    ("dataset+group", ["<dataset>", "--group", "race"]),
    ("dataset+minority", ["<dataset>", "--minority", "B"]),
    ("dataset+train", ["--dataset", "german"]),
    ("dataset unknown", ["<dataset>", "--dataset", "nosuch"]),
    ("collective+fraction", ["--train", "{d}/member.csv", "--collective", "member", "--collective-fraction", "0.5"]),
    ("collective+dataset", ["<dataset>", "--collective", "member"]),
    ("collective missing col", ["--collective", "nosuch"]),
    ("collective empty", ["--train", "{d}/member_empty.csv", "--collective", "member"]),
    ("collective non-binary", ["--train", "{d}/member_bad.csv", "--collective", "member"]),
    ("group twice", ["--group", "race,race", "--minority", "B,A"]),
    ("group/minority count", ["--group", "race,sex", "--minority", "B"]),
    ("categorical unknown", ["--categorical", "nosuch"]),
    ("categorical label", ["--categorical", "y"]),
    ("positive absent", ["--positive", "yes"]),
    ("test-size with train", ["--test-size", "0.5"]),
    ("split-seed with train", ["--split-seed", "3"]),
    ("test-size 0", ["<dataset>", "--test-size", "0"]),
    ("test-size 1", ["<dataset>", "--test-size", "1"]),
    ("test-size nan", ["<dataset>", "--test-size", "nan"]),
    ("test-size neg", ["<dataset>", "--test-size", "-0.2"]),
    ("split-seed neg", ["<dataset>", "--split-seed", "-1"]),
    ("split-seed 2**64", ["<dataset>", "--split-seed", "18446744073709551616"]),
    ("unknown option", ["--bogus", "1"]),
    ("extra positional", ["surplus"]),
    ("plugin missing module", ["--plugin", "fairflip_no_such_plugin_module"]),
    ("plugin missing file", ["--plugin", "{d}/nope_plugin.py"]),
    ("plugin syntax error", ["--plugin", "{d}/broken_plugin.py"]),
    ("plugin raises", ["--plugin", "{d}/raising_plugin.py"]),
]


def _structure_case(cmd: str, extra: list[str]) -> list[str]:
    argv = BASE[cmd]
    if extra and extra[0] == "<dataset>":
        argv, extra = on_dataset(argv), extra[1:]
    if extra and extra[0] == "surplus":
        return [*argv, "surplus"]
    return with_opts(argv, *extra)


def build_cases() -> list[Case]:
    cases: list[Case] = []

    def add(cid: str, argv: list[str], **env: str) -> None:
        cases.append(Case(cid, argv, env))

    # every common argument, every bad value, on flip; a sample of them on the other three problem commands
    for flag, values in COMMON_BAD.items():
        for v in values:
            add(f"flip {flag} {v!r}", with_opts(BASE["flip"], flag, v))
    for cmd in ("evaluate", "sweep", "gap"):
        for flag, values in COMMON_BAD.items():
            if cmd == "evaluate" and flag == "--time-limit":
                continue
            for v in values[:2]:
                add(f"{cmd} {flag} {v!r}", with_opts(BASE[cmd], flag, v))
    for cmd in ("flip", "evaluate", "sweep", "gap"):
        for sid, extra in STRUCTURE:
            add(f"{cmd} {sid}", _structure_case(cmd, extra))
    for cmd in ("flip", "sweep"):
        for f in FILE_BAD_TRAIN:
            add(f"{cmd} --train {f}", with_opts(BASE[cmd], "--train", f"{{d}}/{f}"))
        for f in FILE_BAD_TEST:
            add(f"{cmd} --test {f}", with_opts(BASE[cmd], "--test", f"{{d}}/{f}"))
    for cmd in ("evaluate", "gap"):
        for f in FILE_BAD_TRAIN[::3]:
            add(f"{cmd} --train {f}", with_opts(BASE[cmd], "--train", f"{{d}}/{f}"))
        for f in FILE_BAD_TEST[::2]:
            add(f"{cmd} --test {f}", with_opts(BASE[cmd], "--test", f"{{d}}/{f}"))
    for cmd in ("flip", "sweep", "gap"):
        for f in OUT_BAD:
            target = f if f.startswith("/") or not f else f"{{d}}/{f}"
            add(f"{cmd} --out {f!r}", with_opts(BASE[cmd], "--out", target))
    for cmd in ("flip", "sweep", "gap"):
        add(f"{cmd} --out the plugin file", with_opts(BASE[cmd], "--plugin", "{d}/quiet_plugin.py", "--out",
                                                      "{d}/quiet_plugin.py"))
    # flip
    for v in ["-1", "-0.5", "1.5", "abc", "nan", "inf", "", "1e400", "2.0", "0x3", "0.0", "1,2"]:
        add(f"flip --budget {v!r}", with_opts(BASE["flip"], "--budget", v))
    for v in ["magic", "", "random,rb-prob"]:
        add(f"flip --method {v!r}", with_opts(BASE["flip"], "--method", v))
    for v in ["seed=abc", "seed=-1", "seed=3", "k", "=3", "nosuch=1"]:
        add(f"flip --param {v!r}", with_opts(BASE["flip"], "--param", v))
    add("flip --json=1", [*BASE["flip"], "--json=1"])
    # methods that refuse the problem only once it is built (after the input warnings arose)
    add("flip --method ideal on a user table", with_opts(BASE["flip"], "--method", "ideal"))
    for v in ["k=0", "k=abc", "k=-5", "k=2.5", "scaling=nosuch"]:
        add(f"flip rb-label --param {v!r}", with_opts(BASE["flip"], "--method", "rb-label", "--param", v))
    add("flip oracle --param components=5", with_opts(BASE["flip"], "--method", "oracle", "--param", "components=5"))
    add("flip oracle-relaxed bad surrogate", with_opts(BASE["flip"], "--method", "oracle-relaxed", "--param",
                                                       "surrogate=nosuch"))
    add("sweep --methods ideal", with_opts(BASE["sweep"], "--methods", "random,ideal"))
    add("flip missing --budget", with_opts(BASE["flip"], drop=("--budget",)))
    add("flip missing --method", with_opts(BASE["flip"], drop=("--method",)))
    add("flip missing --train", with_opts(BASE["flip"], drop=("--train",)))
    add("flip missing --label", with_opts(BASE["flip"], drop=("--label",)))
    # evaluate: flips files
    for name in ["bool", "huge", "negative", "fraction", "nan", "text", "beyond", "dup", "nocol", "empty",
                 "int64max", "two_to_64", "garbage"]:
        add(f"evaluate --flips {name}", with_opts(BASE["evaluate"], "--flips", f"{{d}}/flips_{name}.csv"))
    add("evaluate --flips missing", with_opts(BASE["evaluate"], "--flips", "{d}/flips_missing.csv"))
    add("evaluate --flips folder", with_opts(BASE["evaluate"], "--flips", "{d}/adir"))
    add("evaluate no --flips", with_opts(BASE["evaluate"], drop=("--flips",)))
    add("evaluate --out", with_opts(BASE["evaluate"], "--out", "{d}/x.csv"))
    # sweep
    for v in ["", ",", "abc", "-1", "1.5", "0.1,5", "nan", "1e400", "2.0", "0,0"]:
        add(f"sweep --budgets {v!r}", with_opts(BASE["sweep"], "--budgets", v))
    for v in ["0", "1.5", "nan", ",", "abc", "-0.3"]:
        add(f"sweep --fractions {v!r}", with_opts(BASE["sweep"], "--fractions", v))
    for v in ["0", "-1", "100000000", "abc", "1.5"]:
        add(f"sweep --n-seeds {v!r}", with_opts(BASE["sweep"], "--n-seeds", v))
    for v in [",", "", "magic", "random,random"]:
        add(f"sweep --methods {v!r}", with_opts(BASE["sweep"], "--methods", v))
    for v in ["nan", "-1", "inf", "abc"]:
        add(f"sweep --max-error-increase {v!r}", with_opts(BASE["sweep"], "--max-error-increase", v))
    for v in ["random:k", "nomethod:k=1", "k=1", "random:seed=abc"]:
        add(f"sweep --param {v!r}", with_opts(BASE["sweep"], "--param", v))
    add("sweep no --test", with_opts(BASE["sweep"], drop=("--test",)))
    many = ",".join(str(i) for i in range(1000))
    add("sweep grid too large", with_opts(BASE["sweep"], "--budgets", many, "--n-seeds", "1000",
                                          "--methods", "random,rb-prob"))
    add("gap grid too large", with_opts(BASE["gap"], "--budgets", many, "--n-seeds", "1000"))
    add("sweep seed overflow", with_opts(BASE["sweep"], "--seed", "4294967295", "--n-seeds", "3"))
    add("sweep collective+fractions", with_opts(BASE["sweep"], "--train", "{d}/member.csv", "--collective",
                                                "member", "--fractions", "0.1,0.2"))
    # gap
    for v in [",", "", "magic", "random,random"]:
        add(f"gap --methods {v!r}", with_opts(BASE["gap"], "--methods", v))
    for v in ["", "-1", "abc", "1.5", "0.1,5", "nan", "2.0"]:
        add(f"gap --budgets {v!r}", with_opts(BASE["gap"], "--budgets", v))
    for v in ["0", "-1", "100000000", "abc"]:
        add(f"gap --n-seeds {v!r}", with_opts(BASE["gap"], "--n-seeds", v))
    for v in ["magic", ""]:
        add(f"gap --oracle {v!r}", with_opts(BASE["gap"], "--oracle", v))
    for v in ["x", "seed=abc", "nosuch=1"]:
        add(f"gap --oracle-param {v!r}", with_opts(BASE["gap"], "--oracle-param", v))
    # datasets
    for extra in (["--bogus"], ["surplus"], ["--json", "surplus"], ["--all", "--nope"], ["--json=yes"]):
        add(f"datasets {' '.join(extra)}", ["datasets", *extra])
    # reproduce
    rep = ["reproduce", "--studies", "toy", "--quick", "--workers", "1", "--out", "{d}/results"]
    for flag, values in {"--seeds": ["0", "-1", "abc", "100000000"], "--workers": ["0", "-1", "abc", "100000"],
                         "--studies": ["nosuch"], "--backend": ["foo"],
                         "--out": ["{d}/notes.txt", "{d}/notes.txt/sub", "/proc/fairflip_results", "",
                                   "{d}/store_garbage", "{d}/store_truncated", "{d}/store_foreign"],
                         "--configs": ["{d}/nope_dir", "{d}/notes.txt", "{d}/cfg_syntax", "{d}/cfg_nogrid"],
                         "--address": ["auto"]}.items():
        for v in values:
            add(f"reproduce {flag} {v!r}", with_opts(rep, flag, v))
    add("reproduce --studies empty", [*rep, "--studies"])
    add("reproduce surplus", [*rep, "surplus"])
    # a data home that is a file
    add("flip --dataset bank, data home a file", on_dataset(BASE["flip"])[:1] + ["--dataset", "bank"]
        + BASE["flip"][-4:], FAIRFLIP_DATA="{d}/notes.txt")
    # top level
    for argv in ([], ["nosuch"], ["--bogus"], ["--plugin"], ["--plugin", "fairflip_no_such_plugin_module", "datasets"],
                 ["--plugin", "{d}/raising_plugin.py", "datasets"]):
        add(f"top {' '.join(argv) or '(none)'}", argv)
    return cases


# ----------------------------------------------------------------------------------------------- the harness

def snapshot(folder: Path) -> dict[str, tuple]:
    """Every entry under ``folder``: kind, size, mode and content hash (links by their target)."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            p = Path(root) / name
            rel = str(p.relative_to(folder))
            st = os.lstat(p)
            if os.path.islink(p):
                out[rel] = ("link", os.readlink(p))
            elif p.is_dir():
                out[rel] = ("dir", st.st_mode)
            else:
                out[rel] = ("file", st.st_size, st.st_mode, hashlib.sha1(p.read_bytes()).hexdigest())
    return out


class _Timeout(BaseException):
    pass


def _alarm(signum, frame):
    raise _Timeout()


def run_case(case: Case, folder: Path, time_limit: int = 60) -> tuple[str, str]:
    """Run one case in this process; return (outcome, detail). The outcome is ``ok`` when the contract holds."""
    from fairflip.cli import main

    argv = [a.replace("{d}", str(folder)) for a in case.argv]
    before = snapshot(folder)
    out, err = io.StringIO(), io.StringIO()
    old_env = {k: os.environ.get(k) for k in case.env}
    os.environ.update({k: v.replace("{d}", str(folder)) for k, v in case.env.items()})
    cwd = os.getcwd()
    os.chdir(folder)
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(time_limit)
    rc, crashed = None, None
    start = time.perf_counter()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            warnings.simplefilter("default")
            try:
                rc = main(argv)
            except SystemExit as exc:
                rc = exc.code
    except _Timeout:
        crashed = "timeout"
    except BaseException as exc:  # noqa: BLE001 - the point is to see what escapes
        crashed = "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()[-1]
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        os.chdir(cwd)
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    elapsed = time.perf_counter() - start
    after = snapshot(folder)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    lines = err.getvalue().splitlines()
    if crashed == "timeout":
        outcome, detail = "over the time limit", f"> {time_limit} s"
    elif crashed is not None:
        outcome, detail = "traceback", crashed
    elif changed:
        outcome, detail = "file created or changed", ", ".join(changed[:3])
    elif rc in (0, None):
        outcome, detail = "accepted (exit 0)", f"{elapsed:.1f} s"
    elif rc != 2:
        outcome, detail = f"exit {rc}", (lines[-1] if lines else "")
    elif out.getvalue():
        outcome, detail = "output on stdout", out.getvalue()[:80]
    elif len(lines) != 1 or not lines[0].startswith("fairflip: error: "):
        outcome, detail = "exit 2 but extra or malformed lines", " | ".join(lines[:3])[:200]
    else:
        outcome, detail = "ok", lines[0]
    # undo anything a failed case left behind, so later cases start from the same files
    for k in changed:
        p = folder / k
        if k not in before and (p.is_file() or p.is_symlink()):
            p.unlink()
        elif k not in before and p.is_dir():
            import shutil
            shutil.rmtree(p)
    if any(before.get(k) != after.get(k) and k in before for k in changed):
        for item in folder.iterdir():
            if item.is_symlink() or item.is_file():
                item.unlink()
            else:
                import shutil
                shutil.rmtree(item)
        make_files(folder)
    return outcome, detail


CASES = build_cases()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    make_files(d)
    return d


def test_valid_bases_succeed(folder):
    """The unmutated command lines work, so a refused mutation is refused for the mutation."""
    from fairflip.cli import main

    for cmd, argv in BASE.items():
        with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()):
            rc = main([a.replace("{d}", str(folder)) for a in argv])
        assert rc == 0, cmd
        assert out.getvalue().strip(), cmd
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(on_dataset(BASE["flip"])) == 0


def test_hostile_inputs_keep_the_contract(folder):
    assert len(CASES) >= 200
    assert len({c.cid for c in CASES}) == len(CASES)
    failures = []
    tally: Counter = Counter()
    for case in CASES:
        outcome, detail = run_case(case, folder, time_limit=60)
        tally[outcome] += 1
        if outcome != "ok":
            failures.append(f"{case.cid}: {outcome}: {detail}")
    summary = ", ".join(f"{k}: {v}" for k, v in tally.most_common())
    assert not failures, f"{len(failures)} of {len(CASES)} cases broke the contract ({summary}):\n" + "\n".join(
        failures)


if __name__ == "__main__":
    import tempfile

    limit = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        make_files(d)
        tally = Counter()
        for case in CASES:
            outcome, detail = run_case(case, d, time_limit=limit)
            tally[outcome] += 1
            print(f"{outcome:38s} {case.cid:45s} {detail}", flush=True)
        print(f"\n{len(CASES)} cases")
        print("| outcome | cases |\n|---|---|")
        for k, v in tally.most_common():
            print(f"| {k} | {v} |")
