"""Fixtures: real servers for integration tests (devstack.processes), started once per session, free ports."""

import base64

import pytest

from devstack.env import stack_env
from devstack.processes import ApiServer, RedisServer, S3Server, WorkerProcess, free_port
from shared import keys


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_server():
    server = S3Server()
    yield server
    server.stop()


# Webhooks: a fixed test secret (never a deployment's), the local receiver's host allowlisted, short backoff.
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"styleforge-tests-webhook-key-32b").decode()
WEBHOOK_ENV = {
    "STYLEFORGE_WEBHOOK_SECRET": WEBHOOK_SECRET,
    "STYLEFORGE_WEBHOOK_ALLOWLIST": "127.0.0.1",
    "STYLEFORGE_WEBHOOK_BACKOFF_S": "0.2",
    "STYLEFORGE_WEBHOOK_TIMEOUT_S": "5",
}


@pytest.fixture(scope="session")
def stack_settings(redis_server, s3_server):
    from shared.config import Settings

    return Settings.from_env(stack_env(redis_server.url(0), s3_server.endpoint, "sf-test"))


@pytest.fixture(scope="session")
def worker(redis_server, s3_server, tmp_path_factory):
    # A GPU worker as deployed: it signs and queues webhooks (`api` accepts none; `webhook_api` does).
    metrics_port = free_port()  # its own Prometheus endpoint, as a deployed worker has
    env = {**worker_env(redis_server, s3_server), "STYLEFORGE_METRICS_PORT": str(metrics_port)}
    process = WorkerProcess(env, tmp_path_factory.mktemp("worker") / "worker.log")
    process.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    yield process
    process.stop()


@pytest.fixture(scope="session")
def api(stack_settings, worker):
    """The API over real HTTP, in front of the real worker."""
    from api import create_app

    server = ApiServer(create_app(stack_settings))
    yield server
    server.stop()


# A plain `celery worker` on the webhooks queue only (threads, no model).
WEBHOOK_WORKER = ["celery", "-A", "worker.celery_app", "worker", "-Q", keys.WEBHOOKS_QUEUE]
WEBHOOK_WORKER += ["--pool", "threads", "--concurrency", "4", "--loglevel", "INFO"]


def worker_env(redis_server, s3_server) -> dict[str, str]:
    """What every test worker runs with: the test servers, webhooks signed and allowed to this host, and up to
    3 batch items of one bucket optimised together (so every batch test runs through job groups)."""
    env = {**stack_env(redis_server.url(0), s3_server.endpoint, "sf-test"), **WEBHOOK_ENV}
    return {**env, "STYLEFORGE_GROUP_JOBS": "3"}


@pytest.fixture(scope="session")
def webhook_settings(redis_server, s3_server):
    """The stack's settings plus the webhook secret, allowlist and short backoff."""
    from shared.config import Settings

    return Settings.from_env(worker_env(redis_server, s3_server))


@pytest.fixture(scope="session")
def webhook_worker(redis_server, s3_server, tmp_path_factory):
    """`celery -A worker.celery_app worker -Q webhooks --pool threads`: delivers webhooks, loads no model."""
    log_path = tmp_path_factory.mktemp("hooks") / "hooks.log"
    process = WorkerProcess(
        worker_env(redis_server, s3_server), log_path, name="hooks", command=WEBHOOK_WORKER
    )
    yield process
    process.stop()


@pytest.fixture(scope="session")
def webhook_api(webhook_settings, worker, webhook_worker):
    """The API over real HTTP with webhooks enabled, in front of the real worker and the webhook worker."""
    from api import create_app

    server = ApiServer(create_app(webhook_settings))
    yield server
    server.stop()
