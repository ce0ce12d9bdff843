"""Bookkeeping of certified lower bounds: which bound a result reports, where it comes from, and whether it holds.

A lower bound is reported only when it is certified (a complete enumeration, a MILP solver's dual bound over a
relaxation of the true problem, an interval relaxation, branch and bound with exact retraining at the leaves).
Every bound is checked against the true objectives already evaluated: a bound above one of them is no proof, so
it is withdrawn and the result flagged ``bound_inconsistent`` (see :meth:`fairflip.methods.FlipResult.check_bound`).
"""

from __future__ import annotations

from typing import Sequence

from fairflip.methods import FlipResult

OPTIMAL_REL_GAP = 1e-6
"""A result is ``optimal`` when its true objective is within this relative gap of its certified bound (HiGHS's
``mip_rel_gap``), or within 1e-9 absolutely."""

# When two sources certify the same value, the more informative one is named.
_SOURCE_RANK = {"enumeration": 4, "branch-and-bound": 3, "milp-dual": 2, "relaxation": 1, "trivial": 0}


def meets(objective: float | None, bound: float | None) -> bool:
    """True when a true objective and a certified bound meet (the objective is then a proven optimum)."""
    if objective is None or bound is None:
        return False
    return objective - bound <= max(1e-9, OPTIMAL_REL_GAP * abs(objective))


def adopt_best_bound(result: FlipResult, components: Sequence[tuple[str, FlipResult]],
                     evaluated: float | None = None) -> None:
    """Give ``result`` (whose ``objective`` is a true, retrained value) the best certified bound of its components.

    Args:
        result: the combined answer (e.g. the portfolio's); its ``objective`` must be set.
        components: (name, result) pairs of the runs whose ``lower_bound`` may certify ``result``'s problem and
            budget (results without a bound are ignored).
        evaluated: the lowest true objective of any flip set evaluated on the way, when below ``objective``.

    Sets ``lower_bound``, ``bound_source``, ``mip_gap`` and ``solver`` from the component with the largest bound,
    ``info["lower_bound_source"]`` to its name and ``info["bound_components"]`` to every component's bound; then
    withdraws the bound if it lies above an evaluated objective (``bound_inconsistent``), and sets ``status`` to
    ``optimal`` when objective and bound meet.
    """
    bounded = [(name, r) for name, r in components if r.lower_bound is not None]
    result.info["bound_components"] = {name: {"lower_bound": r.lower_bound, "bound_source": r.bound_source,
                                              "status": r.status, "mip_gap": r.mip_gap, "solver": r.solver}
                                       for name, r in bounded}
    result.info["lower_bound_source"] = None
    if not bounded:
        return
    name, chosen = max(bounded, key=lambda nr: (nr[1].lower_bound, _SOURCE_RANK.get(nr[1].bound_source, -1)))
    result.lower_bound = float(chosen.lower_bound)
    result.bound_source = chosen.bound_source
    result.mip_gap = chosen.mip_gap
    result.solver = chosen.solver
    result.info["lower_bound_source"] = name
    result.check_bound(evaluated)
    known = [v for v in (result.objective, evaluated) if v is not None]
    if result.lower_bound is not None and known and result.lower_bound > min(known):
        result.lower_bound = float(min(known))  # above by rounding only (check_bound's tolerance)
    if meets(result.objective, result.lower_bound):
        result.status = "optimal"
