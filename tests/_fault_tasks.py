"""Light tasks and a driver script for the fault tests: cells that sleep instead of training a firm.

The task logs every start and finish (``<event> <config hash> <pid>``) to the file named by ``FAULT_LOG``
and sleeps ``FAULT_SLEEP`` seconds (after waiting for the file ``FAULT_GATE`` to exist, when set), so a test
can see which worker runs what and count how often each cell ran.
"""

from __future__ import annotations

import json
import os
import time


def sleepy_task(cell_dict: dict) -> tuple[dict, float, None]:
    """A stand-in for ``backends.execute``: returns a result derived from the cell's seed after a sleep."""
    from hashlib import sha256

    key = sha256(json.dumps(cell_dict, sort_keys=True).encode()).hexdigest()[:16]
    log = os.environ["FAULT_LOG"]
    with open(log, "a") as fh:
        fh.write(f"start {key} {os.getpid()}\n")
    gate = os.environ.get("FAULT_GATE")
    while gate and not os.path.exists(gate):  # hold every run's first cell until the test opens the gate
        time.sleep(0.02)
    time.sleep(float(os.environ.get("FAULT_SLEEP", "0.2")))
    with open(log, "a") as fh:
        fh.write(f"end {key} {os.getpid()}\n")
    seed = int(cell_dict["seed"])
    return {"metrics": {"eqod": seed / 100, "error": 0.2, "budget": 1, "n_flipped": 1}, "extra": {}}, 0.0, None


DRIVER = """
import sys
sys.path.insert(0, {tests!r})

if __name__ == "__main__":
    # imports under the guard: spawned workers re-import this script, and need none of this
    from _fault_tasks import sleepy_task, cells
    from fairflip.experiments.backends import LocalBackend
    from fairflip.experiments.runner import run_cells
    from fairflip.experiments.store import ResultStore

    folder, n, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with ResultStore(folder) as store:
        summary = run_cells(cells(n), store, LocalBackend(workers=workers, task=sleepy_task), progress=False,
                            poll_s=0.05)
    print(summary.reused, summary.computed, len(summary.failed), flush=True)
"""


def cells(n: int):
    """``n`` distinct cells (seeds 0 .. n - 1)."""
    from fairflip.experiments.cells import Cell

    return [Cell(study="faults", dataset="compas", method="random", seed=s, budget=1) for s in range(n)]
