"""Commands of `styleforge` that other packages add (the server's `api`, `worker`), imported only when needed.

A package adds commands through the entry-point group `styleforge.commands`: each entry point names a
`register(commands)` function that adds its subparser. The client imports no server package itself, so an
install without the server packages simply lists no server command.
"""

import argparse
import tomllib
from collections.abc import Sequence
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

GROUP = "styleforge.commands"
SOURCE_TREE = Path(__file__).resolve().parent.parent  # the checkout, when the client runs from one


def discover() -> dict[str, EntryPoint]:
    """The commands installed packages add, by name (none loaded), plus those the checkout declares that the
    installed metadata lacks (an editable install made before they were declared); installed ones win."""
    installed = {entry.name: entry for entry in entry_points(group=GROUP)}
    return {**declared_in_source_tree(), **installed}


def declared_in_source_tree(root: Path = SOURCE_TREE) -> dict[str, EntryPoint]:
    """The commands the checkout's pyproject.toml declares: for an editable install made before it declared
    them, whose installed metadata lacks the group (`pip install -e .` again brings it)."""
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        return {}
    project = tomllib.loads(pyproject.read_text()).get("project", {})
    if project.get("name") != "styleforge":
        return {}
    declared = project.get("entry-points", {}).get(GROUP, {})
    return {name: EntryPoint(name, value, GROUP) for name, value in declared.items()}


def add_commands(commands: argparse._SubParsersAction, argv: Sequence[str]) -> None:
    """Add the plugin commands this command line needs: the one it names, none when it names another command,
    all of them otherwise (for help, or the error that lists the choices)."""
    plugins = discover()
    named = argv[0] if argv else ""
    if named in plugins:
        plugins = {named: plugins[named]}
    elif named in commands.choices:
        plugins = {}
    for entry in plugins.values():
        register = load(entry)
        if register is not None:
            register(commands)


def load(entry: EntryPoint):
    """The entry point's `register` function, or None when its package is not installed."""
    try:
        return entry.load()
    except ModuleNotFoundError as err:
        if err.name and (entry.module == err.name or entry.module.startswith(f"{err.name}.")):
            return None
        raise  # the package is there but one of its dependencies is not: say so
