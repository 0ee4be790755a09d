"""A run's result as the job hash stores it: every field of JobResult and StepResult, both ways."""

from __future__ import annotations

import json
from dataclasses import fields

import pytest

from shared import codec, jobs, runs
from shared.direct import table
from shared.model import ErrorCategory, JobError, JobResult, StepResult

FULL = JobResult(
    success=False,
    steps=(
        StepResult(0, "open", True, 5, "", ("1/a.png",), False, ("console",), ("GET /x 500",), 200),
        StepResult(1, "click", False, error="boom", skipped=True),
    ),
    execution_time_ms=3,
    worker_id="w",
    attempt=1,
    total_attempts=3,
    started_at_ms=1,
    completed_at_ms=2,
    artifacts=("1/a.png",),
    error=JobError(ErrorCategory.ASSERTION, "m", 1, True),
    artifact_notes=("note",),
)


def test_a_result_goes_to_json_and_back_unchanged() -> None:
    assert codec.result_from_json(codec.result_to_json(FULL)) == FULL
    assert codec.result_from_json(codec.result_to_json(JobResult(success=True))) == JobResult(success=True)


def test_every_field_of_a_result_and_its_steps_is_encoded_in_declaration_order() -> None:
    data = json.loads(codec.result_to_json(FULL))
    assert list(data) == [f.name for f in fields(JobResult)]
    assert list(data["steps"][0]) == [f.name for f in fields(StepResult)]
    assert data["error"] == {"category": "assertion", "message": "m", "step_index": 1, "retryable": True}


@pytest.mark.parametrize(
    "error", [jobs.CANCELLED_WAITING, runs.NOT_RUN, table.CANCELLED_RUNNING], ids=["waiting", "run", "direct"]
)
def test_a_cancels_error_has_no_category_and_keeps_none_through_the_codec(error: JobError) -> None:
    assert error.category is None and "cancelled" in error.message
    assert json.loads(codec.error_to_json(error))["category"] == ""
    assert codec.error_from_json(codec.error_to_json(error)) == error
