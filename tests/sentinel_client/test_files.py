"""Definition files as the SDK reads them (`submit(path)`, `sentinel submit FILE`): a bare
TestDefinition or a SubmitRequest in proto3 JSON, and what is wrong with a bad one; and the files
downloads write (`PartialFile`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from protos import sentinel_pb2 as pb
from sentinel_client._files import PartialFile
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
        ("[" * 100_000, "nested too deeply"),
    ],
)
def test_bad_files_raise_an_invalid_argument_error_on_file(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        load(tmp_path, text)
    [violation] = caught.value.violations
    assert violation.field == "file"
    assert says in violation.description


@pytest.mark.parametrize(
    ("document", "field", "description"),
    [
        ({"name": "n", "viewport": {"width": -1}}, "definition.viewport.width", "Value out of range: -1"),
        (
            {"name": "n", "steps": [{"wait": {"ms": 1}}, {"timeoutMs": -1, "wait": {"ms": 1}}]},
            "definition.steps[1].timeoutMs",
            "Value out of range: -1",
        ),
        (
            {"name": "n", "steps": [{"wait": {"ms": "abc"}}]},
            "definition.steps[0].wait.ms",
            "must be an integer, got 'abc'",
        ),
        ({"name": "n", "steps": [{"wait": {"ms": 1.5}}]}, "definition.steps[0].wait.ms", "must be an integer, got 1.5"),
        (
            {"name": "n", "steps": [{"wait": {"ms": "1.5"}}]},
            "definition.steps[0].wait.ms",
            "must be an integer, got '1.5'",
        ),
        (
            {"name": "n", "steps": [{"wait": {"ms": True}}]},
            "definition.steps[0].wait.ms",
            "must be an integer, got True",
        ),
        ({"name": "n", "steps": [{"wait": {"ms": []}}]}, "definition.steps[0].wait.ms", "must be an integer, got []"),
        ({"name": "n", "viewport": {"width": "wide"}}, "definition.viewport.width", "must be an integer, got 'wide'"),
        (
            {"definition": {"name": "n"}, "options": {"maxAttempts": "x" * 100}},
            "options.maxAttempts",
            "must be an integer, got 'xxxxxxxx",
        ),
        ({"steps": [{"click": {}, "fill": {}}]}, "definition.steps[0]", 'has more than one "action" field; give one'),
        ({"steps": [{"clik": {"selector": "#a"}}]}, "definition.steps[0]", 'unknown field "clik"'),
        ({"name": "n", "stepz": []}, "definition", 'unknown field "stepz"'),
        ({"steps": [{"navigate": {"url": "/", "wait": 1}}]}, "definition.steps[0].navigate", 'unknown field "wait"'),
        ({"steps": [{"wait_for": {"selector": 5}}]}, "definition.steps[0].wait_for.selector", "expected string"),
        ({"steps": [5]}, "definition.steps[0]", "must be a JSON object"),
        ({"definition": {"name": 5}}, "definition.name", "expected string or bytes-like object, got 'int'"),
        ({"definition": {"name": "n"}, "options": {"priority": "URGENT"}}, "options.priority", "Invalid enum value"),
        ({"definition": {"name": "n"}, "options": {"maxAttempts": -2}}, "options.maxAttempts", "Value out of range"),
    ],
)
def test_a_field_protobuf_refuses_is_named_by_its_path_in_the_file(
    tmp_path: Path, document: dict[str, object], field: str, description: str
) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        load(tmp_path, json.dumps(document))
    [violation] = caught.value.violations
    assert violation.field == field
    assert violation.description.startswith(description)
    assert "Available Fields" not in violation.description and not violation.description.endswith(".")
    assert "Failed to parse" not in violation.description
    assert caught.value.message == f"{field}: {violation.description}"


# --- downloads (`PartialFile`, under both clients' download_artifact) ----------------------------


def _download(dest: Path, name: str = "1/trace.zip", data: bytes = b"zip!") -> Path:
    part = PartialFile(dest, name)
    try:
        part.start()
        part.write(data, len(data))
        return part.commit()
    finally:
        part.discard()


def test_a_download_into_a_directory_lands_in_it_under_its_own_name(tmp_path: Path) -> None:
    assert _download(tmp_path) == tmp_path / "trace.zip"
    assert (tmp_path / "trace.zip").read_bytes() == b"zip!"
    assert _download(tmp_path / "named.zip", data=b"again") == tmp_path / "named.zip"  # a file path as given
    assert sorted(p.name for p in tmp_path.iterdir()) == ["named.zip", "trace.zip"]  # no .part left
    with pytest.raises(InvalidArgumentError, match="name: must start with the attempt"):
        _download(tmp_path, name="../trace.zip")


def test_a_download_that_cannot_be_written_names_the_path_never_the_part_file(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    part = PartialFile(dest, "1/trace.zip")
    part.start()
    part.write(b"zip!", 4)
    (dest / "keep").mkdir(parents=True)  # a directory took the name meanwhile
    with pytest.raises(IsADirectoryError) as refused:
        part.commit()
    part.discard()
    assert refused.value.filename == str(dest) and ".part" not in str(refused.value)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]

    (tmp_path / "f.txt").write_text("hi")
    with pytest.raises(NotADirectoryError) as not_a_folder:
        _download(tmp_path / "f.txt" / "trace.zip")
    assert not_a_folder.value.filename == str(tmp_path / "f.txt") and ".part" not in str(not_a_folder.value)
