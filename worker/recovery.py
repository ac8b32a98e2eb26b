"""What lets a job survive its worker: checkpoints in the bucket, a renewed lease, and pause requests.

- `Checkpoints` saves and loads a job's resumable state (`jobs/{id}/checkpoint.npz`).
- `Heartbeat` renews the job's lease from a background thread while the job runs; a kill -9 stops it, so the
  lease expires and the reaper requeues the job.
- `CancelCheck` asks whether a user canceled the job, cheaply enough to do before every step.
- `PauseCheck` tells the optimisation loop to pause: the worker is shutting down (SIGTERM), the job ran past
  its time limit, or its lease was lost (another worker owns the job now; this one then writes nothing).
"""

import logging
import threading
import time
from collections.abc import Callable

from shared import keys
from shared.errors import StorageError, StoreUnavailable
from shared.storage import ObjectStore
from worker.engine.checkpoint import TrainerState

log = logging.getLogger("styleforge.recovery")


class LeaseLost(Exception):
    """This worker no longer holds the job's lease: it must stop and write nothing more."""


class NoLeases:
    """Leases for a runner used alone (unit tests, one-off scripts): always granted."""

    holder = "local"

    def acquire(self, job_id: str) -> bool:
        return True

    def renew(self, job_id: str) -> bool:
        return True

    def release(self, job_id: str) -> None:
        return None


class Checkpoints:
    """A job's resumable state in the bucket, under its tenant (``owner``)."""

    def __init__(self, objects: ObjectStore) -> None:
        self._objects = objects

    def save(self, owner: str, job_id: str, state: TrainerState) -> None:
        """Store the state, replacing the job's previous checkpoint (tagged to expire as job outputs do)."""
        self._objects.put(
            keys.checkpoint_object_key(owner, job_id),
            state.to_npz(),
            "application/octet-stream",
            tags=dict([keys.JOB_OUTPUT_TAG]),
        )

    def discard(self, owner: str, job_id: str) -> None:
        """Delete the job's checkpoint once it ended (best effort: a bucket expiry rule is the backstop)."""
        try:
            self._objects.delete(keys.checkpoint_object_key(owner, job_id))
        except StorageError as err:
            log.warning("job %s: checkpoint not deleted (the bucket's expiry rule will): %s", job_id, err)

    def exists(self, owner: str, job_id: str) -> bool:
        """Whether the job has a checkpoint (one HEAD, nothing downloaded)."""
        return self._objects.exists(keys.checkpoint_object_key(owner, job_id))

    def load(self, owner: str, job_id: str) -> TrainerState | None:
        """The job's last checkpoint, or None when it has none or it cannot be read (then it starts over)."""
        key = keys.checkpoint_object_key(owner, job_id)
        try:
            if not self._objects.exists(key):
                return None
            return TrainerState.from_npz(self._objects.get(key))
        except (StorageError, ValueError) as err:
            log.warning("job %s: checkpoint unusable, starting from step 0: %s", job_id, err)
            return None


class Heartbeat:
    """Renews a job's lease every third of its life while the `with` block runs; notes when it is lost."""

    def __init__(self, leases, job_id: str, lease_s: float) -> None:
        self._leases = leases
        self._job_id = job_id
        self._interval = max(lease_s / 3, 0.05)
        self._done = threading.Event()
        self.lost = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{job_id[:8]}", daemon=True)

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._done.wait(self._interval):
            try:
                renewed = self._leases.renew(self._job_id)
            except StoreUnavailable as err:  # Redis away: keep trying; the lease may still be ours after
                log.warning("job %s: lease not renewed (%s)", self._job_id, err.message)
                continue
            if not renewed:
                log.error("job %s: lease lost (expired or taken over); stopping the job", self._job_id)
                self.lost.set()
                return


class PauseCheck:
    """Before each step: True once the worker is stopping, the job's time is up, or its lease is lost.

    After a lost lease the runner writes nothing more for the job (`heartbeat.lost` tells the cases apart).
    """

    def __init__(self, *, stopping: threading.Event, heartbeat: Heartbeat, time_limit_s: float) -> None:
        self._stopping = stopping
        self._heartbeat = heartbeat
        self._deadline = time.monotonic() + time_limit_s

    def __call__(self) -> bool:
        return self._heartbeat.lost.is_set() or self._stopping.is_set() or self.timed_out

    @property
    def timed_out(self) -> bool:
        """Whether the job ran past its time limit."""
        return time.monotonic() >= self._deadline


class CancelCheck:
    """Asks Redis whether the job was canceled, at most every ``interval_s``: every step on a CPU (steps take
    50 ms and more), and without a round trip per step where a GPU runs hundreds of steps a second."""

    def __init__(self, probe, *, interval_s: float = 0.02, clock=time.monotonic) -> None:
        self._probe = probe
        self._interval = interval_s
        self._clock = clock
        self._next = 0.0

    def __call__(self) -> bool:
        now = self._clock()
        if now < self._next:
            return False
        self._next = now + self._interval
        try:
            return self._probe()
        except StoreUnavailable as err:  # Redis away for a moment: go on; the next check asks again
            log.warning("cancel check skipped: %s", err.message)
            return False


class CheckpointClock:
    """Says a checkpoint is due once ``every_s`` seconds passed since the job started or last checkpointed.

    ``every_s`` 0 never says so. `reset` is called after each checkpoint, whatever triggered it.
    """

    def __init__(self, every_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._every = every_s
        self._clock = clock
        self._last = clock()

    def __call__(self) -> bool:
        return bool(self._every) and self._clock() - self._last >= self._every

    def reset(self) -> None:
        """A checkpoint was just taken: count from now."""
        self._last = self._clock()
