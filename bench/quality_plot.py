"""Pictures of bench/quality.py's rows, drawn with Pillow alone (no plotting dependency).

`quality_plot`: two panels against seconds (log scale), the held-out style distance (lower is better) and
content similarity (higher is better); a curve per row with snapshots, a dot at each row's end, and the
feed-forward peer's values as dashed lines. `contact_sheet`: content, style and every row's output, labelled.
"""

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

COLOURS = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (23, 190, 207),
    (188, 189, 34),
]
PEER = (90, 90, 90)
PANEL = (760, 300)  # plot area of one panel, pixels
MARGIN = (70, 40, 230, 50)  # left, top, right (legend), bottom


def font(size: int = 14) -> ImageFont.ImageFont:
    """Pillow's built-in scalable font."""
    return ImageFont.load_default(size=size)


class Axes:
    """One panel: log-scale seconds on x, a linear statistic on y, mapped to pixels inside ``box``."""

    def __init__(self, draw: ImageDraw.ImageDraw, box: tuple, xs: tuple, ys: tuple) -> None:
        self.draw, self.box = draw, box
        self.x0, self.x1 = math.log10(xs[0]), math.log10(xs[1])
        pad = (ys[1] - ys[0]) * 0.08 or 0.05
        self.y0, self.y1 = ys[0] - pad, ys[1] + pad

    def at(self, seconds: float, value: float) -> tuple[float, float]:
        """Pixel position of (seconds, value)."""
        left, top, right, bottom = self.box
        fx = (math.log10(max(seconds, 10**self.x0)) - self.x0) / (self.x1 - self.x0)
        fy = (value - self.y0) / (self.y1 - self.y0)
        return left + fx * (right - left), bottom - fy * (bottom - top)

    def frame(self, title: str) -> None:
        """Border, decade ticks (with 2 and 5) on x, five ticks on y, and the title."""
        left, top, right, bottom = self.box
        self.draw.rectangle(self.box, outline=(0, 0, 0))
        for decade in range(math.floor(self.x0), math.ceil(self.x1) + 1):
            for mult in (1, 2, 5):
                value = mult * 10.0**decade
                if self.x0 <= math.log10(value) <= self.x1:
                    x = self.at(value, self.y0)[0]
                    self.draw.line([(x, bottom), (x, bottom + 5)], fill=(0, 0, 0))
                    self.draw.line([(x, top), (x, bottom)], fill=(235, 235, 235))
                    self.draw.text((x, bottom + 8), f"{value:g}", fill=(0, 0, 0), font=font(12), anchor="mt")
        for k in range(5):
            value = self.y0 + (self.y1 - self.y0) * (k + 0.5) / 5
            y = self.at(10**self.x0, value)[1]
            self.draw.line([(left - 5, y), (left, y)], fill=(0, 0, 0))
            self.draw.text((left - 8, y), f"{value:.3f}", fill=(0, 0, 0), font=font(12), anchor="rm")
        self.draw.text((left, top - 8), title, fill=(0, 0, 0), font=font(15), anchor="lb")

    def dashed(self, value: float, colour: tuple) -> None:
        """A horizontal dashed line at ``value``."""
        left, _, right, _ = self.box
        y = self.at(10**self.x0, value)[1]
        for x in range(int(left), int(right), 12):
            self.draw.line([(x, y), (min(x + 6, right), y)], fill=colour, width=2)

    def series(self, points: list[tuple[float, float]], colour: tuple, dot: tuple[float, float]) -> None:
        """A curve through ``points`` (if more than one) and a dot at ``dot``."""
        if len(points) > 1:
            self.draw.line([self.at(*p) for p in points], fill=colour, width=2)
        x, y = self.at(*dot)
        self.draw.ellipse([x - 5, y - 5, x + 5, y + 5], fill=colour, outline=(0, 0, 0))


def _ranges(rows: list, attr: str) -> tuple[tuple[float, float], tuple[float, float]]:
    """The seconds range (for the log axis) and the range of ``attr`` over every row's points and end."""
    seconds = [row.seconds for row in rows] + [p.seconds for row in rows for p in row.curve]
    values = [getattr(row, attr) for row in rows] + [getattr(p, attr) for row in rows for p in row.curve]
    positive = [s for s in seconds if s > 0]
    low = 10 ** math.floor(math.log10(min(positive)))
    return (low, max(positive) * 1.3), (min(values), max(values))


def quality_plot(rows: list, peer, path: Path) -> None:
    """Write the two-panel quality-vs-seconds plot of ``rows`` (the peer is one of them) to ``path``."""
    left, top, right, bottom = MARGIN
    width, height = left + PANEL[0] + right, top + 2 * (PANEL[1] + bottom) + 10
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    panels = [
        ("swd", "held-out style distance (sliced Wasserstein, lower is better)"),
        ("ssim", "held-out content similarity (blurred-luminance SSIM, higher is better)"),
    ]
    for index, (attr, title) in enumerate(panels):
        y = top + index * (PANEL[1] + bottom)
        xs, ys = _ranges(rows, attr)
        axes = Axes(draw, (left, y, left + PANEL[0], y + PANEL[1]), xs, ys)
        axes.frame(title)
        axes.dashed(getattr(peer, attr), PEER)
        for row, colour in zip(rows, COLOURS, strict=False):
            points = [(p.seconds, getattr(p, attr)) for p in row.curve]
            axes.series(points, PEER if row is peer else colour, (row.seconds, getattr(row, attr)))
    draw.text(
        (left + PANEL[0] / 2, height - 12), "seconds (log scale)", fill=(0, 0, 0), font=font(), anchor="mb"
    )
    _legend(draw, rows, peer, (left + PANEL[0] + 20, top))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def _legend(draw: ImageDraw.ImageDraw, rows: list, peer, origin: tuple[int, int]) -> None:
    """One coloured line per row; the peer's dashed line explained."""
    x, y = origin
    for row, colour in zip(rows, COLOURS, strict=False):
        colour = PEER if row is peer else colour
        draw.line([(x, y + 8), (x + 24, y + 8)], fill=colour, width=3)
        draw.text((x + 30, y), row.name, fill=(0, 0, 0), font=font(13))
        y += 22
    draw.text((x, y + 8), "dashed: the peer\n(feed-forward), the bar", fill=PEER, font=font(12))


def _tile(image: np.ndarray, lines: list[str], side: int) -> Image.Image:
    """An image scaled to fit ``side`` px, with its label lines under it."""
    picture = Image.fromarray((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8))
    picture.thumbnail((side, side), Image.Resampling.LANCZOS)
    tile = Image.new("RGB", (side, side + 18 * len(lines) + 6), "white")
    tile.paste(picture, ((side - picture.width) // 2, (side - picture.height) // 2))
    draw = ImageDraw.Draw(tile)
    for k, line in enumerate(lines):
        draw.text((4, side + 4 + 18 * k), line, fill=(0, 0, 0), font=font(13))
    return tile


def contact_sheet(rows: list, content: np.ndarray, style: np.ndarray, path: Path, columns: int = 4) -> None:
    """Write content, style and each row's output (name, seconds, swd, ssim) as a grid to ``path``."""
    side = max(content.shape[:2])
    tiles = [_tile(content, ["content", "", ""], side), _tile(style, ["style", "", ""], side)]
    for row in rows:
        meets = "meets bar" if row.meets else "below bar"
        lines = [row.name, f"{row.seconds:.1f} s, {meets}", f"swd {row.swd:.3f}  ssim {row.ssim:.3f}"]
        tiles.append(_tile(row.image, lines, side))
    width, height = tiles[0].size
    count = math.ceil(len(tiles) / columns)
    sheet = Image.new("RGB", (columns * (width + 6) + 6, count * (height + 6) + 6), (220, 220, 220))
    for index, tile in enumerate(tiles):
        sheet.paste(tile, (6 + (index % columns) * (width + 6), 6 + (index // columns) * (height + 6)))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
