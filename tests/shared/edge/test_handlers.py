"""Interceptors wrap a method's handler once, and again only when the handler below changes."""

from __future__ import annotations

from shared.edge.handlers import Wrapped


def test_a_method_is_wrapped_once_while_its_handler_below_stays_the_same() -> None:
    made: list[str] = []

    def wrap(below: str) -> str:
        made.append(below)
        return f"wrapped {below}"

    wrapped = Wrapped()
    servicer, refusal = "servicer's handler", "a refusal made for one call"

    assert wrapped.get("/s/Submit", servicer, wrap) == "wrapped servicer's handler"
    assert wrapped.get("/s/Submit", servicer, wrap) == "wrapped servicer's handler"
    assert made == [servicer]
    # Another handler below (a refused API key): wrapped for itself, never the cached one.
    assert wrapped.get("/s/Submit", refusal, wrap) == "wrapped a refusal made for one call"
    assert wrapped.get("/s/Submit", servicer, wrap) == "wrapped servicer's handler"
    assert wrapped.get("/s/Cancel", servicer, wrap) == "wrapped servicer's handler"
    assert made == [servicer, refusal, servicer, servicer]
