import json

import pytest

from study.cli import main


def _run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cv_prints_a_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "result.json"
    code, stdout, _ = _run(
        capsys,
        "cv",
        "--dataset",
        "power_plant",
        "--model",
        "relu",
        "--folds",
        "2",
        "--epochs",
        "2",
        "--device",
        "cpu",
        "--out",
        str(out),
    )
    assert code == 0
    assert "rmse" in stdout and "±" in stdout and str(out) in stdout
    saved = json.loads(out.read_text())
    assert saved["model"] == "relu" and len(saved["rows"]) == 2


def test_cv_with_a_yaml_config(tmp_path, capsys):
    config = tmp_path / "best.yaml"
    config.write_text(
        "model: prelu\ndataset: magic_gamma\nmlp: {widths: [8], dropout: 0.0}\n"
        "train: {epochs: 1, batch_size: 512}\n"
    )
    out = tmp_path / "r.json"
    code, _, _ = _run(
        capsys, "cv", "--config", str(config), "--folds", "2", "--seeds", "2", "--out", str(out)
    )
    assert code == 0
    saved = json.loads(out.read_text())
    assert saved["dataset"] == "magic_gamma" and saved["model"] == "prelu"
    assert saved["seeds"] == [0, 1] and len(saved["rows"]) == 4


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["cv", "--dataset", "nope"], "unknown dataset 'nope'; valid: power_plant"),
        (["cv", "--model", "rleu"], "unknown model 'rleu'; valid: actmix"),
        (["cv", "--config", "missing.yaml"], "config file not found: missing.yaml"),
        (["cv", "--dataset", "csv:/no/such.csv", "--target", "y"], "/no/such.csv"),
        (["cv", "--device", "tpu", "--epochs", "1", "--folds", "2"], "unknown device 'tpu'"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys, argv, message):
    out = tmp_path / "never.json"
    code, _, stderr = _run(capsys, *argv, "--out", str(out))
    assert code == 2
    error_lines = [line for line in stderr.splitlines() if line.startswith("actmix-study: error")]
    assert len(error_lines) == 1 and message in error_lines[0]
    assert "Traceback" not in stderr
    assert not out.exists()


def test_bad_yaml_names_the_file(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    code, _, stderr = _run(capsys, "cv", "--config", str(bad))
    assert code == 2 and f"cannot parse {bad}" in stderr
    typo = tmp_path / "typo.yaml"
    typo.write_text("train: {epocs: 3}\n")
    code, _, stderr = _run(capsys, "cv", "--config", str(typo))
    assert code == 2 and "did you mean 'epochs'" in stderr


def test_argument_range_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["cv", "--folds", "1"])
    assert exit_info.value.code == 2
    assert "must be >= 2" in capsys.readouterr().err


def test_datasets_and_models_list(capsys):
    assert main(["datasets"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in ("power_plant", "adult", "magic_gamma"))
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in ("actmix", "relu", "prelu", "xgboost"))


def test_cv_of_an_exported_config_draws_fresh_folds(tmp_path, capsys):
    # export-best records the study's split seed; the final CV must not reuse its folds
    config = tmp_path / "best.yaml"
    config.write_text(
        "model: relu\ndataset: power_plant\nmlp: {widths: [4]}\ntrain: {epochs: 1}\n"
        "provenance: {study: tiny, split_seed: 3}\n"
    )
    seeds = []
    for extra in ([], ["--split-seed", "3"]):
        out = tmp_path / f"r{len(seeds)}.json"
        argv = ["cv", "--config", str(config), "--folds", "2", "--device", "cpu", "--out", str(out)]
        assert _run(capsys, *argv, *extra)[0] == 0
        seeds.append(json.loads(out.read_text())["splits"]["seed"])
    assert seeds == [4, 3]  # the study's + 1, unless the user names a seed


def test_cv_of_an_exported_csv_config_needs_no_target_flag(tmp_path, capsys):
    # export-best records the study's target and task; `cv --config` reads them
    rows = ["a,b,price"] + [f"{i % 7},{(i * 3) % 11},{i % 5}" for i in range(60)]
    (tmp_path / "data.csv").write_text("\n".join(rows) + "\n")
    config = tmp_path / "best.yaml"
    config.write_text(
        f"model: relu\ndataset: csv:{tmp_path / 'data.csv'}\nmlp: {{widths: [4]}}\n"
        "train: {epochs: 1}\nprovenance: {study: s, target: price, task: regression}\n"
    )
    out = tmp_path / "r.json"
    argv = ["cv", "--config", str(config), "--folds", "2", "--device", "cpu", "--out", str(out)]
    assert _run(capsys, *argv)[0] == 0
    # five integer values would be read as classes without the recorded task
    assert json.loads(out.read_text())["task"] == "regression"


def test_cv_epochs_rescale_annealing_and_warmup(tmp_path, monkeypatch):
    seen = []

    class Stop(Exception):
        pass

    def capture(_dataset, config, **_options):
        seen.append(config)
        raise Stop

    monkeypatch.setattr("actmix.cv.cross_validate", capture)
    config = tmp_path / "best.yaml"
    config.write_text(
        "model: actmix\ntrain: {epochs: 30, temperature: {anneal_epochs: 15, final: 0.1},"
        " entropy: {lambda_max: 0.01, warmup_epochs: 6}}\n"
    )
    with pytest.raises(Stop):
        main(["cv", "--config", str(config), "--epochs", "200"])
    train = seen[0].train
    assert (train.epochs, train.temperature.anneal_epochs, train.entropy.warmup_epochs) == (
        200,
        100,
        40,
    )


def test_cv_of_an_exported_ensemble_evaluates_the_averaged_members(tmp_path, capsys):
    # what export-best --top-k writes: the members, best first, each with its provenance
    rows = ["a,b,price"] + [f"{i % 7},{(i * 3) % 11},{(i * 13) % 17 / 3}" for i in range(60)]
    (tmp_path / "data.csv").write_text("\n".join(rows) + "\n")
    member = (
        "  - model: relu\n    dataset: csv:{csv}\n    mlp: {{widths: [{width}]}}\n"
        "    train: {{epochs: 2}}\n"
        "    provenance: {{study: s, trial: {trial}, target: price, task: regression, "
        "split_seed: 3}}\n"
    )
    csv = tmp_path / "data.csv"
    config = tmp_path / "top2.yaml"
    config.write_text(
        "ensemble:\n"
        + member.format(csv=csv, width=4, trial="trial-0003")
        + member.format(csv=csv, width=8, trial="trial-0001")
    )
    out = tmp_path / "r.json"
    argv = ["cv", "--config", str(config), "--folds", "2", "--seeds", "2", "--out", str(out)]
    code, stdout, err = _run(capsys, *argv, "--device", "cpu")
    assert code == 0, err
    assert "cv: an ensemble of 2 relu" in err and "relu-ensemble on data" in stdout
    saved = json.loads(out.read_text())
    assert saved["model"] == "relu-ensemble" and len(saved["config"]["ensemble"]) == 2
    assert saved["splits"]["seed"] == 4  # the study's split seed + 1, as for one config
    assert len(saved["rows"]) == 4 and {row["members"] for row in saved["rows"]} == {2}


def test_an_ensemble_file_that_is_not_a_list_is_refused(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("ensemble: {model: relu}\n")
    code, _, err = _run(capsys, "cv", "--config", str(config))
    assert code == 2 and "ensemble must be a non-empty list of configurations" in err
