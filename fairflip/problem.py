"""The flip problem: training data, firm, collective and objective, and how a flip set is scored.

A :class:`FlipProblem` is everything an omniscient method (the oracle) may use. Heuristic strategies see only
its :meth:`FlipProblem.view`, the collective's own rows plus the majority rows it knows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._errors import FairflipError
from .collective import Collective, Direction, make_collective
from .datasets import Dataset
from .features import FeaturePreparer
from .firms import Firm, is_differentiable, make_firm, require_differentiable
from .firms.linear import NEAR_LOOSE_TOL
from .metrics import all_metrics, error_rate, fairness
from .objectives import Objective, get_objective


@dataclass(frozen=True)
class CollectiveView:
    """What a real collective knows: its members' rows and the majority rows it was given.

    Row indices are global (into the training rows); matrices are the firm's prepared features *without* the
    group column (members and majority rows differ in it by construction).

    Attributes:
        member_rows: shape (m,) int64, sorted.
        X_members: shape (m, d'), y_members: shape (m,).
        candidate_rows: shape (c,) int64, sorted; members carrying the source label.
        X_candidates: shape (c, d').
        majority_rows: shape (k,) int64, sorted; the known majority rows.
        X_majority: shape (k, d'), y_majority: shape (k,).
        source_label, target_label: the flip goes source -> target.
    """

    member_rows: np.ndarray
    X_members: np.ndarray
    y_members: np.ndarray
    candidate_rows: np.ndarray
    X_candidates: np.ndarray
    majority_rows: np.ndarray
    X_majority: np.ndarray
    y_majority: np.ndarray
    source_label: int
    target_label: int


@dataclass
class FlipProblem:
    """One instance of the bilevel problem: choose flips among the candidates to make the firm fairer.

    Attributes:
        X: shape (n, d) prepared training features (group column last when the firm sees it).
        y: shape (n,) original training labels.
        a: shape (n,) minority indicator.
        collective: who flips, which way, what they know.
        firm: the training pipeline (never changed).
        objective: fairness objective the oracle minimises: a registered name (eqod, eqod-worst, dp, eqopp or a
            plugin's) or an :class:`~fairflip.objectives.Objective` (see :mod:`fairflip.objectives`).
        error_weight: weight of the error added to the objective (0 by default).
        X_nogroup: shape (n, d') features without the group column (what kNN distances use).
        X_counterfactual: shape (n, d) features with every row's group set to the majority.
        validation: optional (X, y, a) on which the objective is measured instead of the training rows.
        sample_weight: optional shape (n,) weights the firm trains with.
        y_counterfactual_prob: optional shape (n,) P0(y = 1 | x_{A<-0}) of every row, known only when the causal
            model is (synthetic data); the omniscient ``ideal`` strategy reads it.
    """

    X: np.ndarray
    y: np.ndarray
    a: np.ndarray
    collective: Collective
    firm: Firm
    objective: str | Objective = "eqod"
    error_weight: float = 0.0
    X_nogroup: np.ndarray | None = None
    X_counterfactual: np.ndarray | None = None
    validation: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    sample_weight: np.ndarray | None = None
    feature_names: list[str] = field(default_factory=list)
    y_counterfactual_prob: np.ndarray | None = None

    def __post_init__(self) -> None:
        get_objective(self.objective)  # a clear error naming the registered objectives when unknown
        if not isinstance(self.firm, Firm):
            raise FairflipError(f"firm must implement fairflip.firms.Firm (a 'name' and a 'fit' method), got "
                                f"{type(self.firm).__name__}")
        if not self.error_weight >= 0 or not np.isfinite(self.error_weight):
            raise FairflipError(f"error_weight must be a non-negative finite number, got {self.error_weight!r}")
        n = len(self.y)
        if self.X.shape[0] != n or len(self.a) != n:
            raise FairflipError(f"X has {self.X.shape[0]} rows, y {n}, a {len(self.a)}")
        if self.X_nogroup is None:
            self.X_nogroup = self.X
        if self.y_counterfactual_prob is not None and np.shape(self.y_counterfactual_prob) != (n,):
            raise FairflipError(f"y_counterfactual_prob has shape {np.shape(self.y_counterfactual_prob)}, "
                                f"expected ({n},)")

    @property
    def n(self) -> int:
        """Number of training rows."""
        return len(self.y)

    @property
    def evaluation_set(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The rows the objective is measured on: the validation split ``(X (m, d), y (m,), a (m,))`` when the
        problem has one, else the training rows with their original labels (m = n). The one place that decides."""
        return (self.X, self.y, self.a) if self.validation is None else self.validation

    @property
    def candidates(self) -> np.ndarray:
        """Candidate rows (members with the source label), shape (c,) int64 sorted."""
        return self.collective.candidates(self.y)

    def view(self) -> CollectiveView:
        """The collective's knowledge: copies of its members' rows and of the known majority rows only."""
        col = self.collective
        members = np.flatnonzero(col.members)
        cands = self.candidates
        major = np.flatnonzero(col.known_majority)
        return CollectiveView(
            member_rows=members,
            X_members=self.X_nogroup[members].copy(),
            y_members=self.y[members].copy(),
            candidate_rows=cands,
            X_candidates=self.X_nogroup[cands].copy(),
            majority_rows=major,
            X_majority=self.X_nogroup[major].copy(),
            y_majority=self.y[major].copy(),
            source_label=col.source_label,
            target_label=col.target_label,
        )

    def flipped_labels(self, flipped: np.ndarray) -> np.ndarray:
        """Training labels with the rows ``flipped`` (shape (k,) indices) flipped, shape (n,)."""
        flipped = self.check_flips(flipped)
        y = self.y.copy()
        y[flipped] = 1 - y[flipped]
        return y

    def check_flips(self, flipped: np.ndarray, budget: int | None = None) -> np.ndarray:
        """Return ``flipped`` as sorted unique int64 indices after checking they are candidates (and <= budget)."""
        idx = np.asarray(flipped, dtype=np.int64).ravel()
        if len(np.unique(idx)) != len(idx):
            raise FairflipError("a flip set lists the same row twice")
        bad = np.setdiff1d(idx, self.candidates)
        if len(bad):
            raise FairflipError(f"row(s) {bad[:5].tolist()} are not candidates of the collective")
        if budget is not None and len(idx) > budget:
            raise FairflipError(f"the flip set has {len(idx)} rows, more than the budget {budget}")
        return np.sort(idx)

    def label_matrix(self, flip_sets: list[np.ndarray]) -> np.ndarray:
        """Labels of K flip sets, shape (K, n) int64."""
        Y = np.repeat(self.y[None, :], len(flip_sets), axis=0)
        for k, f in enumerate(flip_sets):
            f = np.asarray(f, dtype=np.int64)
            Y[k, f] = 1 - Y[k, f]
        return Y

    def training_state(self) -> dict:
        """The firm's training state on this problem's rows, built by the firm (see
        :meth:`fairflip.firms.LinearFirm.training_state`) on first use and kept between calls.

        It belongs to the firm it was built for: assigning another firm to ``problem.firm`` rebuilds it.
        """
        state = self.__dict__.get("_training_state")
        if state is None or state["firm"] is not self.firm:
            require_differentiable(self.firm, "batched retraining")
            state = self.firm.training_state(self.X, self.y, self.sample_weight)
            self.__dict__["_training_state"] = state
        return state

    def fit_flip_sets(self, flip_sets: list[np.ndarray], *, chunk: int = 512,
                      around: np.ndarray | None = None) -> np.ndarray:
        """Exactly retrain a linear firm on K flip sets at once, shape (K, d + 1) (intercept last).

        The batch is solved from the unflipped optimum (a few flips move it little), on the firm's device,
        ``chunk`` flip sets at a time so memory stays O(chunk * n + d^2 * chunk): by the firm's ``fit_near`` from
        its local model there when it has one (a few passes over X), else by Newton warm-started there.

        Args:
            flip_sets: K arrays of training rows to flip.
            chunk: flip sets solved in one batched Newton run.
            around: optional flip set (rows) close to every set of the batch, such as a local search's current
                set whose moves are being scored: retraining then starts from its optimum and local model
                instead of the unflipped ones. The optimum is the same (the firm's problem is strictly convex);
                it is reached in fewer products. The anchor's model is kept for the next call with the same set.
        """
        thetas, _ = self._fit(flip_sets, chunk=chunk, around=around)
        return thetas.cpu().numpy()

    def _fit(self, flip_sets: list[np.ndarray], *, chunk: int = 512, around: np.ndarray | None = None,
             tol: float | None = None, remember: bool = True):
        """(theta (K, p) tensor, last step (K,) tensor or None) of :meth:`fit_flip_sets`; ``tol`` loosens
        ``fit_near``'s stopping rule (the last steps then bound each member's distance to its optimum);
        ``remember=False`` leaves the latest batch's optima (the next anchors) as they were."""
        import torch

        cache = self.training_state()  # refuses a firm that is not differentiable
        firm, Xd = self.firm, cache["Xd"]
        rows = np.zeros(0, dtype=np.int64) if around is None else np.sort(np.asarray(around, dtype=np.int64))
        model = self.local_model(rows) if hasattr(firm, "fit_near") else None
        out, lasts = [], []
        for s in range(0, len(flip_sets), chunk):
            Y = torch.as_tensor(self.label_matrix(flip_sets[s:s + chunk]), dtype=firm.dtype, device=Xd.device)
            if model is not None:
                member, row = _label_changes(flip_sets[s:s + chunk], rows, len(self.y))
                changed = (torch.as_tensor(member, device=Xd.device), torch.as_tensor(row, device=Xd.device))
                theta, last = firm.fit_near(Xd, Y, model, sample_weight=cache["sw"], changed=changed, tol=tol,
                                            return_last=True)
                out.append(theta)
                lasts.append(last)
            else:  # Newton, from the anchor's optimum when there is one
                init = self._anchor_theta(rows) if len(rows) else cache["theta0"]
                out.append(firm.fit_params(Xd, Y, sample_weight=cache["sw"], init=init,
                                           preconditioner=cache["factor"]))
        if not out:
            return torch.zeros((0, self.X.shape[1] + 1), dtype=torch.float64), None
        thetas = torch.cat(out)
        # The latest batch's optima, by flip set: a search's next anchor is usually one of them (its accepted move).
        if remember:
            cache["recent"] = ({flip_set_key(f): k for k, f in enumerate(flip_sets)}, thetas)
        return thetas, (torch.cat(lasts) if lasts else None)

    def _anchor_theta(self, rows: np.ndarray):
        """The firm's optimum (p,) for the flip set ``rows`` (sorted, non-empty): from the latest batch when it
        holds it, else retrained (from the unflipped optimum); the latest one is kept."""
        cache = self.training_state()
        key = rows.tobytes()
        if cache.get("anchor_theta", (None,))[0] != key:
            index, recent = cache.get("recent", ({}, None))
            theta = recent[index[key]] if key in index else self._fit([rows])[0][0]
            cache["anchor_theta"] = (key, theta)
        return cache["anchor_theta"][1]

    def local_model(self, flipped: np.ndarray):
        """The firm's :class:`~fairflip.firms.linear.LocalModel` at the optimum of one flip set.

        Args:
            flipped: shape (k,) training rows flipped (empty: the unflipped optimum).

        Returns:
            the model (optimum theta (p,), Hessian and its Cholesky factor (p, p), third-derivative tensor or
            None), or None for a firm without ``local_model`` or where the Hessian does not factorise. The
            unflipped one and the latest other one are kept, and an optimum the latest batch of
            :meth:`fit_flip_sets` computed is reused.
        """
        import torch

        if not hasattr(self.firm, "local_model"):
            return None
        rows = np.unique(np.asarray(flipped, dtype=np.int64))
        cache = self.training_state()
        Xd = cache["Xd"]
        if not local_models_affordable(Xd):
            return None  # census-size tables: Newton from the anchor's optimum instead (see ANCHOR_HESSIAN_MAX_WORK)
        key = rows.tobytes()
        slot = "anchor0" if not len(rows) else "anchor"
        if slot not in cache or cache[slot][0] != key:
            firm = self.firm
            y = torch.as_tensor(self.label_matrix([rows])[0], dtype=firm.dtype, device=Xd.device)
            theta = self._anchor_theta(rows) if len(rows) else cache["theta0"]
            # The anchor's own Hessian: on Adult (p = 91) a batch of 64 moves retrains in 0.68 s from it and in
            # 1.6 s from the unflipped Hessian's factor, more than the Hessian costs.
            factor = None if len(rows) else cache["factor"]  # the unflipped optimum's factor is its own
            cache[slot] = (key, firm.local_model(theta, Xd, y, cache["sw"], factor=factor))
        return cache[slot][1]

    def predictions(self, flip_sets: list[np.ndarray], X: np.ndarray | None = None, *,
                    around: np.ndarray | None = None) -> np.ndarray:
        """Train the firm on each flip set and predict rows of X (default: the training rows) -> (K, m) int64.

        Linear firms train all K at once (batched, warm-started Newton; ``around`` as in :meth:`fit_flip_sets`);
        other firms are trained one by one. A firm with ``fit_near`` and ``predict_decided`` is first retrained to
        the loose tolerance ``NEAR_LOOSE_TOL``; a member's predictions are kept when no score lies within reach
        of its last step from the threshold, and the other members are retrained to the firm's tolerance.
        """
        X_eval = self.X if X is None else X
        if is_differentiable(self.firm):
            firm = self.firm
            if not (hasattr(firm, "fit_near") and hasattr(firm, "predict_decided")):
                return firm.predict_many(X_eval, self.fit_flip_sets(flip_sets, around=around))
            # Retrain to a loose tolerance, keep the predictions its last steps cannot change, retrain the rest
            # to the firm's own tolerance.
            thetas, last = self._fit(flip_sets, around=around, tol=NEAR_LOOSE_TOL)
            if last is None:
                return firm.predict_many(X_eval, thetas.cpu().numpy())
            P, decided = firm.predict_decided(self.design_of(X_eval), thetas, last)
            redo = np.flatnonzero(~decided)
            if len(redo):  # the whole batch's loose optima stay the anchors the search may take next
                exact, _ = self._fit([flip_sets[k] for k in redo], around=around, remember=False)
                P[redo] = firm.predict_many(X_eval, exact.cpu().numpy())
            return P
        Y = self.label_matrix(flip_sets)
        return np.stack([self.firm.fit(self.X, Y[k], sample_weight=self.sample_weight).predict(X_eval)
                         for k in range(len(Y))])

    def design_of(self, X: np.ndarray):
        """The firm's design matrix (torch, (m, p)) of rows X (m, d): the training state's for the training rows,
        one kept for the validation rows, a fresh one otherwise."""
        cache = self.training_state()
        if X is self.X:
            return cache["Xd"]
        if self.validation is not None and X is self.validation[0]:
            if "Xd_validation" not in cache:
                cache["Xd_validation"] = self.firm.design(X)
            return cache["Xd_validation"]
        return self.firm.design(X)

    def objective_of(self, flip_sets: list[np.ndarray], *, around: np.ndarray | None = None) -> np.ndarray:
        """The true (hard-prediction) objective of each flip set after exact retraining, shape (K,).

        Measured with the original labels on the validation split when one is set, else on the training rows.
        ``around``: an optional flip set near all of them, which speeds up a linear firm's retraining (see
        :meth:`fit_flip_sets`). Inside :meth:`objective_cache`, flip sets already scored are not retrained.
        """
        cache = self.__dict__.get("_objective_cache")
        if cache is None:
            return self._objective_of(flip_sets, around)
        keys = [flip_set_key(f) for f in flip_sets]
        missing: dict[bytes, int] = {}
        for k, key in enumerate(keys):
            if key not in cache.values and key not in missing:
                missing[key] = k
        if missing:
            fresh = self._objective_of([flip_sets[k] for k in missing.values()], around)
            cache.values.update(zip(missing, fresh.tolist()))
            cache.retrained += len(missing)
        cache.hits += len(keys) - len(missing)
        return np.array([cache.values[key] for key in keys], dtype=np.float64)

    def objective_cache(self) -> "ObjectiveCache":
        """A context manager during which :meth:`objective_of` remembers every flip set it scored.

        One solver call (e.g. the oracle's ``select_many``) opens it so that its components and budgets never
        retrain the same flip set twice. Nested uses share the outermost cache; it is dropped on exit.

        Returns:
            the :class:`ObjectiveCache` (``values``: flip-set key -> objective; ``retrained`` and ``hits``).
        """
        return ObjectiveCache(self)

    def _objective_of(self, flip_sets: list[np.ndarray], around: np.ndarray | None) -> np.ndarray:
        if not len(flip_sets):
            return np.zeros(0)
        X_eval, y_eval, a_eval = self.evaluation_set
        P = self.predictions(flip_sets, X_eval, around=around)
        objective = get_objective(self.objective)
        if not objective.has_gap_structure:
            return np.array([self.objective_from_predictions(y_eval, P[k], a_eval) for k in range(len(P))])
        # Gap structures: every cell rate of every flip set in one product (the same sums as Objective.value).
        # Each gap is (minority cell's count) / its size - (majority cell's count) / its size: the counts are
        # exact, so flip sets with the same counts get bit-identical values whatever the batch (ties stay ties).
        # (NumPy has no BLAS product for int64: the float copy is cheaper than the integer product.)
        W = objective.gap_weights(y_eval, a_eval)
        counts = P.astype(np.float64) @ np.concatenate([W > 0, W < 0]).T  # (K, 2k): minority, majority cells
        k = len(W)
        gaps = np.abs(counts[:, :k] * W.max(axis=1) + counts[:, k:] * W.min(axis=1))
        value = gaps.mean(axis=1) if objective.aggregate == "mean" else gaps.max(axis=1)
        if self.error_weight:
            value = value + self.error_weight * np.count_nonzero(P != np.asarray(y_eval)[None, :], axis=1) / P.shape[1]
        return value

    def objective_from_predictions(self, y_true: np.ndarray, y_pred: np.ndarray, a: np.ndarray) -> float:
        """Objective value of given predictions: fairness + error_weight * error; inputs shape (m,)."""
        value = fairness(self.objective, y_true, y_pred, a)
        if self.error_weight:
            value += self.error_weight * error_rate(y_true, y_pred)
        return float(value)


ANCHOR_HESSIAN_MAX_WORK = 1_000_000_000
"""Local models (and with them ``fit_near``) are used while one Hessian costs at most this many multiply-adds
(n p^2; Adult: 2.9e8); above it (KDD census-income at n = 20,000: 5.1e9) retraining runs preconditioned Newton
from the unflipped optimum, as :meth:`FlipProblem.local_model` explains."""


def local_models_affordable(Xd) -> bool:
    """Whether local models (one Hessian, n p^2 multiply-adds) are used for the design matrix Xd (n, p): see
    :data:`ANCHOR_HESSIAN_MAX_WORK`."""
    return Xd.shape[0] * Xd.shape[1] ** 2 <= ANCHOR_HESSIAN_MAX_WORK


def flip_set_key(flipped: np.ndarray) -> bytes:
    """A hashable key of a flip set (rows, any order; a row listed twice is flipped once): its sorted unique rows
    as int64 bytes."""
    rows = np.sort(np.asarray(flipped, dtype=np.int64).ravel())
    if len(rows) > 1 and bool((rows[1:] == rows[:-1]).any()):
        rows = np.unique(rows)
    return rows.tobytes()


def _label_changes(flip_sets: list[np.ndarray], anchor: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Where the labels of K flip sets differ from those of the flip set ``anchor`` (sorted unique rows): the
    (member, row) pairs of their symmetric differences, shapes (m,) and (m,), without forming a (K, n) array."""
    K = len(flip_sets)
    sizes = np.fromiter((len(f) for f in flip_sets), dtype=np.int64, count=K)
    rows = np.concatenate([np.asarray(f, dtype=np.int64).ravel() for f in flip_sets]) if K else np.zeros(0, np.int64)
    member = np.repeat(np.arange(K), sizes)
    position = np.full(n, -1, dtype=np.int64)
    position[anchor] = np.arange(len(anchor))
    pos = position[rows]
    outside = pos < 0
    # Rows flipped by a member but not by the anchor (a row listed twice in a set is flipped once).
    added = np.unique(member[outside] * n + rows[outside])
    # Anchor rows a member does not flip.
    present = np.zeros((K, len(anchor)), dtype=bool)
    present[member[~outside], pos[~outside]] = True
    gone_member, gone_pos = np.nonzero(~present)
    return (np.concatenate([added // n, gone_member]), np.concatenate([added % n, anchor[gone_pos]]))


class ObjectiveCache:
    """Memo of true objectives by flip set for one solver call (see :meth:`FlipProblem.objective_cache`).

    Attributes:
        values: sorted flip set (int64 bytes) -> true objective.
        retrained: flip sets retrained while the cache was open.
        hits: flip sets answered from the cache.
    """

    def __init__(self, problem: FlipProblem) -> None:
        self.problem = problem
        self.values: dict[bytes, float] = {}
        self.retrained = 0
        self.hits = 0
        self._owner = False

    def __enter__(self) -> "ObjectiveCache":
        current = self.problem.__dict__.get("_objective_cache")
        if current is not None:  # nested: share the outer cache
            return current
        self._owner = True
        self.problem.__dict__["_objective_cache"] = self
        return self

    def __exit__(self, *exc) -> None:
        if self._owner:
            self.problem.__dict__.pop("_objective_cache", None)
            self._owner = False


def build_problem(
    train: Dataset,
    *,
    firm: Firm | str = "logistic",
    collective_fraction: float | None = 0.3,
    members: np.ndarray | None = None,
    direction: Direction = "auto",
    known_majority: int | None = None,
    objective: str = "eqod",
    error_weight: float = 0.0,
    include_group: bool = True,
    seed: int = 0,
    C: float = 1.0,
) -> tuple[FlipProblem, FeaturePreparer]:
    """Prepare features, draw the collective and assemble a :class:`FlipProblem` from a training Dataset.

    Args:
        train: training rows (n).
        firm: a firm object or a name for :func:`fairflip.firms.make_firm`.
        collective_fraction: share of the minority in the collective (ignored when ``members`` is given).
        members: shape (n,) explicit membership mask.
        direction: ``auto`` (default, as in every entry point: towards the majority's base rate), ``up`` (the
            paper's 0 -> 1) or ``down``.
        known_majority: None (all majority rows known) or m (restricted access).
        objective: eqod, eqod-worst, dp or eqopp.
        error_weight: weight of training error added to the objective.
        include_group: whether the firm sees the group indicator.
        seed: seed of the collective draw and of the firm when it is random.
        C: inverse regularisation of linear firms (when ``firm`` is a name).

    Returns:
        (problem, fitted FeaturePreparer) — use the preparer to transform test data identically.
    """
    prep = FeaturePreparer(include_group=include_group).fit(train)
    X = prep.transform(train)
    # The group is the last column: the view without it is a slice and g(x) a copy with it zeroed, so the table
    # is encoded once (encoding dominates the set-up time on census-size data).
    if include_group:
        X_nogroup = X[:, :-1]
        X_cf = X.copy()
        X_cf[:, -1] = 0.0
    else:
        X_nogroup, X_cf = X, X
    firm_obj = make_firm(firm, C=C, seed=seed) if isinstance(firm, str) else firm
    col = make_collective(
        train.y, train.a,
        fraction=None if members is not None else collective_fraction,
        members=members, direction=direction, known_majority=known_majority, seed=seed,
    )
    problem = FlipProblem(
        X=X, y=train.y.copy(), a=train.a.copy(), collective=col, firm=firm_obj, objective=objective,
        error_weight=error_weight, X_nogroup=X_nogroup,
        X_counterfactual=X_cf, feature_names=prep.feature_names_,
        y_counterfactual_prob=None if train.y_counterfactual_prob is None else train.y_counterfactual_prob.copy(),
    )
    return problem, prep


def evaluate_flips(
    problem: FlipProblem,
    flipped: np.ndarray,
    *,
    test: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None] | None = None,
) -> dict:
    """Retrain the firm on the flipped labels and measure it.

    Args:
        problem: the flip problem.
        flipped: shape (k,) candidate row indices to flip.
        test: optional (X_test (m, d), y_test (m,), a_test (m,), X_test_counterfactual (m, d) or None).

    Returns:
        ``{"objective": float, "train": metrics, "test": metrics (when given)}``; metrics use the original
        labels (train) or true labels (test), see :func:`fairflip.metrics.all_metrics`.
    """
    return evaluate_labels(problem, problem.flipped_labels(flipped), test=test)


def evaluate_labels(
    problem: FlipProblem,
    y_train: np.ndarray,
    *,
    test: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None] | None = None,
) -> dict:
    """Train the firm on the labels ``y_train`` (shape (n,), e.g. a flips file applied to ``problem.y``) and
    measure it against the original labels, as :func:`evaluate_flips` does; no candidate check is made."""
    model = problem.firm.fit(problem.X, y_train, sample_weight=problem.sample_weight)
    pred = model.predict(problem.X)
    cf = None if problem.X_counterfactual is None else model.predict(problem.X_counterfactual)
    out = {"train": all_metrics(problem.y, pred, problem.a, y_pred_counterfactual=cf)}
    Xv, yv, av = problem.evaluation_set
    pv = pred if problem.validation is None else model.predict(Xv)
    out["objective"] = problem.objective_from_predictions(yv, pv, av)
    if test is not None:
        Xt, yt, at, Xt_cf = test
        pt = model.predict(Xt)
        out["test"] = all_metrics(yt, pt, at, y_pred_counterfactual=None if Xt_cf is None else model.predict(Xt_cf))
    return out
