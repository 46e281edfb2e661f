"""The MLflow UI over a finished study, in a real headless Chromium."""

import shutil
import signal

import pytest
from mlflow.tracking import MlflowClient

from study.cli import main
from tests.study.processes import (
    answers,
    descendants,
    free_port,
    kill_survivors,
    start_in_own_group,
    stop_group,
    study_command,
    wait_until,
)

pytestmark = [pytest.mark.browser, pytest.mark.ray, pytest.mark.slow]

# Debian's packages, which `make chromium` installs (the Makefile checks these paths)
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory):
    store = tmp_path_factory.mktemp("store")
    assert (
        main(
            [
                "run",
                "--name",
                "browse",
                "--trials",
                "3",
                "--folds",
                "2",
                "--epochs",
                "3",
                "--scheduler",
                "none",
                "--store",
                str(store),
            ]
        )
        == 0
    )
    return store


@pytest.fixture
def ui_server(finished_study, tmp_path):
    port = free_port()
    health = f"http://127.0.0.1:{port}/health"
    log = tmp_path / "ui.log"
    ui = start_in_own_group(
        study_command("ui", "--store", str(finished_study), "--port", str(port)), log=log
    )
    server: dict[int, int] = {}
    try:
        wait_until(lambda: answers(health) or ui.poll() is not None, 180, "the MLflow server")
        assert ui.poll() is None, log.read_text()
        server = descendants(ui.pid)
        yield f"http://127.0.0.1:{port}"
        ui.send_signal(signal.SIGTERM)  # `ui` stops the mlflow server it started
        ui.wait(timeout=60)
    finally:
        stop_group(ui)
        outlived = kill_survivors(server, wait=10)
    assert not outlived, "the MLflow server outlived `actmix-study ui`"
    assert not answers(health), "the MLflow server outlived `actmix-study ui`"


@pytest.fixture
def browser():
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.fail("Debian's chromium and chromium-driver are required: run `make chromium`")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1600,1000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def test_trial_runs_appear_under_the_study_with_their_metric(
    finished_study, ui_server, browser, tmp_path
):
    from selenium.webdriver.common.by import By

    client = MlflowClient(tracking_uri=f"sqlite:///{finished_study / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("browse")
    trials = client.search_runs([experiment.experiment_id], "tags.`actmix.role` = 'trial'")
    names = sorted(run.info.run_name for run in trials)
    assert names == ["trial-0000", "trial-0001", "trial-0002"]

    # `ui` prints where the latest study's runs are; the page it names is the runs table
    url = f"{ui_server}/#/experiments/{experiment.experiment_id}/runs"
    assert f"latest study browse: {url}" in (tmp_path / "ui.log").read_text()
    browser.get(url)
    expand = wait_until(
        lambda: browser.find_elements(
            By.XPATH,
            "//*[@role='row'][.//a[normalize-space()='browse']]"
            "//button[contains(@data-component-id, 'runnamecellrenderer')]",
        ),
        60,
        "the study's parent row",
    )
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "trial-0000" not in body  # nested under the collapsed parent
    expand[0].click()
    wait_until(
        lambda: all(name in browser.find_element(By.TAG_NAME, "body").text for name in names),
        30,
        "the trial rows",
    )
    browser.save_screenshot(str(tmp_path / "runs.png"))

    browser.find_element(By.XPATH, "//a[normalize-space()='trial-0000']").click()
    best = trials[[r.info.run_name for r in trials].index("trial-0000")]
    value = f"{best.data.metrics['val_rmse_mean']:.3f}"[:4]
    wait_until(
        lambda: "val_rmse_mean" in browser.find_element(By.TAG_NAME, "body").text,
        30,
        "the trial's metrics",
    )
    assert value in browser.find_element(By.TAG_NAME, "body").text
    browser.save_screenshot(str(tmp_path / "trial.png"))
    assert (tmp_path / "runs.png").stat().st_size > 10_000
