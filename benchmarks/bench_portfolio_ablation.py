"""The portfolio's defaults across datasets: final in-sample objectives of ``oracle`` variants.

Each variant answers M = 10, 25, 50, 100 in one ``select_many`` on the 70% training split of a registered dataset
(subsampled to ``max_rows``), 30% collective, direction auto, logistic firm. The objectives are deterministic
(times are not reported: they depend on the machine's load). This is how the relaxation's step cap and the
default ranker were chosen.

    FAIRFLIP_DATA=<data home> python -m benchmarks.bench_portfolio_ablation
        --datasets german,crime,compas,law,dutch --seeds 0,1 --variants default,steps100,steps50,surrogate,influence

One JSON line per (dataset, seed, variant) on stdout.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

VARIANTS = {
    "default": {},
    "steps100": {"relaxed_params": {"steps": 100}},
    "steps50": {"relaxed_params": {"steps": 50}},
    "surrogate": {"ranker": "surrogate"},
    "influence": {"ranker": "influence"},
    "hybrid": {"ranker": "hybrid"},
    "top1": {"polish_top": 1},
    "no-relaxed": {"components": ("enumerate", "heuristics", "convex", "greedy")},
    "no-greedy": {"components": ("enumerate", "heuristics", "relaxed", "convex")},
    "no-screen": {"screen": False},
}


def problems(datasets: list[str], seeds: list[int], max_rows: int = 8_000):
    """Yield (dataset, seed, problem): the 70% training split of each registered dataset (subsampled to
    ``max_rows`` rows), 30% collective, direction auto, logistic firm."""
    from fairflip.datasets import load, stratified_split
    from fairflip.problem import build_problem

    for name in datasets:
        data = load(name)
        if len(data.y) > max_rows:
            data = data.subset(np.sort(np.random.default_rng(0).choice(len(data.y), max_rows, replace=False)))
        for seed in seeds:
            train, _ = stratified_split(data, test_size=0.3, seed=seed)
            problem, _ = build_problem(train, firm="logistic", collective_fraction=0.3, direction="auto", seed=seed)
            yield name, seed, problem


def run(datasets: list[str], seeds: list[int], variants: list[str], *, budgets=(10, 25, 50, 100),
        max_rows: int = 8_000):
    """Yield one record per (dataset, seed, variant): objectives (len(budgets),), winners, flip sets retrained."""
    from fairflip.methods import get_method

    for name, seed, problem in problems(datasets, seeds, max_rows):
        for variant in variants:
            results = get_method("oracle", **VARIANTS[variant]).select_many(problem, list(budgets))
            yield {"dataset": name, "seed": seed, "variant": variant, "budgets": list(budgets),
                   "objective": [r.objective for r in results], "winner": [r.info["winner"] for r in results],
                   "retrained": results[0].info["retrained"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_portfolio_ablation",
                                description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="german,crime,compas,law,dutch")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--variants", default="default,steps100,surrogate,influence")
    args = p.parse_args(argv)
    unknown = sorted(set(args.variants.split(",")) - set(VARIANTS))
    if unknown:
        p.error(f"unknown variant(s) {unknown}; choose among {', '.join(VARIANTS)}")
    for record in run(args.datasets.split(","), [int(s) for s in args.seeds.split(",")], args.variants.split(",")):
        print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
