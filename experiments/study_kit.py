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
    ``[quick]`` table, ``seeds`` overrides the seed count.

    The config is checked against the declared schema (:mod:`fairflip.experiments.config_schema`): a TOML syntax
    error, a missing table or key, an unknown key, dataset or method, or a value out of range raises one
    :class:`FairflipError` naming the file and the key, before any cell is planned or run.
    """
    from .config_schema import check_seeds, validate_config

    if name not in STUDY_ORDER:
        raise FairflipError(f"unknown study '{name}'; choose from {', '.join(STUDY_ORDER)}")
    if seeds is not None:
        seeds = check_seeds(seeds)
    if folder is None:
        source = f"packaged config {name}.toml"
        text = resources.files("fairflip.experiments").joinpath("configs", f"{name}.toml").read_text()
    else:
        path = Path(folder) / f"{name}.toml"
        source = str(path)
        if not Path(folder).is_dir():
            raise FairflipError(f"config folder {str(folder)!r} is not a folder")
        if not path.is_file():
            raise FairflipError(f"no config for study '{name}' in {folder}")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise FairflipError(f"{source}: cannot be read as UTF-8 text ({exc})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise FairflipError(f"{source}: TOML syntax error: {exc}") from None
    validate_config(raw, study=name, source=source)
    grid = dict(raw["grid"])
    if quick:
        grid.update(raw.get("quick", {}))
    if seeds is not None:
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
        captions: figure name -> caption (what is plotted, what the bars and bands are).
        tables: title -> pivoted table (methods as rows, budgets or sizes as columns); shown instead of
            ``table`` when present.
        headline: a short clause for the report's first paragraph (what the study found, or why it is not
            judged).
    """

    config: StudyConfig
    table: pd.DataFrame
    figures: dict
    verdict: str
    holds: bool | None
    paper_rows: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    captions: dict = field(default_factory=dict)
    tables: dict = field(default_factory=dict)
    headline: str = ""


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

# A claim is judged only with at least this many seeds; with fewer there is no spread to judge against.
MIN_SEEDS_TO_JUDGE = 2
# Two-sided confidence level of the intervals over seeds: 90%, so that each one-sided verdict (the whole interval
# above a bound, or the whole interval below it) is a test at the 5% level.
CONFIDENCE = 0.90


def mean_sd(frame: pd.DataFrame, by: list[str], cols: list[str]) -> pd.DataFrame:
    """Mean, standard deviation (ddof 1; NaN for one seed) and seed count of ``cols`` per group ``by``."""
    g = frame.groupby(by, dropna=False, sort=True)[cols]
    out = g.mean().add_suffix("_mean").join(g.std(ddof=1).add_suffix("_sd"))
    out["n_seeds"] = g.size()
    return out.reset_index()


def fmt(mean: float, sd: float | None = None) -> str:
    """``0.123 ± 0.004``; ``0.123`` without a spread (``sd`` None or NaN, e.g. one seed); ``n/a`` for NaN."""
    if mean is None or not np.isfinite(mean):
        return "n/a"
    if sd is None or not np.isfinite(sd):
        return f"{mean:.3f}"
    return f"{mean:.3f} ± {sd:.3f}"


@dataclass(frozen=True)
class SeedEstimate:
    """Mean of one quantity over seeds with its spread.

    Attributes:
        mean: the mean over seeds (NaN with no finite value).
        sd: the standard deviation (ddof 1), None for fewer than two seeds.
        n: the number of seeds with a finite value.
        low, high: the two-sided :data:`CONFIDENCE` Student-t interval of the mean, None for fewer than two seeds.
    """

    mean: float
    sd: float | None
    n: int
    low: float | None
    high: float | None

    def text(self, digits: int = 3) -> str:
        """``0.123 (90% CI 0.101 to 0.145, 3 seeds)``, or ``0.123 (1 seed)`` without an interval."""
        if self.n == 0:
            return "n/a (no seed)"
        if self.low is None:
            return f"{self.mean:.{digits}f} ({self.n} seed{'s' if self.n != 1 else ''})"
        return (f"{self.mean:.{digits}f} ({100 * CONFIDENCE:.0f}% CI {self.low:.{digits}f} to {self.high:.{digits}f}, "
                f"{self.n} seeds)")


def seed_estimate(values) -> SeedEstimate:
    """The :class:`SeedEstimate` of ``values`` (shape (n_seeds,), one value per seed; NaNs are dropped)."""
    from scipy import stats

    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return SeedEstimate(float("nan"), None, 0, None, None)
    if len(v) < 2:
        return SeedEstimate(float(v.mean()), None, len(v), None, None)
    sd = float(v.std(ddof=1))
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, len(v) - 1)) * sd / np.sqrt(len(v))
    return SeedEstimate(float(v.mean()), sd, len(v), float(v.mean()) - half, float(v.mean()) + half)


@dataclass(frozen=True)
class Judgement:
    """A criterion checked against a seed estimate.

    Attributes:
        holds: True when the whole confidence interval meets the criterion, False when none of it does, None when
            it straddles the criterion or there are fewer than :data:`MIN_SEEDS_TO_JUDGE` seeds.
        estimate: the seed estimate.
        criterion: the criterion in words (with its tolerance).
        reason: why it is not judged (empty when judged).
    """

    holds: bool | None
    estimate: SeedEstimate
    criterion: str
    reason: str = ""

    def text(self, digits: int = 3) -> str:
        """``0.123 (90% CI ..., 3 seeds) against at most 0.020 (tolerance 0.005): met``."""
        word = {True: "met", False: "not met", None: f"not judged ({self.reason})"}[self.holds]
        return f"{self.estimate.text(digits)} against {self.criterion}: {word}"


def judge(values, *, at_least: float | None = None, at_most: float | None = None, tol: float = 0.0,
          digits: int = 3) -> Judgement:
    """Judge the criterion ``at_least - tol <= quantity <= at_most + tol`` from per-seed values.

    Args:
        values: the quantity, one value per seed (shape (n_seeds,)).
        at_least, at_most: the criterion's bounds (at least one).
        tol: the tolerance added outside each bound (the paper's numbers are approximate readings).
        digits: decimals in the criterion's text.

    Returns:
        a :class:`Judgement`: met when the confidence interval over seeds lies inside the tolerated range, not met
        when it lies wholly outside, not judged when it straddles a bound or with fewer than
        :data:`MIN_SEEDS_TO_JUDGE` seeds.
    """
    if at_least is None and at_most is None:
        raise FairflipError("judge needs at_least or at_most")
    if tol < 0:
        raise FairflipError(f"tol must be non-negative, got {tol}")
    lo = -np.inf if at_least is None else at_least - tol
    hi = np.inf if at_most is None else at_most + tol
    t = f" (tolerance {tol:.{digits}f})" if tol else ""
    if at_least is not None and at_most is not None:
        crit = f"between {at_least:.{digits}f} and {at_most:.{digits}f}{t}"
    elif at_least is not None:
        crit = f"at least {at_least:.{digits}f}{t}"
    else:
        crit = f"at most {at_most:.{digits}f}{t}"
    est = seed_estimate(values)
    if est.n < MIN_SEEDS_TO_JUDGE:
        return Judgement(None, est, crit, f"{est.n} seed{'s' if est.n != 1 else ''}; at least "
                                          f"{MIN_SEEDS_TO_JUDGE} needed")
    if lo <= est.low and est.high <= hi:
        return Judgement(True, est, crit)
    if est.high < lo or est.low > hi:
        return Judgement(False, est, crit)
    return Judgement(None, est, crit, "the confidence interval straddles the criterion")


def combine(judgements) -> bool | None:
    """False when any judgement is False, True when all are True (and there is one), None otherwise."""
    js = [j.holds if isinstance(j, Judgement) else j for j in judgements]
    if any(j is False for j in js):
        return False
    if js and all(j is True for j in js):
        return True
    return None


def baseline_means(frame: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, the unchanged firm's mean test EqOd and error over seeds."""
    b = frame[frame.method == "none"]
    return b.groupby("dataset")[["eqod", "error"]].mean()


def baseline_text(frame: pd.DataFrame, cfg: "StudyConfig") -> str:
    """The no-flip firm's test EqOd and error per dataset with the rows it was trained on, for a study's notes."""
    b = frame[frame.method == "none"]
    if b.empty:
        return ""
    parts = []
    for ds, g in b.groupby("dataset"):
        rows = cfg.max_rows(ds)
        parts.append(f"{ds} ({f'{rows:,} rows' if rows else 'all rows'}): EqOd {fmt(g.eqod.mean(), g.eqod.std())}, "
                     f"error {fmt(g.error.mean(), g.error.std())}")
    return ("no-flip baseline of this study (it differs between studies that subsample differently): "
            + "; ".join(parts))


def pivot(stats: pd.DataFrame, *, rows: list[str], column: str, value: str, label=None, key=None) -> pd.DataFrame:
    """A pivoted table of ``mean ± sd`` strings: one row per ``rows`` group, one column per ``column`` value.

    Args:
        stats: a :func:`mean_sd` table holding ``value_mean``, ``value_sd`` and ``n_seeds``.
        rows: the row keys (e.g. ``["dataset", "method"]``).
        column: the column key (e.g. ``"budget_share"``).
        value: the quantity (``"eqod"`` reads ``eqod_mean`` and ``eqod_sd``).
        label: column value -> header text (default ``str``).
        key: sort key of the column values (default: their natural order).

    Returns:
        a DataFrame with the row keys as columns, then one column per value of ``column`` (sorted), and a last
        column ``seeds`` (the seed counts, ``"2-3"`` when they differ).
    """
    label = label or (lambda v: f"{v:g}" if isinstance(v, (float, np.floating)) else str(v))
    cells = stats.assign(_cell=[fmt(m, s) for m, s in zip(stats[f"{value}_mean"], stats[f"{value}_sd"])],
                         _col=stats[column].map(label))
    order = [label(v) for v in sorted(stats[column].dropna().unique(), key=key)]
    if stats[column].isna().any():
        order.append(label(np.nan))
    wide = cells.groupby([*rows, "_col"], dropna=False, sort=True)["_cell"].first().unstack("_col")
    wide = wide.reindex(columns=[c for c in order if c in wide.columns]).fillna("")
    n = stats.groupby(rows, dropna=False).n_seeds.agg(lambda s: f"{s.min()}" if s.min() == s.max()
                                                      else f"{s.min()}-{s.max()}")
    wide["seeds"] = n
    wide.columns.name = None
    return wide.reset_index()


# The paper's reported points, approximate readings off the authors' poster (see PAPER.md): (x, y, label).
PAPER_POINTS = {
    # Study 2: best EqOd against collective size, COMPAS: 0.21 without flips, about 0.06 once saturated (~0.3).
    ("collective_size", "compas"): [(0.0, 0.21, "no flips"), (0.3, 0.06, "saturated"), (0.4, 0.06, None)],
    # Study 5 (EqOd against error): COMPAS firm-side methods error 0.33 -> 0.49 at EqOd near 0 (base EqOd 0.21);
    # Adult base (0.137, 0.086) -> EqOd about 0.02 at unchanged error.
    ("firm_side", "compas"): [(0.33, 0.21, "no flips"), (0.49, 0.0, "firm-side")],
    ("firm_side", "adult"): [(0.137, 0.086, "no flips"), (0.137, 0.02, "collective")],
    # Study 1 (EqOd against error): 6 flips, EqOd 0.13 -> 0.03 at error 0.15.
    ("toy", "toy2d"): [(0.15, 0.13, "no flips"), (0.15, 0.03, "6 flips")],
}
PAPER_STYLE = dict(marker="*", s=140, facecolors="none", edgecolors="k", linewidths=1.0, zorder=5)


def overlay_paper(ax, study: str, dataset: str, *, line: bool = False) -> bool:
    """Draw the paper's points for (study, dataset) on ``ax`` as hollow black stars, annotated; ``line`` joins them
    with a dotted line. Returns whether there were any."""
    pts = PAPER_POINTS.get((study, dataset))
    if not pts:
        return False
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    if line:
        ax.plot(xs, ys, ls=":", c="k", lw=0.8, zorder=4)
    ax.scatter(xs, ys, label="paper (approx.)", **PAPER_STYLE)
    lo, hi = ax.get_xlim()
    for x, y, text in pts:
        if text:
            right = x > (lo + hi) / 2  # labels point inwards, so none is cut at the panel's edge
            ax.annotate(text, (x, y), textcoords="offset points", xytext=(-6 if right else 6, 4), fontsize=6,
                        color="0.2", ha="right" if right else "left")
    return True


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


def legend_below(fig, axes, *, ncol: int = 4, fontsize: int = 7) -> None:
    """One legend for the whole figure below its panels (so it hides no point), merging the panels' labelled
    artists (first occurrence of each label wins)."""
    seen: dict[str, object] = {}
    for ax in np.ravel(axes):
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    if not seen:
        return
    rows = -(-len(seen) // ncol)
    fig.tight_layout(rect=(0, min(0.45, 0.05 * rows + 0.03), 1, 1))
    fig.legend(list(seen.values()), list(seen), loc="lower center", ncol=min(ncol, len(seen)), fontsize=fontsize,
               frameon=False)


def no_data(cfg: StudyConfig, notes: list[str]) -> StudyResult:
    return StudyResult(cfg, pd.DataFrame(), {}, "No finished cells: nothing to judge.", None, notes=notes,
                       headline="no finished cells")


def claim_word(holds: bool | None) -> str:
    return {True: "holds", False: "does not hold", None: "is not judged"}[holds]


def pretty(table: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    """Replace each ``c_mean``/``c_sd`` pair by one ``mean ± sd`` column (mean alone for one seed)."""
    out = table.copy()
    for c in cols:
        out[c] = [fmt(m, s) for m, s in zip(out.pop(f"{c}_mean"), out.pop(f"{c}_sd"))]
    return out


# One colour and marker per method in every figure; oracles are drawn dashed.
METHOD_COLOURS = {"rb-prob": "C0", "rb-label": "C1", "rb-dist": "C2", "random": "0.45", "oracle": "C8",
                  "oracle-relaxed": "C4", "oracle-convex": "C5", "greedy": "C6", "massaging": "C9",
                  "brute-force": "C3"}
METHOD_MARKERS = {"rb-prob": "o", "rb-label": "s", "rb-dist": "^", "random": "v", "oracle": "D",
                  "oracle-relaxed": "P", "oracle-convex": "X", "greedy": "h", "massaging": "<", "brute-force": ">"}


def method_style(method: str, index: int = 0) -> dict:
    """Line colour, style and marker of ``method`` (oracles dashed, the rest solid); ``index`` picks a colour for
    an unlisted method."""
    return {"color": METHOD_COLOURS.get(method, f"C{index % 10}"), "ls": "--" if method in ORACLES else "-",
            "marker": METHOD_MARKERS.get(method, "o")}
