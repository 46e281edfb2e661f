"""The MLflow store of studies, without Ray: one client factory, study runs, final-CV runs, queries.

A study is an MLflow experiment with one parent run per launch (``actmix.role=study``)
and one child run per trial (written by ``study.tracking._trial_runs`` from the driver). A
final ``cv`` is one run with ``stage=final``. ``cv --tracking-uri``, ``report`` and
``leaderboard`` import only this module, so they never load Ray.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from study.tracking._runs_view import write_runs_view
from study.tracking._tags import (
    CV_RESULT_ARTIFACT,
    TAG_DATASET,
    TAG_METRIC,
    TAG_MODE,
    TAG_MODEL,
    TAG_PARENT,
    TAG_ROLE,
    TAG_STUDY,
    Mode,
)

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

    from actmix.cv import CVResult

__all__ = [
    "RunStatus",
    "check_tracking_uri",
    "client_for",
    "create_tracking_schema",
    "experiment_id_for",
    "finish_study_run",
    "log_final_cv",
    "now_ms",
    "open_study_run",
    "param_text",
    "search_all_runs",
    "study_names",
    "study_runs",
    "trial_runs",
]

RunStatus = Literal["FINISHED", "KILLED", "FAILED"]

# MLflow rejects longer parameter values (the SQL column's width)
_PARAM_LIMIT = 6000
# runs per search request (MLflow's own ceiling for one page is 50,000)
SEARCH_PAGE = 10000


def client_for(uri: str) -> MlflowClient:
    """The one way ``study`` talks to MLflow: an explicit client, never the global fluent API."""
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def create_tracking_schema(uri: str) -> None:
    """Create the tracking store's schema if it is missing (MLflow does on first use)."""
    client_for(uri).search_experiments(max_results=1)


def check_tracking_uri(uri: str, *, timeout: float = 5.0) -> None:
    """Fail early: ``ValueError`` for a scheme MLflow has no store for, ``ConnectionError``
    when an HTTP tracking server does not answer."""
    scheme = _uri_scheme(uri)
    known = _tracking_schemes()
    if scheme not in known:
        raise ValueError(
            f"unknown MLflow tracking URI scheme {scheme!r} in {uri!r}; valid: a path or "
            + ", ".join(f"{name}:" for name in sorted(known - {""}))
        )
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout):
            return
    except urllib.error.HTTPError:
        return  # the server answered; some deployments have no /health route
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ConnectionError(f"cannot reach MLflow tracking server {uri} ({reason})") from None


# MLflow's own tracking stores (mlflow.tracking._tracking_service.utils); "" is a plain path
_BUILTIN_SCHEMES = frozenset(
    {"", "file", "sqlite", "postgresql", "mysql", "mssql", "http", "https"}
    | {"databricks", "databricks-uc", "uc"}
)


def _uri_scheme(uri: str) -> str:
    scheme = urllib.parse.urlsplit(uri).scheme.lower()
    if len(scheme) == 1:
        return ""  # a Windows drive letter: a path
    return scheme.partition("+")[0]  # postgresql+psycopg2 -> postgresql


def _tracking_schemes() -> frozenset[str]:
    """MLflow's schemes and those tracking-store plug-ins register (entry points)."""
    from importlib.metadata import entry_points

    plugins = {entry.name for entry in entry_points(group="mlflow.tracking_store")}
    return _BUILTIN_SCHEMES | plugins


def now_ms() -> int:
    """MLflow's timestamp unit."""
    return int(time.time() * 1000)


def param_text(value: Any) -> str:
    """An MLflow parameter value: JSON for containers (so it reads back), cut to MLflow's limit.

    Trial runs are matched to re-issued configurations by comparing these texts.
    """
    if isinstance(value, list | tuple | dict):
        text = json.dumps(value, separators=(",", ":"), default=str)
    else:
        text = str(value)
    return text[:_PARAM_LIMIT]


# MLflow's experiment tag for the kind of work in it (its UI picks its views by it)
EXPERIMENT_KIND = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"


def experiment_id_for(
    client: MlflowClient,
    name: str,
    *,
    artifact_location: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> str:
    """The id of experiment ``name``, created (with these settings) when it does not exist.

    A created experiment is marked as model training (``EXPERIMENT_KIND``), so that the
    MLflow UI opens it on its runs table rather than on its GenAI overview.
    """
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    try:
        return client.create_experiment(
            name,
            artifact_location=artifact_location,
            tags={EXPERIMENT_KIND: MODEL_TRAINING, **(tags or {})},
        )
    except MlflowException:
        # another driver (a suite's side-by-side worker) created it since the lookup
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return str(found.experiment_id)


def open_study_run(
    uri: str,
    study: str,
    *,
    experiment: str | None = None,
    artifact_location: str | None,
    params: Mapping[str, Any],
    tags: Mapping[str, str],
) -> tuple[str, str]:
    """Create (or reuse) the study's experiment (``experiment``, by default named after the
    study) and start its parent run; returns their ids."""
    from mlflow.entities import Param

    client = client_for(uri)
    own = experiment is None or experiment == study
    experiment_id = experiment_id_for(
        client,
        study if experiment is None else experiment,
        artifact_location=artifact_location,
        tags={TAG_STUDY: study} if own else None,
    )
    run = client.create_run(
        experiment_id, run_name=study, tags={TAG_ROLE: "study", TAG_STUDY: study, **tags}
    )
    client.log_batch(run.info.run_id, params=[Param(k, param_text(v)) for k, v in params.items()])
    if TAG_METRIC in tags and tags.get(TAG_MODE) in ("min", "max"):
        mode: Mode = "min" if tags[TAG_MODE] == "min" else "max"
        write_runs_view(client, experiment_id, study, tags[TAG_METRIC], mode)
    return experiment_id, run.info.run_id


def finish_study_run(
    uri: str, run_id: str, status: RunStatus, metrics: Mapping[str, float]
) -> None:
    """Log the study's summary ``metrics`` on its parent run and end it with ``status``."""
    from mlflow.entities import Metric

    client = client_for(uri)
    now = now_ms()
    numbers = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}
    client.log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in numbers.items()])
    client.set_terminated(run_id, status=status)


def search_all_runs(
    client: MlflowClient,
    experiment_ids: list[str],
    filter_string: str,
    *,
    order_by: list[str] | None = None,
    limit: int | None = None,
) -> list[Run]:
    """Every run matching ``filter_string`` (at most ``limit``), page after page.

    The one place study pages through MLflow's search: a page holds at most
    ``SEARCH_PAGE`` runs, and a store may hold more.
    """
    runs: list[Run] = []
    page_token = None
    while experiment_ids and (limit is None or len(runs) < limit):
        size = SEARCH_PAGE if limit is None else min(SEARCH_PAGE, limit - len(runs))
        page = client.search_runs(
            experiment_ids,
            filter_string=filter_string,
            order_by=order_by,
            max_results=size,
            page_token=page_token,
        )
        runs.extend(page)
        page_token = page.token
        if not page_token:
            break
    return runs


def study_runs(client: MlflowClient, study: str, role: str) -> list[Run]:
    """Runs of ``study`` with ``role`` (``study`` = parent runs, ``trial``), newest first.

    Found by tag in every experiment: a study has an experiment of its own, or shares
    its suite's.
    """
    experiments = [e.experiment_id for e in client.search_experiments()]
    return search_all_runs(
        client,
        experiments,
        f"tags.`{TAG_ROLE}` = '{role}' and tags.`{TAG_STUDY}` = '{study}'",
        order_by=["attributes.start_time DESC"],
    )


def study_names(client: MlflowClient) -> list[str]:
    """Every study with a parent run in the store, sorted."""
    experiments = [e.experiment_id for e in client.search_experiments()]
    parents = search_all_runs(client, experiments, f"tags.`{TAG_ROLE}` = 'study'")
    return sorted({run.data.tags[TAG_STUDY] for run in parents if TAG_STUDY in run.data.tags})


def trial_runs(uri: str, experiment_id: str, parent_run_id: str) -> list[Run]:
    """Child runs of a study's parent run, oldest first."""
    found = search_all_runs(
        client_for(uri), [experiment_id], f"tags.`{TAG_PARENT}` = '{parent_run_id}'"
    )
    return list(reversed(found))


def log_final_cv(
    uri: str,
    result: CVResult,
    *,
    experiment: str,
    provenance: Mapping[str, Any],
    json_path: Path,
) -> str:
    """Log a final ``cv`` result as one run (``stage=final``) with per-fold rows attached."""
    from mlflow.entities import Metric, Param

    client = client_for(uri)
    experiment_id = experiment_id_for(client, experiment)
    tags = {
        TAG_ROLE: "final",
        "stage": "final",
        TAG_DATASET: result.dataset,
        TAG_MODEL: result.model_name,
        **{f"source.{k}": str(v) for k, v in provenance.items()},
    }
    run = client.create_run(experiment_id, run_name=f"final-{result.model_name}", tags=tags)
    run_id = run.info.run_id
    try:
        params = {
            "folds": result.splits["k"],
            "split_seed": result.splits["seed"],
            "splits_fingerprint": result.splits["fingerprint"],
            "seeds": list(result.seeds),
            **_flatten(result.config),
        }
        now = now_ms()
        metrics = [
            Metric(f"{name}_{stat}", value, now, 0)
            for name, stats in result.summary.items()
            for stat, value in stats.items()
            if math.isfinite(value)
        ]
        client.log_batch(
            run_id,
            metrics=metrics,
            params=[Param(k, param_text(v)) for k, v in params.items()],
        )
        with tempfile.TemporaryDirectory() as directory:
            # a fixed name, so ``report`` finds it whatever the local file was called
            named = Path(directory) / CV_RESULT_ARTIFACT
            named.write_bytes(Path(json_path).read_bytes())
            client.log_artifact(run_id, str(named))
        client.set_terminated(run_id, status="FINISHED")
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    return run_id


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        # an activation's options stay one JSON parameter: they only make sense together
        if isinstance(value, Mapping) and value and key != "activation":
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
