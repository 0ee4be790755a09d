"""JSON-path expectations of a `request` step: parsing a path, and checking one against a body.

Validation (`shared.validation`) and the executor (`executor_service.http_check`) both parse paths
here, so a path the API accepted is a path the executor can run. Paths are RFC 9535 JSONPath in
the strict form (`$` first, no surrounding whitespace), parsed by `python-jsonpath`.

Equality is JSON's, not Python's: `true` is not `1`, while `1` equals `1.0`. Nothing here logs
or raises with the body in the message beyond the short excerpts a failure reports.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from jsonpath import JSONPath, JSONPathEnvironment, JSONPathError

__all__ = ["compile_path", "describe_value", "json_equal", "parse_literal", "values_at"]

_ENV = JSONPathEnvironment(strict=True)
#: How much of a value a failure message shows.
MAX_SHOWN_CHARS = 200


def compile_path(path: str) -> JSONPath:
    """The compiled JSONPath.

    Raises:
        ValueError: it does not parse; the message says why, briefly.
    """
    if not path:
        raise ValueError("must not be empty")
    try:
        compiled = _ENV.compile(path)
    except (JSONPathError, RecursionError) as exc:
        reason = str(exc.args[0]) if exc.args else type(exc).__name__
        raise ValueError(f"must be a JSONPath starting with '$' ({reason})") from None
    if not isinstance(compiled, JSONPath):  # a compound path (`$.a | $.b`) is not an RFC 9535 query
        raise ValueError("must be one JSONPath query, not a union of queries")
    return compiled


def parse_literal(text: str) -> Any:
    """The JSON value `text` spells.

    Raises:
        ValueError: it is not JSON.
    """
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f'must be a JSON value such as 42, true, "ok" or null ({exc})') from None


def values_at(path: JSONPath, document: Any) -> list[Any]:
    """Every value `path` selects in `document`, in document order."""
    return list(path.findall(document))


def json_equal(a: Any, b: Any) -> bool:
    """Equality of two decoded JSON values by JSON's rules (booleans are not numbers)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and bool(a == b)


def describe_value(value: Any, *, mask: Callable[[str], str] | None = None) -> str:
    """`value` as JSON, cut short for a failure message, after `mask` (which hides secret values:
    a secret cut in two would no longer be found)."""
    text = json.dumps(value, ensure_ascii=False)
    if mask is not None:
        text = mask(text)
    return text if len(text) <= MAX_SHOWN_CHARS else text[: MAX_SHOWN_CHARS - 1] + "…"
