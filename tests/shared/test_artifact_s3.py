"""What only the S3 backend does, against a real S3-protocol server (moto, signatures checked):
refusing wrong credentials without leaking them, failing fast when the store is unreachable or
silent, paging through more than one listing page, and streaming a large object in bounded memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from shared.artifact_s3 import S3ArtifactStore
from shared.artifact_store import CHUNK_SIZE, ArtifactStore, open_store
from shared.errors import ArtifactStoreUnavailable, UnavailableError
from shared.settings import ArtifactSettings
from tests.moto_s3 import MotoS3
from tests.support import closed_port, free_port

ROOT = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024


def chain_text(exc: BaseException) -> str:
    """The message of `exc` and of every exception it was raised from or during."""
    seen: list[str] = []
    current: BaseException | None = exc
    while current is not None and len(seen) < 10:
        seen.append(f"{type(current).__name__}: {current}")
        current = current.__cause__ or current.__context__
    return "\n".join(seen)


async def refusals(store: ArtifactStore) -> list[ArtifactStoreUnavailable]:
    """Every operation, each expected to fail with ArtifactStoreUnavailable; returns the errors."""
    errors: list[ArtifactStoreUnavailable] = []
    operations: dict[str, Callable[[], Awaitable[object]]] = {
        "check": store.check,
        "put": lambda: store.put_bytes("job1/1/a.txt", b"x", content_type="text/plain"),
        "list": lambda: store.list("job1"),
        "top_level": store.top_level,
        "delete": lambda: store.delete_prefix("job1"),
    }
    for name, operation in operations.items():
        with pytest.raises(ArtifactStoreUnavailable) as caught:
            await asyncio.wait_for(operation(), timeout=30)
        errors.append(caught.value)
        assert isinstance(caught.value, UnavailableError), name
    return errors


@pytest.fixture
def bucket(moto_s3: MotoS3) -> str:
    return moto_s3.new_bucket()


async def test_wrong_secret_is_refused_and_never_shown(moto_s3: MotoS3, bucket: str) -> None:
    wrong = "WrongSecretKey/ThatMustNeverBeShown+0123456789"
    env = moto_s3.env(f"s3://{bucket}/p", AWS_SECRET_ACCESS_KEY=wrong)
    settings = ArtifactSettings.from_env(env)
    assert wrong not in repr(settings)
    for error in await refusals(open_store(settings)):
        assert "refused Sentinel's credentials" in str(error)
        assert "SignatureDoesNotMatch" in str(error)
        assert wrong not in chain_text(error)
        assert moto_s3.secret_access_key not in chain_text(error)


async def test_an_unknown_access_key_or_a_bad_session_token_is_refused(moto_s3: MotoS3, bucket: str) -> None:
    unknown = open_store(
        ArtifactSettings.from_env(moto_s3.env(f"s3://{bucket}", AWS_ACCESS_KEY_ID="AKIANOSUCHKEY0000000"))
    )
    for error in await refusals(unknown):
        assert "InvalidAccessKeyId" in str(error) and "AWS_ACCESS_KEY_ID" in str(error)
    token = "BogusSessionToken-secret-too"
    with_token = open_store(ArtifactSettings.from_env(moto_s3.env(f"s3://{bucket}", AWS_SESSION_TOKEN=token)))
    for error in await refusals(with_token):
        assert "refused Sentinel's credentials" in str(error)
        assert token not in chain_text(error)


async def test_a_missing_bucket_is_named(moto_s3: MotoS3) -> None:
    store = open_store(ArtifactSettings.from_env(moto_s3.env("s3://no-such-bucket/p")))
    with pytest.raises(ArtifactStoreUnavailable, match="bucket 'no-such-bucket' does not exist"):
        await store.check()
    with pytest.raises(ArtifactStoreUnavailable, match="does not exist"):
        await store.list()


async def test_an_unreachable_endpoint_fails_within_seconds() -> None:
    env = {
        "SENTINEL_ARTIFACTS_URL": "s3://artifacts/p",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens there
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "unreachable-secret",
    }
    store = open_store(ArtifactSettings.from_env(env))
    started = time.monotonic()
    with pytest.raises(ArtifactStoreUnavailable, match="cannot be reached") as caught:
        await asyncio.wait_for(store.check(), timeout=30)
    assert time.monotonic() - started < 20  # three quick retries, not minutes of them
    assert "unreachable-secret" not in chain_text(caught.value)
    with pytest.raises(ArtifactStoreUnavailable):
        await asyncio.wait_for(store.stat("job1/1/a.png"), timeout=30)


async def test_empty_aws_variables_in_the_environment_are_unset_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    """docker compose passes `AWS_ENDPOINT_URL: ${AWS_ENDPOINT_URL:-}`: "" on real AWS. The S3 client
    reads the environment itself and panicked on an empty endpoint (a BaseException: the service died)."""
    closed = f"http://127.0.0.1:{closed_port()}"  # the request goes to a proxy that is not there: nothing leaves
    for name, value in {
        "AWS_ENDPOINT_URL": "",
        "AWS_SESSION_TOKEN": " ",
        "HTTPS_PROXY": closed,
        "HTTP_PROXY": closed,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("NO_PROXY", "no_proxy"):  # every request through the dead proxy: none leaves the machine
        monkeypatch.delenv(name, raising=False)
    env = {"SENTINEL_ARTIFACTS_URL": "s3://artifacts/p", "AWS_REGION": "eu-west-1"}
    env |= {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "empty-env-secret", "AWS_ENDPOINT_URL": ""}
    store = S3ArtifactStore(ArtifactSettings.from_env(env), request_timeout_s=2, max_retries=0, retry_timeout_s=1)
    with pytest.raises(ArtifactStoreUnavailable, match="cannot be reached"):
        await asyncio.wait_for(store.list("job1"), timeout=30)
    assert "AWS_ENDPOINT_URL" not in os.environ and "AWS_SESSION_TOKEN" not in os.environ


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A port that accepts connections (the kernel completes them) and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def silent_store(endpoint: str) -> S3ArtifactStore:
    """A store at `endpoint`, which never answers, with bounds of half a second."""
    settings = ArtifactSettings.from_env(
        {"SENTINEL_ARTIFACTS_URL": "s3://artifacts", "AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1"}
        | {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "silent-secret"}
    )
    return S3ArtifactStore(settings, request_timeout_s=0.5, max_retries=1, retry_timeout_s=2)


async def test_a_silent_endpoint_times_out_within_the_bounds(silent_endpoint: str) -> None:
    store = silent_store(silent_endpoint)
    started = time.monotonic()
    with pytest.raises(ArtifactStoreUnavailable):
        await asyncio.wait_for(store.stat("job1/1/a.png"), timeout=30)
    assert time.monotonic() - started < 20  # the configured bounds, not the library's minutes


async def test_a_silent_endpoint_fails_a_download_within_a_requests_bounds(silent_endpoint: str) -> None:
    """A download may take `transfer_timeout_s` (15 min) for its body, never for the start of the answer."""
    store = silent_store(silent_endpoint)
    started = time.monotonic()
    with pytest.raises(ArtifactStoreUnavailable, match=r"did not answer within 0\.5 s"):
        async with contextlib.aclosing(store.read("job1/1/a.png")) as chunks:
            await asyncio.wait_for(anext(chunks), timeout=30)
    assert time.monotonic() - started < 20
    # The defaults answer before a client's own 30 s deadline (the SDK's and the CLI's).
    assert inspect.signature(S3ArtifactStore).parameters["request_timeout_s"].default <= 10


async def test_listing_and_deleting_page_past_1000_objects(moto_s3: MotoS3, bucket: str) -> None:
    store = open_store(ArtifactSettings.from_env(moto_s3.env(f"s3://{bucket}/many")))
    keys = [f"job1/1/shot-{i:04d}.png" for i in range(1005)]
    semaphore = asyncio.Semaphore(16)

    async def put(key: str) -> None:
        async with semaphore:
            await store.put_bytes(key, b"png", content_type="image/png")

    await asyncio.wait_for(asyncio.gather(*(put(k) for k in keys), put("job2/1/other.png")), timeout=90)
    assert [i.key for i in await store.list("job1")] == keys  # two ListObjectsV2 pages
    assert await store.delete_prefix("job1") == len(keys)  # two DeleteObjects batches
    assert [i.key for i in await store.list()] == ["job2/1/other.png"]


@pytest.fixture
def video(tmp_path: Path) -> tuple[Path, str]:
    """A 64 MiB file of random bytes, and its SHA-256."""
    path = tmp_path / "video.webm"
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for _ in range(64):
            block = os.urandom(MiB)
            digest.update(block)
            out.write(block)
    return path, digest.hexdigest()


async def test_a_64_mib_file_is_uploaded_in_parts_and_read_back_in_bounded_memory(
    moto_s3: MotoS3, bucket: str, video: tuple[Path, str]
) -> None:
    """64 MiB: big enough that what an upload holds (parts in flight and being read, and the
    allocator's per-thread arenas: about 20-26 MiB measured, whatever the file's size) stands
    clearly apart from the whole file."""
    source, sha256 = video
    env = moto_s3.env(f"s3://{bucket}/big")
    uploaded = await probe("upload", "job1/1/video.webm", env, str(source))
    assert int(uploaded["rss_growth"]) < 40 * MiB, uploaded
    info = await open_store(ArtifactSettings.from_env(env)).stat("job1/1/video.webm")
    assert (info.size, info.content_type) == (64 * MiB, "video/webm")  # a multipart upload keeps its type

    streamed = await probe("stream", "job1/1/video.webm", env)
    assert (streamed["total"], streamed["sha256"]) == (64 * MiB, sha256)
    assert streamed["chunks"] == 64 and streamed["largest_chunk"] == CHUNK_SIZE
    # Holding the object costs 64 MiB, which the probe sees (so the bounds below mean something);
    # streaming holds a few chunks' worth: the pieces being joined, the new chunk and the caller's
    # last one (measured: about 4 MiB of Python memory, 6 MiB resident; on a loaded machine the
    # library's threads read ahead of a slow consumer: 10.2 MiB resident seen, so the resident bound
    # is a quarter of the object, still far below holding it).
    held = await probe("hold", "job1/1/video.webm", env)
    assert int(held["rss_growth"]) > 60 * MiB and int(held["python_peak"]) > 62 * MiB, held
    assert int(streamed["python_peak"]) < 6 * MiB, streamed
    assert int(streamed["rss_growth"]) < 16 * MiB, streamed


async def probe(mode: str, key: str, env: dict[str, str], *args: str) -> dict[str, int | str]:
    """Run tests/shared/artifact_memory_probe.py in a fresh process; its JSON report."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.shared.artifact_memory_probe",
        mode,
        key,
        *args,
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=90)
    assert process.returncode == 0, err.decode()
    report: dict[str, int | str] = json.loads(out)
    return report
