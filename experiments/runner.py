"""Run a list of cells through a backend into the results store, skipping the ones already finished."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .cells import Cell
from .store import ResultStore


@dataclass
class RunSummary:
    """What one call of :func:`run_cells` did.

    Attributes:
        planned: number of distinct cells asked for.
        reused: cells found finished in the store (not recomputed).
        computed: cells computed and written now.
        failed: (cell, traceback text) of the cells that raised; they are not stored and run again next time.
    """

    planned: int = 0
    reused: int = 0
    computed: int = 0
    failed: list[tuple[Cell, str]] = field(default_factory=list)


def pending_cells(cells: list[Cell], store: ResultStore) -> list[Cell]:
    """The distinct cells of ``cells`` that the store does not hold yet, in their given order."""
    seen: set[str] = set()
    unique = []
    for c in cells:
        if c.config_hash not in seen:
            seen.add(c.config_hash)
            unique.append(c)
    done = store.done(seen)
    return [c for c in unique if c.config_hash not in done]


def run_cells(cells: list[Cell], store: ResultStore, backend, *, progress: bool = True,
              desc: str = "cells", poll_s: float = 0.25) -> RunSummary:
    """Compute every cell of ``cells`` not yet in ``store`` with ``backend``, writing each as it finishes.

    Each cell is claimed in the store just before it is handed to the backend, so two runs on one store share
    the work: a cell that another live run has claimed is left to it, and counted as reused once that run has
    written it (or run here if that run ends without writing it). No cell is computed twice, and the counters are
    honest: ``computed`` counts the rows this run wrote, ``reused`` the cells it found written.

    Args:
        cells: the planned cells (duplicates are run once).
        store: the results store; each finished cell is committed at once, so an interrupted run loses at most
            the cells in flight (their claims die with the run, and the next run takes them over).
        backend: a backend from :mod:`fairflip.experiments.backends`.
        progress: show a tqdm progress bar (on stderr).
        desc: the progress bar's label.
        poll_s: how often to look at cells that another run is computing.

    Returns:
        a :class:`RunSummary`.
    """
    from tqdm.auto import tqdm

    todo = pending_cells(cells, store)
    planned = len({c.config_hash for c in cells})
    summary = RunSummary(planned=planned, reused=planned - len(todo))
    if not todo:
        return summary
    last_beat = time.monotonic()
    with tqdm(total=len(todo), desc=desc, unit="cell", disable=not progress, leave=True) as bar:
        def claimed(batch: list[Cell], busy: list[Cell]):
            for cell in batch:
                state = store.claim(cell.config_hash)
                if state == "claimed":
                    yield cell
                elif state == "done":
                    summary.reused += 1
                    bar.update(1)
                else:
                    busy.append(cell)

        try:
            batch = todo
            while batch:
                busy: list[Cell] = []
                for out in backend.run(claimed(batch, busy)):
                    if out.error is None:
                        if store.add(out.cell, out.result, out.runtime_s):
                            summary.computed += 1
                        else:  # another run wrote it first (only after its claim went stale)
                            summary.reused += 1
                    else:
                        store.release([out.cell.config_hash])
                        summary.failed.append((out.cell, out.error))
                        bar.set_postfix(failed=len(summary.failed))
                    bar.update(1)
                    if time.monotonic() - last_beat > 30:
                        store.heartbeat()
                        last_beat = time.monotonic()
                # Cells another run holds: wait until it writes them, or take them over when it is gone.
                batch = []
                while busy and not batch:
                    time.sleep(poll_s)
                    if time.monotonic() - last_beat > 30:
                        store.heartbeat()
                        last_beat = time.monotonic()
                    done = store.done(c.config_hash for c in busy)
                    held = store.claims()
                    still = []
                    for cell in busy:
                        if cell.config_hash in done:
                            summary.reused += 1
                            bar.update(1)
                        elif cell.config_hash in held:
                            still.append(cell)
                        else:
                            batch.append(cell)
                    busy = still
                    if batch:
                        # run the freed cells now; the ones still held are looked at again afterwards
                        batch.extend(busy)
                        busy = []
        finally:
            store.release()
    return summary
