"""Job records in Redis: one hash per job plus a capped event stream, written together."""

import time
from collections.abc import Callable

import redis

from shared import keys
from shared.config import Settings
from shared.errors import Conflict, NotFound
from shared.event_stream import StreamReader, open_reader
from shared.events import JobEvent
from shared.jobs import JobRecord, JobStatus
from shared.redis_boundary import translates_redis_errors

# A batch's stream carries many jobs' events: keep this many times a job's cap.
BATCH_STREAM_FACTOR = 20
# Newest ids kept in each recent index (jobs, batches); older ones leave the listings, not Redis.
RECENT_KEEP = 1000


def queue_recent(pipe, key: str, record_id: str, created_at: float, ttl_s: int) -> None:
    """Index a new record for listings, keeping only the newest RECENT_KEEP ids."""
    pipe.zadd(key, {record_id: created_at})
    pipe.zremrangebyrank(key, 0, -RECENT_KEEP - 1)
    pipe.expire(key, ttl_s)


def recent_records(client: redis.Redis, key: str, limit: int, get) -> list:
    """The records of the newest ids of a recent index, newest first; ids whose records expired leave it."""
    found = []
    for record_id in client.zrevrange(key, 0, limit - 1):
        try:
            found.append(get(record_id))
        except NotFound:
            client.zrem(key, record_id)
    return found


def connect_redis(url: str) -> redis.Redis:
    """A Redis client that decodes to str and fails fast when the server is away."""
    # A request never hangs on a frozen Redis for long: the API answers 503 within about 5 s.
    return redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=5, socket_timeout=4)


@translates_redis_errors
class JobStore:
    """Create, read and transition job records over an injected Redis client.

    Every public method raises StoreUnavailable where Redis fails (shared/redis_boundary.py).
    """

    def __init__(self, *, client: redis.Redis, ttl_s: int, events_maxlen: int) -> None:
        self._redis = client
        self._ttl = ttl_s
        self._maxlen = events_maxlen

    @property
    def client(self) -> redis.Redis:
        """The Redis client (other stores share it)."""
        return self._redis

    def create(self, record: JobRecord, *, extra: Callable | None = None) -> None:
        """Store a new job and its first event (``extra(pipe, record)`` adds writes to the transaction)."""
        pipe = self._redis.pipeline(transaction=True)
        self.queue_create(pipe, record, extra=extra)
        pipe.execute()

    def queue_create(self, pipe, record: JobRecord, *, extra: Callable | None = None) -> None:
        """Add a new job's writes to a caller's pipeline (a batch stores all its jobs in one transaction)."""
        event = JobEvent(
            type="status", status=record.status.value, total_steps=record.total_steps, message=record.error
        )
        self._queue_writes(pipe, record.id, record.to_hash(), event, batch_id=record.batch_id)
        if not record.batch_id:  # batch items are listed under their batch
            queue_recent(pipe, keys.recent_jobs_key(record.owner), record.id, record.created_at, self._ttl)
        if extra is not None:
            extra(pipe, record)

    def recent(self, tenant: str, limit: int) -> list[JobRecord]:
        """The tenant's newest single jobs, newest first."""
        return recent_records(self._redis, keys.recent_jobs_key(tenant), limit, self.get)

    def get(self, job_id: str) -> JobRecord:
        """The job's current snapshot, or NotFound."""
        raw = self._redis.hgetall(keys.job_key(job_id))
        if not raw:
            raise NotFound(f"no job with id {job_id!r}", field="id")
        return JobRecord.from_hash(raw)

    def get_with_snapshots(self, job_id: str) -> tuple[JobRecord, list[int]]:
        """The job and its snapshot steps, in one round trip (what a status GET shows)."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.hgetall(keys.job_key(job_id))
        pipe.zrange(keys.job_steps_key(job_id), 0, -1)
        raw, steps = pipe.execute()
        if not raw:
            raise NotFound(f"no job with id {job_id!r}", field="id")
        return JobRecord.from_hash(raw), [int(step) for step in steps]

    def transition(
        self,
        job_id: str,
        status: JobStatus,
        *,
        message: str = "",
        expected: tuple[JobStatus, ...] = (),
        extra: Callable | None = None,
        **changes: object,
    ) -> JobRecord:
        """Move the job to a new status, with field changes, as one write plus one event.

        With ``expected``, it moves only from one of those statuses (checked atomically), else Conflict.
        ``extra(pipe, before, record)`` adds writes to the same transaction. Only shared.lifecycle calls this.
        """
        record = self.get(job_id).with_changes(status=status, **changes)
        event = JobEvent(
            type="status",
            status=status.value,
            step=record.step,
            total_steps=record.total_steps,
            losses=record.losses,
            message=message,
        )
        fields = JobRecord.encode_fields(status=status, **changes)
        more = None if extra is None else (lambda pipe, before: extra(pipe, before, record))
        self._update(job_id, fields, event, expected=expected, extra=more)
        return record

    def request_cancel(self, job_id: str) -> None:
        """Raise the cooperative cancel flag a running job checks; Conflict unless it is running."""

        def apply(pipe) -> None:
            status = pipe.hget(keys.job_key(job_id), "status")
            if status != JobStatus.RUNNING.value:  # finished meanwhile, or expired: never leave a fragment
                raise Conflict(f"job is already {status or 'gone'}", field="id")
            pipe.multi()
            pipe.hset(keys.job_key(job_id), "cancel_requested", "1")

        self._redis.transaction(apply, keys.job_key(job_id))

    def cancel_requested(self, job_id: str) -> bool:
        """True once someone asked this job to stop."""
        return self._redis.hget(keys.job_key(job_id), "cancel_requested") == "1"

    def add_snapshot(self, job_id: str, step: int, image_key: str) -> None:
        """Record that the intermediate image of ``step`` is stored at ``image_key``, and tell the event
        stream where it is."""
        status, total = self._redis.hmget(keys.job_key(job_id), ["status", "total_steps"])
        event = JobEvent(
            type="snapshot",
            status=status or JobStatus.RUNNING.value,
            step=step,
            total_steps=int(total or 0),
            image_key=image_key,
        )
        self._update(job_id, {"snapshot_step": str(step)}, event)
        pipe = self._redis.pipeline(transaction=True)
        pipe.zadd(keys.job_steps_key(job_id), {str(step): step})
        pipe.expire(keys.job_steps_key(job_id), self._ttl)
        pipe.execute()

    def record_checkpoint(self, job_id: str, *, step: int, total_steps: int) -> None:
        """Note the step of the job's newest checkpoint (on the hash and as an event)."""
        event = JobEvent(
            type="checkpoint", status=JobStatus.RUNNING.value, step=step, total_steps=total_steps
        )
        self._update(job_id, JobRecord.encode_fields(checkpoint_step=step), event)

    @staticmethod
    def _queue_indexes(pipe, job_id: str, status: str) -> None:
        running = pipe.sadd if status == JobStatus.RUNNING.value else pipe.srem
        running(keys.running_jobs_key(), job_id)
        if status == JobStatus.QUEUED.value:  # its message is yet to be sent: see `dispatched`
            pipe.zadd(keys.outbox_key(), {job_id: time.time()})
        else:
            pipe.zrem(keys.outbox_key(), job_id)

    def dispatched(self, *job_ids: str) -> None:
        """The queue messages of these queued jobs are sent: take them out of the outbox."""
        if job_ids:
            self._redis.zrem(keys.outbox_key(), *job_ids)

    def undispatched(self, older_than_s: float) -> list[str]:
        """Jobs queued more than ``older_than_s`` ago whose message was never confirmed sent."""
        return self._redis.zrangebyscore(keys.outbox_key(), 0, time.time() - older_than_s)

    def running_ids(self) -> list[str]:
        """Ids of the jobs recorded as running (the reaper's index)."""
        return sorted(self._redis.smembers(keys.running_jobs_key()))

    def snapshots(self, job_id: str) -> list[int]:
        """Steps whose intermediate images are stored, in order."""
        return [int(step) for step in self._redis.zrange(keys.job_steps_key(job_id), 0, -1)]

    def record_progress(
        self,
        job_id: str,
        *,
        step: int,
        total_steps: int,
        losses: dict[str, float],
        initial: bool = False,
        expected: tuple[JobStatus, ...] = (),
        extra: Callable | None = None,
    ) -> None:
        """Store the latest step and losses, and append a progress event (``expected``, ``extra``: as for
        `transition`)."""
        changes = JobRecord.encode_fields(step=step, total_steps=total_steps, losses=losses)
        if initial:
            changes.update(JobRecord.encode_fields(initial_losses=losses))
        event = JobEvent(
            type="progress", status=JobStatus.RUNNING.value, step=step, total_steps=total_steps, losses=losses
        )
        self._update(job_id, changes, event, expected=expected, extra=extra)

    def events(self, job_id: str) -> list[tuple[str, JobEvent]]:
        """All retained events of a job, oldest first, with their stream ids."""
        entries = self._redis.xrange(keys.job_events_key(job_id))
        return [(entry_id, JobEvent.from_fields(fields)) for entry_id, fields in entries]

    def follow_job(self, job_id: str, *, timeout_s: float) -> StreamReader:
        """A reader of the job's event stream on its own connection (read timeout ``timeout_s``)."""
        return open_reader(self._redis, keys.job_events_key(job_id), timeout_s=timeout_s)

    def follow_batch(self, batch_id: str, *, timeout_s: float) -> StreamReader:
        """A reader of the batch's stream (its items' events, interleaved), read timeout ``timeout_s``."""
        return open_reader(self._redis, keys.batch_events_key(batch_id), timeout_s=timeout_s)

    def backlog(self, queue: str) -> set[str]:
        """The ids of the jobs queued or running on ``queue`` (kept by the lifecycle; see shared.backlog)."""
        return self._redis.smembers(keys.backlog_key(queue))

    def backlog_size(self, queue: str) -> int:
        """How many jobs are queued or running on ``queue`` (SCARD: no ids are read)."""
        return self._redis.scard(keys.backlog_key(queue))

    def running_count(self) -> int:
        """How many jobs are recorded as running (SCARD of the reaper's index)."""
        return self._redis.scard(keys.running_jobs_key())

    def prune_backlog(self, queue: str) -> list[str]:
        """Take out of ``queue``'s backlog the ids whose record expired while queued or running (else an
        autoscaler would keep a worker up for a job that no longer exists); the ids taken out."""
        ids = sorted(self._redis.smembers(keys.backlog_key(queue)))
        pipe = self._redis.pipeline(transaction=False)
        for job_id in ids:
            pipe.exists(keys.job_key(job_id))
        gone = [job_id for job_id, exists in zip(ids, pipe.execute(), strict=True) if not exists]
        if gone:
            self._redis.srem(keys.backlog_key(queue), *gone)
        return gone

    def try_reaper_lock(self, holder: str, ttl_ms: int) -> bool:
        """Take the reaper's lock for ``ttl_ms`` unless a worker holds it: True when ``holder`` may reap now.

        The lock is never released: it expires, so one worker reaps per interval however many try.
        """
        return bool(self._redis.set(keys.reaper_lock_key(), holder, nx=True, px=ttl_ms))

    def ping(self) -> None:
        """Raise StoreUnavailable unless Redis answers."""
        self._redis.ping()

    def _update(
        self,
        job_id: str,
        fields: dict[str, str],
        event: JobEvent,
        *,
        expected: tuple[JobStatus, ...] = (),
        extra: Callable | None = None,
    ) -> None:
        # Write only while the record exists, so a late write never resurrects an expired job as a fragment.
        def apply(pipe) -> None:
            batch_id, status = pipe.hmget(keys.job_key(job_id), ["batch_id", "status"])
            if batch_id is None:  # every stored job has the field (empty when not in a batch)
                raise NotFound(f"no job with id {job_id!r} (expired or deleted)", field="id")
            if expected and status not in {state.value for state in expected}:
                raise Conflict(f"job {job_id} is {status}", field="id")
            pipe.multi()
            self._queue_writes(pipe, job_id, fields, event, batch_id=batch_id)
            if extra is not None:
                extra(pipe, JobStatus(status))

        self._redis.transaction(apply, keys.job_key(job_id))

    def _queue_writes(
        self, pipe, job_id: str, fields: dict[str, str], event: JobEvent, *, batch_id: str = ""
    ) -> None:
        pipe.hset(keys.job_key(job_id), mapping=fields)
        pipe.expire(keys.job_key(job_id), self._ttl)
        if "status" in fields:  # the reaper's indexes move with every status write
            self._queue_indexes(pipe, job_id, fields["status"])
        entry = {**event.to_fields(), "job_id": job_id}
        pipe.xadd(keys.job_events_key(job_id), entry, maxlen=self._maxlen, approximate=True)
        pipe.expire(keys.job_events_key(job_id), self._ttl)
        if batch_id:  # the batch's stream interleaves its items' events, for one SSE feed per batch
            stream = keys.batch_events_key(batch_id)
            pipe.xadd(stream, entry, maxlen=self._maxlen * BATCH_STREAM_FACTOR, approximate=True)
            pipe.expire(stream, self._ttl)


def build_job_store(settings: Settings) -> JobStore:
    """Composition helper: the JobStore described by settings."""
    client = connect_redis(settings.redis_url)
    return JobStore(client=client, ttl_s=settings.job_ttl_s, events_maxlen=settings.events_maxlen)
