"""SubmitChecks: the same request checked once; failures, secrets and long requests every time."""

from __future__ import annotations

import pytest

from shared.errors import ValidationError
from shared.model import Fill, JobOptions, Navigate, Step, SubmitCommand, TestDefinition
from shared.sealed import SEALED_PREFIX, Sealer, new_secret_key
from shared.submit_checks import KEPT_MAX_BYTES, SubmitChecks


def submit(*steps: Step, name: str = "checkout") -> SubmitCommand:
    return SubmitCommand(definition=TestDefinition(name=name, steps=steps), options=JobOptions())


GOOD = submit(Step(Navigate("https://example.test/")))
BAD = submit(Step(Navigate("ftp://example.test/")))
SECRET = submit(Step(Navigate("https://example.test/")), Step(Fill("#password", "hunter2", secret=True)))


class Converter:
    """Stands for the edge's conversion of a request: counts how often it ran."""

    def __init__(self, command: SubmitCommand) -> None:
        self.command = command
        self.calls = 0

    def __call__(self) -> SubmitCommand:
        self.calls += 1
        return self.command


def test_the_same_request_is_checked_once_and_its_command_shared() -> None:
    checks = SubmitChecks(None)
    convert = Converter(GOOD)
    first = checks.command(b"request", convert)
    assert checks.command(b"request", convert) is first
    assert convert.calls == 1
    other = Converter(submit(Step(Navigate("https://other.test/"))))
    assert checks.command(b"another request", other).definition.steps[0].action == Navigate("https://other.test/")
    assert other.calls == 1


def test_a_request_in_error_is_checked_each_time_and_names_its_own_field() -> None:
    checks = SubmitChecks(None)
    convert = Converter(BAD)
    for prefix in ("", "requests[3]."):
        with pytest.raises(ValidationError) as raised:
            checks.command(b"bad request", convert, prefix=prefix)
        assert raised.value.violations[0].field == f"{prefix}definition.steps[0].navigate.url"
    assert convert.calls == 2


def test_secret_values_are_sealed_anew_for_each_job() -> None:
    checks = SubmitChecks(Sealer(new_secret_key()))
    convert = Converter(SECRET)
    sealed = [checks.command(b"secret request", convert).definition.steps[1].action for _ in range(2)]
    assert convert.calls == 2
    values = [action.value for action in sealed if isinstance(action, Fill)]
    assert len(values) == 2 and all(v.startswith(SEALED_PREFIX) for v in values)
    assert values[0] != values[1]  # each job its own seal


def test_without_a_sealer_secret_values_are_refused_every_time() -> None:
    checks = SubmitChecks(None)
    convert = Converter(SECRET)
    for _ in range(2):
        with pytest.raises(ValidationError, match="SENTINEL_SECRET_KEY"):
            checks.command(b"secret request", convert)
    assert convert.calls == 2


def test_the_least_recently_used_goes_first_and_long_or_unnamed_requests_are_not_kept() -> None:
    checks = SubmitChecks(None, kept=2)
    a, b, c = Converter(GOOD), Converter(GOOD), Converter(GOOD)
    checks.command(b"a", a)
    checks.command(b"b", b)
    checks.command(b"a", a)  # a used last: b is the one to go
    checks.command(b"c", c)
    checks.command(b"a", a)
    checks.command(b"b", b)
    assert (a.calls, b.calls, c.calls) == (1, 2, 1)

    long, unnamed = Converter(GOOD), Converter(GOOD)
    for _ in range(2):
        checks.command(b"x" * (KEPT_MAX_BYTES + 1), long)
        checks.command(None, unnamed)
    assert (long.calls, unnamed.calls) == (2, 2)
