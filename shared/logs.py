"""The one log line format of the server processes (API, workers)."""

import logging

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: int = logging.INFO) -> None:
    """Send log records to stderr in the house format, unless the process has set up logging already."""
    logging.basicConfig(level=level, format=LOG_FORMAT)
