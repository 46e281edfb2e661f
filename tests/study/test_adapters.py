"""The private interfaces of Ray Tune and Optuna that study uses live in one module, and an
untested version of either fails here, loudly, before it can break a resume silently."""

from __future__ import annotations

import re
from pathlib import Path

from study.run import TESTED, untested_versions

ROOT = Path(__file__).resolve().parents[2]
ADAPTERS = ROOT / "study" / "run" / "_adapters.py"
# what only the adapters module may touch
PRIVATE_USES = (r"\._experiment\b", r"\._counter\b", r"\._finished\b")


def test_the_installed_ray_and_optuna_are_versions_the_adapters_were_tested_on():
    untested = untested_versions()
    assert not untested, (
        f"untested versions {untested}: rerun the resume tests (tests/study/test_faults.py, "
        f"test_runner.py, test_search.py), then add them to study.run._adapters.TESTED and "
        f"raise the bounds in pyproject.toml"
    )


def test_the_package_bounds_orchestration_libraries_at_the_tested_versions():
    # tomllib is 3.11+, and the package supports 3.10: the requirement strings are enough
    text = (ROOT / "pyproject.toml").read_text()
    dependencies = re.findall(
        r'^\s*"([^"]+)",$', text.split("dependencies = [")[1].split("]\n")[0], re.M
    )
    bounds = {}
    for requirement in dependencies:
        match = re.match(r"([a-z]+)(?:\[[a-z]+\])?.*<(\d+)\.(\d+)", requirement)
        if match:
            bounds[match[1]] = (int(match[2]), int(match[3]))
    assert {"ray", "optuna", "mlflow"} <= set(bounds), bounds
    for package, minors in TESTED.items():
        newest = max(tuple(int(part) for part in minor.split(".")) for minor in minors)
        assert bounds[package] == (newest[0], newest[1] + 1), (package, bounds[package])


def test_no_other_module_uses_the_private_interfaces():
    for path in sorted((ROOT / "study").rglob("*.py")):
        if path == ADAPTERS:
            continue
        text = path.read_text()
        for pattern in PRIVATE_USES:
            assert not re.search(pattern, text), f"{path.relative_to(ROOT)} uses {pattern}"


def test_no_module_builds_an_optuna_trial_itself():
    # Optuna documents its Trial constructor as internal: trials come from ask/add_trial
    for path in sorted((ROOT / "study").rglob("*.py")):
        assert not re.search(r"optuna\.(trial\.)?Trial\(", path.read_text()), path
