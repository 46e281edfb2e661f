"""Where study leans on private interfaces of Ray Tune and Optuna: here and nowhere else.

Both are needed to resume a study exactly, and neither library offers a public way:

- Tune's ``SearchGenerator`` keeps the experiment that says where new trials go in
  ``_experiment`` (with ``_counter`` and ``_finished``), restored from the old folder's state:
  a moved store must point it at the new folder (``RelocatableSearchGenerator``).
- Optuna hands out a ``Trial`` (to report intermediate values and suggest parameters) only
  from ``Study.ask``, which always makes a new trial; a resumed driver must get the RUNNING
  trials it already asked for back, so it builds them with the ``Trial`` constructor
  (``running_trial``), which Optuna documents as internal.

``TESTED`` names the minor versions these were tested on; ``pyproject.toml`` bounds the
packages to them, and ``tests/study/test_adapters.py`` fails on any other, so an upgrade is
a deliberate change that reruns the resume tests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ray.tune.search import SearchGenerator

from study.store import relocate

if TYPE_CHECKING:
    import optuna

__all__ = ["TESTED", "RelocatableSearchGenerator", "running_trial", "untested_versions"]

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


def running_trial(
    study: optuna.Study, storage: optuna.storages.BaseStorage, number: int
) -> optuna.Trial:
    """The live ``Trial`` of trial ``number`` of ``study`` (kept in ``storage``): one the
    searcher asked for before a restart, through which it reports and is told."""
    import optuna

    study_id = storage.get_study_id_from_name(study.study_name)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
    return optuna.Trial(study, trial_id)


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
