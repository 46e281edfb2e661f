"""The arrow goes study -> actmix: actmix stays free of orchestration, study uses its public API."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import actmix

ROOT = Path(__file__).resolve().parents[1]
ORCHESTRATION = ("ray", "optuna", "mlflow")
ACTMIX_MODULES = sorted(
    info.name for info in pkgutil.walk_packages(actmix.__path__, prefix="actmix.")
)
STUDY_FILES = sorted((ROOT / "study").glob("*.py"))


def _loaded_orchestration(statement: str) -> list[str]:
    """Orchestration packages in ``sys.modules`` after ``statement`` in a fresh interpreter."""
    report = f"print(','.join(m for m in {ORCHESTRATION!r} if m in sys.modules))"
    code = f"import sys; {statement}; {report}"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return [name for name in out.stdout.strip().split(",") if name]


def test_importing_actmix_loads_no_orchestration_package():
    assert _loaded_orchestration("import actmix") == []


def test_no_actmix_module_loads_an_orchestration_package():
    imports = "; ".join(f"import {name}" for name in ACTMIX_MODULES)
    assert _loaded_orchestration(imports) == []


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """``(module, names, line)`` of every import statement in ``path`` (names empty for
    ``import module``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [alias.name for alias in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            found.extend((alias.name, [], node.lineno) for alias in node.names)
    return found


@pytest.mark.parametrize("module_name", ["actmix", *ACTMIX_MODULES])
def test_every_public_name_resolves(module_name: str):
    module = importlib.import_module(module_name)
    for name in getattr(module, "__all__", ()):
        assert not name.startswith("_"), f"{module_name}.__all__ lists private {name!r}"
        assert hasattr(module, name), f"{module_name}.__all__ lists missing {name!r}"


def test_the_package_exports_what_the_readme_uses():
    for name in ("load_dataset", "make_folds", "MLP", "fit", "cross_validate", "ActMixMLP"):
        assert name in actmix.__all__


@pytest.mark.parametrize("path", STUDY_FILES, ids=lambda path: path.name)
def test_study_imports_only_public_actmix_names(path: Path):
    for module_name, names, line in _imports(path):
        if module_name != "actmix" and not module_name.startswith("actmix."):
            continue
        where = f"{path.name}:{line}"
        assert not any(part.startswith("_") for part in module_name.split(".")), (
            f"{where} imports private module {module_name}"
        )
        public = getattr(importlib.import_module(module_name), "__all__", None)
        assert public is not None, f"{where}: {module_name} has no __all__"
        for name in names:
            assert name in public, f"{where} imports {name!r}, not in {module_name}.__all__"


@pytest.mark.parametrize(
    "path", sorted((ROOT / "actmix").rglob("*.py")), ids=lambda path: path.name
)
def test_actmix_never_imports_study(path: Path):
    for module_name, _, line in _imports(path):
        assert module_name.split(".")[0] != "study", f"{path.name}:{line} imports {module_name}"
