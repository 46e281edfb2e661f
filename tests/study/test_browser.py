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


def test_the_ui_opens_on_the_studys_trials_with_their_objective(
    finished_study, ui_server, browser, tmp_path
):
    from selenium.webdriver.common.by import By

    client = MlflowClient(tracking_uri=f"sqlite:///{finished_study / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("browse")
    trials = client.search_runs([experiment.experiment_id], "tags.`actmix.role` = 'trial'")
    names = sorted(run.info.run_name for run in trials)
    assert names == ["trial-0000", "trial-0001", "trial-0002"]

    # `ui` prints where the latest study's runs are: the runs table in the study's view
    runs = f"{ui_server}/#/experiments/{experiment.experiment_id}/runs"
    url = f"{runs}?viewStateShareKey=study-browse"
    assert f"latest study browse: {url}" in (tmp_path / "ui.log").read_text()
    browser.get(url)

    def body() -> str:
        return browser.find_element(By.TAG_NAME, "body").text

    def texts(role: str) -> list[str]:
        # read in one go in the page: the table re-renders while it loads (stale elements)
        script = f"return [...document.querySelectorAll('[role={role}]')].map(e => e.innerText)"
        return [text.strip() for text in browser.execute_script(script)]

    wait_until(
        lambda: "val_rmse_mean" in texts("columnheader") and all(name in body() for name in names),
        60,
        "the trial rows with the objective column",
    )
    browser.save_screenshot(str(tmp_path / "runs.png"))
    # what a person sees: the model-training runs table (not the GenAI overview), every
    # trial's objective in its own row without opening a column menu, best first
    assert "Training runs" in body() and "Detect issues" not in body()
    by_value = sorted(trials, key=lambda run: run.data.metrics["val_rmse_mean"])
    text = body()
    assert [text.index(run.info.run_name) for run in by_value] == sorted(
        text.index(run.info.run_name) for run in by_value
    )
    # the grid draws a row in parts (pinned name column, scrolled columns): join by index
    script = (
        "const rows = {}; document.querySelectorAll('[role=row][row-index]').forEach("
        "e => { const i = e.getAttribute('row-index'); rows[i] = (rows[i] || '') + ' ' + "
        "e.innerText }); return Object.values(rows)"
    )
    rows = browser.execute_script(script)
    for run in trials:
        (row,) = [row for row in rows if run.info.run_name in row]
        # the table shows the value as logged (its shortest form), cut to the column width
        assert repr(run.data.metrics["val_rmse_mean"])[:6] in row, row

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
