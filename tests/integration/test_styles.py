"""The style library over real HTTP, Redis and S3 (issue 15 part 1): save, read, list, delete, refuse."""

import pytest
import requests

from shared.storage import build_object_store
from tests.integration.helpers import REPO, png_bytes

pytestmark = pytest.mark.integration

HUBBLE = (REPO / "examples/style/hubble_deep_field.jpg").read_bytes()
BRICK = (REPO / "examples/textures/brick.png").read_bytes()


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

    assert requests.get(f"{api.url}/v1/styles/{style['id']}", timeout=10).json() == style
    listed = requests.get(f"{api.url}/v1/styles", timeout=10).json()["styles"]
    assert listed[0] == style

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
    before = requests.get(f"{api.url}/v1/styles?limit=100", timeout=10).json()["styles"]
    refused = save(api.url, *images, **form)
    assert 400 <= refused.status_code < 500 and refused.json()["error"]["field"] == field, refused.text
    assert requests.get(f"{api.url}/v1/styles?limit=100", timeout=10).json()["styles"] == before
