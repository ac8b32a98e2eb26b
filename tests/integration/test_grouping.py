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

# How close "the same job, run in a group" must come to "run alone". Both run the same float32 arithmetic, but
# a batch of 3 lets oneDNN block and order its sums differently (seen on a Xeon with AMX), so values may
# differ by ~1e-6 relative. Adam turns that into an image gap of ~lr * 1e-6 per step, far below one level of
# the 8-bit PNG (1/255): nearly every pixel is equal, and one that sits on a rounding edge is 1 level off.
# Larger gaps need a discontinuity: a ReLU whose input is ~0, or Adam's first step, which with the balanced
# preset's epsilon of 1e-8 is lr * sign(gradient), so a pixel whose gradient is ~0 may step the other way
# (2 * 0.05 * 255 = 25 levels). Such pixels are isolated (spread a little by the resize back from the
# bucket) and can be far off, up to Adam's bound of lr per step each way, so what is bounded is their number:
MEAN_LEVELS = 0.25  # mean |grouped - alone| over all pixels and channels, in 8-bit levels
OFF_SHARE = 0.005  # share of pixel channels more than 1 level apart (past PNG rounding)
LOSS_RTOL = 1e-3  # relative gap of the final total losses (float sums agree to ~1e-6)
# A mix-up is far past those bounds: the contents are independent uniform noise, so another item's result is
# ~60-85 levels away on average (measured 61-69; E|U1 - U2| = 255/3 for the untouched noise), and its loss
# differs by 6 % or more (the sizes differ). The test checks that too, so it is known to be able to fail.
OTHER_ITEM_MEAN_LEVELS = 20


def finished(base_url: str, job_id: str) -> tuple[np.ndarray, float]:
    """A succeeded job's result pixels (int16, to subtract) and its final total loss."""
    job = wait_for_terminal(base_url, job_id)
    assert job["status"] == "succeeded", job
    data = requests.get(job["result"]["url"], timeout=30).content
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16), job["losses"]["total"]


def gaps(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Mean and max |a - b| in levels and the share of values over 1 level apart, on the common crop."""
    height, width = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])
    diff = np.abs(a[:height, :width] - b[:height, :width])
    return {"mean": float(diff.mean()), "max": int(diff.max()), "off_share": float((diff > 1).mean())}


def test_batch_items_of_one_bucket_run_as_a_group_and_each_matches_its_job_run_alone(api, worker):
    # Three sizes, one bucket (48x40..48x48 -> 48x48); a style no other test uses.
    contents = [badimages.noise_png(48, 40 + 4 * i, seed=300 + i) for i in range(3)]
    style = badimages.noise_png(40, 40, seed=399)
    files = [("content", (f"{i}.png", data)) for i, data in enumerate(contents)]
    response = post_batch(api.url, [*files, ("style", ("style.png", style))], **PARAMS)
    assert response.status_code == 202, response.text
    batch = wait_for_batch(api.url, response.json()["id"])
    assert batch["counts"]["succeeded"] == 3
    assert "leads a group of 3 jobs" in worker.log()
    items = sorted(batch["items"], key=lambda row: row["path"])
    grouped = [finished(api.url, item["job_id"]) for item in items]
    alone_ids = [submit(api.url, content=content, style=style, **PARAMS).json()["id"] for content in contents]
    alone = [finished(api.url, job_id) for job_id in alone_ids]
    for index, ((image, loss), (single, single_loss)) in enumerate(zip(grouped, alone, strict=True)):
        assert image.shape == single.shape
        measured = gaps(image, single)
        assert measured["mean"] <= MEAN_LEVELS and measured["off_share"] <= OFF_SHARE, (index, measured)
        assert abs(loss - single_loss) <= LOSS_RTOL * abs(single_loss), (index, loss, single_loss)
        # The bounds can fail: another item's result, run alone, is far from this one on both counts.
        other_image, other_loss = alone[(index + 1) % len(alone)]
        assert gaps(image, other_image)["mean"] >= OTHER_ITEM_MEAN_LEVELS, (index, gaps(image, other_image))
        assert abs(loss - other_loss) > LOSS_RTOL * abs(other_loss), (index, loss, other_loss)
