"""A run checks its definition again; jobs that share one definition object are checked once."""

from __future__ import annotations

import pytest

from executor_service import job
from shared import codec, validation
from shared.actions import Navigate
from shared.errors import FieldViolation
from shared.model import Step, TestDefinition


def test_a_definition_object_is_checked_once_and_its_violations_come_back_each_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checked: list[TestDefinition] = []
    real = validation.validate_definition

    def counted(definition: TestDefinition) -> list[FieldViolation]:
        checked.append(definition)
        return real(definition)

    monkeypatch.setattr(job, "validate_definition", counted)
    raw = codec.definition_to_json(TestDefinition(name="", steps=(Step(Navigate(url="ftp://nowhere/")),)))
    shared = codec.definition_from_json(raw)  # what the jobs of one test share
    alone = codec.definition_from_json(raw + " ")  # equal, but another object

    first = job._violations(shared)
    again = job._violations(shared)
    other = job._violations(alone)

    assert [v.field for v in first] == ["definition.name", "definition.steps[0].navigate.url"]
    assert again == first and again is not first  # a list of its own each time
    assert other == first
    assert checked == [shared, alone] and checked[0] is shared and checked[1] is alone
