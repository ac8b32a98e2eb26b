"""The style library: a tenant's house styles, saved once (images, blend weights, scale) and used by id.

`sf:style:{id}` holds one style, `sf:styles:{tenant}` indexes a tenant's styles by creation time. Styles have
no TTL: a house style lives until its tenant deletes it. The images themselves are the tenant's
content-addressed inputs in the bucket (`tenants/{tenant}/inputs/...`), which expire with nothing.
A style another tenant owns is answered exactly as one that does not exist.
"""

import json
from dataclasses import dataclass

import redis

from shared import keys
from shared.errors import NotFound
from shared.redis_boundary import translates_redis_errors

NAME_MAX = 100  # characters of a style's name


@dataclass(frozen=True)
class StyleImage:
    """One image of a saved style: its object key, content address and size."""

    key: str
    sha256: str
    width: int
    height: int


@dataclass(frozen=True)
class SavedStyle:
    """One saved style, as GET /v1/styles/{id} shows it."""

    id: str
    owner: str
    name: str
    images: tuple[StyleImage, ...]
    blend_weights: tuple[float, ...]
    style_scale: float
    created_at: float

    def to_fields(self) -> dict[str, str]:
        """The Redis hash fields."""
        return {
            "id": self.id,
            "owner": self.owner,
            "name": self.name,
            "images": json.dumps([image.__dict__ for image in self.images]),
            "blend_weights": json.dumps(list(self.blend_weights)),
            "style_scale": repr(self.style_scale),
            "created_at": repr(self.created_at),
        }

    @classmethod
    def from_fields(cls, raw: dict[str, str]) -> "SavedStyle":
        """Parse the Redis hash fields."""
        return cls(
            id=raw["id"],
            owner=raw["owner"],
            name=raw["name"],
            images=tuple(StyleImage(**image) for image in json.loads(raw["images"])),
            blend_weights=tuple(float(w) for w in json.loads(raw["blend_weights"])),
            style_scale=float(raw["style_scale"]),
            created_at=float(raw["created_at"]),
        )


def not_found() -> NotFound:
    """The one answer for a style id the caller may not see: unknown, deleted or another tenant's."""
    return NotFound("no style with this id", field="style_id")


@translates_redis_errors
class StyleLibrary:
    """Saved styles in Redis."""

    def __init__(self, *, client: redis.Redis) -> None:
        self._redis = client

    def save(self, style: SavedStyle) -> SavedStyle:
        """Store a new style and index it under its owner, in one transaction."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(keys.style_key(style.id), mapping=style.to_fields())
        pipe.zadd(keys.tenant_styles_key(style.owner), {style.id: style.created_at})
        pipe.execute()
        return style

    def get(self, owner: str, style_id: str) -> SavedStyle:
        """The owner's style under style_id; NotFound when there is none or another tenant owns it."""
        raw = self._redis.hgetall(keys.style_key(style_id))
        if not raw or raw.get("owner") != owner:
            raise not_found()
        return SavedStyle.from_fields(raw)

    def list(self, owner: str, limit: int) -> list[SavedStyle]:
        """The owner's newest styles, newest first."""
        ids = self._redis.zrevrange(keys.tenant_styles_key(owner), 0, limit - 1)
        pipe = self._redis.pipeline(transaction=False)
        for style_id in ids:
            pipe.hgetall(keys.style_key(style_id))
        return [SavedStyle.from_fields(raw) for raw in pipe.execute() if raw]

    def delete(self, owner: str, style_id: str) -> SavedStyle:
        """Delete the owner's style (jobs already recorded keep their own copy of its keys)."""
        style = self.get(owner, style_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(keys.style_key(style_id))
        pipe.zrem(keys.tenant_styles_key(owner), style_id)
        pipe.execute()
        return style
