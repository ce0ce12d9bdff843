"""Hypergradient of a surrogate objective with respect to relaxed flips z, for linear firms.

The relaxed bilevel problem (the oracle's continuous relaxation):

    labels      y(z)_i = y_i + z_k (1 - 2 y_i)   for candidate i = rows[k], z in [0, 1]^c; other labels fixed
    inner       theta*(z) = argmin_theta J(theta; y(z))            (the firm's own training problem)
    outer       L(z) = S(X_eval theta*(z) - t; y_eval, a_eval)     (a smooth surrogate S of the objective)

Two ways to get dL/dz, each batched over B relaxed flip vectors (e.g. one per budget):

- ``implicit``: differentiate the optimality condition grad_theta J(theta*, y) = 0. With v = H^{-1} dL/dtheta
  (one Hessian solve: Cholesky for small p, matrix-free conjugate gradient for large p),
  dL/dy = -d/dy [v . grad_theta J(theta*, y)], in closed form from the loss's mixed derivative ``dy_d1`` (the
  firm's gradient is linear in y), then dL/dz_k = dL/dy_{rows[k]} (1 - 2 y_{rows[k]}).
- ``unrolled``: run K Newton (or gradient) steps of the inner problem from a fixed start inside torch autograd
  and backpropagate through them; it approaches the implicit gradient as K grows (an ablation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from fairflip._errors import FairflipError
from fairflip.firms import LinearFirm
from fairflip.linalg import cholesky_preconditioner, conjugate_gradient
from fairflip.surrogates import FairnessSurrogate

LinearSolver = Literal["auto", "cholesky", "cg"]
UnrollKind = Literal["newton", "gradient"]
# Above this many parameters the Hessian is no longer formed: CG uses Hessian-vector products only.
CHOLESKY_MAX_PARAMS = 2000


@dataclass
class SoftFlipBilevel:
    """The relaxed flip problem of one firm on one training set, with everything as torch tensors.

    Attributes:
        firm: the linear firm (its device and dtype are used throughout).
        Xd: shape (n, p) training design matrix with intercept column.
        y: shape (n,) original training labels (float).
        rows: shape (c,) int64 candidate rows.
        X_eval: shape (m, p) design matrix of the rows the objective is measured on.
        y_eval: shape (m,) their original labels; a_eval: shape (m,) their minority indicator.
        surrogate: the smooth objective S.
        sample_weight: shape (n,) training weights, or None.
        hessian_factor: optional Cholesky factor (p, p) of a reference inner Hessian (the unflipped optimum's):
            inner solves precondition Newton steps with it and ``auto`` Hessian solves use preconditioned CG.
        theta_start: optional (p,) warm start of inner solves given none (the unflipped optimum).
    """

    firm: LinearFirm
    Xd: torch.Tensor
    y: torch.Tensor
    rows: torch.Tensor
    X_eval: torch.Tensor
    y_eval: torch.Tensor
    a_eval: torch.Tensor
    surrogate: FairnessSurrogate
    sample_weight: torch.Tensor | None = None
    hessian_factor: torch.Tensor | None = None
    theta_start: torch.Tensor | None = None

    @property
    def sign(self) -> torch.Tensor:
        """Direction of each candidate's flip, 1 - 2 y_i, shape (c,)."""
        return 1.0 - 2.0 * self.y[self.rows]

    def labels(self, z: torch.Tensor) -> torch.Tensor:
        """Soft training labels y(z), z shape (B, c) -> (B, n) (differentiable in z)."""
        Y = self.y.expand(z.shape[0], -1).clone()
        Y[:, self.rows] = self.y[self.rows] + z * self.sign
        return Y

    def inner(self, z: torch.Tensor, init: torch.Tensor | None = None, model=None) -> torch.Tensor:
        """theta*(z), z (B, c) -> (B, p): by the firm's damped Newton warm-started at ``init`` (B, p), or, given
        ``model`` (a batched :class:`~fairflip.firms.linear.LocalModel` of B anchors, e.g. the previous step's
        optima), by the firm's ``fit_near`` from it (a few passes over X, no Hessian per iteration)."""
        Y = self.labels(z.detach())
        if model is not None:
            return self.firm.fit_near(self.Xd, Y, model, sample_weight=self.sample_weight)
        return self.firm.fit_params(self.Xd, Y, sample_weight=self.sample_weight,
                                    init=self.theta_start if init is None else init,
                                    preconditioner=self.hessian_factor)

    def newton_step(self, z: torch.Tensor, theta: torch.Tensor, factor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One Newton step of the inner problem for the labels y(z) from ``theta`` (B, p), with ``factor`` (B, p, p)
        the Cholesky factors of the Hessians at ``theta`` (e.g. the previous relaxation step's local model, whose
        labels differ from y(z) by one projected step: for a loss whose curvature does not depend on the label,
        such as the logistic and squared losses, this is the exact Newton step). Costs one pass over X.

        Returns:
            (theta - H^{-1} grad J(theta; y(z)) (B, p), the step's max-norm (B,)).
        """
        g = self.firm.gradient(theta, self.Xd, self.labels(z.detach()), self.sample_weight)
        step = torch.cholesky_solve(g.unsqueeze(-1), factor).squeeze(-1)
        return theta - step, step.abs().amax(-1)

    def local_model(self, z: torch.Tensor, theta: torch.Tensor):
        """The firm's batched local model at theta (B, p) for the labels y(z), or None (a firm without
        ``local_model``; a Hessian not positive definite). With a ``hessian_factor`` (large p) the model holds
        that reference factor instead of the exact Hessians at theta: good enough to start the next inner solve
        from, not for the hypergradient's solve."""
        from fairflip.problem import local_models_affordable

        if not hasattr(self.firm, "local_model") or not local_models_affordable(self.Xd):
            return None  # census-size tables: preconditioned Newton inner solves, as for retraining
        return self.firm.local_model(theta, self.Xd, self.labels(z.detach()), self.sample_weight, third_order=False,
                                     factor=self.hessian_factor)

    def outer(self, theta: torch.Tensor) -> torch.Tensor:
        """Surrogate value of each parameter vector, theta (B, p) -> (B,)."""
        margins = theta @ self.X_eval.T - self.firm.score_threshold
        return self.surrogate(margins, self.y_eval, self.a_eval)


def _solve_hessian(problem: SoftFlipBilevel, theta: torch.Tensor, Y: torch.Tensor, g: torch.Tensor,
                   solver: LinearSolver) -> torch.Tensor:
    """v = H(theta, Y)^{-1} g for a batch: theta, g (B, p), Y (B, n) -> (B, p)."""
    firm, Xd, sw = problem.firm, problem.Xd, problem.sample_weight
    p = theta.shape[-1]
    if solver == "auto" and problem.hessian_factor is not None:
        # Closed-form Hessian-vector products preconditioned by the reference Hessian: O(B n p) per product
        # instead of O(B n p^2) to form the B Hessians.
        W = firm.curvature(theta, Xd, Y, sw)
        return conjugate_gradient(lambda V: firm.hessian_product(W, Xd, V), g,
                                  precondition=cholesky_preconditioner(problem.hessian_factor), tol=1e-10)
    if solver == "auto":
        solver = "cholesky" if p <= CHOLESKY_MAX_PARAMS else "cg"
    if solver == "cholesky":
        L = torch.linalg.cholesky(firm.hessian(theta, Xd, Y, sw))
        return torch.cholesky_solve(g.unsqueeze(-1), L).squeeze(-1)
    if solver != "cg":
        raise FairflipError(f"linear solver must be auto, cholesky or cg, got {solver!r}")
    th = theta.detach().requires_grad_(True)
    with torch.enable_grad():
        grad = firm.gradient(th, Xd, Y, sw)

        def hvp(v: torch.Tensor) -> torch.Tensor:
            # d/dtheta (v . grad J) = H v, as H is symmetric; no p x p matrix is formed.
            return torch.autograd.grad(grad, th, grad_outputs=v, retain_graph=True)[0]

        return conjugate_gradient(hvp, g)


def implicit_hypergradient(
    problem: SoftFlipBilevel, z: torch.Tensor, theta: torch.Tensor, *, solver: LinearSolver = "auto",
    factor: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Surrogate value and dL/dz at the inner optimum, by implicit differentiation.

    Args:
        problem: the relaxed bilevel problem.
        z: shape (B, c) relaxed flips.
        theta: shape (B, p) the inner optimum theta*(z) (e.g. from :meth:`SoftFlipBilevel.inner`).
        solver: ``cholesky`` (forms H, small p), ``cg`` (Hessian-vector products, large p) or ``auto``
            (preconditioned CG when the problem has a ``hessian_factor``, else by p).
        factor: optional Cholesky factors (B, p, p) of the Hessians at (theta, y(z)), already computed (e.g.
            by :meth:`SoftFlipBilevel.local_model`); the solve then uses them and forms nothing.

    Returns:
        (L (B,), dL/dz (B, c)).
    """
    firm, Xd, sw = problem.firm, problem.Xd, problem.sample_weight
    with torch.enable_grad():
        th = theta.detach().requires_grad_(True)
        value = problem.outer(th)
        g = torch.autograd.grad(value.sum(), th)[0]
    if factor is not None:
        v = torch.cholesky_solve(g.unsqueeze(-1), factor).squeeze(-1)
    else:
        v = _solve_hessian(problem, theta.detach(), problem.labels(z.detach()), g, solver)
    # grad_theta J = C X^T (sw * l'(f, y)) + reg theta is linear in the labels with d l'/dy = dy_d1(f) (the
    # loss's mixed derivative), so d/dy_i [v . grad_theta J] = C sw_i dy_d1(f_i) (x_i . v), in closed form;
    # only the candidate rows are needed.
    Xc = Xd[problem.rows]
    mixed = firm.margin_loss.dy_d1(theta.detach() @ Xc.T) * firm.C
    if sw is not None:
        mixed = mixed * sw[problem.rows]
    dL_dY = -mixed * (v @ Xc.T)
    return value.detach(), dL_dY * problem.sign


def unrolled_hypergradient(
    problem: SoftFlipBilevel,
    z: torch.Tensor,
    theta0: torch.Tensor,
    *,
    steps: int = 10,
    kind: UnrollKind = "newton",
    step_size: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Surrogate value and dL/dz by differentiating through ``steps`` inner iterations (an ablation).

    Args:
        problem: the relaxed bilevel problem.
        z: shape (B, c) relaxed flips.
        theta0: shape (B, p) starting parameters (treated as constants).
        steps: number of unrolled iterations K >= 1.
        kind: ``newton`` (full Newton steps) or ``gradient`` (gradient descent).
        step_size: gradient-descent step; default 1 / (a bound on the Hessian's largest eigenvalue at theta0).

    Returns:
        (L (B,), dL/dz (B, c), theta_K (B, p)), L evaluated at theta_K.
    """
    if steps < 1:
        raise FairflipError(f"unrolled differentiation needs at least one step, got {steps}")
    if kind not in ("newton", "gradient"):
        raise FairflipError(f"unroll kind must be newton or gradient, got {kind!r}")
    firm, Xd, sw = problem.firm, problem.Xd, problem.sample_weight
    with torch.enable_grad():
        zg = z.detach().requires_grad_(True)
        Y = problem.labels(zg)
        theta = theta0.detach()
        if kind == "gradient" and step_size is None:
            H0 = firm.hessian(theta, Xd, Y.detach(), sw)
            # Frobenius norm bounds the largest eigenvalue; with the loss's curvature changing along the path
            # a factor 2 keeps the step safely below 2 / lambda_max.
            step_size = 1.0 / (2.0 * float(torch.linalg.matrix_norm(H0).max()))
        for _ in range(steps):
            grad = firm.gradient(theta, Xd, Y, sw)
            if kind == "newton":
                H = firm.hessian(theta, Xd, Y, sw)
                theta = theta - torch.linalg.solve(H, grad.unsqueeze(-1)).squeeze(-1)
            else:
                theta = theta - step_size * grad
        value = problem.outer(theta)
        dz = torch.autograd.grad(value.sum(), zg)[0]
    return value.detach(), dz, theta.detach()
