"""Batch items of one shape bucket optimised together by one worker (STYLEFORGE_GROUP_JOBS), over the real
stack: each item's result matches the same job run alone."""

import io

import numpy as np
import pytest
import requests
from PIL import Image

from tests.fixtures import badimages
from tests.integration.helpers import submit, wait_for_terminal
from tests.integration.test_batches import post_batch, wait_for_batch

pytestmark = pytest.mark.integration

PARAMS = {"max_dim": "48", "steps": "6", "preset": "balanced", "learning_rate": "0.05"}


def result_pixels(base_url: str, job_id: str) -> np.ndarray:
    job = wait_for_terminal(base_url, job_id)
    assert job["status"] == "succeeded", job
    data = requests.get(job["result"]["url"], timeout=30).content
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)


def test_batch_items_of_one_bucket_run_as_a_group_and_each_matches_its_job_run_alone(api, worker):
    # Three sizes, one bucket (48x48 -> 64x64); a style no other test uses.
    contents = [badimages.noise_png(48, 40 + 4 * i, seed=300 + i) for i in range(3)]
    style = badimages.noise_png(40, 40, seed=399)
    files = [("content", (f"{i}.png", data)) for i, data in enumerate(contents)]
    response = post_batch(api.url, [*files, ("style", ("style.png", style))], **PARAMS)
    assert response.status_code == 202, response.text
    batch = wait_for_batch(api.url, response.json()["id"])
    assert batch["counts"]["succeeded"] == 3
    assert "leads a group of 3 jobs" in worker.log()
    for item, content in zip(sorted(batch["items"], key=lambda row: row["path"]), contents, strict=True):
        alone = submit(api.url, content=content, style=style, **PARAMS).json()["id"]
        grouped, single = result_pixels(api.url, item["job_id"]), result_pixels(api.url, alone)
        assert grouped.shape == single.shape
        assert np.abs(grouped - single).max() <= 2  # float rounding, at most 2 levels of 255
