"""Wall-clock milliseconds, the unit every Sentinel timestamp in Redis uses."""

from __future__ import annotations

import time


def now_ms() -> int:
    return time.time_ns() // 1_000_000
