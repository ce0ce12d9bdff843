"""Timing and memory helpers for the benchmarks: side-by-side ratios in one run, peak memory per measurement."""

from __future__ import annotations

import gc
import resource
import threading
import time
import tracemalloc
from dataclasses import dataclass, field
from typing import Any, Callable



@dataclass
class Measurement:
    """Wall time (best of ``repeats``), peak traced Python/NumPy memory and peak RSS growth of one callable."""

    name: str
    seconds: float
    peak_mb: float
    rss_mb: float
    value: Any = field(default=None, repr=False)


def _rss_bytes() -> int:
    """Current resident set size (Linux /proc; elsewhere the lifetime peak, which is still an upper bound)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * resource.getpagesize()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class _RssSampler:
    """Samples the process's resident set size every few ms; torch allocations are not seen by tracemalloc."""

    def __init__(self) -> None:
        self.base = _rss_bytes()
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(0.005)

    def __enter__(self) -> "_RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


def measure(name: str, fn: Callable[[], Any], *, repeats: int = 1, cuda_sync: bool = False) -> Measurement:
    """Run ``fn`` ``repeats`` times; return the best wall time, its peak memory and the last return value."""
    best = float("inf")
    value = None
    peak = 0.0
    rss = 0.0
    for _ in range(repeats):
        gc.collect()
        tracemalloc.start()
        with _RssSampler() as sampler:
            t0 = time.perf_counter()
            value = fn()
            if cuda_sync:
                import torch

                torch.cuda.synchronize()
            elapsed = time.perf_counter() - t0
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        best = min(best, elapsed)
        peak = max(peak, traced_peak / 2**20)
        rss = max(rss, (sampler.peak - sampler.base) / 2**20)
    return Measurement(name, best, peak, rss, value)


def table(rows: list[dict], columns: list[str]) -> str:
    """Render dict rows as a fixed-width text table."""
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)
    widths = [max(len(c), *(len(fmt(r.get(c, ""))) for r in rows)) for c in columns]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        lines.append("  ".join(fmt(r.get(c, "")).ljust(w) for c, w in zip(columns, widths)))
    return "\n".join(lines)
