"""Find secrets in log text: each secret as written and URL-encoded (a header value, a query string).

tests/integration/test_log_secrets.py scans the logs of a full run with it; tests/unit/test_log_scan.py
shows it finds a planted secret, so a clean scan means something.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

# Shortest secret worth scanning for: anything shorter would match ordinary log text by chance.
MIN_SECRET_CHARS = 8


@dataclass(frozen=True)
class Leak:
    """A secret (by its name, never its value) found in a log."""

    secret: str
    log: str


def forms(value: str) -> set[str]:
    """The ways a secret can be written into a log line: as is, and percent-encoded."""
    return {value, quote(value, safe=""), quote(value, safe="/")}


def find_leaks(logs: Mapping[str, str], secrets: Mapping[str, str]) -> list[Leak]:
    """Every (secret, log) pair where the log's text holds one of the secret's forms."""
    short = [name for name, value in secrets.items() if len(value) < MIN_SECRET_CHARS]
    if short:
        raise ValueError(f"too short to scan for without false alarms: {short}")
    return [
        Leak(secret=name, log=log)
        for log, text in logs.items()
        for name, value in secrets.items()
        if any(form in text for form in forms(value))
    ]


def read_logs(folder: Path) -> dict[str, str]:
    """Every file under a folder, by its path relative to the folder: the logs of one run."""
    return {
        str(path.relative_to(folder)): path.read_text(errors="replace")
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
