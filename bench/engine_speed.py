"""Engine speed against the plain TF-tutorial loop, and several jobs per step, measured side by side.

Usage: python bench/engine_speed.py [--sizes 64,128,256] [--steps 6] [--batch 4 --batch-px 128] [--gpu]

Both loops run in this process with the same VGG19 weights, image size, loss form (the tutorial's) and
steps. Each is timed twice, alternating, and the faster run of each is kept, so a burst of other load on
the machine hurts neither more. Engine steps/s is the difference between an (N+1)-step and a 1-step job,
so the set-up they share (targets, the two loss reads) cancels; the plain loop's is N steps after its first.
"New job" is the wall time of a 1-step job, targets included: the plain loop traces its step again for every
job, the engine reuses the step it compiled for the bucket (compiled once before the timing, as a worker
that has seen the bucket has). `--gpu` adds 512 and 1024 px, batch 8 at 512 px, the
fraction of the FLOP bound, and jobs per minute at 512 px x 300 steps.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python bench/engine_speed.py` puts bench/ first, not the repository
    sys.path.insert(0, str(REPO))

from bench.flops import step_flops  # noqa: E402
from bench.report import header  # noqa: E402

ROUNDS = 2


def rows(
    sizes, steps: int, batch: int, batch_px: int, weights: str, peak_tflops: float, **engine
) -> list[str]:
    """The engine-vs-plain table and the several-jobs table, as markdown lines.

    ``engine`` may set the engine's ``precision`` and ``jit_compile`` (the plain loop stays float32, eager
    Keras, as the tutorial has it).
    """
    from bench.plain_loop import StyleContentModel
    from worker.engine.vgg import load_extractor, load_vgg19

    extractor = load_extractor([weights], **engine)
    plain = StyleContentModel(load_vgg19(extractor.weights, seed=0))
    lines = [
        "| size | plain steps/s | engine steps/s | engine / plain | plain GFLOP/s | engine GFLOP/s "
        "| new job: plain s | new job: engine s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for size in sizes:
        lines.append(_compare(extractor, plain, size, steps))
    lines += [
        "",
        "| jobs together | size | job-steps/s | vs 1 job | fraction of FLOP bound | jobs/min at 300 steps |",
        "|---|---|---|---|---|---|",
    ]
    single = None
    for count in sorted({1, batch}):
        rate = _together(extractor, batch_px, steps, count)
        single = single or rate
        bound = rate * step_flops(batch_px, batch_px) / (peak_tflops * 1e12)
        per_minute = rate * 60 / 300
        lines.append(
            f"| {count} | {batch_px} | {rate:.2f} | {rate / single:.2f}x | {bound:.1%} | {per_minute:.2f} |"
        )
    return lines


def _compare(extractor, plain_model, size: int, steps: int) -> str:
    content, style = _images(size, 0)
    _engine_job(extractor, [(content, style)], 1)  # compile the bucket's step once, as a worker has
    plain, engine, new_plain, new_engine = [], [], [], []
    for _ in range(ROUNDS):
        rate, first = _plain_rate(plain_model, content, style, steps)
        plain.append(rate)
        new_plain.append(first)
        rate, first = _engine_rate(extractor, content, style, steps)
        engine.append(rate)
        new_engine.append(first)
    flops = step_flops(size, size) / 1e9
    best_plain, best_engine = max(plain), max(engine)
    cells = [f"{best_plain:.2f}", f"{best_engine:.2f}", f"{best_engine / best_plain:.2f}x"]
    cells += [f"{best_plain * flops:.0f}", f"{best_engine * flops:.0f}"]
    cells += [f"{min(new_plain):.2f}", f"{min(new_engine):.2f}"]
    return f"| {size} | " + " | ".join(cells) + " |"


def _plain_rate(model, content, style, steps: int) -> tuple[float, float]:
    from bench.plain_loop import PlainJob

    started = time.perf_counter()
    job = PlainJob(model, content, style)
    job.train_step()
    job.image.numpy()
    first = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(steps):
        job.train_step()
    job.image.numpy()
    return steps / (time.perf_counter() - started), first


def _engine_rate(extractor, content, style, steps: int) -> tuple[float, float]:
    one = _engine_job(extractor, [(content, style)], 1)
    return steps / (_engine_job(extractor, [(content, style)], steps + 1) - one), one


def _together(extractor, size: int, steps: int, count: int) -> float:
    """Job-steps per second with ``count`` jobs optimised together."""
    pairs = [_images(size, seed) for seed in range(count)]
    _engine_job(extractor, pairs, 1)  # compile this batch size's step
    elapsed = min(
        _engine_job(extractor, pairs, steps + 1) - _engine_job(extractor, pairs, 1) for _ in range(ROUNDS)
    )
    return count * steps / elapsed


def _engine_job(extractor, pairs, steps: int) -> float:
    """Seconds for the engine to run jobs of (content, style) together, targets included."""
    from worker.engine.losses import LossConfig
    from worker.engine.optimize import AdamConfig, Run, Targets, content_targets, optimize_many, style_targets

    loss = LossConfig.for_formula("tutorial", style_weight=1e-2, content_weight=1e4, tv_weight=30.0)
    started = time.perf_counter()
    runs = [
        Run(
            Targets(style_targets(extractor, [s], [1.0]), content_targets(extractor, c)),
            c,
            loss,
            AdamConfig(),
        )
        for c, s in pairs
    ]
    optimize_many(extractor, runs, steps=steps, progress_every=steps)
    return time.perf_counter() - started


def _images(size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random((size, size, 3), dtype=np.float32), rng.random((size, size, 3), dtype=np.float32)


def parse(argv=None) -> argparse.Namespace:
    """Command-line options (CPU defaults; --gpu switches to the GPU sizes)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="")
    parser.add_argument("--steps", type=int, default=0)
    parser.add_argument("--batch", type=int, default=0)
    parser.add_argument("--batch-px", type=int, default=0)
    parser.add_argument("--weights", default="random")
    parser.add_argument("--peak-tflops", type=float, default=0.0, help="peak assumed for the FLOP bound")
    parser.add_argument("--gpu", action="store_true")
    parser.add_argument("--precision", default="float32", help="the engine's: float32, bfloat16, float16")
    parser.add_argument("--xla", action="store_true", help="XLA-compile the engine's step")
    args = parser.parse_args(argv)
    gpu = {"sizes": "512,1024", "steps": 50, "batch": 8, "batch_px": 512, "peak_tflops": 790.0}
    # CPU peak assumed: 2 cores x 2 AVX2 FMA units x 8 float32 lanes x 2 FLOPs x 2.5 GHz = 0.16 TFLOP/s.
    cpu = {"sizes": "64,128,256", "steps": 6, "batch": 4, "batch_px": 128, "peak_tflops": 0.16}
    for name, value in (gpu if args.gpu else cpu).items():
        if not getattr(args, name):
            setattr(args, name, value)
    return args


def main(argv=None) -> int:
    """Print the tables with the date, the machine and the command."""
    args = parse(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    engine = {"precision": args.precision, "jit_compile": args.xla}
    table = rows(sizes, args.steps, args.batch, args.batch_px, args.weights, args.peak_tflops, **engine)
    note = f"weights={args.weights}, engine {args.precision}, xla {args.xla}, peak {args.peak_tflops} TFLOP/s"
    print("\n".join(header("engine vs plain loop", note) + table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
