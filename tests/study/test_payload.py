"""The trial payload: the final report is typed, and its keys are the documented constants."""

from __future__ import annotations

import dataclasses

import pytest

from study.tracking import payload


def test_the_final_reports_fields_are_the_keys_the_readers_know():
    constants = {
        value
        for name, value in vars(payload).items()
        if name.isupper() and isinstance(value, str) and name in payload.__all__
    }
    for field in dataclasses.fields(payload.FinalReport):
        assert field.name in constants, field.name


def test_a_final_report_round_trips_through_the_flat_dict_tune_carries():
    report = payload.FinalReport(
        fold_scores=[1.0, 2.0], diverged_members=1, diverged_reason="nan at epoch 3"
    )
    flat = {payload.EPOCH: 4, "val_rmse_mean": 1.5, **report.to_report()}
    assert payload.is_final(flat)
    assert payload.FOLD_SCORES in flat and payload.MODEL_FILE not in flat  # None is not sent
    assert payload.FinalReport.from_report(flat) == report


def test_an_epoch_report_is_not_read_as_a_final_one():
    with pytest.raises(ValueError, match="not a final report"):
        payload.FinalReport.from_report({payload.EPOCH: 1, payload.FOLD_SCORES: [1.0]})
