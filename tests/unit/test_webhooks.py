"""Webhooks without servers: the SSRF guard, event parsing, signatures, the notifier's filter and throttle,
the delivery attempt and its backoff, and the webhooks-only worker's choice not to load a model."""

import base64
import io
import json
import socket

import pytest
import requests
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from api import create_app
from api.services import Services
from shared import keys
from shared.config import Settings
from shared.errors import ConfigError, InvalidInput
from shared.jobs import JobRecord, JobStatus
from shared.notify import WebhookNotifier
from shared.params import StyleParams
from shared.webhooks import (
    DELIVER_TASK,
    EVENT_KINDS,
    WebhookMessage,
    check_url,
    checked_addresses,
    job_snapshot,
    parse_events,
    parse_webhook,
    signed_headers,
)
from tests.fakes import FakeJobStore, FakeObjectStore, RecordingQueue
from tests.fixtures.badimages import noise_png
from worker.bootstrap import consumes_gpu_queues
from worker.celery_app import create_celery
from worker.webhooks import PinnedUrl, backoff_s, deliver_webhook, pin_target, post_once, should_retry

pytestmark = pytest.mark.unit

SECRET = "whsec_" + base64.b64encode(b"unit-test-webhook-secret-32bytes").decode()


def resolver(*addresses: str):
    """A getaddrinfo stand-in answering the given addresses for any host."""

    def resolve(host, port, **_):
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in addresses
        ]

    return resolve


def no_dns(host, port, **_):
    raise AssertionError(f"{host} should not have been resolved")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://127.1.2.3:8080/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://172.16.5.4/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://0.0.0.0/hook",
        "http://224.0.0.1/hook",
        "http://[::1]/hook",
        "http://[fe80::1]/hook",
        "http://[fc00::1]/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "https://[::]/hook",
    ],
)
def test_the_ssrf_guard_refuses_loopback_private_link_local_and_other_non_public_addresses(url):
    with pytest.raises(InvalidInput) as err:
        check_url(url, allowlist="")
    assert err.value.field == "webhook"


def test_a_name_that_resolves_to_any_private_address_is_refused():
    with pytest.raises(InvalidInput, match="10.0.0.7, a private address"):
        check_url("https://hooks.example.com/x", allowlist="", resolve=resolver("93.184.216.34", "10.0.0.7"))


def test_a_name_that_does_not_resolve_is_refused():
    def fail(host, port, **_):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(InvalidInput, match="does not resolve"):
        check_url("https://nowhere.invalid/x", allowlist="", resolve=fail)


@pytest.mark.parametrize("url", ["http://93.184.216.34/hook", "https://[2606:4700:4700::1111]:8443/hook"])
def test_a_public_ip_literal_is_accepted(url):
    check_url(url, allowlist="")


def test_a_public_name_is_accepted():
    check_url("https://hooks.example.com/x", allowlist="", resolve=resolver("93.184.216.34"))


@pytest.mark.parametrize(
    ("url", "allowlist"),
    [
        ("http://127.0.0.1:5000/hook", "127.0.0.1"),
        ("http://127.0.0.1:5000/hook", "other.example, 127.0.0.1:5000"),
        ("http://[::1]:5000/hook", "[::1]:5000"),
        ("http://LOCALHOST/hook", "localhost:80"),
        ("https://hooks.internal/x", "hooks.internal"),
    ],
)
def test_an_allowlisted_host_or_host_port_is_accepted_without_resolving(url, allowlist):
    check_url(url, allowlist=allowlist, resolve=no_dns)


def test_an_allowlisted_host_port_does_not_open_the_hosts_other_ports():
    with pytest.raises(InvalidInput, match="loopback"):
        check_url("http://127.0.0.1:6379/", allowlist="127.0.0.1:5000")


@pytest.mark.parametrize(
    "url",
    [
        "ftp://93.184.216.34/x",
        "file:///etc/passwd",
        "gopher://93.184.216.34/",
        "javascript:alert(1)",
        "http:///no-host",
        "hooks.example.com/x",
        "http://user:pw@93.184.216.34/",
        "http://93.184.216.34:99999/",
    ],
)
def test_a_url_that_is_not_plain_http_or_https_is_refused(url):
    with pytest.raises(InvalidInput) as err:
        check_url(url, allowlist="127.0.0.1", resolve=no_dns)
    assert err.value.field == "webhook"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, EVENT_KINDS),
        ("", EVENT_KINDS),
        ("completed", ("completed",)),
        ("completed, start", ("start", "completed")),
        ('["progress", "completed"]', ("progress", "completed")),
        (["start"], ("start",)),
    ],
)
def test_webhook_events_take_a_list_or_a_comma_string_and_default_to_all(raw, expected):
    assert parse_events(raw) == expected


@pytest.mark.parametrize(
    "raw", ["finished", "start,done", '["start", 3]', "[not json", {"start": 1}, ",", "[]"]
)
def test_bad_webhook_events_are_refused_naming_the_field(raw):
    with pytest.raises(InvalidInput) as err:
        parse_events(raw)
    assert err.value.field == "webhook_events"


def test_no_webhook_is_no_target_but_events_without_a_url_are_refused():
    assert parse_webhook(None, None, allowlist="", secret=SECRET).url == ""
    with pytest.raises(InvalidInput) as err:
        parse_webhook("", "completed", allowlist="", secret=SECRET)
    assert err.value.field == "webhook_events"


def test_a_deployment_without_a_secret_refuses_webhooks_rather_than_send_them_unsigned():
    with pytest.raises(InvalidInput, match="STYLEFORGE_WEBHOOK_SECRET") as err:
        parse_webhook("http://93.184.216.34/hook", None, allowlist="", secret="")
    assert err.value.field == "webhook"


@pytest.mark.parametrize(
    "secret", ["abc", "whsec_abc", "whsec_" + base64.b64encode(b"short").decode(), "whsec_!!"]
)
def test_a_malformed_webhook_secret_stops_the_deployment_at_start(secret):
    with pytest.raises(ConfigError, match="STYLEFORGE_WEBHOOK_SECRET"):
        Settings(webhook_secret=secret)


def test_webhook_settings_are_read_from_the_environment():
    settings = Settings.from_env(
        {
            "STYLEFORGE_WEBHOOK_SECRET": SECRET,
            "STYLEFORGE_WEBHOOK_ALLOWLIST": "127.0.0.1",
            "STYLEFORGE_WEBHOOK_BACKOFF_S": "0.2",
            "STYLEFORGE_WEBHOOK_MAX_ATTEMPTS": "3",
            "STYLEFORGE_WEBHOOK_TIMEOUT_S": "2.5",
        }
    )
    assert (settings.webhook_backoff_s, settings.webhook_max_attempts, settings.webhook_timeout_s) == (
        0.2,
        3,
        2.5,
    )


def record(**changes) -> JobRecord:
    base = JobRecord(
        id="a" * 32,
        status=JobStatus.RUNNING,
        params=StyleParams.from_mapping({}),
        content_key="inputs/c.png",
        style_keys=("inputs/s.png",),
        created_at=1.0,
        total_steps=10,
        webhook="https://hooks.example.com/x",
        webhook_events=EVENT_KINDS,
    )
    return base.with_changes(**changes)


def test_a_signed_message_verifies_with_standardwebhooks_and_a_tampered_body_does_not():
    message = WebhookMessage.build("https://hooks.example.com/x", "completed", job_snapshot(record()))
    headers = signed_headers(SECRET, message.msg_id, message.body)
    payload = Webhook(SECRET).verify(message.body, headers)
    assert payload["type"] == "job.completed" and payload["data"]["id"] == "a" * 32
    tampered = message.body.replace('"running"', '"succeeded"')
    assert tampered != message.body
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(tampered, headers)
    other = "whsec_" + base64.b64encode(b"another-secret-of-thirty-two-b!!").decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(message.body, headers)


def test_the_payload_carries_the_event_type_a_timestamp_and_the_job_snapshot():
    finished = record(
        status=JobStatus.SUCCEEDED, step=10, losses={"total": 1.5}, result_key="jobs/a/result.png"
    )
    payload = json.loads(
        WebhookMessage.build("https://h.example/x", "completed", job_snapshot(finished)).body
    )
    assert payload["type"] == "job.completed" and payload["timestamp"].endswith("+00:00")
    assert payload["data"] == {
        "id": "a" * 32,
        "status": "succeeded",
        "step": 10,
        "total_steps": 10,
        "losses": {"total": 1.5},
        "error": None,
        "result_key": "jobs/a/result.png",
        "batch_id": None,
        "path": None,
    }


class RecordingCelery:
    """Remembers send_task calls instead of talking to a broker."""

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[dict] = []
        self.fail = fail

    def send_task(self, name, *, args, queue):
        if self.fail:
            raise ConnectionError("broker down")
        self.sent.append({"name": name, "queue": queue, "payload": json.loads(args[2]), "url": args[0]})

    def types(self) -> list[str]:
        return [sent["payload"]["type"] for sent in self.sent]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_webhooks_are_throttled_to_one_per_interval_per_job():
    celery, clock = RecordingCelery(), FakeClock()
    notifier = WebhookNotifier(celery=celery, min_progress_interval_s=1.0, clock=clock)
    notifier.started(record())
    notifier.started(record(id="b" * 32))
    for tick, step in [(0.0, 1), (0.5, 2), (0.99, 3), (1.0, 4), (1.6, 5), (2.1, 6)]:
        clock.now = 100.0 + tick
        notifier.progress("a" * 32, step=step, total_steps=10, losses={"total": float(step)})
        notifier.progress("b" * 32, step=step, total_steps=10, losses={})
    sent_steps = [(s["payload"]["data"]["id"][0], s["payload"]["data"]["step"]) for s in celery.sent[2:]]
    assert sent_steps == [("a", 1), ("b", 1), ("a", 4), ("b", 4), ("a", 6), ("b", 6)]
    assert celery.sent[2]["payload"]["data"]["losses"] == {"total": 1.0}


def test_every_delivery_goes_to_the_webhooks_queue_by_task_name():
    celery = RecordingCelery()
    notifier = WebhookNotifier(celery=celery)
    notifier.started(record())
    notifier.progress(record(), step=3, total_steps=10, losses={})
    notifier.completed(record(status=JobStatus.SUCCEEDED))
    assert celery.types() == ["job.started", "job.progress", "job.completed"]
    assert {(s["name"], s["queue"], s["url"]) for s in celery.sent} == {
        (DELIVER_TASK, keys.WEBHOOKS_QUEUE, "https://hooks.example.com/x")
    }


def test_only_the_subscribed_events_are_sent():
    celery = RecordingCelery()
    notifier = WebhookNotifier(celery=celery)
    job = record(webhook_events=("completed",))
    notifier.started(job)
    notifier.progress(job.id, step=1, total_steps=10, losses={})
    notifier.completed(job.with_changes(status=JobStatus.FAILED, error="out of memory"))
    assert celery.types() == ["job.completed"]
    assert celery.sent[0]["payload"]["data"]["error"] == "out of memory"


def test_a_job_without_a_webhook_sends_nothing_and_progress_of_an_unknown_job_is_ignored():
    celery = RecordingCelery()
    notifier = WebhookNotifier(celery=celery)
    job = record(webhook="", webhook_events=())
    notifier.started(job)
    notifier.progress(job.id, step=1, total_steps=10, losses={})
    notifier.progress("f" * 32, step=1, total_steps=10, losses={})
    notifier.completed(job)
    assert celery.sent == []


def test_a_broker_failure_never_fails_the_job():
    notifier = WebhookNotifier(celery=RecordingCelery(fail=True))
    notifier.started(record())
    notifier.completed(record(status=JobStatus.SUCCEEDED))


def test_backoff_doubles_from_the_base_and_is_capped():
    assert [backoff_s(retries, 10.0) for retries in range(6)] == [10, 20, 40, 80, 160, 320]
    assert backoff_s(30, 10.0) == 3600


@pytest.mark.parametrize(
    ("status", "retry"),
    [(None, True), (429, True), (500, True), (503, True), (400, False), (404, False), (301, False)],
)
def test_connection_errors_429_and_5xx_are_retried_other_answers_are_final(status, retry):
    assert should_retry(status) is retry


class FakeResponse:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code

    def close(self) -> None:
        pass


def test_one_attempt_posts_the_exact_body_signed_without_following_redirects():
    calls = []

    def post(url, **kwargs):
        calls.append((url, kwargs))
        return FakeResponse(202)

    body = json.dumps({"type": "job.started", "timestamp": "t", "data": {}})
    target = PinnedUrl(url="https://h.example/x", addresses=("93.184.216.34",))
    assert post_once(target, "msg_1", body, secret=SECRET, timeout_s=3, post=post) == 202
    url, kwargs = calls[0]
    assert url == "https://93.184.216.34/x" and kwargs["headers"]["host"] == "h.example"
    assert kwargs["data"] == body.encode() and kwargs["timeout"] == 3 and kwargs["allow_redirects"] is False
    assert kwargs["headers"]["webhook-id"] == "msg_1"
    Webhook(SECRET).verify(kwargs["data"], kwargs["headers"])


def test_no_answer_is_reported_as_none_so_it_is_retried():
    def post(url, **kwargs):
        raise requests.ConnectionError("refused")

    target = PinnedUrl(url="https://h.example/x", addresses=("93.184.216.34",))
    assert post_once(target, "msg_1", "{}", secret=SECRET, timeout_s=3, post=post) is None


@pytest.mark.parametrize(
    ("url", "address", "request_url", "host"),
    [
        (
            "https://Hooks.Example.com/x?a=1",
            "93.184.216.34",
            "https://93.184.216.34/x?a=1",
            "hooks.example.com",
        ),
        (
            "http://hooks.example.com:8080/x",
            "2606:4700::1",
            "http://[2606:4700::1]:8080/x",
            "hooks.example.com:8080",
        ),
        ("https://bücher.example/x", "93.184.216.34", "https://93.184.216.34/x", "xn--bcher-kva.example"),
    ],
)
def test_a_pinned_url_goes_to_the_checked_address_and_names_the_host_it_was_given(
    url, address, request_url, host
):
    target = PinnedUrl(url=url, addresses=(address,))
    assert (target.request_url(address), target.host_header, target.hostname) == (
        request_url,
        host,
        host.split(":")[0],
    )


def test_the_delivery_check_returns_every_address_it_judged_and_refuses_if_any_is_private():
    addresses = checked_addresses(
        "https://hooks.example.com/x", allowlist="", resolve=resolver("93.184.216.34")
    )
    assert [str(address) for address in addresses] == ["93.184.216.34"]
    with pytest.raises(InvalidInput, match="10.0.0.7, a private address"):
        checked_addresses(
            "https://hooks.example.com/x", allowlist="", resolve=resolver("93.184.216.34", "10.0.0.7")
        )


def test_an_allowlisted_host_is_resolved_and_pinned_but_not_judged():
    settings = Settings(webhook_secret=SECRET, webhook_allowlist="hooks.internal")
    target = pin_target(
        "http://hooks.internal:5000/x", "msg_1", settings, resolve=resolver("10.0.0.7", "10.0.0.8")
    )
    assert target == PinnedUrl(url="http://hooks.internal:5000/x", addresses=("10.0.0.7", "10.0.0.8"))


def test_a_delivery_refused_by_the_guard_is_final_logged_with_its_reason_and_not_retried(monkeypatch, caplog):
    monkeypatch.setattr(deliver_webhook.app, "settings", Settings(webhook_secret=SECRET))
    with caplog.at_level("INFO", logger="styleforge.webhooks"):
        result = deliver_webhook.apply(args=["http://10.1.2.3/hook", "msg_1", "{}"])
    assert result.state == "SUCCESS"
    # Eager apply runs retries inline: one attempt, and no retry, is what makes it final.
    assert caplog.text.count("dropped for good, nothing sent") == 1 and "retrying" not in caplog.text
    assert "msg_1 to http://10.1.2.3/… dropped" in caplog.text  # the path is not logged
    assert "10.1.2.3, a private address" in caplog.text


@pytest.mark.parametrize(
    ("queues", "gpu"),
    [(None, True), (["interactive", "bulk"], True), (["bulk"], True), (["webhooks"], False)],
)
def test_only_a_worker_consuming_a_gpu_queue_loads_the_model(queues, gpu):
    celery = create_celery(Settings())
    if queues:
        celery.amqp.queues.select(queues)
    assert consumes_gpu_queues(celery) is gpu


def api_client(**settings):
    services = Services(
        settings=Settings(**{"auth": "open", **settings}),
        store=FakeJobStore(),
        objects=FakeObjectStore(),
        queue=RecordingQueue(),
    )
    return create_app(services=services).test_client(), services


def post_job(client, **form):
    data = {
        **form,
        "content": (io.BytesIO(noise_png(40, 30)), "c.png"),
        "style": (io.BytesIO(noise_png(32, 32)), "s.png"),
    }
    return client.post("/v1/jobs", data=data, content_type="multipart/form-data")


def test_a_job_records_its_webhook_and_events_apart_from_its_style_params():
    client, services = api_client(webhook_secret=SECRET, webhook_allowlist="127.0.0.1")
    response = post_job(
        client, steps="2", webhook="http://127.0.0.1:9/hook", webhook_events="start,completed"
    )
    assert response.status_code == 202, response.get_json()
    stored = services.store.get(response.get_json()["id"])
    assert (stored.webhook, stored.webhook_events) == ("http://127.0.0.1:9/hook", ("start", "completed"))
    assert "webhook" not in stored.params.to_dict()


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"webhook": "http://10.1.2.3/hook"}, "webhook"),
        ({"webhook": "ftp://93.184.216.34/x"}, "webhook"),
        ({"webhook": "http://127.0.0.1:9/hook", "webhook_events": "start,finish"}, "webhook_events"),
        ({"webhook_events": "start"}, "webhook_events"),
    ],
)
def test_a_bad_webhook_is_refused_400_naming_the_field_and_nothing_is_stored(form, field):
    client, services = api_client(webhook_secret=SECRET, webhook_allowlist="127.0.0.1")
    response = post_job(client, **form)
    assert response.status_code == 400 and response.get_json()["error"]["field"] == field
    assert services.store.records == {} and services.objects.objects == {} and services.queue.enqueued == []
