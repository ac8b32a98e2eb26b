"""Loss terms of neural style transfer as pure functions, and the config that weights and combines them.

Three formulas exist: ``seed`` (style summed over layers, content ``0.5 * sum`` of squares), ``tutorial``
(the TF tutorial: style averaged over layers, content a mean of squares) and ``balanced`` (per-layer
normalised losses, averaged over layers, and TV per pixel, so one set of weights fits every weight set and
image size).

Masks are (b, h, w, 1) float weights in [0,1] at any resolution (typically the content's alpha); they are
resized to each feature map with area averaging.

Every loss is per image, shape (b,): several jobs optimised together along the batch dimension keep their own
losses, and the gradient of their sum reaches each image from its own loss only.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from shared.errors import InvalidInput
from worker.engine.vgg import CONTENT_LAYERS

STYLE_REDUCES = ("sum", "mean")
CONTENT_FORMS = ("half_sum", "mean")
# formula name -> (style_reduce, content_form, normalize)
FORMULAS = {
    "seed": ("sum", "half_sum", False),
    "tutorial": ("mean", "mean", False),
    # Mean over layers: each normalised layer term starts near 1 whatever the weights, so the style term stays
    # O(1) and style_weight / content_weight read as plain relative emphasis.
    "balanced": ("mean", "mean", True),
}
# Guards the normalised denominators against an all-zero target (e.g. a fully transparent content image).
NORMALIZE_EPSILON = 1e-12


def gram_matrix(x: tf.Tensor, mask: tf.Tensor | None = None) -> tf.Tensor:
    """Channel correlations of (b, h, w, c) features, normalised by h*w: shape (b, c, c).

    With a (b, h, w, 1) ``mask`` each position counts with its weight and the sum is divided by the total
    weight, so fully masked positions do not feed the statistics (an all-zero mask gives a zero Gram).
    """
    if mask is None:
        shape = tf.shape(x)
        positions = tf.cast(shape[1] * shape[2], x.dtype)
        return tf.einsum("bijc,bijd->bcd", x, x) / positions
    mask = tf.cast(mask, x.dtype)
    weight = tf.reduce_sum(mask, axis=[1, 2, 3])
    return tf.math.divide_no_nan(tf.einsum("bijc,bijd->bcd", x * mask, x), weight[:, None, None])


def downsample_mask(mask: tf.Tensor, feature: tf.Tensor) -> tf.Tensor:
    """Resize a (b, h, w, 1) mask to ``feature``'s spatial size by area averaging."""
    return _area_resize(mask, tf.shape(feature)[1:3])


def layer_masks(mask: tf.Tensor | None, features: Sequence[tf.Tensor]) -> list[tf.Tensor] | None:
    """One downsampled mask per feature map, or None when there is no mask."""
    if mask is None:
        return None
    return [downsample_mask(mask, feature) for feature in features]


def masks_at(mask: tf.Tensor, sizes: Sequence[tuple[int, int]]) -> list[tf.Tensor]:
    """The mask area-averaged to each (height, width): computed once, outside a compiled step (XLA has no
    area resize)."""
    return [_area_resize(mask, size) for size in sizes]


def _area_resize(mask: tf.Tensor, size) -> tf.Tensor:
    return tf.image.resize(tf.cast(mask, tf.float32), size, method="area")


def blend_grams(per_style_grams: Sequence[Sequence[tf.Tensor]], weights: Sequence[float]) -> list[tf.Tensor]:
    """Per layer, the weighted sum of several styles' Grams, with the weights normalised to sum 1.

    Raises:
        InvalidInput: (field ``style_blend_weights``) on a count mismatch, a negative or non-finite weight,
            or weights that are all zero.
    """
    weights = _blend_fractions(weights, len(per_style_grams))
    layers = zip(*per_style_grams, strict=True)
    return [tf.add_n([w * gram for w, gram in zip(weights, grams, strict=True)]) for grams in layers]


def _blend_fractions(weights: Sequence[float], styles: int) -> list[float]:
    values = np.asarray(weights, dtype=np.float64)
    if values.shape != (styles,) or styles == 0:
        message = f"style_blend_weights needs one weight per style ({styles}); got {list(weights)}"
        raise InvalidInput(message, field="style_blend_weights")
    if not np.all(np.isfinite(values)) or np.any(values < 0) or values.sum() <= 0:
        message = f"style_blend_weights must be finite, >= 0 and not all 0; got {list(weights)}"
        raise InvalidInput(message, field="style_blend_weights")
    return [float(v) for v in values / values.sum()]


def style_loss(
    outputs: Sequence[tf.Tensor],
    targets: Sequence[tf.Tensor],
    *,
    reduce: str,
    masks: Sequence[tf.Tensor] | None = None,
    normalize: bool = False,
) -> tf.Tensor:
    """Per image, each layer's mean squared Gram difference, summed (``sum``) or averaged (``mean``).

    ``targets`` are the style image's Gram matrices, not its raw features. ``masks`` (one per layer, at the
    layer's size) weight the generated image's Grams. ``normalize`` makes each layer's term
    ``sum((G - A)^2) / sum(A^2)``, which does not change when the activations are scaled.
    """
    _check_choice("reduce", reduce, STYLE_REDUCES)
    masks = [None] * len(outputs) if masks is None else masks
    per_layer = [
        _style_term(gram_matrix(out, mask), gram, normalize=normalize)
        for out, gram, mask in zip(outputs, targets, masks, strict=True)
    ]
    total = tf.add_n(per_layer)
    return total if reduce == "sum" else total / len(per_layer)


def _style_term(gram: tf.Tensor, target: tf.Tensor, *, normalize: bool) -> tf.Tensor:
    if not normalize:
        return tf.reduce_mean(tf.square(gram - target), axis=[1, 2])
    error = tf.reduce_sum(tf.square(gram - target), axis=[1, 2])
    return error / _guarded(tf.reduce_sum(tf.square(target), axis=[1, 2]))


def content_loss(
    outputs: Sequence[tf.Tensor],
    targets: Sequence[tf.Tensor],
    *,
    form: str,
    masks: Sequence[tf.Tensor] | None = None,
    normalize: bool = False,
    layer_weights: tf.Tensor | None = None,
) -> tf.Tensor:
    """Per image, ``half_sum``: 0.5 * sum of squares over layers; ``mean``: mean of squares, layer-averaged.

    ``masks`` (one per layer) weight each position's squared error; ``mean`` then divides by the total weight.
    ``normalize`` makes each layer's term ``sum(m (F - P)^2) / sum(m P^2)``, the same weighting on both sides
    so it is scale-free; ``form`` then only decides how layers combine (0.5 * sum, or mean).
    ``layer_weights`` (layers, b) weighs each layer per image (a one-hot row picks a job's content layer);
    ``mean`` then averages with those weights. None counts every layer once.
    """
    _check_choice("form", form, CONTENT_FORMS)
    masks = [None] * len(outputs) if masks is None else masks
    per_layer = [
        _content_term(out, target, mask, form=form, normalize=normalize)
        for out, target, mask in zip(outputs, targets, masks, strict=True)
    ]
    if layer_weights is None:
        layer_weights = tf.ones((len(per_layer), tf.shape(per_layer[0])[0]), per_layer[0].dtype)
    rows = tf.unstack(layer_weights, len(per_layer))
    total = tf.add_n([w * term for w, term in zip(rows, per_layer, strict=True)])
    return 0.5 * total if form == "half_sum" else total / tf.reduce_sum(layer_weights, axis=0)


def _content_term(
    out: tf.Tensor, target: tf.Tensor, mask: tf.Tensor | None, *, form: str, normalize: bool
) -> tf.Tensor:
    square = tf.square(out - target)
    pixels = [1, 2, 3]
    if mask is None and not normalize:
        return tf.reduce_sum(square, pixels) if form == "half_sum" else tf.reduce_mean(square, pixels)
    weight = tf.ones_like(out[..., :1]) if mask is None else tf.cast(mask, out.dtype)
    error = tf.reduce_sum(square * weight, pixels)
    if normalize:
        return error / _guarded(tf.reduce_sum(tf.square(target) * weight, pixels))
    if form == "half_sum":
        return error
    channels = tf.cast(tf.shape(out)[-1], out.dtype)
    return tf.math.divide_no_nan(error, tf.reduce_sum(weight, pixels) * channels)


def total_variation_loss(image: tf.Tensor, *, wrap: bool = False, normalize: bool = False) -> tf.Tensor:
    """Per image, the sum of absolute neighbour differences (``tf.image.total_variation``).

    ``wrap`` also counts the seams last column -> first and last row -> first, as a tiled image shows them;
    ``normalize`` divides by the pixels per image (h * w) so the term does not grow with the image size.
    """
    if wrap:
        seams = [tf.reduce_sum(tf.abs(image - tf.roll(image, 1, axis=axis)), [1, 2, 3]) for axis in (1, 2)]
        tv = tf.add_n(seams)
    else:
        tv = tf.image.total_variation(image)
    if not normalize:
        return tv
    shape = tf.shape(image)
    return tv / tf.cast(shape[1] * shape[2], tv.dtype)


@dataclass(frozen=True)
class LossConfig:
    """Weights of the three terms and the formula each term uses.

    ``normalize`` switches style and content to their scale-free per-layer forms and TV to per pixel;
    ``wrap_tv`` adds the wrap-around seams to TV (for tileable outputs).
    """

    style_weight: float
    content_weight: float
    tv_weight: float
    style_reduce: str
    content_form: str
    normalize: bool = False
    wrap_tv: bool = False
    content_layer: str = "block5_conv2"  # one of vgg.CONTENT_LAYERS; a per-job input, not part of the form

    def __post_init__(self) -> None:
        _check_choice("style_reduce", self.style_reduce, STYLE_REDUCES)
        _check_choice("content_form", self.content_form, CONTENT_FORMS)
        _check_choice("content_layer", self.content_layer, CONTENT_LAYERS)

    @property
    def content_layer_weights(self) -> tuple[float, ...]:
        """One weight per content layer the extractor computes: 1 for this job's layer, 0 for the others."""
        return tuple(float(name == self.content_layer) for name in CONTENT_LAYERS)

    @property
    def form(self) -> tuple[str, str, bool, bool]:
        """What a compiled step depends on (the weights are inputs to it)."""
        return (self.style_reduce, self.content_form, self.normalize, self.wrap_tv)

    @property
    def weights(self) -> tuple[float, float, float]:
        """(style, content, tv) weights."""
        return (self.style_weight, self.content_weight, self.tv_weight)

    @classmethod
    def for_formula(
        cls,
        formula: str,
        *,
        style_weight: float,
        content_weight: float,
        tv_weight: float,
        normalize: bool | None = None,
        wrap_tv: bool = False,
        content_layer: str = "block5_conv2",
    ) -> "LossConfig":
        """Config for a named formula (``seed``, ``tutorial``, ``balanced``) with the given weights.

        ``normalize=None`` takes the formula's own choice (only ``balanced`` normalises).
        """
        _check_choice("formula", formula, tuple(FORMULAS))
        style_reduce, content_form, formula_normalizes = FORMULAS[formula]
        normalize = formula_normalizes if normalize is None else normalize
        return cls(
            style_weight,
            content_weight,
            tv_weight,
            style_reduce,
            content_form,
            normalize,
            wrap_tv,
            content_layer,
        )


def total_loss(
    *,
    image: tf.Tensor,
    style_outputs: Sequence[tf.Tensor],
    content_outputs: Sequence[tf.Tensor],
    style_targets: Sequence[tf.Tensor],
    content_targets: Sequence[tf.Tensor],
    config: LossConfig,
    mask: tf.Tensor | None = None,
) -> dict[str, tf.Tensor]:
    """Unweighted terms and the weighted total, per image: keys ``total``, ``style``, ``content``, ``tv``.

    ``mask`` (b, h, w, 1), e.g. the content's alpha, weights the generated image's Grams and the content
    error; the style targets are precomputed Grams and are not masked here.
    """
    terms = loss_terms(
        image=image,
        style_outputs=style_outputs,
        content_outputs=content_outputs,
        style_targets=style_targets,
        content_targets=content_targets,
        config=config,
        style_masks=layer_masks(mask, style_outputs),
        content_masks=layer_masks(mask, content_outputs),
        content_layer_weights=_layer_rows(config, content_outputs),
    )
    return weighted_total(terms, config.weights)


def loss_terms(
    *,
    image: tf.Tensor,
    style_outputs: Sequence[tf.Tensor],
    content_outputs: Sequence[tf.Tensor],
    style_targets: Sequence[tf.Tensor],
    content_targets: Sequence[tf.Tensor],
    config: LossConfig,
    style_masks: Sequence[tf.Tensor] | None = None,
    content_masks: Sequence[tf.Tensor] | None = None,
    content_layer_weights: tf.Tensor | None = None,
) -> dict[str, tf.Tensor]:
    """The unweighted terms per image (``style``, ``content``, ``tv``); only ``config``'s form is used.

    ``style_masks`` and ``content_masks`` are the mask at each layer's size (see `layer_masks`, `masks_at`);
    ``content_layer_weights`` (content layers, b) pick each image's content layer (see `content_loss`).
    """
    style = style_loss(
        style_outputs,
        style_targets,
        reduce=config.style_reduce,
        masks=style_masks,
        normalize=config.normalize,
    )
    content = content_loss(
        content_outputs,
        content_targets,
        form=config.content_form,
        masks=content_masks,
        normalize=config.normalize,
        layer_weights=content_layer_weights,
    )
    tv = total_variation_loss(image, wrap=config.wrap_tv, normalize=config.normalize)
    return {"style": style, "content": content, "tv": tv}


def _layer_rows(config: LossConfig, content_outputs: Sequence[tf.Tensor]) -> tf.Tensor | None:
    """(layers, b) content-layer weights from ``config``, when the outputs are the extractor's layers."""
    if len(content_outputs) != len(CONTENT_LAYERS):
        return None
    row = tf.constant(config.content_layer_weights, content_outputs[0].dtype)[:, None]
    return tf.tile(row, [1, tf.shape(content_outputs[0])[0]])


def weighted_total(terms: dict[str, tf.Tensor], weights) -> dict[str, tf.Tensor]:
    """``terms`` plus ``total``: (style, content, tv) ``weights``, floats or per-image tensors, applied."""
    style_weight, content_weight, tv_weight = weights
    total = style_weight * terms["style"] + content_weight * terms["content"] + tv_weight * terms["tv"]
    return {"total": total, **terms}


def _guarded(denominator: tf.Tensor) -> tf.Tensor:
    return tf.maximum(denominator, tf.cast(NORMALIZE_EPSILON, denominator.dtype))


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
