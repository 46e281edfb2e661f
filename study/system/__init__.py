"""Process plumbing shared by every command: environment defaults, signals, child
processes, the machine's description, terminal output, the error of a bad input field and
YAML read within bounds.
"""

from __future__ import annotations

from study.system._console import EpochProgress, format_table, format_value
from study.system._environment import ENVIRONMENT_DEFAULTS, apply_environment_defaults
from study.system._errors import RequestError
from study.system._interrupts import (
    EXIT_INTERRUPTED,
    StopSignal,
    StudyInterrupted,
    request_stop,
    sigterm_interrupts,
    stop_signals,
)
from study.system._machine import (
    STUDY_PACKAGES,
    cpu_model,
    git_commit,
    gpu_names,
    hardware,
    local_gpu_count,
    provenance,
    study_versions,
)
from study.system._parent_death import die_with_parent
from study.system._yaml import MAX_YAML_NODES, parse_yaml, shorten

__all__ = [
    "ENVIRONMENT_DEFAULTS",
    "EXIT_INTERRUPTED",
    "MAX_YAML_NODES",
    "STUDY_PACKAGES",
    "EpochProgress",
    "RequestError",
    "StopSignal",
    "StudyInterrupted",
    "apply_environment_defaults",
    "cpu_model",
    "die_with_parent",
    "format_table",
    "format_value",
    "git_commit",
    "gpu_names",
    "hardware",
    "local_gpu_count",
    "parse_yaml",
    "provenance",
    "request_stop",
    "shorten",
    "sigterm_interrupts",
    "stop_signals",
    "study_versions",
]
