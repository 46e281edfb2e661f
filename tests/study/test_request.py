"""StudyRequest is the one source of the study defaults and checks; the CLI follows it."""

import dataclasses

import pytest

from study.cli import build_parser
from study.request import RequestError, StudyRequest


def test_run_options_default_to_the_request_fields():
    args = build_parser().parse_args(["run"])
    defaults = StudyRequest()
    for field in dataclasses.fields(StudyRequest):
        if hasattr(args, field.name):
            assert getattr(args, field.name) == getattr(defaults, field.name), field.name
    # every user-facing field has an option (the nested-CV and checkpoint ones are internal)
    internal = {"outer_folds", "outer_fold", "checkpoint_every"}
    missing = [f.name for f in dataclasses.fields(StudyRequest) if not hasattr(args, f.name)]
    assert set(missing) == internal


def test_help_shows_the_request_default():
    help_text = build_parser()._subparsers._group_actions[0].choices["run"].format_help()
    assert "(default 12)" in " ".join(help_text.split())  # trials


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"trials": 0}, "trials"),
        ({"seed": -1}, "seed"),
        ({"split_seed": -2}, "split_seed"),
        ({"folds": 2.5}, "folds"),
        ({"reduction_factor": 1.0}, "reduction_factor"),
        ({"time_budget": 0.0}, "time_budget"),
        ({"name": "has space"}, "name"),
        ({"experiment": "a/b"}, "experiment"),
        ({"outer_folds": 5}, "outer_fold"),
        ({"outer_folds": 3, "outer_fold": 3}, "outer_fold"),
    ],
)
def test_bad_values_name_the_field(changes, field):
    with pytest.raises(RequestError) as error:
        StudyRequest(**changes)
    assert error.value.field == field
    assert str(error.value).startswith(f"{field}: ")


def test_from_mapping_rejects_unknown_settings():
    with pytest.raises(ValueError, match="unknown study setting"):
        StudyRequest.from_mapping({"trails": 3})
    assert StudyRequest.from_mapping({"trials": 3}).trials == 3
