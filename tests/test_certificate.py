"""Bound bookkeeping: the largest certified bound is adopted, a bound above an evaluated objective is withdrawn
and flagged, and ``optimal`` is claimed only where objective and bound meet."""

from __future__ import annotations

import numpy as np

from fairflip.methods import FlipResult
from fairflip.solvers.certificate import adopt_best_bound, meets


def _result(objective, bound=None, source=None):
    return FlipResult(flipped=np.zeros(0, dtype=np.int64), objective=objective, lower_bound=bound,
                      bound_source=source, solver="HIGHS x" if bound is not None else None)


def test_adopts_the_largest_bound_and_proves_optimality_when_it_meets():
    r = _result(0.2)
    adopt_best_bound(r, [("a", _result(0.3, 0.1, "milp-dual")), ("b", _result(0.2, 0.2, "enumeration")),
                         ("c", _result(0.5))])
    assert r.lower_bound == 0.2 and r.bound_source == "enumeration" and r.status == "optimal"
    assert r.info["lower_bound_source"] == "b" and set(r.info["bound_components"]) == {"a", "b"}
    assert not r.bound_inconsistent


def test_a_bound_above_an_evaluated_objective_is_withdrawn_and_flagged():
    r = _result(0.3)
    adopt_best_bound(r, [("a", _result(0.4, 0.25, "milp-dual"))], evaluated=0.2)
    assert r.lower_bound is None and r.bound_source is None and r.bound_inconsistent
    assert r.info["rejected_bound"] == 0.25 and r.status == "feasible"
    r = _result(0.1)
    adopt_best_bound(r, [("a", _result(0.4, 0.25, "milp-dual"))])
    assert r.bound_inconsistent and r.lower_bound is None


def test_trivial_and_missing_bounds():
    r = _result(0.3)
    adopt_best_bound(r, [("a", _result(0.3, 0.0, "trivial"))])
    assert r.lower_bound == 0.0 and r.bound_source == "trivial" and r.status == "feasible"
    r = _result(0.3)
    adopt_best_bound(r, [("a", _result(0.3))])
    assert r.lower_bound is None and r.info["lower_bound_source"] is None and not r.bound_inconsistent
    assert meets(0.0, 0.0) and meets(0.2, 0.2 - 1e-8) and not meets(0.2, 0.19) and not meets(None, 0.1)
