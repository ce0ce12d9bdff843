"""L2-regularised linear firms (logistic, ridge, smoothed hinge) trained by batched Newton in torch.

The inner problem, in scikit-learn's convention (intercept not penalised):

    J(theta; y) = C * sum_i s_i * l(x_i . w + b, y_i) + 0.5 * ||w||^2,      theta = (w, b)

with s_i optional sample weights. For ``loss="logistic"`` this is ``sklearn.linear_model.LogisticRegression(C=C)``;
for ``loss="squared"`` it is ``sklearn.linear_model.RidgeClassifier(alpha=1/C)`` up to the factor 2/C.
Several label vectors (K flip sets of the same data) are solved at once: every tensor carries a leading batch
dimension K, so sweeps, greedy search and the oracle's rounding retrain all candidates in one call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.weak import WeakTensorKeyDictionary

from .._device import resolve_device
from .._errors import FairflipError, check_binary
from ..linalg import cholesky_preconditioner, conjugate_gradient
from .design import attach_sparse_twin, pullback, scores, sparse_twin
from .losses import MarginLoss, get_loss

FIRM_NAMES = {"logistic": "logistic", "squared": "ridge", "smoothed-hinge": "smoothed-hinge"}

PCG_MIN_PARAMS = 16
"""From this many parameters on, batched retraining (``FlipProblem``) solves Newton steps by conjugate gradients
preconditioned with the unflipped Hessian: a Hessian costs O(n p^2) per batch member, a product O(n p). Measured
on 2 CPU cores (64 sets of 1% flips): 4x faster at p = 51 and p = 21, 2.7x at p = 13 with 256 sets."""


NEAR_TENSOR_MAX_WORK = 50_000_000
"""A local model (:meth:`LinearFirm.local_model`) carries the loss's third-derivative tensor (p^3 entries) when
n * p^3 is at most this, so small-p retraining near the anchor converges in a few passes over X; above it the
anchor's Hessian alone is used (a linearly converging chord iteration)."""

NEAR_LOOSE_TOL = 1e-6
"""The step tolerance of retraining for predictions (:meth:`FlipProblem.predictions`): a member stops after a
step below it, and its predictions are kept when every score is farther from the threshold than that step can
move it (:meth:`LinearFirm.predict_decided`); the others are retrained to ``tol``."""

NEAR_MAX_ITER = 30
""":meth:`LinearFirm.fit_near` passes at most; a member whose average step ratio so far would need more is handed
to damped Newton as soon as that is clear (from its fourth pass). COMPAS needs 2 to 3 passes, Adult about 7; on
KDD census-income (p = 507, rare one-hot categories) the chord iteration from the unflipped factor crawls and
preconditioned Newton does better."""

NEAR_MAX_RATIO = 0.5
""":meth:`LinearFirm.fit_near` hands a batch member to damped Newton once one of its steps is not at most this
fraction of the one before (the local model does not contract there). With Anderson mixing (no tensor), whose
steps need not shrink monotonically, only a step larger than the one before hands it over: on Adult, 16 of 64
random 100-flip sets did at 0.5, none at 1."""

OUTER_MAX_BYTES = 1 << 26
"""Batched Hessians are assembled from the rows' outer products (n * p * p / 2 entries) when these fit in twice
this many bytes (small p), else from a scaled copy of X per chunk of the batch."""


_outer: WeakTensorKeyDictionary = WeakTensorKeyDictionary()


_l1 = WeakTensorKeyDictionary()


def _row_l1(Xd: torch.Tensor) -> torch.Tensor:
    """||x_i||_1 of every row of a design matrix, (m,), kept while Xd lives."""
    cached = _l1.get(Xd)
    if cached is None:
        cached = Xd.abs().sum(-1)
        if not Xd.requires_grad:
            _l1[Xd] = cached
    return cached


def _outer_products(Xd: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
    """Upper triangles of the rows' outer products, (n, p (p + 1) / 2), kept while Xd lives (design matrices
    are never modified in place)."""
    cached = _outer.get(Xd)
    if cached is None or cached.shape[1] != len(i):
        cached = Xd[:, i] * Xd[:, j]
        if not Xd.requires_grad:
            _outer[Xd] = cached
    return cached


@dataclass(frozen=True)
class LinearModel:
    """A fitted linear firm: scores f = X @ coef + intercept, prediction 1 iff f > score_threshold."""

    coef: np.ndarray
    intercept: float
    score_threshold: float = 0.0
    loss: str = "logistic"

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Scores of the rows of ``X`` (shape (n, d)), shape (n,)."""
        return np.asarray(X, dtype=np.float64) @ self.coef + self.intercept

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted labels of the rows of ``X`` (shape (n, d)), shape (n,) int64 in {0, 1}."""
        return (self.decision_function(X) > self.score_threshold).astype(np.int64)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """P(y = 1 | x) for the logistic firm, shape (n,); other losses have no probabilities."""
        if self.loss != "logistic":
            raise FairflipError(f"the {self.loss} firm has no probabilities; use decision_function")
        return 1.0 / (1.0 + np.exp(-self.decision_function(X)))


ANDERSON_MEMORY = 2
"""Past chord steps :meth:`LinearFirm.fit_near` mixes into each new one when it has no third-derivative tensor
(large p). Measured on Adult (p = 91, 64 one-flip moves from a 50-flip anchor): 13 passes over X without mixing,
7 with a memory of 2, 3 or 5 (the same optimum to 1e-12)."""


def _anderson(theta: torch.Tensor, step: torch.Tensor,
              history: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, list]:
    """One Anderson-accelerated update of the chord iteration theta <- theta - step, for every member.

    The chord map's residuals -step at the last ``ANDERSON_MEMORY + 1`` iterates are combined by least squares
    (the combination whose residual is smallest) and the same combination of the chord updates is taken. theta,
    step (K, p); history: earlier (theta, -step) pairs, oldest first. Returns (new theta, updated history)."""
    history = (history + [(theta, -step)])[-(ANDERSON_MEMORY + 1):]
    if len(history) < 2:
        return theta - step, history
    dX = torch.stack([b[0] - a[0] for a, b in zip(history, history[1:])], -1)  # (K, p, m)
    dF = torch.stack([b[1] - a[1] for a, b in zip(history, history[1:])], -1)
    A = dF.transpose(1, 2) @ dF
    ridge = 1e-12 * A.diagonal(dim1=-2, dim2=-1).sum(-1) + torch.finfo(A.dtype).tiny
    A = A + ridge[:, None, None] * torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
    gamma, info = torch.linalg.solve_ex(A, dF.transpose(1, 2) @ (-step).unsqueeze(-1))
    mixed = theta - step - ((dX + dF) @ gamma).squeeze(-1)
    plain = (info != 0) | ~torch.isfinite(mixed).all(-1)
    return torch.where(plain[:, None], theta - step, mixed), history


@dataclass
class LocalModel:
    """The firm's training objective around one optimum, which :meth:`LinearFirm.fit_near` retrains from.

    Attributes:
        theta: shape (p,) the optimum for the labels ``y``.
        y: shape (n,) those labels.
        hessian: shape (p, p) the Hessian there (None for a batch given one shared factor: nothing reads it).
        factor: shape (p, p) its Cholesky factor.
        tensor: shape (p * p, p) the third derivative of J there (d^3 J / dtheta_j dtheta_k dtheta_l at row
            j * p + k, column l), or None (large n * p^3, or a loss without ``d3``).
        gradient: shape (p,) the gradient of J there (zero up to the solver's tolerance), or None.
        label_slope: shape (n,) d(grad J)/dy_i = label_slope_i x_i there (C s_i dy_d1(f_i)), or None. The
            gradient is affine in the labels, so a member's gradient at theta follows from the rows where its
            labels differ from ``y``, without a pass over X.

    A batch of K anchors carries theta (K, p), y (K, n), hessian and factor (K, p, p), and no tensor, gradient
    or slope.
    """

    theta: torch.Tensor
    y: torch.Tensor
    hessian: torch.Tensor | None
    factor: torch.Tensor
    tensor: torch.Tensor | None
    gradient: torch.Tensor | None = None
    label_slope: torch.Tensor | None = None


@dataclass(frozen=True)
class LinearFirm:
    """An L2-regularised linear classifier with a smooth loss, fitted exactly by damped Newton.

    Args:
        loss: ``"logistic"`` (the paper's firm), ``"squared"`` (ridge classifier, targets -1/+1) or
            ``"smoothed-hinge"`` (quadratically smoothed SVM).
        C: inverse regularisation strength, scikit-learn's convention (C = 1.0 by default).
        threshold: probability threshold of the logistic firm (0.5); other losses predict 1 iff score > 0.
        tol: Newton stops when every batch member's step is below ``tol`` in max-norm.
        max_iter: Newton iteration cap.
        device: ``None`` picks CUDA when available, else CPU.
        dtype: torch dtype of the solve (float64 by default).
        memory_budget: bytes a Hessian assembly may use at once (the batch is chunked to fit).
    """

    loss: str = "logistic"
    C: float = 1.0
    threshold: float = 0.5
    tol: float = 1e-10
    max_iter: int = 100
    device: str | None = None
    dtype: torch.dtype = torch.float64
    memory_budget: int = 1 << 28

    def __post_init__(self) -> None:
        get_loss(self.loss)
        if not (self.C > 0) or math.isinf(self.C):
            raise FairflipError(f"C must be a positive finite number, got {self.C!r}")
        if not (0 < self.threshold < 1):
            raise FairflipError(f"threshold must lie in (0, 1), got {self.threshold!r}")

    # ----- the inner problem (pure functions of theta, design matrix and labels) -----
    @property
    def name(self) -> str:
        """The firm's name as the CLI knows it: logistic, ridge, smoothed-hinge, or a registered loss's name."""
        return FIRM_NAMES.get(self.loss, self.loss)

    @property
    def margin_loss(self) -> MarginLoss:
        """The per-example loss with its derivatives."""
        return get_loss(self.loss)

    @property
    def score_threshold(self) -> float:
        """Score above which the firm predicts 1."""
        if self.loss == "logistic":
            return math.log(self.threshold / (1 - self.threshold))
        return 0.0

    @property
    def torch_device(self) -> torch.device:
        """The resolved device."""
        return resolve_device(self.device)

    def design(self, X: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Return [X, 1] on the firm's device and dtype, shape (n, d + 1)."""
        Xt = torch.as_tensor(X, dtype=self.dtype, device=self.torch_device)
        if Xt.ndim != 2:
            raise FairflipError(f"X must be a 2-D matrix, got shape {tuple(Xt.shape)}")
        if not torch.isfinite(Xt).all():
            raise FairflipError("X contains NaN or infinite values")
        Xd = torch.cat([Xt, torch.ones(Xt.shape[0], 1, dtype=self.dtype, device=Xt.device)], dim=1)
        attach_sparse_twin(Xd)  # large, mostly one-hot matrices on the CPU: CSR products for small batches
        return Xd

    def _reg(self, p: int, like: torch.Tensor) -> torch.Tensor:
        r = torch.ones(p, dtype=like.dtype, device=like.device)
        r[-1] = 0.0
        return r

    def objective(self, theta: torch.Tensor, Xd: torch.Tensor, Y: torch.Tensor, sw: torch.Tensor | None = None) -> torch.Tensor:
        """J(theta; y) for a batch: theta (K, p), Xd (n, p), Y (K, n) -> (K,)."""
        F = scores(theta, Xd)
        L = self.margin_loss.value(F, Y)
        if sw is not None:
            L = L * sw
        return self.C * L.sum(-1) + 0.5 * (theta[..., :-1] ** 2).sum(-1)

    def gradient(self, theta: torch.Tensor, Xd: torch.Tensor, Y: torch.Tensor, sw: torch.Tensor | None = None) -> torch.Tensor:
        """dJ/dtheta for a batch: theta (K, p), Xd (n, p), Y (K, n) -> (K, p)."""
        G = self.margin_loss.d1(scores(theta, Xd), Y)
        if sw is not None:
            G = G * sw
        return pullback(self.C * G, Xd) + theta * self._reg(theta.shape[-1], theta)

    def hessian(self, theta: torch.Tensor, Xd: torch.Tensor, Y: torch.Tensor, sw: torch.Tensor | None = None) -> torch.Tensor:
        """d2J/dtheta2 for a batch: theta (K, p), Xd (n, p), Y (K, n) -> (K, p, p).

        Assembled in chunks of the batch so no more than ``memory_budget`` bytes are live at once.
        """
        W = self.margin_loss.d2(scores(theta, Xd), Y)
        if sw is not None:
            W = W * sw
        K, p = theta.shape
        n = Xd.shape[0]
        H = torch.empty(K, p, p, dtype=Xd.dtype, device=Xd.device)
        if n * p * p * Xd.element_size() <= OUTER_MAX_BYTES:
            # Small p: the upper triangles of the rows' outer products x_i x_i^T (n, p (p + 1) / 2) once, then one
            # matrix product W @ them for the whole batch, instead of a (K, p, n) scaled copy of X per chunk (also
            # for K = 1: half the multiply-adds of X^T W X; on COMPAS 0.14 ms instead of 0.22 ms).
            i, j = torch.triu_indices(p, p, device=Xd.device)
            upper = W @ _outer_products(Xd, i, j)
            H[:, i, j] = upper
            H[:, j, i] = upper
        else:
            chunk = max(1, self.memory_budget // max(1, n * p * Xd.element_size()))
            for s in range(0, K, chunk):
                Wk = W[s:s + chunk]
                H[s:s + chunk] = (Xd.T.unsqueeze(0) * Wk.unsqueeze(1)) @ Xd
        H.mul_(self.C)
        H.diagonal(dim1=-2, dim2=-1).add_(self._reg(p, theta))
        return H

    def hessian_factor(self, theta: torch.Tensor, Xd: torch.Tensor, y: torch.Tensor,
                       sw: torch.Tensor | None = None) -> torch.Tensor | None:
        """Cholesky factor L (p, p) of the Hessian at one point, theta (p,), y (n,); None when it is not positive
        definite. Used as a Newton-CG preconditioner (see :meth:`fit_params`)."""
        L, info = torch.linalg.cholesky_ex(self.hessian(theta[None], Xd, y[None], sw)[0])
        return L if int(info) == 0 else None

    def local_model(self, theta: torch.Tensor, Xd: torch.Tensor, y: torch.Tensor,
                    sw: torch.Tensor | None = None, *, third_order: bool = True,
                    factor: torch.Tensor | None = None) -> LocalModel | None:
        """The :class:`LocalModel` at ``theta`` (p,) for the labels ``y`` (n,) (their optimum), or a batch of K
        anchors, theta (K, p) and y (K, n) (fields then carry a leading K; no tensor). None when a Hessian there
        is not positive definite. ``third_order=False`` leaves the tensor out. ``factor``: a Cholesky factor
        (p, p) of a nearby Hessian to use instead of the one(s) at theta (large p, where forming one costs
        O(n p^2); the iteration then converges a little more slowly to the same optimum)."""
        batched = theta.ndim == 2
        if factor is not None:
            if batched:  # one shared factor: fit_near solves with it directly (no K copies, no Hessians)
                return LocalModel(theta, y, None, factor, None)
            L = factor[None]
            H = L @ L.transpose(-1, -2)
        else:
            H = self.hessian(torch.atleast_2d(theta), Xd, torch.atleast_2d(y), sw)
            L, info = torch.linalg.cholesky_ex(H)
            if bool((info != 0).any()):
                return None
        if batched:
            return LocalModel(theta, y, H, L, None)
        H, L = H[0], L[0]
        n, p = Xd.shape
        tensor = None
        d3 = self.margin_loss.d3
        small = n * p ** 3 <= NEAR_TENSOR_MAX_WORK and n * p * p * Xd.element_size() <= OUTER_MAX_BYTES
        if third_order and d3 is not None and small and sparse_twin(Xd) is None:
            t = d3(Xd @ theta, y)
            if sw is not None:
                t = t * sw
            if bool(t.any()):  # zero for piecewise-quadratic losses: the chord iteration is then exact enough
                # One product with the rows' cached outer products: T[l, i, j] = C sum_r t_r x_rl x_ri x_rj.
                i, j = torch.triu_indices(p, p, device=Xd.device)
                upper = (Xd * (self.C * t)[:, None]).T @ _outer_products(Xd, i, j)
                full = torch.empty(p, p, p, dtype=Xd.dtype, device=Xd.device)
                full[:, i, j] = upper
                full[:, j, i] = upper
                tensor = full.reshape(p, p * p).T  # symmetric in all three indices
        F = Xd @ theta
        loss = self.margin_loss
        G = loss.d1(F, y)
        slope = loss.dy_d1(F)
        if sw is not None:
            G, slope = G * sw, slope * sw
        gradient = pullback(self.C * G[None], Xd)[0] + theta * self._reg(p, theta)
        return LocalModel(theta, y, H, L, tensor, gradient, self.C * slope)

    def fit_near(self, Xd: torch.Tensor, Y: torch.Tensor, model: LocalModel, *,
                 sample_weight: torch.Tensor | None = None,
                 changed: tuple[torch.Tensor, torch.Tensor] | None = None, tol: float | None = None,
                 return_last: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Minimise J for every row of ``Y`` (labels close to ``model.y``) from the known optimum ``model``.

        Each iteration makes one pass over X for the exact gradient (the first needs none: the gradient at the
        anchor follows from the changed labels, see :class:`LocalModel`) and takes a step with the model's Hessian,
        corrected to first order in the distance from the anchor by its third-derivative tensor when there is
        one; the first step solves the anchor's cubic model of the gradient (a few (p, p) solves, no pass over
        X). Near the anchor the steps then shrink by about that distance squared (without a tensor: a chord
        iteration with the anchor's Hessian, accelerated by Anderson mixing of its last steps). No line search
        and no (K, p, p) Hessian from X: a batch of moves one or two flips from the anchor costs a few products
        with X instead of several per Newton step. The fixed point is the same optimum and the stopping rule is
        :meth:`fit_params`'s (every step below ``tol``, then taken); a member whose steps stop shrinking (ratio
        above ``NEAR_MAX_RATIO``; with Anderson mixing, a step larger than the one before), turn non-finite, or
        would need more than ``NEAR_MAX_ITER`` passes at their rate so far is solved by :meth:`fit_params` from
        the anchor instead.

        Args:
            Xd: design matrix, shape (n, p).
            Y: labels, shape (K, n), entries in [0, 1].
            model: the anchor (see :meth:`local_model`): one shared by every member, or one per member
                (theta (K, p), factor (K, p, p)).
            sample_weight: shape (n,) or None (the weights the model was built with).
            changed: optional (member (m,), row (m,)) index pairs holding every entry where ``Y`` differs from
                ``model.y`` (found by a scan of ``Y`` when None; extra pairs where they agree are harmless).
            tol: the stopping tolerance on the steps (default: the firm's ``tol``). A looser one stops after the
                first step below it, taken: the distance left to the optimum is then about q / (1 - q) times
                that step, q the iteration's contraction (below ``NEAR_MAX_RATIO`` with a tensor, where steps
                shrink by ~1e-3; about 0.16 for the plain chord step on Adult), so at most the step itself.
            return_last: also return each member's last step (max-norm; 0 where Newton took over).

        Returns:
            theta*, shape (K, p); with ``return_last``, (theta*, last step (K,)).
        """
        Y = torch.atleast_2d(Y.to(Xd))
        K, p = Y.shape[0], Xd.shape[1]
        loss, T, H0 = self.margin_loss, model.tensor, model.hessian
        anchor = model.theta.to(Xd).expand(K, p)
        L0 = model.factor  # (p, p) shared by every member, or (K, p, p) one per member
        per_member = L0.ndim == 3
        theta = anchor.clone()
        reg = self._reg(p, theta)
        failed = torch.zeros(K, dtype=torch.bool, device=Xd.device)
        # The members still iterating: their rows of theta, labels and last step size (compacted only when
        # some member leaves, so the (K, n) labels are not copied every pass).
        idx, th, Yw = torch.arange(K, device=Xd.device), theta, Y
        previous = torch.full((K,), math.inf, dtype=Xd.dtype, device=Xd.device)
        last = torch.zeros(K, dtype=Xd.dtype, device=Xd.device)
        tol = self.tol if tol is None else float(tol)
        history: list[tuple[torch.Tensor, torch.Tensor]] = []  # Anderson's (iterate, chord step) pairs

        def factors(delta: torch.Tensor) -> torch.Tensor:
            H = H0 + (delta @ T.T).reshape(-1, p, p)
            L, info = torch.linalg.cholesky_ex(H)
            bad = info > 0
            if bool(bad.any()):
                L[bad] = L0[bad] if per_member else L0
            return L

        def solve(L: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
            if L.ndim == 2:  # one factor, K right-hand sides (an expanded factor would be copied K times)
                return torch.cholesky_solve(g.T, L).T
            return torch.cholesky_solve(g.unsqueeze(-1), L).squeeze(-1)

        live = torch.ones(K, dtype=torch.bool, device=Xd.device)  # members of the working batch still iterating
        first = previous
        for it in range(min(self.max_iter, NEAR_MAX_ITER)):
            if not len(idx):
                break
            if it == 0 and model.gradient is not None:
                # At the anchor the gradient differs from the anchor's own only through the changed labels.
                if changed is None:
                    changed = (Yw != model.y).nonzero(as_tuple=True)
                weight = (Yw[changed] - model.y[changed[1]]) * model.label_slope[changed[1]]
                tilt = torch.sparse_coo_tensor(torch.stack(changed), weight, (len(idx), Xd.shape[0]),
                                               check_invariants=False)
                g = model.gradient + torch.sparse.mm(tilt, Xd)
            else:
                G = loss.d1(scores(th, Xd), Yw)
                if sample_weight is not None:
                    G = G * sample_weight
                g = pullback(self.C * G, Xd) + th * reg
            if T is None:
                step = solve(L0, g)
            elif it == 0:
                # Root of the cubic model g + H0 d + T[d, d] / 2 (Newton in p dimensions, from the linear root).
                d = -solve(L0, g)
                for _ in range(2):
                    Td = (d @ T.T).reshape(-1, p, p)
                    residual = g + d @ H0 + 0.5 * (Td @ d.unsqueeze(-1)).squeeze(-1)
                    d = d - solve(factors(d), residual)
                step = -d
            else:
                step = solve(factors(th - anchor), g)  # a tensor implies one shared anchor
            size = step.abs().amax(-1)
            diverging = ~torch.isfinite(size) | (size > (NEAR_MAX_RATIO if T is not None else 1.0) * previous)
            if it == 1:
                first = size.clone()
            elif it >= 3:
                # Give up early on members that would not reach the tolerance within NEAR_MAX_ITER passes at
                # their average rate so far (slow chord contraction: Newton does better there).
                rate = (size / first.clamp_min(torch.finfo(size.dtype).tiny)).clamp(1e-300, 1.0) ** (1.0 / (it - 1))
                needed = torch.log(torch.as_tensor(tol, dtype=size.dtype) / size.clamp_min(1e-300)) / torch.log(
                    rate.clamp(max=1.0 - 1e-12))
                diverging |= (size >= tol) & (it + needed > NEAR_MAX_ITER)
            done = size < tol
            finished = done & ~diverging & live
            theta[idx[finished]] = th[finished] - step[finished]
            last[idx[finished]] = size[finished]
            failed[idx[diverging & live]] = True
            if T is None:
                th, history = _anderson(th, step, history)
            else:
                th = th - step
            going = ~(done | diverging) & live
            # Members that stopped keep riding along (their rows are no longer read) until at most half of the
            # batch is live: compacting copies the (K, n) labels, which costs more than a few wasted rows.
            if 2 * int(going.sum()) <= len(going) or not bool(going.any()):
                idx, th, Yw, previous, live = idx[going], th[going], Yw[going], size[going], live[going]
                if it >= 1:
                    first = first[going]
                anchor = anchor[going]
                if per_member:
                    L0 = L0[going]
                history = [(x[going], f[going]) for x, f in history]
            else:
                previous, live = torch.where(going, size, previous), going
        failed[idx[live]] = True  # out of iterations
        if bool(failed.any()):
            rows = torch.nonzero(failed).squeeze(-1)
            large = p >= PCG_MIN_PARAMS
            shared = model.factor.ndim == 2
            theta[rows] = self.fit_params(Xd, Y[rows], sample_weight=sample_weight,
                                          init=model.theta.to(Xd).expand(K, p)[rows],
                                          preconditioner=model.factor if large and shared else None)
        return (theta, last) if return_last else theta

    def curvature(self, theta: torch.Tensor, Xd: torch.Tensor, Y: torch.Tensor, sw: torch.Tensor | None = None) -> torch.Tensor:
        """Per-row Hessian weights C * s_i * l''(f_i, y_i) for a batch: theta (K, p), Y (K, n) -> (K, n)."""
        W = self.margin_loss.d2(scores(theta, Xd), Y)
        if sw is not None:
            W = W * sw
        return self.C * W

    def hessian_product(self, W: torch.Tensor, Xd: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
        """H_k v_k for every batch member without forming H: W (K, n) from :meth:`curvature`, V (K, p) -> (K, p)."""
        return pullback(scores(V, Xd) * W, Xd) + V * self._reg(V.shape[-1], V)

    # ----- the solver -----
    def fit_params(
        self,
        Xd: torch.Tensor,
        Y: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        init: torch.Tensor | None = None,
        preconditioner: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Minimise J for every row of ``Y`` at once by damped Newton (backtracking Armijo line search).

        Args:
            Xd: design matrix with intercept column, shape (n, p) (see :meth:`design`); the solve runs on its
                device.
            Y: labels, shape (K, n) or (n,), entries in [0, 1] (soft labels allowed), on any device.
            sample_weight: shape (n,) non-negative weights, or None.
            init: warm start, shape (K, p) or (p,); zeros by default.
            preconditioner: optional Cholesky factor (p, p) of a reference Hessian close to every member's (e.g.
                the unflipped optimum's, when the labels differ from it in a few rows). Each Newton step is then
                solved by conjugate gradients preconditioned with it, from Hessian-vector products only: no
                (K, p, p) Hessian is formed, which pays off for large p.

        Returns:
            theta*, shape (K, p) (or (p,) when ``Y`` was 1-D).
        """
        squeeze = Y.ndim == 1
        # Labels, weights and warm start follow the design matrix's device and dtype (a no-op when they match).
        Y = torch.atleast_2d(Y.to(Xd))
        if sample_weight is not None:
            sample_weight = sample_weight.to(Xd)
        if Y.shape[-1] != Xd.shape[0]:
            raise FairflipError(f"labels have {Y.shape[-1]} entries but X has {Xd.shape[0]} rows")
        K, p = Y.shape[0], Xd.shape[1]
        if init is None:
            theta = torch.zeros(K, p, dtype=Xd.dtype, device=Xd.device)
        else:
            theta = torch.atleast_2d(init.to(Xd)).expand(K, p).clone()
        reg_eye = 1e-10 * torch.eye(p, dtype=Xd.dtype, device=Xd.device)
        reg = self._reg(p, theta)
        g_first = None
        # Scores F = theta X^T are kept in step with theta: the gradient, the curvature and every line-search
        # trial reuse them (a trial's scores are F - t * step X^T), so each iteration multiplies by X twice
        # (plus the step's solve) instead of four or more times.
        F = scores(theta, Xd)
        for _ in range(self.max_iter):
            G = self.margin_loss.d1(F, Y)
            if sample_weight is not None:
                G = G * sample_weight
            g = pullback(self.C * G, Xd) + theta * reg
            if preconditioner is not None:
                # Inexact Newton: the CG tolerance follows the gradient's decrease (loose far from the optimum,
                # tight near it), which keeps the local convergence superlinear at a fraction of the products.
                g_norm = float(g.norm(dim=-1).max())
                g_first = g_norm if g_first is None else g_first
                forcing = min(0.1, max(1e-10, g_norm / max(g_first, torch.finfo(g.dtype).tiny)))
                precondition = cholesky_preconditioner(preconditioner)
                # The step only has to be accurate to a fraction of ``tol`` in absolute terms: once it is tiny
                # (the last, confirming iteration), a relative accuracy of 1e-10 buys nothing. The
                # preconditioned gradient estimates the step's size without a product with X.
                estimate = float(precondition(g).abs().max())
                forcing = max(forcing, min(0.1, 1e-2 * self.tol / max(estimate, torch.finfo(g.dtype).tiny)))
                W = self._weights(F, Y, sample_weight)
                step = conjugate_gradient(lambda V: self.hessian_product(W, Xd, V), g, precondition=precondition,
                                          tol=forcing, max_iter=10 * p)
            else:
                H = self.hessian(theta, Xd, Y, sample_weight)
                L, info = torch.linalg.cholesky_ex(H)
                if bool((info > 0).any()):
                    L, _ = torch.linalg.cholesky_ex(H + reg_eye * (1 + H.diagonal(dim1=-2, dim2=-1).abs().max()))
                step = torch.cholesky_solve(g.unsqueeze(-1), L).squeeze(-1)
            if float(step.abs().max()) < self.tol:
                theta = theta - step
                break
            theta, F = self._line_search(theta, F, step, g, Xd, Y, sample_weight)
        return theta[0] if squeeze else theta

    def _weights(self, F: torch.Tensor, Y: torch.Tensor, sw: torch.Tensor | None) -> torch.Tensor:
        """Per-row Hessian weights from the scores F (K, n) -> (K, n) (as :meth:`curvature`, without X)."""
        W = self.margin_loss.d2(F, Y)
        if sw is not None:
            W = W * sw
        return self.C * W

    def _objective_at(self, F: torch.Tensor, theta: torch.Tensor, Y: torch.Tensor,
                      sw: torch.Tensor | None) -> torch.Tensor:
        """J from precomputed scores F = theta X^T, (K, n) -> (K,) (as :meth:`objective`, without X)."""
        L = self.margin_loss.value(F, Y)
        if sw is not None:
            L = L * sw
        return self.C * L.sum(-1) + 0.5 * (theta[..., :-1] ** 2).sum(-1)

    def _line_search(self, theta, F, step, g, Xd, Y, sw) -> tuple[torch.Tensor, torch.Tensor]:
        """Backtracking Armijo search along -step; returns the new theta and its scores."""
        J0 = self._objective_at(F, theta, Y, sw)
        S = scores(step, Xd)
        decrease = (g * step).sum(-1)
        t = torch.ones_like(J0)
        slack = 1e-13 * (1 + J0.abs())
        for _ in range(40):
            cand = theta - t.unsqueeze(-1) * step
            ok = self._objective_at(F - t.unsqueeze(-1) * S, cand, Y, sw) <= J0 - 1e-4 * t * decrease + slack
            if bool(ok.all()):
                break
            t = torch.where(ok, t, 0.5 * t)
        # The accepted trial's scores are already known; updating them drifts from theta X^T only by rounding.
        return theta - t.unsqueeze(-1) * step, F - t.unsqueeze(-1) * S

    # ----- numpy-facing API -----
    def training_state(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> dict:
        """What batched retraining on the rows X reuses between calls, on the firm's device.

        Args:
            X: shape (n, d) features; y: shape (n,) the unflipped labels; sample_weight: shape (n,) or None.

        Returns:
            dict with ``firm`` (this firm), ``Xd`` (n, p) design matrix, ``sw`` (n,) weights tensor or None,
            ``theta0`` (p,) the unflipped optimum (every retraining's warm start) and ``factor``: the Cholesky
            factor (p, p) of the unflipped Hessian when p >= PCG_MIN_PARAMS (retraining then preconditions
            Newton steps with it instead of forming K Hessians), else None.
        """
        Xd = self.design(X)
        sw = None if sample_weight is None else torch.as_tensor(sample_weight, dtype=self.dtype, device=Xd.device)
        y0 = torch.as_tensor(y, dtype=self.dtype, device=Xd.device)
        large = Xd.shape[1] >= PCG_MIN_PARAMS
        start, start_factor = None, None
        if large and sparse_twin(Xd) is not None:
            # Large, sparse design on the CPU: Newton-CG preconditioned by the Hessian at the start (one dense
            # Hessian) with the twin's cheap products, instead of one dense Hessian per Newton step
            # (benchmarks/bench_design.py on KDD: 1.4 s instead of 3.0 s at n = 20,000, 9.6 s instead of 14.4 s
            # at n = 100,000, same optimum to 2e-11).
            start = torch.zeros(Xd.shape[1], dtype=self.dtype, device=Xd.device)
            start_factor = self.hessian_factor(start, Xd, y0, sw)
        theta0 = self.fit_params(Xd, y0, sample_weight=sw, init=start, preconditioner=start_factor)
        factor = self.hessian_factor(theta0, Xd, y0, sw) if large else None
        return {"firm": self, "Xd": Xd, "sw": sw, "theta0": theta0, "factor": factor}

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> LinearModel:
        """Train on hard labels.

        Args:
            X: shape (n, d) design matrix (already prepared, without intercept column).
            y: shape (n,) labels in {0, 1}.
            sample_weight: shape (n,) non-negative weights, or None.

        Returns:
            the fitted :class:`LinearModel` (numpy, float64).
        """
        y = check_binary("y", y)
        theta = self.fit_many(X, y[None, :], sample_weight=sample_weight)[0]
        return self.model_from_params(theta)

    def fit_many(self, X: np.ndarray, Y: np.ndarray, sample_weight: np.ndarray | None = None) -> np.ndarray:
        """Train one model per row of ``Y`` (shape (K, n), labels in [0, 1]) on the same X (n, d) -> (K, d + 1)."""
        Xd = self.design(X)
        Yt = torch.as_tensor(np.asarray(Y), dtype=self.dtype, device=Xd.device)
        if Yt.ndim != 2:
            raise FairflipError(f"Y must have shape (K, n), got {tuple(Yt.shape)}")
        # NaN would not stop Newton: it would run to max_iter and return NaN parameters silently.
        if not bool(((Yt >= 0) & (Yt <= 1)).all()):
            raise FairflipError("labels Y must lie in [0, 1] (no NaN)")
        sw = None
        if sample_weight is not None:
            sw = torch.as_tensor(np.asarray(sample_weight), dtype=self.dtype, device=Xd.device)
            if sw.shape != (Xd.shape[0],) or not bool(((sw >= 0) & torch.isfinite(sw)).all()):
                raise FairflipError("sample_weight must be a finite non-negative vector with one entry per row")
        return self.fit_params(Xd, Yt, sample_weight=sw).cpu().numpy()

    def model_from_params(self, theta: np.ndarray) -> LinearModel:
        """Wrap a parameter vector (shape (d + 1,), intercept last) as a :class:`LinearModel`."""
        theta = np.asarray(theta, dtype=np.float64)
        return LinearModel(theta[:-1].copy(), float(theta[-1]), self.score_threshold, self.loss)

    def predict_many(self, X: np.ndarray, thetas: np.ndarray) -> np.ndarray:
        """Predictions of K parameter vectors (shape (K, d + 1)) on X (n, d) -> (K, n) int64."""
        thetas = np.atleast_2d(thetas)
        scores = np.asarray(X, dtype=np.float64) @ thetas[:, :-1].T + thetas[:, -1]
        return (scores.T > self.score_threshold).astype(np.int64)

    def predict_decided(self, Xd: torch.Tensor, thetas: torch.Tensor,
                        radius: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Predictions of K parameter vectors known only to within ``radius`` of the true ones, and whether they
        are certain.

        A row's score moves by at most ||x||_1 * radius_k (x with its intercept entry) when theta_k moves by
        radius_k in max-norm, so member k's predictions are those of every parameter vector within its radius
        when each row's score is farther than that from the threshold.

        Args:
            Xd: shape (m, p) design matrix of the rows (see :meth:`design`).
            thetas: shape (K, p) parameter vectors.
            radius: shape (K,) max-norm bounds on their distance to the parameters whose predictions are wanted.

        Returns:
            (predictions (K, m) int64, decided (K,) bool), NumPy.
        """
        thetas = torch.atleast_2d(thetas.to(Xd))
        shifted = scores(thetas, Xd) - self.score_threshold  # (K, m)
        reach = radius.to(Xd)[:, None] * _row_l1(Xd)[None, :]
        decided = (shifted.abs() > reach).all(-1)
        return (shifted > 0).to(torch.int64).cpu().numpy(), decided.cpu().numpy()
