"""What the command line writes besides its result: warnings held until the input is known good, and progress.

Bad input must end with exactly one ``fairflip: error:`` line, so warnings raised while the input is read and
checked or the problem is solved (by fairflip or by NumPy) are held back; :func:`flush_warnings` prints them once
the command has its result (each command calls it before printing, :func:`fairflip.cli.main` at the end), and
:func:`discard_warnings` drops them when the command fails.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from typing import Any, TextIO

_pending: list[str] = []
_caught: list[warnings.WarningMessage] | None = None


def warn(message: str) -> None:
    """Hold a ``fairflip: warning:`` line until :func:`flush_warnings`."""
    _pending.append(" ".join(str(message).split()))


def start_capture(caught: list[warnings.WarningMessage] | None) -> None:
    """Use ``caught`` (the list of a ``warnings.catch_warnings(record=True)`` block) as held Python warnings."""
    global _caught
    _caught = caught
    _pending.clear()


def _python_lines() -> list[str]:
    if not _caught:
        return []
    lines = [f"{w.category.__name__}: {' '.join(str(w.message).split())}" for w in _caught]
    _caught.clear()
    return lines


def flush_warnings(stream: TextIO | None = None) -> None:
    """Print the held warnings, one ``fairflip: warning:`` line each, in the order they arose (fairflip's own
    first), and forget them."""
    stream = stream or sys.stderr
    seen = set()
    for line in [*_pending, *_python_lines()]:
        if line not in seen:
            seen.add(line)
            stream.write(f"fairflip: warning: {line}\n")
    _pending.clear()


def discard_warnings() -> None:
    """Forget the held warnings (the command failed; its one error line is all that is printed)."""
    _pending.clear()
    _python_lines()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if math.isfinite(value) else str(value)
    return str(value)


class Progress:
    """A one-line progress display on a terminal: ``label [#####.....] done/total  stage  best  bound  time``.

    Call it with a progress dict (the :data:`fairflip.methods.ProgressFn` protocol: any of ``stage``, ``done``,
    ``total``, ``best``, ``bound``); it redraws at most every ``interval`` seconds. It prints nothing unless
    ``enabled`` (default: the stream is a terminal), so piped or redirected output stays clean.

    Args:
        label: what runs (e.g. ``"oracle"``).
        stream: where to draw (stderr).
        enabled: force on or off; None: on when ``stream.isatty()``.
        interval: the least time between two redraws, in seconds.
    """

    def __init__(self, label: str, *, stream: TextIO | None = None, enabled: bool | None = None,
                 interval: float = 0.2) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        if enabled is None:
            try:
                enabled = bool(self.stream.isatty())
            except (AttributeError, ValueError):
                enabled = False
        self.enabled = enabled
        self.interval = interval
        self.state: dict[str, Any] = {}
        self.start = time.perf_counter()
        self._last = -math.inf
        self._width = 0

    def line(self) -> str:
        """The text of the current state (without the carriage return)."""
        s = self.state
        parts = [self.label]
        done, total = s.get("done"), s.get("total")
        if done is not None and total:
            filled = max(0, min(20, int(20 * float(done) / float(total))))
            parts.append(f"[{'#' * filled}{'.' * (20 - filled)}] {_fmt(done)}/{_fmt(total)}")
        if s.get("stage"):
            parts.append(str(s["stage"]))
        if s.get("best") is not None:
            parts.append(f"best {_fmt(s['best'])}")
        if s.get("bound") is not None:
            parts.append(f"bound {_fmt(s['bound'])}")
        parts.append(f"{time.perf_counter() - self.start:.0f}s")
        return "  ".join(parts)

    def __call__(self, fields: dict[str, Any]) -> None:
        if "stage" in fields and fields["stage"] != self.state.get("stage") and "done" not in fields:
            self.state.pop("done", None)  # a new stage without a count: the old count no longer applies
            self.state.pop("total", None)
        for k, v in fields.items():  # None clears a field (e.g. the best of the previous method)
            if v is None:
                self.state.pop(k, None)
            else:
                self.state[k] = v
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last < self.interval:
            return
        self._last = now
        text = self.line()
        pad = max(0, self._width - len(text))
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()
        self._width = len(text)

    def close(self) -> None:
        """Erase the progress line (so the result starts on a clean line)."""
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0
