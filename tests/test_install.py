"""`make study` and `make test` from a fresh checkout: what each installs, and the hint a
machine without python3-venv gets."""

import subprocess
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def _dry_run(target: str) -> str:
    """The commands `make TARGET` would run on a fresh checkout (nothing is run)."""
    done = subprocess.run(
        ["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return done.stdout


def test_the_dev_tools_are_pinned():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    dev = project["project"]["optional-dependencies"]["dev"]
    assert dev and all("==" in requirement for requirement in dev), dev


def test_make_study_installs_no_test_tools_and_make_test_does():
    study = _dry_run("study")
    assert "pip install -e ." in study and "[dev]" not in study
    assert "torch==2.13.0" in study  # pinned, before the package pulls any torch
    # the study's hints name `actmix-study`, which is on PATH only in the activated .venv
    assert "source .venv/bin/activate" in study
    for target in ("test", "test-fast", "lint"):
        assert "pip install -e '.[dev,dashboard]'" in _dry_run(target), target


def test_a_python_without_venv_gets_a_one_line_hint(tmp_path):
    venv = tmp_path / "venv"
    done = subprocess.run(
        ["make", f"VENV={venv}", "PYTHON=false", f"{venv}/bin/python"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
    assert "install python3-venv" in done.stderr
    assert not venv.exists()  # no half-made environment left to confuse the next run
