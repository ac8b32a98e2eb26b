"""Faults at the edges: Redis errors answer 503, S3 calls retry and time out as configured, bad bodies 4xx."""

import io
import json

import pytest
import redis
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError

from api import create_app
from api.services import Services
from shared.config import Settings
from shared.errors import ConfigError, StorageError, StoreUnavailable
from shared.leases import LeaseStore
from shared.storage import S3ObjectStore, make_s3_client
from shared.store import JobStore
from tests.fakes import FakeJobStore, FakeObjectStore, RecordingQueue
from tests.fixtures.badimages import noise_png

pytestmark = pytest.mark.unit

JOB_ID = "0" * 32
REDIS_DOWN = [
    redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused."),
    redis.exceptions.TimeoutError("Timeout reading from socket"),
    redis.exceptions.BusyLoadingError("Redis is loading the dataset in memory"),
]


class DownJobStore(FakeJobStore):
    """A job store whose every Redis call fails with one error."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def create(self, record, *, extra=None) -> None:
        raise self.error

    def get(self, job_id: str):
        raise self.error


def make_client(store=None, settings: Settings | None = None):
    services = Services(
        settings=settings or Settings(auth="open"),
        store=store or FakeJobStore(),
        objects=FakeObjectStore(),
        queue=RecordingQueue(),
    )
    return create_app(services=services).test_client(), services


def images() -> dict[str, tuple[io.BytesIO, str]]:
    return {
        "content": (io.BytesIO(noise_png(40, 30)), "c.png"),
        "style": (io.BytesIO(noise_png(32, 32)), "s.png"),
    }


def assert_error(response, status: int, code: str, field: str | None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    error = response.get_json()["error"]
    assert (error["code"], error["field"]) == (code, field) and error["message"]
    return error


@pytest.mark.parametrize("error", REDIS_DOWN, ids=lambda e: type(e).__name__)
def test_redis_unreachable_answers_503_json_with_retry_after(error):
    client, _ = make_client(DownJobStore(error))
    response = client.get(f"/v1/jobs/{JOB_ID}")
    assert_error(response, 503, "unavailable", None)
    assert response.headers["Retry-After"] == "5"


@pytest.mark.parametrize("error", REDIS_DOWN, ids=lambda e: type(e).__name__)
def test_a_submission_while_redis_is_down_answers_503_and_enqueues_nothing(error):
    client, services = make_client(DownJobStore(error))
    response = client.post("/v1/jobs", data={**images(), "max_dim": "32"}, content_type="multipart/form-data")
    assert_error(response, 503, "unavailable", None)
    assert services.queue.enqueued == []


def test_other_errors_also_carry_a_null_field():
    client, _ = make_client()
    assert_error(client.get("/no/such/route"), 404, "not_found", None)


@pytest.mark.parametrize(
    "body",
    [
        b'{"styles": ["a.png"], ',
        b"{'styles': []}",
        b'{"styles": "\xff"}',
        b"",
        b'{"params": {"steps": ' + b"9" * 5000 + b"}}",
    ],
    ids=["cut short", "single quotes", "not utf-8", "empty", "huge int"],
)
def test_a_malformed_json_batch_body_answers_400_naming_the_body(body):
    client, _ = make_client()
    response = client.post("/v1/batches", data=body, content_type="application/json")
    error = assert_error(response, 400, "invalid_input", "body")
    assert "not valid JSON" in error["message"]


def test_a_deeply_nested_json_body_answers_400_not_500():
    client, _ = make_client()
    response = client.post("/v1/batches", data=b"[" * 100_000, content_type="application/json")
    assert_error(response, 400, "invalid_input", "body")


@pytest.mark.parametrize("body", [b"[]", b'"styles"', b"null"])
def test_a_json_batch_body_that_is_not_an_object_answers_400_naming_the_body(body):
    client, _ = make_client()
    assert_error(
        client.post("/v1/batches", data=body, content_type="application/json"), 400, "invalid_input", "body"
    )


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (json.dumps({"content": "c.png", "style": "s.png"}), "application/json"),
        ("content=c.png", "text/plain"),
        (noise_png(40, 30), "image/png"),
        ("--x\r\nbroken", "multipart/form-data; boundary=x"),
    ],
    ids=["json", "text", "raw png", "broken multipart"],
)
def test_a_job_body_that_is_not_multipart_answers_400_naming_the_content_field(body, content_type):
    client, services = make_client()
    response = client.post("/v1/jobs", data=body, content_type=content_type)
    error = assert_error(response, 400, "invalid_input", "content")
    assert "multipart" in error["message"]
    assert services.store.records == {} and services.queue.enqueued == []


def test_a_job_body_over_the_upload_limit_answers_413_and_stores_nothing():
    client, services = make_client(settings=Settings(auth="open", max_upload_bytes=64 * 1024))
    data = {**images(), "content": (io.BytesIO(b"\0" * (64 * 1024 + 1)), "c.png")}
    response = client.post("/v1/jobs", data=data, content_type="multipart/form-data")
    assert_error(response, 413, "too_large", None)
    assert services.store.records == {}


S3_SETTINGS = Settings(s3_endpoint_url="http://127.0.0.1:9", aws_access_key_id="k", aws_secret_access_key="s")


def test_s3_client_carries_the_retry_and_timeout_settings():
    settings = S3_SETTINGS.override(s3_max_attempts=7, s3_connect_timeout_s=1.5, s3_read_timeout_s=9.0)
    config = make_s3_client(settings).meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": 7}
    assert (config.connect_timeout, config.read_timeout) == (1.5, 9.0)


def test_s3_defaults_are_five_attempts_and_bounded_timeouts():
    config = make_s3_client(S3_SETTINGS).meta.config
    assert config.retries["total_max_attempts"] == 5
    assert (config.connect_timeout, config.read_timeout) == (5.0, 60.0)


class _EmptyBody:
    def stream(self, **_: object):
        yield b""


@pytest.mark.parametrize("attempts", [1, 3])
def test_a_failing_s3_call_is_attempted_s3_max_attempts_times_then_raises_storage_error(attempts):
    client = make_s3_client(S3_SETTINGS.override(s3_max_attempts=attempts))
    sent: list[str] = []

    def answer_503(request, **_: object) -> AWSResponse:
        sent.append(request.url)
        return AWSResponse(request.url, 503, {}, _EmptyBody())

    client.meta.events.register("before-send.s3", answer_503)
    store = S3ObjectStore(client=client, bucket="b", presign_expiry_s=60)
    with pytest.raises(StorageError, match="download k"):
        store.get("k")
    assert len(sent) == attempts


def test_a_download_that_times_out_mid_body_is_a_storage_error():
    class Body:
        def read(self) -> bytes:
            raise ReadTimeoutError(endpoint_url="http://s3")

    class Client:
        def get_object(self, **_: object) -> dict:
            return {"Body": Body()}

    with pytest.raises(StorageError, match="download k"):
        S3ObjectStore(client=Client(), bucket="b", presign_expiry_s=60).get("k")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("STYLEFORGE_S3_MAX_ATTEMPTS", "0"),
        ("STYLEFORGE_S3_CONNECT_TIMEOUT_S", "0"),
        ("STYLEFORGE_S3_READ_TIMEOUT_S", "0"),
    ],
)
def test_s3_settings_below_their_minimum_are_refused_naming_the_variable(variable, value):
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env({variable: value})


def test_s3_settings_are_read_from_the_environment():
    settings = Settings.from_env({"STYLEFORGE_S3_MAX_ATTEMPTS": "2", "STYLEFORGE_S3_READ_TIMEOUT_S": "12.5"})
    assert (settings.s3_max_attempts, settings.s3_read_timeout_s) == (2, 12.5)


def unreachable_redis() -> redis.Redis:
    """A client for a port nothing listens on: every call is refused at once."""
    return redis.Redis(host="127.0.0.1", port=9, socket_connect_timeout=1, decode_responses=True)


class WrongTypeRedis:
    """A client whose every call finds a key of another type: a Redis error that is no outage."""

    def __getattr__(self, name: str):
        def call(*args, **kwargs):
            raise redis.exceptions.ResponseError("WRONGTYPE Operation against a key holding the wrong kind")

        return call


def test_a_store_over_an_unreachable_redis_raises_store_unavailable_naming_the_cause():
    store = JobStore(client=unreachable_redis(), ttl_s=60, events_maxlen=10)
    with pytest.raises(StoreUnavailable, match=r"Redis.*ConnectionError.*retry shortly") as raised:
        store.get(JOB_ID)
    assert raised.value.transient and isinstance(raised.value.__cause__, redis.ConnectionError)
    with pytest.raises(StoreUnavailable):
        LeaseStore(client=unreachable_redis(), holder="w", lease_s=1).renew(JOB_ID)
    with pytest.raises(StoreUnavailable):
        store.try_reaper_lock("w", 1000)


def test_the_api_answers_503_json_when_its_store_cannot_reach_redis():
    client, _ = make_client(JobStore(client=unreachable_redis(), ttl_s=60, events_maxlen=10))
    response = client.get(f"/v1/jobs/{JOB_ID}")
    error = assert_error(response, 503, "unavailable", None)
    assert error["message"] == "the job store (Redis) is unreachable; retry shortly"
    assert response.headers["Retry-After"] == "5"


def test_a_redis_error_that_is_no_outage_answers_500_not_503(caplog):
    store = JobStore(client=WrongTypeRedis(), ttl_s=60, events_maxlen=10)
    with pytest.raises(StoreUnavailable) as raised:
        store.get_with_snapshots(JOB_ID)
    assert not raised.value.transient and "WRONGTYPE" in raised.value.message
    client, _ = make_client(store)
    assert_error(client.get(f"/v1/jobs/{JOB_ID}"), 500, "internal_error", None)
    assert "WRONGTYPE" in caplog.text  # logged with its traceback, as any unexpected error
