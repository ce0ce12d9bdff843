"""Certified lower bounds for the logistic firm: score intervals affine in the flips, a MILP over them, and branch
and bound over flip sets with exact retraining.

Why the intervals hold. Flipping candidate k changes the firm's training loss by an exactly linear tilt: with
theta_S the firm's optimum on the labels with the set S flipped, every F = S + A (A among the free candidates) has

    grad J_S(theta_F) = g_A,   g_A = sum_{k in A} q_k,   q_k = C w_k s_k x_k   (s_k = 1 - 2 y_k),

so theta_F = theta_S + Delta with Hbar Delta = g_A - r0, where r0 = grad J_S(theta_S) (the retraining residual,
~0) and Hbar = R + C sum_l w_l lbar_l x_l x_l^T holds per row the secant slope lbar_l = (l'(f_l + d_l) - l'(f_l)) /
d_l of the loss derivative along the row's score shift d_l = x_l^T Delta. Writing H for the Hessian at theta_S and
Delta_lin = H^{-1} (g_A - r0) for the first-order (influence) prediction,

    Delta - Delta_lin = -H^{-1} X^T v,   v_l = C w_l (l'(f_l + d_l) - l'(f_l) - l''(f_l) d_l),

exactly (H Delta + X^T v = Hbar Delta). Everything below bounds v through the rows' shifts.

Shift ranges (the fixed point). For d_l in a known range [lo_l, hi_l] (lo_l <= 0 <= hi_l), v_l / (C w_l) =
phi_l(d_l) := sigma(f_l + d_l) - sigma(f_l) - sigma'(f_l) d_l lies in [vlo_l, vhi_l], its exact least and largest
values over the range (phi' vanishes only at 0 and -2 f_l, so the extremes sit at the ends, 0 or -2 f_l; see
:func:`remainder_range`). The range is signed: where sigma is concave along the push (f_l > 0 pushed either way,
for small shifts) phi <= 0, and the box keeps that. For any row i (training or evaluation), with P_il =
x_i^T H^{-1} x_l, the nonlinear part x_i^T (Delta - Delta_lin) = -sum_l P_il v_l lies in

    -P_i mid(v) +- |P_i| half(v)                      (the box, exactly; kept when n is small enough for n x n)
    +- lev_i * sqrt(sum_l u_l^2 / (C w_l l''_l))      (u_l = max |v_l|, lev_i = ||x_i||_{H^{-1}}, H >= X^T D X),

or, for large n, the box over the heavy rows S (those with the largest share u_l^2 / (C w_l l''_l), as many as
:data:`MAX_PAIRWISE_ENTRIES` allows) plus the norm bound over the others (it holds for any subset of the rows, as
H >= X_R^T D_R X_R); the two bounds are intersected. The heavy rows are chosen at the linear reach, and once more at
the last ranges reached when those do not settle. On Adult (34,189 rows) the norm bound alone does not settle at
M = 2; with 2,924 heavy rows the ranges settle at M = 2 and 3 (median evaluation half-widths 0.012 and 0.033;
``python -m benchmarks.bench_intervals``),

and the shifts themselves are d_i = x_i^T Delta_lin + that, with x_i^T Delta_lin in [lin_lo_i, lin_hi_i] for every
|A| <= budget (the sums of the row's ``budget`` most negative and most positive x_i^T H^{-1} q_k, widened by the
residual's share). So every certified shift range D = [lo, hi] satisfies D contains T(D) := lin + nonlinear(D),
with T monotone under inclusion. The ranges are found by iterating T from the linear reach and then
epsilon-inflated until the explicit check T(D) inside the interior of D passes. Why that proves the shifts lie in
D: follow the path grad J_S(theta_t) = r0 + t (g_A - r0), t in [0, 1] (theta_0 = theta_S, theta_1 = theta_F);
its shifts start at 0 (inside D) and move continuously; while they stay in D they lie in T_t(D) = t lin +
nonlinear(D), inside T(D) (lin contains 0), so strictly inside D: they can never reach D's boundary. A range that
does not settle (max_shift) means no interval certificate at that node. Tracking signed ranges is what keeps the
iteration stable: a row pushed toward the threshold steepens its own loss, which pushes it back, and the signed
box sees that its remainder then has the sign that shrinks the shift, where |P| u (the earlier symmetric bound)
fed every remainder back as growth (it diverged on COMPAS from M = 10).

The uniform interval. Every evaluation score (minus the firm's threshold) lies in b_j + a_j z + [elo_j, ehi_j]
with a_jk = e_j^T H^{-1} q_k and [elo, ehi] the nonlinear range above under the certified D; the model is
centred in it, radius (ehi - elo) / 2.

The flip-dependent interval (:func:`_affine_half_width`). phi_l(d) / d is a secant slope of sigma minus
sigma'(f_l), so -s-_l |d| <= phi_l(d) <= s+_l |d| with s+-_l read off the least and largest sigma' on
[f_l + lo_l, f_l + hi_l] (:func:`_slope_deviation`); and |d_l| <= sum_k |L_lk| z_k + ebar_l (the linear shift,
triangle inequality, plus residual and certified nonlinear part). Hence the error is within c0_j + c_j z +-
(h0_j + h_j z), both affine in z, with c = P diag(C w (s- - s+) / 2) |L| and h = |P| diag(C w (s+ + s-) / 2) |L|.
On the rows the MILP may leave open the model becomes b + c0 + (a + c) z, the flip-dependent half-width
h0 + h z, and the uniform radius is widened to hold around the new centre (c z ranges over its k most negative and
most positive entries). This interval shrinks with the flip set's actual push, where the uniform one pays every
row's worst case at once. The exact-threshold MILP of :mod:`solvers.milp` imposes both intervals; it is a relaxation
of the true problem on the node's flip sets, so its dual bound is certified.

The second-order interval (:func:`_quadratic_interval`). Taylor's theorem gives phi_l(d) = kappa d^2 with kappa
between the least and largest sigma'' / 2 over the row's certified range, so bounds on d_l^2 that are affine in z
give the remainders, and through |P| and its sign the scores, between affine functions of z. Around a reference
set r (the incumbent's flips; none at the worst case) the tangent (L_l z)^2 >= a^2 + 2 a L_l (z - r) and the
secant-type bound (L_l z)^2 <= a^2 + 2 a L_l (z - r) + R' sum_k |L_lk| |z_k - r_k| (a = L_l r) are exact at r, and
the nonlinear part of each shift is itself bounded to second order by a few valid rounds. The interval is exact to
second order at the reference (on COMPAS at M = 10 its median half-width was 15 times below the uniform one's at
the reference set, and 2.6 to 4.6 times below it at random, adversarial and searched sets with no reference); it
widens with the distance from r, and its pair is dense in z like the first-order one.

The shared shift (``shared`` in :func:`certificate_milp`, off by default). Every score's nonlinear part is E_j
delta for the one p-vector delta = -H^{-1} X^T v, and each distinct training or evaluation row's certified range
is a face of a polytope holding delta; the MILP may then choose one delta for all rows instead of each row's
worst case. It is a tighter relaxation, but HiGHS did not solve it faster than the uniform MILP on COMPAS.

The factored MILP (:func:`certificate_milp`, the default). The linear model's slope is EH Q^T, of rank p (14 on
COMPAS), so every score depends on the flips only through g = Q^T z; the MILP carries g as p continuous variables
and each open row's big-M pair has p + 1 non-zeros instead of c' + 1. Candidates with bitwise identical tilts are
interchangeable (every matrix built from them has equal columns), so one integer per class counts its flips; open
evaluation rows with identical features score alike under every model, so one binary prediction per class stands
for all of them (its gap weight the sum of theirs, its interval and band the loosest of theirs). Both remove
symmetric copies that HiGHS otherwise branches over: on COMPAS at M = 10, 307 candidate classes for 363 candidates
and 152 classes for 291 open rows; the root MILP over the uniform interval then solves to optimality in about
30 s, where the dense formulation over both intervals stalled about 0.016 lower.

The coupled remainder model (:class:`CoupledRemainder`). The nonlinear part of every score is -EH_j w with one
shared w = X^T v in R^p, and each shift is d_l = XH_l (g - r0 - w) exactly. The MILP gets w, and for K tracked
training rows (those whose remainder box widens the open rows' intervals most) d_l and v_l as variables: d_l
within its certified range, tied to g and w by the identity above (the untracked rows' remainders enter through
their box, as in the uniform interval), and (d_l, v_l) between lines below and above the graph of phi_l on that
range (:func:`graph_lines`: for a slope b the least and largest phi(d) - b d, found at the ends or where
sigma'(f + d) = sigma'(f) + b). At each flip set's true point all of these hold, so the MILP stays a relaxation;
it is tighter because one w must explain every row at once and each remainder follows the actual signed shift,
where the uniform interval gives every row its own worst case. It costs more per node, so each node solves the
uniform MILP first and then the coupled one with the time left, keeping the larger bound.

Rounding: remainders carry an absolute floor of 1e-15 and the self-concordant cap sigma'(f)(e^|d| - 1 - |d|)
(|sigma''| <= sigma', Bach 2010) where sigma' is tiny; the kernel products a relative 1e-12; the linear algebra at
theta_S (H, its solves, r0) is taken as computed, as everywhere in fairflip's certificates.

Branch and bound (:func:`certify_logistic`): a node fixes a set S (flipped, the centre of its intervals, retrained
exactly) and excludes others; its bound is the largest of its parent's and its MILP's; best-first, nodes whose
bound reaches the incumbent are closed, children add or exclude one candidate (the relaxation's choice, or the
candidate that drives the largest shifts). The global certified bound is the least bound of the open nodes,
of the incumbent and of the nodes closed by retraining (leaves and enumerated nodes). Those retrained values enter
band-robust (:func:`robust_values`): a retrained score within the MILP's band of the threshold may round to either
side in exact arithmetic, so such a set counts with the least value over both predictions of those rows.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fairflip._errors import FairflipError, check_budget
from fairflip.methods import FlipResult
from fairflip.problem import FlipProblem

from .exact import count_flip_sets
from .milp import (AffineScores, LowRankModel, exact_threshold_problem, factored_threshold_problem,
                   fairness_gaps, row_classes, solve, topk_sums)

T_MAX = 1.0
"""The second-order interval splits d^2 <= (1 + t) S + (1 + 1 / t) eps^2 with t at most this: a larger t fits the
reference set a little better but multiplies the interval's growth away from it by up to 1 + t."""

ENUMERATE_PROBE_MAX = 100_000
"""A branch-and-bound node with more flip sets than ``enumerate_max`` but at most this many is enumerated when a timed
probe of 64 of its sets says all of them fit in the time left (Adult at M = 1: 3,005 sets)."""

MAX_PAIRWISE_ROWS = 6000
"""The per-row (n x n) remainder bound covers every training row up to this many rows; above, it covers the rows
whose remainder can be largest (:data:`MAX_PAIRWISE_ENTRIES`) and the norm bound the others."""

MAX_PAIRWISE_ENTRIES = 200_000_000
"""Above :data:`MAX_PAIRWISE_ROWS` training rows, the per-row bound keeps as many columns h (the heavy rows: largest
squared remainder over curvature, their share of the norm bound) as fit (n + m) x h float64 entries, 1.6 GB at
most (h = 2,924 on Adult: 34,189 training and evaluation rows each). On Adult the ranges settle at M = 2 and 3
with it and not at M = 2 with the norm bound alone; the whole process peaked at 6.4 GiB on Adult and 9.2 GiB on
Dutch (42,294 rows, 4,277 candidates) at M = 2 (``python -m benchmarks.bench_intervals``), most of it (n, c')
arrays; ``pairwise_entries`` trades this part for reach."""


def check_entries(value) -> int:
    """``pairwise_entries`` as a non-negative int, or one error naming the problem."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise FairflipError(f"pairwise_entries must be a non-negative integer, got {value!r}")
    return int(value)


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * v))


def remainder(f: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """max over |d| <= rho of |sigma(f + d) - sigma(f) - sigma'(f) d|, elementwise; f, rho shape (n,).

    The derivative of the inner function vanishes only at d = 0 and d = -2 f, so the maximum over the interval is
    at an end or at -2 f. A floor of 1e-15 covers the rounding of the differences."""
    d1 = _sigmoid(f) * _sigmoid(-f)
    best = np.zeros_like(f)
    for d in (rho, -rho, np.clip(-2.0 * f, -rho, rho)):
        best = np.maximum(best, np.abs(_sigmoid(f + d) - _sigmoid(f) - d1 * d))
    # Self-concordance (sigma'' <= sigma') gives the same remainder within l'' (e^rho - 1 - rho); the exact value
    # is never larger, and the min guards against cancellation where l'' is tiny.
    sc = d1 * np.where(rho < 1e-4, rho ** 2 / 2 + rho ** 3 / 6, np.expm1(rho) - rho)
    return np.minimum(best, sc) + 1e-15


def remainder_range(f: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least and largest phi(d) = sigma(f + d) - sigma(f) - sigma'(f) d over lo <= d <= hi, elementwise.

    Args:
        f: shape (n,) scores.
        lo, hi: shape (n,) the shift range, lo <= 0 <= hi.

    Returns:
        (low, high), each shape (n,), low <= 0 <= high. phi'(d) = sigma'(f + d) - sigma'(f) vanishes only at d = 0
        and d = -2 f, so the extremes over the interval sit at its ends, at 0 or at -2 f. A floor of 1e-15 covers
        the rounding of the differences (sigma is computed to an absolute 1e-16), and the self-concordant bound
        |phi(d)| <= sigma'(f) (e^|d| - 1 - |d|) guards against cancellation where sigma'(f) is tiny.
    """
    d1 = _sigmoid(f) * _sigmoid(-f)
    s0 = _sigmoid(f)
    low = np.zeros_like(f)
    high = np.zeros_like(f)
    for d in (lo, hi, np.clip(-2.0 * f, lo, hi)):
        v = _sigmoid(f + d) - s0 - d1 * d
        low = np.minimum(low, v)
        high = np.maximum(high, v)

    def cap(r):
        return d1 * np.where(r < 1e-4, r ** 2 / 2 + r ** 3 / 6, np.expm1(r) - r)

    r = np.maximum(-lo, hi)
    return np.maximum(low, -cap(r)) - 1e-15, np.minimum(high, cap(r)) + 1e-15


@dataclass
class ScoreIntervals:
    """Certified score intervals of one branch-and-bound node, affine in the flips of its free candidates.

    For every flip set F = S + A with A among ``free`` and |A| <= ``budget``, evaluation row j's score minus the
    firm's threshold lies in [model.at(z)_j - radius_j, model.at(z)_j + radius_j], z the indicator of A.

    Attributes:
        center: shape (s,) the rows of S (flipped, retrained exactly).
        free: shape (c',) the candidate rows that may still flip.
        budget: the most further flips.
        model: :class:`AffineScores` over the free candidates (center zeros).
        radius: shape (m,) half-widths, uniform over the node's flip sets.
        rho: shape (n,) certified bounds on every training row's score shift.
        radius_affine: (r0 (m,), R (m, c')) a second certified half-width r0 + R z that depends on the flips
            (see :func:`logistic_intervals`), or None.
        coupling: the coupled remainder model (:class:`CoupledRemainder`), or None.
        lowrank: the linear model and the uniform interval in factored form (:class:`LowRankModel`), or None.
        quadratic: the second-order flip-dependent interval (:func:`_quadratic_interval`): (rows (r,), lower0
            (r,), LOWER (r, c'), upper0 (r,), UPPER (r, c')), the score of evaluation row rows[i] lying in
            [lower0_i + LOWER_i z, upper0_i + UPPER_i z]; or None.
        info: diagnostics (iterations, largest shift, norm bound).
    """

    center: np.ndarray
    free: np.ndarray
    budget: int
    model: AffineScores
    radius: np.ndarray
    rho: np.ndarray
    radius_affine: tuple[np.ndarray, np.ndarray] | None = None
    coupling: "CoupledRemainder | None" = None
    lowrank: "LowRankModel | None" = None
    quadratic: tuple | None = None
    certified: bool = True
    driver: int | None = None
    info: dict[str, Any] = field(default_factory=dict)


def logistic_intervals(problem: FlipProblem, center: np.ndarray, free: np.ndarray, budget: int, *,
                       max_iter: int = 2000, max_shift: float = 50.0, boxed: int = 0,
                       deadline: float | None = None, tracked: int = 0, slopes: int = 4,
                       quadratic: bool = True, reference: np.ndarray | None = None,
                       pairwise_entries: int | None = None) -> ScoreIntervals:
    """Certified score intervals around the flip set ``center`` for adding at most ``budget`` of ``free``.

    Args:
        problem: a flip problem with the logistic firm (n training rows, m evaluation rows).
        center: shape (s,) candidate rows flipped at the centre.
        free: shape (c',) candidate rows that may be added (disjoint from ``center``).
        budget: the most rows added.
        max_iter: fixed-point iterations allowed.
        max_shift: a row shift above this means the iteration diverged.
        deadline: optional ``time.perf_counter()`` value after which the fixed-point iteration gives up (no
            certificate).
        boxed: in the flip-dependent interval (``radius_affine``, see :func:`_affine_half_width`), the training
            rows with the largest worst-case share that enter through their remainder range (a constant) instead of
            their secant-slope deviation times their shift (affine in z).
        tracked: training rows whose remainder the coupled model (:class:`CoupledRemainder`) carries as its own
            variable (the rows with the largest worst-case remainder times leverage); 0: no coupled model.
        slopes: line slopes per side of each tracked row's remainder graph (see :func:`graph_lines`).
        quadratic: also build the second-order flip-dependent interval (:func:`_quadratic_interval`,
            ``ScoreIntervals.quadratic``) on the rows the MILP may leave open.
        reference: shape (c',) a flip indicator over ``free`` (e.g. the incumbent's) at which the second-order
            interval's per-row choices are made smallest; None: the worst case.
        pairwise_entries: above :data:`MAX_PAIRWISE_ROWS` training rows, the per-row remainder bound keeps as many
            heavy rows h as fit (n + m) x h float64 entries (memory for reach); None: :data:`MAX_PAIRWISE_ENTRIES`.

    Returns:
        the :class:`ScoreIntervals`; ``certified`` is False (and ``radius`` infinite) when the shift bounds diverge
        (no certificate at this node). ``driver`` is the free candidate that moves some training score most
        (the natural one to branch on then).
    """
    firm = problem.firm
    if getattr(firm, "loss", None) != "logistic":
        raise FairflipError("logistic certificates need the logistic firm (its loss is self-concordant)")
    center = np.asarray(center, dtype=np.int64)
    free = np.asarray(free, dtype=np.int64)
    X = np.c_[np.asarray(problem.X, dtype=np.float64), np.ones(problem.n)]
    n, p = X.shape
    w = np.ones(n) if problem.sample_weight is None else np.asarray(problem.sample_weight, dtype=np.float64)
    C = float(firm.C)
    theta = problem.fit_flip_sets([center])[0].astype(np.float64)
    y = problem.flipped_labels(center).astype(np.float64)
    f = X @ theta
    sig = _sigmoid(f)
    l2 = sig * _sigmoid(-f)
    reg = np.ones(p)
    reg[-1] = 0.0
    H = (X.T * (C * w * l2)) @ X + np.diag(reg)
    r0 = X.T @ (C * w * (sig - y)) + reg * theta  # gradient at the retrained optimum (~0)
    L = np.linalg.cholesky(H)

    def hsolve(B):
        return np.linalg.solve(L.T, np.linalg.solve(L, B))

    XH = hsolve(X.T).T  # (n, p): rows H^{-1} x_i
    lev = np.sqrt(np.maximum(np.einsum("ij,ij->i", XH, X), 0.0))
    sign = 1.0 - 2.0 * problem.y[free].astype(np.float64)
    Q = (C * w[free] * sign)[:, None] * X[free]  # (c', p) tilts q_k
    Lmat = XH @ Q.T  # (n, c'): x_i^T H^{-1} q_k
    k = int(min(budget, len(free)))
    res = np.abs(XH @ r0)
    if k > 0:
        # The reach of x_i^T Delta_lin over |A| <= k: the k largest positive and the k largest negative entries.
        up, down = topk_sums(Lmat, k)
    else:
        up = down = np.zeros(n)
    lin_lo = -(down + res + 1e-12)  # x_i^T Delta_lin lies in [lin_lo_i, lin_hi_i] for every allowed A
    lin_hi = up + res + 1e-12
    weight = C * w * l2
    cw = C * w
    m_eval = len(problem.evaluation_set[1])
    entries = check_entries(MAX_PAIRWISE_ENTRIES if pairwise_entries is None else pairwise_entries)
    h_cols = n if n <= MAX_PAIRWISE_ROWS else int(min(n, entries // (n + m_eval)))

    def norm_of(u, keep):
        """sqrt(sum over the kept rows of u_l^2 / (C w_l l''_l)): bounds ||X^T v||_{H^{-1}} for |v| <= u there."""
        if np.any(keep & (weight <= 0) & (u > 0)):
            return math.inf  # a row without curvature (l'' underflowed) but a possible remainder
        share = np.divide(u ** 2, weight, out=np.zeros_like(u), where=keep & (weight > 0))
        return math.sqrt(float(np.sum(share))) * (1.0 + 1e-12)

    def heavy_rows(lo, hi):
        """The h_cols training rows with the largest share u_l^2 / (C w_l l''_l) of the norm bound at [lo, hi]."""
        if h_cols >= n:
            return np.arange(n)
        vlo0, vhi0 = remainder_range(f, lo, hi)
        u0 = cw * np.maximum(-vlo0, vhi0)
        share0 = np.where(weight > 0, u0 ** 2 / np.where(weight > 0, weight, 1.0), np.inf)
        return np.sort(np.argsort(-share0, kind="stable")[:h_cols])

    def select(cols):
        """The per-row bound's state over ``cols``: (cols, rest mask, P (n, h) signed, |P| when n is small)."""
        rest = np.ones(n, dtype=bool)
        rest[cols] = False  # rows left to the norm bound
        P = XH @ X[cols].T if len(cols) else None  # x_i^T H^{-1} x_l, l in cols
        # |P| is kept when it is n x n and small; otherwise taken blockwise at each use.
        return cols, rest, P, (np.abs(P) if P is not None and len(cols) == n else None)

    def box_products(Pm, pm, mid, half, u):
        """(Pm @ mid, |Pm| @ half, |Pm| @ u), |Pm| taken in row blocks when ``pm`` is None."""
        if pm is not None:
            return Pm @ mid, pm @ half, pm @ u
        out = np.empty((3, len(Pm)))
        step = max(1, 4_000_000 // max(1, Pm.shape[1]))
        for r0_ in range(0, len(Pm), step):
            blk = Pm[r0_:r0_ + step]
            absb = np.abs(blk)
            out[0, r0_:r0_ + step] = blk @ mid
            out[1, r0_:r0_ + step] = absb @ half
            out[2, r0_:r0_ + step] = absb @ u
        return out[0], out[1], out[2]

    def nonlinear(lo, hi, rows_P=None, rows_lev=None, mask=None):
        """Range of -e_i^T H^{-1} X^T v over every v allowed by the shift ranges [lo, hi] (training rows).

        Two bounds, both valid, intersected: the norm bound over all rows, and the per-row box over the rows in
        ``cols`` plus the norm bound over the others (none when n <= MAX_PAIRWISE_ROWS). The norm bound holds for
        any subset S of rows: H >= X_S^T D_S X_S, so ||X_S^T v_S||_{H^{-1}}^2 <= sum_S v_l^2 / (C w_l l''_l)."""
        cols, rest, P, pair = state
        vlo, vhi = remainder_range(f, lo, hi)
        vlo, vhi = cw * vlo, cw * vhi
        if mask is not None:
            vlo, vhi = np.where(mask, vlo, 0.0), np.where(mask, vhi, 0.0)
        u = np.maximum(-vlo, vhi)
        norm = norm_of(u, np.ones(n, dtype=bool))
        levr = lev if rows_lev is None else rows_lev
        e = levr * norm
        lo_out, hi_out = -e, e
        Pm = P if rows_P is None else rows_P
        if Pm is not None:
            # sum_{l in cols} P_il v_l over the box vlo <= v <= vhi: centre P mid +- |P| half.
            vl, vh = vlo[cols], vhi[cols]
            c, h, mag = box_products(Pm, pair if rows_P is None else None, 0.5 * (vl + vh), 0.5 * (vh - vl),
                                     u[cols])
            # Rounding of the two products: a relative 1e-12 of their magnitude.
            slack = 1e-12 * mag + 1e-15
            er = levr * norm_of(u, rest) if rest.any() else 0.0
            lo_out, hi_out = np.maximum(lo_out, -c - h - er - slack), np.minimum(hi_out, -c + h + er + slack)
        return lo_out, hi_out, norm

    driver = int(free[int(np.argmax(np.abs(Lmat).max(axis=0)))]) if len(free) else None
    X_eval, _, _ = problem.evaluation_set
    E = np.c_[np.asarray(X_eval, dtype=np.float64), np.ones(len(X_eval))]
    EH = hsolve(E.T).T
    base = E @ theta - firm.score_threshold - EH @ r0
    slope = EH @ Q.T
    def settle():
        """The fixed point over shift ranges D = [lo, hi] (per training row): T(D) = linear reach + nonlinear range
        under D, then its epsilon-inflated check. Returns (lo, hi, nlo, nhi, norm, converged, iterations)."""
        lo, hi = lin_lo.copy(), lin_hi.copy()
        nlo = nhi = None
        norm = math.inf
        converged = False
        it = 0
        for it in range(max_iter):
            nlo, nhi, _ = nonlinear(lo, hi)
            new_lo, new_hi = lin_lo + nlo, lin_hi + nhi
            if not (np.all(np.isfinite(new_lo)) and np.all(np.isfinite(new_hi))) or max(-new_lo.min(),
                                                                                        new_hi.max()) > max_shift:
                break
            grow = max(np.max(lo - new_lo), np.max(new_hi - hi))
            lo, hi = np.minimum(lo, new_lo), np.maximum(hi, new_hi)
            if grow <= 1e-12 * (1.0 + max(-lo.min(), hi.max())):
                converged = True
                break
            if deadline is not None and time.perf_counter() > deadline:
                break
        if converged:
            # Epsilon-inflation: widen the ranges a little and check explicitly that T maps them strictly inside
            # themselves; where it does not (the widening also grows the nonlinear part, through other rows), take
            # the image and try again.
            converged = False
            for _ in range(100):
                lo_try = lo - 1e-4 * (lin_lo - lo) + 1e-6 * lo - 1e-12
                hi_try = hi + 1e-4 * (hi - lin_hi) + 1e-6 * hi + 1e-12
                nlo, nhi, norm = nonlinear(lo_try, hi_try)
                if np.all(lin_lo + nlo > lo_try) and np.all(lin_hi + nhi < hi_try):
                    lo, hi, converged = lo_try, hi_try, True
                    break
                lo, hi = np.minimum(lo_try, lin_lo + nlo), np.maximum(hi_try, lin_hi + nhi)
                if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))) or max(-lo.min(),
                                                                                    hi.max()) > max_shift:
                    break
                if deadline is not None and time.perf_counter() > deadline:
                    break
        return lo, hi, nlo, nhi, norm, converged, it

    # Above MAX_PAIRWISE_ROWS the heavy rows are first chosen at the linear reach; when the ranges do not settle,
    # once more at the last ranges reached (the rows whose remainders actually grew).
    state = select(heavy_rows(lin_lo, lin_hi))
    lo, hi, nlo, nhi, norm, converged, it = settle()
    reselected = False
    if not converged and 0 < h_cols < n and (deadline is None or time.perf_counter() < deadline):
        last_lo = np.where(np.isfinite(lo), np.clip(lo, -max_shift, 0.0), -max_shift)
        last_hi = np.where(np.isfinite(hi), np.clip(hi, 0.0, max_shift), max_shift)
        state = select(heavy_rows(last_lo, last_hi))
        reselected = True
        lo, hi, nlo, nhi, norm, converged, it2 = settle()
        it += it2 + 1
    model = AffineScores(base=base, slope=slope, center=np.zeros(len(free)))
    if not converged:
        return ScoreIntervals(center=center, free=free, budget=k, model=model, radius=np.full(len(E), np.inf),
                              rho=np.full(n, np.inf), certified=False, driver=driver,
                              info={"iterations": it + 1, "diverged": True, "pairwise_rows": int(h_cols),
                                    "reselected": reselected})
    rho = np.maximum(-lo, hi)
    e = np.maximum(-nlo, nhi)  # |x_l^T (Delta - Delta_lin)| <= e_l
    lev_e = np.sqrt(np.maximum(np.einsum("ij,ij->i", EH, E), 0.0))
    cols, rest, P, pair = state
    P_e = None if P is None else EH @ X[cols].T
    elo, ehi, _ = nonlinear(lo, hi, rows_P=P_e, rows_lev=lev_e)
    # The evaluation score minus the linear model lies in [elo, ehi] for every allowed A: centre the model there.
    mid = 0.5 * (elo + ehi)
    radius = 0.5 * (ehi - elo) + 1e-15
    # Rounding of the factored products EH_j g (g = Q^T z): a relative 1e-12 of their magnitudes.
    gmax = np.partition(np.abs(Q), -k, axis=0)[-k:].sum(axis=0) if k > 0 else np.zeros(p)
    lr_slack = 1e-12 * (np.abs(EH) @ gmax + np.abs(base)) + 1e-15
    # The shared nonlinear shift delta: every row's certified range is a linear constraint on it (tightest per
    # distinct row).
    dirs_all = np.r_[E, X]
    dlo_all, dhi_all = np.r_[elo, nlo], np.r_[ehi, nhi]
    groups = row_classes(dirs_all)
    dirs = dirs_all[[gr[0] for gr in groups]]
    dir_lo = np.array([dlo_all[gr].max() for gr in groups])
    dir_hi = np.array([dhi_all[gr].min() for gr in groups])
    lowrank = LowRankModel(Q=Q, EH=EH, base=base.copy(), lo=elo - lr_slack, hi=ehi + lr_slack, E=E, dirs=dirs,
                           dir_lo=dir_lo, dir_hi=dir_hi, slack=lr_slack)
    base_out, slope_out = base + mid, slope.copy()
    radius_affine = None
    if k > 0:
        radius_affine = _affine_half_width(f, cw, lo, hi, res, e, Lmat, EH, X, k, boxed, base, slope, elo, ehi,
                                           radius, base_out, slope_out)
    model = AffineScores(base=base_out, slope=slope_out, center=np.zeros(len(free)))
    affine_rows = 0 if radius_affine is None else int((radius_affine[1] > 0).any(axis=1).sum())
    quad = None
    if quadratic and k > 0:
        q_lower, q_upper = model.score_bounds(k)
        q_rows = np.flatnonzero((q_lower - radius <= 0) & (q_upper + radius >= 0))
        if len(q_rows):
            quad = (q_rows, *_quadratic_interval(f, cw, lo, hi, res, e, Lmat, EH, X, k, q_rows, base, slope,
                                                 reference=reference, pair=pair))
    coupling = None
    if tracked > 0 and k > 0:
        vlo, vhi = remainder_range(f, lo, hi)
        u = cw * np.maximum(-vlo, vhi)
        lower, upper = model.score_bounds(k)
        open_rows = np.flatnonzero((lower - radius <= 0) & (upper + radius >= 0))
        if P_e is not None and len(open_rows) and len(cols) == n:
            # The rows whose remainder box widens the open evaluation rows' intervals most.
            share = np.abs(P_e[open_rows]).sum(axis=0) * u
        else:
            share = u * lev
        T = np.sort(np.argsort(-share, kind="stable")[:min(int(tracked), n)])
        untracked = np.ones(n, dtype=bool)
        untracked[T] = False
        # The untracked rows' remainders enter every row through their box, as in the fixed point.
        tlo, thi, _ = nonlinear(lo, hi, rows_P=None if P is None else P[T],
                                rows_lev=lev[T], mask=untracked)
        ulo, uhi, _ = nonlinear(lo, hi, rows_P=P_e, rows_lev=lev_e, mask=untracked)
        b, alow, ahigh = graph_lines(f[T], lo[T], hi[T], slopes)
        gmax = np.partition(np.abs(Q), -k, axis=0)[-k:].sum(axis=0) if len(free) else np.zeros(p)
        wmax = np.abs(X[T]).T @ u[T]
        mag = gmax + wmax + np.abs(r0)
        base0 = E @ theta - firm.score_threshold
        # Rounding of the model's products: a relative 1e-12 of their magnitudes.
        slack_t = 1e-12 * (np.abs(XH[T]) @ mag) + 1e-15
        slack_e = 1e-12 * (np.abs(EH) @ mag + np.abs(base0)) + 1e-15
        coupling = CoupledRemainder(
            Q=Q, r0=r0, rows=T, XH=XH[T], Xw=X[T] * cw[T][:, None], d_lo=XH[T] @ -r0 + tlo - slack_t,
            d_hi=XH[T] @ -r0 + thi + slack_t, lo=lo[T], hi=hi[T], slope=b, line_low=alow, line_high=ahigh,
            EH=EH, score_lo=base0 - EH @ r0 + ulo - slack_e, score_hi=base0 - EH @ r0 + uhi + slack_e,
            true_lo=lower - radius, true_hi=upper + radius)
    return ScoreIntervals(center=center, free=free, budget=k, model=model, radius=radius, rho=rho,
                          radius_affine=radius_affine, driver=driver, coupling=coupling, lowrank=lowrank,
                          quadratic=quad,
                          info={"iterations": it + 1, "max_shift": float(rho.max()), "norm_bound": norm,
                                "pairwise_rows": int(h_cols), "reselected": reselected,
                                "median_radius": float(np.median(radius)), "max_radius": float(radius.max()),
                                "affine_rows": affine_rows})


def _slope_deviation(f: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(s_plus, s_minus), shape (n,) each, non-negative: -s_minus |d| <= phi(d) <= s_plus |d| for lo <= d <= hi.

    phi(d) / d is the secant slope of sigma between f and f + d minus sigma'(f); the secant slope is an average of
    sigma' over [f, f + d], so it lies between the least and largest sigma' there (sigma' peaks at 0 and is
    monotone on either side, so the extremes over an interval sit at its ends or at 0).
    """

    def s1(v):
        return _sigmoid(v) * _sigmoid(-v)

    def extremes(a, b):
        top = s1(np.clip(0.0, a, b))
        return np.minimum(s1(a), s1(b)), top

    d1 = s1(f)
    up_min, up_max = extremes(f, f + hi)  # d > 0: phi(d) / |d| = secant - sigma'(f)
    dn_min, dn_max = extremes(f + lo, f)  # d < 0: phi(d) / |d| = sigma'(f) - secant
    s_plus = np.maximum.reduce([np.zeros_like(f), up_max - d1, d1 - dn_min]) + 1e-15
    s_minus = np.maximum.reduce([np.zeros_like(f), d1 - up_min, dn_max - d1]) + 1e-15
    return s_plus, s_minus


def graph_lines(f: np.ndarray, lo: np.ndarray, hi: np.ndarray, slopes: int = 4
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lines below and above the graph of phi(d) = sigma(f + d) - sigma(f) - sigma'(f) d over lo <= d <= hi.

    Args:
        f: shape (K,) scores; lo, hi: shape (K,) the shift ranges (lo <= 0 <= hi).
        slopes: slopes per row (at least 1): 0 and the tangent slopes phi'(d) at d = lo / 2^i and hi / 2^i
            (i = 0, 1, ...), taken in turn, then the chord slopes.

    Returns:
        (b, low, high), each shape (K, S): for every d in [lo_l, hi_l], low_ls + b_ls d <= phi_l(d) <= high_ls +
        b_ls d. For a slope b, low and high are the least and largest phi(d) - b d over the range, exact up to a
        rounding margin: the derivative sigma'(f + d) - sigma'(f) - b vanishes only where sigma'(f + d) = sigma'(f)
        + b =: c, which for 0 < c < 1/4 is at f + d = +-log(s / (1 - s)), s = (1 + sqrt(1 - 4 c)) / 2, so the
        extremes sit at the ends or at those points.
    """
    f, lo, hi = (np.asarray(v, dtype=np.float64) for v in (f, lo, hi))

    def s1(v):
        return _sigmoid(v) * _sigmoid(-v)

    def phi(d):
        return _sigmoid(f + d) - _sigmoid(f) - s1(f) * d

    d1 = s1(f)
    cand = [np.zeros_like(f)]
    for i in range(8):
        cand += [d1 * 0 + (s1(f + lo / 2 ** i) - d1), s1(f + hi / 2 ** i) - d1]
    with np.errstate(divide="ignore", invalid="ignore"):
        chords = [np.where(hi > 0, phi(hi) / np.where(hi > 0, hi, 1.0), 0.0),
                  np.where(lo < 0, phi(lo) / np.where(lo < 0, lo, 1.0), 0.0),
                  np.where(hi > lo, (phi(hi) - phi(lo)) / np.where(hi > lo, hi - lo, 1.0), 0.0)]
    order = cand[:1] + chords + cand[1:]
    b = np.stack(order[:max(1, int(slopes))], axis=1)
    low = np.empty_like(b)
    high = np.empty_like(b)
    for j in range(b.shape[1]):
        bj = b[:, j]
        points = [lo, hi]
        c = d1 + bj
        inside = (c > 0) & (c < 0.25)
        r = np.sqrt(np.clip(1.0 - 4.0 * np.where(inside, c, 0.1), 0.0, 1.0))
        big = 0.5 * (1.0 + r)
        x = np.log(big / (np.where(inside, c, 0.1) / big))  # log(s / (1 - s)) with 1 - s = c / s
        for sgn in (1.0, -1.0):
            points.append(np.where(inside, np.clip(sgn * x - f, lo, hi), lo))
        vals = np.stack([phi(d) - bj * d for d in points], axis=1)
        margin = 1e-14 * (1.0 + (0.25 + np.abs(bj)) * np.maximum(-lo, hi))
        low[:, j] = vals.min(axis=1) - margin
        high[:, j] = vals.max(axis=1) + margin
    return b, low, high


@dataclass
class CoupledRemainder:
    """The remainder of the first-order model as one shared p-vector, for the MILP (see the module docstring).

    With g = Q^T z (the tilt of the flips, shape (p,)) and w = sum_l x_l C w_l phi_l(d_l) over the tracked rows
    (shape (p,)), the true shifts and scores are, exactly up to the untracked rows' box and rounding (kept in the
    ranges below):

        d_l = XH_l (g - r0 - w) + [tracked range],  score_j = base_j + EH_j (g - r0 - w) + [score range],

    and each tracked (d_l, phi_l) lies between the lines of :func:`graph_lines` over d_l in [lo_l, hi_l].

    Attributes:
        Q: shape (c', p) tilts of the free candidates; r0: shape (p,) the centre's retraining residual.
        rows: shape (K,) tracked training rows; XH: shape (K, p) their H^{-1} x_l; Xw: shape (K, p) C w_l x_l.
        d_lo, d_hi: shape (K,) d_l - XH_l (g - w) lies in [d_lo, d_hi] (the -XH_l r0 term included).
        lo, hi: shape (K,) certified shift ranges of the tracked rows.
        slope, line_low, line_high: shape (K, S) the graph's lines.
        EH: shape (m, p) H^{-1} e_j of the evaluation rows.
        score_lo, score_hi: shape (m,) score_j (minus the threshold) - EH_j (g - w) lies in [score_lo, score_hi].
        true_lo, true_hi: shape (m,) certified bounds on the true scores over the node's flip sets (big-Ms).
    """

    Q: np.ndarray
    r0: np.ndarray
    rows: np.ndarray
    XH: np.ndarray
    Xw: np.ndarray
    d_lo: np.ndarray
    d_hi: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    slope: np.ndarray
    line_low: np.ndarray
    line_high: np.ndarray
    EH: np.ndarray
    score_lo: np.ndarray
    score_hi: np.ndarray
    true_lo: np.ndarray
    true_hi: np.ndarray

    def constraints(self, z, p, rows, delta: np.ndarray, g=None) -> list:
        """CVXPY constraints tying the predictions ``p`` (shape (r,)) of evaluation ``rows`` to the flips ``z``
        (shape (c',)) through the coupled model; ``delta`` shape (r,) the band (see
        :func:`solvers.milp.exact_threshold_problem`); ``g`` an existing variable constrained to Q^T z (shape
        (p,)), or None. ``rows`` is an int array (one row per prediction) or a list of r int arrays (classes of
        rows with equal features and equal ``EH`` rows sharing one prediction: their loosest ranges are used).
        They hold at every flip set's true point."""
        import cvxpy as cp

        K, S = self.slope.shape
        cons = []
        if g is None:
            g = cp.Variable(self.Q.shape[1])
            cons.append(g == self.Q.T @ z)
        w = cp.Variable(self.Q.shape[1])
        d = cp.Variable(K)
        v = cp.Variable(K)
        gw = g - w
        cons += [w == self.Xw.T @ v, d >= self.lo, d <= self.hi,
                d - self.XH @ gw >= self.d_lo, d - self.XH @ gw <= self.d_hi]
        for j in range(S):
            cons += [v >= self.line_low[:, j] + cp.multiply(self.slope[:, j], d),
                     v <= self.line_high[:, j] + cp.multiply(self.slope[:, j], d)]
        groups = [np.atleast_1d(np.asarray(r, dtype=np.int64)) for r in rows]
        first = np.array([gr[0] for gr in groups], dtype=np.int64)

        def low(v):
            return np.array([v[gr].min() for gr in groups])

        def high(v):
            return np.array([v[gr].max() for gr in groups])

        EHr = self.EH[first]
        hi_expr = EHr @ gw + high(self.score_hi)
        lo_expr = EHr @ gw + low(self.score_lo)
        big_down = np.maximum(-low(self.true_lo), 0.0) + delta
        big_up = np.maximum(high(self.true_hi), 0.0) + delta
        cons += [hi_expr >= -delta - cp.multiply(big_down, 1 - p), lo_expr <= delta + cp.multiply(big_up, p)]
        return cons


def certificate_milp(intervals: ScoreIntervals, gaps, *, error_weight: float = 0.0, tolerance: float = 1e-7,
                     affine: bool = True, coupled: bool = False, classes: bool = True, shared: bool = False,
                     quadratic: bool = False, extra_intervals: list | None = None):
    """The exact-threshold MILP over a node's certified intervals, with the scores in factored form.

    :func:`solvers.milp.factored_threshold_problem` over the uniform interval (``intervals.lowrank``: scores
    through g = Q^T z, p continuous variables, one integer per class of identical candidates, one prediction per
    class of identical open rows; on COMPAS at M = 10, 307 candidate classes of 363 candidates and 152 of 291 open
    rows), with optional further constraints:

    - ``affine``: the flip-dependent interval's pair on its rows (dense in z; per class the least coefficient in
      the lower side and the largest in the upper side);
    - ``coupled``: the coupled remainder model's (:class:`CoupledRemainder`);
    - ``shared``: the nonlinear parts of all rows as E_j delta for one shared delta, constrained by every
      distinct training and evaluation row's certified range (instead of each row's own range);
    - ``quadratic``: the second-order interval's pair on its rows (``intervals.quadratic``, dense in z like
      ``affine``);
    - ``extra_intervals``: further flip-dependent intervals in the same form (rows, lower0, LOWER, upper0, UPPER)
      over the same free candidates, each valid for every allowed set (e.g. second-order intervals built around
      other reference sets).

    Every constraint holds at each flip set's true point (its class counts, g = Q^T z and true predictions), so the
    optimum and any dual bound are at most the true optimum over the node's flip sets.

    Args:
        intervals: a certified :class:`ScoreIntervals` with ``lowrank`` (m evaluation rows, c' free candidates).
        gaps: the objective's :class:`solvers.milp.FairnessGaps` over the m rows.
        error_weight: weight of the error rate mean(p_j != y_j).
        tolerance: the band's absolute half-width (> 0).
        affine, coupled, classes, shared, quadratic, extra_intervals: as above.

    Returns:
        (problem, n, decode, constant): the CVXPY problem, the integer class-count variable n (shape (G,)),
        ``decode(n_value)`` giving the free-candidate indicator z (shape (c',), 0/1; the first members of each
        class), and the constant to add to the solver's objective.
    """
    lr = intervals.lowrank
    if lr is None:
        raise FairflipError("certificate_milp needs intervals with a factored model (lowrank)")
    # Flip-dependent intervals as (rows, lower0, LOWER, upper0, UPPER): score in [lower0 + LOWER z, upper0 + UPPER z].
    pairs = []
    if affine and intervals.radius_affine is not None:
        r0, R = intervals.radius_affine
        model = intervals.model
        sel = np.flatnonzero(R.any(axis=1))  # the rows where it differs from the uniform one
        pairs.append((sel, (model.base - r0)[sel], (model.slope - R)[sel], (model.base + r0)[sel],
                      (model.slope + R)[sel]))
    if quadratic and intervals.quadratic is not None:
        pairs.append(intervals.quadratic)
    pairs += list(extra_intervals or [])

    def coupling(milp):
        return intervals.coupling.constraints(milp.counts, milp.p, milp.rgroups, milp.band, g=milp.g)

    milp = factored_threshold_problem(lr, gaps, intervals.budget, error_weight=error_weight, tolerance=tolerance,
                                      classes=classes, shared=shared and lr.dirs is not None, intervals=pairs,
                                      extra=coupling if coupled and intervals.coupling is not None else None)
    return milp.problem, milp.counts, milp.decode, milp.constant


def curvature_range(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least and largest sigma''(x) over a <= x <= b, elementwise (shapes (n,)).

    sigma'' = sigma' (1 - 2 sigma) is stationary only where the third derivative vanishes, at
    x = +-log(2 + sqrt(3)), so the extremes over an interval sit at its ends or there. A rounding margin of 1e-15
    is added."""
    def s2(x):
        s = _sigmoid(x)
        return s * (1.0 - s) * (1.0 - 2.0 * s)

    peak = math.log(2.0 + math.sqrt(3.0))
    vals = np.stack([s2(a), s2(b), s2(np.clip(peak, a, b)), s2(np.clip(-peak, a, b))])
    return vals.min(axis=0) - 1e-15, vals.max(axis=0) + 1e-15


def _quadratic_interval(f, cw, lo, hi, res, e, Lmat, EH, X, k, rows, base, slope, reference=None, pair=None,
                        iterations: int = 3, chunk_entries: int = 20_000_000):
    """The second-order flip-dependent interval around a reference set: its ends affine in z, on the evaluation
    ``rows``; exact to second order at the reference.

    Taylor's theorem with the Lagrange remainder gives phi_l(d) = kappa d^2 for some kappa in [klo_l, khi_l], the
    least and largest sigma'' / 2 over the certified range [f_l + lo_l, f_l + hi_l] (:func:`curvature_range`). So
    with affine bounds Dlo_l(z) <= d_l^2 <= Dhi_l(z), phi_l lies between klo Dlo (klo >= 0) or klo Dhi (klo < 0) and
    khi Dhi (khi >= 0) or khi Dlo (khi < 0), all affine in z.

    The squared shift. With r the reference (a flip indicator over the free candidates; default none), a_l = L_l r
    and u = L_l (z - r), the shift is d_l = a_l + u + eps_l with |eps_l| <= ebar_l (the retraining residual and the
    certified nonlinear part). (a + u)^2 >= a^2 + 2 a u (the tangent) and (a + u)^2 <= a^2 + 2 a u + u^2 with
    u^2 <= R'_l sum_k |L_lk| |z_k - r_k| (|u| <= R'_l = R_l + |a_l|, R_l the row's linear reach over |A| <= k; and
    |z_k - r_k| is affine in z). For t_l in (0, 1], (x + eps)^2 lies between (1 - t) x^2 - (1 / t - 1) eps^2 and
    (1 + t) x^2 + (1 + 1 / t) eps^2. Both ends are exact at the reference but for the eps terms, and eps is itself
    second order: eps_l = -XH_l r0 - sum_m P_lm v_m, so |eps_l| <= E_l(z) := res_l + sum_m |P_lm| C w_m
    max(|klo_m|, |khi_m|) Dhi_m(z), affine in z, and eps_l^2 <= ebar_l E_l(z). Each of ``iterations`` rounds (needs
    ``pair`` = |P|, shape (n, n)) recomputes the bounds with the last round's E; every round's bounds are valid, and
    per row the narrower at the reference is kept. t_l minimises the width at the reference; a row whose upper
    bound exceeds its certified max(-lo, hi)^2 there takes that constant.

    Then v_l = C w_l phi_l lies in [Vlo_l(z), Vhi_l(z)], and evaluation row j's nonlinear part -sum_l P_jl v_l in
    [-P+ Vhi - P- Vlo, -P+ Vlo - P- Vhi] (P+- the positive and negative parts of P_j), affine in z. Around the
    reference the width is about sum_l |P_jl| C w_l (khi_l - klo_l) a_l^2, far below the uniform interval's worst
    case over every allowed set.

    Returns:
        (lower0 shape (r,), LOWER shape (r, c'), upper0 shape (r,), UPPER shape (r, c')): for every allowed z the
        score of evaluation row rows[i] (minus the threshold) lies in [lower0_i + LOWER_i z, upper0_i + UPPER_i z].
    """
    n, c = Lmat.shape
    kk = min(k, c)
    ebar = res + e + 1e-12
    ref = np.zeros(c) if reference is None else np.asarray(reference, dtype=np.float64)
    up, down = topk_sums(Lmat, kk)
    a = Lmat @ ref
    Rp = np.maximum(up, down) + np.abs(a)
    absL = np.abs(Lmat)
    flip = 1.0 - 2.0 * ref  # |z_k - r_k| = r_k + flip_k z_k
    # x = a + u = L z: x^2 <= X2c z + X2_0 and x^2 >= T_c z + T_0 (the tangent), all shape (n, c) / (n,).
    X2c = 2.0 * a[:, None] * Lmat + Rp[:, None] * absL * flip[None, :]
    X2_0 = -a ** 2 + Rp * (absL @ ref)
    Tc, T0 = 2.0 * a[:, None] * Lmat, -a ** 2
    cap = np.maximum(-lo, hi) ** 2
    klo, khi = curvature_range(f + lo, f + hi)
    klo, khi = 0.5 * klo, 0.5 * khi
    size = cw * np.maximum(np.abs(klo), np.abs(khi))  # |v_l| <= size_l d_l^2
    rnd = 1.0 + 1e-12

    def bounds(Ec, E0):
        """(Dlo_c, Dlo_0, Dhi_c, Dhi_0) from eps^2 <= ebar (E0 + Ec z)."""
        e_ref = np.maximum(E0 + Ec @ ref, 0.0) * ebar
        t = np.clip(np.sqrt(e_ref) / np.maximum(np.abs(a), 1e-300), 1e-3, 1.0)
        hi_c = (1.0 + t)[:, None] * X2c * rnd + ((1.0 + 1.0 / t) * ebar * rnd)[:, None] * Ec
        hi_0 = (1.0 + t) * X2_0 + np.abs(X2_0) * 1e-12 + (1.0 + 1.0 / t) * ebar * E0 * rnd
        lo_c = (1.0 - t)[:, None] * Tc - ((1.0 / t - 1.0) * ebar * rnd)[:, None] * Ec
        lo_0 = (1.0 - t) * T0 - np.abs(T0) * 1e-12 - (1.0 / t - 1.0) * ebar * E0 * rnd
        # The tangent and the upper form are products of computed numbers: a relative margin on their terms.
        hi_0 = hi_0 + 1e-12 * (np.abs(hi_c).sum(axis=1) + np.abs(hi_0))
        lo_0 = lo_0 - 1e-12 * (np.abs(lo_c).sum(axis=1) + np.abs(lo_0))
        boxed = hi_0 + hi_c @ ref > cap
        hi_c[boxed] = 0.0
        hi_0 = np.where(boxed, cap, hi_0)
        return lo_c, lo_0, hi_c, hi_0

    Dlo_c, Dlo_0, Dhi_c, Dhi_0 = bounds(np.zeros((n, c)), ebar)
    for _ in range(iterations if pair is not None else 0):
        pos = np.maximum(Dhi_c, 0.0)
        reach = Dhi_0 + np.partition(pos, -kk, axis=1)[:, -kk:].sum(axis=1) if kk > 0 else Dhi_0
        Ec = (pair @ (size[:, None] * Dhi_c)) * (1.0 + 1e-10)
        E0 = res + pair @ (size * Dhi_0) + 1e-12 * (pair @ (size * np.abs(reach))) + 1e-15
        new = bounds(Ec, E0)
        width_old = (Dhi_0 + Dhi_c @ ref) - (Dlo_0 + Dlo_c @ ref)
        width_new = (new[3] + new[2] @ ref) - (new[1] + new[0] @ ref)
        better = width_new < width_old
        Dlo_c = np.where(better[:, None], new[0], Dlo_c)
        Dlo_0 = np.where(better, new[1], Dlo_0)
        Dhi_c = np.where(better[:, None], new[2], Dhi_c)
        Dhi_0 = np.where(better, new[3], Dhi_0)
    # v_l = C w_l phi_l in [Vlo, Vhi]: the curvature's sign picks which squared-shift bound each end uses.
    Vlo_c = cw[:, None] * klo[:, None] * np.where((klo >= 0)[:, None], Dlo_c, Dhi_c)
    Vlo_0 = cw * klo * np.where(klo >= 0, Dlo_0, Dhi_0)
    Vhi_c = cw[:, None] * khi[:, None] * np.where((khi >= 0)[:, None], Dhi_c, Dlo_c)
    Vhi_0 = cw * khi * np.where(khi >= 0, Dhi_0, Dlo_0)
    mag = np.abs(Vlo_0) + np.abs(Vhi_0) + np.abs(Vlo_c).sum(axis=1) + np.abs(Vhi_c).sum(axis=1)
    r = len(rows)
    lower0, upper0 = np.empty(r), np.empty(r)
    LOWER, UPPER = np.empty((r, c)), np.empty((r, c))
    step = max(1, chunk_entries // max(1, X.shape[0]))
    for s0 in range(0, r, step):
        part = slice(s0, s0 + step)
        PJ = EH[rows[part]] @ X.T  # (rows, n): e_j^T H^{-1} x_l
        Pp, Pm = np.maximum(PJ, 0.0), np.minimum(PJ, 0.0)
        # Rounding of the products: a relative 1e-12 of their magnitudes (constant), 1e-10 on the slopes.
        slack = 1e-12 * (np.abs(PJ) @ mag) + 1e-15
        lc = -(Pp @ Vhi_c) - (Pm @ Vlo_c)
        uc = -(Pp @ Vlo_c) - (Pm @ Vhi_c)
        spread = 1e-10 * (np.abs(lc) + np.abs(uc))
        lower0[part] = base[rows[part]] - (Pp @ Vhi_0) - (Pm @ Vlo_0) - slack
        upper0[part] = base[rows[part]] - (Pp @ Vlo_0) - (Pm @ Vhi_0) + slack
        LOWER[part] = slope[rows[part]] + lc - spread
        UPPER[part] = slope[rows[part]] + uc + spread
    return lower0, LOWER, upper0, UPPER


def _affine_half_width(f, cw, lo, hi, res, e, Lmat, EH, X, k, boxed, base, slope, elo, ehi, radius, base_out,
                       slope_out, chunk_entries: int = 20_000_000):
    """The flip-dependent interval: model and half-width both affine in z, on the rows the MILP may leave open.

    Training row l's remainder v_l = C w_l phi_l(d_l) lies in [-C w_l s-_l |d_l|, C w_l s+_l |d_l|] (see
    :func:`_slope_deviation`) and |d_l| <= D_l(z) = sum_k |L_lk| z_k + ebar_l (the linear shift plus the certified
    residual and nonlinear parts). So evaluation row j's error -sum_l P_jl v_l lies in c0_j + c_j z +- (h0_j +
    h_j z) with c = P diag(C w (s- - s+) / 2) |L|, h = |P| diag(C w (s+ + s-) / 2) |L| (and the same with ebar for
    the constants). The ``boxed`` rows with the largest worst-case share enter instead through their remainder
    range [vlo, vhi] (a constant interval). On those rows the model becomes base + c0 + (slope + c) z (written into
    ``base_out``/``slope_out``) and the uniform radius is widened to hold around it: the old interval [elo, ehi]
    around the linear model is [elo - c0 - c z, ehi - c0 - c z] around the new one, and c z ranges over the k
    largest negative and positive entries of c. Rows whose uniform interval already fixes the prediction keep the
    uniform interval (R = 0, r0 = radius). Modifies ``radius``, ``base_out`` and ``slope_out`` in place.

    Returns:
        (r0 shape (m,), R shape (m, c')), both non-negative.
    """
    lower, upper = AffineScores(base=base_out, slope=slope_out, center=np.zeros(slope.shape[1])).score_bounds(k)
    rows = np.flatnonzero((lower - radius <= 0) & (upper + radius >= 0))
    r0 = radius.copy()
    R = np.zeros_like(slope)
    if len(rows) == 0:
        return r0, R
    s_plus, s_minus = _slope_deviation(f, lo, hi)
    g = cw * 0.5 * (s_minus - s_plus)
    h = cw * 0.5 * (s_plus + s_minus)
    # |d_l| <= DL_l z + D0_l: the linear shift (triangle inequality) plus the residual and the nonlinear part.
    absL = np.abs(Lmat)
    kk = min(k, absL.shape[1])

    def topk(M):  # M >= 0
        return topk_sums(M, kk, negative=False)[0]

    DL, D0 = absL, res + e + 1e-12
    ebar = D0
    reach = topk(DL)
    boxed_rows = np.zeros(len(f), dtype=bool)
    if boxed > 0:
        worst = h * (reach + ebar)  # the affine half-width's share at its widest
        boxed_rows[np.argsort(-worst, kind="stable")[:min(boxed, len(f))]] = True
    g_a, h_a = np.where(boxed_rows, 0.0, g), np.where(boxed_rows, 0.0, h)
    vlo, vhi = remainder_range(f, lo, hi)
    vlo, vhi = np.where(boxed_rows, cw * vlo, 0.0), np.where(boxed_rows, cw * vhi, 0.0)
    c = np.empty((len(rows), absL.shape[1]))
    hz = np.empty_like(c)
    c0 = np.empty(len(rows))
    h0 = np.empty(len(rows))
    step = max(1, chunk_entries // max(1, X.shape[0]))
    for s0 in range(0, len(rows), step):
        part = slice(s0, s0 + step)
        PJ = EH[rows[part]] @ X.T  # (rows, n): e_j^T H^{-1} x_l
        AJ = np.abs(PJ)
        # P diag(g) |L| as (P diag(g)) |L|: no (n, c') product is held beside |L|.
        c[part] = (PJ * g_a) @ DL
        hz[part] = (AJ * h_a) @ DL
        c0[part] = PJ @ (g_a * ebar) - PJ @ (0.5 * (vlo + vhi))
        # Rounding of the products: a relative 1e-12 of their magnitude.
        h0[part] = AJ @ (h_a * ebar) + AJ @ (0.5 * (vhi - vlo)) + 1e-12 * (AJ @ (h * (reach + ebar) + np.abs(vlo)
                                                                                   + np.abs(vhi)))
    h0 = h0 + 1e-12 * np.abs(c0) + 1e-15
    hz = hz * (1.0 + 1e-10)
    c_max, c_min = topk_sums(c, kk)
    c_min = -c_min
    uni = np.maximum(ehi[rows] - c0 - c_min, c0 + c_max - elo[rows]) + 1e-15
    base_out[rows] = base[rows] + c0
    slope_out[rows] = slope[rows] + c
    radius[rows] = uni
    r0[rows] = h0
    R[rows] = hz
    return r0, R


def robust_values(problem: FlipProblem, gaps, sets: list[np.ndarray], tolerance: float, *,
                  around: np.ndarray | None = None, max_open: int = 12) -> np.ndarray:
    """A lower bound on each flip set's objective that holds however the scores inside the band round.

    A retrained score within ``tolerance`` (plus 1e-9 of its magnitude) of the threshold may fall on either side
    in exact arithmetic (e.g. a score that is exactly zero by symmetry, computed as +1e-17), so a set closed by its
    computed value could hide a lower true one. Here every such row may take either prediction and the least value
    over those choices is returned (all 2^a of them for a <= ``max_open`` such rows; 0, the trivial bound, above).

    Args:
        problem: the flip problem (logistic or ridge firm; m evaluation rows).
        gaps: the objective's :class:`solvers.milp.FairnessGaps` over the m rows.
        sets: K flip sets (arrays of training rows).
        tolerance: the band's absolute half-width.
        around: a flip set near all of them (speeds up retraining, see :meth:`FlipProblem.fit_flip_sets`).

    Returns:
        (values, ambiguous): shape (K,) each; ``values`` at most the set's computed objective, ``ambiguous``
        True where some relevant score lies in the band (elsewhere the value is the computed objective, up to
        the order of the sums).
    """
    X_eval, y_eval, _ = problem.evaluation_set
    E = np.c_[np.asarray(X_eval, dtype=np.float64), np.ones(len(X_eval))]
    out = np.empty(len(sets))
    flagged = np.zeros(len(sets), dtype=bool)
    ew = float(problem.error_weight)
    yf = gaps.y.astype(np.float64)
    relevant = np.arange(len(E)) if ew > 0 else gaps.rows
    for start in range(0, len(sets), 512):
        part = sets[start:start + 512]
        thetas = problem.fit_flip_sets([np.asarray(s, dtype=np.int64) for s in part], around=around)
        F = E @ np.asarray(thetas, dtype=np.float64).T - problem.firm.score_threshold  # (m, K)
        for i in range(F.shape[1]):
            f = F[:, i]
            pred = (f > 0).astype(np.float64)
            band = float(tolerance) + 1e-9 * np.abs(f)
            amb = relevant[np.abs(f[relevant]) <= band[relevant]]
            flagged[start + i] = len(amb) > 0
            if len(amb) > max_open:
                out[start + i] = 0.0
                continue
            best = math.inf
            for bits in itertools.product((0.0, 1.0), repeat=len(amb)):
                p = pred.copy()
                p[amb] = bits
                t = np.abs(gaps.weights @ p)
                v = float(t.max() if gaps.aggregate == "max" else t.mean())
                if ew > 0:
                    v += ew * float(np.mean(p != yf))
                best = min(best, v)
            out[start + i] = best
    return out, flagged


def _closed_value(problem, gaps, sets, computed, tolerance, around=None) -> float:
    """The least value a B&B node closed by retraining ``sets`` may claim: the computed objective (``computed``,
    shape (K,), or None to compute it) where no score lies in the band, else the band-robust value."""
    if computed is None:
        computed = problem.objective_of([np.asarray(s, dtype=np.int64) for s in sets], around=around)
    robust, ambiguous = robust_values(problem, gaps, sets, tolerance, around=around)
    return float(np.min(np.where(ambiguous, np.minimum(robust, computed), computed)))


@dataclass(order=True)
class _Node:
    bound: float
    order: int
    center: np.ndarray = field(compare=False)
    excluded: np.ndarray = field(compare=False)


def certify_logistic(
    problem: FlipProblem,
    budget: int,
    *,
    incumbent: np.ndarray | None = None,
    time_limit: float = 60.0,
    node_time_limit: float = 20.0,
    root_time_limit: float | None = None,
    polish: int = 2000,
    max_nodes: int = 10_000,
    enumerate_max: int = 2_000,
    tolerance: float = 1e-7,
    seed: int = 0,
    progress=None,
    formulation: str = "factored",
    coupled_rows: int = 100,
    coupled_slopes: int = 4,
    coupled_everywhere: bool = False,
    quadratic: bool = False,
    pairwise_entries: int | None = None,
) -> FlipResult:
    """A certified lower bound on the logistic firm's objective over flip sets of size <= ``budget``.

    Branch and bound over flip sets (see the module docstring): each node's bound is the dual bound of the
    exact-threshold MILP over its certified score intervals; leaves (no budget or no candidate left) are retrained
    exactly; every MILP answer is retrained and may improve the incumbent.

    Args:
        problem: a flip problem with the logistic firm.
        budget: M.
        incumbent: optional warm-start flip set (e.g. the oracle's answer); its true objective is the first upper
            bound.
        time_limit: seconds for the whole search.
        node_time_limit: HiGHS seconds per node MILP (a time-limited MILP still gives a valid dual bound).
            HiGHS checks its limit between its own steps and was seen to overrun it by minutes on a COMPAS node
            MILP, so ``time_limit`` is a target, not a hard stop.
        root_time_limit: HiGHS seconds for the root node's MILP (default: all of ``time_limit``; the root's dual
            bound is usually the one that decides, and a MILP stopped early gives a weaker one).
        polish: flip sets the exact local search from the root MILP's answer may retrain (0: none).
        max_nodes: the most nodes expanded.
        enumerate_max: a node with at most this many flip sets is closed by retraining all of them (batched);
            when the root is that small the answer is the enumeration's proven optimum. A node with up to
            :data:`ENUMERATE_PROBE_MAX` sets is enumerated too when a timed probe says it fits in the time left;
            0 turns enumeration off.
        tolerance: the MILP's band around the threshold (see :func:`solvers.milp.exact_threshold_problem`).
        seed: HiGHS's random seed.
        progress: optional callback receiving a dict per node (``stage``, ``done`` nodes, ``best``, ``bound``
            (the least open bound)), as :data:`fairflip.methods.ProgressFn`.
        formulation: ``factored`` (:func:`certificate_milp`: scores through g = Q^T z, candidate and row classes;
            at the root the uniform interval first, then, with the root's time left, the coupled remainder model
            and the flip-dependent interval on top of the uniform one, the largest bound kept; below the root both
            intervals in one MILP) or
            ``dense`` (:func:`solvers.milp.exact_threshold_problem` over both intervals, the earlier formulation).
        coupled_rows, coupled_slopes: the coupled model's tracked training rows and line slopes per side (see
            :func:`logistic_intervals`); ``coupled_rows=0`` skips that stage.
        coupled_everywhere: the coupled stage at every node, not only at the root (on COMPAS it mostly ran out
            of a node's time below the root, where the uniform and flip-dependent MILPs take seconds).
        quadratic: the flip-dependent stages also impose the second-order interval (:func:`_quadratic_interval`,
            built around the incumbent's flips among the node's free candidates). Off by default: on COMPAS
            (150 s) it left the bounds at M = 3 and 5 where they were (0.23794 and 0.23325) while each node took
            longer (12 nodes at M = 3 instead of 27).
        pairwise_entries: memory for the intervals' per-row remainder bound above 6,000 training rows (see
            :func:`logistic_intervals`); None: :data:`MAX_PAIRWISE_ENTRIES` (1.6 GB).

    Returns:
        a :class:`FlipResult`: ``flipped``/``objective`` the incumbent (true objective), ``lower_bound`` the
        certified bound with ``bound_source`` ``branch-and-bound`` (``relaxation`` when the root alone decided it,
        ``trivial`` when it is 0), ``status`` ``optimal`` when they meet, else ``time_limit`` or ``feasible``;
        ``info`` has ``nodes``, ``open_nodes``, ``root`` (the root intervals' diagnostics or None) and
        ``root_bound``.
    """
    budget = check_budget(budget)
    for name, value in (("time_limit", time_limit), ("node_time_limit", node_time_limit),
                        ("root_time_limit", time_limit if root_time_limit is None else root_time_limit)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise FairflipError(f"{name} must be a positive number of seconds, got {value!r}")
    if not isinstance(polish, (int, np.integer)) or polish < 0:
        raise FairflipError(f"polish must be a non-negative integer, got {polish!r}")
    if not isinstance(enumerate_max, (int, np.integer)) or enumerate_max < 0:
        raise FairflipError(f"enumerate_max must be a non-negative integer, got {enumerate_max!r}")
    if getattr(problem.firm, "loss", None) != "logistic":
        raise FairflipError("certify_logistic needs the logistic firm (its loss is self-concordant); for the "
                            "ridge firm use oracle-convex's exact MILP")
    if formulation not in ("factored", "dense"):
        raise FairflipError(f"formulation must be 'factored' or 'dense', got {formulation!r}")
    if pairwise_entries is not None:
        check_entries(pairwise_entries)
    start = time.perf_counter()
    cands = problem.candidates
    gaps = fairness_gaps(problem.objective, problem.evaluation_set[1], problem.evaluation_set[2])
    none = np.zeros(0, dtype=np.int64)
    best_set = none
    best = float(problem.objective_of([none])[0])
    if incumbent is not None:
        inc = problem.check_flips(incumbent, budget)
        v = float(problem.objective_of([inc])[0])
        if v < best:
            best_set, best = inc, v
    # Exchangeable candidates: equal feature rows, labels and weights (one key per candidate, shape (c,)).
    w_all = np.ones(problem.n) if problem.sample_weight is None else np.asarray(problem.sample_weight, np.float64)
    rows_key = np.ascontiguousarray(np.c_[np.asarray(problem.X, dtype=np.float64)[cands], problem.y[cands],
                                          w_all[cands]])
    twin_key = np.unique(rows_key.view(np.dtype((np.void, rows_key.dtype.itemsize * rows_key.shape[1]))).ravel(),
                         return_inverse=True)[1].ravel()
    counter = 0
    heap = [_Node(0.0, counter, none, none)]
    nodes = 0
    root_info: dict[str, Any] | None = None
    root_bound = None
    hit = False
    solver_name = None
    enumerated = 0
    stage_log: list[dict[str, Any]] = []
    floor = math.inf  # the least band-robust value of the sets closed by retraining (leaves, enumeration)
    while heap:
        if heap[0].bound >= best - 1e-12:
            heap = []  # every open node is dominated by the incumbent
            break
        if time.perf_counter() - start > time_limit or nodes >= max_nodes:
            hit = time.perf_counter() - start > time_limit
            break
        node = heapq.heappop(heap)
        nodes += 1
        if progress is not None and nodes > 1:
            progress({"stage": "branch and bound", "done": nodes - 1, "best": best,
                      "bound": min([node.bound] + [h.bound for h in heap])})
        left = budget - len(node.center)
        free = np.setdiff1d(np.setdiff1d(cands, node.center), node.excluded)
        if left <= 0 or len(free) == 0:
            # A leaf: its only set is the centre, already retrained when the node was made; it closes at the
            # centre's value with any score inside the band taken either way.
            floor = min(floor, _closed_value(problem, gaps, [node.center], None, tolerance))
            continue
        count = count_flip_sets(len(free), left)
        probe = None
        if 0 < enumerate_max < count <= ENUMERATE_PROBE_MAX:
            # Larger nodes are enumerated when a timed probe says every set (retrained twice: once for its value,
            # once for the band-robust check) fits in the time left.
            first = [np.sort(np.r_[node.center, np.array(A, dtype=np.int64)]).astype(np.int64)
                     for A in itertools.islice(itertools.chain.from_iterable(
                         itertools.combinations(free, j) for j in range(1, left + 1)), 64)]
            t0 = time.perf_counter()
            probe = problem.objective_of(first, around=node.center)
            estimate = 2.0 * (time.perf_counter() - t0) * count / len(first)
            if estimate > time_limit - (time.perf_counter() - start):
                probe = None
        if count <= enumerate_max or probe is not None:
            # Small enough to retrain every set of the node: its exact minimum closes it.
            sets = [np.sort(np.r_[node.center, np.array(A, dtype=np.int64)]).astype(np.int64)
                    for j in range(1, left + 1) for A in itertools.combinations(free, j)]
            done = 0 if probe is None else len(probe)
            values = np.concatenate(([] if probe is None else [probe])
                                    + [problem.objective_of(sets[i:i + 512], around=node.center)
                                       for i in range(done, len(sets), 512)])
            enumerated += len(sets)
            i = int(np.argmin(values))
            if values[i] < best:
                best_set, best = sets[i], float(values[i])
            floor = min(floor, _closed_value(problem, gaps, sets, values, tolerance, around=node.center),
                        _closed_value(problem, gaps, [node.center], None, tolerance))
            if nodes == 1:
                root_bound = min(best, floor)  # the root enumerated: its optimum is proven
            continue
        root_node = nodes == 1
        tracked = coupled_rows if formulation == "factored" and (root_node or coupled_everywhere) else 0
        # The second-order interval is tightest around the incumbent's flips among the node's free candidates.
        intervals = logistic_intervals(problem, node.center, free, left, deadline=start + time_limit,
                                       tracked=tracked, slopes=coupled_slopes, quadratic=quadratic,
                                       reference=np.isin(free, best_set).astype(np.float64),
                                       pairwise_entries=pairwise_entries)
        bound = node.bound
        branch_on = None
        if intervals.certified:
            per_node = node_time_limit if not root_node else (time_limit if root_time_limit is None
                                                              else root_time_limit)
            node_end = time.perf_counter() + max(1.0, min(per_node, time_limit - (time.perf_counter() - start)))
            # (affine, coupled) per stage: at the root the uniform MILP, then the flip-dependent intervals (first-
            # and second-order) on top of the uniform one, then the coupled model, each later stage only with time
            # left and the node still open; below the root the uniform and flip-dependent intervals in one MILP.
            stages = [(False, False)]
            if formulation == "factored" and not root_node and intervals.radius_affine is not None:
                # Below the root one MILP over both intervals (the uniform one alone hardly moves a child's bound
                # above its parent's, and a second solve would repeat the first's work).
                stages = [(True, False)]
            if formulation == "factored":
                if root_node and intervals.radius_affine is not None:
                    stages.append((True, False))
                if intervals.coupling is not None and (root_node or coupled_everywhere):
                    stages.append((False, True))
            for affine, coupled in stages:
                remaining = node_end - time.perf_counter()
                if (affine or coupled) and stages[0] != (affine, coupled) and (remaining < 5.0
                                                                                or bound >= best - 1e-12):
                    break
                remaining = max(1.0, remaining)
                if formulation == "dense":
                    prob, z, const = exact_threshold_problem(intervals.model, gaps, intervals.budget,
                                                             error_weight=problem.error_weight,
                                                             tolerance=tolerance, radius=intervals.radius,
                                                             radius_affine=intervals.radius_affine)
                    decode = None
                    options = None
                else:
                    prob, z, decode, const = certificate_milp(intervals, gaps, error_weight=problem.error_weight,
                                                              tolerance=tolerance, affine=affine,
                                                              coupled=coupled, quadratic=affine and quadratic)
                    # HiGHS's restarts were seen to run minutes past the time limit (COMPAS, M = 25), which
                    # the hard deadline then turns into no bound at all.
                    options = {"mip_allow_restart": False}
                report = solve(prob, z, const, solver="HIGHS", time_limit=remaining, seed=seed, options=options)
                solver_name = report.solver
                stage_log.append({"node": nodes, "affine": affine, "coupled": coupled, "bound": report.bound,
                                  "status": report.status, "seconds": report.wall_time})
                if report.bound is not None:
                    bound = max(bound, report.bound)
                if report.z is None:
                    continue
                zz = report.z if decode is None else decode(report.z)
                chosen = free[zz > 0.5]
                trial = np.sort(np.r_[node.center, chosen]).astype(np.int64)
                v = float(problem.objective_of([trial])[0])
                if v < best:
                    best_set, best = trial, v
                if root_node and not (affine or coupled) and polish > 0 and bound < best - 1e-12 and len(trial):
                    # The root relaxation's answer is a good start for an exact local search (true objectives
                    # only: it can improve the incumbent, never the bound).
                    from .search import ranked_local_search

                    found = ranked_local_search(problem, trial, budget, value=v, max_evaluations=polish)
                    if found.objective < best:
                        best_set, best = np.sort(found.flipped).astype(np.int64), float(found.objective)
                if len(chosen) and branch_on is None:
                    # Branch on the chosen candidate that moves the evaluation scores most.
                    pick = zz > 0.5
                    branch_on = chosen[np.argmax(np.abs(intervals.model.slope[:, pick]).sum(axis=0))]
        if nodes == 1:
            root_info = dict(intervals.info)
            root_bound = bound
        if bound >= best - 1e-12:
            continue
        if branch_on is None:
            # No certificate (or the relaxation flips nothing): branch on the candidate that moves some training
            # score most, the usual driver of large shifts.
            branch_on = intervals.driver
        child_in = np.sort(np.r_[node.center, branch_on]).astype(np.int64)
        v = float(problem.objective_of([child_in])[0])
        if v < best:
            best_set, best = child_in, v
        counter += 1
        heapq.heappush(heap, _Node(bound, counter, child_in, node.excluded))
        counter += 1
        # The exclude child drops the branching candidate's exact twins too (same row, label and weight): a set
        # with a twin but not the candidate has an exchangeable copy with the candidate (same retrained firm, same
        # value) in the include child, so the least value over the two children is unchanged.
        twins = cands[twin_key == twin_key[np.searchsorted(cands, branch_on)]]
        heapq.heappush(heap, _Node(bound, counter, node.center, np.union1d(node.excluded, twins)))
    # Every set is in an open node, in a node pruned by an incumbent's value (at least the final one's), or
    # closed as a leaf or by enumeration (floor); the incumbent enters with its band-robust value too.
    floor = min(floor, _closed_value(problem, gaps, [best_set], np.array([best]), tolerance))
    lower = min([best, floor] + [n.bound for n in heap])
    result = FlipResult(flipped=best_set, objective=best, status="feasible", solver=solver_name,
                        time_limit_hit=hit,
                        info={"nodes": nodes, "open_nodes": len(heap), "root": root_info, "root_bound": root_bound,
                              "milps": stage_log, "formulation": formulation,
                              "enumerated_sets": enumerated, "runtime_s": time.perf_counter() - start})
    source = ("enumeration" if root_info is None and nodes == 1 and not heap and enumerated
              else "relaxation" if nodes == 1 else "branch-and-bound")
    if lower > 0 or source == "enumeration":
        result.lower_bound, result.bound_source = float(max(lower, 0.0)), source
    else:
        result.lower_bound, result.bound_source = 0.0, "trivial"
    result.check_bound()
    if result.lower_bound is not None and result.lower_bound > best:
        result.lower_bound = best  # above by rounding only (check_bound's tolerance)
    if result.lower_bound is not None and best - result.lower_bound <= 1e-9:
        result.status = "optimal"
    elif hit:
        result.status = "time_limit"
    return result
