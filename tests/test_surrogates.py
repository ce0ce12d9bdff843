"""Smooth fairness surrogates: exact on hard predictions, limits in the temperature, named, validated."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fairflip._errors import FairflipError
from fairflip.metrics import error_rate, fairness
from fairflip.objectives import BUILTIN_OBJECTIVES as OBJECTIVES, get_objective
from fairflip.surrogates import FairnessSurrogate, TemperatureSchedule, hinge_predictions, smooth_error


def _data(rng, m=200):
    y = rng.integers(0, 2, m)
    a = rng.integers(0, 2, m)
    y[:4], a[:4] = [0, 0, 1, 1], [0, 1, 0, 1]  # every (group, label) cell is present
    return y, a


@pytest.mark.parametrize("objective", list(OBJECTIVES))
def test_smooth_gap_on_hard_predictions_equals_true_metric(objective, rng):
    y, a = _data(rng)
    for _ in range(5):
        pred = rng.integers(0, 2, len(y))
        got = get_objective(objective).soft_value(torch.as_tensor(pred, dtype=torch.float64), torch.as_tensor(y),
                                                  torch.as_tensor(a))
        assert float(got) == pytest.approx(fairness(objective, y, pred, a), abs=1e-14)


@pytest.mark.parametrize("objective", list(OBJECTIVES))
def test_sigmoid_surrogate_tends_to_true_metric_as_temperature_vanishes(objective, rng):
    y, a = _data(rng)
    margins = rng.normal(size=len(y))
    margins[np.abs(margins) < 0.05] = 0.1  # away from the threshold
    pred = (margins > 0).astype(int)
    truth = fairness(objective, y, pred, a)
    errs = []
    for T in (1.0, 0.1, 1e-3):
        s = FairnessSurrogate(objective, "sigmoid", T)
        errs.append(abs(float(s(torch.as_tensor(margins), torch.as_tensor(y), torch.as_tensor(a))) - truth))
    assert errs[-1] < 1e-12
    assert errs[0] > errs[-1]


def test_batched_surrogate_matches_rows(rng):
    y, a = _data(rng)
    M = torch.as_tensor(rng.normal(size=(3, len(y))))
    for kind in ("sigmoid", "hinge", "mean-score"):
        s = FairnessSurrogate("eqod", kind, 0.3, error_weight=0.5)
        batch = s(M, torch.as_tensor(y), torch.as_tensor(a))
        assert batch.shape == (3,)
        for k in range(3):
            assert float(batch[k]) == pytest.approx(float(s(M[k], torch.as_tensor(y), torch.as_tensor(a))), abs=1e-14)


def test_hinge_is_upper_bound_and_mean_score_averages_margins(rng):
    y, a = _data(rng)
    m = torch.as_tensor(rng.normal(size=len(y)))
    assert bool((hinge_predictions(m, 0.5) >= (m > 0).double()).all())
    at = torch.as_tensor(a) == 1
    dp = FairnessSurrogate("dp", "mean-score")(m, torch.as_tensor(y), torch.as_tensor(a))
    assert float(dp) == pytest.approx(abs(float(m[at].mean() - m[~at].mean())), abs=1e-14)


def test_soft_error_on_hard_predictions_and_error_weight(rng):
    y, a = _data(rng)
    pred = rng.integers(0, 2, len(y))
    q = torch.as_tensor(pred, dtype=torch.float64)
    assert float(smooth_error(q, torch.as_tensor(y))) == pytest.approx(error_rate(y, pred), abs=1e-14)
    m = torch.as_tensor(rng.normal(size=len(y)))
    plain = FairnessSurrogate("eqod", "sigmoid", 0.2)
    weighted = FairnessSurrogate("eqod", "sigmoid", 0.2, error_weight=2.0)
    diff = weighted(m, torch.as_tensor(y), torch.as_tensor(a)) - plain(m, torch.as_tensor(y), torch.as_tensor(a))
    assert float(diff) == pytest.approx(2.0 * float(smooth_error(torch.sigmoid(m / 0.2), torch.as_tensor(y))))


def test_surrogate_is_differentiable(rng):
    y, a = _data(rng)
    m = torch.as_tensor(rng.normal(size=len(y))).requires_grad_(True)
    FairnessSurrogate("eqod-worst", "sigmoid", 0.5)(m, torch.as_tensor(y), torch.as_tensor(a)).backward()
    assert torch.isfinite(m.grad).all() and float(m.grad.abs().sum()) > 0


def test_names_never_the_bare_metric():
    for kind in ("sigmoid", "hinge", "mean-score"):
        s = FairnessSurrogate("eqod", kind, 0.1)
        assert "surrogate of eqod" in s.name and s.name != "eqod"
    assert FairnessSurrogate("dp", "sigmoid", 0.1).with_temperature(0.5).name.startswith("sigmoid(T=0.5)")


def test_schedule():
    s = TemperatureSchedule(1.0, 0.01)
    temps = [s.at(t, 11) for t in range(11)]
    assert temps[0] == pytest.approx(1.0) and temps[-1] == pytest.approx(0.01)
    assert all(b < c for b, c in zip(temps[1:], temps[:-1]))
    assert temps[5] == pytest.approx(0.1)  # geometric: the midpoint is the geometric mean
    assert TemperatureSchedule(1.0, 0.5, "linear").at(1, 3) == pytest.approx(0.75)
    assert TemperatureSchedule(0.3, 0.3, "constant").at(7, 9) == 0.3


@pytest.mark.parametrize("kwargs, match", [
    ({"objective": "accuracy"}, "unknown objective"),
    ({"kind": "tanh"}, "unknown surrogate"),
    ({"temperature": 0.0}, "temperature"),
    ({"error_weight": -1.0}, "error_weight"),
])
def test_bad_surrogate_arguments(kwargs, match):
    with pytest.raises(FairflipError, match=match):
        FairnessSurrogate(**kwargs)


def test_bad_schedule_and_empty_cell():
    with pytest.raises(FairflipError, match="temperatures"):
        TemperatureSchedule(0.1, 1.0)
    with pytest.raises(FairflipError, match="empty cell"):
        FairnessSurrogate("eqod")(torch.zeros(4), torch.tensor([0, 1, 0, 1]), torch.tensor([0, 0, 0, 0]))
