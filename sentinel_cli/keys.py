"""`sentinel keys`: make API keys (and the key that seals secret values).

`sentinel keys create --tenant T --role R` prints a new random key once — it is stored nowhere —
and the entry to add to the SENTINEL_API_KEYS_FILE, which holds only the key's SHA-256.
`sentinel keys secret` prints a new SENTINEL_SECRET_KEY for the API and the executors to share.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from shared.access import TENANT_RE, KeyEntry, Role, hash_key, new_key
from shared.sealed import new_secret_key


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("keys", help="create API keys, or a key for sealing secret values")
    actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="print a new API key and its keys-file entry")
    create.add_argument("--tenant", required=True, help="the tenant the key acts for")
    create.add_argument(
        "--role",
        required=True,
        choices=[r.label for r in Role],
        help="viewer < submitter < admin < operator (pauses the whole queue)",
    )
    actions.add_parser("secret", help="print a new SENTINEL_SECRET_KEY")


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    if args.keys_command == "secret":
        out.write(f"SENTINEL_SECRET_KEY={new_secret_key()}\n")
        out.write("Give the API and every executor this same value; keep it out of version control.\n")
        return 0
    if not TENANT_RE.fullmatch(args.tenant):
        print("sentinel: --tenant must be 1-64 letters, digits, '.', '_' or '-'", file=sys.stderr)
        return 2
    key = new_key()
    entry = KeyEntry(tenant=args.tenant, role=Role.parse(args.role), sha256=hash_key(key))
    out.write(f"API key (shown once; store it now, Sentinel keeps only its hash):\n  {key}\n\n")
    out.write(f'Add this entry to the "keys" list of SENTINEL_API_KEYS_FILE:\n  {json.dumps(entry.to_json())}\n\n')
    out.write(
        f"Clients send it as the metadata `authorization: Bearer <key>` (the CLI: SENTINEL_API_KEY={key[:4]}…).\n"
    )
    return 0
