"""Locating data files: the copies shipped inside the package (sha256-checked) and the user's data home."""

from __future__ import annotations

import gzip
import hashlib
import os
import urllib.request
from importlib import resources
from pathlib import Path
from typing import Callable

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
    """Return the data home: ``home`` if given, else ``$FAIRFLIP_DATA``, else ``~/.fairflip/data``.

    Raises:
        FairflipError: the data home exists but is not a folder (naming where its path came from).
    """
    if home is not None:
        root, origin = Path(home), "the data home"
    else:
        env = os.environ.get("FAIRFLIP_DATA")
        root, origin = (Path(env), "FAIRFLIP_DATA") if env else (Path.home() / ".fairflip" / "data", "the data home")
    if root.exists() and not root.is_dir():
        raise FairflipError(f"{origin} {str(root)!r} is a file, not a folder")
    for parent in root.parents:
        if parent.exists():
            if not parent.is_dir():
                raise FairflipError(f"{origin} {str(root)!r} lies under the file {str(parent)!r}")
            break
    return root


MAX_DOWNLOAD_BYTES = 2 << 30
"""Largest download accepted (2 GiB); a transfer that grows past it is stopped and nothing is kept."""
_SHA256_HEX = frozenset("0123456789abcdef")


def _check_digest(sha256: str | None, allow_unverified: bool, url: str) -> str | None:
    if sha256 is None:
        if not allow_unverified:
            raise FairflipError(f"no sha256 given for the download of {url}; pass the publisher's sha256, or "
                                "allow_unverified=True to accept whatever the address serves")
        return None
    digest = str(sha256).strip().lower()
    if len(digest) != 64 or not set(digest) <= _SHA256_HEX:
        raise FairflipError(f"sha256 must be 64 hexadecimal digits, got {sha256!r}")
    return digest


def download(url: str, path: Path, *, sha256: str | None = None, compress: bool = False,
             max_bytes: int = MAX_DOWNLOAD_BYTES, allow_unverified: bool = False,
             check: Callable[[Path], None] | None = None) -> Path:
    """Download ``url`` to ``path``; the bytes are checked before the file reaches ``path``.

    The transfer goes to a temporary file beside ``path``; it is stopped as soon as it exceeds ``max_bytes``,
    and its sha256 (of the bytes as served, before any compression) must equal ``sha256``. Only then is the
    file renamed onto ``path`` in one step, so an unverified, partial or oversized download never lands there.

    Args:
        url: the publisher's address (``https://``, ``http://`` or ``file://``).
        path: destination file; its folder is created.
        sha256: expected digest of the served bytes (64 hex digits). Required unless ``allow_unverified``.
        compress: gzip the downloaded bytes (mtime 0, so the stored bytes are reproducible), for publishers that
            serve plain CSV where the data home keeps ``.csv.gz``.
        max_bytes: largest accepted transfer, in bytes.
        allow_unverified: accept a download without ``sha256`` or ``check`` (for a publisher that gives no
            digest); must be asked for explicitly.
        check: a function of the finished temporary file that raises FairflipError unless it is the expected
            file (e.g. comparing the digest of its decompressed bytes); runs before the rename. It counts as a
            verification, so ``sha256`` may then be None.

    Raises:
        FairflipError: no digest and no opt-out, a bad address, the transfer failed, exceeded ``max_bytes`` or
            has the wrong digest.
    """
    digest = _check_digest(sha256, allow_unverified or check is not None, url)
    if not str(url).startswith(("https://", "http://", "file://")):
        raise FairflipError(f"download address must be https://, http:// or file://, got {url!r}")
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
        raise FairflipError(f"max_bytes must be a positive integer, got {max_bytes!r}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FairflipError(f"cannot create the folder {str(path.parent)!r}: {exc.strerror or exc}") from None

    def fetch(tmp: Path) -> None:
        hasher = hashlib.sha256()
        total = 0
        with urllib.request.urlopen(url, timeout=60) as resp, open(tmp, "wb") as raw:
            declared = resp.headers.get("Content-Length") if hasattr(resp, "headers") else None
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise FairflipError(f"{url} announces {int(declared):,} bytes, more than the limit of {max_bytes:,}")
            sink = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) if compress else raw
            try:
                for chunk in iter(lambda: resp.read(1 << 20), b""):
                    total += len(chunk)
                    if total > max_bytes:
                        raise FairflipError(f"the download of {url} exceeded the limit of {max_bytes:,} bytes; "
                                            "nothing was kept")
                    hasher.update(chunk)
                    sink.write(chunk)
            finally:
                if compress:
                    sink.close()
        if digest is not None and hasher.hexdigest() != digest:
            raise FairflipError(f"the download of {url} has sha256 {hasher.hexdigest()}, expected {digest}; "
                                "nothing was kept")
        if check is not None:
            check(tmp)

    try:
        return atomic_write(path, fetch)
    except FairflipError:
        raise
    except (OSError, ValueError, EOFError) as exc:  # URLError is an OSError; http.client errors are too
        raise FairflipError(f"could not download '{path.name}' from {url}: {exc}") from None


_download = download  # find_or_download's ``download`` argument shadows the function's name


def find_or_download(
    filename: str,
    *,
    home: str | os.PathLike | None = None,
    url: str | None = None,
    sha256: str | None = None,
    download: bool = True,
    allow_unverified: bool = False,
    max_bytes: int = MAX_DOWNLOAD_BYTES,
) -> Path:
    """Return the path of ``filename`` in the data home, downloading it from ``url`` when absent.

    Args:
        filename: file name inside the data home.
        home: data home (see :func:`data_home`).
        url: publisher's download address; None when the publisher offers none.
        sha256: expected digest; a download is checked before it reaches the data home, a file found there is
            checked when it is returned. Required for a download unless ``allow_unverified``.
        download: whether a missing file may be downloaded.
        allow_unverified: download without a digest (see :func:`download`); a file found is then not checked.
        max_bytes: largest accepted download.

    Raises:
        FairflipError: the file is absent and cannot be downloaded, or its digest is wrong.
    """
    if not filename or Path(filename).name != filename:
        raise FairflipError(f"filename must be a plain file name inside the data home, got {filename!r}")
    root = data_home(home)
    path = root / filename
    if not path.exists():
        if url is None or not download:
            raise FairflipError(
                f"'{filename}' not found in the data home {root}; place it there or set FAIRFLIP_DATA"
                + ("" if url is None else f" (it can be downloaded from {url})")
            )
        return _download(url, path, sha256=sha256, allow_unverified=allow_unverified, max_bytes=max_bytes)
    if sha256 is not None:
        got = sha256_of(path)
        if got != _check_digest(sha256, allow_unverified, url or filename):
            raise FairflipError(f"'{path}' has sha256 {got}, expected {sha256}")
    return path
