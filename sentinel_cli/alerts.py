"""`sentinel alerts`: webhooks when the outcome of tagged jobs changes, and what was delivered.

    sentinel alerts rules create --tag TAG --url URL [--event failed --event recovered]
                                 [--secret-env VAR | --secret-prompt]
    sentinel alerts rules list
    sentinel alerts rules delete ID
    sentinel alerts deliveries [--schedule ID] [--rule ID] [--job ID] [--limit N] [--page-token T]

A rule sends the notifications of every job carrying its tag (a schedule's own notifications are
set with `sentinel schedules create --notify`). Every command is one SDK call (`sentinel_client`),
`deliveries` one per page; output is plain text for people. URLs are shown as the API answers them:
masked (README, Alerts).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from sentinel_cli import arguments, webhooks
from sentinel_cli.arguments import flag_errors
from sentinel_cli.client import open_client, shown_time
from sentinel_client import AlertRule, AsyncClient, Delivery, InvalidArgumentError
from shared.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

COMMAND = "alerts"
#: The deliveries table: its columns' titles (the last, the error, is not padded).
_DELIVERY_COLUMNS = ("time", "event", "url", "state", "attempts", "last status", "next attempt", "error")
#: How many deliveries are listed unless `--limit` says otherwise: a page of the API's.
_DEFAULT_LIMIT = DEFAULT_PAGE_SIZE


def add_parser(sub: Any) -> None:
    """Add `sentinel alerts …` to the `sentinel` argument parser's subcommands."""
    alerts = sub.add_parser(COMMAND, help="webhooks when tagged jobs start failing or recover")
    actions = alerts.add_subparsers(dest="alerts_command", required=True, metavar="ACTION")
    rules = actions.add_parser("rules", help="the tenant's alert rules")
    rule_actions = rules.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    create = rule_actions.add_parser(
        "create",
        help="alert on every job with a tag",
        description="Alert on every job carrying TAG. The signing secret is read from an environment variable "
        "(--secret-env) or asked for (--secret-prompt), never taken from the command line.",
    )
    create.add_argument("--tag", required=True, help="the jobs' tag")
    webhooks.add_arguments(create, required=True)
    rule_actions.add_parser("list", help="the rules, newest first")
    rule_actions.add_parser("delete", help="delete a rule (deliveries made stay)").add_argument("rule_id")
    deliveries = actions.add_parser("deliveries", help="webhook deliveries and their answers, newest first")
    deliveries.add_argument("--schedule", default="", metavar="ID", help="only this schedule's")
    deliveries.add_argument("--rule", default="", metavar="ID", help="only this alert rule's")
    deliveries.add_argument("--job", default="", metavar="ID", help="only those about this job")
    deliveries.add_argument(
        "--limit",
        type=arguments.count,
        default=_DEFAULT_LIMIT,
        metavar="N",
        help=f"at most this many (default {_DEFAULT_LIMIT}; 0: all)",
    )
    deliveries.add_argument("--page-token", default="", metavar="T", help="go on from where a listing stopped")


#: The options of `rules create` and `deliveries`, by the fields they set (`arguments.flag_errors`).
_RULE_FLAGS = {
    "rule.tag": "--tag",
    "rule.notifications": "--url",
    "rule.notifications[].events": "--event",
    "rule.notifications[].secret": "--secret-env",
}
_DELIVERY_FLAGS = {"page_token": "--page-token", "page_size": "--limit", "job_id": "--job", "rule_id": "--rule"}
_DELIVERY_FLAGS |= {"schedule_id": "--schedule"}


def render_rule(rule: AlertRule, out: TextIO) -> None:
    """A rule: its id and tag, then each notification on a line of its own."""
    out.write(f"{rule.id}  tag {rule.tag}  {shown_time(rule.created_at)}\n")
    for n in rule.notifications:
        out.write(f"  → {webhooks.describe(n)}\n")


def render_deliveries(deliveries: Sequence[Delivery], out: TextIO) -> None:
    """The deliveries table, each column as wide as its widest cell."""
    rows = [
        (
            shown_time(d.created_at),
            d.event,
            d.url,
            d.state.value if d.state else "-",
            str(d.attempts),
            str(d.response_status) if d.response_status else "-",
            shown_time(d.next_attempt_at),
            d.error or "-",
        )
        for d in deliveries
    ]
    widths = [max(len(row[i]) for row in [_DELIVERY_COLUMNS, *rows]) for i in range(len(_DELIVERY_COLUMNS) - 1)]
    for row in [_DELIVERY_COLUMNS, *rows]:
        cells = [f"{cell:<{width}}" for cell, width in zip(row, widths, strict=False)]
        out.write("  ".join([*cells, row[-1]]).rstrip() + "\n")


async def run(args: argparse.Namespace, address: str | None) -> int:
    """Run `sentinel alerts ACTION`; its exit code."""
    if args.alerts_command == "rules" and args.rules_command == "create":
        notifications = webhooks.notifications(args)  # asked for before connecting
        async with open_client(address) as client:
            try:
                made = await client.create_alert_rule(args.tag, notifications)
            except InvalidArgumentError as exc:
                raise flag_errors(exc, _RULE_FLAGS) from exc
            render_rule(made, sys.stdout)
        return 0
    async with open_client(address) as client:
        if args.alerts_command == "deliveries":
            try:
                found, token = await _deliveries(client, args)
            except InvalidArgumentError as exc:
                raise flag_errors(exc, _DELIVERY_FLAGS) from exc
            if found:
                render_deliveries(found, sys.stdout)
            else:
                print("no deliveries")
            if token:
                print(f"more: {_next_page(args, token)}")
        elif args.rules_command == "list":
            shown = 0
            async for rule in client.alert_rules():
                render_rule(rule, sys.stdout)
                shown += 1
            if not shown:
                print("no alert rules")
        else:
            await client.delete_alert_rule(args.rule_id)
            print(f"{args.rule_id}  deleted")
    return 0


async def _deliveries(client: AsyncClient, args: argparse.Namespace) -> tuple[list[Delivery], str]:
    """Up to `--limit` deliveries (0: all) from `--page-token` on, and the token of what follows ("": none)."""
    found: list[Delivery] = []
    token = args.page_token
    while True:
        wanted = min(args.limit - len(found), MAX_PAGE_SIZE) if args.limit else MAX_PAGE_SIZE
        page = await client.list_deliveries(
            schedule_id=args.schedule, rule_id=args.rule, job_id=args.job, page_size=wanted, page_token=token
        )
        found += page.items
        token = page.next_page_token
        if not token or (args.limit and len(found) >= args.limit):
            return found, token


def _next_page(args: argparse.Namespace, token: str) -> str:
    """The command that lists the next page: this one's filters and limit, and `token`."""
    argv = ["sentinel", "alerts", "deliveries"]
    for flag, value in (("--schedule", args.schedule), ("--rule", args.rule), ("--job", args.job)):
        if value:
            argv += [flag, value]
    if args.limit != _DEFAULT_LIMIT:
        argv += ["--limit", str(args.limit)]
    return shlex.join([*argv, "--page-token", token])
