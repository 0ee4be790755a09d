"""The artifact store's contract, held by both backends: a directory and an S3 bucket (moto).

Every test here runs twice, through `open_store` with the settings a deployment would give it;
what only one backend does is tested in test_artifact_file.py and test_artifact_s3.py.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from dataclasses import replace
from pathlib import Path

import pytest

from shared.artifact_store import CHUNK_SIZE, ArtifactStore, open_store
from shared.errors import LimitError, NotFoundError, ValidationError
from shared.settings import ArtifactSettings
from tests.moto_s3 import MotoS3

MiB = 1024 * 1024


@pytest.fixture(params=["file", "s3"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactSettings:
    if request.param == "file":
        return ArtifactSettings.from_env({"SENTINEL_ARTIFACTS_URL": (tmp_path / "artifacts").as_uri()})
    moto: MotoS3 = request.getfixturevalue("moto_s3")
    # A prefix inside the bucket, so every key also goes through the prefix handling.
    return ArtifactSettings.from_env(moto.env(f"s3://{moto.new_bucket()}/sentinel/test"))


@pytest.fixture
async def store(settings: ArtifactSettings) -> ArtifactStore:
    store = open_store(settings)
    await store.check()
    assert await store.list() == []  # a fresh directory or bucket
    return store


async def read_all(store: ArtifactStore, key: str, **kwargs: int) -> list[bytes]:
    async with contextlib.aclosing(store.read(key, **kwargs)) as chunks:
        return [chunk async for chunk in chunks]


async def test_put_bytes_then_stat(store: ArtifactStore) -> None:
    before = datetime.datetime.now(datetime.UTC)
    await store.put_bytes("job1/1/log.txt", b"hello", content_type="text/plain")
    info = await store.stat("job1/1/log.txt")
    assert (info.key, info.size, info.content_type) == ("job1/1/log.txt", 5, "text/plain")
    assert info.last_modified.tzinfo is not None
    assert abs(info.last_modified - before) < datetime.timedelta(minutes=5)
    assert b"".join(await read_all(store, "job1/1/log.txt")) == b"hello"


async def test_a_multi_mib_file_arrives_in_chunks_of_at_most_1_mib_byte_identical(
    store: ArtifactStore, tmp_path: Path
) -> None:
    data = os.urandom(3 * MiB + 12345)
    source = tmp_path / "trace.zip"
    source.write_bytes(data)
    await store.put_file("job1/1/trace.zip", source, content_type="application/zip")

    info = await store.stat("job1/1/trace.zip")
    assert (info.size, info.content_type) == (len(data), "application/zip")
    chunks = await read_all(store, "job1/1/trace.zip")
    assert len(chunks) >= 4 and all(0 < len(c) <= CHUNK_SIZE for c in chunks)
    assert b"".join(chunks) == data
    small = await read_all(store, "job1/1/trace.zip", chunk_size=100_000)
    assert all(len(c) <= 100_000 for c in small) and b"".join(small) == data


async def test_a_put_replaces_the_object_and_its_type(store: ArtifactStore) -> None:
    await store.put_bytes("job1/1/x", b"first", content_type="text/plain")
    await store.put_bytes("job1/1/x", b"second!", content_type="application/json")
    info = await store.stat("job1/1/x")
    assert (info.size, info.content_type) == (7, "application/json")
    assert b"".join(await read_all(store, "job1/1/x")) == b"second!"


async def test_an_empty_object_and_an_unusual_name(store: ArtifactStore) -> None:
    await store.put_bytes("job1/1/empty", b"", content_type="")
    assert (await store.stat("job1/1/empty")).size == 0
    assert await read_all(store, "job1/1/empty") == []
    name = "job-é/1/shot #1 (100%) +a&b=c.png"
    await store.put_bytes(name, b"png", content_type="image/png")
    assert (await store.stat(name)).content_type == "image/png"
    assert [i.key for i in await store.list("job-é")] == [name]
    assert b"".join(await read_all(store, name)) == b"png"


async def test_list_is_by_whole_segments_sorted_without_content_types(store: ArtifactStore) -> None:
    for key in ("job1/2/b.png", "job1/1/a.png", "job10/1/c.png", "loose.txt"):
        await store.put_bytes(key, key.encode(), content_type="image/png")

    assert [i.key for i in await store.list("job1")] == ["job1/1/a.png", "job1/2/b.png"]
    assert [i.key for i in await store.list("job1/")] == ["job1/1/a.png", "job1/2/b.png"]
    assert [i.key for i in await store.list("job1/2")] == ["job1/2/b.png"]
    everything = await store.list()
    assert [i.key for i in everything] == ["job1/1/a.png", "job1/2/b.png", "job10/1/c.png", "loose.txt"]
    assert [i.size for i in everything] == [len(i.key) for i in everything]
    assert all(i.content_type is None and i.last_modified.tzinfo for i in everything)
    assert await store.list("job2") == []
    assert await store.list("job1/1/a.png") == []  # a prefix is a directory, not an object


async def test_top_level_names_the_jobs(store: ArtifactStore) -> None:
    assert await store.top_level() == []
    for key in ("job1/1/a.png", "job1/2/b.png", "job10/1/c.png", "loose.txt"):
        await store.put_bytes(key, b"x", content_type="image/png")
    assert await store.top_level() == ["job1", "job10"]


async def test_delete_prefix_removes_that_job_only_and_counts(store: ArtifactStore) -> None:
    for key in ("job1/1/a.png", "job1/2/b.png", "job10/1/c.png"):
        await store.put_bytes(key, b"x", content_type="image/png")

    assert await store.delete_prefix("job1") == 2
    assert [i.key for i in await store.list()] == ["job10/1/c.png"]
    assert await store.top_level() == ["job10"]
    assert await store.delete_prefix("job1") == 0
    assert await store.delete_prefix("job10/1/") == 1
    assert await store.list() == [] and await store.top_level() == []
    with pytest.raises(ValidationError) as refused:
        await store.delete_prefix("")
    assert refused.value.violations[0].field == "prefix"


async def test_a_missing_object_is_not_found(store: ArtifactStore) -> None:
    with pytest.raises(NotFoundError):
        await store.stat("job1/1/missing.png")
    with pytest.raises(NotFoundError):
        await read_all(store, "job1/1/missing.png")
    await store.put_bytes("job1/1/a.png", b"x", content_type="image/png")
    with pytest.raises(NotFoundError):
        await store.stat("job1/1")  # a "directory" is no object


BAD_KEYS = [
    ("", "must not be empty"),
    ("/job1/a.png", "leading '/'"),
    ("job1/../etc/passwd", "'..'"),
    ("..", "'..'"),
    ("job1\\a.png", "backslash"),
    ("job1/a\x00.png", "NUL"),
    ("job1/a\n.png", "control"),
    ("job1//a.png", "empty segment"),
    ("job1/a.png/", "empty segment"),
    ("job1/./a.png", "start with '.'"),
    ("job1/.hidden", "start with '.'"),
    ("job1/" + "a" * 201, "at most 200 bytes"),
    ("/".join(["abcdefgh"] * 120), "at most 1024 bytes"),
]


@pytest.mark.parametrize(("key", "problem"), BAD_KEYS)
async def test_a_bad_key_is_refused_before_the_store_is_touched(store: ArtifactStore, key: str, problem: str) -> None:
    for call in ("put_bytes", "stat", "read"):
        with pytest.raises(ValidationError, match=problem) as refused:
            if call == "put_bytes":
                await store.put_bytes(key, b"x", content_type="text/plain")
            elif call == "stat":
                await store.stat(key)
            else:
                await read_all(store, key)
        assert [v.field for v in refused.value.violations] == ["key"], call
    if key and not key.endswith("/"):  # "" is the whole store; a prefix may end in '/'
        with pytest.raises(ValidationError) as refused:
            await store.list(key)
        assert refused.value.violations[0].field == "prefix"
    assert await store.list() == []


async def test_an_artifact_over_the_cap_is_refused_and_not_stored(settings: ArtifactSettings, tmp_path: Path) -> None:
    store = open_store(replace(settings, max_artifact_bytes=10))
    await store.put_bytes("job1/1/ok", b"0123456789", content_type="text/plain")
    with pytest.raises(LimitError, match="SENTINEL_ARTIFACT_MAX_BYTES"):
        await store.put_bytes("job1/1/big", b"0123456789!", content_type="text/plain")
    source = tmp_path / "big.bin"
    source.write_bytes(b"x" * 11)
    with pytest.raises(LimitError):
        await store.put_file("job1/1/big", source, content_type="application/octet-stream")
    assert [i.key for i in await store.list()] == ["job1/1/ok"]


async def test_reading_can_stop_early(store: ArtifactStore) -> None:
    await store.put_bytes("job1/1/v.webm", os.urandom(3 * MiB), content_type="video/webm")
    chunks = store.read("job1/1/v.webm")
    async with contextlib.aclosing(chunks):
        first = await anext(chunks)
    assert len(first) == CHUNK_SIZE
    assert (await store.stat("job1/1/v.webm")).size == 3 * MiB  # nothing left locked or half-read
