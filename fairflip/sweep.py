"""Sweeps: run flip methods over budgets, collective sizes, access levels and seeds, and summarise them.

:func:`sweep` returns a tidy table, one row per (dataset, method, collective fraction, access, budget, seed), with
the number of candidates and flips, the firm's test metrics after retraining on the flipped labels, and the
in-sample objective. :func:`average_seeds`, :func:`pareto_front` and :func:`best_eqod_per_size` summarise it.

For a ranking strategy the flips of a smaller budget are a prefix of its ranking, so each strategy scores the
candidates once per problem; every flip set of a problem (all methods, all budgets) is then retrained in one
batched call of :meth:`~fairflip.problem.FlipProblem.predictions`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._errors import FairflipError
from .collective import Direction
from .methods import ProgressFn
from .datasets import Dataset
from .features import FeaturePreparer
from .firms import Firm
from .methods import get_method
from .metrics import all_metrics
from .problem import FlipProblem, build_problem
from .strategies.base import resolve_budget

METRICS = ("eqod", "eqod_worst", "dp", "eqopp", "error", "error_minority", "error_majority", "success")
"""Test metrics reported per row (see :func:`fairflip.metrics.all_metrics`)."""

CONFIG = ("dataset", "method", "collective_fraction", "access", "known_majority", "direction", "budget")
"""Columns that identify one configuration; rows sharing them differ only in the seed."""


def _as_list(value: Any) -> list:
    """A scalar (or None, or a string) as a one-element list; a sequence as a list."""
    if isinstance(value, str) or not isinstance(value, (Sequence, np.ndarray)):
        return [value]
    return list(value)


def _check_budgets(budgets: list) -> list:
    """Budgets all counts or all fractions (0 fits both), fractions as floats, so that 1 and 1.0 never mix."""
    fractions = [b for b in budgets if isinstance(b, (float, np.floating)) and b != 0]
    counts = [b for b in budgets if not isinstance(b, (float, np.floating)) and b != 0]
    if fractions and counts:
        raise FairflipError("budgets must be all counts (int) or all fractions of the candidates (float), "
                            f"got {budgets}")
    return [float(b) for b in budgets] if fractions else [int(b) for b in budgets]


def _flip_sets(problem: FlipProblem, name: str, seed: int, params: dict, counts: list[int],
               time_limit: float | None = None, progress: ProgressFn | None = None) -> tuple[list, float, bool, list]:
    """The flips of method ``name`` at each budget in ``counts`` (list of (k,) arrays), the selection time (s),
    whether the method is omniscient and each budget's result status."""
    method = get_method(name, seed=seed, **params)
    start = time.perf_counter()
    results = method.select_many(problem, counts, time_limit=time_limit, progress=progress)
    return [r.flipped for r in results], time.perf_counter() - start, method.omniscient, [r.status for r in results]


def sweep(
    train: Dataset,
    test: Dataset,
    *,
    methods: Sequence[str] = ("random", "rb-prob", "rb-label", "rb-dist"),
    budgets: Sequence[int | float] = (0, 0.1, 0.2, 0.3, 0.5),
    collective_fractions: Sequence[float] = (0.3,),
    seeds: Sequence[int] = range(5),
    known_majority: int | None | Sequence[int | None] = None,
    members: np.ndarray | None = None,
    direction: Direction = "auto",
    firm: Firm | str = "logistic",
    C: float = 1.0,
    objective: str = "eqod",
    include_group: bool = True,
    method_params: Mapping[str, dict] | None = None,
    time_limit: float | None = None,
    progress: ProgressFn | None = None,
) -> pd.DataFrame:
    """Run every method at every budget, collective fraction, access level and seed; retrain; measure.

    Args:
        train: training rows (n); the collective is drawn from its minority.
        test: held-out rows on which the retrained firm is measured with the true labels.
        methods: registered method names (see :func:`fairflip.methods.available_methods`).
        budgets: each a count (int) or a fraction of the candidates (float in [0, 1]); 0 gives the unchanged firm.
        collective_fractions: shares of the minority in the collective (ignored when ``members`` is given).
        seeds: seeds of the collective draw, of the known majority sample and of random methods.
        known_majority: None for full access, m for m known majority rows, or a sequence of these.
        members: shape (n,) explicit collective mask instead of drawn fractions (then seeds only vary methods'
            randomness and the majority sample).
        direction: up, down or auto (the default of every fairflip entry point: the minority's base rate moves
            towards the majority's).
        firm, C, objective, include_group: as in :func:`fairflip.problem.build_problem`.
        method_params: per-method keyword parameters, e.g. ``{"rb-label": {"k": 5}}``.
        time_limit: seconds allowed to each method call (one problem, all its budgets); an oracle past it
            returns its incumbent and the row's ``status`` is ``time_limit``. None: no limit.
        progress: callback receiving progress dicts (``stage``, ``done``, ``total`` over the method calls of the
            sweep, and the running method's ``best`` and ``bound`` when it reports them).

    Returns:
        DataFrame with one row per (method, collective fraction, access, budget, seed) and the columns
        ``dataset, method, omniscient, collective_fraction, collective_size, access, known_majority, direction,
        budget`` (as given), ``max_flips`` (the budget as a count), ``seed, n_candidates, n_flipped``, the test
        metrics :data:`METRICS`, ``objective`` (the in-sample objective after retraining), ``status`` (the
        method's result status, see :data:`fairflip.methods.STATUSES`) and ``select_s`` (seconds the method
        took to choose the flips of all budgets of that problem, on every row).
    """
    methods = _as_list(methods)
    budgets = _check_budgets(_as_list(budgets))
    seeds = _as_list(seeds)
    accesses = _as_list(known_majority)
    if not methods or not budgets or not seeds:
        raise FairflipError("a sweep needs at least one method, one budget and one seed")
    fractions: list[float | None] = [None] if members is not None else _as_list(collective_fractions)
    params = dict(method_params or {})
    unknown = set(params) - set(methods)
    if unknown:
        raise FairflipError(f"method_params name method(s) not in the sweep: {sorted(unknown)}")
    prep = FeaturePreparer(include_group=include_group).fit(train)
    X_test = prep.transform(test)
    X_test_cf = prep.transform(test, counterfactual_group=True) if include_group else None
    rows = []
    tracker = _Tracker(progress, len(fractions) * len(accesses) * len(seeds) * len(methods))
    for frac in fractions:
        for m in accesses:
            for seed in seeds:
                problem, _ = build_problem(
                    train, firm=firm, C=C, collective_fraction=frac, members=members, direction=direction,
                    known_majority=m, objective=objective, include_group=include_group, seed=seed)
                common = {"dataset": train.name, "seed": seed, "access": "full" if m is None else "restricted",
                          "collective_fraction": problem.collective.size / int(problem.a.sum()) if frac is None
                          else frac}
                rows += _run_problem(problem, methods, budgets, params, seed, (X_test, X_test_cf, test), common,
                                     time_limit, tracker)
    order = ["dataset", "method", "omniscient", "collective_fraction", "collective_size", "access",
             "known_majority", "direction", "budget", "max_flips", "seed", "n_candidates", "n_flipped",
             *METRICS, "objective", "status", "select_s"]
    return pd.DataFrame(rows)[order]


class _Tracker:
    """Counts the sweep's method calls for the progress callback and relays each method's own reports."""

    def __init__(self, progress: ProgressFn | None, total: int) -> None:
        self.progress, self.total, self.done = progress, total, 0

    def method(self, name: str, seed: int) -> ProgressFn | None:
        if self.progress is None:
            return None
        self.progress({"stage": f"{name} (seed {seed})", "done": self.done, "total": self.total,
                       "best": None, "bound": None})

        def relay(fields: dict) -> None:
            self.progress({k: v for k, v in fields.items() if k in ("best", "bound")})

        return relay

    def finished(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress({"done": self.done, "total": self.total})


def _run_problem(problem: FlipProblem, methods: list[str], budgets: list, params: dict, seed: int,
                 test_data: tuple[np.ndarray, np.ndarray | None, Dataset], common: dict,
                 time_limit: float | None = None, tracker: _Tracker | None = None) -> list[dict]:
    """Rows of every method and budget on one problem; ``test_data`` = (X_test, X_test_cf or None, test),
    ``common`` = the columns shared by every row of this problem."""
    X_test, X_test_cf, test = test_data
    n_cand = len(problem.candidates)
    counts = [resolve_budget(b, n_cand) for b in budgets]
    tracker = tracker or _Tracker(None, 0)
    chosen = {}
    for name in methods:
        chosen[name] = _flip_sets(problem, name, seed, params.get(name, {}), counts, time_limit,
                                  tracker.method(name, seed))
        tracker.finished()
    # Retrain each distinct flip set once, all in one batch, predicting the evaluation, test and counterfactual
    # test rows from one stacked matrix.
    distinct: dict[bytes, int] = {}
    unique_sets = []
    for sets, _, _, _ in chosen.values():
        for s in sets:
            key = s.tobytes()
            if key not in distinct:
                distinct[key] = len(unique_sets)
                unique_sets.append(s)
    X_eval, y_eval, a_eval = problem.evaluation_set
    blocks = [X_eval, X_test] + ([] if X_test_cf is None else [X_test_cf])
    P = problem.predictions(unique_sets, np.vstack(blocks))
    n_eval, n_test = len(X_eval), len(X_test)
    rows = []
    for name, (sets, seconds, omniscient, statuses) in chosen.items():
        for budget, count, s, status in zip(budgets, counts, sets, statuses):
            pred = P[distinct[s.tobytes()]]
            p_test = pred[n_eval:n_eval + n_test]
            p_cf = None if X_test_cf is None else pred[n_eval + n_test:]
            metrics = all_metrics(test.y, p_test, test.a, y_pred_counterfactual=p_cf)
            rows.append({
                **common, "method": name, "omniscient": omniscient, "collective_size": problem.collective.size,
                "known_majority": int(problem.collective.known_majority.sum()),
                "direction": problem.collective.direction, "budget": budget, "max_flips": count,
                "n_candidates": n_cand, "n_flipped": len(s),
                **{k: metrics.get(k, np.nan) for k in METRICS},
                "objective": problem.objective_from_predictions(y_eval, pred[:n_eval], a_eval),
                "status": status, "select_s": seconds,
            })
    return rows


def average_seeds(table: pd.DataFrame) -> pd.DataFrame:
    """Mean of every numeric column over seeds, per configuration (:data:`CONFIG`), plus ``n_seeds``.

    Args:
        table: a :func:`sweep` table.

    Returns:
        one row per configuration; metric columns hold means, ``eqod_std`` the standard deviation of EqOd.
    """
    missing = [c for c in (*CONFIG, "seed", "eqod", "error") if c not in table.columns]
    if missing:
        raise FairflipError(f"not a sweep table: missing column(s) {missing}")
    keys = list(CONFIG)
    numeric = [c for c in table.columns if c not in keys and c != "seed" and pd.api.types.is_numeric_dtype(table[c])]
    grouped = table.groupby(keys, sort=True, dropna=False)
    out = grouped[numeric].mean()
    out["eqod_std"] = grouped["eqod"].std(ddof=0)
    out["n_seeds"] = grouped["seed"].nunique()
    return out.reset_index()


def nondominated(points: pd.DataFrame, *, x: str = "error", y: str = "eqod",
                 tie_break: Sequence[str] = ()) -> pd.DataFrame:
    """The rows of ``points`` not dominated in (x, y), both minimised, sorted by x.

    A row is dominated when another has x and y no larger and one of them smaller; of rows with equal (x, y), the
    first in ``tie_break`` order is kept.

    Args:
        points: one row per point, with columns ``x``, ``y`` and those of ``tie_break``.
        x, y: the two objectives.
        tie_break: further sort keys deciding which of equal points is kept (e.g. ``("budget",)``).

    Returns:
        the non-dominated rows (original index), sorted by x then y.
    """
    ordered = points.sort_values([x, y, *tie_break], kind="stable")
    keep, best_y = [], np.inf
    for idx, value in zip(ordered.index, ordered[y].to_numpy()):
        if value < best_y:
            keep.append(idx)
            best_y = value
    return ordered.loc[keep]


def pareto_front(table: pd.DataFrame, *,
                 by: Sequence[str] = ("dataset", "method", "collective_fraction", "access", "known_majority"),
                 x: str = "error", y: str = "eqod") -> pd.DataFrame:
    """The seed-averaged configurations not dominated in (x, y), both minimised, within each group ``by``.

    A configuration is dominated when another in its group has x and y no larger and one of them smaller; of
    configurations with equal (x, y), the first in budget order is kept.

    Args:
        table: a :func:`sweep` table.
        by: columns that define separate fronts (default: one front per dataset, method, collective size and
            access level (full, or m known majority rows), over the budgets).
        x, y: the two objectives (default test error and test EqOd).

    Returns:
        rows of :func:`average_seeds` on the fronts, sorted by ``by`` then ``x``.
    """
    avg = average_seeds(table)
    for col in (*by, x, y):
        if col not in avg.columns:
            raise FairflipError(f"column '{col}' is not in the averaged sweep table")
    fronts = [nondominated(group, x=x, y=y, tie_break=("budget",))
              for _, group in avg.groupby(list(by), sort=True, dropna=False)]
    return pd.concat(fronts).reset_index(drop=True) if fronts else avg.iloc[:0].reset_index(drop=True)


def best_eqod_per_size(table: pd.DataFrame, *, by: Sequence[str] = ("dataset", "method", "access", "known_majority"),
                       max_error_increase: float | None = None) -> pd.DataFrame:
    """For each collective size (and group ``by``), the budget with the lowest seed-averaged test EqOd.

    The reference is the unchanged firm, the budget-0 rows of the same group and size (``base_eqod``,
    ``base_error``; NaN when the sweep has no budget 0).

    Args:
        table: a :func:`sweep` table.
        by: columns that, with ``collective_fraction``, define a group.
        max_error_increase: when set, only budgets whose mean error is at most ``base_error`` plus this (e.g.
            0.02 for 2 points) compete; needs budget 0 in the sweep.

    Returns:
        one row per group: ``by``, ``collective_fraction``, the best ``budget``, its ``eqod``, ``error``,
        ``n_flipped``, ``eqod_std``, ``base_eqod``, ``base_error`` and ``eqod_reduction`` = 1 - eqod / base_eqod.
    """
    avg = average_seeds(table)
    keys = [*by, "collective_fraction"]
    base = avg[avg["max_flips"] == 0].groupby(keys, dropna=False)[["eqod", "error"]].first()
    base.columns = ["base_eqod", "base_error"]
    avg = avg.join(base, on=keys)
    if max_error_increase is not None:
        if avg["base_error"].isna().any():
            raise FairflipError("max_error_increase needs budget 0 (the unchanged firm) in the sweep")
        avg = avg[avg["error"] <= avg["base_error"] + max_error_increase + 1e-12]
    best = avg.sort_values([*keys, "eqod", "budget"], kind="stable").groupby(keys, dropna=False).head(1)
    best = best.assign(eqod_reduction=1.0 - best["eqod"] / best["base_eqod"])
    cols = [*keys, "budget", "eqod", "error", "n_flipped", "eqod_std", "base_eqod", "base_error", "eqod_reduction"]
    return best[cols].reset_index(drop=True)
