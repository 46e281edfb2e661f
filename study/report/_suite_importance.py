"""Which knobs of the focus model mattered, tested against a permutation null.

Only studies with at least ``MIN_FINISHED`` completed trials and a stored trial history
take part (fANOVA on fewer trials, or on a study ASHA left with one finished trial, gives
placeholders, not importances). For each dataset the statistic of a parameter is its
fANOVA importance (normalised to sum 1 in each study) averaged over those studies. The
null: the same trials with each study's objective values permuted, fitted again the same
way; ``p = (1 + #{null >= observed}) / (1 + permutations)``, Holm-corrected over the
dataset's parameters. A knob "mattered" only where its corrected p is below ALPHA.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from actmix.comparison import ALPHA, holm
from study.report._suite_data import DatasetResults

__all__ = [
    "FANOVA_TREES",
    "MIN_FINISHED",
    "PERMUTATIONS",
    "KnobImportance",
    "KnobImportances",
    "knob_importances",
    "knob_sentence",
    "permutation_importance",
]

MIN_FINISHED = 10  # completed trials a study needs before its importances or its search count
PERMUTATIONS = 199  # smallest p 1/200: below ALPHA after Holm over up to 9 parameters
FANOVA_TREES = 16  # the same forest for observed and permuted values; small, as it is refitted


@dataclass(frozen=True, slots=True)
class KnobImportance:
    """One parameter's mean importance over a dataset's studies and its permutation test."""

    dataset: str
    param: str
    importance: float
    null_mean: float
    p_value: float
    p_holm: float
    studies: int

    @property
    def beats_null(self) -> bool:
        return self.p_holm < ALPHA

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "param": self.param,
            "importance": self.importance,
            "null_mean": self.null_mean,
            "p_value": self.p_value,
            "p_holm": self.p_holm,
            "beats_null": self.beats_null,
            "studies": self.studies,
        }


@dataclass(frozen=True, slots=True)
class KnobImportances:
    """Every dataset's tested importances, and which studies could take part."""

    rows: list[KnobImportance]
    studies: dict[str, dict[str, int]]  # dataset -> {"used", "total", "without_history"}
    rule: str

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "studies": self.studies,
            "rows": [row.to_json() for row in self.rows],
        }


def _completed(trials: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [t for t in trials if t["state"] == "COMPLETE" and t["value"] is not None]


def _fanova(trials: Sequence[Mapping[str, Any]], values: np.ndarray, seed: int) -> dict[str, float]:
    import optuna

    distributions = optuna.distributions.json_to_distribution
    study = optuna.create_study(
        storage=optuna.storages.InMemoryStorage(), sampler=optuna.samplers.RandomSampler()
    )
    study.add_trials(
        [
            optuna.trial.create_trial(
                params=dict(trial["params"]),
                distributions={
                    name: distributions(text) for name, text in trial["distributions"].items()
                },
                value=float(value),
            )
            for trial, value in zip(trials, values, strict=True)
        ]
    )
    evaluator = optuna.importance.FanovaImportanceEvaluator(n_trees=FANOVA_TREES, seed=seed)
    importances = optuna.importance.get_param_importances(study, evaluator=evaluator)
    return {name: float(value) for name, value in importances.items()}


def permutation_importance(
    studies: Sequence[Sequence[Mapping[str, Any]]],
    *,
    permutations: int = PERMUTATIONS,
    seed: int = 0,
) -> dict[str, tuple[float, float, float, int]]:
    """Mean fANOVA importance of each parameter over ``studies`` (each a list of completed
    trials from a trial history) against the permuted-objective null.

    Returns ``{param: (importance, null mean, p-value, studies)}``; p-values uncorrected.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rng = np.random.default_rng(seed)
    values = [np.array([t["value"] for t in trials], dtype=float) for trials in studies]

    def mean_importance(per_study: Sequence[np.ndarray], draw: int) -> dict[str, list[float]]:
        collected: dict[str, list[float]] = {}
        for index, (trials, objective) in enumerate(zip(studies, per_study, strict=True)):
            for param, value in _fanova(trials, objective, seed + draw * 1009 + index).items():
                collected.setdefault(param, []).append(value)
        return collected

    observed = mean_importance(values, 0)
    exceed = dict.fromkeys(observed, 0)
    null_sum = dict.fromkeys(observed, 0.0)
    for draw in range(1, permutations + 1):
        null = mean_importance([rng.permutation(v) for v in values], draw)
        for param, found in observed.items():
            value = float(np.mean(null.get(param, [0.0])))
            null_sum[param] += value
            exceed[param] += value >= float(np.mean(found))
    return {
        param: (
            float(np.mean(found)),
            null_sum[param] / permutations,
            (1 + exceed[param]) / (1 + permutations),
            len(found),
        )
        for param, found in observed.items()
    }


def knob_importances(
    focus: str,
    per_dataset: Mapping[str, DatasetResults],
    *,
    permutations: int = PERMUTATIONS,
    seed: int = 0,
) -> KnobImportances:
    """The focus model's knob importances per dataset, from the qualifying studies."""
    rule = (
        f"studies of {focus} with >= {MIN_FINISHED} completed trials and a stored trial "
        f"history; fANOVA ({FANOVA_TREES} trees) against {permutations} permutations of "
        f"each study's objective values, Holm over each dataset's parameters, alpha {ALPHA}"
    )
    rows: list[KnobImportance] = []
    counts: dict[str, dict[str, int]] = {}
    for dataset, data in per_dataset.items():
        tuned = [r for r in data.records if r.label == focus and r.study is not None]
        histories = [
            _completed(trials) for (label, _), trials in data.trials.items() if label == focus
        ]
        used = [trials for trials in histories if len(trials) >= MIN_FINISHED]
        counts[dataset] = {
            "used": len(used),
            "total": len(tuned),
            "without_history": len(tuned) - len(histories),
        }
        if not used:
            continue
        tested = permutation_importance(used, permutations=permutations, seed=seed)
        order = sorted(tested, key=lambda param: -tested[param][0])
        adjusted = holm([tested[param][2] for param in order])
        for param, p_holm in zip(order, adjusted, strict=True):
            importance, null_mean, p_value, studies = tested[param]
            rows.append(
                KnobImportance(
                    dataset, param, importance, null_mean, p_value, float(p_holm or 1.0), studies
                )
            )
    return KnobImportances(rows, counts, rule)


def knob_sentence(focus: str, importances: KnobImportances) -> str:
    """What the answer may say about the focus model's knobs."""
    if not any(counts["used"] for counts in importances.studies.values()):
        return (
            f"Knobs of {focus}: no study had {MIN_FINISHED} completed trials with a stored "
            "trial history, so no importance is reported: no knob is distinguishable from "
            "noise at this budget."
        )
    winners = [row for row in importances.rows if row.beats_null]
    if not winners:
        return (
            f"Knobs of {focus}: no knob is distinguishable from noise at this budget "
            "(fANOVA importance against permuted objectives, Holm-corrected)."
        )
    named = "; ".join(
        f"{row.dataset}: {row.param} {row.importance:.2f} (null {row.null_mean:.2f}, "
        f"Holm p {row.p_holm:.3f})"
        for row in winners
    )
    return (
        f"Knobs of {focus} that beat a permuted-objective null (fANOVA, Holm over "
        f"parameters): {named}."
    )
