"""`styleforge` entry point: use the API (submit, batch, wait, ...), plus the commands server packages add.

The server's own commands (`styleforge api`, `styleforge worker`) live in `api/cli.py` and `worker/cli.py`
and are found as plugins (`client/plugins.py`), so this package imports no server code.
"""

import argparse
import sys
from collections.abc import Sequence

from client import commands as client_commands
from client import plugins


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the chosen command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="styleforge", description="Neural style transfer job system.")
    commands = parser.add_subparsers(dest="command", required=True)
    client_commands.register(commands)
    plugins.add_commands(commands, argv)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
