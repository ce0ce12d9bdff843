"""Name -> loader registry behind :func:`fairflip.datasets.load` and ``fairflip datasets``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .._errors import FairflipError
from ._base import Dataset


@dataclass(frozen=True)
class DatasetEntry:
    """A registered dataset: its loader and whether it ships inside the package (no data home needed)."""

    name: str
    loader: Callable[..., Dataset]
    embedded: bool
    description: str


REGISTRY: dict[str, DatasetEntry] = {}


def register(name: str, loader: Callable[..., Dataset], *, embedded: bool, description: str) -> None:
    """Add a dataset to the registry under ``name`` (a later registration replaces an earlier one)."""
    REGISTRY[name] = DatasetEntry(name, loader, embedded, description)


def load(name: str, **kwargs) -> Dataset:
    """Load the registered dataset ``name``; keyword arguments go to its loader (e.g. ``minority=...``)."""
    if name not in REGISTRY:
        raise FairflipError(f"unknown dataset '{name}'; known: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name].loader(**kwargs)


def available(*, embedded_only: bool = False) -> list[str]:
    """Return the registered dataset names, sorted (only the shipped ones when ``embedded_only``)."""
    return sorted(n for n, e in REGISTRY.items() if e.embedded or not embedded_only)
