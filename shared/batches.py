"""Batch vocabulary: the BatchRecord snapshot and the summary of a batch's items."""

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from shared.jobs import JOB_STATUSES, TERMINAL_STATUSES, JobStatus
from shared.params import StyleParams

# A batch's status is its items' (queued, running, or the one final status they all share), or `partial`
# once every item has finished and they did not all end alike (api/batch_view.py's batch_status).
PARTIAL = "partial"
BATCH_STATUSES: tuple[str, ...] = (*JOB_STATUSES, PARTIAL)
TERMINAL_BATCH_STATUSES = TERMINAL_STATUSES | {PARTIAL}


@dataclass(frozen=True)
class BatchRecord:
    """One batch: the shared params and styles, recorded once, and what was skipped at submission."""

    id: str
    params: StyleParams
    style_keys: tuple[str, ...]
    created_at: float
    items_total: int
    owner: str = "anonymous"
    skipped: tuple[dict[str, str], ...] = field(default_factory=tuple)
    webhook: str = ""  # copied onto every item's job record
    webhook_events: tuple[str, ...] = ()
    style_id: str = ""  # the saved style its style_keys came from; empty: uploaded styles
    output_prefix: str = ""  # inside the owner's root, ending with '/'; empty: results under jobs/ only
    manifest_key: str = ""  # set once the manifest under output_prefix is written (BatchStore.note_manifest)
    cache: bool = True  # whether its items may read and write the result cache (copied onto each)

    def to_hash(self) -> dict[str, str]:
        """Flatten into Redis hash fields."""
        return {
            "id": self.id,
            "params": self.params.to_json(),
            "style_keys": json.dumps(self.style_keys),
            "created_at": repr(self.created_at),
            "items_total": str(self.items_total),
            "owner": self.owner,
            "skipped": json.dumps(self.skipped),
            "webhook": self.webhook,
            "webhook_events": json.dumps(self.webhook_events),
            "style_id": self.style_id,
            "output_prefix": self.output_prefix,
            "manifest_key": self.manifest_key,
            "cache": "1" if self.cache else "",
        }

    @classmethod
    def from_hash(cls, raw: Mapping[str, str]) -> "BatchRecord":
        """Rebuild from `to_hash`'s form."""
        return cls(
            id=raw["id"],
            params=StyleParams.from_json(raw["params"]),
            style_keys=tuple(json.loads(raw["style_keys"])),
            created_at=float(raw["created_at"]),
            items_total=int(raw["items_total"]),
            owner=raw.get("owner", "anonymous"),
            skipped=tuple(json.loads(raw.get("skipped") or "[]")),
            webhook=raw.get("webhook", ""),
            webhook_events=tuple(json.loads(raw.get("webhook_events") or "[]")),
            style_id=raw.get("style_id", ""),
            output_prefix=raw.get("output_prefix", ""),
            manifest_key=raw.get("manifest_key", ""),
            cache=raw.get("cache", "1") == "1",
        )


@dataclass(frozen=True)
class ItemRow:
    """One batch item's listing fields: what a batch's JSON, cancel and event stream read of each job."""

    id: str
    status: JobStatus
    path: str = ""
    step: int = 0
    total_steps: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    error: str = ""
    result_key: str = ""
    result_width: int = 0
    result_height: int = 0
    targets: str = ""  # "computed" or "reused" once it ran
    cached: bool = False  # it succeeded with an earlier job's stored result

    @property
    def active(self) -> bool:
        """Queued or running: more is to come."""
        return not self.status.is_terminal

    @classmethod
    def from_fields(cls, raw: Mapping[str, str | None]) -> "ItemRow":
        """Rebuild from the job hash's fields of the same names (absent ones empty)."""

        def number(name: str) -> int:
            return int(raw[name]) if raw.get(name) else 0

        return cls(
            id=raw["id"],
            status=JobStatus(raw["status"]),
            path=raw.get("path") or "",
            step=number("step"),
            total_steps=number("total_steps"),
            started_at=float(raw["started_at"]) if raw.get("started_at") else None,
            finished_at=float(raw["finished_at"]) if raw.get("finished_at") else None,
            error=raw.get("error") or "",
            result_key=raw.get("result_key") or "",
            result_width=number("result_width"),
            result_height=number("result_height"),
            targets=raw.get("targets") or "",
            cached=raw.get("cached") == "1",
        )


ITEM_FIELDS = tuple(field.name for field in fields(ItemRow))
