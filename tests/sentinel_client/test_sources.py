"""Tests named by path: `submit_run` takes one path or a list, expands folders and globs as `sentinel run`
does, and a file that cannot be read is an InvalidArgumentError naming its place (`tests[i]`, `file`)
with the OS's reason, before any call. No server: the clients point at a closed port."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sentinel_client import AsyncClient, InvalidArgumentError
from sentinel_client._requests import run_request, submit_request
from sentinel_client._sources import definition_files
from tests.sentinel_client.twins import connect
from tests.support import closed_port

DEFINITION = {"name": "t", "steps": [{"navigate": {"url": "https://shop.example.test/"}}]}


def write(path: Path, document: object = DEFINITION) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    """A folder as `sentinel run` takes it: tests at two depths, other files, a node_modules folder."""
    folder = tmp_path / "tests"
    write(folder / "login.json")
    write(folder / "checkout" / "pay.json")
    write(folder / "checkout" / "cart.json")
    (folder / "README.md").write_text("not a test", encoding="utf-8")
    write(folder / "node_modules" / "pkg" / "package.json", {"name": "pkg"})
    return folder


def _files(tests: object) -> list[str]:
    return [test.file for test in run_request(tests, name="", max_parallel=0, options={}).tests]  # type: ignore[arg-type]


def test_one_folder_stands_for_its_definition_files_as_sentinel_run_takes_them(suite: Path) -> None:
    expected = [str(suite / "checkout" / "cart.json"), str(suite / "checkout" / "pay.json"), str(suite / "login.json")]
    assert _files(str(suite)) == expected
    assert _files(suite) == expected  # a PathLike too
    assert [str(p) for p in definition_files(suite)] == expected


def test_one_file_is_one_test_not_one_per_character(suite: Path) -> None:
    assert _files(str(suite / "login.json")) == [str(suite / "login.json")]
    assert _files(suite / "login.json") == [str(suite / "login.json")]


def test_folders_and_globs_in_a_list_are_expanded_in_place(suite: Path) -> None:
    tests = [{"name": "first", "steps": []}, str(suite / "checkout"), str(suite / "*.json"), (DEFINITION, "shown.json")]
    assert _files(tests) == [
        "",
        str(suite / "checkout" / "cart.json"),
        str(suite / "checkout" / "pay.json"),
        str(suite / "login.json"),
        "shown.json",
    ]
    assert _files([str(suite / "**" / "pay.json")]) == [str(suite / "checkout" / "pay.json")]


@pytest.mark.parametrize(
    ("tests", "field", "said"),
    [
        (["{d}/missing.json"], "tests[0]", "'{d}/missing.json' cannot be read: No such file or directory"),
        (["{d}/tests", "{d}/missing.json"], "tests[3]", "'{d}/missing.json' cannot be read: No such file or directory"),
        (["{d}/empty"], "tests[0]", "'{d}/empty' names no definition file"),
        (["{d}/tests/*.yaml"], "tests[0]", "'{d}/tests/*.yaml' names no definition file"),
        ([("{d}/tests", "shown.json")], "tests[0]", "'{d}/tests' cannot be read: Is a directory"),
        (["{d}/broken.json"], "tests[0]", "is not valid JSON"),
        (["{d}/latin.json"], "tests[0]", "is not UTF-8 text: invalid start byte at byte 0"),
    ],
)
def test_a_path_that_gives_no_test_is_named_by_its_place_with_the_reason(
    suite: Path, tests: list[object], field: str, said: str
) -> None:
    d = suite.parent
    (d / "empty").mkdir()
    (d / "broken.json").write_text("{not json", encoding="utf-8")
    (d / "latin.json").write_bytes(b'\xff{"name": "caf\xe9"}')
    given = [(item[0].format(d=d), item[1]) if isinstance(item, tuple) else str(item).format(d=d) for item in tests]
    with pytest.raises(InvalidArgumentError) as refused:
        run_request(given, name="", max_parallel=0, options={})
    [violation] = refused.value.violations
    assert violation.field == field
    assert said.format(d=d) in violation.description
    assert ".part" not in violation.description and "Errno" not in violation.description


@pytest.mark.parametrize("make", ["missing", "folder"])
def test_submit_names_a_file_it_cannot_read_file(tmp_path: Path, make: str) -> None:
    path = tmp_path / "tests"
    reason = "No such file or directory"
    if make == "folder":
        write(path / "a.json")
        reason = "Is a directory (one test file is expected)"
    with pytest.raises(InvalidArgumentError) as refused:
        submit_request(path, {})
    [violation] = refused.value.violations
    assert (violation.field, violation.description) == ("file", f"{str(path)!r} cannot be read: {reason}")


@pytest.mark.parametrize(
    ("tests", "said"),
    [
        (DEFINITION, "tests must be a list of tests, or one path"),
        ([42], "tests[0] must be a file's path, a definition (dict) or a (test, name) pair: 42"),
        ([(DEFINITION, "a", "b")], "tests[0] must be a file's path"),
    ],
)
def test_what_is_no_test_at_all_is_a_type_error(tests: object, said: str) -> None:
    with pytest.raises(TypeError, match=re.escape(said)):
        run_request(tests, name="", max_parallel=0, options={})  # type: ignore[arg-type]


async def test_both_clients_take_one_folder_and_refuse_a_missing_file_before_any_call(flavor: str, suite: Path) -> None:
    async with connect(flavor, f"127.0.0.1:{closed_port()}", retries=0) as client:
        client_: AsyncClient = client
        with pytest.raises(InvalidArgumentError, match=r"^tests\[3\]: .* cannot be read: No such file or directory$"):
            await client_.submit_run([suite, suite / "gone.json"])
        with pytest.raises(InvalidArgumentError, match=r"^file: .* cannot be read: Is a directory"):
            await client_.submit(suite)
