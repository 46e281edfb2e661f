"""One study from request to summary: the validated plan, Optuna search and ASHA, the Ray
Tune trainables, the runner that starts, resumes and summarises, and the manifest that
lets ``resume NAME`` rebuild a study from any directory.
"""

from __future__ import annotations

from study.run._adapters import TESTED, RelocatableSearchGenerator, untested_versions
from study.run._extend import extend_study
from study.run._manifest import (
    RECORDED_ADDRESS,
    load_manifest,
    moved_from,
    resume_plan,
    write_manifest,
)
from study.run._plan import StudyPlan, check_ray_address, make_plan
from study.run._run_params import study_params
from study.run._runner import (
    StudyOutcome,
    create_schemas,
    resume_study,
    run_study,
    start_ray,
)
from study.run._search import (
    ORPHAN_FAILURE,
    ORPHAN_REASON,
    OptunaSearcher,
    SchedulerKind,
    build_scheduler,
    build_searcher,
    optuna_trial_counts,
    trial_history,
)
from study.run._trainables import StudySettings, objective_name, train_trial
from study.run._warm import WarmStart, warm_start

__all__ = [
    "ORPHAN_FAILURE",
    "ORPHAN_REASON",
    "RECORDED_ADDRESS",
    "TESTED",
    "OptunaSearcher",
    "RelocatableSearchGenerator",
    "SchedulerKind",
    "StudyOutcome",
    "StudyPlan",
    "StudySettings",
    "WarmStart",
    "build_scheduler",
    "build_searcher",
    "check_ray_address",
    "create_schemas",
    "extend_study",
    "load_manifest",
    "make_plan",
    "moved_from",
    "objective_name",
    "optuna_trial_counts",
    "resume_plan",
    "resume_study",
    "run_study",
    "start_ray",
    "study_params",
    "train_trial",
    "trial_history",
    "untested_versions",
    "warm_start",
    "write_manifest",
]
