"""Job vocabulary: JobStatus, the validated StyleParams, the presets, and the JobRecord snapshot."""

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from enum import Enum

from shared.errors import InvalidInput


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


# Each preset fixes the loss formulas and supplies defaults; every number is overridable per job.
# `seed`: the seed document's formulas exactly, with the TF tutorial's numbers where the seed gives none.
# `tutorial`: the TF tutorial exactly (layer-averaged style, mean-square content, TV weight 30).
PRESETS: dict[str, dict[str, float | int]] = {
    "seed": {
        "steps": 1000,
        "max_dim": 512,
        "style_weight": 1e-2,
        "content_weight": 1e4,
        "tv_weight": 0.0,
        "learning_rate": 0.02,
        "beta_1": 0.99,
        "beta_2": 0.999,
        "epsilon": 0.1,
    },
    "tutorial": {
        "steps": 1000,
        "max_dim": 512,
        "style_weight": 1e-2,
        "content_weight": 1e4,
        "tv_weight": 30.0,
        "learning_rate": 0.02,
        "beta_1": 0.99,
        "beta_2": 0.999,
        "epsilon": 0.1,
    },
}
DEFAULT_PRESET = "seed"


@dataclass(frozen=True)
class _Bound:
    kind: type
    low: float
    high: float
    low_open: bool = False
    high_open: bool = False

    def describe(self) -> str:
        left = "(" if self.low_open else "["
        right = ")" if self.high_open else "]"
        noun = "an integer" if self.kind is int else "a number"
        return f"{noun} in {left}{self.low:g}, {self.high:g}{right}"

    def admits(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below


_BOUNDS = {
    "steps": _Bound(int, 1, 20_000),
    "max_dim": _Bound(int, 1, 10**6),  # the deployment's limits are applied in from_mapping
    "style_weight": _Bound(float, 0, 1e12),
    "content_weight": _Bound(float, 0, 1e12),
    "tv_weight": _Bound(float, 0, 1e12),
    "learning_rate": _Bound(float, 0, 10, low_open=True),
    "beta_1": _Bound(float, 0, 1, high_open=True),
    "beta_2": _Bound(float, 0, 1, high_open=True),
    "epsilon": _Bound(float, 0, 10, low_open=True),
}


@dataclass(frozen=True)
class StyleParams:
    """Every option of one stylization, validated; build it with `from_mapping`."""

    preset: str
    steps: int
    max_dim: int
    style_weight: float
    content_weight: float
    tv_weight: float
    learning_rate: float
    beta_1: float
    beta_2: float
    epsilon: float

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, object], *, max_dim_limit: int = 2048, min_dim: int = 16
    ) -> "StyleParams":
        """Validate user params (JSON values or form strings) over the preset's defaults.

        Raises:
            InvalidInput: naming the offending field.
        """
        unknown = sorted(set(data) - {"preset", *_BOUNDS})
        if unknown:
            raise InvalidInput(f"unknown parameter {unknown[0]!r}", field=unknown[0])
        preset = data.get("preset", DEFAULT_PRESET)
        if not isinstance(preset, str) or preset not in PRESETS:
            raise InvalidInput(f"preset must be one of {sorted(PRESETS)}", field="preset")
        values = dict(PRESETS[preset])
        values.update({name: _parse(name, data[name]) for name in _BOUNDS if name in data})
        if not min_dim <= values["max_dim"] <= max_dim_limit:
            raise InvalidInput(f"max_dim must be an integer in [{min_dim}, {max_dim_limit}]", field="max_dim")
        return cls(preset=preset, **values)

    @classmethod
    def from_json(cls, text: str) -> "StyleParams":
        """Rebuild params stored by `to_json` (already validated)."""
        return cls(**json.loads(text))

    def to_json(self) -> str:
        """Serialise for the job record."""
        return json.dumps(asdict(self), sort_keys=True)

    def to_dict(self) -> dict[str, object]:
        """Plain dict for JSON responses."""
        return asdict(self)


def _parse(name: str, raw: object) -> int | float:
    bound = _BOUNDS[name]
    value = _to_number(raw, bound.kind)
    if value is None or not bound.admits(value):
        raise InvalidInput(f"{name} must be {bound.describe()}, got {_shown(raw)}", field=name)
    return value


def _shown(raw: object) -> str:
    if isinstance(raw, int) and abs(raw) > 10**15:
        return "a huge integer"  # repr of a 5000-digit int raises, and nobody wants it echoed
    text = repr(raw)
    return text if len(text) <= 40 else text[:37] + "..."


def _to_number(raw: object, kind: type) -> int | float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, str):
        try:
            raw = float(raw.strip())
        except ValueError:
            return None
    if isinstance(raw, int) and abs(raw) > 10**15:
        return None  # beyond every bound, and math.isfinite would overflow on huge ints
    if not isinstance(raw, (int, float)) or not math.isfinite(raw):
        return None
    if kind is int:
        return int(raw) if float(raw).is_integer() else None
    return float(raw)


@dataclass(frozen=True)
class JobRecord:
    """Snapshot of one job, as stored in its Redis hash and returned by GET /v1/jobs/{id}."""

    id: str
    status: JobStatus
    params: StyleParams
    content_key: str
    style_key: str
    created_at: float
    owner: str = "anonymous"
    batch_id: str = ""
    attempt: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    step: int = 0
    total_steps: int = 0
    losses: dict[str, float] = field(default_factory=dict)
    initial_losses: dict[str, float] = field(default_factory=dict)
    error: str = ""
    weights: str = ""
    weights_note: str = ""
    result_key: str = ""
    result_width: int = 0
    result_height: int = 0

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


_FLOAT_OR_NONE = {"started_at", "finished_at"}
_INTS = {"attempt", "step", "total_steps", "result_width", "result_height"}
_DICTS = {"losses", "initial_losses"}


def _encode(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, JobStatus):
        return value.value
    if isinstance(value, StyleParams):
        return value.to_json()
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _decode(name: str, text: str) -> object:
    if name == "status":
        return JobStatus(text)
    if name == "params":
        return StyleParams.from_json(text)
    if name in _DICTS:
        return json.loads(text) if text else {}
    if name in _INTS:
        return int(text or 0)
    if name in _FLOAT_OR_NONE:
        return float(text) if text else None
    if name == "created_at":
        return float(text)
    return text
