"""The style transfer loop: Adam on the image pixels, clipped to [0,1], with sparse progress reports."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from shared.errors import InvalidInput
from worker.engine.checkpoint import Paused, TrainerState
from worker.engine.lbfgs import LbfgsConfig
from worker.engine.losses import LossConfig, blend_grams, gram_matrix, masks_at
from worker.engine.steps import StepSpec, compiled_steps
from worker.engine.vgg import STYLE_LAYERS, FeatureExtractor, feature_sizes


@dataclass(frozen=True)
class AdamConfig:
    """Adam hyper-parameters; the defaults are the TF tutorial's."""

    learning_rate: float = 0.02
    beta_1: float = 0.99
    beta_2: float = 0.999
    # Large on purpose: it damps steps on pixels with tiny gradients, as in the tutorial.
    epsilon: float = 0.1


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
    evaluations: int = 0  # loss-and-gradient evaluations the optimiser spent (Adam: one per step)


class Canceled(Exception):
    """The caller asked the loop to stop; carries the step reached and the image at that step."""

    def __init__(self, step: int, image: np.ndarray) -> None:
        super().__init__(f"stopped at step {step}")
        self.step = step
        self.image = image


@dataclass(frozen=True)
class StepHooks:
    """Per-step callbacks: stop and pause checks (every step), snapshots and checkpoints (every N steps, or
    when ``checkpoint_due`` says so).

    ``should_stop`` true raises Canceled; ``should_pause`` true raises Paused with the state to resume from.
    """

    should_stop: Callable[[], bool] = lambda: False
    snapshot_every: int = 0
    on_snapshot: Callable[[int, np.ndarray], None] = lambda step, image: None
    should_pause: Callable[[], bool] = lambda: False
    checkpoint_every: int = 0
    checkpoint_due: Callable[[], bool] = lambda: False  # also checkpoint now (e.g. enough seconds passed)
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
    per_style = [[gram_matrix(f) for f in extractor.features(_as_image(style)[None])[0]] for style in styles]
    return per_style[0] if len(per_style) == 1 else blend_grams(per_style, weights)


def content_targets(
    extractor: FeatureExtractor, content: np.ndarray, *, tileable: bool = False
) -> list[tf.Tensor]:
    """The content layer's features of the content image."""
    return extractor.features(_as_image(content)[None], tileable=tileable)[1]


def _ignore_progress(step: int, losses: dict) -> None:
    return None


def _ignore_end(outcome) -> None:
    return None


@dataclass(frozen=True)
class Run:
    """One job's part in an optimisation: its targets, start, weights, optimiser, mask, hooks, reports.

    ``lbfgs`` set runs L-BFGS (a step is then one iteration, of one or more evaluations), else Adam;
    ``on_progress(step, losses)`` sees this job's losses; ``on_end(outcome)`` its outcome, as soon as it has
    one; ``resume`` continues from a saved state.
    """

    targets: Targets
    init: np.ndarray
    loss: LossConfig
    adam: AdamConfig
    mask: np.ndarray | None = None
    hooks: StepHooks = field(default_factory=StepHooks)
    on_progress: Callable[[int, dict], None] = _ignore_progress
    resume: TrainerState | None = None
    on_end: Callable[[object], None] = _ignore_end
    lbfgs: LbfgsConfig | None = None

    @property
    def optimizer(self) -> str:
        """``adam`` or ``lbfgs``."""
        return "adam" if self.lbfgs is None else "lbfgs"


Outcome = StylizeResult | Canceled | Paused


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
    lbfgs: LbfgsConfig | None = None,
) -> StylizeResult:
    """Run Adam (or L-BFGS, when ``lbfgs`` is given) from ``init`` for ``steps``; report (step, losses) at 0,
    every N steps, at every snapshot step, at the end, and at the step a cancel stops it.

    With ``resume`` the loop continues from that state (its image replaces ``init``; the report starts at
    its step); ``hooks`` may pause it again with a fresh state, or checkpoint it every N steps.

    ``mask`` is an (h, w) weight in [0,1] (the content's alpha): masked-out pixels feed no statistics.
    An exception raised by ``on_progress`` stops the loop and propagates; ``hooks.should_stop`` is checked
    before every step and raises Canceled; images are read back only at ``hooks.snapshot_every`` steps.
    """
    run = Run(
        targets=targets,
        init=init,
        loss=loss_config,
        adam=adam,
        mask=mask,
        hooks=hooks or StepHooks(),
        on_progress=on_progress or _ignore_progress,
        resume=resume,
        lbfgs=lbfgs,
    )
    (outcome,) = optimize_many(
        extractor, [run], steps=steps, tileable=tileable, progress_every=progress_every
    )
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def optimize_many(
    extractor: FeatureExtractor,
    runs: Sequence[Run],
    *,
    steps: int,
    tileable: bool = False,
    progress_every: int = 10,
) -> list[Outcome]:
    """Optimise several jobs of one size together, one compiled step for all; an outcome per job.

    Each job keeps its own targets, weights, Adam state, step count, reports and hooks: a cancel or pause
    ends that job alone (its outcome is the Canceled or Paused, handed to its ``on_end`` at once), and the
    others go on. Every result equals what ``optimize`` gives the job alone, up to float rounding.
    """
    for run in runs:
        _check_run(run.init, steps, progress_every)
    batch = _Batch(compiled_steps(extractor), runs, tileable=tileable)
    ledger = _Ledger(runs, batch.read_losses(), list(batch.done))
    for index, run in enumerate(runs):
        run.on_progress(batch.done[index], ledger.initials[index])
    while True:
        _end_due(batch, ledger, steps)
        stepped = batch.active_jobs()
        if not stepped:
            return ledger.outcomes
        batch.step()
        ledger.note(_after_step(batch, runs, stepped, steps, progress_every), batch.done)


class _Ledger:
    """Each job's first and latest losses, and its outcome once it has one."""

    def __init__(self, runs: Sequence[Run], initials: list[dict], starts: list[int]) -> None:
        self.runs = runs
        self.initials = initials
        self.finals = dict(enumerate(initials))
        self.reported_at = starts  # the step of each job's latest report (its initial one at first)
        self.outcomes: list[Outcome | None] = [None] * len(runs)

    def note(self, read: dict[int, dict], done: list[int]) -> None:
        """Keep the losses just reported, and the steps they were reported at."""
        self.finals.update(read)
        for index in read:
            self.reported_at[index] = done[index]

    def report_stop(self, batch: "_Batch", index: int) -> None:
        """Report a stopped job's step, unless it just was: its last image then has its own losses."""
        done = batch.done[index]
        if self.reported_at[index] == done:
            return
        self.note({index: batch.read_losses()[index]}, batch.done)
        self.runs[index].on_progress(done, self.finals[index])

    def end(self, index: int, outcome: Outcome) -> None:
        """Record a job's outcome and hand it to the job's ``on_end``."""
        self.outcomes[index] = outcome
        self.runs[index].on_end(outcome)


def _end_due(batch: "_Batch", ledger: _Ledger, steps: int) -> None:
    """Before a step: end each active job that is done, canceled or paused."""
    for index in batch.active_jobs():
        done, hooks = batch.done[index], ledger.runs[index].hooks
        if done >= steps:
            image = np.asarray(batch.image(index), dtype=np.float32)
            evaluations = batch.evaluations(index)
            outcome = StylizeResult(image, ledger.initials[index], ledger.finals[index], steps, evaluations)
        elif hooks.should_stop():
            ledger.report_stop(batch, index)
            outcome = Canceled(done, batch.image(index))
        elif hooks.should_pause():
            outcome = Paused(batch.state(index))
        else:
            continue
        batch.finish(index)
        ledger.end(index, outcome)


def _after_step(
    batch: "_Batch", runs: Sequence[Run], stepped: list[int], steps: int, progress_every: int
) -> dict[int, dict]:
    """Reports, snapshots and checkpoints due after a step; the losses read, by job."""
    read: dict[int, dict] = {}
    all_losses = None
    for index in stepped:
        step, hooks = batch.done[index], runs[index].hooks
        snapshot = bool(hooks.snapshot_every) and step % hooks.snapshot_every == 0
        # A snapshot's step is also reported, so the losses shown beside an image are that image's.
        if step % progress_every == 0 or step == steps or snapshot:
            all_losses = all_losses or batch.read_losses()  # one device read for every job due
            read[index] = all_losses[index]
            runs[index].on_progress(step, read[index])
        if snapshot:
            hooks.on_snapshot(step, batch.image(index))
        by_steps = hooks.checkpoint_every and step % hooks.checkpoint_every == 0
        if step < steps and (by_steps or hooks.checkpoint_due()):
            hooks.on_checkpoint(batch.state(index))
    return read


class _Batch:
    """The images, optimiser state and inputs of the jobs optimised together, and their compiled step."""

    def __init__(self, compiled, runs: Sequence[Run], *, tileable: bool) -> None:
        self._spec = _spec(runs, tileable)
        self._step = compiled.step(self._spec)
        self._losses = compiled.losses(self._spec)
        self._inputs = _inputs(runs)
        starts = [_start(run, self._spec.history) for run in runs]
        self.done = [int(state.step) for state in starts]
        self._state = tuple(
            tf.constant(np.stack(parts)) for parts in zip(*(state.arrays for state in starts), strict=True)
        )
        if self._spec.optimizer == "lbfgs":
            fresh = [not state.resumed for state in starts]
            self._state = _first_evaluation(
                compiled.value_and_gradient(self._spec), self._state, fresh, self._inputs
            )
        self._active = np.ones(len(runs), np.float32)
        self._active_tensor = tf.constant(self._active)

    def active_jobs(self) -> list[int]:
        """Indexes of the jobs still optimising."""
        return [int(index) for index in np.flatnonzero(self._active)]

    def finish(self, index: int) -> None:
        """Freeze a job: later steps leave it as it is."""
        self._active[index] = 0.0
        self._active_tensor = tf.constant(self._active)

    def step(self) -> None:
        """One update (an Adam step or an L-BFGS iteration) of every active job."""
        self._state = self._step(self._state, self._active_tensor, self._inputs)
        for index in self.active_jobs():
            self.done[index] += 1

    def read_losses(self) -> list[dict[str, float]]:
        """Every job's losses as Python floats (one device-to-host read)."""
        values = {name: value.numpy() for name, value in self._losses(self._state[0], self._inputs).items()}
        return [
            {name: float(value[index]) for name, value in values.items()} for index in range(len(self.done))
        ]

    def image(self, index: int) -> np.ndarray:
        """A job's current image, (h, w, 3) float32."""
        return self._state[0][index].numpy()

    def state(self, index: int) -> TrainerState:
        """A job's resumable state (level 0; the pipeline labels levels)."""
        image, *slots = (part[index].numpy() for part in self._state)
        return TrainerState(
            level=0, step=self.done[index], image=image, slots=tuple(slots), optimizer=self._spec.optimizer
        )

    def evaluations(self, index: int) -> int:
        """Loss evaluations a job's optimiser has spent (Adam: one per step)."""
        if self._spec.optimizer == "lbfgs":
            return int(self._state[-1][index].numpy())
        return self.done[index]


@dataclass(frozen=True)
class _Start:
    step: int
    arrays: tuple[np.ndarray, ...]  # the optimiser's state: image first
    resumed: bool = False


def _start(run: Run, history: int) -> _Start:
    """Where a job's optimisation starts: its init with an empty optimiser state, or its resumed state."""
    image = _as_image(run.init)
    fresh = _fresh_state(image, run.optimizer, history)
    if run.resume is None:
        return _Start(0, fresh)
    state = run.resume
    shapes = [np.shape(part) for part in (state.image, *state.slots)]
    if state.optimizer != run.optimizer or shapes != [np.shape(part) for part in fresh]:
        raise ValueError("the checkpoint does not match this job's image size or optimizer")
    slots = tuple(np.asarray(slot, np.float32) for slot in state.slots)
    return _Start(state.step, (np.asarray(state.image, np.float32), *slots), resumed=True)


def _fresh_state(image: np.ndarray, optimizer: str, history: int) -> tuple[np.ndarray, ...]:
    """Adam: (image, m, v, t); L-BFGS: (image, loss, gradient, S, Y, pairs, evaluations), all zero."""
    zeros = np.zeros_like(image)
    if optimizer == "adam":
        return (image, zeros, zeros, np.float32(0))
    pairs = np.zeros((history, *image.shape), np.float32)
    return (image, np.float32(0), zeros, pairs, pairs, np.float32(0), np.float32(0))


def _first_evaluation(value_and_gradient, state: tuple, fresh: list[bool], inputs: dict) -> tuple:
    """L-BFGS needs the loss and gradient at its start: evaluate them for the jobs that are not resumed."""
    if not any(fresh):
        return state
    totals, gradient = value_and_gradient(state[0], inputs)
    chosen = tf.constant(fresh)
    loss = tf.where(chosen, totals, state[1])
    gradient = tf.where(tf.reshape(chosen, (-1, 1, 1, 1)), gradient, state[2])
    evaluations = state[6] + tf.cast(chosen, tf.float32)
    return (state[0], loss, gradient, *state[3:6], evaluations)


def _spec(runs: Sequence[Run], tileable: bool) -> StepSpec:
    """The compiled step's key; every job must share its image size, mask presence and loss form."""
    shapes = {np.shape(run.init) for run in runs}
    forms = {run.loss.form for run in runs}
    masked = {run.mask is not None for run in runs}
    optimizers = {(run.optimizer, run.lbfgs.history if run.lbfgs else 0) for run in runs}
    if len(shapes) != 1 or len(forms) != 1 or len(masked) != 1 or len(optimizers) != 1:
        raise ValueError(
            "jobs optimised together need one image size, one loss form, one optimiser (and L-BFGS "
            "history) and masks on all or none"
        )
    height, width = np.shape(runs[0].init)[:2]
    optimizer, history = optimizers.pop()
    return StepSpec(len(runs), height, width, forms.pop(), masked.pop(), tileable, optimizer, history)


def _inputs(runs: Sequence[Run]) -> dict[str, object]:
    """The step's per-job tensors: targets, mask, (3, batch) loss weights, (4, batch) Adam settings."""
    inputs = {
        "style": _stack_layers([run.targets.style for run in runs]),
        "content": _stack_layers([run.targets.content for run in runs]),
        "weights": tf.constant(np.array([run.loss.weights for run in runs], np.float32).T),
        "content_layers": tf.constant(
            np.array([run.loss.content_layer_weights for run in runs], np.float32).T
        ),
        "adam": tf.constant(np.array([_adam_row(run.adam) for run in runs], np.float32).T),
    }
    if runs[0].lbfgs is not None:
        rows = [(run.lbfgs.max_evaluations, run.lbfgs.initial_step) for run in runs]
        inputs["lbfgs"] = tf.constant(np.array(rows, np.float32).T)
    if runs[0].mask is not None:
        mask = tf.constant(np.stack([run.mask for run in runs])[..., None], tf.float32)
        layers = masks_at(mask, feature_sizes(*mask.shape[1:3]))
        inputs["style_masks"], inputs["content_masks"] = (
            layers[: len(STYLE_LAYERS)],
            layers[len(STYLE_LAYERS) :],
        )
    return inputs


def _stack_layers(per_job: Sequence[Sequence[tf.Tensor]]) -> list[tf.Tensor]:
    """Per layer, every job's tensor (each with a batch dimension of 1) along the batch axis."""
    return [tf.concat([tf.cast(x, tf.float32) for x in layer], 0) for layer in zip(*per_job, strict=True)]


def _adam_row(adam: AdamConfig) -> tuple[float, float, float, float]:
    return (adam.learning_rate, adam.beta_1, adam.beta_2, adam.epsilon)


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
