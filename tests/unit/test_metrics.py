"""MetricsHook counts what the lifecycle does: endings by queue and outcome, the first start's queue wait,
run durations, and optimiser steps from progress reports (each attempt's first report only sets the base);
and the API's GET /metrics answers only its scrape token (or is off, or open in open mode)."""

import hmac
import time

import pytest
from prometheus_client import REGISTRY

from api import create_app
from api.services import Services
from shared.api_keys import KeyStore
from shared.config import Settings
from shared.errors import ConfigError, Conflict
from shared.jobs import JobRecord, JobStatus
from shared.lifecycle import Lifecycle, Report
from shared.params import StyleParams
from tests.fakes import FakeJobStore, FakeObjectStore, RecordingQueue

pytestmark = pytest.mark.unit


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def queued(job_id: str, batch_id: str = "") -> JobRecord:
    return JobRecord(
        id=job_id,
        status=JobStatus.QUEUED,
        params=StyleParams.from_mapping({}),
        content_key="c",
        style_keys=("s",),
        created_at=time.time() - 5,
        batch_id=batch_id,
    )


def test_a_job_run_to_its_end_counts_its_wait_steps_ending_and_duration():
    before = {
        "ended": sample("styleforge_jobs_total", queue="bulk", outcome="succeeded"),
        "waits": sample("styleforge_queue_wait_seconds_count", queue="bulk"),
        "steps": sample("styleforge_optimizer_steps_total", queue="bulk"),
        "runs": sample("styleforge_job_duration_seconds_count", queue="bulk"),
    }
    lifecycle = Lifecycle(store=FakeJobStore(), queue=RecordingQueue())
    lifecycle.queue(queued("m1", batch_id="b1"))
    lifecycle.start("m1", attempt=1, started_at=time.time())
    for step in (0, 10, 20):
        lifecycle.progress("m1", Report(step=step, total_steps=20))
    lifecycle.requeue("m1", "worker stopping")
    lifecycle.start("m1", attempt=2, started_at=time.time())  # a second attempt: no second wait
    for step in (15, 20):  # resumed at 15: 5 more steps, not 15 again
        lifecycle.progress("m1", Report(step=step, total_steps=20))
    lifecycle.succeed("m1")
    assert sample("styleforge_jobs_total", queue="bulk", outcome="succeeded") == before["ended"] + 1
    assert sample("styleforge_queue_wait_seconds_count", queue="bulk") == before["waits"] + 1
    assert sample("styleforge_optimizer_steps_total", queue="bulk") == before["steps"] + 20 + 5
    assert sample("styleforge_job_duration_seconds_count", queue="bulk") == before["runs"] + 1


def test_a_canceled_queued_job_counts_as_canceled_and_a_refused_change_counts_nothing():
    lifecycle = Lifecycle(store=FakeJobStore(), queue=RecordingQueue())
    canceled = sample("styleforge_jobs_total", queue="interactive", outcome="canceled")
    lifecycle.queue(queued("m2"))
    lifecycle.cancel("m2", "canceled before it started")
    with pytest.raises(Conflict):
        lifecycle.cancel("m2", "again")
    assert sample("styleforge_jobs_total", queue="interactive", outcome="canceled") == canceled + 1


# GET /metrics is not public: the scrape token (STYLEFORGE_METRICS_TOKEN), off without one in required mode.
TOKEN = "scrape-token-0123456789abcdef"


def metrics_client(auth: str, token: str):
    services = Services(
        settings=Settings(auth=auth, metrics_token=token),
        store=FakeJobStore(),
        objects=FakeObjectStore(),
        queue=RecordingQueue(),
        api_keys=KeyStore(client=None),  # never asked: /metrics takes no API key
    )
    return create_app(services=services).test_client()


@pytest.mark.parametrize("auth", ["required", "open"])
def test_metrics_with_a_token_set_answer_only_the_right_bearer_token(auth):
    client = metrics_client(auth, TOKEN)

    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    for headers in ({}, {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": f"Basic {TOKEN}"}):
        refused = client.get("/metrics", headers=headers)
        assert refused.status_code == 401, headers
        assert refused.get_json()["error"]["field"] == "authorization"
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert b"styleforge_" not in refused.data


def test_metrics_without_a_token_are_off_in_required_mode_and_public_only_in_open_mode():
    off = metrics_client("required", "").get("/metrics")
    assert off.status_code == 404 and "STYLEFORGE_METRICS_TOKEN" in off.get_json()["error"]["message"]
    assert metrics_client("open", "").get("/metrics").status_code == 200


def test_the_token_is_compared_in_constant_time(monkeypatch):
    compared = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: compared.append((a, b)) or real(a, b))
    metrics_client("required", TOKEN).get("/metrics", headers={"Authorization": "Bearer guess"})
    assert compared == [(b"guess", TOKEN.encode())]


def test_the_document_describes_the_metrics_security_as_configured():
    def operation(auth: str, token: str) -> tuple[dict, dict]:
        document = metrics_client(auth, token).get("/openapi.json").get_json()
        return document["paths"]["/metrics"]["get"], document["components"].get("securitySchemes", {})

    guarded, schemes = operation("open", TOKEN)
    assert guarded["security"] == [{"metricsToken": []}] and "401" in guarded["responses"]
    assert schemes["metricsToken"]["scheme"] == "bearer"
    off, _ = operation("required", "")
    assert set(off["responses"]) == {"404"} and "security" not in off
    public, _ = operation("open", "")
    assert "200" in public["responses"] and "security" not in public


def test_a_short_token_or_a_bad_worker_metrics_address_refuses_to_start():
    with pytest.raises(ConfigError, match="STYLEFORGE_METRICS_TOKEN"):
        Settings(metrics_token="short")
    with pytest.raises(ConfigError, match="STYLEFORGE_METRICS_ADDR"):
        Settings(metrics_addr="everywhere")
    assert Settings().metrics_addr == "127.0.0.1"  # the worker's port is loopback-only unless widened
    assert Settings.from_env({"STYLEFORGE_METRICS_ADDR": "0.0.0.0"}).metrics_addr == "0.0.0.0"


def test_a_logged_settings_object_shows_no_secret():
    settings = Settings(
        redis_url="redis://:redis-pass-123@redis:6379/0",
        aws_secret_access_key="aws-secret-456",
        webhook_secret="whsec_" + "A" * 44,
        metrics_token=TOKEN,
    )
    shown = repr(settings) + str(settings)
    for secret in ("redis-pass-123", "aws-secret-456", "A" * 44, TOKEN):
        assert secret not in shown
    assert "s3_bucket='styleforge'" in shown  # the rest is still there to read
