"""The firm fights back: label cleaning before training, and how many of the collective's flips it catches.

A careful firm may screen its training labels before it fits its (unchanged) classifier. Two cleaners are
modelled, both built on out-of-fold probabilities of the firm's own L2 logistic model (scikit-learn's
``cross_val_predict`` with seeded, stratified folds, so no row is judged by a model that saw its label):

- ``confident``: confident learning, cleanlab's ``find_label_issues`` on those probabilities.
- ``loss``: a loss filter that drops the rows whose out-of-fold log-loss is highest, either a fixed share
  (``fraction``) or every row above an absolute ``threshold``.

:func:`detect` returns the rows a cleaner flags; :func:`cleaning_report` counts them against the known flip set
(recall: share of the flips caught; precision: share of flagged rows that are flips); :func:`evaluate_cleaned`
also drops the flagged rows, retrains the firm and measures it, like :func:`fairflip.problem.evaluate_flips`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

import numpy as np
from cleanlab.filter import find_label_issues
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from ._errors import FairflipError, check_binary, check_fraction
from .collective import Collective
from .problem import FlipProblem, evaluate_flips

CleanerName = Literal["confident", "loss"]
CLEANERS = ("confident", "loss")
FilterBy = Literal["prune_by_noise_rate", "prune_by_class", "both", "confident_learning", "predicted_neq_given"]

# Probabilities are clipped this far from 0 and 1 before taking logs, so a confidently wrong row has a large
# but finite loss and the ranking of the loss filter stays well defined.
_PROB_CLIP = 1e-15


def _resolve_source(source: FlipProblem | np.ndarray, C: float | None) -> tuple[np.ndarray, float, np.ndarray | None]:
    """(X (n, d), C, sample weights or None) of a FlipProblem or a plain feature matrix."""
    if isinstance(source, FlipProblem):
        firm_C = getattr(source.firm, "C", 1.0)
        return source.X, float(firm_C if C is None else C), source.sample_weight
    X = np.asarray(source, dtype=np.float64)
    if X.ndim != 2:
        raise FairflipError(f"the cleaner needs a FlipProblem or a 2-D feature matrix, got shape {X.shape}")
    return X, float(1.0 if C is None else C), None


def cross_val_proba(
    X: np.ndarray,
    y: np.ndarray,
    *,
    C: float = 1.0,
    folds: int = 5,
    seed: int = 0,
    sample_weight: np.ndarray | None = None,
) -> np.ndarray:
    """Out-of-fold P(y = 1 | x) of an L2 logistic model (the firm's: intercept not penalised, scikit-learn's C).

    Args:
        X: shape (n, d) prepared features.
        y: shape (n,) labels in {0, 1} (the labels the firm received, flips included).
        C: inverse regularisation strength.
        folds: number of stratified folds (>= 2); each row is scored by the model fitted on the other folds.
        seed: seed of the fold shuffle; the same seed gives the same folds.
        sample_weight: shape (n,) training weights, or None.

    Returns:
        shape (n,) float64 out-of-fold probabilities of the label 1.
    """
    y = check_binary("labels y", y)
    if len(y) != len(X):
        raise FairflipError(f"labels have {len(y)} entries but X has {len(X)} rows")
    if not (C > 0) or not np.isfinite(C):
        raise FairflipError(f"C must be a positive finite number, got {C!r}")
    if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)) or folds < 2:
        raise FairflipError(f"folds must be an integer >= 2, got {folds!r}")
    smallest = int(np.bincount(y, minlength=2).min())
    if smallest < folds:
        raise FairflipError(f"a label has only {smallest} row(s), fewer than the {folds} folds")
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    # Newton-Cholesky: exact to tight tolerance and fast when rows far outnumber features, as here.
    model = LogisticRegression(C=C, solver="newton-cholesky", tol=1e-10, max_iter=1_000)
    # Weights are routed to fit only when given (the ``params`` keyword needs scikit-learn >= 1.4).
    extra = {} if sample_weight is None else {"params": {"sample_weight": np.asarray(sample_weight, dtype=np.float64)}}
    proba = cross_val_predict(model, X, y, cv=cv, method="predict_proba", **extra)
    return proba[:, 1].astype(np.float64)


def row_losses(proba: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Log-loss of each row's label under a probability of the label 1.

    Args:
        proba: shape (n,) P(y = 1 | x), e.g. from :func:`cross_val_proba`.
        y: shape (n,) labels in {0, 1}.

    Returns:
        shape (n,) float64, -log P(y_i | x_i) (probabilities clipped to [1e-15, 1 - 1e-15]).
    """
    y = check_binary("labels y", y)
    p = np.clip(np.asarray(proba, dtype=np.float64), _PROB_CLIP, 1 - _PROB_CLIP)
    if p.shape != y.shape:
        raise FairflipError(f"proba has shape {p.shape}, labels {y.shape}")
    return -np.log(np.where(y == 1, p, 1 - p))


def loss_cutoff(losses: np.ndarray, *, fraction: float) -> float:
    """The loss above which the loss filter flags a row when it drops a share ``fraction`` of them.

    The filter flags the k = round(fraction * n) highest losses (ties by row order); the cut-off is the k-th
    highest loss, so a row whose loss is strictly below it is not flagged. Returns +inf when k = 0.

    Args:
        losses: shape (n,) per-row losses.
        fraction: share of rows dropped, in [0, 1].
    """
    fraction = check_fraction("fraction", fraction, allow_zero=True)
    k = int(round(fraction * len(losses)))
    if k == 0:
        return float("inf")
    return float(np.sort(np.asarray(losses, dtype=np.float64))[::-1][k - 1])


def loss_filter(losses: np.ndarray, *, fraction: float | None = 0.05, threshold: float | None = None) -> np.ndarray:
    """Flag the rows with the highest loss.

    Args:
        losses: shape (n,) per-row losses.
        fraction: flag the round(fraction * n) highest losses (ties broken by row order, earlier rows first).
        threshold: instead of a fraction, flag every row whose loss exceeds it (give exactly one of the two).

    Returns:
        shape (n,) bool mask of flagged rows.
    """
    losses = np.asarray(losses, dtype=np.float64)
    if (fraction is None) == (threshold is None):
        raise FairflipError("the loss filter needs exactly one of fraction or threshold")
    if threshold is not None:
        return losses > float(threshold)
    k = int(round(check_fraction("fraction", fraction, allow_zero=True) * len(losses)))
    flagged = np.zeros(len(losses), dtype=bool)
    flagged[np.argsort(-losses, kind="stable")[:k]] = True
    return flagged


def detect(
    source: FlipProblem | np.ndarray,
    y_flipped: np.ndarray,
    *,
    cleaner: CleanerName = "confident",
    fraction: float | None = 0.05,
    threshold: float | None = None,
    filter_by: FilterBy = "prune_by_noise_rate",
    folds: int = 5,
    seed: int = 0,
    C: float | None = None,
) -> np.ndarray:
    """The training rows a firm-side cleaner flags as mislabelled.

    Args:
        source: the FlipProblem (its features, its firm's C and sample weights are used) or a feature matrix
            of shape (n, d).
        y_flipped: shape (n,) the labels the firm received (the collective's flips applied).
        cleaner: ``confident`` (cleanlab's confident learning) or ``loss`` (loss filter).
        fraction: loss filter only: share of rows dropped (ignored when ``threshold`` is given).
        threshold: loss filter only: flag every row whose out-of-fold log-loss exceeds it.
        filter_by: confident learning only: cleanlab's pruning rule.
        folds, seed: the cross-validation folds (stratified, shuffled with ``seed``).
        C: inverse regularisation of the cleaner's logistic model (default: the firm's C, 1.0 otherwise).

    Returns:
        shape (n,) bool mask, True for flagged rows.
    """
    if cleaner not in CLEANERS:
        raise FairflipError(f"unknown cleaner '{cleaner}'; choose one of {', '.join(CLEANERS)}")
    X, C_used, sw = _resolve_source(source, C)
    y_flipped = check_binary("y_flipped", y_flipped)
    proba = cross_val_proba(X, y_flipped, C=C_used, folds=folds, seed=seed, sample_weight=sw)
    if cleaner == "loss":
        return loss_filter(row_losses(proba, y_flipped), fraction=None if threshold is not None else fraction,
                           threshold=threshold)
    pred_probs = np.column_stack([1.0 - proba, proba])
    # n_jobs=1: the cleaner runs inside sweeps that are already parallel.
    return np.asarray(find_label_issues(y_flipped, pred_probs, filter_by=filter_by, n_jobs=1), dtype=bool)


def _as_mask(rows: np.ndarray, n: int, what: str) -> np.ndarray:
    """A bool mask (n,) from a bool mask or from integer row indices (checked in range and unique)."""
    arr = np.asarray(rows)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise FairflipError(f"{what} mask has shape {arr.shape}, expected ({n},)")
        return arr.copy()
    if arr.size and arr.dtype.kind not in "iu":
        raise FairflipError(f"{what} must be a bool mask or integer row indices, got dtype {arr.dtype}")
    idx = arr.astype(np.int64).ravel()
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise FairflipError(f"{what} has row indices outside [0, {n})")
    if len(np.unique(idx)) != len(idx):
        raise FairflipError(f"{what} lists the same row twice")
    mask = np.zeros(n, dtype=bool)
    mask[idx] = True
    return mask


def cleaning_report(flagged: np.ndarray, flipped: np.ndarray, n: int) -> dict[str, float]:
    """Count a cleaner's flags against the collective's known flip set.

    Args:
        flagged: the flagged rows, a bool mask of shape (n,) or integer indices.
        flipped: the flipped rows, a bool mask of shape (n,) or integer indices.
        n: number of training rows.

    Returns:
        dict with counts ``n, n_flipped, n_flagged, flagged_flips`` (flips caught), ``flagged_honest``
        (unflipped rows flagged), ``missed_flips`` and rates ``recall`` = flagged_flips / n_flipped (NaN when
        nothing was flipped), ``precision`` = flagged_flips / n_flagged (NaN when nothing was flagged),
        ``honest_flag_rate`` = flagged_honest / (n - n_flipped) (NaN when every row was flipped).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise FairflipError(f"n must be a positive number of rows, got {n!r}")
    f_mask = _as_mask(flagged, int(n), "flagged")
    x_mask = _as_mask(flipped, int(n), "flipped")
    tp = int((f_mask & x_mask).sum())
    n_flip, n_flag = int(x_mask.sum()), int(f_mask.sum())
    fp = n_flag - tp
    return {
        "n": int(n),
        "n_flipped": n_flip,
        "n_flagged": n_flag,
        "flagged_flips": tp,
        "flagged_honest": fp,
        "missed_flips": n_flip - tp,
        "recall": tp / n_flip if n_flip else float("nan"),
        "precision": tp / n_flag if n_flag else float("nan"),
        "honest_flag_rate": fp / (n - n_flip) if n > n_flip else float("nan"),
    }


def drop_rows(problem: FlipProblem, keep: np.ndarray) -> tuple[FlipProblem, np.ndarray]:
    """The flip problem restricted to the training rows the firm keeps.

    Args:
        problem: the flip problem (n rows).
        keep: shape (n,) bool mask of kept rows.

    Returns:
        (problem on the n' kept rows, shape (n,) int64 map from old to new row index, -1 for dropped rows).
    """
    keep = _as_mask(keep, problem.n, "keep")
    if not keep.any():
        raise FairflipError("the cleaner dropped every training row")
    new_index = np.full(problem.n, -1, dtype=np.int64)
    new_index[keep] = np.arange(int(keep.sum()))
    col = problem.collective
    sub = replace(
        problem,
        X=problem.X[keep], y=problem.y[keep], a=problem.a[keep],
        collective=Collective(members=col.members[keep], known_majority=col.known_majority[keep],
                              direction=col.direction),
        X_nogroup=None if problem.X_nogroup is None else problem.X_nogroup[keep],
        X_counterfactual=None if problem.X_counterfactual is None else problem.X_counterfactual[keep],
        sample_weight=None if problem.sample_weight is None else problem.sample_weight[keep],
    )
    return sub, new_index


def evaluate_cleaned(
    problem: FlipProblem,
    flipped: np.ndarray,
    *,
    cleaner: CleanerName = "confident",
    test: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None] | None = None,
    **detect_options,
) -> dict:
    """Apply the flips, let the firm clean its labels, drop what it flagged, retrain and measure.

    Args:
        problem: the flip problem.
        flipped: shape (k,) candidate rows the collective flips.
        cleaner: ``confident`` or ``loss`` (see :func:`detect`).
        test: optional (X_test (m, d), y_test (m,), a_test (m,), X_test_counterfactual (m, d) or None).
        **detect_options: ``fraction``, ``threshold``, ``filter_by``, ``folds``, ``seed``, ``C`` of
            :func:`detect`.

    Returns:
        dict with ``flagged`` (shape (n,) bool), ``report`` (see :func:`cleaning_report`) and, for the firm
        retrained on the kept rows, ``objective``, ``train`` metrics (kept rows, original labels) and ``test``
        metrics when ``test`` is given (see :func:`fairflip.problem.evaluate_flips`).
    """
    flipped = problem.check_flips(flipped)
    flagged = detect(problem, problem.flipped_labels(flipped), cleaner=cleaner, **detect_options)
    sub, new_index = drop_rows(problem, ~flagged)
    kept_flips = new_index[flipped]
    out = evaluate_flips(sub, kept_flips[kept_flips >= 0], test=test)
    out["flagged"] = flagged
    out["report"] = cleaning_report(flagged, flipped, problem.n)
    return out
