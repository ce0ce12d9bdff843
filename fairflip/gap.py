"""The optimality gap: how far each heuristic's flips are from the oracle's, in-sample and on held-out data.

For each seed (which draws the collective and seeds the random heuristics) the heuristics and the oracle choose
flips for every budget; each flip set is then retrained exactly and scored with the true objective on the
training rows (in-sample, what the oracle minimises) and on the test split. The gap of a method is its
objective minus the oracle's (positive = the oracle is better). The oracle is omniscient, so the gap measures
what a collective leaves on the table, not a strategy it could run. When the oracle reports a certified lower
bound, the in-sample gap to that bound is given too, with the bound's source, the oracle's status and MIP gap.

Every row carries what a reader needs to reproduce it: the seed, the solver (name and version) of the method, its
time limit and whether it was hit, whether the answer may depend on machine load, and a SHA-256 hash of the
prepared input data. A bound that lies above any flip set's in-sample objective evaluated for the same seed and
budget is not a proof: it is withdrawn from ``lower_bound`` and the rows are flagged ``bound_inconsistent`` (the
value is kept in ``rejected_bound``).
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np
import pandas as pd

from ._errors import FairflipError, check_budget
from .collective import Direction
from .datasets import Dataset
from .methods import BOUND_TOLERANCE, HEURISTICS, available_methods, get_method
from .problem import build_problem
from .strategies.base import resolve_budget

DEFAULT_HEURISTICS = HEURISTICS
GAP_COLUMNS = ["seed", "budget", "method", "split", "objective", "oracle_objective", "gap", "lower_bound",
               "bound_source", "gap_to_bound", "bound_inconsistent", "rejected_bound", "oracle_status", "mip_gap",
               "status", "n_flipped", "time_s", "time_limit", "time_limit_hit", "load_dependent", "solver",
               "data_sha256"]
"""Columns of :func:`optimality_gap`'s table, in order."""


def data_sha256(*arrays: np.ndarray | None) -> str:
    """SHA-256 (hex) of arrays' shapes, dtypes and bytes, in order; None entries count as a marker."""
    h = hashlib.sha256()
    for a in arrays:
        if a is None:
            h.update(b"none;")
            continue
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


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
        progress: progress callback passed to every ``select_many`` (see :data:`fairflip.methods.ProgressFn`); it
            also receives ``stage``, ``done`` and ``total`` over the method calls before each call.

    Returns:
        a tidy DataFrame with one row per (seed, budget, method, split) and the columns :data:`GAP_COLUMNS`:
        ``seed, budget, method, split`` (``in-sample`` or ``test``); ``objective``; ``oracle_objective`` (the
        oracle's incumbent) and ``gap`` (objective minus it); on in-sample rows the oracle's certified
        ``lower_bound`` with its ``bound_source`` and ``gap_to_bound`` (objective minus the bound; NaN / None when
        there is no certified bound), ``bound_inconsistent`` and ``rejected_bound`` (a bound above an evaluated
        objective, withdrawn), ``oracle_status`` and ``mip_gap``; then the row's method's ``status``,
        ``n_flipped``, ``time_s`` (its selection time), ``time_limit``, ``time_limit_hit``, ``load_dependent``
        (True when the answer can change with machine load, i.e. a wall-clock limit was hit), ``solver`` (name and
        version, None for methods without one) and ``data_sha256`` (hash of the prepared training and test data
        and of the explicit membership mask, identical across seeds). The oracle has rows too (gap 0).
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
    digest = None
    calls, n_calls = 0, len(seeds) * (len(heuristics) + 1)
    for seed in seeds:
        problem, prep = build_problem(
            train, firm=firm, C=C, collective_fraction=None if members is not None else collective_fraction,
            members=members, direction=direction, known_majority=known_majority, objective=objective,
            include_group=include_group, seed=int(seed))
        X_test = None if test is None else prep.transform(test)
        if digest is None:
            digest = data_sha256(problem.X, problem.y, problem.a, members, X_test,
                                 None if test is None else test.y, None if test is None else test.a)
        chosen: dict[str, list] = {}
        for name in [*heuristics, oracle]:
            params = dict(oracle_params or {}) if name == oracle else {}
            counts = [resolve_budget(b, len(problem.candidates)) for b in budgets]
            if progress is not None:  # which call runs, of how many; None clears the previous call's best and bound
                progress({"stage": f"{name} (seed {seed})", "done": calls, "total": n_calls, "best": None,
                          "bound": None})
            calls += 1
            chosen[name] = get_method(name, seed=int(seed), **params).select_many(
                problem, counts, time_limit=time_limit, progress=progress)
        names = list(chosen)
        sets = [chosen[n][b].flipped for n in names for b in range(len(budgets))]
        splits = {"in-sample": problem.objective_of(sets)}
        if test is not None:
            P = problem.predictions(sets, X_test)
            splits["test"] = np.array([problem.objective_from_predictions(test.y, p, test.a) for p in P])
        in_sample = splits["in-sample"].reshape(len(names), len(budgets))
        for split, values in splits.items():
            table = values.reshape(len(names), len(budgets))
            ref = table[names.index(oracle)]
            for b, M in enumerate(budgets):
                o = chosen[oracle][b]
                bound, rejected, inconsistent = o.lower_bound, o.info.get("rejected_bound"), o.bound_inconsistent
                # Checked against every flip set evaluated here for this seed and budget, not only the oracle's.
                if bound is not None and bound > float(in_sample[:, b].min()) + BOUND_TOLERANCE:
                    bound, rejected, inconsistent = None, bound, True
                for i, name in enumerate(names):
                    r = chosen[name][b]
                    shown = bound if split == "in-sample" else None
                    rows.append({
                        "seed": int(seed), "budget": M, "method": name, "split": split,
                        "objective": float(table[i, b]), "oracle_objective": float(ref[b]),
                        "gap": float(table[i, b] - ref[b]),
                        "lower_bound": np.nan if shown is None else float(shown),
                        "bound_source": o.bound_source if shown is not None else None,
                        "gap_to_bound": np.nan if shown is None else float(table[i, b] - shown),
                        "bound_inconsistent": bool(inconsistent),
                        "rejected_bound": np.nan if rejected is None else float(rejected),
                        "oracle_status": o.status,
                        "mip_gap": np.nan if o.mip_gap is None else float(o.mip_gap),
                        "status": r.status, "n_flipped": int(len(r.flipped)), "time_s": r.runtime_s,
                        "time_limit": np.nan if r.time_limit is None else float(r.time_limit),
                        "time_limit_hit": bool(r.time_limit_hit),
                        "load_dependent": bool(r.time_limit_hit or r.info.get("load_dependent", False)),
                        "solver": r.solver, "data_sha256": digest,
                    })
    return pd.DataFrame(rows, columns=GAP_COLUMNS)


def gap_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds of the objective and gap, per (budget, method, split), with the
    certificate columns summarised too.

    Args:
        table: the output of :func:`optimality_gap`.

    Returns:
        a DataFrame with columns ``budget, method, split, objective_mean, objective_std, gap_mean, gap_std,
        n_seeds``, then ``lower_bound_mean`` and ``gap_to_bound_mean`` (over the seeds with a certified bound; NaN
        when none has one), ``n_bounded`` (seeds with a certified bound), ``bound_inconsistent`` (any seed's bound
        withdrawn) and ``time_limit_hit`` (any seed's run stopped by its time limit).
    """
    grouped = table.groupby(["budget", "method", "split"], sort=True)
    out = grouped.agg(objective_mean=("objective", "mean"), objective_std=("objective", "std"),
                      gap_mean=("gap", "mean"), gap_std=("gap", "std"), n_seeds=("seed", "nunique"),
                      lower_bound_mean=("lower_bound", "mean"), gap_to_bound_mean=("gap_to_bound", "mean"),
                      n_bounded=("lower_bound", "count"), bound_inconsistent=("bound_inconsistent", "any"),
                      time_limit_hit=("time_limit_hit", "any"))
    return out.reset_index()
