"""Compiled Adam steps, one per shape bucket, shared by every job of that bucket on a worker.

A compiled step is specialised only on what changes its graph (`StepSpec`: batch size, image size, the loss's
form, mask, seams). Images, Adam moments, targets, weights and hyper-parameters are its tensor inputs, so a
new job of a known bucket reuses the step instead of tracing VGG19's gradient again.

Several jobs of one bucket run together along the batch dimension. Every input is per job; the loss is summed
over jobs, so each image's gradient comes from its own loss alone, and a job that has finished or stopped is
frozen by its ``active`` flag (its image, moments and step count do not move).

Adam is written out (Keras's update, to the letter) so its state is plain per-job tensors: a batch of jobs
can sit at different steps, and a checkpoint is three arrays.
"""

import functools
from collections import Counter, OrderedDict
from dataclasses import dataclass

import tensorflow as tf

from worker.engine.lbfgs import lbfgs_update
from worker.engine.losses import LossConfig, loss_terms, weighted_total

# float16 gradients through 16 conv layers underflow without scaling; a fixed scale keeps them in range.
FLOAT16_LOSS_SCALE = 1024.0
# Compiled steps kept per worker; each holds one traced graph (a bucket the worker has seen recently).
STEP_CACHE_SIZE = 16


@dataclass(frozen=True)
class StepSpec:
    """What one compiled step is specialised on."""

    batch: int
    height: int
    width: int
    form: tuple[str, str, bool, bool]  # LossConfig.form
    masked: bool
    tileable: bool
    optimizer: str = "adam"  # adam | lbfgs
    history: int = 0  # L-BFGS pairs kept (a static shape of its state)

    @property
    def loss(self) -> LossConfig:
        """A LossConfig of this form (its weights are unused: the step takes them as inputs)."""
        return LossConfig(0.0, 0.0, 0.0, *self.form)


class CompiledSteps:
    """A worker's compiled steps and loss evaluations, by spec, least recently used dropped first."""

    def __init__(self, extractor, *, capacity: int = STEP_CACHE_SIZE) -> None:
        self._extractor = extractor
        self._capacity = capacity
        self._compiled: OrderedDict[StepSpec, tuple] = OrderedDict()
        self.traces: Counter[str] = Counter()  # how often each function was traced (tests read it)

    def step(self, spec: StepSpec):
        """``step(state, active, inputs) -> state``: Adam's (image, m, v, t), or L-BFGS's (see lbfgs.py)."""
        return self._functions(spec)[0]

    def value_and_gradient(self, spec: StepSpec):
        """``value_and_gradient(image, inputs) -> (total, gradient)``, per job: L-BFGS's first evaluation."""
        return self._functions(spec)[2]

    def losses(self, spec: StepSpec):
        """``losses(image, inputs) -> {total, style, content, tv}``, each of shape (batch,)."""
        return self._functions(spec)[1]

    def _functions(self, spec: StepSpec) -> tuple:
        if spec not in self._compiled:
            jit = bool(self._extractor.jit_compile)
            step = self._lbfgs_step if spec.optimizer == "lbfgs" else self._step
            self._compiled[spec] = (
                tf.function(functools.partial(step, spec), jit_compile=jit),
                tf.function(functools.partial(self._losses, spec, traced_for="losses"), jit_compile=jit),
                tf.function(functools.partial(self._value_and_gradient, spec), jit_compile=jit),
            )
            while len(self._compiled) > self._capacity:
                self._compiled.popitem(last=False)
        self._compiled.move_to_end(spec)
        return self._compiled[spec]

    def _losses(self, spec: StepSpec, image: tf.Tensor, inputs: dict, *, traced_for: str) -> dict:
        self.traces[traced_for] += 1  # runs only while tracing
        style_outputs, content_outputs = self._extractor(image, tileable=spec.tileable)
        terms = loss_terms(
            image=image,
            style_outputs=style_outputs,
            content_outputs=content_outputs,
            style_targets=inputs["style"],
            content_targets=inputs["content"],
            config=spec.loss,
            style_masks=inputs.get("style_masks"),
            content_masks=inputs.get("content_masks"),
            content_layer_weights=inputs["content_layers"],
        )
        return weighted_total(terms, tf.unstack(inputs["weights"]))

    def _value_and_gradient(self, spec: StepSpec, image: tf.Tensor, inputs: dict) -> tuple:
        """Per-job totals and their gradients with respect to the images."""
        scale = FLOAT16_LOSS_SCALE if self._extractor.precision == "float16" else 1.0
        # The tape watches only the image: the frozen VGG weights are constants and get no gradient.
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(image)
            totals = self._losses(spec, image, inputs, traced_for="step")["total"]
            scaled = tf.reduce_sum(totals) * scale
        gradient = tape.gradient(scaled, image) / scale
        # An overflow (float16) must not turn an image into NaN for good: such pixels skip this update.
        return totals, tf.where(tf.math.is_finite(gradient), gradient, tf.zeros_like(gradient))

    def _step(self, spec: StepSpec, state: tuple, active: tf.Tensor, inputs: dict) -> tuple:
        _, gradient = self._value_and_gradient(spec, state[0], inputs)
        return adam_update(state, gradient, active, inputs["adam"])

    def _lbfgs_step(self, spec: StepSpec, state: tuple, active: tf.Tensor, inputs: dict) -> tuple:
        evaluate = functools.partial(self._value_and_gradient, spec, inputs=inputs)
        return lbfgs_update(state, active, inputs["lbfgs"], evaluate)


def adam_update(state: tuple, gradient: tf.Tensor, active: tf.Tensor, hyper: tf.Tensor) -> tuple:
    """One Adam update per active job (Keras's formula), the image clipped to [0,1].

    ``state`` is (image, m, v, t) with t the steps done per job; ``hyper`` is (4, batch): learning rate,
    beta_1, beta_2, epsilon.
    """
    image, m, v, t = state
    learning_rate, beta_1, beta_2, epsilon = (tf.reshape(h, (-1, 1, 1, 1)) for h in tf.unstack(hyper))
    step = tf.reshape(t + 1.0, (-1, 1, 1, 1))
    alpha = learning_rate * tf.sqrt(1.0 - tf.pow(beta_2, step)) / (1.0 - tf.pow(beta_1, step))
    new_m = m + (gradient - m) * (1.0 - beta_1)
    new_v = v + (tf.square(gradient) - v) * (1.0 - beta_2)
    new_image = tf.clip_by_value(image - (new_m * alpha) / (tf.sqrt(new_v) + epsilon), 0.0, 1.0)
    keep = tf.reshape(active, (-1, 1, 1, 1)) > 0
    return (
        tf.where(keep, new_image, image),
        tf.where(keep, new_m, m),
        tf.where(keep, new_v, v),
        t + active,
    )


def compiled_steps(extractor) -> CompiledSteps:
    """The compiled steps that belong to ``extractor`` (made on first use, kept on it, dropped with it)."""
    if getattr(extractor, "compiled_steps", None) is None:
        extractor.compiled_steps = CompiledSteps(extractor)
    return extractor.compiled_steps
