"""The OpenAPI document: valid OpenAPI 3.1, served without a key, and describing exactly the routes served."""

from __future__ import annotations

from aiohttp import web
from openapi_spec_validator import validate

from api_service.http.auth import OPEN_ROUTES, ROUTE_ROLES
from api_service.http.context import Backend
from api_service.http.openapi import document
from api_service.http.server import PREFIX, ROUTES, build_app
from tests.api_service.http.conftest import Http

METHODS = {"get", "post", "put", "patch", "delete"}


def served(app: web.Application) -> set[tuple[str, str]]:
    """(method, path under /api/v1) of every API route the app registers (HEAD is aiohttp's twin of GET)."""
    found = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if path.startswith(PREFIX + "/") and route.method != "HEAD":
            found.add((route.method.lower(), path.removeprefix(PREFIX)))
    return found


def documented() -> set[tuple[str, str]]:
    return {(method, path) for path, item in document()["paths"].items() for method in item if method in METHODS}


def test_the_document_is_valid_openapi_3_1() -> None:
    validate(document())
    assert document()["openapi"].startswith("3.1")


def test_the_document_describes_exactly_the_routes_served(http: Http) -> None:
    app = http.server.http.runner.app if http.server.http else None
    assert app is not None
    assert served(app) == documented()


def test_every_route_has_a_role_or_is_open() -> None:
    names = {route.name for route in ROUTES}
    assert names == set(ROUTE_ROLES) | (OPEN_ROUTES & names)


def test_every_secured_operation_documents_401_403_500_503() -> None:
    for path, item in document()["paths"].items():
        for method, op in item.items():
            if op.get("security") == []:
                continue
            assert {"401", "403", "500", "503"} <= set(op["responses"]), (method, path)


def test_a_fresh_app_registers_the_same_routes() -> None:
    app = build_app(Backend(queue=None, hub=None, keys=None))  # type: ignore[arg-type]
    assert served(app) == documented()


async def test_the_document_is_served_without_a_key(keyed: Http) -> None:
    async with keyed.session.get(f"{keyed.base}/api/v1/openapi.json") as resp:
        assert resp.status == 200
        assert await resp.json() == document()


def test_a_request_steps_headers_are_a_json_object_as_proto3_json_spells_a_map() -> None:
    schemas = document()["components"]["schemas"]
    request = schemas["HttpRequest"]["properties"]
    assert request["headers"] == {"type": "object", "additionalProperties": {"type": "string"}}
    assert request["expectJson"] == {"type": "array", "items": {"$ref": "#/components/schemas/JsonExpectation"}}
    assert request["secretHeaders"] == {"type": "array", "items": {"type": "string"}}
    assert schemas["StepResult"]["properties"]["httpStatus"]["minimum"] == 0


def test_every_route_documents_exactly_the_query_parameters_it_takes() -> None:
    for route in ROUTES:
        op = document()["paths"][route.path][route.method.lower()]
        documented_query = [p["name"] for p in op.get("parameters", []) if p["in"] == "query"]
        assert sorted(documented_query) == sorted(route.query), route


def test_every_route_that_can_meet_the_tenants_queue_limit_documents_429_with_retry_after() -> None:
    paths = document()["paths"]
    for path in ("/tests/execute", "/queue/jobs/{id}/retry", "/queue/dead-letters/{id}/requeue"):
        assert "Retry-After" in paths[path]["post"]["responses"]["429"]["headers"], path
    for path, item in paths.items():
        for method, op in item.items():
            if "503" in op["responses"]:
                assert "Retry-After" in op["responses"]["503"]["headers"], (method, path)
            if method == "post":
                assert "415" in op["responses"], path
