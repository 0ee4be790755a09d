"""One attempt's evidence: made in a private spool directory, uploaded as soon as each file exists.

A job's artifacts are named `<attempt>/<file>` (`1/step-04-failure.png`, `1/trace.zip`) and kept in
the artifact store under `<job id>/<name>`. The executor makes each file in this attempt's own
spool directory, uploads it at once (so what a run made before its executor died is already
stored) and deletes the local copy, uploaded or not: the executor's disk keeps nothing.

Evidence is a courtesy to the user, never a reason for a test to fail: an unreachable store, a
refused upload or a size cap becomes a note (`JobResult.artifact_notes`), and the artifact is
left out of the result's names. A store that failed (did not answer, could not write) is not asked
again in the same attempt: each later file is noted at once, so an outage costs a run one store
timeout, not one per file.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from shared.artifact_store import ArtifactStore
from shared.artifacts import artifact_key, content_type_of
from shared.errors import ArtifactStoreUnavailable, LimitError, ValidationError

__all__ = ["Evidence"]

log = logging.getLogger(__name__)

#: Notes kept per attempt; more would only repeat the same outage.
MAX_NOTES = 20

#: Spool roots made already by this process (a spool made later makes its root again if it went).
_ROOTS: set[Path] = set()


@dataclass
class Evidence:
    """The artifacts of one attempt of one job. Open with `Evidence.open`; `close` deletes the spool.

    Attributes:
        names: Every artifact stored so far, in the order made (`<attempt>/<file>`).
        notes: What was not kept, and why.
    """

    store: ArtifactStore | None
    job_id: str
    attempt: int
    spool: Path
    max_job_bytes: int
    names: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _stored_bytes: int | None = None  # the job's bytes in the store, every attempt; learned on first upload
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _made: bool = False  # whether the spool directory exists yet: it is made when a file needs it
    _store_down: str = ""  # why the store failed in this attempt: later files are not tried

    @classmethod
    def open(
        cls, store: ArtifactStore | None, *, job_id: str, attempt: int, spool_root: Path, max_job_bytes: int
    ) -> Evidence:
        """A fresh spool directory under `spool_root` (created if missing) for one attempt, made only
        when a file first needs it: most runs that pass make no file at all."""
        if spool_root not in _ROOTS:
            spool_root.mkdir(parents=True, exist_ok=True)
            _ROOTS.add(spool_root)
        spool = spool_root / f"{job_id}-{attempt}-{secrets.token_hex(6)}"
        return cls(store=store, job_id=job_id, attempt=attempt, spool=spool, max_job_bytes=max_job_bytes)

    def path(self, file: str) -> Path:
        """Where to make `file` (one plain name) before `keep` uploads it."""
        if not self._made:
            self.spool.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._made = True
        return self.spool / file

    def name(self, file: str) -> str:
        return f"{self.attempt}/{file}"

    def note(self, text: str) -> None:
        """Record why some evidence was not kept (shown on the result)."""
        if len(self.notes) < MAX_NOTES:
            self.notes.append(text)
        log.info("job %s attempt %d: %s", self.job_id, self.attempt, text)

    async def keep(self, file: str, *, content_type: str | None = None) -> str | None:
        """Upload `path(file)` as `<attempt>/<file>` and delete the local copy.

        Returns:
            The artifact's name, or None when it was not kept (the reason is in `notes`).
        """
        local = self.path(file)
        name = self.name(file)
        try:
            return await self._upload(local, name, content_type or content_type_of(file))
        finally:
            await asyncio.to_thread(local.unlink, True)

    async def _upload(self, local: Path, name: str, content_type: str) -> str | None:
        if self.store is None:
            self.note(f"{name} not kept: no artifact store is configured")
            return None
        async with self._lock:  # the job cap counts every upload, one at a time
            if self._store_down:
                earlier = f"the artifact store failed earlier in this attempt ({self._store_down})"
                self.note(f"{name} not kept: not tried, {earlier}")
                return None
            try:
                size = (await asyncio.to_thread(local.stat)).st_size
                stored = await self._job_bytes()
                if stored + size > self.max_job_bytes:
                    self.note(
                        f"{name} not kept: the job's artifacts would exceed {self.max_job_bytes} bytes "
                        "(SENTINEL_JOB_ARTIFACTS_MAX_BYTES)"
                    )
                    return None
                await self.store.put_file(artifact_key(self.job_id, name), local, content_type=content_type)
            except (ArtifactStoreUnavailable, LimitError, ValidationError, OSError) as exc:
                self.note(f"{name} not kept: {exc}")
                if isinstance(exc, ArtifactStoreUnavailable):
                    self._store_down = f"{str(exc)[:120]}…" if len(str(exc)) > 120 else str(exc)
                return None
            self._stored_bytes = stored + size
        self.names.append(name)
        return name

    async def _job_bytes(self) -> int:
        if self._stored_bytes is None:
            assert self.store is not None
            # Earlier attempts count too: the cap is per job.
            self._stored_bytes = sum(info.size for info in await self.store.list(self.job_id))
        return self._stored_bytes

    async def close(self) -> None:
        """Delete the spool directory and whatever is still in it (a file that was never kept)."""
        if self._made:
            await asyncio.to_thread(shutil.rmtree, self.spool, True)
