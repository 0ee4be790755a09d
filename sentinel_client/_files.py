"""Files the SDK reads and writes: artifact names made into paths, downloads written whole or not at all.

An artifact name comes from the API and is checked (`<attempt>/<file>`) before it becomes a path,
so nothing is ever written outside the directory asked for. A download goes to a temporary name
beside its destination and is renamed into place once it has the size the API announced: an
interrupted download never leaves a file that looks whole. Nothing here talks to the network.
"""

from __future__ import annotations

import errno
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, TypeVar

from sentinel_client.errors import InvalidArgumentError, UnavailableError

T = TypeVar("T")


def artifact_path(directory: str | os.PathLike[str], name: str) -> Path:
    """`<directory>/<attempt>/<file>` for the artifact `name` ("<attempt>/<file>").

    Raises:
        InvalidArgumentError: `name` is anything else (`..`, a leading `/`, more segments, a hidden
            or empty file name, control characters, an attempt that is not a positive integer).
    """
    attempt, _, file = name.partition("/")
    problem = ""
    if not attempt.isdecimal() or not attempt.isascii() or attempt.startswith("0"):
        problem = "must start with the attempt, a positive integer"
    elif not file or "/" in file or "\\" in file:
        problem = "must be <attempt>/<file>, e.g. 1/trace.zip"
    elif file.startswith(".") or any(ord(c) < 0x20 or ord(c) == 0x7F for c in file):
        problem = "must name a plain file"
    if problem:
        raise InvalidArgumentError.of("name", f"{problem}, got {name!r}")
    return Path(directory) / attempt / file


class PartialFile:
    """The file a download is written to: a hidden `.part` name beside its destination until it is complete.

    The destination is `dest`, or, when `dest` is a directory, the artifact's file name in it (as
    `cp` puts a file into a directory). A local failure is the OSError it is, naming the
    destination, never the `.part` name (the caller did not choose it and will not find it).
    Blocking calls throughout; the async client runs each in a thread.
    """

    def __init__(self, dest: str | os.PathLike[str], name: str) -> None:
        self.dest = Path(dest)  # settled by the first start(): a directory's file
        self.name = name  # the artifact's, for messages
        self._part: Path | None = None
        self._file: BinaryIO | None = None
        self.expected = -1
        self.written = 0

    def start(self) -> None:
        """Open (or empty again, for a retried download) the temporary file.

        Raises:
            InvalidArgumentError: `dest` is a directory and `name` no artifact name (`1/trace.zip`).
            OSError: the file cannot be made (a read-only directory; a file where a directory must be).
        """
        if self._file is None:
            if self.dest.is_dir():
                self.dest = self.dest / artifact_path(self.dest, self.name).name
            self._part = self.dest.with_name(f".{self.dest.name}.{uuid.uuid4().hex[:8]}.part")
            try:
                self.dest.parent.mkdir(parents=True, exist_ok=True)
            except FileExistsError as exc:  # a file where a directory must be: "File exists" would puzzle
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), exc.filename) from exc
            self._file = self._opened(lambda part: part.open("wb"))
        self._file.seek(0)
        self._file.truncate()
        self.expected, self.written = -1, 0

    def write(self, data: bytes, size_bytes: int) -> None:
        """Append one chunk; the first chunk's `size_bytes` is the whole artifact's size."""
        assert self._file is not None, "start() first"
        if self.expected < 0:
            self.expected = size_bytes
        self._file.write(data)
        self.written += len(data)

    def commit(self) -> Path:
        """Rename the complete file into place; returns its path.

        Raises:
            UnavailableError: the stream ended before the announced size (a retry may succeed).
            OSError: the file cannot be put in place (naming the destination).
        """
        assert self._file is not None, "start() first"
        if self.written != self.expected:
            raise UnavailableError(
                f"the download of {self.name} ended after {self.written} of {self.expected} bytes; try again"
            )
        self._file.close()
        self._opened(lambda part: os.replace(part, self.dest))
        return self.dest

    def discard(self) -> None:
        """Close and remove the temporary file (nothing left once the download is over)."""
        if self._file is not None and self._part is not None:  # nothing to remove unless it was made
            self._file.close()
            self._part.unlink(missing_ok=True)

    def _opened(self, act: Callable[[Path], T]) -> T:
        """`act(part)`, an OSError naming the `.part` file raised again naming the destination."""
        assert self._part is not None, "start() first"
        try:
            return act(self._part)
        except OSError as exc:
            if not isinstance(exc.filename, str | os.PathLike) or os.fspath(exc.filename) != os.fspath(self._part):
                raise
            raise type(exc)(exc.errno, exc.strerror, str(self.dest)) from exc
