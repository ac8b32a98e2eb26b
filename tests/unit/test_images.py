"""Upload validation and decoding in shared.images."""

import io
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from shared.errors import InvalidImage, InvalidInput
from shared.images import (
    ImageInfo,
    decode_image,
    decode_image_with_alpha,
    encode_image,
    encode_png,
    inspect_image,
    target_size,
)
from tests.fixtures.badimages import (
    bomb_png,
    noise_png,
    text_file,
    tiny_png,
    truncated_png,
    zero_size_png,
)

pytestmark = pytest.mark.unit

LIMITS = {"max_pixels": 50_000_000, "min_side": 16}
EXIF_ORIENTATION = 0x0112
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SPRITE = EXAMPLES / "sprites" / "Minduka_Present_Blue_Pack.png"  # 128x128 RGBA, from Matplotlib


def save(img: Image.Image, fmt: str = "PNG", **params: object) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def inspect(data: bytes, **overrides: int) -> ImageInfo:
    return inspect_image(data, field="content", **{**LIMITS, **overrides})


def test_text_file_is_rejected_as_not_an_image():
    with pytest.raises(InvalidImage, match="not an image") as caught:
        inspect(text_file())
    assert caught.value.field == "content"
    assert caught.value.code == "invalid_image"


def test_empty_upload_is_rejected():
    with pytest.raises(InvalidImage, match="empty"):
        inspect(b"")


def test_truncated_png_is_rejected():
    with pytest.raises(InvalidImage, match="truncated"):
        inspect(truncated_png())
    with pytest.raises(InvalidImage, match="truncated"):
        decode_image(truncated_png(), max_dim=64)


def test_truncation_check_leaves_pillow_global_alone():
    with pytest.raises(InvalidImage):
        inspect(truncated_png())
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_one_pixel_image_is_rejected_for_min_side():
    with pytest.raises(InvalidImage, match="at least 16 px"):
        inspect(tiny_png())
    with pytest.raises(InvalidImage, match="at least 16 px"):
        decode_image(tiny_png(), max_dim=64)


def test_zero_by_zero_png_is_rejected():
    with pytest.raises(InvalidImage):
        inspect(zero_size_png())


def test_png_declaring_30000_squared_is_rejected_fast_without_decoding():
    data = bomb_png(30000, 30000)
    assert len(data) < 1024
    start = time.perf_counter()
    with pytest.raises(InvalidImage, match="too many pixels"):
        inspect(data)
    assert time.perf_counter() - start < 0.5


def test_declared_size_over_our_limit_is_rejected_before_decoding():
    # 8000x8000 = 64M pixels: under Pillow's own bomb limit, over ours. The IDAT is nearly empty, so a
    # decode would fail as "truncated"; refusing on the size proves the header check came first.
    with pytest.raises(InvalidImage, match="over the limit of 50,000,000"):
        inspect(bomb_png(8000, 8000))


def test_pillow_decompression_bomb_warning_becomes_invalid_image():
    # 100M pixels is within our raised limit but over Pillow's warning threshold (about 89M).
    with pytest.raises(InvalidImage, match="too many pixels"):
        inspect(bomb_png(10000, 10000), max_pixels=200_000_000)


def test_inspect_describes_png():
    info = inspect(noise_png(64, 32))
    assert info == ImageInfo("PNG", 64, 32, "RGB", "png", "image/png")


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("JPEG", ("JPEG", "jpg", "image/jpeg")),
        ("WEBP", ("WEBP", "webp", "image/webp")),
        ("GIF", ("GIF", "gif", "image/gif")),
        ("BMP", ("BMP", "bmp", "image/bmp")),
        ("TIFF", ("TIFF", "tiff", "image/tiff")),
    ],
)
def test_inspect_names_format_extension_and_content_type(fmt, expected):
    info = inspect(save(Image.new("RGB", (40, 20), (10, 200, 30)), fmt))
    assert (info.format, info.extension, info.content_type) == expected
    assert (info.width, info.height) == (40, 20)


def exif_rotated_jpeg() -> bytes:
    """40 wide x 20 high, left half red, right half blue, tagged Orientation=6 (display rotated 90 CW)."""
    img = Image.new("RGB", (40, 20), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 20, 20))
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    return save(img, "JPEG", exif=exif, quality=95)


def test_exif_orientation_swaps_reported_size():
    info = inspect(exif_rotated_jpeg())
    assert (info.width, info.height) == (20, 40)


def test_exif_orientation_is_applied_when_decoding():
    array = decode_image(exif_rotated_jpeg(), max_dim=40)
    assert array.shape == (40, 20, 3)
    # Rotating 90 degrees clockwise puts the original left (red) half on top.
    top, bottom = array[:15].mean(axis=(0, 1)), array[25:].mean(axis=(0, 1))
    assert top[0] > 0.9 and top[2] < 0.1
    assert bottom[2] > 0.9 and bottom[0] < 0.1


def assert_rgb_unit_float(array: np.ndarray, shape: tuple[int, int]) -> None:
    assert array.dtype == np.float32
    assert array.shape == (*shape, 3)
    assert array.min() >= 0.0 and array.max() <= 1.0


def test_rgba_decodes_to_rgb_over_white():
    img = Image.new("RGBA", (32, 16), (0, 0, 0, 0))
    img.paste((255, 0, 0, 255), (0, 0, 16, 16))
    array = decode_image(save(img), max_dim=32)
    assert_rgb_unit_float(array, (16, 32))
    np.testing.assert_allclose(array[8, 4], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(array[8, 28], [1.0, 1.0, 1.0])


def test_palette_with_transparency_decodes_to_rgb_over_white():
    img = Image.new("P", (32, 16), 0)
    img.putpalette([0, 0, 0, 0, 128, 0] + [0] * (254 * 3))
    img.paste(1, (0, 0, 16, 16))
    array = decode_image(save(img, transparency=0), max_dim=32)
    assert_rgb_unit_float(array, (16, 32))
    np.testing.assert_allclose(array[8, 4], [0.0, 128 / 255, 0.0], atol=1e-6)
    np.testing.assert_allclose(array[8, 28], [1.0, 1.0, 1.0])


def test_grayscale_decodes_to_three_equal_channels():
    array = decode_image(save(Image.new("L", (32, 16), 128)), max_dim=32)
    assert_rgb_unit_float(array, (16, 32))
    np.testing.assert_allclose(array, 128 / 255, atol=1e-6)


def test_sixteen_bit_grayscale_keeps_its_full_range():
    ramp = np.linspace(0, 65535, 64 * 32).reshape(32, 64).astype(np.uint16)
    array = decode_image(save(Image.fromarray(ramp)), max_dim=64)
    assert_rgb_unit_float(array, (32, 64))
    np.testing.assert_allclose(array[..., 0], ramp / 65535, atol=1e-6)
    np.testing.assert_array_equal(array[..., 0], array[..., 2])


def test_lab_tiff_is_rejected_rather_than_decoded_with_wrong_colours():
    with pytest.raises(InvalidImage, match="colour mode LAB"):
        inspect(save(Image.new("LAB", (32, 32)), "TIFF"))


def test_cmyk_jpeg_decodes_to_rgb():
    array = decode_image(save(Image.new("CMYK", (32, 32), (0, 255, 255, 0)), "JPEG"), max_dim=32)
    np.testing.assert_allclose(array.mean(axis=(0, 1)), [1.0, 0.0, 0.0], atol=0.02)


def test_animated_gif_decodes_first_frame():
    frames = [Image.new("RGB", (32, 32), colour) for colour in [(255, 0, 0), (0, 0, 255)]]
    data = save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    array = decode_image(data, max_dim=32)
    np.testing.assert_allclose(array.mean(axis=(0, 1)), [1.0, 0.0, 0.0], atol=0.02)


@pytest.mark.parametrize(
    ("size", "max_dim", "expected_hw"),
    [
        ((100, 50), 200, (100, 200)),  # landscape, upscaled
        ((100, 50), 40, (20, 40)),  # landscape, downscaled
        ((50, 100), 200, (200, 100)),  # portrait, upscaled
        ((50, 100), 40, (40, 20)),  # portrait, downscaled
        ((64, 64), 64, (64, 64)),  # unchanged
    ],
)
def test_resize_makes_longest_side_equal_max_dim(size, max_dim, expected_hw):
    array = decode_image(noise_png(*size), max_dim=max_dim)
    assert_rgb_unit_float(array, expected_hw)


def test_target_size_rounds_short_side_and_keeps_at_least_one():
    assert target_size(3, 2, 4) == (4, 3)
    assert target_size(2, 3, 4) == (3, 4)
    assert target_size(1000, 1, 10) == (10, 1)
    assert target_size(512, 512, 256) == (256, 256)
    with pytest.raises(ValueError):
        target_size(0, 10, 10)


def test_too_extreme_aspect_ratio_for_max_dim_is_rejected():
    with pytest.raises(InvalidImage, match="aspect ratio") as caught:
        decode_image(noise_png(400, 16), max_dim=100, field="style")
    assert caught.value.field == "style"


def test_encode_png_round_trips_within_one_step():
    original = np.random.default_rng(1).random((24, 40, 3), dtype=np.float32)
    data = encode_png(original)
    assert inspect(data) == ImageInfo("PNG", 40, 24, "RGB", "png", "image/png")
    decoded = decode_image(data, max_dim=40)
    assert np.abs(decoded - original).max() <= 1 / 255


def test_encode_png_clips_out_of_range_values():
    array = np.array([[[-0.5, 0.5, 1.5]] * 16] * 16, dtype=np.float32)
    pixel = Image.open(io.BytesIO(encode_png(array))).getpixel((0, 0))
    assert pixel == (0, 128, 255)


def test_encode_png_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"\(h, w, 3\)"):
        encode_png(np.zeros((4, 4), dtype=np.float32))


def file_alpha(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))[..., 3]


def palette_with_transparency(fmt: str) -> bytes:
    """32x16 palette image: left half green (index 1), right half index 0, which is marked transparent."""
    img = Image.new("P", (32, 16), 0)
    img.putpalette([0, 0, 0, 0, 128, 0] + [0] * (254 * 3))
    img.paste(1, (0, 0, 16, 16))
    return save(img, fmt, transparency=0)


def test_sprite_alpha_is_decoded_bit_exactly_at_its_own_size():
    data = SPRITE.read_bytes()
    rgb, alpha = decode_image_with_alpha(data, max_dim=128)
    assert_rgb_unit_float(rgb, (128, 128))
    assert alpha is not None and alpha.dtype == np.uint8
    np.testing.assert_array_equal(alpha, file_alpha(data))


def test_resized_alpha_keeps_fully_transparent_and_opaque_areas_exact():
    source = np.zeros((64, 64), dtype=np.uint8)
    source[16:48, 16:48] = 255
    data = save(Image.fromarray(np.dstack([np.full((64, 64, 3), 90, np.uint8), source])))
    rgb, alpha = decode_image_with_alpha(data, max_dim=32)
    assert_rgb_unit_float(rgb, (32, 32))
    assert alpha.shape == (32, 32)
    # Away from the square's edge the resized alpha is exactly 0 or 255: no ringing halo.
    assert (alpha[:6] == 0).all() and (alpha[12:20, 12:20] == 255).all()


def test_fully_transparent_pixels_take_the_mean_visible_colour_not_white():
    pixels = np.zeros((16, 32, 4), dtype=np.uint8)
    pixels[:, :16] = (200, 40, 40, 255)
    pixels[:, 16:] = (255, 255, 255, 0)  # the file's colour under alpha 0 is arbitrary
    rgb, alpha = decode_image_with_alpha(save(Image.fromarray(pixels)), max_dim=32)
    np.testing.assert_allclose(rgb[8, 28], np.array([200, 40, 40]) / 255, atol=1e-6)
    assert alpha[8, 28] == 0 and alpha[8, 4] == 255


@pytest.mark.parametrize("fmt", ["PNG", "GIF"])
def test_palette_with_transparency_decodes_with_its_alpha(fmt):
    rgb, alpha = decode_image_with_alpha(palette_with_transparency(fmt), max_dim=32)
    assert alpha[8, 4] == 255 and alpha[8, 28] == 0
    np.testing.assert_allclose(rgb[8, 28], [0.0, 128 / 255, 0.0], atol=1e-6)


def test_luminance_alpha_decodes_to_grey_rgb_and_alpha():
    img = Image.new("LA", (20, 20), (100, 255))
    img.paste((50, 0), (0, 0, 10, 20))
    rgb, alpha = decode_image_with_alpha(save(img), max_dim=20)
    assert alpha[0, 0] == 0 and alpha[0, 15] == 255
    np.testing.assert_allclose(rgb[0, 0], 100 / 255, atol=1e-6)


@pytest.mark.parametrize(
    "img",
    [Image.new("RGB", (20, 20), (1, 2, 3)), Image.new("RGBA", (20, 20), (1, 2, 3, 255))],
    ids=["rgb", "all_opaque_rgba"],
)
def test_image_without_transparent_pixels_has_no_alpha_and_decodes_like_decode_image(img):
    data = save(img)
    rgb, alpha = decode_image_with_alpha(data, max_dim=16)
    assert alpha is None
    np.testing.assert_array_equal(rgb, decode_image(data, max_dim=16))
    assert inspect(data).has_alpha is False


def test_inspect_reports_alpha_for_sprite_and_palette_transparency_but_not_for_chelsea():
    assert inspect(SPRITE.read_bytes()).has_alpha is True
    assert inspect(palette_with_transparency("GIF")).has_alpha is True
    assert inspect(palette_with_transparency("PNG")).has_alpha is True
    assert inspect((EXAMPLES / "content" / "chelsea.png").read_bytes()).has_alpha is False


@pytest.mark.parametrize(("output_format", "quality"), [("png", 95), ("webp", 95), ("webp", 40)])
def test_sprite_alpha_round_trips_bit_exactly_through_encode_image(output_format, quality):
    data = SPRITE.read_bytes()
    rgb, alpha = decode_image_with_alpha(data, max_dim=128)
    encoded, extension, content_type = encode_image(
        rgb, alpha=alpha, output_format=output_format, quality=quality
    )
    assert (extension, content_type) == (output_format, f"image/{output_format}")
    np.testing.assert_array_equal(file_alpha(encoded), file_alpha(data))
    assert inspect(encoded).has_alpha is True


def test_jpeg_with_alpha_is_refused_naming_output_format():
    rgb, alpha = decode_image_with_alpha(SPRITE.read_bytes(), max_dim=128)
    with pytest.raises(InvalidInput, match="jpeg cannot store transparency; use png or webp") as caught:
        encode_image(rgb, alpha=alpha, output_format="jpeg")
    assert caught.value.field == "output_format"


def test_jpeg_without_alpha_encodes_at_the_given_quality():
    rgb = decode_image((EXAMPLES / "content" / "chelsea.png").read_bytes(), max_dim=64)
    small, extension, content_type = encode_image(rgb, output_format="jpeg", quality=20)
    large, _, _ = encode_image(rgb, output_format="jpeg", quality=95)
    assert (extension, content_type) == ("jpg", "image/jpeg")
    assert len(small) < len(large)
    assert np.abs(decode_image(large, max_dim=64) - rgb).mean() < 0.02


def test_encode_png_equals_encode_image_png_without_alpha():
    rgb = np.random.default_rng(2).random((16, 24, 3), dtype=np.float32)
    assert encode_image(rgb) == (encode_png(rgb), "png", "image/png")


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"output_format": "gif"}, "output_format"),
        ({"output_format": "JPEG"}, "output_format"),
        ({"quality": 0}, "quality"),
        ({"quality": 101}, "quality"),
        ({"quality": 9.5}, "quality"),
        ({"quality": True}, "quality"),
    ],
)
def test_encode_image_rejects_bad_options_naming_the_field(options, field):
    with pytest.raises(InvalidInput) as caught:
        encode_image(np.zeros((16, 16, 3), dtype=np.float32), **options)
    assert caught.value.field == field


def test_encode_image_rejects_alpha_of_wrong_shape_or_type():
    rgb = np.zeros((16, 16, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="alpha must be uint8"):
        encode_image(rgb, alpha=np.zeros((16, 15), dtype=np.uint8))
    with pytest.raises(ValueError, match="alpha must be uint8"):
        encode_image(rgb, alpha=np.zeros((16, 16), dtype=np.float32))


def test_alpha_is_turned_upright_with_the_colours():
    pixels = np.zeros((20, 40, 4), dtype=np.uint8)
    pixels[:, :20] = (255, 0, 0, 255)  # left half opaque red, right half transparent
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # displayed rotated 90 degrees clockwise: the left half goes on top
    rgb, alpha = decode_image_with_alpha(save(Image.fromarray(pixels), exif=exif), max_dim=40)
    assert alpha.shape == (40, 20) and rgb.shape == (40, 20, 3)
    assert (alpha[:20] == 255).all() and (alpha[20:] == 0).all()
