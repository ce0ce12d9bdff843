"""Device and dtype choice: CUDA when present, float64 by default (exactness matters more than speed here)."""

from __future__ import annotations

import torch

from ._errors import FairflipError


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """Return ``device`` as a torch.device; None picks ``cuda`` when available, else ``cpu``."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise FairflipError("device 'cuda' was requested but no CUDA device is available")
    return dev


def resolve_dtype(dtype: str | torch.dtype = torch.float64) -> torch.dtype:
    """Return ``dtype`` as a floating torch dtype ('float64' or 'float32' accepted as strings)."""
    if isinstance(dtype, str):
        table = {"float64": torch.float64, "float32": torch.float32, "double": torch.float64, "float": torch.float32}
        if dtype not in table:
            raise FairflipError(f"dtype must be float64 or float32, got {dtype!r}")
        return table[dtype]
    if dtype not in (torch.float64, torch.float32):
        raise FairflipError(f"dtype must be torch.float64 or torch.float32, got {dtype}")
    return dtype
