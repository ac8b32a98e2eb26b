"""In-memory stand-ins for the ports (object store, job store, queue), for unit tests only."""

from shared.errors import Conflict, NotFound, StorageError
from shared.jobs import JobRecord, JobStatus


class FakeObjectStore:
    """ObjectStore in a dict."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.tags: dict[str, dict[str, str]] = {}

    def put(self, key: str, data: bytes, content_type: str, *, tags: dict[str, str] | None = None) -> None:
        self.objects[key] = data
        self.tags[key] = dict(tags or {})

    def get(self, key: str) -> bytes:
        if key not in self.objects:
            raise StorageError(f"object store failed to download {key}: NoSuchKey")
        return self.objects[key]

    def exists(self, key: str) -> bool:
        return key in self.objects

    def copy(self, source: str, destination: str, *, tags: dict[str, str] | None = None) -> None:
        kept = self.tags.get(source) if tags is None else tags  # None: the source's tags, as S3 does
        self.put(destination, self.get(source), "application/octet-stream", tags=kept)

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)

    def presign(self, key: str, download_name: str | None = None) -> str:
        return f"http://fake/{key}" + (f"?download={download_name}" if download_name else "")

    def list_keys(self, prefix: str, limit: int) -> list[str]:
        return sorted(key for key in self.objects if key.startswith(prefix))[:limit]

    def ping(self) -> None:
        return None


class NullPipe:
    """A Redis pipeline that takes every command and does nothing: hooks' writes, where there is no Redis."""

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: None


NULL_PIPE = NullPipe()


class FakeJobStore:
    """JobStore in a dict, keeping the events it would have streamed."""

    def __init__(self) -> None:
        self.records: dict[str, JobRecord] = {}
        self.events: list[tuple[str, str, int]] = []
        self.cancels: set[str] = set()
        self.steps: dict[str, list[int]] = {}
        self.sent: list[str] = []  # job ids whose queue message was confirmed sent

    def create(self, record: JobRecord, *, extra=None) -> None:
        self.records[record.id] = record
        if extra is not None:
            extra(NULL_PIPE, record)

    def get(self, job_id: str) -> JobRecord:
        if job_id not in self.records:
            raise NotFound(f"no job with id {job_id!r}", field="id")
        return self.records[job_id]

    def transition(
        self, job_id: str, status: JobStatus, *, message: str = "", expected=(), extra=None, **changes: object
    ) -> JobRecord:
        before = self._check(job_id, expected)
        record = self.get(job_id).with_changes(status=status, **changes)
        if extra is not None:
            extra(NULL_PIPE, before, record)
        self.records[job_id] = record
        self.events.append((job_id, status.value, record.step))
        return record

    def record_progress(
        self,
        job_id: str,
        *,
        step: int,
        total_steps: int,
        losses: dict,
        initial: bool = False,
        expected=(),
        extra=None,
    ):
        before = self._check(job_id, expected)
        if extra is not None:
            extra(NULL_PIPE, before)
        changes = {"step": step, "total_steps": total_steps, "losses": losses}
        if initial:
            changes["initial_losses"] = losses
        self.records[job_id] = self.get(job_id).with_changes(**changes)
        self.events.append((job_id, "progress", step))

    def _check(self, job_id: str, expected) -> JobStatus:
        status = self.get(job_id).status
        if expected and status not in expected:
            raise Conflict(f"job {job_id} is {status.value}", field="id")
        return status

    def request_cancel(self, job_id: str) -> None:
        if self.get(job_id).status is not JobStatus.RUNNING:
            raise Conflict(f"job is already {self.get(job_id).status.value}", field="id")
        self.cancels.add(job_id)
        self.records[job_id] = self.records[job_id].with_changes(cancel_requested=True)

    def cancel_requested(self, job_id: str) -> bool:
        return job_id in self.cancels

    def add_snapshot(self, job_id: str, step: int, image_key: str = "") -> None:
        if step not in self.steps.setdefault(job_id, []):
            self.steps[job_id].append(step)

    def record_checkpoint(self, job_id: str, *, step: int, total_steps: int) -> None:
        self.records[job_id] = self.get(job_id).with_changes(checkpoint_step=step)
        self.events.append((job_id, "checkpoint", step))

    def dispatched(self, *job_ids: str) -> None:
        self.sent.extend(job_ids)

    def snapshots(self, job_id: str) -> list[int]:
        return self.steps.get(job_id, [])

    def get_with_snapshots(self, job_id: str) -> tuple[JobRecord, list[int]]:
        return self.get(job_id), self.snapshots(job_id)

    def ping(self) -> None:
        return None

    def backlog_size(self, queue: str) -> int:
        return 0

    def running_count(self) -> int:
        return sum(1 for record in self.records.values() if record.status is JobStatus.RUNNING)


class RecordingQueue:
    """JobQueue that remembers what was enqueued."""

    def __init__(self) -> None:
        self.enqueued: list[tuple[str, str]] = []

    def enqueue(self, job_id: str, *, queue: str) -> None:
        self.enqueued.append((job_id, queue))


class FakeLeases:
    """LeaseStore in a dict: `taken` ids are held by another worker; `lose` makes renewals fail."""

    holder = "fake-worker"

    def __init__(self, *, taken: tuple[str, ...] = ()) -> None:
        self.held: dict[str, str] = {job_id: "other-worker" for job_id in taken}
        self.lose = False
        self.released: list[str] = []

    def acquire(self, job_id: str) -> bool:
        if self.held.get(job_id, self.holder) != self.holder:
            return False
        self.held[job_id] = self.holder
        return True

    def renew(self, job_id: str) -> bool:
        return not self.lose and self.held.get(job_id) == self.holder

    def release(self, job_id: str) -> None:
        if self.held.get(job_id) == self.holder:
            del self.held[job_id]
            self.released.append(job_id)

    def is_leased(self, job_id: str) -> bool:
        return job_id in self.held


class FakeResultIndex:
    """shared.result_index.ResultIndex in a dict keyed by (tenant, cache key)."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], object] = {}

    def lookup(self, tenant: str, cache_key: str):
        return self.entries.get((tenant, cache_key))

    def record(self, tenant: str, cache_key: str, result) -> None:
        self.entries[(tenant, cache_key)] = result

    def drop(self, tenant: str, cache_key: str) -> None:
        self.entries.pop((tenant, cache_key), None)
