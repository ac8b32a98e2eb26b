"""Path and query-string arguments, validated with errors that name the argument."""

import re

from flask import request

from shared.errors import InvalidInput, NotFound


def int_arg(name: str, default: int, low: int, high: int) -> int:
    """?name= as an integer in [low, high], or the default when absent; else InvalidInput naming it."""
    raw = request.args.get(name, str(default))
    # ASCII only: str.isdigit() admits '²', which int() refuses; and a bounded length, which int() needs.
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18) or not low <= int(raw) <= high:
        raise InvalidInput(f"{name} must be an integer in [{low}, {high}]", field=name)
    return int(raw)


# Most records one listing request returns: each costs a few Redis reads and presigned URLs.
LIST_MAX = 100
RECORD_ID = re.compile(r"[0-9a-f]{32}")


def checked_id(record_id: str, what: str = "job") -> str:
    """A job or batch id as the API issues them (32 hex digits), else NotFound, as for an unknown id."""
    if not RECORD_ID.fullmatch(record_id):
        raise NotFound(f"no {what} with id {record_id[:64]!r}", field="id")
    return record_id
