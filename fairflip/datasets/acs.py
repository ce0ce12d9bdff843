"""ACS-Income (folktables' task on US Census ACS PUMS person records), from the data home or a given CSV.

Three ways in, all ending in the same deterministic preprocessing (:func:`acs_income_frame`):

1. ``csv=`` one or more already-downloaded PUMS person CSV files (no folktables, no network);
2. the files folktables caches in the data home (``<home>/<year>/1-Year/psam_p<FIPS>.csv``), read directly
   when every requested state is there (no folktables needed);
3. otherwise folktables (optional dependency, ``pip install folktables``) downloads them into the data home.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .._errors import FairflipError
from ._base import Dataset, Provenance, from_frame
from ._files import data_home, sha256_of

LEDGER = "SHA256SUMS"
"""File beside the cached PUMS files (``<home>/<year>/1-Year/SHA256SUMS``, ``sha256sum`` format) recording each
file's digest when it first arrived; every later load verifies the files against it."""
PUMS_SHA256: dict[str, str] = {}
"""Pinned digests of PUMS files (``"<year>/1-Year/<file>"`` -> sha256), checked before the ledger. The Census
Bureau publishes no digests for its PUMS zip files, so a digest belongs here only after it was recorded from a
download and cross-checked."""

FEATURES = ["AGEP", "COW", "SCHL", "MAR", "OCCP", "POBP", "RELP", "WKHP", "SEX", "RAC1P"]
NUMERIC = ["AGEP", "SCHL", "WKHP"]
NEEDED = FEATURES + ["PINCP", "PWGTP"]
LABEL = "income_gt_50k"

# FIPS codes of the states PUMS files are published for (file psam_p<code>.csv).
STATE_FIPS = {
    "AL": "01", "AK": "02", "AZ": "04", "AR": "05", "CA": "06", "CO": "08", "CT": "09", "DE": "10", "FL": "12",
    "GA": "13", "HI": "15", "ID": "16", "IL": "17", "IN": "18", "IA": "19", "KS": "20", "KY": "21", "LA": "22",
    "ME": "23", "MD": "24", "MA": "25", "MI": "26", "MN": "27", "MS": "28", "MO": "29", "MT": "30", "NE": "31",
    "NV": "32", "NH": "33", "NJ": "34", "NM": "35", "NY": "36", "NC": "37", "ND": "38", "OH": "39", "OK": "40",
    "OR": "41", "PA": "42", "RI": "44", "SC": "45", "SD": "46", "TN": "47", "TX": "48", "UT": "49", "VT": "50",
    "VA": "51", "WA": "53", "WV": "54", "WI": "55", "WY": "56", "PR": "72",
}

PROVENANCE = Provenance(
    source="US Census Bureau American Community Survey PUMS, ACSIncome task of folktables",
    url="https://www2.census.gov/programs-surveys/acs/data/pums/",
    licence="US Census Bureau public-use data (no licence restrictions; Census terms of use); folktables MIT",
    citation="Ding, Hardt, Miller, Schmidt. Retiring Adult: New Datasets for Fair Machine Learning. NeurIPS 2021.",
)


def acs_income_frame(raw: pd.DataFrame) -> pd.DataFrame:
    """Apply the ACSIncome filter and label to raw PUMS person records.

    Keeps rows with AGEP > 16, PINCP > 100, WKHP > 0 and PWGTP >= 1 (folktables' ``adult_filter``); the label
    ``income_gt_50k`` is 1 where PINCP > 50000; missing feature codes become 0, which is what folktables'
    postprocess ``np.nan_to_num(x, -1)`` actually does (its second argument is ``copy``, not the fill value), so
    the rows match folktables' ACSIncome exactly (after the filter only COW and OCCP can be missing, and 0 is
    no valid code of either);
    ``race_group`` is "White" where RAC1P == 1 (White alone) and "non-White" otherwise.

    Args:
        raw: shape (m, q) PUMS person records holding at least the columns of :data:`NEEDED`.

    Returns:
        shape (n, 12) frame, n <= m, with the 10 ACSIncome features, ``income_gt_50k`` and ``race_group``, rows in
        the order of ``raw``.
    """
    missing = [c for c in NEEDED if c not in raw.columns]
    if missing:
        raise FairflipError(f"PUMS person data lacks the column(s) {missing} needed by ACSIncome")
    num = raw[NEEDED].apply(pd.to_numeric, errors="coerce")
    keep = (num["AGEP"] > 16) & (num["PINCP"] > 100) & (num["WKHP"] > 0) & (num["PWGTP"] >= 1)
    num = num.loc[keep].reset_index(drop=True)
    if num.empty:
        raise FairflipError("no PUMS row passes the ACSIncome filter (AGEP>16, PINCP>100, WKHP>0, PWGTP>=1)")
    out = num[FEATURES].fillna(0).astype(np.int64)
    out[LABEL] = (num["PINCP"] > 50000).astype(np.int64)
    out["race_group"] = np.where(out["RAC1P"] == 1, "White", "non-White")
    return out


def _cached_files(root: Path, states, year: int) -> list[Path]:
    files = []
    for state in states:
        if year >= 2017:
            name = f"psam_p{STATE_FIPS[state]}.csv"
        else:
            name = f"ss{str(year)[-2:]}p{state.lower()}.csv"
        files.append(root / str(year) / "1-Year" / name)
    return files


def _read_pums(paths) -> pd.DataFrame:
    frames = []
    for p in paths:
        p = Path(p)
        if not p.exists():
            raise FairflipError(f"PUMS file not found: {p}")
        try:
            frames.append(pd.read_csv(p, usecols=lambda c: c in NEEDED))
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
            raise FairflipError(f"cannot read PUMS file {p}: {exc}") from exc
    return pd.concat(frames, ignore_index=True)


def _read_ledger(folder: Path) -> dict[str, str]:
    ledger = folder / LEDGER
    if not ledger.exists():
        return {}
    out = {}
    for line in ledger.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) == 2 and len(parts[0]) == 64:
            out[parts[1].lstrip("*")] = parts[0]
    return out


def _write_ledger(folder: Path, digests: dict[str, str]) -> None:
    from .._io import atomic_write

    text = "".join(f"{d}  {name}\n" for name, d in sorted(digests.items()))
    atomic_write(folder / LEDGER, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def verify_pums(files: list[Path], *, year: int) -> None:
    """Check cached PUMS files against their pinned digest (:data:`PUMS_SHA256`) and the data home's ledger.

    A file without a recorded digest has its digest recorded now (it is trusted from its first use on), so a
    file changed or damaged later is caught.

    Raises:
        FairflipError: a file's sha256 differs from its pinned or recorded digest.
    """
    by_folder: dict[Path, list[Path]] = {}
    for f in files:
        by_folder.setdefault(f.parent, []).append(f)
    for folder, members in by_folder.items():
        ledger = _read_ledger(folder)
        changed = False
        for f in members:
            got = sha256_of(f)
            for source, want in (("pinned", PUMS_SHA256.get(f"{year}/1-Year/{f.name}")),
                                 (f"recorded in {folder / LEDGER}", ledger.get(f.name))):
                if want is not None and got != want:
                    raise FairflipError(f"PUMS file {f} has sha256 {got}, but the digest {source} is {want}; "
                                        "the file changed since it was downloaded: delete it to fetch it again")
            if f.name not in ledger:
                ledger[f.name] = got
                changed = True
        if changed:
            _write_ledger(folder, ledger)


def _fetch_with_folktables(root: Path, states, year: int, download: bool) -> pd.DataFrame:
    """folktables downloads into a staging folder; the files are verified and recorded (see
    :func:`verify_pums`) before they are moved into the data home and read."""
    import shutil
    import tempfile

    final = _cached_files(root, states, year)
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".acs-staging-", dir=root))
    try:
        _folktables_get(staging, states, year, download)
        for target in final:
            if target.exists():
                continue
            got = staging / target.relative_to(root)
            if not got.exists():
                raise FairflipError(f"folktables did not provide {target.name} for ACS {year}")
            verify_pums([got], year=year)  # pinned digests; the staging ledger is discarded
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(got, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    verify_pums(final, year=year)
    return _read_pums(final)


def _folktables_get(root: Path, states, year: int, download: bool) -> pd.DataFrame:
    try:
        from folktables import ACSDataSource
    except ImportError as exc:
        raise FairflipError(
            f"ACS PUMS files for {list(states)} {year} are not in the data home {root} and downloading them needs "
            "the optional package folktables (pip install folktables); or pass csv= to a PUMS person CSV you "
            "already have, or set FAIRFLIP_DATA to the folder holding <year>/1-Year/psam_p<FIPS>.csv"
        ) from exc
    try:
        source = ACSDataSource(survey_year=str(year), horizon="1-Year", survey="person", root_dir=str(root))
        return source.get_data(states=list(states), download=download)
    except Exception as exc:  # folktables raises assorted errors (FileNotFoundError, HTTP, zip)
        raise FairflipError(f"folktables could not provide ACS {year} PUMS data for {list(states)}: {exc}") from exc


def load_acs_income(
    *,
    states=("CA",),
    year: int = 2018,
    home: str | os.PathLike | None = None,
    download: bool = True,
    minority: dict | None = None,
    csv: str | os.PathLike | list | None = None,
) -> Dataset:
    """Load ACS-Income: predict personal income > $50,000 from 10 census attributes.

    Preprocessing (deterministic, see :func:`acs_income_frame`): folktables' ACSIncome filter and label; AGEP,
    SCHL (ordered education level) and WKHP are numeric; COW, MAR, OCCP, POBP, RELP, SEX and RAC1P are
    categorical integer codes (0 = missing, as in folktables). Rows keep the order of the files, states in the order given.

    Args:
        states: two-letter state codes (e.g. ``("CA",)``); ignored when ``csv`` is given.
        year: survey year (>= 2014), 1-Year horizon; ignored when ``csv`` is given.
        home: data home; default ``$FAIRFLIP_DATA`` or ``~/.fairflip/data``.
        download: let folktables download missing state files.
        minority: default ``{"race_group": "non-White"}`` (RAC1P != 1; RAC1P then leaves the features too);
            ``{"SEX": 2}`` gives women. Several columns give an intersectional minority.
        csv: path, or list of paths, of PUMS person CSV files to use instead of the data home.

    Returns:
        Dataset with 10 features (9 with the default minority), one row per person passing the filter.
    """
    minority = minority or {"race_group": "non-White"}
    if csv is not None:
        raw = _read_pums(csv if isinstance(csv, (list, tuple)) else [csv])
    else:
        if isinstance(states, str):
            states = (states,)
        unknown = [s for s in states if s not in STATE_FIPS]
        if unknown or not states:
            raise FairflipError(f"unknown state code(s) {unknown or list(states)}; use e.g. 'CA', 'TX', 'NY'")
        if isinstance(year, bool) or not isinstance(year, (int, np.integer)) or year < 2014:
            raise FairflipError(f"year must be an integer >= 2014, got {year!r}")
        root = data_home(home)
        cached = _cached_files(root, states, int(year))
        if all(p.exists() for p in cached):
            verify_pums(cached, year=int(year))
            raw = _read_pums(cached)
        else:
            raw = _fetch_with_folktables(root, states, int(year), download)
    frame = acs_income_frame(raw)
    drop = set(minority) | ({"RAC1P"} if "race_group" in minority else set())
    feats = [c for c in FEATURES if c not in drop]
    return from_frame(frame, name="acs-income", label=LABEL, minority=minority, features=feats,
                      categorical=[c for c in feats if c not in NUMERIC], provenance=PROVENANCE)
