"""Tests of sweeps (table contents against one-by-one evaluation, summaries against brute force), the
``fairflip sweep`` command, and the evidence that the paper's strategies work on real and synthetic data."""

from __future__ import annotations

import itertools
import json
import os

import numpy as np
import pandas as pd
import pytest

from fairflip._errors import FairflipError
from fairflip.cli import main
from fairflip.datasets import load, make_toy_2d, stratified_split
from fairflip.methods import get_method
from fairflip.problem import build_problem, evaluate_flips
from fairflip.strategies.base import resolve_budget
from fairflip.sweep import METRICS, average_seeds, best_eqod_per_size, pareto_front, sweep

RB = ("rb-prob", "rb-label", "rb-dist")


@pytest.fixture(scope="module")
def toy_split():
    return stratified_split(make_toy_2d(600, seed=7), test_size=0.3, seed=0)


def _eqod(avg: pd.DataFrame, method: str, budget, access: str = "full") -> float:
    row = avg[(avg.method == method) & (avg.budget == budget) & (avg.access == access)]
    assert len(row) == 1
    return float(row.eqod.iloc[0])


def test_sweep_rows_match_one_by_one_evaluation(toy_split):
    train, test = toy_split
    methods, budgets = ["none", "random", "rb-label", "ideal"], [0, 5, 20]
    table = sweep(train, test, methods=methods, budgets=budgets, collective_fractions=[0.2, 0.5], seeds=[0, 1],
                  known_majority=[None, 10])
    assert len(table) == 4 * 3 * 2 * 2 * 2
    assert table.groupby(["method", "collective_fraction", "access", "budget", "seed"]).size().eq(1).all()
    assert set(table.access) == {"full", "restricted"}
    assert (table.loc[table.access == "restricted", "known_majority"] == 10).all()
    assert (table.n_flipped <= table.max_flips).all() and table.omniscient.eq(table.method == "ideal").all()
    # Every row equals choosing the flips with select() at that budget and retraining the firm alone.
    for frac, known, seed in itertools.product([0.2, 0.5], [None, 10], [0, 1]):
        prob, prep = build_problem(train, collective_fraction=frac, known_majority=known, seed=seed)
        test_arrays = (prep.transform(test), test.y, test.a, prep.transform(test, counterfactual_group=True))
        for method, budget in itertools.product(methods, budgets):
            row = table[(table.method == method) & (table.collective_fraction == frac) & (table.budget == budget)
                        & (table.access == ("full" if known is None else "restricted")) & (table.seed == seed)]
            flips = get_method(method, seed=seed).select(prob, budget).flipped
            ev = evaluate_flips(prob, flips, test=test_arrays)
            assert int(row.n_flipped.iloc[0]) == len(flips) and int(row.n_candidates.iloc[0]) == len(prob.candidates)
            for key in METRICS:
                assert row[key].iloc[0] == pytest.approx(ev["test"][key], abs=1e-12), (method, budget, key)
            assert row.objective.iloc[0] == pytest.approx(ev["objective"], abs=1e-12)


def test_budgets_as_fractions_and_validation(toy_split):
    train, test = toy_split
    table = sweep(train, test, methods=["rb-dist"], budgets=[0, 0.25, 1.0], seeds=[3])
    for _, row in table.iterrows():
        assert row.max_flips == resolve_budget(row.budget, row.n_candidates)
    assert table.n_flipped.iloc[-1] == table.n_candidates.iloc[-1]
    two_levels = average_seeds(sweep(train, test, methods=["rb-label"], budgets=[6], seeds=[0, 1],
                                     known_majority=[5, 12]))
    assert sorted(two_levels.known_majority) == [5, 12] and (two_levels.n_seeds == 2).all()
    members = np.zeros(len(train), dtype=bool)
    members[np.flatnonzero(train.a)[:40]] = True
    fixed = sweep(train, test, methods=["random"], budgets=[4], seeds=[0, 1], members=members)
    assert (fixed.collective_size == 40).all()
    assert fixed.collective_fraction.iloc[0] == pytest.approx(40 / train.a.sum())
    with pytest.raises(FairflipError, match="all counts"):
        sweep(train, test, budgets=[5, 0.5])
    with pytest.raises(FairflipError, match="not in the sweep"):
        sweep(train, test, methods=["random"], budgets=[1], method_params={"rb-label": {"k": 3}})
    with pytest.raises(FairflipError, match="at least one method"):
        sweep(train, test, methods=[], budgets=[1])


def test_pareto_front_matches_brute_force_dominance():
    rng = np.random.default_rng(0)
    rows = [dict(dataset="d", method=m, collective_fraction=0.3, access="full", known_majority=100, direction="up", budget=b, seed=s,
                 max_flips=b, n_flipped=b, eqod=rng.random(), error=rng.random())
            for m in ("a", "b") for b in range(12) for s in range(2)]
    table = pd.DataFrame(rows)
    front = pareto_front(table)
    avg = average_seeds(table)
    for m, group in avg.groupby("method"):
        pts = group[["error", "eqod"]].to_numpy()
        expected = {b for b, p in zip(group.budget, pts)
                    if not any((q <= p).all() and (q < p).any() for q in pts)}
        assert set(front[front.method == m].budget) == expected
        assert front[front.method == m].error.is_monotonic_increasing


def test_best_eqod_per_size_against_pandas():
    rng = np.random.default_rng(1)
    rows = [dict(dataset="d", method=m, collective_fraction=f, access="full", known_majority=100, direction="up", budget=b, seed=s,
                 max_flips=b, n_flipped=b, eqod=0.3 - 0.01 * b + 0.01 * rng.random(), error=0.1 + 0.005 * b)
            for m in ("a", "b") for f in (0.1, 0.3) for b in range(8) for s in range(3)]
    table = pd.DataFrame(rows)
    best = best_eqod_per_size(table)
    means = table.groupby(["method", "collective_fraction", "budget"])[["eqod", "error"]].mean().reset_index()
    for (m, f), g in means.groupby(["method", "collective_fraction"]):
        got = best[(best.method == m) & (best.collective_fraction == f)].iloc[0]
        assert got.budget == g.loc[g.eqod.idxmin(), "budget"]
        assert got.base_eqod == pytest.approx(g[g.budget == 0].eqod.iloc[0])
        assert got.eqod_reduction == pytest.approx(1 - got.eqod / got.base_eqod)
        capped = g[g.error <= g[g.budget == 0].error.iloc[0] + 0.02 + 1e-12]
        got_capped = best_eqod_per_size(table, max_error_increase=0.02)
        got_capped = got_capped[(got_capped.method == m) & (got_capped.collective_fraction == f)].iloc[0]
        assert got_capped.budget == capped.loc[capped.eqod.idxmin(), "budget"] == 4
    with pytest.raises(FairflipError, match="needs budget 0"):
        best_eqod_per_size(table[table.budget > 0], max_error_increase=0.02)


def test_cli_sweep_json_and_csv(tmp_path, capsys):
    out = tmp_path / "sweep.csv"
    code = main(["sweep", "--dataset", "compas", "--direction", "auto", "--methods", "random,rb-label",
                 "--budgets", "0,0.3", "--n-seeds", "2", "--param", "rb-label:k=5", "--out", str(out), "--json",
                 "--max-error-increase", "0.02"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_rows"] == 2 * 2 * 2 and len(report["best"]) == 2
    table = pd.read_csv(out)
    assert len(table) == 8 and set(table.direction) == {"down"}
    assert {r["method"] for r in report["pareto"]} == {"random", "rb-label"}
    assert all(r["error"] <= r["base_error"] + 0.02 + 1e-12 for r in report["best"])


@pytest.mark.parametrize("argv, message", [
    (["--budgets", "5,0.5"], "all counts"),
    (["--budgets", "x"], "comma-separated numbers"),
    (["--param", "rb-dist:k=3"], "method of --methods"),
    (["--param", "random:bogus=1"], "bad parameters"),
    (["--n-seeds", "0"], "at least 1"),
    (["--budgets", "3", "--max-error-increase", "0.02"], "needs budget 0"),
])
def test_cli_sweep_errors(capsys, argv, message):
    assert main(["sweep", "--dataset", "compas", "--methods", "random", "--n-seeds", "1", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fairflip: error:") and message in err and err.count("\n") == 1


# ----- evidence: the paper's claims on real data (logistic firm, collective = 30% of the minority) -----

def _check_rb_beats_random(table: pd.DataFrame, budgets: list[float]) -> None:
    avg = average_seeds(table)
    assert (avg.n_seeds >= 5).all()
    for method, budget in itertools.product(RB, budgets):
        assert _eqod(avg, method, budget) < _eqod(avg, "random", budget), (method, budget)
    best = best_eqod_per_size(table, max_error_increase=0.02)
    for method in RB:
        row = best[(best.method == method) & (best.access == "full")].iloc[0]
        assert row.budget > 0 and row.eqod <= (2 / 3) * row.base_eqod, method
        assert row.error <= row.base_error + 0.02


def test_evidence_compas(compas_split):
    # African-American defendants are the minority; their recidivism label is more often 1, so the helpful
    # direction is 'down' (auto). Budgets up to 40% of the candidates: beyond about half, flipping even at random
    # removes the gap and every strategy saturates (reported in the issue note).
    train, test = compas_split
    table = sweep(train, test, methods=["random", *RB], budgets=[0, 0.2, 0.3, 0.4, 0.6], seeds=range(5),
                  direction="auto")
    assert set(table.direction) == {"down"}
    _check_rb_beats_random(table, [0.2, 0.3, 0.4])


def _adult():
    return stratified_split(load("adult"), test_size=0.3, seed=0)


def test_evidence_adult_light():
    train, test = _adult()
    table = sweep(train, test, methods=["random", *RB], budgets=[0, 0.1, 0.2], seeds=range(5), direction="auto")
    assert set(table.direction) == {"up"}
    _check_rb_beats_random(table, [0.1, 0.2])


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("FAIRFLIP_SLOW"), reason="about 6 minutes; set FAIRFLIP_SLOW=1 to run")
def test_evidence_adult_full_grid_and_restricted_access():
    train, test = _adult()
    table = sweep(train, test, methods=["random", *RB, "massaging"], budgets=[0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3],
                  seeds=range(5), direction="auto", known_majority=[None, 10])
    _check_rb_beats_random(table[table.access == "full"], [0.02, 0.05, 0.1, 0.15, 0.2, 0.3])
    assert (table[table.access == "restricted"].known_majority == 10).all()


def test_restricted_access_runs_next_to_full(compas_split):
    train, test = compas_split
    table = sweep(train, test, methods=["random", *RB], budgets=[0, 0.4], seeds=range(2), direction="auto",
                  known_majority=[None, 10])
    avg = average_seeds(table)
    assert set(avg.access) == {"full", "restricted"}
    for method in RB:
        # m = 10 known majority rows still cut EqOd well below the unchanged firm's.
        assert _eqod(avg, method, 0.4, "restricted") < 0.75 * _eqod(avg, method, 0, "restricted")


# ----- evidence on the synthetic causal model, whose ideal strategy is known -----

@pytest.fixture(scope="module")
def toy_large():
    return stratified_split(make_toy_2d(4000, seed=0), test_size=0.3, seed=0)


def test_ideal_is_at_least_as_fair_as_every_heuristic(toy_large):
    train, test = toy_large
    heuristics = ["random", *RB, "massaging"]
    budgets = [0.1, 0.2, 0.3]
    table = sweep(train, test, methods=["ideal", *heuristics], budgets=budgets, seeds=range(5))
    ideal = table[table.method == "ideal"]
    assert (ideal.n_flipped == ideal.max_flips).all()  # the ideal flips the full budget here: equal budgets
    avg = average_seeds(table)
    for budget in budgets:
        for method in heuristics:
            # rb-prob and massaging rank (almost) exactly like the ideal in this linear model (the group only
            # shifts x), so they tie with it up to estimation error; the tolerance covers that tie, not a gap.
            assert _eqod(avg, "ideal", budget) <= _eqod(avg, method, budget) + 0.003, (method, budget)
        assert _eqod(avg, "ideal", budget) < _eqod(avg, "random", budget) - 0.01


def test_success_rises_with_collective_size(toy_large):
    train, test = toy_large
    fractions = [0.05, 0.1, 0.2, 0.3]
    table = sweep(train, test, methods=["ideal", "rb-prob"], budgets=[0.2, 1.0], collective_fractions=fractions,
                  seeds=range(5))
    avg = average_seeds(table)
    for method, budget in [("ideal", 0.2), ("ideal", 1.0), ("rb-prob", 0.2)]:
        s = [float(avg[(avg.method == method) & (avg.budget == budget) & (avg.collective_fraction == f)].success.iloc[0])
             for f in fractions]
        assert all(b > a for a, b in zip(s, s[1:])), (method, budget, s)


def test_sweep_passes_time_limit_and_reports_progress(toy_split):
    """The time limit reaches every method call, progress counts the calls up to the total and relays the
    method's own best/bound reports, and each row carries its result's status."""
    from fairflip.methods import FlipMethod, FlipResult, register_method

    seen = []

    @register_method("test-sweep-recorder")
    class Recorder(FlipMethod):
        omniscient = True

        def _select_many(self, problem, budgets, control):
            seen.append(control.time_limit)
            control.report(stage="search", best=0.25, bound=0.125)
            status = "time_limit" if control.time_limit is not None and control.time_limit < 1 else "feasible"
            return [FlipResult(flipped=problem.candidates[:M], status=status, time_limit_hit=status == "time_limit")
                    for M in budgets]

    train, test = toy_split
    reports = []
    table = sweep(train, test, methods=["random", "test-sweep-recorder"], budgets=[0, 3], seeds=[0, 1],
                  collective_fractions=[0.2, 0.4], time_limit=0.5, progress=reports.append)
    assert seen == [0.5] * 4  # one call per problem (2 fractions x 2 seeds)
    assert set(table.loc[table.method == "random", "status"]) == {"ranked"}
    assert set(table.loc[table.method == "test-sweep-recorder", "status"]) == {"time_limit"}
    counts = [r["done"] for r in reports if "done" in r]
    assert counts[-1] == 8 and all(r.get("total", 8) == 8 for r in reports) and counts == sorted(counts)
    relayed = [r for r in reports if r.get("best") == 0.25]
    assert len(relayed) == 4 and all(r["bound"] == 0.125 and "done" not in r for r in relayed)
    table = sweep(train, test, methods=["test-sweep-recorder"], budgets=[2], seeds=[0])
    assert seen[-1] is None and set(table.status) == {"feasible"}
