"""The style library over real HTTP, Redis and S3 (issue 15 part 1): save, read, list, delete, refuse."""

import pytest
import requests

from shared.storage import build_object_store
from tests.integration.helpers import REPO, png_bytes, wait_for_terminal

pytestmark = pytest.mark.integration

HUBBLE = (REPO / "examples/style/hubble_deep_field.jpg").read_bytes()
BRICK = (REPO / "examples/textures/brick.png").read_bytes()


def without_urls(style: dict) -> dict:
    """A style's JSON less its images' presigned URLs (signed anew, with the time, on every answer)."""
    images = [{name: value for name, value in image.items() if name != "url"} for image in style["images"]]
    return {**style, "images": images}


def listed_ids(base: str) -> list[str]:
    return [style["id"] for style in requests.get(f"{base}/v1/styles?limit=100", timeout=10).json()["styles"]]


def save(base: str, *images: bytes, **form: str) -> requests.Response:
    files = [("style", (f"s{index}.png", data)) for index, data in enumerate(images)]
    return requests.post(f"{base}/v1/styles", files=files, data=form, timeout=30)


def test_a_saved_style_is_read_listed_and_deleted_with_its_weights_normalised(api, stack_settings):
    made = save(api.url, HUBBLE, BRICK, name="House night", style_blend_weights="3,1", style_scale="0.5")
    assert made.status_code == 201, made.text
    style = made.json()
    assert made.headers["Location"].endswith(f"/v1/styles/{style['id']}")
    assert (style["name"], style["style_blend_weights"], style["style_scale"]) == (
        "House night",
        [0.75, 0.25],
        0.5,
    )
    assert [image["width"] for image in style["images"]] == [512, 512]
    objects = build_object_store(stack_settings)
    assert all(objects.exists(image["key"]) for image in style["images"])  # where jobs will read them
    shown = [requests.get(image["url"], timeout=10).content for image in style["images"]]
    assert shown == [HUBBLE, BRICK]  # each image's presigned URL serves its bytes (the page's thumbnails)

    read = requests.get(f"{api.url}/v1/styles/{style['id']}", timeout=10).json()
    assert without_urls(read) == without_urls(style)
    listed = requests.get(f"{api.url}/v1/styles", timeout=10).json()["styles"]
    assert without_urls(listed[0]) == without_urls(style)

    assert requests.delete(f"{api.url}/v1/styles/{style['id']}", timeout=10).status_code == 204
    gone = requests.get(f"{api.url}/v1/styles/{style['id']}", timeout=10)
    assert gone.status_code == 404 and gone.json()["error"]["field"] == "style_id"
    assert style["id"] not in {
        s["id"] for s in requests.get(f"{api.url}/v1/styles", timeout=10).json()["styles"]
    }
    assert requests.delete(f"{api.url}/v1/styles/{style['id']}", timeout=10).status_code == 404


@pytest.mark.parametrize(
    ("images", "form", "field"),
    [
        ((HUBBLE,), {}, "name"),
        ((HUBBLE,), {"name": "  "}, "name"),
        ((), {"name": "empty"}, "style"),
        ((HUBBLE, BRICK), {"name": "x", "style_blend_weights": "1,2,3"}, "style_blend_weights"),
        ((HUBBLE,), {"name": "x", "style_scale": "9"}, "style_scale"),
        ((HUBBLE,), {"name": "x", "steps": "9"}, "steps"),
        ((b"not an image",), {"name": "x"}, "style"),
        ((png_bytes(8, 8),), {"name": "x"}, "style"),
    ],
)
def test_a_bad_style_answers_4xx_naming_the_field_and_saves_nothing(api, images, form, field):
    before = listed_ids(api.url)
    refused = save(api.url, *images, **form)
    assert 400 <= refused.status_code < 500 and refused.json()["error"]["field"] == field, refused.text
    assert listed_ids(api.url) == before


CHELSEA = (REPO / "examples/content/chelsea.png").read_bytes()
SMALL = {"preset": "seed", "steps": "2", "max_dim": "48"}


def saved_style(base: str, **form: str) -> dict:
    made = save(base, HUBBLE, BRICK, name="house", **form)
    assert made.status_code == 201, made.text
    return made.json()


def test_jobs_and_batches_by_style_id_use_the_saved_images_weights_and_scale_and_reuse_its_targets(api):
    style = saved_style(api.url, style_blend_weights="0.7,0.3", style_scale="0.75")
    keys = [image["key"] for image in style["images"]]
    first = submit_job(api.url, style_id=style["id"], **SMALL)
    assert first.status_code == 202, first.text
    job = wait_for_terminal(api.url, first.json()["id"])
    assert job["status"] == "succeeded", job["error"]
    assert job["style_id"] == style["id"]
    assert (job["params"]["style_blend_weights"], job["params"]["style_scale"]) == ([0.7, 0.3], 0.75)

    again = wait_for_terminal(api.url, submit_job(api.url, style_id=style["id"], **SMALL).json()["id"])
    assert again["targets"] == "reused"  # the saved style's Gram targets, computed by the first job

    files = [("content", (f"a/{n}.png", CHELSEA)) for n in range(2)]
    multipart = requests.post(
        f"{api.url}/v1/batches", files=files, data={"style_id": style["id"], **SMALL}, timeout=30
    )
    assert multipart.status_code == 202, multipart.text
    assert (multipart.json()["style_id"], multipart.json()["style_keys"]) == (style["id"], keys)
    body = {
        "style_id": style["id"],
        "contents": [{"key": job["result"]["key"], "path": "r.png"}],
        "params": SMALL,
    }
    by_json = requests.post(f"{api.url}/v1/batches", json=body, timeout=30)
    assert by_json.status_code == 202, by_json.text
    assert (by_json.json()["style_id"], by_json.json()["style_keys"]) == (style["id"], keys)


def job_ids(base: str) -> list[str]:
    return [job["id"] for job in requests.get(f"{base}/v1/jobs?limit=100", timeout=10).json()["jobs"]]


def submit_job(base: str, *, style_files: tuple[bytes, ...] = (), **form: str) -> requests.Response:
    files = [("content", ("c.png", CHELSEA))] + [("style", ("s.png", data)) for data in style_files]
    return requests.post(f"{base}/v1/jobs", files=files, data=form, timeout=30)


@pytest.mark.parametrize(
    ("style_files", "extra", "status", "field"),
    [
        ((HUBBLE,), {}, 400, "style_id"),  # files and a style id
        ((), {"style_blend_weights": "1,1"}, 400, "style_blend_weights"),  # the saved style has its own
        ((), {"style_scale": "2"}, 400, "style_scale"),
        ((), {"style_id": "0" * 32}, 404, "style_id"),  # no such style
        ((), {"style_id": "../x"}, 404, "style_id"),
    ],
)
def test_a_bad_style_id_submission_answers_naming_the_field_and_records_nothing(
    api, style_files, extra, status, field
):
    style = saved_style(api.url)
    before = job_ids(api.url)
    refused = submit_job(api.url, style_files=style_files, **{"style_id": style["id"], **SMALL, **extra})
    assert refused.status_code == status and refused.json()["error"]["field"] == field, refused.text
    assert job_ids(api.url) == before  # ids: the jobs' presigned URLs are signed anew with the time
