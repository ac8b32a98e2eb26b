"""The style transfer loop: Adam on the image pixels, clipped to [0,1], with sparse progress reports."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from shared.errors import InvalidInput
from worker.engine.checkpoint import Paused, TrainerState
from worker.engine.losses import LossConfig, blend_grams, gram_matrix, total_loss
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


class Canceled(Exception):
    """The caller asked the loop to stop; carries the step reached and the image at that step."""

    def __init__(self, step: int, image: np.ndarray) -> None:
        super().__init__(f"stopped at step {step}")
        self.step = step
        self.image = image


@dataclass(frozen=True)
class StepHooks:
    """Per-step callbacks: stop and pause checks (every step), snapshots and checkpoints (every N steps).

    ``should_stop`` true raises Canceled; ``should_pause`` true raises Paused with the state to resume from.
    """

    should_stop: Callable[[], bool] = lambda: False
    snapshot_every: int = 0
    on_snapshot: Callable[[int, np.ndarray], None] = lambda step, image: None
    should_pause: Callable[[], bool] = lambda: False
    checkpoint_every: int = 0
    on_checkpoint: Callable[[TrainerState], None] = lambda state: None


@dataclass(frozen=True)
class Targets:
    """What one optimisation matches: the (blended) style Grams and the content features."""

    style: list[tf.Tensor]
    content: list[tf.Tensor]


def style_targets(
    extractor: FeatureExtractor, styles: Sequence[np.ndarray], weights: Sequence[float]
) -> list[tf.Tensor]:
    """Per style layer, the blend of the style images' Gram matrices (weights normalised to sum 1)."""
    per_style = [[gram_matrix(f) for f in extractor(_as_image(style)[None])[0]] for style in styles]
    return per_style[0] if len(per_style) == 1 else blend_grams(per_style, weights)


def content_targets(
    extractor: FeatureExtractor, content: np.ndarray, *, tileable: bool = False
) -> list[tf.Tensor]:
    """The content layer's features of the content image."""
    return extractor(_as_image(content)[None], tileable=tileable)[1]


class _Trainer:
    """One job level's image variable, optimizer and compiled step; dropped with it so nothing leaks."""

    def __init__(
        self,
        *,
        extractor,
        targets: Targets,
        init: np.ndarray,
        config: LossConfig,
        adam: AdamConfig,
        mask: np.ndarray | None,
        tileable: bool,
    ) -> None:
        self._extractor = extractor
        self._targets = targets
        self._config = config
        self._tileable = tileable
        self._mask = None if mask is None else tf.constant(mask[None, :, :, None], tf.float32)
        self.image = tf.Variable(_as_image(init)[None])
        self._optimizer = adam.build()
        # Build the moment slots eagerly: a tf.function may not create variables after its first trace.
        self._optimizer.build([self.image])
        self.step = tf.function(self._step, jit_compile=False)
        self.evaluate = tf.function(self._losses, jit_compile=False)

    def _losses(self) -> dict[str, tf.Tensor]:
        style_outputs, content_outputs = self._extractor(self.image, tileable=self._tileable)
        return total_loss(
            image=self.image,
            style_outputs=style_outputs,
            content_outputs=content_outputs,
            style_targets=self._targets.style,
            content_targets=self._targets.content,
            config=self._config,
            mask=self._mask,
        )

    def _step(self) -> None:
        # The tape watches only the image variable: the frozen VGG weights get no gradient.
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(self.image)
            total = self._losses()["total"]
        gradient = tape.gradient(total, self.image)
        self._optimizer.apply_gradients([(gradient, self.image)])
        self.image.assign(tf.clip_by_value(self.image, 0.0, 1.0))

    def state(self, step: int) -> TrainerState:
        """The resumable state after ``step`` updates (level 0; the pipeline labels levels)."""
        slots = tuple(np.array(variable.numpy()) for variable in self._optimizer.variables)
        return TrainerState(level=0, step=step, image=self.image.numpy()[0], slots=slots)

    def restore(self, state: TrainerState) -> None:
        """Continue from a saved state of the same image size and optimizer."""
        variables = self._optimizer.variables
        shapes = [tuple(variable.shape) for variable in variables]
        if [tuple(slot.shape) for slot in state.slots] != shapes or state.image.shape != self.image.shape[1:]:
            raise ValueError("the checkpoint does not match this job's image size or optimizer")
        self.image.assign(state.image[None])
        for variable, value in zip(variables, state.slots, strict=True):
            variable.assign(value)

    def read_losses(self) -> dict[str, float]:
        """Losses of the current image as Python floats (one device-to-host read)."""
        return {name: float(value) for name, value in self.evaluate().items()}


def optimize(
    extractor: FeatureExtractor,
    targets: Targets,
    init: np.ndarray,
    *,
    steps: int,
    loss_config: LossConfig,
    adam: AdamConfig,
    mask: np.ndarray | None = None,
    tileable: bool = False,
    progress_every: int = 10,
    on_progress: Callable[[int, dict], None] | None = None,
    hooks: StepHooks | None = None,
    resume: TrainerState | None = None,
) -> StylizeResult:
    """Run Adam from ``init`` for ``steps``; report (step, losses) at 0, every N steps and at the end.

    With ``resume`` the loop continues from that state (its image replaces ``init``; the report starts at
    its step); ``hooks`` may pause it again with a fresh state, or checkpoint it every N steps.

    ``mask`` is an (h, w) weight in [0,1] (the content's alpha): masked-out pixels feed no statistics.
    An exception raised by ``on_progress`` stops the loop and propagates; ``hooks.should_stop`` is checked
    before every step and raises Canceled; images are read back only at ``hooks.snapshot_every`` steps.
    """
    _check_run(init, steps, progress_every)
    trainer = _Trainer(
        extractor=extractor,
        targets=targets,
        init=init,
        config=loss_config,
        adam=adam,
        mask=mask,
        tileable=tileable,
    )
    report = on_progress or (lambda step, losses: None)
    hooks = hooks or StepHooks()
    start = 0 if resume is None else resume.step
    if resume is not None:
        trainer.restore(resume)
    initial = final = trainer.read_losses()
    report(start, initial)
    for step in range(start + 1, steps + 1):
        _check_hooks(hooks, trainer, step - 1)
        trainer.step()
        if step % progress_every == 0 or step == steps:
            final = trainer.read_losses()
            report(step, final)
        if hooks.snapshot_every and step % hooks.snapshot_every == 0:
            hooks.on_snapshot(step, trainer.image.numpy()[0])
        if hooks.checkpoint_every and step % hooks.checkpoint_every == 0 and step < steps:
            hooks.on_checkpoint(trainer.state(step))
    image = np.asarray(trainer.image.numpy()[0], dtype=np.float32)
    return StylizeResult(image=image, initial_losses=initial, final_losses=final, steps_run=steps)


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
    """The seed method on one content and one style image, initialised from the content."""
    _check_image("content", content)
    _check_image("style", style)
    targets = Targets(
        style=style_targets(extractor, [style], [1.0]), content=content_targets(extractor, content)
    )
    report = on_progress or (lambda progress: None)
    return optimize(
        extractor,
        targets,
        content,
        steps=steps,
        loss_config=loss_config,
        adam=adam,
        progress_every=progress_every,
        on_progress=lambda step, losses: report(Progress(step, steps, losses)),
    )


def _check_hooks(hooks: StepHooks, trainer: _Trainer, done: int) -> None:
    """Before the next step: a cancel raises Canceled, a pause raises Paused with the state after ``done``."""
    if hooks.should_stop():
        raise Canceled(done, trainer.image.numpy()[0])
    if hooks.should_pause():
        raise Paused(trainer.state(done))


def _as_image(array: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(array, dtype=np.float32), 0.0, 1.0)


def _check_image(field: str, image: np.ndarray) -> None:
    if np.ndim(image) != 3 or np.shape(image)[2] != 3:
        raise InvalidInput(f"{field} must be an (h, w, 3) array; got shape {np.shape(image)}", field=field)


def _check_run(init: np.ndarray, steps: int, progress_every: int) -> None:
    _check_image("init", init)
    if steps < 0:
        raise InvalidInput(f"steps must be >= 0; got {steps}", field="steps")
    if progress_every < 1:
        raise InvalidInput(f"progress_every must be >= 1; got {progress_every}", field="progress_every")
