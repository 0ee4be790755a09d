"""Who is calling: the tenant of a request.

Every job belongs to a tenant, and the tenant comes from the caller's credentials only, never
from the request body. API keys are not implemented yet: until they are, every caller acts as
the single tenant `default` (the behaviour `SENTINEL_AUTH=disabled` will keep).
"""

from __future__ import annotations

import grpc

DEFAULT_TENANT = "default"


def tenant_of(context: grpc.aio.ServicerContext) -> str:
    """The tenant the caller acts for."""
    return DEFAULT_TENANT
