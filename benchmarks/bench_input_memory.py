"""Peak memory of reading a user table and building an rb-prob problem on it, for two hostile shapes.

- ``wide``: 500,000 rows x 30 columns (27 numeric features, a 5-level categorical, the group and the label);
- ``highcard``: 12,000 rows with a 10,000-level categorical feature (plus 5 numeric features).

Usage::

    python -m benchmarks.bench_input_memory make wide /tmp/wide.csv       # write the table (not measured)
    /usr/bin/time -v python -m benchmarks.bench_input_memory run /tmp/wide.csv

``run`` loads the table with :func:`fairflip.datasets.load_table`, builds the problem (logistic firm,
collective 0.3 of the minority, seed 0) and selects 100 flips with ``rb-prob``; it prints one line with the
outcome, the wall time and the peak resident memory of the process (``ru_maxrss``).

Measured on a shared 2-core machine (peak RSS of the whole process, imports included):

- wide (500,000 x 30): before the input checks ok at 1,263 MiB; after, ok at 1,197 MiB (the same 500,000 x 33
  design).
- highcard (12,000 rows, 10,000 levels): before, not finished after 600 s with a sampled peak of 7.37 GiB
  (killed); after, refused in 0.1 s by ``max_categories`` at 448 MiB.
"""

from __future__ import annotations

import resource
import sys
import time

import numpy as np
import pandas as pd


def make(kind: str, path: str) -> None:
    """Write the ``kind`` table (``wide`` or ``highcard``) to ``path`` as CSV, seeded."""
    rng = np.random.default_rng(0)
    if kind == "wide":
        n = 500_000
        frame = pd.DataFrame(rng.normal(size=(n, 27)).round(4), columns=[f"x{i}" for i in range(27)])
        frame["cat"] = rng.choice(list("abcde"), n)
    elif kind == "highcard":
        n = 12_000
        frame = pd.DataFrame(rng.normal(size=(n, 5)).round(4), columns=[f"x{i}" for i in range(5)])
        codes = rng.permutation(np.concatenate([np.arange(10_000), rng.integers(0, 10_000, n - 10_000)]))
        frame["cat"] = [f"level{i}" for i in codes]  # every one of the 10,000 levels occurs
    else:
        raise SystemExit(f"unknown kind {kind!r}: wide or highcard")
    frame["g"] = np.where(rng.random(n) < 0.3, "B", "A")
    frame["y"] = (frame["x0"] + rng.normal(size=n) > 0).astype(int)
    frame.to_csv(path, index=False)


def run(path: str) -> None:
    """Load, build and select; print outcome, wall time and peak RSS."""
    from fairflip._errors import FairflipError
    from fairflip.datasets import load_table
    from fairflip.methods import get_method
    from fairflip.problem import build_problem

    t0 = time.perf_counter()
    try:
        data = load_table(path, label="y", minority={"g": "B"})
        problem, _ = build_problem(data, firm="logistic", collective_fraction=0.3, direction="up", seed=0)
        result = get_method("rb-prob").select(problem, budget=100)
        outcome = f"ok: {len(result.flipped)} flips, design {tuple(problem.X.shape)}"
    except FairflipError as exc:
        outcome = f"refused: {exc}"
    except MemoryError as exc:
        outcome = f"MemoryError: {exc}"
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{outcome} | wall {time.perf_counter() - t0:.1f} s | peak RSS {peak_mib:.0f} MiB", flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "run":
        run(sys.argv[2])
    else:
        raise SystemExit(__doc__)
