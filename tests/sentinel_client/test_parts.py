"""The SDK's parts that need no server: enum coverage of the proto, requests from files and dicts,
the retry policy's schedule, the error mapping (field violations from a real BadRequest detail)."""

from __future__ import annotations

import inspect
import uuid
from enum import StrEnum
from pathlib import Path

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2

from protos import sentinel_pb2 as pb
from sentinel_client import (
    ArtifactPolicy,
    AsyncClient,
    Client,
    FieldViolation,
    InternalError,
    InvalidArgumentError,
    JobState,
    NotFoundError,
    RetryPolicy,
    SentinelError,
    UnavailableError,
    WaitTimeout,
)
from sentinel_client._convert import _PROTO_ENUMS, enum_from_proto, enum_to_proto
from sentinel_client._files import artifact_path
from sentinel_client._requests import submit_request
from sentinel_client._retry import Retrying
from sentinel_client.errors import CallCancelledError, from_rpc_error
from tests.sentinel_client.twins import _ITERATORS

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
        ('{"name": "n", "stepz": []}', "file", "is not a valid test definition"),
    ],
)
def test_a_bad_file_is_refused_naming_it(tmp_path: Path, content: str, field: str, said: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(InvalidArgumentError) as refused:
        submit_request(path, {})
    assert refused.value.code is None and refused.value.violations[0].field == field
    assert said in refused.value.message and refused.value.message.startswith(f"{field}: ")


def test_bad_keyword_options_are_refused_naming_them() -> None:
    for options, field in (
        ({"tags": "smoke"}, "tags"),
        ({"timeout_ms": -1}, "timeout_ms"),
        ({"priority": 3}, "priority"),
    ):
        with pytest.raises(InvalidArgumentError) as refused:
            submit_request({"name": "n"}, options)  # type: ignore[arg-type]
        assert [v.field for v in refused.value.violations] == [field]


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


def test_wait_timeout_is_a_timeout_error() -> None:
    error = WaitTimeout("j1", 2.5, "running")
    assert isinstance(error, TimeoutError) and isinstance(error, SentinelError) and error.code is None
    assert str(error) == "job j1 has not ended within 2.5 s (last seen running)"


@pytest.mark.parametrize("name", ["../x.png", "1/../x.png", "/etc/x", "1/a/b", "0/x", "x/y", "1/.hidden", "1/", "1"])
def test_an_artifact_name_that_is_no_path_below_the_folder_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidArgumentError):
        artifact_path(tmp_path, name)


def test_an_artifact_name_becomes_its_attempts_folder(tmp_path: Path) -> None:
    assert artifact_path(tmp_path, "12/trace.zip") == tmp_path / "12" / "trace.zip"
