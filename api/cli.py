"""`styleforge api`: serve the HTTP API with Flask's server (gunicorn in production: deploy/gunicorn.conf.py).

A plugin of the `styleforge` command, registered in pyproject.toml's `styleforge.commands` entry points;
`client/cli.py` imports it only when the command line needs it.
"""

import argparse

from api import create_app
from shared.config import Settings
from shared.logs import configure_logging
from shared.storage import build_object_store


def register(commands: argparse._SubParsersAction) -> None:
    """Add the `api` subcommand to the `styleforge` parser."""
    api = commands.add_parser("api", help="serve the HTTP API (Flask's server; use gunicorn in production)")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8000)
    api.set_defaults(run=run_api)


def run_api(args: argparse.Namespace) -> int:
    """Serve the API with settings read once from the environment."""
    configure_logging()
    settings = Settings.from_env()
    build_object_store(settings).ensure_bucket()
    create_app(settings).run(host=args.host, port=args.port, threaded=True)
    return 0
