"""``fairflip reproduce`` end to end on small studies, and the study verdicts computed from results."""

from __future__ import annotations

import sqlite3
from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from fairflip.cli import main
from fairflip.experiments.studies import (
    STUDIES, STUDY_ORDER, load_config, summarise_collective_size, summarise_flips,
)
from fairflip.experiments.store import ResultStore


SMALL = """
[study]
name = "collective_size"
number = 2
title = "Best EqOd versus collective size"
paper = "saturates"
[grid]
datasets = ["compas", "bank"]
methods = ["rb-prob", "random"]
fractions = [0.1, 0.3]
budgets = [0.5, 1.0]
seeds = 5
[quick]
seeds = 2
"""


def test_reproduce_writes_report_and_resumes(tmp_path, capsys):
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "collective_size.toml").write_text(SMALL)
    out = tmp_path / "out"
    args = ["reproduce", "--studies", "collective_size", "--quick", "--seeds", "1", "--workers", "1",
            "--out", str(out), "--configs", str(cfg)]
    assert main(args + ["--no-progress"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("fairflip reproduce: 9 cells (0 reused, 9 computed, 0 failed)")
    for name in ("report.html", "report.md", "results.csv", "results.sqlite"):
        assert str(out / name) in line
    html = (out / "report.html").read_text()
    md = (out / "report.md").read_text()
    assert "data:image/png;base64," in html and "approximate reading" in html
    assert "## 2. Best EqOd versus collective size" in md and "figures/collective_size.png" in md
    # the first paragraph, the header and the captioned figure
    assert md.split("\n")[2].startswith("This quick run tested 1 of the paper's claims with 1 seed per study.")
    assert "Not judged" in md.split("\n")[2] and "± 0.000" not in md
    for fact in ("fairflip version", "git commit", "date", "seeds", "packages", "numpy", "torch", "scikit-learn",
                 "cvxpy", "highspy", "fairlearn"):
        assert fact in md
    assert "*Figure 1 (collective_size)." in md and "Error bars" in md
    assert f"results store (SQLite): `{out / 'results.sqlite'}`" in md and str(out / "results.csv") in html
    # bank is registered but lives in the data home, which is empty here (unknown names are refused when the
    # config is read: tests/test_config.py)
    assert "dataset bank skipped" in md
    assert (out / "figures" / "collective_size.svg").read_text().lstrip().startswith("<?xml")
    table = pd.read_csv(out / "results.csv")
    assert {"dataset", "method", "firm", "collective_fraction", "budget", "seed", "n_flipped", "eqod",
            "eqod_worst", "dp", "error"} <= set(table.columns)
    assert set(table.dataset) == {"compas"} and (table.seed == 0).all() and len(table) == 9
    assert (table.n_flipped <= table.budget).all() and table.eqod.between(0, 1).all()
    # the second run reuses every cell
    assert main(args + ["--no-progress"]) == 0
    assert "9 cells (9 reused, 0 computed" in capsys.readouterr().out


def test_bad_arguments_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "--studies", "nope", "--out", str(tmp_path)])
    assert exc.value.code == 2
    assert main(["reproduce", "--studies", "toy", "--seeds", "0", "--out", str(tmp_path)]) == 2
    assert "--seeds must be at least 1" in capsys.readouterr().err
    assert main(["reproduce", "--studies", "toy", "--address", "auto", "--out", str(tmp_path)]) == 2


def test_configs_load_and_quick_is_smaller():
    for name in STUDY_ORDER:
        full, quick = load_config(name), load_config(name, quick=True)
        assert full.number == STUDY_ORDER.index(name) + 1 and full.paper
        assert len(quick.seeds) <= len(full.seeds) and len(quick.grid["datasets"]) <= len(full.grid["datasets"])
    assert load_config("flips", seeds=3).seeds == [0, 1, 2]


def test_seed_counts_match_the_help_text():
    """`reproduce --help` states the default seed counts; every packaged config must match them."""
    import re

    from fairflip.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    text = next(a.help for a in sub.choices["reproduce"]._actions if a.dest == "seeds")
    full, quick = map(int, re.search(r"default: (\d+), or (\d+) with --quick", text).groups())
    assert {name: len(load_config(name).seeds) for name in STUDY_ORDER} == dict.fromkeys(STUDY_ORDER, full)
    assert {name: len(load_config(name, quick=True).seeds) for name in STUDY_ORDER} == dict.fromkeys(STUDY_ORDER,
                                                                                                      quick)


def _rows(dataset, method, fraction, budget, eqod, seed=0, error=0.3):
    return dict(dataset=dataset, method=method, collective_fraction=fraction, budget_share=budget, eqod=eqod,
                error=error, seed=seed, n_flipped=10, budget=10)


# Per-seed offsets: three seeds that agree closely, so a 95% interval over them is narrow.
JITTER = (0.0, 0.002, -0.002)


def test_saturation_verdict_follows_the_numbers():
    cfg = load_config("collective_size", quick=True)

    def frame(curve, seeds=JITTER):
        rows = []
        for s, j in enumerate(seeds):
            rows.append(_rows("d", "none", 0.05, None, 0.30 + j, seed=s))
            rows += [_rows("d", "rb-prob", f, 0.5, e + j, seed=s) for f, e in curve]
        return pd.DataFrame(rows)

    saturating = ((0.1, 0.2), (0.3, 0.06), (0.4, 0.055))
    still_falling = ((0.1, 0.28), (0.3, 0.25), (0.4, 0.05))
    assert summarise_collective_size(cfg, frame(saturating), {}).holds is True
    res = summarise_collective_size(cfg, frame(still_falling), {})
    assert res.holds is False and "does not hold" in res.verdict
    # one seed: nothing to judge, and no "± 0.000" anywhere
    one = summarise_collective_size(cfg, frame(saturating, seeds=(0.0,)), {})
    assert one.holds is None and "not judged" in one.verdict
    assert all("± 0.000" not in str(v) for t in one.tables.values() for v in t.to_numpy().ravel())
    # seeds that disagree widely: the interval straddles the 25% criterion
    wild = pd.concat([frame(((0.1, 0.2), (0.3, 0.06 + d), (0.4, 0.055)), seeds=(0.0,)).assign(seed=s)
                      for s, d in enumerate((0.0, 0.1, -0.04))])
    assert summarise_collective_size(cfg, wild, {}).holds is None


def test_beat_random_verdict_follows_the_numbers():
    cfg = load_config("flips", quick=True)

    def frame(random_eqod, seeds=JITTER):
        rows = []
        for s, j in enumerate(seeds):
            rows.append(_rows("d", "none", 0.3, None, 0.3, seed=s))
            for b, (p, lab, dd) in zip((0.1, 0.5), ((0.10, 0.12, 0.11), (0.09, 0.07, 0.08))):
                rows += [_rows("d", "rb-prob", 0.3, b, p + j, seed=s), _rows("d", "rb-label", 0.3, b, lab + j, seed=s),
                         _rows("d", "rb-dist", 0.3, b, dd + j, seed=s),
                         _rows("d", "random", 0.3, b, random_eqod - j, seed=s)]
        return pd.DataFrame(rows)
    assert summarise_flips(cfg, frame(0.2), {}).holds is True
    assert summarise_flips(cfg, frame(0.05), {}).holds is False
    assert summarise_flips(cfg, frame(0.2, seeds=(0.0,)), {}).holds is None
    # flip-all rows (budget share 1) are the same for every strategy and are not compared
    every = pd.concat([frame(0.2), pd.DataFrame([_rows("d", m, 0.3, 1.0, 0.5 if m == "random" else 0.9, seed=s)
                                                 for m in ("random", "rb-prob", "rb-label", "rb-dist")
                                                 for s in range(3)])])
    assert summarise_flips(cfg, every, {}).holds is True


# Two small studies beyond the paper, on 900 COMPAS rows: 2 no-flip + 2 strategies x 2 cleaners x plain/stealthy
# cleaning cells, 1 no-flip + 2 strategies intersectional cells.
BEYOND = {
    "cleaning": """
[study]
name = "cleaning"
number = 9
title = "A firm that cleans its labels"
paper = "not studied"
[grid]
datasets = ["compas"]
methods = ["random", "rb-prob"]
cleaners = ["confident", "loss"]
loss_fraction = 0.05
stealth_safety = 0.0
fractions = [0.3]
budgets = [0.5]
seeds = 1
max_rows = { compas = 900 }
""",
    "intersectional": """
[study]
name = "intersectional"
number = 10
title = "Intersectional minorities"
paper = "not studied"
[grid]
datasets = ["compas"]
minorities = { compas = { race = "African-American", sex = "Female" } }
methods = ["random", "rb-prob"]
min_cell = 5
fractions = [0.3]
budgets = [0.5]
seeds = 1
max_rows = { compas = 900 }
""",
}
TIMING = ["runtime_s", "select_time_s"]


def test_beyond_studies_land_in_the_store_and_report_and_resume(tmp_path, capsys):
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    for name, text in BEYOND.items():
        (cfg / f"{name}.toml").write_text(text)
    out = tmp_path / "out"
    args = ["reproduce", "--studies", "cleaning", "intersectional", "--workers", "1", "--out", str(out),
            "--configs", str(cfg), "--no-progress"]
    assert main(args) == 0
    assert "13 cells (0 reused, 13 computed, 0 failed)" in capsys.readouterr().out
    with ResultStore(out) as store:
        first = store.table().drop(columns=TIMING)
        finished = {r["config_hash"]: r["finished_at"] for r in store.records()}
    # every planned cell is in the store under its config hash
    for name in BEYOND:
        plan = STUDIES[name].plan(load_config(name, folder=cfg))
        assert set(first.config_hash[first.study == name]) == {c.config_hash for c in plan.cells}
    clean = first[first.study == "cleaning"]
    assert len(clean) == 10 and set(clean.cleaner) == {"confident", "loss"}
    assert clean.stealth.sum() == 4 and clean.recall[clean.method != "none"].between(0, 1).all()
    inter = first[first.study == "intersectional"]
    assert len(inter) == 3 and set(inter.minority) == {"race=African-American&sex=Female"}
    assert (inter.n_groups == 4).all() and (inter.worst_eqod_worst >= inter.eqod_worst - 1e-12).all()
    assert pd.read_csv(out / "results.csv").cleaner.notna().sum() == 10
    md = (out / "report.md").read_text()
    assert "## 9. A firm that cleans its labels" in md and "## 10. Intersectional minorities" in md
    assert ("stealth keeps the cleaners' recall at or below" in md
            or "identical for every strategy and budget" in md) and "worst pairwise EqOd" in md
    for fig in ("cleaning", "intersectional"):
        assert f"figures/{fig}.png" in md and (out / "figures" / f"{fig}.svg").is_file()
    # a rerun recomputes nothing and rewrites nothing
    assert main(args) == 0
    assert "13 cells (13 reused, 0 computed, 0 failed)" in capsys.readouterr().out
    # an interrupted run (three cells never written) is finished without touching the others
    lost = clean.config_hash[clean.stealth.astype(bool)].tolist()[:2] + inter.config_hash.tolist()[-1:]
    with sqlite3.connect(out / ResultStore.FILENAME) as conn:
        conn.executemany("DELETE FROM cells WHERE config_hash = ?", [(h,) for h in lost])
    conn.close()
    assert main(args) == 0
    assert "13 cells (10 reused, 3 computed, 0 failed)" in capsys.readouterr().out
    with ResultStore(out) as store:
        again = store.table().drop(columns=TIMING)
        assert all(r["finished_at"] == finished[r["config_hash"]] for r in store.records()
                   if r["config_hash"] not in lost)
    pd.testing.assert_frame_equal(again, first, check_exact=True)


def test_intersectional_cell_against_brute_force_pairs():
    from fairflip.experiments.cells import Cell, prepare, run_cell
    from fairflip.metrics import eqod

    cell = Cell(study="intersectional", kind="intersectional", dataset="compas", method="rb-prob", seed=0,
                budget=0.5, max_rows=900, options={"minority": {"sex": "Female", "race": "African-American"},
                                                   "min_cell": 5})
    out = run_cell(cell)
    src = prepare(cell)
    test = src.test
    assert sorted(np.unique(test.group)) == ["race=African-American&sex=Female", "race=African-American&sex=Male",
                                             "race=Caucasian&sex=Female", "race=Caucasian&sex=Male"]
    problem = src.problem
    model = problem.firm.fit(problem.X, problem.flipped_labels(np.array(out["extra"]["flipped"], dtype=np.int64)))
    pred = model.predict(src.test_arrays[0])
    minority = (test.group == "race=African-American&sex=Female").astype(np.int64)
    m = out["metrics"]
    assert m["eqod"] == pytest.approx(eqod(test.y, pred, minority), abs=1e-12)
    pairs = [(g1, g2) for g1, g2 in combinations(np.unique(test.group), 2)
             if all(((test.group == g) & (test.y == lab)).sum() >= 5 for g in (g1, g2) for lab in (0, 1))]
    worst = max(eqod(test.y[r], pred[r], (test.group[r] == g1).astype(np.int64))
                for g1, g2 in pairs for r in [(test.group == g1) | (test.group == g2)])
    assert m["worst_eqod"] == pytest.approx(worst, abs=1e-12)
    assert m["n_groups"] == len({g for p in pairs for g in p})


def test_cells_without_options_keep_their_keys():
    from fairflip.experiments.cells import Cell

    # keys written by runner version 1 before cells had options: a rerun must still find those cells
    cell = Cell(study="t", dataset="compas", method="random", seed=0, budget=0.5)
    assert cell.config_hash == "0f81716cea852df8e8dd96c65f9453a8466f5c47788304420173b52b2d3dd867"
    gap = Cell(study="gap", dataset="compas", method="oracle-convex", seed=1, budget=0.2, max_rows=1500,
               params={"time_limit": 5.0})
    assert gap.config_hash == "91c86b91710226cea6dc6dc639aa46b1d666cda54e40eee5c49ea921c5b622a2"
    with_options = Cell(study="t", dataset="compas", method="random", seed=0, budget=0.5, kind="cleaning",
                        options={"cleaner": "loss", "stealth": False, "loss_fraction": 0.05, "safety": 0.0})
    assert Cell.from_dict(with_options.to_dict()) == with_options and with_options.config_hash != cell.config_hash


def test_quick_plans_of_the_beyond_studies():
    clean = STUDIES["cleaning"].plan(load_config("cleaning", quick=True))
    kinds = {(c.option_dict["cleaner"], c.option_dict["stealth"]) for c in clean.cells}
    assert kinds == {("confident", False), ("confident", True), ("loss", False), ("loss", True)}
    assert all(c.kind == "cleaning" for c in clean.cells) and {c.seed for c in clean.cells} == {0, 1, 2}
    assert {c.method for c in clean.cells} == {"none", "random", "rb-prob", "rb-label", "rb-dist", "oracle"}
    # the oracle is the full portfolio with its defaults (no stand-in, no caps)
    assert all(c.param_dict == {} for c in clean.cells if c.method == "oracle")
    inter = STUDIES["intersectional"].plan(load_config("intersectional", quick=True))
    assert {c.dataset: c.option_dict["minority"] for c in inter.cells} == {
        "compas": {"race": "African-American", "sex": "Female"}, "adult": {"race": "Black", "sex": "Female"}}
    assert STUDY_ORDER[-2:] == ("cleaning", "intersectional")
