"""The Schedules servicer (thin): convert, call `shared.schedules`, convert back.

Tenant-scoped like jobs (another tenant's schedule is NOT_FOUND); viewers read, submitters change
(`shared.edge.auth.METHOD_ROLES`). Validation names fields as `schedule.cron`,
`schedule.template.definition.steps[0].click.selector`; secrets (and, with a key, webhook URLs) are
sealed with the API's sealer, and a schedule is only ever answered with its URLs masked.
"""

from __future__ import annotations

from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from shared.alerts.guard import PUBLIC_ONLY
from shared.edge import convert
from shared.edge.auth import tenant_of
from shared.edge.status import Context, unary
from shared.navigation_policy import NavigationPolicy
from shared.paging import page_size
from shared.queue import Queue
from shared.schedules import firing, rules, store
from shared.schedules.model import Schedule
from shared.sealed import Sealer


class SchedulesServicer(pb_grpc.SchedulesServicer):
    def __init__(self, queue: Queue, sealer: Sealer | None = None, *, policy: NavigationPolicy = PUBLIC_ONLY) -> None:
        """Args:
        sealer: seals the template's secret fill values and the notifications' secrets (None: a
            schedule with a secret is refused).
        policy: the webhook policy notifications' targets are checked by, as alert rules' are.
        """
        self._queue = queue
        self._sealer = sealer
        self._policy = policy

    def _shown(self, schedule: Schedule) -> pb.Schedule:
        """Every schedule a caller is given goes through here: its notifications' URLs masked."""
        return convert.schedule_to_proto(rules.shown(schedule, self._sealer))

    @unary
    async def CreateSchedule(self, request: pb.CreateScheduleRequest, context: Context) -> pb.Schedule:
        spec = convert.schedule_from_proto(request.schedule)
        made = await store.create_schedule(
            self._queue, spec, tenant=tenant_of(context), sealer=self._sealer, policy=self._policy
        )
        return self._shown(made)

    @unary
    async def GetSchedule(self, request: pb.GetScheduleRequest, context: Context) -> pb.Schedule:
        found = await store.get_schedule(self._queue, request.schedule_id, tenant=tenant_of(context))
        return self._shown(found)

    @unary
    async def ListSchedules(self, request: pb.ListSchedulesRequest, context: Context) -> pb.ListSchedulesResponse:
        page = await store.list_schedules(
            self._queue,
            tenant=tenant_of(context),
            page_size=page_size(request.page_size),
            page_token=request.page_token,
        )
        return pb.ListSchedulesResponse(schedules=[self._shown(s) for s in page.items], next_page_token=page.next_token)

    @unary
    async def UpdateSchedule(self, request: pb.UpdateScheduleRequest, context: Context) -> pb.Schedule:
        changed = await store.update_schedule(
            self._queue,
            request.schedule.schedule_id,
            convert.schedule_from_proto(request.schedule),
            paths=list(request.update_mask.paths),
            tenant=tenant_of(context),
            sealer=self._sealer,
            policy=self._policy,
        )
        return self._shown(changed)

    @unary
    async def DeleteSchedule(self, request: pb.DeleteScheduleRequest, context: Context) -> pb.DeleteScheduleResponse:
        deleted = await store.delete_schedule(self._queue, request.schedule_id, tenant=tenant_of(context))
        return pb.DeleteScheduleResponse(deleted=deleted)

    @unary
    async def PauseSchedule(self, request: pb.PauseScheduleRequest, context: Context) -> pb.Schedule:
        paused = await store.pause_schedule(
            self._queue, request.schedule_id, tenant=tenant_of(context), note=request.note
        )
        return self._shown(paused)

    @unary
    async def ResumeSchedule(self, request: pb.ResumeScheduleRequest, context: Context) -> pb.Schedule:
        resumed = await store.resume_schedule(
            self._queue, request.schedule_id, tenant=tenant_of(context), note=request.note
        )
        return self._shown(resumed)

    @unary
    async def TriggerSchedule(self, request: pb.TriggerScheduleRequest, context: Context) -> pb.Job:
        job = await firing.trigger_schedule(self._queue, request.schedule_id, tenant=tenant_of(context))
        return convert.job_to_proto(job)
