"""Smoke test of every benchmark at tiny sizes: the runner writes its JSON and every agreement figure holds.

Only agreement fields are checked (gradients, parameters, objectives, MILP bounds), never absolute times.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from benchmarks import bench_hypergrad, bench_oracle
from benchmarks.run import BENCHMARKS, main


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "results.json"
    assert main(["--quick", "--device", "cpu", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    return {b["benchmark"]: b for b in data["benchmarks"]}


def test_every_registered_benchmark_ran(results):
    assert set(results) == set(BENCHMARKS)
    for res in results.values():
        assert res["rows"] and res["wall_s"] > 0
        for row in res["rows"]:
            for key, value in row.items():
                if key.endswith(("_mb", "_s", "seconds")) and isinstance(value, float):
                    assert math.isnan(value) or value >= 0, (res["benchmark"], key, value)


def test_hypergradients_agree(results):
    rows = {r["method"].split(" ")[0]: r for r in results["hypergrad"]["rows"]}
    assert rows["implicit"]["rel_error_vs_implicit"] == 0.0
    assert rows["unrolled"]["rel_error_vs_implicit"] < 1e-6  # 10 Newton steps from the unflipped optimum
    central = [r for r in results["hypergrad"]["rows"] if r["method"].startswith("central")]
    assert len(central) == 2 and all(r["rel_error_vs_implicit"] < 1e-6 for r in central)
    if "cvxpylayers" in rows and not math.isnan(rows["cvxpylayers"]["seconds"]):
        assert rows["cvxpylayers"]["rel_error_vs_implicit"] < 1e-5  # SCS at eps 1e-10 with an LSMR derivative


def test_retraining_matches_sklearn(results):
    for row in results["retrain"]["rows"]:
        assert row["max_abs_param_diff"] < 1e-6, row


def test_knn_heuristics_compare_the_same_query(results):
    for row in results["knn"]["rows"]:
        assert row["queries"] > 0 and row["references"] > 0 and row["ratio"] > 0


def test_milp_is_proven_optimal(results):
    res = results["milp"]
    assert res["largest_optimal_n"] == res["rows"][-1]["n"]
    for row in res["rows"]:
        assert row["status"] == "optimal"
        assert row["bound"] is not None and row["bound"] <= row["objective"] + 1e-9
        assert abs(row["abs_gap"]) < 1e-6


def test_oracle_objectives_are_true_objectives(results):
    res = results["oracle"]
    assert res["source"].startswith("synthetic")
    for row in res["rows"]:
        assert row["oracle_1_fits"] > 0 and row["sweep_fits"] > 0 and 0 <= row["objective_1"] <= 1
    oracle, greedy = res["versus_greedy"]
    assert oracle["method"] == "oracle-relaxed" and greedy["method"] == "greedy"
    assert oracle["budget"] == greedy["budget"] and oracle["n_flipped"] <= oracle["budget"]


def test_finite_differences_reference_on_a_tiny_problem():
    # The benchmark's FD helper against a hand loop of central differences (one coordinate at a time).
    import torch

    bilevel, z = bench_hypergrad.make_bilevel(120, 4, candidates=6, device="cpu")
    theta = bilevel.inner(z)
    fd = bench_hypergrad.finite_differences(bilevel, z, theta, h=1e-5, chunk=2)
    for k in range(z.shape[1]):
        e = torch.zeros_like(z)
        e[0, k] = 1e-5
        up, down = bilevel.outer(bilevel.inner(z + e, theta)), bilevel.outer(bilevel.inner(z - e, theta))
        assert torch.allclose(fd[0, k], ((up - down) / 2e-5)[0], rtol=1e-8, atol=1e-12)


def test_synthetic_source_has_the_requested_shape():
    data, described = bench_oracle.load_source(500, source="synthetic", features=7)
    assert len(data) == 500 and data.features.shape[1] == 7 and described.startswith("synthetic")


def test_sparse_paths_give_the_results_of_the_paths_they_replace(results):
    rows = results["design"]["rows"]
    assert len(rows) == 4 and all(r["max_abs_diff"] < 1e-8 for r in rows), rows


def test_portfolio_enumerates_tiny_instances_and_reports_true_objectives(results):
    res = results["portfolio"]
    for row in res["rows"]:
        assert row["fits"] > 0 and 0 <= row["objective"] <= 1 and row["retrained"] > 0
    assert res["tiny"], "no tiny instance within the flip-set limit"
    for row in res["tiny"]:
        assert row["flip_sets"] <= 5_000
        assert row["same_optimum"] and row["status"] == "optimal" and row["bound_source"] == "enumeration", row
    for row in res["relaxed"]:
        assert row["fits"] > 0 and 0 <= row["objective"] <= 1


def test_cli_start_up_loads_no_heavy_module(results):
    rows = {r["command"]: r for r in results["cli"]["rows"]}
    for command in ("import fairflip", "fairflip --help", "fairflip flip --help", "fairflip flip --bad-option"):
        assert rows[command]["heavy_loaded"] == "-", command
    assert set(rows["import torch, sklearn, pandas, cvxpy"]["heavy_loaded"].split(",")) >= {"torch", "sklearn"}


def test_quick_runs_do_not_overwrite_the_tracked_results():
    from benchmarks import run

    assert run.QUICK_OUT != run.FULL_OUT and run.QUICK_OUT.startswith("benchmarks/out/")
    ignored = (Path(__file__).resolve().parents[1] / ".gitignore").read_text().split()
    assert "benchmarks/out/" in ignored
