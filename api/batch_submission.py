"""Turn a batch request (many files, a zip, or JSON naming bucket objects) into validated items.

Everything is checked before anything is stored: a bad batch (zip-slip, too many items, no images, bad params)
is refused whole. Inside a good batch, non-image files are skipped and listed, and a corrupt image fails only
its own item.
"""

import posixpath
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath

from api.submission import (
    CACHE_FIELD,
    STYLE_ID_FIELD,
    WEBHOOK_FIELDS,
    Upload,
    check_output_format,
    choose_styles,
    parse_params,
    plan_for,
    read_cache,
    read_image,
    read_webhook,
    style_params,
)
from shared import images, keys
from shared.config import Settings
from shared.errors import Forbidden, InvalidImage, InvalidInput, PayloadTooLarge
from shared.outputs import OUTPUT_PREFIX_FIELD, parse_output_prefix
from shared.params import StyleParams
from shared.plan import Plan
from shared.style_library import SavedStyle, StyleImage
from shared.webhooks import NO_WEBHOOK, WebhookTarget

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
FILE_FIELDS = ("content", "style", "archive")
# S3's limit on an object key, in bytes of UTF-8.
MAX_KEY_BYTES = 1024


@dataclass(frozen=True)
class BatchItem:
    """One content image of a batch: a validated upload, or the reason it fails at submission."""

    path: str
    upload: Upload | None
    plan: Plan | None = None
    error: str = ""


@dataclass(frozen=True)
class BatchSubmission:
    """A fully validated multipart or zip batch request."""

    params: StyleParams
    styles: tuple[Upload | StyleImage, ...]  # uploads, or a saved style's images (stored already)
    items: tuple[BatchItem, ...]
    skipped: tuple[dict[str, str], ...]
    webhook: WebhookTarget = NO_WEBHOOK
    style_id: str = ""  # the saved style the styles come from
    output_prefix: str = ""  # shared.outputs.parse_output_prefix's: relative, ending with '/'; empty: none
    cache: bool = True  # false: its items neither read nor write the result cache


def parse_batch(form, files, settings: Settings, saved: SavedStyle | None = None) -> BatchSubmission:
    """Validate params, styles, and every item; raises InvalidInput naming the field for a bad batch.

    ``saved``: the saved style the request's `style_id` names (the use case loads it, owner-checked)."""
    for name in files:
        if name not in FILE_FIELDS:
            raise InvalidInput(f"unexpected file field {name!r}", field=name)
    output_prefix = parse_output_prefix(form.get(OUTPUT_PREFIX_FIELD))
    params_form = {name: form[name] for name in form if name != OUTPUT_PREFIX_FIELD}
    params = style_params(parse_params(params_form), settings, saved)
    webhook = read_webhook(form, settings)
    cache = read_cache(form, settings)
    styles = choose_styles(files.getlist("style"), saved, settings, params)
    params.blend_weights(len(styles))
    entries = _zip_entries(files["archive"], settings) if "archive" in files else _file_entries(files)
    options = {"webhook": webhook, "style_id": saved.id if saved else "", "output_prefix": output_prefix}
    return _submission(entries, params, styles, settings, "content", **options, cache=cache)


def parse_batch_json(
    body: object, settings: Settings, objects, tenant: str, saved: SavedStyle | None = None
) -> BatchSubmission:
    """The JSON form: style and content images already in the bucket, named by key or by a prefix; or
    `style_id`, a saved style (owner-checked by the caller), in place of `styles`.

    Keys and the prefix are full object keys, as the API reports them (`style_keys`, `result.key`), and each
    must lie under the caller's own `tenants/{tenant}/`, else Forbidden naming the field (decided from the
    name alone: nothing outside is ever read, listed or checked for existence)."""
    if not isinstance(body, dict):
        raise InvalidInput("the JSON body must be an object", field="body")
    known = {"styles", "contents", "prefix", "params", STYLE_ID_FIELD, OUTPUT_PREFIX_FIELD, CACHE_FIELD}
    known |= set(WEBHOOK_FIELDS)
    unknown = sorted(set(body) - known)
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r}", field=unknown[0])
    raw_params = body.get("params", {})
    if not isinstance(raw_params, dict):
        raise InvalidInput("params must be a JSON object", field="params")
    output_prefix = parse_output_prefix(body.get(OUTPUT_PREFIX_FIELD))
    params = style_params(raw_params, settings, saved)
    webhook = read_webhook(body, settings)
    cache = read_cache(body, settings)
    style_keys = _json_style_keys(body, tenant, saved)
    contents = _content_keys(body, objects, settings, tenant)
    styles = _json_styles(style_keys, objects, settings, params, saved)
    params.blend_weights(len(styles))
    entries = [(path, objects.get(key)) for key, path in contents]
    options = {"webhook": webhook, "style_id": saved.id if saved else "", "output_prefix": output_prefix}
    return _submission(entries, params, styles, settings, "contents", **options, cache=cache)


def _submission(
    entries, params: StyleParams, styles, settings: Settings, field: str, **options
) -> BatchSubmission:
    """Count and classify the entries into the batch; InvalidInput naming ``field`` when none is an image."""
    _check_count(entries, settings)
    items, skipped = _classify(entries, params, settings)
    if not items:
        what = "files" if field == "content" else "objects"
        raise InvalidInput(f"the batch holds no image {what}", field=field)
    return BatchSubmission(
        params=params, styles=styles, items=tuple(items), skipped=tuple(skipped), **options
    )


def _json_style_keys(body: dict, tenant: str, saved: SavedStyle | None) -> list[str]:
    """The `styles` keys, each the caller's own; none with a saved style, which may not come with them."""
    if saved is not None:
        if "styles" in body:
            raise InvalidInput("send styles or a style_id, not both", field=STYLE_ID_FIELD)
        return []
    return [own_key(key, tenant, "styles") for key in _key_list(body, "styles")]


def _json_styles(
    style_keys: list[str], objects, settings: Settings, params: StyleParams, saved: SavedStyle | None
) -> tuple[Upload | StyleImage, ...]:
    if saved is not None:
        return choose_styles([], saved, settings, params)
    style_dim = round(params.max_dim * params.style_scale)
    return tuple(_stored_style(key, objects, settings, style_dim) for key in style_keys)


def _key_list(body: dict, field: str) -> list[str]:
    named = body.get(field)
    if not isinstance(named, list) or not named or not all(isinstance(key, str) for key in named):
        raise InvalidInput(f"{field} must be a non-empty list of object keys", field=field)
    return [checked_key(key, field) for key in named]


def checked_key(key: object, field: str) -> str:
    """A key S3 can address (1 to 1024 bytes of UTF-8), or InvalidInput: S3 would refuse it as a 5xx."""
    try:
        size = len(key.encode()) if isinstance(key, str) else 0
    except UnicodeEncodeError:  # a lone surrogate, which JSON can carry
        size = 0
    if not 1 <= size <= MAX_KEY_BYTES:
        raise InvalidInput(f"{field}: an object key is 1 to {MAX_KEY_BYTES} bytes of UTF-8", field=field)
    return key


def own_key(key: str, tenant: str, field: str) -> str:
    """A key (or prefix) under the tenant's root, else Forbidden naming the field.

    A '.' or '..' segment is refused too: S3 keys are literal, but a server that normalised paths could
    otherwise be led out of the tenant's root."""
    root = keys.tenant_prefix(tenant)
    if not key.startswith(root) or {".", ".."} & set(key.split("/")):
        raise Forbidden(f"{field}: object keys must start with your tenant's {root!r}", field=field)
    return key


def _stored_style(key: str, objects, settings: Settings, max_dim: int) -> Upload:
    if not objects.exists(key):
        raise InvalidInput(f"no object {key[:200]!r} in the bucket", field="styles")
    return read_image(_Bytes(objects.get(key)), "styles", settings, max_dim)


def _content_keys(body: dict, objects, settings: Settings, tenant: str) -> list[tuple[str, str]]:
    """(key, relative path) of each content object: listed explicitly, or everything under a prefix."""
    if "prefix" in body:
        prefix = own_key(checked_key(body["prefix"], "prefix"), tenant, "prefix")
        found = objects.list_keys(prefix, settings.batch_max_items * 2 + 1)
        return [(key, safe_path(key[len(prefix) :], "prefix")) for key in found]
    listed = body.get("contents")
    if not isinstance(listed, list) or not all(isinstance(item, dict) and "key" in item for item in listed):
        raise InvalidInput('contents must be a list of {"key": ..., "path": ...}', field="contents")
    content_keys = [own_key(checked_key(item["key"], "contents"), tenant, "contents") for item in listed]
    pairs = [
        (key, safe_path(str(item.get("path") or key), "contents"))
        for key, item in zip(content_keys, listed, strict=True)
    ]
    for key, _ in pairs:
        if not objects.exists(key):
            raise InvalidInput(f"no object {key[:200]!r} in the bucket", field="contents")
    return pairs


class _Bytes:
    """The read() of an upload, for bytes that came from the bucket."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self) -> bytes:
        return self._data


def safe_path(raw: str, field: str) -> str:
    """A relative POSIX path with no absolute root and no '..', or InvalidInput (zip-slip protection)."""
    text = (raw or "").replace("\\", "/")
    path = PurePosixPath(posixpath.normpath(text)) if text else None
    if path is None or text.startswith("/") or ":" in path.parts[0] or ".." in PurePosixPath(text).parts:
        raise InvalidInput(
            f"unsafe or empty path {raw[:100]!r}: paths must be relative, without '..'", field=field
        )
    return str(path)


def _file_entries(files) -> list[tuple[str, bytes]]:
    entries = [(safe_path(upload.filename, "content"), upload.read()) for upload in files.getlist("content")]
    paths = [path for path, _ in entries]
    if len(set(paths)) != len(paths):
        raise InvalidInput("two content files share one path", field="content")
    return entries


def _zip_entries(upload, settings: Settings) -> list[tuple[str, bytes]]:
    try:
        archive = zipfile.ZipFile(upload.stream)
    except zipfile.BadZipFile as err:
        raise InvalidInput(f"archive is not a readable zip file: {err}", field="archive") from err
    members = [info for info in archive.infolist() if not info.is_dir()]
    for info in members:
        safe_path(info.filename, "archive")
    if sum(info.file_size for info in members) > settings.batch_max_unzipped_bytes:
        raise PayloadTooLarge(
            f"archive expands beyond {settings.batch_max_unzipped_bytes} bytes", field="archive"
        )
    if len(members) > settings.batch_max_items * 2:
        raise PayloadTooLarge(f"archive holds {len(members)} files", field="archive")
    return [(safe_path(info.filename, "archive"), archive.read(info)) for info in members]


def _check_count(entries: list, settings: Settings) -> None:
    images_like = [path for path, _ in entries if PurePosixPath(path).suffix.lower() in IMAGE_SUFFIXES]
    if len(images_like) > settings.batch_max_items:
        raise PayloadTooLarge(
            f"{len(images_like)} images in one batch; the limit is {settings.batch_max_items}",
            field="content",
        )


def _classify(entries, params: StyleParams, settings: Settings):
    items, skipped = [], []
    for path, data in entries:
        try:
            info = images.inspect_image(
                data, field="content", max_pixels=settings.max_image_pixels, min_side=settings.min_image_side
            )
        except InvalidImage as err:
            if PurePosixPath(path).suffix.lower() in IMAGE_SUFFIXES:
                items.append(BatchItem(path=path, upload=None, error=f"{path}: {err.message}"))
            else:
                skipped.append({"path": path, "reason": "not an image file"})
            continue
        items.append(_checked_item(path, Upload(data=data, info=info), params))
    return items, skipped


def _checked_item(path: str, upload: Upload, params: StyleParams) -> BatchItem:
    try:
        check_output_format(upload, params)
        plan = plan_for(upload, params)
    except InvalidInput as err:
        return BatchItem(path=path, upload=None, error=f"{path}: {err.message}")
    return BatchItem(path=path, upload=upload, plan=plan)
