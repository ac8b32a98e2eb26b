"""The packages keep to their layers: the SDK an artist installs loads no server code, and producers never
import the worker.

Two checks: the imports written in every module (parsed, so imports inside functions count too), and what
actually lands in `sys.modules` when a fresh interpreter imports the whole client.
"""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
SERVER_LIBRARIES = ("flask", "celery", "kombu", "boto3", "botocore", "tensorflow", "onnxruntime")
# Which top-level modules each package may never import, anywhere in its code.
FORBIDDEN = {
    "shared": ("api", "worker", "client"),
    "client": ("api", "worker", *SERVER_LIBRARIES),
    "api": ("worker", "client", "tensorflow"),
    "bench": ("tests",),  # benchmarks and the harness they share with the tests never import the tests
    "devstack": ("tests", "bench"),
}


def imported_modules(path: Path) -> set[str]:
    """Every absolute module a file imports, at the top or inside functions (relative imports stay inside
    their own package, so they are skipped)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)  # and `from api import jobs` imports api.jobs:
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def forbidden_imports(root: Path, package: str, forbidden: tuple[str, ...]) -> list[str]:
    """`file: module` for each import of a forbidden top-level module in a package's files."""
    return [
        f"{path.relative_to(root)}: {name}"
        for path in sorted((root / package).rglob("*.py"))
        for name in sorted(imported_modules(path))
        if name.split(".")[0] in forbidden
    ]


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_imports_nothing_from_the_layers_it_must_not_know(package):
    assert forbidden_imports(REPO, package, FORBIDDEN[package]) == []


def test_worker_code_leaves_redis_to_the_stores_and_imports_no_redis():
    # The stores raise StoreUnavailable (shared/redis_boundary.py): the worker never handles redis errors.
    assert forbidden_imports(REPO, "worker", ("redis",)) == []


def test_the_import_check_sees_imports_inside_functions_and_from_imports(tmp_path):
    (tmp_path / "client").mkdir()
    (tmp_path / "client" / "cli.py").write_text(
        "import json\nfrom client import sdk\n\ndef run():\n    from worker.celery_app import app\n"
        "    import api\n    from . import models\n"
    )

    assert forbidden_imports(tmp_path, "client", FORBIDDEN["client"]) == [
        "client/cli.py: api",
        "client/cli.py: worker.celery_app",
        "client/cli.py: worker.celery_app.app",
    ]


def blueprint_modules(root: Path) -> set[str]:
    """The api modules that define a Flask Blueprint (the HTTP adapters)."""
    return {f"api.{path.stem}" for path in (root / "api").glob("*.py") if "Blueprint(" in path.read_text()}


def test_no_blueprint_imports_another():
    blueprints = blueprint_modules(REPO)
    assert {"api.jobs", "api.batches", "api.events", "api.openapi"} <= blueprints  # the check sees them
    crossing = {
        module: sorted(imported_modules(REPO / "api" / f"{module[4:]}.py") & (blueprints - {module}))
        for module in blueprints
    }
    assert {module: names for module, names in crossing.items() if names} == {}


def loaded_after(code: str) -> list[str]:
    """Which server packages and libraries a fresh interpreter holds after running `code` in the repo."""
    watched = ("api", "worker", *SERVER_LIBRARIES)
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(set({watched!r}) & set(sys.modules))))"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


IMPORT_ALL_OF_CLIENT = """
import importlib, pkgutil
import client
for module in pkgutil.walk_packages(client.__path__, "client."):
    importlib.import_module(module.name)
"""


def test_importing_every_client_module_loads_no_flask_celery_boto3_tensorflow_or_server_package():
    assert loaded_after(IMPORT_ALL_OF_CLIENT) == []


def test_a_client_command_loads_no_server_package_but_the_full_help_finds_the_server_commands():
    run = "import contextlib, io\nfrom client import cli\nwith contextlib.redirect_stdout(io.StringIO()):\n"
    run += "    try:\n        cli.main({argv!r})\n    except SystemExit:\n        pass"

    assert loaded_after(run.format(argv=["status", "--help"])) == []
    assert {"api", "worker", "flask"} <= set(loaded_after(run.format(argv=["--help"])))


def test_building_the_api_with_its_celery_producer_loads_no_worker_code_or_tensorflow():
    build = "from api import create_app\nfrom shared.config import Settings\ncreate_app(Settings())"

    loaded = loaded_after(build)

    assert {"api", "flask", "celery"} <= set(loaded)
    assert not {"worker", "tensorflow", "onnxruntime"} & set(loaded)
