"""MLflow tracking from the driver: one parent run per study, one child run per trial.

Logging happens in a Ray Tune ``Callback`` on the driver, so there is a single
writer (a SQLite store works) and workers never need access to the tracking
server. Each child run carries its Tune ``trial_id`` as a tag: a restored study
finds and continues its runs instead of creating duplicates.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from ray.tune import Callback

from study.tags import (
    CV_RESULT_ARTIFACT,
    TAG_DATASET,
    TAG_METRIC,
    TAG_MODE,
    TAG_MODEL,
    TAG_PARENT,
    TAG_ROLE,
    TAG_STUDY,
    TAG_TRIAL_ID,
)

__all__ = [
    "CV_RESULT_ARTIFACT",
    "TAG_DATASET",
    "TAG_MODEL",
    "TAG_ROLE",
    "TAG_STUDY",
    "MlflowTrialLogger",
    "check_tracking_uri",
    "client_for",
    "finish_study_run",
    "log_final_cv",
    "open_study_run",
    "trial_runs",
]


def client_for(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def check_tracking_uri(uri: str, *, timeout: float = 5.0) -> None:
    """Fail early (``ConnectionError``) when an HTTP tracking server does not answer."""
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


def _as_param_value(value: Any) -> str:
    if isinstance(value, list | tuple | dict):
        text = json.dumps(value, separators=(",", ":"), default=str)
    else:
        text = str(value)
    return text[:6000]


def open_study_run(
    uri: str,
    study: str,
    *,
    artifact_location: str | None,
    params: Mapping[str, Any],
    tags: Mapping[str, str],
) -> tuple[str, str]:
    """Create (or reuse) the study's experiment and start its parent run; returns their ids."""
    from mlflow.entities import Param

    client = client_for(uri)
    experiment = client.get_experiment_by_name(study)
    if experiment is None:
        experiment_id = client.create_experiment(
            study, artifact_location=artifact_location, tags={TAG_STUDY: study}
        )
    else:
        experiment_id = experiment.experiment_id
    run = client.create_run(
        experiment_id, run_name=study, tags={TAG_ROLE: "study", TAG_STUDY: study, **tags}
    )
    client.log_batch(
        run.info.run_id, params=[Param(k, _as_param_value(v)) for k, v in params.items()]
    )
    return experiment_id, run.info.run_id


def finish_study_run(uri: str, run_id: str, status: str, metrics: Mapping[str, float]) -> None:
    from mlflow.entities import Metric

    client = client_for(uri)
    now = int(time.time() * 1000)
    finite = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}
    client.log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in finite.items()])
    client.set_terminated(run_id, status=status)


def trial_runs(uri: str, experiment_id: str, parent_run_id: str) -> list:
    """Child runs of a study, oldest first."""
    client = client_for(uri)
    return list(
        reversed(
            client.search_runs(
                [experiment_id],
                filter_string=f"tags.`{TAG_PARENT}` = '{parent_run_id}'",
                max_results=10000,
            )
        )
    )


class MlflowTrialLogger(Callback):
    """Ray Tune callback that mirrors every trial into a nested MLflow run."""

    def __init__(
        self,
        *,
        uri: str,
        experiment_id: str,
        parent_run_id: str,
        study: str,
        dataset: str,
        model: str,
        objective: str,
        mode: str,
        config_for_trial,
        report=None,
    ) -> None:
        self.uri, self.experiment_id, self.parent_run_id = uri, experiment_id, parent_run_id
        self.study, self.dataset, self.model = study, dataset, model
        self.objective, self.mode = objective, mode
        self.report = report  # optional one-line progress printer
        # turns a trial's sampled config into the full RunConfig dict logged as config.yaml
        self.config_for_trial = config_for_trial
        self._client = None
        self._runs: dict[str, str] = {}
        self._final: dict[str, dict[str, Any]] = {}
        self._last_step: dict[str, int] = {}  # per run: steps up to here are already logged

    def __getstate__(self) -> dict[str, Any]:
        # pickled into Tune's experiment state for restore: no live client or caches
        state = self.__dict__.copy()
        state.update(_client=None, _runs={}, _final={}, _last_step={})
        return state

    @property
    def client(self):
        if self._client is None:
            self._client = client_for(self.uri)
        return self._client

    # --- run bookkeeping -----------------------------------------------------------------

    def _existing_children(self) -> list:
        return trial_runs(self.uri, self.experiment_id, self.parent_run_id)

    def _run_id(self, trial, trials=()) -> str:
        if trial.trial_id in self._runs:
            return self._runs[trial.trial_id]
        children = self._existing_children()
        for run in children:
            if run.data.tags.get(TAG_TRIAL_ID) == trial.trial_id:
                return self._continue(trial, run.info.run_id)
        orphan = self._orphan_run(children, trial, trials)
        if orphan is not None:
            self.client.set_tag(orphan, TAG_TRIAL_ID, trial.trial_id)
            return self._continue(trial, orphan)
        index = _creation_index(trial, default=len(children))
        run = self.client.create_run(
            self.experiment_id,
            run_name=f"trial-{index:04d}",
            tags={
                TAG_PARENT: self.parent_run_id,
                TAG_ROLE: "trial",
                TAG_STUDY: self.study,
                TAG_DATASET: self.dataset,
                TAG_MODEL: self.model,
                TAG_METRIC: self.objective,
                TAG_MODE: self.mode,
                TAG_TRIAL_ID: trial.trial_id,
                "actmix.trial_index": str(index),
            },
        )
        self._runs[trial.trial_id] = run.info.run_id
        self._log_trial_config(run.info.run_id, trial.config)
        return run.info.run_id

    def _continue(self, trial, run_id: str) -> str:
        """Pick up an existing run; epochs a restored trial replays are not logged twice."""
        history = self.client.get_metric_history(run_id, self.objective)
        self._last_step[run_id] = max((m.step for m in history), default=-1)
        self._runs[trial.trial_id] = run_id
        return run_id

    def _orphan_run(self, children, trial, trials) -> str | None:
        """A RUNNING child of a trial Tune no longer knows (created just before the driver
        died, missing from Tune's snapshot) with the same parameters: the restored
        searcher re-issues that configuration, so the run is continued, not duplicated."""
        if not trials:
            return None
        live = {t.trial_id for t in trials}
        wanted = {str(k): _as_param_value(v) for k, v in trial.config.items()}
        for run in children:
            if (
                run.info.status == "RUNNING"
                and run.data.tags.get(TAG_TRIAL_ID) not in live
                and run.data.params == wanted
            ):
                return run.info.run_id
        return None

    def _log_trial_config(self, run_id: str, config: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        params = [Param(str(k), _as_param_value(v)) for k, v in sorted(config.items())]
        if params:
            self.client.log_batch(run_id, params=params)
        self.client.log_text(
            run_id,
            yaml.safe_dump(self.config_for_trial(dict(config)), sort_keys=False),
            "config.yaml",
        )

    # --- Tune callback hooks ---------------------------------------------------------------

    def on_trial_start(self, iteration, trials, trial, **info) -> None:  # noqa: ARG002
        self._run_id(trial, trials)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:  # noqa: ARG002
        from mlflow.entities import Metric

        run_id = self._run_id(trial)
        step = int(result.get("epoch", result.get("training_iteration", 0)))
        if "resumed_from_epoch" in result:
            self.client.set_tag(run_id, "resumed_from_epoch", str(result["resumed_from_epoch"]))
        if step <= self._last_step.get(run_id, -1):
            return  # replayed by a restored trial; its final report's step comes after
        now = int(time.time() * 1000)
        metrics = [
            Metric(key, float(value), now, step)
            for key, value in result.items()
            if _is_number(value) and (key in _LOGGED_METRICS or key.startswith("val_"))
        ]
        if result.get("final"):
            self._final[trial.trial_id] = result
            if result.get("node_id"):
                self.client.set_tag(run_id, "ray_node_id", str(result["node_id"]))
            metric = self.objective.removesuffix("_mean").removeprefix("val_")
            for fold, score in enumerate(result.get("fold_scores", [])):
                metrics.append(Metric(f"fold{fold}_val_{metric}", float(score), now, step))
            metrics.append(
                Metric("diverged_members", float(result.get("diverged_members", 0)), now, step)
            )
        if metrics:
            self.client.log_batch(run_id, metrics=metrics)
        if result.get("final") and result.get("mixing_weights"):
            self._log_heatmap(run_id, result["mixing_weights"], result["basis"])
        if result.get("final") and result.get("curves"):
            self._log_curves(run_id, result["curve_grid"], result["curves"])
        if result.get("final") and result.get("model_file"):
            self._log_model(run_id, result["model_file"])

    def _log_model(self, run_id: str, encoded: str) -> None:
        import base64

        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "model.pt"
            path.write_bytes(base64.b64decode(encoded))
            self.client.log_artifact(run_id, str(path))

    def _log_curves(self, run_id: str, grid, curves) -> None:
        import numpy as np

        from actmix.plots import plot_learned_curves, save_figure

        figure = plot_learned_curves(
            np.asarray(grid),
            [np.asarray(c) for c in curves],
            title=f"{self.model}: learned activation curves (fold 0)",
        )
        with tempfile.TemporaryDirectory() as directory:
            path = save_figure(figure, Path(directory) / "learned_curves.png")
            self.client.log_artifact(run_id, str(path))

    def _log_heatmap(self, run_id: str, weights, basis) -> None:
        import numpy as np

        from actmix.plots import plot_mixing_weights, save_figure

        figure = plot_mixing_weights(
            [np.asarray(w) for w in weights], basis, title="ActMix mixing weights (fold 0)"
        )
        with tempfile.TemporaryDirectory() as directory:
            path = save_figure(figure, Path(directory) / "mixing_weights.png")
            self.client.log_artifact(run_id, str(path))

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:  # noqa: ARG002
        final = self._final.pop(trial.trial_id, None) or (
            trial.last_result if (trial.last_result or {}).get("final") else None
        )
        if final is None:
            # no final report: the scheduler (ASHA) stopped the trial early
            self._end(trial, "KILLED", (trial.last_result or {}).get(self.objective))
            return
        value = final.get(self.objective)
        if value is None or not math.isfinite(float(value)):
            reason = final.get("diverged_reason", "objective is not finite")
            self._end(trial, "FAILED", None, reason=reason)
            return
        self._end(trial, "FINISHED", value)

    def on_trial_recover(self, iteration, trials, trial, **info) -> None:  # noqa: ARG002
        # Tune retries a crashed trial (FailureConfig.max_failures): count it on the run
        run_id = self._run_id(trial)
        retries = int(self.client.get_run(run_id).data.tags.get("retries", "0")) + 1
        self.client.set_tag(run_id, "retries", str(retries))
        error = _trial_error(trial)
        if error is not None:
            self.client.set_tag(run_id, "last_error", _last_line(error))

    def on_trial_error(self, iteration, trials, trial, **info) -> None:  # noqa: ARG002
        error = _trial_error(trial)
        reason = _last_line(error) if error else "trial raised an error"
        self._end(trial, "FAILED", None, reason=reason)

    def _end(self, trial, status: str, value: float | None, *, reason: str | None = None) -> None:
        run_id = self._run_id(trial)
        if status == "KILLED":
            self.client.set_tag(run_id, "stopped_early", "true")
        if reason is not None:
            self.client.set_tag(run_id, "failure_reason", reason[:5000])
        self.client.set_terminated(run_id, status=status)
        if self.report is not None:
            name = self.client.get_run(run_id).info.run_name
            shown = "" if value is None else f" {self.objective}={float(value):.4f}"
            detail = f" ({reason})" if reason else ""
            said = {"FINISHED": "finished", "KILLED": "stopped early", "FAILED": "failed"}[status]
            self.report(f"{name} {said}{shown}{detail}")


def _trial_error(trial) -> str | None:
    """The trial's error trace: the driver-local file first (storage may not be synced yet)."""
    try:
        path = trial.error_file
        if path and Path(path).is_file():
            return Path(path).read_text()
    except (OSError, AttributeError):
        pass
    error = trial.get_error()
    return None if error is None else str(error)


def _last_line(error: object) -> str:
    """The informative last line of a (remote) traceback."""
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return lines[-1][:5000] if lines else type(error).__name__


def _creation_index(trial, *, default: int) -> int:
    """0-based order in which the searcher created ``trial`` (so trial-0000 is the baseline).

    Trials start concurrently, so start order is not creation order; Tune's experiment
    tag begins with the searcher's 1-based counter ("3_train.lr=...").
    """
    head = str(getattr(trial, "experiment_tag", "")).split("_", 1)[0]
    return int(head) - 1 if head.isdigit() else default


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# per-epoch values worth a curve in the UI (besides every float val_* key)
_LOGGED_METRICS = {
    "train_loss",
    "temperature",
    "entropy",
    "lr",
    "members_training",
    "best_iteration",
}


def log_final_cv(
    uri: str, result, *, experiment: str, provenance: Mapping[str, Any], json_path: Path
) -> str:
    """Log a final ``cv`` result as one run (``stage=final``) with per-fold rows attached."""
    from mlflow.entities import Metric, Param

    client = client_for(uri)
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
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
        now = int(time.time() * 1000)
        metrics = [
            Metric(f"{name}_{stat}", value, now, 0)
            for name, stats in result.summary.items()
            for stat, value in stats.items()
            if math.isfinite(value)
        ]
        client.log_batch(
            run_id,
            metrics=metrics,
            params=[Param(k, _as_param_value(v)) for k, v in params.items()],
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
        if isinstance(value, Mapping) and value and key != "activation":
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
