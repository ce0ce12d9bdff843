"""The two studies beyond the paper: a firm that cleans its labels, and intersectional minorities.

- ``cleaning`` (study 9): every strategy and budget, its flips plain and stealthy (``oracle-stealth`` with the
  strategy as its base, hiding from the cleaner); the firm flags rows with a cleaner of :mod:`fairflip.cleaning`,
  drops them and retrains. One ``cleaning`` cell per (dataset, strategy, budget, seed, cleaner, plain/stealthy).
- ``intersectional`` (study 10): the minority is a conjunction of attribute values (race x sex); the strategies
  run unchanged on its indicator. One ``intersectional`` cell per (dataset, strategy, budget, seed); its metrics
  add the worst pairwise gaps over every group (:mod:`fairflip.metrics_groups`).

The cells are computed by :func:`fairflip.experiments.cells.run_cell` like every other study's, so they are
stored, resumed and run on any backend alike. Verdicts are computed from the results; the paper makes no claim here.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from fairflip._errors import FairflipError

from .study_kit import (
    Plan, StudyConfig, StudyResult, baseline_cells, grid_cells, legend_below, mean_sd, method_style, new_figure,
    new_grid, no_data, pivot, plan_datasets, plan_methods,
)

EXTENSION = "No claim of the paper to test (an extension)."


def _method_cells(cfg: StudyConfig, datasets: list[str], methods: list[str], **fixed) -> list:
    """Grid cells of each method with its own parameters from the config's ``method_params``."""
    params = cfg.grid.get("method_params", {})
    return [cell for m in methods for cell in grid_cells(cfg, datasets, [m], params=(params.get(m, {}),), **fixed)]


# ---------------------------------------------------------------- 9: the firm cleans its labels

def plan_cleaning(cfg: StudyConfig) -> Plan:
    """For each cleaner: the firm without flips, and each strategy's plain and stealthy flips at every budget."""
    from fairflip.cleaning import CLEANERS

    g = cfg.grid
    unknown = [c for c in g["cleaners"] if c not in CLEANERS]
    if unknown:
        raise FairflipError(f"cleaning config: unknown cleaner(s) {', '.join(unknown)}; choose from "
                            f"{', '.join(CLEANERS)}")
    plan = Plan()
    datasets = plan_datasets(cfg, plan.notes)
    methods = plan_methods(g["methods"], plan.notes)
    stealth = [False, True] if plan_methods(["oracle-stealth"], plan.notes) else [False]
    for cleaner in g["cleaners"]:
        opts = {"cleaner": cleaner, "stealth": False, "loss_fraction": float(g["loss_fraction"]),
                "safety": float(g["stealth_safety"])}
        plan.cells += baseline_cells(cfg, datasets, kind="cleaning", options=opts)
        for hide in stealth:
            plan.cells += _method_cells(cfg, datasets, methods, kind="cleaning", options={**opts, "stealth": hide})
    return plan


def _with_flips(frame: pd.DataFrame) -> pd.DataFrame:
    """The cleaning cells with ``flips`` (plain or stealth) and the cleaned firm's ``eqod_after``/``error_after``."""
    return frame.assign(flips=np.where(frame.stealth.fillna(False).astype(bool), "stealth", "plain"),
                        eqod_after=frame.eqod, error_after=frame.error)


def identical_stealth(frame: pd.DataFrame, records: dict | None = None) -> dict[tuple[str, str], int]:
    """The (dataset, cleaner) pairs whose stealthy flips are the same for every strategy and budget.

    That happens when the candidates the cleaner would not flag are used up at the smallest budget: every
    strategy then flips exactly those rows. Rows are compared through the flipped sets in ``records`` (config
    hash -> store record) when given, else through the cells' results (flips, recall, EqOd before and after).

    Args:
        frame: the cleaning study's tidy table.
        records: the store records by config hash (optional).

    Returns:
        (dataset, cleaner) -> the number of stealthy flips (mean over seeds), for the pairs with more than one
        (strategy, budget) whose stealthy flips coincide on every seed.
    """
    frame = _with_flips(frame)
    st = frame[(frame.flips == "stealth") & (frame.method != "none")]
    out = {}
    for (ds, cleaner), g in st.groupby(["dataset", "cleaner"]):
        if len(g.groupby(["method", "budget_share"])) < 2:
            continue
        same = True
        for _, per_seed in g.groupby("seed"):
            if records and all(h in records for h in per_seed.config_hash):
                keys = {tuple(records[h]["extra"]["flipped"]) for h in per_seed.config_hash}
            else:
                keys = {tuple(np.round(r, 12)) for r in per_seed[["n_flipped", "recall", "eqod_before",
                                                                  "eqod_after"]].to_numpy(dtype=float)}
            same &= len(keys) == 1
        if same:
            out[(ds, cleaner)] = float(g.n_flipped.mean())
    return out


def cleaning_figure(frame: pd.DataFrame, identical: dict | None = None):
    """EqOd after cleaning (left panels) and the share of flips the cleaner caught (right panels) versus budget.

    Args:
        frame: the cleaning study's tidy table (one row per cell).

        identical: the (dataset, cleaner) pairs of :func:`identical_stealth`; their stealthy flips are one line
            (black, dashed) instead of one identical line per strategy.

    Returns:
        a matplotlib Figure: one row of panels per dataset, one column per (quantity, cleaner); one colour per
        strategy, solid for plain flips and dashed with hollow squares for stealthy ones; grey lines mark the firm
        without flips (solid: no cleaning, dotted: cleaned). Points are means over seeds.
    """
    identical = identical or {}
    frame = _with_flips(frame)
    means = frame.groupby(["dataset", "cleaner", "method", "flips", "budget_share"], dropna=False)[
        ["recall", "eqod_before", "eqod_after"]].mean().reset_index()
    datasets, cleaners = sorted(means.dataset.unique()), sorted(means.cleaner.unique())
    methods = sorted(m for m in means.method.unique() if m != "none")
    colours = {m: method_style(m, i)["color"] for i, m in enumerate(methods)}
    fig, axes = new_grid(len(datasets), 2 * len(cleaners), width=3.8, height=3.2)
    for r, ds in enumerate(datasets):
        for c, cleaner in enumerate(cleaners):
            part = means[(means.dataset == ds) & (means.cleaner == cleaner)]
            ax_eq, ax_rec = axes[r, c], axes[r, len(cleaners) + c]
            same = (ds, cleaner) in identical
            for m, (flips, style, marker) in itertools.product(methods, (("plain", "-", "o"), ("stealth", "--", "s"))):
                line = part[(part.method == m) & (part.flips == flips)].sort_values("budget_share")
                if line.empty or (same and flips == "stealth"):
                    continue
                kw = {"marker": marker, "ms": 4, "color": colours[m], "mfc": "none" if flips == "stealth" else None}
                ax_eq.plot(line.budget_share, line.eqod_after, style, label=f"{m} ({flips})", **kw)
                ax_rec.plot(line.budget_share, line.recall, style, **kw)
            if same:
                line = part[(part.method == methods[0]) & (part.flips == "stealth")].sort_values("budget_share")
                kw = {"marker": "s", "ms": 5, "color": "k", "mfc": "none"}
                lab = f"stealth, every strategy (identical: {identical[(ds, cleaner)]:.0f} flips)"
                ax_eq.plot(line.budget_share, line.eqod_after, "--", label=lab, **kw)
                ax_rec.plot(line.budget_share, line.recall, "--", **kw)
            base = part[part.method == "none"]
            if len(base):
                ax_eq.axhline(float(base.eqod_before.iloc[0]), color="0.5", lw=1, label="no flips")
                ax_eq.axhline(float(base.eqod_after.iloc[0]), color="0.5", lw=1, ls=":", label="no flips, cleaned")
            ax_eq.set(title=f"{ds}: EqOd after {cleaner} cleaning", xlabel="budget (share of candidates)",
                      ylabel="test EqOd")
            ax_rec.set(title=f"{ds}: flips caught ({cleaner})", xlabel="budget (share of candidates)",
                       ylabel="recall", ylim=(-0.02, 1.02))
    legend_below(fig, axes, ncol=5, fontsize=8)
    return fig


def _cleaning_points(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, cleaner, strategy, budget) with seed means of plain and stealthy flips and the gains.

    Columns ``recall_plain``, ``recall_stealth`` and the EqOd gains over the firm without flips: ``gain_intended``
    (plain flips, neither firm cleans), ``gain_plain`` and ``gain_stealth`` (both firms clean with the cleaner).
    """
    frame = _with_flips(frame)
    base = frame[frame.method == "none"].groupby(["dataset", "cleaner"])[["eqod_before", "eqod_after"]].mean()
    runs = frame[frame.method != "none"]
    means = runs.groupby(["dataset", "cleaner", "method", "budget_share", "flips"], dropna=False)[
        ["recall", "eqod_before", "eqod_after"]].mean().unstack("flips")
    means.columns = [f"{q}_{f}" for q, f in means.columns]
    pts = means.reset_index()
    b = base.reindex(pd.MultiIndex.from_frame(pts[["dataset", "cleaner"]]))
    pts["gain_intended"] = b.eqod_before.to_numpy() - pts.eqod_before_plain
    pts["gain_plain"] = b.eqod_after.to_numpy() - pts.eqod_after_plain
    if "eqod_after_stealth" in pts:
        pts["gain_stealth"] = b.eqod_after.to_numpy() - pts.eqod_after_stealth
    return pts


def _share(part: pd.Series, whole: pd.Series) -> str:
    total = whole.sum()
    return f"{part.sum() / total:.0%}" if total > 0 else "n/a (no gain without cleaning)"


def _max(values: pd.Series) -> str:
    return "n/a" if values.isna().all() else f"{values.max():.2f}"


def cleaning_verdict(frame: pd.DataFrame, identical: dict | None = None) -> str:
    """One paragraph from the cleaning study's tidy table: how far stealth keeps the cleaners' recall down and how
    much of the EqOd gain it keeps, pooled over strategies, budgets and seeds, then per dataset and cleaner.

    Args:
        frame: the cleaning study's tidy table.
        identical: the (dataset, cleaner) pairs of :func:`identical_stealth`: said so, counted once per budget in
            their own line, and left out of the pooled headline (their stealthy flips are one flip set, not a
            comparison of strategies).
    """
    identical = identical or {}
    pts = _cleaning_points(frame)
    if pts.empty:
        return f"{EXTENSION} No flips finished: nothing to judge."
    stealth = "gain_stealth" in pts
    if stealth:
        pts = pts.dropna(subset=["gain_stealth"])
    if pts.empty:
        return f"{EXTENSION} No strategy finished both plain and stealthy: nothing to compare."
    parts = []
    for (ds, cleaner), p in pts.groupby(["dataset", "cleaner"]):
        text = f"{ds}, {cleaner}: recall "
        if stealth and (ds, cleaner) in identical:
            one = p.drop_duplicates("budget_share")
            text += (f"{one.recall_stealth.mean():.2f} stealthy (the same {identical[(ds, cleaner)]:.0f} rows for "
                     f"every strategy and budget: the candidates this cleaner does not flag are used up) vs "
                     f"{p.recall_plain.mean():.2f} plain, gain kept {_share(one.gain_stealth, one.gain_intended)} "
                     f"(of that one flip set's plain gain) vs {_share(p.gain_plain, p.gain_intended)}")
        elif stealth:
            text += (f"at most {_max(p.recall_stealth)} stealthy vs {p.recall_plain.mean():.2f} plain, gain kept "
                     f"{_share(p.gain_stealth, p.gain_intended)} vs {_share(p.gain_plain, p.gain_intended)}")
        else:
            text += f"{p.recall_plain.mean():.2f}, gain kept {_share(p.gain_plain, p.gain_intended)}"
        parts.append(text)
    varied = pts[[(d, c) not in identical for d, c in zip(pts.dataset, pts.cleaner)]] if stealth else pts
    if stealth and identical:
        pairs = ", ".join(f"{d} with the {c} cleaner" for d, c in sorted(identical))
        note = (f" On {pairs} the stealthy flips are identical for every strategy and budget (the stealthy "
                f"candidates are used up), so they are reported once and left out of the pooled figures.")
    else:
        note = ""
    if stealth and varied.empty:
        head = ("Stealth here is degenerate: on every dataset and cleaner the stealthy flips are one and the same "
                "set whatever the strategy and budget, so nothing is pooled." + note)
    elif stealth:
        head = (f"Where the strategies' stealthy flips differ, stealth keeps the cleaners' recall at or below "
                f"{_max(varied.recall_stealth)} (plain flips: {varied.recall_plain.mean():.2f} on average) while "
                f"retaining {_share(varied.gain_stealth, varied.gain_intended)} of the EqOd gain that plain flips "
                f"bring a firm that does not clean (plain flips keep "
                f"{_share(varied.gain_plain, varied.gain_intended)} once it cleans)." + note)
    else:
        head = (f"The cleaners catch {pts.recall_plain.mean():.2f} of the flips on average and plain flips keep "
                f"{_share(pts.gain_plain, pts.gain_intended)} of their EqOd gain once the firm cleans.")
    definition = ("Recall: share of the flips the cleaner flags; gain: test EqOd of the firm without flips minus "
                  "with them, cleaning alike in both; pooled over strategies, budgets and seeds (means over seeds; "
                  "no claim is judged).")
    return f"{EXTENSION} {head} Per dataset and cleaner: " + "; ".join(parts) + f". {definition}"


def summarise_cleaning(cfg: StudyConfig, frame: pd.DataFrame, records: dict) -> StudyResult:
    """Recall, precision and test EqOd/error before and after cleaning per dataset, cleaner, strategy, plain or
    stealthy flips and budget (mean ± sd over seeds, pivoted with budgets as columns); the figure of
    :func:`cleaning_figure`; the verdict of :func:`cleaning_verdict`; identical stealthy flips detected by
    :func:`identical_stealth` and said so."""
    if frame.empty:
        return no_data(cfg, [])
    identical = identical_stealth(frame, records)
    cols = ["n_flipped", "recall", "precision", "eqod_before", "eqod_after", "error_before", "error_after"]
    table = mean_sd(_with_flips(frame), ["dataset", "cleaner", "method", "flips", "budget_share"], cols)
    rows = ["dataset", "cleaner", "method", "flips"]
    runs = table[table.method != "none"]
    if identical:
        # Identical stealthy rows: one row per (dataset, cleaner), not one per strategy.
        dup = np.array([(d, c) in identical and f == "stealth" for d, c, f in zip(runs.dataset, runs.cleaner,
                                                                                   runs.flips)])
        first = runs[dup].groupby(["dataset", "cleaner", "budget_share"], as_index=False).first()
        runs = pd.concat([runs[~dup], first.assign(method="every strategy (identical)")], ignore_index=True)
    tables = {"Test EqOd after cleaning per budget (columns); mean ± sd over seeds; the no-flip firm's is in the "
              "note below": pivot(runs, rows=rows, column="budget_share", value="eqod_after"),
              "Test EqOd of the same flips without cleaning": pivot(runs, rows=rows, column="budget_share",
                                                                    value="eqod_before"),
              "Recall of the cleaner (share of the flips it flags)": pivot(runs, rows=rows, column="budget_share",
                                                                           value="recall"),
              "Test error after cleaning": pivot(runs, rows=rows, column="budget_share", value="error_after")}
    base = table[table.method == "none"]
    notes = [("no-flip firm per dataset and cleaner (EqOd without / with cleaning): "
              + "; ".join(f"{r.dataset} {r.cleaner} ({cfg.max_rows(r.dataset) or 'all'} rows): "
                          f"{r.eqod_before_mean:.3f} / {r.eqod_after_mean:.3f}" for r in base.itertuples()))]
    notes += [f"{ds}, {c}: the stealthy flips are the same {n:.0f} rows for every strategy and budget; the figure "
              f"draws them once (black dashed line)" for (ds, c), n in sorted(identical.items())]
    captions = {"cleaning": (
        "Left panels: test EqOd of the firm after it cleans its labels (drops the rows its cleaner flags and "
        "retrains) against the budget; right panels: the share of the flips the cleaner catches. One colour per "
        "strategy, solid for plain flips, dashed with hollow squares for stealthy ones"
        + ("; where every strategy's stealthy flips are the same rows they are one black dashed line" if identical
           else "") + ". Grey lines: the firm without flips (solid: no cleaning, dotted: cleaned). Points are means "
        "over seeds, without bars (the spreads are in the tables).")}
    head = "stealthy flips identical across strategies on " + ", ".join(f"{d}/{c}" for d, c in sorted(identical)) \
        if identical else "see the section"
    return StudyResult(cfg, next(iter(tables.values())), {"cleaning": cleaning_figure(frame, identical)},
                       cleaning_verdict(frame, identical), None, notes=notes, captions=captions, tables=tables,
                       headline=f"cleaners' recall of plain flips {_with_flips(frame).recall.mean():.2f} on average; "
                                + head)


# ---------------------------------------------------------------- 10: intersectional minorities

def plan_intersectional(cfg: StudyConfig) -> Plan:
    """Per dataset with a configured minority: the firm without flips and every strategy at every budget."""
    g = cfg.grid
    plan = Plan()
    datasets = []
    for ds in plan_datasets(cfg, plan.notes):
        if ds in g["minorities"]:
            datasets.append(ds)
        else:
            plan.notes.append(f"dataset {ds} skipped: the config names no intersectional minority for it")
    methods = plan_methods(g["methods"], plan.notes)
    for ds in datasets:
        opts = {"minority": dict(g["minorities"][ds]), "min_cell": int(g.get("min_cell", 1))}
        plan.cells += baseline_cells(cfg, [ds], kind="intersectional", options=opts)
        plan.cells += _method_cells(cfg, [ds], methods, kind="intersectional", options=opts)
    return plan


def intersectional_figure(frame: pd.DataFrame):
    """Minority-vs-rest test EqOd (solid) and worst pairwise EqOd over all groups (dashed) versus budget.

    Args:
        frame: the intersectional study's tidy table.

    Returns:
        a matplotlib Figure, one panel per dataset; grey lines mark the firm without flips.
    """
    means = frame.groupby(["dataset", "minority", "method", "budget_share"], dropna=False)[
        ["eqod", "worst_eqod"]].mean().reset_index()
    datasets = sorted(means.dataset.unique())
    fig, axes = new_figure(len(datasets), width=4.6, height=3.6)
    for ax, ds in zip(axes, datasets):
        part = means[means.dataset == ds]
        for j, m in enumerate(sorted(x for x in part.method.unique() if x != "none")):
            line = part[part.method == m].sort_values("budget_share")
            st = method_style(m, j)
            ax.plot(line.budget_share, line.eqod, "-", marker=st["marker"], ms=4, mfc="none", color=st["color"],
                    label=m)
            ax.plot(line.budget_share, line.worst_eqod, "--", marker=st["marker"], ms=4, mfc="none",
                    color=st["color"])
        base = part[part.method == "none"]
        if len(base):
            ax.axhline(float(base.eqod.iloc[0]), color="0.5", lw=1, label="no flips")
            ax.axhline(float(base.worst_eqod.iloc[0]), color="0.5", lw=1, ls="--")
        ax.set(title=f"{ds}: minority {part.minority.iloc[0]}", xlabel="budget (share of candidates)",
               ylabel="test EqOd (solid: vs rest, dashed: worst pair)")
        ax.title.set_fontsize(8)
    legend_below(fig, axes, ncol=6)
    return fig


def intersectional_verdict(frame: pd.DataFrame) -> str:
    """One sentence from the intersectional study's tidy table: in how many (dataset, strategy, budget) cases the
    flips lower the minority-vs-rest EqOd and the worst pairwise EqOd, and each dataset's best case."""
    means = frame.groupby(["dataset", "minority", "method", "budget_share"], dropna=False)[
        ["eqod", "worst_eqod", "n_groups"]].mean().reset_index()
    base = means[means.method == "none"].set_index("dataset")
    runs = means[(means.method != "none") & means.dataset.isin(base.index)]
    if runs.empty:
        return f"{EXTENSION} No flips finished next to the firm without flips: nothing to judge."
    b_eq, b_worst = base.eqod.reindex(runs.dataset).to_numpy(), base.worst_eqod.reindex(runs.dataset).to_numpy()
    lower, lower_worst = int((runs.eqod < b_eq).sum()), int((runs.worst_eqod < b_worst).sum())
    parts = []
    for ds, r in runs.groupby("dataset"):
        best = r.loc[r.eqod.idxmin()]
        parts.append(f"{ds} ({best.minority} against the rest): best {best.method} at {best.budget_share:g} of the "
                     f"candidates, EqOd {base.loc[ds, 'eqod']:.3f} -> {best.eqod:.3f}, worst pairwise EqOd over "
                     f"{base.loc[ds, 'n_groups']:.0f} groups {base.loc[ds, 'worst_eqod']:.3f} -> "
                     f"{best.worst_eqod:.3f}")
    return (f"{EXTENSION} The intersectional minority's flips lower its test EqOd against the rest in {lower} of "
            f"{len(runs)} (dataset, strategy, budget) cases and the worst pairwise EqOd over all groups in "
            f"{lower_worst} of {len(runs)} (means over seeds): " + "; ".join(parts) + ".")


def summarise_intersectional(cfg: StudyConfig, frame: pd.DataFrame, records: dict) -> StudyResult:
    """Minority-vs-rest and worst pairwise test gaps per dataset, strategy and budget (mean ± sd over seeds), the
    figure of :func:`intersectional_figure`, the verdict of :func:`intersectional_verdict`, and a note naming the
    groups left out of the pairwise gaps."""
    if frame.empty:
        return no_data(cfg, [])
    cols = ["n_flipped", "eqod", "worst_eqod", "worst_eqod_worst", "error"]
    table = mean_sd(frame, ["dataset", "minority", "method", "budget_share"], cols)
    notes = []
    for ds, hashes in frame.groupby("dataset").config_hash:
        left = sorted({g for h in hashes for g in records[h]["extra"].get("left_out", [])})
        if left:
            notes.append(f"{ds}: group(s) {', '.join(left)} left out of the pairwise gaps in some cells (fewer than "
                         f"{cfg.grid.get('min_cell', 1)} test rows of a label)")
    rows = ["dataset", "minority", "method"]
    tables = {"Test EqOd of the minority against everyone else per budget (columns); mean ± sd over seeds":
              pivot(table, rows=rows, column="budget_share", value="eqod"),
              "Worst pairwise test EqOd over all groups": pivot(table, rows=rows, column="budget_share",
                                                               value="worst_eqod"),
              "Test error": pivot(table, rows=rows, column="budget_share", value="error")}
    captions = {"intersectional": (
        "Test EqOd against the budget, one panel per dataset: solid lines are the intersectional minority against "
        "everyone else, dashed lines the worst gap between any two groups of the attributes' combinations; one "
        "colour and marker per strategy; grey lines are the firm without flips. Points are means over seeds, without "
        "bars; strategies whose lines coincide hide one another (the tables give every value and spread).")}
    head = intersectional_verdict(frame).split(": ")[0].replace(f"{EXTENSION} ", "")
    return StudyResult(cfg, next(iter(tables.values())), {"intersectional": intersectional_figure(frame)},
                       intersectional_verdict(frame), None, notes=notes, captions=captions, tables=tables,
                       headline=head)
