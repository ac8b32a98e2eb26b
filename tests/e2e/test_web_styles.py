"""The page's House styles section (issue 15 part 5): save the chosen style image under a name, see it listed,
run a job with it by `style_id`, go back to uploading, delete it after a confirm; the API's errors name the
field. Headless Chromium against the real API, worker, Redis and S3 server."""

import re
import uuid
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect

from tests.integration.helpers import CONTENT, REPO, STYLE

pytestmark = pytest.mark.e2e

JOB_TIMEOUT_MS = 180_000  # the shared worker may be busy with other tests' jobs first
UI_TIMEOUT_MS = 30_000  # an API round trip on a loaded machine
HUBBLE = STYLE / "hubble_deep_field.jpg"
BRICK = REPO / "examples" / "textures" / "brick.png"


def unique(name: str) -> str:
    """A style name no other test's style has (every test of the open API is one tenant)."""
    return f"{name} {uuid.uuid4().hex[:6]}"


def save_on_page(page, name: str, images: tuple[Path, ...] = (HUBBLE,)):
    """Choose the style image(s), name them, save them; the card the page then lists."""
    page.set_input_files("#style", list(images))
    page.locator("#style-name").fill(name)
    page.click("#style-save-button")
    card = page.locator("#styles-list li", has_text=name)
    expect(card).to_be_visible(timeout=UI_TIMEOUT_MS)
    return card


def test_a_house_style_saved_on_the_page_styles_a_job_by_id_and_is_deleted(api, page, artifacts):
    name = unique("house night")
    page.goto(api.url)
    page.set_input_files("#style", [HUBBLE, BRICK])  # a blend: the first previewed, the other counted
    expect(page.locator("#style-preview")).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(page.locator("#style-count")).to_have_text("+ 1 more, blended (weights below)")
    page.locator("#style_blend_weights").fill("3,1")
    card = save_on_page(page, name, (HUBBLE, BRICK))
    style_id = card.get_attribute("data-id")
    saved = requests.get(f"{api.url}/v1/styles/{style_id}", timeout=10).json()
    assert (saved["name"], len(saved["images"]), saved["style_blend_weights"]) == (name, 2, [0.75, 0.25])
    expect(card.locator(".caption")).to_have_text("2 images · weights 0.75 / 0.25")
    thumbs = card.locator(".thumbs img")
    expect(thumbs).to_have_count(2)
    for index, image in enumerate(saved["images"]):  # each thumbnail loaded from its presigned URL
        expect(thumbs.nth(index)).to_have_js_property("naturalWidth", image["width"])

    card.locator("button.use").click()
    expect(page.locator("#style-saved")).to_be_visible()
    expect(page.locator("#style-saved-name")).to_have_text(name)
    expect(page.locator("#style-upload")).to_be_hidden()
    expect(page.locator("#style")).to_be_disabled()
    expect(card).to_have_class(re.compile("selected"))
    expect(page.locator("#blend-row")).to_be_hidden()  # the saved style brings its own weights

    # The style file chosen above is still chosen; the API refuses both, so success shows it was not sent.
    page.set_input_files("#content", CONTENT / "chelsea.png")
    page.locator("#steps").fill("4")
    page.locator("#max_dim").fill("32")
    page.click("#submit")
    expect(page.locator("#job-id")).to_have_text(re.compile(r"^[0-9a-f]{32}$"), timeout=UI_TIMEOUT_MS)
    expect(page.locator("#status")).to_contain_text("succeeded", timeout=JOB_TIMEOUT_MS)
    job = requests.get(f"{api.url}/v1/jobs/{page.locator('#job-id').text_content()}", timeout=10).json()
    assert (job["status"], job["style_id"]) == ("succeeded", style_id), job.get("error")
    expect(page.locator("#result-img")).to_be_visible()
    page.screenshot(path=str(artifacts / "house-styles.png"), full_page=True)

    page.once("dialog", lambda dialog: dialog.accept())
    card.locator("button.delete").click()
    expect(card).to_have_count(0, timeout=UI_TIMEOUT_MS)
    expect(page.locator("#style-upload")).to_be_visible()  # the style in use is gone: back to uploading
    expect(page.locator("#style")).to_be_enabled()
    assert requests.get(f"{api.url}/v1/styles/{style_id}", timeout=10).status_code == 404


def test_the_section_names_the_field_the_api_refuses_and_a_dismissed_confirm_keeps_the_style(
    api, page, artifacts
):
    page.goto(api.url)
    page.click("#style-save-button")  # no name, no image
    errors = page.locator("#styles-error")
    expect(errors).to_contain_text("name: name is required", timeout=UI_TIMEOUT_MS)
    expect(page.locator("#style-name")).to_have_class(re.compile("invalid"))
    page.screenshot(path=str(artifacts / "house-styles-error.png"), full_page=True)

    page.locator("#style-name").fill(unique("no image"))
    page.click("#style-save-button")
    expect(errors).to_contain_text("style: style image is required", timeout=UI_TIMEOUT_MS)

    page.set_input_files("#style", [HUBBLE, BRICK])
    page.locator("#style_blend_weights").fill("1,2,3")  # three weights for two images
    page.click("#style-save-button")
    expect(errors).to_contain_text("style_blend_weights:", timeout=UI_TIMEOUT_MS)
    expect(page.locator("#style_blend_weights")).to_have_class(re.compile("invalid"))
    page.set_input_files("#style", [])

    name = unique("kept")
    card = save_on_page(page, name)
    expect(errors).to_be_hidden()
    page.once("dialog", lambda dialog: dialog.dismiss())
    card.locator("button.delete").click()
    page.reload()  # listed afresh by the API: the dismissed delete sent nothing
    kept = page.locator("#styles-list li", has_text=name)
    expect(kept).to_be_visible(timeout=UI_TIMEOUT_MS)

    kept.locator("button.use").click()
    page.click("#style-unuse")  # the way back to uploading
    expect(page.locator("#style-upload")).to_be_visible()
    expect(page.locator("#style")).to_be_enabled()
    expect(kept.locator("button.use")).to_have_text("Use")
    assert page.evaluate("formData().has('style_id')") is False
    requests.delete(f"{api.url}/v1/styles/{kept.get_attribute('data-id')}", timeout=10)


def test_several_style_files_are_each_checked_and_sent_with_their_weights_unless_a_saved_style_is_used(
    api, page
):
    name = unique("fallback")
    made = requests.post(
        f"{api.url}/v1/styles",
        files={"style": ("s.jpg", HUBBLE.read_bytes())},
        data={"name": name},
        timeout=30,
    )
    assert made.status_code == 201, made.text
    try:
        page.goto(api.url)
        fake = {"name": "palette-notes.png", "mimeType": "image/png", "buffer": b"notes, not pixels\n"}
        hubble = {"name": HUBBLE.name, "mimeType": "image/jpeg", "buffer": HUBBLE.read_bytes()}
        page.set_input_files("#style", [hubble, fake])
        expect(page.locator("#style-warning")).to_contain_text("palette-notes.png", timeout=UI_TIMEOUT_MS)
        expect(page.locator("#style-preview")).to_be_hidden()
        expect(page.locator("#submit")).to_be_disabled()

        page.locator("#styles-list li", has_text=name).locator("button.use").click()
        expect(page.locator("#submit")).to_be_enabled()  # the bad file would not be sent
        page.click("#style-unuse")
        expect(page.locator("#submit")).to_be_disabled()

        page.set_input_files("#style", [HUBBLE, BRICK])  # replaced: a blend, uploaded with its weights
        page.locator("#style_blend_weights").fill("1,3")
        page.set_input_files("#content", CONTENT / "chelsea.png")
        page.locator("#steps").fill("2")
        page.locator("#max_dim").fill("32")
        expect(page.locator("#submit")).to_be_enabled(timeout=UI_TIMEOUT_MS)
        page.click("#submit")
        expect(page.locator("#job-id")).to_have_text(re.compile(r"^[0-9a-f]{32}$"), timeout=UI_TIMEOUT_MS)
        job = requests.get(f"{api.url}/v1/jobs/{page.locator('#job-id').text_content()}", timeout=10).json()
        # Two weights: the API takes them only for two style images (it refuses a count that differs).
        assert (job["style_id"], job["params"]["style_blend_weights"]) == (None, [1.0, 3.0]), job
    finally:
        requests.delete(f"{api.url}/v1/styles/{made.json()['id']}", timeout=10)
