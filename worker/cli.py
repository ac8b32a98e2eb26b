"""`styleforge worker`: one GPU worker process, which loads VGG19 once and consumes the GPU queues.

A plugin of the `styleforge` command, registered in pyproject.toml's `styleforge.commands` entry points;
`client/cli.py` imports it only when the command line needs it. Celery and TensorFlow load only when it runs.
"""

import argparse
import sys

from shared import keys
from shared.config import Settings
from shared.errors import StyleforgeError
from shared.logs import configure_logging


def register(commands: argparse._SubParsersAction) -> None:
    """Add the `worker` subcommand to the `styleforge` parser."""
    worker = commands.add_parser("worker", help="run one GPU worker process (loads VGG19 once)")
    worker.add_argument("--queues", default=",".join(keys.GPU_QUEUES), help="interactive first, then bulk")
    worker.add_argument("--loglevel", default="INFO")
    worker.add_argument("--hostname", default=None, help="Celery node name (unique per worker)")
    worker.set_defaults(run=run_worker)


def run_worker(args: argparse.Namespace) -> int:
    """Load VGG19 (failing fast with a clear message), then consume the queues, one job at a time."""
    configure_logging()  # before the imports below, as before, so their first log lines are formatted
    from worker.bootstrap import init_runtime
    from worker.celery_app import app

    app.settings = Settings.from_env()
    try:
        init_runtime(app.settings)
    except StyleforgeError as err:
        print(f"styleforge worker cannot start: {err.message}", file=sys.stderr)
        return 2
    app.worker_main(celery_worker_argv(args))
    return 0


def celery_worker_argv(args: argparse.Namespace) -> list[str]:
    """`celery worker` arguments for one GPU process: one job at a time, no gossip or mingle.

    The threads pool at concurrency 1, not solo: the job runs on the pool's thread, so the main thread still
    answers remote control (`celery inspect ping|active|stats`, Flower) while a job runs for hours. Under
    solo the job blocks the thread that would reply, and a liveness probe built on ping would kill every
    busy worker.
    """
    argv = ["worker", "--pool", "threads", "--concurrency", "1", "-Q", args.queues]
    argv += ["--loglevel", args.loglevel]
    argv += ["--without-gossip", "--without-mingle"]
    return argv + (["--hostname", args.hostname] if args.hostname else [])
