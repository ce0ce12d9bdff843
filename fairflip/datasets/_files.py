"""Locating data files: the copies shipped inside the package (sha256-checked) and the user's data home."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import urllib.request
from importlib import resources
from pathlib import Path

from .._errors import FairflipError
from .._io import atomic_write

# sha256 of each file shipped in fairflip/datasets/data, identical to the publishers' releases.
EMBEDDED_SHA256 = {
    "compas-scores-two-years.csv.gz": "5d25728e45f261d33f8fb05a2fff9561cfeb39836ed25e2643ac1a9ce2947974",
    "adult.data.gz": "9830e69cf9bc9c591ca156f2fc68ab041a8a87de05c5a58bf490ec126555badb",
    "adult.test.gz": "3637a029636f3b52b74329a2b7f96b5f830ffc0ed9ccd83746dedbc77bbd4353",
    "german.data.gz": "dcfa0d999e1118a72e34f3d01a000ea7e5c44093150ff9293f09d7dda15e37c0",
    "german_values_maps.json": "73a48f120cdb8019fb9f0ad84078ef1ba109f1100bbcc6cbcf925d60e6adcd4e",
}


def sha256_of(path: Path) -> str:
    """Return the hex sha256 digest of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def embedded_path(filename: str) -> Path:
    """Return the path of a file shipped with fairflip after checking its sha256."""
    if filename not in EMBEDDED_SHA256:
        raise FairflipError(f"no embedded data file named '{filename}'")
    path = Path(str(resources.files("fairflip.datasets").joinpath("data", filename)))
    if not path.exists():
        raise FairflipError(f"embedded data file '{filename}' is missing from the installation")
    got = sha256_of(path)
    if got != EMBEDDED_SHA256[filename]:
        raise FairflipError(f"embedded data file '{filename}' is corrupt: sha256 {got} != {EMBEDDED_SHA256[filename]}")
    return path


def data_home(home: str | os.PathLike | None = None) -> Path:
    """Return the data home: ``home`` if given, else ``$FAIRFLIP_DATA``, else ``~/.fairflip/data``."""
    if home is not None:
        return Path(home)
    env = os.environ.get("FAIRFLIP_DATA")
    return Path(env) if env else Path.home() / ".fairflip" / "data"


def download(url: str, path: Path, *, compress: bool = False) -> Path:
    """Download ``url`` to ``path`` atomically (no partial file is left when the transfer fails).

    Args:
        url: the publisher's address.
        path: destination file; its folder is created.
        compress: gzip the downloaded bytes (mtime 0, so the stored bytes are reproducible), for publishers that
            serve plain CSV where the data home keeps ``.csv.gz``.

    Raises:
        FairflipError: the transfer failed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)

    def fetch(tmp: Path) -> None:
        with urllib.request.urlopen(url, timeout=60) as resp, open(tmp, "wb") as raw:
            if compress:
                with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as out:
                    shutil.copyfileobj(resp, out)
            else:
                shutil.copyfileobj(resp, raw)

    try:
        return atomic_write(path, fetch)
    except OSError as exc:
        raise FairflipError(f"could not download '{path.name}' from {url}: {exc}") from exc


def find_or_download(
    filename: str,
    *,
    home: str | os.PathLike | None = None,
    url: str | None = None,
    sha256: str | None = None,
    download: bool = True,
) -> Path:
    """Return the path of ``filename`` in the data home, downloading it from ``url`` when absent.

    Args:
        filename: file name inside the data home.
        home: data home (see :func:`data_home`).
        url: publisher's download address; None when the publisher offers none.
        sha256: expected digest; checked after download and when the file is found.
        download: whether a missing file may be downloaded.

    Raises:
        FairflipError: the file is absent and cannot be downloaded, or its digest is wrong.
    """
    root = data_home(home)
    path = root / filename
    if not path.exists():
        if url is None or not download:
            raise FairflipError(
                f"'{filename}' not found in the data home {root}; place it there or set FAIRFLIP_DATA"
                + ("" if url is None else f" (it can be downloaded from {url})")
            )
        download(url, path)
    if sha256 is not None:
        got = sha256_of(path)
        if got != sha256:
            raise FairflipError(f"'{path}' has sha256 {got}, expected {sha256}")
    return path
