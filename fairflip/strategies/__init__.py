"""The collective's strategies (they read only the collective's view) and the baselines."""

from .base import ScoringStrategy, top_m
from .baseline import NoFlips, RandomFlips

__all__ = ["NoFlips", "RandomFlips", "ScoringStrategy", "top_m"]
