"""The Alerts servicer (thin): tenant-wide alert rules and the deliveries of every alert.

Each method converts, calls a plain async function (`shared.alerts.rules`,
`shared.alerts.deliveries`) and converts back. Everything is the caller's tenant's: another
tenant's rule is NOT_FOUND like an unknown one. Viewers read rules and deliveries; submitters
create and delete rules (`shared.edge.auth.METHOD_ROLES`). Webhook URLs are write-only like
secrets: every answer shows them masked (`shared.alerts.urls`).
"""

from __future__ import annotations

from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from shared.alerts import deliveries, rules
from shared.edge.auth import tenant_of
from shared.edge.convert_alerts import delivery_to_proto, rule_from_proto, rule_to_proto
from shared.edge.status import Context, unary
from shared.navigation_policy import NavigationPolicy
from shared.paging import page_size
from shared.queue import Queue
from shared.sealed import Sealer


class AlertsServicer(pb_grpc.AlertsServicer):
    def __init__(self, queue: Queue, *, sealer: Sealer | None, policy: NavigationPolicy) -> None:
        """Args:
        sealer: seals notification secrets and URLs, and opens URLs to mask them (None: a rule
            with a secret is refused; URLs are stored plain).
        policy: the webhook policy new rules' targets are checked by.
        """
        self._queue = queue
        self._sealer = sealer
        self._policy = policy

    @unary
    async def CreateAlertRule(self, request: pb.CreateAlertRuleRequest, context: Context) -> pb.AlertRule:
        rule = await rules.create_rule(
            self._queue,
            rule_from_proto(request.rule),
            tenant=tenant_of(context),
            sealer=self._sealer,
            policy=self._policy,
        )
        return rule_to_proto(rule)

    @unary
    async def ListAlertRules(self, request: pb.ListAlertRulesRequest, context: Context) -> pb.ListAlertRulesResponse:
        page = await rules.list_rules(
            self._queue,
            tenant=tenant_of(context),
            sealer=self._sealer,
            page_size=page_size(request.page_size),
            page_token=request.page_token,
        )
        return pb.ListAlertRulesResponse(rules=[rule_to_proto(r) for r in page.items], next_page_token=page.next_token)

    @unary
    async def DeleteAlertRule(self, request: pb.DeleteAlertRuleRequest, context: Context) -> pb.DeleteAlertRuleResponse:
        await rules.delete_rule(self._queue, request.rule_id, tenant=tenant_of(context))
        return pb.DeleteAlertRuleResponse(deleted=True)

    @unary
    async def ListDeliveries(self, request: pb.ListDeliveriesRequest, context: Context) -> pb.ListDeliveriesResponse:
        page = await deliveries.list_deliveries(
            self._queue,
            tenant=tenant_of(context),
            sealer=self._sealer,
            schedule_id=request.schedule_id,
            rule_id=request.rule_id,
            job_id=request.job_id,
            page_size=page_size(request.page_size),
            page_token=request.page_token,
        )
        return pb.ListDeliveriesResponse(
            deliveries=[delivery_to_proto(d) for d in page.items], next_page_token=page.next_token
        )
