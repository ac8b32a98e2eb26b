"""The web page as an artist uses it (issue 15): download saves a file, Cancel stops a running job, exact
numbers up to the API's limits, the losses of the step shown, a warning for a file that is no image, and a
batch followed item by item. Headless Chromium against the real API, worker, Redis and S3 server."""

import json
import re
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect

from tests.integration.helpers import CONTENT, STYLE

pytestmark = pytest.mark.e2e

JOB_TIMEOUT_MS = 180_000  # the shared worker may be busy with other tests' jobs first
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
LONG_STEPS = "20000"  # the API's most: a job at 32 px that runs for many minutes unless canceled

# From the page's side: at every new snapshot caption, the step and values the loss table shows then.
WATCH_LOSSES = """() => {
  window.__atSnapshots = [];
  const caption = document.getElementById("snapshot-caption");
  new MutationObserver(() => {
    const cells = [...document.querySelectorAll("#losses tbody tr")].map((row) => [row.dataset.loss,
      Number(row.cells[2].dataset.value)]);
    window.__atSnapshots.push({
      snapshot: caption.textContent,
      table: document.getElementById("losses-step").dataset.step,
      losses: Object.fromEntries(cells),
    });
  }).observe(caption, { childList: true, characterData: true, subtree: true });
}"""


# The loss table's "now" column as {name: value}, read from the values the cells were written from.
TABLE_LOSSES = """(rows) => Object.fromEntries(
  rows.map((row) => [row.dataset.loss, Number(row.cells[2].dataset.value)]))"""


def choose_images(page) -> None:
    page.set_input_files("#content", CONTENT / "chelsea.png")
    page.set_input_files("#style", STYLE / "hubble_deep_field.jpg")


def submit_job(page, *, steps: str, max_dim: str, save_every: str = "0") -> str:
    """Fill the form, submit it, and return the id of the job the page then follows."""
    choose_images(page)
    page.locator("#steps").fill(steps)
    page.locator("#max_dim").fill(max_dim)
    page.locator("#save_every").fill(save_every)
    page.click("#submit")
    expect(page.locator("#job-id")).to_have_text(re.compile(r"^[0-9a-f]{32}$"), timeout=JOB_TIMEOUT_MS)
    return page.locator("#job-id").text_content()


def events(base_url: str, job_id: str) -> list[dict]:
    """Every event of a finished job, replayed by its SSE endpoint (which ends after the terminal one)."""
    response = requests.get(f"{base_url}/v1/jobs/{job_id}/events", timeout=30)
    return [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")]


def test_download_saves_the_result_as_a_png_file_named_for_the_job(api, page, tmp_path):
    page.goto(api.url)
    job_id = submit_job(page, steps="4", max_dim="32")
    expect(page.locator("#download")).to_be_visible(timeout=JOB_TIMEOUT_MS)

    with page.expect_download(timeout=JOB_TIMEOUT_MS) as download_info:
        page.click("#download")
    download = download_info.value
    assert download.suggested_filename == f"styleforge-{job_id}.png"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert saved.read_bytes().startswith(PNG_MAGIC)
    assert page.url.rstrip("/") == api.url  # the page stays where it was: nothing opened in its place


def test_cancel_on_the_page_stops_a_running_job(api, page):
    page.goto(api.url)
    job_id = submit_job(page, steps=LONG_STEPS, max_dim="32")
    try:
        expect(page.locator("#status")).to_contain_text(
            re.compile(r"running · step [1-9]"), timeout=JOB_TIMEOUT_MS
        )
        expect(page.locator("#cancel")).to_be_visible()
        page.click("#cancel")

        expect(page.locator("#status")).to_contain_text("canceled", timeout=JOB_TIMEOUT_MS)
        expect(page.locator("#cancel")).to_be_hidden()
        job = requests.get(f"{api.url}/v1/jobs/{job_id}", timeout=10).json()
        assert job["status"] == "canceled"
        assert job["cancel_requested"] is True  # it was running: the worker was asked to stop, and did
        assert 0 < job["progress"]["step"] < int(LONG_STEPS)
        # The image it stopped at is shown with that step's own losses (the worker reports the stop step).
        stopped = job["progress"]["step"]
        expect(page.locator("#snapshot-caption")).to_have_text(f"step {stopped}")
        expect(page.locator("#losses-step")).to_have_attribute("data-step", str(stopped))
        reported = [event for event in events(api.url, job_id) if event["type"] == "progress"]
        assert reported[-1]["step"] == stopped
        assert page.locator("#losses tbody tr").evaluate_all(TABLE_LOSSES) == reported[-1]["losses"]
    finally:  # never leave a many-minute job on the shared worker
        requests.post(f"{api.url}/v1/jobs/{job_id}/cancel", timeout=10)


def test_the_number_inputs_reach_the_api_s_limits_and_follow_their_sliders(api, page):
    page.goto(api.url)
    size, size_slider = page.locator("#max_dim"), page.locator("#max_dim-range")
    expect(size).to_have_attribute("max", "2048")  # set from /web/presets: the API's max_dim_limit
    expect(size_slider).to_have_attribute("max", "2048")
    expect(page.locator("#steps")).to_have_attribute("max", "20000")

    size.fill("2048")
    expect(size_slider).to_have_value("2048")
    page.locator("#steps-range").fill("500")
    expect(page.locator("#steps")).to_have_value("500")
    page.locator("#steps").fill("1234")  # exact, between the slider's stops
    expect(page.locator("#steps-range")).to_have_value("1234")
    expect(size).not_to_have_class(re.compile("invalid"))

    # Sent as typed, and the API takes 2048: its params are checked before the missing style image.
    assert page.evaluate("formData().get('max_dim')") == "2048"
    page.set_input_files("#content", CONTENT / "chelsea.png")
    page.click("#submit")
    expect(page.locator("#error")).to_contain_text("style:")

    size.fill("2049")
    expect(size).to_have_class(re.compile("invalid"))
    page.click("#submit")
    expect(page.locator("#error")).to_contain_text("max_dim must be an integer in [16, 2048]")


def test_a_file_that_is_no_image_is_named_in_a_warning_and_blocks_submit(api, page):
    page.goto(api.url)
    fake = {"name": "sprite-notes.png", "mimeType": "image/png", "buffer": b"these are notes, not pixels\n"}
    page.set_input_files("#content", fake)

    warning = page.locator("#content-warning")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("sprite-notes.png")
    expect(warning).to_contain_text("not an image")
    expect(page.locator("#content-preview")).to_be_hidden()
    expect(page.locator("#submit")).to_be_disabled()

    page.set_input_files("#content", CONTENT / "chelsea.png")  # replaced by a real image: all is well again
    expect(warning).to_be_hidden()
    expect(page.locator("#content-preview")).to_be_visible()
    expect(page.locator("#submit")).to_be_enabled()


def test_the_loss_table_shows_the_losses_of_each_snapshot_s_step_and_then_the_latest(api, page):
    # Snapshots every 3 steps while the test worker reports every 2: each snapshot step is reported too.
    page.goto(api.url)
    page.evaluate(WATCH_LOSSES)
    job_id = submit_job(page, steps="9", max_dim="32", save_every="3")
    expect(page.locator("#status")).to_contain_text("succeeded", timeout=JOB_TIMEOUT_MS)

    seen = page.evaluate("window.__atSnapshots")
    assert {entry["snapshot"] for entry in seen} >= {"step 3", "step 6", "step 9"}, seen
    for entry in seen:
        assert entry["snapshot"] == f"step {entry['table']}", entry
    progress = [event for event in events(api.url, job_id) if event["type"] == "progress"]
    snapshots = {event["step"] for event in events(api.url, job_id) if event["type"] == "snapshot"}
    by_step = {event["step"]: event["losses"] for event in progress}
    for entry in seen:
        assert entry["losses"] == by_step[int(entry["table"])], entry
    assert snapshots <= set(by_step)
    latest = progress[-1]
    expect(page.locator("#losses-step")).to_have_attribute("data-step", str(latest["step"]))
    shown = page.locator("#losses tbody tr").evaluate_all(TABLE_LOSSES)
    assert shown == latest["losses"]


def test_the_batch_section_shows_a_batch_s_items_to_their_results(api, page, tmp_path):
    photo = Path(CONTENT / "chelsea.png").read_bytes()
    files = [("content", (path, photo)) for path in ["sprites/hero.png", "sprites/villain.png", "bg/sky.png"]]
    files.append(("style", ("stars.jpg", Path(STYLE / "hubble_deep_field.jpg").read_bytes())))
    form = {"preset": "balanced", "steps": "4", "max_dim": "32"}
    batch = requests.post(f"{api.url}/v1/batches", files=files, data=form, timeout=60).json()

    page.goto(api.url)
    page.locator(f'#batch-list li[data-id="{batch["id"]}"] button').click()
    expect(page.locator("#batch-id")).to_have_text(batch["id"])
    rows = page.locator("#batch-items tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.locator("td:first-child")).to_have_text(
        ["sprites/hero.png", "sprites/villain.png", "bg/sky.png"]
    )
    expect(page.locator("#batch-status")).to_have_attribute(
        "data-status", "succeeded", timeout=JOB_TIMEOUT_MS
    )
    expect(page.locator("#batch-status")).to_contain_text("3 items: 3 succeeded")
    expect(rows.locator("td:nth-child(2)")).to_have_text(["succeeded"] * 3)
    expect(page.locator("#batch-zip")).to_be_visible()

    with page.expect_download(timeout=JOB_TIMEOUT_MS) as download_info:
        rows.nth(1).locator("a").click()
    download = download_info.value
    assert download.suggested_filename == "villain.png"
    saved = tmp_path / "villain.png"
    download.save_as(saved)
    assert saved.read_bytes().startswith(PNG_MAGIC)


def test_cancel_batch_on_the_page_cancels_its_queued_items(api, page):
    photo = Path(CONTENT / "chelsea.png").read_bytes()
    files = [("content", (f"set/{n}.png", photo)) for n in range(6)]  # more than the worker takes at once
    files.append(("style", ("stars.jpg", Path(STYLE / "hubble_deep_field.jpg").read_bytes())))
    form = {"preset": "balanced", "steps": LONG_STEPS, "max_dim": "32"}
    batch = requests.post(f"{api.url}/v1/batches", files=files, data=form, timeout=60).json()
    try:
        page.goto(api.url)
        page.locator("#batch-input").fill(batch["id"])
        page.locator("#batch-form button").click()
        expect(page.locator("#batch-cancel")).to_be_visible(timeout=JOB_TIMEOUT_MS)
        page.click("#batch-cancel")

        expect(page.locator("#batch-status")).to_contain_text("canceled", timeout=JOB_TIMEOUT_MS)
        expect(page.locator("#batch-cancel")).to_be_hidden()
        expect(page.locator('#batch-items tbody tr[data-status="canceled"]').first).to_be_visible()
        counts = requests.get(f"{api.url}/v1/batches/{batch['id']}?limit=0", timeout=10).json()["counts"]
        assert counts["queued"] == 0 and counts["canceled"] >= 1, counts
    finally:  # its running items would hold the shared worker for many minutes
        for item in batch["items"]:
            requests.post(f"{api.url}/v1/jobs/{item['job_id']}/cancel", timeout=10)
