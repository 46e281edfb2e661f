"""The Python API for studies and their results (what a notebook imports).

The CLI is built on the same functions; this module names the ones worth a notebook:

.. code-block:: python

    from study.api import StudyRequest, run_study, trials

    outcome = run_study(StudyRequest(dataset="power_plant", trials=8, epochs=20))
    frame = trials(outcome.name)  # one row per trial, best first
    frame[["trial", "value", "param.train.lr"]].head()

- :func:`run_study` / :func:`resume_study` run a study (Ray, Optuna, MLflow) from a
  :class:`StudyRequest` and return a :class:`StudyOutcome`;
- :func:`trials` loads a study's trials as a pandas DataFrame: rank, status, objective,
  its std over members, every parameter (``param.<name>``) and every metric the trial
  logged last (``metric.<key>``);
- :func:`best_configuration` is what ``export-best`` writes: the best finished trial's
  whole configuration with its provenance;
- :func:`suite_report` reads a suite's ``report.json`` (written by ``suite report``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from study.request import StudyRequest
from study.run import StudyOutcome, resume_study, run_study
from study.store import DEFAULT_STORE, default_store_uris, store_folder
from study.tracking import best_configuration as _best_configuration
from study.tracking import client_for, study_trials

__all__ = [
    "StudyOutcome",
    "StudyRequest",
    "best_configuration",
    "resume_study",
    "run_study",
    "suite_report",
    "trials",
]


def _uri(store: str | Path, tracking_uri: str | None) -> str:
    if tracking_uri is not None:
        return tracking_uri
    folder = store_folder(store)
    if not (folder / "mlflow.db").is_file():
        raise ValueError(f"no MLflow store at {folder / 'mlflow.db'}; give store= or tracking_uri=")
    return default_store_uris(folder)[0]


def _value(text: str) -> Any:
    """A logged parameter back as a value: numbers, booleans and lists are JSON."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def trials(
    study: str, *, store: str | Path = DEFAULT_STORE, tracking_uri: str | None = None
) -> pd.DataFrame:
    """Every trial of ``study``, best first (see the module docstring for the columns)."""
    uri = _uri(store, tracking_uri)
    ranked = study_trials(uri, study)
    client = client_for(uri)
    extra = []
    for run_id in ranked["run_id"]:
        data = client.get_run(run_id).data
        row = {f"param.{k}": _value(v) for k, v in sorted(data.params.items())}
        row |= {f"metric.{k}": v for k, v in sorted(data.metrics.items())}
        extra.append(row)
    return pd.concat([ranked.reset_index(drop=True), pd.DataFrame(extra)], axis=1)


def best_configuration(
    study: str, *, store: str | Path = DEFAULT_STORE, tracking_uri: str | None = None
) -> dict[str, Any]:
    """The best finished trial's configuration with its provenance (``export-best``)."""
    return _best_configuration(_uri(store, tracking_uri), study)


def suite_report(path: str | Path) -> dict[str, Any]:
    """A suite's ``report.json`` (``path``: the file or the folder ``suite report`` wrote):
    ``answer``, ``results``, ``comparisons``, ``ranks``, ``importances``,
    ``budget_checks`` and ``budget``, as documented in the README's suite section."""
    path = Path(path)
    file = path / "report.json" if path.is_dir() else path
    if not file.is_file():
        raise ValueError(f"no suite report at {file}; write one with `actmix-study suite report`")
    return json.loads(file.read_text(encoding="utf-8"))
