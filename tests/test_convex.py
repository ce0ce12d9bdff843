"""oracle-convex: the LP / MILP oracle against an independent brute force over all flip sets (itertools +
exact retraining), closed-form score gaps, and its contracts (bounds, statuses, bad inputs)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from fairflip._errors import FairflipError
from fairflip.collective import Collective
from fairflip.firms import LinearFirm, make_firm
from fairflip.methods import get_method
from fairflip.problem import FlipProblem
from fairflip.solvers.convex import ConvexOracle, ScoreLinearisation

OBJECTIVES = ("eqod", "eqod-worst", "dp", "eqopp")


def tiny_problem(seed: int, *, loss: str = "squared", objective: str = "eqod", error_weight: float = 0.0,
                 n: int = 40, c: int = 10, validation: bool = False) -> FlipProblem:
    """A few dozen rows, about ``c`` candidates (minority, label 0, flipping up); the group is a feature."""
    rng = np.random.default_rng(seed)

    def draw(m):
        a = (rng.random(m) < 0.4).astype(np.int64)
        X = np.c_[rng.normal(size=(m, 3)), a]
        y = (X[:, 0] - 0.8 * a + rng.normal(size=m) > 0).astype(np.int64)
        return X, y, a

    X, y, a = draw(n)
    members = np.zeros(n, dtype=bool)
    members[np.flatnonzero((a == 1) & (y == 0))[:c]] = True
    C = float(rng.choice([0.1, 1.0, 10.0]))
    return FlipProblem(X=X, y=y, a=a, collective=Collective(members, a == 0, "up"), firm=LinearFirm(loss, C=C),
                       objective=objective, error_weight=error_weight,
                       validation=draw(30) if validation else None)


def brute_force(problem: FlipProblem, budget: int) -> float:
    """The optimum over every flip set of size <= budget, each retrained exactly."""
    sets = [np.array(s, dtype=np.int64) for k in range(budget + 1)
            for s in itertools.combinations(problem.candidates, k)]
    return float(problem.objective_of(sets).min())


def mean_score_gap(problem: FlipProblem, flipped: np.ndarray) -> float:
    """Score-gap surrogate computed directly from the retrained firm's scores (an independent reference)."""
    model = problem.firm.fit(problem.X, problem.flipped_labels(flipped))
    f, y, a = model.decision_function(problem.X), problem.y, problem.a

    def gap(cell):
        return f[cell & (a == 1)].mean() - f[cell & (a == 0)].mean()

    tpr, fpr, sel = abs(gap(y == 1)), abs(gap(y == 0)), abs(gap(np.ones_like(y, dtype=bool)))
    return {"eqod": 0.5 * (tpr + fpr), "eqod-worst": max(tpr, fpr), "dp": sel, "eqopp": tpr}[problem.objective]


# ----- the affine model -----
@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_affine_scores_match_retraining(loss):
    problem = tiny_problem(3, loss=loss)
    firm, cands = problem.firm, problem.candidates
    design = np.c_[problem.X, np.ones(problem.n)]
    center = cands[[1, 4]]
    model = ScoreLinearisation(problem, firm, design).at(center)
    def true_scores(flips):
        return firm.fit(problem.X, problem.flipped_labels(flips)).decision_function(problem.X) - firm.score_threshold
    # At its center the model is the retrained firm, for every loss.
    np.testing.assert_allclose(model.at(model.center), true_scores(center), atol=1e-9)
    if loss == "squared":
        # The ridge optimum is affine in the labels: the model is exact at every flip set.
        rng = np.random.default_rng(0)
        for _ in range(5):
            flips = np.sort(rng.choice(cands, size=3, replace=False))
            np.testing.assert_allclose(model.at(np.isin(cands, flips)), true_scores(flips), atol=1e-9)
        # Score bounds hold for every flip set reachable in 3 moves from the center.
        lo, hi = model.score_bounds(3)
        for flips in itertools.combinations(range(len(cands)), 3):
            z = model.center.copy()
            z[list(flips)] = 1 - z[list(flips)]
            f = model.at(z)
            assert np.all(f >= lo - 1e-12) and np.all(f <= hi + 1e-12)


# ----- ridge firm: exact MILP equals brute force -----
CASES = [(seed, obj, ew) for seed in range(6) for obj in OBJECTIVES for ew in (0.0,)] + \
        [(seed, "eqod", 0.5) for seed in range(6, 10)] + [(seed, "dp", 0.3) for seed in range(10, 12)]


@pytest.mark.parametrize("seed,objective,error_weight", CASES)
def test_exact_milp_equals_brute_force_ridge(seed, objective, error_weight):
    problem = tiny_problem(seed, objective=objective, error_weight=error_weight)
    budget = 1 + seed % 3
    optimum = brute_force(problem, budget)
    result = ConvexOracle(formulation="exact-milp").select(problem, budget)
    value = float(problem.objective_of([result.flipped])[0])
    assert value == pytest.approx(optimum, abs=1e-12)
    assert result.info["true_objective"] == pytest.approx(value, abs=1e-12)
    assert result.info["status"] == "optimal"
    # The solver's objective is the hard-threshold objective itself, and its bound is valid and tight.
    assert result.info["objective"] == pytest.approx(optimum, abs=1e-7)
    assert result.lower_bound is not None
    assert result.lower_bound <= optimum + 1e-9
    assert result.lower_bound >= optimum - 1e-5
    assert -1e-9 <= result.info["abs_gap"] <= 1e-5 and result.info["mip_gap"] is not None


@pytest.mark.parametrize("seed", range(6))
def test_factored_and_dense_exact_milp_agree_with_brute_force(seed):
    """The ridge exact MILP in factored form (g = J z, classes of identical candidates and rows) and in dense form
    prove the same optimum, the brute force's; duplicated rows (candidates among them) make classes form."""
    problem = tiny_problem(seed, objective=OBJECTIVES[seed % 4], error_weight=0.3 if seed % 3 == 0 else 0.0)
    cands = problem.candidates
    problem.X[cands[1]] = problem.X[cands[0]]
    problem.X[cands[3]] = problem.X[cands[2]]
    others = np.setdiff1d(np.arange(problem.n), cands)
    problem.X[others[1]] = problem.X[others[0]]
    optimum = brute_force(problem, 3)
    results = [ConvexOracle(formulation="exact-milp", factored=f).select(problem, 3) for f in (True, False)]
    for r in results:
        assert r.status == "optimal" and r.lower_bound == pytest.approx(optimum, abs=1e-9)
        assert r.objective == pytest.approx(optimum, abs=1e-12)
    assert results[0].info["factored"] and results[0].info["candidate_classes"] < len(cands)


@pytest.mark.parametrize("seed", range(4))
def test_incumbent_cutoff_keeps_the_proven_optimum(seed):
    """With a known set as the cutoff (the optimum itself, or a poor one), the ridge exact MILP still proves the
    brute force's optimum; the cutoff set's value caps the bound."""
    problem = tiny_problem(seed, objective=OBJECTIVES[seed % 4])
    optimum = brute_force(problem, 2)
    best = get_method("brute-force").select(problem, 2).flipped
    poor = problem.candidates[:1]
    for inc in (best, poor, {2: best}):
        r = ConvexOracle(formulation="exact-milp", incumbent=inc).select(problem, 2)
        assert r.status == "optimal" and r.objective == pytest.approx(optimum, abs=1e-12)
        assert r.lower_bound == pytest.approx(optimum, abs=1e-9) and r.info["cutoff"] >= optimum - 1e-12
    for formulation in ("exact-milp", "score-gap-lp"):
        with pytest.raises(FairflipError, match="not candidates"):
            ConvexOracle(formulation=formulation, incumbent=np.array([-5])).select(problem, 2)
    with pytest.raises(FairflipError, match="incumbent must be"):
        ConvexOracle(formulation="exact-milp", incumbent=np.zeros((2, 2), dtype=np.int64))


def test_exact_milp_on_validation_rows_equals_brute_force():
    for seed in (20, 21, 22):
        problem = tiny_problem(seed, objective="eqod", validation=True)
        optimum = brute_force(problem, 2)
        result = ConvexOracle(formulation="exact-milp").select(problem, 2)
        assert float(problem.objective_of([result.flipped])[0]) == pytest.approx(optimum, abs=1e-12)
        assert result.lower_bound <= optimum + 1e-9


def test_exact_milp_with_sample_weights_equals_brute_force():
    for seed in (23, 24):
        problem = tiny_problem(seed, objective="eqod-worst")
        problem.sample_weight = np.random.default_rng(seed).uniform(0.5, 2.0, problem.n)
        optimum = brute_force(problem, 3)
        result = ConvexOracle(formulation="exact-milp").select(problem, 3)
        assert float(problem.objective_of([result.flipped])[0]) == pytest.approx(optimum, abs=1e-12)
        assert result.lower_bound <= optimum + 1e-9


def test_auto_picks_exact_milp_for_small_ridge_and_score_gap_for_large():
    problem = tiny_problem(1)
    assert ConvexOracle().select(problem, 2).info["formulation"] == "exact-milp"
    result = ConvexOracle(exact_rows=10).select(problem, 2)
    assert result.info["formulation"] == "score-gap-milp"
    assert result.lower_bound is None


# ----- score-gap surrogate -----
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_score_gap_value_matches_retrained_scores_and_lp_below_milp(objective):
    for seed in range(30, 34):
        problem = tiny_problem(seed, objective=objective, n=60, c=12)
        milp = ConvexOracle(formulation="score-gap-milp").select(problem, 3)
        lp = ConvexOracle(formulation="score-gap-lp").select(problem, 3)
        # The MILP's value is the mean-score gap of its binary solution, recomputed from the retrained firm
        # (the returned flips may instead be "no flips" when the solution is worse in the true objective).
        assert milp.info["objective"] >= -1e-9
        best_binary = min(mean_score_gap(problem, np.array(s, dtype=np.int64))
                          for k in range(4) for s in itertools.combinations(problem.candidates, k))
        assert milp.info["objective"] == pytest.approx(best_binary, abs=1e-7)
        # The LP relaxation's value is below the MILP's.
        assert lp.info["objective"] <= milp.info["objective"] + 1e-8
        for r in (milp, lp):
            assert r.lower_bound is None  # a surrogate's value is never a bound
            assert r.info["true_objective"] <= r.info["objective_no_flips"] + 1e-12
            assert r.info["true_objective"] == pytest.approx(float(problem.objective_of([r.flipped])[0]))


# ----- logistic and smoothed-hinge firms: trust-region linearisation -----
@pytest.mark.parametrize("loss,formulation", [("logistic", "auto"), ("logistic", "score-gap-lp"),
                                              ("logistic", "score-gap-milp"), ("smoothed-hinge", "exact-milp")])
def test_trust_region_never_worse_than_no_flips(loss, formulation):
    for seed in range(40, 43):
        problem = tiny_problem(seed, loss=loss, n=60, c=12)
        result = ConvexOracle(formulation=formulation).select(problem, 3)
        none = float(problem.objective_of([np.zeros(0, dtype=np.int64)])[0])
        value = float(problem.objective_of([result.flipped])[0])
        assert value <= none + 1e-12
        assert result.info["true_objective"] == pytest.approx(value, abs=1e-12)
        assert result.lower_bound is None
        rounds = result.info["rounds"]
        assert rounds and all(r["status"] in ("optimal", "user_limit") for r in rounds)
        # The rounds stop when a radius-1 step fails to improve (or at max_rounds).
        assert (rounds[-1]["radius"] == 1 and not rounds[-1]["accepted"]) or len(rounds) == 20
        assert all("bound" in r and "mip_gap" in r for r in rounds)


def test_logistic_trust_region_improves_on_a_real_subsample(compas):
    from fairflip.datasets import stratified_split
    from fairflip.problem import build_problem

    train, _ = stratified_split(compas, test_size=0.9, seed=1)
    problem, _ = build_problem(train, firm="logistic", direction="auto", seed=0)
    result = ConvexOracle(formulation="score-gap-milp").select(problem, 10)
    assert result.info["true_objective"] < result.info["objective_no_flips"]
    assert result.info["true_objective"] == pytest.approx(float(problem.objective_of([result.flipped])[0]))


def test_time_limit_keeps_incumbent_and_a_valid_bound(compas):
    from fairflip.datasets import stratified_split
    from fairflip.problem import build_problem

    # This instance (400 rows, 43 candidates, M = 10) takes HiGHS well over a minute to prove optimal.
    train, _ = stratified_split(compas, test_size=1 - 400 / len(compas.y), seed=0)
    problem, _ = build_problem(train, firm="ridge", direction="auto", seed=0)
    result = ConvexOracle(formulation="exact-milp", time_limit=2.0).select(problem, 10)
    assert result.info["status"] == "user_limit"
    assert result.info["true_objective"] < result.info["objective_no_flips"]
    assert result.lower_bound is not None and 0 <= result.lower_bound <= result.info["true_objective"]
    # The typed fields: a time-limited run, its true objective, a labelled bound, a load-dependent answer.
    assert result.time_limit_hit and result.info["load_dependent"]
    assert result.objective == pytest.approx(float(problem.objective_of([result.flipped])[0]), abs=1e-12)
    assert result.status in ("time_limit", "optimal")
    assert result.bound_source == ("trivial" if result.lower_bound == 0 else "milp-dual")
    assert result.solver.startswith("HIGHS ")


def test_typed_fields_of_a_proven_optimum_and_reproducible_runs():
    problem = tiny_problem(4, objective="eqod")
    first = ConvexOracle(formulation="exact-milp", seed=3).select(problem, 2)
    second = ConvexOracle(formulation="exact-milp", seed=3).select(problem, 2)
    optimum = brute_force(problem, 2)
    for r in (first, second):
        assert r.status == "optimal" and r.bound_source in ("milp-dual", "trivial")
        assert r.objective == pytest.approx(optimum, abs=1e-12)
        assert r.solver_objective == pytest.approx(optimum, abs=1e-7)
        assert r.lower_bound <= optimum + 1e-9 and not r.time_limit_hit and not r.bound_inconsistent
        assert r.info["solver_options"]["threads"] == 1 and r.info["solver_options"]["random_seed"] == 3
        assert not r.info["load_dependent"]
    assert np.array_equal(first.flipped, second.flipped) and first.lower_bound == second.lower_bound
    # A surrogate formulation reports its own value apart from the true objective, and no bound.
    lp = ConvexOracle(formulation="score-gap-lp").select(problem, 2)
    assert lp.lower_bound is None and lp.bound_source is None and lp.status == "feasible"
    assert lp.objective == pytest.approx(float(problem.objective_of([lp.flipped])[0]), abs=1e-12)
    assert lp.info["solver_objective_kind"] == "score-gap-lp"


# ----- reporting and other solvers -----
def test_report_and_registry():
    method = get_method("oracle-convex", formulation="exact-milp")
    assert isinstance(method, ConvexOracle) and method.omniscient
    result = method.select(tiny_problem(5), 2)
    for key in ("solver", "status", "objective", "bound", "mip_gap", "formulation", "solve_time", "true_objective",
                "objective_no_flips"):
        assert key in result.info
    assert result.info["solver"] == "HIGHS" and result.info["bound"] <= result.info["objective"] + 1e-9


def test_budget_zero_returns_no_flips_with_exact_value():
    problem = tiny_problem(2)
    result = ConvexOracle().select(problem, 0)
    assert len(result.flipped) == 0
    assert result.lower_bound == pytest.approx(float(problem.objective_of([np.zeros(0, dtype=np.int64)])[0]))
    assert result.status == "optimal" and result.bound_source == "enumeration"
    assert result.objective == result.lower_bound


def test_other_installed_solvers_agree():
    problem = tiny_problem(7, objective="eqod")
    highs = ConvexOracle(formulation="exact-milp").select(problem, 2)
    scipy = ConvexOracle(formulation="exact-milp", solver="scipy").select(problem, 2)
    assert scipy.info["solver"] == "SCIPY"
    assert scipy.info["true_objective"] == pytest.approx(highs.info["true_objective"], abs=1e-12)
    lp_highs = ConvexOracle(formulation="score-gap-lp").select(problem, 2)
    lp_clarabel = ConvexOracle(formulation="score-gap-lp", solver="CLARABEL").select(problem, 2)
    assert lp_clarabel.info["objective"] == pytest.approx(lp_highs.info["objective"], abs=1e-6)


# ----- bad inputs -----
def test_bad_inputs_raise():
    with pytest.raises(FairflipError, match="unknown or uninstalled CVXPY solver 'nope'"):
        ConvexOracle(solver="nope")
    with pytest.raises(FairflipError, match="unknown formulation 'exact'"):
        ConvexOracle(formulation="exact")
    with pytest.raises(FairflipError, match="needs a mixed-integer solver"):
        ConvexOracle(formulation="exact-milp", solver="CLARABEL")
    with pytest.raises(FairflipError, match="time_limit must be positive"):
        ConvexOracle(time_limit=0)
    with pytest.raises(FairflipError, match="tolerance must be a positive number"):
        ConvexOracle(tolerance=0.0)
    with pytest.raises(FairflipError, match="radius must be a positive integer"):
        ConvexOracle(radius=0)
    problem = tiny_problem(0)
    problem.firm = make_firm("gbdt")
    with pytest.raises(FairflipError, match="got the 'gbdt' firm"):
        ConvexOracle().select(problem, 2)
    problem = tiny_problem(0)
    problem.a[:] = 0
    problem.a[problem.candidates] = 1  # minority rows only among the candidates: no minority row with y = 1
    with pytest.raises(FairflipError, match="empty cell"):
        ConvexOracle().select(problem, 2)


def test_single_threaded_highs_after_a_default_threaded_solve():
    # HiGHS's process-wide scheduler starts with the first solve's thread count; a later threads=1 solve restarts it.
    import cvxpy as cp

    x = cp.Variable(3, boolean=True)
    cp.Problem(cp.Minimize(cp.sum(x)), [x[0] + x[1] >= 1]).solve(solver="HIGHS", threads=0)
    problem = tiny_problem(8)
    result = ConvexOracle(formulation="exact-milp").select(problem, 2)
    assert result.status == "optimal" and result.info["solver_options"]["threads"] == 1
    assert result.objective == pytest.approx(brute_force(problem, 2), abs=1e-12)


def test_topk_sums_matches_sorting_each_row():
    """The budget's largest positive entries and largest negative parts per row, in row blocks (one row per block
    here), against a full sort; k = 0 and k above the width too."""
    from fairflip.solvers.milp import topk_sums

    rng = np.random.default_rng(0)
    M = rng.normal(size=(37, 11))
    M[3] = 0.0
    M[5, :4] = 2.5  # ties
    for k in (0, 1, 3, 11, 20):
        up, down = topk_sums(M, k, chunk_entries=5)
        kk = min(k, M.shape[1])
        want_up = np.sort(np.maximum(M, 0.0), axis=1)[:, M.shape[1] - kk:].sum(axis=1)
        want_down = np.sort(np.maximum(-M, 0.0), axis=1)[:, M.shape[1] - kk:].sum(axis=1)
        np.testing.assert_allclose(up, want_up, rtol=1e-14, atol=0)
        np.testing.assert_allclose(down, want_down, rtol=1e-14, atol=0)
        up_only, none = topk_sums(M, k, chunk_entries=5, negative=False)
        np.testing.assert_array_equal(up_only, up)
        assert not none.any()
    assert topk_sums(np.zeros((0, 4)), 2)[0].shape == (0,)
