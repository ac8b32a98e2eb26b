"""Uploads into the bucket, under their content address within the tenant, for the use cases that record
jobs. The dedup looks only in the tenant's own inputs, so whether another tenant uploaded the same image
never shows (not even as a faster answer)."""

from api.services import services
from api.submission import Upload
from shared import keys


def store_input(tenant: str, upload: Upload) -> str:
    """Store an upload under its content address in the tenant's inputs, once."""
    key = keys.input_object_key(tenant, upload.sha256, upload.info.extension)
    objects = services().objects
    if not objects.exists(key):
        objects.put(key, upload.data, upload.info.content_type)
    return key
