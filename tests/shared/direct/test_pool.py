"""Choosing an executor: the fewest runs in flight, skipping the ones that refused."""

from __future__ import annotations

from dataclasses import dataclass

from shared.direct.pool import least_busy


@dataclass
class Endpoint:
    address: str
    in_flight: int = 0


def test_the_least_busy_endpoint_wins_and_the_first_on_a_tie() -> None:
    a, b, c = Endpoint("a:1", in_flight=2), Endpoint("b:1", in_flight=1), Endpoint("c:1", in_flight=1)
    assert least_busy([a, b, c]) is b
    b.in_flight = 3
    assert least_busy([a, b, c]) is c


def test_refused_endpoints_are_skipped_until_none_is_left() -> None:
    a, b = Endpoint("a:1"), Endpoint("b:1", in_flight=5)
    assert least_busy([a, b], exclude={"a:1"}) is b
    assert least_busy([a, b], exclude={"a:1", "b:1"}) is None
    assert least_busy([]) is None


def test_an_avoided_endpoint_is_chosen_only_when_no_other_is_left() -> None:
    a, b = Endpoint("a:1"), Endpoint("b:1", in_flight=5)
    assert least_busy([a, b], avoid={"a:1"}) is b
    assert least_busy([a, b], exclude={"b:1"}, avoid={"a:1"}) is a
    assert least_busy([a, b], avoid={"a:1", "b:1"}) is a
