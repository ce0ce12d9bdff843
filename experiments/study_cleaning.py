"""Study beyond the paper: the firm fights back (label cleaning) and intersectional minorities.

Two standalone studies read ``configs/cleaning.toml``:

- :func:`run_cleaning_study`: for every dataset, strategy, budget and seed, the collective flips (plainly, and with
  ``oracle-stealth`` wrapped around the same strategy); the firm cleans its labels with each cleaner of
  :mod:`fairflip.cleaning`, drops what it flagged and retrains. Rows report recall and precision of the flags and
  test EqOd / error before and after cleaning. Problems are built exactly as the experiment runner builds its cells
  (:func:`fairflip.experiments.cells.prepare`), so the numbers line up with the other studies.
- :func:`run_intersectional_study`: the minority is a conjunction (race x sex); the strategies and oracles run
  unchanged on its indicator, and the test metrics report the minority against the rest and the worst pairwise
  gap over all race x sex groups (:mod:`fairflip.metrics_groups`).

Both return ``(table, figure)``; :func:`report_section` renders them as Markdown. Run from the command line with
``python -m fairflip.experiments.study_cleaning --out DIR [--quick]``.
"""

from __future__ import annotations

import argparse
import itertools
import tomllib
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from fairflip._errors import FairflipError
from fairflip.cleaning import evaluate_cleaned
from fairflip.datasets import load, stratified_split
from fairflip.methods import available_methods, get_seeded_method
from fairflip.metrics_groups import intersectional_metrics
from fairflip.problem import build_problem, evaluate_flips
from fairflip.strategies.base import resolve_budget

from .cells import Cell, make_cell_method, prepare
from .report import _md_table

SUBSAMPLE_SEED = 0
"""Seed of the row subsample of large datasets (every seed of a study sees the same rows)."""


def load_cleaning_config(*, quick: bool = False, seeds: int | None = None) -> dict:
    """Read ``configs/cleaning.toml`` and resolve its ``[quick]`` tables and the seed count.

    Returns:
        ``{"study": {...}, "grid": {...}, "intersectional": {...}}`` with the overrides applied.
    """
    raw = tomllib.loads(resources.files("fairflip.experiments").joinpath("configs", "cleaning.toml").read_text())
    grid = dict(raw["grid"])
    inter = {k: v for k, v in raw["intersectional"].items() if k != "quick"}
    if quick:
        grid.update(raw.get("quick", {}))
        inter.update(raw["intersectional"].get("quick", {}))
    if seeds is not None:
        if seeds < 1:
            raise FairflipError(f"seeds must be at least 1, got {seeds}")
        grid["seeds"] = inter["seeds"] = seeds
    return {"study": raw["study"], "grid": grid, "intersectional": inter}


def _registered(names: list[str]) -> list[str]:
    have = set(available_methods())
    return [m for m in names if m in have]


# ---------------------------------------------------------------- the firm cleans its labels

def cleaning_rows(cell: Cell, *, cleaners: list[str], loss_fraction: float, safety: float) -> list[dict]:
    """Every measurement of one (dataset, method, budget, seed) cell.

    For the plain flips: test metrics without cleaning and after each cleaner. For each cleaner, the stealthy
    flips (``oracle-stealth`` with the cell's method as its base, hiding from that cleaner): the same, after that
    cleaner. The ``none`` method gives the firm's own rows (no flips, with and without cleaning).

    Returns:
        one dict per (stealth, cleaner) with ``n_flipped``, ``recall``, ``precision``, ``honest_flag_rate``,
        ``n_flagged``, ``eqod_before``, ``error_before`` (no cleaning) and ``eqod_after``, ``error_after``.
    """
    src = prepare(cell)
    problem = src.problem
    budget = resolve_budget(cell.budget, len(problem.candidates))
    plain = make_cell_method(cell).select(problem, budget).flipped
    variants = [(False, c, plain) for c in cleaners]
    if cell.method != "none":
        for c in cleaners:
            stealth = get_seeded_method("oracle-stealth", cell.seed, base=cell.method, against=c,
                                        fraction=loss_fraction, safety=safety, base_params=cell.param_dict)
            variants.append((True, c, stealth.select(problem, budget).flipped))
    rows = []
    for stealthy, cleaner, flipped in variants:
        before = evaluate_flips(problem, flipped, test=src.test_arrays)["test"]
        # The firm draws its own folds (seed offset by one), not the ones oracle-stealth estimated with.
        after = evaluate_cleaned(problem, flipped, cleaner=cleaner, test=src.test_arrays, fraction=loss_fraction,
                                 seed=cell.seed + 1)
        rep = after["report"]
        rows.append({
            "dataset": cell.dataset, "method": cell.method, "stealth": stealthy, "cleaner": cleaner,
            "budget_share": cell.budget, "budget": budget, "seed": cell.seed, "n_flipped": len(flipped),
            "recall": rep["recall"], "precision": rep["precision"], "honest_flag_rate": rep["honest_flag_rate"],
            "n_flagged": rep["n_flagged"], "eqod_before": before["eqod"], "error_before": before["error"],
            "eqod_after": after["test"]["eqod"], "error_after": after["test"]["error"],
        })
    return rows


def run_cleaning_study(*, quick: bool = False, seeds: int | None = None, datasets: list[str] | None = None,
                       progress: bool = False) -> tuple[pd.DataFrame, "object"]:
    """Run the cleaning study of ``configs/cleaning.toml``.

    Args:
        quick: the ``[quick]`` variant (fewer methods, one budget and seed, subsampled data).
        seeds: number of seeds, overriding the config.
        datasets: run only these datasets (default: the config's).
        progress: print one line per finished cell.

    Returns:
        (tidy table with one row per dataset, method, stealth, cleaner, budget and seed — see
        :func:`cleaning_rows` — and a matplotlib Figure of EqOd after cleaning and recall versus budget).
    """
    cfg = load_cleaning_config(quick=quick, seeds=seeds)
    g = cfg["grid"]
    methods = _registered(g["methods"])
    method_params = g.get("method_params", {})
    rows: list[dict] = []
    combos = [("none", 0)] + list(itertools.product(methods, g["budgets"]))
    for ds, (method, budget), fraction, seed in itertools.product(datasets or g["datasets"], combos,
                                                                  g["fractions"], range(int(g["seeds"]))):
        cell = Cell(study="cleaning", dataset=ds, method=method, seed=seed, collective_fraction=fraction,
                    budget=budget, direction=g["direction"], firm=g["firm"], params=method_params.get(method, {}),
                    max_rows=g.get("max_rows", {}).get(ds))
        rows += cleaning_rows(cell, cleaners=list(g["cleaners"]), loss_fraction=float(g["loss_fraction"]),
                              safety=float(g["stealth_safety"]))
        if progress:
            print(f"cleaning: {cell.label()} done", flush=True)
    table = pd.DataFrame.from_records(rows)
    return table, cleaning_figure(table)


def summarise_cleaning(table: pd.DataFrame) -> pd.DataFrame:
    """Means over seeds per dataset, cleaner, method, stealth and budget share."""
    cols = ["n_flipped", "recall", "precision", "eqod_before", "eqod_after", "error_before", "error_after"]
    return (table.groupby(["dataset", "cleaner", "method", "stealth", "budget_share"], sort=True)[cols]
            .mean().reset_index())


def _figure(nrows: int, ncols: int):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=(3.8 * ncols, 3.2 * nrows), squeeze=False)
    return fig, axes


def cleaning_figure(table: pd.DataFrame):
    """EqOd after cleaning (left panels) and the cleaner's recall (right panels) versus budget.

    One row of panels per dataset, one column per (quantity, cleaner); one colour per strategy, solid for plain
    flips and dashed for stealthy ones; grey lines mark the firm without flips (solid: no cleaning, dotted:
    cleaned).
    """
    summary = summarise_cleaning(table)
    datasets = sorted(summary.dataset.unique())
    cleaners = sorted(summary.cleaner.unique())
    fig, axes = _figure(len(datasets), 2 * len(cleaners))
    methods = [m for m in summary.method.unique() if m != "none"]
    colours = {m: f"C{i}" for i, m in enumerate(methods)}
    for r, ds in enumerate(datasets):
        for c, cleaner in enumerate(cleaners):
            part = summary[(summary.dataset == ds) & (summary.cleaner == cleaner)]
            base = part[part.method == "none"]
            ax_eq, ax_rec = axes[r, c], axes[r, len(cleaners) + c]
            for m in methods:
                for stealthy, style, marker in ((False, "-", "o"), (True, "--", "s")):
                    line = part[(part.method == m) & (part.stealth == stealthy)].sort_values("budget_share")
                    label = f"{m}{' (stealth)' if stealthy else ''}"
                    kw = {"marker": marker, "ms": 4, "color": colours[m], "mfc": "none" if stealthy else colours[m]}
                    ax_eq.plot(line.budget_share, line.eqod_after, style, label=label, **kw)
                    ax_rec.plot(line.budget_share, line.recall, style, **kw)
            if len(base):
                ax_eq.axhline(float(base.eqod_before.iloc[0]), color="0.5", lw=1)
                ax_eq.axhline(float(base.eqod_after.iloc[0]), color="0.5", lw=1, ls=":")
            ax_eq.set(title=f"{ds}: EqOd after {cleaner} cleaning", xlabel="budget (share of candidates)",
                      ylabel="test EqOd")
            ax_rec.set(title=f"{ds}: flips caught ({cleaner})", xlabel="budget (share of candidates)",
                       ylabel="recall", ylim=(-0.02, 1.02))
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=8, frameon=False)
    return fig


# ---------------------------------------------------------------- intersectional minorities

def _intersectional_problem(dataset: str, minority: dict, *, max_rows: int | None, seed: int, fraction: float,
                            direction: str):
    data = load(dataset, minority=minority)
    if max_rows is not None and len(data) > max_rows:
        rows = np.random.default_rng(SUBSAMPLE_SEED).choice(len(data), size=max_rows, replace=False)
        data = data.subset(np.sort(rows))
    train, test = stratified_split(data, test_size=0.3, seed=seed)
    problem, prep = build_problem(train, collective_fraction=fraction, direction=direction, seed=seed)
    return problem, prep.transform(test), test


def run_intersectional_study(*, quick: bool = False, seeds: int | None = None, progress: bool = False
                             ) -> tuple[pd.DataFrame, "object"]:
    """Strategies and oracles against an intersectional minority (the ``[intersectional]`` table of the config).

    Returns:
        (tidy table: one row per dataset, method, budget and seed with the minority-vs-rest ``eqod``,
        ``eqod_worst``, ``error`` and the worst pairwise ``worst_eqod``, ``worst_eqod_worst``, ``worst_pair``,
        ``n_groups``, ``left_out``; a Figure of both EqOds versus budget).
    """
    cfg = load_cleaning_config(quick=quick, seeds=seeds)["intersectional"]
    methods = _registered(cfg["methods"])
    rows = []
    for entry, seed in itertools.product(cfg["minorities"], range(int(cfg["seeds"]))):
        max_rows = cfg["max_rows"] if quick and "max_rows" in cfg else entry.get("max_rows")
        problem, X_test, test = _intersectional_problem(entry["dataset"], entry["minority"], max_rows=max_rows,
                                                        seed=seed, fraction=float(cfg["fraction"]),
                                                        direction=cfg["direction"])
        minority = "&".join(f"{k}={v}" for k, v in entry["minority"].items())
        for method, share in [("none", 0.0)] + list(itertools.product(methods, cfg["budgets"])):
            budget = resolve_budget(float(share), len(problem.candidates))
            flipped = get_seeded_method(method, seed).select(problem, budget).flipped
            model = problem.firm.fit(problem.X, problem.flipped_labels(flipped))
            m = intersectional_metrics(test.y, model.predict(X_test), test.group, minority,
                                       min_cell=int(cfg["min_cell"]))
            rows.append({
                "dataset": entry["dataset"], "minority": minority, "method": method, "budget_share": share,
                "budget": budget, "seed": seed, "n_flipped": len(flipped), "direction": problem.collective.direction,
                "eqod": m["eqod"], "eqod_worst": m["eqod_worst"], "error": m["error"],
                "worst_eqod": m["worst_eqod"], "worst_eqod_worst": m["worst_eqod_worst"],
                "worst_pair": m["worst_pair"], "n_groups": m["n_groups"], "left_out": ", ".join(m["left_out"]),
            })
            if progress:
                print(f"intersectional: {entry['dataset']}/{method}/{share}/s={seed} done", flush=True)
    table = pd.DataFrame.from_records(rows)
    return table, intersectional_figure(table)


def intersectional_figure(table: pd.DataFrame):
    """Minority-vs-rest EqOd (solid) and worst pairwise EqOd over all groups (dashed) versus budget, per dataset."""
    cols = ["eqod", "worst_eqod", "error"]
    summary = table.groupby(["dataset", "method", "budget_share"])[cols].mean().reset_index()
    datasets = sorted(summary.dataset.unique())
    fig, axes = _figure(1, len(datasets))
    for i, ds in enumerate(datasets):
        ax = axes[0, i]
        part = summary[summary.dataset == ds]
        base = part[part.method == "none"]
        for j, m in enumerate(x for x in part.method.unique() if x != "none"):
            line = part[part.method == m].sort_values("budget_share")
            ax.plot(line.budget_share, line.eqod, "-", marker="o", ms=3, color=f"C{j}", label=m)
            ax.plot(line.budget_share, line.worst_eqod, "--", marker="o", ms=3, color=f"C{j}")
        if len(base):
            ax.axhline(float(base.eqod.iloc[0]), color="0.5", lw=1)
            ax.axhline(float(base.worst_eqod.iloc[0]), color="0.5", lw=1, ls="--")
        minority = table.loc[table.dataset == ds, "minority"].iloc[0]
        ax.set(title=f"{ds}: minority {minority}", xlabel="budget (share of candidates)",
               ylabel="test EqOd (solid: vs rest, dashed: worst pair)")
        ax.title.set_fontsize(8)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- report

def report_section(cleaning: pd.DataFrame, intersectional: pd.DataFrame | None = None) -> str:
    """Markdown: the cleaning table (recall, precision, EqOd before/after per strategy and budget, means over
    seeds) and, when given, the intersectional table."""
    s = summarise_cleaning(cleaning)
    s.insert(3, "flips", np.where(s.stealth, "stealth", "plain"))
    s = s.drop(columns="stealth")
    lines = ["## The firm cleans its labels", "",
             "Recall: share of the collective's flips the cleaner flags. Precision: share of flagged rows that are "
             "flips. EqOd and error on the test split, before and after the firm drops the flagged rows and "
             "retrains (means over seeds).", "", _md_table(s.round(3)), ""]
    if intersectional is not None:
        cols = ["eqod", "worst_eqod", "worst_eqod_worst", "error", "n_groups"]
        t = intersectional.groupby(["dataset", "minority", "method", "budget_share"])[cols].mean().reset_index()
        lines += ["## Intersectional minorities", "",
                  "EqOd of the minority against everyone else, and the worst pairwise EqOd over all groups "
                  "(groups with too few test rows of a label are left out), means over seeds.", "",
                  _md_table(t.round(3)), ""]
    return "\n".join(lines)


def save_figure(fig, folder: Path, name: str) -> list[Path]:
    """Write ``fig`` as ``<folder>/<name>.png`` and ``.svg``; returns the two paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.{ext}" for ext in ("png", "svg")]
    for path in paths:
        fig.savefig(path, dpi=130 if path.suffix == ".png" else None, bbox_inches="tight")
    return paths


def main(argv: list[str] | None = None) -> None:
    """Command line: run both studies and write CSV tables, figures and ``cleaning.md`` into ``--out``."""
    ap = argparse.ArgumentParser(prog="python -m fairflip.experiments.study_cleaning", description=__doc__)
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--quick", action="store_true", help="the quick variant of the config")
    ap.add_argument("--seeds", type=int, default=None, help="number of seeds (overrides the config)")
    ap.add_argument("--only", choices=["cleaning", "intersectional"], default=None, help="run one study only")
    ap.add_argument("--datasets", nargs="+", default=None, help="cleaning study: only these datasets")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    clean = inter = None
    if args.only in (None, "cleaning"):
        clean, fig = run_cleaning_study(quick=args.quick, seeds=args.seeds, datasets=args.datasets, progress=True)
        clean.to_csv(out / "cleaning.csv", index=False)
        save_figure(fig, out / "figures", "cleaning")
    if args.only in (None, "intersectional"):
        inter, fig = run_intersectional_study(quick=args.quick, seeds=args.seeds, progress=True)
        inter.to_csv(out / "intersectional.csv", index=False)
        save_figure(fig, out / "figures", "intersectional")
    if clean is not None:
        (out / "cleaning.md").write_text(report_section(clean, inter))


if __name__ == "__main__":
    main()
