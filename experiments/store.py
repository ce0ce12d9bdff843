"""The results store: one SQLite database (WAL mode), one row per finished cell.

Why SQLite: every finished cell is written in a single transaction, so a run killed at any moment (even by
SIGKILL) leaves either the whole row or nothing; the primary key is the cell's config hash, so a restarted or
concurrent run can never write a cell twice (``INSERT OR IGNORE``); WAL mode lets readers and several writers
(processes on one machine) share the file, each writer waiting its turn through the busy timeout.
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import time
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from fairflip._errors import FairflipError
from fairflip._io import atomic_write

from .cells import CLEANING_METRICS, GROUP_METRICS, TEST_METRICS, Cell

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cells (
    config_hash TEXT PRIMARY KEY,
    study TEXT NOT NULL,
    dataset TEXT NOT NULL,
    method TEXT NOT NULL,
    firm TEXT NOT NULL,
    collective_fraction REAL NOT NULL,
    budget_spec TEXT NOT NULL,
    seed INTEGER NOT NULL,
    cell TEXT NOT NULL,
    metrics TEXT NOT NULL,
    extra TEXT NOT NULL,
    versions TEXT NOT NULL,
    runtime_s REAL NOT NULL,
    finished_at REAL NOT NULL
)
"""
# Columns of the tidy export, in order: the cell's identity, then its results.
# Columns of the kinds beyond flip cells (cleaner, stealth, minority and their metrics) are empty for other cells.
EXPORT_ID = ("study", "dataset", "method", "firm", "source_firm", "collective_fraction", "known_majority",
             "direction", "budget_share", "budget", "seed", "params", "max_rows", "device", "cleaner", "stealth",
             "minority")
EXPORT_RESULTS = ("n_flipped", "n_candidates", "collective_size", *TEST_METRICS, "train_eqod", "train_eqod_worst",
                  "train_dp", "train_error", "objective", "lower_bound", *CLEANING_METRICS, *GROUP_METRICS,
                  "select_time_s", "runtime_s", "config_hash")
# Cell fields that the export spells out from the cell's options.
_FROM_OPTIONS = ("cleaner", "stealth", "minority")


def package_versions() -> dict:
    """Versions of Python, fairflip and the libraries that decide numbers (recorded with every cell)."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for pkg in ("fairflip", "numpy", "scipy", "torch", "scikit-learn", "pandas", "cvxpy", "fairlearn"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


class ResultStore:
    """Finished cells in ``<folder>/results.sqlite``.

    Args:
        folder: directory of the store (created when missing).
        timeout: seconds a writer waits for another writer's lock before failing.
    """

    FILENAME = "results.sqlite"

    def __init__(self, folder: str | os.PathLike, *, timeout: float = 120.0) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / self.FILENAME
        self._versions = json.dumps(package_versions(), sort_keys=True)
        self._conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        self._enable_wal(timeout)
        # FULL: a committed cell survives even a power cut, not only a killed process.
        self._conn.execute("PRAGMA synchronous=FULL")
        with self._transaction():
            self._conn.execute(_SCHEMA)

    def _enable_wal(self, timeout: float) -> None:
        """Switch the file to WAL mode, waiting out a concurrent opener.

        The switch needs the database to itself, and SQLite reports "database is locked" at once instead of
        calling the busy handler while another process is creating or switching the same file; so retry until
        ``timeout``.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _transaction(self):
        conn = self._conn

        class _Tx:
            def __enter__(self_inner):
                # IMMEDIATE takes the write lock up front, so two writers queue instead of deadlocking.
                conn.execute("BEGIN IMMEDIATE")

            def __exit__(self_inner, exc_type, exc, tb):
                conn.execute("COMMIT" if exc_type is None else "ROLLBACK")

        return _Tx()

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def __enter__(self) -> "ResultStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def done(self, hashes: Iterable[str] | None = None) -> set[str]:
        """Config hashes of finished cells (restricted to ``hashes`` when given)."""
        have = {r[0] for r in self._conn.execute("SELECT config_hash FROM cells")}
        return have if hashes is None else have & set(hashes)

    def add(self, cell: Cell, result: dict, runtime_s: float) -> bool:
        """Write one finished cell in one transaction; returns False when it was already there (kept as is).

        Args:
            cell: the cell.
            result: ``run_cell``'s output, ``{"metrics": dict, "extra": dict}``.
            runtime_s: wall time of the cell in seconds.
        """
        budget_spec = json.dumps(cell.budget)
        row = (
            cell.config_hash, cell.study, cell.dataset, cell.method, cell.firm, float(cell.collective_fraction),
            budget_spec, int(cell.seed), json.dumps(cell.to_dict(), sort_keys=True),
            json.dumps(result["metrics"], sort_keys=True, default=_json_default),
            json.dumps(result.get("extra", {}), sort_keys=True, default=_json_default),
            self._versions, float(runtime_s), time.time(),
        )
        with self._transaction():
            cur = self._conn.execute("INSERT OR IGNORE INTO cells VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", row)
        return cur.rowcount == 1

    def integrity(self) -> str:
        """SQLite's own consistency check of the file: ``"ok"`` when sound."""
        return str(self._conn.execute("PRAGMA integrity_check").fetchone()[0])

    def count(self) -> int:
        """Number of finished cells."""
        return int(self._conn.execute("SELECT COUNT(*) FROM cells").fetchone()[0])

    def records(self, hashes: Iterable[str] | None = None) -> list[dict]:
        """Raw rows as dicts (``cell``, ``metrics``, ``extra``, ``versions`` decoded), ordered by config hash."""
        rows = self._conn.execute(
            "SELECT config_hash, cell, metrics, extra, versions, runtime_s, finished_at FROM cells "
            "ORDER BY config_hash").fetchall()
        keep = None if hashes is None else set(hashes)
        out = []
        for h, cell, metrics, extra, versions, runtime, finished in rows:
            if keep is not None and h not in keep:
                continue
            out.append({"config_hash": h, "cell": json.loads(cell), "metrics": json.loads(metrics),
                        "extra": json.loads(extra), "versions": json.loads(versions), "runtime_s": runtime,
                        "finished_at": finished})
        return out

    def table(self, hashes: Iterable[str] | None = None) -> pd.DataFrame:
        """The tidy table: one row per finished cell, columns :data:`EXPORT_ID` then :data:`EXPORT_RESULTS`.

        ``budget`` is the resolved number of flips M; ``budget_share`` the share of candidates it came from
        (when the cell gave its budget as a share).
        Metric columns are test-set metrics; ``train_*`` are in-sample. Cleaning cells fill ``cleaner``,
        ``stealth`` and the cleaning metrics (their test metrics are the cleaned firm's; ``*_before`` without
        cleaning); intersectional cells fill ``minority`` (``col=value&col=value``) and the worst pairwise gaps.
        """
        rows = []
        for rec in self.records(hashes):
            c, m = rec["cell"], rec["metrics"]
            row = {k: c.get(k) for k in EXPORT_ID if k not in ("budget", "budget_share", *_FROM_OPTIONS)}
            opts = json.loads(c.get("options", "{}"))
            row["cleaner"], row["stealth"] = opts.get("cleaner"), opts.get("stealth")
            minority = opts.get("minority")
            row["minority"] = None if minority is None else "&".join(f"{k}={v}" for k, v in minority.items())
            row["budget_share"] = c["budget"] if isinstance(c.get("budget"), float) else None
            row["budget"] = m.get("budget", c.get("budget"))
            row.update({k: m.get(k) for k in EXPORT_RESULTS if k not in ("runtime_s", "config_hash")})
            row["runtime_s"] = rec["runtime_s"]
            row["config_hash"] = rec["config_hash"]
            rows.append(row)
        frame = pd.DataFrame(rows, columns=[*EXPORT_ID, *EXPORT_RESULTS])
        sort = ["study", "dataset", "method", "firm", "collective_fraction", "seed", "config_hash"]
        return frame.sort_values(sort, kind="stable").reset_index(drop=True)

    def export(self, path: str | os.PathLike, hashes: Iterable[str] | None = None) -> Path:
        """Write the tidy table to ``path`` (``.csv`` or ``.parquet``) atomically; returns the path."""
        path = Path(path)
        if path.suffix not in (".csv", ".parquet"):
            raise FairflipError(f"export path must end in .csv or .parquet, got {path.name}")
        frame = self.table(hashes)
        if path.suffix == ".csv":
            return atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))
        return atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))
