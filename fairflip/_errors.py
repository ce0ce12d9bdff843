"""The one exception type fairflip raises for bad input, and small checks that raise it.

Every check names the offending argument so that the CLI can print the message as a single line
(``fairflip: error: ...``) and exit with status 2 instead of a traceback.
"""

from __future__ import annotations


class FairflipError(ValueError):
    """Bad input to fairflip: the message names the argument or column at fault."""


def check_binary(name: str, values: "np.ndarray") -> "np.ndarray":
    """Return ``values`` as an int64 array after checking it holds only 0 and 1.

    Args:
        name: what the values are, used in the error message (e.g. ``"label 'two_year_recid'"``).
        values: shape (n,), any numeric or boolean dtype.

    Returns:
        shape (n,), int64 with entries in {0, 1}.
    """
    import numpy as np  # here, so that importing the error type (the CLI's --help does) stays light

    arr = np.asarray(values)
    if arr.ndim != 1:
        raise FairflipError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.dtype == bool:
        return arr.astype(np.int64)
    if arr.dtype.kind not in "iuf":
        raise FairflipError(f"{name} must be numeric 0/1, got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        raise FairflipError(f"{name} contains NaN")
    bad = ~np.isin(arr, (0, 1))
    if bad.any():
        seen = np.unique(arr[bad])[:5].tolist()
        raise FairflipError(f"{name} must be binary (0/1); found value(s) {seen}")
    return arr.astype(np.int64)


def check_budget(budget: int) -> int:
    """Return ``budget`` as an int after checking it is a non-negative integer."""
    import numpy as np

    if isinstance(budget, (bool, np.bool_)) or not isinstance(budget, (int, np.integer)):
        raise FairflipError(f"budget must be a non-negative integer, got {budget!r}")
    if budget < 0:
        raise FairflipError(f"budget must be non-negative, got {budget}")
    return int(budget)


def check_fraction(name: str, value: float, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a float after checking 0 < value <= 1 (or 0 <= value when allowed)."""
    import numpy as np

    v = float(value)
    low_ok = v >= 0 if allow_zero else v > 0
    if not (low_ok and v <= 1) or np.isnan(v):
        bound = "[0, 1]" if allow_zero else "(0, 1]"
        raise FairflipError(f"{name} must lie in {bound}, got {value!r}")
    return v


def check_registry_name(what: str, name: object) -> str:
    """Return ``name`` after checking it can name a registered ``what`` (method, objective, surrogate, firm, loss):
    a non-empty string without commas (lists on the command line are comma separated) or edge spaces."""
    if not isinstance(name, str) or not name or name != name.strip() or "," in name:
        raise FairflipError(f"a {what} name must be a non-empty string without commas or edge spaces, got {name!r}")
    return name


MAX_SEED = 2**32 - 1
"""Seeds are what NumPy and torch accept: integers in [0, 2**32 - 1]."""


def check_seed(seed: object, what: str = "seed") -> int:
    """Return ``seed`` as an int after checking it is an integer in [0, :data:`MAX_SEED`]."""
    import numpy as np  # here, so that importing this module stays light

    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise FairflipError(f"{what} must be an integer in [0, {MAX_SEED}], got {seed!r}")
    if not 0 <= int(seed) <= MAX_SEED:
        raise FairflipError(f"{what} must be an integer in [0, {MAX_SEED}], got {seed}")
    return int(seed)
