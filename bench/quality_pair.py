"""Both demo images, side by side: configs over the default preset on astronaut and chelsea, with a sheet.

Usage: .venv/bin/python bench/quality_pair.py [--size 256] [--out docs/quality_pair.png]
       [--configs '[["name", {"param": value}], ...]']

`make demo` stylizes two images, and a preset tuned on one (chelsea) lost the other's face (astronaut). This
runs each config exactly as a job would (`bench.quality.run_job`: StyleParams over the default preset, the
plan, the engine) on both images with hubble as the style and the hed weights, after a 1-step warm-up, and
prints per image and config: seconds, style SWD (lower is better), content SSIM and SSIM with the tone
matched (higher is better), beside the feed-forward peer's. The sheet has one row per image: the content,
the peer, then each config. Look at it: the statistics did not see the astronaut's face go.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python bench/quality_pair.py` puts bench/ first, not the repository
    sys.path.insert(0, str(REPO))

from bench import quality  # noqa: E402
from bench.quality_metrics import content_ssim, content_ssim_tone_matched, style_swd  # noqa: E402
from shared.images import decode_image  # noqa: E402
from worker.engine.pipeline import resize  # noqa: E402

IMAGES = ("astronaut", "chelsea")
# The default as it is, and as it was before it took the style's palette (issue 11, 2026-12-02).
OLD_DEFAULT = {"preserve_color": "none", "content_weight": 0.2}
CONFIGS = [["default", {}], ["the old default (content colours)", OLD_DEFAULT]]


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--out", default=str(REPO / "docs/quality_pair.png"))
    parser.add_argument("--configs", type=json.loads, default=CONFIGS, help="JSON [[name, overrides], ...]")
    return parser.parse_args(argv)


def stats(setup: quality.Setup, image: np.ndarray) -> str:
    """The held-out statistics of one output, as printed."""
    content, style = setup.content, setup.style
    swd, ssim = style_swd(setup.extractor, image, style), content_ssim(image, content)
    tone = content_ssim_tone_matched(image, content)
    return f"swd {swd:.3f}  ssim {ssim:.3f}  ssim tone-matched {tone:.3f}"


def image_row(extractor, feedforward, name: str, args: argparse.Namespace) -> np.ndarray:
    """Run every config on one content image; print its lines; its sheet row (content, peer, configs)."""
    content = decode_image((REPO / f"examples/content/{name}.png").read_bytes(), max_dim=args.size)
    style = decode_image(quality.STYLE.read_bytes(), max_dim=args.size)
    feedforward.stylize(content, [style])  # warm-up
    peer = np.asarray(feedforward.stylize(content, [style]), np.float32)
    peer_row = quality.Row("peer", 0, "0", 0, peer)
    setup = quality.Setup(extractor, content, style, args.size, feedforward, peer_row)
    print(f"{name} feed-forward peer: {stats(setup, peer)}", flush=True)
    tiles = [content, resize(peer, content.shape[:2])]
    for label, overrides in args.configs:
        config = quality.Config(label, overrides, snapshot_every=0)
        quality.run_job(setup, config, steps=1)
        started = time.perf_counter()
        outcome, _, _ = quality.run_job(setup, config)
        seconds = time.perf_counter() - started
        image = resize(np.asarray(outcome.image, np.float32), content.shape[:2])
        print(f"{name} {label}: {seconds:.1f} s  {stats(setup, image)}", flush=True)
        tiles.append(image)
    return np.concatenate(tiles, axis=1)


def sheet(rows: list[np.ndarray]) -> Image.Image:
    """Rows of different heights, padded black at the bottom, one above the other."""
    width = max(row.shape[1] for row in rows)
    height = max(row.shape[0] for row in rows)
    padded = [np.pad(row, ((0, height - row.shape[0]), (0, width - row.shape[1]), (0, 0))) for row in rows]
    return Image.fromarray((np.clip(np.concatenate(padded), 0, 1) * 255).astype(np.uint8))


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    extractor = quality.load_extractor()
    feedforward = quality.FeedForward.load()
    rows = [image_row(extractor, feedforward, name, args) for name in IMAGES]
    sheet(rows).save(args.out)
    print(f"sheet: {args.out} (per row: content, feed-forward peer, {', '.join(c[0] for c in args.configs)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
