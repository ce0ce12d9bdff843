"""Tiny random flip problems (about 10 candidates) on which brute force is affordable; shared by oracle tests."""

from __future__ import annotations

import numpy as np

from fairflip.collective import make_collective
from fairflip.firms import LinearFirm
from fairflip.problem import FlipProblem


def tiny_problem(seed: int, *, loss: str = "logistic", n: int = 60, n_members: int = 10) -> FlipProblem:
    """A random two-group problem of n rows whose collective is up to ``n_members`` minority rows labelled 0."""
    rng = np.random.default_rng(seed)
    a = (rng.random(n) < 0.4).astype(int)
    X = rng.normal(size=(n, 3))
    X[:, 0] += 0.8 * a
    y = ((X[:, 0] + 0.5 * X[:, 1] - 0.6 * a + rng.normal(scale=0.8, size=n)) > 0).astype(int)
    pool = np.flatnonzero((a == 1) & (y == 0))
    members = np.zeros(n, dtype=bool)
    members[rng.choice(pool, size=min(n_members, len(pool)), replace=False)] = True
    collective = make_collective(y, a, members=members, direction="up")
    return FlipProblem(X=np.c_[X, a], y=y, a=a, collective=collective, firm=LinearFirm(loss, C=1.0, device="cpu"),
                       X_nogroup=X)
