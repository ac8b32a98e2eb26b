"""The `styleforge` command line and the Python SDK (`from client import Client`)."""

from client.errors import ApiUnreachable, StyleforgeClientError, WaitTimedOut
from client.models import Batch, BatchItem, Job
from client.sdk import Client

__all__ = ["ApiUnreachable", "Batch", "BatchItem", "Client", "Job", "StyleforgeClientError", "WaitTimedOut"]
