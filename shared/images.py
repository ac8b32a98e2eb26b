"""Validate uploaded images (API) and decode them to float arrays (worker), with Pillow and numpy only.

Every check that can be made from the header (format, declared size) runs before any pixel is decoded,
so a small file that declares a huge canvas is refused without allocating it. Truncation detection relies
on Pillow's global `ImageFile.LOAD_TRUNCATED_IMAGES` keeping its default (False); this module never sets it.
"""

import io
import struct
import warnings
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from shared.config import Settings
from shared.errors import InvalidImage

# Pillow format id -> (format we report, extension, content type). MPO is how Pillow names some camera JPEGs.
_FORMATS = {
    "PNG": ("PNG", "png", "image/png"),
    "JPEG": ("JPEG", "jpg", "image/jpeg"),
    "MPO": ("JPEG", "jpg", "image/jpeg"),
    "WEBP": ("WEBP", "webp", "image/webp"),
    "GIF": ("GIF", "gif", "image/gif"),
    "BMP": ("BMP", "bmp", "image/bmp"),
    "TIFF": ("TIFF", "tiff", "image/tiff"),
}
_OPENERS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")  # MPO files are opened by the JPEG opener
_NOT_AN_IMAGE = (
    "not an image Pillow can read (PNG, JPEG, WebP, GIF, BMP, TIFF); upload a file in one of those formats"
)
# What Pillow's parsers and decoders raise on malformed input (UnidentifiedImageError is an OSError).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, zlib.error)
_BOMB_ERRORS = (Image.DecompressionBombError, Image.DecompressionBombWarning)
_EXIF_ORIENTATION = 0x0112
_ROTATED_ORIENTATIONS = {5, 6, 7, 8}  # transpose, rotate 270, transverse, rotate 90: width and height swap
_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_HIGH_BIT_GRAY_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N"}  # read as 16-bit samples, 0..65535
_UNSUPPORTED_MODES = {"LAB"}  # Pillow's convert("RGB") copies LAB bands as if they were RGB: wrong colours


@dataclass(frozen=True)
class ImageInfo:
    """What an upload is: format, size after EXIF orientation, Pillow mode, and how to store and serve it."""

    format: str
    width: int
    height: int
    mode: str
    extension: str
    content_type: str


def target_size(width: int, height: int, max_dim: int) -> tuple[int, int]:
    """Scale (width, height) so the longest side is exactly max_dim; the short side is rounded, >= 1."""
    if width <= 0 or height <= 0 or max_dim <= 0:
        raise ValueError(f"sizes must be positive, got {width}x{height} and max_dim={max_dim}")
    longest = max(width, height)
    # Integer round-half-up of side * max_dim / longest, so the rule never depends on float error.
    short = max(1, (2 * min(width, height) * max_dim + longest) // (2 * longest))
    return (max_dim, short) if width >= height else (short, max_dim)


def inspect_image(data: bytes, *, field: str, max_pixels: int, min_side: int) -> ImageInfo:
    """Validate an upload completely (decoding it once) and describe it, keeping no pixels."""
    img, info = _open_checked(data, field=field, max_pixels=max_pixels, min_side=min_side)
    img.close()
    return info


def decode_image(
    data: bytes,
    *,
    max_dim: int,
    max_pixels: int = Settings.max_image_pixels,
    min_side: int = Settings.min_image_side,
    field: str = "image",
) -> np.ndarray:
    """Validate and decode an image to float32 RGB (h, w, 3) in [0, 1], longest side resized to max_dim."""
    img, info = _open_checked(data, field=field, max_pixels=max_pixels, min_side=min_side)
    with img:
        size = _checked_target_size(info, max_dim=max_dim, min_side=min_side, field=field)
        try:
            flat = _to_rgb_or_gray_float(_oriented(img))
        except _DECODE_ERRORS as err:
            raise InvalidImage(
                f"colour mode {img.mode} cannot be converted to RGB ({err}); save the image as RGB and retry",
                field=field,
            ) from err
    if flat.size != size:
        flat = flat.resize(size, Image.Resampling.LANCZOS)
    return _to_array(flat)


def _checked_target_size(info: ImageInfo, *, max_dim: int, min_side: int, field: str) -> tuple[int, int]:
    """The resized (width, height), refused when its short side would fall below min_side."""
    size = target_size(info.width, info.height, max_dim)
    if min(size) < min_side:
        raise InvalidImage(
            f"aspect ratio of this {info.width}x{info.height} image is too extreme for max_dim={max_dim}; "
            f"resized it would be {size[0]}x{size[1]} and both sides must be at least {min_side} px; "
            "use a larger max_dim or crop the image",
            field=field,
        )
    return size


def encode_png(array: np.ndarray) -> bytes:
    """Encode a float RGB array (h, w, 3) in [0, 1] as 8-bit PNG bytes (rounded, clipped)."""
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected an (h, w, 3) array, got shape {array.shape}")
    pixels = np.clip(np.rint(np.nan_to_num(array, nan=0.0) * 255.0), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _open_checked(
    data: bytes, *, field: str, max_pixels: int, min_side: int
) -> tuple[Image.Image, ImageInfo]:
    """Open, check the header, then fully decode the first frame; the caller must close the image."""
    if not data:
        raise InvalidImage("the file is empty; choose an image file and upload it again", field=field)
    # Pillow warns (then errors at twice its limit) about decompression bombs; treat both as refusals.
    # catch_warnings touches process-wide state, but only for the duration of this header check and decode.
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        img = _open(data, field)
        try:
            _check_size(img.width, img.height, field=field, max_pixels=max_pixels, min_side=min_side)
            _load(img, field)
        except BaseException:
            img.close()
            raise
    return img, _describe(img)


def _open(data: bytes, field: str) -> Image.Image:
    """Identify the format from the header only (lazy: no pixel data is decoded here)."""
    try:
        return Image.open(io.BytesIO(data), formats=_OPENERS)
    except _BOMB_ERRORS as err:
        raise InvalidImage(f"image declares too many pixels to decode safely ({err})", field=field) from err
    except _DECODE_ERRORS as err:
        raise InvalidImage(_NOT_AN_IMAGE, field=field) from err


def _check_size(width: int, height: int, *, field: str, max_pixels: int, min_side: int) -> None:
    """Refuse empty, oversized (decompression bomb) and too-small images from the declared size."""
    if width <= 0 or height <= 0:
        raise InvalidImage(f"image has no pixels ({width}x{height})", field=field)
    if width * height > max_pixels:
        raise InvalidImage(
            f"image is {width}x{height} = {width * height:,} pixels, over the limit of {max_pixels:,}; "
            "downscale it and upload again",
            field=field,
        )
    if min(width, height) < min_side:
        raise InvalidImage(
            f"image is {width}x{height}; both sides must be at least {min_side} px", field=field
        )


def _load(img: Image.Image, field: str) -> None:
    """Decode the first frame fully (catching truncated or corrupt data) and refuse unusable colour modes."""
    try:
        img.load()
    except _BOMB_ERRORS as err:
        raise InvalidImage(f"image declares too many pixels to decode safely ({err})", field=field) from err
    except _DECODE_ERRORS as err:
        raise InvalidImage(
            f"image data is truncated or corrupt ({err}); re-export the file and upload it again", field=field
        ) from err
    if img.mode in _UNSUPPORTED_MODES:
        raise InvalidImage(f"colour mode {img.mode} is not supported; save the image as RGB", field=field)


def _describe(img: Image.Image) -> ImageInfo:
    """Build ImageInfo from a loaded image (PNG keeps EXIF after the pixels, so this must follow load)."""
    fmt, extension, content_type = _FORMATS[img.format or ""]
    width, height = img.size
    if _exif_orientation(img) in _ROTATED_ORIENTATIONS:
        width, height = height, width
    return ImageInfo(fmt, width, height, img.mode, extension, content_type)


def _exif_orientation(img: Image.Image) -> int:
    """The EXIF Orientation tag, 1 (upright) when absent or unreadable."""
    try:
        return int(img.getexif().get(_EXIF_ORIENTATION, 1))
    except (*_DECODE_ERRORS, KeyError, TypeError):
        return 1


def _oriented(img: Image.Image) -> Image.Image:
    """A copy of the image turned upright per EXIF; unchanged when the EXIF block cannot be read."""
    try:
        return ImageOps.exif_transpose(img)
    except (*_DECODE_ERRORS, KeyError, TypeError):
        return img.copy()


def _to_rgb_or_gray_float(img: Image.Image) -> Image.Image:
    """Return an "RGB" image, or for 16-bit / float grayscale an "F" image with values in [0, 1]."""
    if img.mode in _HIGH_BIT_GRAY_MODES:
        return Image.fromarray(np.asarray(img, dtype=np.float32) / 65535.0)
    if img.mode == "F":
        return img  # float TIFFs are taken to hold [0, 1] already; out-of-range values are clipped later
    if img.mode in _ALPHA_MODES or "transparency" in img.info:
        # Alpha is flattened over white for now; real alpha handling comes in a later issue.
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, img.convert("RGBA")).convert("RGB")
    return img.convert("RGB")


def _to_array(img: Image.Image) -> np.ndarray:
    """Turn an "RGB" or "F" image into a float32 (h, w, 3) array in [0, 1]."""
    array = np.asarray(img, dtype=np.float32)
    if img.mode == "F":
        array = np.repeat(np.nan_to_num(array)[:, :, None], 3, axis=2)
    else:
        array = array / np.float32(255.0)
    return np.clip(array, 0.0, 1.0).astype(np.float32, copy=False)
