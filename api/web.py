"""The web page for artists: plain HTML and a little JavaScript, served as files (no build step)."""

from flask import Blueprint, jsonify

from shared.params import DEFAULT_PRESET, PRESETS

# The page's files live in api/static and are served under /web/ (index.html, app.js, style.css).
bp = Blueprint("web", __name__, static_folder="static", static_url_path="/web")


@bp.get("/")
def index():
    """The page: upload, presets and sliders, live progress over SSE, result, recent jobs."""
    response = bp.send_static_file("index.html")
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/web/presets")
def presets():
    """Each preset's defaults, so the page's sliders start where the API would."""
    return jsonify(default=DEFAULT_PRESET, presets=PRESETS)
