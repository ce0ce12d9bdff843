"""Benchmark 5: the exact MILP oracle (ridge firm, ``oracle-convex`` with ``formulation="exact-milp"``).

n grows by doubling over random COMPAS subsamples (shipped with fairflip) with a 30% collective flipping 0 -> 1
and a fixed budget; each instance gets ``time_limit`` seconds of HiGHS. The growth stops at the first instance
not solved to proven optimality within the limit; the largest one that was is reported, for each form of the
MILP in the same run: ``factored`` (the default: scores through g = J z, classes of identical candidates and rows)
and ``dense`` (one constraint pair over all c candidates per row, the earlier form).
"""

from __future__ import annotations

import numpy as np

from fairflip.datasets import load
from fairflip.firms import LinearFirm
from fairflip.methods import get_method
from fairflip.problem import build_problem

from ._harness import measure


def run(*, sizes: tuple[int, ...] = (100, 200, 400, 800, 1_600, 3_200, 6_400), budget: int = 10,
        time_limit: float = 60.0, device: str | None = None, seed: int = 0,
        forms: tuple[str, ...] = ("factored", "dense")) -> dict:
    """Solve the exact MILP at growing n until one is not proven optimal within ``time_limit`` seconds, per form."""
    out = {}
    for form in forms:
        out[form] = _grow(sizes, budget, time_limit, device, seed, form)
    first = out[forms[0]]
    return {"benchmark": "milp", "dataset": "compas (shipped)", "firm": "ridge", "time_limit_s": time_limit,
            "largest_optimal_n": first["largest_optimal_n"], "device": first["device"],
            "rows": [r for f in forms for r in out[f]["rows"]],
            "largest_optimal_n_by_form": {f: out[f]["largest_optimal_n"] for f in forms}}


def _grow(sizes, budget, time_limit, device, seed, form) -> dict:
    data = load("compas")
    firm = LinearFirm("squared", C=1.0, device=device)
    rng = np.random.default_rng(seed)
    rows, largest = [], None
    for n in sizes:
        sub = data if n >= len(data) else data.subset(np.sort(rng.choice(len(data), size=n, replace=False)))
        problem, _ = build_problem(sub, firm=firm, collective_fraction=0.3, direction="up", seed=seed)
        method = get_method("oracle-convex", formulation="exact-milp", time_limit=time_limit,
                            factored=form == "factored")
        m = measure("exact-milp", lambda: method.select(problem, budget))
        info = m.value.info
        optimal = info["status"] == "optimal" and m.seconds <= time_limit
        rows.append({"form": form, "n": problem.n, "candidates": len(problem.candidates), "budget": budget,
                     "binaries": info.get("n_binary"), "status": info["status"], "seconds": m.seconds,
                     "solver_s": info["solve_time"], "objective": info["true_objective"],
                     "bound": m.value.lower_bound, "abs_gap": info["abs_gap"], "peak_mb": m.peak_mb,
                     "rss_mb": m.rss_mb})
        if not optimal:
            break
        largest = problem.n
        if n >= len(data):
            break
    return {"largest_optimal_n": largest, "device": str(firm.torch_device), "rows": rows}
