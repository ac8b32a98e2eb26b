"""Upload validation and decoding in shared.images."""

import io
import time

import numpy as np
import pytest
from PIL import Image, ImageFile

from shared.errors import InvalidImage
from shared.images import ImageInfo, decode_image, encode_png, inspect_image, target_size
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
