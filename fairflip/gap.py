"""The optimality gap: how far each heuristic's flips are from the oracle's, in-sample and on held-out data.

For each seed (which draws the collective and seeds the random heuristics) the heuristics and the oracle choose
flips for every budget; each flip set is then retrained exactly and scored with the true objective on the
training rows (in-sample, what the oracle minimises) and on the test split. The gap of a method is its
objective minus the oracle's (positive = the oracle is better). The oracle is omniscient, so the gap measures
what a collective leaves on the table, not a strategy it could run. When the oracle reports a certified lower
bound, the in-sample gap to that bound is given too.
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import pandas as pd

from ._errors import FairflipError, check_budget
from .collective import Direction
from .datasets import Dataset
from .methods import HEURISTICS, available_methods, get_method
from .problem import build_problem
from .strategies.base import resolve_budget

DEFAULT_HEURISTICS = HEURISTICS
GAP_COLUMNS = ["seed", "budget", "method", "split", "objective", "oracle_objective", "gap", "lower_bound",
               "gap_to_bound", "n_flipped", "time_s"]


def optimality_gap(
    train: Dataset,
    test: Dataset | None = None,
    *,
    budgets: Sequence[int] = (10, 25, 50, 100),
    seeds: Sequence[int] = (0,),
    firm: str = "logistic",
    C: float = 1.0,
    collective_fraction: float | None = 0.3,
    members: np.ndarray | None = None,
    direction: Direction = "auto",
    known_majority: int | None = None,
    objective: str = "eqod",
    include_group: bool = True,
    heuristics: Sequence[str] | None = None,
    oracle: str = "oracle",
    oracle_params: dict | None = None,
    time_limit: float | None = None,
    progress=None,
) -> pd.DataFrame:
    """Each heuristic's objective, the oracle's, the oracle's bound and the gaps, over seeds and budgets.

    Args:
        train: training rows (n); the collective is drawn among them.
        test: held-out rows for the ``test`` split (None: in-sample rows only).
        budgets: flip budgets M: counts (int), or fractions of the candidates (float in [0, 1]) resolved per
            seed; the ``budget`` column holds them as given.
        seeds: seeds of the collective draw and of seeded heuristics (one run per seed).
        firm, C, collective_fraction, members, direction, known_majority, objective, include_group: as in
            :func:`fairflip.problem.build_problem`.
        heuristics: method names compared with the oracle (default: the registered ones of random, rb-prob,
            rb-label, rb-dist, massaging).
        oracle: the reference method (``oracle`` by default; any registered method).
        oracle_params: keyword options of the oracle.
        time_limit: seconds allowed to each method call (all budgets of one seed); passed to ``select_many``.
        progress: progress callback passed to every ``select_many`` (see :data:`fairflip.methods.ProgressFn`).

    Returns:
        a tidy DataFrame with one row per (seed, budget, method, split) and columns ``seed, budget, method,
        split`` (``in-sample`` or ``test``), ``objective``, ``oracle_objective``, ``gap`` (objective minus the
        oracle's), ``lower_bound`` and ``gap_to_bound`` (in-sample rows, NaN when the oracle has no certified
        bound), ``n_flipped`` and ``time_s`` (the method's selection time). The oracle has rows too (gap 0).
    """
    budgets = [b if isinstance(b, float) else check_budget(b) for b in budgets]
    if not budgets or not len(seeds):
        raise FairflipError("give at least one budget and one seed")
    registered = set(available_methods())
    if heuristics is None:
        heuristics = [h for h in DEFAULT_HEURISTICS if h in registered]
    for name in [*heuristics, oracle]:
        if name not in registered:
            raise FairflipError(f"unknown method '{name}'; choose among {', '.join(sorted(registered))}")
    rows = []
    for seed in seeds:
        problem, prep = build_problem(
            train, firm=firm, C=C, collective_fraction=None if members is not None else collective_fraction,
            members=members, direction=direction, known_majority=known_majority, objective=objective,
            include_group=include_group, seed=int(seed))
        chosen: dict[str, list[tuple[np.ndarray, float | None, float]]] = {}
        for name in [*heuristics, oracle]:
            params = dict(oracle_params or {}) if name == oracle else {}
            counts = [resolve_budget(b, len(problem.candidates)) for b in budgets]
            results = get_method(name, seed=int(seed), **params).select_many(
                problem, counts, time_limit=time_limit, progress=progress)
            chosen[name] = [(r.flipped, r.lower_bound, r.runtime_s) for r in results]
        names = list(chosen)
        sets = [chosen[n][b][0] for n in names for b in range(len(budgets))]
        splits = {"in-sample": problem.objective_of(sets)}
        if test is not None:
            X_test = prep.transform(test)
            P = problem.predictions(sets, X_test)
            splits["test"] = np.array([problem.objective_from_predictions(test.y, p, test.a) for p in P])
        for split, values in splits.items():
            table = values.reshape(len(names), len(budgets))
            ref = table[names.index(oracle)]
            for i, name in enumerate(names):
                for b, M in enumerate(budgets):
                    flipped, _, elapsed = chosen[name][b]
                    bound = chosen[oracle][b][1] if split == "in-sample" else None
                    rows.append({
                        "seed": int(seed), "budget": M, "method": name, "split": split,
                        "objective": float(table[i, b]), "oracle_objective": float(ref[b]),
                        "gap": float(table[i, b] - ref[b]),
                        "lower_bound": np.nan if bound is None else float(bound),
                        "gap_to_bound": np.nan if bound is None else float(table[i, b] - bound),
                        "n_flipped": int(len(flipped)), "time_s": elapsed,
                    })
    return pd.DataFrame(rows, columns=GAP_COLUMNS)


def gap_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds of the objective and gap, per (budget, method, split).

    Args:
        table: the output of :func:`optimality_gap`.

    Returns:
        a DataFrame with columns ``budget, method, split, objective_mean, objective_std, gap_mean, gap_std,
        n_seeds``.
    """
    grouped = table.groupby(["budget", "method", "split"], sort=True)
    out = grouped.agg(objective_mean=("objective", "mean"), objective_std=("objective", "std"),
                      gap_mean=("gap", "mean"), gap_std=("gap", "std"), n_seeds=("seed", "nunique"))
    return out.reset_index()
