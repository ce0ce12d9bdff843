"""The Ray backend on a local Ray instance: the same results as the local backend, written to the store."""

from __future__ import annotations

import pandas as pd
import pytest

ray = pytest.importorskip("ray")

from fairflip.experiments.backends import LocalBackend, RayBackend, task_resources  # noqa: E402
from fairflip.experiments.cells import Cell  # noqa: E402
from fairflip.experiments.runner import run_cells  # noqa: E402
from fairflip.experiments.store import ResultStore  # noqa: E402

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _cells():
    # flip cells, and one cell of each kind beyond the paper (a cleaning firm, an intersectional minority)
    return [Cell(study="ray", dataset="compas", method=m, seed=s, budget=b)
            for s in (0, 1) for m in ("random", "rb-label") for b in (0.2, 1.0)] + [
        Cell(study="ray", kind="cleaning", dataset="compas", method="rb-prob", seed=0, budget=0.3, max_rows=1500,
             options={"cleaner": "loss", "stealth": True, "loss_fraction": 0.05, "safety": 0.0}),
        Cell(study="ray", kind="intersectional", dataset="compas", method="rb-prob", seed=0, budget=0.3,
             max_rows=1500, options={"minority": {"race": "African-American", "sex": "Female"}, "min_cell": 5})]


def test_small_sweep_on_ray_matches_local(local_ray, tmp_path):
    backend = RayBackend(workers=2)  # joins the running instance
    with ResultStore(tmp_path / "ray") as store:
        summary = run_cells(_cells(), store, backend, progress=False)
        assert summary.computed == 10 and not summary.failed
        got = store.table().drop(columns=["runtime_s", "select_time_s"])
        # rerun: nothing left to do
        assert run_cells(_cells(), store, backend, progress=False).reused == 10
    backend.close()
    assert ray.is_initialized(), "the backend must not shut down a Ray instance it did not start"
    with ResultStore(tmp_path / "local") as store:
        run_cells(_cells(), store, LocalBackend(workers=1), progress=False)
        want = store.table().drop(columns=["runtime_s", "select_time_s"])
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert got.recall.notna().sum() == 1 and got.worst_eqod.notna().sum() == 1


def test_failed_cell_on_ray_is_reported(local_ray, tmp_path):
    bad = Cell(study="ray", dataset="no-such-data", method="random", seed=0, budget=1)
    with ResultStore(tmp_path) as store:
        summary = run_cells([bad], store, RayBackend(workers=2), progress=False)
        assert summary.computed == 0 and "unknown dataset" in summary.failed[0][1] and store.count() == 0


def test_cuda_cells_ask_ray_for_a_gpu():
    cpu = Cell(study="ray", dataset="compas", method="random", seed=0, budget=1)
    gpu = Cell(study="ray", dataset="compas", method="oracle-relaxed", seed=0, budget=1, device="cuda")
    assert task_resources(cpu) == {"num_cpus": 1, "num_gpus": 0}
    assert task_resources(gpu) == {"num_cpus": 1, "num_gpus": 1}
