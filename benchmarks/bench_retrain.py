"""Benchmark 2: batched retraining of K flip sets versus a loop of scikit-learn fits on the same data."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from fairflip.firms import LinearFirm
from fairflip.firms.linear import PCG_MIN_PARAMS

from ._harness import measure


def make_problem(n: int, d: int, K: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random logistic data X (n, d) and K label vectors (K, n), each a distinct set of 1% flips."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    w = rng.normal(size=d) / np.sqrt(d)
    y = (rng.random(n) < 1 / (1 + np.exp(-(X @ w)))).astype(np.float64)
    Y = np.repeat(y[None], K, axis=0)
    for k in range(K):
        rows = rng.choice(n, size=max(1, n // 100), replace=False)
        Y[k, rows] = 1 - Y[k, rows]
    return X, Y


def run(*, n: int = 50_000, d: int = 50, K: int = 64, device: str | None = None, sklearn_fits: int | None = None) -> dict:
    """Time fairflip's batched Newton (warm-started at the unflipped solution) against sklearn fits.

    ``sklearn_fits`` fits only that many of the K sets with sklearn and extrapolates its time linearly
    (stated in the result), to keep the run short; every fitted set is compared with fairflip's solution.
    """
    X, Y = make_problem(n, d, K)
    firm = LinearFirm("logistic", C=1.0, device=device)
    dev = firm.torch_device
    Xd = firm.design(X)
    Yt = torch.as_tensor(Y, dtype=firm.dtype, device=dev)
    sync = dev.type == "cuda"

    precondition = Xd.shape[1] >= PCG_MIN_PARAMS  # the rule FlipProblem's batched retraining follows

    def batched():
        base = firm.fit_params(Xd, Yt[0])  # the unflipped-ish solution as a shared warm start
        factor = None
        if precondition:
            factor = torch.linalg.cholesky(firm.hessian(base[None], Xd, Yt[:1])[0])
        return firm.fit_params(Xd, Yt, init=base, preconditioner=factor)

    batched()  # warm-up (CUDA context, allocator)
    name = "fairflip batched Newton" + (" (CG, base-Hessian preconditioner)" if precondition else "")
    m_batched = measure(name, batched, cuda_sync=sync)
    thetas = m_batched.value.cpu().numpy()
    n_sk = K if sklearn_fits is None else min(K, sklearn_fits)
    rows = []
    for solver in ("lbfgs", "newton-cholesky"):
        def loop(solver=solver):
            out = []
            for k in range(n_sk):
                est = LogisticRegression(C=1.0, solver=solver, tol=1e-10, max_iter=10_000).fit(X, Y[k])
                out.append(np.r_[np.ravel(est.coef_), est.intercept_])
            return np.array(out)
        m = measure(f"sklearn {solver} loop", loop)
        total = m.seconds * K / n_sk
        err = float(np.abs(m.value - thetas[:n_sk]).max())
        rows.append({"method": m.name, "seconds_for_K": total, "peak_mb": m.peak_mb, "rss_mb": m.rss_mb,
                     "max_abs_param_diff": err, "speedup_of_batched": total / m_batched.seconds,
                     "extrapolated_from": n_sk})
    rows.insert(0, {"method": m_batched.name, "seconds_for_K": m_batched.seconds, "peak_mb": m_batched.peak_mb,
                    "rss_mb": m_batched.rss_mb, "max_abs_param_diff": 0.0, "speedup_of_batched": 1.0,
                    "extrapolated_from": K})
    return {"benchmark": "retrain", "n": n, "d": d, "K": K, "device": str(dev),
            "threads": torch.get_num_threads(), "rows": rows}
