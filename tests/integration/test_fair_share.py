"""Fair share between tenants on the real stack (issue 14, done-when 4): tenant A submits a 40-item batch,
then tenant B a 5-item batch, to one worker (which groups up to 3 items of a batch); all of B's items finish
before A's 15th. The API runs in required mode, so each batch is owned by its key's tenant. The control, a
stack of its own with fair share off (K = 0), finishes B after A's 15th (after all of A: FIFO).

The release logic itself is tested in test_fair_share_release.py.
"""

import pytest
import requests

from devstack.processes import ApiServer, WorkerProcess, wait_until
from shared.api_keys import KeyStore
from shared.store import build_job_store
from tests.conftest import worker_env
from tests.fixtures.badimages import noise_png

pytestmark = pytest.mark.integration

TINY = {"preset": "seed", "steps": "2", "max_dim": "32"}
CONTROL_DB = 16  # the control's own database: the session's worker never sees its jobs


@pytest.fixture(scope="module")
def fair_api(stack_settings, worker):
    """The API in required mode in front of the session's worker, both at the default K."""
    from api import create_app

    settings = stack_settings.override(auth="required")
    assert settings.fair_share_items == 4
    server = ApiServer(create_app(settings))
    yield server, settings
    server.stop()


@pytest.fixture(scope="module")
def unfair_api(stack_settings, redis_server, s3_server, tmp_path_factory):
    """A worker of its own and the API in required mode, both with fair share off, on their own database."""
    from api import create_app

    settings = stack_settings.override(
        auth="required", redis_url=redis_server.url(CONTROL_DB), fair_share_items=0
    )
    build_job_store(settings).client.flushdb()
    env = {
        **worker_env(redis_server, s3_server),
        "STYLEFORGE_REDIS_URL": settings.redis_url,
        "STYLEFORGE_FAIR_SHARE_ITEMS": "0",
    }
    process = WorkerProcess(env, tmp_path_factory.mktemp("unfair") / "worker.log", name="unfair")
    server = ApiServer(create_app(settings))
    yield server, settings
    server.stop()
    process.stop()
    build_job_store(settings).client.flushdb()


def post_batch(base_url: str, key: str, size: int, seed: int) -> list[str]:
    """A batch of ``size`` distinct tiny images owned by ``key``'s tenant; its job ids in submission order."""
    files = [("content", (f"{n}.png", noise_png(40, 40, seed=seed + n))) for n in range(size)]
    files.append(("style", ("style.png", noise_png(32, 32, seed=seed - 1))))
    headers = {"Authorization": f"Bearer {key}"}
    response = requests.post(f"{base_url}/v1/batches", files=files, data=TINY, headers=headers, timeout=60)
    assert response.status_code == 202, response.text
    batch_id = response.json()["id"]
    view = requests.get(f"{base_url}/v1/batches/{batch_id}?limit=100", headers=headers, timeout=10).json()
    return [row["job_id"] for row in view["items"]]


def two_tenants(server: ApiServer, settings) -> tuple[list[float], float]:
    """A submits 40 items, then B 5; once all succeeded: A's finish times in order, and B's last."""
    store = build_job_store(settings)
    keys = KeyStore(client=store.client)
    key_a, key_b = keys.create("fair-a").key, keys.create("fair-b").key
    a_ids = post_batch(server.url, key_a, 40, seed=1000)
    b_ids = post_batch(server.url, key_b, 5, seed=2000)
    assert len(a_ids) == 40 and len(b_ids) == 5

    def all_ended() -> bool:
        return all(store.get(job_id).status.is_terminal for job_id in a_ids + b_ids)

    wait_until(all_ended, timeout=240, what="both batches to finish", interval=0.5)
    records = {job_id: store.get(job_id) for job_id in a_ids + b_ids}
    assert {record.status.value for record in records.values()} == {"succeeded"}
    assert {records[job_id].owner for job_id in a_ids} == {"fair-a"}
    assert {records[job_id].owner for job_id in b_ids} == {"fair-b"}
    a_finished = sorted(records[job_id].finished_at for job_id in a_ids)
    b_last = max(records[job_id].finished_at for job_id in b_ids)
    before = sum(finished < b_last for finished in a_finished)
    print(f"K={settings.fair_share_items}: {before} of A's 40 items finished before B's last")  # with -s
    return a_finished, b_last


def test_tenant_b_five_items_all_finish_before_tenant_a_fifteenth(fair_api):
    a_finished, b_last = two_tenants(*fair_api)
    assert b_last < a_finished[14]


@pytest.mark.slow  # a worker of its own and 45 more jobs (~50 s); test_fair_share_release.py's K=0 simulation
# is the control in `make test`
def test_without_fair_share_tenant_b_waits_behind_tenant_a(unfair_api):
    a_finished, b_last = two_tenants(*unfair_api)
    assert b_last > a_finished[14]
