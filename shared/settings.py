"""Configuration from the environment: one frozen dataclass per concern.

Each class has one `from_env(environ)` constructor and nothing else in Sentinel reads
`os.environ`. A bad value raises `ConfigError` naming the variable and what it expected.
Variable names and defaults follow Sentinel's original queue design (`QUEUE_CONCURRENCY=5`, ...).
"""

from __future__ import annotations

import enum
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from shared.errors import ConfigError
from shared.model import Priority
from shared.navigation_policy import NavigationPolicy

Environ = Mapping[str, str]


def _int(env: Environ, name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer ≥ {minimum}, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be an integer ≥ {minimum}, got {raw!r}")
    return value


def _bool(env: Environ, name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _port(env: Environ, name: str, default: int) -> int:
    value = _int(env, name, default)
    if value > 65535:
        raise ConfigError(f"{name} must be a port number 0..65535, got {value}")
    return value


@dataclass(frozen=True)
class RedisSettings:
    url: str = "redis://localhost:6379/0"
    configured: bool = False  # whether the environment named a Redis at all
    # SENTINEL_ALLOW_EVICTION: start even when Redis's maxmemory-policy lets it evict keys (see
    # shared.redis_policy); the services refuse to otherwise.
    allow_eviction: bool = False
    cluster: bool = False  # REDIS_CLUSTER: the URL names any node of a Redis Cluster

    @classmethod
    def from_env(cls, environ: Environ = os.environ) -> RedisSettings:
        settings = cls._from_env(environ)
        if not _bool(environ, "REDIS_CLUSTER", False):
            return settings
        if settings.url.startswith("unix://"):
            raise ConfigError(
                "REDIS_CLUSTER=true needs a redis:// or rediss:// REDIS_URL (a node's address), not unix://"
            )
        db = urlsplit(settings.url).path.strip("/") or "0"
        if db != "0":
            variable = "REDIS_URL" if environ.get("REDIS_URL", "").strip() else "REDIS_DB"
            why = f"a Redis Cluster has database 0 only; {variable} names database {db}"
            raise ConfigError(f"REDIS_CLUSTER=true: {why}")
        return replace(settings, cluster=True)

    @classmethod
    def _from_env(cls, environ: Environ) -> RedisSettings:
        allow_eviction = _bool(environ, "SENTINEL_ALLOW_EVICTION", False)
        url = environ.get("REDIS_URL", "").strip()
        if url:
            if not url.startswith(("redis://", "rediss://", "unix://")):
                raise ConfigError(f"REDIS_URL must start with redis://, rediss:// or unix://, got {url!r}")
            _check_redis_url(url)
            return cls(url=url, configured=True, allow_eviction=allow_eviction)
        host = environ.get("REDIS_HOST", "").strip()
        configured = bool(host or environ.get("REDIS_PORT", "").strip())
        port = _port(environ, "REDIS_PORT", 6379)
        db = _int(environ, "REDIS_DB", 0)
        password = environ.get("REDIS_PASSWORD", "")
        username = environ.get("REDIS_USERNAME", "").strip()  # a Redis 6+ ACL user
        auth = f"{quote(username, safe='')}:{quote(password, safe='')}@" if password or username else ""
        scheme = "rediss" if _bool(environ, "REDIS_TLS", False) else "redis"
        ca = environ.get("REDIS_TLS_CA", "").strip()
        query = f"?ssl_ca_certs={quote(ca, safe='')}" if ca and scheme == "rediss" else ""
        return cls(
            url=f"{scheme}://{auth}{host or 'localhost'}:{port}/{db}{query}",
            configured=configured,
            allow_eviction=allow_eviction,
        )


def _check_redis_url(url: str) -> None:
    """ConfigError unless a redis:// or rediss:// URL's port is a port and its path a database
    number (redis-py would take `/abc` for database 0, silently)."""
    if url.startswith("unix://"):
        return
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 (parsing it is the check)
    except ValueError:
        raise ConfigError("REDIS_URL's port must be a number from 0 to 65535") from None  # the URL may hold a password
    db = parts.path.strip("/")
    if db and not db.isdigit():
        raise ConfigError(
            "REDIS_URL's path must be a database number (redis://host:6379/0); a password holding '/'"
            " must be written %2F"
        )  # the path is not shown: it may hold the rest of such a password


#: Retries and base delay (ms) per error category: Sentinel's original design.
DEFAULT_RETRY_POLICIES: dict[str, tuple[int, int]] = {
    "network": (3, 5_000),
    "timeout": (2, 10_000),
    "browser": (2, 3_000),
    "system": (1, 60_000),
    "validation": (0, 0),
    "policy": (0, 0),
    "assertion": (0, 0),
}


def _retry_policies(env: Environ) -> dict[str, tuple[int, int]]:
    """QUEUE_RETRY_<CATEGORY>=<retries>:<delay ms> overrides, e.g. QUEUE_RETRY_NETWORK=5:2000."""
    policies = dict(DEFAULT_RETRY_POLICIES)
    for category in ("network", "timeout", "browser", "system"):
        name = f"QUEUE_RETRY_{category.upper()}"
        raw = env.get(name, "").strip()
        if not raw:
            continue
        retries, _, delay = raw.partition(":")
        try:
            value = (int(retries), int(delay or policies[category][1]))
        except ValueError:
            raise ConfigError(f"{name} must be <retries>:<delay ms>, e.g. 3:5000, got {raw!r}") from None
        if value[0] < 0 or value[1] < 0:
            raise ConfigError(f"{name} must not be negative, got {raw!r}")
        policies[category] = value
    return policies


@dataclass(frozen=True)
class RateLimit:
    """At most `max` jobs start in any `duration_ms` (a sliding window); `max` 0: no limit."""

    max: int = 0
    duration_ms: int = 0

    @property
    def enabled(self) -> bool:
        return self.max > 0

    @classmethod
    def from_env(cls, environ: Environ, prefix: str) -> RateLimit:
        """`<prefix>_MAX` and `<prefix>_DURATION_MS`; a max needs a duration of at least 1 ms."""
        most = _int(environ, f"{prefix}_MAX", 0)
        duration = _int(environ, f"{prefix}_DURATION_MS", 0)
        if most and duration < 1:
            raw = environ.get(f"{prefix}_DURATION_MS", "")
            raise ConfigError(f"{prefix}_DURATION_MS must be an integer ≥ 1 when {prefix}_MAX is set, got {raw!r}")
        return cls(max=most, duration_ms=duration if most else 0)


@dataclass(frozen=True)
class RateLimitSettings:
    """Jobs started per interval: queue-wide, and per tenant (which needs fair share's backlogs)."""

    queue: RateLimit = RateLimit()
    tenant: RateLimit = RateLimit()

    @classmethod
    def from_env(cls, environ: Environ = os.environ) -> RateLimitSettings:
        return cls(
            queue=RateLimit.from_env(environ, "QUEUE_RATE_LIMIT"),
            tenant=RateLimit.from_env(environ, "TENANT_RATE_LIMIT"),
        )


@dataclass(frozen=True)
class QueueSettings:
    name: str = "default"
    concurrency: int = 5
    default_attempts: int = 3
    backoff_delay_ms: int = 2000
    backoff_max_ms: int = 300_000
    remove_on_complete: int = 50
    remove_on_fail: int = 20
    retention_days: int = 7
    max_waiting: int = 100
    max_active: int = 50
    max_failed: int = 20
    progress_maxlen: int = 1000
    events_maxlen: int = 10_000
    lease_ms: int = 30_000
    stalled_interval_ms: int = 30_000
    max_stalled_count: int = 1
    clean_interval_ms: int = 5_000
    stale_after_ms: int = 300_000
    retry_policies: dict[str, tuple[int, int]] = field(default_factory=lambda: dict(DEFAULT_RETRY_POLICIES))
    tenant_max_queued: int = 10_000  # a tenant's jobs waiting in the lanes; 0: no limit
    tenant_max_running: int = 0  # a tenant's jobs running at once; 0: no limit
    tenant_window: int = 10  # a tenant's entries at the head of a lane at once; 0: no fair share
    run_retention_days: int = 30  # how long a finished run's summary is kept (its jobs may go sooner)
    rate_limits: RateLimitSettings = RateLimitSettings()
    tenant_max_schedules: int = 100  # a tenant's schedules; 0: no limit
    shards: int = 1  # SENTINEL_QUEUE_SHARDS: hash tags the queue is spread over (1: the one tag `{name}`)

    @property
    def run_retention_ms(self) -> int:
        return self.run_retention_days * 86_400_000

    @classmethod
    def from_env(cls, environ: Environ = os.environ) -> QueueSettings:
        name = environ.get("SENTINEL_QUEUE", "default").strip() or "default"
        if any(c in name for c in "{}: "):
            raise ConfigError(f"SENTINEL_QUEUE must not contain '{{', '}}', ':' or spaces, got {name!r}")
        rate_limits = RateLimitSettings.from_env(environ)
        tenant_window = _int(environ, "SENTINEL_TENANT_WINDOW", 10)
        if rate_limits.tenant.enabled and tenant_window == 0:
            raise ConfigError(
                "TENANT_RATE_LIMIT_MAX needs fair share: a tenant's held jobs wait in its backlog, "
                "which SENTINEL_TENANT_WINDOW=0 turns off"
            )
        return cls(
            name=name,
            concurrency=_int(environ, "QUEUE_CONCURRENCY", 5, minimum=1),
            default_attempts=_int(environ, "QUEUE_DEFAULT_ATTEMPTS", 3, minimum=1),
            backoff_delay_ms=_int(environ, "QUEUE_BACKOFF_DELAY", 2000),
            backoff_max_ms=_int(environ, "QUEUE_BACKOFF_MAX", 300_000),
            remove_on_complete=_int(environ, "QUEUE_REMOVE_ON_COMPLETE", 50),
            remove_on_fail=_int(environ, "QUEUE_REMOVE_ON_FAIL", 20),
            retention_days=_int(environ, "QUEUE_RETENTION_DAYS", 7),
            max_waiting=_int(environ, "QUEUE_MAX_WAITING", 100),
            max_active=_int(environ, "QUEUE_MAX_ACTIVE", 50),
            max_failed=_int(environ, "QUEUE_MAX_FAILED", 20),
            lease_ms=_int(environ, "QUEUE_LEASE_MS", 30_000, minimum=300),
            stalled_interval_ms=_int(environ, "QUEUE_STALLED_INTERVAL_MS", 30_000, minimum=100),
            max_stalled_count=_int(environ, "QUEUE_MAX_STALLED_COUNT", 1),
            clean_interval_ms=_int(environ, "QUEUE_CLEAN_INTERVAL_MS", 5_000, minimum=100),
            stale_after_ms=_int(environ, "QUEUE_STALE_AFTER_MS", 300_000, minimum=1),
            retry_policies=_retry_policies(environ),
            tenant_max_queued=_int(environ, "SENTINEL_TENANT_MAX_QUEUED", 10_000),
            tenant_max_running=_int(environ, "SENTINEL_TENANT_MAX_RUNNING", 0),
            tenant_window=tenant_window,
            run_retention_days=_int(environ, "SENTINEL_RUN_RETENTION_DAYS", 30, minimum=1),
            rate_limits=rate_limits,
            tenant_max_schedules=_int(environ, "SENTINEL_TENANT_MAX_SCHEDULES", 100),
            events_maxlen=_int(environ, "SENTINEL_EVENTS_MAXLEN", 10_000, minimum=1000),
            shards=_shards(environ),
        )

    def default_timeout_ms(self, priority: Priority) -> int:
        """The job timeout when the submit names none: high 5 min, medium 10, low 20."""
        return {Priority.HIGH: 300_000, Priority.MEDIUM: 600_000, Priority.LOW: 1_200_000}[priority]


#: Most shards a queue may have: each is a hash tag every executor polls and blocks on.
MAX_SHARDS = 64


def _shards(env: Environ) -> int:
    value = _int(env, "SENTINEL_QUEUE_SHARDS", 1, minimum=1)
    if value > MAX_SHARDS:
        raise ConfigError(f"SENTINEL_QUEUE_SHARDS must be an integer 1..{MAX_SHARDS}, got {value}")
    return value


def _origins(env: Environ, name: str) -> tuple[str, ...]:
    """A comma-separated list of web origins (`scheme://host[:port]`, as a browser sends `Origin`)."""
    found: list[str] = []
    for raw in env.get(name, "").split(","):
        origin = raw.strip().rstrip("/")
        if not origin:
            continue
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query:
            raise ConfigError(
                f"{name} must list origins like https://dash.example.com:8443, comma-separated, got {raw!r}"
            )
        found.append(origin)
    return tuple(found)


@dataclass(frozen=True)
class AlertSettings:
    """Alert webhooks: where they may go, how long one attempt may take, how often and how long
    a delivery is tried and kept (`shared.alerts`)."""

    allow: tuple[str, ...] = ()  # hosts, host:port or CIDRs a webhook may reach though not public
    max_attempts: int = 6
    #: The retry delays are this times 1, 5, 30, 120, 600 (1 s, 5 s, 30 s, 2 min, 10 min by default).
    backoff_ms: int = 1000
    timeout_ms: int = 10_000
    retention_days: int = 7  # how long a delivery (and its answer) is kept
    poll_ms: int = 500  # how often a replica looks for deliveries that are due
    concurrency: int = 10  # deliveries one replica makes at once
    claim_idle_ms: int = 60_000  # an event another replica read but never acknowledged is taken over after this
    #: Where people reach the dashboard (SENTINEL_PUBLIC_URL): an alert links to its job's page there.
    public_url: str = ""

    @property
    def retention_ms(self) -> int:
        return self.retention_days * 86_400_000

    @classmethod
    def from_env(cls, environ: Environ = os.environ) -> AlertSettings:
        allow = tuple(a.strip() for a in environ.get("SENTINEL_WEBHOOK_ALLOW", "").split(",") if a.strip())
        NavigationPolicy.from_rules(allow, variable="SENTINEL_WEBHOOK_ALLOW")  # a malformed entry stops the start
        return cls(
            allow=allow,
            max_attempts=_int(environ, "SENTINEL_WEBHOOK_MAX_ATTEMPTS", 6, minimum=1),
            backoff_ms=_int(environ, "SENTINEL_WEBHOOK_BACKOFF_MS", 1000, minimum=1),
            timeout_ms=_int(environ, "SENTINEL_WEBHOOK_TIMEOUT_MS", 10_000, minimum=100),
            retention_days=_int(environ, "SENTINEL_WEBHOOK_RETENTION_DAYS", 7, minimum=1),
            public_url=_public_url(environ),
        )


def _public_url(environ: Environ) -> str:
    """SENTINEL_PUBLIC_URL: the dashboard's address as people reach it ("" = none), without a trailing /."""
    raw = environ.get("SENTINEL_PUBLIC_URL", "").strip()
    if raw:
        parts = urlsplit(raw)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"SENTINEL_PUBLIC_URL must be an absolute http(s) URL, got {raw!r}")
    return raw.rstrip("/")


@dataclass(frozen=True)
class ApiSettings:
    """Where the API listens: gRPC, HTTP/JSON (`http_port` 0: off) and /metrics (0: off).

    The bare constructor (tests, embedding) serves no HTTP and no /metrics; `from_env` defaults
    them to 8080 and 9464.
    """

    host: str = "0.0.0.0"
    port: int = 50051
    shutdown_grace_ms: int = 10_000
    metrics_port: int = 0  # 0: no /metrics endpoint
    http_host: str = ""  # "": the gRPC host
    http_port: int = 0  # 0: no HTTP/JSON API (nor dashboard)
    http_cors_origins: tuple[str, ...] = ()  # origins a browser may call the HTTP API from
    scheduler_tick_ms: int = 500  # how often each replica's scheduler looks for due schedules
    alerts: AlertSettings = AlertSettings()

    @classmethod
    def from_env(cls, environ: Environ = os.environ) -> ApiSettings:
        return cls(
            host=environ.get("API_GRPC_HOST", "0.0.0.0").strip() or "0.0.0.0",
            port=_port(environ, "API_GRPC_PORT", 50051),
            shutdown_grace_ms=_int(environ, "API_SHUTDOWN_GRACE_MS", 10_000),
            metrics_port=_port(environ, "API_METRICS_PORT", 9464),
            http_host=environ.get("API_HTTP_HOST", "").strip(),
            http_port=_port(environ, "API_HTTP_PORT", 8080),
            http_cors_origins=_origins(environ, "API_HTTP_CORS_ORIGINS"),
            scheduler_tick_ms=_int(environ, "SENTINEL_SCHEDULER_TICK_MS", 500, minimum=50),
            alerts=AlertSettings.from_env(environ),
        )

    @property
    def http_listen_host(self) -> str:
        return self.http_host or self.host


def _default_chromium() -> str:
    """Playwright's own Chromium when it is installed, else the system's."""
    cache = Path.home() / ".cache" / "ms-playwright"
    found = sorted(cache.glob("chromium-*/chrome-linux*/chrome")) if cache.is_dir() else []
    if found:
        return str(found[-1])
    return shutil.which("chromium") or "/usr/bin/chromium"


class TraceMode(enum.StrEnum):
    """Which attempts record a Playwright trace (SENTINEL_TRACE), by Playwright's own names for them.

    Recording (DOM snapshots and screencast frames) costs a short browser test about a fifth of its
    throughput, whether or not the trace is kept: 0.78 against 0.97 of raw Playwright
    (bench/RESULTS.md). The job's artifact policy still decides which recorded traces are kept (by
    default, a failed attempt's).
    """

    RETAIN_ON_FAILURE = "retain-on-failure"  # every attempt (the default)
    ON_FIRST_RETRY = "on-first-retry"  # the second attempt only
    ON_ALL_RETRIES = "on-all-retries"  # every attempt after the first
    OFF = "off"

    def skips(self, attempt: int) -> str | None:
        """Why attempt `attempt` (1: the first) records no trace; None when it records one."""
        if self is TraceMode.RETAIN_ON_FAILURE:
            return None
        if self is TraceMode.OFF:
            return "the executor records no traces (SENTINEL_TRACE=off)"
        if self is TraceMode.ON_FIRST_RETRY and attempt != 2:
            return f"the executor records the trace of a job's second attempt only (SENTINEL_TRACE={self.value})"
        if self is TraceMode.ON_ALL_RETRIES and attempt < 2:
            return f"the executor records traces from a job's second attempt on (SENTINEL_TRACE={self.value})"
        return None

    @classmethod
    def from_env(cls, environ: Environ, name: str = "SENTINEL_TRACE") -> TraceMode:
        text = environ.get(name, "").strip().lower() or cls.RETAIN_ON_FAILURE.value
        try:
            return cls(text)
        except ValueError:
            choices = ", ".join(mode.value for mode in cls)
            raise ConfigError(f"{name} must be one of {choices}, got {text!r}") from None


@dataclass(frozen=True)
class ExecutorSettings:
    host: str = "0.0.0.0"
    port: int = 50052
    worker_id: str = ""
    chromium: str = "/usr/bin/chromium"
    #: Where each attempt makes its artifacts before uploading them (emptied as each is uploaded).
    spool_dir: str = field(default_factory=lambda: os.path.join(tempfile.gettempdir(), "sentinel-spool"))
    artifacts: ArtifactSettings = field(default_factory=lambda: ArtifactSettings())
    ffmpeg: str = ""  # the system's ffmpeg, for videos ("": none)
    step_timeout_ms: int = 30_000
    trace: TraceMode = TraceMode.RETAIN_ON_FAILURE
    #: Whether a trace also records screencast frames (the trace viewer's timeline filmstrip).
    trace_screenshots: bool = True
    shutdown_grace_ms: int = 30_000
    headless: bool = True
    metrics_port: int = 0  # 0: no /metrics endpoint

    @classmethod
    def from_env(cls, environ: Environ = os.environ) -> ExecutorSettings:
        return cls(
            host=environ.get("EXECUTOR_GRPC_HOST", "0.0.0.0").strip() or "0.0.0.0",
            port=_port(environ, "EXECUTOR_GRPC_PORT", 50052),
            worker_id=environ.get("SENTINEL_WORKER_ID", "").strip(),
            chromium=environ.get("SENTINEL_CHROMIUM", "").strip() or _default_chromium(),
            spool_dir=os.path.abspath(
                environ.get("SENTINEL_SPOOL_DIR", "").strip() or os.path.join(tempfile.gettempdir(), "sentinel-spool")
            ),
            artifacts=ArtifactSettings.from_env(environ),
            ffmpeg=environ.get("SENTINEL_FFMPEG", "").strip() or shutil.which("ffmpeg") or "",
            step_timeout_ms=_int(environ, "SENTINEL_STEP_TIMEOUT_MS", 30_000, minimum=1),
            trace=TraceMode.from_env(environ),
            trace_screenshots=_bool(environ, "SENTINEL_TRACE_SCREENSHOTS", True),
            shutdown_grace_ms=_int(environ, "EXECUTOR_SHUTDOWN_GRACE_MS", 30_000),
            headless=_bool(environ, "SENTINEL_HEADLESS", True),
            metrics_port=_port(environ, "EXECUTOR_METRICS_PORT", 9465),
        )


MiB = 1024 * 1024

_BUCKET_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-_")


@dataclass(frozen=True)
class ArtifactLocation:
    """Where SENTINEL_ARTIFACTS_URL points: a directory (`file`) or a bucket and key prefix (`s3`)."""

    scheme: str  # "file" or "s3"
    path: str = ""  # file: the absolute directory
    bucket: str = ""  # s3
    prefix: str = ""  # s3: key prefix inside the bucket, without leading or trailing '/' ("" = none)


def artifact_location(url: str, *, name: str = "SENTINEL_ARTIFACTS_URL") -> ArtifactLocation:
    """Parse an artifacts URL; a malformed one raises `ConfigError` naming the variable `name`."""
    expected = f"{name} must be file:///absolute/path or s3://bucket[/prefix]"
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise ConfigError(f"{expected} (no query or fragment), got {url!r}")
    if parts.scheme == "file":
        path = unquote(parts.path)
        if parts.netloc not in ("", "localhost") or not path.startswith("/"):
            raise ConfigError(f"{expected}: a file URL needs an absolute path (three slashes), got {url!r}")
        return ArtifactLocation(scheme="file", path=os.path.normpath(path))
    if parts.scheme == "s3":
        bucket = parts.netloc
        if not bucket:
            raise ConfigError(f"{expected}: the URL names no bucket, got {url!r}")
        if not (3 <= len(bucket) <= 222) or not set(bucket) <= _BUCKET_CHARS:
            raise ConfigError(f"{expected}: {bucket!r} is not a bucket name (3-222 of a-z 0-9 . - _)")
        prefix = unquote(parts.path).strip("/")
        segments = prefix.split("/") if prefix else []
        if any(s in ("", ".", "..") or "\\" in s or not s.isprintable() for s in segments):
            raise ConfigError(f"{expected}: the prefix must be plain '/'-separated names, got {url!r}")
        return ArtifactLocation(scheme="s3", bucket=bucket, prefix=prefix)
    raise ConfigError(f"{expected}, got {url!r}")


def _endpoint(env: Environ) -> str:
    """The S3 endpoint: AWS_ENDPOINT_URL_S3 wins over AWS_ENDPOINT_URL, as in the AWS SDKs."""
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        raw = env.get(name, "").strip()
        if raw:
            parts = urlsplit(raw)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(f"{name} must be an http:// or https:// URL, got {raw!r}")
            return raw.rstrip("/")
    return ""


@dataclass(frozen=True)
class ArtifactSettings:
    """Where screenshots, traces and videos are stored, and how big they may grow.

    SENTINEL_ARTIFACTS_URL picks the store: `file:///absolute/path` (default `./artifacts`, made
    absolute; when the URL is unset, SENTINEL_ARTIFACTS_DIR still names the directory) or
    `s3://bucket/prefix`. For S3 the standard AWS variables are read here and passed to the store:
    AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, AWS_REGION (or AWS_DEFAULT_REGION), AWS_ACCESS_KEY_ID
    with AWS_SECRET_ACCESS_KEY, and AWS_SESSION_TOKEN. With no keys set, the S3 library's own
    credential chain applies (web identity, ECS task role, instance metadata: it reads their
    variables itself). The secret and the token never appear in `repr`.
    """

    url: str = field(default_factory=lambda: Path("artifacts").absolute().as_uri())
    max_artifact_bytes: int = 100 * MiB  # one artifact
    max_job_bytes: int = 500 * MiB  # all artifacts of one job, every attempt together
    endpoint_url: str = ""  # "" = the provider's default (AWS)
    region: str = ""  # "" = us-east-1
    access_key_id: str = ""
    secret_access_key: str = field(default="", repr=False)
    session_token: str = field(default="", repr=False)

    @property
    def location(self) -> ArtifactLocation:
        return artifact_location(self.url)

    @classmethod
    def from_env(cls, environ: Environ = os.environ) -> ArtifactSettings:
        url = environ.get("SENTINEL_ARTIFACTS_URL", "").strip()
        if not url:
            directory = environ.get("SENTINEL_ARTIFACTS_DIR", "").strip() or "artifacts"
            url = Path(os.path.abspath(directory)).as_uri()
        location = artifact_location(url)
        max_artifact = _int(environ, "SENTINEL_ARTIFACT_MAX_BYTES", 100 * MiB, minimum=1)
        max_job = _int(environ, "SENTINEL_JOB_ARTIFACTS_MAX_BYTES", 500 * MiB, minimum=1)
        if max_job < max_artifact:
            raise ConfigError(
                f"SENTINEL_JOB_ARTIFACTS_MAX_BYTES ({max_job}) must be at least "
                f"SENTINEL_ARTIFACT_MAX_BYTES ({max_artifact})"
            )
        settings = cls(url=url, max_artifact_bytes=max_artifact, max_job_bytes=max_job)
        if location.scheme != "s3":
            return settings  # AWS_* may be set for something else: a file store ignores them
        key_id = environ.get("AWS_ACCESS_KEY_ID", "").strip()
        secret = environ.get("AWS_SECRET_ACCESS_KEY", "").strip()
        token = environ.get("AWS_SESSION_TOKEN", "").strip()
        if bool(key_id) != bool(secret):
            raise ConfigError("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together")
        if token and not key_id:
            raise ConfigError("AWS_SESSION_TOKEN needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        region = environ.get("AWS_REGION", "").strip() or environ.get("AWS_DEFAULT_REGION", "").strip()
        return replace(
            settings,
            endpoint_url=_endpoint(environ),
            region=region,
            access_key_id=key_id,
            secret_access_key=secret,
            session_token=token,
        )


_OTEL_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


@dataclass(frozen=True)
class TelemetrySettings:
    """Tracing, off by default, switched on by the standard OpenTelemetry variables.

    On when OTEL_TRACES_EXPORTER is `otlp`, or when it is unset and an OTLP endpoint is named;
    OTEL_SDK_DISABLED=true always wins. The OTLP exporter itself reads its other OTEL_EXPORTER_OTLP_*
    variables (headers, timeout, protocol details), as every OpenTelemetry SDK does.
    """

    enabled: bool = False
    service_name: str = ""
    endpoint: str = ""

    @classmethod
    def from_env(cls, environ: Environ = os.environ, *, service: str = "sentinel") -> TelemetrySettings:
        if _bool(environ, "OTEL_SDK_DISABLED", False):
            return cls(service_name=service)
        exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
        endpoint = next((environ[n].strip() for n in reversed(_OTEL_ENDPOINTS) if environ.get(n, "").strip()), "")
        if exporter not in ("", "otlp", "none"):
            raise ConfigError(f"OTEL_TRACES_EXPORTER must be otlp or none, got {exporter!r}")
        enabled = exporter == "otlp" or (exporter == "" and bool(endpoint))
        name = environ.get("OTEL_SERVICE_NAME", "").strip() or service
        return cls(enabled=enabled, service_name=name, endpoint=endpoint)


@dataclass(frozen=True)
class ClientSettings:
    """Where the CLI finds the API, and how it proves who it is."""

    api: str = "localhost:50051"
    api_key: str = ""  # sent as `authorization: Bearer <key>` when set
    tls: bool = False
    tls_ca: str = ""  # CA bundle to verify the server with ("" with tls: the system's roots)
    tls_cert: str = ""  # client certificate and key, for an API that requires mTLS
    tls_key: str = ""
    tls_server_name: str = ""  # expected name in the server's certificate, if not the address's host
    tls_variables: str = "SENTINEL_TLS"  # the files came from <this>_CA, _CLIENT_CERT, _CLIENT_KEY (errors name them)

    @classmethod
    def from_env(cls, environ: Environ = os.environ) -> ClientSettings:
        ca = _path(environ, "SENTINEL_TLS_CA")
        cert = _path(environ, "SENTINEL_TLS_CLIENT_CERT")
        key = _path(environ, "SENTINEL_TLS_CLIENT_KEY")
        if bool(cert) != bool(key):
            raise ConfigError("SENTINEL_TLS_CLIENT_CERT and SENTINEL_TLS_CLIENT_KEY must be set together")
        return cls(
            api=environ.get("SENTINEL_API", "").strip() or "localhost:50051",
            api_key=environ.get("SENTINEL_API_KEY", "").strip(),
            tls=_bool(environ, "SENTINEL_TLS", False) or bool(ca or cert),
            tls_ca=ca,
            tls_cert=cert,
            tls_key=key,
            tls_server_name=environ.get("SENTINEL_TLS_SERVER_NAME", "").strip(),
        )


def _path(env: Environ, name: str) -> str:
    """A file path from `name`, checked to exist ("" when unset)."""
    raw = env.get(name, "").strip()
    if raw and not os.path.isfile(raw):
        raise ConfigError(f"{name} must name a readable file, got {raw!r}")
    return raw


@dataclass(frozen=True)
class TlsSettings:
    """A gRPC server's TLS: certificate and key, and the CA that client certificates must chain to."""

    cert_file: str = ""
    key_file: str = ""
    client_ca_file: str = ""  # set: clients must present a certificate signed by it (mTLS)

    @property
    def enabled(self) -> bool:
        return bool(self.cert_file)

    @classmethod
    def from_env(cls, environ: Environ = os.environ, *, require_client_ca: bool = False) -> TlsSettings:
        cert = _path(environ, "SENTINEL_TLS_CERT")
        key = _path(environ, "SENTINEL_TLS_KEY")
        ca = _path(environ, "SENTINEL_TLS_CLIENT_CA")
        if bool(cert) != bool(key):
            raise ConfigError("SENTINEL_TLS_CERT and SENTINEL_TLS_KEY must be set together")
        if ca and not cert:
            raise ConfigError("SENTINEL_TLS_CLIENT_CA needs SENTINEL_TLS_CERT and SENTINEL_TLS_KEY")
        if cert and require_client_ca and not ca:
            raise ConfigError("SENTINEL_TLS_CLIENT_CA must be set: the executor's internal service requires mTLS")
        return cls(cert_file=cert, key_file=key, client_ca_file=ca)


@dataclass(frozen=True)
class SecuritySettings:
    """Who may call a service, over what, and the secrets and network limits of the jobs it runs.

    Built by `from_env`, the services refuse to start without a keys file unless SENTINEL_AUTH is
    `disabled`. The bare constructor (tests, embedding) has auth disabled and no TLS.
    """

    auth_disabled: bool = True
    keys_file: str = ""
    tls: TlsSettings = TlsSettings()
    secret_key: str = ""  # Fernet key sealing secret fill values; "" = secret values are refused
    navigation_allow: tuple[str, ...] = ()  # hosts, host:port or CIDRs a page may reach anyway

    @classmethod
    def from_env(cls, environ: Environ = os.environ, *, internal: bool = False) -> SecuritySettings:
        """Args: internal: the executor's internal service (TLS there requires mTLS)."""
        mode = environ.get("SENTINEL_AUTH", "").strip().lower()
        if mode not in ("", "keys", "disabled"):
            raise ConfigError(f"SENTINEL_AUTH must be keys or disabled, got {mode!r}")
        keys_file = _path(environ, "SENTINEL_API_KEYS_FILE")
        if mode != "disabled" and not keys_file:
            raise ConfigError(
                "SENTINEL_API_KEYS_FILE must name an API keys file (create keys with `sentinel keys create`), "
                "or set SENTINEL_AUTH=disabled to let every caller in as tenant 'default'"
            )
        allow = tuple(a.strip() for a in environ.get("SENTINEL_NAVIGATION_ALLOW", "").split(",") if a.strip())
        NavigationPolicy.from_rules(allow)  # a malformed entry stops every service, not only the executors
        return cls(
            auth_disabled=mode == "disabled",
            keys_file=keys_file,
            tls=TlsSettings.from_env(environ, require_client_ca=internal),
            secret_key=environ.get("SENTINEL_SECRET_KEY", "").strip(),
            navigation_allow=allow,
        )


class ExecutionMode(enum.StrEnum):
    """How the API runs a submitted test (SENTINEL_EXECUTION)."""

    QUEUE = "queue"  # through Redis Streams: executors claim it
    DIRECT = "direct"  # on an executor over its internal Run call; no Redis at all
    HYBRID = "hybrid"  # queued while Redis answers, run directly when it does not


@dataclass(frozen=True)
class ExecutionSettings:
    """The execution mode, and how the API reaches executors when it runs tests directly.

    SENTINEL_EXECUTION is queue (default), direct or hybrid; USE_QUEUE_SYSTEM (the original design's
    switch) false means direct, true queue, and contradicting SENTINEL_EXECUTION is an error.
    QUEUE_LOW_PRIORITY_ONLY=true (the original rollout's first phase) queues only LOW jobs and runs
    the rest directly: hybrid mode, which it implies when SENTINEL_EXECUTION is unset.
    """

    mode: ExecutionMode = ExecutionMode.QUEUE
    executors: tuple[str, ...] = ()  # host:port of each executor's internal service
    low_priority_only: bool = False
    max_jobs: int = 10_000  # direct jobs the API keeps in memory; the oldest finished go first
    executor_client: ClientSettings = field(default_factory=lambda: ClientSettings())

    @property
    def uses_queue(self) -> bool:
        return self.mode is not ExecutionMode.DIRECT

    @property
    def runs_direct(self) -> bool:
        return self.mode is not ExecutionMode.QUEUE

    @classmethod
    def from_env(cls, environ: Environ = os.environ, *, api: bool = True) -> ExecutionSettings:
        """Args: api: for the API (which needs SENTINEL_EXECUTORS to run tests directly)."""
        raw = environ.get("SENTINEL_EXECUTION", "").strip().lower()
        modes = ", ".join(m.value for m in ExecutionMode)
        if raw and raw not in set(ExecutionMode):
            raise ConfigError(f"SENTINEL_EXECUTION must be one of {modes}, got {raw!r}")
        mode = ExecutionMode(raw) if raw else None
        if environ.get("USE_QUEUE_SYSTEM", "").strip():
            queued = _bool(environ, "USE_QUEUE_SYSTEM", True)
            # true goes with queue and hybrid (both queue), false with direct only.
            if mode is not None and (mode is not ExecutionMode.DIRECT) != queued:
                raise ConfigError(
                    f"USE_QUEUE_SYSTEM={environ['USE_QUEUE_SYSTEM'].strip()} contradicts SENTINEL_EXECUTION={raw}: "
                    "set only one of them"
                )
            mode = mode or (ExecutionMode.QUEUE if queued else ExecutionMode.DIRECT)
        low_only = _bool(environ, "QUEUE_LOW_PRIORITY_ONLY", False)
        if low_only:
            if mode not in (None, ExecutionMode.HYBRID):
                raise ConfigError(
                    f"QUEUE_LOW_PRIORITY_ONLY=true needs SENTINEL_EXECUTION=hybrid (or unset), got {mode.value}"
                )
            mode = ExecutionMode.HYBRID
        mode = mode or ExecutionMode.QUEUE
        executors = tuple(a.strip() for a in environ.get("SENTINEL_EXECUTORS", "").split(",") if a.strip())
        for address in executors:
            host, _, port = address.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ConfigError(f"SENTINEL_EXECUTORS must list host:port addresses, comma-separated, got {address!r}")
        if api and mode is not ExecutionMode.QUEUE and not executors:
            raise ConfigError(
                f"SENTINEL_EXECUTORS must list the executors (host:port, comma-separated) "
                f"to run tests directly in SENTINEL_EXECUTION={mode.value}"
            )
        return cls(
            mode=mode,
            executors=executors,
            low_priority_only=low_only,
            max_jobs=_int(environ, "SENTINEL_DIRECT_MAX_JOBS", 10_000, minimum=1),
            executor_client=_executor_client(environ),
        )


def _executor_client(env: Environ) -> ClientSettings:
    """How the API calls executors: their CA, the API's client certificate (executors with TLS require
    mTLS) and an API key the executors accept with the admin role."""
    ca = _path(env, "SENTINEL_EXECUTOR_TLS_CA")
    cert = _path(env, "SENTINEL_EXECUTOR_TLS_CLIENT_CERT")
    key = _path(env, "SENTINEL_EXECUTOR_TLS_CLIENT_KEY")
    if bool(cert) != bool(key):
        raise ConfigError("SENTINEL_EXECUTOR_TLS_CLIENT_CERT and SENTINEL_EXECUTOR_TLS_CLIENT_KEY must be set together")
    return ClientSettings(
        api_key=env.get("SENTINEL_EXECUTOR_API_KEY", "").strip(),
        tls=bool(ca or cert),
        tls_ca=ca,
        tls_cert=cert,
        tls_key=key,
        tls_server_name=env.get("SENTINEL_EXECUTOR_TLS_SERVER_NAME", "").strip(),
        tls_variables="SENTINEL_EXECUTOR_TLS",
    )


@dataclass(frozen=True)
class EventLoopSettings:
    """The event loop the long-running services run on (SENTINEL_EVENT_LOOP): `uvloop` (the default,
    where it is installed) or `asyncio` (the standard library's loop)."""

    uvloop: bool = True

    @classmethod
    def from_env(cls, environ: Environ = os.environ) -> EventLoopSettings:
        raw = environ.get("SENTINEL_EVENT_LOOP", "").strip().lower() or "uvloop"
        if raw not in ("uvloop", "asyncio"):
            raise ConfigError(f"SENTINEL_EVENT_LOOP must be uvloop or asyncio, got {raw!r}")
        return cls(uvloop=raw == "uvloop")
