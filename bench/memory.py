"""Worker memory per image size: RSS (and GPU peak where there is a GPU) of a worker running one job.

Usage: python bench/memory.py [--sizes 128,256,512] [--budget-gib 16] [--weights random]

Each size runs in a fresh process, as a worker would: load VGG19, then a 2-step job at that size. It reports
the RSS after loading, the peak RSS over the job, and the GPU's peak allocation. A straight line through
peak memory against pixels (activations grow with the pixel count) gives the largest single-level square
size that fits the budget; it is a fit from the sizes measured, not a run at that size.
"""

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.report import header  # noqa: E402

MIB = 1024 * 1024


def measure(size: int, weights: str) -> dict[str, float]:
    """In this process: memory after loading the model and peaks over a 2-step job at ``size``."""
    import tensorflow as tf

    from worker.engine.losses import LossConfig
    from worker.engine.optimize import AdamConfig, stylize
    from worker.engine.vgg import load_extractor

    extractor = load_extractor([weights])
    loaded = _rss_mib()
    rng = np.random.default_rng(0)
    content, style = (rng.random((size, size, 3), dtype=np.float32) for _ in range(2))
    config = LossConfig.for_formula("balanced", style_weight=1.0, content_weight=0.05, tv_weight=0.005)
    stylize(extractor, content, style, steps=2, loss_config=config, adam=AdamConfig(), progress_every=2)
    gpu = 0.0
    if tf.config.list_physical_devices("GPU"):
        gpu = tf.config.experimental.get_memory_info("GPU:0")["peak"] / MIB
    return {"loaded": loaded, "peak": _peak_rss_mib(), "gpu_peak": gpu}


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _in_child(size: int, weights: str) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", str(size), "--weights", weights]
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO)
    return json.loads(done.stdout.strip().splitlines()[-1])


def largest_side(sizes: list[int], peaks: list[float], budget_mib: float) -> int:
    """The largest square side whose fitted peak memory fits the budget (multiples of 32)."""
    slope, intercept = np.polyfit([size * size for size in sizes], peaks, 1)
    if slope <= 0:
        return 0
    side = int(np.sqrt(max(budget_mib - intercept, 0) / slope))
    return side - side % 32


def rows(sizes: list[int], weights: str, budget_gib: float) -> list[str]:
    """Markdown lines: one row per size, then the largest size for the budget."""
    results = [_in_child(size, weights) for size in sizes]
    lines = [
        "| size | RSS after load MiB | peak RSS MiB | job adds MiB | GPU peak MiB |",
        "|---|---|---|---|---|",
    ]
    for size, r in zip(sizes, results, strict=True):
        grown = r["peak"] - r["loaded"]
        lines.append(f"| {size} | {r['loaded']:.0f} | {r['peak']:.0f} | {grown:.0f} | {r['gpu_peak']:.0f} |")
    gpu = any(r["gpu_peak"] for r in results)
    peaks = [r["gpu_peak"] if gpu else r["peak"] for r in results]
    side = largest_side(sizes, peaks, budget_gib * 1024)
    where = "GPU memory" if gpu else "worker RSS"
    lines += [
        "",
        f"Largest single-level square size in {budget_gib:g} GiB of {where} (linear fit): {side} px",
    ]
    return lines


def main() -> int:
    """Print the table, or (``--child``) measure one size and print it as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="128,256,512")
    parser.add_argument("--budget-gib", type=float, default=16.0)
    parser.add_argument("--weights", default="random")
    parser.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.weights)))
        return 0
    table = rows([int(size) for size in args.sizes.split(",")], args.weights, args.budget_gib)
    print("\n".join(header("worker memory per size", f"weights={args.weights}") + table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
