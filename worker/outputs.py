"""The output copy of a batch item whose batch named an output_prefix: part of the job, not a nicety."""

from shared.jobs import JobRecord
from shared.storage import ObjectStore


def write_output_copy(objects: ObjectStore, record: JobRecord, data: bytes, content_type: str) -> None:
    """Put the result's bytes also at the item's output key (none: nothing to do).

    Called before the job is marked succeeded, so a StorageError (after boto3's own retries) fails the job
    with its reason rather than leaving it succeeded without its output. The copy carries no job-output tag:
    it is the studio's deliverable, kept until the studio deletes it, while the job's own result expires.
    """
    if record.output_key:
        objects.put(record.output_key, data, content_type)


def copy_output(objects: ObjectStore, record: JobRecord, result_key: str) -> None:
    """The same for a result served from the cache: a server-side copy of it, without the job-output tag."""
    if record.output_key:
        objects.copy(result_key, record.output_key, tags={})
