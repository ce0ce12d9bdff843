"""Where cells run: in this process, in a local process pool, or on a Ray cluster.

Every backend yields :class:`Outcome` objects as cells finish, in completion order; the runner (one process,
the driver) writes each to the results store at once. Workers never touch the store, so the store has one writer
per run whatever the backend.
"""

from __future__ import annotations

import os
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Iterable, Iterator, Literal

from fairflip._errors import FairflipError

from .cells import Cell, run_cell

BackendName = Literal["local", "ray"]


@dataclass
class Outcome:
    """A finished cell: its result, or the error that stopped it.

    Attributes:
        cell: the cell.
        result: ``run_cell``'s output, or None when it failed.
        runtime_s: wall time of the cell in seconds.
        error: the failure's traceback text, or None.
    """

    cell: Cell
    result: dict | None
    runtime_s: float
    error: str | None = None


def execute(cell_dict: dict) -> tuple[dict | None, float, str | None]:
    """Run one cell given as a dict (what travels to worker processes); returns (result, runtime, error)."""
    cell = Cell.from_dict(cell_dict)
    t0 = time.perf_counter()
    try:
        result = run_cell(cell)
    except Exception:  # a failed cell is reported and retried on the next run; it must not stop the others
        return None, time.perf_counter() - t0, traceback.format_exc()
    return result, time.perf_counter() - t0, None


class LocalBackend:
    """Cells in this process (``workers=1``) or in a pool of ``workers`` spawned processes.

    Spawned (not forked) workers: torch's thread pools do not survive a fork safely.
    """

    def __init__(self, *, workers: int = 1) -> None:
        if workers < 1:
            raise FairflipError(f"--workers must be at least 1, got {workers}")
        self.workers = workers

    def run(self, cells: Iterable[Cell]) -> Iterator[Outcome]:
        """Yield an Outcome per cell as each finishes."""
        cells = list(cells)
        if self.workers == 1 or len(cells) <= 1:
            for cell in cells:
                yield Outcome(cell, *execute(cell.to_dict()))
            return
        with ProcessPoolExecutor(max_workers=self.workers, mp_context=get_context("spawn")) as pool:
            pending = {pool.submit(execute, c.to_dict()): c for c in cells}
            try:
                while pending:
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        yield Outcome(pending.pop(fut), *fut.result())
            finally:
                for fut in pending:
                    fut.cancel()

    def close(self) -> None:
        """Nothing to release (the pool closes with each run)."""


def task_resources(cell: Cell) -> dict:
    """Ray resources of one cell's task: one CPU, plus one GPU when the cell runs on cuda."""
    return {"num_cpus": 1, "num_gpus": 1 if cell.device == "cuda" else 0}


class RayBackend:
    """Cells as Ray tasks on a local Ray instance or a cluster.

    Args:
        address: a running cluster's address (``ray://host:10001`` or ``host:6379``, or ``auto`` on a cluster
            node); None starts a local instance with ``workers`` CPUs.
        workers: CPUs of the local instance (ignored with ``address``).

    Each task asks Ray for one CPU, and cells with ``device="cuda"`` also for one GPU (``num_gpus=1``), so Ray
    places them on GPU nodes. fairflip must be installed, at the same version, on every node;
    ``FAIRFLIP_DATA`` is forwarded to the workers when set.
    """

    def __init__(self, *, address: str | None = None, workers: int = 1) -> None:
        try:
            import ray
        except ImportError as exc:
            raise FairflipError("the ray backend needs Ray: pip install 'fairflip[ray]'") from exc
        self._ray = ray
        self._owns = not ray.is_initialized()
        if self._owns:
            data = os.environ.get("FAIRFLIP_DATA")
            env = {"env_vars": {"FAIRFLIP_DATA": data}} if data else None
            kwargs = dict(include_dashboard=False, log_to_driver=False, runtime_env=env)
            if address is None:
                ray.init(num_cpus=workers, **kwargs)
            else:
                ray.init(address=address, **kwargs)
        self._task = ray.remote(execute)
        self._window = max(4, 2 * int(ray.cluster_resources().get("CPU", 1)))

    def run(self, cells: Iterable[Cell]) -> Iterator[Outcome]:
        """Yield an Outcome per cell as each finishes; at most a window of tasks is in flight at once."""
        ray = self._ray
        queue = list(cells)[::-1]
        in_flight: dict = {}
        try:
            while queue or in_flight:
                while queue and len(in_flight) < self._window:
                    cell = queue.pop()
                    ref = self._task.options(**task_resources(cell)).remote(cell.to_dict())
                    in_flight[ref] = cell
                done, _ = ray.wait(list(in_flight), num_returns=1)
                for ref in done:
                    yield Outcome(in_flight.pop(ref), *ray.get(ref))
        finally:
            for ref in in_flight:
                ray.cancel(ref)

    def close(self) -> None:
        """Shut Ray down when this backend started it."""
        if self._owns and self._ray.is_initialized():
            self._ray.shutdown()


def make_backend(name: BackendName, *, workers: int = 1, address: str | None = None):
    """Return the backend ``name`` (``local`` or ``ray``)."""
    if name == "local":
        if address is not None:
            raise FairflipError("--address is only used with --backend ray")
        return LocalBackend(workers=workers)
    if name == "ray":
        return RayBackend(address=address, workers=workers)
    raise FairflipError(f"backend must be 'local' or 'ray', got {name!r}")
