"""The loss terms against an independent numpy computation of the formulas."""

import numpy as np
import pytest
import tensorflow as tf

from shared.errors import InvalidInput
from worker.engine.losses import (
    LossConfig,
    blend_grams,
    content_loss,
    downsample_mask,
    gram_matrix,
    layer_masks,
    style_loss,
    total_loss,
    total_variation_loss,
)

pytestmark = pytest.mark.unit


def np_gram(x: np.ndarray) -> np.ndarray:
    b, h, w, c = x.shape
    flat = x.reshape(b, h * w, c).astype(np.float64)
    return np.stack([f.T @ f for f in flat]) / (h * w)


def per_image(expected_for, *groups: list[np.ndarray]) -> np.ndarray:
    """A numpy reference applied to each image of the batch alone: the losses are per image, shape (b,)."""
    batch = groups[0][0].shape[0]
    return np.array(
        [expected_for(*[[x[i : i + 1] for x in group] for group in groups]) for i in range(batch)]
    )


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

    def expected(outputs, others):
        per_layer = [
            np.mean((np_gram(out) - np_gram(x)) ** 2) for out, x in zip(outputs, others, strict=True)
        ]
        return np.sum(per_layer) if reduce == "sum" else np.mean(per_layer)

    targets = [np_gram(x).astype(np.float32) for x in others]
    got = style_loss([tf.constant(x) for x in outputs], [tf.constant(t) for t in targets], reduce=reduce)
    np.testing.assert_allclose(got.numpy(), per_image(expected, outputs, others), rtol=1e-5)


@pytest.mark.parametrize("form", ["half_sum", "mean"])
def test_content_loss_matches_its_form(features, form) -> None:
    outputs, targets = features

    def expected(outputs, targets):
        squares = [(out.astype(np.float64) - t) ** 2 for out, t in zip(outputs, targets, strict=True)]
        return (
            0.5 * sum(s.sum() for s in squares)
            if form == "half_sum"
            else np.mean([s.mean() for s in squares])
        )

    got = content_loss([tf.constant(x) for x in outputs], [tf.constant(t) for t in targets], form=form)
    np.testing.assert_allclose(got.numpy(), per_image(expected, outputs, targets), rtol=1e-5)


def test_total_variation_sums_absolute_neighbour_differences_per_image() -> None:
    image = np.random.default_rng(2).random((2, 7, 5, 3)).astype(np.float32)
    expected = [np_tv(image[:1]), np_tv(image[1:])]
    np.testing.assert_allclose(total_variation_loss(tf.constant(image)).numpy(), expected, rtol=1e-5)


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
    for i in range(2):
        style = [np.mean((np_gram(o[i : i + 1]) - t[i]) ** 2) for o, t in zip(outputs, targets, strict=True)]
        style = np.sum(style) if formula == "seed" else np.mean(style)
        square = (outputs[-1][i].astype(np.float64) - others[-1][i]) ** 2
        content = 0.5 * square.sum() if formula == "seed" else square.mean()
        expected = {"style": style, "content": content, "tv": np_tv(image[i : i + 1])}
        expected["total"] = 0.3 * style + 7.0 * content + 0.05 * expected["tv"]
        for name, value in expected.items():
            np.testing.assert_allclose(losses[name].numpy()[i], value, rtol=1e-5, err_msg=name)


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


def np_masked_gram(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    b, h, w, c = x.shape
    flat = x.reshape(b, h * w, c).astype(np.float64)
    weights = mask.reshape(b, h * w, 1).astype(np.float64)
    return np.stack([(f * m).T @ f / m.sum() for f, m in zip(flat, weights, strict=True)])


def np_wrapped_tv(image: np.ndarray) -> float:
    image = image.astype(np.float64)
    return float(sum(np.abs(image - np.roll(image, 1, axis=axis)).sum() for axis in (1, 2)))


def np_mask_for(features: list[np.ndarray], seed: int = 4) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.random(x.shape[:3] + (1,)).astype(np.float32) for x in features]


def as_tensors(arrays: list[np.ndarray]) -> list[tf.Tensor]:
    return [tf.constant(a) for a in arrays]


def test_masked_gram_weights_positions_and_divides_by_the_mask_total(features) -> None:
    outputs, _ = features
    for x, mask in zip(outputs, np_mask_for(outputs), strict=True):
        got = gram_matrix(tf.constant(x), tf.constant(mask)).numpy()
        np.testing.assert_allclose(got, np_masked_gram(x, mask), rtol=1e-5, atol=1e-6)


def test_masked_gram_ignores_fully_transparent_positions(features) -> None:
    x = features[0][0]
    mask = np.zeros(x.shape[:3] + (1,), np.float32)
    mask[:, :4] = 1.0
    garbage = x.copy()
    garbage[:, 4:] = 1e3
    np.testing.assert_allclose(
        gram_matrix(tf.constant(garbage), tf.constant(mask)).numpy(), np_gram(x[:, :4]), rtol=1e-5, atol=1e-6
    )


def test_an_all_zero_mask_gives_a_zero_gram_not_nan(features) -> None:
    x = features[0][0]
    gram = gram_matrix(tf.constant(x), tf.zeros(x.shape[:3] + (1,))).numpy()
    np.testing.assert_array_equal(gram, np.zeros_like(gram))


def test_an_all_ones_mask_gives_the_plain_gram(features) -> None:
    x = features[0][0]
    np.testing.assert_allclose(
        gram_matrix(tf.constant(x), tf.ones(x.shape[:3] + (1,))).numpy(), np_gram(x), rtol=1e-5, atol=1e-6
    )


def test_downsampled_mask_averages_each_block_to_the_feature_size() -> None:
    mask = np.random.default_rng(5).random((2, 8, 12, 1)).astype(np.float32)
    feature = tf.zeros((2, 4, 3, 7))
    expected = mask.reshape(2, 4, 2, 3, 4, 1).mean(axis=(2, 4))
    np.testing.assert_allclose(downsample_mask(tf.constant(mask), feature).numpy(), expected, rtol=1e-5)
    resized = layer_masks(tf.constant(mask), [feature, tf.zeros((2, 8, 12, 1))])
    assert [tuple(m.shape) for m in resized] == [(2, 4, 3, 1), (2, 8, 12, 1)]
    assert layer_masks(None, [feature]) is None


@pytest.mark.parametrize("reduce", ["sum", "mean"])
def test_normalized_style_loss_divides_each_layer_by_its_target_gram_norm(features, reduce) -> None:
    outputs, others = features
    masks = np_mask_for(outputs)
    targets = [np_gram(x) for x in others]

    def expected(outputs, masks, targets):
        per_layer = [
            ((np_masked_gram(out, m) - t) ** 2).sum() / (t**2).sum()
            for out, m, t in zip(outputs, masks, targets, strict=True)
        ]
        return np.sum(per_layer) if reduce == "sum" else np.mean(per_layer)

    got = style_loss(
        as_tensors(outputs),
        as_tensors([t.astype(np.float32) for t in targets]),
        reduce=reduce,
        masks=as_tensors(masks),
        normalize=True,
    )
    np.testing.assert_allclose(got.numpy(), per_image(expected, outputs, masks, targets), rtol=1e-5)


@pytest.mark.parametrize("form", ["half_sum", "mean"])
def test_masked_content_loss_weights_each_squared_error(features, form) -> None:
    outputs, targets = features
    masks = np_mask_for(outputs)

    def expected(outputs, targets, masks):
        terms = [
            (m * (out.astype(np.float64) - t) ** 2).sum()
            for out, t, m in zip(outputs, targets, masks, strict=True)
        ]
        if form == "half_sum":
            return 0.5 * sum(terms)
        weights = [m.sum() * out.shape[-1] for out, m in zip(outputs, masks, strict=True)]
        return np.mean([term / weight for term, weight in zip(terms, weights, strict=True)])

    got = content_loss(as_tensors(outputs), as_tensors(targets), form=form, masks=as_tensors(masks))
    np.testing.assert_allclose(got.numpy(), per_image(expected, outputs, targets, masks), rtol=1e-5)


def test_normalized_content_loss_is_the_masked_relative_squared_error(features) -> None:
    outputs, targets = features
    masks = np_mask_for(outputs)

    def expected(outputs, targets, masks):
        return np.mean(
            [
                (m * (out.astype(np.float64) - t) ** 2).sum() / (m * t.astype(np.float64) ** 2).sum()
                for out, t, m in zip(outputs, targets, masks, strict=True)
            ]
        )

    got = content_loss(
        as_tensors(outputs), as_tensors(targets), form="mean", masks=as_tensors(masks), normalize=True
    )
    np.testing.assert_allclose(got.numpy(), per_image(expected, outputs, targets, masks), rtol=1e-5)


def test_normalized_losses_do_not_change_when_the_activations_are_scaled(features) -> None:
    outputs, others = features
    masks = as_tensors(np_mask_for(outputs))

    def losses(scale: float) -> tuple[float, float]:
        scaled, scaled_others = (
            as_tensors([x * scale for x in outputs]),
            as_tensors([x * scale for x in others]),
        )
        targets = [gram_matrix(x) for x in scaled_others]
        style = style_loss(scaled, targets, reduce="mean", masks=masks, normalize=True)
        content = content_loss(scaled, scaled_others, form="mean", masks=masks, normalize=True)
        return style.numpy(), content.numpy()

    np.testing.assert_allclose(losses(1000.0), losses(1.0), rtol=1e-4)
    raw = style_loss(as_tensors(outputs), [gram_matrix(tf.constant(x)) for x in others], reduce="mean")
    raw_scaled = style_loss(
        as_tensors([x * 1000 for x in outputs]),
        [gram_matrix(tf.constant(x * 1000)) for x in others],
        reduce="mean",
    )
    assert np.all(
        raw_scaled.numpy() > 1e6 * raw.numpy()
    )  # without normalisation the scale leaks straight through


def test_normalized_losses_stay_finite_for_an_all_zero_target(features) -> None:
    outputs, _ = features
    zeros = [np.zeros_like(x) for x in outputs]
    style = style_loss(
        as_tensors(outputs), [gram_matrix(tf.constant(z)) for z in zeros], reduce="mean", normalize=True
    )
    content = content_loss(as_tensors(outputs), as_tensors(zeros), form="mean", normalize=True)
    assert np.all(np.isfinite(style.numpy())) and np.all(np.isfinite(content.numpy()))


def test_wrapped_total_variation_adds_the_seams() -> None:
    image = np.random.default_rng(6).random((2, 7, 5, 3)).astype(np.float32)
    got = total_variation_loss(tf.constant(image), wrap=True).numpy()
    np.testing.assert_allclose(got, [np_wrapped_tv(image[i : i + 1]) for i in range(2)], rtol=1e-5)
    seams = [np.abs(x[-1] - x[0]).sum() + np.abs(x[:, -1] - x[:, 0]).sum() for x in image]
    plain = [np_tv(image[i : i + 1]) for i in range(2)]
    np.testing.assert_allclose(got, np.add(plain, seams), rtol=1e-5)


@pytest.mark.parametrize("wrap", [False, True])
def test_normalized_total_variation_is_per_pixel(wrap) -> None:
    image = np.random.default_rng(7).random((1, 8, 6, 3)).astype(np.float32)
    raw = np_wrapped_tv(image) if wrap else np_tv(image)
    got = total_variation_loss(tf.constant(image), wrap=wrap, normalize=True)
    np.testing.assert_allclose(got.numpy(), [raw / 48], rtol=1e-5)


def test_normalized_total_variation_of_a_tiled_texture_does_not_grow_with_its_size() -> None:
    tile = np.random.default_rng(8).random((1, 8, 8, 3)).astype(np.float32)
    small = total_variation_loss(tf.constant(tile), wrap=True, normalize=True)
    large = total_variation_loss(tf.constant(np.tile(tile, (1, 3, 3, 1))), wrap=True, normalize=True)
    np.testing.assert_allclose(large.numpy(), small.numpy(), rtol=1e-5)


def test_blended_grams_are_the_normalised_weighted_sum_per_layer() -> None:
    rng = np.random.default_rng(9)
    styles = [[rng.random((1, c, c)).astype(np.float32) for c in (3, 5)] for _ in range(3)]
    got = blend_grams([as_tensors(grams) for grams in styles], [2.0, 0.0, 6.0])
    for layer, blended in enumerate(got):
        np.testing.assert_allclose(
            blended.numpy(), 0.25 * styles[0][layer] + 0.75 * styles[2][layer], rtol=1e-6
        )


def test_a_one_hot_blend_is_exactly_that_style() -> None:
    rng = np.random.default_rng(10)
    styles = [[rng.random((1, 4, 4)).astype(np.float32)] for _ in range(2)]
    np.testing.assert_array_equal(
        blend_grams([as_tensors(g) for g in styles], [1, 0])[0].numpy(), styles[0][0]
    )


@pytest.mark.parametrize("weights", [[1.0, -1.0], [0.0, 0.0], [1.0], [1.0, float("nan")]])
def test_bad_blend_weights_are_rejected_naming_the_field(weights) -> None:
    grams = [[tf.ones((1, 2, 2))], [tf.ones((1, 2, 2))]]
    with pytest.raises(InvalidInput) as caught:
        blend_grams(grams, weights)
    assert caught.value.field == "style_blend_weights"


def test_balanced_formula_normalises_with_layer_means() -> None:
    config = LossConfig.for_formula("balanced", style_weight=1.0, content_weight=1.0, tv_weight=0.0)
    assert (config.style_reduce, config.content_form, config.normalize, config.wrap_tv) == (
        "mean",
        "mean",
        True,
        False,
    )
    seed = LossConfig.for_formula("seed", style_weight=1.0, content_weight=1.0, tv_weight=0.0, wrap_tv=True)
    assert (seed.normalize, seed.wrap_tv) == (False, True)


def test_balanced_total_loss_masks_normalises_and_wraps(features) -> None:
    outputs, others = features
    image = np.random.default_rng(11).random((2, 8, 6, 3)).astype(np.float32)
    mask = np.random.default_rng(12).random((2, 8, 6, 1)).astype(np.float32)
    config = LossConfig.for_formula(
        "balanced", style_weight=2.0, content_weight=3.0, tv_weight=0.5, wrap_tv=True
    )
    targets = [np_gram(x) for x in others]
    losses = total_loss(
        image=tf.constant(image),
        style_outputs=as_tensors(outputs),
        content_outputs=[tf.constant(outputs[-1])],
        style_targets=as_tensors([t.astype(np.float32) for t in targets]),
        content_targets=[tf.constant(others[-1])],
        config=config,
        mask=tf.constant(mask),
    )
    masks = [downsample_mask(tf.constant(mask), tf.constant(x)).numpy() for x in outputs]
    for i in range(2):
        one = slice(i, i + 1)
        style = np.mean(
            [
                ((np_masked_gram(o[one], m[one]) - t[one]) ** 2).sum() / (t[one] ** 2).sum()
                for o, m, t in zip(outputs, masks, targets, strict=True)
            ]
        )
        m, out, target = masks[-1][i], outputs[-1][i].astype(np.float64), others[-1][i].astype(np.float64)
        content = (m * (out - target) ** 2).sum() / (m * target**2).sum()
        expected = {"style": style, "content": content, "tv": np_wrapped_tv(image[one]) / 48}
        expected["total"] = 2.0 * style + 3.0 * content + 0.5 * expected["tv"]
        for name, value in expected.items():
            np.testing.assert_allclose(losses[name].numpy()[i], value, rtol=1e-5, err_msg=name)


@pytest.mark.parametrize("formula", ["seed", "tutorial"])
def test_default_losses_are_bit_identical_to_the_plain_tf_formulas(features, formula) -> None:
    # One image: the plain formulas reduce over the whole batch, ours per image.
    outputs, others = ([x[:1] for x in group] for group in features)
    image = tf.constant(np.random.default_rng(13).random((1, 8, 6, 3)).astype(np.float32))
    targets = [gram_matrix(tf.constant(x)) for x in others]
    config = LossConfig.for_formula(formula, style_weight=1e-2, content_weight=1e4, tv_weight=30.0)
    losses = total_loss(
        image=image,
        style_outputs=as_tensors(outputs),
        content_outputs=as_tensors(outputs),
        style_targets=targets,
        content_targets=as_tensors(others),
        config=config,
    )
    grams = [tf.einsum("bijc,bijd->bcd", x, x) / float(x.shape[1] * x.shape[2]) for x in outputs]
    style = tf.add_n([tf.reduce_mean(tf.square(g - t)) for g, t in zip(grams, targets, strict=True)])
    squares = [tf.square(x - t) for x, t in zip(outputs, others, strict=True)]
    if formula == "seed":
        content = 0.5 * tf.add_n([tf.reduce_sum(s) for s in squares])
    else:
        style, content = style / len(grams), tf.add_n([tf.reduce_mean(s) for s in squares]) / len(squares)
    expected = {"style": style, "content": content, "tv": tf.reduce_sum(tf.image.total_variation(image))}
    for name, value in expected.items():
        np.testing.assert_array_equal(losses[name].numpy(), value.numpy(), err_msg=name)
