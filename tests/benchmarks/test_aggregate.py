"""Statistics, normalisation, tables and curves of benchmarks.aggregate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from benchmarks import aggregate
from benchmarks.aggregate import (
    AGGREGATE_TASK,
    area_under_curve,
    bootstrap_ci,
    curve_bands,
    final_score,
    format_summary_table,
    interpolate_curve,
    iqm,
    mean,
    normalize,
    run_table,
    stratified_bootstrap_ci,
    summarize,
)


def _evaluations(steps: list[int], returns: list[float], **keys: object) -> pd.DataFrame:
    return pd.DataFrame({"global_step": steps, "mean_return": returns, "std_return": 0.0, "num_episodes": 5, **keys})


# --- IQM -------------------------------------------------------------------------------------------------------------


def test_iqm_drops_a_quarter_from_each_end():
    # sorted: -50 0 | 3 4 5 6 | 10 100
    assert iqm([10, -50, 3, 4, 100, 5, 0, 6]) == pytest.approx(4.5)
    # n = 5 drops floor(5 / 4) = 1 from each end: mean(2, 3, 4)
    assert iqm([4, 100, 1, 3, 2]) == pytest.approx(3.0)
    # n < 4 drops nothing
    assert iqm([1.0, 2.0, 9.0]) == pytest.approx(4.0)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 13, 20, 101])
def test_iqm_matches_scipy_trim_mean(n):
    x = np.random.default_rng(n).standard_cauchy(size=(n, 3))
    np.testing.assert_allclose(iqm(x, axis=0), stats.trim_mean(x, 0.25, axis=0))
    np.testing.assert_allclose(iqm(x.T, axis=1), stats.trim_mean(x.T, 0.25, axis=1))


def test_iqm_of_empty_sample_raises():
    with pytest.raises(ValueError, match="empty"):
        iqm([])


# --- bootstrap -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("statistic", [mean, iqm])
def test_bootstrap_ci_contains_the_point_estimate(statistic):
    scores = np.random.default_rng(0).normal(100.0, 20.0, size=10)
    estimate = bootstrap_ci(scores, statistic, reps=1000, seed=1)
    assert estimate.point == pytest.approx(float(statistic(scores)))
    assert estimate.lo < estimate.point < estimate.hi


def test_bootstrap_ci_narrows_with_more_seeds():
    few = np.array([3.0, 7.0, 1.0, 9.0, 5.0])
    many = np.tile(few, 20)  # same spread, 20x the seeds: the width shrinks by about sqrt(20)
    few_ci, many_ci = bootstrap_ci(few, reps=2000), bootstrap_ci(many, reps=2000)
    assert many_ci.point == few_ci.point
    assert many_ci.hi - many_ci.lo < 0.4 * (few_ci.hi - few_ci.lo)


def test_bootstrap_ci_is_reproducible_with_its_seed():
    scores = [[1.0, 5.0, 2.0, 8.0], [10.0, 30.0, 20.0]]
    first = stratified_bootstrap_ci(scores, iqm, reps=500, seed=7)
    assert stratified_bootstrap_ci(scores, iqm, reps=500, seed=7) == first
    assert stratified_bootstrap_ci(scores, iqm, reps=500, seed=8) != first


def test_bootstrap_ci_level_sets_the_width():
    scores = np.random.default_rng(0).normal(size=20)
    wide = bootstrap_ci(scores, confidence=0.99)
    narrow = bootstrap_ci(scores, confidence=0.5)
    assert wide.lo < narrow.lo < narrow.hi < wide.hi


def test_stratified_bootstrap_resamples_within_tasks():
    # Each task is constant across seeds, so resampling seeds within a task never changes the pooled sample:
    # the stratified interval collapses to the point. Pooling the tasks first would mix 0s and 100s freely.
    task_a, task_b = np.zeros(3), np.full(3, 100.0)
    stratified = stratified_bootstrap_ci([task_a, task_b], mean, reps=1000)
    assert stratified == (50.0, 50.0, 50.0)
    unstratified = bootstrap_ci(np.concatenate([task_a, task_b]), mean, reps=1000)
    assert unstratified.point == 50.0
    assert unstratified.lo < 40.0 and unstratified.hi > 60.0


def test_stratified_bootstrap_keeps_trailing_axes():
    curves = np.random.default_rng(0).normal(size=(6, 4))  # 6 seeds x 4 grid steps
    estimate = bootstrap_ci(curves, mean, reps=300)
    assert estimate.point.shape == estimate.lo.shape == estimate.hi.shape == (4,)
    np.testing.assert_allclose(estimate.point, curves.mean(axis=0))
    assert np.all(estimate.lo <= estimate.point) and np.all(estimate.point <= estimate.hi)


def test_bootstrap_needs_runs_in_every_stratum():
    with pytest.raises(ValueError, match="at least one run"):
        stratified_bootstrap_ci([[1.0], []])


def _reference_resample(strata: list[list[float]], reps: int, rng: np.random.Generator) -> list[list[float]]:
    """The stratified bootstrap written out one resample and one stratum at a time (the draws' order is the
    generator's: all resamples of the first stratum, then of the next)."""
    draws = [rng.integers(0, len(stratum), size=(reps, len(stratum))) for stratum in strata]
    return [
        [float(stratum[i]) for stratum, indices in zip(strata, draws, strict=True) for i in indices[rep]]
        for rep in range(reps)
    ]


def test_stratified_bootstrap_ci_is_the_percentile_interval_of_the_written_out_resamples():
    strata = [[1.0, 5.0, 2.0, 8.0], [10.0, 30.0, 20.0]]
    resamples = _reference_resample(strata, 300, np.random.default_rng(3))
    expected = np.percentile([stats.trim_mean(resample, 0.25) for resample in resamples], [5.0, 95.0])
    estimate = stratified_bootstrap_ci(strata, iqm, reps=300, confidence=0.9, seed=3)
    assert estimate.point == pytest.approx(stats.trim_mean(strata[0] + strata[1], 0.25))
    assert (estimate.lo, estimate.hi) == pytest.approx(tuple(expected), rel=1e-12)


def test_bootstrap_difference_ci_resamples_both_samples_from_one_generator():
    era, baseline = [[2.0, 2.5, 1.0], [7.0, 9.0]], [[1.0, 0.5, 1.5], [8.0, 6.0]]
    rng = np.random.default_rng(11)
    era_means = [np.mean(resample) for resample in _reference_resample(era, 400, rng)]
    baseline_means = [np.mean(resample) for resample in _reference_resample(baseline, 400, rng)]
    expected = np.percentile(np.subtract(era_means, baseline_means), [2.5, 97.5])
    estimate = aggregate.bootstrap_difference_ci(era, baseline, reps=400, confidence=0.95, seed=11)
    assert estimate.point == pytest.approx(np.mean(era[0] + era[1]) - np.mean(baseline[0] + baseline[1]))
    assert (estimate.lo, estimate.hi) == pytest.approx(tuple(expected), rel=1e-12)
    with pytest.raises(ValueError, match="at least one run"):
        aggregate.bootstrap_difference_ci(era, [[1.0], []])


# --- per-run scores and normalisation --------------------------------------------------------------------------------


def test_final_score_averages_the_last_k_evaluations_in_step_order():
    evaluations = _evaluations([300, 100, 200], [30.0, 10.0, 20.0])
    assert final_score(evaluations) == 30.0
    assert final_score(evaluations, last_k=2) == 25.0
    with pytest.raises(ValueError, match="last_k"):
        final_score(evaluations, last_k=0)


def test_area_under_curve_is_the_step_weighted_average_return():
    # Trapezoids over [0, 100] (mean 5) and [100, 300] (mean 15): (500 + 3000) / 300.
    assert area_under_curve(_evaluations([0, 100, 300], [0.0, 10.0, 20.0])) == pytest.approx(3500 / 300)
    assert area_under_curve(_evaluations([100], [7.0])) == 7.0


def test_normalize_uses_the_humanoidbench_success_thresholds():
    assert normalize(700.0, "h1hand-walk-v0") == pytest.approx(1.0)
    assert normalize(400.0, "h1hand-stand-v0") == pytest.approx(0.5)  # stand's threshold is 800
    np.testing.assert_allclose(normalize(np.array([0.0, 350.0]), "h1hand-hurdle-v0"), [0.0, 0.5])


def test_normalize_returns_none_without_a_documented_reference():
    assert normalize(3000.0, "Hopper-v5") is None


def test_normalize_with_a_random_and_reference_pair():
    references = {"Toy-v0": aggregate.Reference(low=-100.0, high=900.0, source="test")}
    assert normalize(400.0, "Toy-v0", references) == pytest.approx(0.5)


def test_run_table_has_one_row_per_run_with_nan_normalisation_when_raw():
    evaluations = pd.concat(
        [
            _evaluations([100, 200], [1.0, 3.0], group="g", task="Hopper-v5", algorithm="PPO", seed=0),
            _evaluations([100, 200], [350.0, 560.0], group="g", task="h1hand-walk-v0", algorithm="PPO", seed=0),
        ]
    )
    runs = run_table(evaluations)
    assert list(runs["final_score"]) == [3.0, 560.0]
    assert np.isnan(runs["normalized_score"].iloc[0])
    assert runs["normalized_score"].iloc[1] == pytest.approx(0.8)
    assert list(runs["final_step"]) == [200, 200]


def _runs(task_scores: dict[str, dict[str, list[float]]], group: str = "g") -> pd.DataFrame:
    rows = [
        {"group": group, "task": task, "algorithm": algorithm, "seed": seed, "final_score": score}
        for task, per_algorithm in task_scores.items()
        for algorithm, scores in per_algorithm.items()
        for seed, score in enumerate(scores)
    ]
    runs = pd.DataFrame(rows)
    runs["normalized_score"] = [
        np.nan if (n := normalize(s, t)) is None else n for s, t in zip(runs["final_score"], runs["task"], strict=True)
    ]
    return runs


def test_summarize_aggregates_normalised_scores_when_every_task_has_a_reference():
    runs = _runs({"h1hand-walk-v0": {"SAC": [700.0, 350.0]}, "h1hand-stand-v0": {"SAC": [800.0, 800.0]}})
    summary = summarize(runs, reps=200)
    per_task = summary[summary["task"] != AGGREGATE_TASK]
    assert list(per_task["mean"]) == [525.0, 800.0]  # per-task rows stay in raw return
    aggregate_row = summary[summary["task"] == AGGREGATE_TASK].iloc[0]
    assert aggregate_row["scale"] == "normalised"
    assert aggregate_row["mean"] == pytest.approx((1.0 + 0.5 + 1.0 + 1.0) / 4)
    assert aggregate_row["runs"] == 4


def test_summarize_falls_back_to_raw_returns_when_a_reference_is_missing():
    runs = _runs({"h1hand-walk-v0": {"SAC": [700.0]}, "Hopper-v5": {"SAC": [3000.0]}})
    aggregate_row = summarize(runs, reps=200).query("task == @AGGREGATE_TASK").iloc[0]
    assert aggregate_row["scale"] == "raw return"
    assert aggregate_row["mean"] == pytest.approx(1850.0)


# --- tables ----------------------------------------------------------------------------------------------------------


def test_format_summary_table_exact_markdown():
    columns = [
        *("group", "task", "algorithm", "scale", "runs", "mean", "mean_lo", "mean_hi", "iqm", "iqm_lo", "iqm_hi"),
        "seed_scores",
    ]
    summary = pd.DataFrame(
        [
            ["g", "Hopper-v5", "PPO", "return", 3, 1234.56, 1100.0, 1300.4, 1230.0, 1100.0, 1300.4, ((0, 1100.0),)],
            ["g", AGGREGATE_TASK, "PPO", "normalised", 6, 0.8412, 0.8, 0.9, 0.85, 0.79, 0.91, ()],
            [
                "g",
                "Hopper-v5",
                "PPO-ERA",
                "return",
                3,
                512.34,
                480.0,
                530.55,
                512.34,
                480.0,
                530.55,
                ((1, 5.5), (2, 480)),
            ],
        ],
        columns=columns,
    )
    expected = (
        "| Task | Algorithm | Mean [95% CI] | IQM [95% CI] | Runs | Every seed |\n"
        "|---|---|---|---|---|---|\n"
        "| Hopper-v5 | PPO | 1235 [1100, 1300] | 1230 [1100, 1300] | 3 | s0 1100 |\n"
        "| Hopper-v5 | PPO-ERA | 512.3 [480.0, 530.5] | 512.3 [480.0, 530.5] | 3 | s1 5.50, s2 480.0 |\n"
        "| **Aggregate** (normalised) | PPO | 0.84 [0.80, 0.90] | 0.85 [0.79, 0.91] | 6 |  |"
    )
    assert format_summary_table(summary) == expected


def test_summarize_lists_every_seeds_final_score_in_seed_order():
    runs = _runs({"Hopper-v5": {"PPO": [30.0, 10.0, 20.0]}}).iloc[[2, 0, 1]]
    summary = summarize(runs, reps=100)
    per_task, aggregate_row = summary.iloc[0], summary.iloc[1]
    assert per_task["seed_scores"] == ((0, 30.0), (1, 10.0), (2, 20.0))
    assert aggregate_row["task"] == AGGREGATE_TASK and aggregate_row["seed_scores"] == ()


def test_format_summary_table_states_the_confidence_level():
    summary = summarize(_runs({"Hopper-v5": {"PPO": [1.0, 2.0]}}), reps=100, confidence=0.9)
    assert format_summary_table(summary, confidence=0.9).startswith("| Task | Algorithm | Mean [90% CI] |")


# --- curves ----------------------------------------------------------------------------------------------------------


def test_interpolate_curve_is_linear_inside_and_nan_outside():
    curve = interpolate_curve([20, 0, 10], [40.0, 0.0, 10.0], [-5, 0, 5, 15, 20, 25])
    np.testing.assert_allclose(curve, [np.nan, 0.0, 5.0, 25.0, 40.0, np.nan])


def test_curve_bands_average_seeds_on_the_common_step_range():
    evaluations = pd.concat(
        [
            _evaluations([0, 100, 200], [0.0, 10.0, 20.0], group="g", task="T", algorithm="A", seed=0),
            _evaluations([50, 150, 250], [15.0, 25.0, 35.0], group="g", task="T", algorithm="A", seed=1),
        ]
    )
    bands = curve_bands(evaluations, num_points=4, reps=200)
    # Common range: from the latest first evaluation (50) to the earliest last one (200).
    np.testing.assert_allclose(bands["step"], [50.0, 100.0, 150.0, 200.0])
    # Seed 0 is 0.1 * step, seed 1 is 0.1 * step + 10: the mean is 0.1 * step + 5.
    np.testing.assert_allclose(bands["mean"], [10.0, 15.0, 20.0, 25.0])
    assert np.all(bands["lo"] <= bands["mean"]) and np.all(bands["mean"] <= bands["hi"])
    np.testing.assert_allclose(bands["hi"] - bands["lo"], 10.0)  # two seeds 10 apart: CI spans both
    assert set(bands["runs"]) == {2}


# --- strict CSV reading ----------------------------------------------------------------------------------------------

HEADER = "global_step,mean_return,std_return,num_episodes\n"


def _problems(tmp_path, text: str) -> tuple[pd.DataFrame, list[str]]:
    path = tmp_path / "evaluations.csv"
    path.write_text(text)
    frame, problems = aggregate.check_evaluations(tmp_path)
    return frame, [f"{p.line}: {p.reason}" for p in problems]


def test_strict_csv_keeps_complete_rows(tmp_path):
    frame, problems = _problems(tmp_path, HEADER + "1000,-500.5,3.0,10\n2000,-1066.25,4.0,10\n")
    assert problems == []
    assert list(frame["mean_return"]) == [-500.5, -1066.25]
    assert frame["global_step"].dtype.kind == "i"


def test_strict_csv_names_a_row_with_an_extra_field(tmp_path):
    frame, problems = _problems(tmp_path, HEADER + "1000,-500.5,3.0,10,7\n2000,-1066.25,4.0,10\n")
    assert problems == ["2: 5 fields, expected 4 (global_step,mean_return,std_return,num_episodes)"]
    assert list(frame["global_step"]) == [2000]


def test_strict_csv_names_a_row_with_missing_fields(tmp_path):
    # The case: the true final row "2000,-1066,..." arrived as "2000,-10".
    _, problems = _problems(tmp_path, HEADER + "1000,-500.5,3.0,10\n2000,-10\n")
    assert problems == ["3: 2 fields, expected 4 (global_step,mean_return,std_return,num_episodes)"]


def test_strict_csv_names_a_last_row_without_line_break(tmp_path):
    _, problems = _problems(tmp_path, HEADER + "1000,-500.5,3.0,10\n2000,-1066.25,4.0,1")
    # "...,4.0,10" lost its last character: four valid-looking fields, but the row never got its line break.
    assert problems == [
        "3: row '2000,-1066.25,4.0,1' is cut off (no line break): the file was truncated while being written"
    ]


def test_strict_csv_names_garbage(tmp_path):
    _, problems = _problems(tmp_path, HEADER + "\x00\x00garbage\n")
    assert problems == ["2: 1 fields, expected 4 (global_step,mean_return,std_return,num_episodes)"]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "abc", ""])
def test_strict_csv_names_a_return_that_is_not_a_finite_number(tmp_path, value):
    frame, problems = _problems(tmp_path, HEADER + f"1000,{value},3.0,10\n")
    assert len(problems) == 1 and problems[0].startswith(f"2: mean_return is {value!r}, not a")
    assert frame.empty


def test_strict_csv_names_a_header_without_rows(tmp_path):
    assert _problems(tmp_path, HEADER)[1] == ["1: header only: no rows"]


def test_strict_csv_names_a_wrong_header(tmp_path):
    _, problems = _problems(tmp_path, "step,return\n1000,3.0\n")
    assert problems == ["1: header is 'step,return', expected 'global_step,mean_return,std_return,num_episodes'"]


def test_strict_csv_names_steps_that_go_backwards(tmp_path):
    _, problems = _problems(tmp_path, HEADER + "2000,1.0,0.0,10\n1000,2.0,0.0,10\n")
    assert problems == ["3: global_step 1000 does not come after the previous row's 2000"]


def test_strict_csv_missing_file(tmp_path):
    frame, problems = aggregate.check_evaluations(tmp_path)
    assert frame.empty and [str(p) for p in problems] == [f"{tmp_path / 'evaluations.csv'}: missing"]


def test_load_evaluations_raises_naming_file_and_line(tmp_path):
    (tmp_path / "evaluations.csv").write_text(HEADER + "1000,nan,3.0,10\n")
    with pytest.raises(ValueError, match=r"evaluations\.csv:2: mean_return is 'nan'"):
        aggregate.load_evaluations(tmp_path)


def test_summarize_refuses_a_non_finite_final_score_naming_the_run():
    runs = _runs({"Hopper-v5": {"PPO": [1.0, float("nan")], "PPO-ERA": [2.0]}})
    with pytest.raises(ValueError, match=r"not finite.*'algorithm': 'PPO', 'seed': 1"):
        summarize(runs, reps=100)


# --- entropy floor ---------------------------------------------------------------------------------------------------


def _entropy(**columns: list[float]) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    base = {"group": "g", "task": "T", "algorithm": "SAC-ERA", "seed": 0, "global_step": list(range(1, n + 1))}
    base.update(target_entropy=[-3.0] * n, activation_target=[-2.4] * n, delta=[0.1] * n)
    base.update(gaussian_entropy_mean=[-1.0] * n, bounded_entropy_mean=[-2.0] * n)
    return pd.DataFrame({**base, **columns})


def test_entropy_floor_held_when_every_batch_minimum_reaches_the_activation_target():
    row = aggregate.entropy_floor_table(_entropy(gaussian_entropy_min=[-2.4, -2.0, -1.5])).iloc[0]
    assert row["floor_held"] and row["batches_below_floor"] == 0
    assert row["floor_margin_min"] == pytest.approx(0.0)
    assert row["truncation_gap_mean"] == pytest.approx(1.0) and row["truncation_gap_max"] == pytest.approx(1.0)


def test_entropy_floor_counts_a_batch_between_h0_and_the_target_with_delta_as_broken():
    # -2.7 is above H0 = -3 but below the activation target H0 + D * delta = -2.4: the activation's guarantee failed.
    row = aggregate.entropy_floor_table(_entropy(gaussian_entropy_min=[-2.0, -2.7, -2.0])).iloc[0]
    assert not row["floor_held"] and row["batches_below_floor"] == 1
    assert row["floor_margin_min"] == pytest.approx(-0.3)


def test_entropy_floor_reports_how_far_truncation_pulled_below_h0():
    table = _entropy(gaussian_entropy_min=[-2.0, -2.0], bounded_entropy_mean=[-2.5, -3.5])
    row = aggregate.entropy_floor_table(table).iloc[0]
    assert row["bounded_below_h0"] == pytest.approx(0.5)
    assert row["bounded_margin_min"] == pytest.approx(-0.5)
    assert row["truncation_gap_max"] == pytest.approx(2.5)


def test_entropy_floor_is_not_applicable_without_era():
    nan = [float("nan")] * 2
    table = _entropy(gaussian_entropy_min=[-1.0, -1.0], target_entropy=nan, activation_target=nan, delta=nan)
    row = aggregate.entropy_floor_table(table).iloc[0]
    assert row["floor_held"] is None and np.isnan(row["floor_margin_min"])
    assert "n/a (no floor)" in aggregate.format_entropy_table(aggregate.entropy_floor_table(table))


def test_entropy_csv_empty_cells_are_read_as_not_applicable(tmp_path):
    header = ",".join(aggregate.ENTROPY_HEADER) + "\n"
    (tmp_path / "entropy.csv").write_text(header + "1000,,,-1.5,-1.0,-1.2,\n")
    frame, problems = aggregate.check_entropy(tmp_path)
    assert problems == [] and np.isnan(frame["delta"].iloc[0]) and frame["bounded_entropy_mean"].iloc[0] == -1.2


# --- ours against the paper ------------------------------------------------------------------------------------------


def _claim_runs(baseline: list[float], era: list[float]) -> pd.DataFrame:
    return _runs({"Hopper-v5": {"PPO": baseline, "PPO-ERA": era}})


def test_paper_comparison_reproduces_when_the_difference_ci_is_above_zero():
    [row] = aggregate.paper_comparison(_claim_runs([1.0, 1.1, 0.9], [2.0, 2.1, 1.9]), {"g": 1000}, reps=500).to_dict(
        "records"
    )
    assert row["claim"] == "PPO -> PPO-ERA" and row["verdict"] == "reproduces"
    assert row["ours_difference"] == pytest.approx(1.0) and row["paper_difference"] == pytest.approx(0.31)
    assert row["ours_scale"] == "raw return"


def test_paper_comparison_contradicts_when_the_difference_ci_is_below_zero():
    comparison = aggregate.paper_comparison(_claim_runs([2.0, 2.1, 1.9], [1.0, 1.1, 0.9]), {"g": 1000}, reps=500)
    assert comparison["verdict"].tolist() == ["contradicts"]


def test_paper_comparison_is_too_small_to_tell_when_the_ci_contains_zero():
    comparison = aggregate.paper_comparison(_claim_runs([1.0, 3.0, 2.0], [2.5, 1.0, 2.0]), {"g": 1000}, reps=500)
    assert comparison["verdict"].tolist() == ["too small to tell"]
    table = aggregate.format_paper_table(comparison)
    assert "0.57 -> 0.88 (normalised), MuJoCo Gym, 4 tasks, 3M steps: +0.31" in table
    assert "**too small to tell**" in table


def test_paper_comparison_gives_no_verdict_below_three_seeds_per_task_however_large_the_gap():
    runs = _runs(
        {
            "HalfCheetah-v5": {"PPO": [4000.0, 4100.0, 3900.0], "PPO-ERA": [5000.0, 5100.0, 4900.0]},
            "Hopper-v5": {"PPO": [400.0], "PPO-ERA": [1300.0]},  # one seed: a bootstrap of zero width
        }
    )
    [row] = aggregate.paper_comparison(runs, {"g": 1000}, reps=500).to_dict("records")
    assert row["ours_difference_lo"] > 0  # the interval alone would have said "reproduces"
    assert row["verdict"] == "too small to tell (1 seed on some task; a verdict needs 3)"


def test_paper_comparison_is_mixed_when_tasks_disagree_whatever_the_raw_return_mean_says():
    # ERA far ahead on a task with large returns and clearly behind on one with small returns: the raw-return mean
    # favours ERA, the tasks disagree.
    runs = _runs(
        {
            "HalfCheetah-v5": {"PPO": [0.0, 10.0, 5.0], "PPO-ERA": [2000.0, 2010.0, 1990.0]},
            "Hopper-v5": {"PPO": [400.0, 410.0, 405.0], "PPO-ERA": [300.0, 310.0, 305.0]},
        }
    )
    [row] = aggregate.paper_comparison(runs, {"g": 1000}, reps=500).to_dict("records")
    assert row["ours_difference_lo"] > 0
    assert row["verdict"] == "mixed (ERA ahead on HalfCheetah-v5; behind on Hopper-v5)"


def test_paper_comparison_says_a_claim_is_not_tested_on_other_tasks():
    runs = _runs({"HalfCheetah-v5": {"SAC": [1.0, 1.1, 0.9], "SAC-ERA": [2.0, 2.1, 1.9]}})
    [row] = aggregate.paper_comparison(runs, {"g": 1000}, reps=500).to_dict("records")
    assert row["claim"] == "SAC -> SAC-ERA"  # the paper's claim is on HumanoidBench
    assert row["verdict"] == "not tested: other tasks than the paper's (reproduces here)"


def test_paper_comparison_skips_groups_without_a_baseline_and_its_era_variant():
    assert aggregate.paper_comparison(_runs({"Hopper-v5": {"PPO": [1.0]}}), {"g": 1000}).empty


def test_paper_comparison_reports_the_target_1_variant_as_its_own_row_named_as_chosen_after_seeing_results():
    scores = {"PPO": [1.0, 1.1, 0.9], "PPO-ERA": [0.5, 0.6, 0.4], "PPO-ERA (target 1)": [2.0, 2.1, 1.9]}
    runs = _runs({"Hopper-v5": scores})
    comparison = aggregate.paper_comparison(runs, {"g": 1000}, reps=500).set_index("claim")
    assert comparison.loc["PPO -> PPO-ERA", "verdict"] == "contradicts"
    row = comparison.loc["PPO -> PPO-ERA (target 1; chosen after seeing results)"]
    assert row["verdict"] == "reproduces" and row["ours_difference"] == pytest.approx(1.0)
    assert row["ours_baseline"] == pytest.approx(1.0)  # the same PPO runs as the default's row
