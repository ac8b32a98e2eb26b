"""The result cache (issue 15): a job whose inputs, params, weights, precision and engine version match an
earlier job of its tenant succeeds at once with a copy of that job's stored result, and no GPU time.

The worker computes each job's key when it starts, since only it knows its weights and precision. The index
(shared/result_index.py) only names an object; the object is checked (HEAD) before it is used, and an entry
whose object expired is dropped and the job computed: a result is served whole or not at all. The copy is
server-side, to the job's own result key, with the job-output tag, so it lives as long as any result does.
"""

import hashlib
import json
import logging
from pathlib import PurePosixPath

from shared import keys
from shared.errors import StorageError, StoreUnavailable
from shared.jobs import JobRecord
from shared.metrics import RESULT_CACHE
from shared.result_index import CachedResult, ResultIndex
from shared.storage import ObjectStore
from worker.engine.version import ENGINE_VERSION

log = logging.getLogger("styleforge.result_cache")


def result_cache_key(
    *,
    tenant: str,
    content_key: str,
    style_keys: tuple[str, ...],
    params_json: str,
    weights_id: str,
    precision: str,
    engine_version: str = ENGINE_VERSION,
) -> str:
    """The sha256 of everything a job's result depends on, as canonical JSON.

    The content and style keys are content-addressed (they name their images' sha256), and a saved style's
    are its images'; ``params_json`` is the effective params (`StyleParams.to_json`), blend weights and
    style scale included."""
    canonical = json.dumps(
        {
            "tenant": tenant,
            "content": content_key,
            "styles": list(style_keys),
            "params": json.loads(params_json),
            "weights": weights_id,
            "precision": precision,
            "engine": engine_version,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class ResultCache:
    """The runner's side of the cache: find a usable entry, copy its object, remember new results.

    ``index`` None: nothing is cached (a runner used alone). Redis or S3 errors only make a miss: the cache
    is an optimisation, and the job computes without it."""

    def __init__(self, *, index: ResultIndex | None, objects: ObjectStore) -> None:
        self._index = index
        self._objects = objects

    def find(self, record: JobRecord) -> CachedResult | None:
        """The stored result the job may reuse, or None; an entry whose object expired is dropped."""
        if self._index is None or not record.cache or not record.cache_key:
            return None
        try:
            found = self._index.lookup(record.owner, record.cache_key)
            if found is None:
                RESULT_CACHE.labels("miss").inc()
                return None
            if self._objects.exists(found.result_key):
                RESULT_CACHE.labels("hit").inc()
                return found
            RESULT_CACHE.labels("expired").inc()
            log.info("job %s: cached result %s expired; computing", record.id, found.result_key)
            self._index.drop(record.owner, record.cache_key)
        except (StoreUnavailable, StorageError) as err:
            log.warning("job %s: result cache not read (%s); computing", record.id, err)
        return None

    def copy(self, record: JobRecord, found: CachedResult) -> str | None:
        """Copy the cached object to the job's own result key, server-side: that key, or None on failure."""
        extension = PurePosixPath(found.result_key).suffix.lstrip(".") or "png"
        key = keys.result_object_key(record.owner, record.id, extension)
        try:
            self._objects.copy(found.result_key, key, tags=dict([keys.JOB_OUTPUT_TAG]))
        except StorageError as err:  # gone since the HEAD, or S3 away: the job computes
            log.warning("job %s: cached result not copied (%s); computing", record.id, err.message)
            return None
        return key

    def remember(self, record: JobRecord, result: CachedResult) -> None:
        """Point the job's key at its result, for the jobs after it (unless it opted out)."""
        if self._index is None or not record.cache or not record.cache_key:
            return
        try:
            self._index.record(record.owner, record.cache_key, result)
        except StoreUnavailable as err:
            log.warning("job %s: result not recorded in the cache: %s", record.id, err)
