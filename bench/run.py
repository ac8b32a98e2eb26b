"""`make bench`: every benchmark of the harness in one run, printed, and appended to bench/RESULTS.md.

Usage: python bench/run.py [--gpu] [--write bench/RESULTS.md]

CPU (the default): engine vs the plain loop at 64/128/256 px and 4 jobs together at 128 px, worker memory
at 128/256/512 px, per-job overhead through the real stack, API load with wrk, jobs/min with 1 and 2 workers
and the Redis cost per job (bench/scaling.py), and quality per second
(bench/quality.py: the default preset, its levers, Adam and the feed-forward peer at 256 px; it writes
docs/quality_plot.png and docs/quality_sheet.png), about 15 minutes on 2 cores. `--gpu`: the engine at
512 and 1024 px, 8 jobs together at 512 px, the FLOP-bound fraction, jobs per minute, and GPU memory at
512/1024/2048 px (run it on a machine with a GPU and TensorFlow's CUDA build).
"""

import argparse
import datetime
import functools
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import api_load, engine_speed, job_overhead, memory, scaling  # noqa: E402
from bench.report import header, machine  # noqa: E402


def sections(gpu: bool) -> list[tuple[str, object]]:
    """(title, function returning markdown lines) for each benchmark, in the order they run.

    The stack-based ones come first, before TensorFlow is loaded into this process.
    """
    speed = engine_speed.parse(["--gpu"] if gpu else [])
    sizes = [int(size) for size in speed.sizes.split(",")]
    memory_sizes = [512, 1024, 2048] if gpu else [128, 256, 512]
    found = []
    if not gpu:
        found += [
            ("API load under gunicorn (wrk, loopback)", api_load.rows),
            ("Per-job overhead through API, queue, worker and storage", job_overhead.rows),
            (
                "Scaling: 1 vs 2 GPU workers (1 TF thread each), Redis commands and bytes per job",
                scaling.rows,
            ),
        ]
    # On a GPU the engine runs twice: float32, then bfloat16 with XLA (the settings a GPU worker may turn on).
    for precision, xla in [("float32", False)] + ([("bfloat16", True)] if gpu else []):
        title = f"Engine ({precision}, XLA {'on' if xla else 'off'}) vs the plain TF-tutorial loop"
        args = (sizes, speed.steps, speed.batch, speed.batch_px, "random", speed.peak_tflops)
        run = functools.partial(engine_speed.rows, *args, precision=precision, jit_compile=xla)
        found.append((f"{title} ({speed.steps} steps, peak {speed.peak_tflops} TFLOP/s)", run))
    found.append(
        (
            "Worker memory per size (2-step job, fresh process each)",
            functools.partial(memory.rows, memory_sizes, "random", 16),
        )
    )
    quality_title = "Quality per second: the default, each lever alone, Adam and the feed-forward peer"
    return found + ([] if gpu else [(quality_title, quality)])


def quality() -> list[str]:
    """bench/quality.py at its defaults (256 px; plot and contact sheet in docs/), imported only when run."""
    from bench import quality as section

    return section.rows()


def main() -> int:
    """Run every section, print each table as it completes, and append the run to ``--write``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", action="store_true")
    parser.add_argument("--write", default="")
    args = parser.parse_args()
    started = time.monotonic()
    output = header(f"{'GPU' if args.gpu else 'CPU'} run of `make bench`")
    print("\n".join(output), flush=True)
    for title, run in sections(args.gpu):
        lines = [f"#### {title}", "", *run(), ""]
        print("\n".join(lines), flush=True)
        output += lines
    output += [f"Machine: {machine()}. Whole run: {time.monotonic() - started:.0f} s.", ""]
    print(output[-2])
    if args.write:
        with open(args.write, "a") as results:
            results.write("\n".join(output) + "\n")
        print(f"appended to {args.write} ({datetime.date.today()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
