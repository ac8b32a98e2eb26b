"""Uploads into the bucket, under their content address within the tenant, for the use cases that record
jobs. The dedup looks only in the tenant's own inputs, so whether another tenant uploaded the same image
never shows (not even as a faster answer)."""

from api.services import services
from api.submission import Upload
from shared import keys
from shared.style_library import StyleImage


def store_input(tenant: str, upload: Upload) -> str:
    """Store an upload under its content address in the tenant's inputs, once."""
    key = keys.input_object_key(tenant, upload.sha256, upload.info.extension)
    objects = services().objects
    if not objects.exists(key):
        objects.put(key, upload.data, upload.info.content_type)
    return key


def stored_style(tenant: str, style: Upload | StyleImage) -> str:
    """The object key of a style image: a saved style's is stored already (the tenant's own, as the owner
    check of its style says), an upload is stored now."""
    return style.key if isinstance(style, StyleImage) else store_input(tenant, style)
