"""Any user table (CSV or Parquet) as a :class:`Dataset`, read with every check done at the edge.

:func:`read_table` turns every way a file can be unreadable (missing, a folder, truncated or damaged gzip or
Parquet, a CSV named ``.parquet``, binary garbage, a header of millions of columns, a table too large for memory)
into one :class:`FairflipError` that names the file. It also refuses duplicated column names, which pandas would
otherwise rename silently (``y`` and ``y.1``), turning a copied label column into a leaking feature.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
import os
from pathlib import Path

import pandas as pd

from .._errors import FairflipError
from .._io import check_memory
from ._base import Dataset, Provenance, from_frame

MAX_COLUMNS = 100_000
"""A table with more columns is refused before it is parsed."""
MAX_HEADER_BYTES = 16 << 20
"""A CSV header line longer than this is refused before it is parsed."""
_PARQUET = (".parquet", ".pq")
# Rough bytes of pandas memory per byte of CSV text, and per byte of a compressed file's content.
_CSV_MEMORY_FACTOR = 4
_COMPRESSION_FACTOR = {".gz": 8, ".bz2": 10, ".xz": 10}


def _opener(p: Path):
    suffix = p.suffix.lower()
    return {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}.get(suffix, open)


def _header_line(p: Path) -> str:
    """The first line of a CSV file (decompressed), refused when longer than MAX_HEADER_BYTES."""
    with _opener(p)(p, "rb") as fh:
        raw = fh.readline(MAX_HEADER_BYTES + 1)
    if len(raw) > MAX_HEADER_BYTES:
        if raw.count(b",") + 1 > MAX_COLUMNS:
            raise FairflipError(f"{p}: at least {raw.count(b',') + 1:,} columns, more than the {MAX_COLUMNS:,} "
                                "fairflip accepts")
        raise FairflipError(f"{p}: the header line is longer than {MAX_HEADER_BYTES >> 20} MB; "
                            "not a table fairflip can read")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FairflipError(f"{p}: the header is not UTF-8 text (a binary file?)") from None


def check_column_names(names: list, source: str) -> None:
    """Refuse a table whose header repeats a column name or has more than MAX_COLUMNS columns.

    Args:
        names: the header's names, as written in the file (before any renaming).
        source: the file, as named in messages.
    """
    if len(names) > MAX_COLUMNS:
        raise FairflipError(f"{source}: {len(names):,} columns, more than the {MAX_COLUMNS:,} fairflip accepts")
    seen: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        seen.setdefault(str(name), []).append(i + 1)
    dups = {k: v for k, v in seen.items() if len(v) > 1}
    if dups:
        parts = "; ".join(f"'{k}' in columns {', '.join(map(str, v[:5]))}" for k, v in list(dups.items())[:5])
        raise FairflipError(f"{source}: duplicated column name(s): {parts}; every column needs its own name")


def csv_header(path: str | os.PathLike) -> list[str]:
    """The column names of a CSV file's header (plain, .gz, .bz2 or .xz) as written, without parsing the rows."""
    p = Path(path)
    line = _header_line(p)
    if line.count(",") + 1 > MAX_COLUMNS:  # refuse before the csv module builds millions of strings
        raise FairflipError(f"{p}: {line.count(',') + 1:,} columns, more than the {MAX_COLUMNS:,} fairflip accepts")
    try:
        return next(csv.reader(io.StringIO(line)), [])
    except csv.Error as exc:
        raise FairflipError(f"{p}: the header cannot be parsed as CSV ({exc})") from None


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV (optionally .gz, .bz2 or .xz compressed) or Parquet file into a DataFrame, rows in file order.

    Args:
        path: the file; ``.parquet``/``.pq`` is read as Parquet, anything else as CSV.

    Returns:
        the table, shape (n, q), with the header's column names unchanged.

    Raises:
        FairflipError: naming the file: missing, not a regular file, unreadable, damaged or truncated, empty,
            duplicated column names, too many columns, or too large for the memory available.
    """
    p = Path(path)
    if not str(path).strip():
        raise FairflipError("the table path is empty")
    if not p.exists():
        raise FairflipError(f"file not found: {p}")
    if not p.is_file():
        raise FairflipError(f"{p} is not a regular file")
    if not os.access(p, os.R_OK):
        raise FairflipError(f"{p} is not readable")
    name = p.name.lower()
    try:
        if name.endswith(_PARQUET):
            frame = _read_parquet(p)
        else:
            frame = _read_csv(p)
    except FairflipError:
        raise
    except MemoryError:
        raise FairflipError(f"{p}: the table does not fit in memory") from None
    except Exception as exc:  # pyarrow, gzip, zlib, lzma and pandas raise many types for damaged files
        detail = " ".join(str(exc).split())[:200]
        raise FairflipError(f"cannot read table {p}: {type(exc).__name__}: {detail}") from None
    if frame.shape[1] == 0:
        raise FairflipError(f"{p} has no columns")
    return frame


def _read_parquet(p: Path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    with open(p, "rb") as fh:
        head = fh.read(4)
    if head != b"PAR1":
        raise FairflipError(f"{p} is not a Parquet file (it does not start with the Parquet magic bytes)")
    meta = pq.read_metadata(p)
    names = meta.schema.to_arrow_schema().names
    check_column_names(names, str(p))
    # Parquet stores its row count: refuse a table that cannot fit (8 bytes a value is a floor; strings take more).
    check_memory(8.0 * meta.num_rows * max(1, meta.num_columns), f"{p} ({meta.num_rows:,} x {meta.num_columns} values)")
    frame = pd.read_parquet(p)
    check_column_names(list(frame.columns), str(p))
    return frame


def _read_csv(p: Path) -> pd.DataFrame:
    names = csv_header(p)
    if not names or names == [""]:
        raise FairflipError(f"{p} is empty (no header line)")
    check_column_names(names, str(p))
    size = p.stat().st_size
    factor = _CSV_MEMORY_FACTOR * _COMPRESSION_FACTOR.get(p.suffix.lower(), 1)
    check_memory(float(size) * factor, f"{p} ({size:,} bytes on disk)")
    # low_memory=False: one dtype per column for the whole file, and no DtypeWarning for mixed columns
    frame = pd.read_csv(p, low_memory=False)
    read = [str(c) for c in frame.columns]
    same = len(read) == len(names) and all(r == n or (not n.strip() and r.startswith("Unnamed: "))
                                           for r, n in zip(read, names))
    if not same:
        # pandas renamed or dropped a name (e.g. a duplicate it saw that the header check did not): refuse
        raise FairflipError(f"{p}: the header's column names could not be kept as written "
                            f"(read {list(frame.columns)[:10]}, header {names[:10]})")
    return frame


def load_table(
    path: str | os.PathLike,
    *,
    label: str,
    minority: dict,
    features: list[str] | None = None,
    categorical: list[str] | None = None,
    positive: object = None,
    name: str | None = None,
    missing_group: str = "error",
) -> Dataset:
    """Load a user table as a Dataset.

    Args:
        path: CSV or Parquet file, one row per user (read by :func:`read_table`, with its checks).
        label: binary label column.
        minority: column -> value conditions defining the minority; several columns give an intersectional
            minority (e.g. ``{"race": "Black", "sex": "Female"}``).
        features: feature columns (default: all but the label and the minority columns).
        categorical: columns to one-hot encode (default: the non-numeric ones).
        positive: label value mapped to 1 when the label is not 0/1.
        name: dataset name (default: the file's stem).
        missing_group: what a missing value in a group column means: ``"error"`` (default) or ``"majority"``
            (counted as majority, with a warning).

    Returns:
        Dataset whose row i is data row i of the file.
    """
    frame = read_table(path)
    prov = Provenance(source=f"user table {Path(path).name}", url="", licence="user's")
    try:
        return from_frame(
            frame, name=name or Path(path).name.split(".")[0], label=label, minority=minority,
            features=features, categorical=categorical, positive=positive, provenance=prov,
            missing_group=missing_group,
        )
    except FairflipError as exc:
        raise FairflipError(f"{path}: {exc}") from None
