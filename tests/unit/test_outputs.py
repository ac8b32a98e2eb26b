"""Outputs where the pipeline reads them: the prefix rule, the naming rule, the output copy inside the job."""

import json
import time

import pytest

from shared import keys
from shared.batches import BatchRecord
from shared.config import Settings
from shared.errors import InvalidInput, StorageError
from shared.jobs import JobRecord, JobStatus
from shared.manifests import manifest, params_hash
from shared.outputs import output_paths, parse_output_prefix
from shared.params import StyleParams
from shared.plan import plan_levels
from tests.fakes import FakeJobStore, FakeObjectStore
from tests.fixtures.badimages import noise_png
from worker.runner import JobRunner

pytestmark = pytest.mark.unit

OUTPUT_KEY = keys.output_object_key("acme", "builds/7/", "tiles/grass.png")


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("builds/2026-12-02/", "builds/2026-12-02/"),
        ("builds/2026-12-02", "builds/2026-12-02/"),
        ("_out/v1.2", "_out/v1.2/"),
        ("", ""),
        (None, ""),
    ],
)
def test_an_output_prefix_is_relative_segments_ending_with_a_slash(raw, parsed):
    assert parse_output_prefix(raw) == parsed


@pytest.mark.parametrize(
    "raw",
    ["/abs/", "../up/", "a/../b/", "a/./b/", "a//b/", "a b/", "ü/", "a:b/", "a\\b/", "/", ".hidden/"]
    + ["x" * 257, "jobs/", "inputs/x/", "targets", "cache/x/", 7, ["a/"]],
)
def test_a_bad_output_prefix_is_refused_naming_the_field(raw):
    with pytest.raises(InvalidInput) as refused:
        parse_output_prefix(raw)
    assert refused.value.field == "output_prefix"


def test_outputs_take_the_format_extension_and_clashing_stems_keep_their_full_name():
    named = output_paths(["a.jpg", "a.png", "sub/b.webp", "c.jpg", "c.webp", "d"], ".png")
    assert named == {
        "a.jpg": "a.jpg.png",
        "a.png": "a.png",
        "sub/b.webp": "sub/b.png",
        "c.jpg": "c.jpg.png",
        "c.webp": "c.webp.png",
        "d": "d.png",
    }


class RefusingOutputs(FakeObjectStore):
    """The bucket refuses writes under the output prefix only (S3 away for that key, say)."""

    def put(self, key: str, data: bytes, content_type: str, *, tags=None) -> None:
        if key == OUTPUT_KEY:
            raise StorageError(f"object store failed to upload {key}: SlowDown")
        super().put(key, data, content_type, tags=tags)


def runner_with(objects: FakeObjectStore, extractor) -> JobRunner:
    runner = JobRunner(store=FakeJobStore(), objects=objects, extractor=extractor, settings=Settings())
    content, style = (keys.input_object_key("acme", c * 64, "png") for c in "cs")
    objects.put(content, noise_png(40, 30, seed=1), "image/png")
    objects.put(style, noise_png(32, 32, seed=2), "image/png")
    record = JobRecord(
        id="job1",
        status=JobStatus.QUEUED,
        content_key=content,
        style_keys=(style,),
        params=StyleParams.from_mapping({"steps": 2, "max_dim": 32, "preset": "seed"}),
        created_at=time.time(),
        total_steps=2,
        plan=plan_levels(40, 30, max_dim=32, levels=1, steps=2).to_dict(),
        owner="acme",
        output_key=OUTPUT_KEY,
    )
    runner.store.create(record)
    return runner


def test_the_output_copy_is_the_results_bytes_and_never_expires(extractor):
    runner = runner_with(FakeObjectStore(), extractor)
    runner.execute("job1")
    record = runner.store.get("job1")
    assert record.status is JobStatus.SUCCEEDED
    assert runner.objects.get(OUTPUT_KEY) == runner.objects.get(record.result_key)
    assert runner.objects.tags[OUTPUT_KEY] == {}  # a deliverable: no job-output tag, no expiry
    assert runner.objects.tags[record.result_key] == dict([keys.JOB_OUTPUT_TAG])


def test_a_failed_output_write_fails_the_job_with_the_reason_never_succeeded(extractor):
    runner = runner_with(RefusingOutputs(), extractor)
    runner.execute("job1")
    record = runner.store.get("job1")
    assert record.status is JobStatus.FAILED
    assert OUTPUT_KEY in record.error and "SlowDown" in record.error
    assert [event[1] for event in runner.store.events][-1] == "failed"
    assert "succeeded" not in [event[1] for event in runner.store.events]


def test_the_manifest_lists_every_item_with_its_outcome_hash_and_weights():
    params = StyleParams.from_mapping({"steps": 2, "max_dim": 32})
    batch = BatchRecord(
        id="b1", params=params, style_keys=(), created_at=10.0, items_total=2, output_prefix="out/"
    )
    done = JobRecord(
        id="j1",
        status=JobStatus.SUCCEEDED,
        params=params,
        content_key="k",
        style_keys=(),
        created_at=10.0,
        finished_at=12.5,
        path="a.png",
        output_key="tenants/anonymous/out/a.png",
        weights="random",
        precision="float32",
    )
    failed = done.with_changes(id="j2", status=JobStatus.FAILED, path="b.png", error="bad", finished_at=11.0)
    content = json.loads(json.dumps(manifest(batch, [done, failed])))
    assert content["counts"] == {"succeeded": 1, "failed": 1, "canceled": 0}
    assert (content["created_at"], content["finished_at"]) == (10.0, 12.5)
    first, second = content["items"]
    assert first["output_key"] == "tenants/anonymous/out/a.png" and first["job_id"] == "j1"
    assert first["params_hash"] == params_hash(done) and len(first["params_hash"]) == 64
    assert (first["weights"], first["precision"], first["engine_version"]) == ("random", "float32", None)
    assert (second["status"], second["output_key"], second["error"]) == ("failed", None, "bad")
