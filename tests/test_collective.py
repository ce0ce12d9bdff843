"""Collective draws, membership, direction, restricted access to the majority, and empty-set errors."""

from __future__ import annotations

import numpy as np
import pytest

from fairflip._errors import FairflipError
from fairflip.collective import Collective, make_collective, resolve_direction


def labels_and_groups(seed: int = 0, n: int = 500, share: float = 0.3):
    rng = np.random.default_rng(seed)
    a = (rng.random(n) < share).astype(np.int64)
    y = (rng.random(n) < 0.4).astype(np.int64)
    return y, a


@pytest.mark.parametrize("fraction", [0.01, 0.1, 0.3, 0.77, 1.0])
def test_fraction_draw_is_seeded_and_sized(fraction):
    y, a = labels_and_groups(n=2000)
    col = make_collective(y, a, fraction=fraction, seed=3)
    assert col.members.dtype == bool and col.members.shape == y.shape
    assert col.size == int(round(fraction * a.sum()))
    assert not (col.members & (a == 0)).any()
    same = make_collective(y, a, fraction=fraction, seed=3)
    np.testing.assert_array_equal(same.members, col.members)
    if 0 < col.size < a.sum():
        other = make_collective(y, a, fraction=fraction, seed=4)
        assert other.size == col.size and (other.members != col.members).any()
    np.testing.assert_array_equal(col.known_majority, a == 0)  # full access by default


def test_candidates_follow_direction():
    y, a = labels_and_groups(1)
    for direction, source in (("up", 0), ("down", 1)):
        col = make_collective(y, a, fraction=0.5, direction=direction, seed=0)
        assert col.direction == direction and col.source_label == source and col.target_label == 1 - source
        cands = col.candidates(y)
        assert cands.dtype == np.int64 and np.all(np.diff(cands) > 0)
        np.testing.assert_array_equal(cands, np.flatnonzero(col.members & (y == source)))


def test_direction_auto_on_real_data(compas, adult):
    # COMPAS (minority African-American) has the higher base rate, Adult (minority Female) the lower one.
    for data, expected in ((compas, "down"), (adult, "up")):
        rate_min, rate_maj = data.y[data.a == 1].mean(), data.y[data.a == 0].mean()
        assert (rate_min > rate_maj) == (expected == "down")
        assert resolve_direction("auto", data.y, data.a) == expected
        assert make_collective(data.y, data.a, fraction=0.1, direction="auto").direction == expected
    assert resolve_direction("up", compas.y, compas.a) == "up"
    with pytest.raises(FairflipError, match="direction"):
        resolve_direction("sideways", compas.y, compas.a)


@pytest.mark.parametrize("m", [2, 3, 10, 57])
def test_known_majority_stratified(m):
    y, a = labels_and_groups(2, n=400)
    col = make_collective(y, a, fraction=0.3, known_majority=m, seed=5)
    known = np.flatnonzero(col.known_majority)
    assert len(known) == m
    assert (a[known] == 0).all()
    assert set(y[known]) == {0, 1}
    share0 = np.mean(y[a == 0] == 0)
    assert abs(np.sum(y[known] == 0) - share0 * m) <= 1  # label shares kept up to rounding
    again = make_collective(y, a, fraction=0.3, known_majority=m, seed=5)
    np.testing.assert_array_equal(again.known_majority, col.known_majority)


def test_known_majority_edge_cases():
    y, a = labels_and_groups(3, n=100)
    col = make_collective(y, a, fraction=0.3, known_majority=10_000)
    np.testing.assert_array_equal(col.known_majority, a == 0)  # capped at the whole majority
    one = make_collective(y, a, fraction=0.3, known_majority=1)
    assert one.known_majority.sum() == 1 and a[one.known_majority].sum() == 0
    # a majority with one label only still yields m rows
    y1 = np.where(a == 0, 1, y)
    assert make_collective(y1, a, fraction=0.3, known_majority=4).known_majority.sum() == 4
    for bad in (0, -3):
        with pytest.raises(FairflipError, match="known_majority"):
            make_collective(y, a, fraction=0.3, known_majority=bad)


def test_explicit_members():
    y, a = labels_and_groups(4, n=60)
    members = np.zeros(60, dtype=np.int64)
    members[np.flatnonzero(a == 1)[:5]] = 1
    col = make_collective(y, a, members=members, direction="up")
    np.testing.assert_array_equal(col.members, members.astype(bool))
    assert isinstance(col, Collective) and col.size == 5
    bad = members.copy()
    bad[np.flatnonzero(a == 0)[:2]] = 1
    with pytest.raises(FairflipError, match="2 collective member.*not in the minority"):
        make_collective(y, a, members=bad)
    with pytest.raises(FairflipError, match="rows"):
        make_collective(y, a, members=members[:-1])
    with pytest.raises(FairflipError, match="binary"):
        make_collective(y, a, members=members * 2)
    with pytest.raises(FairflipError, match="exactly one"):
        make_collective(y, a, members=members, fraction=0.3)
    with pytest.raises(FairflipError, match="exactly one"):
        make_collective(y, a)


def test_empty_collective_and_candidates_raise():
    y, a = labels_and_groups(5, n=200)
    with pytest.raises(FairflipError, match="collective is empty"):
        make_collective(y, a, members=np.zeros(200, dtype=int))
    with pytest.raises(FairflipError, match="collective is empty"):
        make_collective(y, a, fraction=1e-6)  # rounds to zero members
    for bad in (0.0, -0.2, 1.5, float("nan")):
        with pytest.raises(FairflipError, match="fraction"):
            make_collective(y, a, fraction=bad)
    # every minority row carries 1: flipping up has no candidates, flipping down has all of them
    y_all1 = np.where(a == 1, 1, y)
    with pytest.raises(FairflipError, match="candidate set is empty"):
        make_collective(y_all1, a, fraction=0.5, direction="up")
    assert len(make_collective(y_all1, a, fraction=0.5, direction="down").candidates(y_all1)) > 0
