"""The collective: which minority users coordinate, which way they flip, and what they know of the majority."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ._errors import FairflipError, check_binary, check_fraction

Direction = Literal["up", "down", "auto"]


def resolve_direction(direction: str, y: np.ndarray, a: np.ndarray) -> Literal["up", "down"]:
    """Return ``up`` (0 -> 1) or ``down`` (1 -> 0).

    ``auto`` picks the direction that moves the minority's positive-label rate towards the majority's:
    ``up`` when P(y = 1 | minority) <= P(y = 1 | majority), else ``down``. Shapes: y, a (n,).
    """
    if direction in ("up", "down"):
        return direction  # type: ignore[return-value]
    if direction != "auto":
        raise FairflipError(f"direction must be 'up', 'down' or 'auto', got {direction!r}")
    return "up" if y[a == 1].mean() <= y[a == 0].mean() else "down"


@dataclass(frozen=True)
class Collective:
    """A coordinated subset of the minority.

    Attributes:
        members: shape (n,) bool over the training rows; True for collective members (all in the minority).
        known_majority: shape (n,) bool; the majority rows the collective may read (all of them, or m sampled).
        direction: ``up`` flips 0 -> 1 (the paper's default), ``down`` flips 1 -> 0.
    """

    members: np.ndarray
    known_majority: np.ndarray
    direction: Literal["up", "down"]

    @property
    def source_label(self) -> int:
        """The label candidates currently carry (0 for up, 1 for down)."""
        return 0 if self.direction == "up" else 1

    @property
    def target_label(self) -> int:
        """The label a flip gives (1 for up, 0 for down)."""
        return 1 - self.source_label

    def candidates(self, y: np.ndarray) -> np.ndarray:
        """Row indices (sorted, int64) of members whose label is the source label; y shape (n,)."""
        return np.flatnonzero(self.members & (np.asarray(y) == self.source_label)).astype(np.int64)

    @property
    def size(self) -> int:
        """Number of members."""
        return int(self.members.sum())


def make_collective(
    y: np.ndarray,
    a: np.ndarray,
    *,
    fraction: float | None = None,
    members: np.ndarray | None = None,
    direction: Direction = "auto",
    known_majority: int | None = None,
    seed: int = 0,
) -> Collective:
    """Build a collective over training rows.

    Args:
        y: shape (n,) training labels in {0, 1}.
        a: shape (n,) minority indicator.
        fraction: share of the minority that joins, drawn uniformly with ``seed`` (exclusive with ``members``).
        members: shape (n,) 0/1 or bool marking members explicitly (all must be minority rows).
        direction: ``auto`` (the default of every fairflip entry point), ``up`` (the paper's 0 -> 1) or ``down``
            (see :func:`resolve_direction`).
        known_majority: None for full access to the majority; an integer m for restricted access to m majority
            rows sampled with ``seed``, stratified by label so that both labels appear when m >= 2.
        seed: seed of the member and majority samples.

    Returns:
        the Collective; it raises FairflipError when it would be empty or have no candidates.
    """
    y = check_binary("y", y)
    a = check_binary("group indicator a", a)
    rng = np.random.default_rng(seed)
    minority = np.flatnonzero(a == 1)
    if (fraction is None) == (members is None):
        raise FairflipError("give exactly one of fraction or members for the collective")
    if members is not None:
        mask = check_binary("collective membership column", np.asarray(members)).astype(bool)
        if len(mask) != len(y):
            raise FairflipError(f"collective mask has {len(mask)} rows, data has {len(y)}")
        outside = int((mask & (a == 0)).sum())
        if outside:
            raise FairflipError(f"{outside} collective member(s) are not in the minority")
    else:
        f = check_fraction("collective fraction", fraction)
        k = int(round(f * len(minority)))
        mask = np.zeros(len(y), dtype=bool)
        mask[rng.choice(minority, size=k, replace=False)] = True
    if not mask.any():
        raise FairflipError("the collective is empty (no member rows)")
    majority = np.flatnonzero(a == 0)
    known = np.zeros(len(y), dtype=bool)
    if known_majority is None:
        known[majority] = True
    else:
        m = int(known_majority)
        if m < 1:
            raise FairflipError(f"known_majority must be a positive number of rows, got {known_majority!r}")
        known[_stratified_sample(majority, y[majority], min(m, len(majority)), rng)] = True
    dir_ = resolve_direction(direction, y, a)
    col = Collective(members=mask, known_majority=known, direction=dir_)
    if len(col.candidates(y)) == 0:
        raise FairflipError(f"the candidate set is empty: no collective member has label {col.source_label} "
                            f"(direction {dir_})")
    return col


def _stratified_sample(rows: np.ndarray, labels: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    """m of ``rows`` sampled without replacement, keeping each label's share (at least one of each when m >= 2)."""
    pools = [rows[labels == lab] for lab in (0, 1) if (labels == lab).any()]
    if len(pools) == 1 or m < 2:
        return rng.choice(rows, size=m, replace=False)
    k0 = int(round(len(pools[0]) / len(rows) * m))
    k0 = min(max(k0, 1, m - len(pools[1])), m - 1, len(pools[0]))
    return np.concatenate([rng.choice(pools[0], size=k0, replace=False),
                           rng.choice(pools[1], size=m - k0, replace=False)])
