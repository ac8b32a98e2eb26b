"""Colour preservation (Gatys et al. 2016) in worker.engine.color, measured on the real example images."""

from pathlib import Path

import numpy as np
import pytest

from shared.images import decode_image
from worker.engine.color import (
    color_moments,
    luminance_inputs,
    match_color_histogram,
    recolor_to_palette,
    recombine_luminance,
    rgb_to_yiq,
    transfer_color_moments,
    yiq_to_rgb,
)

pytestmark = pytest.mark.unit

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CHROMA_TOLERANCE = 2 / 255  # done-criterion 4 of issue 3
MOMENT_TOLERANCE = 1e-3  # done-criterion 5 of issue 3


def example(relative: str, max_dim: int = 64) -> np.ndarray:
    return decode_image((EXAMPLES / relative).read_bytes(), max_dim=max_dim)


@pytest.fixture(scope="module")
def chelsea() -> np.ndarray:
    return example("content/chelsea.png")


@pytest.fixture(scope="module")
def hubble() -> np.ndarray:
    return example("style/hubble_deep_field.jpg")


def test_yiq_round_trip_is_exact_to_float_precision(chelsea):
    np.testing.assert_allclose(yiq_to_rgb(rgb_to_yiq(chelsea)), chelsea, atol=1e-12)


def test_yiq_luminance_of_white_is_one_and_grey_has_no_chroma():
    yiq = rgb_to_yiq(np.full((2, 2, 3), [1.0, 1.0, 1.0]) * np.array([1.0, 0.5])[:, None, None])
    np.testing.assert_allclose(yiq[..., 0], [[1.0, 1.0], [0.5, 0.5]], atol=1e-6)
    np.testing.assert_allclose(yiq[..., 1:], 0.0, atol=1e-6)


def test_luminance_inputs_are_grey_images_in_unit_range(chelsea, hubble):
    content_y3, style_y3, content_iq = luminance_inputs(chelsea, hubble)
    for grey, source in [(content_y3, chelsea), (style_y3, hubble)]:
        assert grey.dtype == np.float32 and grey.shape == source.shape
        assert grey.min() >= 0.0 and grey.max() <= 1.0
        np.testing.assert_array_equal(grey[..., 0], grey[..., 2])
    assert content_iq.shape == (*chelsea.shape[:2], 2)


def test_style_luminance_is_matched_to_content_mean_and_std_before_clipping():
    content = np.linspace(0.2, 0.6, 32 * 32 * 3).reshape(32, 32, 3)
    # A narrow range, so nothing is clipped after matching.
    style = np.linspace(0.45, 0.55, 16 * 16 * 3).reshape(16, 16, 3)
    content_y3, style_y3, _ = luminance_inputs(content, style)
    assert style_y3[..., 0].mean() == pytest.approx(content_y3[..., 0].mean(), abs=1e-5)
    assert style_y3[..., 0].std() == pytest.approx(content_y3[..., 0].std(), abs=1e-5)


def test_luminance_statistics_ignore_masked_out_content_pixels():
    content = np.full((20, 20, 3), 0.3)
    content[:, 10:] = 1.0  # the "transparent" half, which the mask excludes
    mask = np.zeros((20, 20), dtype=np.uint8)
    mask[:, :10] = 255
    style = np.random.default_rng(0).random((16, 16, 3))
    _, style_y3, _ = luminance_inputs(content, style, mask)
    # The opaque half is flat grey 0.3: the style's luminance collapses onto it.
    np.testing.assert_allclose(style_y3, 0.3, atol=1e-6)


@pytest.mark.parametrize("perturbation", ["none", "noise", "style_structure"])
def test_recombined_output_keeps_content_chroma_within_two_levels(chelsea, hubble, perturbation):
    content_y3, style_y3, content_iq = luminance_inputs(chelsea, hubble)
    # Stand-ins for the optimiser's output: its luminance changes, which is all luminance mode may change.
    rng = np.random.default_rng(0)
    outputs = {
        "none": content_y3,
        "noise": content_y3 + rng.normal(0.0, 0.1, content_y3.shape[:2])[..., None],
        "style_structure": 0.5 * content_y3 + 0.5 * np.resize(style_y3, content_y3.shape),
    }
    output_rgb = recombine_luminance(np.clip(outputs[perturbation], 0.0, 1.0), content_iq)
    assert output_rgb.dtype == np.float32 and output_rgb.min() >= 0.0 and output_rgb.max() <= 1.0
    chroma_error = np.abs(rgb_to_yiq(output_rgb)[..., 1:] - content_iq).mean()
    print(f"{perturbation}: mean |IQ difference| = {chroma_error * 255:.4f}/255")
    assert chroma_error <= CHROMA_TOLERANCE


def test_recombine_uses_the_mean_of_the_output_channels_as_luminance():
    content_iq = np.zeros((4, 4, 2))
    output = np.stack([np.full((4, 4), v) for v in (0.2, 0.4, 0.6)], axis=2)
    np.testing.assert_allclose(recombine_luminance(output, content_iq), 0.4, atol=1e-6)


def test_recombine_rejects_chroma_of_another_size():
    with pytest.raises(ValueError, match="content_iq"):
        recombine_luminance(np.zeros((4, 4, 3)), np.zeros((4, 5, 2)))


def test_color_transform_matches_content_mean_and_covariance_on_real_images(chelsea, hubble):
    matched = transfer_color_moments(hubble, chelsea)
    content_mean, content_cov = color_moments(chelsea)
    mean, cov = color_moments(matched)
    assert matched.shape == hubble.shape
    np.testing.assert_allclose(mean, content_mean, atol=MOMENT_TOLERANCE)
    np.testing.assert_allclose(cov, content_cov, atol=MOMENT_TOLERANCE)


def test_clipped_histogram_match_is_in_unit_range_and_its_stat_shift_is_reported(chelsea, hubble):
    clipped = match_color_histogram(hubble, chelsea)
    assert clipped.dtype == np.float32 and clipped.min() >= 0.0 and clipped.max() <= 1.0
    content_mean, content_cov = color_moments(chelsea)
    mean, cov = color_moments(clipped)
    unclipped = transfer_color_moments(hubble, chelsea)
    clipped_share = np.mean((unclipped < 0) | (unclipped > 1))
    print(
        f"clipping {clipped_share:.2%} of values shifts the mean by {np.abs(mean - content_mean).max():.4f}"
        f" and the covariance by {np.abs(cov - content_cov).max():.4f}"
    )
    # Clipping moves the moments a little; bound it so a broken transform still fails here.
    assert np.abs(mean - content_mean).max() < 0.02 and np.abs(cov - content_cov).max() < 0.02


def test_color_transform_uses_only_masked_content_pixels():
    content = np.random.default_rng(1).random((24, 24, 3))
    mask = np.zeros((24, 24), dtype=np.uint8)
    mask[:12] = 200
    content[12:] = [1.0, 0.0, 0.0]  # masked out: must not pull the target towards red
    matched = transfer_color_moments(np.random.default_rng(2).random((16, 16, 3)), content, mask)
    expected_mean, expected_cov = color_moments(content[:12])
    mean, cov = color_moments(matched)
    np.testing.assert_allclose(mean, expected_mean, atol=1e-9)
    np.testing.assert_allclose(cov, expected_cov, atol=1e-9)


def test_greyscale_style_gives_a_finite_transform_with_the_content_mean(chelsea):
    brick = example("textures/brick.png")  # mode L: three equal channels, rank-1 covariance
    matched = transfer_color_moments(brick, chelsea)
    assert np.isfinite(matched).all()
    np.testing.assert_allclose(color_moments(matched)[0], color_moments(chelsea)[0], atol=1e-9)


def test_recolor_to_palette_gives_the_content_the_styles_colours_within_what_clipping_moves(chelsea, hubble):
    recolored = recolor_to_palette(chelsea, [hubble], (1.0,))
    assert recolored.shape == chelsea.shape and recolored.dtype == np.float32
    assert recolored.min() >= 0.0 and recolored.max() <= 1.0
    style_mean, style_cov = color_moments(hubble)
    mean, cov = color_moments(recolored)
    # hubble is mostly near-black: the matched content clips at 0, which lifts the mean a little
    assert np.abs(mean - style_mean).max() < 0.02 and np.abs(cov - style_cov).max() < 0.01
    assert np.abs(mean - color_moments(chelsea)[0]).max() > 0.2  # the cat's browns are gone


def test_recolor_to_palette_blends_two_styles_as_one_mixture_of_their_pixels():
    rng = np.random.default_rng(3)
    content = rng.random((20, 20, 3))
    # narrow palettes, so the recoloured pixels stay inside [0, 1] and clipping moves no moment
    dark, bright = 0.3 + rng.random((10, 20, 3)) * 0.1, 0.5 + rng.random((30, 20, 3)) * 0.1
    recolored = recolor_to_palette(content, [dark, bright], (1.0, 3.0))
    # weights are shares per image, whatever its size: 1:3 is dark (200 px) pooled with bright (600 px)
    pooled = np.concatenate([dark.reshape(-1, 3), bright.reshape(-1, 3)])
    pooled_mean, pooled_cov = color_moments(pooled)
    mean, cov = color_moments(recolored)
    np.testing.assert_allclose(mean, pooled_mean, atol=1e-6)
    np.testing.assert_allclose(cov, pooled_cov, atol=1e-6)


def test_recolor_to_palette_takes_the_contents_statistics_over_the_mask_only():
    rng = np.random.default_rng(4)
    content = rng.random((24, 24, 3))
    content[12:] = [1.0, 0.0, 0.0]  # transparent: must not count as the content's colours
    mask = np.zeros((24, 24), dtype=np.uint8)
    mask[:12] = 255
    palette = 0.25 + rng.random((16, 16, 3)) * 0.5
    recolored = recolor_to_palette(content, [palette], (1.0,), mask)
    mean, cov = color_moments(recolored[:12])
    np.testing.assert_allclose(mean, color_moments(palette)[0], atol=1e-6)
    np.testing.assert_allclose(cov, color_moments(palette)[1], atol=1e-6)
