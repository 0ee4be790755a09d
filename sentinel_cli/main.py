"""`sentinel`: run the services, or talk to a running API.

    sentinel dev [--demo]       everything on this machine (private redis-server when none is configured)
    sentinel api                the gRPC API service
    sentinel executor           an executor service
    sentinel submit FILE [--priority high|medium|low] [--follow]
    sentinel import RECORDING [-o FILE] [--skip-unsupported]   a Chrome Recorder recording as a definition
    sentinel status ID
    sentinel cancel ID
    sentinel artifacts ID [--out DIR]              download a job's screenshots, trace and video
    sentinel trace ID [--out DIR] [--attempt N]    download its Playwright trace
    sentinel stats [--watch] | events | pause | resume | dlq list|requeue|purge | jobs
    sentinel schedules create FILE (--every 5m | --cron "*/5 * * * *") [--overlap skip] [--tz Europe/Berlin]
    sentinel schedules list | get ID | pause ID | resume ID | trigger ID | delete ID
    sentinel alerts rules create --tag T --url URL [--event E]… [--secret-env VAR] | rules list | rules delete ID
    sentinel alerts deliveries [--schedule ID] [--rule ID] [--job ID]
    sentinel keys create --tenant T --role viewer|submitter|admin
    sentinel keys secret

The API address for the client commands comes from SENTINEL_API (default localhost:50051), the
API key from SENTINEL_API_KEY, and TLS from SENTINEL_TLS / SENTINEL_TLS_CA (see the README).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

import sentinel_client
from sentinel_cli import admin_commands, alerts, client, keys, recorder, run_command, schedules
from sentinel_cli import artifacts as artifact_commands
from sentinel_cli.runtime import run_until_signal, setup_logging
from shared.errors import ConfigError, SentinelError
from shared.settings import (
    ApiSettings,
    ArtifactSettings,
    ExecutionSettings,
    ExecutorSettings,
    QueueSettings,
    RedisSettings,
    SecuritySettings,
)
from shared.telemetry import tracing_from_env


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sentinel", description="Browser tests as a service.")
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING, ... (default INFO; dev: WARNING)")
    parser.add_argument("--log-format", choices=("text", "json"), default="text")
    parser.add_argument("--api", default=None, help="API address for client commands (default: $SENTINEL_API)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dev = sub.add_parser("dev", help="run Redis (if none is configured), the API, an executor and a demo site")
    dev.add_argument("--demo", action="store_true", help="submit the bundled examples and show their progress")
    dev.add_argument("--demo-port", type=int, default=8088, help="port of the demo site (default 8088)")
    sub.add_parser("api", help="run the gRPC API service")
    sub.add_parser("executor", help="run an executor service")

    submit = sub.add_parser("submit", help="submit a test definition (JSON) as a job")
    submit.add_argument("file")
    submit.add_argument("--priority", choices=sorted(client.PRIORITIES))
    submit.add_argument("--follow", action="store_true", help="show live progress, then the per-step result")

    run = sub.add_parser("run", help="run definition files (and recordings) as one run, with reports for CI")
    run.add_argument("paths", nargs="+", metavar="PATH", help="files, directories (every *.json below) or globs")
    run.add_argument("--junit", metavar="FILE", help="write a JUnit XML report")
    run.add_argument("--json", metavar="FILE", dest="json_report", help="write a JSON report")
    run.add_argument("--tag", action="append", default=[], metavar="T", help="tag every test (repeatable)")
    run.add_argument("--parallel", type=_non_negative, default=0, metavar="N", help="at most N tests at once")
    run.add_argument("--priority", choices=sorted(client.PRIORITIES))
    run.add_argument("--name", default="", help="the run's name (default: the paths)")

    recording = sub.add_parser("import", help="convert a Chrome DevTools Recorder recording (JSON) into a definition")
    recording.add_argument("file")
    recording.add_argument("-o", "--output", metavar="FILE", help="write the definition here (default: stdout)")
    recording.add_argument(
        "--skip-unsupported", action="store_true", help="leave out the steps Sentinel cannot run, listing them"
    )

    status = sub.add_parser("status", help="show a job's state and result")
    status.add_argument("job_id")
    cancel = sub.add_parser("cancel", help="cancel a waiting or running job")
    cancel.add_argument("job_id")
    artifact_commands.add_parsers(sub)
    admin_commands.add_parsers(sub)
    schedules.add_parser(sub)
    alerts.add_parser(sub)
    keys.add_parser(sub)
    return parser


def _serve(args: argparse.Namespace) -> None:
    setup_logging(args.log_level or "INFO", args.log_format)
    redis = RedisSettings.from_env()
    queue = QueueSettings.from_env()
    if args.command == "api":
        from api_service.server import serve as serve_api

        api = ApiSettings.from_env()
        security = SecuritySettings.from_env()
        artifacts = ArtifactSettings.from_env()
        execution = ExecutionSettings.from_env()
        run_until_signal(
            lambda stop: serve_api(
                stop,
                redis=redis,
                queue_settings=queue,
                api=api,
                security=security,
                artifacts=artifacts,
                execution=execution,
            )
        )
    else:
        from executor_service.server import serve as serve_executor

        executor = ExecutorSettings.from_env()
        security = SecuritySettings.from_env(internal=True)
        mode = ExecutionSettings.from_env(api=False)
        run_until_signal(
            lambda stop: serve_executor(
                stop, redis=redis, queue_settings=queue, executor=executor, security=security, execution=mode
            )
        )


def _call_api(args: argparse.Namespace) -> int:
    """Run a client command against the API; its exit code."""
    address = args.api or None  # None: SENTINEL_API, read by the SDK with the key and TLS settings
    if args.command in admin_commands.COMMANDS:
        try:
            return asyncio.run(admin_commands.run(args, address))
        except KeyboardInterrupt:
            return 130
    if args.command == schedules.COMMAND:
        return asyncio.run(schedules.run(args, address))
    if args.command == alerts.COMMAND:
        return asyncio.run(alerts.run(args, address))
    if args.command in artifact_commands.COMMANDS:
        return asyncio.run(artifact_commands.run(args, address))
    if args.command == "submit":
        return asyncio.run(
            client.submit_and_follow(
                address, recorder.load_test(args.file), priority=args.priority, follow_progress=args.follow
            )
        )
    if args.command == "run":
        return asyncio.run(
            run_command.run_suite(
                address,
                args.paths,
                junit=args.junit,
                json_report=args.json_report,
                tags=args.tag,
                parallel=args.parallel,
                priority=args.priority,
                name=args.name,
            )
        )
    if args.command == "status":
        return asyncio.run(client.show_status(address, args.job_id))
    return asyncio.run(client.cancel_job(address, args.job_id))


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        if args.command in ("api", "executor"):
            _serve(args)
            return
        if args.command == "keys":
            sys.exit(keys.run(args))
        if args.command == "import":
            sys.exit(recorder.import_command(args.file, output=args.output, skip_unsupported=args.skip_unsupported))
        if args.command == "dev":
            from sentinel_cli.dev import run_dev

            setup_logging(args.log_level or "WARNING", args.log_format)
            sys.exit(run_dev(demo=args.demo, demo_port=args.demo_port))
        with tracing_from_env("sentinel-cli") as tracing:
            client.TRACING.set(tracing)
            code = _call_api(args)
        sys.exit(code)
    except (ConfigError, sentinel_client.ConfigError) as exc:
        print(f"sentinel: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    except sentinel_client.SentinelError as exc:
        # The API's answer shows its status code; an error found on this side (a bad file) does not.
        said = f"{exc.code.name}: {exc.message}" if exc.code else exc.message
        print(f"sentinel: {said}", file=sys.stderr)
        sys.exit(2)
    except (SentinelError, OSError) as exc:
        print(f"sentinel: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
