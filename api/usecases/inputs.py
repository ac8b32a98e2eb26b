"""Uploads into the bucket, under their content address, for the use cases that record jobs."""

from api.services import services
from api.submission import Upload
from shared import keys
from shared.style_library import StyleImage


def store_input(upload: Upload) -> str:
    """Store an upload under its content address, once."""
    key = keys.input_object_key(upload.sha256, upload.info.extension)
    objects = services().objects
    if not objects.exists(key):
        objects.put(key, upload.data, upload.info.content_type)
    return key


def stored_style(style: Upload | StyleImage) -> str:
    """The object key of a style image: a saved style's is stored already, an upload is stored now."""
    return style.key if isinstance(style, StyleImage) else store_input(style)
