"""Colour preservation after Gatys et al. (2016), "Preserving Color in Neural Artistic Style Transfer".

- Luminance-only transfer: optimise on the Y channel of YIQ (the style's Y affinely matched to the content's
  mean and standard deviation), then put the content's I,Q chroma back (`luminance_inputs`,
  `recombine_luminance`).
- Colour histogram matching: before optimising, transform the style's colours linearly so their mean and
  covariance equal the content's (`match_color_histogram`).
- The reverse, ``preserve_color: style``: before optimising, move the content's colours to the style's mean
  and covariance (`recolor_to_palette`), so the optimisation starts from, and matches, the content in the
  style's palette (the trained features' Grams carry colour; weaker ones, like hed's, barely move it).

Numpy only. Images are (h, w, 3) float arrays in [0, 1]; an optional mask is an (h, w) array of the content's
size (e.g. its alpha) and only pixels where mask > 0 count towards the content's statistics.
"""

import numpy as np

# NTSC (FCC) RGB -> YIQ. Rows: Y, I, Q. Y's weights sum to 1, so Y of an image in [0, 1] stays in [0, 1].
RGB_TO_YIQ = np.array(
    [
        [0.299, 0.587, 0.114],
        [0.595716, -0.274453, -0.321263],
        [0.211456, -0.522591, 0.311135],
    ]
)
# The exact inverse, so a round trip is exact to float precision (the rounded textbook inverse is not).
YIQ_TO_RGB = np.linalg.inv(RGB_TO_YIQ)

# Eigenvalues of a colour covariance are floored here before the inverse square root: a greyscale style has
# rank-1 covariance, and its zero eigenvalues would otherwise divide by zero. Real photos sit far above it.
_EIGENVALUE_FLOOR = 1e-10
# Below this standard deviation a style's luminance counts as flat: it is shifted to the content's mean only.
_FLAT_STD = 1e-6


def rgb_to_yiq(rgb: np.ndarray) -> np.ndarray:
    """Convert an (h, w, 3) RGB array to YIQ (float64)."""
    return _check_image(rgb, "rgb") @ RGB_TO_YIQ.T


def yiq_to_rgb(yiq: np.ndarray) -> np.ndarray:
    """Convert an (h, w, 3) YIQ array to RGB (float64, not clipped)."""
    return _check_image(yiq, "yiq") @ YIQ_TO_RGB.T


def luminance_inputs(
    content_rgb: np.ndarray, style_rgb: np.ndarray, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Optimiser inputs for luminance-only transfer: (content Y, matched style Y, content IQ).

    The two Y images are float32 (h, w, 3) greys (Y repeated, clipped to [0, 1]) because VGG takes RGB. The
    style's Y is scaled and shifted so its mean and standard deviation equal the content's (over mask > 0).
    The returned content IQ (h, w, 2, float64) goes to `recombine_luminance` after optimising.
    """
    content_yiq = rgb_to_yiq(content_rgb)
    style_y = rgb_to_yiq(style_rgb)[..., 0]
    content_y = content_yiq[..., 0]
    selected = content_y[_selection(mask, content_y.shape)]
    matched = _match_mean_std(style_y, target_mean=selected.mean(), target_std=selected.std())
    return _grey3(content_y), _grey3(matched), content_yiq[..., 1:]


def grey_luminance(rgb: np.ndarray) -> np.ndarray:
    """An RGB image's luminance as a float32 (h, w, 3) grey, as the luminance mode's optimiser sees images."""
    return _grey3(rgb_to_yiq(_check_image(rgb, "rgb"))[..., 0])


def recombine_luminance(output_y3: np.ndarray, content_iq: np.ndarray) -> np.ndarray:
    """Combine the optimised luminance (the mean of its 3 channels) with the content's IQ; RGB in [0, 1]."""
    output_y3 = _check_image(output_y3, "output_y3")
    if content_iq.shape != (*output_y3.shape[:2], 2):
        raise ValueError(f"content_iq must be {(*output_y3.shape[:2], 2)}, got {content_iq.shape}")
    # The optimiser sees a grey image but may drift the channels apart; their mean is its best luminance.
    yiq = np.concatenate([output_y3.mean(axis=2, keepdims=True), content_iq], axis=2)
    return np.clip(yiq_to_rgb(yiq), 0.0, 1.0).astype(np.float32)


def match_color_histogram(
    style_rgb: np.ndarray, content_rgb: np.ndarray, mask: np.ndarray | None = None
) -> np.ndarray:
    """The style with colour mean and covariance matched to the content's, clipped to [0, 1] (float32).

    Clipping (the optimiser needs [0, 1]) moves the statistics slightly; `transfer_color_moments` returns the
    unclipped transform, whose moments match exactly.
    """
    return np.clip(transfer_color_moments(style_rgb, content_rgb, mask), 0.0, 1.0).astype(np.float32)


def transfer_color_moments(
    style_rgb: np.ndarray, content_rgb: np.ndarray, mask: np.ndarray | None = None
) -> np.ndarray:
    """Unclipped x' = A (x - mu_s) + mu_c with A = C_c^(1/2) C_s^(-1/2) (symmetric roots); float64.

    The content's moments are taken over mask > 0 pixels. A style with fewer than three independent colour
    directions (greyscale) cannot reach the content's full covariance; its result stays finite.
    """
    style = _check_image(style_rgb, "style_rgb").reshape(-1, 3)
    content = _check_image(content_rgb, "content_rgb")
    content = content[_selection(mask, content.shape[:2])]
    matched = _carry_moments(style, _moments(style), _moments(content))
    return matched.reshape(np.shape(style_rgb))


def recolor_to_palette(
    image_rgb: np.ndarray,
    palettes: list[np.ndarray],
    weights: tuple[float, ...],
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """The image with its colour mean and covariance matched to the palettes' (the style images', blended by
    ``weights`` as one mixture of their pixels), clipped to [0, 1] (float32). The reverse of
    `match_color_histogram`: the content takes the style's colours. The image's moments are taken over
    mask > 0 pixels; every pixel is recoloured."""
    image = _check_image(image_rgb, "image_rgb")
    own = _moments(image[_selection(mask, image.shape[:2])])
    target = _mixture_moments([color_moments(palette) for palette in palettes], weights)
    matched = _carry_moments(image.reshape(-1, 3), own, target).reshape(image.shape)
    return np.clip(matched, 0.0, 1.0).astype(np.float32)


def color_moments(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (3,) and population covariance (3, 3) of an (..., 3) array of colours, in float64."""
    return _moments(np.asarray(pixels, dtype=np.float64).reshape(-1, 3))


def _carry_moments(pixels: np.ndarray, source: tuple, target: tuple) -> np.ndarray:
    """x' = A (x - mu_s) + mu_t, A = C_t^(1/2) C_s^(-1/2) (symmetric roots): source moments to target's."""
    (source_mean, source_cov), (target_mean, target_cov) = source, target
    transform = _sym_power(target_cov, 0.5) @ _sym_power(source_cov, -0.5)
    return (pixels - source_mean) @ transform.T + target_mean


def _mixture_moments(moments: list[tuple], weights: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of a mixture whose parts have these moments, in proportion to ``weights``."""
    share = np.asarray(weights, dtype=np.float64) / np.sum(weights)
    mean = sum(w * m for w, (m, _) in zip(share, moments, strict=True))
    second = sum(w * (c + np.outer(m, m)) for w, (m, c) in zip(share, moments, strict=True))
    return mean, second - np.outer(mean, mean)


def _moments(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = pixels.mean(axis=0)
    centred = pixels - mean
    return mean, centred.T @ centred / len(pixels)


def _sym_power(matrix: np.ndarray, power: float) -> np.ndarray:
    """A symmetric positive semi-definite matrix to a real power, via eigh (eigenvalues floored)."""
    values, vectors = np.linalg.eigh(matrix)
    values = np.maximum(values, _EIGENVALUE_FLOOR)
    return (vectors * values**power) @ vectors.T


def _match_mean_std(values: np.ndarray, *, target_mean: float, target_std: float) -> np.ndarray:
    std = values.std()
    scale = target_std / std if std > _FLAT_STD else 0.0
    return (values - values.mean()) * scale + target_mean


def _selection(mask: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    """Boolean (h, w) of the pixels whose statistics count; all of them when there is no usable mask."""
    if mask is None:
        return np.ones(shape, dtype=bool)
    if mask.shape != shape:
        raise ValueError(f"mask must have the content's shape {shape}, got {mask.shape}")
    selected = np.asarray(mask) > 0
    # A fully transparent image has no statistics of its own; fall back to all pixels rather than divide by 0.
    return selected if selected.any() else np.ones(shape, dtype=bool)


def _grey3(y: np.ndarray) -> np.ndarray:
    return np.repeat(np.clip(y, 0.0, 1.0)[..., None], 3, axis=2).astype(np.float32)


def _check_image(array: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(array, dtype=np.float64)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"{name} must be an (h, w, 3) array, got shape {array.shape}")
    return array
