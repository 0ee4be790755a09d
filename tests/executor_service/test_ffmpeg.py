"""Where Playwright finds ffmpeg for videos: its own download, else the system's, else a reason."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from executor_service.ffmpeg import _revision, video_support


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Playwright browsers directory: no ffmpeg of Playwright's own."""
    monkeypatch.setenv("PLAYWRIGHT_BROWSERS_PATH", str(tmp_path / "registry"))
    return tmp_path / "registry"


def test_without_any_ffmpeg_videos_are_refused_with_the_reason(registry: Path) -> None:
    assert video_support("") == "no ffmpeg on this executor (install ffmpeg, or set SENTINEL_FFMPEG)"
    assert video_support(str(registry / "missing")) is not None
    assert os.environ["PLAYWRIGHT_BROWSERS_PATH"] == str(registry), "left as it was"


def test_the_system_ffmpeg_is_linked_where_playwright_looks(registry: Path) -> None:
    system = shutil.which("ffmpeg")
    assert system, "make install installs ffmpeg"
    assert video_support(system) is None
    private = Path(os.environ["PLAYWRIGHT_BROWSERS_PATH"])
    assert private != registry
    link = private / f"ffmpeg-{_revision()}" / "ffmpeg-linux"
    assert link.is_symlink() and os.readlink(link) == system
    assert video_support(system) is None and os.readlink(link) == system  # a second executor: same link


def test_playwrights_own_ffmpeg_is_used_when_it_is_there(registry: Path) -> None:
    own = registry / f"ffmpeg-{_revision()}" / "ffmpeg-linux"
    own.parent.mkdir(parents=True)
    own.write_text("#!/bin/sh\n")
    assert video_support("") is None
    assert os.environ["PLAYWRIGHT_BROWSERS_PATH"] == str(registry)
