"""oracle-stealth: the detectability threshold, the restricted collective, and fewer flips caught by the cleaner."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from fairflip._errors import FairflipError
from fairflip.cleaning import cross_val_proba, evaluate_cleaned, loss_cutoff, row_losses
from fairflip.collective import Collective
from fairflip.methods import available_methods, get_method
from fairflip.problem import build_problem
from fairflip.solvers.stealth import detection_threshold


def test_threshold_closed_forms():
    proba = np.array([0.9, 0.8, 0.3, 0.1])
    y = np.array([1, 1, 0, 0])
    # source 0: P(source | x) over rows labelled 0 is 0.7 and 0.9, t = 0.8, threshold = -log(1 - 0.8)
    assert detection_threshold(proba, y, 0, against="confident") == pytest.approx(-np.log(0.2), abs=1e-12)
    # source 1: P(1 | x) over rows labelled 1 is 0.9 and 0.8, t = 0.85
    assert detection_threshold(proba, y, 1, against="confident") == pytest.approx(-np.log(0.15), abs=1e-12)
    losses = row_losses(proba, y)
    assert detection_threshold(proba, y, 0, against="loss", fraction=0.5) == loss_cutoff(losses, fraction=0.5)
    assert detection_threshold(proba, y, 0, against="loss", fraction=0.5) == pytest.approx(-np.log(0.8))


@pytest.fixture(scope="module")
def small(compas_split):
    train, test = compas_split
    problem, prep = build_problem(train.subset(np.arange(900)), direction="auto", seed=0)
    return problem, (prep.transform(test), test.y, test.a, None)


@pytest.mark.parametrize("against", ["loss", "confident"])
def test_flips_are_hidden_and_equal_the_base_on_the_restricted_collective(small, against):
    problem, _ = small
    method = get_method("oracle-stealth", base="rb-prob", against=against)
    result = method.select(problem, 25)
    # independent recomputation of who is hidden
    proba = cross_val_proba(problem.X, problem.y, C=problem.firm.C, folds=5, seed=0)
    cands = problem.candidates
    threshold = detection_threshold(proba, problem.y, problem.collective.source_label, against=against)
    flip_loss = -np.log(proba[cands] if problem.collective.target_label == 1 else 1 - proba[cands])
    hidden = cands[flip_loss < threshold]
    assert result.info["threshold"] == threshold and result.info["n_stealthy"] == len(hidden)
    assert 0 < len(hidden) < len(cands)
    assert set(result.flipped.tolist()) <= set(hidden.tolist())
    members = problem.collective.members.copy()
    members[np.setdiff1d(cands, hidden)] = False
    restricted = replace(problem, collective=Collective(members, problem.collective.known_majority,
                                                        problem.collective.direction))
    np.testing.assert_array_equal(result.flipped, get_method("rb-prob").select(restricted, 25).flipped)
    assert result.scores.shape == cands.shape and np.isneginf(result.scores[~np.isin(cands, hidden)]).all()


@pytest.mark.parametrize("against", ["loss", "confident"])
def test_stealth_flips_are_caught_less_often(small, against):
    problem, test = small
    options = {"fraction": 0.15} if against == "loss" else {}
    plain = get_method("random", seed=1).select(problem, 30).flipped
    stealth = get_method("oracle-stealth", base="random", base_params={"seed": 1}, against=against,
                         **options).select(problem, 30)
    assert len(stealth.flipped) == min(30, stealth.info["n_stealthy"])
    rec_plain = evaluate_cleaned(problem, plain, cleaner=against, test=test, **options)["report"]["recall"]
    rec_stealth = evaluate_cleaned(problem, stealth.flipped, cleaner=against, test=test, **options)["report"]["recall"]
    assert rec_plain >= 0.2
    assert rec_stealth <= 0.5 * rec_plain


def test_safety_shrinks_the_hidden_set(small):
    problem, _ = small
    sizes = [get_method("oracle-stealth", base="random", safety=s).stealthy_candidates(problem)[0].sum()
             for s in (0.0, 0.5, 0.9)]
    assert sizes[0] > sizes[1] > sizes[2]
    nothing = get_method("oracle-stealth", base="random", fraction=0.0)
    assert nothing.stealthy_candidates(problem)[2] == np.inf  # a filter that drops nothing hides everything


@pytest.mark.parametrize("base", ["oracle-convex", "oracle"])
def test_oracle_bases_run_on_the_hidden_candidates(compas_split, base):
    if base not in available_methods():
        pytest.skip(f"method {base} is not registered in this build")
    train, _ = compas_split
    problem, _ = build_problem(train.subset(np.arange(400)), direction="auto", seed=0)
    method = get_method("oracle-stealth", base=base, against="loss")
    hidden, _, _ = method.stealthy_candidates(problem)
    result = method.select(problem, 8)
    assert 0 < len(result.flipped) <= 8
    assert set(result.flipped.tolist()) <= set(problem.candidates[hidden].tolist())
    assert result.lower_bound is None and "base_info" in result.info


def test_bad_parameters():
    with pytest.raises(FairflipError, match="its own base"):
        get_method("oracle-stealth", base="oracle-stealth")
    with pytest.raises(FairflipError, match="unknown cleaner to hide from"):
        get_method("oracle-stealth", base="random", against="magic")
    with pytest.raises(FairflipError, match="safety"):
        get_method("oracle-stealth", base="random", safety=1.0)
    with pytest.raises(FairflipError, match="unknown method"):
        get_method("oracle-stealth", base="no-such-method")
