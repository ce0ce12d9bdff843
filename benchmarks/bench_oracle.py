"""Benchmark 3: the oracle's cost in firm fits, from n = 5,000 to 300,000 rows, and the oracle versus greedy.

Data: KDD census-income (``fairflip.datasets.load("kdd")``) when a data home holding it is configured
(``FAIRFLIP_DATA``), else a synthetic matrix of the same shape (``make_causal`` with as many features as KDD has
prepared columns); the result says which. Each size is a random subsample, prepared like any fairflip run
(standardised numerics, one-hot categoricals, group column), with a 30% collective flipping 0 -> 1.

"Firm fits" = oracle seconds / seconds of one scikit-learn ``LogisticRegression(C=1)`` fit of the same firm on
the same matrix (the faster of lbfgs with default settings and newton-cholesky, so the ratio is conservative).
The oracle is ``oracle-relaxed`` (hypergradient relaxation, rounding, local search), the portfolio's component
that scales; one solve is one budget, the sweep is ``select_many`` over 10 budgets in one batched run. Every
timing starts from a cold problem (no cached design matrix or unflipped optimum).
"""

from __future__ import annotations

import os
import warnings
from typing import Literal

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from fairflip._errors import FairflipError
from fairflip.datasets import Dataset, load, make_causal
from fairflip.firms import LinearFirm
from fairflip.methods import get_method
from fairflip.problem import FlipProblem, build_problem

from ._harness import measure

KDD_ROWS = 299_285
KDD_FEATURES = 508  # prepared KDD columns without the group indicator


def load_source(max_rows: int, *, source: Literal["auto", "synthetic"] = "auto", features: int = KDD_FEATURES,
                seed: int = 0) -> tuple[Dataset, str]:
    """KDD census-income when the data home has it (and ``source`` is auto), else synthetic data.

    Args:
        max_rows: rows needed (the synthetic sample has min(max_rows, KDD_ROWS)).
        source: ``auto`` (KDD when FAIRFLIP_DATA is set and holds it) or ``synthetic``.
        features: columns of the synthetic sample (KDD's prepared width by default).
        seed: synthetic sample seed.

    Returns:
        (dataset, description of the source).
    """
    if source == "auto" and os.environ.get("FAIRFLIP_DATA"):
        try:
            return load("kdd", download=False), "kdd census-income (FAIRFLIP_DATA)"
        except FairflipError as exc:
            warnings.warn(f"KDD census-income not loadable ({exc}); using synthetic data of the same shape")
    n = min(max_rows, KDD_ROWS)
    data = make_causal(n, features, weights=3.0 / np.sqrt(features), label_bias=1.0, seed=seed)
    why = "KDD not used" if source == "synthetic" else "KDD not available"
    return data, f"synthetic make_causal(n={n}, d={features}) ({why})"


def subsample_problem(data: Dataset, n: int, *, firm: LinearFirm, seed: int = 0) -> FlipProblem:
    """A flip problem on n random rows of ``data`` (all rows when n >= len(data)), 30% collective, direction up."""
    rng = np.random.default_rng(seed)
    rows = np.arange(len(data)) if n >= len(data) else np.sort(rng.choice(len(data), size=n, replace=False))
    problem, _ = build_problem(data.subset(rows), firm=firm, collective_fraction=0.3, direction="up", seed=seed)
    return problem


def _cold(problem: FlipProblem) -> FlipProblem:
    """Drop the problem's device cache so the next timing pays for the design matrix and the unflipped fit."""
    problem.__dict__.pop("_cache", None)
    return problem


def sklearn_fit_seconds(X: np.ndarray, y: np.ndarray) -> dict:
    """Best-of-one seconds and iterations of sklearn lbfgs (defaults) and newton-cholesky on (X, y)."""
    out = {}
    for solver in ("lbfgs", "newton-cholesky"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # lbfgs's default 100 iterations may not converge
            m = measure(solver, lambda solver=solver: LogisticRegression(C=1.0, solver=solver).fit(X, y))
        out[solver] = (m.seconds, int(np.max(m.value.n_iter_)), m.peak_mb, m.rss_mb)
    return out


def run(
    *,
    sizes: tuple[int, ...] = (5_000, 20_000, 100_000, 300_000),
    budget_share: float = 0.01,
    n_budgets: int = 10,
    oracle_params: dict | None = None,
    greedy_n: int = 2_000,
    greedy_budget: int = 5,
    source: Literal["auto", "synthetic"] = "auto",
    features: int = KDD_FEATURES,
    sweep_up_to: int | None = None,
    device: str | None = None,
    seed: int = 0,
) -> dict:
    """Oracle time in firm fits at each size, and oracle versus greedy at ``greedy_n`` rows.

    Args:
        sizes: training-set sizes n (capped at the data's rows).
        budget_share: the single-solve budget M as a share of the candidates; the sweep's budgets are
            M/n_budgets, 2M/n_budgets, ..., M.
        n_budgets: budgets of the sweep.
        oracle_params: options of ``oracle-relaxed``.
        greedy_n, greedy_budget: size and budget of the greedy comparison (greedy retrains c * M times).
        source, features: data source (see :func:`load_source`).
        sweep_up_to: run the sweep only for n up to this (None: always); greedy_n = 0 skips the greedy comparison.
        device: torch device of the firm (None: CUDA when available).
        seed: subsample and collective seed.
    """
    params = dict(oracle_params or {})
    data, described = load_source(max(max(sizes), greedy_n), source=source, features=features, seed=seed)
    firm = LinearFirm("logistic", C=1.0, device=device)
    sync = firm.torch_device.type == "cuda"
    if sync:
        # CUDA start-up (context, library handles, kernel loading) is paid once per process: pay it on a small
        # instance first, so the first size measured is not charged for it.
        get_method("oracle-relaxed", **params).select(subsample_problem(data, min(2_000, len(data)), firm=firm,
                                                                        seed=seed), 2)
    rows = []
    for n in sizes:
        problem = subsample_problem(data, n, firm=firm, seed=seed)
        c = len(problem.candidates)
        M = max(1, int(round(budget_share * c)))
        budgets = sorted({max(1, int(round(M * (i + 1) / n_budgets))) for i in range(n_budgets)})
        sk = sklearn_fit_seconds(problem.X, problem.y)
        one_fit = min(v[0] for v in sk.values())
        m_fit = measure("fairflip fit", lambda: firm.fit_params(firm.design(problem.X),
                                                                torch.as_tensor(problem.y, dtype=firm.dtype,
                                                                                device=firm.torch_device)),
                        cuda_sync=sync)
        oracle = get_method("oracle-relaxed", **params)
        m_one = measure("oracle, one budget", lambda: oracle.select(_cold(problem), M), cuda_sync=sync)
        sweep = sweep_up_to is None or problem.n <= sweep_up_to
        m_sweep = measure("oracle, sweep", lambda: oracle.select_many(_cold(problem), budgets),
                          cuda_sync=sync) if sweep else None
        rows.append({
            "n": problem.n, "p": problem.X.shape[1] + 1, "candidates": c, "budget": M,
            "sklearn_lbfgs_s": sk["lbfgs"][0], "lbfgs_iter": sk["lbfgs"][1],
            "sklearn_newton_chol_s": sk["newton-cholesky"][0], "fairflip_fit_s": m_fit.seconds,
            "oracle_1_s": m_one.seconds, "oracle_1_fits": m_one.seconds / one_fit,
            "sweep_budgets": len(budgets) if sweep else 0,
            "sweep_s": m_sweep.seconds if sweep else float("nan"),
            "sweep_fits": m_sweep.seconds / one_fit if sweep else float("nan"),
            "objective_1": float(m_one.value.info["objective"]),
            "peak_mb": max(m.peak_mb for m in (m_one, m_sweep) if m is not None),
            "rss_mb": max(m.rss_mb for m in (m_one, m_sweep) if m is not None),
        })
        r = rows[-1]
        print(f"oracle n={r['n']}: one solve {r['oracle_1_s']:.1f} s = {r['oracle_1_fits']:.1f} fits, "
              f"sweep {r['sweep_s']:.1f} s = {r['sweep_fits']:.1f} fits", flush=True)  # progress of a long run
    return {"benchmark": "oracle", "source": described, "device": str(firm.torch_device),
            "threads": torch.get_num_threads(), "oracle": "oracle-relaxed", "oracle_params": params,
            "rows": rows,
            "versus_greedy": _versus_greedy(data, greedy_n, greedy_budget, firm, params, sync, seed) if greedy_n else []}


def _versus_greedy(data: Dataset, n: int, budget: int, firm: LinearFirm, params: dict, sync: bool,
                   seed: int) -> list[dict]:
    """Time and true objective of oracle-relaxed and greedy on the same n-row problem and budget."""
    problem = subsample_problem(data, n, firm=firm, seed=seed)
    out = []
    for name, kwargs in (("oracle-relaxed", params), ("greedy", {})):
        method = get_method(name, **kwargs)
        m = measure(name, lambda: method.select(_cold(problem), budget), cuda_sync=sync)
        value = float(problem.objective_of([m.value.flipped])[0])
        out.append({"method": name, "n": problem.n, "candidates": len(problem.candidates), "budget": budget,
                    "seconds": m.seconds, "objective": value, "n_flipped": int(len(m.value.flipped)),
                    "peak_mb": m.peak_mb, "rss_mb": m.rss_mb})
    return out
