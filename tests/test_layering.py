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
STUDY_FILES = sorted((ROOT / "study").rglob("*.py"))
STUDY_ROOMS = sorted(f"study.{path.parent.name}" for path in (ROOT / "study").glob("*/__init__.py"))
MAX_MODULE_LINES = 450


def _loaded(statement: str, packages: tuple[str, ...] = ORCHESTRATION) -> list[str]:
    """Which of ``packages`` are in ``sys.modules`` after ``statement`` in a fresh interpreter."""
    report = f"print(','.join(m for m in {packages!r} if m in sys.modules))"
    code = f"import sys; {statement}; {report}"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return [name for name in out.stdout.strip().split(",") if name]


def test_importing_actmix_loads_no_orchestration_package():
    assert _loaded("import actmix") == []


def test_no_actmix_module_loads_an_orchestration_package():
    imports = "; ".join(f"import {name}" for name in ACTMIX_MODULES)
    assert _loaded(imports) == []


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


def _study_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", STUDY_FILES, ids=_study_id)
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


def _room(module_name: str) -> str | None:
    """``study.tracking`` for any module inside that room, None outside every room."""
    parts = module_name.split(".")
    return ".".join(parts[:2]) if parts[0] == "study" and len(parts) > 2 else None


@pytest.mark.parametrize("path", STUDY_FILES, ids=_study_id)
def test_no_module_imports_a_private_module_of_another_room(path: Path):
    """A room's ``_private`` modules are imported only by the room itself; the others go
    through its door (``from study.tracking import ...``)."""
    importer = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    for module_name, _, line in _imports(path):
        if module_name.split(".")[0] != "study":
            continue
        private = any(part.startswith("_") for part in module_name.split(".")[2:])
        if private:
            assert _room(module_name) == _room(importer), (
                f"{_study_id(path)}:{line} imports {module_name}, private to {_room(module_name)}"
            )


def test_the_study_rooms_are_the_documented_ones():
    """The package docstring is the table of contents: every room is listed there."""
    import study

    for room in STUDY_ROOMS:
        assert f"``{room}``" in (study.__doc__ or ""), f"{room} missing from study's docstring"


@pytest.mark.parametrize("room", STUDY_ROOMS)
def test_every_room_has_a_door(room: str):
    module = importlib.import_module(room)
    assert module.__doc__, f"{room} has no docstring"
    public = getattr(module, "__all__", None)
    assert public, f"{room} has no __all__"
    for name in public:
        assert not name.startswith("_"), f"{room}.__all__ lists private {name!r}"
        assert hasattr(module, name), f"{room}.__all__ lists missing {name!r}"


@pytest.mark.parametrize(
    "path",
    sorted([*(ROOT / "actmix").rglob("*.py"), *STUDY_FILES]),
    ids=_study_id,
)
def test_no_module_is_over_the_size_limit(path: Path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{_study_id(path)} has {lines} lines; split it"


HEAVY = ("torch", "xgboost", "sklearn", "ray", "mlflow", "optuna")


def test_the_command_line_parser_loads_no_heavy_package():
    """``actmix-study --help`` and ``--version`` answer in a fraction of a second: building
    the whole parser (every subcommand's options) imports neither torch nor xgboost, Ray,
    MLflow or Optuna; commands import those when they run."""
    assert _loaded("from study.cli import build_parser; build_parser()", HEAVY) == []


def test_reading_a_configuration_loads_no_heavy_package():
    assert _loaded("import actmix; from actmix.config import RunConfig; RunConfig()", HEAVY) == []


def test_the_package_loads_each_public_name_from_its_home():
    """``actmix`` imports its names on first use: the table of homes is the public API."""
    assert sorted(actmix._HOMES) == sorted(actmix.__all__)
