"""The artifact store: where screenshots, traces and videos of jobs are kept, behind one interface.

Two backends share the `ArtifactStore` contract: a directory (`shared.artifact_file`) and any
S3-compatible object store (`shared.artifact_s3`); `open_store` picks one from `ArtifactSettings`.
Keys are relative, '/'-separated names such as `<job id>/<attempt>/<file>`; the first segment is
the job id, which is what `top_level` returns for the orphan sweep.

Every public method checks its key or prefix here, once, before a backend sees it, and refuses
an upload over the per-artifact cap; backends implement the `_`-prefixed methods. A prefix is
whole segments: `job1` covers `job1/…`, never `job10/…`. Nothing here holds an object's bytes
in memory beyond one chunk: uploads stream from the file, reads stream to the caller.
Backend failures become `NotFoundError` or `ArtifactStoreUnavailable`, never a library error,
and no message carries a secret.
"""

from __future__ import annotations

import abc
import asyncio
import datetime
import logging
import os
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from pathlib import Path

from shared.errors import ArtifactStoreUnavailable, ConfigError, FieldViolation, LimitError, ValidationError
from shared.settings import ArtifactSettings

log = logging.getLogger(__name__)

#: The largest chunk `read` yields by default: the size of one GetArtifact message.
CHUNK_SIZE = 1024 * 1024
#: S3 caps a key at 1024 bytes (UTF-8); file systems cap a name at 255, and the file store keeps
#: a dot-file named after each object beside it.
MAX_KEY_BYTES = 1024
MAX_SEGMENT_BYTES = 200
#: The content type of an object that was stored without one.
DEFAULT_CONTENT_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class ArtifactInfo:
    key: str
    size: int
    last_modified: datetime.datetime  # timezone-aware (UTC)
    #: Known from `stat`; None in `list` results, since object listings (S3's) do not carry it.
    content_type: str | None = None


def _key_problem(key: str) -> str | None:
    """What is wrong with `key` as a store key, or None when nothing is."""
    if not key:
        return "must not be empty"
    if key.startswith("/"):
        return "must be relative (no leading '/')"
    if "\\" in key:
        return "must not contain a backslash"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in key):
        return "must not contain NUL or other control characters"
    if len(key.encode()) > MAX_KEY_BYTES:
        return f"must be at most {MAX_KEY_BYTES} bytes"
    for segment in key.split("/"):
        if not segment:
            return "must not contain an empty segment ('//' or a trailing '/')"
        if segment == "..":
            return "must not contain a '..' segment"
        if segment.startswith("."):
            # '.' and hidden names: the file store keeps its own bookkeeping in dot-files.
            return "segments must not start with '.'"
        if len(segment.encode()) > MAX_SEGMENT_BYTES:
            return f"segments must be at most {MAX_SEGMENT_BYTES} bytes"
    return None


def check_key(key: str, *, field: str = "key") -> str:
    """Return `key` if it is a valid store key, else raise `ValidationError` naming `field`."""
    problem = _key_problem(key)
    if problem:
        raise ValidationError([FieldViolation(field, f"{problem}, got {key!r}")])
    return key


def check_prefix(prefix: str, *, field: str = "prefix", allow_all: bool = True) -> str:
    """A prefix is a key without its trailing '/' ("" = everything, when `allow_all`)."""
    trimmed = prefix[:-1] if prefix.endswith("/") and prefix != "/" else prefix
    if not trimmed and allow_all:
        return ""
    return check_key(trimmed, field=field)


class ArtifactStore(abc.ABC):
    """Stores artifacts by key. Open one with `open_store`; it is safe to share between tasks."""

    def __init__(self, *, max_artifact_bytes: int) -> None:
        self.max_artifact_bytes = max_artifact_bytes

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """Where this store keeps its objects, for messages (never with a secret)."""

    async def put_file(self, key: str, path: str | os.PathLike[str], *, content_type: str) -> None:
        """Upload the local file at `path` under `key`, streamed (multipart for large files).

        Raises:
            ValidationError: a bad key.
            LimitError: the file is larger than the per-artifact cap.
            OSError: the local file cannot be read.
            ArtifactStoreUnavailable: the store cannot be reached or refuses the credentials.
        """
        check_key(key)
        size = await asyncio.to_thread(os.path.getsize, path)
        self._check_size(key, size)
        await self._put(key, Path(path), content_type or DEFAULT_CONTENT_TYPE)

    async def put_bytes(self, key: str, data: bytes, *, content_type: str) -> None:
        """Store `data` under `key` (replacing what was there). Raises as `put_file` does."""
        check_key(key)
        self._check_size(key, len(data))
        await self._put(key, data, content_type or DEFAULT_CONTENT_TYPE)

    async def stat(self, key: str) -> ArtifactInfo:
        """The object's size, content type and time. Raises `NotFoundError` when there is none."""
        return await self._stat(check_key(key))

    async def list(self, prefix: str = "") -> Sequence[ArtifactInfo]:
        """Every object under `prefix` ("" = the whole store), sorted by key; `content_type` is None."""
        return await self._list(check_prefix(prefix))

    def read(self, key: str, *, chunk_size: int = CHUNK_SIZE) -> AsyncGenerator[bytes, None]:
        """Stream the object in chunks of at most `chunk_size` bytes (the last may be shorter).

        The key is checked at once; `NotFoundError` comes from the first step of the iteration.
        Close the iterator (`contextlib.aclosing`) when stopping early, to free its connection.
        """
        check_key(key)
        if chunk_size < 1:
            raise ValidationError([FieldViolation("chunk_size", f"must be at least 1, got {chunk_size}")])
        return self._read(key, chunk_size)

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object under `prefix` (never ""); returns how many were deleted."""
        return await self._delete_prefix(check_prefix(prefix, allow_all=False))

    async def top_level(self) -> Sequence[str]:
        """The distinct first segments (job ids) of keys that have more than one segment, sorted."""
        return await self._top_level()

    async def check(self) -> None:
        """Prove the store is usable: reachable, credentials accepted, bucket or directory present.

        Raises:
            ArtifactStoreUnavailable: with what is wrong, for a service to report at start.
        """
        await self._check()

    def _check_size(self, key: str, size: int) -> None:
        if size > self.max_artifact_bytes:
            raise LimitError(
                f"artifact {key!r} is {size} bytes, over the {self.max_artifact_bytes}-byte cap "
                "(SENTINEL_ARTIFACT_MAX_BYTES)"
            )

    @abc.abstractmethod
    async def _put(self, key: str, body: Path | bytes, content_type: str) -> None:
        """Store `body` (a local file, streamed; or bytes) under the checked `key`."""

    @abc.abstractmethod
    async def _stat(self, key: str) -> ArtifactInfo: ...

    @abc.abstractmethod
    async def _list(self, prefix: str) -> Sequence[ArtifactInfo]: ...

    @abc.abstractmethod
    def _read(self, key: str, chunk_size: int) -> AsyncGenerator[bytes, None]: ...

    @abc.abstractmethod
    async def _delete_prefix(self, prefix: str) -> int: ...

    @abc.abstractmethod
    async def _top_level(self) -> Sequence[str]: ...

    @abc.abstractmethod
    async def _check(self) -> None: ...


def open_store(settings: ArtifactSettings) -> ArtifactStore:
    """The store `settings.url` names. Opens no connection: call `check()` to prove it works.

    Raises:
        ConfigError: the URL is malformed (only possible for settings not built by `from_env`).
    """
    location = settings.location
    # Imported here: the file store needs no S3 library loaded, and the backends import this module.
    if location.scheme == "file":
        from shared.artifact_file import FileArtifactStore

        return FileArtifactStore(Path(location.path), max_artifact_bytes=settings.max_artifact_bytes)
    if location.scheme == "s3":
        from shared.artifact_s3 import S3ArtifactStore

        return S3ArtifactStore(settings)
    raise ConfigError(f"no artifact store for {settings.url!r}")  # artifact_location refuses it first


#: How long a service's start waits for the store to prove it works before going on without that proof.
STORE_CHECK_TIMEOUT_S = 10.0


async def open_checked_store(settings: ArtifactSettings, *, timeout_s: float = STORE_CHECK_TIMEOUT_S) -> ArtifactStore:
    """`open_store`, proved once at a service's start.

    A store that cannot be reached yet is logged, not fatal, and kept (it may answer later): the
    API serves while object storage is down (its artifact calls answer UNAVAILABLE), executors run
    jobs (each result notes what was not kept).
    """
    store = open_store(settings)
    try:
        await asyncio.wait_for(store.check(), timeout=timeout_s)
    except TimeoutError:
        log.warning("artifact store %s did not answer within %.0f s; using it anyway", store.location, timeout_s)
    except ArtifactStoreUnavailable as exc:
        log.warning("%s; artifacts cannot be kept or served until it answers", exc)
    else:
        log.info("artifacts are kept in %s", store.location)
    return store
