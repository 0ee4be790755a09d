"""A submit request turned into the command a job is made from: converted, validated, sealed.

Both front doors (gRPC `Submit` / `SubmitBatch`, REST `POST /api/v1/tests`) go through `SubmitChecks`,
so the rules are applied in one place. The same request, byte for byte, is checked once per process:
a CI pipeline submits the same tests again and again, and converting and validating a definition
cost about as much of the API's CPU as the rest of a unary Submit together. What is remembered is the
checked command, a frozen value that the jobs of a batch already shared; the job id, tenant, trace and
times are each job's own and come later.

Not remembered: a request that fails (each call raises anew, naming its own field path), one with
secret values (each job seals its own, with a fresh nonce), and requests longer than `KEPT_MAX_BYTES`.
Validation depends on the command alone, never on settings or the caller, so a remembered command is
as valid for the next caller as for the first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from shared.errors import FieldViolation, ValidationError
from shared.model import SubmitCommand
from shared.sealed import Sealer, seal_command
from shared.validation import validate_submit

__all__ = ["KEPT", "KEPT_MAX_BYTES", "SubmitChecks"]

#: Checked commands remembered per `SubmitChecks`, the least recently used dropped first, and the
#: longest request remembered: at most ~256 × 32 KB of request bytes and the commands they became.
KEPT = 256
KEPT_MAX_BYTES = 32_768


class SubmitChecks:
    def __init__(self, sealer: Sealer | None, *, kept: int = KEPT) -> None:
        """Args:
        sealer: seals secret values (None: a request with secret values is refused).
        kept: how many checked commands to remember (0: none).
        """
        self._sealer = sealer
        self._kept_max = kept
        self._kept: OrderedDict[bytes, SubmitCommand] = OrderedDict()

    def command(self, raw: bytes | None, convert: Callable[[], SubmitCommand], *, prefix: str = "") -> SubmitCommand:
        """The checked, sealed command of a request.

        Args:
            raw: the request's bytes, the same for the same request (None: not remembered).
            convert: the request as domain values (`shared.edge.convert`, the REST parser); it may
                raise `ValidationError` for a shape it cannot convert, with paths inside the request.
            prefix: prepended to every field path of an error, e.g. ``"requests[4]."``.

        Raises:
            ValidationError: from converting, validating or sealing.
        """
        if raw is not None:
            known = self._kept.get(raw)
            if known is not None:
                self._kept.move_to_end(raw)
                return known
        try:
            command = convert()
        except ValidationError as exc:  # a shape the conversion refused (an unknown enum number)
            if not prefix:
                raise
            found = [FieldViolation(f"{prefix}{v.field}", v.description) for v in exc.violations]
            raise ValidationError(found) from None
        validate_submit(command, prefix=prefix)
        sealed = seal_command(command, self._sealer, prefix=prefix)
        if raw is not None and sealed is command and self._kept_max and len(raw) <= KEPT_MAX_BYTES:
            self._kept[raw] = command
            if len(self._kept) > self._kept_max:
                self._kept.popitem(last=False)
        return sealed
