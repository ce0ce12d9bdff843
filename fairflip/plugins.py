"""Loading user modules that extend fairflip through its public registries.

A plugin is an ordinary Python module that, when imported, calls the public registration functions:
:func:`fairflip.methods.register_method`, :func:`fairflip.objectives.register_objective`,
:func:`fairflip.surrogates.register_surrogate`, :func:`fairflip.firms.register_loss` and
:func:`fairflip.firms.register_firm`. Three ways load one:

- ``fairflip --plugin my_module ...`` or ``--plugin path/to/file.py`` on the command line (repeatable);
- :func:`load_plugins` from Python;
- an installed distribution declaring an entry point in the group ``fairflip.plugins`` (loaded the first time a
  registry is read).

Loaded plugins are recorded in the environment variable ``FAIRFLIP_PLUGINS`` (``os.pathsep``-separated), so that
worker processes started by a sweep or a study (process pools, a local Ray cluster) load the same plugins before
they look a name up.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Sequence

from ._errors import FairflipError

ENV_VAR = "FAIRFLIP_PLUGINS"
ENTRY_POINT_GROUP = "fairflip.plugins"

_loaded: dict[str, ModuleType] = {}
_entry_points_done = False


def _is_path(spec: str) -> bool:
    return spec.endswith(".py") or os.sep in spec or (os.altsep is not None and os.altsep in spec)


def _key(spec: str) -> str:
    return str(Path(spec).resolve()) if _is_path(spec) else spec


def _import_path(path: Path) -> ModuleType:
    if not path.is_file():
        raise FairflipError(f"plugin file '{path}' does not exist or is not a file")
    # A stable module name per file, so that re-loading the same path finds the same module.
    name = f"fairflip_plugin_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise FairflipError(f"plugin file '{path}' cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def load_plugin(spec: str) -> ModuleType:
    """Import one plugin (a module name such as ``my_pkg.fairflip_ext`` or a path to a ``.py`` file), once.

    Args:
        spec: module name or file path.

    Returns:
        the imported module.

    Raises:
        FairflipError: naming the plugin when it cannot be found or raises while it is imported.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise FairflipError(f"a plugin must be a module name or a .py path, got {spec!r}")
    spec = spec.strip()
    key = _key(spec)
    if key in _loaded:
        return _loaded[key]
    try:
        module = _import_path(Path(key)) if _is_path(spec) else importlib.import_module(spec)
    except FairflipError:
        raise
    except ModuleNotFoundError as exc:
        raise FairflipError(f"plugin '{spec}' not found ({exc}); give an importable module name or a .py path") from exc
    except Exception as exc:  # a plugin's own error: report it as the plugin's, in one line
        raise FairflipError(f"plugin '{spec}' failed while loading: {type(exc).__name__}: {exc}") from exc
    _loaded[key] = module
    _record(key)
    return module


def load_plugins(specs: Sequence[str]) -> list[ModuleType]:
    """Import several plugins in order (see :func:`load_plugin`) and record them for worker processes.

    Args:
        specs: module names or ``.py`` paths.

    Returns:
        the imported modules, in ``specs`` order.
    """
    if isinstance(specs, str):
        specs = [specs]
    return [load_plugin(s) for s in specs]


def _record(key: str) -> None:
    current = [p for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p]
    if key not in current:
        os.environ[ENV_VAR] = os.pathsep.join([*current, key])


def load_env_plugins() -> None:
    """Load the plugins named in ``FAIRFLIP_PLUGINS`` and the installed ``fairflip.plugins`` entry points (each
    once per process). The registries call this before every lookup, so a worker process sees what its driver
    loaded."""
    global _entry_points_done
    for spec in os.environ.get(ENV_VAR, "").split(os.pathsep):
        if spec and spec not in _loaded:
            load_plugin(spec)
    if not _entry_points_done:
        _entry_points_done = True
        from importlib.metadata import entry_points

        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                ep.load()
            except Exception as exc:
                raise FairflipError(f"plugin entry point '{ep.name}' ({ep.value}) failed while loading: "
                                    f"{type(exc).__name__}: {exc}") from exc
