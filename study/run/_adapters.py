"""Where study leans on private interfaces of Ray Tune and Optuna: here and nowhere else.

Both are needed to resume a study exactly, and neither library offers a public way:

- Tune's ``SearchGenerator`` keeps the experiment that says where new trials go in
  ``_experiment`` (with ``_counter`` and ``_finished``), restored from the old folder's state:
  a moved store must point it at the new folder (``RelocatableSearchGenerator``).
- Optuna's sampler is pickled into the searcher's saved state (its random generator must
  continue where it was): the pickle holds Optuna's private attributes, which only the
  version that wrote them is sure to read.

``TESTED`` names the minor versions these were tested on; ``pyproject.toml`` bounds the
packages to them, and ``tests/study/test_adapters.py`` fails on any other, so an upgrade is
a deliberate change that reruns the resume tests.
"""

from __future__ import annotations

from typing import Any

from ray.tune.search import SearchGenerator

from study.store import relocate

__all__ = ["TESTED", "RelocatableSearchGenerator", "untested_versions"]

# package -> the minor versions whose private interfaces this module was tested against
TESTED: dict[str, tuple[str, ...]] = {"ray": ("2.60",), "optuna": ("5.1",)}


def untested_versions() -> dict[str, str]:
    """Installed versions of the packages in ``TESTED`` that were not tested here."""
    from importlib import metadata

    found = {}
    for package, minors in TESTED.items():
        version = metadata.version(package)
        if ".".join(version.split(".")[:2]) not in minors:
            found[package] = version
    return found


class RelocatableSearchGenerator(SearchGenerator):
    """Tune's wrapper around a searcher, whose saved experiment follows a moved store.

    Tune restores the wrapper's experiment (its ``storage`` says where new trials go)
    from the old folder's state; inside ``relocated`` this points it at the new one.
    Pickled (in Tune's saved tuner) it is the fresh wrapper Tune would have made: the
    experiment and counters come back from Tune's search state instead.
    """

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_experiment": None, "_counter": 0, "_finished": False}

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        storage = self._experiment.spec.get("storage") if self._experiment else None
        if storage is not None:
            storage.storage_fs_path = relocate(storage.storage_fs_path)
