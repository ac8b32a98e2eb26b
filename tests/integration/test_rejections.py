"""Bad submissions get a 4xx JSON error naming the field, and leave no record, object or queue entry."""

import pytest
import redis

from devstack.processes import ApiServer
from shared import keys
from shared.storage import build_object_store
from tests.fixtures import badimages
from tests.integration.helpers import example, png_bytes, submit

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def isolated(stack_settings, redis_server):
    """An API on its own Redis database and bucket, with no worker, so leftovers would stay visible."""
    from api import create_app

    settings = stack_settings.override(
        redis_url=redis_server.url(1), s3_bucket="sf-reject", max_upload_bytes=2 * 1024 * 1024
    )
    objects = build_object_store(settings)
    objects.ensure_bucket()
    server = ApiServer(create_app(settings))
    yield server, redis.Redis.from_url(settings.redis_url), objects
    server.stop()


GOOD = {"content": example("content"), "style": example("style")}

CASES = [
    ("text file as content", {"content": b"just some words, not pixels\n"}, {}, 422, "content"),
    ("truncated png", {"content": badimages.truncated_png()}, {}, 422, "content"),
    ("1x1 image", {"content": badimages.tiny_png()}, {}, 422, "content"),
    ("30000x30000 bomb", {"style": badimages.bomb_png()}, {}, 422, "style"),
    ("negative steps", {}, {"steps": "-5"}, 400, "steps"),
    ("non-numeric style weight", {}, {"style_weight": "abc"}, 400, "style_weight"),
    ("unknown param", {}, {"colour": "blue"}, 400, "colour"),
    ("missing style", {"style": None}, {}, 400, "style"),
    ("params not JSON", {}, {"params": "{steps: 3"}, 400, "params"),
    ("max_dim over the limit", {}, {"max_dim": "99999"}, 400, "max_dim"),
    ("extreme aspect ratio", {"content": png_bytes(2000, 20)}, {"max_dim": "64"}, 422, "content"),
]


@pytest.mark.parametrize(("name", "files", "form", "status", "field"), CASES, ids=[c[0] for c in CASES])
def test_bad_submission_is_refused_and_leaves_nothing_behind(isolated, name, files, form, status, field):
    server, client, objects = isolated
    response = submit(server.url, **{**GOOD, **files}, **form)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["field"] == field and error["message"]
    assert list(client.scan_iter(match=keys.PREFIX + "*")) == []
    assert client.llen(keys.INTERACTIVE_QUEUE) == 0
    assert objects._client.list_objects_v2(Bucket="sf-reject").get("KeyCount", 0) == 0


def test_oversize_upload_is_cut_off_with_413(isolated):
    server, client, _ = isolated
    response = submit(server.url, content=b"\0" * (3 * 1024 * 1024), style=example("style"))
    assert response.status_code == 413
    assert response.json()["error"]["code"]
    assert list(client.scan_iter(match=keys.PREFIX + "*")) == []
