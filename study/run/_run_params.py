"""What a study's MLflow parent run records as params: what was asked, as resolved, with
the code's commit, the package versions and the hardware it ran on."""

from __future__ import annotations

from typing import Any

from actmix.cv import package_versions
from study.run._plan import StudyPlan
from study.system import git_commit, hardware, study_versions

__all__ = ["study_params"]


def study_params(plan: StudyPlan) -> dict[str, Any]:
    """The parent run's params: the request as resolved, versions and hardware."""
    request = plan.request
    return {
        "dataset": request.dataset,
        **({"target": request.target} if request.target else {}),
        "model": plan.model,
        "task": plan.task,
        **(
            {"outer_folds": request.outer_folds, "outer_fold": request.outer_fold}
            if request.outer_folds is not None
            else {}
        ),
        "space_file": plan.space.path,
        "space_sha256": plan.space.sha256(),
        "sampler": (
            f"optuna TPE (multivariate, seed {request.seed}, "
            f"{request.n_startup_trials} random start-up trials"
            f"{', constant liar' if request.pack > 1 else ''})"
        ),
        "n_startup_trials": request.n_startup_trials,
        "scheduler": (
            f"ASHA(grace_period={request.grace_period}, "
            f"reduction_factor={request.reduction_factor})"
            if request.scheduler == "asha"
            else "none"
        ),
        "trials": request.trials,
        **(
            {
                "warm_start": plan.warm.source,
                "warm_start_configurations": len(plan.warm.points),
            }
            if plan.warm is not None
            else {}
        ),
        "time_budget_s": request.time_budget or "none",
        "max_concurrent": request.max_concurrent,
        "pack": request.pack,
        "folds": request.folds,
        "seeds": request.seeds,
        "split_seed": request.split_seed,
        "epochs": request.epochs,
        "objective": f"{plan.objective} ({plan.mode})",
        "optuna_storage": plan.optuna_storage,
        "git_commit": git_commit(),
        **{f"version.{k}": v for k, v in package_versions().items()},
        **{f"version.{k}": v for k, v in study_versions().items()},
        **{f"hardware.{k}": v for k, v in hardware().items()},
    }
