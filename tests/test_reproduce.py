"""``fairflip reproduce`` end to end on a small study, and the study verdicts computed from results."""

from __future__ import annotations

import pandas as pd
import pytest

from fairflip.cli import main
from fairflip.experiments.studies import STUDY_ORDER, load_config, summarise_collective_size, summarise_flips


SMALL = """
[study]
name = "collective_size"
number = 2
title = "Best EqOd versus collective size"
paper = "saturates"
[grid]
datasets = ["compas", "no-such-dataset"]
methods = ["rb-prob", "random", "no-such-method"]
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
    assert str(out / "report.html") in line
    html = (out / "report.html").read_text()
    md = (out / "report.md").read_text()
    assert "data:image/png;base64," in html and "approximate reading" in html
    assert "## 2. Best EqOd versus collective size" in md and "figures/collective_size.png" in md
    assert "dataset no-such-dataset skipped" in md and "no-such-method not installed" in md
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


def _rows(dataset, method, fraction, budget, eqod, seed=0, error=0.3):
    return dict(dataset=dataset, method=method, collective_fraction=fraction, budget_share=budget, eqod=eqod,
                error=error, seed=seed, n_flipped=10, budget=10)


def test_saturation_verdict_follows_the_numbers():
    cfg = load_config("collective_size", quick=True)
    base = [_rows("d", "none", 0.05, None, 0.30)]
    saturating = base + [_rows("d", "rb-prob", f, 0.5, e) for f, e in ((0.1, 0.2), (0.3, 0.06), (0.4, 0.055))]
    still_falling = base + [_rows("d", "rb-prob", f, 0.5, e) for f, e in ((0.1, 0.28), (0.3, 0.25), (0.4, 0.05))]
    assert summarise_collective_size(cfg, pd.DataFrame(saturating), {}).holds is True
    res = summarise_collective_size(cfg, pd.DataFrame(still_falling), {})
    assert res.holds is False and "does not hold" in res.verdict


def test_beat_random_verdict_follows_the_numbers():
    cfg = load_config("flips", quick=True)
    def frame(random_eqod):
        rows = [_rows("d", "none", 0.3, None, 0.3)]
        for b, (p, l, dd) in zip((0.1, 0.5), ((0.10, 0.12, 0.11), (0.09, 0.07, 0.08))):
            rows += [_rows("d", "rb-prob", 0.3, b, p), _rows("d", "rb-label", 0.3, b, l),
                     _rows("d", "rb-dist", 0.3, b, dd), _rows("d", "random", 0.3, b, random_eqod)]
        return pd.DataFrame(rows)
    assert summarise_flips(cfg, frame(0.2), {}).holds is True
    assert summarise_flips(cfg, frame(0.05), {}).holds is False
