"""The reaper: requeues jobs left `running` by a worker that died (their lease expired).

Each pass also sends the outbox's unconfirmed messages, prunes the backlogs, releases tenants' held batch
items (fair share) that a crash kept back, and writes the manifests of ended batches with an output_prefix
whose own write was lost.

Every GPU worker runs one in a background thread; the store's reaper lock (held for one interval) lets exactly
one of them act per interval. With no worker alive nothing is reaped, but nothing could run either: the first
worker back reaps within one interval.
"""

import logging
import threading

from shared import keys
from shared.errors import Conflict, NotFound, StoreUnavailable
from shared.jobs import JobStatus
from shared.lifecycle import Lifecycle
from shared.store import JobStore

log = logging.getLogger("styleforge.reaper")


class Reaper:
    """Finds running jobs without a lease and puts them back on their queue."""

    def __init__(
        self, *, lifecycle: Lifecycle, store: JobStore, leases, interval_s: float, manifests=None
    ) -> None:
        self._lifecycle = lifecycle  # requeues, and sends again, through the job queue it holds
        self._manifests = manifests  # shared.manifests.ManifestWriter; None: no manifest repair
        self._store = store
        self._leases = leases
        self._interval = interval_s
        self._stop = threading.Event()

    def reap_once(self) -> list[str]:
        """One pass, if this worker wins the lock: the ids it requeued."""
        lock_ms = max(1, int(self._interval * 1000))
        if not self._store.try_reaper_lock(self._leases.holder, lock_ms):
            return []
        self._resend()
        self._prune()
        self._release()
        self._write_manifests()
        return [job_id for job_id in self._store.running_ids() if self._reap(job_id)]

    def _prune(self) -> None:
        """Drop from each backlog the jobs whose record expired before they ended."""
        for queue in keys.GPU_QUEUES:
            gone = self._store.prune_backlog(queue)
            if gone:
                log.warning("backlog of %s: %d expired job(s) taken out: %s", queue, len(gone), gone[:5])

    def _release(self) -> None:
        """Release each tenant's next held batch items (fair share), should an ending's own release have
        been lost to a crash between its commit and its `after`."""
        released = self._lifecycle.release_waiting()
        if released:
            log.info("fair share: %d held item(s) released by the reaper: %s", len(released), released[:5])

    def _write_manifests(self) -> None:
        """Write the manifests of ended batches whose lifecycle hook's write was lost (crash, S3 blip)."""
        if self._manifests is None:
            return
        written = self._manifests.repair()
        if written:
            log.info("manifests: %d written by the reaper: %s", len(written), written[:5])

    def _resend(self) -> None:
        """Send again the messages of queued jobs whose sender stopped between queueing and sending."""
        for job_id in self._store.undispatched(older_than_s=max(5.0, 2 * self._interval)):
            try:
                record = self._store.get(job_id)
            except NotFound:
                self._store.dispatched(job_id)
                continue
            if record.status is JobStatus.QUEUED:
                log.warning(
                    "job %s was queued but its message never confirmed sent; sending it again", job_id
                )
                self._lifecycle.send(job_id, record.batch_id)
            else:
                self._store.dispatched(job_id)

    def _reap(self, job_id: str) -> bool:
        if self._leases.is_leased(job_id):
            return False
        try:
            record = self._lifecycle.requeue(job_id, "its worker stopped answering (lease expired); requeued")
        except (Conflict, NotFound):  # it ended or moved meanwhile
            return False
        log.warning("job %s requeued: its worker stopped answering (attempt %d)", job_id, record.attempt)
        return True

    def start(self) -> None:
        """Reap every interval in a daemon thread until `stop`."""
        threading.Thread(target=self._loop, name="reaper", daemon=True).start()

    def stop(self) -> None:
        """End the loop after the current pass."""
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.reap_once()
            except StoreUnavailable as err:  # Redis away: try again next interval
                log.warning("reaper pass skipped: %s", err.message)
            except Exception:
                log.exception("reaper pass failed")
