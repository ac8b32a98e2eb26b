"""The result cache: its key (every ingredient counts), and the runner serving, refusing and recording entries
with fake stores and the real engine (random weights)."""

import json
import time

import pytest

from api.batch_submission import parse_batch_json
from shared import keys
from shared.config import Settings
from shared.errors import InvalidInput
from shared.jobs import JobRecord, JobStatus
from shared.metrics import RESULT_CACHE
from shared.params import StyleParams
from shared.plan import plan_levels
from shared.result_index import CachedResult
from tests.fakes import FakeJobStore, FakeObjectStore, FakeResultIndex
from tests.fixtures.badimages import noise_png
from tests.unit.test_grouping import BATCH, FakeBatches
from worker.engine.version import ENGINE_VERSION
from worker.result_cache import result_cache_key
from worker.runner import JobRunner

pytestmark = pytest.mark.unit

INGREDIENTS = {
    "tenant": "acme",
    "content_key": keys.input_object_key("acme", "c" * 64, "png"),
    "style_keys": (keys.input_object_key("acme", "s" * 64, "png"),),
    "params_json": StyleParams.from_mapping({"steps": 4, "max_dim": 32}).to_json(),
    "weights_id": "random:0",
    "precision": "float32",
    "engine_version": ENGINE_VERSION,
}
CHANGED = {
    "tenant": "globex",
    "content_key": keys.input_object_key("acme", "d" * 64, "png"),
    "style_keys": (keys.input_object_key("acme", "t" * 64, "png"),),
    "params_json": StyleParams.from_mapping({"steps": 5, "max_dim": 32}).to_json(),
    "weights_id": "random:1",
    "precision": "bfloat16",
    "engine_version": ENGINE_VERSION + "-next",
}


def test_the_cache_key_is_a_stable_sha256_of_its_ingredients():
    key = result_cache_key(**INGREDIENTS)
    assert len(key) == 64 and int(key, 16) >= 0
    assert result_cache_key(**INGREDIENTS) == key
    assert result_cache_key(**INGREDIENTS | {"engine_version": ENGINE_VERSION}) == key


@pytest.mark.parametrize("name", sorted(CHANGED))
def test_every_ingredient_of_the_cache_key_changes_it(name):
    assert result_cache_key(**INGREDIENTS | {name: CHANGED[name]}) != result_cache_key(**INGREDIENTS)


def test_the_cache_key_reads_the_params_not_their_spelling():
    params = StyleParams.from_mapping({"steps": 4, "max_dim": 32}).to_json()
    reordered = json.dumps(dict(reversed(list(json.loads(params).items()))))
    assert reordered != params
    assert result_cache_key(**INGREDIENTS | {"params_json": reordered}) == result_cache_key(**INGREDIENTS)


def test_a_saved_style_s_scale_and_blend_weights_change_the_key_through_the_params():
    base = {"steps": 4, "max_dim": 32}
    variants = [base, base | {"style_scale": 0.5}, base | {"style_blend_weights": [3, 1]}]
    styles = INGREDIENTS["style_keys"] * 2  # two style images, so the blend weights count
    found = {
        result_cache_key(
            **INGREDIENTS | {"style_keys": styles, "params_json": StyleParams.from_mapping(v).to_json()}
        )
        for v in variants
    }
    assert len(found) == len(variants)


def test_the_index_entry_key_has_the_documented_form_and_names_the_tenant():
    assert keys.result_cache_key("acme", "ab12") == "sf:result:acme:ab12"
    with pytest.raises(ValueError):
        keys.result_cache_key("../x", "ab12")


@pytest.fixture
def runner(extractor):
    return JobRunner(
        store=FakeJobStore(),
        objects=FakeObjectStore(),
        extractor=extractor,
        settings=Settings(progress_every=2, group_jobs=3),
        results=FakeResultIndex(),
        batches=FakeBatches(),
    )


def queue_job(runner: JobRunner, job_id: str, *, owner="anonymous", cache=True, steps=4, content=1, batch=""):
    content_key = keys.input_object_key(owner, f"{content:064d}", "png")
    style_key = keys.input_object_key(owner, "s" * 64, "png")
    runner.objects.put(content_key, noise_png(40, 30, seed=content), "image/png")
    runner.objects.put(style_key, noise_png(32, 32, seed=99), "image/png")
    record = JobRecord(
        id=job_id,
        status=JobStatus.QUEUED,
        content_key=content_key,
        style_keys=(style_key,),
        params=StyleParams.from_mapping({"steps": steps, "max_dim": 32}),
        created_at=time.time(),
        total_steps=steps,
        plan=plan_levels(40, 30, max_dim=32, levels=1, steps=steps).to_dict(),
        owner=owner,
        cache=cache,
        batch_id=batch,
    )
    runner.store.create(record)
    if batch:
        runner.batches.ids.append(job_id)
    else:
        runner.run_job(job_id)
    return runner.store.get(job_id)


def events_of(runner: JobRunner, job_id: str) -> list[str]:
    return [event for who, event, _ in runner.store.events if who == job_id]


def test_the_same_job_again_succeeds_cached_with_the_same_bytes_under_its_own_key(runner):
    first = queue_job(runner, "first")
    second = queue_job(runner, "second")
    assert (first.cached, second.cached) == (False, True)
    assert second.status is JobStatus.SUCCEEDED and second.cache_key == first.cache_key
    assert second.engine_version == ENGINE_VERSION
    assert second.result_key == keys.result_object_key("anonymous", "second")
    assert runner.objects.get(second.result_key) == runner.objects.get(first.result_key)
    assert runner.objects.tags[second.result_key] == dict([keys.JOB_OUTPUT_TAG])
    assert (second.step, second.total_steps, second.evaluations) == (4, 4, 0)
    assert (second.result_width, second.result_height) == (first.result_width, first.result_height)
    assert second.losses == first.losses
    assert events_of(runner, "second") == ["running", "succeeded"]  # no progress: no optimisation ran
    entry = runner.results._index.lookup("anonymous", first.cache_key)
    assert entry.result_key == second.result_key  # the newest copy, which lives the longest


def test_cache_false_neither_reads_nor_writes_the_cache(runner):
    queue_job(runner, "first")
    opted_out = queue_job(runner, "second", cache=False)
    assert not opted_out.cached and "progress" in events_of(runner, "second")
    assert runner.results._index.lookup("anonymous", opted_out.cache_key).job_id == "first"
    alone = queue_job(runner, "alone", cache=False, content=7)
    assert runner.results._index.lookup("anonymous", alone.cache_key) is None


def test_other_params_or_another_tenant_miss(runner):
    first = queue_job(runner, "first")
    other_steps = queue_job(runner, "steps", steps=2)
    other_tenant = queue_job(runner, "tenant", owner="globex")
    assert not other_steps.cached and not other_tenant.cached
    assert len({first.cache_key, other_steps.cache_key, other_tenant.cache_key}) == 3


def lookups() -> dict[str, float]:
    return {outcome: RESULT_CACHE.labels(outcome)._value.get() for outcome in ("hit", "miss", "expired")}


def test_an_entry_whose_object_expired_is_dropped_and_the_job_computed_whole(runner):
    before = lookups()
    first = queue_job(runner, "first")
    runner.objects.delete(first.result_key)
    again = queue_job(runner, "again")
    assert again.status is JobStatus.SUCCEEDED and not again.cached
    assert "progress" in events_of(runner, "again")
    assert runner.results._index.lookup("anonymous", first.cache_key).job_id == "again"
    assert queue_job(runner, "third").cached  # from the recomputed result
    counted = {outcome: count - before[outcome] for outcome, count in lookups().items()}
    assert counted == {"hit": 1, "miss": 1, "expired": 1}


def test_an_entry_naming_a_missing_object_never_serves_a_result(runner):
    first = queue_job(runner, "first")
    runner.results._index.record(
        "anonymous", first.cache_key, CachedResult("ghost", "tenants/anonymous/jobs/ghost/result.png", 1, 1)
    )
    again = queue_job(runner, "again")
    assert not again.cached and again.result_width == first.result_width


def test_a_cached_batch_item_is_served_before_it_would_join_a_group(runner):
    queue_job(runner, "earlier", content=2)
    queue_job(runner, "a", content=1, batch=BATCH)
    queue_job(runner, "b", content=2, batch=BATCH)  # the earlier job's inputs: cached
    queue_job(runner, "c", content=3, batch=BATCH)
    runner.run_job("a")
    cached = {job_id: runner.store.get(job_id).cached for job_id in ("a", "b", "c")}
    assert cached == {"a": False, "b": True, "c": False}
    assert all(runner.store.get(job_id).status is JobStatus.SUCCEEDED for job_id in ("a", "b", "c"))


def json_batch(objects: FakeObjectStore, **fields) -> dict:
    style, content = (keys.input_object_key("acme", name * 64, "png") for name in "sc")
    objects.put(style, noise_png(32, 32, seed=1), "image/png")
    objects.put(content, noise_png(40, 30, seed=2), "image/png")
    return {"styles": [style], "contents": [{"key": content, "path": "a.png"}], **fields}


@pytest.mark.parametrize(
    ("fields", "default", "expected"),
    [({}, True, True), ({}, False, False), ({"cache": False}, True, False), ({"cache": "true"}, False, True)],
)
def test_a_json_batch_s_cache_field_wins_over_the_deployment_default(fields, default, expected):
    objects = FakeObjectStore()
    settings = Settings(result_cache=default)
    body = json_batch(objects, **fields)
    assert parse_batch_json(body, settings, objects, "acme").cache is expected


def test_a_cache_field_that_is_no_bool_is_refused_naming_it():
    objects = FakeObjectStore()
    with pytest.raises(InvalidInput) as refused:
        parse_batch_json(json_batch(objects, cache="sometimes"), Settings(), objects, "acme")
    assert refused.value.field == "cache"
