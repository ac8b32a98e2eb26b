"""Quality statistics for a stylised image: how much content it keeps and how close its style is.

``content_ssim`` and ``style_swd`` are *held-out*: nothing in the product optimises them (the engine
minimises Gram-matrix and feature-MSE losses), so an optimiser cannot score well on them by gaming its own
objective. ``objective_distances`` reports the objective's own normalised distances, for reference.

Images are (h, w, 3) float arrays in [0, 1]. Every function here is pure (no state kept between calls).
"""

from collections.abc import Sequence

import numpy as np
import tensorflow as tf
from skimage.filters import gaussian
from skimage.metrics import structural_similarity

from worker.engine.losses import content_loss, gram_matrix, style_loss
from worker.engine.vgg import STYLE_LAYERS

# Rec. 601 luma weights.
LUMA = np.array([0.299, 0.587, 0.114])
# Gaussian blur sigma at 256 px (longest side); scaled linearly with the image's size.
BLUR_SIGMA_AT_256 = 2.0


def luminance(image: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of an (h, w, 3) image in [0, 1], shape (h, w)."""
    return np.asarray(image, np.float64)[..., :3] @ LUMA


def content_ssim(output: np.ndarray, content: np.ndarray) -> float:
    """SSIM of the blurred luminances of ``output`` and ``content`` (same size); higher = content kept.

    The Gaussian blur (sigma 2 px at 256 px, scaled by ``max(h, w) / 256``) removes the fine texture a style
    adds, so what is compared is the layout of light and dark: whether the subject is still there.
    """
    a, b = _blurred_luminances(output, content)
    return float(structural_similarity(a, b, data_range=1.0))


def content_ssim_tone_matched(output: np.ndarray, content: np.ndarray) -> float:
    """`content_ssim` after the output's blurred luminance is moved, by one gain and offset over the whole
    image, to the content's mean and standard deviation: the layout of light and dark whatever the global
    tone, so a style that darkens or brightens the whole picture (a night sky's) is not counted as lost
    content. Reported beside `content_ssim`, never instead of it."""
    a, b = _blurred_luminances(output, content)
    a = (a - a.mean()) * (b.std() / max(a.std(), 1e-6)) + b.mean()
    return float(structural_similarity(np.clip(a, 0.0, 1.0), b, data_range=1.0))


def _blurred_luminances(output: np.ndarray, content: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if np.shape(output) != np.shape(content):
        raise ValueError(f"output {np.shape(output)} and content {np.shape(content)} differ in size")
    sigma = BLUR_SIGMA_AT_256 * max(np.shape(content)[:2]) / 256
    a, b = (gaussian(luminance(x), sigma=sigma, mode="reflect") for x in (output, content))
    return a, b


def _batch(image: np.ndarray) -> tf.Tensor:
    return tf.convert_to_tensor(np.asarray(image, np.float32)[None, ..., :3])


def _sorted_projections(features: np.ndarray, directions: np.ndarray, count: int) -> np.ndarray:
    """(positions, c) features projected on (c, p) directions, each column sorted and resampled to
    ``count`` quantiles (midpoints), shape (count, p)."""
    projected = np.sort(features @ directions, axis=0)
    if projected.shape[0] == count:
        return projected
    # np.quantile's "linear" method on the already sorted columns (np.quantile itself is very slow here)
    position = (np.arange(count) + 0.5) / count * (projected.shape[0] - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, projected.shape[0] - 1)
    frac = (position - low)[:, None]
    return projected[low] * (1 - frac) + projected[high] * frac


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, directions: np.ndarray) -> float:
    """Squared sliced Wasserstein distance of the rows of ``a`` and ``b`` (point clouds in c dims) along
    unit ``directions`` (c, p), divided by ``b``'s mean projected variance."""
    count = min(a.shape[0], b.shape[0])
    pa, pb = (_sorted_projections(x, directions, count) for x in (a, b))
    variance = float(np.mean(np.var(b @ directions, axis=0)))
    return float(np.mean(np.square(pa - pb))) / max(variance, 1e-12)


def style_swd(
    extractor, output: np.ndarray, style: np.ndarray, *, projections: int = 64, seed: int = 0
) -> float:
    """Sliced Wasserstein distance between ``output``'s and ``style``'s VGG features; lower = closer style.

    At each style layer (block1_conv1 .. block5_conv1) the feature vectors of both images are projected on
    ``projections`` seeded random unit directions, the projected values sorted (resampled by quantiles when
    the images differ in size) and the mean squared difference taken, divided by the style's own projected
    variance so that layers are comparable; the result is the mean over layers. It compares the whole
    distribution of features, not just their second moments, and the engine never optimises it (it matches
    Gram matrices), so it is a held-out measure of style.
    """
    rng = np.random.default_rng(seed)
    out_feats = extractor.features(_batch(output))[0]
    style_feats = extractor.features(_batch(style))[0]
    distances = []
    for out_f, style_f in zip(out_feats, style_feats, strict=True):
        channels = out_f.shape[-1]
        directions = rng.standard_normal((channels, projections))
        directions /= np.linalg.norm(directions, axis=0, keepdims=True)
        a = out_f.numpy().reshape(-1, channels).astype(np.float64)
        b = style_f.numpy().reshape(-1, channels).astype(np.float64)
        distances.append(sliced_wasserstein(a, b, directions))
    return float(np.mean(distances))


def layer_model(extractor, names: Sequence[str]) -> tf.keras.Model:
    """A Keras model on the extractor's truncated VGG returning the named layers (any up to block5_conv2).

    It takes preprocessed input: use `layer_features` for images in [0, 1].
    """
    vgg = extractor._model
    return tf.keras.Model(vgg.input, [vgg.get_layer(name).output for name in names])


def layer_features(model: tf.keras.Model, images: tf.Tensor) -> list[tf.Tensor]:
    """``model``'s outputs for (b, h, w, 3) images in [0, 1], preprocessed as the extractor does."""
    x = tf.keras.applications.vgg19.preprocess_input(tf.cast(images, tf.float32) * 255.0)
    outputs = model(x, training=False)
    return list(outputs) if isinstance(outputs, list | tuple) else [outputs]


def objective_distances(
    extractor, output: np.ndarray, content: np.ndarray, style: np.ndarray, content_layer: str = "block5_conv2"
) -> dict[str, float]:
    """The objective's own normalised distances: ``style`` (per layer sum((G-A)^2)/sum(A^2), mean over the
    style layers) and ``content`` (sum((F-P)^2)/sum(P^2) at ``content_layer``).

    These are what the "balanced" formula optimises, so unlike `style_swd` and `content_ssim` an optimiser
    is expected to do well on them.
    """
    model = layer_model(extractor, (*STYLE_LAYERS, content_layer))
    out = layer_features(model, _batch(output))
    style_targets = [gram_matrix(f) for f in layer_features(model, _batch(style))[:-1]]
    content_target = layer_features(model, _batch(content))[-1]
    style = style_loss(out[:-1], style_targets, reduce="mean", normalize=True)
    content_d = content_loss([out[-1]], [content_target], form="mean", normalize=True)
    return {"style": float(style[0]), "content": float(content_d[0])}
