"""The web page in headless Chromium: upload two real images, watch the job live, see and keep the result."""

import re

import pytest
from playwright.sync_api import expect

from tests.integration.helpers import CONTENT, STYLE

pytestmark = pytest.mark.e2e

JOB_TIMEOUT_MS = 120_000

# Records every value the progress bar shows and every intermediate image URL, from the page's side, so the
# test sees the bar move and the snapshots arrive over SSE.
WATCH_PROGRESS = """() => {
  window.__progressSeen = [];
  window.__snapshotsSeen = [];
  const bar = document.getElementById("progress");
  const value = Object.getOwnPropertyDescriptor(HTMLProgressElement.prototype, "value");
  Object.defineProperty(bar, "value", {
    get() { return value.get.call(bar); },
    set(v) { value.set.call(bar, v); window.__progressSeen.push(Number(v)); },
  });
  const snapshot = document.getElementById("snapshot-img");
  const src = Object.getOwnPropertyDescriptor(HTMLImageElement.prototype, "src");
  Object.defineProperty(snapshot, "src", {
    get() { return src.get.call(snapshot); },
    set(v) { src.set.call(snapshot, v); window.__snapshotsSeen.push(String(v)); },
  });
}"""


def test_a_job_submitted_from_the_page_shows_live_progress_and_the_result(api, page, artifacts):
    page.goto(api.url)
    page.set_input_files("#content", CONTENT / "chelsea.png")
    page.set_input_files("#style", STYLE / "hubble_deep_field.jpg")
    page.select_option("#preset", "balanced")
    page.locator("#steps").fill("30")
    page.locator("#max_dim").fill("64")
    page.locator("#save_every").fill("10")
    page.evaluate(WATCH_PROGRESS)
    page.click("#submit")

    expect(page.locator("#progress-label")).to_have_text("100 %", timeout=JOB_TIMEOUT_MS)
    result = page.locator("#result-img")
    expect(result).to_be_visible(timeout=JOB_TIMEOUT_MS)
    page.wait_for_function("document.getElementById('result-img').naturalWidth > 0", timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#status")).to_contain_text("succeeded · step 30 of 30")
    expect(page.locator("#losses")).to_contain_text("style")
    expect(page.locator("#download")).to_have_attribute(
        "href", page.locator("#result-img").get_attribute("src")
    )
    job_id = page.locator("#job-id").text_content()
    newest = page.locator("#recent-list li").first
    expect(newest).to_have_attribute("data-id", job_id)  # the API lists it first, with its result thumbnail
    expect(newest.locator("img")).to_have_attribute("src", re.compile(f"/jobs/{job_id}/result\\.png\\?"))
    page.screenshot(path=str(artifacts / "web.png"), full_page=True)

    seen = page.evaluate("window.__progressSeen")
    assert any(0 < value < 100 for value in seen), f"the bar never showed a step between 0 and 100: {seen}"
    assert seen[-1] == 100
    snapshots = page.evaluate("window.__snapshotsSeen")
    assert any(re.search(r"/steps/0000(10|20|30)\.png\?", url) for url in snapshots), snapshots
    assert page.evaluate("document.getElementById('result-img').naturalWidth") == 64


def test_an_api_error_is_shown_in_words_naming_the_field(api, page):
    page.goto(api.url)
    page.set_input_files("#style", STYLE / "hubble_deep_field.jpg")
    page.click("#submit")  # no content image

    error = page.locator("#error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("content: content image is required")
