"""Turn a multipart job submission into validated params and images, before anything is stored."""

import hashlib
import json
from dataclasses import dataclass

from werkzeug.datastructures import FileStorage

from shared import images
from shared.config import Settings
from shared.errors import InvalidImage, InvalidInput
from shared.params import StyleParams, parse_flag
from shared.plan import Plan, plan_levels, single_image_plan
from shared.style_library import SavedStyle, StyleImage
from shared.webhooks import NO_WEBHOOK, WebhookTarget, parse_webhook

IMAGE_FIELDS = ("content", "style")
# Request fields that are not style options: where to send the job's events, and which.
WEBHOOK_FIELDS = ("webhook", "webhook_events")
# A saved style's id (POST /v1/styles), in place of style files.
STYLE_ID_FIELD = "style_id"
# Whether the job may use the result cache (default true): a request field, not a style option.
CACHE_FIELD = "cache"
# The params a saved style brings with it.
SAVED_STYLE_PARAMS = ("style_blend_weights", "style_scale")
MAX_STYLES = 8


@dataclass(frozen=True)
class Upload:
    """One validated image upload."""

    data: bytes
    info: images.ImageInfo

    @property
    def sha256(self) -> str:
        """Content address of the bytes."""
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class Submission:
    """A fully validated job request."""

    params: StyleParams
    content: Upload
    styles: tuple[Upload | StyleImage, ...]  # uploads, or a saved style's images (stored already)
    plan: Plan
    webhook: WebhookTarget = NO_WEBHOOK
    style_id: str = ""  # the saved style the styles come from
    cache: bool = True  # false: the job neither reads nor writes the result cache


def parse_submission(form, files, settings: Settings, saved: SavedStyle | None = None) -> Submission:
    """Validate params first (cheap), then the images and the plan; raises InvalidInput naming the field.

    ``saved``: the saved style the request's `style_id` names (the use case loads it, owner-checked)."""
    _refuse_ambiguity(form, files)
    params = style_params(parse_params(form), settings, saved)
    webhook = read_webhook(form, settings)
    cache = read_cache(form, settings)
    content = read_image(files.get("content"), "content", settings, params.max_dim)
    styles = choose_styles(files.getlist("style"), saved, settings, params)
    params.blend_weights(len(styles))
    check_output_format(content, params)
    plan = plan_for(content, params)
    style_id = saved.id if saved else ""
    return Submission(
        params=params,
        content=content,
        styles=styles,
        plan=plan,
        webhook=webhook,
        style_id=style_id,
        cache=cache,
    )


def style_params(raw: dict[str, object], settings: Settings, saved: SavedStyle | None) -> StyleParams:
    """The job's params; a saved style brings its own blend weights and scale (naming them too is refused)."""
    if saved is not None:
        for name in SAVED_STYLE_PARAMS:
            if name in raw:
                raise InvalidInput(
                    f"{name} comes with the saved style {saved.name!r}; leave it out, or send style files",
                    field=name,
                )
        raw = {**raw, "style_blend_weights": list(saved.blend_weights), "style_scale": saved.style_scale}
    return StyleParams.from_mapping(
        raw, max_dim_limit=settings.max_dim_limit, min_dim=settings.min_image_side
    )


def choose_styles(
    uploads: list, saved: SavedStyle | None, settings: Settings, params: StyleParams
) -> tuple[Upload | StyleImage, ...]:
    """The uploaded style images, or the saved style's (checked at this job's size): one or the other."""
    max_dim = round(params.max_dim * params.style_scale)
    if saved is None:
        return read_styles(uploads, settings, max_dim)
    if uploads:
        raise InvalidInput("send style files or a style_id, not both", field=STYLE_ID_FIELD)
    for image in saved.images:
        check_scaled_side(image.width, image.height, STYLE_ID_FIELD, settings, max_dim)
    return saved.images


def plan_for(content: Upload, params: StyleParams) -> Plan:
    """The coarse-to-fine plan of one content image (tileable sides rounded to multiples of 16)."""
    if params.optimizer == "none":
        return single_image_plan(content.info.width, content.info.height, max_dim=params.max_dim)
    return plan_levels(
        content.info.width,
        content.info.height,
        max_dim=params.max_dim,
        levels=params.levels,
        steps=params.steps,
        multiple=16 if params.tileable else 1,
        coarse_step_factor=params.coarse_step_factor,
        history=params.lbfgs_history if params.optimizer == "lbfgs" else 0,
    )


def check_output_format(content: Upload, params: StyleParams) -> None:
    """Refuse jpeg output for content with transparency (jpeg cannot store alpha)."""
    if content.info.has_alpha and params.output_format == "jpeg":
        message = "the content image has transparency, which jpeg cannot store; use png or webp"
        raise InvalidInput(message, field="output_format")


def read_styles(uploads: list[FileStorage], settings: Settings, max_dim: int) -> tuple[Upload, ...]:
    """Validate the one or more style images."""
    if len(uploads) > MAX_STYLES:
        raise InvalidInput(f"at most {MAX_STYLES} style images per job", field="style")
    return tuple(read_image(upload, "style", settings, max_dim) for upload in uploads) or (
        read_image(None, "style", settings, max_dim),
    )


def _refuse_ambiguity(form, files) -> None:
    for name in files:
        if name not in IMAGE_FIELDS:
            raise InvalidInput(f"unexpected file field {name!r}; send params as text fields", field=name)
    for fields in (form, files):
        for name in fields:
            if name != "style" and len(fields.getlist(name)) > 1:
                raise InvalidInput(f"{name} was given more than once", field=name)


def parse_params(form) -> dict[str, object]:
    """Params from a `params` JSON field plus individual form fields (form fields win)."""
    params: dict[str, object] = {}
    if "params" in form:
        try:
            decoded = json.loads(form["params"])
        except (ValueError, RecursionError) as err:  # JSONDecodeError, the int-digits limit, deep nesting
            raise InvalidInput(f"params is not valid JSON: {err}", field="params") from err
        if not isinstance(decoded, dict):
            raise InvalidInput("params must be a JSON object", field="params")
        params.update(decoded)
    for name in form:
        if name is None:  # a multipart part whose Content-Disposition has no name=
            raise InvalidInput("every form field needs a name")
        if name in IMAGE_FIELDS:
            raise InvalidInput(f"{name} must be uploaded as a file, not a text field", field=name)
        if name not in ("params", STYLE_ID_FIELD, CACHE_FIELD) and name not in WEBHOOK_FIELDS:
            params[name] = form[name]
    return params


def read_cache(fields, settings: Settings) -> bool:
    """The `cache` field of a form or JSON body (absent: the deployment's default, on unless
    STYLEFORGE_RESULT_CACHE is off): true lets the job use the result cache."""
    raw = fields.get(CACHE_FIELD)
    return settings.result_cache if raw is None else parse_flag(CACHE_FIELD, raw)


def read_webhook(fields, settings: Settings) -> WebhookTarget:
    """The `webhook` URL and `webhook_events` of a form or JSON body, SSRF-guarded; NO_WEBHOOK when absent."""
    return parse_webhook(
        fields.get("webhook"),
        fields.get("webhook_events"),
        allowlist=settings.webhook_allowlist,
        secret=settings.webhook_secret,
    )


def read_image(upload: FileStorage | None, field: str, settings: Settings, max_dim: int) -> Upload:
    """Read and validate one uploaded image."""
    if upload is None:
        raise InvalidInput(f"{field} image is required (multipart file field {field!r})", field=field)
    data = upload.read()
    info = images.inspect_image(
        data, field=field, max_pixels=settings.max_image_pixels, min_side=settings.min_image_side
    )
    check_scaled_side(info.width, info.height, field, settings, max_dim)
    return Upload(data=data, info=info)


def check_scaled_side(width: int, height: int, field: str, settings: Settings, max_dim: int) -> None:
    """InvalidImage when an image scaled to max_dim would have a short side below the minimum."""
    scaled = images.target_size(width, height, max_dim)
    if min(scaled) < settings.min_image_side:
        raise InvalidImage(
            f"{field} is {width}x{height}; at max_dim={max_dim} its short side would be below "
            f"{settings.min_image_side} px; crop it or raise max_dim",
            field=field,
        )
