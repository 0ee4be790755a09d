"""The garbage collector of the long-running services (`sentinel api`, `sentinel executor`): one place.

CPython's cyclic collector stops the event loop while it runs, and a full (generation 2) pass walks
every object the process tracks. An API following 2,000 progress streams tracks ~300,000 objects: a
full pass took 100–190 ms there, and every delivery due meanwhile waited for it (the 99th percentile
of progress write → subscriber was 28–133 ms in runs with such a pass, ~4 ms without).

`settle()`, once a service is up, collects and then `gc.freeze()`s what survived: modules, classes,
functions, settings, the servers themselves (~80,000 objects in the API, a third of a full pass at
2,000 streams, all of it at none). Frozen objects are never walked again, so a later full pass walks
only what the service made since; they stay alive for the process's life, as they would anyway.
Objects made later are collected as before. bench/notes/subs.md has the measurements.
"""

from __future__ import annotations

import gc

__all__ = ["settle"]


def settle() -> int:
    """Collect everything, then keep what survived out of every later collection; how many objects
    were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
