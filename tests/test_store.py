"""The results store: one atomic row per cell, no duplicates, a tidy export, safe concurrent writers."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3

import numpy as np
import pandas as pd
import pytest

from fairflip._errors import FairflipError
from fairflip.experiments.cells import Cell
from fairflip.experiments.store import EXPORT_ID, EXPORT_RESULTS, ResultStore


def _cell(seed: int, budget=0.5, method="random") -> Cell:
    return Cell(study="t", dataset="compas", method=method, seed=seed, budget=budget)


def _result(i: float) -> dict:
    metrics = {"eqod": 0.1 * i, "eqod_worst": 0.2 * i, "dp": 0.3, "error": 0.25, "budget": 7, "n_flipped": 7,
               "lower_bound": None, "objective": np.float64(0.05)}
    return {"metrics": metrics, "extra": {"flipped": [1, 2, 3]}}


def test_cell_hash_is_stable_and_sensitive():
    a, b = _cell(0), _cell(0)
    assert a.config_hash == b.config_hash and len(a.config_hash) == 64
    # int 1 (one flip) and float 1.0 (all candidates) are different budgets, hence different cells
    assert _cell(0, budget=1).config_hash != _cell(0, budget=1.0).config_hash
    assert _cell(0).config_hash != _cell(1).config_hash
    assert Cell(study="t", dataset="compas", method="random", seed=0, budget=1, params={"k": 5, "a": 1}).params \
        == '{"a": 1, "k": 5}'
    assert Cell.from_dict(a.to_dict()) == a


def test_cell_rejects_bad_fields():
    with pytest.raises(FairflipError, match="needs a budget"):
        Cell(study="t", dataset="compas", method="random", seed=0)
    with pytest.raises(FairflipError, match="kind"):
        Cell(study="t", dataset="compas", method="random", seed=0, budget=1, kind="other")
    with pytest.raises(FairflipError, match="source_firm"):
        Cell(study="t", dataset="compas", method="random", seed=0, budget=1, kind="transfer")


def test_add_is_idempotent_and_export_is_tidy(tmp_path):
    with ResultStore(tmp_path) as store:
        assert store.add(_cell(0), _result(1), 0.5)
        assert not store.add(_cell(0), _result(2), 0.7)  # the first write is kept
        assert store.add(_cell(1), _result(3), 0.1)
        assert store.count() == 2 and store.done() == {_cell(0).config_hash, _cell(1).config_hash}
        assert store.done([_cell(1).config_hash, "x"]) == {_cell(1).config_hash}
        table = store.table()
        assert list(table.columns) == [*EXPORT_ID, *EXPORT_RESULTS]
        for col in ("dataset", "method", "firm", "collective_fraction", "budget", "seed", "n_flipped", "eqod",
                    "eqod_worst", "dp", "error"):
            assert col in table.columns
        row = table[table.seed == 0].iloc[0]
        assert row.eqod == pytest.approx(0.1) and row.runtime_s == 0.5 and row.budget_share == 0.5
        csv = pd.read_csv(store.export(tmp_path / "r.csv"))
        pq = pd.read_parquet(store.export(tmp_path / "r.parquet"))
        assert len(csv) == len(pq) == 2 and list(csv.columns) == list(table.columns)
        with pytest.raises(FairflipError, match="csv or .parquet"):
            store.export(tmp_path / "r.json")
        assert store.integrity() == "ok"
        versions = store.records()[0]["versions"]
        assert versions["fairflip"] and versions["numpy"] == np.__version__


def test_store_is_wal_and_survives_reopen(tmp_path):
    with ResultStore(tmp_path) as store:
        store.add(_cell(0), _result(1), 0.5)
    conn = sqlite3.connect(tmp_path / ResultStore.FILENAME)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    with ResultStore(tmp_path) as store:
        assert store.count() == 1


def _writer(folder: str, start: int, n: int) -> None:
    with ResultStore(folder, timeout=60) as store:
        for i in range(n):
            # overlapping ranges: both writers try the cells in the middle
            store.add(_cell(start + i), _result(start + i), 0.01)


def test_concurrent_writers_do_not_corrupt_or_duplicate(tmp_path):
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), s, 60)) for s in (0, 30)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with ResultStore(tmp_path) as store:
        assert store.integrity() == "ok"
        table = store.table()
        assert len(table) == 90 and table.config_hash.is_unique
        assert sorted(table.seed) == list(range(90))
        assert np.allclose(table.sort_values("seed").eqod, 0.1 * np.arange(90))


def test_claims_are_exclusive_and_die_with_their_owner(tmp_path, monkeypatch):
    from fairflip.experiments import store as store_mod

    h = _cell(0).config_hash
    with ResultStore(tmp_path) as a, ResultStore(tmp_path) as b:
        assert a.owner != b.owner
        assert a.claim(h) == "claimed" and a.claim(h) == "claimed"  # re-claiming one's own cell is fine
        assert b.claim(h) == "busy" and b.claims() == {h: a.owner}
        a.release([h])
        assert b.claim(h) == "claimed" and a.claim(h) == "busy"
        assert b.add(_cell(0), _result(1), 0.1)  # writing the cell releases its claim
        assert a.claim(h) == "done" and b.claims() == {}
        # a claim whose process is gone (on this host) is taken over at once
        h1 = _cell(1).config_hash
        assert a.claim(h1) == "claimed"
        monkeypatch.setattr(store_mod, "_pid_alive", lambda pid: False)
        assert b.claim(h1) == "claimed"
        monkeypatch.undo()
        # and one not refreshed for CLAIM_TTL_S (an owner on another host) too
        h2 = _cell(2).config_hash
        assert a.claim(h2) == "claimed"
        a._conn.execute("UPDATE claims SET host = 'elsewhere', heartbeat = heartbeat - ? WHERE config_hash = ?",
                        (store_mod.CLAIM_TTL_S + 1, h2))
        assert b.claim(h2) == "claimed"
        b.heartbeat()
        assert a.claim(h2) == "busy"
    with ResultStore(tmp_path) as c:
        assert c.claims() == {}  # closing a store gives its claims back


def test_time_limited_cells_are_marked_machine_dependent(tmp_path):
    limited = Cell(study="t", dataset="compas", method="oracle-convex", seed=0, budget=0.5,
                   params={"time_limit": 2.0, "max_rounds": 2})
    plain = Cell(study="t", dataset="compas", method="oracle-convex", seed=0, budget=0.5, params={"max_rounds": 2})
    with ResultStore(tmp_path) as store:
        store.add(limited, _result(1), 0.1)
        store.add(plain, _result(2), 0.1)
        table = store.table().set_index("config_hash")
        extra = {r["config_hash"]: r["extra"] for r in store.records()}
    assert bool(table.loc[limited.config_hash, "machine_dependent"])
    assert not bool(table.loc[plain.config_hash, "machine_dependent"])
    assert extra[limited.config_hash]["machine_dependent"] is True
    assert "machine_dependent" not in extra[plain.config_hash]
    assert extra[limited.config_hash]["flipped"] == [1, 2, 3]  # the cell's own extra is kept


def test_store_folder_that_is_a_file(tmp_path):
    from fairflip.experiments.store import StoreError

    afile = tmp_path / "results"
    afile.write_text("x")
    with pytest.raises(StoreError, match="is a file, not a folder"):
        ResultStore(afile)
