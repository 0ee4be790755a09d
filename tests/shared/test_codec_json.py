"""Definitions and options are stored as the JSON of their dataclasses: every field, `kind` included."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from shared import codec
from shared.actions import ACTIONS, Action, JsonExpectation, Request
from shared.errors import DecodeError
from shared.model import ArtifactPolicy, JobOptions, Priority, Step, TestDefinition, Viewport


def _example(cls: type[Action]) -> Action:
    """An instance of an action class with every required field set."""
    required: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.init and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required[f.name] = 250 if f.type == "int" else "x"
    return cls(**required)


def _as_json(value: Any) -> Any:
    """`asdict`'s shape as JSON reads it back (tuples become lists, enums their values)."""
    return json.loads(json.dumps(dataclasses.asdict(value)))


EXAMPLES = [
    *(_example(cls) for cls in ACTIONS.values()),
    Request(
        url="https://api.example.test/v1",
        method="POST",
        headers={"Authorization": "sealed", "X-Trace": "ü"},
        body='{"a": 1}',
        expect_status=201,
        expect_json=(JsonExpectation("$.a", "1"), JsonExpectation("$.b")),
        secret_headers=("Authorization",),
    ),
]


@pytest.mark.parametrize("action", EXAMPLES, ids=lambda a: a.kind)
def test_an_action_is_stored_with_every_field_and_its_kind(action: Action) -> None:
    definition = TestDefinition(name="t", viewport=Viewport(1280, 720), steps=(Step(action, name="s", timeout_ms=5),))

    stored = json.loads(codec.definition_to_json(definition))

    assert stored["viewport"] == {"width": 1280, "height": 720}
    assert stored["steps"] == [{"name": "s", "timeout_ms": 5, "action": _as_json(action)}]
    assert stored["steps"][0]["action"]["kind"] == action.kind
    assert codec.definition_from_json(codec.definition_to_json(definition)) == definition


def test_a_steps_frames_are_stored_when_it_has_some() -> None:
    framed = Step(_example(ACTIONS["click"]), frames=("iframe#pay", "#inner"))
    definition = TestDefinition(name="t", steps=(framed, Step(_example(ACTIONS["click"]))))

    stored = json.loads(codec.definition_to_json(definition))

    assert stored["steps"][0]["frames"] == ["iframe#pay", "#inner"]
    assert "frames" not in stored["steps"][1]  # a definition without frames is stored as before
    assert codec.definition_from_json(codec.definition_to_json(definition)) == definition


def test_options_are_stored_with_every_field_and_enums_as_their_values() -> None:
    options = JobOptions(priority=Priority.HIGH, tags=("a", "b"), artifact_policy=ArtifactPolicy.NEVER, max_attempts=3)

    stored = json.loads(codec.options_to_json(options))

    assert stored == _as_json(options)
    assert stored["priority"] == "high" and stored["artifact_policy"] == "never"
    assert codec.options_from_json(codec.options_to_json(options)) == options


def test_a_definition_is_decoded_once_for_the_same_json_and_not_kept_when_long() -> None:
    short = codec.definition_to_json(TestDefinition(name="t", steps=(Step(_example(Request)),)))
    long_name = "n" * codec.DEFINITION_KEPT_MAX_CHARS
    long = codec.definition_to_json(TestDefinition(name=long_name, steps=(Step(_example(Request)),)))

    assert codec.definition_from_json(short) is codec.definition_from_json(short)
    assert codec.definition_from_json(short) == codec.definition_from_json(str(short))  # equal text, same value
    assert codec.definition_from_json(long) is not codec.definition_from_json(long)
    assert codec.definition_from_json(long) == codec.definition_from_json(long)
    for _ in range(2):  # a malformed one is refused each time, never remembered
        with pytest.raises(DecodeError, match="malformed definition"):
            codec.definition_from_json('{"name": "t"}')
