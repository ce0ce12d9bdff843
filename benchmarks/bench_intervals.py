"""The logistic certificate's root intervals on a real dataset: whether they settle, how wide they are, time and
peak memory, for one budget and one ``pairwise_entries`` per process (so the peak is that configuration's).

Usage (from the repository root)::

    python -m benchmarks.bench_intervals --dataset adult --budget 2
    python -m benchmarks.bench_intervals --dataset dutch --budget 5 --pairwise-entries 0   # the norm bound alone

Setting: collective 30 % of the minority, direction auto, seed 0, training rows of the 70/30 split (as
``bench_certificate``); :func:`fairflip.solvers.logistic_cert.logistic_intervals` at the root (no flip fixed, every
candidate free) with the branch and bound's root options (100 tracked rows, no second-order interval). Prints one
JSON line: ``certified``, ``pairwise_rows``, ``reselected``, ``median_radius`` (evaluation rows), ``open_rows``
(rows whose interval crosses the threshold over the budget), ``seconds`` (the intervals only) and
``peak_rss_gib`` (the whole process, data loading and the first fit included).
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np


def run(dataset: str, budget: int, pairwise_entries: int | None = None) -> dict:
    """One root interval computation; see the module docstring for the fields."""
    import torch

    from fairflip.datasets import load, stratified_split
    from fairflip.problem import build_problem
    from fairflip.solvers.logistic_cert import logistic_intervals

    torch.set_num_threads(1)
    train, _ = stratified_split(load(dataset), test_size=0.3, seed=0)
    problem, _ = build_problem(train, firm="logistic", collective_fraction=0.3, direction="auto", seed=0)
    cands = problem.candidates
    problem.fit_flip_sets([cands[:0]])  # the unflipped fit, outside the timed part
    start = time.perf_counter()
    iv = logistic_intervals(problem, cands[:0], cands, budget, tracked=100, quadratic=False,
                            pairwise_entries=pairwise_entries)
    seconds = time.perf_counter() - start
    out = {"dataset": dataset, "n": problem.n, "candidates": int(len(cands)), "budget": budget,
           "pairwise_entries": pairwise_entries, "certified": bool(iv.certified),
           "pairwise_rows": iv.info.get("pairwise_rows"), "reselected": iv.info.get("reselected"),
           "median_radius": None, "open_rows": None, "seconds": round(seconds, 1)}
    if iv.certified:
        lower, upper = iv.model.score_bounds(iv.budget)
        out["median_radius"] = float(np.median(iv.radius))
        out["open_rows"] = int(((lower - iv.radius <= 0) & (upper + iv.radius >= 0)).sum())
    out["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20, 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="compas")
    parser.add_argument("--budget", type=int, default=2)
    parser.add_argument("--pairwise-entries", type=int, default=None,
                        help="memory of the per-row remainder bound above 6,000 rows (default: the library's)")
    args = parser.parse_args()
    print(json.dumps(run(args.dataset, args.budget, args.pairwise_entries)), flush=True)


if __name__ == "__main__":
    main()
