"""A GPU worker in the middle of a job still answers Celery's remote control: `inspect ping` and `inspect
active` (naming the running job), so Flower and a liveness probe see a busy worker as alive."""

import pytest
import requests

from devstack.processes import wait_until
from shared import keys
from shared.celery_config import create_producer
from tests.integration.helpers import png_bytes, submit, wait_for_terminal

pytestmark = pytest.mark.integration


def test_a_busy_worker_answers_ping_and_names_its_running_job(api, worker, stack_settings):
    job_id = submit(
        api.url, content=png_bytes(64, 48), style=png_bytes(32, 32), steps="5000", max_dim="64"
    ).json()["id"]
    try:
        wait_until(
            lambda: requests.get(f"{api.url}/v1/jobs/{job_id}", timeout=10).json()["progress"]["step"] >= 2,
            timeout=120,
            what="the job to be running",
        )
        inspect = create_producer(stack_settings).control.inspect(timeout=5)
        pongs = inspect.ping() or {}
        active = inspect.active() or {}
        assert pongs and all(reply == {"ok": "pong"} for reply in pongs.values()), pongs
        running = [task for tasks in active.values() for task in tasks]
        assert [(task["name"], task["args"]) for task in running] == [(keys.STYLIZE_TASK, [job_id])], active
        assert requests.get(f"{api.url}/v1/jobs/{job_id}", timeout=10).json()["status"] == "running"
    finally:
        requests.post(f"{api.url}/v1/jobs/{job_id}/cancel", timeout=10)
        assert wait_for_terminal(api.url, job_id, timeout=120)["status"] == "canceled"
