"""The report's helpers: verdicts against confidence intervals over seeds, pivoted tables, identical stealthy flips,
the header and first paragraph, and the figures' labels."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from fairflip._errors import FairflipError
from fairflip.experiments.report import first_paragraph, git_commit, package_versions, verdict_table
from fairflip.experiments.studies import load_config, param_labels, summarise_collective_size, summarise_firm_side
from fairflip.experiments.studies_beyond import cleaning_figure, cleaning_verdict, identical_stealth
from fairflip.experiments.study_kit import StudyResult, fmt, judge, mean_sd, pivot, seed_estimate



def _t95(df: int) -> float:
    """Student-t 95% quantile (the ends of a 90% two-sided interval) from its closed forms (df 1, 2 and 4),
    independent of scipy."""
    p = 0.95
    if df == 1:
        return float(np.tan(np.pi * (p - 0.5)))
    if df == 2:
        return float((2 * p - 1) / np.sqrt(2 * p * (1 - p)))
    alpha = 4 * p * (1 - p)
    q = np.cos(np.arccos(np.sqrt(alpha)) / 3) / np.sqrt(alpha)
    return float(2 * np.sqrt(q - 1))


T95 = {df: _t95(df) for df in (1, 2, 4)}


def test_seed_estimate_matches_the_t_interval():
    for values in ([0.1, 0.3], [0.2, 0.25, 0.15], [1.0, 2.0, 4.0, 8.0, 16.0]):
        v = np.array(values)
        n = len(v)
        half = T95[n - 1] * np.sqrt(((v - v.mean()) ** 2).sum() / (n - 1)) / np.sqrt(n)
        est = seed_estimate(v)
        assert est.n == n and est.mean == pytest.approx(v.mean(), abs=1e-15)
        assert (est.low, est.high) == pytest.approx((v.mean() - half, v.mean() + half), abs=1e-12)
    one = seed_estimate([0.42, np.nan])
    assert one.n == 1 and one.low is None and one.sd is None and "1 seed" in one.text()
    assert seed_estimate([]).n == 0


def test_judge_three_outcomes_and_too_few_seeds():
    # 0.80 +- 2.92 * 0.01 / sqrt(3): [0.783, 0.817]
    tight = [0.79, 0.80, 0.81]
    assert judge(tight, at_least=0.75).holds is True
    assert judge(tight, at_least=0.85).holds is False
    assert judge(tight, at_least=0.80).holds is None                       # straddles
    assert judge(tight, at_least=0.85, tol=0.05).holds is None             # the tolerance widens the criterion
    assert judge(tight, at_least=0.85, tol=0.08).holds is True
    assert judge(tight, at_least=0.70, at_most=0.79).holds is None
    assert judge(tight, at_least=0.70, at_most=0.82).holds is True
    assert judge(tight, at_most=0.70).holds is False
    j = judge([0.9], at_least=0.75)
    assert j.holds is None and "1 seed" in j.reason and "not judged" in j.text()
    with pytest.raises(FairflipError):
        judge(tight)
    with pytest.raises(FairflipError):
        judge(tight, at_least=0.0, tol=-1)


def test_one_seed_has_no_spread():
    assert fmt(0.1234, np.nan) == "0.123" and fmt(0.1234, 0.0041) == "0.123 ± 0.004" and fmt(np.nan) == "n/a"
    frame = pd.DataFrame({"m": ["a", "a", "b"], "x": [1.0, 3.0, 5.0]})
    t = mean_sd(frame, ["m"], ["x"])
    assert t.x_sd.iloc[0] == pytest.approx(np.sqrt(2)) and np.isnan(t.x_sd.iloc[1])
    assert list(t.n_seeds) == [2, 1]


def test_pivot_puts_methods_in_rows_and_budgets_in_columns():
    rows = [dict(dataset="d", method=m, budget_share=b, seed=s, eqod=0.1 * i + 0.01 * s)
            for i, m in enumerate(("rb-prob", "random")) for b in (0.1, 0.5) for s in range(2)]
    rows += [dict(dataset="d", method="oracle", budget_share=0.1, seed=0, eqod=0.05)]
    stats = mean_sd(pd.DataFrame(rows), ["dataset", "method", "budget_share"], ["eqod"])
    wide = pivot(stats, rows=["dataset", "method"], column="budget_share", value="eqod")
    assert list(wide.columns) == ["dataset", "method", "0.1", "0.5", "seeds"]
    got = wide.set_index("method")
    assert got.loc["random", "0.5"] == f"{0.105:.3f} ± {np.std([0.1, 0.11], ddof=1):.3f}"
    assert got.loc["oracle", "0.1"] == "0.050" and got.loc["oracle", "0.5"] == ""
    assert got.loc["rb-prob", "seeds"] == "2" and got.loc["oracle", "seeds"] == "1"


def _cleaning_frame(identical: bool) -> pd.DataFrame:
    rows = []
    for s in range(2):
        rows += [dict(dataset="d", cleaner="loss", method="none", stealth=False, budget_share=np.nan, seed=s,
                      n_flipped=0, recall=np.nan, eqod=0.2, eqod_before=0.2, error=0.3, config_hash=f"n{s}")]
        for i, m in enumerate(("random", "rb-prob")):
            for j, b in enumerate((0.25, 0.5)):
                rows.append(dict(dataset="d", cleaner="loss", method=m, stealth=False, budget_share=b, seed=s,
                                 n_flipped=10 * (j + 1), recall=0.5 + 0.1 * i, eqod=0.1 - 0.01 * i,
                                 eqod_before=0.08, error=0.3, config_hash=f"p{s}{i}{j}"))
                k = 0 if identical else i + 2 * j
                rows.append(dict(dataset="d", cleaner="loss", method=m, stealth=True, budget_share=b, seed=s,
                                 n_flipped=4 + k, recall=0.1, eqod=0.15 - 0.01 * k, eqod_before=0.14, error=0.3,
                                 config_hash=f"s{s}{i}{j}"))
    return pd.DataFrame(rows)


def test_identical_stealth_rows_are_detected_and_drawn_once():
    same, varied = _cleaning_frame(True), _cleaning_frame(False)
    assert identical_stealth(same) == {("d", "loss"): 4.0}
    assert identical_stealth(varied) == {}
    # through the flipped sets in the records: one differing set on one seed is enough to tell them apart
    records = {h: {"extra": {"flipped": [1, 2, 3, 4]}} for h in same.config_hash}
    assert identical_stealth(same, records) == {("d", "loss"): 4.0}
    records["s111"] = {"extra": {"flipped": [1, 2, 3, 5]}}
    assert identical_stealth(same, records) == {}
    found = identical_stealth(same)
    text = cleaning_verdict(same, found)
    assert "identical for every strategy and budget" in text and "nothing is pooled" in text
    assert "identical" not in cleaning_verdict(varied, identical_stealth(varied))
    fig = cleaning_figure(same, found)
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert sum("stealth" in lab for lab in labels) == 1 and "stealth, every strategy (identical: 4 flips)" in labels
    fig2 = cleaning_figure(varied, {})
    assert sum("stealth" in line.get_label() for line in fig2.axes[0].get_lines()) == 2


def test_firm_side_verdict_needs_more_than_a_hair_of_error():
    """The issue's case: a 0.001 error difference with a seed spread of 0.009 is not a verdict."""
    cfg = load_config("firm_side", quick=True)
    rng = np.random.default_rng(3)
    noise = rng.normal(0, 0.009, size=(3, 2))

    def frame(extra_error):
        rows = []
        for s in range(3):
            rows.append(dict(dataset="d", method="none", seed=s, budget_share=np.nan, eqod=0.2, error=0.30))
            rows.append(dict(dataset="d", method="threshold-optimizer", seed=s, budget_share=np.nan, eqod=0.01,
                             error=0.31 + extra_error + noise[s, 0]))
            rows.append(dict(dataset="d", method="rb-prob", seed=s, budget_share=0.5, eqod=0.05,
                             error=0.31 + noise[s, 1]))
        return pd.DataFrame(rows)

    assert summarise_firm_side(cfg, frame(0.001), {}).holds is None
    assert summarise_firm_side(cfg, frame(0.15), {}).holds is True
    assert summarise_firm_side(cfg, frame(-0.15), {}).holds is False


def test_collective_size_draws_flip_all_once():
    cfg = load_config("collective_size", quick=True)
    rows = []
    for s in range(3):
        rows.append(dict(dataset="d", method="none", collective_fraction=0.1, budget_share=np.nan, seed=s,
                         eqod=0.3, error=0.2))
        for m in ("rb-prob", "rb-label", "rb-dist", "random"):
            for f in (0.1, 0.3):
                rows += [dict(dataset="d", method=m, collective_fraction=f, budget_share=b, seed=s,
                              eqod=0.1 + 0.01 * len(m) + b / 10, error=0.2) for b in (0.5, 1.0)]
    res = summarise_collective_size(cfg, pd.DataFrame(rows), {})
    labels = [c.get_label() for c in res.figures["collective_size"].axes[0].containers]
    assert labels.count("flip every candidate (any strategy)") == 1
    assert sum("best budget" in lab for lab in labels) == 4
    assert "Error bars" in res.captions["collective_size"]


def test_param_labels_are_readable():
    params = ['{"gradient": "implicit", "local_search": false, "surrogate": "hinge"}',
              '{"gradient": "unrolled", "local_search": false, "surrogate": "hinge"}']
    assert param_labels(params) == {params[0]: "implicit", params[1]: "unrolled"}
    assert param_labels(["{}"]) == {"{}": "defaults"}


def _result(name: str, holds, headline: str, quick: bool = True) -> StudyResult:
    return StudyResult(load_config(name, quick=quick), pd.DataFrame(), {}, "v", holds, headline=headline)


def test_first_paragraph_sorts_the_claims_and_names_the_sizes():
    results = [_result("toy", False, "toy cut 36%"), _result("collective_size", True, "saturates"),
               _result("flips", None, "CI straddles"), _result("gap", None, "oracle wins")]
    text = first_paragraph(results)
    assert re.search(r"Reproduced: study 2 \(collective size: saturates\)", text)
    assert re.search(r"Not reproduced: study 1 \(toy: toy cut 36%\)", text)
    assert "Not judged" in text and "study 3 (flips: CI straddles)" in text
    assert "Beyond the paper (no claim to test): study 7" in text
    assert "the quick run subsamples" in text and "adult: 6,000 rows" in text and "compas: 1,500 rows, all rows" in text
    table = verdict_table(results)
    assert list(table["here"]) == ["not reproduced", "reproduced", "not judged", "extension (no claim)"]


def test_header_facts(tmp_path):
    commit = git_commit()
    assert commit == "unknown" or re.fullmatch(r"[0-9a-f]{40}( \+ uncommitted changes)?", commit)
    assert git_commit(tmp_path) == "unknown"
    versions = package_versions()
    for pkg in ("numpy", "torch", "scikit-learn", "cvxpy", "highspy", "fairlearn", "fairflip"):
        assert versions[pkg] and versions[pkg] != "not installed"


def test_gap_figure_draws_certified_bounds_over_budgets():
    from fairflip.experiments.studies import summarise_gap

    cfg = load_config("gap", quick=True)
    rows = []
    for s in range(3):
        rows.append(dict(dataset="d", method="none", seed=s, budget_share=np.nan, n_flipped=0, objective=0.3,
                         eqod=0.3, lower_bound=np.nan))
        for b in (0.1, 0.3):
            rows.append(dict(dataset="d", method="rb-prob", seed=s, budget_share=b, n_flipped=10, objective=0.2 - b / 4,
                             eqod=0.25, lower_bound=np.nan))
            rows.append(dict(dataset="d", method="oracle-convex", seed=s, budget_share=b, n_flipped=10,
                             objective=0.15 - b / 4 + 0.01 * s, eqod=0.2, lower_bound=0.1 - b / 4 + 0.01 * s))
    frame = pd.DataFrame(rows).assign(error=0.3)
    res = summarise_gap(cfg, frame, {})
    ax, ax_gap = res.figures["gap"].axes[:2]
    bound = [line for line in ax.get_lines() if line.get_label() == "certified lower bound"]
    assert len(bound) == 1
    np.testing.assert_allclose(bound[0].get_xdata(), [0.1, 0.3])
    np.testing.assert_allclose(bound[0].get_ydata(), [0.1 - 0.1 / 4 + 0.01, 0.1 - 0.3 / 4 + 0.01], atol=1e-12)
    # the gap panel: rb-prob minus the best oracle is 0.05 - 0.01 s on seed s, 0.04 on average at every budget
    gap = next(c for c in ax_gap.containers if c.get_label() == "rb-prob")
    np.testing.assert_allclose(gap.lines[0].get_ydata(), [0.04, 0.04], atol=1e-12)
    assert "certified lower bound" in res.captions["gap"] and any("Certified" in t for t in res.tables)
    none = summarise_gap(cfg, frame.assign(lower_bound=np.nan), {})
    assert "no certified bound was reported" in none.captions["gap"]
    assert not any(line.get_label() == "certified lower bound" for line in none.figures["gap"].axes[0].get_lines())
