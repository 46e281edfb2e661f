"""A study's view of MLflow's runs table: its trials, best first, with the objective shown.

MLflow's UI opens an experiment's runs table with a handful of attribute columns; the
objective is one of many hidden metric columns. The UI can load a view from an
experiment tag (its "shared view", ``mlflow.sharedViewState.<key>``, named in the URL as
``?viewStateShareKey=<key>``): each study writes one, and ``ui`` prints its URL.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from study.tracking._tags import TAG_STOPPED_EARLY, TAG_STUDY, Mode
from study.tracking.payload import std_key

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

__all__ = ["runs_view_url", "write_runs_view"]

_SHARED_VIEW_TAG = "mlflow.sharedViewState."  # MLflow UI's prefix (its JS bundle)


def _key(study: str) -> str:
    return f"study-{study}"


def _column(kind: str, key: str) -> str:
    # the UI's column ids: kind.`key` (metrics, params, tags, attributes)
    return f"{kind}.`{key}`"


def write_runs_view(
    client: MlflowClient, experiment_id: str, study: str, objective: str, mode: Mode
) -> None:
    """Store the view of ``study``'s runs: its runs only, best ``objective`` first, the
    objective, its spread over members and the stopped-early tag as the shown columns."""
    # study names are letters, digits, '_', '.' and '-' (study.request): no quoting needed
    state = {
        "searchFilter": f"tags.`{TAG_STUDY}` = '{study}'",
        "orderByKey": _column("metrics", objective),
        "orderByAsc": mode == "min",
        "selectedColumns": [
            _column("metrics", objective),
            _column("metrics", std_key(objective)),
            _column("tags", TAG_STOPPED_EARLY),
        ],
    }
    client.set_experiment_tag(experiment_id, _SHARED_VIEW_TAG + _key(study), json.dumps(state))


def runs_view_url(client: MlflowClient, address: str, experiment_id: str, study: str) -> str:
    """The UI's URL of ``study``'s runs table: its view when the study wrote one (those
    made before the view existed open on the plain table)."""
    url = f"{address}/#/experiments/{experiment_id}/runs"
    tags = client.get_experiment(experiment_id).tags
    if _SHARED_VIEW_TAG + _key(study) in tags:
        url += f"?viewStateShareKey={_key(study)}"
    return url
