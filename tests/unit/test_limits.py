"""Rate limits on the app with fake services (Flask-Limiter counting in memory); the Redis-backed limits are
tested over real HTTP in tests/integration/test_limits.py."""

import pytest

from api import create_app
from api.services import Services
from devstack.processes import free_port
from shared.config import Settings
from shared.errors import ConfigError
from tests.fakes import FakeJobStore, FakeObjectStore, RecordingQueue

pytestmark = pytest.mark.unit

UNKNOWN = "/v1/jobs/" + "0" * 32


def make_client(storage: str = "memory://", **limits: str):
    settings = Settings(auth="open").override(**limits)
    fakes = {"store": FakeJobStore(), "objects": FakeObjectStore(), "queue": RecordingQueue()}
    services = Services(settings=settings, rate_limit_storage_uri=storage, **fakes)
    return create_app(services=services).test_client()


def test_reads_past_the_limit_get_429_and_cancels_count_as_reads_not_submissions():
    client = make_client(rate_limit_read="2/minute", rate_limit_submit="1/minute")
    first = client.get(UNKNOWN)
    cancel = client.post(UNKNOWN + "/cancel")
    refused = client.get(UNKNOWN)

    assert first.status_code == 404 and first.headers["RateLimit-Remaining"] == "1"
    assert cancel.status_code == 404 and cancel.headers["RateLimit-Remaining"] == "0"
    body = refused.get_json()["error"]
    assert refused.status_code == 429 and body["code"] == "rate_limited" and body["limit"]["name"] == "read"
    assert int(refused.headers["Retry-After"]) >= 1


def test_a_submission_counts_in_its_own_bucket():
    client = make_client(rate_limit_read="1/minute", rate_limit_submit="2/minute")
    client.get(UNKNOWN)
    submitted = client.post("/v1/jobs", data={})  # refused 400, counted all the same

    assert submitted.status_code == 400 and submitted.headers["RateLimit-Limit"] == "2"
    assert submitted.headers["RateLimit-Remaining"] == "1"


def test_health_and_openapi_carry_no_limit():
    client = make_client(rate_limit_read="1/minute", rate_limit_submit="1/minute")
    answers = [client.get(path) for path in ("/healthz", "/openapi.json") * 2]

    assert [r.status_code for r in answers] == [200] * 4
    assert not any("RateLimit-Limit" in r.headers for r in answers)


def test_empty_limits_turn_rate_limiting_off():
    client = make_client(rate_limit_read="", rate_limit_submit="")
    answers = [client.get(UNKNOWN) for _ in range(3)]

    assert [r.status_code for r in answers] == [404] * 3 and "RateLimit-Limit" not in answers[0].headers


def test_with_its_redis_unreachable_the_limiter_lets_requests_through_without_headers(caplog):
    client = make_client(f"redis://127.0.0.1:{free_port()}/0", rate_limit_read="1/minute")  # nothing listens
    answers = [client.get(UNKNOWN) for _ in range(3)]

    assert [r.status_code for r in answers] == [404] * 3  # the fake job store's answer, not a 429 or a 500
    assert "RateLimit-Limit" not in answers[0].headers
    assert "Failed to rate limit" in caplog.text


def test_a_malformed_limit_is_refused_at_start_naming_the_setting():
    with pytest.raises(ConfigError, match="STYLEFORGE_RATE_LIMIT_SUBMIT"):
        make_client(rate_limit_submit="lots")


def test_the_openapi_document_names_the_429s_their_headers_and_the_quota_403():
    doc = make_client(rate_limit_read="5/minute").get("/openapi.json").get_json()
    submit, read = doc["paths"]["/v1/jobs"]["post"]["responses"], doc["paths"]["/v1/jobs"]["get"]["responses"]
    components = doc["components"]["responses"]

    assert submit["429"] == {"$ref": "#/components/responses/TooManyRequests"}
    assert submit["403"] == {"$ref": "#/components/responses/QuotaForbidden"}
    assert read["429"] == {"$ref": "#/components/responses/RateLimited"} and "403" not in read
    assert {"Retry-After", "RateLimit-Remaining"} <= set(components["RateLimited"]["headers"])
    assert (
        "RateLimit-Reset" in submit["202"]["headers"]
        and "429" not in doc["paths"]["/healthz"]["get"]["responses"]
    )
