"""The built-in names the command line shows in ``--help``, as plain data.

``fairflip --help`` must not import torch, scikit-learn, pandas, SciPy or CVXPY, so the parser cannot ask the
registries for their names. These tuples list the built-in methods, firms, objectives, studies and default
heuristics; a test checks that they equal what the registries hold without plugins. Names a plugin adds are
accepted at command time, when each command checks its names against the registries themselves.
"""

from __future__ import annotations

METHODS: tuple[str, ...] = (
    "none", "random", "rb-prob", "rb-label", "rb-dist", "massaging", "ideal",
    "greedy", "brute-force", "oracle-relaxed", "oracle-convex", "oracle-stealth", "oracle", "oracle-certified",
)
"""Built-in flip methods (``fairflip.methods.available_methods()`` without plugins)."""

HEURISTICS: tuple[str, ...] = ("random", "rb-prob", "rb-label", "rb-dist", "massaging")
"""The strategies a real collective can run (``fairflip.methods.HEURISTICS``): the default of ``gap --methods``."""

SWEEP_METHODS: tuple[str, ...] = ("random", "rb-prob", "rb-label", "rb-dist")
"""The paper's random baseline and three heuristics: the default of ``sweep --methods``."""

FIRMS: tuple[str, ...] = ("logistic", "ridge", "smoothed-hinge", "mlp", "gbdt")
"""Built-in firms (``fairflip.firms.available_firms()`` without plugins)."""

OBJECTIVES: tuple[str, ...] = ("eqod", "eqod-worst", "dp", "eqopp")
"""Built-in fairness objectives (``fairflip.objectives.available_objectives()`` without plugins)."""

DIRECTIONS: tuple[str, ...] = ("auto", "up", "down")
"""Flip directions; ``auto`` is the default of every entry point."""

STUDIES: tuple[str, ...] = ("toy", "collective_size", "flips", "restricted", "firm_side", "transfer", "gap",
                            "ablation", "cleaning", "intersectional")
"""The studies of ``fairflip reproduce`` (``fairflip.experiments.studies.STUDY_ORDER``)."""
