"""One vocabulary: statuses, option choices and precisions are defined once, in shared/, and read from there.

The engine (worker/engine) and the client SDK (client/) import that vocabulary instead of keeping copies, so
these tests pin two things: that they really read shared's tables (not equal copies that could drift), and
that what they import from shared/ stays pure (no Redis, S3, Celery or Flask), so neither grows a server
dependency by reading it.
"""

import ast
import sys
from pathlib import Path

import pytest

from api.openapi import BATCH_SCHEMA, JOB_SCHEMA
from client import models
from shared import batches, config, jobs, params

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
SERVER_PACKAGES = {"redis", "boto3", "botocore", "celery", "flask", "werkzeug", "api", "worker"}
# What the engine may import from shared/: errors and pure vocabulary tables.
ENGINE_SHARED = {"shared.errors", "shared.params", "shared.config"}


def _imports(path: Path, *, top_level_only: bool = False) -> set[str]:
    """The absolute module names a file imports (at its top level only, or anywhere in it)."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in tree.body if top_level_only else ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def _top(names: set[str]) -> set[str]:
    return {name.split(".")[0] for name in names}


def _shared_closure(modules: set[str]) -> set[str]:
    """The shared modules named, and every shared module they import, transitively."""
    seen, todo = set(), [name for name in modules if name.startswith("shared.")]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo += [name for name in _imports(_path(module)) if name.startswith("shared.")]
    return seen


def _path(module: str) -> Path:
    return REPO / (module.replace(".", "/") + ".py")


def test_the_status_sets_are_the_job_status_enum():
    assert jobs.JOB_STATUSES == ("queued", "running", "succeeded", "failed", "canceled")
    assert jobs.ACTIVE_STATUSES == {"queued", "running"}
    assert jobs.TERMINAL_STATUSES == {status.value for status in jobs.JobStatus if status.is_terminal}
    assert jobs.ACTIVE_STATUSES | jobs.TERMINAL_STATUSES == set(jobs.JOB_STATUSES)
    assert not jobs.ACTIVE_STATUSES & jobs.TERMINAL_STATUSES
    assert batches.BATCH_STATUSES == (*jobs.JOB_STATUSES, "partial")
    assert batches.TERMINAL_BATCH_STATUSES == jobs.TERMINAL_STATUSES | {"partial"}


def test_the_client_reads_the_servers_status_sets_and_counts_every_status():
    assert models.TERMINAL_STATUSES is jobs.TERMINAL_STATUSES
    assert models.TERMINAL_BATCH_STATUSES is batches.TERMINAL_BATCH_STATUSES
    # Every status, then the succeeded items served from the result cache.
    assert tuple(models.Counts.__dataclass_fields__) == (*jobs.JOB_STATUSES, "cached")


def test_the_document_lists_the_same_statuses():
    assert JOB_SCHEMA["properties"]["status"]["enum"] == list(jobs.JOB_STATUSES)
    assert BATCH_SCHEMA["properties"]["status"]["enum"] == list(batches.BATCH_STATUSES)


def test_the_client_imports_no_server_package_directly_or_through_shared():
    # Top level only: `styleforge serve` and `styleforge worker` (client/cli.py) import the servers lazily.
    shared_used = set()
    for path in sorted((REPO / "client").glob("*.py")):
        names = _imports(path, top_level_only=True)
        assert not _top(names) & SERVER_PACKAGES, path.name
        shared_used |= {name for name in names if name.startswith("shared.")}
    for module in _shared_closure(shared_used):
        assert not _top(_imports(_path(module))) & SERVER_PACKAGES, module


def _imported_names(path, module: str) -> set[str]:
    """The names ``path`` imports from ``module`` (``from module import a, b``)."""
    tree = ast.parse(path.read_text())
    return {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == module
        for alias in node.names
    }


def test_the_engine_reads_the_option_choices_and_precisions_from_shared():
    pipeline = pytest.importorskip("worker.engine.pipeline")
    vgg = sys.modules["worker.engine.vgg"]
    assert pipeline.INITS is params.CHOICES["init"]
    assert pipeline.COLOR_MODES is params.CHOICES["preserve_color"]
    # Equal, and imported rather than copied: tests/unit/test_config.py reloads shared.config, which makes
    # COMPUTE_PRECISIONS a new (equal) tuple, so identity would depend on the order tests run in.
    assert vgg.PRECISIONS == config.COMPUTE_PRECISIONS
    assert "COMPUTE_PRECISIONS" in _imported_names(REPO / "worker" / "engine" / "vgg.py", "shared.config")
    assert config.PRECISIONS == ("auto", *config.COMPUTE_PRECISIONS)
    # The layers a job may match its content at are the engine's; the validator must offer exactly those.
    assert params.CHOICES["content_layer"] == vgg.CONTENT_LAYERS


def test_the_engine_imports_from_shared_only_pure_vocabulary():
    for path in sorted((REPO / "worker" / "engine").glob("*.py")):
        names = _imports(path)
        assert not _top(names) & (SERVER_PACKAGES - {"worker"}), path.name
        assert {name for name in names if name.startswith("shared")} <= ENGINE_SHARED, path.name
        assert all(name.startswith("worker.engine") for name in names if name.startswith("worker")), path.name
    assert _shared_closure(ENGINE_SHARED) == ENGINE_SHARED
    for module in ENGINE_SHARED:
        imported = _imports(_path(module))
        assert _top({name for name in imported if not name.startswith("shared")}) <= sys.stdlib_module_names


def test_every_option_is_in_exactly_one_validator_table():
    tables = [set(params.NUMBERS), set(params.CHOICES), set(params.FLAGS)]
    assert sum(len(table) for table in tables) == len(set().union(*tables))
    options = {name for name in params.PRESETS[params.DEFAULT_PRESET]}
    assert options == set().union(*tables) | {"style_blend_weights"}
