"""Quality per second (issue 11): the default preset, each lever alone, Adam and the feed-forward peer.

Usage: .venv/bin/python bench/quality.py [--size 256] [--out docs/quality] [--adam-steps 100]
       [--lever-steps 60] [--bf16-steps 10] [--seed-steps 0]

In one process, on chelsea (content) and hubble (style) at ``--size`` px with the hed VGG weights (random
if hed cannot be loaded), every row runs exactly as a job would (StyleParams over a preset, plan_levels,
stylize_options, stylize_many) after a 1-step warm-up of the same configuration, so its seconds exclude
tracing, as in a warm worker. Rows with snapshots record the held-out statistics (`bench.quality_metrics`:
style_swd lower is better, content_ssim higher is better) every few steps, the metric time excluded. The
bar is the feed-forward peer's statistics: swd below the peer's and ssim at least the peer's. Adam rows
stop at the first snapshot of their output level that meets the bar. Writes ``{out}_plot.png`` (quality
against seconds) and ``{out}_sheet.png`` (every row's output).
"""

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python bench/quality.py` puts bench/ first, not the repository
    sys.path.insert(0, str(REPO))

from bench.quality_metrics import (  # noqa: E402
    content_ssim,
    content_ssim_tone_matched,
    objective_distances,
    style_swd,
)
from bench.report import header  # noqa: E402
from shared.images import decode_image  # noqa: E402
from shared.params import DEFAULT_PRESET, PRESETS, StyleParams  # noqa: E402
from shared.plan import plan_levels  # noqa: E402
from worker.engine.optimize import Canceled, StepHooks  # noqa: E402
from worker.engine.pipeline import JobInput, StylizeOptions, resize, stylize_many  # noqa: E402
from worker.engine.vgg import FeatureExtractor  # noqa: E402
from worker.feedforward import FeedForward  # noqa: E402
from worker.job_options import stylize_options  # noqa: E402

CONTENT = REPO / "examples/content/chelsea.png"
STYLE = REPO / "examples/style/hubble_deep_field.jpg"
TARGET_SECONDS = 15.0  # (a): the default reaches the bar within this
TARGET_RATIO = 0.1  # (b): the default's time-to-bar over Adam's (seed settings, same objective)
ADAM_SETTINGS = ("learning_rate", "beta_1", "beta_2", "epsilon")


@dataclass(frozen=True)
class Config:
    """One row: overrides over a preset, the extractor's precision, snapshots and early stop at the bar."""

    name: str
    overrides: dict
    precision: str = "float32"
    snapshot_every: int = 10
    stop_at_bar: bool = False


@dataclass(frozen=True)
class Point:
    """Held-out statistics of one snapshot, at the row's seconds so far (metric time excluded)."""

    seconds: float
    step: int
    swd: float
    ssim: float
    output_level: bool  # taken at the output level (coarser levels' snapshots are upsampled to compare)


@dataclass
class Row:
    """One row's result: its output, time, loss evaluations, statistics and snapshots."""

    name: str
    seconds: float
    evaluations: (
        str  # loss evaluations ("at least n" when stopped at the bar: L-BFGS may take several a step)
    )
    steps: int
    image: np.ndarray
    swd: float = 0.0
    ssim: float = 0.0
    ssim_tone: float = 0.0  # beside ssim, never the bar: the layout whatever the global tone
    objective: dict = field(default_factory=dict)
    curve: list[Point] = field(default_factory=list)
    meets: bool = False


@dataclass(frozen=True)
class Setup:
    """What every row shares: the extractor, the images, the peer's output, time and statistics."""

    extractor: FeatureExtractor
    content: np.ndarray
    style: np.ndarray
    size: int
    feedforward: FeedForward
    peer: Row
    by_precision: dict = field(default_factory=dict)  # other precisions' extractors, made on first use

    def extractor_in(self, precision: str) -> FeatureExtractor:
        """The extractor computing in ``precision`` (one per precision, so its traces are kept)."""
        if precision == "float32":
            return self.extractor
        if precision not in self.by_precision:
            self.by_precision[precision] = self.extractor.with_precision(precision)
        return self.by_precision[precision]

    def beats(self, swd: float, ssim: float) -> bool:
        """The bar: a lower style distance than the peer's and at least its content similarity."""
        return swd < self.peer.swd and ssim >= self.peer.ssim


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--out", default=str(REPO / "docs/quality"), help="prefix of the two PNGs")
    parser.add_argument("--adam-steps", type=int, default=100, help="the adam-seed reference's steps")
    parser.add_argument("--lever-steps", type=int, default=60, help="steps of each lever row alone")
    parser.add_argument("--bf16-steps", type=int, default=10, help="bfloat16 steps (emulated on most CPUs)")
    parser.add_argument("--seed-steps", type=int, default=0, help="Adam on the seed preset's objective")
    return parser.parse_args(argv)


def adam_of(preset: str) -> dict:
    """A preset's Adam settings, as param overrides."""
    return {name: PRESETS[preset][name] for name in ADAM_SETTINGS}


def configs(args: argparse.Namespace) -> list[Config]:
    """The rows, in the order they run; all but seed-objective on the default preset's objective."""
    adam = {"optimizer": "adam", "init": "content", "levels": 1}
    seed, own, lever = adam_of("seed"), adam_of(DEFAULT_PRESET), args.lever_steps
    found = [
        Config("adam-seed", {**adam, **seed, "steps": args.adam_steps}, snapshot_every=25, stop_at_bar=True),
        Config(f"adam ({DEFAULT_PRESET} eps)", {**adam, **own, "steps": lever}, stop_at_bar=True),
        Config(
            "lbfgs",
            {"optimizer": "lbfgs", "init": "content", "levels": 1, "steps": lever},
            snapshot_every=5,
            stop_at_bar=True,
        ),
        # the preset's coarse_step_factor; fine steps halved so that both levels cost about one lever's run
        Config("coarse-to-fine", {**adam, **own, "levels": 2, "steps": max(1, lever // 2)}, stop_at_bar=True),
        Config("warm start", {**adam, **own, "init": "feedforward", "steps": lever}, stop_at_bar=True),
        Config("bfloat16", {**adam, **own, "steps": args.bf16_steps}, "bfloat16", snapshot_every=0),
        Config("default", {}, snapshot_every=5),
    ]
    if args.seed_steps:
        seed_row = {"preset": "seed", **adam, "steps": args.seed_steps}
        found.insert(1, Config("seed objective", seed_row, snapshot_every=25, stop_at_bar=True))
    return found


def load_images(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Content and style decoded as a job decodes them, longest side ``size``."""
    return tuple(decode_image(path.read_bytes(), max_dim=size) for path in (CONTENT, STYLE))


def load_extractor() -> FeatureExtractor:
    """The hed weights, or seeded random ones when hed is unavailable (printed either way)."""
    try:
        extractor = FeatureExtractor(weights="hed")
    except Exception as err:  # a missing package or download: any failure falls back
        print(f"hed weights unavailable ({err}); using random weights", flush=True)
        extractor = FeatureExtractor(weights="random")
    print(f"weights: {extractor.weights} ({extractor.note})", flush=True)
    return extractor


def prepare(size: int) -> Setup:
    """Load the extractor, images and feed-forward model, and run the peer (warm, as a worker would)."""
    extractor = load_extractor()
    content, style = load_images(size)
    feedforward = FeedForward.load()
    feedforward.stylize(content, [style])  # warm-up: onnxruntime's first run allocates
    started = time.perf_counter()
    image = feedforward.stylize(content, [style])
    peer = Row("feedforward", time.perf_counter() - started, "0", 0, image)
    peer.swd, peer.ssim = style_swd(extractor, image, style), content_ssim(image, content)
    peer.ssim_tone = content_ssim_tone_matched(image, content)
    return Setup(extractor, content, style, size, feedforward, peer)


def job_options(config: Config, setup: Setup, steps: int | None = None) -> tuple[StyleParams, StylizeOptions]:
    """The row's params and engine options, built exactly as the worker builds a job's."""
    overrides = {**config.overrides, "max_dim": setup.size, **({"steps": steps} if steps else {})}
    params = StyleParams.from_mapping(overrides)
    height, width = setup.content.shape[:2]
    history = params.lbfgs_history if params.optimizer == "lbfgs" else 0
    plan = plan_levels(
        width,
        height,
        max_dim=params.max_dim,
        levels=params.levels,
        steps=params.steps,
        coarse_step_factor=params.coarse_step_factor,
        history=history,
    )
    return params, stylize_options(params, plan, style_count=1, progress_every=10)


class Recorder:
    """Snapshot hooks for a timed row: statistics at each snapshot, their time excluded; stop at the bar."""

    def __init__(self, setup: Setup, options: StylizeOptions, config: Config) -> None:
        self.setup, self.config = setup, config
        self.output_from = options.offset(len(options.levels) - 1)  # steps after this: the output level
        self.points: list[Point] = []
        self.excluded = 0.0
        self.stop = False
        self.started = time.perf_counter()

    def elapsed(self) -> float:
        """Seconds since the start, without the time spent on statistics."""
        return time.perf_counter() - self.started - self.excluded

    def on_snapshot(self, step: int, image: np.ndarray) -> None:
        """Score one snapshot (upsampled to the output size when taken at a coarser level)."""
        seconds, entered = self.elapsed(), time.perf_counter()
        content, style = self.setup.content, self.setup.style
        image = resize(np.asarray(image, np.float32), content.shape[:2])
        swd, ssim = style_swd(self.setup.extractor, image, style), content_ssim(image, content)
        output_level = step > self.output_from
        self.points.append(Point(seconds, step, swd, ssim, output_level))
        self.stop = self.config.stop_at_bar and output_level and self.setup.beats(swd, ssim)
        self.excluded += time.perf_counter() - entered

    def hooks(self) -> StepHooks:
        """The StepHooks the row's job runs with."""
        every = self.config.snapshot_every
        return StepHooks(should_stop=lambda: self.stop, snapshot_every=every, on_snapshot=self.on_snapshot)


def run_job(setup: Setup, config: Config, steps: int | None = None) -> tuple[object, Recorder, StyleParams]:
    """One run of the row's job: its outcome (a StylizeResult, or Canceled at the bar) and its recorder."""
    params, options = job_options(config, setup, steps)
    extractor = setup.extractor_in(config.precision)
    recorder = Recorder(setup, options, config)
    warm = None
    if params.needs_feedforward:  # a job computes its feed-forward start first: that counts
        warm = setup.feedforward.stylize(setup.content, [setup.style])
    job = JobInput(setup.content, [setup.style], options, hooks=recorder.hooks(), warm_start=warm)
    (outcome,) = stylize_many(extractor, [job])
    return outcome, recorder, params


def run_row(setup: Setup, config: Config) -> Row:
    """Warm up (1 step per level), then time the row and score its output."""
    run_job(setup, config, steps=1)
    outcome, recorder, params = run_job(setup, config)
    seconds = recorder.elapsed()
    if isinstance(outcome, Canceled):  # stopped at the bar: Adam evaluates the loss once a step, L-BFGS more
        at_least = ">=" if params.optimizer == "lbfgs" else ""
        image, steps, evaluations = outcome.image, outcome.step, f"{at_least}{outcome.step}"
    else:
        image, steps, evaluations = outcome.image, outcome.steps_run, str(outcome.evaluations)
    image = resize(np.asarray(image, np.float32), setup.content.shape[:2])
    row = Row(config.name, seconds, evaluations, steps, image, curve=recorder.points)
    score(setup, row, params.content_layer)
    return row


def score(setup: Setup, row: Row, content_layer: str) -> None:
    """Fill in a row's held-out statistics, the objective's distances and whether it meets the bar."""
    row.swd = style_swd(setup.extractor, row.image, setup.style)
    row.ssim = content_ssim(row.image, setup.content)
    row.ssim_tone = content_ssim_tone_matched(row.image, setup.content)
    row.objective = objective_distances(
        setup.extractor, row.image, setup.content, setup.style, content_layer=content_layer
    )
    row.meets = setup.beats(row.swd, row.ssim)


def time_to_bar(setup: Setup, row: Row) -> float | None:
    """Seconds to the first output-level snapshot meeting the bar (or the end, when only the end does)."""
    for point in row.curve:
        if point.output_level and setup.beats(point.swd, point.ssim):
            return point.seconds
    return row.seconds if row.meets else None


def table(setup: Setup, rows: list[Row]) -> list[str]:
    """The markdown table, one line per row."""
    lines = [
        "| row | seconds | loss evals | steps | objective style | objective content | style swd (lower) "
        "| content ssim (higher) | ssim, tone matched | meets bar | s to bar |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        reach = time_to_bar(setup, row)
        objective = [f"{row.objective[key]:.4f}" for key in ("style", "content")]
        cells = [row.name, f"{row.seconds:.2f}", row.evaluations, str(row.steps), *objective]
        cells += [f"{row.swd:.4f}", f"{row.ssim:.4f}", f"{row.ssim_tone:.4f}", "yes" if row.meets else "no"]
        cells.append(f"{reach:.2f}" if reach is not None else "never")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def best(row: Row) -> str:
    """What bounds a row that never met the bar: the best statistics it reached."""
    points = [(p.swd, p.ssim) for p in row.curve if p.output_level] + [(row.swd, row.ssim)]
    swd = min(points)[0]
    ssim = max(point[1] for point in points)
    return f"best swd {swd:.4f}, best ssim {ssim:.4f} in {row.steps} steps, {row.seconds:.1f} s"


def ratios(setup: Setup, rows: list[Row]) -> list[str]:
    """The two targets: (a) the default's seconds to the bar, (b) that over Adam's at the seed settings."""
    by_name = {row.name: row for row in rows}
    default, adam = by_name["default"], by_name["adam-seed"]
    peer = f"peer swd {setup.peer.swd:.4f}, ssim {setup.peer.ssim:.4f}"
    reach, adam_reach = time_to_bar(setup, default), time_to_bar(setup, adam)
    if reach is None:
        lines = [
            f"- (a) default never reaches the bar: {best(default)} ({peer}); target <= {TARGET_SECONDS:g} s"
        ]
    else:
        verdict = "met" if reach <= TARGET_SECONDS else "not met"
        lines = [
            f"- (a) default reaches the bar in **{reach:.2f} s** (target <= {TARGET_SECONDS:g} s: {verdict})"
        ]
    if reach is None:
        lines.append("- (b) no ratio: the default never reaches the bar")
    elif adam_reach is None:
        bound = reach / adam.seconds
        lines.append(
            f"- (b) adam-seed never reaches the bar ({best(adam)}; {peer}): its time to the bar is over "
            f"{adam.seconds:.1f} s, so default / adam-seed < **{bound:.3f}** (target <= {TARGET_RATIO:g})"
        )
    else:
        ratio, verdict = reach / adam_reach, "met" if reach / adam_reach <= TARGET_RATIO else "not met"
        lines.append(
            f"- (b) default / adam-seed time to the bar = **{ratio:.3f}** (target <= 0.1: {verdict})"
        )
    return lines + bounds(setup, rows)


def bounds(setup: Setup, rows: list[Row]) -> list[str]:
    """For each optimising row that never met the bar, what it reached; and bfloat16's speed vs float32."""
    never = [row for row in rows if row is not setup.peer and time_to_bar(setup, row) is None]
    lines = [f"- {row.name} never meets the bar: {best(row)}" for row in never]
    float32 = next((row for row in rows if row.name.startswith("adam (")), None)
    bf16 = next((row for row in rows if row.name == "bfloat16"), None)
    if float32 and bf16 and bf16.steps and float32.steps:
        speed, base = bf16.steps / bf16.seconds, float32.steps / float32.seconds
        lines.append(
            f"- bfloat16: {speed:.2f} steps/s vs float32 {base:.2f} steps/s (same Adam, same size): "
            f"**{speed / base:.2f}x** (emulated unless the CPU has AMX-BF16 or AVX512-BF16)"
        )
    return lines


def rows(size: int = 256, out: str = str(REPO / "docs/quality"), argv: list[str] | None = None) -> list[str]:
    """Run every row and return the section's markdown (table, targets); writes the plot and the sheet."""
    args = parse(argv or [])
    args.size, args.out = size, out
    return run(args)


def run(args: argparse.Namespace) -> list[str]:
    """Run every row of ``args``; print each as it ends; write the PNGs; return the markdown lines."""
    from bench.quality_plot import contact_sheet, quality_plot

    started = time.perf_counter()
    setup = prepare(args.size)
    print(f"feedforward: {setup.peer.seconds:.2f} s, swd {setup.peer.swd:.4f}, ssim {setup.peer.ssim:.4f}")
    score(setup, setup.peer, PRESETS[DEFAULT_PRESET]["content_layer"])
    done = []
    for config in configs(args):
        done.append(run_row(setup, config))
        print(f"{config.name}: {done[-1].seconds:.2f} s, swd {done[-1].swd:.4f}, ssim {done[-1].ssim:.4f}")
    done.append(setup.peer)
    plot, sheet = Path(f"{args.out}_plot.png"), Path(f"{args.out}_sheet.png")
    quality_plot(done, setup.peer, plot)
    contact_sheet(done, setup.content, setup.style, sheet)
    h, w = setup.content.shape[:2]
    note = (
        f"chelsea x hubble at {w}x{h}, {setup.extractor.weights} weights; bar = the feed-forward peer's "
        f"swd and ssim; objective distances of the `{DEFAULT_PRESET}` preset's objective. Section: "
        f"{time.perf_counter() - started:.0f} s. Plot {plot.name}, sheet {sheet.name}."
    )
    return [note, "", *table(setup, done), "", *ratios(setup, done)]


def main(argv: list[str] | None = None) -> int:
    """Run alone: print the section with its heading."""
    args = parse(argv)
    lines = header("Quality per second (issue 11)")
    lines += run(args)
    print("\n".join(lines), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
