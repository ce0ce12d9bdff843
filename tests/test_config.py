"""Study configs: every bad config is one clear error naming the file and the key, before any cell runs."""

from __future__ import annotations

from importlib import resources

import pytest

from fairflip._errors import FairflipError
from fairflip.experiments.config_schema import GRID_KEYS, MAX_SEEDS, REQUIRED_BY_STUDY, REQUIRED_GRID
from fairflip.experiments.study_kit import STUDY_ORDER, load_config

TOY = resources.files("fairflip.experiments").joinpath("configs", "toy.toml").read_text()


def _edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


# (name, config text, fragments every message must hold)
CASES = [
    ("syntax", TOY + "\nseeds = = 3\n", ["TOML syntax error"]),
    ("unclosed", _edit(TOY, 'datasets = ["toy2d"]', 'datasets = ["toy2d"'), ["TOML syntax error"]),
    ("no grid", TOY[: TOY.index("[grid]")], ["missing table [grid]"]),
    ("no study", TOY[TOY.index("[grid]"):], ["missing table [study]"]),
    ("typo key", _edit(TOY, "budgets = [6]", "bugdets = [6]"), ["unknown key 'bugdets'", "did you mean 'budgets'"]),
    ("missing key", _edit(TOY, "budgets = [6]", ""), ["[grid] missing key 'budgets'"]),
    ("missing methods", _edit(TOY, 'methods = ["rb-prob", "rb-label", "rb-dist", "random", "oracle"]', ""),
     ["missing key 'methods'"]),
    ("unknown dataset", _edit(TOY, 'datasets = ["toy2d"]', 'datasets = ["toy2d", "no-such-data"]'),
     ["key 'datasets'", "unknown dataset 'no-such-data'"]),
    ("unknown method", _edit(TOY, '"random", "oracle"]', '"random", "rb-probb"]'),
     ["key 'methods'", "unknown method 'rb-probb'", "did you mean 'rb-prob'"]),
    ("negative budget", _edit(TOY, "budgets = [6]", "budgets = [6, -3]"), ["key 'budgets'", "-3"]),
    ("share above one", _edit(TOY, "budgets = [6]", "budgets = [1.5]"), ["key 'budgets'", "[0, 1]"]),
    ("nan budget", _edit(TOY, "budgets = [6]", "budgets = [nan]"), ["key 'budgets'"]),
    ("bool budget", _edit(TOY, "budgets = [6]", "budgets = [true]"), ["key 'budgets'"]),
    ("fraction 7", _edit(TOY, "fractions = [0.3]", "fractions = [7.0]"), ["key 'fractions'", "(0.0, 1.0]"]),
    ("fraction 0", _edit(TOY, "fractions = [0.3]", "fractions = [0.0]"), ["key 'fractions'"]),
    ("empty fractions", _edit(TOY, "fractions = [0.3]", "fractions = []"), ["key 'fractions'", "non-empty"]),
    ("fractions scalar", _edit(TOY, "fractions = [0.3]", "fractions = 0.3"), ["key 'fractions'", "a list"]),
    ("seeds 0", _edit(TOY, "seeds = 5", "seeds = 0"), ["key 'seeds'"]),
    ("seeds huge", _edit(TOY, "seeds = 5", "seeds = 100000000"), ["key 'seeds'", str(MAX_SEEDS)]),
    ("seeds float", _edit(TOY, "seeds = 5", "seeds = 2.5"), ["key 'seeds'"]),
    ("bad direction", _edit(TOY, 'direction = "up"', 'direction = "sideways"'), ["key 'direction'"]),
    ("unknown firm", _edit(TOY, 'firm = "logistic"', 'firm = "logistik"'), ["key 'firm'", "logistic"]),
    ("quick typo", TOY + "\nseedz = 1\n", ["[quick]", "unknown key 'seedz'"]),
    ("quick bad value", _edit(TOY, "[quick]\nseeds = 3", "[quick]\nseeds = -2"), ["[quick] key 'seeds'"]),
    ("unknown table", TOY + "\n[extra]\na = 1\n", ["unknown key 'extra'"]),
    ("wrong name", _edit(TOY, 'name = "toy"', 'name = "flips"'), ["[study] key 'name'"]),
    ("missing title", "\n".join(l for l in TOY.splitlines() if not l.startswith("title")), ["missing key 'title'"]),
    ("duplicate entry", _edit(TOY, "budgets = [6]", "budgets = [6, 6]"), ["key 'budgets'", "repeats"]),
    ("max_rows typo", _edit(TOY, "seeds = 5", "seeds = 5\nmax_rows = { toy2 = 100 }"), ["key 'max_rows'"]),
    ("max_rows zero", _edit(TOY, "seeds = 5", "seeds = 5\nmax_rows = { toy2d = 0 }"), ["key 'max_rows'"]),
    ("bad method param", _edit(TOY, "seeds = 5", "seeds = 5\nmethod_params = { rb-label = { kk = 3 } }"),
     ["key 'method_params'", "rb-label", "kk"]),
    ("huge grid", _edit(TOY, "budgets = [6]", "budgets = [" + ", ".join(map(str, range(300))) + "]")
     .replace("seeds = 5", "seeds = 9999"), ["cells", "limit"]),
]


def test_every_bad_config_is_one_clear_error_naming_file_and_key(tmp_path):
    assert len(CASES) >= 30
    seen = set()
    for name, text, fragments in CASES:
        folder = tmp_path / name.replace(" ", "_")
        folder.mkdir()
        path = folder / "toy.toml"
        path.write_text(text)
        with pytest.raises(FairflipError) as info:
            load_config("toy", folder=folder)
        message = str(info.value)
        assert str(path) in message, (name, message)
        assert "\n" not in message.strip() or "TOML" in message, (name, message)
        for fragment in fragments:
            assert fragment in message, (name, fragment, message)
        seen.add(message)
    assert len(seen) == len(CASES)  # each case has its own message


def test_packaged_configs_and_their_quick_variants_are_valid():
    for name in STUDY_ORDER:
        for quick in (False, True):
            cfg = load_config(name, quick=quick)
            for key in REQUIRED_GRID + REQUIRED_BY_STUDY[name]:
                assert key in cfg.grid
            assert set(cfg.grid) <= set(GRID_KEYS)
    assert load_config("toy", seeds=3).seeds == [0, 1, 2]
    for bad in (0, -1, MAX_SEEDS + 1, 2.0, True):
        with pytest.raises(FairflipError, match="--seeds"):
            load_config("toy", seeds=bad)


def test_a_bad_config_stops_reproduce_before_any_file_is_written(tmp_path):
    from fairflip.experiments.reproduce import reproduce

    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "toy.toml").write_text(_edit(TOY, "budgets = [6]", "budgets = [6, -3]"))
    out = tmp_path / "out"
    with pytest.raises(FairflipError, match="budgets"):
        reproduce(out=out, studies=["toy"], configs=cfg, progress=False)
    assert not out.exists()
    with pytest.raises(FairflipError, match="no config"):
        load_config("flips", folder=cfg)
    with pytest.raises(FairflipError, match="not a folder"):
        load_config("toy", folder=cfg / "toy.toml")
