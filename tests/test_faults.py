"""Faults of a run: SIGKILL of the driver, Ctrl-C, two runs on one store, a damaged store.

The cells here sleep instead of training a firm (``tests/_fault_tasks.py``), so each scenario takes seconds.
"""

from __future__ import annotations

import collections
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _fault_tasks import DRIVER, cells, sleepy_task
from fairflip._errors import FairflipError
from fairflip.experiments.backends import LocalBackend
from fairflip.experiments.runner import run_cells
from fairflip.experiments.store import ResultStore, StoreError

TESTS = str(Path(__file__).resolve().parent)


@pytest.fixture()
def driver(tmp_path):
    path = tmp_path / "driver.py"
    path.write_text(DRIVER.format(tests=TESTS))
    return path


def _env(log: Path, sleep: float, gate: Path | None = None) -> dict:
    env = {**os.environ, "FAULT_LOG": str(log), "FAULT_SLEEP": str(sleep)}
    if gate is not None:
        env["FAULT_GATE"] = str(gate)
    return env


def _default_sigint() -> None:
    # A program started from a shell gets Ctrl-C's default disposition; the test process's own may have been
    # changed by a library (an ignored SIGINT would be inherited through exec), so the driver starts as from a shell.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _launch(driver, folder, n, workers, log, sleep, gate=None, **kw):
    return subprocess.Popen([sys.executable, str(driver), str(folder), str(n), str(workers)],
                            env=_env(log, sleep, gate), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint, **kw)


def _events(log: Path) -> list[tuple[str, str, int]]:
    if not log.exists():
        return []
    return [(e, k, int(p)) for e, k, p in (line.split() for line in log.read_text().splitlines() if line)]


def _alive(pid: int) -> bool:
    """True when the process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _stored(folder: Path) -> int:
    db = folder / ResultStore.FILENAME
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("SELECT COUNT(*) FROM cells").fetchone()[0]
    except sqlite3.Error:
        return 0


def _resume(driver, folder, n, log):
    out = subprocess.run([sys.executable, str(driver), str(folder), str(n), "2"], env=_env(log, 0.01),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return tuple(map(int, out.stdout.split()))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigkill_of_the_driver_leaves_no_orphaned_workers(driver, tmp_path):
    log, folder = tmp_path / "log", tmp_path / "store"
    proc = _launch(driver, folder, 6, 2, log, 60.0)
    workers = _wait_for(lambda: {p for e, _, p in _events(log) if e == "start"} if
                        len({p for e, _, p in _events(log) if e == "start"}) == 2 else None, 60, "two workers")
    assert all(_alive(p) for p in workers) and proc.pid not in workers
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    t0 = time.monotonic()
    _wait_for(lambda: not any(_alive(p) for p in workers), 5, "the workers to die with their driver")
    assert time.monotonic() - t0 < 5
    # the killed run's claims do not block the next run: it computes every cell
    assert _resume(driver, folder, 6, log) == (0, 6, 0)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ctrl_c_stops_within_seconds_and_the_run_resumes(driver, tmp_path):
    log, folder = tmp_path / "log", tmp_path / "store"
    n = 8
    # the driver leads its own process group, so SIGINT to the group is Ctrl-C in its terminal
    proc = _launch(driver, folder, n, 2, log, 1.0, start_new_session=True)
    _wait_for(lambda: _stored(folder) >= 2, 90, "two finished cells")
    workers = {p for e, _, p in _events(log)}
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    proc.communicate(timeout=30)
    elapsed = time.monotonic() - t0
    assert elapsed < 5, f"Ctrl-C took {elapsed:.1f} s"
    assert proc.returncode != 0
    _wait_for(lambda: not any(_alive(p) for p in workers), 5, "the workers to stop")
    before = _stored(folder)
    assert 2 <= before < n
    reused, computed, failed = _resume(driver, folder, n, log)
    assert (reused, computed, failed) == (before, n - before, 0)
    ends = collections.Counter(k for e, k, _ in _events(log) if e == "end")
    assert len(ends) == n and max(ends.values()) == 1  # no finished cell was computed again
    with ResultStore(folder) as store:
        assert store.count() == n and store.integrity() == "ok" and store.claims() == {}


def test_two_concurrent_runs_share_the_work(driver, tmp_path):
    log, folder = tmp_path / "log", tmp_path / "store"
    n = 12
    gate = tmp_path / "gate"
    # Both runs start at once; each holds its first claimed cell until both have one (however slowly they
    # start on a busy machine), then they race through the rest.
    first = _launch(driver, folder, n, 1, log, 0.1, gate)
    second = _launch(driver, folder, n, 1, log, 0.1, gate)
    _wait_for(lambda: len({p for e, _, p in _events(log) if e == "start"}) == 2, 120, "both runs' first cells")
    gate.write_text("")
    outs = [p.communicate(timeout=120) for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, [o[1][-2000:] for o in outs]
    counts = [tuple(map(int, o[0].split())) for o in outs]
    starts = collections.Counter(k for e, k, _ in _events(log) if e == "start")
    assert len(starts) == n and max(starts.values()) == 1, "a cell was computed twice"
    # honest counters: together the runs computed every cell once, and each reused what the other computed
    (r1, c1, f1), (r2, c2, f2) = counts
    assert f1 == f2 == 0 and c1 + c2 == n and r1 + c1 == n and r2 + c2 == n
    assert c1 > 0 and c2 > 0, "one run found nothing to do: the runs did not share the work"
    with ResultStore(folder) as store:
        assert store.count() == n and store.integrity() == "ok"


def _filled_store(folder: Path, n: int) -> list[str]:
    os.environ["FAULT_LOG"] = str(folder.parent / f"{folder.name}.log")
    os.environ["FAULT_SLEEP"] = "0"
    try:
        with ResultStore(folder) as store:
            summary = run_cells(cells(n), store, LocalBackend(task=sleepy_task), progress=False)
            assert summary.computed == n
            return sorted(store.done())
    finally:
        del os.environ["FAULT_LOG"], os.environ["FAULT_SLEEP"]


def test_damaged_store_clear_error_then_recovery(tmp_path):
    n = 400  # many pages, so damage in the middle leaves readable rows on both sides
    good = tmp_path / "good"
    hashes = _filled_store(good, n)
    data = (good / ResultStore.FILENAME).read_bytes()
    page = int.from_bytes(data[16:18], "big")
    assert len(data) > 20 * page
    rng = random.Random(0)
    middle = bytearray(data)
    for p in (len(data) // page // 2, len(data) // page // 2 + 1):
        middle[p * page:(p + 1) * page] = bytes(rng.getrandbits(8) for _ in range(page))
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
    conn.close()
    cases = {
        "garbage": (bytes(rng.getrandbits(8) for _ in range(8192)), "not a SQLite database"),
        "truncated": (data[: len(data) // 3], "truncated"),
        "header-only": (data[:60], "truncated"),
        "middle": (bytes(middle), "damaged"),
        "foreign": (foreign.read_bytes(), "another program"),
    }
    for name, (content, fragment) in cases.items():
        folder = tmp_path / name
        folder.mkdir()
        db = folder / ResultStore.FILENAME
        db.write_bytes(content)
        with pytest.raises(StoreError, match=fragment) as info:
            ResultStore(folder)
        assert isinstance(info.value, FairflipError) and str(db) in str(info.value) and "recover" in str(info.value)
        assert db.read_bytes() == content, f"{name}: the damaged store was written to"
        with ResultStore.recover(folder) as store:
            aside, salvaged = store.recovered
            assert aside.read_bytes() == content and aside.parent == folder
            assert store.integrity() == "ok" and store.count() == salvaged
            kept = store.done()
            assert kept <= set(hashes)
            if name == "middle":
                assert 0 < salvaged < n  # both sides of the damage were read back
            if name in ("garbage", "foreign", "header-only"):
                assert salvaged == 0
            # the salvaged rows are the originals, and a resumed run computes exactly the rest
            with ResultStore(good) as ref:
                want = {r["config_hash"]: r["metrics"] for r in ref.records(kept)}
            assert {r["config_hash"]: r["metrics"] for r in store.records()} == want
            os.environ["FAULT_LOG"], os.environ["FAULT_SLEEP"] = str(tmp_path / "resume.log"), "0"
            try:
                summary = run_cells(cells(n), store, LocalBackend(task=sleepy_task), progress=False)
            finally:
                del os.environ["FAULT_LOG"], os.environ["FAULT_SLEEP"]
            assert (summary.reused, summary.computed) == (salvaged, n - salvaged)
        assert ResultStore.diagnose(folder / ResultStore.FILENAME) is None


def test_ctrl_c_of_a_serial_run_stops_at_once_and_leaves_no_claim(driver, tmp_path):
    log, folder = tmp_path / "log", tmp_path / "store"
    proc = _launch(driver, folder, 3, 1, log, 60.0, start_new_session=True)  # one process, a 60 s cell
    _wait_for(lambda: any(e == "start" for e, _, _ in _events(log)), 90, "the first cell to start")
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    proc.communicate(timeout=30)
    assert time.monotonic() - t0 < 5 and proc.returncode != 0
    with ResultStore(folder) as store:
        assert store.count() == 0 and store.claims() == {} and store.integrity() == "ok"
    assert _resume(driver, folder, 3, log) == (0, 3, 0)
