"""Shared fixtures: float64 everywhere, fixed seeds, small real problems built once per session."""

from __future__ import annotations

import numpy as np
import pytest
import torch

torch.set_default_dtype(torch.float64)


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
