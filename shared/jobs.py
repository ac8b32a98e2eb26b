"""Job vocabulary: JobStatus and the JobRecord snapshot (params live in shared.params)."""

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from enum import Enum

from shared.params import StyleParams


class JobStatus(str, Enum):
    """Lifecycle: queued -> running -> succeeded | failed | canceled."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def is_terminal(self) -> bool:
        """True once the job will never change again."""
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED)


# The statuses as the JSON and the Redis hashes spell them (plain strings: a str Enum member does not hash
# like its value, so `"queued" in {JobStatus.QUEUED}` is False).
JOB_STATUSES: tuple[str, ...] = tuple(status.value for status in JobStatus)
# A job still to change: counted as work left, and what keeps a batch's event stream open.
ACTIVE_STATUSES = frozenset({JobStatus.QUEUED.value, JobStatus.RUNNING.value})
TERMINAL_STATUSES = frozenset(status.value for status in JobStatus if status.is_terminal)


@dataclass(frozen=True)
class JobRecord:
    """Snapshot of one job, as stored in its Redis hash and returned by GET /v1/jobs/{id}."""

    id: str
    status: JobStatus
    params: StyleParams
    content_key: str
    style_keys: tuple[str, ...]
    created_at: float
    owner: str = "anonymous"
    batch_id: str = ""
    style_id: str = ""  # the saved style (POST /v1/styles) its style_keys came from; empty: uploaded styles
    attempt: int = 0
    started_at: float | None = None  # the first attempt's start (a resumed job keeps it)
    attempt_started_at: float | None = None  # the current (or last) attempt's start
    finished_at: float | None = None
    step: int = 0
    total_steps: int = 0
    losses: dict[str, float] = field(default_factory=dict)
    initial_losses: dict[str, float] = field(default_factory=dict)
    error: str = ""
    weights: str = ""
    weights_note: str = ""
    worker: str = ""  # the worker of the current (or last) attempt: its lease holder, host:pid:nonce
    precision: str = ""  # the dtype the worker's VGG19 convolutions computed in (float32, bfloat16, ...)
    evaluations: int = 0  # loss-and-gradient evaluations the optimiser spent (Adam: one per step)
    result_key: str = ""
    result_width: int = 0
    result_height: int = 0
    plan: dict[str, object] = field(default_factory=dict)
    path: str = ""  # the item's relative path inside its batch
    output_key: str = ""  # where its batch's output_prefix wants a copy of the result; empty: none
    targets: str = ""  # "computed" or "reused": where the style targets came from
    webhook: str = ""  # URL told of this job's events; empty: none
    webhook_events: tuple[str, ...] = ()  # which of start, progress, completed it is told
    checkpoint_step: int = 0  # the step of the job's newest checkpoint (0: none)
    resumed_from_step: int = 0  # where the current attempt resumed (0: from the start)
    cancel_requested: bool = False  # someone asked the job to stop (set alone, by JobStore.request_cancel)
    cache: bool = True  # whether the job may read and write the result cache (`cache=false` opts out)
    cached: bool = False  # it succeeded with an earlier job's stored result (copied): no GPU time
    cache_key: str = ""  # what its result depends on, hashed (worker/result_cache.py); set when it starts
    engine_version: str = ""  # the engine's version (worker/engine/version.py) of its attempt

    def to_hash(self) -> dict[str, str]:
        """Flatten into Redis hash fields (strings only; None becomes empty)."""
        out = {}
        for f in fields(self):
            out[f.name] = _encode(getattr(self, f.name))
        return out

    @classmethod
    def from_hash(cls, raw: Mapping[str, str]) -> "JobRecord":
        """Rebuild from a Redis hash written by `to_hash` and later field updates."""
        kwargs: dict[str, object] = {}
        for f in fields(cls):
            if f.name in raw:
                kwargs[f.name] = _decode(f.name, raw[f.name])
        return cls(**kwargs)

    @staticmethod
    def encode_fields(**changes: object) -> dict[str, str]:
        """Hash fields for a partial update (names must be JobRecord fields)."""
        names = {f.name for f in fields(JobRecord)}
        unknown = set(changes) - names
        if unknown:
            raise ValueError(f"not JobRecord fields: {sorted(unknown)}")
        return {name: _encode(value) for name, value in changes.items()}

    def with_changes(self, **changes: object) -> "JobRecord":
        """Copy with some fields replaced."""
        return replace(self, **changes)


_FLOAT_OR_NONE = {"started_at", "attempt_started_at", "finished_at"}
_INTS = {
    "attempt",
    "step",
    "total_steps",
    "result_width",
    "result_height",
    "checkpoint_step",
    "resumed_from_step",
    "evaluations",
}
_DICTS = {"losses", "initial_losses", "plan"}
_TUPLES = {"style_keys", "webhook_events"}
_BOOLS = {"cancel_requested", "cache", "cached"}


def _encode(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else ""
    if isinstance(value, JobStatus):
        return value.value
    if isinstance(value, StyleParams):
        return value.to_json()
    if isinstance(value, (dict, tuple)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _decode(name: str, text: str) -> object:
    if name == "status":
        return JobStatus(text)
    if name == "params":
        return StyleParams.from_json(text)
    if name in _DICTS:
        return json.loads(text) if text else {}
    if name in _TUPLES:
        return tuple(json.loads(text)) if text else ()
    if name in _INTS:
        return int(text or 0)
    if name in _BOOLS:
        return text == "1"
    if name in _FLOAT_OR_NONE:
        return float(text) if text else None
    if name == "created_at":
        return float(text)
    return text
