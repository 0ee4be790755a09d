"""Interceptors' wrapped method handlers, made once per method rather than once per call.

A grpc.aio server interceptor is asked for a handler on every call. Wrapping the handler it is
given builds a new handler (closures, a deserializer wrapper, grpc's handler tuple) each time,
although the handler below is the same object call after call: the servicer's, or the next
interceptor's own wrapped one. `Wrapped` keeps the last wrapping per method and hands it out again
while the handler below is the same; a different one (an API key refused: a handler made for that
call) is wrapped anew.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["Wrapped"]

H = TypeVar("H")


class Wrapped:
    def __init__(self) -> None:
        self._made: dict[str, tuple[Any, Any]] = {}  # method -> (the handler below, its wrapping)

    def get(self, method: str, below: H, wrap: Callable[[H], H]) -> H:
        """`wrap(below)`, made once while the method's handler below stays `below`."""
        made = self._made.get(method)
        if made is not None and made[0] is below:
            return made[1]  # type: ignore[no-any-return]  # made by `wrap` from this same `below`
        wrapped = wrap(below)
        self._made[method] = (below, wrapped)
        return wrapped
