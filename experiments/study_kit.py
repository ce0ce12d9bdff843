"""What every study is made of: its config, its plan of cells, its summarised result, and shared helpers.

A study is a pair of functions: ``plan(config) -> Plan`` lists the cells, and
``summarise(config, frame, records) -> StudyResult`` reads the tidy table of those cells (see
:meth:`fairflip.experiments.store.ResultStore.table`) and the raw store records keyed by config hash. The helpers
here build the usual grids of cells and format the usual summaries; :mod:`fairflip.experiments.studies` registers
the studies themselves.
"""

from __future__ import annotations

import itertools
import os
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser as a package
    import tomli as tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from fairflip._errors import FairflipError
from fairflip.methods import ORACLES, PAPER_HEURISTICS as HEURISTICS

from .cells import Cell, dataset_available

# The paper's eight studies, then the two beyond it.
STUDY_ORDER = ("toy", "collective_size", "flips", "restricted", "firm_side", "transfer", "gap", "ablation",
               "cleaning", "intersectional")


@dataclass(frozen=True)
class StudyConfig:
    """A study's config after the ``[quick]`` overrides and ``--seeds``.

    Attributes:
        name, number, title: identity of the study.
        paper: the paper's claim as read off the authors' poster (approximate).
        grid: the resolved grid (datasets, methods, fractions, budgets, seeds, max_rows, ...).
        quick: whether this is the quick variant.
    """

    name: str
    number: int
    title: str
    paper: str
    grid: dict
    quick: bool

    @property
    def seeds(self) -> list[int]:
        """Seeds 0 .. seeds - 1."""
        return list(range(int(self.grid["seeds"])))

    def max_rows(self, dataset: str) -> int | None:
        """Row cap of ``dataset`` (None: all rows)."""
        return self.grid.get("max_rows", {}).get(dataset)


def load_config(name: str, *, quick: bool = False, seeds: int | None = None,
                folder: str | os.PathLike | None = None) -> StudyConfig:
    """Read ``<name>.toml`` from ``folder`` (default: the packaged ``configs/``); ``quick`` applies its
    ``[quick]`` table, ``seeds`` overrides the seed count."""
    if name not in STUDY_ORDER:
        raise FairflipError(f"unknown study '{name}'; choose from {', '.join(STUDY_ORDER)}")
    if folder is None:
        text = resources.files("fairflip.experiments").joinpath("configs", f"{name}.toml").read_text()
    else:
        path = Path(folder) / f"{name}.toml"
        if not path.is_file():
            raise FairflipError(f"no config for study '{name}' in {folder}")
        text = path.read_text()
    raw = tomllib.loads(text)
    grid = dict(raw["grid"])
    if quick:
        grid.update(raw.get("quick", {}))
    if seeds is not None:
        if seeds < 1:
            raise FairflipError(f"--seeds must be at least 1, got {seeds}")
        grid["seeds"] = seeds
    s = raw["study"]
    return StudyConfig(s["name"], int(s["number"]), s["title"], s["paper"], grid, quick)


@dataclass
class Plan:
    """The cells of a study and notes on what was left out (absent datasets, methods not installed)."""

    cells: list[Cell] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class StudyResult:
    """A summarised study.

    Attributes:
        config: the study's config.
        table: the summary table (means and spreads over seeds).
        figures: name -> matplotlib Figure.
        verdict: one sentence on whether the paper's claim holds here (computed from the results).
        holds: True, False, or None when the study has no claim of the paper to test or no data.
        paper_rows: rows of the paper-versus-ours table (study, dataset, quantity, paper, ours).
        notes: what was skipped or is worth knowing.
    """

    config: StudyConfig
    table: pd.DataFrame
    figures: dict
    verdict: str
    holds: bool | None
    paper_rows: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- planning helpers

def plan_datasets(cfg: StudyConfig, notes: list[str]) -> list[str]:
    out = []
    for name in cfg.grid["datasets"]:
        ok, why = dataset_available(name)
        if ok:
            out.append(name)
        else:
            reason = why.splitlines()[0][:160]
            notes.append(f"dataset {name} skipped (absent from the data home or unknown): {reason}")
    return out


def plan_methods(names, notes: list[str]) -> list[str]:
    from fairflip.methods import available_methods

    have = set(available_methods())
    missing = [m for m in names if m not in have]
    if missing:
        notes.append(f"method(s) {', '.join(missing)} not installed; left out")
    return [m for m in names if m in have]


def grid_cells(cfg: StudyConfig, datasets, methods, *, budgets=None, known=(None,), params=({},),
                **fixed) -> list[Cell]:
    g = cfg.grid
    fixed.setdefault("firm", g.get("firm", "logistic"))
    # A config's device = "cuda" puts its cells on a GPU (and asks Ray for one).
    fixed.setdefault("device", g.get("device", "cpu"))
    cells = []
    for ds, m, f, b, k, p, s in itertools.product(datasets, methods, g["fractions"], budgets or g["budgets"],
                                                  known, params, cfg.seeds):
        cells.append(Cell(study=cfg.name, dataset=ds, method=m, seed=s, collective_fraction=f, budget=b,
                          known_majority=k, params=p, direction=g.get("direction", "auto"),
                          max_rows=cfg.max_rows(ds), **fixed))
    return cells


def baseline_cells(cfg: StudyConfig, datasets, **fixed) -> list[Cell]:
    """The unchanged firm (method none, no flips) per dataset and seed."""
    g = cfg.grid
    fixed.setdefault("firm", g.get("firm", "logistic"))
    # A config's device = "cuda" puts its cells on a GPU (and asks Ray for one).
    fixed.setdefault("device", g.get("device", "cpu"))
    return [Cell(study=cfg.name, dataset=ds, method="none", seed=s, collective_fraction=g["fractions"][0], budget=0,
                 direction=g.get("direction", "auto"), max_rows=cfg.max_rows(ds), **fixed)
            for ds in datasets for s in cfg.seeds]


def flip_plan(cfg: StudyConfig, methods_key: str = "methods", **kw) -> Plan:
    plan = Plan()
    ds = plan_datasets(cfg, plan.notes)
    methods = plan_methods(cfg.grid[methods_key], plan.notes)
    plan.cells = baseline_cells(cfg, ds) + grid_cells(cfg, ds, methods, **kw)
    return plan


# ---------------------------------------------------------------- summary helpers

def mean_sd(frame: pd.DataFrame, by: list[str], cols: list[str]) -> pd.DataFrame:
    """Mean, standard deviation (ddof 1; 0 for one seed) and seed count of ``cols`` per group ``by``."""
    g = frame.groupby(by, dropna=False, sort=True)[cols]
    out = g.mean().add_suffix("_mean").join(g.std(ddof=1).fillna(0.0).add_suffix("_sd"))
    out["n_seeds"] = g.size()
    return out.reset_index()


def fmt(mean: float, sd: float | None = None) -> str:
    """``0.123 ± 0.004`` (or ``0.123`` without a spread; ``n/a`` for NaN)."""
    if mean is None or not np.isfinite(mean):
        return "n/a"
    return f"{mean:.3f}" if sd is None else f"{mean:.3f} ± {sd:.3f}"


def baseline_means(frame: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, the unchanged firm's mean test EqOd and error over seeds."""
    b = frame[frame.method == "none"]
    return b.groupby("dataset")[["eqod", "error"]].mean()


def new_grid(nrows: int, ncols: int, *, width: float = 4.2, height: float = 3.4):
    """A matplotlib Figure (Agg backend) with an (nrows, ncols) array of axes, each panel ``width`` x ``height``
    inches; returns (figure, axes of shape (nrows, ncols))."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)
    return fig, axes


def new_figure(ncols: int, *, width: float = 4.2, height: float = 3.4):
    """One row of ``ncols`` panels; returns (figure, axes of shape (ncols,))."""
    fig, axes = new_grid(1, ncols, width=width, height=height)
    return fig, axes[0]


def no_data(cfg: StudyConfig, notes: list[str]) -> StudyResult:
    return StudyResult(cfg, pd.DataFrame(), {}, "No finished cells: nothing to judge.", None, notes=notes)


def claim_word(holds: bool | None) -> str:
    return {True: "holds", False: "does not hold", None: "cannot be judged"}[holds]


def pretty(table: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    """Replace each ``c_mean``/``c_sd`` pair by one ``mean ± sd`` column."""
    out = table.copy()
    for c in cols:
        out[c] = [fmt(m, s) for m, s in zip(out.pop(f"{c}_mean"), out.pop(f"{c}_sd"))]
    return out
