"""A cell: the smallest unit of an experiment, and how one is computed.

A cell fixes everything that decides a result: the study it belongs to, the dataset (and its subsample), the
method and its parameters, the firm, the collective (fraction, direction, restricted access), the budget, the
seed and the settings of its kind (the firm's label cleaner, an intersectional minority). Its
:attr:`Cell.config_hash` is the sha256 of all of that, so the results store keys finished work on it and a changed
setting never reuses a stale result. :func:`run_cell` computes a cell from fixed seeds and single-threaded solvers, so the same cell gives the
same numbers, with one exception: a cell whose method runs under a time limit (a ``time_limit`` parameter) stops
where the clock says, which depends on the machine and its load. The store flags such cells ``machine_dependent``.
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
from fairflip.transfer import retarget
from fairflip.strategies.base import resolve_budget

CellKind = Literal["flip", "firm_side", "transfer", "cleaning", "intersectional"]
CELL_KINDS = ("flip", "firm_side", "transfer", "cleaning", "intersectional")
# Bumped whenever run_cell's meaning changes, so results of an older runner are never mistaken for current ones.
RUNNER_VERSION = 1
# Seed of the row subsample of large datasets: fixed, so every seed of a study sees the same rows.
SUBSAMPLE_SEED = 0
# Test-set metrics copied into every result (the tidy export's metric columns).
TEST_METRICS = ("eqod", "eqod_worst", "dp", "eqopp", "tpr_gap", "fpr_gap", "error", "error_minority",
                "error_majority", "success")
# What cleaning cells add: the cleaner's flags counted against the flips, and the test metrics without cleaning.
CLEANING_METRICS = ("recall", "precision", "honest_flag_rate", "n_flagged", "eqod_before", "eqod_worst_before",
                    "error_before")
# What intersectional cells add: the worst test gap over every pair of groups, and how many groups were compared.
GROUP_METRICS = ("worst_eqod", "worst_eqod_worst", "worst_dp", "worst_eqopp", "n_groups")


@dataclass(frozen=True)
class Cell:
    """One experiment cell.

    Attributes:
        study: the study it belongs to (``toy``, ``collective_size``, ...).
        dataset: registered dataset name.
        method: flip method name (``kind="flip"`` or ``"transfer"``) or firm-side method name (``"firm_side"``).
        seed: seed of the train/test split, the collective draw, random methods and random firms.
        kind: ``flip`` (choose flips, retrain the firm, measure), ``firm_side`` (a firm's own fairness method),
            ``transfer`` (flips chosen against ``source_firm``, measured on ``firm``), ``cleaning`` (flips, then
            the firm cleans its labels, drops what it flagged and retrains), ``intersectional`` (a flip cell whose
            minority is a conjunction of attribute values, measured also by the worst gap over all groups).
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
        options: the settings of the cell's kind as canonical JSON (give a dict): for ``cleaning`` cells
            ``cleaner`` (``confident`` or ``loss``), ``stealth`` (True: the flips are ``oracle-stealth``'s with
            ``method`` as its base, hiding from ``cleaner``), ``loss_fraction`` (share of rows the loss filter
            drops) and ``safety`` (oracle-stealth's margin); for ``intersectional`` cells ``minority`` (column ->
            value; their conjunction is the minority, every combination of those columns a group) and
            ``min_cell`` (groups with fewer test rows of a label are left out of the pairwise gaps).
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
    options: Any = "{}"

    def __post_init__(self) -> None:
        for name in ("params", "options"):
            if not isinstance(getattr(self, name), str):
                object.__setattr__(self, name, json.dumps(dict(getattr(self, name)), sort_keys=True))
        if self.kind not in CELL_KINDS:
            raise FairflipError(f"cell kind must be one of {', '.join(CELL_KINDS)}, got {self.kind!r}")
        if self.kind != "firm_side" and self.budget is None:
            raise FairflipError(f"cell {self.label()}: a {self.kind} cell needs a budget")
        if self.kind == "transfer" and self.source_firm is None:
            raise FairflipError(f"transfer cell {self.label()} needs a source_firm")
        if self.device not in ("cpu", "cuda"):
            raise FairflipError(f"cell device must be cpu or cuda, got {self.device!r}")
        self._check_options()

    def _check_options(self) -> None:
        opts = self.option_dict
        if self.kind == "cleaning":
            from fairflip.cleaning import CLEANERS

            if opts.get("cleaner") not in CLEANERS:
                raise FairflipError(f"cleaning cell {self.label()}: options need a cleaner, one of "
                                    f"{', '.join(CLEANERS)}; got {opts.get('cleaner')!r}")
            if self.method == "none" and opts.get("stealth"):
                raise FairflipError(f"cleaning cell {self.label()}: no flips (method none) cannot be stealthy")
        elif self.kind == "intersectional":
            if not isinstance(opts.get("minority"), dict) or not opts["minority"]:
                raise FairflipError(f"intersectional cell {self.label()}: options need a minority, a non-empty "
                                    f"column -> value table")
        elif opts:
            raise FairflipError(f"a {self.kind} cell takes no options, got {sorted(opts)}")

    @property
    def param_dict(self) -> dict:
        """The method parameters as a dict."""
        return json.loads(self.params)

    @property
    def option_dict(self) -> dict:
        """The settings of the cell's kind as a dict."""
        return json.loads(self.options)

    def to_dict(self) -> dict:
        """All fields, JSON-ready."""
        return dataclasses.asdict(self)

    @property
    def config_hash(self) -> str:
        """sha256 (hex) of every field and the runner version: the cell's unique key in the store."""
        fields = self.to_dict()
        # options came after the first stores were written: empty options stay out of the hash, so the keys of
        # the cells of those stores (which have none) are unchanged and a rerun still reuses them.
        if fields["options"] == "{}":
            del fields["options"]
        blob = json.dumps({"runner": RUNNER_VERSION, **fields}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def label(self) -> str:
        """Short human-readable description (for progress bars and errors)."""
        opts = self.option_dict
        kind = ""
        if self.kind == "cleaning":
            kind = f"/{opts.get('cleaner')}{'/stealth' if opts.get('stealth') else ''}"
        elif self.kind == "intersectional":
            kind = "/" + "&".join(f"{k}={v}" for k, v in dict(opts.get("minority") or {}).items())
        return (f"{self.study}/{self.dataset}/{self.method}/{self.firm}/f={self.collective_fraction:g}"
                f"/M={self.budget}/s={self.seed}{kind}")

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


# Room for each (dataset, subsample, minority) a quick run of every study uses, so a worker loads each once.
@functools.lru_cache(maxsize=12)
def _load_dataset(name: str, max_rows: int | None, minority: str | None = None) -> Dataset:
    """The dataset, subsampled; ``minority`` (canonical JSON, column -> value) replaces its default minority."""
    if name not in REGISTRY:
        raise FairflipError(f"unknown dataset '{name}'")
    loader = REGISTRY[name].loader
    accepted = inspect.signature(loader).parameters
    # Never download during an experiment: data-home datasets are used only when already present.
    kwargs = {"download": False} if "download" in accepted else {}
    if minority is not None:
        if "minority" not in accepted:
            raise FairflipError(f"dataset '{name}' does not let the minority be chosen")
        kwargs["minority"] = json.loads(minority)
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
                    fraction: float, direction: str, known_majority: int | None, device: str,
                    minority: str | None) -> Prepared:
    data = _load_dataset(dataset, max_rows, minority)
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

    Problems are never mutated by methods, so cells that differ only in method, budget or cleaner share one.
    An intersectional cell's ``minority`` option replaces the dataset's default minority.
    """
    minority = cell.option_dict.get("minority") if cell.kind == "intersectional" else None
    return _prepare_cached(cell.dataset, cell.max_rows, cell.test_size, cell.seed, firm or cell.firm,
                           cell.collective_fraction, cell.direction, cell.known_majority, cell.device,
                           None if minority is None else json.dumps(minority, sort_keys=True))


def make_cell_method(cell: Cell):
    """Instantiate the cell's flip method with its params and the cell's seed (every method takes one). The
    device is the firm's (see :func:`prepare`), never a method parameter.

    A stealthy cleaning cell gets ``oracle-stealth`` hiding from the cell's cleaner, with the cell's method (and
    those parameters) as its base.
    """
    from fairflip.methods import get_method

    params = cell.param_dict
    opts = cell.option_dict
    if cell.kind == "cleaning" and opts.get("stealth"):
        return get_method("oracle-stealth", seed=cell.seed, base=cell.method, against=opts["cleaner"],
                          fraction=opts["loss_fraction"], safety=opts["safety"], base_params=params)
    return get_method(cell.method, seed=cell.seed, **params)


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
            if cell.kind == "cleaning":
                return _run_cleaning(cell)
            return _run_flip(cell)
    finally:
        torch.set_num_threads(threads)


def _select(cell: Cell, src: Prepared):
    """(the method's FlipResult on the cell's problem, its resolved budget, its selection time in seconds)."""
    budget = resolve_budget(cell.budget, len(src.problem.candidates))
    method = make_cell_method(cell)
    t0 = time.perf_counter()
    result = method.select(src.problem, budget)
    return result, budget, time.perf_counter() - t0


def _run_flip(cell: Cell) -> dict:
    src = prepare(cell, firm=cell.source_firm if cell.kind == "transfer" else None)
    problem = src.problem
    result, budget, select_time = _select(cell, src)
    if cell.kind == "transfer":
        # The same flipped rows, now given to another firm trained on the same prepared features.
        problem = retarget(problem, _make_firm(cell.firm, seed=cell.seed, device=cell.device))
    ev = evaluate_flips(problem, result.flipped, test=src.test_arrays)
    metrics = {k: ev["test"].get(k) for k in TEST_METRICS}
    metrics.update({f"train_{k}": ev["train"].get(k) for k in ("eqod", "eqod_worst", "dp", "error")})
    metrics.update(
        budget=budget, n_flipped=int(len(result.flipped)), n_candidates=int(len(src.problem.candidates)),
        collective_size=src.problem.collective.size, direction=src.problem.collective.direction,
        objective=ev["objective"], lower_bound=None if result.lower_bound is None else float(result.lower_bound),
        select_time_s=select_time,
    )
    extra = {"flipped": result.flipped.tolist(), "info": _jsonable(result.info)}
    if cell.kind == "intersectional":
        groups = _group_metrics(cell, src, result.flipped)
        metrics.update({k: groups[k] for k in GROUP_METRICS})
        extra.update(worst_pair=groups["worst_pair"], left_out=groups["left_out"])
    return {"metrics": metrics, "extra": extra}


def _group_metrics(cell: Cell, src: Prepared, flipped: np.ndarray) -> dict:
    """Test metrics of the firm retrained on the flipped labels over every group of the intersectional minority's
    columns (see :func:`fairflip.metrics_groups.intersectional_metrics`)."""
    from fairflip.metrics_groups import intersectional_metrics

    problem, test = src.problem, src.test
    model = problem.firm.fit(problem.X, problem.flipped_labels(flipped), sample_weight=problem.sample_weight)
    # The minority's own group label(s), read off the rows the loader marked as minority.
    minority = np.unique(test.group[test.a == 1]).tolist()
    return intersectional_metrics(test.y, model.predict(src.test_arrays[0]), test.group, minority,
                                  min_cell=int(cell.option_dict.get("min_cell", 1)))


def _run_cleaning(cell: Cell) -> dict:
    """The cell's flips (plain or stealthy), then the firm cleans its labels, drops the flagged rows, retrains.

    Test metrics (:data:`TEST_METRICS`), ``train_*`` and ``objective`` are those of the cleaned firm (what it
    deploys); :data:`CLEANING_METRICS` add the flags counted against the flips and the test metrics without
    cleaning (``*_before``).
    """
    from fairflip.cleaning import evaluate_cleaned

    src = prepare(cell)
    problem = src.problem
    opts = cell.option_dict
    result, budget, select_time = _select(cell, src)
    before = evaluate_flips(problem, result.flipped, test=src.test_arrays)["test"]
    # The firm draws its own folds (seed offset by one), not the ones oracle-stealth estimated the cleaner with.
    after = evaluate_cleaned(problem, result.flipped, cleaner=opts["cleaner"], test=src.test_arrays,
                             fraction=opts["loss_fraction"], seed=cell.seed + 1)
    report = after["report"]
    metrics = {k: after["test"].get(k) for k in TEST_METRICS}
    metrics.update({f"train_{k}": after["train"].get(k) for k in ("eqod", "eqod_worst", "dp", "error")})
    metrics.update({k: report[k] for k in ("recall", "precision", "honest_flag_rate", "n_flagged")})
    metrics.update(
        eqod_before=before["eqod"], eqod_worst_before=before["eqod_worst"], error_before=before["error"],
        budget=budget, n_flipped=int(len(result.flipped)), n_candidates=int(len(problem.candidates)),
        collective_size=problem.collective.size, direction=problem.collective.direction,
        objective=after["objective"], lower_bound=None, select_time_s=select_time,
    )
    return {"metrics": metrics, "extra": {"flipped": result.flipped.tolist(),
                                          "flagged": np.flatnonzero(after["flagged"]).tolist(),
                                          "info": _jsonable(result.info)}}


def _run_firm_side(cell: Cell) -> dict:
    from fairflip.firm_side import run_firm_side

    src = prepare(cell)
    t0 = time.perf_counter()
    out = run_firm_side(cell.method, src.train, src.test, firm=cell.firm, seed=cell.seed)
    metrics = {k: (None if out.get(k) is None else float(out[k])) for k in TEST_METRICS}
    metrics.update(budget=0, n_flipped=0, n_candidates=0, collective_size=0, direction=None, objective=None,
                   lower_bound=None, select_time_s=time.perf_counter() - t0)
    return {"metrics": metrics, "extra": {"info": _jsonable({k: v for k, v in out.items() if k not in metrics})}}
