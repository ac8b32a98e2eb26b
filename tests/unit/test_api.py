"""The API's validation and responses, with fake stores and a recording queue behind the ports."""

import base64
import io
import json
import re

import pytest

from api import create_app
from api.events import STREAM_ID
from api.openapi import RESUME_PATTERN
from api.services import Services
from shared.config import Settings
from shared.errors import StorageError
from tests.fakes import FakeJobStore, FakeObjectStore, RecordingQueue
from tests.fixtures.badimages import noise_png

pytestmark = pytest.mark.unit
# No API keys here (tests/unit/test_auth.py has them): the app as local experiments run it.
OPEN = Settings(auth="open")


class FailingQueue:
    def enqueue(self, job_id: str, *, queue: str) -> None:
        raise ConnectionError("broker down")


def make_client(queue=None):
    services = Services(
        settings=OPEN, store=FakeJobStore(), objects=FakeObjectStore(), queue=queue or RecordingQueue()
    )
    return create_app(services=services).test_client(), services


def post_job(client, *, content=True, style=True, **form):
    data = dict(form)
    if content:
        data["content"] = (io.BytesIO(noise_png(40, 30, seed=1)), "c.png")
    if style:
        data["style"] = (io.BytesIO(noise_png(32, 32, seed=2)), "s.png")
    return client.post("/v1/jobs", data=data, content_type="multipart/form-data")


def test_a_valid_job_is_stored_enqueued_on_interactive_and_answered_202():
    client, services = make_client()
    response = post_job(client, steps="3", max_dim="32")
    assert response.status_code == 202
    job = response.get_json()
    assert response.headers["Location"] == f"/v1/jobs/{job['id']}"
    assert services.queue.enqueued == [(job["id"], "interactive")]
    assert services.store.get(job["id"]).params.steps == 3
    assert sorted(services.objects.objects) == sorted(
        [services.store.get(job["id"]).content_key, *services.store.get(job["id"]).style_keys]
    )
    assert job["status"] == "queued" and job["progress"]["total_steps"] == 3


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"params": json.dumps({"preset": []})}, "preset"),
        ({"params": "[1, 2]"}, "params"),
        ({"params": '{"steps": ' + "9" * 5000 + "}"}, "params"),
        ({"steps": "9" * 400}, "steps"),
    ],
)
def test_crafted_params_answer_400_naming_the_field_and_store_nothing(form, field):
    client, services = make_client()
    response = post_job(client, **form)
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == field
    assert services.store.records == {} and services.queue.enqueued == []


def test_a_repeated_field_is_refused_rather_than_guessed():
    client, services = make_client()
    data = {
        "steps": ["2", "-5"],
        "content": (io.BytesIO(noise_png(40, 30)), "c.png"),
        "style": (io.BytesIO(noise_png(32, 32)), "s.png"),
    }
    response = client.post("/v1/jobs", data=data, content_type="multipart/form-data")
    assert response.status_code == 400 and response.get_json()["error"]["field"] == "steps"
    assert services.queue.enqueued == []


def test_an_unknown_file_field_is_refused_naming_it():
    client, _ = make_client()
    response = post_job(client, params=(io.BytesIO(b'{"steps": 2}'), "p.json"))
    assert response.status_code == 400 and response.get_json()["error"]["field"] == "params"


def test_a_queue_failure_fails_the_job_and_answers_503():
    client, services = make_client(queue=FailingQueue())
    response = post_job(client, steps="2", max_dim="32")
    assert response.status_code == 503
    [record] = services.store.records.values()
    assert record.status.value == "failed" and "enqueue" in record.error


@pytest.mark.parametrize("job_id", ["abc:events", "x" * 300, "0" * 31])
def test_malformed_job_ids_answer_404(job_id):
    client, _ = make_client()
    response = client.get(f"/v1/jobs/{job_id}")
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"


def test_readyz_answers_503_naming_the_unreachable_part():
    client, services = make_client()

    def down() -> None:
        raise StorageError("bucket unreachable")

    services.objects.ping = down
    response = client.get("/readyz")
    assert response.status_code == 503
    assert (
        response.get_json()["checks"]["s3"].startswith("error")
        and response.get_json()["checks"]["redis"] == "ok"
    )


def test_wrong_method_answers_json_405():
    client, _ = make_client()
    response = client.delete("/v1/jobs")
    assert response.status_code == 405 and response.get_json()["error"]["code"]


@pytest.mark.parametrize(("method", "path"), [("DELETE", "/v1/jobs"), ("TRACE", "/healthz"), ("PUT", "/")])
def test_every_405_names_the_allowed_methods_in_an_allow_header(method, path):
    client, _ = make_client()
    response = client.open(path, method=method)
    assert response.status_code == 405 and response.get_json()["error"]["code"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"] or "POST" in response.headers["Allow"]
    assert response.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    ("header", "query"),
    [
        ("1" * 20, None),  # 20 digits: beyond the 19 the document allows (and Redis's 64-bit ids)
        ("1-" + "2" * 20, None),
        ("5-0", "yesterday"),  # the header wins, but a malformed query is refused all the same
        (None, " 5-0"),
        (None, "5-0\n"),
    ],
)
def test_a_last_event_id_outside_the_documented_pattern_answers_400(header, query):
    client, _ = make_client()
    job_id = post_job(client, steps="1", max_dim="32").get_json()["id"]
    headers = {"Last-Event-ID": header} if header is not None else {}
    params = {"last_event_id": query} if query is not None else {}
    response = client.get(f"/v1/jobs/{job_id}/events", headers=headers, query_string=params)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["error"]["field"] == "last_event_id"


def test_the_document_offers_webhook_fields_only_empty_when_the_deployment_has_no_secret():
    secret = "whsec_" + base64.b64encode(b"styleforge-tests-webhook-key-32b").decode()
    for settings, max_length in ((OPEN, 0), (OPEN.override(webhook_secret=secret), None)):
        services = Services(settings=settings, store=FakeJobStore(), objects=FakeObjectStore(), queue=None)
        schemas = create_app(services=services).test_client().get("/openapi.json").get_json()["components"]
        for form in ("JobForm", "BatchForm", "BatchJson"):
            webhook = schemas["schemas"][form]["properties"]["webhook"]
            assert webhook.get("maxLength") == max_length, (form, webhook)


@pytest.mark.parametrize(
    "value", ["", "0", "0-0", "1" * 19, "1" * 20, "1-" + "9" * 19, "1-", "-1", "1-2-3", " 1", "1\n", "\u0661"]
)
def test_the_documented_event_id_pattern_is_the_one_the_api_enforces(value):
    documented = re.fullmatch(RESUME_PATTERN.removeprefix("^").removesuffix("$"), value) is not None
    assert documented == (value == "" or STREAM_ID.fullmatch(value) is not None)
