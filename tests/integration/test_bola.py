"""The BOLA suite (issue 14, done-when 1): tenant B, with its own valid key, reaches nothing of tenant A's.

The API runs in required mode in front of the real worker (the session's, on the same Redis and bucket).
Tenant A makes a job (succeeded, with snapshots and a result) and a batch (finished, with a zip). Then every
operation of GET /openapi.json whose path takes an id is called with A's ids: with B's key it must answer 404,
the very answer of an id that does not exist, carrying none of A's ids, keys or URLs; with A's key it must not
answer 404 (the control that lets the check fail). Because the suite walks the OpenAPI document, a new route
is covered as soon as it is documented; a path parameter the suite does not know fails it loudly.
"""

import re
import time
import uuid

import pytest
import requests

from devstack.processes import ApiServer
from shared import keys
from shared.api_keys import KeyStore
from shared.storage import make_s3_client
from shared.store import connect_redis
from tests.integration.helpers import example, png_bytes

pytestmark = pytest.mark.integration

METHODS = ("get", "post", "put", "patch", "delete")
TINY = {"preset": "seed", "steps": "2", "max_dim": "32", "save_every": "1"}
TIMEOUT_S = 240  # the shared worker may still be loading VGG19 or running other tests' jobs
# Path parameters of public routes (no security in the document): they name no tenant's record.
PUBLIC_PARAMS = {"filename": "app.js"}


@pytest.fixture(scope="module")
def bola(stack_settings, worker):
    """Tenants A and B (fresh names each run), each with a key, on a required-mode API before the worker."""
    from api import create_app

    settings = stack_settings.override(auth="required")
    server = ApiServer(create_app(settings))
    store = KeyStore(client=connect_redis(settings.redis_url))
    run = uuid.uuid4().hex[:8]
    tenants = {name: f"bola-{name.lower()}-{run}" for name in ("A", "B")}
    made = {name: store.create(tenant).key for name, tenant in tenants.items()}
    yield Bola(
        server.url,
        settings,
        tenants,
        {name: {"Authorization": f"Bearer {key}"} for name, key in made.items()},
    )
    server.stop()


class Bola:
    """The API, the two tenants and their keys' headers, and what A made (filled by `a_records`)."""

    def __init__(self, url, settings, tenants, headers) -> None:
        self.url, self.settings, self.tenants, self.headers = url, settings, tenants, headers

    def call(
        self, who: str, method: str, path: str, *, extra: dict | None = None, **kwargs
    ) -> requests.Response:
        """One request with tenant ``who``'s key (and ``extra`` headers); streamed, so an event stream is
        never read to its end."""
        headers = {**self.headers[who], **(extra or {})}
        return requests.request(method, self.url + path, headers=headers, stream=True, timeout=30, **kwargs)

    def wait(self, who: str, path: str, done) -> dict:
        """Poll a GET with ``who``'s key until ``done(json)``."""
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            body = self.call(who, "GET", path).json()
            if done(body):
                return body
            time.sleep(0.3)
        raise TimeoutError(f"{path} not done after {TIMEOUT_S} s")


IDEMPOTENT = {"Idempotency-Key": "bola-key"}  # A's first job sends it, and so does B's


def job_files() -> dict[str, tuple[str, bytes]]:
    return {"content": ("c.png", example("content")), "style": ("s.png", example("style"))}


def finished(body: dict) -> bool:
    return body.get("status") in ("succeeded", "failed", "canceled", "partial")


@pytest.fixture(scope="module")
def a_records(bola):
    """A's job (succeeded, snapshots, result), its batch (finished), and everything that names them."""
    created = bola.call("A", "POST", "/v1/jobs", files=job_files(), data=TINY, extra=IDEMPOTENT)
    assert created.status_code == 202, created.text
    job = bola.wait("A", f"/v1/jobs/{created.json()['id']}", finished)
    assert job["status"] == "succeeded" and job["result"] and job["steps"], job
    contents = [
        ("content", (f"set/{n}.png", png_bytes(40, 32, (40 * n, 90, 200)), "image/png")) for n in range(2)
    ]
    answer = bola.call(
        "A", "POST", "/v1/batches", files=[*contents, ("style", ("s.png", example("style")))], data=TINY
    )
    assert answer.status_code == 202, answer.text
    batch = bola.wait("A", f"/v1/batches/{answer.json()['id']}", finished)
    assert batch["counts"]["succeeded"] == 2, batch
    styles = [save_style(bola, "A", f"house {n}") for n in range(2)]  # one per id set: a DELETE takes one
    return {"job": job, "batch": batch, "styles": styles}


def save_style(bola, who: str, name: str) -> dict:
    made = bola.call(
        who, "POST", "/v1/styles", files={"style": ("s.png", example("style"))}, data={"name": name}
    )
    assert made.status_code == 201, made.text
    return made.json()


def secrets_of_a(bola, a_records) -> list[str]:
    """Strings no answer to B may hold: A's tenant, ids, object keys and presigned URLs."""
    job, batch = a_records["job"], a_records["batch"]
    found = [bola.tenants["A"], job["id"], batch["id"], job["result"]["key"], job["result"]["url"]]
    found += [step["url"] for step in job["steps"]]
    for item in batch["items"]:
        found += [item["job_id"], item["result"]["key"], item["result"]["url"]]
    for style in a_records["styles"]:
        found += [style["id"], *(image["key"] for image in style["images"])]
    return found


def id_operations(spec: dict) -> list[tuple[str, str, dict]]:
    """Every (method, path template, operation) of the document whose path takes a parameter; the DELETEs
    last, so A's control call deletes a record only once every other route has been tried on it."""
    found = [
        (method, path, item[method])
        for path, item in sorted(spec["paths"].items())
        if "{" in path
        for method in METHODS
        if method in item
    ]
    return sorted(found, key=lambda operation: operation[0] == "delete")


def fill(path: str, operation: dict, ids: dict[str, str]) -> str | None:
    """The path with each parameter replaced from ``ids``; None for a public route (no tenant's record).

    Fails the suite for a parameter it does not know, so a new kind of id cannot go unchecked."""
    names = re.findall(r"\{([^}]+)\}", path)
    if not operation.get("security"):
        unknown = [name for name in names if name not in PUBLIC_PARAMS]
        assert not unknown, f"public route {path} takes {unknown}: add them to PUBLIC_PARAMS or secure it"
        return None
    unknown = [name for name in names if name not in ids]
    if unknown:
        pytest.fail(f"{path}: path parameter(s) {unknown} unknown to the BOLA suite; map them to A's records")
    return re.sub(r"\{([^}]+)\}", lambda match: ids[match.group(1)], path)


def a_id_sets(a_records) -> list[dict[str, str]]:
    """The ids to try per parameter name: A's single job and one of its batch items, and A's batch."""
    batch = a_records["batch"]
    item = batch["items"][0]["job_id"]
    first, second = (style["id"] for style in a_records["styles"])
    return [
        {"job_id": a_records["job"]["id"], "batch_id": batch["id"], "style_id": first},
        {"job_id": item, "batch_id": batch["id"], "style_id": second},
    ]


def unknown_ids() -> dict[str, str]:
    return {"job_id": uuid.uuid4().hex, "batch_id": uuid.uuid4().hex, "style_id": uuid.uuid4().hex}


def body_of(response: requests.Response) -> str:
    """The text of a small answer (a 404 is small; a stream is never read here)."""
    return response.raw.read(64 * 1024, decode_content=True).decode(errors="replace")


def test_every_route_with_an_id_answers_b_404_as_for_a_missing_id_and_answers_a(bola, a_records):
    spec = requests.get(f"{bola.url}/openapi.json", timeout=10).json()
    operations = id_operations(spec)
    checked = []
    secrets = secrets_of_a(bola, a_records)
    for method, path, operation in operations:
        missing_path = fill(path, operation, unknown_ids())
        if missing_path is None:
            continue
        missing = bola.call("B", method, missing_path)
        assert missing.status_code == 404, (method, missing_path, missing.status_code)
        missing_body = body_of(missing)
        for ids in a_id_sets(a_records):
            url = fill(path, operation, ids)
            answer = bola.call("B", method, url)
            text = body_of(answer)
            assert answer.status_code == 404, (method, url, answer.status_code, text)
            assert text == missing_body, (method, url, text, missing_body)
            leaked = [secret for secret in secrets if secret in text or secret in str(answer.headers)]
            assert not leaked, (method, url, leaked)
            control = bola.call("A", method, url)
            assert control.status_code != 404, (method, url, body_of(control))
            control.close()
            checked.append((method.upper(), path))
    routes = {path for _, path in checked}
    assert {"/v1/jobs/{job_id}", "/v1/batches/{batch_id}/results.zip", "/v1/styles/{style_id}"} <= routes, (
        routes
    )
    assert len(set(checked)) == sum(1 for _, p, op in operations if op.get("security")), checked


def test_b_did_not_change_a_s_records_by_calling_them(bola, a_records):
    job = bola.call("A", "GET", f"/v1/jobs/{a_records['job']['id']}").json()
    assert job["status"] == "succeeded" and not job["cancel_requested"]


def test_listings_show_b_none_of_a_s_records_and_show_a_its_own(bola, a_records):
    secrets = secrets_of_a(bola, a_records)
    for path, field, own in (
        ("/v1/jobs", "jobs", a_records["job"]["id"]),
        ("/v1/batches", "batches", a_records["batch"]["id"]),
        ("/v1/styles", "styles", save_style(bola, "A", "listed")["id"]),  # the walk deleted A's first two
    ):
        mine = bola.call("A", "GET", f"{path}?limit=100").json()[field]
        assert own in [record["id"] for record in mine]
        theirs = body_of(bola.call("B", "GET", f"{path}?limit=100"))
        assert not [secret for secret in secrets if secret in theirs], theirs


def test_a_s_presigned_urls_work_and_are_issued_to_a_only(bola, a_records):
    url = a_records["job"]["result"]["url"]
    assert (
        requests.get(url, timeout=10).status_code == 200
    )  # the URL is real: its absence below means something
    path = f"/v1/jobs/{a_records['job']['id']}"
    assert url.split("?")[0] not in body_of(bola.call("B", "GET", path))


# The prefixes B may try; None: B names A's result by key instead.
FOREIGN_PREFIXES = ["tenants/{A}/", "tenants/{A}", "tenants/", "jobs/", "inputs/", "targets/", None]


@pytest.mark.parametrize("prefix", FOREIGN_PREFIXES)
def test_b_s_json_batch_by_prefix_or_key_reaches_none_of_a_s_objects(bola, a_records, prefix):
    own_style = f"tenants/{bola.tenants['B']}/uploads/s.png"
    body = {"styles": [own_style], "params": {"steps": 1, "max_dim": 32}}
    if prefix is None:
        body["contents"] = [{"key": a_records["job"]["result"]["key"]}]
    else:
        body["prefix"] = prefix.format(A=bola.tenants["A"])
    answer = bola.call("B", "POST", "/v1/batches", json=body)
    text = body_of(answer)
    assert answer.status_code == 403, text
    assert not [secret for secret in secrets_of_a(bola, a_records) if secret in text], text
    assert bola.call("B", "GET", "/v1/batches").json()["batches"] == []


def test_b_cannot_submit_with_a_s_saved_style(bola, a_records):
    style_id = save_style(bola, "A", "not for B")["id"]  # alive: the walk deleted A's first two
    assert bola.call("A", "GET", f"/v1/styles/{style_id}").status_code == 200
    answer = bola.call(
        "B", "POST", "/v1/jobs", files={"content": job_files()["content"]}, data={"style_id": style_id}
    )
    assert answer.status_code == 404 and answer.json()["error"]["field"] == "style_id", answer.text
    assert style_id not in answer.text
    jobs_of_b = bola.call("B", "GET", "/v1/jobs").json()["jobs"]
    assert all(job.get("style_id") != style_id for job in jobs_of_b)


def test_b_cannot_name_a_s_style_input_in_a_json_batch(bola, a_records):
    a_style = f"tenants/{bola.tenants['A']}/inputs/"
    body = {"styles": [a_style + "0" * 64 + ".jpg"], "prefix": f"tenants/{bola.tenants['B']}/"}
    answer = bola.call("B", "POST", "/v1/batches", json=body)
    assert answer.status_code == 403 and answer.json()["error"]["field"] == "styles"


def test_b_reusing_a_s_idempotency_key_and_images_gets_its_own_job_and_no_shared_targets(bola, a_records):
    created = bola.call("B", "POST", "/v1/jobs", files=job_files(), data=TINY, extra=IDEMPOTENT)
    assert created.status_code == 202, created.text
    assert created.json()["id"] != a_records["job"]["id"]
    job = bola.wait("B", f"/v1/jobs/{created.json()['id']}", finished)
    assert job["owner"] == bola.tenants["B"] and job["status"] == "succeeded", job
    # A's targets for this style exist (A's batch reused them or computed its own): B's job never finds them.
    assert job["targets"] == "computed"
    assert job["result"]["key"].startswith(f"tenants/{bola.tenants['B']}/jobs/{job['id']}/")


def test_the_same_request_again_by_a_reuses_a_s_targets(bola, a_records):
    created = bola.call("A", "POST", "/v1/jobs", files=job_files(), data=TINY)
    assert created.status_code == 202, created.text
    job = bola.wait("A", f"/v1/jobs/{created.json()['id']}", finished)
    assert job["targets"] == "reused"  # the control of the test above: within a tenant they are shared


def test_every_bucket_object_of_a_lives_under_tenants_a(bola, a_records):
    client = make_s3_client(bola.settings)
    paginator = client.get_paginator("list_objects_v2")
    every = [
        o["Key"]
        for page in paginator.paginate(Bucket=bola.settings.s3_bucket)
        for o in page.get("Contents", [])
    ]
    root = keys.tenant_prefix(bola.tenants["A"])
    job, batch = a_records["job"], a_records["batch"]
    ids = [job["id"], *(item["job_id"] for item in batch["items"])]
    of_a = [key for key in every if any(job_id in key for job_id in ids)]
    assert len(of_a) >= len(ids) + len(job["steps"])  # every result, and the single job's snapshots
    assert all(key.startswith(f"{root}jobs/") for key in of_a), of_a
    assert all(key.startswith(root) for key in every if bola.tenants["A"] in key)
    under_a = [key for key in every if key.startswith(root)]
    assert {key.split("/")[2] for key in under_a} >= {"inputs", "jobs", "targets"}, under_a


def test_a_secured_route_with_a_parameter_the_suite_does_not_know_fails_it_loudly():
    with pytest.raises(pytest.fail.Exception, match="asset_id"):
        fill("/v1/assets/{asset_id}", {"security": [{"apiKey": []}]}, unknown_ids())
    assert fill("/v1/jobs/{job_id}", {"security": [{"apiKey": []}]}, {"job_id": "ab"}) == "/v1/jobs/ab"
