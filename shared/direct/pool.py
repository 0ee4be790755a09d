"""The executors the API runs direct jobs on, as the runner sees them, and the choice among them.

A job goes to the executor with the fewest of this API's runs in flight; one that refused (full,
draining, unreachable) is skipped for that job's next choice, and one that lost an earlier attempt
of the job (it stopped or crashed mid-run) is passed over while another can take the retry. The
executors themselves — gRPC channels, the Run call — are `shared.edge.executors.ExecutorPool`;
nothing here talks to them.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Collection, Mapping, Sequence
from typing import Protocol, TypeVar

from shared.model import Progress, RunEnd


class Busy(Protocol):
    address: str
    in_flight: int  # this API's runs on it now


class Executor(Busy, Protocol):
    def run(self, record: Mapping[str, str], trace: str) -> AsyncGenerator[Progress | RunEnd, None]:
        """Run the job whose record this is: its progress reports, then its end.

        Raises:
            ExecutorRefused: the executor did not take the run (nothing ran).
            ExecutorLost: the run was cut off before its end.
        """


B = TypeVar("B", bound=Busy)


def least_busy(executors: Sequence[B], *, exclude: Collection[str] = (), avoid: Collection[str] = ()) -> B | None:
    """The executor with the fewest runs in flight, not in `exclude` (the first such on a tie); None if none.

    One in `avoid` is chosen only when every other is excluded.
    """
    candidates = [e for e in executors if e.address not in exclude]
    preferred = [e for e in candidates if e.address not in avoid] or candidates
    return min(preferred, key=lambda e: e.in_flight) if preferred else None
