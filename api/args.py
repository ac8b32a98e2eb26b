"""Query-string arguments, validated with errors that name the argument."""

from flask import request

from shared.errors import InvalidInput


def int_arg(name: str, default: int, low: int, high: int) -> int:
    """?name= as an integer in [low, high], or the default when absent; else InvalidInput naming it."""
    raw = request.args.get(name, str(default))
    # ASCII only: str.isdigit() admits '²', which int() refuses; and a bounded length, which int() needs.
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18) or not low <= int(raw) <= high:
        raise InvalidInput(f"{name} must be an integer in [{low}, {high}]", field=name)
    return int(raw)
