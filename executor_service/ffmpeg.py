"""Video needs ffmpeg: Playwright's own download if it is there, else the system's (Debian's package).

Playwright records video only with the ffmpeg it downloads itself
(`$PLAYWRIGHT_BROWSERS_PATH/ffmpeg-<revision>/ffmpeg-linux`), and Sentinel never downloads
browsers: Chromium is the system's (`SENTINEL_CHROMIUM`), and so is ffmpeg (`SENTINEL_FFMPEG`,
default the one on PATH). When Playwright has none of its own, `video_support` gives it a private
browsers directory whose `ffmpeg-<revision>/ffmpeg-linux` links to the system's binary, through
`PLAYWRIGHT_BROWSERS_PATH` for the driver Sentinel starts next. That changes nothing else:
Chromium is always launched by path.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from pathlib import Path

import playwright

__all__ = ["video_support"]

log = logging.getLogger(__name__)


def _revision() -> str | None:
    """The ffmpeg build this Playwright expects, from its driver's browsers.json."""
    manifest = Path(playwright.__file__).parent / "driver" / "package" / "browsers.json"
    try:
        browsers = json.loads(manifest.read_text())["browsers"]
        return next(str(b["revision"]) for b in browsers if b["name"] == "ffmpeg")
    except (OSError, ValueError, KeyError, StopIteration):
        return None


def _registry() -> Path:
    configured = os.environ.get("PLAYWRIGHT_BROWSERS_PATH", "").strip()
    return Path(configured) if configured and configured != "0" else Path.home() / ".cache" / "ms-playwright"


def video_support(ffmpeg: str) -> str | None:
    """Make video recording work in the Playwright driver started after this call.

    Args:
        ffmpeg: The system ffmpeg (SENTINEL_FFMPEG); "" when there is none.

    Returns:
        None when videos can be recorded; otherwise why not (for the notes of jobs that ask).
    """
    if not sys.platform.startswith("linux"):
        return "videos are recorded on Linux executors only"
    revision = _revision()
    if revision is None:
        return "this Playwright does not say which ffmpeg it needs"
    if (_registry() / f"ffmpeg-{revision}" / "ffmpeg-linux").is_file():
        return None  # Playwright's own
    if not ffmpeg or not os.access(ffmpeg, os.X_OK):
        return "no ffmpeg on this executor (install ffmpeg, or set SENTINEL_FFMPEG)"
    private = Path(tempfile.gettempdir()) / f"sentinel-playwright-{os.getuid()}"
    link = private / f"ffmpeg-{revision}" / "ffmpeg-linux"
    try:
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink() or os.readlink(link) != ffmpeg:
            staged = link.with_name(f".ffmpeg-linux-{os.getpid()}")
            staged.unlink(missing_ok=True)
            staged.symlink_to(ffmpeg)
            staged.replace(link)  # atomic: executors starting together never see half a link
    except OSError as exc:
        return f"cannot prepare ffmpeg for Playwright ({exc.strerror or exc})"
    os.environ["PLAYWRIGHT_BROWSERS_PATH"] = str(private)
    log.info("videos are encoded by %s", ffmpeg)
    return None
