"""A batch's `manifest.json` under its output_prefix: what a build server reads once the batch has ended.

It is recomputed from the batch's records each time (so two writers write the same bytes) and written when no
item is queued or running: by `ManifestHook` after an item's ending, or by the reaper's repair pass
(`ManifestWriter.repair`) for a batch whose hook's write was lost (a crash, an S3 blip).
"""

import hashlib
import json
import logging
from collections.abc import Sequence

from shared import keys
from shared.batches import BatchRecord
from shared.errors import NotFound, StorageError, StoreUnavailable
from shared.jobs import JobRecord, JobStatus
from shared.lifecycle import Change, LifecycleHook

log = logging.getLogger("styleforge.manifests")

MANIFEST_VERSION = 1


def params_hash(record: JobRecord) -> str:
    """SHA-256 of the job's effective params as JSON (what two runs must share to give the same output)."""
    return hashlib.sha256(record.params.to_json().encode()).hexdigest()


def manifest(batch: BatchRecord, records: Sequence[JobRecord]) -> dict[str, object]:
    """The manifest's content: the batch, its counts, and one entry per input path in submission order."""
    ended = [record.finished_at for record in records if record.finished_at]
    counts = {status.value: 0 for status in JobStatus if status.is_terminal}
    for record in records:
        counts[record.status.value] = counts.get(record.status.value, 0) + 1
    return {
        "version": MANIFEST_VERSION,
        "batch_id": batch.id,
        "output_prefix": batch.output_prefix,  # as the batch JSON shows it
        "root": keys.tenant_prefix(batch.owner) + batch.output_prefix,  # where every output_key starts
        "created_at": batch.created_at,
        "finished_at": max(ended) if ended else batch.created_at,
        "items_total": batch.items_total,
        "counts": counts,
        "skipped": list(batch.skipped),
        "items": [_entry(record) for record in records],
    }


def _entry(record: JobRecord) -> dict[str, object]:
    succeeded = record.status is JobStatus.SUCCEEDED
    return {
        "path": record.path,
        "output_key": record.output_key if succeeded else None,
        "job_id": record.id,
        "status": record.status.value,
        "error": record.error or None,
        "params_hash": params_hash(record),
        "weights": record.weights or None,
        "precision": record.precision or None,
        # Added to JobRecord by the result cache's work; absent on records written before it.
        "engine_version": getattr(record, "engine_version", "") or None,
    }


class ManifestWriter:
    """Writes the manifest of a batch that has ended, over the batch and object stores."""

    def __init__(self, *, batches, objects) -> None:
        self._batches = batches
        self._objects = objects

    def write_if_ended(self, batch_id: str) -> str | None:
        """Write the batch's manifest if it has an output_prefix and no active item: its key, else None."""
        batch = self._batches.get(batch_id)
        if not batch.output_prefix or self._batches.any_active(batch_id):
            return None
        records = self._batches.records(batch_id)
        if any(not record.status.is_terminal for record in records):
            return None  # the records are the truth; the backlog set only spared reading them
        key = keys.manifest_object_key(batch.owner, batch.output_prefix)
        body = json.dumps(manifest(batch, records), indent=2, sort_keys=True).encode()
        self._objects.put(key, body, "application/json")  # no expiry tag: a deliverable, like the outputs
        self._batches.note_manifest(batch_id, key)
        log.info("batch %s: manifest written to %s (%d items)", batch_id, key, len(records))
        return key

    def repair(self, limit: int = 50) -> list[str]:
        """The reaper's pass: write the manifests still due of batches that have ended; the keys written."""
        written = []
        for batch_id in self._batches.pending_manifests(limit):
            try:
                key = self.write_if_ended(batch_id)
            except NotFound:  # the batch expired before it was written: nothing is left to describe
                self._batches.forget_manifest(batch_id)
                continue
            except StorageError as err:
                log.warning("batch %s: manifest not written (will retry): %s", batch_id, err.message)
                continue
            written += [key] if key else []
        return written


class ManifestHook(LifecycleHook):
    """After a batch item's ending, writes its batch's manifest if that was the batch's last active item."""

    def __init__(self, writer: ManifestWriter) -> None:
        self._writer = writer

    def after(self, change: Change) -> None:
        """Never raises: a failed write is logged, and the reaper's repair pass writes it later."""
        record = change.record
        # Every item of a batch with an output_prefix has an output_key: other endings cost nothing here.
        if record is None or not record.output_key or not change.after.is_terminal:
            return
        try:
            self._writer.write_if_ended(change.batch_id)
        except (StorageError, StoreUnavailable, NotFound) as err:
            log.warning("batch %s: manifest not written now (the reaper retries): %s", change.batch_id, err)
