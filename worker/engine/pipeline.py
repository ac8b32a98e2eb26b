"""A whole job's stylization: colour, style blends and scale, init, alpha and coarse-to-fine levels.

The levels run one after another, each initialised from the previous result upsampled, so memory is bounded
by the largest level; progress counts steps across all of them.
"""

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import tensorflow as tf

from worker.engine import color
from worker.engine.checkpoint import Paused, TrainerState
from worker.engine.losses import LossConfig
from worker.engine.optimize import (
    AdamConfig,
    Canceled,
    Progress,
    StepHooks,
    StylizeResult,
    Targets,
    content_targets,
    optimize,
    style_targets,
)
from worker.engine.vgg import FeatureExtractor

INITS = ("content", "noise", "style")
COLOR_MODES = ("none", "luminance", "histogram")


@dataclass(frozen=True)
class StylizeOptions:
    """Everything the engine needs to know about a job, in engine terms."""

    levels: tuple[
        tuple[int, int], ...
    ]  # (height, width) of each level, coarsest first; the last is the output
    steps: int  # per level
    loss: LossConfig
    adam: AdamConfig
    init: str = "content"
    seed: int = 0
    blend_weights: tuple[float, ...] = (1.0,)
    style_scale: float = 1.0
    preserve_color: str = "none"
    tileable: bool = False
    progress_every: int = 10

    @property
    def total_steps(self) -> int:
        """Steps over all levels."""
        return self.steps * len(self.levels)


# Given a level's (height, width) and a way to compute that level's style targets, return the targets:
# lets a caller cache them (a batch computes them once); the engine itself knows nothing of caches.
TargetProvider = Callable[[tuple[int, int], Callable[[], list[tf.Tensor]]], list[tf.Tensor]]


@dataclass(frozen=True)
class _Inputs:
    """What every level starts from: the optimiser's content and styles, the mask, the target provider."""

    content: np.ndarray
    styles: list[np.ndarray]
    mask: np.ndarray | None
    provide: TargetProvider


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
) -> StylizeResult:
    """Stylize ``content`` (h, w, 3 in [0,1]) with the blended ``styles`` at the last level's size.

    ``alpha`` (h, w uint8, resized like the content when its size differs) marks transparent pixels, which
    feed no statistics; the caller re-attaches it. ``hooks`` see steps counted across all levels, and
    checkpoints labelled with their level; ``resume`` skips the levels before its own and continues in it.
    """
    # The output size may differ from the content's (tileable sides are rounded to multiples of 16): colour
    # statistics, the chroma put back in luminance mode and the mask must all be at the output size.
    content = resize(content, options.levels[-1])
    mask = None if alpha is None else resize(alpha[..., None] / np.float32(255.0), options.levels[-1])[..., 0]
    content_in, styles_in, chroma = _color_inputs(content, styles, options.preserve_color, mask)
    inputs = _Inputs(content_in, styles_in, mask, style_targets_provider or (lambda size, compute: compute()))
    report = on_progress or (lambda progress: None)
    image, initial, final = None, {}, {}
    first = 0 if resume is None else resume.level
    for index, size in enumerate(options.levels[first:], start=first):
        offset = index * options.steps
        relay = functools.partial(_relay, report, options, offset)
        at = resume if resume is not None and index == resume.level else None
        try:
            level = _run_level(
                extractor, inputs, image, size, options, relay, _level_hooks(hooks, index, offset), at
            )
        except Canceled as stop:
            raise Canceled(offset + stop.step, stop.image) from None
        except Paused as pause:
            raise Paused(pause.state.at_level(index)) from None
        image, initial, final = level.image, initial or level.initial_losses, level.final_losses
    if chroma is not None:
        image = color.recombine_luminance(image, chroma).astype(np.float32)
    return StylizeResult(
        image=image, initial_losses=initial, final_losses=final, steps_run=options.total_steps
    )


def _relay(report, options: StylizeOptions, offset: int, step: int, losses: dict) -> None:
    if step == 0 and offset > 0:
        return  # a later level's start is the previous level's end, already reported
    report(Progress(step=offset + step, total_steps=options.total_steps, losses=losses))


def _level_hooks(hooks: StepHooks | None, level: int, offset: int) -> StepHooks | None:
    if hooks is None:
        return None
    return replace(
        hooks,
        on_snapshot=lambda step, image: hooks.on_snapshot(offset + step, image),
        on_checkpoint=lambda state: hooks.on_checkpoint(state.at_level(level)),
    )


def _run_level(
    extractor, inputs: _Inputs, previous, size, options: StylizeOptions, report, hooks=None, resume=None
):
    content = resize(inputs.content, size)
    styles = [resize(style, _style_size(style, size, options.style_scale)) for style in inputs.styles]
    style = inputs.provide(size, lambda: style_targets(extractor, styles, options.blend_weights))
    targets = Targets(style=style, content=content_targets(extractor, content, tileable=options.tileable))
    if resume is not None:
        init = resume.image
    elif previous is None:
        init = _init_image(options, content, styles[0])
    else:
        init = resize(previous, size)
    mask = None if inputs.mask is None else resize(inputs.mask[..., None], size)[..., 0]
    return optimize(
        extractor,
        targets,
        init,
        steps=options.steps,
        loss_config=options.loss,
        adam=options.adam,
        mask=mask,
        tileable=options.tileable,
        progress_every=options.progress_every,
        on_progress=report,
        hooks=hooks,
        resume=resume,
    )


def _color_inputs(content, styles, mode: str, mask):
    """The images the optimiser sees, and the content chroma to restore afterwards (luminance mode)."""
    if mode == "histogram":
        return content, [color.match_color_histogram(style, content, mask) for style in styles], None
    if mode == "luminance":
        pairs = [color.luminance_inputs(content, style, mask) for style in styles]
        return pairs[0][0], [style_y3 for _, style_y3, _ in pairs], pairs[0][2]
    return content, list(styles), None


def _init_image(options: StylizeOptions, content: np.ndarray, style: np.ndarray) -> np.ndarray:
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
