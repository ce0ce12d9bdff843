"""Atomic file writes: a reader (or a killed run) never sees a half-written output file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it onto ``path`` in one step.

    The temporary file is removed if ``write`` fails, so no partial file is ever left behind.

    Args:
        path: the final file; its folder must exist.
        write: writes the whole content to the path it is given.

    Returns:
        ``path`` as a Path.
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target
