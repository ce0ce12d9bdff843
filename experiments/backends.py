"""Where cells run: in this process, in a local process pool, or on a Ray cluster.

Every backend yields :class:`Outcome` objects as cells finish, in completion order; the runner (one process,
the driver) writes each to the results store at once. Workers never touch the store, so the store has one writer
per run whatever the backend.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import itertools
import os
import signal
import sys
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Literal

from fairflip._errors import FairflipError

if TYPE_CHECKING:  # cells imports torch; pool workers import this module first, and only need it to run a cell
    from .cells import Cell

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
    from .cells import Cell, run_cell

    cell = Cell.from_dict(cell_dict)
    t0 = time.perf_counter()
    try:
        result = run_cell(cell)
    except Exception:  # a failed cell is reported and retried on the next run; it must not stop the others
        return None, time.perf_counter() - t0, traceback.format_exc()
    return result, time.perf_counter() - t0, None


_PR_SET_PDEATHSIG = 1


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(1)


def worker_init(parent: int) -> None:
    """Initializer of every pool worker: the worker dies with its driver and leaves Ctrl-C to the driver.

    - On Linux the kernel sends the worker SIGKILL when its parent dies (``prctl(PR_SET_PDEATHSIG)``), so a
      driver killed even by SIGKILL leaves no orphaned worker; elsewhere (and as a second line on Linux) a daemon
      thread ends the worker within a second of its parent's death.
    - SIGINT is ignored: Ctrl-C reaches the whole process group, and the driver alone decides to stop (it then
      kills its workers at once instead of waiting for their cells).

    Args:
        parent: the driver's process id.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the driver died before the line above took effect
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), name="fairflip-parent-watch", daemon=True).start()


def _kill_pool(pool: ProcessPoolExecutor) -> None:
    """Stop a pool now: cancel what has not started and kill the workers (their cells are lost and rerun)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    for proc in procs:
        try:
            proc.kill()
        except (OSError, ValueError):
            pass
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        try:
            proc.join(2)
        except (OSError, ValueError, AssertionError):
            pass


class LocalBackend:
    """Cells in this process (``workers=1``) or in a pool of ``workers`` spawned processes.

    Spawned (not forked) workers: torch's thread pools do not survive a fork safely. Cells are taken from the
    given iterable lazily, at most ``workers`` in flight, so a runner can claim each cell just before it starts.
    Workers die with the driver (see :func:`worker_init`); an exception or Ctrl-C in the driver kills them at
    once instead of waiting for the cells in flight.

    Args:
        workers: number of processes (1: run in this process).
        task: the function run per cell (a module-level function of the cell's dict returning
            ``(result, runtime_s, error)``, like :func:`execute`); tests pass a lighter one.
    """

    def __init__(self, *, workers: int = 1, task: Callable[[dict], tuple] = execute) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise FairflipError(f"--workers must be at least 1, got {workers}")
        self.workers = workers
        self.task = task

    def run(self, cells: Iterable[Cell]) -> Iterator[Outcome]:
        """Yield an Outcome per cell as each finishes."""
        stream = iter(cells)
        if self.workers == 1:
            for cell in stream:
                yield Outcome(cell, *self.task(cell.to_dict()))
            return
        first = next(stream, None)
        if first is None:
            return
        second = next(stream, None)
        if second is None:
            yield Outcome(first, *self.task(first.to_dict()))
            return
        stream = itertools.chain([first, second], stream)
        pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=get_context("spawn"),
                                   initializer=worker_init, initargs=(os.getpid(),))
        finished_ok = False
        try:
            pending: dict = {}
            exhausted = False
            while True:
                while not exhausted and len(pending) < self.workers:
                    cell = next(stream, None)
                    if cell is None:
                        exhausted = True
                        break
                    pending[pool.submit(self.task, cell.to_dict())] = cell
                if not pending:
                    break
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    cell = pending.pop(fut)
                    try:
                        outcome = Outcome(cell, *fut.result())
                    except BrokenProcessPool:
                        raise
                    except Exception:  # the task itself could not be sent or returned
                        outcome = Outcome(cell, None, 0.0, traceback.format_exc())
                    yield outcome
            finished_ok = True
        finally:
            if finished_ok:
                pool.shutdown(wait=True)
            else:  # Ctrl-C, an error, or the consumer stopped early: do not wait for cells in flight
                _kill_pool(pool)

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
        """Yield an Outcome per cell as each finishes; at most a window of tasks is in flight at once, and cells
        are taken from ``cells`` lazily (so a runner can claim each just before it is submitted)."""
        ray = self._ray
        stream = iter(cells)
        exhausted = False
        in_flight: dict = {}
        try:
            while True:
                while not exhausted and len(in_flight) < self._window:
                    cell = next(stream, None)
                    if cell is None:
                        exhausted = True
                        break
                    ref = self._task.options(**task_resources(cell)).remote(cell.to_dict())
                    in_flight[ref] = cell
                if not in_flight:
                    break
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
