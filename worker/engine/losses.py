"""Loss terms of neural style transfer as pure functions, and the config that weights and combines them.

Two formulas exist: ``seed`` (style summed over layers, content ``0.5 * sum`` of squares) and ``tutorial``
(the TF tutorial: style averaged over layers, content a mean of squares).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import tensorflow as tf

STYLE_REDUCES = ("sum", "mean")
CONTENT_FORMS = ("half_sum", "mean")
# formula name -> (style_reduce, content_form)
FORMULAS = {"seed": ("sum", "half_sum"), "tutorial": ("mean", "mean")}


def gram_matrix(x: tf.Tensor) -> tf.Tensor:
    """Channel correlations of (b, h, w, c) features, normalised by h*w: shape (b, c, c)."""
    shape = tf.shape(x)
    positions = tf.cast(shape[1] * shape[2], x.dtype)
    return tf.einsum("bijc,bijd->bcd", x, x) / positions


def style_loss(outputs: Sequence[tf.Tensor], targets: Sequence[tf.Tensor], *, reduce: str) -> tf.Tensor:
    """Per layer mean squared Gram difference, summed (``sum``) or averaged (``mean``) over layers.

    ``targets`` are the style image's Gram matrices, not its raw features.
    """
    _check_choice("reduce", reduce, STYLE_REDUCES)
    per_layer = [
        tf.reduce_mean(tf.square(gram_matrix(out) - gram)) for out, gram in zip(outputs, targets, strict=True)
    ]
    total = tf.add_n(per_layer)
    return total if reduce == "sum" else total / len(per_layer)


def content_loss(outputs: Sequence[tf.Tensor], targets: Sequence[tf.Tensor], *, form: str) -> tf.Tensor:
    """``half_sum``: 0.5 * sum of squares, summed over layers; ``mean``: mean of squares, layer-averaged."""
    _check_choice("form", form, CONTENT_FORMS)
    pairs = list(zip(outputs, targets, strict=True))
    if form == "half_sum":
        return 0.5 * tf.add_n([tf.reduce_sum(tf.square(out - target)) for out, target in pairs])
    return tf.add_n([tf.reduce_mean(tf.square(out - target)) for out, target in pairs]) / len(pairs)


def total_variation_loss(image: tf.Tensor) -> tf.Tensor:
    """Sum of absolute neighbour differences over the batch (``tf.image.total_variation``)."""
    return tf.reduce_sum(tf.image.total_variation(image))


@dataclass(frozen=True)
class LossConfig:
    """Weights of the three terms and the formula each term uses."""

    style_weight: float
    content_weight: float
    tv_weight: float
    style_reduce: str
    content_form: str

    def __post_init__(self) -> None:
        _check_choice("style_reduce", self.style_reduce, STYLE_REDUCES)
        _check_choice("content_form", self.content_form, CONTENT_FORMS)

    @classmethod
    def for_formula(
        cls, formula: str, *, style_weight: float, content_weight: float, tv_weight: float
    ) -> "LossConfig":
        """Config for a named formula (``seed`` or ``tutorial``) with the given weights."""
        _check_choice("formula", formula, tuple(FORMULAS))
        style_reduce, content_form = FORMULAS[formula]
        return cls(style_weight, content_weight, tv_weight, style_reduce, content_form)


def total_loss(
    *,
    image: tf.Tensor,
    style_outputs: Sequence[tf.Tensor],
    content_outputs: Sequence[tf.Tensor],
    style_targets: Sequence[tf.Tensor],
    content_targets: Sequence[tf.Tensor],
    config: LossConfig,
) -> dict[str, tf.Tensor]:
    """Unweighted terms and the weighted total: keys ``total``, ``style``, ``content``, ``tv``."""
    style = style_loss(style_outputs, style_targets, reduce=config.style_reduce)
    content = content_loss(content_outputs, content_targets, form=config.content_form)
    tv = total_variation_loss(image)
    total = config.style_weight * style + config.content_weight * content + config.tv_weight * tv
    return {"total": total, "style": style, "content": content, "tv": tv}


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
