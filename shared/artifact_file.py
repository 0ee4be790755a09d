"""The artifact store in a local directory (`file:///path`), the default.

An object is a file at `<root>/<key>`; its content type is kept in a dot-file beside it
(`.<name>.content-type`), since a file system has no place for one. Files written before this
store existed (or by anything else) have none: their type is guessed from the name. Writes go to
a dot-named temporary file first and are renamed into place, so a reader never sees half an
object. Dot-files are never listed, which is why keys may not have segments starting with '.'.

It never reads, lists or deletes outside its root: keys cannot climb out ('..' is refused), and
symbolic links are neither followed when listing nor read through when they lead outside.
Blocking file-system calls run in worker threads, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import mimetypes
import os
import shutil
import stat as stat_mode
import uuid
from collections.abc import AsyncGenerator, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from shared.artifact_store import DEFAULT_CONTENT_TYPE, ArtifactInfo, ArtifactStore
from shared.errors import ArtifactStoreUnavailable, NotFoundError

_TYPE_SUFFIX = ".content-type"


class FileArtifactStore(ArtifactStore):
    def __init__(self, root: Path, *, max_artifact_bytes: int) -> None:
        super().__init__(max_artifact_bytes=max_artifact_bytes)
        self.root = root.absolute()

    @property
    def location(self) -> str:
        return self.root.as_uri()

    # --- writing -------------------------------------------------------------------------------

    async def _put(self, key: str, body: Path | bytes, content_type: str) -> None:
        await asyncio.to_thread(self._write, key, content_type, body)

    def _write(self, key: str, content_type: str, body: Path | bytes) -> None:
        dest = self.root / key
        data = body if isinstance(body, bytes) else None
        with contextlib.ExitStack() as stack:
            # The source is opened before anything else: its OSError is the caller's, not the store's.
            src = stack.enter_context(body.open("rb")) if isinstance(body, Path) else None
            stack.enter_context(self._store_errors(f"write {key!r}"))
            dest.parent.mkdir(parents=True, exist_ok=True)
            self._replace(dest, src, data)
            self._replace(_type_file(dest), None, content_type.encode())

    @staticmethod
    def _replace(dest: Path, src: BinaryIO | None, data: bytes | None) -> None:
        tmp = dest.with_name(f".tmp-{uuid.uuid4().hex}")
        try:
            with tmp.open("wb") as out:
                if src is not None:
                    shutil.copyfileobj(src, out, 1024 * 1024)
                else:
                    out.write(data or b"")
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)

    # --- reading -------------------------------------------------------------------------------

    async def _stat(self, key: str) -> ArtifactInfo:
        return await asyncio.to_thread(self._stat_sync, key)

    def _stat_sync(self, key: str) -> ArtifactInfo:
        path = self._existing(key)
        st = path.stat()
        try:
            content_type = _type_file(path).read_text(encoding="utf-8").strip()
        except OSError:
            content_type = ""
        if not content_type:
            content_type = mimetypes.guess_type(path.name)[0] or DEFAULT_CONTENT_TYPE
        return ArtifactInfo(key=key, size=st.st_size, last_modified=_utc(st.st_mtime), content_type=content_type)

    async def _read(self, key: str, chunk_size: int) -> AsyncGenerator[bytes, None]:
        f = await asyncio.to_thread(self._open, key)
        try:
            while chunk := await asyncio.to_thread(f.read, chunk_size):
                yield chunk
        finally:
            f.close()

    def _open(self, key: str) -> BinaryIO:
        path = self._existing(key)
        try:
            return path.open("rb")
        except (FileNotFoundError, IsADirectoryError):
            raise NotFoundError(f"no artifact {key!r}") from None

    def _existing(self, key: str) -> Path:
        """The path of `key` if it is a regular file inside the root, else NotFoundError."""
        path = self.root / key
        try:
            st = path.stat()
            inside = path.resolve().is_relative_to(self.root.resolve())
        except OSError:
            raise NotFoundError(f"no artifact {key!r}") from None
        if not stat_mode.S_ISREG(st.st_mode) or not inside:
            raise NotFoundError(f"no artifact {key!r}")
        return path

    async def _list(self, prefix: str) -> Sequence[ArtifactInfo]:
        return await asyncio.to_thread(lambda: sorted(self._walk(prefix), key=lambda i: i.key))

    def _walk(self, prefix: str) -> Iterator[ArtifactInfo]:
        """Every object under `prefix` (a directory), without following links or showing dot-files."""
        base = self.root / prefix if prefix else self.root
        if base.is_symlink() or not base.is_dir():
            return
        pending = [base]
        while pending:
            directory = pending.pop()
            with self._store_errors(f"list {prefix!r}"), os.scandir(directory) as entries:
                for entry in entries:
                    if entry.name.startswith("."):
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(Path(entry.path))
                    elif entry.is_file(follow_symlinks=False):
                        st = entry.stat(follow_symlinks=False)
                        key = Path(entry.path).relative_to(self.root).as_posix()
                        yield ArtifactInfo(key=key, size=st.st_size, last_modified=_utc(st.st_mtime))

    async def _top_level(self) -> Sequence[str]:
        return await asyncio.to_thread(self._top_level_sync)

    def _top_level_sync(self) -> list[str]:
        if not self.root.is_dir():
            return []
        with self._store_errors("list the top level"), os.scandir(self.root) as entries:
            return sorted(e.name for e in entries if not e.name.startswith(".") and e.is_dir(follow_symlinks=False))

    # --- deleting ------------------------------------------------------------------------------

    async def _delete_prefix(self, prefix: str) -> int:
        return await asyncio.to_thread(self._delete_sync, prefix)

    def _delete_sync(self, prefix: str) -> int:
        base = self.root / prefix
        if base.is_symlink() or not base.is_dir():
            return 0
        count = sum(1 for _ in self._walk(prefix))
        with self._store_errors(f"delete {prefix!r}"):
            shutil.rmtree(base)
            # Empty parents go too, as they do not exist in an object store either.
            for parent in base.parents:
                if parent == self.root or not parent.is_relative_to(self.root):
                    break
                try:
                    parent.rmdir()
                except OSError:
                    break  # not empty
        return count

    async def _check(self) -> None:
        await asyncio.to_thread(self._check_sync)

    def _check_sync(self) -> None:
        with self._store_errors("create the directory"):
            self.root.mkdir(parents=True, exist_ok=True)
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise ArtifactStoreUnavailable(f"artifact directory {self.root} is not writable by this process")

    @contextlib.contextmanager
    def _store_errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            raise ArtifactStoreUnavailable(f"artifact directory {self.root}: cannot {action}: {exc}") from exc


def _type_file(path: Path) -> Path:
    return path.with_name(f".{path.name}{_TYPE_SUFFIX}")


def _utc(timestamp: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(timestamp, tz=datetime.UTC)
