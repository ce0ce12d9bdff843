"""Ablations of the relaxed oracle: how the smooth surrogate and the hypergradient mode change its answer and cost.

Each variant is a set of ``oracle-relaxed`` options; everything else (problem, budgets, steps, local search)
is held fixed, so a row differs from another in one part only. Objectives are always the *true* objective after
exact retraining: before local search (``rounded_objective``, the surrogate's own merit) and after it
(``objective``).
"""

from __future__ import annotations

from typing import Any, Sequence

import pandas as pd

from ._errors import FairflipError
from .methods import get_method
from .problem import FlipProblem

DEFAULT_VARIANTS: dict[str, dict[str, Any]] = {
    "sigmoid T=1": {"surrogate": "sigmoid", "temperature": 1.0},
    "sigmoid T=0.3": {"surrogate": "sigmoid", "temperature": 0.3},
    "sigmoid T=0.1": {"surrogate": "sigmoid", "temperature": 0.1},
    "sigmoid T=0.03": {"surrogate": "sigmoid", "temperature": 0.03},
    "sigmoid annealed 1->0.05": {"surrogate": "sigmoid", "temperature_start": 1.0, "temperature_end": 0.05},
    "hinge width=0.5": {"surrogate": "hinge", "temperature": 0.5},
    "mean-score": {"surrogate": "mean-score"},
    "annealed, unrolled Newton K=1": {"gradient": "unrolled", "unroll_kind": "newton", "unroll_steps": 1},
    "annealed, unrolled Newton K=5": {"gradient": "unrolled", "unroll_kind": "newton", "unroll_steps": 5},
    "annealed, unrolled gradient K=20": {"gradient": "unrolled", "unroll_kind": "gradient", "unroll_steps": 20},
}
"""Variant name -> ``oracle-relaxed`` options (implicit gradients and the annealed sigmoid unless stated)."""

ABLATION_COLUMNS = ["variant", "budget", "surrogate", "gradient", "rounded_objective", "objective",
                    "local_search_evaluations", "relaxation_time_s", "time_s"]


def surrogate_ablation(
    problem: FlipProblem,
    budgets: Sequence[int],
    *,
    variants: dict[str, dict[str, Any]] | None = None,
    base_params: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Run ``oracle-relaxed`` once per variant (all budgets in one batch) and tabulate objective and time.

    Args:
        problem: the flip problem (linear firm).
        budgets: flip budgets M.
        variants: name -> ``oracle-relaxed`` options (default :data:`DEFAULT_VARIANTS`).
        base_params: options shared by every variant (a variant's own options override them).

    Returns:
        one row per (variant, budget) with columns ``variant, budget, surrogate, gradient, rounded_objective``
        (best prefix of the relaxed ordering, true objective), ``objective`` (after local search),
        ``local_search_evaluations``, ``relaxation_time_s`` (the relaxed optimisation alone) and ``time_s``
        (the variant's total for all budgets, rounding and local search included).
    """
    variants = DEFAULT_VARIANTS if variants is None else variants
    if not variants:
        raise FairflipError("give at least one ablation variant")
    rows = []
    for name, params in variants.items():
        method = get_method("oracle-relaxed", **{**(base_params or {}), **params})
        results = method.select_many(problem, list(budgets))
        for M, r in zip(budgets, results):
            rows.append({
                "variant": name, "budget": int(M), "surrogate": r.info["surrogate"], "gradient": r.info["gradient"],
                "rounded_objective": r.info["rounded_objective"], "objective": r.info["objective"],
                "local_search_evaluations": r.info.get("local_search_evaluations", 0),
                "relaxation_time_s": r.info["relaxation_time_s"], "time_s": results[-1].info["time_s"],
            })
    return pd.DataFrame(rows, columns=ABLATION_COLUMNS)
