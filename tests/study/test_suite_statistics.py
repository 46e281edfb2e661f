"""A suite report's statistics on hand-built records: budget checks, ranks over tuned
models only, knob importances against a permutation null, and the answer they allow."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.stats import friedmanchisquare

from study.report._suite_checks import budget_checks
from study.report._suite_data import DatasetResults
from study.report._suite_importance import (
    MIN_FINISHED,
    KnobImportances,
    knob_importances,
    knob_sentence,
    permutation_importance,
)
from study.report._suite_stats import compare_dataset, suite_ranks
from study.suite import TunedStudy, UnitRecord, load_suite

SUITE = """
name: stats
datasets: [power_plant, adult, magic_gamma]
models: [actmix, relu, gelu]
references:
  relu-default: {model: relu}
protocol: {outer_folds: 2, repeats: 2, inner_folds: 2, seeds: 1}
study: {trials: 12, n_startup_trials: 4, epochs: 30, scheduler: asha}
"""


@pytest.fixture()
def suite(tmp_path: Path):
    path = tmp_path / "stats.yaml"
    path.write_text(SUITE)
    return load_suite(path)


def _record(
    label: str,
    *,
    fold: int = 0,
    study: TunedStudy | None = None,
    best_epoch: int = 5,
    epochs_run: int = 30,
    patience: int = 10,
) -> UnitRecord:
    row = {"seed": 0, "test_rmse": 1.0, "best_epoch": best_epoch, "epochs_run": epochs_run}
    return UnitRecord(
        suite="stats",
        dataset="power_plant",
        dataset_spec="power_plant",
        task="regression",
        label=label,
        model="relu" if label != "actmix" else "actmix",
        kind="tuned" if study is not None else "reference",
        outer_fold=fold,
        outer_folds=2,
        split_seed=0,
        fingerprint="f",
        metric="rmse",
        direction="minimize",
        value=1.0,
        rows=[row],
        config={"train": {"epochs": 30, "patience": patience}},
        study=study,
    )


def _data(label: str, records: list[UnitRecord], **kwargs: Any) -> DatasetResults:
    return DatasetResults(
        label=label,
        metric="rmse",
        lower_is_better=True,
        fingerprints={0: "f"},
        y_true=np.zeros(4),
        records=records,
        **kwargs,
    )


def _study(best: str, complete: int) -> TunedStudy:
    return TunedStudy("s", best, 1.0, "val_rmse_mean", {"COMPLETE": complete, "PRUNED": 2})


def _verdicts(checks) -> dict[tuple[str, str], str]:
    return {(c.check, c.model): c.verdict for c in checks}


def test_budget_checks_against_hand_counts(suite):
    records = [
        # actmix: the seed default won both studies, few finished, models still improving
        _record("actmix", fold=0, study=_study("trial-0000", 3), best_epoch=29),
        _record("actmix", fold=1, study=_study("trial-0000", 5), best_epoch=28),
        # relu: searched and finished enough; best late in one of two studies (1/2 > 1/3)
        _record("relu", fold=0, study=_study("trial-0011", 10), best_epoch=10),
        _record("relu", fold=1, study=_study("trial-0003", 12), best_epoch=10),
        # a reference whose patience can never fire
        _record("relu-default", fold=0, patience=30),
    ]
    checks = budget_checks(suite, {"power_plant": _data("power_plant", records)})
    verdicts = _verdicts(checks)
    assert verdicts[("random search", "all")] == "pass"  # 12 trials > 4 start-up
    assert verdicts[("finished trials", "actmix")] == "fail"  # median 4 < 10
    assert verdicts[("finished trials", "relu")] == "pass"  # median 11
    assert verdicts[("untuned best", "actmix")] == "fail"  # 2 of 2
    assert verdicts[("untuned best", "relu")] == "pass"
    assert verdicts[("late best trial", "relu")] == "fail"  # trial 11 >= 8 of 12
    assert verdicts[("late best trial", "actmix")] == "pass"
    # best epochs 29 and 28 of 30 are in the last tenth (27..29); 10 is not
    assert verdicts[("still improving", "actmix")] == "fail"
    assert verdicts[("still improving", "relu")] == "pass"
    assert verdicts[("patience >= epochs", "relu-default")] == "fail"
    assert verdicts[("patience >= epochs", "relu")] == "pass"
    # grace a third of 30 = 10 epochs; actmix's space anneals until 1.0 x 30
    asha = [c for c in checks if c.check == "ASHA before annealing"]
    assert [(c.model, c.value, c.threshold, c.verdict) for c in asha] == [
        ("actmix", 10, 30, "fail")
    ]
    finished = next(c for c in checks if c.check == "finished trials" and c.model == "actmix")
    assert (finished.value, finished.threshold) == (4.0, MIN_FINISHED)


def test_trials_at_or_below_the_start_up_are_random_search(tmp_path):
    path = tmp_path / "few.yaml"
    path.write_text(SUITE.replace("trials: 12", "trials: 4"))
    checks = budget_checks(load_suite(path), {})
    assert _verdicts(checks) == {("random search", "all"): "fail"}


def _scores(values: dict[str, list[float]]) -> dict[str, dict[tuple[int, int], float]]:
    keys = [(0, 0), (0, 1), (1, 0), (1, 1)]
    return {label: dict(zip(keys, v, strict=True)) for label, v in values.items()}


def test_friedman_ranks_the_tuned_models_only_and_references_stand_beside(suite):
    per_dataset = {}
    table = {
        "power_plant": {"actmix": 1.0, "relu": 2.0, "gelu": 3.0, "relu-default": 0.5},
        "adult": {"actmix": 2.0, "relu": 1.0, "gelu": 3.0, "relu-default": 0.5},
        "magic_gamma": {"actmix": 1.0, "relu": 3.0, "gelu": 2.0, "relu-default": 0.5},
    }
    for dataset, means in table.items():
        scores = _scores({label: [mean] * 4 for label, mean in means.items()})
        per_dataset[dataset] = _data(
            dataset, [], fold_scores=scores, kinds=dict.fromkeys(means, "tuned")
        )
    ranks = suite_ranks(suite, per_dataset)
    assert ranks.tuned is not None
    assert set(ranks.tuned.mean_ranks) == {"actmix", "relu", "gelu"}
    # per model, its rank on each dataset
    expected = friedmanchisquare([1, 2, 1], [2, 1, 3], [3, 3, 2])
    assert ranks.tuned.friedman.p_value == pytest.approx(expected.pvalue)
    assert ranks.to_json()["references"] == {"relu-default": 1.0}  # best row everywhere
    assert not ranks.draw_diagram and "does not reject" in (ranks.diagram_note or "")


def test_comparisons_pair_every_repeat_and_fold(suite):
    scores = _scores(
        {
            "actmix": [1.0, 1.1, 0.9, 1.0],
            "relu": [2.0, 2.1, 1.9, 2.2],
            "gelu": [1.0, 1.2, 0.8, 1.1],
            "relu-default": [1.0, 1.1, 0.9, 1.0],
        }
    )
    del scores["relu-default"][(1, 1)]  # one fold missing: not compared
    data = _data(
        "power_plant",
        [],
        fold_scores=scores,
        kinds={"actmix": "tuned", "relu": "tuned", "gelu": "tuned", "relu-default": "reference"},
        test_sizes=[(1, 1)],
    )
    rows = compare_dataset(suite, data)
    assert [c.b for c in rows] == ["relu", "gelu"]
    relu = rows[0]
    assert relu.test.n == 4 and relu.test.test == "corrected_t"
    assert relu.test.mean_difference == pytest.approx(-1.05)
    assert relu.bootstrap is None  # no pooled predictions were given
    # Holm over the two: the smaller p doubled
    smaller = min(c.test.p_value for c in rows)
    assert min(c.p_holm for c in rows) == pytest.approx(min(1.0, 2 * smaller))


def _history(rng: np.random.Generator, n: int, signal: float) -> list[dict[str, Any]]:
    """n completed trials over x, y, z in [0, 1]; the objective depends on x with weight
    ``signal`` and on nothing else."""
    import optuna

    uniform = optuna.distributions.distribution_to_json(
        optuna.distributions.FloatDistribution(0, 1)
    )
    trials = []
    for number in range(n):
        params = {name: float(rng.uniform()) for name in ("x", "y", "z")}
        value = signal * params["x"] + float(rng.normal())
        trials.append(
            {
                "number": number,
                "state": "COMPLETE",
                "value": value,
                "params": params,
                "distributions": dict.fromkeys(params, uniform),
            }
        )
    return trials


def test_a_random_objective_does_not_beat_the_permutation_null():
    rng = np.random.default_rng(0)
    studies = [_history(rng, 16, signal=0.0) for _ in range(2)]
    tested = permutation_importance(studies, permutations=39, seed=1)
    assert set(tested) == {"x", "y", "z"}
    assert all(p > 0.05 for _, _, p, _ in tested.values()), tested


def test_a_knob_that_drives_the_objective_beats_the_null():
    rng = np.random.default_rng(0)
    studies = [_history(rng, 16, signal=20.0) for _ in range(2)]
    tested = permutation_importance(studies, permutations=39, seed=1)
    importance, null_mean, p_value, count = tested["x"]
    assert p_value == pytest.approx(1 / 40)  # no permutation reached it
    assert importance > null_mean and count == 2


def test_only_studies_with_enough_finished_trials_count():
    rng = np.random.default_rng(3)
    few = _history(rng, MIN_FINISHED - 1, signal=20.0)
    record = _record("actmix", study=_study("trial-0001", MIN_FINISHED - 1))
    data = _data("power_plant", [record], trials={("actmix", (0, 0)): few})
    importances = knob_importances("actmix", {"power_plant": data}, permutations=9)
    assert importances.rows == []
    assert importances.studies == {"power_plant": {"used": 0, "total": 1, "without_history": 0}}
    assert "no knob is distinguishable from noise" in knob_sentence("actmix", importances)


def test_the_answer_names_only_knobs_that_beat_the_null():
    from study.report._suite_importance import KnobImportance

    counts = {"a": {"used": 2, "total": 2, "without_history": 0}}
    rows = [
        KnobImportance("a", "x", 0.6, 0.2, 0.005, 0.015, 2),
        KnobImportance("a", "y", 0.3, 0.25, 0.3, 0.6, 2),
    ]
    sentence = knob_sentence("actmix", KnobImportances(rows, counts, "rule"))
    assert "x 0.60 (null 0.20, Holm p 0.015)" in sentence and " y " not in sentence
    none = knob_sentence("actmix", KnobImportances(rows[1:], counts, "rule"))
    assert "no knob is distinguishable from noise" in none


def test_the_committed_answer_claims_only_what_the_corrected_test_supports():
    import json

    root = Path(__file__).resolve().parents[2] / "results" / "uci3"
    report = json.loads((root / "report.json").read_text())
    claims = {(c["dataset"], c["b"]) for c in report["comparisons"] if c["significant"]}
    assert all(c["test"] == "corrected_t" for c in report["comparisons"])
    # the five bootstrap claims that do not survive the corrected test (issue 24)
    for dropped in [
        ("power_plant", "prepu"),
        ("power_plant", "relu-default"),
        ("adult", "gelu"),
        ("magic_gamma", "actmix-seed-readme"),
        ("magic_gamma", "relu-default"),
    ]:
        assert dropped not in claims
    assert len(claims) == 9
    failed = {c["check"] for c in report["budget_checks"] if c["verdict"] == "fail"}
    assert {"random search", "finished trials", "still improving"} <= failed
    assert report["importances"]["rows"] == []
    assert "no knob is distinguishable from noise" in report["answer"]
    assert not math.isnan(report["ranks"]["friedman_p"])


def test_a_row_with_a_diverged_fold_is_not_tested_and_the_others_are(suite):
    scores = _scores(
        {
            "actmix": [1.0, 1.1, 0.9, 1.0],
            "relu": [2.0, math.nan, 1.9, 2.2],  # every seed of one fold diverged
            "gelu": [2.0, 2.1, 1.9, 2.2],
            "relu-default": [1.0, 1.2, 0.8, 1.1],
        }
    )
    kinds = {"actmix": "tuned", "relu": "tuned", "gelu": "tuned", "relu-default": "reference"}
    data = _data("power_plant", [], fold_scores=scores, kinds=kinds, test_sizes=[(1, 4)])
    rows = {c.b: c for c in compare_dataset(suite, data)}
    assert rows["relu"].test.p_value is None and not rows["relu"].significant
    assert "finite" in (rows["relu"].test.note or "")
    assert rows["gelu"].test.p_value is not None
    # Holm over the two tests that ran
    ran = [rows["gelu"].test.p_value, rows["relu-default"].test.p_value]
    assert min(rows["gelu"].p_holm, rows["relu-default"].p_holm) == pytest.approx(
        min(1.0, 2 * min(ran))
    )


def test_a_session_killed_before_its_end_line_counts_to_its_last_unit(tmp_path):
    from study.report._suite import _with_killed_estimates
    from study.suite import read_sessions, record_session, record_session_start

    record_session_start(tmp_path, started="2026-12-01T10:00:00")
    record_session(tmp_path, started="2026-12-01T10:00:00", seconds=100.0, before=0, after=2)
    record_session_start(tmp_path, started="2026-12-01T11:00:00")  # then kill -9
    record_session_start(tmp_path, started="2026-12-01T12:00:00")
    record_session(tmp_path, started="2026-12-01T12:00:00", seconds=30.0, before=3, after=4)
    sessions = read_sessions(tmp_path)
    assert [s["seconds"] for s in sessions] == [100.0, None, 30.0]
    assert [s.get("ended", True) for s in sessions] == [True, False, True]
    # units recorded during the killed session (and one during the next, not counted)
    recorded = [{"recorded": f"2026-12-01T{t}"} for t in ("11:00:50", "11:01:20", "12:00:10")]
    estimated = _with_killed_estimates(sessions, recorded)
    assert estimated[1]["seconds"] == 80.0 and estimated[1]["estimated"]
    assert [s["seconds"] for s in estimated] == [100.0, 80.0, 30.0]
    # the report's session table needs the unit counts of a killed session too
    assert (estimated[1]["done_before"], estimated[1]["done_after"]) == (0, 2)
