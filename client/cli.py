"""`styleforge` entry point: serve the API, run a worker, or use the API (submit, batch, wait, ...)."""

import argparse
import logging
import sys

from client import commands as client_commands
from shared import keys


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen command."""
    parser = argparse.ArgumentParser(prog="styleforge", description="Neural style transfer job system.")
    commands = parser.add_subparsers(dest="command", required=True)
    api = commands.add_parser("api", help="serve the HTTP API (Flask's server; use gunicorn in production)")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8000)
    worker = commands.add_parser("worker", help="run one GPU worker process (loads VGG19 once)")
    worker.add_argument("--queues", default=",".join(keys.GPU_QUEUES), help="interactive first, then bulk")
    worker.add_argument("--loglevel", default="INFO")
    worker.add_argument("--hostname", default=None, help="Celery node name (unique per worker)")
    worker.set_defaults(run=run_worker)
    api.set_defaults(run=run_api)
    client_commands.register(commands)
    args = parser.parse_args(argv)
    if args.command in ("api", "worker"):
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return args.run(args)


def run_api(args: argparse.Namespace) -> int:
    """Serve the API with settings read once from the environment."""
    from api import create_app
    from shared.config import Settings
    from shared.storage import build_object_store

    settings = Settings.from_env()
    build_object_store(settings).ensure_bucket()
    create_app(settings).run(host=args.host, port=args.port, threaded=True)
    return 0


def run_worker(args: argparse.Namespace) -> int:
    """Load VGG19 (failing fast with a clear message), then consume the queues, one job at a time."""
    from shared.config import Settings
    from shared.errors import StyleforgeError
    from worker.bootstrap import init_runtime
    from worker.celery_app import app

    app.settings = Settings.from_env()
    try:
        init_runtime(app.settings)
    except StyleforgeError as err:
        print(f"styleforge worker cannot start: {err.message}", file=sys.stderr)
        return 2
    argv = [
        "worker",
        "--pool",
        "solo",
        "--concurrency",
        "1",
        "-Q",
        args.queues,
        "--loglevel",
        args.loglevel,
        "--without-gossip",
        "--without-mingle",
    ]
    if args.hostname:
        argv += ["--hostname", args.hostname]
    app.worker_main(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
