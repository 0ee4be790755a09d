"""Protobuf ↔ domain conversions: defaults, round trips, total enum maps and definition files."""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

import pytest
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protos import sentinel_pb2 as pb
from shared.actions import ACTIONS, Action, Is, JsonExpectation, Request, holds
from shared.edge import convert as c
from shared.edge.convert_direct import job_error_from_proto
from shared.errors import FieldViolation, ValidationError
from shared.model import (
    ArtifactPolicy,
    Check,
    ErrorCategory,
    Fill,
    Job,
    JobError,
    JobMetadata,
    JobOptions,
    JobResult,
    JobSource,
    JobState,
    Navigate,
    Priority,
    Progress,
    ProgressEvent,
    Screenshot,
    Step,
    StepResult,
    SubmitCommand,
    Viewport,
    WaitFor,
)
from shared.validation import validate_submit
from tests.convert_helpers import definition_to_proto, set_field, step_to_proto, submit_to_proto

EVERY_ACTION_JSON = {
    "name": "checkout",
    "baseUrl": "https://shop.example.test/",
    "viewport": {"width": 1280, "height": 720},
    "steps": [
        {"name": "open", "timeoutMs": 5000, "navigate": {"url": "/login"}},
        {"click": {"selector": "#go"}},
        {"frames": ["iframe#pay", "#card-frame"], "fill": {"selector": "#pw", "value": "hunter2", "secret": True}},
        {"fill": {"selector": "#email", "value": "a@b.test"}},
        {"press": {"selector": "#pw", "key": "Enter"}},
        {"select": {"selector": "#country", "value": "fr"}},
        {"check": {"selector": "#agree", "checked": True}},
        {"check": {"selector": "#spam", "checked": False}},
        {"hover": {"selector": ".menu"}},
        {"waitFor": {"selector": "#spinner", "state": "hidden"}},
        {"expectText": {"selector": "h1", "text": "Welcome"}},
        {"expectVisible": {"selector": "#cart"}},
        {"expectTitle": {"text": "Shop"}},
        {"expectUrl": {"pattern": "/dashboard$"}},
        {"screenshot": {}},
        {"screenshot": {"name": "done", "fullPage": True}},
        {"wait": {"ms": 250}},
        {
            "request": {
                "method": "POST",
                "url": "/api/login",
                "headers": {"Content-Type": "application/json", "Authorization": "Bearer t0ken"},
                "body": '{"user": "ada"}',
                "expectStatus": 201,
                "expectBodyContains": "ok",
                "expectJson": [{"path": "$.user.name", "equals": '"ada"'}, {"path": "$.id"}],
                "secretHeaders": ["Authorization"],
                "maxRedirects": 3,
            }
        },
    ],
}


def every_action_proto() -> pb.TestDefinition:
    return json_format.ParseDict(EVERY_ACTION_JSON, pb.TestDefinition())


# --- submit --------------------------------------------------------------------------------


def test_definition_round_trips_with_every_action() -> None:
    original = every_action_proto()
    domain = c.definition_from_proto(original)
    assert {s.action.kind for s in domain.steps if s.action} == {
        f.name for f in pb.Step.DESCRIPTOR.oneofs_by_name["action"].fields
    }
    assert definition_to_proto(domain) == original
    assert c.definition_from_proto(definition_to_proto(domain)) == domain
    assert domain.steps[2].frames == ("iframe#pay", "#card-frame")


def test_check_without_checked_checks_the_box() -> None:
    step = json_format.ParseDict({"check": {"selector": "#terms"}}, pb.Step())
    assert c.step_from_proto(step).action == Check("#terms", checked=True)


def test_action_with_all_default_fields_stays_set() -> None:
    step = step_to_proto(Step(Screenshot()))
    assert step.WhichOneof("action") == "screenshot"
    assert c.step_from_proto(step) == Step(Screenshot())


def test_conversion_keeps_values_exactly() -> None:
    domain = c.definition_from_proto(every_action_proto())
    assert domain.viewport == Viewport(1280, 720)
    assert domain.steps[0] == Step(Navigate("/login"), name="open", timeout_ms=5000)
    assert domain.steps[2].action == Fill("#pw", "hunter2", secret=True)
    assert domain.steps[6].action == Check("#agree", checked=True)
    assert domain.steps[7].action == Check("#spam", checked=False)
    assert domain.steps[17].action == Request(
        "/api/login",
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": "Bearer t0ken"},
        body='{"user": "ada"}',
        expect_status=201,
        expect_body_contains="ok",
        expect_json=(JsonExpectation("$.user.name", '"ada"'), JsonExpectation("$.id")),
        secret_headers=("Authorization",),
        max_redirects=3,
    )


def test_a_request_without_method_or_redirects_gets_get_and_ten() -> None:
    step = json_format.ParseDict({"request": {"url": "/health"}}, pb.Step())
    action = c.step_from_proto(step).action
    assert action == Request("/health")
    assert isinstance(action, Request) and (action.method, action.max_redirects, action.expect_status) == ("GET", 10, 0)


def test_submit_from_an_empty_request_uses_the_server_defaults() -> None:
    command = c.submit_from_proto(pb.SubmitRequest())
    assert command.options == JobOptions()
    assert command.options.priority is Priority.MEDIUM
    assert command.options.artifact_policy is ArtifactPolicy.ON_FAILURE
    assert command.source is JobSource.API
    assert command.definition.name == "" and command.definition.steps == ()
    assert command.definition.viewport is None


def test_submit_from_proto_copies_every_field() -> None:
    req = pb.SubmitRequest(
        definition=every_action_proto(),
        options=pb.JobOptions(
            priority=pb.PRIORITY_HIGH,
            timeout_ms=1,
            tags=["a", "b"],
            max_attempts=2,
            delay_ms=3,
            idempotency_key="k",
            backoff_ms=4,
            artifact_policy=pb.ARTIFACT_POLICY_NEVER,
        ),
        user_id="u",
        request_id="r",
        source=pb.JOB_SOURCE_WEBHOOK,
    )
    command = c.submit_from_proto(req)
    assert command == SubmitCommand(
        definition=c.definition_from_proto(req.definition),
        options=JobOptions(Priority.HIGH, 1, ("a", "b"), 2, 3, "k", 4, ArtifactPolicy.NEVER),
        user_id="u",
        request_id="r",
        source=JobSource.WEBHOOK,
    )
    assert submit_to_proto(command) == req


def test_step_without_action_and_wait_for_default_state() -> None:
    definition = c.definition_from_proto(
        pb.TestDefinition(steps=[pb.Step(name="empty"), pb.Step(wait_for=pb.WaitFor(selector="#x"))])
    )
    assert definition.steps[0] == Step(action=None, name="empty")
    assert definition.steps[1].action == WaitFor("#x", "visible")
    assert step_to_proto(definition.steps[0]).WhichOneof("action") is None


@pytest.mark.parametrize(
    ("viewport", "expected"),
    [(None, None), (pb.Viewport(), None), (pb.Viewport(width=800, height=600), Viewport(800, 600))],
)
def test_viewport_absent_or_zero_is_none(viewport: pb.Viewport | None, expected: Viewport | None) -> None:
    definition = pb.TestDefinition(name="n")
    if viewport is not None:
        definition.viewport.CopyFrom(viewport)
    assert c.definition_from_proto(definition).viewport == expected


def test_half_a_viewport_is_kept_for_validation_to_refuse() -> None:
    definition = pb.TestDefinition(viewport=pb.Viewport(height=600))
    assert c.definition_from_proto(definition).viewport == Viewport(0, 600)


def test_a_client_cannot_say_its_submit_is_a_schedules_fire() -> None:
    with pytest.raises(ValidationError) as caught:
        c.submit_from_proto(pb.SubmitRequest(source=pb.JOB_SOURCE_SCHEDULER))
    [violation] = caught.value.violations
    assert violation.field == "source" and "set by Sentinel's scheduler" in violation.description
    assert c.submit_from_proto(pb.SubmitRequest(source=pb.JOB_SOURCE_WEBHOOK)).source is JobSource.WEBHOOK
    template = pb.Schedule(template=pb.SubmitRequest(source=pb.JOB_SOURCE_SCHEDULER), interval_ms=60_000)
    assert c.schedule_from_proto(template).template.source is JobSource.SCHEDULER  # a template's is ignored


def test_unknown_enum_numbers_are_refused_naming_each_field() -> None:
    req = pb.SubmitRequest(options=pb.JobOptions(priority=99, artifact_policy=42), source=7)  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as caught:
        c.submit_from_proto(req)
    assert caught.value.violations == [
        FieldViolation(
            "source",
            "must be one of JOB_SOURCE_UNSPECIFIED, JOB_SOURCE_API, JOB_SOURCE_SCHEDULER, JOB_SOURCE_WEBHOOK, got 7",
        ),
        FieldViolation(
            "options.priority",
            "must be one of PRIORITY_UNSPECIFIED, PRIORITY_HIGH, PRIORITY_MEDIUM, PRIORITY_LOW, got 99",
        ),
        FieldViolation(
            "options.artifact_policy",
            "must be one of ARTIFACT_POLICY_UNSPECIFIED, ARTIFACT_POLICY_ON_FAILURE, ARTIFACT_POLICY_ALWAYS,"
            " ARTIFACT_POLICY_NEVER, got 42",
        ),
    ]


def test_unknown_enum_numbers_of_a_run_are_named_before_its_options_merge() -> None:
    req = pb.SubmitRunRequest(
        options=pb.JobOptions(priority=pb.PRIORITY_HIGH, artifact_policy=9),  # type: ignore[arg-type]
        tests=[
            pb.RunTest(definition=every_action_proto()),
            # The run's priority would win the merge: the test's own bad number is named all the same.
            pb.RunTest(definition=every_action_proto(), options=pb.JobOptions(priority=5)),  # type: ignore[arg-type]
        ],
    )
    with pytest.raises(ValidationError) as caught:
        c.run_command_from_proto(req)
    assert [v.field for v in caught.value.violations] == ["options.artifact_policy", "tests[1].options.priority"]


def test_unknown_enum_numbers_of_a_schedule_are_named_as_its_request_spells_them() -> None:
    schedule = pb.Schedule(overlap=8, template=pb.SubmitRequest(options=pb.JobOptions(priority=99)))  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as caught:
        c.schedule_from_proto(schedule)
    assert [v.field for v in caught.value.violations] == ["schedule.overlap", "schedule.template.options.priority"]


def test_known_enum_numbers_convert() -> None:
    req = pb.SubmitRequest(options=pb.JobOptions(priority=pb.PRIORITY_LOW, artifact_policy=pb.ARTIFACT_POLICY_ALWAYS))
    options = c.submit_from_proto(req).options
    assert (options.priority, options.artifact_policy) == (Priority.LOW, ArtifactPolicy.ALWAYS)


# --- enums ---------------------------------------------------------------------------------

ENUMS: list[tuple[str, type[enum.Enum], Callable[[Any], Any], Callable[[Any], Any]]] = [
    ("Priority", Priority, c.priority_from_proto, c.priority_to_proto),
    ("JobState", JobState, c.state_from_proto, c.state_to_proto),
    ("ErrorCategory", ErrorCategory, c.error_category_from_proto, c.error_category_to_proto),
    ("ArtifactPolicy", ArtifactPolicy, c.artifact_policy_from_proto, c.artifact_policy_to_proto),
    ("JobSource", JobSource, c.source_from_proto, c.source_to_proto),
]


@pytest.mark.parametrize(("proto_name", "domain", "from_proto", "to_proto"), ENUMS)
def test_enum_maps_are_total_both_ways(
    proto_name: str, domain: type[enum.Enum], from_proto: Callable[[Any], Any], to_proto: Callable[[Any], Any]
) -> None:
    descriptor = pb.DESCRIPTOR.enum_types_by_name[proto_name]
    for value in descriptor.values:
        if value.number == 0:
            assert from_proto(0) is None, value.name
            continue
        member = from_proto(value.number)
        assert isinstance(member, domain), value.name
        assert to_proto(member) == value.number
    for member in domain:
        number = to_proto(member)
        assert number != 0 and descriptor.values_by_number[number]
        assert from_proto(number) is member
    assert from_proto(1234) is None


def test_policy_has_its_own_category() -> None:
    assert c.error_category_to_proto(ErrorCategory.POLICY) == pb.ERROR_CATEGORY_POLICY
    assert c.error_category_from_proto(pb.ERROR_CATEGORY_POLICY) is ErrorCategory.POLICY


# --- jobs ----------------------------------------------------------------------------------

T0 = 1_700_000_000_123


def make_job(**kw: object) -> Job:
    fields: dict[str, object] = {
        "job_id": "j1",
        "state": JobState.RUNNING,
        "definition": c.definition_from_proto(every_action_proto()),
        "options": JobOptions(priority=Priority.LOW, tags=("smoke", "web")),
        "metadata": JobMetadata("acme", "u1", "r1", JobSource.SCHEDULER, created_at_ms=T0),
        "attempt": 2,
        "max_attempts": 3,
        "timeout_ms": 600_000,
        "progress": Progress(40, 2, 5, "click", "clicking", updated_at_ms=T0 + 5),
        "started_at_ms": T0 + 1,
        "worker_id": "w1",
    }
    return Job(**{**fields, **kw})  # type: ignore[arg-type]


def test_job_without_result() -> None:
    message = c.job_to_proto(make_job())
    assert (message.job_id, message.state, message.priority) == ("j1", pb.JOB_STATE_RUNNING, pb.PRIORITY_LOW)
    assert (message.attempt, message.max_attempts, message.timeout_ms) == (2, 3, 600_000)
    assert (message.tenant_id, message.user_id, message.request_id) == ("acme", "u1", "r1")
    assert (message.name, list(message.tags), message.worker_id) == ("checkout", ["smoke", "web"], "w1")
    assert message.source == pb.JOB_SOURCE_SCHEDULER
    assert message.created_at.ToMilliseconds() == T0
    assert message.started_at.ToMilliseconds() == T0 + 1
    progress = message.progress
    assert (progress.percentage, progress.current_step, progress.total_steps) == (40, 2, 5)
    assert (progress.step_name, progress.message) == ("click", "clicking")
    assert progress.updated_at.ToMilliseconds() == T0 + 5
    for unset in ("result", "error", "finished_at", "scheduled_for"):
        assert not message.HasField(unset), unset


def test_job_with_result_and_error() -> None:
    error = JobError(ErrorCategory.ASSERTION, "expected 'Welcome'", step_index=1, retryable=False)
    result = JobResult(
        success=False,
        steps=(
            StepResult(0, "open", True, 120, artifacts=("a/0.png",)),
            StepResult(1, "check", False, 30, "expected 'Welcome'"),
            StepResult(2, "wait", False, skipped=True),
        ),
        execution_time_ms=150,
        worker_id="w1",
        attempt=2,
        total_attempts=3,
        started_at_ms=T0 + 1,
        completed_at_ms=T0 + 151,
        artifacts=("a/fail.png",),
        error=error,
    )
    job = make_job(state=JobState.FAILED, result=result, error=error, finished_at_ms=T0 + 151)
    message = c.job_to_proto(job)
    assert message.state == pb.JOB_STATE_FAILED
    assert message.finished_at.ToMilliseconds() == T0 + 151
    assert message.error == pb.JobError(
        category=pb.ERROR_CATEGORY_ASSERTION, message="expected 'Welcome'", step_index=1
    )
    got = message.result
    assert (got.success, got.execution_time_ms, got.worker_id, got.attempt, got.total_attempts) == (
        False,
        150,
        "w1",
        2,
        3,
    )
    assert got.started_at.ToMilliseconds() == T0 + 1 and got.completed_at.ToMilliseconds() == T0 + 151
    assert list(got.artifacts) == ["a/fail.png"] and got.error == message.error
    assert [(s.index, s.name, s.success, s.duration_ms, s.error, s.skipped) for s in got.steps] == [
        (0, "open", True, 120, "", False),
        (1, "check", False, 30, "expected 'Welcome'", False),
        (2, "wait", False, 0, "", True),
    ]
    assert list(got.steps[0].artifacts) == ["a/0.png"]


def test_job_error_without_step_and_out_of_range_figures() -> None:
    assert c.job_error_to_proto(JobError(ErrorCategory.SYSTEM, "boom")).step_index == -1
    message = c.job_to_proto(make_job(attempt=-3, timeout_ms=2**40, scheduled_for_ms=T0))
    assert (message.attempt, message.timeout_ms) == (0, 2**32 - 1)
    assert message.scheduled_for.ToMilliseconds() == T0


def test_a_cancels_error_without_a_category_is_unspecified_both_ways() -> None:
    cancelled = JobError(None, "cancelled by request", step_index=2)
    message = c.job_error_to_proto(cancelled)
    assert (message.category, message.message, message.step_index) == (
        pb.ERROR_CATEGORY_UNSPECIFIED,
        cancelled.message,
        2,
    )
    # A direct run's end comes back from its executor as protobuf: still no category, not UNKNOWN.
    assert job_error_from_proto(message) == cancelled
    assert job_error_from_proto(pb.JobError(category=99, message="new")).category is ErrorCategory.UNKNOWN  # type: ignore[arg-type]


def test_a_jobs_runs_count_every_run_its_attempt_restarts_at_a_rerun() -> None:
    rerun = c.job_to_proto(make_job(attempt=1, tries=3))  # the third run: the first attempt of a rerun
    assert (rerun.attempt, rerun.runs) == (1, 3)
    legacy = c.job_to_proto(make_job(attempt=2, tries=0))  # stored before runs were counted
    assert legacy.runs == 2, "numbered as the executor names artifacts: never below the attempt"
    assert c.job_to_proto(make_job(attempt=0, tries=0)).runs == 0


def test_progress_event_and_violations() -> None:
    event = ProgressEvent("j1", "1-0", JobState.COMPLETED, Progress(100, 5, 5), attempt=1, terminal=True)
    message = c.progress_event_to_proto(event)
    assert (message.job_id, message.cursor, message.state, message.attempt, message.terminal) == (
        "j1",
        "1-0",
        pb.JOB_STATE_COMPLETED,
        1,
        True,
    )
    assert message.progress.percentage == 100 and not message.progress.HasField("updated_at")
    found = [FieldViolation("a", "x"), FieldViolation("b", "y")]
    assert c.violations_to_proto(found) == [
        pb.FieldViolation(field="a", description="x"),
        pb.FieldViolation(field="b", description="y"),
    ]


# --- property: conversion never raises, validation raises only ValidationError -------------

_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)
_url = st.one_of(_text, st.sampled_from(["/", "https://a.test/x", "javascript:x", "//h/p", "http://[::1", "a:b"]))
_u32 = st.integers(0, 2**32 - 1)
#: Values for each kind of action field; None leaves the field unset.
_VALUES: dict[Is, st.SearchStrategy[Any]] = {
    Is.URL: _url,
    Is.FLAG: st.none() | st.booleans(),
    Is.WAIT_MS: _u32,
    Is.HTTP_STATUS: _u32,
    Is.PAGE_STATUS: _u32,
    Is.REDIRECTS: _u32,
    Is.EXPECT_HEADERS: st.dictionaries(_text, _text, max_size=3),
    Is.HTTP_METHOD: st.one_of(_text, st.sampled_from(["GET", "POST", "HEAD"])),
    Is.HEADERS: st.dictionaries(_text, _text, max_size=3),
    Is.SECRET_HEADERS: st.lists(_text, max_size=2).map(tuple),
    Is.JSON_CHECKS: st.lists(
        st.builds(JsonExpectation, st.one_of(_text, st.just("$.a[0]")), st.one_of(_text, st.just("42"))), max_size=2
    ).map(tuple),
}


def _action_step(kind: str, cls: type[Action]) -> st.SearchStrategy[pb.Step]:
    """Steps whose one action is `kind`, its fields drawn by what they hold (generic, like the converter)."""

    def build(values: dict[str, Any]) -> pb.Step:
        step = pb.Step()
        member = getattr(step, kind)
        member.SetInParent()
        for name, value in values.items():
            if value is not None:
                set_field(member, name, value)
        return step

    return st.fixed_dictionaries({name: _VALUES.get(it, _text) for name, it in holds(cls).items()}).map(build)


_actions = st.one_of(st.none(), *(_action_step(kind, cls) for kind, cls in ACTIONS.items()))
_steps = st.builds(lambda step, name, timeout: _named(step or pb.Step(), name, timeout), _actions, _text, _u32)


def _named(step: pb.Step, name: str, timeout: int) -> pb.Step:
    step.name, step.timeout_ms = name, timeout
    return step


_requests = st.builds(
    lambda name, base, steps, vp, tags, opts: pb.SubmitRequest(
        definition=pb.TestDefinition(name=name, base_url=base, steps=steps, viewport=vp),
        options=pb.JobOptions(tags=tags, timeout_ms=opts[0], max_attempts=opts[1], priority=opts[2] % 5),
    ),
    _text,
    _url,
    st.lists(_steps, max_size=6),
    st.none() | st.builds(lambda w, h: pb.Viewport(width=w, height=h), _u32, _u32),
    st.lists(_text, max_size=3),
    st.tuples(_u32, _u32, _u32),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_requests)
def test_any_request_converts_and_validates_without_surprises(req: pb.SubmitRequest) -> None:
    try:
        command = c.submit_from_proto(req)  # refuses an unknown priority number (4 here)
    except ValidationError as exc:
        assert req.options.priority == 4 and [v.field for v in exc.violations] == ["options.priority"]
        return
    try:
        validate_submit(command)
    except ValidationError as exc:
        assert exc.violations and all(v.field and v.description for v in exc.violations)
    again = c.definition_from_proto(definition_to_proto(command.definition))
    assert again == command.definition
