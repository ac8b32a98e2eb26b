"""The loss terms against an independent numpy computation of the formulas."""

import numpy as np
import pytest
import tensorflow as tf

from worker.engine.losses import (
    LossConfig,
    content_loss,
    gram_matrix,
    style_loss,
    total_loss,
    total_variation_loss,
)

pytestmark = pytest.mark.unit


def np_gram(x: np.ndarray) -> np.ndarray:
    b, h, w, c = x.shape
    flat = x.reshape(b, h * w, c).astype(np.float64)
    return np.stack([f.T @ f for f in flat]) / (h * w)


def np_tv(image: np.ndarray) -> float:
    image = image.astype(np.float64)
    return float(np.abs(np.diff(image, axis=1)).sum() + np.abs(np.diff(image, axis=2)).sum())


@pytest.fixture
def features() -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(1)
    shapes = [(2, 8, 6, 4), (2, 4, 3, 5), (2, 2, 2, 3)]
    outputs = [rng.normal(size=shape).astype(np.float32) for shape in shapes]
    others = [rng.normal(size=shape).astype(np.float32) for shape in shapes]
    return outputs, others


def test_gram_matrix_is_channel_correlation_over_positions(features) -> None:
    outputs, _ = features
    for x in outputs:
        np.testing.assert_allclose(gram_matrix(tf.constant(x)).numpy(), np_gram(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("reduce", ["sum", "mean"])
def test_style_loss_reduces_per_layer_mean_square_gram_difference(features, reduce) -> None:
    outputs, others = features
    targets = [np_gram(x).astype(np.float32) for x in others]
    per_layer = [np.mean((np_gram(out) - target) ** 2) for out, target in zip(outputs, targets, strict=True)]
    expected = np.sum(per_layer) if reduce == "sum" else np.mean(per_layer)
    got = style_loss([tf.constant(x) for x in outputs], [tf.constant(t) for t in targets], reduce=reduce)
    np.testing.assert_allclose(float(got), expected, rtol=1e-5)


@pytest.mark.parametrize("form", ["half_sum", "mean"])
def test_content_loss_matches_its_form(features, form) -> None:
    outputs, targets = features
    squares = [(out.astype(np.float64) - target) ** 2 for out, target in zip(outputs, targets, strict=True)]
    expected = (
        0.5 * sum(s.sum() for s in squares) if form == "half_sum" else np.mean([s.mean() for s in squares])
    )
    got = content_loss([tf.constant(x) for x in outputs], [tf.constant(t) for t in targets], form=form)
    np.testing.assert_allclose(float(got), expected, rtol=1e-5)


def test_total_variation_sums_absolute_neighbour_differences_over_the_batch() -> None:
    image = np.random.default_rng(2).random((2, 7, 5, 3)).astype(np.float32)
    np.testing.assert_allclose(float(total_variation_loss(tf.constant(image))), np_tv(image), rtol=1e-5)


@pytest.mark.parametrize("formula", ["seed", "tutorial"])
def test_total_loss_weights_each_term(features, formula) -> None:
    outputs, others = features
    image = np.random.default_rng(3).random((2, 8, 6, 3)).astype(np.float32)
    config = LossConfig.for_formula(formula, style_weight=0.3, content_weight=7.0, tv_weight=0.05)
    targets = [np_gram(x).astype(np.float32) for x in others]
    losses = total_loss(
        image=tf.constant(image),
        style_outputs=[tf.constant(x) for x in outputs],
        content_outputs=[tf.constant(outputs[-1])],
        style_targets=[tf.constant(t) for t in targets],
        content_targets=[tf.constant(others[-1])],
        config=config,
    )
    style = [np.mean((np_gram(o) - t) ** 2) for o, t in zip(outputs, targets, strict=True)]
    style = np.sum(style) if formula == "seed" else np.mean(style)
    square = (outputs[-1].astype(np.float64) - others[-1]) ** 2
    content = 0.5 * square.sum() if formula == "seed" else square.mean()
    expected = {"style": style, "content": content, "tv": np_tv(image)}
    expected["total"] = 0.3 * style + 7.0 * content + 0.05 * expected["tv"]
    for name, value in expected.items():
        np.testing.assert_allclose(float(losses[name]), value, rtol=1e-5, err_msg=name)


def test_formulas_map_to_their_reductions() -> None:
    seed = LossConfig.for_formula("seed", style_weight=1e-2, content_weight=1e4, tv_weight=0.0)
    tutorial = LossConfig.for_formula("tutorial", style_weight=1e-2, content_weight=1e4, tv_weight=30.0)
    assert (seed.style_reduce, seed.content_form) == ("sum", "half_sum")
    assert (tutorial.style_reduce, tutorial.content_form) == ("mean", "mean")


@pytest.mark.parametrize(
    "build",
    [
        lambda: LossConfig.for_formula("fancy", style_weight=1, content_weight=1, tv_weight=0),
        lambda: LossConfig(1.0, 1.0, 0.0, "max", "mean"),
        lambda: LossConfig(1.0, 1.0, 0.0, "sum", "sum"),
    ],
)
def test_unknown_formula_or_reduction_is_rejected(build) -> None:
    with pytest.raises(ValueError, match="must be one of"):
        build()
