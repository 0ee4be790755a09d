"""What only the directory backend does: files written before it (or beside it), its dot-files,
staying inside its root, and tidying directories an object store would not have."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from shared.artifact_file import FileArtifactStore
from shared.artifact_store import open_store
from shared.errors import ArtifactStoreUnavailable, NotFoundError
from shared.settings import ArtifactSettings


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "artifacts"


@pytest.fixture
def store(root: Path) -> FileArtifactStore:
    store = open_store(ArtifactSettings.from_env({"SENTINEL_ARTIFACTS_DIR": str(root)}))
    assert isinstance(store, FileArtifactStore) and store.root == root
    return store


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


async def read(store: FileArtifactStore, key: str) -> bytes:
    async with contextlib.aclosing(store.read(key)) as chunks:
        return b"".join([c async for c in chunks])


async def test_files_the_executor_wrote_directly_are_served_with_a_guessed_type(
    store: FileArtifactStore, root: Path
) -> None:
    (root / "job1" / "1").mkdir(parents=True)
    (root / "job1" / "1" / "step-00-failure.png").write_bytes(b"png")
    (root / "job1" / "1" / "notes").write_bytes(b"?")
    assert [i.key for i in await store.list("job1")] == ["job1/1/notes", "job1/1/step-00-failure.png"]
    assert (await store.stat("job1/1/step-00-failure.png")).content_type == "image/png"
    assert (await store.stat("job1/1/notes")).content_type == "application/octet-stream"
    assert await read(store, "job1/1/step-00-failure.png") == b"png"


async def test_the_stored_type_wins_and_dot_files_are_never_listed(store: FileArtifactStore, root: Path) -> None:
    await store.put_bytes("job1/1/report.png", b"{}", content_type="application/json")
    assert (await store.stat("job1/1/report.png")).content_type == "application/json"
    (root / "job1" / "1" / ".tmp-leftover").write_bytes(b"half")  # an upload cut off by a crash
    assert names(root / "job1" / "1") == [
        ".report.png.content-type",
        ".tmp-leftover",
        "report.png",
    ]
    assert [i.key for i in await store.list()] == ["job1/1/report.png"]
    assert await store.delete_prefix("job1") == 1
    assert names(root) == []


async def test_delete_prefix_removes_parents_left_empty(store: FileArtifactStore, root: Path) -> None:
    await store.put_bytes("job1/1/a.png", b"a", content_type="image/png")
    await store.put_bytes("job2/1/a.png", b"a", content_type="image/png")
    await store.put_bytes("job2/2/a.png", b"a", content_type="image/png")
    assert await store.delete_prefix("job1/1") == 1
    assert await store.delete_prefix("job2/1") == 1
    assert names(root) == ["job2"]
    assert await store.top_level() == ["job2"]


@pytest.fixture
def outside(root: Path, tmp_path: Path) -> Path:
    """A file outside the root, and links to it inside: a directory link and a file link."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not an artifact")
    (root / "job2").mkdir(parents=True)
    (root / "job1").symlink_to(outside, target_is_directory=True)
    (root / "job2" / "link.txt").symlink_to(outside / "secret.txt")
    return outside / "secret.txt"


async def test_nothing_outside_the_root_is_reached_through_links(store: FileArtifactStore, outside: Path) -> None:
    assert await store.list() == []
    with pytest.raises(NotFoundError):
        await store.stat("job1/secret.txt")
    with pytest.raises(NotFoundError):
        await read(store, "job2/link.txt")
    assert await store.delete_prefix("job1") == 0
    assert names(outside.parent) == ["secret.txt"]


async def test_check_creates_the_root_and_refuses_an_unusable_one(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path / "a" / "b", max_artifact_bytes=100)
    await store.check()
    assert (tmp_path / "a" / "b").is_dir()
    (tmp_path / "file").write_text("a file where the directory should be")
    blocked = FileArtifactStore(tmp_path / "file" / "artifacts", max_artifact_bytes=100)
    with pytest.raises(ArtifactStoreUnavailable, match="cannot create the directory"):
        await blocked.check()
    with pytest.raises(ArtifactStoreUnavailable, match="cannot write"):
        await blocked.put_bytes("job1/1/a.png", b"x", content_type="image/png")


async def test_a_missing_local_file_is_the_callers_error_not_the_stores(
    store: FileArtifactStore, tmp_path: Path
) -> None:
    with pytest.raises(FileNotFoundError):
        await store.put_file("job1/1/a.png", tmp_path / "never-written.png", content_type="image/png")
    assert names(store.root) == []
