"""The collective's strategies (they read only the collective's view), the ideal strategy and the baselines.

Importing this package registers ``none``, ``random``, ``rb-prob``, ``rb-label``, ``rb-dist``, ``massaging`` and
the omniscient ``ideal`` with :func:`fairflip.methods.register_method`.
"""

from .base import ScoringStrategy, top_m
from .baseline import NoFlips, RandomFlips
from .ideal import IdealErasure, counterfactual_target_prob, precision_at_m
from .massaging import Massaging
from .rb import RBDist, RBLabel, RBProb, reference_features
from .transformer import CollectiveRelabeler

__all__ = [
    "CollectiveRelabeler", "IdealErasure", "Massaging", "NoFlips", "RBDist", "RBLabel", "RBProb", "RandomFlips",
    "ScoringStrategy", "counterfactual_target_prob", "precision_at_m", "reference_features", "top_m",
]
