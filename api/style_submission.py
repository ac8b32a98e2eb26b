"""Turn a multipart `POST /v1/styles` into a validated house style, before anything is stored."""

from dataclasses import dataclass

from api.submission import Upload, read_styles
from shared.config import Settings
from shared.errors import InvalidInput
from shared.params import StyleParams
from shared.style_library import NAME_MAX

FIELDS = ("name", "style_blend_weights", "style_scale")


@dataclass(frozen=True)
class StyleSubmission:
    """A validated style to save: its images, their normalised blend weights and the style scale."""

    name: str
    images: tuple[Upload, ...]
    blend_weights: tuple[float, ...]
    style_scale: float


def parse_style(form, files, settings: Settings) -> StyleSubmission:
    """Validate the name, the weights and scale (by the job params' own rules), then the images."""
    for name in files:
        if name != "style":
            raise InvalidInput(
                f"unexpected file field {name!r}; send the images as `style` files", field=name
            )
    for name in form:
        if name not in FIELDS:
            raise InvalidInput(f"unknown field {name!r}; a style takes {', '.join(FIELDS)}", field=name)
    name = (form.get("name") or "").strip()
    if not name or len(name) > NAME_MAX or not name.isprintable():
        raise InvalidInput(f"name is required: 1-{NAME_MAX} printable characters", field="name")
    chosen = {field: form[field] for field in ("style_blend_weights", "style_scale") if field in form}
    params = StyleParams.from_mapping(
        chosen, max_dim_limit=settings.max_dim_limit, min_dim=settings.min_image_side
    )
    # Sizes are checked against each job's own max_dim when the style is used; here the image as sent.
    images = read_styles(files.getlist("style"), settings, settings.max_dim_limit)
    weights = params.blend_weights(len(images))
    return StyleSubmission(name=name, images=images, blend_weights=weights, style_scale=params.style_scale)
