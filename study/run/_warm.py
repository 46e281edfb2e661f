"""Warm starts: a new study tries another study's best configurations first.

``run --warm-start STUDY --top K`` takes the K best complete trials of STUDY (same store,
same model, any dataset) from its Optuna storage and queues them right after the seed
default. A configuration that does not fit the new search space (a param the space lacks
or does not search, a value outside its range or choices) is skipped with the reason, not
moved into the space: it would no longer be the configuration that did well.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

from study.space import SearchSpace, suggest_params
from study.tracking import TAG_MODEL, client_for, study_names, study_runs

__all__ = ["WarmStart", "warm_start"]


@dataclass(frozen=True, slots=True)
class WarmStart:
    """The configurations queued after the baseline, and those skipped (with why)."""

    source: str  # the study they come from
    points: tuple[dict[str, Any], ...] = ()  # Optuna params, best first
    skipped: tuple[str, ...] = ()  # "trial-0007: why" per configuration left out


def warm_start(
    source: str,
    top: int,
    *,
    space: SearchSpace,
    model: str,
    tracking_uri: str,
    optuna_storage: str,
    baseline: dict[str, Any] | None = None,
) -> WarmStart:
    """Those of the ``top`` best configurations of study ``source`` that fit ``space`` and
    are not ``baseline`` (the new study's trial 0 already).

    ValueError when ``source`` is not a study of the store or tuned another model.
    """
    import optuna

    client = client_for(tracking_uri)
    parents = study_runs(client, source, "study")
    if not parents:
        known = ", ".join(study_names(client)) or "none"
        raise ValueError(f"--warm-start: no study named {source!r} in the store; known: {known}")
    tuned = parents[0].data.tags.get(TAG_MODEL)
    if tuned != model:
        raise ValueError(
            f"--warm-start: study {source!r} tuned {tuned}, not {model}: its configurations "
            "do not apply to this model"
        )
    study = optuna.load_study(study_name=source, storage=optuna_storage)
    sign = -1.0 if study.direction.name == "MAXIMIZE" else 1.0
    done = sorted(
        (t for t in study.trials if t.state.name == "COMPLETE" and t.value is not None),
        key=lambda t: sign * float(t.value or 0.0),
    )
    points, skipped = [], []
    for trial in done[:top]:
        problem = _misfit(space, trial.params)
        if problem is None and trial.params == baseline:
            problem = "it is the seed default, trial 0 already"
        if problem is None:
            points.append(dict(trial.params))
        else:
            skipped.append(f"trial-{trial.number:04d}: {problem}")
    return WarmStart(source=source, points=tuple(points), skipped=tuple(skipped))


def _misfit(space: SearchSpace, point: dict[str, Any]) -> str | None:
    """Why ``point`` is not a configuration of ``space``; None when it is one."""
    import optuna

    trial = optuna.trial.FixedTrial(point)
    try:
        with warnings.catch_warnings():
            # Optuna only warns about a fixed value outside a range: here it is a misfit
            warnings.simplefilter("error")
            suggest_params(space, trial)
    except (ValueError, UserWarning) as error:
        return str(error).splitlines()[0]
    extra = sorted(set(point) - set(trial.params))
    if extra:
        return f"{', '.join(extra)} not searched by {space.path}"
    return None
