"""A cell: the smallest unit of an experiment, and how one is computed.

A cell fixes everything that decides a result: the study it belongs to, the dataset (and its subsample), the
method and its parameters, the firm, the collective (fraction, direction, restricted access), the budget and the
seed. Its :attr:`Cell.config_hash` is the sha256 of all of that, so the results store keys finished work on it and
a changed setting never reuses a stale result. :func:`run_cell` computes a cell deterministically: the same cell
always gives the same numbers.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import json
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from fairflip._errors import FairflipError
from fairflip.datasets import Dataset, load, stratified_split
from fairflip.datasets.registry import REGISTRY
from fairflip.problem import FlipProblem, build_problem, evaluate_flips
from fairflip.strategies.base import resolve_budget

CellKind = Literal["flip", "firm_side", "transfer"]
# Bumped whenever run_cell's meaning changes, so results of an older runner are never mistaken for current ones.
RUNNER_VERSION = 1
# Seed of the row subsample of large datasets: fixed, so every seed of a study sees the same rows.
SUBSAMPLE_SEED = 0
# Test-set metrics copied into every result (the tidy export's metric columns).
TEST_METRICS = ("eqod", "eqod_worst", "dp", "eqopp", "tpr_gap", "fpr_gap", "error", "error_minority",
                "error_majority", "success")


@dataclass(frozen=True)
class Cell:
    """One experiment cell.

    Attributes:
        study: the study it belongs to (``toy``, ``collective_size``, ...).
        dataset: registered dataset name.
        method: flip method name (``kind="flip"`` or ``"transfer"``) or firm-side method name (``"firm_side"``).
        seed: seed of the train/test split, the collective draw, random methods and random firms.
        kind: ``flip`` (choose flips, retrain the firm, measure), ``firm_side`` (a firm's own fairness method),
            ``transfer`` (flips chosen against ``source_firm``, measured on ``firm``).
        firm: the firm that is trained and measured.
        source_firm: for ``transfer`` cells, the firm the flips were chosen against.
        collective_fraction: share of the minority in the collective.
        direction: up, down or auto.
        known_majority: None (all majority rows known) or m (restricted access).
        budget: the flip budget: an int is a count M, a float in [0, 1] a share of the candidates
            (M = round(share * c), see :func:`fairflip.strategies.base.resolve_budget`); None for firm-side cells.
        params: method parameters as canonical JSON (give a dict; it is canonicalised).
        max_rows: subsample the dataset to this many rows (seeded, before the split), or None for all.
        test_size: share of rows held out for the test metrics.
        device: ``cpu`` or ``cuda``; cuda cells ask the backend for a GPU and pass ``device`` to methods that
            take one.
    """

    study: str
    dataset: str
    method: str
    seed: int
    kind: CellKind = "flip"
    firm: str = "logistic"
    source_firm: str | None = None
    collective_fraction: float = 0.3
    direction: str = "auto"
    known_majority: int | None = None
    budget: int | float | None = None
    params: Any = "{}"
    max_rows: int | None = None
    test_size: float = 0.3
    device: Literal["cpu", "cuda"] = "cpu"

    def __post_init__(self) -> None:
        if not isinstance(self.params, str):
            object.__setattr__(self, "params", json.dumps(dict(self.params), sort_keys=True))
        if self.kind not in ("flip", "firm_side", "transfer"):
            raise FairflipError(f"cell kind must be flip, firm_side or transfer, got {self.kind!r}")
        if self.kind != "firm_side" and self.budget is None:
            raise FairflipError(f"cell {self.label()}: a {self.kind} cell needs a budget")
        if self.kind == "transfer" and self.source_firm is None:
            raise FairflipError(f"transfer cell {self.label()} needs a source_firm")
        if self.device not in ("cpu", "cuda"):
            raise FairflipError(f"cell device must be cpu or cuda, got {self.device!r}")

    @property
    def param_dict(self) -> dict:
        """The method parameters as a dict."""
        return json.loads(self.params)

    def to_dict(self) -> dict:
        """All fields, JSON-ready."""
        return dataclasses.asdict(self)

    @property
    def config_hash(self) -> str:
        """sha256 (hex) of every field and the runner version: the cell's unique key in the store."""
        blob = json.dumps({"runner": RUNNER_VERSION, **self.to_dict()}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def label(self) -> str:
        """Short human-readable description (for progress bars and errors)."""
        return (f"{self.study}/{self.dataset}/{self.method}/{self.firm}/f={self.collective_fraction:g}"
                f"/M={self.budget}/s={self.seed}")

    @classmethod
    def from_dict(cls, d: dict) -> "Cell":
        """Inverse of :meth:`to_dict`."""
        return cls(**d)


def dataset_available(name: str) -> tuple[bool, str]:
    """Whether dataset ``name`` can be loaded without a download; returns (ok, reason when not)."""
    try:
        _load_dataset(name, None)
    except FairflipError as exc:
        return False, str(exc)
    return True, ""


@functools.lru_cache(maxsize=4)
def _load_dataset(name: str, max_rows: int | None) -> Dataset:
    if name not in REGISTRY:
        raise FairflipError(f"unknown dataset '{name}'")
    loader = REGISTRY[name].loader
    # Never download during an experiment: data-home datasets are used only when already present.
    kwargs = {"download": False} if "download" in inspect.signature(loader).parameters else {}
    data = load(name, **kwargs)
    if max_rows is not None and len(data) > max_rows:
        rows = np.random.default_rng(SUBSAMPLE_SEED).choice(len(data), size=max_rows, replace=False)
        data = data.subset(np.sort(rows))
    return data


@dataclass(frozen=True)
class Prepared:
    """A built flip problem with its train/test data.

    Attributes:
        problem: the flip problem on the training rows.
        preparer: the fitted FeaturePreparer.
        train, test: the split datasets.
        test_arrays: (X_test (m, d), y_test (m,), a_test (m,), X_test_counterfactual (m, d)) for evaluate_flips.
    """

    problem: FlipProblem
    preparer: Any
    train: Dataset
    test: Dataset
    test_arrays: tuple


@functools.lru_cache(maxsize=16)
def _prepare_cached(dataset: str, max_rows: int | None, test_size: float, seed: int, firm: str,
                    fraction: float, direction: str, known_majority: int | None, device: str) -> Prepared:
    data = _load_dataset(dataset, max_rows)
    train, test = stratified_split(data, test_size=test_size, seed=seed)
    firm_obj = _make_firm(firm, seed=seed, device=device)
    problem, prep = build_problem(train, firm=firm_obj, collective_fraction=fraction, direction=direction,
                                  known_majority=known_majority, seed=seed)
    test_arrays = (prep.transform(test), test.y, test.a, prep.transform(test, counterfactual_group=True))
    return Prepared(problem, prep, train, test, test_arrays)


def _make_firm(name: str, *, seed: int, device: str):
    from fairflip.firms import make_firm

    return make_firm(name, seed=seed, device=device if device == "cuda" else None)


def prepare(cell: Cell, *, firm: str | None = None) -> Prepared:
    """Build (or reuse from this process's cache) the problem of ``cell``; ``firm`` overrides ``cell.firm``.

    Problems are never mutated by methods, so cells that differ only in method or budget share one.
    """
    return _prepare_cached(cell.dataset, cell.max_rows, cell.test_size, cell.seed, firm or cell.firm,
                           cell.collective_fraction, cell.direction, cell.known_majority, cell.device)


def make_cell_method(cell: Cell):
    """Instantiate the cell's flip method with its params, its seed when it takes one, and ``device="cuda"`` for
    cuda cells whose method takes a device."""
    from fairflip.methods import available_methods, get_method, get_seeded_method

    params = cell.param_dict
    if cell.device == "cuda" and cell.method in available_methods():
        if "device" in inspect.signature(type(get_method(cell.method)).__init__).parameters:
            params.setdefault("device", "cuda")
    return get_seeded_method(cell.method, cell.seed, **params)


def _jsonable(obj: Any) -> Any:
    """Turn method diagnostics into JSON (numpy scalars and arrays become numbers and lists; NaN stays NaN)."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist() if obj.size <= 1000 else f"array{obj.shape}"
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return repr(obj)


def run_cell(cell: Cell) -> dict:
    """Compute one cell.

    Returns:
        ``{"metrics": {...}, "extra": {...}}``. ``metrics`` holds the test metrics (:data:`TEST_METRICS`), the
        resolved ``budget``, ``n_flipped``, ``n_candidates``, ``collective_size``, in-sample ``train_*`` metrics,
        the in-sample ``objective`` and the method's certified ``lower_bound`` (None when it has none), and the
        method's ``select_time_s``. ``extra`` holds the flipped rows and the method's diagnostics.
    """
    import torch
    from threadpoolctl import threadpool_limits

    # One thread per cell (torch, and the BLAS/OpenMP pools of numpy and scikit-learn): cells run side by side
    # in separate processes, and a fixed thread count keeps floating-point reductions, hence results, identical
    # from run to run.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            if cell.kind == "firm_side":
                return _run_firm_side(cell)
            return _run_flip(cell)
    finally:
        torch.set_num_threads(threads)


def _run_flip(cell: Cell) -> dict:
    src = prepare(cell, firm=cell.source_firm if cell.kind == "transfer" else None)
    problem = src.problem
    budget = resolve_budget(cell.budget, len(problem.candidates))
    method = make_cell_method(cell)
    t0 = time.perf_counter()
    result = method.select(problem, budget)
    select_time = time.perf_counter() - t0
    if cell.kind == "transfer":
        # The same flipped rows, now given to another firm trained on the same prepared features.
        problem = dataclasses.replace(problem, firm=_make_firm(cell.firm, seed=cell.seed, device=cell.device))
    ev = evaluate_flips(problem, result.flipped, test=src.test_arrays)
    metrics = {k: ev["test"].get(k) for k in TEST_METRICS}
    metrics.update({f"train_{k}": ev["train"].get(k) for k in ("eqod", "eqod_worst", "dp", "error")})
    metrics.update(
        budget=budget, n_flipped=int(len(result.flipped)), n_candidates=int(len(src.problem.candidates)),
        collective_size=src.problem.collective.size, direction=src.problem.collective.direction,
        objective=ev["objective"], lower_bound=None if result.lower_bound is None else float(result.lower_bound),
        select_time_s=select_time,
    )
    return {"metrics": metrics, "extra": {"flipped": result.flipped.tolist(), "info": _jsonable(result.info)}}


def _run_firm_side(cell: Cell) -> dict:
    from fairflip.firm_side import run_firm_side

    src = prepare(cell)
    t0 = time.perf_counter()
    out = run_firm_side(cell.method, src.train, src.test, firm=cell.firm, seed=cell.seed)
    metrics = {k: (None if out.get(k) is None else float(out[k])) for k in TEST_METRICS}
    metrics.update(budget=0, n_flipped=0, n_candidates=0, collective_size=0, direction=None, objective=None,
                   lower_bound=None, select_time_s=time.perf_counter() - t0)
    return {"metrics": metrics, "extra": {"info": _jsonable({k: v for k, v in out.items() if k not in metrics})}}
