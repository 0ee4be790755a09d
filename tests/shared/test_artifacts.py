"""Artifact names, keys, content types and step indexes (`shared.artifacts`), without a store."""

from __future__ import annotations

import pytest

from shared.artifacts import artifact_key, content_type_of, parse_name, step_index_of
from shared.errors import ValidationError
from shared.model import Job, JobMetadata, JobOptions, JobResult, JobState, StepResult, TestDefinition

JOB_ID = "3f0c1d7e-5a8b-4c2d-9e6f-0a1b2c3d4e5f"


@pytest.mark.parametrize(
    ("name", "parsed"),
    [
        ("1/trace.zip", (1, "trace.zip")),
        ("12/step-04-failure.png", (12, "step-04-failure.png")),
        ("2/a b.png", (2, "a b.png")),
    ],
)
def test_a_name_is_an_attempt_and_a_file(name: str, parsed: tuple[int, str]) -> None:
    assert parse_name(name) == parsed
    assert artifact_key(JOB_ID, name) == f"{JOB_ID}/{name}"


@pytest.mark.parametrize(
    "name",
    [
        "../x",
        "/1/x",
        "1/../../x",
        "1/..",
        "..",
        "",
        "1",
        "1/",
        "1//x",
        "0/x",
        "01/x",
        "-1/x",
        "a/x",
        "١/x",
        "1/a/b",
        "1/.hidden",
        "1/a\\b",
        "1/a\x00b",
    ],
)
def test_anything_else_is_invalid_and_names_the_field(name: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_name(name)
    assert [v.field for v in info.value.violations] == ["name"]


def test_a_key_needs_a_job_id_of_one_segment() -> None:
    for job_id in ("", "a/b"):
        with pytest.raises(ValidationError):
            artifact_key(job_id, "1/x.png")


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("1/step-00-failure.png", "image/png"),
        ("1/TRACE.ZIP", "application/zip"),
        ("2/video.webm", "video/webm"),
        ("1/network.json", "application/json"),
        ("1/page.html", "text/html"),
        ("1/blob", "application/octet-stream"),
    ],
)
def test_the_content_type_follows_the_extension(name: str, content_type: str) -> None:
    assert content_type_of(name) == content_type


def test_the_step_index_comes_from_the_result_else_the_file_name() -> None:
    steps = (
        StepResult(index=0, name="a", success=True, artifacts=("1/login.png",)),
        StepResult(index=3, name="b", success=False, artifacts=("1/step-07-failure.png",)),
    )
    job = Job(
        job_id=JOB_ID,
        state=JobState.FAILED,
        definition=TestDefinition(name="t", steps=()),
        options=JobOptions(),
        metadata=JobMetadata(tenant_id="default"),
        result=JobResult(success=False, steps=steps),
    )
    assert step_index_of(job, "1/login.png") == 0
    assert step_index_of(job, "1/step-07-failure.png") == 3  # the result knows better than the name
    assert step_index_of(job, "2/step-05-failure.png") == 5
    assert step_index_of(job, "1/trace.zip") == -1
    assert step_index_of(job, "1/my-step-05-shot.png") == -1
