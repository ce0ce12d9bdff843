"""Shared fixtures: float64 everywhere, fixed seeds, small real problems built once per session."""

from __future__ import annotations

import numpy as np
import pytest
import torch

torch.set_default_dtype(torch.float64)
# On a small, busy machine a second intra-op thread only spins against other processes and makes small batched
# Newton solves 10-50 times slower, so the suite runs torch single-threaded.
torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def single_threaded_native_pools():
    """BLAS and OpenMP pools (gradient boosting, scikit-learn) also run one thread for the same reason."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


@pytest.fixture(scope="session")
def compas():
    from fairflip.datasets import load

    return load("compas")


@pytest.fixture(scope="session")
def compas_split(compas):
    from fairflip.datasets import stratified_split

    return stratified_split(compas, test_size=0.3, seed=0)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def adult():
    from fairflip.datasets import load

    return load("adult")
