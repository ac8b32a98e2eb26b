"""`styleforge` finds the server commands (`api`, `worker`) as plugins and loads only those it needs."""

import argparse
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from client import cli, plugins
from worker.cli import celery_worker_argv
from worker.cli import register as register_worker

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
SERVER_COMMANDS = {
    "api": "api.cli:register",
    "worker": "worker.cli:register",
    "keys": "api.keys_cli:register",
    "quotas": "api.quotas_cli:register",
}


def entry(name: str, value: str) -> EntryPoint:
    return EntryPoint(name, value, plugins.GROUP)


def test_the_checkout_declares_the_api_and_worker_commands_in_pyproject():
    declared = plugins.declared_in_source_tree(REPO)

    assert {name: ep.value for name, ep in declared.items()} == SERVER_COMMANDS


def test_a_folder_without_styleforge_s_pyproject_declares_no_command(tmp_path):
    assert plugins.declared_in_source_tree(tmp_path) == {}
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "other"\n')
    assert plugins.declared_in_source_tree(tmp_path) == {}


def test_installed_entry_points_win_over_the_source_tree(monkeypatch):
    installed = [entry("hello", "hello.cli:register"), entry("api", "elsewhere.cli:register")]
    monkeypatch.setattr(plugins, "entry_points", lambda group: installed)

    found = {name: ep.value for name, ep in plugins.discover().items()}

    assert found == {**SERVER_COMMANDS, "hello": "hello.cli:register", "api": "elsewhere.cli:register"}


def test_an_install_whose_metadata_predates_the_group_falls_back_to_the_checkout(monkeypatch):
    monkeypatch.setattr(plugins, "entry_points", lambda group: [])

    assert {name: ep.value for name, ep in plugins.discover().items()} == SERVER_COMMANDS


def test_a_plugin_whose_package_is_absent_is_skipped_but_a_missing_dependency_is_reported(
    tmp_path, monkeypatch
):
    (tmp_path / "sfbroken").mkdir()
    (tmp_path / "sfbroken" / "__init__.py").write_text("")
    (tmp_path / "sfbroken" / "cli.py").write_text("import sf_dependency_nobody_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    assert plugins.load(entry("absent", "sf_package_nobody_installed.cli:register")) is None
    with pytest.raises(ModuleNotFoundError, match="sf_dependency_nobody_installed"):
        plugins.load(entry("broken", "sfbroken.cli:register"))


def test_a_client_only_install_lists_no_server_command(monkeypatch, capsys):
    monkeypatch.setattr(plugins, "discover", lambda: {})

    with pytest.raises(SystemExit):
        cli.main(["--help"])
    usage = capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:
        cli.main(["worker"])

    assert "submit" in usage and "api" not in usage and "worker" not in usage
    assert refused.value.code == 2
    assert "invalid choice: 'worker'" in capsys.readouterr().err


def test_a_plugin_command_runs_with_its_own_arguments(tmp_path, monkeypatch):
    (tmp_path / "sfhello.py").write_text(
        "def register(commands):\n    hello = commands.add_parser('hello')\n"
        "    hello.add_argument('--code', type=int)\n    hello.set_defaults(run=lambda args: args.code)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(plugins, "discover", lambda: {"hello": entry("hello", "sfhello:register")})

    assert cli.main(["hello", "--code", "7"]) == 7


def test_the_worker_command_starts_celery_with_one_pool_thread_on_the_gpu_queues():
    parser = argparse.ArgumentParser()
    register_worker(parser.add_subparsers(dest="command"))

    assert celery_worker_argv(parser.parse_args(["worker", "--hostname", "w1@%h"])) == [
        *(
            "worker",
            "--pool",
            "threads",
            "--concurrency",
            "1",
            "-Q",
            "interactive,bulk",
            "--loglevel",
            "INFO",
        ),
        *("--without-gossip", "--without-mingle", "--hostname", "w1@%h"),
    ]
    assert "--hostname" not in celery_worker_argv(parser.parse_args(["worker"]))
