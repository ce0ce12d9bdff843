"""Output files that are checked before a computation starts and written without damage.

Two rules hold for every file fairflip writes:

- ``check_output_path`` (or ``check_output_dir`` for a folder) is called *before* any work starts, so that a bad
  output location fails at once with one :class:`FairflipError` instead of after a long computation.
- ``atomic_write`` writes the whole content to a temporary file beside the real target and renames it into place
  in one step, so a reader (or a killed run) never sees a half-written file.

Symbolic links are followed: the file the link points to is written, and the link itself is kept. Character
devices (``/dev/null``, a terminal) and named pipes are written in place, never replaced. Block devices, sockets,
folders and anything under ``/proc`` or ``/sys`` are refused. New files get the mode ``0o666`` minus the process's
umask, like any file an ordinary program creates; a replaced file keeps its mode.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Callable

from ._errors import FairflipError

_SYSTEM_TREES = ("/proc", "/sys")


def _umask() -> int:
    """The process's umask, read without changing it where the platform allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # no way to read it without setting it elsewhere
    os.umask(mask)
    return mask


def _in_system_tree(path: str) -> bool:
    return any(path == root or path.startswith(root + os.sep) for root in _SYSTEM_TREES)


def _is_stream(mode: int) -> bool:
    """A character device or a named pipe: written in place, never replaced by a rename."""
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def check_output_path(path: str | os.PathLike, *, inputs: Iterable[str | os.PathLike | None] = (),
                      name: str = "--out") -> Path:
    """Check, before any work starts, that an output *file* can be written without damage.

    What is accepted, and what writing it will do (through :func:`atomic_write`):

    - a new file in an existing, writable folder: created with mode ``0o666`` minus the umask;
    - an existing regular file: replaced in one step, keeping its mode;
    - a symbolic link (also a chain of links, or a link to a file not yet created): the file it finally points to
      is written and the link stays a link;
    - a character device such as ``/dev/null`` or a named pipe: written in place, never replaced.

    What is refused, each with one :class:`FairflipError` that names ``name`` and the path:

    - an empty path, an existing folder, a path whose folder does not exist or is not a folder;
    - a folder where no file can be created (tested by creating and removing a temporary file, so read-only
      mounts and permissions are caught even for root), or an existing file that is not writable;
    - a block device or a socket, and any path under ``/proc`` or ``/sys``;
    - a path that is one of ``inputs`` (the same file, also through a link or a hard link).

    Args:
        path: the output file as the user gave it.
        inputs: the files the computation reads (``None`` entries are skipped); writing over one is refused.
        name: how the argument is called in the message, e.g. ``"--out"``.

    Returns:
        the real file that will be written (links resolved), as a Path.
    """
    raw = os.fspath(path) if path is not None else ""
    if not isinstance(raw, str) or not raw.strip():
        raise FairflipError(f"{name} must name a file, got {path!r}")
    if "\x00" in raw:
        raise FairflipError(f"{name} {raw!r} contains a NUL byte")
    real = os.path.realpath(raw)
    try:
        st = os.stat(raw)  # follows links
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        raise FairflipError(f"{name} {raw!r}: a part of the path is a file, not a folder") from None
    except OSError as exc:
        raise FairflipError(f"{name} {raw!r} cannot be inspected: {exc.strerror or exc}") from None

    if st is not None and _is_stream(st.st_mode):
        if not os.access(raw, os.W_OK):
            raise FairflipError(f"{name} {raw!r} is a device or pipe that is not writable")
        return Path(real)
    if _in_system_tree(real):
        raise FairflipError(f"{name} {raw!r} lies in a system tree (/proc or /sys) that fairflip never writes to")
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise FairflipError(f"{name} {raw!r} is a folder; give a file name")
        if not stat.S_ISREG(st.st_mode):
            raise FairflipError(f"{name} {raw!r} is a special file (block device or socket); refusing to write it")
        if not os.access(real, os.W_OK):
            raise FairflipError(f"{name} {raw!r} exists and is not writable")
    for item in inputs:
        if item is None:
            continue
        if _same_file(raw, os.fspath(item)):
            raise FairflipError(f"{name} {raw!r} is the input file {os.fspath(item)!r}; "
                                "writing there would destroy it, choose another output file")
    parent = os.path.dirname(real) or "."
    if not os.path.exists(parent):
        raise FairflipError(f"{name} {raw!r}: the folder {parent!r} does not exist")
    if not os.path.isdir(parent):
        raise FairflipError(f"{name} {raw!r}: {parent!r} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(dir=parent, prefix=".fairflip-probe.", suffix=".tmp")
    except OSError as exc:
        raise FairflipError(f"{name} {raw!r}: cannot create files in {parent!r} "
                            f"({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(probe)
    return Path(real)


def check_output_dir(path: str | os.PathLike, *, name: str = "--out") -> Path:
    """Check, before any work starts, that an output *folder* exists or can be created, and is writable.

    Nothing is created: a missing folder is accepted when its nearest existing ancestor is a writable folder.

    Raises:
        FairflipError: naming ``name``: an empty path, a path that is a file (or has a file as a part),
            a location under ``/proc`` or ``/sys``, or a folder where no file can be written.

    Returns:
        the folder with links resolved, as a Path.
    """
    raw = os.fspath(path) if path is not None else ""
    if not isinstance(raw, str) or not raw.strip():
        raise FairflipError(f"{name} must name a folder, got {path!r}")
    if "\x00" in raw:
        raise FairflipError(f"{name} {raw!r} contains a NUL byte")
    real = os.path.realpath(raw)
    if _in_system_tree(real):
        raise FairflipError(f"{name} {raw!r} lies in a system tree (/proc or /sys) that fairflip never writes to")
    probe_dir = real
    while not os.path.exists(probe_dir):
        up = os.path.dirname(probe_dir)
        if up == probe_dir:
            break
        probe_dir = up
    if not os.path.isdir(probe_dir):
        what = "is a file" if probe_dir == real else f"has a file as a part ({probe_dir!r})"
        raise FairflipError(f"{name} {raw!r} must be a folder, but it {what}")
    if not os.access(probe_dir, os.W_OK | os.X_OK):
        raise FairflipError(f"{name} {raw!r}: {probe_dir!r} is not writable")
    if probe_dir == real:
        try:
            fd, probe = tempfile.mkstemp(dir=real, prefix=".fairflip-probe.", suffix=".tmp")
        except OSError as exc:
            raise FairflipError(f"{name} {raw!r}: cannot create files there ({exc.strerror or exc})") from None
        os.close(fd)
        os.unlink(probe)
    return Path(real)


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Write a file in one step: ``write(tmp)`` fills a temporary file beside the target, which is then renamed.

    The target is the real file behind ``path``: a symbolic link is followed and stays a link. A character device
    (``/dev/null``) or a named pipe is written in place by calling ``write`` on it directly, never replaced. A
    folder, block device, socket, or a path under ``/proc`` or ``/sys`` is refused. A new file gets mode
    ``0o666`` minus the umask; a replaced file keeps its mode. The temporary file is removed if ``write`` fails,
    so no partial file is ever left behind.

    Args:
        path: the output file; the folder of its real target must exist.
        write: writes the whole content to the path it is given.

    Returns:
        the real target that was written, as a Path.

    Raises:
        FairflipError: the path cannot be written safely (see :func:`check_output_path`).
    """
    raw = os.fspath(path)
    target = Path(os.path.realpath(raw))
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise FairflipError(f"output {raw!r} cannot be written: {exc.strerror or exc}") from None
    if st is not None and _is_stream(st.st_mode):
        write(target)
        return target
    if _in_system_tree(str(target)):
        raise FairflipError(f"output {raw!r} lies in /proc or /sys; refusing to write it")
    if st is not None and not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "a special file"
        raise FairflipError(f"output {raw!r} is {kind}; refusing to replace it")
    mode = stat.S_IMODE(st.st_mode) if st is not None else (0o666 & ~_umask())
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise FairflipError(f"output {raw!r}: cannot create a file in {str(target.parent)!r} "
                            f"({exc.strerror or exc})") from None
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


# ---------------------------------------------------------------- memory: estimate before allocating

def _parse_bytes(text: str) -> int | None:
    text = text.strip().upper()
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    try:
        if text and text[-1] in units:
            return int(float(text[:-1]) * units[text[-1]])
        return int(float(text))
    except ValueError:
        return None


def available_memory() -> int | None:
    """Bytes this process may still allocate, as best known: the smallest of the system's available memory
    (``MemAvailable``), the cgroup's remaining limit, the address-space rlimit, and ``FAIRFLIP_MAX_MEMORY``
    (e.g. ``8G``) when set; None when nothing is known."""
    limits: list[int] = []
    env = os.environ.get("FAIRFLIP_MAX_MEMORY")
    if env:
        parsed = _parse_bytes(env)
        if parsed is None or parsed <= 0:
            raise FairflipError(f"FAIRFLIP_MAX_MEMORY must be a size such as 8G or 500M, got {env!r}")
        limits.append(parsed)
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    limits.append(int(line.split()[1]) * 1024)
                    break
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open("/sys/fs/cgroup/memory.max", encoding="ascii") as fh:
            cap = fh.read().strip()
        with open("/sys/fs/cgroup/memory.current", encoding="ascii") as fh:
            used = int(fh.read().strip())
        if cap != "max":
            limits.append(max(0, int(cap) - used))
    except (OSError, ValueError):
        pass
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            limits.append(int(soft))
    except (ImportError, OSError, ValueError):
        pass
    return min(limits) if limits else None


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def check_memory(nbytes: float, what: str) -> None:
    """Refuse, before allocating, an allocation of ``nbytes`` that cannot fit (see :func:`available_memory`).

    Args:
        nbytes: the estimated size of what is about to be allocated, in bytes.
        what: what it is, for the message (e.g. ``"the design matrix (500000 x 31 float64)"``).

    Raises:
        FairflipError: the estimate exceeds the memory available now.
    """
    free = available_memory()
    if free is not None and nbytes > free:
        raise FairflipError(f"{what} needs about {_human(nbytes)} of memory, but only {_human(free)} is available; "
                            "use fewer rows or columns")
