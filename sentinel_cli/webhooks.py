"""The webhook options `sentinel alerts rules create` and `sentinel schedules create` share: the
receiver URLs, the events they want, and where the signing secret comes from.

A secret never comes from the command line itself (it would sit in the shell's history and in
`ps` for everyone to read): it is read from an environment variable the caller names, or asked for
(without echo on a terminal; the first line of standard input otherwise).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from sentinel_cli import arguments
from sentinel_client import ConfigError, Notification
from shared.notifications import DEFAULT_EVENTS, EVENTS, FORMATS


def add_arguments(parser: argparse.ArgumentParser, *, prefix: str = "", required: bool) -> None:
    """Add the webhook options: `--url`, `--event`, `--secret-env`, `--secret-prompt`,
    `--after-failures` and `--format`; with a `prefix` (`--notify`), the URL is `<prefix>` and the
    others `<prefix>-event` and so on."""
    url = prefix or "--url"
    event, secret, after, fmt = (
        f"{prefix}-{part}" if prefix else f"--{part}" for part in ("event", "secret", "after-failures", "format")
    )
    parser.add_argument(
        url,
        dest="webhook_urls",
        action="append",
        default=[],
        required=required,
        metavar="URL",
        help="the receiver's URL (repeatable; each gets the same events and secret)",
    )
    parser.add_argument(
        event,
        dest="webhook_events",
        action="append",
        default=[],
        choices=EVENTS,
        metavar="EVENT",
        help=f"an event to send (repeatable): {', '.join(EVENTS)} (default: {' and '.join(DEFAULT_EVENTS)})",
    )
    parser.add_argument(
        after,
        dest="webhook_after_failures",
        type=arguments.positive,
        default=1,
        metavar="N",
        help="send `failed` at the N-th failure in a row, and `recovered` only after such a run (default 1)",
    )
    parser.add_argument(
        fmt,
        dest="webhook_format",
        choices=FORMATS,
        default="sentinel",
        help='the body: sentinel (its JSON) or text ({"text": ...}, as Slack, Mattermost and Teams webhooks take)',
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        f"{secret}-env",
        dest="webhook_secret_env",
        metavar="VAR",
        help="read the signing secret from this environment variable (never pass a secret as an argument)",
    )
    source.add_argument(
        f"{secret}-prompt",
        dest="webhook_secret_prompt",
        action="store_true",
        help="ask for the signing secret (not echoed; read from stdin when it is not a terminal)",
    )


def signing_secret(
    args: argparse.Namespace, *, environ: Mapping[str, str] = os.environ, stdin: TextIO | None = None
) -> str:
    """The signing secret the options name ("" = deliveries unsigned).

    Raises:
        ConfigError: the variable named is unset or empty, or nothing was entered.
    """
    if args.webhook_secret_env:
        secret = environ.get(args.webhook_secret_env, "")
        if not secret:
            raise ConfigError(f"{args.webhook_secret_env} (the signing secret) is not set")
        return secret
    if not args.webhook_secret_prompt:
        return ""
    stdin = stdin or sys.stdin
    secret = getpass.getpass("signing secret: ") if stdin.isatty() else stdin.readline().rstrip("\r\n")
    if not secret:
        raise ConfigError("no signing secret was entered")
    return secret


def notifications(args: argparse.Namespace, **source: Any) -> list[dict[str, Any]]:
    """The notifications the options describe, as the SDK takes them (`source`: see `signing_secret`).

    Raises:
        ConfigError: events or a secret without a URL, or as `signing_secret` says.
    """
    if not args.webhook_urls:
        if (
            args.webhook_events
            or args.webhook_secret_env
            or args.webhook_secret_prompt
            or args.webhook_after_failures != 1
        ):
            raise ConfigError("webhook events, secrets and failure counts need a receiver URL")
        return []
    secret = signing_secret(args, **source)
    made: list[dict[str, Any]] = []
    for url in args.webhook_urls:
        notification: dict[str, Any] = {"url": url, "events": args.webhook_events or list(DEFAULT_EVENTS)}
        if secret:
            notification["secret"] = secret
        if args.webhook_after_failures != 1:
            notification["after_failures"] = args.webhook_after_failures
        if args.webhook_format != "sentinel":
            notification["format"] = args.webhook_format
        made.append(notification)
    return made


def describe(notification: Notification) -> str:
    """A notification on one line: its URL, its events, and whether deliveries are signed."""
    signed = "signed" if notification.secret_set else "unsigned"
    after = f"  after {notification.after_failures} failures in a row" if notification.after_failures > 1 else ""
    body = f"  {notification.format} body" if notification.format != "sentinel" else ""
    return f"{notification.url}  {','.join(notification.events)}  {signed}{after}{body}"
