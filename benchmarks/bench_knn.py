"""Benchmark 4: the kNN heuristics (rb-label, rb-dist) versus a bare scikit-learn NearestNeighbors query.

Both sides use the same k and the same matrices: the candidates of a 30% collective as queries and the known
majority rows (rb-dist: those with the target label) as references, prepared from a synthetic ``make_causal``
sample of n rows. The heuristic's time covers everything ``select`` does (the collective's view, feature
matrices, the neighbour search, scores and the top-M choice); the bare time is ``fit`` + ``kneighbors`` alone.
The heuristics run on the CPU (scikit-learn), whatever ``device`` says.
"""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors

from fairflip.datasets import make_causal
from fairflip.methods import get_method
from fairflip.problem import build_problem

from ._harness import measure


def run(*, n: int = 300_000, d: int = 20, k: int = 10, budget_share: float = 0.1, device: str | None = None,
        seed: int = 0) -> dict:
    """Time rb-label and rb-dist against the bare neighbour query on n synthetic rows with d features."""
    data = make_causal(n, d, weights=2.0 / np.sqrt(d), seed=seed)
    problem, _ = build_problem(data, firm="logistic", collective_fraction=0.3, direction="up", seed=seed)
    view = problem.view()
    budget = max(1, int(budget_share * len(view.candidate_rows)))
    target_rows = view.X_majority[view.y_majority == view.target_label]
    rows = []
    for name, reference in (("rb-label", view.X_majority), ("rb-dist", target_rows)):
        method = get_method(name, k=k)
        m_heur = measure(name, lambda: method.select(problem, budget))
        m_bare = measure("bare", lambda: NearestNeighbors(n_neighbors=k).fit(reference).kneighbors(view.X_candidates))
        rows.append({"method": name, "queries": len(view.X_candidates), "references": len(reference), "k": k,
                     "heuristic_s": m_heur.seconds, "bare_query_s": m_bare.seconds,
                     "ratio": m_heur.seconds / m_bare.seconds, "heuristic_peak_mb": m_heur.peak_mb,
                     "bare_peak_mb": m_bare.peak_mb, "heuristic_rss_mb": m_heur.rss_mb, "bare_rss_mb": m_bare.rss_mb})
    return {"benchmark": "knn", "n": n, "d": d, "budget": budget, "device": "cpu (scikit-learn)", "rows": rows}
