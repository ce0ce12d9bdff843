"""Run a list of cells through a backend into the results store, skipping the ones already finished."""

from __future__ import annotations

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
              desc: str = "cells") -> RunSummary:
    """Compute every cell of ``cells`` not yet in ``store`` with ``backend``, writing each as it finishes.

    Args:
        cells: the planned cells (duplicates are run once).
        store: the results store; each finished cell is committed at once, so an interrupted run loses at most
            the cells in flight.
        backend: a backend from :mod:`fairflip.experiments.backends`.
        progress: show a tqdm progress bar (on stderr).
        desc: the progress bar's label.

    Returns:
        a :class:`RunSummary`.
    """
    from tqdm.auto import tqdm

    todo = pending_cells(cells, store)
    planned = len({c.config_hash for c in cells})
    summary = RunSummary(planned=planned, reused=planned - len(todo))
    if not todo:
        return summary
    with tqdm(total=len(todo), desc=desc, unit="cell", disable=not progress, leave=True) as bar:
        for out in backend.run(todo):
            if out.error is None:
                store.add(out.cell, out.result, out.runtime_s)
                summary.computed += 1
            else:
                summary.failed.append((out.cell, out.error))
                bar.set_postfix(failed=len(summary.failed))
            bar.update(1)
    return summary
