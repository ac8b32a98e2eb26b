"""The one log line format of the server processes (API, workers), and what a log line may show of a URL."""

import logging
import re
from urllib.parse import urlsplit

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: int = logging.INFO) -> None:
    """Send log records to stderr in the house format, unless the process has set up logging already."""
    logging.basicConfig(level=level, format=LOG_FORMAT)


def loggable_url(url: str) -> str:
    """A URL as a log may show it: scheme, host and port; no user info, path or query, which may carry a
    receiver's secret (Slack's webhook paths and many receivers' `?token=` are credentials)."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return "(an unparsable URL)"
    if not host:
        return "(a URL without a host)"
    netloc = f"[{host}]" if ":" in host else host
    netloc += f":{port}" if port is not None else ""
    hidden = "/…" if parts.path.strip("/") or parts.query or parts.fragment else ""
    return f"{parts.scheme}://{netloc}{hidden}"


def without_request_paths(message: str) -> str:
    """An HTTP library's error text without the request's path and query (urllib3: `with url: /p?q ...`)."""
    return _URL_IN_ERROR.sub(r"\1…", message)


_URL_IN_ERROR = re.compile(r"(with url: )\S+")
