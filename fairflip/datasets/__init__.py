"""Datasets: real fairness data (shipped or from a data home), user tables, synthetic causal models.

Every loader returns a :class:`Dataset`; :func:`load` looks one up by name.
"""

from ._base import Dataset, Provenance, from_frame, minority_mask
from ._files import data_home, find_or_download
from .acs import load_acs_income
from .adult import load_adult
from .compas import load_compas
from .german import load_german
from .homed import load_bank, load_celeba, load_crime, load_dutch, load_kdd, load_law
from .registry import REGISTRY, available, load, register
from .split import stratified_split
from .synthetic import make_causal, make_toy_2d
from .table import load_table, read_table

register("compas", load_compas, embedded=True, description="COMPAS two-year recidivism, race (African-American vs Caucasian)")
register("adult", load_adult, embedded=True, description="UCI Adult census income, sex (Female minority)")
register("german", load_german, embedded=True, description="UCI Statlog German credit, sex (female minority)")
register("bank", load_bank, embedded=False, description="UCI Bank marketing (survey copy), age (<25 minority)")
register("dutch", load_dutch, embedded=False, description="Dutch census 2001, sex (female minority), high-level occupation")
register("law", load_law, embedded=False, description="LSAC law school bar passage, race (non-White minority)")
register("crime", load_crime, embedded=False,
         description="UCI Communities and Crime, high share of Black residents, high violent crime (y=1 unfavourable)")
register("celeba", load_celeba, embedded=False, description="CelebA attributes (no images), Male=1 minority, label Attractive")
register("kdd", load_kdd, embedded=False, description="UCI Census-Income (KDD), sex (Female minority)")
register("acs-income", load_acs_income, embedded=False,
         description="ACS-Income (folktables task, US Census PUMS), race (non-White minority)")
register("synthetic", make_causal, embedded=True, description="synthetic causal model with exact group counterfactuals")
register("toy2d", make_toy_2d, embedded=True, description="2-D toy causal model like the paper's example")

__all__ = [
    "Dataset", "Provenance", "from_frame", "minority_mask", "data_home", "find_or_download",
    "load_adult", "load_compas", "load_german", "load_table", "read_table", "stratified_split",
    "load_acs_income", "load_bank", "load_celeba", "load_crime", "load_dutch", "load_kdd", "load_law",
    "make_causal", "make_toy_2d",
    "REGISTRY", "available", "load", "register",
]
