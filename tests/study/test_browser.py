"""The MLflow UI over a finished study, in a real headless Chromium."""

import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from mlflow.tracking import MlflowClient

from study.cli import main

pytestmark = [pytest.mark.browser, pytest.mark.ray, pytest.mark.slow]

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


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
def ui_server(finished_study):
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from study.cli import main; sys.exit(main())",
            "ui",
            "--store",
            str(finished_study),
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    def healthy():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return True
        except OSError:
            return False

    try:
        _wait_until(healthy, 90, "the MLflow server")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.send_signal(signal.SIGTERM)  # `ui` stops the mlflow server it started
        server.wait(timeout=60)
    assert not healthy(), "the MLflow server outlived `actmix-study ui`"


@pytest.fixture
def browser():
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.fail("Debian's chromium and chromium-driver are required (.ci/run installs them)")
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

    browser.get(f"{ui_server}/#/experiments/{experiment.experiment_id}/runs")
    expand = _wait_until(
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
    _wait_until(
        lambda: all(name in browser.find_element(By.TAG_NAME, "body").text for name in names),
        30,
        "the trial rows",
    )
    browser.save_screenshot(str(tmp_path / "runs.png"))

    browser.find_element(By.XPATH, "//a[normalize-space()='trial-0000']").click()
    best = trials[[r.info.run_name for r in trials].index("trial-0000")]
    value = f"{best.data.metrics['val_rmse_mean']:.3f}"[:4]
    _wait_until(
        lambda: "val_rmse_mean" in browser.find_element(By.TAG_NAME, "body").text,
        30,
        "the trial's metrics",
    )
    assert value in browser.find_element(By.TAG_NAME, "body").text
    browser.save_screenshot(str(tmp_path / "trial.png"))
    assert (tmp_path / "runs.png").stat().st_size > 10_000
