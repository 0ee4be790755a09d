"""The collector settled once a service is up: what exists is frozen, what comes later is collected."""

from __future__ import annotations

import gc
import weakref

from shared import heap


class Node:
    def __init__(self) -> None:
        self.me: Node | None = None


def test_settle_freezes_what_survived_and_garbage_made_later_is_still_collected() -> None:
    kept = Node()
    kept.me = kept
    try:
        frozen = heap.settle()
        # A frozen object whose last reference goes (another thread's, such as the test runner's)
        # is freed and leaves the frozen set, so the count can only have dropped since.
        assert 0 < gc.get_freeze_count() <= frozen
        assert not any(o is kept for o in gc.get_objects()), "a survivor was left to the collector"
        later = Node()
        later.me = later  # a cycle: only the collector frees it
        gone = weakref.ref(later)
        del later
        gc.collect()
        assert gone() is None
    finally:
        gc.unfreeze()
