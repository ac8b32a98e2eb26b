"""End to end over real HTTP, Redis, S3 and a Celery worker process with random VGG19 weights."""

import io

import pytest
import requests
from PIL import Image

from tests.integration.helpers import example, submit, wait_for_terminal

pytestmark = pytest.mark.integration


def test_submitted_job_succeeds_and_its_result_url_downloads_a_png_of_the_requested_size(api):
    # style_weight 1: the seed preset's 1e-2 is tuned to ImageNet activations and barely moves random weights.
    response = submit(
        api.url, content=example("content"), style=example("style"), steps="6", max_dim="48", style_weight="1"
    )
    assert response.status_code == 202, response.text
    assert response.headers["Location"] == f"/v1/jobs/{response.json()['id']}"
    job = wait_for_terminal(api.url, response.json()["id"])
    assert job["status"] == "succeeded", job["error"]
    assert job["progress"] == {"step": 6, "total_steps": 6, "fraction": 1.0}
    assert job["losses"]["total"] < job["initial_losses"]["total"]
    assert job["weights"]["mode"] == "random" and "NOT a trained model" in job["weights"]["note"]
    download = requests.get(job["result"]["url"], timeout=10)
    assert download.status_code == 200
    # A browser following the link saves the file, under a name that says which job made it.
    assert download.headers["Content-Disposition"].startswith(
        f'attachment; filename="styleforge-{job["id"]}.png"'
    )
    image = Image.open(io.BytesIO(download.content))
    assert image.format == "PNG"
    assert max(image.size) == 48
    assert image.size == (job["result"]["width"], job["result"]["height"])


def test_worker_builds_vgg19_once_for_several_jobs(api, worker):
    ids = [
        submit(api.url, content=example("content"), style=example("style"), steps="2", max_dim="32").json()[
            "id"
        ]
        for _ in range(3)
    ]
    jobs = [wait_for_terminal(api.url, job_id) for job_id in ids]
    assert [job["status"] for job in jobs] == ["succeeded"] * 3
    assert worker.log().count("VGG19 built once for this process") == 1


def test_unknown_job_id_answers_404_json(api):
    response = requests.get(f"{api.url}/v1/jobs/does-not-exist", timeout=10)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_readyz_reports_redis_and_s3_reachable(api):
    response = requests.get(f"{api.url}/readyz", timeout=10)
    assert response.status_code == 200
    assert response.json()["checks"] == {"redis": "ok", "s3": "ok"}
