"""The private interfaces of Ray Tune and Optuna that study uses live in one module, and an
untested version of either fails here, loudly, before it can break a resume silently."""

from __future__ import annotations

import re
from pathlib import Path

import optuna

from study.run import TESTED, running_trial, untested_versions

ROOT = Path(__file__).resolve().parents[2]
ADAPTERS = ROOT / "study" / "run" / "_adapters.py"
# what only the adapters module may touch
PRIVATE_USES = (r"optuna\.Trial\(", r"\._experiment\b", r"\._counter\b", r"\._finished\b")


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


def test_a_running_trial_comes_back_and_reports_and_is_told():
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, study_name="adapters")
    asked = study.ask()
    asked.suggest_float("x", 0.0, 1.0)
    again = running_trial(study, storage, asked.number)
    again.report(0.5, step=3)
    assert again.params == asked.params  # suggestions come back, not drawn anew
    study.tell(again, 0.25)
    (frozen,) = study.get_trials()
    assert frozen.intermediate_values == {3: 0.5}
    assert frozen.value == 0.25
