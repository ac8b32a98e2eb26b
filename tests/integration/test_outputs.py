"""Results where the pipeline reads them, on the real stack: a batch's output_prefix leaves the mirrored tree
and manifest.json in the bucket, listed here through boto3 as a build server would."""

import hashlib
import json
import time
import uuid

import pytest
import requests

from devstack.processes import wait_until
from shared import keys
from shared.batch_store import BatchStore
from shared.batches import BatchRecord
from shared.jobs import JobRecord, JobStatus
from shared.manifests import ManifestWriter
from shared.params import StyleParams
from shared.storage import build_object_store, make_s3_client
from shared.store import build_job_store
from tests.fixtures import badimages
from tests.integration.helpers import example, png_bytes

pytestmark = pytest.mark.integration

TINY = {"max_dim": "32", "steps": "2", "preset": "seed"}
# Inputs of a nested asset tree: a.jpg and a.png clash on a.png, so a.jpg keeps its full name.
TREE = {
    "a.png": "a.png",
    "a.jpg": "a.jpg.png",
    "tiles/grass.png": "tiles/grass.png",
    "tiles/deep/rock.webp": "tiles/deep/rock.png",
}
BROKEN = "tiles/broken.png"


def post_batch(base_url: str, files: list, **form) -> requests.Response:
    return requests.post(f"{base_url}/v1/batches", files=files, data=form, timeout=60)


def tree_files() -> list:
    photo = example("content")
    files = [("content", (path, photo)) for path in TREE]
    files.append(("content", (BROKEN, badimages.truncated_png())))  # unreadable: fails at submission
    files.append(("style", ("style.png", png_bytes(40, 40, (30, 90, 200)))))
    return files


def wait_for_manifest(base_url: str, batch_id: str) -> dict:
    """Poll the batch until its manifest_key shows (written once no item is queued or running)."""
    batch = {}

    def written() -> bool:
        nonlocal batch
        batch = requests.get(f"{base_url}/v1/batches/{batch_id}?limit=1000", timeout=10).json()
        return bool(batch.get("manifest_key"))

    wait_until(written, timeout=300, what=f"batch {batch_id}'s manifest", interval=0.3)
    return batch


def listed(settings, prefix: str) -> dict[str, bytes]:
    """Every object under a prefix, read through boto3 (key -> bytes)."""
    client = make_s3_client(settings)
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=settings.s3_bucket, Prefix=prefix)
    found = [entry["Key"] for page in pages for entry in page.get("Contents", [])]
    return {key: client.get_object(Bucket=settings.s3_bucket, Key=key)["Body"].read() for key in found}


def test_a_batch_with_an_output_prefix_leaves_the_mirrored_tree_and_its_manifest(api, stack_settings):
    prefix = f"builds/{uuid.uuid4().hex[:8]}/"
    response = post_batch(api.url, tree_files(), output_prefix=prefix.rstrip("/"), **TINY)
    assert response.status_code == 202, response.text
    assert response.json()["output_prefix"] == prefix and response.json()["manifest_key"] is None
    batch = wait_for_manifest(api.url, response.json()["id"])
    root = keys.tenant_prefix("anonymous") + prefix

    objects = listed(stack_settings, root)

    assert batch["manifest_key"] == root + "manifest.json"
    assert sorted(objects) == sorted([root + name for name in TREE.values()] + [root + "manifest.json"])
    by_path = {item["path"]: item for item in batch["items"]}
    for path, name in TREE.items():
        assert by_path[path]["status"] == "succeeded" and by_path[path]["result"]["path"] == name
        assert objects[root + name] == requests.get(by_path[path]["result"]["url"], timeout=10).content
    check_manifest(json.loads(objects[root + "manifest.json"]), batch, root, api.url)
    again = writer(stack_settings).write_if_ended(batch["id"])  # a second writer, as two workers may be
    assert again == batch["manifest_key"] and listed(stack_settings, again)[again] == objects[again]


def writer(settings) -> ManifestWriter:
    store = build_job_store(settings)
    batches = BatchStore(client=store.client, jobs=store, ttl_s=600)
    return ManifestWriter(batches=batches, objects=build_object_store(settings))


def check_manifest(content: dict, batch: dict, root: str, base_url: str) -> None:
    """Each input path with its output key, job id, status, params hash and weights mode."""
    assert content["batch_id"] == batch["id"] and content["output_prefix"] == batch["output_prefix"]
    assert content["root"] == root
    assert content["counts"] == {"succeeded": len(TREE), "failed": 1, "canceled": 0}
    assert content["created_at"] == batch["created_at"]
    assert content["finished_at"] == max(item["finished_at"] for item in batch["items"])
    entries = {entry["path"]: entry for entry in content["items"]}
    assert set(entries) == {*TREE, BROKEN}
    params_hash = hashlib.sha256(StyleParams.from_json(json.dumps(batch["params"])).to_json().encode())
    for item in batch["items"]:
        entry = entries[item["path"]]
        job = requests.get(f"{base_url}/v1/jobs/{item['job_id']}", timeout=10).json()
        assert entry["job_id"] == item["job_id"] and entry["status"] == item["status"]
        assert entry["params_hash"] == params_hash.hexdigest()
        assert entry["weights"] == job["weights"]["mode"]
    for path, name in TREE.items():
        assert entries[path]["output_key"] == root + name and entries[path]["error"] is None
        assert entries[path]["weights"] == "random" and entries[path]["precision"]
    assert entries[BROKEN]["status"] == "failed" and entries[BROKEN]["output_key"] is None
    assert BROKEN in entries[BROKEN]["error"]


@pytest.mark.parametrize(
    "bad", ["/abs/", "../up/", "a/../b/", "a//b/", "jobs/x/", "inputs/", "a b/", "x" * 300, "näh/"]
)
def test_a_bad_output_prefix_answers_400_naming_the_field(api, bad):
    response = post_batch(api.url, tree_files(), output_prefix=bad, **TINY)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == "output_prefix"


def test_a_json_batch_refuses_a_bad_output_prefix_before_reading_anything(api):
    body = {"styles": ["tenants/anonymous/inputs/none.png"], "prefix": "tenants/anonymous/x/"}
    response = requests.post(f"{api.url}/v1/batches", json={**body, "output_prefix": "../x/"}, timeout=30)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == "output_prefix"


def test_the_workers_reaper_writes_the_manifest_an_ended_batch_is_missing(worker, stack_settings):
    store = build_job_store(stack_settings)
    batches = BatchStore(client=store.client, jobs=store, ttl_s=600)
    objects = build_object_store(stack_settings)
    prefix = f"repair/{uuid.uuid4().hex[:8]}/"
    batch = BatchRecord(
        id=uuid.uuid4().hex,
        params=StyleParams.from_mapping(TINY),
        style_keys=(),
        created_at=time.time(),
        items_total=1,
        output_prefix=prefix,
    )
    failed = JobRecord(
        id=uuid.uuid4().hex,
        status=JobStatus.FAILED,
        params=batch.params,
        content_key="",
        style_keys=(),
        created_at=batch.created_at,
        batch_id=batch.id,
        path="a.png",
        output_key=keys.output_object_key("anonymous", prefix, "a.png"),
        error="a.png: unreadable",
    )
    # Recorded ended, and no lifecycle ran its hook (as if the writer crashed): the manifest is due.
    batches.create(batch, [failed])

    key = keys.manifest_object_key("anonymous", prefix)
    wait_until(lambda: batches.get(batch.id).manifest_key == key, timeout=120, what="the reaper's manifest")
    assert json.loads(objects.get(key))["items"][0]["status"] == "failed"
    assert batch.id not in batches.pending_manifests(10_000)


def test_a_json_batch_over_a_bucket_prefix_mirrors_that_tree_under_its_output_prefix(api, stack_settings):
    objects = build_object_store(stack_settings)
    source = f"{keys.tenant_prefix('anonymous')}src/{uuid.uuid4().hex[:8]}/"
    for path in ("hero.png", "tiles/grass.png"):
        objects.put(source + path, example("content"), "image/png")
    objects.put(source + "readme.txt", b"not an image", "text/plain")
    style = keys.tenant_prefix("anonymous") + f"styles-src/{uuid.uuid4().hex[:8]}.png"
    objects.put(style, png_bytes(40, 40, (30, 90, 200)), "image/png")
    prefix = f"json/{uuid.uuid4().hex[:8]}/"
    params = {"max_dim": 32, "steps": 2, "preset": "seed"}
    body = {"styles": [style], "prefix": source, "output_prefix": prefix, "params": params}

    response = requests.post(f"{api.url}/v1/batches", json=body, timeout=60)

    assert response.status_code == 202, response.text
    batch = wait_for_manifest(api.url, response.json()["id"])
    root = keys.tenant_prefix("anonymous") + prefix
    found = listed(stack_settings, root)
    assert sorted(found) == [root + "hero.png", root + "manifest.json", root + "tiles/grass.png"]
    assert json.loads(found[root + "manifest.json"])["skipped"] == batch["skipped"] != []


def test_a_canceled_batch_gets_a_manifest_that_agrees_with_its_items(api, stack_settings):
    prefix = f"canceled/{uuid.uuid4().hex[:8]}/"
    files = [("content", (f"sprite{index}.png", example("content"))) for index in range(6)]
    files.append(("style", ("style.png", png_bytes(40, 40, (30, 90, 200)))))
    response = post_batch(api.url, files, output_prefix=prefix, **{**TINY, "steps": "30"})
    assert response.status_code == 202, response.text
    batch_id = response.json()["id"]
    assert requests.post(f"{api.url}/v1/batches/{batch_id}/cancel", timeout=30).status_code == 200

    batch = wait_for_manifest(api.url, batch_id)

    root = keys.tenant_prefix("anonymous") + prefix
    objects = listed(stack_settings, root)
    content = json.loads(objects[root + "manifest.json"])
    statuses = {item["path"]: item["status"] for item in batch["items"]}
    assert {entry["path"]: entry["status"] for entry in content["items"]} == statuses
    ended = list(statuses.values())
    assert content["counts"] == {status: ended.count(status) for status in content["counts"]}
    succeeded = {root + path for path, status in statuses.items() if status == "succeeded"}
    assert set(objects) == succeeded | {root + "manifest.json"}


def test_the_cli_batch_with_an_output_prefix_leaves_the_tree_in_the_bucket(api, stack_settings, tmp_path):
    from client import cli

    folder, out, style = tmp_path / "assets", tmp_path / "stylized", tmp_path / "style.png"
    for relative in ("hero.png", "tiles/grass.jpg"):
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_bytes(example("content"))
    style.write_bytes(png_bytes(40, 40, (30, 90, 200)))
    prefix = f"cli/{uuid.uuid4().hex[:8]}/"
    argv = ["batch", str(folder), "--style", str(style), "--out", str(out), "--output-prefix", prefix]
    argv += ["--size", "32", "--steps", "2", "--preset", "seed", "--api", api.url, "--poll", "0.2"]

    assert cli.main(argv) == 0

    root = keys.tenant_prefix("anonymous") + prefix
    wait_until(lambda: root + "manifest.json" in listed(stack_settings, root), timeout=60, what="manifest")
    objects = listed(stack_settings, root)
    assert sorted(objects) == [root + "hero.png", root + "manifest.json", root + "tiles/grass.png"]
    assert objects[root + "tiles/grass.png"] == (out / "tiles/grass.png").read_bytes()
