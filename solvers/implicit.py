"""Implicit differentiation of the firm's training problem with respect to its labels.

At the firm's optimum theta*(y) the optimality condition is grad_theta J(theta*, y) = 0. Differentiating it in a
label y_j gives  H dtheta*/dy_j + d/dy_j grad_theta J = 0, with H the (regularised) Hessian, and since every
firm loss is linear in y (see fairflip.firms.losses),

    d/dy_j grad_theta J = C * s_j * dy_d1(f_j) * xt_j,         xt_j = [x_j, 1],

so  dtheta*/dy_j = -C s_j dy_d1(f_j) H^{-1} xt_j.  For the logistic firm dy_d1 = -1, giving the influence
direction C H^{-1} xt_j of the paper's extension; for the ridge firm dy_d1 = -2, the closed form
2 C (C Xt^T Xt + R)^{-1} xt_j. A relaxed flip z_j moves the label by (1 - 2 y_j) z_j, so dtheta*/dz_j is
dtheta*/dy_j times (1 - 2 y_j).
"""

from __future__ import annotations

import torch

from fairflip.firms import LinearFirm


def label_jacobian(
    firm: LinearFirm,
    Xd: torch.Tensor,
    theta: torch.Tensor,
    rows: torch.Tensor,
    *,
    sample_weight: torch.Tensor | None = None,
    hessian: torch.Tensor | None = None,
    y: torch.Tensor | None = None,
) -> torch.Tensor:
    """dtheta*/dy for the labels of ``rows``, by one Cholesky solve with the inner Hessian.

    Args:
        firm: the linear firm.
        Xd: design matrix with intercept column, shape (n, p).
        theta: the firm's optimum for the current labels, shape (p,).
        rows: shape (c,) int64 indices of the labels to differentiate.
        sample_weight: shape (n,) weights the firm trains with, or None.
        hessian: the inner Hessian at theta, shape (p, p) (computed from ``y`` when None).
        y: current (soft) labels, shape (n,); needed only when ``hessian`` is None.

    Returns:
        shape (p, c): column k is dtheta*/dy_{rows[k]}.
    """
    if hessian is None:
        if y is None:
            raise ValueError("label_jacobian needs either hessian or y")
        hessian = firm.hessian(theta[None], Xd, y[None], sample_weight)[0]
    Xr = Xd[rows]
    f = Xr @ theta
    coef = -firm.C * firm.margin_loss.dy_d1(f)
    if sample_weight is not None:
        coef = coef * sample_weight[rows]
    rhs = (Xr * coef[:, None]).T
    L = torch.linalg.cholesky(hessian)
    return torch.cholesky_solve(rhs, L)
