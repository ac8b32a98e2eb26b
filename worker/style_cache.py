"""Style targets (the style images' Gram matrices) computed once and shared: an in-process LRU in front of
the object store, so every item of a batch, on any worker, reuses what the first one computed.

Shared within one tenant only, in memory as in the bucket (`tenants/{tenant}/targets/`): a job that reused
another tenant's targets would finish faster, and that timing would tell it the other tenant had used the same
style image."""

import hashlib
import io
import logging
from collections import OrderedDict

import numpy as np
import tensorflow as tf

from shared import keys
from shared.errors import StorageError
from shared.params import StyleParams
from shared.storage import ObjectStore
from worker.target_locks import NoLocks

log = logging.getLogger("styleforge.style_cache")

# Colour modes that rewrite the style from each content image: their targets are per job, never shared.
PER_CONTENT_COLOR_MODES = ("luminance", "histogram")


class StyleTargetCache:
    """Memory LRU of style targets over the object store's `tenants/{tenant}/targets/{key}.npz`."""

    def __init__(self, *, objects: ObjectStore, capacity: int = 32, locks=None) -> None:
        self._objects = objects
        self._capacity = capacity
        self._memory: OrderedDict[str, list[np.ndarray]] = OrderedDict()
        self._locks = locks or NoLocks()  # worker.target_locks: one worker computes a new style's targets

    def provider(self, tenant: str, base_key: str | None, sources: list[str]):
        """A pipeline TargetProvider for a job of ``tenant``; appends "computed" or "reused" to ``sources``
        per level."""

        def provide(size: tuple[int, int], compute) -> list[tf.Tensor]:
            if base_key is None:
                sources.append("computed")
                return compute()
            digest = hashlib.sha256(f"{base_key}|{max(size)}".encode()).hexdigest()
            key = keys.targets_object_key(tenant, digest)  # the memory LRU is keyed per tenant too
            found = self._lookup(key) or self._computed_elsewhere(key)
            if found is not None:
                sources.append("reused")
                return [tf.constant(gram) for gram in found]
            try:
                targets = compute()
                self._store(key, [np.asarray(gram) for gram in targets])
                log.info("style targets %s computed for %dx%d", key, *size)
            finally:
                self._locks.release(key)
            sources.append("computed")
            return targets

        return provide

    def _computed_elsewhere(self, key: str, tries: int = 3) -> list[np.ndarray] | None:
        """The targets another worker stored while this one waited on its lock; None when this worker is to
        compute them (it took the lock, or holders failed ``tries`` times over)."""
        for _ in range(tries):
            if self._locks.first(key):
                return None
            if self._locks.wait_for(key, lambda: self._objects.exists(key)):
                found = self._lookup(key)
                if found is not None:
                    return found
        return None

    def _lookup(self, key: str) -> list[np.ndarray] | None:
        if key in self._memory:
            self._memory.move_to_end(key)
            return self._memory[key]
        try:
            if not self._objects.exists(key):
                return None
            with np.load(io.BytesIO(self._objects.get(key))) as archive:
                grams = [archive[f"gram{i}"] for i in range(len(archive.files))]
        except (StorageError, OSError, ValueError, KeyError) as err:
            log.warning("style targets %s unreadable, recomputing: %s", key, err)
            return None
        self._remember(key, grams)
        return grams

    def _store(self, key: str, grams: list[np.ndarray]) -> None:
        self._remember(key, grams)
        buffer = io.BytesIO()
        np.savez(buffer, **{f"gram{i}": gram for i, gram in enumerate(grams)})
        try:
            self._objects.put(key, buffer.getvalue(), "application/octet-stream")
        except StorageError as err:  # sharing is an optimisation: the job goes on without it
            log.warning("could not share style targets %s: %s", key, err)

    def _remember(self, key: str, grams: list[np.ndarray]) -> None:
        self._memory[key] = grams
        self._memory.move_to_end(key)
        while len(self._memory) > self._capacity:
            self._memory.popitem(last=False)


def cache_key(params: StyleParams, style_keys: tuple[str, ...], weights_id: str) -> str | None:
    """What the style targets depend on (beyond the level size), or None when they depend on the content."""
    if params.preserve_color in PER_CONTENT_COLOR_MODES:
        return None
    blend = params.blend_weights(len(style_keys))
    return f"{weights_id}|{','.join(style_keys)}|{blend}|{params.style_scale}"
