"""Batched (preconditioned) conjugate gradients: solve many symmetric positive definite systems from products."""

from __future__ import annotations

from typing import Callable

import torch

MatVec = Callable[[torch.Tensor], torch.Tensor]


def conjugate_gradient(
    matvec: MatVec,
    b: torch.Tensor,
    *,
    precondition: MatVec | None = None,
    tol: float = 1e-13,
    max_iter: int | None = None,
) -> torch.Tensor:
    """Solve A x = b for a batch of symmetric positive definite systems given only x -> A x.

    Args:
        matvec: maps (B, p) -> (B, p), the products A_b x_b.
        b: shape (B, p) right-hand sides.
        precondition: optional map r -> P^{-1} r, shape (B, p) -> (B, p), with P symmetric positive definite and
            close to A (e.g. a Cholesky solve with a reference Hessian); None is the identity.
        tol: stop when every residual norm is below tol times its right-hand side's norm.
        max_iter: iteration cap (default 10 p).

    Returns:
        x, shape (B, p).
    """
    tiny = torch.finfo(b.dtype).tiny
    x = torch.zeros_like(b)
    r = b.clone()
    zr = r if precondition is None else precondition(r)
    d = zr.clone()
    rz = (r * zr).sum(-1)
    target = (tol * b.norm(dim=-1)) ** 2
    for _ in range(max_iter or 10 * b.shape[-1]):
        if bool(((r * r).sum(-1) <= target).all()):
            break
        Ad = matvec(d)
        curv = (d * Ad).sum(-1)
        # Converged systems have d = 0; keep their step at zero instead of dividing 0 by 0.
        alpha = torch.where(curv > 0, rz / curv.clamp_min(tiny), torch.zeros_like(rz))
        x = x + alpha[:, None] * d
        r = r - alpha[:, None] * Ad
        zr = r if precondition is None else precondition(r)
        rz_new = (r * zr).sum(-1)
        d = zr + (rz_new / rz.clamp_min(tiny))[:, None] * d
        rz = rz_new
    return x


def cholesky_preconditioner(factor: torch.Tensor) -> MatVec:
    """r -> P^{-1} r for P = L L^T given its Cholesky factor L (p, p); r of shape (B, p)."""
    return lambda r: torch.cholesky_solve(r.T, factor).T
