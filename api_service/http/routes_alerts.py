"""HTTP routes of alerts: the tenant's alert rules (list, show, create, delete) and the deliveries
of every alert, with the receivers' answers.

Each handler is the twin of an `AlertsServicer` method and calls the same function with the same
arguments (`shared.alerts.rules`, `shared.alerts.deliveries`). Webhook URLs are write-only, as
secrets are: every answer shows them masked. A rule's violations are named as the body names its
fields (`tag`, `notifications[0].url`). No rule lives here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from api_service.http.context import backend, tenant
from api_service.http.envelope import ok
from api_service.http.parsing import (
    fields_renamed,
    notifications_from_json,
    query_page,
    read_json,
    text_field,
    unknown_fields,
)
from api_service.http.views import delivery_view, rule_view
from shared.alerts import deliveries, rules
from shared.alerts.rules import AlertRule
from shared.errors import FieldViolation, ValidationError

#: Where a rule is shown, under the API's prefix (a 201's `Location`).
RULE_PATH = "/api/v1/alerts/rules/{}"


def rule_from_json(body: Mapping[str, Any]) -> AlertRule:
    """What a caller may set on a rule: its tag and notifications (id, tenant and time are the server's)."""
    found = unknown_fields(body, {"tag", "notifications"})
    tag = text_field(found, "tag", body.get("tag", "")).strip()
    if "notifications" not in body:
        found.append(FieldViolation("notifications", "is required: at least one notification"))
    notifications = notifications_from_json(found, body.get("notifications", []))
    if found:
        raise ValidationError(found)
    return AlertRule(rule_id="", tenant_id="", tag=tag, notifications=notifications)


async def list_rules(request: web.Request) -> web.Response:
    size, token = query_page(request)
    app = backend(request)
    page = await rules.list_rules(
        app.queue, tenant=tenant(request), sealer=app.sealer, page_size=size, page_token=token
    )
    return ok({"rules": [rule_view(r) for r in page.items], "nextPageToken": page.next_token or None})


async def get_rule(request: web.Request) -> web.Response:
    app = backend(request)
    found = await rules.get_rule(app.queue, request.match_info["id"], tenant=tenant(request), sealer=app.sealer)
    return ok(rule_view(found))


async def create_rule(request: web.Request) -> web.Response:
    app = backend(request)
    given = rule_from_json(await read_json(request))
    with fields_renamed(lambda field: field.removeprefix("rule.")):
        made = await rules.create_rule(
            app.queue, given, tenant=tenant(request), sealer=app.sealer, policy=app.webhook_policy
        )
    location = {"Location": RULE_PATH.format(made.rule_id)}
    return ok(rule_view(made), message="alert rule created", status=201, headers=location)


async def delete_rule(request: web.Request) -> web.Response:
    await rules.delete_rule(backend(request).queue, request.match_info["id"], tenant=tenant(request))
    return ok({"deleted": True}, message="alert rule deleted; its deliveries already made are still sent")


async def list_deliveries(request: web.Request) -> web.Response:
    size, token = query_page(request)
    app = backend(request)
    page = await deliveries.list_deliveries(
        app.queue,
        tenant=tenant(request),
        sealer=app.sealer,
        schedule_id=request.query.get("scheduleId", ""),
        rule_id=request.query.get("ruleId", ""),
        job_id=request.query.get("testId", ""),
        page_size=size,
        page_token=token,
    )
    return ok({"deliveries": [delivery_view(d) for d in page.items], "nextPageToken": page.next_token or None})
