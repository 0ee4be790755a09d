"""Tests named by path: files, folders and globs, read as the JSON documents `_requests` builds from.

A folder or a glob names its definition files as `sentinel run PATH…` takes them (`definition_files`);
`submit_run` accepts one path, or a list holding paths, and expands each folder and glob in place. A
file that cannot be read is an InvalidArgumentError naming the field the caller knows it by (`file`,
`tests[2]`) and the OS's reason: never a bare OSError, nor Sentinel's own file names. Reads files,
never writes them; nothing here talks to the network.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeAlias, TypeGuard

from sentinel_client.errors import InvalidArgumentError

#: A test to submit: its definition (or a SubmitRequest) as a dict, or the path of a JSON file.
TestSource: TypeAlias = Mapping[str, Any] | str | os.PathLike[str]

#: A test of a run: a TestSource, or one paired with the file name reports should show for it
#: (a definition made from a file, say; a path names itself).
RunTestSource: TypeAlias = TestSource | tuple[TestSource, str]

#: The tests of a run: a list of them, or one path (a file, a folder of `*.json` files, a glob).
RunTests: TypeAlias = Iterable[RunTestSource] | str | os.PathLike[str]


def is_path(value: object) -> TypeGuard[str | os.PathLike[str]]:
    """A path, as the SDK takes one (a `str` or an `os.PathLike`)."""
    return isinstance(value, str | os.PathLike)


def definition_files(path: str | os.PathLike[str]) -> list[Path]:
    """The definition files `path` names, as `sentinel run` takes them: a file itself; a folder's
    `*.json` files at any depth, sorted, none below a `node_modules` folder; a glob's matches (`**`
    at any depth), each folder among them expanded. Empty when it names no file."""
    given = os.fspath(path)
    matches = sorted(glob.glob(given, recursive=True)) if _is_glob(given) else [given]
    files: list[Path] = []
    for match in matches:
        found = Path(match)
        if found.is_dir():
            below = (f for f in found.rglob("*.json") if "node_modules" not in f.relative_to(found).parts)
            files += sorted(f for f in below if f.is_file())
        elif found.is_file():
            files.append(found)
    return files


def _is_glob(path: str) -> bool:
    # A file whose name has glob characters (`report[1].json`) is still named by its own name.
    return glob.has_magic(path) and not os.path.lexists(path)


def run_tests(tests: RunTests) -> list[RunTestSource]:
    """`tests` as a list with every folder and glob among them replaced by its files (`definition_files`);
    one path stands for a list of it. Other paths stay as given (reading one says what is wrong).

    Raises:
        TypeError: `tests` is one definition (a dict), or a test is neither a path, a dict nor a
            (test, name) pair.
        InvalidArgumentError: a folder or glob names no file; named `tests[i]`, the position its
            files would have had among the tests sent.
    """
    if isinstance(tests, str | os.PathLike):
        tests = [tests]
    elif isinstance(tests, Mapping):
        raise TypeError("tests must be a list of tests, or one path (a file, a folder); one definition goes in a list")
    flat: list[RunTestSource] = []
    for i, item in enumerate(tests):
        test = item[0] if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], str) else item
        if not (isinstance(test, Mapping) or is_path(test)):
            raise TypeError(f"tests[{i}] must be a file's path, a definition (dict) or a (test, name) pair: {item!r}")
        if test is item and is_path(item) and (os.path.isdir(item) or _is_glob(os.fspath(item))):
            files = definition_files(item)
            if not files:
                raise InvalidArgumentError.of(f"tests[{len(flat)}]", f"{os.fspath(item)!r} names no definition file")
            flat += [str(file) for file in files]
        else:
            flat.append(item)
    return flat


def read_test(path: str | os.PathLike[str], field: str) -> Any:
    """The JSON document in the test file `path`, as `read_document` reads it.

    Raises:
        InvalidArgumentError: naming `field`: the file cannot be read (the OS's reason), is not UTF-8
            text or not JSON.
    """
    try:
        return read_document(path, field=field)
    except IsADirectoryError as exc:
        raise InvalidArgumentError.of(
            field, f"{os.fspath(path)!r} cannot be read: {exc.strerror} (one test file is expected)"
        ) from exc
    except OSError as exc:
        raise InvalidArgumentError.of(field, f"{os.fspath(path)!r} cannot be read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise InvalidArgumentError.of(field, f"is not UTF-8 text: {exc.reason} at byte {exc.start}") from exc


def read_document(path: str | os.PathLike[str], *, field: str = "file") -> Any:
    """The JSON document in a test file (a byte order mark before it is ignored), read once.

    Raises:
        OSError: the file cannot be read.
        UnicodeDecodeError: it is not UTF-8 text.
        InvalidArgumentError: the field `field` says what is wrong with its content.
    """
    text = Path(path).read_text(encoding="utf-8")
    try:
        return json.loads(text.removeprefix("\ufeff"))
    except json.JSONDecodeError as exc:
        raise InvalidArgumentError.of(field, f"is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise InvalidArgumentError.of(field, "is nested too deeply") from exc
