"""How a loop that keeps trying logs its failures: the first one, then a reminder at most once a
minute while it keeps failing, then once that it works again — not a line every try.

During a Redis outage every background loop of a service (scheduler, cleaner, alerts, the stream
hub; an executor's claim, promote, reclaim and control loops) fails each round; logged each time,
a 10-minute outage wrote ~2,000 warnings per API replica and buried what mattered. A `Failures`
per loop keeps the log to what an operator needs: when it started, that it is still so (with how
many tries failed), and when it ended.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["REMIND_S", "Failures"]

#: Seconds between reminders while a loop keeps failing.
REMIND_S = 60.0


class Failures:
    """The failures of one loop (`what`: how its log lines name it), logged to `log`."""

    def __init__(self, log: logging.Logger, what: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._log = log
        self._what = what
        self._clock = clock
        self._count = 0
        self._since = 0.0
        self._reminded = 0.0

    @property
    def failing(self) -> bool:
        return self._count > 0

    def failed(self, exc: BaseException, *, again_in_s: float | None = None) -> None:
        """One try failed with `exc` (and the loop tries again in `again_in_s`, if it says)."""
        now = self._clock()
        self._count += 1
        again = f", trying again in {again_in_s:.1f} s" if again_in_s is not None else ""
        if self._count == 1:
            self._since = self._reminded = now
            self._log.warning("%s failed%s: %s", self._what, again, exc)
        elif now - self._reminded >= REMIND_S:
            self._reminded = now
            self._log.warning(
                "%s still failing: %d tries in %.0f s%s: %s", self._what, self._count, now - self._since, again, exc
            )

    def worked(self) -> None:
        """A try worked: if tries failed before it, say that it works again."""
        if self._count:
            self._log.info(
                "%s works again after %d failed tries in %.0f s", self._what, self._count, self._clock() - self._since
            )
            self._count = 0
