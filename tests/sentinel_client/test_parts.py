"""The SDK's parts that need no server: enum coverage of the proto, requests from files and dicts
(and Chrome Recorder recordings), the retry policy's schedule, the error mapping (field violations
from a real BadRequest detail), and what is refused before any call (unknown keyword arguments, a
malformed target or timeout, a closed client)."""

from __future__ import annotations

import inspect
import json
import re
import time
import uuid
from enum import StrEnum
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2

from protos import sentinel_pb2 as pb
from sentinel_client import (
    ArtifactPolicy,
    AsyncClient,
    Client,
    ConfigError,
    FieldViolation,
    InternalError,
    InvalidArgumentError,
    JobState,
    NotFoundError,
    RetryPolicy,
    SentinelError,
    UnavailableError,
    WaitTimeout,
    _recorder_steps,
)
from sentinel_client._base import Waiting
from sentinel_client._convert import _PROTO_ENUMS, enum_from_proto, enum_to_proto
from sentinel_client._files import artifact_path
from sentinel_client._ops import _checked_only
from sentinel_client._requests import submit_request
from sentinel_client._retry import Retrying
from sentinel_client.errors import CallCancelledError, FailedPreconditionError, from_rpc_error
from shared import validation
from tests.sentinel_client.twins import _ITERATORS, Calls, connect
from tests.support import closed_port

#: Every SDK enum that mirrors a proto enum.
ENUMS: list[type[StrEnum]] = list(_PROTO_ENUMS)


@pytest.mark.parametrize("cls", ENUMS)
def test_each_enum_has_a_member_for_every_value_of_its_proto_enum(cls: type[StrEnum]) -> None:
    proto_enum, prefix = _PROTO_ENUMS[cls]
    for name, number in proto_enum.items():
        member = enum_from_proto(cls, number)
        if name.endswith("_UNSPECIFIED"):
            assert member is None
            continue
        assert member is not None, f"{name} has no {cls.__name__} member"
        assert member.value == name.removeprefix(prefix).lower() and enum_to_proto(member) == number
    assert enum_from_proto(cls, 999) is None  # a newer API's value


def _methods(cls: type) -> dict[str, inspect.Signature]:
    """The public methods of a client and their signatures (closing aside: `close` / `aclose`)."""
    return {
        name: inspect.signature(attr)
        for name, attr in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_") and name not in ("close", "aclose")
    }


def test_the_twins_have_the_same_methods_with_the_same_parameters() -> None:
    blocking, awaited = _methods(Client), _methods(AsyncClient)
    assert blocking.keys() == awaited.keys()
    for name, signature in blocking.items():
        mine = [(p.name, p.kind, p.default) for p in signature.parameters.values()]
        twin = [(p.name, p.kind, p.default) for p in awaited[name].parameters.values()]
        assert mine == twin, name
    # The iterators are the methods `twins.Threaded` pulls a step at a time.
    iterators = {name for name, signature in blocking.items() if "Generator" in str(signature.return_annotation)}
    assert iterators == _ITERATORS
    assert {"create_alert_rule", "list_alert_rules", "delete_alert_rule", "list_deliveries"} < blocking.keys()


def test_ended_states() -> None:
    assert {s for s in JobState if s.ended} == {"completed", "failed", "timeout", "cancelled"}


def test_a_file_is_a_bare_definition_or_a_submit_request_and_keywords_win(tmp_path: Path) -> None:
    bare = tmp_path / "bare.json"
    bare.write_text('\ufeff{"name": "n", "steps": [{"wait": {"ms": 1}}]}')
    request = submit_request(bare, {"priority": "low", "tags": ["a"], "base_url": "http://x.test"})
    assert request.definition.name == "n" and request.options.priority == pb.PRIORITY_LOW
    assert list(request.options.tags) == ["a"] and request.definition.base_url == "http://x.test"
    assert uuid.UUID(request.options.idempotency_key).version == 4

    wrapped = {"definition": {"name": "w"}, "options": {"tags": ["file"], "idempotencyKey": "k1"}, "userId": "u"}
    request = submit_request(wrapped, {"max_attempts": 2, "artifact_policy": ArtifactPolicy.ALWAYS})
    assert request.definition.name == "w" and request.user_id == "u" and list(request.options.tags) == ["file"]
    assert request.options.idempotency_key == "k1" and request.options.max_attempts == 2
    assert request.options.artifact_policy == pb.ARTIFACT_POLICY_ALWAYS


@pytest.mark.parametrize(
    ("content", "field", "said"),
    [
        ("{not json", "file", "is not valid JSON"),
        ("[1, 2]", "file", "must hold a JSON object"),
        ('{"name": "n", "stepz": []}', "definition", 'unknown field "stepz"'),
    ],
)
def test_a_bad_file_is_refused_naming_it(tmp_path: Path, content: str, field: str, said: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(InvalidArgumentError) as refused:
        submit_request(path, {})
    assert refused.value.code is grpc.StatusCode.INVALID_ARGUMENT and refused.value.violations[0].field == field
    assert said in refused.value.message and refused.value.message.startswith(f"{field}: ")


def test_a_definition_with_options_beside_it_is_refused_naming_both_shapes(tmp_path: Path) -> None:
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps({"name": "n", "steps": [{"wait": {"ms": 1}}], "options": {"priority": "PRIORITY_HIGH"}}))
    with pytest.raises(InvalidArgumentError) as refused:
        submit_request(path, {})
    (violation,) = refused.value.violations
    assert violation.field == "file" and 'has "options" beside a definition\'s fields ("name", "steps")' in str(
        refused.value
    )
    assert 'either a bare definition, or {"definition": {...}, "options": {...}}' in violation.description
    # Both shapes on their own are taken.
    path.write_text(json.dumps({"definition": {"name": "n", "steps": []}, "options": {"priority": "PRIORITY_HIGH"}}))
    assert submit_request(path, {}).options.priority == pb.PRIORITY_HIGH


def test_bad_keyword_options_are_refused_naming_them() -> None:
    for options, field in (
        ({"tags": "smoke"}, "options.tags"),
        ({"tags": ["ok", 7]}, "options.tags[1]"),
        ({"timeout_ms": -1}, "options.timeout_ms"),
        ({"max_attempts": True}, "options.max_attempts"),
        ({"priority": 3}, "options.priority"),
        ({"base_url": 3}, "definition.base_url"),
        ({"user_id": None}, "user_id"),
    ):
        with pytest.raises(InvalidArgumentError) as refused:
            submit_request({"name": "n"}, options)  # type: ignore[arg-type]
        # The path the API names, its code, and words of its own rather than protobuf's.
        assert [v.field for v in refused.value.violations] == [field]
        assert refused.value.code is grpc.StatusCode.INVALID_ARGUMENT
        assert "Value out of range" not in refused.value.message
    with pytest.raises(InvalidArgumentError) as refused:
        submit_request({"name": "n"}, {"timeout_ms": -1})
    assert refused.value.message == "options.timeout_ms: must be an integer ≥ 0, got -1"


def test_the_default_retry_policy_makes_four_attempts_over_a_few_seconds() -> None:
    policy = RetryPolicy()
    assert policy.attempts == 4
    pauses = [policy.backoff(n) for n in range(1, policy.attempts)]
    assert 0.4 <= pauses[0] <= 0.6 and 2.8 <= sum(pauses) <= 4.2
    assert max(RetryPolicy(max_backoff=1.0).backoff(n) for n in range(1, 20)) <= 1.2
    assert RetryPolicy.of(0).attempts == 1 and RetryPolicy.of(2).attempts == 3 and RetryPolicy.of(policy) is policy


def _rpc_error(
    code: grpc.StatusCode, details: str = "said", trailers: tuple[tuple[str, bytes], ...] = ()
) -> grpc.RpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailers), details)


def test_only_unavailable_is_retried_and_only_for_safe_calls() -> None:
    retrying = Retrying(RetryPolicy(attempts=3), safe=True)
    assert retrying.failed(_rpc_error(grpc.StatusCode.UNAVAILABLE)) > 0
    retrying.progressed()  # a stream moved on: its next outage gets every attempt again
    assert retrying.failed(_rpc_error(grpc.StatusCode.UNAVAILABLE)) > 0
    assert retrying.failed(_rpc_error(grpc.StatusCode.UNAVAILABLE)) > 0
    with pytest.raises(UnavailableError):
        retrying.failed(_rpc_error(grpc.StatusCode.UNAVAILABLE))
    with pytest.raises(NotFoundError):
        Retrying(RetryPolicy(), safe=True).failed(_rpc_error(grpc.StatusCode.NOT_FOUND))
    with pytest.raises(UnavailableError):
        Retrying(RetryPolicy(), safe=False).failed(_rpc_error(grpc.StatusCode.UNAVAILABLE))


def test_the_apis_retry_pushback_says_whether_and_when_to_try_again() -> None:
    def unavailable(pushback: bytes) -> grpc.RpcError:
        return _rpc_error(grpc.StatusCode.UNAVAILABLE, trailers=(("grpc-retry-pushback-ms", pushback),))

    with pytest.raises(UnavailableError) as refused:  # negative: do not ask again, whatever the policy
        Retrying(RetryPolicy(attempts=4), safe=True).failed(unavailable(b"-1"))
    assert refused.value.pushback_ms == -1
    assert Retrying(RetryPolicy(jitter=0), safe=True).failed(unavailable(b"250")) == 0.25  # its pause, not ours
    assert Retrying(RetryPolicy(jitter=0), safe=True).failed(unavailable(b"soon")) == 0.5  # unreadable: ours


def test_a_stream_is_reopened_after_cancelled_and_a_unary_call_is_not() -> None:
    # The SDK never cancels a stream it still reads: CANCELLED came from the server's gRPC or a proxy.
    stream = Retrying(RetryPolicy(attempts=2), safe=True, stream=True)
    assert stream.failed(_rpc_error(grpc.StatusCode.CANCELLED)) > 0
    with pytest.raises(CallCancelledError):
        stream.failed(_rpc_error(grpc.StatusCode.CANCELLED))
    with pytest.raises(CallCancelledError):
        Retrying(RetryPolicy(), safe=True).failed(_rpc_error(grpc.StatusCode.CANCELLED))
    with pytest.raises(NotFoundError):
        Retrying(RetryPolicy(), safe=True, stream=True).failed(_rpc_error(grpc.StatusCode.NOT_FOUND))


def test_field_violations_come_from_the_bad_request_detail() -> None:
    detail = error_details_pb2.BadRequest(
        field_violations=[error_details_pb2.BadRequest.FieldViolation(field="definition.steps", description="empty")]
    )
    status = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message="definition.steps: empty")
    status.details.add().Pack(detail)
    trailers = (("grpc-status-details-bin", status.SerializeToString()),)
    error = from_rpc_error(_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "definition.steps: empty", trailers))
    assert isinstance(error, InvalidArgumentError) and error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert error.violations == [FieldViolation("definition.steps", "empty")] == [("definition.steps", "empty")]
    assert str(error) == "definition.steps: empty"

    garbled = from_rpc_error(_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "x", (("grpc-status-details-bin", b"\xff"),)))
    assert isinstance(garbled, InvalidArgumentError) and garbled.violations == []
    assert type(from_rpc_error(_rpc_error(grpc.StatusCode.DATA_LOSS))) is InternalError
    assert type(from_rpc_error(_rpc_error(grpc.StatusCode.ABORTED))) is SentinelError


def test_an_error_raised_on_this_side_has_the_code_the_api_would_answer() -> None:
    assert InvalidArgumentError.of("schedule.cron", "bad").code is grpc.StatusCode.INVALID_ARGUMENT
    assert UnavailableError("the download ended early").code is grpc.StatusCode.UNAVAILABLE
    assert NotFoundError("no job 'x'").code is grpc.StatusCode.NOT_FOUND
    assert CallCancelledError("x", code=grpc.StatusCode.UNKNOWN).code is grpc.StatusCode.UNKNOWN  # a given one wins
    assert ConfigError("SENTINEL_API is a URL").code is None  # no API answer means this


def test_wait_timeout_is_a_timeout_error() -> None:
    error = WaitTimeout("j1", 2.5, "running")
    assert isinstance(error, TimeoutError) and isinstance(error, SentinelError) and error.code is None
    assert str(error) == "job j1 has not ended within 2.5 s (last seen running)"
    assert str(Waiting("r1", 0.5, kind="run").expired()) == "run r1 has not ended within 0.5 s"  # wait_run's


@pytest.mark.parametrize("name", ["../x.png", "1/../x.png", "/etc/x", "1/a/b", "0/x", "x/y", "1/.hidden", "1/", "1"])
def test_an_artifact_name_that_is_no_path_below_the_folder_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidArgumentError):
        artifact_path(tmp_path, name)


def test_an_artifact_name_becomes_its_attempts_folder(tmp_path: Path) -> None:
    assert artifact_path(tmp_path, "12/trace.zip") == tmp_path / "12" / "trace.zip"


async def test_an_unknown_keyword_argument_is_refused_naming_it_and_the_accepted_ones(flavor: str) -> None:
    calls = Calls(flavor)
    async with connect(flavor, f"127.0.0.1:{closed_port()}", interceptors=[calls.interceptor()]) as client:
        with pytest.raises(TypeError, match=r"'timeout' \(did you mean 'timeout_ms'\?\); the accepted ones are .*"):
            await client.submit({"name": "n"}, timeout=5)  # type: ignore[call-arg]
        with pytest.raises(TypeError, match=r"'max_paralel' \(did you mean 'max_parallel'\?\)") as run:
            await client.submit_run([{"name": "n"}], max_paralel=1, priorty="high")  # type: ignore[call-arg]
        assert "max_parallel, name, priority" in str(run.value)
        with pytest.raises(TypeError, match=r"'tag' \(did you mean 'tags'\?\)"):
            await client.submit_run([{"name": "n"}], tag=["x"])  # type: ignore[call-arg]
        with pytest.raises(TypeError, match=r"'every'; the accepted ones are .*interval_ms"):
            await client.create_schedule({"name": "n"}, every="5m")  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="'priorty'"):
            await client.create_schedule({"name": "n"}, cron="* * * * *", options={"priorty": "low"})  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="'crn'"):
            await client.update_schedule("s1", crn="* * * * *")  # type: ignore[call-arg]
    assert calls.made == {}, "refused before any call"


@pytest.mark.parametrize(
    ("target", "said"),
    [
        ("http://127.0.0.1:19151", "target must be the API's host:port .*not a URL: drop 'http://': '127.0.0.1:19151'"),
        ("https://api.example.com/", "drop 'https://' and ask for TLS .*'api.example.com'"),
        ("not a target::", "target must be the API's host:port .*got 'not a target::'"),
        ("localhost:99999", "got 'localhost:99999'"),
        ("localhost:", "got 'localhost:'"),
    ],
)
def test_a_malformed_target_is_refused_at_once(target: str, said: str) -> None:
    for cls in (Client, AsyncClient):
        began = time.monotonic()
        with pytest.raises(ConfigError, match=said):
            cls(target)
        assert time.monotonic() - began < 0.5
    with pytest.raises(ConfigError, match="SENTINEL_API must be the API's host:port"):
        Client.from_env({"SENTINEL_API": target})


@pytest.mark.parametrize(
    "target", ["localhost:50051", "127.0.0.1:1", "[::1]:50051", "api", "dns:///api.internal:50051", "unix:/tmp/s.sock"]
)
def test_the_targets_grpc_dials_are_taken(target: str) -> None:
    Client(target).close()
    Client.from_env({"SENTINEL_API": target}).close()
    Client.from_env({"SENTINEL_API": "http://x"}, target=target).close()  # an argument wins over the variable


@pytest.mark.parametrize("timeout", ["5", -1, 0, True, float("nan"), float("inf")])
def test_a_timeout_that_is_not_a_number_of_seconds_is_a_config_error(timeout: object) -> None:
    with pytest.raises(
        ConfigError, match=re.escape(f"timeout must be a number of seconds > 0 (or None), got {timeout!r}")
    ):
        Client("localhost:1", timeout=timeout)  # type: ignore[arg-type]


async def test_a_closed_client_says_so(flavor: str) -> None:
    async with connect(flavor, f"127.0.0.1:{closed_port()}") as client:
        pass
    for attempt in (client.get("j1"), client.submit({"name": "n", "steps": [{"wait": {"ms": 1}}]})):
        with pytest.raises(ConfigError, match="is closed"):
            await attempt
    with pytest.raises(ConfigError, match="is closed"):
        [event async for event in client.events("j1")]


def test_a_chrome_recorder_recording_is_submitted_as_the_cli_submits_it(tmp_path: Path) -> None:
    steps: list[dict[str, Any]] = [
        {"type": "setViewport", "width": 800, "height": 600},
        {"type": "navigate", "url": "https://shop.test/"},
        {"type": "click", "selectors": [["#login"]], "offsetX": 1, "offsetY": 1},
    ]
    recording = {"title": "Sign in", "steps": steps}
    path = tmp_path / "recording.json"
    path.write_text(json.dumps(recording), encoding="utf-8")
    request = submit_request(path, {"priority": "high"})
    assert request.definition.name == "Sign in" and request.definition.viewport.width == 800
    assert [s.WhichOneof("action") for s in request.definition.steps] == ["navigate", "click"]
    assert request.definition.steps[1].click.selector == "#login"
    assert submit_request(recording, {}).definition == request.definition  # a dict too

    steps += [{"type": "scroll"}, {"type": "doubleClick", "selectors": ["a"]}]
    path.write_text(json.dumps(recording), encoding="utf-8")
    with pytest.raises(InvalidArgumentError) as refused:
        submit_request(path, {})
    assert [v.field for v in refused.value.violations] == ["steps[3] (scroll)", "steps[4] (doubleClick)"]
    assert str(refused.value).splitlines()[1] == "steps[4] (doubleClick): Sentinel's click has no click count"


def test_the_recorders_name_limits_are_sentinels() -> None:
    assert (_recorder_steps.MAX_NAME_CHARS, _recorder_steps.MAX_STEP_NAME_CHARS) == (
        validation.MAX_NAME_CHARS,
        validation.MAX_STEP_NAME_CHARS,
    )


@pytest.mark.parametrize(
    ("call", "says"),
    [
        (lambda c: anext(c.jobs(page_size=-1)), "page_size: must be an integer ≥ 0, got -1"),
        (lambda c: anext(c.dead_letters(page_size=-1)), "page_size: must be an integer ≥ 0, got -1"),
        (lambda c: c.purge_dead_letters(older_than_ms=-5), "older_than_ms: must be an integer ≥ 0, got -5"),
        (lambda c: c.clean(older_than_ms=1, limit=-1), "limit: must be an integer ≥ 0, got -1"),
        (lambda c: anext(c.schedules(page_size=2**40)), "page_size: must be an integer ≤ 4294967295"),
    ],
)
async def test_a_negative_number_is_refused_before_any_call_naming_the_keyword(call: Any, says: str) -> None:
    """Not protobuf's bare ValueError ("Value out of range"): the SDK's own error, as for any bad field."""
    async with AsyncClient("127.0.0.1:1") as client:  # nothing listens: the call is never made
        with pytest.raises(InvalidArgumentError) as refused:
            await call(client)
    assert refused.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert says in str(refused.value)


def test_a_stream_rides_out_an_api_restart_by_default_and_follows_the_clients_own_retries() -> None:
    """By default a stream reconnects for about a minute (an API restart, a rolling deploy), while
    unary calls give up within seconds; a client that sets its retries sets its streams' too."""
    with Client("127.0.0.1:1") as default:
        assert default._conn.retries == RetryPolicy()
        streams = default._conn.stream_retries
    pauses = [streams.backoff(n) for n in range(1, streams.attempts)]  # as the client waits, jitter and all
    assert 45 <= sum(pauses) <= 80  # about a minute: more than an API restart takes
    assert sum(RetryPolicy().backoff(n) for n in range(1, RetryPolicy().attempts)) <= 4.2  # unary: seconds
    with Client("127.0.0.1:1", retries=0) as none:
        assert none._conn.stream_retries == RetryPolicy(attempts=1)
    with Client("127.0.0.1:1", retries=0, stream_retries=3) as own:
        assert own._conn.stream_retries == RetryPolicy(attempts=4)


def test_a_runs_bad_test_is_named_by_its_index_as_the_api_names_it(tmp_path: Path) -> None:
    """Caught before any call, a bad field of a run's test (a dict or a file) is named as the API
    would name it: `tests[i].definition…`, so a caller with many tests knows which one."""
    bad_file = tmp_path / "bad.json"
    bad_file.write_text(json.dumps({"name": "f", "steps": [{"click": {"selector": 3}}]}))
    good = {"name": "a", "steps": [{"navigate": {"url": "http://x.test"}}]}
    with Client("127.0.0.1:1") as client:  # nothing listens: the call is never made
        with pytest.raises(InvalidArgumentError) as in_dict:
            client.submit_run([good, {"name": "b", "steps": [{"wait": {"ms": "x"}}]}])
        with pytest.raises(InvalidArgumentError) as in_file:
            client.submit_run([good, good, bad_file])
    assert [v.field for v in in_dict.value.violations] == ["tests[1].definition.steps[0].wait.ms"]
    assert [v.field for v in in_file.value.violations] == ["tests[2].definition.steps[0].click.selector"]


def test_every_bad_test_of_a_run_is_named_not_only_the_first(tmp_path: Path) -> None:
    """`validate_run` (and `submit_run`) name every test's problem found before the call, a
    recording's steps Sentinel cannot run by the test they are in (`tests[2].steps[1] (doubleClick)`)."""
    recording = {"title": "r", "steps": [{"type": "navigate", "url": "http://x.test/"}, {"type": "doubleClick"}]}
    good = {"name": "a", "steps": [{"navigate": {"url": "http://x.test"}}]}
    tests: list[Any] = [{"name": "b", "steps": [{"wait": {"ms": "x"}}]}, good, recording, tmp_path / "missing.json"]
    with Client("127.0.0.1:1") as client, pytest.raises(InvalidArgumentError) as refused:  # no call is made
        client.validate_run(tests)
    fields = [v.field for v in refused.value.violations]
    assert fields == ["tests[0].definition.steps[0].wait.ms", "tests[2].steps[1] (doubleClick)", "tests[3]"], fields
    assert str(refused.value).count("\n") == 2  # one line a problem


def test_validate_run_says_so_when_an_older_api_submitted_the_run() -> None:
    """An API older than `validate_only` ignores it and makes the run: that is said, never hidden."""
    _checked_only(pb.SubmitRunResponse())  # checked only: nothing to say
    with pytest.raises(FailedPreconditionError, match=r"it submitted run r1 .*sentinel cancel r1"):
        _checked_only(pb.SubmitRunResponse(run_id="r1", job_ids=["j1"]))
