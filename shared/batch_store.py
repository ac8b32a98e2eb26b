"""Batches in Redis: a hash for the batch, a list of its job ids, and the jobs themselves via the JobStore."""

from collections.abc import Callable, Sequence

import redis

from shared import keys
from shared.batches import ITEM_FIELDS, BatchRecord, ItemRow
from shared.errors import NotFound
from shared.jobs import JobRecord
from shared.queue import queue_for
from shared.redis_boundary import translates_redis_errors
from shared.store import JobStore, queue_recent, recent_records

# HSET only on a batch hash that still exists: a bare HSET would bring an expired one back with no TTL.
_NOTE_MANIFEST = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'manifest_key', ARGV[2]) end
redis.call('SREM', KEYS[2], ARGV[1])
return 1
"""


@translates_redis_errors
class BatchStore:
    """Create and read batches over an injected Redis client; jobs are written through the JobStore."""

    def __init__(self, *, client: redis.Redis, jobs: JobStore, ttl_s: int) -> None:
        self._redis = client
        self._jobs = jobs
        self._ttl = ttl_s
        self._note_manifest = client.register_script(_NOTE_MANIFEST)

    def create(
        self, batch: BatchRecord, records: Sequence[JobRecord], *, extra: Callable | None = None
    ) -> None:
        """Store the batch, its job list and every job in one transaction (``extra``: see JobStore.create)."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(keys.batch_key(batch.id), mapping=batch.to_hash())
        pipe.expire(keys.batch_key(batch.id), self._ttl)
        if records:
            pipe.rpush(keys.batch_jobs_key(batch.id), *[record.id for record in records])
            pipe.expire(keys.batch_jobs_key(batch.id), self._ttl)
        for record in records:
            self._jobs.queue_create(pipe, record, extra=extra)
        queue_recent(pipe, keys.recent_batches_key(batch.owner), batch.id, batch.created_at, self._ttl)
        if batch.output_prefix:
            pipe.sadd(keys.pending_manifests_key(), batch.id)
        pipe.execute()

    def note_manifest(self, batch_id: str, manifest_key: str) -> None:
        """Note the batch's manifest as written (on its hash, unless it expired) and no longer due."""
        self._note_manifest(
            keys=[keys.batch_key(batch_id), keys.pending_manifests_key()], args=[batch_id, manifest_key]
        )

    def any_active(self, batch_id: str) -> bool:
        """Whether any item is queued or running, by the bulk backlog set (shared/backlog.py keeps it in each
        status change's transaction): one round trip, however many items the batch has."""
        job_ids = self.job_ids(batch_id)
        if not job_ids:
            return False
        return any(self._redis.smismember(keys.backlog_key(queue_for(batch_id)), job_ids))

    def pending_manifests(self, limit: int) -> list[str]:
        """Up to ``limit`` ids of batches with an output_prefix whose manifest is not written yet."""
        return list(self._redis.srandmember(keys.pending_manifests_key(), limit) or [])

    def forget_manifest(self, batch_id: str) -> None:
        """Stop waiting for the manifest of a batch that expired before its manifest was written."""
        self._redis.srem(keys.pending_manifests_key(), batch_id)

    def recent(self, tenant: str, limit: int) -> list[BatchRecord]:
        """The tenant's newest batches, newest first."""
        return recent_records(self._redis, keys.recent_batches_key(tenant), limit, self.get)

    def get(self, batch_id: str) -> BatchRecord:
        """The batch's record, or NotFound."""
        raw = self._redis.hgetall(keys.batch_key(batch_id))
        if not raw:
            raise NotFound(f"no batch with id {batch_id[:64]!r}", field="id")
        return BatchRecord.from_hash(raw)

    def job_ids(self, batch_id: str, *, offset: int = 0, limit: int | None = None) -> list[str]:
        """The batch's job ids in submission order, optionally one page of them."""
        stop = -1 if limit is None else offset + limit - 1
        return self._redis.lrange(keys.batch_jobs_key(batch_id), offset, stop)

    def items(self, job_ids: Sequence[str]) -> list[ItemRow]:
        """The listing fields of each job, in order (pipelined; jobs that expired are left out)."""
        pipe = self._redis.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hmget(keys.job_key(job_id), ITEM_FIELDS)
        rows = [dict(zip(ITEM_FIELDS, values, strict=True)) for values in pipe.execute()]
        return [ItemRow.from_fields(row) for row in rows if row["id"]]

    def records(self, batch_id: str) -> list[JobRecord]:
        """Every item's whole record, in submission order (pipelined; jobs that expired are left out)."""
        pipe = self._redis.pipeline(transaction=False)
        for job_id in self.job_ids(batch_id):
            pipe.hgetall(keys.job_key(job_id))
        return [JobRecord.from_hash(raw) for raw in pipe.execute() if raw]

    def rows(self, batch_id: str) -> list[ItemRow]:
        """Every item's listing fields, in submission order."""
        return self.items(self.job_ids(batch_id))
