"""``actmix-study suite``: the suite file's checks, a tiny nested-CV suite end to end, and
the nested-CV leak test (the outer-test rows of a fold never reach its study or members).
"""

from __future__ import annotations

import json
import re
import shutil
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from study.report import markers, render_markdown, replace_block
from study.run import ORPHAN_FAILURE, ORPHAN_REASON
from study.suite import (
    determinants,
    load_suite,
    read_trials,
    read_unit,
    run_suite,
    suite_directory,
    suite_progress,
    suite_units,
)

# ---------------------------------------------------------------------------- suite files


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


GOOD = """
name: s1
datasets: [power_plant]
models: [actmix, relu]
references:
  seed: {model: actmix, config: {mlp.activation.relu_bias: 1.5}}
protocol: {outer_folds: 3, inner_folds: 2, seeds: 1}
study: {trials: 2, epochs: 3}
"""


def test_a_good_suite_file_is_read_with_defaults(tmp_path):
    suite = load_suite(_write(tmp_path / "s.yaml", GOOD))
    assert suite.name == "s1" and suite.focus == "actmix"
    assert suite.labels == ("actmix", "relu", "seed")
    assert suite.protocol.split_seed == 0 and suite.study.scheduler == "asha"
    units = list(suite_units(suite))
    # 3 outer folds x (2 tuned + 1 reference)
    assert len(units) == 9 and len(set(units)) == 9
    # ASHA's grace period defaults to a third of the epochs; TPE's start-up to run's default
    assert suite.study.grace == 1 and suite.study.n_startup_trials == 10
    assert suite.protocol.repeats == 1


def test_an_ensemble_adds_a_row_per_tuned_model_after_its_study(tmp_path):
    suite = load_suite(_write(tmp_path / "s.yaml", GOOD + "ensemble: {top_k: 2}\n"))
    assert suite.labels == ("actmix", "relu", "actmix-ensemble", "relu-ensemble", "seed")
    units = list(suite_units(suite))
    assert len(units) == 3 * 5
    for unit in units:
        if unit.kind == "ensemble":  # it averages its tuned unit's study, which comes first
            tuned = unit.tuned()
            assert tuned.kind == "tuned" and tuned.label == unit.label.removesuffix("-ensemble")
            assert unit.study_name(suite) == tuned.study_name(suite)
            assert units.index(tuned) < units.index(unit)
    assert determinants(suite)["ensemble.top_k"] == 2
    # a suite without ensembles keeps the lock it had before they existed
    plain = load_suite(_write(tmp_path / "g.yaml", GOOD))
    assert not any(key.startswith("ensemble") for key in determinants(plain))


@pytest.mark.parametrize(
    ("ensemble", "message"),
    [
        ("{top_k: 1}", "ensemble.top_k must be between 2 and study.trials (2), got 1"),
        ("{top_k: 3}", "ensemble.top_k must be between 2 and study.trials (2), got 3"),
        ("{top_k: two}", "ensemble.top_k: expected int"),
        ("{top: 2}", "did you mean 'top_k'"),
    ],
)
def test_bad_ensembles_are_refused_in_one_line(tmp_path, ensemble, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        load_suite(_write(tmp_path / "s.yaml", GOOD + f"ensemble: {ensemble}\n"))


def test_repeats_multiply_the_units_and_name_them_apart(tmp_path):
    text = GOOD.replace("outer_folds: 3,", "outer_folds: 3, repeats: 2,")
    suite = load_suite(_write(tmp_path / "s.yaml", text))
    units = list(suite_units(suite))
    assert len(units) == 18 and len({u.study_name(suite) for u in units}) == 18
    assert {u.fold_name for u in units if u.repeat == 1} == {"r1-outer0", "r1-outer1", "r1-outer2"}
    assert [suite.protocol.repeat_seed(r) for r in (0, 1)] == [0, 1]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("protocol: {outer_folds: 3", "protocol: {outer_fold: 3"), "did you mean 'outer_folds'"),
        (("outer_folds: 3", "outer_folds: 1"), "protocol.outer_folds must be >= 2"),
        (("models: [actmix, relu]", "models: [actmix, rleu]"), "unknown model 'rleu'"),
        (("models: [actmix, relu]", "models: [actmix, actmix]"), "'actmix' appears twice"),
        (("relu_bias: 1.5", "relu_bais: 1.5"), "reference seed"),
        (("trials: 2", "trials: two"), "study.trials: expected int"),
        (("name: s1", "name: 's 1'"), "not a valid name"),
        (("datasets: [power_plant]", "datasets: []"), "datasets: expected a non-empty list"),
        (("seeds: 1}", "seeds: 1, repeats: 0}"), "protocol.repeats must be >= 1"),
        (("epochs: 3}", "epochs: 3, grace_period: 3}"), "grace_period 3 must be below"),
        (("epochs: 3}", "epochs: 3, n_startup_trials: -1}"), "n_startup_trials must be >= 0"),
    ],
)
def test_a_bad_suite_file_names_the_file_and_the_key(tmp_path, change, message):
    path = _write(tmp_path / "bad.yaml", GOOD.replace(*change))
    with pytest.raises(ValueError, match=message) as error:
        load_suite(path)
    assert str(path) in str(error.value)


def test_the_bundled_suite_is_valid():
    suite = load_suite(Path(__file__).resolve().parents[2] / "suites" / "uci3.yaml")
    assert [d.label for d in suite.datasets] == ["power_plant", "adult", "magic_gamma"]
    assert "xgboost" in suite.labels and suite.focus == "actmix"


def test_the_cli_reports_a_bad_suite_file_in_one_line(tmp_path, capsys):
    from study.cli import main

    path = _write(tmp_path / "bad.yaml", GOOD.replace("outer_folds: 3", "outer_folds: 1"))
    assert main(["suite", "status", str(path), "--store", str(tmp_path / "store")]) == 2
    err = capsys.readouterr().err
    assert "outer_folds must be >= 2" in err and "Traceback" not in err
    assert not (tmp_path / "store").exists()


def test_a_readme_without_the_results_block_is_refused(tmp_path):
    readme = _write(tmp_path / "README.md", "# no block here\n")
    with pytest.raises(ValueError, match="no results block of suite 'tiny'"):
        replace_block(readme, "numbers", suite="tiny")
    assert readme.read_text() == "# no block here\n"


# ------------------------------------------------------------------- a tiny suite on Ray


def _regression_frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    y = 2.0 * x[:, 0] - x[:, 1] + 0.1 * rng.normal(size=n)
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": y})


def _classification_frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    label = np.where(x[:, 0] + 0.5 * x[:, 1] > 0, "yes", "no")
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "label": label})


TINY = """
name: tiny
datasets:
  - {spec: "csv:reg.csv", target: y, task: regression}
  - {spec: "csv:cls.csv", target: label}
models: [actmix, xgboost]
references:
  relu-default: {model: relu}
protocol: {outer_folds: 2, repeats: 2, inner_folds: 2, seeds: 2, split_seed: 3}
study: {trials: 2, epochs: 3, grace_period: 2, pack: 2}  # actmix packed; xgboost never is
ensemble: {top_k: 2}  # actmix-ensemble and xgboost-ensemble rows
"""


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.usefixtures("local_ray")
def test_a_tiny_suite_runs_resumes_and_reports(tmp_path, monkeypatch):
    from study.report import write_suite_report

    _regression_frame(90, 0).to_csv(tmp_path / "reg.csv", index=False)
    _classification_frame(90, 1).to_csv(tmp_path / "cls.csv", index=False)
    suite = load_suite(_write(tmp_path / "tiny.yaml", TINY))
    store = str(tmp_path / "store")
    lines: list[str] = []

    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    # two suite drivers side by side on the module's Ray (suite run --jobs 2)
    progress = run_suite(suite, store=store, report=lines.append, jobs=2)
    # 2 datasets x 2 repeats x 2 outer folds x (2 tuned, 2 ensembles, 1 reference)
    assert len(progress.done) == progress.total == 40 and not progress.left
    assert not list(workdir.iterdir())  # nothing (no mlruns/) outside the store
    for worker in ("[1] ", "[2] "):  # both took units, and said which
        assert any(line.startswith(worker) and "units done" in line for line in lines), lines

    # every model of a dataset was scored on the same outer folds in each repeat, the two
    # repeats on different splits, and each repeat's out-of-fold predictions cover every
    # row exactly once
    root = suite_directory(Path(store).resolve(), suite)
    for dataset in suite.datasets:
        fingerprints, covered = {}, {}
        for unit in suite_units(suite):
            if unit.dataset != dataset:
                continue
            found = read_unit(root, unit)
            assert found is not None
            record, arrays = found
            fingerprints.setdefault(unit.repeat, set()).add(record.fingerprint)
            assert record.repeat == unit.repeat and record.split_seed == 3 + unit.repeat
            assert record.provenance is not None and record.provenance["commit"]
            assert len(record.rows) == 2  # seeds
            assert arrays["prediction"].shape[:2] == (2, len(arrays["test_idx"]))
            covered.setdefault((unit.label, unit.repeat), []).append(arrays["test_idx"])
            history = read_trials(root, unit)
            if unit.kind == "ensemble":  # the top 2 of its tuned unit's study, averaged
                members = record.config["provenance"]["members"]
                assert len(record.config["ensemble"]) == len(members) >= 1
                assert record.config["provenance"]["study"] == unit.study_name(suite)
                assert [row["members"] for row in record.rows] == [len(members)] * 2
            if unit.kind == "tuned":
                assert record.study is not None and record.study.best_value is not None
                assert history is not None and len(history) >= 2
                assert {"number", "state", "value", "params", "intermediate_values"} <= set(
                    history[0]
                )
            else:
                assert history is None
        assert [len(found) for found in fingerprints.values()] == [1, 1]
        assert fingerprints[0] != fingerprints[1]
        for parts in covered.values():
            assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(90))

    # everything is in the suite's experiment: 16 studies with their trials, 24 units
    from mlflow.tracking import MlflowClient

    from study.tracking import study_trials

    client = MlflowClient(tracking_uri=f"sqlite:///{root.parent.parent / 'mlflow.db'}")
    assert [e.name for e in client.search_experiments()] == ["tiny", "Default"]
    runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    stages = [run.data.tags.get("stage") for run in runs]
    assert stages.count("study") == 16 and stages.count("final") == 16 + 16  # and ensembles
    assert stages.count("reference") == 8
    assert sum(run.data.tags.get("actmix.role") == "trial" for run in runs) == 16 * 2
    uri = f"sqlite:///{root.parent.parent / 'mlflow.db'}"
    assert len(study_trials(uri, "tiny-reg-xgboost-outer1")) == 2
    assert len(study_trials(uri, "tiny-cls-actmix-r1-outer0")) == 2
    studies = {run.info.run_name: run for run in runs if run.data.tags.get("stage") == "study"}
    assert studies["tiny-cls-actmix-r1-outer0"].data.params["pack"] == "2"
    assert studies["tiny-reg-xgboost-outer1"].data.params["pack"] == "1"

    again: list[str] = []
    run_suite(suite, store=store, report=again.append)
    assert again == ["suite tiny: all 40 units are done; nothing to run"]

    readme = tmp_path / "README.md"
    begin, end = markers("tiny")
    other = "\n".join(markers("other")) + "\n"  # another suite's block stays as it is
    readme.write_text(f"# Title\n\n{other}{begin}\nold numbers\n{end}\n\nmore text\n")
    paths = write_suite_report(suite, store=store, out=tmp_path / "out", readme=readme)
    assert {p.name for p in paths} >= {"report.json", "report.html", "report.md", "README.md"}
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert {"results", "comparisons", "ranks", "importances", "budget_checks", "budget"} <= set(
        report
    )
    # datasets x labels x repeats x outer folds x seeds
    assert len(report["results"]) == 2 * 5 * 2 * 2 * 2
    checks = {(c["check"], c["dataset"], c["model"]): c for c in report["budget_checks"]}
    assert checks[("random search", "all", "all")]["verdict"] == "fail"  # 2 trials <= 10
    assert checks[("finished trials", "reg", "actmix")]["verdict"] == "fail"
    assert {"check", "dataset", "model", "value", "threshold", "verdict", "advice"} <= set(
        checks[("random search", "all", "all")]
    )
    # one `suite run` did the work (the second had nothing to run): its wall time is the
    # budget's; its two drivers' units took at most twice that time
    budget = report["budget"]
    assert budget["sessions"] == 1
    assert budget["wall_seconds"] >= budget["unit_seconds"] / 2 > 0
    compared = {(c["dataset"], c["b"]) for c in report["comparisons"]}
    assert ("reg", "relu-default") in compared and ("cls", "xgboost") in compared
    assert ("reg", "actmix-ensemble") in compared and ("cls", "xgboost-ensemble") in compared
    for comparison in report["comparisons"]:
        assert comparison["a"] == "actmix"
        assert {"test", "p_value", "p_holm", "mean_difference", "ci_low", "better"} <= set(
            comparison
        )
        # the corrected t-test pairs all 2 x 2 outer-fold scores; the bootstrap stands beside
        assert comparison["test"] == "corrected_t" and comparison["n"] == 4
        assert comparison["bootstrap"]["test"] == "bootstrap"
    html = (tmp_path / "out" / "report.html").read_text()
    assert "relu-default" in html and "<img" in html
    # the README block is the Markdown of report.json, its images relative to the README
    text = readme.read_text()
    assert "old numbers" not in text and text.endswith(f"{end}\n\nmore text\n")
    assert text.startswith(f"# Title\n\n{other}")
    assert render_markdown(report, figures="out") in text
    assert "| **actmix** | tuned |" in text and "](out/folds_reg.png)" in text
    assert "reg: tuned actmix is " in report["answer"] and "Knobs of actmix" in report["answer"]
    assert (tmp_path / "out" / "folds_reg.png").is_file()

    # the store moves as a whole and one tuned unit's result is lost: the suite redoes that
    # unit from its finished study in the new place and never touches the old one
    moved = tmp_path / "moved"
    shutil.move(store, moved)
    unit = next(u for u in suite_units(suite) if u.kind == "tuned" and u.model == "actmix")
    new_root = suite_directory(moved.resolve(), suite)
    before, _ = read_unit(new_root, unit)
    unit.path(new_root).unlink()
    run_suite(suite, store=str(moved), report=lambda _line: None)
    assert not Path(store).exists()  # no mlflow.db or optuna.db made at the old place
    after, _ = read_unit(new_root, unit)
    assert before.study is not None and after.study is not None
    # the trial states come from the moved store's own Optuna database
    assert after.study.trial_states == before.study.trial_states
    assert sum(after.study.trial_states.values()) >= 2


LEAK = """
name: leak
datasets: [{spec: "csv:data.csv", target: y, task: regression}]
models: [actmix, relu]
protocol: {outer_folds: 2, inner_folds: 2, seeds: 2, split_seed: 1}
study: {trials: 3, epochs: 4, scheduler: none, max_concurrent: 1}
ensemble: {top_k: 2}
"""


def _study_trials(store: str, name: str) -> list[tuple[dict, float]]:
    import optuna

    storage = f"sqlite:///{Path(store).resolve() / 'optuna.db'}"
    study = optuna.load_study(study_name=name, storage=storage)
    return [(t.params, t.value) for t in study.trials]


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.usefixtures("local_ray")
def test_outer_test_rows_never_reach_the_study_or_the_members(tmp_path):
    """Scramble fold 0's outer-test rows (features and target, with another distribution):
    that fold's studies and retrained members are unchanged; only its test scores move."""
    from actmix.data import load_dataset
    from actmix.splits import make_folds

    frame = _regression_frame(80, 5)
    clean, scrambled = tmp_path / "clean", tmp_path / "scrambled"
    clean.mkdir()
    scrambled.mkdir()
    frame.to_csv(clean / "data.csv", index=False)
    outer = make_folds(load_dataset(f"csv:{clean / 'data.csv'}", target="y"), 2, 1)
    test_rows = outer.folds[0].test_idx
    rng = np.random.default_rng(9)
    changed = frame.copy()
    changed.loc[test_rows, ["a", "b", "c"]] = rng.normal(5.0, 3.0, size=(len(test_rows), 3))
    changed.loc[test_rows, "y"] = rng.normal(40.0, 10.0, size=len(test_rows))
    changed.to_csv(scrambled / "data.csv", index=False)

    runs = {}
    for folder in (clean, scrambled):
        suite = load_suite(_write(folder / "leak.yaml", LEAK))
        store = str(folder / "store")
        run_suite(suite, store=store, report=lambda _line: None)
        assert not suite_progress(suite, store=store).left
        runs[folder] = (suite, store)

    for label in ("actmix", "relu", "actmix-ensemble", "relu-ensemble"):
        (a_suite, a_store), (b_suite, b_store) = runs[clean], runs[scrambled]
        unit = next(u for u in suite_units(a_suite) if u.label == label and u.outer_fold == 0)
        a, a_arrays = read_unit(suite_directory(Path(a_store).resolve(), a_suite), unit)
        b, b_arrays = read_unit(suite_directory(Path(b_store).resolve(), b_suite), unit)
        name = unit.study_name(a_suite)
        assert _study_trials(a_store, name) == _study_trials(b_store, name)
        where = ("provenance", "dataset")  # run ids and the csv folder differ, nothing else
        assert {k: v for k, v in a.config.items() if k not in where} == {
            k: v for k, v in b.config.items() if k not in where
        }
        assert np.array_equal(a_arrays["test_idx"], b_arrays["test_idx"])
        for row_a, row_b in zip(a.rows, b.rows, strict=True):
            for key in row_a:
                # an ensemble's members: the same configurations, bit-identical weights
                same = ("seed", "state_sha256", "best_epoch", "member_state_sha256", "members")
                if key.startswith("val_") or key in same:
                    assert row_a[key] == row_b[key], (label, key)
            assert row_a["test_rmse"] != row_b["test_rmse"], label
        # the test predictions changed because the test features changed, not the members
        assert not np.array_equal(a_arrays["prediction"], b_arrays["prediction"])
        # the fold whose outer-test rows are untouched still trains on the changed rows
        other = next(u for u in suite_units(a_suite) if u.label == label and u.outer_fold == 1)
        a1, _ = read_unit(suite_directory(Path(a_store).resolve(), a_suite), other)
        b1, _ = read_unit(suite_directory(Path(b_store).resolve(), b_suite), other)
        assert a1.rows != b1.rows

    # an ensemble's prediction is the mean of its members' (retrained here by hand), and its
    # score that of the mean
    from actmix.config import RunConfig, config_from_dict
    from actmix.nested import evaluate_outer_fold

    suite, store = runs[clean]
    unit = next(u for u in suite_units(suite) if u.label == "relu-ensemble" and u.outer_fold == 0)
    record, arrays = read_unit(suite_directory(Path(store).resolve(), suite), unit)
    dataset = load_dataset(f"csv:{clean / 'data.csv'}", target="y")
    members = [
        evaluate_outer_fold(dataset, config_from_dict(RunConfig, config), outer, 0, seeds=(0, 1))
        for config in record.config["ensemble"]
    ]
    assert len(members) == 2
    mean = np.mean([member.test_prediction for member in members], axis=0)
    np.testing.assert_allclose(arrays["prediction"], mean, rtol=1e-6)
    y = dataset.target.to_numpy(dtype=float)[arrays["test_idx"]]
    rmse = [float(np.sqrt(np.mean((mean[seed] - y) ** 2))) for seed in (0, 1)]
    assert [row["test_rmse"] for row in record.rows] == pytest.approx(rmse, rel=1e-6)
    assert record.value == pytest.approx(sum(rmse) / 2, rel=1e-6)


KILLED = """
name: killed
datasets: [{spec: "csv:reg.csv", target: y, task: regression}]
models: [relu, xgboost]
references:
  relu-default: {model: relu}
protocol: {outer_folds: 2, inner_folds: 2, seeds: 1}
study: {trials: 3, epochs: 12, scheduler: none}
"""


@pytest.mark.ray
@pytest.mark.slow
def test_a_suite_killed_mid_study_continues_without_duplicates(tmp_path):
    """``kill -9`` of the suite driver (and the Ray it started) while a study is under
    way; ``suite run`` again resumes that study and finishes with one run per unit."""
    import os
    import signal
    import subprocess

    import optuna
    from mlflow.tracking import MlflowClient

    from tests.study.processes import (
        signal_when_ready,
        study_command,
    )

    _regression_frame(90, 2).to_csv(tmp_path / "reg.csv", index=False)
    path = _write(tmp_path / "killed.yaml", KILLED)
    store = tmp_path / "store"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    command = study_command("suite", "run", str(path), "--store", str(store))
    # kill -9 once a study has a finished trial and more under way
    signal_when_ready(
        command,
        log=tmp_path / "driver.log",
        env=env,
        ready=lambda output: "finished val_rmse_mean" in output,
        what="a finished trial of the first study",
        stop=signal.SIGKILL,
        timeout=300,
        grace=30,
    )
    suite = load_suite(path)
    assert suite_progress(suite, store=str(store)).started  # a study was cut off

    # continued by two drivers side by side: one resumes the cut-off study
    again = subprocess.run(
        [*command, "--jobs", "2"], capture_output=True, text=True, env=env, timeout=900
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming the interrupted study" in again.stderr
    progress = suite_progress(suite, store=str(store))
    assert len(progress.done) == progress.total == 6

    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("killed")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    unit_runs = [run for run in runs if run.data.tags.get("stage") in ("final", "reference")]
    names = sorted(run.info.run_name for run in unit_runs)
    assert len(names) == len(set(names)) == 6  # one MLflow run per unit, none twice
    storage = f"sqlite:///{store / 'optuna.db'}"
    for unit in suite_units(suite):
        if unit.kind == "tuned":
            study = optuna.load_study(study_name=unit.study_name(suite), storage=storage)
            states = [t.state.name for t in study.trials]
            assert states.count("COMPLETE") == 3, unit
            # the only other kind: a trial the killed driver asked for but never configured
            for trial in study.trials:
                if trial.state.name != "COMPLETE":
                    assert trial.state.name == "FAIL", unit
                    assert trial.user_attrs == {ORPHAN_FAILURE: ORPHAN_REASON}, unit

    last = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert last.returncode == 0 and "nothing to run" in last.stderr


@pytest.mark.ray
@pytest.mark.slow
def test_a_suite_stopped_with_two_drivers_resumes_on_a_ray_of_its_own(tmp_path):
    """Ctrl-C to `suite run --jobs 2` while a study runs on the temporary Ray the parent
    started; the printed `suite run` line resumes that study on its own Ray (the one the
    study was started on is gone with the parent)."""
    import os
    import subprocess

    from tests.study.processes import signal_when_ready, study_command

    _regression_frame(90, 2).to_csv(tmp_path / "reg.csv", index=False)
    path = _write(tmp_path / "killed.yaml", KILLED)
    store = tmp_path / "store"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    command = study_command("suite", "run", str(path), "--store", str(store))
    code, survivors = signal_when_ready(
        [*command, "--jobs", "2"],
        log=tmp_path / "drivers.log",
        env=env,
        ready=lambda output: "finished val_rmse_mean" in output,
        what="a finished trial of a study",
        stop=signal.SIGINT,
        timeout=300,
    )
    assert code == 130, (tmp_path / "drivers.log").read_text()[-3000:]
    assert not survivors
    suite = load_suite(path)
    assert suite_progress(suite, store=str(store)).started  # a study was cut off

    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming the interrupted study" in again.stderr
    progress = suite_progress(suite, store=str(store))
    assert len(progress.done) == progress.total == 6


RETRAINING = """
name: stopped
datasets: [{spec: "csv:reg.csv", target: y, task: regression}]
models: [relu]
references:  # run first, one per driver: long retrainings (small batches, no early stop)
  slow-a: {model: relu, config: {train.batch_size: 16, train.patience: 400}}
  slow-b: {model: relu, config: {train.batch_size: 16, train.patience: 400}}
protocol: {outer_folds: 2, inner_folds: 2, seeds: 1}
study: {trials: 2, epochs: 400}
"""


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.parametrize(
    ("stop", "jobs", "to_group"),
    [(signal.SIGINT, 1, True), (signal.SIGTERM, 1, False), (signal.SIGTERM, 2, False)],
    ids=["ctrl-c-to-the-group", "sigterm-to-the-command", "sigterm-with-two-drivers"],
)
def test_a_signal_during_retraining_stops_the_suite_as_interrupted(tmp_path, stop, jobs, to_group):
    """Outside any study (a reference retraining), Ctrl-C and SIGTERM stop the suite with
    exit 130 and a resume hint, and leave no process of it behind."""
    import os

    from tests.study.processes import (
        signal_when_ready,
        study_command,
    )

    _regression_frame(4000, 4).to_csv(tmp_path / "reg.csv", index=False)
    path = _write(tmp_path / "stopped.yaml", RETRAINING)
    store = tmp_path / "store"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    command = study_command("suite", "run", str(path), "--store", str(store), "--jobs", str(jobs))
    log = tmp_path / "driver.log"
    code, survivors = signal_when_ready(
        command,
        log=log,
        env=env,
        ready=lambda output: output.count("retraining on") == jobs,
        what="retraining under way",
        stop=stop,
        to_group=to_group,
    )
    output = log.read_text()
    assert code == 130, output[-3000:]
    assert f"suite stopped: interrupted ({stop.name})" in output
    assert f"Continue with `actmix-study suite run {path} --store {store}`" in output
    assert not survivors, output[-3000:]  # the drivers and the Ray they shared are gone
    assert not suite_progress(load_suite(path), store=str(store)).done
