"""Alert on change, not on every run: which job ends alert, for which owner, once."""

from __future__ import annotations

import asyncio
import dataclasses
import json

from shared import jobs
from shared.alerts import rules
from shared.alerts.outcomes import apply_entry, unowned_ends
from shared.model import JobOptions, JobSource, JobState, Navigate, Step, SubmitCommand, TestDefinition
from shared.notifications import Notification
from shared.schedules.model import ScheduleSpec
from shared.schedules.store import create_schedule, delete_schedule
from shared.schedules.timing import Timing
from tests.queue_helpers import TENANT, run_jobs
from tests.shared.alerts.conftest import Alerting, drain, entries

FAILED, COMPLETED = JobState.FAILED, JobState.COMPLETED


async def test_a_failure_after_a_pass_and_the_pass_after_failures_alert_once_each(alerting: Alerting) -> None:
    consumer = await alerting.consumer()
    rule = await alerting.rule("https://hooks.example.com/sentinel")
    for state in (FAILED, FAILED, COMPLETED, COMPLETED, FAILED):
        await alerting.end_job(state)
    await drain(consumer)
    made = await alerting.deliveries()
    assert [d.event for d in made] == ["failed", "recovered", "failed"]
    assert {d.rule_id for d in made} == {rule.rule_id}
    body = json.loads(made[1].body)
    assert body["event"] == "recovered" and body["delivery_id"] == made[1].delivery_id
    assert body["rule_id"] == rule.rule_id and body["test_name"] == "t" and body["state"] == "completed"
    assert body["tags"] == ["checkout"] and body["tenant"] == "default" and body["schedule_id"] == ""
    assert body["job_id"] == made[1].job_id and body["finished_at"].endswith("Z")
    assert set(body) >= {"event", "job_id", "schedule_id", "rule_id", "state", "test_name", "error"}
    # The check's run of failures: the first failure begins it; the recovery says how long it was.
    first, recovered, again = (json.loads(d.body) for d in made)
    assert (first["failures"], recovered["failures"], again["failures"]) == (1, 2, 1)
    assert first["failing_since"].endswith("Z") and recovered["failing_since"] == first["failing_since"]
    assert again["failing_since"] >= first["failing_since"]  # a new run, begun when it was judged
    assert first["job_url"] is None  # no SENTINEL_PUBLIC_URL: no link


async def test_each_test_under_a_rule_has_its_own_last_outcome(alerting: Alerting) -> None:
    consumer = await alerting.consumer()
    await alerting.rule("https://hooks.example.com/sentinel")
    await alerting.end_job(FAILED, name="login")
    await alerting.end_job(COMPLETED, name="search")  # passing for the first time: nothing to recover from
    await alerting.end_job(FAILED, name="search")
    await alerting.end_job(COMPLETED, name="login")
    await drain(consumer)
    made = await alerting.deliveries()
    assert [(json.loads(d.body)["test_name"], d.event) for d in made] == [
        ("login", "failed"),
        ("search", "failed"),
        ("login", "recovered"),
    ]


async def test_a_notification_after_n_failures_alerts_at_the_nth_in_a_row_and_recovers_only_after_it(
    alerting: Alerting,
) -> None:
    consumer = await alerting.consumer()
    pager = await alerting.rule("https://hooks.example.com/pager", after_failures=3)
    chat = await alerting.rule("https://hooks.example.com/chat")  # the same checks, alerted at once
    ends = (FAILED, FAILED, COMPLETED, FAILED, FAILED, FAILED, FAILED, COMPLETED, FAILED, COMPLETED)
    job_ids = [await alerting.end_job(state) for state in ends]
    await drain(consumer)
    made = await alerting.deliveries()

    def alerts(rule: rules.AlertRule) -> list[tuple[int, str]]:
        return [(job_ids.index(d.job_id), d.event) for d in made if d.rule_id == rule.rule_id]

    # Two failures then a pass: a blip, no one paged. The third failure in a row pages; the pass after
    # it recovers; a lone failure after that pages no one, so its pass recovers nothing.
    assert alerts(pager) == [(5, "failed"), (7, "recovered")]
    assert alerts(chat) == [
        (0, "failed"),
        (2, "recovered"),
        (3, "failed"),
        (7, "recovered"),
        (8, "failed"),
        (9, "recovered"),
    ]


async def test_a_text_notification_sends_one_line_as_chat_incoming_webhooks_take_it(alerting: Alerting) -> None:
    consumer = await alerting.consumer(settings=dataclasses.replace(alerting.settings, public_url="https://s.example"))
    await alerting.rule("https://hooks.slack.example/services/T0/B0/x", format="text")
    failed_job = await alerting.end_job(FAILED, name="Health API", schedule_id="prod")
    passed_job = await alerting.end_job(COMPLETED, name="Health API", schedule_id="prod")
    await drain(consumer)
    failed, recovered = [json.loads(d.body)["text"] for d in await alerting.deliveries()]
    assert (
        failed
        == f":red_circle: Health API failed (job {failed_job}, schedule prod) https://s.example/#/jobs/{failed_job}"
    )
    assert recovered.startswith(":large_green_circle: Health API recovered after 1 failure since 20"), recovered
    assert recovered.endswith(f"Z (job {passed_job}, schedule prod) https://s.example/#/jobs/{passed_job}"), recovered


async def test_under_a_rule_each_schedule_is_a_check_of_its_own_whatever_its_tests_name(alerting: Alerting) -> None:
    """A prod and a staging schedule of one test file: prod failing while staging passes is one
    incident of prod, not a failure and a recovery at every run."""
    consumer = await alerting.consumer()
    await alerting.rule("https://hooks.example.com/sentinel")
    for prod, staging in ((FAILED, COMPLETED), (FAILED, COMPLETED), (COMPLETED, COMPLETED)):
        await alerting.end_job(prod, name="Health API", schedule_id="prod")
        await alerting.end_job(staging, name="Health API", schedule_id="staging")
    await alerting.end_job(FAILED, name="Health API")  # not scheduled: its test is its check
    await drain(consumer)
    made = [json.loads(d.body) for d in await alerting.deliveries()]
    assert [(b["schedule_id"], b["event"]) for b in made] == [("prod", "failed"), ("prod", "recovered"), ("", "failed")]
    assert {b["test_name"] for b in made} == {"Health API"}


async def test_completed_timeout_dead_letter_and_cancel_events_come_every_time_they_are_asked_for(
    alerting: Alerting,
) -> None:
    consumer = await alerting.consumer()
    every = ("failed", "recovered", "completed", "timeout", "dead_lettered", "cancelled")
    await alerting.rule("https://hooks.example.com/sentinel", events=every)
    ends = (COMPLETED, COMPLETED, JobState.TIMEOUT, FAILED, JobState.CANCELLED, COMPLETED)
    job_ids = [
        await alerting.end_job(state, dead_letter_reason="network: out of attempts" if state is FAILED else "")
        for state in ends
    ]
    await drain(consumer)
    made = await alerting.deliveries()
    # One job's deliveries share a millisecond: compare each job's as a set.
    assert [{d.event for d in made if d.job_id == job_id} for job_id in job_ids] == [
        {"completed"},
        {"completed"},
        {"failed", "timeout"},  # the timeout is the first failure after passes
        {"dead_lettered"},  # the second failure in a row alerts as a dead letter only
        {"cancelled"},  # a cancelled run says nothing about the site: the last outcome stays a failure
        {"recovered", "completed"},
    ]


async def test_an_attempt_that_will_be_retried_is_not_yet_a_failure(alerting: Alerting) -> None:
    consumer = await alerting.consumer()
    await alerting.rule("https://hooks.example.com/sentinel")
    await alerting.end_job(JobState.SCHEDULED)  # the executor scheduled a retry: `retrying`
    await alerting.end_job(COMPLETED)
    await drain(consumer)
    assert await alerting.deliveries() == []


async def test_jobs_without_a_ruled_tag_or_of_another_tenant_alert_nobody(alerting: Alerting) -> None:
    consumer = await alerting.consumer()
    await alerting.rule("https://hooks.example.com/sentinel", tag="checkout")
    await alerting.end_job(FAILED, tags=("search",))
    await alerting.end_job(FAILED, tags=())
    await drain(consumer)
    assert await alerting.deliveries() == []


async def test_a_notification_gets_only_the_events_it_asked_for(alerting: Alerting) -> None:
    consumer = await alerting.consumer()
    await alerting.rule("https://hooks.example.com/recoveries", events=("recovered",))
    for state in (FAILED, COMPLETED, FAILED):
        await alerting.end_job(state)
    await drain(consumer)
    assert [d.event for d in await alerting.deliveries()] == ["recovered"]


async def test_an_entry_applied_twice_or_at_once_by_two_replicas_alerts_once(alerting: Alerting) -> None:
    await alerting.rule("https://hooks.example.com/sentinel")
    await alerting.end_job(FAILED)
    ((entry_id, fields),) = await entries(alerting, "failed")
    settings = alerting.settings
    together = await asyncio.gather(
        *(apply_entry(alerting.queue, entry_id, fields, settings=settings) for _ in range(4))
    )
    again = await apply_entry(alerting.queue, entry_id, fields, settings=settings)
    assert sorted(len(made) for made in together) == [0, 0, 0, 1]
    assert again == []
    assert [d.event for d in await alerting.deliveries()] == ["failed"]


async def test_an_older_entry_read_late_changes_nothing(alerting: Alerting) -> None:
    """A replica that read a failure, died before acknowledging it, and had it taken over after a
    newer pass was applied: the failure is old news and must not alert again."""
    await alerting.rule("https://hooks.example.com/sentinel")
    await alerting.end_job(FAILED)
    await alerting.end_job(COMPLETED)
    ends = await entries(alerting, "failed", "completed")
    settings = alerting.settings
    for entry_id, fields in ends:
        await apply_entry(alerting.queue, entry_id, fields, settings=settings)
    assert await apply_entry(alerting.queue, *ends[0], settings=settings) == []
    assert [d.event for d in await alerting.deliveries()] == ["failed", "recovered"]


STATUS_PAGE = TestDefinition(name="status page", steps=(Step(Navigate(url="http://example.test/")),))


async def scheduled_job(alerting: Alerting, schedule_id: str, state: JobState) -> str:
    """A job as the scheduler fires it for `schedule_id`, ended in `state`."""
    command = SubmitCommand(
        definition=STATUS_PAGE, options=JobOptions(), source=JobSource.SCHEDULER, schedule_id=schedule_id
    )
    submitted = await jobs.submit(alerting.queue, command, tenant=TENANT)
    assert await run_jobs(alerting.queue, 1, state=state) == [submitted.job_id]
    alerting.ended.append(submitted.job_id)
    return submitted.job_id


async def test_a_schedules_notifications_alert_on_its_jobs_changes(alerting: Alerting) -> None:
    consumer = await alerting.consumer()
    notification = Notification(url="https://hooks.example.com/status", secret="whsec_s")
    spec = ScheduleSpec(
        name="status every minute",
        timing=Timing(interval_ms=60_000),
        template=SubmitCommand(definition=STATUS_PAGE, options=JobOptions()),
        paused=True,
        notifications=(notification,),
    )
    schedule = await create_schedule(alerting.queue, spec, tenant=TENANT, sealer=alerting.sealer)
    for state in (FAILED, FAILED, COMPLETED):
        await scheduled_job(alerting, schedule.schedule_id, state)
    await drain(consumer)
    made = await alerting.deliveries(schedule_id=schedule.schedule_id)
    assert [(d.event, d.schedule_id, d.rule_id) for d in made] == [
        ("failed", schedule.schedule_id, ""),
        ("recovered", schedule.schedule_id, ""),
    ]
    assert json.loads(made[0].body)["schedule_id"] == schedule.schedule_id
    await delete_schedule(alerting.queue, schedule.schedule_id, tenant=TENANT)
    await scheduled_job(alerting, schedule.schedule_id, FAILED)  # fired just before the schedule went
    await drain(consumer)
    assert len(await alerting.deliveries()) == 2


async def test_only_ends_of_untagged_unscheduled_jobs_are_passed_over_unloaded(alerting: Alerting) -> None:
    untagged = await alerting.end_job(FAILED, tags=())
    tagged = await alerting.end_job(FAILED)
    scheduled = await scheduled_job(alerting, "sched-1", FAILED)
    gone = await alerting.end_job(COMPLETED, tags=())
    await alerting.queue.redis.delete(alerting.queue.for_job(gone).keys.job(gone))
    stream = await entries(alerting, "failed", "completed", "running", "progress")
    by_job = {fields["job"]: entry_id for entry_id, fields in stream if fields["kind"] in ("failed", "completed")}

    passed_over = await unowned_ends(alerting.queue, [*stream, ("0-1", None)])

    # Not the tagged job's (a rule may cover it), nor the scheduled one's, nor a gone job's (applying
    # it logs that it is gone), nor anything that is no job's end.
    assert set(by_job) == {untagged, tagged, scheduled, gone}
    assert passed_over == {by_job[untagged]}
