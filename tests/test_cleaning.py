"""Firm-side label cleaning: flag bookkeeping against known flip sets, the cleaners themselves, retraining."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import StratifiedKFold

from fairflip._errors import FairflipError
from fairflip.cleaning import (
    cleaning_report, cross_val_proba, detect, drop_rows, evaluate_cleaned, loss_cutoff, loss_filter, row_losses,
)
from fairflip.firms import LinearFirm
from fairflip.metrics import all_metrics
from fairflip.problem import build_problem


# ----- bookkeeping -----
def test_report_counts_hand_made_sets():
    r = cleaning_report(np.array([0, 1, 2, 5]), np.array([1, 5, 7]), 10)
    assert (r["n"], r["n_flipped"], r["n_flagged"]) == (10, 3, 4)
    assert (r["flagged_flips"], r["flagged_honest"], r["missed_flips"]) == (2, 2, 1)
    assert r["recall"] == 2 / 3 and r["precision"] == 2 / 4 and r["honest_flag_rate"] == 2 / 7


def test_report_masks_and_indices_agree():
    flagged = np.zeros(10, dtype=bool)
    flagged[[0, 1, 2, 5]] = True
    flipped = np.zeros(10, dtype=bool)
    flipped[[1, 5, 7]] = True
    assert cleaning_report(flagged, flipped, 10) == cleaning_report([0, 1, 2, 5], [7, 5, 1], 10)


def test_report_perfect_and_disjoint_cleaners():
    assert cleaning_report([3, 4], [3, 4], 6)["recall"] == 1.0
    assert cleaning_report([3, 4], [3, 4], 6)["precision"] == 1.0
    r = cleaning_report([0, 1], [3, 4], 6)
    assert (r["recall"], r["precision"], r["honest_flag_rate"]) == (0.0, 0.0, 0.5)


def test_report_undefined_rates_are_nan():
    r = cleaning_report(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), 5)
    assert np.isnan(r["recall"]) and np.isnan(r["precision"]) and r["honest_flag_rate"] == 0.0
    assert np.isnan(cleaning_report([0], [0, 1], 2)["honest_flag_rate"])


@pytest.mark.parametrize("args, match", [
    (([0, 0], [1], 5), "same row twice"),
    (([7], [1], 5), "outside"),
    ((np.ones(4, dtype=bool), [1], 5), "shape"),
    (([0.5], [1], 5), "dtype"),
    (([0], [1], 0), "positive number of rows"),
])
def test_report_rejects_bad_input(args, match):
    with pytest.raises(FairflipError, match=match):
        cleaning_report(*args)


# ----- the loss filter -----
def test_loss_filter_fraction_ties_and_cutoff():
    losses = np.array([0.1, 2.0, 0.5, 2.0, 3.0, 0.2, 2.0, 0.0])
    flagged = loss_filter(losses, fraction=0.375)  # round(3) rows: 3.0, then the first two 2.0 ties
    assert np.flatnonzero(flagged).tolist() == [1, 3, 4]
    cut = loss_cutoff(losses, fraction=0.375)
    assert cut == 2.0
    assert (losses[flagged] >= cut).all() and not flagged[losses < cut].any()
    assert loss_cutoff(losses, fraction=0.0) == np.inf and not loss_filter(losses, fraction=0.0).any()
    assert np.flatnonzero(loss_filter(losses, fraction=None, threshold=0.4)).tolist() == [1, 2, 3, 4, 6]


def test_loss_filter_needs_one_rule():
    with pytest.raises(FairflipError, match="exactly one of fraction or threshold"):
        loss_filter(np.ones(3), fraction=0.1, threshold=1.0)
    with pytest.raises(FairflipError, match="fraction"):
        loss_filter(np.ones(3), fraction=1.5)


def test_row_losses_closed_form():
    p = np.array([0.9, 0.9, 0.2, 0.0])
    y = np.array([1, 0, 0, 1])
    expected = [-np.log(0.9), -np.log(0.1), -np.log(0.8), -np.log(1e-15)]
    np.testing.assert_allclose(row_losses(p, y), expected, rtol=1e-12)


# ----- the cross-validated model -----
def _blobs(n=300, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = (X @ np.array([2.0, -1.0, 0.5])[:d] + 0.3 * rng.normal(size=n) > 0).astype(np.int64)
    return X, y


def test_cross_val_proba_is_the_firms_model_out_of_fold():
    X, y = _blobs()
    proba = cross_val_proba(X, y, C=0.7, folds=4, seed=3)
    firm = LinearFirm("logistic", C=0.7, device="cpu")
    expected = np.empty(len(y))
    for tr, te in StratifiedKFold(4, shuffle=True, random_state=3).split(X, y):
        expected[te] = firm.fit(X[tr], y[tr]).predict_proba(X[te])
    np.testing.assert_allclose(proba, expected, atol=1e-6)
    assert not np.allclose(proba, cross_val_proba(X, y, C=0.7, folds=4, seed=4))


def test_cross_val_proba_rejects_bad_input():
    X, y = _blobs(n=20)
    with pytest.raises(FairflipError, match="folds"):
        cross_val_proba(X, y, folds=1)
    with pytest.raises(FairflipError, match="fewer than"):
        cross_val_proba(X, np.r_[1, np.zeros(19, dtype=np.int64)], folds=5)
    with pytest.raises(FairflipError, match="C must be"):
        cross_val_proba(X, y, C=0.0)


# ----- the cleaners find planted label noise -----
@pytest.mark.parametrize("cleaner", ["confident", "loss"])
def test_cleaners_catch_planted_flips_far_from_the_boundary(cleaner):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 2))
    y = (X[:, 0] > 0).astype(np.int64)
    far = np.flatnonzero(np.abs(X[:, 0]) > 1.2)
    planted = np.sort(rng.choice(far, size=12, replace=False))
    y_noisy = y.copy()
    y_noisy[planted] = 1 - y_noisy[planted]
    flagged = detect(X, y_noisy, cleaner=cleaner, fraction=0.03, C=10.0)
    report = cleaning_report(flagged, planted, len(y))
    assert report["recall"] == 1.0
    assert report["precision"] >= 0.75


def test_detect_rejects_unknown_cleaner():
    X, y = _blobs(n=30)
    with pytest.raises(FairflipError, match="unknown cleaner"):
        detect(X, y, cleaner="oracle")
    with pytest.raises(FairflipError, match="2-D"):
        detect(X[:, 0], y)


# ----- a real run on a small problem -----
@pytest.fixture(scope="module")
def small(compas_split):
    train, test = compas_split
    train = train.subset(np.arange(900))
    problem, prep = build_problem(train, direction="auto", seed=0)
    flipped = np.sort(np.random.default_rng(0).choice(problem.candidates, size=40, replace=False))
    return problem, (prep.transform(test), test.y, test.a, None), flipped


@pytest.mark.parametrize("cleaner", ["confident", "loss"])
def test_evaluate_cleaned_matches_manual_retraining(small, cleaner):
    problem, test, flipped = small
    out = evaluate_cleaned(problem, flipped, cleaner=cleaner, test=test, fraction=0.05)
    flagged = out["flagged"]
    y_flip = problem.flipped_labels(flipped)
    np.testing.assert_array_equal(flagged, detect(problem, y_flip, cleaner=cleaner, fraction=0.05))
    assert out["report"] == cleaning_report(flagged, flipped, problem.n)
    assert out["report"]["n_flagged"] > 0
    if cleaner == "loss":
        assert out["report"]["n_flagged"] == round(0.05 * problem.n)
    keep = ~flagged
    model = problem.firm.fit(problem.X[keep], y_flip[keep])
    expected = all_metrics(test[1], model.predict(test[0]), test[2])
    assert out["test"]["eqod"] == pytest.approx(expected["eqod"], abs=1e-12)
    assert out["test"]["error"] == pytest.approx(expected["error"], abs=1e-12)


def test_drop_rows_keeps_collective_and_flips_aligned(small):
    problem, _, flipped = small
    keep = np.ones(problem.n, dtype=bool)
    keep[flipped[::2]] = False
    keep[:5] = False
    sub, new_index = drop_rows(problem, keep)
    assert sub.n == keep.sum() and (new_index[~keep] == -1).all()
    np.testing.assert_array_equal(sub.X, problem.X[keep])
    kept = new_index[flipped[1::2]]
    assert set(kept.tolist()) <= set(sub.candidates.tolist())
    with pytest.raises(FairflipError, match="every training row"):
        drop_rows(problem, np.zeros(problem.n, dtype=bool))


# ----- the cleaning study's cells, figure and verdict -----
def _cleaning_cell(method, budget, cleaner, stealth=False, **kw):
    from fairflip.experiments.cells import Cell

    return Cell(study="cleaning", kind="cleaning", dataset="compas", method=method, seed=0, budget=budget,
                max_rows=800, options={"cleaner": cleaner, "stealth": stealth, "loss_fraction": 0.05,
                                       "safety": 0.0}, **kw)


@pytest.mark.parametrize("cleaner", ["confident", "loss"])
def test_cleaning_cells_match_direct_evaluation(cleaner):
    from fairflip.experiments.cells import TEST_METRICS, prepare, run_cell
    from fairflip.methods import get_method
    from fairflip.problem import evaluate_flips

    plain, stealthy = _cleaning_cell("random", 0.25, cleaner), _cleaning_cell("random", 0.25, cleaner, stealth=True)
    src = prepare(plain)
    budget = round(0.25 * len(src.problem.candidates))
    for cell, method in ((plain, get_method("random", seed=0)),
                         (stealthy, get_method("oracle-stealth", seed=0, base="random", against=cleaner))):
        out = run_cell(cell)
        m = out["metrics"]
        chosen = method.select(src.problem, budget).flipped
        assert out["extra"]["flipped"] == chosen.tolist() and m["n_flipped"] == len(chosen) and m["budget"] == budget
        before = evaluate_flips(src.problem, chosen, test=src.test_arrays)["test"]
        # the firm cleans with its own folds (seed + 1), then retrains on the rows it kept
        after = evaluate_cleaned(src.problem, chosen, cleaner=cleaner, test=src.test_arrays, fraction=0.05, seed=1)
        assert m["eqod_before"] == before["eqod"] and m["error_before"] == before["error"]
        assert {k: m[k] for k in TEST_METRICS} == {k: after["test"][k] for k in TEST_METRICS}
        for k in ("recall", "precision", "honest_flag_rate", "n_flagged"):
            assert m[k] == pytest.approx(after["report"][k], nan_ok=True, abs=0)
        assert out["extra"]["flagged"] == np.flatnonzero(after["flagged"]).tolist()
    none = run_cell(_cleaning_cell("none", 0, cleaner))["metrics"]
    assert none["n_flipped"] == 0 and np.isnan(none["recall"]) and none["precision"] == 0.0


def test_cleaning_cell_options_are_checked():
    from fairflip.experiments.cells import Cell

    with pytest.raises(FairflipError, match="options need a cleaner"):
        _cleaning_cell("random", 0.25, "oracle")
    with pytest.raises(FairflipError, match="cannot be stealthy"):
        _cleaning_cell("none", 0, "loss", stealth=True)
    with pytest.raises(FairflipError, match="takes no options"):
        Cell(study="t", dataset="compas", method="random", seed=0, budget=1, options={"cleaner": "loss"})


def _cleaning_frame(stealth_recall: float, stealth_eqod: float, *, identical: bool = False):
    """A tidy table of one dataset and cleaner: no flips (EqOd 0.30 without cleaning, 0.32 cleaned), plain flips
    of two strategies (EqOd 0.10 without cleaning, 0.20 cleaned, recall 0.6) and stealthy ones (8 and 9 flips, or
    the same 8 for both strategies when ``identical``)."""
    import pandas as pd

    rows = [dict(dataset="d", cleaner="loss", method="none", stealth=False, budget_share=None, seed=0,
                 eqod_before=0.30, eqod=0.32, recall=np.nan, n_flipped=0, precision=0.0, error_before=0.2,
                 error=0.2)]
    for i, m in enumerate(("rb-prob", "random")):
        rows.append(dict(dataset="d", cleaner="loss", method=m, stealth=False, budget_share=0.5, seed=0,
                         eqod_before=0.10, eqod=0.20, recall=0.6, n_flipped=10, precision=0.5, error_before=0.2,
                         error=0.2))
        rows.append(dict(dataset="d", cleaner="loss", method=m, stealth=True, budget_share=0.5, seed=0,
                         eqod_before=0.15, eqod=stealth_eqod, recall=stealth_recall,
                         n_flipped=8 if identical else 8 + i, precision=0.1,
                         error_before=0.2, error=0.2))
    return pd.DataFrame(rows)


def test_cleaning_verdict_follows_the_numbers():
    from fairflip.experiments.studies_beyond import cleaning_verdict

    # intended gain 0.30 - 0.10 = 0.20; plain after cleaning 0.32 - 0.20 = 0.12 (60%); stealth 0.32 - 0.17 (75%)
    text = cleaning_verdict(_cleaning_frame(0.05, 0.17))
    assert "recall at or below 0.05 (plain flips: 0.60 on average)" in text
    assert "retaining 75% of the EqOd gain" in text and "plain flips keep 60% once it cleans" in text
    assert "d, loss: recall at most 0.05 stealthy vs 0.60 plain, gain kept 75% vs 60%" in text
    assert "retaining 10% of the EqOd gain" in cleaning_verdict(_cleaning_frame(0.3, 0.30))


def test_cleaning_summary_table_figure_and_report_section(tmp_path):
    from fairflip.experiments.report import write_report
    from fairflip.experiments.studies_beyond import summarise_cleaning
    from fairflip.experiments.study_kit import load_config

    frame = _cleaning_frame(0.05, 0.17)
    frame["config_hash"] = [str(i) for i in range(len(frame))]
    res = summarise_cleaning(load_config("cleaning", quick=True), frame, {})
    assert res.holds is None and res.verdict.startswith("No claim of the paper to test")
    assert len(res.table) == 4 and set(res.table.flips) == {"plain", "stealth"}  # two strategies x two kinds
    # one seed: means without a spread (no "± 0.000")
    assert res.table.loc[res.table.method == "rb-prob"].iloc[:, 4].tolist() == ["0.200", "0.170"]
    # one dataset, one cleaner: EqOd-after and recall panels
    assert len(res.figures["cleaning"].axes) == 2
    _, md = write_report([res], tmp_path, run_info={"mode": "test"})
    text = md.read_text()
    assert "## 9. A firm that cleans its labels" in text and res.verdict in text
    assert "figures/cleaning.png" in text and (tmp_path / "figures" / "cleaning.svg").is_file()


def test_cleaning_summary_collapses_identical_stealthy_flips():
    from fairflip.experiments.studies_beyond import identical_stealth, summarise_cleaning
    from fairflip.experiments.study_kit import load_config

    frame = _cleaning_frame(0.05, 0.17, identical=True)
    frame["config_hash"] = [str(i) for i in range(len(frame))]
    assert identical_stealth(frame) == {("d", "loss"): 8.0}
    assert identical_stealth(_cleaning_frame(0.05, 0.17)) == {}
    res = summarise_cleaning(load_config("cleaning", quick=True), frame, {})
    stealth = res.table[res.table.flips == "stealth"]
    assert len(stealth) == 1 and "identical" in stealth.method.iloc[0]
    assert "identical" in res.headline
