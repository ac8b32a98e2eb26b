"""Engine speed: steps/s of the styleforge engine at several sizes, on this machine's CPU or GPU.

Usage: python bench/engine_speed.py [--sizes 64,128,256] [--steps 20] [--weights random]
Prints a table with the date, the machine and the command. (The plain-seed-loop comparison is issue 7's.)
"""

import argparse
import datetime
import platform
import sys
import time

import numpy as np


def main() -> int:
    """Time the engine's optimisation loop per size and print steps/s."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="64,128,256")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--weights", default="random")
    args = parser.parse_args()
    import tensorflow as tf

    from worker.engine.vgg import load_extractor

    extractor = load_extractor([args.weights])
    device = ", ".join(d.name for d in tf.config.list_physical_devices("GPU")) or "CPU only"
    print(f"# {datetime.date.today()} {platform.node()} {device}; `{' '.join(sys.argv)}`")
    print("| size | steps | seconds for the steps | steps/s |\n|---|---|---|---|")
    rng = np.random.default_rng(0)
    for size in (int(s) for s in args.sizes.split(",")):
        content, style = (rng.random((size, size, 3), dtype=np.float32) for _ in range(2))
        # A 1-step run pays the same set-up and tracing as the long one; the difference is the steps alone.
        elapsed = _run(stylize_args(extractor, content, style, args.steps + 1)) - _run(
            stylize_args(extractor, content, style, 1)
        )
        print(f"| {size} | {args.steps} | {elapsed:.2f} | {args.steps / elapsed:.1f} |")
    return 0


def stylize_args(extractor, content, style, steps: int) -> dict:
    """Arguments of one engine run that reads losses back only at the start and the end."""
    from worker.engine.losses import LossConfig
    from worker.engine.optimize import AdamConfig

    config = LossConfig.for_formula("seed", style_weight=1e-2, content_weight=1e4, tv_weight=0)
    return dict(
        extractor=extractor,
        content=content,
        style=style,
        steps=steps,
        loss_config=config,
        adam=AdamConfig(),
        progress_every=steps,
    )


def _run(kwargs: dict) -> float:
    from worker.engine.optimize import stylize

    started = time.perf_counter()
    stylize(**kwargs)
    return time.perf_counter() - started


if __name__ == "__main__":
    sys.exit(main())
