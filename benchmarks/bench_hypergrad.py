"""Benchmark 1: the hypergradient dL/dz of the relaxed flip problem, four ways on the same logistic problem.

- implicit: one Newton solve of the inner problem (warm-started at the unflipped optimum) and one Hessian solve
  (:func:`fairflip.solvers.hypergrad.implicit_hypergradient`), the oracle's default;
- unrolled: backpropagation through ``unroll_steps`` Newton steps from the unflipped optimum;
- finite differences: central differences, 2 c inner solves (c candidates), both batched as fairflip retrains
  them (the strongest FD baseline) and one solve at a time (the usual FD loop);
- cvxpylayers (when installed): the inner problem as a differentiable exponential-cone program solved at tight
  tolerance, then autograd through the layer.

Agreement is the relative L2 error of each gradient against the implicit one.
"""

from __future__ import annotations

import numpy as np
import torch

from fairflip.firms import LinearFirm
from fairflip.solvers.hypergrad import SoftFlipBilevel, implicit_hypergradient, unrolled_hypergradient
from fairflip.surrogates import FairnessSurrogate

from ._harness import measure


def make_bilevel(n: int, d: int, *, candidates: int, device: str | None, seed: int = 0) -> tuple[SoftFlipBilevel, torch.Tensor]:
    """A random two-group logistic problem with ``candidates`` minority rows labelled 0 as the flippable rows.

    Returns:
        (the relaxed bilevel problem, z of shape (1, c) drawn uniformly in [0.1, 0.5]).
    """
    rng = np.random.default_rng(seed)
    a = (rng.random(n) < 0.3).astype(np.float64)
    X = rng.normal(size=(n, d))
    X[:, 0] -= 0.5 * a
    w = rng.normal(size=d) / np.sqrt(d)
    y = (rng.random(n) < 1 / (1 + np.exp(-(X @ w - 0.8 * a)))).astype(np.float64)
    X[:, -1] = a  # the firm sees the group
    firm = LinearFirm("logistic", C=1.0, device=device)
    dev = firm.torch_device
    Xd = firm.design(X)
    pool = np.flatnonzero((a == 1) & (y == 0))
    rows = np.sort(rng.choice(pool, size=min(candidates, len(pool)), replace=False))
    yt = torch.as_tensor(y, dtype=firm.dtype, device=dev)
    at = torch.as_tensor(a, dtype=firm.dtype, device=dev)
    bilevel = SoftFlipBilevel(firm, Xd, yt, torch.as_tensor(rows, device=dev), Xd, yt, at,
                              FairnessSurrogate("eqod", "sigmoid", 0.5))
    z = torch.as_tensor(rng.uniform(0.1, 0.5, size=(1, len(rows))), dtype=firm.dtype, device=dev)
    return bilevel, z


def finite_differences(bilevel: SoftFlipBilevel, z: torch.Tensor, theta: torch.Tensor, *, h: float,
                       chunk: int = 256) -> torch.Tensor:
    """Central differences of L along every coordinate of z (shape (1, c)), 2 c warm-started inner solves,
    ``chunk`` coordinates (2 chunk solves) per batched Newton call."""
    c = z.shape[1]
    eye = torch.eye(c, dtype=z.dtype, device=z.device)
    out = []
    for s in range(0, c, chunk):
        e = h * eye[s:s + chunk]
        both = torch.cat([z + e, z - e])
        values = bilevel.outer(bilevel.inner(both, init=theta))
        out.append((values[:len(e)] - values[len(e):]) / (2 * h))
    return torch.cat(out)[None]


def cvxpylayers_gradient(bilevel: SoftFlipBilevel, z: torch.Tensor, *, eps: float) -> torch.Tensor:
    """dL/dz through a CvxpyLayer of the logistic training problem (parameter: the labels), on the CPU.

    SCS solves the exponential-cone program to ``eps``; diffcp's derivative uses LSMR (its default LSQR stops at
    about 1e-5 relative accuracy, and the dense mode is far too slow at this size).
    """
    import cvxpy as cp
    from cvxpylayers.torch import CvxpyLayer

    firm = bilevel.firm
    Xd = bilevel.Xd.cpu().numpy()
    n, p = Xd.shape
    theta = cp.Variable(p)
    labels = cp.Parameter(n)
    scores = Xd @ theta
    # C * sum(log(1 + e^f) - y f) + 0.5 ||w||^2 is the logistic firm's objective (intercept not penalised).
    objective = firm.C * (cp.sum(cp.logistic(scores)) - labels @ scores) + 0.5 * cp.sum_squares(theta[:-1])
    layer = CvxpyLayer(cp.Problem(cp.Minimize(objective)), parameters=[labels], variables=[theta])
    zc = z.detach().cpu().requires_grad_(True)
    y = bilevel.y.cpu()
    rows = bilevel.rows.cpu()
    Y = y.clone().expand(1, -1).clone()
    Y[:, rows] = y[rows] + zc * (1 - 2 * y[rows])
    (th,) = layer(Y[0], solver_args={"eps": eps, "max_iters": 100_000, "mode": "lsmr"})
    margins = th @ bilevel.X_eval.cpu().T - firm.score_threshold
    value = bilevel.surrogate(margins[None], bilevel.y_eval.cpu(), bilevel.a_eval.cpu())
    value.sum().backward()
    return zc.grad


def run(*, n: int = 2_000, d: int = 20, candidates: int = 300, unroll_steps: int = 10, fd_step: float = 1e-5,
        cvxpy_eps: float = 1e-10, device: str | None = None) -> dict:
    """Time and compare the four hypergradients; ``cvxpylayers`` is skipped (row says why) when not installed."""
    bilevel, z = make_bilevel(n, d, candidates=candidates, device=device)
    sync = bilevel.Xd.device.type == "cuda"
    theta0 = bilevel.inner(torch.zeros_like(z))

    def implicit():
        theta = bilevel.inner(z, init=theta0)
        return implicit_hypergradient(bilevel, z, theta)[1]

    implicit()  # warm-up (allocator, CUDA context)
    m_imp = measure("implicit (Newton + 1 Hessian solve)", implicit, repeats=3, cuda_sync=sync)
    g_ref = m_imp.value
    theta = bilevel.inner(z, init=theta0)
    runs = [m_imp,
            measure(f"unrolled ({unroll_steps} Newton steps)",
                    lambda: unrolled_hypergradient(bilevel, z, theta0, steps=unroll_steps)[1], cuda_sync=sync),
            measure(f"central differences, batched (h={fd_step:g}, {2 * z.shape[1]} solves)",
                    lambda: finite_differences(bilevel, z, theta, h=fd_step), cuda_sync=sync),
            measure(f"central differences, one solve at a time (h={fd_step:g})",
                    lambda: finite_differences(bilevel, z, theta, h=fd_step, chunk=1), cuda_sync=sync)]
    rows = []
    try:
        import cvxpylayers  # noqa: F401  (optional: only this benchmark uses it)
        have_layers = True
    except ImportError:
        have_layers = False
    if have_layers:
        runs.append(measure(f"cvxpylayers (SCS eps={cvxpy_eps:g}, LSMR)", lambda: cvxpylayers_gradient(bilevel, z, eps=cvxpy_eps)))
    for m in runs:
        g = m.value.to(g_ref)
        rows.append({"method": m.name, "seconds": m.seconds, "implicit_speedup": m.seconds / m_imp.seconds,
                     "rel_error_vs_implicit": float((g - g_ref).norm() / g_ref.norm()),
                     "peak_mb": m.peak_mb, "rss_mb": m.rss_mb})
    if not have_layers:
        rows.append({"method": "cvxpylayers (not installed: skipped)", "seconds": float("nan")})
    return {"benchmark": "hypergrad", "n": n, "d": d, "candidates": int(z.shape[1]),
            "device": str(bilevel.Xd.device), "threads": torch.get_num_threads(), "rows": rows}
