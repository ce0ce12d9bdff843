"""Datasets: real fairness data (shipped or from a data home), user tables, synthetic causal models.

Every loader returns a :class:`Dataset`; :func:`load` looks one up by name.
"""

from ._base import Dataset, Provenance, from_frame, minority_mask
from ._files import data_home, find_or_download
from .adult import load_adult
from .compas import load_compas
from .german import load_german
from .registry import REGISTRY, available, load, register
from .split import stratified_split
from .table import load_table, read_table

register("compas", load_compas, embedded=True, description="COMPAS two-year recidivism, race (African-American vs Caucasian)")
register("adult", load_adult, embedded=True, description="UCI Adult census income, sex (Female minority)")
register("german", load_german, embedded=True, description="UCI Statlog German credit, sex (female minority)")

__all__ = [
    "Dataset", "Provenance", "from_frame", "minority_mask", "data_home", "find_or_download",
    "load_adult", "load_compas", "load_german", "load_table", "read_table", "stratified_split",
    "REGISTRY", "available", "load", "register",
]
