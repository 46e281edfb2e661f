"""A full disk: one line, not hundreds; a study stopped before its writes fail, resumable.

The end-to-end tests put the store on a small tmpfs of their own (mounting needs root,
as on CI; elsewhere they are skipped, said so by the skip reason)."""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from study.cli import main
from study.store import STOP_FLOOR, LowDiskSpace, check_free_space, disk_full_error
from tests.study.processes import start_in_own_group, stop_group, study_command, wait_until

ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}


@contextlib.contextmanager
def _tmpfs(path: Path, megabytes: int) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_disk_full_is_recognised_through_the_chain_of_errors():
    try:
        try:
            raise sqlite3.OperationalError("database or disk is full")
        except sqlite3.OperationalError as inner:
            raise RuntimeError("flush failed") from inner
    except RuntimeError as outer:
        assert disk_full_error(outer)
    assert disk_full_error(OSError(errno.ENOSPC, "No space left on device"))
    assert not disk_full_error(ValueError("bad value"))


def test_too_little_space_to_start_names_the_store_and_what_is_free(tmp_path):
    with pytest.raises(LowDiskSpace, match=f"the disk of store {tmp_path} has .* MB free"):
        check_free_space(tmp_path, floor=2**62)


@pytest.mark.slow
def test_a_study_does_not_start_on_a_nearly_full_disk(tmp_path, capsys):
    with _tmpfs(tmp_path / "disk", 8) as disk:
        assert main(["run", "--store", str(disk / "store"), "--trials", "1"]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, err
        assert "has 8 MB free; a study needs at least 200 MB" in err[0]
        assert not (disk / "store" / "mlflow.db").exists()


@pytest.mark.slow
@pytest.mark.ray
def test_a_study_stops_before_the_disk_is_full_and_resumes_once_there_is_room(tmp_path):
    with _tmpfs(tmp_path / "disk", 300) as disk:
        store = disk / "store"
        log = tmp_path / "driver.log"
        args = ["--name", "full", "--trials", "2", "--folds", "2", "--epochs", "10"]
        args += ["--scheduler", "none", "--max-concurrent", "1", "--store", str(store)]
        driver = start_in_own_group(study_command("run", *args), log=log, env=ENV)
        filler = disk / "filler"
        try:
            wait_until(lambda: "study full:" in log.read_text(), 240, "the study's start")
            # leave less than the stop floor: the next check (every 5 s) stops the study
            free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
            with filler.open("wb") as out:
                out.truncate(0)
                out.write(b"\0" * (free - STOP_FLOOR // 2))
            code = driver.wait(timeout=180)
        finally:
            stop_group(driver)
        output = log.read_text()
        assert code == 130, output[-3000:]
        assert "interrupted (disk nearly full:" in output and "Traceback" not in output
        filler.unlink()
        resumed = subprocess.run(
            study_command("resume", "full", "--store", str(store)),
            capture_output=True,
            text=True,
            env=ENV,
            timeout=600,
        )
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        study = optuna.load_study(study_name="full", storage=f"sqlite:///{store / 'optuna.db'}")
        assert [t.state.name for t in study.trials] == ["COMPLETE"] * 2
