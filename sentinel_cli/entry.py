"""The `sentinel` command's entry point: Ctrl-C at any moment ends it with 130 and one line.

Loading the command line takes a few hundred milliseconds (gRPC, protobuf, the SDK); a Ctrl-C in
that time used to end it with Python's traceback. This module imports nothing heavy itself, so the
interrupt is caught wherever it lands, loading included.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> None:
    # gRPC's fork handlers are for children that use gRPC; Sentinel's children (Chromium, ffmpeg,
    # Playwright's driver) exec at once. With them on, every such start while gRPC threads run wrote
    # a raw C-core line ("skipping fork() handlers") to stderr, breaking `--log-format json`. Read
    # when gRPC loads, so set before anything imports it; an operator's own setting wins.
    os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
    try:
        from sentinel_cli.main import main as run
    except KeyboardInterrupt:
        print("sentinel: interrupted", file=sys.stderr)
        sys.exit(130)
    run(argv)
