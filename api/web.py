"""The web page for artists: plain HTML and a little JavaScript, served as files (no build step)."""

from flask import Blueprint, jsonify

from api.services import services
from shared.params import DEFAULT_PRESET, NUMBERS, PRESETS

# The page's files live in api/static and are served under /web/ (index.html, app.js, style.css).
bp = Blueprint("web", __name__, static_folder="static", static_url_path="/web")

# The options the page offers exact number inputs for, with the ranges the API validates.
LIMITED = ("steps", "max_dim", "save_every")


@bp.get("/")
def index():
    """The page: upload, presets and sliders, live progress over SSE, result, recent jobs and batches."""
    response = bp.send_static_file("index.html")
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/web/presets")
def presets():
    """Each preset's defaults and the API's limits, so the page's inputs start and stop where the API does."""
    return jsonify(default=DEFAULT_PRESET, presets=PRESETS, limits=limits())


def limits() -> dict[str, dict[str, int]]:
    """The range each of LIMITED admits in this deployment (max_dim: its image-side limits)."""
    settings = services().settings
    ranges = {name: (NUMBERS[name].low, NUMBERS[name].high) for name in LIMITED}
    ranges["max_dim"] = (settings.min_image_side, settings.max_dim_limit)
    return {name: {"min": int(low), "max": int(high)} for name, (low, high) in ranges.items()}
