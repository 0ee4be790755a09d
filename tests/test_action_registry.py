"""The tables of step actions agree: the registry, the protobuf oneof, validation and the runner.

Adding an action is one registered dataclass (shared/actions.py), its proto message and oneof
member, one runner function (executor_service/actions.py) and its tests; these checks catch any
of the four left out or spelt differently.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

import pytest
from google.protobuf.descriptor import FieldDescriptor

from executor_service.actions import PERFORMERS
from protos import sentinel_pb2 as pb
from shared.actions import ACTIONS, Action, JsonExpectation, holds
from shared.edge import convert
from tests.convert_helpers import step_to_proto

ONEOF = {f.name: f.message_type for f in pb.Step.DESCRIPTOR.oneofs_by_name["action"].fields}
#: The Python type of each protobuf scalar type an action field uses.
PYTHON_TYPE = {
    FieldDescriptor.TYPE_STRING: "str",
    FieldDescriptor.TYPE_BOOL: "bool",
    FieldDescriptor.TYPE_UINT32: "int",
}


def python_type(field: Any) -> str:
    """The type an action's dataclass field has for a protobuf field: a map is a dict, a repeated
    field a tuple (of a dataclass named like the message, for messages)."""
    message = field.message_type
    if message is not None and message.GetOptions().map_entry:
        key, value = (python_type(message.fields_by_name[name]) for name in ("key", "value"))
        return f"dict[{key}, {value}]"
    item = message.name if message is not None else PYTHON_TYPE[field.type]
    return f"tuple[{item}, ...]" if field.is_repeated else item


def test_the_registry_holds_every_oneof_member_and_nothing_else() -> None:
    assert list(ACTIONS) == list(ONEOF)  # same names, in the proto's order
    assert set(typing.get_args(Action)) == set(ACTIONS.values())


@pytest.mark.parametrize("kind", ACTIONS)
def test_an_action_has_the_fields_of_its_message(kind: str) -> None:
    cls = ACTIONS[kind]
    assert cls.__dataclass_fields__["kind"].default == kind
    fields = {f.name: f.type for f in dataclasses.fields(cls) if f.init}
    descriptor = ONEOF[kind]
    assert descriptor is not None
    message = {f.name: python_type(f) for f in descriptor.fields}
    assert fields == message


@pytest.mark.parametrize("kind", ACTIONS)
def test_an_action_declares_every_field_for_validation(kind: str) -> None:
    cls = ACTIONS[kind]
    assert list(holds(cls)) == [f.name for f in dataclasses.fields(cls) if f.init]


@pytest.mark.parametrize("kind", ACTIONS)
def test_an_action_has_a_runner_function(kind: str) -> None:
    assert ACTIONS[kind] in PERFORMERS
    assert set(PERFORMERS) == set(ACTIONS.values())


def test_a_message_inside_an_action_has_the_fields_of_its_dataclass() -> None:
    request: Any = ONEOF["request"]
    expectation = request.fields_by_name["expect_json"].message_type
    fields = {f.name: f.type for f in dataclasses.fields(JsonExpectation)}
    assert fields == {f.name: python_type(f) for f in expectation.fields}


@pytest.mark.parametrize("kind", ACTIONS)
def test_an_action_converts_from_its_oneof_member(kind: str) -> None:
    step = pb.Step()
    getattr(step, kind).SetInParent()  # every field unset: the action's defaults apply
    action = convert.step_from_proto(step).action
    assert type(action) is ACTIONS[kind]
    assert convert.step_from_proto(step_to_proto(convert.step_from_proto(step))).action == action
