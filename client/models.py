"""Typed, read-only views of the API's job and batch JSON."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePosixPath
from types import MappingProxyType
from typing import Any

# The server's own status vocabulary (plain strings; shared/ is pure Python the client already depends on).
from shared.batches import TERMINAL_BATCH_STATUSES
from shared.jobs import TERMINAL_STATUSES


@dataclass(frozen=True)
class Result:
    """A finished output: its object key and a (presigned) URL to fetch it."""

    url: str
    key: str
    width: int | None = None
    height: int | None = None

    @property
    def extension(self) -> str:
        """The output's file extension with its dot (".png" when the key and URL name none)."""
        for name in (self.key, self.url.split("?", 1)[0]):
            suffix = PurePosixPath(name).suffix
            if suffix:
                return suffix.lower()
        return ".png"

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> "Result | None":
        """A Result, or None when the job has none yet."""
        if not data or not data.get("url"):
            return None
        return cls(
            url=data["url"], key=data.get("key") or "", width=data.get("width"), height=data.get("height")
        )


@dataclass(frozen=True)
class Job:
    """One job's snapshot."""

    id: str
    status: str
    step: int = 0
    total_steps: int = 0
    error: str | None = None
    result: Result | None = None
    batch_id: str | None = None
    targets: str | None = None
    cached: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def terminal(self) -> bool:
        """True once the job will change no more."""
        return self.status in TERMINAL_STATUSES

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Job":
        """Parse GET /v1/jobs/{id}."""
        progress = data.get("progress") or {}
        return cls(
            id=data["id"],
            status=data["status"],
            step=int(progress.get("step") or 0),
            total_steps=int(progress.get("total_steps") or 0),
            error=data.get("error"),
            result=Result.from_json(data.get("result")),
            batch_id=data.get("batch_id"),
            targets=data.get("targets"),
            cached=bool(data.get("cached")),
            raw=MappingProxyType(dict(data)),
        )


@dataclass(frozen=True)
class BatchItem:
    """One item of a batch: the job that stylizes one input file."""

    job_id: str
    path: str
    status: str
    error: str | None = None
    result: Result | None = None
    targets: str | None = None
    seconds: float | None = None
    cached: bool = False

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "BatchItem":
        """Parse one entry of a batch's `items`."""
        return cls(
            job_id=data.get("job_id") or data["id"],
            path=data["path"],
            status=data["status"],
            error=data.get("error") or None,
            result=Result.from_json(data.get("result")),
            targets=data.get("targets") or None,
            seconds=_seconds(data),
            cached=bool(data.get("cached")),
        )


@dataclass(frozen=True)
class Skipped:
    """An uploaded file the server did not turn into an item, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class Counts:
    """Items per status."""

    queued: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    canceled: int = 0
    cached: int = 0  # of the succeeded: served from the result cache (no GPU time)

    @property
    def stylized(self) -> int:
        """Succeeded items that were computed, not served from the result cache."""
        return self.succeeded - self.cached

    @property
    def active(self) -> int:
        """Items still queued or running."""
        return self.queued + self.running

    @property
    def done(self) -> int:
        """Items that reached a final status."""
        return self.succeeded + self.failed + self.canceled


@dataclass(frozen=True)
class Batch:
    """A batch's snapshot; `items` holds the page (or, after `Client.batch_items`, all) of its items."""

    id: str
    status: str
    counts: Counts
    items_total: int
    steps_done: int = 0
    steps_total: int = 0
    eta_s: float | None = None
    skipped: tuple[Skipped, ...] = ()
    items: tuple[BatchItem, ...] = ()
    next_offset: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def terminal(self) -> bool:
        """True once no item is queued or running (or the server says the batch is finished)."""
        return self.status in TERMINAL_BATCH_STATUSES or (
            self.counts.active == 0 and self.counts.done >= self.items_total
        )

    @property
    def failed_items(self) -> tuple[BatchItem, ...]:
        """Items that ended without a result (failed or canceled), among those listed."""
        return tuple(item for item in self.items if item.status in ("failed", "canceled"))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Batch":
        """Parse GET /v1/batches/{id} (and the 202 of POST /v1/batches)."""
        counts = data.get("counts") or {}
        progress = data.get("progress") or {}
        return cls(
            id=data["id"],
            status=data.get("status") or "",
            counts=Counts(**{name: int(counts.get(name) or 0) for name in Counts.__dataclass_fields__}),
            items_total=int(data.get("items_total") or 0),
            steps_done=int(progress.get("steps_done") or 0),
            steps_total=int(progress.get("steps_total") or 0),
            eta_s=data.get("eta_s"),
            skipped=tuple(
                Skipped(path=s["path"], reason=s.get("reason", "")) for s in data.get("skipped") or ()
            ),
            items=tuple(BatchItem.from_json(item) for item in data.get("items") or ()),
            next_offset=data.get("next_offset"),
            raw=MappingProxyType(dict(data)),
        )


def _seconds(item: Mapping[str, Any]) -> float | None:
    for name in ("duration_s", "seconds"):
        if isinstance(item.get(name), int | float):
            return float(item[name])
    started, finished = _timestamp(item.get("started_at")), _timestamp(item.get("finished_at"))
    return round(finished - started, 3) if started is not None and finished is not None else None


def _timestamp(value: object) -> float | None:
    # The job JSON gives ISO-8601 strings; a listing read straight from Redis may give epoch seconds.
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            try:
                return float(value)
            except ValueError:
                return None
    return None
