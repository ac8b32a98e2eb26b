"""Fixtures: real servers for integration tests, started once per session on free ports."""

import pytest

from tests.servers import ApiServer, RedisServer, S3Server, WorkerProcess


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


def stack_env(redis_url: str, s3_endpoint: str, bucket: str) -> dict[str, str]:
    """Environment for a worker (and settings for the API) pointing at the test servers."""
    return {
        "STYLEFORGE_REDIS_URL": redis_url,
        "STYLEFORGE_S3_ENDPOINT_URL": s3_endpoint,
        "STYLEFORGE_S3_BUCKET": bucket,
        "STYLEFORGE_VGG_WEIGHTS": "random",
        "STYLEFORGE_PROGRESS_EVERY": "2",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


@pytest.fixture(scope="session")
def stack_settings(redis_server, s3_server):
    from shared.config import Settings

    return Settings.from_env(stack_env(redis_server.url(0), s3_server.endpoint, "sf-test"))


@pytest.fixture(scope="session")
def worker(redis_server, s3_server, tmp_path_factory):
    env = stack_env(redis_server.url(0), s3_server.endpoint, "sf-test")
    process = WorkerProcess(env, tmp_path_factory.mktemp("worker") / "worker.log")
    yield process
    process.stop()


@pytest.fixture(scope="session")
def api(stack_settings, worker):
    """The API over real HTTP, in front of the real worker."""
    from api import create_app

    server = ApiServer(create_app(stack_settings))
    yield server
    server.stop()
