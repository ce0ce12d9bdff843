"""The installed package must hold every module of the source tree: pyproject lists packages explicitly (solvers/
and experiments/ are mapped into the fairflip namespace), so a new subpackage missing from the list would only
fail after a non-editable install."""

from __future__ import annotations

from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]


def _config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_source_package_is_listed():
    cfg = _config()
    listed = set(cfg["packages"])
    on_disk = set()
    for name, folder in cfg["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            on_disk.add(".".join([name, *rel.parts]))
    assert on_disk - listed == set(), f"packages missing from pyproject: {sorted(on_disk - listed)}"
    assert listed - on_disk == set(), f"pyproject lists packages that do not exist: {sorted(listed - on_disk)}"


def test_package_data_patterns_match_files():
    cfg = _config()
    for package, patterns in cfg["package-data"].items():
        folder = ROOT / cfg["package-dir"].get(package, package.replace(".", "/"))
        if package not in cfg["package-dir"]:
            top = package.split(".")[0]
            folder = ROOT / cfg["package-dir"][top] / Path(*package.split(".")[1:])
        for pattern in patterns:
            assert list(folder.glob(pattern)), f"package-data pattern {pattern!r} of {package} matches no file"
