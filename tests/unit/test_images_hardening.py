"""Every kind of input a studio sends decodes to float32 RGB (h, w, 3) in [0, 1]; built with real encoders."""

import io

import numpy as np
import pytest
from PIL import Image

from shared.images import decode_image, decode_image_with_alpha, inspect_image

pytestmark = pytest.mark.unit

LIMITS = {"max_pixels": 50_000_000, "min_side": 16}
EXIF_ORIENTATION = 0x0112
WIDTH, HEIGHT = 48, 32
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def save(img: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def noise(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)


def decoders(data: bytes) -> list[np.ndarray]:
    """The RGB that decode_image and decode_image_with_alpha give at the image's own size."""
    info = inspect_image(data, field="content", **LIMITS)
    longest = max(info.width, info.height)
    plain = decode_image(data, max_dim=longest, **LIMITS)
    with_alpha, _ = decode_image_with_alpha(data, max_dim=longest, **LIMITS)
    for array in (plain, with_alpha):
        assert array.dtype == np.float32 and array.shape == (info.height, info.width, 3)
        assert 0.0 <= array.min() and array.max() <= 1.0
    return [plain, with_alpha]


def assert_colour(data: bytes, rgb: tuple[float, float, float], atol: float = 0.02) -> None:
    for array in decoders(data):
        np.testing.assert_allclose(array.mean(axis=(0, 1)), rgb, atol=atol)
        np.testing.assert_allclose(array.std(axis=(0, 1)), 0.0, atol=atol)


def test_cmyk_jpeg_decodes_to_its_rgb_colour():
    data = save(Image.new("CMYK", (WIDTH, HEIGHT), (0, 255, 255, 0)), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    assert_colour(data, (1.0, 0.0, 0.0))


def test_cmyk_tiff_decodes_to_its_rgb_colour():
    data = save(Image.new("CMYK", (WIDTH, HEIGHT), (255, 0, 255, 0)), "TIFF")
    assert_colour(data, (0.0, 1.0, 0.0), atol=1e-6)


@pytest.mark.parametrize(("dtype", "fmt"), [("<u2", "PNG"), (">u2", "PNG"), ("<u2", "TIFF"), (">u2", "TIFF")])
def test_sixteen_bit_grey_maps_0_to_65535_onto_0_to_1(dtype, fmt):
    ramp = np.linspace(0, 65535, HEIGHT * WIDTH).reshape(HEIGHT, WIDTH).astype(dtype)
    data = save(Image.fromarray(ramp), fmt)
    assert Image.open(io.BytesIO(data)).mode.startswith("I;16")
    for array in decoders(data):
        np.testing.assert_allclose(array[..., 0], ramp / 65535, atol=1e-6)
        np.testing.assert_array_equal(array[..., 0], array[..., 1])


def test_palette_png_decodes_to_its_palette_colours():
    pixels = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    pixels[:, WIDTH // 2 :] = BLUE
    pixels[:, : WIDTH // 2] = (250, 200, 10)
    data = save(Image.fromarray(pixels).quantize(colors=4), "PNG")
    assert Image.open(io.BytesIO(data)).mode == "P"
    for array in decoders(data):
        np.testing.assert_allclose(array, pixels / 255, atol=1e-6)


def test_grey_png_decodes_to_three_equal_channels():
    assert_colour(save(Image.new("L", (WIDTH, HEIGHT), 77), "PNG"), (77 / 255,) * 3, atol=1e-5)


def test_opaque_grey_alpha_png_decodes_as_grey():
    assert_colour(save(Image.new("LA", (WIDTH, HEIGHT), (77, 255)), "PNG"), (77 / 255,) * 3, atol=1e-5)


def test_grey_alpha_png_keeps_its_alpha_and_flattens_over_white():
    img = Image.new("LA", (WIDTH, HEIGHT), (0, 0))
    img.paste((77, 255), (0, 0, WIDTH // 2, HEIGHT))
    data = save(img, "PNG")
    flat = decode_image(data, max_dim=WIDTH, **LIMITS)
    rgb, alpha = decode_image_with_alpha(data, max_dim=WIDTH, **LIMITS)
    np.testing.assert_allclose(flat[:, : WIDTH // 2], 77 / 255, atol=1e-6)
    np.testing.assert_allclose(flat[:, WIDTH // 2 :], 1.0)
    np.testing.assert_allclose(rgb, 77 / 255, atol=1e-6)  # transparent pixels take the visible mean
    assert (
        alpha.shape == (HEIGHT, WIDTH)
        and alpha[:, : WIDTH // 2].min() == 255
        and alpha[:, WIDTH // 2 :].max() == 0
    )


# EXIF orientation -> what turns the stored pixels upright (numpy on (h, w, 3), independent of Pillow).
UPRIGHT = {
    1: lambda a: a,
    2: np.fliplr,
    3: lambda a: np.rot90(a, 2),
    4: np.flipud,
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a, 2).transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}


def with_orientation(pixels: np.ndarray, orientation: int, fmt: str, **params: object) -> bytes:
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    return save(Image.fromarray(pixels), fmt, exif=exif, **params)


@pytest.mark.parametrize("orientation", sorted(UPRIGHT))
@pytest.mark.parametrize(("fmt", "params"), [("PNG", {}), ("WEBP", {"lossless": True})])
def test_exif_orientation_is_applied_exactly_in_lossless_formats(fmt, params, orientation):
    pixels = noise(orientation)
    data = with_orientation(pixels, orientation, fmt, **params)
    expected = UPRIGHT[orientation](pixels) / 255
    info = inspect_image(data, field="content", **LIMITS)
    assert (info.height, info.width) == expected.shape[:2]
    for array in decoders(data):
        np.testing.assert_allclose(array, expected, atol=1e-6)


@pytest.mark.parametrize("progressive", [False, True])
@pytest.mark.parametrize(("orientation", "top_left"), [(6, GREEN), (8, BLUE), (3, GREEN)])
def test_exif_rotated_jpeg_comes_out_upright(orientation, top_left, progressive):
    # Stored: left half red, right half blue, with a green band along the bottom.
    pixels = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    pixels[:, : WIDTH // 2], pixels[:, WIDTH // 2 :], pixels[-8:] = RED, BLUE, GREEN
    data = with_orientation(pixels, orientation, "JPEG", quality=95, progressive=progressive)
    expected = UPRIGHT[orientation](pixels) / 255
    for array in decoders(data):
        assert array.shape == expected.shape
        assert np.abs(array - expected).mean() < 0.03
        np.testing.assert_allclose(array[:4, :4].mean(axis=(0, 1)), np.array(top_left) / 255, atol=0.1)


def test_progressive_jpeg_decodes_like_its_source():
    ramp = np.linspace(0, 255, WIDTH, dtype=np.uint8)
    pixels = np.stack([np.tile(ramp, (HEIGHT, 1))] * 3, axis=2)
    data = save(Image.fromarray(pixels), "JPEG", quality=95, progressive=True)
    assert Image.open(io.BytesIO(data)).info.get("progressive")
    for array in decoders(data):
        assert np.abs(array - pixels / 255).max() < 0.05


def animation(fmt: str, **params: object) -> bytes:
    frames = [Image.new("RGB", (WIDTH, HEIGHT), colour) for colour in (RED, GREEN, BLUE)]
    data = save(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0, **params)
    assert Image.open(io.BytesIO(data)).n_frames == 3
    return data


@pytest.mark.parametrize(
    ("fmt", "params"), [("GIF", {}), ("WEBP", {"lossless": True}), ("PNG", {})], ids=["gif", "webp", "apng"]
)
def test_animated_images_decode_their_first_frame(fmt, params):
    data = animation(fmt, **params)
    assert inspect_image(data, field="content", **LIMITS).format == fmt
    assert_colour(data, (1.0, 0.0, 0.0))


def test_animated_gif_with_partial_later_frames_decodes_its_full_first_frame():
    background = Image.new("RGB", (WIDTH, HEIGHT), BLUE)
    second = background.copy()
    second.paste(RED, (0, 0, 8, 8))  # later frames store only the changed rectangle
    data = save(background, "GIF", save_all=True, append_images=[second], duration=100)
    assert_colour(data, (0.0, 0.0, 1.0))
