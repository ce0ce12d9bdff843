"""``oracle-stealth``: flips chosen among the candidates a firm-side label cleaner would not flag.

A firm that cleans its labels (see :mod:`fairflip.cleaning`) judges each row by its out-of-fold log-loss under
the firm's own logistic model. A flip is detectable when the flipped label's loss is too high:

- against the ``loss`` filter (drop the share ``fraction`` of rows with the highest loss), a flipped row is
  flagged when its loss reaches the filter's cut-off, the k-th highest loss (:func:`fairflip.cleaning.loss_cutoff`);
- against ``confident`` learning, a row labelled with the target is counted as confidently of the source class when
  P(source | x) reaches the cleaner's per-class threshold t_source (the mean P(source | x) over rows labelled
  source), i.e. when the flipped label's loss reaches -log(1 - t_source).

The method computes that threshold from the firm's cross-validated model on the training labels, keeps the
candidates whose flipped-label loss stays below (1 - safety) times it, and runs any registered method (by default
the ``oracle``) on the same problem with the collective restricted to those candidates; no solver code is
repeated. ``safety`` in [0, 1) keeps a margin, because the flips themselves move the model and the cut-off; the
trade-off between fairness gained and flips detected is traced by varying it. The restriction is an estimate of
the cleaner made before flipping, not a guarantee: :func:`fairflip.cleaning.evaluate_cleaned` measures what the
cleaner really flags.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

import numpy as np

from fairflip._errors import FairflipError, check_fraction
from fairflip.cleaning import cross_val_proba, loss_cutoff, row_losses
from fairflip.collective import Collective
from fairflip.methods import FlipMethod, FlipResult, SolveControl, get_method, register_method
from fairflip.problem import FlipProblem

Against = Literal["loss", "confident"]
AGAINST = ("loss", "confident")


def detection_threshold(proba: np.ndarray, y: np.ndarray, source_label: int, *, against: Against,
                        fraction: float = 0.05) -> float:
    """The log-loss at which the cleaner starts flagging a row flipped from ``source_label``.

    Args:
        proba: shape (n,) out-of-fold P(y = 1 | x) of the firm's model on the training labels.
        y: shape (n,) training labels.
        source_label: the label candidates carry (0 or 1).
        against: ``loss`` (the loss filter dropping the share ``fraction``) or ``confident`` (confident learning).
        fraction: the loss filter's share of dropped rows.

    Returns:
        the threshold in log-loss units (+inf when the loss filter drops nothing).
    """
    if against == "loss":
        return loss_cutoff(row_losses(proba, y), fraction=fraction)
    if against != "confident":
        raise FairflipError(f"unknown cleaner to hide from '{against}'; choose one of {', '.join(AGAINST)}")
    p_source = proba if source_label == 1 else 1.0 - proba
    labelled = y == source_label
    if not labelled.any():
        raise FairflipError(f"no training row carries the source label {source_label}")
    t_source = float(p_source[labelled].mean())
    return float(-np.log(max(1.0 - t_source, 1e-15)))


@register_method("oracle-stealth")
class StealthOracle(FlipMethod):
    """A registered method run only on the candidates whose flip a label cleaner would not detect.

    Args:
        base: the method run on the restricted collective (``oracle`` by default; any registered name works,
            heuristics included, which then become stealthy but omniscient).
        against: the cleaner to hide from, ``loss`` or ``confident``.
        fraction: share of rows the loss filter drops (``against="loss"``).
        safety: margin in [0, 1): a candidate is kept when its flipped-label loss is below (1 - safety) times the
            detection threshold.
        folds, seed: the cross-validation folds of the firm's model (``seed`` also seeds the base method).
        C: inverse regularisation of that model (default: the firm's C).
        base_params: keyword parameters of the base method.
    """

    omniscient = True

    def __init__(
        self,
        base: str = "oracle",
        *,
        against: Against = "loss",
        fraction: float = 0.05,
        safety: float = 0.0,
        folds: int = 5,
        seed: int = 0,
        C: float | None = None,
        base_params: dict[str, Any] | None = None,
    ) -> None:
        if base == "oracle-stealth":
            raise FairflipError("oracle-stealth cannot be its own base method")
        if against not in AGAINST:
            raise FairflipError(f"unknown cleaner to hide from '{against}'; choose one of {', '.join(AGAINST)}")
        if not (0.0 <= float(safety) < 1.0):
            raise FairflipError(f"safety must lie in [0, 1), got {safety!r}")
        self.base = base
        self.against = against
        self.fraction = check_fraction("fraction", fraction, allow_zero=True)
        self.safety = float(safety)
        self.folds = folds
        super().__init__(seed=seed)
        self.C = C
        self.base_params = dict(base_params or {})
        # Build the base method now so that a bad name or parameter fails at construction; a seed given in
        # base_params wins over the shared one.
        base_params = {"seed": self.seed, **self.base_params}
        self._base = get_method(base, **base_params)

    def stealthy_candidates(self, problem: FlipProblem) -> tuple[np.ndarray, np.ndarray, float]:
        """Which candidates stay hidden when flipped.

        Returns:
            (mask of shape (c,) over ``problem.candidates``, flipped-label losses shape (c,), the threshold).
        """
        C = self.C if self.C is not None else getattr(problem.firm, "C", 1.0)
        proba = cross_val_proba(problem.X, problem.y, C=C, folds=self.folds, seed=self.seed,
                                sample_weight=problem.sample_weight)
        source = problem.collective.source_label
        threshold = detection_threshold(proba, problem.y, source, against=self.against, fraction=self.fraction)
        cands = problem.candidates
        flip_loss = row_losses(proba[cands], np.full(len(cands), 1 - source))
        return flip_loss < (1.0 - self.safety) * threshold, flip_loss, threshold

    def _select_many(self, problem: FlipProblem, budgets: list[int], control: SolveControl) -> list[FlipResult]:
        """Run the base method once for every budget on the stealthy candidates.

        The cleaner's cross-validated model is fitted once; the base method gets the time left and the progress
        callback. Each result's ``objective`` is the base's true objective (the objective does not depend on the
        collective); a base status ``optimal`` becomes ``feasible`` and no bound is passed on, as both hold for
        the restricted problem only.
        """
        hidden, flip_loss, threshold = self.stealthy_candidates(problem)
        cands = problem.candidates
        info: dict[str, Any] = {"base": self.base, "against": self.against, "threshold": threshold,
                                "n_candidates": len(cands), "n_stealthy": int(hidden.sum())}
        out: list[FlipResult | None] = [None] * len(budgets)
        run = [b for b, M in enumerate(budgets) if hidden.any() and M > 0]
        for b in set(range(len(budgets))) - set(run):
            out[b] = FlipResult(flipped=np.zeros(0, dtype=np.int64), info=dict(info))
        if run:
            col = problem.collective
            members = col.members.copy()
            members[cands[~hidden]] = False  # detectable candidates leave the collective; other members stay
            restricted = replace(problem, collective=Collective(members=members, known_majority=col.known_majority,
                                                                direction=col.direction))
            left = control.remaining()
            found = self._base.select_many(restricted, [budgets[b] for b in run],
                                           time_limit=None if left == float("inf") else max(left, 1e-6),
                                           progress=control.progress)
            for b, result in zip(run, found):
                scores = None
                if result.scores is not None:
                    # the base ranked only the hidden candidates; detectable ones rank last
                    scores = np.full(len(cands), -np.inf)
                    scores[hidden] = result.scores
                status = "feasible" if result.status == "optimal" else result.status
                # The base's lower bound holds for the restricted problem only, so it bounds nothing here.
                out[b] = FlipResult(flipped=result.flipped, scores=scores, objective=result.objective,
                                    status=status, time_limit_hit=result.time_limit_hit,
                                    info={**info, "base_info": result.info})
        return out
