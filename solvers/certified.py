"""``oracle-certified``: the oracle's answer with the strongest certified lower bound fairflip can prove.

For each budget it runs the ``oracle`` portfolio (enumeration when cheap, else its search; on the ridge firm the
exact MILP's dual bound) and then, for the logistic firm, the branch and bound of
:func:`~fairflip.solvers.logistic_cert.certify_logistic` warm-started at the portfolio's answer. The result keeps
the better flip set (both are true objectives after exact retraining) and the larger certified bound, checked
against every objective evaluated on the way (see :func:`~fairflip.solvers.certificate.adopt_best_bound`). Other
firms get the portfolio's answer and bound as they are.
"""

from __future__ import annotations

from typing import Any

from fairflip.methods import FlipMethod, FlipResult, SolveControl, get_method, register_method
from fairflip.problem import FlipProblem

from .certificate import adopt_best_bound
from .logistic_cert import certify_logistic, check_entries


@register_method("oracle-certified")
class CertifiedOracle(FlipMethod):
    """The portfolio's flips with a certified lower bound per budget (logistic firm: branch and bound).

    Args:
        certify_time_limit: seconds of branch and bound per budget (a target: a MILP node may overrun it); the
            call's ``time_limit``, when given, caps the total. The root node's MILP may use all of it (its dual
            bound is usually the one that decides).
        node_time_limit: HiGHS seconds per branch-and-bound node below the root.
        oracle_params: parameters of the ``oracle`` portfolio that finds the incumbents.
        pairwise_entries: memory for the certificate's per-row remainder bound above 6,000 training rows (float64
            entries; see :func:`~fairflip.solvers.logistic_cert.logistic_intervals`); None: its default (1.6 GB).
        seed: seed of the portfolio and of HiGHS.
    """

    omniscient = True

    def __init__(self, *, certify_time_limit: float = 60.0, node_time_limit: float = 20.0,
                 oracle_params: dict[str, Any] | None = None, pairwise_entries: int | None = None,
                 seed: int = 0) -> None:
        super().__init__(seed=seed)
        self.pairwise_entries = None if pairwise_entries is None else check_entries(pairwise_entries)
        self.certify_time_limit = float(certify_time_limit)
        self.node_time_limit = float(node_time_limit)
        self.oracle_params = dict(oracle_params or {})
        get_method("oracle", seed=self.seed, **self.oracle_params)  # a bad parameter fails at construction

    def _select_many(self, problem: FlipProblem, budgets: list[int], control: SolveControl) -> list[FlipResult]:
        oracle = get_method("oracle", seed=self.seed, **self.oracle_params)
        limit = None if control.time_limit is None else control.remaining()
        found = oracle.select_many(problem, budgets, time_limit=limit, progress=control.progress)
        if getattr(problem.firm, "loss", None) != "logistic":
            return found
        out = []
        for M, incumbent in zip(budgets, found):
            if incumbent.status == "optimal" or control.expired():
                out.append(incumbent)
                continue
            seconds = min(self.certify_time_limit, control.remaining())
            cert = certify_logistic(problem, M, incumbent=incumbent.flipped, time_limit=seconds,
                                    node_time_limit=min(self.node_time_limit, seconds), seed=self.seed,
                                    progress=control.progress, pairwise_entries=self.pairwise_entries)
            best = cert if cert.objective is not None and cert.objective < incumbent.objective else incumbent
            result = FlipResult(flipped=best.flipped, objective=best.objective, solver_objective=best.objective,
                                status="time_limit" if control.expired() else "feasible",
                                time_limit_hit=control.expired(),
                                info={"incumbent_from": "branch and bound" if best is cert else "oracle",
                                      "oracle": incumbent.info, "certificate": cert.info})
            adopt_best_bound(result, [("oracle", incumbent), ("branch and bound", cert)],
                             evaluated=min(v for v in (incumbent.objective, cert.objective) if v is not None))
            out.append(result)
        return out
