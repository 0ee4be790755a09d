"""`sentinel artifacts` and `sentinel trace` refusing bad options as usage errors (exit 2) naming the
option, before anything is asked of the API (a closed port here: a call would be UNAVAILABLE): an
`--out` that is a file, or below one, instead of a raw `OSError` naming Sentinel's temporary
`.part` file; an `--attempt` below 1 instead of "no trace for attempt 0"."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from sentinel_cli import arguments
from sentinel_cli import artifacts as artifact_commands
from sentinel_cli.main import _parser
from shared.errors import ValidationError
from tests.sentinel_cli.test_artifacts import files_below
from tests.sentinel_cli.test_client import sentinel
from tests.support import closed_port

pytestmark = pytest.mark.timeout(60)

JOB = "0b8f2a52-2d0c-4f7e-8d55-7c1d0c3e9a11"


async def test_an_out_that_is_a_file_is_a_usage_error_naming_the_option(tmp_path: Path) -> None:
    nowhere = f"127.0.0.1:{closed_port()}"
    (tmp_path / "f.txt").write_text("hi", encoding="utf-8")
    for command in ("artifacts", "trace"):
        code, out, err = await sentinel(nowhere, command, JOB, "--out", "f.txt", cwd=tmp_path)
        assert (code, out, err) == (2, "", "sentinel: --out: 'f.txt' is not a directory\n")
        code, _, err = await sentinel(nowhere, command, JOB, "--out", "f.txt/sub", cwd=tmp_path)
        assert (code, err) == (
            2,
            f"sentinel: --out: 'f.txt/sub' cannot be made: {str(tmp_path / 'f.txt')!r} is not a directory\n",
        )
    assert files_below(tmp_path) == {"f.txt": b"hi"}  # untouched, and no partial file beside it


async def test_the_default_out_is_checked_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / JOB).write_text("", encoding="utf-8")
    args = _parser().parse_args(["trace", JOB])
    with pytest.raises(ValidationError) as refused:
        await artifact_commands.run(args, f"127.0.0.1:{closed_port()}")
    assert [(v.field, v.description) for v in refused.value.violations] == [
        ("--out", f"{JOB!r} (the default --out: the job's id) is not a directory")
    ]


def test_an_out_folder_that_exists_or_can_be_made_is_taken(tmp_path: Path) -> None:
    assert artifact_commands.out_folder(str(tmp_path), JOB) == tmp_path
    assert artifact_commands.out_folder(str(tmp_path / "new" / "deeper"), JOB) == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()  # checked, not made: the download makes it


@pytest.mark.parametrize("given", ["0", "-1"])
def test_an_attempt_below_one_is_a_usage_error_naming_the_flag(given: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        _parser().parse_args(["trace", JOB, "--attempt", given])
    assert exited.value.code == 2
    assert capsys.readouterr().err.endswith(f"error: argument --attempt: must be 1 or more, got {given}\n")
    assert _parser().parse_args(["trace", JOB, "--attempt", "2"]).attempt == 2


def test_positive_takes_whole_numbers_from_one() -> None:
    assert arguments.positive("1") == 1
    for bad in ("0", "-3"):
        with pytest.raises(argparse.ArgumentTypeError, match=f"must be 1 or more, got {bad}"):
            arguments.positive(bad)
    with pytest.raises(ValueError):
        arguments.positive("x")  # argparse: "invalid positive value: 'x'"
