"""The style transfer loop: Adam on the image pixels, clipped to [0,1], with sparse progress reports."""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from shared.errors import InvalidInput
from worker.engine.losses import LossConfig, gram_matrix, total_loss
from worker.engine.vgg import FeatureExtractor


@dataclass(frozen=True)
class AdamConfig:
    """Adam hyper-parameters; the defaults are the TF tutorial's."""

    learning_rate: float = 0.02
    beta_1: float = 0.99
    beta_2: float = 0.999
    # Large on purpose: it damps steps on pixels with tiny gradients, as in the tutorial.
    epsilon: float = 0.1

    def build(self) -> tf.keras.optimizers.Adam:
        """A fresh optimizer: each job starts with empty moment estimates."""
        return tf.keras.optimizers.Adam(
            learning_rate=self.learning_rate, beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon
        )


@dataclass(frozen=True)
class Progress:
    """Losses of the image after ``step`` updates (step 0 is the initial image)."""

    step: int
    total_steps: int
    losses: dict[str, float]


@dataclass(frozen=True)
class StylizeResult:
    """The stylised image, (h, w, 3) float32 in [0,1], and the losses before and after."""

    image: np.ndarray
    initial_losses: dict[str, float]
    final_losses: dict[str, float]
    steps_run: int


class _Trainer:
    """One job's image variable, optimizer and compiled step; dropped with the job so nothing leaks."""

    def __init__(
        self,
        *,
        extractor: FeatureExtractor,
        content: np.ndarray,
        style: np.ndarray,
        config: LossConfig,
        adam: AdamConfig,
    ) -> None:
        self._extractor = extractor
        self._config = config
        style_features, _ = extractor(style[None])
        self._style_targets = [gram_matrix(features) for features in style_features]
        _, self._content_targets = extractor(content[None])
        self.image = tf.Variable(content[None])
        self._optimizer = adam.build()
        # Build the moment slots eagerly: a tf.function may not create variables after its first trace.
        self._optimizer.build([self.image])
        self.step = tf.function(self._step, jit_compile=False)
        self.evaluate = tf.function(self._losses, jit_compile=False)

    def _losses(self) -> dict[str, tf.Tensor]:
        style_outputs, content_outputs = self._extractor(self.image)
        return total_loss(
            image=self.image,
            style_outputs=style_outputs,
            content_outputs=content_outputs,
            style_targets=self._style_targets,
            content_targets=self._content_targets,
            config=self._config,
        )

    def _step(self) -> None:
        # The tape watches only the image variable: the frozen VGG weights get no gradient.
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(self.image)
            total = self._losses()["total"]
        gradient = tape.gradient(total, self.image)
        self._optimizer.apply_gradients([(gradient, self.image)])
        self.image.assign(tf.clip_by_value(self.image, 0.0, 1.0))

    def read_losses(self) -> dict[str, float]:
        """Losses of the current image as Python floats (one device-to-host read)."""
        return {name: float(value) for name, value in self.evaluate().items()}


def stylize(
    extractor: FeatureExtractor,
    content: np.ndarray,
    style: np.ndarray,
    *,
    steps: int,
    loss_config: LossConfig,
    adam: AdamConfig,
    progress_every: int = 10,
    on_progress: Callable[[Progress], None] | None = None,
) -> StylizeResult:
    """Optimise an image initialised from ``content`` towards ``style``; report at 0, every N and the end.

    ``content`` and ``style`` are (h, w, 3) float32 arrays in [0,1]; their sizes may differ. An exception
    raised by ``on_progress`` (e.g. to cancel) stops the loop and propagates.
    """
    _check_inputs(content, style, steps, progress_every)
    trainer = _Trainer(
        extractor=extractor, content=_as_image(content), style=_as_image(style), config=loss_config, adam=adam
    )
    report = on_progress or (lambda progress: None)
    initial = trainer.read_losses()
    report(Progress(step=0, total_steps=steps, losses=initial))
    final = initial
    for step in range(1, steps + 1):
        trainer.step()
        if step % progress_every == 0 or step == steps:
            final = trainer.read_losses()
            report(Progress(step=step, total_steps=steps, losses=final))
    image = np.asarray(trainer.image.numpy()[0], dtype=np.float32)
    return StylizeResult(image=image, initial_losses=initial, final_losses=final, steps_run=steps)


def _as_image(array: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(array, dtype=np.float32), 0.0, 1.0)


def _check_inputs(content: np.ndarray, style: np.ndarray, steps: int, progress_every: int) -> None:
    for field, image in (("content", content), ("style", style)):
        if np.ndim(image) != 3 or np.shape(image)[2] != 3:
            raise InvalidInput(
                f"{field} must be an (h, w, 3) array; got shape {np.shape(image)}", field=field
            )
    if steps < 0:
        raise InvalidInput(f"steps must be >= 0; got {steps}", field="steps")
    if progress_every < 1:
        raise InvalidInput(f"progress_every must be >= 1; got {progress_every}", field="progress_every")
