"""The held-out quality statistics of bench/quality_metrics.py, on example images and random VGG weights."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.quality_metrics import content_ssim, content_ssim_tone_matched, objective_distances, style_swd

pytestmark = pytest.mark.unit

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SIZE = 64


def load(relative: str, size: int = SIZE) -> np.ndarray:
    image = Image.open(EXAMPLES / relative).convert("RGB").resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(image, np.float32) / 255.0


@pytest.fixture(scope="module")
def content() -> np.ndarray:
    return load("content/chelsea.png")


@pytest.fixture(scope="module")
def style() -> np.ndarray:
    return load("style/hubble_deep_field.jpg")


def test_identical_images_have_ssim_one(content) -> None:
    assert content_ssim(content, content) == pytest.approx(1.0, abs=1e-9)


def test_destroyed_content_has_lower_ssim(content) -> None:
    rng = np.random.default_rng(0)
    flat = np.full_like(content, content.mean())
    noisy = np.clip(0.3 * content + 0.7 * rng.random(content.shape), 0, 1)
    assert content_ssim(flat, content) < 0.5
    assert content_ssim(noisy, content) < 0.9
    # a mild change keeps more than a heavy one
    mild = np.clip(content + 0.05 * rng.standard_normal(content.shape), 0, 1)
    assert content_ssim(mild, content) > content_ssim(noisy, content)


def test_ssim_rejects_mismatched_sizes(content) -> None:
    with pytest.raises(ValueError):
        content_ssim(content[:32], content)


def test_identical_images_have_zero_swd(extractor, style) -> None:
    assert style_swd(extractor, style, style) == pytest.approx(0.0, abs=1e-9)


def test_style_beats_content_in_swd(extractor, content, style) -> None:
    self_swd = style_swd(extractor, style, style)
    other = style_swd(extractor, content, style)
    assert other > 0.05
    assert self_swd < other
    # a differently sized copy of the style (quantile resampling) is still much closer than the content
    assert style_swd(extractor, load("style/hubble_deep_field.jpg", 48), style) < other


def test_swd_is_deterministic_per_seed(extractor, content, style) -> None:
    first = style_swd(extractor, content, style, seed=3)
    assert style_swd(extractor, content, style, seed=3) == first
    assert style_swd(extractor, content, style, seed=4) != first


@pytest.mark.parametrize("layer", ["block5_conv2", "block4_conv2"])
def test_objective_distances(extractor, content, style, layer) -> None:
    same = objective_distances(extractor, content, content, content, content_layer=layer)
    assert same["style"] == pytest.approx(0.0, abs=1e-6)
    assert same["content"] == pytest.approx(0.0, abs=1e-6)
    cross = objective_distances(extractor, style, content, content, content_layer=layer)
    assert cross["style"] > 0.01
    assert cross["content"] > 0.01


def test_tone_matched_ssim_forgives_a_global_darkening_but_not_a_lost_subject(content, style) -> None:
    darkened = content * 0.3  # one gain over the whole image: the layout of light and dark is the same
    assert content_ssim(darkened, content) < 0.8
    assert content_ssim_tone_matched(darkened, content) > 0.99
    unrelated = style[: content.shape[0], : content.shape[1]]
    assert unrelated.shape == content.shape
    assert content_ssim_tone_matched(unrelated, content) < 0.3
