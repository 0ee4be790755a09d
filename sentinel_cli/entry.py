"""The `sentinel` command's entry point: Ctrl-C at any moment ends it with 130 and one line.

Loading the command line takes a few hundred milliseconds (gRPC, protobuf, the SDK); a Ctrl-C in
that time used to end it with Python's traceback. This module imports nothing heavy itself, so the
interrupt is caught wherever it lands, loading included.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> None:
    try:
        from sentinel_cli.main import main as run
    except KeyboardInterrupt:
        print("sentinel: interrupted", file=sys.stderr)
        sys.exit(130)
    run(argv)
