"""The real stack for benchmarks (devstack.stack: redis-server, moto's S3 server, the API under gunicorn,
optionally a GPU worker) in the benchmarks' bucket, and the medians they report."""

import statistics
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python bench/x.py` puts bench/ first, not the repository
    sys.path.insert(0, str(REPO))

from devstack import stack as devstack  # noqa: E402

BUCKET = "sf-bench"


@contextmanager
def running_stack(workdir: Path, *, worker: bool, api_workers: int | None = None) -> Iterator[devstack.Stack]:
    """devstack's running stack in the bench bucket; everything stopped on leaving, error or not."""
    with devstack.running_stack(workdir, bucket=BUCKET, worker=worker, api_workers=api_workers) as stack:
        yield stack


def median_ms(seconds: list[float]) -> float:
    """Median of durations in seconds, in milliseconds."""
    return statistics.median(seconds) * 1000
