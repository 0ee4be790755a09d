"""What a Redis call raises while Redis, or a cluster's map of its slots, is unavailable.

redis-py's errors derive from `RedisError`, but not all of its cluster client's: a slot no live node
serves (during a failover, until a replica is promoted) raises `SlotNotCoveredError`, no reachable
node `RedisClusterUnreachableError`, both `RedisClusterException`s. A loop that must outlive an
outage — claiming, heartbeats, the stream hub, the alerts consumer, the scheduler — catches
`REDIS_ERRORS`; one that caught `RedisError` alone ended at the first failover, silently.

`REDIS_UNREACHABLE` is the narrower set that means Redis (or the cluster) did not answer, as opposed
to refusing a command: what a call answers `UNAVAILABLE` for, what makes hybrid mode run a job
directly, what a service starts through (unready) rather than dying of.
"""

from __future__ import annotations

from redis.exceptions import (
    ClusterDownError,
    RedisClusterException,
    RedisClusterUnreachableError,
    RedisError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

REDIS_ERRORS: tuple[type[Exception], ...] = (RedisError, RedisClusterException)
#: The same, and an OSError (a socket that failed under the client, a timeout).
REDIS_OR_OS_ERRORS: tuple[type[Exception], ...] = (*REDIS_ERRORS, OSError)
#: Redis, or a cluster's slot or node, did not answer (CLUSTERDOWN, TRYAGAIN during a failover or a
#: reshard, no reachable node, a slot no node serves), or the socket under the client failed.
REDIS_UNREACHABLE: tuple[type[Exception], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    RedisClusterUnreachableError,
    SlotNotCoveredError,
    ClusterDownError,
    TryAgainError,
    OSError,
    TimeoutError,
)
