"""Suite files: which datasets, models and untuned references a nested-CV suite compares.

A suite file is YAML, checked like a search space: unknown keys, wrong types and
impossible values stop with a message that names the file and the key.

.. code-block:: yaml

    name: uci3
    datasets: [power_plant, adult, magic_gamma]   # or {spec: csv:data.csv, target: y}
    models: [actmix, relu, xgboost]               # or {model: actmix, space: my.yaml}
    references:                                   # untuned, on the same outer folds
      actmix-seed-config: {model: actmix}
      actmix-seed-readme: {model: actmix, config: {mlp.activation.relu_bias: 1.5}}
    protocol: {outer_folds: 5, repeats: 2, inner_folds: 5, seeds: 3, split_seed: 0}
    study: {trials: 30, n_startup_trials: 10, epochs: 100, scheduler: asha}
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from actmix.config import XGBOOST, RunConfig
from actmix.types import Task
from study.request import SchedulerKind, request_default
from study.system import parse_yaml, shorten

__all__ = [
    "Protocol",
    "Reference",
    "StudyBudget",
    "Suite",
    "SuiteDataset",
    "SuiteModel",
    "ensemble_label",
    "load_suite",
    "reference_config",
]

_MAX_BYTES = 1_000_000  # a suite file is a page of settings; anything larger is a mistake
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")


@dataclass(frozen=True, slots=True)
class SuiteDataset:
    """One dataset of a suite."""

    label: str  # how reports and study names call it
    spec: str  # bundled name, uci:<id> or csv:<path> (made absolute)
    target: str | None = None
    task: Task | None = None


@dataclass(frozen=True, slots=True)
class SuiteModel:
    """One tuned model of a suite: a study per outer fold over ``space``."""

    label: str
    model: str  # activation name or xgboost
    space: str | None = None  # None: the bundled space of ``model``


@dataclass(frozen=True, slots=True)
class Reference:
    """An untuned configuration, trained and scored on the same outer folds."""

    label: str
    model: str
    config: dict[str, Any] = field(default_factory=dict)  # dotted keys, e.g. train.lr


@dataclass(frozen=True, slots=True)
class Protocol:
    """The nested cross-validation: outer folds, the studies' inner folds, retraining seeds.

    ``repeats`` r > 1 repeats the outer cross-validation on r different splits (seeds
    ``split_seed``, ``split_seed + 1``, ...): r x ``outer_folds`` paired scores per
    comparison, which the corrected t-test needs for power.
    """

    outer_folds: int = 5
    repeats: int = 1
    inner_folds: int = 5
    seeds: int = 3  # seeds of the final retraining on each outer fold
    split_seed: int = 0  # seed of the outer split (and of each study's inner split)

    def repeat_seed(self, repeat: int) -> int:
        """The split seed of repeat ``repeat`` of the outer cross-validation."""
        return self.split_seed + repeat


@dataclass(frozen=True, slots=True)
class StudyBudget:
    """What each study (one per dataset x tuned model x outer fold) may spend."""

    trials: int = 30
    n_startup_trials: int = request_default("n_startup_trials")  # TPE's random start-up
    epochs: int = 100
    scheduler: SchedulerKind = "asha"
    max_concurrent: int = 2
    # configurations trained together as one network (MLP models; xgboost is never packed)
    pack: int = request_default("pack")
    # ASHA's first rung; None: a third of the epochs, so slow starters (an annealing
    # temperature, say) are not judged before they can show their worth
    grace_period: int | None = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0

    @property
    def grace(self) -> int:
        """ASHA's grace period in epochs, the default resolved."""
        return self.grace_period if self.grace_period is not None else -(-self.epochs // 3)


@dataclass(frozen=True, slots=True)
class Suite:
    """A whole suite file, checked."""

    name: str
    path: str
    datasets: tuple[SuiteDataset, ...]
    models: tuple[SuiteModel, ...]
    references: tuple[Reference, ...]
    protocol: Protocol
    study: StudyBudget
    focus: str  # the tuned model every other row is compared against
    text: str  # the file as read, kept in reports
    # `ensemble: {top_k: k}`: a row `<model>-ensemble` per tuned model, the k best
    # configurations of its unit's study retrained and averaged; None: no ensembles
    ensemble_top_k: int | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    @property
    def ensembles(self) -> tuple[str, ...]:
        """The ensemble rows' labels, ``<model>-ensemble`` per tuned model (or none)."""
        if self.ensemble_top_k is None:
            return ()
        return tuple(ensemble_label(m.label) for m in self.models)

    @property
    def labels(self) -> tuple[str, ...]:
        """Tuned models first, then their ensembles, then references."""
        tuned = (m.label for m in self.models)
        return (*tuned, *self.ensembles, *(r.label for r in self.references))


ENSEMBLE_SUFFIX = "-ensemble"


def ensemble_label(label: str) -> str:
    """The label of tuned model ``label``'s ensemble row."""
    return label + ENSEMBLE_SUFFIX


_TOP = ("name", "datasets", "models", "references", "protocol", "study", "focus", "ensemble")


def load_suite(path: str | Path) -> Suite:
    """Read and check a suite file; ``ValueError``/``FileNotFoundError`` name the problem."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"suite file not found: {path}")
    raw = path.read_bytes()
    if len(raw) > _MAX_BYTES:
        raise ValueError(f"{path}: {len(raw)} bytes; a suite file may have at most {_MAX_BYTES}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    data = parse_yaml(text, str(path), what="a suite file", needs="a few dozen")
    where = str(path)
    data = _mapping(data, where, _TOP)
    for required in ("name", "datasets", "models"):
        if required not in data:
            raise ValueError(f"{where}: missing key {required!r}")
    name = _label(data["name"], f"{where}: name")
    base = path.resolve().parent
    datasets = tuple(
        _dataset(item, f"{where}: datasets[{i}]", base)
        for i, item in enumerate(_list(data["datasets"], f"{where}: datasets"))
    )
    models = tuple(
        _model(item, f"{where}: models[{i}]", base)
        for i, item in enumerate(_list(data["models"], f"{where}: models"))
    )
    references = tuple(
        _reference(label, item, f"{where}: references.{label}")
        for label, item in _mapping(
            data.get("references") or {}, f"{where}: references", None
        ).items()
    )
    protocol = _dataclass(Protocol, data.get("protocol") or {}, f"{where}: protocol")
    study = _dataclass(StudyBudget, data.get("study") or {}, f"{where}: study")
    _check_protocol(protocol, study, where)
    top_k = _ensemble(data.get("ensemble"), study, f"{where}: ensemble")
    ensembles = [ensemble_label(m.label) for m in models] if top_k is not None else []
    labels = [*(m.label for m in models), *ensembles, *(r.label for r in references)]
    _unique(labels, f"{where}: models and references")
    _unique([d.label for d in datasets], f"{where}: datasets")
    tuned = [m.label for m in models]
    focus = data.get("focus") or ("actmix" if "actmix" in tuned else tuned[0])
    if focus not in tuned:
        raise ValueError(f"{where}: focus {shorten(focus)} is not a tuned model; valid: {tuned}")
    suite = Suite(name, where, datasets, models, references, protocol, study, focus, text, top_k)
    for reference in references:
        try:  # impossible settings fail now, not hours into the suite
            reference_config(reference, epochs=study.epochs)
        except ValueError as error:
            raise ValueError(f"{where}: references.{reference.label}: {error}") from None
    return suite


def reference_config(reference: Reference, *, epochs: int) -> RunConfig:
    """The configuration of an untuned reference, with ``epochs`` unless it sets its own."""
    from actmix.activations import make_activation
    from study.space import build_config

    source = f"reference {reference.label}"
    config = build_config(
        reference.config,
        base=RunConfig(model=reference.model),
        epochs=int(reference.config.get("train.epochs", epochs)),
        model=reference.model,
        source=source,
    )
    if config.model != XGBOOST:
        try:  # a misspelt activation option would otherwise surface mid-suite
            make_activation(config.model, 1, **config.mlp.activation)
        except ValueError as error:
            raise ValueError(f"{source}: {error}") from None
    return config


def _dataset(item: Any, where: str, base: Path) -> SuiteDataset:
    if isinstance(item, str):
        item = {"spec": item}
    item = _mapping(item, where, ("spec", "label", "target", "task"))
    spec = _string(item.get("spec"), f"{where}.spec")
    if spec.startswith("csv:"):
        csv = Path(spec.removeprefix("csv:")).expanduser()
        spec = "csv:" + str(csv if csv.is_absolute() else (base / csv).resolve())
    default_label = Path(spec.removeprefix("csv:")).stem if spec.startswith("csv:") else spec
    label = _label(item.get("label", default_label.replace(":", "-")), f"{where}.label")
    task = item.get("task")
    if task is not None and task not in get_args(Task):
        raise ValueError(f"{where}.task: must be regression or classification, got {shorten(task)}")
    target = item.get("target")
    return SuiteDataset(label, spec, None if target is None else str(target), task)


def _model(item: Any, where: str, base: Path) -> SuiteModel:
    if isinstance(item, str):
        item = {"model": item}
    item = _mapping(item, where, ("model", "space", "label"))
    model = _string(item.get("model"), f"{where}.model")
    _check_model(model, f"{where}.model")
    space = item.get("space")
    if space is not None:
        space = _string(space, f"{where}.space")
        if space.endswith((".yaml", ".yml")) and not Path(space).is_absolute():
            space = str((base / space).resolve())
    return SuiteModel(_label(item.get("label", model), f"{where}.label"), model, space)


def _reference(label: Any, item: Any, where: str) -> Reference:
    item = _mapping(item, where, ("model", "config"))
    model = _string(item.get("model"), f"{where}.model")
    _check_model(model, f"{where}.model")
    config = dict(_mapping(item.get("config") or {}, f"{where}.config", None))
    return Reference(_label(label, where), model, config)


def _check_model(model: str, where: str) -> None:
    from actmix.activations import available_activations

    valid = (*available_activations(), XGBOOST)
    if model not in valid:
        raise ValueError(f"{where}: unknown model {shorten(model)}; valid: {', '.join(valid)}")


def _ensemble(data: Any, study: StudyBudget, where: str) -> int | None:
    """``ensemble: {top_k: k}``: k, at least 2 and at most the trials of a study."""
    if data is None:
        return None
    top_k = _mapping(data, where, ("top_k",)).get("top_k")
    if not isinstance(top_k, int) or isinstance(top_k, bool):
        raise ValueError(f"{where}.top_k: expected int, got {shorten(top_k)}")
    if not 2 <= top_k <= study.trials:
        raise ValueError(
            f"{where}.top_k must be between 2 and study.trials ({study.trials}), got {top_k}"
        )
    return top_k


def _check_protocol(protocol: Protocol, study: StudyBudget, where: str) -> None:
    checks = [
        (
            protocol.outer_folds >= 2,
            f"protocol.outer_folds must be >= 2, got {protocol.outer_folds}",
        ),
        (
            protocol.inner_folds >= 2,
            f"protocol.inner_folds must be >= 2, got {protocol.inner_folds}",
        ),
        (protocol.seeds >= 1, f"protocol.seeds must be >= 1, got {protocol.seeds}"),
        (protocol.repeats >= 1, f"protocol.repeats must be >= 1, got {protocol.repeats}"),
        (protocol.split_seed >= 0, f"protocol.split_seed must be >= 0, got {protocol.split_seed}"),
        (study.trials >= 1, f"study.trials must be >= 1, got {study.trials}"),
        (study.epochs >= 1, f"study.epochs must be >= 1, got {study.epochs}"),
        (
            study.max_concurrent >= 1,
            f"study.max_concurrent must be >= 1, got {study.max_concurrent}",
        ),
        (study.pack >= 1, f"study.pack must be >= 1, got {study.pack}"),
        (
            study.n_startup_trials >= 0,
            f"study.n_startup_trials must be >= 0, got {study.n_startup_trials}",
        ),
        (study.grace >= 1, f"study.grace_period must be >= 1, got {study.grace_period}"),
        (
            study.scheduler != "asha" or study.grace < study.epochs,
            f"study.grace_period {study.grace} must be below study.epochs {study.epochs}: "
            "ASHA could never stop a trial (use scheduler: none for no early stopping)",
        ),
        (study.cpus_per_trial > 0, f"study.cpus_per_trial must be > 0, got {study.cpus_per_trial}"),
        (
            study.gpus_per_trial >= 0,
            f"study.gpus_per_trial must be >= 0, got {study.gpus_per_trial}",
        ),
        (
            study.scheduler in get_args(SchedulerKind),
            f"study.scheduler must be asha or none, got {shorten(study.scheduler)}",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(f"{where}: {message}")


def _dataclass(cls: Any, data: Any, where: str) -> Any:
    names = tuple(cls.__dataclass_fields__)
    values = _mapping(data, where, names)
    defaults = cls()
    for key, value in values.items():
        default = getattr(defaults, key)
        expected = int if default is None else type(default)  # optional ints: None or int
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or isinstance(value, bool):
            raise ValueError(f"{where}.{key}: expected {expected.__name__}, got {shorten(value)}")
        values[key] = value
    return cls(**values)


def _mapping(data: Any, where: str, keys: tuple[str, ...] | None) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected a mapping, got {type(data).__name__}")
    if keys is not None:
        for key in data:
            if key not in keys:
                close = difflib.get_close_matches(str(key), keys, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise ValueError(
                    f"{where}: unknown key {shorten(key)}; {hint}valid keys: {', '.join(keys)}"
                )
    return {str(key): value for key, value in data.items()}


def _list(data: Any, where: str) -> list[Any]:
    if not isinstance(data, list) or not data:
        raise ValueError(f"{where}: expected a non-empty list")
    return data


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}: expected a non-empty string, got {shorten(value)}")
    return value


def _label(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _LABEL.match(value):
        raise ValueError(
            f"{where}: {shorten(value)} is not a valid name "
            "(letters, digits, '.', '_', '-'; max 40)"
        )
    return value


def _unique(labels: list[str], where: str) -> None:
    seen: set[str] = set()
    for label in labels:
        if label in seen:
            raise ValueError(f"{where}: {shorten(label)} appears twice; give one a `label`")
        seen.add(label)
