"""What a study runs on: the study layer's package versions, this machine's hardware and
the project's commit; ``provenance`` puts them together for a record.

``actmix.cv.package_versions`` covers the numeric stack (``actmix`` never imports Ray,
Optuna or MLflow); the study's parent run adds these. On a cluster the hardware is the
driver's machine; Ray's resource totals say what the workers have.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "STUDY_PACKAGES",
    "cpu_model",
    "git_commit",
    "gpu_names",
    "hardware",
    "local_gpu_count",
    "provenance",
    "study_versions",
]

STUDY_PACKAGES = ("ray", "optuna", "mlflow")


def study_versions() -> dict[str, str]:
    """Installed versions of Ray, Optuna and MLflow (``"not installed"`` when missing)."""
    versions = {}
    for package in STUDY_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def cpu_model() -> str:
    """The CPU's model name, e.g. ``AMD EPYC 7B13``; ``platform`` names it where there is
    no ``/proc/cpuinfo``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def local_gpu_count() -> int:
    """CUDA devices this process may use (``CUDA_VISIBLE_DEVICES`` counts); no CUDA context."""
    import torch

    return int(torch.cuda.device_count())


def gpu_names() -> str:
    """The names of this machine's GPUs, comma-separated, or ``"none"``.

    Asked of ``nvidia-smi`` rather than torch, whose names would open a CUDA context in
    the driver for the whole study.
    """
    count = local_gpu_count()
    if count == 0:
        return "none"
    smi = shutil.which("nvidia-smi")
    if smi is not None:
        try:
            listing = subprocess.run(
                [smi, "--query-gpu=name", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout
        except (OSError, subprocess.SubprocessError):
            listing = ""
        names = [line.strip() for line in listing.splitlines() if line.strip()]
        if names:
            return ", ".join(names)
    return f"{count} GPU(s), names unknown"


def hardware() -> dict[str, str | int]:
    """CPU model, logical CPU count and GPU names of this machine."""
    return {"cpu": cpu_model(), "logical_cpus": os.cpu_count() or 0, "gpus": gpu_names()}


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args],
        cwd=Path(__file__).resolve().parent,
        capture_output=True,
        text=True,
        timeout=5,
        check=False,
    )


def git_commit() -> str:
    """The checkout's commit (``+dirty`` when tracked files differ from it), or
    ``"unknown"`` for an installed package."""
    try:
        head = _git("rev-parse", "HEAD")
        if head.returncode != 0:
            return "unknown"
        dirty = _git("diff", "--quiet", "HEAD").returncode == 1
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty else "")


def provenance() -> dict[str, Any]:
    """Where and with what a result is being made: machine, package versions, commit, time.

    Recorded when a result is made (a suite unit, say), not when it is reported: the
    report can then say which sessions, machines and versions produced which rows.
    """
    from actmix.cv import package_versions

    return {
        "machine": {"platform": platform.platform(), **hardware()},
        "versions": {**package_versions(), **study_versions()},
        "commit": git_commit(),
        "recorded": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
