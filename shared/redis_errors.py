"""What a Redis call raises while Redis, or a cluster's map of its slots, is unavailable.

redis-py's errors derive from `RedisError`, but not all of its cluster client's: a slot no live node
serves (during a failover, until a replica is promoted) raises `SlotNotCoveredError`, no reachable
node `RedisClusterUnreachableError`, both `RedisClusterException`s. A loop that must outlive an
outage — claiming, heartbeats, the stream hub, the alerts consumer, the scheduler — catches
`REDIS_ERRORS`; one that caught `RedisError` alone ended at the first failover, silently.
"""

from __future__ import annotations

from redis.exceptions import RedisClusterException, RedisError

REDIS_ERRORS: tuple[type[Exception], ...] = (RedisError, RedisClusterException)
#: The same, and an OSError (a socket that failed under the client, a timeout).
REDIS_OR_OS_ERRORS: tuple[type[Exception], ...] = (*REDIS_ERRORS, OSError)
