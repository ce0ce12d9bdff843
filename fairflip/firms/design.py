"""Products with a design matrix, through a sparse (CSR) twin on the CPU when that is cheaper than the dense one.

Prepared tabular data is mostly one-hot columns: KDD census-income has 40 non-zeros in each row of 510
columns. A product with few right-hand sides (a Newton step of one or a few models, a conjugate-gradient
iteration, the relaxed oracle's inner solves) reads the whole dense matrix for little arithmetic, so it is bound
by memory; the CSR copy reads about a tenth of the bytes.

Measured by ``benchmarks/bench_design.py`` on KDD census-income (2 cores, 8% non-zeros, p = 503 and 507), a
Hessian-vector product X^T (w * X v) through the twin takes, as a share of the dense time at n = 20,000 and
100,000: 0.16 and 0.11 for 1 right-hand side, 0.36 and 0.31 for 4, 0.40 and 0.45 for 16, 0.57 and 0.83 for 32,
0.62 and 0.99 for 64 (in chunks of 32). The dense product uses every thread and the CSR product one, so batches
above 32 take the dense path when torch has more than 4 threads.

The twin is attached to the dense tensor (:func:`attach_sparse_twin`, called by ``LinearFirm.design``); the two
products below use it when it exists, nothing needs autograd and the tensors are float64 on the CPU, and fall back
to the dense product otherwise. Both paths compute the same sums, in another order, so they agree to rounding.
On CUDA nothing is attached: the dense product runs at the GPU's memory bandwidth.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch.utils.weak import WeakTensorKeyDictionary

SPARSE_MAX_DENSITY = 0.15  # share of non-zeros; at 8% a 32-column CSR product takes 0.6-0.8 of the dense time
SPARSE_CHUNK = 32  # right-hand sides per CSR product (larger batches are split)
SPARSE_LARGE_BATCH_MAX_THREADS = 4  # batches above SPARSE_CHUNK use the CSR products only up to this many threads
SPARSE_MIN_ENTRIES = 1_000_000  # below n * p of this, the dense product is too fast for the twin to pay

_twins: WeakTensorKeyDictionary = WeakTensorKeyDictionary()


def attach_sparse_twin(Xd: torch.Tensor) -> bool:
    """Give a dense CPU float64 matrix Xd (n, p) a CSR twin when it is large and sparse enough.

    Returns:
        whether a twin is attached (it lives as long as ``Xd``).
    """
    if (Xd.device.type != "cpu" or Xd.dtype != torch.float64 or Xd.ndim != 2 or Xd.requires_grad
            or Xd.numel() < SPARSE_MIN_ENTRIES):
        return False
    dense = Xd.numpy()
    if np.count_nonzero(dense) > SPARSE_MAX_DENSITY * dense.size:
        return False
    _twins[Xd] = sp.csr_matrix(dense)
    return True


def sparse_twin(Xd: torch.Tensor) -> sp.csr_matrix | None:
    """The CSR twin of Xd (n, p), or None."""
    return _twins.get(Xd)


def _twin_for(A: torch.Tensor, Xd: torch.Tensor) -> sp.csr_matrix | None:
    """Xd's twin when the product of A (K, .) with Xd should use it."""
    if A.ndim != 2 or A.dtype != torch.float64 or A.device.type != "cpu":
        return None
    if A.shape[0] > SPARSE_CHUNK and torch.get_num_threads() > SPARSE_LARGE_BATCH_MAX_THREADS:
        return None
    if torch.is_grad_enabled() and (A.requires_grad or Xd.requires_grad):
        return None
    return _twins.get(Xd)


def scores(V: torch.Tensor, Xd: torch.Tensor) -> torch.Tensor:
    """V @ Xd.T: V (K, p), Xd (n, p) -> (K, n)."""
    S = _twin_for(V, Xd)
    if S is None:
        return V @ Xd.T
    return _chunked(lambda A: S @ A.T, V.numpy())


def pullback(G: torch.Tensor, Xd: torch.Tensor) -> torch.Tensor:
    """G @ Xd: G (K, n), Xd (n, p) -> (K, p)."""
    S = _twin_for(G, Xd)
    if S is None:
        return G @ Xd
    return _chunked(lambda A: S.T @ A.T, G.numpy())


def _chunked(product, A: np.ndarray) -> torch.Tensor:
    """Rows of ``product(A_chunk)`` transposed, SPARSE_CHUNK rows of A (K, m) at a time -> (K, .) tensor."""
    parts = [product(A[s:s + SPARSE_CHUNK]).T for s in range(0, A.shape[0], SPARSE_CHUNK)]
    return torch.from_numpy(np.ascontiguousarray(parts[0] if len(parts) == 1 else np.concatenate(parts)))
