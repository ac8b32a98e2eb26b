"""Validate uploads (API), decode them to float arrays and encode results (worker), with Pillow and numpy.

Every check that can be made from the header (format, declared size) runs before any pixel is decoded,
so a small file that declares a huge canvas is refused without allocating it. Truncation detection relies
on Pillow's global `ImageFile.LOAD_TRUNCATED_IMAGES` keeping its default (False); this module never sets it.

Alpha: an image "has alpha" when its mode carries transparency (RGBA, LA, PA, or a `transparency` entry, as
palette, grey or RGB PNGs and GIFs have) AND at least one pixel is not fully opaque. An all-opaque alpha
counts as none, so such an upload may still be written as JPEG. 16-bit and float greyscale ignore a
transparency key.

Animations (GIF, WebP, APNG) and multi-page TIFFs: only the first frame is validated and decoded, as
browsers show it before playback. Outputs are still images, and stylizing each frame on its own would
flicker and multiply the cost, so an animation is taken as its first frame rather than refused.
"""

import io
import struct
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageOps

from shared.config import Settings
from shared.errors import InvalidImage, InvalidInput

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
# output_format -> (Pillow format, extension, content type); extensions match _FORMATS'.
OUTPUT_FORMATS = {
    "png": ("PNG", "png", "image/png"),
    "jpeg": ("JPEG", "jpg", "image/jpeg"),
    "webp": ("WEBP", "webp", "image/webp"),
}
JPEG_ALPHA_MESSAGE = "jpeg cannot store transparency; use png or webp"
# Colour under fully transparent pixels when no pixel is visible at all: mid grey, neither black nor white.
_EMPTY_FILL = (128, 128, 128)


@dataclass(frozen=True)
class ImageInfo:
    """What an upload is: format, size after EXIF orientation, Pillow mode, and how to store and serve it."""

    format: str
    width: int
    height: int
    mode: str
    extension: str
    content_type: str
    # Some pixel is not fully opaque (see the module docstring); set by inspect_image only.
    has_alpha: bool = False


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
    with img:
        alpha = _alpha_band(img, field)
    return replace(info, has_alpha=alpha is not None)


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
        flat = _converted(img, lambda image: _to_rgb_or_gray_float(_oriented(image)), field)
    if flat.size != size:
        flat = flat.resize(size, Image.Resampling.LANCZOS)
    return _to_array(flat)


def decode_image_with_alpha(
    data: bytes,
    *,
    max_dim: int,
    max_pixels: int = Settings.max_image_pixels,
    min_side: int = Settings.min_image_side,
    field: str = "image",
) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode to float32 RGB (h, w, 3) in [0, 1] and uint8 alpha (h, w), or None when nothing is transparent.

    Both are resized like `decode_image` (longest side = max_dim); unresized alpha equals the file's exactly.
    Fully transparent pixels have no defined colour: they are filled with the alpha-weighted mean colour of
    the visible pixels, before resizing, so neither undefined colours nor a white background bleed into edges.
    Alpha is resized with Pillow's BILINEAR (a non-negative, antialiasing kernel): flat 0 and 255 areas stay
    exact and no ringing halo appears around a sprite, which LANCZOS would add.
    """
    img, info = _open_checked(data, field=field, max_pixels=max_pixels, min_side=min_side)
    with img:
        size = _checked_target_size(info, max_dim=max_dim, min_side=min_side, field=field)
        upright = _converted(img, _oriented, field)
        alpha = _alpha_band(upright, field)
        if alpha is None:
            flat = _converted(upright, _to_rgb_or_gray_float, field)
        else:
            flat = _converted(upright, lambda image: _filled_rgb(image, alpha), field)
    if flat.size != size:
        flat = flat.resize(size, Image.Resampling.LANCZOS)
    if alpha is not None and alpha.size != size:
        alpha = alpha.resize(size, Image.Resampling.BILINEAR)
    return _to_array(flat), None if alpha is None else np.asarray(alpha, dtype=np.uint8)


def resize_alpha(alpha: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a uint8 (h, w) alpha to (height, width) as decoding does (BILINEAR keeps 0 and 255 flat)."""
    height, width = size
    resized = Image.fromarray(alpha).resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.uint8)


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
    return encode_image(array)[0]


def encode_image(
    rgb: np.ndarray, *, alpha: np.ndarray | None = None, output_format: str = "png", quality: int = 95
) -> tuple[bytes, str, str]:
    """Encode float RGB (h, w, 3) in [0, 1] (rounded, clipped), with optional uint8 alpha: (data, ext, type).

    png is lossless and ignores quality. jpeg refuses alpha. webp is lossy at `quality`, but its alpha plane
    is always stored losslessly (libwebp's alpha_quality=100), so alpha round-trips bit-exactly in every
    format that accepts it.
    """
    pillow_format, extension, content_type = _output_format(output_format, has_alpha=alpha is not None)
    _check_quality(quality)
    image = _to_image(rgb, alpha)
    options = {"PNG": {}, "JPEG": {"quality": quality}, "WEBP": {"quality": quality, "alpha_quality": 100}}
    buffer = io.BytesIO()
    image.save(buffer, format=pillow_format, **options[pillow_format])
    return buffer.getvalue(), extension, content_type


def _output_format(output_format: str, *, has_alpha: bool) -> tuple[str, str, str]:
    """(Pillow format, extension, content type) of an output format, refusing jpeg for transparent images."""
    if output_format not in OUTPUT_FORMATS:
        raise InvalidInput(
            f"output_format must be one of {', '.join(OUTPUT_FORMATS)}, got {output_format!r}",
            field="output_format",
        )
    if has_alpha and output_format == "jpeg":
        raise InvalidInput(JPEG_ALPHA_MESSAGE, field="output_format")
    return OUTPUT_FORMATS[output_format]


def _check_quality(quality: int) -> None:
    # bool is an int subclass; True is not a quality.
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise InvalidInput(f"quality must be an integer from 1 to 100, got {quality!r}", field="quality")


def _to_image(rgb: np.ndarray, alpha: np.ndarray | None) -> Image.Image:
    """An 8-bit RGB or RGBA Pillow image; alpha must be uint8 of the same (h, w), taken as is."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (h, w, 3) array, got shape {rgb.shape}")
    pixels = np.clip(np.rint(np.nan_to_num(rgb, nan=0.0) * 255.0), 0, 255).astype(np.uint8)
    if alpha is None:
        return Image.fromarray(pixels)
    if alpha.shape != rgb.shape[:2] or alpha.dtype != np.uint8:
        raise ValueError(f"alpha must be uint8 of shape {rgb.shape[:2]}, got {alpha.dtype} {alpha.shape}")
    return Image.fromarray(np.dstack([pixels, alpha]))


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


def _converted(img: Image.Image, convert: Callable[[Image.Image], Image.Image], field: str) -> Image.Image:
    """Apply a Pillow conversion, turning Pillow's errors into an InvalidImage that names the mode."""
    try:
        return convert(img)
    except _DECODE_ERRORS as err:
        raise InvalidImage(
            f"colour mode {img.mode} cannot be converted to RGB ({err}); save the image as RGB and retry",
            field=field,
        ) from err


def _alpha_band(img: Image.Image, field: str) -> Image.Image | None:
    """The image's alpha as an "L" image, or None when it has none or every pixel is fully opaque."""
    if img.mode in _HIGH_BIT_GRAY_MODES or img.mode == "F":
        return None
    if img.mode not in _ALPHA_MODES and "transparency" not in img.info:
        return None
    # convert("RGBA") applies every kind of transparency Pillow knows (palette entries, grey or RGB keys).
    alpha = _converted(img, lambda image: image.convert("RGBA").getchannel("A"), field)
    return alpha if alpha.getextrema()[0] < 255 else None


def _filled_rgb(img: Image.Image, alpha: Image.Image) -> Image.Image:
    """The stored RGB colours, with fully transparent pixels set to the alpha-weighted mean visible colour."""
    pixels = np.array(img.convert("RGBA").convert("RGB"))  # RGBA first: LA, PA and P keep their own colours
    weights = np.asarray(alpha, dtype=np.float64)
    transparent = weights == 0
    if transparent.all():
        pixels[:] = _EMPTY_FILL
    elif transparent.any():
        mean = np.average(pixels[~transparent], axis=0, weights=weights[~transparent])
        pixels[transparent] = np.rint(mean).astype(np.uint8)
    return Image.fromarray(pixels)


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
