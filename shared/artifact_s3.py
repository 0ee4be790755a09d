"""The artifact store in an S3-compatible bucket (`s3://bucket/prefix`): AWS S3, MinIO, R2, GCS.

Built on obstore (Rust's `object_store`): it signs requests, streams downloads, uploads large
files in parts and deletes in batches of 1000, so none of that is written here. Requests use
path-style addressing (what MinIO and most S3-compatible stores want; the library's own
AWS_VIRTUAL_HOSTED_STYLE_REQUEST switches it), and a plain `http://` endpoint is allowed exactly
when AWS_ENDPOINT_URL names one.

Timeouts and retries are bounded so that an unreachable store fails within seconds, not minutes:
metadata calls (stat, list, delete) and transfers (get, put) use separate clients, since a
transfer of a large artifact to a slow reader may rightly take far longer than a HEAD.

Every library error becomes `NotFoundError` (a missing key) or `ArtifactStoreUnavailable`
with a short message; the secret key and session token are scrubbed from any text kept.

The library runs requests on its own threads and hands results to asyncio; a thread still doing
so when the interpreter finalizes aborts the process. A service's shutdown leaves its last store
call far behind; a short script should not exit within moments of one (or leave by `os._exit`).
"""

from __future__ import annotations

import asyncio
import datetime
import os
import re
from collections.abc import AsyncGenerator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import obstore
from obstore.exceptions import BaseError, PermissionDeniedError, UnauthenticatedError
from obstore.store import S3Store

from shared.artifact_store import DEFAULT_CONTENT_TYPE, ArtifactInfo, ArtifactStore
from shared.errors import ArtifactStoreUnavailable, NotFoundError, SentinelError
from shared.settings import ArtifactSettings

if TYPE_CHECKING:
    from obstore.store import ClientConfig, RetryConfig, S3Config

#: Multipart upload parts (S3's minimum is 5 MiB) and how many are in flight at once: an upload
#: holds a few parts in memory (those in flight and the one being read), never the whole file.
PART_SIZE = 5 * 1024 * 1024
UPLOAD_CONCURRENCY = 2
#: Keys per DeleteObjects call (S3's limit).
DELETE_BATCH = 1000
#: Error codes in an S3 reply that mean the credentials, not the network, are the problem.
_CREDENTIAL_CODES = (
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "TokenRefreshRequired",
    "InvalidClientTokenId",
)


def _unset_empty_aws_variables() -> None:
    """Remove the process's empty AWS_* variables. Sentinel's settings read an empty one as unset
    (docker compose passes `AWS_ENDPOINT_URL: ${AWS_ENDPOINT_URL:-}` as ""), but the S3 client reads
    the environment too, underneath the configuration it is given, and takes "" for a value: an
    empty endpoint made it panic at the first request, killing the service; empty keys would stand
    in for the instance's own credentials."""
    for name in [n for n, value in os.environ.items() if n.startswith("AWS_") and not value.strip()]:
        del os.environ[name]


class S3ArtifactStore(ArtifactStore):
    def __init__(
        self,
        settings: ArtifactSettings,
        *,
        connect_timeout_s: float = 5.0,
        request_timeout_s: float = 10.0,
        transfer_timeout_s: float = 900.0,
        max_retries: int = 3,
        retry_timeout_s: float = 5.0,
    ) -> None:
        """Args:
        settings: an `s3://` URL and the AWS settings read with it.
        connect_timeout_s: to open a connection.
        request_timeout_s: a whole metadata request (stat, list, delete), and a download's wait for
            the start of its answer. With `retry_timeout_s` it keeps a store that takes connections
            and never answers to an `UNAVAILABLE` naming it within ~10-15 s, before a client's own
            30 s deadline, so the caller learns which store failed.
        transfer_timeout_s: a whole upload part or download, body included.
        max_retries: retries of a failed request (connection errors, 5xx, timeouts).
        retry_timeout_s: no retry starts later than this after the first attempt.
        """
        super().__init__(max_artifact_bytes=settings.max_artifact_bytes)
        _unset_empty_aws_variables()
        where = settings.location
        self.bucket = where.bucket
        self.prefix = where.prefix
        self.endpoint_url = settings.endpoint_url
        self._secrets = tuple(s for s in (settings.secret_access_key, settings.session_token) if s)
        config: S3Config = {"region": settings.region or "us-east-1"}
        if settings.endpoint_url:
            config["endpoint"] = settings.endpoint_url
        if settings.access_key_id:
            config["access_key_id"] = settings.access_key_id
            config["secret_access_key"] = settings.secret_access_key
        if settings.session_token:
            config["session_token"] = settings.session_token
        retry: RetryConfig = {
            "max_retries": max_retries,
            "retry_timeout": datetime.timedelta(seconds=retry_timeout_s),
            "backoff": {
                "init_backoff": datetime.timedelta(milliseconds=100),
                "max_backoff": datetime.timedelta(seconds=2),
                "base": 2,
            },
        }

        def client(timeout_s: float) -> S3Store:
            options: ClientConfig = {
                "allow_http": settings.endpoint_url.startswith("http://"),
                "connect_timeout": datetime.timedelta(seconds=connect_timeout_s),
                "timeout": datetime.timedelta(seconds=timeout_s),
            }
            return S3Store(
                self.bucket, prefix=self.prefix or None, config=config, client_options=options, retry_config=retry
            )

        self._request_timeout_s = request_timeout_s
        try:
            self._meta = client(request_timeout_s)
            self._data = client(transfer_timeout_s)
        except (BaseError, ValueError) as exc:
            raise self._error(exc, missing=None) from None

    @property
    def location(self) -> str:
        where = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        return f"{where} at {self.endpoint_url}" if self.endpoint_url else where

    # --- writing -------------------------------------------------------------------------------

    async def _put(self, key: str, body: Path | bytes, content_type: str) -> None:
        try:
            await obstore.put_async(
                self._data,
                key,
                body,
                attributes={"Content-Type": content_type},
                chunk_size=PART_SIZE,
                max_concurrency=UPLOAD_CONCURRENCY,
            )
        except (BaseError, OSError) as exc:
            raise self._error(exc, missing=None) from exc

    # --- reading -------------------------------------------------------------------------------

    async def _stat(self, key: str) -> ArtifactInfo:
        try:
            result = await obstore.get_async(self._meta, key, options={"head": True})
        except (BaseError, OSError) as exc:
            raise self._error(exc, missing=key) from exc
        meta = result.meta
        content_type = str(result.attributes.get("Content-Type") or DEFAULT_CONTENT_TYPE)
        return ArtifactInfo(key=key, size=meta["size"], last_modified=meta["last_modified"], content_type=content_type)

    async def _read(self, key: str, chunk_size: int) -> AsyncGenerator[bytes, None]:
        try:
            # The body may take `transfer_timeout_s`; the start of the answer no longer than a request.
            result = await asyncio.wait_for(obstore.get_async(self._data, key), self._request_timeout_s)
        except TimeoutError:
            raise ArtifactStoreUnavailable(
                f"artifact store {self.location} did not answer within {self._request_timeout_s:g} s"
            ) from None
        except (BaseError, OSError) as exc:
            raise self._error(exc, missing=key) from exc
        # The library's pieces are network-sized (at least min_chunk_size); they are cut and joined
        # into chunks of exactly chunk_size (the last may be shorter) with one copy per chunk, and no
        # more than one chunk's worth of pieces is held at a time.
        pending: list[memoryview] = []
        size = 0
        try:
            async for piece in result.stream(min_chunk_size=min(chunk_size, 64 * 1024)):
                view = memoryview(piece)
                while view:
                    take = min(len(view), chunk_size - size)
                    pending.append(view[:take])
                    size += take
                    view = view[take:]
                    if size == chunk_size:
                        chunk = b"".join(pending)
                        pending, size = [], 0
                        yield chunk
        except (BaseError, OSError) as exc:
            raise self._error(exc, missing=key) from exc
        if pending:
            yield b"".join(pending)

    async def _list(self, prefix: str) -> Sequence[ArtifactInfo]:
        infos: list[ArtifactInfo] = []
        try:
            async for batch in obstore.list(self._meta, prefix or None, chunk_size=DELETE_BATCH):
                infos.extend(
                    ArtifactInfo(key=m["path"], size=m["size"], last_modified=m["last_modified"]) for m in batch
                )
        except (BaseError, OSError) as exc:
            raise self._error(exc, missing=None) from exc
        return sorted(infos, key=lambda i: i.key)

    async def _top_level(self) -> Sequence[str]:
        try:
            # One delimited listing; the library follows its continuation tokens to the last page.
            result = await obstore.list_with_delimiter_async(self._meta)
        except (BaseError, OSError) as exc:
            raise self._error(exc, missing=None) from exc
        return sorted({p.rstrip("/") for p in result["common_prefixes"]})

    # --- deleting ------------------------------------------------------------------------------

    async def _delete_prefix(self, prefix: str) -> int:
        deleted = 0
        try:
            # Page by page: S3 continues a listing after the last key it returned, so deleting the
            # page just read does not disturb the next one.
            async for batch in obstore.list(self._meta, prefix, chunk_size=DELETE_BATCH):
                paths = [m["path"] for m in batch]
                if paths:
                    await obstore.delete_async(self._meta, paths)
                    deleted += len(paths)
        except (BaseError, OSError) as exc:
            raise self._error(exc, missing=None) from exc
        return deleted

    async def _check(self) -> None:
        try:
            await anext(aiter(obstore.list(self._meta, None, chunk_size=1)), None)
        except (BaseError, OSError) as exc:
            raise self._error(exc, missing=None) from exc

    # --- errors --------------------------------------------------------------------------------

    def _error(self, exc: Exception, *, missing: str | None) -> SentinelError:
        """The Sentinel error for a library error; `missing`: the key a 404 means is absent."""
        if isinstance(exc, FileNotFoundError) and missing is not None:
            return NotFoundError(f"no artifact {missing!r}")
        text = self._scrub(_summary(exc))
        if isinstance(exc, PermissionDeniedError | UnauthenticatedError) or any(c in text for c in _CREDENTIAL_CODES):
            return ArtifactStoreUnavailable(
                f"artifact store {self.location} refused Sentinel's credentials (check AWS_ACCESS_KEY_ID, "
                f"AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN and the bucket's policy): {text}"
            )
        if "NoSuchBucket" in text:
            return ArtifactStoreUnavailable(f"artifact store {self.location}: bucket {self.bucket!r} does not exist")
        return ArtifactStoreUnavailable(f"artifact store {self.location} failed or cannot be reached: {text}")

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def _summary(exc: Exception) -> str:
    """One line from the library's error: what failed, and the S3 error code and message if any.

    The library appends the reply's XML body and a multi-line debug dump; both are cut here.
    """
    text = str(exc).split("Debug source:")[0]
    head = " ".join(text.split("<?xml")[0].split()).rstrip(" :")
    code = re.search(r"<Code>(.*?)</Code>", text)
    if code:
        message = re.search(r"<Message>(.*?)</Message>", text)
        head += f" [{code.group(1)}{': ' + message.group(1) if message else ''}]"
    return head[:600] or type(exc).__name__
