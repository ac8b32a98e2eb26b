"""``STYLEFORGE_PRECISION=auto``: measure, at worker start, which precision VGG19 computes fastest in here.

bfloat16 convolutions run 3.4x faster than float32 on a Xeon with AMX (175 vs 601 ms/step at 256 px) and
several times slower on CPUs without AMX-BF16 or AVX512-BF16, where oneDNN emulates them. Rather than guess
from CPU flags, the worker times a few Adam steps of one fixed probe job in each candidate precision and keeps
the fastest whose final loss is within a tolerance of float32's (float32 is the reference, always probed).
"""

import functools
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from shared.params import PRESETS
from worker.engine.losses import LossConfig
from worker.engine.optimize import (
    AdamConfig,
    Canceled,
    StepHooks,
    Targets,
    content_targets,
    optimize,
    style_targets,
)

REFERENCE = "float32"
# 64 px: large enough that the convolutions, not per-step overhead, decide the timing (at 32 px float32 is
# overhead-bound), small enough that tracing, not stepping, is most of the probe's cost: 8-15 s on a busy
# 2-core AMD EPYC (float32 ~200 ms/step; bfloat16, emulated, ~2 s/step and stopped after one timed step).
PROBE_SIZE = 64
# Timed steps per candidate, between an untimed warm-up step (it traces VGG19's gradient) and an untimed last
# step (it also reads the losses back); the median counts.
PROBE_STEPS = 3
# Relative gap to float32's final loss a faster precision may have and still be chosen (the engine's tests
# hold bfloat16 and float16 to the same 2 % on a full job).
TOLERANCE = 0.02

# The probe job: two images shipped in the repo; seeded noise where the package is installed without them.
_EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PROBE_CONTENT = _EXAMPLES / "content" / "chelsea.png"
PROBE_STYLE = _EXAMPLES / "style" / "hubble_deep_field.jpg"


@dataclass(frozen=True)
class ProbeRun:
    """One candidate's probe: median milliseconds per timed step, and the total loss after the last step.

    ``stopped_early``: its first timed step was already too slow to win, so the probe ended there (``loss`` is
    then NaN: not measured).
    """

    ms_per_step: float
    loss: float
    stopped_early: bool = False


@dataclass(frozen=True)
class PrecisionChoice:
    """What ``auto`` chose, and the measurements behind it (by precision)."""

    chosen: str
    timings: dict[str, float]  # median ms per step
    losses: dict[str, float]  # the probe job's final total loss (NaN: stopped early, too slow)
    reason: str
    probe_s: float = 0.0  # wall time of the whole probe, targets and tracing included
    stopped_early: tuple[str, ...] = ()  # candidates whose first timed step was too slow to win

    def summary(self) -> str:
        """One log line: every candidate's timing (and loss gap to float32), the choice and why."""
        reference = self.losses.get(REFERENCE, math.nan)
        parts = []
        for precision, ms in self.timings.items():
            gap = (
                "not measured"
                if precision in self.stopped_early
                else _signed_gap(self.losses[precision], reference)
            )
            suffix = "" if precision == REFERENCE else f" (loss {gap})"
            parts.append(f"{precision} {ms:.0f} ms/step{suffix}")
        measured = ", ".join(parts)
        return f"precision auto: {measured} -> {self.chosen}: {self.reason}; probe took {self.probe_s:.1f} s"


# measure(extractor, give_up_ms) -> ProbeRun; give_up_ms: stop after the first timed step if it took longer.
Measure = Callable[[object, float], ProbeRun]
# A candidate whose first timed step takes this many times float32's median step cannot win: stop it there.
GIVE_UP_FACTOR = 2.0


def choose_precision(
    make_extractor: Callable[[str], object],
    *,
    candidates: Sequence[str] = (REFERENCE, "bfloat16"),
    size: int = PROBE_SIZE,
    steps: int = PROBE_STEPS,
    tolerance: float = TOLERANCE,
    log: Callable[[str], None] | None = None,
    measure: Measure | None = None,
) -> PrecisionChoice:
    """Probe each candidate (``make_extractor(precision)`` builds its extractor) and choose one.

    ``measure`` defaults to ``probe`` at ``size`` px for ``steps`` timed steps. float32 goes first; a
    candidate whose probe raises is skipped (named in the reason); a float32 failure propagates, since the
    worker cannot run jobs without it.
    """
    started = time.perf_counter()
    measure = measure or functools.partial(_measure, size=size, steps=steps)
    runs = {REFERENCE: measure(make_extractor(REFERENCE), math.inf)}
    failed: dict[str, str] = {}
    for precision in dict.fromkeys(c for c in candidates if c != REFERENCE):
        try:
            runs[precision] = measure(make_extractor(precision), GIVE_UP_FACTOR * runs[REFERENCE].ms_per_step)
        except Exception as err:  # e.g. a device without kernels in that dtype: that candidate cannot win
            failed[precision] = f"{type(err).__name__}: {err}"
    choice = decide(runs, tolerance=tolerance, failed=failed)
    choice = replace(choice, probe_s=time.perf_counter() - started)
    if log is not None:
        log(choice.summary())
    return choice


def _measure(extractor, give_up_ms: float, *, size: int, steps: int) -> ProbeRun:
    return probe(extractor, size=size, steps=steps, give_up_ms=give_up_ms)


def decide(
    runs: Mapping[str, ProbeRun], *, tolerance: float, failed: Mapping[str, str] | None = None
) -> PrecisionChoice:
    """The fastest run whose loss is within ``tolerance`` (relative) of float32's; float32 when none is."""
    reference = runs[REFERENCE]
    gaps = {precision: _gap(run.loss, reference.loss) for precision, run in runs.items()}
    eligible = [precision for precision in runs if gaps[precision] <= tolerance]
    chosen = min(eligible, key=lambda precision: runs[precision].ms_per_step)  # float32 is always eligible
    fastest = min(runs, key=lambda precision: runs[precision].ms_per_step)
    if chosen != REFERENCE:
        speedup = reference.ms_per_step / runs[chosen].ms_per_step
        reason = f"{speedup:.1f}x faster than float32, loss within {tolerance:.0%}"
    elif fastest != REFERENCE:
        reason = f"{fastest} is faster but its loss is off by {gaps[fastest]:.1%} (more than {tolerance:.0%})"
    else:
        reason = "float32 is the fastest"
    stopped = tuple(precision for precision, run in runs.items() if run.stopped_early)
    reason += "".join(
        f"; {precision} stopped after 1 step, over {GIVE_UP_FACTOR:g}x float32's" for precision in stopped
    )
    reason += "".join(f"; {precision} failed ({why})" for precision, why in (failed or {}).items())
    return PrecisionChoice(
        chosen=chosen,
        timings={precision: run.ms_per_step for precision, run in runs.items()},
        losses={precision: run.loss for precision, run in runs.items()},
        reason=reason,
        stopped_early=stopped,
    )


def probe(
    extractor, *, size: int = PROBE_SIZE, steps: int = PROBE_STEPS, give_up_ms: float = math.inf
) -> ProbeRun:
    """Run the probe job: 1 warm-up, ``steps`` timed and 1 last Adam step; median step time, final loss.

    Each step ends with a snapshot, which reads the image back to the host: on a GPU (asynchronous) the clock
    is read only after that step has really run. Not timed: the targets, the warm-up step (it traces the
    compiled step) and the last one (it also evaluates the final losses). A first timed step slower than
    ``give_up_ms`` ends the probe there.
    """
    if steps < 1:
        raise ValueError(f"the probe needs at least 1 timed step; got {steps}")
    content, style = probe_images(size)
    targets = Targets(
        style=style_targets(extractor, [style], [1.0]), content=content_targets(extractor, content)
    )
    stamps: list[float] = []  # stamps[0]: the end of the warm-up step
    hooks = StepHooks(
        should_stop=lambda: len(stamps) == 2 and 1000.0 * (stamps[1] - stamps[0]) > give_up_ms,
        snapshot_every=1,
        on_snapshot=lambda step, image: stamps.append(time.perf_counter()),
    )
    try:
        loss = _run_probe(extractor, targets, content, steps=steps + 2, hooks=hooks)
    except Canceled:
        return ProbeRun(ms_per_step=1000.0 * (stamps[1] - stamps[0]), loss=math.nan, stopped_early=True)
    timed = np.diff(stamps)[:-1]  # each timed step ends at a stamp; the last step is not timed
    return ProbeRun(ms_per_step=1000.0 * float(statistics.median(timed)), loss=loss)


def _run_probe(extractor, targets: Targets, content: np.ndarray, *, steps: int, hooks: StepHooks) -> float:
    """The probe job's optimisation; its final total loss."""
    loss, adam = _probe_settings()
    result = optimize(
        extractor,
        targets,
        content,
        steps=steps,
        loss_config=loss,
        adam=adam,
        progress_every=steps,  # losses are read at the start and the end only
        hooks=hooks,
    )
    return float(result.final_losses["total"])


def probe_images(size: int) -> tuple[np.ndarray, np.ndarray]:
    """The probe's content and style, (size, size, 3) float32 in [0,1]: the repo's examples, else noise."""
    if PROBE_CONTENT.is_file() and PROBE_STYLE.is_file():
        return _square(PROBE_CONTENT, size), _square(PROBE_STYLE, size)
    rng = np.random.default_rng(0)
    return rng.random((size, size, 3), dtype=np.float32), rng.random((size, size, 3), dtype=np.float32)


def _square(path: Path, size: int) -> np.ndarray:
    with Image.open(path) as image:
        resized = image.convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(resized, dtype=np.float32) / 255.0


def _probe_settings() -> tuple[LossConfig, AdamConfig]:
    """The ``balanced`` preset's losses and Adam (its weights work at any size and with any weight set)."""
    preset = PRESETS["balanced"]
    loss = LossConfig.for_formula(
        "balanced",
        style_weight=preset["style_weight"],
        content_weight=preset["content_weight"],
        tv_weight=preset["tv_weight"],
    )
    adam = AdamConfig(
        learning_rate=preset["learning_rate"],
        beta_1=preset["beta_1"],
        beta_2=preset["beta_2"],
        epsilon=preset["epsilon"],
    )
    return loss, adam


def _gap(loss: float, reference: float) -> float:
    """Relative gap of ``loss`` to the reference's; infinite when either is not finite."""
    if not (math.isfinite(loss) and math.isfinite(reference)):
        return math.inf
    return abs(loss - reference) / max(abs(reference), 1e-12)


def _signed_gap(loss: float, reference: float) -> str:
    if not (math.isfinite(loss) and math.isfinite(reference)):
        return "not finite"
    return f"{(loss - reference) / max(abs(reference), 1e-12):+.2%}"
