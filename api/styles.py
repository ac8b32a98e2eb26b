"""The style library over HTTP: save a house style once, use it by id (the work is in api.usecases.styles)."""

from flask import Blueprint, jsonify, request, url_for

from api.args import LIST_MAX, int_arg
from api.services import services
from api.style_submission import parse_style
from api.usecases import styles

bp = Blueprint("styles", __name__, url_prefix="/v1/styles")


@bp.post("")
def create_style():
    """Save `style` images under a `name`, with optional `style_blend_weights` and `style_scale`; 201."""
    view = styles.save_style(parse_style(request.form, request.files, services().settings))
    return jsonify(view), 201, {"Location": url_for("styles.get_style", style_id=view["id"])}


@bp.get("")
def list_styles():
    """The caller's newest saved styles, newest first (?limit=, at most LIST_MAX)."""
    return jsonify(styles=styles.list_styles(int_arg("limit", 20, 1, LIST_MAX)))


@bp.get("/<style_id>")
def get_style(style_id: str):
    """One saved style: name, images, blend weights, scale."""
    return jsonify(styles.style_view(style_id))


@bp.delete("/<style_id>")
def delete_style(style_id: str):
    """Delete a saved style (204); jobs already recorded with it are not touched."""
    styles.delete_style(style_id)
    return "", 204
