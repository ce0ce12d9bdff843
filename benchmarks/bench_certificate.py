"""Certified lower bounds on a real dataset: the logistic firm's score intervals checked against retraining, and the
certified gap per budget (incumbent, bound, gap, time).

    python -m benchmarks.bench_certificate --dataset compas --budgets 1,2,3,5,10 --time-limit 150
    python -m benchmarks.bench_certificate --dataset compas --firm ridge --budgets 1,2,3,5,10 --time-limit 60

Setting: collective 30 % of the minority, direction auto, seed 0, 70/30 stratified split (training rows only).
The incumbent is greedy with exact retraining polished by local search (the oracle's exact-retraining
components); the logistic bound comes from :func:`fairflip.solvers.logistic_cert.certify_logistic` warm-started
with it, the ridge bound from ``oracle-convex``'s exact MILP. Validity (logistic): ``--check-sets`` random flip
sets per budget (a quarter of them smaller than the budget) are retrained exactly and every training score is
compared with its certified interval; the violations must be 0, and the ratio of observed error to the interval's
half-width says how tight the interval is.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def check_intervals(problem, budget: int, n_sets: int, seed: int = 0) -> dict:
    """Retrain ``n_sets`` random flip sets and compare every evaluation score with its certified interval."""
    from fairflip.solvers.logistic_cert import logistic_intervals

    cands = problem.candidates
    start = time.perf_counter()
    iv = logistic_intervals(problem, np.zeros(0, dtype=np.int64), cands, budget)
    out: dict = {"budget": budget, "certified": iv.certified, "intervals_s": time.perf_counter() - start}
    if not iv.certified:
        return out
    rng = np.random.default_rng(seed)
    sets = [np.sort(rng.choice(cands, size=int(rng.integers(1, budget + 1)) if i % 4 == 0 else budget,
                               replace=False)) for i in range(n_sets)]
    X_eval = problem.evaluation_set[0]
    E = np.c_[X_eval, np.ones(len(X_eval))]
    F = E @ problem.fit_flip_sets(sets).T - problem.firm.score_threshold  # (m, K) true scores
    Z = np.stack([np.isin(cands, s).astype(float) for s in sets], axis=1)
    err = np.abs(F - (iv.model.base[:, None] + iv.model.slope @ Z))
    radius = iv.radius[:, None]
    if iv.radius_affine is not None:
        r0, R = iv.radius_affine
        radius = np.minimum(radius, r0[:, None] + R @ Z)
    ratio = err / radius
    out.update(sets=n_sets, rows=int(F.shape[0]), violations=int((err > radius).sum()),
               ratio_median=float(np.median(ratio)), ratio_p99=float(np.quantile(ratio, 0.99)),
               ratio_max=float(ratio.max()), radius_median=float(np.median(radius)),
               error_max=float(err.max()), max_shift=iv.info["max_shift"])
    return out


def run(dataset: str = "compas", firm: str = "logistic", budgets=(1, 2, 3, 5, 10), time_limit: float = 150.0,
        check_sets: int = 300, incumbent: str = "greedy") -> list[dict]:
    """One row per budget (and, for the logistic firm, one validity check per budget).

    ``incumbent``: ``greedy`` (greedy with exact retraining polished by local search, per budget) or ``oracle``
    (the ``oracle`` portfolio over every budget in one call: much cheaper at large M or n).
    """
    import torch

    from fairflip.datasets import load, stratified_split
    from fairflip.methods import get_method
    from fairflip.problem import build_problem
    from fairflip.solvers.exact import greedy_path
    from fairflip.solvers.search import ranked_local_search
    from fairflip.solvers.logistic_cert import certify_logistic

    torch.set_num_threads(1)
    train, _ = stratified_split(load(dataset), test_size=0.3, seed=0)
    problem, _ = build_problem(train, firm=firm, collective_fraction=0.3, direction="auto", seed=0)
    rows = []
    found = {}
    if incumbent == "oracle":
        start = time.perf_counter()
        results = get_method("oracle").select_many(problem, list(budgets))
        shared = (time.perf_counter() - start) / len(budgets)
        found = {M: (r.flipped, r.objective, shared, r) for M, r in zip(budgets, results)}
    for M in budgets:
        if firm == "logistic" and check_sets:
            rows.append({"kind": "validity", **check_intervals(problem, M, check_sets)})
            print(json.dumps(rows[-1]), flush=True)
        if M in found and found[M][3].status == "optimal":  # the portfolio proved it (e.g. by enumeration)
            r = found[M][3]
            rows.append({"kind": "bound", "dataset": dataset, "firm": firm, "n": problem.n,
                         "candidates": int(len(problem.candidates)), "budget": M, "incumbent": r.objective,
                         "lower_bound": r.lower_bound, "bound_source": r.bound_source, "status": r.status,
                         "gap": r.objective - r.lower_bound, "bound_s": 0.0, "incumbent_s": found[M][2],
                         "solver": r.solver, "nodes": None, "time_limit_hit": False})
            print(json.dumps(rows[-1]), flush=True)
            continue
        if M in found:
            flipped, value, incumbent_s, _ = found[M]
        else:
            start = time.perf_counter()
            order, _ = greedy_path(problem, M)
            polished = ranked_local_search(problem, np.sort(order), M, max_evaluations=3000)
            flipped, value, incumbent_s = polished.flipped, polished.objective, time.perf_counter() - start
        start = time.perf_counter()
        if firm == "logistic":
            r = certify_logistic(problem, M, incumbent=flipped, time_limit=time_limit,
                                 node_time_limit=min(40.0, time_limit))
        else:
            r = get_method("oracle-convex", formulation="exact-milp", time_limit=time_limit).select(problem, M)
        best = min(value, r.objective)
        rows.append({"kind": "bound", "dataset": dataset, "firm": firm, "n": problem.n,
                     "candidates": int(len(problem.candidates)), "budget": M, "incumbent": best,
                     "lower_bound": r.lower_bound, "bound_source": r.bound_source, "status": r.status,
                     "gap": None if r.lower_bound is None else best - r.lower_bound,
                     "bound_s": time.perf_counter() - start, "incumbent_s": incumbent_s, "solver": r.solver,
                     "nodes": r.info.get("nodes"), "time_limit_hit": r.time_limit_hit})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="compas")
    parser.add_argument("--firm", default="logistic", choices=["logistic", "ridge"])
    parser.add_argument("--budgets", default="1,2,3,5,10")
    parser.add_argument("--time-limit", type=float, default=150.0)
    parser.add_argument("--check-sets", type=int, default=300)
    parser.add_argument("--incumbent", default="greedy", choices=["greedy", "oracle"])
    args = parser.parse_args()
    run(args.dataset, args.firm, [int(b) for b in args.budgets.split(",")], args.time_limit, args.check_sets,
        args.incumbent)


if __name__ == "__main__":
    main()
