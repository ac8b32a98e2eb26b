"""`styleforge keys create|list|revoke`: the operator's API keys, written straight to Redis with the settings.

A plugin of the `styleforge` command (pyproject.toml's `styleforge.commands`), like `styleforge api`. It needs
no running API: it reads STYLEFORGE_REDIS_URL once and talks to that Redis. A key is printed once, at
creation; only the SHA-256 of its secret is stored, so a lost key is revoked and replaced, never shown again.
"""

import argparse
import sys
from datetime import UTC, datetime

from shared.api_keys import ApiKey, KeyStore
from shared.config import Settings
from shared.errors import StyleforgeError
from shared.store import connect_redis

EXIT_ERROR = 2  # a refused name, an unknown id, an unreachable Redis


def register(commands: argparse._SubParsersAction) -> None:
    """Add the `keys` subcommand (create, list, revoke) to the `styleforge` parser."""
    keys = commands.add_parser("keys", help="create, list and revoke API keys (operators; talks to Redis)")
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="make a key for a tenant and print it (once)")
    create.add_argument("--tenant", required=True, help="tenant name: a-z, 0-9 and '-', up to 63")
    create.set_defaults(run=_runner(create_key))
    listing = actions.add_parser("list", help="every key's id, tenant, created and revoked time (no secrets)")
    listing.set_defaults(run=_runner(list_keys))
    revoke = actions.add_parser("revoke", help="revoke a key by its id: its next request answers 401")
    revoke.add_argument("id", help="the key's id (the 12 hex digits after sf_)")
    revoke.set_defaults(run=_runner(revoke_key))


def create_key(store: KeyStore, args: argparse.Namespace) -> int:
    """Make a key; print it (the only time it is shown) and its id."""
    made = store.create(args.tenant)
    print(made.key)
    print(
        f"id {made.record.id} tenant {made.record.tenant}: store the key now, it is not shown again",
        file=sys.stderr,
    )
    return 0


def list_keys(store: KeyStore, args: argparse.Namespace) -> int:
    """Print one line per key: id, tenant, created, revoked (never a secret)."""
    rows = [("id", "tenant", "created", "revoked")]
    rows += [(k.id, k.tenant, _when(k.created_at), _when(k.revoked_at)) for k in store.list()]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def revoke_key(store: KeyStore, args: argparse.Namespace) -> int:
    """Revoke a key; say when it was."""
    record: ApiKey = store.revoke(args.id)
    print(f"revoked {record.id} (tenant {record.tenant}) at {_when(record.revoked_at)}")
    return 0


def _runner(command):
    def run(args: argparse.Namespace) -> int:
        try:
            store = KeyStore(client=connect_redis(Settings.from_env().redis_url))
            return command(store, args)
        except StyleforgeError as err:
            print(f"styleforge keys {args.action}: {err.message}", file=sys.stderr)
            return EXIT_ERROR

    return run


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
