"""The style library: save, view, list and delete a tenant's house styles, apart from HTTP."""

import time
import uuid
from collections.abc import Mapping

from api.args import RECORD_ID
from api.auth import current_tenant
from api.services import services
from api.style_submission import StyleSubmission
from api.submission import STYLE_ID_FIELD
from api.usecases.inputs import store_input
from shared.errors import InvalidInput
from shared.style_library import SavedStyle, StyleImage, not_found


def save_style(submission: StyleSubmission) -> dict[str, object]:
    """Store the images among the tenant's inputs and record the style; its JSON."""
    tenant = current_tenant()
    images = tuple(
        StyleImage(
            key=store_input(tenant, image),
            sha256=image.sha256,
            width=image.info.width,
            height=image.info.height,
        )
        for image in submission.images
    )
    style = SavedStyle(
        id=uuid.uuid4().hex,
        owner=tenant,
        name=submission.name,
        images=images,
        blend_weights=submission.blend_weights,
        style_scale=submission.style_scale,
        created_at=time.time(),
    )
    return style_json(services().styles.save(style))


def owned_style(style_id: str) -> SavedStyle:
    """The caller's saved style; NotFound (as for an unknown id) when another tenant owns it."""
    if not RECORD_ID.fullmatch(style_id):
        raise not_found()
    return services().styles.get(current_tenant(), style_id)


def requested_style(fields: object) -> SavedStyle | None:
    """The caller's saved style a submission names by `style_id` (a form or a JSON body), else None;
    NotFound, as for an unknown id, when the caller has no such style."""
    style_id = fields.get(STYLE_ID_FIELD) if isinstance(fields, Mapping) else None
    if style_id is None:
        return None
    if not isinstance(style_id, str):
        raise InvalidInput("style_id must be a string: a saved style's id", field=STYLE_ID_FIELD)
    return owned_style(style_id)


def style_view(style_id: str) -> dict[str, object]:
    """One saved style's JSON."""
    return style_json(owned_style(style_id))


def list_styles(limit: int) -> list[dict[str, object]]:
    """The caller's newest saved styles, newest first."""
    return [style_json(style) for style in services().styles.list(current_tenant(), limit)]


def delete_style(style_id: str) -> None:
    """Delete the caller's saved style; jobs already recorded with it keep running."""
    services().styles.delete(current_tenant(), owned_style(style_id).id)


def style_json(style: SavedStyle) -> dict[str, object]:
    """The public JSON of a saved style the caller owns."""
    return {
        "id": style.id,
        "name": style.name,
        "owner": style.owner,
        "images": [image_json(image) for image in style.images],
        "style_blend_weights": list(style.blend_weights),
        "style_scale": style.style_scale,
        "created_at": style.created_at,
    }


def image_json(image: StyleImage) -> dict[str, object]:
    """One saved image with a presigned URL to show it (made only for a style the caller owns)."""
    return {**image.__dict__, "url": services().objects.presign(image.key)}
