"""Benchmark 7: the CPU paths for sparse, mostly one-hot data, each against the path it replaces, same results.

1. Hessian-vector products H v = X^T (w * X v) + reg v for batches of 1 to 64 vectors: dense matrix against its
   CSR twin (``fairflip/firms/design.py``).
2. The unflipped fit: damped Newton forming one dense Hessian per step against Newton-CG preconditioned by the
   Hessian at the start (what ``FlipProblem.training_state`` runs when the design has a twin).
3. Scoring a local search's moves (swaps of one row of a current flip set): Newton from the unflipped optimum
   against Newton from the current set's optimum with its Hessian as the preconditioner (``around=``).

Data: KDD census-income subsampled to n rows when a data home holds it (``FAIRFLIP_DATA``), else a synthetic
one-hot matrix of KDD's density; the result says which. CPU only: on CUDA no twin is attached.
"""

from __future__ import annotations

import os
from typing import Literal

import numpy as np
import torch

from fairflip.collective import make_collective
from fairflip.firms import LinearFirm
from fairflip.firms.design import sparse_twin
from fairflip.problem import FlipProblem

from ._harness import measure
from .bench_oracle import load_source, subsample_problem


def one_hot_matrix(n: int, blocks: int = 6, levels: int = 10, numeric: int = 2, seed: int = 0) -> np.ndarray:
    """n rows of ``numeric`` Gaussian columns followed by ``blocks`` one-hot blocks of ``levels`` columns each."""
    rng = np.random.default_rng(seed)
    X = np.zeros((n, numeric + blocks * levels))
    X[:, :numeric] = rng.normal(size=(n, numeric))
    for b in range(blocks):
        X[np.arange(n), numeric + b * levels + rng.integers(0, levels, size=n)] = 1.0
    return X


def _problem(n: int, source: Literal["auto", "synthetic"], firm: LinearFirm, seed: int) -> tuple[FlipProblem, str]:
    """KDD's first n rows prepared as in the oracle benchmark, or a synthetic one-hot problem (30% collective, up)."""
    if source == "auto" and os.environ.get("FAIRFLIP_DATA"):
        data, described = load_source(n, source="auto", seed=seed)
        if described.startswith("kdd"):
            return subsample_problem(data, n, firm=firm, seed=seed), described
    rng = np.random.default_rng(seed)
    X = one_hot_matrix(n, blocks=30, levels=16, numeric=10, seed=seed)  # 40 non-zeros in 491 columns, as KDD
    a = (rng.random(n) < 0.3).astype(int)
    w = rng.normal(size=X.shape[1]) / np.sqrt(40)
    y = (rng.random(n) < 1 / (1 + np.exp(-(X @ w - 0.8 * a)))).astype(int)
    members = (a == 1) & (y == 0) & (rng.random(n) < 0.3)
    collective = make_collective(y, a, members=members, direction="up")
    problem = FlipProblem(X=np.c_[X, a], y=y, a=a, collective=collective, firm=firm, X_nogroup=X)
    return problem, f"synthetic one-hot (n={n}, d={X.shape[1] + 1})"


def run(*, n: int = 20_000, batches: tuple[int, ...] = (1, 4, 16, 32, 64), moves: int = 64,
        source: Literal["auto", "synthetic"] = "auto", device: str | None = None, seed: int = 0) -> dict:
    """Times of each new path and the path it replaces on the same data, with their largest difference.

    Args:
        n: rows.
        batches: batch sizes of the product comparison.
        moves: swap moves scored in the local-search comparison.
        source: ``auto`` (KDD when available) or ``synthetic``.
        device: ignored (the twin exists on the CPU only); accepted for the runner's --device.
        seed: data, collective and move seed.
    """
    firm = LinearFirm("logistic", C=1.0, device="cpu")
    problem, described = _problem(n, source, firm, seed)
    cache = problem.training_state()
    Xd, y0 = cache["Xd"], torch.as_tensor(problem.y, dtype=firm.dtype)
    if sparse_twin(Xd) is None:
        raise RuntimeError(f"no sparse twin for a {tuple(Xd.shape)} design: n is too small for SPARSE_MIN_ENTRIES")
    plain = Xd.clone()  # the same matrix without a twin: the dense products
    rng = np.random.default_rng(seed)
    rows = []
    for B in batches:
        V = torch.as_tensor(rng.normal(size=(B, Xd.shape[1])))
        W = torch.as_tensor(rng.uniform(0.0, 0.25, size=(B, Xd.shape[0])))
        m_dense = measure("dense", lambda: firm.hessian_product(W, plain, V), repeats=3)
        m_twin = measure("twin", lambda: firm.hessian_product(W, Xd, V), repeats=3)
        rows.append({"comparison": f"Hessian-vector products, batch {B}", "old": "dense", "new": "CSR twin",
                     "old_s": m_dense.seconds, "new_s": m_twin.seconds, "new_over_old": m_twin.seconds / m_dense.seconds,
                     "max_abs_diff": float((m_twin.value - m_dense.value).abs().max())})

    zero = torch.zeros(Xd.shape[1], dtype=firm.dtype)
    m_newton = measure("dense Newton", lambda: firm.fit_params(Xd, y0))
    m_cg = measure("Newton-CG", lambda: firm.fit_params(Xd, y0, init=zero,
                                                        preconditioner=firm.hessian_factor(zero, Xd, y0)))
    rows.append({"comparison": "unflipped fit", "old": "Newton, dense Hessian per step",
                 "new": "Newton-CG, start Hessian as preconditioner", "old_s": m_newton.seconds, "new_s": m_cg.seconds,
                 "new_over_old": m_cg.seconds / m_newton.seconds,
                 "max_abs_diff": float((m_cg.value - m_newton.value).abs().max())})

    cands = problem.candidates
    size = max(2, len(cands) // 100)
    current = np.sort(rng.choice(cands, size=size, replace=False))
    outside = np.setdiff1d(cands, current)
    sets = [np.sort(np.append(current[current != current[k % size]], outside[rng.integers(len(outside))]))
            for k in range(moves)]
    m_plain = measure("from the unflipped optimum", lambda: problem.fit_flip_sets(sets))

    def around():
        cache.pop("anchor_key", None)  # the anchor's own fit and factor are part of the timed call
        return problem.fit_flip_sets(sets, around=current)

    m_around = measure("around the current set", around)
    rows.append({"comparison": f"{moves} swap moves of a {size}-row flip set", "old": "from the unflipped optimum",
                 "new": "around the current set (anchor fit included)", "old_s": m_plain.seconds,
                 "new_s": m_around.seconds, "new_over_old": m_around.seconds / m_plain.seconds,
                 "max_abs_diff": float(np.abs(m_around.value - m_plain.value).max())})
    density = float((Xd != 0).double().mean())
    return {"benchmark": "design", "source": described, "n": problem.n, "p": Xd.shape[1], "density": density,
            "device": "cpu", "threads": torch.get_num_threads(), "rows": rows}
