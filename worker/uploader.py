"""Intermediate images go to the bucket from a background thread, off the optimisation's critical path."""

import logging
import queue
import threading
from collections.abc import Callable

import numpy as np

from shared import images, keys
from shared.errors import StorageError
from shared.storage import ObjectStore

log = logging.getLogger("styleforge.uploader")


class SnapshotUploader:
    """Encodes and uploads snapshots one at a time; a failed upload is logged and never fails the job."""

    def __init__(
        self, *, objects: ObjectStore, on_uploaded: Callable[[str, int, str], None], max_pending: int = 16
    ) -> None:
        self._objects = objects
        self._on_uploaded = on_uploaded
        self._queue: queue.Queue = queue.Queue(maxsize=max_pending)
        self._thread = threading.Thread(target=self._run, name="snapshot-uploader", daemon=True)
        self._thread.start()

    def submit(self, owner: str, job_id: str, step: int, image: np.ndarray, *, wait: bool = False) -> None:
        """Queue one snapshot of a job of tenant ``owner``; when the uploader is far behind, skip it rather
        than stall the GPU.

        ``wait``: block until there is room instead (a job's last image, which must not be skipped).
        """
        try:
            self._queue.put((owner, job_id, step, image), block=wait)
        except queue.Full:
            log.warning(
                "job %s: snapshot of step %d skipped, %d uploads pending", job_id, step, self._queue.qsize()
            )

    def flush(self) -> None:
        """Wait until every queued snapshot has been handled."""
        self._queue.join()

    def _run(self) -> None:
        while True:
            owner, job_id, step, image = self._queue.get()
            try:
                self._upload(owner, job_id, step, image)
            except Exception:  # one bad snapshot must not end the uploader thread
                log.exception("job %s: snapshot of step %d not stored", job_id, step)
            finally:
                self._queue.task_done()

    def _upload(self, owner: str, job_id: str, step: int, image: np.ndarray) -> None:
        key = keys.step_object_key(owner, job_id, step)
        try:
            self._objects.put(key, images.encode_png(image), "image/png", tags=dict([keys.JOB_OUTPUT_TAG]))
        except StorageError as err:
            log.warning("job %s: snapshot of step %d not stored: %s", job_id, step, err.message)
            return
        self._on_uploaded(job_id, step, key)
