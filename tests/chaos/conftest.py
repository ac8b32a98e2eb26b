"""The chaos stack: AOF redis-server, moto's S3 server behind a pausable proxy, the API, two workers.

Chaos tests run only when asked for (`make chaos`, i.e. `pytest -m chaos tests/chaos`): `make test` deselects
them, since each case waits out worker restarts and lease expiries.
"""

import boto3
import pytest

from devstack.env import stack_env
from devstack.processes import ApiServer, RedisServer, S3Server
from tests.chaos.stack import PausableProxy, WorkerPool

BUCKET = "sf-chaos"
# Short leases, frequent reaping and checkpoints, so each fault is recovered from in seconds.
CHAOS_ENV = {
    "STYLEFORGE_LEASE_S": "2",
    "STYLEFORGE_REAPER_INTERVAL_S": "0.5",
    "STYLEFORGE_CHECKPOINT_EVERY": "5",
    "STYLEFORGE_SHUTDOWN_GRACE_S": "20",
}


def pytest_collection_modifyitems(config, items):
    if "chaos" in (config.getoption("markexpr") or ""):
        return
    chosen = [item for item in items if "chaos" not in item.keywords]
    deselected = [item for item in items if "chaos" in item.keywords]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = chosen


@pytest.fixture(scope="module")
def chaos(tmp_path_factory):
    redis_server = RedisServer(tmp_path_factory.mktemp("aof"), aof=True)
    s3 = S3Server()
    proxy = PausableProxy(s3.port)
    _versioned_bucket(s3.endpoint)
    env = {**stack_env(redis_server.url(0), proxy.endpoint, BUCKET), **CHAOS_ENV}
    pool = WorkerPool(env, tmp_path_factory.mktemp("chaos-workers"), size=2)
    from api import create_app
    from shared.config import Settings

    settings = Settings.from_env(env)
    api = ApiServer(create_app(settings))
    yield Chaos(redis=redis_server, s3=s3, proxy=proxy, pool=pool, api=api, settings=settings)
    api.stop()
    pool.stop()
    proxy.pause()
    s3.stop()
    redis_server.stop()


def _versioned_bucket(endpoint: str) -> None:
    # Versioning shows every write of a key: a result written twice has two versions.
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=BUCKET)
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})


class Chaos:
    """Handles on every part of the chaos stack."""

    def __init__(self, *, redis, s3, proxy, pool, api, settings) -> None:
        self.redis, self.s3, self.proxy, self.pool, self.api, self.settings = (
            redis,
            s3,
            proxy,
            pool,
            api,
            settings,
        )
