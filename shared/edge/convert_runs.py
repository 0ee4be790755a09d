"""Runs between protobuf and the domain, part of the API's conversion layer.

Re-exported by `shared.edge.convert`; other code imports these from there. Nothing here may
import grpc.
"""

from __future__ import annotations

from protos import sentinel_pb2 as pb
from shared.edge.convert_enums import JOB_STATE_TO_PROTO, state_to_proto
from shared.edge.convert_jobs import _u32, job_error_to_proto, step_result_to_proto, timestamp
from shared.model import Run, RunState, RunTestOutcome

__all__ = ["RUN_STATE_TO_PROTO", "run_test_to_proto", "run_to_proto"]

RUN_STATE_TO_PROTO: dict[RunState, pb.RunState] = {
    RunState.RUNNING: pb.RUN_STATE_RUNNING,
    RunState.PASSED: pb.RUN_STATE_PASSED,
    RunState.FAILED: pb.RUN_STATE_FAILED,
    RunState.CANCELLED: pb.RUN_STATE_CANCELLED,
}


def run_test_to_proto(test: RunTestOutcome) -> pb.RunTestResult:
    """One test of a run: its state, how long it took, where it failed, what it left and its job's tags."""
    failing = test.failing_step
    result = test.result
    return pb.RunTestResult(
        job_id=test.job_id,
        name=test.name,
        file=test.file,
        state=state_to_proto(test.state),
        duration_ms=_u32(test.duration_ms),
        attempt=_u32(test.attempt),
        failing_step=failing.index if failing is not None else -1,
        failing_step_name=failing.name if failing is not None else "",
        error=job_error_to_proto(test.error) if test.error is not None else None,
        artifacts=result.artifacts if result is not None else (),
        steps=[step_result_to_proto(s) for s in result.steps] if result is not None else [],
        artifact_notes=result.artifact_notes if result is not None else (),
        finished_at=timestamp(test.finished_at_ms),
        tags=test.tags,
    )


def run_to_proto(run: Run) -> pb.Run:
    """A run with its counts by state and every test, in the order submitted."""
    counts = {state: _u32(n) for state, n in run.counts.items()}
    return pb.Run(
        run_id=run.run_id,
        name=run.name,
        state=RUN_STATE_TO_PROTO[run.state],
        created_at=timestamp(run.created_at_ms),
        finished_at=timestamp(run.finished_at_ms),
        max_parallel=_u32(run.max_parallel),
        total=_u32(len(run.tests)),
        counts=pb.RunCounts(**{state.value: n for state, n in counts.items() if state in JOB_STATE_TO_PROTO}),
        tests=[run_test_to_proto(t) for t in run.tests],
        tenant_id=run.tenant_id,
    )
