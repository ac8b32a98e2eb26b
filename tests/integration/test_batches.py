"""Bulk batches over real HTTP, Redis, S3 and a real worker: forms, limits, zip download, priority, cancel."""

import io
import json
import zipfile

import pytest
import redis
import requests

from devstack.processes import ApiServer, wait_until
from shared import keys
from shared.storage import build_object_store
from tests.fixtures import badimages
from tests.integration.helpers import example, submit, wait_for_terminal

pytestmark = pytest.mark.integration

TINY = {"max_dim": "32", "steps": "1", "preset": "balanced"}


def post_batch(base_url: str, files: list, **form) -> requests.Response:
    """POST /v1/batches with (field, (filename, bytes)) files and form fields."""
    return requests.post(f"{base_url}/v1/batches", files=files, data=form, timeout=60)


def contents(paths: list[str]) -> list:
    """Multipart content files: real example photos under the given relative paths."""
    photo = example("content")
    return [("content", (path, photo)) for path in paths]


def wait_for_batch(base_url: str, batch_id: str, timeout: float = 180) -> dict:
    """Poll until no item is queued or running; return the batch JSON with every item."""

    def done() -> bool:
        nonlocal batch
        batch = requests.get(f"{base_url}/v1/batches/{batch_id}?limit=1000", timeout=10).json()
        return batch["counts"]["queued"] + batch["counts"]["running"] == 0

    batch = None
    wait_until(done, timeout=timeout, what=f"batch {batch_id} to finish", interval=0.3)
    return batch


def test_a_multipart_batch_runs_every_image_skips_the_text_file_and_zips_results_under_their_paths(api):
    files = contents(["a.png", "sub/b.png", "sub/deeper/c.jpg"]) + [("content", ("notes.txt", b"hello"))]
    # A style no other test uses, so the style-target cache starts cold for this batch.
    files.append(("style", ("style.png", badimages.noise_png(48, 48, seed=2024))))
    response = post_batch(api.url, files, **TINY)
    assert response.status_code == 202, response.text
    assert response.json()["skipped"] == [{"path": "notes.txt", "reason": "not an image file"}]
    accepted = response.json()  # its items are the first page, as GET /v1/batches/{id} lists them
    assert accepted["items_total"] == 3 and accepted["next_offset"] is None
    assert sorted(item["path"] for item in accepted["items"]) == ["a.png", "sub/b.png", "sub/deeper/c.jpg"]
    batch = wait_for_batch(api.url, response.json()["id"])
    assert batch["counts"]["succeeded"] == 3 and batch["status"] == "succeeded"
    assert {item["job_id"] for item in batch["items"]} == {item["job_id"] for item in accepted["items"]}
    assert batch["progress"]["fraction"] == 1.0
    assert batch["targets"] == {"computed": 1, "reused": 2}  # style Grams computed once for the batch
    archive = zipfile.ZipFile(
        io.BytesIO(requests.get(f"{api.url}/v1/batches/{batch['id']}/results.zip").content)
    )
    assert sorted(archive.namelist()) == ["a.png", "sub/b.png", "sub/deeper/c.png"]
    assert archive.testzip() is None


def test_a_zip_batch_keeps_its_tree_and_a_corrupt_image_fails_only_its_item(api):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("tiles/grass.png", example("content"))
        archive.writestr("tiles/broken.png", badimages.truncated_png())
        archive.writestr("readme.md", "# assets")
    files = [("archive", ("assets.zip", buffer.getvalue())), ("style", ("s.jpg", example("style")))]
    response = post_batch(api.url, files, **TINY)
    assert response.status_code == 202, response.text
    batch = wait_for_batch(api.url, response.json()["id"])
    by_path = {item["path"]: item for item in batch["items"]}
    assert by_path["tiles/grass.png"]["status"] == "succeeded"
    assert by_path["tiles/broken.png"]["status"] == "failed"
    assert "tiles/broken.png" in by_path["tiles/broken.png"]["error"]
    assert batch["skipped"] == [{"path": "readme.md", "reason": "not an image file"}]


def test_a_single_job_overtakes_a_queued_batch(api):
    files = contents([f"item{i:02d}.png" for i in range(20)]) + [("style", ("s.jpg", example("style")))]
    batch_id = post_batch(api.url, files, **TINY).json()["id"]
    job_id = submit(api.url, content=example("content"), style=example("style"), **TINY).json()["id"]
    job = wait_for_terminal(api.url, job_id)
    batch = wait_for_batch(api.url, batch_id)
    last_item_finished = max(_finished(api.url, item["job_id"]) for item in batch["items"])
    assert job["status"] == "succeeded"
    assert job["finished_at"] < last_item_finished


def test_cancel_stops_the_queued_items_and_keeps_finished_ones_downloadable(api):
    files = contents([f"c{i}.png" for i in range(12)]) + [("style", ("s.jpg", example("style")))]
    batch_id = post_batch(api.url, files, **TINY).json()["id"]
    wait_until(lambda: _counts(api.url, batch_id)["succeeded"] >= 1, timeout=60, what="a first finished item")
    canceled = requests.post(f"{api.url}/v1/batches/{batch_id}/cancel", timeout=10)
    assert canceled.status_code == 200
    batch = wait_for_batch(api.url, batch_id)
    assert batch["counts"]["canceled"] >= 1
    assert batch["counts"]["succeeded"] >= 1
    archive = zipfile.ZipFile(
        io.BytesIO(requests.get(f"{api.url}/v1/batches/{batch_id}/results.zip").content)
    )
    assert len(archive.namelist()) == batch["counts"]["succeeded"]


def _finished(base_url: str, job_id: str) -> str:
    return requests.get(f"{base_url}/v1/jobs/{job_id}", timeout=10).json()["finished_at"]


def _counts(base_url: str, batch_id: str) -> dict:
    return requests.get(f"{base_url}/v1/batches/{batch_id}?limit=0", timeout=10).json()["counts"]


@pytest.fixture(scope="module")
def isolated(stack_settings, redis_server):
    """An API on its own Redis database and bucket with no worker, and small batch limits."""
    from api import create_app

    settings = stack_settings.override(
        redis_url=redis_server.url(2), s3_bucket="sf-batch-reject", batch_max_items=5
    )
    objects = build_object_store(settings)
    objects.ensure_bucket()
    server = ApiServer(create_app(settings))
    yield server, redis.Redis.from_url(settings.redis_url), objects
    server.stop()


def _zip(names: list[str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, example("content"))
    return buffer.getvalue()


STYLE = [("style", ("s.jpg", example("style")))]
BAD_BATCHES = [
    (
        "zip slip",
        [("archive", ("a.zip", _zip(["ok.png", "../../etc/evil.png"])))] + STYLE,
        {},
        400,
        "archive",
    ),
    ("absolute path", contents(["/etc/passwd.png"]) + STYLE, {}, 400, "content"),
    ("dotdot filename", contents(["a/../../b.png"]) + STYLE, {}, 400, "content"),
    ("oversize batch", contents([f"i{i}.png" for i in range(6)]) + STYLE, {}, 413, "content"),
    ("empty batch", [("content", ("notes.txt", b"text only"))] + STYLE, {}, 400, "content"),
    ("no style", contents(["a.png"]), {}, 400, "style"),
    ("bad params", contents(["a.png"]) + STYLE, {"steps": "-5"}, 400, "steps"),
    ("params not JSON", contents(["a.png"]) + STYLE, {"params": json.dumps([1])}, 400, "params"),
]


@pytest.mark.parametrize(
    ("name", "files", "form", "status", "field"), BAD_BATCHES, ids=[b[0] for b in BAD_BATCHES]
)
def test_a_bad_batch_is_refused_whole_and_nothing_is_stored_or_enqueued(
    isolated, name, files, form, status, field
):
    server, client, objects = isolated
    response = post_batch(server.url, files, **form)
    assert response.status_code == status, response.text
    assert response.json()["error"]["field"] == field
    assert list(client.scan_iter(match=keys.PREFIX + "*")) == []
    assert client.llen(keys.BULK_QUEUE) == 0
    assert objects._client.list_objects_v2(Bucket="sf-batch-reject").get("KeyCount", 0) == 0


def test_unknown_batch_answers_404(api):
    assert requests.get(f"{api.url}/v1/batches/{'0' * 32}", timeout=10).status_code == 404


# Where an open-mode API's caller (tenant `anonymous`) keeps the objects its JSON batches name.
ROOT = keys.tenant_prefix("anonymous")


@pytest.mark.parametrize(
    "field, body",
    [
        ("prefix", {"styles": [f"{ROOT}uploads/style.jpg"], "prefix": "uploads/"}),
        ("prefix", {"styles": [f"{ROOT}uploads/style.jpg"], "prefix": "tenants/anonymous"}),
        ("styles", {"styles": ["tenants/other/inputs/s.png"], "prefix": f"{ROOT}uploads/"}),
        ("contents", {"styles": [f"{ROOT}u/s.png"], "contents": [{"key": f"{ROOT}../other/inputs/c.png"}]}),
    ],
)
def test_a_json_batch_naming_keys_outside_the_tenant_s_root_answers_403_naming_the_field(api, field, body):
    response = requests.post(f"{api.url}/v1/batches", json=body, timeout=60)
    assert response.status_code == 403, response.text
    assert response.json()["error"]["field"] == field and ROOT in response.json()["error"]["message"]


def test_a_json_batch_runs_objects_already_in_the_bucket_by_prefix_and_by_key(api, stack_settings):
    objects = build_object_store(stack_settings)
    for path in ("hero/idle.png", "hero/run.png", "hero/notes.txt"):
        objects.put(
            f"{ROOT}uploads/set1/{path}", b"words" if path.endswith(".txt") else example("content"), "x/y"
        )
    objects.put(f"{ROOT}uploads/style.jpg", example("style"), "image/jpeg")
    body = {
        "styles": [f"{ROOT}uploads/style.jpg"],
        "prefix": f"{ROOT}uploads/set1/",
        "params": {"steps": 1, "max_dim": 32},
    }
    response = requests.post(f"{api.url}/v1/batches", json=body, timeout=60)
    assert response.status_code == 202, response.text
    assert response.json()["skipped"] == [{"path": "hero/notes.txt", "reason": "not an image file"}]
    batch = wait_for_batch(api.url, response.json()["id"])
    assert sorted(item["path"] for item in batch["items"]) == ["hero/idle.png", "hero/run.png"]
    assert batch["counts"]["succeeded"] == 2
    by_key = {
        "styles": [f"{ROOT}uploads/style.jpg"],
        "contents": [{"key": f"{ROOT}uploads/set1/hero/idle.png", "path": "a/b.png"}],
        "params": {"steps": 1, "max_dim": 32},  # tiny: the worker is shared with the tests that follow
    }
    by_key_response = requests.post(f"{api.url}/v1/batches", json=by_key, timeout=60)
    assert by_key_response.status_code == 202, by_key_response.text
    by_key_batch = wait_for_batch(api.url, by_key_response.json()["id"])
    assert [(item["path"], item["status"]) for item in by_key_batch["items"]] == [("a/b.png", "succeeded")]


def test_a_json_batch_naming_a_missing_object_is_refused(api):
    body = {"styles": [f"{ROOT}uploads/nope.png"], "prefix": f"{ROOT}uploads/"}
    response = requests.post(f"{api.url}/v1/batches", json=body, timeout=60)
    assert response.status_code == 400 and response.json()["error"]["field"] == "styles"
