"""Writing new jobs: submit.lua's calls, a batch's chunks, and unary submits gathered into shared calls.

A submit.lua call carries the jobs of one tenant (so of one shard): the members they share once, then
each job's keys and hash fields as plain ARGV strings (see the script's header). `submit_each` writes
any number of jobs in one pipelined round trip, `SUBMIT_CHUNK` jobs a call; `Submitter` gathers the
unary submits of one process that arrive while a write is in flight into the next one. No grpc and
no protobuf here; the rules of a job (validation, sealing) are applied before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from shared import codec
from shared.clock import now_ms
from shared.model import JobMetadata, JobState, Progress, SubmitCommand
from shared.queue import Queue
from shared.schema import JobField
from shared.script_calls import call_each
from shared.settings import QueueSettings

#: How long an idempotency key maps to its job.
IDEMPOTENCY_TTL_S = 24 * 3600


@dataclass(frozen=True)
class Submitted:
    job_id: str
    duplicate: bool
    limited: bool = False  # refused: the tenant already has its maximum of queued jobs

    @classmethod
    def from_reply(cls, reply: Sequence[object]) -> Submitted:
        code = int(str(reply[1]))
        return cls(job_id=str(reply[0]), duplicate=code == 1, limited=code == -1)

    @classmethod
    def from_replies(cls, reply: Sequence[object]) -> list[Submitted]:
        """Each job's outcome from one submit.lua reply (id, code, id, code, ...)."""
        return [cls.from_reply(reply[i : i + 2]) for i in range(0, len(reply), 2)]


#: Most jobs one submit.lua call carries: a batch goes as pipelined calls of this many, so the
#: script's fixed cost (decoding its context, defining its libraries) is paid once per chunk, while
#: one call never holds Redis for long (about 30 µs a job).
SUBMIT_CHUNK = 100

#: A command object (by id), its tenant, its run and whether it is held: what a job's hash fields
#: depend on within one write, besides the job's id and trace (each job's own: they are set on a
#: copy). The tenant because one checked command serves every tenant that sends the same request
#: (`shared.submit_checks`), and one write carries several tenants' Submits.
_RecordKey = tuple[int, str, str, bool]


class SubmitCall:
    """The KEYS and ARGV of one submit.lua call: jobs of one tenant added one by one (`add`).

    The members the jobs share (tenant, time, the queue's layout and limits, the names of a job
    hash's fields) go once in ARGV[1]; each job adds its keys and a group of plain ARGV strings,
    its hash's values only when its fields are the shared names (see submit.lua's header): each
    argument costs the client's encoder and Redis's parser, and a batch has tens of thousands.
    """

    def __init__(
        self,
        queue: Queue,
        *,
        tenant: str,
        now: int,
        records: dict[_RecordKey, dict[str, str]] | None = None,
    ) -> None:
        """Args:
        records: the hash fields made so far for each command object (with its tenant, run and hold),
            shared by the calls of one batch: a command given again has its fields made once (but
            the id and the trace).
        """
        self.queue = queue.for_tenant(tenant)
        self._records = records
        self.tenant = tenant
        self.now = now
        self.keys: list[str] = []
        self._groups: list[str] = []
        self._names: list[str] | None = None  # the field names the first job's hash has
        self._last: _RecordKey | None = None  # what the previous job's hash was made from
        self.count = 0

    @property
    def args(self) -> list[str]:
        """ARGV: the shared context, then each job's group."""
        return [self.queue.context(tenant=self.tenant, now=self.now, fields=self._names or []), *self._groups]

    def add(
        self,
        command: SubmitCommand,
        *,
        trace: str,
        job_id: str = "",
        run_id: str = "",
        held: bool = False,
    ) -> str:
        """Add a job; returns its id."""
        job_id = job_id or self.queue.new_id()
        options = command.options
        known = (id(command), self.tenant, run_id, held)
        call_keys = submit_keys(self.queue, command, job_id=job_id, tenant=self.tenant)
        self.keys += call_keys
        due = self.now + options.delay_ms if options.delay_ms > 0 else 0
        ttl = IDEMPOTENCY_TTL_S if options.idempotency_key else 0
        held_flag = "1" if held else "0"
        self._groups += [str(len(call_keys)), job_id, options.priority.value, str(due), str(ttl), held_flag, trace]
        self.count += 1
        if self._records is not None and known == self._last:
            self._groups.append("=")  # the previous job's hash but for the id and trace: a repeated command
            return job_id
        record = self._records.get(known) if self._records is not None else None
        if record is None:
            record = new_job_record(
                self.queue.settings,
                command,
                job_id=job_id,
                tenant=self.tenant,
                trace=trace,
                now=self.now,
                run_id=run_id,
                held=held,
            )
            if self._records is not None:
                self._records[known] = record
        else:
            record = {**record, JobField.ID: job_id, JobField.TRACE: trace}
        names = list(record)
        if self._names is None:
            self._names = names
        if names == self._names:
            self._groups.append(str(len(names)))
            self._groups += record.values()
            self._last = known
        else:  # a hash of other fields: its names and values in pairs
            self._groups.append(str(-2 * len(names)))
            self._groups += [part for pair in record.items() for part in pair]
            self._last = None
        return job_id


def submit_call(
    queue: Queue,
    command: SubmitCommand,
    *,
    tenant: str,
    trace: str,
    now: int,
    job_id: str = "",
    run_id: str = "",
    held: bool = False,
) -> tuple[list[str], list[str]]:
    """KEYS and ARGV of submit.lua for one command (on the tenant's shard); `held`: a run's job its
    max_parallel holds back. A `job_id` given must be one of the tenant's shard (`Queue.new_id`)."""
    call = SubmitCall(queue, tenant=tenant, now=now)
    call.add(command, trace=trace, job_id=job_id, run_id=run_id, held=held)
    return call.keys, call.args


def submit_keys(queue: Queue, command: SubmitCommand, *, job_id: str, tenant: str) -> list[str]:
    """submit_job.lua's keys for a job (`queue`: the tenant's shard)."""
    options = command.options
    keys = queue.keys
    idem = options.idempotency_key
    return [
        keys.job(job_id),
        keys.stream(options.priority),
        keys.delayed,
        keys.idempotency(tenant, idem) if idem else keys.idempotency(tenant, ""),
        keys.tenant_jobs(tenant),
        keys.events,
        keys.progress(job_id),
        *(keys.tenant_tag(tenant, tag) for tag in dict.fromkeys(options.tags)),
    ]


def submit_parts(
    queue: Queue,
    command: SubmitCommand,
    *,
    tenant: str,
    trace: str,
    now: int,
    job_id: str = "",
    run_id: str = "",
    held: bool = False,
) -> tuple[list[str], dict[str, object]]:
    """The keys and the context members of a submit (submit_job.lua), for a script that submits a job
    as one of its steps (a schedule's fire). The keys are those of the tenant's shard: a script
    submitting a job must be called on that shard (with that shard's context)."""
    queue = queue.for_tenant(tenant)
    options = command.options
    job_id = job_id or queue.new_id()
    due = now + options.delay_ms if options.delay_ms > 0 else 0
    fields = new_job_record(
        queue.settings, command, job_id=job_id, tenant=tenant, trace=trace, now=now, run_id=run_id, held=held
    )
    members: dict[str, object] = {
        "now": now,
        "id": job_id,
        "lane": options.priority.value,
        "tenant": tenant,
        "trace": trace,
        "due": due,
        "idempotency_ttl": IDEMPOTENCY_TTL_S if options.idempotency_key else 0,
        "job": fields,
        "held": held,
    }
    return submit_keys(queue, command, job_id=job_id, tenant=tenant), members


def new_job_record(
    settings: QueueSettings,
    command: SubmitCommand,
    *,
    job_id: str,
    tenant: str,
    trace: str,
    now: int,
    run_id: str = "",
    held: bool = False,
) -> dict[str, str]:
    """A new job's record (its hash fields), with the queue's defaults for attempts and timeout.

    Queued jobs store it in Redis; direct ones (`shared.direct`) hand it to an executor as it is."""
    options = command.options
    due = now + options.delay_ms if options.delay_ms > 0 else 0
    return codec.new_job_fields(
        job_id=job_id,
        state=JobState.SCHEDULED if due or held else JobState.PENDING,
        definition=command.definition,
        options=options,
        metadata=JobMetadata(
            tenant_id=tenant,
            user_id=command.user_id,
            request_id=command.request_id,
            source=command.source,
            created_at_ms=now,
            run_id=run_id,
            schedule_id=command.schedule_id,
            fire_time_ms=command.fire_time_ms,
        ),
        max_attempts=options.max_attempts or settings.default_attempts,
        timeout_ms=options.timeout_ms or settings.default_timeout_ms(options.priority),
        scheduled_for_ms=due,
        progress=Progress(total_steps=len(command.definition.steps), message="Queued", updated_at_ms=now),
        trace=trace,
    )


@dataclass(frozen=True)
class NewJob:
    """A validated job to write: its command, its tenant and the trace it carries."""

    command: SubmitCommand
    tenant: str
    trace: str = ""


async def submit_each(queue: Queue, new: Sequence[NewJob]) -> list[Submitted]:
    """Write jobs in one pipelined round trip: a submit.lua call per tenant and `SUBMIT_CHUNK` jobs,
    each call atomic, a tenant's jobs in the order given; on one Redis each call is sent as soon as
    it is made (`shared.script_calls`), so Redis runs one while the next is made. Returns each job's
    outcome, in order; a job its tenant's queued-job limit refused is `limited`. The same command
    object given more than once has its hash fields made once (each job's id and trace set on a copy)."""
    if not new:
        return []
    now = now_ms()
    by_tenant: dict[str, list[int]] = {}
    for index, job in enumerate(new):
        by_tenant.setdefault(job.tenant, []).append(index)
    order: list[int] = []
    records: dict[_RecordKey, dict[str, str]] = {}  # `new` keeps each command, hence its id, alive

    def calls() -> Iterator[SubmitCall]:
        """Each call made when it is asked for: on one Redis it is sent before the next is made."""
        for tenant, indexes in by_tenant.items():
            for start in range(0, len(indexes), SUBMIT_CHUNK):
                chunk = indexes[start : start + SUBMIT_CHUNK]
                call = SubmitCall(queue, tenant=tenant, now=now, records=records)
                for index in chunk:
                    call.add(new[index].command, trace=new[index].trace)
                order.extend(chunk)
                yield call

    replies = await call_each(queue.redis, queue.scripts.submit, ((c.keys, c.args) for c in calls()))
    outcomes = [done for reply in replies for done in Submitted.from_replies(reply)]
    result: list[Submitted | None] = [None] * len(new)
    for index, done in zip(order, outcomes, strict=True):
        result[index] = done
    return [done for done in result if done is not None]


@dataclass
class _Waiting:
    job: NewJob
    outcome: asyncio.Future[Submitted]


#: Event-loop turns a write lets pass before it takes the submits waiting. A gRPC call takes a few
#: turns from being taken up to reaching `Submitter.submit` (the accept task, the handler's task, the
#: interceptors), so calls that arrived together reach the same write: with 64 unary Submits in
#: flight a write carried ~1.25 jobs when it took what was there at once, and the API spent ~100 µs
#: of CPU a job on writes (the round trip, the script call's context, the pool). Three turns cost a
#: lone submit a few µs when the loop is idle; no timer is involved.
GATHER_TURNS = 3


class Submitter:
    """One process's unary submits, written together: the submits that arrive while a write is in
    flight, or in the loop turns before it starts (`GATHER_TURNS`), go in one write (`submit_each`:
    one round trip, a script call per tenant and chunk).

    A lone submit is written within a few loop turns, so none waits for a timer; under load each
    script call carries many jobs, which costs Redis and the API far less per job than a call each.
    Each job is as atomic as before (its call is), and submits with one idempotency key still agree
    on one job.
    """

    def __init__(self, queue: Queue) -> None:
        self._queue = queue
        self._waiting: list[_Waiting] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, command: SubmitCommand, *, tenant: str, trace: str = "") -> Submitted:
        """Write one job (with the others waiting now); its outcome, `limited` when refused."""
        outcome: asyncio.Future[Submitted] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(NewJob(command, tenant, trace), outcome))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write())
        return await outcome

    async def _write(self) -> None:
        try:
            while self._waiting:
                for _ in range(GATHER_TURNS):
                    await asyncio.sleep(0)
                taken, self._waiting = self._waiting, []
                try:
                    outcomes = await submit_each(self._queue, [w.job for w in taken])
                except asyncio.CancelledError:
                    for w in taken:
                        w.outcome.cancel()
                    raise
                except Exception as exc:  # each submit fails with the write's error, as its own call would
                    for w in taken:
                        if not w.outcome.done():
                            w.outcome.set_exception(exc)
                    continue
                for w, done in zip(taken, outcomes, strict=True):
                    if not w.outcome.done():  # its caller may have gone (a cancelled RPC)
                        w.outcome.set_result(done)
        finally:
            self._writer = None
            for w in self._waiting:  # only when cancelled: nothing writes these any more
                w.outcome.cancel()
            self._waiting = []
