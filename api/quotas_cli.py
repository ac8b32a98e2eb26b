"""`styleforge quotas set|show|reset`: a tenant's quotas, written straight to Redis with the settings.

A plugin of the `styleforge` command, like `styleforge keys`. It needs no running API: it reads the settings
(STYLEFORGE_REDIS_URL and the STYLEFORGE_QUOTA_* defaults) once and talks to that Redis. The API reads a
tenant's quotas afresh on every submission, so a change holds from the next one.
"""

import argparse
import sys

from api.keys_cli import EXIT_ERROR
from shared.api_keys import check_tenant
from shared.config import Settings
from shared.errors import StyleforgeError
from shared.quotas import Quotas, QuotaStore, as_dict
from shared.store import connect_redis

# option -> the quota it sets
OPTIONS = {
    "--max-active": ("max_active_jobs", "jobs queued or running at once (a batch counts its items)"),
    "--items-per-day": ("items_per_day", "batch items submitted per UTC day"),
    "--max-dim": ("max_dim", "largest max_dim (longest side, px) of a job"),
    "--max-steps": ("max_steps", "most steps of a job over all its levels"),
}


def register(commands: argparse._SubParsersAction) -> None:
    """Add the `quotas` subcommand (set, show, reset) to the `styleforge` parser."""
    quotas = commands.add_parser("quotas", help="set, show and reset a tenant's quotas (operators; Redis)")
    actions = quotas.add_subparsers(dest="action", required=True)
    setter = actions.add_parser("set", help="override some of a tenant's quotas (the rest keep theirs)")
    _tenant(setter)
    for option, (dest, text) in OPTIONS.items():
        setter.add_argument(option, dest=dest, type=int, metavar="N", help=text)
    setter.set_defaults(run=_runner(set_quotas))
    show = actions.add_parser("show", help="a tenant's quotas, what it uses now, and which are overridden")
    _tenant(show)
    show.set_defaults(run=_runner(show_quotas))
    reset = actions.add_parser("reset", help="drop a tenant's overrides: back on the defaults")
    _tenant(reset)
    reset.set_defaults(run=_runner(reset_quotas))


def set_quotas(store: QuotaStore, args: argparse.Namespace) -> int:
    """Store the given overrides; show the tenant's quotas after."""
    changes = {dest: getattr(args, dest) for dest, _ in OPTIONS.values() if getattr(args, dest) is not None}
    if not changes:
        print("styleforge quotas set: give at least one of " + ", ".join(OPTIONS), file=sys.stderr)
        return EXIT_ERROR
    store.set(args.tenant, **changes)
    return show_quotas(store, args)


def show_quotas(store: QuotaStore, args: argparse.Namespace) -> int:
    """Print one line per quota: name, limit, whether overridden, and the use now where there is one."""
    tenant = args.tenant
    limits, overrides, usage = store.limits(tenant), store.overrides(tenant), store.usage(tenant)
    used = {"max_active_jobs": usage.active_jobs, "items_per_day": usage.items_today}
    print(f"tenant {args.tenant}")
    for name, limit in as_dict(limits).items():
        origin = "override" if name in overrides else "default"
        in_use = f"  used {used[name]}" if name in used else ""
        print(f"  {name:<16} {limit:>10}  ({origin}){in_use}")
    return 0


def reset_quotas(store: QuotaStore, args: argparse.Namespace) -> int:
    """Drop the tenant's overrides; show its quotas after."""
    store.reset(args.tenant)
    return show_quotas(store, args)


def _tenant(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tenant", required=True, help="tenant name, as `styleforge keys create` took it")


def _runner(command):
    def run(args: argparse.Namespace) -> int:
        try:
            check_tenant(args.tenant)
            settings = Settings.from_env()
            store = QuotaStore(client=connect_redis(settings.redis_url), defaults=Quotas.defaults(settings))
            return command(store, args)
        except StyleforgeError as err:
            print(f"styleforge quotas {args.action}: {err.message}", file=sys.stderr)
            return EXIT_ERROR

    return run
