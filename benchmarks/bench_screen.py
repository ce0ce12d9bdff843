"""The local search's first-order screen, audited: does it ever leave out a move that would have improved?

For each registered dataset (70% training split, subsampled to ``max_rows``, 30% collective, direction auto,
logistic firm) and seed, ``oracle`` answers M = 10, 25, 50, 100 in one ``select_many`` twice: with
``screen=False`` and with an audited screen. The audited screen is
:func:`fairflip.solvers.influence.influence_screen` plus a check: every move it leaves out is retrained exactly
(from the current set), and a *miss* is a left-out move whose true objective is below the current one. Reported per
cell: moves screened, misses, local-search retrainings with and without the screen, and whether the final
objectives agree (they must when there is no miss: the search's tiers are cut before screening).

    FAIRFLIP_DATA=<data home> python -m benchmarks.bench_screen --datasets german,crime,compas,law,dutch --seeds 0,1

One JSON line per (dataset, seed) on stdout, then a summary line.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from fairflip.solvers.exact import IMPROVE_TOL


def audited(allowance: float, tally: dict):
    """A screen factory: the influence screen at ``allowance``, each left-out move retrained to count misses."""
    from fairflip.solvers.influence import influence_screen

    def build(problem):
        screen = influence_screen(problem, allowance=allowance)
        if screen is None:
            return None
        cands = problem.candidates

        def audit(current: np.ndarray, toggles: np.ndarray, value: float) -> np.ndarray:
            keep = screen(current, toggles, value)
            out = np.flatnonzero(~keep)
            if len(out):
                moves = [np.setxor1d(current, cands[t[t >= 0]]) for t in toggles[out]]
                values = problem.objective_of(moves, around=current)
                tally["screened"] += len(out)
                missed = values < value - IMPROVE_TOL
                tally["misses"] += int(missed.sum())
                if missed.any():
                    tally["worst_miss"] = max(tally["worst_miss"], float(value - values.min()))
            return keep

        return audit

    return build


def run(datasets: list[str], seeds: list[int], *, allowance: float | None = None, budgets=(10, 25, 50, 100),
        max_rows: int = 8_000):
    """Yield one record per (dataset, seed): screened moves, misses, retrainings, objectives with and without."""
    from fairflip.methods import get_method
    from fairflip.solvers.influence import SCREEN_ALLOWANCE

    from .bench_portfolio_ablation import problems

    allowance = SCREEN_ALLOWANCE if allowance is None else allowance
    for name, seed, problem in problems(datasets, seeds, max_rows):
        plain = get_method("oracle", screen=False).select_many(problem, list(budgets))
        tally = {"screened": 0, "misses": 0, "worst_miss": 0.0}
        screened = get_method("oracle", screen=audited(allowance, tally)).select_many(problem, list(budgets))

        def searched(results):
            return int(sum(c.get("local_search_evaluations", 0) for r in results
                           for c in r.info["components"].values()))

        a = [r.objective for r in plain]
        b = [r.objective for r in screened]
        yield {"dataset": name, "seed": seed, "allowance": allowance, "budgets": list(budgets), **tally,
               "search_retrained_plain": searched(plain), "search_retrained_screened": searched(screened),
               "objective_plain": a, "objective_screened": b,
               "same": bool(np.allclose(a, b, rtol=0, atol=IMPROVE_TOL))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_screen", description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="german,crime,compas,law,dutch")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--allowance", type=float, default=None, help="the screen's relative allowance (default: "
                   "fairflip.solvers.influence.SCREEN_ALLOWANCE)")
    args = p.parse_args(argv)
    total = {"cells": 0, "screened": 0, "misses": 0, "plain": 0, "screened_run": 0, "differing": 0}
    for record in run(args.datasets.split(","), [int(s) for s in args.seeds.split(",")], allowance=args.allowance):
        print(json.dumps(record), flush=True)
        total["cells"] += len(record["budgets"])
        total["screened"] += record["screened"]
        total["misses"] += record["misses"]
        total["plain"] += record["search_retrained_plain"]
        total["screened_run"] += record["search_retrained_screened"]
        total["differing"] += sum(abs(x - y) > IMPROVE_TOL for x, y in
                                  zip(record["objective_plain"], record["objective_screened"]))
    print(json.dumps({"summary": total}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
