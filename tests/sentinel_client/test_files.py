"""Definition files as the SDK reads them (`submit(path)`, `sentinel submit FILE`): a bare
TestDefinition or a SubmitRequest in proto3 JSON, and what is wrong with a bad one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from protos import sentinel_pb2 as pb
from sentinel_client._requests import load_file
from sentinel_client.errors import InvalidArgumentError
from tests.shared.edge.test_convert import EVERY_ACTION_JSON, every_action_proto


def load(tmp_path: Path, text: str) -> pb.SubmitRequest:
    path = tmp_path / "test.json"
    path.write_text(text, encoding="utf-8")
    return load_file(path)


def test_load_a_bare_test_definition(tmp_path: Path) -> None:
    req = load(tmp_path, json.dumps(EVERY_ACTION_JSON))
    assert req.definition == every_action_proto()
    assert not req.HasField("options")


def test_load_a_submit_request(tmp_path: Path) -> None:
    text = json.dumps({"definition": EVERY_ACTION_JSON, "options": {"priority": "PRIORITY_HIGH", "tags": ["x"]}})
    req = load(tmp_path, text)
    assert req.definition == every_action_proto()
    assert req.options.priority == pb.PRIORITY_HIGH and list(req.options.tags) == ["x"]
    options_only = load(tmp_path, '\ufeff{"options": {"maxAttempts": 2}, "user_id": "u"}')
    assert options_only.options.max_attempts == 2 and options_only.user_id == "u"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{not json", "is not valid JSON"),
        ("", "is not valid JSON"),
        ("[1, 2]", "must hold a JSON object"),
        ('{"steps": [{"clik": {"selector": "#a"}}]}', "clik"),
        ('{"steps": [{"click": {}, "fill": {}}]}', "oneof"),
        ('{"definition": {"name": 5}, "options": {"priority": "URGENT"}}', "not a valid test definition"),
        ('{"name": "n", "steps": [{"wait": {"ms": -1}}]}', "not a valid test definition"),
        ("[" * 100_000, "nested too deeply"),
    ],
)
def test_bad_files_raise_an_invalid_argument_error_on_file(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        load(tmp_path, text)
    [violation] = caught.value.violations
    assert violation.field == "file"
    assert says in violation.description
