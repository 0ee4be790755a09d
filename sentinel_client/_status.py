"""Reads the `google.rpc.Status` a Sentinel API sends in a failed call's trailing metadata.

The API packs field violations as a `google.rpc.BadRequest` detail (`grpc-status-details-bin`).
The SDK may import only protobuf, gRPC and its own generated code, so the two message types it
needs are declared here, in a private descriptor pool: they can never clash with the real
`google.rpc` modules when a program also loads those. Must never raise: a detail that cannot be
read is simply not there.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

DETAILS_KEY = "grpc-status-details-bin"
_BAD_REQUEST = "google.rpc.BadRequest"


def _file() -> descriptor_pb2.FileDescriptorProto:
    field = descriptor_pb2.FieldDescriptorProto
    text, optional, repeated = field.TYPE_STRING, field.LABEL_OPTIONAL, field.LABEL_REPEATED
    file = descriptor_pb2.FileDescriptorProto(
        name="sentinel_client/google_rpc_status.proto",
        package="google.rpc",
        syntax="proto3",
        dependency=["google/protobuf/any.proto"],
    )
    status = file.message_type.add(name="Status")
    status.field.add(name="code", number=1, type=field.TYPE_INT32, label=optional)
    status.field.add(name="message", number=2, type=text, label=optional)
    status.field.add(
        name="details", number=3, type=field.TYPE_MESSAGE, label=repeated, type_name=".google.protobuf.Any"
    )
    bad_request = file.message_type.add(name="BadRequest")
    violation = bad_request.nested_type.add(name="FieldViolation")
    violation.field.add(name="field", number=1, type=text, label=optional)
    violation.field.add(name="description", number=2, type=text, label=optional)
    bad_request.field.add(
        name="field_violations",
        number=1,
        type=field.TYPE_MESSAGE,
        label=repeated,
        type_name=".google.rpc.BadRequest.FieldViolation",
    )
    return file


_POOL = descriptor_pool.DescriptorPool()
_POOL.AddSerializedFile(any_pb2.DESCRIPTOR.serialized_pb)
_POOL.Add(_file())
_Status = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("google.rpc.Status"))
_BadRequest = message_factory.GetMessageClass(_POOL.FindMessageTypeByName(_BAD_REQUEST))


def field_violations(trailing_metadata: Iterable[tuple[str, str | bytes]] | None) -> list[tuple[str, str]]:
    """The (field, description) pairs of the BadRequest detail in a call's trailers ([] when none)."""
    for key, value in trailing_metadata or ():
        if key != DETAILS_KEY or not isinstance(value, bytes):
            continue
        try:
            status: Any = _Status.FromString(value)
            found: list[tuple[str, str]] = []
            for detail in status.details:
                if detail.type_url.rsplit("/", 1)[-1] == _BAD_REQUEST:
                    bad_request: Any = _BadRequest.FromString(detail.value)
                    found += [(str(v.field), str(v.description)) for v in bad_request.field_violations]
            return found
        except DecodeError:
            return []
    return []
