"""`sentinel`: run the services, or talk to a running API.

    sentinel dev [--demo]       everything on this machine (private redis-server when none is configured)
    sentinel api                the gRPC API service
    sentinel executor           an executor service
    sentinel submit FILE [--priority high|medium|low] [--follow]
    sentinel run PATH… [--junit F] [--json F] [--artifacts DIR] [--parallel N] [--tag T] [--dry-run]
                                                   a suite as one run
    sentinel import RECORDING [-o FILE] [--skip-unsupported]   a Chrome Recorder recording as a definition
    sentinel status ID                             a job, or a run (its tests, their states, passed/failed)
    sentinel cancel ID                             a job, or a run (every test of it not yet ended)
    sentinel artifacts ID [--out DIR]              download a job's screenshots, trace and video
    sentinel trace ID [--out DIR] [--attempt N]    download its Playwright trace
    sentinel stats [--watch] | events | pause | resume | dlq list|requeue|purge | jobs
    sentinel schedules create FILE (--every 5m | --cron "*/5 * * * *") [--overlap skip] [--tz Europe/Berlin]
    sentinel schedules list | get ID | pause ID | resume ID | trigger ID | delete ID
    sentinel alerts rules create --tag T --url URL [--event E]… [--secret-env VAR] | rules list | rules delete ID
    sentinel alerts deliveries [--schedule ID] [--rule ID] [--job ID] [--limit N] [--page-token T]
    sentinel keys create --tenant T --role viewer|submitter|admin|operator
    sentinel keys secret

The API address for the client commands comes from SENTINEL_API (default localhost:50051), the
API key from SENTINEL_API_KEY, and TLS from SENTINEL_TLS / SENTINEL_TLS_CA (see the README).

Exit codes (`EXIT_CODES`, the epilog of `sentinel --help`): 0 done; 1 the answer is no (a test
failed, `stats` is not healthy, no such job, run or schedule); 2 bad usage or input (every
problem listed, one a line), or an error from the API or reaching it; 130 Ctrl-C; 141 the reader
of the output went away (`sentinel jobs | head -1`), quietly, as Unix tools end on SIGPIPE; 143
SIGTERM (`run` and `submit --follow` take it as Ctrl-C).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import sys
from collections.abc import Sequence

import sentinel_client
from sentinel_cli import admin_commands, alerts, arguments, client, keys, recorder, run_command, schedules
from sentinel_cli import artifacts as artifact_commands
from sentinel_cli.runtime import run_until_signal, setup_logging
from shared.errors import ConfigError, SentinelError, ValidationError
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

EXIT_CODES = """exit codes:
  0    done (submit --follow, run: every test passed)
  1    the answer is no: a test failed, timed out or was cancelled; stats not healthy;
       no such job, run, schedule or artifact
  2    bad usage or input (each problem on a line), or the API refused the call or cannot be reached
  130  interrupted (Ctrl-C); a run or a followed job goes on, and the message says how to cancel it
       (or, when `run` was stopped before the run's id was known, whether it was submitted at all)
  141  the output's reader went away (sentinel jobs | head -1), quietly; run still writes its reports
  143  terminated (SIGTERM, as a cancelled CI job is): run and submit --follow as on Ctrl-C
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sentinel",
        description="Browser tests as a service.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
    run.add_argument(
        "--artifacts",
        metavar="DIR",
        help="download the failing tests' screenshots and traces into DIR/<job id>/, each as it ends"
        " (the reports name them)",
    )
    run.add_argument(
        "--cancel-on-interrupt",
        action="store_true",
        help="on Ctrl-C or SIGTERM (a CI job cancelled or timed out), cancel the run's tests before the"
        " reports are written (default: the run goes on)",
    )
    run.add_argument("--tag", action="append", default=[], metavar="T", help="tag every test (repeatable)")
    run.add_argument("--parallel", type=arguments.count, default=0, metavar="N", help="at most N tests at once")
    run.add_argument("--priority", choices=sorted(client.PRIORITIES))
    run.add_argument("--name", default="", help="the run's name (default: the paths)")
    run.add_argument("--dry-run", action="store_true", help="check every file, here and on the API, and submit nothing")

    recording = sub.add_parser("import", help="convert a Chrome DevTools Recorder recording (JSON) into a definition")
    recording.add_argument("file")
    recording.add_argument("-o", "--output", metavar="FILE", help="write the definition here (default: stdout)")
    recording.add_argument(
        "--skip-unsupported", action="store_true", help="leave out the steps Sentinel cannot run, listing them"
    )

    status = sub.add_parser(
        "status",
        help="show a job's state and result, or a run's",
        description="Show a job's state and result; or, when no job has the id, the run that has it: its state,"
        " how many of its tests passed and failed, and each test's state (as `sentinel run` sums it up).",
    )
    status.add_argument("job_id", metavar="ID", help="a job id, or the run id `sentinel run` printed")
    cancel = sub.add_parser(
        "cancel",
        help="cancel a waiting or running job, or a run",
        description="Cancel a waiting or running job; or, when no job has the id, the run that has it"
        " (every test of the run that has not ended, as Ctrl-C in `sentinel run` suggests).",
    )
    cancel.add_argument("job_id", metavar="ID", help="a job id, or the run id `sentinel run` printed")
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
        try:
            test = recorder.load_test(args.file)
            return asyncio.run(
                client.submit_and_follow(address, test, priority=args.priority, follow_progress=args.follow)
            )
        except (sentinel_client.InvalidArgumentError, ValidationError) as exc:
            return client.show_invalid(exc, source=args.file)
    if args.command == "run":
        return asyncio.run(
            run_command.run_suite(
                address,
                args.paths,
                junit=args.junit,
                json_report=args.json_report,
                artifacts=args.artifacts,
                tags=args.tag,
                parallel=args.parallel,
                priority=args.priority,
                name=args.name,
                dry_run=args.dry_run,
                cancel_on_interrupt=args.cancel_on_interrupt,
            )
        )
    if args.command == "status":
        return asyncio.run(client.show_status(address, args.job_id))
    return asyncio.run(client.cancel(address, args.job_id))


def _run(args: argparse.Namespace) -> int:
    """Run the command; its exit code."""
    if args.command in ("api", "executor"):
        _serve(args)
        return 0
    if args.command == "keys":
        return keys.run(args)
    if args.command == "import":
        return recorder.import_command(args.file, output=args.output, skip_unsupported=args.skip_unsupported)
    if args.command == "dev":
        from sentinel_cli.dev import run_dev

        setup_logging(args.log_level or "WARNING", args.log_format)
        return run_dev(demo=args.demo, demo_port=args.demo_port)
    with tracing_from_env("sentinel-cli") as tracing:
        client.TRACING.set(tracing)
        return _call_api(args)


def main(argv: Sequence[str] | None = None) -> None:
    # What this output cannot encode (an ASCII or cp1252 agent's, a test name in any script) is
    # escaped, never a crash that loses a run's reports.
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    try:
        args = _parser().parse_args(argv)
        code = _run(args)
        sys.stdout.flush()  # here, where a reader that went away is seen, not in Python's exit
    except client.Interrupted as exc:
        print(f"sentinel: {exc}", file=sys.stderr)
        code = exc.code
    except KeyboardInterrupt:
        print("sentinel: interrupted", file=sys.stderr)
        code = 130
    except BrokenPipeError:
        # The reader is gone (`| head`): nothing more can be said, and Python's own flush of stdout
        # at exit would fail again, so stdout goes to /dev/null first. 141 = 128 + SIGPIPE, as a
        # Unix tool killed by the signal reports.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 141
    except (ConfigError, sentinel_client.ConfigError) as exc:
        print(f"sentinel: configuration error: {exc}", file=sys.stderr)
        code = 2
    except (sentinel_client.InvalidArgumentError, ValidationError) as exc:
        code = client.show_invalid(exc)
    except sentinel_client.SentinelError as exc:
        print(f"sentinel: {client.described(exc)}", file=sys.stderr)
        code = 1 if isinstance(exc, sentinel_client.NotFoundError) else 2  # "the answer is no" vs. failed
    except (SentinelError, OSError) as exc:
        print(f"sentinel: {exc}", file=sys.stderr)
        code = 2
    sys.exit(code)


if __name__ == "__main__":
    main()
