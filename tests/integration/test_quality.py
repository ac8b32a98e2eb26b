"""Issue 11 through the real stack: the default preset (L-BFGS, two levels, a feed-forward preview), the
fast mode (optimizer none), a feed-forward warm start in a job group, and the fast mode's refusals."""

import io

import pytest
import requests
from PIL import Image

from tests.integration.helpers import example, wait_for_terminal
from tests.integration.test_batches import post_batch, wait_for_batch

pytestmark = pytest.mark.integration


def post(base_url: str, **form: str) -> requests.Response:
    """POST /v1/jobs with the example content and style, and no preset unless given."""
    files = {"content": ("c.png", example("content")), "style": ("s.jpg", example("style"))}
    return requests.post(f"{base_url}/v1/jobs", files=files, data=form, timeout=30)


def result_size(job: dict) -> tuple[int, int]:
    return Image.open(io.BytesIO(requests.get(job["result"]["url"], timeout=30).content)).size


def test_a_job_with_no_preset_runs_lbfgs_over_two_levels_after_a_feed_forward_preview(api, worker):
    response = post(api.url, max_dim="64", steps="2")
    assert response.status_code == 202, response.text
    job = wait_for_terminal(api.url, response.json()["id"])
    assert job["status"] == "succeeded", job
    assert (job["params"]["preset"], job["params"]["optimizer"]) == ("quality", "lbfgs")
    levels = job["plan"]["levels"]
    assert [(lv["width"], lv["steps"], lv["history"]) for lv in levels] == [(32, 6, 10), (64, 2, 10)]
    assert job["progress"] == {"step": 8, "total_steps": 8, "fraction": 1.0}
    assert job["evaluations"] >= 8 + 2  # an iteration is at least one evaluation, plus each level's first
    assert job["steps"][0]["step"] == 0  # the feed-forward preview, stored before the optimisation
    preview = Image.open(io.BytesIO(requests.get(job["steps"][0]["url"], timeout=30).content))
    assert preview.size == result_size(job) == (64, 64)  # the astronaut is square
    assert job["weights"]["precision"] == "float32"


def test_optimizer_none_returns_the_feed_forward_image_with_no_steps(api, worker):
    response = post(api.url, max_dim="96", optimizer="none")
    assert response.status_code == 202, response.text
    assert response.json()["plan"]["total_steps"] == 0
    job = wait_for_terminal(api.url, response.json()["id"])
    assert job["status"] == "succeeded", job
    assert (job["evaluations"], result_size(job)) == (0, (96, 96))
    assert job["losses"]["total"] > 0  # the objective of the feed-forward image, measured once


@pytest.mark.parametrize(("field", "value"), [("tileable", "true"), ("preserve_color", "luminance")])
def test_the_fast_mode_refuses_what_only_an_optimiser_does_naming_the_field(api, field, value):
    response = post(api.url, optimizer="none", **{field: value})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field


def test_feed_forward_warm_started_lbfgs_items_run_as_a_group_and_each_succeeds(api, worker):
    photo = example("content")
    files = [("content", (f"{name}.png", photo)) for name in ("a", "b", "c")]
    files.append(("style", ("style.jpg", example("style"))))
    params = {"init": "feedforward", "optimizer": "lbfgs", "levels": "1", "steps": "3", "max_dim": "48"}
    response = post_batch(api.url, files, preset="quality", **params)
    assert response.status_code == 202, response.text
    batch = wait_for_batch(api.url, response.json()["id"])
    assert batch["counts"]["succeeded"] == 3, batch
    leaders = [f"job {item['job_id']} leads a group of 3 jobs" for item in batch["items"]]
    assert any(line in worker.log() for line in leaders)
