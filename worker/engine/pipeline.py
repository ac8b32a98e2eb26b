"""A whole job's stylization: colour, style blends and scale, init, alpha and coarse-to-fine levels.

The levels run one after another, each initialised from the previous result upsampled, so memory is bounded
by the largest level; progress counts steps across all of them.
"""

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import tensorflow as tf

from shared.params import CHOICES
from worker.engine import color
from worker.engine.buckets import bucket_size
from worker.engine.checkpoint import Paused, TrainerState
from worker.engine.lbfgs import LbfgsConfig
from worker.engine.losses import LossConfig
from worker.engine.optimize import (
    AdamConfig,
    Canceled,
    Outcome,
    Progress,
    Run,
    StepHooks,
    StylizeResult,
    Targets,
    content_targets,
    optimize_many,
    style_targets,
)
from worker.engine.vgg import FeatureExtractor

# The job options' vocabulary, defined once with the validator (pure Python, no I/O).
INITS = CHOICES["init"]
COLOR_MODES = CHOICES["preserve_color"]


@dataclass(frozen=True)
class StylizeOptions:
    """Everything the engine needs to know about a job, in engine terms."""

    levels: tuple[
        tuple[int, int], ...
    ]  # (height, width) of each level, coarsest first; the last is the output
    steps: tuple[int, ...]  # per level (an int: the same at every level)
    loss: LossConfig
    adam: AdamConfig
    init: str = "content"  # feedforward: JobInput.warm_start, the feed-forward stylization
    seed: int = 0
    blend_weights: tuple[float, ...] = (1.0,)
    style_scale: float = 1.0
    preserve_color: str = "none"
    tileable: bool = False
    progress_every: int = 10
    lbfgs: LbfgsConfig | None = None  # set: L-BFGS, with ``histories`` pairs per level; else Adam
    histories: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.steps, int):
            object.__setattr__(self, "steps", (self.steps,) * len(self.levels))
        if len(self.steps) != len(self.levels):
            raise ValueError(f"{len(self.levels)} levels need as many step counts; got {self.steps}")

    @property
    def total_steps(self) -> int:
        """Steps over all levels."""
        return sum(self.steps)

    def offset(self, level: int) -> int:
        """Steps of the levels before ``level``: where its step 0 sits in the job's count."""
        return sum(self.steps[:level])

    def lbfgs_at(self, level: int) -> LbfgsConfig | None:
        """The L-BFGS settings at a level (its history may be shorter at large sizes), or None for Adam."""
        if self.lbfgs is None:
            return None
        return replace(self.lbfgs, history=self.histories[level]) if self.histories else self.lbfgs


# Given a level's (height, width) and a way to compute that level's style targets, return the targets:
# lets a caller cache them (a batch computes them once); the engine itself knows nothing of caches.
TargetProvider = Callable[[tuple[int, int], Callable[[], list[tf.Tensor]]], list[tf.Tensor]]


@dataclass(frozen=True)
class JobInput:
    """One job's images, options, callbacks and resume point (see ``stylize_job`` for each)."""

    content: np.ndarray
    styles: Sequence[np.ndarray]
    options: StylizeOptions
    alpha: np.ndarray | None = None
    on_progress: Callable[[Progress], None] | None = None
    style_targets_provider: TargetProvider | None = None
    hooks: StepHooks | None = None
    resume: TrainerState | None = None
    on_outcome: Callable[[Outcome], None] | None = None  # told the job's outcome as soon as it has one
    warm_start: np.ndarray | None = None  # (h, w, 3) in [0,1]: the start image of init "feedforward"


@dataclass
class _Job:
    """A job on its way through the levels: what every level starts from, and where it has got to."""

    options: StylizeOptions
    content: np.ndarray  # what the optimiser sees, at the output size
    styles: list[np.ndarray]
    mask: np.ndarray | None
    chroma: np.ndarray | None  # luminance mode: the content's colour, put back at the end
    warm: np.ndarray | None  # the feed-forward start at the output size (luminance mode: its grey)
    provide: TargetProvider
    report: Callable[[Progress], None]
    hooks: StepHooks | None
    resume: TrainerState | None
    on_outcome: Callable[[Outcome], None]
    image: np.ndarray | None = None
    initial: dict = field(default_factory=dict)
    final: dict = field(default_factory=dict)
    outcome: Outcome | None = None  # set when the job has ended (its last level, a cancel or a pause)
    evaluations: int = 0  # loss evaluations of the levels finished in this attempt (a resume starts at 0)

    @property
    def first_level(self) -> int:
        """The level it starts in (a resumed job skips the levels before its checkpoint's)."""
        return 0 if self.resume is None else self.resume.level


def stylize_job(
    extractor: FeatureExtractor,
    content: np.ndarray,
    styles: Sequence[np.ndarray],
    *,
    options: StylizeOptions,
    alpha: np.ndarray | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    style_targets_provider: TargetProvider | None = None,
    hooks: StepHooks | None = None,
    resume: TrainerState | None = None,
    warm_start: np.ndarray | None = None,
) -> StylizeResult:
    """Stylize ``content`` (h, w, 3 in [0,1]) with the blended ``styles`` at the last level's size.

    ``alpha`` (h, w uint8, resized like the content when its size differs) marks transparent pixels, which
    feed no statistics; the caller re-attaches it. ``hooks`` see steps counted across all levels, and
    checkpoints labelled with their level; ``resume`` skips the levels before its own and continues in it.
    ``warm_start`` is the start image of ``init: feedforward``.
    """
    job = JobInput(
        content,
        styles,
        options,
        alpha,
        on_progress,
        style_targets_provider,
        hooks,
        resume,
        warm_start=warm_start,
    )
    (outcome,) = stylize_many(extractor, [job])
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def stylize_many(extractor: FeatureExtractor, jobs: Sequence[JobInput]) -> list[Outcome]:
    """Stylize several jobs together, level by level, one compiled step for all.

    The jobs must share a `group_key` (same steps and levels' buckets; their sizes, weights and images may
    differ). Each job's outcome is its StylizeResult, or the Canceled or Paused that ended it alone; the
    others go on. A job's ``on_outcome`` hears it the moment it ends, before the others have.
    """
    if len({group_key(job.options) for job in jobs}) != 1:
        raise ValueError("jobs stylized together need the same steps, levels' buckets and loss form")
    states = [_prepare(job) for job in jobs]
    for index in range(len(jobs[0].options.levels)):
        due = [state for state in states if state.outcome is None and state.first_level <= index]
        if due:
            _run_level(extractor, due, index)
    return [state.outcome for state in states]


def group_key(options: StylizeOptions) -> tuple:
    """Jobs whose options give the same key can be optimised together (see ``stylize_many``)."""
    buckets = tuple(bucket_size(size, tileable=options.tileable) for size in options.levels)
    optimizer = (options.lbfgs is not None, options.histories)
    return (buckets, options.steps, options.tileable, options.progress_every, options.loss.form, optimizer)


def _prepare(job: JobInput) -> _Job:
    # The output size may differ from the content's (tileable sides are rounded to multiples of 16): colour
    # statistics, the chroma put back in luminance mode and the mask must all be at the output size.
    output = job.options.levels[-1]
    content = resize(job.content, output)
    mask = None if job.alpha is None else resize(job.alpha[..., None] / np.float32(255.0), output)[..., 0]
    content_in, styles_in, chroma = _color_inputs(content, job.styles, job.options, mask)
    return _Job(
        warm=_warm_start(job, output),
        options=job.options,
        content=content_in,
        styles=styles_in,
        mask=mask,
        chroma=chroma,
        provide=job.style_targets_provider or (lambda size, compute: compute()),
        report=job.on_progress or (lambda progress: None),
        hooks=job.hooks,
        resume=job.resume,
        on_outcome=job.on_outcome or (lambda outcome: None),
    )


def _run_level(extractor, jobs: list[_Job], index: int) -> None:
    """One level of every job given, optimised together at the level's bucket size."""
    shared = jobs[0].options
    # With a mask on any job, the others get an all-ones mask: the same losses, one compiled step.
    masked = any(job.mask is not None for job in jobs)
    runs = [_level_run(extractor, job, index, masked=masked) for job in jobs]
    optimize_many(
        extractor,
        runs,
        steps=shared.steps[index],
        tileable=shared.tileable,
        progress_every=shared.progress_every,
    )


def _level_ended(job: _Job, index: int, outcome: Outcome) -> None:
    """Keep a finished level's image for the next one, or end the job: its last level, a cancel, a pause."""
    _record(job, outcome, index)
    if job.outcome is None and index == len(job.options.levels) - 1:
        job.outcome = _result(job)
    if job.outcome is not None:
        job.on_outcome(job.outcome)


def _level_run(extractor, job: _Job, index: int, *, masked: bool) -> Run:
    """A job's optimisation at one level, at the level's bucket size (reported at the level's size)."""
    options = job.options
    size = options.levels[index]
    work = bucket_size(size, tileable=options.tileable)
    content = resize(job.content, work)
    styles = [resize(style, _style_size(style, work, options.style_scale)) for style in job.styles]
    style = job.provide(work, lambda: style_targets(extractor, styles, options.blend_weights))
    targets = Targets(style=style, content=content_targets(extractor, content, tileable=options.tileable))
    resume = job.resume if job.resume is not None and index == job.resume.level else None
    if resume is not None or job.image is None:
        init = _init_image(options, content, styles[0], job.warm)
    else:
        init = resize(job.image, work)
    offset = options.offset(index)
    return Run(
        targets=targets,
        init=init,
        loss=options.loss,
        adam=options.adam,
        lbfgs=options.lbfgs_at(index),
        mask=_level_mask(job.mask, work, masked),
        hooks=_level_hooks(job.hooks, index, offset, size),
        on_progress=functools.partial(_relay, job.report, options, offset),
        resume=resume,
        on_end=functools.partial(_level_ended, job, index),
    )


def _level_mask(mask: np.ndarray | None, work: tuple[int, int], masked: bool) -> np.ndarray | None:
    if mask is None:
        return np.ones(work, np.float32) if masked else None
    return resize(mask[..., None], work)[..., 0]


def _record(job: _Job, outcome: Outcome, index: int) -> None:
    offset = job.options.offset(index)
    if isinstance(outcome, Canceled):
        job.outcome = Canceled(offset + outcome.step, resize(outcome.image, job.options.levels[index]))
    elif isinstance(outcome, Paused):
        job.outcome = Paused(outcome.state.at_level(index))
    else:
        job.image, job.final = outcome.image, outcome.final_losses
        job.initial = job.initial or outcome.initial_losses
        job.evaluations += outcome.evaluations


def _result(job: _Job) -> StylizeResult:
    """The finished job's stylised image at the output size (the fast mode's: the feed-forward image as it is,
    not through the bucket's resizes)."""
    unoptimised = job.options.total_steps == 0 and job.warm is not None
    image = job.warm if unoptimised else resize(job.image, job.options.levels[-1])
    if job.chroma is not None:
        image = color.recombine_luminance(image, job.chroma).astype(np.float32)
    return StylizeResult(
        image=image,
        initial_losses=job.initial,
        final_losses=job.final,
        steps_run=job.options.total_steps,
        evaluations=job.evaluations,
    )


def _relay(report, options: StylizeOptions, offset: int, step: int, losses: dict) -> None:
    if step == 0 and offset > 0:
        return  # a later level's start is the previous level's end, already reported
    report(Progress(step=offset + step, total_steps=options.total_steps, losses=losses))


def _level_hooks(hooks: StepHooks | None, level: int, offset: int, size) -> StepHooks:
    """The job's hooks seen from one level: steps counted across levels, snapshots at the level's size."""
    if hooks is None:
        return StepHooks()
    return replace(
        hooks,
        on_snapshot=lambda step, image: hooks.on_snapshot(offset + step, resize(image, size)),
        on_checkpoint=lambda state: hooks.on_checkpoint(state.at_level(level)),
    )


def _color_inputs(content, styles, options: StylizeOptions, mask):
    """The images the optimiser sees, and the content chroma to restore afterwards (luminance mode)."""
    mode = options.preserve_color
    if mode == "style":  # the content in the style's colours: the start and the content target
        recolored = color.recolor_to_palette(content, list(styles), options.blend_weights, mask)
        return recolored, list(styles), None
    if mode == "histogram":
        return content, [color.match_color_histogram(style, content, mask) for style in styles], None
    if mode == "luminance":
        pairs = [color.luminance_inputs(content, style, mask) for style in styles]
        return pairs[0][0], [style_y3 for _, style_y3, _ in pairs], pairs[0][2]
    return content, list(styles), None


def _warm_start(job: JobInput, output: tuple[int, int]) -> np.ndarray | None:
    """The feed-forward start at the output size; in luminance mode its grey, as the optimiser sees it."""
    if job.options.init != "feedforward":
        return None
    if job.warm_start is None:
        if job.resume is not None:
            return None  # the checkpoint's image is the start
        raise ValueError("init 'feedforward' needs the job's warm_start image")
    warm = resize(job.warm_start, output)
    return color.grey_luminance(warm) if job.options.preserve_color == "luminance" else warm


def _init_image(
    options: StylizeOptions, content: np.ndarray, style: np.ndarray, warm: np.ndarray | None
) -> np.ndarray:
    if options.init == "feedforward" and warm is not None:
        return resize(warm, content.shape[:2])
    if options.init == "noise":
        return np.random.default_rng(options.seed).random(content.shape, dtype=np.float32)
    if options.init == "style":
        return resize(style, content.shape[:2])
    return content


def _style_size(style: np.ndarray, size: tuple[int, int], scale: float) -> tuple[int, int]:
    """The style resized so its longest side is ``scale`` times the level's longest side."""
    longest = max(1, round(max(size) * scale))
    height, width = style.shape[:2]
    ratio = longest / max(height, width)
    return max(16, round(height * ratio)), max(16, round(width * ratio))


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an (h, w, c) float image to (height, width), antialiased when shrinking."""
    if tuple(image.shape[:2]) == tuple(size):
        return np.asarray(image, dtype=np.float32)
    resized = tf.image.resize(np.asarray(image, dtype=np.float32), size, method="bilinear", antialias=True)
    return np.clip(resized.numpy(), 0.0, 1.0)
