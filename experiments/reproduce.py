"""The main job: plan the studies, run their cells (resuming from the store), export the tidy table, report."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from fairflip._errors import FairflipError

from .backends import make_backend
from .report import write_report
from .runner import RunSummary, run_cells
from .store import ResultStore
from .studies import ORACLES, STUDIES, STUDY_ORDER, StudyResult, load_config

SLOW_FIRMS = ("mlp", "gbdt")


@dataclass
class ReproduceSummary:
    """Outcome of :func:`reproduce`.

    Attributes:
        html, markdown: the report's paths.
        export: the tidy results table (CSV) of this run's cells.
        store: the results store (SQLite) that a rerun resumes from.
        run: what the cell runner did (planned, reused, computed, failed).
        results: the summarised studies.
        wall_s: wall time in seconds.
    """

    html: Path
    markdown: Path
    export: Path
    store: Path
    run: RunSummary
    results: list[StudyResult] = field(default_factory=list)
    wall_s: float = 0.0


def reproduce(
    *,
    out: str | Path = "results",
    studies: Sequence[str] | None = None,
    quick: bool = False,
    seeds: int | None = None,
    backend: str = "local",
    workers: int = 1,
    address: str | None = None,
    progress: bool = True,
    configs: str | Path | None = None,
) -> ReproduceSummary:
    """Run the studies into the store in ``out`` and write ``report.html``, ``report.md`` and ``results.csv``.

    Args:
        out: output folder; its ``results.sqlite`` is reused, so a restarted run computes only missing cells.
        studies: names from :data:`~fairflip.experiments.studies.STUDY_ORDER` (default: all).
        quick: the quick variant of every config (fewer datasets, seeds and budgets; Adult subsampled).
        seeds: number of seeds, overriding the configs.
        backend: ``local`` (process pool) or ``ray``.
        workers: local processes, or CPUs of a local Ray instance.
        address: Ray cluster address (``--backend ray`` only).
        progress: show progress bars.
        configs: folder of study configs (``<study>.toml``) replacing the packaged ones.

    Returns:
        a :class:`ReproduceSummary`.
    """
    start = time.perf_counter()
    names = list(studies) if studies else list(STUDY_ORDER)
    unknown = [s for s in names if s not in STUDIES]
    if unknown:
        raise FairflipError(f"unknown stud{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)}; "
                            f"choose from {', '.join(STUDY_ORDER)}")
    cfgs = [load_config(n, quick=quick, seeds=seeds, folder=configs) for n in names]
    plans = [STUDIES[c.name].plan(c) for c in cfgs]
    # The slowest cells (oracles, non-linear firms) first, so that the pool's last minutes are not one long cell.
    cells = sorted((cell for p in plans for cell in p.cells),
                   key=lambda c: not (c.method in ORACLES or c.firm in SLOW_FIRMS))
    out = Path(out)
    store = ResultStore(out)
    runner = make_backend(backend, workers=workers, address=address)
    try:
        summary = run_cells(cells, store, runner, progress=progress, desc="fairflip reproduce")
    finally:
        runner.close()
    records = {r["config_hash"]: r for r in store.records({c.config_hash for c in cells})}
    results = []
    for cfg, plan in zip(cfgs, plans):
        hashes = {c.config_hash for c in plan.cells}
        frame = store.table(hashes & set(records))
        res = STUDIES[cfg.name].summarise(cfg, frame, records)
        res.notes = plan.notes + res.notes
        missing = len(hashes - set(records))
        if missing:
            res.notes.append(f"{missing} of {len(hashes)} cells failed or are missing; rerun to retry them")
        results.append(res)
    export = store.export(out / "results.csv", records)
    store_path = store.path
    store.close()
    wall = time.perf_counter() - start
    info = {"studies": len(names), "seeds override": seeds if seeds is not None else "none (each config's)",
            "backend": backend, "cells": f"{summary.planned} ({summary.reused} reused, {summary.computed} computed, "
                                            f"{len(summary.failed)} failed)",
            "wall time": f"{wall:.0f} s"}
    html_path, md_path = write_report(results, out, run_info=info,
                                      files={"tidy results table (CSV)": export, "results store (SQLite)": store_path})
    return ReproduceSummary(html_path, md_path, export, store_path, summary, results, time.perf_counter() - start)
