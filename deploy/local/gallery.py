"""`make gallery`: render docs/gallery.png, one sheet of the art controls, through the running local stack.

Rows are example content images (each with its own style); columns are the options. Every cell is a real job
submitted over HTTP, run by the worker with whatever weights it loaded (imagenet -> hed -> random).
"""

import io
import os
import sys
from pathlib import Path

from http_jobs import download, follow, submit
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
CELL = 160
BASE = {"preset": "balanced", "max_dim": 128, "steps": 120}
ROWS = [
    (EXAMPLES / "content" / "chelsea.png", EXAMPLES / "style" / "hubble_deep_field.jpg"),
    (EXAMPLES / "content" / "astronaut.png", EXAMPLES / "textures" / "brick.png"),
]
# column title -> (content override or None, extra params, blend with the other row's style)
COLUMNS = {
    "plain": (None, {}, False),
    "luminance": (None, {"preserve_color": "luminance"}, False),
    "histogram": (None, {"preserve_color": "histogram"}, False),
    "tileable, 2x2": (EXAMPLES / "textures" / "brick.png", {"tileable": True, "max_dim": 64}, False),
    "sprite (alpha)": (EXAMPLES / "sprites" / "Minduka_Present_Blue_Pack.png", {}, False),
    "two-style blend": (None, {"style_blend_weights": [0.5, 0.5]}, True),
}


def main() -> int:
    """Submit every cell's job, wait for all, compose and save the sheet."""
    base = os.environ["STYLEFORGE_API_URL"]
    jobs = {}
    for row, (content, style) in enumerate(ROWS):
        other = ROWS[1 - row][1]
        for title, (override, extra, blend) in COLUMNS.items():
            styles = [style, other] if blend else [style]
            jobs[row, title] = submit(base, override or content, styles, {**BASE, **extra})
    print(f"submitted {len(jobs)} jobs; params {BASE} plus each column's options")
    results = {
        cell: follow(base, job_id, f"{cell[0]}/{cell[1]}", every_line=False) for cell, job_id in jobs.items()
    }
    failed = [cell for cell, job in results.items() if job["status"] != "succeeded"]
    if failed:
        print(f"failed cells: {failed}: {[results[c]['error'] for c in failed]}")
        return 1
    weights = next(iter(results.values()))["weights"]
    sheet = compose(results, f"weights: {weights['mode']} ({weights['note']}); {BASE}")
    target = REPO / "docs" / "gallery.png"
    target.parent.mkdir(exist_ok=True)
    sheet.save(target)
    print(f"gallery written to {target} (weights: {weights['mode']})")
    return 0


def compose(results: dict, caption: str) -> Image.Image:
    """Lay the results out: a header row of titles, then per row the content, its style, and each column."""
    titles = ["content", "style", *COLUMNS]
    sheet = Image.new("RGB", (CELL * len(titles), 40 + (CELL + 4) * len(ROWS) + 24), "white")
    draw = ImageDraw.Draw(sheet)
    for col, title in enumerate(titles):
        draw.text((col * CELL + 6, 22), title, fill="black")
    for row, (content, style) in enumerate(ROWS):
        top = 40 + row * (CELL + 4)
        cells = [Image.open(content), Image.open(style)]
        cells += [_cell_image(title, results[row, title]) for title in COLUMNS]
        for col, image in enumerate(cells):
            sheet.paste(_fit(image), (col * CELL, top))
    draw.text((6, 4), "styleforge art controls", fill="black")
    draw.text((6, sheet.height - 18), caption[:200], fill="dimgray")
    return sheet


def _cell_image(title: str, job: dict) -> Image.Image:
    image = Image.open(io.BytesIO(download(job)))
    if title.startswith("tileable"):
        tiled = Image.new(image.mode, (image.width * 2, image.height * 2))
        for x in (0, image.width):
            for y in (0, image.height):
                tiled.paste(image, (x, y))
        return tiled
    return image


def _fit(image: Image.Image) -> Image.Image:
    """The image scaled into a CELL x CELL square; transparency shown over a checkerboard."""
    image = image.convert("RGBA")
    image.thumbnail((CELL - 8, CELL - 8), Image.Resampling.LANCZOS)
    cell = _checkerboard() if image.getextrema()[3][0] < 255 else Image.new("RGBA", (CELL, CELL), "white")
    cell.alpha_composite(image, ((CELL - image.width) // 2, (CELL - image.height) // 2))
    return cell.convert("RGB")


def _checkerboard(square: int = 10) -> Image.Image:
    board = Image.new("RGBA", (CELL, CELL), (255, 255, 255, 255))
    draw = ImageDraw.Draw(board)
    for y in range(0, CELL, square):
        for x in range((y // square % 2) * square, CELL, 2 * square):
            draw.rectangle((x, y, x + square - 1, y + square - 1), fill=(200, 200, 200, 255))
    return board


if __name__ == "__main__":
    sys.exit(main())
