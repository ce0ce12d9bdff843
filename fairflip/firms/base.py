"""What a firm is: the protocols every firm implements, and the public registries of firms and firm losses.

Two protocols, after the way jaxopt separates an optimality condition from the solver that uses it:

- :class:`Firm`: any training pipeline, ``fit(X, y, sample_weight) -> FittedFirm``. Every method, metric and
  sweep works with it (exact retraining per flip set).
- :class:`DifferentiableFirm`: a firm whose training problem is a smooth, strongly convex inner problem
  J(theta; y) = C * sum_i s_i * l(x_i . theta, y_i) + R(theta), given by its per-example
  :class:`~fairflip.firms.losses.MarginLoss` (value, first two score derivatives and the mixed derivative
  d/dy dl/df, which is how a flip, or a soft flip y_i + z_i (1 - 2 y_i), enters the optimality condition) and its
  regulariser. Batched Newton, implicit hypergradients and every oracle (relaxed, convex, portfolio) accept any
  firm that implements it; :class:`~fairflip.firms.linear.LinearFirm` does for any registered loss.

Registries (the CLI's ``--firm``, sweeps, gap tables and study configs look names up here, so a plugin's firm is
accepted everywhere):

- :func:`register_loss` adds a :class:`~fairflip.firms.losses.MarginLoss` factory under a name;
- :func:`register_firm` adds a firm factory ``factory(*, C, seed, device) -> Firm`` under a name;
- :func:`make_firm` builds a registered firm, :func:`available_firms` lists them.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np

from .._errors import FairflipError, check_registry_name


class FittedFirm(Protocol):
    """What every trained firm offers."""

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Scores of the rows of X (n, d), shape (n,)."""

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted labels of the rows of X (n, d), shape (n,) in {0, 1}."""


@runtime_checkable
class Firm(Protocol):
    """A training pipeline: ``name`` and ``fit(X (n, d), y (n,), sample_weight (n,) | None) -> FittedFirm``."""

    name: str

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> FittedFirm:
        """Train on X (n, d) and labels y (n,) in {0, 1}."""


@runtime_checkable
class DifferentiableFirm(Protocol):
    """A firm with a smooth, strongly convex training problem in its parameters theta (shape (p,) or (K, p)).

    Tensors: Xd (n, p) the design matrix (features plus what the firm appends, e.g. an intercept column);
    Y (K, n) K label vectors (soft labels in [0, 1] allowed); sw (n,) sample weights or None; theta (K, p).
    """

    name: str
    C: float
    dtype: Any

    @property
    def margin_loss(self) -> Any:
        """The per-example :class:`~fairflip.firms.losses.MarginLoss` (how a flip enters: ``dy_d1``)."""

    @property
    def score_threshold(self) -> float:
        """Score above which the firm predicts 1."""

    @property
    def torch_device(self) -> Any:
        """The torch device its tensors live on."""

    def design(self, X: np.ndarray) -> Any:
        """The design matrix of X (n, d), shape (n, p), on the firm's device."""

    def objective(self, theta, Xd, Y, sw=None) -> Any:
        """J(theta; Y), shape (K,)."""

    def gradient(self, theta, Xd, Y, sw=None) -> Any:
        """dJ/dtheta, shape (K, p)."""

    def hessian(self, theta, Xd, Y, sw=None) -> Any:
        """d2J/dtheta2, shape (K, p, p)."""

    def hessian_product(self, W, Xd, V) -> Any:
        """Hessian-vector products given the per-row curvature W (K, n): H V, V (K, p) -> (K, p)."""

    def fit_params(self, Xd, Y, sw=None, **kwargs) -> Any:
        """The optimum theta* of every label vector, shape (K, p), by batched Newton."""

    def training_state(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> dict:
        """What batched retraining on the rows X (n, d) reuses between calls: ``firm``, ``Xd``, ``sw``,
        ``theta0`` (the optimum of the labels y (n,)) and ``factor`` (a preconditioner or None)."""

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> FittedFirm:
        """Train on X (n, d) and y (n,)."""

    def fit_many(self, X: np.ndarray, Y: np.ndarray, sample_weight: np.ndarray | None = None) -> np.ndarray:
        """Optima for K label vectors Y (K, n), shape (K, p)."""

    def predict_many(self, X: np.ndarray, thetas: np.ndarray) -> np.ndarray:
        """Predictions of K parameter vectors on X (m, d), shape (K, m)."""


def is_differentiable(firm: Any) -> bool:
    """True when ``firm`` implements :class:`DifferentiableFirm` (what the gradient-based oracles need)."""
    return isinstance(firm, DifferentiableFirm)


def require_differentiable(firm: Any, who: str) -> None:
    """Raise a FairflipError naming ``who`` (a method) when ``firm`` is not a :class:`DifferentiableFirm`."""
    if not is_differentiable(firm):
        raise FairflipError(f"{who} needs gradients of the firm's training problem, so a firm implementing "
                            f"fairflip.firms.DifferentiableFirm (logistic, ridge, smoothed-hinge or a registered "
                            f"loss); got the '{getattr(firm, 'name', type(firm).__name__)}' firm")


FirmFactory = Callable[..., Any]
"""``factory(*, C: float, seed: int, device: str | None) -> Firm``."""

_FIRMS: dict[str, FirmFactory] = {}


def register_firm(name: str) -> Callable[[FirmFactory], FirmFactory]:
    """Decorator registering a firm factory ``factory(*, C, seed, device) -> Firm`` under ``name``.

    Example (a linear firm with a registered loss)::

        @register_firm("squared-hinge")
        def squared_hinge_firm(*, C=1.0, seed=0, device=None):
            return LinearFirm("squared-hinge", C=C, device=device)
    """
    check_registry_name("firm", name)

    def deco(factory: FirmFactory) -> FirmFactory:
        if not callable(factory):
            raise FairflipError(f"register_firm('{name}') decorates a callable, got {factory!r}")
        _FIRMS[name] = factory
        return factory

    return deco


def available_firms() -> list[str]:
    """Names of every registered firm (built-ins first, then plugins')."""
    _load_plugins()
    return list(_FIRMS)


def make_firm(name: str, *, C: float = 1.0, seed: int = 0, device: str | None = None) -> Any:
    """Return the registered firm called ``name``.

    Args:
        name: a registered firm (built-ins ``logistic``, ``ridge``, ``smoothed-hinge``, ``mlp``, ``gbdt``).
        C: inverse L2 strength of the linear firms (ridge uses alpha = 1 / C).
        seed: random state of the firms that draw random numbers (mlp, gbdt).
        device: torch device of the differentiable firms (None: CUDA when available).
    """
    _load_plugins()
    if not isinstance(name, str) or name not in _FIRMS:
        raise FairflipError(f"unknown firm {name!r}; choose one of {', '.join(_FIRMS)}")
    firm = _FIRMS[name](C=C, seed=seed, device=device)
    if not isinstance(firm, Firm):
        raise FairflipError(f"the factory of firm '{name}' returned {type(firm).__name__}, which has no "
                            "'name' and 'fit' (the fairflip.firms.Firm protocol)")
    return firm


def _load_plugins() -> None:
    from ..plugins import load_env_plugins

    load_env_plugins()
