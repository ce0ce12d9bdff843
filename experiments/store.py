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
import socket
import sqlite3
import time
import uuid
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
                  "machine_dependent", "select_time_s", "runtime_s", "config_hash")
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


def is_time_limited(cell: Cell) -> bool:
    """Whether a cell's method runs under a wall-clock limit (a ``time_limit`` parameter), so its result may
    differ between machines and loads."""
    params = json.loads(cell.params) if isinstance(cell.params, str) else dict(cell.params)
    limit = params.get("time_limit")
    return limit is not None and limit != float("inf")


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _valid_row(row) -> bool:
    if len(row) != len(_CELL_COLUMNS) or not isinstance(row[0], str) or len(row[0]) != 64:
        return False
    try:
        for text in row[8:12]:
            json.loads(text)
        float(row[12]), float(row[13])
    except (TypeError, ValueError):
        return False
    return True


def _salvage_rows(path: Path) -> list[tuple]:
    """Every cell row that can still be read from a damaged store file (none when it is not SQLite at all)."""
    rows: list[tuple] = []
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    except sqlite3.DatabaseError:
        return rows
    select = f"SELECT {', '.join(_CELL_COLUMNS)} FROM cells"
    try:
        try:
            rows = [r for r in conn.execute(select).fetchall() if _valid_row(r)]
            return rows
        except sqlite3.DatabaseError:
            rows = []
        # A damaged page stops a full scan: read the rows one by one and keep every one that reads.
        try:
            top = conn.execute("SELECT max(rowid) FROM cells").fetchone()[0] or 0
        except sqlite3.DatabaseError:
            top = path.stat().st_size // 64
        for rowid in range(1, int(top) + 1):
            try:
                row = conn.execute(select + " WHERE rowid = ?", (rowid,)).fetchone()
            except sqlite3.DatabaseError:
                continue
            if row is not None and _valid_row(row):
                rows.append(row)
    finally:
        conn.close()
    return rows


class StoreError(FairflipError):
    """The results store file is damaged or is not a fairflip store; the message says how to recover."""


_SQLITE_MAGIC = b"SQLite format 3\x00"
_CLAIMS = """
CREATE TABLE IF NOT EXISTS claims (
    config_hash TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    heartbeat REAL NOT NULL
)
"""
_CELL_COLUMNS = ("config_hash", "study", "dataset", "method", "firm", "collective_fraction", "budget_spec", "seed",
                 "cell", "metrics", "extra", "versions", "runtime_s", "finished_at")
# A claim whose owner has not refreshed it for this long is taken over (owners on other hosts; on this host a
# claim is taken over as soon as its process is gone).
CLAIM_TTL_S = 600.0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ResultStore:
    """Finished cells in ``<folder>/results.sqlite``.

    The file is checked when opened: a file that is not SQLite (garbage, a truncated copy), a database that
    fails SQLite's quick check, or a SQLite database of another program raises :class:`StoreError` naming the
    file, before anything is written to it. ``recover=True`` (or :meth:`ResultStore.recover`) instead moves the
    damaged file aside (``results.sqlite.damaged-<time>``) and starts a fresh store holding every row that can
    still be read from it, so a run resumes from there.

    Two runs may share one store: a run *claims* each cell (table ``claims``) before computing it, and the
    other run leaves claimed cells alone unless their owner is gone (its process ended on this host, or it did
    not refresh the claim for :data:`CLAIM_TTL_S` seconds).

    Args:
        folder: directory of the store (created when missing).
        timeout: seconds a writer waits for another writer's lock before failing.
        recover: move a damaged store aside and salvage its readable rows instead of raising.
    """

    FILENAME = "results.sqlite"

    def __init__(self, folder: str | os.PathLike, *, timeout: float = 120.0, recover: bool = False) -> None:
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise StoreError(f"results folder {str(self.folder)!r} is a file, not a folder")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the results folder {str(self.folder)!r}: {exc.strerror or exc}") from None
        self.path = self.folder / self.FILENAME
        self.recovered: tuple[Path, int] | None = None
        problem = self.diagnose(self.path)
        if problem is not None:
            if not recover:
                raise StoreError(f"results store {str(self.path)!r} {problem}; rerun with recovery "
                                 f"(ResultStore(..., recover=True)) to move it aside and keep its readable rows, "
                                 f"or choose another output folder")
            self.recovered = self._move_aside_and_salvage(timeout)
        self._versions = json.dumps(package_versions(), sort_keys=True)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._open(timeout)

    def _open(self, timeout: float) -> None:
        self._conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        self._enable_wal(timeout)
        # FULL: a committed cell survives even a power cut, not only a killed process.
        self._conn.execute("PRAGMA synchronous=FULL")
        with self._transaction():
            self._conn.execute(_SCHEMA)
            self._conn.execute(_CLAIMS)

    @staticmethod
    def diagnose(path: str | os.PathLike) -> str | None:
        """What is wrong with the store file at ``path``, or None when it is sound or absent.

        Checks, without writing: the SQLite header, SQLite's ``quick_check``, and that the tables are a
        fairflip store's (a ``cells`` table with the expected columns, nothing foreign).
        """
        path = Path(path)
        if not path.exists():
            return None
        if not path.is_file():
            return "is not a regular file"
        size = path.stat().st_size
        if size == 0:
            return None  # an empty file is an empty SQLite database
        with open(path, "rb") as fh:
            head = fh.read(100)
        if not head.startswith(_SQLITE_MAGIC):
            return "is not a SQLite database (garbage or overwritten)"
        if len(head) < 100:
            return "is truncated (shorter than a SQLite header)"
        page = int.from_bytes(head[16:18], "big")
        page = 65536 if page == 1 else page
        pages = int.from_bytes(head[28:32], "big")
        if page and pages and size < page * pages and not Path(f"{path}-wal").exists():
            return f"is truncated ({size} bytes, its header promises {page * pages})"
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
            try:
                check = [r[0] for r in conn.execute("PRAGMA quick_check").fetchall()]
                tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                columns = tuple(r[1] for r in conn.execute("PRAGMA table_info(cells)")) if "cells" in tables else ()
            finally:
                conn.close()
        except sqlite3.DatabaseError as exc:
            return f"cannot be read as a database ({exc})"
        if check != ["ok"]:
            return f"is damaged (SQLite quick_check: {'; '.join(map(str, check[:3]))})"
        if tables and ("cells" not in tables or columns != _CELL_COLUMNS or tables - {"cells", "claims"}):
            return f"is a SQLite database of another program (tables: {', '.join(sorted(tables))})"
        return None

    @classmethod
    def recover(cls, folder: str | os.PathLike, *, timeout: float = 120.0) -> "ResultStore":
        """Open the store in ``folder``, moving a damaged file aside and salvaging its readable rows.

        Returns the open store; its ``recovered`` attribute is ``(path the damaged file was moved to, rows
        salvaged)``, or None when the store was sound.
        """
        return cls(folder, timeout=timeout, recover=True)

    def _move_aside_and_salvage(self, timeout: float) -> tuple[Path, int]:
        aside = self.path.with_name(f"{self.FILENAME}.damaged-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
        os.replace(self.path, aside)
        for suffix in ("-wal", "-shm", "-journal"):
            side = Path(f"{self.path}{suffix}")
            if side.exists():
                os.replace(side, Path(f"{aside}{suffix}"))
        rows = _salvage_rows(aside)
        self._versions = json.dumps(package_versions(), sort_keys=True)
        self._open(timeout)
        with self._transaction():
            self._conn.executemany(f"INSERT OR IGNORE INTO cells VALUES ({','.join('?' * len(_CELL_COLUMNS))})",
                                   rows)
        self._conn.close()
        return aside, len(rows)

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
        """Give back this run's claims and close the connection."""
        try:
            self.release()
        except sqlite3.Error:
            pass
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

        The cell's claim (if this store holds one) is released in the same transaction. A cell whose method
        parameters set a ``time_limit`` is marked ``machine_dependent`` in its ``extra``: what a time-limited
        solver finds depends on the machine and its load, so such a result is not reproducible bit for bit.

        Args:
            cell: the cell.
            result: ``run_cell``'s output, ``{"metrics": dict, "extra": dict}``.
            runtime_s: wall time of the cell in seconds.
        """
        budget_spec = json.dumps(cell.budget)
        extra = dict(result.get("extra", {}))
        if is_time_limited(cell):
            extra["machine_dependent"] = True
        row = (
            cell.config_hash, cell.study, cell.dataset, cell.method, cell.firm, float(cell.collective_fraction),
            budget_spec, int(cell.seed), json.dumps(cell.to_dict(), sort_keys=True),
            json.dumps(result["metrics"], sort_keys=True, default=_json_default),
            json.dumps(extra, sort_keys=True, default=_json_default),
            self._versions, float(runtime_s), time.time(),
        )
        with self._transaction():
            cur = self._conn.execute("INSERT OR IGNORE INTO cells VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", row)
            self._conn.execute("DELETE FROM claims WHERE config_hash = ? AND owner = ?",
                               (cell.config_hash, self.owner))
        return cur.rowcount == 1

    # ------------------------------------------------------------ claims: two runs share one store's work

    def _stale(self, host: str, pid: int, heartbeat: float) -> bool:
        if host == socket.gethostname() and not _pid_alive(int(pid)):
            return True
        return time.time() - float(heartbeat) > CLAIM_TTL_S

    def claim(self, config_hash: str) -> str:
        """Try to take the cell ``config_hash`` for this run, in one transaction.

        Returns:
            ``"claimed"`` (this run computes it; a stale claim of a run that is gone is taken over),
            ``"done"`` (already in the store) or ``"busy"`` (another live run holds it).
        """
        now = time.time()
        with self._transaction():
            if self._conn.execute("SELECT 1 FROM cells WHERE config_hash = ?", (config_hash,)).fetchone():
                return "done"
            row = self._conn.execute("SELECT owner, host, pid, heartbeat FROM claims WHERE config_hash = ?",
                                     (config_hash,)).fetchone()
            if row is not None and row[0] != self.owner and not self._stale(*row[1:]):
                return "busy"
            self._conn.execute("INSERT OR REPLACE INTO claims VALUES (?,?,?,?,?)",
                               (config_hash, self.owner, socket.gethostname(), os.getpid(), now))
        return "claimed"

    def release(self, hashes: Iterable[str] | None = None) -> None:
        """Give back this run's claims (all of them, or those in ``hashes``), e.g. of failed or unrun cells."""
        with self._transaction():
            if hashes is None:
                self._conn.execute("DELETE FROM claims WHERE owner = ?", (self.owner,))
            else:
                self._conn.executemany("DELETE FROM claims WHERE config_hash = ? AND owner = ?",
                                       [(h, self.owner) for h in hashes])

    def heartbeat(self) -> None:
        """Refresh this run's claims, so runs on other hosts do not take them over."""
        with self._transaction():
            self._conn.execute("UPDATE claims SET heartbeat = ? WHERE owner = ?", (time.time(), self.owner))

    def claims(self) -> dict[str, str]:
        """Config hash -> owner of every live claim (stale ones left out)."""
        rows = self._conn.execute("SELECT config_hash, owner, host, pid, heartbeat FROM claims").fetchall()
        return {h: o for h, o, host, pid, beat in rows if not self._stale(host, pid, beat)}

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
            row["machine_dependent"] = bool(rec["extra"].get("machine_dependent", False))
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
