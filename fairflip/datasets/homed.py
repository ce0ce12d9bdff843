"""Real datasets read from the user's data home (too large or too restricted to ship inside the package).

Each loader looks for one exact file name in the data home (``home=`` argument, else ``$FAIRFLIP_DATA``, else
``~/.fairflip/data``), downloads it from its publisher when a download address exists, and checks its sha256.

Integrity check: a file passes when its own sha256 equals the digest of the reference ``.gz`` copy, or when the
sha256 of its *decompressed* bytes equals the digest of the reference content (so a copy that was gzip-compressed
by another tool, or downloaded as plain CSV and compressed by fairflip, also passes). ``verify=False`` skips the
check, for copies the user changed on purpose.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .._errors import FairflipError
from ._base import Dataset, Provenance, from_frame
from ._files import data_home, sha256_of
from ._files import download as download_file

_SURVEY_RAW = "https://raw.githubusercontent.com/tailequy/fairness_dataset/main/experiments/data/"
_SURVEY_CITATION = (
    "Le Quy, Roy, Iosifidis, Zhang, Ntoutsi. A survey on datasets for fairness-aware machine learning. "
    "WIREs Data Mining and Knowledge Discovery 12(3), e1452, 2022."
)


@dataclass(frozen=True)
class HomeFile:
    """One file expected in the data home.

    Attributes:
        filename: exact file name inside the data home (gzip-compressed CSV).
        sha256: digest of the reference ``.gz`` file.
        content_sha256: digest of its decompressed bytes.
        url: publisher's download address, or None when there is none.
        plain_download: True when ``url`` serves uncompressed CSV that fairflip gzips on arrival.
        hint: where to get the file by hand, appended to the "not found" message.
    """

    filename: str
    sha256: str
    content_sha256: str
    url: str | None
    plain_download: bool = False
    hint: str = ""


FILES = {
    "bank": HomeFile(
        "bank-full.csv.gz",
        "7ca64df7f091e85a40d33ad3d5d0b8fbdd9db98cae844d696ece706279abe152",
        "03e78e93396e664a079dff3e1df1b40b6359b1f9945adfb9a09ceabd0fb79193",
        _SURVEY_RAW + "bank-full.csv", plain_download=True),
    "dutch": HomeFile(
        "dutch.csv.gz",
        "6b814489d4072960702e2e4509031d27373c6dff9e44db28a643f6a941c04bb1",
        "c0e1df7e2ca07fa84aa99b5565c7b782a381e2fab377648a6d920174d04ce090",
        _SURVEY_RAW + "dutch.csv", plain_download=True),
    "law": HomeFile(
        "law_school_clean.csv.gz",
        "2563d1a4a2695d090cedbf74f64a3bcef950039c94e67eb5062269b2bfeda941",
        "23c1b173f3480beb7afc4957b107a9917dfc4a8dc9d87ea6034ec35222152452",
        _SURVEY_RAW + "law_school_clean.csv", plain_download=True),
    "crime": HomeFile(
        "communities_crime.csv.gz",
        "c5edbaf26540e9f565ee41d09c8cca234db486eda68f6fa1e0e699ed9e9b1ceb",
        "6ca7f7a9c71b7aa61b2b0a95769f296e8194ab212b1b2723f2017b8780492fa7",
        _SURVEY_RAW + "communities_crime.csv", plain_download=True),
    "celeba": HomeFile(
        "celeba.csv.gz",
        "9f5ca018ec2474ec30ec1c91c842b4d49df7657bcffd4223c082dd020efebf85",
        "c5e0c057ac8590e4a916719d6e6ff792954f50f3ff41d441a1231c4a973eb1e3",
        None,
        hint=("CelebA has no direct download address: get the attribute table list_attr_celeba.csv (columns "
              "filename + 40 attributes coded -1/1) from the CelebA page (mmlab.ie.cuhk.edu.hk/projects/CelebA.html) "
              "or its Kaggle mirror 'jessicali9530/celeba-dataset', gzip it and save it as celeba.csv.gz"),
    ),
    "kdd_train": HomeFile(
        "kdd_census_income_train.csv.gz",
        "b4f17a15b9588db9db1fdcabd43bc15600fc2cf83c6e1e0ab111ddd448bfd64a",
        "3676a81db7d3528f3f8b9f3c699d0f0aa28db45e6e994fa0b8ed38327539ee86",
        "https://archive.ics.uci.edu/ml/machine-learning-databases/census-income-mld/census-income.data.gz"),
    "kdd_test": HomeFile(
        "kdd_census_income_test.csv.gz",
        "6514a53d3a06a31f638634b4135ccc81714def88b51a6c37b310944b05194b30",
        "98402b1ab879573d0a7f38a699a40258080e25e33d3401e7bf9c96d3fa0fab8c",
        "https://archive.ics.uci.edu/ml/machine-learning-databases/census-income-mld/census-income.test.gz"),
}


def _content_sha256(path: Path) -> str | None:
    """Return the sha256 of the decompressed bytes of a gzip file, or None if it is not valid gzip."""
    digest = hashlib.sha256()
    try:
        with gzip.open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except (OSError, EOFError):
        return None
    return digest.hexdigest()


def verify_file(path: Path, spec: HomeFile) -> None:
    """Raise FairflipError unless ``path`` holds the reference file of ``spec`` (see the module docstring)."""
    got = sha256_of(path)
    if got == spec.sha256 or _content_sha256(path) == spec.content_sha256:
        return
    raise FairflipError(
        f"'{path}' is not the known {spec.filename}: sha256 {got} != {spec.sha256} and its decompressed content "
        "differs too; replace the file, or pass verify=False to load a copy you changed on purpose"
    )


def locate(key: str, *, home=None, download: bool = True, verify: bool = True) -> Path:
    """Return the path of the data-home file ``FILES[key]``, downloading and verifying it as asked.

    Args:
        key: a key of :data:`FILES`.
        home: data home (see :func:`fairflip.datasets.data_home`).
        download: whether a missing file may be downloaded from its publisher.
        verify: whether to check the file's sha256.

    Raises:
        FairflipError: the file is absent and cannot be downloaded (the message names FAIRFLIP_DATA and where
            to get the file), the download fails, or the digest is wrong.
    """
    spec = FILES[key]
    root = data_home(home)
    path = root / spec.filename
    if not path.exists():
        if spec.url is None or not download:
            where = spec.hint or f"it can be downloaded from {spec.url}"
            raise FairflipError(
                f"'{spec.filename}' not found in the data home {root}; place it there or set FAIRFLIP_DATA "
                f"to the folder holding it ({where})"
            )
        # Checked before it lands in the data home: the served CSV's digest, or (for a served .gz) the digest of
        # the file or of its decompressed bytes.
        if spec.plain_download:
            download_file(spec.url, path, compress=True, sha256=spec.content_sha256)
        else:
            download_file(spec.url, path, check=lambda tmp: verify_file(tmp, spec))
    if verify:
        verify_file(path, spec)
    return path


def _read_csv(path: Path, **kwargs) -> pd.DataFrame:
    try:
        return pd.read_csv(path, **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, EOFError) as exc:
        raise FairflipError(f"cannot read {path.name}: {exc}") from exc


def _require(frame: pd.DataFrame, columns, filename: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise FairflipError(f"{filename} lacks the column(s) {missing}; is it the right file?")


def _features(base: list[str], minority: dict, derived_from: dict[str, tuple[str, ...]]) -> list[str]:
    """Return ``base`` minus the minority columns and minus the source columns of derived group columns."""
    drop = set(minority)
    for col in minority:
        drop |= set(derived_from.get(col, ()))
    return [c for c in base if c not in drop]


def _survey_provenance(key: str, source: str, licence: str, citation: str) -> Provenance:
    spec = FILES[key]
    return Provenance(source=source, url=spec.url or "", licence=licence,
                      citation=citation + " Copy: " + _SURVEY_CITATION, sha256=spec.sha256)


def load_bank(*, home=None, download: bool = True, verify: bool = True, minority: dict | None = None) -> Dataset:
    """Load UCI Bank marketing (Le Quy et al. survey copy, ``bank-full.csv.gz``, 40,004 rows).

    Preprocessing (deterministic): a column ``age_group`` ("<25" or ">=25") is derived from ``age``; ``age``
    itself stays a feature (also under the default minority). Label y = 1 when the client subscribed a term
    deposit (``y == "yes"``). Features: the 16 source columns (``duration``, known only after the call, is kept
    as in the survey). Categorical: job, marital, education, default, housing, loan, contact, month, poutcome.

    Args:
        home: data home; default ``$FAIRFLIP_DATA`` or ``~/.fairflip/data``.
        download: download the file from the survey repository when it is missing.
        verify: check the file's sha256 (turn off for a copy changed on purpose).
        minority: default ``{"age_group": "<25"}`` (808 rows); e.g. ``{"marital": "single"}``; several
            columns give an intersectional minority. The columns named here leave the features.

    Returns:
        Dataset of shape (40004, 16) features with the default minority.
    """
    path = locate("bank", home=home, download=download, verify=verify)
    frame = _read_csv(path)
    base = ["age", "job", "marital", "education", "default", "balance", "housing", "loan", "contact", "day",
            "month", "duration", "campaign", "pdays", "previous", "poutcome"]
    _require(frame, base + ["y"], path.name)
    frame["age_group"] = np.where(pd.to_numeric(frame["age"], errors="coerce") < 25, "<25", ">=25")
    minority = minority or {"age_group": "<25"}
    prov = _survey_provenance("bank", "UCI Bank Marketing (Moro, Rita, Cortez 2014), fairness-survey copy",
                              "CC BY 4.0", "Moro, S., Rita, P., Cortez, P. (2014). Bank Marketing. UCI ML Repository.")
    return from_frame(frame, name="bank", label="y", minority=minority, positive="yes",
                      features=_features(base, minority, {}), provenance=prov)


def load_dutch(*, home=None, download: bool = True, verify: bool = True, minority: dict | None = None) -> Dataset:
    """Load the Dutch census 2001 (Le Quy et al. survey copy, ``dutch.csv.gz``, 60,420 rows).

    Preprocessing (deterministic): none beyond typing. Label y = ``occupation`` (1 = high-level, prestigious
    occupation, 0 = other; coded 0/1 in the file). ``age`` (age band code) and ``edu_level`` (ordered education
    level) are numeric; the other integer-coded columns (household position and size, previous residence,
    citizenship, country of birth, economic status, current economic activity, marital status) are categorical.

    Args:
        home: data home; default ``$FAIRFLIP_DATA`` or ``~/.fairflip/data``.
        download: download the file from the survey repository when it is missing.
        verify: check the file's sha256.
        minority: default ``{"sex": "female"}`` (values are "female"/"male"); the columns named here leave the
            features.

    Returns:
        Dataset of shape (60420, 10) features with the default minority.
    """
    path = locate("dutch", home=home, download=download, verify=verify)
    frame = _read_csv(path)
    categorical = ["sex", "household_position", "household_size", "prev_residence_place", "citizenship",
                   "country_birth", "economic_status", "cur_eco_activity", "marital_status"]
    base = ["sex", "age", "household_position", "household_size", "prev_residence_place", "citizenship",
            "country_birth", "edu_level", "economic_status", "cur_eco_activity", "marital_status"]
    _require(frame, base + ["occupation"], path.name)
    minority = minority or {"sex": "female"}
    feats = _features(base, minority, {})
    prov = _survey_provenance("dutch", "Dutch census 2001 (Statistics Netherlands), fairness-survey copy",
                              "research use (Statistics Netherlands microdata terms)",
                              "Statistics Netherlands, Dutch Virtual Census 2001 (via IPUMS International).")
    return from_frame(frame, name="dutch", label="occupation", minority=minority, features=feats,
                      categorical=[c for c in categorical if c in feats], provenance=prov)


def load_law(*, home=None, download: bool = True, verify: bool = True, minority: dict | None = None) -> Dataset:
    """Load LSAC law school bar passage (Le Quy et al. survey copy, ``law_school_clean.csv.gz``, 20,798 rows).

    Preprocessing (deterministic): ``race_group`` is "White" where ``race == "White"`` and "non-White"
    otherwise. Label y = ``pass_bar`` (1 = passed the bar exam). All other columns are numeric (decile1b,
    decile3, lsat, ugpa, zfygpa, zgpa, fulltime, fam_inc, male, tier); ``race`` is categorical and leaves the
    features whenever ``race_group`` defines the minority.

    Args:
        home: data home; default ``$FAIRFLIP_DATA`` or ``~/.fairflip/data``.
        download: download the file from the survey repository when it is missing.
        verify: check the file's sha256.
        minority: default ``{"race_group": "non-White"}`` (3,307 rows); ``{"male": 0}`` gives women.

    Returns:
        Dataset of shape (20798, 10) features with the default minority.
    """
    path = locate("law", home=home, download=download, verify=verify)
    frame = _read_csv(path)
    base = ["decile1b", "decile3", "lsat", "ugpa", "zfygpa", "zgpa", "fulltime", "fam_inc", "male", "tier", "race"]
    _require(frame, base + ["pass_bar"], path.name)
    frame["race_group"] = np.where(frame["race"].astype(str).str.strip() == "White", "White", "non-White")
    minority = minority or {"race_group": "non-White"}
    feats = _features(base, minority, {"race_group": ("race",)})
    prov = _survey_provenance("law", "LSAC National Longitudinal Bar Passage Study (Wightman 1998), fairness-survey copy",
                              "research use", "Wightman, L. F. (1998). LSAC National Longitudinal Bar Passage Study.")
    return from_frame(frame, name="law", label="pass_bar", minority=minority, features=feats,
                      categorical=[c for c in ("race",) if c in feats], provenance=prov)


def load_crime(*, home=None, download: bool = True, verify: bool = True, minority: dict | None = None,
               group_threshold: float = 0.06, label_threshold: float = 0.7) -> Dataset:
    """Load UCI Communities and Crime (Le Quy et al. survey copy, ``communities_crime.csv.gz``, 1,994 rows).

    Preprocessing (deterministic): '?' is read as missing and every column with a missing value is dropped
    (the survey copy has none left); identifiers ``state``, ``communityname``, ``fold`` and the survey's own
    binary columns ``Black`` and ``class`` are dropped. ``black_share`` is "high" where
    ``racepctblack >= group_threshold`` and "low" otherwise; the default 0.06 is the median of racepctblack and
    reproduces the survey's ``Black`` column exactly (1,038 "high" communities, 52%: the "minority" here is the
    group, not the smaller share of rows). Label y = 1 where ``ViolentCrimesPerPop >= label_threshold``; the
    default 0.7 reproduces the survey's ``class`` column exactly (122 positives). Note y = 1 (high violent crime)
    is the *unfavourable* outcome. All features are numeric (normalised to [0, 1] by UCI); ``racepctblack``
    leaves the features when ``black_share`` defines the minority.

    Args:
        home: data home; default ``$FAIRFLIP_DATA`` or ``~/.fairflip/data``.
        download: download the file from the survey repository when it is missing.
        verify: check the file's sha256.
        minority: default ``{"black_share": "high"}``.
        group_threshold: racepctblack cut-off for ``black_share``, in [0, 1].
        label_threshold: ViolentCrimesPerPop cut-off for y = 1, in [0, 1].

    Returns:
        Dataset of shape (1994, 98) features with the default minority.
    """
    for name, value in (("group_threshold", group_threshold), ("label_threshold", label_threshold)):
        if not isinstance(value, (int, float, np.number)) or not 0 <= float(value) <= 1:
            raise FairflipError(f"{name} must be a number in [0, 1], got {value!r}")
    path = locate("crime", home=home, download=download, verify=verify)
    frame = _read_csv(path, na_values="?")
    _require(frame, ["racepctblack", "ViolentCrimesPerPop"], path.name)
    frame = frame.drop(columns=[c for c in ("state", "communityname", "fold", "Black", "class") if c in frame])
    for col in ("racepctblack", "ViolentCrimesPerPop"):
        if frame[col].isna().any():
            raise FairflipError(f"{path.name}: column '{col}' has missing values")
    frame = frame.loc[:, frame.notna().all()]
    frame["high_violent_crime"] = (frame.pop("ViolentCrimesPerPop") >= label_threshold).astype(np.int64)
    frame["black_share"] = np.where(frame["racepctblack"] >= group_threshold, "high", "low")
    base = [c for c in frame.columns if c not in ("high_violent_crime", "black_share")]
    minority = minority or {"black_share": "high"}
    prov = _survey_provenance("crime", "UCI Communities and Crime (Redmond 2009), fairness-survey copy", "CC BY 4.0",
                              "Redmond, M. (2009). Communities and Crime. UCI ML Repository.")
    return from_frame(frame, name="crime", label="high_violent_crime", minority=minority,
                      features=_features(base, minority, {"black_share": ("racepctblack",)}),
                      categorical=[], provenance=prov)


def load_celeba(*, label: str = "Attractive", home=None, download: bool = True, verify: bool = True,
                minority: dict | None = None) -> Dataset:
    """Load the CelebA attribute table (``celeba.csv.gz``, 202,599 rows, no images).

    Preprocessing (deterministic): ``filename`` is dropped and the 40 attributes, coded -1/1 in the source, are
    recoded 0/1 (1 = attribute present), so minority values are 0 or 1. Label y = the attribute ``label``
    (default "Attractive": an annotator judgement with a large sex gap, base rate 0.28 for men vs 0.68 for
    women, the kind of label bias the collective targets; "Smiling" is a less sex-dependent alternative).
    Features: the other attributes, numeric 0/1. Licence: non-commercial research only.

    Args:
        label: the attribute to predict.
        home: data home; default ``$FAIRFLIP_DATA`` or ``~/.fairflip/data``.
        download: unused for the download itself (CelebA has no direct address); kept for a uniform signature.
        verify: check the file's sha256.
        minority: default ``{"Male": 1}`` (men, 41.7% of rows, the group with the lower "Attractive" rate);
            ``{"Male": 0}`` gives women.

    Returns:
        Dataset of shape (202599, 38) features with the default label and minority.
    """
    path = locate("celeba", home=home, download=download, verify=verify)
    frame = _read_csv(path)
    _require(frame, ["filename", "Male", label], path.name)
    frame = frame.drop(columns=["filename"])
    values = frame.to_numpy()
    if values.dtype.kind not in "iuf" or not np.isin(values, (-1, 1)).all():
        raise FairflipError(f"{path.name}: attributes must all be coded -1/1")
    frame = (frame > 0).astype(np.int64)
    minority = minority or {"Male": 1}
    if label in minority:
        raise FairflipError(f"label '{label}' cannot also define the minority")
    feats = _features([c for c in frame.columns if c != label], minority, {})
    prov = Provenance(
        source="CelebA attribute annotations (MMLAB, CUHK)", url="https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html",
        licence="non-commercial research only", sha256=FILES["celeba"].sha256,
        citation="Liu, Luo, Wang, Tang. Deep Learning Face Attributes in the Wild. ICCV 2015.")
    return from_frame(frame, name="celeba", label=label, minority=minority, features=feats, categorical=[],
                      provenance=prov)


KDD_COLUMNS = [
    "age", "class_of_worker", "detailed_industry_recode", "detailed_occupation_recode", "education",
    "wage_per_hour", "enroll_in_edu_inst_last_wk", "marital_stat", "major_industry_code", "major_occupation_code",
    "race", "hispanic_origin", "sex", "member_of_a_labor_union", "reason_for_unemployment",
    "full_or_part_time_employment_stat", "capital_gains", "capital_losses", "dividends_from_stocks",
    "tax_filer_stat", "region_of_previous_residence", "state_of_previous_residence",
    "detailed_household_and_family_stat", "detailed_household_summary_in_household", "instance_weight",
    "migration_code_change_in_msa", "migration_code-change_in_reg", "migration_code-move_within_reg",
    "live_in_this_house_1_year_ago", "migration_prev_res_in_sunbelt", "num_persons_worked_for_employer",
    "family_members_under_18", "country_of_birth_father", "country_of_birth_mother", "country_of_birth_self",
    "citizenship", "own_business_or_self_employed", "fill_inc_questionnaire_for_veteran's_admin",
    "veterans_benefits", "weeks_worked_in_year", "year", "income_gt_50k",
]
KDD_NUMERIC = ["age", "wage_per_hour", "capital_gains", "capital_losses", "dividends_from_stocks",
               "instance_weight", "num_persons_worked_for_employer", "weeks_worked_in_year"]


def load_kdd(*, home=None, download: bool = True, verify: bool = True, minority: dict | None = None) -> Dataset:
    """Load UCI Census-Income (KDD), train and test files concatenated (299,285 rows, train rows first).

    Preprocessing (deterministic): the headerless files get the 42 UCI column names; leading spaces are
    stripped; '?' (missing) is kept as its own category; ``instance_weight`` (a sampling weight) is dropped.
    Label y = 1 for income "50000+." (vs "- 50000."). Numeric: age, wage_per_hour, capital_gains,
    capital_losses, dividends_from_stocks, num_persons_worked_for_employer, weeks_worked_in_year; every other
    column, including the integer codes (industry/occupation recodes, own_business_or_self_employed,
    veterans_benefits, year), is categorical.

    Args:
        home: data home; default ``$FAIRFLIP_DATA`` or ``~/.fairflip/data``.
        download: download the files from UCI when missing.
        verify: check the files' sha256.
        minority: default ``{"sex": "Female"}``; e.g. ``{"race": "Black"}`` or intersectional
            ``{"race": "Black", "sex": "Female"}``.

    Returns:
        Dataset of shape (299285, 39) features with the default minority.
    """
    categorical = [c for c in KDD_COLUMNS if c not in KDD_NUMERIC and c != "income_gt_50k"]
    parts = []
    for key in ("kdd_train", "kdd_test"):
        path = locate(key, home=home, download=download, verify=verify)
        part = _read_csv(path, header=None, names=KDD_COLUMNS, skipinitialspace=True, index_col=False,
                         dtype={c: str for c in categorical + ["income_gt_50k"]}, na_filter=False)
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True)
    minority = minority or {"sex": "Female"}
    base = [c for c in KDD_COLUMNS if c not in ("instance_weight", "income_gt_50k")]
    feats = _features(base, minority, {})
    prov = Provenance(
        source="UCI Machine Learning Repository: Census-Income (KDD) (Lane and Kohavi, 2000)",
        url="https://archive.ics.uci.edu/dataset/117/census+income+kdd", licence="CC BY 4.0",
        citation="Lane, T. and Kohavi, R. (2000). Census-Income (KDD). UCI ML Repository.",
        sha256=FILES["kdd_train"].sha256)
    return from_frame(frame, name="kdd", label="income_gt_50k", minority=minority, features=feats,
                      categorical=[c for c in categorical if c in feats], positive="50000+.", provenance=prov)
