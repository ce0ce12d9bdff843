"""The cell runner: determinism, resuming after SIGKILL without duplicates, concurrent runs on one store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest

from fairflip.experiments.backends import LocalBackend, make_backend
from fairflip.experiments.cells import Cell, run_cell
from fairflip.experiments.runner import pending_cells, run_cells
from fairflip.experiments.store import ResultStore
from fairflip._errors import FairflipError

# Columns that measure time, not results: they legitimately differ between runs.
TIMING = ["runtime_s", "select_time_s"]

SWEEP = textwrap.dedent("""
    import sys
    from fairflip.experiments.backends import LocalBackend
    from fairflip.experiments.cells import Cell
    from fairflip.experiments.runner import run_cells
    from fairflip.experiments.store import ResultStore

    def cells():
        return [Cell(study="sweep", dataset="compas", method=m, seed=s, budget=b, collective_fraction=f)
                for s in range(3) for f in (0.2, 0.3) for m in ("random", "rb-prob") for b in (0.1, 0.5, 1.0)]

    if __name__ == "__main__":
        with ResultStore(sys.argv[1]) as store:
            summary = run_cells(cells(), store, LocalBackend(workers=1), progress=False)
        print(summary.reused, summary.computed, len(summary.failed))
""")


@pytest.fixture(scope="module")
def sweep_script(tmp_path_factory):
    path = tmp_path_factory.mktemp("sweep") / "sweep.py"
    path.write_text(SWEEP)
    return path


def _cells():
    namespace: dict = {}
    exec(SWEEP, namespace)
    return namespace["cells"]()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The tidy table of an uninterrupted run of the sweep, in this process."""
    folder = tmp_path_factory.mktemp("reference")
    with ResultStore(folder) as store:
        summary = run_cells(_cells(), store, LocalBackend(workers=1), progress=False)
        assert summary.computed == 36 and not summary.failed
        return store.table().drop(columns=TIMING)


def _launch(script, folder):
    return subprocess.Popen([sys.executable, str(script), str(folder)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def test_run_cell_is_deterministic():
    cell = Cell(study="t", dataset="compas", method="rb-prob", seed=1, budget=0.3)
    a, b = run_cell(cell), run_cell(cell)
    for r in (a, b):
        r["metrics"].pop("select_time_s")
    assert a == b
    assert a["metrics"]["n_flipped"] == a["metrics"]["budget"] == round(0.3 * a["metrics"]["n_candidates"])


def test_sigkill_then_restart_finishes_without_redoing_or_duplicating(sweep_script, reference, tmp_path):
    proc = _launch(sweep_script, tmp_path)
    db = tmp_path / ResultStore.FILENAME
    deadline = time.time() + 120
    landed = 0
    while time.time() < deadline and proc.poll() is None:
        if db.exists():
            with ResultStore(tmp_path) as store:
                landed = store.count()
            if landed >= 4:
                break
        time.sleep(0.02)
    assert proc.poll() is None, "the sweep ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with ResultStore(tmp_path) as store:
        assert store.integrity() == "ok"
        before = store.count()
        finished_at = {r["config_hash"]: r["finished_at"] for r in store.records()}
    assert 4 <= before < 36
    out = subprocess.run([sys.executable, str(sweep_script), str(tmp_path)], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    reused, computed, failed = map(int, out.stdout.split())
    assert (reused, computed, failed) == (before, 36 - before, 0)
    with ResultStore(tmp_path) as store:
        assert store.integrity() == "ok"
        # cells that landed before the kill were not rewritten
        assert all(r["finished_at"] == finished_at[r["config_hash"]] for r in store.records()
                   if r["config_hash"] in finished_at)
        table = store.table().drop(columns=TIMING)
    assert table.config_hash.is_unique and len(table) == 36
    pd.testing.assert_frame_equal(table, reference, check_exact=True)


def test_two_runs_on_one_store_at_once(sweep_script, reference, tmp_path):
    procs = [_launch(sweep_script, tmp_path) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    with ResultStore(tmp_path) as store:
        assert store.integrity() == "ok"
        table = store.table().drop(columns=TIMING)
    pd.testing.assert_frame_equal(table, reference, check_exact=True)


def test_process_pool_matches_inline_and_failures_are_reported(reference, tmp_path):
    bad = Cell(study="sweep", dataset="compas", method="no-such-method", seed=0, budget=1)
    cells = _cells()[:6] + [bad]
    with ResultStore(tmp_path) as store:
        summary = run_cells(cells, store, LocalBackend(workers=2), progress=False)
        assert summary.computed == 6 and len(summary.failed) == 1
        assert summary.failed[0][0] == bad and "unknown method" in summary.failed[0][1]
        assert pending_cells(cells, store) == [bad]
        table = store.table().drop(columns=TIMING)
    expected = reference[reference.config_hash.isin(table.config_hash)].reset_index(drop=True)
    pd.testing.assert_frame_equal(table, expected, check_exact=True)


def test_backend_arguments_are_checked():
    with pytest.raises(FairflipError, match="at least 1"):
        LocalBackend(workers=0)
    with pytest.raises(FairflipError, match="only used with --backend ray"):
        make_backend("local", address="auto")
    with pytest.raises(FairflipError, match="'local' or 'ray'"):
        make_backend("dask")
