"""Style targets are computed once per key, shared through the object store, and never cached per content."""

import numpy as np
import pytest
import tensorflow as tf

from shared.params import StyleParams
from tests.fakes import FakeObjectStore
from worker.style_cache import StyleTargetCache, cache_key

pytestmark = pytest.mark.unit


def counting_compute(calls: list):
    def compute():
        calls.append(1)
        return [tf.constant(np.full((1, 2, 2), 3.0, np.float32))]

    return compute


def test_the_second_job_with_the_same_key_reuses_the_targets_without_computing():
    cache, calls = StyleTargetCache(objects=FakeObjectStore()), []
    first, second = [], []
    cache.provider("acme", "k", first)((64, 48), counting_compute(calls))
    reused = cache.provider("acme", "k", second)((64, 48), counting_compute(calls))
    assert (first, second, len(calls)) == (["computed"], ["reused"], 1)
    assert np.array_equal(reused[0].numpy(), np.full((1, 2, 2), 3.0))


def test_another_worker_reuses_targets_through_the_object_store():
    objects, calls = FakeObjectStore(), []
    StyleTargetCache(objects=objects).provider("acme", "k", [])((64, 64), counting_compute(calls))
    sources: list[str] = []
    StyleTargetCache(objects=objects).provider("acme", "k", sources)((64, 64), counting_compute(calls))
    assert (sources, len(calls)) == (["reused"], 1)


def test_targets_are_never_shared_across_tenants_in_memory_or_in_the_bucket():
    objects, calls = FakeObjectStore(), []
    cache = StyleTargetCache(objects=objects)
    cache.provider("acme", "k", [])((64, 64), counting_compute(calls))
    sources: list[str] = []
    cache.provider("globex", "k", sources)((64, 64), counting_compute(calls))
    assert (sources, len(calls)) == (["computed"], 2)
    assert sorted(key.split("/")[1] for key in objects.objects) == ["acme", "globex"]
    assert all(key.split("/")[2] == "targets" for key in objects.objects)


def test_another_level_size_is_another_entry():
    cache, calls = StyleTargetCache(objects=FakeObjectStore()), []
    cache.provider("acme", "k", [])((32, 32), counting_compute(calls))
    cache.provider("acme", "k", [])((64, 64), counting_compute(calls))
    assert len(calls) == 2


@pytest.mark.parametrize("mode", ["luminance", "histogram"])
def test_colour_modes_that_rewrite_the_style_per_content_are_never_cached(mode):
    params = StyleParams.from_mapping({"preserve_color": mode})
    assert cache_key(params, ("inputs/a.png",), "random:0") is None


def test_the_key_depends_on_blend_weights_and_weights_mode():
    params = StyleParams.from_mapping({"style_blend_weights": [1, 3]})
    key = cache_key(params, ("a", "b"), "hed:0")
    assert key != cache_key(StyleParams.from_mapping({}), ("a", "b"), "hed:0")
    assert key != cache_key(params, ("a", "b"), "random:0")


class HeldElsewhere:
    """Locks as another worker holds them: `first` answers in turn from ``firsts``; while this worker waits,
    the holder stores the targets (``holder``) or gives up (None)."""

    def __init__(self, firsts: list[bool], holder=None) -> None:
        self.firsts, self.holder, self.released = list(firsts), holder, []

    def first(self, name: str) -> bool:
        return self.firsts.pop(0)

    def release(self, name: str) -> None:
        self.released.append(name)

    def wait_for(self, name: str, ready) -> bool:
        if self.holder is not None:
            self.holder(name)
        return ready()


def test_a_worker_that_finds_the_lock_taken_waits_and_loads_what_the_holder_stored():
    objects, calls = FakeObjectStore(), []
    other = StyleTargetCache(objects=objects)  # the holder: it computes and stores as the waiter waits

    def holder(name: str) -> None:
        other.provider("acme", "k", [])((64, 64), counting_compute(calls))

    waiter = StyleTargetCache(objects=objects, locks=HeldElsewhere([False], holder))
    sources: list[str] = []
    waiter.provider("acme", "k", sources)((64, 64), counting_compute(calls))
    assert (sources, len(calls)) == (["reused"], 1)


def test_when_the_holder_gives_up_the_waiter_takes_the_lock_computes_and_releases_it():
    locks, calls = HeldElsewhere([False, True]), []
    sources: list[str] = []
    StyleTargetCache(objects=FakeObjectStore(), locks=locks).provider("acme", "k", sources)(
        (64, 64), counting_compute(calls)
    )
    assert (sources, len(calls)) == (["computed"], 1)
    assert locks.released and locks.released[0].startswith("tenants/acme/targets/")


def test_a_failed_computation_still_releases_the_lock():
    locks = HeldElsewhere([True])

    def broken():
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError):
        StyleTargetCache(objects=FakeObjectStore(), locks=locks).provider("acme", "k", [])((64, 64), broken)
    assert len(locks.released) == 1
