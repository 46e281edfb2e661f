"""A suite's ensemble rows: the top k configurations of a tuned unit's study, retrained as
the single best is and averaged (``actmix.ensembles``), scored once on the outer-test rows.

The configurations are ranked by the study's objective on the inner validation folds, so
choosing them sees no outer-test row; each is retrained with the unit's seeds on the outer
fold's training rows, and the ensemble's prediction for a seed is the mean of theirs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from actmix.config import RunConfig, config_from_dict, run_config_to_dict
from actmix.ensembles import ensemble_outer_fold
from actmix.nested import OuterFoldResult, evaluate_outer_fold
from actmix.splits import Splits
from actmix.types import Dataset

__all__ = ["retrain_ensemble"]


def retrain_ensemble(
    dataset: Dataset,
    outer: Splits,
    fold: int,
    *,
    tracking_uri: str,
    study: str,
    top_k: int,
    seeds: Sequence[int],
    threads: int | None,
) -> tuple[dict[str, Any], OuterFoldResult]:
    """The ensemble of study ``study``'s ``top_k`` best finished configurations on outer
    fold ``fold``: the record's config (its members, best first) and its scores.

    Each row adds ``member_state_sha256``, the members' weight digests for that seed
    (None for XGBoost), so a test can tell that the members are bit-identical."""
    from study.tracking import top_configurations

    exported = top_configurations(tracking_uri, study, top_k)
    configs = [
        config_from_dict(RunConfig, item, source=f"{item['provenance']['trial']} of {study}")
        for item in exported
    ]
    members = [
        evaluate_outer_fold(dataset, config, outer, fold, seeds=seeds, threads=threads)
        for config in configs
    ]
    scored = ensemble_outer_fold(dataset, members)
    rows = tuple(
        {**row, "member_state_sha256": [m.rows[k].get("state_sha256") for m in members]}
        for k, row in enumerate(scored.rows)
    )
    record_config = {
        "ensemble": [_bare(run_config_to_dict(config)) for config in configs],
        "provenance": {
            "study": study,
            "members": [
                {key: item["provenance"][key] for key in ("trial", "run_id", "value")}
                for item in exported
            ],
        },
    }
    return record_config, OuterFoldResult(rows, scored.test_idx, scored.test_prediction)


def _bare(config: dict[str, Any]) -> dict[str, Any]:
    # a member's run ids and data path are in the record's provenance, not in its config
    return {k: v for k, v in config.items() if k not in ("provenance", "dataset")}
