"""The hard wall-clock deadline of solvers.milp.solve: HiGHS runs in a worker process that is stopped when
``hard_deadline(time_limit)`` passes. Stand-in runners that ignore their limit (tests/_milp_stand_ins.py) show
the call returns at the deadline with status user_limit, no bound and the last incumbent; a real instance on
which HiGHS hangs in presolve (full COMPAS, ridge firm, M = 25) returns within the deadline; and the worker's
answers equal CVXPY's in-process ones on ordinary instances."""

from __future__ import annotations

import os
import time

import cvxpy as cp
import numpy as np
import pytest

from fairflip._errors import FairflipError
from fairflip.solvers import milp
from fairflip.solvers.convex import ConvexOracle, ScoreLinearisation
from fairflip.solvers.certificate import meets

from test_convex import brute_force, tiny_problem

# The deadline's grace in these tests (the default, max(2 s, 10 %), would make each stalled call last 2 s).
GRACE = 0.3
# Killing and reaping the worker, and unpacking, on a busy 2-core machine.
SLACK = 1.5


class _Recorded(milp._HighsWorker):
    started: list = []

    def __init__(self) -> None:
        super().__init__()
        _Recorded.started.append(self)


@pytest.fixture
def fresh_workers(monkeypatch):
    """A shorter grace, no idle worker from earlier tests, and a record of the workers started."""
    monkeypatch.setattr(milp, "HARD_LIMIT_GRACE_S", GRACE)
    monkeypatch.setattr(milp, "_HighsWorker", _Recorded)
    milp._close_workers()
    _Recorded.started = []
    yield _Recorded.started
    milp._close_workers()


def formulation(seed: int, kind: str = "exact", *, budget: int = 2, error_weight: float = 0.0,
                objective: str = "eqod", n: int = 40, c: int = 10):
    """(problem, z, constant) of a tiny instance: ``exact`` MILP, ``score-gap`` MILP or ``lp``."""
    problem = tiny_problem(seed, objective=objective, error_weight=error_weight, n=n, c=c)
    X, y, a = problem.evaluation_set
    gaps = milp.fairness_gaps(problem.objective, y, a)
    model = ScoreLinearisation(problem, problem.firm, np.c_[X, np.ones(len(y))]).at(np.zeros(0, dtype=np.int64))
    if kind == "exact":
        return milp.exact_threshold_problem(model, gaps, budget, error_weight=error_weight)
    return milp.score_gap_problem(model, gaps, budget, integer=kind == "score-gap", error_weight=error_weight)


def fields(report: milp.SolveReport) -> tuple:
    z = None if report.z is None else report.z.tobytes()
    return (report.status, report.objective, report.bound, report.mip_gap, report.abs_gap, z, report.n_binary,
            report.time_limit_hit, report.hard_stopped)


# ----- the deadline -----
def test_hard_deadline_is_the_limit_plus_the_larger_grace():
    assert milp.hard_deadline(1.0) == 3.0
    assert milp.hard_deadline(10.0) == 12.0 and milp.hard_deadline(30.0) == pytest.approx(33.0)
    assert milp.hard_deadline(100.0) == pytest.approx(110.0)


def test_a_solver_that_ignores_its_limit_is_stopped_at_the_deadline_and_keeps_its_incumbent(fresh_workers,
                                                                                           monkeypatch):
    problem, z, constant = formulation(3)
    reference = milp.solve(problem, z, constant, solver="HIGHS", time_limit=30, isolate=False)
    assert reference.status == "optimal"
    # A warm worker first, so that the stand-in's HiGHS run (which emits the incumbent) is not racing its start-up.
    milp.solve(*formulation(4), solver="HIGHS", time_limit=30)
    assert len(fresh_workers) == 1
    monkeypatch.setattr(milp, "_WORKER_RUNNER", "_milp_stand_ins:stall_after_incumbent")
    problem, z, constant = formulation(3)
    limit = 0.2
    start = time.perf_counter()
    report = milp.solve(problem, z, constant, solver="HIGHS", time_limit=limit)
    elapsed = time.perf_counter() - start
    deadline = milp.hard_deadline(limit)
    assert deadline == limit + GRACE
    assert deadline - 0.05 <= elapsed <= deadline + SLACK
    assert report.hard_stopped and report.time_limit_hit and report.load_dependent
    assert report.status == cp.USER_LIMIT
    assert report.mip_gap is None
    # The incumbent is HiGHS's last improving solution: here the optimum the in-process solve found.
    np.testing.assert_array_equal(report.z, reference.z)
    assert report.objective == reference.objective
    # The bound is the last dual bound HiGHS reported on the way: valid (at most the optimum) and not trivial here.
    assert report.bound is not None and report.bound <= reference.objective + 1e-9
    assert report.bound > reference.objective - 0.5
    assert report.abs_gap == pytest.approx(report.objective - report.bound)
    assert report.wall_time == pytest.approx(elapsed, abs=0.05) and report.solve_time == report.wall_time
    # The stalled process was killed, and it is not kept for reuse.
    assert len(fresh_workers) == 1 and fresh_workers[0].proc.poll() is not None
    assert fresh_workers[0] not in milp._idle_workers


def test_a_stalled_solver_without_incumbent_reports_no_point_and_the_next_solve_starts_a_fresh_worker(
        fresh_workers, monkeypatch):
    monkeypatch.setattr(milp, "_WORKER_RUNNER", "_milp_stand_ins:stall")
    limit = 0.2
    start = time.perf_counter()
    report = milp.solve(*formulation(5, "lp"), solver="HIGHS", time_limit=limit)
    elapsed = time.perf_counter() - start
    assert milp.hard_deadline(limit) - 0.05 <= elapsed <= milp.hard_deadline(limit) + SLACK
    assert report.hard_stopped and report.status == cp.USER_LIMIT and report.time_limit_hit
    assert report.z is None and report.objective is None and report.bound is None
    assert fresh_workers[0].proc.poll() is not None
    monkeypatch.setattr(milp, "_WORKER_RUNNER", "fairflip._highs_worker:run_highs")
    again = milp.solve(*formulation(5, "lp"), solver="HIGHS", time_limit=30)
    assert again.status == "optimal" and not again.hard_stopped and len(fresh_workers) == 2


def test_the_oracle_reports_a_stopped_solve_as_time_limit_with_the_last_bound(fresh_workers, monkeypatch):
    problem = tiny_problem(6)
    optimal = ConvexOracle(formulation="exact-milp").select(problem, 2)
    assert optimal.status == "optimal" and optimal.lower_bound is not None
    monkeypatch.setattr(milp, "_WORKER_RUNNER", "_milp_stand_ins:stall_after_incumbent")
    result = ConvexOracle(formulation="exact-milp", time_limit=0.2).select(problem, 2)
    assert result.time_limit_hit and result.info["hard_stopped"]
    # The incumbent HiGHS had reported is retrained and kept.
    np.testing.assert_array_equal(result.flipped, optimal.flipped)
    assert result.objective == optimal.objective == pytest.approx(brute_force(problem, 2), abs=1e-12)
    # So is the last dual bound it reported, which can be no more than the optimum; here the stand-in let HiGHS
    # finish its search before stalling, so the bound meets the incumbent and proves it optimal.
    assert result.info["bound"] is not None and result.info["bound"] <= optimal.objective + 1e-9
    assert result.lower_bound is not None and result.lower_bound <= optimal.objective + 1e-12
    assert result.status == ("optimal" if meets(result.objective, result.lower_bound) else "time_limit")


def test_highs_stuck_in_presolve_on_full_compas_returns_within_the_deadline(compas_split, monkeypatch):
    # The exact MILP of the ridge firm on full COMPAS at M = 25 (843 rows, 306,237 non-zeros): HiGHS 1.16 spends
    # minutes in presolve without looking at its clock. Whatever HiGHS does, the call must end by the deadline.
    from fairflip.problem import build_problem

    monkeypatch.setattr(milp, "HARD_LIMIT_GRACE_S", GRACE)
    problem, _ = build_problem(compas_split[0], firm="ridge", collective_fraction=0.3, direction="auto", seed=0)
    X, y, a = problem.evaluation_set
    gaps = milp.fairness_gaps(problem.objective, y, a)
    model = ScoreLinearisation(problem, problem.firm, np.c_[X, np.ones(len(y))]).at(np.zeros(0, dtype=np.int64))
    limit = 0.2
    start = time.perf_counter()
    report = milp.solve(*milp.exact_threshold_problem(model, gaps, 25), solver="HIGHS", time_limit=limit)
    elapsed = time.perf_counter() - start
    assert elapsed <= milp.hard_deadline(limit) + SLACK
    assert report.time_limit_hit and report.status == cp.USER_LIMIT
    if report.hard_stopped:
        assert report.bound is None and report.mip_gap is None


# ----- the normal path: the same answers as CVXPY's in-process solve -----
CASES = [(seed, kind, 0.5 * ((seed + i) % 2), obj)
         for seed, obj in ((0, "eqod"), (1, "eqod-worst"), (2, "dp"), (3, "eqopp"))
         for i, kind in enumerate(("exact", "score-gap", "lp"))]


@pytest.mark.parametrize("seed,kind,error_weight,objective", CASES)
def test_isolated_solve_equals_the_in_process_solve(seed, kind, error_weight, objective):
    answers = []
    for isolate in (False, True, None):
        problem, z, constant = formulation(seed, kind, budget=1 + seed % 3, error_weight=error_weight,
                                           objective=objective, n=60)
        answers.append(fields(milp.solve(problem, z, constant, solver="HIGHS", time_limit=30, isolate=isolate,
                                         seed=seed)))
    assert answers[0][0] == "optimal" and answers[0][2] is not None
    assert answers[0] == answers[1] == answers[2]


@pytest.mark.parametrize("boolean", [True, False])
def test_infeasible_problems_agree(boolean):
    answers = []
    for isolate in (False, True):
        x = cp.Variable(2, boolean=boolean)
        cons = [cp.sum(x) >= 3] + ([] if boolean else [x >= 0, x <= 1])
        answers.append(fields(milp.solve(cp.Problem(cp.Minimize(cp.sum(x)), cons), x, 0.0, solver="HIGHS",
                                         time_limit=10, isolate=isolate)))
    assert answers[0] == answers[1] and answers[0][0] == "infeasible"


def test_a_time_limited_solve_keeps_highs_own_bound(compas):
    # HiGHS stops itself on its soft limit here (it checks its clock in branch and bound): its dual bound is kept.
    from fairflip.datasets import stratified_split
    from fairflip.problem import build_problem

    train, _ = stratified_split(compas, test_size=1 - 400 / len(compas.y), seed=0)
    problem, _ = build_problem(train, firm="ridge", direction="auto", seed=0)
    result = ConvexOracle(formulation="exact-milp", time_limit=0.5).select(problem, 10)
    assert result.info["status"] == "user_limit" and not result.info["hard_stopped"]
    assert result.info["bound"] is not None and result.lower_bound is not None
    assert result.info["wall_time"] <= milp.hard_deadline(0.5) + SLACK


# ----- the worker's life -----
def test_worker_is_reused_and_restarts_the_highs_scheduler_for_another_thread_count(fresh_workers):
    first = milp.solve(*formulation(8), solver="HIGHS", time_limit=30, options={"threads": 2})
    second = milp.solve(*formulation(8), solver="HIGHS", time_limit=30)  # threads=1: a restarted scheduler
    assert first.status == second.status == "optimal" and first.objective == second.objective
    assert second.options["threads"] == 1 and len(fresh_workers) == 1 and fresh_workers[0].proc.poll() is None


def test_in_process_path_restarts_the_highs_scheduler_too():
    x = cp.Variable(3, boolean=True)
    cp.Problem(cp.Minimize(cp.sum(x)), [x[0] + x[1] >= 1]).solve(solver="HIGHS", threads=0)
    report = milp.solve(*formulation(8), solver="HIGHS", time_limit=30, isolate=False)
    assert report.status == "optimal" and report.options["threads"] == 1


def test_a_dying_worker_raises_a_clear_error_and_the_next_solve_works(fresh_workers, monkeypatch):
    monkeypatch.setattr(milp, "_WORKER_RUNNER", "_milp_stand_ins:die")
    with pytest.raises(FairflipError, match=r"worker process exited unexpectedly \(exit code 3\)"):
        milp.solve(*formulation(1), solver="HIGHS", time_limit=30)
    monkeypatch.setattr(milp, "_WORKER_RUNNER", "fairflip._highs_worker:run_highs")
    assert milp.solve(*formulation(1), solver="HIGHS", time_limit=30).status == "optimal"


def test_bad_inputs_raise(fresh_workers):
    with pytest.raises(FairflipError, match="HiGHS refused the option no_such_option=3"):
        milp.solve(*formulation(2), solver="HIGHS", time_limit=30, options={"no_such_option": 3})
    # The worker survives a refused option and is reused.
    assert milp.solve(*formulation(2), solver="HIGHS", time_limit=30).status == "optimal"
    assert len(fresh_workers) == 1
    for bad in (0, -1.0, float("nan"), float("inf"), "10", True):
        with pytest.raises(FairflipError, match="time_limit must be a positive finite number"):
            milp.solve(*formulation(2), solver="HIGHS", time_limit=bad)
    with pytest.raises(FairflipError, match="isolate=True needs the HIGHS solver"):
        milp.solve(*formulation(2), solver="SCIPY", time_limit=30, isolate=True)
    with pytest.raises(FairflipError, match="isolate=True cannot pass CVXPY's own solve keywords"):
        milp.solve(*formulation(2), solver="HIGHS", time_limit=30, options={"verbose": False}, isolate=True)
    # Other solvers keep CVXPY's in-process solve.
    assert milp.solve(*formulation(2), solver="SCIPY", time_limit=30).status == "optimal"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_starts_its_own_worker_and_leaves_the_parents_alone(fresh_workers):
    reference = milp.solve(*formulation(9), solver="HIGHS", time_limit=30)
    parent_worker = fresh_workers[0]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its inherited pool is empty, so it starts (and closes) a worker of its own
        code = 1
        try:
            report = milp.solve(*formulation(9), solver="HIGHS", time_limit=30)
            ok = report.objective == reference.objective and parent_worker not in milp._idle_workers
            os.write(write, b"ok" if ok else b"bad")
            milp._close_workers()
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    answer = os.read(read, 16)
    os.close(read)
    _, status = os.waitpid(pid, 0)
    assert answer == b"ok" and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    # The parent's worker was neither used nor closed by the child.
    assert parent_worker.proc.poll() is None
    assert milp.solve(*formulation(9), solver="HIGHS", time_limit=30).objective == reference.objective
    assert len(fresh_workers) == 1


def test_the_dual_bounds_reported_on_the_way_rise_and_never_pass_the_optimum(fresh_workers):
    """Every dual bound the worker emits during a solve (what a hard-stopped solve would report) is at most the
    MILP's optimum (solved in process) and they only rise."""
    emitted = 0
    for seed in range(6):
        problem, z, constant = formulation(seed, budget=3, n=60, c=14)
        reference = milp.solve(problem, z, constant, solver="HIGHS", time_limit=60, isolate=False)
        assert reference.status == "optimal"
        opts = milp.solver_options("HIGHS", 60.0, None)
        data, _, _ = problem.get_problem_data("HIGHS", solver_opts=dict(opts))
        result, _, last = milp.run_isolated(milp._highs_request(data, opts), time.perf_counter() + 60,
                                            "_milp_stand_ins:record_bounds")
        seen = result["bounds_seen"]
        assert all(b2 > b1 for b1, b2 in zip(seen, seen[1:])), seen
        assert all(b + constant <= reference.objective + 1e-9 for b in seen), (seen, reference.objective)
        assert last == (seen[-1] if seen else None)
        emitted += len(seen)
    assert emitted > 0
