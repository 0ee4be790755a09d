"""Domain values as the HTTP API's JSON: the one place they are rendered (camelCase, ISO times).

The shapes are the HTTP contract's (see the README's "HTTP API" and `api_service.http.openapi`,
which documents each of them as a schema). Like `shared.edge.convert` for protobuf, this module
only reads domain values; it never decides anything. A time of 0 ms is `null`.
"""

from __future__ import annotations

import datetime
from typing import Any

from shared.access import Principal
from shared.alerts.deliveries import Delivery
from shared.alerts.rules import AlertRule
from shared.artifacts import Artifact
from shared.events import QueueEvent
from shared.model import Job, JobError, JobResult, JobState, Progress, ProgressEvent, Run, RunTestOutcome, StepResult
from shared.notifications import Notification
from shared.queue_health import QueueHealth
from shared.schedules.model import Schedule
from shared.stats import Figures, QueueStats

JSON = dict[str, Any]


def iso(ms: int) -> str | None:
    """A time in ms since the epoch as ISO 8601 UTC with milliseconds (`…T12:00:00.123Z`); 0 is None."""
    if ms <= 0:
        return None
    moment = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_iso() -> str:
    moment = datetime.datetime.now(tz=datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def progress_view(progress: Progress) -> JSON:
    return {
        "percentage": progress.percentage,
        "currentStep": progress.current_step,
        "totalSteps": progress.total_steps,
        "stepName": progress.step_name,
        "message": progress.message,
    }


def error_view(error: JobError | None) -> JSON | None:
    if error is None:
        return None
    category = error.category.value if error.category else None  # None: a cancel
    return {"category": category, "message": error.message, "stepIndex": error.step_index}


def step_view(step: StepResult) -> JSON:
    return {
        "index": step.index,
        "name": step.name,
        "success": step.success,
        "skipped": step.skipped,
        "durationMs": step.duration_ms,
        "error": step.error,
        "artifacts": list(step.artifacts),
        "consoleErrors": list(step.console_errors),
        "failedRequests": list(step.failed_requests),
        "httpStatus": step.http_status,
    }


def result_view(result: JobResult | None) -> JSON | None:
    if result is None:
        return None
    return {
        "success": result.success,
        "executionTimeMs": result.execution_time_ms,
        "attempt": result.attempt,
        "artifacts": list(result.artifacts),
        "artifactNotes": list(result.artifact_notes),
        "steps": [step_view(s) for s in result.steps],
    }


def job_view(job: Job) -> JSON:
    return {
        "id": job.job_id,
        "name": job.definition.name,
        "status": job.state.value,
        "priority": job.priority.value,
        "progress": progress_view(job.progress),
        "attempt": job.attempt,
        "maxAttempts": job.max_attempts,
        # Runs so far, reruns included: what artifact names count (`attempt` restarts at a rerun).
        "runs": job.runs,
        "tags": list(job.options.tags),
        "createdAt": iso(job.metadata.created_at_ms),
        "startedAt": iso(job.started_at_ms),
        "finishedAt": iso(job.finished_at_ms),
        "runId": job.metadata.run_id or None,
        "source": job.metadata.source.value,
        "scheduleId": job.metadata.schedule_id or None,
        "fireTime": iso(job.metadata.fire_time_ms),
        "workerId": job.worker_id,
        "error": error_view(job.error),
        "result": result_view(job.result),
    }


def progress_event_view(event: ProgressEvent) -> JSON:
    return {
        "jobId": event.job_id,
        "cursor": event.cursor,
        "status": event.state.value,
        "attempt": event.attempt,
        "terminal": event.terminal,
        "progress": progress_view(event.progress),
    }


def queue_event_view(event: QueueEvent) -> JSON:
    """A queue event; queue-level ones (paused, resumed) have no job, status or tenant (null)."""
    view: JSON = {
        "cursor": event.cursor,
        "kind": event.kind,
        "jobId": event.job_id or None,
        "status": event.state.value if event.state is not None else None,
        "tenant": event.tenant or None,
        "tags": list(event.tags),
        "at": iso(event.time_ms),
    }
    if event.percentage is not None:
        view["percentage"] = event.percentage
    if event.message:
        view["message"] = event.message
    return view


def _figures(figures: Figures) -> JSON:
    return {
        "waiting": figures.waiting,
        "active": figures.active,
        "completed": figures.completed,
        "failed": figures.failed,
        "delayed": figures.delayed,
        "paused": figures.paused,
        "totalProcessed": figures.total_processed,
        "totalFailed": figures.total_failed,
        "cancelled": figures.cancelled,
        "totalCancelled": figures.total_cancelled,
        "processingRate": figures.processing_rate,
        "avgProcessingTime": figures.avg_processing_time_ms,
        "lastProcessedAt": iso(figures.last_processed_at_ms),
        "deadLettered": figures.dead_lettered,
    }


def stats_view(stats: QueueStats) -> JSON:
    """A queue's figures (`tenant` null: the whole queue) with one entry per lane, high first."""
    return {
        "queue": stats.queue,
        **_figures(stats),
        "lanes": [{"priority": lane.priority.value, **_figures(lane)} for lane in stats.lanes],
        "tenant": stats.tenant or None,
    }


def health_view(health: QueueHealth) -> JSON:
    return {
        "status": health.status.value,
        "reasons": list(health.reasons),
        "stats": stats_view(health.stats) if health.stats is not None else None,
    }


def artifact_view(artifact: Artifact) -> JSON:
    return {
        "name": artifact.name,
        "contentType": artifact.content_type,
        "sizeBytes": artifact.size,
        "attempt": artifact.attempt,
        "stepIndex": artifact.step_index,
        "createdAt": iso(artifact.created_at_ms),
    }


def dead_letter_view(job: Job) -> JSON:
    return {
        "jobId": job.job_id,
        "name": job.definition.name,
        "reason": job.dead_letter_reason,
        "error": error_view(job.error),
        "attempts": job.attempt,
        "artifacts": list(job.result.artifacts) if job.result is not None else [],
        "deadLetteredAt": iso(job.dead_lettered_at_ms),
        "tags": list(job.options.tags),
    }


def run_test_view(test: RunTestOutcome) -> JSON:
    failing = test.failing_step
    return {
        "jobId": test.job_id,
        "name": test.name,
        "file": test.file,
        "status": test.state.value,
        "durationMs": test.duration_ms,
        "failingStep": failing.index if failing is not None else None,
        "failingStepName": failing.name if failing is not None else None,
        "error": error_view(test.error),
        "artifacts": list(test.result.artifacts) if test.result is not None else [],
        "tags": list(test.tags),
    }


def run_view(run: Run) -> JSON:
    counts = run.counts
    return {
        "id": run.run_id,
        "name": run.name,
        "state": run.state.value,
        "tests": [run_test_view(t) for t in run.tests],
        "counts": {state.value: counts[state] for state in JobState},
        "createdAt": iso(run.created_at_ms),
        "finishedAt": iso(run.finished_at_ms),
    }


def whoami_view(principal: Principal, *, auth_disabled: bool) -> JSON:
    return {"tenant": principal.tenant, "role": principal.role.label, "authDisabled": auth_disabled}


def notification_view(notification: Notification) -> JSON:
    """A schedule's or a rule's notification as shown (its URL masked already), without its secret."""
    return {
        "url": notification.url,
        "events": list(notification.events),
        "secretSet": bool(notification.secret),
        "afterFailures": notification.after_failures,
        "format": notification.format,
    }


def rule_view(rule: AlertRule) -> JSON:
    """An alert rule as shown (`shared.alerts.rules.shown`: its URLs masked)."""
    return {
        "id": rule.rule_id,
        "tag": rule.tag,
        "notifications": [notification_view(n) for n in rule.notifications],
        "createdAt": iso(rule.created_at_ms),
    }


def delivery_view(delivery: Delivery) -> JSON:
    """A webhook delivery as shown (`shared.alerts.deliveries.shown`: its URL masked)."""
    return {
        "id": delivery.delivery_id,
        "event": delivery.event,
        "url": delivery.url,
        "state": delivery.state.value,
        "testId": delivery.job_id or None,
        "scheduleId": delivery.schedule_id or None,
        "ruleId": delivery.rule_id or None,
        "attempts": delivery.attempts,
        "responseStatus": delivery.response_status or None,
        "responseBody": delivery.response_body,
        "error": delivery.error,
        "body": delivery.body,
        "createdAt": iso(delivery.created_at_ms),
        "lastAttemptAt": iso(delivery.last_attempt_at_ms),
        "nextAttemptAt": iso(delivery.next_attempt_at_ms),
    }


def schedule_view(schedule: Schedule) -> JSON:
    """A schedule as shown (its notifications' URLs masked already: `shared.schedules.rules.shown`)."""
    spec, timing = schedule.spec, schedule.spec.timing
    return {
        "id": schedule.schedule_id,
        "name": spec.name,
        "testName": spec.template.definition.name,
        "cron": timing.cron or None,
        "intervalMs": timing.interval_ms or None,
        "timezone": timing.timezone,
        "jitterMs": timing.jitter_ms,
        "overlap": spec.overlap.value,
        "catchupWindowMs": spec.catchup_window_ms,
        "paused": spec.paused,
        "note": spec.note,
        "tags": list(spec.template.options.tags),
        "notifications": [notification_view(n) for n in spec.notifications],
        "nextFires": [iso(ms) for ms in schedule.next_fires],
        "recentRuns": [
            {
                "fireTime": iso(run.fire_time_ms),
                "testId": run.job_id or None,
                "status": run.state.value if run.state is not None else None,
                "error": run.error,
                "testRemoved": run.removed,
                "skipped": run.skipped,
                "reason": run.reason,
                "triggered": run.triggered,
            }
            for run in schedule.recent_runs
        ],
        "fired": schedule.fired,
        "skipped": schedule.skipped,
        "missed": schedule.missed,
        "createdAt": iso(schedule.created_at_ms),
        "updatedAt": iso(schedule.updated_at_ms),
    }
