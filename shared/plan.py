"""Coarse-to-fine schedule for high-resolution jobs, and an analytic estimate of its peak memory.

Pure Python, so the API can validate and describe a plan without TensorFlow. Levels run one after another
(each level's result, upsampled, is the next level's init), so a plan's peak memory is its largest level's.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from shared.errors import InvalidInput
from shared.images import target_size

# Smallest short side VGG19 can take, in pixels: it pools 4 times (floor halving) before block5, so 16 px
# leaves block5 1x1 and 15 px would leave it 0x0. Every level, the finest included, must reach it.
VGG_MIN_SIDE = 16
# Default smallest short side of a coarser level (one that only seeds the next): 32 px keeps block5 at 2x2,
# so its features still carry some layout. The finest level is the job's own size, bounded by VGG_MIN_SIDE
# only (uploads are held to Settings.min_image_side already). Tests at tiny sizes may pass min_side=16.
MIN_LEVEL_SIDE = 32

# VGG19 up to block5_conv2 as (output channels, pools before it), in order; pools have no parameters.
_CONV_LAYERS = (
    *((64, 0),) * 2,
    *((128, 1),) * 2,
    *((256, 2),) * 4,
    *((512, 3),) * 4,
    *((512, 4),) * 2,
)
_POOLS = ((64, 1), (128, 2), (256, 3), (512, 4))  # (channels, pools including it) after each block
# Conv kernels + biases of the whole VGG19 without its top (20,024,384 parameters): the full model is built
# to load the weights, even though the extractor only reads up to block5_conv2.
_VGG19_NOTOP_PARAMETERS = 20_024_384
_GRAM_TARGET_FLOATS = 64**2 + 128**2 + 256**2 + 512**2 + 512**2  # one (c, c) Gram per style layer
_FLOAT32_BYTES = 4
# Forward activations kept for the backward pass: the conv output and its ReLU output (x2); the backward
# pass holds gradients of about the same size again (x1).
_ACTIVATION_COPIES = 3
# Image-sized float32 tensors: the variable, its gradient, Adam's two moments, the content and style inputs.
_IMAGE_COPIES = 6
# L-BFGS history may take at most this many bytes per level (2 * m * pixels * 3 floats). It is also most of a
# checkpoint, uploaded every checkpoint_every steps: 64 MiB keeps m = 10 up to 528x528 (the default max_dim,
# 512, included), and shrinks it beyond (m = 2 from 1182x1182, 4 at 1024x1024).
LBFGS_HISTORY_BUDGET_BYTES = 64 * 2**20
MIN_LBFGS_HISTORY = 2
# A job's steps over all its levels: 5 levels of the largest `steps` (20,000) at a factor of 1.
MAX_TOTAL_STEPS = 100_000


@dataclass(frozen=True)
class Level:
    """One resolution of a plan: its size in pixels and its optimisation steps."""

    width: int
    height: int
    steps: int
    history: int = 0  # L-BFGS pairs kept at this level (0: Adam, or no optimisation)


@dataclass(frozen=True)
class Plan:
    """Levels coarsest first, the steps of all levels together, and the largest level's memory estimate."""

    levels: tuple[Level, ...]
    total_steps: int
    peak_memory_bytes: int

    def offset(self, level: int) -> int:
        """Steps of the levels before ``level``: where its step 0 sits in the job's count."""
        return sum(lv.steps for lv in self.levels[:level])

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready form, as the job record stores it and the API returns it."""
        return {
            "levels": [
                {"width": lv.width, "height": lv.height, "steps": lv.steps, "history": lv.history}
                for lv in self.levels
            ],
            "total_steps": self.total_steps,
            "peak_memory_bytes": self.peak_memory_bytes,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> "Plan":
        """Rebuild a plan from `to_dict`'s form (e.g. in the worker, from the job record)."""
        levels = tuple(
            Level(int(lv["width"]), int(lv["height"]), int(lv["steps"]), int(lv.get("history", 0)))
            for lv in data["levels"]
        )
        return cls(levels, int(data["total_steps"]), int(data["peak_memory_bytes"]))


def plan_levels(
    width: int,
    height: int,
    *,
    max_dim: int,
    levels: int,
    steps: int,
    min_side: int = MIN_LEVEL_SIDE,
    multiple: int = 1,
    coarse_step_factor: float = 1.0,
    history: int = 0,
) -> Plan:
    """Plan `levels` resolutions, each halving the longest side of the next, the finest at max_dim.

    ``levels`` is the most levels: coarser ones whose short side would be under ``min_side`` are dropped, so
    a small image runs fewer. The finest level runs ``steps``; each coarser one ``coarse_step_factor`` times
    the next finer level's (rounded), so most evaluations are spent where they are cheap. ``history`` > 0
    plans L-BFGS with that many pairs, fewer at a level where they would pass LBFGS_HISTORY_BUDGET_BYTES.

    Raises InvalidInput naming max_dim when the finest level is under VGG_MIN_SIDE, and naming
    coarse_step_factor when the levels' steps would add up to more than MAX_TOTAL_STEPS. ``multiple``
    rounds every side to a multiple of it (16 for seamless tiles: VGG's four pools then drop no edge row or
    column, so the wrap-around padding stays exact).
    """
    if levels < 1:
        raise InvalidInput(f"levels must be at least 1, got {levels}", field="levels")
    if steps < 1:
        raise InvalidInput(f"steps must be at least 1, got {steps}", field="steps")
    sizes = _level_sizes(width, height, max_dim=max_dim, levels=levels, multiple=multiple)
    while len(sizes) > 1 and min(sizes[0]) < max(min_side, VGG_MIN_SIDE):
        sizes = sizes[1:]  # a small image (a sprite in a batch) runs fewer levels rather than failing
    levels = len(sizes)
    _check_smallest(sizes, max_dim=max_dim)
    counts = [max(1, round(steps * coarse_step_factor**k)) for k in reversed(range(levels))]
    if sum(counts) > MAX_TOTAL_STEPS:
        message = (
            f"{levels} levels of {steps} steps with coarse_step_factor {coarse_step_factor:g} add up to "
            f"{sum(counts)} steps; at most {MAX_TOTAL_STEPS} are allowed"
        )
        raise InvalidInput(message, field="coarse_step_factor")
    planned = tuple(
        Level(w, h, count, lbfgs_history(w, h, history)) for (w, h), count in zip(sizes, counts, strict=True)
    )
    peak = max(_level_bytes(level) for level in planned)
    return Plan(levels=planned, total_steps=sum(counts), peak_memory_bytes=peak)


def single_image_plan(width: int, height: int, *, max_dim: int) -> Plan:
    """The plan of a job that only runs the feed-forward model: one level at the output size, no steps."""
    w, h = target_size(width, height, max_dim)
    return Plan(levels=(Level(w, h, 0),), total_steps=0, peak_memory_bytes=_FLOAT32_BYTES * 6 * 3 * w * h)


def lbfgs_history(width: int, height: int, wanted: int) -> int:
    """The L-BFGS pairs kept at width x height: ``wanted``, fewer where they would pass the budget."""
    if wanted <= 0:
        return 0
    fits = LBFGS_HISTORY_BUDGET_BYTES // _history_bytes(width, height, 1)
    return min(wanted, max(MIN_LBFGS_HISTORY, fits))


def _level_bytes(level: Level) -> int:
    """One level's peak estimate: the optimisation's, plus its L-BFGS history."""
    return estimate_memory_bytes(level.width, level.height) + _history_bytes(
        level.width, level.height, level.history
    )


def _history_bytes(width: int, height: int, history: int) -> int:
    """L-BFGS's history at a level: 2 * m * pixels * 3 float32s."""
    return 2 * history * 3 * width * height * _FLOAT32_BYTES


def estimate_memory_bytes(width: int, height: int) -> int:
    """Estimated peak bytes of one optimisation at width x height (TensorFlow's own runtime excluded).

    bytes = 4 * (3 * A + 6 * 3 * w * h + G) + W, where
      A = the floats of every conv and pool output of VGG19 up to block5_conv2 (channels 64, 64 | pool |
          128, 128 | pool | 256 x4 | pool | 512 x4 | pool | 512, 512; each pool floor-halves both sides),
          counted 3x: conv output and ReLU output kept for the backward pass, plus their gradients;
      6 image-sized tensors: the image variable, its gradient, Adam's m and v, the content and style inputs;
      G = the Gram targets of the five style layers (64^2 + 128^2 + 256^2 + 512^2 + 512^2 floats);
      W = the float32 weights of the full VGG19 without its top (20,024,384 parameters, 80.1 MB).
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"sizes must be positive, got {width}x{height}")
    activations = sum(c * (width >> p) * (height >> p) for c, p in _CONV_LAYERS + _POOLS)
    floats = _ACTIVATION_COPIES * activations + _IMAGE_COPIES * 3 * width * height + _GRAM_TARGET_FLOATS
    return _FLOAT32_BYTES * (floats + _VGG19_NOTOP_PARAMETERS)


def _level_sizes(width: int, height: int, *, max_dim: int, levels: int, multiple: int) -> list:
    """(width, height) of each level, coarsest first, each side rounded to ``multiple``."""
    sizes = [target_size(width, height, _halved(max_dim, k)) for k in reversed(range(levels))]
    return [(_round_to(w, multiple), _round_to(h, multiple)) for w, h in sizes]


def _round_to(side: int, multiple: int) -> int:
    return max(multiple, multiple * round(side / multiple))


def _halved(max_dim: int, times: int) -> int:
    """max_dim / 2**times rounded half up, at least 1."""
    return max(1, (2 * max_dim + (1 << times)) >> (times + 1))


def _check_smallest(sizes: list[tuple[int, int]], *, max_dim: int) -> None:
    """Refuse a finest level under VGG_MIN_SIDE (field max_dim)."""
    finest = sizes[-1]
    if min(finest) < VGG_MIN_SIDE:
        raise InvalidInput(
            f"at max_dim={max_dim} the image would be {finest[0]}x{finest[1]}; both sides must be at least "
            f"{VGG_MIN_SIDE} px; use a larger max_dim",
            field="max_dim",
        )
